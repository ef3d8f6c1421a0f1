//! Rendering a `Tree` to cpio newc or tar, compressed or not, and reading archives back.
//!
//! The encoders (`cpio::write`, `tar::write`, `compress`) only write to a caller-supplied
//! `impl Write`; `write_file` is the one place that touches the output path, through a
//! temporary file renamed into place, so a failed run never leaves a partial archive.

pub mod compress;
pub mod cpio;
pub mod limits;
pub mod read;
pub mod tar;

use std::fmt;
use std::io::{self, BufWriter, Read, Write};
use std::path::Path;

use crate::host::progress::{self, Counted};
use crate::host::temp::{TempError, TempFile};
use crate::tree::{ArchivePath, Tree, TreeError};

/// The mtime of every entry when `SOURCE_DATE_EPOCH` is unset: 2000-01-01T00:00:00Z.
/// A fixed, documented constant keeps builds reproducible; zero would make every listing
/// show 1970, which reads like a bug.
pub const DEFAULT_MTIME: u64 = 946_684_800;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Container {
    Cpio,
    Tar,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
    Xz,
}

/// An archive format: container plus compression, spelled like the file extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Format {
    pub container: Container,
    pub compression: Compression,
}

/// Every format, by the name used for `--format` and as the file extension.
pub const FORMATS: [(&str, Format); 8] = [
    ("cpio", Format::new(Container::Cpio, Compression::None)),
    ("cpio.gz", Format::new(Container::Cpio, Compression::Gzip)),
    ("cpio.zst", Format::new(Container::Cpio, Compression::Zstd)),
    ("cpio.xz", Format::new(Container::Cpio, Compression::Xz)),
    ("tar", Format::new(Container::Tar, Compression::None)),
    ("tar.gz", Format::new(Container::Tar, Compression::Gzip)),
    ("tar.zst", Format::new(Container::Tar, Compression::Zstd)),
    ("tar.xz", Format::new(Container::Tar, Compression::Xz)),
];

impl Format {
    pub const fn new(container: Container, compression: Compression) -> Format {
        Format {
            container,
            compression,
        }
    }

    pub fn from_name(name: &str) -> Option<Format> {
        FORMATS
            .iter()
            .find(|(known, _)| *known == name)
            .map(|(_, format)| *format)
    }

    /// The format named by a path's extension (`initrd.cpio.gz`, `rootfs.tar`).
    pub fn from_path(path: &Path) -> Option<Format> {
        let name = path.file_name()?.to_str()?;
        FORMATS
            .iter()
            .rev()
            .filter(|(ext, _)| {
                name.len() > ext.len() + 1
                    && name.ends_with(ext)
                    && name.as_bytes()[name.len() - ext.len() - 1] == b'.'
            })
            .map(|(_, format)| *format)
            .next()
    }

    pub fn name(&self) -> &'static str {
        FORMATS
            .iter()
            .find(|(_, format)| format == self)
            .map(|(name, _)| *name)
            .unwrap_or("?")
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How to render: one mtime for every entry, the compressor's thread count.
#[derive(Clone, Debug)]
pub struct Options {
    pub mtime: u64,
    /// Worker threads for compression. The output bytes never depend on it.
    pub threads: usize,
    /// uid → name and gid → name for tar's uname/gname; empty means numeric only.
    pub user_names: std::collections::BTreeMap<u32, String>,
    pub group_names: std::collections::BTreeMap<u32, String>,
}

impl Options {
    /// Fills uname/gname from the image's own /etc/passwd and /etc/group, never the
    /// host's; an image without them gets numeric owners only.
    pub fn with_image_names(mut self, tree: &Tree) -> Options {
        self.user_names = id_names(tree, "etc/passwd");
        self.group_names = id_names(tree, "etc/group");
        self
    }

    /// mtime from `SOURCE_DATE_EPOCH` when set, else `DEFAULT_MTIME`; threads from
    /// `KILN_THREADS` when set, else the number of CPUs.
    pub fn from_env() -> Result<Options, ArchiveError> {
        let mtime = match std::env::var("SOURCE_DATE_EPOCH") {
            Ok(text) => text
                .trim()
                .parse::<u64>()
                .map_err(|_| ArchiveError::BadEpoch(text.clone()))?,
            Err(_) => DEFAULT_MTIME,
        };
        let mut options = Options {
            mtime,
            ..Options::default()
        };
        // For tests and benchmarks: the output must not depend on it.
        if let Some(threads) = std::env::var("KILN_THREADS")
            .ok()
            .and_then(|text| text.parse::<usize>().ok())
        {
            options.threads = threads.max(1);
        }
        Ok(options)
    }
}

impl Default for Options {
    fn default() -> Options {
        Options {
            mtime: DEFAULT_MTIME,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            user_names: Default::default(),
            group_names: Default::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error(
        "{path}: {len} bytes is too large for cpio newc, which holds files below 4 GiB (note: use a tar format)"
    )]
    TooLarge { path: ArchivePath, len: u64 },
    #[error("{path}: {what} does not fit the {format} format{note}")]
    Unrepresentable {
        path: ArchivePath,
        what: String,
        format: &'static str,
        /// Empty, or "\nnote: ..." with the next step.
        note: &'static str,
    },
    #[error(
        "{path}: source {source_name} changed while being archived: expected {expected} bytes, read {got}"
    )]
    ContentChanged {
        path: ArchivePath,
        source_name: String,
        expected: u64,
        got: u64,
    },
    #[error("SOURCE_DATE_EPOCH={0:?} is not a number of seconds")]
    BadEpoch(String),
    #[error(transparent)]
    Tree(#[from] TreeError),
    #[error(transparent)]
    Temp(#[from] TempError),
    /// Shows only the context: the io error is its source, which a chain shows once.
    #[error("{context}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
}

impl ArchiveError {
    pub fn io(context: impl Into<String>) -> impl FnOnce(io::Error) -> ArchiveError {
        let context = context.into();
        move |source| ArchiveError::Io { context, source }
    }

    /// True for errors in what the user asked for, as opposed to the system failing.
    pub fn is_input_error(&self) -> bool {
        match self {
            ArchiveError::Io { .. } => false,
            ArchiveError::Temp(temp) => !matches!(temp, TempError::Io { .. }),
            _ => true,
        }
    }
}

/// What the user asked a format to hold that it cannot, or a bad `SOURCE_DATE_EPOCH`,
/// is input; I/O is the system's.
pub fn classify(cause: &(dyn std::error::Error + 'static)) -> Option<crate::error::Kind> {
    cause.downcast_ref::<ArchiveError>().map(|err| {
        if err.is_input_error() {
            crate::error::Kind::Input
        } else {
            crate::error::Kind::System
        }
    })
}

/// Reads an archive file for a command: a file that is missing, a directory, or not a
/// readable archive (bad magic, truncated, corrupt, a bad entry) is bad input (100);
/// failing to read one is the system's (111). The message names the file.
pub fn read_path(path: &Path) -> anyhow::Result<read::Archive> {
    read::read_file(path)
        .map_err(|err| crate::error::io(format!("unable to read archive {}", path.display()), err))
}

/// The format of an output: `--format NAME` when given, else the output's extension.
pub fn output_format(output: &Path, format: Option<&str>) -> anyhow::Result<Format> {
    match format {
        Some(name) => Format::from_name(name).ok_or_else(|| {
            crate::error::input(format!(
                "--format {name:?}: unknown format (note: one of {})",
                FORMATS.map(|(name, _)| name).join(", ")
            ))
        }),
        None => Format::from_path(output).ok_or_else(|| {
            crate::error::input(format!(
                "{}: cannot tell the format from the name (note: end it in .cpio.gz, .tar, ... or pass --format)",
                output.display()
            ))
        }),
    }
}

/// `--format` names when given (repeatable), else the board's formats.
pub fn formats_or(names: &[String], default: &[Format]) -> anyhow::Result<Vec<Format>> {
    if names.is_empty() {
        return Ok(default.to_vec());
    }
    names
        .iter()
        .map(|name| output_format(Path::new(""), Some(name)))
        .collect()
}

/// Renders `tree` in `format` to any writer.
pub fn write<W: Write + Send + 'static>(
    tree: &Tree,
    format: Format,
    out: W,
    options: &Options,
) -> Result<W, ArchiveError> {
    tree.validate()?;
    let compressed = compress::Writer::new(out, format.compression, options.threads)
        .map_err(ArchiveError::io("unable to start the compressor"))?;
    let compressed = match format.container {
        Container::Cpio => cpio::write(tree, compressed, options)?,
        Container::Tar => tar::write(tree, compressed, options)?,
    };
    compressed
        .finish()
        .map_err(ArchiveError::io("unable to finish compressing"))
}

/// Renders `tree` to `dest` through a temporary file beside it that is renamed into
/// place only when everything succeeded.
pub fn write_file(
    tree: &Tree,
    format: Format,
    dest: &Path,
    options: &Options,
) -> Result<(), ArchiveError> {
    let temp = TempFile::create(dest)?;
    let file = temp.file.try_clone().map_err(ArchiveError::io(format!(
        "unable to write {}",
        temp.path.display()
    )))?;
    let bar = progress::spinner(&format!("writing {}", dest.display()));
    let counted = Counted {
        inner: file,
        bar: bar.0.clone(),
    };
    let writer = write(
        tree,
        format,
        BufWriter::with_capacity(1 << 20, counted),
        options,
    )?;
    drop(bar);
    writer
        .into_inner()
        .map_err(|err| err.into_error())
        .and_then(|counted| counted.inner.sync_all())
        .map_err(ArchiveError::io(format!(
            "unable to write {}",
            temp.path.display()
        )))?;
    Ok(temp.commit(dest)?)
}

/// id → name from a passwd- or group-format file in the tree (first entry wins).
fn id_names(tree: &Tree, file: &str) -> std::collections::BTreeMap<u32, String> {
    let mut names = std::collections::BTreeMap::new();
    let path = ArchivePath::new(file).expect("literal");
    let Some(crate::tree::Node {
        kind: crate::tree::Kind::File(content),
        ..
    }) = tree.get(&path)
    else {
        return names;
    };
    // An unreadable file, or one larger than any real passwd (it is read whole), gives
    // no names: tar keeps the numeric ids, which are what count.
    if content.len() > 1 << 20 {
        return names;
    }
    let bytes = content.read_all().unwrap_or_default();
    for entry in crate::passwd::parse(&bytes).0 {
        names
            .entry(entry.id)
            .or_insert_with(|| String::from_utf8_lossy(&entry.name).into_owned());
    }
    names
}

/// Copies exactly `expected` bytes of a content source, failing on any mismatch.
pub(crate) fn copy_exact(
    path: &ArchivePath,
    content: &crate::tree::content::Content,
    out: &mut dyn Write,
) -> Result<(), ArchiveError> {
    let expected = content.len();
    let source_name = content.describe();
    let reader = content.open().map_err(ArchiveError::io(format!(
        "unable to read {source_name} for {path}"
    )))?;
    let got = io::copy(&mut Read::take(reader, expected + 1), out).map_err(ArchiveError::io(
        format!("unable to copy {source_name} into {path}"),
    ))?;
    if got != expected {
        return Err(ArchiveError::ContentChanged {
            path: path.clone(),
            source_name,
            expected,
            got,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_archive_file_has_the_bytes_of_the_archive_in_memory() {
        use crate::tree::content::Content;
        use crate::tree::{Kind, Meta, Node};
        let dir = std::env::temp_dir().join(format!("kiln-write-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // Larger than the write buffer, and an odd length so the padding follows it.
        let host = dir.join("big");
        let bytes: Vec<u8> = (0..(3 << 20) + 3)
            .map(|i: u32| (i * 7 % 251) as u8)
            .collect();
        std::fs::write(&host, &bytes).unwrap();
        let mut tree = Tree::new();
        let content = Content::Host {
            path: host.clone(),
            len: bytes.len() as u64,
        };
        tree.insert(
            ArchivePath::new("big").unwrap(),
            Node::new(Kind::File(content), Meta::root(0o644), "t"),
        )
        .unwrap();
        tree.file("small", "x", Meta::root(0o644), "t").unwrap();
        let options = Options::default();
        let format = Format::from_path(Path::new("x.cpio")).unwrap();
        let in_memory = write(&tree, format, Vec::new(), &options).unwrap();
        let file = dir.join("out.cpio");
        write_file(&tree, format, &file, &options).unwrap();
        assert!(std::fs::read(&file).unwrap() == in_memory);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn formats_from_paths() {
        let of = |p: &str| Format::from_path(Path::new(p)).map(|f| f.name());
        assert_eq!(of("out/initrd.cpio.gz"), Some("cpio.gz"));
        assert_eq!(of("rootfs.tar"), Some("tar"));
        assert_eq!(of("rootfs.tar.zst"), Some("tar.zst"));
        assert_eq!(of("x.cpio.xz"), Some("cpio.xz"));
        assert_eq!(of("x.gz"), None);
        assert_eq!(of(".cpio"), None);
        assert_eq!(of("notacpio"), None);
    }
}
