//! Partitioned disk and SD-card images, written into a regular file without root: the
//! partition table by `sfdisk`, an ext4 root by `mke2fs -d` plus `debugfs` (owners,
//! modes, times, device nodes and fifos), a FAT boot partition by `mkfs.fat` plus mtools.
//! Every tool writes straight at the partition's offset inside the one image file, so
//! nothing is copied and the file stays sparse.
//!
//! Why Debian's tools and not a Rust ext4 writer: e2fsprogs is the reference ext4
//! implementation (the same code fsck uses to judge the result), works on image files
//! unprivileged, and takes fixed UUIDs, hash seeds and timestamps, which is all
//! determinism needs. The `layout` arithmetic is kiln's own and unit-tested.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};

use super::{ext4, fat};
use crate::UsageError;
use crate::config::{Contents, Drive, Filesystem, ImageSpec, Table};
use crate::tree::Tree;

const MIB: u64 = 1 << 20;
/// Sectors at the end of a GPT disk for the backup header and entries.
const GPT_BACKUP: u64 = 33 * 512;
/// Below this mkfs.fat's FAT32 has too few clusters for mtools to accept it.
pub const FAT32_MIN: u64 = 64 * MIB;

/// Where a partition lands: byte offset and length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    pub start: u64,
    pub size: u64,
}

/// Places the partitions. `needed[i]` is what partition i's contents take (0 for none);
/// a partition without a size gets that plus its margin, rounded up to a MiB, and the
/// last one without a size takes the rest of the image. Returns the image size and one
/// extent per partition, or a usage error naming what does not fit.
pub fn layout(spec: &ImageSpec, drive: Drive, needed: &[u64]) -> Result<(u64, Vec<Extent>)> {
    let round = |n: u64| n.div_ceil(MIB) * MIB;
    let first_free = MIB;
    let mut extents = Vec::new();
    let mut end = first_free;
    let last = spec.partitions.len() - 1;
    for (index, partition) in spec.partitions.iter().enumerate() {
        let name = format!("[[image.partitions]] #{} ({})", index + 1, partition.label);
        let start = match partition.start {
            Some(start) => {
                if start % 512 != 0 {
                    bail!(UsageError(format!(
                        "{name}: start {start} is not a multiple of 512 bytes (use e.g. \"4M\")"
                    )));
                }
                if start < first_free {
                    bail!(UsageError(format!(
                        "{name}: start {start} overlaps the partition table (the first MiB)"
                    )));
                }
                if start < end {
                    bail!(UsageError(format!(
                        "{name}: start {} overlaps the previous partition, which ends at {}",
                        show(start),
                        show(end)
                    )));
                }
                start
            }
            None => end,
        };
        let mut minimum = needed[index];
        if partition.filesystem == Filesystem::Fat32 {
            minimum = minimum.max(FAT32_MIN);
        }
        let size = match partition.size {
            Some(size) => {
                if size % 512 != 0 {
                    bail!(UsageError(format!(
                        "{name}: size {size} is not a multiple of 512 bytes"
                    )));
                }
                if size < minimum {
                    let why = if partition.filesystem == Filesystem::Fat32 && minimum == FAT32_MIN {
                        "FAT32 needs at least 64M".to_string()
                    } else {
                        format!("its contents need {}", show(minimum))
                    };
                    bail!(UsageError(format!(
                        "{name}: size {} is too small: {why}; raise size or drop it to size by contents",
                        show(size)
                    )));
                }
                size
            }
            // The last partition is grown to the image's end below.
            None => round(needed[index] + partition.margin).max(round(minimum)),
        };
        extents.push(Extent { start, size });
        end = start + size;
    }
    let tail = match spec.table {
        Table::Mbr => 0,
        Table::Gpt => GPT_BACKUP,
    };
    let wanted = round(end + tail);
    let total = match spec.size {
        Some(total) => {
            if total < wanted {
                bail!(UsageError(format!(
                    "[image] size {}: the partitions need {} (they end at {}); raise size or shrink them",
                    show(total),
                    show(wanted),
                    show(end)
                )));
            }
            if drive == Drive::Sd && !total.is_power_of_two() {
                bail!(UsageError(format!(
                    "[image] size {}: QEMU's SD card must be a power of two (e.g. {})",
                    show(total),
                    show(total.next_power_of_two())
                )));
            }
            total
        }
        None if drive == Drive::Sd => wanted.next_power_of_two(),
        None => wanted,
    };
    if spec.partitions[last].size.is_none() {
        let grown = &mut extents[last];
        grown.size = (total - tail - grown.start) / MIB * MIB;
    }
    Ok((total, extents))
}

/// `64M`-style when exact, bytes otherwise.
fn show(bytes: u64) -> String {
    if bytes % (1 << 30) == 0 && bytes > 0 {
        format!("{}G", bytes >> 30)
    } else if bytes % MIB == 0 && bytes > 0 {
        format!("{}M", bytes >> 20)
    } else {
        format!("{bytes} bytes")
    }
}

/// A stable 128-bit id from a name: the board's name and a purpose, so the same board
/// always gets the same UUIDs and two boards do not share them. FNV-1a, twice.
pub fn stable_id(name: &str) -> [u8; 16] {
    let fnv = |seed: u64| {
        let mut hash = 0xcbf2_9ce4_8422_2325u64 ^ seed;
        for byte in name.bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        hash
    };
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&fnv(0).to_be_bytes());
    id[8..].copy_from_slice(&fnv(0x6b69_6c6e).to_be_bytes());
    // RFC 4122 variant, version 4 layout (the bits, not the randomness).
    id[6] = (id[6] & 0x0f) | 0x40;
    id[8] = (id[8] & 0x3f) | 0x80;
    id
}

pub fn uuid_string(id: [u8; 16]) -> String {
    let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// The sfdisk script for the table.
pub fn sfdisk_script(spec: &ImageSpec, extents: &[Extent], board: &str) -> String {
    let id = stable_id(&format!("{board} disk"));
    let mut script = String::new();
    match spec.table {
        Table::Mbr => {
            let label_id = u32::from_be_bytes([id[0], id[1], id[2], id[3]]);
            let _ = writeln!(script, "label: dos\nlabel-id: 0x{label_id:08x}");
        }
        Table::Gpt => {
            let _ = writeln!(script, "label: gpt\nlabel-id: {}", uuid_string(id));
        }
    }
    script.push_str("unit: sectors\n");
    for (partition, extent) in spec.partitions.iter().zip(extents) {
        let type_ =
            partition
                .type_
                .clone()
                .unwrap_or_else(|| match (spec.table, partition.filesystem) {
                    (Table::Mbr, Filesystem::Fat32) => "c".to_string(),
                    (Table::Mbr, Filesystem::Ext4) => "83".to_string(),
                    (Table::Gpt, Filesystem::Fat32) => {
                        "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7".to_string()
                    }
                    (Table::Gpt, Filesystem::Ext4) => {
                        "0FC63DAF-8483-4772-8E79-3D69D8477DE4".to_string()
                    }
                });
        let type_ = type_.trim_start_matches("0x");
        let _ = write!(
            script,
            "start={}, size={}, type={type_}",
            extent.start / 512,
            extent.size / 512
        );
        match spec.table {
            Table::Mbr if partition.contents == Contents::Boot => script.push_str(", bootable"),
            Table::Mbr => {}
            Table::Gpt => {
                let uuid = uuid_string(stable_id(&format!("{board} part {}", partition.label)));
                let _ = write!(script, ", uuid={uuid}, name=\"{}\"", partition.label);
            }
        }
        script.push('\n');
    }
    script
}

/// Runs a tool, feeding `input`; fails with its stderr and the command line.
pub fn run_tool(command: &mut Command, input: Option<&str>) -> Result<String> {
    let shown = format!("{command:?}");
    command
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .with_context(|| format!("unable to run {shown}"))?;
    if let Some(input) = input {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("piped");
        stdin
            .write_all(input.as_bytes())
            .with_context(|| format!("unable to feed {shown}"))?;
    }
    let output = child
        .wait_with_output()
        .with_context(|| format!("unable to run {shown}"))?;
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    if !output.status.success() {
        bail!("{shown} failed ({}):\n{}", output.status, stderr.trim_end());
    }
    Ok(stderr)
}

/// The host tools an image needs, each with the Debian package that has it.
const TOOLS: [(&str, &str); 7] = [
    ("sfdisk", "fdisk"),
    ("mke2fs", "e2fsprogs"),
    ("debugfs", "e2fsprogs"),
    ("e2fsck", "e2fsprogs"),
    ("mkfs.fat", "dosfstools"),
    ("mcopy", "mtools"),
    ("mmd", "mtools"),
];

/// Finds a tool on PATH or in the sbin directories a non-root PATH often lacks.
pub fn tool(name: &str) -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .collect::<Vec<_>>();
    for dir in dirs {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    let package = TOOLS
        .iter()
        .find(|(tool, _)| *tool == name)
        .map_or("it", |(_, package)| package);
    bail!(
        "{name} is not installed\nnote: apt-get install {package} (ci/install-packages installs every tool kiln image uses)"
    )
}

/// What goes into the image.
pub struct Input<'a> {
    pub board: &'a str,
    pub spec: &'a ImageSpec,
    pub drive: Drive,
    /// The root partition's tree.
    pub root: &'a Tree,
    /// The boot partition's files: name → host file.
    pub boot: Vec<(String, PathBuf)>,
    pub mtime: u64,
}

/// What `write` did, for the report.
pub struct Written {
    pub size: u64,
    pub extents: Vec<Extent>,
    pub timings: Vec<(String, f64)>,
}

/// Writes the image to `dest` through a temporary file renamed into place at the end.
pub fn write(input: &Input, dest: &Path) -> Result<Written> {
    for (name, _) in TOOLS {
        tool(name)?;
    }
    let mut timings = Vec::new();
    let mut clock = Instant::now();
    let mut lap = |timings: &mut Vec<(String, f64)>, what: &str| {
        timings.push((what.to_string(), clock.elapsed().as_secs_f64()));
        clock = Instant::now();
    };
    let needed: Vec<u64> = input
        .spec
        .partitions
        .iter()
        .map(|partition| match partition.contents {
            Contents::Root => ext4::estimate(input.root),
            Contents::Boot => fat::estimate(&input.boot),
            Contents::Empty => 0,
        })
        .collect();
    let (size, extents) = layout(input.spec, input.drive, &needed)?;
    let temp = super::TempFile::create(dest)?;
    temp.file
        .set_len(size)
        .with_context(|| format!("unable to size {}", temp.path.display()))?;
    run_tool(
        Command::new(tool("sfdisk")?)
            .args([
                "--quiet",
                "--no-reread",
                "--no-tell-kernel",
                "--wipe",
                "never",
            ])
            .arg(&temp.path),
        Some(&sfdisk_script(input.spec, &extents, input.board)),
    )?;
    lap(&mut timings, "partition table");
    let empty = Tree::new();
    for (partition, extent) in input.spec.partitions.iter().zip(&extents) {
        let uuid = stable_id(&format!("{} fs {}", input.board, partition.label));
        match partition.filesystem {
            Filesystem::Ext4 => {
                let tree = match partition.contents {
                    Contents::Root => input.root,
                    _ => &empty,
                };
                ext4::write(&ext4::Params {
                    image: &temp.path,
                    extent: *extent,
                    label: &partition.label,
                    uuid,
                    tree,
                    mtime: input.mtime,
                })
                .with_context(|| format!("partition {} (ext4)", partition.label))?;
                lap(&mut timings, &format!("ext4 {}", partition.label));
            }
            Filesystem::Fat32 => {
                let files: &[(String, PathBuf)] = match partition.contents {
                    Contents::Boot => &input.boot,
                    _ => &[],
                };
                fat::write(
                    &temp.path,
                    *extent,
                    &partition.label,
                    uuid,
                    files,
                    input.mtime,
                )
                .with_context(|| format!("partition {} (fat32)", partition.label))?;
                lap(&mut timings, &format!("fat32 {}", partition.label));
            }
        }
    }
    temp.file
        .sync_all()
        .with_context(|| format!("unable to sync {}", temp.path.display()))?;
    temp.commit(dest)?;
    Ok(Written {
        size,
        extents,
        timings,
    })
}

/// The partitions of an image file as `sfdisk --json` reads them: (start, size) in bytes.
pub fn read_table(image: &Path) -> Result<Vec<Extent>> {
    let output = Command::new(tool("sfdisk")?)
        .arg("--dump")
        .arg(image)
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("unable to run sfdisk on {}", image.display()))?;
    if !output.status.success() {
        bail!(UsageError(format!(
            "{}: no partition table ({})",
            image.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    let mut extents = Vec::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Some((_, fields)) = line.split_once(" : ") else {
            continue;
        };
        let field = |name: &str| {
            fields.split(',').find_map(|field| {
                field
                    .trim()
                    .strip_prefix(name)
                    .and_then(|rest| rest.trim_start().strip_prefix('='))
                    .and_then(|value| value.trim().parse::<u64>().ok())
            })
        };
        if let (Some(start), Some(size)) = (field("start"), field("size")) {
            extents.push(Extent {
                start: start * 512,
                size: size * 512,
            });
        }
    }
    Ok(extents)
}

/// True when the file starts like a partitioned disk (an MBR signature, protective or
/// not) rather than an archive.
pub fn is_disk_image(path: &Path) -> bool {
    use std::io::Read;
    let mut sector = [0u8; 512];
    std::fs::File::open(path)
        .and_then(|mut file| file.read_exact(&mut sector))
        .is_ok_and(|()| sector[510] == 0x55 && sector[511] == 0xaa)
}

/// Copies a file out of a FAT partition of an image (mtools).
pub fn fat_extract(image: &Path, extent: Extent, name: &str, dest: &Path) -> Result<()> {
    let mut target = OsString::from(image);
    target.push(format!("@@{}", extent.start));
    run_tool(
        Command::new(tool("mcopy")?)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PartitionSpec;

    fn partition(label: &str, filesystem: Filesystem, contents: Contents) -> PartitionSpec {
        PartitionSpec {
            label: label.to_string(),
            filesystem,
            contents,
            start: None,
            size: None,
            margin: 16 * MIB,
            type_: None,
            files: Vec::new(),
        }
    }

    fn pi() -> ImageSpec {
        let mut boot = partition("BOOT", Filesystem::Fat32, Contents::Boot);
        boot.size = Some(64 * MIB);
        ImageSpec {
            table: Table::Mbr,
            size: None,
            modules: Vec::new(),
            partitions: vec![boot, partition("rootfs", Filesystem::Ext4, Contents::Root)],
        }
    }

    #[test]
    fn sd_cards_round_up_to_a_power_of_two_and_the_root_takes_the_rest() {
        let (total, extents) = layout(&pi(), Drive::Sd, &[40 * MIB, 30 * MIB]).unwrap();
        assert_eq!(total, 128 * MIB);
        assert_eq!(
            extents[0],
            Extent {
                start: MIB,
                size: 64 * MIB
            }
        );
        assert_eq!(
            extents[1],
            Extent {
                start: 65 * MIB,
                size: 63 * MIB
            }
        );
        // A virtio disk is not rounded: 1 + 64 + (30 + 16) MiB.
        let (total, extents) = layout(&pi(), Drive::Virtio, &[40 * MIB, 30 * MIB]).unwrap();
        assert_eq!(total, 111 * MIB);
        assert_eq!(extents[1].size, 46 * MIB);
    }

    #[test]
    fn gpt_keeps_room_for_the_backup_table() {
        let mut spec = pi();
        spec.table = Table::Gpt;
        let (total, extents) = layout(&spec, Drive::Virtio, &[0, 30 * MIB]).unwrap();
        assert_eq!(total, 112 * MIB);
        assert!(extents[1].start + extents[1].size <= total - GPT_BACKUP);
    }

    #[test]
    fn bad_layouts_are_usage_errors() {
        let error = |spec: &ImageSpec, drive: Drive, needed: &[u64]| {
            let err = layout(spec, drive, needed).unwrap_err();
            assert!(err.downcast_ref::<UsageError>().is_some(), "{err}");
            err.to_string()
        };
        let mut spec = pi();
        spec.size = Some(200 * MIB);
        assert_eq!(
            error(&spec, Drive::Sd, &[0, 0]),
            "[image] size 200M: QEMU's SD card must be a power of two (e.g. 256M)"
        );
        spec.size = Some(64 * MIB);
        assert_eq!(
            error(&spec, Drive::Sd, &[0, 0]),
            "[image] size 64M: the partitions need 81M (they end at 81M); raise size or shrink them"
        );
        let mut spec = pi();
        spec.partitions[1].start = Some(32 * MIB);
        assert_eq!(
            error(&spec, Drive::Sd, &[0, 0]),
            "[[image.partitions]] #2 (rootfs): start 32M overlaps the previous partition, which ends at 65M"
        );
        let mut spec = pi();
        spec.partitions[0].size = Some(32 * MIB);
        assert!(error(&spec, Drive::Sd, &[0, 0]).contains("FAT32 needs at least 64M"));
        let mut spec = pi();
        spec.partitions[1].size = Some(8 * MIB);
        assert!(error(&spec, Drive::Sd, &[0, 20 * MIB]).contains("its contents need 20M"));
    }

    #[test]
    fn sfdisk_scripts_are_stable() {
        let (_, extents) = layout(&pi(), Drive::Sd, &[0, 30 * MIB]).unwrap();
        let script = sfdisk_script(&pi(), &extents, "raspberrypi3-64");
        assert_eq!(script, sfdisk_script(&pi(), &extents, "raspberrypi3-64"));
        assert!(script.starts_with("label: dos\nlabel-id: 0x"), "{script}");
        assert!(script.ends_with(
            "unit: sectors\nstart=2048, size=131072, type=c, bootable\nstart=133120, size=129024, type=83\n"
        ), "{script}");
        assert_ne!(stable_id("a"), stable_id("b"));
        assert_eq!(uuid_string(stable_id("a")).len(), 36);
    }
}
