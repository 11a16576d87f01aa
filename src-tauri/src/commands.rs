//! The IPC commands the ui/ windows call, and the tray menu's actions. Thin: each one
//! checks its input, asks the core (through [`crate::bridge`]) and maps the answer to a
//! [`crate::model`] shape or a [`CmdError`] the window can show as it is.

use serde::Serialize;
use tauri::{AppHandle, Manager, Runtime, State};

use crate::model::{
    ConnState, HistoryFilter, UiDiagnostics, UiNotification, UiSettings, UiStatus, UiUser,
};
use crate::tray::MenuId;
use crate::windows::{self, WindowKind};
use crate::{Shared, bridge};

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

impl From<taskbell_core::config::ConfigError> for CmdError {
    fn from(e: taskbell_core::config::ConfigError) -> Self {
        Self::new(ErrorKind::Local, e.to_string())
    }
}

impl From<tauri::Error> for CmdError {
    fn from(e: tauri::Error) -> Self {
        Self::new(ErrorKind::Local, e.to_string())
    }
}

/// The result type of every command.
pub type CmdResult<T> = Result<T, CmdError>;

/// The window to show when the user asks for "the" window (second launch, left click).
pub fn default_window(status: &UiStatus) -> WindowKind {
    match status.state {
        ConnState::SignedOut { .. } => WindowKind::Login,
        _ => WindowKind::Center,
    }
}

/// The current status (state, unread, user, summary).
#[tauri::command]
pub fn get_status(shared: State<'_, Shared>) -> UiStatus {
    shared.status()
}

/// Signs in and starts the engine. Errors say what went wrong in plain words.
#[tauri::command]
pub async fn sign_in<R: Runtime>(
    app: AppHandle<R>,
    server: String,
    username: String,
    password: String,
    remember: bool,
) -> CmdResult<UiUser> {
    if server.trim().is_empty() {
        return Err(
            CmdError::new(ErrorKind::Invalid, "Enter the platform's address.").on("server"),
        );
    }
    if username.trim().is_empty() {
        return Err(CmdError::new(ErrorKind::Invalid, "Enter your user name.").on("username"));
    }
    if password.is_empty() {
        return Err(CmdError::new(ErrorKind::Invalid, "Enter your password.").on("password"));
    }
    let user = bridge::sign_in(&app, server.trim(), username.trim(), &password, remember).await?;
    // The login window has done its job.
    let _ = windows::close(&app, WindowKind::Login);
    Ok(user)
}

/// The history, newest first, filtered.
#[tauri::command]
pub async fn list_history<R: Runtime>(
    app: AppHandle<R>,
    filter: Option<HistoryFilter>,
) -> CmdResult<Vec<UiNotification>> {
    bridge::list_history(&app, &filter.unwrap_or_default())
}

/// Marks these notifications read.
#[tauri::command]
pub async fn mark_read<R: Runtime>(app: AppHandle<R>, keys: Vec<String>) -> CmdResult<()> {
    if keys.is_empty() {
        return Err(CmdError::new(ErrorKind::Invalid, "No notification given."));
    }
    bridge::mark_read(&app, Some(&keys))
}

/// Marks every notification read.
#[tauri::command]
pub async fn mark_all_read<R: Runtime>(app: AppHandle<R>) -> CmdResult<()> {
    bridge::mark_read(&app, None)
}

/// Opens the task of a notification in the browser (only on the platform's own origin)
/// and marks it read. The URL is looked up here, never taken from the window.
#[tauri::command]
pub async fn open_notification<R: Runtime>(app: AppHandle<R>, key: String) -> CmdResult<()> {
    bridge::open_notification(&app, &key)
}

/// The settings form.
#[tauri::command]
pub fn get_settings<R: Runtime>(app: AppHandle<R>) -> CmdResult<UiSettings> {
    bridge::get_settings(&app)
}

/// Checks and saves the settings form; the engine picks them up.
#[tauri::command]
pub fn save_settings<R: Runtime>(app: AppHandle<R>, settings: UiSettings) -> CmdResult<UiSettings> {
    bridge::save_settings(&app, settings)
}

/// Latency samples, reconnect log and self-checks (D-Bus and X11 round trips, so off the
/// main thread).
#[tauri::command]
pub async fn get_diagnostics<R: Runtime>(app: AppHandle<R>) -> CmdResult<UiDiagnostics> {
    tauri::async_runtime::spawn_blocking(move || bridge::diagnostics(&app))
        .await
        .map_err(|e| CmdError::new(ErrorKind::Local, e.to_string()))
}

/// Sends a test notification through the whole path (core → daemon).
#[tauri::command]
pub async fn send_test_notification<R: Runtime>(app: AppHandle<R>) -> CmdResult<()> {
    bridge::send(&app, bridge::Action::TestNotification)
}

/// Reconnects now instead of waiting for the backoff.
#[tauri::command]
pub fn reconnect_now<R: Runtime>(app: AppHandle<R>) -> CmdResult<()> {
    bridge::send(&app, bridge::Action::ReconnectNow)
}

/// Opens another window (e.g. diagnostics from settings).
#[tauri::command]
pub fn open_window<R: Runtime>(app: AppHandle<R>, window: WindowKind) -> CmdResult<()> {
    let lang = app.state::<Shared>().lang();
    Ok(windows::open(&app, window, lang)?)
}

/// Closes the window that asks (the center's Esc): it is destroyed with its web process, as
/// when the window manager closes it; TaskBell stays in the tray.
#[tauri::command]
pub fn close_window<R: Runtime>(window: tauri::WebviewWindow<R>) -> CmdResult<()> {
    Ok(window.close()?)
}

/// Handles a click in the tray menu.
pub fn on_menu<R: Runtime>(app: &AppHandle<R>, id: &str) {
    let shared = app.state::<Shared>();
    let lang = shared.lang();
    let open = |kind: WindowKind| {
        windows::open(app, kind, lang).map_err(|e| {
            CmdError::new(
                ErrorKind::Local,
                format!("could not open the {} window: {e}", kind.label()),
            )
        })
    };
    let result = match MenuId::parse(id) {
        Some(MenuId::Notifications) => open(WindowKind::Center),
        Some(MenuId::Settings) => open(WindowKind::Settings),
        Some(MenuId::Diagnostics) => open(WindowKind::Diagnostics),
        Some(MenuId::SignIn) => open(WindowKind::Login),
        Some(MenuId::Summary) => bridge::open_platform(app),
        Some(MenuId::Pause30m) => bridge::send(app, bridge::Action::PauseFor(30 * 60)),
        Some(MenuId::Pause1h) => bridge::send(app, bridge::Action::PauseFor(60 * 60)),
        Some(MenuId::PauseTomorrow) => bridge::send(app, bridge::Action::PauseUntilTomorrow),
        Some(MenuId::Resume) => bridge::send(app, bridge::Action::Resume),
        Some(MenuId::Reconnect) => bridge::send(app, bridge::Action::ReconnectNow),
        Some(MenuId::SignOut) => bridge::send(app, bridge::Action::SignOut),
        Some(MenuId::Quit) => {
            app.exit(0);
            Ok(())
        }
        Some(MenuId::User | MenuId::State | MenuId::Pause) | None => Ok(()),
    };
    if let Err(e) = result {
        tracing::warn!("menu {id}: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn ui_test_error_fixtures_match_the_serialised_errors() {
        let fixtures: Value =
            serde_json::from_str(include_str!("../../ui/tests/fixtures/errors.json")).unwrap();
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
}
