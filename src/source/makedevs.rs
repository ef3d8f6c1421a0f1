//! Buildroot's makedevs device table (`system/device_table_dev.txt`), applied to a tree.

use std::path::Path;

use anyhow::Result;

use super::{SpecError, meaningful_lines, mode, number};
use crate::tree::{ArchivePath, Kind, Meta, Node, Tree};

/// A makedevs table has a one-letter type in its second column.
pub fn is_makedevs(text: &str) -> bool {
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
pub fn apply(tree: &mut Tree, file: &Path, text: &str) -> Result<()> {
    apply_lines(tree, file, text, Mode::Apply)
}

/// Checks a table on its own, before the image exists: every line's syntax, numbers and
/// series; `f` and `r` lines are not matched against the image.
pub fn check(file: &Path, text: &str) -> Result<()> {
    apply_lines(&mut Tree::new(), file, text, Mode::Check)
}

/// The most device nodes one series line may make.
const MAX_SERIES: u32 = 65536;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Apply,
    Check,
}

fn apply_lines(tree: &mut Tree, file: &Path, text: &str, mode_: Mode) -> Result<()> {
    // What this table made, by path, and the line that made it: a second line that
    // makes the same path differently is an error (the same node twice is not).
    let mut made: std::collections::BTreeMap<ArchivePath, (usize, Kind, Meta)> =
        std::collections::BTreeMap::new();
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
        let mut put = |tree: &mut Tree, path: ArchivePath, kind: Kind| -> Result<(), SpecError> {
            if let Some((first, old_kind, old_meta)) = made.get(&path) {
                if (old_kind, old_meta) != (&kind, &meta) {
                    return Err(error(format!(
                        "{path} conflicts with line {first}, which makes it differently"
                    )));
                }
                return Ok(());
            }
            made.insert(path.clone(), (line, kind.clone(), meta));
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
                    if count > MAX_SERIES {
                        return Err(error(format!(
                            "count {count}: a series makes at most {MAX_SERIES} nodes"
                        ))
                        .into());
                    }
                    let last_minor = (count - 1)
                        .checked_mul(increment)
                        .and_then(|step| minor.checked_add(step));
                    if start.checked_add(count).is_none() || last_minor.is_none() {
                        return Err(error(format!(
                            "the series start {start}, inc {increment}, count {count} runs past 2^32"
                        ))
                        .into());
                    }
                    for offset in 0..count {
                        let series =
                            ArchivePath::new(&format!("{}{}", path.as_str(), start + offset))
                                .map_err(|err| error(err.to_string()))?;
                        put(tree, series, device(minor + offset * increment))?;
                    }
                }
            }
            "f" | "r" if mode_ == Mode::Check => {}
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
    fn conflicting_lines_are_errors_and_repeats_are_not() {
        let mut tree = Tree::new();
        let table = "/dev/null c 666 0 0 1 3 - - -\n/dev/null c 666 0 0 1 3 - - -\n";
        apply(&mut tree, Path::new("t.txt"), table).unwrap();
        let table = "/dev/null c 666 0 0 1 3 - - -\n/dev/x p 600 0 0 - - - - -\n/dev/null c 600 0 0 1 3 - - -\n";
        let err = apply(&mut Tree::new(), Path::new("t.txt"), table).unwrap_err();
        assert_eq!(
            err.to_string(),
            "t.txt:3: /dev/null conflicts with line 1, which makes it differently"
        );
        let series = "/dev/tty c 600 0 0 4 0 0 1 2\n/dev/tty1 c 600 0 0 4 9 - - -\n";
        assert!(check(Path::new("t.txt"), series).is_err());
    }

    #[test]
    fn makedevs_series() {
        let mut tree = Tree::new();
        let table = "# comment\n/dev d 755 0 0 - - - - -\n/dev/ttyS c 660 0 5 4 64 0 1 3\n";
        apply(&mut tree, Path::new("t.txt"), table).unwrap();
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
