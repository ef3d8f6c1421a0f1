//! `kiln build`: a board config becomes a root filesystem tree, then archives.
//!
//! Order, each step overriding the previous path by path: packages taken whole, selected
//! paths of other packages, libraries pulled by the ELF closure, busybox applet links,
//! overlays (with declared metadata), users, the generated s6 init, device tables,
//! services. The kernel package is fetched for booting but never put in the image.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::archive::{self, Container};
use crate::config::{Board, RawMeta};
use crate::tree::{ArchivePath, Content, Kind, Meta, Node, Tree};
use crate::{busybox, deb, elf, fetch, init, overlay, spec};

/// Paths of whole packages that an embedded image does without.
const DROPPED: [&str; 6] = [
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/lintian",
    "usr/share/locale",
    "usr/share/bug",
];

/// What a build produced.
pub struct Built {
    pub tree: Tree,
    pub outputs: Vec<PathBuf>,
    /// Why each library is in, for `--explain`.
    pub explain: String,
    /// The init as generated (the maker's validated options).
    pub init: init::Config,
    /// The fetched packages, the kernel's included: package → .deb.
    pub debs: BTreeMap<String, PathBuf>,
}

pub struct Request<'a> {
    pub board: &'a Board,
    pub out_dir: PathBuf,
    pub formats: Vec<archive::Format>,
    pub offline: Option<PathBuf>,
    /// Add kiln's in-guest probe (`kiln boot --check`): a service and a stage 2 wrapper.
    pub probe: bool,
}

pub fn build(request: &Request) -> Result<Built> {
    let board = request.board;
    let debs = fetch::fetch_board(board, request.offline.as_deref(), false)?;
    let mut image = Tree::new();
    let mut pool = Tree::new();
    let mut owners: BTreeMap<String, String> = BTreeMap::new();
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(debs.len() as u64),
        indicatif::ProgressDrawTarget::stderr(),
    );
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} extracting {msg}")
    {
        bar.set_style(style);
    }
    for (package, path) in &debs {
        bar.set_message(package.clone());
        bar.inc(1);
        if board.kernel_package.as_deref() == Some(package.as_str())
            || package.starts_with("linux-image-")
        {
            continue;
        }
        let read = deb::read(path)?;
        let origin = read.path.display().to_string();
        owners.insert(origin.clone(), package.clone());
        let data = without_docs(read.data);
        if board.packages.contains(package) {
            image.overlay(relocate(&image, &data))?;
        } else if let Some(patterns) = board.select.get(package) {
            let mut chosen = Tree::new();
            select(&mut chosen, &data, patterns, package)?;
            image.overlay(relocate(&image, &chosen))?;
        }
        pool.overlay(data)?;
    }
    bar.finish_and_clear();
    relabel(&mut image, &owners);
    relabel(&mut pool, &owners);

    if let Some(Node {
        kind: Kind::File(content),
        ..
    }) = elf::resolve(&image, "/bin/busybox").and_then(|path| image.get(&path).cloned())
    {
        let bytes = content.read_all().context("unable to read busybox")?;
        let applets = busybox::applets(&bytes, "/bin/busybox")?;
        busybox::link(&mut image, &applets, "bin", "/bin/busybox");
    }

    for (source, dest, files) in &board.overlays {
        load_overlay(&mut image, source, dest, files)?;
    }
    let log_user = add_users(&mut image, board)?;
    let mut args = board.init_args.clone();
    if let Some(index) = args.iter().position(|arg| arg == "-u") {
        if let Some((uid, gid)) = log_user {
            args[index + 1] = OsString::from(format!("{uid}:{gid}"));
        }
    }
    let mut original_stage2 = b"/etc/rc.init".to_vec();
    if request.probe {
        match args.iter().position(|arg| arg == "-2") {
            Some(index) => {
                original_stage2 = args[index + 1].as_encoded_bytes().to_vec();
                args[index + 1] = crate::boot::probe::STAGE2_PATH.into();
            }
            None => args.extend(["-2".into(), crate::boot::probe::STAGE2_PATH.into()]),
        }
    }
    args.push("image.cpio".into());
    let maker =
        init::cli::parse(&args).map_err(|failure| anyhow::anyhow!("[init]: {failure:?}"))?;
    for warning in &maker.warnings {
        eprintln!("kiln: warning: [init]: {warning}");
    }
    let generated = init::generate(&maker.config);
    image.overlay(init::cli::image_tree(
        &maker.config,
        &generated,
        Container::Cpio,
    ))?;
    for table in &board.devices {
        let text = std::fs::read_to_string(table)
            .with_context(|| format!("unable to read device table {}", table.display()))?;
        spec::apply_makedevs(&mut image, table, &text)?;
    }
    for service in &board.services {
        let name = service
            .file_name()
            .and_then(|name| name.to_str())
            .with_context(|| format!("{}: bad service directory name", service.display()))?;
        let dest = ArchivePath::new(&format!("etc/s6/services/{name}"))?;
        overlay::load_dir(&mut image, service, Some(&dest), (0, 0))?;
    }

    if request.probe {
        let probe_files = [
            (
                crate::boot::probe::STAGE2_PATH
                    .trim_start_matches('/')
                    .to_string(),
                crate::boot::probe::stage2(&maker.config, &original_stage2),
            ),
            (
                crate::boot::probe::SERVICE_PATH.to_string(),
                crate::boot::probe::service(&maker.config),
            ),
        ];
        for (path, text) in probe_files {
            let node = Node::new(
                Kind::File(Content::inline(text)),
                Meta::root(0o755),
                "kiln boot --check",
            );
            image.replace(ArchivePath::new(&path)?, node)?;
        }
    }
    if !board.modules.is_empty() {
        add_modules(&mut image, board, &debs)?;
    }
    let links = pull_libraries(&mut image, &pool, board)?;
    check_init_programs(&image, &maker.config)?;

    let mut outputs = Vec::new();
    std::fs::create_dir_all(&request.out_dir)
        .with_context(|| format!("unable to create {}", request.out_dir.display()))?;
    let options = archive::Options::from_env()?.with_image_names(&image);
    for format in &request.formats {
        let path = request
            .out_dir
            .join(format!("{}.{}", board.name, format.name()));
        archive::write_file(&image, *format, &path, &options)
            .with_context(|| format!("unable to write {}", path.display()))?;
        outputs.push(path);
    }
    let explain = explain(&links, &image);
    Ok(Built {
        tree: image,
        outputs,
        explain,
        init: maker.config,
        debs,
    })
}

/// Moves a package's paths through the image's symlinked directories (merged /usr:
/// with `bin -> usr/bin` in the image, a package's `bin/sh` lands in `usr/bin/sh`), so
/// package contents never collide with the image's links.
fn relocate(image: &Tree, data: &Tree) -> Tree {
    let mut moved = Tree::new();
    for (path, node) in data.iter() {
        let target = match (&node.kind, path.parent()) {
            // A directory where the image has a link to one: the link's target.
            (Kind::Dir, _) => elf::resolve_lenient(image, path.as_str()),
            // Anything else keeps its own name under its resolved parent.
            (_, Some(parent)) => elf::resolve_lenient(image, parent.as_str())
                .and_then(|parent| parent.join(path.file_name()).ok()),
            (_, None) => Some(path.clone()),
        };
        let target = target.unwrap_or_else(|| path.clone());
        // Later entries of one package replace earlier ones, as extraction would.
        let _ = moved.replace(target, node.clone());
    }
    moved
}

/// Names nodes by package (`busybox-static`) instead of the spool path.
fn relabel(tree: &mut Tree, owners: &BTreeMap<String, String>) {
    for (_, node) in tree.iter_mut() {
        let origin = node.origin.to_string();
        if let Some(package) = owners
            .iter()
            .find_map(|(deb, package)| origin.starts_with(deb.as_str()).then_some(package))
        {
            node.origin = package.as_str().into();
        }
    }
}

fn without_docs(tree: Tree) -> Tree {
    let mut kept = Tree::new();
    for (path, node) in tree.iter() {
        let dropped = DROPPED.iter().any(|prefix| {
            let prefix = ArchivePath::new(prefix).expect("literal");
            path.starts_with(&prefix)
        });
        if !dropped {
            // Same paths, same order: cannot conflict.
            let _ = kept.replace(path.clone(), node.clone());
        }
    }
    kept
}

/// Copies the paths of `data` matching `patterns` (`*` and `?` within a component),
/// and the symlinks among them, into `image`.
fn select(image: &mut Tree, data: &Tree, patterns: &[String], package: &str) -> Result<()> {
    for pattern in patterns {
        let mut matched = 0;
        for (path, node) in data.iter() {
            if node.kind != Kind::Dir && glob(pattern.trim_start_matches('/'), path.as_str()) {
                image.replace(path.clone(), node.clone())?;
                matched += 1;
            }
        }
        if matched == 0 {
            let near: Vec<String> = data
                .iter()
                .filter(|(_, node)| node.kind != Kind::Dir)
                .map(|(path, _)| path.to_string())
                .take(8)
                .collect();
            bail!(
                "[packages.select] {package}: {pattern} matches nothing\nnote: the package has e.g. {}",
                near.join(", ")
            );
        }
    }
    Ok(())
}

/// Shell-style glob on whole paths: `*` and `?` never cross a `/`.
pub fn glob(pattern: &str, text: &str) -> bool {
    fn matches(pattern: &[u8], text: &[u8]) -> bool {
        match (pattern.first(), text.first()) {
            (None, None) => true,
            (Some(b'*'), _) => {
                matches(&pattern[1..], text)
                    || (!text.is_empty() && text[0] != b'/' && matches(pattern, &text[1..]))
            }
            (Some(b'?'), Some(&c)) if c != b'/' => matches(&pattern[1..], &text[1..]),
            (Some(p), Some(c)) if p == c => matches(&pattern[1..], &text[1..]),
            _ => false,
        }
    }
    matches(pattern.as_bytes(), text.as_bytes())
}

/// An overlay with kiln's metadata rules: dirs 0755, files 0755 when executable in the
/// checkout else 0644, owner 0:0; `files` entries override (git keeps only the x bit).
fn load_overlay(
    image: &mut Tree,
    source: &Path,
    dest: &str,
    files: &BTreeMap<String, RawMeta>,
) -> Result<()> {
    let dest = match ArchivePath::new(dest) {
        Ok(path) => Some(path),
        Err(crate::tree::PathError::Empty) => None,
        Err(err) => bail!("overlay dest {dest:?}: {err}"),
    };
    let mut sub = Tree::new();
    overlay::load_dir(&mut sub, source, dest.as_ref(), (0, 0))?;
    for (path, node) in sub.iter_mut() {
        let executable = node.meta.mode & 0o111 != 0;
        node.meta.mode = match node.kind {
            Kind::Dir => 0o755,
            Kind::Symlink(_) => 0o777,
            _ if executable => 0o755,
            _ => 0o644,
        };
        let key = path.as_str();
        if let Some(declared) = files
            .iter()
            .find(|(declared, _)| declared.trim_start_matches('/') == key)
            .map(|(_, meta)| meta)
        {
            if let Some(mode) = &declared.mode {
                node.meta.mode = u16::from_str_radix(mode, 8)
                    .ok()
                    .filter(|mode| *mode <= 0o7777)
                    .with_context(|| format!("[[overlays]] files.{key:?}: bad mode {mode:?}"))?;
            }
            node.meta.uid = declared.uid.unwrap_or(node.meta.uid);
            node.meta.gid = declared.gid.unwrap_or(node.meta.gid);
        }
    }
    // Files kept only to keep a directory in git.
    let keeps: Vec<ArchivePath> = sub
        .iter()
        .filter(|(path, _)| path.file_name() == ".keep")
        .map(|(path, _)| path.clone())
        .collect();
    for path in keeps {
        sub.remove(&path);
    }
    image.overlay(sub)?;
    Ok(())
}

/// /etc/passwd, /etc/group and /etc/shadow (locked) from the board, and home dirs.
/// Returns the log user's uid and gid when the board names one.
fn add_users(image: &mut Tree, board: &Board) -> Result<Option<(u32, u32)>> {
    if board.users.is_empty() {
        return Ok(None);
    }
    let origin = format!("{} [[users]]", board.file.display());
    let (mut passwd, mut shadow) = (String::new(), String::new());
    let mut groups: BTreeMap<u32, (String, Vec<String>)> = BTreeMap::new();
    for group in &board.groups {
        groups.insert(
            group.gid,
            (
                group.name.clone(),
                group.members.clone().unwrap_or_default(),
            ),
        );
    }
    for user in &board.users {
        let home = user.home.clone().unwrap_or_else(|| "/".to_string());
        let shell = user
            .shell
            .clone()
            .unwrap_or_else(|| "/bin/false".to_string());
        let _ = writeln!(
            passwd,
            "{}:x:{}:{}::{}:{}",
            user.name, user.uid, user.gid, home, shell
        );
        let _ = writeln!(shadow, "{}:!:0:0:99999:7:::", user.name);
        groups
            .entry(user.gid)
            .or_insert_with(|| (user.name.clone(), Vec::new()));
        if let Ok(home_path) = ArchivePath::new(&home) {
            let node = Node::new(Kind::Dir, Meta::new(0o755, user.uid, user.gid), &origin);
            image.replace(home_path, node)?;
        }
    }
    let mut group_text = String::new();
    for (gid, (name, members)) in &groups {
        let _ = writeln!(group_text, "{name}:x:{gid}:{}", members.join(","));
    }
    for (path, text, mode) in [
        ("etc/passwd", passwd, 0o644),
        ("etc/group", group_text, 0o644),
        ("etc/shadow", shadow, 0o600),
    ] {
        let node = Node::new(Kind::File(Content::inline(text)), Meta::root(mode), &origin);
        image.replace(ArchivePath::new(path)?, node)?;
    }
    let log_name = board
        .init_args
        .iter()
        .position(|arg| arg == "-u")
        .and_then(|index| board.init_args.get(index + 1))
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "nobody".to_string());
    let found = board
        .users
        .iter()
        .find(|user| user.name == log_name)
        .map(|user| (user.uid, user.gid));
    if found.is_none()
        && !log_name.contains(':')
        && log_name.parse::<u32>().is_err()
        && log_name != "nobody"
    {
        bail!(
            "{}: [init] log_user: user {log_name:?} not found in the image's passwd (note: add it to [[users]])",
            board.file.display()
        );
    }
    Ok(found)
}

/// The board's kernel modules and what they need, from the kernel package, plus
/// `/etc/kiln/modules`: their image paths in load order, which rc.init insmods.
fn add_modules(image: &mut Tree, board: &Board, debs: &BTreeMap<String, PathBuf>) -> Result<()> {
    add_module_closure(image, board, debs, &board.modules, "[kernel] modules")
}

/// Puts `names` (modules or aliases) and their closure from the kernel package into
/// `tree`, with `/etc/kiln/modules` listing them in load order. Modules built into the
/// kernel need nothing; a name the package does not have is a usage error.
fn add_module_closure(
    tree: &mut Tree,
    board: &Board,
    debs: &BTreeMap<String, PathBuf>,
    names: &[String],
    key: &str,
) -> Result<()> {
    let Some(kernel_deb) = fetch::kernel_deb(debs) else {
        bail!(crate::UsageError(format!(
            "{key}: the board has no kernel package to take them from"
        )));
    };
    let package = deb::read_cached(kernel_deb)?;
    let index = crate::modules::index(&package.data)?;
    let builtin = crate::modules::builtin(&package.data);
    let wanted: Vec<String> = names
        .iter()
        .filter(|name| !builtin.contains(&crate::modules::canonical(name)))
        .cloned()
        .collect();
    let order = crate::modules::closure(&index, &wanted)
        .map_err(|err| crate::UsageError(format!("{}: {key}: {err}", board.file.display())))?;
    let mut list = String::new();
    for module in &order {
        let node = package
            .data
            .get(&module.path)
            .cloned()
            .expect("indexed from this tree");
        tree.replace(module.path.clone(), node)?;
        let _ = writeln!(list, "/{}", module.path.as_str());
    }
    let node = Node::new(Kind::File(Content::inline(list)), Meta::root(0o644), key);
    tree.replace(ArchivePath::new("etc/kiln/modules")?, node)?;
    Ok(())
}

/// Pulls missing loaders and libraries out of the fetched packages until every ELF object
/// is satisfied; fails naming what is still missing.
fn pull_libraries(image: &mut Tree, pool: &Tree, board: &Board) -> Result<Vec<elf::Link>> {
    for _round in 0..32 {
        let errors = match elf::check(image, board.arch) {
            Ok(links) => return Ok(links),
            Err(errors) => errors,
        };
        let mut progress = false;
        for error in &errors {
            let elf::ElfError::Missing { how, needed, .. } = error else {
                continue;
            };
            let candidates: Vec<String> = if *how == "PT_INTERP" || needed.contains('/') {
                vec![needed.clone()]
            } else {
                board
                    .arch
                    .default_library_dirs()
                    .iter()
                    .map(|dir| format!("{dir}/{needed}"))
                    .collect()
            };
            for candidate in candidates {
                let mut trace = Vec::new();
                let Some(found) = elf::resolve_traced(pool, &candidate, &mut trace) else {
                    continue;
                };
                trace.push(found);
                for path in trace {
                    if image.get(&path).is_none() {
                        if let Some(node) = pool.get(&path) {
                            image.insert(path.clone(), node.clone())?;
                            progress = true;
                        }
                    }
                }
                break;
            }
        }
        if !progress {
            let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
            bail!(
                "the image's ELF closure is incomplete:\n  {}\nnote: add the package that provides it to [packages] include",
                text.join("\n  ")
            );
        }
    }
    bail!("the ELF closure did not settle after 32 rounds")
}

/// The maker's target checks: execlineb, export and cd exist in the execline bindir.
fn check_init_programs(image: &Tree, config: &init::Config) -> Result<()> {
    for program in ["execlineb", "export", "cd"] {
        let path = format!("{}/{program}", config.execline_bindir);
        if elf::resolve(image, &path).is_none() {
            bail!(
                "[init] execline_bindir: {path} is not in the image (note: Debian's execline lives in /usr/lib/execline/bin)"
            );
        }
    }
    Ok(())
}

/// `--explain`: each object's dependencies, with the package each library came from.
fn explain(links: &[elf::Link], image: &Tree) -> String {
    let mut out = String::new();
    let mut seen = BTreeSet::new();
    for link in links {
        if seen.insert(&link.object) {
            let _ = writeln!(out, "{}", link.object);
        }
        let package = image.get(&link.found).map_or("?", |node| &node.origin);
        let _ = writeln!(
            out,
            "  {} {} -> {} ({package})",
            link.how, link.needed, link.found
        );
    }
    out
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

/// The applets kiln's stage 0 runs.
const STAGE0_APPLETS: [&str; 9] = [
    "sh",
    "mount",
    "umount",
    "insmod",
    "findfs",
    "switch_root",
    "sleep",
    "cat",
    "echo",
];

/// The stage-0 initramfs for a card: busybox (with its libraries if it is not static),
/// the `[image] modules` closure with its load list, and kiln's
/// `/init`, which mounts the root by label and switch_roots into the image's init.
pub fn stage0(image: &Tree, board: &Board, debs: &BTreeMap<String, PathBuf>) -> Result<Tree> {
    let origin = "kiln stage 0";
    let Some(busybox_path) = elf::resolve(image, "/bin/busybox") else {
        bail!(
            "{}: a card image needs busybox in the image for its stage-0 initramfs (note: add busybox-static to [packages] include)",
            board.file.display()
        );
    };
    let Some(Node {
        kind: Kind::File(content),
        ..
    }) = image.get(&busybox_path).cloned()
    else {
        bail!("{busybox_path} is not a regular file");
    };
    let applets = busybox::applets(&content.read_all()?, busybox_path.as_str())?;
    let mut tree = Tree::new();
    for dir in ["bin", "dev", "etc", "proc", "sys", "newroot"] {
        tree.dir(dir, Meta::root(0o755), origin)?;
    }
    tree.insert(
        ArchivePath::new("dev/console")?,
        Node::new(
            Kind::CharDev { major: 5, minor: 1 },
            Meta::root(0o600),
            origin,
        ),
    )?;
    tree.insert(
        ArchivePath::new("bin/busybox")?,
        Node::new(Kind::File(content), Meta::root(0o755), origin),
    )?;
    for applet in STAGE0_APPLETS {
        if !applets.iter().any(|name| name == applet) {
            bail!("{busybox_path} has no {applet} applet, which kiln's stage 0 needs");
        }
        tree.insert(
            ArchivePath::new(&format!("bin/{applet}"))?,
            Node::new(
                Kind::Symlink("busybox".to_string()),
                Meta::root(0o777),
                origin,
            ),
        )?;
    }
    tree.file("init", include_str!("stage0.sh"), Meta::root(0o755), origin)?;
    let modules = board
        .image
        .as_ref()
        .map(|spec| spec.modules.clone())
        .unwrap_or_default();
    if !modules.is_empty() {
        add_module_closure(&mut tree, board, debs, &modules, "[image] modules")?;
    }
    pull_libraries(&mut tree, image, board)?;
    Ok(tree)
}

pub struct ImageRequest<'a> {
    pub board: &'a Board,
    pub output: PathBuf,
    pub offline: Option<PathBuf>,
    /// Add kiln's in-guest probe (`kiln boot --check`).
    pub probe: bool,
}

/// What `kiln image` made.
pub struct ImageBuilt {
    pub written: archive::image::Written,
    pub built: Built,
    /// Files of the boot partition, by name.
    pub boot_files: Vec<String>,
    pub timings: Vec<(String, f64)>,
}

/// `kiln image`: the board's tree as the root partition, and a boot partition with the
/// kernel, the dtb, the stage-0 initramfs, `cmdline.txt` and the board's extra files.
pub fn image(request: &ImageRequest) -> Result<ImageBuilt> {
    let board = request.board;
    let Some(spec) = &board.image else {
        bail!(crate::UsageError(format!(
            "{}: no [image] table: describe the card's partitions there (see README, \"Card images\")",
            board.file.display()
        )));
    };
    let started = std::time::Instant::now();
    let out_dir = match request.output.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let built = build(&Request {
        board,
        out_dir: out_dir.clone(),
        formats: Vec::new(),
        offline: request.offline.clone(),
        probe: request.probe,
    })?;
    let mut timings = vec![("image tree".to_string(), started.elapsed().as_secs_f64())];
    let clock = std::time::Instant::now();
    let options = archive::Options::from_env()?;
    let scratch_dir = archive::ScratchDir::create(&out_dir, "boot")?;
    let scratch = scratch_dir.path.as_path();
    let mut boot = Vec::new();
    if let Some(partition) = spec.boot() {
        let deb = fetch::kernel_deb(&built.debs).with_context(|| {
            format!(
                "{}: a boot partition needs [kernel] package",
                board.file.display()
            )
        })?;
        let (kernel, dtb) = crate::boot::kernel_from_package(board, deb, scratch)?;
        boot.push(("vmlinuz".to_string(), kernel));
        if let (Some(dtb_path), Some(name)) = (dtb, &board.dtb) {
            let base = name.rsplit('/').next().unwrap_or(name).to_string();
            boot.push((base, dtb_path));
        }
        let initrd = scratch.join("initrd.img");
        let stage0 = stage0(&built.tree, board, &built.debs)?;
        archive::write_file(
            &stage0,
            archive::Format::new(Container::Cpio, archive::Compression::Gzip),
            &initrd,
            &options,
        )?;
        boot.push(("initrd.img".to_string(), initrd));
        let cmdline = scratch.join("cmdline.txt");
        std::fs::write(
            &cmdline,
            format!(
                "{} root=LABEL={} rootfstype=ext4 rootwait rw\n",
                board.cmdline,
                spec.root().label
            ),
        )
        .with_context(|| format!("unable to write {}", cmdline.display()))?;
        boot.push(("cmdline.txt".to_string(), cmdline));
        for source in &partition.files {
            boot_files(source, &built.debs, scratch, &mut boot)?;
        }
        timings.push(("kernel, stage 0".to_string(), clock.elapsed().as_secs_f64()));
    }
    let input = archive::image::Input {
        board: &board.name,
        spec,
        drive: board.drive,
        root: &built.tree,
        boot: boot.clone(),
        mtime: options.mtime,
    };
    let written = archive::image::write(&input, &request.output)
        .with_context(|| format!("unable to write {}", request.output.display()))?;
    timings.extend(written.timings.iter().cloned());
    Ok(ImageBuilt {
        written,
        built,
        boot_files: boot.into_iter().map(|(name, _)| name).collect(),
        timings,
    })
}

/// Copies one `files` source into the scratch dir; the FAT writer sets their times, so
/// it must never see the user's own files.
fn boot_files(
    source: &crate::config::FileSource,
    debs: &BTreeMap<String, PathBuf>,
    scratch: &Path,
    boot: &mut Vec<(String, PathBuf)>,
) -> Result<()> {
    let mut add = |name: String, bytes: Vec<u8>| -> Result<()> {
        let copy = scratch.join(format!("file-{}", boot.len()));
        std::fs::write(&copy, bytes)
            .with_context(|| format!("unable to write {}", copy.display()))?;
        boot.retain(|(existing, _)| *existing != name);
        boot.push((name, copy));
        Ok(())
    };
    match source {
        crate::config::FileSource::Host(path) => {
            if path.is_dir() {
                let mut tree = Tree::new();
                overlay::load_dir(&mut tree, path, None, (0, 0))?;
                for (name, node) in tree.iter() {
                    if let Kind::File(content) = &node.kind {
                        add(name.as_str().to_string(), content.read_all()?)?;
                    }
                }
            } else {
                let bytes = std::fs::read(path)
                    .with_context(|| format!("[image] files: unable to read {}", path.display()))?;
                let name = path
                    .file_name()
                    .map(|name| name.to_string_lossy().into_owned())
                    .unwrap_or_default();
                add(name, bytes)?;
            }
        }
        crate::config::FileSource::Package {
            package,
            glob: pattern,
        } => {
            let deb = debs
                .get(package)
                .with_context(|| format!("[image] files: package {package} was not fetched"))?;
            let data = deb::read(deb)?.data;
            let mut found = 0;
            for (path, node) in data.iter() {
                if let Kind::File(content) = &node.kind {
                    if glob(pattern, path.as_str()) {
                        add(path.file_name().to_string(), content.read_all()?)?;
                        found += 1;
                    }
                }
            }
            if found == 0 {
                bail!(crate::UsageError(format!(
                    "[image] files: nothing in {package} matches {pattern:?}"
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{glob, relocate};
    use crate::tree::{ArchivePath, Kind, Meta, Tree};

    #[test]
    fn package_paths_follow_merged_usr_links() {
        let mut image = Tree::new();
        image.dir("usr/bin", Meta::root(0o755), "image").unwrap();
        image.symlink("bin", "usr/bin", "image").unwrap();
        let mut package = Tree::new();
        package.dir("bin", Meta::root(0o755), "pkg").unwrap();
        package
            .file("bin/sh", "x", Meta::root(0o755), "pkg")
            .unwrap();
        package
            .file("etc/x", "y", Meta::root(0o644), "pkg")
            .unwrap();
        let moved = relocate(&image, &package);
        let paths: Vec<String> = moved.iter().map(|(path, _)| path.to_string()).collect();
        assert_eq!(
            paths,
            vec!["/etc", "/etc/x", "/usr", "/usr/bin", "/usr/bin/sh"]
        );
        let mut merged = image.clone();
        merged.overlay(moved).unwrap();
        let bin = merged.get(&ArchivePath::new("bin").unwrap()).unwrap();
        assert_eq!(bin.kind, Kind::Symlink("usr/bin".to_string()));
    }

    #[test]
    fn globs_stay_within_a_component() {
        assert!(glob("usr/bin/s6-*", "usr/bin/s6-svscan"));
        assert!(!glob("usr/bin/s6-*", "usr/bin/s6/x"));
        assert!(glob("usr/lib/execline/bin/*", "usr/lib/execline/bin/cd"));
        assert!(glob("a?c", "abc"));
        assert!(!glob("a?c", "a/c"));
        assert!(!glob("usr/bin/x", "usr/bin/xy"));
    }
}
