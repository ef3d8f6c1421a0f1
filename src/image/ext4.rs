//! An ext4 filesystem from a tree, unprivileged: the tree's directories, files, symlinks
//! and hard links are staged in a temporary host directory and copied in by
//! `mke2fs -d` (e2fsprogs sorts each directory, so the layout does not depend on the
//! host's readdir order); then one `debugfs -w` script makes the device nodes and fifos
//! and sets every inode's owner, mode and times from the tree, since the staged copies
//! carry the invoking user's ids and the host's clock.
//!
//! Determinism: a fixed mke2fs profile (not the host's /etc/mke2fs.conf), a UUID and
//! hash seed derived from the board, and `E2FSPROGS_FAKE_TIME` for every time e2fsprogs
//! writes on its own (superblock, root, lost+found).

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

use super::table::uuid_string;
use crate::config::image::Extent;
use crate::host::temp::ScratchDir;
use crate::host::tool;
use crate::tree::{Kind, Tree};

const BLOCK: u64 = 4096;

/// The mke2fs profile: Debian bookworm's ext4 features, spelled out so the host's
/// configuration cannot change the result (orphan_file and metadata_csum_seed stay off:
/// kernels before 5.15 refuse orphan_file). One inode per 16 KiB at every size.
const PROFILE: &str = "[defaults]
\tbase_features = sparse_super,large_file,filetype,resize_inode,dir_index,ext_attr
\tdefault_mntopts = acl,user_xattr
\tenable_periodic_fsck = 0
\tblocksize = 4096
\tinode_size = 256
\tinode_ratio = 16384
\treserved_ratio = 5.0
[fs_types]
\text4 = {
\t\tfeatures = has_journal,extent,huge_file,flex_bg,metadata_csum,64bit,dir_nlink,extra_isize
\t}
";

/// Bytes an ext4 partition needs for `tree`: data blocks, one block per directory and
/// long symlink, an inode per 16 KiB, the journal and about 8% of metadata and
/// reserved blocks. A margin is added by the caller.
pub fn estimate(tree: &Tree) -> u64 {
    let blocks = |bytes: u64| bytes.div_ceil(BLOCK) * BLOCK;
    let mut data = 0;
    let mut inodes = 16u64;
    for (_, node) in tree.iter() {
        inodes += 1;
        data += match &node.kind {
            Kind::File(content) => blocks(content.len()),
            Kind::Dir => BLOCK,
            Kind::Symlink(target) if target.len() >= 60 => BLOCK,
            _ => 0,
        };
    }
    let journal = if data < 100 << 20 { 4 << 20 } else { 16 << 20 };
    let bytes = (data + journal + (1 << 20)) * 108 / 100;
    bytes.max(inodes * 16384 * 5 / 4)
}

pub struct Params<'a> {
    pub image: &'a Path,
    pub extent: Extent,
    pub label: &'a str,
    pub uuid: [u8; 16],
    pub tree: &'a Tree,
    pub mtime: u64,
}

/// Makes the filesystem inside `image` at `extent`.
pub fn write(params: &Params) -> Result<()> {
    let dir = params.image.parent().unwrap_or(Path::new("."));
    let scratch = ScratchDir::create(dir, "ext4")?;
    let stage = scratch.path.join("stage");
    fs::create_dir(&stage).with_context(|| format!("unable to create {}", stage.display()))?;
    stage_tree(params.tree, &stage)?;
    let profile = scratch.path.join("mke2fs.conf");
    fs::write(&profile, PROFILE)
        .with_context(|| format!("unable to write {}", profile.display()))?;
    let mut hash_seed = params.uuid;
    hash_seed[0] ^= 0xff;
    let fake_time = params.mtime.to_string();
    let offset_image = e2fs_target(params.image, params.extent);
    tool::run(
        Command::new(tool::find("mke2fs")?)
            .env("MKE2FS_CONFIG", &profile)
            .env("E2FSPROGS_FAKE_TIME", &fake_time)
            .args(["-q", "-F", "-t", "ext4", "-L", params.label, "-U"])
            .arg(uuid_string(params.uuid))
            .arg("-E")
            .arg(format!(
                "hash_seed={},root_owner=0:0,offset={},nodiscard,lazy_itable_init=1,lazy_journal_init=1",
                uuid_string(hash_seed),
                params.extent.start
            ))
            .arg("-d")
            .arg(&stage)
            .arg(params.image)
            .arg(format!("{}k", params.extent.size / 1024)),
        None,
    )
    .map_err(|err| {
        if err.to_string().contains("Could not allocate block")
            || err.to_string().contains("No free space")
        {
            anyhow::anyhow!(crate::error::Input(format!(
                "the root partition ({} MiB) is too small for the tree: raise its size or margin\n{err}",
                params.extent.size >> 20
            )))
        } else {
            err
        }
    })?;
    let commands = scratch.path.join("debugfs.cmds");
    fs::write(&commands, debugfs_script(params.tree, params.mtime)?)
        .with_context(|| format!("unable to write {}", commands.display()))?;
    let stderr = tool::run(
        Command::new(tool::find("debugfs")?)
            .env("E2FSPROGS_FAKE_TIME", &fake_time)
            .arg("-w")
            .arg("-f")
            .arg(&commands)
            .arg(&offset_image),
        None,
    )?
    .stderr;
    // debugfs exits 0 even when a command fails; anything but its banner is a failure.
    let complaints: Vec<&str> = stderr
        .lines()
        .filter(|line| !line.starts_with("debugfs ") && !line.trim().is_empty())
        .collect();
    if !complaints.is_empty() {
        bail!(
            "debugfs could not apply the tree's metadata:\n{}",
            complaints.join("\n")
        );
    }
    check(params.image, params.extent)
}

/// e2fsprogs' name for a filesystem inside an image file: `IMAGE?offset=BYTES`.
fn e2fs_target(image: &Path, extent: Extent) -> std::ffi::OsString {
    let mut target = std::ffi::OsString::from(image);
    target.push(format!("?offset={}", extent.start));
    target
}

/// `e2fsck -fn`: the filesystem must be clean.
pub fn check(image: &Path, extent: Extent) -> Result<()> {
    tool::run(
        Command::new(tool::find("e2fsck")?)
            .arg("-fn")
            .arg(e2fs_target(image, extent)),
        None,
    )
    .context("e2fsck found the new filesystem inconsistent")?;
    Ok(())
}

/// Writes the tree's directories, files, symlinks and hard links under `stage` (with
/// modes the invoking user can always read and write; the real ones come later).
/// Device nodes and fifos are left to debugfs.
fn stage_tree(tree: &Tree, stage: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for (path, node) in tree.iter() {
        let host = stage.join(path.as_str());
        let made = match &node.kind {
            Kind::Dir => fs::create_dir(&host),
            Kind::File(content) => (|| {
                let mut file = fs::File::create(&host)?;
                io::copy(&mut content.open()?, &mut file)?;
                let mode = if node.meta.mode & 0o111 != 0 {
                    0o755
                } else {
                    0o644
                };
                file.set_permissions(fs::Permissions::from_mode(mode))
            })(),
            Kind::Symlink(target) => std::os::unix::fs::symlink(target, &host),
            Kind::HardLink(target) => fs::hard_link(stage.join(target.as_str()), &host),
            Kind::CharDev { .. } | Kind::BlockDev { .. } | Kind::Fifo => Ok(()),
            Kind::Socket => bail!("{path}: a socket cannot be put into an ext4 image"),
        };
        made.with_context(|| format!("unable to stage {path} at {}", host.display()))?;
    }
    Ok(())
}

/// The debugfs commands: make each device node and fifo in its directory (debugfs
/// 1.47.0's mknod takes a name, not a path), then set owner, mode and times of every
/// entry. Hard links share their file's inode and need nothing. Times take the `@SECONDS`
/// form: a bare number is parsed as a YYYYMMDD... date (946684800 became the year 2389,
/// which 32-bit userlands cannot even stat: EOVERFLOW, measured on armv7).
pub fn debugfs_script(tree: &Tree, mtime: u64) -> Result<String> {
    let mut script = String::new();
    for (path, node) in tree.iter() {
        let quoted = quote(&format!("/{}", path.as_str()))?;
        let make = match &node.kind {
            Kind::CharDev { major, minor } => Some(format!("c {major} {minor}")),
            Kind::BlockDev { major, minor } => Some(format!("b {major} {minor}")),
            Kind::Fifo => Some("p".to_string()),
            _ => None,
        };
        if let Some(make) = make {
            let parent = path
                .parent()
                .map_or("/".to_string(), |p| format!("/{}", p.as_str()));
            let _ = writeln!(
                script,
                "cd {}\nmknod {} {make}\ncd /",
                quote(&parent)?,
                quote(path.file_name())?
            );
        }
        if matches!(node.kind, Kind::HardLink(_)) {
            continue;
        }
        let mode = node.kind.type_bits() | u32::from(node.meta.mode);
        let _ = writeln!(script, "sif {quoted} mode 0{mode:o}");
        let _ = writeln!(script, "sif {quoted} uid {}", node.meta.uid);
        let _ = writeln!(script, "sif {quoted} gid {}", node.meta.gid);
        for field in ["atime", "mtime", "ctime", "crtime"] {
            let _ = writeln!(script, "sif {quoted} {field} @{mtime}");
        }
    }
    Ok(script)
}

/// A debugfs argument: double quotes protect spaces; debugfs has no escape for a quote
/// or a line break, so paths with those are refused.
fn quote(text: &str) -> Result<String> {
    if text.contains(['"', '\n', '\r']) {
        bail!(crate::error::Input(format!(
            "{text:?}: an ext4 image cannot hold this name through debugfs (it has a quote or a line break)"
        )));
    }
    Ok(format!("\"{text}\""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::Meta;

    #[test]
    fn debugfs_script_makes_nodes_by_name_and_sets_every_field() {
        let mut tree = Tree::new();
        tree.dir("dev", Meta::root(0o755), "t").unwrap();
        tree.char_dev("dev/console", 5, 1, Meta::root(0o600), "t")
            .unwrap();
        tree.fifo("dev/my fifo", Meta::new(0o600, 70, 70), "t")
            .unwrap();
        let script = debugfs_script(&tree, 946_684_800).unwrap();
        expect_test::expect![[r#"
            sif "/dev" mode 040755
            sif "/dev" uid 0
            sif "/dev" gid 0
            sif "/dev" atime @946684800
            sif "/dev" mtime @946684800
            sif "/dev" ctime @946684800
            sif "/dev" crtime @946684800
            cd "/dev"
            mknod "console" c 5 1
            cd /
            sif "/dev/console" mode 020600
            sif "/dev/console" uid 0
            sif "/dev/console" gid 0
            sif "/dev/console" atime @946684800
            sif "/dev/console" mtime @946684800
            sif "/dev/console" ctime @946684800
            sif "/dev/console" crtime @946684800
            cd "/dev"
            mknod "my fifo" p
            cd /
            sif "/dev/my fifo" mode 010600
            sif "/dev/my fifo" uid 70
            sif "/dev/my fifo" gid 70
            sif "/dev/my fifo" atime @946684800
            sif "/dev/my fifo" mtime @946684800
            sif "/dev/my fifo" ctime @946684800
            sif "/dev/my fifo" crtime @946684800
        "#]]
        .assert_eq(&script);
    }
}
