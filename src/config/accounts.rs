//! `[[users]]`, `[[groups]]` and `[init]`: account names that cannot split a passwd
//! line, no duplicates, group members among the users, and the maker's options with the
//! log user resolved among the board's users (never the build host's).

use std::collections::BTreeSet;

use super::login::{self, Password};
use super::raw::{RawGroup, RawInit, RawKeys, RawUser};
use super::{Problem, problem};
use crate::init::options::{LogUser, Opt, Options};

/// An account of the image's `/etc/passwd`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
    pub shell: String,
    pub password: Password,
    /// Public key lines for `~/.ssh/authorized_keys`.
    pub authorized_keys: Vec<String>,
    /// `[[groups]]` the user is also a member of (merged into their members).
    pub groups: Vec<String>,
}

/// A group of the image's `/etc/group`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    pub gid: u32,
    pub members: Vec<String>,
}

/// An account name that passwd, group and the maker can take: 1 to 32 of letters,
/// digits, `.`, `_`, `-`, not starting with `-` (no `:`, newline or NUL can split a line).
fn check_account_name(key: &str, name: &str) -> Result<(), Problem> {
    if super::portable_name(name, 32, '-') {
        Ok(())
    } else {
        Err(problem(
            key,
            format!(
                "{name:?} is not an account name: give 1 to 32 letters, digits, '.', '_' or '-', not starting with '-'"
            ),
        ))
    }
}

/// A home or shell: absolute, and nothing that would split a passwd line.
fn check_passwd_path(key: &str, path: &str) -> Result<(), Problem> {
    if !path.starts_with('/') || path.bytes().any(|b| b == b':' || b < b' ') {
        return Err(problem(
            key,
            format!("{path:?}: an absolute path without ':' or control characters"),
        ));
    }
    Ok(())
}

pub fn users(raw: Vec<RawUser>) -> Result<Vec<User>, Problem> {
    let mut names = BTreeSet::new();
    let mut users = Vec::new();
    for (index, user) in raw.into_iter().enumerate() {
        let key = |field: &str| format!("[[users]] #{} {field}", index + 1);
        check_account_name(&key("name"), &user.name)?;
        if !names.insert(user.name.clone()) {
            return Err(problem(
                key("name"),
                format!("{:?} is declared twice", user.name),
            ));
        }
        let home = user.home.unwrap_or_else(|| "/".to_string());
        let shell = user.shell.unwrap_or_else(|| "/bin/false".to_string());
        check_passwd_path(&key("home"), &home)?;
        check_passwd_path(&key("shell"), &shell)?;
        let password = match &user.password {
            None => Password::Locked,
            Some(text) => login::password(text).map_err(|why| problem(key("password"), why))?,
        };
        let authorized_keys = match &user.authorized_keys {
            None => Vec::new(),
            Some(RawKeys::Keys(keys)) => keys
                .iter()
                .enumerate()
                .map(|(n, line)| {
                    login::public_key(line).map_err(|why| {
                        problem(format!("{} #{}", key("authorized_keys"), n + 1), why)
                    })
                })
                .collect::<Result<_, _>>()?,
            Some(RawKeys::File(path)) => login::keys_file(std::path::Path::new(path))
                .map_err(|why| problem(key("authorized_keys"), why))?,
        };
        let groups = user.groups.clone().unwrap_or_default();
        for group in &groups {
            check_account_name(&key("groups"), group)?;
        }
        users.push(User {
            name: user.name,
            uid: user.uid,
            gid: user.gid,
            home,
            shell,
            password,
            authorized_keys,
            groups,
        });
    }
    Ok(users)
}

pub fn groups(raw: Vec<RawGroup>, users: &[User]) -> Result<Vec<Group>, Problem> {
    let all_gids: BTreeSet<u32> = raw.iter().map(|group| group.gid).collect();
    let mut names = BTreeSet::new();
    let mut gids = BTreeSet::new();
    let mut groups = Vec::new();
    for (index, group) in raw.into_iter().enumerate() {
        let key = |field: &str| format!("[[groups]] #{} {field}", index + 1);
        check_account_name(&key("name"), &group.name)?;
        if !names.insert(group.name.clone()) {
            return Err(problem(
                key("name"),
                format!("{:?} is declared twice", group.name),
            ));
        }
        if !gids.insert(group.gid) {
            return Err(problem(
                key("gid"),
                format!("gid {} is declared twice", group.gid),
            ));
        }
        let mut members = group.members.unwrap_or_default();
        for user in users {
            if user.groups.contains(&group.name) && !members.contains(&user.name) {
                members.push(user.name.clone());
            }
        }
        for member in &members {
            check_account_name(&key("members"), member)?;
            if !users.iter().any(|user| user.name == *member) {
                return Err(problem(
                    key("members"),
                    format!("{member:?} is not one of the board's [[users]]"),
                ));
            }
        }
        // A user whose gid no group has gets a group of its own name: that name must not
        // be taken by a group with another gid.
        if let Some(user) = users.iter().find(|user| {
            user.name == group.name && user.gid != group.gid && !all_gids.contains(&user.gid)
        }) {
            return Err(problem(
                key("name"),
                format!(
                    "{:?} is also the group user {:?} gets for gid {} (note: give the group gid {}, or another name)",
                    group.name, user.name, user.gid, user.gid
                ),
            ));
        }
        groups.push(Group {
            name: group.name,
            gid: group.gid,
            members,
        });
    }
    for (index, user) in users.iter().enumerate() {
        for name in &user.groups {
            if !groups.iter().any(|group| group.name == *name) {
                return Err(problem(
                    format!("[[users]] #{} groups", index + 1),
                    format!(
                        "{name:?} is not one of the board's [[groups]] (note: declare it there with a gid)"
                    ),
                ));
            }
        }
    }
    Ok(groups)
}

/// `[init]` through the maker's own rules, and the log user among the board's users.
/// The `[init]` table, validated: the options, the log user's ids, the warnings.
pub struct Init {
    pub options: Options,
    /// `login = "autologin"`: the early getty logs root in without a password.
    pub autologin: bool,
    pub log_ids: (u32, u32),
    pub warnings: Vec<String>,
}

/// Where `login = "autologin"` puts the program the early getty runs instead of login.
pub const AUTOLOGIN: &str = "/etc/kiln/autologin";

pub fn init(raw: RawInit, users: &[User]) -> Result<Init, Problem> {
    let autologin = match raw.login.as_deref() {
        None | Some("prompt") => false,
        Some("autologin") => true,
        Some(other) => {
            return Err(problem(
                "[init] login",
                format!("unknown login {other:?}: expected prompt or autologin"),
            ));
        }
    };
    let mut given: Vec<(Opt, Vec<u8>)> = Vec::new();
    let mut push = |opt: Opt, value: Option<String>| {
        if let Some(value) = value {
            given.push((opt, value.into_bytes()));
        }
    };
    push(Opt::Basedir, raw.basedir);
    push(Opt::Tmpfsdir, raw.tmpfsdir);
    push(Opt::ExeclineBindir, raw.execline_bindir);
    push(Opt::LogUser, raw.log_user);
    push(Opt::EarlyGetty, raw.early_getty);
    push(Opt::Stage2, raw.stage2);
    push(Opt::Stage2Finish, raw.stage2_finish);
    push(Opt::Stage3, raw.stage3);
    push(Opt::Path, raw.path);
    push(Opt::Umask, raw.umask);
    push(
        Opt::TimestampStyle,
        raw.timestamp_style.map(|n| n.to_string()),
    );
    push(Opt::DevStyle, raw.dev_style.map(|n| n.to_string()));
    push(Opt::Supervisor, raw.supervisor);
    for env in raw.env.unwrap_or_default() {
        push(Opt::Env, Some(env));
    }
    let (mut options, warnings) = Options::validate(&given, raw.redirect_stage2 == Some(true))
        .map_err(|invalid| invalid.for_board())?;
    if autologin {
        // busybox getty: -n skips the login-name prompt, -l runs our program for login.
        let getty = options.early_getty.as_deref().unwrap_or_default();
        let Some(rest) = getty.strip_prefix(b"getty ") else {
            return Err(problem(
                "[init] login",
                "autologin needs an early_getty that runs busybox getty (e.g. \"getty -L 115200 ttyS0 vt100\")",
            ));
        };
        let mut command = format!("getty -n -l {AUTOLOGIN} ").into_bytes();
        command.extend_from_slice(rest);
        options.early_getty = Some(command);
    }
    let entries: Vec<crate::passwd::Entry> = users
        .iter()
        .enumerate()
        .map(|(index, user)| crate::passwd::Entry {
            name: user.name.clone().into_bytes(),
            id: user.uid,
            gid: Some(user.gid),
            line: index + 1,
        })
        .collect();
    let Some(ids) = options.log_user.resolve(&entries) else {
        let given = match &options.log_user {
            LogUser::Name(name) => String::from_utf8_lossy(name).into_owned(),
            LogUser::Uid(uid) => uid.to_string(),
            _ => String::new(),
        };
        return Err(problem(
            "[init] log_user",
            format!(
                "{given:?} is not one of the board's [[users]] (note: add it there, or give UID:GID; the build host's users are never used)"
            ),
        ));
    };
    Ok(Init {
        options,
        autologin,
        log_ids: ids,
        warnings,
    })
}
