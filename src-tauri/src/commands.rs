//! The IPC commands the ui/ windows call, and the tray menu's actions. Thin: each one
//! checks its input and calls the [`crate::controller`], which answers with a
//! [`crate::model`] shape or a [`CmdError`] the window can show as it is.

use taskbell_core::config::ToastPolicy;
use tauri::{AppHandle, Runtime, State};

use crate::controller::{self, Action, Shared};
use crate::error::{CmdError, CmdResult, ErrorKind};
use crate::model::{
    HistoryFilter, UiDiagnostics, UiNotification, UiProjectRule, UiSettings, UiStatus, UiUser,
    WindowKind,
};
use crate::view::menu::{MenuAction, MenuId};

impl From<tauri::Error> for CmdError {
    fn from(e: tauri::Error) -> Self {
        crate::error::local(e)
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
    controller::sign_in(&app, server.trim(), username.trim(), &password, remember).await
}

/// The history, newest first, filtered.
#[tauri::command]
pub async fn list_history<R: Runtime>(
    app: AppHandle<R>,
    filter: Option<HistoryFilter>,
) -> CmdResult<Vec<UiNotification>> {
    controller::list_history(&app, &filter.unwrap_or_default())
}

/// Marks these notifications read.
#[tauri::command]
pub async fn mark_read<R: Runtime>(app: AppHandle<R>, keys: Vec<String>) -> CmdResult<()> {
    if keys.is_empty() {
        return Err(CmdError::new(ErrorKind::Invalid, "No notification given."));
    }
    controller::mark_read(&app, Some(&keys))
}

/// Marks every notification read.
#[tauri::command]
pub async fn mark_all_read<R: Runtime>(app: AppHandle<R>) -> CmdResult<()> {
    controller::mark_read(&app, None)
}

/// Opens the task of a notification in the browser (only on the platform's own origin)
/// and marks it read. The URL is looked up here, never taken from the window.
#[tauri::command]
pub async fn open_notification<R: Runtime>(app: AppHandle<R>, key: String) -> CmdResult<()> {
    controller::open_notification(&app, &key)
}

/// The settings form.
#[tauri::command]
pub fn get_settings<R: Runtime>(app: AppHandle<R>) -> CmdResult<UiSettings> {
    controller::get_settings(&app)
}

/// Checks and saves the settings form; the engine picks them up.
#[tauri::command]
pub fn save_settings<R: Runtime>(app: AppHandle<R>, settings: UiSettings) -> CmdResult<UiSettings> {
    controller::save_settings(&app, settings)
}

/// Latency samples, reconnect log and self-checks (D-Bus and X11 round trips, so off the
/// main thread).
#[tauri::command]
pub async fn get_diagnostics<R: Runtime>(app: AppHandle<R>) -> CmdResult<UiDiagnostics> {
    tauri::async_runtime::spawn_blocking(move || controller::diagnostics(&app))
        .await
        .map_err(|e| CmdError::new(ErrorKind::Local, e.to_string()))
}

/// Sends a test notification through the whole path (core → daemon).
#[tauri::command]
pub async fn send_test_notification<R: Runtime>(app: AppHandle<R>) -> CmdResult<()> {
    controller::send(&app, Action::TestNotification)
}

/// Reconnects now instead of waiting for the backoff.
#[tauri::command]
pub fn reconnect_now<R: Runtime>(app: AppHandle<R>) -> CmdResult<()> {
    controller::send(&app, Action::ReconnectNow)
}

/// Opens another window (e.g. diagnostics from settings).
#[tauri::command]
pub fn open_window<R: Runtime>(app: AppHandle<R>, window: WindowKind) -> CmdResult<()> {
    controller::open_window(&app, window)
}

/// Closes the window that asks (the center's Esc): it is destroyed with its web process, as
/// when the window manager closes it; TaskBell stays in the tray.
#[tauri::command]
pub fn close_window<R: Runtime>(window: tauri::WebviewWindow<R>) -> CmdResult<()> {
    Ok(window.close()?)
}

/// The project rules of the account in use (the center's Mute buttons).
#[tauri::command]
pub fn get_project_policies<R: Runtime>(app: AppHandle<R>) -> CmdResult<Vec<UiProjectRule>> {
    controller::project_policies(&app)
}

/// Sets one project's toast policy (`null` removes its rule); returns every project rule.
#[tauri::command]
pub fn set_project_policy<R: Runtime>(
    app: AppHandle<R>,
    project: String,
    policy: Option<ToastPolicy>,
) -> CmdResult<Vec<UiProjectRule>> {
    if project.trim().is_empty() {
        return Err(CmdError::new(ErrorKind::Invalid, "No project given.").on("projects"));
    }
    controller::set_project_policy(&app, &project, policy)
}

/// The keys a folded toast asked the center to show, once.
#[tauri::command]
pub fn take_shown_keys<R: Runtime>(app: AppHandle<R>) -> Option<Vec<String>> {
    controller::take_shown_keys(&app)
}

/// The engine action of a pause entry (30 min, 1 hour, until tomorrow, resume).
fn pause_action(entry: MenuId) -> Action {
    match entry {
        MenuId::Pause30m => Action::PauseFor(30 * 60),
        MenuId::Pause1h => Action::PauseFor(60 * 60),
        MenuId::PauseTomorrow => Action::PauseUntilTomorrow,
        _ => Action::Resume,
    }
}

/// Handles a click in the tray menu (the handler `crate::tray::install` is given).
pub fn on_menu<R: Runtime>(app: &AppHandle<R>, id: &str) {
    let open = |kind: WindowKind| controller::open_window(app, kind);
    let result = match MenuAction::parse(id) {
        Some(MenuAction::Summary(_)) => controller::open_platform(app),
        Some(MenuAction::SignOutAccount(account)) => controller::sign_out_account(app, &account),
        Some(MenuAction::PauseAccount { what, id }) => {
            controller::pause_account(app, &id, pause_action(what))
        }
        Some(MenuAction::Item(item)) => match item {
            MenuId::Notifications => open(WindowKind::Center),
            MenuId::Settings => open(WindowKind::Settings),
            MenuId::Diagnostics => open(WindowKind::Diagnostics),
            MenuId::SignIn | MenuId::AddAccount => open(WindowKind::Login),
            MenuId::Summary => controller::open_platform(app),
            MenuId::Pause30m | MenuId::Pause1h | MenuId::PauseTomorrow | MenuId::Resume => {
                controller::send(app, pause_action(item))
            }
            MenuId::Reconnect => controller::send(app, Action::ReconnectNow),
            MenuId::SignOut => controller::send(app, Action::SignOut),
            MenuId::Quit => {
                app.exit(0);
                Ok(())
            }
            MenuId::User | MenuId::State | MenuId::Pause | MenuId::Accounts => Ok(()),
        },
        None => Ok(()),
    };
    if let Err(e) = result {
        tracing::warn!("menu {id}: {e}");
    }
}
