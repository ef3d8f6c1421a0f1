//! The QEMU accelerator: TCG, or KVM only where a cached trial boot shows it works.

use std::path::Path;
use std::time::Duration;

use super::console::{Expectations, run};
use super::qemu::{Artifacts, command};
use crate::arch::Arch;
use crate::config::Board;
use crate::host::temp::ScratchDir;

/// QEMU's accelerator, as `--accel` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Accel {
    /// KVM only when a cached trial boot shows it runs the board's kernel.
    Auto,
    Tcg,
    Kvm,
}

impl Accel {
    pub fn name(self) -> &'static str {
        match self {
            Accel::Auto => "auto",
            Accel::Tcg => "tcg",
            Accel::Kvm => "kvm",
        }
    }
}

/// The accelerator to use: `tcg` and `kvm` as asked; `auto` uses KVM only when `/dev/kvm`
/// exists, the board's arch is the host's, and a short trial boot of the board's own
/// kernel under KVM gets as far as the kernel running /init. `/dev/kvm` alone proves
/// nothing (on some hosts it is a nested module that hangs Debian's kernels). The trial's
/// answer is kept in the cache, per arch and kernel, so only the first boot pays for it.
/// Returns the accelerator and why.
pub fn choose(requested: Accel, board: &Board, kernel: &Path, cache: &Path) -> (Accel, String) {
    if requested != Accel::Auto {
        return (requested, "as asked".to_string());
    }
    let host_is_board = std::env::consts::ARCH == board.arch.name()
        || (std::env::consts::ARCH == "arm" && board.arch == Arch::Armv7);
    if !host_is_board || !Path::new("/dev/kvm").exists() {
        return (Accel::Tcg, "no KVM for this arch here".to_string());
    }
    // The answer is the kernel's, so the record is named by its content (FNV-1a).
    let Ok(bytes) = std::fs::read(kernel) else {
        return (Accel::Tcg, format!("unable to read {}", kernel.display()));
    };
    let kernel_hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    let record = cache.join(format!("kvm-trial-{}-{kernel_hash:016x}", board.arch));
    if let Ok(answer) = std::fs::read_to_string(&record) {
        let works = answer.trim() == "works";
        return (
            if works { Accel::Kvm } else { Accel::Tcg },
            format!(
                "KVM trial boot (cached in {}): {}",
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
    let argv = command(board, &artifacts, Some("rdinit=/kiln-kvm-trial"), "kvm");
    let Ok(scratch) = ScratchDir::create(&std::env::temp_dir(), "kvm-trial") else {
        return (
            Accel::Tcg,
            "no scratch directory for the KVM trial boot".to_string(),
        );
    };
    let log = scratch.path.join("console.log");
    let expect = Expectations {
        then: None,
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
    let answer = if works {
        "works"
    } else {
        "does not boot this kernel"
    };
    // Best effort: without the record the trial simply runs again next time.
    let _ = std::fs::create_dir_all(cache).and_then(|()| std::fs::write(&record, answer));
    (
        if works { Accel::Kvm } else { Accel::Tcg },
        format!("KVM trial boot: {answer}"),
    )
}
