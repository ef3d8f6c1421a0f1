//! The limits every reader of archives made by others enforces, in one place.
//!
//! A length read from input is a claim, not a fact: a 1 MB cpio.gz can claim a 1 GiB symlink
//! target and deliver it. Every length that would be held in memory is checked against a
//! limit here *before* anything is allocated; file bodies are never held in memory (they
//! stream into the spool), so they have no limit. With these limits the memory a read
//! takes is bounded by a constant, whatever the size of the input: the tree is at most
//! [`TREE_PATHS`] nodes with at most [`TREE_NAME_BYTES`] of names and link targets, and
//! each decoder's state is bounded ([`XZ_MEMORY`], [`ZSTD_WINDOW_LOG`]).
//!
//! Past a limit a reader fails with an `io::ErrorKind::InvalidData` error naming the entry,
//! which callers report as bad input (exit 100). Nothing here reads or allocates.

use std::io;

/// Longest name or link target, in bytes, not counting a terminating NUL: Linux's
/// `PATH_MAX`. Applies to cpio names (namesize is one more, for the NUL) and symlink
/// bodies, tar's GNU long names and links, and pax `path` and `linkpath` values.
pub const PATH_MAX: u64 = 4096;

/// Largest pax extended header (`x`) or global header (`g`) block. kiln writes a few
/// records per entry; GNU tar and bsdtar write at most a few KiB (long names, xattrs).
pub const PAX_HEADER: u64 = 1 << 20;

/// Most nodes one archive may make in a tree, counting the parent directories its paths
/// imply: a deep path made of fresh directories adds one node per component.
pub const TREE_PATHS: usize = 1 << 17;

/// Most bytes of paths and link targets one archive may put in a tree, parents included.
/// Each name is at most [`PATH_MAX`], but a million of them would still be 4 GiB.
pub const TREE_NAME_BYTES: u64 = 16 << 20;

/// Largest `control` file of a .deb, which is read into memory to parse its fields
/// (Debian's largest are a few KiB).
pub const CONTROL_FILE: u64 = 4 << 20;

/// Most bytes a .deb's `control.tar` may decompress to. Only `control` is kept, but the
/// other members (md5sums, maintainer scripts, symbols) are decoded to reach it; the
/// largest md5sums in Debian are about 10 MiB.
pub const CONTROL_TAR: u64 = 64 << 20;

/// Most memory the xz decoder may use. xz -9 needs 65 MiB to decode; a stream that asks
/// for more (a dictionary of up to 4 GiB can be declared) is refused rather than obeyed.
pub const XZ_MEMORY: u64 = 128 << 20;

/// Largest zstd window, as a power of two: 128 MiB, zstd's own default limit, which every
/// level up to 19 stays below (the `--long` and `--ultra` modes may not).
pub const ZSTD_WINDOW_LOG: u32 = 27;

/// "the 4096-byte limit", "the 1 MiB limit".
pub fn describe(limit: u64) -> String {
    if limit >= 1 << 20 && limit % (1 << 20) == 0 {
        format!("the {} MiB limit", limit >> 20)
    } else {
        format!("the {limit}-byte limit")
    }
}

/// The error for `what` of `len` bytes when at most `limit` are allowed:
/// "link target of 1073741824 bytes exceeds the 4096-byte limit".
pub fn exceeded(what: &str, len: u64, limit: u64) -> io::Error {
    invalid(format!("{what} of {len} bytes exceeds {}", describe(limit)))
}

/// Checks a claimed length against its limit before anything is read or allocated.
pub fn check(what: &str, len: u64, limit: u64) -> io::Result<()> {
    if len > limit {
        return Err(exceeded(what, len, limit));
    }
    Ok(())
}

/// Malformed input: reported as bad input (exit 100) by every caller.
pub fn invalid(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.into())
}

/// Input that ends early: also bad input.
pub fn truncated(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, message.into())
}

/// `err` with "entry NAME: " in front, keeping its kind (so a spool that ran out of disk
/// stays a system error). A name longer than 200 bytes (a pax path can claim a megabyte)
/// is shown by its start and length.
pub fn in_entry(name: &str, err: io::Error) -> io::Error {
    const SHOWN: usize = 200;
    if name.len() <= SHOWN {
        return io::Error::new(err.kind(), format!("entry {name:?}: {err}"));
    }
    let mut end = SHOWN;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    io::Error::new(
        err.kind(),
        format!("entry {:?}... ({} bytes): {err}", &name[..end], name.len()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_limit() {
        assert_eq!(
            exceeded("link target", 1 << 30, PATH_MAX).to_string(),
            "link target of 1073741824 bytes exceeds the 4096-byte limit"
        );
        assert_eq!(describe(PAX_HEADER), "the 1 MiB limit");
        assert!(check("name", PATH_MAX, PATH_MAX).is_ok());
        assert_eq!(
            check("name", PATH_MAX + 1, PATH_MAX).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
    }
}
