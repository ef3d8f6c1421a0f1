//! Kernel modules from a Debian kernel package, without running anything.
//!
//! The .deb ships no modules.dep, so the closure comes from each module's own `.modinfo`
//! section: `depends=` (hard dependencies) and `softdep=` `pre:` entries (ext4 wants
//! `crc32c` first), resolved by module name or by alias. An alias that several modules
//! provide resolves to the generic implementation (`crc32c` → `crc32c_generic`), since
//! the CPU-specific ones need instructions an emulated CPU may not offer. The result is
//! in load order: every module after what it needs.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Result, bail};

use std::fmt::Write as _;
use std::path::PathBuf;

use crate::config::Board;
use crate::fetch;
use crate::source::deb;
use crate::tree::content::Content;
use crate::tree::{ArchivePath, Kind, Meta, Node, Tree};

/// One module's metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Module {
    /// Canonical name: dashes as underscores, no `.ko`.
    pub name: String,
    pub path: ArchivePath,
    pub depends: Vec<String>,
    pub softdeps: Vec<String>,
    pub aliases: Vec<String>,
}

/// Module names compare with `-` and `_` as one.
pub fn canonical(name: &str) -> String {
    name.trim_end_matches(".ko").replace('-', "_")
}

/// Every `.ko` under `lib/modules/` in the kernel package's tree, by canonical name.
pub fn index(tree: &Tree) -> Result<BTreeMap<String, Module>> {
    let mut modules = BTreeMap::new();
    for (path, node) in tree.iter() {
        if !path.as_str().starts_with("lib/modules/") || !path.as_str().ends_with(".ko") {
            continue;
        }
        let Kind::File(content) = &node.kind else {
            continue;
        };
        let bytes = content.read_all()?;
        let info = modinfo(&bytes).map_err(|why| anyhow::anyhow!("{path}: {why}"))?;
        let name = canonical(path.file_name());
        let list = |key: &str| -> Vec<String> {
            info.iter()
                .filter(|(k, _)| k == key)
                .flat_map(|(_, v)| v.split(',').map(str::to_string).collect::<Vec<_>>())
                .filter(|v| !v.is_empty())
                .collect()
        };
        let softdeps = info
            .iter()
            .filter(|(k, _)| k == "softdep")
            .flat_map(|(_, value)| pre_softdeps(value))
            .collect();
        modules.insert(
            name.clone(),
            Module {
                name,
                path: path.clone(),
                depends: list("depends").iter().map(|d| canonical(d)).collect(),
                softdeps,
                aliases: list("alias"),
            },
        );
    }
    Ok(modules)
}

/// `pre: a b post: c` → `[a, b]`.
fn pre_softdeps(value: &str) -> Vec<String> {
    let mut pre = Vec::new();
    let mut in_pre = false;
    for word in value.split_whitespace() {
        match word {
            "pre:" => in_pre = true,
            "post:" => in_pre = false,
            _ if in_pre => pre.push(word.to_string()),
            _ => {}
        }
    }
    pre
}

/// The key=value strings of an ELF object's `.modinfo` section.
pub fn modinfo(bytes: &[u8]) -> Result<Vec<(String, String)>, String> {
    let elf = goblin::elf::Elf::parse(bytes).map_err(|err| format!("not an ELF module: {err}"))?;
    let section = elf
        .section_headers
        .iter()
        .find(|header| elf.shdr_strtab.get_at(header.sh_name) == Some(".modinfo"))
        .ok_or_else(|| "no .modinfo section".to_string())?;
    let start = section.sh_offset as usize;
    let data = start
        .checked_add(section.sh_size as usize)
        .and_then(|end| bytes.get(start..end))
        .ok_or_else(|| ".modinfo lies outside the file".to_string())?;
    Ok(data
        .split(|&b| b == 0)
        .filter_map(|entry| {
            let text = std::str::from_utf8(entry).ok()?;
            let (key, value) = text.split_once('=')?;
            Some((key.to_string(), value.to_string()))
        })
        .collect())
}

/// Names of the modules built into the kernel (`modules.builtin`): asking for one is
/// not an error, there is just nothing to load.
pub fn builtin(tree: &Tree) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (path, node) in tree.iter() {
        if !path.as_str().ends_with("/modules.builtin") {
            continue;
        }
        if let crate::tree::Kind::File(content) = &node.kind {
            for line in String::from_utf8_lossy(&content.read_all().unwrap_or_default()).lines() {
                let file = line.rsplit('/').next().unwrap_or(line);
                names.insert(canonical(file.trim_end_matches(".ko")));
            }
        }
    }
    names
}

/// Resolves a name or alias to a module, preferring an exact name, then a `_generic`
/// provider, then the first provider by name.
fn resolve<'a>(modules: &'a BTreeMap<String, Module>, wanted: &str) -> Option<&'a Module> {
    if let Some(module) = modules.get(&canonical(wanted)) {
        return Some(module);
    }
    let providers: Vec<&Module> = modules
        .values()
        .filter(|module| {
            module
                .aliases
                .iter()
                .any(|alias| alias == wanted || alias == &format!("crypto-{wanted}"))
        })
        .collect();
    providers
        .iter()
        .find(|module| module.name.ends_with("_generic"))
        .or_else(|| providers.first())
        .copied()
}

/// The load order of `wanted` and everything they need. A hard dependency that is
/// missing is an error; a soft dependency that is missing is skipped, as modprobe does.
pub fn closure(modules: &BTreeMap<String, Module>, wanted: &[String]) -> Result<Vec<Module>> {
    let mut order: Vec<Module> = Vec::new();
    let mut done: BTreeSet<String> = BTreeSet::new();
    let mut visiting: BTreeSet<String> = BTreeSet::new();
    fn visit(
        modules: &BTreeMap<String, Module>,
        module: &Module,
        order: &mut Vec<Module>,
        done: &mut BTreeSet<String>,
        visiting: &mut BTreeSet<String>,
    ) -> Result<()> {
        if done.contains(&module.name) || !visiting.insert(module.name.clone()) {
            return Ok(());
        }
        for soft in &module.softdeps {
            if let Some(dep) = resolve(modules, soft) {
                visit(modules, dep, order, done, visiting)?;
            }
        }
        for hard in &module.depends {
            let Some(dep) = modules.get(hard) else {
                bail!(
                    "module {} depends on {hard}, which the kernel package lacks",
                    module.name
                );
            };
            visit(modules, dep, order, done, visiting)?;
        }
        done.insert(module.name.clone());
        order.push(module.clone());
        Ok(())
    }
    for name in wanted {
        let Some(module) = resolve(modules, name) else {
            let near: Vec<&str> = modules
                .keys()
                .filter(|known| known.contains(&canonical(name)))
                .map(String::as_str)
                .take(6)
                .collect();
            bail!(
                "no module or alias {name:?} in the kernel package{}",
                if near.is_empty() {
                    String::new()
                } else {
                    format!(" (note: close: {})", near.join(", "))
                }
            );
        };
        visit(modules, module, &mut order, &mut done, &mut visiting)?;
    }
    Ok(order)
}

/// Puts `names` (modules or aliases) and their closure from the kernel package into
/// `tree`, with `/etc/kiln/modules` listing them in load order. Modules built into the
/// kernel need nothing; a name the package does not have is a usage error.
pub fn add(
    tree: &mut Tree,
    board: &Board,
    debs: &BTreeMap<String, PathBuf>,
    names: &[String],
    key: &str,
) -> Result<()> {
    let Some(kernel_deb) = fetch::kernel_deb(debs) else {
        bail!(crate::error::Input(format!(
            "{key}: the board has no kernel package to take them from"
        )));
    };
    let package = deb::read_cached(kernel_deb)?;
    let index = index(&package.data)?;
    let builtin = builtin(&package.data);
    let wanted: Vec<String> = names
        .iter()
        .filter(|name| !builtin.contains(&canonical(name)))
        .cloned()
        .collect();
    let order = closure(&index, &wanted)
        .map_err(|err| crate::error::input(format!("{}: {key}: {err}", board.file.display())))?;
    let mut list = String::new();
    for module in &order {
        let node = package
            .data
            .get(&module.path)
            .cloned()
            .expect("indexed from this tree");
        tree.replace(module.path.clone(), node)?;
        let _ = writeln!(list, "/{}", module.path.as_str());
    }
    let node = Node::new(Kind::File(Content::inline(list)), Meta::root(0o644), key);
    tree.replace(ArchivePath::new("etc/kiln/modules")?, node)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module(
        name: &str,
        depends: &[&str],
        softdeps: &[&str],
        aliases: &[&str],
    ) -> (String, Module) {
        (
            name.to_string(),
            Module {
                name: name.to_string(),
                path: ArchivePath::new(&format!("lib/modules/v/{name}.ko")).unwrap(),
                depends: depends.iter().map(|s| s.to_string()).collect(),
                softdeps: softdeps.iter().map(|s| s.to_string()).collect(),
                aliases: aliases.iter().map(|s| s.to_string()).collect(),
            },
        )
    }

    #[test]
    fn load_order_puts_needs_first_and_prefers_generic() {
        let modules: BTreeMap<String, Module> = [
            module(
                "ext4",
                &["mbcache", "jbd2", "crc16"],
                &["crc32c"],
                &["fs-ext4"],
            ),
            module("jbd2", &[], &[], &[]),
            module("mbcache", &[], &[], &[]),
            module("crc16", &[], &[], &[]),
            module("crc32c_ce", &[], &[], &["crypto-crc32c", "crc32c"]),
            module("crc32c_generic", &[], &[], &["crypto-crc32c", "crc32c"]),
            module("bcm2835_wdt", &[], &[], &[]),
        ]
        .into_iter()
        .collect();
        let order = closure(&modules, &["ext4".to_string(), "bcm2835-wdt".to_string()]).unwrap();
        let names: Vec<&str> = order.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(
            names,
            vec![
                "crc32c_generic",
                "mbcache",
                "jbd2",
                "crc16",
                "ext4",
                "bcm2835_wdt"
            ]
        );
        let err = closure(&modules, &["nosuch".to_string()])
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("no module or alias \"nosuch\""), "{err}");
    }

    #[test]
    fn softdep_pre_entries() {
        assert_eq!(pre_softdeps("pre: crc32c post: foo"), vec!["crc32c"]);
        assert_eq!(pre_softdeps("post: x"), Vec::<String>::new());
    }
}
