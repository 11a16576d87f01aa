//! The one entry the windows call, and the tray menu's actions. Thin: each command
//! checks its input and calls the [`crate::controller`], which answers with a
//! [`crate::model`] shape or a [`CmdError`] the window can show as it is.
//!
//! A command arrives as its name and a JSON object of arguments, as a window's
//! `invoke(cmd, args)` sends it; the answer is JSON. So the same entry serves a window in
//! this process (the Tauri app's `invoke_handler` forwards every command here) and one in
//! another process (the same call over a local socket). Which window may call what is the
//! window host's business (Tauri's capabilities), checked before a call gets here.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use taskbell_core::config::ToastPolicy;
use taskbell_core::protocol::json_kind;

use crate::controller::{self, Action, Controller};
use crate::error::{CmdError, CmdResult, ErrorKind};
use crate::model::{HistoryFilter, UiSettings, WindowKind};
use crate::view::menu::{MenuAction, MenuId};

/// Every command a window can call (`close_window` is the window host's own: it closes
/// the window that asks). `build.rs` of the Tauri app lists the same names for its
/// capabilities; a unit test keeps the two lists equal.
pub const COMMANDS: &[&str] = &[
    "get_status",
    "sign_in",
    "list_history",
    "mark_read",
    "mark_all_read",
    "open_notification",
    "get_settings",
    "save_settings",
    "get_diagnostics",
    "send_test_notification",
    "reconnect_now",
    "open_window",
    "close_window",
    "get_project_policies",
    "set_project_policy",
    "take_shown_keys",
];

/// The arguments of one call: a JSON object whose keys are the argument names.
struct Args<'a> {
    cmd: &'a str,
    map: Map<String, Value>,
}

impl<'a> Args<'a> {
    fn new(cmd: &'a str, args: Value) -> CmdResult<Self> {
        match args {
            Value::Object(map) => Ok(Self { cmd, map }),
            Value::Null => Ok(Self {
                cmd,
                map: Map::new(),
            }),
            other => Err(CmdError::new(
                ErrorKind::Invalid,
                format!(
                    "invalid arguments for command `{cmd}`: expected an object, got {}",
                    json_kind(&other)
                ),
            )),
        }
    }

    /// The argument `key`; `null` and absent mean `None`.
    fn optional<T: DeserializeOwned>(&mut self, key: &str) -> CmdResult<Option<T>> {
        match self.map.remove(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => serde_json::from_value(v).map(Some).map_err(|e| {
                CmdError::new(
                    ErrorKind::Invalid,
                    format!("invalid argument `{key}` for command `{}`: {e}", self.cmd),
                )
            }),
        }
    }

    /// The argument `key`, which must be there.
    fn required<T: DeserializeOwned>(&mut self, key: &str) -> CmdResult<T> {
        self.optional(key)?.ok_or_else(|| {
            CmdError::new(
                ErrorKind::Invalid,
                format!("command `{}` is missing its argument `{key}`", self.cmd),
            )
        })
    }
}

fn json<T: Serialize>(v: T) -> CmdResult<Value> {
    serde_json::to_value(v).map_err(crate::error::local)
}

/// Runs the command `cmd` with `args` (a JSON object, or `null` for none) and answers
/// its JSON result. An unknown command, a missing or mistyped argument and an empty
/// field are [`ErrorKind::Invalid`] errors that name what was wrong.
pub async fn dispatch(ctl: &Controller, cmd: &str, args: Value) -> CmdResult<Value> {
    ctl.activity();
    let mut a = Args::new(cmd, args)?;
    match cmd {
        "get_status" => json(ctl.shared().status()),
        "sign_in" => {
            let server: String = a.required("server")?;
            let username: String = a.required("username")?;
            let password: String = a.required("password")?;
            let remember: bool = a.required("remember")?;
            if server.trim().is_empty() {
                return Err(
                    CmdError::new(ErrorKind::Invalid, "Enter the platform's address.").on("server"),
                );
            }
            if username.trim().is_empty() {
                return Err(
                    CmdError::new(ErrorKind::Invalid, "Enter your user name.").on("username")
                );
            }
            if password.is_empty() {
                return Err(
                    CmdError::new(ErrorKind::Invalid, "Enter your password.").on("password")
                );
            }
            json(
                controller::sign_in(ctl, server.trim(), username.trim(), &password, remember)
                    .await?,
            )
        }
        "list_history" => {
            let filter: Option<HistoryFilter> = a.optional("filter")?;
            json(controller::list_history(ctl, &filter.unwrap_or_default())?)
        }
        "mark_read" => {
            let keys: Vec<String> = a.required("keys")?;
            if keys.is_empty() {
                return Err(CmdError::new(ErrorKind::Invalid, "No notification given."));
            }
            json(controller::mark_read(ctl, Some(&keys))?)
        }
        "mark_all_read" => json(controller::mark_read(ctl, None)?),
        // The URL is looked up by the controller, never taken from the window.
        "open_notification" => {
            let key: String = a.required("key")?;
            json(controller::open_notification(ctl, &key)?)
        }
        "get_settings" => json(controller::get_settings(ctl)?),
        "save_settings" => {
            let settings: UiSettings = a.required("settings")?;
            json(controller::save_settings(ctl, settings)?)
        }
        // D-Bus and X11 round trips: off the runtime's threads.
        "get_diagnostics" => {
            let c = ctl.clone();
            let d = ctl
                .runtime()
                .spawn_blocking(move || controller::diagnostics(&c))
                .await
                .map_err(|e| CmdError::new(ErrorKind::Local, e.to_string()))?;
            json(d)
        }
        "send_test_notification" => json(controller::send(ctl, Action::TestNotification)?),
        "reconnect_now" => json(controller::send(ctl, Action::ReconnectNow)?),
        "open_window" => {
            let kind: WindowKind = a.required("window")?;
            json(controller::open_window(ctl, kind)?)
        }
        "get_project_policies" => json(controller::project_policies(ctl)?),
        "set_project_policy" => {
            let project: String = a.required("project")?;
            let policy: Option<ToastPolicy> = a.optional("policy")?;
            if project.trim().is_empty() {
                return Err(CmdError::new(ErrorKind::Invalid, "No project given.").on("projects"));
            }
            json(controller::set_project_policy(ctl, &project, policy)?)
        }
        "take_shown_keys" => json(controller::take_shown_keys(ctl)),
        _ => Err(CmdError::new(
            ErrorKind::Invalid,
            format!("There is no command `{cmd}`."),
        )),
    }
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

/// Handles a click in the tray menu on the entry `id` ([`MenuId::as_str`] or a
/// [`MenuAction`] string); "Quit" asks the shell to leave.
pub fn on_menu(ctl: &Controller, id: &str) {
    ctl.activity();
    let open = |kind: WindowKind| controller::open_window(ctl, kind);
    let result = match MenuAction::parse(id) {
        Some(MenuAction::Summary(_)) => controller::open_platform(ctl),
        Some(MenuAction::SignOutAccount(account)) => controller::sign_out_account(ctl, &account),
        Some(MenuAction::PauseAccount { what, id }) => {
            controller::pause_account(ctl, &id, pause_action(what))
        }
        Some(MenuAction::Item(item)) => match item {
            MenuId::Notifications => open(WindowKind::Center),
            MenuId::Settings => open(WindowKind::Settings),
            MenuId::Diagnostics => open(WindowKind::Diagnostics),
            MenuId::SignIn | MenuId::AddAccount => open(WindowKind::Login),
            MenuId::Summary => controller::open_platform(ctl),
            MenuId::Pause30m | MenuId::Pause1h | MenuId::PauseTomorrow | MenuId::Resume => {
                controller::send(ctl, pause_action(item))
            }
            MenuId::Reconnect => controller::send(ctl, Action::ReconnectNow),
            MenuId::SignOut => controller::send(ctl, Action::SignOut),
            MenuId::Quit => {
                ctl.shell().quit();
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
