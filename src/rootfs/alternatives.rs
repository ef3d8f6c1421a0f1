//! What `update-alternatives --install` in a package's postinst would leave in the image,
//! without running the script: the script is read for its literal calls, and for each
//! alternative name the highest-priority path present in the image wins, as in
//! update-alternatives' automatic mode. `LINK -> /etc/alternatives/NAME -> PATH`, slaves
//! included when their path is in the image (documentation is not). A call built from
//! shell variables cannot be read this way: it is left out and listed by `--explain`,
//! and the whole-image check catches a link that is then missing.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::Result;

use crate::tree::resolve;
use crate::tree::{ArchivePath, Kind, Meta, Node, Tree};

/// One `--install` (with its `--slave`s) of one package.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Install {
    pub package: String,
    pub priority: i64,
    /// (link, name, path): the master first, then the slaves.
    pub links: Vec<(String, String, String)>,
}

/// What a postinst's literal `update-alternatives --install` calls ask for, and the
/// calls that could not be read (they use shell expansions).
pub fn parse(package: &str, script: &[u8]) -> (Vec<Install>, Vec<String>) {
    let text = String::from_utf8_lossy(script).replace("\\\n", " ");
    let mut installs = Vec::new();
    let mut skipped = Vec::new();
    for line in text.lines() {
        let line = line.split(" #").next().unwrap_or("");
        let words: Vec<&str> = line.split_whitespace().collect();
        let mut at = 0;
        while let Some(start) = words[at..]
            .iter()
            .position(|word| *word == "update-alternatives")
        {
            let command: Vec<&str> = words[at + start + 1..]
                .iter()
                .copied()
                .take_while(|word| !matches!(*word, ";" | "&&" | "||" | "|" | ">" | "2>&1"))
                .collect();
            at += start + 1;
            if !command.contains(&"--install") {
                continue;
            }
            if command
                .iter()
                .any(|word| word.contains(['$', '`', '"', '\'', '*']))
            {
                skipped.push(format!(
                    "{package}: update-alternatives {}",
                    command.join(" ")
                ));
                continue;
            }
            match read_install(package, &command) {
                Some(install) => installs.push(install),
                None => skipped.push(format!(
                    "{package}: update-alternatives {}",
                    command.join(" ")
                )),
            }
        }
    }
    (installs, skipped)
}

fn read_install(package: &str, words: &[&str]) -> Option<Install> {
    let mut words = words
        .iter()
        .copied()
        .skip_while(|word| *word != "--install");
    words.next();
    let (link, name, path) = (words.next()?, words.next()?, words.next()?);
    let priority = words.next()?.parse().ok()?;
    let mut links = vec![(link.to_string(), name.to_string(), path.to_string())];
    while let Some(word) = words.next() {
        if word != "--slave" {
            return None;
        }
        let (link, name, path) = (words.next()?, words.next()?, words.next()?);
        links.push((link.to_string(), name.to_string(), path.to_string()));
    }
    let absolute = links.iter().all(|(link, name, path)| {
        link.starts_with('/') && path.starts_with('/') && !name.contains('/')
    });
    absolute.then(|| Install {
        package: package.to_string(),
        priority,
        links,
    })
}

/// Applies the alternatives of the installed packages' postinsts; returns `--explain`'s
/// text (what was linked, what could not be read).
pub fn apply(image: &mut Tree, postinsts: &[(String, Vec<u8>)]) -> Result<String> {
    let mut by_name: BTreeMap<String, Vec<Install>> = BTreeMap::new();
    let mut explain = String::new();
    for (package, script) in postinsts {
        let (installs, skipped) = parse(package, script);
        for install in installs {
            by_name
                .entry(install.links[0].1.clone())
                .or_default()
                .push(install);
        }
        for call in skipped {
            let _ = writeln!(explain, "not read (shell expansions): {call}");
        }
    }
    for (name, mut installs) in by_name {
        // Highest priority first; equal priorities by package name.
        installs.sort_by(|a, b| b.priority.cmp(&a.priority).then(a.package.cmp(&b.package)));
        let Some(best) = installs
            .iter()
            .find(|install| resolve::resolve(image, &install.links[0].2).is_some())
        else {
            continue;
        };
        for (link, slave, path) in &best.links {
            if resolve::resolve(image, path).is_none() {
                continue; // A slave whose file is not in the image (a man page, say).
            }
            let Some(link_path) = placed(image, link) else {
                continue;
            };
            if image.get(&link_path).is_some() {
                continue; // A package's own file wins, as update-alternatives will not replace it.
            }
            let origin = format!("alternatives ({})", best.package);
            image.dir("etc/alternatives", Meta::root(0o755), &origin)?;
            let entry = ArchivePath::new(&format!("etc/alternatives/{slave}"))?;
            image.replace(
                entry,
                Node::new(Kind::Symlink(path.clone()), Meta::root(0o777), &origin),
            )?;
            image.replace(
                link_path,
                Node::new(
                    Kind::Symlink(format!("/etc/alternatives/{slave}")),
                    Meta::root(0o777),
                    &origin,
                ),
            )?;
            let _ = writeln!(
                explain,
                "{slave}: {link} -> {path} ({}, priority {}{})",
                best.package,
                best.priority,
                if *slave == name { "" } else { ", slave" }
            );
        }
    }
    Ok(crate::error::printable(&explain))
}

/// Where a link path lands in the image: its parent resolved through the image's links
/// (merged /usr).
fn placed(image: &Tree, link: &str) -> Option<ArchivePath> {
    let path = ArchivePath::new(link).ok()?;
    match path.parent() {
        Some(parent) => resolve::lenient(image, parent.as_str())?
            .join(path.file_name())
            .ok(),
        None => Some(path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAWK: &str = "#!/bin/sh\nset -e\nif [ \"$1\" = configure ]; then\n  update-alternatives \\\n    --install /usr/bin/awk awk /usr/bin/mawk 5 \\\n    --slave /usr/share/man/man1/awk.1.gz awk.1.gz /usr/share/man/man1/mawk.1.gz \\\n    --slave /usr/bin/nawk nawk /usr/bin/mawk\nfi\n";

    #[test]
    fn literal_calls_are_read_and_expansions_are_not() {
        let (installs, skipped) = parse("mawk", MAWK.as_bytes());
        assert_eq!(installs.len(), 1);
        assert_eq!(installs[0].priority, 5);
        assert_eq!(
            installs[0].links[2],
            (
                "/usr/bin/nawk".to_string(),
                "nawk".to_string(),
                "/usr/bin/mawk".to_string()
            )
        );
        assert!(skipped.is_empty());
        let script = b"update-alternatives --install /usr/bin/x x /usr/lib/$TRIPLET/x 10 || true\nupdate-alternatives --remove x /usr/bin/y\n";
        let (installs, skipped) = parse("p", script);
        assert!(installs.is_empty());
        assert_eq!(
            skipped,
            vec!["p: update-alternatives --install /usr/bin/x x /usr/lib/$TRIPLET/x 10"]
        );
    }

    #[test]
    fn the_highest_priority_present_wins_and_files_are_not_replaced() {
        let mut image = Tree::new();
        image.dir("usr/bin", Meta::root(0o755), "t").unwrap();
        image.symlink("bin", "usr/bin", "t").unwrap();
        image
            .file("usr/bin/mawk", "m", Meta::root(0o755), "mawk")
            .unwrap();
        image
            .file("usr/bin/nawk", "n", Meta::root(0o755), "other")
            .unwrap();
        let gawk = b"update-alternatives --install /bin/awk awk /usr/bin/gawk 10\n".to_vec();
        let explain = apply(
            &mut image,
            &[
                ("gawk".to_string(), gawk),
                ("mawk".to_string(), MAWK.as_bytes().to_vec()),
            ],
        )
        .unwrap();
        // gawk's priority is higher, but its path is not in the image.
        let awk = image
            .get(&ArchivePath::new("usr/bin/awk").unwrap())
            .unwrap();
        assert_eq!(awk.kind, Kind::Symlink("/etc/alternatives/awk".to_string()));
        let entry = image
            .get(&ArchivePath::new("etc/alternatives/awk").unwrap())
            .unwrap();
        assert_eq!(entry.kind, Kind::Symlink("/usr/bin/mawk".to_string()));
        assert_eq!(
            resolve::resolve(&image, "/bin/awk").unwrap().as_str(),
            "usr/bin/mawk"
        );
        // nawk is a file of another package: kept.
        let nawk = image
            .get(&ArchivePath::new("usr/bin/nawk").unwrap())
            .unwrap();
        assert!(matches!(nawk.kind, Kind::File(_)));
        assert_eq!(
            explain,
            "awk: /usr/bin/awk -> /usr/bin/mawk (mawk, priority 5)\n"
        );
    }
}
