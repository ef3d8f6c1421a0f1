//! Text descriptions of a rootfs: the kernel's gen_init_cpio list format and Buildroot's
//! makedevs device table, plus the dispatcher that turns `kiln pack` operands (list, table,
//! host directory, archive) into one `Tree`.
//!
//! gen_init_cpio lines (kernel `usr/gen_init_cpio.c`):
//!
//! ```text
//! file <name> <location> <mode> <uid> <gid> [<hard links>]
//! dir <name> <mode> <uid> <gid>
//! nod <name> <mode> <uid> <gid> <dev_type> <maj> <min>
//! slink <name> <target> <mode> <uid> <gid>
//! pipe <name> <mode> <uid> <gid>
//! sock <name> <mode> <uid> <gid>
//! ```
//!
//! `${VAR}` in a location expands from the environment. A relative location is taken
//! relative to the list file's directory (the kernel uses its working directory), so a
//! checked-in list works from anywhere. A location that runs *through* an archive file,
//! `out/initrd.cpio.gz/bin/sh`, names that archive's member: it is what `kiln ls --list`
//! prints, so listings round-trip.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};

use crate::archive::read::{self, Archive};
use crate::overlay;
use crate::tree::{ArchivePath, Content, Kind, Meta, Node, Tree};

/// A malformed input line: names file, line and what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{}:{line}: {message}", file.display())]
pub struct SpecError {
    pub file: PathBuf,
    pub line: usize,
    pub message: String,
}

/// What `kiln pack` operands share: owner mapping for directories, archives already read.
pub struct Inputs {
    /// Owner for every entry of a host directory (host owners mean nothing in an image).
    pub owner: (u32, u32),
    archives: BTreeMap<PathBuf, Arc<Archive>>,
}

impl Inputs {
    pub fn new(owner: (u32, u32)) -> Inputs {
        Inputs {
            owner,
            archives: BTreeMap::new(),
        }
    }

    /// Applies one operand to `tree`: later operands override earlier ones path by path.
    pub fn apply(&mut self, tree: &mut Tree, operand: &str) -> Result<()> {
        let as_path = Path::new(operand);
        if let Ok(metadata) = fs::metadata(as_path) {
            if metadata.is_dir() {
                return overlay::load_dir(tree, as_path, None, self.owner);
            }
            return self.apply_file(tree, as_path);
        }
        if let Some((source, dest)) = operand.rsplit_once(':') {
            if Path::new(source).is_dir() && dest.starts_with('/') {
                let dest = ArchivePath::new(dest)
                    .map_err(|err| usage(format!("{operand}: destination {dest:?}: {err}")))?;
                return overlay::load_dir(tree, Path::new(source), Some(&dest), self.owner);
            }
        }
        Err(usage(format!(
            "{operand}: no such file or directory (note: operands are list files, makedevs tables, directories, DIR:/dest or archives)"
        )))
    }

    fn apply_file(&mut self, tree: &mut Tree, path: &Path) -> Result<()> {
        let mut head = [0u8; 512];
        let head_len = {
            use std::io::Read;
            let mut file = fs::File::open(path)
                .with_context(|| format!("unable to open {}", path.display()))?;
            file.read(&mut head)
                .with_context(|| format!("unable to read {}", path.display()))?
        };
        let head = &head[..head_len];
        let looks_archive = read::sniff_compression(head) != crate::archive::Compression::None
            || head.starts_with(b"07070")
            || (head.len() >= 262 && &head[257..262] == b"ustar");
        if looks_archive {
            let archive = self.archive(path)?;
            let mut copy = archive.tree.clone();
            // Keep the read-back mtimes out: writers use one time for every entry anyway.
            for (_, node) in copy.iter_mut() {
                node.mtime = None;
            }
            tree.overlay(copy)?;
            return Ok(());
        }
        let text = fs::read(path).with_context(|| format!("unable to read {}", path.display()))?;
        let text = String::from_utf8(text).map_err(|_| SpecError {
            file: path.to_path_buf(),
            line: 0,
            message: "not UTF-8 text, nor a cpio or tar archive".to_string(),
        })?;
        if is_makedevs(&text) {
            apply_makedevs(tree, path, &text)?;
        } else {
            let mut sub = Tree::new();
            self.parse_list(&mut sub, path, &text)?;
            tree.overlay(sub)?;
        }
        Ok(())
    }

    fn archive(&mut self, path: &Path) -> Result<Arc<Archive>> {
        if let Some(archive) = self.archives.get(path) {
            return Ok(Arc::clone(archive));
        }
        let archive = read::read_file(path)
            .map(Arc::new)
            .with_context(|| format!("unable to read archive {}", path.display()))?;
        self.archives
            .insert(path.to_path_buf(), Arc::clone(&archive));
        Ok(archive)
    }

    /// Parses a gen_init_cpio list into `tree`.
    pub fn parse_list(&mut self, tree: &mut Tree, file: &Path, text: &str) -> Result<()> {
        let base = file.parent().unwrap_or(Path::new("."));
        for (line, words) in meaningful_lines(text) {
            let error = |message: String| SpecError {
                file: file.to_path_buf(),
                line,
                message,
            };
            let origin = format!("{}:{line}", file.display());
            let want = |count: usize, synopsis: &str| -> Result<(), SpecError> {
                if words.len() < count {
                    return Err(error(format!("missing field: expected `{synopsis}`")));
                }
                Ok(())
            };
            let name = |word: &str| {
                ArchivePath::new(word).map_err(|err| error(format!("name {word:?}: {err}")))
            };
            let (path, kind, mode_at) = match words[0] {
                "file" => {
                    want(
                        6,
                        "file <name> <location> <mode> <uid> <gid> [<hard links>]",
                    )?;
                    let location = expand(words[2]).map_err(&error)?;
                    let content = self.locate(base, &location).map_err(&error)?;
                    (name(words[1])?, Kind::File(content), 3)
                }
                "dir" => {
                    want(5, "dir <name> <mode> <uid> <gid>")?;
                    (name(words[1])?, Kind::Dir, 2)
                }
                "nod" => {
                    want(8, "nod <name> <mode> <uid> <gid> <dev_type> <maj> <min>")?;
                    let major = number(words[6], "major").map_err(&error)?;
                    let minor = number(words[7], "minor").map_err(&error)?;
                    let kind = match words[5] {
                        "c" => Kind::CharDev { major, minor },
                        "b" => Kind::BlockDev { major, minor },
                        other => {
                            return Err(error(format!(
                                "bad device type {other:?}: expected c or b"
                            ))
                            .into());
                        }
                    };
                    check_extra(&words, 8).map_err(&error)?;
                    (name(words[1])?, kind, 2)
                }
                "slink" => {
                    want(6, "slink <name> <target> <mode> <uid> <gid>")?;
                    check_extra(&words, 6).map_err(&error)?;
                    (name(words[1])?, Kind::Symlink(words[2].to_string()), 3)
                }
                "pipe" => {
                    want(5, "pipe <name> <mode> <uid> <gid>")?;
                    check_extra(&words, 5).map_err(&error)?;
                    (name(words[1])?, Kind::Fifo, 2)
                }
                "sock" => {
                    want(5, "sock <name> <mode> <uid> <gid>")?;
                    check_extra(&words, 5).map_err(&error)?;
                    (name(words[1])?, Kind::Socket, 2)
                }
                other => {
                    return Err(error(format!(
                        "unknown entry type {other:?}: expected file, dir, nod, slink, pipe or sock"
                    ))
                    .into());
                }
            };
            if words[0] == "dir" {
                check_extra(&words, 5).map_err(&error)?;
            }
            let mode = mode(words[mode_at]).map_err(&error)?;
            let uid = number(words[mode_at + 1], "uid").map_err(&error)?;
            let gid = number(words[mode_at + 2], "gid").map_err(&error)?;
            let meta = Meta::new(mode, uid, gid);
            let links = if words[0] == "file" {
                &words[6..]
            } else {
                &[][..]
            };
            tree.insert(path.clone(), Node::new(kind, meta, &origin))
                .map_err(|err| error(err.to_string()))?;
            for link in links {
                let link_path = name(link)?;
                let node = Node::new(Kind::HardLink(path.clone()), meta, &origin);
                tree.insert(link_path, node)
                    .map_err(|err| error(err.to_string()))?;
            }
        }
        Ok(())
    }

    /// A host file, or a member of an archive the location runs through.
    fn locate(&mut self, base: &Path, location: &str) -> Result<Content, String> {
        let full = base.join(location);
        match fs::metadata(&full) {
            Ok(metadata) if metadata.is_file() => {
                return Ok(Content::Host {
                    path: full,
                    len: metadata.len(),
                });
            }
            Ok(_) => return Err(format!("{}: not a regular file", full.display())),
            Err(_) => {}
        }
        // Walk up until a prefix exists; if it is a regular file, it is the archive.
        let mut prefix = full.as_path();
        while let Some(parent) = prefix.parent() {
            prefix = parent;
            if prefix.is_file() {
                let member = full
                    .strip_prefix(prefix)
                    .ok()
                    .and_then(|rest| rest.to_str())
                    .and_then(|rest| ArchivePath::new(rest).ok())
                    .ok_or_else(|| format!("{}: bad member name", full.display()))?;
                let archive = self
                    .archive(prefix)
                    .map_err(|err| format!("{}: {err:#}", full.display()))?;
                return match archive.tree.get(&member) {
                    Some(Node {
                        kind: Kind::File(content),
                        ..
                    }) => Ok(content.clone()),
                    Some(Node {
                        kind: Kind::HardLink(target),
                        ..
                    }) => match archive.tree.get(target) {
                        Some(Node {
                            kind: Kind::File(content),
                            ..
                        }) => Ok(content.clone()),
                        _ => Err(format!("{}: broken hard link", full.display())),
                    },
                    Some(_) => Err(format!("{}: member is not a regular file", full.display())),
                    None => Err(format!(
                        "missing source file: {} has no member {}",
                        prefix.display(),
                        member
                    )),
                };
            }
            if prefix.exists() {
                break;
            }
        }
        Err(format!("missing source file {}", full.display()))
    }
}

/// (1-based line number, words) of every line that is neither blank nor a `#` comment.
fn meaningful_lines(text: &str) -> impl Iterator<Item = (usize, Vec<&str>)> {
    text.lines().enumerate().filter_map(|(index, raw_line)| {
        let words: Vec<&str> = raw_line.split_whitespace().collect();
        match words.first() {
            Some(first) if !first.starts_with('#') => Some((index + 1, words)),
            _ => None,
        }
    })
}

fn usage(message: String) -> anyhow::Error {
    anyhow::Error::new(crate::UsageError(message))
}

fn check_extra(words: &[&str], count: usize) -> Result<(), String> {
    match words.get(count) {
        Some(extra) => Err(format!("unexpected extra field {extra:?}")),
        None => Ok(()),
    }
}

fn mode(word: &str) -> Result<u32, String> {
    match u32::from_str_radix(word, 8) {
        Ok(mode) if mode <= 0o7777 && !word.is_empty() => Ok(mode),
        _ => Err(format!(
            "bad mode {word:?}: expected octal permission bits up to 7777"
        )),
    }
}

fn number(word: &str, what: &str) -> Result<u32, String> {
    if word.is_empty() || !word.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("bad {what} {word:?}: expected a decimal number"));
    }
    word.parse()
        .map_err(|_| format!("bad {what} {word:?}: out of range"))
}

/// `${VAR}` expansion as gen_init_cpio does for locations; an unset variable is an error.
fn expand(text: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unterminated ${{ in {text:?}"))?;
        let var = &after[..end];
        let value = std::env::var(var).map_err(|_| format!("variable ${{{var}}} is not set"))?;
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// A makedevs table has a one-letter type in its second column.
fn is_makedevs(text: &str) -> bool {
    text.lines()
        .map(str::split_whitespace)
        .filter_map(|mut words| {
            let first = words.next()?;
            if first.starts_with('#') {
                return None;
            }
            Some(words.next().is_some_and(|w| w.len() == 1) && first.starts_with('/'))
        })
        .next()
        .unwrap_or(false)
}

/// Applies a Buildroot makedevs table to `tree`:
/// `<name> <type> <mode> <uid> <gid> <major> <minor> <start> <inc> <count>`, with `-` for
/// unused fields. `d` makes a directory, `c`/`b` devices (a series when count is set:
/// names `<name><start>`…, minors `minor + (i - start) * inc`), `p` a fifo; `f` and `r`
/// change the mode and owner of an existing file, or of a directory and all below it.
pub fn apply_makedevs(tree: &mut Tree, file: &Path, text: &str) -> Result<()> {
    for (line, words) in meaningful_lines(text) {
        let error = |message: String| SpecError {
            file: file.to_path_buf(),
            line,
            message,
        };
        if words.len() != 10 {
            return Err(error(format!(
                "expected 10 fields `<name> <type> <mode> <uid> <gid> <major> <minor> <start> <inc> <count>`, found {}",
                words.len()
            ))
            .into());
        }
        let origin = format!("{}:{line}", file.display());
        let path = ArchivePath::new(words[0])
            .map_err(|err| error(format!("name {:?}: {err}", words[0])))?;
        let mode = mode(words[2]).map_err(&error)?;
        let uid = number(words[3], "uid").map_err(&error)?;
        let gid = number(words[4], "gid").map_err(&error)?;
        let meta = Meta::new(mode, uid, gid);
        let optional = |word: &str, what: &str| -> Result<Option<u32>, SpecError> {
            if word == "-" {
                Ok(None)
            } else {
                number(word, what).map(Some).map_err(&error)
            }
        };
        let major = optional(words[5], "major")?;
        let minor = optional(words[6], "minor")?;
        let start = optional(words[7], "start")?.unwrap_or(0);
        let increment = optional(words[8], "inc")?.unwrap_or(1);
        let count = optional(words[9], "count")?.unwrap_or(0);
        let put = |tree: &mut Tree, path: ArchivePath, kind: Kind| -> Result<(), SpecError> {
            tree.replace(path, Node::new(kind, meta, &origin))
                .map_err(|err| error(err.to_string()))
        };
        match words[1] {
            "d" => match tree.get_mut(&path) {
                Some(node) if node.kind == Kind::Dir => {
                    node.meta = meta;
                    node.implicit = false;
                }
                _ => put(tree, path, Kind::Dir)?,
            },
            "p" => put(tree, path, Kind::Fifo)?,
            "c" | "b" => {
                let (Some(major), Some(minor)) = (major, minor) else {
                    return Err(error("a device needs major and minor numbers".to_string()).into());
                };
                let device = |minor: u32| match words[1] {
                    "c" => Kind::CharDev { major, minor },
                    _ => Kind::BlockDev { major, minor },
                };
                if count == 0 {
                    put(tree, path, device(minor))?;
                } else {
                    for i in start..start + count {
                        let series = ArchivePath::new(&format!("{}{i}", path.as_str()))
                            .map_err(|err| error(err.to_string()))?;
                        put(tree, series, device(minor + (i - start) * increment))?;
                    }
                }
            }
            "f" => match tree.get_mut(&path) {
                Some(node) if !matches!(node.kind, Kind::Dir) => node.meta = meta,
                _ => {
                    return Err(error(format!(
                        "{path} is not a file in the image (note: `f` only changes an existing file's mode and owner)"
                    ))
                    .into());
                }
            },
            "r" => {
                if tree.get(&path).is_none_or(|node| node.kind != Kind::Dir) {
                    return Err(error(format!("{path} is not a directory in the image")).into());
                }
                for (below, node) in tree.iter_mut() {
                    if below.starts_with(&path) && !matches!(node.kind, Kind::Symlink(_)) {
                        node.meta = Meta::new(u32::from(meta.mode), uid, gid);
                    }
                }
            }
            other => {
                return Err(error(format!(
                    "unknown type {other:?}: expected d, f, r, c, b or p"
                ))
                .into());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_variables() {
        // SAFETY-free: PATH is always set in the test environment.
        let path = std::env::var("PATH").unwrap();
        assert_eq!(expand("${PATH}/x").unwrap(), format!("{path}/x"));
        assert!(expand("${KILN_SURELY_UNSET_VAR}").is_err());
        assert!(expand("${oops").is_err());
    }

    #[test]
    fn makedevs_series() {
        let mut tree = Tree::new();
        let table = "# comment\n/dev d 755 0 0 - - - - -\n/dev/ttyS c 660 0 5 4 64 0 1 3\n";
        apply_makedevs(&mut tree, Path::new("t.txt"), table).unwrap();
        let got: Vec<String> = tree
            .iter()
            .map(|(path, node)| {
                format!(
                    "{path} {:?} {:o} {}",
                    node.kind, node.meta.mode, node.meta.gid
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                "/dev Dir 755 0",
                "/dev/ttyS0 CharDev { major: 4, minor: 64 } 660 5",
                "/dev/ttyS1 CharDev { major: 4, minor: 65 } 660 5",
                "/dev/ttyS2 CharDev { major: 4, minor: 66 } 660 5",
            ]
        );
    }

    #[test]
    fn detects_table_kind() {
        assert!(is_makedevs("# x\n/dev/null c 666 0 0 1 3 - - -\n"));
        assert!(!is_makedevs("dir /dev 755 0 0\n"));
    }
}
