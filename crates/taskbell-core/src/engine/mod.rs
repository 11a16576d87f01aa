//! The engine's vocabulary and its decisions, without I/O.
//!
//! [`connection`] is the pure state machine of the engine's one connection to the
//! platform: sign-in, the socket, the heartbeat, the catch-up and the waits between
//! attempts. [`crate::supervisor`] is the driver that turns sockets, REST calls,
//! the keyring, SQLite and the clocks into its inputs and carries out its actions.
//!
//! The types every front end sees ([`State`], [`Event`], [`Command`],
//! [`ExitReason`]) live here because the machine speaks them; `supervisor`
//! re-exports them under their old paths.

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::delivery::Toast;
use crate::protocol::Notification;
use crate::summary::Summary;

pub mod connection;

/// Connection state, for the tray icon and `taskbell status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum State {
    /// Not signed in; `reason` says why when it was not the user's choice.
    SignedOut {
        /// Why ("session ended", "access denied: …").
        reason: Option<String>,
    },
    /// Signing in or opening the socket.
    Connecting,
    /// The socket is up.
    Connected {
        /// The last heartbeat round trip.
        latency_ms: Option<u64>,
    },
    /// Waiting before the next attempt.
    Reconnecting {
        /// Seconds until the next attempt.
        in_secs: u64,
        /// Why the last attempt or connection ended.
        reason: String,
    },
    /// The server cannot be reached; attempts go on (see `Event::Reconnecting`).
    Offline {
        /// Why.
        reason: String,
    },
}

/// Something that happened, for the tray, the CLI's `--events json` and tests.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A new notification (already stored; never repeated).
    Notification(Notification),
    /// A toast was handed to the notifier.
    Toast(Toast),
    /// The login summary.
    Summary(Summary),
    /// A heartbeat round trip.
    Latency {
        /// Milliseconds.
        ms: u64,
    },
    /// The connection ended; the next attempt follows after `delay_ms`.
    Reconnecting {
        /// Why.
        reason: String,
        /// Delay before the next attempt.
        delay_ms: u64,
        /// Which attempt this delay precedes: 1 for the first after a stable or
        /// healthy connection, growing while attempts fail.
        attempt: u32,
    },
    /// The socket is up (after sign-in or a reconnect).
    Connected,
    /// Catch-up after a connect finished.
    CaughtUp {
        /// Notifications fetched (before dedupe).
        fetched: usize,
        /// Of those, new ones.
        new: usize,
        /// False when the server keeps no history (404).
        supported: bool,
    },
    /// The session ended; the engine stops.
    SignedOut {
        /// Why, when not the user's choice.
        reason: Option<String>,
    },
    /// The user clicked a folded toast ("N new notifications") where a center can
    /// show them ([`EngineOptions::folded_to_center`](crate::supervisor::EngineOptions)):
    /// show these notifications.
    ShowFolded {
        /// The keys of the notifications the toast stood for.
        keys: Vec<String>,
    },
    /// A problem worth telling the user; the engine goes on.
    Error {
        /// One sentence.
        message: String,
    },
}

/// What a front end asks the engine to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Drop the current connection (or wait) and connect now.
    ReconnectNow,
    /// Pause toasts until this time (ms since the epoch). Notifications are still stored.
    Pause {
        /// End of the pause.
        until_ms: i64,
    },
    /// End a pause.
    Resume,
    /// Revoke the token where possible, clear the keyring, stop.
    SignOut,
    /// Close the socket with 1000, flush, stop.
    Shutdown,
    /// Show a test toast.
    TestNotification,
    /// Mark notifications read (by key).
    MarkRead {
        /// Notification keys.
        keys: Vec<String>,
    },
    /// Mark everything read.
    MarkAllRead,
    /// Apply new settings (delivery rules now, heartbeat on the next connection).
    SetConfig(Box<Config>),
}

/// Why the engine task ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", content = "detail", rename_all = "snake_case")]
pub enum ExitReason {
    /// `Command::Shutdown`, or every command sender was dropped.
    Shutdown,
    /// The user signed out, or the session ended without a remembered password.
    SignedOut,
    /// The server denied access (4003 / 403).
    AccessDenied(String),
    /// A local failure the engine cannot get past (no keyring, history unusable).
    Failed(String),
}
