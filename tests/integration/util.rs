//! Helpers shared by the integration tests: a scratch directory, running kiln (as an
//! unprivileged user when the tests run as root), the skip-unless-CI rule for host tools and
//! the one gate for network tests, and the lock that runs QEMU boots one at a time.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

pub const KILN: &str = env!("CARGO_BIN_EXE_kiln");

/// A scratch directory under the target dir, removed when dropped, world-writable so an
/// unprivileged kiln can write into it.
pub struct Scratch {
    pub path: PathBuf,
}

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let base = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let path = base.join(format!(
            "{name}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o777)).unwrap();
        Scratch { path }
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.join(name);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).unwrap();
        }
        fs::write(&path, text).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        path
    }

    /// Every file name in the directory, sorted (to prove nothing was left behind).
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(&self.path)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

pub fn is_root() -> bool {
    nix_uid() == 0
}

fn nix_uid() -> u32 {
    // /proc/self/status avoids a libc dependency in the tests.
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|uid| uid.parse().ok())
        .unwrap_or(u32::MAX)
}

/// `program` as uid/gid 65534 when the tests run as root: kiln must never need
/// privilege, and this proves it (no fakeroot, no user namespace).
fn unprivileged(program: &str) -> Command {
    if is_root() {
        let mut command = Command::new("setpriv");
        command.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--",
            program,
        ]);
        command
    } else {
        Command::new(program)
    }
}

/// A command for kiln, unprivileged.
pub fn kiln() -> Command {
    unprivileged(KILN)
}

/// `sh -c SCRIPT sh ARGS...`, unprivileged like `kiln()`.
pub fn shell() -> Command {
    let mut command = unprivileged("sh");
    command.arg("-c");
    command
}

pub fn run<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    kiln().args(args).output().expect("unable to run kiln")
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Runs kiln and insists on success, returning stdout.
pub fn ok<I, S>(args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let output = run(args);
    assert!(
        output.status.success(),
        "kiln failed: {:?}\nstderr:\n{}",
        output.status,
        stderr(&output)
    );
    stdout(&output)
}

/// Prints why the running test does nothing. libtest reports a test that returns early as
/// "ok", so every skip says so on stderr (shown with `--nocapture`), under the test's name.
pub fn skip(why: &str) {
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("this test");
    eprintln!("skipping {test}: {why}");
}

/// True under CI, which installs every host tool and fixture the tests use: there a
/// missing one is a failure, not a skip.
pub fn under_ci() -> bool {
    std::env::var_os("CI").is_some()
}

/// The one gate for tests that download packages or boot QEMU: they run under CI or with
/// `KILN_NETWORK_TESTS` set; elsewhere they print `why` they would be slow and skip.
pub fn network_tests(why: &str) -> bool {
    if under_ci() || std::env::var_os("KILN_NETWORK_TESTS").is_some() {
        return true;
    }
    skip(&format!(
        "{why}; set KILN_NETWORK_TESTS=1 (always on under CI)"
    ));
    false
}

/// `network_tests`, and then every host tool in `tools` (see `have_all`): with the gate
/// open, a missing tool still fails under CI and skips elsewhere.
pub fn network_tests_with(why: &str, tools: &[&str]) -> bool {
    network_tests(why) && have_all(tools)
}

/// The Debian package of each host tool the tests run, for the message when it is missing.
const PACKAGES: &[(&str, &str)] = &[
    ("apt-get", "apt"),
    ("bsdtar", "libarchive-tools"),
    ("cpio", "cpio"),
    ("curl", "curl"),
    ("debugfs", "e2fsprogs"),
    ("dpkg-deb", "dpkg"),
    ("e2fsck", "e2fsprogs"),
    ("fsck.fat", "dosfstools"),
    ("gzip", "gzip"),
    ("mcopy", "mtools"),
    ("mdir", "mtools"),
    ("python3", "python3-venv"),
    ("mkfs.fat", "dosfstools"),
    ("qemu-system-aarch64", "qemu-system-arm"),
    ("qemu-system-arm", "qemu-system-arm"),
    ("qemu-system-x86_64", "qemu-system-x86"),
    ("s6-svscan", "s6"),
    ("sfdisk", "fdisk"),
    ("ssh", "openssh-client"),
    ("ssh-keygen", "openssh-client"),
    ("syslinux", "syslinux"),
    ("tar", "tar"),
    ("unshare", "util-linux"),
    ("/usr/lib/execline/bin/execlineb", "execline"),
    ("/usr/bin/time", "time"),
];

fn debian_package(tool: &str) -> &'static str {
    PACKAGES
        .iter()
        .find(|(name, _)| *name == tool)
        .map(|(_, package)| *package)
        .unwrap_or_else(|| panic!("{tool}: add its Debian package to util::PACKAGES"))
}

/// True if `tool` is installed; see `have_all`.
pub fn have(tool: &str) -> bool {
    have_all(&[tool])
}

/// True if every tool is on PATH (or at the absolute path given). Under CI, which installs
/// them all, a missing one fails the test naming its Debian package; elsewhere it is a
/// printed skip.
pub fn have_all(tools: &[&str]) -> bool {
    let packages: Vec<&str> = tools.iter().map(|tool| debian_package(tool)).collect();
    let (missing, packages): (Vec<&str>, Vec<&str>) = tools
        .iter()
        .zip(packages)
        .filter(|(tool, _)| {
            !Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .output()
                .is_ok_and(|output| output.status.success())
        })
        .unzip();
    if missing.is_empty() {
        return true;
    }
    let (missing, packages) = (missing.join(", "), packages.join(" "));
    if under_ci() {
        panic!(
            "{missing} not installed, which CI requires: apt-get install {packages} (ci/install-packages and ci/install-qemu install them)"
        );
    }
    skip(&format!(
        "{missing} not installed (apt-get install {packages})"
    ));
    false
}

/// Runs a host tool with a C locale and UTC, returning stdout with runs of blanks folded.
pub fn tool(program: &str, args: &[&str], stdin: Option<&Path>) -> String {
    let mut command = Command::new(program);
    command.args(args).env("LC_ALL", "C").env("TZ", "UTC");
    if let Some(path) = stdin {
        command.stdin(fs::File::open(path).unwrap());
    }
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    fold(&String::from_utf8_lossy(&output.stdout))
}

pub fn fold(text: &str) -> String {
    text.lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// A path as `&str`, for argument lists.
pub fn s(path: &Path) -> &str {
    path.to_str().expect("test paths are UTF-8")
}

/// GNU cpio's `-itv --numeric-uid-gid` listing of a gzip-compressed archive, which is
/// first decompressed to `raw` (GNU cpio reads no compression itself).
pub fn gnu_cpio_listing(archive: &Path, raw: &Path) -> String {
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!("gzip -dc < '{}' > '{}'", s(archive), s(raw)))
        .status()
        .unwrap();
    assert!(status.success());
    tool("cpio", &["-itv", "--numeric-uid-gid", "--quiet"], Some(raw))
}

/// The package cache the network tests share, writable by the unprivileged kiln.
pub fn shared_cache() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("kiln-cache");
    fs::create_dir_all(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
    dir
}

/// Held by every test that boots QEMU, for the whole test: TCG on 2 CPUs gains nothing from
/// parallel boots and risks their timeouts. A test that fails holding it poisons it; the
/// next one takes it all the same, so one failure does not fail the boots after it.
pub fn one_boot_at_a_time() -> MutexGuard<'static, ()> {
    static BOOTS: Mutex<()> = Mutex::new(());
    BOOTS.lock().unwrap_or_else(PoisonError::into_inner)
}
