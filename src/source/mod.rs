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

pub mod deb;
pub mod dsc;
pub mod list;
pub mod makedevs;
pub mod overlay;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};

use self::overlay as host_dir;
use crate::archive::read::{self, Archive};
use crate::tree::{ArchivePath, Tree};

/// A malformed input line: names file, line and what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{}:{line}: {message}", file.display())]
pub struct SpecError {
    pub file: PathBuf,
    pub line: usize,
    pub message: String,
}

/// A malformed line is input; so is a malformed package.
pub fn classify(cause: &(dyn std::error::Error + 'static)) -> Option<crate::error::Kind> {
    if let Some(deb) = cause.downcast_ref::<deb::DebError>() {
        return Some(if deb.is_input_error() {
            crate::error::Kind::Input
        } else {
            crate::error::Kind::System
        });
    }
    cause.is::<SpecError>().then_some(crate::error::Kind::Input)
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
                return host_dir::load_dir(tree, as_path, None, self.owner);
            }
            return self.apply_file(tree, as_path);
        }
        if let Some((source, dest)) = operand.rsplit_once(':') {
            if Path::new(source).is_dir() && dest.starts_with('/') {
                let dest = ArchivePath::new(dest)
                    .map_err(|err| usage(format!("{operand}: destination {dest:?}: {err}")))?;
                return host_dir::load_dir(tree, Path::new(source), Some(&dest), self.owner);
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
            let mut file =
                crate::host::input::open(path, false).map_err(|err| input_io(path, err))?;
            file.read(&mut head)
                .with_context(|| format!("unable to read {}", path.display()))?
        };
        let head = &head[..head_len];
        if read::looks_like_archive(head) {
            let archive = self.archive(path)?;
            let mut copy = archive.tree.clone();
            // Keep the read-back mtimes out: writers use one time for every entry anyway.
            for (_, node) in copy.iter_mut() {
                node.mtime = None;
            }
            tree.overlay(copy)?;
            return Ok(());
        }
        let text = crate::host::input::read(path, LIST_LIMIT, "a list or a table")
            .map_err(|err| input_io(path, err))?;
        let text = String::from_utf8(text).map_err(|err| {
            let valid = &err.as_bytes()[..err.utf8_error().valid_up_to()];
            SpecError {
                file: path.to_path_buf(),
                line: valid.iter().filter(|&&b| b == b'\n').count() + 1,
                message: "not UTF-8 text, nor a cpio or tar archive (note: a list or a makedevs table is UTF-8 text)".to_string(),
            }
        })?;
        if makedevs::is_makedevs(&text) {
            makedevs::apply(tree, path, &text)?;
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
        let archive = crate::archive::read_path(path).map(Arc::new)?;
        self.archives
            .insert(path.to_path_buf(), Arc::clone(&archive));
        Ok(archive)
    }
}

/// `kiln pack`: every operand into one tree, later ones overriding earlier ones, then
/// the archive. Returns the report line.
pub fn pack(
    specs: &[String],
    output: &Path,
    format: crate::archive::Format,
    owner: &str,
) -> Result<String> {
    let owner = parse_owner(owner)?;
    let mut inputs = Inputs::new(owner);
    let mut tree = Tree::new();
    for operand in specs {
        inputs.apply(&mut tree, operand)?;
    }
    let options = crate::archive::Options::from_env()?.with_image_names(&tree);
    crate::archive::write_file(&tree, format, output, &options)
        .with_context(|| format!("unable to write {}", output.display()))?;
    Ok(format!(
        "kiln: wrote {} ({format}, {} entries)\n",
        output.display(),
        tree.len()
    ))
}

/// The largest list or makedevs table kiln reads (a 600 000-line list is 15 MiB).
const LIST_LIMIT: u64 = 64 << 20;

/// An operand that cannot be read as given is the user's to fix; a failing disk is not.
fn input_io(path: &Path, err: std::io::Error) -> anyhow::Error {
    crate::error::io(format!("unable to read {}", path.display()), err)
}

/// `--owner UID:GID`, numeric.
fn parse_owner(text: &str) -> Result<(u32, u32)> {
    let parsed = text
        .split_once(':')
        .and_then(|(uid, gid)| Some((uid.parse().ok()?, gid.parse().ok()?)));
    parsed.ok_or_else(|| usage(format!("--owner {text:?}: expected numeric UID:GID")))
}

/// (1-based line number, words) of every line that is neither blank nor a `#` comment.
pub(crate) fn meaningful_lines(text: &str) -> impl Iterator<Item = (usize, Vec<&str>)> {
    text.lines().enumerate().filter_map(|(index, raw_line)| {
        let words: Vec<&str> = raw_line.split_whitespace().collect();
        match words.first() {
            Some(first) if !first.starts_with('#') => Some((index + 1, words)),
            _ => None,
        }
    })
}

fn usage(message: String) -> anyhow::Error {
    crate::error::input(message)
}

pub(crate) fn check_extra(words: &[&str], count: usize) -> Result<(), String> {
    match words.get(count) {
        Some(extra) => Err(format!("unexpected extra field {extra:?}")),
        None => Ok(()),
    }
}

pub(crate) fn mode(word: &str) -> Result<u32, String> {
    match u32::from_str_radix(word, 8) {
        Ok(mode) if mode <= 0o7777 && !word.is_empty() => Ok(mode),
        _ => Err(format!(
            "bad mode {word:?}: expected octal permission bits up to 7777"
        )),
    }
}

pub(crate) fn number(word: &str, what: &str) -> Result<u32, String> {
    if word.is_empty() || !word.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("bad {what} {word:?}: expected a decimal number"));
    }
    word.parse()
        .map_err(|_| format!("bad {what} {word:?}: out of range"))
}

/// `${VAR}` expansion as gen_init_cpio does for locations; an unset variable is an error.
pub(crate) fn expand(text: &str) -> Result<String, String> {
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
}
