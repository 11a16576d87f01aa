//! The one event loop: it owns the session, the WebSocket and every reconnect.
//!
//! [`Engine::start`] spawns a single task that `select!`s over the socket, the
//! heartbeat deadline, the folding timer, a clock check and the command channel.
//! The pure parts ([`Heartbeat`], [`Backoff`], [`Delivery`]) decide; this loop
//! only does I/O. State goes out on a `watch` ([`Status`]), discrete events on an
//! `mpsc` ([`Event`]), and the task ends with an [`ExitReason`].
//!
//! **Never lose, never repeat**: after every (re)connect the loop fetches
//! `GET /api/notifications?since=<cursor>` while it keeps reading the socket;
//! every notification, live or caught up, goes through `History::insert`
//! (persisted dedupe by key) and only newly inserted ones are announced and
//! shown. The cursor advances only to ids the server sent, and live ids only
//! after this connection's catch-up has succeeded.
//!
//! Toasts are shown on a worker thread (a D-Bus round trip must not stall the
//! loop); keyring calls run on the blocking pool.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use taskbell_core::config::{Config, Paths};
//! use taskbell_core::credentials::Credentials;
//! use taskbell_core::notifier::DesktopNotifier;
//! use taskbell_core::supervisor::{Command, Engine, EngineOptions, Event, sign_in};
//!
//! let paths = Paths::resolve(None, None)?;
//! let creds = tokio::task::spawn_blocking(Credentials::open).await??;
//! let me = sign_in(&paths, &creds, "https://annotate.example.com", "zhangsan", "secret", true).await?;
//! println!("signed in as {}, token kept in {}", me.user.real_name, me.keyring);
//! let config = Config::load(&paths.config_file())?;
//! let notifier = Arc::new(DesktopNotifier::new());
//! let mut engine = Engine::start(EngineOptions::new(config, paths, notifier, creds))?;
//! while let Some(event) = engine.events.recv().await {
//!     match event {
//!         Event::Notification(n) => println!("{}: {}", n.title, n.content),
//!         Event::SignedOut { .. } => break,
//!         _ => {}
//!     }
//! }
//! engine.commands.send(Command::Shutdown).await?;
//! println!("stopped: {:?}", engine.join.await?);
//! # Ok(()) }
//! ```

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, PoisonError};
use std::time::{Duration, SystemTime};

use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use url::Url;

use crate::api::{Api, ApiError, NotificationPage, SecretToken};
use crate::backoff::{Backoff, BackoffPolicy, RefusalStreak};
use crate::config::{Config, ConfigError, Paths};
use crate::credentials::{Credentials, CredentialsError};
use crate::delivery::{self, Delivery, DeliveryPolicy, Toast, Urgency};
use crate::heartbeat::Heartbeat;
use crate::history::{History, HistoryError, Retention};
use crate::i18n::{Lang, Msg, tr};
use crate::net::{NetError, Network};
use crate::notifier::{Notifier, NotifyError};
use crate::protocol::{self, Inbound, Notification, Outbound, User};
use crate::summary;

pub use crate::engine::{Command, Event, ExitReason, State};
pub use crate::signin::{SignInError, SignedIn, sign_in, sign_out};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Catch-up page size.
const CATCHUP_LIMIT: u32 = 100;
/// At most this many pages per catch-up (the server caps history anyway).
const CATCHUP_MAX_PAGES: usize = 100;
/// Capacity of the event channel; when a consumer lags further, events are dropped (logged).
const EVENT_CAPACITY: usize = 8192;

/// Everything a front end shows about the engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// Connection state.
    pub state: State,
    /// Notifications are paused until this time (ms since the epoch).
    pub paused_until_ms: Option<i64>,
    /// Unread notifications in the history.
    pub unread: u64,
    /// The signed-in user, once known.
    pub user: Option<User>,
    /// The platform base URL.
    pub server: String,
    /// Which keyring holds the secrets.
    pub keyring: String,
    /// The last heartbeat latency.
    pub latency_ms: Option<u64>,
    /// Reconnects since start.
    pub reconnects: u64,
}

/// Timings the engine uses; `Default` gives the production values.
#[derive(Debug, Clone)]
pub struct Timing {
    /// TCP/TLS connect timeout (REST and socket).
    pub connect_timeout: Duration,
    /// Whole-request timeout for REST calls.
    pub request_timeout: Duration,
    /// Reconnect backoff.
    pub backoff: BackoffPolicy,
    /// Minimum delay after close code 1008 (too many connections).
    pub policy_close_floor: Duration,
    /// A wall clock running ahead of the monotonic clock by more than this means
    /// the machine slept: reconnect at once.
    pub clock_jump: Duration,
    /// How often the clock is compared.
    pub clock_check_every: Duration,
    /// The wall clock (tests put a fake one here to simulate a resume from sleep).
    pub wall_clock: fn() -> SystemTime,
    /// Delay of the urgent summary toast after the welcome toast.
    pub urgent_delay: Duration,
    /// Retry delay after a failed catch-up.
    pub catchup_retry: Duration,
    /// Token refusals (4001) less than this apart form a streak that waits
    /// longer and longer before signing in again ([`RefusalStreak`]).
    pub auth_refusal_window: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            connect_timeout: crate::api::CONNECT_TIMEOUT,
            request_timeout: crate::api::REQUEST_TIMEOUT,
            backoff: BackoffPolicy::default(),
            policy_close_floor: Duration::from_secs(30),
            clock_jump: Duration::from_secs(10),
            clock_check_every: Duration::from_secs(5),
            wall_clock: SystemTime::now,
            urgent_delay: summary::URGENT_DELAY,
            catchup_retry: Duration::from_secs(5),
            auth_refusal_window: Duration::from_secs(600),
        }
    }
}

/// Everything [`Engine::start`] needs.
#[derive(Clone)]
pub struct EngineOptions {
    /// Settings (server, username, heartbeat, delivery rules).
    pub config: Config,
    /// Where the config file and the history live.
    pub paths: Paths,
    /// Shows toasts.
    pub notifier: Arc<dyn Notifier>,
    /// The keyring.
    pub credentials: Credentials,
    /// UI language.
    pub lang: Lang,
    /// Timings (tests shorten them).
    pub timing: Timing,
    /// Offset of local time, for quiet hours (computed before threads start, see
    /// [`local_offset`]).
    pub utc_offset: time::UtcOffset,
}

impl std::fmt::Debug for EngineOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineOptions")
            .field("config", &self.config)
            .field("paths", &self.paths)
            .field("credentials", &self.credentials)
            .field("lang", &self.lang)
            .field("timing", &self.timing)
            .finish()
    }
}

/// The local UTC offset, or UTC when it cannot be determined (the `time` crate
/// refuses once several threads run: call this early in `main`).
pub fn local_offset() -> time::UtcOffset {
    time::UtcOffset::current_local_offset().unwrap_or(time::UtcOffset::UTC)
}

impl EngineOptions {
    /// Options with the default timings, the config's language (else the
    /// system's) and the local UTC offset.
    pub fn new(
        config: Config,
        paths: Paths,
        notifier: Arc<dyn Notifier>,
        credentials: Credentials,
    ) -> EngineOptions {
        let lang = config.language.unwrap_or_else(Lang::from_system);
        EngineOptions {
            config,
            paths,
            notifier,
            credentials,
            lang,
            timing: Timing::default(),
            utc_offset: local_offset(),
        }
    }
}

/// Why the engine could not start.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// No server or user name configured: sign in first.
    #[error("not signed in: run `taskbell login` (or sign in from the tray) first")]
    NotSignedIn,
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The history database cannot be opened.
    #[error("cannot open the notification history: {0}")]
    History(#[from] HistoryError),
    /// The REST client cannot be built.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The trust or proxy settings are unusable (a CA file, a proxy URL).
    #[error(transparent)]
    Network(#[from] NetError),
    /// The toast worker thread cannot be started.
    #[error("cannot start the notification worker: {0}")]
    Worker(String),
}

/// The running engine: watch its state, read its events, send it commands.
#[derive(Debug)]
pub struct EngineHandle {
    /// The current status.
    pub state: watch::Receiver<Status>,
    /// Events, in order.
    pub events: mpsc::Receiver<Event>,
    /// Commands to the loop.
    pub commands: mpsc::Sender<Command>,
    /// The loop task; resolves to why it ended.
    pub join: JoinHandle<ExitReason>,
}

impl EngineHandle {
    /// Sends `Shutdown` and waits for the loop to end.
    pub async fn shutdown(self) -> ExitReason {
        let _ = self.commands.send(Command::Shutdown).await;
        match self.join.await {
            Ok(r) => r,
            Err(e) => ExitReason::Failed(format!("engine task failed: {e}")),
        }
    }
}

/// The engine. Use [`Engine::start`].
pub struct Engine;

impl Engine {
    /// Opens the history, starts the toast worker and spawns the event loop on
    /// the current tokio runtime. The loop signs in with the token from the
    /// keyring (or the remembered password), shows the login summary, connects,
    /// and runs until shut down or signed out.
    pub fn start(opts: EngineOptions) -> Result<EngineHandle, EngineError> {
        let (server, username) = match (&opts.config.server, &opts.config.username) {
            (Some(s), Some(u)) if !s.trim().is_empty() && !u.trim().is_empty() => {
                (s.clone(), u.clone())
            }
            _ => return Err(EngineError::NotSignedIn),
        };
        let base = opts.config.server_url()?;
        let network = Network::from_config(&opts.config)?;
        let api = Api::with_network(
            base.clone(),
            &network,
            opts.timing.connect_timeout,
            opts.timing.request_timeout,
        )?;
        let history = History::open(&opts.paths.history_db())?;
        if let Err(e) = history.prune(&Retention::from_config(&opts.config), protocol::now_ms()) {
            tracing::warn!(error = %e, "cannot apply the history retention");
        }
        let (events_tx, events_rx) = mpsc::channel(EVENT_CAPACITY);
        let (cmd_tx, cmd_rx) = mpsc::channel(64);
        let unread = history.unread_count().unwrap_or(0);
        let status = Status {
            state: State::Connecting,
            paused_until_ms: opts.config.paused_until_ms,
            unread,
            user: None,
            server: server.clone(),
            keyring: opts.credentials.backend().to_string(),
            latency_ms: None,
            reconnects: 0,
        };
        let (status_tx, status_rx) = watch::channel(status);
        let toasts = ToastWorker::start(opts.notifier.clone(), events_tx.clone(), opts.lang)?;
        let delivery = Delivery::new(delivery_policy(&opts.config, opts.lang));
        let core = Core {
            server,
            username,
            base,
            api,
            network,
            token: None,
            user: None,
            history,
            delivery,
            backoff: Backoff::new(opts.timing.backoff.clone()),
            status: status_tx,
            events: events_tx,
            commands: cmd_rx,
            toasts,
            summary_done: false,
            stored_since_prune: 0,
            auth_refusals: RefusalStreak::new(opts.timing.auth_refusal_window),
            clock: ClockWatch::new(opts.timing.wall_clock),
            config: opts.config,
            paths: opts.paths,
            credentials: opts.credentials,
            lang: opts.lang,
            timing: opts.timing,
            utc_offset: opts.utc_offset,
        };
        let join = tokio::spawn(core.run());
        Ok(EngineHandle {
            state: status_rx,
            events: events_rx,
            commands: cmd_tx,
            join,
        })
    }
}

fn delivery_policy(config: &Config, lang: Lang) -> DeliveryPolicy {
    DeliveryPolicy::from_config(config, lang)
}

/// The history's retention is applied at start and after this many stored notifications.
const PRUNE_EVERY: u32 = 1_000;

/// Toasts waiting for the notifier at most; one more folds everything waiting
/// into one "N new notifications" toast (a hung notification daemon must not
/// make the queue, and the memory, grow without bound).
const MAX_PENDING_TOASTS: usize = 16;

/// The toasts waiting for the worker thread: bounded, folded when full. Each
/// push gets a sequence number; `shown` is the highest one handed to the
/// notifier, so a caller can wait until its toast is on screen.
struct ToastQueue {
    state: std::sync::Mutex<QueueState>,
    ready: std::sync::Condvar,
    shown: watch::Sender<u64>,
    lang: Lang,
}

#[derive(Default)]
struct QueueState {
    pending: VecDeque<(u64, Toast)>,
    pushed: u64,
    closed: bool,
}

impl ToastQueue {
    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `toast`; when [`MAX_PENDING_TOASTS`] already wait, they and it
    /// become one folded toast. Returns the toast's sequence number.
    fn push(&self, toast: Toast) -> u64 {
        let mut st = self.lock();
        st.pushed += 1;
        let seq = st.pushed;
        if st.closed {
            tracing::error!("the toast worker has stopped; toast dropped");
            return seq;
        }
        if st.pending.len() >= MAX_PENDING_TOASTS {
            let mut all: Vec<Toast> = st.pending.drain(..).map(|(_, t)| t).collect();
            all.push(toast);
            tracing::warn!(
                waiting = all.len(),
                "the notification daemon is slow; folding the toasts that wait"
            );
            st.pending
                .push_back((seq, delivery::fold_toasts(all, self.lang)));
        } else {
            st.pending.push_back((seq, toast));
        }
        drop(st);
        self.ready.notify_one();
        seq
    }

    /// Waits (at most `limit`) until the toast numbered `seq` was handed to the notifier.
    async fn shown(&self, seq: u64, limit: Duration) {
        let mut rx = self.shown.subscribe();
        let _ = tokio::time::timeout(limit, rx.wait_for(|s| *s >= seq)).await;
    }

    /// The next toast, waiting for one; `None` once closed and drained.
    fn pop(&self) -> Option<(u64, Toast)> {
        let mut st = self.lock();
        loop {
            if let Some(t) = st.pending.pop_front() {
                return Some(t);
            }
            if st.closed {
                return None;
            }
            st = self.ready.wait(st).unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }
}

/// Shows toasts one after another on a thread of its own, from a bounded queue.
struct ToastWorker {
    queue: Arc<ToastQueue>,
}

impl ToastWorker {
    fn start(
        notifier: Arc<dyn Notifier>,
        events: mpsc::Sender<Event>,
        lang: Lang,
    ) -> Result<ToastWorker, EngineError> {
        let queue = Arc::new(ToastQueue {
            state: std::sync::Mutex::new(QueueState::default()),
            ready: std::sync::Condvar::new(),
            shown: watch::channel(0).0,
            lang,
        });
        let q = queue.clone();
        std::thread::Builder::new()
            .name("taskbell-toasts".to_string())
            .spawn(move || {
                let mut warned = false;
                while let Some((seq, toast)) = q.pop() {
                    // Announced here, as handed to the notifier: toasts folded while
                    // they waited are one toast, one event, one Notify call.
                    send_event(&events, Event::Toast(toast.clone()));
                    let shown = notifier.show(&toast);
                    q.shown.send_replace(seq);
                    match shown {
                        Ok(()) => warned = false,
                        Err(e) => {
                            if warned {
                                tracing::debug!(error = %e, title = %toast.title, "toast not shown");
                            } else {
                                warned = true;
                                tracing::warn!(error = %e, title = %toast.title, "toast not shown");
                                let message = match &e {
                                    NotifyError::NoDaemon(_) => e.to_string(),
                                    NotifyError::Failed(_) => e.to_string(),
                                };
                                let _ = events.try_send(Event::Error { message });
                            }
                        }
                    }
                }
            })
            .map_err(|e| EngineError::Worker(e.to_string()))?;
        Ok(ToastWorker { queue })
    }

    fn show(&self, toast: Toast) {
        self.queue.push(toast);
    }
}

impl Drop for ToastWorker {
    fn drop(&mut self) {
        // The thread shows what is queued, then ends.
        self.queue.close();
    }
}

/// Notices when the wall clock jumps ahead of the monotonic clock (suspend/resume).
struct ClockWatch {
    mono: Instant,
    wall: SystemTime,
    wall_clock: fn() -> SystemTime,
}

impl ClockWatch {
    fn new(wall_clock: fn() -> SystemTime) -> ClockWatch {
        ClockWatch {
            mono: Instant::now(),
            wall: wall_clock(),
            wall_clock,
        }
    }

    /// How far the wall clock ran ahead since the last check (zero when not).
    fn check(&mut self) -> Duration {
        let mono_now = Instant::now();
        let wall_now = (self.wall_clock)();
        let mono_elapsed = mono_now.saturating_duration_since(self.mono);
        let wall_elapsed = wall_now.duration_since(self.wall).unwrap_or(Duration::ZERO);
        self.mono = mono_now;
        self.wall = wall_now;
        wall_elapsed.saturating_sub(mono_elapsed)
    }
}

/// How one connection (or attempt) ended.
#[derive(Debug)]
enum Ended {
    /// The server closed with a code (or the stream ended without one).
    Closed { code: Option<u16>, reason: String },
    /// No pong within the timeout.
    Dead(Duration),
    /// Transport failure or refusal; `retry_after` from a 429/503 upgrade answer.
    Failed {
        reason: String,
        retry_after: Option<Duration>,
        unreachable: bool,
    },
    /// The token was refused (4001 or a 401 upgrade answer).
    AuthFailed(String),
    /// Access denied (4003 or 403).
    Denied(String),
    /// Reconnect now (command or resume from sleep).
    Now(String),
    /// Stop the loop.
    Exit(ExitReason),
}

/// What the race helper saw first.
enum Raced<T> {
    Done(T),
    Now(String),
    Exit(ExitReason),
}

/// What to do after a local command.
enum Flow {
    Continue,
    Now(String),
    Exit(ExitReason),
}

/// One catch-up request in flight: a page of history (`None`: the server keeps none).
type CatchUp = Pin<Box<dyn Future<Output = Result<Option<CatchUpPage>, ApiError>> + Send>>;

/// One page of missed notifications and whether the server has more after it.
struct CatchUpPage {
    page: NotificationPage,
    /// The cursor the page was asked with (`None` after a refused cursor was dropped).
    asked_with: Option<String>,
}

impl CatchUpPage {
    /// Where the next page starts, when there is one and it is further on.
    fn next_cursor(&self) -> Option<String> {
        let full = self.page.list.len() >= CATCHUP_LIMIT as usize;
        let next = self
            .page
            .next_cursor
            .clone()
            .or_else(|| self.page.last_id.clone());
        next.filter(|n| full && Some(n) != self.asked_with.as_ref())
    }
}

/// What one connection's catch-up has done so far.
#[derive(Default)]
struct CatchUpProgress {
    pages: usize,
    fetched: usize,
    new: usize,
}

struct Core {
    server: String,
    username: String,
    base: Url,
    api: Api,
    /// Trust and proxy for the socket (the REST client holds the same).
    network: Network,
    token: Option<SecretToken>,
    user: Option<User>,
    history: History,
    delivery: Delivery,
    backoff: Backoff,
    status: watch::Sender<Status>,
    events: mpsc::Sender<Event>,
    commands: mpsc::Receiver<Command>,
    toasts: ToastWorker,
    summary_done: bool,
    /// Notifications stored since the history was last pruned.
    stored_since_prune: u32,
    auth_refusals: RefusalStreak,
    clock: ClockWatch,
    config: Config,
    paths: Paths,
    credentials: Credentials,
    lang: Lang,
    timing: Timing,
    utc_offset: time::UtcOffset,
}

enum SessionError {
    SignedOut(String),
    Transient {
        reason: String,
        retry_after: Option<Duration>,
    },
    Exit(ExitReason),
    Now(String),
}

impl Core {
    async fn run(mut self) -> ExitReason {
        let reason = self.run_loop().await;
        match &reason {
            ExitReason::Shutdown => {
                tracing::info!("engine stopped");
            }
            ExitReason::SignedOut => {}
            ExitReason::AccessDenied(why) | ExitReason::Failed(why) => {
                tracing::error!(reason = %why, "engine stopped");
            }
        }
        reason
    }

    async fn run_loop(&mut self) -> ExitReason {
        loop {
            self.set_state(State::Connecting);
            match self.ensure_session().await {
                Ok(()) => {}
                Err(SessionError::SignedOut(reason)) => return self.signed_out(Some(reason)),
                Err(SessionError::Exit(e)) => return e,
                Err(SessionError::Now(why)) => {
                    tracing::info!(reason = %why, "signing in again now");
                    continue;
                }
                Err(SessionError::Transient {
                    reason,
                    retry_after,
                }) => match self.wait_before_retry(reason, retry_after, false).await {
                    Some(e) => return e,
                    None => continue,
                },
            }
            if !self.summary_done {
                self.summary_done = true;
                self.spawn_summary();
            }
            let ended = self.connect_and_run().await;
            let (reason, floor, unreachable) = match ended {
                Ended::Exit(e) => return e,
                Ended::Now(why) => {
                    tracing::info!(reason = %why, "reconnecting now");
                    self.bump_reconnects();
                    self.backoff.reset();
                    continue;
                }
                Ended::AuthFailed(why) => {
                    tracing::warn!(reason = %why, "the server refused the token");
                    self.token = None;
                    let creds = self.credentials.clone();
                    let (s, u) = (self.server.clone(), self.username.clone());
                    let _ = blocking(move || creds.clear_token(&s, &u)).await;
                    self.bump_reconnects();
                    // A server that keeps refusing fresh tokens must not get a tight loop
                    // of logins: the first refusal of a while signs in again at once,
                    // each further one within the window waits longer (an answered
                    // heartbeat in between does not end the streak).
                    self.auth_refusals.refused(Instant::now().into_std());
                    if let Some(floor) = self.auth_refusals.floor(&self.timing.backoff) {
                        if let Some(e) = self.wait_before_retry(why, Some(floor), false).await {
                            return e;
                        }
                    }
                    continue;
                }
                Ended::Denied(why) => {
                    let message = tr(self.lang, Msg::AccessDenied { reason: &why });
                    self.emit(Event::Error {
                        message: message.clone(),
                    });
                    self.set_state(State::SignedOut {
                        reason: Some(message),
                    });
                    return ExitReason::AccessDenied(why);
                }
                Ended::Closed { code, reason } => {
                    let floor = match code {
                        Some(1008) => {
                            let message = tr(self.lang, Msg::TooManyConnections);
                            self.emit(Event::Error { message });
                            Some(self.timing.policy_close_floor)
                        }
                        _ => None,
                    };
                    let why = match code {
                        Some(c) if reason.is_empty() => format!("closed by the server ({c})"),
                        Some(c) => format!("closed by the server ({c}: {reason})"),
                        None => reason,
                    };
                    (why, floor, false)
                }
                Ended::Dead(since) => (
                    format!(
                        "no answer to the heartbeat for {} s",
                        since.as_secs().max(1)
                    ),
                    None,
                    false,
                ),
                Ended::Failed {
                    reason,
                    retry_after,
                    unreachable,
                } => (reason, retry_after, unreachable),
            };
            self.bump_reconnects();
            if let Some(e) = self.wait_before_retry(reason, floor, unreachable).await {
                return e;
            }
        }
    }

    fn bump_reconnects(&mut self) {
        self.status.send_modify(|s| s.reconnects += 1);
    }

    // ---- session -------------------------------------------------------

    async fn ensure_session(&mut self) -> Result<(), SessionError> {
        if self.token.is_none() {
            let creds = self.credentials.clone();
            let (s, u) = (self.server.clone(), self.username.clone());
            match blocking(move || creds.load_token(&s, &u)).await {
                Ok(Some(t)) => self.token = Some(t),
                Ok(None) => {
                    self.relogin_with_password().await?;
                }
                Err(e) => return Err(SessionError::Exit(self.keyring_failed(e))),
            }
        }
        let Some(token) = self.token.clone() else {
            return Err(SessionError::SignedOut(tr(self.lang, Msg::SessionEnded)));
        };
        self.api = self.api.clone().with_token(token);
        let api = self.api.clone();
        let me = match self.race(async move { api.me().await }, false).await {
            Raced::Done(r) => r,
            Raced::Now(w) => return Err(SessionError::Now(w)),
            Raced::Exit(e) => return Err(SessionError::Exit(e)),
        };
        match me {
            Ok(user) => {
                self.set_user(user);
                Ok(())
            }
            Err(ApiError::Unauthorized(_)) => {
                self.token = None;
                let creds = self.credentials.clone();
                let (s, u) = (self.server.clone(), self.username.clone());
                let _ = blocking(move || creds.clear_token(&s, &u)).await;
                self.relogin_with_password().await?;
                let api = self.api.clone();
                match self.race(async move { api.me().await }, false).await {
                    Raced::Done(Ok(user)) => {
                        self.set_user(user);
                        Ok(())
                    }
                    Raced::Done(Err(e)) => Err(self.session_error(e)),
                    Raced::Now(w) => Err(SessionError::Now(w)),
                    Raced::Exit(e) => Err(SessionError::Exit(e)),
                }
            }
            Err(e) => Err(self.session_error(e)),
        }
    }

    fn session_error(&self, e: ApiError) -> SessionError {
        match e {
            ApiError::Unauthorized(_) => SessionError::SignedOut(tr(self.lang, Msg::SessionEnded)),
            ApiError::Forbidden(why) => SessionError::Exit(ExitReason::AccessDenied(why)),
            ApiError::RateLimited { retry_after } => SessionError::Transient {
                reason: e.to_string(),
                retry_after,
            },
            other => SessionError::Transient {
                reason: other.to_string(),
                retry_after: None,
            },
        }
    }

    fn set_user(&mut self, user: User) {
        self.user = Some(user.clone());
        self.status.send_modify(|s| s.user = Some(user));
    }

    fn keyring_failed(&mut self, e: CredentialsError) -> ExitReason {
        let message = e.to_string();
        self.emit(Event::Error {
            message: message.clone(),
        });
        self.set_state(State::SignedOut {
            reason: Some(message.clone()),
        });
        ExitReason::Failed(message)
    }

    /// Signs in again with the remembered password; without one the session has ended.
    async fn relogin_with_password(&mut self) -> Result<(), SessionError> {
        let creds = self.credentials.clone();
        let (s, u) = (self.server.clone(), self.username.clone());
        let password = match blocking(move || creds.load_password(&s, &u)).await {
            Ok(Some(p)) => p,
            Ok(None) => return Err(SessionError::SignedOut(tr(self.lang, Msg::SessionEnded))),
            Err(e) => return Err(SessionError::Exit(self.keyring_failed(e))),
        };
        let api = self.api.clone();
        let username = self.username.clone();
        let ok = match self
            .race(async move { api.login(&username, &password).await }, false)
            .await
        {
            Raced::Done(r) => r,
            Raced::Now(w) => return Err(SessionError::Now(w)),
            Raced::Exit(e) => return Err(SessionError::Exit(e)),
        };
        match ok {
            Ok(ok) => {
                tracing::info!(user = %self.username, "signed in again with the remembered password");
                let creds = self.credentials.clone();
                let (s, u, t) = (self.server.clone(), self.username.clone(), ok.token.clone());
                if let Err(e) = blocking(move || creds.store_token(&s, &u, &t)).await {
                    tracing::warn!(error = %e, "cannot store the new token; keeping it in memory");
                }
                self.token = Some(ok.token.clone());
                self.api = self.api.clone().with_token(ok.token);
                self.set_user(ok.user);
                Ok(())
            }
            Err(ApiError::Unauthorized(why)) => Err(SessionError::SignedOut(format!(
                "{}: {why}",
                tr(self.lang, Msg::SessionEnded)
            ))),
            Err(e) => Err(self.session_error(e)),
        }
    }

    fn signed_out(&mut self, reason: Option<String>) -> ExitReason {
        self.set_state(State::SignedOut {
            reason: reason.clone(),
        });
        self.emit(Event::SignedOut { reason });
        ExitReason::SignedOut
    }

    // ---- summary -------------------------------------------------------

    fn spawn_summary(&self) {
        let Some(user) = self.user.clone() else {
            return;
        };
        let api = self.api.clone();
        let lang = self.lang;
        let toasts = self.toasts.queue.clone();
        let urgent_delay = self.timing.urgent_delay;
        // Pause and quiet hours apply to the summary toasts too (urgent ones may bypass).
        let policy = self.delivery.policy().clone();
        let offset = self.utc_offset;
        let queue = toasts.clone();
        let show = move |t: Toast| -> Option<u64> {
            let now = time::OffsetDateTime::now_utc().to_offset(offset);
            let minute = u16::from(now.hour()) * 60 + u16::from(now.minute());
            if let Some(why) = policy.suppression(t.urgency, minute, protocol::now_ms()) {
                tracing::info!(title = %t.title, reason = ?why, "summary toast suppressed");
                return None;
            }
            Some(toasts.push(t))
        };
        let events = self.events.clone();
        tokio::spawn(async move {
            let counts = match api.summary_counts(&user).await {
                Ok(c) => Some(c),
                Err(e) => {
                    tracing::warn!(error = %e, "login summary unavailable");
                    None
                }
            };
            let s = summary::render(counts.as_ref(), &user.real_name, lang);
            let mut welcome = s.welcome_toast();
            welcome.body = delivery::escape_markup(&welcome.body);
            let urgent = s.urgent_toast().map(|mut t| {
                t.body = delivery::escape_markup(&t.body);
                t
            });
            send_event(&events, Event::Summary(s));
            let welcome_seq = show(welcome);
            if let Some(t) = urgent {
                // The delay counts from the welcome on screen, not from its queueing
                // (the first toast also opens the bus connection).
                if let Some(seq) = welcome_seq {
                    queue.shown(seq, Duration::from_secs(10)).await;
                }
                tokio::time::sleep(urgent_delay).await;
                show(t);
            }
        });
    }

    // ---- connection ----------------------------------------------------

    fn ws_request(&self) -> Result<tungstenite::handshake::client::Request, Ended> {
        let failed = |reason: String| Ended::Failed {
            reason,
            retry_after: None,
            unreachable: false,
        };
        let mut url = self
            .base
            .join("ws/notifications")
            .map_err(|e| failed(format!("cannot build the socket URL: {e}")))?;
        let scheme = if url.scheme() == "https" { "wss" } else { "ws" };
        url.set_scheme(scheme)
            .map_err(|()| failed("cannot build the socket URL".to_string()))?;
        let token = self
            .token
            .as_ref()
            .map(|t| t.expose().to_string())
            .unwrap_or_default();
        url.query_pairs_mut().append_pair("token", &token);
        let mut req = url.as_str().into_client_request().map_err(|e| {
            failed(format!(
                "bad socket URL: {}",
                redact(&e.to_string(), &token)
            ))
        })?;
        if let Ok(v) = format!("Bearer {token}").parse() {
            req.headers_mut().insert(http::header::AUTHORIZATION, v);
        }
        Ok(req)
    }

    async fn connect_and_run(&mut self) -> Ended {
        let req = match self.ws_request() {
            Ok(r) => r,
            Err(e) => return e,
        };
        let mut cfg = WebSocketConfig::default();
        cfg.max_message_size = Some(4 * protocol::MAX_FRAME_BYTES);
        cfg.max_frame_size = Some(4 * protocol::MAX_FRAME_BYTES);
        let connect_timeout = self.timing.connect_timeout;
        let token = self
            .token
            .as_ref()
            .map(|t| t.expose().to_string())
            .unwrap_or_default();
        let network = self.network.clone();
        let target = self.base.clone();
        let fut = async move {
            // Directly or through the proxy, then TLS with the same trust as REST.
            let stream = match network.open_stream(&target, connect_timeout).await {
                Ok(s) => s,
                Err(e) => {
                    return Err(Ended::Failed {
                        reason: e.to_string(),
                        retry_after: None,
                        unreachable: !matches!(e, NetError::ProxyRefused { .. }),
                    });
                }
            };
            let connector = tokio_tungstenite::Connector::Rustls(network.tls_config());
            let fut = tokio_tungstenite::client_async_tls_with_config(
                req,
                stream,
                Some(cfg),
                Some(connector),
            );
            match tokio::time::timeout(connect_timeout, fut).await {
                Err(_) => Err(Ended::Failed {
                    reason: "the server did not answer in time".to_string(),
                    retry_after: None,
                    unreachable: true,
                }),
                Ok(Ok((ws, _resp))) => Ok(ws),
                Ok(Err(e)) => Err(classify_ws_error(e, &token)),
            }
        };
        match self.race(fut, true).await {
            Raced::Done(Ok(ws)) => self.run_connection(ws).await,
            Raced::Done(Err(e)) => e,
            Raced::Now(w) => Ended::Now(w),
            Raced::Exit(e) => Ended::Exit(e),
        }
    }

    /// Asks for the page of history after the stored cursor. Each page is stored and
    /// moves the cursor as soon as it arrives, so a catch-up cut short by the next
    /// disconnect still makes progress. `first`: the first page of this connection's
    /// catch-up, the only one where a refused cursor means "start from the beginning".
    fn start_catch_up(&self, first: bool) -> CatchUp {
        let api = self.api.clone();
        let cursor = match self.history.cursor() {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the catch-up cursor; fetching from the start");
                None
            }
        };
        Box::pin(async move {
            let answer = match api
                .notifications_since(cursor.as_deref(), CATCHUP_LIMIT)
                .await
            {
                // A cursor this server does not understand (another server, a reset
                // history): start from the beginning; dedupe keeps repeats away.
                Err(ApiError::Server {
                    status: 400 | 422,
                    message,
                }) if first && cursor.is_some() => {
                    tracing::warn!(%message, "the server refused the catch-up cursor; fetching all history");
                    return Ok(api
                        .notifications_since(None, CATCHUP_LIMIT)
                        .await?
                        .map(|page| CatchUpPage {
                            page,
                            asked_with: None,
                        }));
                }
                other => other?,
            };
            Ok(answer.map(|page| CatchUpPage {
                page,
                asked_with: cursor,
            }))
        })
    }

    async fn run_connection(&mut self, ws: Ws) -> Ended {
        let (mut sink, mut stream) = ws.split();
        let now = Instant::now();
        let mut hb = Heartbeat::new(
            Duration::from_secs(self.config.heartbeat_interval_secs.max(1)),
            Duration::from_secs(self.config.pong_timeout_secs.max(1)),
            now.into_std(),
        );
        self.backoff.connected_at(now.into_std());
        self.set_state(State::Connected { latency_ms: None });
        self.emit(Event::Connected);
        tracing::info!(server = %self.server, user = %self.username, "connected");

        // The catch-up starts at the first pong, not at connect: a server that
        // subscribes the socket to its channels before it reads frames (ours does)
        // has then subscribed, so whatever it published before is in the history the
        // catch-up reads, and whatever comes after arrives live. Started at connect, a
        // notification published between the catch-up's answer and the subscription
        // was in neither (fault harness, seed 5000).
        let mut catch_up: Option<CatchUp> = None;
        let mut catch_up_started = false;
        let mut catch_up_retry: Option<Instant> = None;
        let mut catch_up_failures: u32 = 0;
        let mut progress = CatchUpProgress::default();
        let mut caught_up = false;
        let mut clock_tick = tokio::time::interval(self.timing.clock_check_every);
        clock_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        self.clock.check();

        let ended = loop {
            let hb_deadline = Instant::from_std(hb.next_deadline());
            let flush_at = self.delivery.next_flush_at().map(Instant::from_std);
            tokio::select! {
                frame = stream.next() => {
                    match frame {
                        None => break Ended::Closed { code: None, reason: "the connection was closed".to_string() },
                        Some(Err(e)) => break Ended::Failed {
                            reason: format!("connection lost: {e}"),
                            retry_after: None,
                            unreachable: false,
                        },
                        Some(Ok(msg)) => {
                            let text = match msg {
                                Message::Text(t) => t.as_str().to_string(),
                                Message::Binary(b) => match String::from_utf8(b.to_vec()) {
                                    Ok(t) => t,
                                    Err(_) => {
                                        tracing::warn!(len = b.len(), "binary frame is not UTF-8; skipped");
                                        continue;
                                    }
                                },
                                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
                                Message::Close(frame) => {
                                    let (code, reason) = match frame {
                                        Some(f) => (Some(u16::from(f.code)), f.reason.as_str().to_string()),
                                        None => (None, "the server closed the connection".to_string()),
                                    };
                                    match code {
                                        Some(4001) => break Ended::AuthFailed(reason),
                                        Some(4003) => break Ended::Denied(if reason.is_empty() { "4003".to_string() } else { reason }),
                                        _ => break Ended::Closed { code, reason },
                                    }
                                }
                            };
                            match protocol::decode(&text) {
                                Ok(Inbound::Pong { timestamp, .. }) => {
                                    if !catch_up_started {
                                        catch_up_started = true;
                                        catch_up = Some(self.start_catch_up(true));
                                    }
                                    if let Some(lat) = hb.pong_received(timestamp, Instant::now().into_std()) {
                                        let ms = u64::try_from(lat.as_millis()).unwrap_or(u64::MAX);
                                        self.status.send_modify(|s| {
                                            s.latency_ms = Some(ms);
                                            if let State::Connected { latency_ms } = &mut s.state {
                                                *latency_ms = Some(ms);
                                            }
                                        });
                                        self.emit(Event::Latency { ms });
                                    }
                                }
                                Ok(Inbound::Ping { timestamp }) => {
                                    let pong = Outbound::Pong { timestamp: timestamp.unwrap_or_else(protocol::now_ms) };
                                    if let Err(e) = sink.send(Message::text(pong.to_json())).await {
                                        break Ended::Failed { reason: format!("connection lost: {e}"), retry_after: None, unreachable: false };
                                    }
                                }
                                Ok(Inbound::Notification(n)) => {
                                    let id = n.id.clone();
                                    self.ingest(n);
                                    if caught_up {
                                        if let Some(id) = id {
                                            self.set_cursor(&id);
                                        }
                                    }
                                }
                                Err(e) => {
                                    let preview: String = text.chars().take(120).collect();
                                    tracing::warn!(error = %e, frame = %preview, "bad frame skipped");
                                }
                            }
                        }
                    }
                }
                _ = tokio::time::sleep_until(hb_deadline) => {
                    let now = Instant::now();
                    if let Some(since) = hb.dead_since(now.into_std()) {
                        let _ = tokio::time::timeout(Duration::from_secs(1), sink.close()).await;
                        break Ended::Dead(since);
                    }
                    if now.into_std() >= hb.next_ping_at() {
                        let wall = protocol::now_ms();
                        let (user_id, username) = match &self.user {
                            Some(u) => (u.id.clone(), u.username.clone()),
                            None => (String::new(), self.username.clone()),
                        };
                        let ping = Outbound::Ping { timestamp: wall, user_id, username };
                        hb.ping_sent(now.into_std(), wall);
                        if let Err(e) = sink.send(Message::text(ping.to_json())).await {
                            break Ended::Failed { reason: format!("connection lost: {e}"), retry_after: None, unreachable: false };
                        }
                    }
                }
                r = poll_opt(&mut catch_up) => {
                    catch_up = None;
                    match r {
                        Ok(None) => {
                            caught_up = true;
                            self.backoff.healthy();
                            self.no_history();
                        }
                        Ok(Some(page)) => {
                            catch_up_failures = 0;
                            let next = page.next_cursor();
                            self.store_catch_up_page(page.page, &mut progress);
                            if next.is_some() && progress.pages < CATCHUP_MAX_PAGES {
                                catch_up = Some(self.start_catch_up(false));
                            } else {
                                if next.is_some() {
                                    tracing::warn!(pages = progress.pages, "catch-up stopped after the page limit");
                                }
                                caught_up = true;
                                // Answered a heartbeat and caught up: a healthy connection, so
                                // the next outage starts from the first delay.
                                self.backoff.healthy();
                                tracing::info!(fetched = progress.fetched, new = progress.new, "caught up");
                                self.emit(Event::CaughtUp {
                                    fetched: progress.fetched,
                                    new: progress.new,
                                    supported: true,
                                });
                            }
                        }
                        // The token was refused while catching up (revoked): sign in again
                        // now, as for a 4001, rather than retrying with the same token.
                        Err(ApiError::Unauthorized(why)) => {
                            close_normal(&mut sink).await;
                            break Ended::AuthFailed(why);
                        }
                        Err(e) => {
                            // Retry with a doubling delay (capped at 60 s); tell the user once.
                            let delay = self
                                .timing
                                .catchup_retry
                                .saturating_mul(1u32 << catch_up_failures.min(6))
                                .min(Duration::from_secs(60));
                            tracing::warn!(error = %e, retry_in = ?delay, "catch-up failed; retrying");
                            if catch_up_failures == 0 {
                                self.emit(Event::Error { message: format!("catch-up failed: {e}") });
                            }
                            catch_up_failures = catch_up_failures.saturating_add(1);
                            catch_up_retry = Some(Instant::now() + delay);
                        }
                    }
                }
                _ = sleep_until_opt(catch_up_retry) => {
                    catch_up_retry = None;
                    catch_up = Some(self.start_catch_up(progress.pages == 0));
                }
                _ = sleep_until_opt(flush_at) => self.flush_folds(),
                _ = clock_tick.tick() => {
                    let jump = self.clock.check();
                    if jump > self.timing.clock_jump {
                        let _ = tokio::time::timeout(Duration::from_secs(1), sink.close()).await;
                        break Ended::Now(format!("the clock jumped {} s (resume from sleep)", jump.as_secs()));
                    }
                }
                cmd = self.commands.recv() => {
                    let cmd = match cmd {
                        None => Command::Shutdown,
                        Some(c) => c,
                    };
                    match cmd {
                        Command::ReconnectNow => {
                            close_normal(&mut sink).await;
                            break Ended::Now("reconnect requested".to_string());
                        }
                        Command::Shutdown => {
                            close_normal(&mut sink).await;
                            self.flush_all();
                            self.set_state(State::Offline {
                                reason: "stopped".to_string(),
                            });
                            break Ended::Exit(ExitReason::Shutdown);
                        }
                        Command::SignOut => {
                            close_normal(&mut sink).await;
                            break Ended::Exit(self.do_sign_out().await);
                        }
                        other => match self.apply_local(other) {
                            Flow::Continue => {}
                            Flow::Now(w) => {
                                close_normal(&mut sink).await;
                                break Ended::Now(w);
                            }
                            Flow::Exit(e) => {
                                close_normal(&mut sink).await;
                                break Ended::Exit(e);
                            }
                        },
                    }
                }
            }
        };
        self.status.send_modify(|s| s.latency_ms = None);
        ended
    }

    fn no_history(&mut self) {
        tracing::info!("the server keeps no history (404); relying on the summary");
        self.emit(Event::CaughtUp {
            fetched: 0,
            new: 0,
            supported: false,
        });
    }

    /// Stores one catch-up page, shows what is new in it and moves the cursor past it.
    fn store_catch_up_page(&mut self, page: NotificationPage, progress: &mut CatchUpProgress) {
        progress.pages += 1;
        progress.fetched += page.list.len();
        match self.history.insert_many(&page.list) {
            Ok(fresh) => {
                for (n, is_new) in page.list.into_iter().zip(fresh) {
                    if is_new {
                        progress.new += 1;
                        self.announce(n);
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot store a catch-up page at once; one by one");
                for n in page.list {
                    if self.ingest(n) {
                        progress.new += 1;
                    }
                }
            }
        }
        // The protocol's cursor is the id of the last notification the client has.
        if let Some(id) = page.last_id.or(page.next_cursor) {
            self.set_cursor(&id);
        }
    }

    fn set_cursor(&mut self, id: &str) {
        if let Err(e) = self.history.set_cursor(id) {
            tracing::warn!(error = %e, "cannot save the catch-up cursor");
        }
    }

    /// Stores a notification; announces and shows it only when it is new.
    /// Returns whether it was new.
    fn ingest(&mut self, n: Notification) -> bool {
        let fresh = match self.history.insert(&n) {
            Ok(fresh) => fresh,
            Err(e) => {
                // Better shown twice than lost.
                tracing::error!(error = %e, key = %n.key, "cannot store a notification; showing it anyway");
                self.emit(Event::Error {
                    message: format!("cannot store a notification: {e}"),
                });
                true
            }
        };
        if !fresh {
            tracing::debug!(key = %n.key, "duplicate notification skipped");
            return false;
        }
        self.announce(n);
        self.stored_since_prune += 1;
        if self.stored_since_prune >= PRUNE_EVERY {
            self.stored_since_prune = 0;
            let retention = Retention::from_config(&self.config);
            if let Err(e) = self.history.prune(&retention, protocol::now_ms()) {
                tracing::warn!(error = %e, "cannot apply the history retention");
            }
        }
        true
    }

    /// Announces a newly stored notification and hands its toasts to the worker.
    fn announce(&mut self, n: Notification) {
        self.status.send_modify(|s| s.unread += 1);
        let now = Instant::now().into_std();
        let wall = protocol::now_ms();
        let minute = self.local_minute_of_day();
        let toasts = self.delivery.offer(&n, now, minute, wall);
        self.emit(Event::Notification(n));
        for t in toasts {
            self.show(t);
        }
    }

    fn local_minute_of_day(&self) -> u16 {
        let now = time::OffsetDateTime::now_utc().to_offset(self.utc_offset);
        u16::from(now.hour()) * 60 + u16::from(now.minute())
    }

    fn flush_folds(&mut self) {
        let toasts = self.delivery.poll(Instant::now().into_std());
        for t in toasts {
            self.show(t);
        }
    }

    fn flush_all(&mut self) {
        let toasts = self.delivery.flush(Instant::now().into_std());
        for t in toasts {
            self.show(t);
        }
    }

    fn show(&self, toast: Toast) {
        self.toasts.show(toast);
    }

    // ---- commands ------------------------------------------------------

    /// Commands that do not touch the socket.
    fn apply_local(&mut self, cmd: Command) -> Flow {
        match cmd {
            Command::ReconnectNow => Flow::Now("reconnect requested".to_string()),
            Command::Shutdown => Flow::Exit(ExitReason::Shutdown),
            Command::SignOut => Flow::Exit(ExitReason::SignedOut),
            Command::Pause { until_ms } => {
                self.set_pause(Some(until_ms));
                Flow::Continue
            }
            Command::Resume => {
                self.set_pause(None);
                Flow::Continue
            }
            Command::TestNotification => {
                let toast = Toast {
                    title: tr(self.lang, Msg::TestTitle),
                    body: delivery::escape_markup(&tr(self.lang, Msg::TestBody)),
                    urgency: Urgency::Normal,
                    open_url: None,
                    keys: vec![format!("test:{}", protocol::now_ms())],
                    folded: 1,
                    timeout_ms: None,
                };
                self.show(toast);
                Flow::Continue
            }
            Command::MarkRead { keys } => {
                if let Err(e) = self.history.mark_read(&keys) {
                    self.emit(Event::Error {
                        message: format!("cannot mark as read: {e}"),
                    });
                }
                self.refresh_unread();
                self.mark_read_on_server(keys);
                Flow::Continue
            }
            Command::MarkAllRead => {
                let unread_keys = self.unread_server_ids();
                if let Err(e) = self.history.mark_all_read() {
                    self.emit(Event::Error {
                        message: format!("cannot mark as read: {e}"),
                    });
                }
                self.refresh_unread();
                self.mark_read_on_server(unread_keys);
                Flow::Continue
            }
            Command::SetConfig(config) => {
                let config = *config;
                self.delivery
                    .set_policy(delivery_policy(&config, self.lang));
                self.status
                    .send_modify(|s| s.paused_until_ms = config.paused_until_ms);
                self.config = config;
                Flow::Continue
            }
        }
    }

    fn set_pause(&mut self, until_ms: Option<i64>) {
        self.config.paused_until_ms = until_ms;
        self.delivery
            .set_policy(delivery_policy(&self.config, self.lang));
        // Persist the pause so a restart keeps it (other settings are the front end's),
        // before the status says it is done.
        let saved = Config::update(&self.paths.config_file(), |on_disk| {
            on_disk.paused_until_ms = until_ms;
            Ok::<_, ConfigError>(())
        });
        if let Err(e) = saved {
            tracing::warn!(error = %e, "cannot save the pause");
        }
        self.status.send_modify(|s| s.paused_until_ms = until_ms);
    }

    fn refresh_unread(&mut self) {
        if let Ok(n) = self.history.unread_count() {
            self.status.send_modify(|s| s.unread = n);
        }
    }

    fn unread_server_ids(&self) -> Vec<String> {
        let q = crate::history::Query {
            unread_only: true,
            limit: 10_000,
            ..Default::default()
        };
        match self.history.list(&q) {
            Ok(records) => records
                .into_iter()
                .filter_map(|r| r.notification.id)
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    fn mark_read_on_server(&self, ids: Vec<String>) {
        let ids: Vec<String> = ids
            .into_iter()
            .filter(|k| !k.starts_with("content:"))
            .collect();
        if ids.is_empty() {
            return;
        }
        let api = self.api.clone();
        tokio::spawn(async move {
            if let Err(e) = api.mark_read(&ids).await {
                tracing::debug!(error = %e, "server did not take the read marks");
            }
        });
    }

    async fn do_sign_out(&mut self) -> ExitReason {
        let api = self.api.clone();
        if let Err(e) = tokio::time::timeout(Duration::from_secs(5), api.logout()).await {
            tracing::debug!(error = %e, "logout request timed out");
        }
        let creds = self.credentials.clone();
        let (s, u) = (self.server.clone(), self.username.clone());
        if let Err(e) = blocking(move || creds.clear(&s, &u)).await {
            self.emit(Event::Error {
                message: e.to_string(),
            });
        }
        self.token = None;
        self.signed_out(None)
    }

    // ---- waiting -------------------------------------------------------

    /// Runs `fut` while serving commands, folding timers and (when `clock_cancels`)
    /// the sleep detector.
    async fn race<T>(&mut self, fut: impl Future<Output = T>, clock_cancels: bool) -> Raced<T> {
        tokio::pin!(fut);
        let mut clock_tick = tokio::time::interval(self.timing.clock_check_every);
        clock_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let flush_at = self.delivery.next_flush_at().map(Instant::from_std);
            tokio::select! {
                out = &mut fut => return Raced::Done(out),
                cmd = self.commands.recv() => {
                    let cmd = cmd.unwrap_or(Command::Shutdown);
                    match cmd {
                        Command::SignOut => return Raced::Exit(self.do_sign_out().await),
                        Command::Shutdown => {
                            self.flush_all();
                            self.set_state(State::Offline {
                                reason: "stopped".to_string(),
                            });
                            return Raced::Exit(ExitReason::Shutdown);
                        }
                        other => match self.apply_local(other) {
                            Flow::Continue => {}
                            Flow::Now(w) => return Raced::Now(w),
                            Flow::Exit(e) => return Raced::Exit(e),
                        },
                    }
                }
                _ = sleep_until_opt(flush_at) => self.flush_folds(),
                _ = clock_tick.tick() => {
                    let jump = self.clock.check();
                    if clock_cancels && jump > self.timing.clock_jump {
                        return Raced::Now(format!("the clock jumped {} s (resume from sleep)", jump.as_secs()));
                    }
                }
            }
        }
    }

    /// Waits out the backoff delay (at least `floor`), counting down in the state.
    /// Returns `Some` when the loop must end.
    async fn wait_before_retry(
        &mut self,
        reason: String,
        floor: Option<Duration>,
        unreachable: bool,
    ) -> Option<ExitReason> {
        let now = Instant::now().into_std();
        if self.backoff.is_stable(now) {
            self.backoff.reset();
        }
        let delay = {
            let mut rng = rand::rng();
            match floor {
                Some(f) => self.backoff.next_delay_at_least(f, &mut rng),
                None => self.backoff.next_delay(&mut rng),
            }
        };
        let delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        tracing::info!(%reason, delay_ms, attempt = self.backoff.attempt(), "reconnecting after a delay");
        self.emit(Event::Reconnecting {
            reason: reason.clone(),
            delay_ms,
            attempt: self.backoff.attempt(),
        });
        let deadline = Instant::now() + delay;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            let in_secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
            self.set_state(if unreachable {
                State::Offline {
                    reason: reason.clone(),
                }
            } else {
                State::Reconnecting {
                    in_secs,
                    reason: reason.clone(),
                }
            });
            let step = left.min(Duration::from_secs(1));
            match self.race(tokio::time::sleep(step), true).await {
                Raced::Done(()) => {}
                Raced::Now(w) => {
                    tracing::info!(reason = %w, "skipping the wait");
                    return None;
                }
                Raced::Exit(e) => return Some(e),
            }
        }
    }

    // ---- output --------------------------------------------------------

    fn set_state(&self, state: State) {
        self.status.send_if_modified(|s| {
            if s.state == state {
                false
            } else {
                s.state = state;
                true
            }
        });
    }

    fn emit(&self, event: Event) {
        send_event(&self.events, event);
    }
}

fn send_event(tx: &mpsc::Sender<Event>, event: Event) {
    match tx.try_send(event) {
        Ok(()) => {}
        Err(mpsc::error::TrySendError::Full(_)) => {
            // Log the 1st, 2nd, 4th, 8th… drop only: a flood must not flood the log too.
            static DROPPED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let n = DROPPED.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            if n.is_power_of_two() {
                tracing::warn!(dropped = n, "the event consumer lags; events dropped");
            }
        }
        Err(mpsc::error::TrySendError::Closed(_)) => {}
    }
}

async fn close_normal<S>(sink: &mut S)
where
    S: SinkExt<Message> + Unpin,
{
    let frame = tungstenite::protocol::CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    };
    let _ = tokio::time::timeout(
        Duration::from_secs(2),
        sink.send(Message::Close(Some(frame))),
    )
    .await;
}

async fn poll_opt(f: &mut Option<CatchUp>) -> Result<Option<CatchUpPage>, ApiError> {
    match f {
        Some(fut) => fut.await,
        None => std::future::pending().await,
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Runs keyring work on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, CredentialsError> + Send + 'static,
) -> Result<T, CredentialsError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) => Err(CredentialsError::Backend(format!(
            "keyring task failed: {e}"
        ))),
    }
}

fn redact(text: &str, token: &str) -> String {
    if token.is_empty() {
        text.to_string()
    } else {
        text.replace(token, "***")
    }
}

fn classify_ws_error(e: tungstenite::Error, token: &str) -> Ended {
    use tungstenite::Error as E;
    match e {
        E::Http(resp) => {
            let status = resp.status().as_u16();
            let retry_after = crate::api::parse_retry_after(resp.headers());
            let body = resp
                .body()
                .as_ref()
                .map(|b| {
                    String::from_utf8_lossy(b)
                        .chars()
                        .take(200)
                        .collect::<String>()
                })
                .unwrap_or_default();
            match status {
                401 => Ended::AuthFailed(format!("the server refused the token (HTTP 401) {body}")),
                403 => Ended::Denied(if body.is_empty() {
                    "HTTP 403".to_string()
                } else {
                    body
                }),
                429 => Ended::Failed {
                    reason: "the server is rate limiting connections (HTTP 429)".to_string(),
                    retry_after,
                    unreachable: false,
                },
                _ => Ended::Failed {
                    reason: format!("the server refused the socket (HTTP {status})"),
                    retry_after,
                    unreachable: false,
                },
            }
        }
        E::Io(io) => Ended::Failed {
            reason: format!("cannot reach the server: {io}"),
            retry_after: None,
            unreachable: true,
        },
        E::Tls(t) => Ended::Failed {
            reason: format!(
                "secure connection failed: {}",
                crate::net::tls_failure(&t.to_string())
            ),
            retry_after: None,
            unreachable: false,
        },
        E::Url(u) => Ended::Failed {
            reason: format!("bad socket URL: {}", redact(&u.to_string(), token)),
            retry_after: None,
            unreachable: false,
        },
        other => Ended::Failed {
            reason: format!("socket failed: {}", redact(&other.to_string(), token)),
            retry_after: None,
            unreachable: false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_redacted_from_socket_errors() {
        assert_eq!(
            redact("ws://h/ws?token=abc.def", "abc.def"),
            "ws://h/ws?token=***"
        );
        assert_eq!(redact("nothing", ""), "nothing");
    }

    fn http_error(status: u16, retry_after: Option<&str>) -> tungstenite::Error {
        let mut b = http::Response::builder().status(status);
        if let Some(r) = retry_after {
            b = b.header("Retry-After", r);
        }
        tungstenite::Error::Http(Box::new(b.body(Some(b"nope".to_vec())).unwrap()))
    }

    #[test]
    fn upgrade_refusals_are_classified() {
        assert!(matches!(
            classify_ws_error(http_error(401, None), "t"),
            Ended::AuthFailed(_)
        ));
        assert!(matches!(
            classify_ws_error(http_error(403, None), "t"),
            Ended::Denied(r) if r == "nope"
        ));
        assert!(matches!(
            classify_ws_error(http_error(429, Some("7")), "t"),
            Ended::Failed { retry_after: Some(d), .. } if d == Duration::from_secs(7)
        ));
        assert!(matches!(
            classify_ws_error(http_error(502, None), "t"),
            Ended::Failed {
                retry_after: None,
                unreachable: false,
                ..
            }
        ));
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert!(matches!(
            classify_ws_error(tungstenite::Error::Io(io), "t"),
            Ended::Failed {
                unreachable: true,
                ..
            }
        ));
    }

    #[test]
    fn clock_watch_sees_no_jump_without_sleep() {
        let mut c = ClockWatch::new(SystemTime::now);
        assert!(c.check() < Duration::from_secs(1));
        // A wall clock that was behind (as after a resume, seen from the last check) jumps.
        c.wall -= Duration::from_secs(120);
        assert!(c.check() >= Duration::from_secs(119));
        assert!(c.check() < Duration::from_secs(1));
    }

    #[tokio::test]
    async fn start_without_an_account_is_refused() {
        let dir = std::env::temp_dir().join(format!("taskbell-core-test-{}", std::process::id()));
        let paths = Paths {
            config_dir: dir.join("c"),
            data_dir: dir.join("d"),
        };
        let opts = EngineOptions::new(
            Config::default(),
            paths,
            Arc::new(crate::notifier::RecordingNotifier::new()),
            Credentials::in_memory(),
        );
        assert!(matches!(Engine::start(opts), Err(EngineError::NotSignedIn)));
    }

    #[tokio::test]
    async fn no_token_and_no_password_signs_out_with_a_reason() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths {
            config_dir: dir.path().join("c"),
            data_dir: dir.path().join("d"),
        };
        std::fs::create_dir_all(&paths.data_dir).unwrap();
        let config = Config {
            server: Some("http://127.0.0.1:9".to_string()),
            username: Some("nobody".to_string()),
            ..Config::default()
        };
        let mut opts = EngineOptions::new(
            config,
            paths,
            Arc::new(crate::notifier::RecordingNotifier::new()),
            Credentials::in_memory(),
        );
        opts.lang = Lang::En;
        let mut h = Engine::start(opts).unwrap();
        let reason = tokio::time::timeout(Duration::from_secs(30), &mut h.join)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(reason, ExitReason::SignedOut);
        match &h.state.borrow().state {
            State::SignedOut { reason: Some(r) } => assert!(!r.is_empty()),
            other => panic!("{other:?}"),
        }
        let mut saw = false;
        while let Ok(e) = h.events.try_recv() {
            saw |= matches!(e, Event::SignedOut { reason: Some(_) });
        }
        assert!(saw);
    }
}
