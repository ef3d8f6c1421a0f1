//! tar (ustar, with POSIX pax records where ustar cannot hold a value), through the `tar`
//! crate's header API wrapped here so no caller handles checksums or padding.
//!
//! Owners are numeric; uname/gname are written only when the caller supplies names
//! (taken from the image's own /etc/passwd and /etc/group, never the host's). Hard-linked
//! names: the first in tree order carries the data, the rest are link entries to it.
//! Sockets have no tar representation and are refused rather than dropped.

use std::io::{self, BufRead, Read, Write};

use super::read::Target;
use super::{ArchiveError, Options};
use crate::tree::content::Content;
use crate::tree::{ArchivePath, Kind, Meta, Node, Tree};

const USTAR_NAME: usize = 100;
const USTAR_PREFIX: usize = 155;
const USTAR_MAX_ID: u64 = 0o7777777;
const USTAR_MAX_TIME: u64 = 0o77777777777;

/// Writes `tree` as a tar archive with the end-of-archive blocks and hands back the writer.
pub fn write<W: Write>(tree: &Tree, out: W, options: &Options) -> Result<W, ArchiveError> {
    let context = "unable to write tar archive";
    let mut builder = tar::Builder::new(out);
    let groups = tree.link_groups();
    for (path, node) in tree.iter() {
        let mut pax: Vec<(&str, Vec<u8>)> = Vec::new();
        let mut header = tar::Header::new_ustar();
        let mut name = path.as_str().to_string();
        if node.kind == Kind::Dir {
            name.push('/');
        }
        if !set_ustar_name(&mut header, name.as_bytes()) {
            pax.push(("path", name.clone().into_bytes()));
            let short = format!("PaxHeaders/{}", truncate_utf8(path.file_name(), 80));
            set_ustar_name(&mut header, short.as_bytes());
        }

        // The name that carries a hard-link group's data, if `path` belongs to a group.
        let group_first = match &node.kind {
            Kind::File(_) => groups.get(path).and_then(|names| names.first()),
            Kind::HardLink(target) => groups.get(target).and_then(|names| names.first()),
            _ => None,
        };
        let mut data: Option<&Content> = None;
        let mut link: Option<&str> = None;
        let entry_type = match &node.kind {
            Kind::Dir => tar::EntryType::Directory,
            Kind::File(_) | Kind::HardLink(_) if group_first.is_some_and(|first| first != path) => {
                link = group_first.map(|first| first.as_str());
                tar::EntryType::Link
            }
            Kind::File(content) => {
                data = Some(content);
                tar::EntryType::Regular
            }
            Kind::HardLink(target) => match tree.get(target) {
                Some(Node {
                    kind: Kind::File(content),
                    ..
                }) => {
                    data = Some(content);
                    tar::EntryType::Regular
                }
                _ => unreachable!("Tree::validate checked hard-link targets"),
            },
            Kind::Symlink(target) => {
                link = Some(target);
                tar::EntryType::Symlink
            }
            Kind::CharDev { .. } => tar::EntryType::Char,
            Kind::BlockDev { .. } => tar::EntryType::Block,
            Kind::Fifo => tar::EntryType::Fifo,
            Kind::Socket => {
                return Err(ArchiveError::Unrepresentable {
                    path: path.clone(),
                    what: "a socket".to_string(),
                    format: "tar",
                    note: " (note: tar has no socket type; drop the entry or use a cpio format)",
                });
            }
        };
        header.set_entry_type(entry_type);
        if let Some(link) = link {
            if link.len() > USTAR_NAME || link.contains('\0') {
                pax.push(("linkpath", link.as_bytes().to_vec()));
            } else {
                let raw = header.as_ustar_mut().expect("ustar header");
                raw.linkname[..link.len()].copy_from_slice(link.as_bytes());
            }
        }
        if let Kind::CharDev { major, minor } | Kind::BlockDev { major, minor } = node.kind {
            for (value, what) in [(major, "major"), (minor, "minor")] {
                if u64::from(value) > USTAR_MAX_ID {
                    return Err(ArchiveError::Unrepresentable {
                        path: path.clone(),
                        what: format!("device {what} number {value}"),
                        format: "tar",
                        note: "",
                    });
                }
            }
            header
                .set_device_major(major)
                .and_then(|()| header.set_device_minor(minor))
                .map_err(ArchiveError::io(context))?;
        }
        header.set_mode(u32::from(node.meta.mode));
        set_number(
            &mut header,
            &mut pax,
            "uid",
            node.meta.uid.into(),
            USTAR_MAX_ID,
        );
        set_number(
            &mut header,
            &mut pax,
            "gid",
            node.meta.gid.into(),
            USTAR_MAX_ID,
        );
        set_number(
            &mut header,
            &mut pax,
            "mtime",
            options.mtime,
            USTAR_MAX_TIME,
        );
        let size = data.map_or(0, Content::len);
        set_number(&mut header, &mut pax, "size", size, USTAR_MAX_TIME);
        for (key, names, id) in [
            ("uname", &options.user_names, node.meta.uid),
            ("gname", &options.group_names, node.meta.gid),
        ] {
            if let Some(owner) = names.get(&id) {
                let raw = header.as_ustar_mut().expect("ustar header");
                let field = if key == "uname" {
                    &mut raw.uname
                } else {
                    &mut raw.gname
                };
                if owner.len() < field.len() {
                    field[..owner.len()].copy_from_slice(owner.as_bytes());
                } else {
                    pax.push((key, owner.as_bytes().to_vec()));
                }
            }
        }
        header.set_cksum();

        if !pax.is_empty() {
            let records = pax_records(&pax);
            let mut pax_header = tar::Header::new_ustar();
            let pax_name = format!("PaxHeaders/{}", truncate_utf8(path.file_name(), 80));
            set_ustar_name(&mut pax_header, pax_name.as_bytes());
            pax_header.set_entry_type(tar::EntryType::XHeader);
            pax_header.set_mode(0o644);
            pax_header.set_mtime(options.mtime.min(USTAR_MAX_TIME));
            pax_header.set_size(records.len() as u64);
            pax_header.set_cksum();
            builder
                .append(&pax_header, &records[..])
                .map_err(ArchiveError::io(context))?;
        }
        match data {
            Some(content) => {
                let reader = content.open().map_err(ArchiveError::io(format!(
                    "unable to read {} for {path}",
                    content.describe()
                )))?;
                let exact = ExactReader {
                    inner: reader,
                    remaining: size,
                };
                builder.append(&header, exact).map_err(|err| {
                    match err.get_ref().and_then(|e| e.downcast_ref::<ShortContent>()) {
                        Some(short) => ArchiveError::ContentChanged {
                            path: path.clone(),
                            source_name: content.describe(),
                            expected: size,
                            got: short.0,
                        },
                        None => ArchiveError::Io {
                            context: context.to_string(),
                            source: err,
                        },
                    }
                })?;
            }
            None => builder
                .append(&header, io::empty())
                .map_err(ArchiveError::io(context))?,
        }
    }
    builder.into_inner().map_err(ArchiveError::io(context))
}

/// Puts `name` into ustar's name/prefix fields, splitting at a `/`; false if it can't.
fn set_ustar_name(header: &mut tar::Header, name: &[u8]) -> bool {
    let raw = header.as_ustar_mut().expect("ustar header");
    raw.name = [0; USTAR_NAME];
    raw.prefix = [0; USTAR_PREFIX];
    if name.len() <= USTAR_NAME {
        raw.name[..name.len()].copy_from_slice(name);
        return true;
    }
    // Split at the last '/' that leaves both halves short enough (the slash is dropped).
    let split = (0..name.len()).rev().find(|&at| {
        name[at] == b'/' && at <= USTAR_PREFIX && name.len() - at - 1 <= USTAR_NAME && at > 0
    });
    match split {
        Some(at) => {
            raw.prefix[..at].copy_from_slice(&name[..at]);
            raw.name[..name.len() - at - 1].copy_from_slice(&name[at + 1..]);
            true
        }
        None => false,
    }
}

fn set_number(
    header: &mut tar::Header,
    pax: &mut Vec<(&'static str, Vec<u8>)>,
    key: &'static str,
    value: u64,
    max: u64,
) {
    let stored = if value > max {
        pax.push((key, value.to_string().into_bytes()));
        0
    } else {
        value
    };
    match key {
        "uid" => header.set_uid(stored),
        "gid" => header.set_gid(stored),
        "mtime" => header.set_mtime(stored),
        _ => header.set_size(stored),
    }
}

/// pax records: "LEN KEY=VALUE\n" where LEN counts the whole record including itself.
fn pax_records(pairs: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (key, value) in pairs {
        let body = key.len() + value.len() + 3; // ' ', '=', '\n'
        let mut len = body + 1;
        while len != body + len.to_string().len() {
            len = body + len.to_string().len();
        }
        out.extend_from_slice(format!("{len} {key}=").as_bytes());
        out.extend_from_slice(value);
        out.push(b'\n');
    }
    out
}

fn truncate_utf8(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[derive(Debug)]
struct ShortContent(u64);

impl std::fmt::Display for ShortContent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "content length changed after {} bytes", self.0)
    }
}

impl std::error::Error for ShortContent {}

/// Yields exactly `remaining` bytes or fails: tar-rs pads to whatever it copied, so a
/// source that shrank or grew would otherwise make a corrupt archive.
struct ExactReader<R: Read> {
    inner: R,
    remaining: u64,
}

impl<R: Read> Read for ExactReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 {
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(io::Error::other(ShortContent(u64::MAX))),
            };
        }
        let want = buf.len().min(self.remaining as usize);
        let got = self.inner.read(&mut buf[..want])?;
        if got == 0 {
            return Err(io::Error::other(ShortContent(0)));
        }
        self.remaining -= got as u64;
        Ok(got)
    }
}

/// Reads a whole tar stream into the target, later entries replacing earlier ones.
pub(crate) fn read_into(input: &mut dyn BufRead, target: &mut Target<'_>) -> io::Result<()> {
    let mut archive = tar::Archive::new(input);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let raw_name = entry.path_bytes().into_owned();
        let name = String::from_utf8_lossy(&raw_name).into_owned();
        let invalid = |what: String| io::Error::new(io::ErrorKind::InvalidData, what);
        let path = match ArchivePath::from_bytes(&raw_name) {
            Ok(path) => path,
            Err(crate::tree::PathError::Empty) => continue,
            Err(err) => return Err(invalid(format!("member {name:?}: {err}"))),
        };
        let header = entry.header().clone();
        let meta = Meta::new(header.mode()?, header.uid()? as u32, header.gid()? as u32);
        let link = entry
            .link_name_bytes()
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned());
        let device = || -> io::Result<(u32, u32)> {
            Ok((
                header.device_major()?.unwrap_or(0),
                header.device_minor()?.unwrap_or(0),
            ))
        };
        let kind = match header.entry_type() {
            tar::EntryType::Directory => Kind::Dir,
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let size = entry.size();
                Kind::File(target.store(&mut entry, size, &name)?)
            }
            tar::EntryType::Symlink => Kind::Symlink(link.unwrap_or_default()),
            tar::EntryType::Link => {
                let target = ArchivePath::new(&link.unwrap_or_default())
                    .map_err(|err| invalid(format!("hard link {name:?}: {err}")))?;
                Kind::HardLink(target)
            }
            tar::EntryType::Char => {
                let (major, minor) = device()?;
                Kind::CharDev { major, minor }
            }
            tar::EntryType::Block => {
                let (major, minor) = device()?;
                Kind::BlockDev { major, minor }
            }
            tar::EntryType::Fifo => Kind::Fifo,
            tar::EntryType::XGlobalHeader => continue,
            other => {
                return Err(invalid(format!(
                    "member {name:?}: unsupported tar entry type {:?}",
                    other.as_byte() as char
                )));
            }
        };
        target.put(path, kind, meta, header.mtime().ok(), &name)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_lengths_count_themselves() {
        let records = pax_records(&[("path", b"x".to_vec())]);
        assert_eq!(records, b"9 path=x\n");
        let long = vec![b'a'; 95];
        let records = pax_records(&[("path", long)]);
        assert_eq!(records.len(), 105);
        assert!(records.starts_with(b"105 path="));
    }

    #[test]
    fn ustar_names_split_at_a_slash() {
        let mut header = tar::Header::new_ustar();
        let long = format!("{}/{}", "d".repeat(120), "f".repeat(90));
        assert!(set_ustar_name(&mut header, long.as_bytes()));
        assert_eq!(header.path_bytes().as_ref(), long.as_bytes());
        let too_long = "x".repeat(101);
        assert!(!set_ustar_name(&mut header, too_long.as_bytes()));
    }
}
