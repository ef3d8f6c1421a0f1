//! Text renderings of a `Tree`: `kiln ls` (like `tar -tv`), `kiln ls --list` (gen_init_cpio
//! list form, which `kiln pack` reads back), the golden manifest, and `kiln diff`; and
//! reading what those commands are given (any archive, or a .deb's data).
//!
//! Names and symlink targets come from archives anyone may have written, so none is
//! printed raw: the list, the manifest and the diff quote them as `kiln pack` reads list
//! words back (`source::list::quote`), and the `tar -tv` form escapes them
//! (`source::list::escape`). Either way every entry is one line without control characters,
//! and no name can read back as another word or line of a list.

use std::fmt::Write as _;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use anyhow::{Context, Result};

use crate::archive::read::Archive;
use crate::archive::{Compression, Container, Format};
use crate::error::Verdict;
use crate::source::deb;
use crate::source::list::{escape, escape_bytes, quote, quote_bytes};

use crate::tree::content::Content;
use crate::tree::{ArchivePath, Kind, Node, Tree, mode_string};

/// Reads an archive (cpio or tar, any compression) or a .deb's files. A file that is
/// missing or not an archive is bad input (100); failing to read one is the system's.
pub fn read(path: &Path) -> Result<Archive> {
    if deb::is_deb(path) {
        let package = deb::read(path)?;
        let field = |name: &str| escape(package.control.get(name).map_or("?", String::as_str));
        eprintln!(
            "kiln: {}: package {} {} ({}), data.tar:",
            escape_bytes(package.path.as_os_str().as_bytes()),
            escape(package.name()),
            field("Version"),
            field("Architecture"),
        );
        return Ok(Archive {
            format: Format::new(Container::Tar, Compression::None),
            tree: package.data,
        });
    }
    crate::archive::read_path(path)
}

/// `kiln ls`: the `tar -tv` form, the gen_init_cpio list (`--list`) or the manifest.
pub fn render(tree: &Tree, list: bool, manifest: bool, path: &Path) -> Result<String> {
    Ok(if list {
        gen_init_cpio(tree)
    } else if manifest {
        self::manifest(tree).with_context(|| format!("unable to read {}", path.display()))?
    } else {
        ls(tree)
    })
}

/// `kiln diff A B`: the differences, and whether there were any.
pub fn diff_files(a: &Path, b: &Path) -> Result<(Verdict, String)> {
    let (old, new) = (read(a)?, read(b)?);
    let lines = diff(&old.tree, &new.tree).context("unable to compare contents")?;
    let mut text = String::new();
    if old.format != new.format {
        text.push_str(&format!("~ format: {} -> {}\n", old.format, new.format));
    }
    for line in &lines {
        text.push_str(line);
        text.push('\n');
    }
    let verdict = if text.is_empty() {
        Verdict::Passed
    } else {
        Verdict::Failed
    };
    Ok((verdict, text))
}

/// One `tar -tv` style line per entry, in tree order, names and targets escaped.
pub fn ls(tree: &Tree) -> String {
    let mut out = String::new();
    for (path, node) in tree.iter() {
        let size = match &node.kind {
            Kind::CharDev { major, minor } | Kind::BlockDev { major, minor } => {
                format!("{major},{minor}")
            }
            Kind::File(content) => content.len().to_string(),
            _ => "0".to_string(),
        };
        let suffix = match &node.kind {
            Kind::Dir => "/".to_string(),
            Kind::Symlink(target) => format!(" -> {}", escape(target)),
            Kind::HardLink(target) => format!(" link to {}", escape(target.as_str())),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "{} {}/{} {:>12} {} {}{}",
            mode_string(&node.kind, node.meta.mode),
            node.meta.uid,
            node.meta.gid,
            size,
            format_time(node.mtime.unwrap_or(0)),
            escape(path.as_str()),
            suffix
        );
    }
    out
}

/// The gen_init_cpio list form: `kiln pack` of this text rebuilds the same tree.
pub fn gen_init_cpio(tree: &Tree) -> String {
    let groups = tree.link_groups();
    let mut out = String::new();
    for (path, node) in tree.iter() {
        let name = quote_path(path);
        let meta = format!("{:04o} {} {}", node.meta.mode, node.meta.uid, node.meta.gid);
        let _ = match &node.kind {
            Kind::Dir => writeln!(out, "dir {name} {meta}"),
            Kind::File(content) => {
                let mut links = String::new();
                for link in groups.get(path).into_iter().flatten().skip(1) {
                    links.push(' ');
                    links.push_str(&quote_path(link));
                }
                let location = location(path, content);
                writeln!(out, "file {name} {location} {meta}{links}")
            }
            // Written as extra names on the file's own line.
            Kind::HardLink(_) => Ok(()),
            Kind::Symlink(target) => writeln!(out, "slink {name} {} {meta}", quote(target)),
            Kind::CharDev { major, minor } => writeln!(out, "nod {name} {meta} c {major} {minor}"),
            Kind::BlockDev { major, minor } => writeln!(out, "nod {name} {meta} b {major} {minor}"),
            Kind::Fifo => writeln!(out, "pipe {name} {meta}"),
            Kind::Socket => writeln!(out, "sock {name} {meta}"),
        };
    }
    out
}

/// Where a `file` line's bytes come from, quoted as one list word: for an archive's member,
/// the path through the archive file, byte for byte (the archive's name need not be UTF-8).
fn location(path: &ArchivePath, content: &Content) -> String {
    match content {
        Content::Member { spool, .. } => {
            let mut location = spool.origin.as_os_str().as_bytes().to_vec();
            location.push(b'/');
            location.extend_from_slice(path.as_str().as_bytes());
            quote_bytes(&location).into_owned()
        }
        Content::Host { path, .. } => quote_bytes(path.as_os_str().as_bytes()).into_owned(),
        Content::Inline(_) => quote(&content.describe()).into_owned(),
    }
}

/// A path as a list word: `/name`, quoted when it must be.
fn quote_path(path: &ArchivePath) -> String {
    quote(&path.to_string()).into_owned()
}

/// The golden manifest: kind, path, mode, uid, gid, then the target, the device numbers,
/// or the size and CRC-32 of the content. Paths and targets are quoted as in a list.
pub fn manifest(tree: &Tree) -> io::Result<String> {
    let mut out = String::new();
    for (path, node) in tree.iter() {
        let name = quote_path(path);
        let meta = format!("{:04o} {} {}", node.meta.mode, node.meta.uid, node.meta.gid);
        let _ = match &node.kind {
            Kind::Dir => writeln!(out, "dir {name} {meta}"),
            Kind::File(content) => {
                let (len, crc) = checksum(content)?;
                writeln!(out, "file {name} {meta} {len} {crc:08x}")
            }
            Kind::HardLink(target) => writeln!(out, "link {name} {meta} {}", quote_path(target)),
            Kind::Symlink(target) => writeln!(out, "slink {name} {meta} {}", quote(target)),
            Kind::CharDev { major, minor } => writeln!(out, "nod {name} {meta} c {major} {minor}"),
            Kind::BlockDev { major, minor } => writeln!(out, "nod {name} {meta} b {major} {minor}"),
            Kind::Fifo => writeln!(out, "pipe {name} {meta}"),
            Kind::Socket => writeln!(out, "sock {name} {meta}"),
        };
    }
    Ok(out)
}

/// Size and CRC-32 of a content source, streamed.
pub fn checksum(content: &Content) -> io::Result<(u64, u32)> {
    let mut reader = content.open()?;
    let mut crc = flate2::Crc::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut len = 0u64;
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        crc.update(&buf[..n]);
        len += n as u64;
    }
    Ok((len, crc.sum()))
}

use std::io::Read as _;

/// Differences from `a` to `b`, one line each: `+ path`, `- path`, `~ path: field a -> b`,
/// in path order, paths and targets quoted as in a list.
pub fn diff(a: &Tree, b: &Tree) -> io::Result<Vec<String>> {
    let mut lines = Vec::new();
    for (path, _) in a.iter() {
        if b.get(path).is_none() {
            lines.push((path, format!("- {}", quote_path(path))));
        }
    }
    for (path, new) in b.iter() {
        let Some(old) = a.get(path) else {
            lines.push((path, format!("+ {}", quote_path(path))));
            continue;
        };
        let changes = changes(old, new)?;
        if !changes.is_empty() {
            lines.push((
                path,
                format!("~ {}: {}", quote_path(path), changes.join(", ")),
            ));
        }
    }
    lines.sort_by(|x, y| x.0.cmp(y.0));
    Ok(lines.into_iter().map(|(_, line)| line).collect())
}

fn changes(old: &Node, new: &Node) -> io::Result<Vec<String>> {
    let mut out = Vec::new();
    let (old_type, new_type) = (
        crate::tree::kind_name(&old.kind),
        crate::tree::kind_name(&new.kind),
    );
    if old_type != new_type {
        out.push(format!("type {old_type} -> {new_type}"));
        return Ok(out);
    }
    if old.meta.mode != new.meta.mode {
        out.push(format!(
            "mode {:04o} -> {:04o}",
            old.meta.mode, new.meta.mode
        ));
    }
    if old.meta.uid != new.meta.uid {
        out.push(format!("uid {} -> {}", old.meta.uid, new.meta.uid));
    }
    if old.meta.gid != new.meta.gid {
        out.push(format!("gid {} -> {}", old.meta.gid, new.meta.gid));
    }
    match (&old.kind, &new.kind) {
        (Kind::File(a), Kind::File(b)) => {
            let (a, b) = (checksum(a)?, checksum(b)?);
            if a.0 != b.0 {
                out.push(format!("size {} -> {}", a.0, b.0));
            } else if a.1 != b.1 {
                out.push("content".to_string());
            }
        }
        (Kind::Symlink(a), Kind::Symlink(b)) if a != b => {
            out.push(format!("target {} -> {}", quote(a), quote(b)));
        }
        (Kind::HardLink(a), Kind::HardLink(b)) if a != b => {
            out.push(format!("link {} -> {}", quote_path(a), quote_path(b)));
        }
        (
            Kind::CharDev { major, minor } | Kind::BlockDev { major, minor },
            Kind::CharDev {
                major: m2,
                minor: n2,
            }
            | Kind::BlockDev {
                major: m2,
                minor: n2,
            },
        ) if (major, minor) != (m2, n2) => {
            out.push(format!("device {major},{minor} -> {m2},{n2}"));
        }
        _ => {}
    }
    if old.mtime != new.mtime {
        let show = |t: Option<u64>| t.map_or("-".to_string(), format_time);
        out.push(format!("mtime {} -> {}", show(old.mtime), show(new.mtime)));
    }
    Ok(out)
}

/// `YYYY-MM-DD HH:MM` in UTC, independent of the host's TZ.
pub fn format_time(seconds: u64) -> String {
    let (year, month, day, hour, minute, _) = civil(seconds);
    format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02}")
}

/// Seconds since the epoch as UTC (year, month, day, hour, minute, second).
pub fn civil(seconds: u64) -> (i64, i64, i64, u64, u64, u64) {
    let days = (seconds / 86_400) as i64;
    let rest = seconds % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day, rest / 3600, rest / 60 % 60, rest % 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::Inputs;
    use crate::tree::Meta;

    /// A name and a symlink target for each of the characters U+0001 to U+00FF (`/` only in
    /// targets: in a name it separates components), every kind but files, and the symlink
    /// whose raw listing read the host's shadow file.
    fn hostile_tree() -> Tree {
        let mut tree = Tree::new();
        let mut add = |name: &str, kind: Kind| {
            let path = ArchivePath::new(name).unwrap();
            tree.insert(path, Node::new(kind, Meta::new(0o644, 1, 2), "test"))
                .unwrap();
        };
        for (index, c) in (1..=0xff).filter_map(char::from_u32).enumerate() {
            let target = format!("{c}t\0{c}/{c}");
            let kind = match index % 5 {
                0 => Kind::Dir,
                1 => Kind::Symlink(target),
                2 => Kind::CharDev { major: 1, minor: 3 },
                3 => Kind::Fifo,
                _ => Kind::Socket,
            };
            if c != '/' {
                add(&format!("{c}n{c}{c}"), kind);
            }
        }
        add(
            "evil",
            Kind::Symlink("x\nfile /x /etc/shadow 0644 0 0".to_string()),
        );
        add("empty", Kind::Symlink(String::new()));
        tree
    }

    /// The lines of `text`, insisting that none holds a control character.
    fn lines(text: &str) -> Vec<&str> {
        let lines: Vec<&str> = text.lines().collect();
        for line in &lines {
            assert!(!line.contains(|c: char| c.is_control()), "{line:?}");
        }
        lines
    }

    #[test]
    fn list_round_trips_every_name_and_target() {
        let tree = hostile_tree();
        let list = gen_init_cpio(&tree);
        assert_eq!(lines(&list).len(), tree.len());
        let mut read_back = Tree::new();
        Inputs::new((0, 0))
            .parse_list(&mut read_back, Path::new("test.list"), &list)
            .unwrap();
        let entries = |tree: &Tree| -> Vec<(ArchivePath, Kind, Meta)> {
            tree.iter()
                .map(|(path, node)| (path.clone(), node.kind.clone(), node.meta))
                .collect()
        };
        assert_eq!(entries(&read_back), entries(&tree));
        assert!(read_back.get(&ArchivePath::new("x").unwrap()).is_none());
    }

    #[test]
    fn every_entry_is_one_line() {
        let tree = hostile_tree();
        assert_eq!(lines(&ls(&tree)).len(), tree.len());
        assert_eq!(lines(&manifest(&tree).unwrap()).len(), tree.len());
        let diff = diff(&Tree::new(), &tree).unwrap();
        assert_eq!(lines(&diff.join("\n")).len(), tree.len());
        let evil = |text: &str| {
            text.lines()
                .find(|line| line.contains("evil"))
                .unwrap()
                .to_string()
        };
        assert_eq!(
            evil(&ls(&tree)),
            r"lrw-r--r-- 1/2            0 1970-01-01 00:00 evil -> x\nfile /x /etc/shadow 0644 0 0"
        );
        assert_eq!(
            evil(&gen_init_cpio(&tree)),
            r#"slink /evil "x\nfile /x /etc/shadow 0644 0 0" 0644 1 2"#
        );
        assert_eq!(
            evil(&manifest(&tree).unwrap()),
            r#"slink /evil 0644 1 2 "x\nfile /x /etc/shadow 0644 0 0""#
        );
    }

    #[test]
    fn times() {
        assert_eq!(format_time(0), "1970-01-01 00:00");
        assert_eq!(format_time(946_684_800), "2000-01-01 00:00");
        assert_eq!(format_time(1_709_251_199), "2024-02-29 23:59");
    }
}
