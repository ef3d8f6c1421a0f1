//! Text renderings of a `Tree`: `kiln ls` (like `tar -tv`), `kiln ls --list` (gen_init_cpio
//! list form, which `kiln pack` reads back), the golden manifest, and `kiln diff`; and
//! reading what those commands are given (any archive, or a .deb's data).

use std::fmt::Write as _;
use std::io;
use std::path::Path;

use anyhow::{Context, Result};

use crate::archive::read::Archive;
use crate::archive::{Compression, Container, Format};
use crate::error::Verdict;
use crate::source::deb;

use crate::tree::content::Content;
use crate::tree::{ArchivePath, Kind, Node, Tree, mode_string};

/// Reads an archive (cpio or tar, any compression) or a .deb's files. A file that is
/// missing or not an archive is bad input (100); failing to read one is the system's.
pub fn read(path: &Path) -> Result<Archive> {
    if deb::is_deb(path) {
        let package = deb::read(path)?;
        eprintln!(
            "kiln: {}: package {} {} ({}), data.tar:",
            package.path.display(),
            package.name(),
            package.control.get("Version").map_or("?", String::as_str),
            package
                .control
                .get("Architecture")
                .map_or("?", String::as_str),
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

/// One `tar -tv` style line per entry, in tree order.
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
            Kind::Symlink(target) => format!(" -> {target}"),
            Kind::HardLink(target) => format!(" link to {}", target.as_str()),
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
            path.as_str(),
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
        let meta = format!("{:04o} {} {}", node.meta.mode, node.meta.uid, node.meta.gid);
        let _ = match &node.kind {
            Kind::Dir => writeln!(out, "dir {path} {meta}"),
            Kind::File(content) => {
                let mut links = String::new();
                for link in groups.get(path).into_iter().flatten().skip(1) {
                    links.push(' ');
                    links.push_str(&link.to_string());
                }
                writeln!(out, "file {path} {} {meta}{links}", location(path, content))
            }
            // Written as extra names on the file's own line.
            Kind::HardLink(_) => Ok(()),
            Kind::Symlink(target) => writeln!(out, "slink {path} {target} {meta}"),
            Kind::CharDev { major, minor } => writeln!(out, "nod {path} {meta} c {major} {minor}"),
            Kind::BlockDev { major, minor } => writeln!(out, "nod {path} {meta} b {major} {minor}"),
            Kind::Fifo => writeln!(out, "pipe {path} {meta}"),
            Kind::Socket => writeln!(out, "sock {path} {meta}"),
        };
    }
    out
}

fn location(path: &ArchivePath, content: &Content) -> String {
    match content {
        Content::Member { spool, .. } => format!("{}/{}", spool.origin.display(), path.as_str()),
        other => other.describe(),
    }
}

/// The golden manifest: kind, path, mode, uid, gid, then the target, the device numbers,
/// or the size and CRC-32 of the content.
pub fn manifest(tree: &Tree) -> io::Result<String> {
    let mut out = String::new();
    for (path, node) in tree.iter() {
        let meta = format!("{:04o} {} {}", node.meta.mode, node.meta.uid, node.meta.gid);
        let _ = match &node.kind {
            Kind::Dir => writeln!(out, "dir {path} {meta}"),
            Kind::File(content) => {
                let (len, crc) = checksum(content)?;
                writeln!(out, "file {path} {meta} {len} {crc:08x}")
            }
            Kind::HardLink(target) => writeln!(out, "link {path} {meta} {target}"),
            Kind::Symlink(target) => writeln!(out, "slink {path} {meta} {target}"),
            Kind::CharDev { major, minor } => writeln!(out, "nod {path} {meta} c {major} {minor}"),
            Kind::BlockDev { major, minor } => writeln!(out, "nod {path} {meta} b {major} {minor}"),
            Kind::Fifo => writeln!(out, "pipe {path} {meta}"),
            Kind::Socket => writeln!(out, "sock {path} {meta}"),
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

/// Differences from `a` to `b`, one line each: `+ path`, `- path`, `~ path: field a -> b`.
pub fn diff(a: &Tree, b: &Tree) -> io::Result<Vec<String>> {
    let mut lines = Vec::new();
    for (path, _) in a.iter() {
        if b.get(path).is_none() {
            lines.push(format!("- {path}"));
        }
    }
    for (path, new) in b.iter() {
        let Some(old) = a.get(path) else {
            lines.push(format!("+ {path}"));
            continue;
        };
        let changes = changes(old, new)?;
        if !changes.is_empty() {
            lines.push(format!("~ {path}: {}", changes.join(", ")));
        }
    }
    lines.sort_by(|x, y| x[2..].cmp(&y[2..]));
    Ok(lines)
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
            out.push(format!("target {a} -> {b}"));
        }
        (Kind::HardLink(a), Kind::HardLink(b)) if a != b => {
            out.push(format!("link {a} -> {b}"));
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
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}",
        rest / 3600,
        rest % 3600 / 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(format_time(0), "1970-01-01 00:00");
        assert_eq!(format_time(946_684_800), "2000-01-01 00:00");
        assert_eq!(format_time(1_709_251_199), "2024-02-29 23:59");
    }
}
