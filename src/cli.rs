//! The command line: clap's types for every subcommand. `main` dispatches on them;
//! values clap can check (accelerator, shutdown action) are typed here, the rest is
//! validated by the stage that owns it, with the messages the tests pin.

use std::ffi::OsString;
use std::path::PathBuf;

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::boot::Action;
use crate::boot::accel::Accel;

#[derive(Parser)]
#[command(
    name = "kiln",
    version,
    about = "Unprivileged rootfs integration for embedded Linux"
)]
pub struct Cli {
    /// Fetch only what the board's lock pins: a missing or stale `BOARD.lock` is an error
    /// (for CI), not a fresh resolution.
    #[arg(long, global = true)]
    pub locked: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Build a cpio or tar archive from list files, makedevs tables, directories and archives.
    Pack {
        /// Output archive; its extension picks the format unless --format is given.
        #[arg(short, long)]
        output: PathBuf,
        /// cpio, cpio.gz, cpio.zst, cpio.xz, tar, tar.gz, tar.zst or tar.xz.
        #[arg(long)]
        format: Option<String>,
        /// Owner for entries from host directories (host owners mean nothing in an image).
        #[arg(long, default_value = "0:0", value_name = "UID:GID")]
        owner: String,
        /// gen_init_cpio lists, makedevs tables, DIR or DIR:/dest, archives; later ones override.
        #[arg(required = true, value_name = "SPEC")]
        specs: Vec<String>,
    },
    /// List a cpio or tar archive (any compression), or a .deb's files, like `tar -tv`.
    Ls {
        /// Print the gen_init_cpio list form instead, which `kiln pack` reads back.
        #[arg(long, conflicts_with = "manifest")]
        list: bool,
        /// Print the manifest: one line per entry with size and CRC-32 of file contents.
        #[arg(long)]
        manifest: bool,
        archive: PathBuf,
    },
    /// Build a board's root filesystem into archives (default: `out/BOARD/`), with a
    /// manifest and a per-package size report beside them.
    Build {
        board: PathBuf,
        /// Output directory.
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Formats instead of the board's `[output]` formats (repeatable).
        #[arg(long)]
        format: Vec<String>,
        /// Take .debs from this directory instead of downloading.
        #[arg(long, value_name = "DIR")]
        offline: Option<PathBuf>,
        /// Print why each library is in the image.
        #[arg(long)]
        explain: bool,
        /// Also copy each package's copyright file into DIR/PACKAGE/copyright (a legal-info
        /// directory beside the SBOM).
        #[arg(long, value_name = "DIR")]
        licenses: Option<PathBuf>,
        /// Also write the SBOM as CycloneDX 1.5 JSON, `BOARD.cdx.json` beside the SPDX one.
        #[arg(long)]
        cyclonedx: bool,
    },
    /// Make the board's partitioned SD-card or disk image (its `[image]` table), without
    /// root: an ext4 root partition holding the image tree with its owners, modes and
    /// device nodes, and a FAT boot partition with the kernel, the dtb, a stage-0
    /// initramfs that mounts the root by label, and cmdline.txt.
    Image {
        board: PathBuf,
        /// Output file (default: `out/BOARD/BOARD.img`).
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Take .debs and source packages from this directory instead of downloading.
        #[arg(long, value_name = "DIR")]
        offline: Option<PathBuf>,
        /// Also write the SBOM as CycloneDX 1.5 JSON, `CARD.cdx.json` beside the SPDX one.
        #[arg(long)]
        cyclonedx: bool,
    },
    /// Boot a board on QEMU and judge the boot by its serial console: exit 0 when every
    /// expected marker appeared (and, with --expect, the guest then powered off cleanly), 1
    /// when it booted but failed (panic, pid 1 died, a marker missing, timeout).
    Boot(BootArgs),
    /// Write an image to a block device (an SD card) or a file, then sync, read back and
    /// compare. Refuses mounted devices, the system's own disk, non-removable disks
    /// (unless --force) and targets smaller than the image; asks first unless --yes.
    Flash {
        image: PathBuf,
        device: PathBuf,
        /// Allow a disk that does not say it is removable.
        #[arg(long)]
        force: bool,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// Download a board's .deb files (its packages' Depends closure and its kernel) into
    /// the cache, through the host's apt configuration, without root.
    Fetch {
        board: PathBuf,
        /// Take .debs from this directory instead of downloading.
        #[arg(long, value_name = "DIR")]
        offline: Option<PathBuf>,
        /// Refresh the package lists even if they are less than a day old.
        #[arg(long)]
        refresh: bool,
    },
    /// Resolve the board's packages and pin them in `BOARD.lock` beside the board file:
    /// versions, sizes and SHA-256 of every .deb, the apt suite each came from, and of
    /// every file of a source package a bootloader is built from (U-Boot).
    Lock {
        board: PathBuf,
        /// Resolve afresh (refreshing apt's lists) even if the lock is up to date.
        #[arg(long)]
        update: bool,
        /// With --update: only these packages (or source packages) move; the others keep
        /// their locked versions.
        #[arg(value_name = "PKG", requires = "update")]
        packages: Vec<String>,
        /// Take .debs and source packages from this directory instead of downloading.
        #[arg(long, value_name = "DIR")]
        offline: Option<PathBuf>,
    },
    /// Copy every .deb and source package file the board's lock pins, verified, into DIR
    /// with a SHA256SUMS index, for `--offline DIR` builds without the mirror.
    Vendor { board: PathBuf, dir: PathBuf },
    /// Load and validate a board config (following `inherit`) and print it resolved.
    Config { board: PathBuf },
    /// Check an archive as a whole: every symlink resolves, every script's `#!`
    /// interpreter and every ELF object's loader and libraries are in it; exit 1 when one
    /// is not.
    Check {
        /// x86_64, aarch64 or armv7.
        #[arg(long, required_unless_present = "board", conflicts_with = "board")]
        arch: Option<String>,
        /// The board the archive was built from: its arch, its `[check] allow_dangling`,
        /// and its packages (fetched) to name what provides a missing path.
        #[arg(long)]
        board: Option<PathBuf>,
        /// With --board: take the board's .debs from this directory.
        #[arg(long, value_name = "DIR", requires = "board")]
        offline: Option<PathBuf>,
        /// Print why each library is there: object, DT_NEEDED/PT_INTERP, where it was found.
        #[arg(long)]
        explain: bool,
        archive: PathBuf,
    },
    /// Compare two archives entry by entry; exit 1 when they differ.
    Diff { a: PathBuf, b: PathBuf },
    /// s6-linux-init-maker, as a drop-in: `kiln s6-linux-init-maker [options] dir > stage1`.
    #[command(name = "s6-linux-init-maker", disable_help_flag = true)]
    Maker {
        #[arg(allow_hyphen_values = true, trailing_var_arg = true)]
        args: Vec<OsString>,
    },
}

#[derive(clap::Args)]
pub struct BootArgs {
    pub board: PathBuf,
    /// Boot this initramfs, or this card/disk image (kernel, dtb, initramfs and command
    /// line from its boot partition, the image attached as the board's `[qemu] drive`),
    /// instead of building the board's.
    #[arg(long)]
    pub image: Option<PathBuf>,
    /// Build the board's card/disk image (`kiln image`) and boot that instead of the
    /// initramfs; with --check the image carries the probe, which also checks the root.
    #[arg(long, conflicts_with = "image")]
    pub disk: bool,
    /// Boot a card the QEMU way: kernel, initramfs, dtb and command line from its boot
    /// partition handed to QEMU (-kernel), instead of through the board's firmware.
    #[arg(long)]
    pub direct: bool,
    /// Which of the board's `[boot] firmware` chains boots the card (default: the
    /// first): bios, uefi, u-boot or pi.
    #[arg(long, value_name = "FIRMWARE", conflicts_with = "direct")]
    pub firmware: Option<String>,
    /// Kernel image instead of the one in the board's kernel package.
    #[arg(long)]
    pub kernel: Option<PathBuf>,
    /// Device tree instead of the board's.
    #[arg(long)]
    pub dtb: Option<PathBuf>,
    /// Words added to the kernel command line.
    #[arg(long)]
    pub append: Option<String>,
    /// Seconds before giving up (scaled by `KILN_TIMEOUT_SCALE`).
    #[arg(long, default_value_t = 120)]
    pub timeout: u64,
    /// Text that must appear on the console (repeatable); then a clean power-off is
    /// required too. Default: stage 2 finishing, after which QEMU is stopped.
    #[arg(long)]
    pub expect: Vec<String>,
    /// Attach the console to this terminal instead (ctrl-a x leaves QEMU).
    #[arg(long)]
    pub interactive: bool,
    /// QEMU accelerator: auto (KVM only when a cached trial boot shows it works), tcg
    /// or kvm.
    #[arg(long, value_enum, default_value = "auto")]
    pub accel: Accel,
    /// Take .debs and source packages from this directory instead of downloading.
    #[arg(long, value_name = "DIR")]
    pub offline: Option<PathBuf>,
    /// kiln's test mode: add an in-guest probe to (a copy of) the image, boot, check
    /// what the init (s6, runit or daemontools) did against the board's options, then
    /// shut down.
    #[arg(long, conflicts_with_all = ["image", "interactive"])]
    pub check: bool,
    /// How --check shuts down: poweroff, reboot, halt, sigint, sigterm, or ctrl-alt-del (pressed
    /// through the QEMU monitor; needs a keyboard, e.g. x86_64's q35).
    #[arg(long, value_enum, default_value = "poweroff", requires = "check")]
    pub action: Action,
    /// Give the guest QEMU user networking (it reaches only QEMU's own DHCP and DNS),
    /// through the board's `[qemu] nic`.
    #[arg(long)]
    pub net: bool,
    /// Forward TCP HOSTPORT on 127.0.0.1 to the guest's GUESTPORT (repeatable; implies
    /// --net).
    #[arg(long, value_name = "HOSTPORT:GUESTPORT")]
    pub forward: Vec<String>,
    /// Run COMMAND on the host (sh -c) once stage 2 is done and every declared service
    /// is up, then power the guest off: the boot passes iff COMMAND exits 0 and the
    /// power-off is clean (implies --net).
    #[arg(long, value_name = "COMMAND", conflicts_with_all = ["check", "interactive", "expect"])]
    pub then: Option<String>,
}

impl BootArgs {
    /// What `kiln boot` was asked, for the boot stage.
    pub fn into_request(self) -> crate::boot::Request {
        crate::boot::Request {
            image: self.image,
            disk: self.disk,
            direct: self.direct,
            firmware: self.firmware,
            kernel: self.kernel,
            dtb: self.dtb,
            append: self.append,
            timeout: self.timeout,
            expect: self.expect,
            interactive: self.interactive,
            accel: self.accel,
            offline: self.offline,
            check: self.check.then_some(self.action),
            net: self.net || !self.forward.is_empty() || self.then.is_some(),
            forward: self.forward,
            then: self.then,
        }
    }
}

/// Parses the command line. Help and version go to stdout (exit 0); a usage error is
/// printed like every error, `kiln: error: ...`, and is exit 100.
pub fn parse(args: &[OsString]) -> Result<Cli, ExitCode> {
    Cli::try_parse_from(args).map_err(|err| {
        let text = err.render().to_string();
        if !err.use_stderr() {
            // Nothing sensible is left to do if stdout is gone.
            let _ = std::io::stdout().write_all(text.as_bytes());
            return ExitCode::SUCCESS;
        }
        if text.starts_with("error:") {
            eprint!("kiln: {text}");
        } else {
            // No command at all: the help, then what is wrong, as every error says it.
            eprint!("{text}\nkiln: error: no command given (note: kiln --help lists them)\n");
        }
        ExitCode::from(crate::error::EXIT_INPUT)
    })
}

/// A command's output on stdout, flushed.
pub fn write_stdout(bytes: &[u8]) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(bytes)
        .and_then(|()| stdout.flush())
        .context("unable to write to stdout")
}
