//! The watcher's verdicts on consoles (`tests/data/console/*.log`), line by line with
//! one second per line, as `run` would feed them. `poweroff.log` and `panic-no-init.log`
//! are recorded from real boots (qemu-aarch64 `--check`, and an initramfs without
//! `/init`); the others are cut down to the lines that decide.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;

fn expect(markers: &[&str], until_poweroff: bool) -> Expectations {
    Expectations {
        then: None,
        markers: markers.iter().map(|m| m.to_string()).collect(),
        until_poweroff,
        timeout: Duration::from_secs(120),
        ctrl_alt_del: None,
    }
}

/// Feeds a recorded console; returns the verdict (or `None` at its end), the step
/// (1-based line) it came at, and the watcher's phases.
fn judge(log: &str, expectations: &Expectations) -> (Option<Step>, usize, Vec<String>) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/console")
        .join(log);
    let text = std::fs::read_to_string(&path).unwrap();
    let mut watcher = Watcher::new(expectations);
    for (index, line) in text.lines().enumerate() {
        let step = watcher.feed(line, index as f64);
        if matches!(step, Step::Verdict { .. }) {
            let phases = watcher.timings.iter().map(|(p, _)| p.clone()).collect();
            return (Some(step), index + 1, phases);
        }
    }
    let phases = watcher.timings.iter().map(|(p, _)| p.clone()).collect();
    (None, text.lines().count(), phases)
}

fn verdict(passed: bool, reason: &str, ended: bool) -> Option<Step> {
    Some(Step::Verdict {
        passed,
        reason: reason.to_string(),
        ended,
    })
}

#[test]
fn a_clean_power_off_after_the_markers_passes() {
    let (step, line, phases) = judge("poweroff.log", &expect(&["PROBE done"], true));
    assert_eq!(
        step,
        verdict(true, "all markers seen, then \"reboot: Power down\"", true)
    );
    assert_eq!(line, 244);
    assert_eq!(
        phases,
        vec![
            "kernel runs /init",
            "stage 1 (before s6-svscan)",
            "stage 2 done",
            "stage 3",
            "QEMU told to stop"
        ]
    );
}

#[test]
fn reboot_and_halt_are_clean_endings_too() {
    for (log, ending) in [
        ("reboot.log", "reboot: Restarting system"),
        ("halt.log", "reboot: System halted"),
    ] {
        let (step, ..) = judge(log, &expect(&["PROBE done"], true));
        let reason = format!("all markers seen, then \"{ending}\"");
        assert_eq!(step, verdict(true, &reason, true), "{log}");
    }
}

#[test]
fn without_expectations_stage_2_done_is_enough() {
    let (step, line, _) = judge("poweroff.log", &expect(&["rc.init: stage 2 done"], false));
    assert_eq!(step, verdict(true, "all markers seen", false));
    assert_eq!(
        line, 223,
        "stops at the marker, without waiting for power-off"
    );
}

#[test]
fn a_kernel_panic_fails() {
    let (step, line, _) = judge(
        "panic-no-init.log",
        &expect(&["rc.init: stage 2 done"], false),
    );
    assert_eq!(step, verdict(false, "kernel panic", false));
    assert_eq!(line, 220);
}

#[test]
fn pid_1_dying_is_named() {
    let (step, ..) = judge("pid1-died.log", &expect(&["rc.init: stage 2 done"], false));
    assert_eq!(
        step,
        verdict(
            false,
            "pid 1 died (kernel panic: Attempted to kill init)",
            false
        )
    );
}

#[test]
fn powering_off_before_a_marker_fails_naming_it() {
    let (step, ..) = judge("early-poweroff.log", &expect(&["PROBE done"], true));
    assert_eq!(
        step,
        verdict(
            false,
            "\"reboot: Power down\" before the markers \"PROBE done\"",
            true
        )
    );
}

#[test]
fn a_stalled_boot_reaches_no_verdict_and_times_out() {
    let expectations = expect(&["rc.init: stage 2 done"], false);
    let (step, ..) = judge("stalls.log", &expectations);
    assert_eq!(step, None);
    let watcher = Watcher::new(&expectations);
    assert_eq!(
        watcher.timed_out(),
        (false, "timeout: no verdict after 120 s".to_string())
    );
    assert_eq!(
        watcher.exited(Some(1), "qemu: could not load kernel\n"),
        (
            false,
            "QEMU exited (1) without a clean power-off, markers \"rc.init: stage 2 done\" never appeared; QEMU said: qemu: could not load kernel".to_string()
        )
    );
}

#[test]
fn ctrl_alt_del_is_pressed_at_its_trigger() {
    let mut expectations = expect(&["PROBE done"], true);
    expectations.ctrl_alt_del = Some((
        "PROBE waiting for ctrl-alt-del".to_string(),
        PathBuf::from("m"),
    ));
    let mut watcher = Watcher::new(&expectations);
    assert_eq!(watcher.feed("PROBE pid1=s6-svscan", 1.0), Step::Watch);
    assert_eq!(
        watcher.feed("PROBE waiting for ctrl-alt-del", 2.0),
        Step::PressCtrlAltDel
    );
    assert_eq!(watcher.probe_lines.len(), 2);
}

#[test]
fn the_tail_keeps_the_last_lines() {
    let expectations = expect(&["never"], false);
    let mut watcher = Watcher::new(&expectations);
    for index in 0..40 {
        watcher.feed(&format!("line {index}"), f64::from(index));
    }
    assert_eq!(watcher.tail.len(), 25);
    assert_eq!(watcher.tail[0], "line 15");
}

/// A wave of declared services that never became ready fails the boot at once, naming
/// them, instead of waiting for a "stage 2 done" that will not come (recorded from a boot
/// whose network service could not say it was ready).
#[test]
fn services_never_ready_fail_at_once() {
    let (step, line, _) = judge("not-ready.log", &expect(&["rc.init: stage 2 done"], false));
    assert_eq!(
        step,
        verdict(
            false,
            "stage 2 gave up on services: rc.init: not up and ready within 60000 ms: /run/service/network; later services not started",
            false
        )
    );
    assert_eq!(line, 4);
}
