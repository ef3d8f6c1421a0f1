//! Getting a board's .deb files: the Depends closure of its packages, downloaded through
//! the host's own apt configuration into kiln's cache, without root and without touching
//! the host's dpkg architectures: each target arch gets a private apt state directory
//! (lists, caches, an empty dpkg status) under the cache. `--offline DIR` takes the .debs
//! from a directory instead, reading their control files.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::arch::Arch;
use crate::source::deb;

/// Where kiln keeps downloads: `$KILN_CACHE`, else `$XDG_CACHE_HOME/kiln`, else
/// `~/.cache/kiln`.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("KILN_CACHE") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(dir).join("kiln");
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
    home.join(".cache/kiln")
}

/// One package's index fields.
#[derive(Clone, Debug)]
pub struct Stanza {
    pub package: String,
    pub version: String,
    pub architecture: String,
    /// Depends and Pre-Depends, each a list of alternatives (names only).
    pub depends: Vec<Vec<String>>,
    /// The virtual packages it provides (names only).
    pub provides: Vec<String>,
}

impl Stanza {
    fn from_fields(fields: &BTreeMap<String, String>) -> Option<Stanza> {
        let mut depends = Vec::new();
        for key in ["Pre-Depends", "Depends"] {
            if let Some(value) = fields.get(key) {
                depends.extend(parse_depends(value));
            }
        }
        let provides = fields
            .get("Provides")
            .map(|value| parse_depends(value).into_iter().flatten().collect())
            .unwrap_or_default();
        Some(Stanza {
            package: fields.get("Package")?.clone(),
            version: fields.get("Version")?.clone(),
            architecture: fields.get("Architecture")?.clone(),
            depends,
            provides,
        })
    }
}

/// `a (>= 1), b | c:any` → `[[a], [b, c]]`.
pub fn parse_depends(value: &str) -> Vec<Vec<String>> {
    value
        .split(',')
        .map(|group| {
            group
                .split('|')
                .filter_map(|alternative| {
                    let name = alternative.split_whitespace().next()?;
                    let name = name.split(':').next()?;
                    (!name.is_empty()).then(|| name.to_string())
                })
                .collect::<Vec<_>>()
        })
        .filter(|group| !group.is_empty())
        .collect()
}

/// A package the board needs that the index (or the offline directory) lacks.
#[derive(Debug, thiserror::Error)]
#[error(
    "package {package} (needed by {wanted_by}) is not available for this arch\nnote: check its name, that it exists for the board's arch, or the --offline directory"
)]
pub struct MissingPackage {
    pub package: String,
    pub wanted_by: String,
}

/// A package that does not exist is input.
pub fn classify(cause: &(dyn std::error::Error + 'static)) -> Option<crate::error::Kind> {
    cause
        .is::<MissingPackage>()
        .then_some(crate::error::Kind::Input)
}

/// Finds the index stanzas of some package names, keyed by the name asked for: a virtual
/// name maps to the stanza of a package that provides it; unknown names are left out.
pub type Lookup<'a> = dyn FnMut(&[String]) -> Result<BTreeMap<String, Stanza>> + 'a;

/// A package in a closure, and why it is there.
#[derive(Clone, Debug)]
pub struct Resolved {
    pub stanza: Stanza,
    /// The package whose Depends (or Pre-Depends) pulled it in; `None` for a root.
    pub wanted_by: Option<String>,
    /// The virtual name it was taken for, when it came in through Provides.
    pub via: Option<String>,
}

/// The Depends (and Pre-Depends) closure of `roots`, as apt would install it: for each
/// dependency the first alternative that exists is taken, a virtual name is satisfied by
/// a package that provides it (one already in the closure first), and nothing in
/// `exclude` is entered. Errors name the package that needs a missing one.
pub fn closure(
    roots: &[String],
    exclude: &BTreeSet<String>,
    lookup: &mut Lookup,
) -> Result<BTreeMap<String, Resolved>> {
    let mut known: BTreeMap<String, Resolved> = BTreeMap::new();
    // Virtual names (and names asked for) → the package in the closure that answers them.
    let mut answered: BTreeMap<String, String> = BTreeMap::new();
    let mut frontier: Vec<(String, Option<String>)> =
        roots.iter().map(|root| (root.clone(), None)).collect();
    while !frontier.is_empty() {
        let wanted: Vec<String> = frontier
            .iter()
            .map(|(name, _)| name.clone())
            .filter(|name| !known.contains_key(name) && !answered.contains_key(name))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let found = lookup(&wanted)?;
        let mut next = Vec::new();
        for (name, wanted_by) in frontier {
            if known.contains_key(&name) || answered.contains_key(&name) {
                continue;
            }
            let Some(stanza) = found.get(&name) else {
                return Err(MissingPackage {
                    package: name,
                    wanted_by: wanted_by.unwrap_or_else(|| "the board".to_string()),
                }
                .into());
            };
            let package = stanza.package.clone();
            if exclude.contains(&package) {
                continue;
            }
            answered.insert(name.clone(), package.clone());
            if known.contains_key(&package) {
                continue;
            }
            for virtual_name in &stanza.provides {
                answered
                    .entry(virtual_name.clone())
                    .or_insert_with(|| package.clone());
            }
            for group in &stanza.depends {
                let satisfied = |alternative: &String| {
                    exclude.contains(alternative)
                        || known.contains_key(alternative)
                        || answered.contains_key(alternative)
                        || *alternative == package
                };
                if group.iter().any(satisfied) {
                    continue;
                }
                // Prefer an alternative that is available; the index tells which.
                let choice = if group.len() == 1 {
                    group[0].clone()
                } else {
                    let available = lookup(group)?;
                    group
                        .iter()
                        .find(|alternative| available.contains_key(*alternative))
                        .cloned()
                        .unwrap_or_else(|| group[0].clone())
                };
                next.push((choice, Some(package.clone())));
            }
            let via = (name != package).then_some(name);
            known.insert(
                package,
                Resolved {
                    stanza: stanza.clone(),
                    wanted_by,
                    via,
                },
            );
        }
        frontier = next;
    }
    Ok(known)
}

/// apt with a private state directory for one target arch. apt runs with its own
/// locking off (it would want root's lock files), so kiln holds an exclusive lock on
/// the state for as long as the `Apt` lives: two kiln runs never update one list at once.
pub struct Apt {
    pub arch: Arch,
    state: PathBuf,
    /// A private sources.list.d (the host's parts linked, plus kiln's extra file), when
    /// the state adds to the host's sources.
    parts: Option<PathBuf>,
    _lock: nix::fcntl::Flock<fs::File>,
}

/// Archive parts kiln's apt state adds to the host's sources, for the host's own mirrors.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extra {
    /// Components besides those the host enables, e.g. `non-free-firmware`.
    pub components: Vec<String>,
    /// Source packages (`deb-src` of `main` and `components`).
    pub sources: bool,
}

impl Extra {
    /// The archive components a board adds (`[packages] components`).
    pub fn of(board: &crate::config::Board) -> Extra {
        Extra {
            components: board.packages.components.clone(),
            sources: false,
        }
    }

    /// The state directory's name: the arch, then each addition, so boards that need
    /// different archive parts never share (and churn) one set of lists.
    fn state_name(&self, arch: Arch) -> String {
        let mut name = arch.debian().to_string();
        for component in &self.components {
            name.push('+');
            name.push_str(component);
        }
        if self.sources {
            name.push_str("+src");
        }
        name
    }
}

impl Apt {
    /// An apt state whose sources are the host's plus `extra` for the host's own mirrors.
    pub fn with_extra(cache: &Path, arch: Arch, extra: &Extra) -> Result<Apt> {
        let state = cache.join("apt").join(extra.state_name(arch));
        for dir in ["lists/partial", "cache/archives/partial"] {
            fs::create_dir_all(state.join(dir))
                .with_context(|| format!("unable to create {}", state.join(dir).display()))?;
        }
        let status = state.join("status");
        if !status.exists() {
            fs::write(&status, "")
                .with_context(|| format!("unable to create {}", status.display()))?;
        }
        let lock_path = state.join("kiln.lock");
        let lock_file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .with_context(|| format!("unable to open {}", lock_path.display()))?;
        let lock = nix::fcntl::Flock::lock(lock_file, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, errno)| {
                anyhow::anyhow!("unable to lock {}: {errno}", lock_path.display())
            })?;
        let parts = (extra != &Extra::default())
            .then(|| write_parts(&state, extra))
            .transpose()?;
        Ok(Apt {
            arch,
            state,
            parts,
            _lock: lock,
        })
    }

    fn options(&self) -> Vec<String> {
        let state = self.state.display();
        // apt drops to its sandbox user for downloads; make that the user kiln runs as,
        // who owns the private state.
        let user = nix::unistd::User::from_uid(nix::unistd::geteuid())
            .ok()
            .flatten()
            .map_or_else(|| "root".to_string(), |user| user.name);
        let arch = self.arch.debian();
        [
            format!("Dir::State={state}"),
            format!("Dir::State::Lists={state}/lists"),
            format!("Dir::State::status={state}/status"),
            format!("Dir::Cache={state}/cache"),
            format!("Dir::Cache::Archives={state}/cache/archives"),
            format!("APT::Architecture={arch}"),
            format!("APT::Architectures={arch}"),
            "Debug::NoLocking=1".to_string(),
            format!("APT::Sandbox::User={user}"),
        ]
        .into_iter()
        .chain(
            self.parts
                .iter()
                .map(|parts| format!("Dir::Etc::SourceParts={}", parts.display())),
        )
        .flat_map(|option| ["-o".to_string(), option])
        .collect()
    }

    pub fn run(&self, program: &str, args: &[&str], dir: Option<&Path>) -> Result<String> {
        let mut command = Command::new(crate::host::tool::find(program)?);
        command.args(self.options()).args(args).env("LC_ALL", "C");
        if let Some(dir) = dir {
            command.current_dir(dir);
        }
        let ran = crate::host::tool::run(&mut command, None).with_context(|| {
            format!("{program} {} failed (note: kiln fetches through the host's apt; use --offline DIR without it)", args.join(" "))
        })?;
        Ok(ran.stdout)
    }

    /// Where the resolution of these roots is remembered: keyed by the roots, the
    /// exclusions, the kernel and the time apt's lists were last updated.
    fn resolution_memo(
        &self,
        roots: &[&Vec<String>],
        exclude: &BTreeSet<String>,
        kernel: Option<&str>,
    ) -> PathBuf {
        use std::hash::{Hash, Hasher};
        let updated = fs::metadata(self.state.join("updated"))
            .and_then(|meta| meta.modified())
            .ok();
        let mut hasher = std::hash::DefaultHasher::new();
        // The memo's format is part of the key: an older kiln's memo is not read.
        let format = "roles 1";
        (format, self.arch.debian(), roots, exclude, kernel, updated).hash(&mut hasher);
        self.state
            .join("resolved")
            .join(format!("{:016x}", hasher.finish()))
    }

    /// `apt-get update` for this arch, unless its lists are younger than a day.
    pub fn update(&self, force: bool) -> Result<()> {
        let stamp = self.state.join("updated");
        let fresh = fs::metadata(&stamp)
            .and_then(|meta| meta.modified())
            .ok()
            .and_then(|time| time.elapsed().ok())
            .is_some_and(|age| age.as_secs() < 86_400);
        if fresh && !force {
            return Ok(());
        }
        // A foreign-arch index out of sync makes update exit 100 while what kiln needs is
        // there; missing packages are caught by `show` below. Only a clean update counts
        // as fresh, so a failed one is retried next time.
        match self.run("apt-get", &["-q", "update"], None) {
            Ok(_) => fs::write(&stamp, "")
                .with_context(|| format!("unable to write {}", stamp.display()))?,
            Err(err) => eprintln!(
                "kiln: warning: {}",
                crate::error::printable(&format!("{err:#}"))
            ),
        }
        Ok(())
    }

    /// Candidate stanzas of the named packages; names apt does not know are left out.
    pub fn show(&self, names: &[String]) -> Result<BTreeMap<String, Stanza>> {
        let mut found = BTreeMap::new();
        let mut parse = |text: &str| {
            for block in text.split("\n\n") {
                if let Some(stanza) = Stanza::from_fields(&deb::parse_fields(block)) {
                    found.insert(stanza.package.clone(), stanza);
                }
            }
        };
        // One call for all (each loads apt's whole cache, about half a second); apt-cache
        // skips unknown and purely virtual names. Should it fail, one call per name.
        if names.is_empty() {
            return Ok(found);
        }
        let mut args = vec!["show", "--no-all-versions"];
        args.extend(names.iter().map(String::as_str));
        if let Ok(text) = self.run("apt-cache", &args, None) {
            parse(&text);
        } else {
            for name in names {
                if let Ok(text) = self.run("apt-cache", &["show", "--no-all-versions", name], None)
                {
                    parse(&text);
                }
            }
        }
        // Names apt-cache did not show may be virtual: the first package (by name) that
        // provides one and has a candidate answers it.
        for name in names {
            if found.contains_key(name) {
                continue;
            }
            let Ok(text) = self.run("apt-cache", &["showpkg", name], None) else {
                continue;
            };
            let providers = reverse_provides(&text);
            if providers.is_empty() {
                continue;
            }
            let candidates = self.show(&providers)?;
            if let Some(stanza) = providers.iter().find_map(|p| candidates.get(p)) {
                found.insert(name.clone(), stanza.clone());
            }
        }
        Ok(found)
    }

    /// Downloads the packages' candidate versions into `dir` (skipping those present)
    /// and returns package → .deb path.
    pub fn download(
        &self,
        packages: &BTreeMap<String, Why>,
        dir: &Path,
    ) -> Result<BTreeMap<String, PathBuf>> {
        fs::create_dir_all(dir).with_context(|| format!("unable to create {}", dir.display()))?;
        let mut paths = BTreeMap::new();
        let mut missing = Vec::new();
        for (package, why) in packages {
            let file = dir.join(format!(
                "{package}_{}_{}.deb",
                why.version.replace(':', "%3a"),
                why.architecture
            ));
            if !file.exists() {
                missing.push(format!("{package}={}", why.version));
            }
            paths.insert(package.clone(), file);
        }
        if !missing.is_empty() {
            let bar =
                crate::host::progress::spinner(&format!("downloading {} packages", missing.len()));
            bar.0
                .enable_steady_tick(std::time::Duration::from_millis(120));
            let mut args = vec!["-q", "download"];
            args.extend(missing.iter().map(String::as_str));
            self.run("apt-get", &args, Some(dir))?;
        }
        for (package, path) in &paths {
            if !path.exists() {
                bail!(
                    "apt-get download did not produce {} for {package}",
                    path.display()
                );
            }
        }
        Ok(paths)
    }
}

/// The packages listed under `apt-cache showpkg`'s "Reverse Provides:", sorted.
fn reverse_provides(text: &str) -> Vec<String> {
    let Some((_, rest)) = text.split_once("\nReverse Provides:") else {
        return Vec::new();
    };
    let mut names: Vec<String> = rest
        .lines()
        .skip(1)
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| !name.is_empty() && !name.ends_with(':'))
        .map(str::to_string)
        .collect();
    names.sort();
    names.dedup();
    names
}

impl Apt {
    /// Downloads a source package's candidate version into `dir` (unless there) and
    /// returns its .dsc; needs a state with `Extra::sources`.
    pub fn source(&self, package: &str, dir: &Path) -> Result<PathBuf> {
        // apt leaves out files already in the directory it runs in: ask in an empty one.
        let query = dir.join("query");
        fs::create_dir_all(&query)
            .with_context(|| format!("unable to create {}", query.display()))?;
        let uris = self.run(
            "apt-get",
            &["-q", "source", "--download-only", "--print-uris", package],
            Some(&query),
        )?;
        // 'URI' NAME SIZE HASH lines; the .dsc names the version.
        let dsc = uris
            .lines()
            .filter_map(|line| line.split_whitespace().nth(1))
            .find(|name| name.ends_with(".dsc"))
            .map(str::to_string);
        let Some(dsc) = dsc else {
            bail!(
                "apt-get source {package}: no .dsc (note: the host's mirrors need deb-src, which kiln adds for its own release)"
            );
        };
        if !dsc.starts_with(&format!("{package}_")) || dsc.contains('/') || dsc.starts_with('.') {
            bail!("apt-get source {package}: unexpected file name {dsc:?}");
        }
        let path = dir.join(&dsc);
        if !path.exists() {
            let bar = crate::host::progress::spinner(&format!("downloading the {package} source"));
            bar.0
                .enable_steady_tick(std::time::Duration::from_millis(120));
            self.run(
                "apt-get",
                &["-q", "source", "--download-only", package],
                Some(dir),
            )?;
        }
        if !path.exists() {
            bail!("apt-get source did not produce {}", path.display());
        }
        Ok(path)
    }
}

/// A source package on disk, its files verified: against the lock while the lock pins it,
/// else against its own .dsc.
#[derive(Clone, Debug)]
pub struct SourcePackage {
    pub package: String,
    pub version: String,
    /// Where the files are: the cache's source directory, or `--offline`'s.
    pub dir: PathBuf,
    pub dsc: crate::source::dsc::Dsc,
    /// Every file, the .dsc among them, sorted by name.
    pub files: Vec<crate::source::dsc::File>,
}

impl SourcePackage {
    fn dsc_file(&self) -> &crate::source::dsc::File {
        self.files
            .iter()
            .find(|file| file.name.ends_with(".dsc"))
            .expect("a source package has its .dsc")
    }

    pub fn dsc_path(&self) -> PathBuf {
        self.dir.join(&self.dsc_file().name)
    }

    pub fn dsc_sha256(&self) -> &str {
        &self.dsc_file().sha256
    }

    /// The package as a lock records it.
    pub fn entry(&self) -> crate::lock::SourceEntry {
        crate::lock::SourceEntry {
            version: self.version.clone(),
            files: self.files.clone(),
        }
    }
}

/// Where downloaded source packages are kept.
pub fn sources_dir() -> PathBuf {
    cache_dir().join("sources")
}

fn source_apt(board: &crate::config::Board) -> Result<Apt> {
    let extra = Extra {
        components: board.packages.components.clone(),
        sources: true,
    };
    let apt = Apt::with_extra(&cache_dir(), board.arch, &extra)?;
    apt.update(false)?;
    Ok(apt)
}

/// A source package the board builds from. While the board's lock pins it, exactly that
/// version (downloaded as `PACKAGE=VERSION` if the cache lacks a file, or from
/// `--offline DIR`), each file's size and SHA-256 checked against the lock; otherwise
/// the candidate version ([`source_fresh`]).
pub fn source_package(
    board: &crate::config::Board,
    offline: Option<&Path>,
    package: &str,
) -> Result<SourcePackage> {
    let roots = Roots::of(board);
    let lock = crate::lock::for_fetch(board, &roots)?;
    let Some(entry) = lock.as_ref().and_then(|lock| lock.sources.get(package)) else {
        return source_fresh(board, offline, package);
    };
    let lock_path = crate::lock::path(board);
    let version = &entry.version;
    let dir = offline.map_or_else(sources_dir, Path::to_path_buf);
    if let Some(missing) = entry
        .files
        .iter()
        .find(|file| !dir.join(&file.name).exists())
    {
        if offline.is_some() {
            bail!(crate::error::Input(format!(
                "{}: no {}, which {} pins for source {package} {version} (note: fill the directory with `kiln vendor`)",
                dir.display(),
                missing.name,
                lock_path.display()
            )));
        }
        fs::create_dir_all(&dir).with_context(|| format!("unable to create {}", dir.display()))?;
        let apt = source_apt(board)?;
        let bar = crate::host::progress::spinner(&format!("downloading the {package} source"));
        bar.0
            .enable_steady_tick(std::time::Duration::from_millis(120));
        apt.run(
            "apt-get",
            &["-q", "source", "--download-only", &format!("{package}={version}")],
            Some(&dir),
        )
        .with_context(|| {
            format!(
                "source {package} {version}, which {} pins, could not be downloaded (note: the mirror may no longer serve it; keep it with `kiln vendor BOARD DIR` and build with --offline DIR, or move to what is served with `kiln lock --update`)",
                lock_path.display()
            )
        })?;
    }
    crate::lock::verify_source(entry, &lock_path, package, &dir)?;
    let dsc_name = &entry.dsc().context("a locked source has its .dsc")?.name;
    let dsc_path = dir.join(dsc_name);
    let dsc = crate::source::dsc::read(&dsc_path)?;
    let mut listed = dsc.files.clone();
    listed.sort();
    let locked: Vec<_> = entry
        .files
        .iter()
        .filter(|file| &file.name != dsc_name)
        .cloned()
        .collect();
    if dsc.source != package || &dsc.version != version || listed != locked {
        bail!(crate::error::Input(format!(
            "{}: source {package} {version}: the files it pins are not those {} lists (note: rewrite the entry with `kiln lock --update {} {package}`)",
            lock_path.display(),
            dsc_path.display(),
            board.file.display()
        )));
    }
    Ok(SourcePackage {
        package: package.to_string(),
        version: version.clone(),
        dir,
        dsc,
        files: entry.files.clone(),
    })
}

/// A source package's candidate version, from apt (into the cache) or the one .dsc of
/// it in `offline`, each file checked against the .dsc's `Checksums-Sha256`.
pub fn source_fresh(
    board: &crate::config::Board,
    offline: Option<&Path>,
    package: &str,
) -> Result<SourcePackage> {
    let (dir, dsc_path) = match offline {
        Some(dir) => {
            let prefix = format!("{package}_");
            let mut found: Vec<PathBuf> = fs::read_dir(dir)
                .with_context(|| format!("unable to read {}", dir.display()))?
                .filter_map(|entry| entry.ok().map(|entry| entry.path()))
                .filter(|path| {
                    path.file_name()
                        .and_then(|name| name.to_str())
                        .is_some_and(|name| name.starts_with(&prefix) && name.ends_with(".dsc"))
                })
                .collect();
            found.sort();
            match &found[..] {
                [one] => (dir.to_path_buf(), one.clone()),
                _ => bail!(crate::error::Input(format!(
                    "{}: {} {package}_*.dsc files, kiln needs exactly one (note: `kiln vendor` fills the directory with what the lock pins)",
                    dir.display(),
                    found.len()
                ))),
            }
        }
        None => {
            let dir = sources_dir();
            let apt = source_apt(board)?;
            let dsc = apt.source(package, &dir)?;
            (dir, dsc)
        }
    };
    let dsc = crate::source::dsc::read(&dsc_path)?;
    let name = dsc_path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let plain_version = dsc
        .version
        .split_once(':')
        .map_or(&*dsc.version, |(_, v)| v);
    if dsc.source != package || name != format!("{package}_{plain_version}.dsc") {
        bail!(crate::error::Input(format!(
            "{}: describes source {} {}, not what its name says",
            dsc_path.display(),
            dsc.source,
            dsc.version
        )));
    }
    crate::source::dsc::verify_beside(&dsc_path, &dsc)?;
    let (sha256, size) = crate::lock::hash_file(&dsc_path)?;
    let mut files = dsc.files.clone();
    files.push(crate::source::dsc::File { name, size, sha256 });
    files.sort();
    Ok(SourcePackage {
        package: package.to_string(),
        version: dsc.version.clone(),
        dir,
        dsc,
        files,
    })
}

/// The private sources.list.d of an extended state: links to the host's parts, and
/// kiln's extra file for the host's own mirrors (see `host::apt`).
fn write_parts(state: &Path, extra: &Extra) -> Result<PathBuf> {
    let parts = state.join("sources.list.d");
    if parts.exists() {
        fs::remove_dir_all(&parts)
            .with_context(|| format!("unable to remove {}", parts.display()))?;
    }
    fs::create_dir_all(&parts).with_context(|| format!("unable to create {}", parts.display()))?;
    let host = Path::new("/etc/apt/sources.list.d");
    if let Ok(listing) = fs::read_dir(host) {
        for entry in listing.filter_map(|entry| entry.ok()) {
            let path = entry.path();
            if path
                .extension()
                .is_some_and(|ext| ext == "list" || ext == "sources")
            {
                let link = parts.join(entry.file_name());
                std::os::unix::fs::symlink(&path, &link)
                    .with_context(|| format!("unable to link {}", link.display()))?;
            }
        }
    }
    let codename = crate::host::apt::host_codename()
        .context("unable to read the host's release codename from /etc/os-release")?;
    let entries = crate::host::apt::host_entries()?;
    let mut text = String::new();
    if !extra.components.is_empty() {
        text.push_str(&crate::host::apt::extra_sources(
            &entries,
            &codename,
            "deb",
            &extra.components,
        ));
    }
    if extra.sources {
        let mut components = vec!["main".to_string()];
        components.extend(extra.components.iter().cloned());
        text.push_str(&crate::host::apt::extra_sources(
            &entries,
            &codename,
            "deb-src",
            &components,
        ));
    }
    if !text.contains("URIs:") {
        bail!(
            "the host's apt sources have no entry for its own release ({codename}) to add {:?} to",
            extra
        );
    }
    let file = parts.join("kiln-extra.sources");
    fs::write(&file, text).with_context(|| format!("unable to write {}", file.display()))?;
    Ok(parts)
}

/// Index of the .debs in a directory, for `--offline`: package name → (stanza, path).
pub fn offline_index(dir: &Path, arch: Arch) -> Result<BTreeMap<String, (Stanza, PathBuf)>> {
    let mut index = BTreeMap::new();
    let entries = fs::read_dir(dir).with_context(|| format!("unable to read {}", dir.display()))?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "deb"))
        .collect();
    paths.sort();
    for path in paths {
        let package = deb::read_control(&path)?;
        let Some(stanza) = Stanza::from_fields(&package) else {
            bail!(
                "{}: control lacks Package, Version or Architecture",
                path.display()
            );
        };
        if stanza.architecture == arch.debian() || stanza.architecture == "all" {
            index.insert(stanza.package.clone(), (stanza, path));
        }
    }
    Ok(index)
}

/// Where packages come from: apt (downloads into the cache) or an offline directory.
enum Source {
    Apt(Apt),
    Offline(BTreeMap<String, (Stanza, PathBuf)>),
}

impl Source {
    fn lookup(&self, names: &[String]) -> Result<BTreeMap<String, Stanza>> {
        match self {
            Source::Apt(apt) => apt.show(names),
            Source::Offline(index) => Ok(names
                .iter()
                .filter_map(|name| {
                    // A real package, else the first (by name) that provides the name.
                    index
                        .get(name)
                        .or_else(|| {
                            index
                                .values()
                                .find(|(stanza, _)| stanza.provides.contains(name))
                        })
                        .map(|(stanza, _)| (name.clone(), stanza.clone()))
                })
                .collect()),
        }
    }

    /// The .deb of each package, downloading what is missing.
    fn debs(&self, packages: &BTreeMap<String, Why>) -> Result<BTreeMap<String, PathBuf>> {
        match self {
            Source::Apt(apt) => {
                apt.download(packages, &cache_dir().join("debs").join(apt.arch.debian()))
            }
            Source::Offline(index) => Ok(packages
                .keys()
                .filter_map(|name| {
                    index
                        .get(name)
                        .map(|(_, path)| (name.clone(), path.clone()))
                })
                .collect()),
        }
    }
}

/// The kernel image package among fetched ones: the `linux-image-<abi>` package, whose
/// name is longer than its metapackage's (`linux-image-arm64`).
pub fn kernel_deb(debs: &BTreeMap<String, PathBuf>) -> Option<&PathBuf> {
    debs.iter()
        .filter(|(name, _)| name.starts_with("linux-image-"))
        .max_by_key(|(name, _)| name.len())
        .map(|(_, path)| path)
}

/// `kiln fetch`'s output: one `package path` line per .deb, then one `src:package path`
/// line per source package, the path its .dsc.
pub fn listing(debs: &BTreeMap<String, PathBuf>, sources: &[SourcePackage]) -> String {
    let debs = debs
        .iter()
        .map(|(package, path)| format!("{package} {}\n", path.display()));
    let sources = sources
        .iter()
        .map(|source| format!("src:{} {}\n", source.package, source.dsc_path().display()));
    debs.chain(sources).collect()
}

/// What of a fetched package goes into the image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// In the Depends closure of `[packages] include`: installed whole, minus docs.
    Install,
    /// Named in `[packages.select]`: only the selected paths.
    Select,
    /// A Depends of a selected package: only the libraries the ELF closure needs.
    Library,
    /// Files for the boot partition, taken without Depends; nothing in the image.
    BootFiles,
    /// The kernel package and its metapackage: booted, never in the image.
    Kernel,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Install => "install",
            Role::Select => "select",
            Role::Library => "library",
            Role::BootFiles => "boot-files",
            Role::Kernel => "kernel",
        }
    }

    pub fn from_name(name: &str) -> Option<Role> {
        [
            Role::Install,
            Role::Select,
            Role::Library,
            Role::BootFiles,
            Role::Kernel,
        ]
        .into_iter()
        .find(|role| role.name() == name)
    }

    /// Where the board names the roots of this role.
    fn root_key(self) -> &'static str {
        match self {
            Role::Install => "[packages] include",
            Role::Select | Role::Library => "[packages.select]",
            Role::BootFiles => "[image] partition files",
            Role::Kernel => "[kernel] package",
        }
    }
}

/// Why one package was fetched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Why {
    pub version: String,
    pub architecture: String,
    pub role: Role,
    /// The package whose Depends pulled it in; `None` when the board names it.
    pub wanted_by: Option<String>,
    /// The virtual name it was taken for, when it came in through Provides.
    pub via: Option<String>,
}

/// A board's packages, fetched: each one's .deb and why it is there.
#[derive(Clone, Debug, Default)]
pub struct Fetched {
    pub debs: BTreeMap<String, PathBuf>,
    pub why: BTreeMap<String, Why>,
}

impl Fetched {
    /// `--explain`'s package section: why each package is in, through which Depends.
    pub fn explain(&self) -> String {
        let mut out = String::new();
        for (package, why) in &self.why {
            let mut line = format!("{package} {} ({}): ", why.version, why.role.name());
            let mut chain = Vec::new();
            let mut at = why;
            let mut hops = 0;
            while let Some(parent) = &at.wanted_by {
                let through = at
                    .via
                    .as_ref()
                    .map_or(String::new(), |name| format!(" (as {name})"));
                chain.push(format!("Depends of {parent}{through}"));
                match self.why.get(parent) {
                    Some(next) if hops < self.why.len() => at = next,
                    _ => break,
                }
                hops += 1;
            }
            if chain.is_empty() {
                line.push_str(&format!("named in {}", why.role.root_key()));
            } else {
                line.push_str(&chain.join(" <- "));
                line.push_str(&format!(", from {}", at.role.root_key()));
            }
            out.push_str(&crate::error::printable(&line));
            out.push('\n');
        }
        out
    }
}

/// The board's packages, fetched: package name -> .deb path.
pub fn fetch_board(
    board: &crate::config::Board,
    offline: Option<&Path>,
    refresh: bool,
) -> Result<BTreeMap<String, PathBuf>> {
    Ok(resolve_board(board, offline, refresh)?.debs)
}

/// The source packages the board builds from (U-Boot), each as [`source_package`] gives
/// it: the locked version, every file checked.
pub fn board_sources(
    board: &crate::config::Board,
    offline: Option<&Path>,
) -> Result<Vec<SourcePackage>> {
    Roots::of(board)
        .sources
        .iter()
        .map(|package| source_package(board, offline, package))
        .collect()
}

/// The names a board's package resolution starts from.
#[derive(Clone, Debug, Default)]
pub struct Roots {
    pub include: Vec<String>,
    pub select: Vec<String>,
    /// Packages a card's boot partition takes files from (firmware, say): fetched, not
    /// installed in the image.
    pub boot_files: Vec<String>,
    pub exclude: BTreeSet<String>,
    pub kernel: Option<String>,
    /// Source packages a bootloader is built from (`u-boot`).
    pub sources: Vec<String>,
}

impl Roots {
    pub fn of(board: &crate::config::Board) -> Roots {
        // The firmware chains' packages (systemd-boot-efi, the Pi firmware, a U-Boot).
        let mut boot_files: Vec<String> = board
            .boot
            .iter()
            .flat_map(|boot| boot.packages())
            .map(|(package, _)| package)
            .collect();
        for partition in board.image.iter().flat_map(|image| &image.partitions) {
            for source in &partition.files {
                if let crate::config::image::FileSource::Package { package, .. } = source {
                    boot_files.push(package.clone());
                }
            }
        }
        Roots {
            include: board.packages.include.clone(),
            select: board.packages.select.keys().cloned().collect(),
            boot_files,
            exclude: board.packages.exclude.iter().cloned().collect(),
            kernel: board.kernel.package().map(str::to_string),
            sources: board
                .boot
                .iter()
                .flat_map(|boot| boot.source_packages())
                .collect(),
        }
    }
}

fn source_for(
    board: &crate::config::Board,
    offline: Option<&Path>,
    refresh: bool,
) -> Result<Source> {
    let arch = board.arch;
    Ok(match offline {
        Some(dir) => Source::Offline(offline_index(dir, arch)?),
        None => {
            let apt = Apt::with_extra(&cache_dir(), arch, &Extra::of(board))?;
            apt.update(refresh)?;
            Source::Apt(apt)
        }
    })
}

/// The board's packages, fetched. While the board's lock matches the board, exactly the
/// locked versions, each .deb verified against the lock; otherwise resolved afresh
/// (`resolve_fresh`), unless `--locked` makes that an error.
pub fn resolve_board(
    board: &crate::config::Board,
    offline: Option<&Path>,
    refresh: bool,
) -> Result<Fetched> {
    let roots = Roots::of(board);
    let Some(lock) = crate::lock::for_fetch(board, &roots)? else {
        return resolve_fresh(board, offline, refresh, &BTreeMap::new());
    };
    let lock_path = crate::lock::path(board);
    let why: BTreeMap<String, Why> = lock
        .packages
        .iter()
        .map(|(name, entry)| (name.clone(), entry.why.clone()))
        .collect();
    let source = source_for(board, offline, refresh)?;
    if let Source::Offline(index) = &source {
        for (name, want) in &why {
            let Some((stanza, path)) = index.get(name) else {
                return Err(MissingPackage {
                    package: name.clone(),
                    wanted_by: lock_path.display().to_string(),
                }
                .into());
            };
            if stanza.version != want.version {
                bail!(
                    "{}: {name} is version {}, but {} locks {} (note: fill the directory with `kiln vendor`)",
                    path.display(),
                    stanza.version,
                    lock_path.display(),
                    want.version
                );
            }
        }
    }
    let debs = source.debs(&why).with_context(|| {
        format!(
            "the versions {} locks could not all be downloaded (note: the mirror may no longer serve one; keep locked packages with `kiln vendor BOARD DIR` and build with --offline DIR, or move to what is served with `kiln lock --update`)",
            lock_path.display()
        )
    })?;
    crate::lock::verify(&lock, &lock_path, &debs)?;
    Ok(Fetched { debs, why })
}

/// The board's packages resolved against today's index: `include`'s Depends closure
/// (installed whole), the `select` packages and their Depends (a library pool), the
/// packages the card's boot files come from (without Depends), and the kernel: a kernel
/// metapackage brings only its `linux-image-*` dependency, not the kernel's userland
/// tools. A package wanted in several roles takes the first of that list. Packages in
/// `keep` (a partial `kiln lock --update`) keep their version while still wanted.
pub fn resolve_fresh(
    board: &crate::config::Board,
    offline: Option<&Path>,
    refresh: bool,
    keep: &BTreeMap<String, crate::lock::Entry>,
) -> Result<Fetched> {
    let Roots {
        include,
        select,
        boot_files,
        exclude,
        kernel,
        sources: _,
    } = Roots::of(board);
    let source = source_for(board, offline, refresh)?;
    // The resolution is remembered until apt's lists change: each apt-cache call loads
    // the whole cache (about half a second), and a warm build should not pay for it.
    let memo = match &source {
        Source::Apt(apt) if keep.is_empty() => Some(apt.resolution_memo(
            &[&include, &select, &boot_files],
            &exclude,
            kernel.as_deref(),
        )),
        _ => None,
    };
    if let Some(why) = memo.as_deref().and_then(read_memo) {
        let debs = source.debs(&why)?;
        return Ok(Fetched { debs, why });
    }
    let mut lookup = |names: &[String]| source.lookup(names);
    let mut why: BTreeMap<String, Why> = BTreeMap::new();
    let mut add = |resolved: BTreeMap<String, Resolved>, role: &dyn Fn(&str) -> Role| {
        for (package, resolved) in resolved {
            why.entry(package.clone()).or_insert_with(|| Why {
                version: resolved.stanza.version.clone(),
                architecture: resolved.stanza.architecture.clone(),
                role: role(&package),
                wanted_by: resolved.wanted_by,
                via: resolved.via,
            });
        }
    };
    add(closure(&include, &exclude, &mut lookup)?, &|_| {
        Role::Install
    });
    add(closure(&select, &exclude, &mut lookup)?, &|package| {
        if select.iter().any(|name| name == package) {
            Role::Select
        } else {
            Role::Library
        }
    });
    // Boot files are copied out of their package: its Depends (raspi-firmware
    // pre-depends on dpkg) have nothing to do with the card.
    let mut alone = |names: &[String]| -> Result<BTreeMap<String, Stanza>> {
        let mut found = lookup(names)?;
        for stanza in found.values_mut() {
            stanza.depends.clear();
        }
        Ok(found)
    };
    let boot_packages =
        closure(&boot_files, &exclude, &mut alone).map_err(|err| boot_file_missing(board, err))?;
    add(boot_packages, &|_| Role::BootFiles);
    if let Some(kernel) = kernel {
        let mut kernel_only = |names: &[String]| -> Result<BTreeMap<String, Stanza>> {
            let mut found = lookup(names)?;
            for stanza in found.values_mut() {
                stanza
                    .depends
                    .retain(|group| group.iter().any(|name| name.starts_with("linux-image-")));
            }
            Ok(found)
        };
        add(closure(&[kernel], &exclude, &mut kernel_only)?, &|_| {
            Role::Kernel
        });
    }
    for (name, entry) in keep {
        if let Some(why) = why.get_mut(name) {
            why.version = entry.why.version.clone();
        }
    }
    let debs = source.debs(&why)?;
    if let Some(memo) = &memo {
        write_memo(memo, &why);
    }
    Ok(Fetched { debs, why })
}

/// A boot-file package apt does not have is the board's mistake: name its file and key.
fn boot_file_missing(board: &crate::config::Board, err: anyhow::Error) -> anyhow::Error {
    match err.downcast::<MissingPackage>() {
        Ok(missing) => {
            let key = board
                .boot
                .iter()
                .flat_map(|boot| boot.packages())
                .find(|(package, _)| *package == missing.package)
                .map_or("[[image.partitions]] files", |(_, key)| key);
            anyhow::Error::new(MissingPackage {
                wanted_by: format!("{}: {key}", board.file.display()),
                package: missing.package,
            })
        }
        Err(err) => err,
    }
}

/// The apt suite and component each package's version comes from (`bookworm/main`,
/// from `apt-cache policy`), or `offline`.
pub fn sources(
    board: &crate::config::Board,
    offline: Option<&Path>,
    why: &BTreeMap<String, Why>,
) -> Result<BTreeMap<String, String>> {
    if offline.is_some() {
        return Ok(why
            .keys()
            .map(|name| (name.clone(), "offline".to_string()))
            .collect());
    }
    let apt = Apt::with_extra(&cache_dir(), board.arch, &Extra::of(board))?;
    let mut args = vec!["policy"];
    args.extend(why.keys().map(String::as_str));
    let text = apt.run("apt-cache", &args, None)?;
    Ok(parse_policy(&text, why))
}

/// `apt-cache policy`'s answer: for each package, the suite/component of the line under
/// the version the board takes (the host's mirror URL is left out).
fn parse_policy(text: &str, why: &BTreeMap<String, Why>) -> BTreeMap<String, String> {
    let mut sources = BTreeMap::new();
    let mut package: Option<&str> = None;
    let mut in_version = false;
    for line in text.lines() {
        if !line.starts_with(' ') {
            package = line.strip_suffix(':');
            in_version = false;
            continue;
        }
        let Some(name) = package else { continue };
        let Some(want) = why.get(name) else { continue };
        let words: Vec<&str> = line.split_whitespace().collect();
        match words[..] {
            // "     1.2-3 500" or " *** 1.2-3 500": a version of the table.
            [version, _] | ["***", version, _] => in_version = version == want.version,
            // "        500 URL SUITE/COMPONENT ARCH Packages"
            [_, _, suite, _, "Packages"] if in_version => {
                sources
                    .entry(name.to_string())
                    .or_insert_with(|| suite.to_string());
            }
            _ => {}
        }
    }
    sources
}

/// A remembered resolution: one `package version architecture role wanted-by via` line
/// per package, `-` for none.
fn read_memo(path: &Path) -> Option<BTreeMap<String, Why>> {
    let text = fs::read_to_string(path).ok()?;
    let mut packages = BTreeMap::new();
    let optional = |field: &str| (field != "-").then(|| field.to_string());
    for line in text.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let [package, version, architecture, role, wanted_by, via] = fields[..] else {
            return None;
        };
        packages.insert(
            package.to_string(),
            Why {
                version: version.to_string(),
                architecture: architecture.to_string(),
                role: Role::from_name(role)?,
                wanted_by: optional(wanted_by),
                via: optional(via),
            },
        );
    }
    (!packages.is_empty()).then_some(packages)
}

/// Best effort: a memo that cannot be written only costs the next build time.
fn write_memo(path: &Path, packages: &BTreeMap<String, Why>) {
    let text: String = packages
        .iter()
        .map(|(package, why)| {
            format!(
                "{package} {} {} {} {} {}\n",
                why.version,
                why.architecture,
                why.role.name(),
                why.wanted_by.as_deref().unwrap_or("-"),
                why.via.as_deref().unwrap_or("-")
            )
        })
        .collect();
    if let Some(dir) = path.parent() {
        let _ = fs::create_dir_all(dir);
    }
    let _ = crate::host::temp::write_file(path, text.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stanza(name: &str, depends: &str) -> Stanza {
        Stanza {
            package: name.to_string(),
            version: "1".to_string(),
            architecture: "arm64".to_string(),
            depends: parse_depends(depends),
            provides: Vec::new(),
        }
    }

    #[test]
    fn depends_are_parsed_to_names() {
        assert_eq!(
            parse_depends("libc6 (>= 2.34), libfoo | libbar (<< 2), awk:any"),
            vec![vec!["libc6"], vec!["libfoo", "libbar"], vec!["awk"]]
        );
        assert!(parse_depends("").is_empty());
    }

    #[test]
    fn closure_follows_depends_and_honours_exclude() {
        let index: BTreeMap<String, Stanza> = [
            stanza("s6", "libc6, libs6-2.11 (= 2.11.3.2-1), libskarnet2.13"),
            stanza("libs6-2.11", "libc6, libskarnet2.13"),
            stanza("libskarnet2.13", "libc6"),
            stanza("libc6", "libgcc-s1"),
            stanza("libgcc-s1", "gcc-12-base, libc6"),
            stanza("gcc-12-base", ""),
            stanza("tool", "mawk | gawk"),
            stanza("gawk", "libc6"),
            stanza("script", "awk, gawk"),
            Stanza {
                provides: vec!["awk".to_string()],
                ..stanza("original-awk", "libc6")
            },
        ]
        .into_iter()
        .map(|stanza| (stanza.package.clone(), stanza))
        .collect();
        // As `Source::lookup`: a virtual name answers with a package that provides it.
        let mut lookup = |names: &[String]| -> Result<BTreeMap<String, Stanza>> {
            Ok(names
                .iter()
                .filter_map(|name| {
                    index
                        .get(name)
                        .or_else(|| index.values().find(|s| s.provides.contains(name)))
                        .map(|s| (name.clone(), s.clone()))
                })
                .collect())
        };
        let exclude: BTreeSet<String> = ["libgcc-s1".to_string()].into();
        let got = closure(
            &["s6".to_string(), "tool".to_string()],
            &exclude,
            &mut lookup,
        )
        .unwrap();
        assert_eq!(
            got.keys().cloned().collect::<Vec<_>>(),
            vec![
                "gawk",
                "libc6",
                "libs6-2.11",
                "libskarnet2.13",
                "s6",
                "tool"
            ]
        );
        assert_eq!(got["gawk"].wanted_by.as_deref(), Some("tool"));
        assert_eq!(got["libs6-2.11"].wanted_by.as_deref(), Some("s6"));
        assert_eq!(got["s6"].wanted_by, None);
        // A virtual name is answered by its provider, once, named as the reason.
        let got = closure(&["script".to_string()], &exclude, &mut lookup).unwrap();
        assert_eq!(
            got.keys().cloned().collect::<Vec<_>>(),
            vec!["gawk", "libc6", "original-awk", "script"]
        );
        assert_eq!(got["original-awk"].via.as_deref(), Some("awk"));
        let err = closure(&["nosuch".to_string()], &exclude, &mut lookup).unwrap_err();
        assert_eq!(
            err.to_string(),
            "package nosuch (needed by the board) is not available for this arch\n\
             note: check its name, that it exists for the board's arch, or the --offline directory"
        );
    }

    #[test]
    fn explain_names_the_chain_to_the_board() {
        let why = |role, wanted_by: Option<&str>, via: Option<&str>| Why {
            version: "1".to_string(),
            architecture: "arm64".to_string(),
            role,
            wanted_by: wanted_by.map(str::to_string),
            via: via.map(str::to_string),
        };
        let fetched = Fetched {
            debs: BTreeMap::new(),
            why: [
                ("python3-minimal", why(Role::Install, None, None)),
                (
                    "python3.11-minimal",
                    why(Role::Install, Some("python3-minimal"), None),
                ),
                (
                    "libssl3",
                    why(Role::Install, Some("python3.11-minimal"), Some("libssl")),
                ),
                ("s6", why(Role::Select, None, None)),
                ("libs6-2.11", why(Role::Library, Some("s6"), None)),
            ]
            .into_iter()
            .map(|(name, why)| (name.to_string(), why))
            .collect(),
        };
        expect_test::expect![[r#"
            libs6-2.11 1 (library): Depends of s6, from [packages.select]
            libssl3 1 (install): Depends of python3.11-minimal (as libssl) <- Depends of python3-minimal, from [packages] include
            python3-minimal 1 (install): named in [packages] include
            python3.11-minimal 1 (install): Depends of python3-minimal, from [packages] include
            s6 1 (select): named in [packages.select]
        "#]]
        .assert_eq(&fetched.explain());
    }
}
