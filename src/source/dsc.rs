//! Reading a Debian source package's description (`.dsc`): its name, version and
//! maintainer, and the files the package is made of with their sizes and SHA-256
//! (`Checksums-Sha256`), so each can be verified before `dpkg-source` unpacks anything.
//!
//! A .dsc is input made by others: the file is read within [`DSC_LIMIT`], every field
//! within [`FIELD_LIMIT`], at most [`FILES_LIMIT`] files, and a file name must be a plain
//! name beginning `SOURCE_` (no `/`, no leading `.` or `-`), so no listed name can point
//! outside the directory the .dsc is in. The OpenPGP signature is not checked here: apt
//! checked the file against the signed `Sources` index when it downloaded it, and a lock
//! pins its SHA-256 from then on.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result};

/// The largest .dsc kiln reads.
pub const DSC_LIMIT: u64 = 1 << 20;
/// The longest field (continuation lines included).
pub const FIELD_LIMIT: usize = 64 << 10;
/// The most files one source package may list.
pub const FILES_LIMIT: usize = 64;
/// The largest file a .dsc may list.
const FILE_SIZE_LIMIT: u64 = 64 << 30;
/// The largest `debian/copyright` read for the SBOM.
const COPYRIGHT_LIMIT: u64 = 1 << 20;

/// A source package's description.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dsc {
    pub source: String,
    pub version: String,
    pub maintainer: Option<String>,
    /// `Checksums-Sha256`, in the order written.
    pub files: Vec<File>,
}

/// One file of a source package.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct File {
    pub name: String,
    pub size: u64,
    pub sha256: String,
}

/// Reads and parses a .dsc; a malformed one is bad input naming the file.
pub fn read(path: &Path) -> Result<Dsc> {
    let bytes = crate::host::input::read(path, DSC_LIMIT, "a .dsc file")
        .map_err(|err| crate::error::io(format!("unable to read {}", path.display()), err))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| crate::error::input(format!("{}: not UTF-8 text", path.display())))?;
    parse(&text).map_err(|what| crate::error::input(format!("{}: {what}", path.display())))
}

/// The .dsc's fields, from its text (clear-signed or not).
pub fn parse(text: &str) -> Result<Dsc, String> {
    let body = unsign(text)?;
    let fields = fields(&body)?;
    let get = |name: &str| fields.get(name).map(|value| value.trim());
    let source = get("Source").ok_or("no Source field")?;
    crate::config::check_package_name("Source", source).map_err(|(_, what)| what)?;
    let version = get("Version").ok_or("no Version field")?;
    if !is_version(version) {
        return Err(format!("Version {version:?} is not a Debian version"));
    }
    let sums = fields
        .get("Checksums-Sha256")
        .ok_or("no Checksums-Sha256 field (note: kiln verifies every file of a source package by its SHA-256)")?;
    let mut files = Vec::new();
    let mut names = BTreeSet::new();
    for line in sums.lines().map(str::trim).filter(|line| !line.is_empty()) {
        let words: Vec<&str> = line.split_ascii_whitespace().collect();
        let [sha256, size, name] = words[..] else {
            return Err(format!(
                "Checksums-Sha256: {line:?} is not \"SHA256 SIZE NAME\""
            ));
        };
        check_file_name(source, name)?;
        if !is_sha256(sha256) {
            return Err(format!(
                "Checksums-Sha256: {name}: {sha256:?} is not 64 hex digits"
            ));
        }
        let size: u64 = size
            .parse()
            .ok()
            .filter(|size| *size <= FILE_SIZE_LIMIT)
            .ok_or_else(|| format!("Checksums-Sha256: {name}: size {size:?} is out of range"))?;
        if !names.insert(name) {
            return Err(format!("Checksums-Sha256: {name} is listed twice"));
        }
        if files.len() == FILES_LIMIT {
            return Err(format!("Checksums-Sha256: more than {FILES_LIMIT} files"));
        }
        files.push(File {
            name: name.to_string(),
            size,
            sha256: sha256.to_string(),
        });
    }
    if files.is_empty() {
        return Err("Checksums-Sha256 lists no file".to_string());
    }
    Ok(Dsc {
        source: source.to_string(),
        version: version.to_string(),
        maintainer: get("Maintainer").map(str::to_string),
        files,
    })
}

/// A source package's file name: `SOURCE_...`, letters, digits and `.+~_-` only, at most
/// 255 bytes: a plain name in the .dsc's own directory.
pub fn check_file_name(source: &str, name: &str) -> Result<(), String> {
    let ok = name.len() <= 255
        && name.len() > source.len() + 1
        && name.starts_with(source)
        && name[source.len()..].starts_with('_')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".+~_-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "file name {:?} is not a file of source package {source} (a plain name beginning \"{source}_\")",
            crate::error::printable(name)
        ))
    }
}

/// A Debian version: starts with a digit; letters, digits and `.+~:-`.
pub fn is_version(version: &str) -> bool {
    version.len() <= 256
        && version.starts_with(|c: char| c.is_ascii_digit())
        && version
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".+~:-".contains(&b))
}

pub fn is_sha256(text: &str) -> bool {
    text.len() == 64
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The signed text of a clear-signed message (dash-escaping undone), or the text itself.
fn unsign(text: &str) -> Result<String, String> {
    let Some(rest) = text.strip_prefix("-----BEGIN PGP SIGNED MESSAGE-----\n") else {
        return Ok(text.to_string());
    };
    // Armor headers (`Hash: SHA512`), if any, end at the first empty line.
    let body = match rest.strip_prefix('\n') {
        Some(body) => body,
        None => {
            rest.split_once("\n\n")
                .ok_or("a clear-signed message without a body")?
                .1
        }
    };
    let body = match body.split_once("\n-----BEGIN PGP SIGNATURE-----") {
        Some((body, _)) => body,
        None => return Err("a clear-signed message without its signature".to_string()),
    };
    Ok(body
        .lines()
        .map(|line| line.strip_prefix("- ").unwrap_or(line))
        .collect::<Vec<_>>()
        .join("\n"))
}

/// The first paragraph's fields: `Name: value`, continuation lines (starting with a space
/// or tab) appended after a newline. A name given twice, a line that is neither, or a
/// field longer than [`FIELD_LIMIT`] is refused.
fn fields(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut fields: BTreeMap<String, String> = BTreeMap::new();
    let mut last: Option<String> = None;
    for line in text.lines() {
        if line.trim().is_empty() {
            if fields.is_empty() {
                continue;
            }
            break;
        }
        if line.starts_with([' ', '\t']) {
            let Some(name) = &last else {
                return Err("a continuation line before any field".to_string());
            };
            let value = fields.get_mut(name).ok_or("lost field")?;
            value.push('\n');
            value.push_str(line.trim());
            if value.len() > FIELD_LIMIT {
                return Err(format!("field {name} is longer than {FIELD_LIMIT} bytes"));
            }
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(format!(
                "{:?} is not a field",
                crate::error::printable(&line.chars().take(80).collect::<String>())
            ));
        };
        let plain = !name.is_empty()
            && name.len() <= 64
            && name.bytes().all(|b| b.is_ascii_graphic() && b != b':');
        if !plain {
            return Err(format!(
                "{:?} is not a field name",
                crate::error::printable(&name.chars().take(80).collect::<String>())
            ));
        }
        if value.len() > FIELD_LIMIT {
            return Err(format!("field {name} is longer than {FIELD_LIMIT} bytes"));
        }
        if fields
            .insert(name.to_string(), value.trim().to_string())
            .is_some()
        {
            return Err(format!("field {name} is given twice"));
        }
        last = Some(name.to_string());
    }
    Ok(fields)
}

/// `debian/copyright` out of a source package's `.debian.tar.{xz,gz}`, for the SBOM's
/// licence; `None` when there is none or it cannot be read (a 1.0 package's diff, say).
pub fn copyright(dir: &Path, dsc: &Dsc) -> Option<String> {
    let file = dsc.files.iter().find(|file| {
        file.name.ends_with(".debian.tar.xz") || file.name.ends_with(".debian.tar.gz")
    })?;
    let opened = crate::host::input::open(&dir.join(&file.name), false).ok()?;
    let reader: Box<dyn Read> = if file.name.ends_with(".xz") {
        Box::new(liblzma::read::XzDecoder::new(opened))
    } else {
        Box::new(flate2::read::GzDecoder::new(opened))
    };
    let mut archive = tar::Archive::new(reader);
    for entry in archive.entries().ok()? {
        let entry = entry.ok()?;
        let path = entry.path().ok()?;
        if path == Path::new("debian/copyright") || path == Path::new("./debian/copyright") {
            let mut text = String::new();
            entry.take(COPYRIGHT_LIMIT).read_to_string(&mut text).ok()?;
            return Some(text);
        }
    }
    None
}

/// A file of the source package that is not what the .dsc lists.
#[derive(Debug, thiserror::Error)]
#[error(
    "{}: {what}, {} says {want}, this file has {got} (note: the download was changed or corrupted; remove it to download it again)",
    file.display(), dsc.display()
)]
pub struct Mismatch {
    pub file: std::path::PathBuf,
    pub dsc: std::path::PathBuf,
    pub what: &'static str,
    pub want: String,
    pub got: String,
}

/// Checks each file the .dsc lists, beside it, for its size and SHA-256.
pub fn verify_beside(path: &Path, dsc: &Dsc) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    for listed in &dsc.files {
        let file = dir.join(&listed.name);
        let (sha256, size) = crate::lock::hash_file(&file)
            .with_context(|| format!("{} lists {}", path.display(), listed.name))?;
        let mismatch = |what, want: String, got: String| Mismatch {
            file: file.clone(),
            dsc: path.to_path_buf(),
            what,
            want,
            got,
        };
        if size != listed.size {
            return Err(mismatch("size", listed.size.to_string(), size.to_string()).into());
        }
        if sha256 != listed.sha256 {
            return Err(mismatch("SHA-256", listed.sha256.clone(), sha256).into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DSC: &str = "-----BEGIN PGP SIGNED MESSAGE-----
Hash: SHA512

Format: 3.0 (quilt)
Source: u-boot
Binary: u-boot, u-boot-sunxi,
 u-boot-tools
Version: 2023.01+dfsg-2+deb12u3
Maintainer: Vagrant Cascadian <vagrant@debian.org>
- Dashed: line
Checksums-Sha256:
 e75da6f089d063aaef39a1c17f1631791d87700662624e18de2121fa39a1ed44 15684556 u-boot_2023.01+dfsg.orig.tar.xz
 f9d96a5095d542d8732eccdabcd1d1e7eaaa832311ce395f78b8ead1fad9845e 61072 u-boot_2023.01+dfsg-2+deb12u3.debian.tar.xz
Files:
 745c3ae196dd1c8b0128b600cd919741 15684556 u-boot_2023.01+dfsg.orig.tar.xz

-----BEGIN PGP SIGNATURE-----

iQIzBAEBCgAdFiEE
=msfW
-----END PGP SIGNATURE-----
";

    #[test]
    fn a_signed_dsc_gives_its_files() {
        let dsc = parse(DSC).unwrap();
        assert_eq!(dsc.source, "u-boot");
        assert_eq!(dsc.version, "2023.01+dfsg-2+deb12u3");
        assert_eq!(
            dsc.maintainer.as_deref(),
            Some("Vagrant Cascadian <vagrant@debian.org>")
        );
        let files: Vec<(&str, u64)> = dsc
            .files
            .iter()
            .map(|file| (file.name.as_str(), file.size))
            .collect();
        assert_eq!(
            files,
            [
                ("u-boot_2023.01+dfsg.orig.tar.xz", 15684556),
                ("u-boot_2023.01+dfsg-2+deb12u3.debian.tar.xz", 61072)
            ]
        );
        assert!(dsc.files[0].sha256.starts_with("e75da6f0"));
        // Unsigned, the same fields.
        let plain = DSC
            .split_once("\n\n")
            .unwrap()
            .1
            .split_once("-----BEGIN PGP SIGNATURE")
            .unwrap()
            .0
            .replace("- Dashed", "Dashed");
        assert_eq!(parse(&plain).unwrap(), dsc);
    }

    #[test]
    fn hostile_dscs_are_refused() {
        let line = "e75da6f089d063aaef39a1c17f1631791d87700662624e18de2121fa39a1ed44 15684556 u-boot_2023.01+dfsg.orig.tar.xz";
        let cases: Vec<(String, &str)> = vec![
            // File names that would leave the .dsc's directory, or are not the package's.
            (DSC.replace(" u-boot_2023.01+dfsg.orig", " ../x"), "\"../x.tar.xz\" is not a file of source package u-boot"),
            (DSC.replacen(" u-boot_2023.01+dfsg.orig.tar.xz", " u-boot_/etc/passwd", 1), "is not a file of source package"),
            (DSC.replace(" u-boot_2023.01+dfsg.orig", " u-boot_../../x"), "is not a file of source package"),
            (DSC.replace(" u-boot_2023.01+dfsg.orig", " .u-boot_x"), "is not a file of source package"),
            (DSC.replace(" u-boot_2023.01+dfsg.orig", " other_1"), "is not a file of source package"),
            (DSC.replace(" u-boot_2023.01+dfsg.orig", " u-boot_\u{1b}[2J"), "\\x1b"),
            // Missing or empty checksums, bad hashes and sizes, duplicates.
            (DSC.replace("Checksums-Sha256:", "Checksums-Sha1:"), "no Checksums-Sha256 field"),
            (DSC.replace(&format!(" {line}\n"), "").replace(" f9d96a5095d542d8732eccdabcd1d1e7eaaa832311ce395f78b8ead1fad9845e 61072 u-boot_2023.01+dfsg-2+deb12u3.debian.tar.xz\n", ""), "Checksums-Sha256 lists no file"),
            (DSC.replace("e75da6f0", "E75DA6F0"), "is not 64 hex digits"),
            (DSC.replace("e75da6f0", "e75da6f"), "is not 64 hex digits"),
            (DSC.replace(" 15684556 u-boot", " 99999999999999999999 u-boot"), "out of range"),
            (DSC.replace(" 15684556 u-boot", " -1 u-boot"), "out of range"),
            (DSC.replace(" 15684556 u-boot", " u-boot"), "is not \"SHA256 SIZE NAME\""),
            (DSC.replace(&format!(" {line}\n"), &format!(" {line}\n {line}\n")), "is listed twice"),
            // Fields: twice, huge, without a name, and the version and source checked.
            (DSC.replace("Binary:", "Source: u-boot\nBinary:"), "field Source is given twice"),
            (DSC.replace("Binary: u-boot,", &format!("Binary: {}", "u-boot-x, ".repeat(8000))), "field Binary is longer than"),
            (DSC.replace("Binary: u-boot,", &format!("Binary: u-boot,\n{}", " u-boot-x,\n".repeat(8000))), "field Binary is longer than"),
            (DSC.replace("Binary: u-boot,", "Binary u-boot,"), "is not a field"),
            (DSC.replace("Version: 2023", "Version: -o2023"), "is not a Debian version"),
            (DSC.replace("Source: u-boot", "Source: ../u-boot"), "is not a Debian package name"),
            (DSC.replace("\n\n-----BEGIN PGP SIGNATURE-----", "\n"), "without its signature"),
        ];
        for (text, message) in cases {
            let err = parse(&text).unwrap_err();
            assert!(err.contains(message), "wanted {message:?}, got {err:?}");
        }
        let many: String = (0..FILES_LIMIT + 1)
            .map(|n| format!(" {} 1 u-boot_{n}.tar.xz\n", "a".repeat(64)))
            .collect();
        let text = format!("Source: u-boot\nVersion: 1\nChecksums-Sha256:\n{many}");
        assert!(parse(&text).unwrap_err().contains("more than 64 files"));
    }

    #[test]
    fn listed_files_are_verified_beside_the_dsc() {
        let dir = std::env::temp_dir().join(format!("kiln-dsc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("pkg_1.tar.xz"), b"hello\n").unwrap();
        // sha256sum of "hello\n".
        let sha = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03";
        let text = format!("Source: pkg\nVersion: 1\nChecksums-Sha256:\n {sha} 6 pkg_1.tar.xz\n");
        let path = dir.join("pkg_1.dsc");
        let dsc = parse(&text).unwrap();
        verify_beside(&path, &dsc).unwrap();
        std::fs::write(dir.join("pkg_1.tar.xz"), b"hellO\n").unwrap();
        let err = verify_beside(&path, &dsc).unwrap_err().to_string();
        assert!(err.contains("pkg_1.tar.xz: SHA-256, "), "{err}");
        assert!(err.contains(sha), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
