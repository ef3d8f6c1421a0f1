//! `kiln boot`: what to boot (the board's initramfs, its card image, or a given file),
//! which kernel, on QEMU, judged from the serial console; with `--check`, kiln's
//! in-guest probe proves what the s6 init did against the board's options.
//!
//! The only module besides `fetch` and `image` that spawns processes: QEMU, through
//! `console::run`. The argv builder (`qemu`) and the verdicts (`console::Watcher`,
//! `probe::compare`) are pure.

pub mod accel;
pub mod card;
pub mod console;
pub mod probe;
pub mod qemu;
pub mod then;

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::archive::{Compression, Container, Format};
use crate::config::{Board, KernelSource};
use crate::error::Verdict;
use crate::host::tool;
use crate::rootfs::{self, Additions};
use qemu::Artifacts;

/// How `--check` ends the boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Action {
    Poweroff,
    Reboot,
    Halt,
    Sigint,
    /// Pressed through the QEMU monitor; needs a keyboard (x86_64's q35).
    CtrlAltDel,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::Poweroff => "poweroff",
            Action::Reboot => "reboot",
            Action::Halt => "halt",
            Action::Sigint => "sigint",
            Action::CtrlAltDel => "ctrl-alt-del",
        }
    }
}

/// What to boot, and how.
pub struct Request {
    /// A given initramfs or card image instead of building the board's.
    pub image: Option<PathBuf>,
    /// Build the board's card image and boot it.
    pub disk: bool,
    pub kernel: Option<PathBuf>,
    pub dtb: Option<PathBuf>,
    pub append: Option<String>,
    pub timeout: u64,
    pub expect: Vec<String>,
    pub interactive: bool,
    pub accel: accel::Accel,
    pub offline: Option<PathBuf>,
    /// `--check` with its shutdown action.
    pub check: Option<Action>,
    /// QEMU user networking through the board's NIC.
    pub net: bool,
    /// `HOSTPORT:GUESTPORT` TCP forwards, as given.
    pub forward: Vec<String>,
    /// A host command run once the guest is up, then a power-off.
    pub then: Option<String>,
}

/// What the boot showed, for the report.
pub struct Report {
    pub verdict: Verdict,
    pub text: String,
}

/// Builds (unless given) and boots the board, returning the verdict and the report.
pub fn boot(board: &Board, request: &Request) -> Result<Report> {
    for (option, path) in [
        ("--image", &request.image),
        ("--kernel", &request.kernel),
        ("--dtb", &request.dtb),
    ] {
        if let Some(path) = path {
            if !path.is_file() {
                return Err(crate::error::input(format!(
                    "{option} {}: not a file (note: give an initramfs or card image kiln wrote, or a kernel file)",
                    path.display()
                )));
            }
        }
    }
    let mut forwards = Vec::new();
    for text in &request.forward {
        forwards.push(qemu::parse_forward(text).map_err(crate::error::input)?);
    }
    if request.net && board.qemu.nic.is_none() {
        return Err(crate::error::input(format!(
            "{}: [qemu] nic: none known for machine {} (note: set [qemu] nic to the QEMU -device of the board's network adapter)",
            board.file.display(),
            board.qemu.machine
        )));
    }
    // --then powers the guest off through a forwarded port kiln's addition listens on.
    let then = match &request.then {
        Some(command) => {
            let port = qemu::free_port().context("unable to find a free local port")?;
            forwards.push((port, then::GUEST_PORT));
            Some(console::Then {
                command: command.clone(),
                poweroff: std::net::SocketAddr::from(([127, 0, 0, 1], port)),
            })
        }
        None => None,
    };
    let out_dir = board.out_dir();
    // --check builds a copy with the probe in it, beside the board's own outputs.
    let build_dir = match (request.check, &then) {
        (Some(_), _) => out_dir.join("check"),
        (None, Some(_)) => out_dir.join("then"),
        (None, None) => out_dir.clone(),
    };
    let additions = match (request.check, &then) {
        (Some(_), _) => probe::additions(board)?,
        (None, Some(_)) => then::additions(),
        (None, None) => Additions::default(),
    };
    let mut text = String::new();
    let mut expected_probe = None;
    let mut debs = None;
    let mut disk = None;
    let image = match &request.image {
        Some(image) => {
            if crate::image::table::is_disk_image(image) {
                disk = Some(image.clone());
            }
            image.clone()
        }
        None if request.disk => {
            let output = board.image_path(&build_dir);
            let mut made =
                crate::image::make(board, &output, request.offline.as_deref(), &additions)?;
            text.push_str(&made.report(board));
            if request.check.is_some() {
                let mut expected = probe::expected(&made.rootfs.init, &board.qemu.console);
                let spec = board
                    .image
                    .as_ref()
                    .context("the image was built from it")?;
                expected.extend(probe::expected_root(&made.rootfs.init, &spec.root().label));
                expected_probe = Some(expected);
            }
            debs = Some(std::mem::take(&mut made.rootfs.debs));
            disk = Some(output.clone());
            output
        }
        None => {
            let mut built = rootfs::build(
                board,
                &build_dir,
                &[Format::new(Container::Cpio, Compression::Gzip)],
                request.offline.as_deref(),
                &additions,
            )?;
            if request.check.is_some() {
                let mut expected = probe::expected(&built.rootfs.init, &board.qemu.console);
                // An initramfs boot: / is the kernel's rootfs.
                expected.push(("root-fs".to_string(), "rootfs".to_string()));
                expected_probe = Some(expected);
            }
            debs = Some(std::mem::take(&mut built.rootfs.debs));
            built.outputs.remove(0)
        }
    };
    let mut append = request.append.clone();
    let mut expect = request.expect.clone();
    if let Some(action) = request.check {
        let words = format!("KILN_PROBE_ACTION={}", action.name());
        append = Some(match append {
            Some(more) => format!("{more} {words}"),
            None => words,
        });
        expect.push("PROBE done".to_string());
    }
    let card = match &disk {
        Some(disk) => Some(card::from_card(board, disk, &out_dir)?),
        None => None,
    };
    let (kernel, dtb) = pick_kernel(board, request, card.as_ref(), debs, &out_dir)?;
    let program = qemu::binary(board.arch);
    tool::find(program)?;
    let artifacts = match card {
        Some(card) => Artifacts {
            kernel,
            dtb,
            ..card
        },
        None => Artifacts {
            kernel,
            initrd: Some(image.clone()),
            dtb,
            cmdline: None,
            disk: None,
        },
    };
    let (accel, why) = accel::choose(
        request.accel,
        board,
        &artifacts.kernel,
        &crate::fetch::cache_dir(),
    );
    let mut argv = qemu::command(board, &artifacts, append.as_deref(), accel.name());
    if request.net {
        let nic = board.qemu.nic.as_deref().unwrap_or_default();
        qemu::add_network(&mut argv, nic, &forwards);
    }
    let mut ctrl_alt_del = None;
    if request.check == Some(Action::CtrlAltDel) {
        let socket = PathBuf::from(format!("{}.monitor", image.display()));
        // Stale from an earlier run: QEMU cannot bind over it; absent is fine.
        let _ = std::fs::remove_file(&socket);
        argv.push("-monitor".into());
        argv.push(format!("unix:{},server,nowait", socket.display()).into());
        ctrl_alt_del = Some(("PROBE waiting for ctrl-alt-del".to_string(), socket));
    }
    eprint!("{text}");
    text.clear();
    eprintln!(
        "kiln: booting {} with {program} (accel {}: {why})",
        board.name,
        accel.name()
    );
    if request.interactive {
        let mut child = std::process::Command::new(&argv[0])
            .args(&argv[1..])
            .spawn()
            .with_context(|| format!("unable to run {program}"))?;
        let _tracked = crate::host::signals::track(&child);
        let status = child
            .wait()
            .with_context(|| format!("unable to wait for {program}"))?;
        return Ok(Report {
            verdict: if status.success() {
                Verdict::Passed
            } else {
                Verdict::Failed
            },
            text,
        });
    }
    let log = PathBuf::from(format!("{}.console.log", image.display()));
    let until_poweroff = !expect.is_empty();
    let markers = if expect.is_empty() {
        vec!["rc.init: stage 2 done".to_string()]
    } else {
        expect
    };
    let until_poweroff = until_poweroff || then.is_some();
    let expectations = console::Expectations {
        then,
        markers,
        until_poweroff,
        timeout: console::scaled(request.timeout),
        ctrl_alt_del,
    };
    let outcome = console::run(&argv, &log, &expectations, true)?;
    Ok(report(&outcome, expected_probe.as_deref(), &argv, &log))
}

/// The kernel and dtb: given, from the card, the board's file, or its package.
fn pick_kernel(
    board: &Board,
    request: &Request,
    card: Option<&Artifacts>,
    debs: Option<std::collections::BTreeMap<String, PathBuf>>,
    out_dir: &Path,
) -> Result<(PathBuf, Option<PathBuf>)> {
    Ok(match (&request.kernel, card, &board.kernel.source) {
        (Some(kernel), _, _) => (kernel.clone(), request.dtb.clone()),
        (None, Some(card), _) => (
            card.kernel.clone(),
            request.dtb.clone().or(card.dtb.clone()),
        ),
        (None, None, KernelSource::File(path)) => (path.clone(), request.dtb.clone()),
        (None, None, _) => {
            // The build already fetched the kernel package; fetch only for --image.
            let debs = match debs {
                Some(debs) => debs,
                None => crate::fetch::fetch_board(board, request.offline.as_deref(), false)?,
            };
            let deb = crate::fetch::kernel_deb(&debs).cloned().ok_or_else(|| {
                crate::error::input(format!(
                    "{}: [kernel] names no package (note: set [kernel] package or path, or pass --kernel)",
                    board.file.display()
                ))
            })?;
            let (kernel, board_dtb) = crate::image::kernel::from_package(board, &deb, out_dir)?;
            (kernel, request.dtb.clone().or(board_dtb))
        }
    })
}

/// The phase table, the probe's checks, and the verdict with its evidence.
fn report(
    outcome: &console::Outcome,
    expected_probe: Option<&[(String, String)]>,
    argv: &[OsString],
    log: &Path,
) -> Report {
    let mut text = String::from("phase                          seconds\n");
    for (phase, seconds) in outcome.timings.iter().chain(outcome.marker_times.iter()) {
        text.push_str(&format!("{phase:<30} {seconds:>7.2}\n"));
    }
    text.push_str(&format!("kiln: console log: {}\n", log.display()));
    let mut passed = outcome.passed;
    let mut reason = outcome.reason.clone();
    if let Some(expected) = expected_probe {
        let rows = probe::compare(expected, &outcome.probe_lines);
        text.push_str(&format!("{:<16} {:<44} got\n", "check", "expected"));
        for row in &rows {
            text.push_str(&format!(
                "{:<16} {:<44} {}{}\n",
                row.key,
                row.want,
                row.got,
                if row.ok { "" } else { "   <-- FAILED" }
            ));
        }
        if let Some(ms) = outcome
            .probe_lines
            .iter()
            .find_map(|line| line.split("PROBE added-service-ms=").nth(1))
        {
            text.push_str(&format!("added service up {ms} ms after s6-svscanctl -a\n"));
        }
        let failed: Vec<&str> = rows
            .iter()
            .filter(|row| !row.ok)
            .map(|row| row.key.as_str())
            .collect();
        if passed && !failed.is_empty() {
            passed = false;
            reason = format!("in-guest checks failed: {}", failed.join(", "));
        }
    }
    if passed {
        text.push_str(&format!("kiln: boot passed: {reason}\n"));
    } else {
        text.push_str(&format!(
            "kiln: boot failed: {reason}\nkiln: last console lines:\n"
        ));
        for line in &outcome.tail {
            text.push_str(&format!("  | {line}\n"));
        }
        text.push_str(&format!(
            "kiln: reproduce with: {}\n",
            tool::shell_quoted(argv)
        ));
    }
    Report {
        verdict: if passed {
            Verdict::Passed
        } else {
            Verdict::Failed
        },
        text,
    }
}
