//! cpio "newc" (SVR4 portable ASCII), the format the kernel unpacks as initramfs.
//!
//! The encoder owns every invariant: file-type bits derived from `Kind`, 4-byte padding,
//! inode numbers assigned in tree order from `FIRST_INODE`, nlink 2 for directories and the
//! real count for hard-link groups, and the `TRAILER!!!` record. Hard-linked names share one
//! inode and only the *last* name in archive order carries the data: the kernel opens every
//! later name of a group without truncating, but truncates the inode to each record's size,
//! so data on the first name would be cut back to zero by the next one (GNU cpio agrees).

use std::collections::BTreeMap;
use std::io::{self, BufRead, Read, Write};

use super::{ArchiveError, Options, copy_exact};
use crate::tree::content::Content;
use crate::tree::{ArchivePath, Kind, Meta, Node, Tree};

/// First inode number; 0 is avoided because some readers treat it as "no inode".
pub const FIRST_INODE: u32 = 1;
pub const MAGIC: &[u8; 6] = b"070701";
const MAGIC_CRC: &[u8; 6] = b"070702";
const TRAILER: &str = "TRAILER!!!";

/// Writes `tree` as one newc archive, ending with the trailer, and hands back the writer.
pub fn write<W: Write>(tree: &Tree, mut out: W, options: &Options) -> Result<W, ArchiveError> {
    let mtime = u32::try_from(options.mtime).map_err(|_| ArchiveError::Unrepresentable {
        path: ArchivePath::new("TRAILER").expect("literal"),
        what: format!("mtime {}", options.mtime),
        format: "cpio newc",
        note: " (note: newc holds 32-bit times; set SOURCE_DATE_EPOCH below 2^32)",
    })?;
    let groups = tree.link_groups();
    let mut group_inode: BTreeMap<&ArchivePath, u32> = BTreeMap::new();
    let mut next_inode = FIRST_INODE;
    let context = "unable to write cpio archive";
    for (path, node) in tree.iter() {
        // Hard links resolve to their group: the file's own path is the group key.
        let (group_key, content) = match &node.kind {
            Kind::File(content) => (groups.get_key_value(path).map(|(k, _)| k), Some(content)),
            Kind::HardLink(target) => match tree.get(target) {
                Some(Node {
                    kind: Kind::File(content),
                    ..
                }) => (groups.get_key_value(target).map(|(k, _)| k), Some(content)),
                _ => unreachable!("Tree::validate checked hard-link targets"),
            },
            _ => (None, None),
        };
        let inode = match group_key {
            Some(key) => *group_inode.entry(key).or_insert_with(|| {
                next_inode += 1;
                next_inode - 1
            }),
            None => {
                next_inode += 1;
                next_inode - 1
            }
        };
        let (nlink, carries_data) = match group_key {
            Some(key) => {
                let names = &groups[key];
                (names.len() as u32, names.last() == Some(path))
            }
            None if node.kind == Kind::Dir => (2, false),
            None => (1, true),
        };
        let (rdev_major, rdev_minor) = match node.kind {
            Kind::CharDev { major, minor } | Kind::BlockDev { major, minor } => (major, minor),
            _ => (0, 0),
        };
        let symlink_target = match &node.kind {
            Kind::Symlink(target) => Some(target.as_bytes()),
            _ => None,
        };
        let size = match (content, symlink_target) {
            (Some(content), _) if carries_data => content.len(),
            (_, Some(target)) => target.len() as u64,
            _ => 0,
        };
        let size = u32::try_from(size).map_err(|_| ArchiveError::TooLarge {
            path: path.clone(),
            len: size,
        })?;
        let header = cpio::newc::Builder::new(path.as_str())
            .ino(inode)
            .mode(node.kind.type_bits() | u32::from(node.meta.mode))
            .uid(node.meta.uid)
            .gid(node.meta.gid)
            .nlink(nlink)
            .mtime(mtime)
            .rdev_major(rdev_major)
            .rdev_minor(rdev_minor);
        let mut entry = header.write(&mut out, size);
        // copy_exact fails unless exactly `size` bytes went in, so cpio-rs, which pads
        // only when the body length matched, always closes the record correctly.
        match (content, symlink_target) {
            (Some(content), _) if carries_data => copy_exact(path, content, &mut entry)?,
            (_, Some(target)) => entry.write_all(target).map_err(ArchiveError::io(context))?,
            _ => {}
        }
        entry.finish().map_err(ArchiveError::io(context))?;
    }
    cpio::newc::trailer(&mut out).map_err(ArchiveError::io(context))?;
    Ok(out)
}

/// One parsed newc header.
pub(crate) struct Header {
    pub name: Vec<u8>,
    pub ino: u32,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u32,
    pub mtime: u32,
    pub size: u32,
    pub dev: (u32, u32),
    pub rdev: (u32, u32),
}

/// Reads one header, or `None` at the trailer. `position` tracks the stream offset so the
/// 4-byte padding can be computed.
pub(crate) fn read_header(
    input: &mut dyn BufRead,
    position: &mut u64,
) -> io::Result<Option<Header>> {
    let mut raw = [0u8; 110];
    input.read_exact(&mut raw)?;
    *position += 110;
    if &raw[..6] != MAGIC && &raw[..6] != MAGIC_CRC {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "bad cpio magic {:?} (only newc is supported)",
                String::from_utf8_lossy(&raw[..6])
            ),
        ));
    }
    let field = |index: usize| -> io::Result<u32> {
        let text = &raw[6 + index * 8..6 + index * 8 + 8];
        std::str::from_utf8(text)
            .ok()
            .and_then(|text| u32::from_str_radix(text, 16).ok())
            .ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidData, "bad hex field in cpio header")
            })
    };
    let name_size = field(11)? as u64;
    if name_size == 0 || name_size > 1 << 20 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "bad cpio name size",
        ));
    }
    let mut name = Vec::new();
    input.take(name_size).read_to_end(&mut name)?;
    if name.len() as u64 != name_size {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    *position += name_size;
    skip_padding(input, position)?;
    while name.last() == Some(&0) {
        name.pop();
    }
    if name == TRAILER.as_bytes() {
        return Ok(None);
    }
    Ok(Some(Header {
        name,
        ino: field(0)?,
        mode: field(1)?,
        uid: field(2)?,
        gid: field(3)?,
        nlink: field(4)?,
        mtime: field(5)?,
        size: field(6)?,
        dev: (field(7)?, field(8)?),
        rdev: (field(9)?, field(10)?),
    }))
}

pub(crate) fn skip_padding(input: &mut dyn BufRead, position: &mut u64) -> io::Result<()> {
    let pad = (4 - (*position % 4)) % 4;
    if pad > 0 {
        let mut zeros = [0u8; 3];
        input.read_exact(&mut zeros[..pad as usize])?;
        *position += pad;
    }
    Ok(())
}

/// Reads one newc archive (up to its trailer) from `input` into `tree`, later entries
/// replacing earlier ones as the kernel does. Data goes through `store`, which returns the
/// content to record for a body of `len` bytes.
pub(crate) fn read_into(
    input: &mut dyn BufRead,
    tree: &mut Tree,
    origin: &str,
    store: &mut dyn FnMut(&mut dyn Read, u64, &str) -> io::Result<Content>,
) -> io::Result<()> {
    let mut position = 0u64;
    // (ino, dev) of multiply-linked files → the first name seen.
    let mut links: BTreeMap<(u32, u32, u32), ArchivePath> = BTreeMap::new();
    while let Some(header) = read_header(input, &mut position)? {
        let name = String::from_utf8_lossy(&header.name).into_owned();
        let mut body = input.take(u64::from(header.size));
        let path = match ArchivePath::from_bytes(&header.name) {
            Ok(path) => Some(path),
            // The root directory itself ("." or "/") carries nothing kiln keeps.
            Err(crate::tree::PathError::Empty) => None,
            Err(err) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("member {name:?}: {err}"),
                ));
            }
        };
        let meta = Meta::new(header.mode, header.uid, header.gid);
        let kind = match header.mode & 0o170000 {
            0o040000 => Some(Kind::Dir),
            0o100000 => {
                let content = store(&mut body, u64::from(header.size), &name)?;
                let key = (header.ino, header.dev.0, header.dev.1);
                match (
                    header.nlink > 1,
                    path.as_ref().and_then(|_| links.get(&key)),
                ) {
                    (true, Some(first)) => {
                        if !content.is_empty() {
                            if let Some(node) = tree.get_mut(first) {
                                node.kind = Kind::File(content);
                            }
                        }
                        Some(Kind::HardLink(first.clone()))
                    }
                    (true, None) => {
                        if let Some(path) = &path {
                            links.insert(key, path.clone());
                        }
                        Some(Kind::File(content))
                    }
                    _ => Some(Kind::File(content)),
                }
            }
            0o120000 => {
                let mut target = Vec::new();
                body.read_to_end(&mut target)?;
                Some(Kind::Symlink(String::from_utf8_lossy(&target).into_owned()))
            }
            0o020000 => Some(Kind::CharDev {
                major: header.rdev.0,
                minor: header.rdev.1,
            }),
            0o060000 => Some(Kind::BlockDev {
                major: header.rdev.0,
                minor: header.rdev.1,
            }),
            0o010000 => Some(Kind::Fifo),
            0o140000 => Some(Kind::Socket),
            other => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("member {name:?}: unknown file type {other:o}"),
                ));
            }
        };
        // Drain whatever the kind did not consume, then the padding.
        io::copy(&mut body, &mut io::sink())?;
        position += u64::from(header.size);
        skip_padding(input, &mut position)?;
        if let (Some(path), Some(kind)) = (path, kind) {
            let mut node = Node::new(kind, meta, origin);
            node.mtime = Some(u64::from(header.mtime));
            tree.replace(path, node)
                .map_err(|err| io::Error::new(io::ErrorKind::InvalidData, err.to_string()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::Meta;

    fn small_tree() -> Tree {
        let mut tree = Tree::new();
        tree.dir("dev", Meta::root(0o755), "t").unwrap();
        tree.char_dev("dev/console", 5, 1, Meta::root(0o600), "t")
            .unwrap();
        tree.file("init", "#!/bin/sh\n", Meta::root(0o755), "t")
            .unwrap();
        tree.symlink("sh", "bin/busybox", "t").unwrap();
        tree
    }

    /// The one binary golden: a 5-node archive, checked as text.
    #[test]
    fn small_archive_bytes() {
        let options = Options {
            mtime: 0,
            ..Options::default()
        };
        let bytes = write(&small_tree(), Vec::new(), &options).unwrap();
        let text = String::from_utf8(bytes).unwrap().replace('\0', "@");
        expect_test::expect![[r#"
            07070100000001000041ed0000000000000000000000020000000000000000000000000000000000000000000000000000000400000000dev@@@07070100000002000021800000000000000000000000010000000000000000000000000000000000000005000000010000000c00000000dev/console@@@07070100000003000081ed000000000000000000000001000000000000000a000000000000000000000000000000000000000500000000init@@#!/bin/sh
            @@070701000000040000a1ff000000000000000000000001000000000000000b000000000000000000000000000000000000000300000000sh@@@@bin/busybox@07070100000000000000000000000000000000000000010000000000000000000000000000000000000000000000000000000b00000000TRAILER!!!@@@@"#]]
        .assert_eq(&text);
    }

    #[test]
    fn hard_links_share_inode_and_data_is_on_the_last() {
        let mut tree = Tree::new();
        tree.file("a", "data", Meta::root(0o644), "t").unwrap();
        for name in ["b", "c"] {
            let node = Node::new(
                Kind::HardLink(ArchivePath::new("a").unwrap()),
                Meta::root(0o644),
                "t",
            );
            tree.insert(ArchivePath::new(name).unwrap(), node).unwrap();
        }
        let bytes = write(&tree, Vec::new(), &Options::default()).unwrap();
        let mut input = &bytes[..];
        let mut position = 0;
        let mut seen = Vec::new();
        while let Some(header) = read_header(&mut input, &mut position).unwrap() {
            let mut body = vec![0; header.size as usize];
            input.read_exact(&mut body).unwrap();
            position += u64::from(header.size);
            skip_padding(&mut input, &mut position).unwrap();
            seen.push((
                String::from_utf8(header.name).unwrap(),
                header.ino,
                header.nlink,
                header.size,
            ));
        }
        assert_eq!(
            seen,
            vec![
                ("a".to_string(), 1, 3, 0),
                ("b".to_string(), 1, 3, 0),
                ("c".to_string(), 1, 3, 4)
            ]
        );
    }
}
