//! The windows, from the tray's side: the local socket, the window process (`taskbell-app
//! --windows-for SOCKET`, started when a window is wanted and gone after the last one
//! closes) and a second launch's `Activate`.
//!
//! Nothing asked of the windows is lost across the window process's life: an `Open`
//! waits in a queue while no window process is there (and starts one); an `Open` sent to
//! a window process counts as on its way until that process says `Opened`, and the tray
//! lets a window process go (`Idle` → `Quit`) only when nothing is on its way. A window
//! process that dies with opens on their way has them sent to the next one. Events are
//! only for open windows: while none is open they are dropped, and a window reads the
//! current state when it opens.

use std::collections::VecDeque;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use taskbell_desktop::controller::{self, Controller};
use taskbell_desktop::dispatch::dispatch;
use taskbell_desktop::ipc::{self, TOKEN_ENV, ToTray, ToWindows};
use taskbell_desktop::model::{Lang, WindowKind};
use taskbell_desktop::view;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;

/// After this many window processes in a minute ended before they said hello, no more
/// are started for now (a crash loop does not become a fork storm; a user opening and
/// closing windows quickly is not limited).
const MAX_FAILED_STARTS_PER_MINUTE: usize = 5;

/// How long a new connection has to say who it is.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// One connected window process.
#[derive(Debug)]
struct Conn {
    id: u64,
    tx: mpsc::UnboundedSender<ToWindows>,
    /// Opens sent and not yet answered with `Opened`.
    on_the_way: Vec<(WindowKind, Lang)>,
}

#[derive(Debug, Default)]
struct State {
    /// The window process in use, once it said hello.
    current: Option<Conn>,
    /// The pid of the window process started that has not said hello (or died) yet.
    starting: Option<u32>,
    /// Opens waiting for a window process.
    queued: Vec<(WindowKind, Lang)>,
    /// When window processes ended before they said hello (the last minute's).
    failed: VecDeque<Instant>,
    next_id: u64,
}

/// How a window process ended.
#[derive(Debug, Clone, Copy)]
enum Ended {
    /// Its connection (by id) closed.
    Link(u64),
    /// Its process (by pid) exited.
    Process(u32),
}

/// The tray's side of the windows (shared by the shell, the socket server and the
/// window process's reaper).
#[derive(Debug)]
pub struct Windows {
    state: Mutex<State>,
    socket: PathBuf,
    program: PathBuf,
    token: String,
    runtime: tokio::runtime::Handle,
}

impl Windows {
    /// The windows of a tray listening on `socket`, opened by running `program` with
    /// `token`; the reaper runs on `runtime`.
    pub fn new(
        socket: PathBuf,
        program: PathBuf,
        token: String,
        runtime: tokio::runtime::Handle,
    ) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State::default()),
            socket,
            program,
            token,
            runtime,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Shows the window of `kind`: through the window process when one runs, else
    /// queued for the one this starts.
    pub fn open(self: &Arc<Self>, kind: WindowKind, lang: Lang) -> Result<(), String> {
        let mut st = self.lock();
        if let Some(c) = &mut st.current
            && c.tx
                .send(ToWindows::Open {
                    kind,
                    lang: lang.as_tag().into(),
                })
                .is_ok()
        {
            c.on_the_way.push((kind, lang));
            return Ok(());
        }
        st.current = None;
        if !st.queued.contains(&(kind, lang)) {
            st.queued.push((kind, lang));
        }
        self.start_if_needed(&mut st)
    }

    /// Closes the window of `kind` if a window process runs.
    pub fn close(&self, kind: WindowKind) {
        if let Some(c) = &self.lock().current {
            let _ = c.tx.send(ToWindows::Close { kind });
        }
    }

    /// Tells the open windows `name` with `payload` (dropped when none is open).
    pub fn emit(&self, name: &str, payload: serde_json::Value) {
        if let Some(c) = &self.lock().current {
            let _ = c.tx.send(ToWindows::Event {
                name: name.into(),
                payload,
            });
        }
    }

    /// Tells the window process to leave (the app quits).
    pub fn quit(&self) {
        let mut st = self.lock();
        st.queued.clear();
        if let Some(c) = st.current.take() {
            let _ = c.tx.send(ToWindows::Quit);
        }
    }

    /// Whether a window process is connected now (tests and diagnostics).
    pub fn connected(&self) -> bool {
        self.lock().current.is_some()
    }

    /// How many window processes ended before they said hello, in the last minute
    /// (tests and diagnostics).
    pub fn failed_starts(&self) -> usize {
        let now = Instant::now();
        let st = self.lock();
        st.failed
            .iter()
            .filter(|t| now.duration_since(**t) <= Duration::from_secs(60))
            .count()
    }

    fn start_if_needed(self: &Arc<Self>, st: &mut State) -> Result<(), String> {
        if st.starting.is_some() || st.queued.is_empty() {
            return Ok(());
        }
        let now = Instant::now();
        while st
            .failed
            .front()
            .is_some_and(|t| now.duration_since(*t) > Duration::from_secs(60))
        {
            st.failed.pop_front();
        }
        if st.failed.len() >= MAX_FAILED_STARTS_PER_MINUTE {
            st.queued.clear();
            return Err(format!(
                "the window process failed to start {MAX_FAILED_STARTS_PER_MINUTE} times in a \
                 minute; not again for now (see its log)"
            ));
        }
        let mut child = Command::new(&self.program)
            .arg("--windows-for")
            .arg(&self.socket)
            .env(TOKEN_ENV, &self.token)
            .stdin(Stdio::null())
            .spawn()
            .map_err(|e| {
                st.queued.clear();
                format!(
                    "cannot start the window process {}: {e}",
                    self.program.display()
                )
            })?;
        let pid = child.id();
        tracing::info!(pid, "window process started");
        st.starting = Some(pid);
        let me = Arc::clone(self);
        drop(self.runtime.spawn_blocking(move || {
            let status = child.wait();
            tracing::info!(pid, "window process ended: {status:?}");
            me.ended(Ended::Process(pid));
        }));
        Ok(())
    }

    /// A window process said hello: it takes what was queued.
    fn attach(&self, tx: mpsc::UnboundedSender<ToWindows>) -> u64 {
        let mut st = self.lock();
        st.next_id += 1;
        let id = st.next_id;
        st.starting = None;
        let mut conn = Conn {
            id,
            tx,
            on_the_way: Vec::new(),
        };
        for (kind, lang) in std::mem::take(&mut st.queued) {
            let _ = conn.tx.send(ToWindows::Open {
                kind,
                lang: lang.as_tag().into(),
            });
            conn.on_the_way.push((kind, lang));
        }
        if let Some(old) = st.current.replace(conn) {
            let _ = old.tx.send(ToWindows::Quit);
        }
        id
    }

    fn opened(&self, id: u64, kind: WindowKind) {
        if let Some(c) = self.lock().current.as_mut().filter(|c| c.id == id)
            && let Some(i) = c.on_the_way.iter().position(|(k, _)| *k == kind)
        {
            c.on_the_way.remove(i);
        }
    }

    /// The window process `id` closed its last window: let it go unless an open is on
    /// its way to it.
    fn idle(&self, id: u64) {
        let mut st = self.lock();
        if st
            .current
            .as_ref()
            .is_some_and(|c| c.id == id && c.on_the_way.is_empty())
            && let Some(c) = st.current.take()
        {
            let _ = c.tx.send(ToWindows::Quit);
        }
    }

    /// A window process hung up or its process ended: what was on its way goes to the
    /// next one.
    fn ended(self: &Arc<Self>, how: Ended) {
        let mut st = self.lock();
        match how {
            Ended::Link(id) => {
                if st.current.as_ref().is_some_and(|c| c.id == id)
                    && let Some(c) = st.current.take()
                {
                    for o in c.on_the_way {
                        if !st.queued.contains(&o) {
                            st.queued.push(o);
                        }
                    }
                }
            }
            // The process is gone: if it never said hello, it is no longer starting.
            Ended::Process(pid) => {
                if st.starting == Some(pid) {
                    st.starting = None;
                    st.failed.push_back(Instant::now());
                }
            }
        }
        if st.current.is_none()
            && let Err(e) = self.start_if_needed(&mut st)
        {
            tracing::warn!("{e}");
        }
    }
}

/// Where the tray listens: in `$XDG_RUNTIME_DIR` (private to the user) or else in the
/// data dir, named after the data dir so that each TaskBell data dir has its own tray.
pub fn socket_path(data_dir: &Path) -> PathBuf {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    data_dir.hash(&mut h);
    let dir = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|d| d.is_dir())
        .unwrap_or_else(|| data_dir.to_path_buf());
    dir.join(format!("taskbell-{:016x}.sock", h.finish()))
}

/// What binding the socket found.
#[derive(Debug)]
pub enum Bound {
    /// This is the only tray: it listens.
    Listening(UnixListener),
    /// A tray already runs; it was asked to show a window.
    AlreadyRunning,
}

/// Binds the tray's socket (owner-only), or, when a tray already answers on it, asks that
/// one to show a window (a second launch).
pub async fn bind(socket: &Path) -> std::io::Result<Bound> {
    if let Ok(mut s) = UnixStream::connect(socket).await {
        ipc::write(&mut s, &ToTray::Activate)
            .await
            .map_err(std::io::Error::other)?;
        return Ok(Bound::AlreadyRunning);
    }
    if let Some(dir) = socket.parent() {
        std::fs::create_dir_all(dir)?;
    }
    // Nobody answers: a stale socket of a tray that died.
    match std::fs::remove_file(socket) {
        Ok(()) => tracing::info!("removed a stale socket {}", socket.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let listener = UnixListener::bind(socket)?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600))?;
    Ok(Bound::Listening(listener))
}

/// Serves the socket: window processes and second launches.
pub async fn serve(listener: UnixListener, windows: Arc<Windows>, ctl: Controller) {
    let owner = match std::fs::metadata(&windows.socket) {
        Ok(m) => m.uid(),
        Err(e) => {
            tracing::error!("the tray's socket is gone: {e}");
            return;
        }
    };
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                tracing::warn!("local socket: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        match stream.peer_cred() {
            Ok(c) if c.uid() == owner => {}
            Ok(c) => {
                tracing::warn!(uid = c.uid(), "refused a connection from another user");
                continue;
            }
            Err(e) => {
                tracing::warn!("refused a connection without credentials: {e}");
                continue;
            }
        }
        tokio::spawn(connection(stream, Arc::clone(&windows), ctl.clone()));
    }
}

async fn connection(stream: UnixStream, windows: Arc<Windows>, ctl: Controller) {
    let (mut rd, mut wr) = stream.into_split();
    let first = tokio::time::timeout(HELLO_TIMEOUT, ipc::read::<_, ToTray>(&mut rd)).await;
    match first {
        Ok(Ok(Some(ToTray::Hello { token }))) if ipc::token_matches(&token, &windows.token) => {}
        Ok(Ok(Some(ToTray::Activate))) => {
            let kind = view::default_window(&ctl.shared().status());
            if let Err(e) = controller::open_window(&ctl, kind) {
                tracing::warn!("second launch: {e}");
            }
            return;
        }
        Ok(Ok(Some(ToTray::Hello { .. }))) => {
            tracing::warn!("refused a window process with a wrong token");
            return;
        }
        Ok(Ok(other)) => {
            tracing::warn!("refused a connection that began with {other:?}");
            return;
        }
        Ok(Err(e)) => {
            tracing::warn!("{e}");
            return;
        }
        Err(_) => {
            tracing::warn!("refused a connection that said nothing");
            return;
        }
    }
    let (tx, mut rx) = mpsc::unbounded_channel::<ToWindows>();
    let _ = tx.send(ToWindows::Welcome);
    tokio::spawn(async move {
        while let Some(msg) = rx.recv().await {
            if let Err(e) = ipc::write(&mut wr, &msg).await {
                tracing::debug!("to the window process: {e}");
                return;
            }
        }
    });
    let id = windows.attach(tx.clone());
    loop {
        match ipc::read::<_, ToTray>(&mut rd).await {
            Ok(Some(ToTray::Call {
                id: call,
                cmd,
                args,
            })) => {
                // The name only: arguments may hold a password.
                tracing::debug!(cmd, "a window's call");
                let (ctl, tx) = (ctl.clone(), tx.clone());
                tokio::spawn(async move {
                    let reply = match dispatch(&ctl, &cmd, args).await {
                        Ok(v) => ToWindows::Reply {
                            id: call,
                            ok: Some(v),
                            err: None,
                        },
                        Err(e) => ToWindows::Reply {
                            id: call,
                            ok: None,
                            err: Some(serde_json::to_value(e).unwrap_or_default()),
                        },
                    };
                    let _ = tx.send(reply);
                });
            }
            Ok(Some(ToTray::Opened { kind })) => windows.opened(id, kind),
            Ok(Some(ToTray::Idle)) => windows.idle(id),
            Ok(Some(other)) => tracing::warn!("the window process said {other:?} out of turn"),
            Ok(None) => break,
            Err(e) => {
                tracing::warn!("{e}");
                break;
            }
        }
    }
    windows.ended(Ended::Link(id));
    // The window process is gone: what serving it touched goes back once all is quiet.
    ctl.activity();
}
