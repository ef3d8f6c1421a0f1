//! The in-memory root filesystem: `Tree`, `Node`, `Kind`, `Meta`, `ArchivePath`, `Content`.
//!
//! Every stage of kiln describes the image here and every archive writer renders from here.
//! This module does no I/O beyond opening the content sources when a writer asks for bytes,
//! and it never looks at the host's users, clock or file times: a node's owner and mode are
//! always stated by whoever inserted it.

pub mod content;
pub mod resolve;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use content::Content;

/// Mode of directories that are created only because a child needed them.
pub const DEFAULT_DIR_MODE: u16 = 0o755;

/// A path inside the image: relative to `/`, normalised, non-empty, no `.`/`..`, no NUL.
///
/// It is the only way to name a path in the image. Construction fails on bad input
/// instead of rewriting it: `a/../b` is an error, not `b`. A leading `/`, repeated
/// slashes, `./` components and a trailing slash are accepted and dropped, because every
/// rootfs format writes them in one of those spellings.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ArchivePath(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("path is empty or names the root directory")]
    Empty,
    #[error("path contains a NUL byte")]
    Nul,
    #[error("path contains a '..' component")]
    DotDot,
    #[error("path is not valid UTF-8")]
    NotUtf8,
}

impl ArchivePath {
    pub fn new(text: &str) -> Result<ArchivePath, PathError> {
        if text.contains('\0') {
            return Err(PathError::Nul);
        }
        let mut parts = Vec::new();
        for part in text.split('/') {
            match part {
                "" | "." => {}
                ".." => return Err(PathError::DotDot),
                _ => parts.push(part),
            }
        }
        if parts.is_empty() {
            return Err(PathError::Empty);
        }
        Ok(ArchivePath(parts.join("/")))
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<ArchivePath, PathError> {
        let text = std::str::from_utf8(bytes).map_err(|_| PathError::NotUtf8)?;
        ArchivePath::new(text)
    }

    /// The path without a leading slash, as archive members are named.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn parent(&self) -> Option<ArchivePath> {
        self.0
            .rfind('/')
            .map(|slash| ArchivePath(self.0[..slash].to_string()))
    }

    pub fn file_name(&self) -> &str {
        match self.0.rfind('/') {
            Some(slash) => &self.0[slash + 1..],
            None => &self.0,
        }
    }

    pub fn join(&self, child: &str) -> Result<ArchivePath, PathError> {
        ArchivePath::new(&format!("{}/{}", self.0, child))
    }

    /// True when `self` is `other` or lies below it.
    pub fn starts_with(&self, other: &ArchivePath) -> bool {
        self.0 == other.0
            || (self.0.starts_with(&other.0) && self.0.as_bytes()[other.0.len()] == b'/')
    }
}

impl fmt::Display for ArchivePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "/{}", self.0)
    }
}

impl fmt::Debug for ArchivePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", format!("/{}", self.0))
    }
}

/// What a node is. The file-type bits of a mode are derived from this, never stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File(Content),
    Symlink(String),
    /// Another name for the regular file at the given path.
    HardLink(ArchivePath),
    CharDev {
        major: u32,
        minor: u32,
    },
    BlockDev {
        major: u32,
        minor: u32,
    },
    Fifo,
    Socket,
}

impl Kind {
    /// The `S_IFMT` bits for this kind (a hard link is a regular file).
    pub fn type_bits(&self) -> u32 {
        match self {
            Kind::Dir => 0o040000,
            Kind::File(_) | Kind::HardLink(_) => 0o100000,
            Kind::Symlink(_) => 0o120000,
            Kind::CharDev { .. } => 0o020000,
            Kind::BlockDev { .. } => 0o060000,
            Kind::Fifo => 0o010000,
            Kind::Socket => 0o140000,
        }
    }

    /// The first letter of `ls -l` for this kind.
    pub fn letter(&self) -> char {
        match self {
            Kind::Dir => 'd',
            Kind::File(_) => '-',
            Kind::HardLink(_) => 'h',
            Kind::Symlink(_) => 'l',
            Kind::CharDev { .. } => 'c',
            Kind::BlockDev { .. } => 'b',
            Kind::Fifo => 'p',
            Kind::Socket => 's',
        }
    }
}

/// Permission bits (including setuid, setgid and sticky) and numeric owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Meta {
    pub mode: u16,
    pub uid: u32,
    pub gid: u32,
}

impl Meta {
    /// `mode` keeps only the 12 permission bits; type bits are never stored here.
    pub fn new(mode: u32, uid: u32, gid: u32) -> Meta {
        Meta {
            mode: (mode & 0o7777) as u16,
            uid,
            gid,
        }
    }

    pub fn root(mode: u32) -> Meta {
        Meta::new(mode, 0, 0)
    }
}

/// One entry of the tree.
#[derive(Clone, Debug)]
pub struct Node {
    pub kind: Kind,
    pub meta: Meta,
    /// Who put it there, for conflict messages: `list.txt:12`, `busybox_1.35.deb`, ...
    pub origin: Arc<str>,
    /// Created only as the parent of something else; an explicit entry replaces it.
    pub implicit: bool,
    /// Modification time recorded in an archive that was read. Writers ignore it and use
    /// one time for every entry (see `archive::Options::mtime`).
    pub mtime: Option<u64>,
}

impl Node {
    pub fn new(kind: Kind, meta: Meta, origin: &str) -> Node {
        Node {
            kind,
            meta,
            origin: origin.into(),
            implicit: false,
            mtime: None,
        }
    }

    fn same_as(&self, other: &Node) -> bool {
        self.kind == other.kind && self.meta == other.meta
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    #[error("{path} already provided by {first}; {second} wants a different entry")]
    Conflict {
        path: ArchivePath,
        first: Arc<str>,
        second: Arc<str>,
    },
    #[error(
        "{path} ({origin}) needs {parent} to be a directory, but {parent} is {what} from {parent_origin}"
    )]
    ParentNotDir {
        path: ArchivePath,
        origin: Arc<str>,
        parent: ArchivePath,
        what: &'static str,
        parent_origin: Arc<str>,
    },
    #[error(
        "hard link {path} ({origin}) points at {target}, which is not a regular file in the image"
    )]
    BadHardLink {
        path: ArchivePath,
        origin: Arc<str>,
        target: ArchivePath,
    },
    #[error("{path} ({origin}) replaces a directory that still has entries below it, e.g. {child}")]
    Orphans {
        path: ArchivePath,
        origin: Arc<str>,
        child: ArchivePath,
    },
    #[error(transparent)]
    Path(#[from] PathError),
}

/// A bad path or a conflicting entry is input.
pub fn classify(cause: &(dyn std::error::Error + 'static)) -> Option<crate::error::Kind> {
    (cause.is::<TreeError>() || cause.is::<PathError>()).then_some(crate::error::Kind::Input)
}

/// The root filesystem: a map ordered byte-wise, so every parent precedes its children,
/// which is the order the kernel's initramfs unpacker and tar extractors need.
#[derive(Clone, Debug, Default)]
pub struct Tree {
    nodes: BTreeMap<ArchivePath, Node>,
}

impl Tree {
    pub fn new() -> Tree {
        Tree::default()
    }

    pub fn get(&self, path: &ArchivePath) -> Option<&Node> {
        self.nodes.get(path)
    }

    pub fn get_mut(&mut self, path: &ArchivePath) -> Option<&mut Node> {
        self.nodes.get_mut(path)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&ArchivePath, &Node)> {
        self.nodes.iter()
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&ArchivePath, &mut Node)> {
        self.nodes.iter_mut()
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Adds a node. Identical duplicates are no-ops, conflicting ones are errors naming
    /// both origins, and missing parents are created as 0755 0:0 directories.
    pub fn insert(&mut self, path: ArchivePath, node: Node) -> Result<(), TreeError> {
        self.make_parents(&path, &node.origin)?;
        match self.nodes.get(&path) {
            None => {}
            Some(old) if old.implicit && node.kind == Kind::Dir => {}
            Some(old) if old.same_as(&node) => return Ok(()),
            Some(old) => {
                return Err(TreeError::Conflict {
                    path,
                    first: old.origin.clone(),
                    second: node.origin,
                });
            }
        }
        self.nodes.insert(path, node);
        Ok(())
    }

    /// Adds or replaces a node: later inputs override earlier ones path by path.
    /// A directory replaced by a non-directory must not have children left below it.
    pub fn replace(&mut self, path: ArchivePath, node: Node) -> Result<(), TreeError> {
        self.make_parents(&path, &node.origin)?;
        if let Some(old) = self.nodes.get(&path) {
            if node.implicit {
                return Ok(());
            }
            if old.kind == Kind::Dir && node.kind != Kind::Dir {
                if let Some(child) = self.children_of(&path).next() {
                    return Err(TreeError::Orphans {
                        path: path.clone(),
                        origin: node.origin,
                        child: child.clone(),
                    });
                }
            }
        }
        self.nodes.insert(path, node);
        Ok(())
    }

    /// Merges `other` over `self`, path by path, in `other`'s order.
    pub fn overlay(&mut self, other: Tree) -> Result<(), TreeError> {
        for (path, node) in other.nodes {
            self.replace(path, node)?;
        }
        Ok(())
    }

    pub fn remove(&mut self, path: &ArchivePath) -> Option<Node> {
        self.nodes.remove(path)
    }

    fn children_of<'a>(&'a self, dir: &'a ArchivePath) -> impl Iterator<Item = &'a ArchivePath> {
        self.nodes
            .range::<ArchivePath, _>((std::ops::Bound::Excluded(dir), std::ops::Bound::Unbounded))
            .map(|(path, _)| path)
            .take_while(move |path| path.starts_with(dir))
    }

    fn make_parents(&mut self, path: &ArchivePath, origin: &Arc<str>) -> Result<(), TreeError> {
        let mut missing = Vec::new();
        let mut cursor = path.parent();
        while let Some(parent) = cursor {
            match self.nodes.get(&parent) {
                Some(node) if node.kind == Kind::Dir => break,
                Some(node) => {
                    return Err(TreeError::ParentNotDir {
                        path: path.clone(),
                        origin: origin.clone(),
                        what: kind_name(&node.kind),
                        parent_origin: node.origin.clone(),
                        parent,
                    });
                }
                None => {
                    cursor = parent.parent();
                    missing.push(parent);
                }
            }
        }
        for parent in missing {
            let mut node = Node::new(Kind::Dir, Meta::root(DEFAULT_DIR_MODE.into()), origin);
            node.implicit = true;
            self.nodes.insert(parent, node);
        }
        Ok(())
    }

    /// Checks what writers rely on: every hard link names a regular file.
    pub fn validate(&self) -> Result<(), TreeError> {
        for (path, node) in &self.nodes {
            if let Kind::HardLink(target) = &node.kind {
                match self.nodes.get(target) {
                    Some(Node {
                        kind: Kind::File(_),
                        ..
                    }) => {}
                    _ => {
                        return Err(TreeError::BadHardLink {
                            path: path.clone(),
                            origin: node.origin.clone(),
                            target: target.clone(),
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// Groups of names sharing one inode: for each regular file with hard links, the
    /// file's own path followed by its links, all in tree order.
    pub fn link_groups(&self) -> BTreeMap<ArchivePath, Vec<ArchivePath>> {
        let mut groups: BTreeMap<ArchivePath, Vec<ArchivePath>> = BTreeMap::new();
        for (path, node) in &self.nodes {
            if let Kind::HardLink(target) = &node.kind {
                groups
                    .entry(target.clone())
                    .or_insert_with(|| vec![target.clone()])
                    .push(path.clone());
            }
        }
        for names in groups.values_mut() {
            names.sort();
        }
        groups
    }

    // Constructors that read like s6-linux-init-maker's auto_* helpers.

    pub fn dir(&mut self, path: &str, meta: Meta, origin: &str) -> Result<(), TreeError> {
        self.insert(path_or_panic(path), Node::new(Kind::Dir, meta, origin))
    }

    pub fn file(
        &mut self,
        path: &str,
        bytes: impl Into<Vec<u8>>,
        meta: Meta,
        origin: &str,
    ) -> Result<(), TreeError> {
        let kind = Kind::File(Content::inline(bytes));
        self.insert(path_or_panic(path), Node::new(kind, meta, origin))
    }

    #[cfg(test)]
    pub fn symlink(&mut self, path: &str, target: &str, origin: &str) -> Result<(), TreeError> {
        let kind = Kind::Symlink(target.to_string());
        self.insert(
            path_or_panic(path),
            Node::new(kind, Meta::root(0o777), origin),
        )
    }

    pub fn fifo(&mut self, path: &str, meta: Meta, origin: &str) -> Result<(), TreeError> {
        self.insert(path_or_panic(path), Node::new(Kind::Fifo, meta, origin))
    }

    #[cfg(test)]
    pub fn char_dev(
        &mut self,
        path: &str,
        major: u32,
        minor: u32,
        meta: Meta,
        origin: &str,
    ) -> Result<(), TreeError> {
        let kind = Kind::CharDev { major, minor };
        self.insert(path_or_panic(path), Node::new(kind, meta, origin))
    }
}

/// For the constructors above, whose paths are literals or built from validated parts.
fn path_or_panic(path: &str) -> ArchivePath {
    match ArchivePath::new(path) {
        Ok(path) => path,
        Err(err) => panic!("invalid literal image path {path:?}: {err}"),
    }
}

pub fn kind_name(kind: &Kind) -> &'static str {
    match kind {
        Kind::Dir => "a directory",
        Kind::File(_) => "a regular file",
        Kind::HardLink(_) => "a hard link",
        Kind::Symlink(_) => "a symlink",
        Kind::CharDev { .. } => "a character device",
        Kind::BlockDev { .. } => "a block device",
        Kind::Fifo => "a fifo",
        Kind::Socket => "a socket",
    }
}

/// `drwxr-xr-x` style string for a kind and permission bits.
pub fn mode_string(kind: &Kind, mode: u16) -> String {
    let mut out = String::with_capacity(10);
    out.push(match kind {
        Kind::HardLink(_) => '-',
        other => other.letter(),
    });
    let bits = [
        (0o400, 'r'),
        (0o200, 'w'),
        (0o100, 'x'),
        (0o040, 'r'),
        (0o020, 'w'),
        (0o010, 'x'),
        (0o004, 'r'),
        (0o002, 'w'),
        (0o001, 'x'),
    ];
    for (index, (bit, letter)) in bits.iter().enumerate() {
        let set = mode & bit != 0;
        let special = match index {
            2 => Some((0o4000, 's')),
            5 => Some((0o2000, 's')),
            8 => Some((0o1000, 't')),
            _ => None,
        };
        let ch = match special {
            Some((special_bit, special_letter)) if mode & special_bit != 0 => {
                if set {
                    special_letter
                } else {
                    special_letter.to_ascii_uppercase()
                }
            }
            _ if set => *letter,
            _ => '-',
        };
        out.push(ch);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_path_normalises_and_rejects() {
        let ok = |text: &str| ArchivePath::new(text).map(|p| p.as_str().to_string());
        assert_eq!(ok("/dev//console/"), Ok("dev/console".to_string()));
        assert_eq!(ok("./etc/./passwd"), Ok("etc/passwd".to_string()));
        assert_eq!(ok("/"), Err(PathError::Empty));
        assert_eq!(ok(""), Err(PathError::Empty));
        assert_eq!(ok("a/../b"), Err(PathError::DotDot));
        assert_eq!(ok("a\0b"), Err(PathError::Nul));
        assert_eq!(ok("..."), Ok("...".to_string()));
    }

    #[test]
    fn parents_come_first_and_are_implicit() {
        let mut tree = Tree::new();
        tree.file("usr/bin/x", "x", Meta::root(0o755), "t").unwrap();
        let paths: Vec<_> = tree
            .iter()
            .map(|(p, n)| (p.to_string(), n.implicit))
            .collect();
        assert_eq!(
            paths,
            vec![
                ("/usr".to_string(), true),
                ("/usr/bin".to_string(), true),
                ("/usr/bin/x".to_string(), false)
            ]
        );
        // An explicit directory replaces the implicit one.
        tree.dir("usr", Meta::root(0o700), "u").unwrap();
        let usr = tree.get(&ArchivePath::new("usr").unwrap()).unwrap();
        assert_eq!((usr.meta.mode, usr.implicit), (0o700, false));
    }

    #[test]
    fn duplicates() {
        let mut tree = Tree::new();
        tree.file("a", "1", Meta::root(0o644), "one").unwrap();
        tree.file("a", "1", Meta::root(0o644), "two").unwrap();
        let err = tree.file("a", "2", Meta::root(0o644), "three").unwrap_err();
        assert_eq!(
            err.to_string(),
            "/a already provided by one; three wants a different entry"
        );
        let err = tree
            .file("a/b", "2", Meta::root(0o644), "four")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "/a/b (four) needs /a to be a directory, but /a is a regular file from one"
        );
    }

    #[test]
    fn replace_refuses_orphans() {
        let mut tree = Tree::new();
        tree.file("d/f", "1", Meta::root(0o644), "one").unwrap();
        let node = Node::new(Kind::Fifo, Meta::root(0o600), "two");
        let err = tree
            .replace(ArchivePath::new("d").unwrap(), node)
            .unwrap_err();
        assert!(matches!(err, TreeError::Orphans { .. }), "{err}");
    }

    #[test]
    fn mode_strings() {
        assert_eq!(
            mode_string(&Kind::File(Content::inline("")), 0o4755),
            "-rwsr-xr-x"
        );
        assert_eq!(mode_string(&Kind::Dir, 0o2700), "drwx--S---");
        assert_eq!(mode_string(&Kind::Dir, 0o1777), "drwxrwxrwt");
        assert_eq!(mode_string(&Kind::Fifo, 0o600), "prw-------");
    }
}
