//! # taskbell-app
//!
//! TaskBell in the system tray: a thin Tauri v2 shell over `taskbell-core`. The core
//! signs in, holds the socket, stores the history and shows the toasts; this crate wires
//! its state and events to the tray icon, the tray menu and the ui/ windows.
//!
//! ## Layout
//!
//! - [`run_app`]: the builder, generic over the Tauri runtime so tests use the mock runtime;
//!   plugins (single instance, autostart); `ExitRequested` → keep running in the tray.
//! - [`tray`]: icon per state + unread badge, tooltip, the menu (ids and labels in one table).
//! - [`windows`]: windows created on demand and destroyed on close.
//! - [`commands`]: the IPC commands of the windows (thin, typed errors) and the menu actions.
//! - [`bridge`]: the only place that knows event names: core status/events → tray + `emit`.
//! - [`model`]: the shapes the tray and the windows see (no token field exists).
//! - [`triage`]: mute and sound rules in settings, "Mute this project" from the center, a
//!   folded toast opening the center on its notifications.
//!
//! Invariants: **no webview exists while no window is open**; **closing a window never
//! quits, "Quit" does**; **the token never leaves the core**.

pub mod bridge;
pub mod checks;
pub mod commands;
pub mod model;
pub mod tray;
pub mod triage;
pub mod windows;

use std::process::ExitCode;
use std::sync::{Mutex, MutexGuard};

use tauri::{App, Builder, Context, Manager, RunEvent, Runtime};

use crate::model::{Lang, UiStatus};
use crate::windows::WindowKind;

/// How the app was started (from the command line).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// `--demo`: run against the embedded reference server as the demo annotator.
    pub demo: bool,
    /// Create the tray icon (off in tests with the mock runtime, which has no tray).
    pub tray: bool,
    /// `--open <window>`: open this window at start (used by tests and the desktop entry).
    pub open: Option<WindowKind>,
    /// `--lang zh-CN|en`: override the language.
    pub lang: Option<Lang>,
}

/// Why the command line was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ArgsError {
    /// An argument that means nothing.
    #[error("unknown argument {0:?} (try --help)")]
    Unknown(String),
    /// A flag without its value.
    #[error("{0} needs a value")]
    Missing(&'static str),
    /// A value that is not allowed.
    #[error("{flag}: {value:?} is not one of {allowed}")]
    Invalid {
        /// The flag.
        flag: &'static str,
        /// What was given.
        value: String,
        /// What is allowed.
        allowed: &'static str,
    },
    /// `--help` was asked for.
    #[error("{USAGE}")]
    Help,
}

/// The command-line help.
pub const USAGE: &str =
    "usage: taskbell-app [--demo] [--open login|center|settings|diagnostics] [--lang zh-CN|en]

  --demo     start the embedded demo server and sign in as the demo annotator
             (also what happens when no server is configured)
  --open W   open window W at start
  --lang L   language of the tray and windows (default: the system's)";

impl Options {
    /// Parses the command line (without the program name).
    pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Self, ArgsError> {
        let mut o = Options {
            tray: true,
            ..Options::default()
        };
        let mut it = args.into_iter();
        while let Some(a) = it.next() {
            match a.as_str() {
                "--demo" => o.demo = true,
                "--open" => {
                    let v = it.next().ok_or(ArgsError::Missing("--open"))?;
                    let kind = WindowKind::ALL.into_iter().find(|k| k.label() == v);
                    o.open = Some(kind.ok_or(ArgsError::Invalid {
                        flag: "--open",
                        value: v,
                        allowed: "login, center, settings, diagnostics",
                    })?);
                }
                "--lang" => {
                    let v = it.next().ok_or(ArgsError::Missing("--lang"))?;
                    o.lang = Some(match v.as_str() {
                        "zh-CN" | "zh" => Lang::ZhCn,
                        "en" => Lang::En,
                        _ => {
                            return Err(ArgsError::Invalid {
                                flag: "--lang",
                                value: v,
                                allowed: "zh-CN, en",
                            });
                        }
                    });
                }
                "-h" | "--help" => return Err(ArgsError::Help),
                // Autostart launches with this; it only means "start in the tray", the default.
                "--minimized" => {}
                _ => return Err(ArgsError::Unknown(a)),
            }
        }
        Ok(o)
    }
}

/// The app's shared state (managed by Tauri; reached with `app.state::<Shared>()`).
#[derive(Debug)]
pub struct Shared {
    /// How the app was started.
    pub options: Options,
    /// Paths, keyring, notifier.
    pub deps: bridge::Deps,
    inner: Mutex<Inner>,
    /// The link to the core engine, once it runs.
    pub engine: bridge::EngineSlot,
}

#[derive(Debug)]
struct Inner {
    lang: Lang,
    /// What the tray and the windows show: the first account's status with the unread
    /// count summed over all accounts.
    status: UiStatus,
    /// The first account's own status (before the other accounts are added in).
    primary: UiStatus,
    core: Option<taskbell_core::supervisor::Status>,
    diag: bridge::DiagLog,
    opening: Vec<String>,
}

/// While alive, a window is being created (see [`Shared::begin_opening`]).
#[derive(Debug)]
pub struct OpeningGuard<'a> {
    shared: &'a Shared,
    label: String,
}

impl Drop for OpeningGuard<'_> {
    fn drop(&mut self) {
        self.shared.lock().opening.retain(|l| *l != self.label);
    }
}

impl Shared {
    /// New state: signed out, in `lang`.
    pub fn new(options: Options, lang: Lang, deps: bridge::Deps) -> Self {
        Self {
            options,
            deps,
            inner: Mutex::new(Inner {
                lang,
                status: UiStatus::signed_out(),
                primary: UiStatus::signed_out(),
                core: None,
                diag: bridge::DiagLog::default(),
                opening: Vec::new(),
            }),
            engine: bridge::EngineSlot::default(),
        }
    }

    /// Marks the window `label` as being created; `None` when another thread already is
    /// creating it (its label is only registered once the window exists, so two callers
    /// could otherwise make two windows).
    pub fn begin_opening(&self, label: &str) -> Option<OpeningGuard<'_>> {
        let mut g = self.lock();
        if g.opening.iter().any(|l| l == label) {
            return None;
        }
        g.opening.push(label.to_string());
        Some(OpeningGuard {
            shared: self,
            label: label.to_string(),
        })
    }

    /// The engine's last status, as the core sent it.
    pub fn core_status(&self) -> Option<taskbell_core::supervisor::Status> {
        self.lock().core.clone()
    }

    /// Keeps the engine's last status.
    pub fn set_core_status(&self, status: taskbell_core::supervisor::Status) {
        self.lock().core = Some(status);
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain data behind; keep going with it.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The current language.
    pub fn lang(&self) -> Lang {
        self.lock().lang
    }

    /// Sets the language.
    pub fn set_lang(&self, lang: Lang) {
        self.lock().lang = lang;
    }

    /// The current status snapshot.
    pub fn status(&self) -> UiStatus {
        self.lock().status.clone()
    }

    /// The first account's own status (its unread count alone, no account count), as
    /// last published; [`bridge::publish`] adds the other accounts in.
    pub fn primary_status(&self) -> UiStatus {
        self.lock().primary.clone()
    }

    /// Keeps the first account's own status.
    pub fn set_primary_status(&self, status: UiStatus) {
        self.lock().primary = status;
    }

    /// Replaces the status; returns whether it changed.
    pub fn set_status(&self, status: UiStatus) -> bool {
        let mut g = self.lock();
        let changed = g.status != status;
        g.status = status;
        changed
    }

    /// Runs `f` on the diagnostics log.
    pub fn with_diag<T>(&self, f: impl FnOnce(&mut bridge::DiagLog) -> T) -> T {
        f(&mut self.lock().diag)
    }
}

/// The app's generated context: tauri.conf.json, the embedded ui/, icons and the
/// capabilities. Generic, so tests run the real capabilities on the mock runtime.
pub fn context<R: Runtime>() -> Context<R> {
    tauri::generate_context!()
}

/// Registers everything the app needs on `builder` and builds it with `context`.
/// Generic over the runtime: `main` passes Wry, tests pass `tauri::test::mock_builder()`.
pub fn run_app<R: Runtime>(
    builder: Builder<R>,
    context: Context<R>,
    shared: Shared,
) -> tauri::Result<App<R>> {
    builder
        .manage(shared)
        .invoke_handler(tauri::generate_handler![
            commands::get_status,
            commands::sign_in,
            commands::list_history,
            commands::mark_read,
            commands::mark_all_read,
            commands::open_notification,
            commands::get_settings,
            commands::save_settings,
            commands::get_diagnostics,
            commands::send_test_notification,
            commands::reconnect_now,
            commands::open_window,
            commands::close_window,
            triage::get_project_policies,
            triage::set_project_policy,
            triage::take_shown_keys,
        ])
        .on_window_event(|window, event| match event {
            tauri::WindowEvent::CloseRequested { .. } => {
                tracing::info!(window = window.label(), "close requested");
            }
            tauri::WindowEvent::Destroyed => {
                tracing::info!(window = window.label(), "window destroyed")
            }
            _ => {}
        })
        .setup(|app| Ok(init(app.handle())?))
        .build(context)
}

/// Starts what the app runs: the tray (unless disabled), the engine (or demo, or the login
/// window), and the window asked for with `--open`. `run_app` calls it when the event loop is
/// ready; tests on the mock runtime, which do not run the loop, call it themselves.
pub fn init<R: Runtime>(app: &tauri::AppHandle<R>) -> tauri::Result<()> {
    // A menu-bar app on macOS: no Dock icon, no app menu.
    #[cfg(target_os = "macos")]
    app.set_activation_policy(tauri::ActivationPolicy::Accessory)?;
    let shared = app.state::<Shared>();
    if shared.options.tray {
        tray::install(app, &shared.status(), shared.lang())?;
    }
    bridge::start(app);
    if let Some(kind) = shared.options.open {
        windows::open(app, kind, shared.lang())?;
    }
    Ok(())
}

/// What to do on a run event: live on in the tray when the last window closes; leave when
/// "Quit" asked to (an exit with a code).
pub fn on_run_event<R: Runtime>(app: &tauri::AppHandle<R>, event: &RunEvent) {
    match event {
        RunEvent::ExitRequested {
            code: None, api, ..
        } => api.prevent_exit(),
        RunEvent::Exit => bridge::shutdown(app),
        _ => {}
    }
}

/// The binary's entry point: parse arguments, start logging, run the app on Wry.
pub fn main() -> ExitCode {
    let options = match Options::parse(std::env::args().skip(1)) {
        Ok(o) => o,
        Err(ArgsError::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("taskbell-app: {e}");
            return ExitCode::from(2);
        }
    };
    // Before any thread starts: the `time` crate refuses to read the local offset after.
    let deps = match bridge::Deps::system() {
        Ok(d) => d,
        Err(e) => {
            eprintln!(
                "taskbell-app: {}",
                taskbell_core::sanitize::terminal_line(&e.to_string())
            );
            return ExitCode::FAILURE;
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        // Every line redacted (no token or password at any level) and escaped (no
        // terminal escape from a notification's text); colours off, as they are escapes.
        .with_writer(taskbell_core::sanitize::SafeMakeWriter::stderr())
        .with_ansi(false)
        .init();
    let configured = taskbell_core::config::Config::load(&deps.paths.config_file())
        .ok()
        .and_then(|c| c.language)
        .map(|l| {
            if l == taskbell_core::i18n::Lang::ZhCn {
                Lang::ZhCn
            } else {
                Lang::En
            }
        });
    let lang = options
        .lang
        .or(configured)
        .unwrap_or_else(bridge::system_lang);
    let shared = Shared::new(options, lang, deps);
    // libappindicator names the StatusNotifierItem after the GLib application name
    // (its `Title`, which KDE and GNOME show); without it panels say "taskbell-app".
    #[cfg(target_os = "linux")]
    glib::set_application_name(tray::APP_NAME);
    let builder = Builder::default()
        // First, so a second launch is caught before anything else starts.
        .plugin(tauri_plugin_single_instance::init(|app, _args, _cwd| {
            let shared = app.state::<Shared>();
            let kind = commands::default_window(&shared.status());
            if let Err(e) = windows::open(app, kind, shared.lang()) {
                tracing::warn!(
                    "second launch: could not open the {} window: {e}",
                    kind.label()
                );
            }
        }))
        .plugin(tauri_plugin_autostart::init(
            tauri_plugin_autostart::MacosLauncher::LaunchAgent,
            Some(vec!["--minimized"]),
        ));
    match run_app(builder, context(), shared) {
        Ok(app) => {
            app.run(|handle, event| on_run_event(handle, &event));
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!("TaskBell could not start: {e}");
            eprintln!("taskbell-app: could not start: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &[&str]) -> Vec<String> {
        s.iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn parses_demo_open_and_lang() {
        let o = Options::parse(args(&["--demo", "--open", "center", "--lang", "zh-CN"])).unwrap();
        assert!(o.demo && o.tray);
        assert_eq!(o.open, Some(WindowKind::Center));
        assert_eq!(o.lang, Some(Lang::ZhCn));
        assert_eq!(
            Options::parse(args(&[])).unwrap(),
            Options {
                tray: true,
                ..Options::default()
            }
        );
    }

    #[test]
    fn a_window_is_created_by_one_caller_at_a_time() {
        let deps = bridge::Deps {
            paths: taskbell_core::config::Paths {
                config_dir: "/nonexistent".into(),
                data_dir: "/nonexistent".into(),
            },
            credentials: Err("none".into()),
            notifier: std::sync::Arc::new(taskbell_core::notifier::RecordingNotifier::new()),
            notifier_factory: None,
            utc_offset: time::UtcOffset::UTC,
        };
        let shared = Shared::new(Options::default(), Lang::En, deps);
        let first = shared
            .begin_opening("login")
            .expect("first caller creates it");
        assert!(
            shared.begin_opening("login").is_none(),
            "second caller backs off"
        );
        assert!(
            shared.begin_opening("center").is_some(),
            "other windows are independent"
        );
        drop(first);
        assert!(
            shared.begin_opening("login").is_some(),
            "free again once created"
        );
    }

    #[test]
    fn refuses_bad_arguments_with_a_reason() {
        assert_eq!(
            Options::parse(args(&["--bogus"])),
            Err(ArgsError::Unknown("--bogus".into()))
        );
        assert_eq!(
            Options::parse(args(&["--open"])),
            Err(ArgsError::Missing("--open"))
        );
        let e = Options::parse(args(&["--open", "kitchen"])).unwrap_err();
        assert!(e.to_string().contains("login, center"), "{e}");
        assert!(matches!(
            Options::parse(args(&["--lang", "fr"])),
            Err(ArgsError::Invalid { .. })
        ));
        assert_eq!(Options::parse(args(&["--help"])), Err(ArgsError::Help));
    }
}
