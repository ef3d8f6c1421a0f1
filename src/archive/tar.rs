//! tar (ustar, with POSIX pax records where ustar cannot hold a value), through the `tar`
//! crate's header API wrapped here so no caller handles checksums or padding.
//!
//! Owners are numeric; uname/gname are written only when the caller supplies names
//! (taken from the image's own /etc/passwd and /etc/group, never the host's). Hard-linked
//! names: the first in tree order carries the data, the rest are link entries to it.
//! Sockets have no tar representation and are refused rather than dropped.
//!
//! The reader frames the stream itself (see `read_into`) so that it can check every
//! header's checksum and bound every extension header and name before reading it.

use std::io::{self, BufRead, Read, Write};

use super::limits::{self, in_entry, invalid, truncated};
use super::read::{Target, cut_short, drain, read_full};
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

/// tar's block: every header is one, every body is padded to a multiple of it.
const BLOCK: u64 = 512;

/// Reads a whole tar stream into the target, later entries replacing earlier ones.
///
/// The framing is kiln's own, so that every claim is checked before it costs anything:
/// each header's checksum is verified; pax extended headers are bounded by
/// `limits::PAX_HEADER`, GNU long names and links and every name and link target by
/// `limits::PATH_MAX`, before they are read; numeric fields are parsed exactly (octal or
/// base-256) and refused when they do not fit, never wrapped; and the stream must end with
/// an end-of-archive block, so an archive cut anywhere is an error rather than a shorter
/// tree. The `tar` crate's `Header` is used only to decode names.
pub(crate) fn read_into(input: &mut dyn BufRead, target: &mut Target<'_>) -> io::Result<()> {
    let mut position = 0u64;
    let mut pending = Extensions::default();
    loop {
        let at = position;
        let mut block = [0u8; BLOCK as usize];
        match read_full(input, &mut block)? {
            0 => {
                return Err(truncated(format!(
                    "truncated: ends at byte {at} without the end-of-archive blocks"
                )));
            }
            512 => {}
            got => {
                return Err(truncated(format!(
                    "truncated: the header at byte {at} ends after {got} of {BLOCK} bytes"
                )));
            }
        }
        position += BLOCK;
        if block.iter().all(|&byte| byte == 0) {
            if let Some(first) = pending.first_at {
                return Err(invalid(format!(
                    "the extension header at byte {first} describes no entry: the archive ends after it"
                )));
            }
            return Ok(());
        }
        let header = tar::Header::from_byte_slice(&block);
        let header_name = String::from_utf8_lossy(&header.path_bytes()).into_owned();
        let in_header = |err| in_entry(&header_name, err);
        verify_checksum(&block, at).map_err(in_header)?;
        let header_size = number(&block[124..136], "size").map_err(in_header)?;
        if let kind @ (b'x' | b'g' | b'L' | b'K') = block[156] {
            read_extension(kind, header_size, input, &mut position, &mut pending)
                .map_err(in_header)?;
            // A global header describes no entry in particular.
            if kind != b'g' {
                pending.first_at.get_or_insert(at);
            }
            continue;
        }

        let extensions = std::mem::take(&mut pending);
        let raw_name = extensions
            .path
            .or(extensions.long_name)
            .unwrap_or_else(|| header.path_bytes().into_owned());
        let name = String::from_utf8_lossy(&raw_name).into_owned();
        let entry = |err| in_entry(&name, err);
        let link = extensions
            .linkpath
            .or(extensions.long_link)
            .or_else(|| header.link_name_bytes().map(|link| link.into_owned()));
        let size = match extensions.size {
            Some(size) => size,
            None => header_size,
        };
        let uid = match extensions.uid {
            Some(uid) => uid,
            None => number(&block[108..116], "uid").map_err(entry)?,
        };
        let gid = match extensions.gid {
            Some(gid) => gid,
            None => number(&block[116..124], "gid").map_err(entry)?,
        };
        let mtime = match extensions.mtime {
            Some(mtime) => mtime,
            None => time(&block[136..148]).map_err(entry)?,
        };
        let mode = number(&block[100..108], "mode").map_err(entry)?;
        // The 12 permission bits, and the type bits some writers add; nothing above.
        if mode > 0o177777 {
            return Err(entry(invalid(format!(
                "mode {mode:o} has bits above the file type"
            ))));
        }
        let meta = Meta::new(
            mode as u32,
            narrow(uid, u64::from(u32::MAX), "uid").map_err(entry)?,
            narrow(gid, u64::from(u32::MAX), "gid").map_err(entry)?,
        );
        let device = || -> io::Result<(u32, u32)> {
            // Only ustar and GNU headers have device fields.
            if &block[257..262] != b"ustar" {
                return Ok((0, 0));
            }
            let major = number(&block[329..337], "devmajor")?;
            let minor = number(&block[337..345], "devminor")?;
            Ok((
                narrow(major, u64::from(u32::MAX), "device major")?,
                narrow(minor, u64::from(u32::MAX), "device minor")?,
            ))
        };
        let kind = match block[156] {
            b'0' | b'\0' | b'7' => {
                let mut body: &mut dyn BufRead = &mut *input;
                Kind::File(target.store(&mut body, size, &name)?)
            }
            kind => {
                let kind = match kind {
                    b'1' => {
                        let link = link.as_deref().unwrap_or_default();
                        let to = ArchivePath::from_bytes(link).map_err(|err| {
                            entry(invalid(format!(
                                "hard link to {:?}: {err}",
                                String::from_utf8_lossy(link)
                            )))
                        })?;
                        Kind::HardLink(to)
                    }
                    // Not UTF-8 would be changed by converting it: refused.
                    b'2' => {
                        Kind::Symlink(String::from_utf8(link.clone().unwrap_or_default()).map_err(
                            |_| entry(invalid("symlink target is not UTF-8".to_string())),
                        )?)
                    }
                    b'3' => {
                        let (major, minor) = device().map_err(entry)?;
                        Kind::CharDev { major, minor }
                    }
                    b'4' => {
                        let (major, minor) = device().map_err(entry)?;
                        Kind::BlockDev { major, minor }
                    }
                    b'5' => Kind::Dir,
                    b'6' => Kind::Fifo,
                    other => {
                        return Err(entry(invalid(format!(
                            "unsupported tar entry type {:?}",
                            other as char
                        ))));
                    }
                };
                // Nothing of these is kept, but the body must be there.
                drain(&mut Read::take(&mut *input, size), size).map_err(entry)?;
                kind
            }
        };
        // Old writers put the file-type bits in the mode field too; they must agree.
        let type_bits = mode & 0o170000;
        if type_bits != 0 && type_bits != u64::from(kind.type_bits()) {
            return Err(entry(invalid(format!(
                "mode {mode:o} names another file type than the entry's"
            ))));
        }
        position += size;
        skip_padding(input, &mut position).map_err(entry)?;
        let path = match ArchivePath::from_bytes(&raw_name) {
            Ok(path) => path,
            // The root directory itself ("./") carries nothing kiln keeps.
            Err(crate::tree::PathError::Empty) => continue,
            Err(err) => return Err(entry(invalid(err.to_string()))),
        };
        target.put(path, kind, meta, mtime, &name)?;
    }
}

/// Reads the body of an extension header of type `kind` (pax `x` or `g`, GNU `L` or `K`)
/// into `pending`, refusing a claimed size beyond its limit before reading anything.
fn read_extension(
    kind: u8,
    size: u64,
    input: &mut dyn BufRead,
    position: &mut u64,
    pending: &mut Extensions,
) -> io::Result<()> {
    if let b'x' | b'g' = kind {
        limits::check("pax header", size, limits::PAX_HEADER)?;
        let records = read_body(input, position, size)?;
        // A global header's records would apply to every later entry; kiln keeps only
        // what each entry's own headers say, as it always has.
        if kind == b'x' {
            if pending.pax {
                return Err(invalid("a second pax header for one entry"));
            }
            pending.pax = true;
            parse_pax(&records, pending)?;
        }
        return Ok(());
    }
    let what = if kind == b'L' {
        "GNU long name"
    } else {
        "GNU long link"
    };
    // The value is NUL-terminated.
    limits::check(what, size.saturating_sub(1), limits::PATH_MAX)?;
    let mut value = read_body(input, position, size)?;
    if let Some(nul) = value.iter().position(|&byte| byte == 0) {
        value.truncate(nul);
    }
    let slot = if kind == b'L' {
        &mut pending.long_name
    } else {
        &mut pending.long_link
    };
    if slot.replace(value).is_some() {
        return Err(invalid(format!("a second {what} for one entry")));
    }
    Ok(())
}

/// What pax and GNU extension headers said about the entry that follows them.
#[derive(Default)]
struct Extensions {
    /// A pax header was seen; a second one for the same entry is an error.
    pax: bool,
    path: Option<Vec<u8>>,
    linkpath: Option<Vec<u8>>,
    size: Option<u64>,
    uid: Option<u64>,
    gid: Option<u64>,
    /// `Some(None)` for a time before 1970, which a node cannot hold.
    mtime: Option<Option<u64>>,
    long_name: Option<Vec<u8>>,
    long_link: Option<Vec<u8>>,
    /// Where the first of these headers was, for an archive that ends after it.
    first_at: Option<u64>,
}

/// pax records, `LEN KEY=VALUE\n` each, LEN counting the whole record. Values may hold
/// any byte, newlines included, so records are cut by their lengths.
fn parse_pax(mut records: &[u8], extensions: &mut Extensions) -> io::Result<()> {
    while !records.is_empty() {
        let malformed = || invalid("malformed pax record");
        let space = records
            .iter()
            .take(20)
            .position(|&byte| byte == b' ')
            .ok_or_else(malformed)?;
        let len = decimal(&records[..space]).ok_or_else(malformed)?;
        let len = usize::try_from(len).map_err(|_| malformed())?;
        if len <= space + 1 || len > records.len() || records[len - 1] != b'\n' {
            return Err(malformed());
        }
        let record = &records[space + 1..len - 1];
        let equals = record
            .iter()
            .position(|&byte| byte == b'=')
            .ok_or_else(malformed)?;
        let (key, value) = (&record[..equals], &record[equals + 1..]);
        let number = |what: &str| {
            decimal(value).ok_or_else(|| {
                invalid(format!(
                    "pax {what} {:?} is not a decimal number",
                    String::from_utf8_lossy(value)
                ))
            })
        };
        // An empty value unsets the key.
        match key {
            b"path" | b"linkpath" => {
                let what = if key == b"path" {
                    "pax path"
                } else {
                    "pax linkpath"
                };
                limits::check(what, value.len() as u64, limits::PATH_MAX)?;
                let value = (!value.is_empty()).then(|| value.to_vec());
                if key == b"path" {
                    extensions.path = value;
                } else {
                    extensions.linkpath = value;
                }
            }
            b"size" => extensions.size = Some(number("size")?),
            b"uid" => extensions.uid = Some(number("uid")?),
            b"gid" => extensions.gid = Some(number("gid")?),
            b"mtime" => extensions.mtime = Some(pax_time(value)?),
            key if key.starts_with(b"GNU.sparse.") => {
                return Err(invalid("GNU sparse files are not supported"));
            }
            _ => {}
        }
        records = &records[len..];
    }
    Ok(())
}

/// A pax time, `SECONDS[.FRACTION]`, possibly negative (then `None`: before 1970).
fn pax_time(value: &[u8]) -> io::Result<Option<u64>> {
    let bad = || {
        invalid(format!(
            "pax mtime {:?} is not a number of seconds",
            String::from_utf8_lossy(value)
        ))
    };
    let (negative, digits) = match value.strip_prefix(b"-") {
        Some(rest) => (true, rest),
        None => (false, value),
    };
    let (seconds, fraction) = match digits.iter().position(|&byte| byte == b'.') {
        Some(dot) => (&digits[..dot], &digits[dot + 1..]),
        None => (digits, &b""[..]),
    };
    if !fraction.iter().all(u8::is_ascii_digit) {
        return Err(bad());
    }
    let seconds = decimal(seconds).ok_or_else(bad)?;
    Ok((!negative).then_some(seconds))
}

/// A non-empty run of ASCII digits that fits a u64.
fn decimal(text: &[u8]) -> Option<u64> {
    if text.is_empty() || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(text).ok()?.parse().ok()
}

/// A numeric header field: octal digits (with the NULs and spaces writers pad them
/// with), or GNU's base-256 form when the top bit of the first byte is set. Negative and
/// overflowing values are errors.
fn number(field: &[u8], what: &str) -> io::Result<u64> {
    let bad = || {
        invalid(format!(
            "{what} field {:?} is not a number",
            String::from_utf8_lossy(field)
        ))
    };
    if field[0] & 0x80 != 0 {
        // Base-256, two's complement: 0x40 in the first byte is the sign.
        if field[0] & 0x40 != 0 {
            return Err(invalid(format!("{what} field holds a negative number")));
        }
        let mut value = u64::from(field[0] & 0x3f);
        for &byte in &field[1..] {
            value = value
                .checked_mul(256)
                .and_then(|value| value.checked_add(u64::from(byte)))
                .ok_or_else(|| invalid(format!("{what} field does not fit 64 bits")))?;
        }
        return Ok(value);
    }
    let end = field
        .iter()
        .position(|&byte| byte == 0)
        .unwrap_or(field.len());
    let text = field[..end].trim_ascii();
    if text.is_empty() || !text.iter().all(|byte| (b'0'..=b'7').contains(byte)) {
        return Err(bad());
    }
    std::str::from_utf8(text)
        .ok()
        .and_then(|text| u64::from_str_radix(text, 8).ok())
        .ok_or_else(bad)
}

/// The mtime field, which GNU tar writes as a negative base-256 number for times before
/// 1970: those are `None`, a time a node cannot hold.
fn time(field: &[u8]) -> io::Result<Option<u64>> {
    if field[0] & 0xc0 == 0xc0 {
        return Ok(None);
    }
    number(field, "mtime").map(Some)
}

/// `value` as a u32 when it is at most `max`, else an error naming it: never wrapped.
fn narrow(value: u64, max: u64, what: &str) -> io::Result<u32> {
    match u32::try_from(value) {
        Ok(narrow) if value <= max => Ok(narrow),
        _ => Err(invalid(format!(
            "{what} {value} is out of range (at most {max})"
        ))),
    }
}

/// Checks the header's checksum: the sum of its bytes with the checksum field taken as
/// spaces, as unsigned bytes (POSIX) or, as some old writers did, signed ones.
fn verify_checksum(block: &[u8; BLOCK as usize], at: u64) -> io::Result<()> {
    let field = &block[148..156];
    let stored = number(field, "checksum")?;
    let (mut unsigned, mut signed) = (0u64, 0i64);
    for (index, &byte) in block.iter().enumerate() {
        let byte = if (148..156).contains(&index) {
            b' '
        } else {
            byte
        };
        unsigned += u64::from(byte);
        signed += i64::from(byte as i8);
    }
    if stored == unsigned || i64::try_from(stored) == Ok(signed) {
        return Ok(());
    }
    Err(invalid(format!(
        "the header at byte {at} is corrupt: its checksum field says {stored:o}, its bytes sum to {unsigned:o}"
    )))
}

/// Reads an extension header's body of `len` bytes (already bounded by the caller) and
/// its padding.
fn read_body(input: &mut dyn BufRead, position: &mut u64, len: u64) -> io::Result<Vec<u8>> {
    let mut body = vec![0u8; usize::try_from(len).map_err(|_| invalid("size out of range"))?];
    let got = read_full(input, &mut body)?;
    if got < body.len() {
        return Err(cut_short(len, got as u64));
    }
    *position += len;
    skip_padding(input, position)?;
    Ok(body)
}

/// Skips the padding that ends a body on a block boundary.
fn skip_padding(input: &mut dyn BufRead, position: &mut u64) -> io::Result<()> {
    let pad = (BLOCK - *position % BLOCK) % BLOCK;
    let mut padding = [0u8; BLOCK as usize];
    let got = read_full(input, &mut padding[..pad as usize])?;
    if (got as u64) < pad {
        return Err(truncated(
            "truncated: the padding after its data is cut short",
        ));
    }
    *position += pad;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::read::tests::{compressed, refused, small_tree, written};
    use crate::archive::read::{Archive, read_stream};
    use crate::archive::{Compression, Container, Format};

    /// A ustar header for `name`, of `kind`, claiming `size` bytes of data (the caller
    /// appends whatever it wants to follow).
    fn header(name: &str, kind: tar::EntryType, size: u64) -> tar::Header {
        let mut header = tar::Header::new_ustar();
        assert!(set_ustar_name(&mut header, name.as_bytes()));
        header.set_entry_type(kind);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_size(size);
        header.set_cksum();
        header
    }

    /// A pax header for the next entry, holding `pairs`.
    fn pax(pairs: &[(&str, Vec<u8>)]) -> Vec<u8> {
        let records = pax_records(pairs);
        let mut out = header(
            "PaxHeaders/f",
            tar::EntryType::XHeader,
            records.len() as u64,
        )
        .as_bytes()
        .to_vec();
        out.extend_from_slice(&records);
        out
    }

    /// `pieces` in order, each padded to a block, then the end-of-archive blocks.
    fn archive(pieces: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for piece in pieces {
            out.extend_from_slice(piece);
            out.resize(out.len().next_multiple_of(BLOCK as usize), 0);
        }
        out.extend_from_slice(&[0; 2 * BLOCK as usize]);
        out
    }

    fn read(bytes: &[u8]) -> Archive {
        read_stream(bytes, std::path::Path::new("x.tar")).unwrap()
    }

    fn node(archive: &Archive, path: &str) -> Node {
        archive
            .tree
            .get(&ArchivePath::new(path).unwrap())
            .unwrap()
            .clone()
    }

    /// Issue "Hostile input never hurts": 1 GiB pax headers took 1.2 GB of memory, and
    /// GNU long names more. The claims alone are refused: nothing follows them here.
    #[test]
    fn extension_header_claims_beyond_their_limits_are_refused_unread() {
        let gzip = |bytes: Vec<u8>| compressed(&bytes, Compression::Gzip);
        let bomb = header("PaxHeaders/f", tar::EntryType::XHeader, 1 << 30);
        refused(
            "bomb.tar.gz",
            &gzip(bomb.as_bytes().to_vec()),
            "unable to read archive bomb.tar.gz: entry \"PaxHeaders/f\": pax header of 1073741824 bytes exceeds the 1 MiB limit",
        );
        for (kind, what) in [
            (tar::EntryType::GNULongName, "GNU long name"),
            (tar::EntryType::GNULongLink, "GNU long link"),
        ] {
            let bomb = header("././@LongLink", kind, 1 << 30);
            refused(
                "bomb.tar.gz",
                &gzip(bomb.as_bytes().to_vec()),
                &format!(
                    "unable to read archive bomb.tar.gz: entry \"././@LongLink\": {what} of 1073741823 bytes exceeds the 4096-byte limit"
                ),
            );
        }
        let long_path = pax(&[("path", vec![b'p'; 5000])]);
        let entry = header("f", tar::EntryType::Regular, 0);
        refused(
            "x.tar",
            &archive(&[&long_path, entry.as_bytes()]),
            "unable to read archive x.tar: entry \"PaxHeaders/f\": pax path of 5000 bytes exceeds the 4096-byte limit",
        );
    }

    #[test]
    fn pax_records_are_cut_by_their_lengths_and_override_the_header() {
        let name = "dir/new\nline";
        let records = pax(&[
            ("path", name.into()),
            ("size", b"5".to_vec()),
            ("uid", b"4294967295".to_vec()),
        ]);
        let entry = header("f", tar::EntryType::Regular, 0);
        let archive = read(&archive(&[&records, entry.as_bytes(), b"12345"]));
        let node = node(&archive, name);
        assert_eq!(node.meta.uid, u32::MAX);
        let Kind::File(content) = node.kind else {
            panic!("{name} is not a file");
        };
        assert_eq!(content.read_all().unwrap(), b"12345");
    }

    /// Issue "Hostile input never hurts": a pax uid of 2^32 became uid 0.
    #[test]
    fn ids_and_device_numbers_that_do_not_fit_are_refused() {
        for key in ["uid", "gid"] {
            let records = pax(&[(key, b"4294967296".to_vec())]);
            let entry = header("f", tar::EntryType::Regular, 0);
            refused(
                "x.tar",
                &archive(&[&records, entry.as_bytes()]),
                &format!(
                    "unable to read archive x.tar: entry \"f\": {key} 4294967296 is out of range (at most 4294967295)"
                ),
            );
        }
        // In the header itself, GNU's base-256 form holds any 63-bit value.
        let mut entry = header("f", tar::EntryType::Regular, 0);
        entry.set_uid(1 << 32);
        entry.set_cksum();
        refused(
            "x.tar",
            &archive(&[entry.as_bytes()]),
            "unable to read archive x.tar: entry \"f\": uid 4294967296 is out of range (at most 4294967295)",
        );
        // tar-rs writes base-256 only into uid, gid, size and time fields: borrow a uid
        // field's encoding for the device fields.
        let device = |major: u64| {
            let mut encoded = tar::Header::new_ustar();
            encoded.set_uid(major);
            let mut entry = header("c", tar::EntryType::Char, 0);
            let ustar = entry.as_ustar_mut().unwrap();
            ustar.dev_major = encoded.as_old().uid;
            ustar.dev_minor = *b"0000001\0";
            entry.set_cksum();
            archive(&[entry.as_bytes()])
        };
        assert_eq!(
            node(&read(&device(3_000_000)), "c").kind,
            Kind::CharDev {
                major: 3_000_000,
                minor: 1
            }
        );
        refused(
            "x.tar",
            &device(1 << 32),
            "unable to read archive x.tar: entry \"c\": device major 4294967296 is out of range (at most 4294967295)",
        );
    }

    #[test]
    fn modes_beyond_type_and_permissions_are_refused() {
        let with_mode = |mode: u32| {
            let mut entry = header("f", tar::EntryType::Regular, 0);
            entry.set_mode(mode);
            entry.set_cksum();
            archive(&[entry.as_bytes()])
        };
        assert_eq!(node(&read(&with_mode(0o100644)), "f").meta.mode, 0o644);
        refused(
            "x.tar",
            &with_mode(0o1000644),
            "unable to read archive x.tar: entry \"f\": mode 1000644 has bits above the file type",
        );
        refused(
            "x.tar",
            &with_mode(0o40755),
            "unable to read archive x.tar: entry \"f\": mode 40755 names another file type than the entry's",
        );
    }

    #[test]
    fn a_bad_header_checksum_is_refused() {
        let good = written(
            &small_tree(),
            Format::new(Container::Tar, Compression::None),
        );
        // The second header is etc/hello's; its checksum field still holds the old sum.
        let stored = tar::Header::from_byte_slice(&good[512..1024])
            .cksum()
            .unwrap();
        let mut bad = good.clone();
        bad[512] ^= 0x03;
        refused(
            "x.tar",
            &bad,
            &format!(
                "unable to read archive x.tar: entry \"ftc/hello\": the header at byte 512 is corrupt: its checksum field says {stored:o}, its bytes sum to {:o}",
                stored + 1
            ),
        );
    }

    /// Blocks: etc/ at 0, etc/hello at 512 with its 13 bytes at 1024, sh at 1536, then the
    /// end-of-archive blocks at 2048.
    #[test]
    fn a_truncated_archive_is_refused_never_read_short() {
        let good = written(
            &small_tree(),
            Format::new(Container::Tar, Compression::None),
        );
        for (cut, message) in [
            (
                1029,
                "entry \"etc/hello\": truncated: expected 13 bytes, got 5",
            ),
            (
                1124,
                "entry \"etc/hello\": truncated: the padding after its data is cut short",
            ),
            (
                1636,
                "truncated: the header at byte 1536 ends after 100 of 512 bytes",
            ),
            (
                2048,
                "truncated: ends at byte 2048 without the end-of-archive blocks",
            ),
        ] {
            refused(
                "x.tar",
                &good[..cut],
                &format!("unable to read archive x.tar: {message}"),
            );
        }
        let orphan = pax(&[("uid", b"1".to_vec())]);
        refused(
            "x.tar",
            &archive(&[&orphan]),
            "unable to read archive x.tar: the extension header at byte 0 describes no entry: the archive ends after it",
        );
    }

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
