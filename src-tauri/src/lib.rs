//! # taskbell-app
//!
//! TaskBell in the system tray: a thin Tauri v2 shell over `taskbell-core`. The core
//! signs in, holds the socket, stores the history and shows the toasts; this crate wires
//! its state and events to the tray icon, the tray menu and the ui/ windows.
//!
//! ## Layout (each module depends only on those above it; `tests/layers.rs` checks)
//!
//! - [`model`]: the shapes the tray and the windows see (no token field exists).
//! - [`error`]: the commands' one error type, and how core failures map to it.
//! - [`view`]: Tauri-free, pure: status and state line, notification rows, settings form,
//!   merged history, the tray menu model ([`view::menu`]) and icon pixels ([`view::icon`]).
//! - [`options`]: the command line.
//! - [`windows`], [`tray`], [`checks`]: the shell's parts (windows on demand, the tray as
//!   the OS shows it, the diagnostics self-checks).
//! - [`controller`]: owns the engines and the state; the only module that emits.
//! - [`commands`]: the IPC commands and the menu handler; they only call the controller.
//! - this file: [`run_app`] (the builder, generic over the runtime so tests use the mock
//!   runtime), [`init`], [`main`].
//!
//! Invariants: **no webview exists while no window is open**; **closing a window never
//! quits, "Quit" does**; **the token never leaves the core**.

pub mod checks;
pub mod commands;
pub mod controller;
pub mod error;
pub mod model;
pub mod options;
pub mod tray;
pub mod view;
pub mod windows;

use std::process::ExitCode;

use tauri::{App, Builder, Context, Manager, RunEvent, Runtime};

pub use crate::controller::{Deps, Shared};
use crate::model::Lang;
pub use crate::options::{ArgsError, Options, USAGE};

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
        .manage(windows::Opening::default())
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
            commands::get_project_policies,
            commands::set_project_policy,
            commands::take_shown_keys,
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
        tray::install(app, &shared.status(), shared.lang(), commands::on_menu)?;
    }
    controller::start(app);
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
        RunEvent::Exit => controller::shutdown(app),
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
    let deps = match Deps::system() {
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
        .and_then(|c| c.language);
    let lang = options
        .lang
        .or(configured)
        .unwrap_or_else(Lang::from_system);
    let shared = Shared::new(options, lang, deps);
    // libappindicator names the StatusNotifierItem after the GLib application name
    // (its `Title`, which KDE and GNOME show); without it panels say "taskbell-app".
    #[cfg(target_os = "linux")]
    glib::set_application_name(view::icon::APP_NAME);
    let builder = Builder::default()
        // First, so a second launch is caught before anything else starts.
        .plugin(tauri_plugin_single_instance::init(|app, _args, _cwd| {
            let shared = app.state::<Shared>();
            let kind = view::default_window(&shared.status());
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
