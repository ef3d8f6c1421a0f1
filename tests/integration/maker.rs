//! `kiln s6-linux-init-maker` (issue 3): validation, archive mode checked with GNU cpio and
//! bsdtar, the drop-in link name, quoting checked by the real execlineb, and the generated
//! stage 1 run for real with Debian's s6/execline in a throw-away pid+mount namespace.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use expect_test::expect;

use crate::util::{
    Scratch, gnu_cpio_listing, have, have_all, is_root, run, s, stderr, stdout, tool,
};

const BINDIR: &str = "/usr/lib/execline/bin";

#[test]
fn validation_errors_exit_100_with_nothing_written() {
    let scratch = Scratch::new("maker-validate");
    let passwd = scratch.write(
        "passwd",
        "root:x:0:0::/root:/bin/sh\nlog:x:70:71::/:/bin/false\n",
    );
    let dir = s(&scratch.join("tree")).to_string();
    let pw = format!("--passwd={}", s(&passwd));
    let cases: Vec<(Vec<&str>, i32, &str)> = vec![
        (
            vec!["-c", "etc/s6"],
            100,
            "-c \"etc/s6\": basedir must be an absolute path",
        ),
        (vec!["-c", "/"], 100, "-c \"/\": basedir must not be /"),
        (
            vec!["-c", "/etc/../x"],
            100,
            "must not contain . or .. components",
        ),
        (
            vec!["-l", "run"],
            100,
            "-l \"run\": tmpfsdir must be an absolute path",
        ),
        (vec!["-c", "/run/s6", "-l", "/run"], 100, "overlap"),
        (vec!["-c", "/run", "-l", "/run/x"], 100, "overlap"),
        (
            vec!["-b", "bin"],
            100,
            "-b \"bin\": execline_bindir must be an absolute path",
        ),
        (vec!["-b", "/my bin"], 100, "must not contain whitespace"),
        (
            vec!["-2", "rc.init"],
            100,
            "-2 \"rc.init\": must be an absolute path",
        ),
        (
            vec!["-Z", "rc.tini"],
            100,
            "-Z \"rc.tini\": must be an absolute path",
        ),
        (
            vec!["-3", "rc.shutdown"],
            100,
            "-3 \"rc.shutdown\": must be an absolute path",
        ),
        (
            vec!["-t", "4"],
            100,
            "-t \"4\": timestamp_style must be a number from 0 to 3",
        ),
        (
            vec!["-d", "3"],
            100,
            "-d \"3\": dev_style must be a number from 0 to 2",
        ),
        (
            vec!["-m", "8"],
            100,
            "-m \"8\": initial_umask must be octal digits",
        ),
        (
            vec!["-m", ""],
            100,
            "-m \"\": initial_umask must be octal digits",
        ),
        (vec!["-m", "1777"], 100, "at most 0777"),
        (vec!["-x"], 100, "unknown option -x"),
        (vec!["--bogus"], 100, "unknown option --bogus"),
        (vec!["-c"], 100, "missing dir operand"),
        (vec!["-e", ""], 100, "-e \"\": empty variable name"),
        (vec!["-e", "=x"], 100, "-e \"\": empty variable name"),
        (vec!["-e", "a/b=1"], 100, "must not contain /"),
        (vec!["-e", "..=1"], 100, "must not start with ."),
        (vec!["-g", "getty {"], 100, "unbalanced braces"),
        (vec!["-g", "echo \"x"], 100, "unterminated double quote"),
        (vec!["-g", " "], 100, "must not be empty"),
        (
            vec!["-u", "nosuchuser", &pw],
            100,
            "-u \"nosuchuser\": unknown user: not in",
        ),
        (vec!["-u", "77", &pw], 100, "no entry with uid 77"),
        (
            vec!["-u", "1:x"],
            100,
            "expected a user name, UID or UID:GID",
        ),
    ];
    let mut failures = Vec::new();
    for (args, code, message) in &cases {
        let mut full: Vec<&str> = vec!["s6-linux-init-maker"];
        full.extend(args);
        full.push(&dir);
        let output = run(&full);
        let err = stderr(&output);
        if output.status.code() != Some(*code)
            || !err.contains(message)
            || !output.stdout.is_empty()
            || scratch.join("tree").exists()
        {
            failures.push(format!(
                "{args:?}: exit {:?} stderr {err:?}",
                output.status.code()
            ));
        }
    }
    // Operand errors.
    for (args, message) in [
        (vec!["s6-linux-init-maker"], "missing dir operand"),
        (vec!["s6-linux-init-maker", "a", "b"], "extra operand \"b\""),
        (
            vec!["s6-linux-init-maker", "a", "-c"],
            "option -c needs an argument",
        ),
    ] {
        let output = run(&args);
        if output.status.code() != Some(100) || !stderr(&output).contains(message) {
            failures.push(format!("{args:?}: {}", stderr(&output)));
        }
        if !stderr(&output).contains("kiln: usage: kiln s6-linux-init-maker [ -c basedir ]") {
            failures.push(format!("{args:?}: no usage line: {}", stderr(&output)));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    assert_eq!(scratch.names(), vec!["passwd"]);
}

#[test]
fn system_errors_exit_111_and_leave_things_alone() {
    let scratch = Scratch::new("maker-system");
    let existing = scratch.join("existing");
    fs::create_dir(&existing).unwrap();
    fs::write(existing.join("keep"), "x").unwrap();
    let output = run(["s6-linux-init-maker", s(&existing)]);
    assert_eq!(output.status.code(), Some(111));
    assert!(
        stderr(&output).contains("File exists"),
        "{}",
        stderr(&output)
    );
    assert_eq!(fs::read_to_string(existing.join("keep")).unwrap(), "x");
    let output = run(["s6-linux-init-maker", s(&scratch.join("no/parent"))]);
    assert_eq!(output.status.code(), Some(111));
    assert!(
        stderr(&output).contains("No such file or directory"),
        "{}",
        stderr(&output)
    );
    // Unprivileged, a directory tree cannot get its owners: point at the archive form.
    let output = run(["s6-linux-init-maker", "-u", "0:0", s(&scratch.join("tree"))]);
    assert_eq!(output.status.code(), Some(111));
    assert!(
        stderr(&output).contains("note: a directory tree needs root"),
        "{}",
        stderr(&output)
    );
    assert!(output.stdout.is_empty());
    // An existing archive is not replaced.
    fs::write(scratch.join("a.cpio"), "old").unwrap();
    let output = run(["s6-linux-init-maker", s(&scratch.join("a.cpio"))]);
    assert_eq!(output.status.code(), Some(111));
    assert_eq!(fs::read_to_string(scratch.join("a.cpio")).unwrap(), "old");
    assert_eq!(scratch.names(), vec!["a.cpio", "existing"]);
}

#[test]
fn archive_mode_records_fifo_modes_and_log_owner_without_root() {
    let scratch = Scratch::new("maker-archive");
    let passwd = scratch.write(
        "passwd",
        "root:x:0:0::/root:/bin/sh\nlog:x:70:71::/:/bin/false\n",
    );
    let archive = scratch.join("init.cpio.gz");
    let output = run([
        "s6-linux-init-maker",
        "-u",
        "log",
        "--passwd",
        s(&passwd),
        "-b",
        BINDIR,
        "-p",
        "/usr/lib/execline/bin:/usr/bin:/bin",
        s(&archive),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).starts_with("#!/usr/lib/execline/bin/execlineb -P\n"));
    if !have_all(&["cpio", "bsdtar", "gzip"]) {
        return;
    }
    let listing = tool("bsdtar", &["-tvf", s(&archive), "--numeric-owner"], None);
    expect![[r#"
        drwxr-xr-x 2 0 0 0 Jan 1 2000 dev
        crw------- 1 0 0 5,1 Jan 1 2000 dev/console
        crw-rw-rw- 1 0 0 1,3 Jan 1 2000 dev/null
        drwxr-xr-x 2 0 0 0 Jan 1 2000 etc
        drwxr-xr-x 2 0 0 0 Jan 1 2000 etc/s6-linux-init
        drwxr-xr-x 2 0 0 0 Jan 1 2000 etc/s6-linux-init/env
        drwxr-xr-x 2 0 0 0 Jan 1 2000 etc/s6-linux-init/run-image
        drwxr-xr-x 2 0 0 0 Jan 1 2000 etc/s6-linux-init/run-image/service
        drwxr-xr-x 2 0 0 0 Jan 1 2000 etc/s6-linux-init/run-image/service/.s6-svscan
        -rwxr-xr-x 1 0 0 455 Jan 1 2000 etc/s6-linux-init/run-image/service/.s6-svscan/SIGHUP
        -rwxr-xr-x 1 0 0 455 Jan 1 2000 etc/s6-linux-init/run-image/service/.s6-svscan/SIGINT
        -rwxr-xr-x 1 0 0 456 Jan 1 2000 etc/s6-linux-init/run-image/service/.s6-svscan/SIGQUIT
        -rwxr-xr-x 1 0 0 456 Jan 1 2000 etc/s6-linux-init/run-image/service/.s6-svscan/SIGTERM
        -rwxr-xr-x 1 0 0 460 Jan 1 2000 etc/s6-linux-init/run-image/service/.s6-svscan/SIGUSR1
        -rwxr-xr-x 1 0 0 452 Jan 1 2000 etc/s6-linux-init/run-image/service/.s6-svscan/SIGUSR2
        -rwxr-xr-x 1 0 0 500 Jan 1 2000 etc/s6-linux-init/run-image/service/.s6-svscan/crash
        -rwxr-xr-x 1 0 0 716 Jan 1 2000 etc/s6-linux-init/run-image/service/.s6-svscan/finish
        drwxr-xr-x 2 0 0 0 Jan 1 2000 etc/s6-linux-init/run-image/service/s6-svscan-log
        prw------- 1 0 0 0 Jan 1 2000 etc/s6-linux-init/run-image/service/s6-svscan-log/fifo
        -rwxr-xr-x 1 0 0 601 Jan 1 2000 etc/s6-linux-init/run-image/service/s6-svscan-log/run
        drwx--S--- 2 70 71 0 Jan 1 2000 etc/s6-linux-init/run-image/uncaught-logs
        -rwxr-xr-x 1 0 0 1520 Jan 1 2000 init
        drwxr-xr-x 2 0 0 0 Jan 1 2000 proc
        drwxr-xr-x 2 0 0 0 Jan 1 2000 run
        drwxr-xr-x 2 0 0 0 Jan 1 2000 sbin
        -rwxr-xr-x 1 0 0 1520 Jan 1 2000 sbin/init
        drwxr-xr-x 2 0 0 0 Jan 1 2000 sys
    "#]]
    .assert_eq(&listing);
    let raw = scratch.join("init.cpio");
    let listing = gnu_cpio_listing(&archive, &raw);
    let interesting: Vec<&str> = listing
        .lines()
        .filter(|line| {
            line.ends_with("/fifo") || line.ends_with("uncaught-logs") || line.ends_with(" init")
        })
        .collect();
    assert_eq!(
        interesting,
        vec![
            "prw------- 1 0 0 0 Jan 1 2000 etc/s6-linux-init/run-image/service/s6-svscan-log/fifo",
            "drwx--S--- 2 70 71 0 Jan 1 2000 etc/s6-linux-init/run-image/uncaught-logs",
            "-rwxr-xr-x 1 0 0 1520 Jan 1 2000 init",
        ]
    );
}

#[test]
fn invoked_as_s6_linux_init_maker_it_is_a_drop_in() {
    let scratch = Scratch::new("maker-link");
    let link = scratch.join("s6-linux-init-maker");
    std::os::unix::fs::symlink(crate::util::KILN, &link).unwrap();
    let via_link = Command::new(&link)
        .args(["-b", BINDIR, "-t", "3", s(&scratch.join("a.tar"))])
        .output()
        .unwrap();
    assert!(via_link.status.success(), "{}", stderr(&via_link));
    let direct = Command::new(crate::util::KILN)
        .args([
            "s6-linux-init-maker",
            "-b",
            BINDIR,
            "-t",
            "3",
            s(&scratch.join("b.tar")),
        ])
        .output()
        .unwrap();
    assert_eq!(via_link.stdout, direct.stdout);
    assert!(fs::read(scratch.join("a.tar")).unwrap() == fs::read(scratch.join("b.tar")).unwrap());
    let bad = Command::new(&link).args(["-t", "9", "x"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(100));
    assert_eq!(
        stderr(&bad),
        "s6-linux-init-maker: fatal: -t \"9\": timestamp_style must be a number from 0 to 3\n"
    );
}

/// Random byte strings survive `quote` and the real execlineb unchanged.
#[test]
fn quoted_words_decode_back_exactly_in_real_execlineb() {
    if !have("/usr/lib/execline/bin/execlineb") {
        return;
    }
    let scratch = Scratch::new("maker-quote");
    let mut samples: Vec<Vec<u8>> = vec![
        b"\\0x41 then \\0x4".to_vec(),
        b"$KEY ${KEY} \\$KEY \\\\${KEY}".to_vec(),
        b"   leading spaces".to_vec(),
        b"trailing \t\r\n".to_vec(),
        "naïve ünïcödé \u{1F600}".as_bytes().to_vec(),
        b"{ } # \" ' ` ; & | < >".to_vec(),
        (2u8..=255).collect(),
    ];
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..200 {
        let len = (state % 40) as usize;
        let mut sample = Vec::new();
        for _ in 0..len {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let byte = (state >> 24) as u8;
            // Bias towards the interesting bytes; NUL cannot be in an argument.
            let byte = match byte % 5 {
                0 => b"\\\"$x{}0 "[(byte as usize / 5) % 8],
                _ => byte,
            };
            sample.push(byte.max(2));
        }
        samples.push(sample);
    }
    let output = scratch.join("out");
    let mut script = format!(
        "#!{BINDIR}/execlineb -P\n{BINDIR}/redirfd -w 1 {}\n",
        s(&output)
    );
    for sample in &samples {
        script.push_str(&format!(
            "{BINDIR}/foreground {{ /usr/bin/printf \"%s\\0x01\" {} }}\n",
            kiln_quote(sample)
        ));
    }
    script.push_str("/bin/true\n");
    let script_path = scratch.join("script");
    fs::write(&script_path, &script).unwrap();
    fs::set_permissions(&script_path, fs::Permissions::from_mode(0o755)).unwrap();
    let status = Command::new(&script_path).status().unwrap();
    assert!(status.success());
    let got = fs::read(&output).unwrap();
    let decoded: Vec<&[u8]> = got.split(|&b| b == 1).collect();
    for (index, sample) in samples.iter().enumerate() {
        // Samples never hold the separator 0x01 (nor NUL, which no argument can hold).
        assert_eq!(
            decoded[index],
            &sample[..],
            "sample {index}: {:?}",
            String::from_utf8_lossy(sample)
        );
    }
}

/// The quoting rule, as `src/init/mod.rs` implements it, reached through a generated
/// stage 1: `-2 VALUE` appears quoted as the last word of the background block.
fn kiln_quote(bytes: &[u8]) -> String {
    let mut arg = b"/".to_vec();
    arg.extend_from_slice(bytes);
    let os: std::ffi::OsString = std::os::unix::ffi::OsStringExt::from_vec(arg);
    let scratch = Scratch::new("maker-quote-one");
    let output = Command::new(crate::util::KILN)
        .arg("s6-linux-init-maker")
        .arg("-2")
        .arg(&os)
        .arg(scratch.join("x.tar"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let stage1 = stdout(&output);
    let line = stage1
        .lines()
        .skip_while(|line| *line != "{")
        .nth(4)
        .unwrap()
        .trim()
        .to_string();
    // Drop the leading "/" we added, just after the opening quote.
    assert!(line.starts_with("\"/"), "{line}");
    format!("\"{}", &line[2..])
}

/// What a boot in a namespace printed on its "console" (a file bound over /dev/console).
struct Boot {
    console: String,
    status: Option<i32>,
}

/// Runs a generated stage 1 as pid 1 of a new pid+mount namespace with Debian's s6 and
/// execline. `stage2_body` is sh code run as stage 2; stage 2 ends by sending `signal` to
/// pid 1. stage2_finish and stage 3 print markers; stage 3 prints the catch-all log and
/// exits, which ends the namespace (it never calls reboot(2)).
fn boot(name: &str, extra: &[&str], stage2_body: &str, signal: &str) -> Option<Boot> {
    boot_with_finish(name, extra, stage2_body, signal, "")
}

/// `boot`, with `finish` (when not empty) as stage2_finish instead of the marker script.
/// `__ROOT__` in `extra` becomes the scratch directory.
fn boot_with_finish(
    name: &str,
    extra: &[&str],
    stage2_body: &str,
    signal: &str,
    finish: &str,
) -> Option<Boot> {
    if !is_root() {
        if crate::util::under_ci() {
            panic!("namespace boot tests need root under CI");
        }
        crate::util::skip("namespace boot needs root (for unshare)");
        return None;
    }
    if !have_all(&["unshare", "s6-svscan", "/usr/lib/execline/bin/execlineb"]) {
        return None;
    }
    let scratch = Scratch::new(name);
    let root = s(&scratch.path).to_string();
    let write_script = |file: &str, text: String| {
        let path = scratch.write(file, &text);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    };
    write_script(
        "stage2",
        format!("#!/bin/sh\nS={root}\n{stage2_body}\necho \"stage2: done\"\nkill -{signal} 1\n"),
    );
    write_script(
        "stage2_finish",
        format!(
            "#!/bin/sh\necho \"stage2_finish: pid1=$(cat /proc/1/comm)\"\n\
             for svc in {root}/run/service/*; do [ \"${{svc##*/}}\" = s6-svscan-log ] || s6-svc -d \"$svc\"; done\n"
        ),
    );
    write_script(
        "stage3",
        format!(
            "#!/bin/sh\necho \"stage3: pid=$$ action=$1\"\necho \"--- catch-all log:\"\n\
             sed 's/^@[0-9a-f]* //' {root}/run/uncaught-logs/current\nexit 0\n"
        ),
    );
    fs::create_dir(scratch.join("run")).unwrap();
    scratch.write("console", "");
    let mut args = vec![
        "s6-linux-init-maker".to_string(),
        format!("-c{root}/base"),
        format!("-l{root}/run"),
        format!("-b{BINDIR}"),
        "-p/usr/lib/execline/bin:/usr/bin:/bin".to_string(),
        "-u65534:65534".to_string(),
        format!("-2{root}/stage2"),
        if finish.is_empty() {
            format!("-Z{root}/stage2_finish")
        } else {
            format!("-Z{finish}")
        },
        format!("-3{root}/stage3"),
    ];
    args.extend(extra.iter().map(|arg| arg.replace("__ROOT__", &root)));
    args.push(format!("{root}/base"));
    // Directory mode needs root for the log dir's owner; the tests run as root here.
    let output = Command::new(crate::util::KILN)
        .args(&args)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    write_script("stage1", stdout(&output));
    let status = Command::new("timeout")
        .args([
            "30",
            "unshare",
            "--pid",
            "--fork",
            "--mount",
            "--mount-proc",
            "--propagation",
            "private",
            "sh",
            "-c",
            &format!("mount --bind {root}/console /dev/console && exec {root}/stage1 </dev/null >>{root}/console 2>&1"),
        ])
        .status()
        .unwrap();
    Some(Boot {
        console: fs::read_to_string(scratch.join("console")).unwrap(),
        status: status.code(),
    })
}

#[test]
fn stage1_runs_supervision_first_and_each_signal_reaches_stage3() {
    let probe = "echo \"stage2: pid1=$(cat /proc/1/comm) cmdline=$(tr '\\0' ' ' < /proc/1/cmdline | sed \"s|$S|ROOT|\")\"\n\
                 echo \"stage2: env=[$KILN_TEST] umask=$(umask) cwd=$(pwd) own-session=$([ $(cut -d' ' -f6 /proc/$$/stat) = $$ ] && echo yes)\"\n\
                 for p in /proc/[0-9]*; do [ \"$(cat $p/comm 2>/dev/null)\" = s6-log ] && echo \"stage2: logger $(grep -E '^(Uid|Gid|Groups)' $p/status | tr -s '\\t\\n' '  ')fd0=$(readlink $p/fd/0 | sed 's|.*/||')\"; done";
    for (signal, action) in [
        ("INT", "reboot"),
        ("TERM", "reboot"),
        ("HUP", "reboot"),
        ("QUIT", "reboot"),
        ("USR1", "poweroff"),
        ("USR2", "halt"),
    ] {
        let Some(boot) = boot(
            &format!("maker-boot-{signal}"),
            &["-m", "027", "-e", "KILN_TEST=a b =c ", "-t", "1"],
            probe,
            signal,
        ) else {
            return;
        };
        assert_eq!(boot.status, Some(0), "{signal}: {}", boot.console);
        let expected = format!(
            "s6-linux-init: stage 1\n\
             stage2: pid1=s6-svscan cmdline=s6-svscan -X3 -t0 ROOT/run/service \n\
             stage2: env=[a b =c ] umask=0027 cwd=/ own-session=yes\n\
             stage2: logger Uid: 65534 65534 65534 65534 Gid: 65534 65534 65534 65534 Groups: fd0=fifo\n\
             stage2: done\n\
             stage3: pid=1 action={action}\n\
             --- catch-all log:\n\
             stage2_finish: pid1=s6-svscan\n"
        );
        assert_eq!(boot.console, expected, "signal {signal}");
    }
}

#[test]
fn with_r_stage2_output_goes_to_the_catch_all_log() {
    let Some(boot) = boot(
        "maker-boot-r",
        &["-r", "-t", "0"],
        "echo \"stage2: to the log\"",
        "INT",
    ) else {
        return;
    };
    expect![[r#"
        s6-linux-init: stage 1
        stage3: pid=1 action=reboot
        --- catch-all log:
        stage2: to the log
        stage2: done
        stage2_finish: pid1=s6-svscan
    "#]]
    .assert_eq(&boot.console);
}

#[test]
fn added_services_start_and_restart_and_a_second_signal_changes_nothing() {
    let body = "mkdir $S/run/service/svc\n\
                printf '#!/bin/sh\\necho svc started\\nexec sleep 1000\\n' > $S/run/service/svc/run\n\
                chmod +x $S/run/service/svc/run\n\
                s6-svscanctl -a $S/run/service\n\
                for i in $(seq 50); do [ -e $S/run/service/svc/supervise/status ] && break; sleep 0.1; done\n\
                s6-svwait -u -t 5000 $S/run/service/svc && echo \"stage2: svc up\"\n\
                first=$(s6-svstat -p $S/run/service/svc); kill $first\n\
                for i in $(seq 60); do second=$(s6-svstat -p $S/run/service/svc); [ \"$second\" != \"$first\" ] && [ \"$second\" -gt 0 ] && break; sleep 0.1; done\n\
                [ \"$second\" != \"$first\" ] && [ \"$second\" -gt 0 ] && echo \"stage2: svc restarted\"\n\
                s6-svstat -o up $S/run/service/s6-linux-init-early-getty\n\
                kill -USR1 1; sleep 0.2";
    let getty = "sh -c \"trap '' TERM; exec sleep 1000\"";
    let start = std::time::Instant::now();
    let Some(boot) = boot("maker-boot-svc", &["-g", getty], body, "USR2") else {
        return;
    };
    // The getty ignores SIGTERM: only timeout-kill ends it, within seconds, not never.
    assert!(
        start.elapsed().as_secs() < 15,
        "shutdown took {:?}",
        start.elapsed()
    );
    expect![[r#"
        s6-linux-init: stage 1
        stage2: svc up
        stage2: svc restarted
        true
        stage2: done
        stage3: pid=1 action=poweroff
        --- catch-all log:
        svc started
        svc started
        stage2_finish: pid1=s6-svscan
    "#]]
    .assert_eq(&boot.console);
}

/// The shipped example stage2_finish, run for real: it brings services down (a service
/// that ignores SIGTERM included, through its kill fallback) and leaves the logger alone.
#[test]
fn example_rc_tini_brings_services_down() {
    let rc_tini = concat!(env!("CARGO_MANIFEST_DIR"), "/initramfs/etc/rc.tini");
    let body = "mkdir $S/run/service/svc\n\
                printf '#!/bin/sh\\necho svc started\\nexec sleep 1000\\n' > $S/run/service/svc/run\n\
                chmod +x $S/run/service/svc/run\n\
                s6-svscanctl -a $S/run/service\n\
                for i in $(seq 50); do [ -e $S/run/service/svc/supervise/status ] && break; sleep 0.1; done\n\
                s6-svwait -u -t 5000 $S/run/service/svc && echo \"stage2: svc up\"";
    let scandir_env = "S6_SCANDIR=__ROOT__/run/service";
    let Some(boot) = boot_with_finish(
        "maker-boot-rctini",
        &["-e", scandir_env],
        body,
        "TERM",
        rc_tini,
    ) else {
        return;
    };
    expect![[r#"
        s6-linux-init: stage 1
        stage2: svc up
        stage2: done
        stage3: pid=1 action=reboot
        --- catch-all log:
        svc started
        rc.tini: services down
    "#]]
    .assert_eq(&boot.console);
}
