//! `kiln lock`, `--locked`, `kiln vendor` and the SBOM (issue 14): pinned packages give
//! the same image from an empty cache and from a vendor directory, a changed .deb is
//! refused, a stale lock is an error under `--locked`, and every shipped board's SBOM
//! passes a real SPDX validator.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::util::{Scratch, network_tests_with, s, stderr};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn kiln(cache: &Path, args: &[&str]) -> Output {
    crate::util::kiln()
        .env("KILN_CACHE", cache)
        .args(args)
        .output()
        .unwrap()
}

fn shipped(board: &str) -> String {
    format!("{ROOT}/board-configs/{board}.toml")
}

/// A copy of qemu-aarch64 in `dir` (so its lock is written there), with its overlay.
fn board_copy(scratch: &Scratch, include: &str) -> PathBuf {
    scratch.write(
        "b.toml",
        &format!(
            "name = \"b\"\ninherit = \"{ROOT}/board-configs/qemu-aarch64.toml\"\n\n[packages]\ninclude = [{include}]\nexclude = [\"libgcc-s1\", \"gcc-12-base\"]\n\n[[overlays]]\nsource = \"{ROOT}/initramfs\"\ndest = \"/\"\n"
        ),
    )
}

#[test]
fn locked_builds_are_identical_from_an_empty_cache_and_from_a_vendor_directory() {
    if !network_tests_with("downloads ~60 MB twice", &["apt-get"]) {
        return;
    }
    let warm = crate::util::shared_cache();
    let board = shipped("qemu-aarch64");
    let scratch = Scratch::new("lock-rebuild");
    let out = |name: &str| scratch.join(name);
    let warm_build = kiln(&warm, &["build", "--locked", &board, "-o", s(&out("warm"))]);
    assert!(warm_build.status.success(), "{}", stderr(&warm_build));
    // An empty cache: every locked version downloaded again and verified.
    let empty = scratch.join("empty-cache");
    let cold_build = kiln(
        &empty,
        &["build", "--locked", &board, "-o", s(&out("cold"))],
    );
    assert!(cold_build.status.success(), "{}", stderr(&cold_build));
    let vendor = scratch.join("vendor");
    let vendored = kiln(&warm, &["vendor", &board, s(&vendor)]);
    assert!(vendored.status.success(), "{}", stderr(&vendored));
    let sums = std::fs::read_to_string(vendor.join("SHA256SUMS")).unwrap();
    // Nine packages and systemd-boot-efi, the UEFI chain's loader.
    assert_eq!(sums.lines().count(), 10, "{sums}");
    // The index is what sha256sum checks.
    let check = Command::new("sha256sum")
        .current_dir(&vendor)
        .args(["--check", "--quiet", "SHA256SUMS"])
        .status()
        .unwrap();
    assert!(check.success());
    let offline_build = kiln(
        &scratch.join("no-cache"),
        &[
            "build",
            "--locked",
            &board,
            "-o",
            s(&out("offline")),
            "--offline",
            s(&vendor),
        ],
    );
    assert!(offline_build.status.success(), "{}", stderr(&offline_build));
    for file in ["qemu-aarch64.cpio.gz", "qemu-aarch64.spdx.json"] {
        let want = std::fs::read(out("warm").join(file)).unwrap();
        for other in ["cold", "offline"] {
            let got = std::fs::read(out(other).join(file)).unwrap();
            assert!(
                got == want,
                "{file}: the {other} build differs from the warm one"
            );
        }
    }
}

#[test]
fn a_changed_deb_in_the_cache_is_refused_naming_it() {
    if !network_tests_with("downloads ~60 MB", &["apt-get"]) {
        return;
    }
    let warm = crate::util::shared_cache();
    let board = shipped("qemu-aarch64");
    // Fill the shared cache, then copy it and change one byte of one .deb.
    let fetched = kiln(&warm, &["fetch", "--locked", &board]);
    assert!(fetched.status.success(), "{}", stderr(&fetched));
    let scratch = Scratch::new("lock-tamper");
    let cache = scratch.join("cache");
    std::fs::create_dir_all(cache.join("debs")).unwrap();
    let copy = Command::new("cp")
        .args(["-a", s(&warm.join("debs/arm64")), s(&cache.join("debs"))])
        .status()
        .unwrap();
    assert!(copy.success());
    // kiln runs unprivileged in the tests: the copy must be its to use.
    let opened = Command::new("chmod")
        .args(["-R", "a+rwX", s(&cache)])
        .status()
        .unwrap();
    assert!(opened.success());
    let deb = std::fs::read_dir(cache.join("debs/arm64"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| s(path).contains("/execline_"))
        .unwrap();
    let mut bytes = std::fs::read(&deb).unwrap();
    bytes[1000] ^= 0x20;
    std::fs::write(&deb, bytes).unwrap();
    let out = scratch.join("out");
    let output = kiln(&cache, &["build", &board, "-o", s(&out)]);
    assert_eq!(output.status.code(), Some(111), "{}", stderr(&output));
    let text = stderr(&output);
    let lock = std::fs::read_to_string(format!("{ROOT}/board-configs/qemu-aarch64.lock")).unwrap();
    let want = lock
        .split("\n\n")
        .find(|entry| entry.contains("name = \"execline\""))
        .and_then(|entry| {
            entry
                .lines()
                .find_map(|line| line.strip_prefix("sha256 = "))
        })
        .unwrap()
        .trim_matches('"');
    for wanted in [
        s(&deb),
        "execline 2.9.3.0-1: SHA-256",
        want,
        "qemu-aarch64.lock",
    ] {
        assert!(text.contains(wanted), "no {wanted:?} in\n{text}");
    }
    assert!(!out.exists(), "a refused build wrote {}", s(&out));
}

#[test]
fn a_stale_or_missing_lock_is_an_error_under_locked() {
    if !network_tests_with("downloads ~60 MB", &["apt-get"]) {
        return;
    }
    let cache = crate::util::shared_cache();
    let scratch = Scratch::new("lock-stale");
    let board = board_copy(&scratch, "\"busybox-static\"");
    let out = scratch.join("out");
    let missing = kiln(&cache, &["build", "--locked", s(&board), "-o", s(&out)]);
    assert_eq!(missing.status.code(), Some(100), "{}", stderr(&missing));
    assert!(stderr(&missing).contains("b.lock: no lock file, and --locked wants one"));
    let locked = kiln(&cache, &["lock", s(&board)]);
    assert!(locked.status.success(), "{}", stderr(&locked));
    assert!(
        stderr(&locked).contains("+ busybox-static "),
        "{}",
        stderr(&locked)
    );
    let again = kiln(&cache, &["lock", s(&board)]);
    assert!(
        stderr(&again).contains("b.lock is up to date"),
        "{}",
        stderr(&again)
    );
    let built = kiln(&cache, &["build", "--locked", s(&board), "-o", s(&out)]);
    assert!(built.status.success(), "{}", stderr(&built));
    // The board now takes another package: the lock no longer matches it.
    board_copy(&scratch, "\"busybox-static\", \"mawk\"");
    let out2 = scratch.join("out2");
    let stale = kiln(&cache, &["build", "--locked", s(&board), "-o", s(&out2)]);
    assert_eq!(stale.status.code(), Some(100), "{}", stderr(&stale));
    assert!(
        stderr(&stale).contains("b.lock: stale"),
        "{}",
        stderr(&stale)
    );
    assert!(!out2.exists());
    // Without --locked, a warning and a fresh resolution; --update pins the new set.
    let fresh = kiln(&cache, &["build", s(&board), "-o", s(&out2)]);
    assert!(fresh.status.success(), "{}", stderr(&fresh));
    assert!(stderr(&fresh).contains("warning: "), "{}", stderr(&fresh));
    let update = kiln(&cache, &["lock", "--update", s(&board)]);
    assert!(update.status.success(), "{}", stderr(&update));
    assert!(stderr(&update).contains("+ mawk "), "{}", stderr(&update));
    let lock = std::fs::read_to_string(scratch.join("b.lock")).unwrap();
    assert!(lock.contains("name = \"mawk\"\n"), "{lock}");
}

/// A Python venv in the shared cache with `packages` installed, made once.
/// Tests run in parallel and several ask for the same venv: a lock makes the second wait
/// for the first, and the `.complete` marker, written last, tells a finished venv from
/// one a killed run left half made (which is made again).
fn python_venv(name: &str, packages: &[&str], scripts: &[(&str, &str)]) -> PathBuf {
    static MAKING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = MAKING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let venv = crate::util::shared_cache().join(name);
    let complete = venv.join(".complete");
    if complete.exists() {
        return venv;
    }
    let _ = std::fs::remove_dir_all(&venv);
    let made = Command::new("python3")
        .args(["-m", "venv", s(&venv)])
        .status()
        .unwrap();
    assert!(made.success(), "python3 -m venv {} failed", venv.display());
    let installed = Command::new(venv.join("bin/python"))
        .args(["-m", "pip", "install", "--quiet"])
        .args(packages)
        .status()
        .unwrap();
    assert!(installed.success(), "pip install {packages:?} failed");
    for (file, text) in scripts {
        std::fs::write(venv.join(file), text).unwrap();
    }
    std::fs::write(&complete, "").unwrap();
    venv
}

/// The SPDX project's own validator, from a venv made once in the shared cache.
pub fn pyspdxtools() -> PathBuf {
    python_venv("spdx-venv", &["spdx-tools"], &[]).join("bin/pyspdxtools")
}

/// The CycloneDX project's own Python library and its JSON-schema validator, from a venv
/// made once in the shared cache; returns the command that validates CycloneDX 1.5 files.
pub fn cyclonedx_validator() -> Command {
    const VALIDATE: &str = "import sys\nfrom cyclonedx.schema import SchemaVersion\nfrom cyclonedx.validation.json import JsonStrictValidator\nerror = JsonStrictValidator(SchemaVersion.V1_5).validate_str(open(sys.argv[1]).read())\nif error:\n    print(str(error)[:2000])\n    sys.exit(1)\n";
    let venv = python_venv(
        "cyclonedx-venv",
        &["cyclonedx-python-lib[json-validation]"],
        &[("validate.py", VALIDATE)],
    );
    let mut command = Command::new(venv.join("bin/python"));
    command.arg(venv.join("validate.py"));
    command
}

#[test]
fn every_shipped_board_has_a_valid_sbom_with_its_locked_packages() {
    if !network_tests_with(
        "downloads packages and the SPDX validator",
        &["apt-get", "python3"],
    ) {
        return;
    }
    let cache = crate::util::shared_cache();
    let validator = pyspdxtools();
    // A document with a field CycloneDX 1.5 does not have fails: the validator judges.
    let scratch = Scratch::new("sbom-cdx-bad");
    let bad = scratch.write(
        "bad.cdx.json",
        "{\"bomFormat\": \"CycloneDX\", \"specVersion\": \"1.5\", \"bogus\": 1}\n",
    );
    let judged = cyclonedx_validator().arg(&bad).output().unwrap();
    assert!(
        !judged.status.success(),
        "the CycloneDX validator passed {}",
        s(&bad)
    );
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
        let scratch = Scratch::new(&format!("sbom-{board}"));
        let output = kiln(
            &cache,
            &[
                "build",
                "--locked",
                "--cyclonedx",
                &shipped(board),
                "-o",
                s(&scratch.path),
            ],
        );
        assert!(output.status.success(), "{board}: {}", stderr(&output));
        let sbom = scratch.join(&format!("{board}.spdx.json"));
        let valid = Command::new(&validator)
            .arg("-i")
            .arg(&sbom)
            .output()
            .unwrap();
        assert!(
            valid.status.success(),
            "{board}: {}{}",
            String::from_utf8_lossy(&valid.stdout),
            stderr(&valid)
        );
        let text = std::fs::read_to_string(&sbom).unwrap();
        let cdx_path = scratch.join(&format!("{board}.cdx.json"));
        let valid = cyclonedx_validator().arg(&cdx_path).output().unwrap();
        assert!(
            valid.status.success(),
            "{board}: {}{}",
            String::from_utf8_lossy(&valid.stdout),
            stderr(&valid)
        );
        let cdx = std::fs::read_to_string(&cdx_path).unwrap();
        let lock = std::fs::read_to_string(format!("{ROOT}/board-configs/{board}.lock")).unwrap();
        // Every package whose files are in the image, with the SHA-256 the lock records.
        let sizes = std::fs::read_to_string(scratch.join(&format!("{board}.sizes"))).unwrap();
        for origin in sizes
            .lines()
            .skip(1)
            .filter_map(|line| line.split('\t').nth(2))
        {
            let Some(entry) = lock
                .split("\n\n")
                .find(|entry| entry.contains(&format!("name = \"{origin}\"\n")))
            else {
                continue; // kiln's own content: busybox applets, the init, users.
            };
            let sha = entry
                .lines()
                .find_map(|line| line.strip_prefix("sha256 = "))
                .unwrap()
                .trim_matches('"');
            assert!(
                text.contains(&format!("\"name\": \"{origin}\", \"SPDXID\"")),
                "{board}: {origin} not in the SBOM"
            );
            assert!(
                text.contains(sha),
                "{board}: {origin}'s SHA-256 {sha} not in the SBOM"
            );
            assert!(
                cdx.contains(&format!("\"name\": \"{origin}\", \"version\"")) && cdx.contains(sha),
                "{board}: {origin} or its SHA-256 not in the CycloneDX SBOM"
            );
        }
        assert!(text.contains("\"relationshipType\": \"GENERATED_FROM\""));
        assert!(text.contains("pkg:deb/debian/busybox-static@"));
    }
}

/// The U-Boot source package is pinned too: a byte changed in the cached .orig tarball is
/// refused before anything is unpacked (exit 111, naming the file, both hashes and the
/// lock), and nothing is written.
#[test]
fn a_changed_source_file_in_the_cache_is_refused_naming_it() {
    if !network_tests_with(
        "downloads the u-boot source (15 MB) and packages",
        &[
            "apt-get", "sfdisk", "debugfs", "e2fsck", "mkfs.fat", "mcopy",
        ],
    ) {
        return;
    }
    let warm = crate::util::shared_cache();
    let board = shipped("orangepi-pc");
    // Fill the shared cache with the locked source (and .debs): vendoring fetches both.
    let scratch = Scratch::new("lock-source-tamper");
    let vendored = kiln(&warm, &["vendor", &board, s(&scratch.join("vendor"))]);
    assert!(vendored.status.success(), "{}", stderr(&vendored));
    let cache = scratch.join("cache");
    std::fs::create_dir_all(&cache).unwrap();
    for link in ["apt", "debs"] {
        std::os::unix::fs::symlink(warm.join(link), cache.join(link)).unwrap();
    }
    let copy = Command::new("cp")
        .args(["-a", s(&warm.join("sources")), s(&cache)])
        .status()
        .unwrap();
    assert!(copy.success());
    // kiln runs unprivileged in the tests: the copy must be its to use.
    let opened = Command::new("chmod")
        .args(["-R", "a+rwX", s(&cache)])
        .status()
        .unwrap();
    assert!(opened.success());
    let orig = std::fs::read_dir(cache.join("sources"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| s(path).ends_with(".orig.tar.xz"))
        .unwrap();
    let mut bytes = std::fs::read(&orig).unwrap();
    bytes[5000] ^= 0x20;
    std::fs::write(&orig, bytes).unwrap();
    let got = crate::util::tool("sha256sum", &[s(&orig)], None);
    let got = got.split(' ').next().unwrap();
    let out = scratch.join("out");
    std::fs::create_dir_all(&out).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    let card = out.join("opi.img");
    let output = kiln(&cache, &["image", &board, "-o", s(&card)]);
    assert_eq!(output.status.code(), Some(111), "{}", stderr(&output));
    let text = stderr(&output);
    let lock = std::fs::read_to_string(format!("{ROOT}/board-configs/orangepi-pc.lock")).unwrap();
    let want = lock
        .split("\n\n")
        .find(|entry| entry.contains(".orig.tar.xz\""))
        .and_then(|entry| {
            entry
                .lines()
                .find_map(|line| line.strip_prefix("sha256 = "))
        })
        .unwrap()
        .trim_matches('"');
    for wanted in [
        &format!(
            "{}: source u-boot 2023.01+dfsg-2+deb12u3: SHA-256",
            s(&orig)
        ),
        want,
        got,
        "orangepi-pc.lock",
    ] {
        assert!(text.contains(wanted), "no {wanted:?} in\n{text}");
    }
    let left: Vec<_> = std::fs::read_dir(&out).unwrap().collect();
    assert!(left.is_empty(), "a refused image left {left:?}");
    // Nothing was unpacked or built either.
    assert!(!cache.join("u-boot").exists(), "U-Boot was built");
}

/// A lock written before source packages were pinned (its digest without them, no
/// [[source]] entry) no longer matches a board that builds U-Boot from source: a warning
/// and a fresh resolution, exit 100 under --locked; `kiln lock` adds the entry.
#[test]
fn a_lock_without_the_source_entry_is_stale() {
    if !network_tests_with(
        "downloads the u-boot source (15 MB) and packages",
        &["apt-get"],
    ) {
        return;
    }
    let cache = crate::util::shared_cache();
    let scratch = Scratch::new("lock-no-source");
    let board = scratch.write(
        "b.toml",
        &format!("name = \"b\"\ninherit = \"{ROOT}/board-configs/orangepi-pc.toml\"\n"),
    );
    let current =
        std::fs::read_to_string(format!("{ROOT}/board-configs/orangepi-pc.lock")).unwrap();
    let (without, _) = current.split_once("\n[[source]]\n").unwrap();
    // The digest the previous kiln wrote for orangepi-pc, and the current one without the entry.
    let old = without.replace(
        without
            .lines()
            .find(|line| line.starts_with("digest = "))
            .unwrap(),
        "digest = \"sha256:b74ed10b488384c4674f2ef4d4a296a4aa93cae83371955c9bd024a3ad7eea40\"",
    );
    for text in [old.as_str(), without] {
        scratch.write("b.lock", text);
        let locked = kiln(&cache, &["fetch", "--locked", s(&board)]);
        assert_eq!(locked.status.code(), Some(100), "{}", stderr(&locked));
        assert!(
            stderr(&locked).contains("b.lock: stale"),
            "{}",
            stderr(&locked)
        );
        let fresh = kiln(&cache, &["fetch", s(&board)]);
        assert!(fresh.status.success(), "{}", stderr(&fresh));
        assert!(
            stderr(&fresh).contains("b.lock is stale"),
            "{}",
            stderr(&fresh)
        );
    }
    let relocked = kiln(&cache, &["lock", s(&board)]);
    assert!(relocked.status.success(), "{}", stderr(&relocked));
    assert!(
        stderr(&relocked).contains("+ source u-boot "),
        "{}",
        stderr(&relocked)
    );
    let lock = std::fs::read_to_string(scratch.join("b.lock")).unwrap();
    assert!(
        lock.contains("\n[[source]]\npackage = \"u-boot\"\n"),
        "{lock}"
    );
    let fetched = kiln(&cache, &["fetch", "--locked", s(&board)]);
    assert!(fetched.status.success(), "{}", stderr(&fetched));
}
