//! Compressors whose output bytes depend only on the input, never on the thread count.
//!
//! gzip is compressed in parallel the way pigz does it: the input is cut into fixed 1 MiB
//! chunks, each chunk is deflated on its own with the previous chunk's last 32 KiB as
//! dictionary and ends in a sync flush, and the pieces are joined in order under one gzip
//! header with a combined CRC. The cut points are fixed, so one thread or eight produce the
//! same bytes. zstd and xz use their libraries' multithreaded encoders, which are
//! deterministic for a fixed job/block size; xz always uses the CRC32 check because the
//! kernel's decoder rejects CRC64.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;

use flate2::{Compress, Crc, FlushCompress, Status};

use super::Compression;

/// gzip and deflate level (zlib's default).
pub const GZIP_LEVEL: u32 = 6;
/// zstd level: between zstd's default 3 and the 19 some initramfs tools pick, close to
/// gzip -6 in speed with smaller output.
pub const ZSTD_LEVEL: i32 = 9;
/// xz preset.
pub const XZ_PRESET: u32 = 6;
/// Fixed input chunk size for parallel gzip.
const GZIP_CHUNK: usize = 1 << 20;
/// Dictionary carried from one chunk to the next (deflate's window).
const GZIP_WINDOW: usize = 32 * 1024;
/// xz block size: fixed so the multithreaded output is reproducible.
const XZ_BLOCK: u64 = 8 << 20;

/// A compressing writer. `finish` must be called to complete the stream.
pub enum Writer<W: Write> {
    None(W),
    Gzip(ParallelGzip<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
    Xz(liblzma::write::XzEncoder<W>),
}

impl<W: Write> Writer<W> {
    pub fn new(out: W, compression: Compression, threads: usize) -> io::Result<Writer<W>> {
        Ok(match compression {
            Compression::None => Writer::None(out),
            Compression::Gzip => Writer::Gzip(ParallelGzip::new(out, GZIP_LEVEL, threads)),
            Compression::Zstd => {
                let mut encoder = zstd::stream::write::Encoder::new(out, ZSTD_LEVEL)?;
                // With one or more workers zstd emits the same bytes whatever their number.
                encoder.multithread(threads.max(1) as u32)?;
                encoder.include_checksum(true)?;
                Writer::Zstd(encoder)
            }
            Compression::Xz => {
                let stream = liblzma::stream::MtStreamBuilder::new()
                    .preset(XZ_PRESET)
                    .check(liblzma::stream::Check::Crc32)
                    .block_size(XZ_BLOCK)
                    .threads(threads.max(1) as u32)
                    .encoder()
                    .map_err(io::Error::other)?;
                Writer::Xz(liblzma::write::XzEncoder::new_stream(out, stream))
            }
        })
    }

    pub fn finish(self) -> io::Result<W> {
        match self {
            Writer::None(mut out) => {
                out.flush()?;
                Ok(out)
            }
            Writer::Gzip(gzip) => gzip.finish(),
            Writer::Zstd(encoder) => encoder.finish(),
            Writer::Xz(encoder) => encoder.finish(),
        }
    }
}

impl<W: Write> Write for Writer<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Writer::None(out) => out.write(buf),
            Writer::Gzip(out) => out.write(buf),
            Writer::Zstd(out) => out.write(buf),
            Writer::Xz(out) => out.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Writer::None(out) => out.flush(),
            Writer::Gzip(out) => out.flush(),
            Writer::Zstd(out) => out.flush(),
            Writer::Xz(out) => out.flush(),
        }
    }
}

struct Job {
    dictionary: Vec<u8>,
    data: Vec<u8>,
    last: bool,
    done: mpsc::Sender<io::Result<Piece>>,
}

struct Piece {
    deflated: Vec<u8>,
    crc: Crc,
}

/// pigz-style parallel gzip with output independent of the thread count.
pub struct ParallelGzip<W: Write> {
    out: W,
    level: u32,
    chunk: Vec<u8>,
    dictionary: Vec<u8>,
    crc: Crc,
    /// Results in input order; bounded so memory stays a few chunks per thread.
    pending: VecDeque<mpsc::Receiver<io::Result<Piece>>>,
    max_pending: usize,
    jobs: Option<mpsc::Sender<Job>>,
    workers: Vec<thread::JoinHandle<()>>,
    header_written: bool,
}

impl<W: Write> ParallelGzip<W> {
    pub fn new(out: W, level: u32, threads: usize) -> ParallelGzip<W> {
        let threads = threads.max(1);
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        let workers = (0..threads)
            .map(|_| {
                let queue = Arc::clone(&queue);
                thread::spawn(move || {
                    loop {
                        let job = match queue.lock() {
                            Ok(queue) => queue.recv(),
                            Err(_) => return,
                        };
                        let Ok(job) = job else { return };
                        let piece = deflate_chunk(level, &job.dictionary, &job.data, job.last);
                        // The receiver is gone only when the writer was dropped after an
                        // error; there is nobody left to tell.
                        let _ = job.done.send(piece);
                    }
                })
            })
            .collect();
        ParallelGzip {
            out,
            level,
            chunk: Vec::with_capacity(GZIP_CHUNK),
            dictionary: Vec::new(),
            crc: Crc::new(),
            pending: VecDeque::new(),
            max_pending: threads * 2,
            jobs: Some(jobs),
            workers,
            header_written: false,
        }
    }

    fn write_header(&mut self) -> io::Result<()> {
        if !self.header_written {
            // Magic, deflate, no flags, mtime 0, XFL by level, OS 255 ("unknown"), so the
            // header never depends on the host.
            let xfl = match self.level {
                9 => 2,
                1 => 4,
                _ => 0,
            };
            self.out
                .write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 255])?;
            self.header_written = true;
        }
        Ok(())
    }

    fn submit(&mut self, last: bool) -> io::Result<()> {
        let data = std::mem::replace(&mut self.chunk, Vec::with_capacity(GZIP_CHUNK));
        let dictionary = std::mem::take(&mut self.dictionary);
        if !last {
            self.dictionary = data[data.len().saturating_sub(GZIP_WINDOW)..].to_vec();
        }
        let (done, result) = mpsc::channel();
        let job = Job {
            dictionary,
            data,
            last,
            done,
        };
        self.jobs
            .as_ref()
            .ok_or_else(|| io::Error::other("gzip writer already finished"))?
            .send(job)
            .map_err(|_| io::Error::other("gzip worker thread died"))?;
        self.pending.push_back(result);
        while self.pending.len() > self.max_pending {
            self.collect_one()?;
        }
        Ok(())
    }

    fn collect_one(&mut self) -> io::Result<()> {
        let Some(result) = self.pending.pop_front() else {
            return Ok(());
        };
        let piece = result
            .recv()
            .map_err(|_| io::Error::other("gzip worker thread died"))??;
        self.write_header()?;
        self.out.write_all(&piece.deflated)?;
        self.crc.combine(&piece.crc);
        Ok(())
    }

    pub fn finish(mut self) -> io::Result<W> {
        self.submit(true)?;
        while !self.pending.is_empty() {
            self.collect_one()?;
        }
        self.write_header()?;
        let crc = self.crc.sum();
        let size = self.crc.amount();
        self.out.write_all(&crc.to_le_bytes())?;
        self.out.write_all(&size.to_le_bytes())?;
        self.out.flush()?;
        let ParallelGzip {
            out, jobs, workers, ..
        } = self;
        // Closing the queue ends the workers.
        drop(jobs);
        for worker in workers {
            worker
                .join()
                .map_err(|_| io::Error::other("gzip worker thread panicked"))?;
        }
        Ok(out)
    }
}

impl<W: Write> Write for ParallelGzip<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = GZIP_CHUNK - self.chunk.len();
        let take = room.min(buf.len());
        self.chunk.extend_from_slice(&buf[..take]);
        if self.chunk.len() == GZIP_CHUNK {
            self.submit(false)?;
        }
        Ok(take)
    }

    fn flush(&mut self) -> io::Result<()> {
        // Flushing mid-stream would add cut points that depend on the caller's timing;
        // completed chunks are written as they finish and `finish` writes the rest.
        Ok(())
    }
}

fn deflate_chunk(level: u32, dictionary: &[u8], data: &[u8], last: bool) -> io::Result<Piece> {
    let mut crc = Crc::new();
    crc.update(data);
    let mut compress = Compress::new(flate2::Compression::new(level), false);
    if !dictionary.is_empty() {
        compress
            .set_dictionary(dictionary)
            .map_err(io::Error::other)?;
    }
    let flush = if last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    let mut deflated = Vec::with_capacity(data.len() / 2 + 1024);
    loop {
        if deflated.capacity() - deflated.len() < 1024 {
            deflated.reserve(deflated.capacity().max(64 * 1024));
        }
        let consumed = compress.total_in() as usize;
        let status = compress
            .compress_vec(&data[consumed..], &mut deflated, flush)
            .map_err(io::Error::other)?;
        let all_in = compress.total_in() as usize == data.len();
        let room_left = deflated.capacity() > deflated.len();
        match status {
            Status::StreamEnd => break,
            _ if !last && all_in && room_left => break,
            _ => {}
        }
    }
    Ok(Piece { deflated, crc })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn sample(len: usize) -> Vec<u8> {
        // Compressible but not trivial: a counter mixed with text.
        let mut bytes = Vec::with_capacity(len);
        let mut state = 12345u32;
        while bytes.len() < len {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
            bytes.extend_from_slice(
                format!("line {} {}\n", state % 1000, bytes.len() % 77).as_bytes(),
            );
        }
        bytes.truncate(len);
        bytes
    }

    fn compress(data: &[u8], compression: Compression, threads: usize) -> Vec<u8> {
        let mut writer = Writer::new(Vec::new(), compression, threads).unwrap();
        // Odd write sizes must not change the output either.
        for piece in data.chunks(7919) {
            writer.write_all(piece).unwrap();
        }
        writer.finish().unwrap()
    }

    #[test]
    fn gzip_round_trips_and_ignores_thread_count() {
        for len in [0, 1, GZIP_CHUNK, GZIP_CHUNK + 1, 3 * GZIP_CHUNK + 17] {
            let data = sample(len);
            let one = compress(&data, Compression::Gzip, 1);
            let four = compress(&data, Compression::Gzip, 4);
            assert!(
                one == four,
                "gzip output differs by thread count at len {len}"
            );
            let mut back = Vec::new();
            flate2::read::GzDecoder::new(&one[..])
                .read_to_end(&mut back)
                .unwrap();
            assert!(back == data, "gzip round trip failed at len {len}");
        }
    }

    #[test]
    fn zstd_and_xz_ignore_thread_count() {
        let text = sample(3 * GZIP_CHUNK);
        // Two xz blocks and a bit, so three threads each get a block: 4 KiB of the text
        // repeated, which preset 6 compresses quickly (16 MiB of the full text takes 25 s).
        let len = 2 * XZ_BLOCK as usize + 17;
        let mut blocks = sample(4096).repeat(len / 4096 + 1);
        blocks.truncate(len);
        for (compression, data) in [
            (Compression::Zstd, &text),
            (Compression::Zstd, &blocks),
            (Compression::Xz, &blocks),
        ] {
            let one = compress(data, compression, 1);
            let three = compress(data, compression, 3);
            assert!(
                one == three,
                "{compression:?} output differs by thread count at len {}",
                data.len()
            );
        }
    }

    #[test]
    fn xz_uses_crc32() {
        let out = compress(b"hello", Compression::Xz, 2);
        // Stream flags: byte 7 is the check type, 0x01 = CRC32.
        assert_eq!(&out[..6], b"\xfd7zXZ\0");
        assert_eq!(out[7], 0x01);
    }
}
