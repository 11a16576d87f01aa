//! # taskbell-desktop
//!
//! TaskBell's desktop controller, free of any GUI toolkit: it owns the engines (one per
//! signed-in account, or the demo's) and the app's state, computes what the tray and the
//! windows show, and carries out what they ask for. The tray app (`taskbell-app`, Tauri)
//! shows it: it implements [`controller::Shell`] with its tray icon and webviews, and
//! forwards every window command to [`dispatch::dispatch`].
//!
//! ## Layout (each module depends only on those above it; `tests/layers.rs` of the app
//! checks)
//!
//! - [`model`]: the shapes the tray and the windows see (no token field exists).
//! - [`error`]: the commands' one error type, and how core failures map to it.
//! - [`view`]: pure: status and state line, notification rows, settings form, merged
//!   history, the tray menu model ([`view::menu`]) and icon pixels ([`view::icon`]).
//! - [`options`]: the command line.
//! - [`checks`]: the diagnostics self-checks (keyring, notification daemon, tray host).
//! - [`controller`]: owns the engines and the state; the only module that emits.
//! - [`dispatch`]: the window commands by name with JSON arguments, and the menu handler;
//!   they only call the controller.
//! - [`ipc`]: the messages and framing of the local link between the tray process and
//!   the window process (depends on [`model`] only).
//!
//! Invariant: **the token never leaves the core**; nothing here holds one.

pub mod checks;
pub mod controller;
pub mod dispatch;
pub mod error;
pub mod ipc;
pub mod model;
pub mod options;
pub mod view;

pub use crate::controller::{Controller, Deps, RecordingShell, Shared, Shell};

/// Logs to stderr for the desktop shells (the tray process, the Tauri app and its window
/// process): `RUST_LOG` filters (default `info`); every line redacted (no token or
/// password at any level) and escaped (no terminal escape from a notification's text),
/// colours off, as they are escapes.
pub fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(taskbell_core::sanitize::SafeMakeWriter::stderr())
        .with_ansi(false)
        .init();
}
pub use crate::options::{ArgsError, Options, USAGE};
