//! Booting images on QEMU and deciding pass or fail from the serial console.
//!
//! `command` is pure: the board and the artifacts give the QEMU argv (golden-tested per
//! board). `run` spawns QEMU, streams the console to a log file (and to the terminal),
//! and watches it: QEMU exits 0 even after a kernel panic, so the verdict comes only from
//! what the console said. KVM is not assumed: TCG unless `--accel` says otherwise.

use std::ffi::OsString;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::arch::Arch;
use crate::config::{Board, Drive};
use crate::tree::{Kind, Node};

/// What QEMU boots.
pub struct Artifacts {
    pub kernel: PathBuf,
    pub initrd: Option<PathBuf>,
    pub dtb: Option<PathBuf>,
    /// The kernel command line instead of the board's (a card's cmdline.txt).
    pub cmdline: Option<String>,
    /// A card or disk image, attached as the board's drive.
    pub disk: Option<(PathBuf, Drive)>,
}

/// The boot files of a card or disk image made by `kiln image`: the first FAT partition
/// with a cmdline.txt gives the kernel (`vmlinuz`), `initrd.img`, the board's dtb (by
/// its base name) and the command line, copied out next to the other boot files.
pub fn from_card(board: &Board, image: &Path, out_dir: &Path) -> Result<Artifacts> {
    use crate::archive::image::{fat_extract, read_table};
    std::fs::create_dir_all(out_dir)
        .with_context(|| format!("unable to create {}", out_dir.display()))?;
    let dest = |name: &str| out_dir.join(format!("{}.card-{name}", board.name));
    let extents = read_table(image)?;
    let boot = extents
        .iter()
        .find(|extent| fat_extract(image, **extent, "cmdline.txt", &dest("cmdline.txt")).is_ok())
        .copied()
        .ok_or_else(|| {
            crate::UsageError(format!(
                "{}: no FAT partition with cmdline.txt (is it a kiln image with a boot partition?)",
                image.display()
            ))
        })?;
    let cmdline = std::fs::read_to_string(dest("cmdline.txt"))
        .with_context(|| format!("unable to read {}", dest("cmdline.txt").display()))?;
    fat_extract(image, boot, "vmlinuz", &dest("vmlinuz"))?;
    fat_extract(image, boot, "initrd.img", &dest("initrd.img"))?;
    let dtb = match &board.dtb {
        Some(name) => {
            let base = name.rsplit('/').next().unwrap_or(name);
            fat_extract(image, boot, base, &dest(base))?;
            Some(dest(base))
        }
        None => None,
    };
    Ok(Artifacts {
        kernel: dest("vmlinuz"),
        initrd: Some(dest("initrd.img")),
        dtb,
        cmdline: Some(cmdline.trim().to_string()),
        disk: Some((image.to_path_buf(), board.drive)),
    })
}

/// The QEMU program for an arch.
pub fn qemu_binary(arch: Arch) -> &'static str {
    match arch {
        Arch::X86_64 => "qemu-system-x86_64",
        Arch::Aarch64 => "qemu-system-aarch64",
        Arch::Armv7 => "qemu-system-arm",
    }
}

/// The Debian package that provides it.
pub fn qemu_package(arch: Arch) -> &'static str {
    match arch {
        Arch::X86_64 => "qemu-system-x86",
        Arch::Aarch64 | Arch::Armv7 => "qemu-system-arm",
    }
}

/// The QEMU command line: machine, cpu, memory, serial console on stdio, no reboot (so a
/// reboot or a panic with `panic=-1` ends QEMU), no default NIC (its option ROM is not
/// installed without recommends), kernel, initrd, dtb, and the kernel command line.
pub fn command(
    board: &Board,
    artifacts: &Artifacts,
    append: Option<&str>,
    accel: &str,
) -> Vec<OsString> {
    let mut argv: Vec<OsString> = vec![qemu_binary(board.arch).into()];
    let mut push = |items: &[&str]| argv.extend(items.iter().map(OsString::from));
    push(&["-M", &board.qemu_machine]);
    if let Some(cpu) = &board.qemu_cpu {
        push(&["-cpu", cpu]);
    }
    push(&[
        "-m",
        &board.qemu_memory,
        "-nographic",
        "-no-reboot",
        "-nic",
        "none",
    ]);
    if !board.qemu_extra.iter().any(|arg| arg == "-accel") {
        push(&["-accel", accel]);
    }
    let extra: Vec<&str> = board.qemu_extra.iter().map(String::as_str).collect();
    push(&extra);
    argv.push("-kernel".into());
    argv.push(artifacts.kernel.clone().into());
    if let Some(initrd) = &artifacts.initrd {
        argv.push("-initrd".into());
        argv.push(initrd.clone().into());
    }
    if let Some(dtb) = &artifacts.dtb {
        argv.push("-dtb".into());
        argv.push(dtb.clone().into());
    }
    if let Some((disk, drive)) = &artifacts.disk {
        // QEMU's option syntax doubles a comma inside a value.
        let file = disk.display().to_string().replace(',', ",,");
        let interface = match drive {
            Drive::Sd => "sd",
            Drive::Virtio => "virtio",
        };
        argv.push("-drive".into());
        argv.push(format!("file={file},if={interface},format=raw").into());
    }
    let mut cmdline = artifacts
        .cmdline
        .clone()
        .unwrap_or_else(|| board.cmdline.clone());
    if !cmdline
        .split_whitespace()
        .any(|word| word.starts_with("panic="))
    {
        cmdline.push_str(" panic=-1");
    }
    if let Some(append) = append {
        cmdline.push(' ');
        cmdline.push_str(append);
    }
    argv.push("-append".into());
    argv.push(cmdline.into());
    argv
}

/// Writes the kernel (and the board's dtb) out of the fetched kernel package.
pub fn kernel_from_package(
    board: &Board,
    deb: &Path,
    out_dir: &Path,
) -> Result<(PathBuf, Option<PathBuf>)> {
    let package = crate::deb::read_cached(deb)?;
    let find = |wanted: &dyn Fn(&str) -> bool| {
        package
            .data
            .iter()
            .find(|(path, node)| matches!(node.kind, Kind::File(_)) && wanted(path.as_str()))
            .map(|(path, node)| (path.clone(), node.clone()))
    };
    let Some((kernel_path, kernel)) = find(&|path| path.starts_with("boot/vmlinuz-")) else {
        bail!("{}: no boot/vmlinuz-* in the kernel package", deb.display());
    };
    std::fs::create_dir_all(out_dir)
        .with_context(|| format!("unable to create {}", out_dir.display()))?;
    let save = |node: &Node, name: &str| -> Result<PathBuf> {
        let Kind::File(content) = &node.kind else {
            unreachable!("found as a file");
        };
        let dest = out_dir.join(name);
        let bytes = content
            .read_all()
            .with_context(|| format!("unable to read {}", content.describe()))?;
        let temp = crate::archive::TempFile::create(&dest)?;
        std::fs::write(&temp.path, bytes)
            .with_context(|| format!("unable to write {}", temp.path.display()))?;
        temp.commit(&dest)?;
        Ok(dest)
    };
    let kernel = save(&kernel, &format!("{}.kernel", board.name))?;
    let dtb = match &board.dtb {
        None => None,
        Some(dtb) => {
            let Some((_, node)) = find(&|path| {
                path.starts_with("usr/lib/linux-image-") && path.ends_with(&format!("/{dtb}"))
            }) else {
                bail!(
                    "{}: [kernel] dtb: {dtb} is not in {} (from {})",
                    board.file.display(),
                    deb.display(),
                    kernel_path
                );
            };
            Some(save(&node, &format!("{}.dtb", board.name))?)
        }
    };
    Ok((kernel, dtb))
}

/// What the console must show.
pub struct Expectations {
    /// Every one must appear somewhere in a console line.
    pub markers: Vec<String>,
    /// Also require a clean power-off, reboot or halt after the markers.
    pub until_poweroff: bool,
    pub timeout: Duration,
    /// Press ctrl-alt-del through the QEMU monitor (at this socket) once this text
    /// appears on the console.
    pub ctrl_alt_del: Option<(String, PathBuf)>,
}

/// The verdict, with the evidence.
pub struct Outcome {
    pub passed: bool,
    pub reason: String,
    pub tail: Vec<String>,
    /// Every console line with a `PROBE ` report, for `--check`.
    pub probe_lines: Vec<String>,
    /// (phase, seconds since launch) in the order seen.
    pub timings: Vec<(String, f64)>,
    /// Seconds from launch to the first time each marker appeared.
    pub marker_times: Vec<(String, f64)>,
}

const PANIC: &str = "Kernel panic - not syncing";
const ENDINGS: [&str; 3] = [
    "reboot: Power down",
    "reboot: Restarting system",
    "reboot: System halted",
];
const PHASES: [(&str, &str); 4] = [
    ("Run /init as init process", "kernel runs /init"),
    ("s6-linux-init: stage 1", "stage 1 (before s6-svscan)"),
    ("rc.init: stage 2 done", "stage 2 done"),
    ("rc.shutdown:", "stage 3"),
];

/// Runs QEMU, watching the console. `echo` copies the console to stdout as it comes.
pub fn run(argv: &[OsString], log: &Path, expect: &Expectations, echo: bool) -> Result<Outcome> {
    let mut child = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("unable to run {}", argv[0].to_string_lossy()))?;
    let start = Instant::now();
    let mut log_file =
        File::create(log).with_context(|| format!("unable to create {}", log.display()))?;
    let (lines_tx, lines) = mpsc::channel::<String>();
    let stdout = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut input = BufReader::new(stdout);
        let mut line = Vec::new();
        loop {
            line.clear();
            match input.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    let text = String::from_utf8_lossy(&line)
                        .trim_end_matches(['\r', '\n'])
                        .to_string();
                    if lines_tx.send(text).is_err() {
                        return;
                    }
                }
            }
        }
    });
    let mut stderr = child.stderr.take().expect("piped");
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        // Best effort: QEMU's own complaints, reported if it fails.
        let _ = stderr.read_to_string(&mut text);
        text
    });

    let mut tail: Vec<String> = Vec::new();
    let mut probe_lines: Vec<String> = Vec::new();
    let mut timings = Vec::new();
    let mut marker_times: Vec<(String, f64)> = Vec::new();
    let mut verdict: Option<(bool, String)> = None;
    let mut ended = false;
    let deadline = start + expect.timeout;
    loop {
        let now = Instant::now();
        if now >= deadline {
            verdict = Some((
                false,
                format!("timeout: no verdict after {} s", expect.timeout.as_secs()),
            ));
            break;
        }
        let line = match lines.recv_timeout(deadline - now) {
            Ok(line) => line,
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        let seconds = start.elapsed().as_secs_f64();
        let _ = writeln!(log_file, "{line}");
        if echo {
            println!("{line}");
        }
        if line.contains("PROBE ") {
            probe_lines.push(line.clone());
        }
        tail.push(line.clone());
        if tail.len() > 25 {
            tail.remove(0);
        }
        for (needle, phase) in PHASES {
            if line.contains(needle)
                && !timings
                    .iter()
                    .any(|(seen, _): &(String, f64)| seen == phase)
            {
                timings.push((phase.to_string(), seconds));
            }
        }
        for marker in &expect.markers {
            if line.contains(marker.as_str())
                && !marker_times.iter().any(|(seen, _)| seen == marker)
            {
                marker_times.push((marker.clone(), seconds));
            }
        }
        if let Some((trigger, socket)) = &expect.ctrl_alt_del {
            if line.contains(trigger.as_str()) {
                timings.push(("ctrl-alt-del sent".to_string(), seconds));
                send_monitor(socket, "sendkey ctrl-alt-delete")?;
            }
        }
        if line.contains(PANIC) {
            let why = if line.contains("Attempted to kill init") {
                "pid 1 died (kernel panic: Attempted to kill init)"
            } else {
                "kernel panic"
            };
            verdict = Some((false, why.to_string()));
            break;
        }
        let all_markers = marker_times.len() == expect.markers.len();
        if let Some(ending) = ENDINGS.iter().find(|ending| line.contains(**ending)) {
            timings.push(("QEMU told to stop".to_string(), seconds));
            ended = true;
            verdict = Some(if all_markers {
                (true, format!("all markers seen, then \"{ending}\""))
            } else {
                (
                    false,
                    format!(
                        "\"{ending}\" before the markers {}",
                        missing(expect, &marker_times)
                    ),
                )
            });
            break;
        }
        if all_markers && !expect.until_poweroff {
            verdict = Some((true, "all markers seen".to_string()));
            break;
        }
    }
    // A halted guest keeps QEMU running; a passed or failed verdict ends it either way.
    if ended {
        let grace = Instant::now() + Duration::from_secs(3);
        while Instant::now() < grace && child.try_wait().ok().flatten().is_none() {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    if child.try_wait().ok().flatten().is_none() {
        // Already exited between the check and the kill is fine.
        let _ = child.kill();
    }
    let status = child.wait().context("unable to wait for QEMU")?;
    let _ = reader.join();
    let qemu_errors = errors.join().unwrap_or_default();
    let (passed, reason) = verdict.unwrap_or_else(|| {
        let code = status
            .code()
            .map_or("a signal".to_string(), |code| code.to_string());
        let markers = if marker_times.len() == expect.markers.len() {
            String::new()
        } else {
            format!(
                ", markers {} never appeared",
                missing(expect, &marker_times)
            )
        };
        (
            false,
            format!(
                "QEMU exited ({code}) without a clean power-off{markers}; QEMU said: {}",
                qemu_errors.trim()
            ),
        )
    });
    Ok(Outcome {
        passed,
        reason,
        tail,
        probe_lines,
        timings,
        marker_times,
    })
}

/// One command to QEMU's human monitor on a Unix socket.
fn send_monitor(socket: &Path, command: &str) -> Result<()> {
    let mut stream = std::os::unix::net::UnixStream::connect(socket).with_context(|| {
        format!(
            "unable to connect to the QEMU monitor at {}",
            socket.display()
        )
    })?;
    stream
        .write_all(format!("{command}\n").as_bytes())
        .with_context(|| format!("unable to send {command:?} to the QEMU monitor"))?;
    // Give the monitor a moment to act before the socket closes.
    std::thread::sleep(Duration::from_millis(200));
    Ok(())
}

fn missing(expect: &Expectations, seen: &[(String, f64)]) -> String {
    let missing: Vec<String> = expect
        .markers
        .iter()
        .filter(|marker| !seen.iter().any(|(found, _)| found == *marker))
        .map(|marker| format!("{marker:?}"))
        .collect();
    missing.join(", ")
}

/// The command line as a shell would take it, to reproduce a failure by hand.
pub fn shell_quoted(argv: &[OsString]) -> String {
    argv.iter()
        .map(|arg| {
            let text = arg.to_string_lossy();
            if !text.is_empty()
                && text
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_./=,:+@%".contains(&b))
            {
                text.into_owned()
            } else {
                format!("'{}'", text.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `KILN_TIMEOUT_SCALE` multiplies every boot timeout, for slow runners.
pub fn scaled(seconds: u64) -> Duration {
    let scale = std::env::var("KILN_TIMEOUT_SCALE")
        .ok()
        .and_then(|text| text.parse::<f64>().ok())
        .filter(|scale| *scale > 0.0)
        .unwrap_or(1.0);
    Duration::from_secs_f64(seconds as f64 * scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The argv of every shipped board against `tests/data/qemu/<board>.args`.
    #[test]
    fn qemu_command_lines_match_their_goldens() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        for name in [
            "qemu-x86_64",
            "qemu-aarch64",
            "qemu-armv7",
            "raspberrypi3-64",
            "orangepi-pc",
        ] {
            let board = Board::load(&root.join(format!("board-configs/{name}.toml"))).unwrap();
            let mut artifacts = Artifacts {
                kernel: PathBuf::from("KERNEL"),
                initrd: Some(PathBuf::from("INITRD")),
                dtb: board.dtb.as_ref().map(|_| PathBuf::from("DTB")),
                cmdline: None,
                disk: None,
            };
            let text = |artifacts: &Artifacts| {
                command(&board, artifacts, None, "tcg")
                    .iter()
                    .map(|arg| arg.to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join("\n")
                    + "\n"
            };
            expect_test::expect_file![root.join(format!("tests/data/qemu/{name}.args"))]
                .assert_eq(&text(&artifacts));
            // Booting the card: its cmdline.txt and the image as the board's drive.
            artifacts.cmdline = Some("CMDLINE.TXT".to_string());
            artifacts.disk = Some((PathBuf::from("out/a,b.img"), board.drive));
            expect_test::expect_file![root.join(format!("tests/data/qemu/{name}.disk.args"))]
                .assert_eq(&text(&artifacts));
        }
    }

    #[test]
    fn quoting_for_a_shell() {
        let argv: Vec<OsString> = vec![
            "qemu".into(),
            "-append".into(),
            "console=ttyS0 panic=-1".into(),
            "it's".into(),
        ];
        assert_eq!(
            shell_quoted(&argv),
            "qemu -append 'console=ttyS0 panic=-1' 'it'\\''s'"
        );
    }
}

/// kiln's in-guest probe, for `kiln boot --check`: the same service and stage 2 wrapper
/// the probe test boards use, fitted to the board (its tmpfsdir, stage 2 and `-e`
/// variables).
pub mod probe {
    use std::fmt::Write as _;

    use crate::init::Config;

    const SERVICE: &str = include_str!("../tests/data/boards/probe/services/probe/run");
    const STAGE2: &str = include_str!("../tests/data/boards/probe/overlay/etc/probe-stage2");
    /// Where the wrapper goes in the image; the maker's `-2` points here in check mode.
    pub const STAGE2_PATH: &str = "/etc/kiln-probe-stage2";
    pub const SERVICE_PATH: &str = "etc/s6/services/kiln-probe/run";

    /// `'...'` for sh.
    fn sh_quote(text: &str) -> String {
        format!("'{}'", text.replace('\'', "'\\''"))
    }

    fn is_identifier(name: &str) -> bool {
        let mut chars = name.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    }

    /// The probe service's run script for this init.
    pub fn service(config: &Config) -> String {
        SERVICE
            .replacen(
                "\nT=/run\n",
                &format!("\nT={}\n", sh_quote(&config.tmpfsdir)),
                1,
            )
            .replacen(
                "\nB=/etc/s6-linux-init/current\n",
                &format!("\nB={}\n", sh_quote(&config.basedir)),
                1,
            )
    }

    /// The stage 2 wrapper: records what stage 2 found, then execs the board's stage 2.
    pub fn stage2(config: &Config, original: &[u8]) -> String {
        let mut env_lines = String::new();
        for (name, _) in &config.env {
            if is_identifier(name) {
                let _ = writeln!(
                    env_lines,
                    "    if [ \"${{{name}+x}}\" = x ]; then echo \"PROBE env {name}=[${name}]\"; else echo \"PROBE env {name} unset\"; fi"
                );
            }
        }
        let original = sh_quote(&String::from_utf8_lossy(original));
        STAGE2
            .replacen(
                "\nT=/run\n",
                &format!("\nT={}\n", sh_quote(&config.tmpfsdir)),
                1,
            )
            .replace("    echo \"PROBE stage2-env=[$KILN_E]\"\n", &env_lines)
            .replace("/etc/rc.init", &original)
    }

    /// What the probe must also report on a card or disk boot: `/` is the ext4 root
    /// partition with this label, and its own nodes (under the devtmpfs) are as built.
    pub fn expected_root(config: &Config, label: &str) -> Vec<(String, String)> {
        let owner = format!("{}:{}", config.log_uid, config.log_gid);
        vec![
            ("root-fs".to_string(), "ext4".to_string()),
            ("root-label".to_string(), label.to_string()),
            ("root-console".to_string(), "c 0:0 5,1".to_string()),
            ("root-null".to_string(), "crw-rw-rw- 0:0 1,3".to_string()),
            ("root-fifo".to_string(), "prw------- 0:0".to_string()),
            ("root-logs".to_string(), format!("drwx--S--- {owner}")),
        ]
    }

    /// What the probe must report for this init on a board whose console is `console`:
    /// (line prefix, expected rest).
    pub fn expected(config: &Config, console: &str) -> Vec<(String, String)> {
        let t = &config.tmpfsdir;
        let mut expected = vec![
            ("pid1".to_string(), "s6-svscan".to_string()),
            ("pid1-cmdline".to_string(), "s6-svscan -X3 -t0 ".to_string()),
            ("pid1-cwd".to_string(), format!("{t}/service")),
            ("run-fs".to_string(), "tmpfs".to_string()),
            ("fifo".to_string(), "prw------- 0:0".to_string()),
            (
                "logger".to_string(),
                format!(
                    "{}:{} groups=0 stdin={t}/service/s6-svscan-log/fifo",
                    config.log_uid, config.log_gid
                ),
            ),
            ("stage2-umask".to_string(), format!("{:04o}", config.umask)),
            ("stage2-proc".to_string(), "absent".to_string()),
            ("restarted".to_string(), "yes".to_string()),
            (
                "stage2-in-log".to_string(),
                if config.redirect_stage2 { "1" } else { "0" }.to_string(),
            ),
            (
                "log-stamp".to_string(),
                match config.timestamp_style {
                    0 => "none",
                    1 => "tai64n",
                    2 => "iso",
                    _ => "tai64n+iso",
                }
                .to_string(),
            ),
        ];
        if !config.env.iter().any(|(name, _)| name == "PATH") {
            expected.push((
                "stage2-path".to_string(),
                String::from_utf8_lossy(&config.path).into_owned(),
            ));
        }
        for (name, value) in &config.env {
            if !is_identifier(name) || value.as_ref().is_some_and(|value| value.contains(&b'\n')) {
                continue;
            }
            match value {
                Some(value) => expected.push((
                    format!("env {name}"),
                    format!("[{}]", String::from_utf8_lossy(value)),
                )),
                None => expected.push((format!("env {name} unset"), String::new())),
            }
        }
        if let Some(getty) = &config.early_getty {
            expected.push(("getty".to_string(), "true".to_string()));
            // A getty on the board's console has it open once it runs.
            if String::from_utf8_lossy(getty)
                .split_whitespace()
                .any(|word| word == console)
            {
                expected.push(("getty-tty".to_string(), format!("/dev/{console}")));
            }
        }
        expected
    }

    /// Compares the console's PROBE lines with `expected`; one row per check.
    pub fn compare(
        expected: &[(String, String)],
        console: &[String],
    ) -> Vec<(String, String, String, bool)> {
        expected
            .iter()
            .map(|(key, want)| {
                let got = console
                    .iter()
                    .filter_map(|line| line.find("PROBE ").map(|at| &line[at + 6..]))
                    .find_map(|rest| {
                        if want.is_empty() {
                            (rest == key).then(String::new)
                        } else {
                            rest.strip_prefix(key.as_str())
                                .and_then(|rest| rest.strip_prefix('='))
                                .map(str::to_string)
                        }
                    });
                let ok = got.as_deref() == Some(want.as_str());
                (
                    key.clone(),
                    want.clone(),
                    got.unwrap_or_else(|| "(not reported)".to_string()),
                    ok,
                )
            })
            .collect()
    }
}

/// The accelerator to use: `tcg` and `kvm` as asked; `auto` uses KVM only when `/dev/kvm`
/// exists, the board's arch is the host's, and a short probe boot of the board's own
/// kernel under KVM gets as far as the kernel running /init. `/dev/kvm` alone proves
/// nothing (on some hosts it is a nested module that hangs Debian's kernels). The probe's
/// answer is kept in the cache, per arch and kernel, so only the first boot pays for it.
/// Returns the accelerator and why.
pub fn choose_accel(
    requested: &str,
    board: &Board,
    kernel: &Path,
    cache: &Path,
) -> (String, String) {
    if requested != "auto" {
        return (requested.to_string(), "as asked".to_string());
    }
    let host_is_board = std::env::consts::ARCH == board.arch.name()
        || (std::env::consts::ARCH == "arm" && board.arch == Arch::Armv7);
    if !host_is_board || !Path::new("/dev/kvm").exists() {
        return ("tcg".to_string(), "no KVM for this arch here".to_string());
    }
    let kernel_id = std::fs::metadata(kernel)
        .map(|meta| meta.len())
        .unwrap_or(0);
    let record = cache.join(format!("kvm-probe-{}-{kernel_id}", board.arch));
    if let Ok(answer) = std::fs::read_to_string(&record) {
        let works = answer.trim() == "works";
        return (
            if works { "kvm" } else { "tcg" }.to_string(),
            format!(
                "KVM probe (cached in {}): {}",
                record.display(),
                answer.trim()
            ),
        );
    }
    let artifacts = Artifacts {
        kernel: kernel.to_path_buf(),
        initrd: None,
        dtb: None,
        cmdline: None,
        disk: None,
    };
    let argv = command(board, &artifacts, Some("rdinit=/kiln-kvm-probe"), "kvm");
    let log = std::env::temp_dir().join(format!("kiln-kvm-probe-{}.log", std::process::id()));
    let expect = Expectations {
        // Without an initramfs the kernel gets as far as looking for a root and panics;
        // reaching the VFS stage at all shows KVM runs it.
        markers: vec!["VFS:".to_string()],
        until_poweroff: false,
        timeout: Duration::from_secs(20),
        ctrl_alt_del: None,
    };
    let works = run(&argv, &log, &expect, false).is_ok_and(|outcome| {
        outcome.marker_times.len() == 1 || outcome.tail.iter().any(|line| line.contains("VFS:"))
    });
    let _ = std::fs::remove_file(&log);
    let answer = if works {
        "works"
    } else {
        "does not boot this kernel"
    };
    // Best effort: without the record the probe simply runs again next time.
    let _ = std::fs::create_dir_all(cache).and_then(|()| std::fs::write(&record, answer));
    (
        if works { "kvm" } else { "tcg" }.to_string(),
        format!("KVM probe: {answer}"),
    )
}
