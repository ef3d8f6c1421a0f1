//! Board configs: `board-configs/<name>.toml` as raw serde structs (`raw`), merged over
//! their `inherit` parents (`inherit`), then a validated `Board` of typed parts.
//!
//! Everything that can be checked without the packages is checked here, when the board
//! loads, so a mistake is an input error (exit 100) naming the file and the key before
//! anything is downloaded: arch, paths that must exist, modes, account names, the log
//! user among the users, the `[init]` table through the maker's own rules, device
//! tables, the image's partition arithmetic. Relative paths are resolved against the
//! file that declared them, a parent's against the parent's directory.

pub mod accounts;
pub mod boot;
pub mod describe;
pub mod image;
pub mod inherit;
pub mod login;
pub mod network;
pub mod raw;
pub mod services;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::arch::Arch;
use crate::archive::Format;
use crate::init::options::Options;
use crate::tree::ArchivePath;
use accounts::{Group, User};
use image::ImageSpec;
use raw::{RawBoard, RawKernel, RawOverlay, RawQemu};
pub use services::Service;

/// A validated board.
#[derive(Debug)]
pub struct Board {
    /// Safe as a file name: `out/<name>/<name>.img`.
    pub name: String,
    pub file: PathBuf,
    pub arch: Arch,
    pub kernel: Kernel,
    pub qemu: Qemu,
    /// The maker's options; the log user is one of `users` (or the default).
    pub init: Options,
    /// `[init] login = "autologin"`: root is logged in on the early getty (development).
    pub autologin: bool,
    /// The log user's uid and gid, resolved in `users`.
    pub log_ids: (u32, u32),
    /// What is valid but probably not meant (the maker's warnings), for the caller to show.
    pub warnings: Vec<String>,
    pub packages: Packages,
    pub users: Vec<User>,
    pub groups: Vec<Group>,
    pub overlays: Vec<Overlay>,
    /// makedevs tables, read and checked at load; applied as read.
    pub devices: Vec<DeviceTable>,
    /// Declared services (`[services.NAME]`, and kiln's own such as `network`).
    pub services: Vec<Service>,
    /// The order stage 2 starts them in: each wave after the previous one is ready.
    pub waves: Vec<Vec<String>>,
    pub network: Option<network::Network>,
    pub ssh: Option<network::Ssh>,
    pub formats: Vec<Format>,
    pub image: Option<ImageSpec>,
    /// `[check] allow_dangling`: image paths whose problems the build lets through, with
    /// the board's reason.
    pub allow_dangling: BTreeMap<ArchivePath, String>,
    /// How the firmware finds the system on the card.
    pub boot: Option<boot::BootSpec>,
}

/// Where the kernel comes from, and how it boots.
#[derive(Debug)]
pub struct Kernel {
    pub source: KernelSource,
    pub cmdline: String,
    /// A device tree inside the kernel package, by its path under the dtbs directory.
    pub dtb: Option<String>,
    /// Modules (names or aliases) for the image, loaded by stage 2.
    pub modules: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelSource {
    /// A Debian kernel package (a metapackage resolves to its `linux-image-*`).
    Package(String),
    /// A kernel image file.
    File(PathBuf),
    None,
}

impl Kernel {
    /// The device tree's file name on a boot partition: the base name of `dtb`.
    pub fn dtb_file_name(&self) -> Option<&str> {
        let dtb = self.dtb.as_deref()?;
        Some(dtb.rsplit('/').next().unwrap_or(dtb))
    }

    pub fn package(&self) -> Option<&str> {
        match &self.source {
            KernelSource::Package(name) => Some(name),
            _ => None,
        }
    }
}

/// How QEMU runs the board.
#[derive(Debug)]
pub struct Qemu {
    pub machine: String,
    pub cpu: Option<String>,
    pub memory: String,
    /// The guest's serial console tty, e.g. `ttyAMA0`.
    pub console: String,
    pub extra: Vec<String>,
    /// The NIC model `kiln boot --net` attaches as a `-device`; `None`: none known.
    pub nic: Option<String>,
    /// How a card or disk image is attached.
    pub drive: Drive,
}

/// How QEMU attaches a disk image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drive {
    /// `-drive if=sd`: the card size must be a power of two.
    Sd,
    /// `-drive if=virtio`.
    Virtio,
}

impl Drive {
    pub const fn name(self) -> &'static str {
        match self {
            Drive::Sd => "sd",
            Drive::Virtio => "virtio",
        }
    }
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Packages {
    /// Taken whole, with their Depends closure minus `exclude`.
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    /// Packages of which only these paths (globs) are taken.
    pub select: BTreeMap<String, Vec<String>>,
    /// Archive components added to the host's own mirrors (`non-free-firmware`).
    pub components: Vec<String>,
}

/// A host directory copied into the image with declared metadata.
#[derive(Debug)]
pub struct Overlay {
    pub source: PathBuf,
    /// Where it goes; `None` is the image's root.
    pub dest: Option<ArchivePath>,
    pub files: BTreeMap<ArchivePath, MetaOverride>,
}

/// Metadata declared for one overlay path; what is not given keeps kiln's default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetaOverride {
    pub mode: Option<u16>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

/// A makedevs table as the board load read and checked it.
#[derive(Debug)]
pub struct DeviceTable {
    pub path: PathBuf,
    pub text: String,
}

/// A board mistake: the file, then `key: what is wrong (note: the fix)`.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {message}")]
pub struct ConfigError {
    pub file: String,
    pub message: String,
}

/// Every board mistake is input.
pub fn classify(cause: &(dyn std::error::Error + 'static)) -> Option<crate::error::Kind> {
    cause
        .is::<ConfigError>()
        .then_some(crate::error::Kind::Input)
}

impl Board {
    /// Loads a board file, following `inherit`.
    pub fn load(path: &Path) -> Result<Board, ConfigError> {
        let value = inherit::load(path)?;
        let raw: RawBoard = value
            .try_into()
            .map_err(|err: toml::de::Error| ConfigError {
                file: path.display().to_string(),
                message: err.to_string(),
            })?;
        Board::from_raw(raw, path)
    }

    /// Validates a merged raw board whose paths are already resolved (see `inherit`);
    /// `file` names it in errors.
    pub fn from_raw(raw: RawBoard, file: &Path) -> Result<Board, ConfigError> {
        let error = |(key, message): (String, String)| ConfigError {
            file: file.display().to_string(),
            message: format!("{key}: {message}"),
        };
        let name = match raw.name {
            Some(name) => name,
            None => file
                .file_stem()
                .map(|stem| stem.to_string_lossy().into_owned())
                .unwrap_or_default(),
        };
        check_file_name(&name).map_err(|why| error(("name".to_string(), why)))?;
        let arch = parse_arch(raw.arch).map_err(error)?;
        let kernel_raw = raw.kernel.unwrap_or_default();
        let qemu = qemu(raw.qemu.unwrap_or_default()).map_err(error)?;
        let kernel = kernel(kernel_raw, &qemu.console).map_err(error)?;
        let users = accounts::users(raw.users.unwrap_or_default()).map_err(error)?;
        let groups = accounts::groups(raw.groups.unwrap_or_default(), &users).map_err(error)?;
        let accounts::Init {
            options: init,
            autologin,
            log_ids,
            warnings: init_warnings,
        } = accounts::init(raw.init.unwrap_or_default(), &users).map_err(error)?;
        let packages = raw.packages.unwrap_or_default();
        let packages = Packages {
            include: packages.include.unwrap_or_default(),
            exclude: packages.exclude.unwrap_or_default(),
            select: packages.select.unwrap_or_default(),
            components: packages.components.unwrap_or_default(),
        };
        for component in &packages.components {
            let ok = !component.is_empty()
                && component.len() <= 32
                && component
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !ok || component == "main" {
                return Err(error(problem(
                    "[packages] components",
                    format!(
                        "{component:?}: an archive component besides main, e.g. \"non-free-firmware\""
                    ),
                )));
            }
        }
        let mut names: Vec<(&str, &str)> = Vec::new();
        names.extend(
            packages
                .include
                .iter()
                .map(|name| ("[packages] include", name.as_str())),
        );
        names.extend(
            packages
                .exclude
                .iter()
                .map(|name| ("[packages] exclude", name.as_str())),
        );
        names.extend(
            packages
                .select
                .keys()
                .map(|name| ("[packages.select]", name.as_str())),
        );
        names.extend(kernel.package().map(|name| ("[kernel] package", name)));
        names.extend(
            image_packages(raw.image.as_ref()).map(|name| ("[[image.partitions]] files", name)),
        );
        for (key, name) in names {
            check_package_name(key, name).map_err(error)?;
        }
        for (package, patterns) in &packages.select {
            if patterns.is_empty() || patterns.iter().any(|pattern| pattern.is_empty()) {
                return Err(error((
                    format!("[packages.select] {package}"),
                    "give at least one non-empty path glob, e.g. [\"/usr/bin/s6-*\"]".to_string(),
                )));
            }
        }
        let mut allow_dangling = BTreeMap::new();
        for (path, reason) in raw
            .check
            .and_then(|check| check.allow_dangling)
            .unwrap_or_default()
        {
            let key = format!("[check] allow_dangling {path:?}");
            let image_path = ArchivePath::new(&path)
                .ok()
                .filter(|_| path.starts_with('/'))
                .ok_or_else(|| {
                    error((
                        key.clone(),
                        "give an absolute image path, e.g. \"/usr/bin/python3\"".to_string(),
                    ))
                })?;
            if reason.trim().is_empty() {
                return Err(error((
                    key,
                    "give the reason the problem is acceptable, e.g. \"mounted at boot\""
                        .to_string(),
                )));
            }
            allow_dangling.insert(image_path, reason);
        }
        let mut formats = Vec::new();
        for format in raw
            .output
            .and_then(|output| output.formats)
            .unwrap_or_else(|| vec!["cpio.gz".to_string()])
        {
            formats.push(Format::from_name(&format).ok_or_else(|| {
                error((
                    "[output] formats".to_string(),
                    format!(
                        "unknown format {format:?}: one of {}",
                        crate::archive::FORMATS.map(|(n, _)| n).join(", ")
                    ),
                ))
            })?);
        }
        let overlays = raw
            .overlays
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(index, overlay)| self::overlay(index, overlay))
            .collect::<Result<Vec<_>, _>>()
            .map_err(error)?;
        let mut devices = Vec::new();
        for table in raw.devices.unwrap_or_default() {
            let path = PathBuf::from(&table);
            let text =
                read_device_table(&path).map_err(|why| error(("devices".to_string(), why)))?;
            devices.push(DeviceTable { path, text });
        }
        let network = raw
            .network
            .map(network::network)
            .transpose()
            .map_err(error)?;
        let ssh = raw.ssh.map(network::ssh).transpose().map_err(error)?;
        if ssh.is_some() && !packages.include.iter().any(|p| p == "dropbear-bin") {
            return Err(error(problem(
                "[ssh]",
                "dropbear comes from Debian's dropbear-bin: add it to [packages] include",
            )));
        }
        let implicit = network::services(network.as_ref(), ssh.as_ref());
        let services =
            services::services(raw.services.unwrap_or_default(), &users, &groups, &implicit)
                .map_err(error)?;
        let waves = services::waves(&services).map_err(error)?;
        // Readiness through a notification fd is s6-supervise's; runsv and supervise
        // never read it, so a service waiting for it would wait forever.
        let supervisor = init.supervisor;
        if supervisor != crate::init::options::Supervisor::S6 {
            if let Some(service) = services.iter().find(|s| s.notification_fd.is_some()) {
                return Err(error(problem(
                    "[init] supervisor",
                    format!(
                        "{}: {} has a notification_fd (readiness), which only s6-supervise reads (note: drop notification_fd, or the DHCP [network] that uses one, or keep supervisor = \"s6\")",
                        supervisor.name(),
                        service.table
                    ),
                )));
            }
        }
        if matches!(kernel.source, KernelSource::File(_)) && kernel.dtb.is_some() {
            return Err(error(problem(
                "[kernel] dtb",
                "is taken from the kernel package; with [kernel] path, pass the device tree to kiln boot --dtb",
            )));
        }
        let image = raw.image.map(image::validate).transpose().map_err(error)?;
        if let Some(spec) = &image {
            // What can be checked before the contents are known: explicit starts, sizes
            // and the image size against each other and the drive.
            let none = vec![0; spec.partitions.len()];
            image::layout(spec, qemu.drive, &none)
                .map_err(|err| error(("[image]".to_string(), err.to_string())))?;
            for partition in &spec.partitions {
                for source in &partition.files {
                    if let image::FileSource::Host(path) = source {
                        if !path.exists() {
                            return Err(error((
                                format!("[[image.partitions]] {} files", partition.label),
                                format!(
                                    "{} does not exist (note: host paths are relative to the board file that names them)",
                                    path.display()
                                ),
                            )));
                        }
                    }
                }
            }
        }
        let boot = raw
            .boot
            .map(|raw| boot::validate(raw, arch, &qemu.machine, image.as_ref()))
            .transpose()
            .map_err(error)?
            .flatten();
        if kernel.package().is_none() {
            let needs = if !kernel.modules.is_empty() {
                Some("[kernel] modules")
            } else if image
                .as_ref()
                .is_some_and(|image| !image.modules.is_empty())
            {
                Some("[image] modules")
            } else if image.as_ref().is_some_and(|image| image.boot().is_some()) {
                Some("a boot partition")
            } else {
                None
            };
            if let Some(needs) = needs {
                return Err(error(problem(
                    "[kernel] package",
                    format!(
                        "missing: {needs} takes its files from the kernel package (note: e.g. package = \"linux-image-arm64\")"
                    ),
                )));
            }
        }
        Ok(Board {
            name,
            file: file.to_path_buf(),
            arch,
            kernel,
            qemu,
            init,
            autologin,
            log_ids,
            warnings: init_warnings
                .into_iter()
                .map(|warning| format!("[init]: {warning}"))
                .collect(),
            packages,
            users,
            groups,
            overlays,
            devices,
            services,
            waves,
            network,
            ssh,
            formats,
            image,
            allow_dangling,
            boot,
        })
    }

    /// The default output directory, `out/<board>`.
    pub fn out_dir(&self) -> PathBuf {
        PathBuf::from("out").join(&self.name)
    }

    /// The card or disk image's name in `dir`: `<board>.img`.
    pub fn image_path(&self, dir: &Path) -> PathBuf {
        dir.join(format!("{}.img", self.name))
    }
}

/// A mistake: (key, what is wrong).
pub type Problem = (String, String);

pub fn problem(key: impl Into<String>, message: impl Into<String>) -> Problem {
    (key.into(), message.into())
}

/// 1 to `max` letters, digits, `.`, `_` or `-` (POSIX's portable filename characters),
/// not starting with `not_first`: nothing that could split a line or leave a directory.
pub fn portable_name(name: &str, max: usize, not_first: char) -> bool {
    !name.is_empty()
        && name.len() <= max
        && !name.starts_with(not_first)
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// A Debian package name (policy 5.6.1): lowercase letters, digits, `+`, `-`, `.`,
/// starting with a letter or digit. It reaches apt's command line, so nothing else may.
pub fn check_package_name(key: &str, name: &str) -> Result<(), Problem> {
    let ok = name.len() >= 2
        && name.len() <= 128
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(problem(
            key,
            format!(
                "{name:?} is not a Debian package name (lowercase letters, digits, '+', '-', '.', starting with a letter or digit)"
            ),
        ))
    }
}

/// The packages `[[image.partitions]] files` take files from (`PACKAGE:GLOB`).
fn image_packages(image: Option<&raw::RawImage>) -> impl Iterator<Item = &str> {
    image
        .and_then(|image| image.partitions.as_ref())
        .into_iter()
        .flatten()
        .flat_map(|partition| partition.files.iter().flatten())
        .filter_map(|file| {
            let (package, _) = file.split_once(':')?;
            (!package.contains('/')).then_some(package)
        })
}

/// A board name becomes file names: letters, digits, `.`, `_`, `-`, not starting with `.`.
fn check_file_name(name: &str) -> Result<(), String> {
    if portable_name(name, 64, '.') {
        Ok(())
    } else {
        Err(format!(
            "{name:?}: a board name becomes file names (out/NAME/NAME.img): give 1 to 64 letters, digits, '.', '_' or '-', not starting with '.'"
        ))
    }
}

fn parse_arch(arch: Option<String>) -> Result<Arch, Problem> {
    let name = arch.ok_or_else(|| problem("arch", "missing (x86_64, aarch64 or armv7)"))?;
    Arch::from_name(&name).ok_or_else(|| {
        problem(
            "arch",
            format!("unknown arch {name:?}: expected x86_64, aarch64 or armv7"),
        )
    })
}

fn qemu(raw: RawQemu) -> Result<Qemu, Problem> {
    let console = raw
        .console
        .ok_or_else(|| problem("[qemu] console", "missing, e.g. ttyS0 or ttyAMA0"))?;
    if console.is_empty()
        || !console
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return Err(problem(
            "[qemu] console",
            format!("{console:?}: a tty name, e.g. ttyS0 or ttyAMA0"),
        ));
    }
    let machine = raw
        .machine
        .ok_or_else(|| problem("[qemu] machine", "missing, e.g. virt or q35"))?;
    let memory = raw.memory.unwrap_or_else(|| "256M".to_string());
    // QEMU's -m: a number, optionally with one of its suffixes (any case).
    let digits = memory
        .strip_suffix(|c: char| "kKmMgGtT".contains(c))
        .unwrap_or(&memory);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() > 12 {
        return Err(problem(
            "[qemu] memory",
            format!("{memory:?}: give a size as QEMU's -m takes it, e.g. \"256M\" or \"1G\""),
        ));
    }
    let drive = match raw.drive.as_deref() {
        Some("sd") => Drive::Sd,
        Some("virtio") => Drive::Virtio,
        None if ["virt", "q35", "pc"].contains(&machine.as_str()) => Drive::Virtio,
        None => Drive::Sd,
        Some(other) => {
            return Err(problem(
                "[qemu] drive",
                format!("unknown drive {other:?}: expected sd or virtio"),
            ));
        }
    };
    let nic = match raw.nic {
        Some(nic)
            if nic.is_empty() || !nic.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') =>
        {
            return Err(problem(
                "[qemu] nic",
                format!("{nic:?}: a QEMU -device name, e.g. virtio-net-pci"),
            ));
        }
        Some(nic) => Some(nic),
        None if ["virt", "q35", "pc"].contains(&machine.as_str()) => {
            Some("virtio-net-pci".to_string())
        }
        // The H3's EMAC, built into QEMU's machine.
        None if machine == "orangepi-pc" => Some("on-board".to_string()),
        // The Pi 3's own Ethernet is a USB device QEMU lacks; its USB adapter works
        // through the dwc2 host port (measured).
        None if machine == "raspi3b" => Some("usb-net".to_string()),
        None => None,
    };
    Ok(Qemu {
        nic,
        machine,
        cpu: raw.cpu,
        memory,
        console,
        extra: raw.extra.unwrap_or_default(),
        drive,
    })
}

fn kernel(raw: RawKernel, console: &str) -> Result<Kernel, Problem> {
    let source = match (raw.package, raw.path) {
        (Some(_), Some(_)) => {
            return Err(problem("[kernel]", "give package or path, not both"));
        }
        (Some(package), None) => KernelSource::Package(package),
        (None, Some(path)) => {
            let path = PathBuf::from(path);
            if !path.is_file() {
                return Err(problem(
                    "[kernel] path",
                    format!("{} is not a file", path.display()),
                ));
            }
            KernelSource::File(path)
        }
        (None, None) => KernelSource::None,
    };
    if let Some(dtb) = &raw.dtb {
        if dtb.is_empty() || dtb.starts_with('/') || dtb.split('/').any(|part| part == "..") {
            return Err(problem(
                "[kernel] dtb",
                format!(
                    "{dtb:?}: a path under the kernel package's dtbs directory, e.g. \"broadcom/bcm2837-rpi-3-b.dtb\""
                ),
            ));
        }
    }
    let modules = raw.modules.unwrap_or_default();
    check_module_names("[kernel] modules", &modules)?;
    let cmdline = raw
        .cmdline
        .unwrap_or_else(|| format!("console={console} panic=-1"));
    // One line in cmdline.txt, one word list for QEMU's -append.
    if cmdline.bytes().any(|b| b < b' ' || b == 0x7f) {
        return Err(problem(
            "[kernel] cmdline",
            format!("{cmdline:?}: a kernel command line is one line without control characters"),
        ));
    }
    Ok(Kernel {
        source,
        cmdline,
        dtb: raw.dtb,
        modules,
    })
}

/// Module names and aliases: 1 to 64 letters, digits, `_`, `-`, `,` or `:`.
pub fn check_module_names(key: &str, names: &[String]) -> Result<(), Problem> {
    for name in names {
        let ok = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-,:".contains(&b));
        if !ok {
            return Err(problem(
                key,
                format!("{name:?} is not a module name (e.g. \"virtio_blk\")"),
            ));
        }
    }
    Ok(())
}

fn overlay(index: usize, raw: RawOverlay) -> Result<Overlay, Problem> {
    let key = |field: &str| format!("[[overlays]] #{} {field}", index + 1);
    let source = PathBuf::from(&raw.source);
    if !source.is_dir() {
        return Err(problem(
            key("source"),
            format!(
                "{} is not a directory (note: relative to the board file that names it)",
                source.display()
            ),
        ));
    }
    let dest_text = raw.dest.as_deref().unwrap_or("/");
    let dest = match ArchivePath::new(dest_text) {
        Ok(dest) => Some(dest),
        // `/`, `.` and `./` all name the image's root.
        Err(crate::tree::PathError::Empty) => None,
        Err(err) => return Err(problem(key("dest"), format!("{dest_text:?}: {err}"))),
    };
    let mut files = BTreeMap::new();
    for (path, meta) in raw.files.unwrap_or_default() {
        let file_key = key(&format!("files.{path:?}"));
        let archive_path =
            ArchivePath::new(&path).map_err(|err| problem(&file_key, err.to_string()))?;
        // A declared path must name something the overlay has: a typo would leave the
        // file with the default mode, unnoticed.
        let relative = match &dest {
            None => Some(archive_path.as_str()),
            Some(dest) => archive_path
                .as_str()
                .strip_prefix(dest.as_str())
                .and_then(|rest| rest.strip_prefix('/')),
        };
        let exists = relative
            .is_some_and(|relative| std::fs::symlink_metadata(source.join(relative)).is_ok());
        if !exists {
            return Err(problem(
                &file_key,
                format!(
                    "{} has no {archive_path} (note: files are image paths, the overlay's dest included)",
                    source.display()
                ),
            ));
        }
        let mode = match &meta.mode {
            None => None,
            Some(mode) => Some(
                u16::from_str_radix(mode, 8)
                    .ok()
                    .filter(|mode| *mode <= 0o7777)
                    .ok_or_else(|| {
                        problem(
                            format!("{file_key} mode"),
                            format!("{mode:?}: give octal permission bits, at most \"7777\", e.g. \"0600\""),
                        )
                    })?,
            ),
        };
        files.insert(
            archive_path,
            MetaOverride {
                mode,
                uid: meta.uid,
                gid: meta.gid,
            },
        );
    }
    Ok(Overlay {
        source,
        dest,
        files,
    })
}

/// Reads and checks a makedevs table: its mistakes are the board's, found at load.
fn read_device_table(path: &Path) -> Result<String, String> {
    let bytes = crate::host::input::read(path, 4 << 20, "a device table")
        .map_err(|err| format!("unable to read device table {}: {err}", path.display()))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| format!("{}: a device table is UTF-8 text", path.display()))?;
    crate::source::makedevs::check(path, &text).map_err(|err| format!("{err:#}"))?;
    Ok(text)
}

#[cfg(test)]
mod tests;
