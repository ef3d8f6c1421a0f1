//! `kiln image`: a partitioned SD-card or disk image in one regular file, without root.
//!
//! The partition table by `sfdisk`, an ext4 root by `mke2fs -d` plus `debugfs` (owners,
//! modes, times, device nodes and fifos), a FAT boot partition by `mkfs.fat` plus mtools,
//! with the kernel, the dtb, kiln's stage-0 initramfs and `cmdline.txt`. Every tool
//! writes straight at the partition's offset inside the one image file, so nothing is
//! copied and the file stays sparse; the file is renamed into place only when complete.
//!
//! Why Debian's tools and not a Rust ext4 writer: e2fsprogs is the reference ext4
//! implementation (the same code fsck uses to judge the result), works on image files
//! unprivileged, and takes fixed UUIDs, hash seeds and timestamps, which is all
//! determinism needs. The layout arithmetic is kiln's own (`config::image::layout`).

pub mod bootloader;
pub mod ext4;
pub mod fat;
pub mod kernel;
pub mod stage0;
pub mod table;
pub mod uboot;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::archive::{self, Compression, Container, Format};
use crate::config::image::{Contents, Extent, FileSource, Filesystem, ImageSpec, layout};
use crate::config::{Board, Drive};
use crate::host::temp::{ScratchDir, TempFile};
use crate::host::tool;
use crate::rootfs::{self, Additions, Rootfs};
use crate::tree::{Kind, Tree};

/// The host tools an image needs.
const TOOLS: [&str; 7] = [
    "sfdisk", "mke2fs", "debugfs", "e2fsck", "mkfs.fat", "mcopy", "mmd",
];

/// What `kiln image` made.
pub struct Made {
    pub output: PathBuf,
    pub size: u64,
    pub extents: Vec<Extent>,
    pub rootfs: Rootfs,
    /// Files of the boot partition, by name.
    pub boot_files: Vec<String>,
    /// Bytes written outside the partitions: (offset, size, what).
    pub raw: Vec<(u64, u64, String)>,
    /// What kiln built from source onto the card (U-Boot), for the SBOM.
    pub built: Vec<uboot::Built>,
    pub timings: Vec<(String, f64)>,
}

/// `kiln image`: the board's tree as the root partition, and a boot partition with the
/// kernel, the dtb, the stage-0 initramfs, `cmdline.txt` and the board's extra files.
pub fn make(
    board: &Board,
    output: &Path,
    offline: Option<&Path>,
    additions: &Additions,
) -> Result<Made> {
    let Some(spec) = &board.image else {
        bail!(crate::error::Input(format!(
            "{}: no [image] table: describe the card's partitions there (see README, \"kiln image\")",
            board.file.display()
        )));
    };
    let started = Instant::now();
    let out_dir = match output.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let rootfs = rootfs::compose(board, offline, additions)?;
    let mut timings = vec![("image tree".to_string(), started.elapsed().as_secs_f64())];
    let clock = Instant::now();
    let options = archive::Options::from_env()?;
    let scratch_dir = ScratchDir::create(&out_dir, "boot")?;
    let scratch = scratch_dir.path.as_path();
    let mut boot = Vec::new();
    let mut chains = bootloader::Chains::default();
    if let Some(partition) = spec.boot() {
        let deb = crate::fetch::kernel_deb(&rootfs.debs).ok_or_else(|| {
            crate::error::input(format!(
                "{}: a boot partition needs [kernel] package",
                board.file.display()
            ))
        })?;
        let (kernel, dtb) = kernel::from_package(board, deb, scratch)?;
        boot.push(("vmlinuz".to_string(), kernel));
        if let (Some(dtb_path), Some(name)) = (dtb, board.kernel.dtb_file_name()) {
            boot.push((name.to_string(), dtb_path));
        }
        let initrd = scratch.join("initrd.img");
        let stage0 = stage0::tree(&rootfs.tree, board, &rootfs.debs)?;
        archive::write_file(
            &stage0,
            Format::new(Container::Cpio, Compression::Gzip),
            &initrd,
            &options,
        )?;
        boot.push(("initrd.img".to_string(), initrd));
        let line = bootloader::cmdline(board, spec, &additions.cmdline);
        let cmdline = scratch.join("cmdline.txt");
        std::fs::write(&cmdline, format!("{line}\n"))
            .with_context(|| format!("unable to write {}", cmdline.display()))?;
        boot.push(("cmdline.txt".to_string(), cmdline));
        for source in &partition.files {
            boot_files(source, &rootfs.debs, scratch, &mut boot)?;
        }
        timings.push(("kernel, stage 0".to_string(), clock.elapsed().as_secs_f64()));
        if let Some(spec) = &board.boot {
            let clock = Instant::now();
            let kernel = boot[0].1.clone();
            let sources = bootloader::Sources {
                cmdline: &line,
                kernel: &kernel,
                debs: &rootfs.debs,
                scratch,
                mtime: options.mtime,
                offline,
            };
            chains = bootloader::add(board, spec, &sources, &mut boot)?;
            timings.push(("boot loaders".to_string(), clock.elapsed().as_secs_f64()));
        }
    }
    let input = Input {
        board,
        chains: &chains,
        spec,
        drive: board.qemu.drive,
        root: &rootfs.tree,
        boot: boot.clone(),
        mtime: options.mtime,
    };
    let written =
        write(&input, output).with_context(|| format!("unable to write {}", output.display()))?;
    timings.extend(written.timings.iter().cloned());
    let mut raw = Vec::new();
    for write in &chains.raw {
        let size = std::fs::metadata(&write.file)
            .with_context(|| format!("unable to stat {}", write.file.display()))?
            .len();
        raw.push((write.offset, size, write.what.clone()));
    }
    Ok(Made {
        output: output.to_path_buf(),
        size: written.size,
        extents: written.extents,
        rootfs,
        boot_files: boot.into_iter().map(|(name, _)| name).collect(),
        raw,
        built: chains.built,
        timings,
    })
}

impl Made {
    /// The partition table and phase timings, as `kiln image` prints them.
    pub fn report(&self, board: &Board) -> String {
        let Some(spec) = &board.image else {
            return String::new();
        };
        let mib = |bytes: u64| format!("{}M", bytes >> 20);
        let mut text = format!(
            "kiln: wrote {} ({}, {} table, {} drive)\n  #  start   size     fs     label        contents\n",
            self.output.display(),
            mib(self.size),
            spec.table.name(),
            board.qemu.drive.name()
        );
        for (index, (partition, extent)) in spec.partitions.iter().zip(&self.extents).enumerate() {
            let contents = match partition.contents {
                Contents::Boot => format!("boot: {}", self.boot_files.join(" ")),
                Contents::Root => format!("root: {} entries", self.rootfs.tree.len()),
                Contents::Empty => "empty".to_string(),
            };
            text.push_str(&format!(
                "  {:<2} {:<7} {:<8} {:<6} {:<12} {contents}\n",
                index + 1,
                mib(extent.start),
                mib(extent.size),
                partition.filesystem.name(),
                partition.label
            ));
        }
        for (offset, size, what) in &self.raw {
            text.push_str(&format!("  raw: {size} bytes at byte {offset}: {what}\n"));
        }
        if let Some(boot) = &board.boot {
            let names: Vec<&str> = boot.firmware.iter().map(|one| one.name()).collect();
            text.push_str(&format!("  firmware chains: {}\n", names.join(", ")));
        }
        text.push_str("phase                          seconds\n");
        for (phase, seconds) in &self.timings {
            text.push_str(&format!("{phase:<30} {seconds:>7.2}\n"));
        }
        text
    }
}

/// What goes into the image.
struct Input<'a> {
    pub board: &'a Board,
    /// What the firmware chains write outside the filesystems.
    pub chains: &'a bootloader::Chains,
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
fn write(input: &Input, dest: &Path) -> Result<Written> {
    for name in TOOLS {
        tool::find(name)?;
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
    let temp = TempFile::create(dest)?;
    temp.file
        .set_len(size)
        .with_context(|| format!("unable to size {}", temp.path.display()))?;
    tool::run(
        Command::new(tool::find("sfdisk")?)
            .args([
                "--quiet",
                "--no-reread",
                "--no-tell-kernel",
                "--wipe",
                "never",
            ])
            .arg(&temp.path),
        Some(&table::sfdisk_script(
            input.spec,
            &extents,
            &input.board.name,
        )),
    )?;
    lap(&mut timings, "partition table");
    let empty = Tree::new();
    for (partition, extent) in input.spec.partitions.iter().zip(&extents) {
        let uuid = table::stable_id(&format!("{} fs {}", input.board.name, partition.label));
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
    let boot_extent = input
        .spec
        .partitions
        .iter()
        .zip(&extents)
        .find(|(partition, _)| partition.contents == Contents::Boot)
        .map(|(_, extent)| *extent);
    if let Some(boot_extent) = boot_extent {
        bootloader::install(
            input.board,
            &temp.path,
            &temp.file,
            input.chains,
            boot_extent,
            extents[0].start,
            input.mtime,
        )?;
        if !input.chains.raw.is_empty() || input.chains.syslinux {
            lap(&mut timings, "boot code");
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

/// Copies one `files` source into the scratch dir; the FAT writer sets their times, so
/// it must never see the user's own files.
fn boot_files(
    source: &FileSource,
    debs: &BTreeMap<String, PathBuf>,
    scratch: &Path,
    boot: &mut Vec<(String, PathBuf)>,
) -> Result<()> {
    let mut add = |name: String, bytes: Vec<u8>| -> Result<()> {
        let copy = scratch.join(format!("file-{}", boot.len()));
        std::fs::write(&copy, bytes)
            .with_context(|| format!("unable to write {}", copy.display()))?;
        boot.retain(|(existing, _)| *existing != name);
        boot.push((name, copy));
        Ok(())
    };
    match source {
        FileSource::Host(path) => {
            if path.is_dir() {
                let mut tree = Tree::new();
                crate::source::overlay::load_dir(&mut tree, path, None, (0, 0))?;
                for (name, node) in tree.iter() {
                    if let Kind::File(content) = &node.kind {
                        add(name.as_str().to_string(), content.read_all()?)?;
                    }
                }
            } else {
                let bytes = std::fs::read(path)
                    .with_context(|| format!("[image] files: unable to read {}", path.display()))?;
                let name = path
                    .file_name()
                    .map(|name| name.to_string_lossy().into_owned())
                    .unwrap_or_default();
                add(name, bytes)?;
            }
        }
        FileSource::Package {
            package,
            glob: pattern,
        } => {
            let deb = debs
                .get(package)
                .with_context(|| format!("[image] files: package {package} was not fetched"))?;
            let data = crate::source::deb::read(deb)?.data;
            let mut found = 0;
            for (path, node) in data.iter() {
                if let Kind::File(content) = &node.kind {
                    if crate::rootfs::packages::glob(pattern, path.as_str()) {
                        add(path.file_name().to_string(), content.read_all()?)?;
                        found += 1;
                    }
                }
            }
            if found == 0 {
                bail!(crate::error::Input(format!(
                    "[image] files: nothing in {package} matches {pattern:?}"
                )));
            }
        }
    }
    Ok(())
}
