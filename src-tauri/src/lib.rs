//! # taskbell-app
//!
//! TaskBell in the system tray: a thin Tauri v2 shell over `taskbell-desktop`'s
//! controller, which runs `taskbell-core`. The core signs in, holds the socket, stores
//! the history and shows the toasts; the controller decides what the tray and the windows
//! show; this crate shows it: the tray icon and menu, the ui/ windows, and the one IPC
//! handler that forwards every window command to the controller.
//!
//! ## Layout (each module depends only on those above it; `tests/layers.rs` checks)
//!
//! - re-exported from `taskbell-desktop` (Tauri-free): [`model`], [`error`], [`view`],
//!   [`options`], [`checks`], [`controller`], [`dispatch`].
//! - [`windows`], [`tray`]: the shell's parts (windows on demand, the tray as the OS
//!   shows it).
//! - [`shell`]: [`shell::TauriShell`], the controller's [`Shell`](taskbell_desktop::Shell)
//!   in this process.
//! - this file: [`run_app`] (the builder, generic over the runtime so tests use the mock
//!   runtime), [`forward`] (the IPC handler), [`init`], [`main`].
//!
//! Invariants: **no webview exists while no window is open**; **closing a window never
//! quits, "Quit" does**; **the token never leaves the core**.

#[cfg(unix)]
pub mod host;
pub mod shell;
pub mod tray;
pub mod windows;

use std::process::ExitCode;

use tauri::ipc::{Invoke, InvokeBody, InvokeError, InvokeResponseBody};
use tauri::{App, AppHandle, Builder, Context, Manager, RunEvent, Runtime};

pub use taskbell_desktop::{Controller, Deps, Shared};
pub use taskbell_desktop::{checks, controller, dispatch, error, model, options, view};

use crate::error::{CmdError, ErrorKind};
use crate::model::Lang;
pub use crate::options::{ArgsError, Options, USAGE};
use crate::shell::TauriShell;

/// The app's generated context: tauri.conf.json, the embedded ui/, icons and the
/// capabilities. Generic, so tests run the real capabilities on the mock runtime.
pub fn context<R: Runtime>() -> Context<R> {
    tauri::generate_context!()
}

/// Registers everything the app needs on `builder`, builds it with `context` and gives it
/// its [`Controller`] over `shared` (managed state). Generic over the runtime: `main`
/// passes Wry, tests pass `tauri::test::mock_builder()`.
pub fn run_app<R: Runtime>(
    builder: Builder<R>,
    context: Context<R>,
    shared: Shared,
) -> tauri::Result<App<R>> {
    let app = builder
        .manage(windows::Opening::default())
        .invoke_handler(forward::<R>)
        .on_window_event(log_window_event)
        .setup(|app| Ok(init(app.handle())?))
        .build(context)?;
    let runtime = tauri::async_runtime::handle().inner().clone();
    let controller = Controller::new(shared, TauriShell::new(app.handle().clone()), runtime);
    app.manage(controller);
    Ok(app)
}

/// The app's controller (managed state).
pub fn controller_of<R: Runtime>(app: &AppHandle<R>) -> Controller {
    app.state::<Controller>().inner().clone()
}

/// The IPC handler: every window command goes to [`dispatch::dispatch`] by name, with its
/// JSON arguments, and its JSON answer (or [`CmdError`]) goes back as it is. Tauri checks
/// the window's capability before this runs.
pub fn forward<R: Runtime>(invoke: Invoke<R>) -> bool {
    answer_invoke(invoke, |app, cmd, args| {
        let ctl = controller_of(&app);
        async move {
            dispatch::dispatch(&ctl, &cmd, args)
                .await
                .map_err(|e| serde_json::to_value(e).unwrap_or(serde_json::Value::Null))
        }
    })
}

/// Answers one `invoke` with what `run(app, command, json_args)` answers (`Err`: a
/// serialised [`CmdError`]). `close_window` is the one command of the window itself and
/// never reaches `run`: it closes the window that asks (the center's Esc), destroying it
/// with its web process, as when the window manager closes it; TaskBell stays in the tray.
pub fn answer_invoke<R, F, Fut>(invoke: Invoke<R>, run: F) -> bool
where
    R: Runtime,
    F: FnOnce(AppHandle<R>, String, serde_json::Value) -> Fut,
    Fut: Future<Output = Result<serde_json::Value, serde_json::Value>> + Send + 'static,
{
    let Invoke {
        message, resolver, ..
    } = invoke;
    let cmd = message.command().to_owned();
    if cmd == "close_window" {
        let closed = message.webview().window().close();
        resolver.respond(closed.map_err(|e| InvokeError::from(error::local(e))));
        return true;
    }
    let args = match message.payload() {
        InvokeBody::Json(v) => v.clone(),
        InvokeBody::Raw(_) => {
            resolver.reject(CmdError::new(
                ErrorKind::Invalid,
                format!("command `{cmd}` takes JSON arguments"),
            ));
            return true;
        }
    };
    let answer = run(message.webview().app_handle().clone(), cmd, args);
    resolver.respond_async_serialized(async move {
        match answer.await {
            Ok(v) => Ok(InvokeResponseBody::Json(v.to_string())),
            Err(e) => Err(InvokeError(e)),
        }
    });
    true
}

/// Logs a window's close request and its end.
pub fn log_window_event<R: Runtime>(window: &tauri::Window<R>, event: &tauri::WindowEvent) {
    match event {
        tauri::WindowEvent::CloseRequested { .. } => {
            tracing::info!(window = window.label(), "close requested");
        }
        tauri::WindowEvent::Destroyed => {
            tracing::info!(window = window.label(), "window destroyed")
        }
        _ => {}
    }
}

/// Handles a click in the tray menu (the handler [`tray::install`] is given).
pub fn on_menu<R: Runtime>(app: &AppHandle<R>, id: &str) {
    dispatch::on_menu(&controller_of(app), id);
}

/// Starts what the app runs: the tray (unless disabled), the engine (or demo, or the login
/// window), and the window asked for with `--open`. `run_app` calls it when the event loop is
/// ready; tests on the mock runtime, which do not run the loop, call it themselves.
pub fn init<R: Runtime>(app: &AppHandle<R>) -> tauri::Result<()> {
    // A menu-bar app on macOS: no Dock icon, no app menu.
    #[cfg(target_os = "macos")]
    app.set_activation_policy(tauri::ActivationPolicy::Accessory)?;
    let ctl = controller_of(app);
    let shared = ctl.shared();
    if shared.options.tray {
        tray::install(app, &shared.status(), shared.lang(), on_menu)?;
    }
    controller::start(&ctl);
    if let Some(kind) = shared.options.open {
        windows::open(app, kind, shared.lang())?;
    }
    Ok(())
}

/// What to do on a run event: live on in the tray when the last window closes; leave when
/// "Quit" asked to (an exit with a code), stopping the engines on the way out.
pub fn on_run_event<R: Runtime>(app: &AppHandle<R>, event: &RunEvent) {
    match event {
        RunEvent::ExitRequested {
            code: None, api, ..
        } => api.prevent_exit(),
        RunEvent::Exit => {
            let ctl = controller_of(app);
            ctl.runtime().block_on(controller::shutdown(&ctl));
        }
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
    if let Some(socket) = &options.windows_for {
        taskbell_desktop::init_logging();
        #[cfg(unix)]
        return host::run(socket);
        #[cfg(not(unix))]
        {
            eprintln!(
                "taskbell-app: --windows-for {}: the window process is for the tray process of Linux",
                socket.display()
            );
            return ExitCode::from(2);
        }
    }
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
    taskbell_desktop::init_logging();
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
            let ctl = controller_of(app);
            let shared = ctl.shared();
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
