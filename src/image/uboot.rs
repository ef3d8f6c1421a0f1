//! U-Boot built from Debian's own `u-boot` source package, for boards Debian ships no
//! binary for (bookworm has no `orangepi_pc`): the source through kiln's private apt
//! state (deb-src added for the host's own mirrors) or `--offline DIR`, the version the
//! board's lock pins and every file verified first (`fetch::source_package`), unpacked
//! with Debian's patches, `make <defconfig>`, the board's Kconfig fragment merged over
//! it, and built with Debian's cross compiler.
//!
//! The result is cached by what decides its bytes: the source version, the defconfig,
//! the fragment, the compiler's version and the output's name. Builds are reproducible:
//! `SOURCE_DATE_EPOCH` fixes U-Boot's version date and time, the build runs in a path
//! fixed by that key, and `-ffile-prefix-map` keeps the path out of the binary anyway.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::arch::Arch;
use crate::config::Board;
use crate::config::boot::UBootSource;
use crate::fetch::SourcePackage;
use crate::host::tool;

/// A built U-Boot: the binary in the cache and where it came from.
#[derive(Clone, Debug)]
pub struct Built {
    pub binary: PathBuf,
    pub what: String,
    /// `what` without where the cache is: the same wherever it was built.
    pub about: String,
    /// The verified source package it was built from.
    pub source: SourcePackage,
}

/// Debian's cross compiler for an arch: (program prefix, package).
fn cross_compiler(arch: Arch) -> (&'static str, &'static str) {
    match arch {
        Arch::Armv7 => ("arm-linux-gnueabihf-", "gcc-arm-linux-gnueabihf"),
        Arch::Aarch64 => ("aarch64-linux-gnu-", "gcc-aarch64-linux-gnu"),
        Arch::X86_64 => ("x86_64-linux-gnu-", "gcc"),
    }
}

/// Host tools the build runs, each with its Debian package.
const BUILD_TOOLS: [(&str, &str); 7] = [
    ("make", "make"),
    ("bison", "bison"),
    ("flex", "flex"),
    ("swig", "swig"),
    ("dtc", "device-tree-compiler"),
    ("dpkg-source", "dpkg-dev"),
    ("bc", "bc"),
];

/// Builds (or takes from the cache) the board's U-Boot.
pub fn build(
    board: &Board,
    source: &UBootSource,
    offline: Option<&Path>,
    mtime: u64,
) -> Result<Built> {
    let UBootSource::Build {
        defconfig,
        binary,
        fragment,
    } = source
    else {
        bail!("not a build");
    };
    let (prefix, compiler_package) = cross_compiler(board.arch);
    let gcc = format!("{prefix}gcc");
    let compiler = tool::run(
        Command::new(find(&gcc, compiler_package)?).arg("--version"),
        None,
    )?
    .stdout
    .lines()
    .next()
    .unwrap_or_default()
    .to_string();
    for (program, package) in BUILD_TOOLS {
        find(program, package)?;
    }
    let fragment_text = match fragment {
        Some(path) => std::fs::read_to_string(path).with_context(|| {
            format!(
                "{}: [boot.uboot] fragment: unable to read {}",
                board.file.display(),
                path.display()
            )
        })?,
        None => String::new(),
    };
    for line in fragment_text.lines() {
        let line = line.trim();
        let ok = line.is_empty()
            || line.starts_with("# CONFIG_") && line.ends_with(" is not set")
            || line.starts_with('#') && !line.starts_with("# CONFIG_")
            || line.starts_with("CONFIG_") && line.contains('=');
        if !ok {
            bail!(crate::error::Input(format!(
                "{}: [boot.uboot] fragment: {line:?} is not a Kconfig line (CONFIG_X=y, CONFIG_X=\"text\" or # CONFIG_X is not set)",
                board.file.display()
            )));
        }
    }
    let cache = crate::fetch::cache_dir().join("u-boot");
    // Verified on every use, the cache's copy included, before anything is unpacked.
    let package = crate::fetch::source_package(board, offline, "u-boot")?;
    let dsc = package.dsc_path();
    let version = package.version.clone();
    let key = {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::hash::DefaultHasher::new();
        (
            &version,
            defconfig,
            &fragment_text,
            &compiler,
            binary,
            mtime,
        )
            .hash(&mut hasher);
        format!("{:016x}", hasher.finish())
    };
    let what = format!("u-boot {version} {defconfig} ({compiler}), built by kiln");
    let dir = cache.join(format!(
        "{}-{key}",
        defconfig.trim_end_matches("_defconfig")
    ));
    let cached = dir.join(binary);
    // One build per key at a time: a second kiln waits, then finds it cached.
    std::fs::create_dir_all(&cache)
        .with_context(|| format!("unable to create {}", cache.display()))?;
    let lock_path = dir.with_extension("lock");
    let lock_file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("unable to open {}", lock_path.display()))?;
    let _lock = nix::fcntl::Flock::lock(lock_file, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, errno)| anyhow::anyhow!("unable to lock {}: {errno}", lock_path.display()))?;
    if cached.is_file() {
        return Ok(Built {
            binary: cached,
            what: format!("{what}, cached in {}", dir.display()),
            about: what,
            source: package,
        });
    }
    let started = Instant::now();
    let work = dir.with_extension("work");
    if work.exists() {
        std::fs::remove_dir_all(&work)
            .with_context(|| format!("unable to remove {}", work.display()))?;
    }
    std::fs::create_dir_all(&work)
        .with_context(|| format!("unable to create {}", work.display()))?;
    let tree = work.join("source");
    let bar = crate::host::progress::spinner(&format!("building U-Boot {defconfig}"));
    bar.0
        .enable_steady_tick(std::time::Duration::from_millis(120));
    tool::run(
        Command::new(tool::find("dpkg-source")?)
            .args(["--no-check", "-x"])
            .arg(&dsc)
            .arg(&tree),
        None,
    )?;
    if !tree.join("configs").join(defconfig).is_file() {
        let stem = defconfig.trim_end_matches("_defconfig");
        let mut near: Vec<String> = std::fs::read_dir(tree.join("configs"))
            .map(|listing| {
                listing
                    .filter_map(|entry| entry.ok())
                    .map(|entry| entry.file_name().to_string_lossy().into_owned())
                    .filter(|name| {
                        name.split('_')
                            .next()
                            .is_some_and(|first| stem.starts_with(first))
                    })
                    .collect()
            })
            .unwrap_or_default();
        near.sort();
        near.truncate(8);
        let _ = std::fs::remove_dir_all(&work); // best effort: the error matters more
        bail!(crate::error::Input(format!(
            "{}: [boot.uboot] defconfig: u-boot {version} has no configs/{defconfig}{}",
            board.file.display(),
            if near.is_empty() {
                String::new()
            } else {
                format!("\nnote: near matches: {}", near.join(", "))
            }
        )));
    }
    let build = work.join("build");
    let jobs = std::thread::available_parallelism().map_or(1, |n| n.get());
    let make = |args: &[&str]| -> Result<()> {
        let mut command = Command::new(tool::find("make")?);
        command
            .arg("-C")
            .arg(&tree)
            .arg(format!("O={}", build.display()))
            .arg(format!("CROSS_COMPILE={prefix}"))
            .arg(format!(
                "KCFLAGS=-ffile-prefix-map={}=. -ffile-prefix-map={}=.",
                tree.display(),
                build.display()
            ))
            .args(args)
            .env("SOURCE_DATE_EPOCH", mtime.to_string())
            .env("KBUILD_BUILD_USER", "kiln")
            .env("KBUILD_BUILD_HOST", "kiln")
            .env("LC_ALL", "C")
            .env("TZ", "UTC");
        tool::run(&mut command, None).map(|_| ())
    };
    make(&[defconfig])?;
    if !fragment_text.is_empty() {
        let config = build.join(".config");
        let mut text = std::fs::read_to_string(&config)
            .with_context(|| format!("unable to read {}", config.display()))?;
        text.push('\n');
        text.push_str(&fragment_text);
        std::fs::write(&config, text)
            .with_context(|| format!("unable to write {}", config.display()))?;
        make(&["olddefconfig"])?;
        // Every line of the fragment must have survived Kconfig's dependencies.
        let merged = std::fs::read_to_string(&config)
            .with_context(|| format!("unable to read {}", config.display()))?;
        for line in fragment_text.lines().map(str::trim) {
            let setting = line.starts_with("CONFIG_") || line.ends_with(" is not set");
            if setting && !merged.lines().any(|have| have == line) {
                let _ = std::fs::remove_dir_all(&work); // best effort: the error matters more
                bail!(crate::error::Input(format!(
                    "{}: [boot.uboot] fragment: {line:?} did not survive make olddefconfig over {defconfig} (a dependency overrides it)",
                    board.file.display()
                )));
            }
        }
    }
    make(&[&format!("-j{jobs}")])?;
    let output = build.join(binary);
    if !output.is_file() {
        bail!(crate::error::Input(format!(
            "{}: [boot.uboot] binary: the {defconfig} build made no {binary}",
            board.file.display()
        )));
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("unable to create {}", dir.display()))?;
    for name in [binary.as_str(), ".config"] {
        std::fs::copy(build.join(name), dir.join(name))
            .with_context(|| format!("unable to copy {name} into {}", dir.display()))?;
    }
    drop(bar);
    std::fs::remove_dir_all(&work)
        .with_context(|| format!("unable to remove {}", work.display()))?;
    eprintln!(
        "kiln: built {what} in {:.0} s, cached in {}",
        started.elapsed().as_secs_f64(),
        dir.display()
    );
    Ok(Built {
        binary: cached,
        about: what.clone(),
        what,
        source: package,
    })
}

/// A build tool, or which package to install for it.
fn find(program: &str, package: &str) -> Result<PathBuf> {
    tool::find(program).map_err(|_| {
        anyhow::anyhow!(
            "{program} is not installed\nnote: apt-get install --no-install-recommends {package} (ci/install-packages installs what a U-Boot build needs)"
        )
    })
}
