//! The s6-linux-init-maker command line: parse, validate everything, then write the tree
//! into a new directory or straight into an archive, and print stage 1 on stdout.
//!
//! Messages follow skalibs: `PROG: usage: ...`, `PROG: fatal: ...`, `PROG: warning: ...`;
//! exit 100 for usage and validation errors, 111 for system errors. Every check runs
//! before anything is created, and a failure leaves nothing behind.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::options::{LogUser, NOBODY, Opt, Options};
use super::{Config, generate};
use crate::archive::{self, Format};
use crate::host::temp::{TempError, TempFile};
use crate::passwd::Entry;
use crate::tree::{Kind, Tree};

const SYNOPSIS: &str = "[ -c basedir ] [ -l tmpfsdir ] [ -b execline_bindir ] [ -u log_user ] \
[ -g early_getty_cmd ] [ -2 stage2 ] [ -r ] [ -Z stage2_finish ] [ -3 stage3 ] \
[ -p initial_path ] [ -m initial_umask ] [ -t timestamp_style ] [ -d dev_style ] \
[ -e initial_envvar ]... [ -S s6|runit|daemontools ] [ --passwd file ] [ --group file ] dir";

/// How a run of the maker failed.
#[derive(Debug, PartialEq, Eq)]
pub enum Failure {
    /// Bad command line: the problem, then the usage line. Exit 100.
    Usage(String),
    /// Validation error. Exit 100.
    Invalid(String),
    /// System error. Exit 111.
    System(String),
}

impl Failure {
    pub fn code(&self) -> u8 {
        match self {
            Failure::Usage(_) | Failure::Invalid(_) => crate::error::EXIT_INPUT,
            Failure::System(_) => crate::error::EXIT_SYSTEM,
        }
    }
}

/// The parsed command line, before the tree is made.
#[derive(Debug)]
pub struct Invocation {
    pub config: Config,
    pub dir: PathBuf,
    pub warnings: Vec<String>,
}

/// Runs the maker; returns the exit status. `program` prefixes every message and
/// `invocation` is how the usage line spells the command.
pub fn main(program: &str, invocation: &str, args: &[OsString]) -> u8 {
    let mut stderr = std::io::stderr().lock();
    let request = match parse(args) {
        Ok(request) => request,
        Err(failure) => {
            report(&mut stderr, program, invocation, &failure);
            return failure.code();
        }
    };
    for warning in &request.warnings {
        // Nowhere to report a failed write to stderr.
        let _ = writeln!(stderr, "{program}: warning: {warning}");
    }
    let result = match Format::from_path(&request.dir) {
        Some(format) => write_archive(&request, format),
        None => write_dir(&request),
    };
    match result {
        Ok(()) => 0,
        Err(failure) => {
            report(&mut stderr, program, invocation, &failure);
            failure.code()
        }
    }
}

fn report(stderr: &mut dyn Write, program: &str, invocation: &str, failure: &Failure) {
    // Nowhere to report a failed write to stderr.
    let _ = match failure {
        Failure::Usage(problem) => writeln!(
            stderr,
            "{program}: fatal: {problem}\n{program}: usage: {invocation} {SYNOPSIS}"
        ),
        Failure::Invalid(text) | Failure::System(text) => {
            writeln!(stderr, "{program}: fatal: {text}")
        }
    };
}

/// Parses and validates the command line. Pure apart from reading `--passwd`/`--group`
/// files and, as a warned fallback, the host's passwd.
pub fn parse(args: &[OsString]) -> Result<Invocation, Failure> {
    let mut operands: Vec<&OsStr> = Vec::new();
    let mut given: Vec<(Opt, Vec<u8>)> = Vec::new();
    let mut redirect_stage2 = false;
    let mut passwd: Option<PathBuf> = None;
    let mut group: Option<PathBuf> = None;

    let mut index = 0;
    let mut options_done = false;
    while index < args.len() {
        let arg = args[index].as_bytes();
        index += 1;
        if options_done || arg.len() < 2 || arg[0] != b'-' {
            operands.push(OsStr::from_bytes(arg));
            continue;
        }
        if arg == b"--" {
            options_done = true;
            continue;
        }
        if let Some(long) = arg.strip_prefix(b"--") {
            let (name, attached) = match long.iter().position(|&b| b == b'=') {
                Some(at) => (&long[..at], Some(&long[at + 1..])),
                None => (long, None),
            };
            let name = String::from_utf8_lossy(name).into_owned();
            if !["passwd", "group"].contains(&name.as_str()) {
                return Err(Failure::Usage(format!("unknown option --{name}")));
            }
            let value = match attached {
                Some(value) => value.to_vec(),
                None => {
                    let value = args.get(index).ok_or_else(|| {
                        Failure::Usage(format!("option --{name} needs an argument"))
                    })?;
                    index += 1;
                    value.as_bytes().to_vec()
                }
            };
            let path = Some(PathBuf::from(OsStr::from_bytes(&value)));
            if name == "passwd" {
                passwd = path;
            } else {
                group = path;
            }
            continue;
        }
        let mut at = 1;
        while at < arg.len() {
            let letter = arg[at];
            at += 1;
            if letter == b'r' {
                redirect_stage2 = true;
                continue;
            }
            let Some(opt) = Opt::from_letter(letter) else {
                return Err(Failure::Usage(format!(
                    "unknown option -{}",
                    String::from_utf8_lossy(&[letter])
                )));
            };
            let value = if at < arg.len() {
                let value = arg[at..].to_vec();
                at = arg.len();
                value
            } else {
                let value = args.get(index).ok_or_else(|| {
                    Failure::Usage(format!("option -{} needs an argument", letter as char))
                })?;
                index += 1;
                value.as_bytes().to_vec()
            };
            given.push((opt, value));
        }
    }
    let dir = match operands.as_slice() {
        [dir] => PathBuf::from(dir),
        [] => return Err(Failure::Usage("missing dir operand".to_string())),
        [_, extra, ..] => {
            return Err(Failure::Usage(format!(
                "extra operand {:?}",
                extra.to_string_lossy()
            )));
        }
    };
    let (options, mut warnings) = Options::validate(&given, redirect_stage2)
        .map_err(|invalid| Failure::Invalid(invalid.for_command_line()))?;
    let (log_uid, log_gid) = resolve_log_user(&options.log_user, passwd.as_deref(), &mut warnings)?;
    if let Some(group) = group {
        let text = fs::read(&group).map_err(|err| {
            Failure::System(format!(
                "unable to read {}: {}",
                group.display(),
                strerror(&err)
            ))
        })?;
        let known = crate::passwd::parse(&text)
            .0
            .iter()
            .any(|entry| entry.id == log_gid);
        if !known {
            warnings.push(format!(
                "gid {log_gid} of the log user is not in {}",
                group.display()
            ));
        }
    }
    Ok(Invocation {
        config: Config {
            options,
            log_uid,
            log_gid,
        },
        dir,
        warnings,
    })
}

fn strerror(err: &std::io::Error) -> String {
    let text = err.to_string();
    // "No such file or directory (os error 2)" -> skalibs' bare strerror.
    match text.find(" (os error") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

/// `-u`: `NAME` (from the target passwd), `UID:GID`, or `UID` (gid from the target passwd).
fn resolve_log_user(
    log_user: &LogUser,
    passwd: Option<&Path>,
    warnings: &mut Vec<String>,
) -> Result<(u32, u32), Failure> {
    let entries = match passwd {
        Some(path) => {
            let bytes = fs::read(path).map_err(|err| {
                Failure::System(format!(
                    "unable to read {}: {}",
                    path.display(),
                    strerror(&err)
                ))
            })?;
            Some((
                path.display().to_string(),
                parse_passwd(&bytes, &path.display().to_string(), warnings),
            ))
        }
        None => None,
    };
    let invalid = |value: &str, why: String| Failure::Invalid(format!("-u {value:?}: {why}"));
    if let Some((file, entries)) = &entries {
        return log_user.resolve(entries).ok_or_else(|| match log_user {
            LogUser::Uid(uid) => invalid(
                &uid.to_string(),
                format!("no entry with uid {uid} in {file}"),
            ),
            LogUser::Name(name) => invalid(
                &String::from_utf8_lossy(name),
                format!("unknown user: not in {file}"),
            ),
            _ => invalid("", format!("not in {file}")),
        });
    }
    if let Some(ids) = log_user.resolve(&[]) {
        return Ok(ids);
    }
    match log_user {
        LogUser::Uid(uid) => Err(invalid(
            &uid.to_string(),
            format!(
                "a bare uid needs the target passwd to find its gid (note: pass --passwd FILE, or -u {uid}:GID)"
            ),
        )),
        LogUser::Name(name) => {
            // The seed's behaviour, kept only as a warned fallback: the build host's
            // users say nothing about the target's. Boards never get here: their log
            // user must be one of their [[users]].
            let shown = String::from_utf8_lossy(name);
            let host = fs::read("/etc/passwd").unwrap_or_default();
            let found = find_name(&parse_passwd(&host, "/etc/passwd", &mut Vec::new()), name)
                .ok_or_else(|| {
                    invalid(&shown, "unknown user (note: pass the target's passwd with --passwd FILE, or a numeric UID:GID)".to_string())
                })?;
            warnings.push(format!(
                "-u {shown:?}: resolved against the build host's /etc/passwd as {}:{}; pass the target's with --passwd FILE",
                found.0, found.1
            ));
            Ok(found)
        }
        // `resolve` answers these without a passwd; spelled out to stay total.
        LogUser::Ids(uid, gid) => Ok((*uid, *gid)),
        LogUser::Default => Ok(NOBODY),
    }
}

/// A passwd file's entries with a gid; other lines are warned about and skipped.
fn parse_passwd(bytes: &[u8], file: &str, warnings: &mut Vec<String>) -> Vec<Entry> {
    let (entries, mut bad) = crate::passwd::parse(bytes);
    let mut kept = Vec::new();
    for entry in entries {
        match entry.gid {
            Some(_) => kept.push(entry),
            None => bad.push(entry.line),
        }
    }
    bad.sort_unstable();
    for line in bad {
        warnings.push(format!("{file}:{line}: skipping unparsable passwd line"));
    }
    kept
}

/// The uid and gid of a name.
fn find_name(entries: &[Entry], name: &[u8]) -> Option<(u32, u32)> {
    let entry = crate::passwd::by_name(entries, name)?;
    Some((entry.id, entry.gid?))
}

fn write_archive(request: &Invocation, format: Format) -> Result<(), Failure> {
    let dest = &request.dir;
    if fs::symlink_metadata(dest).is_ok() {
        return Err(Failure::System(format!(
            "unable to create {}: File exists",
            dest.display()
        )));
    }
    let generated = generate(&request.config);
    let tree = super::image::image_tree(&request.config, &generated, format.container)
        .map_err(|err| Failure::Invalid(err.to_string()))?;
    let options = archive::Options::from_env().map_err(|err| Failure::Invalid(err.to_string()))?;
    let system = |err: archive::ArchiveError| Failure::System(crate::error::chain(&err));
    let temp_failed = |err: TempError| Failure::System(crate::error::chain(&err));
    let temp = TempFile::create(dest).map_err(temp_failed)?;
    let file = temp.file.try_clone().map_err(|err| {
        Failure::System(format!(
            "unable to write {}: {}",
            temp.path.display(),
            strerror(&err)
        ))
    })?;
    let out =
        archive::write(&tree, format, std::io::BufWriter::new(file), &options).map_err(system)?;
    out.into_inner()
        .map_err(|err| err.into_error())
        .and_then(|file| file.sync_all())
        .map_err(|err| {
            Failure::System(format!(
                "unable to write {}: {}",
                temp.path.display(),
                strerror(&err)
            ))
        })?;
    print_stage1(&generated.stage1)?;
    // Renamed only after stage 1 reached stdout: a failure leaves nothing behind.
    temp.commit(dest).map_err(temp_failed)
}

fn print_stage1(stage1: &[u8]) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(stage1)
        .and_then(|()| stdout.flush())
        .map_err(|err| Failure::System(format!("unable to write to stdout: {}", strerror(&err))))
}

fn write_dir(request: &Invocation) -> Result<(), Failure> {
    let dir = &request.dir;
    let config = &request.config;
    if fs::symlink_metadata(dir).is_ok() {
        return Err(Failure::System(format!(
            "unable to mkdir {}: File exists",
            dir.display()
        )));
    }
    let euid = nix::unistd::geteuid().as_raw();
    let egid = nix::unistd::getegid().as_raw();
    if euid != 0 && (config.log_uid, config.log_gid) != (euid, egid) {
        return Err(Failure::System(format!(
            "unable to chown {}/run-image/uncaught-logs to {}:{}: Operation not permitted\n\
             note: a directory tree needs root to get its owners; write an archive instead (e.g. {}.cpio), which records owners without root",
            dir.display(),
            config.log_uid,
            config.log_gid,
            dir.display()
        )));
    }
    let generated = generate(config);
    match materialize(dir, &generated.tree, euid == 0) {
        Ok(()) => {}
        Err(failure) => {
            remove_created(dir);
            return Err(failure);
        }
    }
    if let Err(failure) = print_stage1(&generated.stage1) {
        remove_created(dir);
        return Err(failure);
    }
    Ok(())
}

fn remove_created(dir: &Path) {
    // Best effort on an error path; the original error is what gets reported.
    let _ = fs::remove_dir_all(dir);
}

/// Creates the tree on disk. Modes are set by explicit chmod after chown (chown clears
/// setgid), so they never depend on the umask.
fn materialize(dir: &Path, tree: &Tree, as_root: bool) -> Result<(), Failure> {
    let fail = |verb: &str, path: &Path, err: &dyn std::fmt::Display| {
        Failure::System(format!("unable to {verb} {}: {err}", path.display()))
    };
    fs::create_dir(dir).map_err(|err| fail("mkdir", dir, &strerror(&err)))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755))
        .map_err(|err| fail("chmod", dir, &strerror(&err)))?;
    for (path, node) in tree.iter() {
        let host = dir.join(path.as_str());
        match &node.kind {
            Kind::Dir => {
                fs::create_dir(&host).map_err(|err| fail("mkdir", &host, &strerror(&err)))?
            }
            Kind::File(content) => {
                let bytes = content
                    .read_all()
                    .map_err(|err| fail("read", &host, &strerror(&err)))?;
                fs::write(&host, bytes).map_err(|err| fail("write", &host, &strerror(&err)))?;
            }
            Kind::Fifo => {
                nix::unistd::mkfifo(&host, nix::sys::stat::Mode::from_bits_truncate(0o600))
                    .map_err(|err| fail("mkfifo", &host, &err.desc()))?
            }
            other => {
                return Err(Failure::System(format!(
                    "unable to create {}: {} in a generated tree",
                    host.display(),
                    crate::tree::kind_name(other)
                )));
            }
        }
        if as_root {
            nix::unistd::chown(
                &host,
                Some(nix::unistd::Uid::from_raw(node.meta.uid)),
                Some(nix::unistd::Gid::from_raw(node.meta.gid)),
            )
            .map_err(|err| fail("chown", &host, &err.desc()))?;
        }
        fs::set_permissions(&host, fs::Permissions::from_mode(u32::from(node.meta.mode)))
            .map_err(|err| fail("chmod", &host, &strerror(&err)))?;
    }
    Ok(())
}
