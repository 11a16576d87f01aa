//! `main`: the command line, the hand-over to the all-in-one app on XEmbed-only desktops,
//! one socket per data dir (a second launch asks the first for a window), the controller
//! on one thread, the tray item, and the way out.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use ksni::TrayMethods;
use taskbell_desktop::controller::{self, Controller};
use taskbell_desktop::model::{Lang, UiStatus};
use taskbell_desktop::{ArgsError, Deps, Options, Shared, USAGE, checks, dispatch};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, watch};

use crate::item::Item;
use crate::shell::TrayShell;
use crate::windows::{self, Bound, Windows};

/// The window process: `TASKBELL_WINDOWS_PROGRAM`, else `taskbell-app` beside this
/// executable.
fn window_program(exe: &std::path::Path) -> PathBuf {
    std::env::var_os("TASKBELL_WINDOWS_PROGRAM")
        .map(PathBuf::from)
        .unwrap_or_else(|| exe.with_file_name("taskbell-app"))
}

fn fail(what: impl std::fmt::Display) -> ExitCode {
    let what = what.to_string();
    let line = taskbell_core::sanitize::terminal_line(&what);
    tracing::error!("{line}");
    eprintln!("taskbell-tray: {line}");
    ExitCode::FAILURE
}

pub(crate) fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = match Options::parse(args.clone()) {
        Ok(o) if o.windows_for.is_some() => {
            eprintln!("taskbell-tray: --windows-for belongs to taskbell-app, the window process");
            return ExitCode::from(2);
        }
        Ok(o) => o,
        Err(ArgsError::Help) => {
            // The window process's own flag is not the tray's.
            let usage = USAGE.split("\n  --windows-for").next().unwrap_or(USAGE);
            println!("{}", usage.replace("taskbell-app", "taskbell-tray"));
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("taskbell-tray: {e}");
            return ExitCode::from(2);
        }
    };
    // Before any thread starts: the `time` crate refuses to read the local offset after.
    let deps = match Deps::system() {
        Ok(d) => d,
        Err(e) => return fail(e),
    };
    taskbell_desktop::init_logging();
    let exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => return fail(format!("cannot find this executable: {e}")),
    };
    let program = window_program(&exe);
    // An XEmbed tray and no StatusNotifier host: this item could not show; the all-in-one
    // app (libappindicator) docks in XEmbed trays.
    if options.tray
        && !matches!(checks::sni_watcher(), Ok(true))
        && matches!(checks::xembed_tray(), Ok(Some(_)))
    {
        tracing::info!(
            "no StatusNotifier host, an XEmbed tray: handing over to {}",
            program.display()
        );
        let e = std::process::Command::new(&program).args(&args).exec();
        return fail(format!("cannot start {}: {e}", program.display()));
    }
    let configured = taskbell_core::config::Config::load(&deps.paths.config_file())
        .ok()
        .and_then(|c| c.language);
    let lang = options
        .lang
        .or(configured)
        .unwrap_or_else(Lang::from_system);
    // One thread, as `taskbell run`: an idle tray has nothing to share out.
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(format!("cannot start the runtime: {e}")),
    };
    rt.block_on(run(options, lang, deps, exe, program))
}

async fn run(options: Options, lang: Lang, deps: Deps, exe: PathBuf, program: PathBuf) -> ExitCode {
    let socket = windows::socket_path(&deps.paths.data_dir);
    let listener = match windows::bind(&socket).await {
        Ok(Bound::Listening(l)) => l,
        Ok(Bound::AlreadyRunning) => {
            println!("TaskBell is already running; it shows its window.");
            return ExitCode::SUCCESS;
        }
        Err(e) => return fail(format!("cannot listen on {}: {e}", socket.display())),
    };
    let token: String = rand::random::<[u8; 32]>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let runtime = tokio::runtime::Handle::current();
    let wins = Windows::new(socket.clone(), program, token, runtime.clone());
    let (status_tx, mut status_rx) = watch::channel((UiStatus::signed_out(), lang));
    let (quit_tx, mut quit_rx) = watch::channel(false);
    let shell = TrayShell {
        windows: Arc::clone(&wins),
        status: status_tx,
        quit: quit_tx,
        exe,
    };
    let ctl = Controller::new(Shared::new(options.clone(), lang, deps), shell, runtime);
    let (clicks_tx, mut clicks) = mpsc::unbounded_channel();
    let item = if options.tray {
        let spawned = Item {
            status: ctl.shared().status(),
            lang,
            clicks: clicks_tx,
        }
        // Without a host now, it registers when one appears.
        .assume_sni_available(true)
        .spawn()
        .await;
        match spawned {
            Ok(h) => Some(h),
            Err(e) => {
                tracing::warn!("no tray icon: {e}; toasts still show");
                None
            }
        }
    } else {
        None
    };
    tokio::spawn(windows::serve(listener, Arc::clone(&wins), ctl.clone()));
    controller::start(&ctl);
    if let Some(kind) = options.open
        && let Err(e) = controller::open_window(&ctl, kind)
    {
        tracing::warn!("{e}");
    }
    let (mut term, mut int) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(t), Ok(i)) => (t, i),
        (Err(e), _) | (_, Err(e)) => return fail(format!("cannot watch for signals: {e}")),
    };
    loop {
        tokio::select! {
            Some(id) = clicks.recv() => dispatch::on_menu(&ctl, &id),
            Ok(()) = status_rx.changed() => {
                let (status, lang) = status_rx.borrow_and_update().clone();
                if let Some(h) = &item {
                    h.update(move |m| {
                        m.status = status;
                        m.lang = lang;
                    })
                    .await;
                }
            }
            _ = quit_rx.changed() => break,
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    tracing::info!("leaving");
    wins.quit();
    controller::shutdown(&ctl).await;
    if let Some(h) = item {
        h.shutdown().await;
    }
    let _ = std::fs::remove_file(&socket);
    ExitCode::SUCCESS
}
