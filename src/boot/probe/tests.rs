//! What the probe must report, derived from the board's init, and how its console
//! lines are compared.

use super::*;
use crate::init::options::{Options, Supervisor};

fn config(options: Options) -> Config {
    Config {
        options,
        log_uid: 70,
        log_gid: 71,
    }
}

#[test]
fn expectations_follow_the_init_options() {
    let options = Options {
        tmpfsdir: "/run2".to_string(),
        umask: 0o027,
        timestamp_style: 2,
        redirect_stage2: true,
        env: vec![
            ("A".to_string(), Some(b"x y".to_vec())),
            ("GONE".to_string(), None),
            ("not-an-identifier".to_string(), Some(b"z".to_vec())),
        ],
        early_getty: Some(b"getty -L 115200 ttyAMA0 vt100".to_vec()),
        ..Options::default()
    };
    let expected = expected(&config(options), "ttyAMA0");
    let get = |key: &str| {
        expected
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(get("pid1-cwd"), Some("/run2/service"));
    assert_eq!(
        get("logger"),
        Some("70:71 groups=0 stdin=/run2/service/s6-svscan-log/fifo")
    );
    assert_eq!(get("stage2-umask"), Some("0027"));
    assert_eq!(get("stage2-in-log"), Some("1"));
    assert_eq!(get("log-stamp"), Some("iso"));
    assert_eq!(get("stage2-path"), Some("/usr/bin:/bin"));
    assert_eq!(get("env A"), Some("[x y]"));
    assert_eq!(get("env GONE unset"), Some(""));
    assert_eq!(get("env not-an-identifier"), None);
    assert_eq!(get("getty-tty"), Some("/dev/ttyAMA0"));
}

#[test]
fn a_getty_on_another_tty_is_not_expected_on_the_console() {
    let options = Options {
        early_getty: Some(b"getty -L 115200 console vt100".to_vec()),
        ..Options::default()
    };
    let expected = expected(&config(options), "ttyAMA0");
    assert!(expected.iter().any(|(k, v)| k == "getty" && v == "true"));
    assert!(!expected.iter().any(|(k, _)| k == "getty-tty"));
}

#[test]
fn compare_reports_each_check() {
    let expected = vec![
        ("pid1".to_string(), "s6-svscan".to_string()),
        ("fifo".to_string(), "prw------- 0:0".to_string()),
        ("env X unset".to_string(), String::new()),
        ("restarted".to_string(), "yes".to_string()),
    ];
    let console = vec![
        "[    3.1] PROBE pid1=s6-svscan".to_string(),
        "PROBE fifo=prw-r--r-- 0:0".to_string(),
        "PROBE env X unset".to_string(),
    ];
    let rows = compare(&expected, &console);
    let summary: Vec<(bool, &str)> = rows.iter().map(|r| (r.ok, r.got.as_str())).collect();
    assert_eq!(
        summary,
        vec![
            (true, "s6-svscan"),
            (false, "prw-r--r-- 0:0"),
            (true, ""),
            (false, "(not reported)"),
        ]
    );
}

#[test]
fn the_probe_scripts_are_fitted_to_the_board() {
    let options = Options {
        tmpfsdir: "/run/it's".to_string(),
        basedir: "/etc/init".to_string(),
        env: vec![("KILN_E".to_string(), Some(b"v".to_vec()))],
        ..Options::default()
    };
    let config = config(options);
    let service = service(&config);
    assert!(service.contains("\nT='/run/it'\\''s'\n"), "{service}");
    assert!(service.contains("\nB=/etc/init\n"), "{service}");
    let stage2 = stage2(&config, b"/etc/rc.other");
    assert!(stage2.contains("exec /etc/rc.other"), "{stage2}");
    assert!(stage2.contains("PROBE env KILN_E="), "{stage2}");
    assert!(!stage2.contains("/etc/rc.init"), "{stage2}");
}

#[test]
fn under_runit_and_daemontools_pid1_is_the_shell_and_the_scanner_its_child() {
    for (supervisor, scanner) in [
        (Supervisor::Runit, "runsvdir"),
        (Supervisor::Daemontools, "svscan"),
    ] {
        let options = Options {
            basedir: "/etc/init".to_string(),
            supervisor,
            ..Options::default()
        };
        let expected = expected(&config(options), "ttyAMA0");
        let get = |key: &str| {
            expected
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("pid1"), Some("pid1"));
        assert_eq!(get("pid1-cmdline"), Some("/bin/sh /etc/init/pid1 "));
        let want = format!("{scanner} ppid=1");
        assert_eq!(get("supervisor"), Some(want.as_str()));
        assert_eq!(get("pid1-cwd"), Some("/run/service"));
    }
    let s6 = expected(&config(Options::default()), "ttyAMA0");
    assert!(!s6.iter().any(|(k, _)| k == "supervisor"));
}
