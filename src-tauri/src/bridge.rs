//! The bridge between the core and the shell: the only place that knows event names.
//! Core status and events become the tray's icon, tooltip and menu, and `emit`s to the
//! open windows; the windows' requests become core commands.

use std::collections::VecDeque;
use std::sync::Mutex;

use serde::Serialize;
use tauri::{AppHandle, Emitter, Manager, Runtime};

use crate::Shared;
use crate::commands::{CmdError, CmdResult, ErrorKind};
use crate::model::{
    HistoryFilter, Lang, ReconnectEntry, UiDiagnostics, UiNotification, UiSettings, UiStatus,
    UiUser,
};
use crate::tray;

/// Event sent to the windows when the status changes; payload [`UiStatus`].
pub const EVENT_STATUS: &str = "taskbell://status";
/// Event sent when a notification arrives; payload [`UiNotification`].
pub const EVENT_NOTIFICATION: &str = "taskbell://notification";
/// Event sent when read state changed in bulk; payload: the unread count.
pub const EVENT_HISTORY: &str = "taskbell://history";
/// Event sent when a latency sample or reconnect was recorded; payload [`UiDiagnostics`].
pub const EVENT_DIAGNOSTICS: &str = "taskbell://diagnostics";

/// Latency samples kept for the sparkline.
pub const MAX_SAMPLES: usize = 60;
/// Reconnects kept for the log.
pub const MAX_RECONNECTS: usize = 50;

/// Recent latencies and reconnects, for the diagnostics window.
#[derive(Debug, Default)]
pub struct DiagLog {
    latency_ms: VecDeque<u64>,
    reconnects: VecDeque<ReconnectEntry>,
}

impl DiagLog {
    /// Records a heartbeat round trip.
    pub fn latency(&mut self, ms: u64) {
        if self.latency_ms.len() == MAX_SAMPLES {
            self.latency_ms.pop_front();
        }
        self.latency_ms.push_back(ms);
    }

    /// Records a reconnect.
    pub fn reconnect(&mut self, entry: ReconnectEntry) {
        if self.reconnects.len() == MAX_RECONNECTS {
            self.reconnects.pop_back();
        }
        self.reconnects.push_front(entry);
    }

    /// Samples oldest first.
    pub fn samples(&self) -> Vec<u64> {
        self.latency_ms.iter().copied().collect()
    }

    /// Reconnects newest first.
    pub fn reconnects(&self) -> Vec<ReconnectEntry> {
        self.reconnects.iter().cloned().collect()
    }
}

/// What a window or the menu asks the engine to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Reconnect now.
    ReconnectNow,
    /// Pause for this many seconds.
    PauseFor(i64),
    /// Pause until tomorrow 08:00 local time.
    PauseUntilTomorrow,
    /// Resume notifications.
    Resume,
    /// Sign out.
    SignOut,
    /// Send a test notification.
    TestNotification,
}

/// Where the running engine is reached (empty until it runs).
#[derive(Debug, Default)]
pub struct EngineSlot {
    inner: Mutex<Option<()>>,
}

impl EngineSlot {
    /// Whether an engine runs.
    pub fn is_running(&self) -> bool {
        self.inner.lock().map(|g| g.is_some()).unwrap_or(false)
    }
}

/// The system language (zh* → Chinese, else English).
pub fn system_lang() -> Lang {
    Lang::En
}

fn emit<R: Runtime, S: Serialize + Clone>(app: &AppHandle<R>, event: &str, payload: S) {
    if let Err(e) = app.emit(event, payload) {
        tracing::debug!("emit {event}: {e}");
    }
}

/// Publishes `status`: tray icon, tooltip, menu, and the windows.
pub fn publish<R: Runtime>(app: &AppHandle<R>, status: UiStatus) {
    let shared = app.state::<Shared>();
    if !shared.set_status(status.clone()) {
        return;
    }
    if let Err(e) = tray::apply(app, &status, shared.lang()) {
        tracing::warn!("tray update failed: {e}");
    }
    emit(app, EVENT_STATUS, status);
}

/// Starts the engine (or the demo) in the background.
pub fn start<R: Runtime>(app: &AppHandle<R>) {
    let _ = app;
}

/// Stops the engine; called once when the app exits.
pub fn shutdown<R: Runtime>(app: &AppHandle<R>) {
    let _ = app;
}

fn not_running() -> CmdError {
    CmdError::new(ErrorKind::NotSignedIn, "TaskBell is not connected yet.")
}

/// Signs in.
pub async fn sign_in<R: Runtime>(
    app: &AppHandle<R>,
    server: &str,
    username: &str,
    password: &str,
    remember: bool,
) -> CmdResult<UiUser> {
    let _ = (app, server, username, password, remember);
    Err(not_running())
}

/// Lists the history.
pub fn list_history<R: Runtime>(
    app: &AppHandle<R>,
    filter: &HistoryFilter,
) -> CmdResult<Vec<UiNotification>> {
    let _ = (app, filter);
    Err(not_running())
}

/// Marks `keys` (or all when `None`) read; returns the unread count after.
pub fn mark_read<R: Runtime>(app: &AppHandle<R>, keys: Option<&[String]>) -> CmdResult<u64> {
    let _ = (app, keys);
    emit(app, EVENT_HISTORY, 0u64);
    Err(not_running())
}

/// Opens a notification's task.
pub fn open_notification<R: Runtime>(app: &AppHandle<R>, key: &str) -> CmdResult<()> {
    let _ = (app, key);
    Err(not_running())
}

/// Opens the platform's home page.
pub fn open_platform<R: Runtime>(app: &AppHandle<R>) -> CmdResult<()> {
    let _ = app;
    Err(not_running())
}

/// The settings form.
pub fn get_settings<R: Runtime>(app: &AppHandle<R>) -> CmdResult<UiSettings> {
    let _ = app;
    Err(not_running())
}

/// Saves settings.
pub fn save_settings<R: Runtime>(app: &AppHandle<R>, s: UiSettings) -> CmdResult<UiSettings> {
    let _ = (app, s);
    Err(not_running())
}

/// Diagnostics data.
pub fn diagnostics<R: Runtime>(app: &AppHandle<R>) -> UiDiagnostics {
    let shared = app.state::<Shared>();
    let (latency_ms, reconnects) = shared.with_diag(|d| (d.samples(), d.reconnects()));
    emit(app, EVENT_DIAGNOSTICS, ());
    let _ = EVENT_NOTIFICATION;
    UiDiagnostics {
        latency_ms,
        reconnects,
        checks: Vec::new(),
    }
}

/// Sends `action` to the engine.
pub fn send<R: Runtime>(app: &AppHandle<R>, action: Action) -> CmdResult<()> {
    let _ = (app, action);
    Err(not_running())
}
