//! Errors of the command: each one prints as one line for the user.

use taskbell_core::config::ConfigError;
use taskbell_core::credentials::CredentialsError;
use taskbell_core::history::HistoryError;
use taskbell_core::supervisor::{EngineError, SignInError};

/// Everything a command can fail with. `Display` is one sentence.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Signing in failed (wrong password, unreachable server, bad URL…).
    #[error("login failed: {0}")]
    Login(SignInError),
    /// Signing out failed.
    #[error("logout failed: {0}")]
    Logout(SignInError),
    /// The config or its directories are unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The keyring cannot be used.
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    /// The history database cannot be used.
    #[error(transparent)]
    History(#[from] HistoryError),
    /// The engine could not start.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// There is no account to run.
    #[error("not signed in: run `taskbell login --server URL --username NAME` first")]
    NotSignedIn,
    /// The session ended and cannot be renewed.
    #[error("signed out{}", .0.as_deref().map(|r| format!(": {r}")).unwrap_or_default())]
    SignedOut(Option<String>),
    /// The server denied access.
    #[error("access denied: {0}")]
    AccessDenied(String),
    /// The engine stopped on a local failure.
    #[error("{0}")]
    Failed(String),
    /// Reading the password failed.
    #[error("cannot read the password: {0}")]
    Password(String),
    /// Writing output failed.
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
    /// The account named does not exist or is ambiguous, or none was named where
    /// several exist.
    #[error(transparent)]
    Account(#[from] taskbell_core::accounts::AccountError),
    /// Several accounts and none named.
    #[error("there are several accounts ({0}); name one")]
    WhichAccount(String),
    /// The demo server could not start.
    #[cfg(feature = "demo")]
    #[error("cannot start the demo server: {0}")]
    Demo(String),
    /// This build has no demo (the `demo` feature is off).
    #[cfg(not(feature = "demo"))]
    #[error(
        "this taskbell was built without the demo; build it with `cargo build -p taskbell-cli --features demo`, or run the tray app with --demo"
    )]
    NoDemo,
}

/// Exit code of an error that needs the user (sign in again, access
/// denied): the systemd unit does not restart on it
/// (`RestartPreventExitStatus=3`).
pub const EXIT_NEEDS_USER: u8 = 3;

/// Exit code of every other error.
pub const EXIT_FAILURE: u8 = 1;

impl CliError {
    /// The process exit code for this error: [`EXIT_NEEDS_USER`] when
    /// restarting cannot help, else [`EXIT_FAILURE`].
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::NotSignedIn | CliError::SignedOut(_) | CliError::AccessDenied(_) => {
                EXIT_NEEDS_USER
            }
            CliError::Engine(EngineError::NotSignedIn) => EXIT_NEEDS_USER,
            _ => EXIT_FAILURE,
        }
    }

    /// The message as exactly one line (no newlines, no Debug dump).
    pub fn one_line(&self) -> String {
        let text = self.to_string();
        let mut out = String::with_capacity(text.len());
        for (i, part) in text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .enumerate()
        {
            if i > 0 {
                out.push(' ');
            }
            out.push_str(part);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restarting_cannot_fix_a_missing_sign_in() {
        assert_eq!(CliError::NotSignedIn.exit_code(), EXIT_NEEDS_USER);
        assert_eq!(CliError::SignedOut(None).exit_code(), EXIT_NEEDS_USER);
        assert_eq!(
            CliError::AccessDenied("no".into()).exit_code(),
            EXIT_NEEDS_USER
        );
        assert_eq!(CliError::Failed("x".into()).exit_code(), EXIT_FAILURE);
    }

    /// The packaged systemd unit runs `taskbell run`, restarts on failure and
    /// not on errors that need the user.
    #[test]
    fn the_systemd_unit_matches_the_exit_codes() {
        let unit = include_str!("../../../packaging/systemd/taskbell.service");
        let value = |key: &str| {
            unit.lines()
                .find_map(|l| l.strip_prefix(&format!("{key}=")))
                .unwrap_or_else(|| panic!("{key} missing"))
                .trim()
                .to_string()
        };
        assert!(value("ExecStart").ends_with("taskbell run"), "{unit}");
        assert_eq!(value("Restart"), "on-failure");
        assert_eq!(
            value("RestartPreventExitStatus"),
            EXIT_NEEDS_USER.to_string()
        );
        assert_eq!(value("KillSignal"), "SIGTERM");
        assert_eq!(value("WantedBy"), "default.target");
    }

    #[test]
    fn messages_are_one_line() {
        let e = CliError::Failed("first\n  second\n\nthird".into());
        assert_eq!(e.one_line(), "first second third");
        assert_eq!(CliError::SignedOut(None).one_line(), "signed out");
        assert_eq!(
            CliError::SignedOut(Some("session ended".into())).one_line(),
            "signed out: session ended"
        );
    }
}
