//! The same init scheme on runit and daemontools (`-S runit`, `-S daemontools`): stage 1
//! mounts the tmpfs, copies the run image with the scan directory whose first service is
//! the catch-all logger (svlogd or multilog reading the fifo), forks stage 2 blocked on
//! that fifo, and then hands pid 1 to a small generated shell, `C/pid1`, that runs the
//! supervisor and turns the shutdown signals into the s6 sequence.
//!
//! Why pid 1 is not the supervisor itself (read from runit 2.1.2's runsvdir.c and
//! daemontools 0.76's svscan.c, the versions Debian ships): runsvdir catches only SIGTERM
//! (it exits 0) and SIGHUP (it sends SIGTERM to every runsv and exits 111), and pid 1
//! exiting is a kernel panic; it has no handler for SIGINT (ctrl-alt-del), SIGQUIT,
//! SIGUSR1 or SIGUSR2, and the kernel never delivers a signal without a handler to pid 1.
//! svscan installs no handler at all, so as pid 1 it hears nothing, and it never exits.
//! Neither can exec a stage 3. Pure, like the rest of `init`: a list of tree operations.

use std::fmt::Write as _;

use super::options::Supervisor;
use super::{ACTION_FILE, Config, Generated, ORIGIN, added, join, quote, shebang};
use crate::tree::{Meta, Tree};

/// The catch-all logger's service: it keeps s6-linux-init's name under every supervisor,
/// so rc.tini, the probe and `kiln check` find it in one place.
pub const LOGGER: &str = "s6-svscan-log";
/// The file in the tmpfsdir naming the supervisor for the rc scripts (absent with s6).
pub const SUPERVISOR_FILE: &str = "kiln-supervisor";
/// pid 1's shell under the basedir.
pub const PID1: &str = "pid1";

/// The programs the generated scripts run by name under `supervisor`, and the Debian
/// package of each: the image must have them in a PATH directory.
pub fn programs(supervisor: Supervisor) -> &'static [(&'static str, &'static str)] {
    const S6: [(&str, &str); 3] = [
        ("s6-setsid", "s6"),
        ("s6-envdir", "s6"),
        ("s6-applyuidgid", "s6"),
    ];
    match supervisor {
        Supervisor::S6 => &[],
        Supervisor::Runit => &[
            S6[0],
            S6[1],
            S6[2],
            ("runsvdir", "runit"),
            ("runsv", "runit"),
            ("sv", "runit"),
            ("svlogd", "runit"),
        ],
        Supervisor::Daemontools => &[
            S6[0],
            S6[1],
            S6[2],
            ("svscan", "daemontools"),
            ("supervise", "daemontools"),
            ("svc", "daemontools"),
            ("svok", "daemontools"),
            ("svstat", "daemontools"),
            ("multilog", "daemontools"),
        ],
    }
}

/// The tree and stage 1 for runit or daemontools.
pub fn generate(config: &Config) -> Generated {
    let supervisor = config.options.supervisor;
    let mut tree = Tree::new();
    let dir = Meta::root(0o755);
    let script = Meta::root(0o755);
    added(tree.dir("env", dir, ORIGIN));
    for (name, value) in &config.options.env {
        let bytes = match value {
            Some(value) => [value.as_slice(), b"\n"].concat(),
            None => Vec::new(),
        };
        added(tree.file(&format!("env/{name}"), bytes, Meta::root(0o644), ORIGIN));
    }
    added(tree.file(PID1, pid1(config), script, ORIGIN));
    added(tree.dir("run-image", dir, ORIGIN));
    added(tree.file(
        &format!("run-image/{SUPERVISOR_FILE}"),
        format!("{}\n", supervisor.name()),
        Meta::root(0o644),
        ORIGIN,
    ));
    added(tree.dir(
        "run-image/uncaught-logs",
        Meta::new(0o2700, config.log_uid, config.log_gid),
        ORIGIN,
    ));
    added(tree.dir("run-image/service", dir, ORIGIN));
    let logger = format!("run-image/service/{LOGGER}");
    added(tree.dir(&logger, dir, ORIGIN));
    added(tree.fifo(&format!("{logger}/fifo"), Meta::root(0o600), ORIGIN));
    added(tree.file(&format!("{logger}/run"), logger_run(config), script, ORIGIN));
    if let Some(getty) = &config.options.early_getty {
        let service = "run-image/service/s6-linux-init-early-getty";
        added(tree.dir(service, dir, ORIGIN));
        let mut text = shebang(config).into_bytes();
        text.extend_from_slice(
            b"\n# The early getty (-g). stdin is /dev/null and stdout/stderr the catch-all fifo;\n\
              # a getty opens its own tty. There is no timeout-kill here: rc.tini and pid 1's\n\
              # shutdown send SIGKILL to a login shell that ignores SIGTERM.\n\n",
        );
        text.extend_from_slice(getty);
        text.push(b'\n');
        added(tree.file(&format!("{service}/run"), text, script, ORIGIN));
    }
    Generated {
        tree,
        stage1: stage1(config),
    }
}

/// Stage 1: the s6 stage 1's steps (see `../shared/docs/s6-linux-init.md` §3.2), ending in
/// pid 1's shell instead of s6-svscan. s6-setsid, s6-envdir (verbatim values, which
/// daemontools' envdir and runit's chpst -e cannot give) stay from s6; nothing of s6's
/// supervision runs.
fn stage1(config: &Config) -> Vec<u8> {
    let b = &config.options.execline_bindir;
    let supervisor = config.options.supervisor;
    let mut text = shebang(config);
    let _ = write!(
        text,
        "\n\
         # Stage 1, generated by kiln's s6-linux-init-maker for {name} (-S {name}). It runs as\n\
         # pid 1 and puts the supervision tree in place before anything else: a tmpfs with the\n\
         # scan directory, the catch-all logger's fifo, then stage 2 forked to wait until the\n\
         # logger reads, then pid 1's shell ({pid1}), which starts {scanner} and handles the\n\
         # shutdown signals {scanner} cannot take as pid 1. A failed fatal step makes pid 1\n\
         # exit: a kernel panic.\n\n",
        name = supervisor.name(),
        scanner = supervisor.scanner(),
        pid1 = PID1,
    );
    super::supervision_first(config, &mut text);
    text.push_str(
        "# fd 3 keeps the console for pid 1's shell; fd 2 joins stdout on the fifo, for the\n\
         # supervisor and every service without a logger of its own.\n",
    );
    let _ = writeln!(text, "{b}/fdmove -c 3 2");
    let _ = writeln!(text, "{b}/fdmove -c 2 1");
    let _ = writeln!(
        text,
        "{}",
        quote(&join(&config.options.basedir, &format!("/{PID1}")))
    );
    text.into_bytes()
}

/// The catch-all logger: reads the fifo, then drops privileges and runs svlogd or
/// multilog, which exit at end of file.
fn logger_run(config: &Config) -> Vec<u8> {
    let b = &config.options.execline_bindir;
    let supervisor = config.options.supervisor;
    let logs = quote(&join(&config.options.tmpfsdir, "/uncaught-logs"));
    let mut text = shebang(config);
    let _ = write!(
        text,
        "\n\
         # The catch-all logger. The fifo is opened non-blocking (so the open succeeds with or\n\
         # without a writer) and switched to blocking, before dropping to the log user: the\n\
         # fifo is 0600 root. {logger} exits at end of file, once every writer is gone;\n\
         # pid 1's shell arranges that at shutdown, so the log is complete.\n\n",
        logger = supervisor.logger(),
    );
    text.push_str("# The fifo first: its open is what releases stage 2.\n");
    let _ = writeln!(text, "{b}/redirfd -rnb 0 fifo");
    let _ = writeln!(text, "{b}/redirfd -a 2 /dev/console");
    let _ = writeln!(text, "{b}/redirfd -w 1 /dev/null");
    let _ = writeln!(
        text,
        "s6-applyuidgid -u {} -g {}",
        config.log_uid, config.log_gid
    );
    match supervisor {
        // svlogd: -t TAI64N, -ttt ISO 8601 (validation refuses both at once).
        Supervisor::Runit => {
            let stamp = match config.options.timestamp_style {
                0 => "",
                1 => " -t",
                _ => " -ttt",
            };
            let _ = writeln!(text, "svlogd{stamp} {logs}");
        }
        // multilog: t prefixes TAI64N; the directory must start with / (it is absolute).
        _ => {
            let stamp = match config.options.timestamp_style {
                0 => "",
                _ => " t",
            };
            let _ = writeln!(text, "multilog{stamp} {logs}");
        }
    }
    text.into_bytes()
}

/// One shell word holding exactly `bytes`, single-quoted.
fn sh_quote(bytes: &[u8]) -> Vec<u8> {
    let mut out = vec![b'\''];
    for &byte in bytes {
        if byte == b'\'' {
            out.extend_from_slice(b"'\\''");
        } else {
            out.push(byte);
        }
    }
    out.push(b'\'');
    out
}

/// pid 1's shell: starts the supervisor, restarts it if it dies, and on a shutdown signal
/// records the action, runs stage2_finish while the supervisor lives, takes the tree down
/// with the catch-all logger last, and execs stage 3 as pid 1.
fn pid1(config: &Config) -> Vec<u8> {
    let supervisor = config.options.supervisor;
    let scanner = supervisor.scanner();
    let mut text: Vec<u8> = Vec::new();
    let mut line = |parts: &[&[u8]]| {
        for part in parts {
            text.extend_from_slice(part);
        }
        text.push(b'\n');
    };
    line(&[b"#!/bin/sh"]);
    let why = match supervisor {
        Supervisor::Runit => {
            "# runsvdir cannot be pid 1: it exits on SIGTERM (busybox reboot, kill 1) and, after\n\
             # sending SIGTERM to every runsv, on SIGHUP, and pid 1 exiting is a kernel panic; it\n\
             # has no handler for SIGINT (ctrl-alt-del), SIGQUIT, SIGUSR1 or SIGUSR2, which the\n\
             # kernel therefore never delivers to pid 1; and it cannot exec a stage 3."
        }
        _ => {
            "# svscan cannot be pid 1: daemontools 0.76's svscan installs no signal handler at\n\
             # all, so as pid 1 it hears neither ctrl-alt-del (SIGINT) nor any shutdown request\n\
             # (the kernel never delivers a signal without a handler to pid 1), it never exits,\n\
             # and it cannot exec a stage 3."
        }
    };
    let header = format!(
        "# pid 1 under {name}, generated by kiln's s6-linux-init-maker (-S {name}).\n\
         {why}\n\
         # So this shell is pid 1. It starts {scanner} on the scan directory (the catch-all\n\
         # logger is its first service), starts it again if it dies, and turns SIGINT, SIGTERM,\n\
         # SIGHUP and SIGQUIT (reboot), SIGUSR1 (poweroff) and SIGUSR2 (halt) into the s6\n\
         # sequence: record the action, run stage2_finish while {scanner} lives, bring the\n\
         # supervision tree down with the catch-all logger last (it reads the fifo to end of\n\
         # file, so its log is complete), then exec stage 3 as pid 1 with the action.\n\
         # On entry: stdin /dev/null, stdout and stderr the catch-all fifo, fd 3 the console.\n\
         # Traps are set before {scanner} starts, so no request is lost.\n",
        name = supervisor.name(),
    );
    line(&[header.as_bytes()]);
    let t = config.options.tmpfsdir.as_bytes();
    line(&[b"bindir=", config.options.execline_bindir.as_bytes()]);
    line(&[b"T=", &sh_quote(t)]);
    line(&[b"stage2_finish=", &sh_quote(&config.options.stage2_finish)]);
    line(&[b"stage3=", &sh_quote(&config.options.stage3)]);
    line(&[format!("action_file=$T/{ACTION_FILE}").as_bytes()]);
    line(&[format!("logger=$T/service/{LOGGER}").as_bytes()]);
    let body = match supervisor {
        Supervisor::Runit => RUNIT,
        _ => DAEMONTOOLS,
    };
    line(&[COMMON.as_bytes()]);
    line(&[body.as_bytes()]);
    line(&[TAIL.as_bytes()]);
    text
}

const COMMON: &str = r#"
# True once process $1 is gone or a zombie (comm holds no space for the programs here).
gone() {
    state=
    read -r _ _ state _ 2> /dev/null < "/proc/$1/stat"
    [ -z "$state" ] || [ "$state" = Z ]
}
# Waits up to 5 s for process $1 to end; each wait reaps whatever child has ended.
# (Asynchronous lists ignore SIGINT and SIGQUIT, which a sleep does not mind.)
reap() {
    tries=0
    until gone "$1"; do
        tries=$((tries + 1))
        [ "$tries" -le 100 ] || return 1
        sleep 0.05 > /dev/null 2>&1 3>&- &
        wait $!
    done
}
"#;

const RUNIT: &str = r#"
# execline's background forks runsvdir and exits, so runsvdir is pid 1's child without
# being an asynchronous list of this shell, which would start it (and every service)
# with SIGINT and SIGQUIT ignored. It prints the pid; runsvdir's stdout is the fifo.
start_supervisor() {
    supervisor=$("$bindir"/background " $bindir/fdmove" " -c" " 1" " 2" " runsvdir" " -P" " $T/service" "" "$bindir"/importas -ui pid ! echo '$pid' 3>&-)
}

# runsvdir first, so it starts no runsv again: SIGTERM makes it exit, leaving every
# runsv. Then each service but the logger: down, and its runsv exits (SIGKILL after 5 s).
stop_services() {
    kill -TERM "$supervisor" 2> /dev/null
    reap "$supervisor"
    set --
    for dir in "$T"/service/*; do
        [ "$dir" = "$logger" ] || set -- "$@" "$dir"
    done
    [ $# -eq 0 ] || sv -w 5 force-shutdown "$@" > /dev/null
}

# runsv writes the logger's pid into supervise/pid.
logger_pid() {
    cat "$logger"/supervise/pid 2> /dev/null
}"#;

const DAEMONTOOLS: &str = r#"
# execline's background forks svscan and exits, so svscan is pid 1's child without
# being an asynchronous list of this shell, which would start it (and every service)
# with SIGINT and SIGQUIT ignored. It prints the pid; svscan's stdout is the fifo.
start_supervisor() {
    supervisor=$("$bindir"/background " $bindir/fdmove" " -c" " 1" " 2" " svscan" " $T/service" "" "$bindir"/importas -ui pid ! echo '$pid' 3>&-)
}

# Debian's busybox-static runs its own applets before PATH, and it has svc and svok (for
# runit's status format): daemontools' are called by path.
svc() { /usr/bin/svc "$@"; }
svok() { /usr/bin/svok "$@"; }

# svscan first, so it starts no supervise again (it has no handler: SIGTERM ends it).
# Then each service but the logger: down and supervise exits; SIGKILL after 5 s.
stop_services() {
    kill -TERM "$supervisor" 2> /dev/null
    reap "$supervisor"
    set --
    for dir in "$T"/service/*; do
        [ "$dir" = "$logger" ] || set -- "$@" "$dir"
        # svscan runs a supervise for DIR/log too, fed by a pipe from DIR's service.
        [ "$dir" = "$logger" ] || [ ! -d "$dir/log" ] || set -- "$@" "$dir/log"
    done
    [ $# -gt 0 ] || return 0
    svc -dx "$@"
    tries=0
    for dir; do
        while svok "$dir"; do
            tries=$((tries + 1))
            if [ "$tries" -gt 100 ]; then
                svc -k "$dir"
                break
            fi
            sleep 0.05 > /dev/null 2>&1 3>&- &
            wait $!
        done
    done
}

# svstat prints "DIR: up (pid N) S seconds".
logger_pid() {
    svstat "$logger" | sed -n 's/.*: up (pid \([0-9]*\)).*/\1/p'
}"#;

const TAIL: &str = r#"
shutdown() {
    # The first request records the action and does the rest. The shell runs a trap
    # that comes meanwhile between two commands of this one: it returns here at once,
    # so a repeated request neither runs stage2_finish again nor changes the action.
    [ -z "$shutting_down" ] || return 0
    shutting_down=$1
    [ -e "$action_file" ] || echo "$1" > "$action_file"
    "$stage2_finish" < /dev/null 3>&-
    stop_services
    # The catch-all logger sees end of file once nothing holds the fifo open for writing:
    # this shell (stdout and stderr go back to the console) and the logger's supervisor,
    # which would wait for the logger, so it gets SIGKILL and the logger reads to the end.
    exec > /dev/console 2>&1 3>&-
    log=$(logger_pid)
    if [ -n "$log" ]; then
        parent=
        read -r _ _ _ parent _ 2> /dev/null < "/proc/$log/stat"
        [ "${parent:-1}" -gt 1 ] && kill -KILL "$parent"
        reap "$log" || echo "pid 1: the catch-all logger did not end within 5 s"
    fi
    cd /
    action=
    read -r action < "$action_file"
    case $action in
        poweroff | halt) ;;
        *) action=reboot ;;
    esac
    exec "$stage3" "$action"
}

shutting_down=
trap 'shutdown reboot' INT TERM HUP QUIT
trap 'shutdown poweroff' USR1
trap 'shutdown halt' USR2
# The scan directory is pid 1's cwd, as with s6-svscan (a builtin: no exec).
cd "$T/service" || exit
start_supervisor
# A trapped signal interrupts wait at once. If the supervisor died, start it again. The
# sleeps hold neither the fifo (the logger would wait for them at shutdown) nor the console.
while :; do
    sleep 5 > /dev/null 2>&1 3>&- &
    wait $!
    if gone "$supervisor"; then
        echo "pid 1: the supervisor ended; starting it again" >&3
        start_supervisor
    fi
done"#;
