//! Where a file's bytes come from: inline, a host file, or a byte range of a spool file
//! (an archive member read once). Opened only when a writer asks for the bytes.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where a regular file's bytes come from. Each variant can name itself in an error.
#[derive(Clone)]
pub enum Content {
    Inline(Arc<[u8]>),
    /// A file on the build host, read when the archive is written. `len` was taken when
    /// the node was made; a file that changes size in between is an error, not a
    /// silently corrupt archive.
    Host {
        path: PathBuf,
        len: u64,
    },
    /// A member of another archive, kept as a byte range of a spool file.
    Member {
        spool: Arc<Spool>,
        offset: u64,
        len: u64,
        name: String,
    },
}

impl Content {
    pub fn inline(bytes: impl Into<Vec<u8>>) -> Content {
        Content::Inline(bytes.into().into())
    }

    pub fn len(&self) -> u64 {
        match self {
            Content::Inline(bytes) => bytes.len() as u64,
            Content::Host { len, .. } | Content::Member { len, .. } => *len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Streams the bytes; the caller checks the length it gets against `len()`.
    pub fn open(&self) -> io::Result<Box<dyn Read + '_>> {
        match self {
            Content::Inline(bytes) => Ok(Box::new(&bytes[..])),
            Content::Host { path, .. } => {
                let file = File::open(path).map_err(|err| {
                    io::Error::new(
                        err.kind(),
                        format!("unable to open {}: {err}", path.display()),
                    )
                })?;
                Ok(Box::new(file))
            }
            Content::Member {
                spool, offset, len, ..
            } => Ok(Box::new(RangeReader {
                file: &spool.file,
                position: *offset,
                end: offset + len,
            })),
        }
    }

    /// Reads everything into memory; for small files such as scripts and /etc/passwd.
    pub fn read_all(&self) -> io::Result<Vec<u8>> {
        let mut bytes = Vec::with_capacity(self.len() as usize);
        self.open()?.read_to_end(&mut bytes)?;
        Ok(bytes)
    }

    /// Where the bytes come from, for messages and listings.
    pub fn describe(&self) -> String {
        match self {
            Content::Inline(_) => "(generated)".to_string(),
            Content::Host { path, .. } => path.display().to_string(),
            Content::Member { spool, name, .. } => {
                format!("{}/{}", spool.origin.display(), name)
            }
        }
    }
}

impl PartialEq for Content {
    fn eq(&self, other: &Content) -> bool {
        match (self, other) {
            (Content::Inline(a), Content::Inline(b)) => a == b,
            (Content::Host { path: a, .. }, Content::Host { path: b, .. }) => a == b,
            (
                Content::Member {
                    spool: a,
                    offset: x,
                    ..
                },
                Content::Member {
                    spool: b,
                    offset: y,
                    ..
                },
            ) => Arc::ptr_eq(a, b) && x == y,
            _ => false,
        }
    }
}

impl Eq for Content {}

impl fmt::Debug for Content {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Content({}, {} bytes)", self.describe(), self.len())
    }
}

/// A file holding the (decompressed) bytes of an archive that members point into.
/// For an uncompressed archive it is the archive itself; otherwise an unlinked temp file.
pub struct Spool {
    pub origin: PathBuf,
    file: File,
}

impl Spool {
    pub fn new(origin: &Path, file: File) -> Spool {
        Spool {
            origin: origin.to_path_buf(),
            file,
        }
    }
}

struct RangeReader<'a> {
    file: &'a File,
    position: u64,
    end: u64,
}

impl Read for RangeReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = buf.len().min((self.end - self.position) as usize);
        if want == 0 {
            return Ok(0);
        }
        let got = self.file.read_at(&mut buf[..want], self.position)?;
        self.position += got as u64;
        Ok(got)
    }
}
