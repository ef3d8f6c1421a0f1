//! Path resolution inside a tree, as the target's kernel would resolve it: symlinks in
//! every component (merged-/usr links included), absolute targets from the image's
//! root, never the host's.

use super::{ArchivePath, Kind, Tree};

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
    let mut pending: Vec<String> = path
        .split('/')
        .filter(|part| !part.is_empty())
        .rev()
        .map(str::to_string)
        .collect();
    let mut resolved: Vec<String> = Vec::new();
    let mut hops = 0;
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
        let current = ArchivePath::new(&resolved.join("/")).ok()?;
        match &tree.get(&current)?.kind {
            Kind::Symlink(target) => {
                hops += 1;
                if hops > MAX_HOPS {
                    return None;
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
                return Some(file.clone());
            }
            _ => {}
        }
    }
    ArchivePath::new(&resolved.join("/")).ok()
}

/// Like `resolve`, but a missing component is kept as written (with everything after
/// it) instead of failing: where a path *would* land in the tree, merged-/usr links
/// included. Returns `None` only for a symlink loop or a path that leaves the root.
pub fn lenient(tree: &Tree, path: &str) -> Option<ArchivePath> {
    let parts: Vec<&str> = path.split('/').filter(|part| !part.is_empty()).collect();
    for existing in (1..=parts.len()).rev() {
        let prefix = parts[..existing].join("/");
        if let Some(resolved) = resolve(tree, &prefix) {
            let mut full = resolved.as_str().to_string();
            for rest in &parts[existing..] {
                full.push('/');
                full.push_str(rest);
            }
            return ArchivePath::new(&full).ok();
        }
    }
    ArchivePath::new(path).ok()
}
