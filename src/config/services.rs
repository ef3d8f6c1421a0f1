//! `[services.NAME]`: declared services, checked when the board loads (names, users,
//! environment, `after` names and cycles), and the waves stage 2 starts them in.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use super::accounts::User;
use super::raw::RawService;
use super::{Problem, problem};

/// s6-log's defaults for a service's own logger: `n10 s1000000`.
pub const LOG_FILES: u32 = 10;
pub const LOG_SIZE: u32 = 1_000_000;

/// A declared service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// Its directory's name in `/etc/s6/services` (letters, digits, `.`, `_`, `-`).
    pub name: String,
    pub what: Run,
    /// The image user it runs as: name, uid, gid, supplementary gids, home.
    pub user: Option<RunAs>,
    pub env: BTreeMap<String, String>,
    pub cwd: Option<String>,
    /// Its own s6-log, writing `/var/log/NAME/`.
    pub log: Option<Log>,
    /// Services that must be up and ready before it starts.
    pub after: Vec<String>,
    /// Run once by stage 2, in order, instead of supervised.
    pub oneshot: bool,
    /// s6's `notification-fd`: the daemon says it is ready on this fd.
    pub notification_fd: Option<u32>,
    /// The board table it comes from: `[services.NAME]`, or `[network]` and `[ssh]` for
    /// kiln's own.
    pub table: String,
}

/// What a service runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Run {
    /// A command line for `/bin/sh -c`.
    Shell(String),
    /// An execline script body.
    Execline(String),
    /// A ready-made service directory (with a `run`).
    Dir(PathBuf),
}

/// An image user, resolved among the board's `[[users]]` and `[[groups]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunAs {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    pub home: String,
}

/// A service logger's rotation: s6-log's `nFILES sSIZE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Log {
    pub files: u32,
    pub size: u32,
}

/// Names kiln's own services take in the scan directory.
const RESERVED: [&str; 3] = ["s6-svscan-log", "s6-linux-init-early-getty", "kiln-probe"];

/// An environment variable name: a shell identifier.
pub fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 255
}

/// The supplementary groups of `user`: every board group that lists it.
pub fn supplementary(user: &User, groups: &[super::accounts::Group]) -> Vec<u32> {
    groups
        .iter()
        .filter(|group| group.members.contains(&user.name) && group.gid != user.gid)
        .map(|group| group.gid)
        .collect()
}

/// Validates the `[services]` tables (in name order) against the board's users;
/// `implicit` are services kiln itself declares (e.g. `network`), which `after` may name.
pub fn services(
    raw: BTreeMap<String, RawService>,
    users: &[User],
    groups: &[super::accounts::Group],
    implicit: &[Service],
) -> Result<Vec<Service>, Problem> {
    let mut services: Vec<Service> = implicit.to_vec();
    for (name, raw) in raw {
        let key = |field: &str| {
            if field.is_empty() {
                format!("[services.{name}]")
            } else {
                format!("[services.{name}] {field}")
            }
        };
        if !super::portable_name(&name, 64, '.') || name.starts_with('-') {
            return Err(problem(
                key(""),
                format!(
                    "{name:?} is not a service name: give 1 to 64 letters, digits, '.', '_' or '-', not starting with '.' or '-'"
                ),
            ));
        }
        if RESERVED.contains(&name.as_str()) || implicit.iter().any(|s| s.name == name) {
            return Err(problem(
                key(""),
                format!("{name:?} is kiln's own service name; choose another"),
            ));
        }
        let oneshot = raw.oneshot.unwrap_or(false);
        let what = match (raw.run, raw.dir) {
            (Some(_), Some(_)) => return Err(problem(key(""), "give run or dir, not both")),
            (None, None) => {
                return Err(problem(
                    key(""),
                    "give run = \"COMMAND LINE\" or dir = \"a service directory\"",
                ));
            }
            (Some(run), None) => {
                if run.trim().is_empty() {
                    return Err(problem(key("run"), "is empty"));
                }
                if raw.execline == Some(true) {
                    Run::Execline(run)
                } else {
                    Run::Shell(run)
                }
            }
            (None, Some(dir)) => {
                let dir = PathBuf::from(dir);
                if raw.execline.is_some()
                    || raw.user.is_some()
                    || raw.env.is_some()
                    || raw.cwd.is_some()
                    || oneshot
                {
                    return Err(problem(
                        key("dir"),
                        "a ready-made directory has its own run: execline, user, env, cwd and oneshot go with run = \"...\"",
                    ));
                }
                if !dir.join("run").is_file() {
                    return Err(problem(
                        key("dir"),
                        format!(
                            "{} has no run file (note: an s6 service directory holds at least an executable run; relative to the board file)",
                            dir.display()
                        ),
                    ));
                }
                Run::Dir(dir)
            }
        };
        let user = match raw.user {
            None => None,
            Some(user_name) => {
                let user = users
                    .iter()
                    .find(|user| user.name == user_name)
                    .ok_or_else(|| {
                        problem(
                            key("user"),
                            format!(
                                "{user_name:?} is not one of the board's [[users]] (note: add it there; the build host's users are never used)"
                            ),
                        )
                    })?;
                Some(RunAs {
                    name: user.name.clone(),
                    uid: user.uid,
                    gid: user.gid,
                    groups: supplementary(user, groups),
                    home: user.home.clone(),
                })
            }
        };
        let env = raw.env.unwrap_or_default();
        for (variable, value) in &env {
            if !is_identifier(variable) {
                return Err(problem(
                    key("env"),
                    format!("{variable:?} is not a variable name (letters, digits, '_')"),
                ));
            }
            if value.contains('\0') {
                return Err(problem(key("env"), format!("{variable}: a NUL byte")));
            }
        }
        if let Some(cwd) = &raw.cwd {
            if !cwd.starts_with('/') || cwd.bytes().any(|b| b < b' ') {
                return Err(problem(
                    key("cwd"),
                    format!("{cwd:?}: an absolute path without control characters"),
                ));
            }
        }
        let log = match raw.log {
            Some(true) if oneshot => {
                return Err(problem(
                    key("log"),
                    "a oneshot's output goes to stage 2's (the console); drop log or oneshot",
                ));
            }
            Some(false) => None,
            None if oneshot => None,
            _ => Some(Log {
                files: raw.log_files.unwrap_or(LOG_FILES),
                size: raw.log_size.unwrap_or(LOG_SIZE),
            }),
        };
        if let Some(log) = log {
            // s6-log's own bounds: s4096 is its smallest size, 16 MiB keeps it sane.
            if !(4096..=16 << 20).contains(&log.size) {
                return Err(problem(
                    key("log_size"),
                    format!("{}: give 4096 to 16777216 bytes", log.size),
                ));
            }
            if log.files > 1000 {
                return Err(problem(
                    key("log_files"),
                    format!("{}: give at most 1000", log.files),
                ));
            }
        } else if raw.log_files.is_some() || raw.log_size.is_some() {
            return Err(problem(
                key("log_files"),
                "rotation needs the service's own logger (log = true)",
            ));
        }
        if let Some(fd) = raw.notification_fd {
            if oneshot || !(3..=255).contains(&fd) {
                return Err(problem(
                    key("notification_fd"),
                    format!("{fd}: a supervised service's fd from 3 to 255"),
                ));
            }
        }
        let after = raw.after.unwrap_or_default();
        services.push(Service {
            table: format!("[services.{name}]"),
            name,
            what,
            user,
            env,
            cwd: raw.cwd,
            log,
            after,
            oneshot,
            notification_fd: raw.notification_fd,
        });
    }
    Ok(services)
}

/// The waves stage 2 starts the services in: a service is in the wave after the last of
/// the services it is `after`. Unknown names and cycles are the board's mistakes.
pub fn waves(services: &[Service]) -> Result<Vec<Vec<String>>, Problem> {
    let by_name: BTreeMap<&str, &Service> = services.iter().map(|s| (s.name.as_str(), s)).collect();
    for service in services {
        let mut seen = BTreeSet::new();
        for other in &service.after {
            if !seen.insert(other) {
                return Err(problem(
                    format!("[services.{}] after", service.name),
                    format!("{other:?} is named twice"),
                ));
            }
            if !by_name.contains_key(other.as_str()) {
                let known: Vec<&str> = by_name.keys().copied().collect();
                return Err(problem(
                    format!("[services.{}] after", service.name),
                    format!(
                        "{other:?} is not a declared service (note: the board declares {})",
                        if known.is_empty() {
                            "none".to_string()
                        } else {
                            known.join(", ")
                        }
                    ),
                ));
            }
        }
    }
    // Depth by depth-first search; `path` holds the chain being explored, for cycles.
    fn depth<'a>(
        name: &'a str,
        by_name: &BTreeMap<&'a str, &'a Service>,
        depths: &mut BTreeMap<&'a str, usize>,
        path: &mut Vec<&'a str>,
    ) -> Result<usize, Problem> {
        if let Some(depth) = depths.get(name) {
            return Ok(*depth);
        }
        if let Some(start) = path.iter().position(|n| *n == name) {
            let mut cycle: Vec<&str> = path[start..].to_vec();
            cycle.push(name);
            return Err(problem(
                format!("[services.{name}] after"),
                format!(
                    "{} is a cycle: no service of it could ever start",
                    cycle.join(" -> ")
                ),
            ));
        }
        path.push(name);
        let mut own = 0;
        for other in &by_name[name].after {
            own = own.max(depth(other, by_name, depths, path)? + 1);
        }
        path.pop();
        depths.insert(name, own);
        Ok(own)
    }
    let mut depths = BTreeMap::new();
    for name in by_name.keys() {
        depth(name, &by_name, &mut depths, &mut Vec::new())?;
    }
    let mut waves: Vec<Vec<String>> = Vec::new();
    for (name, depth) in depths {
        if waves.len() <= depth {
            waves.resize(depth + 1, Vec::new());
        }
        waves[depth].push(name.to_string());
    }
    Ok(waves)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(name: &str, after: &[&str]) -> Service {
        Service {
            name: name.to_string(),
            what: Run::Shell("true".to_string()),
            user: None,
            env: BTreeMap::new(),
            cwd: None,
            log: None,
            after: after.iter().map(|s| s.to_string()).collect(),
            oneshot: false,
            notification_fd: None,
            table: format!("[services.{name}]"),
        }
    }

    #[test]
    fn waves_follow_after() {
        let services = [
            service("web", &["network", "db"]),
            service("db", &["sysctl"]),
            service("network", &[]),
            service("sysctl", &[]),
            service("lone", &[]),
        ];
        assert_eq!(
            waves(&services).unwrap(),
            vec![vec!["lone", "network", "sysctl"], vec!["db"], vec!["web"],]
        );
    }

    #[test]
    fn cycles_and_unknown_names_are_refused() {
        let cycle = [
            service("a", &["b"]),
            service("b", &["c"]),
            service("c", &["a"]),
        ];
        assert_eq!(
            waves(&cycle).unwrap_err(),
            problem(
                "[services.a] after",
                "a -> b -> c -> a is a cycle: no service of it could ever start"
            )
        );
        let own = [service("a", &["a"])];
        assert_eq!(
            waves(&own).unwrap_err().1,
            "a -> a is a cycle: no service of it could ever start"
        );
        let unknown = [service("a", &["nope"])];
        assert_eq!(
            waves(&unknown).unwrap_err(),
            problem(
                "[services.a] after",
                "\"nope\" is not a declared service (note: the board declares a)"
            )
        );
    }
}
