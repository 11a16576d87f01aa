//! The controller: owns the engines (one per signed-in account, or the demo's) and the
//! app's state, turns what they report into publications, and carries out what the
//! windows and the menu ask for. The IPC commands and the menu only call it.
//!
//! It knows no GUI toolkit: it shows itself through a [`Shell`] (the Tauri app's tray and
//! windows, or a test's recorder), and everything it runs is reached through a
//! [`Controller`] handle.
//!
//! Its files, in the order they depend on each other (no cycles; `tests/layers.rs`
//! checks): [`slot`] (the engines' senders and generations), [`shared`] (the state),
//! [`shell`] (the seam to the desktop, and the handle), [`publish`] (the one module that
//! emits), [`engines`] (life cycle), [`actions`] (requests).
//!
//! Several accounts (`taskbell_core::accounts`): the **first account** has the tray's
//! state line, the sign-in flow and the login window. Every **further account** signed
//! in (a token, or a remembered password, in the keyring) runs an engine alongside; the
//! unread count is the sum, pause, resume and reconnect go to every engine, the center
//! lists every account's history, and each account can be signed out on its own. With more
//! than one account, toasts name the account and every key the windows see is
//! `"<account>/<key>"` ([`crate::model::UiNotification::key`]).

pub mod actions;
pub mod engines;
pub mod publish;
pub mod shared;
pub mod shell;
pub mod slot;

pub use actions::{
    Action, diagnostics, get_settings, list_history, mark_read, open_notification, open_platform,
    open_window, pause_account, project_policies, save_settings, send, set_project_policy,
    take_shown_keys,
};
pub use engines::{on_event, shutdown, sign_in, sign_out_account, start};
pub use publish::{
    EVENT_DIAGNOSTICS, EVENT_HISTORY, EVENT_NOTIFICATION, EVENT_SHOW_KEYS, EVENT_STATUS,
};
pub use shared::{Deps, NotifierFactory, Shared};
pub use shell::{Controller, RecordingShell, Shell, ShellCall};
pub use slot::EngineSlot;
