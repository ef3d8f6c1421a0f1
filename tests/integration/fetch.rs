//! `kiln fetch` (issue 4): a board's .debs through the host's apt, unprivileged, then the
//! same set again from the download directory with `--offline`.

use crate::util::{Scratch, have, run, s, stderr, stdout};

#[test]
fn fetch_downloads_the_closure_unprivileged_and_offline_agrees() {
    if !have("apt-get") {
        return;
    }
    if std::env::var_os("CI").is_none() && std::env::var_os("KILN_NETWORK_TESTS").is_none() {
        eprintln!("skipping: downloads ~60 MB; set KILN_NETWORK_TESTS=1 (always on under CI)");
        return;
    }
    let scratch = Scratch::new("fetch");
    let board = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/board-configs/qemu-aarch64.toml"
    );
    let output = crate::util::kiln()
        .env("KILN_CACHE", &scratch.path)
        .args(["fetch", board])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let listed = stdout(&output);
    let names: Vec<&str> = listed
        .lines()
        .filter_map(|line| line.split(' ').next())
        .collect();
    for wanted in [
        "busybox-static",
        "execline",
        "libc6",
        "libexecline2.9",
        "libs6-2.11",
        "libskarnet2.13",
        "s6",
        "linux-image-arm64",
    ] {
        assert!(names.contains(&wanted), "{wanted} missing from {names:?}");
    }
    assert!(
        names.iter().any(|name| name.starts_with("linux-image-6.")),
        "{names:?}"
    );
    // Excluded by the board, and the kernel's own Depends are not followed.
    for unwanted in ["libgcc-s1", "kmod", "linux-base", "initramfs-tools"] {
        assert!(
            !names.contains(&unwanted),
            "{unwanted} should not be fetched: {names:?}"
        );
    }
    for line in listed.lines() {
        let path = line.split_once(' ').unwrap().1;
        assert!(
            path.ends_with("_arm64.deb") || path.ends_with("_all.deb"),
            "{path}"
        );
        assert!(std::path::Path::new(path).is_file(), "{path}");
    }
    let debs = scratch.join("debs/arm64");
    let offline = run(["fetch", "--offline", s(&debs), board]);
    assert!(offline.status.success(), "{}", stderr(&offline));
    assert_eq!(stdout(&offline), listed);
    let empty = scratch.join("empty");
    std::fs::create_dir(&empty).unwrap();
    let missing = run(["fetch", "--offline", s(&empty), board]);
    assert_eq!(missing.status.code(), Some(100));
    assert!(
        stderr(&missing).contains("is not available for this arch"),
        "{}",
        stderr(&missing)
    );
}
