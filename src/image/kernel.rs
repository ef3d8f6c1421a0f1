//! The kernel image and the board's device tree, out of the fetched kernel package.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::config::Board;
use crate::host::temp::TempFile;
use crate::tree::{Kind, Node};

/// Writes the kernel (and the board's dtb) out of the fetched kernel package.
pub fn from_package(
    board: &Board,
    deb: &Path,
    out_dir: &Path,
) -> Result<(PathBuf, Option<PathBuf>)> {
    let package = crate::source::deb::read_cached(deb)?;
    let find = |wanted: &dyn Fn(&str) -> bool| {
        package
            .data
            .iter()
            .find(|(path, node)| matches!(node.kind, Kind::File(_)) && wanted(path.as_str()))
            .map(|(path, node)| (path.clone(), node.clone()))
    };
    let Some((kernel_path, kernel)) = find(&|path| path.starts_with("boot/vmlinuz-")) else {
        bail!("{}: no boot/vmlinuz-* in the kernel package", deb.display());
    };
    std::fs::create_dir_all(out_dir)
        .with_context(|| format!("unable to create {}", out_dir.display()))?;
    let save = |node: &Node, name: &str| -> Result<PathBuf> {
        let Kind::File(content) = &node.kind else {
            unreachable!("found as a file");
        };
        let dest = out_dir.join(name);
        let bytes = content
            .read_all()
            .with_context(|| format!("unable to read {}", content.describe()))?;
        let temp = TempFile::create(&dest)?;
        std::fs::write(&temp.path, bytes)
            .with_context(|| format!("unable to write {}", temp.path.display()))?;
        temp.commit(&dest)?;
        Ok(dest)
    };
    let kernel = save(&kernel, &format!("{}.kernel", board.name))?;
    let dtb = match &board.kernel.dtb {
        None => None,
        Some(dtb) => {
            let Some((_, node)) = find(&|path| {
                path.starts_with("usr/lib/linux-image-") && path.ends_with(&format!("/{dtb}"))
            }) else {
                bail!(crate::error::Input(format!(
                    "{}: [kernel] dtb: {dtb} is not in {} (from {})",
                    board.file.display(),
                    deb.display(),
                    kernel_path
                )));
            };
            Some(save(&node, &format!("{}.dtb", board.name))?)
        }
    };
    Ok((kernel, dtb))
}
