//! A FAT32 boot partition inside an image file: `mkfs.fat --offset` formats it in place
//! and mtools (`mmd`, `mcopy -i IMAGE@@OFFSET`) fill it, unprivileged. Determinism:
//! `--invariant` and a volume id derived from the board; file and directory times come
//! from SOURCE_DATE_EPOCH (mtools honours it) and `mcopy -m` with staged mtimes.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use crate::config::image::Extent;
use crate::host::tool;

const CLUSTER: u64 = 4096;

/// Bytes a FAT partition needs for these files (clusters plus room for the FATs).
pub fn estimate(files: &[(String, PathBuf)]) -> u64 {
    let data: u64 = files
        .iter()
        .map(|(_, path)| {
            std::fs::metadata(path).map_or(0, |meta| meta.len().div_ceil(CLUSTER) * CLUSTER)
        })
        .sum();
    data + data / 50 + (1 << 20)
}

/// Formats the partition and copies `files` (name in the partition → host file) in.
/// Names may have directories (`overlays/x.dtbo`); they are made first.
/// The host files must be the caller's scratch copies: their mtimes are set to `mtime`
/// (mcopy keeps a source's mtime), so a user's own files must never be passed here.
pub fn write(
    image: &Path,
    extent: Extent,
    label: &str,
    uuid: [u8; 16],
    files: &[(String, PathBuf)],
    mtime: u64,
) -> Result<()> {
    let volume_id = format!(
        "{:02x}{:02x}{:02x}{:02x}",
        uuid[0], uuid[1], uuid[2], uuid[3]
    );
    tool::run(
        Command::new(tool::find("mkfs.fat")?)
            .args(["-F", "32", "-n", &label.to_uppercase(), "-i", &volume_id])
            .args(["--invariant", "--offset"])
            .arg((extent.start / 512).to_string())
            .arg(image)
            .arg((extent.size / 1024).to_string()),
        None,
    )?;
    let target = mtools_target(image, extent);
    let mtools = |program: &str| -> Result<Command> {
        let mut command = Command::new(tool::find(program)?);
        command
            .env("MTOOLS_SKIP_CHECK", "1")
            .env("SOURCE_DATE_EPOCH", mtime.to_string())
            .arg("-i")
            .arg(&target);
        Ok(command)
    };
    let mut dirs: Vec<&str> = Vec::new();
    for (name, _) in files {
        let mut at = name.as_str();
        while let Some((parent, _)) = at.rsplit_once('/') {
            if !dirs.contains(&parent) {
                dirs.push(parent);
            }
            at = parent;
        }
    }
    dirs.sort_unstable();
    for dir in dirs {
        tool::run(mtools("mmd")?.arg(format!("::/{dir}")), None)?;
    }
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(mtime);
    for (name, path) in files {
        // mcopy -m keeps the source's mtime: make it the image's.
        std::fs::File::options()
            .write(true)
            .open(path)
            .and_then(|file| file.set_modified(time))
            .with_context(|| format!("unable to set the time of {}", path.display()))?;
        tool::run(
            mtools("mcopy")?
                .args(["-m", "-o"])
                .arg(path)
                .arg(format!("::/{name}")),
            None,
        )?;
    }
    Ok(())
}

/// Copies a file out of a FAT partition of an image (mtools).
pub fn fat_extract(image: &Path, extent: Extent, name: &str, dest: &Path) -> Result<()> {
    let target = mtools_target(image, extent);
    tool::run(
        Command::new(tool::find("mcopy")?)
            .env("MTOOLS_SKIP_CHECK", "1")
            .arg("-o")
            .arg("-i")
            .arg(&target)
            .arg(format!("::/{name}"))
            .arg(dest),
        None,
    )
    .with_context(|| format!("{}: no {name} in the boot partition", image.display()))?;
    Ok(())
}

/// mtools' name for a partition inside an image file: `IMAGE@@OFFSET`.
fn mtools_target(image: &Path, extent: Extent) -> OsString {
    let mut target = OsString::from(image);
    target.push(format!("@@{}", extent.start));
    target
}
