//! The host's apt sources, read to extend kiln's private apt state: a board that needs an
//! archive component the host does not enable (`non-free-firmware` for the Pi firmware),
//! or Debian source packages (U-Boot built from source), gets an extra sources file with
//! the host's own mirror URIs and suites. No mirror is ever named by kiln itself.

use std::path::Path;

use anyhow::{Context, Result};

/// One entry of the host's sources: where, which suites, and its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub uris: Vec<String>,
    pub suites: Vec<String>,
    pub signed_by: Option<String>,
}

/// The `deb` entries of deb822 `.sources` text and one-line `.list` text.
pub fn parse(text: &str, deb822: bool) -> Vec<Entry> {
    let mut entries = Vec::new();
    if deb822 {
        for stanza in text.split("\n\n") {
            let mut types = Vec::new();
            let mut entry = Entry {
                uris: Vec::new(),
                suites: Vec::new(),
                signed_by: None,
            };
            let mut enabled = true;
            for line in stanza.lines() {
                if line.starts_with('#') {
                    continue;
                }
                let Some((key, value)) = line.split_once(':') else {
                    continue;
                };
                let words = || value.split_whitespace().map(str::to_string).collect();
                match key.trim() {
                    "Types" => types = words(),
                    "URIs" => entry.uris = words(),
                    "Suites" => entry.suites = words(),
                    "Signed-By" => entry.signed_by = Some(value.trim().to_string()),
                    "Enabled" => enabled = value.trim() != "no",
                    _ => {}
                }
            }
            if enabled && types.iter().any(|kind| kind == "deb") && !entry.uris.is_empty() {
                entries.push(entry);
            }
        }
    } else {
        for line in text.lines() {
            let mut words = line.split_whitespace().peekable();
            if words.next() != Some("deb") {
                continue;
            }
            let mut signed_by = None;
            if words.peek().is_some_and(|word| word.starts_with('[')) {
                for word in words.by_ref() {
                    let option = word.trim_matches(|c| c == '[' || c == ']');
                    if let Some(key) = option.strip_prefix("signed-by=") {
                        signed_by = Some(key.to_string());
                    }
                    if word.ends_with(']') {
                        break;
                    }
                }
            }
            let (Some(uri), Some(suite)) = (words.next(), words.next()) else {
                continue;
            };
            entries.push(Entry {
                uris: vec![uri.to_string()],
                suites: vec![suite.to_string()],
                signed_by,
            });
        }
    }
    entries
}

/// A deb822 sources file with `components` (and, if `types` says so, deb-src) for every
/// host entry of the host's own release: suites named after `codename`
/// (`bookworm`, `bookworm-updates`, `bookworm-security`, ...), so third-party archives
/// the host also uses are left alone.
pub fn extra_sources(
    entries: &[Entry],
    codename: &str,
    types: &str,
    components: &[String],
) -> String {
    let mut text = String::from("# Written by kiln: the host's own mirrors, more components.\n");
    for entry in entries {
        let suites: Vec<&str> = entry
            .suites
            .iter()
            .map(String::as_str)
            .filter(|suite| {
                *suite == codename
                    || suite
                        .strip_prefix(codename)
                        .is_some_and(|rest| rest.starts_with('-'))
            })
            .collect();
        if suites.is_empty() {
            continue;
        }
        text.push_str(&format!(
            "\nTypes: {types}\nURIs: {}\nSuites: {}\nComponents: {}\n",
            entry.uris.join(" "),
            suites.join(" "),
            components.join(" ")
        ));
        if let Some(key) = &entry.signed_by {
            text.push_str(&format!("Signed-By: {key}\n"));
        }
    }
    text
}

/// The host's entries, from `/etc/apt/sources.list` and `/etc/apt/sources.list.d`.
pub fn host_entries() -> Result<Vec<Entry>> {
    let mut entries = Vec::new();
    let main = Path::new("/etc/apt/sources.list");
    if let Ok(text) = std::fs::read_to_string(main) {
        entries.extend(parse(&text, false));
    }
    let dir = Path::new("/etc/apt/sources.list.d");
    if let Ok(listing) = std::fs::read_dir(dir) {
        let mut paths: Vec<_> = listing
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .collect();
        paths.sort();
        for path in paths {
            let deb822 = path.extension().is_some_and(|ext| ext == "sources");
            let list = path.extension().is_some_and(|ext| ext == "list");
            if deb822 || list {
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("unable to read {}", path.display()))?;
                entries.extend(parse(&text, deb822));
            }
        }
    }
    Ok(entries)
}

/// The host's release codename, from `/etc/os-release`.
pub fn host_codename() -> Option<String> {
    let text = std::fs::read_to_string("/etc/os-release").ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix("VERSION_CODENAME="))
        .map(|name| name.trim_matches('"').to_string())
        .filter(|name| !name.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_components_for_the_hosts_own_release_only() {
        let deb822 = "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\nTypes: deb\nURIs: http://other.example/apt\nSuites: nodistro\nComponents: main\n\nTypes: deb-src\nURIs: http://src.example/debian\nSuites: bookworm\nComponents: main\n";
        let list = "# comment\ndeb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian-security bookworm-security main\ndeb http://x.example/apt cloud-sdk-bookworm main\n";
        let mut entries = parse(deb822, true);
        entries.extend(parse(list, false));
        assert_eq!(entries.len(), 4);
        let text = extra_sources(
            &entries,
            "bookworm",
            "deb",
            &["non-free-firmware".to_string()],
        );
        expect_test::expect![[r#"
            # Written by kiln: the host's own mirrors, more components.

            Types: deb
            URIs: http://mirror.example/debian
            Suites: bookworm bookworm-updates
            Components: non-free-firmware
            Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

            Types: deb
            URIs: http://mirror.example/debian-security
            Suites: bookworm-security
            Components: non-free-firmware
            Signed-By: /k.gpg
        "#]]
        .assert_eq(&text);
    }
}
