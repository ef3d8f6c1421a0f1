//! The ELF shared-library closure of an image, resolved inside the image itself.
//!
//! For every ELF executable and shared object in the tree: PT_INTERP and each DT_NEEDED
//! are looked up the way the target's loader would (DT_RPATH unless DT_RUNPATH is set,
//! then DT_RUNPATH, with `$ORIGIN`; the arch's multiarch and default directories),
//! following symlinks *inside the image*. No target code runs and the host's libraries
//! are never consulted. The loader reads ld.so.conf's directories only through
//! /etc/ld.so.cache, which kiln does not generate: without a cache in the image, a
//! library found only there is reported as such.

use std::collections::BTreeMap;
use std::io::Read;

use crate::arch::{Arch, machine_name};
use crate::tree::{ArchivePath, Kind, Node, Tree};

/// How an object names what it needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum How {
    /// The program interpreter (the dynamic loader), by absolute path.
    Interp,
    /// A shared library, by name (searched) or by path.
    Needed,
}

impl std::fmt::Display for How {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            How::Interp => "PT_INTERP",
            How::Needed => "DT_NEEDED",
        })
    }
}

/// One satisfied dependency, for `--explain`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub object: ArchivePath,
    pub how: How,
    pub needed: String,
    pub found: ArchivePath,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ElfError {
    #[error("{object}: needs {needed} ({how}), which is not in the image (searched {searched})")]
    Missing {
        object: ArchivePath,
        how: How,
        needed: String,
        searched: String,
    },
    #[error("{object}: built for {found}, but the board's arch is {want}")]
    WrongArch {
        object: ArchivePath,
        found: String,
        want: Arch,
    },
    #[error("{object}: unreadable ELF: {what}")]
    Unreadable { object: ArchivePath, what: String },
    #[error(
        "{object}: needs {needed} (DT_NEEDED), found only in {found}, a directory of ld.so.conf, which the loader reads only through /etc/ld.so.cache (kiln does not generate one)"
    )]
    NeedsCache {
        object: ArchivePath,
        needed: String,
        found: ArchivePath,
    },
}

impl ElfError {
    /// The object the problem is about.
    pub fn object(&self) -> &ArchivePath {
        match self {
            ElfError::Missing { object, .. }
            | ElfError::WrongArch { object, .. }
            | ElfError::Unreadable { object, .. }
            | ElfError::NeedsCache { object, .. } => object,
        }
    }
}

/// Checks every ELF object of `tree` for `arch`. Returns every link on success, or every
/// problem found (not just the first).
pub fn check(tree: &Tree, arch: Arch) -> Result<Vec<Link>, Vec<ElfError>> {
    let (links, errors) = scan(tree, arch);
    if errors.is_empty() {
        Ok(links)
    } else {
        Err(errors)
    }
}

/// Every link and every problem of `tree`'s ELF objects.
pub fn scan(tree: &Tree, arch: Arch) -> (Vec<Link>, Vec<ElfError>) {
    let search_conf = ld_so_conf(tree);
    let has_cache = crate::tree::resolve::resolve(tree, "/etc/ld.so.cache").is_some();
    let mut links = Vec::new();
    let mut errors = Vec::new();
    for (path, node) in tree.iter() {
        let Kind::File(content) = &node.kind else {
            continue;
        };
        let Some(bytes) = read_elf(content) else {
            continue;
        };
        let unreadable = |what: String| ElfError::Unreadable {
            object: path.clone(),
            what,
        };
        let elf = match goblin::elf::Elf::parse(&bytes) {
            Ok(elf) => elf,
            Err(err) => {
                errors.push(unreadable(err.to_string()));
                continue;
            }
        };
        let kind = elf.header.e_type;
        if kind != goblin::elf::header::ET_EXEC && kind != goblin::elf::header::ET_DYN {
            continue; // Kernel modules and object files have no loader dependencies.
        }
        if elf.header.e_machine != arch.elf_machine() || elf.is_64 != arch.is_64_bit() {
            errors.push(ElfError::WrongArch {
                object: path.clone(),
                found: format!(
                    "{} ({}-bit)",
                    machine_name(elf.header.e_machine),
                    if elf.is_64 { 64 } else { 32 }
                ),
                want: arch,
            });
            continue;
        }
        if let Some(interp) = elf.interpreter {
            match crate::tree::resolve::resolve(tree, interp) {
                Some(found) if is_compatible(tree, &found, arch) => links.push(Link {
                    object: path.clone(),
                    how: How::Interp,
                    needed: interp.to_string(),
                    found,
                }),
                _ => errors.push(ElfError::Missing {
                    object: path.clone(),
                    how: How::Interp,
                    needed: interp.to_string(),
                    searched: interp.to_string(),
                }),
            }
        }
        let origin = path
            .parent()
            .map_or_else(|| "/".to_string(), |parent| parent.to_string());
        let expand = |list: &[&str]| -> Vec<String> {
            list.iter()
                .flat_map(|entry| entry.split(':'))
                .filter(|dir| !dir.is_empty())
                .map(|dir| {
                    dir.replace("${ORIGIN}", &origin)
                        .replace("$ORIGIN", &origin)
                })
                .collect()
        };
        let mut dirs = if elf.runpaths.is_empty() {
            expand(&elf.rpaths)
        } else {
            Vec::new()
        };
        dirs.extend(expand(&elf.runpaths));
        if has_cache {
            dirs.extend(search_conf.iter().cloned());
        }
        dirs.extend(arch.default_library_dirs());
        for needed in &elf.libraries {
            let found = if needed.contains('/') {
                crate::tree::resolve::resolve(tree, needed)
                    .filter(|found| is_compatible(tree, found, arch))
            } else {
                dirs.iter()
                    .filter_map(|dir| {
                        crate::tree::resolve::resolve(tree, &format!("{dir}/{needed}"))
                    })
                    .find(|found| is_compatible(tree, found, arch))
            };
            match found {
                Some(found) => links.push(Link {
                    object: path.clone(),
                    how: How::Needed,
                    needed: needed.to_string(),
                    found,
                }),
                None => {
                    let in_conf = search_conf
                        .iter()
                        .filter(|_| !needed.contains('/'))
                        .filter_map(|dir| {
                            crate::tree::resolve::resolve(tree, &format!("{dir}/{needed}"))
                        })
                        .find(|found| is_compatible(tree, found, arch));
                    errors.push(match in_conf {
                        Some(found) => ElfError::NeedsCache {
                            object: path.clone(),
                            needed: needed.to_string(),
                            found,
                        },
                        None => ElfError::Missing {
                            object: path.clone(),
                            how: How::Needed,
                            needed: needed.to_string(),
                            searched: dirs.join(":"),
                        },
                    });
                }
            }
        }
    }
    (links, errors)
}

/// The whole file if it starts with the ELF magic.
fn read_elf(content: &crate::tree::content::Content) -> Option<Vec<u8>> {
    if content.len() < 64 {
        return None;
    }
    let mut magic = [0u8; 4];
    content.open().ok()?.read_exact(&mut magic).ok()?;
    if &magic != b"\x7fELF" {
        return None;
    }
    content.read_all().ok()
}

/// A library candidate is usable when it is an ELF object for the same machine and class
/// (the loader skips incompatible ones and keeps searching).
fn is_compatible(tree: &Tree, path: &ArchivePath, arch: Arch) -> bool {
    let Some(Node {
        kind: Kind::File(content),
        ..
    }) = tree.get(path)
    else {
        return false;
    };
    // The header decides; reading whole libraries for every candidate of every object
    // made the closure check read libc hundreds of times.
    let mut header = [0u8; 64];
    let read = content
        .open()
        .and_then(|mut reader| reader.read_exact(&mut header));
    if read.is_err() || &header[..4] != b"\x7fELF" {
        return false;
    }
    goblin::elf::Elf::parse_header(&header).is_ok_and(|header| {
        header.e_machine == arch.elf_machine()
            && (header.e_ident[goblin::elf::header::EI_CLASS] == goblin::elf::header::ELFCLASS64)
                == arch.is_64_bit()
    })
}

/// Directories from the image's /etc/ld.so.conf, following `include` globs of the
/// `dir/*.conf` form.
fn ld_so_conf(tree: &Tree) -> Vec<String> {
    let mut dirs = Vec::new();
    read_conf(tree, "/etc/ld.so.conf", &mut dirs, &mut Vec::new(), 0);
    let mut unique = Vec::new();
    for dir in dirs {
        if !unique.contains(&dir) {
            unique.push(dir);
        }
    }
    unique
}

fn read_conf(
    tree: &Tree,
    file: &str,
    dirs: &mut Vec<String>,
    seen: &mut Vec<ArchivePath>,
    depth: usize,
) {
    // Each file is read once, however many includes name it (includes of includes would
    // otherwise multiply), and only when it is of a size an ld.so.conf can be.
    let Some(path) = crate::tree::resolve::resolve(tree, file) else {
        return;
    };
    if seen.contains(&path) {
        return;
    }
    seen.push(path.clone());
    let Some(text) = (match tree.get(&path) {
        Some(Node {
            kind: Kind::File(content),
            ..
        }) if content.len() <= 1 << 20 => content.read_all().ok(),
        _ => None,
    }) else {
        return;
    };
    for line in String::from_utf8_lossy(&text).lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if let Some(pattern) = line.strip_prefix("include") {
            if depth > 4 {
                continue;
            }
            let pattern = pattern.trim();
            let (dir, glob) = pattern.rsplit_once('/').unwrap_or(("", pattern));
            let suffix = glob.strip_prefix('*').unwrap_or(glob);
            let mut matches: Vec<String> = tree
                .iter()
                .filter(|(path, _)| {
                    path.parent()
                        .is_some_and(|parent| format!("/{}", parent.as_str()) == dir)
                        && path.file_name().ends_with(suffix)
                })
                .map(|(path, _)| path.to_string())
                .collect();
            matches.sort();
            for included in matches {
                read_conf(tree, &included, dirs, seen, depth + 1);
            }
        } else if line.starts_with('/') {
            dirs.push(line.to_string());
        }
    }
}

/// `--explain` text: one line per link, grouped by object.
pub fn explain(links: &[Link], origin: impl Fn(&ArchivePath) -> Option<String>) -> String {
    let mut by_object: BTreeMap<&ArchivePath, Vec<&Link>> = BTreeMap::new();
    for link in links {
        by_object.entry(&link.object).or_default().push(link);
    }
    let mut out = String::new();
    for (object, links) in by_object {
        out.push_str(&crate::error::printable(&format!("{object}\n")));
        for link in links {
            let line = format!("  {} {} -> {}", link.how, link.needed, link.found);
            out.push_str(&crate::error::printable(&line).replace('\n', "\\n"));
            if let Some(origin) = origin(&link.found) {
                out.push_str(&format!(" ({origin})"));
            }
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::Meta;
    use crate::tree::content::Content;
    use std::path::Path;

    fn host_file(tree: &mut Tree, image_path: &str, host: &str) {
        let len = std::fs::metadata(host).unwrap().len();
        let content = Content::Host {
            path: Path::new(host).to_path_buf(),
            len,
        };
        let node = Node::new(Kind::File(content), Meta::root(0o755), "host");
        tree.insert(ArchivePath::new(image_path).unwrap(), node)
            .unwrap();
    }

    #[test]
    fn resolves_through_image_symlinks_only() {
        let mut tree = Tree::new();
        tree.file("usr/lib/x/libc.so.6", "x", Meta::root(0o644), "t")
            .unwrap();
        tree.symlink("lib", "usr/lib", "t").unwrap();
        tree.symlink("usr/lib/x/libc.so", "libc.so.6", "t").unwrap();
        tree.symlink("loop", "loop", "t").unwrap();
        let found = |path: &str| crate::tree::resolve::resolve(&tree, path).map(|p| p.to_string());
        assert_eq!(
            found("/lib/x/libc.so"),
            Some("/usr/lib/x/libc.so.6".to_string())
        );
        assert_eq!(
            found("/lib/../lib/x/libc.so.6"),
            Some("/usr/lib/x/libc.so.6".to_string())
        );
        assert_eq!(found("/lib/x/missing"), None);
        assert_eq!(found("/loop/x"), None);
    }

    /// Uses the build host's own s6-svscan as a fixture when it is x86_64 Debian.
    #[test]
    fn closure_of_a_real_binary() {
        let binary = "/usr/bin/s6-svscan";
        let libc = "/lib/x86_64-linux-gnu/libc.so.6";
        let skarnet = "/lib/x86_64-linux-gnu/libskarnet.so.2.13";
        let loader = "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2";
        if [binary, libc, skarnet, loader]
            .iter()
            .any(|p| !Path::new(p).exists())
        {
            if std::env::var_os("CI").is_some() {
                panic!("CI installs s6 on x86_64 Debian; fixture missing");
            }
            eprintln!("skipping: no x86_64 s6 on this host");
            return;
        }
        let mut tree = Tree::new();
        host_file(&mut tree, "usr/bin/s6-svscan", binary);
        host_file(&mut tree, "lib/x86_64-linux-gnu/libc.so.6", libc);
        host_file(
            &mut tree,
            "lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
            loader,
        );
        tree.symlink(
            "lib64/ld-linux-x86-64.so.2",
            "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
            "t",
        )
        .unwrap();
        let errors = check(&tree, Arch::X86_64).unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].to_string().starts_with(
                "/usr/bin/s6-svscan: needs libskarnet.so.2.13 (DT_NEEDED), which is not in the image"
            ),
            "{}",
            errors[0]
        );
        host_file(
            &mut tree,
            "usr/lib/x86_64-linux-gnu/libskarnet.so.2.13",
            skarnet,
        );
        let links = check(&tree, Arch::X86_64).unwrap();
        let text = explain(&links, |_| None);
        assert!(text.contains("/usr/bin/s6-svscan\n  PT_INTERP /lib64/ld-linux-x86-64.so.2 -> /lib/x86_64-linux-gnu/ld-linux-x86-64.so.2\n"), "{text}");
        assert!(
            text.contains(
                "  DT_NEEDED libskarnet.so.2.13 -> /usr/lib/x86_64-linux-gnu/libskarnet.so.2.13\n"
            ),
            "{text}"
        );
        let errors = check(&tree, Arch::Aarch64).unwrap_err();
        assert!(
            errors
                .iter()
                .all(|err| matches!(err, ElfError::WrongArch { .. })),
            "{errors:?}"
        );
        assert_eq!(
            errors[0].to_string(),
            "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2: built for x86_64 (64-bit), but the board's arch is aarch64"
        );
    }
}
