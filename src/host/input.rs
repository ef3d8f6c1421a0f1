//! Opening input files made by others: only regular files (a fifo would block the
//! open, `/dev/zero` would never end), opened without blocking, and read whole only up
//! to a stated limit.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// What a path is, for messages: "a fifo", "a character device", ...
pub fn kind_of(metadata: &std::fs::Metadata) -> &'static str {
    let kind = metadata.file_type();
    if kind.is_dir() {
        "a directory"
    } else if kind.is_symlink() {
        "a symlink"
    } else if kind.is_fifo() {
        "a fifo"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// Opens `path` for reading if it is a regular file (or, with `block_devices`, a block
/// device). The open does not block (`O_NONBLOCK`, which regular files ignore), and the
/// type is checked on the opened file, so nothing swapped in between is read.
/// Anything else is `InvalidInput`, naming what it is.
pub fn open(path: &Path, block_devices: bool) -> io::Result<File> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
        .open(path)?;
    let metadata = file.metadata()?;
    let kind = metadata.file_type();
    if kind.is_file() || (block_devices && kind.is_block_device()) {
        Ok(file)
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{} is {}, not a regular file",
                path.display(),
                kind_of(&metadata)
            ),
        ))
    }
}

/// Reads a regular file whole, refusing one larger than `limit` bytes (`what` names it
/// in the message: "a list", "a board").
pub fn read(path: &Path, limit: u64, what: &str) -> io::Result<Vec<u8>> {
    let file = open(path, false)?;
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{} is larger than {} MiB, the most kiln reads as {what}",
                path.display(),
                limit >> 20
            ),
        ));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_are_read() {
        for (path, what) in [("/dev/zero", "a character device"), ("/", "a directory")] {
            let err = open(Path::new(path), false).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{path}");
            assert_eq!(
                err.to_string(),
                format!("{path} is {what}, not a regular file")
            );
        }
        let dir = std::env::temp_dir().join(format!("kiln-input-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        // Would block forever without O_NONBLOCK; refused at once instead.
        let err = open(&fifo, false).unwrap_err();
        assert!(
            err.to_string().ends_with("is a fifo, not a regular file"),
            "{err}"
        );
        let big = dir.join("big");
        std::fs::write(&big, vec![b'x'; 3 << 20]).unwrap();
        let err = read(&big, 2 << 20, "a list").unwrap_err();
        assert!(
            err.to_string()
                .ends_with("is larger than 2 MiB, the most kiln reads as a list")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
