//! cpio "newc" (SVR4 portable ASCII), the format the kernel unpacks as initramfs.
//!
//! The encoder owns every invariant: file-type bits derived from `Kind`, 4-byte padding,
//! inode numbers assigned in tree order from `FIRST_INODE`, nlink 2 for directories and the
//! real count for hard-link groups, and the `TRAILER!!!` record. Hard-linked names share one
//! inode and only the *last* name in archive order carries the data: the kernel opens every
//! later name of a group without truncating, but truncates the inode to each record's size,
//! so data on the first name would be cut back to zero by the next one (GNU cpio agrees).
//!
//! The reader takes archives made by others: names and symlink targets are bounded by
//! `limits::PATH_MAX` before they are read, the 070702 variant's data sums are verified,
//! and a record cut short anywhere is an error naming the entry, never a shorter tree.

use std::collections::BTreeMap;
use std::io::{self, BufRead, Read, Write};

use super::limits::{self, in_entry, invalid, truncated};
use super::read::{Target, cut_short, drain, read_full};
use super::{ArchiveError, Options, copy_exact};
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
        let fields = NewcFields {
            ino: inode,
            mode: node.kind.type_bits() | u32::from(node.meta.mode),
            uid: node.meta.uid,
            gid: node.meta.gid,
            nlink,
            mtime,
            size,
            rdev_major,
            rdev_minor,
        };
        write_header(&mut out, path.as_str(), &fields).map_err(ArchiveError::io(context))?;
        // copy_exact fails unless exactly `size` bytes went in, so the padding below
        // always closes the record where its header said.
        match (content, symlink_target) {
            (Some(content), _) if carries_data => copy_exact(path, content, &mut out)?,
            (_, Some(target)) => out.write_all(target).map_err(ArchiveError::io(context))?,
            _ => {}
        }
        out.write_all(&[0; 3][..pad4(u64::from(size))])
            .map_err(ArchiveError::io(context))?;
    }
    let trailer = NewcFields {
        nlink: 1,
        ..NewcFields::default()
    };
    write_header(&mut out, TRAILER, &trailer).map_err(ArchiveError::io(context))?;
    Ok(out)
}

/// The numbers of one newc header (device numbers of the archive's own filesystem and
/// the check field are always 0).
#[derive(Default)]
struct NewcFields {
    ino: u32,
    mode: u32,
    uid: u32,
    gid: u32,
    nlink: u32,
    mtime: u32,
    size: u32,
    rdev_major: u32,
    rdev_minor: u32,
}

/// Bytes that pad `len` to a multiple of 4.
fn pad4(len: u64) -> usize {
    ((4 - len % 4) % 4) as usize
}

/// `070701`, thirteen 8-digit hex fields, the name with its NUL, padded to 4 bytes: one
/// write, so a record's header never costs more than one syscall.
fn write_header(out: &mut impl Write, name: &str, fields: &NewcFields) -> io::Result<()> {
    use std::fmt::Write as _;
    let name_size = name.len() as u64 + 1;
    let mut header = String::with_capacity(HEADER_LEN + name.len() + 4);
    header.push_str("070701");
    for value in [
        u64::from(fields.ino),
        u64::from(fields.mode),
        u64::from(fields.uid),
        u64::from(fields.gid),
        u64::from(fields.nlink),
        u64::from(fields.mtime),
        u64::from(fields.size),
        0,
        0,
        u64::from(fields.rdev_major),
        u64::from(fields.rdev_minor),
        name_size,
        0,
    ] {
        let _ = write!(header, "{value:08x}");
    }
    header.push_str(name);
    header.push('\0');
    let padding = pad4((HEADER_LEN as u64) + name_size);
    header.push_str(&"\0\0\0"[..padding]);
    out.write_all(header.as_bytes())
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
    /// In the 070702 ("crc") variant, the sum of a regular file's bytes; else `None`.
    pub check: Option<u32>,
}

/// Magic and thirteen 8-digit hex fields.
const HEADER_LEN: usize = 110;

/// The header's fields in order, for messages.
const FIELDS: [&str; 13] = [
    "ino",
    "mode",
    "uid",
    "gid",
    "nlink",
    "mtime",
    "filesize",
    "devmajor",
    "devminor",
    "rdevmajor",
    "rdevminor",
    "namesize",
    "check",
];

/// Reads one header, or `None` at the trailer. `position` tracks the stream offset so the
/// 4-byte padding can be computed. The name is bounded by `limits::PATH_MAX` before it is
/// read.
pub(crate) fn read_header(
    input: &mut dyn BufRead,
    position: &mut u64,
) -> io::Result<Option<Header>> {
    let at = *position;
    let mut raw = [0u8; HEADER_LEN];
    match read_full(input, &mut raw)? {
        0 => {
            return Err(truncated(format!(
                "truncated: ends at byte {at} without a {TRAILER} record"
            )));
        }
        HEADER_LEN => {}
        got => {
            return Err(truncated(format!(
                "truncated: the header at byte {at} ends after {got} of {HEADER_LEN} bytes"
            )));
        }
    }
    *position += HEADER_LEN as u64;
    if &raw[..6] != MAGIC && &raw[..6] != MAGIC_CRC {
        return Err(invalid(format!(
            "header at byte {at}: bad cpio magic {:?} (only newc is supported)",
            String::from_utf8_lossy(&raw[..6])
        )));
    }
    let field = |index: usize| -> io::Result<u32> {
        let text = &raw[6 + index * 8..6 + index * 8 + 8];
        // from_str_radix alone would take a leading '+'.
        std::str::from_utf8(text)
            .ok()
            .filter(|text| text.bytes().all(|b| b.is_ascii_hexdigit()))
            .and_then(|text| u32::from_str_radix(text, 16).ok())
            .ok_or_else(|| {
                invalid(format!(
                    "header at byte {at}: {} {:?} is not 8 hex digits",
                    FIELDS[index],
                    String::from_utf8_lossy(text)
                ))
            })
    };
    let name_size = u64::from(field(11)?);
    if name_size == 0 {
        return Err(invalid(format!(
            "header at byte {at}: namesize 0 leaves no room for the name's NUL"
        )));
    }
    limits::check("name", name_size - 1, limits::PATH_MAX)
        .map_err(|err| invalid(format!("entry at byte {at}: {err}")))?;
    let mut name = vec![0u8; name_size as usize];
    let got = read_full(input, &mut name)?;
    if got < name.len() {
        return Err(truncated(format!(
            "entry at byte {at}: truncated: name of {name_size} bytes ends after {got}"
        )));
    }
    *position += name_size;
    skip_padding(input, position).map_err(|err| in_entry_at(at, err))?;
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
        check: if &raw[..6] == MAGIC_CRC {
            Some(field(12)?)
        } else {
            None
        },
    }))
}

fn in_entry_at(at: u64, err: io::Error) -> io::Error {
    io::Error::new(err.kind(), format!("entry at byte {at}: {err}"))
}

/// Skips the NULs that align the stream to 4 bytes.
pub(crate) fn skip_padding(input: &mut dyn BufRead, position: &mut u64) -> io::Result<()> {
    let pad = ((4 - (*position % 4)) % 4) as usize;
    let mut zeros = [0u8; 3];
    let got = read_full(input, &mut zeros[..pad])?;
    if got < pad {
        return Err(truncated("truncated: the padding after it is cut short"));
    }
    *position += pad as u64;
    Ok(())
}

/// Reads one newc archive (up to its trailer) from `input` into the target, later entries
/// replacing earlier ones as the kernel does. Data goes through the target's store. A
/// record cut short anywhere is an error naming the entry, never a shorter tree.
pub(crate) fn read_into(input: &mut dyn BufRead, target: &mut Target<'_>) -> io::Result<()> {
    let mut position = 0u64;
    // (ino, dev) of multiply-linked files → the first name seen.
    let mut links: BTreeMap<(u32, u32, u32), ArchivePath> = BTreeMap::new();
    while let Some(header) = read_header(input, &mut position)? {
        let name = String::from_utf8_lossy(&header.name).into_owned();
        let entry = |err| in_entry(&name, err);
        let size = u64::from(header.size);
        let path = match ArchivePath::from_bytes(&header.name) {
            Ok(path) => Some(path),
            // The root directory itself ("." or "/") carries nothing kiln keeps.
            Err(crate::tree::PathError::Empty) => None,
            Err(err) => return Err(entry(invalid(err.to_string()))),
        };
        // The type and the 12 permission bits; anything above them is not a mode.
        if header.mode > 0o177777 {
            return Err(entry(invalid(format!(
                "mode {:o} has bits above the file type",
                header.mode
            ))));
        }
        let meta = Meta::new(header.mode, header.uid, header.gid);
        let mut body = Summed {
            inner: &mut *input,
            sum: 0,
        };
        let kind = match header.mode & 0o170000 {
            0o100000 => {
                let content = target.store(&mut body, size, &name)?;
                if let Some(check) = header.check {
                    if body.sum != check {
                        return Err(entry(invalid(format!(
                            "checksum {:08x} of the data does not match the header's {check:08x}",
                            body.sum
                        ))));
                    }
                }
                let key = (header.ino, header.dev.0, header.dev.1);
                // The group's first name counts only while it is still that file: a later
                // entry may have replaced it with a directory or a symlink, which must
                // never receive the group's data.
                let first = path
                    .as_ref()
                    .and_then(|_| links.get(&key))
                    .filter(|first| {
                        matches!(
                            target.tree.get(first).map(|node| &node.kind),
                            Some(Kind::File(_))
                        )
                    })
                    .cloned();
                match (header.nlink > 1, first) {
                    (true, Some(first)) => {
                        if !content.is_empty() {
                            if let Some(node) = target.tree.get_mut(&first) {
                                node.kind = Kind::File(content);
                            }
                        }
                        Some(Kind::HardLink(first))
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
                // The target is held in memory: bound the claim before reading it.
                limits::check("link target", size, limits::PATH_MAX).map_err(entry)?;
                let mut link = Vec::with_capacity(size as usize);
                Read::take(&mut body, size)
                    .read_to_end(&mut link)
                    .map_err(entry)?;
                if (link.len() as u64) < size {
                    return Err(entry(cut_short(size, link.len() as u64)));
                }
                // Targets are text in the tree: a byte string that is not UTF-8 would be
                // changed by converting it, so it is refused.
                let target = String::from_utf8(link).map_err(|_| {
                    entry(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "symlink target is not UTF-8",
                    ))
                })?;
                Some(Kind::Symlink(target))
            }
            other => {
                let kind = match other {
                    0o040000 => Some(Kind::Dir),
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
                        return Err(entry(invalid(format!("unknown file type {other:o}"))));
                    }
                };
                // Nothing of these is kept, but the body must be there.
                drain(&mut Read::take(&mut body, size), size).map_err(entry)?;
                kind
            }
        };
        position += size;
        skip_padding(input, &mut position).map_err(entry)?;
        if let (Some(path), Some(kind)) = (path, kind) {
            target.put(path, kind, meta, Some(u64::from(header.mtime)), &name)?;
        }
    }
    Ok(())
}

/// A body being read, with the running sum of its bytes that the 070702 format's check
/// field holds.
struct Summed<'a> {
    inner: &'a mut dyn BufRead,
    sum: u32,
}

impl Read for Summed<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let got = self.inner.read(buf)?;
        for &byte in &buf[..got] {
            self.sum = self.sum.wrapping_add(u32::from(byte));
        }
        Ok(got)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::read::tests::{compressed, refused, small_tree as readable_tree, written};
    use crate::archive::{Compression, Container, Format};
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

    /// One newc record assembled by hand, so that it can claim what kiln's writer never
    /// would: `size` bytes of data (none follow; the caller appends what it wants) and a
    /// name size of `name_size` (the real one when `None`).
    fn record(
        magic: &[u8; 6],
        name: &str,
        mode: u32,
        size: u32,
        name_size: Option<u32>,
        check: u32,
    ) -> Vec<u8> {
        let name_size = name_size.unwrap_or(name.len() as u32 + 1);
        let fields = [1, mode, 0, 0, 1, 0, size, 0, 0, 0, 0, name_size, check];
        let mut out = magic.to_vec();
        for field in fields {
            out.extend_from_slice(format!("{field:08x}").as_bytes());
        }
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        pad(&mut out);
        out
    }

    fn pad(bytes: &mut Vec<u8>) {
        while bytes.len() % 4 != 0 {
            bytes.push(0);
        }
    }

    fn trailer() -> Vec<u8> {
        record(MAGIC, TRAILER, 0, 0, None, 0)
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        compressed(bytes, crate::archive::Compression::Gzip)
    }

    /// Where the `nth` record (from 0) of a kiln-written archive starts.
    fn record_start(bytes: &[u8], nth: usize) -> usize {
        bytes
            .windows(MAGIC.len())
            .enumerate()
            .filter(|(_, window)| window == MAGIC)
            .map(|(at, _)| at)
            .nth(nth)
            .unwrap()
    }

    /// Issue "Hostile input never hurts": a 1 MB cpio.gz claiming a 1 GiB symlink target
    /// took 3 GB of memory. The claim alone is refused: no target follows it here, so a
    /// reader that tried to read it would report a truncation instead.
    #[test]
    fn a_symlink_target_claim_beyond_path_max_is_refused_unread() {
        let bomb = record(MAGIC, "link", 0o120777, 1 << 30, None, 0);
        refused(
            "bomb.cpio.gz",
            &gzip(&bomb),
            "unable to read archive bomb.cpio.gz: entry \"link\": link target of 1073741824 bytes exceeds the 4096-byte limit",
        );
        // PATH_MAX itself is fine.
        let mut longest = record(MAGIC, "link", 0o120777, 4096, None, 0);
        longest.extend_from_slice(&[b'a'; 4096]);
        longest.extend_from_slice(&trailer());
        let archive =
            crate::archive::read::read_stream(&longest[..], std::path::Path::new("x")).unwrap();
        let link = ArchivePath::new("link").unwrap();
        assert_eq!(
            archive.tree.get(&link).unwrap().kind,
            Kind::Symlink("a".repeat(4096))
        );
    }

    #[test]
    fn a_name_size_claim_beyond_path_max_is_refused_unread() {
        let bomb = record(MAGIC, "x", 0o100644, 0, Some(1 << 30), 0);
        refused(
            "bomb.cpio",
            &bomb,
            "unable to read archive bomb.cpio: entry at byte 0: name of 1073741823 bytes exceeds the 4096-byte limit",
        );
    }

    #[test]
    fn a_truncated_archive_is_refused_naming_where() {
        let good = written(
            &readable_tree(),
            Format::new(Container::Cpio, Compression::None),
        );
        let body = good
            .windows(12)
            .position(|window| window == b"hello, world")
            .unwrap();
        refused(
            "x.cpio",
            &good[..body + 3],
            "unable to read archive x.cpio: entry \"etc/hello\": truncated: expected 13 bytes, got 3",
        );
        let second = record_start(&good, 1);
        refused(
            "x.cpio",
            &good[..second + 50],
            &format!(
                "unable to read archive x.cpio: truncated: the header at byte {second} ends after 50 of 110 bytes"
            ),
        );
        let last = record_start(&good, 3);
        refused(
            "x.cpio",
            &good[..last],
            &format!(
                "unable to read archive x.cpio: truncated: ends at byte {last} without a TRAILER!!! record"
            ),
        );
    }

    #[test]
    fn crc_format_sums_are_verified() {
        // "hello" sums to 532 (0x214).
        let archive = |check: u32| {
            let mut bytes = record(MAGIC_CRC, "f", 0o100644, 5, None, check);
            bytes.extend_from_slice(b"hello");
            pad(&mut bytes);
            bytes.extend_from_slice(&trailer());
            bytes
        };
        let good = crate::archive::read::read_stream(&archive(532)[..], std::path::Path::new("x"))
            .unwrap();
        assert_eq!(good.tree.len(), 1);
        refused(
            "x.cpio",
            &archive(533),
            "unable to read archive x.cpio: entry \"f\": checksum 00000214 of the data does not match the header's 00000215",
        );
    }

    #[test]
    fn modes_beyond_type_and_permissions_are_refused() {
        let mut bytes = record(MAGIC, "f", 0o1100644, 0, None, 0);
        bytes.extend_from_slice(&trailer());
        refused(
            "x.cpio",
            &bytes,
            "unable to read archive x.cpio: entry \"f\": mode 1100644 has bits above the file type",
        );
    }

    /// Each name is at most PATH_MAX, but a deep one of fresh directories adds a node per
    /// component: the tree's total is bounded too.
    #[test]
    fn deep_paths_run_into_the_tree_limit() {
        let mut bytes = Vec::new();
        let deep = |top: usize| format!("{top}/{}f", "a/".repeat(2046));
        for top in 0..10 {
            bytes.extend_from_slice(&record(MAGIC, &deep(top), 0o100644, 0, None, 0));
        }
        bytes.extend_from_slice(&trailer());
        refused(
            "deep.cpio.gz",
            &gzip(&bytes),
            &format!(
                "unable to read archive deep.cpio.gz: entry {:?}... (4095 bytes): the archive's paths and link targets exceed the 16 MiB limit",
                &deep(2)[..200]
            ),
        );
    }

    /// A later entry that replaces a hard-link group's first name with a directory (or a
    /// symlink) is not the group's file any more: the group's data goes to the next name.
    #[test]
    fn a_hard_link_never_fills_a_first_name_that_was_replaced() {
        let entry = |name: &str, ino: u32, mode: u32, nlink: u32, data: &[u8]| {
            let fields = [ino, mode, 0, 0, nlink, 0, data.len() as u32, 0, 0, 0, 0];
            let mut out = MAGIC.to_vec();
            for field in fields {
                out.extend_from_slice(format!("{field:08x}").as_bytes());
            }
            out.extend_from_slice(format!("{:08x}{:08x}", name.len() + 1, 0).as_bytes());
            out.extend_from_slice(name.as_bytes());
            out.push(0);
            pad(&mut out);
            out.extend_from_slice(data);
            pad(&mut out);
            out
        };
        for replacement in [0o040755, 0o120777] {
            let mut bytes = entry("a", 5, 0o100644, 2, b"");
            let body: &[u8] = if replacement == 0o120777 { b"t" } else { b"" };
            bytes.extend_from_slice(&entry("a", 6, replacement, 1, body));
            bytes.extend_from_slice(&entry("b", 5, 0o100644, 2, b"data"));
            bytes.extend_from_slice(&trailer());
            let read =
                crate::archive::read::read_stream(&bytes[..], std::path::Path::new("t.cpio"))
                    .unwrap();
            let a = read.tree.get(&ArchivePath::new("a").unwrap()).unwrap();
            assert!(!matches!(a.kind, Kind::File(_)), "{:?}", a.kind);
            let b = read.tree.get(&ArchivePath::new("b").unwrap()).unwrap();
            match &b.kind {
                Kind::File(content) => assert_eq!(content.read_all().unwrap(), b"data"),
                other => panic!("b is {other:?}"),
            }
        }
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
