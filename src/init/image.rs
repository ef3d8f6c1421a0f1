//! The generated init as an image: the tree under the basedir, stage 1 at `/sbin/init`
//! (and `/init` for cpio), mount points and the device nodes pid 1 needs before `/dev`
//! is mounted. Pure: the maker's archive mode and `kiln build` both take it from here.

use super::{Config, Generated};
use crate::archive::Container;
use crate::tree::content::Content;
use crate::tree::{ArchivePath, Kind, Meta, Node, Tree, TreeError};

/// The generated tree as an image: under the basedir, plus stage 1 at /sbin/init (and
/// /init for cpio), mount points and the device nodes pid 1 needs before /dev is mounted.
/// A conflict is an error, not a panic: the options keep the basedir and tmpfsdir off
/// the fixed paths, and this stays correct if a new one is added.
pub fn image_tree(
    config: &Config,
    generated: &Generated,
    container: Container,
) -> Result<Tree, TreeError> {
    let mut image = Tree::new();
    let origin = "s6-linux-init-maker";
    let stage1 = Content::inline(generated.stage1.clone());
    let mut add = |path: &str, kind: Kind, meta: Meta| -> Result<(), TreeError> {
        let path = ArchivePath::new(path)?;
        image.insert(path, Node::new(kind, meta, origin))
    };
    add(&config.options.basedir, Kind::Dir, Meta::root(0o755))?;
    add("dev", Kind::Dir, Meta::root(0o755))?;
    add(
        "dev/console",
        Kind::CharDev { major: 5, minor: 1 },
        Meta::root(0o600),
    )?;
    add(
        "dev/null",
        Kind::CharDev { major: 1, minor: 3 },
        Meta::root(0o666),
    )?;
    add("proc", Kind::Dir, Meta::root(0o755))?;
    add("sys", Kind::Dir, Meta::root(0o755))?;
    add(&config.options.tmpfsdir, Kind::Dir, Meta::root(0o755))?;
    add("sbin/init", Kind::File(stage1.clone()), Meta::root(0o755))?;
    if container == Container::Cpio {
        add("init", Kind::File(stage1), Meta::root(0o755))?;
    }
    let base = ArchivePath::new(&config.options.basedir)?;
    for (path, node) in generated.tree.iter() {
        image.insert(base.join(path.as_str())?, node.clone())?;
    }
    Ok(image)
}
