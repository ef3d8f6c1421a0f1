//! The error model: what kind of failure an error is, and the exit status it maps to.
//!
//! skarnet's split, as the maker uses it: 100 for bad input (usage, a board or list
//! that is wrong, a value a format cannot hold, a package that does not exist), 111 for
//! the system failing (I/O, a missing tool, a download). Commands that judge something
//! (`diff`, `check`, `boot`) report "it failed" as [`Verdict::Failed`], exit 1.
//!
//! Modules return `anyhow::Error` chains; an error is input when any cause in its chain
//! is [`Input`] or a typed error its own module classifies as input ([`Classifier`]);
//! [`exit_code`] is the one place that turns that into a status. Everything else is a
//! system error. This module imports nothing of kiln's. Nothing below `main` exits.

use std::process::ExitCode;

/// Exit status for bad input: usage, config, validation.
pub const EXIT_INPUT: u8 = 100;
/// Exit status for system failures: I/O, missing tools, downloads.
pub const EXIT_SYSTEM: u8 = 111;
/// Exit status when a judged thing failed: archives differ, a check or a boot failed.
pub const EXIT_FAILED: u8 = 1;

/// An error in what the user asked for or gave: exit status 100.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Input(pub String);

/// `Err(Input(message))` as an `anyhow::Error`, for `bail!`-style returns.
pub fn input(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Input(message.into()))
}

/// An io error reading an input, with `context` ("unable to read X"): what the input
/// is (missing, a directory, not a regular file, malformed, cut short) is the user's to
/// fix, exit 100; anything else (a failing disk, permissions) is the system's.
pub fn io(context: String, err: std::io::Error) -> anyhow::Error {
    use std::io::ErrorKind;
    match err.kind() {
        ErrorKind::InvalidData
        | ErrorKind::InvalidInput
        | ErrorKind::UnexpectedEof
        | ErrorKind::NotFound
        | ErrorKind::IsADirectory => input(format!("{context}: {err}")),
        _ => anyhow::Error::new(err).context(context),
    }
}

/// How a command that judges something came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Passed,
    /// The archives differ, a dependency is missing, the boot failed: exit 1.
    Failed,
}

impl From<Verdict> for ExitCode {
    fn from(verdict: Verdict) -> ExitCode {
        match verdict {
            Verdict::Passed => ExitCode::SUCCESS,
            Verdict::Failed => ExitCode::from(EXIT_FAILED),
        }
    }
}

/// What kind of failure an error is, as the module that defines it says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Bad input: exit 100.
    Input,
    /// The system failed: exit 111.
    System,
}

/// A module's answer for its own typed errors: `Some(kind)` for a type it defines,
/// `None` for anything else. Each module with typed errors has one (`classify`), next
/// to the types, so the knowledge of what is input stays where the errors are made.
pub type Classifier = fn(&(dyn std::error::Error + 'static)) -> Option<Kind>;

/// The exit status of an error: 100 when any cause in its chain is input (an [`Input`],
/// or a typed error one of `classifiers` calls input), 111 otherwise.
pub fn exit_code(err: &anyhow::Error, classifiers: &[Classifier]) -> u8 {
    let input = err.chain().any(|cause| {
        cause.is::<Input>()
            || classifiers
                .iter()
                .any(|classify| classify(cause) == Some(Kind::Input))
    });
    if input { EXIT_INPUT } else { EXIT_SYSTEM }
}

/// An error and its sources, `: `-separated, as `{:#}` shows an `anyhow::Error`: for
/// typed errors whose own text leaves the cause to the chain.
pub fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(next) = cause {
        text.push_str(": ");
        text.push_str(&next.to_string());
        cause = next.source();
    }
    text
}

/// A message as it may reach a terminal: control characters other than the newlines
/// between its lines (ESC, carriage return, tab, DEL, C1) written as `\xHH`, so a
/// name taken from an archive or a board cannot move the cursor or fake a line's start.
pub fn printable(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for c in message.chars() {
        if c != '\n' && (c.is_control() || c == '\u{7f}') {
            let mut bytes = [0u8; 4];
            for byte in c.encode_utf8(&mut bytes).bytes() {
                out.push_str(&format!("\\x{byte:02x}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("typed")]
    struct Typed;

    fn classify(cause: &(dyn std::error::Error + 'static)) -> Option<Kind> {
        cause.is::<Typed>().then_some(Kind::Input)
    }

    #[test]
    fn input_anywhere_in_the_chain_is_100() {
        let err = input("bad key").context("unable to load board b.toml");
        assert_eq!(exit_code(&err, &[]), EXIT_INPUT);
        assert_eq!(format!("{err:#}"), "unable to load board b.toml: bad key");
        let typed = anyhow::Error::new(Typed).context("while packing");
        assert_eq!(exit_code(&typed, &[classify]), EXIT_INPUT);
        assert_eq!(exit_code(&typed, &[]), EXIT_SYSTEM);
    }

    #[test]
    fn messages_reach_the_terminal_without_control_characters() {
        assert_eq!(
            printable("a\x1b[2Jb\tc\rd\nnote: e\u{9b}"),
            "a\\x1b[2Jb\\x09c\\x0dd\nnote: e\\xc2\\x9b"
        );
    }

    #[test]
    fn io_and_untyped_errors_are_111() {
        let io = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        let err = anyhow::Error::new(io).context("unable to write out/x");
        assert_eq!(exit_code(&err, &[classify]), EXIT_SYSTEM);
        assert_eq!(
            exit_code(&anyhow::anyhow!("apt-get failed"), &[classify]),
            EXIT_SYSTEM
        );
    }
}
