//! kiln: unprivileged rootfs integration for embedded Linux.
//!
//! `main` parses the command line, calls the stage that owns each command, prints what
//! it reports, and maps the outcome to one exit code (`error`): 0 success, 1 "differs"
//! or "check failed", 100 bad input, 111 system error. Nothing below `main` exits.
//!
//! The modules and the order data flows through them: README, "Architecture".

mod arch;
mod archive;
mod boot;
mod check;
mod cli;
mod config;
mod elf;
mod error;
mod fetch;
mod flash;
#[cfg(test)]
mod fuzz;
mod host;
mod image;
mod init;
mod listing;
mod lock;
mod passwd;
mod rootfs;
mod sbom;
mod source;
mod tree;

use std::ffi::OsString;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

use crate::cli::{Cli, Command};
use crate::config::Board;
use crate::error::Verdict;

/// Every module with typed errors says which of them are input.
const CLASSIFIERS: [error::Classifier; 7] = [
    host::temp::classify,
    tree::classify,
    config::classify,
    source::classify,
    fetch::classify,
    archive::classify,
    flash::classify,
];

fn main() -> ExitCode {
    // Interrupted: no child (QEMU) and no temporary file is left behind; exit as a shell
    // reports a signal.
    host::signals::watch(|signal| {
        host::signals::terminate_children();
        host::temp::remove_all();
        std::process::exit(128 + signal);
    });
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
    let cli = match cli::parse(&args) {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("kiln: error: {}", error::printable(&format!("{err:#}")));
            ExitCode::from(error::exit_code(&err, &CLASSIFIERS))
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    lock::require(cli.locked);
    match cli.command {
        Command::Pack {
            output,
            format,
            owner,
            specs,
        } => {
            let format = archive::output_format(&output, format.as_deref())?;
            eprint!(
                "{}",
                error::printable(&source::pack(&specs, &output, format, &owner)?)
            );
        }
        Command::Ls {
            list,
            manifest,
            archive,
        } => {
            let input = listing::read(&archive)?;
            cli::write_stdout(listing::render(&input.tree, list, manifest, &archive)?.as_bytes())?;
        }
        Command::Diff { a, b } => {
            let (verdict, text) = listing::diff_files(&a, &b)?;
            cli::write_stdout(text.as_bytes())?;
            return Ok(verdict.into());
        }
        Command::Check {
            arch,
            board,
            offline,
            explain,
            archive,
        } => {
            let board = board.as_deref().map(load).transpose()?;
            let arch = match (&board, arch) {
                (Some(board), _) => board.arch,
                (None, Some(arch)) => arch::Arch::from_name(&arch).ok_or_else(|| {
                    error::input(format!(
                        "--arch {arch:?}: unknown arch (note: one of x86_64, aarch64, armv7)"
                    ))
                })?,
                (None, None) => {
                    return Err(error::input(
                        "kiln check: give --arch ARCH or --board BOARD (note: the board gives the arch, its allow_dangling and which package provides what is missing)",
                    ));
                }
            };
            let input = listing::read(&archive)?;
            let (verdict, stdout, stderr) = check::verdict(
                &input.tree,
                arch,
                board.as_ref(),
                offline.as_deref(),
                explain,
            )?;
            eprint!("{stderr}");
            cli::write_stdout(stdout.as_bytes())?;
            return Ok(verdict.into());
        }
        Command::Build {
            board,
            output,
            format,
            offline,
            explain,
            licenses,
            cyclonedx,
        } => {
            let board = load(&board)?;
            let formats = archive::formats_or(&format, &board.formats)?;
            let out_dir = output.unwrap_or_else(|| board.out_dir());
            let additions = rootfs::Additions::default();
            let built = rootfs::build(&board, &out_dir, &formats, offline.as_deref(), &additions)?;
            let sbom = out_dir.join(format!("{}.spdx.json", board.name));
            let subject = sbom::Subject {
                outputs: &built.outputs,
                purpose: "ARCHIVE",
                also: &[],
                built: &[],
            };
            sbom::write(&board, &built.rootfs, &subject, &sbom)?;
            let cdx = out_dir.join(format!("{}.cdx.json", board.name));
            if cyclonedx {
                sbom::write_cyclonedx(&board, &built.rootfs, &subject, &cdx)?;
            }
            if let Some(dir) = &licenses {
                sbom::licenses(&built.rootfs, dir)?;
            }
            eprint!("{}", built.report());
            eprintln!("kiln: wrote {}", sbom.display());
            if cyclonedx {
                eprintln!("kiln: wrote {}", cdx.display());
            }
            if explain {
                cli::write_stdout(built.rootfs.explain.as_bytes())?;
            }
        }
        Command::Image {
            board,
            output,
            offline,
            cyclonedx,
        } => {
            let started = std::time::Instant::now();
            let board = load(&board)?;
            let output = output.unwrap_or_else(|| board.image_path(&board.out_dir()));
            let additions = rootfs::Additions::default();
            let made = image::make(&board, &output, offline.as_deref(), &additions)?;
            let sbom = sbom::beside(&output);
            let also = sbom::on_the_card(&made.rootfs);
            let subject = sbom::Subject {
                outputs: std::slice::from_ref(&output),
                purpose: "FIRMWARE",
                also: &also,
                built: &made.built,
            };
            sbom::write(&board, &made.rootfs, &subject, &sbom)?;
            let cdx = sbom::beside_as(&output, "cdx.json");
            if cyclonedx {
                sbom::write_cyclonedx(&board, &made.rootfs, &subject, &cdx)?;
            }
            eprint!("{}", made.report(&board));
            eprintln!("kiln: wrote {}", sbom.display());
            if cyclonedx {
                eprintln!("kiln: wrote {}", cdx.display());
            }
            eprintln!(
                "kiln: image built in {:.2} s (packages from the cache; downloads, if any, included)",
                started.elapsed().as_secs_f64()
            );
        }
        Command::Boot(args) => {
            let board = load(&args.board)?;
            let report = boot::boot(&board, &args.into_request())?;
            eprint!("{}", report.text);
            return Ok(report.verdict.into());
        }
        Command::Flash {
            image,
            device,
            force,
            yes,
        } => {
            flash::flash(&image, &device, &flash::Options { force, yes })?;
        }
        Command::Fetch {
            board,
            offline,
            refresh,
        } => {
            let board = load(&board)?;
            let debs = fetch::fetch_board(&board, offline.as_deref(), refresh)?;
            let sources = fetch::board_sources(&board, offline.as_deref())?;
            cli::write_stdout(fetch::listing(&debs, &sources).as_bytes())?;
        }
        Command::Lock {
            board,
            update,
            packages,
            offline,
        } => {
            let board = load(&board)?;
            let update = update.then_some(packages.as_slice());
            match lock::lock(&board, offline.as_deref(), update)? {
                (path, Some(changes)) => {
                    eprint!("{changes}");
                    eprintln!("kiln: wrote {}", path.display());
                }
                (path, None) => eprintln!(
                    "kiln: {} is up to date (note: `--update` resolves afresh)",
                    path.display()
                ),
            }
        }
        Command::Vendor { board, dir } => {
            let board = load(&board)?;
            let vendored = lock::vendor(&board, &dir)?;
            let sources = match vendored.sources {
                0 => String::new(),
                1 => " and 1 source package".to_string(),
                n => format!(" and {n} source packages"),
            };
            eprintln!(
                "kiln: copied {} packages{sources} into {} (index {})",
                vendored.packages,
                dir.display(),
                vendored.index.display()
            );
        }
        Command::Config { board } => {
            cli::write_stdout(load(&board)?.describe().as_bytes())?;
        }
        Command::Maker { args } => {
            let code = init::cli::main("kiln", "kiln s6-linux-init-maker", &args);
            return Ok(ExitCode::from(code));
        }
    }
    Ok(Verdict::Passed.into())
}

/// Loads a board, showing its warnings.
fn load(path: &Path) -> Result<Board> {
    let board = Board::load(path)?;
    for warning in &board.warnings {
        eprintln!("kiln: warning: {}", error::printable(warning));
    }
    Ok(board)
}
