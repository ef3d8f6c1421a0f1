//! Outputs written to a temporary name beside their destination and renamed into place
//! only when complete, and scratch directories removed on every path: a failed run
//! leaves nothing half-written and never touches an existing output.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

/// Creating, renaming or writing a temporary file failed: a system error.
#[derive(Debug, thiserror::Error)]
#[error("{context}: {source}")]
pub struct TempError {
    pub context: String,
    #[source]
    pub source: io::Error,
}

impl TempError {
    pub fn io(context: impl Into<String>) -> impl FnOnce(io::Error) -> TempError {
        let context = context.into();
        move |source| TempError { context, source }
    }
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
    pub fn create(dest: &Path) -> Result<TempFile, TempError> {
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

    pub fn commit(mut self, dest: &Path) -> Result<(), TempError> {
        fs::rename(&self.path, dest).map_err(TempError::io(format!(
            "unable to rename {} to {}",
            self.path.display(),
            dest.display()
        )))?;
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
    Ok(file)
}

/// Makes `DIR/PREFIX-PID-N` with `make`, which must fail with `AlreadyExists` when the
/// name is taken (`create_new`, `create_dir`); tries the next N then.
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
        match make(&path) {
            Ok(made) => return Ok((path, made)),
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(source) => {
                return Err(TempError {
                    context: format!("unable to create {}", path.display()),
                    source,
                });
            }
        }
    }
    Err(TempError {
        context: format!("unable to create a temporary name in {}", dir.display()),
        source: io::Error::from(io::ErrorKind::AlreadyExists),
    })
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        // kiln stages everything in here with owner-writable modes, so nothing blocks the
        // removal; a leftover would name itself as kiln's.
        let _ = fs::remove_dir_all(&self.path);
    }
}
