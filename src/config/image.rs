//! The board's `[image]`: partition table, partitions and their sizes, validated when
//! the board loads, and the layout arithmetic that places the partitions (pure, checked
//! at load with empty contents and again with the real contents when writing).

use std::path::PathBuf;

use anyhow::{Result, bail};

use super::Drive;
use super::raw::RawImage;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Mbr,
    Gpt,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filesystem {
    Fat32,
    Ext4,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contents {
    Boot,
    Root,
    Empty,
}

impl Table {
    pub const fn name(self) -> &'static str {
        match self {
            Table::Mbr => "mbr",
            Table::Gpt => "gpt",
        }
    }
}

impl Filesystem {
    pub const fn name(self) -> &'static str {
        match self {
            Filesystem::Fat32 => "fat32",
            Filesystem::Ext4 => "ext4",
        }
    }
}

impl Contents {
    pub const fn name(self) -> &'static str {
        match self {
            Contents::Boot => "boot",
            Contents::Root => "root",
            Contents::Empty => "empty",
        }
    }
}

/// Where an extra boot-partition file comes from.

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileSource {
    /// A host file or directory.
    Host(PathBuf),
    /// Files of a fetched package matching a glob, copied flat.
    Package { package: String, glob: String },
}

impl std::fmt::Display for FileSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FileSource::Host(path) => write!(f, "{}", path.display()),
            FileSource::Package { package, glob } => write!(f, "{package}:{glob}"),
        }
    }
}

/// The board's `[image]`, validated; offsets and sizes in bytes.
#[derive(Debug, Clone)]
pub struct ImageSpec {
    pub table: Table,
    pub size: Option<u64>,
    pub modules: Vec<String>,
    pub partitions: Vec<PartitionSpec>,
}

#[derive(Debug, Clone)]
pub struct PartitionSpec {
    pub label: String,
    pub filesystem: Filesystem,
    pub contents: Contents,
    pub start: Option<u64>,
    pub size: Option<u64>,
    pub margin: u64,
    pub type_: Option<String>,
    pub files: Vec<FileSource>,
}

impl ImageSpec {
    /// The partition holding the image tree.
    pub fn root(&self) -> &PartitionSpec {
        self.partitions
            .iter()
            .find(|p| p.contents == Contents::Root)
            .expect("validated: one root partition")
    }

    /// The partition with the kernel and the stage-0 initramfs, if any.
    pub fn boot(&self) -> Option<&PartitionSpec> {
        self.partitions
            .iter()
            .find(|p| p.contents == Contents::Boot)
    }
}

/// Parses a size: bytes, or a number with K, M, G or T (powers of 1024, `iB` allowed).
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let text = text.strip_suffix("iB").unwrap_or(text);
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, ""),
    };
    let shift = match unit {
        "" => 0,
        "K" | "k" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return None,
    };
    let number: u64 = digits.parse().ok()?;
    number.checked_mul(1 << shift)
}

/// Validates `[image]`; errors are (key, message).
pub fn validate(raw: RawImage) -> Result<ImageSpec, (String, String)> {
    let table = match raw.table.as_deref() {
        None | Some("mbr") => Table::Mbr,
        Some("gpt") => Table::Gpt,
        Some(other) => {
            return Err((
                "[image] table".to_string(),
                format!("unknown partition table {other:?}: expected mbr or gpt"),
            ));
        }
    };
    let size = |key: &str, text: Option<String>| -> Result<Option<u64>, (String, String)> {
        text.map(|text| {
            let size = parse_size(&text).ok_or_else(|| {
                (
                    key.to_string(),
                    format!("{text:?} is not a size: give bytes or a number with K, M or G, e.g. \"64M\""),
                )
            })?;
            if size > MAX_SIZE {
                return Err((
                    key.to_string(),
                    format!("{text:?} is larger than 16T, the most kiln lays out"),
                ));
            }
            Ok(size)
        })
        .transpose()
    };
    let image_size = size("[image] size", raw.size)?;
    let raw_partitions = raw.partitions.unwrap_or_default();
    if raw_partitions.is_empty() {
        return Err((
            "[image] partitions".to_string(),
            "none given: add [[image.partitions]] tables".to_string(),
        ));
    }
    if raw_partitions.len() > 128 {
        return Err((
            "[image] partitions".to_string(),
            format!("{} partitions: a GPT table holds 128", raw_partitions.len()),
        ));
    }
    if table == Table::Mbr && raw_partitions.len() > 4 {
        return Err((
            "[image] partitions".to_string(),
            format!(
                "{} partitions: an MBR table holds 4 (use table = \"gpt\")",
                raw_partitions.len()
            ),
        ));
    }
    let mut partitions = Vec::new();
    for (index, raw) in raw_partitions.into_iter().enumerate() {
        let key = |field: &str| format!("[[image.partitions]] #{} {field}", index + 1);
        let filesystem = match raw.filesystem.as_deref() {
            Some("fat32") => Filesystem::Fat32,
            Some("ext4") => Filesystem::Ext4,
            Some(other) => {
                return Err((
                    key("filesystem"),
                    format!("unknown filesystem {other:?}: expected fat32 or ext4"),
                ));
            }
            None => return Err((key("filesystem"), "missing: fat32 or ext4".to_string())),
        };
        let contents = match raw.contents.as_deref() {
            Some("boot") => Contents::Boot,
            Some("root") => Contents::Root,
            None | Some("empty") => Contents::Empty,
            Some(other) => {
                return Err((
                    key("contents"),
                    format!("unknown contents {other:?}: expected boot, root or empty"),
                ));
            }
        };
        if contents == Contents::Root && filesystem != Filesystem::Ext4 {
            return Err((
                key("filesystem"),
                "the root partition must be ext4 (FAT cannot hold owners, modes or device nodes)"
                    .to_string(),
            ));
        }
        if contents == Contents::Boot && filesystem != Filesystem::Fat32 {
            return Err((
                key("filesystem"),
                "the boot partition must be fat32 (what firmware and kiln boot read)".to_string(),
            ));
        }
        let label = raw.label.unwrap_or_else(|| match contents {
            Contents::Boot => "BOOT".to_string(),
            Contents::Root => "rootfs".to_string(),
            Contents::Empty => format!("part{}", index + 1),
        });
        let max = match filesystem {
            Filesystem::Fat32 => 11,
            Filesystem::Ext4 => 16,
        };
        let label_ok = !label.is_empty()
            && label.len() <= max
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !label_ok {
            return Err((
                key("label"),
                format!(
                    "{label:?}: give 1 to {max} letters, digits, '-' or '_' (the kernel command line finds the root by it)"
                ),
            ));
        }
        if let Some(type_) = &raw.type_ {
            let ok = match table {
                Table::Mbr => {
                    let hex = type_.strip_prefix("0x").unwrap_or(type_);
                    (1..=2).contains(&hex.len()) && u8::from_str_radix(hex, 16).is_ok()
                }
                Table::Gpt => {
                    let parts: Vec<&str> = type_.split('-').collect();
                    parts.iter().map(|p| p.len()).eq([8, 4, 4, 4, 12])
                        && type_.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
                }
            };
            if !ok {
                return Err((
                    key("type"),
                    match table {
                        Table::Mbr => format!("{type_:?}: an MBR type is a byte, e.g. \"0x83\""),
                        Table::Gpt => format!(
                            "{type_:?}: a GPT type is a GUID, e.g. \"0FC63DAF-8483-4772-8E79-3D69D8477DE4\""
                        ),
                    },
                ));
            }
        }
        let mut files = Vec::new();
        for file in raw.files.unwrap_or_default() {
            if contents != Contents::Boot {
                return Err((
                    key("files"),
                    "only a boot partition takes extra files".to_string(),
                ));
            }
            files.push(match file.split_once(':') {
                Some((package, glob)) if !package.contains('/') => FileSource::Package {
                    package: package.to_string(),
                    glob: glob.trim_start_matches('/').to_string(),
                },
                _ => FileSource::Host(PathBuf::from(file)),
            });
        }
        partitions.push(PartitionSpec {
            label,
            filesystem,
            contents,
            start: size(&key("start"), raw.start)?,
            size: size(&key("size"), raw.size)?,
            margin: size(&key("margin"), raw.margin)?.unwrap_or(16 << 20),
            type_: raw.type_,
            files,
        });
    }
    let count = |wanted: Contents| partitions.iter().filter(|p| p.contents == wanted).count();
    if count(Contents::Root) != 1 {
        return Err((
            "[image] partitions".to_string(),
            format!(
                "{} root partitions: exactly one must say contents = \"root\"",
                count(Contents::Root)
            ),
        ));
    }
    if count(Contents::Boot) > 1 {
        return Err((
            "[image] partitions".to_string(),
            "more than one boot partition".to_string(),
        ));
    }
    let mut labels: Vec<&str> = partitions.iter().map(|p| p.label.as_str()).collect();
    labels.sort_unstable();
    if let Some(pair) = labels.windows(2).find(|pair| pair[0] == pair[1]) {
        return Err((
            "[image] partitions".to_string(),
            format!("two partitions are labelled {:?}", pair[0]),
        ));
    }
    let modules = raw.modules.unwrap_or_default();
    super::check_module_names("[image] modules", &modules)?;
    Ok(ImageSpec {
        table,
        size: image_size,
        modules,
        partitions,
    })
}

const MIB: u64 = 1 << 20;
/// The largest size or offset kiln takes: 16 TiB. With at most 128 partitions no sum
/// of them comes near `u64::MAX`, so the layout arithmetic below cannot overflow.
const MAX_SIZE: u64 = 1 << 44;
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
                    bail!(crate::error::Input(format!(
                        "{name}: start {start} is not a multiple of 512 bytes (use e.g. \"4M\")"
                    )));
                }
                if start < first_free {
                    bail!(crate::error::Input(format!(
                        "{name}: start {start} overlaps the partition table (the first MiB)"
                    )));
                }
                if start < end {
                    bail!(crate::error::Input(format!(
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
                    bail!(crate::error::Input(format!(
                        "{name}: size {size} is not a multiple of 512 bytes"
                    )));
                }
                if size < minimum {
                    let why = if partition.filesystem == Filesystem::Fat32 && minimum == FAT32_MIN {
                        "FAT32 needs at least 64M".to_string()
                    } else {
                        format!("its contents need {}", show(minimum))
                    };
                    bail!(crate::error::Input(format!(
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
                bail!(crate::error::Input(format!(
                    "[image] size {}: the partitions need {} (they end at {}); raise size or shrink them",
                    show(total),
                    show(wanted),
                    show(end)
                )));
            }
            if drive == Drive::Sd && !total.is_power_of_two() {
                bail!(crate::error::Input(format!(
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

/// A Raspberry Pi style spec (64M FAT boot, ext4 root) for tests of the image code.
#[cfg(test)]
pub mod fixture {
    use super::*;

    pub const MIB: u64 = super::MIB;

    pub fn partition(label: &str, filesystem: Filesystem, contents: Contents) -> PartitionSpec {
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

    pub fn pi() -> ImageSpec {
        let mut boot = partition("BOOT", Filesystem::Fat32, Contents::Boot);
        boot.size = Some(64 * MIB);
        ImageSpec {
            table: Table::Mbr,
            size: None,
            modules: Vec::new(),
            partitions: vec![boot, partition("rootfs", Filesystem::Ext4, Contents::Root)],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixture::pi;
    use super::*;

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
            assert!(err.downcast_ref::<crate::error::Input>().is_some(), "{err}");
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
}
