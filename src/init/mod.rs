//! The s6-linux-init maker: from validated options, the init tree and the stage 1 script.
//!
//! This is a flat, declarative list of tree operations, in the shape of
//! s6-linux-init-maker's `make_image`/`make_scripts`: `generate` validates nothing (that is
//! `cli`'s job, before anything is created) and does no I/O; it returns a `Tree` whose paths
//! are relative to the basedir, plus stage 1's text. The scripts are kiln's own, written for
//! s6 2.11 and execline 2.9 (the 2015 ones deadlock or hit usage errors there): see
//! `../shared/docs/s6-linux-init.md` and the comments in each script.

pub mod cli;
pub mod image;
pub mod options;
pub mod supervisor;

use std::fmt::Write as _;

use crate::tree::{Meta, Tree};
use options::Options;

/// The maker's options with the log user resolved: what `generate` takes.
#[derive(Clone, Debug)]
pub struct Config {
    pub options: Options,
    /// `-u`, resolved: the catch-all logger's uid and gid.
    pub log_uid: u32,
    pub log_gid: u32,
}

/// The file, directly under the tmpfsdir, that records the shutdown action.
pub const ACTION_FILE: &str = "s6-linux-init-shutdown";
/// Kill timeout for the early getty, in ms: an interactive shell ignores SIGTERM.
pub const GETTY_TIMEOUT_KILL_MS: u32 = 3000;
/// Signals with a handler, and the action each records (s6's USR1 = poweroff convention).
pub const SIGNALS: [(&str, &str); 6] = [
    ("SIGHUP", "reboot"),
    ("SIGINT", "reboot"),
    ("SIGQUIT", "reboot"),
    ("SIGTERM", "reboot"),
    ("SIGUSR1", "poweroff"),
    ("SIGUSR2", "halt"),
];

/// The generated init: a tree relative to the basedir, and stage 1.
pub struct Generated {
    pub tree: Tree,
    pub stage1: Vec<u8>,
}

pub(super) const ORIGIN: &str = "s6-linux-init-maker";

pub fn generate(config: &Config) -> Generated {
    if config.options.supervisor != options::Supervisor::S6 {
        return supervisor::generate(config);
    }
    let mut tree = Tree::new();
    let dir = Meta::root(0o755);
    let script = Meta::root(0o755);
    added(tree_dir(&mut tree, "env", dir));
    for (name, value) in &config.options.env {
        let bytes = match value {
            Some(value) => [value.as_slice(), b"\n"].concat(),
            None => Vec::new(),
        };
        added(tree.file(&format!("env/{name}"), bytes, Meta::root(0o644), ORIGIN));
    }

    added(tree_dir(&mut tree, "run-image", dir));
    added(tree_dir(
        &mut tree,
        "run-image/uncaught-logs",
        Meta::new(0o2700, config.log_uid, config.log_gid),
    ));
    added(tree_dir(&mut tree, "run-image/service", dir));
    added(tree_dir(&mut tree, "run-image/service/.s6-svscan", dir));
    let control = "run-image/service/.s6-svscan";
    added(tree.file(&format!("{control}/finish"), finish(config), script, ORIGIN));
    added(tree.file(&format!("{control}/crash"), crash(config), script, ORIGIN));
    for (signal, action) in SIGNALS {
        let text = signal_handler(config, signal, action);
        added(tree.file(&format!("{control}/{signal}"), text, script, ORIGIN));
    }

    let logger = "run-image/service/s6-svscan-log";
    added(tree_dir(&mut tree, logger, dir));
    added(tree.fifo(&format!("{logger}/fifo"), Meta::root(0o600), ORIGIN));
    added(tree.file(&format!("{logger}/run"), logger_run(config), script, ORIGIN));

    if let Some(getty) = &config.options.early_getty {
        let service = "run-image/service/s6-linux-init-early-getty";
        added(tree_dir(&mut tree, service, dir));
        added(tree.file(
            &format!("{service}/run"),
            getty_run(config, getty),
            script,
            ORIGIN,
        ));
        added(tree.file(
            &format!("{service}/timeout-kill"),
            format!("{GETTY_TIMEOUT_KILL_MS}\n"),
            Meta::root(0o644),
            ORIGIN,
        ));
    }

    Generated {
        tree,
        stage1: stage1(config),
    }
}

/// Unwraps one tree insertion, panicking on failure: paths here are literals or
/// validated names and each is added once, so a failure is a bug in this module, not
/// bad input.
pub(super) fn added(result: Result<(), crate::tree::TreeError>) {
    if let Err(err) = result {
        panic!("init tree construction: {err}");
    }
}

fn tree_dir(tree: &mut Tree, path: &str, meta: Meta) -> Result<(), crate::tree::TreeError> {
    tree.dir(path, meta, ORIGIN)
}

/// One execline double-quoted word holding exactly `bytes` (§1.6 of the maker spec):
/// `\` and `"` escaped, 0x07-0x0D as C escapes, other control bytes and bytes >= 0x7F as
/// `\0xHH`; the result is printable ASCII that execlineb decodes back byte for byte.
pub fn quote(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('"');
    for &byte in bytes {
        match byte {
            b'\\' => out.push_str("\\\\"),
            b'"' => out.push_str("\\\""),
            0x07 => out.push_str("\\a"),
            0x08 => out.push_str("\\b"),
            b'\t' => out.push_str("\\t"),
            b'\n' => out.push_str("\\n"),
            0x0b => out.push_str("\\v"),
            0x0c => out.push_str("\\f"),
            b'\r' => out.push_str("\\r"),
            0x20..=0x7e => out.push(byte as char),
            _ => {
                let _ = write!(out, "\\0x{byte:02x}");
            }
        }
    }
    out.push('"');
    out
}

pub(super) fn join(dir: &str, rest: &str) -> Vec<u8> {
    format!("{dir}{rest}").into_bytes()
}

pub(super) fn shebang(config: &Config) -> String {
    format!("#!{}/execlineb -P\n", config.options.execline_bindir)
}

/// Stage 1: supervision first, then stage 2 (see `../shared/docs/s6-linux-init.md` §3.2).
fn stage1(config: &Config) -> Vec<u8> {
    let b = &config.options.execline_bindir;
    let t = &config.options.tmpfsdir;
    let mut text = shebang(config);
    text.push_str(
        "\n\
         # Stage 1, generated by kiln's s6-linux-init-maker. It runs as pid 1 and puts the\n\
         # supervision tree in place before anything else: a tmpfs with the scan directory,\n\
         # the catch-all logger's fifo, then stage 2 forked to wait until the logger reads,\n\
         # then s6-svscan as pid 1. A failed fatal step makes pid 1 exit: a kernel panic.\n\
         # execline tools run by absolute path, so they work before and whatever PATH is.\n\n",
    );
    supervision_first(config, &mut text);
    text.push_str("# fd 3 keeps the console for s6-svscan -X3; fd 2 joins stdout on the fifo.\n");
    let _ = writeln!(text, "{b}/fdmove -c 3 2");
    let _ = writeln!(text, "{b}/fdmove -c 2 1");
    text.push_str(
        "# s6-svscan makes the scan directory its cwd itself: one exec fewer than execline's cd.\n",
    );
    let _ = writeln!(text, "s6-svscan -X3 -t0 {}", quote(&join(t, "/service")));
    text.into_bytes()
}

/// Stage 1's steps up to the fork of stage 2 and the removal of `!` (§3.2 steps 1-13),
/// the same under every supervisor: PATH, cwd, process group, umask, banner, tmpfs,
/// run image, devtmpfs with `-d 1`, env dir, stdin, the fifo, the stage 2 child.
pub(super) fn supervision_first(config: &Config, text: &mut String) {
    let b = &config.options.execline_bindir;
    let t = &config.options.tmpfsdir;
    let fifo = quote(&join(t, "/service/s6-svscan-log/fifo"));
    let _ = writeln!(text, "{b}/export PATH {}", quote(&config.options.path));
    let _ = writeln!(text, "{b}/cd /");
    text.push_str("s6-setsid -b -q\n");
    let _ = writeln!(text, "{b}/umask {:03o}", config.options.umask);
    let _ = writeln!(text, "{b}/foreground {{ echo \"s6-linux-init: stage 1\" }}");
    let _ = writeln!(
        text,
        "{b}/if {{ mount -t tmpfs -o mode=0755 tmpfs {} }}",
        quote(t.as_bytes())
    );
    let _ = writeln!(
        text,
        "{b}/if {{ cp -a {} {} }}",
        quote(&join(&config.options.basedir, "/run-image/.")),
        quote(t.as_bytes())
    );
    if config.options.dev_style == 1 {
        let _ = writeln!(
            text,
            "{b}/if {{ mount -t devtmpfs -o mode=0755 devtmpfs /dev }}"
        );
    }
    let _ = writeln!(
        text,
        "s6-envdir -f -L -I {}",
        quote(&join(&config.options.basedir, "/env"))
    );
    let _ = writeln!(text, "{b}/redirfd -r 0 /dev/null");
    text.push_str("# Open the fifo before forking: a later open would release the child early.\n");
    let _ = writeln!(text, "{b}/redirfd -wnb 1 {fifo}");
    let route = if config.options.redirect_stage2 {
        "fdmove -c 2 1"
    } else {
        "fdmove -c 1 2"
    };
    let _ = writeln!(
        text,
        "{b}/background\n{{\n  s6-setsid\n  {b}/redirfd -w 1 {fifo}\n  {b}/{route}\n  {}\n}}",
        quote(&config.options.stage2)
    );
    let _ = writeln!(text, "{b}/unexport !");
}

/// The catch-all logger: reads the fifo, then drops privileges and runs s6-log.
fn logger_run(config: &Config) -> Vec<u8> {
    let b = &config.options.execline_bindir;
    let mut text = shebang(config);
    text.push_str(
        "\n\
         # The catch-all logger. The fifo is opened non-blocking (so the open succeeds with or\n\
         # without a writer) and switched to blocking, before dropping to the log user: the\n\
         # fifo is 0600 root. s6-log -p ignores SIGTERM and exits at EOF, once every writer\n\
         # is gone; -b makes writers wait rather than losing lines.\n\n",
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
    let directives = match config.options.timestamp_style {
        0 => "",
        1 => " t",
        2 => " T",
        _ => " t T",
    };
    let _ = writeln!(
        text,
        "s6-log -b -p{directives} {}",
        quote(&join(&config.options.tmpfsdir, "/uncaught-logs"))
    );
    text.into_bytes()
}

/// A shutdown signal handler: record the action once, run stage2_finish while s6-svscan
/// lives, then ask s6-svscan to terminate (never `-q`: see §4.4 of the maker spec).
fn signal_handler(config: &Config, signal: &str, action: &str) -> Vec<u8> {
    let b = &config.options.execline_bindir;
    let mut text = shebang(config);
    let _ = write!(
        text,
        "\n\
         # {signal}: record \"{action}\" unless a shutdown is already under way (the file is\n\
         # created exclusively), run stage2_finish only the first time, then make s6-svscan\n\
         # bring the supervision tree down and exec .s6-svscan/finish.\n\n"
    );
    let _ = writeln!(
        text,
        "{b}/foreground\n{{\n  {b}/if {{ {b}/redirfd -x 1 {} echo {action} }}\n  {}\n}}",
        quote(&join(&config.options.tmpfsdir, &format!("/{ACTION_FILE}"))),
        quote(&config.options.stage2_finish)
    );
    let _ = writeln!(
        text,
        "s6-svscanctl -t {}",
        quote(&join(&config.options.tmpfsdir, "/service"))
    );
    text.into_bytes()
}

/// Run by s6-svscan as pid 1 after every supervisor exited: exec stage 3 with the action.
fn finish(config: &Config) -> Vec<u8> {
    let b = &config.options.execline_bindir;
    let action_file = quote(&join(&config.options.tmpfsdir, &format!("/{ACTION_FILE}")));
    let stage3 = quote(&config.options.stage3);
    let mut text = shebang(config);
    text.push_str(
        "\n\
         # s6-svscan execs this as pid 1 once the whole supervision tree has exited, so the\n\
         # catch-all log is complete. It must not exit: it execs stage 3 with the recorded\n\
         # action (reboot when none was recorded). No substitution is used, so no user\n\
         # path below can be rewritten by execline.\n\n",
    );
    let _ = writeln!(text, "{b}/cd /");
    let _ = writeln!(text, "{b}/redirfd -a 1 /dev/console");
    let _ = writeln!(text, "{b}/fdmove -c 2 1");
    let _ = writeln!(text, "{b}/wait -r {{ }}");
    for action in ["poweroff", "halt"] {
        let _ = writeln!(
            text,
            "{b}/ifelse {{ grep -qxF {action} {action_file} }} {{ {stage3} {action} }}"
        );
    }
    let _ = writeln!(text, "{stage3} reboot");
    text.into_bytes()
}

/// Last resort after a fatal s6-svscan error: a root shell on the console, then reboot.
fn crash(config: &Config) -> Vec<u8> {
    let b = &config.options.execline_bindir;
    let mut text = shebang(config);
    text.push_str(
        "\n\
         # s6-svscan hit a fatal error. This gives a ROOT SHELL ON THE CONSOLE for repairs\n\
         # and forces a reboot when it ends. Replace it if the console is not trusted.\n\n",
    );
    let _ = writeln!(text, "{b}/redirfd -r 0 /dev/console");
    let _ = writeln!(text, "{b}/redirfd -a 1 /dev/console");
    let _ = writeln!(text, "{b}/fdmove -c 2 1");
    let _ = writeln!(
        text,
        "{b}/foreground {{ echo \"s6-svscan crashed: root shell on the console, exit it to reboot\" }}"
    );
    let _ = writeln!(text, "{b}/foreground {{ sh -i }}");
    text.push_str("busybox reboot -f\n");
    text.into_bytes()
}

fn getty_run(config: &Config, getty: &[u8]) -> Vec<u8> {
    let mut text = shebang(config).into_bytes();
    text.extend_from_slice(
        b"\n# The early getty (-g). stdin is /dev/null and stdout/stderr the catch-all fifo;\n\
          # a getty opens its own tty. timeout-kill ends a login shell that ignores SIGTERM.\n\n",
    );
    text.extend_from_slice(getty);
    text.push(b'\n');
    text
}

#[cfg(test)]
/// Renders a generated init for golden files: stage 1, then every entry with its mode
/// and owner and, for files, the full text.
pub fn render(generated: &Generated) -> String {
    let mut out = String::from("=== stage1 (stdout)\n");
    out.push_str(&String::from_utf8_lossy(&generated.stage1));
    for (path, node) in generated.tree.iter() {
        let kind = crate::tree::mode_string(&node.kind, node.meta.mode);
        let _ = writeln!(
            out,
            "=== {} {:04o} {}:{} {}",
            kind,
            node.meta.mode,
            node.meta.uid,
            node.meta.gid,
            path.as_str()
        );
        if let crate::tree::Kind::File(content) = &node.kind {
            let bytes = content.read_all().unwrap_or_default();
            out.push_str(&String::from_utf8_lossy(&bytes));
            if !bytes.ends_with(b"\n") {
                out.push_str("\\ (no newline at end)\n");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_escapes_everything_that_is_not_plain() {
        assert_eq!(quote(b"/etc/rc.init"), "\"/etc/rc.init\"");
        assert_eq!(quote(b"a b\"c\\d$e{f}#g"), "\"a b\\\"c\\\\d$e{f}#g\"");
        assert_eq!(
            quote(b"\x07\x08\t\n\x0b\x0c\r"),
            "\"\\a\\b\\t\\n\\v\\f\\r\""
        );
        assert_eq!(quote(b"\x00\x1f\x7f\xff"), "\"\\0x00\\0x1f\\0x7f\\0xff\"");
        assert_eq!(quote("é".as_bytes()), "\"\\0xc3\\0xa9\"");
    }
}

/// Data-driven goldens: `tests/data/init/<case>.args` (one argument per line, with `\n`,
/// `\t`, `\\` and `\xHH` escapes, dir operand appended) renders to `<case>.golden`.
/// `scripts/bless` re-records them.
#[cfg(test)]
mod golden {
    use std::ffi::OsString;
    use std::os::unix::ffi::OsStringExt;
    use std::path::Path;

    fn decode(line: &str) -> Vec<u8> {
        let bytes = line.as_bytes();
        let mut out = Vec::new();
        let mut index = 0;
        while index < bytes.len() {
            if bytes[index] == b'\\' && index + 1 < bytes.len() {
                index += 1;
                match bytes[index] {
                    b'n' => out.push(b'\n'),
                    b't' => out.push(b'\t'),
                    b'\\' => out.push(b'\\'),
                    b'x' => {
                        let hex = std::str::from_utf8(&bytes[index + 1..index + 3]).unwrap();
                        out.push(u8::from_str_radix(hex, 16).unwrap());
                        index += 2;
                    }
                    other => panic!("unknown escape \\{}", other as char),
                }
            } else {
                out.push(bytes[index]);
            }
            index += 1;
        }
        out
    }

    #[test]
    fn init_trees_match_their_goldens() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/init");
        let mut cases: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "args"))
            .collect();
        cases.sort();
        assert!(
            cases.len() >= 10,
            "golden cases missing from {}",
            dir.display()
        );
        for case in cases {
            let text = std::fs::read_to_string(&case).unwrap();
            let mut args: Vec<OsString> = text
                .lines()
                .map(|line| OsString::from_vec(decode(line)))
                .collect();
            args.push("out.cpio".into());
            let request = super::cli::parse(&args)
                .unwrap_or_else(|failure| panic!("{}: {failure:?}", case.display()));
            let mut rendered = String::new();
            for warning in &request.warnings {
                rendered.push_str(&format!("=== warning: {warning}\n"));
            }
            rendered.push_str(&super::render(&super::generate(&request.config)));
            expect_test::expect_file![case.with_extension("golden")].assert_eq(&rendered);
        }
    }
}
