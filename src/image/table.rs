//! The partition table: stable ids derived from the board's name, the sfdisk script
//! that writes it, and reading a table back (`kiln boot --image`).

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::config::image::{Contents, Extent, Filesystem, ImageSpec, Table};
use crate::host::tool;

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

/// The partitions of an image file as `sfdisk --json` reads them: (start, size) in bytes.
pub fn read_table(image: &Path) -> Result<Vec<Extent>> {
    let output = Command::new(tool::find("sfdisk")?)
        .arg("--dump")
        .arg(image)
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("unable to run sfdisk on {}", image.display()))?;
    if !output.status.success() {
        bail!(crate::error::Input(format!(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Drive;
    use crate::config::image::fixture::{MIB, pi};
    use crate::config::image::layout;

    #[test]
    fn sfdisk_scripts_are_stable() {
        let (_, extents) = layout(&pi(), Drive::Sd, &[0, 30 * MIB]).unwrap();
        // The ids derive from the board name: the same text on every run and machine.
        let script = sfdisk_script(&pi(), &extents, "raspberrypi3-64");
        assert_eq!(
            script,
            "label: dos\nlabel-id: 0x9b412210\nunit: sectors\nstart=2048, size=131072, type=c, bootable\nstart=133120, size=129024, type=83\n"
        );
        let other = sfdisk_script(&pi(), &extents, "orangepi-pc");
        assert_ne!(
            script.lines().nth(1),
            other.lines().nth(1),
            "boards share a disk id"
        );
        assert_ne!(stable_id("a"), stable_id("b"));
        assert_eq!(uuid_string(stable_id("a")).len(), 36);
    }
}
