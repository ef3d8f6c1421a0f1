//! `kiln boot` (issue 5): every shipped board and kiln's probe boards boot on QEMU, and the
//! probe proves inside the guest what the s6 init did. One test runs the boots one after
//! another: TCG on 2 CPUs gains nothing from parallel boots (measured in qemu-boot.md).

use std::process::Command;

use crate::util::{Scratch, s, stderr, stdout};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn enabled() -> bool {
    crate::util::network_tests_with(
        "boot tests download kernels and packages (~200 MB) and boot QEMU",
        &[
            "apt-get",
            "qemu-system-x86_64",
            "qemu-system-aarch64",
            "qemu-system-arm",
        ],
    )
}

struct Boot {
    code: Option<i32>,
    console: String,
    report: String,
}

/// `kiln boot` in `dir` (so out/ lands there), with the shared package cache.
fn boot(dir: &std::path::Path, args: &[&str]) -> Boot {
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
        .filter(|line| line.starts_with("PROBE "))
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

#[test]
fn boards_boot_and_the_probe_proves_the_init() {
    if !enabled() {
        return;
    }
    let scratch = Scratch::new("boot");
    let mut timings = Vec::new();

    for arch in ["aarch64", "armv7", "x86_64"] {
        let board = format!("{ROOT}/tests/data/boards/probe-{arch}.toml");
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
            "PROBE pid1-cmdline=s6-svscan -X3 -t0 ",
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
            .unwrap()
            .to_string();
        timings.push(format!(
            "{arch}: added service up in {latency} ms\n{}",
            result.report
        ));
    }

    // Each shutdown path on each arch, its own boot: the helper scripts and SIGINT (what
    // ctrl-alt-del sends once rc.init made it soft). With -no-reboot, a reboot ends QEMU.
    for arch in ["aarch64", "armv7", "x86_64"] {
        let board = format!("{ROOT}/tests/data/boards/probe-{arch}.toml");
        for (action, stage3, ending) in [
            ("reboot", "rc.shutdown: reboot", "reboot: Restarting system"),
            ("halt", "rc.shutdown: halt", "reboot: System halted"),
            ("sigint", "rc.shutdown: reboot", "reboot: Restarting system"),
        ] {
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
        }
    }

    // Faults survived, on aarch64: a service crashing in a loop keeps being restarted
    // while the rest runs on; a stage 2 that exits non-zero or hangs leaves supervision
    // running, and a hung stage 2 does not stop a SIGINT shutdown.
    let board = format!("{ROOT}/tests/data/boards/probe-aarch64.toml");
    for (append, markers) in [
        (
            "KILN_CRASHER=1",
            vec![
                "PROBE crasher=restarting pid1=s6-svscan",
                "PROBE done",
                "rc.shutdown: poweroff",
            ],
        ),
        (
            "KILN_STAGE2_FAULT=exit",
            vec![
                "stage2: failing on purpose",
                "PROBE done",
                "rc.shutdown: poweroff",
            ],
        ),
        (
            "KILN_STAGE2_FAULT=hang KILN_PROBE_ACTION=sigint",
            vec![
                "stage2: hanging on purpose",
                "PROBE done",
                "rc.shutdown: reboot",
            ],
        ),
    ] {
        let mut args = vec![board.as_str(), "--append", append, "--timeout", "180"];
        for marker in &markers {
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

    // The checker can fail: a marker that never appears ends in a timeout, exit 1, and no
    // QEMU left behind.
    let result = boot(
        &scratch.path,
        &[
            &format!("{ROOT}/board-configs/qemu-aarch64.toml"),
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
    let left = Command::new("pgrep")
        .args(["-f", "qemu-system-aarch64 -M virt"])
        .output()
        .unwrap();
    assert!(
        left.stdout.is_empty(),
        "QEMU left running: {}",
        stdout(&left)
    );

    // An image without /init: a kernel panic, reported with the console tail.
    let list = scratch.write(
        "empty.list",
        "dir /dev 0755 0 0\nnod /dev/console 0600 0 0 c 5 1\n",
    );
    let image = scratch.join("empty.cpio.gz");
    crate::util::ok(["pack", s(&list), "-o", s(&image)]);
    let result = boot(
        &scratch.path,
        &[
            &format!("{ROOT}/board-configs/qemu-aarch64.toml"),
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

    // kiln's own test mode on a shipped board: the probe is added to a copy of the image
    // and the host checks its reports against the board's options.
    let result = boot(
        &scratch.path,
        &[
            &format!("{ROOT}/board-configs/qemu-armv7.toml"),
            "--check",
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
    // Ctrl-alt-del pressed on x86_64's keyboard through the QEMU monitor: made soft by
    // rc.init, it reaches pid 1 as SIGINT and ends in a reboot.
    let result = boot(
        &scratch.path,
        &[
            &format!("{ROOT}/board-configs/qemu-x86_64.toml"),
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

    // -r and ISO 8601 timestamps, proven inside the guest.
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

    // The real-board machines boot the same userland with their own device trees.
    // raspberrypi3-64 powers off through bcm2835_wdt, a module kiln put in the image from
    // the kernel package's .modinfo closure and rc.init loaded; orangepi-pc gets PSCI from
    // QEMU. Both are checked through power-off.
    for (board, evidence) in [
        ("raspberrypi3-64", "bcm2835-wdt"),
        ("orangepi-pc", "PROBE done"),
    ] {
        let result = boot(
            &scratch.path,
            &[
                &format!("{ROOT}/board-configs/{board}.toml"),
                "--check",
                "--timeout",
                "300",
            ],
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
    for board in ["raspberrypi3-64", "orangepi-pc"] {
        let result = boot(
            &scratch.path,
            &[
                &format!("{ROOT}/board-configs/{board}.toml"),
                "--timeout",
                "240",
            ],
        );
        assert_eq!(
            result.code,
            Some(0),
            "{board}: {}\n{}",
            result.report,
            result.console
        );
        assert!(result.console.contains("s6-linux-init: stage 1"), "{board}");
        timings.push(format!("{board}:\n{}", result.report));
    }

    // Card and disk images (issue 6): the Pi's and the Orange Pi's SD cards (aarch64 and
    // armv7: a 32-bit userland cannot stat a time past 2038, so bad inode times show) and
    // the x86_64 disk as virtio, each built with the probe: kiln's stage 0 loads the storage modules, finds
    // the root by label and switch_roots; the probe then sees / on the ext4 partition with
    // its own nodes and owners as built, and the VM powers itself off.
    for (board, device) in [
        ("raspberrypi3-64", "/dev/mmcblk0p2"),
        ("orangepi-pc", "/dev/mmcblk0p2"),
        ("qemu-x86_64", "/dev/vda2"),
    ] {
        let result = boot(
            &scratch.path,
            &[
                &format!("{ROOT}/board-configs/{board}.toml"),
                "--disk",
                "--check",
                "--timeout",
                "240",
            ],
        );
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
        for wanted in [handover.as_str(), "reboot: Power down"] {
            assert!(
                result.console.contains(wanted),
                "{board}: no {wanted:?}:\n{}",
                result.console
            );
        }
        timings.push(format!("{board} (card/disk):\n{}", result.report));
    }
    eprintln!("{}", timings.join("\n"));
}
