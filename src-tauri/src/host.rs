//! The window process (`taskbell-app --windows-for SOCKET`): the ui/ windows of a tray
//! process that does not link WebKit (`taskbell-tray`), started by it when a window is
//! wanted and gone once the last window closes. It has no tray, no engine and no state:
//! the tray tells it which window to open and which events to pass on, and every command
//! a window calls (after its capability allows it) goes to the tray and its answer comes
//! back ([`taskbell_desktop::ipc`]).

use std::collections::HashMap;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::Value;
use taskbell_desktop::ipc::{self, ToTray, ToWindows};
use tauri::ipc::Invoke;
use tauri::{AppHandle, Builder, Emitter, Manager, RunEvent, Runtime};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, oneshot};

use crate::error::{CmdError, ErrorKind};
use crate::model::Lang;
use crate::windows;

/// The window process's end of the link to the tray (managed state).
#[derive(Debug)]
pub struct Link {
    out: mpsc::UnboundedSender<ToTray>,
    pending: Mutex<HashMap<u64, oneshot::Sender<Result<Value, Value>>>>,
    next: AtomicU64,
}

/// The error a window sees when the tray cannot answer.
fn tray_gone() -> Value {
    serde_json::to_value(CmdError::new(
        ErrorKind::Local,
        "TaskBell's tray is not running.",
    ))
    .unwrap_or(Value::Null)
}

impl Link {
    fn new(out: mpsc::UnboundedSender<ToTray>) -> Self {
        Self {
            out,
            pending: Mutex::new(HashMap::new()),
            next: AtomicU64::new(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<u64, oneshot::Sender<Result<Value, Value>>>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn send(&self, msg: ToTray) -> bool {
        self.out.send(msg).is_ok()
    }

    /// Calls `cmd` in the tray and waits for its answer (`Err`: the serialised
    /// `CmdError`).
    pub async fn call(&self, cmd: String, args: Value) -> Result<Value, Value> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.lock().insert(id, tx);
        if !self.send(ToTray::Call { id, cmd, args }) {
            self.lock().remove(&id);
            return Err(tray_gone());
        }
        rx.await.unwrap_or_else(|_| Err(tray_gone()))
    }

    fn answer(&self, id: u64, answer: Result<Value, Value>) {
        if let Some(tx) = self.lock().remove(&id) {
            let _ = tx.send(answer);
        }
    }

    /// Fails every call still waiting (the tray is gone).
    fn fail_all(&self) {
        for (_, tx) in self.lock().drain() {
            let _ = tx.send(Err(tray_gone()));
        }
    }
}

/// The IPC handler of the window process: every command to the tray.
pub fn forward_to_tray<R: Runtime>(invoke: Invoke<R>) -> bool {
    crate::answer_invoke(invoke, |app, cmd, args| {
        let link = app.state::<Arc<Link>>().inner().clone();
        async move { link.call(cmd, args).await }
    })
}

/// Connects to the tray's socket and introduces itself with `token`.
async fn connect(socket: &Path, token: String) -> Result<UnixStream, String> {
    let mut stream = UnixStream::connect(socket)
        .await
        .map_err(|e| format!("cannot reach the tray at {}: {e}", socket.display()))?;
    ipc::write(&mut stream, &ToTray::Hello { token })
        .await
        .map_err(|e| e.to_string())?;
    match ipc::read::<_, ToWindows>(&mut stream).await {
        Ok(Some(ToWindows::Welcome)) => Ok(stream),
        Ok(other) => Err(format!("the tray refused the window process: {other:?}")),
        Err(e) => Err(e.to_string()),
    }
}

async fn write_loop(mut wr: OwnedWriteHalf, mut rx: mpsc::UnboundedReceiver<ToTray>) {
    while let Some(msg) = rx.recv().await {
        if let Err(e) = ipc::write(&mut wr, &msg).await {
            tracing::warn!("{e}");
            return;
        }
    }
}

/// Carries out what the tray says until it hangs up; then leaves.
async fn read_loop<R: Runtime>(mut rd: OwnedReadHalf, app: AppHandle<R>, link: Arc<Link>) {
    loop {
        let msg = match ipc::read::<_, ToWindows>(&mut rd).await {
            Ok(Some(msg)) => msg,
            Ok(None) => break,
            Err(e) => {
                tracing::warn!("{e}");
                break;
            }
        };
        match msg {
            ToWindows::Open { kind, lang } => {
                let lang = Lang::parse(&lang).unwrap_or_default();
                if let Err(e) = windows::open(&app, kind, lang) {
                    tracing::warn!("could not open the {} window: {e}", kind.label());
                }
                // Handled (opened or failed): the tray may let us go once it closes.
                link.send(ToTray::Opened { kind });
            }
            ToWindows::Close { kind } => {
                if let Err(e) = windows::close(&app, kind) {
                    tracing::warn!("could not close the {} window: {e}", kind.label());
                }
            }
            ToWindows::Event { name, payload } => {
                if let Err(e) = app.emit(&name, payload) {
                    tracing::debug!("emit {name}: {e}");
                }
            }
            ToWindows::Reply { id, ok, err } => {
                link.answer(id, err.map_or_else(|| Ok(ok.unwrap_or(Value::Null)), Err));
            }
            ToWindows::Quit => app.exit(0),
            ToWindows::Welcome => {}
        }
    }
    tracing::info!("the tray hung up; the window process leaves");
    link.fail_all();
    app.exit(0);
}

/// Runs the window process for the tray listening on `socket` (the token in
/// [`ipc::TOKEN_ENV`]).
pub fn run(socket: &Path) -> ExitCode {
    let token = std::env::var(ipc::TOKEN_ENV).unwrap_or_default();
    let rt = tauri::async_runtime::handle();
    let stream = match rt.block_on(connect(socket, token)) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("taskbell-app: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (rd, wr) = stream.into_split();
    let (tx, rx) = mpsc::unbounded_channel();
    let link = Arc::new(Link::new(tx));
    let app = Builder::default()
        .manage(windows::Opening::default())
        .manage(link.clone())
        .invoke_handler(forward_to_tray)
        .on_window_event(crate::log_window_event)
        .build(crate::context());
    let app = match app {
        Ok(app) => app,
        Err(e) => {
            tracing::error!("the window process could not start: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.spawn(write_loop(wr, rx));
    rt.spawn(read_loop(rd, app.handle().clone(), link.clone()));
    app.run(move |_, event| {
        // The last window closed: ask the tray (an open may be on its way); its `Quit`
        // (an exit with a code) is not held back.
        if let RunEvent::ExitRequested {
            code: None, api, ..
        } = event
        {
            api.prevent_exit();
            link.send(ToTray::Idle);
        }
    });
    ExitCode::SUCCESS
}
