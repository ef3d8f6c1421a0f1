//! The ELF closure of the image: loaders and libraries pulled out of the fetched
//! packages until every object is satisfied, and the init's own program checks.

use anyhow::{Result, bail};

use crate::arch::Arch;
use crate::elf;
use crate::init;
use crate::tree::Tree;

/// Pulls missing loaders and libraries out of the fetched packages until every ELF object
/// is satisfied or nothing more can be pulled; returns the links and what is still
/// missing (for the whole-image check to report).
pub fn pull(
    image: &mut Tree,
    pool: &Tree,
    arch: Arch,
) -> Result<(Vec<elf::Link>, Vec<elf::ElfError>)> {
    for _round in 0..32 {
        let errors = match elf::check(image, arch) {
            Ok(links) => return Ok((links, Vec::new())),
            Err(errors) => errors,
        };
        let mut progress = false;
        for error in &errors {
            let elf::ElfError::Missing { how, needed, .. } = error else {
                continue;
            };
            let candidates: Vec<String> = if *how == elf::How::Interp || needed.contains('/') {
                vec![needed.clone()]
            } else {
                arch.default_library_dirs()
                    .iter()
                    .map(|dir| format!("{dir}/{needed}"))
                    .collect()
            };
            for candidate in candidates {
                let mut trace = Vec::new();
                let Some(found) = crate::tree::resolve::traced(pool, &candidate, &mut trace) else {
                    continue;
                };
                trace.push(found);
                for path in trace {
                    if image.get(&path).is_none() {
                        if let Some(node) = pool.get(&path) {
                            image.insert(path.clone(), node.clone())?;
                            progress = true;
                        }
                    }
                }
                break;
            }
        }
        if !progress {
            return Ok(elf::scan(image, arch));
        }
    }
    bail!("the ELF closure did not settle after 32 rounds")
}

/// The maker's target checks: execlineb, export and cd exist in the execline bindir.
pub fn check_init_programs(image: &Tree, config: &init::Config) -> Result<()> {
    for program in ["execlineb", "export", "cd"] {
        let path = format!("{}/{program}", config.options.execline_bindir);
        if crate::tree::resolve::resolve(image, &path).is_none() {
            bail!(crate::error::Input(format!(
                "[init] execline_bindir: {path} is not in the image (note: Debian's execline lives in /usr/lib/execline/bin)"
            )));
        }
    }
    // Under runit and daemontools stage 1, pid 1's shell and the logger run these by
    // name: a missing one would show only at boot, as a supervisor that never starts.
    let supervisor = config.options.supervisor;
    let path = String::from_utf8_lossy(&config.options.path).into_owned();
    for (program, package) in init::supervisor::programs(supervisor) {
        let found = path
            .split(':')
            .filter(|dir| dir.starts_with('/'))
            .any(|dir| crate::tree::resolve::resolve(image, &format!("{dir}/{program}")).is_some());
        if !found {
            bail!(crate::error::Input(format!(
                "[init] supervisor = \"{}\": {program} is in no [init] path directory of the image (note: Debian's {package} has it: add it to [packages.select], e.g. {package} = [\"/usr/bin/{program}\"])",
                supervisor.name()
            )));
        }
    }
    Ok(())
}

/// `--explain`: each object's dependencies, with the package each library came from.
pub fn explain(links: &[elf::Link], image: &Tree) -> String {
    elf::explain(links, |found| {
        Some(
            image
                .get(found)
                .map_or("?".to_string(), |node| node.origin.to_string()),
        )
    })
}
