//! The image checked as a whole, inside the image: every symlink resolves (absolute and
//! relative, through other links), every executable script's `#!` interpreter exists
//! and is executable (and `#!/usr/bin/env PROGRAM` finds PROGRAM on the standard PATH),
//! every ELF object finds its loader and libraries (`elf::check`). All problems are
//! reported at once, each naming the path, what is missing, and the package that would
//! provide it when the fetched packages have it.
//!
//! Links into /proc, /sys, /dev and /run point at filesystems mounted at boot and are
//! not followed.

use std::collections::BTreeMap;
use std::io::Read;

use crate::arch::Arch;
use crate::elf::{self, ElfError};
use crate::tree::resolve::{Index, Walked};
use crate::tree::{ArchivePath, Kind, Node, Tree};

/// Directories whose contents exist only at run time.
const RUNTIME: [&str; 4] = ["proc", "sys", "dev", "run"];
/// Where `#!/usr/bin/env PROGRAM` looks: Debian's default PATH for root.
const ENV_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// The kernel reads at most this much of a `#!` line (BINPRM_BUF_SIZE).
const SHEBANG_MAX: usize = 256;

/// One thing wrong with the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// A symlink that resolves to nothing; `missing` is where it lands.
    Dangling {
        link: ArchivePath,
        target: String,
        missing: Option<ArchivePath>,
    },
    /// A script whose `#!` interpreter is absent or not executable.
    Interpreter {
        script: ArchivePath,
        interpreter: String,
        what: String,
        /// Where the missing interpreter (or program, for env) would be.
        missing: Option<String>,
    },
    Elf(ElfError),
}

impl Problem {
    /// The image path the problem is about (what `allow_dangling` names).
    pub fn path(&self) -> &ArchivePath {
        match self {
            Problem::Dangling { link, .. } => link,
            Problem::Interpreter { script, .. } => script,
            Problem::Elf(error) => error.object(),
        }
    }

    /// The absolute path (or library file name) whose provider would fix it.
    fn wanted(&self) -> Option<String> {
        match self {
            Problem::Dangling { missing, .. } => missing.as_ref().map(ToString::to_string),
            Problem::Interpreter { missing, .. } => missing.clone(),
            Problem::Elf(ElfError::Missing { needed, .. }) => Some(needed.clone()),
            Problem::Elf(_) => None,
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::Dangling {
                link,
                target,
                missing: Some(missing),
            } => write!(
                f,
                "{link}: symlink to {target}, but {missing} is not in the image"
            ),
            Problem::Dangling { link, target, .. } => {
                write!(f, "{link}: symlink to {target} loops or leaves the image")
            }
            Problem::Interpreter {
                script,
                interpreter,
                what,
                ..
            } => write!(f, "{script}: #!{interpreter}: {what}"),
            Problem::Elf(error) => error.fmt(f),
        }
    }
}

/// Every problem of `tree` for `arch`, given the ELF check's errors (`elf::check`, or
/// what the library pull left).
pub fn problems(tree: &Tree, elf_errors: Vec<ElfError>) -> Vec<Problem> {
    let index = Index::new(tree);
    let mut problems = Vec::new();
    for (path, node) in tree.iter() {
        match &node.kind {
            Kind::Symlink(target) => {
                if let Some(problem) = dangling(&index, path, target) {
                    problems.push(problem);
                }
            }
            Kind::File(content) if node.meta.mode & 0o111 != 0 => {
                let mut head = Vec::with_capacity(SHEBANG_MAX);
                let read = content
                    .open()
                    .and_then(|reader| reader.take(SHEBANG_MAX as u64).read_to_end(&mut head));
                if read.is_ok() && head.starts_with(b"#!") {
                    if let Some(problem) = interpreter(&index, path, &head[2..]) {
                        problems.push(problem);
                    }
                }
            }
            _ => {}
        }
    }
    problems.extend(elf_errors.into_iter().map(Problem::Elf));
    problems.sort_by(|a, b| a.path().cmp(b.path()));
    problems
}

fn is_runtime(path: &ArchivePath) -> bool {
    let top = path.as_str().split('/').next().unwrap_or("");
    RUNTIME.contains(&top)
}

fn dangling(index: &Index, link: &ArchivePath, target: &str) -> Option<Problem> {
    let missing = match index.walk(&link.to_string()) {
        Walked::Found(_) => return None,
        Walked::Missing(path) if is_runtime(&path) => return None,
        Walked::Missing(path) => Some(path),
        Walked::Broken => None,
    };
    Some(Problem::Dangling {
        link: link.clone(),
        target: target.to_string(),
        missing,
    })
}

fn interpreter(index: &Index, script: &ArchivePath, line: &[u8]) -> Option<Problem> {
    let line = line.split(|&b| b == b'\n').next().unwrap_or(b"");
    let line = String::from_utf8_lossy(line);
    let mut words = line.split([' ', '\t']).filter(|word| !word.is_empty());
    let problem = |interpreter: &str, what: &str, missing: Option<String>| {
        Some(Problem::Interpreter {
            script: script.clone(),
            interpreter: line.trim().to_string(),
            what: what.replace("{}", interpreter),
            missing,
        })
    };
    let Some(interp) = words.next() else {
        return problem("", "names no interpreter", None);
    };
    if !interp.starts_with('/') {
        return problem(
            interp,
            "{} is not an absolute path (the kernel would look for it in the current directory)",
            None,
        );
    }
    match index.walk(interp) {
        Walked::Missing(path) => {
            return problem(interp, "{} is not in the image", Some(path.to_string()));
        }
        Walked::Broken => return problem(interp, "{} loops", None),
        Walked::Found(found) => {
            if !executable(index.node(&found)) {
                return problem(
                    interp,
                    &format!("{{}} resolves to {found}, which is not an executable file"),
                    None,
                );
            }
            if found.file_name() != "env" {
                return None;
            }
        }
    }
    // `#!/usr/bin/env PROGRAM`: PROGRAM on the PATH (options such as -S are not followed).
    let program = words.next()?;
    if program.starts_with('-') || program.contains('=') {
        return None;
    }
    let candidates: Vec<String> = if program.contains('/') {
        vec![program.to_string()]
    } else {
        ENV_PATH
            .split(':')
            .map(|dir| format!("{dir}/{program}"))
            .collect()
    };
    let found = candidates
        .iter()
        .any(|candidate| match index.walk(candidate) {
            Walked::Found(found) => executable(index.node(&found)),
            _ => false,
        });
    if found {
        return None;
    }
    problem(
        program,
        &format!("env runs {{}}, which is not on the PATH ({ENV_PATH}) in the image"),
        Some(format!("/usr/bin/{program}")),
    )
}

fn executable(node: Option<&Node>) -> bool {
    node.is_some_and(|node| matches!(node.kind, Kind::File(_)) && node.meta.mode & 0o111 != 0)
}

/// The packages that ship each path, for "provided by" notes: every file and link of
/// the fetched packages, placed through the image's links (merged /usr) as it would be
/// installed, and by file name for libraries.
#[derive(Default)]
pub struct Providers {
    by_path: BTreeMap<String, String>,
    by_name: BTreeMap<String, String>,
}

impl Providers {
    /// From a tree of every fetched package's files (each node's origin its package).
    pub fn from_pool(image: &Tree, pool: &Tree) -> Providers {
        let mut providers = Providers::default();
        for (path, node) in crate::rootfs::packages::relocate(image, pool).iter() {
            if matches!(node.kind, Kind::Dir) {
                continue;
            }
            let origin = node.origin.to_string();
            providers
                .by_path
                .entry(path.to_string())
                .or_insert_with(|| origin.clone());
            providers
                .by_name
                .entry(path.file_name().to_string())
                .or_insert(origin);
        }
        providers
    }

    fn find(&self, wanted: &str) -> Option<&str> {
        if wanted.starts_with('/') {
            self.by_path.get(wanted).map(String::as_str)
        } else {
            self.by_name.get(wanted).map(String::as_str)
        }
    }
}

/// The problems as lines, with a "provided by" note where the fetched packages have the
/// missing path; problems at paths in `allowed` are left out.
pub fn report(
    problems: &[Problem],
    providers: &Providers,
    allowed: &BTreeMap<ArchivePath, String>,
) -> Vec<String> {
    problems
        .iter()
        .filter(|problem| !allowed.contains_key(problem.path()))
        .map(|problem| {
            let mut line = crate::error::printable(&problem.to_string()).replace('\n', "\\n");
            if let Some(package) = problem.wanted().and_then(|wanted| providers.find(&wanted)) {
                line.push_str(&format!(" (note: {package} provides it)"));
            }
            line
        })
        .collect()
}

/// `kiln check`: the verdict, `--explain`'s text for stdout, and the problems for
/// stderr. With a board, its `allow_dangling` applies and its fetched packages name
/// what provides a missing path.
pub fn verdict(
    tree: &Tree,
    arch: Arch,
    board: Option<&crate::config::Board>,
    offline: Option<&std::path::Path>,
    explain: bool,
) -> anyhow::Result<(crate::error::Verdict, String, String)> {
    let (links, elf_errors) = elf::scan(tree, arch);
    let problems = problems(tree, elf_errors);
    let mut providers = Providers::default();
    let mut allowed = BTreeMap::new();
    if let Some(board) = board {
        allowed = board.allow_dangling.clone();
        if !problems.is_empty() {
            providers = Providers::from_pool(tree, &crate::rootfs::pool(board, offline)?);
        }
    }
    let lines = report(&problems, &providers, &allowed);
    let stdout = if explain {
        elf::explain(&links, |_| None)
    } else {
        String::new()
    };
    let stderr: String = lines
        .iter()
        .map(|line| format!("kiln: check: {line}\n"))
        .collect();
    let verdict = if lines.is_empty() {
        crate::error::Verdict::Passed
    } else {
        crate::error::Verdict::Failed
    };
    Ok((verdict, stdout, stderr))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::Meta;

    fn image() -> Tree {
        let mut tree = Tree::new();
        tree.dir("usr/bin", Meta::root(0o755), "t").unwrap();
        tree.symlink("bin", "usr/bin", "t").unwrap();
        tree.file("usr/bin/sh", "\x7fELF", Meta::root(0o755), "t")
            .unwrap();
        tree.file("usr/bin/env", "\x7fELF", Meta::root(0o755), "t")
            .unwrap();
        tree
    }

    fn lines(tree: &Tree, providers: &Providers) -> Vec<String> {
        report(&problems(tree, Vec::new()), providers, &BTreeMap::new())
    }

    #[test]
    fn links_resolve_through_links_and_runtime_mounts_are_not_followed() {
        let mut tree = image();
        tree.symlink("usr/bin/ok", "../../bin/sh", "t").unwrap();
        tree.symlink("usr/bin/via", "ok", "t").unwrap();
        tree.symlink("etc/mtab", "/proc/self/mounts", "t").unwrap();
        tree.symlink("usr/bin/python3", "python3.11", "t").unwrap();
        tree.symlink("usr/bin/loop", "loop", "t").unwrap();
        tree.symlink("lib/x", "/bin/nothing/deeper", "t").unwrap();
        assert_eq!(
            lines(&tree, &Providers::default()),
            vec![
                "/lib/x: symlink to /bin/nothing/deeper, but /usr/bin/nothing/deeper is not in the image",
                "/usr/bin/loop: symlink to loop loops or leaves the image",
                "/usr/bin/python3: symlink to python3.11, but /usr/bin/python3.11 is not in the image",
            ]
        );
    }

    #[test]
    fn interpreters_must_exist_and_be_executable() {
        let mut tree = image();
        let script = |tree: &mut Tree, path: &str, text: &str| {
            tree.file(path, text, Meta::root(0o755), "t").unwrap();
        };
        script(&mut tree, "usr/bin/good", "#!/bin/sh -e\necho\n");
        script(&mut tree, "usr/bin/tool", "#! /usr/bin/python3\n");
        script(&mut tree, "usr/bin/envy", "#!/usr/bin/env perl\n");
        script(&mut tree, "usr/bin/envok", "#!/usr/bin/env sh\n");
        script(&mut tree, "usr/bin/rel", "#!sh\n");
        tree.file("usr/bin/data", "not run", Meta::root(0o644), "t")
            .unwrap();
        script(&mut tree, "usr/bin/viadata", "#!/usr/bin/data\n");
        // Not executable: never run, not checked.
        tree.file(
            "usr/share/x.py",
            "#!/usr/bin/python3\n",
            Meta::root(0o644),
            "t",
        )
        .unwrap();
        let mut pool = Tree::new();
        pool.file(
            "usr/bin/python3.11",
            "x",
            Meta::root(0o755),
            "python3.11-minimal",
        )
        .unwrap();
        pool.symlink("usr/bin/python3", "python3.11", "python3-minimal")
            .unwrap();
        let providers = Providers::from_pool(&tree, &pool);
        assert_eq!(
            lines(&tree, &providers),
            vec![
                "/usr/bin/envy: #!/usr/bin/env perl: env runs perl, which is not on the PATH (/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin) in the image",
                "/usr/bin/rel: #!sh: sh is not an absolute path (the kernel would look for it in the current directory)",
                "/usr/bin/tool: #!/usr/bin/python3: /usr/bin/python3 is not in the image (note: python3-minimal provides it)",
                "/usr/bin/viadata: #!/usr/bin/data: /usr/bin/data resolves to /usr/bin/data, which is not an executable file",
            ]
        );
        let allowed = [(
            ArchivePath::new("usr/bin/tool").unwrap(),
            "python comes later".to_string(),
        )]
        .into();
        assert_eq!(
            report(&problems(&tree, Vec::new()), &providers, &allowed).len(),
            3
        );
    }
}
