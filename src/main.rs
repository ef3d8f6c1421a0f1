//! kiln: unprivileged rootfs integration for embedded Linux.
//!
//! `main` parses the command line, calls the stage functions and maps every outcome to
//! one exit code: 0 success, 1 "differs"/"check failed", 100 bad input, 111 system error.
//! Nothing below `main` exits the process.

mod arch;
mod archive;
mod boot;
mod build;
mod busybox;
mod config;
mod deb;
mod elf;
mod fetch;
mod flash;
mod init;
mod listing;
mod modules;
mod overlay;
mod spec;
mod tree;

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use crate::archive::Format;
use crate::tree::Tree;

/// Exit status for bad input: usage, config, validation (skarnet's convention).
pub const EXIT_USAGE: u8 = 100;
/// Exit status for system failures: I/O, missing tools.
pub const EXIT_SYSTEM: u8 = 111;

/// An error in what the user asked for; maps to exit status 100.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

#[derive(Parser)]
#[command(
    name = "kiln",
    version,
    about = "Unprivileged rootfs integration for embedded Linux"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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
        /// Take .debs from this directory instead of downloading.
        #[arg(long, value_name = "DIR")]
        offline: Option<PathBuf>,
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
    /// Load and validate a board config (following `inherit`) and print it resolved.
    Config { board: PathBuf },
    /// Check that every ELF object in an archive finds its loader and libraries inside the
    /// archive, for the given arch; exit 1 when one does not.
    Check {
        /// x86_64, aarch64 or armv7.
        #[arg(long)]
        arch: String,
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

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    let program = args
        .first()
        .and_then(|arg0| Path::new(arg0).file_name())
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "kiln".to_string());
    // Invoked through a link named s6-linux-init-maker: behave exactly as the maker.
    if program == "s6-linux-init-maker" {
        return ExitCode::from(init::cli::main(&program, &program, &args[1..]));
    }
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(err) => {
            let code = if err.use_stderr() { EXIT_USAGE } else { 0 };
            // Nothing sensible is left to do if the terminal is gone.
            let _ = err.print();
            return ExitCode::from(code);
        }
    };
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("kiln: error: {err:#}");
            ExitCode::from(exit_code(&err))
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Pack {
            output,
            format,
            owner,
            specs,
        } => pack(&output, format.as_deref(), &owner, &specs),
        Command::Ls {
            list,
            manifest,
            archive,
        } => ls(&archive, list, manifest),
        Command::Diff { a, b } => diff(&a, &b),
        Command::Build {
            board,
            output,
            format,
            offline,
            explain,
        } => build(&board, output, &format, offline, explain),
        Command::Boot(args) => boot(args),
        Command::Image {
            board,
            output,
            offline,
        } => image(&board, output, offline),
        Command::Flash {
            image,
            device,
            force,
            yes,
        } => {
            flash::flash(&image, &device, &flash::Options { force, yes })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Fetch {
            board,
            offline,
            refresh,
        } => {
            let board = config::Board::load(&board).map_err(|err| UsageError(err.to_string()))?;
            let debs = fetch::fetch_board(&board, offline.as_deref(), refresh)?;
            let mut text = String::new();
            for (package, path) in &debs {
                text.push_str(&format!("{package} {}\n", path.display()));
            }
            write_stdout(text.as_bytes())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Config { board } => {
            let board = config::Board::load(&board).map_err(|err| UsageError(err.to_string()))?;
            write_stdout(board.describe().as_bytes())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Check {
            arch,
            explain,
            archive,
        } => check(&archive, &arch, explain),
        Command::Maker { args } => Ok(ExitCode::from(init::cli::main(
            "kiln",
            "kiln s6-linux-init-maker",
            &args,
        ))),
    }
}

fn pack(output: &Path, format: Option<&str>, owner: &str, specs: &[String]) -> Result<ExitCode> {
    let format = output_format(output, format)?;
    let owner = parse_owner(owner)?;
    let mut inputs = spec::Inputs::new(owner);
    let mut tree = Tree::new();
    for operand in specs {
        inputs.apply(&mut tree, operand)?;
    }
    let options = archive::Options::from_env()?.with_image_names(&tree);
    archive::write_file(&tree, format, output, &options)
        .with_context(|| format!("unable to write {}", output.display()))?;
    eprintln!(
        "kiln: wrote {} ({format}, {} entries)",
        output.display(),
        tree.len()
    );
    Ok(ExitCode::SUCCESS)
}

fn build(
    board: &Path,
    output: Option<PathBuf>,
    formats: &[String],
    offline: Option<PathBuf>,
    explain: bool,
) -> Result<ExitCode> {
    let board = config::Board::load(board).map_err(|err| UsageError(err.to_string()))?;
    let formats = if formats.is_empty() {
        board.formats.clone()
    } else {
        formats
            .iter()
            .map(|name| output_format(Path::new(""), Some(name)))
            .collect::<Result<Vec<_>>>()?
    };
    let out_dir = output.unwrap_or_else(|| PathBuf::from("out").join(&board.name));
    let request = build::Request {
        board: &board,
        out_dir: out_dir.clone(),
        formats,
        offline,
        probe: false,
    };
    let built = build::build(&request)?;
    let first = &built.outputs[0];
    let readback = read_archive(first)?;
    let manifest = out_dir.join(format!("{}.manifest", board.name));
    let sizes = out_dir.join(format!("{}.sizes", board.name));
    write_text(&manifest, &listing::gen_init_cpio(&readback.tree))?;
    write_text(&sizes, &build::size_report(&built.tree))?;
    for path in &built.outputs {
        let len = std::fs::metadata(path).map(|meta| meta.len()).unwrap_or(0);
        eprintln!(
            "kiln: wrote {} ({len} bytes, {} entries)",
            path.display(),
            built.tree.len()
        );
    }
    eprintln!("kiln: wrote {} and {}", manifest.display(), sizes.display());
    if explain {
        write_stdout(built.explain.as_bytes())?;
    }
    Ok(ExitCode::SUCCESS)
}

fn image(board: &Path, output: Option<PathBuf>, offline: Option<PathBuf>) -> Result<ExitCode> {
    let started = std::time::Instant::now();
    let board = config::Board::load(board).map_err(|err| UsageError(err.to_string()))?;
    let output = output.unwrap_or_else(|| {
        PathBuf::from("out")
            .join(&board.name)
            .join(format!("{}.img", board.name))
    });
    let made = build::image(&build::ImageRequest {
        board: &board,
        output: output.clone(),
        offline,
        probe: false,
    })?;
    eprint!("{}", image_report(&board, &output, &made));
    eprintln!(
        "kiln: image built in {:.2} s (packages from the cache; downloads, if any, included)",
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

/// The partition table and phase timings of a new image.
fn image_report(board: &config::Board, output: &Path, made: &build::ImageBuilt) -> String {
    let spec = board.image.as_ref().expect("image built from it");
    let mib = |bytes: u64| format!("{}M", bytes >> 20);
    let mut text = format!(
        "kiln: wrote {} ({}, {} table, {} drive)\n  #  start   size     fs     label        contents\n",
        output.display(),
        mib(made.written.size),
        spec.table.name(),
        board.drive.name()
    );
    for (index, (partition, extent)) in spec
        .partitions
        .iter()
        .zip(&made.written.extents)
        .enumerate()
    {
        let contents = match partition.contents {
            config::Contents::Boot => format!("boot: {}", made.boot_files.join(" ")),
            config::Contents::Root => format!("root: {} entries", made.built.tree.len()),
            config::Contents::Empty => "empty".to_string(),
        };
        text.push_str(&format!(
            "  {:<2} {:<7} {:<8} {:<6} {:<12} {contents}\n",
            index + 1,
            mib(extent.start),
            mib(extent.size),
            partition.filesystem.name(),
            partition.label
        ));
    }
    text.push_str("phase                          seconds\n");
    for (phase, seconds) in &made.timings {
        text.push_str(&format!("{phase:<30} {seconds:>7.2}\n"));
    }
    text
}

#[derive(clap::Args)]
struct BootArgs {
    board: PathBuf,
    /// Boot this initramfs, or this card/disk image (kernel, dtb, initramfs and command
    /// line from its boot partition, the image attached as the board's `[qemu] drive`),
    /// instead of building the board's.
    #[arg(long)]
    image: Option<PathBuf>,
    /// Build the board's card/disk image (`kiln image`) and boot that instead of the
    /// initramfs; with --check the image carries the probe, which also checks the root.
    #[arg(long, conflicts_with = "image")]
    disk: bool,
    /// Kernel image instead of the one in the board's kernel package.
    #[arg(long)]
    kernel: Option<PathBuf>,
    /// Device tree instead of the board's.
    #[arg(long)]
    dtb: Option<PathBuf>,
    /// Words added to the kernel command line.
    #[arg(long)]
    append: Option<String>,
    /// Seconds before giving up (scaled by `KILN_TIMEOUT_SCALE`).
    #[arg(long, default_value_t = 120)]
    timeout: u64,
    /// Text that must appear on the console (repeatable); then a clean power-off is
    /// required too. Default: stage 2 finishing, after which QEMU is stopped.
    #[arg(long)]
    expect: Vec<String>,
    /// Attach the console to this terminal instead (ctrl-a x leaves QEMU).
    #[arg(long)]
    interactive: bool,
    /// QEMU accelerator: auto (KVM only when a cached probe boot shows it works), tcg
    /// or kvm.
    #[arg(long, default_value = "auto")]
    accel: String,
    /// Take .debs from this directory instead of downloading.
    #[arg(long, value_name = "DIR")]
    offline: Option<PathBuf>,
    /// kiln's test mode: add an in-guest probe to (a copy of) the image, boot, check
    /// what the s6 init did against the board's options, then shut down.
    #[arg(long, conflicts_with_all = ["image", "interactive"])]
    check: bool,
    /// How --check shuts down: poweroff, reboot, halt, sigint, or ctrl-alt-del (pressed
    /// through the QEMU monitor; needs a keyboard, e.g. x86_64's q35).
    #[arg(long, default_value = "poweroff", requires = "check")]
    action: String,
}

fn boot(args: BootArgs) -> Result<ExitCode> {
    let board = config::Board::load(&args.board).map_err(|err| UsageError(err.to_string()))?;
    if !["auto", "tcg", "kvm"].contains(&args.accel.as_str()) {
        return Err(UsageError(format!(
            "--accel {:?}: expected auto, tcg or kvm",
            args.accel
        ))
        .into());
    }
    if !["poweroff", "reboot", "halt", "sigint", "ctrl-alt-del"].contains(&args.action.as_str()) {
        return Err(UsageError(format!(
            "--action {:?}: expected poweroff, reboot, halt, sigint or ctrl-alt-del",
            args.action
        ))
        .into());
    }
    let out_dir = PathBuf::from("out").join(&board.name);
    let mut probe_expected = None;
    let mut debs = None;
    let mut disk = None;
    let image = match args.image {
        Some(image) => {
            if archive::image::is_disk_image(&image) {
                disk = Some(image.clone());
            }
            image
        }
        None if args.disk => {
            let dir = if args.check {
                out_dir.join("check")
            } else {
                out_dir.clone()
            };
            let output = dir.join(format!("{}.img", board.name));
            let mut made = build::image(&build::ImageRequest {
                board: &board,
                output: output.clone(),
                offline: args.offline.clone(),
                probe: args.check,
            })?;
            eprint!("{}", image_report(&board, &output, &made));
            if args.check {
                let mut expected = boot::probe::expected(&made.built.init, &board.console);
                let spec = board.image.as_ref().expect("image built from it");
                expected.extend(boot::probe::expected_root(
                    &made.built.init,
                    &spec.root().label,
                ));
                probe_expected = Some(expected);
            }
            debs = Some(std::mem::take(&mut made.built.debs));
            disk = Some(output.clone());
            output
        }
        None => {
            let request = build::Request {
                board: &board,
                out_dir: if args.check {
                    out_dir.join("check")
                } else {
                    out_dir.clone()
                },
                formats: vec![Format::new(
                    archive::Container::Cpio,
                    archive::Compression::Gzip,
                )],
                offline: args.offline.clone(),
                probe: args.check,
            };
            let mut built = build::build(&request)?;
            if args.check {
                let mut expected = boot::probe::expected(&built.init, &board.console);
                // An initramfs boot: / is the kernel's rootfs.
                expected.push(("root-fs".to_string(), "rootfs".to_string()));
                probe_expected = Some(expected);
            }
            debs = Some(std::mem::take(&mut built.debs));
            built.outputs.remove(0)
        }
    };
    let mut append = args.append.clone();
    let mut expect = args.expect.clone();
    if args.check {
        let words = format!("KILN_PROBE_ACTION={}", args.action);
        append = Some(match append {
            Some(more) => format!("{more} {words}"),
            None => words,
        });
        expect.push("PROBE done".to_string());
    }
    let card = match &disk {
        Some(disk) => Some(boot::from_card(&board, disk, &out_dir)?),
        None => None,
    };
    let (kernel, dtb) = match (args.kernel, &card, &board.kernel_path) {
        (Some(kernel), _, _) => (kernel, args.dtb),
        (None, Some(card), _) => (card.kernel.clone(), args.dtb.or(card.dtb.clone())),
        (None, None, Some(path)) => (path.clone(), args.dtb),
        (None, None, None) => {
            // The build already fetched the kernel package; fetch only for --image.
            let debs = match debs {
                Some(debs) => debs,
                None => fetch::fetch_board(&board, args.offline.as_deref(), false)?,
            };
            let deb = fetch::kernel_deb(&debs)
                .cloned()
                .ok_or_else(|| UsageError(format!("{}: [kernel] names no package (note: set [kernel] package or path, or pass --kernel)", board.file.display())))?;
            let (kernel, board_dtb) = boot::kernel_from_package(&board, &deb, &out_dir)?;
            (kernel, args.dtb.or(board_dtb))
        }
    };
    let program = boot::qemu_binary(board.arch);
    let found = std::process::Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|output| output.status.success());
    if !found {
        anyhow::bail!(
            "{program} is not installed\nnote: apt-get install --no-install-recommends {} (ci/install-qemu does it, backports included)",
            boot::qemu_package(board.arch)
        );
    }
    let artifacts = match card {
        Some(card) => boot::Artifacts {
            kernel,
            dtb,
            ..card
        },
        None => boot::Artifacts {
            kernel,
            initrd: Some(image.clone()),
            dtb,
            cmdline: None,
            disk: None,
        },
    };
    let (accel, why) =
        boot::choose_accel(&args.accel, &board, &artifacts.kernel, &fetch::cache_dir());
    let mut argv = boot::command(&board, &artifacts, append.as_deref(), &accel);
    let mut ctrl_alt_del = None;
    if args.check && args.action == "ctrl-alt-del" {
        let socket = PathBuf::from(format!("{}.monitor", image.display()));
        // Stale from an earlier run: QEMU cannot bind over it.
        let _ = std::fs::remove_file(&socket);
        argv.push("-monitor".into());
        argv.push(format!("unix:{},server,nowait", socket.display()).into());
        ctrl_alt_del = Some(("PROBE waiting for ctrl-alt-del".to_string(), socket));
    }
    eprintln!(
        "kiln: booting {} with {program} (accel {accel}: {why})",
        board.name
    );
    if args.interactive {
        let status = std::process::Command::new(&argv[0])
            .args(&argv[1..])
            .status()
            .with_context(|| format!("unable to run {program}"))?;
        return Ok(ExitCode::from(
            status.code().unwrap_or(1).clamp(0, 255) as u8
        ));
    }
    let log = PathBuf::from(format!("{}.console.log", image.display()));
    let until_poweroff = !expect.is_empty();
    let markers = if expect.is_empty() {
        vec!["rc.init: stage 2 done".to_string()]
    } else {
        expect
    };
    let expectations = boot::Expectations {
        markers,
        until_poweroff,
        timeout: boot::scaled(args.timeout),
        ctrl_alt_del,
    };
    let outcome = boot::run(&argv, &log, &expectations, true)?;
    let mut report = String::from("phase                          seconds\n");
    for (phase, seconds) in outcome.timings.iter().chain(outcome.marker_times.iter()) {
        report.push_str(&format!("{phase:<30} {seconds:>7.2}\n"));
    }
    eprint!("{report}");
    eprintln!("kiln: console log: {}", log.display());
    let mut passed = outcome.passed;
    let mut reason = outcome.reason.clone();
    if let Some(expected) = probe_expected {
        let rows = boot::probe::compare(&expected, &outcome.probe_lines);
        eprintln!("{:<16} {:<44} got", "check", "expected");
        for (key, want, got, ok) in &rows {
            eprintln!(
                "{:<16} {:<44} {got}{}",
                key,
                want,
                if *ok { "" } else { "   <-- FAILED" }
            );
        }
        if let Some(ms) = outcome
            .probe_lines
            .iter()
            .find_map(|line| line.split("PROBE added-service-ms=").nth(1))
        {
            eprintln!("added service up {ms} ms after s6-svscanctl -a");
        }
        let failed: Vec<&str> = rows
            .iter()
            .filter(|row| !row.3)
            .map(|row| row.0.as_str())
            .collect();
        if passed && !failed.is_empty() {
            passed = false;
            reason = format!("in-guest checks failed: {}", failed.join(", "));
        }
    }
    if passed {
        eprintln!("kiln: boot passed: {reason}");
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("kiln: boot failed: {reason}");
        eprintln!("kiln: last console lines:");
        for line in &outcome.tail {
            eprintln!("  | {line}");
        }
        eprintln!("kiln: reproduce with: {}", boot::shell_quoted(&argv));
        Ok(ExitCode::from(1))
    }
}

/// Writes a small text file through a temp file and rename.
fn write_text(path: &Path, text: &str) -> Result<()> {
    let temp = archive::TempFile::create(path)?;
    std::fs::write(&temp.path, text)
        .with_context(|| format!("unable to write {}", temp.path.display()))?;
    temp.commit(path)?;
    Ok(())
}

fn ls(path: &Path, list: bool, manifest: bool) -> Result<ExitCode> {
    let archive = read_archive(path)?;
    let text = if list {
        listing::gen_init_cpio(&archive.tree)
    } else if manifest {
        listing::manifest(&archive.tree)
            .with_context(|| format!("unable to read {}", path.display()))?
    } else {
        listing::ls(&archive.tree)
    };
    write_stdout(text.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

fn diff(a: &Path, b: &Path) -> Result<ExitCode> {
    let (old, new) = (read_archive(a)?, read_archive(b)?);
    let lines = listing::diff(&old.tree, &new.tree).context("unable to compare contents")?;
    let mut text = String::new();
    if old.format != new.format {
        text.push_str(&format!("~ format: {} -> {}\n", old.format, new.format));
    }
    for line in &lines {
        text.push_str(line);
        text.push('\n');
    }
    write_stdout(text.as_bytes())?;
    Ok(if text.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn check(path: &Path, arch: &str, explain: bool) -> Result<ExitCode> {
    let arch = arch::Arch::from_name(arch).ok_or_else(|| {
        UsageError(format!(
            "--arch {arch:?}: unknown arch (note: one of x86_64, aarch64, armv7)"
        ))
    })?;
    let archive = read_archive(path)?;
    match elf::check(&archive.tree, arch) {
        Ok(links) => {
            if explain {
                write_stdout(elf::explain(&links).as_bytes())?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            for error in &errors {
                eprintln!("kiln: check: {error}");
            }
            Ok(ExitCode::from(1))
        }
    }
}

fn read_archive(path: &Path) -> Result<archive::read::Archive> {
    if deb::is_deb(path) {
        let package = deb::read(path).map_err(|err| match err {
            deb::DebError::Invalid { .. } => anyhow::Error::new(UsageError(err.to_string())),
            other => anyhow::Error::new(other),
        })?;
        eprintln!(
            "kiln: {}: package {} {} ({}), data.tar:",
            package.path.display(),
            package.name(),
            package.control.get("Version").map_or("?", String::as_str),
            package
                .control
                .get("Architecture")
                .map_or("?", String::as_str),
        );
        return Ok(archive::read::Archive {
            format: Format::new(archive::Container::Tar, archive::Compression::None),
            tree: package.data,
        });
    }
    archive::read::read_file(path).map_err(|err| {
        let wrapped = anyhow::Error::new(UsageError(format!(
            "unable to read archive {}: {err}",
            path.display()
        )));
        if err.kind() == std::io::ErrorKind::InvalidData
            || err.kind() == std::io::ErrorKind::UnexpectedEof
            || err.kind() == std::io::ErrorKind::NotFound
        {
            wrapped
        } else {
            anyhow::Error::new(err).context(format!("unable to read archive {}", path.display()))
        }
    })
}

fn write_stdout(bytes: &[u8]) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(bytes)
        .and_then(|()| stdout.flush())
        .context("unable to write to stdout")
}

fn output_format(output: &Path, format: Option<&str>) -> Result<Format> {
    match format {
        Some(name) => Format::from_name(name).ok_or_else(|| {
            UsageError(format!(
                "--format {name:?}: unknown format (note: one of {})",
                archive::FORMATS.map(|(name, _)| name).join(", ")
            ))
            .into()
        }),
        None => Format::from_path(output).ok_or_else(|| {
            UsageError(format!(
                "{}: cannot tell the format from the name (note: end it in .cpio.gz, .tar, ... or pass --format)",
                output.display()
            ))
            .into()
        }),
    }
}

fn parse_owner(text: &str) -> Result<(u32, u32)> {
    let parsed = text
        .split_once(':')
        .and_then(|(uid, gid)| Some((uid.parse().ok()?, gid.parse().ok()?)));
    parsed.ok_or_else(|| UsageError(format!("--owner {text:?}: expected numeric UID:GID")).into())
}

/// 100 when any error in the chain is about the input, 111 otherwise.
fn exit_code(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if cause.is::<UsageError>()
            || cause.is::<spec::SpecError>()
            || cause.is::<tree::TreeError>()
            || cause.is::<tree::PathError>()
            || cause.is::<fetch::MissingPackage>()
            || cause.is::<flash::Refused>()
        {
            return EXIT_USAGE;
        }
        if let Some(archive_error) = cause.downcast_ref::<archive::ArchiveError>() {
            if archive_error.is_input_error() {
                return EXIT_USAGE;
            }
        }
    }
    EXIT_SYSTEM
}
