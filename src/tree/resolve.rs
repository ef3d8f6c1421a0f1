//! Path resolution inside a tree, as the target's kernel would resolve it: symlinks in
//! every component (merged-/usr links included), absolute targets from the image's
//! root, never the host's.

use super::{ArchivePath, Kind, Node, Tree};

/// Symlinks followed before a path is taken for a loop (Linux's MAXSYMLINKS is 40).
const MAX_HOPS: usize = 40;

/// Resolves an absolute path inside the image, following symlinks in every component
/// (merged-/usr links included). Hard links resolve to their file. `None` if missing.
pub fn resolve(tree: &Tree, path: &str) -> Option<ArchivePath> {
    traced(tree, path, &mut Vec::new())
}

/// `resolve`, also recording every symlink it went through, so the same path can be
/// rebuilt in another tree (pulling a library out of a package keeps its links).
pub fn traced(tree: &Tree, path: &str, trace: &mut Vec<ArchivePath>) -> Option<ArchivePath> {
    match walk(tree, path, trace) {
        Walk::Found(path) => Some(path),
        Walk::Missing(_) | Walk::Broken => None,
    }
}

/// Like `resolve`, but a missing component is kept as written (with everything after
/// it) instead of failing: where a path *would* land in the tree, merged-/usr links
/// included. Returns `None` only for a symlink loop or a path that leaves the root.
pub fn lenient(tree: &Tree, path: &str) -> Option<ArchivePath> {
    match walk(tree, path, &mut Vec::new()) {
        Walk::Found(path) | Walk::Missing(path) => Some(path),
        Walk::Broken => None,
    }
}

enum Walk {
    Found(ArchivePath),
    /// The first missing component, resolved up to it, with the rest as written.
    Missing(ArchivePath),
    /// A loop, or a path that cannot be named.
    Broken,
}

/// One pass over the components, each looked up once: linear in the path's length
/// (and the links followed), whatever the tree holds.
fn walk(tree: &Tree, path: &str, trace: &mut Vec<ArchivePath>) -> Walk {
    let mut pending: Vec<String> = path
        .split('/')
        .filter(|part| !part.is_empty())
        .rev()
        .map(str::to_string)
        .collect();
    let mut resolved: Vec<String> = Vec::new();
    let mut hops = 0;
    let named = |parts: &[String]| ArchivePath::new(&parts.join("/")).ok();
    while let Some(part) = pending.pop() {
        match part.as_str() {
            "." => continue,
            ".." => {
                resolved.pop();
                continue;
            }
            _ => {}
        }
        resolved.push(part);
        let Some(current) = named(&resolved) else {
            return Walk::Broken;
        };
        let Some(node) = tree.get(&current) else {
            resolved.extend(pending.into_iter().rev());
            return named(&resolved).map_or(Walk::Broken, Walk::Missing);
        };
        match &node.kind {
            Kind::Symlink(target) => {
                hops += 1;
                if hops > MAX_HOPS {
                    return Walk::Broken;
                }
                trace.push(current.clone());
                resolved.pop();
                if target.starts_with('/') {
                    resolved.clear();
                }
                pending.extend(
                    target
                        .split('/')
                        .filter(|part| !part.is_empty())
                        .rev()
                        .map(str::to_string),
                );
            }
            Kind::HardLink(file) if pending.is_empty() => {
                trace.push(current.clone());
                return Walk::Found(file.clone());
            }
            _ => {}
        }
    }
    named(&resolved).map_or(Walk::Broken, Walk::Found)
}

/// The tree as directories of names, for many resolutions in a row (a whole-image
/// check): each component is one hash lookup, so a walk costs the length of the path
/// and the links it follows, not that times the path's depth. A walk reads at most
/// `WALK_BUDGET` bytes of components, links included, and is taken for a loop past it.
pub struct Index<'a> {
    entries: Vec<(&'a ArchivePath, &'a Node)>,
    /// (parent entry, name) → entry; entry 0 is the root.
    children: std::collections::HashMap<(usize, &'a str), usize>,
}

/// Bytes of path components one `Index` walk may read (16 × PATH_MAX).
const WALK_BUDGET: usize = 16 * 4096;

/// Where an `Index` walk ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Walked {
    Found(ArchivePath),
    /// The first missing component, resolved up to it, with the rest as written.
    Missing(ArchivePath),
    /// A loop, a walk over budget, or the root itself.
    Broken,
}

impl<'a> Index<'a> {
    pub fn new(tree: &'a Tree) -> Index<'a> {
        let mut entries = Vec::with_capacity(tree.len());
        let mut children = std::collections::HashMap::with_capacity(tree.len());
        let mut ids: std::collections::HashMap<&'a str, usize> =
            std::collections::HashMap::with_capacity(tree.len());
        for (path, node) in tree.iter() {
            let parent = match path.as_str().rsplit_once('/') {
                // A path whose parent is not an entry cannot be reached by a walk.
                Some((dir, _)) => match ids.get(dir) {
                    Some(&parent) => parent,
                    None => continue,
                },
                None => 0,
            };
            entries.push((path, node));
            let id = entries.len();
            children.insert((parent, path.file_name()), id);
            ids.insert(path.as_str(), id);
        }
        Index { entries, children }
    }

    /// The entry at a resolved path.
    pub fn node(&self, path: &ArchivePath) -> Option<&'a Node> {
        let mut id = 0;
        for part in path.as_str().split('/') {
            id = *self.children.get(&(id, part))?;
        }
        self.entries.get(id.checked_sub(1)?).map(|(_, node)| *node)
    }

    /// Resolves an absolute path as `resolve` does (`lenient`'s answer when missing).
    pub fn walk(&self, path: &str) -> Walked {
        let mut pending: Vec<&str> = path.split('/').rev().collect();
        let mut stack: Vec<usize> = Vec::new();
        let (mut hops, mut read) = (0, 0);
        while let Some(part) = pending.pop() {
            read += part.len() + 1;
            if read > WALK_BUDGET {
                return Walked::Broken;
            }
            match part {
                "" | "." => continue,
                ".." => {
                    stack.pop();
                    continue;
                }
                _ => {}
            }
            let parent = stack.last().copied().unwrap_or(0);
            let Some(&id) = self.children.get(&(parent, part)) else {
                let mut full = match parent {
                    0 => String::new(),
                    id => format!("{}/", self.entries[id - 1].0.as_str()),
                };
                full.push_str(part);
                for rest in pending.iter().rev() {
                    full.push('/');
                    full.push_str(rest);
                }
                return ArchivePath::new(&full).map_or(Walked::Broken, Walked::Missing);
            };
            match &self.entries[id - 1].1.kind {
                Kind::Symlink(target) => {
                    hops += 1;
                    if hops > MAX_HOPS {
                        return Walked::Broken;
                    }
                    if target.starts_with('/') {
                        stack.clear();
                    }
                    pending.extend(target.split('/').rev());
                }
                Kind::HardLink(file) if pending.iter().all(|part| part.is_empty()) => {
                    return Walked::Found(file.clone());
                }
                _ => stack.push(id),
            }
        }
        stack.last().map_or(Walked::Broken, |&id| {
            Walked::Found(self.entries[id - 1].0.clone())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::Meta;

    #[test]
    fn an_index_walk_agrees_with_resolve_and_lenient() {
        let mut tree = Tree::new();
        tree.dir("usr/lib/x", Meta::root(0o755), "t").unwrap();
        tree.file("usr/lib/x/libc.so.6", "x", Meta::root(0o644), "t")
            .unwrap();
        tree.symlink("lib", "usr/lib", "t").unwrap();
        tree.symlink("usr/lib/x/libc.so", "libc.so.6", "t").unwrap();
        tree.symlink("usr/lib/up", "../../lib/x", "t").unwrap();
        tree.symlink("loop", "loop", "t").unwrap();
        tree.symlink("gone", "/nowhere/else", "t").unwrap();
        let index = Index::new(&tree);
        for path in [
            "/lib/x/libc.so",
            "/lib/../lib/x/libc.so.6",
            "/usr/lib/up/libc.so",
            "/lib/x/missing",
            "/loop/x",
            "/gone/deeper",
            "/lib/x/libc.so.6/..",
            "/",
        ] {
            let walked = index.walk(path);
            let want = match (resolve(&tree, path), lenient(&tree, path)) {
                (Some(found), _) => Walked::Found(found),
                (None, Some(missing)) => Walked::Missing(missing),
                (None, None) => Walked::Broken,
            };
            assert_eq!(walked, want, "{path}");
        }
        let found = ArchivePath::new("usr/lib/x/libc.so.6").unwrap();
        assert!(matches!(
            index.node(&found).map(|node| &node.kind),
            Some(Kind::File(_))
        ));
    }
}
