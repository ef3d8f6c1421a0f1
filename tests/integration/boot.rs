//! `kiln boot` (issue 5): every shipped board and kiln's probe boards boot on QEMU, and the
//! probe proves inside the guest what the s6 init did. Each boot is its own test, so one
//! failure hides no other and any boot reruns alone
//! (`cargo test --test integration -- --exact boot::probe_armv7_reboots`); they take
//! `util::one_boot_at_a_time` in turn: TCG on 2 CPUs gains nothing from parallel boots
//! (measured in qemu-boot.md).

use std::path::Path;
use std::process::Command;
use std::sync::MutexGuard;

use crate::util::{Scratch, s, stderr, stdout};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The network gate and the host tools, then the boot lock, held until the test ends;
/// `None` when the test skips.
fn start() -> Option<MutexGuard<'static, ()>> {
    let open = crate::util::network_tests_with(
        "boot tests download kernels and packages (~200 MB) and boot QEMU",
        &[
            "apt-get",
            "qemu-system-x86_64",
            "qemu-system-aarch64",
            "qemu-system-arm",
        ],
    );
    open.then(crate::util::one_boot_at_a_time)
}

fn probe_board(arch: &str) -> String {
    format!("{ROOT}/tests/data/boards/probe-{arch}.toml")
}

fn shipped_board(name: &str) -> String {
    format!("{ROOT}/board-configs/{name}.toml")
}

struct Boot {
    code: Option<i32>,
    console: String,
    report: String,
}

/// `kiln boot` in `dir` (so out/ lands there), with the shared package cache.
fn boot(dir: &Path, args: &[&str]) -> Boot {
    let cache = crate::util::shared_cache();
    let output = crate::util::kiln()
        .current_dir(dir)
        .env("KILN_CACHE", &cache)
        .arg("boot")
        .args(args)
        .output()
        .unwrap();
    Boot {
        code: output.status.code(),
        console: stdout(&output),
        report: stderr(&output),
    }
}

fn probe_lines(console: &str) -> Vec<String> {
    console
        .lines()
        // A getty's prompt may start the line ("(none) login: PROBE ...").
        .filter_map(|line| {
            let at = line.find("PROBE ")?;
            (at == 0 || line[..at].ends_with("login: ")).then(|| &line[at..])
        })
        .map(|line| {
            // The measured latency varies; keep its presence, check its value separately.
            if line.starts_with("PROBE added-service-ms=") {
                "PROBE added-service-ms=N".to_string()
            } else {
                line.to_string()
            }
        })
        .collect()
}

/// A probe board boots, the probe reports what the init did, and the VM powers off.
fn probe_powers_off(arch: &str) {
    let Some(_boots) = start() else { return };
    let scratch = Scratch::new(&format!("boot-probe-{arch}"));
    let board = probe_board(arch);
    let result = boot(
        &scratch.path,
        &[&board, "--expect", "PROBE done", "--timeout", "180"],
    );
    assert_eq!(
        result.code,
        Some(0),
        "{arch}: {}\n{}",
        result.report,
        result.console
    );
    let tty = if arch == "x86_64" { "ttyS0" } else { "ttyAMA0" };
    let getty_tty = format!("PROBE getty-tty=/dev/{tty}");
    let expected = vec![
        "PROBE pid1=s6-svscan",
        "PROBE pid1-cmdline=s6-svscan -X3 -t0 /run/service ",
        "PROBE pid1-cwd=/run/service",
        "PROBE run-fs=tmpfs",
        "PROBE fifo=prw------- 0:0",
        "PROBE logger=70:70 groups=0 stdin=/run/service/s6-svscan-log/fifo",
        "PROBE stage2-umask=0027",
        "PROBE stage2-path=/usr/local/sbin:/usr/lib/execline/bin:/usr/bin:/bin:/usr/sbin:/sbin",
        "PROBE stage2-env=[a b =c ]",
        "PROBE stage2-proc=absent",
        "PROBE stage2-in-log=0",
        "PROBE log-stamp=tai64n",
        "PROBE added-service-ms=N",
        "PROBE restarted=yes",
        "PROBE getty=true",
        getty_tty.as_str(),
        "PROBE root-fs=rootfs",
        "PROBE done action=poweroff",
    ];
    assert_eq!(
        probe_lines(&result.console),
        expected,
        "{arch}:\n{}",
        result.console
    );
    let order = [
        "rc.init: stage 2 done",
        "PROBE done",
        "rc.shutdown: poweroff",
        "reboot: Power down",
    ];
    let mut at = 0;
    for marker in order {
        let found = result.console[at..].find(marker);
        assert!(
            found.is_some(),
            "{arch}: {marker:?} missing or out of order:\n{}",
            result.console
        );
        at += found.unwrap();
    }
    let latency = result
        .console
        .lines()
        .find_map(|line| line.strip_prefix("PROBE added-service-ms="))
        .unwrap();
    eprintln!(
        "{arch}: added service up in {latency} ms\n{}",
        result.report
    );
}

#[test]
fn probe_aarch64_powers_off() {
    probe_powers_off("aarch64");
}

#[test]
fn probe_armv7_powers_off() {
    probe_powers_off("armv7");
}

#[test]
fn probe_x86_64_powers_off() {
    probe_powers_off("x86_64");
}

/// Each shutdown path on each arch, its own boot: the helper scripts and SIGINT (what
/// ctrl-alt-del sends once rc.init made it soft). With -no-reboot, a reboot ends QEMU.
fn probe_shuts_down(arch: &str, action: &str) {
    probe_board_shuts_down(arch, action);
}

/// One shutdown path of the probe board `probe-NAME.toml`, its own boot.
fn probe_board_shuts_down(name: &str, action: &str) {
    let arch = name;
    let (stage3, ending) = match action {
        "reboot" | "sigint" | "sigterm" => ("rc.shutdown: reboot", "reboot: Restarting system"),
        "halt" => ("rc.shutdown: halt", "reboot: System halted"),
        other => panic!("no shutdown path {other:?}"),
    };
    let Some(_boots) = start() else { return };
    let scratch = Scratch::new(&format!("boot-{action}-{arch}"));
    let board = probe_board(arch);
    let append = format!("KILN_PROBE_ACTION={action}");
    let result = boot(
        &scratch.path,
        &[
            &board,
            "--append",
            &append,
            "--expect",
            "PROBE done",
            "--expect",
            stage3,
            "--timeout",
            "180",
        ],
    );
    assert_eq!(
        result.code,
        Some(0),
        "{arch} {action}: {}\n{}",
        result.report,
        result.console
    );
    assert!(
        result.console.contains(ending),
        "{arch} {action}: no {ending:?}:\n{}",
        result.console
    );
    assert!(
        !result.console.contains("Attempted to kill init"),
        "{arch} {action}"
    );
    if name.contains('-') {
        // Under runit and daemontools: stage2_finish's last line is at the end of the
        // catch-all log rc.shutdown prints, and the logger saw end of file in time.
        assert!(
            result.console.contains("rc.shutdown: log: ")
                && result.console.contains("rc.tini: services down")
                && !result.console.contains("did not end"),
            "{name} {action}:\n{}",
            result.console
        );
    }
}

/// The probe board under runit or daemontools (`[init] supervisor`): pid 1 is the maker's
/// shell with the scanner as its child, the logger reads the fifo as the log user, stage
/// 2 runs after it, an added service starts (within the scanner's poll) and restarts,
/// and the VM powers off with the catch-all log complete through stage2_finish.
fn probe_supervisor_powers_off(supervisor: &str) {
    let Some(_boots) = start() else { return };
    let scratch = Scratch::new(&format!("boot-probe-{supervisor}"));
    let board = format!("{ROOT}/tests/data/boards/probe-aarch64-{supervisor}.toml");
    let result = boot(
        &scratch.path,
        &[&board, "--expect", "PROBE done", "--timeout", "180"],
    );
    assert_eq!(
        result.code,
        Some(0),
        "{supervisor}: {}\n{}",
        result.report,
        result.console
    );
    let scanner = if supervisor == "runit" {
        "runsvdir"
    } else {
        "svscan"
    };
    let supervisor_line = format!("PROBE supervisor={scanner} ppid=1");
    let expected = vec![
        "PROBE pid1=pid1",
        "PROBE pid1-cmdline=/bin/sh /etc/s6-linux-init/pid1 ",
        "PROBE pid1-cwd=/run/service",
        "PROBE run-fs=tmpfs",
        "PROBE fifo=prw------- 0:0",
        supervisor_line.as_str(),
        "PROBE logger=70:70 groups=0 stdin=/run/service/s6-svscan-log/fifo",
        "PROBE stage2-umask=0027",
        "PROBE stage2-path=/usr/local/sbin:/usr/lib/execline/bin:/usr/bin:/bin:/usr/sbin:/sbin",
        "PROBE stage2-env=[a b =c ]",
        "PROBE stage2-proc=absent",
        "PROBE stage2-in-log=0",
        "PROBE log-stamp=tai64n",
        "PROBE added-service-ms=N",
        "PROBE restarted=yes",
        "PROBE getty=true",
        "PROBE getty-tty=/dev/ttyAMA0",
        "PROBE root-fs=rootfs",
        "PROBE done action=poweroff",
    ];
    assert_eq!(
        probe_lines(&result.console),
        expected,
        "{supervisor}:\n{}",
        result.console
    );
    let order = [
        "PROBE done",
        "rc.shutdown: poweroff",
        // rc.shutdown prints the end of the catch-all log: stage2_finish's last line is
        // there, so the logger read the fifo to the end before stage 3.
        "rc.tini: services down",
        "reboot: Power down",
    ];
    let mut at = 0;
    for marker in order {
        let found = result.console[at..].find(marker);
        assert!(
            found.is_some(),
            "{supervisor}: {marker:?} missing or out of order:\n{}",
            result.console
        );
        at += found.unwrap();
    }
    assert!(
        !result.console.contains("did not end"),
        "{supervisor}: the catch-all logger did not see end of file:\n{}",
        result.console
    );
    let latency = result
        .console
        .lines()
        .find_map(|line| line.strip_prefix("PROBE added-service-ms="))
        .unwrap();
    eprintln!(
        "{supervisor}: added service up in {latency} ms\n{}",
        result.report
    );
}

#[test]
fn probe_aarch64_runit_powers_off() {
    probe_supervisor_powers_off("runit");
}

#[test]
fn probe_aarch64_daemontools_powers_off() {
    probe_supervisor_powers_off("daemontools");
}

#[test]
fn probe_aarch64_runit_reboots() {
    probe_board_shuts_down("aarch64-runit", "reboot");
}

#[test]
fn probe_aarch64_runit_halts() {
    probe_board_shuts_down("aarch64-runit", "halt");
}

#[test]
fn probe_aarch64_runit_sigint_reboots() {
    probe_board_shuts_down("aarch64-runit", "sigint");
}

/// SIGTERM (busybox reboot) would end runsvdir as pid 1: a kernel panic.
#[test]
fn probe_aarch64_runit_sigterm_reboots() {
    probe_board_shuts_down("aarch64-runit", "sigterm");
}

#[test]
fn probe_aarch64_daemontools_reboots() {
    probe_board_shuts_down("aarch64-daemontools", "reboot");
}

#[test]
fn probe_aarch64_daemontools_halts() {
    probe_board_shuts_down("aarch64-daemontools", "halt");
}

#[test]
fn probe_aarch64_daemontools_sigint_reboots() {
    probe_board_shuts_down("aarch64-daemontools", "sigint");
}

/// svscan as pid 1 would never hear SIGTERM at all.
#[test]
fn probe_aarch64_daemontools_sigterm_reboots() {
    probe_board_shuts_down("aarch64-daemontools", "sigterm");
}

/// A second shutdown signal while stage2_finish runs (halt, then poweroff 0.3 s later)
/// neither runs stage2_finish again nor changes the action: one "rc.tini" line at the
/// end of the catch-all log, and the machine halts.
fn second_signal_keeps_the_action(name: &str) {
    let Some(_boots) = start() else { return };
    let scratch = Scratch::new(&format!("boot-twice-{name}"));
    let board = probe_board(name);
    let result = boot(
        &scratch.path,
        &[
            &board,
            "--append",
            "KILN_PROBE_ACTION=twice",
            "--expect",
            "PROBE done",
            "--expect",
            "rc.shutdown: halt",
            "--timeout",
            "180",
        ],
    );
    assert_eq!(
        result.code,
        Some(0),
        "{name}: {}\n{}",
        result.report,
        result.console
    );
    let console = &result.console;
    assert!(
        console.contains("reboot: System halted"),
        "{name}:\n{console}"
    );
    assert!(
        console.contains("PROBE second-signal=sent"),
        "{name}: the second signal was never sent:\n{console}"
    );
    let finishes = console
        .lines()
        .filter(|line| {
            line.starts_with("rc.shutdown: log: ") && line.contains("rc.tini: services down")
        })
        .count();
    assert_eq!(
        finishes, 1,
        "{name}: stage2_finish ran {finishes} times:\n{console}"
    );
}

#[test]
fn probe_aarch64_second_signal_keeps_the_action() {
    second_signal_keeps_the_action("aarch64");
}

#[test]
fn probe_aarch64_runit_second_signal_keeps_the_action() {
    second_signal_keeps_the_action("aarch64-runit");
}

#[test]
fn probe_aarch64_daemontools_second_signal_keeps_the_action() {
    second_signal_keeps_the_action("aarch64-daemontools");
}

/// Declared services in dependency waves under runit or daemontools: each wave starts
/// once the one before is up, a board user's service runs as that user, stage 2 is done
/// only after the last wave, and every service has its own log.
fn waves_start(supervisor: &str) {
    let Some(_boots) = start() else { return };
    let scratch = Scratch::new(&format!("boot-waves-{supervisor}"));
    let board = format!("{ROOT}/tests/data/boards/waves-aarch64-{supervisor}.toml");
    let result = boot(
        &scratch.path,
        &[&board, "--expect", "WAVES done", "--timeout", "180"],
    );
    assert_eq!(
        result.code,
        Some(0),
        "{supervisor}: {}\n{}",
        result.report,
        result.console
    );
    let console = &result.console;
    assert!(
        console.contains("WAVES waves=one|two|three|check|"),
        "{console}"
    );
    let started = |name: &str| {
        let prefix = format!("WAVES log {name} ");
        let line = console
            .lines()
            .find_map(|line| line.strip_prefix(prefix.as_str()))
            .unwrap_or_else(|| panic!("{supervisor}: no log of {name}:\n{console}"));
        assert!(line.contains(&format!("{name}: started")), "{line}");
        (line.to_string(), stamp_seconds(line))
    };
    let (_, one) = started("one");
    let (two_line, two) = started("two");
    let (_, three) = started("three");
    assert!(two_line.ends_with("two: started as 80"), "{two_line}");
    assert!(
        one <= two && two <= three,
        "{supervisor}: out of order:\n{console}"
    );
    eprintln!(
        "{supervisor}: two {:.2} s after one, three {:.2} s after two\n{}",
        two - one,
        three - two,
        result.report
    );
}

#[test]
fn waves_aarch64_runit() {
    waves_start("runit");
}

#[test]
fn waves_aarch64_daemontools() {
    waves_start("daemontools");
}

#[test]
fn probe_aarch64_reboots() {
    probe_shuts_down("aarch64", "reboot");
}

#[test]
fn probe_aarch64_halts() {
    probe_shuts_down("aarch64", "halt");
}

#[test]
fn probe_aarch64_sigint_reboots() {
    probe_shuts_down("aarch64", "sigint");
}

#[test]
fn probe_armv7_reboots() {
    probe_shuts_down("armv7", "reboot");
}

#[test]
fn probe_armv7_halts() {
    probe_shuts_down("armv7", "halt");
}

#[test]
fn probe_armv7_sigint_reboots() {
    probe_shuts_down("armv7", "sigint");
}

#[test]
fn probe_x86_64_reboots() {
    probe_shuts_down("x86_64", "reboot");
}

#[test]
fn probe_x86_64_halts() {
    probe_shuts_down("x86_64", "halt");
}

#[test]
fn probe_x86_64_sigint_reboots() {
    probe_shuts_down("x86_64", "sigint");
}

/// A fault survived, on aarch64: the boot with `append` passes once every marker showed.
fn probe_aarch64_survives(append: &str, markers: &[&str]) {
    let Some(_boots) = start() else { return };
    let scratch = Scratch::new("boot-fault");
    let board = probe_board("aarch64");
    let mut args = vec![board.as_str(), "--append", append, "--timeout", "180"];
    for marker in markers {
        args.extend(["--expect", marker]);
    }
    let result = boot(&scratch.path, &args);
    assert_eq!(
        result.code,
        Some(0),
        "{append}: {}\n{}",
        result.report,
        result.console
    );
}

/// A service crashing in a loop keeps being restarted while the rest runs on.
#[test]
fn probe_aarch64_restarts_a_crashing_service() {
    probe_aarch64_survives(
        "KILN_CRASHER=1",
        &[
            "PROBE crasher=restarting pid1=s6-svscan",
            "PROBE done",
            "rc.shutdown: poweroff",
        ],
    );
}

/// A stage 2 that exits non-zero leaves supervision running.
#[test]
fn probe_aarch64_survives_a_failing_stage2() {
    probe_aarch64_survives(
        "KILN_STAGE2_FAULT=exit",
        &[
            "stage2: failing on purpose",
            "PROBE done",
            "rc.shutdown: poweroff",
        ],
    );
}

/// A stage 2 that hangs leaves supervision running and does not stop a SIGINT shutdown.
#[test]
fn probe_aarch64_sigint_ends_a_hung_stage2() {
    probe_aarch64_survives(
        "KILN_STAGE2_FAULT=hang KILN_PROBE_ACTION=sigint",
        &[
            "stage2: hanging on purpose",
            "PROBE done",
            "rc.shutdown: reboot",
        ],
    );
}

/// The processes matching `pattern` whose working directory is `dir`: QEMU left behind by
/// a boot there (and not someone else's QEMU on the same machine).
fn processes_in(dir: &Path, pattern: &str) -> Vec<String> {
    let dir = dir.canonicalize().unwrap();
    let found = Command::new("pgrep")
        .args(["-f", pattern])
        .output()
        .unwrap();
    stdout(&found)
        .lines()
        .filter(|pid| std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd == dir))
        .map(String::from)
        .collect()
}

/// The checker can fail: a marker that never appears ends in a timeout, exit 1, and no
/// QEMU left behind.
#[test]
fn never_appearing_marker_times_out() {
    let Some(_boots) = start() else { return };
    let scratch = Scratch::new("boot-timeout");
    let result = boot(
        &scratch.path,
        &[
            &shipped_board("qemu-aarch64"),
            "--expect",
            "this never appears",
            "--timeout",
            "25",
        ],
    );
    assert_eq!(result.code, Some(1), "{}", result.report);
    assert!(
        result.report.contains("kiln: boot failed: timeout"),
        "{}",
        result.report
    );
    assert!(
        result
            .report
            .contains("kiln: reproduce with: qemu-system-aarch64 -M virt"),
        "{}",
        result.report
    );
    let left = processes_in(&scratch.path, "qemu-system-aarch64 -M virt");
    assert!(left.is_empty(), "QEMU left running: pids {left:?}");
}

/// An image without /init: a kernel panic, reported with the console tail.
#[test]
fn image_without_init_is_a_kernel_panic() {
    let Some(_boots) = start() else { return };
    let scratch = Scratch::new("boot-panic");
    let list = scratch.write(
        "empty.list",
        "dir /dev 0755 0 0\nnod /dev/console 0600 0 0 c 5 1\n",
    );
    let image = scratch.join("empty.cpio.gz");
    crate::util::ok(["pack", s(&list), "-o", s(&image)]);
    let result = boot(
        &scratch.path,
        &[
            &shipped_board("qemu-aarch64"),
            "--image",
            s(&image),
            "--timeout",
            "60",
        ],
    );
    assert_eq!(result.code, Some(1), "{}", result.report);
    assert!(
        result.report.contains("kiln: boot failed: kernel panic"),
        "{}",
        result.report
    );
    assert!(result.report.contains("  | "), "{}", result.report);
}

/// kiln's own test mode on a shipped board: the probe is added to a copy of the image and
/// the host checks its reports against the board's options.
#[test]
fn qemu_armv7_check_passes() {
    let Some(_boots) = start() else { return };
    let scratch = Scratch::new("boot-check-armv7");
    let result = boot(
        &scratch.path,
        &[&shipped_board("qemu-armv7"), "--check", "--timeout", "180"],
    );
    assert_eq!(
        result.code,
        Some(0),
        "{}\n{}",
        result.report,
        result.console
    );
    for row in [
        "pid1             s6-svscan",
        "logger           70:70 groups=0",
        "getty            true",
    ] {
        assert!(
            result.report.contains(row),
            "no {row:?} in\n{}",
            result.report
        );
    }
    assert!(!result.report.contains("<-- FAILED"), "{}", result.report);
}

/// Ctrl-alt-del pressed on x86_64's keyboard through the QEMU monitor: made soft by
/// rc.init, it reaches pid 1 as SIGINT and ends in a reboot.
#[test]
fn qemu_x86_64_ctrl_alt_del_reboots() {
    let Some(_boots) = start() else { return };
    let scratch = Scratch::new("boot-ctrl-alt-del");
    let result = boot(
        &scratch.path,
        &[
            &shipped_board("qemu-x86_64"),
            "--check",
            "--action",
            "ctrl-alt-del",
            "--timeout",
            "180",
        ],
    );
    assert_eq!(
        result.code,
        Some(0),
        "{}\n{}",
        result.report,
        result.console
    );
    assert!(
        result.report.contains("ctrl-alt-del sent"),
        "{}",
        result.report
    );
    assert!(
        result.console.contains("rc.shutdown: reboot"),
        "{}",
        result.console
    );
    assert!(
        result.console.contains("reboot: Restarting system"),
        "{}",
        result.console
    );
}

/// -r and ISO 8601 timestamps, proven inside the guest.
#[test]
fn stage2_output_in_the_log_with_iso_stamps() {
    let Some(_boots) = start() else { return };
    let scratch = Scratch::new("boot-r");
    let result = boot(
        &scratch.path,
        &[
            &format!("{ROOT}/tests/data/boards/qemu-aarch64-r.toml"),
            "--check",
            "--action",
            "halt",
            "--timeout",
            "180",
        ],
    );
    assert_eq!(
        result.code,
        Some(0),
        "{}\n{}",
        result.report,
        result.console
    );
    for row in ["stage2-in-log    1", "log-stamp        iso"] {
        assert!(
            result.report.contains(row),
            "no {row:?} in\n{}",
            result.report
        );
    }
    assert!(
        result.console.contains("reboot: System halted"),
        "{}",
        result.console
    );
}

/// A real-board machine boots the same userland with its own device tree, checked through
/// power-off; `evidence` shows how it got there.
fn board_check_powers_off(board: &str, evidence: &str) {
    let Some(_boots) = start() else { return };
    let scratch = Scratch::new(&format!("boot-check-{board}"));
    let result = boot(
        &scratch.path,
        &[&shipped_board(board), "--check", "--timeout", "300"],
    );
    assert_eq!(
        result.code,
        Some(0),
        "{board} --check: {}\n{}",
        result.report,
        result.console
    );
    assert!(!result.report.contains("<-- FAILED"), "{}", result.report);
    for wanted in [evidence, "reboot: Power down"] {
        assert!(
            result.console.contains(wanted),
            "{board}: no {wanted:?}:\n{}",
            result.console
        );
    }
}

/// raspberrypi3-64 powers off through bcm2835_wdt, a module kiln put in the image from the
/// kernel package's .modinfo closure and rc.init loaded.
#[test]
fn raspberrypi3_64_check_powers_off_through_its_watchdog() {
    board_check_powers_off("raspberrypi3-64", "bcm2835-wdt");
}

/// orangepi-pc gets PSCI from QEMU.
#[test]
fn orangepi_pc_check_powers_off() {
    board_check_powers_off("orangepi-pc", "PROBE done");
}

/// A real board's own image, without the probe, reaches the end of stage 2.
fn board_boots(board: &str) {
    let Some(_boots) = start() else { return };
    let scratch = Scratch::new(&format!("boot-{board}"));
    let result = boot(&scratch.path, &[&shipped_board(board), "--timeout", "240"]);
    assert_eq!(
        result.code,
        Some(0),
        "{board}: {}\n{}",
        result.report,
        result.console
    );
    assert!(result.console.contains("s6-linux-init: stage 1"), "{board}");
    eprintln!("{board}:\n{}", result.report);
}

#[test]
fn raspberrypi3_64_boots() {
    board_boots("raspberrypi3-64");
}

#[test]
fn orangepi_pc_boots() {
    board_boots("orangepi-pc");
}

/// Card and disk images (issue 6), each built with the probe: kiln's stage 0 loads the
/// storage modules, finds the root by label on `device` and switch_roots; the probe then
/// sees / on the ext4 partition with its own nodes and owners as built, and the VM powers
/// itself off.
///
/// `args` are more `kiln boot` arguments (`--firmware`, `--direct`); `evidence`, console
/// or kiln lines that show which firmware chain ran and how the VM ended.
fn card_boots(board: &str, device: &str, args: &[&str], evidence: &[&str]) {
    let Some(_boots) = start() else { return };
    let scratch = Scratch::new(&format!("boot-card-{board}{}", args.join("")));
    let mut argv = vec![
        shipped_board(board),
        "--disk".to_string(),
        "--check".to_string(),
        "--timeout".to_string(),
        "240".to_string(),
    ];
    argv.extend(args.iter().map(|arg| arg.to_string()));
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let result = boot(&scratch.path, &argv);
    assert_eq!(
        result.code,
        Some(0),
        "{board} --disk --check: {}\n{}",
        result.report,
        result.console
    );
    assert!(!result.report.contains("<-- FAILED"), "{}", result.report);
    for row in [
        "root-fs          ext4",
        "root-label       rootfs",
        "root-console     c 0:0 5,1",
        "root-fifo        prw------- 0:0",
        "root-logs        drwx--S--- 70:70",
    ] {
        assert!(
            result.report.contains(row),
            "{board}: no {row:?} in\n{}",
            result.report
        );
    }
    let handover = format!("kiln stage 0: root LABEL=rootfs is {device} (ext4, rw)");
    for wanted in [handover.as_str()].iter().chain(evidence) {
        // The console, or kiln's own lines (which say how it booted).
        assert!(
            result.console.contains(wanted) || result.report.contains(wanted),
            "{board}: no {wanted:?}:\n{}\n{}",
            result.report,
            result.console
        );
    }
    // Through firmware, QEMU is given no kernel, initramfs, dtb or command line.
    let qemu = result
        .report
        .lines()
        .find(|line| line.starts_with("kiln: qemu: "))
        .unwrap_or_else(|| panic!("{board}: no QEMU command in\n{}", result.report));
    // The Pi's GPU stage is the one QEMU emulates, with -kernel (and says so).
    let emulated = result
        .report
        .contains("QEMU emulates the GPU firmware stage");
    if args.contains(&"--direct") || evidence.is_empty() || emulated {
        assert!(qemu.contains(" -kernel "), "{board}: {qemu}");
    } else {
        for option in [" -kernel ", " -initrd ", " -dtb ", " -append "] {
            assert!(!qemu.contains(option), "{board}: {qemu}");
        }
    }
    eprintln!("{board} (card/disk):\n{}", result.report);
}

/// The Pi's SD card, aarch64, through its firmware: QEMU stands in for the GPU stage,
/// booting what the card's config.txt names, after kiln checked the firmware's files.
#[test]
fn raspberrypi3_64_card_boots() {
    card_boots(
        "raspberrypi3-64",
        "/dev/mmcblk0p2",
        &[],
        &[
            "booting raspberrypi3-64 through its pi firmware",
            "reboot: Power down",
        ],
    );
}

/// The Orange Pi's SD card, armv7: a 32-bit userland cannot stat a time past 2038, so bad
/// inode times show.
#[test]
fn orangepi_pc_card_boots() {
    card_boots(
        "orangepi-pc",
        "/dev/mmcblk0p2",
        &[],
        &[
            "booting orangepi-pc through its u-boot firmware",
            "U-Boot SPL 2023.01 (Jan 01 2000 - 00:00:00 +0000)",
            "Model: Xunlong Orange Pi PC",
            "Starting kernel ...",
            // U-Boot's PSCI on the H3 has no SYSTEM_OFF: power-off halts (kiln then
            // stops QEMU), as on the real board.
            "reboot: System halted",
        ],
    );
}

/// The Cubieboard's SD card (issue 12's third real board, Allwinner A10, Cortex-A8, the
/// non-LPAE kernel): its boot ROM runs the SPL of Debian's own u-boot-sunxi Cubieboard
/// build from byte 8192. The A10 has no PSCI: power-off halts.
#[test]
fn cubieboard_card_boots() {
    card_boots(
        "cubieboard",
        "/dev/mmcblk0p2",
        &[],
        &[
            "booting cubieboard through its u-boot firmware",
            "U-Boot SPL 2023.01",
            "Model: Cubietech Cubieboard",
            "Starting kernel ...",
            "reboot: System halted",
        ],
    );
}

/// The x86_64 disk, as virtio, through its first firmware chain: SeaBIOS runs syslinux's
/// MBR code, syslinux loads the kernel and initramfs named in syslinux.cfg.
#[test]
fn qemu_x86_64_card_boots_under_seabios() {
    card_boots(
        "qemu-x86_64",
        "/dev/vda2",
        &[],
        &[
            "booting qemu-x86_64 through its bios firmware",
            "SYSLINUX 6",
            "reboot: Power down",
        ],
    );
}

/// The same disk under OVMF: UEFI runs EFI/BOOT/BOOTX64.EFI (systemd-boot), which loads
/// the loader entry's kernel through its EFI stub.
#[test]
fn qemu_x86_64_card_boots_under_ovmf() {
    card_boots(
        "qemu-x86_64",
        "/dev/vda2",
        &["--firmware", "uefi"],
        &[
            "booting qemu-x86_64 through its uefi firmware",
            "BdsDxe: starting",
            "EFI stub: ",
            "reboot: Power down",
        ],
    );
}

/// The aarch64 disk under EDK2: systemd-boot from the FAT, the kernel's EFI stub.
#[test]
fn qemu_aarch64_card_boots_through_uefi() {
    card_boots(
        "qemu-aarch64",
        "/dev/vda2",
        &[],
        &[
            "booting qemu-aarch64 through its uefi firmware",
            "BdsDxe: starting",
            "EFI stub: ",
            "reboot: Power down",
        ],
    );
}

/// The same aarch64 disk with U-Boot qemu_arm64 as the machine's firmware, reading
/// extlinux.conf.
#[test]
fn qemu_aarch64_card_boots_through_u_boot() {
    card_boots(
        "qemu-aarch64",
        "/dev/vda2",
        &["--firmware", "u-boot"],
        &[
            "booting qemu-aarch64 through its u-boot firmware",
            "U-Boot 20",
            "Starting kernel ...",
            "reboot: Power down",
        ],
    );
}

/// The armv7 disk with U-Boot qemu_arm as the machine's firmware: extlinux.conf, bootz.
#[test]
fn qemu_armv7_card_boots_through_u_boot() {
    card_boots(
        "qemu-armv7",
        "/dev/vda2",
        &[],
        &[
            "booting qemu-armv7 through its u-boot firmware",
            "U-Boot 20",
            "Starting kernel ...",
            "reboot: Power down",
        ],
    );
}

/// --direct keeps the QEMU shortcut for a card that has firmware chains: -kernel with the
/// card's own kernel, initramfs and cmdline.txt.
#[test]
fn qemu_armv7_card_boots_direct() {
    card_boots(
        "qemu-armv7",
        "/dev/vda2",
        &["--direct"],
        &[
            "booting qemu-armv7 directly (-kernel from the card)",
            "reboot: Power down",
        ],
    );
}

/// `include` means what apt means (issue 16): python3-minimal's python3 is a link into its
/// dependency python3.11-minimal, curl needs libcurl's whole Depends closure, and awk is
/// the alternative mawk's postinst sets up. A service runs each inside the guest.
#[test]
fn apps_aarch64_runs_python_curl_and_awk() {
    let Some(_boots) = start() else { return };
    let scratch = Scratch::new("boot-apps-aarch64");
    let board = format!("{ROOT}/tests/data/boards/apps-aarch64.toml");
    let result = boot(
        &scratch.path,
        &[&board, "--expect", "APPS done", "--timeout", "240"],
    );
    assert_eq!(
        result.code,
        Some(0),
        "{}\n{}",
        result.report,
        result.console
    );
    let lines: Vec<&str> = result
        .console
        .lines()
        .filter(|line| line.starts_with("APPS "))
        .collect();
    assert_eq!(
        lines,
        vec![
            "APPS python=42 3",
            "APPS curl=curl 7.88.1",
            "APPS awk=/etc/alternatives/awk 12",
            "APPS done",
        ],
        "{}",
        result.console
    );
}

/// Seconds since midnight of an s6-log ISO 8601 stamp (`2026-12-01 11:32:31.290473860`).
fn stamp_seconds(line: &str) -> f64 {
    let time = line.split(' ').nth(1).unwrap();
    let mut parts = time.split(':');
    let hours: f64 = parts.next().unwrap().parse().unwrap();
    let minutes: f64 = parts.next().unwrap().parse().unwrap();
    let seconds: f64 = parts.next().unwrap().parse().unwrap();
    hours * 3600.0 + minutes * 60.0 + seconds
}

/// Declared services (issue 13): a oneshot runs first, a service after one with a
/// notification-fd starts only once that one said it is ready (the loggers' timestamps
/// show it), a service runs as its board user with its cwd and env, each longrun has its
/// own s6-log in /var/log/NAME as the log user, and a killed service comes back.
#[test]
fn services_start_in_waves_aarch64() {
    let Some(_boots) = start() else { return };
    let scratch = Scratch::new("boot-services");
    let board = format!("{ROOT}/tests/data/boards/services-aarch64.toml");
    let result = boot(
        &scratch.path,
        &[&board, "--expect", "SERVICES done", "--timeout", "180"],
    );
    assert_eq!(
        result.code,
        Some(0),
        "{}\n{}",
        result.report,
        result.console
    );
    let console = &result.console;
    for line in [
        "mark: oneshot ran as 0",
        "SERVICES waves=mark|first|second|check|",
        "SERVICES log-dir=drwxr-s--- 70:70",
        "SERVICES logger=true",
        "SERVICES second-uid=80",
        "SERVICES restarted=yes",
        "SERVICES first-ready=true",
    ] {
        assert!(console.contains(line), "no {line:?}:\n{console}");
    }
    let log = |name: &str, what: &str| {
        let prefix = format!("SERVICES log {name} ");
        let line = console
            .lines()
            .find(|line| line.starts_with(&prefix) && line.contains(what))
            .unwrap_or_else(|| panic!("no {name} {what:?} in the log:\n{console}"));
        (
            line[prefix.len()..].to_string(),
            stamp_seconds(&line[prefix.len()..]),
        )
    };
    let (_, first_started) = log("first", "first: started");
    let (_, first_ready) = log("first", "first: ready");
    let (second_line, second_started) = log("second", "second: started");
    assert!(
        second_line
            .ends_with("second: started as 80:80 groups 80 90 in /srv with a 'quoted' $value"),
        "{second_line}"
    );
    assert!(first_ready - first_started >= 0.9, "{console}");
    assert!(
        second_started >= first_ready,
        "second started before first was ready:\n{console}"
    );
    eprintln!(
        "first ready after {:.2} s, second started {:.2} s after that\n{}",
        first_ready - first_started,
        second_started - first_ready,
        result.report
    );
}

/// A guest's console driven from the host: `kiln boot --interactive` with its stdin and
/// stdout piped, everything QEMU printed kept as it comes (prompts end without a newline).
struct Console {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    seen: std::sync::Arc<std::sync::Mutex<String>>,
    /// Where the next wait starts looking.
    at: usize,
}

impl Console {
    fn start(dir: &Path, args: &[&str]) -> Console {
        use std::io::Read;
        let mut child = crate::util::kiln()
            .current_dir(dir)
            .env("KILN_CACHE", crate::util::shared_cache())
            .arg("boot")
            .args(args)
            .arg("--interactive")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = seen.clone();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buffer) {
                if n == 0 {
                    return;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buffer[..n]));
            }
        });
        Console {
            child,
            stdin,
            seen,
            at: 0,
        }
    }

    fn text(&self) -> String {
        self.seen.lock().unwrap().clone()
    }

    /// Waits for `what` after the last thing waited for; panics with the console after
    /// `seconds` (scaled like kiln's own timeouts).
    fn wait(&mut self, what: &str, seconds: u64) {
        let scale: u64 = std::env::var("KILN_TIMEOUT_SCALE")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(1);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds * scale);
        loop {
            let text = self.text();
            if let Some(found) = text[self.at.min(text.len())..].find(what) {
                self.at += found + what.len();
                return;
            }
            if std::time::Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("no {what:?} on the console within {seconds} s:\n{text}");
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    fn send(&mut self, text: &str) {
        use std::io::Write;
        self.stdin.write_all(text.as_bytes()).unwrap();
        self.stdin.flush().unwrap();
    }

    /// Waits for QEMU (and kiln) to end; true when kiln said the guest exited cleanly.
    fn finish(mut self, seconds: u64) -> (bool, String) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                std::thread::sleep(std::time::Duration::from_millis(200));
                return (status.success(), self.text());
            }
            if std::time::Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return (false, self.text());
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

/// Console login on a shipped development board (issue 13): a locked account is refused
/// with "Login incorrect" (busybox's login used to die with "bad salt" on a `!` shadow
/// field), root logs in without a password and gets a root shell, and `poweroff` typed at
/// it powers off.
#[test]
fn console_login_qemu_aarch64() {
    let Some(_boots) = start() else { return };
    let scratch = Scratch::new("boot-console-login");
    let board = shipped_board("qemu-aarch64");
    let mut console = Console::start(&scratch.path, &[&board]);
    console.wait("rc.init: stage 2 done", 180);
    // A fresh prompt: the first one may have come before stage 2's line.
    console.send("\n");
    console.wait("login: ", 30);
    console.send("log\n");
    console.wait("Password: ", 30);
    console.send("wrong\n");
    console.wait("Login incorrect", 30);
    console.wait("login: ", 30);
    console.send("root\n");
    console.send("echo LOGIN-OK $(id -u) $(tty)\n");
    console.wait("LOGIN-OK 0 /dev/ttyAMA0", 30);
    // What a user types: busybox's sh would run its own poweroff applet (whose signal s6
    // takes for halt), but the login shell's /etc/profile points it at kiln's helper.
    console.send("poweroff\n");
    let (clean, text) = console.finish(60);
    assert!(
        clean,
        "kiln boot --interactive did not end cleanly:\n{text}"
    );
    assert!(text.contains("rc.shutdown: poweroff"), "{text}");
    assert!(text.contains("reboot: Power down"), "{text}");
    assert!(!text.contains("bad salt"), "{text}");
}

/// SIGTERM to `kiln boot --interactive` in the middle of a boot: kiln terminates QEMU
/// before it exits, so no emulator is left running.
#[test]
fn interactive_boot_terminated_takes_qemu_with_it() {
    interactive_boot_ended_takes_qemu_with_it("TERM");
}

/// SIGKILL, which kiln cannot catch (a test harness killing it on a timeout did, and left
/// QEMU running for half an hour): QEMU gets SIGKILL from the kernel as kiln dies.
#[test]
fn interactive_boot_killed_takes_qemu_with_it() {
    interactive_boot_ended_takes_qemu_with_it("KILL");
}

fn interactive_boot_ended_takes_qemu_with_it(signal: &str) {
    let Some(_boots) = start() else { return };
    let scratch = Scratch::new(&format!("boot-sig{signal}"));
    let board = shipped_board("qemu-aarch64");
    let mut console = Console::start(&scratch.path, &[&board]);
    console.wait("Run /init as init process", 180);
    let kiln = console.child.id();
    // kiln's children: QEMU (the process whose parent is kiln).
    let children = || -> Vec<u32> {
        std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/status"))
                    .ok()
                    .and_then(|status| {
                        status
                            .lines()
                            .find_map(|line| line.strip_prefix("PPid:"))
                            .map(|ppid| ppid.trim() == kiln.to_string())
                    })
                    .unwrap_or(false)
            })
            .collect()
    };
    let qemu = children();
    assert_eq!(qemu.len(), 1, "kiln's children: {qemu:?}");
    let sent = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &kiln.to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let status = console.child.wait().unwrap();
    if signal == "TERM" {
        assert_eq!(status.code(), Some(128 + 15));
    } else {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(9));
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::path::Path::new(&format!("/proc/{}", qemu[0])).exists() {
        // A zombie whose parent is gone is reaped by init; only a live QEMU counts.
        let state = std::fs::read_to_string(format!("/proc/{}/stat", qemu[0])).unwrap_or_default();
        if state.split_whitespace().nth(2) == Some("Z") || state.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "QEMU (pid {}) still runs after kiln was terminated",
            qemu[0]
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// The shipped network board from the host (issue 13), through `kiln boot --then`: a key
/// made for this test in a board that inherits it, then with QEMU user networking and
/// forwards on 127.0.0.1, the host's curl fetches the page busybox httpd serves from the
/// overlay, the host's OpenSSH client logs in to dropbear with the key and runs commands,
/// the services' logs are in /var/log, httpd started only once DHCP had set the address,
/// and the guest powers off cleanly.
fn net_board_from_the_host(board: &str, arch: &str, hostname: &str) {
    if !crate::util::network_tests_with(
        "network boot tests fetch packages and boot QEMU",
        &["ssh", "ssh-keygen", "curl"],
    ) {
        return;
    }
    let Some(_boots) = start() else { return };
    let scratch = Scratch::new(&format!("boot-net-{arch}"));
    let keygen = crate::util::shell()
        .arg("ssh-keygen -q -t ed25519 -N '' -C kiln-test -f \"$1/key\"")
        .arg("sh")
        .arg(&scratch.path)
        .output()
        .unwrap();
    assert!(keygen.status.success(), "{}", stderr(&keygen));
    let child = scratch.write(
        "net.toml",
        &format!(
            "name = \"net-{arch}\"\ninherit = \"{}\"\n\n\
             [[users]]\nname = \"root\"\nuid = 0\ngid = 0\nhome = \"/root\"\nshell = \"/bin/sh\"\npassword = \"\"\nauthorized_keys = \"key.pub\"\n\n\
             [[users]]\nname = \"log\"\nuid = 70\ngid = 70\nhome = \"/\"\nshell = \"/bin/false\"\n\n\
             [[users]]\nname = \"www\"\nuid = 80\ngid = 80\nhome = \"/srv/www\"\nshell = \"/bin/false\"\n",
            shipped_board(board)
        ),
    );
    let ssh = format!(
        "ssh -i {}/key -p 2222 -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o ConnectTimeout=30 root@127.0.0.1",
        scratch.path.display()
    );
    // Then a login that stays open while the guest shuts down: its processes hold the ssh
    // service's log pipe, and the shutdown hung on them until rc.tini ended them.
    let held = scratch.path.join("held.log");
    let then = format!(
        "curl -sSf http://127.0.0.1:8080/ && {ssh} 'echo SSH-OK $(id -u) $(hostname); \
         sed \"s/^/LOG network /\" /var/log/network/current; sed \"s/^/LOG httpd /\" /var/log/httpd/current; \
         stat -c \"LOGFILE %n %U\" /var/log/httpd/current' && \
         {{ {ssh} 'echo HELD; exec sleep 600' > {held} 2>&1 < /dev/null & }} && \
         for i in $(seq 150); do grep -q HELD {held} && break; sleep 0.2; done && grep -q HELD {held}",
        held = held.display()
    );
    let result = boot(
        &scratch.path,
        &[
            child.to_str().unwrap(),
            "--forward",
            "2222:22",
            "--forward",
            "8080:8080",
            "--timeout",
            "240",
            "--then",
            &then,
        ],
    );
    let report = &result.report;
    assert_eq!(result.code, Some(0), "{report}\n{}", result.console);
    for want in [
        "served by busybox httpd from a kiln image",
        &format!("SSH-OK 0 {hostname}"),
        "LOGFILE /var/log/httpd/current log",
        "kiln: boot passed",
    ] {
        assert!(report.contains(want), "no {want:?}:\n{report}");
    }
    assert!(
        result.console.contains("rc.shutdown: poweroff")
            && result.console.contains("reboot: Power down"),
        "{}",
        result.console
    );
    let stamp = |prefix: &str, what: &str| {
        report
            .lines()
            .filter_map(|line| line.strip_prefix(prefix))
            .find(|line| line.contains(what))
            .map(stamp_seconds)
            .unwrap_or_else(|| panic!("no {prefix}{what:?}:\n{report}"))
    };
    let address_set = stamp("LOG network ", "network: eth0 10.0.2.15/24");
    let httpd_started = stamp("LOG httpd ", "httpd: starting on 10.0.2.15/24");
    assert!(httpd_started >= address_set, "{report}");
    eprintln!(
        "httpd started {:.2} s after the address was set\n{report}",
        httpd_started - address_set
    );
}

#[test]
fn net_board_from_the_host_aarch64() {
    net_board_from_the_host("qemu-aarch64-net", "aarch64", "kiln-aarch64");
}

/// A real board's machine: orangepi-pc with a USB network adapter.
#[test]
fn net_board_from_the_host_orangepi_pc() {
    net_board_from_the_host("orangepi-pc-net", "orangepi-pc", "kiln-orangepi-pc");
}

#[test]
fn net_board_from_the_host_x86_64() {
    net_board_from_the_host("qemu-x86_64-net", "x86_64", "kiln-x86-64");
}

/// `[init] login = "autologin"`: the early getty gives root a shell on the console without
/// asking for a name or a password.
#[test]
fn console_autologin_aarch64() {
    let Some(_boots) = start() else { return };
    let scratch = Scratch::new("boot-autologin");
    let board = format!("{ROOT}/tests/data/boards/autologin-aarch64.toml");
    let mut console = Console::start(&scratch.path, &[&board]);
    console.wait("rc.init: stage 2 done", 180);
    // The early getty is up before stage 2 is done (its shell's first prompt may come
    // before that line): an empty line brings a fresh prompt.
    console.send("\n");
    console.wait("# ", 30);
    console.send("echo AUTOLOGIN $(id -u) $(tty)\n");
    console.wait("AUTOLOGIN 0 /dev/ttyAMA0", 30);
    console.send("/usr/local/sbin/poweroff\n");
    let (clean, text) = console.finish(60);
    assert!(
        clean,
        "kiln boot --interactive did not end cleanly:\n{text}"
    );
    assert!(!text.contains("login: "), "a login prompt:\n{text}");
}

/// A static address (issue 13): `network` is a oneshot of `ip` commands, the page is
/// reached from the host through a forward, and the guest's routes and resolv.conf are
/// the board's.
#[test]
fn static_network_aarch64() {
    if !crate::util::network_tests_with("network boot tests", &["curl"]) {
        return;
    }
    let Some(_boots) = start() else { return };
    let scratch = Scratch::new("boot-static");
    let board = format!("{ROOT}/tests/data/boards/static-aarch64.toml");
    let result = boot(
        &scratch.path,
        &[
            &board,
            "--forward",
            "8080:8080",
            "--timeout",
            "240",
            "--then",
            "curl -sSf http://127.0.0.1:8080/",
        ],
    );
    assert_eq!(
        result.code,
        Some(0),
        "{}\n{}",
        result.report,
        result.console
    );
    assert!(
        result
            .report
            .contains("served by busybox httpd from a kiln image"),
        "{}",
        result.report
    );
}

/// `--then` can fail: a command that exits 3 fails the boot (exit 1, naming it), and the
/// guest is powered off cleanly all the same.
#[test]
fn then_failure_fails_the_boot_aarch64() {
    let Some(_boots) = start() else { return };
    let scratch = Scratch::new("boot-then-fails");
    let board = shipped_board("qemu-aarch64-net");
    let result = boot(
        &scratch.path,
        &[
            &board,
            "--timeout",
            "240",
            "--then",
            "echo checking; exit 3",
        ],
    );
    assert_eq!(
        result.code,
        Some(1),
        "{}\n{}",
        result.report,
        result.console
    );
    assert!(
        result
            .report
            .contains("kiln: boot failed: --then \"echo checking; exit 3\" failed: exit status: 3"),
        "{}",
        result.report
    );
    assert!(result.report.contains("checking"), "{}", result.report);
    assert!(
        result.console.contains("reboot: Power down"),
        "{}",
        result.console
    );
}
