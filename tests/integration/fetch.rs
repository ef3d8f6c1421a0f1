//! `kiln fetch` (issue 4): a board's .debs through the host's apt, unprivileged, then the
//! same set again from the download directory with `--offline`.

use crate::util::{Scratch, network_tests_with, run, s, stderr, stdout};

#[test]
fn fetch_downloads_the_closure_unprivileged_and_offline_agrees() {
    if !network_tests_with("downloads ~60 MB", &["apt-get"]) {
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
        // The UEFI chain's loader (issue 12).
        "systemd-boot-efi",
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

/// The class (1: 32-bit, 2: 64-bit), `e_machine` and `e_flags` of a little-endian ELF file,
/// from its header.
fn elf_header(path: &std::path::Path) -> (u8, u16, u32) {
    let bytes = std::fs::read(path).unwrap();
    assert!(
        bytes.len() >= 52 && bytes.starts_with(b"\x7fELF"),
        "{}: not an ELF file",
        path.display()
    );
    assert_eq!(bytes[5], 1, "{}: not little-endian", path.display());
    let class = bytes[4];
    let machine = u16::from_le_bytes([bytes[18], bytes[19]]);
    let flags_at = if class == 1 { 36 } else { 48 };
    let flags = u32::from_le_bytes(bytes[flags_at..flags_at + 4].try_into().unwrap());
    (class, machine, flags)
}

/// `kiln build` for the three qemu boards, unprivileged: the archive holds the init, the
/// console node, the logger fifo, uncaught-logs owned by the board's log user from the
/// image's passwd, s6-svscan for the right machine, and a complete ELF closure. Two
/// builds are byte-identical, and the initramfs stays under 2.5 MB.
#[test]
fn build_qemu_boards_unprivileged() {
    if !network_tests_with("downloads ~200 MB", &["apt-get", "cpio", "gzip"]) {
        return;
    }
    let cache = crate::util::shared_cache();
    // s6-svscan's ELF header: 64-bit EM_AARCH64; 32-bit EM_ARM with EABI version 5 and
    // the hard-float flag (armhf); 64-bit EM_X86_64.
    for (board, arch, header) in [
        ("qemu-aarch64", "aarch64", (2, 183, 0)),
        ("qemu-armv7", "armv7", (1, 40, 0x0500_0400)),
        ("qemu-x86_64", "x86_64", (2, 62, 0)),
    ] {
        let scratch = Scratch::new(&format!("build-{board}"));
        let config = format!("{}/board-configs/{board}.toml", env!("CARGO_MANIFEST_DIR"));
        let mut archives = Vec::new();
        for round in ["a", "b"] {
            let out = scratch.join(round);
            let output = crate::util::kiln()
                .env("KILN_CACHE", &cache)
                .args(["build", "--locked", &config, "-o", s(&out)])
                .output()
                .unwrap();
            assert!(output.status.success(), "{board}: {}", stderr(&output));
            archives.push(out.join(format!("{board}.cpio.gz")));
        }
        let (first, second) = (
            std::fs::read(&archives[0]).unwrap(),
            std::fs::read(&archives[1]).unwrap(),
        );
        assert!(first == second, "{board}: two builds differ");
        eprintln!("{board}: initramfs {} bytes", first.len());
        assert!(
            first.len() <= 2_500_000,
            "{board}: {} bytes is over 2.5 MB",
            first.len()
        );
        let listing = crate::util::gnu_cpio_listing(&archives[0], &scratch.join("raw.cpio"));
        for wanted in [
            "-rwxr-xr-x 1 0 0 ",
            "crw------- 1 0 0 5, 1 Jan 1 2000 dev/console",
            "prw------- 1 0 0 0 Jan 1 2000 etc/s6-linux-init/run-image/service/s6-svscan-log/fifo",
            "drwx--S--- 2 70 70 0 Jan 1 2000 etc/s6-linux-init/run-image/uncaught-logs",
            "-rw-r--r-- 1 0 0 ",
        ] {
            assert!(
                listing.contains(wanted),
                "{board}: no {wanted:?} in\n{listing}"
            );
        }
        assert!(
            listing
                .lines()
                .any(|line| line.starts_with("-rwxr-xr-x") && line.ends_with(" init")),
            "{board}: no /init"
        );
        let passwd = scratch.join("x");
        std::fs::create_dir(&passwd).unwrap();
        let status = std::process::Command::new("sh")
            .current_dir(&passwd)
            .arg("-c")
            .arg(format!(
                "cpio -id --quiet etc/passwd usr/bin/s6-svscan < {}",
                s(&scratch.join("raw.cpio"))
            ))
            .status()
            .unwrap();
        assert!(status.success());
        let passwd_text = std::fs::read_to_string(passwd.join("etc/passwd")).unwrap();
        assert!(passwd_text.contains("log:x:70:70:"), "{passwd_text}");
        let (class, machine, flags) = elf_header(&passwd.join("usr/bin/s6-svscan"));
        assert_eq!(
            (class, machine, flags),
            header,
            "{board}: s6-svscan's ELF class, machine and flags"
        );
        let check = run(["check", "--arch", arch, s(&archives[0])]);
        assert!(check.status.success(), "{board}: {}", stderr(&check));
    }
    // --explain says why each library is in, with the package it came from.
    let output = crate::util::kiln()
        .env("KILN_CACHE", &cache)
        .args([
            "build",
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/board-configs/qemu-aarch64.toml"
            ),
            "-o",
            s(&Scratch::new("build-explain").path),
            "--explain",
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let explain = stdout(&output);
    let block: Vec<&str> = explain
        .lines()
        .skip_while(|line| *line != "  /usr/bin/s6-svscan")
        .take(4)
        .collect();
    assert_eq!(
        block,
        vec![
            "  /usr/bin/s6-svscan",
            "    PT_INTERP /lib/ld-linux-aarch64.so.1 -> /lib/aarch64-linux-gnu/ld-linux-aarch64.so.1 (libc6)",
            "    DT_NEEDED libskarnet.so.2.13 -> /usr/lib/aarch64-linux-gnu/libskarnet.so.2.13.1.1 (libskarnet2.13)",
            "    DT_NEEDED libc.so.6 -> /lib/aarch64-linux-gnu/libc.so.6 (libc6)",
        ],
        "{explain}"
    );
    // And why each package is in: named by the board, or whose Depends pulled it.
    for wanted in [
        "packages:",
        "  busybox-static ",
        "  libc6 ",
        "  s6 2.11.3.2-1 (select): named in [packages.select]",
        "  linux-image-arm64 ",
    ] {
        assert!(
            explain.lines().any(|line| line.starts_with(wanted)),
            "no {wanted:?} in\n{explain}"
        );
    }
    let libc = explain
        .lines()
        .find(|line| line.starts_with("  libc6 "))
        .unwrap();
    assert!(
        libc.contains("(library): Depends of ") && libc.ends_with(", from [packages.select]"),
        "{libc}"
    );
}

/// Every shipped board's image passes `kiln check --board`: no dangling link, no missing
/// interpreter, no unresolved library.
#[test]
fn shipped_boards_check_clean() {
    if !network_tests_with("downloads ~200 MB", &["apt-get"]) {
        return;
    }
    let cache = crate::util::shared_cache();
    for board in [
        "qemu-aarch64",
        "qemu-aarch64-net",
        "qemu-armv7",
        "qemu-x86_64",
        "qemu-x86_64-net",
        "raspberrypi3-64",
        "orangepi-pc",
        "orangepi-pc-net",
    ] {
        let scratch = Scratch::new(&format!("check-{board}"));
        let config = format!("{}/board-configs/{board}.toml", env!("CARGO_MANIFEST_DIR"));
        let output = crate::util::kiln()
            .env("KILN_CACHE", &cache)
            .args(["build", "--locked", &config, "-o", s(&scratch.path)])
            .output()
            .unwrap();
        assert!(output.status.success(), "{board}: {}", stderr(&output));
        let archive = scratch.join(&format!("{board}.cpio.gz"));
        let check = crate::util::kiln()
            .env("KILN_CACHE", &cache)
            .args(["check", "--board", &config, s(&archive)])
            .output()
            .unwrap();
        assert_eq!(check.status.code(), Some(0), "{board}: {}", stderr(&check));
        assert_eq!(stderr(&check), "", "{board}");
    }
}

/// A build whose image has a dangling symlink and a script without its interpreter fails
/// with both named (and what would provide one), writes nothing, and passes once the
/// board allows both with a reason; `kiln check` finds the same two in the archive.
#[test]
fn build_names_every_dangling_link_and_missing_interpreter() {
    if !network_tests_with("downloads ~60 MB", &["apt-get"]) {
        return;
    }
    let cache = crate::util::shared_cache();
    let scratch = Scratch::new("build-dangling");
    let overlay = scratch.join("overlay/usr/bin");
    std::fs::create_dir_all(&overlay).unwrap();
    std::os::unix::fs::symlink("/usr/lib/nothing/here", overlay.join("broken")).unwrap();
    // s6's own tools are selected by the board; s6-svlisten1 is not, but s6 ships it.
    std::os::unix::fs::symlink("s6-svlisten1", overlay.join("listen")).unwrap();
    let tool = overlay.join("tool");
    std::fs::write(
        &tool,
        "#!/usr/bin/perl -w
print 1;
",
    )
    .unwrap();
    std::fs::set_permissions(&tool, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let base = format!(
        "name = \"dangling\"\ninherit = \"{}/board-configs/qemu-aarch64.toml\"\n\n[packages.select]\ns6 = [\"/usr/bin/s6-svscan*\", \"/usr/bin/s6-svc\"]\nexecline = [\"/usr/lib/execline/bin/*\"]\n\n[[overlays]]\nsource = \"{}/initramfs\"\ndest = \"/\"\n\n[[overlays]]\nsource = \"overlay\"\ndest = \"/\"\n",
        env!("CARGO_MANIFEST_DIR"),
        env!("CARGO_MANIFEST_DIR"),
    );
    let board = scratch.write("dangling.toml", &base);
    let out = scratch.join("out");
    let build = |board: &std::path::Path| {
        crate::util::kiln()
            .env("KILN_CACHE", &cache)
            .args(["build", s(board), "-o", s(&out)])
            .output()
            .unwrap()
    };
    let output = build(&board);
    assert_eq!(output.status.code(), Some(100), "{}", stderr(&output));
    let text = stderr(&output);
    assert!(
        text.contains(&format!("{}: the image has 3 problems:", s(&board))),
        "{text}"
    );
    for wanted in [
        "  /usr/bin/broken: symlink to /usr/lib/nothing/here, but /usr/lib/nothing/here is not in the image\n",
        "  /usr/bin/listen: symlink to s6-svlisten1, but /usr/bin/s6-svlisten1 is not in the image (note: s6 provides it)\n",
        "  /usr/bin/tool: #!/usr/bin/perl -w: /usr/bin/perl is not in the image\n",
    ] {
        assert!(text.contains(wanted), "no {wanted:?} in\n{text}");
    }
    assert!(!out.exists(), "a failed build wrote {}", s(&out));
    let allowed = scratch.write(
        "allowed.toml",
        &format!(
            "{base}\n[check.allow_dangling]\n\"/usr/bin/broken\" = \"mounted at run time\"\n\"/usr/bin/tool\" = \"perl comes from the data partition\"\n\"/usr/bin/listen\" = \"a test\"\n"
        ),
    );
    let output = build(&allowed);
    assert!(output.status.success(), "{}", stderr(&output));
    let archive = out.join("dangling.cpio.gz");
    let check = run(["check", "--arch", "aarch64", s(&archive)]);
    assert_eq!(check.status.code(), Some(1));
    let text = stderr(&check);
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(text.starts_with("kiln: check: /usr/bin/broken: symlink to /usr/lib/nothing/here, but /usr/lib/nothing/here is not in the image\n"), "{text}");
    let check = crate::util::kiln()
        .env("KILN_CACHE", &cache)
        .args(["check", "--board", s(&allowed), s(&archive)])
        .output()
        .unwrap();
    assert_eq!(check.status.code(), Some(0), "{}", stderr(&check));
}

/// `kiln fetch BOARD`'s listing, into the shared cache; the run must succeed.
fn fetch_listing(board: &str) -> String {
    let output = crate::util::kiln()
        .env("KILN_CACHE", crate::util::shared_cache())
        .args(["fetch", board])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    stdout(&output)
}

/// Packages a card only takes boot files from come without their Depends, from the
/// archive component the board adds for the host's own mirrors (issue 12): raspi-firmware
/// is in non-free-firmware and pre-depends on dpkg, which is not fetched.
#[test]
fn boot_file_packages_come_without_their_depends() {
    if !network_tests_with("downloads the Pi firmware", &["apt-get"]) {
        return;
    }
    let board = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/board-configs/raspberrypi3-64.toml"
    );
    let listed = fetch_listing(board);
    let names: Vec<&str> = listed
        .lines()
        .filter_map(|line| line.split(' ').next())
        .collect();
    assert!(names.contains(&"raspi-firmware"), "{names:?}");
    assert!(
        !listed.contains("src:"),
        "a source package listed: {listed}"
    );
    for unwanted in ["dpkg", "dosfstools", "systemd-boot-efi"] {
        assert!(!names.contains(&unwanted), "{unwanted} fetched: {names:?}");
    }
    let sources = crate::util::shared_cache()
        .join("apt/arm64+non-free-firmware/sources.list.d/kiln-extra.sources");
    let text = std::fs::read_to_string(&sources).unwrap();
    assert!(text.contains("Components: non-free-firmware\n"), "{text}");
}

/// A board that builds U-Boot from source fetches the source package its lock pins, and
/// lists it after the .debs as `src:u-boot` with the path of its .dsc, whose bytes are
/// those the lock records.
#[test]
fn fetch_lists_the_locked_u_boot_source() {
    if !network_tests_with("downloads the U-Boot source", &["apt-get"]) {
        return;
    }
    let board = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/board-configs/orangepi-pc.toml"
    );
    let listed = fetch_listing(board);
    let lines: Vec<&str> = listed.lines().collect();
    let last = lines.last().copied().unwrap_or_default();
    let (name, dsc) = last.split_once(' ').unwrap();
    assert_eq!(name, "src:u-boot", "{listed}");
    assert!(
        lines[..lines.len() - 1]
            .iter()
            .all(|line| !line.starts_with("src:"))
    );
    assert!(
        lines.iter().any(|line| line.starts_with("linux-image-")),
        "{listed}"
    );
    let lock = std::fs::read_to_string(board.replace(".toml", ".lock")).unwrap();
    let file_name = std::path::Path::new(dsc)
        .file_name()
        .unwrap()
        .to_str()
        .unwrap();
    assert!(
        lock.contains(&format!("name = \"{file_name}\"\n")),
        "{file_name} is not in the lock"
    );
    let sum = std::process::Command::new("sha256sum")
        .arg(dsc)
        .output()
        .unwrap();
    let sum = stdout(&sum);
    let sha256 = sum.split(' ').next().unwrap();
    assert!(
        lock.contains(&format!(
            "name = \"{file_name}\"\nsize = {}\nsha256 = \"{sha256}\"",
            std::fs::metadata(dsc).unwrap().len()
        )),
        "{dsc}: {sha256} is not what the lock records"
    );
}

/// A board under runit without runit's programs is refused at build time (the image
/// would boot into a pid 1 whose supervisor never starts), and builds once they are
/// selected; nothing is written on the refusal.
#[test]
fn runit_board_needs_runit_s_programs() {
    if !network_tests_with("downloads ~60 MB", &["apt-get"]) {
        return;
    }
    let cache = crate::util::shared_cache();
    let scratch = Scratch::new("build-runit");
    let base = format!(
        "name = \"runit\"\ninherit = \"{}/board-configs/qemu-aarch64.toml\"\n\n[init]\nsupervisor = \"runit\"\n",
        env!("CARGO_MANIFEST_DIR"),
    );
    let out = scratch.join("out");
    let build = |board: &std::path::Path| {
        crate::util::kiln()
            .env("KILN_CACHE", &cache)
            .args(["build", s(board), "-o", s(&out)])
            .output()
            .unwrap()
    };
    let board = scratch.write("runit.toml", &base);
    let output = build(&board);
    assert_eq!(output.status.code(), Some(100), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("[init] supervisor = \"runit\": runsvdir is in no [init] path directory of the image (note: Debian's runit has it"),
        "{}",
        stderr(&output)
    );
    assert!(!out.exists(), "a refused build wrote {}", out.display());
    let board = scratch.write(
        "runit.toml",
        &format!(
            "{base}\n[packages.select]\nrunit = [\"/usr/bin/runsvdir\", \"/usr/bin/runsv\", \"/usr/bin/sv\", \"/usr/bin/svlogd\"]\n"
        ),
    );
    let output = build(&board);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}
