//! Pinned inputs: `BOARD.lock` beside the board file records every package the board
//! resolved to (name, version, architecture, size, SHA-256 of the .deb, the apt suite it
//! came from, and why it is in), with a digest of what the resolution depends on, so a
//! lock that no longer matches its board is detected. While the lock matches, fetching
//! takes exactly those versions and verifies every .deb against it on every use, the
//! cache's included; `--locked` makes a missing or stale lock an error.
//!
//! A bootloader kiln builds from a Debian source package (U-Boot, for boards Debian
//! ships no binary for) is pinned the same way: a `[[source]]` entry records the source
//! package's version and the name, size and SHA-256 of each of its files (the .dsc and
//! what its `Checksums-Sha256` lists), and every file is verified before `dpkg-source`
//! unpacks anything.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::config::Board;
use crate::fetch::{Role, Why};

/// The lock format this kiln writes and reads.
const FORMAT: u32 = 1;
/// The largest lock file kiln reads.
const LOCK_LIMIT: u64 = 4 << 20;

/// `--locked`: a missing or stale lock is an error instead of a fresh resolution.
static REQUIRED: AtomicBool = AtomicBool::new(false);

pub fn require(required: bool) {
    REQUIRED.store(required, Ordering::Relaxed);
}

fn required() -> bool {
    REQUIRED.load(Ordering::Relaxed)
}

/// One locked package.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub why: Why,
    pub size: u64,
    pub sha256: String,
    /// The apt suite and component (`bookworm/main`), or `offline`.
    pub source: String,
}

/// One locked source package: its version and every file (the .dsc among them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceEntry {
    pub version: String,
    /// Sorted by name.
    pub files: Vec<crate::source::dsc::File>,
}

impl SourceEntry {
    /// The .dsc among the files.
    pub fn dsc(&self) -> Option<&crate::source::dsc::File> {
        self.files.iter().find(|file| file.name.ends_with(".dsc"))
    }
}

/// A board's lock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lock {
    pub board: String,
    pub digest: String,
    pub packages: BTreeMap<String, Entry>,
    /// Source packages kiln builds from, by name.
    pub sources: BTreeMap<String, SourceEntry>,
}

impl Lock {
    /// Whether the lock pins what the board takes now: its digest is the board's, and
    /// each source package the board builds from has its entry.
    pub fn matches(&self, digest: &str, roots: &crate::fetch::Roots) -> bool {
        self.digest == digest
            && roots
                .sources
                .iter()
                .all(|name| self.sources.contains_key(name))
    }
}

/// Where a board's lock lives: `BOARD.lock` beside `BOARD.toml`.
pub fn path(board: &Board) -> PathBuf {
    board.file.with_extension("lock")
}

/// What the resolution depends on, hashed: the lock format, the arch, and the board's
/// package roots (include, exclude, select, boot-file packages, kernel, and the source
/// packages a bootloader is built from). Other keys (the command line, overlays) do not
/// change which packages a board takes.
pub fn digest(board: &Board, roots: &crate::fetch::Roots) -> String {
    let mut text = format!("kiln lock {FORMAT}\narch {}\n", board.arch.debian());
    for (key, names) in [
        ("include", &roots.include),
        ("select", &roots.select),
        ("boot-files", &roots.boot_files),
    ] {
        let _ = writeln!(text, "{key} {}", names.join(" "));
    }
    let exclude: Vec<&str> = roots.exclude.iter().map(String::as_str).collect();
    let _ = writeln!(text, "exclude {}", exclude.join(" "));
    let _ = writeln!(text, "kernel {}", roots.kernel.as_deref().unwrap_or("-"));
    // Only boards that build from source have the line, so other boards' locks stand.
    if !roots.sources.is_empty() {
        let _ = writeln!(text, "sources {}", roots.sources.join(" "));
    }
    format!("sha256:{}", hex(&Sha256::digest(text.as_bytes())))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// SHA-256 and size of a file, streamed.
pub fn hash_file(path: &Path) -> Result<(String, u64)> {
    let mut file = crate::host::input::open(path, false)
        .with_context(|| format!("unable to open {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    let mut size = 0u64;
    loop {
        let read = file
            .read(&mut buffer)
            .with_context(|| format!("unable to read {}", path.display()))?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
        size += read as u64;
    }
    Ok((hex(&hasher.finalize()), size))
}

/// The lock as written: TOML, packages sorted by name.
pub fn render(lock: &Lock) -> String {
    let quote = |text: &str| toml::Value::String(text.to_string()).to_string();
    let mut out = format!(
        "# kiln lock file: the exact packages of this board, for rebuilding it bit for bit.\n# Written by `kiln lock`; commit it beside the board.\nversion = {FORMAT}\nboard = {}\ndigest = {}\n",
        quote(&lock.board),
        quote(&lock.digest)
    );
    for (name, entry) in &lock.packages {
        let why = &entry.why;
        let _ = write!(
            out,
            "\n[[package]]\nname = {}\nversion = {}\narchitecture = {}\nsize = {}\nsha256 = {}\nsource = {}\nrole = {}\n",
            quote(name),
            quote(&why.version),
            quote(&why.architecture),
            entry.size,
            quote(&entry.sha256),
            quote(&entry.source),
            quote(why.role.name()),
        );
        if let Some(wanted_by) = &why.wanted_by {
            let _ = writeln!(out, "wanted_by = {}", quote(wanted_by));
        }
        if let Some(via) = &why.via {
            let _ = writeln!(out, "via = {}", quote(via));
        }
    }
    for (name, entry) in &lock.sources {
        let _ = write!(
            out,
            "\n[[source]]\npackage = {}\nversion = {}\n",
            quote(name),
            quote(&entry.version)
        );
        for file in &entry.files {
            let _ = write!(
                out,
                "\n[[source.file]]\nname = {}\nsize = {}\nsha256 = {}\n",
                quote(&file.name),
                file.size,
                quote(&file.sha256)
            );
        }
    }
    out
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLock {
    version: u32,
    board: String,
    digest: String,
    #[serde(default)]
    package: Vec<RawEntry>,
    #[serde(default)]
    source: Vec<RawSource>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    package: String,
    version: String,
    #[serde(default)]
    file: Vec<RawSourceFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSourceFile {
    name: String,
    size: u64,
    sha256: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    name: String,
    version: String,
    architecture: String,
    size: u64,
    sha256: String,
    source: String,
    role: String,
    wanted_by: Option<String>,
    via: Option<String>,
}

/// Reads a lock file; `None` when there is none. A lock that does not parse is bad input.
pub fn read(path: &Path) -> Result<Option<Lock>> {
    if !path.exists() {
        return Ok(None);
    }
    let bad = |what: String| crate::error::Input(format!("{}: {what}", path.display()));
    let bytes = crate::host::input::read(path, LOCK_LIMIT, "a lock file")
        .with_context(|| format!("unable to read {}", path.display()))?;
    let text = String::from_utf8(bytes).map_err(|_| bad("not UTF-8 text".to_string()))?;
    let raw: RawLock = toml::from_str(&text).map_err(|err| bad(err.to_string()))?;
    if raw.version != FORMAT {
        bail!(bad(format!(
            "lock format {} (this kiln reads {FORMAT}; note: rewrite it with `kiln lock --update`)",
            raw.version
        )));
    }
    let mut packages = BTreeMap::new();
    for entry in raw.package {
        let valid_hash = entry.sha256.len() == 64
            && entry
                .sha256
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !valid_hash {
            bail!(bad(format!(
                "package {}: sha256 {:?} is not 64 hex digits",
                entry.name, entry.sha256
            )));
        }
        crate::config::check_package_name("[[package]] name", &entry.name)
            .map_err(|(_, what)| bad(what))?;
        let plain = |field: &str, value: &str| -> Result<()> {
            let ok = value.starts_with(|c: char| c.is_ascii_alphanumeric())
                && value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+-.~:".contains(&b));
            if ok {
                Ok(())
            } else {
                bail!(bad(format!(
                    "package {}: {field} {value:?} is not a Debian {field}",
                    entry.name
                )))
            }
        };
        plain("version", &entry.version)?;
        plain("architecture", &entry.architecture)?;
        let role = Role::from_name(&entry.role).ok_or_else(|| {
            bad(format!(
                "package {}: role {:?} is not one kiln writes",
                entry.name, entry.role
            ))
        })?;
        let why = Why {
            version: entry.version,
            architecture: entry.architecture,
            role,
            wanted_by: entry.wanted_by,
            via: entry.via,
        };
        let locked = Entry {
            why,
            size: entry.size,
            sha256: entry.sha256,
            source: entry.source,
        };
        if packages.insert(entry.name.clone(), locked).is_some() {
            bail!(bad(format!("package {} is locked twice", entry.name)));
        }
    }
    let mut sources = BTreeMap::new();
    for source in raw.source {
        let name = &source.package;
        crate::config::check_package_name("[[source]] package", name)
            .map_err(|(_, what)| bad(what))?;
        if !crate::source::dsc::is_version(&source.version) {
            bail!(bad(format!(
                "source {name}: version {:?} is not a Debian version",
                source.version
            )));
        }
        let mut files = Vec::new();
        for file in source.file {
            crate::source::dsc::check_file_name(name, &file.name)
                .map_err(|what| bad(format!("source {name}: {what}")))?;
            if !crate::source::dsc::is_sha256(&file.sha256) {
                bail!(bad(format!(
                    "source {name}: {}: sha256 {:?} is not 64 hex digits",
                    file.name, file.sha256
                )));
            }
            files.push(crate::source::dsc::File {
                name: file.name,
                size: file.size,
                sha256: file.sha256,
            });
        }
        files.sort();
        if files.windows(2).any(|pair| pair[0].name == pair[1].name) {
            bail!(bad(format!("source {name}: a file is listed twice")));
        }
        let entry = SourceEntry {
            version: source.version,
            files,
        };
        if entry
            .files
            .iter()
            .filter(|f| f.name.ends_with(".dsc"))
            .count()
            != 1
        {
            bail!(bad(format!(
                "source {name}: not exactly one .dsc among its files"
            )));
        }
        if sources.insert(name.clone(), entry).is_some() {
            bail!(bad(format!("source {name} is locked twice")));
        }
    }
    Ok(Some(Lock {
        board: raw.board,
        digest: raw.digest,
        packages,
        sources,
    }))
}

/// The lock a fetch must follow: the board's lock when it matches the board; `None`
/// when there is none or it is stale (a warning), unless `--locked` makes either an
/// error.
pub fn for_fetch(board: &Board, roots: &crate::fetch::Roots) -> Result<Option<Lock>> {
    let path = path(board);
    let lock = read(&path)?;
    let want = digest(board, roots);
    match lock {
        Some(lock) if lock.matches(&want, roots) => Ok(Some(lock)),
        Some(_) if required() => bail!(crate::error::Input(format!(
            "{}: stale: the board's packages (or the source packages it builds from) changed since it was written (note: run `kiln lock --update {}`)",
            path.display(),
            board.file.display()
        ))),
        Some(_) => {
            // Once per run: the packages and a source package both ask.
            static WARNED: AtomicBool = AtomicBool::new(false);
            if !WARNED.swap(true, Ordering::Relaxed) {
                eprintln!(
                    "kiln: warning: {} is stale (the board's packages or source packages changed); resolving afresh (note: `kiln lock --update` pins the new set)",
                    path.display()
                );
            }
            Ok(None)
        }
        None if required() => bail!(crate::error::Input(format!(
            "{}: no lock file, and --locked wants one (note: run `kiln lock {}` and commit the lock)",
            path.display(),
            board.file.display()
        ))),
        None => Ok(None),
    }
}

/// A .deb that is not what the lock recorded.
#[derive(Debug, thiserror::Error)]
#[error(
    "{}: {package} {version}: {what}, the lock {} says {want}, this file has {got} (note: the file was changed or corrupted; remove it to download it again, or refresh the lock with `kiln lock --update` if the change is meant)",
    file.display(), lock.display()
)]
pub struct Mismatch {
    pub file: PathBuf,
    pub lock: PathBuf,
    pub package: String,
    pub version: String,
    pub what: &'static str,
    pub want: String,
    pub got: String,
}

/// Checks every fetched .deb against the lock: size, then SHA-256.
pub fn verify(lock: &Lock, lock_path: &Path, debs: &BTreeMap<String, PathBuf>) -> Result<()> {
    for (package, file) in debs {
        let Some(entry) = lock.packages.get(package) else {
            bail!("{package}: fetched but not in {}", lock_path.display());
        };
        let (sha256, size) = hash_file(file)?;
        let mismatch = |what, want: String, got: String| Mismatch {
            file: file.clone(),
            lock: lock_path.to_path_buf(),
            package: package.clone(),
            version: entry.why.version.clone(),
            what,
            want,
            got,
        };
        if size != entry.size {
            return Err(mismatch("size", entry.size.to_string(), size.to_string()).into());
        }
        if sha256 != entry.sha256 {
            return Err(mismatch("SHA-256", entry.sha256.clone(), sha256).into());
        }
    }
    Ok(())
}

/// Checks every file of a locked source package in `dir`: size, then SHA-256.
pub fn verify_source(
    entry: &SourceEntry,
    lock_path: &Path,
    package: &str,
    dir: &Path,
) -> Result<()> {
    for file in &entry.files {
        let path = dir.join(&file.name);
        let (sha256, size) = hash_file(&path)?;
        let mismatch = |what, want: String, got: String| Mismatch {
            file: path.clone(),
            lock: lock_path.to_path_buf(),
            package: format!("source {package}"),
            version: entry.version.clone(),
            what,
            want,
            got,
        };
        if size != file.size {
            return Err(mismatch("size", file.size.to_string(), size.to_string()).into());
        }
        if sha256 != file.sha256 {
            return Err(mismatch("SHA-256", file.sha256.clone(), sha256).into());
        }
    }
    Ok(())
}

/// `kiln lock`: the board's packages resolved afresh (all of them, or with `update`
/// naming some, only those: the others keep their locked versions while the board still
/// takes them), hashed and written to the lock. Returns the lock's path and what changed
/// (`None`: the lock matches the board and was left as it is).
pub fn lock(
    board: &Board,
    offline: Option<&Path>,
    update: Option<&[String]>,
) -> Result<(PathBuf, Option<String>)> {
    let path = path(board);
    let old = read(&path)?;
    let roots = crate::fetch::Roots::of(board);
    let digest = digest(board, &roots);
    if let (Some(old), None) = (&old, update) {
        if old.matches(&digest, &roots) {
            return Ok((path, None));
        }
    }
    let keep: BTreeMap<String, Entry> = match (&old, update) {
        (Some(old), Some(names)) if !names.is_empty() => old
            .packages
            .iter()
            .filter(|(name, _)| !names.contains(name))
            .map(|(name, entry)| (name.clone(), entry.clone()))
            .collect(),
        _ => BTreeMap::new(),
    };
    let fetched = crate::fetch::resolve_fresh(board, offline, update.is_some(), &keep)?;
    let sources = crate::fetch::sources(board, offline, &fetched.why)?;
    let mut packages = BTreeMap::new();
    for (name, file) in &fetched.debs {
        let why = fetched.why[name].clone();
        let (sha256, size) = hash_file(file)?;
        let source = sources
            .get(name)
            .cloned()
            .unwrap_or_else(|| "unknown".to_string());
        packages.insert(
            name.clone(),
            Entry {
                why,
                size,
                sha256,
                source,
            },
        );
    }
    // Source packages: resolved afresh too, unless a partial update names others.
    let mut sources = BTreeMap::new();
    for name in &roots.sources {
        let kept = match (&old, update) {
            (Some(old), Some(names)) if !names.is_empty() && !names.contains(name) => {
                old.sources.get(name).cloned()
            }
            _ => None,
        };
        let entry = match kept {
            Some(entry) => entry,
            None => crate::fetch::source_fresh(board, offline, name)?.entry(),
        };
        sources.insert(name.clone(), entry);
    }
    let lock = Lock {
        board: board.name.clone(),
        digest,
        packages,
        sources,
    };
    let changes = changes(old.as_ref(), &lock);
    crate::host::temp::write_file(&path, render(&lock).as_bytes())?;
    Ok((path, Some(changes)))
}

/// `kiln lock`'s report: packages added, removed and changed.
fn changes(old: Option<&Lock>, new: &Lock) -> String {
    let empty = BTreeMap::new();
    let before = old.map_or(&empty, |lock| &lock.packages);
    let mut out = String::new();
    for (name, entry) in &new.packages {
        match before.get(name) {
            None => {
                let _ = writeln!(out, "+ {name} {}", entry.why.version);
            }
            Some(old) if old.why.version != entry.why.version || old.sha256 != entry.sha256 => {
                let _ = writeln!(out, "~ {name} {} -> {}", old.why.version, entry.why.version);
            }
            Some(_) => {}
        }
    }
    for (name, entry) in before {
        if !new.packages.contains_key(name) {
            let _ = writeln!(out, "- {name} {}", entry.why.version);
        }
    }
    let empty = BTreeMap::new();
    let before = old.map_or(&empty, |lock| &lock.sources);
    for (name, entry) in &new.sources {
        match before.get(name) {
            None => {
                let _ = writeln!(out, "+ source {name} {}", entry.version);
            }
            Some(old) if old != entry => {
                let _ = writeln!(out, "~ source {name} {} -> {}", old.version, entry.version);
            }
            Some(_) => {}
        }
    }
    for (name, entry) in before {
        if !new.sources.contains_key(name) {
            let _ = writeln!(out, "- source {name} {}", entry.version);
        }
    }
    if out.is_empty() {
        out.push_str("no package changed\n");
    }
    out
}

/// What `kiln vendor` copied.
pub struct Vendored {
    pub packages: usize,
    pub sources: usize,
    pub index: PathBuf,
}

/// `kiln vendor`: every locked .deb and every file of each locked source package,
/// fetched and verified, copied into `dir` with a `SHA256SUMS` index, so `--offline DIR`
/// rebuilds the board without the mirror.
pub fn vendor(board: &Board, dir: &Path) -> Result<Vendored> {
    let roots = crate::fetch::Roots::of(board);
    let path = path(board);
    let want = digest(board, &roots);
    let Some(lock) = read(&path)?.filter(|lock| lock.matches(&want, &roots)) else {
        bail!(crate::error::Input(format!(
            "{}: missing or stale; kiln vendor copies what a lock pins (note: run `kiln lock {}` first)",
            path.display(),
            board.file.display()
        )));
    };
    let fetched = crate::fetch::resolve_board(board, None, false)?;
    std::fs::create_dir_all(dir).with_context(|| format!("unable to create {}", dir.display()))?;
    let mut sums = String::new();
    for (name, file) in &fetched.debs {
        let file_name = file
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_else(|| format!("{name}.deb"));
        let bytes =
            std::fs::read(file).with_context(|| format!("unable to read {}", file.display()))?;
        crate::host::temp::write_file(&dir.join(&file_name), &bytes)?;
        let _ = writeln!(sums, "{}  {file_name}", lock.packages[name].sha256);
    }
    for source in crate::fetch::board_sources(board, None)? {
        for file in &source.files {
            let from = source.dir.join(&file.name);
            let bytes = std::fs::read(&from)
                .with_context(|| format!("unable to read {}", from.display()))?;
            crate::host::temp::write_file(&dir.join(&file.name), &bytes)?;
            let _ = writeln!(sums, "{}  {}", file.sha256, file.name);
        }
    }
    let index = dir.join("SHA256SUMS");
    crate::host::temp::write_file(&index, sums.as_bytes())?;
    Ok(Vendored {
        packages: fetched.debs.len(),
        sources: roots.sources.len(),
        index,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Lock {
        let why = |role, wanted_by: Option<&str>| Why {
            version: "1:1.35.0-4+deb12u1+b1".to_string(),
            architecture: "arm64".to_string(),
            role,
            wanted_by: wanted_by.map(str::to_string),
            via: None,
        };
        Lock {
            board: "qemu-aarch64".to_string(),
            digest: "sha256:00".to_string(),
            packages: [
                (
                    "busybox-static".to_string(),
                    Entry {
                        why: why(Role::Install, None),
                        size: 822236,
                        sha256: "7".repeat(64),
                        source: "bookworm/main".to_string(),
                    },
                ),
                (
                    "libc6".to_string(),
                    Entry {
                        why: why(Role::Library, Some("s6")),
                        size: 1,
                        sha256: "a".repeat(64),
                        source: "bookworm-security/main".to_string(),
                    },
                ),
            ]
            .into(),
            sources: [(
                "u-boot".to_string(),
                SourceEntry {
                    version: "2023.01+dfsg-2+deb12u3".to_string(),
                    files: [
                        ("u-boot_2023.01+dfsg-2+deb12u3.debian.tar.xz", 61072, "f"),
                        ("u-boot_2023.01+dfsg-2+deb12u3.dsc", 3612, "d"),
                        ("u-boot_2023.01+dfsg.orig.tar.xz", 15684556, "e"),
                    ]
                    .map(|(name, size, digit)| crate::source::dsc::File {
                        name: name.to_string(),
                        size,
                        sha256: digit.repeat(64),
                    })
                    .to_vec(),
                },
            )]
            .into(),
        }
    }

    #[test]
    fn a_lock_reads_back_as_written() {
        let dir = std::env::temp_dir().join(format!("kiln-lock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("b.lock");
        let text = render(&sample());
        std::fs::write(&file, &text).unwrap();
        assert_eq!(read(&file).unwrap(), Some(sample()));
        expect_test::expect![[r##"
            # kiln lock file: the exact packages of this board, for rebuilding it bit for bit.
            # Written by `kiln lock`; commit it beside the board.
            version = 1
            board = "qemu-aarch64"
            digest = "sha256:00"

            [[package]]
            name = "busybox-static"
            version = "1:1.35.0-4+deb12u1+b1"
            architecture = "arm64"
            size = 822236
            sha256 = "7777777777777777777777777777777777777777777777777777777777777777"
            source = "bookworm/main"
            role = "install"

            [[package]]
            name = "libc6"
            version = "1:1.35.0-4+deb12u1+b1"
            architecture = "arm64"
            size = 1
            sha256 = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
            source = "bookworm-security/main"
            role = "library"
            wanted_by = "s6"

            [[source]]
            package = "u-boot"
            version = "2023.01+dfsg-2+deb12u3"

            [[source.file]]
            name = "u-boot_2023.01+dfsg-2+deb12u3.debian.tar.xz"
            size = 61072
            sha256 = "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"

            [[source.file]]
            name = "u-boot_2023.01+dfsg-2+deb12u3.dsc"
            size = 3612
            sha256 = "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"

            [[source.file]]
            name = "u-boot_2023.01+dfsg.orig.tar.xz"
            size = 15684556
            sha256 = "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee"
        "##]]
        .assert_eq(&text);
        // Hostile locks: bad hashes, versions that would be apt options, unknown roles.
        for (from, to, message) in [
            ("\"7777", "\"x777", "sha256"),
            (
                "version = \"1:1.35",
                "version = \"-o1.35",
                "is not a Debian version",
            ),
            ("role = \"library\"", "role = \"root\"", "role \"root\""),
            ("version = 1\n", "version = 2\n", "lock format 2"),
            (
                "name = \"u-boot_2023.01+dfsg.orig.tar.xz\"",
                "name = \"../u-boot.orig.tar.xz\"",
                "source u-boot: file name \"../u-boot.orig.tar.xz\" is not a file of source package u-boot",
            ),
            (
                "name = \"u-boot_2023.01+dfsg-2+deb12u3.dsc\"",
                "name = \"u-boot_x.tar\"",
                "source u-boot: not exactly one .dsc",
            ),
            ("sha256 = \"dddd", "sha256 = \"DDDD", "sha256 \"DDDD"),
        ] {
            std::fs::write(&file, text.replacen(from, to, 1)).unwrap();
            let err = format!("{:#}", read(&file).unwrap_err());
            assert!(err.contains(message), "{err}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn changes_name_what_moved() {
        let old = sample();
        let mut new = sample();
        new.packages.remove("libc6");
        new.packages.get_mut("busybox-static").unwrap().why.version = "2".to_string();
        assert_eq!(
            changes(Some(&old), &new),
            "~ busybox-static 1:1.35.0-4+deb12u1+b1 -> 2\n- libc6 1:1.35.0-4+deb12u1+b1\n"
        );
    }
}
