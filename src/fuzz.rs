//! Mutation fuzzing on stable Rust, under plain `cargo test`: valid inputs (archives kiln
//! wrote in every format, a .deb, gen_init_cpio lists, makedevs tables, board TOML) are
//! mutated by a seeded generator and fed to the readers, which must never panic and
//! never allocate more than `ALLOCATION_LIMIT` on the thread that reads, and, when an
//! archive still reads, must read back what kiln writes of it.
//!
//! `KILN_FUZZ_SEED` (default `0x6b696c6e`) and `KILN_FUZZ_SECONDS` (per target; default
//! 1.5, as CI runs it) set the run; `scripts/fuzz` runs longer with a fresh seed. A
//! failure prints the seed and the case number, which replay it exactly.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::archive::{self, Compression, Format};
use crate::tree::{Meta, Tree};

/// The most one input may make the reading thread hold at once.
const ALLOCATION_LIMIT: usize = 64 << 20;

thread_local! {
    /// Bytes this thread holds now, and the most it held since the last reset.
    static HELD: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

/// The system allocator, counting what each thread holds.
struct Counting;

// SAFETY: every method forwards to `System` with the caller's own arguments, so the
// `GlobalAlloc` contract holds exactly as it does for `System`. The counters are
// thread-local `Cell`s with const initialisers: touching them never allocates (no
// recursion into the allocator) and needs no synchronisation. Memory freed on another
// thread than it was allocated on only makes a count saturate at zero, never unsound.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize);
        // SAFETY: forwarded unchanged; the caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-(layout.size() as isize));
        // SAFETY: `ptr` came from `System.alloc` with this `layout` (every allocation
        // goes through `alloc` above).
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size as isize - layout.size() as isize);
        // SAFETY: forwarded unchanged; `ptr` and `layout` are the caller's, as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn count(delta: isize) {
    // During thread teardown the thread-locals may be gone; then nothing is counted.
    let _ = HELD.try_with(|held| {
        let now = held.get().saturating_add_signed(delta);
        held.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

/// Runs `work`, returning what it returned and the most it made this thread hold.
fn peak_of<T>(work: impl FnOnce() -> T) -> (T, usize) {
    let base = HELD.with(Cell::get);
    PEAK.with(|peak| peak.set(base));
    let out = work();
    (out, PEAK.with(Cell::get).saturating_sub(base))
}

/// xorshift64*: small, fast, and the same everywhere for a seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Bytes that break parsers: limits, signs, separators, hex digits.
const INTERESTING: &[&[u8]] = &[
    b"\0",
    b"\xff",
    b"\n",
    b" ",
    b":",
    b"/",
    b"..",
    b"\"",
    b"\\",
    b"0",
    b"9",
    b"f",
    b"-1",
    b"4294967295",
    b"4294967296",
    b"18446744073709551615",
    b"ffffffff",
    b"7fffffff",
    b"99999999999999999999",
];

/// One mutation of `input`: a few flips, overwrites, inserts, cuts or splices.
fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(out.len() + 1);
        match rng.below(7) {
            0 if !out.is_empty() => {
                let at = at.min(out.len() - 1);
                out[at] ^= 1 << rng.below(8);
            }
            1 if !out.is_empty() => {
                let at = at.min(out.len() - 1);
                out[at] = rng.next() as u8;
            }
            2 => {
                let piece = INTERESTING[rng.below(INTERESTING.len())];
                out.splice(at..at, piece.iter().copied());
            }
            3 => {
                let piece = INTERESTING[rng.below(INTERESTING.len())];
                let end = (at + piece.len()).min(out.len());
                out.splice(at..end, piece.iter().copied());
            }
            4 => out.truncate(at),
            5 if !out.is_empty() => {
                let start = rng.below(out.len());
                let len = rng.below(64).min(out.len() - start);
                let copy = out[start..start + len].to_vec();
                out.splice(at..at, copy);
            }
            _ => {
                let end = (at + rng.below(16)).min(out.len());
                out.drain(at..end);
            }
        }
    }
    out
}

fn seed() -> u64 {
    std::env::var("KILN_FUZZ_SEED")
        .ok()
        .and_then(|text| {
            let text = text.trim_start_matches("0x");
            u64::from_str_radix(text, 16).ok()
        })
        .unwrap_or(0x6b69_6c6e)
}

fn budget() -> Duration {
    let seconds = std::env::var("KILN_FUZZ_SECONDS")
        .ok()
        .and_then(|text| text.parse::<f64>().ok())
        .filter(|seconds| *seconds > 0.0)
        .unwrap_or(1.5);
    Duration::from_secs_f64(seconds)
}

/// Feeds mutations of `seeds` to `target` until the budget is spent; every case must
/// neither panic nor exceed the allocation limit. Returns how many cases ran.
fn fuzz(name: &str, seeds: &[Vec<u8>], target: impl Fn(&[u8])) -> usize {
    let seed = seed();
    // Each target gets its own stream, so one target's change does not move another's.
    let mut rng = Rng(seed
        ^ name
            .bytes()
            .fold(0u64, |h, b| h.rotate_left(5) ^ u64::from(b))
        | 1);
    let deadline = Instant::now() + budget();
    let mut cases = 0;
    while Instant::now() < deadline {
        let pick = rng.below(seeds.len());
        let input = mutate(&mut rng, &seeds[pick]);
        let (result, peak) =
            peak_of(|| std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| target(&input))));
        assert!(
            result.is_ok(),
            "{name}: case {cases} panicked (KILN_FUZZ_SEED={seed:x})"
        );
        assert!(
            peak <= ALLOCATION_LIMIT,
            "{name}: case {cases} held {peak} bytes at once (KILN_FUZZ_SEED={seed:x})"
        );
        cases += 1;
    }
    eprintln!("fuzz {name}: {cases} cases, seed {seed:x}");
    cases
}

/// A small tree with one of each kind, the seed of every archive.
fn sample_tree() -> Tree {
    let mut tree = Tree::new();
    tree.dir("etc", Meta::root(0o755), "fuzz").unwrap();
    tree.file(
        "etc/passwd",
        "root:x:0:0::/root:/bin/sh\n",
        Meta::root(0o644),
        "fuzz",
    )
    .unwrap();
    tree.symlink("etc/link", "passwd", "fuzz").unwrap();
    tree.fifo("etc/fifo", Meta::new(0o600, 5, 6), "fuzz")
        .unwrap();
    tree.char_dev("dev/null", 1, 3, Meta::root(0o666), "fuzz")
        .unwrap();
    tree
}

fn written(tree: &Tree, format: Format) -> Vec<u8> {
    let options = archive::Options {
        threads: 1,
        ..archive::Options::default()
    };
    archive::write(tree, format, Vec::new(), &options).unwrap()
}

#[test]
fn archives_never_panic_and_what_reads_writes_back_the_same() {
    let tree = sample_tree();
    let seeds: Vec<Vec<u8>> = archive::FORMATS
        .iter()
        .map(|(_, format)| written(&tree, *format))
        .collect();
    let cases = fuzz("archive", &seeds, |input| {
        let Ok(read) = archive::read::read_stream(input, Path::new("fuzz.cpio")) else {
            return;
        };
        // What reads must write and read back as the same tree.
        let plain = Format::new(read.format.container, Compression::None);
        let options = archive::Options {
            threads: 1,
            ..archive::Options::default()
        };
        let Ok(bytes) = archive::write(&read.tree, plain, Vec::new(), &options) else {
            return;
        };
        let again = archive::read::read_stream(&bytes[..], Path::new("again"))
            .expect("kiln reads what it wrote");
        assert_eq!(
            crate::listing::manifest(&read.tree).unwrap(),
            crate::listing::manifest(&again.tree).unwrap()
        );
    });
    assert!(cases > 10);
}

#[test]
fn debs_never_panic() {
    let dir = std::env::temp_dir().join(format!("kiln-fuzz-deb-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let control = "Package: p\nVersion: 1\nArchitecture: all\n";
    let seeds: Vec<Vec<u8>> = [Compression::Gzip, Compression::Xz, Compression::Zstd]
        .iter()
        .map(|compression| {
            crate::source::deb::tests::make_deb(control, &sample_tree(), *compression)
        })
        .collect();
    let path = dir.join("p.deb");
    fuzz("deb", &seeds, |input| {
        std::fs::write(&path, input).unwrap();
        let _ = crate::source::deb::read(&path);
        let _ = crate::source::deb::read_control(&path);
    });
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn lists_and_tables_never_panic() {
    let list = b"dir /etc 0755 0 0\nslink /etc/l x 0777 0 0\nnod /dev/c 0600 0 0 c 5 1\npipe /p 0600 0 0\nsock /s 0600 0 0\n# c\n".to_vec();
    let table =
        b"/dev d 755 0 0 - - - - -\n/dev/tty c 600 0 5 4 0 0 1 4\n/dev/p p 600 0 0 - - - - -\n"
            .to_vec();
    fuzz("list", &[list], |input| {
        let Ok(text) = std::str::from_utf8(input) else {
            return;
        };
        let mut inputs = crate::source::Inputs::new((0, 0));
        let _ = inputs.parse_list(&mut Tree::new(), Path::new("/nonexistent/l.list"), text);
    });
    fuzz("makedevs", &[table], |input| {
        let Ok(text) = std::str::from_utf8(input) else {
            return;
        };
        let _ = crate::source::makedevs::apply(&mut Tree::new(), Path::new("t.txt"), text);
    });
}

#[test]
fn boards_never_panic() {
    let dir = std::env::temp_dir().join(format!("kiln-fuzz-board-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("board-configs");
    let seeds: Vec<Vec<u8>> = ["qemu-aarch64.toml", "raspberrypi3-64.toml"]
        .iter()
        .map(|name| std::fs::read(root.join(name)).unwrap())
        .collect();
    let path = dir.join("b.toml");
    fuzz("board", &seeds, |input| {
        std::fs::write(&path, input).unwrap();
        let _ = crate::config::Board::load(&path);
    });
    std::fs::remove_dir_all(&dir).unwrap();
}
