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
    /// The demo server could not start.
    #[error("cannot start the demo server: {0}")]
    Demo(String),
}

impl CliError {
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
