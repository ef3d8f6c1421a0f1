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

/// What the Pi's GPU firmware would start, read from the card as the firmware reads it:
/// `config.txt` (`arm_64bit=1`, `kernel=`, `initramfs FILE [followkernel]`,
/// `device_tree=`, `cmdline=`, default `cmdline.txt`), after checking that the files the
/// boot ROM and the GPU need (`bootcode.bin`, `start.elf`, `fixup.dat`) are there. QEMU's
/// raspi machines have no GPU stage, so `kiln boot` stands in for exactly this one.
pub fn from_pi_card(board: &Board, image: &Path, out_dir: &Path) -> Result<Artifacts> {
    use crate::image::fat::fat_extract;
    use crate::image::table::read_table;
    std::fs::create_dir_all(out_dir)
        .with_context(|| format!("unable to create {}", out_dir.display()))?;
    let dest = |name: &str| out_dir.join(format!("{}.card-{}", board.name, name.replace('/', "-")));
    let extents = read_table(image)?;
    let boot = *extents
        .first()
        .ok_or_else(|| crate::error::Input(format!("{}: no partitions", image.display())))?;
    let missing = |name: &str| {
        crate::error::Input(format!(
            "{}: the Pi firmware reads {name} from the first partition, and it is not there (is it a card of a board with [boot] firmware = [\"pi\"]?)",
            image.display()
        ))
    };
    for name in ["bootcode.bin", "start.elf", "fixup.dat"] {
        fat_extract(image, boot, name, &dest(name)).map_err(|_| missing(name))?;
    }
    fat_extract(image, boot, "config.txt", &dest("config.txt"))
        .map_err(|_| missing("config.txt"))?;
    let text = std::fs::read_to_string(dest("config.txt"))
        .with_context(|| format!("unable to read {}", dest("config.txt").display()))?;
    let config = PiConfig::parse(&text);
    if !config.arm_64bit {
        return Err(crate::error::Input(format!(
            "{}: config.txt lacks arm_64bit=1: the firmware would start a 32-bit kernel",
            image.display()
        ))
        .into());
    }
    let kernel = config.kernel.as_deref().unwrap_or("kernel8.img");
    fat_extract(image, boot, kernel, &dest(kernel)).map_err(|_| missing(kernel))?;
    let initrd = match &config.initramfs {
        Some(name) => {
            fat_extract(image, boot, name, &dest(name)).map_err(|_| missing(name))?;
            Some(dest(name))
        }
        None => None,
    };
    let dtb = match &config.device_tree {
        Some(name) => {
            fat_extract(image, boot, name, &dest(name)).map_err(|_| missing(name))?;
            Some(dest(name))
        }
        None => None,
    };
    let cmdline_name = config.cmdline.as_deref().unwrap_or("cmdline.txt");
    fat_extract(image, boot, cmdline_name, &dest(cmdline_name))
        .map_err(|_| missing(cmdline_name))?;
    let cmdline = std::fs::read_to_string(dest(cmdline_name))
        .with_context(|| format!("unable to read {}", dest(cmdline_name).display()))?;
    Ok(Artifacts {
        kernel: dest(kernel),
        initrd,
        dtb,
        cmdline: Some(cmdline.trim().to_string()),
        disk: Some((image.to_path_buf(), board.qemu.drive)),
    })
}

/// The config.txt settings the GPU firmware's boot of a kernel depends on.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PiConfig {
    pub arm_64bit: bool,
    pub kernel: Option<String>,
    pub initramfs: Option<String>,
    pub device_tree: Option<String>,
    pub cmdline: Option<String>,
}

impl PiConfig {
    /// Reads `key=value` lines and `initramfs FILE [followkernel]`; `#` starts a comment,
    /// a later line wins, `[section]` filters are not followed (kiln writes none).
    pub fn parse(text: &str) -> PiConfig {
        let mut config = PiConfig::default();
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("").trim();
            if let Some(rest) = line.strip_prefix("initramfs ") {
                config.initramfs = rest.split_whitespace().next().map(str::to_string);
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let value = value.trim().to_string();
            match key.trim() {
                "arm_64bit" => config.arm_64bit = value == "1",
                "kernel" => config.kernel = Some(value),
                "device_tree" => config.device_tree = Some(value),
                "cmdline" => config.cmdline = Some(value),
                _ => {}
            }
        }
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_txt_is_read_as_the_firmware_reads_it() {
        let config = PiConfig::parse(
            "# kiln\narm_64bit=1\nkernel=vmlinuz\ninitramfs initrd.img followkernel\ndevice_tree=bcm2837-rpi-3-b.dtb # the board's\nenable_uart=1\nkernel=other\n",
        );
        assert_eq!(
            config,
            PiConfig {
                arm_64bit: true,
                kernel: Some("other".to_string()),
                initramfs: Some("initrd.img".to_string()),
                device_tree: Some("bcm2837-rpi-3-b.dtb".to_string()),
                cmdline: None,
            }
        );
    }
}
