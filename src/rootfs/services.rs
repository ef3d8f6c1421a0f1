//! Declared services into the image: a service directory per longrun in
//! `/etc/s6/services` (run script, `notification-fd`, its own logger), a script per
//! oneshot in `/etc/s6/oneshot`, and `/etc/s6/waves`, the order stage 2 starts them in
//! (one wave a line). Pure: a list of tree operations; the example rc.init reads the waves.

use std::fmt::Write as _;

use anyhow::Result;

use crate::config::Board;
use crate::config::services::{Run, RunAs, Service};
use crate::host::tool::sh_word;
use crate::init::quote;
use crate::source::overlay;
use crate::tree::{ArchivePath, Meta, Tree};

pub const SERVICES: &str = "etc/s6/services";
pub const ONESHOTS: &str = "etc/s6/oneshot";
pub const WAVES: &str = "etc/s6/waves";

/// Adds the board's services, their loggers' directories and the waves file.
pub fn add(image: &mut Tree, board: &Board) -> Result<()> {
    if board.services.is_empty() {
        return Ok(());
    }
    let origin = format!("{} [services]", board.file.display());
    let log_ids = board.log_ids;
    for service in &board.services {
        let name = &service.name;
        if service.oneshot {
            let path = ArchivePath::new(&format!("{ONESHOTS}/{name}"))?;
            let text = script(board, service);
            image.replace(path, file(text, 0o755, &origin))?;
            continue;
        }
        let dir = ArchivePath::new(&format!("{SERVICES}/{name}"))?;
        let mut own_log = false;
        match &service.what {
            Run::Dir(source) => {
                overlay::load_dir(image, source, Some(&dir), (0, 0))?;
                own_log = source.join("log").is_dir();
            }
            Run::Shell(_) | Run::Execline(_) => {
                image.replace(dir.clone(), dir_node(0o755, (0, 0), &origin))?;
                image.replace(
                    dir.join("run")?,
                    file(script(board, service), 0o755, &origin),
                )?;
            }
        }
        if let Some(fd) = service.notification_fd {
            image.replace(
                dir.join("notification-fd")?,
                file(format!("{fd}\n"), 0o644, &origin),
            )?;
        }
        if let (Some(log), false) = (service.log, own_log) {
            let log_dir = format!("/var/log/{name}");
            let text = format!(
                "#!/bin/sh\n\
                 # The logger of service {name} (kiln, from {table}): s6-log as the log\n\
                 # user, ISO 8601 timestamps, {files} old files of at most {size} bytes in {log_dir}.\n\
                 exec s6-applyuidgid -u {uid} -g {gid} s6-log -b n{files} s{size} T {log_dir}\n",
                files = log.files,
                size = log.size,
                uid = log_ids.0,
                gid = log_ids.1,
                table = service.table,
            );
            image.replace(dir.join("log")?, dir_node(0o755, (0, 0), &origin))?;
            image.replace(dir.join("log/run")?, file(text, 0o755, &origin))?;
            image.replace(
                ArchivePath::new(&log_dir)?,
                dir_node(0o2750, log_ids, &origin),
            )?;
        }
    }
    image.replace(
        ArchivePath::new(WAVES)?,
        file(waves_text(&board.waves), 0o644, &origin),
    )?;
    Ok(())
}

/// `/etc/s6/waves`: one wave a line, service names separated by spaces.
pub fn waves_text(waves: &[Vec<String>]) -> String {
    let mut text = String::new();
    for wave in waves {
        let _ = writeln!(text, "{}", wave.join(" "));
    }
    text
}

fn file(text: String, mode: u32, origin: &str) -> crate::tree::Node {
    crate::tree::Node::new(
        crate::tree::Kind::File(crate::tree::content::Content::inline(text)),
        Meta::root(mode),
        origin,
    )
}

fn dir_node(mode: u32, (uid, gid): (u32, u32), origin: &str) -> crate::tree::Node {
    crate::tree::Node::new(crate::tree::Kind::Dir, Meta::new(mode, uid, gid), origin)
}

/// s6-applyuidgid's arguments for running as `user`: numeric ids from the board, so
/// nothing is looked up at run time.
fn uidgid(user: &RunAs) -> Vec<String> {
    let mut words = vec![
        "s6-applyuidgid".to_string(),
        "-u".to_string(),
        user.uid.to_string(),
        "-g".to_string(),
        user.gid.to_string(),
    ];
    if !user.groups.is_empty() {
        words.push("-G".to_string());
        words.push(
            user.groups
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(","),
        );
    }
    words
}

/// The run script of a `run` service (or the script of a oneshot): shell or execline,
/// stderr joined to stdout (for longruns, so the logger has both), cwd, environment, the
/// user, then the command.
pub fn script(board: &Board, service: &Service) -> String {
    let name = &service.name;
    let mut env: Vec<(String, String)> = Vec::new();
    if let Some(user) = &service.user {
        env.push(("HOME".to_string(), user.home.clone()));
        env.push(("USER".to_string(), user.name.clone()));
        env.push(("LOGNAME".to_string(), user.name.clone()));
    }
    env.extend(service.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    let kind = if service.oneshot {
        "oneshot"
    } else {
        "service"
    };
    match &service.what {
        Run::Execline(body) => {
            let mut text = format!(
                "#!{}/execlineb -P\n# The {kind} {name} (kiln, from {}).\n",
                board.init.execline_bindir, service.table
            );
            if !service.oneshot {
                text.push_str("fdmove -c 2 1\n");
            }
            if let Some(cwd) = &service.cwd {
                let _ = writeln!(text, "cd {}", quote(cwd.as_bytes()));
            }
            for (key, value) in &env {
                let _ = writeln!(text, "export {key} {}", quote(value.as_bytes()));
            }
            if let Some(user) = &service.user {
                let _ = writeln!(text, "{}", uidgid(user).join(" "));
            }
            text.push_str(body);
            if !body.ends_with('\n') {
                text.push('\n');
            }
            text
        }
        Run::Shell(command) => {
            let mut text = format!(
                "#!/bin/sh\n# The {kind} {name} (kiln, from {}).\n",
                service.table
            );
            if !service.oneshot {
                text.push_str("exec 2>&1\n");
            }
            if let Some(cwd) = &service.cwd {
                let _ = writeln!(text, "cd {} || exit 111", sh_word(cwd));
            }
            for (key, value) in &env {
                let _ = writeln!(text, "export {key}={}", sh_word(value));
            }
            let mut words: Vec<String> = vec!["exec".to_string()];
            if let Some(user) = &service.user {
                words.extend(uidgid(user));
            }
            words.extend(["/bin/sh".to_string(), "-c".to_string(), sh_word(command)]);
            let _ = writeln!(text, "{}", words.join(" "));
            text
        }
        Run::Dir(_) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::services::Log;
    use std::collections::BTreeMap;

    fn board() -> Board {
        let dir = std::env::temp_dir().join(format!("kiln-services-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("b.toml");
        std::fs::write(
            &path,
            "arch = \"x86_64\"\n[qemu]\nmachine = \"q35\"\nconsole = \"ttyS0\"\n\
             [init]\nexecline_bindir = \"/usr/lib/execline/bin\"\nlog_user = \"log\"\n\
             [[users]]\nname = \"root\"\nuid = 0\ngid = 0\n\
             [[users]]\nname = \"log\"\nuid = 70\ngid = 70\n\
             [[users]]\nname = \"www\"\nuid = 80\ngid = 80\nhome = \"/srv\"\n\
             [[groups]]\nname = \"net\"\ngid = 90\nmembers = [\"www\"]\n\
             [services.web]\nrun = \"httpd -f -p 80 -h '/srv/www'\"\nuser = \"www\"\ncwd = \"/srv\"\n\
             env = { GREETING = \"it's $HOME\" }\nafter = [\"setup\"]\nnotification_fd = 3\n\
             [services.setup]\nrun = \"sysctl -w net.ipv4.ip_forward=1\"\noneshot = true\n\
             [services.tick]\nrun = \"foreground { echo tick } sleep 1\"\nexecline = true\nlog = false\n",
        )
        .unwrap();
        let board = Board::load(&path).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        board
    }

    #[test]
    fn scripts_quote_what_they_splice() {
        let board = board();
        let web = board.services.iter().find(|s| s.name == "web").unwrap();
        expect_test::expect![[r#"
            #!/bin/sh
            # The service web (kiln, from [services.web]).
            exec 2>&1
            cd /srv || exit 111
            export HOME=/srv
            export USER=www
            export LOGNAME=www
            export GREETING='it'\''s $HOME'
            exec s6-applyuidgid -u 80 -g 80 -G 90 /bin/sh -c 'httpd -f -p 80 -h '\''/srv/www'\'''
        "#]]
        .assert_eq(&script(&board, web));
        let tick = board.services.iter().find(|s| s.name == "tick").unwrap();
        expect_test::expect![[r#"
            #!/usr/lib/execline/bin/execlineb -P
            # The service tick (kiln, from [services.tick]).
            fdmove -c 2 1
            foreground { echo tick } sleep 1
        "#]]
        .assert_eq(&script(&board, tick));
        assert_eq!(board.waves, vec![vec!["setup", "tick"], vec!["web"]]);
        assert_eq!(
            web.log,
            Some(Log {
                files: 10,
                size: 1_000_000
            })
        );
        let _ = BTreeMap::<u8, u8>::new();
    }

    #[test]
    fn the_tree_holds_services_loggers_oneshots_and_waves() {
        let board = board();
        let mut tree = Tree::new();
        add(&mut tree, &board).unwrap();
        expect_test::expect![[r#"
            dir /etc 0755 0 0
            dir /etc/s6 0755 0 0
            dir /etc/s6/oneshot 0755 0 0
            file /etc/s6/oneshot/setup 0755 0 0 111 730b066a
            dir /etc/s6/services 0755 0 0
            dir /etc/s6/services/tick 0755 0 0
            file /etc/s6/services/tick/run 0755 0 0 133 07282ebc
            dir /etc/s6/services/web 0755 0 0
            dir /etc/s6/services/web/log 0755 0 0
            file /etc/s6/services/web/log/run 0755 0 0 239 f0f0aec0
            file /etc/s6/services/web/notification-fd 0644 0 0 2 55679ed1
            file /etc/s6/services/web/run 0755 0 0 257 a74b765b
            file /etc/s6/waves 0644 0 0 15 408b0a7f
            dir /var 0755 0 0
            dir /var/log 0755 0 0
            dir /var/log/web 2750 70 70
        "#]]
        .assert_eq(&crate::listing::manifest(&tree).unwrap());
    }
}
