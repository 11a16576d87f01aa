//! # taskbell-core
//!
//! The TaskBell client engine. It signs in to an annotation platform, holds one
//! WebSocket with JSON heartbeats, reconnects forever with backoff, and turns
//! platform events into desktop notifications, without losing or repeating one.
//! It knows nothing of Tauri, windows or trays: the tray app (`src-tauri`) and
//! the headless `taskbell` command are thin shells over it.
//!
//! ## Layout
//!
//! Pure modules (no I/O, tested without sockets or clocks): [`protocol`],
//! [`backoff`], [`heartbeat`], [`summary`] (rendering), [`delivery`], [`i18n`],
//! [`config`] (validation), [`sanitize`] (terminal-safe text, secret redaction),
//! and [`engine`], whose [`engine::connection`] is the connection's state
//! machine: every rule of sign-in, close codes, heartbeat, catch-up, backoff and
//! commands.
//!
//! [`accounts`] says where each account's config and data live.
//!
//! I/O modules: [`net`] (one trust and proxy decision for every connection),
//! [`api`] (REST), [`credentials`] (OS keyring), [`history`]
//! (SQLite), [`notifier`] (desktop notifications), and [`supervisor`], the one
//! event loop that drives the state machine: it owns the socket, the history
//! writer thread and the toast worker, and does what the machine decides.
//! [`memory`] gives start-up's pages back once a long-running process is quiet.

pub mod accounts;
pub mod api;
pub mod backoff;
pub mod config;
pub mod credentials;
pub mod delivery;
pub mod engine;
pub mod heartbeat;
pub mod history;
pub mod i18n;
pub mod memory;
pub mod net;
pub mod notifier;
pub mod protocol;
pub mod sanitize;
mod signin;
pub mod summary;
pub mod supervisor;
