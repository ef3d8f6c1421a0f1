//! busybox applet links, found without running busybox (it may be another arch's).
//!
//! busybox keeps its applet names as one sorted, NUL-separated table that starts with
//! `[` and `[[` (`applet_names[]` in `applets.h`); the table ends at an empty name. kiln
//! reads that table from the binary and links every applet to busybox, unless the image
//! already has that path (s6 and execline programs, kiln's reboot helpers win).

use crate::tree::{ArchivePath, Kind, Meta, Node, Tree};

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum AppletError {
    #[error(
        "{0}: no applet table found (note: list the applets in the board instead, or check this is busybox)"
    )]
    NoTable(String),
}

/// The applet names compiled into a busybox binary.
pub fn applets(binary: &[u8], origin: &str) -> Result<Vec<String>, AppletError> {
    let start = find(binary, b"[\0[[\0").ok_or_else(|| AppletError::NoTable(origin.to_string()))?;
    let mut names = Vec::new();
    for name in binary[start..].split(|&b| b == 0) {
        if name.is_empty() {
            break;
        }
        let plausible = name
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"[]-_.".contains(&b));
        if !plausible || names.len() > 2000 {
            return Err(AppletError::NoTable(origin.to_string()));
        }
        names.push(String::from_utf8_lossy(name).into_owned());
    }
    if names.len() < 3 || !names.windows(2).all(|pair| pair[0] < pair[1]) {
        return Err(AppletError::NoTable(origin.to_string()));
    }
    Ok(names)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// Links each applet as `dir/<applet>` → `target` (e.g. `/bin/busybox`), skipping
/// paths the image already has. Returns how many links were made.
pub fn link(tree: &mut Tree, applets: &[String], dir: &str, target: &str) -> usize {
    let mut made = 0;
    for applet in applets {
        let Ok(path) = ArchivePath::new(&format!("{dir}/{applet}")) else {
            continue;
        };
        if tree.get(&path).is_some() || format!("/{}", path.as_str()) == target {
            continue;
        }
        let node = Node::new(
            Kind::Symlink(target.to_string()),
            Meta::root(0o777),
            "busybox applets",
        );
        if tree.insert(path, node).is_ok() {
            made += 1;
        }
    }
    made
}

/// Links busybox's applets in `/bin` when the image has `/bin/busybox` (read from the
/// binary, never run; existing paths win).
pub fn add_links(image: &mut Tree) -> anyhow::Result<()> {
    let Some(Node {
        kind: Kind::File(content),
        ..
    }) = crate::tree::resolve::resolve(image, "/bin/busybox")
        .and_then(|path| image.get(&path).cloned())
    else {
        return Ok(());
    };
    let bytes = anyhow::Context::context(content.read_all(), "unable to read busybox")?;
    let names = applets(&bytes, "/bin/busybox")?;
    link(image, &names, "bin", "/bin/busybox");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_synthetic_table() {
        let mut binary = b"\x7fELF junk \0\0".to_vec();
        binary.extend_from_slice(b"[\0[[\0ash\0cat\0sh\0\0more junk");
        assert_eq!(
            applets(&binary, "x").unwrap(),
            vec!["[", "[[", "ash", "cat", "sh"]
        );
        assert!(applets(b"no table here", "y").is_err());
        let unsorted = b"[\0[[\0sh\0ash\0\0";
        assert_eq!(
            applets(unsorted, "z"),
            Err(AppletError::NoTable("z".to_string()))
        );
    }

    /// The host's busybox-static, when present, as a real fixture: the table kiln reads
    /// equals what `busybox --list` prints (the test runs the host's busybox; kiln never
    /// runs the image's).
    #[test]
    fn matches_busybox_list_on_a_real_binary() {
        let Ok(binary) = std::fs::read("/bin/busybox") else {
            if std::env::var_os("CI").is_some() {
                panic!("CI installs busybox-static");
            }
            return;
        };
        let listed = std::process::Command::new("/bin/busybox")
            .arg("--list")
            .output()
            .unwrap();
        let mut expected: Vec<String> = String::from_utf8_lossy(&listed.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        expected.sort();
        assert_eq!(applets(&binary, "/bin/busybox").unwrap(), expected);
        let mut tree = Tree::new();
        tree.file("bin/busybox", "x", Meta::root(0o755), "t")
            .unwrap();
        tree.file("bin/cat", "not busybox", Meta::root(0o755), "t")
            .unwrap();
        let made = link(&mut tree, &expected, "bin", "/bin/busybox");
        // `busybox` is an applet too; it and `cat` are already in the image.
        assert_eq!(made, expected.len() - 2);
        let sh = tree.get(&ArchivePath::new("bin/sh").unwrap()).unwrap();
        assert_eq!(sh.kind, Kind::Symlink("/bin/busybox".to_string()));
    }
}
