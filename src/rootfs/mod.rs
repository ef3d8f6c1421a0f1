//! The image tree of a board: fetched packages, busybox links, overlays, users, the
//! generated init, device tables, services and modules, in that order, each step
//! overriding the previous path by path; then the loaders and libraries the ELF closure
//! still lacks, pulled from the fetched packages (they only fill missing paths). The
//! kernel package is fetched for booting but never put in the image. `build` then
//! writes the tree in the board's formats.

pub mod alternatives;
pub mod busybox;
pub mod libraries;
pub mod modules;
pub mod network;
pub mod packages;
pub mod services;
pub mod users;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};

use crate::archive::{self, Container};
use crate::config::Board;
use crate::host::progress;
use crate::init;
use crate::source::{deb, makedevs};
use crate::tree::content::Content;
use crate::tree::{ArchivePath, Kind, Meta, Node, Tree};
use crate::{check, fetch, listing};

/// The board's tree, with what went into it.
pub struct Rootfs {
    pub tree: Tree,
    /// Why each library is in, for `--explain`.
    pub explain: String,
    /// The init as generated (the maker's options, the log user resolved).
    pub init: init::Config,
    /// The fetched packages, the kernel's included: package → .deb.
    pub debs: BTreeMap<String, PathBuf>,
    /// What the SBOM says of each fetched package.
    pub packages: BTreeMap<String, Facts>,
}

/// A fetched package as the SBOM names it.
#[derive(Clone, Debug)]
pub struct Facts {
    pub why: fetch::Why,
    /// The control file's Maintainer.
    pub maintainer: Option<String>,
    /// `/usr/share/doc/PACKAGE/copyright`, when the package ships it as a file.
    pub copyright: Option<String>,
}

fn indent(text: &str) -> String {
    text.lines().map(|line| format!("  {line}\n")).collect()
}

/// What a caller adds on top of the board: kiln's in-guest probe for `kiln boot --check`
/// (a stage 2 wrapper in place of the board's stage 2, and a service).
#[derive(Clone, Debug, Default)]
pub struct Additions {
    /// Stage 2 instead of the board's `[init] stage2`.
    pub stage2: Option<Vec<u8>>,
    /// Executable files (image path, text) added last.
    pub files: Vec<(ArchivePath, String)>,
    /// Words added to a card's kernel command line (every format the firmware reads).
    pub cmdline: Vec<String>,
}

/// Fetches the board's packages and composes its tree.
pub fn compose(
    board: &Board,
    offline: Option<&std::path::Path>,
    additions: &Additions,
) -> Result<Rootfs> {
    let fetched = fetch::resolve_board(board, offline, false)?;
    let mut image = Tree::new();
    let mut pool = Tree::new();
    let mut postinsts = Vec::new();
    let mut facts = BTreeMap::new();
    let bar = progress::bar(
        fetched.debs.len() as u64,
        "{bar:30} {pos}/{len} extracting {msg}",
    );
    for (package, path) in &fetched.debs {
        bar.0.set_message(package.clone());
        bar.0.inc(1);
        let why = fetched.why.get(package);
        let (read, package_facts) = read_for_image(package, path, why)?;
        if let Some(package_facts) = package_facts {
            facts.insert(package.clone(), package_facts);
        }
        let role = why.map(|why| why.role);
        let Some((data, postinst)) = read else {
            continue;
        };
        if role == Some(fetch::Role::Install) {
            image.overlay(packages::relocate(&image, &data))?;
            if let Some(script) = postinst {
                postinsts.push((package.clone(), script));
            }
        } else if let Some(patterns) = board.packages.select.get(package) {
            let mut chosen = Tree::new();
            packages::select(&mut chosen, &data, patterns, package)?;
            image.overlay(packages::relocate(&image, &chosen))?;
        }
        pool.overlay(data)?;
    }
    drop(bar);
    let alternatives = alternatives::apply(&mut image, &postinsts)?;

    busybox::add_links(&mut image)?;
    for overlay in &board.overlays {
        packages::load_overlay(&mut image, overlay)?;
    }
    users::add(&mut image, board)?;
    if board.autologin {
        let path = ArchivePath::new(crate::config::accounts::AUTOLOGIN)?;
        let text = "#!/bin/sh\n# [init] login = \"autologin\": the early getty runs this instead of login.\n# Development only: root gets a shell on the console without a password.\nexec login -f root\n";
        let node = Node::new(
            Kind::File(Content::inline(text)),
            Meta::root(0o755),
            "[init] login",
        );
        image.replace(path, node)?;
    }
    let mut options = board.init.clone();
    if let Some(stage2) = &additions.stage2 {
        options.stage2 = stage2.clone();
    }
    let config = init::Config {
        options,
        log_uid: board.log_ids.0,
        log_gid: board.log_ids.1,
    };
    let generated = init::generate(&config);
    image.overlay(init::image::image_tree(
        &config,
        &generated,
        Container::Cpio,
    )?)?;
    for table in &board.devices {
        makedevs::apply(&mut image, &table.path, &table.text)?;
    }
    network::add(&mut image, board)?;
    services::add(&mut image, board)?;
    for (path, text) in &additions.files {
        let node = Node::new(
            Kind::File(Content::inline(text.clone())),
            Meta::root(0o755),
            "kiln boot --check",
        );
        image.replace(path.clone(), node)?;
    }
    if !board.kernel.modules.is_empty() {
        modules::add(
            &mut image,
            board,
            &fetched.debs,
            &board.kernel.modules,
            "[kernel] modules",
        )?;
    }
    let (links, elf_errors) = libraries::pull(&mut image, &pool, board.arch)?;
    libraries::check_init_programs(&image, &config)?;
    let problems = check::problems(&image, elf_errors);
    if !problems.is_empty() {
        let providers = check::Providers::from_pool(&image, &pool);
        let lines = check::report(&problems, &providers, &board.allow_dangling);
        if !lines.is_empty() {
            bail!(crate::error::Input(format!(
                "{}: the image has {} problem{}:\n  {}\nnote: add the packages named to [packages] include, or list a path under [check] allow_dangling with the reason",
                board.file.display(),
                lines.len(),
                if lines.len() == 1 { "" } else { "s" },
                lines.join("\n  ")
            )));
        }
    }
    let explain = format!(
        "packages:\n{}alternatives:\n{}libraries:\n{}",
        indent(&fetched.explain()),
        indent(&alternatives),
        indent(&libraries::explain(&links, &image))
    );
    Ok(Rootfs {
        tree: image,
        explain,
        init: config,
        debs: fetched.debs,
        packages: facts,
    })
}

/// Every file of the board's fetched packages but the kernel's and the boot files', each
/// node's origin its package: where `kiln check --board` looks for what is missing.
pub fn pool(board: &Board, offline: Option<&std::path::Path>) -> Result<Tree> {
    let fetched = fetch::resolve_board(board, offline, false)?;
    let mut pool = Tree::new();
    for (package, path) in &fetched.debs {
        if let (Some((data, _)), _) = read_for_image(package, path, fetched.why.get(package))? {
            pool.overlay(data)?;
        }
    }
    Ok(pool)
}

/// A package's files and postinst, as `read_for_image` gives them.
type Contents = Option<(Tree, Option<Vec<u8>>)>;

/// A fetched package's files without docs, each node's origin the package (sizes and
/// --explain name it, not the spool file), and its postinst (`None` for the kernel and
/// boot-file packages, of which nothing goes into the image); and what the SBOM says of
/// it (`None` for a package the resolution did not name).
fn read_for_image(
    package: &str,
    path: &std::path::Path,
    why: Option<&fetch::Why>,
) -> Result<(Contents, Option<Facts>)> {
    let facts = |control: &BTreeMap<String, String>, copyright| {
        why.map(|why| Facts {
            why: why.clone(),
            maintainer: control.get("Maintainer").cloned(),
            copyright,
        })
    };
    let role = why.map(|why| why.role);
    if matches!(role, Some(fetch::Role::Kernel | fetch::Role::BootFiles)) {
        let control = deb::read_control(path)?;
        return Ok((None, facts(&control, None)));
    }
    let read = deb::read(path)?;
    let copyright = ArchivePath::new(&format!("usr/share/doc/{package}/copyright"))
        .ok()
        .and_then(|at| match read.data.get(&at).map(|node| &node.kind) {
            Some(Kind::File(content)) if content.len() <= 1 << 20 => content.read_all().ok(),
            _ => None,
        })
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned());
    let package_facts = facts(&read.control, copyright);
    let mut data = packages::without_docs(read.data);
    for (_, node) in data.iter_mut() {
        node.origin = package.into();
    }
    Ok((Some((data, read.postinst)), package_facts))
}

/// What `kiln build` wrote.
pub struct Built {
    pub rootfs: Rootfs,
    pub outputs: Vec<PathBuf>,
    pub manifest: PathBuf,
    pub sizes: PathBuf,
}

/// `kiln build`: the board's tree in each format, to `OUT/<board>.<format>`, with the
/// manifest (`kiln ls --list` of the first archive, read back) and the size report.
pub fn build(
    board: &Board,
    out_dir: &std::path::Path,
    formats: &[archive::Format],
    offline: Option<&std::path::Path>,
    additions: &Additions,
) -> Result<Built> {
    let rootfs = compose(board, offline, additions)?;
    std::fs::create_dir_all(out_dir)
        .with_context(|| format!("unable to create {}", out_dir.display()))?;
    let options = archive::Options::from_env()?.with_image_names(&rootfs.tree);
    let mut outputs = Vec::new();
    for format in formats {
        let path = out_dir.join(format!("{}.{}", board.name, format.name()));
        archive::write_file(&rootfs.tree, *format, &path, &options)
            .with_context(|| format!("unable to write {}", path.display()))?;
        outputs.push(path);
    }
    let manifest = out_dir.join(format!("{}.manifest", board.name));
    let sizes = out_dir.join(format!("{}.sizes", board.name));
    if let Some(first) = outputs.first() {
        let readback = archive::read::read_file(first)
            .with_context(|| format!("unable to read back {}", first.display()))?;
        crate::host::temp::write_file(
            &manifest,
            listing::gen_init_cpio(&readback.tree).as_bytes(),
        )?;
        crate::host::temp::write_file(&sizes, size_report(&rootfs.tree).as_bytes())?;
    }
    Ok(Built {
        rootfs,
        outputs,
        manifest,
        sizes,
    })
}

impl Built {
    /// What `kiln build` prints on stderr.
    pub fn report(&self) -> String {
        let mut text = String::new();
        for path in &self.outputs {
            let len = std::fs::metadata(path).map_or(0, |meta| meta.len());
            text.push_str(&format!(
                "kiln: wrote {} ({len} bytes, {} entries)\n",
                path.display(),
                self.rootfs.tree.len()
            ));
        }
        if !self.outputs.is_empty() {
            text.push_str(&format!(
                "kiln: wrote {} and {}\n",
                self.manifest.display(),
                self.sizes.display()
            ));
        }
        text
    }
}

/// Bytes each package (or other origin) contributes, largest first.
pub fn size_report(tree: &Tree) -> String {
    let mut sizes: BTreeMap<String, (u64, usize)> = BTreeMap::new();
    for (_, node) in tree.iter() {
        let entry = sizes.entry(node.origin.to_string()).or_default();
        if let Kind::File(content) = &node.kind {
            entry.0 += content.len();
        }
        entry.1 += 1;
    }
    let mut rows: Vec<_> = sizes.into_iter().collect();
    rows.sort_by(|a, b| b.1.0.cmp(&a.1.0).then(a.0.cmp(&b.0)));
    let mut out = String::from("bytes\tentries\tfrom\n");
    for (origin, (bytes, entries)) in rows {
        let _ = writeln!(out, "{bytes}\t{entries}\t{origin}");
    }
    out
}
