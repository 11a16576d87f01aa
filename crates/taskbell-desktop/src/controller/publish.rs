//! The one module that speaks to the tray and the windows: it publishes the status (tray
//! icon, tooltip, menu, and the `taskbell://status` event) and emits every other event.
//! The event names live here and nowhere else.

use serde::Serialize;

use super::shell::Controller;
use crate::model::{ConnState, UiAccount, UiDiagnostics, UiNotification, UiStatus};
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

fn emit<S: Serialize>(ctl: &Controller, event: &'static str, payload: S) {
    match serde_json::to_value(payload) {
        Ok(payload) => ctl.shell().emit(event, payload),
        Err(e) => tracing::warn!("emit {event}: {e}"),
    }
}

/// Publishes the first account's status `primary` with the further accounts added in
/// (their unread counts, how many run): tray icon, tooltip, menu, and the windows.
pub fn publish(ctl: &Controller, primary: UiStatus) {
    ctl.shared().set_primary_status(primary);
    refresh(ctl);
}

/// Publishes the first account as signed out (`reason`: why, when not asked for).
pub fn publish_signed_out(ctl: &Controller, reason: Option<String>) {
    ctl.shared().update_primary(|s| {
        s.state = ConnState::SignedOut { reason };
        s.user = None;
        s.summary_lines.clear();
        s.demo = false;
    });
    refresh(ctl);
}

/// Publishes again from what is kept: after the first account's status, a further
/// account or the language changed.
///
/// Threads publish at once (the engines' tasks, the window commands, the menu): each
/// makes the status from the inputs it read and keeps it only if no other thread began
/// one since (that one is made of newer inputs), and the tray is shown the status kept
/// last ([`super::shared::Shared::show_latest`]). So the tray never ends on a status made
/// of older inputs than another it was given.
pub fn refresh(ctl: &Controller) {
    let shared = ctl.shared();
    let (primary, ticket) = shared.begin_status();
    let status = combined(ctl, primary);
    // `None`: another thread began a status since; made of newer inputs, it is kept and
    // shown by that thread (the last to begin always keeps its status).
    if shared.finish_status(ticket, status) != Some(true) {
        return;
    }
    shared.show_latest(|status| {
        // The language now: the status shown may be another thread's, made after a
        // change of language.
        if let Err(e) = ctl.shell().show_status(status, shared.lang()) {
            tracing::warn!("tray update failed: {e}");
        }
        emit(ctl, EVENT_STATUS, status);
    });
}

/// The first account's status with the further accounts added in.
fn combined(ctl: &Controller, primary: UiStatus) -> UiStatus {
    let shared = ctl.shared();
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
    status
}

/// Tells the windows a notification arrived.
pub fn notification(ctl: &Controller, n: UiNotification) {
    emit(ctl, EVENT_NOTIFICATION, n);
}

/// Tells the windows read state changed outside them; `unread` is the new total.
pub fn history_changed(ctl: &Controller, unread: u64) {
    emit(ctl, EVENT_HISTORY, unread);
}

/// The diagnostics window's live data: latency samples and reconnects, no self-checks.
pub fn live_diagnostics(ctl: &Controller) -> UiDiagnostics {
    let shared = ctl.shared();
    let (latency_ms, reconnects) = shared.with_diag(|d| (d.samples(), d.reconnects()));
    UiDiagnostics {
        latency_ms,
        reconnects,
        checks: Vec::new(),
    }
}

/// Tells the diagnostics window a latency sample or a reconnect was recorded.
pub fn diagnostics_changed(ctl: &Controller) {
    emit(ctl, EVENT_DIAGNOSTICS, live_diagnostics(ctl));
}

/// Tells the center a folded toast's notifications wait for it (`take_shown_keys`).
pub fn show_keys(ctl: &Controller) {
    emit(ctl, EVENT_SHOW_KEYS, ());
}
