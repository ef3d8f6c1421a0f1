//! The error model: what kind of failure an error is, and the exit status it maps to.
//!
//! skarnet's split, as the maker uses it: 100 for bad input (usage, a board or list
//! that is wrong, a value a format cannot hold, a package that does not exist), 111 for
//! the system failing (I/O, a missing tool, a download). Commands that judge something
//! (`diff`, `check`, `boot`) report "it failed" as [`Verdict::Failed`], exit 1.
//!
//! Modules return `anyhow::Error` chains; an error is input when any cause in its chain
//! is [`Input`] or one of the typed input errors listed in [`exit_code`], the one place
//! that decides. Everything else is a system error. Nothing below `main` exits.

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

/// 100 when any error in the chain is about the input, 111 otherwise.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    if err.chain().any(is_input) {
        EXIT_INPUT
    } else {
        EXIT_SYSTEM
    }
}

/// The typed errors that mean "bad input"; every other error is the system's.
fn is_input(cause: &(dyn std::error::Error + 'static)) -> bool {
    if let Some(archive) = cause.downcast_ref::<crate::archive::ArchiveError>() {
        return archive.is_input_error();
    }
    if let Some(deb) = cause.downcast_ref::<crate::source::deb::DebError>() {
        return deb.is_input_error();
    }
    cause.is::<Input>()
        || cause.is::<crate::config::ConfigError>()
        || cause.is::<crate::source::SpecError>()
        || cause.is::<crate::tree::TreeError>()
        || cause.is::<crate::tree::PathError>()
        || cause.is::<crate::fetch::MissingPackage>()
        || cause.is::<crate::flash::Refused>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_anywhere_in_the_chain_is_100() {
        let err = input("bad key").context("unable to load board b.toml");
        assert_eq!(exit_code(&err), EXIT_INPUT);
        assert_eq!(format!("{err:#}"), "unable to load board b.toml: bad key");
    }

    #[test]
    fn io_and_untyped_errors_are_111() {
        let io = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        let err = anyhow::Error::new(io).context("unable to write out/x");
        assert_eq!(exit_code(&err), EXIT_SYSTEM);
        assert_eq!(exit_code(&anyhow::anyhow!("apt-get failed")), EXIT_SYSTEM);
    }

    #[test]
    fn typed_input_errors_are_100() {
        let path = crate::tree::ArchivePath::new("a/../b").unwrap_err();
        assert_eq!(exit_code(&anyhow::Error::new(path)), EXIT_INPUT);
        let config = crate::config::ConfigError {
            file: "b.toml".to_string(),
            message: "arch: missing".to_string(),
        };
        assert_eq!(exit_code(&anyhow::Error::new(config)), EXIT_INPUT);
        let archive = crate::archive::ArchiveError::BadEpoch("x".to_string());
        assert_eq!(exit_code(&anyhow::Error::new(archive)), EXIT_INPUT);
    }
}
