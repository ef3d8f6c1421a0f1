use std::fs;
use std::path::{Path, PathBuf};

use super::*;
use crate::init::options::LogUser;

fn board_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("board-configs")
}

/// A scratch directory for board files, removed when dropped.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let path = std::env::temp_dir().join(format!("kiln-config-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap();
        Dir(path)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, text).unwrap();
        path
    }

    /// The error of loading `text` as `b.toml`, with the directory shown as `DIR`.
    fn error(&self, text: &str) -> String {
        let path = self.write("b.toml", text);
        let err = Board::load(&path).expect_err(text);
        err.to_string()
            .replace(&self.0.display().to_string(), "DIR")
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// The smallest valid board, for the bad cases to break one thing each.
const MINIMAL: &str = "arch = \"x86_64\"\n[qemu]\nmachine = \"q35\"\nconsole = \"ttyS0\"\n";

/// The smallest board with a card: a boot and a root partition.
const X86_CARD: &str = "arch = \"x86_64\"\n[kernel]\npackage = \"linux-image-amd64\"\n[qemu]\nmachine = \"q35\"\nconsole = \"ttyS0\"\n[image]\n[[image.partitions]]\nlabel = \"BOOT\"\nfilesystem = \"fat32\"\ncontents = \"boot\"\nsize = \"64M\"\n[[image.partitions]]\nfilesystem = \"ext4\"\ncontents = \"root\"\n";

/// An Orange Pi-like armv7 card with this partition table, then `more`.
fn arm_card(table: &str, more: &str) -> String {
    format!(
        "arch = \"armv7\"\n[kernel]\npackage = \"linux-image-armmp\"\n[qemu]\nmachine = \"orangepi-pc\"\nconsole = \"ttyS0\"\n[image]\ntable = \"{table}\"\n[[image.partitions]]\nlabel = \"BOOT\"\nfilesystem = \"fat32\"\ncontents = \"boot\"\nsize = \"64M\"\n[[image.partitions]]\nfilesystem = \"ext4\"\ncontents = \"root\"\n{more}"
    )
}

/// Every shipped board loads and validates (a repository check).
#[test]
fn every_shipped_board_is_valid() {
    let mut names = Vec::new();
    for entry in fs::read_dir(board_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|ext| ext == "toml") {
            let board = Board::load(&path).unwrap_or_else(|err| panic!("{err}"));
            names.push(format!("{} {}", board.name, board.arch));
        }
    }
    names.sort();
    assert_eq!(
        names,
        vec![
            "cubieboard armv7",
            "orangepi-pc armv7",
            "orangepi-pc-net armv7",
            "qemu-aarch64 aarch64",
            "qemu-aarch64-net aarch64",
            "qemu-armv7 armv7",
            "qemu-x86_64 x86_64",
            "qemu-x86_64-net x86_64",
            "raspberrypi3-64 aarch64",
        ]
    );
}

#[test]
fn unknown_keys_name_file_line_and_key() {
    let dir = Dir::new("unknown");
    let unknown = dir.error(&format!("{MINIMAL}memroy = \"1G\"\n"));
    assert!(
        unknown.starts_with("DIR/b.toml: TOML parse error at line 5, column 1"),
        "{unknown}"
    );
    assert!(unknown.contains("unknown field `memroy`"), "{unknown}");
}

/// Board mistakes that `kiln config` finds before anything is downloaded: each names
/// the file and the key, and says what is wrong.
#[test]
fn bad_boards_are_refused_naming_file_and_key() {
    let dir = Dir::new("bad");
    dir.write("overlay/etc/x", "x");
    dir.write("svc-without-run/finish", "#!/bin/sh\n");
    dir.write("devices.txt", "/dev/ttyS c 660 0 5 4 64 4294967295 1 3\n");
    dir.write("wrap.txt", "/dev/x c 660 0 5 4 4294967295 0 1 2\n");
    let users = "[[users]]\nname = \"root\"\nuid = 0\ngid = 0\n";
    let cases: Vec<(String, &str)> = vec![
        (
            "arch = \"mips\"\n".to_string(),
            "DIR/b.toml: arch: unknown arch \"mips\": expected x86_64, aarch64 or armv7",
        ),
        (
            "[qemu]\nmachine = \"q35\"\nconsole = \"ttyS0\"\n".to_string(),
            "DIR/b.toml: arch: missing (x86_64, aarch64 or armv7)",
        ),
        (
            format!("name = \"../../x\"\n{MINIMAL}"),
            "DIR/b.toml: name: \"../../x\": a board name becomes file names",
        ),
        (
            format!("name = \"a b\"\n{MINIMAL}"),
            "DIR/b.toml: name: \"a b\": a board name",
        ),
        (
            format!("{MINIMAL}[init]\ntimestamp_style = 7\n"),
            "DIR/b.toml: [init] timestamp_style: \"7\": timestamp_style must be a number from 0 to 3",
        ),
        (
            format!("{MINIMAL}[init]\nbasedir = \"relative\"\n"),
            "DIR/b.toml: [init] basedir: \"relative\": basedir must be an absolute path",
        ),
        (
            format!("{MINIMAL}[init]\nexecline_bindir = \"/a b\"\n"),
            "DIR/b.toml: [init] execline_bindir: \"/a b\": execline_bindir must not contain whitespace",
        ),
        (
            format!("{MINIMAL}[init]\numask = \"0888\"\n"),
            "DIR/b.toml: [init] umask: \"0888\": initial_umask must be octal digits",
        ),
        (
            format!("{MINIMAL}[init]\ntmpfsdir = \"/etc/s6-linux-init/run\"\n"),
            "DIR/b.toml: [init] basedir, tmpfsdir: \"/etc/s6-linux-init\" and \"/etc/s6-linux-init/run\" overlap",
        ),
        (
            format!("{MINIMAL}[init]\nearly_getty = \"getty {{\"\n"),
            "DIR/b.toml: [init] early_getty: \"getty {\": unbalanced braces",
        ),
        (
            format!("{MINIMAL}[init]\nenv = [\"A/B=1\"]\n"),
            "DIR/b.toml: [init] env: \"A/B\": a variable name must not contain /",
        ),
        (
            format!("{MINIMAL}[init]\nenv = [\"A=x\\u0000y\"]\n"),
            "DIR/b.toml: init.env: contains a NUL byte",
        ),
        (
            format!("{MINIMAL}[init]\nlog_user = \"daemon\"\n{users}"),
            "DIR/b.toml: [init] log_user: \"daemon\" is not one of the board's [[users]] (note: add it there, or give UID:GID; the build host's users are never used)",
        ),
        (
            format!("{MINIMAL}[init]\nlog_user = \"70\"\n"),
            "DIR/b.toml: [init] log_user: \"70\" is not one of the board's [[users]]",
        ),
        (
            format!("{MINIMAL}[init]\nlog_user = \"a:b\"\n"),
            "DIR/b.toml: [init] log_user: \"a:b\": expected a user name, UID or UID:GID in decimal",
        ),
        (
            format!("{MINIMAL}{users}{users}"),
            "DIR/b.toml: [[users]] #2 name: \"root\" is declared twice",
        ),
        (
            format!(
                "{MINIMAL}[[users]]\nname = \"evil:x:0:0::/:/bin/sh\\nroot2\"\nuid = 5\ngid = 5\n"
            ),
            "DIR/b.toml: [[users]] #1 name: \"evil:x:0:0::/:/bin/sh\\nroot2\" is not an account name",
        ),
        (
            format!("{MINIMAL}[[users]]\nname = \"u\"\nuid = 5\ngid = 5\nhome = \"/home/u:x\"\n"),
            "DIR/b.toml: [[users]] #1 home: \"/home/u:x\": an absolute path without ':'",
        ),
        (
            format!("{MINIMAL}[[users]]\nname = \"u\"\nuid = -1\ngid = 5\n"),
            "DIR/b.toml: TOML parse error",
        ),
        (
            format!("{MINIMAL}{users}[[groups]]\nname = \"g\"\ngid = 5\nmembers = [\"nobody\"]\n"),
            "DIR/b.toml: [[groups]] #1 members: \"nobody\" is not one of the board's [[users]]",
        ),
        (
            format!(
                "{MINIMAL}[[groups]]\nname = \"g\"\ngid = 5\n[[groups]]\nname = \"g\"\ngid = 6\n"
            ),
            "DIR/b.toml: [[groups]] #2 name: \"g\" is declared twice",
        ),
        (
            format!("{MINIMAL}[[overlays]]\nsource = \"missing\"\n"),
            "DIR/b.toml: [[overlays]] #1 source: DIR/missing is not a directory",
        ),
        (
            format!("{MINIMAL}[[overlays]]\nsource = \"overlay\"\ndest = \"/a/../../b\"\n"),
            "DIR/b.toml: [[overlays]] #1 dest: \"/a/../../b\":",
        ),
        (
            format!(
                "{MINIMAL}[[overlays]]\nsource = \"overlay\"\nfiles.\"etc/x\" = {{ mode = \"0999\" }}\n"
            ),
            "DIR/b.toml: [[overlays]] #1 files.\"etc/x\" mode: \"0999\": give octal permission bits",
        ),
        (
            format!(
                "{MINIMAL}[[overlays]]\nsource = \"overlay\"\nfiles.\"etc/x\" = {{ mode = \"17777\" }}\n"
            ),
            "DIR/b.toml: [[overlays]] #1 files.\"etc/x\" mode: \"17777\"",
        ),
        (
            format!("devices = [\"missing.txt\"]\n{MINIMAL}"),
            "DIR/b.toml: devices: unable to read device table DIR/missing.txt",
        ),
        (
            format!("devices = [\"devices.txt\"]\n{MINIMAL}"),
            "DIR/b.toml: devices: DIR/devices.txt:1: the series start 4294967295, inc 1, count 3 runs past 2^32",
        ),
        (
            format!("devices = [\"wrap.txt\"]\n{MINIMAL}"),
            "DIR/b.toml: devices: DIR/wrap.txt:1: the series start 0, inc 1, count 2 runs past 2^32",
        ),
        (
            format!("{MINIMAL}[services.s]\ndir = \"svc-without-run\"\n"),
            "DIR/b.toml: [services.s] dir: DIR/svc-without-run has no run file",
        ),
        (
            format!("{MINIMAL}[services.s]\ndir = \"missing\"\n"),
            "DIR/b.toml: [services.s] dir: DIR/missing has no run file",
        ),
        (
            format!("{MINIMAL}[services.s]\nrun = \"x\"\nafter = [\"nope\"]\n"),
            "DIR/b.toml: [services.s] after: \"nope\" is not a declared service (note: the board declares s)",
        ),
        (
            format!(
                "{MINIMAL}[services.a]\nrun = \"x\"\nafter = [\"b\"]\n[services.b]\nrun = \"x\"\nafter = [\"a\"]\n"
            ),
            "DIR/b.toml: [services.a] after: a -> b -> a is a cycle",
        ),
        (
            format!("{MINIMAL}[services.s]\nrun = \"x\"\nuser = \"www\"\n"),
            "DIR/b.toml: [services.s] user: \"www\" is not one of the board's [[users]]",
        ),
        (
            format!("{MINIMAL}[services.s]\n"),
            "DIR/b.toml: [services.s]: give run = \"COMMAND LINE\" or dir",
        ),
        (
            format!("{MINIMAL}[services.\"a/b\"]\nrun = \"x\"\n"),
            "DIR/b.toml: [services.a/b]: \"a/b\" is not a service name",
        ),
        (
            format!("{MINIMAL}[services.s]\nrun = \"x\"\nenv = {{ \"A-B\" = \"1\" }}\n"),
            "DIR/b.toml: [services.s] env: \"A-B\" is not a variable name",
        ),
        (
            format!("{MINIMAL}[services.s]\nrun = \"x\"\noneshot = true\nlog = true\n"),
            "DIR/b.toml: [services.s] log: a oneshot's output goes to stage 2's",
        ),
        (
            format!("{MINIMAL}[services.s]\nrun = \"x\"\nlog_size = 10\n"),
            "DIR/b.toml: [services.s] log_size: 10: give 4096 to 16777216 bytes",
        ),
        (
            format!("{MINIMAL}[[users]]\nname = \"u\"\nuid = 5\ngid = 5\npassword = \"hunter2\"\n"),
            "DIR/b.toml: [[users]] #1 password: is not a crypt(3) hash; clear-text passwords are refused (note: make a hash with `openssl passwd -6`",
        ),
        (
            format!(
                "{MINIMAL}[[users]]\nname = \"u\"\nuid = 5\ngid = 5\nauthorized_keys = [\"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5\"]\n"
            ),
            "DIR/b.toml: [[users]] #1 authorized_keys #1: ssh-ed25519 key: its data is not a ssh-ed25519 key",
        ),
        (
            format!(
                "{MINIMAL}[[users]]\nname = \"u\"\nuid = 5\ngid = 5\nauthorized_keys = \"missing.pub\"\n"
            ),
            "DIR/b.toml: [[users]] #1 authorized_keys: unable to read DIR/missing.pub",
        ),
        (
            format!("{MINIMAL}[[users]]\nname = \"u\"\nuid = 5\ngid = 5\ngroups = [\"wheel\"]\n"),
            "DIR/b.toml: [[users]] #1 groups: \"wheel\" is not one of the board's [[groups]]",
        ),
        (
            format!("{MINIMAL}[init]\nlogin = \"auto\"\n"),
            "DIR/b.toml: [init] login: unknown login \"auto\": expected prompt or autologin",
        ),
        (
            format!("{MINIMAL}[init]\nlogin = \"autologin\"\n"),
            "DIR/b.toml: [init] login: autologin needs an early_getty that runs busybox getty",
        ),
        (
            format!("{MINIMAL}[network]\ninterfaces.eth0 = \"static\"\n"),
            "DIR/b.toml: [network] interfaces.eth0: \"static\": give \"dhcp\" or",
        ),
        (
            format!("{MINIMAL}[network]\ninterfaces.eth0 = {{ address = \"10.0.0.1\" }}\n"),
            "DIR/b.toml: [network] interfaces.eth0 address: \"10.0.0.1\": an IPv4 address with its prefix length",
        ),
        (
            format!(
                "{MINIMAL}[network]\ninterfaces.eth0 = {{ address = \"10.0.0.1/24\", gateway = \"x\" }}\n"
            ),
            "DIR/b.toml: [network] interfaces.eth0 gateway: \"x\": an IPv4 address",
        ),
        (
            format!("{MINIMAL}[network]\nhostname = \"a_b\"\n"),
            "DIR/b.toml: [network] hostname: \"a_b\": letters, digits and '-'",
        ),
        (
            format!("{MINIMAL}[network]\ninterfaces.eth0 = \"dhcp\"\ninterfaces.eth1 = \"dhcp\"\n"),
            "DIR/b.toml: [network] interfaces: at most one interface can use dhcp",
        ),
        (
            format!(
                "{MINIMAL}[network]\ninterfaces.eth0 = \"dhcp\"\n[services.network]\nrun = \"x\"\n"
            ),
            "DIR/b.toml: [services.network]: \"network\" is kiln's own service name",
        ),
        (
            format!("{MINIMAL}[ssh]\nserver = \"dropbear\"\n"),
            "DIR/b.toml: [ssh]: dropbear comes from Debian's dropbear-bin: add it to [packages] include",
        ),
        (
            format!("{MINIMAL}[ssh]\nserver = \"openssh\"\n"),
            "DIR/b.toml: [ssh] server: unknown server \"openssh\"",
        ),
        (
            format!(
                "{MINIMAL}[packages]\ninclude = [\"dropbear-bin\"]\n[ssh]\nserver = \"dropbear\"\nhost_keys = [\"missing\"]\n"
            ),
            "DIR/b.toml: [ssh] host_keys: DIR/missing: not a file",
        ),
        (
            format!("{MINIMAL}nic = \"a,b\"\n"),
            "DIR/b.toml: [qemu] nic: \"a,b\": a QEMU -device name",
        ),
        (
            format!("{MINIMAL}[kernel]\npackage = \"linux-image-amd64\"\npath = \"vmlinuz\"\n"),
            "DIR/b.toml: [kernel]: give package or path, not both",
        ),
        (
            format!("{MINIMAL}[kernel]\npath = \"vmlinuz\"\n"),
            "DIR/b.toml: [kernel] path: DIR/vmlinuz is not a file",
        ),
        (
            format!("{MINIMAL}[kernel]\ndtb = \"../x.dtb\"\n"),
            "DIR/b.toml: [kernel] dtb: \"../x.dtb\": a path under the kernel package's dtbs directory",
        ),
        (
            format!("{MINIMAL}[kernel]\nmodules = [\"a b\"]\n"),
            "DIR/b.toml: [kernel] modules: \"a b\" is not a module name",
        ),
        (
            "arch = \"x86_64\"\n[qemu]\nmachine = \"q35\"\nconsole = \"../tty\"\n".to_string(),
            "DIR/b.toml: [qemu] console: \"../tty\": a tty name",
        ),
        (
            format!("{MINIMAL}memory = \"lots\"\n"),
            "DIR/b.toml: [qemu] memory: \"lots\": give a size as QEMU's -m takes it",
        ),
        (
            format!("{MINIMAL}drive = \"usb\"\n"),
            "DIR/b.toml: [qemu] drive: unknown drive \"usb\": expected sd or virtio",
        ),
        (
            format!("{MINIMAL}[output]\nformats = [\"zip\"]\n"),
            "DIR/b.toml: [output] formats: unknown format \"zip\"",
        ),
        (
            format!("{MINIMAL}[packages.select]\ns6 = []\n"),
            "DIR/b.toml: [packages.select] s6: give at least one non-empty path glob",
        ),
        (
            format!(
                "{MINIMAL}[image]\n[[image.partitions]]\nfilesystem = \"ext4\"\ncontents = \"root\"\nstart = \"18446744073709551615\"\n"
            ),
            "DIR/b.toml: [[image.partitions]] #1 start: \"18446744073709551615\" is larger than 16T",
        ),
        (
            format!(
                "{MINIMAL}[image]\nsize = \"99999999999999999999\"\n[[image.partitions]]\nfilesystem = \"ext4\"\ncontents = \"root\"\n"
            ),
            "DIR/b.toml: [image] size: \"99999999999999999999\" is not a size",
        ),
        (
            format!(
                "{MINIMAL}[image]\nsize = \"64M\"\n[[image.partitions]]\nfilesystem = \"ext4\"\ncontents = \"root\"\nstart = \"16T\"\nsize = \"16T\"\n"
            ),
            "DIR/b.toml: [image]: [image] size 64M: the partitions need 32768G",
        ),
        (
            format!(
                "{MINIMAL}[image]\n[[image.partitions]]\nfilesystem = \"fat32\"\ncontents = \"boot\"\nfiles = [\"missing.txt\"]\n[[image.partitions]]\nfilesystem = \"ext4\"\ncontents = \"root\"\n"
            ),
            "DIR/b.toml: [[image.partitions]] BOOT files: DIR/missing.txt does not exist",
        ),
        (
            format!("{X86_CARD}[boot]\nfirmware = [\"coreboot\"]\n"),
            "DIR/b.toml: [boot] firmware: unknown firmware \"coreboot\": one of bios, uefi, u-boot, pi",
        ),
        (
            format!("{X86_CARD}[boot]\nfirmware = [\"bios\", \"bios\"]\n"),
            "DIR/b.toml: [boot] firmware: \"bios\" is named twice",
        ),
        (
            format!("{X86_CARD}[boot]\nfirmware = [\"u-boot\"]\n"),
            "DIR/b.toml: [boot] firmware: \"u-boot\" does not fit a x86_64 board",
        ),
        (
            format!("{MINIMAL}[boot]\nfirmware = [\"bios\"]\n"),
            "DIR/b.toml: [boot] firmware: the firmware reads the card's boot partition",
        ),
        (
            format!("{X86_CARD}[boot]\nfirmware = [\"bios\"]\n[boot.pi]\n"),
            "DIR/b.toml: [boot.pi]: given, but [boot] firmware does not name \"pi\"",
        ),
        (
            arm_card("mbr", "[boot]\nfirmware = [\"bios\"]\n"),
            "DIR/b.toml: [boot] firmware: \"bios\" does not fit a armv7 board",
        ),
        (
            arm_card("mbr", "[boot]\nfirmware = [\"u-boot\"]\n"),
            "DIR/b.toml: [boot.uboot]: missing: on the orangepi-pc machine U-Boot lives on the card",
        ),
        (
            arm_card(
                "gpt",
                "[boot]\nfirmware = [\"u-boot\"]\n[boot.uboot]\noffset = 8192\nfile = \"u-boot-sunxi:usr/lib/u-boot/x/u-boot-sunxi-with-spl.bin\"\n",
            ),
            "DIR/b.toml: [boot.uboot] offset: 8192: a GPT's header and entries fill bytes 512 to 17407",
        ),
        (
            arm_card(
                "mbr",
                "[boot]\nfirmware = [\"u-boot\"]\n[boot.uboot]\noffset = 8192\ndefconfig = \"orangepi pc\"\n",
            ),
            "DIR/b.toml: [boot.uboot] defconfig: \"orangepi pc\": a file name of U-Boot's configs/",
        ),
        (
            arm_card(
                "mbr",
                "[boot]\nfirmware = [\"u-boot\"]\n[boot.uboot]\noffset = 8192\ndefconfig = \"a_defconfig\"\nfile = \"x.bin\"\n",
            ),
            "DIR/b.toml: [boot.uboot]: give file or defconfig, not both",
        ),
        (
            arm_card(
                "mbr",
                "[boot]\nfirmware = [\"u-boot\"]\n[boot.uboot]\noffset = 2097152\ndefconfig = \"a_defconfig\"\n",
            ),
            "DIR/b.toml: [boot.uboot] offset: 2097152: at or past the first partition's start (1048576)",
        ),
        (
            arm_card(
                "mbr",
                "[boot]\nfirmware = [\"u-boot\"]\n[boot.uboot]\noffset = 8192\ndefconfig = \"a_defconfig\"\nkernel_window = \"big\"\n",
            ),
            "DIR/b.toml: [boot.uboot] kernel_window: \"big\" is not a size",
        ),
        (
            format!("{MINIMAL}[packages]\ncomponents = [\"main\"]\n"),
            "DIR/b.toml: [packages] components: \"main\": an archive component besides main",
        ),
        (
            "inherit = \"b.toml\"\n".to_string(),
            "DIR/b.toml: inherit chain is longer than 8 files (a loop?)",
        ),
        (
            "inherit = \"none.toml\"\n".to_string(),
            "DIR/none.toml: unable to read board config",
        ),
    ];
    assert!(cases.len() >= 20);
    let mut failures = Vec::new();
    for (text, want) in &cases {
        let got = dir.error(text);
        if !got.starts_with(want) {
            failures.push(format!("board:\n{text}\n  got:  {got}\n  want: {want}..."));
        }
        let code = crate::error::exit_code(
            &anyhow::Error::new(Board::load(&dir.0.join("b.toml")).unwrap_err()),
            &[classify],
        );
        assert_eq!(code, crate::error::EXIT_INPUT, "{text}");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// README's board-config reference names every key of every raw table.
#[test]
fn readme_mentions_every_board_key() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = fs::read_to_string(root.join("README.md")).unwrap();
    let source = fs::read_to_string(root.join("src/config/raw.rs")).unwrap();
    let keys: Vec<&str> = source
        .lines()
        .filter_map(|line| line.trim().strip_prefix("pub "))
        .filter_map(|rest| rest.split_once(':').map(|(key, _)| key))
        .filter(|key| !key.contains(' '))
        .map(|key| key.trim_end_matches('_'))
        .collect();
    assert!(keys.len() > 30, "{keys:?}");
    for key in keys {
        let named = [
            format!("`{key}`"),
            format!("`[{key}]`"),
            format!("`[[{key}]]`"),
        ]
        .iter()
        .any(|form| readme.contains(form.as_str()));
        assert!(named, "README's board-config reference lacks `{key}`");
    }
}

#[test]
fn inherit_merges_tables() {
    let board = Board::load(&board_dir().join("raspberrypi3-64.toml")).unwrap();
    let parent = Board::load(&board_dir().join("qemu-aarch64.toml")).unwrap();
    assert_eq!(board.qemu.machine, "raspi3b");
    // Tables merge key by key: the child's early_getty replaces the parent's, the
    // rest of [init] is inherited.
    assert_eq!(
        board.init.early_getty.as_deref(),
        Some(&b"getty -L 115200 console vt100"[..])
    );
    assert_eq!(board.init.execline_bindir, parent.init.execline_bindir);
    assert_eq!(board.log_ids, (70, 70));
    // [packages] merges too: the child adds components, the parent's lists stay.
    assert_eq!(board.packages.include, parent.packages.include);
    assert_eq!(board.packages.select, parent.packages.select);
    assert_eq!(board.packages.components, ["non-free-firmware"]);
    assert!(parent.packages.components.is_empty());
}

/// A parent in another directory keeps its own relative paths (they used to resolve
/// against the child's directory).
#[test]
fn inherited_paths_resolve_against_the_declaring_file() {
    let dir = Dir::new("inherit");
    dir.write("parent/overlay/etc/x", "x");
    dir.write("parent/svc/run", "#!/bin/sh\n");
    dir.write("parent/devices.txt", "/dev/null c 666 0 0 1 3 - - -\n");
    dir.write(
        "parent/p.toml",
        &format!(
            "devices = [\"devices.txt\"]\n{MINIMAL}[[overlays]]\nsource = \"overlay\"\n[services.svc]\ndir = \"svc\"\n"
        ),
    );
    dir.write("child/own/etc/y", "y");
    let child = dir.write("child/c.toml", "inherit = \"../parent/p.toml\"\n");
    let board = Board::load(&child).unwrap();
    let parent = dir.0.join("parent");
    // Joined as written (`child/../parent/...`): the same file the parent names.
    let same = |got: &Path, want: PathBuf| {
        assert_eq!(got.canonicalize().unwrap(), want.canonicalize().unwrap());
    };
    assert_eq!(board.name, "c");
    same(&board.overlays[0].source, parent.join("overlay"));
    same(&board.devices[0].path, parent.join("devices.txt"));
    let services::Run::Dir(svc) = &board.services[0].what else {
        panic!("{:?}", board.services[0]);
    };
    same(svc, parent.join("svc"));
    assert_eq!(board.services[0].name, "svc");
    // The child's own paths resolve against the child.
    let child = dir.write(
        "child/c.toml",
        "inherit = \"../parent/p.toml\"\n[[overlays]]\nsource = \"own\"\n",
    );
    let board = Board::load(&child).unwrap();
    assert_eq!(board.overlays.len(), 1);
    assert_eq!(board.overlays[0].source, dir.0.join("child").join("own"));
}

#[test]
fn nobody_is_the_log_user_without_users() {
    let dir = Dir::new("nobody");
    for init in ["", "[init]\nlog_user = \"nobody\"\n"] {
        let path = dir.write("b.toml", &format!("{MINIMAL}{init}"));
        assert_eq!(
            Board::load(&path).unwrap().log_ids,
            (65534, 65534),
            "{init}"
        );
    }
}

#[test]
fn init_dirs_cannot_take_the_fixed_files() {
    let dir = Dir::new("fixed");
    for (key, value) in [
        ("tmpfsdir", "/sbin/init"),
        ("basedir", "/dev/null/x"),
        ("tmpfsdir", "/init"),
    ] {
        let err = dir.error(&format!("{MINIMAL}[init]\n{key} = \"{value}\"\n"));
        assert!(
            err.starts_with(&format!(
                "DIR/b.toml: [init] {key}: \"{value}\": {key} must not be"
            )),
            "{err}"
        );
    }
}

#[test]
fn init_options_are_typed() {
    let dir = Dir::new("typed");
    let path = dir.write(
        "b.toml",
        &format!(
            "{MINIMAL}[init]\nlog_user = \"log\"\nredirect_stage2 = true\numask = \"027\"\nenv = [\"A=1\", \"B\"]\n[[users]]\nname = \"log\"\nuid = 70\ngid = 71\n"
        ),
    );
    let board = Board::load(&path).unwrap();
    assert_eq!(board.log_ids, (70, 71));
    assert!(board.init.redirect_stage2);
    assert_eq!(board.init.umask, 0o027);
    assert_eq!(board.init.log_user, LogUser::Name(b"log".to_vec()),);
    assert_eq!(
        board
            .describe()
            .lines()
            .find(|line| line.starts_with("init ")),
        Some("init             \"-u\" \"log\" \"-m\" \"027\" \"-e\" \"A=1\" \"-e\" \"B\" \"-r\"")
    );
}

/// `login = "autologin"` runs busybox getty without its prompt and with kiln's autologin.
#[test]
fn autologin_rewrites_the_early_getty() {
    let dir = Dir::new("autologin");
    let path = dir.write(
        "b.toml",
        &format!("{MINIMAL}[init]\nearly_getty = \"getty -L 115200 ttyS0 vt100\"\nlogin = \"autologin\"\n"),
    );
    let board = Board::load(&path).unwrap();
    assert!(board.autologin);
    assert_eq!(
        board.init.early_getty.as_deref(),
        Some(&b"getty -n -l /etc/kiln/autologin -L 115200 ttyS0 vt100"[..])
    );
}

#[test]
fn supervisor_is_typed_and_refuses_what_only_s6_can_do() {
    let dir = Dir::new("supervisor");
    let path = dir.write(
        "b.toml",
        &format!("{MINIMAL}[init]\nsupervisor = \"daemontools\"\n"),
    );
    let board = Board::load(&path).unwrap();
    assert_eq!(
        board.init.supervisor,
        crate::init::options::Supervisor::Daemontools
    );
    assert!(
        dir.error(&format!("{MINIMAL}[init]\nsupervisor = \"sysv\"\n"))
            .contains("[init] supervisor: \"sysv\": supervisor must be s6, runit or daemontools"),
    );
    let err = dir.error(&format!(
        "{MINIMAL}[init]\nsupervisor = \"runit\"\n[services.a]\nrun = \"exec sleep 1\"\nnotification_fd = 3\n"
    ));
    assert!(
        err.contains("[init] supervisor: runit: [services.a] has a notification_fd"),
        "{err}"
    );
    assert!(
        dir.error(&format!(
            "{MINIMAL}[init]\nsupervisor = \"runit\"\ntimestamp_style = 3\n"
        ))
        .contains("[init] timestamp_style: \"3\": svlogd cannot write"),
    );
}
