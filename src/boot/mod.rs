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
use crate::config::boot::Firmware;
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
    /// `kill -TERM 1`, what busybox reboot sends.
    Sigterm,
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
            Action::Sigterm => "sigterm",
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
    /// Boot a card with -kernel, not through the firmware.
    pub direct: bool,
    /// The `[boot] firmware` chain to boot a card through, by name.
    pub firmware: Option<String>,
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
    let card_given = request
        .image
        .as_ref()
        .is_some_and(|image| crate::image::table::is_disk_image(image));
    let chain = chain(board, request, card_given || request.disk)?;
    let mut additions = match (request.check, &then) {
        (Some(_), _) => probe::additions(board)?,
        (None, Some(_)) => then::additions(),
        (None, None) => Additions::default(),
    };
    // A card carries its command line, the probe's action too: the firmware reads it
    // from there, and --direct boots the same cmdline.txt.
    if let (Some(action), true) = (request.check, request.disk) {
        additions
            .cmdline
            .push(format!("KILN_PROBE_ACTION={}", action.name()));
    }
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
    if let Some(action) = request.check.filter(|_| disk.is_none()) {
        let words = format!("KILN_PROBE_ACTION={}", action.name());
        append = Some(match append {
            Some(more) => format!("{more} {words}"),
            None => words,
        });
    }
    if request.check.is_some() {
        expect.push("PROBE done".to_string());
    }
    let card = match (&disk, chain) {
        (Some(disk), Some(Firmware::Pi)) => Some(card::from_pi_card(board, disk, &out_dir)?),
        (Some(disk), _) => Some(card::from_card(board, disk, &out_dir)?),
        (None, _) => None,
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
    let mut argv = match chain {
        // QEMU stands in for the GPU firmware: what config.txt names, with -kernel.
        Some(Firmware::Pi) => qemu::command(board, &artifacts, None, accel.name()),
        Some(firmware) => {
            if let Some((file, package)) = qemu::machine_firmware(board, firmware) {
                tool::data_file(file, package)?;
            }
            let card = disk.as_ref().context("a firmware boot boots a card")?;
            qemu::firmware_command(board, card, firmware, accel.name())
        }
        None => qemu::command(board, &artifacts, append.as_deref(), accel.name()),
    };
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
    let how = match chain {
        Some(Firmware::Pi) => "through its pi firmware (QEMU emulates the GPU firmware stage: it loads the kernel, initramfs, device tree and command line the card's config.txt names)".to_string(),
        Some(firmware) => format!("through its {} firmware", firmware.name()),
        None if disk.is_some() => "directly (-kernel from the card)".to_string(),
        None => "directly (-kernel)".to_string(),
    };
    eprintln!(
        "kiln: booting {} {how} with {program} (accel {}: {why})",
        board.name,
        accel.name()
    );
    eprintln!("kiln: qemu: {}", tool::shell_quoted(&argv));
    if request.interactive {
        let mut command = std::process::Command::new(&argv[0]);
        command.args(&argv[1..]);
        let mut child = crate::host::signals::dies_with_kiln(&mut command)
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

/// Which firmware chain boots the card, or `None` for a direct (-kernel) boot: a card
/// boots through the board's first `[boot] firmware` unless `--direct` or `--firmware`
/// says otherwise, and a board without one boots directly.
fn chain(board: &Board, request: &Request, card: bool) -> Result<Option<Firmware>> {
    let usage = |message: String| Err(crate::error::input(message));
    if !card || request.direct {
        if let Some(name) = &request.firmware {
            return usage(format!(
                "--firmware {name}: only a card boots through firmware (note: give --image CARD or --disk)"
            ));
        }
        return Ok(None);
    }
    let Some(boot) = &board.boot else {
        if let Some(name) = &request.firmware {
            return usage(format!(
                "--firmware {name}: {} names no [boot] firmware",
                board.file.display()
            ));
        }
        return Ok(None);
    };
    let firmware = match &request.firmware {
        None => boot.firmware[0],
        Some(name) => match Firmware::from_name(name).filter(|one| boot.has(*one)) {
            Some(firmware) => firmware,
            None => {
                let names: Vec<&str> = boot.firmware.iter().map(|one| one.name()).collect();
                return usage(format!(
                    "--firmware {name}: {} boots through {} (its [boot] firmware)",
                    board.file.display(),
                    names.join(" or ")
                ));
            }
        },
    };
    for (option, given) in [
        ("--kernel", request.kernel.is_some()),
        ("--dtb", request.dtb.is_some()),
        ("--append", request.append.is_some()),
    ] {
        if given {
            return usage(format!(
                "{option}: the {} firmware reads the kernel, dtb and command line from the card (note: add --direct to boot with -kernel)",
                firmware.name()
            ));
        }
    }
    Ok(Some(firmware))
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
            text.push_str(&format!("added service up {ms} ms after it was added (s6-svscanctl -a; runsvdir and svscan find it on their poll)\n"));
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
