//! The kernel's gen_init_cpio list format (`usr/gen_init_cpio.c`), parsed into a tree.

use std::fs;
use std::path::Path;

use anyhow::Result;

use super::{Inputs, SpecError, check_extra, expand, meaningful_lines, mode, number};
use crate::tree::content::Content;
use crate::tree::{ArchivePath, Kind, Meta, Node, Tree};

impl Inputs {
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
