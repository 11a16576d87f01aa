//! The one error type of the kit and of the harnesses built on it.

use std::process::ExitStatus;
use std::time::Duration;

/// Everything that can go wrong while setting up or driving a test process.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// A program could not be started (missing, not executable).
    #[error(
        "cannot start {program}: {source} (is it installed? scripts/install-deps.sh installs it)"
    )]
    Spawn {
        /// The program that failed to start.
        program: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A program exited while it was expected to keep running.
    #[error("{program} exited early with {status}; its log:\n{log}")]
    Exited {
        /// The program that exited.
        program: String,
        /// How it exited.
        status: ExitStatus,
        /// The tail of its stderr log.
        log: String,
    },
    /// Something did not happen within the allotted time.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long we waited.
        after: Duration,
    },
    /// A file or pipe operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A D-Bus call failed.
    #[error("D-Bus: {0}")]
    Dbus(String),
    /// Talking to the X server failed.
    #[error("X11: {0}")]
    X11(String),
    /// A tool printed something we could not understand.
    #[error("unexpected output from {program}: {detail}")]
    Parse {
        /// The tool.
        program: String,
        /// What was wrong.
        detail: String,
    },
    /// Building the binaries under test failed.
    #[error("building {what} failed: {detail}")]
    Build {
        /// What was being built.
        what: String,
        /// Cargo's output.
        detail: String,
    },
}

#[cfg(feature = "zbus")]
impl From<zbus::Error> for HarnessError {
    fn from(e: zbus::Error) -> Self {
        HarnessError::Dbus(e.to_string())
    }
}

#[cfg(feature = "zbus")]
impl From<zbus::fdo::Error> for HarnessError {
    fn from(e: zbus::fdo::Error) -> Self {
        HarnessError::Dbus(e.to_string())
    }
}

/// Result alias of the kit.
pub type Result<T, E = HarnessError> = std::result::Result<T, E>;

/// Maps an I/O error to [`HarnessError::Io`] with `context` (for `map_err`).
pub fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> HarnessError {
    let context = context.into();
    move |source| HarnessError::Io { context, source }
}
