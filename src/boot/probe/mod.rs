//! kiln's in-guest probe, for `kiln boot --check`: the same service and stage 2 wrapper
//! the probe test boards use, fitted to the board (its tmpfsdir, stage 2 and `-e`
//! variables), and what it must report for the board's init.

use std::fmt::Write as _;

use anyhow::Result;

use crate::config::Board;
use crate::config::services::is_identifier;
use crate::init::Config;
use crate::init::options::Supervisor;
use crate::init::supervisor::PID1;
use crate::rootfs::Additions;
use crate::tree::ArchivePath;

const SERVICE: &str = include_str!("services/probe/run");
const STAGE2: &str = include_str!("overlay/etc/probe-stage2");
/// Where the wrapper goes in the image; the maker's `-2` points here in check mode.
pub const STAGE2_PATH: &str = "/etc/kiln-probe-stage2";
pub const SERVICE_PATH: &str = "etc/s6/services/kiln-probe/run";

/// The probe service's run script for this init.
pub fn service(config: &Config) -> String {
    SERVICE
        .replacen(
            "\nT=/run\n",
            &format!(
                "\nT={}\n",
                crate::host::tool::sh_word(&config.options.tmpfsdir)
            ),
            1,
        )
        .replacen(
            "\nB=/etc/s6-linux-init/current\n",
            &format!(
                "\nB={}\n",
                crate::host::tool::sh_word(&config.options.basedir)
            ),
            1,
        )
}

/// The stage 2 wrapper: records what stage 2 found, then execs the board's stage 2.
pub fn stage2(config: &Config, original: &[u8]) -> String {
    let mut env_lines = String::new();
    for (name, _) in &config.options.env {
        if is_identifier(name) {
            let _ = writeln!(
                env_lines,
                "    if [ \"${{{name}+x}}\" = x ]; then echo \"PROBE env {name}=[${name}]\"; else echo \"PROBE env {name} unset\"; fi"
            );
        }
    }
    let original = crate::host::tool::sh_word(&String::from_utf8_lossy(original));
    STAGE2
        .replacen(
            "\nT=/run\n",
            &format!(
                "\nT={}\n",
                crate::host::tool::sh_word(&config.options.tmpfsdir)
            ),
            1,
        )
        .replace("    echo \"PROBE stage2-env=[$KILN_E]\"\n", &env_lines)
        .replace("/etc/rc.init", &original)
}

/// What the probe must also report on a card or disk boot: `/` is the ext4 root
/// partition with this label, and its own nodes (under the devtmpfs) are as built.
pub fn expected_root(config: &Config, label: &str) -> Vec<(String, String)> {
    let owner = format!("{}:{}", config.log_uid, config.log_gid);
    vec![
        ("root-fs".to_string(), "ext4".to_string()),
        ("root-label".to_string(), label.to_string()),
        ("root-console".to_string(), "c 0:0 5,1".to_string()),
        ("root-null".to_string(), "crw-rw-rw- 0:0 1,3".to_string()),
        ("root-fifo".to_string(), "prw------- 0:0".to_string()),
        ("root-logs".to_string(), format!("drwx--S--- {owner}")),
    ]
}

/// What the probe must report for this init on a board whose console is `console`:
/// (line prefix, expected rest).
pub fn expected(config: &Config, console: &str) -> Vec<(String, String)> {
    let t = &config.options.tmpfsdir;
    let supervisor = config.options.supervisor;
    // Under runit and daemontools pid 1 is the maker's shell, the scanner its child.
    let pid1 = match supervisor {
        Supervisor::S6 => vec![
            ("pid1".to_string(), "s6-svscan".to_string()),
            (
                "pid1-cmdline".to_string(),
                format!("s6-svscan -X3 -t0 {t}/service "),
            ),
        ],
        _ => vec![
            ("pid1".to_string(), PID1.to_string()),
            (
                "pid1-cmdline".to_string(),
                format!("/bin/sh {}/{PID1} ", config.options.basedir),
            ),
            (
                "supervisor".to_string(),
                format!("{} ppid=1", supervisor.scanner()),
            ),
        ],
    };
    let mut expected = pid1;
    expected.extend([
        ("pid1-cwd".to_string(), format!("{t}/service")),
        ("run-fs".to_string(), "tmpfs".to_string()),
        ("fifo".to_string(), "prw------- 0:0".to_string()),
        (
            "logger".to_string(),
            format!(
                "{}:{} groups=0 stdin={t}/service/s6-svscan-log/fifo",
                config.log_uid, config.log_gid
            ),
        ),
        (
            "stage2-umask".to_string(),
            format!("{:04o}", config.options.umask),
        ),
        ("stage2-proc".to_string(), "absent".to_string()),
        ("restarted".to_string(), "yes".to_string()),
        (
            "stage2-in-log".to_string(),
            if config.options.redirect_stage2 {
                "1"
            } else {
                "0"
            }
            .to_string(),
        ),
        (
            "log-stamp".to_string(),
            match config.options.timestamp_style {
                0 => "none",
                1 => "tai64n",
                2 => "iso",
                _ => "tai64n+iso",
            }
            .to_string(),
        ),
    ]);
    if !config.options.env.iter().any(|(name, _)| name == "PATH") {
        expected.push((
            "stage2-path".to_string(),
            String::from_utf8_lossy(&config.options.path).into_owned(),
        ));
    }
    for (name, value) in &config.options.env {
        if !is_identifier(name) || value.as_ref().is_some_and(|value| value.contains(&b'\n')) {
            continue;
        }
        match value {
            Some(value) => expected.push((
                format!("env {name}"),
                format!("[{}]", String::from_utf8_lossy(value)),
            )),
            None => expected.push((format!("env {name} unset"), String::new())),
        }
    }
    if let Some(getty) = &config.options.early_getty {
        expected.push(("getty".to_string(), "true".to_string()));
        // A getty on the board's console has it open once it runs.
        if String::from_utf8_lossy(getty)
            .split_whitespace()
            .any(|word| word == console)
        {
            expected.push(("getty-tty".to_string(), format!("/dev/{console}")));
        }
    }
    expected
}

/// One in-guest check: what the probe had to report, and what it did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub key: String,
    pub want: String,
    pub got: String,
    pub ok: bool,
}

/// Compares the console's PROBE lines with `expected`; one row per check.
pub fn compare(expected: &[(String, String)], console: &[String]) -> Vec<Row> {
    expected
        .iter()
        .map(|(key, want)| {
            let got = console
                .iter()
                .filter_map(|line| line.find("PROBE ").map(|at| &line[at + 6..]))
                .find_map(|rest| {
                    if want.is_empty() {
                        (rest == key).then(String::new)
                    } else {
                        rest.strip_prefix(key.as_str())
                            .and_then(|rest| rest.strip_prefix('='))
                            .map(str::to_string)
                    }
                });
            let ok = got.as_deref() == Some(want.as_str());
            Row {
                key: key.clone(),
                want: want.clone(),
                got: got.unwrap_or_else(|| "(not reported)".to_string()),
                ok,
            }
        })
        .collect()
}

/// What `kiln boot --check` adds to the board's image: the stage 2 wrapper in place of
/// the board's stage 2 (which it runs), and the probe service.
pub fn additions(board: &Board) -> Result<Additions> {
    let mut options = board.init.clone();
    options.stage2 = STAGE2_PATH.as_bytes().to_vec();
    let config = Config {
        options,
        log_uid: board.log_ids.0,
        log_gid: board.log_ids.1,
    };
    Ok(Additions {
        stage2: Some(config.options.stage2.clone()),
        files: vec![
            (
                ArchivePath::new(STAGE2_PATH)?,
                stage2(&config, &board.init.stage2),
            ),
            (ArchivePath::new(SERVICE_PATH)?, service(&config)),
        ],
        cmdline: Vec::new(),
    })
}

#[cfg(test)]
mod tests;
