//! Outputs written to a temporary name beside their destination and renamed into place
//! only when complete, and scratch directories removed on every path: a failed run
//! leaves nothing half-written and never touches an existing output.
//!
//! A destination that exists must be a regular file: kiln never replaces a device node,
//! a directory, a fifo or a symlink with its output. Every live temporary path is
//! registered, so `remove_all` (called when kiln is interrupted) can remove them.

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Creating, renaming or writing a temporary file failed, or the destination is not one
/// kiln may replace.
#[derive(Debug, thiserror::Error)]
pub enum TempError {
    /// The system failed: exit 111.
    /// Shows only the context: the io error is its source, which a chain shows once.
    #[error("{context}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    /// The destination exists and is not a regular file: exit 100.
    #[error(
        "{path}: refusing to replace {what} with an output (note: name a regular file, or a new one)"
    )]
    NotRegular { path: String, what: &'static str },
    /// The destination's directory does not exist (or the name ends in `/`): exit 100.
    #[error(
        "{path}: no such directory to write into (note: create it first, or name a file in an existing one)"
    )]
    NoDirectory { path: String },
}

impl TempError {
    pub fn io(context: impl Into<String>) -> impl FnOnce(io::Error) -> TempError {
        let context = context.into();
        move |source| TempError::Io { context, source }
    }

    /// The error as an `io::Error`, for readers that speak only `io`.
    pub fn into_io(self) -> io::Error {
        let kind = match &self {
            TempError::Io { source, .. } => source.kind(),
            TempError::NotRegular { .. } | TempError::NoDirectory { .. } => {
                io::ErrorKind::InvalidInput
            }
        };
        io::Error::new(kind, crate::error::chain(&self))
    }
}

/// A destination kiln refuses is input; failing to write is the system's.
pub fn classify(cause: &(dyn std::error::Error + 'static)) -> Option<crate::error::Kind> {
    cause.downcast_ref::<TempError>().map(|err| match err {
        TempError::Io { .. } => crate::error::Kind::System,
        TempError::NotRegular { .. } | TempError::NoDirectory { .. } => crate::error::Kind::Input,
    })
}

/// Temporary paths alive now, removed by `remove_all` when kiln is interrupted.
static LIVE: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn register(path: &Path) {
    LIVE.lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .push(path.to_path_buf());
}

fn unregister(path: &Path) {
    LIVE.lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .retain(|live| live != path);
}

/// Removes every temporary file and scratch directory still alive: what a signal
/// handler calls before kiln exits, so an interrupted run leaves nothing behind.
pub fn remove_all() {
    let live = std::mem::take(&mut *LIVE.lock().unwrap_or_else(|poisoned| poisoned.into_inner()));
    for path in live {
        // Best effort while exiting: a leftover names itself as kiln's.
        let _ = fs::remove_dir_all(&path).or_else(|_| fs::remove_file(&path));
    }
}

/// Refuses a destination that exists and is not a regular file, or whose directory
/// does not exist.
fn check_destination(dest: &Path) -> Result<(), TempError> {
    let dir = match dest.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    if dest.as_os_str().as_encoded_bytes().ends_with(b"/") || !dir.is_dir() {
        return Err(TempError::NoDirectory {
            path: dest.display().to_string(),
        });
    }
    let metadata = match fs::symlink_metadata(dest) {
        Ok(metadata) => metadata,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(TempError::Io {
                context: format!("unable to stat {}", dest.display()),
                source,
            });
        }
    };
    let kind = metadata.file_type();
    let what = if kind.is_file() {
        return Ok(());
    } else if kind.is_block_device() {
        "a block device (note: kiln flash writes images to devices)"
    } else {
        super::input::kind_of(&metadata)
    };
    Err(TempError::NotRegular {
        path: dest.display().to_string(),
        what,
    })
}

/// Writes a small file through a temp file and rename.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<(), TempError> {
    let temp = TempFile::create(path)?;
    fs::write(&temp.path, bytes).map_err(TempError::io(format!(
        "unable to write {}",
        temp.path.display()
    )))?;
    temp.commit(path)
}

/// A file created next to its destination and removed unless committed.
pub struct TempFile {
    pub path: PathBuf,
    pub file: File,
    committed: bool,
}

impl TempFile {
    /// A temporary file beside `dest`, which must not exist or be a regular file.
    pub fn create(dest: &Path) -> Result<TempFile, TempError> {
        check_destination(dest)?;
        let dir = dest.parent().unwrap_or(Path::new("."));
        let name = dest
            .file_name()
            .map_or_else(|| "out".into(), |name| name.to_string_lossy().into_owned());
        let (path, file) = create_unique(dir, &format!(".{name}.kiln"), |path| {
            fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)
        })?;
        Ok(TempFile {
            path,
            file,
            committed: false,
        })
    }

    /// Renames the file into place (checking the destination again: it may have been
    /// made since).
    pub fn commit(mut self, dest: &Path) -> Result<(), TempError> {
        check_destination(dest)?;
        fs::rename(&self.path, dest).map_err(TempError::io(format!(
            "unable to rename {} to {}",
            self.path.display(),
            dest.display()
        )))?;
        unregister(&self.path);
        self.committed = true;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.committed {
            // Cleanup on an error path: the error being reported matters more than a
            // failure to remove the leftover, which names itself as kiln's.
            let _ = fs::remove_file(&self.path);
            unregister(&self.path);
        }
    }
}

/// A scratch directory in `dir`, removed with everything in it when dropped, on success
/// and on error alike.
pub struct ScratchDir {
    pub path: PathBuf,
}

impl ScratchDir {
    pub fn create(dir: &Path, purpose: &str) -> Result<ScratchDir, TempError> {
        fs::create_dir_all(dir)
            .map_err(TempError::io(format!("unable to create {}", dir.display())))?;
        let (path, ()) = create_unique(dir, &format!(".kiln-{purpose}"), |path| {
            fs::create_dir(path)
        })?;
        Ok(ScratchDir { path })
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        // kiln stages everything in here with owner-writable modes, so nothing blocks the
        // removal; a leftover would name itself as kiln's.
        let _ = fs::remove_dir_all(&self.path);
        unregister(&self.path);
    }
}

/// An anonymous temporary file in the temp directory: created under a unique name,
/// then unlinked at once, so nothing is left behind however kiln ends.
pub fn anonymous_file() -> Result<File, TempError> {
    let dir = std::env::temp_dir();
    let (path, file) = create_unique(&dir, ".kiln-spool", |path| {
        fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
    })?;
    fs::remove_file(&path).map_err(TempError::io(format!(
        "unable to unlink {}",
        path.display()
    )))?;
    unregister(&path);
    Ok(file)
}

/// Makes `DIR/PREFIX-PID-N` with `make`, which must fail with `AlreadyExists` when the
/// name is taken (`create_new`, `create_dir`); tries the next N then. The path is
/// registered for `remove_all` before it is made, so no window leaves it behind.
fn create_unique<T>(
    dir: &Path,
    prefix: &str,
    make: impl Fn(&Path) -> io::Result<T>,
) -> Result<(PathBuf, T), TempError> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    for attempt in 0..100u32 {
        let path = dir.join(format!("{prefix}-{}-{attempt}", std::process::id()));
        register(&path);
        match make(&path) {
            Ok(made) => return Ok((path, made)),
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {
                unregister(&path);
                continue;
            }
            Err(source) => {
                unregister(&path);
                return Err(TempError::Io {
                    context: format!("unable to create {}", path.display()),
                    source,
                });
            }
        }
    }
    Err(TempError::Io {
        context: format!("unable to create a temporary name in {}", dir.display()),
        source: io::Error::from(io::ErrorKind::AlreadyExists),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_never_replace_what_is_not_a_regular_file() {
        for (dest, what) in [
            ("/dev/null", "a character device"),
            ("/tmp", "a directory"),
            ("/proc/self", "a symlink"),
        ] {
            let err = TempFile::create(Path::new(dest)).err().unwrap();
            assert!(
                matches!(err, TempError::NotRegular { what: got, .. } if got == what),
                "{err}"
            );
            let err = anyhow::Error::new(err);
            assert_eq!(classify(err.root_cause()), Some(crate::error::Kind::Input));
        }
    }

    #[test]
    fn temp_paths_are_registered_until_committed_or_dropped() {
        let dir = std::env::temp_dir().join(format!("kiln-temp-test-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let dest = dir.join("out.txt");
        let temp = TempFile::create(&dest).unwrap();
        let live = |path: &Path| LIVE.lock().unwrap().iter().any(|p| p == path);
        assert!(live(&temp.path));
        let path = temp.path.clone();
        temp.commit(&dest).unwrap();
        assert!(!live(&path));
        let temp = TempFile::create(&dest).unwrap();
        let path = temp.path.clone();
        drop(temp);
        assert!(!live(&path) && !path.exists());
        fs::remove_dir_all(&dir).unwrap();
    }
}
