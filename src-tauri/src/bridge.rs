//! The bridge between the core and the shell: the only place that knows event names.
//! Core [`Status`] and [`Event`]s become the tray's icon, tooltip and menu, and `emit`s to
//! the open windows; the windows' and the menu's requests become core [`Command`]s.
//!
//! Engine life cycle: [`start`] boots (demo, or the configured account, or the login
//! window); each engine run gets a generation number, and its three pump tasks (status,
//! events, exit) ignore themselves once a newer engine replaced it.
//!
//! Several accounts (`taskbell_core::accounts`): the **first account** runs as above (its
//! state is the tray's state line, it has the sign-in flow and the login window). Every
//! **further account** signed in (a token, or a remembered password, in the keyring) runs
//! an engine alongside, with a pump of its own; the tray's unread count is the sum, pause
//! and resume go to every engine, and the center lists every account's history. With more
//! than one account, toasts name the account ([`Labelled`]) and every key the windows see
//! is `"<account>/<key>"` ([`UiNotification::key`]), so the commands that take keys know
//! the account without another argument.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use taskbell_core::accounts::{self, Labelled};
use taskbell_core::api::ApiError;
use taskbell_core::config::{Config, ConfigError, Paths, QuietHours};
use taskbell_core::credentials::Credentials;
use taskbell_core::delivery::{Toast, Urgency, task_url};
use taskbell_core::history::{History, Query};
use taskbell_core::i18n::Lang as CoreLang;
use taskbell_core::notifier::{Notifier, open_in_browser};
use taskbell_core::protocol::{Notification, NotificationKind, Role};
use taskbell_core::supervisor::{
    Command, Engine, EngineError, EngineHandle, EngineOptions, Event, ExitReason, SignInError,
    State, Status, sign_in as core_sign_in,
};
use tauri::{AppHandle, Emitter, Manager, Runtime};
use time::{OffsetDateTime, UtcOffset};
use tokio::sync::{mpsc, watch};

use crate::commands::{CmdError, CmdResult, ErrorKind};
use crate::model::{
    ConnState, HistoryFilter, Lang, ReconnectEntry, UiDiagnostics, UiNotification, UiSettings,
    UiStatus, UiUser,
};
use crate::windows::{self, WindowKind};
use crate::{Shared, checks, tray};

/// Event sent to the windows when the status changes; payload [`UiStatus`].
pub const EVENT_STATUS: &str = "taskbell://status";
/// Event sent when a notification arrives; payload [`UiNotification`].
pub const EVENT_NOTIFICATION: &str = "taskbell://notification";
/// Event sent when read state changed outside the window; payload: the unread count.
pub const EVENT_HISTORY: &str = "taskbell://history";
/// Event sent when a latency sample or reconnect was recorded; payload [`UiDiagnostics`]
/// without the (slow) self-checks.
pub const EVENT_DIAGNOSTICS: &str = "taskbell://diagnostics";

/// Latency samples kept for the sparkline.
pub const MAX_SAMPLES: usize = 60;
/// Reconnects kept for the log.
pub const MAX_RECONNECTS: usize = 50;
/// How often the demo server makes something happen.
pub const DEMO_ACTIVITY_EVERY: Duration = Duration::from_secs(20);

/// Recent latencies and reconnects, for the diagnostics window.
#[derive(Debug, Default)]
pub struct DiagLog {
    latency_ms: VecDeque<u64>,
    reconnects: VecDeque<ReconnectEntry>,
}

impl DiagLog {
    /// Records a heartbeat round trip.
    pub fn latency(&mut self, ms: u64) {
        if self.latency_ms.len() == MAX_SAMPLES {
            self.latency_ms.pop_front();
        }
        self.latency_ms.push_back(ms);
    }

    /// Records a reconnect.
    pub fn reconnect(&mut self, entry: ReconnectEntry) {
        if self.reconnects.len() == MAX_RECONNECTS {
            self.reconnects.pop_back();
        }
        self.reconnects.push_front(entry);
    }

    /// Samples oldest first.
    pub fn samples(&self) -> Vec<u64> {
        self.latency_ms.iter().copied().collect()
    }

    /// Reconnects newest first.
    pub fn reconnects(&self) -> Vec<ReconnectEntry> {
        self.reconnects.iter().cloned().collect()
    }
}

/// What a window or the menu asks the engine to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Reconnect now.
    ReconnectNow,
    /// Pause for this many seconds.
    PauseFor(i64),
    /// Pause until tomorrow 08:00 local time.
    PauseUntilTomorrow,
    /// Resume notifications.
    Resume,
    /// Sign out.
    SignOut,
    /// Send a test notification.
    TestNotification,
}

/// What the app needs from the machine: where files live, the keyring, the notifier.
/// `main` uses the real ones; tests pass a temp dir, an in-memory keyring and a recorder.
pub struct Deps {
    /// Config and history locations of the real account.
    pub paths: Paths,
    /// The OS keyring, or why it could not be opened.
    pub credentials: Result<Credentials, String>,
    /// Shows toasts.
    pub notifier: Arc<dyn Notifier>,
    /// Makes a notifier for each further account: a notifier reports toast actions
    /// (Mark read, Snooze) to the one engine attached to it, so accounts must not
    /// share one. `None` (tests with a recording notifier): they share `notifier`.
    pub notifier_factory: Option<NotifierFactory>,
    /// The local UTC offset (computed before threads start).
    pub utc_offset: UtcOffset,
}

/// Makes a fresh notifier (see [`Deps::notifier_factory`]).
pub type NotifierFactory = Arc<dyn Fn() -> Arc<dyn Notifier> + Send + Sync>;

impl std::fmt::Debug for Deps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deps")
            .field("paths", &self.paths)
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

impl Deps {
    /// The real machine: standard paths, the OS keyring, desktop notifications.
    pub fn system() -> Result<Self, String> {
        // First: the `time` crate reads the local offset only while one thread runs, and
        // opening the keyring may start D-Bus threads.
        let utc_offset = taskbell_core::supervisor::local_offset();
        let paths = Paths::resolve(None, None).map_err(|e| e.to_string())?;
        let credentials = Credentials::open().map_err(|e| e.to_string());
        if let Err(e) = &credentials {
            tracing::warn!("keyring unavailable: {e}");
        }
        // The toasts' "Open" label follows the configured language (a bad or
        // missing config falls back to the system locale; the engine reports it).
        let lang = Config::load(&paths.config_file())
            .ok()
            .and_then(|c| c.language)
            .unwrap_or_else(CoreLang::from_system);
        let open_label = taskbell_core::i18n::tr(lang, taskbell_core::i18n::Msg::Open);
        Ok(Self {
            paths,
            credentials,
            notifier: Arc::new(
                taskbell_core::notifier::DesktopNotifier::new().with_open_label(open_label.clone()),
            ),
            notifier_factory: Some(Arc::new(move || -> Arc<dyn Notifier> {
                Arc::new(
                    taskbell_core::notifier::DesktopNotifier::new()
                        .with_open_label(open_label.clone()),
                )
            })),
            utc_offset,
        })
    }

    /// A notifier for a further account's engine: a fresh one when there is a factory.
    pub fn notifier_for_further_account(&self) -> Arc<dyn Notifier> {
        match &self.notifier_factory {
            Some(make) => make(),
            None => Arc::clone(&self.notifier),
        }
    }
}

/// The running engine (and the demo server, in demo mode).
#[derive(Default)]
pub struct EngineSlot {
    inner: std::sync::Mutex<Slot>,
}

#[derive(Default)]
struct Slot {
    generation: u64,
    commands: Option<mpsc::Sender<Command>>,
    /// The paths of the account the engine runs for (demo or real).
    paths: Option<Paths>,
    summary_lines: Vec<String>,
    demo: Option<taskbell_server::RunningServer>,
    /// The user asked to sign out (so the login window is not pushed at them).
    signing_out: bool,
    /// The first account's id when there are several accounts (names its rows and
    /// toasts); `None` with a single account and in demo mode.
    primary_label: Option<String>,
    /// The further accounts (configured when the app started or signed in), running or
    /// not: the center lists their histories too.
    further: Vec<Further>,
    /// Bumped when every further engine is stopped, so their pumps stand down.
    further_generation: u64,
}

/// A further account (not the first): its place and, while it runs, its engine.
struct Further {
    /// `user@host`.
    id: String,
    /// Its config and data dirs (`accounts/<id>`).
    paths: Paths,
    /// Its engine, while it runs.
    commands: Option<mpsc::Sender<Command>>,
    /// Its unread count as its engine last said (0 when it does not run).
    unread: u64,
}

/// A further account's id, paths and engine (`None`: not running).
type FurtherEngine = (String, Paths, Option<mpsc::Sender<Command>>);

/// Where a key from the windows belongs (see [`EngineSlot::route`]).
struct Route {
    /// The further account it names (its id, paths and engine); `None`: the first account.
    further: Option<FurtherEngine>,
    /// The key as that account's history knows it.
    key: String,
}

impl std::fmt::Debug for EngineSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.lock();
        f.debug_struct("EngineSlot")
            .field("generation", &s.generation)
            .field("running", &s.commands.is_some())
            .field("demo", &s.demo.is_some())
            .finish()
    }
}

impl EngineSlot {
    fn lock(&self) -> std::sync::MutexGuard<'_, Slot> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether an engine runs.
    pub fn is_running(&self) -> bool {
        self.lock().commands.is_some()
    }

    fn sender(&self) -> Option<mpsc::Sender<Command>> {
        self.lock().commands.clone()
    }

    /// The ids of the further accounts whose engines run now.
    pub fn further_running(&self) -> Vec<String> {
        self.lock()
            .further
            .iter()
            .filter(|f| f.commands.is_some())
            .map(|f| f.id.clone())
            .collect()
    }

    fn further_senders(&self) -> Vec<mpsc::Sender<Command>> {
        self.lock()
            .further
            .iter()
            .filter_map(|f| f.commands.clone())
            .collect()
    }

    /// How many further engines run, and their unread count together.
    fn further_summary(&self) -> (u32, u64) {
        let slot = self.lock();
        slot.further
            .iter()
            .filter(|f| f.commands.is_some())
            .fold((0, 0), |(n, unread), f| (n + 1, unread + f.unread))
    }

    fn primary_label(&self) -> Option<String> {
        self.lock().primary_label.clone()
    }

    /// The further accounts' ids and paths (running or not).
    fn further_places(&self) -> Vec<(String, Paths)> {
        self.lock()
            .further
            .iter()
            .map(|f| (f.id.clone(), f.paths.clone()))
            .collect()
    }

    /// The further accounts' ids, paths and engines (`None`: not running).
    fn further_engines(&self) -> Vec<FurtherEngine> {
        self.lock()
            .further
            .iter()
            .map(|f| (f.id.clone(), f.paths.clone(), f.commands.clone()))
            .collect()
    }

    /// The account a key from the windows belongs to: `"<account>/<key>"` names a
    /// further account or the first one (account ids never contain `/`); anything else is
    /// the first account's key as it is (a single account's keys have no prefix).
    fn route(&self, ui_key: &str) -> Route {
        let slot = self.lock();
        if let Some((prefix, key)) = ui_key.split_once('/') {
            if slot.primary_label.as_deref() == Some(prefix) {
                return Route {
                    further: None,
                    key: key.to_string(),
                };
            }
            if let Some(f) = slot.further.iter().find(|f| f.id == prefix) {
                return Route {
                    further: Some((f.id.clone(), f.paths.clone(), f.commands.clone())),
                    key: key.to_string(),
                };
            }
        }
        Route {
            further: None,
            key: ui_key.to_string(),
        }
    }
}

fn core_lang(lang: Lang) -> CoreLang {
    match lang {
        Lang::ZhCn => CoreLang::ZhCn,
        Lang::En => CoreLang::En,
    }
}

fn ui_lang(lang: CoreLang) -> Lang {
    match lang {
        CoreLang::ZhCn => Lang::ZhCn,
        CoreLang::En => Lang::En,
    }
}

/// The system language (zh* → Chinese, else English).
pub fn system_lang() -> Lang {
    ui_lang(CoreLang::from_system())
}

fn emit<R: Runtime, S: Serialize + Clone>(app: &AppHandle<R>, event: &str, payload: S) {
    if let Err(e) = app.emit(event, payload) {
        tracing::debug!("emit {event}: {e}");
    }
}

fn now_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// "HH:MM" when `ms` is today (local), else "MM-DD HH:MM".
pub fn local_label(ms: i64, now_ms: i64, offset: UtcOffset) -> String {
    let at = |ms: i64| {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
            .to_offset(offset)
    };
    let (t, now) = (at(ms), at(now_ms));
    if t.date() == now.date() {
        format!("{:02}:{:02}", t.hour(), t.minute())
    } else {
        format!(
            "{:02}-{:02} {:02}:{:02}",
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute()
        )
    }
}

/// Tomorrow 08:00 local time, in ms since the epoch.
pub fn tomorrow_morning_ms(now_ms: i64, offset: UtcOffset) -> i64 {
    let now = OffsetDateTime::from_unix_timestamp_nanos(i128::from(now_ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
        .to_offset(offset);
    let date = now.date().next_day().unwrap_or(now.date());
    let at = date.with_hms(8, 0, 0).map(|dt| dt.assume_offset(offset));
    match at {
        Ok(t) => (t.unix_timestamp_nanos() / 1_000_000) as i64,
        Err(_) => now_ms + 24 * 3600 * 1000,
    }
}

/// The filter group of a notification kind.
pub fn group_of(kind: &NotificationKind) -> &'static str {
    match kind {
        NotificationKind::TaskReviewed | NotificationKind::TaskAssigned => "reviews",
        NotificationKind::TaskSubmitted | NotificationKind::SkipRequested => "submissions",
        NotificationKind::Mention => "mentions",
        NotificationKind::GroupMessage | NotificationKind::PrivateMessage => "chat",
        NotificationKind::System | NotificationKind::Test | NotificationKind::Other(_) => "system",
    }
}

fn role_name(role: &Role) -> &'static str {
    match role {
        Role::Annotator => "annotator",
        Role::Reviewer => "reviewer",
        Role::Admin => "admin",
    }
}

/// The link a notification opens, if any: only on the platform's own origin.
fn link_of(n: &Notification, config: &Config) -> Option<String> {
    let server = config.server_url().ok()?;
    let task = n.task_id.as_deref()?;
    task_url(&config.task_url_template, &server, task)
}

/// A notification as the notification center shows it; `account` names the account it
/// came to when there are several (and prefixes its key, see [`UiNotification::key`]).
pub fn ui_notification(
    n: &Notification,
    read: bool,
    config: &Config,
    account: Option<&str>,
) -> UiNotification {
    UiNotification {
        key: match account {
            Some(a) => format!("{a}/{}", n.key),
            None => n.key.clone(),
        },
        account: account.map(str::to_string),
        kind: n.kind.as_str().to_string(),
        group: group_of(&n.kind).to_string(),
        title: n.title.clone(),
        content: n.content.clone(),
        priority: n.priority.as_str().to_string(),
        timestamp_ms: n.timestamp_ms,
        read,
        has_link: link_of(n, config).is_some(),
        task_id: n.task_id.clone(),
        project: n.project_id.clone(),
    }
}

/// The core's status as the tray and the windows show it.
pub fn ui_status(
    s: &Status,
    summary_lines: &[String],
    demo: bool,
    now_ms: i64,
    offset: UtcOffset,
) -> UiStatus {
    let state = match &s.state {
        State::SignedOut { reason } => ConnState::SignedOut {
            reason: reason.clone(),
        },
        State::Connecting => ConnState::Connecting,
        State::Connected { latency_ms } => ConnState::Connected {
            latency_ms: latency_ms.or(s.latency_ms),
        },
        State::Reconnecting { in_secs, reason } => ConnState::Reconnecting {
            in_secs: *in_secs,
            reason: reason.clone(),
        },
        State::Offline { reason } => ConnState::Offline {
            reason: reason.clone(),
        },
    };
    let paused_until_ms = s.paused_until_ms.filter(|t| *t > now_ms);
    // Signed out means no current user and no summary, whatever the engine's last status
    // still carried (as `publish_signed_out` shows it).
    let signed_out = matches!(s.state, State::SignedOut { .. });
    UiStatus {
        state,
        paused_until_ms,
        paused_label: paused_until_ms.map(|t| local_label(t, now_ms, offset)),
        unread: s.unread,
        user: s.user.as_ref().filter(|_| !signed_out).map(|u| UiUser {
            username: u.username.clone(),
            display_name: if u.real_name.is_empty() {
                u.username.clone()
            } else {
                u.real_name.clone()
            },
            role: role_name(&u.role).to_string(),
        }),
        summary_lines: if signed_out {
            Vec::new()
        } else {
            summary_lines.to_vec()
        },
        server: (!s.server.is_empty()).then(|| s.server.clone()),
        demo,
        // The further accounts are added in by `publish`.
        accounts: 1,
    }
}

/// Publishes the first account's status `primary` with the further accounts added in
/// (their unread counts, how many run): tray icon, tooltip, menu, and the windows.
pub fn publish<R: Runtime>(app: &AppHandle<R>, primary: UiStatus) {
    let shared = app.state::<Shared>();
    shared.set_primary_status(primary.clone());
    let (running, unread) = shared.engine.further_summary();
    let mut status = primary;
    status.unread += unread;
    status.accounts = 1 + running;
    if !shared.set_status(status.clone()) {
        return;
    }
    if let Err(e) = tray::apply(app, &status, shared.lang()) {
        tracing::warn!("tray update failed: {e}");
    }
    emit(app, EVENT_STATUS, status);
}

fn publish_signed_out<R: Runtime>(app: &AppHandle<R>, reason: Option<String>) {
    let shared = app.state::<Shared>();
    let mut s = shared.primary_status();
    s.state = ConnState::SignedOut { reason };
    s.user = None;
    s.summary_lines.clear();
    s.demo = false;
    publish(app, s);
}

/// Re-renders the tray (e.g. after the language changed).
pub fn refresh_tray<R: Runtime>(app: &AppHandle<R>) {
    let shared = app.state::<Shared>();
    if let Err(e) = tray::apply(app, &shared.status(), shared.lang()) {
        tracing::warn!("tray update failed: {e}");
    }
}

/// Starts the engine in the background: the demo when asked or when no server is
/// configured, else the configured account (signing in from the keyring); the login
/// window when that is not possible.
pub fn start<R: Runtime>(app: &AppHandle<R>) {
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        if let Err(e) = boot(&app).await {
            tracing::warn!("{e}");
            publish_signed_out(&app, Some(e.message.clone()));
            open_login(&app);
        }
    });
}

fn open_login<R: Runtime>(app: &AppHandle<R>) {
    let lang = app.state::<Shared>().lang();
    if let Err(e) = windows::open(app, WindowKind::Login, lang) {
        tracing::warn!("could not open the login window: {e}");
    }
}

async fn boot<R: Runtime>(app: &AppHandle<R>) -> CmdResult<()> {
    let shared = app.state::<Shared>();
    let paths = shared.deps.paths.clone();
    let config = Config::load(&paths.config_file());
    let demo = shared.options.demo || matches!(&config, Ok(c) if c.server.is_none());
    if demo {
        return start_demo(app).await;
    }
    let config = config.map_err(CmdError::from)?;
    let credentials = shared.deps.credentials.clone().map_err(keyring_error)?;
    load_accounts(app, &paths);
    let first = start_engine(app, config, paths, credentials.clone(), false);
    start_further(app, &credentials).await;
    match first {
        Err(EngineError::NotSignedIn) => {
            publish_signed_out(app, None);
            open_login(app);
            Ok(())
        }
        Err(e) => Err(CmdError::new(ErrorKind::Local, e.to_string())),
        Ok(()) => Ok(()),
    }
}

/// Starts the embedded reference server with demo activity and signs in as the demo
/// annotator, in a demo data directory of its own (the real config stays untouched).
async fn start_demo<R: Runtime>(app: &AppHandle<R>) -> CmdResult<()> {
    let shared = app.state::<Shared>();
    let server = taskbell_server::start(taskbell_server::ServerConfig {
        demo_activity: Some(DEMO_ACTIVITY_EVERY),
        ..taskbell_server::ServerConfig::default()
    })
    .await
    .map_err(|e| {
        CmdError::new(
            ErrorKind::Local,
            format!("the demo server did not start: {e}"),
        )
    })?;
    let dir = shared.deps.paths.data_dir.join("demo");
    // A fresh demo every time: the demo server's data starts afresh too.
    let _ = std::fs::remove_dir_all(&dir);
    let paths = Paths {
        config_dir: dir.clone(),
        data_dir: dir,
    };
    // The demo keeps its token in memory: it works without a keyring, and its tokens die
    // with the demo server anyway.
    let credentials = Credentials::in_memory();
    let account = taskbell_server::DEMO_ANNOTATOR;
    let base = server.base_url();
    tracing::info!(
        "demo: platform at {base}, signing in as {}",
        account.username
    );
    let signed = core_sign_in(
        &paths,
        &credentials,
        &base,
        account.username,
        account.password,
        false,
    )
    .await
    .map_err(sign_in_error)?;
    shared.engine.lock().demo = Some(server);
    start_engine(app, signed.config, paths, credentials, true)
        .map_err(|e| CmdError::new(ErrorKind::Local, e.to_string()))
}

fn start_engine<R: Runtime>(
    app: &AppHandle<R>,
    config: Config,
    paths: Paths,
    credentials: Credentials,
    demo: bool,
) -> Result<(), EngineError> {
    let shared = app.state::<Shared>();
    if let Some(lang) = config.language {
        shared.set_lang(ui_lang(lang));
    }
    let notifier: Arc<dyn Notifier> = match shared.engine.primary_label().filter(|_| !demo) {
        Some(label) => Arc::new(Labelled::new(label, shared.deps.notifier.clone())),
        None => shared.deps.notifier.clone(),
    };
    let mut opts = EngineOptions::new(config, paths.clone(), notifier, credentials);
    opts.lang = core_lang(shared.lang());
    opts.utc_offset = shared.deps.utc_offset;
    opts.folded_to_center = true;
    let EngineHandle {
        state,
        events,
        commands,
        join,
    } = Engine::start(opts)?;
    let generation = {
        let mut slot = shared.engine.lock();
        if let Some(old) = slot.commands.take() {
            let _ = old.try_send(Command::Shutdown);
        }
        if !demo && let Some(server) = slot.demo.take() {
            tauri::async_runtime::spawn(server.shutdown());
        }
        slot.generation += 1;
        slot.commands = Some(commands);
        slot.paths = Some(paths);
        slot.summary_lines.clear();
        slot.signing_out = false;
        slot.generation
    };
    tauri::async_runtime::spawn(pump_status(app.clone(), state, generation, demo));
    tauri::async_runtime::spawn(pump_events(app.clone(), events, generation, demo));
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        let reason = match join.await {
            Ok(r) => r,
            Err(e) => ExitReason::Failed(format!("engine task failed: {e}")),
        };
        on_exit(&app, generation, reason);
    });
    Ok(())
}

/// Reads the accounts from the main config dir: names the first one when there are
/// several, and keeps every further one (an engine already running for one stays; one that
/// is gone is stopped).
fn load_accounts<R: Runtime>(app: &AppHandle<R>, paths: &Paths) {
    let all = accounts::list(paths).unwrap_or_else(|e| {
        tracing::warn!("cannot list the accounts: {e}");
        Vec::new()
    });
    let several = all.len() > 1;
    let shared = app.state::<Shared>();
    let mut slot = shared.engine.lock();
    slot.primary_label = all
        .iter()
        .find(|a| a.primary)
        .filter(|_| several)
        .map(|a| a.id.clone());
    let mut old = std::mem::take(&mut slot.further);
    slot.further = all
        .into_iter()
        .filter(|a| !a.primary)
        .map(|a| match old.iter().position(|f| f.id == a.id) {
            Some(i) => old.swap_remove(i),
            None => Further {
                id: a.id,
                paths: a.paths,
                commands: None,
                unread: 0,
            },
        })
        .collect();
    for gone in old {
        if let Some(tx) = gone.commands {
            let _ = tx.try_send(Command::Shutdown);
        }
    }
}

/// Whether the account of `config` can sign in without asking: a token, or a remembered
/// password, in the keyring (what `taskbell run` checks too).
async fn has_credentials(credentials: &Credentials, config: &Config) -> bool {
    let (creds, config) = (credentials.clone(), config.clone());
    match taskbell_core::credentials::blocking(move || creds.can_sign_in(&config)).await {
        Ok(yes) => yes,
        Err(e) => {
            tracing::warn!("keyring: {e}");
            false
        }
    }
}

/// Starts an engine for every further account that is signed in and has none yet.
async fn start_further<R: Runtime>(app: &AppHandle<R>, credentials: &Credentials) {
    let shared = app.state::<Shared>();
    let (todo, generation) = {
        let slot = shared.engine.lock();
        let todo: Vec<(String, Paths)> = slot
            .further
            .iter()
            .filter(|f| f.commands.is_none())
            .map(|f| (f.id.clone(), f.paths.clone()))
            .collect();
        (todo, slot.further_generation)
    };
    for (id, paths) in todo {
        if let Err(e) = start_one_further(app, &id, paths, credentials, generation).await {
            tracing::warn!("{id}: {e}");
        }
    }
    publish(app, shared.primary_status());
}

async fn start_one_further<R: Runtime>(
    app: &AppHandle<R>,
    id: &str,
    paths: Paths,
    credentials: &Credentials,
    generation: u64,
) -> CmdResult<()> {
    let shared = app.state::<Shared>();
    let config = paths.load_config()?;
    if !has_credentials(credentials, &config).await {
        tracing::info!("{id} is signed out; it does not run");
        return Ok(());
    }
    let notifier = Arc::new(Labelled::new(
        id,
        shared.deps.notifier_for_further_account(),
    ));
    let mut opts = EngineOptions::new(config, paths, notifier, credentials.clone());
    opts.lang = core_lang(shared.lang());
    opts.utc_offset = shared.deps.utc_offset;
    opts.folded_to_center = true;
    let handle = Engine::start(opts).map_err(|e| CmdError::new(ErrorKind::Local, e.to_string()))?;
    {
        let mut slot = shared.engine.lock();
        let current = slot.further_generation == generation;
        match slot.further.iter_mut().find(|f| f.id == id) {
            Some(f) if current && f.commands.is_none() => {
                f.commands = Some(handle.commands.clone());
                f.unread = handle.state.borrow().unread;
            }
            _ => {
                // Shut down (or replaced) meanwhile.
                let _ = handle.commands.try_send(Command::Shutdown);
                return Ok(());
            }
        }
    }
    tracing::info!("{id}: engine started");
    tauri::async_runtime::spawn(pump_further(
        app.clone(),
        id.to_string(),
        generation,
        handle,
    ));
    Ok(())
}

fn further_is_current<R: Runtime>(app: &AppHandle<R>, id: &str, generation: u64) -> bool {
    let shared = app.state::<Shared>();
    let slot = shared.engine.lock();
    slot.further_generation == generation
        && slot
            .further
            .iter()
            .any(|f| f.id == id && f.commands.is_some())
}

/// A further account's engine: its notifications go to the center (with the account),
/// its unread count into the tray's sum; when it ends it leaves the sum.
async fn pump_further<R: Runtime>(
    app: AppHandle<R>,
    id: String,
    generation: u64,
    handle: EngineHandle,
) {
    let EngineHandle {
        mut state,
        mut events,
        commands: _,
        join,
    } = handle;
    let mut state_open = true;
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Some(event) => {
                    if further_is_current(&app, &id, generation) {
                        on_further_event(&app, &id, event);
                    }
                }
                None => break,
            },
            changed = state.changed(), if state_open => {
                if changed.is_err() {
                    state_open = false;
                    continue;
                }
                let unread = state.borrow_and_update().unread;
                let shared = app.state::<Shared>();
                let changed = {
                    let mut slot = shared.engine.lock();
                    let current = slot.further_generation == generation;
                    match slot.further.iter_mut().find(|f| f.id == id && f.commands.is_some()) {
                        Some(f) if current && f.unread != unread => {
                            f.unread = unread;
                            true
                        }
                        _ => false,
                    }
                };
                if changed {
                    publish(&app, shared.primary_status());
                }
            }
        }
    }
    let reason = match join.await {
        Ok(r) => r,
        Err(e) => ExitReason::Failed(format!("engine task failed: {e}")),
    };
    let shared = app.state::<Shared>();
    {
        let mut slot = shared.engine.lock();
        if slot.further_generation != generation {
            return;
        }
        if let Some(f) = slot.further.iter_mut().find(|f| f.id == id) {
            f.commands = None;
            f.unread = 0;
        }
    }
    match reason {
        ExitReason::Shutdown => tracing::info!("{id}: engine stopped"),
        other => tracing::warn!(reason = ?other, "{id}: engine stopped"),
    }
    publish(&app, shared.primary_status());
}

/// Handles a further account's event: its notifications reach the center; the login
/// summary, latency and reconnects are the first account's business (menu, diagnostics).
fn on_further_event<R: Runtime>(app: &AppHandle<R>, id: &str, event: Event) {
    match event {
        Event::Notification(n) => {
            let paths = app
                .state::<Shared>()
                .engine
                .further_places()
                .into_iter()
                .find(|(f, _)| f == id)
                .map(|(_, p)| p);
            let config = paths.and_then(|p| p.load_config().ok()).unwrap_or_default();
            emit(
                app,
                EVENT_NOTIFICATION,
                ui_notification(&n, false, &config, Some(id)),
            );
        }
        Event::ShowFolded { keys } => crate::triage::show_folded(app, keys, Some(id)),
        Event::Error { message } => tracing::warn!("{id}: engine: {message}"),
        other => tracing::debug!(?other, "{id}: engine event"),
    }
}

fn is_current<R: Runtime>(app: &AppHandle<R>, generation: u64) -> bool {
    app.state::<Shared>().engine.lock().generation == generation
}

async fn pump_status<R: Runtime>(
    app: AppHandle<R>,
    mut state: watch::Receiver<Status>,
    generation: u64,
    demo: bool,
) {
    loop {
        if !is_current(&app, generation) {
            return;
        }
        let status = state.borrow_and_update().clone();
        republish(&app, &status, demo);
        if state.changed().await.is_err() {
            return;
        }
    }
}

fn republish<R: Runtime>(app: &AppHandle<R>, status: &Status, demo: bool) {
    let shared = app.state::<Shared>();
    let lines = shared.engine.lock().summary_lines.clone();
    let ui = ui_status(status, &lines, demo, now_ms(), shared.deps.utc_offset);
    shared.set_core_status(status.clone());
    publish(app, ui);
}

async fn pump_events<R: Runtime>(
    app: AppHandle<R>,
    mut events: mpsc::Receiver<Event>,
    generation: u64,
    demo: bool,
) {
    while let Some(event) = events.recv().await {
        if !is_current(&app, generation) {
            return;
        }
        on_event(&app, event, demo);
    }
}

/// Handles one core event: windows hear about notifications and diagnostics, the menu
/// gets the summary lines.
pub fn on_event<R: Runtime>(app: &AppHandle<R>, event: Event, demo: bool) {
    let shared = app.state::<Shared>();
    match event {
        Event::Notification(n) => {
            let config = active_config(app).unwrap_or_default();
            let label = shared.engine.primary_label().filter(|_| !demo);
            emit(
                app,
                EVENT_NOTIFICATION,
                ui_notification(&n, false, &config, label.as_deref()),
            );
        }
        Event::Summary(s) => {
            // The first line greets the user; the rest are the counts the menu lists.
            let lines: Vec<String> = s.body_lines.iter().skip(1).cloned().collect();
            shared.engine.lock().summary_lines = lines;
            if let Some(core) = shared.core_status() {
                republish(app, &core, demo);
            }
        }
        Event::Latency { ms } => {
            shared.with_diag(|d| d.latency(ms));
            emit(app, EVENT_DIAGNOSTICS, live_diagnostics(app));
        }
        Event::Reconnecting {
            reason,
            delay_ms,
            attempt,
        } => {
            shared.with_diag(|d| {
                d.reconnect(ReconnectEntry {
                    at_ms: now_ms(),
                    reason,
                    delay_ms,
                    attempt,
                })
            });
            emit(app, EVENT_DIAGNOSTICS, live_diagnostics(app));
        }
        Event::ShowFolded { keys } => {
            let label = shared.engine.primary_label().filter(|_| !demo);
            crate::triage::show_folded(app, keys, label.as_deref());
        }
        Event::Error { message } => tracing::warn!("engine: {message}"),
        other => tracing::debug!(?other, "engine event"),
    }
}

fn on_exit<R: Runtime>(app: &AppHandle<R>, generation: u64, reason: ExitReason) {
    let shared = app.state::<Shared>();
    let asked = {
        let mut slot = shared.engine.lock();
        if slot.generation != generation {
            return;
        }
        slot.commands = None;
        slot.summary_lines.clear();
        std::mem::take(&mut slot.signing_out)
    };
    tracing::info!(?reason, "engine stopped");
    let text = match &reason {
        ExitReason::Shutdown => return,
        ExitReason::SignedOut if asked => None,
        ExitReason::SignedOut => Some("The session ended. Please sign in again.".to_string()),
        ExitReason::AccessDenied(why) => Some(format!("Access denied: {why}")),
        ExitReason::Failed(why) => Some(why.clone()),
    };
    let push_login = text.is_some();
    publish_signed_out(app, text);
    if push_login {
        open_login(app);
    }
}

/// Stops the engine (and the demo server); called once when the app exits. Waits a
/// moment so the socket closes properly.
pub fn shutdown<R: Runtime>(app: &AppHandle<R>) {
    let shared = app.state::<Shared>();
    let (commands, demo) = {
        let mut slot = shared.engine.lock();
        slot.generation += 1;
        slot.further_generation += 1;
        let mut all: Vec<_> = slot.commands.take().into_iter().collect();
        for f in &mut slot.further {
            all.extend(f.commands.take());
            f.unread = 0;
        }
        (all, slot.demo.take())
    };
    tauri::async_runtime::block_on(async move {
        if !commands.is_empty() {
            for c in &commands {
                let _ = c.send(Command::Shutdown).await;
            }
            // The loop closes the socket with 1000; give it a moment, no more.
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        if let Some(server) = demo {
            let _ = tokio::time::timeout(Duration::from_secs(3), server.shutdown()).await;
        }
    });
}

fn keyring_error(e: String) -> CmdError {
    CmdError::new(
        ErrorKind::Local,
        format!("The system keyring is not available: {e}"),
    )
}

/// Maps a sign-in failure to words and a form field.
pub fn sign_in_error(e: SignInError) -> CmdError {
    match e {
        SignInError::Api(api) => api_error(api),
        SignInError::Config(
            c
            @ (ConfigError::Insecure { .. } | ConfigError::Invalid { .. } | ConfigError::NoServer),
        ) => CmdError::new(ErrorKind::BadUrl, c.to_string()).on("server"),
        SignInError::Config(c) => CmdError::new(ErrorKind::Local, c.to_string()),
        SignInError::Credentials(c) => keyring_error(c.to_string()),
        SignInError::Network(n) => CmdError::new(ErrorKind::Local, n.to_string()),
        SignInError::NotSignedIn => CmdError::new(ErrorKind::NotSignedIn, "You are not signed in."),
        SignInError::Invalid(why) => CmdError::new(ErrorKind::Invalid, why),
    }
}

fn api_error(e: ApiError) -> CmdError {
    let text = e.to_string();
    match e {
        ApiError::Unauthorized(_) => CmdError::new(ErrorKind::WrongPassword, text).on("password"),
        ApiError::Network(_) | ApiError::Timeout => {
            CmdError::new(ErrorKind::Unreachable, text).on("server")
        }
        ApiError::Tls(_) => CmdError::new(ErrorKind::Tls, text).on("server"),
        ApiError::BadUrl(_) => CmdError::new(ErrorKind::BadUrl, text).on("server"),
        ApiError::RateLimited { .. } => CmdError::new(ErrorKind::RateLimited, text),
        ApiError::Forbidden(_) | ApiError::Server { .. } | ApiError::BadResponse(_) => {
            CmdError::new(ErrorKind::Server, text)
        }
    }
}

/// Signs in from the login window, then runs the engine for that account (leaving demo
/// mode if it was on).
pub async fn sign_in<R: Runtime>(
    app: &AppHandle<R>,
    server: &str,
    username: &str,
    password: &str,
    remember: bool,
) -> CmdResult<UiUser> {
    let shared = app.state::<Shared>();
    let paths = shared.deps.paths.clone();
    let credentials = shared.deps.credentials.clone().map_err(keyring_error)?;
    let signed = core_sign_in(&paths, &credentials, server, username, password, remember)
        .await
        .map_err(sign_in_error)?;
    let user = UiUser {
        username: signed.user.username.clone(),
        display_name: if signed.user.real_name.is_empty() {
            signed.user.username.clone()
        } else {
            signed.user.real_name.clone()
        },
        role: role_name(&signed.user.role).to_string(),
    };
    // The first account may be somebody else now: name it afresh.
    load_accounts(app, &paths);
    start_engine(app, signed.config, paths, credentials.clone(), false)
        .map_err(|e| CmdError::new(ErrorKind::Local, e.to_string()))?;
    // Leaving the demo: the further accounts start now.
    start_further(app, &credentials).await;
    Ok(user)
}

/// The paths of the account in use: the engine's, else the real account's.
pub(crate) fn active_paths<R: Runtime>(app: &AppHandle<R>) -> Paths {
    let shared = app.state::<Shared>();
    let slot = shared.engine.lock().paths.clone();
    slot.unwrap_or_else(|| shared.deps.paths.clone())
}

/// The config of the account in use ([`active_paths`]).
pub(crate) fn active_config<R: Runtime>(app: &AppHandle<R>) -> CmdResult<Config> {
    Config::load(&active_paths(app).config_file()).map_err(CmdError::from)
}

fn history<R: Runtime>(app: &AppHandle<R>) -> CmdResult<History> {
    History::open(&active_paths(app).history_db()).map_err(history_error)
}

fn history_error(e: impl std::fmt::Display) -> CmdError {
    CmdError::new(
        ErrorKind::Local,
        format!("The notification history cannot be read: {e}"),
    )
}

/// Lists the history, newest first, filtered: every account's, merged by time (each
/// account is asked for `offset + limit` rows, the merge is sliced, so pages stay exact).
pub fn list_history<R: Runtime>(
    app: &AppHandle<R>,
    filter: &HistoryFilter,
) -> CmdResult<Vec<UiNotification>> {
    let shared = app.state::<Shared>();
    let limit = filter
        .limit
        .unwrap_or(200)
        .clamp(1, HistoryFilter::MAX_LIMIT);
    let offset = filter.offset.unwrap_or(0);
    let further = shared.engine.further_places();
    let label = shared.engine.primary_label();
    let config = active_config(app).unwrap_or_default();
    let query = |offset: usize, limit: usize| Query {
        unread_only: filter.unread_only,
        limit,
        offset,
        ..Query::default()
    };
    // Each row with when it was stored, the tie-break between accounts.
    let of = |h: &History, q: &Query, config: &Config, account: Option<&str>| {
        h.list(q)
            .map(|records| {
                records
                    .iter()
                    .map(|r| {
                        (
                            r.received_at_ms,
                            ui_notification(&r.notification, r.read, config, account),
                        )
                    })
                    .collect::<VecDeque<_>>()
            })
            .map_err(|e| CmdError::new(ErrorKind::Local, e.to_string()))
    };
    let rows: Vec<UiNotification> = if further.is_empty() {
        of(&history(app)?, &query(offset, limit), &config, None)?
            .into_iter()
            .map(|(_, n)| n)
            .collect()
    } else {
        let wanted = offset.saturating_add(limit);
        let mut lists = vec![of(
            &history(app)?,
            &query(0, wanted),
            &config,
            label.as_deref(),
        )?];
        for (id, paths) in further {
            if !paths.history_db().exists() {
                continue;
            }
            let config = paths.load_config().unwrap_or_default();
            match History::open(&paths.history_db())
                .map_err(history_error)
                .and_then(|h| of(&h, &query(0, wanted), &config, Some(&id)))
            {
                Ok(more) => lists.push(more),
                Err(e) => tracing::warn!("{id}: {e}"),
            }
        }
        merge_newest_first(lists, wanted)
            .into_iter()
            .skip(offset)
            .collect()
    };
    Ok(rows
        .into_iter()
        .filter(|n| filter.groups.is_empty() || filter.groups.contains(&n.group))
        .collect())
}

/// Merges lists that are each newest first (the history's own order) into one of at most
/// `max` rows, newest first: by time, then by when each was stored, then the earlier list
/// (the first account). Each list's own order is kept, so paging through the merge is
/// exact.
fn merge_newest_first(
    mut lists: Vec<VecDeque<(i64, UiNotification)>>,
    max: usize,
) -> Vec<UiNotification> {
    let mut out = Vec::new();
    while out.len() < max {
        let mut best: Option<(usize, (i64, i64))> = None;
        for (i, list) in lists.iter().enumerate() {
            if let Some((received, n)) = list.front() {
                let key = (n.timestamp_ms, *received);
                if best.is_none_or(|(_, b)| key > b) {
                    best = Some((i, key));
                }
            }
        }
        let Some((i, _)) = best else { break };
        if let Some((_, n)) = lists[i].pop_front() {
            out.push(n);
        }
    }
    out
}

/// Marks `keys` (keys as the windows see them; all of every account when `None`) read:
/// each account through its engine when it runs (it owns the unread count), else
/// directly in its history.
pub fn mark_read<R: Runtime>(app: &AppHandle<R>, keys: Option<&[String]>) -> CmdResult<()> {
    let shared = app.state::<Shared>();
    let Some(keys) = keys else {
        for (_, paths, tx) in shared.engine.further_engines() {
            mark_further_read(&paths, tx, None)?;
        }
        return mark_primary_read(app, None);
    };
    let mut first = Vec::new();
    let mut further: Vec<(FurtherEngine, Vec<String>)> = Vec::new();
    for key in keys {
        let route = shared.engine.route(key);
        match route.further {
            None => first.push(route.key),
            Some(account) => match further.iter_mut().find(|(f, _)| f.0 == account.0) {
                Some((_, keys)) => keys.push(route.key),
                None => further.push((account, vec![route.key])),
            },
        }
    }
    for ((_, paths, tx), keys) in further {
        mark_further_read(&paths, tx, Some(&keys))?;
    }
    if first.is_empty() {
        return Ok(());
    }
    mark_primary_read(app, Some(&first))
}

fn mark_command(keys: Option<&[String]>) -> Command {
    match keys {
        Some(k) => Command::MarkRead { keys: k.to_vec() },
        None => Command::MarkAllRead,
    }
}

fn busy(e: impl std::fmt::Display) -> CmdError {
    CmdError::new(ErrorKind::Local, format!("TaskBell is busy: {e}"))
}

/// A further account's part of a mark read: its engine when it runs, else its history
/// (a stopped account's unread count is not in the tray's sum, so nothing to publish).
fn mark_further_read(
    paths: &Paths,
    tx: Option<mpsc::Sender<Command>>,
    keys: Option<&[String]>,
) -> CmdResult<()> {
    if let Some(tx) = tx {
        return tx.try_send(mark_command(keys)).map_err(busy);
    }
    if !paths.history_db().exists() {
        return Ok(());
    }
    let h = History::open(&paths.history_db()).map_err(history_error)?;
    match keys {
        Some(k) => h.mark_read(k),
        None => h.mark_all_read(),
    }
    .map(|_| ())
    .map_err(|e| CmdError::new(ErrorKind::Local, e.to_string()))
}

fn mark_primary_read<R: Runtime>(app: &AppHandle<R>, keys: Option<&[String]>) -> CmdResult<()> {
    let shared = app.state::<Shared>();
    if let Some(tx) = shared.engine.sender() {
        return tx.try_send(mark_command(keys)).map_err(busy);
    }
    let h = history(app)?;
    let done = match keys {
        Some(k) => h.mark_read(k),
        None => h.mark_all_read(),
    };
    done.map_err(|e| CmdError::new(ErrorKind::Local, e.to_string()))?;
    let unread = h.unread_count().unwrap_or(0);
    let mut s = shared.primary_status();
    s.unread = unread;
    publish(app, s);
    emit(app, EVENT_HISTORY, shared.status().unread);
    Ok(())
}

/// Opens a notification's task in the browser (its URL is built here, on the platform's
/// own origin, from the account the key names) and marks it read.
pub fn open_notification<R: Runtime>(app: &AppHandle<R>, key: &str) -> CmdResult<()> {
    let route = app.state::<Shared>().engine.route(key);
    let (h, config) = match &route.further {
        None => (history(app)?, active_config(app)?),
        Some((_, paths, _)) => (
            History::open(&paths.history_db()).map_err(history_error)?,
            paths.load_config()?,
        ),
    };
    let record = h
        .get(&route.key)
        .map_err(|e| CmdError::new(ErrorKind::Local, e.to_string()))?
        .ok_or_else(|| {
            CmdError::new(
                ErrorKind::Invalid,
                "That notification is not in the history.",
            )
        })?;
    let url = link_of(&record.notification, &config).ok_or_else(|| {
        CmdError::new(ErrorKind::Invalid, "This notification has no task to open.")
    })?;
    open_in_browser(&url).map_err(|e| CmdError::new(ErrorKind::Local, e.to_string()))?;
    mark_read(app, Some(&[key.to_string()]))
}

/// Opens the platform's home page in the browser.
pub fn open_platform<R: Runtime>(app: &AppHandle<R>) -> CmdResult<()> {
    let url = active_config(app)?.server_url().map_err(CmdError::from)?;
    open_in_browser(url.as_str()).map_err(|e| CmdError::new(ErrorKind::Local, e.to_string()))
}

/// The settings form from the config.
pub fn settings_of(c: &Config) -> UiSettings {
    let quiet = c.quiet_hours.clone().filter(|q| q.start != q.end);
    UiSettings {
        server: c.server.clone().unwrap_or_default(),
        username: c.username.clone().unwrap_or_default(),
        heartbeat_interval_secs: c.heartbeat_interval_secs,
        quiet_hours_enabled: quiet.is_some(),
        quiet_start: quiet
            .as_ref()
            .map_or_else(|| "22:00".into(), |q| q.start.clone()),
        quiet_end: quiet
            .as_ref()
            .map_or_else(|| "08:00".into(), |q| q.end.clone()),
        urgent_bypass: c.urgent_bypass,
        language: c
            .language
            .map_or_else(|| "system".into(), |l| l.as_tag().to_string()),
        autostart: c.autostart,
        sound: c.sound,
        kinds: crate::triage::kind_rules(c),
        projects: crate::triage::project_rules(c),
    }
}

/// Applies the form to `c`, checking every field; errors name the field.
pub fn apply_settings(mut c: Config, s: &UiSettings) -> CmdResult<Config> {
    let server = s.server.trim();
    c.server = if server.is_empty() {
        None
    } else {
        let url = taskbell_core::config::parse_server_url(server, c.allow_insecure)
            .map_err(|e| CmdError::new(ErrorKind::BadUrl, e.to_string()).on("server"))?;
        Some(url.as_str().trim_end_matches('/').to_string())
    };
    if !(5..=300).contains(&s.heartbeat_interval_secs) {
        return Err(CmdError::new(
            ErrorKind::Invalid,
            "The heartbeat interval must be between 5 and 300 seconds.",
        )
        .on("heartbeat_interval_secs"));
    }
    c.heartbeat_interval_secs = s.heartbeat_interval_secs;
    c.quiet_hours = if s.quiet_hours_enabled {
        let q = QuietHours {
            start: s.quiet_start.clone(),
            end: s.quiet_end.clone(),
        };
        q.minutes()
            .map_err(|e| CmdError::new(ErrorKind::Invalid, e.to_string()).on("quiet_start"))?;
        Some(q)
    } else {
        None
    };
    c.urgent_bypass = s.urgent_bypass;
    c.language = match s.language.as_str() {
        "system" | "" => None,
        other => Some(CoreLang::parse(other).ok_or_else(|| {
            CmdError::new(ErrorKind::Invalid, format!("Unknown language {other:?}.")).on("language")
        })?),
    };
    c.autostart = s.autostart;
    c.sound = s.sound;
    c = crate::triage::apply_rules(c, s)?;
    c.validate()
        .map_err(|e| CmdError::new(ErrorKind::Invalid, e.to_string()))?;
    Ok(c)
}

/// The settings form.
pub fn get_settings<R: Runtime>(app: &AppHandle<R>) -> CmdResult<UiSettings> {
    Ok(settings_of(&active_config(app)?))
}

/// Checks and saves settings; the engine applies them (a new server means a new sign-in).
pub fn save_settings<R: Runtime>(app: &AppHandle<R>, s: UiSettings) -> CmdResult<UiSettings> {
    let shared = app.state::<Shared>();
    let paths = active_paths(app);
    let mut old = Config::default();
    let new = Config::update(&paths.config_file(), |on_disk| {
        old = on_disk.clone();
        *on_disk = apply_settings(on_disk.clone(), &s)?;
        Ok::<_, CmdError>(())
    })?;
    shared.set_lang(new.language.map_or_else(system_lang, ui_lang));
    refresh_tray(app);
    set_autostart(app, new.autostart);
    if new.server != old.server {
        // The token belongs to the old server: stop, and ask for a sign-in on the new one.
        if let Some(tx) = shared.engine.sender() {
            shared.engine.lock().signing_out = true;
            let _ = tx.try_send(Command::Shutdown);
        }
        shared.engine.lock().generation += 1;
        shared.engine.lock().commands = None;
        publish_signed_out(app, None);
        open_login(app);
    } else if let Some(tx) = shared.engine.sender() {
        let _ = tx.try_send(Command::SetConfig(Box::new(new.clone())));
    }
    apply_to_further_engines(app);
    Ok(settings_of(&new))
}

/// Hands the first account's config `new`, just saved, to the running engines: the first
/// account's engine as it is, every further account's engine its own config.
pub fn apply_to_engines<R: Runtime>(app: &AppHandle<R>, new: &Config) {
    if let Some(tx) = app.state::<Shared>().engine.sender() {
        let _ = tx.try_send(Command::SetConfig(Box::new(new.clone())));
    }
    apply_to_further_engines(app);
}

/// Hands every running further account's engine its config anew, after the main config
/// changed: the further accounts share every setting but their identity and pause.
pub fn apply_to_further_engines<R: Runtime>(app: &AppHandle<R>) {
    for (id, paths, tx) in app.state::<Shared>().engine.further_engines() {
        if let Some(tx) = tx {
            match paths.load_config() {
                Ok(c) => {
                    let _ = tx.try_send(Command::SetConfig(Box::new(c)));
                }
                Err(e) => tracing::warn!("{id}: {e}"),
            }
        }
    }
}

fn set_autostart<R: Runtime>(app: &AppHandle<R>, on: bool) {
    let Some(manager) = app.try_state::<tauri_plugin_autostart::AutoLaunchManager>() else {
        return;
    };
    let done = if on {
        manager.enable()
    } else {
        manager.disable()
    };
    if let Err(e) = done {
        tracing::warn!("autostart: {e}");
    }
}

fn live_diagnostics<R: Runtime>(app: &AppHandle<R>) -> UiDiagnostics {
    let shared = app.state::<Shared>();
    let (latency_ms, reconnects) = shared.with_diag(|d| (d.samples(), d.reconnects()));
    UiDiagnostics {
        latency_ms,
        reconnects,
        checks: Vec::new(),
    }
}

/// Diagnostics data with the self-checks (blocking: D-Bus and X11 round trips).
pub fn diagnostics<R: Runtime>(app: &AppHandle<R>) -> UiDiagnostics {
    let shared = app.state::<Shared>();
    let lang = shared.lang();
    let keyring = shared
        .deps
        .credentials
        .as_ref()
        .map(|c| c.backend().to_string())
        .map_err(Clone::clone);
    let mut d = live_diagnostics(app);
    d.checks = vec![
        checks::keyring(&keyring, lang),
        checks::notifications(lang),
        checks::tray(lang),
    ];
    d
}

fn test_toast(lang: Lang) -> Toast {
    let (title, body) = match lang {
        Lang::ZhCn => ("TaskBell 测试通知", "通知工作正常。"),
        Lang::En => ("TaskBell test notification", "Notifications work."),
    };
    Toast {
        title: title.into(),
        body: body.into(),
        urgency: Urgency::Normal,
        open_url: None,
        keys: Vec::new(),
        folded: 1,
        timeout_ms: None,
    }
}

/// Sends `action` to the engine: pause and resume to every account's, the rest to the
/// first account's. A test notification works without one too.
pub fn send<R: Runtime>(app: &AppHandle<R>, action: Action) -> CmdResult<()> {
    let shared = app.state::<Shared>();
    let pause = match action {
        Action::PauseFor(secs) => Some(Command::Pause {
            until_ms: now_ms() + secs * 1000,
        }),
        Action::PauseUntilTomorrow => Some(Command::Pause {
            until_ms: tomorrow_morning_ms(now_ms(), shared.deps.utc_offset),
        }),
        Action::Resume => Some(Command::Resume),
        _ => None,
    };
    if let Some(command) = pause {
        let all: Vec<_> = shared
            .engine
            .sender()
            .into_iter()
            .chain(shared.engine.further_senders())
            .collect();
        if all.is_empty() {
            return Err(CmdError::new(
                ErrorKind::NotSignedIn,
                "You are not signed in.",
            ));
        }
        let mut result = Ok(());
        for tx in all {
            if let Err(e) = tx.try_send(command.clone()) {
                result = Err(busy(e));
            }
        }
        return result;
    }
    let Some(tx) = shared.engine.sender() else {
        if action == Action::TestNotification {
            return shared
                .deps
                .notifier
                .show(&test_toast(shared.lang()))
                .map_err(|e| CmdError::new(ErrorKind::Local, e.to_string()));
        }
        return Err(CmdError::new(
            ErrorKind::NotSignedIn,
            "You are not signed in.",
        ));
    };
    let command = match action {
        Action::ReconnectNow => Command::ReconnectNow,
        // Sent to every engine above.
        Action::PauseFor(_) | Action::PauseUntilTomorrow | Action::Resume => return Ok(()),
        Action::SignOut => {
            shared.engine.lock().signing_out = true;
            Command::SignOut
        }
        Action::TestNotification => Command::TestNotification,
    };
    tx.try_send(command).map_err(busy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_histories_are_newest_first_keep_each_order_and_page_exactly() {
        let n = |key: &str, ts: i64| UiNotification {
            key: key.into(),
            account: None,
            kind: "system".into(),
            group: "system".into(),
            title: key.into(),
            content: String::new(),
            priority: "normal".into(),
            timestamp_ms: ts,
            read: false,
            has_link: false,
            task_id: None,
            project: None,
        };
        // (stored at, row), each list newest first as its history gives it: a1 and a2
        // share a second and keep their order even though a2 was stored earlier.
        let lists = || {
            vec![
                VecDeque::from([
                    (50, n("a1", 3000)),
                    (40, n("a2", 3000)),
                    (10, n("a3", 1000)),
                ]),
                VecDeque::from([(60, n("b1", 3000)), (30, n("b2", 2000)), (5, n("b3", 1000))]),
            ]
        };
        let keys = |v: Vec<UiNotification>| v.into_iter().map(|n| n.key).collect::<Vec<_>>();
        assert_eq!(
            keys(merge_newest_first(lists(), 100)),
            ["b1", "a1", "a2", "b2", "a3", "b3"]
        );
        assert_eq!(keys(merge_newest_first(lists(), 2)), ["b1", "a1"]);
        // Pages of two put together are the whole merge.
        let pages: Vec<String> = (0..3)
            .flat_map(|p| {
                keys(merge_newest_first(lists(), p * 2 + 2))
                    .into_iter()
                    .skip(p * 2)
            })
            .collect();
        assert_eq!(pages, keys(merge_newest_first(lists(), 100)));
    }

    #[test]
    fn kinds_fall_into_the_five_filter_groups() {
        assert_eq!(group_of(&NotificationKind::TaskReviewed), "reviews");
        assert_eq!(group_of(&NotificationKind::TaskSubmitted), "submissions");
        assert_eq!(group_of(&NotificationKind::SkipRequested), "submissions");
        assert_eq!(group_of(&NotificationKind::Mention), "mentions");
        assert_eq!(group_of(&NotificationKind::GroupMessage), "chat");
        assert_eq!(group_of(&NotificationKind::Other("x".into())), "system");
    }

    #[test]
    fn pause_labels_and_tomorrow_morning_use_local_time() {
        let cst = UtcOffset::from_hms(8, 0, 0).unwrap();
        // 2026-11-21 10:00 UTC = 18:00 in UTC+8.
        let now = 1_763_719_200_000;
        assert_eq!(local_label(now + 30 * 60 * 1000, now, cst), "18:30");
        assert_eq!(local_label(now + 24 * 3600 * 1000, now, cst), "11-22 18:00");
        let t = tomorrow_morning_ms(now, cst);
        assert_eq!(local_label(t, now, cst), "11-22 08:00");
        assert!(t > now && t - now < 24 * 3600 * 1000);
    }

    #[test]
    fn status_maps_user_pause_and_drops_a_pause_in_the_past() {
        let user: taskbell_core::protocol::User = serde_json::from_value(serde_json::json!({
            "id": 1, "username": "zhangsan", "real_name": "张三", "role": "annotator"
        }))
        .unwrap();
        let now = 1_763_719_200_000;
        let mut s = Status {
            state: State::Connected {
                latency_ms: Some(38),
            },
            paused_until_ms: Some(now + 60_000),
            unread: 2,
            user: Some(user),
            server: "http://127.0.0.1:1".into(),
            keyring: "Memory".into(),
            latency_ms: Some(38),
            reconnects: 0,
        };
        let ui = ui_status(&s, &["a".into()], true, now, UtcOffset::UTC);
        assert_eq!(
            ui.state,
            ConnState::Connected {
                latency_ms: Some(38)
            }
        );
        assert_eq!(ui.paused_label.as_deref(), Some("10:01"));
        assert_eq!(
            ui.user.as_ref().map(|u| u.display_name.as_str()),
            Some("张三")
        );
        assert_eq!(ui.user.as_ref().map(|u| u.role.as_str()), Some("annotator"));
        assert!(ui.demo && ui.summary_lines == ["a"]);
        s.paused_until_ms = Some(now - 1);
        assert_eq!(
            ui_status(&s, &[], false, now, UtcOffset::UTC).paused_until_ms,
            None
        );
    }

    #[test]
    fn settings_round_trip_and_refuse_bad_values_naming_the_field() {
        let c = Config {
            server: Some("http://127.0.0.1:8080".into()),
            ..Config::default()
        };
        let mut s = settings_of(&c);
        assert_eq!(s.language, "system");
        s.heartbeat_interval_secs = 45;
        s.quiet_hours_enabled = true;
        s.quiet_start = "21:30".into();
        s.quiet_end = "07:15".into();
        s.language = "zh-CN".into();
        let c2 = apply_settings(c.clone(), &s).unwrap();
        assert_eq!(settings_of(&c2), s);

        let bad = |f: &dyn Fn(&mut UiSettings)| {
            let mut b = s.clone();
            f(&mut b);
            apply_settings(c.clone(), &b).unwrap_err()
        };
        assert_eq!(
            bad(&|b| b.heartbeat_interval_secs = 2).field.as_deref(),
            Some("heartbeat_interval_secs")
        );
        assert_eq!(
            bad(&|b| b.server = "not a url".into()).field.as_deref(),
            Some("server")
        );
        let insecure = bad(&|b| b.server = "http://label.example.com".into());
        assert_eq!(
            (insecure.kind, insecure.field.as_deref()),
            (ErrorKind::BadUrl, Some("server"))
        );
        assert_eq!(
            bad(&|b| b.quiet_start = "25:00".into()).field.as_deref(),
            Some("quiet_start")
        );
        assert_eq!(
            bad(&|b| b.language = "fr".into()).field.as_deref(),
            Some("language")
        );
    }

    #[test]
    fn sign_in_failures_become_plain_kinds_on_the_right_field() {
        let e = sign_in_error(SignInError::Api(ApiError::Unauthorized("bad".into())));
        assert_eq!(
            (e.kind, e.field.as_deref()),
            (ErrorKind::WrongPassword, Some("password"))
        );
        let e = sign_in_error(SignInError::Api(ApiError::Network("refused".into())));
        assert_eq!(
            (e.kind, e.field.as_deref()),
            (ErrorKind::Unreachable, Some("server"))
        );
        let e = sign_in_error(SignInError::Api(ApiError::Tls("UnknownIssuer".into())));
        assert_eq!(e.kind, ErrorKind::Tls);
        let e = sign_in_error(SignInError::Api(ApiError::RateLimited {
            retry_after: None,
        }));
        assert_eq!(e.kind, ErrorKind::RateLimited);
    }
}
