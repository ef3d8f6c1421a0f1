//! `kiln flash IMAGE DEVICE`: write a card image to a block device (or a file), safely.
//!
//! Before writing it refuses what would hurt: a device that is mounted or holds a mounted
//! partition, the disk the running system lives on, a non-removable disk unless forced,
//! and a target smaller than the image. It shows the model and size and asks unless told
//! yes. After writing it syncs, reads the target back and compares checksums.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};

/// A refusal: the target is not safe to overwrite. Exit 100.
#[derive(Debug, thiserror::Error)]
#[error("refusing to write {target}: {why}")]
pub struct Refused {
    pub target: String,
    pub why: String,
}

/// A target kiln refuses is input.
pub fn classify(cause: &(dyn std::error::Error + 'static)) -> Option<crate::error::Kind> {
    cause.is::<Refused>().then_some(crate::error::Kind::Input)
}

pub struct Options {
    pub force: bool,
    pub yes: bool,
}

/// What is known about a block device from sysfs.
struct BlockDevice {
    name: String,
    major: u32,
    minor: u32,
    removable: bool,
    model: String,
}

fn block_device(path: &Path) -> Result<Option<BlockDevice>> {
    let metadata =
        fs::metadata(path).with_context(|| format!("unable to stat {}", path.display()))?;
    if !metadata.file_type().is_block_device() {
        return Ok(None);
    }
    let rdev = metadata.rdev();
    let (major, minor) = (
        nix::sys::stat::major(rdev) as u32,
        nix::sys::stat::minor(rdev) as u32,
    );
    let sys = PathBuf::from(format!("/sys/dev/block/{major}:{minor}"));
    let name = fs::canonicalize(&sys)
        .ok()
        .and_then(|real| {
            real.file_name()
                .map(|name| name.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| path.display().to_string());
    let read = |file: &str| {
        fs::read_to_string(sys.join(file))
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    Ok(Some(BlockDevice {
        name,
        major,
        minor,
        removable: read("removable") == "1",
        model: [read("device/vendor"), read("device/model")]
            .join(" ")
            .trim()
            .to_string(),
    }))
}

/// (major, minor) of every mounted filesystem's device. Unreadable mountinfo is an
/// error, not "nothing mounted": the check must fail closed.
fn mounted_devices() -> Result<Vec<(u32, u32)>> {
    let text = fs::read_to_string("/proc/self/mountinfo").context(
        "unable to read /proc/self/mountinfo, so kiln cannot tell what is mounted (note: flash needs /proc)",
    )?;
    Ok(text
        .lines()
        .filter_map(|line| line.split_whitespace().nth(2))
        .filter_map(|numbers| numbers.split_once(':'))
        .filter_map(|(major, minor)| Some((major.parse().ok()?, minor.parse().ok()?)))
        .collect())
}

/// The device and its partitions, as (major, minor).
fn device_and_partitions(device: &BlockDevice) -> Vec<(u32, u32)> {
    let mut numbers = vec![(device.major, device.minor)];
    let sys = PathBuf::from(format!("/sys/class/block/{}", device.name));
    if let Ok(entries) = fs::read_dir(&sys) {
        for entry in entries.flatten() {
            let dev = entry.path().join("dev");
            if let Ok(text) = fs::read_to_string(dev) {
                if let Some((major, minor)) = text.trim().split_once(':') {
                    if let (Ok(major), Ok(minor)) = (major.parse(), minor.parse()) {
                        numbers.push((major, minor));
                    }
                }
            }
        }
    }
    numbers
}

/// The image to write: an open regular file or block device, and its length.
struct Image {
    file: File,
    len: u64,
    /// (device, inode), to refuse writing an image onto itself.
    id: (u64, u64),
}

/// Opens the image; anything but a regular file or a block device of known size is
/// refused (a directory, `/dev/zero`, a fifo would never end or never start).
fn open_image(image: &Path) -> Result<Image> {
    let shown = image.display().to_string();
    let refuse = |why: String| Refused {
        target: shown.clone(),
        why,
    };
    let mut file = match crate::host::input::open(image, true) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            return Err(crate::error::input(format!("{shown}: no such image file")));
        }
        Err(err) if err.kind() == io::ErrorKind::InvalidInput => {
            return Err(refuse(
                "the image must be a regular file or a block device (note: give the .img that kiln image wrote)"
                    .to_string(),
            )
            .into());
        }
        Err(err) => return Err(err).with_context(|| format!("unable to open {shown}")),
    };
    let metadata = file
        .metadata()
        .with_context(|| format!("unable to stat {shown}"))?;
    let kind = metadata.file_type();
    let len = if kind.is_file() {
        metadata.len()
    } else if kind.is_block_device() {
        let len = file
            .seek(SeekFrom::End(0))
            .with_context(|| format!("unable to size {shown}"))?;
        file.seek(SeekFrom::Start(0))
            .with_context(|| format!("unable to rewind {shown}"))?;
        len
    } else {
        return Err(refuse(
            "the image must be a regular file or a block device (note: give the .img that kiln image wrote)"
                .to_string(),
        )
        .into());
    };
    if len == 0 {
        return Err(refuse("the image is empty".to_string()).into());
    }
    Ok(Image {
        file,
        len,
        id: (metadata.dev(), metadata.ino()),
    })
}

/// Writes `image` to `target` after the safety checks; returns bytes written. The
/// target is opened for writing only after every check has passed.
pub fn flash(image: &Path, target: &Path, options: &Options) -> Result<u64> {
    let source = open_image(image)?;
    let image_len = source.len;
    let target_name = target.display().to_string();
    let refuse = |why: String| Refused {
        target: target_name.clone(),
        why,
    };
    let existing = match fs::metadata(target) {
        Ok(metadata) => Some(metadata),
        Err(err) if err.kind() == io::ErrorKind::NotFound => None,
        Err(err) => return Err(err).with_context(|| format!("unable to stat {target_name}")),
    };
    if let Some(metadata) = &existing {
        if (metadata.dev(), metadata.ino()) == source.id {
            return Err(refuse(format!("it is the image {} itself", image.display())).into());
        }
        let kind = metadata.file_type();
        if !kind.is_file() && !kind.is_block_device() {
            return Err(
                refuse("it is neither a block device nor a regular file".to_string()).into(),
            );
        }
    }
    // A device name that does not exist (a typo, a card not inserted) must not become a
    // file in /dev, which is RAM and where a later device would find it.
    if existing.is_none()
        && target
            .parent()
            .and_then(|dir| fs::canonicalize(dir).ok())
            .is_some_and(|dir| dir.starts_with("/dev"))
    {
        return Err(refuse(
            "no such device (note: is the card inserted? lsblk lists the disks)".to_string(),
        )
        .into());
    }
    let device = if existing.is_some() {
        block_device(target)?
    } else {
        None
    };
    if let Some(device) = &device {
        let mounted = mounted_devices()?;
        let ours = device_and_partitions(device);
        if ours.iter().any(|number| mounted.contains(number)) {
            // The root filesystem's device is mounted too; say which case it is.
            let root = fs::metadata("/").map(|meta| meta.dev()).unwrap_or(0);
            let root = (
                nix::sys::stat::major(root) as u32,
                nix::sys::stat::minor(root) as u32,
            );
            let why = if ours.contains(&root) {
                "it holds the running system's root filesystem".to_string()
            } else {
                "it or one of its partitions is mounted (note: unmount it first)".to_string()
            };
            return Err(refuse(why).into());
        }
        if !device.removable && !options.force {
            return Err(refuse(format!(
                "{} is not a removable disk (note: pass --force if this really is the card)",
                device.name
            ))
            .into());
        }
        let mut file =
            File::open(target).with_context(|| format!("unable to open {target_name}"))?;
        let size = file
            .seek(SeekFrom::End(0))
            .with_context(|| format!("unable to size {target_name}"))?;
        if size < image_len {
            return Err(refuse(format!("it holds {size} bytes, the image {image_len}")).into());
        }
        if !options.yes {
            eprint!(
                "kiln: write {} ({image_len} bytes) to {target_name}: {} ({}), {size} bytes; everything on it is lost. Type yes: ",
                image.display(),
                if device.model.is_empty() {
                    "unknown model"
                } else {
                    &device.model
                },
                device.name
            );
            let mut answer = String::new();
            io::stdin()
                .lock()
                .read_line(&mut answer)
                .context("unable to read the answer")?;
            if answer.trim() != "yes" {
                return Err(refuse("not confirmed".to_string()).into());
            }
        }
    }

    let mut source = Read::take(source.file, image_len);
    let mut out = OpenOptions::new()
        .write(true)
        .create(device.is_none())
        .truncate(device.is_none())
        .open(target)
        .with_context(|| format!("unable to open {target_name} for writing"))?;
    let bar = crate::host::progress::spinner(&format!("flashing {target_name}"));
    bar.0.set_length(image_len);
    let start = Instant::now();
    let mut buffer = vec![0u8; 4 << 20];
    let mut written = 0u64;
    let mut crc = flate2::Crc::new();
    loop {
        let n = source
            .read(&mut buffer)
            .context("unable to read the image")?;
        if n == 0 {
            break;
        }
        out.write_all(&buffer[..n])
            .with_context(|| format!("unable to write {target_name}"))?;
        crc.update(&buffer[..n]);
        written += n as u64;
        bar.0.set_position(written);
    }
    out.sync_all()
        .with_context(|| format!("unable to sync {target_name}"))?;
    drop(bar);
    let seconds = start.elapsed().as_secs_f64().max(1e-6);

    // Read back exactly the image's length and compare.
    let mut back =
        File::open(target).with_context(|| format!("unable to read back {target_name}"))?;
    let mut check = flate2::Crc::new();
    let mut remaining = image_len;
    while remaining > 0 {
        let want = buffer.len().min(remaining as usize);
        back.read_exact(&mut buffer[..want])
            .with_context(|| format!("unable to read back {target_name}"))?;
        check.update(&buffer[..want]);
        remaining -= want as u64;
    }
    if check.sum() != crc.sum() {
        bail!(
            "{target_name}: read-back CRC-32 {:08x} differs from the image's {:08x}",
            check.sum(),
            crc.sum()
        );
    }
    eprintln!(
        "kiln: wrote {written} bytes to {target_name} in {seconds:.2} s ({:.1} MB/s), synced, read back: CRC-32 {:08x} matches",
        written as f64 / seconds / 1e6,
        crc.sum()
    );
    Ok(written)
}
