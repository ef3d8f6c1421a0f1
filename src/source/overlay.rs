//! Host directories into a `Tree`: the `initramfs/` skeleton, board overlays, `kiln pack DIR`.
//!
//! Permission bits come from the host file (git keeps only the x bit, so callers that
//! care declare modes elsewhere); owners never do: they are the caller's `owner`, because a
//! host uid means nothing inside an image. File bodies are not read here, only referenced.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::tree::content::Content;
use crate::tree::{ArchivePath, Kind, Meta, Node, Tree};

/// Copies the host directory `source` into `tree` under `dest`, every entry owned by
/// `owner` (uid, gid). Later calls override earlier entries path by path.
pub fn load_dir(
    tree: &mut Tree,
    source: &Path,
    dest: Option<&ArchivePath>,
    owner: (u32, u32),
) -> Result<()> {
    let origin = source.display().to_string();
    let metadata = fs::metadata(source)
        .with_context(|| format!("unable to read directory {}", source.display()))?;
    if !metadata.is_dir() {
        bail!("{} is not a directory", source.display());
    }
    let mut sub = Tree::new();
    if let Some(dest) = dest {
        let node = Node::new(
            Kind::Dir,
            Meta::new(metadata.permissions().mode(), owner.0, owner.1),
            &origin,
        );
        sub.insert(dest.clone(), node)?;
    }
    let mut inodes: BTreeMap<(u64, u64), ArchivePath> = BTreeMap::new();
    walk(&mut sub, source, source, dest, owner, &origin, &mut inodes)?;
    tree.overlay(sub)?;
    Ok(())
}

fn walk(
    tree: &mut Tree,
    root: &Path,
    dir: &Path,
    dest: Option<&ArchivePath>,
    owner: (u32, u32),
    origin: &str,
    inodes: &mut BTreeMap<(u64, u64), ArchivePath>,
) -> Result<()> {
    let mut entries = fs::read_dir(dir)
        .with_context(|| format!("unable to read directory {}", dir.display()))?
        .collect::<std::io::Result<Vec<_>>>()
        .with_context(|| format!("unable to read directory {}", dir.display()))?;
    entries.sort_by_key(|entry| entry.file_name());
    for entry in entries {
        let host_path = entry.path();
        let relative = host_path.strip_prefix(root).expect("walk stays below root");
        let Some(relative) = relative.to_str() else {
            bail!("{}: file name is not valid UTF-8", host_path.display());
        };
        let path = match dest {
            Some(dest) => dest.join(relative),
            None => ArchivePath::new(relative),
        }
        .with_context(|| format!("{}: unusable name", host_path.display()))?;
        let metadata = fs::symlink_metadata(&host_path)
            .with_context(|| format!("unable to stat {}", host_path.display()))?;
        let file_type = metadata.file_type();
        let meta = Meta::new(metadata.mode(), owner.0, owner.1);
        let (major, minor) = (
            nix::sys::stat::major(metadata.rdev()) as u32,
            nix::sys::stat::minor(metadata.rdev()) as u32,
        );
        let kind = if file_type.is_dir() {
            Kind::Dir
        } else if file_type.is_file() {
            let key = (metadata.dev(), metadata.ino());
            match inodes.get(&key) {
                Some(first) if metadata.nlink() > 1 => Kind::HardLink(first.clone()),
                _ => {
                    if metadata.nlink() > 1 {
                        inodes.insert(key, path.clone());
                    }
                    Kind::File(Content::Host {
                        path: host_path.clone(),
                        len: metadata.len(),
                    })
                }
            }
        } else if file_type.is_symlink() {
            let target = fs::read_link(&host_path)
                .with_context(|| format!("unable to read symlink {}", host_path.display()))?;
            let Some(target) = target.to_str() else {
                bail!("{}: symlink target is not valid UTF-8", host_path.display());
            };
            Kind::Symlink(target.to_string())
        } else if file_type.is_char_device() {
            Kind::CharDev { major, minor }
        } else if file_type.is_block_device() {
            Kind::BlockDev { major, minor }
        } else if file_type.is_fifo() {
            Kind::Fifo
        } else {
            Kind::Socket
        };
        let is_dir = kind == Kind::Dir;
        tree.insert(path.clone(), Node::new(kind, meta, origin))?;
        if is_dir {
            walk(tree, root, &host_path, dest, owner, origin, inodes)?;
        }
    }
    Ok(())
}
