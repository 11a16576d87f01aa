//! The one module that speaks to the tray and the windows: it publishes the status (tray
//! icon, tooltip, menu, and the `taskbell://status` event) and emits every other event.
//! The event names live here and nowhere else.

use serde::Serialize;
use tauri::{AppHandle, Emitter, Manager, Runtime};

use super::shared::Shared;
use crate::model::{ConnState, UiAccount, UiDiagnostics, UiNotification, UiStatus};
use crate::tray;
use crate::view::menu::state_line;

/// Event sent to the windows when the status changes; payload [`UiStatus`].
pub const EVENT_STATUS: &str = "taskbell://status";
/// Event sent when a notification arrives; payload [`UiNotification`].
pub const EVENT_NOTIFICATION: &str = "taskbell://notification";
/// Event sent when read state changed outside the window; payload: the unread count.
pub const EVENT_HISTORY: &str = "taskbell://history";
/// Event sent when a latency sample or reconnect was recorded; payload [`UiDiagnostics`]
/// without the (slow) self-checks.
pub const EVENT_DIAGNOSTICS: &str = "taskbell://diagnostics";
/// Event sent when a folded toast asks the center to show its notifications (no payload:
/// the center takes the keys with `take_shown_keys`, so a center still loading gets them
/// too).
pub const EVENT_SHOW_KEYS: &str = "taskbell://show-keys";

fn emit<R: Runtime, S: Serialize + Clone>(app: &AppHandle<R>, event: &str, payload: S) {
    if let Err(e) = app.emit(event, payload) {
        tracing::debug!("emit {event}: {e}");
    }
}

/// Publishes the first account's status `primary` with the further accounts added in
/// (their unread counts, how many run): tray icon, tooltip, menu, and the windows.
pub fn publish<R: Runtime>(app: &AppHandle<R>, primary: UiStatus) {
    let shared = app.state::<Shared>();
    shared.set_primary_status(primary.clone());
    let (running, unread) = shared.engine.further_summary();
    let mut status = primary;
    status.account_list = match shared.engine.primary_label() {
        Some(id) => std::iter::once(UiAccount {
            id,
            state: status.state.clone(),
            unread: status.unread,
            paused_until_ms: status.paused_until_ms,
        })
        .chain(shared.engine.further_accounts())
        .collect(),
        None => Vec::new(),
    };
    status.unread += unread;
    status.accounts = 1 + running;
    status.state_line = state_line(&status, shared.lang());
    if !shared.set_status(status.clone()) {
        return;
    }
    if let Err(e) = tray::apply(app, &status, shared.lang()) {
        tracing::warn!("tray update failed: {e}");
    }
    emit(app, EVENT_STATUS, status);
}

/// Publishes the first account as signed out (`reason`: why, when not asked for).
pub fn publish_signed_out<R: Runtime>(app: &AppHandle<R>, reason: Option<String>) {
    let shared = app.state::<Shared>();
    let mut s = shared.primary_status();
    s.state = ConnState::SignedOut { reason };
    s.user = None;
    s.summary_lines.clear();
    s.demo = false;
    publish(app, s);
}

/// Publishes again (e.g. after the language changed: the state line and the menu follow).
pub fn refresh<R: Runtime>(app: &AppHandle<R>) {
    let shared = app.state::<Shared>();
    publish(app, shared.primary_status());
}

/// Tells the windows a notification arrived.
pub fn notification<R: Runtime>(app: &AppHandle<R>, n: UiNotification) {
    emit(app, EVENT_NOTIFICATION, n);
}

/// Tells the windows read state changed outside them; `unread` is the new total.
pub fn history_changed<R: Runtime>(app: &AppHandle<R>, unread: u64) {
    emit(app, EVENT_HISTORY, unread);
}

/// The diagnostics window's live data: latency samples and reconnects, no self-checks.
pub fn live_diagnostics<R: Runtime>(app: &AppHandle<R>) -> UiDiagnostics {
    let shared = app.state::<Shared>();
    let (latency_ms, reconnects) = shared.with_diag(|d| (d.samples(), d.reconnects()));
    UiDiagnostics {
        latency_ms,
        reconnects,
        checks: Vec::new(),
    }
}

/// Tells the diagnostics window a latency sample or a reconnect was recorded.
pub fn diagnostics_changed<R: Runtime>(app: &AppHandle<R>) {
    emit(app, EVENT_DIAGNOSTICS, live_diagnostics(app));
}

/// Tells the center a folded toast's notifications wait for it (`take_shown_keys`).
pub fn show_keys<R: Runtime>(app: &AppHandle<R>) {
    emit(app, EVENT_SHOW_KEYS, ());
}
