//! Package contents into the image: documentation dropped, paths moved through the
//! image's merged-/usr links, `select` globs, and overlays with declared metadata.

use anyhow::{Result, bail};

use crate::config::Overlay;
use crate::source::overlay;
use crate::tree::{ArchivePath, Kind, Tree};

/// Paths of whole packages that an embedded image does without.
const DROPPED: [&str; 6] = [
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/lintian",
    "usr/share/locale",
    "usr/share/bug",
];

/// Moves a package's paths through the image's symlinked directories (merged /usr:
/// with `bin -> usr/bin` in the image, a package's `bin/sh` lands in `usr/bin/sh`), so
/// package contents never collide with the image's links.
pub fn relocate(image: &Tree, data: &Tree) -> Tree {
    let mut moved = Tree::new();
    for (path, node) in data.iter() {
        let target = match (&node.kind, path.parent()) {
            // A directory where the image has a link to one: the link's target.
            (Kind::Dir, _) => crate::tree::resolve::lenient(image, path.as_str()),
            // Anything else keeps its own name under its resolved parent.
            (_, Some(parent)) => crate::tree::resolve::lenient(image, parent.as_str())
                .and_then(|parent| parent.join(path.file_name()).ok()),
            (_, None) => Some(path.clone()),
        };
        let target = target.unwrap_or_else(|| path.clone());
        // Later entries of one package replace earlier ones, as extraction would.
        let _ = moved.replace(target, node.clone());
    }
    moved
}

pub fn without_docs(tree: Tree) -> Tree {
    let mut kept = Tree::new();
    for (path, node) in tree.iter() {
        let dropped = DROPPED.iter().any(|prefix| {
            let prefix = ArchivePath::new(prefix).expect("literal");
            path.starts_with(&prefix)
        });
        if !dropped {
            // Same paths, same order: cannot conflict.
            let _ = kept.replace(path.clone(), node.clone());
        }
    }
    kept
}

/// Copies the paths of `data` matching `patterns` (`*` and `?` within a component),
/// and the symlinks among them, into `image`.
pub fn select(image: &mut Tree, data: &Tree, patterns: &[String], package: &str) -> Result<()> {
    for pattern in patterns {
        let mut matched = 0;
        for (path, node) in data.iter() {
            if node.kind != Kind::Dir && glob(pattern.trim_start_matches('/'), path.as_str()) {
                image.replace(path.clone(), node.clone())?;
                matched += 1;
            }
        }
        if matched == 0 {
            let near: Vec<String> = data
                .iter()
                .filter(|(_, node)| node.kind != Kind::Dir)
                .map(|(path, _)| path.to_string())
                .take(8)
                .collect();
            bail!(crate::error::Input(format!(
                "[packages.select] {package}: {pattern} matches nothing\nnote: the package has e.g. {}",
                near.join(", ")
            )));
        }
    }
    Ok(())
}

/// Shell-style glob on whole paths: `*` and `?` never cross a `/`.
pub fn glob(pattern: &str, text: &str) -> bool {
    fn matches(pattern: &[u8], text: &[u8]) -> bool {
        match (pattern.first(), text.first()) {
            (None, None) => true,
            (Some(b'*'), _) => {
                matches(&pattern[1..], text)
                    || (!text.is_empty() && text[0] != b'/' && matches(pattern, &text[1..]))
            }
            (Some(b'?'), Some(&c)) if c != b'/' => matches(&pattern[1..], &text[1..]),
            (Some(p), Some(c)) if p == c => matches(&pattern[1..], &text[1..]),
            _ => false,
        }
    }
    matches(pattern.as_bytes(), text.as_bytes())
}

/// An overlay with kiln's metadata rules: dirs 0755, files 0755 when executable in the
/// checkout else 0644, owner 0:0; `files` entries override (git keeps only the x bit).
pub fn load_overlay(image: &mut Tree, board_overlay: &Overlay) -> Result<()> {
    let mut sub = Tree::new();
    overlay::load_dir(
        &mut sub,
        &board_overlay.source,
        board_overlay.dest.as_ref(),
        (0, 0),
    )?;
    for (path, node) in sub.iter_mut() {
        let executable = node.meta.mode & 0o111 != 0;
        node.meta.mode = match node.kind {
            Kind::Dir => 0o755,
            Kind::Symlink(_) => 0o777,
            _ if executable => 0o755,
            _ => 0o644,
        };
        if let Some(declared) = board_overlay.files.get(path) {
            node.meta.mode = declared.mode.unwrap_or(node.meta.mode);
            node.meta.uid = declared.uid.unwrap_or(node.meta.uid);
            node.meta.gid = declared.gid.unwrap_or(node.meta.gid);
        }
    }
    // Files kept only to keep a directory in git.
    let keeps: Vec<ArchivePath> = sub
        .iter()
        .filter(|(path, _)| path.file_name() == ".keep")
        .map(|(path, _)| path.clone())
        .collect();
    for path in keeps {
        sub.remove(&path);
    }
    image.overlay(sub)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{glob, relocate};
    use crate::tree::{ArchivePath, Kind, Meta, Tree};

    #[test]
    fn package_paths_follow_merged_usr_links() {
        let mut image = Tree::new();
        image.dir("usr/bin", Meta::root(0o755), "image").unwrap();
        image.symlink("bin", "usr/bin", "image").unwrap();
        let mut package = Tree::new();
        package.dir("bin", Meta::root(0o755), "pkg").unwrap();
        package
            .file("bin/sh", "x", Meta::root(0o755), "pkg")
            .unwrap();
        package
            .file("etc/x", "y", Meta::root(0o644), "pkg")
            .unwrap();
        let moved = relocate(&image, &package);
        let paths: Vec<String> = moved.iter().map(|(path, _)| path.to_string()).collect();
        assert_eq!(
            paths,
            vec!["/etc", "/etc/x", "/usr", "/usr/bin", "/usr/bin/sh"]
        );
        let mut merged = image.clone();
        merged.overlay(moved).unwrap();
        let bin = merged.get(&ArchivePath::new("bin").unwrap()).unwrap();
        assert_eq!(bin.kind, Kind::Symlink("usr/bin".to_string()));
    }

    #[test]
    fn globs_stay_within_a_component() {
        assert!(glob("usr/bin/s6-*", "usr/bin/s6-svscan"));
        assert!(!glob("usr/bin/s6-*", "usr/bin/s6/x"));
        assert!(glob("usr/lib/execline/bin/*", "usr/lib/execline/bin/cd"));
        assert!(glob("a?c", "abc"));
        assert!(!glob("a?c", "a/c"));
        assert!(!glob("usr/bin/x", "usr/bin/xy"));
    }
}
