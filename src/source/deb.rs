//! Reading Debian binary packages in pure Rust: ar, then `control.tar.*` for the fields and
//! `data.tar.{xz,zst,gz}` (or plain) for the files, into a `Tree`.
//!
//! File bodies are spooled once and streamed when an image is written; owners and modes are
//! the package's own. Nothing here runs package code or consults the host's dpkg.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use crate::archive::read;
use crate::tree::{ArchivePath, Kind, Node, Tree};

/// A .deb read back.
#[derive(Clone)]
pub struct Package {
    pub path: PathBuf,
    /// `control` fields (Package, Version, Architecture, Depends, ...), keys as written.
    pub control: BTreeMap<String, String>,
    /// The contents of data.tar, with the package's owners and modes.
    pub data: Tree,
}

impl Package {
    pub fn name(&self) -> &str {
        self.control.get("Package").map_or("?", String::as_str)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DebError {
    #[error("unable to read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {what}", path.display())]
    Invalid { path: PathBuf, what: String },
}

impl DebError {
    /// A malformed package is bad input; failing to read one is the system's.
    pub fn is_input_error(&self) -> bool {
        matches!(self, DebError::Invalid { .. })
    }
}

/// True when `path` starts with the ar magic, as every .deb does.
pub fn is_deb(path: &Path) -> bool {
    let mut magic = [0u8; 8];
    File::open(path)
        .and_then(|mut file| file.read_exact(&mut magic))
        .is_ok_and(|()| &magic == b"!<arch>\n")
}

/// Reads a .deb file.
pub fn read(path: &Path) -> Result<Package, DebError> {
    let members = scan(path, Members::All)?;
    let invalid = |what: &str| DebError::Invalid {
        path: path.to_path_buf(),
        what: what.to_string(),
    };
    if !members.saw_version {
        return Err(invalid("not a Debian package: no debian-binary member"));
    }
    Ok(Package {
        path: path.to_path_buf(),
        control: members
            .control
            .ok_or_else(|| invalid("no control.tar member"))?,
        data: members.data.ok_or_else(|| invalid("no data.tar member"))?,
    })
}

/// `read`, remembered for the rest of the process: a kernel package takes seconds to
/// decompress and an image build needs it three times (modules, stage 0, kernel). The
/// clone shares the spooled contents.
pub fn read_cached(path: &Path) -> Result<Package, DebError> {
    use std::sync::{Mutex, OnceLock, PoisonError};
    static READ: OnceLock<Mutex<BTreeMap<PathBuf, Package>>> = OnceLock::new();
    let memo = READ.get_or_init(Default::default);
    // A panic elsewhere cannot leave a half-inserted entry, so a poisoned map is fine.
    let lock = || memo.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(package) = lock().get(path) {
        return Ok(package.clone());
    }
    let package = read(path)?;
    lock().insert(path.to_path_buf(), package.clone());
    Ok(package)
}

/// Only the control fields of a .deb (data.tar is not read).
pub fn read_control(path: &Path) -> Result<BTreeMap<String, String>, DebError> {
    scan(path, Members::ControlOnly)?
        .control
        .ok_or_else(|| DebError::Invalid {
            path: path.to_path_buf(),
            what: "no control.tar member".to_string(),
        })
}

#[derive(PartialEq)]
enum Members {
    All,
    ControlOnly,
}

#[derive(Default)]
struct Scanned {
    saw_version: bool,
    control: Option<BTreeMap<String, String>>,
    data: Option<Tree>,
}

/// Walks the ar members; stops after control.tar when only that is wanted.
fn scan(path: &Path, wanted: Members) -> Result<Scanned, DebError> {
    let io = |source| DebError::Io {
        path: path.to_path_buf(),
        source,
    };
    let invalid = |what: String| DebError::Invalid {
        path: path.to_path_buf(),
        what,
    };
    let file = File::open(path).map_err(io)?;
    let mut archive = ar::Archive::new(BufReader::new(file));
    let mut scanned = Scanned::default();
    while let Some(entry) = archive.next_entry() {
        let mut entry = entry.map_err(io)?;
        let member = String::from_utf8_lossy(entry.header().identifier())
            .trim_end_matches('/')
            .to_string();
        let origin = path.join(&member);
        if member == "debian-binary" {
            let mut version = String::new();
            entry.read_to_string(&mut version).map_err(io)?;
            if !version.starts_with("2.") {
                return Err(invalid(format!(
                    "unsupported .deb format {:?}",
                    version.trim()
                )));
            }
            scanned.saw_version = true;
        } else if member.starts_with("control.tar") {
            let tree = read::read_stream(&mut entry, &origin)
                .map_err(|err| invalid(format!("member {member}: {err}")))?
                .tree;
            let control =
                parse_control(&tree).map_err(|what| invalid(format!("member {member}: {what}")))?;
            scanned.control = Some(control);
            if wanted == Members::ControlOnly {
                break;
            }
        } else if member.starts_with("data.tar") && wanted == Members::All {
            let archive = read::read_stream(&mut entry, &origin)
                .map_err(|err| invalid(format!("member {member}: {err}")))?;
            scanned.data = Some(archive.tree);
        }
    }
    Ok(scanned)
}

fn parse_control(tree: &Tree) -> Result<BTreeMap<String, String>, String> {
    let path = ArchivePath::new("control").expect("literal");
    let Some(Node {
        kind: Kind::File(content),
        ..
    }) = tree.get(&path)
    else {
        return Err("no control file".to_string());
    };
    let bytes = content.read_all().map_err(|err| err.to_string())?;
    Ok(parse_fields(&String::from_utf8_lossy(&bytes)))
}

/// RFC 822-style fields; continuation lines are joined with a newline.
pub fn parse_fields(text: &str) -> BTreeMap<String, String> {
    let mut fields = BTreeMap::new();
    let mut last: Option<String> = None;
    for line in text.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some(key) = &last {
                if let Some(value) = fields.get_mut(key) {
                    let value: &mut String = value;
                    value.push('\n');
                    value.push_str(line.trim());
                }
            }
        } else if let Some((key, value)) = line.split_once(':') {
            fields.insert(key.trim().to_string(), value.trim().to_string());
            last = Some(key.trim().to_string());
        }
    }
    fields
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::archive::{self, Compression, Container, Format, Options};
    use crate::tree::Meta;

    /// Assembles a .deb in memory: debian-binary, control.tar.gz, data.tar.<compression>.
    pub(crate) fn make_deb(control: &str, data: &Tree, compression: Compression) -> Vec<u8> {
        let options = Options {
            mtime: 0,
            threads: 1,
            ..Options::default()
        };
        let mut control_tree = Tree::new();
        control_tree
            .file("control", control, Meta::root(0o644), "test")
            .unwrap();
        let control_tar = archive::write(
            &control_tree,
            Format::new(Container::Tar, Compression::Gzip),
            Vec::new(),
            &options,
        )
        .unwrap();
        let data_tar = archive::write(
            data,
            Format::new(Container::Tar, compression),
            Vec::new(),
            &options,
        )
        .unwrap();
        let suffix = match compression {
            Compression::None => "",
            Compression::Gzip => ".gz",
            Compression::Zstd => ".zst",
            Compression::Xz => ".xz",
        };
        let mut builder = ar::Builder::new(Vec::new());
        for (name, bytes) in [
            ("debian-binary".to_string(), b"2.0\n".to_vec()),
            ("control.tar.gz".to_string(), control_tar),
            (format!("data.tar{suffix}"), data_tar),
        ] {
            let header = ar::Header::new(name.into_bytes(), bytes.len() as u64);
            builder.append(&header, &bytes[..]).unwrap();
        }
        builder.into_inner().unwrap()
    }

    #[test]
    fn reads_control_and_data_for_every_compression() {
        let mut data = Tree::new();
        data.file(
            "usr/bin/hello",
            "#!/bin/sh\necho hi\n",
            Meta::root(0o755),
            "t",
        )
        .unwrap();
        data.symlink("usr/bin/hi", "hello", "t").unwrap();
        let dir = std::env::temp_dir().join(format!("kiln-deb-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for compression in [
            Compression::None,
            Compression::Gzip,
            Compression::Zstd,
            Compression::Xz,
        ] {
            let deb = make_deb(
                "Package: hello\nVersion: 1.0\nArchitecture: arm64\nDescription: a\n test\n",
                &data,
                compression,
            );
            let path = dir.join(format!("hello-{compression:?}.deb"));
            std::fs::write(&path, deb).unwrap();
            let package = read(&path).unwrap();
            assert_eq!(package.name(), "hello");
            assert_eq!(package.control["Architecture"], "arm64");
            assert_eq!(package.control["Description"], "a\ntest");
            let manifest = crate::listing::manifest(&package.data).unwrap();
            assert_eq!(
                manifest,
                "dir /usr 0755 0 0\ndir /usr/bin 0755 0 0\nfile /usr/bin/hello 0755 0 0 18 e9da3a2f\nslink /usr/bin/hi 0777 0 0 hello\n",
                "{compression:?}"
            );
        }
        let not_deb = dir.join("not.deb");
        std::fs::write(&not_deb, "!<arch>\n").unwrap();
        let err = read(&not_deb).err().unwrap().to_string();
        assert!(
            err.ends_with("not a Debian package: no debian-binary member"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
