//! Reading any cpio newc or tar archive, compressed or not, back into a `Tree`.
//!
//! Compression is detected by magic, never by name. Like the kernel, the cpio reader
//! accepts several archives one after another, each possibly compressed differently
//! (early-microcode style: a plain cpio followed by a gzip one), with NUL padding between.
//! File bodies are copied once into an unlinked spool file and referenced by offset, so a
//! member is streamed when it is used and never held in memory.

use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::Path;
use std::sync::Arc;

use super::{Compression, Container, Format};
use crate::tree::Tree;
use crate::tree::content::{Content, Spool};

/// An archive read back: its detected format and contents.
pub struct Archive {
    pub format: Format,
    pub tree: Tree,
}

/// Reads the archive at `path`. Errors are `io::Error`s whose message names the problem;
/// the caller adds the path.
pub fn read_file(path: &Path) -> io::Result<Archive> {
    let file = File::open(path)?;
    // Absolute, so `kiln ls --list` locations work from any directory.
    let absolute = fs::canonicalize(path)?;
    read_stream(file, &absolute)
}

/// Reads an archive from any stream (a file, a member of a .deb). `origin` names it in
/// messages and in `Content::Member` locations.
pub fn read_stream(input: impl Read, origin: &Path) -> io::Result<Archive> {
    let path = origin;
    let mut input = BufReader::with_capacity(1 << 16, input);
    let spool_file =
        crate::host::temp::anonymous_file().map_err(crate::host::temp::TempError::into_io)?;
    let mut spool_writer = io::BufWriter::new(spool_file.try_clone()?);
    let spool = Arc::new(Spool::new(origin, spool_file));
    let mut offset = 0u64;
    let mut store = |body: &mut dyn Read, len: u64, name: &str| -> io::Result<Content> {
        let copied = io::copy(body, &mut spool_writer)?;
        if copied != len {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("member {name:?} is truncated"),
            ));
        }
        let content = Content::Member {
            spool: Arc::clone(&spool),
            offset,
            len,
            name: name.to_string(),
        };
        offset += len;
        Ok(content)
    };
    let origin = path.display().to_string();
    let mut tree = Tree::new();
    let mut format: Option<Format> = None;
    loop {
        skip_zeros(&mut input)?;
        let head = input.fill_buf()?;
        if head.is_empty() {
            break;
        }
        let compression = sniff_compression(head);
        let mut decoded: Box<dyn BufRead + '_> = match compression {
            Compression::None => Box::new(&mut input),
            Compression::Gzip => {
                Box::new(BufReader::new(flate2::bufread::GzDecoder::new(&mut input)))
            }
            Compression::Zstd => Box::new(BufReader::new(
                zstd::stream::read::Decoder::with_buffer(&mut input)?.single_frame(),
            )),
            Compression::Xz => {
                // Multithreaded when the stream has several blocks (dpkg-deb writes
                // them: a kernel package decodes in about half the time on 2 cores).
                let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
                let stream = liblzma::stream::MtStreamBuilder::new()
                    .threads(u32::try_from(threads).unwrap_or(1))
                    .memlimit_threading(1 << 30)
                    .memlimit_stop(u64::MAX)
                    .decoder()
                    .map_err(io::Error::other)?;
                Box::new(BufReader::new(liblzma::bufread::XzDecoder::new_stream(
                    &mut input, stream,
                )))
            }
        };
        let container = sniff_container(decoded.fill_buf()?).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "not a cpio newc or tar archive (no cpio magic, no ustar header)",
            )
        })?;
        if format.is_some_and(|seen| seen.container != container)
            || (container == Container::Tar && format.is_some())
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "tar data after another archive segment; only cpio segments may be concatenated",
            ));
        }
        format.get_or_insert(Format::new(container, compression));
        match container {
            Container::Tar => {
                super::tar::read_into(&mut decoded, &mut tree, &origin, &mut store)?;
                // tar ends with zero blocks; whatever follows belongs to nobody.
                break;
            }
            Container::Cpio => loop {
                // A compressed segment may itself hold several archives back to back.
                super::cpio::read_into(&mut *decoded, &mut tree, &origin, &mut store)?;
                skip_zeros(&mut *decoded)?;
                if decoded.fill_buf()?.is_empty() || compression == Compression::None {
                    break;
                }
            },
        }
    }
    spool_writer.flush()?;
    let format = format.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "empty file"))?;
    tree.validate()
        .map_err(|err| io::Error::new(io::ErrorKind::InvalidData, err.to_string()))?;
    Ok(Archive { format, tree })
}

pub fn sniff_compression(head: &[u8]) -> Compression {
    if head.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else if head.starts_with(b"\xfd7zXZ\0") {
        Compression::Xz
    } else {
        Compression::None
    }
}

/// True when the first bytes of a file (up to 512) look like an archive kiln reads:
/// compressed, or a cpio or tar header.
pub fn looks_like_archive(head: &[u8]) -> bool {
    sniff_compression(head) != Compression::None || sniff_container(head).is_some()
}

fn sniff_container(head: &[u8]) -> Option<Container> {
    if head.starts_with(b"07070") {
        Some(Container::Cpio)
    } else if head.len() >= 263 && &head[257..262] == b"ustar" {
        Some(Container::Tar)
    } else {
        None
    }
}

/// Skips NUL padding between concatenated segments.
fn skip_zeros(input: &mut dyn BufRead) -> io::Result<()> {
    loop {
        let buf = input.fill_buf()?;
        if buf.is_empty() {
            return Ok(());
        }
        let zeros = buf.iter().take_while(|&&b| b == 0).count();
        let done = zeros < buf.len();
        input.consume(zeros);
        if done {
            return Ok(());
        }
    }
}
