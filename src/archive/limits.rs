//! The limits every reader of archives made by others enforces, in one place.
//!
//! A length read from input is a claim, not a fact: a 1 MB archive can claim a gigabyte
//! and deliver it. Each decoder's state is bounded here ([`XZ_MEMORY`],
//! [`ZSTD_WINDOW_LOG`]), so that what a stream declares cannot make kiln allocate without
//! end.
//!
//! Past a limit a reader fails with an `io::ErrorKind::InvalidData` error, which callers
//! report as bad input (exit 100). Nothing here reads or allocates.

use std::io;

/// Most memory the xz decoder may use. xz -9 needs 65 MiB to decode; a stream that asks
/// for more (a dictionary of up to 4 GiB can be declared) is refused rather than obeyed.
pub const XZ_MEMORY: u64 = 256 << 20;

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

/// Malformed input: reported as bad input (exit 100) by every caller.
pub fn invalid(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.into())
}

/// Input that ends early: also bad input.
pub fn truncated(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, message.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_described_in_their_units() {
        assert_eq!(describe(XZ_MEMORY), "the 256 MiB limit");
        assert_eq!(describe(4096), "the 4096-byte limit");
    }
}
