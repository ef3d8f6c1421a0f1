//! Reading Debian binary packages in pure Rust: ar, then `control.tar.*` for the fields and
//! `data.tar.{xz,zst,gz}` (or plain) for the files, into a `Tree`.
//!
//! File bodies are spooled once and streamed when an image is written; owners and modes are
//! the package's own. Nothing here runs package code or consults the host's dpkg.
//!
//! A package is input made by others: each ar member's size is checked against what is
//! left of the file, and `control` is read into memory only within `limits::CONTROL_FILE`.

use std::collections::BTreeMap;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use crate::archive::{limits, read};
use crate::tree::content::Content;
use crate::tree::{ArchivePath, Tree};

/// A .deb read back.
#[derive(Clone)]
pub struct Package {
    pub path: PathBuf,
    /// `control` fields (Package, Version, Architecture, Depends, ...), keys as written.
    pub control: BTreeMap<String, String>,
    /// The contents of data.tar, with the package's owners and modes.
    pub data: Tree,
    /// The `postinst` maintainer script, if any: read (never run) for its
    /// update-alternatives calls.
    pub postinst: Option<Vec<u8>>,
}

impl Package {
    pub fn name(&self) -> &str {
        self.control.get("Package").map_or("?", String::as_str)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DebError {
    #[error("unable to read {}", path.display())]
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
    crate::host::input::open(path, false)
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
        postinst: members.postinst,
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
    postinst: Option<Vec<u8>>,
    data: Option<Tree>,
}

/// ar's global header.
const AR_MAGIC: &[u8; 8] = b"!<arch>\n";
/// One member header: name, mtime, uid, gid, mode, size, then "`\n".
const AR_HEADER: usize = 60;

/// Walks the ar members; stops after control.tar when only that is wanted.
///
/// The ar framing is read here rather than by the `ar` crate so that every member's size
/// is checked against what is left of the file (whose length is known) before anything
/// is read, and so that a member cut short is an error naming it.
fn scan(path: &Path, wanted: Members) -> Result<Scanned, DebError> {
    let io = |source| DebError::Io {
        path: path.to_path_buf(),
        source,
    };
    let invalid = |what: String| DebError::Invalid {
        path: path.to_path_buf(),
        what,
    };
    // Not a regular file (a fifo, a device): the package is wrong, not the system.
    let file = crate::host::input::open(path, false).map_err(|err| {
        if err.kind() == std::io::ErrorKind::InvalidInput {
            invalid(err.to_string())
        } else {
            io(err)
        }
    })?;
    let file_len = file.metadata().map_err(io)?.len();
    let mut input = BufReader::new(file);
    let mut magic = [0u8; AR_MAGIC.len()];
    if read::read_full(&mut input, &mut magic).map_err(io)? < magic.len() || &magic != AR_MAGIC {
        return Err(invalid("not a Debian package: no ar magic".to_string()));
    }
    let mut position = AR_MAGIC.len() as u64;
    let mut scanned = Scanned::default();
    loop {
        // Members start on even offsets; the odd one out is padded with a newline.
        if position % 2 == 1 {
            let mut pad = [0u8; 1];
            if read::read_full(&mut input, &mut pad).map_err(io)? == 0 {
                break;
            }
            position += 1;
        }
        let at = position;
        let mut header = [0u8; AR_HEADER];
        match read::read_full(&mut input, &mut header).map_err(io)? {
            0 => break,
            AR_HEADER => {}
            got => {
                return Err(invalid(format!(
                    "truncated: the member header at byte {at} ends after {got} of {AR_HEADER} bytes"
                )));
            }
        }
        position += AR_HEADER as u64;
        let member = String::from_utf8_lossy(&header[..16])
            .trim_end()
            .trim_end_matches('/')
            .to_string();
        if &header[58..] != b"`\n" {
            return Err(invalid(format!(
                "member {member:?}: the header at byte {at} is not an ar member header"
            )));
        }
        let size = std::str::from_utf8(&header[48..58])
            .ok()
            .map(str::trim_end)
            .filter(|text| !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|text| text.parse::<u64>().ok())
            .ok_or_else(|| {
                invalid(format!(
                    "member {member}: size field {:?} is not a number",
                    String::from_utf8_lossy(&header[48..58])
                ))
            })?;
        let remaining = file_len.saturating_sub(position);
        if size > remaining {
            return Err(invalid(format!(
                "member {member}: claims {size} bytes, but only {remaining} are left in the file"
            )));
        }
        let origin = path.join(&member);
        let mut entry = (&mut input).take(size);
        if member == "debian-binary" {
            // "2.0\n" in every real package.
            let mut version = Vec::new();
            (&mut entry)
                .take(64)
                .read_to_end(&mut version)
                .map_err(io)?;
            if !version.starts_with(b"2.") {
                return Err(invalid(format!(
                    "unsupported .deb format {:?}",
                    String::from_utf8_lossy(&version).trim()
                )));
            }
            scanned.saw_version = true;
        } else if member.starts_with("control.tar") {
            let (fields, postinst) = read_control_tar(&mut entry, &origin)
                .map_err(|err| invalid(format!("member {member}: {err}")))?;
            scanned.control = Some(fields);
            scanned.postinst = postinst;
            if wanted == Members::ControlOnly {
                break;
            }
        } else if member.starts_with("data.tar") && wanted == Members::All {
            let archive = read::read_stream(&mut entry, &origin)
                .map_err(|err| invalid(format!("member {member}: {err}")))?;
            scanned.data = Some(archive.tree);
        }
        // Whatever the member's reader left (or all of a member kiln does not read).
        read::drain(&mut entry, size).map_err(|err| match err.kind() {
            std::io::ErrorKind::UnexpectedEof => invalid(format!("member {member}: {err}")),
            _ => io(err),
        })?;
        position += size;
    }
    Ok(scanned)
}

/// A control file's fields, keys as written.
type Fields = BTreeMap<String, String>;

/// The fields of `control` and the `postinst` script, from a control.tar (any
/// compression). Only those two are held in memory, each bounded by
/// `limits::CONTROL_FILE` before it is read; the other members are decoded and dropped,
/// and the whole stream may decode to at most `limits::CONTROL_TAR`.
fn read_control_tar(
    member: &mut dyn Read,
    origin: &Path,
) -> std::io::Result<(Fields, Option<Vec<u8>>)> {
    let mut control: Option<Vec<u8>> = None;
    let mut postinst: Option<Vec<u8>> = None;
    let mut keep = |body: &mut dyn Read, len: u64, name: &str| -> std::io::Result<Content> {
        let path = ArchivePath::from_bytes(name.as_bytes());
        let slot = match path.as_ref().map(ArchivePath::as_str) {
            Ok("control") => Some((&mut control, "control file")),
            Ok("postinst") => Some((&mut postinst, "postinst script")),
            _ => None,
        };
        if let Some((slot, what)) = slot {
            limits::check(what, len, limits::CONTROL_FILE)?;
            let mut bytes = Vec::with_capacity(len as usize);
            body.read_to_end(&mut bytes)?;
            *slot = Some(bytes);
        }
        // Nothing else of control.tar is kept.
        Ok(Content::inline(Vec::new()))
    };
    read::read_with(member, origin, limits::CONTROL_TAR, &mut keep)?;
    let control = control.ok_or_else(|| limits::invalid("no control file"))?;
    Ok((parse_fields(&String::from_utf8_lossy(&control)), postinst))
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
        ar_file(&[
            ("debian-binary", b"2.0\n".to_vec()),
            ("control.tar.gz", control_tar),
            (&format!("data.tar{suffix}"), data_tar),
        ])
    }

    /// An ar archive of `members`, written by the `ar` crate.
    fn ar_file(members: &[(&str, Vec<u8>)]) -> Vec<u8> {
        let mut builder = ar::Builder::new(Vec::new());
        for (name, bytes) in members {
            let header = ar::Header::new(name.as_bytes().to_vec(), bytes.len() as u64);
            builder.append(&header, &bytes[..]).unwrap();
        }
        builder.into_inner().unwrap()
    }

    fn tar_of(tree: &Tree, compression: Compression) -> Vec<u8> {
        archive::read::tests::written(tree, Format::new(Container::Tar, compression))
    }

    fn data_tree() -> Tree {
        let mut data = Tree::new();
        data.file("usr/bin/hello", vec![b'h'; 5000], Meta::root(0o755), "t")
            .unwrap();
        data
    }

    /// Issue "Hostile input never hurts": a .deb with a 1 GiB control file took 1 GB of
    /// memory. The claim alone is refused: no data follows it here.
    #[test]
    fn a_control_file_claim_beyond_the_limit_is_refused_unread() {
        let mut claim = tar::Header::new_ustar();
        claim.set_path("./control").unwrap();
        claim.set_entry_type(tar::EntryType::Regular);
        claim.set_mode(0o644);
        claim.set_uid(0);
        claim.set_gid(0);
        claim.set_mtime(0);
        claim.set_size(5 << 20);
        claim.set_cksum();
        let control_tar = archive::read::tests::compressed(claim.as_bytes(), Compression::Gzip);
        let deb = ar_file(&[
            ("debian-binary", b"2.0\n".to_vec()),
            ("control.tar.gz", control_tar),
            ("data.tar.gz", tar_of(&data_tree(), Compression::Gzip)),
        ]);
        archive::read::tests::refused(
            "bomb.deb",
            &deb,
            "bomb.deb: member control.tar.gz: entry \"control\": control file of 5242880 bytes exceeds the 4 MiB limit",
        );
    }

    /// Only `control` is bounded: other control.tar members (md5sums) may be larger.
    #[test]
    fn control_tar_members_other_than_control_may_exceed_its_limit() {
        let mut control = Tree::new();
        control
            .file("control", "Package: big\n", Meta::root(0o644), "t")
            .unwrap();
        control
            .file("md5sums", vec![b'0'; 5 << 20], Meta::root(0o644), "t")
            .unwrap();
        let deb = ar_file(&[
            ("debian-binary", b"2.0\n".to_vec()),
            ("control.tar.xz", tar_of(&control, Compression::Xz)),
            ("data.tar.xz", tar_of(&data_tree(), Compression::Xz)),
        ]);
        let dir = std::env::temp_dir().join(format!("kiln-deb-big-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("big.deb");
        std::fs::write(&path, deb).unwrap();
        let package = read(&path);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(package.unwrap().name(), "big");
    }

    /// Issue "Hostile input never hurts": an ar member claiming more bytes than the file
    /// has was read short without a word.
    #[test]
    fn a_member_claiming_more_than_the_file_holds_is_refused() {
        let data = tar_of(&data_tree(), Compression::None);
        let claimed = data.len();
        let deb = make_deb("Package: p\n", &data_tree(), Compression::None);
        archive::read::tests::refused(
            "x.deb",
            &deb[..deb.len() - 10],
            &format!(
                "x.deb: member data.tar: claims {claimed} bytes, but only {} are left in the file",
                claimed - 10
            ),
        );
    }

    /// Issue "Hostile input never hurts": a .deb with its xz tail cut was read as if whole.
    #[test]
    fn a_cut_data_tar_xz_is_refused() {
        let data = tar_of(&data_tree(), Compression::Xz);
        let mut control_tree = Tree::new();
        control_tree
            .file("control", "Package: p\n", Meta::root(0o644), "t")
            .unwrap();
        let deb = ar_file(&[
            ("debian-binary", b"2.0\n".to_vec()),
            ("control.tar.gz", tar_of(&control_tree, Compression::Gzip)),
            ("data.tar.xz", data[..data.len() - 20].to_vec()),
        ]);
        archive::read::tests::refused(
            "x.deb",
            &deb,
            "x.deb: member data.tar.xz: xz data is cut short (premature eof)",
        );
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
