//! Watching QEMU's serial console and deciding pass or fail from it: QEMU exits 0 even
//! after a kernel panic, so the verdict comes only from what the console said.
//!
//! The judging is a pure [`Watcher`]: it is fed console lines with their time and says
//! when a verdict is reached (unit-tested from recorded consoles). [`run`] spawns QEMU,
//! streams the console to the log file (and the terminal) and feeds the watcher.

use std::ffi::OsString;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

/// What the console must show.
/// `kiln boot --then`: a host command once stage 2 is done, then a power-off request.
#[derive(Debug, Clone)]
pub struct Then {
    pub command: String,
    /// The forwarded port kiln's in-guest listener powers the guest off on.
    pub poweroff: std::net::SocketAddr,
}

pub struct Expectations {
    /// Run this once stage 2 is done; its failure fails the boot.
    pub then: Option<Then>,
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
/// The example rc.init's line when a wave of declared services never became ready.
const NOT_READY: &str = "rc.init: not up and ready within";
const ENDINGS: [&str; 3] = [
    "reboot: Power down",
    "reboot: Restarting system",
    "reboot: System halted",
];
const PHASES: [(&str, &str); 11] = [
    ("U-Boot SPL 20", "U-Boot SPL"),
    ("U-Boot 20", "U-Boot"),
    ("SYSLINUX 6", "syslinux"),
    ("BdsDxe: starting", "UEFI starts the loader"),
    (
        "Found /extlinux/extlinux.conf",
        "U-Boot found extlinux.conf",
    ),
    ("Starting kernel ...", "kernel loaded (U-Boot)"),
    ("EFI stub: ", "kernel loaded (EFI stub)"),
    ("Run /init as init process", "kernel runs /init"),
    ("s6-linux-init: stage 1", "stage 1 (before s6-svscan)"),
    ("rc.init: stage 2 done", "stage 2 done"),
    ("rc.shutdown:", "stage 3"),
];
/// Console lines kept for the failure report.
const TAIL: usize = 25;

/// What a console line leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Keep watching.
    Watch,
    /// The ctrl-alt-del trigger appeared: press it now, then keep watching.
    PressCtrlAltDel,
    /// A verdict. `ended` says the guest asked QEMU to stop (power-off, reboot, halt),
    /// so QEMU should be given a moment to exit on its own.
    Verdict {
        passed: bool,
        reason: String,
        ended: bool,
    },
}

/// The pure judge of a console: fed lines, it records phases, markers and PROBE lines,
/// and decides.
pub struct Watcher<'a> {
    expect: &'a Expectations,
    pub tail: Vec<String>,
    pub probe_lines: Vec<String>,
    pub timings: Vec<(String, f64)>,
    pub marker_times: Vec<(String, f64)>,
}

impl<'a> Watcher<'a> {
    pub fn new(expect: &'a Expectations) -> Watcher<'a> {
        Watcher {
            expect,
            tail: Vec::new(),
            probe_lines: Vec::new(),
            timings: Vec::new(),
            marker_times: Vec::new(),
        }
    }

    /// One console line, `seconds` after QEMU started.
    pub fn feed(&mut self, line: &str, seconds: f64) -> Step {
        if line.contains("PROBE ") {
            self.probe_lines.push(line.to_string());
        }
        self.tail.push(line.to_string());
        if self.tail.len() > TAIL {
            self.tail.remove(0);
        }
        for (needle, phase) in PHASES {
            if line.contains(needle) && !self.timings.iter().any(|(seen, _)| seen == phase) {
                self.timings.push((phase.to_string(), seconds));
            }
        }
        for marker in &self.expect.markers {
            if line.contains(marker.as_str())
                && !self.marker_times.iter().any(|(seen, _)| seen == marker)
            {
                self.marker_times.push((marker.clone(), seconds));
            }
        }
        if line.contains(PANIC) {
            let why = if line.contains("Attempted to kill init") {
                "pid 1 died (kernel panic: Attempted to kill init)"
            } else {
                "kernel panic"
            };
            return Step::Verdict {
                passed: false,
                reason: why.to_string(),
                ended: false,
            };
        }
        if line.contains(NOT_READY) {
            return Step::Verdict {
                passed: false,
                reason: format!("stage 2 gave up on services: {}", line.trim()),
                ended: false,
            };
        }
        let all_markers = self.all_markers();
        if let Some(ending) = ENDINGS.iter().find(|ending| line.contains(**ending)) {
            self.timings
                .push(("QEMU told to stop".to_string(), seconds));
            let (passed, reason) = if all_markers {
                (true, format!("all markers seen, then \"{ending}\""))
            } else {
                (
                    false,
                    format!("\"{ending}\" before the markers {}", self.missing()),
                )
            };
            return Step::Verdict {
                passed,
                reason,
                ended: true,
            };
        }
        if all_markers && !self.expect.until_poweroff {
            return Step::Verdict {
                passed: true,
                reason: "all markers seen".to_string(),
                ended: false,
            };
        }
        if let Some((trigger, _)) = &self.expect.ctrl_alt_del {
            if line.contains(trigger.as_str()) {
                self.timings
                    .push(("ctrl-alt-del sent".to_string(), seconds));
                return Step::PressCtrlAltDel;
            }
        }
        Step::Watch
    }

    /// No verdict before the deadline.
    pub fn timed_out(&self) -> (bool, String) {
        (
            false,
            format!(
                "timeout: no verdict after {} s",
                self.expect.timeout.as_secs()
            ),
        )
    }

    /// QEMU exited before a verdict: `code` is its exit status (`None`: a signal).
    pub fn exited(&self, code: Option<i32>, qemu_errors: &str) -> (bool, String) {
        let code = code.map_or("a signal".to_string(), |code| code.to_string());
        let markers = if self.all_markers() {
            String::new()
        } else {
            format!(", markers {} never appeared", self.missing())
        };
        (
            false,
            format!(
                "QEMU exited ({code}) without a clean power-off{markers}; QEMU said: {}",
                qemu_errors.trim()
            ),
        )
    }

    fn all_markers(&self) -> bool {
        self.marker_times.len() == self.expect.markers.len()
    }

    fn missing(&self) -> String {
        let missing: Vec<String> = self
            .expect
            .markers
            .iter()
            .filter(|marker| !self.marker_times.iter().any(|(found, _)| found == *marker))
            .map(|marker| format!("{marker:?}"))
            .collect();
        missing.join(", ")
    }

    fn outcome(self, (passed, reason): (bool, String)) -> Outcome {
        Outcome {
            passed,
            reason,
            tail: self.tail,
            probe_lines: self.probe_lines,
            timings: self.timings,
            marker_times: self.marker_times,
        }
    }
}

/// Runs QEMU, watching the console. `echo` copies the console to stdout as it comes.
pub fn run(argv: &[OsString], log: &Path, expect: &Expectations, echo: bool) -> Result<Outcome> {
    let mut command = Command::new(&argv[0]);
    command
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = crate::host::signals::dies_with_kiln(&mut command)
        .spawn()
        .with_context(|| format!("unable to run {}", argv[0].to_string_lossy()))?;
    let _tracked = crate::host::signals::track(&child);
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

    let mut watcher = Watcher::new(expect);
    let mut verdict: Option<(bool, String)> = None;
    let (mut then_ran, mut then_failed) = (false, None::<String>);
    let mut ended = false;
    let deadline = start + expect.timeout;
    loop {
        let now = Instant::now();
        if now >= deadline {
            verdict = Some(watcher.timed_out());
            break;
        }
        let line = match lines.recv_timeout(deadline - now) {
            Ok(line) => line,
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        writeln!(log_file, "{line}")
            .with_context(|| format!("unable to write {}", log.display()))?;
        if echo {
            println!("{line}");
        }
        if let (Some(then), false) = (&expect.then, then_ran) {
            if line.contains(STAGE2_DONE) {
                then_ran = true;
                then_failed = run_then(then, deadline);
            }
        }
        match watcher.feed(&line, start.elapsed().as_secs_f64()) {
            Step::Watch => {}
            Step::PressCtrlAltDel => {
                if let Some((_, socket)) = &expect.ctrl_alt_del {
                    send_monitor(socket, "sendkey ctrl-alt-delete")?;
                }
            }
            Step::Verdict {
                passed,
                reason,
                ended: stop,
            } => {
                verdict = Some((passed, reason));
                ended = stop;
                break;
            }
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
    // The reader ends with QEMU's stdout; a panic there has nothing left to report.
    let _ = reader.join();
    let qemu_errors = errors.join().unwrap_or_default();
    let mut verdict = verdict.unwrap_or_else(|| watcher.exited(status.code(), &qemu_errors));
    if let Some(why) = then_failed {
        verdict = (false, why);
    } else if expect.then.is_some() && !then_ran {
        verdict.0 = false;
        verdict.1 = format!(
            "--then never ran ({STAGE2_DONE:?} did not appear): {}",
            verdict.1
        );
    }
    Ok(watcher.outcome(verdict))
}

/// The line stage 2 prints once every declared service is up.
const STAGE2_DONE: &str = "rc.init: stage 2 done";

/// Runs `--then`'s command (`sh -c` in its own process group, stdout and stderr to
/// kiln's stderr) until it exits or `deadline` (then its whole group is killed), then
/// asks the guest to power off, whatever the command did. `Some(reason)` when it failed.
fn run_then(then: &Then, deadline: Instant) -> Option<String> {
    use std::os::unix::process::CommandExt;
    eprintln!("kiln: stage 2 done; running --then {:?}", then.command);
    let started = Instant::now();
    let spawned = Command::new("sh")
        .arg("-c")
        .arg(&then.command)
        .stdin(Stdio::null())
        .stdout(std::io::stderr())
        .process_group(0)
        .spawn();
    let status = spawned.and_then(|mut child| {
        loop {
            if let Some(status) = child.try_wait()? {
                break Ok(status);
            }
            if Instant::now() >= deadline {
                let group = nix::unistd::Pid::from_raw(-(child.id() as i32));
                let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGKILL);
                let _ = child.wait();
                break Err(std::io::Error::other("killed at the boot's timeout"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    let failed = match &status {
        Ok(status) if status.success() => None,
        Ok(status) => Some(format!("--then {:?} failed: {status}", then.command)),
        Err(err) => Some(format!("--then {:?}: {err}", then.command)),
    };
    eprintln!(
        "kiln: --then finished in {:.1} s ({}); powering the guest off",
        started.elapsed().as_secs_f64(),
        match &status {
            Ok(status) => status.to_string(),
            Err(err) => err.to_string(),
        }
    );
    let sent = std::net::TcpStream::connect_timeout(&then.poweroff, Duration::from_secs(5))
        .and_then(|mut stream| stream.write_all(b"\n"));
    match (failed, sent) {
        (Some(why), _) => Some(why),
        (None, Err(err)) => Some(format!(
            "unable to ask the guest to power off through {}: {err}",
            then.poweroff
        )),
        (None, Ok(())) => None,
    }
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
mod tests;
