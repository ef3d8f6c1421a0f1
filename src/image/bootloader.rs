//! What each firmware chain of the board's `[boot]` reads off the card: text files
//! kiln writes (extlinux.conf, systemd-boot's loader entries, syslinux.cfg, config.txt),
//! files copied out of packages (systemd-boot, the Pi firmware, a prebuilt U-Boot), and
//! bytes outside the filesystems (the MBR's boot code, syslinux's boot sector, U-Boot at
//! the boot ROM's offset). Every command line comes from [`cmdline`].
//!
//! Nothing here needs root or a device: syslinux's mtools installer and plain writes at
//! offsets of the one image file do it.

use std::collections::BTreeMap;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::config::Board;
use crate::config::boot::{BootSpec, Firmware, UBootSource, efi_names};
use crate::config::image::{Extent, ImageSpec};
use crate::host::tool;
use crate::tree::Kind;

/// syslinux's MBR boot code (440 bytes), from the host's syslinux-common, matching the
/// host's syslinux installer.
const SYSLINUX_MBR: &str = "/usr/lib/syslinux/mbr/mbr.bin";

/// The one kernel command line: the board's, the root by label, and `extra` words
/// (`kiln boot --check`'s). cmdline.txt, extlinux.conf, the loader entry and
/// syslinux.cfg all carry exactly this.
pub fn cmdline(board: &Board, spec: &ImageSpec, extra: &[String]) -> String {
    let mut line = format!(
        "{} root=LABEL={} rootfstype=ext4 rootwait rw",
        board.kernel.cmdline,
        spec.root().label
    );
    for word in extra {
        line.push(' ');
        line.push_str(word);
    }
    line
}

/// A write of bytes at an offset of the image, outside any filesystem.
#[derive(Debug, Clone)]
pub struct RawWrite {
    pub offset: u64,
    pub file: PathBuf,
    /// Where the bytes came from, for errors and the report.
    pub what: String,
    /// The board key that placed them.
    pub key: &'static str,
}

/// What the chains add to the card besides the boot partition's usual files.
#[derive(Debug, Default)]
pub struct Chains {
    /// Bytes at fixed offsets, written after the filesystems.
    pub raw: Vec<RawWrite>,
    /// Run syslinux's installer on the boot partition and put its MBR code in place.
    pub syslinux: bool,
    /// What kiln built from source for the card (U-Boot), for the SBOM.
    pub built: Vec<super::uboot::Built>,
}

/// What the chains' files are made from.
pub struct Sources<'a> {
    /// The one kernel command line ([`cmdline`]).
    pub cmdline: &'a str,
    /// The kernel going onto the card.
    pub kernel: &'a Path,
    /// The fetched packages.
    pub debs: &'a BTreeMap<String, PathBuf>,
    /// Where the scratch copies go.
    pub scratch: &'a Path,
    /// SOURCE_DATE_EPOCH for what kiln builds.
    pub mtime: u64,
    /// `--offline DIR`: source packages come from there.
    pub offline: Option<&'a Path>,
}

/// Adds every file the board's firmware chains read to `files` (name on the boot
/// partition → scratch copy), and returns the raw writes.
pub fn add(
    board: &Board,
    boot: &BootSpec,
    sources: &Sources,
    files: &mut Vec<(String, PathBuf)>,
) -> Result<Chains> {
    let Sources {
        cmdline,
        kernel,
        debs,
        scratch,
        mtime,
        offline,
    } = *sources;
    let header = |reader: &str, comment: &str| {
        format!(
            "{comment} Written by kiln for {}: {reader} reads this.\n",
            board.name
        )
    };
    let dtb = board.kernel.dtb_file_name();
    let mut chains = Chains::default();
    for firmware in &boot.firmware {
        match firmware {
            Firmware::UBoot => {
                let mut conf = header("U-Boot's distro boot", "#");
                conf.push_str("default kiln\ntimeout 0\n\nlabel kiln\n");
                conf.push_str("    kernel /vmlinuz\n    initrd /initrd.img\n");
                // Without fdt U-Boot hands the kernel its own device tree, which need not
                // be the board's.
                if let Some(dtb) = dtb {
                    conf.push_str(&format!("    fdt /{dtb}\n"));
                }
                conf.push_str(&format!("    append {cmdline}\n"));
                put(files, scratch, "extlinux/extlinux.conf", conf.into_bytes())?;
                if let Some(window) = boot.uboot.kernel_window {
                    let size = std::fs::metadata(kernel)
                        .with_context(|| format!("unable to stat {}", kernel.display()))?
                        .len();
                    if size > window {
                        bail!(crate::error::Input(format!(
                            "{}: [boot.uboot] kernel_window: the kernel is {size} bytes, more than the {window} bytes U-Boot loads it into (note: a smaller kernel, or the window of this U-Boot's kernel_addr_r)",
                            board.file.display()
                        )));
                    }
                }
                if let Some(card) = &boot.uboot.card {
                    let (file, what) = match &card.source {
                        UBootSource::Host(path) => (path.clone(), path.display().to_string()),
                        UBootSource::Package { package, path } => {
                            let bytes =
                                package_file(debs, package, path, "[boot.uboot] file", board)?;
                            let copy = scratch.join("u-boot.bin");
                            std::fs::write(&copy, bytes)
                                .with_context(|| format!("unable to write {}", copy.display()))?;
                            (copy, format!("{package}:{path}"))
                        }
                        UBootSource::Build { .. } => {
                            let built = super::uboot::build(board, &card.source, offline, mtime)?;
                            chains.built.push(built.clone());
                            (built.binary, built.what)
                        }
                    };
                    chains.raw.push(RawWrite {
                        offset: card.offset,
                        file,
                        what,
                        key: "[boot.uboot] offset",
                    });
                }
            }
            Firmware::Uefi => {
                let (loader, stub) = efi_names(board.arch).context("validated: uefi fits")?;
                let bytes = package_file(
                    debs,
                    "systemd-boot-efi",
                    &format!("usr/lib/systemd/boot/efi/{stub}"),
                    "[boot] firmware \"uefi\"",
                    board,
                )?;
                put(files, scratch, loader, bytes)?;
                let loader_conf = format!(
                    "{}timeout 0\ndefault kiln.conf\neditor no\n",
                    header("systemd-boot", "#")
                );
                put(
                    files,
                    scratch,
                    "loader/loader.conf",
                    loader_conf.into_bytes(),
                )?;
                let entry = format!(
                    "{}title kiln {}\nlinux /vmlinuz\ninitrd /initrd.img\noptions {cmdline}\n",
                    header("systemd-boot", "#"),
                    board.name
                );
                put(
                    files,
                    scratch,
                    "loader/entries/kiln.conf",
                    entry.into_bytes(),
                )?;
            }
            Firmware::Bios => {
                let conf = format!(
                    "{}SERIAL 0 115200\nDEFAULT kiln\nPROMPT 0\nTIMEOUT 0\nLABEL kiln\n  LINUX /vmlinuz\n  INITRD /initrd.img\n  APPEND {cmdline}\n",
                    header("syslinux", "#")
                );
                put(files, scratch, "syslinux.cfg", conf.into_bytes())?;
                chains.syslinux = true;
            }
            Firmware::Pi => {
                for path in &boot.pi.files {
                    let bytes =
                        package_file(debs, &boot.pi.package, path, "[boot.pi] files", board)?;
                    let name = path.rsplit('/').next().unwrap_or(path);
                    put(files, scratch, name, bytes)?;
                }
                put(
                    files,
                    scratch,
                    "config.txt",
                    pi_config(board, boot).into_bytes(),
                )?;
            }
        }
    }
    Ok(chains)
}

/// Writes a boot-partition file's scratch copy and lists it, replacing one of that name.
fn put(
    files: &mut Vec<(String, PathBuf)>,
    scratch: &Path,
    name: &str,
    bytes: Vec<u8>,
) -> Result<()> {
    let copy = scratch.join(format!("chain-{}", name.replace('/', "-")));
    std::fs::write(&copy, bytes).with_context(|| format!("unable to write {}", copy.display()))?;
    files.retain(|(existing, _)| existing != name);
    files.push((name.to_string(), copy));
    Ok(())
}

/// config.txt for the Pi's GPU firmware: 64-bit, the kernel, the initramfs loaded after
/// it, the board's device tree, the UART on; then the board's own lines.
pub fn pi_config(board: &Board, boot: &BootSpec) -> String {
    let mut text = format!(
        "# Written by kiln for {}: the Raspberry Pi firmware reads this.\narm_64bit=1\nenable_uart=1\nkernel=vmlinuz\ninitramfs initrd.img followkernel\n",
        board.name
    );
    if let Some(dtb) = board.kernel.dtb_file_name() {
        text.push_str(&format!("device_tree={dtb}\n"));
    }
    for line in &boot.pi.config {
        text.push_str(line);
        text.push('\n');
    }
    text
}

/// Writes the chains' bytes outside the filesystems into the image: syslinux's boot
/// sector and files (its mtools installer, on the boot partition at `boot`), the MBR's
/// boot code, and each raw write, which must end before the first partition.
pub fn install(
    board: &Board,
    image: &Path,
    file: &std::fs::File,
    chains: &Chains,
    boot: Extent,
    first_partition: u64,
    mtime: u64,
) -> Result<()> {
    if chains.syslinux {
        let mbr = tool::data_file(SYSLINUX_MBR, "syslinux-common")?;
        tool::run(
            Command::new(tool::find("syslinux")?)
                .env("MTOOLS_SKIP_CHECK", "1")
                .env("SOURCE_DATE_EPOCH", mtime.to_string())
                .arg("--offset")
                .arg(boot.start.to_string())
                .arg("--install")
                .arg(image),
            None,
        )?;
        let code =
            std::fs::read(&mbr).with_context(|| format!("unable to read {}", mbr.display()))?;
        if code.len() > 440 {
            bail!(
                "{}: {} bytes, more than the MBR's 440 of boot code",
                mbr.display(),
                code.len()
            );
        }
        file.write_all_at(&code, 0)
            .with_context(|| format!("unable to write the MBR of {}", image.display()))?;
    }
    for raw in &chains.raw {
        let bytes = std::fs::read(&raw.file)
            .with_context(|| format!("unable to read {}", raw.file.display()))?;
        let end = raw.offset + bytes.len() as u64;
        if end > first_partition {
            bail!(crate::error::Input(format!(
                "{}: {}: {} ({} bytes) at byte {} ends at {end}, past the first partition's start ({first_partition})",
                board.file.display(),
                raw.key,
                raw.what,
                bytes.len(),
                raw.offset
            )));
        }
        file.write_all_at(&bytes, raw.offset)
            .with_context(|| format!("unable to write {} into {}", raw.what, image.display()))?;
    }
    Ok(())
}

/// One file out of a fetched package, by its path inside the package.
fn package_file(
    debs: &BTreeMap<String, PathBuf>,
    package: &str,
    path: &str,
    key: &str,
    board: &Board,
) -> Result<Vec<u8>> {
    let deb = debs.get(package).with_context(|| {
        format!(
            "{}: {key}: package {package} was not fetched",
            board.file.display()
        )
    })?;
    let data = crate::source::deb::read_cached(deb)?.data;
    let wanted = path.trim_start_matches("./");
    for (entry, node) in data.iter() {
        if entry.as_str() == wanted {
            if let Kind::File(content) = &node.kind {
                return content
                    .read_all()
                    .with_context(|| format!("unable to read {}", content.describe()));
            }
        }
    }
    bail!(crate::error::Input(format!(
        "{}: {key}: {package} ({}) has no file {wanted}",
        board.file.display(),
        deb.display()
    )))
}
