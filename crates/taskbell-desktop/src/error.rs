//! The one error type of the commands: a kind the windows choose their wording by, a
//! sentence for the user and the form field it is about; and how the core's failures
//! (sign-in, API, keyring, history) map to it. Tauri-free.

use serde::Serialize;
use taskbell_core::api::ApiError;
use taskbell_core::config::ConfigError;
use taskbell_core::supervisor::SignInError;

/// What kind of failure a command had; the windows choose their wording by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// User name or password wrong.
    WrongPassword,
    /// The server could not be reached.
    Unreachable,
    /// The server URL is not a usable URL.
    BadUrl,
    /// The TLS handshake failed (certificate, protocol).
    Tls,
    /// Too many attempts; try later.
    RateLimited,
    /// The server answered with an error.
    Server,
    /// A field is missing or out of range.
    Invalid,
    /// Nobody is signed in.
    NotSignedIn,
    /// Something on this machine failed (keyring, disk, window).
    Local,
}

/// A command's error: a kind for the code, a message for the user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{message}")]
pub struct CmdError {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// A sentence the user understands.
    pub message: String,
    /// The form field it is about, when it is about one ("server", "username", ...).
    pub field: Option<String>,
}

impl CmdError {
    /// An error of `kind` saying `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            field: None,
        }
    }

    /// The same error, pointed at a form field.
    pub fn on(mut self, field: &str) -> Self {
        self.field = Some(field.into());
        self
    }
}

impl From<ConfigError> for CmdError {
    fn from(e: ConfigError) -> Self {
        Self::new(ErrorKind::Local, e.to_string())
    }
}

/// The result type of every command.
pub type CmdResult<T> = Result<T, CmdError>;

/// The system keyring is missing or failed.
pub fn keyring_error(e: String) -> CmdError {
    CmdError::new(
        ErrorKind::Local,
        format!("The system keyring is not available: {e}"),
    )
}

/// Maps a sign-in failure to words and a form field.
pub fn sign_in_error(e: SignInError) -> CmdError {
    match e {
        SignInError::Api(api) => api_error(api),
        SignInError::Config(
            c
            @ (ConfigError::Insecure { .. } | ConfigError::Invalid { .. } | ConfigError::NoServer),
        ) => CmdError::new(ErrorKind::BadUrl, c.to_string()).on("server"),
        SignInError::Config(c) => CmdError::new(ErrorKind::Local, c.to_string()),
        SignInError::Credentials(c) => keyring_error(c.to_string()),
        SignInError::Network(n) => CmdError::new(ErrorKind::Local, n.to_string()),
        SignInError::NotSignedIn => CmdError::new(ErrorKind::NotSignedIn, "You are not signed in."),
        SignInError::Invalid(why) => CmdError::new(ErrorKind::Invalid, why),
    }
}

/// Maps an API failure to a kind and the form field it is about.
pub fn api_error(e: ApiError) -> CmdError {
    let text = e.to_string();
    match e {
        ApiError::Unauthorized(_) => CmdError::new(ErrorKind::WrongPassword, text).on("password"),
        ApiError::Network(_) | ApiError::Timeout => {
            CmdError::new(ErrorKind::Unreachable, text).on("server")
        }
        ApiError::Tls(_) => CmdError::new(ErrorKind::Tls, text).on("server"),
        ApiError::BadUrl(_) => CmdError::new(ErrorKind::BadUrl, text).on("server"),
        ApiError::RateLimited { .. } => CmdError::new(ErrorKind::RateLimited, text),
        ApiError::Forbidden(_) | ApiError::Server { .. } | ApiError::BadResponse(_) => {
            CmdError::new(ErrorKind::Server, text)
        }
    }
}

/// The history database could not be opened or read.
pub fn history_error(e: impl std::fmt::Display) -> CmdError {
    CmdError::new(
        ErrorKind::Local,
        format!("The notification history cannot be read: {e}"),
    )
}

/// An engine's command queue is full or gone.
pub fn busy(e: impl std::fmt::Display) -> CmdError {
    CmdError::new(ErrorKind::Local, format!("TaskBell is busy: {e}"))
}

/// Something on this machine failed; `e` says what.
pub fn local(e: impl std::fmt::Display) -> CmdError {
    CmdError::new(ErrorKind::Local, e.to_string())
}

/// Nobody is signed in.
pub fn not_signed_in() -> CmdError {
    CmdError::new(ErrorKind::NotSignedIn, "You are not signed in.")
}

/// A refused config value as a command error on the form field it names (the config key,
/// e.g. `kinds.mention.sound`, `projects`).
pub fn config_error(e: ConfigError) -> CmdError {
    match &e {
        ConfigError::Invalid { key, .. } => {
            let key = key.clone();
            CmdError::new(ErrorKind::Invalid, e.to_string()).on(&key)
        }
        _ => CmdError::from(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use taskbell_core::api::ApiError;

    #[test]
    fn ui_test_error_fixtures_match_the_serialised_errors() {
        let fixtures: Value =
            serde_json::from_str(include_str!("../../../ui/tests/fixtures/errors.json")).unwrap();
        let cases = [
            ("wrong_password", ErrorKind::WrongPassword),
            ("unreachable", ErrorKind::Unreachable),
            ("tls", ErrorKind::Tls),
            ("invalid_server", ErrorKind::Invalid),
            ("invalid_heartbeat", ErrorKind::Invalid),
        ];
        for (name, kind) in cases {
            let f = &fixtures[name];
            let e = CmdError::new(kind, f["message"].as_str().unwrap())
                .on(f["field"].as_str().unwrap());
            assert_eq!(&serde_json::to_value(&e).unwrap(), f, "{name}");
        }
    }

    #[test]
    fn sign_in_failures_become_plain_kinds_on_the_right_field() {
        let e = sign_in_error(SignInError::Api(ApiError::Unauthorized("bad".into())));
        assert_eq!(
            (e.kind, e.field.as_deref()),
            (ErrorKind::WrongPassword, Some("password"))
        );
        let e = sign_in_error(SignInError::Api(ApiError::Network("refused".into())));
        assert_eq!(
            (e.kind, e.field.as_deref()),
            (ErrorKind::Unreachable, Some("server"))
        );
        let e = sign_in_error(SignInError::Api(ApiError::Tls("UnknownIssuer".into())));
        assert_eq!(e.kind, ErrorKind::Tls);
        let e = sign_in_error(SignInError::Api(ApiError::RateLimited {
            retry_after: None,
        }));
        assert_eq!(e.kind, ErrorKind::RateLimited);
    }
}
