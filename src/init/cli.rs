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

use super::{Config, generate};
use crate::archive::{self, Container, Format};
use crate::tree::{ArchivePath, Content, Kind, Meta, Node, Tree};

const SYNOPSIS: &str = "[ -c basedir ] [ -l tmpfsdir ] [ -b execline_bindir ] [ -u log_user ] \
[ -g early_getty_cmd ] [ -2 stage2 ] [ -r ] [ -Z stage2_finish ] [ -3 stage3 ] \
[ -p initial_path ] [ -m initial_umask ] [ -t timestamp_style ] [ -d dev_style ] \
[ -e initial_envvar ]... [ --passwd file ] [ --group file ] dir";

/// Linux's shebang buffer (BINPRM_BUF_SIZE) since 5.1, newline included.
const SHEBANG_MAX: usize = 256;

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
            Failure::Usage(_) | Failure::Invalid(_) => crate::EXIT_USAGE,
            Failure::System(_) => crate::EXIT_SYSTEM,
        }
    }
}

/// The parsed command line, before the tree is made.
#[derive(Debug)]
pub struct Request {
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
pub fn parse(args: &[OsString]) -> Result<Request, Failure> {
    let mut config = Config::default();
    let mut operands: Vec<&OsStr> = Vec::new();
    let mut log_user: Option<Vec<u8>> = None;
    let mut passwd: Option<PathBuf> = None;
    let mut group: Option<PathBuf> = None;
    let mut env: Vec<Vec<u8>> = Vec::new();
    let mut basedir: Option<Vec<u8>> = None;
    let mut tmpfsdir: Option<Vec<u8>> = None;
    let mut bindir: Option<Vec<u8>> = None;
    let mut umask: Option<Vec<u8>> = None;
    let mut timestamp: Option<Vec<u8>> = None;
    let mut dev: Option<Vec<u8>> = None;
    let mut warnings = Vec::new();

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
                config.redirect_stage2 = true;
                continue;
            }
            if !b"clbug2Z3pmtde".contains(&letter) {
                return Err(Failure::Usage(format!(
                    "unknown option -{}",
                    String::from_utf8_lossy(&[letter])
                )));
            }
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
            match letter {
                b'c' => basedir = Some(value),
                b'l' => tmpfsdir = Some(value),
                b'b' => bindir = Some(value),
                b'u' => log_user = Some(value),
                b'g' => config.early_getty = Some(value),
                b'2' => config.stage2 = value,
                b'Z' => config.stage2_finish = value,
                b'3' => config.stage3 = value,
                b'p' => config.path = value,
                b'm' => umask = Some(value),
                b't' => timestamp = Some(value),
                b'd' => dev = Some(value),
                _ => env.push(value),
            }
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

    if let Some(value) = basedir {
        config.basedir = absolute_dir(&value, "-c", "basedir")?;
    }
    if let Some(value) = tmpfsdir {
        config.tmpfsdir = absolute_dir(&value, "-l", "tmpfsdir")?;
    }
    let (c, t) = (&config.basedir, &config.tmpfsdir);
    if c == t || inside(c, t) || inside(t, c) {
        return Err(Failure::Invalid(format!(
            "-c {c} and -l {t} overlap: the basedir must be neither the tmpfsdir, nor inside it, nor contain it"
        )));
    }
    if let Some(value) = bindir {
        config.execline_bindir = validate_bindir(&value)?;
    }
    for (value, option) in [
        (&config.stage2, "-2"),
        (&config.stage2_finish, "-Z"),
        (&config.stage3, "-3"),
    ] {
        if value.first() != Some(&b'/') {
            return Err(Failure::Invalid(format!(
                "{option} {}: must be an absolute path",
                show(value)
            )));
        }
    }
    if let Some(getty) = &config.early_getty {
        validate_getty(getty)?;
    }
    if let Some(value) = umask {
        config.umask = parse_umask(&value)?;
    }
    if let Some(value) = timestamp {
        config.timestamp_style = parse_digit(&value, "-t", "timestamp_style", 3)?;
    }
    if let Some(value) = dev {
        config.dev_style = parse_digit(&value, "-d", "dev_style", 2)?;
    }
    for value in env {
        let (name, assigned) = match value.iter().position(|&b| b == b'=') {
            Some(at) => (&value[..at], Some(value[at + 1..].to_vec())),
            None => (&value[..], None),
        };
        let name = validate_env_name(name)?;
        if let Some(old) = config
            .env
            .iter_mut()
            .find(|(existing, _)| *existing == name)
        {
            warnings.push(format!(
                "-e {name} given more than once; the last value wins"
            ));
            old.1 = assigned;
        } else {
            config.env.push((name, assigned));
        }
    }
    let bindir = config.execline_bindir.as_bytes();
    let path_has_bindir = |path: &[u8]| path.split(|&b| b == b':').any(|dir| dir == bindir);
    if config.path.is_empty() {
        warnings.push("-p is empty: stage 1 will find no program by name".to_string());
    } else if !path_has_bindir(&config.path) {
        warnings.push(format!(
            "-p {} does not contain the execline bindir {}",
            show(&config.path),
            config.execline_bindir
        ));
    }
    match config.env.iter().find(|(name, _)| name == "PATH") {
        Some((_, None)) => {
            warnings.push("-e PATH removes PATH for s6-svscan and every service".to_string())
        }
        Some((_, Some(path))) if !path_has_bindir(path) => warnings.push(format!(
            "-e PATH={} does not contain the execline bindir {}",
            show(path),
            config.execline_bindir
        )),
        _ => {}
    }

    let (uid, gid) = resolve_log_user(log_user.as_deref(), passwd.as_deref(), &mut warnings)?;
    config.log_uid = uid;
    config.log_gid = gid;
    if let Some(group) = group {
        let text = fs::read(&group).map_err(|err| {
            Failure::System(format!(
                "unable to read {}: {}",
                group.display(),
                strerror(&err)
            ))
        })?;
        let known = String::from_utf8_lossy(&text).lines().any(|line| {
            line.split(':')
                .nth(2)
                .and_then(|gid| gid.parse::<u32>().ok())
                == Some(config.log_gid)
        });
        if !known {
            warnings.push(format!(
                "gid {} of the log user is not in {}",
                config.log_gid,
                group.display()
            ));
        }
    }
    Ok(Request {
        config,
        dir,
        warnings,
    })
}

/// Validates maker arguments as a board states them, before the image's passwd exists:
/// `-u NAME` is resolved later against the image, so it is left out here.
pub fn parse_without_users(args: &[OsString]) -> Result<(), String> {
    let mut kept = Vec::with_capacity(args.len());
    let mut index = 0;
    while index < args.len() {
        if args[index] == "-u" && index + 1 < args.len() {
            index += 2;
            continue;
        }
        kept.push(args[index].clone());
        index += 1;
    }
    parse(&kept).map(|_| ()).map_err(|failure| match failure {
        Failure::Usage(text) | Failure::Invalid(text) | Failure::System(text) => text,
    })
}

fn show(bytes: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(bytes))
}

fn strerror(err: &std::io::Error) -> String {
    let text = err.to_string();
    // "No such file or directory (os error 2)" -> skalibs' bare strerror.
    match text.find(" (os error") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

/// True when `inner` lies strictly below `outer`.
fn inside(inner: &str, outer: &str) -> bool {
    inner.len() > outer.len() && inner.starts_with(outer) && inner.as_bytes()[outer.len()] == b'/'
}

/// `-c`/`-l`: absolute, `//` collapsed, trailing `/` dropped, no `.`/`..`, not `/`.
fn absolute_dir(value: &[u8], option: &str, what: &str) -> Result<String, Failure> {
    let invalid = |why: &str| Failure::Invalid(format!("{option} {}: {what} {why}", show(value)));
    let text = std::str::from_utf8(value).map_err(|_| invalid("must be valid UTF-8"))?;
    if !text.starts_with('/') {
        return Err(invalid("must be an absolute path"));
    }
    let mut parts = Vec::new();
    for part in text.split('/').filter(|part| !part.is_empty()) {
        if part == "." || part == ".." {
            return Err(invalid("must not contain . or .. components"));
        }
        parts.push(part);
    }
    if parts.is_empty() {
        return Err(invalid("must not be /"));
    }
    Ok(format!("/{}", parts.join("/")))
}

fn validate_bindir(value: &[u8]) -> Result<String, Failure> {
    let invalid =
        |why: &str| Failure::Invalid(format!("-b {}: execline_bindir {why}", show(value)));
    if value.first() != Some(&b'/') {
        return Err(invalid("must be an absolute path"));
    }
    if value.iter().any(|&b| b <= b' ' || b >= 0x7f) {
        return Err(invalid(
            "must not contain whitespace, control bytes or non-ASCII bytes: it goes unquoted into every shebang",
        ));
    }
    let shebang = value.len() + "#!/execlineb -P\n".len();
    if shebang > SHEBANG_MAX {
        return Err(invalid(&format!(
            "is too long: the shebang line would take {shebang} bytes, the kernel reads {SHEBANG_MAX}"
        )));
    }
    Ok(String::from_utf8_lossy(value).into_owned())
}

/// `-g` is execline source: non-empty, quotes closed, braces balanced.
fn validate_getty(source: &[u8]) -> Result<(), Failure> {
    let invalid = |why: &str| Failure::Invalid(format!("-g {}: {why}", show(source)));
    if source.iter().all(u8::is_ascii_whitespace) {
        return Err(invalid("the early getty command must not be empty"));
    }
    let (mut quoted, mut escaped, mut comment, mut depth) = (false, false, false, 0i32);
    for &byte in source {
        if comment {
            comment = byte != b'\n';
            continue;
        }
        if escaped {
            escaped = false;
            continue;
        }
        match byte {
            b'\\' => escaped = true,
            b'"' => quoted = !quoted,
            b'#' if !quoted => comment = true,
            b'{' if !quoted => depth += 1,
            b'}' if !quoted => {
                depth -= 1;
                if depth < 0 {
                    return Err(invalid("unbalanced braces: } without {"));
                }
            }
            _ => {}
        }
    }
    if quoted {
        return Err(invalid("unterminated double quote"));
    }
    if depth != 0 {
        return Err(invalid("unbalanced braces: { without }"));
    }
    Ok(())
}

fn parse_umask(value: &[u8]) -> Result<u32, Failure> {
    let invalid = || {
        Failure::Invalid(format!(
            "-m {}: initial_umask must be octal digits, at most 0777",
            show(value)
        ))
    };
    if value.is_empty() || value.len() > 4 || !value.iter().all(|b| (b'0'..=b'7').contains(b)) {
        return Err(invalid());
    }
    let umask = value
        .iter()
        .fold(0u32, |acc, &b| acc * 8 + u32::from(b - b'0'));
    if umask > 0o777 {
        return Err(invalid());
    }
    Ok(umask)
}

fn parse_digit(value: &[u8], option: &str, what: &str, max: u8) -> Result<u8, Failure> {
    match value {
        [digit] if (b'0'..=b'0' + max).contains(digit) => Ok(digit - b'0'),
        _ => Err(Failure::Invalid(format!(
            "{option} {}: {what} must be a number from 0 to {max}",
            show(value)
        ))),
    }
}

fn validate_env_name(name: &[u8]) -> Result<String, Failure> {
    let invalid = |why: &str| Failure::Invalid(format!("-e {}: {why}", show(name)));
    if name.is_empty() {
        return Err(invalid("empty variable name"));
    }
    if name.contains(&b'/') {
        return Err(invalid("a variable name must not contain /"));
    }
    if name[0] == b'.' {
        return Err(invalid(
            "a variable name must not start with . (s6-envdir skips those)",
        ));
    }
    if name.len() > 255 {
        return Err(invalid("a variable name must be at most 255 bytes"));
    }
    String::from_utf8(name.to_vec()).map_err(|_| invalid("a variable name must be valid UTF-8"))
}

/// `-u`: `NAME` (from the target passwd), `UID:GID`, or `UID` (gid from the target passwd).
fn resolve_log_user(
    value: Option<&[u8]>,
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
    let Some(value) = value else {
        // The default `nobody`: Debian's 65534:65534 unless the target says otherwise.
        return Ok(entries
            .as_ref()
            .and_then(|(_, entries)| find_name(entries, b"nobody"))
            .unwrap_or((65534, 65534)));
    };
    let invalid = |why: String| Failure::Invalid(format!("-u {}: {why}", show(value)));
    let number = |text: &[u8]| -> Option<u32> {
        if text.is_empty() || !text.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(text).ok()?.parse().ok()
    };
    if let Some(at) = value.iter().position(|&b| b == b':') {
        let (uid, gid) = (number(&value[..at]), number(&value[at + 1..]));
        return match (uid, gid) {
            (Some(uid), Some(gid)) => Ok((uid, gid)),
            _ => Err(invalid(
                "expected a user name, UID or UID:GID in decimal".to_string(),
            )),
        };
    }
    if let Some(uid) = number(value) {
        let Some((file, entries)) = &entries else {
            return Err(invalid(format!(
                "a bare uid needs the target passwd to find its gid (note: pass --passwd FILE, or -u {uid}:GID)"
            )));
        };
        return entries
            .iter()
            .find(|entry| entry.1 == uid)
            .map(|entry| (entry.1, entry.2))
            .ok_or_else(|| invalid(format!("no entry with uid {uid} in {file}")));
    }
    match &entries {
        Some((file, entries)) => {
            find_name(entries, value).ok_or_else(|| invalid(format!("unknown user: not in {file}")))
        }
        None => {
            if value == b"nobody" {
                return Ok((65534, 65534));
            }
            // The seed's behaviour, kept only as a warned fallback: the build host's
            // users say nothing about the target's.
            let host = fs::read("/etc/passwd").unwrap_or_default();
            let found = find_name(&parse_passwd(&host, "/etc/passwd", &mut Vec::new()), value)
                .ok_or_else(|| {
                    invalid("unknown user (note: pass the target's passwd with --passwd FILE, or a numeric UID:GID)".to_string())
                })?;
            warnings.push(format!(
                "-u {}: resolved against the build host's /etc/passwd as {}:{}; pass the target's with --passwd FILE",
                show(value),
                found.0,
                found.1
            ));
            Ok(found)
        }
    }
}

type PasswdEntry = (Vec<u8>, u32, u32);

fn parse_passwd(bytes: &[u8], file: &str, warnings: &mut Vec<String>) -> Vec<PasswdEntry> {
    let mut entries = Vec::new();
    for (index, line) in bytes.split(|&b| b == b'\n').enumerate() {
        if line.is_empty() || line.starts_with(b"#") {
            continue;
        }
        let fields: Vec<&[u8]> = line.split(|&b| b == b':').collect();
        let parse = |field: Option<&&[u8]>| -> Option<u32> {
            std::str::from_utf8(field?).ok()?.parse().ok()
        };
        match (fields.first(), parse(fields.get(2)), parse(fields.get(3))) {
            (Some(name), Some(uid), Some(gid)) if !name.is_empty() => {
                entries.push((name.to_vec(), uid, gid));
            }
            _ => warnings.push(format!(
                "{file}:{}: skipping unparsable passwd line",
                index + 1
            )),
        }
    }
    entries
}

fn find_name(entries: &[PasswdEntry], name: &[u8]) -> Option<(u32, u32)> {
    entries
        .iter()
        .find(|entry| entry.0 == name)
        .map(|entry| (entry.1, entry.2))
}

/// The generated tree as an image: under the basedir, plus stage 1 at /sbin/init (and
/// /init for cpio), mount points and the device nodes pid 1 needs before /dev is mounted.
pub fn image_tree(config: &Config, generated: &super::Generated, container: Container) -> Tree {
    let mut image = Tree::new();
    let origin = "s6-linux-init-maker";
    let stage1 = Content::inline(generated.stage1.clone());
    let mut add = |path: &str, kind: Kind, meta: Meta| {
        let path = ArchivePath::new(path).expect("validated absolute path");
        if let Err(err) = image.insert(path, Node::new(kind, meta, origin)) {
            panic!("image tree construction: {err}");
        }
    };
    add(&config.basedir, Kind::Dir, Meta::root(0o755));
    add("dev", Kind::Dir, Meta::root(0o755));
    add(
        "dev/console",
        Kind::CharDev { major: 5, minor: 1 },
        Meta::root(0o600),
    );
    add(
        "dev/null",
        Kind::CharDev { major: 1, minor: 3 },
        Meta::root(0o666),
    );
    add("proc", Kind::Dir, Meta::root(0o755));
    add("sys", Kind::Dir, Meta::root(0o755));
    add(&config.tmpfsdir, Kind::Dir, Meta::root(0o755));
    add("sbin/init", Kind::File(stage1.clone()), Meta::root(0o755));
    if container == Container::Cpio {
        add("init", Kind::File(stage1), Meta::root(0o755));
    }
    let base = ArchivePath::new(&config.basedir).expect("validated absolute path");
    for (path, node) in generated.tree.iter() {
        let path = base.join(path.as_str()).expect("joined valid paths");
        if let Err(err) = image.insert(path, node.clone()) {
            panic!("image tree construction: {err}");
        }
    }
    image
}

fn write_archive(request: &Request, format: Format) -> Result<(), Failure> {
    let dest = &request.dir;
    if fs::symlink_metadata(dest).is_ok() {
        return Err(Failure::System(format!(
            "unable to create {}: File exists",
            dest.display()
        )));
    }
    let generated = generate(&request.config);
    let tree = image_tree(&request.config, &generated, format.container);
    let options = archive::Options::from_env().map_err(|err| Failure::Invalid(err.to_string()))?;
    let system = |err: archive::ArchiveError| Failure::System(err.to_string());
    let temp = archive::TempFile::create(dest).map_err(system)?;
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
    temp.commit(dest).map_err(system)
}

fn print_stage1(stage1: &[u8]) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(stage1)
        .and_then(|()| stdout.flush())
        .map_err(|err| Failure::System(format!("unable to write to stdout: {}", strerror(&err))))
}

fn write_dir(request: &Request) -> Result<(), Failure> {
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
