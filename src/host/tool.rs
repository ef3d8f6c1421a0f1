//! Host tools: found on PATH (or the sbin directories a non-root PATH lacks) with the
//! Debian package to install when missing, and run with their stderr kept for the error.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

/// One word as POSIX sh reads it: plain when it is only safe characters, else in
/// single quotes (a quote inside written `'\''`).
pub fn sh_word(text: &str) -> String {
    if !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=,:+@%".contains(&b))
    {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

/// A command line as a shell would take it, to reproduce a run by hand.
pub fn shell_quoted(argv: &[OsString]) -> String {
    argv.iter()
        .map(|arg| sh_word(&arg.to_string_lossy()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// What a tool printed.
pub struct Ran {
    pub stdout: String,
    pub stderr: String,
}

/// Runs a tool, feeding `input` (from a thread, so a tool that answers while it reads
/// cannot deadlock on full pipes); fails with its stderr and the command line.
pub fn run(command: &mut Command, input: Option<&str>) -> Result<Ran> {
    let mut argv = vec![command.get_program().to_os_string()];
    argv.extend(command.get_args().map(OsString::from));
    let shown = shell_quoted(&argv);
    command
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .with_context(|| format!("unable to run {shown}"))?;
    let feeder = match (input, child.stdin.take()) {
        (Some(input), Some(mut stdin)) => {
            let input = input.to_string();
            Some(std::thread::spawn(move || {
                use std::io::Write;
                stdin.write_all(input.as_bytes())
            }))
        }
        _ => None,
    };
    let output = child
        .wait_with_output()
        .with_context(|| format!("unable to run {shown}"))?;
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    if !output.status.success() {
        bail!("{shown} failed ({}):\n{}", output.status, stderr.trim_end());
    }
    if let Some(feeder) = feeder {
        feeder
            .join()
            .map_err(|_| anyhow::anyhow!("unable to feed {shown}: the writer thread panicked"))?
            .with_context(|| format!("unable to feed {shown}"))?;
    }
    Ok(Ran {
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr,
    })
}

/// The host tools kiln drives, each with the Debian package that has it.
const TOOLS: [(&str, &str); 14] = [
    ("sfdisk", "fdisk"),
    ("mke2fs", "e2fsprogs"),
    ("debugfs", "e2fsprogs"),
    ("e2fsck", "e2fsprogs"),
    ("mkfs.fat", "dosfstools"),
    ("mcopy", "mtools"),
    ("mmd", "mtools"),
    ("apt-get", "apt"),
    ("apt-cache", "apt"),
    ("qemu-system-x86_64", "qemu-system-x86"),
    ("qemu-system-aarch64", "qemu-system-arm"),
    ("qemu-system-arm", "qemu-system-arm"),
    ("cpio", "cpio"),
    ("syslinux", "syslinux"),
];

/// Finds a tool on PATH or in the sbin directories a non-root PATH often lacks.
pub fn find(name: &str) -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .collect::<Vec<_>>();
    for dir in dirs {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    let package = TOOLS
        .iter()
        .find(|(tool, _)| *tool == name)
        .map_or("it", |(_, package)| package);
    bail!(
        "{name} is not installed\nnote: apt-get install --no-install-recommends {package} (ci/install-packages and ci/install-qemu install every tool kiln uses)"
    )
}

/// A data file of a host package (firmware, boot code), or what to install for it.
pub fn data_file(path: &str, package: &str) -> Result<PathBuf> {
    let path = PathBuf::from(path);
    if path.is_file() {
        return Ok(path);
    }
    bail!(
        "{} is missing\nnote: apt-get install --no-install-recommends {package} (ci/install-packages and ci/install-qemu install every file kiln uses)",
        path.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_for_a_shell() {
        let argv: Vec<OsString> = vec![
            "qemu".into(),
            "-append".into(),
            "console=ttyS0 panic=-1".into(),
            "it's".into(),
        ];
        assert_eq!(
            crate::host::tool::shell_quoted(&argv),
            "qemu -append 'console=ttyS0 panic=-1' 'it'\\''s'"
        );
    }
}
