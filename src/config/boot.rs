//! The board's `[boot]`: how its firmware finds the system on the card, validated when
//! the board loads. `image` writes what each firmware reads; `boot` runs the firmware.

use std::path::PathBuf;

use super::image::{ImageSpec, Table, parse_size};
use super::raw::{RawBoot, RawPi, RawUBoot};
use super::{Problem, problem};
use crate::arch::Arch;

/// A firmware chain a card carries, named after the firmware that starts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Firmware {
    /// A PC BIOS runs the MBR's boot code: syslinux, from the FAT.
    Bios,
    /// A UEFI firmware runs `EFI/BOOT/BOOT<ARCH>.EFI`: systemd-boot and a loader entry.
    Uefi,
    /// U-Boot's distro boot reads `extlinux/extlinux.conf`.
    UBoot,
    /// The Raspberry Pi's GPU firmware: `bootcode.bin`, `start.elf`, `config.txt`.
    Pi,
}

pub const FIRMWARE: [(&str, Firmware); 4] = [
    ("bios", Firmware::Bios),
    ("uefi", Firmware::Uefi),
    ("u-boot", Firmware::UBoot),
    ("pi", Firmware::Pi),
];

impl Firmware {
    pub fn name(self) -> &'static str {
        FIRMWARE
            .iter()
            .find(|(_, firmware)| *firmware == self)
            .map_or("?", |(name, _)| name)
    }

    pub fn from_name(name: &str) -> Option<Firmware> {
        FIRMWARE
            .iter()
            .find(|(known, _)| *known == name)
            .map(|(_, firmware)| *firmware)
    }
}

/// The validated `[boot]`.
#[derive(Debug, Clone)]
pub struct BootSpec {
    /// At least one, no duplicates; the first is what `kiln boot` runs by default.
    pub firmware: Vec<Firmware>,
    pub uboot: UBootSpec,
    pub pi: PiSpec,
}

/// U-Boot: on the card (a real board's boot ROM loads it) or the machine's own firmware.
#[derive(Debug, Clone, Default)]
pub struct UBootSpec {
    /// `None`: U-Boot is the QEMU machine's firmware (Debian's u-boot-qemu on the host).
    pub card: Option<UBootCard>,
    /// The largest kernel the load window holds, in bytes.
    pub kernel_window: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct UBootCard {
    /// Byte offset on the card.
    pub offset: u64,
    pub source: UBootSource,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UBootSource {
    /// A file of a fetched package.
    Package { package: String, path: String },
    /// A host file.
    Host(PathBuf),
    /// Built from Debian's u-boot source package.
    Build {
        defconfig: String,
        binary: String,
        fragment: Option<PathBuf>,
    },
}

/// The Pi firmware's files.
#[derive(Debug, Clone)]
pub struct PiSpec {
    pub package: String,
    /// Paths inside the package, copied flat to the FAT's top.
    pub files: Vec<String>,
    /// Extra config.txt lines.
    pub config: Vec<String>,
}

impl Default for PiSpec {
    fn default() -> PiSpec {
        PiSpec {
            package: "raspi-firmware".to_string(),
            files: ["bootcode.bin", "start.elf", "fixup.dat"]
                .map(|name| format!("usr/lib/raspi-firmware/{name}"))
                .to_vec(),
            config: Vec::new(),
        }
    }
}

impl BootSpec {
    pub fn has(&self, firmware: Firmware) -> bool {
        self.firmware.contains(&firmware)
    }

    /// Packages the card's boot files come from, with the key that names each: fetched
    /// without their Depends, because they are copied onto the boot partition, never
    /// installed.
    pub fn packages(&self) -> Vec<(String, &'static str)> {
        let mut packages = Vec::new();
        if self.has(Firmware::Uefi) {
            packages.push(("systemd-boot-efi".to_string(), "[boot] firmware \"uefi\""));
        }
        if self.has(Firmware::Pi) {
            packages.push((self.pi.package.clone(), "[boot.pi] package"));
        }
        if let Some(UBootCard {
            source: UBootSource::Package { package, .. },
            ..
        }) = &self.uboot.card
        {
            packages.push((package.clone(), "[boot.uboot] file"));
        }
        packages
    }

    /// Source packages a bootloader of the card is built from: Debian's `u-boot` for a
    /// `[boot.uboot] defconfig`.
    pub fn source_packages(&self) -> Vec<String> {
        match &self.uboot.card {
            Some(UBootCard {
                source: UBootSource::Build { .. },
                ..
            }) if self.has(Firmware::UBoot) => vec!["u-boot".to_string()],
            _ => Vec::new(),
        }
    }
}

/// The EFI loader's name on the FAT and systemd-boot's file name for an arch.
pub fn efi_names(arch: Arch) -> Option<(&'static str, &'static str)> {
    match arch {
        Arch::X86_64 => Some(("EFI/BOOT/BOOTX64.EFI", "systemd-bootx64.efi")),
        Arch::Aarch64 => Some(("EFI/BOOT/BOOTAA64.EFI", "systemd-bootaa64.efi")),
        Arch::Armv7 => None,
    }
}

/// Validates `[boot]` against the arch, the machine and the image it is written into;
/// `firmware = []` (a board that inherits a chain its card does not carry) is `None`.
pub fn validate(
    raw: RawBoot,
    arch: Arch,
    machine: &str,
    image: Option<&ImageSpec>,
) -> Result<Option<BootSpec>, Problem> {
    // [] turns off the chains a parent names, with the tables it gave them.
    if raw.firmware.as_ref().is_some_and(Vec::is_empty) {
        return Ok(None);
    }
    let Some(names) = raw.firmware else {
        return Err(problem(
            "[boot] firmware",
            "missing: name the chains the card carries, e.g. [\"u-boot\"] or [\"bios\", \"uefi\"], or [] for none",
        ));
    };
    let mut firmware = Vec::new();
    for name in &names {
        let Some(one) = Firmware::from_name(name) else {
            return Err(problem(
                "[boot] firmware",
                format!(
                    "unknown firmware {name:?}: one of {}",
                    FIRMWARE.map(|(name, _)| name).join(", ")
                ),
            ));
        };
        if firmware.contains(&one) {
            return Err(problem(
                "[boot] firmware",
                format!("{name:?} is named twice"),
            ));
        }
        let fits = match one {
            Firmware::Bios => arch == Arch::X86_64,
            Firmware::Uefi => efi_names(arch).is_some(),
            Firmware::UBoot => arch != Arch::X86_64,
            Firmware::Pi => arch == Arch::Aarch64 && machine.starts_with("raspi"),
        };
        if !fits {
            let why = match one {
                Firmware::Bios => "a PC BIOS boots only x86_64",
                Firmware::Uefi => {
                    "kiln writes UEFI loaders for x86_64 and aarch64 (use u-boot on armv7)"
                }
                Firmware::UBoot => "kiln boots x86_64 through bios or uefi",
                Firmware::Pi => "the Pi firmware boots an aarch64 board on a raspi machine",
            };
            return Err(problem(
                "[boot] firmware",
                format!("{name:?} does not fit a {} board: {why}", arch.name()),
            ));
        }
        firmware.push(one);
    }
    let Some(image) = image.filter(|image| image.boot().is_some()) else {
        return Err(problem(
            "[boot] firmware",
            "the firmware reads the card's boot partition: add an [image] with a fat32 partition of contents = \"boot\"",
        ));
    };
    if firmware.contains(&Firmware::Bios) && image.table != Table::Mbr {
        return Err(problem(
            "[boot] firmware",
            "bios boots through the MBR's boot code (syslinux): set [image] table = \"mbr\"",
        ));
    }
    let uboot = uboot(raw.uboot, &firmware, machine, image)?;
    let pi = pi(raw.pi, &firmware)?;
    Ok(Some(BootSpec {
        firmware,
        uboot,
        pi,
    }))
}

fn uboot(
    raw: Option<RawUBoot>,
    firmware: &[Firmware],
    machine: &str,
    image: &ImageSpec,
) -> Result<UBootSpec, Problem> {
    let wanted = firmware.contains(&Firmware::UBoot);
    let Some(raw) = raw else {
        if wanted && machine != "virt" {
            return Err(problem(
                "[boot.uboot]",
                format!(
                    "missing: on the {machine} machine U-Boot lives on the card (give offset and file or defconfig)"
                ),
            ));
        }
        return Ok(UBootSpec::default());
    };
    if !wanted {
        return Err(problem(
            "[boot.uboot]",
            "given, but [boot] firmware does not name \"u-boot\"",
        ));
    }
    let kernel_window = raw
        .kernel_window
        .map(|text| {
            parse_size(&text).filter(|size| *size > 0).ok_or_else(|| {
                problem(
                    "[boot.uboot] kernel_window",
                    format!("{text:?} is not a size, e.g. \"16M\""),
                )
            })
        })
        .transpose()?;
    let source = match (raw.file, raw.defconfig) {
        (Some(_), Some(_)) => {
            return Err(problem("[boot.uboot]", "give file or defconfig, not both"));
        }
        (Some(file), None) => {
            if raw.binary.is_some() || raw.fragment.is_some() {
                return Err(problem(
                    "[boot.uboot] file",
                    "binary and fragment belong to a build (defconfig), not to a prebuilt file",
                ));
            }
            match file.split_once(':') {
                Some((package, path)) if !package.contains('/') => {
                    super::check_package_name("[boot.uboot] file", package)?;
                    if path.is_empty() || path.starts_with('/') || path.contains("..") {
                        return Err(problem(
                            "[boot.uboot] file",
                            format!(
                                "{file:?}: PACKAGE:PATH names a path inside the package, e.g. \"u-boot-sunxi:usr/lib/u-boot/orangepi_plus/u-boot-sunxi-with-spl.bin\""
                            ),
                        ));
                    }
                    Some(UBootSource::Package {
                        package: package.to_string(),
                        path: path.to_string(),
                    })
                }
                _ => {
                    let path = PathBuf::from(file);
                    if !path.is_file() {
                        return Err(problem(
                            "[boot.uboot] file",
                            format!(
                                "{} is not a file (note: host paths are relative to the board file)",
                                path.display()
                            ),
                        ));
                    }
                    Some(UBootSource::Host(path))
                }
            }
        }
        (None, Some(defconfig)) => {
            let ok = defconfig.len() <= 64
                && defconfig.ends_with("_defconfig")
                && defconfig.len() > "_defconfig".len()
                && defconfig
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b));
            if !ok {
                return Err(problem(
                    "[boot.uboot] defconfig",
                    format!(
                        "{defconfig:?}: a file name of U-Boot's configs/, e.g. \"orangepi_pc_defconfig\""
                    ),
                ));
            }
            let binary = raw.binary.unwrap_or_else(|| "u-boot.bin".to_string());
            if !super::portable_name(&binary, 64, '.') {
                return Err(problem(
                    "[boot.uboot] binary",
                    format!(
                        "{binary:?}: a file name of the build's output, e.g. \"u-boot-sunxi-with-spl.bin\""
                    ),
                ));
            }
            let fragment = raw.fragment.map(PathBuf::from);
            if let Some(fragment) = &fragment {
                if !fragment.is_file() {
                    return Err(problem(
                        "[boot.uboot] fragment",
                        format!(
                            "{} is not a file (note: relative to the board file)",
                            fragment.display()
                        ),
                    ));
                }
            }
            Some(UBootSource::Build {
                defconfig,
                binary,
                fragment,
            })
        }
        (None, None) => None,
    };
    let card = match (raw.offset, source) {
        (None, None) => {
            if machine != "virt" {
                return Err(problem(
                    "[boot.uboot]",
                    format!(
                        "on the {machine} machine U-Boot lives on the card: give offset and file or defconfig"
                    ),
                ));
            }
            None
        }
        (None, Some(_)) => {
            return Err(problem(
                "[boot.uboot] offset",
                "missing: the byte of the card where the boot ROM looks for U-Boot, e.g. 8192",
            ));
        }
        (Some(_), None) => {
            return Err(problem(
                "[boot.uboot]",
                "offset needs a U-Boot: give file (PACKAGE:PATH or a host file) or defconfig",
            ));
        }
        (Some(offset), Some(source)) => {
            if image.table == Table::Gpt {
                return Err(problem(
                    "[boot.uboot] offset",
                    format!(
                        "{offset}: a GPT's header and entries fill bytes 512 to 17407, where the boot ROM looks for U-Boot: set [image] table = \"mbr\""
                    ),
                ));
            }
            if offset < 512 {
                return Err(problem(
                    "[boot.uboot] offset",
                    format!("{offset}: the MBR is the card's first 512 bytes"),
                ));
            }
            let first = image.partitions[0].start.unwrap_or(1 << 20);
            if offset >= first {
                return Err(problem(
                    "[boot.uboot] offset",
                    format!("{offset}: at or past the first partition's start ({first})"),
                ));
            }
            Some(UBootCard { offset, source })
        }
    };
    Ok(UBootSpec {
        card,
        kernel_window,
    })
}

fn pi(raw: Option<RawPi>, firmware: &[Firmware]) -> Result<PiSpec, Problem> {
    let Some(raw) = raw else {
        return Ok(PiSpec::default());
    };
    if !firmware.contains(&Firmware::Pi) {
        return Err(problem(
            "[boot.pi]",
            "given, but [boot] firmware does not name \"pi\"",
        ));
    }
    let mut spec = PiSpec::default();
    if let Some(package) = raw.package {
        super::check_package_name("[boot.pi] package", &package)?;
        spec.package = package;
    }
    if let Some(files) = raw.files {
        if files.is_empty()
            || files
                .iter()
                .any(|file| file.is_empty() || file.starts_with('/') || file.contains(".."))
        {
            return Err(problem(
                "[boot.pi] files",
                "paths inside the package, e.g. [\"usr/lib/raspi-firmware/bootcode.bin\"]",
            ));
        }
        spec.files = files;
    }
    if let Some(config) = raw.config {
        if let Some(line) = config
            .iter()
            .find(|line| line.bytes().any(|b| b < b' ' || b == 0x7f))
        {
            return Err(problem(
                "[boot.pi] config",
                format!("{line:?}: one config.txt line each, without control characters"),
            ));
        }
        spec.config = config;
    }
    Ok(spec)
}
