//! The kernel, dtb, initramfs and command line to boot: out of a card image's boot
//! partition, or out of the board's kernel package.

use std::path::Path;

use anyhow::{Context, Result};

use super::qemu::Artifacts;
use crate::config::Board;

/// The boot files of a card or disk image made by `kiln image`: the first FAT partition
/// with a cmdline.txt gives the kernel (`vmlinuz`), `initrd.img`, the board's dtb (by
/// its base name) and the command line, copied out next to the other boot files.
pub fn from_card(board: &Board, image: &Path, out_dir: &Path) -> Result<Artifacts> {
    use crate::image::fat::fat_extract;
    use crate::image::table::read_table;
    std::fs::create_dir_all(out_dir)
        .with_context(|| format!("unable to create {}", out_dir.display()))?;
    let dest = |name: &str| out_dir.join(format!("{}.card-{name}", board.name));
    let extents = read_table(image)?;
    let boot = extents
        .iter()
        .find(|extent| fat_extract(image, **extent, "cmdline.txt", &dest("cmdline.txt")).is_ok())
        .copied()
        .ok_or_else(|| {
            crate::error::Input(format!(
                "{}: no FAT partition with cmdline.txt (is it a kiln image with a boot partition?)",
                image.display()
            ))
        })?;
    let cmdline = std::fs::read_to_string(dest("cmdline.txt"))
        .with_context(|| format!("unable to read {}", dest("cmdline.txt").display()))?;
    fat_extract(image, boot, "vmlinuz", &dest("vmlinuz"))?;
    fat_extract(image, boot, "initrd.img", &dest("initrd.img"))?;
    let dtb = match board.kernel.dtb_file_name() {
        Some(name) => {
            fat_extract(image, boot, name, &dest(name))?;
            Some(dest(name))
        }
        None => None,
    };
    Ok(Artifacts {
        kernel: dest("vmlinuz"),
        initrd: Some(dest("initrd.img")),
        dtb,
        cmdline: Some(cmdline.trim().to_string()),
        disk: Some((image.to_path_buf(), board.qemu.drive)),
    })
}
