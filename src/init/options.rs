//! The maker's options, typed and validated, before the log user is resolved.
//!
//! Both front ends build `Options` through [`Options::validate`]: the maker's command
//! line (`-c -l -b -u -g -2 -r -Z -3 -p -m -t -d -e`) and a board's `[init]` table. Each
//! names a value its own way in messages (`-t "7"` or `[init] timestamp_style = "7"`);
//! the rules and the reasons are one set. The log user stays a [`LogUser`] until the
//! target's passwd is known: the maker takes `--passwd`, a board its `[[users]]`.

/// Files every init image has (stage 1 and the nodes pid 1 needs before /dev is
/// mounted): the basedir and the tmpfsdir are directories, so they cannot be these.
const FIXED_FILES: [&str; 4] = ["/dev/console", "/dev/null", "/sbin/init", "/init"];

/// Linux's shebang buffer (BINPRM_BUF_SIZE) since 5.1, newline included.
const SHEBANG_MAX: usize = 256;

/// One of the maker's options that takes a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opt {
    Basedir,
    Tmpfsdir,
    ExeclineBindir,
    LogUser,
    EarlyGetty,
    Stage2,
    Stage2Finish,
    Stage3,
    Path,
    Umask,
    TimestampStyle,
    DevStyle,
    Env,
    Supervisor,
}

/// Every option with its letter and its board key, in the order values are validated.
pub const OPTS: [(Opt, u8, &str); 14] = [
    (Opt::Supervisor, b'S', "supervisor"),
    (Opt::Basedir, b'c', "basedir"),
    (Opt::Tmpfsdir, b'l', "tmpfsdir"),
    (Opt::ExeclineBindir, b'b', "execline_bindir"),
    (Opt::Stage2, b'2', "stage2"),
    (Opt::Stage2Finish, b'Z', "stage2_finish"),
    (Opt::Stage3, b'3', "stage3"),
    (Opt::EarlyGetty, b'g', "early_getty"),
    (Opt::Umask, b'm', "umask"),
    (Opt::TimestampStyle, b't', "timestamp_style"),
    (Opt::DevStyle, b'd', "dev_style"),
    (Opt::Env, b'e', "env"),
    (Opt::Path, b'p', "path"),
    (Opt::LogUser, b'u', "log_user"),
];

impl Opt {
    pub fn from_letter(letter: u8) -> Option<Opt> {
        OPTS.iter()
            .find(|(_, known, _)| *known == letter)
            .map(|(opt, ..)| *opt)
    }

    pub fn letter(self) -> char {
        OPTS.iter()
            .find(|(opt, ..)| *opt == self)
            .map_or('?', |(_, letter, _)| *letter as char)
    }

    /// The board's `[init]` key for this option.
    pub fn key(self) -> &'static str {
        OPTS.iter()
            .find(|(opt, ..)| *opt == self)
            .map_or("?", |(.., key)| *key)
    }
}

/// `-S` (a kiln extension of the seed interface): which supervision suite pid 1 runs.
/// s6 is the seed's own; runit and daemontools get the same scheme (scan directory on
/// the tmpfs, the catch-all logger first, stage 2 after it) through a small pid 1
/// shell, because neither runsvdir nor svscan can take shutdown signals as pid 1.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Supervisor {
    #[default]
    S6,
    Runit,
    Daemontools,
}

impl Supervisor {
    pub const ALL: [Supervisor; 3] = [Supervisor::S6, Supervisor::Runit, Supervisor::Daemontools];

    pub fn name(self) -> &'static str {
        match self {
            Supervisor::S6 => "s6",
            Supervisor::Runit => "runit",
            Supervisor::Daemontools => "daemontools",
        }
    }

    /// The program that scans the service directory.
    pub fn scanner(self) -> &'static str {
        match self {
            Supervisor::S6 => "s6-svscan",
            Supervisor::Runit => "runsvdir",
            Supervisor::Daemontools => "svscan",
        }
    }

    /// The catch-all logger's program.
    pub fn logger(self) -> &'static str {
        match self {
            Supervisor::S6 => "s6-log",
            Supervisor::Runit => "svlogd",
            Supervisor::Daemontools => "multilog",
        }
    }

    fn parse(value: &[u8]) -> Result<Supervisor, String> {
        Supervisor::ALL
            .into_iter()
            .find(|supervisor| supervisor.name().as_bytes() == value)
            .ok_or_else(|| "supervisor must be s6, runit or daemontools".to_string())
    }
}

/// `-u`, as given: resolved against the target's passwd later.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogUser {
    /// Not given: `nobody`, 65534:65534 unless the target's passwd says otherwise.
    Default,
    /// A user name of the target.
    Name(Vec<u8>),
    /// A bare uid; the gid comes from the target's passwd.
    Uid(u32),
    /// `UID:GID`.
    Ids(u32, u32),
}

/// Debian's `nobody`, the log user when none is given and the target has none.
pub const NOBODY: (u32, u32) = (65534, 65534);

impl LogUser {
    /// The uid and gid in a target's accounts (its passwd, or a board's users), by the
    /// one rule both front ends use: the default and `nobody` fall back to Debian's
    /// 65534:65534 when the target does not list them; `None` when a name or a bare uid
    /// is not there.
    pub fn resolve(&self, entries: &[crate::passwd::Entry]) -> Option<(u32, u32)> {
        let by_name = |name: &[u8]| {
            let entry = crate::passwd::by_name(entries, name)?;
            Some((entry.id, entry.gid?))
        };
        match self {
            LogUser::Default => Some(by_name(b"nobody").unwrap_or(NOBODY)),
            LogUser::Ids(uid, gid) => Some((*uid, *gid)),
            LogUser::Name(name) if name == b"nobody" => Some(by_name(name).unwrap_or(NOBODY)),
            LogUser::Name(name) => by_name(name),
            LogUser::Uid(uid) => entries
                .iter()
                .find(|entry| entry.id == *uid)
                .and_then(|entry| Some((entry.id, entry.gid?))),
        }
    }
}

/// Everything the maker takes, validated. Byte strings are what the user passed; they
/// reach the scripts only through `init::quote`.
#[derive(Clone, Debug)]
pub struct Options {
    /// `-c`: where the tree lives on the target (absolute, normalised).
    pub basedir: String,
    /// `-l`: the tmpfs stage 1 mounts and copies `run-image` into.
    pub tmpfsdir: String,
    /// `-b`: execline's binaries; raw in every shebang, so validated to need no quoting.
    pub execline_bindir: String,
    /// `-u`: the catch-all logger's user, unresolved.
    pub log_user: LogUser,
    /// `-g`: execline source for the early getty service.
    pub early_getty: Option<Vec<u8>>,
    pub stage2: Vec<u8>,
    /// `-r`: stage 2's output goes to the catch-all logger.
    pub redirect_stage2: bool,
    pub stage2_finish: Vec<u8>,
    pub stage3: Vec<u8>,
    pub path: Vec<u8>,
    pub umask: u32,
    pub timestamp_style: u8,
    pub dev_style: u8,
    /// `-e`, in order, names unique: `None` removes the variable.
    pub env: Vec<(String, Option<Vec<u8>>)>,
    /// `-S`: the supervision suite.
    pub supervisor: Supervisor,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            basedir: "/etc/s6-linux-init".to_string(),
            tmpfsdir: "/run".to_string(),
            execline_bindir: "/bin".to_string(),
            log_user: LogUser::Default,
            early_getty: None,
            stage2: b"/etc/rc.init".to_vec(),
            redirect_stage2: false,
            stage2_finish: b"/etc/rc.tini".to_vec(),
            stage3: b"/etc/rc.shutdown".to_vec(),
            path: b"/usr/bin:/bin".to_vec(),
            umask: 0o022,
            timestamp_style: 1,
            dev_style: 2,
            env: Vec::new(),
            supervisor: Supervisor::S6,
        }
    }
}

/// Why the options are not valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalid {
    /// One value is wrong.
    Value {
        opt: Opt,
        value: Vec<u8>,
        why: String,
    },
    /// The basedir and the tmpfsdir overlap.
    Overlap { basedir: String, tmpfsdir: String },
}

const OVERLAP: &str =
    "overlap: the basedir must be neither the tmpfsdir, nor inside it, nor contain it";

impl Invalid {
    /// As the maker's command line names it: `-t "7": timestamp_style must be ...`.
    pub fn for_command_line(&self) -> String {
        match self {
            Invalid::Value { opt, value, why } => {
                format!("-{} {}: {why}", opt.letter(), show(value))
            }
            Invalid::Overlap { basedir, tmpfsdir } => {
                format!("-c {basedir} and -l {tmpfsdir} {OVERLAP}")
            }
        }
    }

    /// As a board names it: the key, then `[init] timestamp_style = "7": ...`.
    pub fn for_board(&self) -> (String, String) {
        match self {
            Invalid::Value { opt, value, why } => (
                format!("[init] {}", opt.key()),
                format!("{}: {why}", show(value)),
            ),
            Invalid::Overlap { basedir, tmpfsdir } => (
                "[init] basedir, tmpfsdir".to_string(),
                format!("{basedir:?} and {tmpfsdir:?} {OVERLAP}"),
            ),
        }
    }
}

impl Options {
    /// Validates values as given, in `OPTS` order; of a repeated option the last value
    /// counts, except `-e`, which keeps every one in order. Returns the options and the
    /// warnings (not errors: the maker accepts them).
    pub fn validate(
        given: &[(Opt, Vec<u8>)],
        redirect_stage2: bool,
    ) -> Result<(Options, Vec<String>), Invalid> {
        let mut options = Options {
            redirect_stage2,
            ..Options::default()
        };
        let mut warnings = Vec::new();
        let last = |wanted: Opt| {
            given
                .iter()
                .rev()
                .find(|(opt, _)| *opt == wanted)
                .map(|(_, value)| value.as_slice())
        };
        for (opt, ..) in OPTS {
            if opt == Opt::Env {
                for (_, value) in given.iter().filter(|(given, _)| *given == Opt::Env) {
                    let (name, assigned) = match value.iter().position(|&b| b == b'=') {
                        Some(at) => (&value[..at], Some(value[at + 1..].to_vec())),
                        None => (&value[..], None),
                    };
                    let name = env_name(name).map_err(|why| Invalid::Value {
                        opt,
                        value: name.to_vec(),
                        why,
                    })?;
                    if let Some(old) = options
                        .env
                        .iter_mut()
                        .find(|(existing, _)| *existing == name)
                    {
                        warnings.push(format!(
                            "-e {name} given more than once; the last value wins"
                        ));
                        old.1 = assigned;
                    } else {
                        options.env.push((name, assigned));
                    }
                }
                continue;
            }
            if let Some(value) = last(opt) {
                options.set(opt, value)?;
            }
            if opt == Opt::Tmpfsdir {
                let (c, t) = (&options.basedir, &options.tmpfsdir);
                if c == t || inside(c, t) || inside(t, c) {
                    return Err(Invalid::Overlap {
                        basedir: c.clone(),
                        tmpfsdir: t.clone(),
                    });
                }
                for (opt, dir) in [(Opt::Basedir, c), (Opt::Tmpfsdir, t)] {
                    if let Some(file) = FIXED_FILES
                        .iter()
                        .find(|file| dir == *file || inside(dir, file))
                    {
                        return Err(Invalid::Value {
                            opt,
                            value: dir.as_bytes().to_vec(),
                            why: format!(
                                "{} must not be {file} or below it: the image needs that file there",
                                opt.key()
                            ),
                        });
                    }
                }
            }
        }
        // svlogd writes one stamp (-t TAI64N or -ttt ISO 8601), multilog only TAI64N.
        let stamps_known = match options.supervisor {
            Supervisor::S6 => true,
            Supervisor::Runit => options.timestamp_style <= 2,
            Supervisor::Daemontools => options.timestamp_style <= 1,
        };
        if !stamps_known {
            return Err(Invalid::Value {
                opt: Opt::TimestampStyle,
                value: options.timestamp_style.to_string().into_bytes(),
                why: format!(
                    "{} cannot write this timestamp style under {} (svlogd writes TAI64N or ISO 8601, multilog TAI64N only)",
                    options.supervisor.logger(),
                    options.supervisor.name()
                ),
            });
        }
        warnings.extend(options.path_warnings());
        Ok((options, warnings))
    }

    /// Sets one option from its value, validated.
    fn set(&mut self, opt: Opt, value: &[u8]) -> Result<(), Invalid> {
        let invalid = |why: String| Invalid::Value {
            opt,
            value: value.to_vec(),
            why,
        };
        match opt {
            Opt::Basedir => self.basedir = absolute_dir(value, "basedir").map_err(invalid)?,
            Opt::Tmpfsdir => self.tmpfsdir = absolute_dir(value, "tmpfsdir").map_err(invalid)?,
            Opt::ExeclineBindir => self.execline_bindir = bindir(value).map_err(invalid)?,
            Opt::Stage2 | Opt::Stage2Finish | Opt::Stage3 => {
                absolute_program(value).map_err(invalid)?;
                let slot = match opt {
                    Opt::Stage2 => &mut self.stage2,
                    Opt::Stage2Finish => &mut self.stage2_finish,
                    _ => &mut self.stage3,
                };
                *slot = value.to_vec();
            }
            Opt::EarlyGetty => {
                getty(value).map_err(invalid)?;
                self.early_getty = Some(value.to_vec());
            }
            Opt::Umask => self.umask = umask(value).map_err(invalid)?,
            Opt::TimestampStyle => {
                self.timestamp_style = digit(value, "timestamp_style", 3).map_err(invalid)?
            }
            Opt::DevStyle => self.dev_style = digit(value, "dev_style", 2).map_err(invalid)?,
            Opt::Path => self.path = value.to_vec(),
            Opt::LogUser => self.log_user = log_user(value).map_err(invalid)?,
            Opt::Supervisor => self.supervisor = Supervisor::parse(value).map_err(invalid)?,
            Opt::Env => return Err(invalid("-e is validated with the others".to_string())),
        }
        Ok(())
    }

    /// The maker's command line for these options: every value that differs from the
    /// default, as `kiln config` shows a board's `[init]`.
    pub fn args(&self) -> Vec<Vec<u8>> {
        let default = Options::default();
        let mut args: Vec<Vec<u8>> = Vec::new();
        let mut option = |letter: &str, value: Vec<u8>, default: Vec<u8>| {
            if value != default {
                args.push(letter.as_bytes().to_vec());
                args.push(value);
            }
        };
        option(
            "-c",
            self.basedir.clone().into_bytes(),
            default.basedir.into_bytes(),
        );
        option(
            "-l",
            self.tmpfsdir.clone().into_bytes(),
            default.tmpfsdir.into_bytes(),
        );
        option(
            "-b",
            self.execline_bindir.clone().into_bytes(),
            default.execline_bindir.into_bytes(),
        );
        let log_user = match &self.log_user {
            LogUser::Default => Vec::new(),
            LogUser::Name(name) => name.clone(),
            LogUser::Uid(uid) => uid.to_string().into_bytes(),
            LogUser::Ids(uid, gid) => format!("{uid}:{gid}").into_bytes(),
        };
        option("-u", log_user, Vec::new());
        option(
            "-g",
            self.early_getty.clone().unwrap_or_default(),
            Vec::new(),
        );
        option("-2", self.stage2.clone(), default.stage2);
        option("-Z", self.stage2_finish.clone(), default.stage2_finish);
        option("-3", self.stage3.clone(), default.stage3);
        option("-p", self.path.clone(), default.path);
        option(
            "-m",
            format!("{:03o}", self.umask).into_bytes(),
            format!("{:03o}", default.umask).into_bytes(),
        );
        option(
            "-t",
            self.timestamp_style.to_string().into_bytes(),
            default.timestamp_style.to_string().into_bytes(),
        );
        option(
            "-d",
            self.dev_style.to_string().into_bytes(),
            default.dev_style.to_string().into_bytes(),
        );
        option(
            "-S",
            self.supervisor.name().as_bytes().to_vec(),
            default.supervisor.name().as_bytes().to_vec(),
        );
        for (name, value) in &self.env {
            let mut word = name.clone().into_bytes();
            if let Some(value) = value {
                word.push(b'=');
                word.extend_from_slice(value);
            }
            args.push(b"-e".to_vec());
            args.push(word);
        }
        if self.redirect_stage2 {
            args.push(b"-r".to_vec());
        }
        args
    }

    /// PATH without the execline bindir finds no execline program by name.
    fn path_warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        let bindir = self.execline_bindir.as_bytes();
        let path_has_bindir = |path: &[u8]| path.split(|&b| b == b':').any(|dir| dir == bindir);
        if self.path.is_empty() {
            warnings.push("-p is empty: stage 1 will find no program by name".to_string());
        } else if !path_has_bindir(&self.path) {
            warnings.push(format!(
                "-p {} does not contain the execline bindir {}",
                show(&self.path),
                self.execline_bindir
            ));
        }
        match self.env.iter().find(|(name, _)| name == "PATH") {
            Some((_, None)) => {
                warnings.push("-e PATH removes PATH for s6-svscan and every service".to_string())
            }
            Some((_, Some(path))) if !path_has_bindir(path) => warnings.push(format!(
                "-e PATH={} does not contain the execline bindir {}",
                show(path),
                self.execline_bindir
            )),
            _ => {}
        }
        warnings
    }
}

/// A byte string as it is shown in messages: quoted, escapes for the unprintable.
pub fn show(bytes: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(bytes))
}

/// True when `inner` lies strictly below `outer`.
fn inside(inner: &str, outer: &str) -> bool {
    inner.len() > outer.len() && inner.starts_with(outer) && inner.as_bytes()[outer.len()] == b'/'
}

/// `-c`/`-l`: absolute, `//` collapsed, trailing `/` dropped, no `.`/`..`, not `/`.
fn absolute_dir(value: &[u8], what: &str) -> Result<String, String> {
    let invalid = |why: &str| format!("{what} {why}");
    let text = std::str::from_utf8(value).map_err(|_| invalid("must be valid UTF-8"))?;
    if !text.starts_with('/') {
        return Err(invalid("must be an absolute path"));
    }
    if text.contains('\0') {
        return Err(invalid("must not contain a NUL byte"));
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

/// `-2`, `-Z`, `-3`: an absolute path (the scripts exec it by path).
fn absolute_program(value: &[u8]) -> Result<(), String> {
    if value.first() != Some(&b'/') {
        return Err("must be an absolute path".to_string());
    }
    Ok(())
}

fn bindir(value: &[u8]) -> Result<String, String> {
    let invalid = |why: &str| format!("execline_bindir {why}");
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
fn getty(source: &[u8]) -> Result<(), String> {
    if source.iter().all(u8::is_ascii_whitespace) {
        return Err("the early getty command must not be empty".to_string());
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
                    return Err("unbalanced braces: } without {".to_string());
                }
            }
            _ => {}
        }
    }
    if quoted {
        return Err("unterminated double quote".to_string());
    }
    if depth != 0 {
        return Err("unbalanced braces: { without }".to_string());
    }
    Ok(())
}

fn umask(value: &[u8]) -> Result<u32, String> {
    let invalid = || "initial_umask must be octal digits, at most 0777".to_string();
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

fn digit(value: &[u8], what: &str, max: u8) -> Result<u8, String> {
    match value {
        [digit] if (b'0'..=b'0' + max).contains(digit) => Ok(digit - b'0'),
        _ => Err(format!("{what} must be a number from 0 to {max}")),
    }
}

fn env_name(name: &[u8]) -> Result<String, String> {
    if name.is_empty() {
        return Err("empty variable name".to_string());
    }
    if name.contains(&b'/') {
        return Err("a variable name must not contain /".to_string());
    }
    if name.contains(&0) {
        return Err("a variable name must not contain a NUL byte".to_string());
    }
    if name[0] == b'.' {
        return Err("a variable name must not start with . (s6-envdir skips those)".to_string());
    }
    if name.len() > 255 {
        return Err("a variable name must be at most 255 bytes".to_string());
    }
    String::from_utf8(name.to_vec()).map_err(|_| "a variable name must be valid UTF-8".to_string())
}

/// `-u`: `NAME`, `UID` or `UID:GID`, all decimal.
fn log_user(value: &[u8]) -> Result<LogUser, String> {
    let number = |text: &[u8]| -> Option<u32> {
        if text.is_empty() || !text.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(text).ok()?.parse().ok()
    };
    if let Some(at) = value.iter().position(|&b| b == b':') {
        return match (number(&value[..at]), number(&value[at + 1..])) {
            (Some(uid), Some(gid)) => Ok(LogUser::Ids(uid, gid)),
            _ => Err("expected a user name, UID or UID:GID in decimal".to_string()),
        };
    }
    if let Some(uid) = number(value) {
        return Ok(LogUser::Uid(uid));
    }
    if value.is_empty() || value.iter().any(|&b| b == b'\n' || b == 0) {
        return Err("expected a user name, UID or UID:GID in decimal".to_string());
    }
    Ok(LogUser::Name(value.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn given(pairs: &[(Opt, &str)]) -> Vec<(Opt, Vec<u8>)> {
        pairs
            .iter()
            .map(|(opt, value)| (*opt, value.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn each_front_end_names_the_value_its_own_way() {
        let err = Options::validate(&given(&[(Opt::TimestampStyle, "7")]), false).unwrap_err();
        assert_eq!(
            err.for_command_line(),
            "-t \"7\": timestamp_style must be a number from 0 to 3"
        );
        assert_eq!(
            err.for_board(),
            (
                "[init] timestamp_style".to_string(),
                "\"7\": timestamp_style must be a number from 0 to 3".to_string()
            )
        );
        let err = Options::validate(&given(&[(Opt::Tmpfsdir, "/etc/s6-linux-init/x")]), false)
            .unwrap_err();
        assert!(
            err.for_command_line()
                .starts_with("-c /etc/s6-linux-init and -l ")
        );
    }

    #[test]
    fn the_last_value_counts_and_env_keeps_all() {
        let (options, warnings) = Options::validate(
            &given(&[
                (Opt::Umask, "077"),
                (Opt::Umask, "027"),
                (Opt::Env, "A=1"),
                (Opt::Env, "B"),
                (Opt::Env, "A=2"),
                (Opt::LogUser, "70:71"),
                (Opt::Path, "/bin"),
            ]),
            true,
        )
        .unwrap();
        assert_eq!(options.umask, 0o027);
        assert!(options.redirect_stage2);
        assert_eq!(
            options.env,
            vec![
                ("A".to_string(), Some(b"2".to_vec())),
                ("B".to_string(), None)
            ]
        );
        assert_eq!(options.log_user, LogUser::Ids(70, 71));
        assert_eq!(
            warnings,
            vec!["-e A given more than once; the last value wins".to_string()]
        );
    }

    #[test]
    fn supervisors_parse_and_refuse_stamps_their_logger_cannot_write() {
        let (options, _) = Options::validate(&given(&[(Opt::Supervisor, "runit")]), false).unwrap();
        assert_eq!(options.supervisor, Supervisor::Runit);
        assert_eq!(options.args(), vec![b"-S".to_vec(), b"runit".to_vec()]);
        let (options, _) = Options::validate(&[], false).unwrap();
        assert_eq!(options.supervisor, Supervisor::S6);
        assert!(options.args().is_empty());
        let err = Options::validate(&given(&[(Opt::Supervisor, "systemd")]), false).unwrap_err();
        assert_eq!(
            err.for_board(),
            (
                "[init] supervisor".to_string(),
                "\"systemd\": supervisor must be s6, runit or daemontools".to_string()
            )
        );
        for (supervisor, refused) in [("runit", "3"), ("daemontools", "2")] {
            let err = Options::validate(
                &given(&[
                    (Opt::Supervisor, supervisor),
                    (Opt::TimestampStyle, refused),
                ]),
                false,
            )
            .unwrap_err();
            assert!(
                err.for_command_line()
                    .starts_with(&format!("-t \"{refused}\": ")),
                "{}",
                err.for_command_line()
            );
        }
        assert!(
            Options::validate(
                &given(&[(Opt::Supervisor, "runit"), (Opt::TimestampStyle, "2")]),
                false
            )
            .is_ok()
        );
    }

    #[test]
    fn log_users_parse_or_are_refused() {
        assert_eq!(log_user(b"log"), Ok(LogUser::Name(b"log".to_vec())));
        assert_eq!(log_user(b"70"), Ok(LogUser::Uid(70)));
        assert!(log_user(b"a:b").is_err());
        assert!(log_user(b"").is_err());
        assert!(log_user(b"x\ny").is_err());
    }
}
