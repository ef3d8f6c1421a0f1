//! The stage-0 initramfs of a card: busybox, the `[image] modules` closure and kiln's
//! `/init` (`stage0.sh`), which mounts the root by label and switch_roots into the
//! image's own init.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Result, bail};

use crate::config::Board;
use crate::tree::{ArchivePath, Kind, Meta, Node, Tree};

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
pub fn tree(image: &Tree, board: &Board, debs: &BTreeMap<String, PathBuf>) -> Result<Tree> {
    let origin = "kiln stage 0";
    let Some(busybox_path) = crate::tree::resolve::resolve(image, "/bin/busybox") else {
        bail!(crate::error::Input(format!(
            "{}: a card image needs busybox in the image for its stage-0 initramfs (note: add busybox-static to [packages] include)",
            board.file.display()
        )));
    };
    let Some(Node {
        kind: Kind::File(content),
        ..
    }) = image.get(&busybox_path).cloned()
    else {
        bail!("{busybox_path} is not a regular file");
    };
    let applets = crate::rootfs::busybox::applets(&content.read_all()?, busybox_path.as_str())?;
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
            bail!(crate::error::Input(format!(
                "{busybox_path} has no {applet} applet, which kiln's stage 0 needs"
            )));
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
        crate::rootfs::modules::add(&mut tree, board, debs, &modules, "[image] modules")?;
    }
    crate::rootfs::libraries::pull(&mut tree, image, board.arch)?;
    Ok(tree)
}
