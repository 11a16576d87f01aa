//! The engine's driver: one task that owns the session, the WebSocket and every
//! reconnect, and does the I/O for the pure state machine
//! ([`crate::engine::connection`]) that decides.
//!
//! [`Engine::start`] spawns a single task that `select!`s over the socket, the
//! sign-in or connect in progress, the catch-up request, the machine's next
//! deadline, a clock check and the command channel. Each becomes an
//! [`Input`]; the machine answers with [`Action`]s, which the task carries out in
//! order (an action's own answer, such as the history's verdict on a store, is
//! fed back before the next action). State goes out on a `watch` ([`Status`]),
//! discrete events on an `mpsc` ([`Event`]), and the task ends with an
//! [`ExitReason`].
//!
//! **Never lose, never repeat**: after every (re)connect the engine fetches
//! `GET /api/notifications?since=<cursor>` while it keeps reading the socket;
//! every notification, live or caught up, goes through `History::insert`
//! (persisted dedupe by key) and only newly inserted ones are announced and
//! shown. The cursor advances only to ids the server sent, and live ids only
//! after this connection's catch-up has succeeded.
//!
//! SQLite work runs on a writer thread of its own, in order (`store`); toasts are
//! shown on a worker thread (a D-Bus round trip must not stall the loop); keyring
//! calls run on the blocking pool.
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

use std::collections::HashSet;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures_util::FutureExt;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{self, Message};
use url::Url;

use crate::api::{Api, ApiError};
use crate::backoff::BackoffPolicy;
use crate::config::{Config, ConfigError, Paths};
use crate::credentials::Credentials;
use crate::delivery::{self, Toast, ToastAction};
use crate::engine::connection::{
    Action, CATCHUP_LIMIT, ConnectFailure, Connection, Input, Now, Rules, SignInFailure, Since,
    StatusChange, StoreReport, StoreTag,
};
use crate::history::{History, HistoryError, Retention};
use crate::i18n::Lang;
use crate::net::{NetError, Network};
use crate::notifier::{ActionSink, Notifier};
use crate::protocol::{self, Inbound, User};
use crate::summary;

mod session;
mod socket;
mod store;
pub(crate) mod timer;
mod toasts;

use session::Session;
use socket::Socket;
use store::HistoryWriter;
use timer::Timer;
pub use timer::TimerKind;
use toasts::ToastWorker;

pub use crate::engine::{Command, Event, ExitReason, State};
pub use crate::signin::{SignInError, SignedIn, sign_in, sign_out};

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
    /// The longest the engine goes without comparing the clocks. The clocks are
    /// compared whenever the engine wakes anyway (every frame, every heartbeat, every
    /// retry), so this only bounds the otherwise idle case; a timer of its own every
    /// few seconds cost more wake-ups than the heartbeat (issue 13).
    pub clock_check_every: Duration,
    /// The wall clock (tests put a fake one here to simulate a resume from sleep).
    pub wall_clock: fn() -> SystemTime,
    /// Delay of the urgent summary toast after the welcome toast.
    pub urgent_delay: Duration,
    /// Retry delay after a failed catch-up.
    pub catchup_retry: Duration,
    /// Token refusals (4001) less than this apart form a streak that waits
    /// longer and longer before signing in again ([`RefusalStreak`](crate::backoff::RefusalStreak)).
    pub auth_refusal_window: Duration,
    /// How long a toast's "Snooze" puts it away (1 h; tests shorten it).
    pub snooze: Duration,
    /// The loop's timer: one wake-up per deadline (a `timerfd` on Linux) by default;
    /// [`TimerKind::Tokio`] for a test on tokio's paused clock.
    pub timer: TimerKind,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            connect_timeout: crate::api::CONNECT_TIMEOUT,
            request_timeout: crate::api::REQUEST_TIMEOUT,
            backoff: BackoffPolicy::default(),
            policy_close_floor: Duration::from_secs(30),
            clock_jump: Duration::from_secs(10),
            clock_check_every: Duration::from_secs(300),
            wall_clock: SystemTime::now,
            urgent_delay: summary::URGENT_DELAY,
            catchup_retry: Duration::from_secs(5),
            auth_refusal_window: Duration::from_secs(600),
            snooze: Duration::from_secs(3600),
            timer: TimerKind::default(),
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
    /// A notification center can show the notifications of a folded toast: a click
    /// on one becomes [`Event::ShowFolded`] (the tray app). Off by default (the
    /// headless CLI), where a folded toast behaves as before.
    pub folded_to_center: bool,
}

impl std::fmt::Debug for EngineOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineOptions")
            .field("config", &self.config)
            .field("paths", &self.paths)
            .field("credentials", &self.credentials)
            .field("lang", &self.lang)
            .field("timing", &self.timing)
            .field("folded_to_center", &self.folded_to_center)
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
            folded_to_center: false,
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
        let reader = match History::open_read_only(&opts.paths.history_db()) {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::warn!(error = %e, "cannot open a reader on the history; toasts wait for the writes");
                None
            }
        };
        let history = HistoryWriter::start(history).map_err(|e| {
            EngineError::History(HistoryError::Io {
                action: "start the history writer for",
                path: opts.paths.history_db(),
                source: e,
            })
        })?;
        let rules = Rules {
            backoff: opts.timing.backoff.clone(),
            policy_close_floor: opts.timing.policy_close_floor,
            clock_jump: opts.timing.clock_jump,
            catchup_retry: opts.timing.catchup_retry,
            auth_refusal_window: opts.timing.auth_refusal_window,
            snooze: opts.timing.snooze,
        };
        // "Mark read" and "Snooze" on toasts come back through this channel.
        let (actions_tx, actions_rx) = mpsc::channel(64);
        opts.notifier.attach(ActionSink {
            sender: actions_tx,
            lang: opts.lang,
            folded_to_center: opts.folded_to_center,
        });
        let machine = Connection::new(
            opts.config.clone(),
            opts.lang,
            username.clone(),
            rules,
            rand::make_rng::<StdRng>(),
        );
        let session = Session::new(
            api,
            opts.credentials.clone(),
            server.clone(),
            username,
            opts.lang,
            status_tx.clone(),
        );
        let driver = Driver {
            machine,
            server,
            base,
            network,
            session,
            status: status_tx,
            events: events_tx,
            commands: cmd_rx,
            toast_actions: Some(actions_rx),
            toasts,
            history,
            reader,
            reports: mpsc::unbounded_channel(),
            clock: ClockWatch::new(opts.timing.wall_clock),
            paths: opts.paths,
            lang: opts.lang,
            timing: opts.timing,
            utc_offset: opts.utc_offset,
            pending: None,
            socket: None,
            fetch: None,
        };
        let join = tokio::spawn(driver.run());
        Ok(EngineHandle {
            state: status_rx,
            events: events_rx,
            commands: cmd_tx,
            join,
        })
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

/// The most frames read at once in a burst (see `Driver::ready_frames`).
const MAX_BATCH: usize = 256;

/// The sign-in or the connect in progress (at most one at a time).
type Pending = Pin<Box<dyn Future<Output = Done> + Send>>;

/// What a [`Pending`] produced.
enum Done {
    SignIn(Result<User, SignInFailure>),
    Connect(Result<Socket, ConnectFailure>),
}

/// The catch-up request in flight; resolves to its [`Input::Fetched`].
type Fetch = Pin<Box<dyn Future<Output = Input> + Send>>;

/// What carrying out one action led to.
enum Step {
    Next,
    /// An answer for the machine, to be fed before the next action.
    Then(Input),
    Exit(ExitReason),
}

/// The I/O half of the engine: it owns every resource and does what the machine says.
struct Driver {
    machine: Connection,
    server: String,
    base: Url,
    network: Network,
    session: Session,
    status: watch::Sender<Status>,
    events: mpsc::Sender<Event>,
    commands: mpsc::Receiver<Command>,
    /// What the user chose on toasts (`None` once the notifier dropped its sender).
    toast_actions: Option<mpsc::Receiver<ToastAction>>,
    toasts: ToastWorker,
    history: HistoryWriter,
    /// A read-only connection to the history: the lookups that let a new live
    /// notification be shown before it is written (`None`: every one waits for its store).
    reader: Option<History>,
    /// Reports of the stores the loop does not wait for ([`StoreTag::LiveShown`]).
    reports: (
        mpsc::UnboundedSender<StoreReport>,
        mpsc::UnboundedReceiver<StoreReport>,
    ),
    clock: ClockWatch,
    paths: Paths,
    lang: Lang,
    timing: Timing,
    utc_offset: time::UtcOffset,
    /// The sign-in or connect in progress.
    pending: Option<Pending>,
    /// The open socket.
    socket: Option<Socket>,
    /// The catch-up request of the open socket.
    fetch: Option<Fetch>,
}

impl Driver {
    async fn run(mut self) -> ExitReason {
        let reason = self.run_loop().await;
        // Whatever was queued for the history is written before the engine says it ended.
        self.history.close().await;
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
        let mut timer = Timer::new(self.timing.timer);
        if let Some(reason) = self.feed(Input::Start).await {
            return reason;
        }
        loop {
            // The machine's next deadline, or the clock check that bounds an otherwise
            // idle loop: one timer, so one wake-up (see `timer`).
            let clock_due = self.clock.mono + self.timing.clock_check_every;
            let deadline = self
                .machine
                .deadline()
                .map_or(clock_due, |d| Instant::from_std(d).min(clock_due));
            let input = tokio::select! {
                Some(report) = self.reports.1.recv() => Input::Stored(report),
                frame = next_frame(&mut self.socket) => match frame_input(frame) {
                    Some(i) => i,
                    None => continue,
                },
                done = poll_opt(&mut self.pending) => {
                    self.pending = None;
                    match done {
                        Done::SignIn(Ok(user)) => Input::SignedIn(user),
                        Done::SignIn(Err(f)) => Input::SignInFailed(f),
                        Done::Connect(Ok(socket)) => {
                            self.socket = Some(socket);
                            // The sleep detector counts from the new connection.
                            self.clock.check();
                            Input::Opened
                        }
                        Done::Connect(Err(f)) => Input::ConnectFailed(f),
                    }
                }
                fetched = poll_opt(&mut self.fetch) => {
                    self.fetch = None;
                    fetched
                }
                _ = timer.until(Some(deadline)) => Input::Tick,
                cmd = self.commands.recv() => Input::Command(cmd.unwrap_or(Command::Shutdown)),
                chosen = recv_opt(&mut self.toast_actions) => match chosen {
                    Some(a) => Input::ToastAction(a),
                    None => {
                        // The notifier keeps no sender (it offers no such actions).
                        self.toast_actions = None;
                        continue;
                    }
                },
            };
            // The sleep detector reads the clocks on every wake-up, before what woke it.
            let ahead = self.clock.check();
            if ahead > Duration::ZERO
                && let Some(reason) = self.feed(Input::ClockChecked { ahead }).await
            {
                return reason;
            }
            // Commands that were queued before this frame was read go first: a project
            // muted (or a pause asked for) before a notification arrived applies to it,
            // whichever branch `select!` happened to pick when both were ready. Only
            // those already queued, so a stream of commands cannot hold frames back.
            if matches!(input, Input::Frame(_)) {
                for _ in 0..self.commands.len() {
                    let Ok(cmd) = self.commands.try_recv() else {
                        break;
                    };
                    if let Some(reason) = self.feed(Input::Command(cmd)).await {
                        return reason;
                    }
                }
            }
            // A burst: the frames already waiting are decided together, so their
            // notifications cost one round trip to the history, not one each.
            let (input, after) = match input {
                Input::Frame(first) => self.ready_frames(first),
                other => (other, None),
            };
            if let Some(reason) = self.feed(input).await {
                return reason;
            }
            if let Some(next) = after
                && let Some(reason) = self.feed(next).await
            {
                return reason;
            }
        }
    }

    /// `first` and the frames already waiting behind it (read without waiting, at most
    /// [`MAX_BATCH`]) as one input; and what ended the batch (a close, an error), if
    /// something did, to be fed after it.
    fn ready_frames(&mut self, first: Inbound) -> (Input, Option<Input>) {
        let mut frames = vec![first];
        let mut after = None;
        for _ in 1..MAX_BATCH {
            let Some(next) = next_frame(&mut self.socket).now_or_never() else {
                break;
            };
            match frame_input(next) {
                Some(Input::Frame(f)) => frames.push(f),
                Some(other) => {
                    after = Some(other);
                    break;
                }
                None => {}
            }
        }
        let input = match (&self.reader, frames.len()) {
            (Some(reader), _) => {
                let stored = lookup(reader, &frames);
                Input::Checked { frames, stored }
            }
            (None, 1) => frames.pop().map_or(Input::Tick, Input::Frame),
            (None, _) => Input::Frames(frames),
        };
        (input, after)
    }

    fn now(&self) -> Now {
        let local = time::OffsetDateTime::now_utc().to_offset(self.utc_offset);
        Now {
            mono: Instant::now().into_std(),
            wall_ms: protocol::now_ms(),
            local_minute: u16::from(local.hour()) * 60 + u16::from(local.minute()),
        }
    }

    /// Feeds `input` to the machine and carries out its actions, depth first.
    async fn feed(&mut self, input: Input) -> Option<ExitReason> {
        let mut queue: VecDeque<Action> = self.machine.handle(input, self.now()).into();
        while let Some(action) = queue.pop_front() {
            match self.perform(action).await {
                Step::Next => {}
                Step::Then(answer) => {
                    let more = self.machine.handle(answer, self.now());
                    for a in more.into_iter().rev() {
                        queue.push_front(a);
                    }
                }
                Step::Exit(reason) => return Some(reason),
            }
        }
        None
    }

    async fn perform(&mut self, action: Action) -> Step {
        match action {
            Action::SignIn => {
                let session = self.session.clone();
                self.pending = Some(Box::pin(
                    async move { Done::SignIn(session.sign_in().await) },
                ));
            }
            Action::ForgetToken => self.session.forget_token().await,
            Action::Summary => self.spawn_summary(),
            Action::Connect => {
                let token = self
                    .session
                    .token()
                    .map(|t| t.expose().to_string())
                    .unwrap_or_default();
                let fut = socket::connect(
                    self.base.clone(),
                    token,
                    self.network.clone(),
                    self.timing.connect_timeout,
                );
                self.pending = Some(Box::pin(async move { Done::Connect(fut.await) }));
            }
            Action::Send(frame) => {
                if let Some(s) = &mut self.socket
                    && let Err(e) = s.send(frame.to_json()).await
                {
                    return Step::Then(Input::Lost(format!("connection lost: {e}")));
                }
            }
            Action::Close(how) => {
                self.fetch = None;
                if let Some(s) = self.socket.take() {
                    s.close(how).await;
                }
            }
            Action::Fetch(since) => self.fetch = Some(self.start_fetch(since)),
            // Already shown: the loop goes on; the report comes back as an input.
            Action::Store {
                notes,
                cursor,
                tag: StoreTag::LiveShown,
            } => {
                // After the toast that went before it (the machine shows, then stores).
                let queue = self.toasts.queue.clone();
                let last = queue.last_queued();
                self.history.handle().store_then(
                    notes,
                    cursor,
                    StoreTag::LiveShown,
                    self.reports.0.clone(),
                    (queue, last),
                );
            }
            Action::Store { notes, cursor, tag } => {
                let report = self.history.handle().store(notes, cursor, tag).await;
                return Step::Then(Input::Stored(report));
            }
            Action::Prune(retention) => self.history.handle().prune(retention),
            Action::Show(card) => self.toasts.show(card),
            Action::Withdraw(keys) => self.toasts.withdraw(keys),
            Action::Emit(event) => {
                if matches!(event, Event::Connected) {
                    tracing::info!(server = %self.server, user = %self.session.username(), "connected");
                }
                send_event(&self.events, event);
            }
            Action::Status(change) => self.apply_status(change),
            Action::SavePause(until_ms) => self.save_pause(until_ms).await,
            Action::MarkRead(keys) => {
                let answer = self
                    .history
                    .handle()
                    .call(move |h| store::mark_read(h, &keys))
                    .await;
                if let Some((err, unread)) = answer {
                    self.after_marking(err, unread);
                }
            }
            Action::MarkAllRead => {
                let answer = self.history.handle().call(store::mark_all_read).await;
                let keys = match answer {
                    Some((keys, err, unread)) => {
                        self.after_marking(err, unread);
                        keys
                    }
                    None => Vec::new(),
                };
                return Step::Then(Input::MarkedAllRead(keys));
            }
            Action::MarkReadOnServer(ids) => self.mark_read_on_server(ids),
            Action::SignOut => {
                if let Some(message) = self.session.sign_out(&self.paths).await {
                    send_event(&self.events, Event::Error { message });
                }
            }
            Action::Exit(reason) => return Step::Exit(reason),
        }
        Step::Next
    }

    fn apply_status(&self, change: StatusChange) {
        match change {
            StatusChange::State(state) => {
                self.status.send_if_modified(|s| {
                    if s.state == state {
                        false
                    } else {
                        s.state = state;
                        true
                    }
                });
            }
            StatusChange::Latency(ms) => self.status.send_modify(|s| {
                s.latency_ms = Some(ms);
                if let State::Connected { latency_ms } = &mut s.state {
                    *latency_ms = Some(ms);
                }
            }),
            StatusChange::LatencyUnknown => self.status.send_modify(|s| s.latency_ms = None),
            StatusChange::Reconnected => self.status.send_modify(|s| s.reconnects += 1),
            StatusChange::UnreadAdded => self.status.send_modify(|s| s.unread += 1),
            StatusChange::User(user) => self.status.send_modify(|s| s.user = Some(user)),
            StatusChange::Paused(until) => self.status.send_modify(|s| s.paused_until_ms = until),
        }
    }

    /// Asks for a page of history after the stored cursor (read behind every
    /// store queued before it), or from the beginning.
    fn start_fetch(&self, since: Since) -> Fetch {
        let api = self.session.api();
        let history = self.history.handle().clone();
        Box::pin(async move {
            let cursor = match since {
                Since::Beginning => None,
                Since::StoredCursor => match history.cursor().await {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot read the catch-up cursor; fetching from the start");
                        None
                    }
                },
            };
            let result = api
                .notifications_since(cursor.as_deref(), CATCHUP_LIMIT)
                .await;
            Input::Fetched {
                asked_with: cursor,
                result,
            }
        })
    }

    /// Persists the pause so a restart keeps it (other settings are the front end's).
    fn save_pause(&self, until_ms: Option<i64>) -> impl Future<Output = ()> + Send + 'static {
        let file = self.paths.config_file();
        save_pause(file, until_ms)
    }

    fn after_marking(&self, err: Option<HistoryError>, unread: Option<u64>) {
        if let Some(e) = err {
            send_event(
                &self.events,
                Event::Error {
                    message: format!("cannot mark as read: {e}"),
                },
            );
        }
        if let Some(n) = unread {
            self.status.send_modify(|s| s.unread = n);
        }
    }

    /// `POST /api/notifications/read` in the background: never awaited by the
    /// loop, a failure only logged (the endpoint is optional).
    fn mark_read_on_server(&self, ids: Vec<String>) {
        if ids.is_empty() {
            return;
        }
        let api = self.session.api();
        tokio::spawn(async move {
            match api.mark_read(&ids).await {
                Ok(true) => tracing::debug!(n = ids.len(), "read marks sent to the server"),
                Ok(false) => tracing::debug!("the server keeps no read marks"),
                Err(e) => tracing::warn!(error = %e, "the server did not take the read marks"),
            }
        });
    }

    fn spawn_summary(&self) {
        let Some(user) = self.machine.user().cloned() else {
            return;
        };
        let api = self.session.api();
        let lang = self.lang;
        let toasts = self.toasts.queue.clone();
        let urgent_delay = self.timing.urgent_delay;
        // Pause and quiet hours apply to the summary toasts too (urgent ones may bypass).
        let policy = self.machine.delivery_policy().clone();
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
}

/// Saves the pause in the config file (on the blocking pool).
async fn save_pause(file: std::path::PathBuf, until_ms: Option<i64>) {
    let saved = tokio::task::spawn_blocking(move || {
        Config::update(&file, |on_disk| {
            on_disk.paused_until_ms = until_ms;
            Ok::<_, ConfigError>(())
        })
    })
    .await;
    match saved {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "cannot save the pause"),
        Err(e) => tracing::warn!(error = %e, "cannot save the pause"),
    }
}

/// What a message from the socket means for the machine (`None`: nothing).
fn frame_input(frame: Option<Result<Message, tungstenite::Error>>) -> Option<Input> {
    let msg = match frame {
        None => {
            return Some(Input::Closed {
                code: None,
                reason: "the connection was closed".to_string(),
            });
        }
        Some(Err(e)) => return Some(Input::Lost(format!("connection lost: {e}"))),
        Some(Ok(msg)) => msg,
    };
    let text = match msg {
        Message::Text(t) => t.as_str().to_string(),
        Message::Binary(b) => match String::from_utf8(b.to_vec()) {
            Ok(t) => t,
            Err(_) => {
                tracing::warn!(len = b.len(), "binary frame is not UTF-8; skipped");
                return None;
            }
        },
        Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => return None,
        Message::Close(frame) => {
            let (code, reason) = match frame {
                Some(f) => (Some(u16::from(f.code)), f.reason.as_str().to_string()),
                None => (None, "the server closed the connection".to_string()),
            };
            return Some(Input::Closed { code, reason });
        }
    };
    match protocol::decode(&text) {
        Ok(inbound) => Some(Input::Frame(inbound)),
        Err(e) => {
            let preview: String = text.chars().take(120).collect();
            tracing::warn!(error = %e, frame = %preview, "bad frame skipped");
            None
        }
    }
}

/// The keys of the notifications among `frames` that the history holds. A failed
/// lookup counts as held: that notification then waits for its store, as before.
fn lookup(reader: &History, frames: &[Inbound]) -> HashSet<String> {
    frames
        .iter()
        .filter_map(|f| match f {
            Inbound::Notification(n) => Some(&n.key),
            _ => None,
        })
        .filter(|key| match reader.contains(key) {
            Ok(held) => held,
            Err(e) => {
                tracing::debug!(error = %e, "history lookup");
                true
            }
        })
        .cloned()
        .collect()
}

async fn next_frame(socket: &mut Option<Socket>) -> Option<Result<Message, tungstenite::Error>> {
    match socket {
        Some(s) => s.next().await,
        None => std::future::pending().await,
    }
}

async fn recv_opt<T>(rx: &mut Option<mpsc::Receiver<T>>) -> Option<T> {
    match rx {
        Some(r) => r.recv().await,
        None => std::future::pending().await,
    }
}

async fn poll_opt<T>(f: &mut Option<Pin<Box<dyn Future<Output = T> + Send>>>) -> T {
    match f {
        Some(fut) => fut.await,
        None => std::future::pending().await,
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

#[cfg(test)]
mod tests {
    use super::*;

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
