//! Reading any cpio newc or tar archive, compressed or not, back into a `Tree`.
//!
//! Compression is detected by magic, never by name. Like the kernel, the cpio reader
//! accepts several archives one after another, each possibly compressed differently
//! (early-microcode style: a plain cpio followed by a gzip one), with NUL padding between.
//! File bodies are copied once into an unlinked spool file and referenced by offset, so a
//! member is streamed when it is used and never held in memory.
//!
//! The input is someone else's: every length it claims is checked against [`limits`]
//! before anything is allocated, and every checksum it carries is verified. Each
//! compressed stream is decoded to its very end, so gzip's CRC-32 and length, xz's check
//! and zstd's frame checksum are always compared, and a stream cut anywhere is an error
//! rather than a shorter tree. Decoder complaints become `InvalidData` (or `UnexpectedEof`
//! for a cut stream); a failure to read the file itself keeps its own kind.

use std::fs::{self};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::Path;
use std::sync::Arc;

use super::limits::{self, in_entry, invalid, truncated};
use super::{Compression, Container, Format};
use crate::tree::content::{Content, Spool};
use crate::tree::{ArchivePath, Kind, Meta, Node, Tree};

/// An archive read back: its detected format and contents.
pub struct Archive {
    pub format: Format,
    pub tree: Tree,
}

/// Reads the archive at `path`. Errors are `io::Error`s whose message names the problem;
/// the caller adds the path.
pub fn read_file(path: &Path) -> io::Result<Archive> {
    let file = crate::host::input::open(path, false)?;
    // Absolute, so `kiln ls --list` locations work from any directory.
    let absolute = fs::canonicalize(path)?;
    read_stream(file, &absolute)
}

/// Reads an archive from any stream (a file, a member of a .deb). `origin` names it in
/// messages and in `Content::Member` locations.
pub fn read_stream(input: impl Read, origin: &Path) -> io::Result<Archive> {
    let spool_file =
        crate::host::temp::anonymous_file().map_err(crate::host::temp::TempError::into_io)?;
    let mut spool_writer = io::BufWriter::new(spool_file.try_clone()?);
    let spool = Arc::new(Spool::new(origin, spool_file));
    let mut offset = 0u64;
    let mut store = |body: &mut dyn Read, len: u64, name: &str| -> io::Result<Content> {
        let copied = io::copy(body, &mut spool_writer)?;
        if copied != len {
            return Err(cut_short(len, copied));
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
    let (format, tree) = read_with(input, origin, u64::MAX, &mut store)?;
    spool_writer.flush()?;
    Ok(Archive { format, tree })
}

/// What a container reader does with a file body of `len` bytes named `name`: consume it
/// and return the content to record. The reader checks afterwards that all `len` bytes
/// were there.
pub(crate) type Store<'a> = dyn FnMut(&mut dyn Read, u64, &str) -> io::Result<Content> + 'a;

/// `read_stream` with the bodies going to `store`, and at most `max_decoded` bytes
/// decoded in all (past that, an error). For a .deb's control.tar, which is read only for
/// its `control` file.
pub(crate) fn read_with(
    input: impl Read,
    origin: &Path,
    max_decoded: u64,
    store: &mut Store<'_>,
) -> io::Result<(Format, Tree)> {
    let mut input = BufReader::with_capacity(1 << 16, Source(input));
    let mut target = Target {
        tree: Tree::new(),
        origin: origin.display().to_string().into(),
        store,
        name_bytes: 0,
    };
    let mut decoded_left = max_decoded;
    let mut format: Option<Format> = None;
    loop {
        skip_zeros(&mut input)?;
        let head = input.fill_buf()?;
        if head.is_empty() {
            break;
        }
        let compression = sniff_compression(head);
        let mut decoded = Budget {
            inner: decoder(compression, &mut input)?,
            left: &mut decoded_left,
            limit: max_decoded,
        };
        let container = sniff_container(decoded.fill_buf()?).ok_or_else(|| {
            invalid("not a cpio newc or tar archive (no cpio magic, no ustar header)")
        })?;
        if format.is_some_and(|seen| seen.container != container)
            || (container == Container::Tar && format.is_some())
        {
            return Err(invalid(
                "tar data after another archive segment; only cpio segments may be concatenated",
            ));
        }
        format.get_or_insert(Format::new(container, compression));
        match container {
            Container::Tar => {
                super::tar::read_into(&mut decoded, &mut target)?;
                // tar ends with zero blocks; whatever follows in the file belongs to
                // nobody. The compressed stream is still decoded to its end, because that
                // is where gzip and xz keep their checksums.
                if compression != Compression::None {
                    io::copy(&mut decoded, &mut io::sink())?;
                }
                break;
            }
            Container::Cpio => loop {
                // A compressed segment may itself hold several archives back to back.
                super::cpio::read_into(&mut decoded, &mut target)?;
                skip_zeros(&mut decoded)?;
                // At the end of the decoded stream this read reaches the trailer, so the
                // decoder has checked it.
                if decoded.fill_buf()?.is_empty() || compression == Compression::None {
                    break;
                }
            },
        }
    }
    let format = format.ok_or_else(|| invalid("empty file"))?;
    target
        .tree
        .validate()
        .map_err(|err| invalid(err.to_string()))?;
    Ok((format, target.tree))
}

/// Where the container readers put what they read: the tree, under limits, and the
/// bodies through the store.
pub(crate) struct Target<'a> {
    pub tree: Tree,
    /// Shared by every node, rather than a copy of the archive's name in each.
    origin: Arc<str>,
    store: &'a mut Store<'a>,
    /// Bytes of paths and link targets added so far (see `limits::TREE_NAME_BYTES`).
    name_bytes: u64,
}

impl Target<'_> {
    /// Consumes the body of entry `name`, `len` bytes, and fails unless all were there.
    pub fn store(&mut self, body: &mut dyn Read, len: u64, name: &str) -> io::Result<Content> {
        let mut body = body.take(len);
        let content = (self.store)(&mut body, len, name).map_err(|err| in_entry(name, err))?;
        drain(&mut body, len).map_err(|err| in_entry(name, err))?;
        Ok(content)
    }

    /// Adds (or replaces) the node for entry `name`, within the tree limits.
    pub fn put(
        &mut self,
        path: ArchivePath,
        kind: Kind,
        meta: Meta,
        mtime: Option<u64>,
        name: &str,
    ) -> io::Result<()> {
        let link_len = match &kind {
            Kind::Symlink(target) => target.len(),
            Kind::HardLink(target) => target.as_str().len(),
            _ => 0,
        };
        let path_len = path.as_str().len();
        let node = Node {
            kind,
            meta,
            origin: Arc::clone(&self.origin),
            implicit: false,
            mtime,
        };
        let before = self.tree.len();
        self.tree
            .replace(path, node)
            .map_err(|err| invalid(err.to_string()))?;
        // The new nodes are the path and the parents it implied, each no longer than it.
        let added = self.tree.len().saturating_sub(before) as u64;
        self.name_bytes += added * path_len as u64 + link_len as u64;
        if self.tree.len() > limits::TREE_PATHS {
            let limit = limits::TREE_PATHS;
            let what = format!("the archive makes more than {limit} paths, the limit");
            return Err(in_entry(name, invalid(what)));
        }
        if self.name_bytes > limits::TREE_NAME_BYTES {
            let limit = limits::describe(limits::TREE_NAME_BYTES);
            let what = format!("the archive's paths and link targets exceed {limit}");
            return Err(in_entry(name, invalid(what)));
        }
        Ok(())
    }
}

/// Reads and discards the rest of `body`, which should hold `len` bytes in all; fails if
/// it ends early.
pub(crate) fn drain<R: Read>(body: &mut io::Take<R>, len: u64) -> io::Result<()> {
    io::copy(body, &mut io::sink())?;
    match body.limit() {
        0 => Ok(()),
        missing => Err(cut_short(len, len - missing)),
    }
}

/// Reads until `buf` is full or the input ends, and says how many bytes it got.
pub(crate) fn read_full<R: Read + ?Sized>(input: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match input.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(got)
}

/// "truncated: expected 100 bytes, got 3".
pub(crate) fn cut_short(expected: u64, got: u64) -> io::Error {
    truncated(format!("truncated: expected {expected} bytes, got {got}"))
}

/// The decoder for one compressed segment of `input`, or `input` itself.
fn decoder<'a>(
    compression: Compression,
    input: &'a mut dyn BufRead,
) -> io::Result<Box<dyn BufRead + 'a>> {
    let (stream, what): (Box<dyn Read + 'a>, &'static str) = match compression {
        Compression::None => return Ok(Box::new(input)),
        // Checks CRC-32 and ISIZE once it reaches the trailer; one member only.
        Compression::Gzip => (Box::new(flate2::bufread::GzDecoder::new(input)), "gzip"),
        Compression::Zstd => {
            let mut decoder = zstd::stream::read::Decoder::with_buffer(input)?;
            decoder.window_log_max(limits::ZSTD_WINDOW_LOG)?;
            (Box::new(decoder.single_frame()), "zstd")
        }
        Compression::Xz => {
            // Multithreaded when the stream has several blocks (dpkg-deb writes
            // them: a kernel package decodes in about half the time on 2 cores).
            let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
            let stream = liblzma::stream::MtStreamBuilder::new()
                .threads(u32::try_from(threads).unwrap_or(1))
                .memlimit_threading(limits::XZ_MEMORY)
                .memlimit_stop(limits::XZ_MEMORY)
                .decoder()
                .map_err(io::Error::other)?;
            let decoder = liblzma::bufread::XzDecoder::new_stream(input, stream);
            (Box::new(decoder), "xz")
        }
    };
    Ok(Box::new(BufReader::new(Decoded { stream, what })))
}

/// The archive file itself, whose read errors are tagged so that `Decoded` can tell
/// them from the decoder's own complaints about the data.
struct Source<R>(R);

#[derive(Debug)]
struct SourceFailed(io::Error);

impl std::fmt::Display for SourceFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for SourceFailed {}

impl<R: Read> Read for Source<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0
            .read(buf)
            .map_err(|err| io::Error::new(err.kind(), SourceFailed(err)))
    }
}

/// A decoder whose errors are the data's fault (`InvalidData`, or `UnexpectedEof` when the
/// stream is cut), except read errors of the file itself, which pass through.
struct Decoded<'a> {
    stream: Box<dyn Read + 'a>,
    what: &'static str,
}

impl Read for Decoded<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.stream.read(buf).map_err(|err| {
            let inner = err.get_ref();
            if inner.is_some_and(|inner| inner.is::<SourceFailed>()) {
                return err;
            }
            let what = self.what;
            let memory = inner
                .and_then(|inner| inner.downcast_ref::<liblzma::stream::Error>())
                .is_some_and(|inner| matches!(inner, liblzma::stream::Error::MemLimit));
            if memory {
                invalid(format!(
                    "{what} data needs more memory to decode than {}",
                    limits::describe(limits::XZ_MEMORY)
                ))
            } else if err.kind() == io::ErrorKind::UnexpectedEof {
                truncated(format!("{what} data is cut short ({err})"))
            } else {
                invalid(format!("corrupt {what} data ({err})"))
            }
        })
    }
}

/// A decoded stream that may yield at most `limit` bytes (shared by every segment).
struct Budget<'a> {
    inner: Box<dyn BufRead + 'a>,
    left: &'a mut u64,
    limit: u64,
}

impl Read for Budget<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for Budget<'_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        let left = *self.left;
        let limit = self.limit;
        let buf = self.inner.fill_buf()?;
        if left == 0 && !buf.is_empty() {
            return Err(invalid(format!(
                "decodes to more than {}",
                limits::describe(limit)
            )));
        }
        Ok(&buf[..buf.len().min(usize::try_from(left).unwrap_or(usize::MAX))])
    }

    fn consume(&mut self, amount: usize) {
        *self.left -= amount as u64;
        self.inner.consume(amount);
    }
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::archive::{Options, compress};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A directory, a file and a symlink: what every format holds.
    pub(crate) fn small_tree() -> Tree {
        let mut tree = Tree::new();
        tree.dir("etc", Meta::root(0o755), "t").unwrap();
        tree.file("etc/hello", "hello, world\n", Meta::root(0o644), "t")
            .unwrap();
        tree.symlink("sh", "bin/busybox", "t").unwrap();
        tree
    }

    /// `tree` as kiln writes it in `format`.
    pub(crate) fn written(tree: &Tree, format: Format) -> Vec<u8> {
        let options = Options {
            mtime: 0,
            threads: 1,
            ..Options::default()
        };
        crate::archive::write(tree, format, Vec::new(), &options).unwrap()
    }

    pub(crate) fn compressed(bytes: &[u8], compression: Compression) -> Vec<u8> {
        let mut writer = compress::Writer::new(Vec::new(), compression, 1).unwrap();
        writer.write_all(bytes).unwrap();
        writer.finish().unwrap()
    }

    /// What `kiln ls FILE` says of `bytes` stored as `file_name`: its exit status and
    /// message, with the scratch directory taken out of the message.
    pub(crate) fn refusal(file_name: &str, bytes: &[u8]) -> (u8, String) {
        static SCRATCH: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "kiln-read-test-{}-{}",
            std::process::id(),
            SCRATCH.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join(file_name);
        fs::write(&path, bytes).unwrap();
        let result = crate::listing::read(&path);
        fs::remove_dir_all(&dir).unwrap();
        let err = match result {
            Ok(_) => panic!("{file_name} was read without an error"),
            Err(err) => err,
        };
        let message = format!("{err:#}").replace(&format!("{}/", dir.display()), "");
        (crate::error::exit_code(&err, &crate::CLASSIFIERS), message)
    }

    pub(crate) fn refused(file_name: &str, bytes: &[u8], message: &str) {
        assert_eq!(
            refusal(file_name, bytes),
            (crate::error::EXIT_INPUT, message.to_string()),
            "{file_name}"
        );
    }

    fn format(name: &str) -> Format {
        Format::from_name(name).unwrap()
    }

    #[test]
    fn archives_kiln_writes_read_back_identically() {
        let tree = small_tree();
        let want = crate::listing::manifest(&tree).unwrap();
        for (name, format) in crate::archive::FORMATS {
            let bytes = written(&tree, format);
            let archive = read_stream(&bytes[..], Path::new(name)).unwrap();
            assert_eq!(archive.format, format, "{name}");
            assert_eq!(
                crate::listing::manifest(&archive.tree).unwrap(),
                want,
                "{name}"
            );
        }
    }

    #[test]
    fn a_gzip_crc_or_length_that_does_not_match_is_refused() {
        for name in ["tar.gz", "cpio.gz"] {
            let good = written(&small_tree(), format(name));
            // The trailer: CRC-32, then the length modulo 2^32 (ISIZE).
            for from_end in [8, 1] {
                let mut bad = good.clone();
                let at = bad.len() - from_end;
                bad[at] ^= 0x55;
                refused(
                    &format!("x.{name}"),
                    &bad,
                    &format!(
                        "unable to read archive x.{name}: corrupt gzip data (corrupt gzip stream does not have a matching checksum)"
                    ),
                );
            }
        }
    }

    #[test]
    fn a_cut_gzip_trailer_is_refused() {
        for name in ["tar.gz", "cpio.gz"] {
            let good = written(&small_tree(), format(name));
            for cut in [1, 4, 8] {
                refused(
                    &format!("x.{name}"),
                    &good[..good.len() - cut],
                    &format!(
                        "unable to read archive x.{name}: gzip data is cut short (unexpected end of file)"
                    ),
                );
            }
        }
    }

    #[test]
    fn a_cut_xz_tail_is_refused() {
        for name in ["tar.xz", "cpio.xz"] {
            let good = written(&small_tree(), format(name));
            // The stream footer (12 bytes), then the index and the block's check.
            for cut in [1, 12, 20] {
                refused(
                    &format!("x.{name}"),
                    &good[..good.len() - cut],
                    &format!(
                        "unable to read archive x.{name}: xz data is cut short (premature eof)"
                    ),
                );
            }
        }
    }

    #[test]
    fn a_cut_or_corrupt_zstd_frame_is_refused() {
        for name in ["tar.zst", "cpio.zst"] {
            let good = written(&small_tree(), format(name));
            for cut in [1, 4, 6] {
                refused(
                    &format!("x.{name}"),
                    &good[..good.len() - cut],
                    &format!(
                        "unable to read archive x.{name}: zstd data is cut short (incomplete frame)"
                    ),
                );
            }
            // The last 4 bytes are the frame's checksum (kiln always writes one).
            let mut bad = good.clone();
            let at = bad.len() - 2;
            bad[at] ^= 0x55;
            refused(
                &format!("x.{name}"),
                &bad,
                &format!(
                    "unable to read archive x.{name}: corrupt zstd data (Restored data doesn't match checksum)"
                ),
            );
        }
    }

    /// An xz block may declare a dictionary of up to 4 GiB, which liblzma would allocate
    /// (and fill) as told. Here a valid stream's dictionary is raised to that in its block
    /// header, whose CRC-32 is then fixed up.
    #[test]
    fn an_xz_stream_asking_for_too_much_memory_is_refused() {
        const STREAM_HEADER: usize = 12;
        const LZMA2_FILTER_ID: u8 = 0x21;
        const LARGEST_DICTIONARY: u8 = 40;
        let mut xz = written(&small_tree(), format("tar.xz"));
        let block_header = STREAM_HEADER..STREAM_HEADER + (usize::from(xz[STREAM_HEADER]) + 1) * 4;
        // Size byte, flags, then the optional compressed and uncompressed sizes
        // (variable-length integers, whose bytes below the last have the top bit set).
        let flags = xz[STREAM_HEADER + 1];
        let mut at = STREAM_HEADER + 2;
        for present in [flags & 0x40 != 0, flags & 0x80 != 0] {
            if present {
                while xz[at] & 0x80 != 0 {
                    at += 1;
                }
                at += 1;
            }
        }
        // The one filter: its id, the size of its properties (1), the dictionary code.
        assert_eq!((xz[at], xz[at + 1]), (LZMA2_FILTER_ID, 1));
        xz[at + 2] = LARGEST_DICTIONARY;
        let crc_at = block_header.end - 4;
        let mut crc = flate2::Crc::new();
        crc.update(&xz[block_header.start..crc_at]);
        xz[crc_at..block_header.end].copy_from_slice(&crc.sum().to_le_bytes());
        refused(
            "x.tar.xz",
            &xz,
            "unable to read archive x.tar.xz: xz data needs more memory to decode than the 128 MiB limit",
        );
    }

    #[test]
    fn decoding_stops_at_the_budget() {
        let mut tree = Tree::new();
        tree.file("big", vec![b'x'; 4000], Meta::root(0o644), "t")
            .unwrap();
        let bytes = written(&tree, format("tar.gz"));
        let mut ignore = |body: &mut dyn Read, _: u64, _: &str| -> io::Result<Content> {
            io::copy(body, &mut io::sink())?;
            Ok(Content::inline(Vec::new()))
        };
        let err = read_with(&bytes[..], Path::new("x"), 3000, &mut ignore)
            .err()
            .unwrap();
        assert_eq!(
            (err.kind(), err.to_string()),
            (
                io::ErrorKind::InvalidData,
                "entry \"big\": decodes to more than the 3000-byte limit".to_string()
            )
        );
    }
}
