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
}

impl Stanza {
    fn from_fields(fields: &BTreeMap<String, String>) -> Option<Stanza> {
        let mut depends = Vec::new();
        for key in ["Pre-Depends", "Depends"] {
            if let Some(value) = fields.get(key) {
                depends.extend(parse_depends(value));
            }
        }
        Some(Stanza {
            package: fields.get("Package")?.clone(),
            version: fields.get("Version")?.clone(),
            architecture: fields.get("Architecture")?.clone(),
            depends,
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

/// Finds the index stanzas of some package names; unknown names are left out.
pub type Lookup<'a> = dyn FnMut(&[String]) -> Result<BTreeMap<String, Stanza>> + 'a;

/// The Depends closure of `roots`, never entering `exclude`. For each dependency the
/// first alternative that exists is taken. Errors name the package that needs a missing one.
pub fn closure(
    roots: &[String],
    exclude: &BTreeSet<String>,
    lookup: &mut Lookup,
) -> Result<BTreeMap<String, Stanza>> {
    let mut known: BTreeMap<String, Stanza> = BTreeMap::new();
    let mut frontier: Vec<(String, String)> = roots
        .iter()
        .map(|root| (root.clone(), "the board".to_string()))
        .collect();
    while !frontier.is_empty() {
        let wanted: Vec<String> = frontier
            .iter()
            .flat_map(|(name, _)| [name.clone()])
            .filter(|name| !known.contains_key(name))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let found = lookup(&wanted)?;
        let mut next = Vec::new();
        for (name, wanted_by) in &frontier {
            if known.contains_key(name) {
                continue;
            }
            let Some(stanza) = found.get(name) else {
                return Err(MissingPackage {
                    package: name.clone(),
                    wanted_by: wanted_by.clone(),
                }
                .into());
            };
            known.insert(name.clone(), stanza.clone());
            for group in &stanza.depends {
                if group
                    .iter()
                    .any(|alternative| exclude.contains(alternative))
                {
                    continue;
                }
                if group
                    .iter()
                    .any(|alternative| known.contains_key(alternative))
                {
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
                next.push((choice, name.clone()));
            }
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
    _lock: nix::fcntl::Flock<fs::File>,
}

impl Apt {
    pub fn new(cache: &Path, arch: Arch) -> Result<Apt> {
        let state = cache.join("apt").join(arch.debian());
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
        Ok(Apt {
            arch,
            state,
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
        .flat_map(|option| ["-o".to_string(), option])
        .collect()
    }

    fn run(&self, program: &str, args: &[&str], dir: Option<&Path>) -> Result<String> {
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
        roots: &[String],
        exclude: &BTreeSet<String>,
        kernel: Option<&str>,
    ) -> PathBuf {
        use std::hash::{Hash, Hasher};
        let updated = fs::metadata(self.state.join("updated"))
            .and_then(|meta| meta.modified())
            .ok();
        let mut hasher = std::hash::DefaultHasher::new();
        (self.arch.debian(), roots, exclude, kernel, updated).hash(&mut hasher);
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
            return Ok(found);
        }
        for name in names {
            let Ok(text) = self.run("apt-cache", &["show", "--no-all-versions", name], None) else {
                continue;
            };
            parse(&text);
        }
        Ok(found)
    }

    /// Downloads the packages' candidate versions into `dir` (skipping those present)
    /// and returns package → .deb path.
    pub fn download(
        &self,
        packages: &BTreeMap<String, Stanza>,
        dir: &Path,
    ) -> Result<BTreeMap<String, PathBuf>> {
        fs::create_dir_all(dir).with_context(|| format!("unable to create {}", dir.display()))?;
        let mut paths = BTreeMap::new();
        let mut missing = Vec::new();
        for stanza in packages.values() {
            let file = dir.join(format!(
                "{}_{}_{}.deb",
                stanza.package,
                stanza.version.replace(':', "%3a"),
                stanza.architecture
            ));
            if !file.exists() {
                missing.push(format!("{}={}", stanza.package, stanza.version));
            }
            paths.insert(stanza.package.clone(), file);
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
                    index
                        .get(name)
                        .map(|(stanza, _)| (name.clone(), stanza.clone()))
                })
                .collect()),
        }
    }

    /// The .deb of each package, downloading what is missing.
    fn debs(&self, packages: &BTreeMap<String, Stanza>) -> Result<BTreeMap<String, PathBuf>> {
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

/// `kiln fetch`'s output: one `package path` line per .deb.
pub fn listing(debs: &BTreeMap<String, PathBuf>) -> String {
    debs.iter()
        .map(|(package, path)| format!("{package} {}\n", path.display()))
        .collect()
}

/// The board's packages, fetched: package name -> .deb path. Kernel metapackages bring
/// only their `linux-image-*` dependency, not the kernel's userland tools.
pub fn fetch_board(
    board: &crate::config::Board,
    offline: Option<&Path>,
    refresh: bool,
) -> Result<BTreeMap<String, PathBuf>> {
    let mut roots: Vec<String> = board.packages.include.clone();
    roots.extend(board.packages.select.keys().cloned());
    // Packages a card's boot partition takes files from (firmware, say): fetched, not
    // installed in the image.
    for partition in board.image.iter().flat_map(|image| &image.partitions) {
        for source in &partition.files {
            if let crate::config::image::FileSource::Package { package, .. } = source {
                roots.push(package.clone());
            }
        }
    }
    let exclude: BTreeSet<String> = board.packages.exclude.iter().cloned().collect();
    let arch = board.arch;
    let source = match offline {
        Some(dir) => Source::Offline(offline_index(dir, arch)?),
        None => {
            let apt = Apt::new(&cache_dir(), arch)?;
            apt.update(refresh)?;
            Source::Apt(apt)
        }
    };
    // The resolution is remembered until apt's lists change: each apt-cache call loads
    // the whole cache (about half a second), and a warm build should not pay for it.
    let memo = match &source {
        Source::Apt(apt) => Some(apt.resolution_memo(&roots, &exclude, board.kernel.package())),
        Source::Offline(_) => None,
    };
    if let Some(memo) = &memo {
        if let Some(packages) = read_memo(memo) {
            return source.debs(&packages);
        }
    }
    let mut lookup = |names: &[String]| source.lookup(names);
    let mut packages = closure(&roots, &exclude, &mut lookup)?;
    if let Some(kernel) = board.kernel.package() {
        let mut kernel_only = |names: &[String]| -> Result<BTreeMap<String, Stanza>> {
            let mut found = lookup(names)?;
            for stanza in found.values_mut() {
                stanza
                    .depends
                    .retain(|group| group.iter().any(|name| name.starts_with("linux-image-")));
            }
            Ok(found)
        };
        packages.extend(closure(&[kernel.to_string()], &exclude, &mut kernel_only)?);
    }
    let debs = source.debs(&packages)?;
    if let Some(memo) = &memo {
        write_memo(memo, &packages);
    }
    Ok(debs)
}

/// A remembered resolution: one `package version architecture` line per package.
fn read_memo(path: &Path) -> Option<BTreeMap<String, Stanza>> {
    let text = fs::read_to_string(path).ok()?;
    let mut packages = BTreeMap::new();
    for line in text.lines() {
        let mut fields = line.split(' ');
        let (Some(package), Some(version), Some(architecture), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return None;
        };
        packages.insert(
            package.to_string(),
            Stanza {
                package: package.to_string(),
                version: version.to_string(),
                architecture: architecture.to_string(),
                depends: Vec::new(),
            },
        );
    }
    (!packages.is_empty()).then_some(packages)
}

/// Best effort: a memo that cannot be written only costs the next build time.
fn write_memo(path: &Path, packages: &BTreeMap<String, Stanza>) {
    let text: String = packages
        .values()
        .map(|s| format!("{} {} {}\n", s.package, s.version, s.architecture))
        .collect();
    // Best effort: without the memo the next build resolves again.
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
        ]
        .into_iter()
        .map(|stanza| (stanza.package.clone(), stanza))
        .collect();
        let mut lookup = |names: &[String]| -> Result<BTreeMap<String, Stanza>> {
            Ok(names
                .iter()
                .filter_map(|name| index.get(name).map(|s| (name.clone(), s.clone())))
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
        let err = closure(&["nosuch".to_string()], &exclude, &mut lookup).unwrap_err();
        assert_eq!(
            err.to_string(),
            "package nosuch (needed by the board) is not available for this arch\n\
             note: check its name, that it exists for the board's arch, or the --offline directory"
        );
    }
}
