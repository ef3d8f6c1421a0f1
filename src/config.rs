//! Board configs: `board-configs/<name>.toml` as raw serde structs, then a validated
//! `Board` with paths resolved against the file's directory and the arch parsed.
//!
//! A board may `inherit` another file: the parent's TOML is loaded first and the child's
//! tables are merged over it key by key (arrays and values replace). Each file is first
//! checked on its own against `RawBoard`, so an unknown key is reported with its file and
//! line before any merging happens.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::arch::Arch;
use crate::archive::Format;

/// A board config as written. Every field is optional so that a child of `inherit` may
/// say only what differs; `Board::from_raw` insists on what a build needs.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBoard {
    /// Board name; defaults to the file name without `.toml`.
    pub name: Option<String>,
    /// A board config this one extends, relative to this file.
    pub inherit: Option<String>,
    /// `x86_64`, `aarch64` or `armv7`.
    pub arch: Option<String>,
    /// The kernel to boot.
    pub kernel: Option<RawKernel>,
    /// How QEMU boots the board.
    pub qemu: Option<RawQemu>,
    /// s6-linux-init-maker options, by name.
    pub init: Option<RawInit>,
    /// Debian packages that make up the userland.
    pub packages: Option<RawPackages>,
    /// Accounts of the image's /etc/passwd.
    pub users: Option<Vec<RawUser>>,
    /// Groups of the image's /etc/group (besides each user's own).
    pub groups: Option<Vec<RawGroup>>,
    /// Host directories copied into the image.
    pub overlays: Option<Vec<RawOverlay>>,
    /// makedevs device tables (Buildroot format), relative to this file.
    pub devices: Option<Vec<String>>,
    /// Service directories (relative to this file) installed into /etc/s6/services.
    pub services: Option<Vec<String>>,
    /// What to write.
    pub output: Option<RawOutput>,
    /// The partitioned disk or SD-card image `kiln image` writes.
    pub image: Option<RawImage>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKernel {
    /// Debian kernel package, e.g. `linux-image-arm64` (resolved to its current ABI).
    pub package: Option<String>,
    /// A kernel image file instead of a package, relative to this file.
    pub path: Option<String>,
    /// Kernel command line.
    pub cmdline: Option<String>,
    /// Device tree for real boards: a path inside the kernel package, or a file.
    pub dtb: Option<String>,
    /// Kernel modules (names or aliases) to put in the image with what they need, loaded
    /// in order by stage 2: e.g. a watchdog, an SD host driver, a filesystem.
    pub modules: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawQemu {
    /// `-M`, e.g. `virt`, `q35`, `raspi3b`.
    pub machine: Option<String>,
    /// `-cpu`.
    pub cpu: Option<String>,
    /// `-m`, e.g. `256M`.
    pub memory: Option<String>,
    /// The serial console's tty in the guest, e.g. `ttyAMA0`.
    pub console: Option<String>,
    /// Extra QEMU arguments.
    pub extra: Option<Vec<String>>,
    /// How a disk image is attached: `sd` (the board's SD slot; the card size must be a
    /// power of two) or `virtio` (a virtio-blk disk).
    pub drive: Option<String>,
}

/// Every s6-linux-init-maker option, by name.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawInit {
    /// `-c`
    pub basedir: Option<String>,
    /// `-l`
    pub tmpfsdir: Option<String>,
    /// `-b`
    pub execline_bindir: Option<String>,
    /// `-u`: a user of the image, or `UID:GID`.
    pub log_user: Option<String>,
    /// `-g`
    pub early_getty: Option<String>,
    /// `-2`
    pub stage2: Option<String>,
    /// `-r`
    pub redirect_stage2: Option<bool>,
    /// `-Z`
    pub stage2_finish: Option<String>,
    /// `-3`
    pub stage3: Option<String>,
    /// `-p`
    pub path: Option<String>,
    /// `-m`, octal as a string.
    pub umask: Option<String>,
    /// `-t`
    pub timestamp_style: Option<u8>,
    /// `-d`
    pub dev_style: Option<u8>,
    /// `-e`, each `VAR=VALUE`, `VAR=` or `VAR`.
    pub env: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPackages {
    /// Packages taken whole (with their Depends closure, minus `exclude`).
    pub include: Option<Vec<String>>,
    /// Packages never pulled in by Depends.
    pub exclude: Option<Vec<String>>,
    /// Packages of which only these paths are taken; libraries follow by ELF closure.
    pub select: Option<BTreeMap<String, Vec<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUser {
    pub name: String,
    pub uid: u32,
    /// Primary group id; a group of the user's name is made if none has this id.
    pub gid: u32,
    pub home: Option<String>,
    pub shell: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGroup {
    pub name: String,
    pub gid: u32,
    pub members: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOverlay {
    /// Host directory, relative to this file.
    pub source: String,
    /// Where it goes in the image.
    pub dest: Option<String>,
    /// Declared metadata by image path: `{ mode = "0600", uid = 0, gid = 0 }`; git keeps
    /// only the x bit, so nothing else comes from the checkout.
    pub files: Option<BTreeMap<String, RawMeta>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMeta {
    pub mode: Option<String>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOutput {
    /// Archive formats to write, e.g. `["cpio.gz", "tar.zst"]`.
    pub formats: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawImage {
    /// Partition table: `mbr` (DOS) or `gpt`.
    pub table: Option<String>,
    /// Whole image size, e.g. `512M`; default: the partitions' end, rounded up to what
    /// the drive takes (a power of two for `sd`).
    pub size: Option<String>,
    /// Kernel modules the stage-0 initramfs loads to reach the root (the SD host or
    /// virtio driver and the filesystem, e.g. `["virtio_pci", "virtio_blk", "ext4"]`),
    /// with what they need; they go only into that initramfs.
    pub modules: Option<Vec<String>>,
    /// The partitions, in disk order.
    pub partitions: Option<Vec<RawPartition>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPartition {
    /// Filesystem label (the root is found by it at boot).
    pub label: Option<String>,
    /// `fat32` or `ext4`.
    pub filesystem: Option<String>,
    /// `boot` (kernel, dtb, stage-0 initramfs, cmdline.txt, `files`), `root` (the image
    /// tree) or `empty` (formatted, nothing in it).
    pub contents: Option<String>,
    /// Start offset, e.g. `4M`; default: right after the previous one, 1 MiB aligned.
    pub start: Option<String>,
    /// Size, e.g. `64M`; default: the contents plus `margin`, or for the last partition
    /// the rest of the image.
    pub size: Option<String>,
    /// Room added to the contents when `size` is not given, e.g. `32M` (default `16M`).
    pub margin: Option<String>,
    /// MBR type byte (`0x0c`) or GPT type GUID; default from the filesystem.
    #[serde(rename = "type")]
    pub type_: Option<String>,
    /// Extra files for a boot partition: host paths relative to this file (a directory is
    /// copied with its contents), or `PACKAGE:GLOB` for files of a fetched package.
    pub files: Option<Vec<String>>,
}

/// A validated board.
#[derive(Debug)]
pub struct Board {
    pub name: String,
    pub file: PathBuf,
    pub arch: Arch,
    pub kernel_package: Option<String>,
    pub kernel_path: Option<PathBuf>,
    pub cmdline: String,
    pub dtb: Option<String>,
    pub modules: Vec<String>,
    pub qemu_machine: String,
    pub qemu_cpu: Option<String>,
    pub qemu_memory: String,
    pub console: String,
    pub qemu_extra: Vec<String>,
    /// The maker's arguments, validated by the maker's own parser.
    pub init_args: Vec<OsString>,
    pub packages: Vec<String>,
    pub exclude: Vec<String>,
    pub select: BTreeMap<String, Vec<String>>,
    pub users: Vec<RawUser>,
    pub groups: Vec<RawGroup>,
    pub overlays: Vec<(PathBuf, String, BTreeMap<String, RawMeta>)>,
    pub devices: Vec<PathBuf>,
    pub services: Vec<PathBuf>,
    pub formats: Vec<Format>,
    /// How `kiln boot --image` attaches a disk image.
    pub drive: Drive,
    pub image: Option<ImageSpec>,
}

/// How QEMU attaches a disk image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drive {
    /// `-drive if=sd`: the card size must be a power of two.
    Sd,
    /// `-drive if=virtio`.
    Virtio,
}

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

impl Drive {
    pub const fn name(self) -> &'static str {
        match self {
            Drive::Sd => "sd",
            Drive::Virtio => "virtio",
        }
    }
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

#[derive(Debug, thiserror::Error)]
#[error("{file}: {message}")]
pub struct ConfigError {
    pub file: String,
    pub message: String,
}

impl Board {
    /// Loads a board file, following `inherit`.
    pub fn load(path: &Path) -> Result<Board, ConfigError> {
        let value = load_value(path, 0)?;
        let raw: RawBoard = value
            .try_into()
            .map_err(|err: toml::de::Error| ConfigError {
                file: path.display().to_string(),
                message: err.to_string(),
            })?;
        Board::from_raw(raw, path)
    }

    /// Validates a merged raw board; `file` names it in errors and anchors relative paths.
    pub fn from_raw(raw: RawBoard, file: &Path) -> Result<Board, ConfigError> {
        let error = |key: &str, message: String| ConfigError {
            file: file.display().to_string(),
            message: format!("{key}: {message}"),
        };
        let base = file.parent().unwrap_or(Path::new("."));
        let name = raw.name.unwrap_or_else(|| {
            file.file_stem().map_or_else(
                || "board".to_string(),
                |stem| stem.to_string_lossy().into_owned(),
            )
        });
        let arch_name = raw
            .arch
            .ok_or_else(|| error("arch", "missing (x86_64, aarch64 or armv7)".to_string()))?;
        let arch = Arch::from_name(&arch_name).ok_or_else(|| {
            error(
                "arch",
                format!("unknown arch {arch_name:?}: expected x86_64, aarch64 or armv7"),
            )
        })?;
        let kernel = raw.kernel.unwrap_or_default();
        if kernel.package.is_some() && kernel.path.is_some() {
            return Err(error(
                "[kernel]",
                "give package or path, not both".to_string(),
            ));
        }
        let qemu = raw.qemu.unwrap_or_default();
        let console = qemu.console.ok_or_else(|| {
            error(
                "[qemu] console",
                "missing, e.g. ttyS0 or ttyAMA0".to_string(),
            )
        })?;
        let qemu_machine = qemu
            .machine
            .ok_or_else(|| error("[qemu] machine", "missing, e.g. virt or q35".to_string()))?;
        let init_args = init_args(raw.init.unwrap_or_default());
        // The maker's own validation, so a board accepts exactly what the maker does.
        let mut probe = init_args.clone();
        probe.push("probe.cpio".into());
        crate::init::cli::parse_without_users(&probe)
            .map_err(|failure| error("[init]", failure))?;
        let packages = raw.packages.unwrap_or_default();
        let mut formats = Vec::new();
        for name in raw
            .output
            .and_then(|output| output.formats)
            .unwrap_or_else(|| vec!["cpio.gz".to_string()])
        {
            formats.push(Format::from_name(&name).ok_or_else(|| {
                error(
                    "[output] formats",
                    format!(
                        "unknown format {name:?}: one of {}",
                        crate::archive::FORMATS.map(|(n, _)| n).join(", ")
                    ),
                )
            })?);
        }
        let drive = match qemu.drive.as_deref() {
            Some("sd") => Drive::Sd,
            Some("virtio") => Drive::Virtio,
            None if ["virt", "q35", "pc"].contains(&qemu_machine.as_str()) => Drive::Virtio,
            None => Drive::Sd,
            Some(other) => {
                return Err(error(
                    "[qemu] drive",
                    format!("unknown drive {other:?}: expected sd or virtio"),
                ));
            }
        };
        let image = raw
            .image
            .map(|image| image_spec(image, base))
            .transpose()
            .map_err(|(key, message)| error(&key, message))?;
        if let Some(spec) = &image {
            // What can be checked before the contents are known: explicit starts, sizes
            // and the image size against each other and the drive.
            let none = vec![0; spec.partitions.len()];
            crate::archive::image::layout(spec, drive, &none)
                .map_err(|err| error("[image]", err.to_string()))?;
        }
        let mut overlays = Vec::new();
        for overlay in raw.overlays.unwrap_or_default() {
            overlays.push((
                base.join(&overlay.source),
                overlay.dest.unwrap_or_else(|| "/".to_string()),
                overlay.files.unwrap_or_default(),
            ));
        }
        Ok(Board {
            name,
            file: file.to_path_buf(),
            arch,
            kernel_package: kernel.package,
            kernel_path: kernel.path.map(|path| base.join(path)),
            cmdline: kernel
                .cmdline
                .unwrap_or_else(|| format!("console={console} panic=-1")),
            dtb: kernel.dtb,
            modules: kernel.modules.unwrap_or_default(),
            qemu_cpu: qemu.cpu,
            qemu_memory: qemu.memory.unwrap_or_else(|| "256M".to_string()),
            console,
            qemu_extra: qemu.extra.unwrap_or_default(),
            init_args,
            packages: packages.include.unwrap_or_default(),
            exclude: packages.exclude.unwrap_or_default(),
            select: packages.select.unwrap_or_default(),
            users: raw.users.unwrap_or_default(),
            groups: raw.groups.unwrap_or_default(),
            overlays,
            devices: raw
                .devices
                .unwrap_or_default()
                .iter()
                .map(|p| base.join(p))
                .collect(),
            services: raw
                .services
                .unwrap_or_default()
                .iter()
                .map(|p| base.join(p))
                .collect(),
            formats,
            drive,
            image,
            qemu_machine,
        })
    }
}

/// Validates `[image]`; errors are (key, message).
fn image_spec(raw: RawImage, base: &Path) -> Result<ImageSpec, (String, String)> {
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
            parse_size(&text).ok_or_else(|| {
                (
                    key.to_string(),
                    format!("{text:?} is not a size: give bytes or a number with K, M or G, e.g. \"64M\""),
                )
            })
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
                _ => FileSource::Host(base.join(file)),
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
    Ok(ImageSpec {
        table,
        size: image_size,
        modules: raw.modules.unwrap_or_default(),
        partitions,
    })
}

impl Board {
    /// A readable summary of the resolved board (after `inherit`), for `kiln config`.
    pub fn describe(&self) -> String {
        let list = |items: &[String]| items.join(" ");
        let paths = |items: &[PathBuf]| {
            items
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(" ")
        };
        let mut out = String::new();
        let mut line = |key: &str, value: String| {
            out.push_str(&format!("{key:<16} {value}\n"));
        };
        line("board", format!("{} ({})", self.name, self.file.display()));
        line("arch", self.arch.to_string());
        line(
            "kernel",
            match (&self.kernel_package, &self.kernel_path) {
                (Some(package), _) => format!("package {package}"),
                (None, Some(path)) => format!("file {}", path.display()),
                (None, None) => "none".to_string(),
            },
        );
        line("cmdline", self.cmdline.clone());
        line(
            "dtb",
            self.dtb.clone().unwrap_or_else(|| "none".to_string()),
        );
        line(
            "qemu",
            format!(
                "-M {}{} -m {} {}",
                self.qemu_machine,
                self.qemu_cpu
                    .as_ref()
                    .map_or(String::new(), |cpu| format!(" -cpu {cpu}")),
                self.qemu_memory,
                list(&self.qemu_extra)
            ),
        );
        line("console", self.console.clone());
        line(
            "init",
            self.init_args
                .iter()
                .map(|arg| crate::init::quote(arg.as_encoded_bytes()))
                .collect::<Vec<_>>()
                .join(" "),
        );
        line("packages", list(&self.packages));
        line("exclude", list(&self.exclude));
        for (package, paths) in &self.select {
            line("select", format!("{package}: {}", list(paths)));
        }
        for user in &self.users {
            line(
                "user",
                format!(
                    "{} {}:{} {} {}",
                    user.name,
                    user.uid,
                    user.gid,
                    user.home.as_deref().unwrap_or("/"),
                    user.shell.as_deref().unwrap_or("/bin/false")
                ),
            );
        }
        for group in &self.groups {
            let members = group.members.clone().unwrap_or_default();
            line(
                "group",
                format!("{} {} {}", group.name, group.gid, list(&members)),
            );
        }
        for (source, dest, files) in &self.overlays {
            line(
                "overlay",
                format!("{} -> {dest} ({} declared)", source.display(), files.len()),
            );
            for (path, meta) in files {
                line(
                    "  file",
                    format!(
                        "{path} mode {} owner {}:{}",
                        meta.mode.as_deref().unwrap_or("-"),
                        meta.uid.map_or("-".to_string(), |uid| uid.to_string()),
                        meta.gid.map_or("-".to_string(), |gid| gid.to_string())
                    ),
                );
            }
        }
        line("devices", paths(&self.devices));
        line("services", paths(&self.services));
        line(
            "formats",
            self.formats
                .iter()
                .map(|f| f.name())
                .collect::<Vec<_>>()
                .join(" "),
        );
        line(
            "drive",
            match self.drive {
                Drive::Sd => "sd (card size a power of two)",
                Drive::Virtio => "virtio",
            }
            .to_string(),
        );
        if let Some(image) = &self.image {
            let size = |bytes: Option<u64>, default: &str| {
                bytes.map_or(default.to_string(), |b| format!("{}M", b >> 20))
            };
            line(
                "image",
                format!(
                    "{} table, size {}, stage-0 modules: {}",
                    image.table.name(),
                    size(image.size, "from the partitions"),
                    list(&image.modules)
                ),
            );
            for (index, partition) in image.partitions.iter().enumerate() {
                line(
                    &format!("  partition {}", index + 1),
                    format!(
                        "{} {} {} start {} size {} margin {}M{}",
                        partition.label,
                        partition.filesystem.name(),
                        partition.contents.name(),
                        size(partition.start, "next"),
                        size(partition.size, "contents+margin"),
                        partition.margin >> 20,
                        if partition.files.is_empty() {
                            String::new()
                        } else {
                            format!(" files {:?}", partition.files)
                        }
                    ),
                );
            }
        }
        out
    }
}

/// The maker's command line for the board's `[init]` table.
fn init_args(init: RawInit) -> Vec<OsString> {
    let mut args: Vec<OsString> = Vec::new();
    let mut option = |letter: &str, value: Option<String>| {
        if let Some(value) = value {
            args.push(format!("-{letter}").into());
            args.push(value.into());
        }
    };
    option("c", init.basedir);
    option("l", init.tmpfsdir);
    option("b", init.execline_bindir);
    option("u", init.log_user);
    option("g", init.early_getty);
    option("2", init.stage2);
    option("Z", init.stage2_finish);
    option("3", init.stage3);
    option("p", init.path);
    option("m", init.umask);
    option("t", init.timestamp_style.map(|n| n.to_string()));
    option("d", init.dev_style.map(|n| n.to_string()));
    for env in init.env.unwrap_or_default() {
        option("e", Some(env));
    }
    if init.redirect_stage2 == Some(true) {
        args.push("-r".into());
    }
    args
}

/// The board file's TOML, checked against `RawBoard` on its own, merged over its parent.
fn load_value(path: &Path, depth: usize) -> Result<toml::Table, ConfigError> {
    let file = path.display().to_string();
    let error = |message: String| ConfigError {
        file: file.clone(),
        message,
    };
    if depth > 8 {
        return Err(error(
            "inherit chain is longer than 8 files (a loop?)".to_string(),
        ));
    }
    let text = fs::read_to_string(path).map_err(|err| error(format!("unable to read: {err}")))?;
    // Unknown keys and wrong types, with line and column, before any merging.
    let raw: RawBoard = toml::from_str(&text).map_err(|err| error(err.to_string()))?;
    let table: toml::Table = toml::from_str(&text).map_err(|err| error(err.to_string()))?;
    let Some(parent) = raw.inherit else {
        return Ok(table);
    };
    let parent_path = path.parent().unwrap_or(Path::new(".")).join(parent);
    let mut merged = load_value(&parent_path, depth + 1)?;
    merged.remove("name");
    merge(&mut merged, table);
    merged.remove("inherit");
    Ok(merged)
}

/// Tables merge key by key; anything else replaces.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(base_table)), toml::Value::Table(over_table)) => {
                merge(base_table, over_table);
            }
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn board_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("board-configs")
    }

    /// Every shipped board loads and validates (a repository check).
    #[test]
    fn every_shipped_board_is_valid() {
        let mut names = Vec::new();
        for entry in fs::read_dir(board_dir()).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|ext| ext == "toml") {
                let board = Board::load(&path).unwrap_or_else(|err| panic!("{err}"));
                names.push(format!("{} {}", board.name, board.arch));
            }
        }
        names.sort();
        assert_eq!(
            names,
            vec![
                "orangepi-pc armv7",
                "qemu-aarch64 aarch64",
                "qemu-armv7 armv7",
                "qemu-x86_64 x86_64",
                "raspberrypi3-64 aarch64",
            ]
        );
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let dir = std::env::temp_dir().join(format!("kiln-config-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let check = |text: &str| {
            let path = dir.join("b.toml");
            fs::write(&path, text).unwrap();
            Board::load(&path)
                .unwrap_err()
                .to_string()
                .replace(&dir.display().to_string(), "DIR")
        };
        let unknown = check(
            "arch = \"x86_64\"\n[qemu]\nmachine = \"q35\"\nconsole = \"ttyS0\"\nmemroy = \"1G\"\n",
        );
        assert!(
            unknown.starts_with("DIR/b.toml: TOML parse error at line 5, column 1"),
            "{unknown}"
        );
        assert!(unknown.contains("unknown field `memroy`"), "{unknown}");
        assert_eq!(
            check("arch = \"mips\"\n"),
            "DIR/b.toml: arch: unknown arch \"mips\": expected x86_64, aarch64 or armv7"
        );
        let init = check(
            "arch = \"x86_64\"\n[qemu]\nmachine = \"q35\"\nconsole = \"ttyS0\"\n[init]\ntimestamp_style = 7\n",
        );
        assert_eq!(
            init,
            "DIR/b.toml: [init]: -t \"7\": timestamp_style must be a number from 0 to 3"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    /// README's board-config reference names every key of every raw table.
    #[test]
    fn readme_mentions_every_board_key() {
        let readme =
            fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
        let source =
            fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/config.rs"))
                .unwrap();
        let raw_part = &source[..source.find("/// A validated board.").unwrap()];
        let keys: Vec<&str> = raw_part
            .lines()
            .filter_map(|line| line.trim().strip_prefix("pub "))
            .filter_map(|rest| rest.split_once(':').map(|(key, _)| key))
            .filter(|key| !key.contains(' '))
            .map(|key| key.trim_end_matches('_'))
            .collect();
        assert!(keys.len() > 30, "{keys:?}");
        for key in keys {
            let named = [
                format!("`{key}`"),
                format!("`[{key}]`"),
                format!("`[[{key}]]`"),
            ]
            .iter()
            .any(|form| readme.contains(form.as_str()));
            assert!(named, "README's board-config reference lacks `{key}`");
        }
    }

    #[test]
    fn inherit_merges_tables() {
        let board = Board::load(&board_dir().join("raspberrypi3-64.toml")).unwrap();
        let parent = Board::load(&board_dir().join("qemu-aarch64.toml")).unwrap();
        assert_eq!(board.qemu_machine, "raspi3b");
        // Tables merge key by key: the child's early_getty replaces the parent's, the
        // rest of [init] is inherited.
        let getty = |board: &Board| {
            let at = board.init_args.iter().position(|arg| arg == "-g").unwrap();
            board.init_args[at + 1].clone()
        };
        assert_eq!(getty(&board), "getty -L 115200 console vt100");
        assert_eq!(board.init_args.len(), parent.init_args.len());
        assert_eq!(board.packages, parent.packages);
    }
}
