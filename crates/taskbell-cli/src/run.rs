//! `taskbell run`: the engine in the foreground, its events on the terminal
//! (or as JSON lines), SIGINT/SIGTERM for a clean stop.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use taskbell_core::accounts::{self, Labelled};
use taskbell_core::config::{Config, Paths};
use taskbell_core::credentials::Credentials;
use taskbell_core::i18n::{Lang, Msg, tr};
use taskbell_core::memory;
use taskbell_core::notifier::{DesktopNotifier, LogNotifier, Notifier};
use taskbell_core::sanitize;
use taskbell_core::supervisor::{
    Command, Engine, EngineHandle, EngineOptions, Event, ExitReason, State, Status,
};
use tokio::sync::mpsc;

use crate::account::{has_credentials, open_keyring};
use crate::cli::{EventFormat, RunArgs};
use crate::error::CliError;

/// How long a clean stop may take before we give up waiting (bounds a hang).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Name of the file in the data dir where `run` records its last state.
pub const STATE_FILE: &str = "state.json";

/// What `run` records about itself for `taskbell status` (no secrets).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StateFile {
    /// Process id of the `taskbell run` that wrote it.
    pub pid: u32,
    /// False once that process stopped.
    pub running: bool,
    /// When it was written (ms since the epoch).
    pub updated_at_ms: i64,
    /// The engine status at that time.
    pub status: Status,
}

/// Runs `taskbell run`: every account that is signed in (a token, or a remembered
/// password, in the keyring), each with its own engine.
pub async fn run(paths: Paths, args: &RunArgs) -> Result<(), CliError> {
    let all = accounts::list(&paths)?;
    if all.is_empty() {
        return Err(CliError::NotSignedIn);
    }
    let credentials = open_keyring().await?;
    let several = all.len() > 1;
    let mut runs = Vec::new();
    for account in all {
        let config = account.paths.load_config()?;
        // Refuses http:// or ws:// to a remote host unless allow_insecure.
        config.server_url()?;
        if has_credentials(&credentials, &account).await? {
            runs.push(Run {
                label: several.then(|| account.id.clone()),
                config,
                paths: account.paths,
            });
        } else if several {
            eprintln!(
                "taskbell: {} is signed out; `taskbell login` signs in again",
                account.id
            );
        }
    }
    if runs.is_empty() {
        return Err(CliError::NotSignedIn);
    }
    run_engines(runs, credentials, args.events).await
}

/// One account for [`run_engines`].
#[derive(Debug)]
pub struct Run {
    /// Names the account on every event and toast (`None` with a single account).
    pub label: Option<String>,
    /// Its effective config.
    pub config: Config,
    /// Where its config and data live.
    pub paths: Paths,
}

/// Picks the desktop notifier when a notification daemon answers, else one
/// that only logs (the terminal output still shows every toast). `say_so`: tell
/// the user when there is no daemon (once, not once per account).
async fn pick_notifier(lang: Lang, json: bool, say_so: bool) -> Arc<dyn Notifier> {
    match tokio::task::spawn_blocking(taskbell_core::notifier::probe).await {
        Ok(Ok(info)) => {
            tracing::info!(daemon = %info.name, version = %info.version, "notification daemon found");
            Arc::new(
                DesktopNotifier::new()
                    .with_open_label(tr(lang, Msg::Open))
                    .without_click_wait(),
            )
        }
        Ok(Err(e)) => {
            if !say_so {
                tracing::debug!(error = %e, "notification probe");
            } else if json {
                tracing::warn!("{e}; toasts are printed as events only");
            } else {
                eprintln!(
                    "taskbell: no notification daemon on the session bus; toasts are printed here instead"
                );
                tracing::debug!(error = %e, "notification probe");
            }
            Arc::new(LogNotifier)
        }
        Err(e) => {
            tracing::warn!(error = %e, "notification probe failed; toasts are printed here");
            Arc::new(LogNotifier)
        }
    }
}

/// Runs one engine until SIGINT/SIGTERM (exit 0) or until it stops by itself
/// (signed out, access denied: an error). `taskbell demo`'s one engine.
#[cfg(feature = "demo")]
pub async fn run_engine(
    config: Config,
    paths: Paths,
    credentials: Credentials,
    format: Option<EventFormat>,
) -> Result<(), CliError> {
    let run = Run {
        label: None,
        config,
        paths,
    };
    run_engines(vec![run], credentials, format).await
}

/// What an engine's forwarder reports to the printing loop.
enum Item {
    Event(Event),
    State(Status),
    Ended(ExitReason, Status),
}

/// Hands one engine's events and state changes to the printing loop, then how it
/// ended.
async fn forward(index: usize, mut handle: EngineHandle, tx: mpsc::Sender<(usize, Item)>) {
    let mut state_rx = handle.state.clone();
    state_rx.borrow_and_update();
    let mut state_open = true;
    loop {
        tokio::select! {
            ev = handle.events.recv() => match ev {
                Some(ev) => {
                    if tx.send((index, Item::Event(ev))).await.is_err() {
                        return;
                    }
                }
                None => break,
            },
            changed = state_rx.changed(), if state_open => {
                if changed.is_err() {
                    state_open = false;
                    continue;
                }
                let status = state_rx.borrow_and_update().clone();
                if tx.send((index, Item::State(status))).await.is_err() {
                    return;
                }
            }
        }
    }
    let reason = match (&mut handle.join).await {
        Ok(r) => r,
        Err(e) => ExitReason::Failed(format!("the engine task failed: {e}")),
    };
    let last = state_rx.borrow().clone();
    let _ = tx.send((index, Item::Ended(reason, last))).await;
}

/// Runs one engine per account until SIGINT/SIGTERM (exit 0) or until every engine
/// stopped by itself; one that stops while others run is reported and the rest go on.
pub async fn run_engines(
    runs: Vec<Run>,
    credentials: Credentials,
    format: Option<EventFormat>,
) -> Result<(), CliError> {
    let json = format == Some(EventFormat::Json);
    let lang = runs
        .first()
        .and_then(|r| r.config.language)
        .unwrap_or_else(Lang::from_system);
    let mut out = Printer::new(json);
    let (tx, mut rx) = mpsc::channel::<(usize, Item)>(256);
    let mut commands = Vec::with_capacity(runs.len());
    let mut aborts = Vec::with_capacity(runs.len());
    let mut records = Vec::with_capacity(runs.len());
    let now = tokio::time::Instant::now();
    for (index, run) in runs.iter().enumerate() {
        // A notifier per account: toast actions go back to the engine that showed it.
        let notifier = pick_notifier(lang, json, index == 0).await;
        let shown: Arc<dyn Notifier> = match &run.label {
            Some(label) => Arc::new(Labelled::new(label.clone(), notifier)),
            None => notifier,
        };
        let mut options = EngineOptions::new(
            run.config.clone(),
            run.paths.clone(),
            shown,
            credentials.clone(),
        );
        options.lang = lang;
        let mut handle = Engine::start(options)?;
        let initial = handle.state.borrow_and_update().clone();
        write_state(&run.paths, &initial, true);
        records.push(StateRecord::new(&initial, now));
        out.state(run.label.as_deref(), &initial)?;
        commands.push(handle.commands.clone());
        aborts.push(handle.join.abort_handle());
        tokio::spawn(forward(index, handle, tx.clone()));
    }
    drop(tx);

    let mut stop = StopSignals::install()?;
    let mut stopping = false;
    let mut ended: Vec<Option<(ExitReason, Status)>> = runs.iter().map(|_| None).collect();
    let shutdown_deadline = tokio::time::sleep(Duration::MAX);
    tokio::pin!(shutdown_deadline);
    // Start-up's memory goes back once every engine has been quiet for a while.
    let quiet = memory::Quiet::start();
    loop {
        tokio::select! {
            item = rx.recv() => match item {
                None => break,
                Some((i, Item::Event(ev))) => {
                    if !matches!(ev, Event::Latency { .. }) {
                        quiet.activity();
                    }
                    out.event(runs[i].label.as_deref(), &ev)?;
                }
                Some((i, Item::State(status))) => {
                    if records[i].due(&status, tokio::time::Instant::now()) {
                        write_state(&runs[i].paths, &status, true);
                    }
                    out.state(runs[i].label.as_deref(), &status)?;
                }
                Some((i, Item::Ended(reason, last))) => {
                    write_state(&runs[i].paths, &last, false);
                    let still = ended.iter().filter(|e| e.is_none()).count() > 1;
                    if let (Some(label), true, false) = (&runs[i].label, still, stopping) {
                        if let Some(e) = exit_error(&reason, &last) {
                            eprintln!("taskbell: {label}: {}", sanitize::terminal_line(&e.one_line()));
                        }
                    }
                    ended[i] = Some((reason, last));
                }
            },
            which = stop.recv(), if !stopping => {
                stopping = true;
                tracing::info!("{which}: closing the connections");
                for c in &commands {
                    let _ = c.send(Command::Shutdown).await;
                }
                shutdown_deadline.as_mut().reset(tokio::time::Instant::now() + SHUTDOWN_GRACE);
            }
            () = &mut shutdown_deadline => {
                tracing::warn!("an engine did not stop in time; exiting");
                for a in &aborts {
                    a.abort();
                }
                break;
            }
        }
    }
    out.flush()?;
    if stopping {
        out.stopped()?;
        return Ok(());
    }
    // Every engine ended by itself: the first one's reason is the exit's.
    match ended
        .into_iter()
        .flatten()
        .find_map(|(r, last)| exit_error(&r, &last))
    {
        Some(e) => Err(e),
        None => {
            out.stopped()?;
            Ok(())
        }
    }
}

/// The error an engine's end stands for (`None` for a clean shutdown).
fn exit_error(reason: &ExitReason, last: &Status) -> Option<CliError> {
    match reason {
        ExitReason::Shutdown => None,
        ExitReason::SignedOut => match &last.state {
            State::SignedOut { reason } => Some(CliError::SignedOut(reason.clone())),
            _ => Some(CliError::SignedOut(None)),
        },
        ExitReason::AccessDenied(why) => Some(CliError::AccessDenied(why.clone())),
        ExitReason::Failed(why) => Some(CliError::Failed(why.clone())),
    }
}

/// What stops `taskbell run` cleanly: SIGTERM and SIGINT on Unix; Ctrl-C,
/// Ctrl-Break, closing the console and logging off or shutting down on Windows.
struct StopSignals {
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(windows)]
    ctrl_c: tokio::signal::windows::CtrlC,
    #[cfg(windows)]
    ctrl_break: tokio::signal::windows::CtrlBreak,
    #[cfg(windows)]
    close: tokio::signal::windows::CtrlClose,
    #[cfg(windows)]
    shutdown: tokio::signal::windows::CtrlShutdown,
    #[cfg(windows)]
    logoff: tokio::signal::windows::CtrlLogoff,
}

fn handler_error(e: std::io::Error) -> CliError {
    CliError::Failed(format!("cannot install a signal handler: {e}"))
}

impl StopSignals {
    #[cfg(unix)]
    fn install() -> Result<StopSignals, CliError> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(StopSignals {
            terminate: signal(SignalKind::terminate()).map_err(handler_error)?,
            interrupt: signal(SignalKind::interrupt()).map_err(handler_error)?,
        })
    }

    #[cfg(windows)]
    fn install() -> Result<StopSignals, CliError> {
        use tokio::signal::windows;
        Ok(StopSignals {
            ctrl_c: windows::ctrl_c().map_err(handler_error)?,
            ctrl_break: windows::ctrl_break().map_err(handler_error)?,
            close: windows::ctrl_close().map_err(handler_error)?,
            shutdown: windows::ctrl_shutdown().map_err(handler_error)?,
            logoff: windows::ctrl_logoff().map_err(handler_error)?,
        })
    }

    /// Waits for the next stop request; names it.
    #[cfg(unix)]
    async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.terminate.recv() => "SIGTERM",
            _ = self.interrupt.recv() => "SIGINT",
        }
    }

    /// Waits for the next stop request; names it.
    #[cfg(windows)]
    async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.ctrl_c.recv() => "Ctrl-C",
            _ = self.ctrl_break.recv() => "Ctrl-Break",
            _ = self.close.recv() => "console closed",
            _ = self.shutdown.recv() => "shutdown",
            _ = self.logoff.recv() => "log-off",
        }
    }
}

/// How often `state.json` follows a change of the heartbeat latency alone.
const LATENCY_RECORD_EVERY: Duration = Duration::from_secs(300);

/// Decides when `state.json` is written: at once for anything `taskbell status`
/// shows but the latency (state, user, unread, pause, reconnects), and for the
/// latency at most every [`LATENCY_RECORD_EVERY`]. Writing on every pong cost a
/// file write and an fsync every heartbeat (issue 13).
#[derive(Debug)]
struct StateRecord {
    last: Status,
    at: tokio::time::Instant,
}

impl StateRecord {
    fn new(status: &Status, now: tokio::time::Instant) -> StateRecord {
        StateRecord {
            last: status.clone(),
            at: now,
        }
    }

    /// Whether `status` must be written now; if so, remembers it as written.
    fn due(&mut self, status: &Status, now: tokio::time::Instant) -> bool {
        let without_latency = |s: &Status| {
            let mut s = s.clone();
            s.latency_ms = None;
            if let State::Connected { latency_ms } = &mut s.state {
                *latency_ms = None;
            }
            s
        };
        let changed = without_latency(status) != without_latency(&self.last);
        let latency_stale = status.latency_ms != self.last.latency_ms
            && now.saturating_duration_since(self.at) >= LATENCY_RECORD_EVERY;
        if changed || latency_stale {
            self.last = status.clone();
            self.at = now;
            true
        } else {
            false
        }
    }
}

/// Records the engine status in `<data_dir>/state.json` (atomically; a
/// failure is only logged: it must never stop the daemon).
fn write_state(paths: &Paths, status: &Status, running: bool) {
    let file = StateFile {
        pid: std::process::id(),
        running,
        updated_at_ms: now_ms(),
        status: status.clone(),
    };
    let result = serde_json::to_vec_pretty(&file)
        .map_err(|e| e.to_string())
        .and_then(|bytes| {
            std::fs::create_dir_all(&paths.data_dir).map_err(|e| e.to_string())?;
            taskbell_core::config::write_atomic(&paths.data_dir.join(STATE_FILE), &bytes)
                .map_err(|e| e.to_string())
        });
    if let Err(e) = result {
        tracing::debug!(error = %e, "cannot record the state for `taskbell status`");
    }
}

/// Reads what the last `taskbell run` recorded, if anything.
pub fn read_state(paths: &Paths) -> Option<StateFile> {
    let bytes = std::fs::read(paths.data_dir.join(STATE_FILE)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// One state as a short phrase.
pub fn describe_state(state: &State) -> String {
    match state {
        State::SignedOut { reason: None } => "signed out".into(),
        State::SignedOut { reason: Some(r) } => format!("signed out ({r})"),
        State::Connecting => "connecting".into(),
        State::Connected {
            latency_ms: Some(ms),
        } => format!("connected, latency {ms} ms"),
        State::Connected { latency_ms: None } => "connected".into(),
        State::Reconnecting { in_secs, reason } => {
            format!("reconnecting in {in_secs} s ({reason})")
        }
        State::Offline { reason } => format!("offline ({reason})"),
    }
}

/// Writes events to stdout: JSON lines, or lines for a human. With several
/// accounts each line names its account (`"account"` in JSON, `[id]` for people).
struct Printer {
    json: bool,
    last_state: std::collections::HashMap<Option<String>, State>,
    /// `[account] ` in front of the lines of the event being printed.
    prefix: String,
    stdout: std::io::Stdout,
}

#[derive(Serialize)]
struct StateEvent<'a> {
    event: &'static str,
    #[serde(flatten)]
    status: &'a Status,
}

impl Printer {
    fn new(json: bool) -> Printer {
        Printer {
            json,
            last_state: std::collections::HashMap::new(),
            prefix: String::new(),
            stdout: std::io::stdout(),
        }
    }

    /// One or more lines for a human; control characters escaped (titles and
    /// reasons are other people's text), newlines kept.
    fn line(&mut self, text: &str) -> Result<(), CliError> {
        let text = format!("{}{}", self.prefix, sanitize::terminal_text(text));
        self.raw(&text)
    }

    fn raw(&mut self, text: &str) -> Result<(), CliError> {
        let mut lock = self.stdout.lock();
        writeln!(lock, "{text}")?;
        lock.flush()?;
        Ok(())
    }

    /// One JSON object per line; `account` added when there are several.
    fn json_line(&mut self, account: Option<&str>, value: &impl Serialize) -> Result<(), CliError> {
        let mut value = serde_json::to_value(value)
            .map_err(|e| CliError::Failed(format!("cannot encode an event: {e}")))?;
        if let (Some(account), Some(obj)) = (account, value.as_object_mut()) {
            obj.insert("account".into(), serde_json::Value::from(account));
        }
        let text = serde_json::to_string(&value)
            .map_err(|e| CliError::Failed(format!("cannot encode an event: {e}")))?;
        self.raw(&sanitize::json_line(&text))
    }

    /// A state change (only when the state itself changed, not every latency tick).
    fn state(&mut self, account: Option<&str>, status: &Status) -> Result<(), CliError> {
        let key = account.map(str::to_string);
        let last = self.last_state.get(&key);
        let same_kind = last
            .is_some_and(|s| std::mem::discriminant(s) == std::mem::discriminant(&status.state));
        let changed = last != Some(&status.state);
        self.last_state.insert(key, status.state.clone());
        if !changed || (same_kind && matches!(status.state, State::Connected { .. })) {
            return Ok(());
        }
        if self.json {
            self.json_line(
                account,
                &StateEvent {
                    event: "state",
                    status,
                },
            )
        } else {
            tracing::info!(account, state = %describe_state(&status.state), "state");
            Ok(())
        }
    }

    fn event(&mut self, account: Option<&str>, ev: &Event) -> Result<(), CliError> {
        if self.json {
            log_event(ev);
            return self.json_line(account, ev);
        }
        self.prefix = account.map(|a| format!("[{a}] ")).unwrap_or_default();
        match ev {
            Event::Toast(t) => {
                let body = unescape_markup(&t.body).replace('\n', "\n   ");
                let mark = if t.urgency == taskbell_core::delivery::Urgency::Critical {
                    "❗"
                } else {
                    "🔔"
                };
                self.line(&format!(
                    "{mark} {}\n   {body}",
                    sanitize::terminal_line(&t.title)
                ))
            }
            Event::Summary(s) if s.unavailable => {
                self.line("(the login summary is unavailable; live notifications still work)")
            }
            // `ShowFolded` needs a center; `run` has none and never asks for it.
            Event::Summary(_)
            | Event::Notification(_)
            | Event::Latency { .. }
            | Event::ShowFolded { .. } => Ok(()),
            Event::Connected => self.line("· connected"),
            Event::Reconnecting {
                reason,
                delay_ms,
                attempt,
            } => self.line(&format!(
                "· connection lost ({reason}); reconnecting in {:.1} s (attempt {attempt})",
                *delay_ms as f64 / 1000.0
            )),
            Event::CaughtUp { new, .. } if *new > 0 => {
                self.line(&format!("· caught up on {new} missed notification(s)"))
            }
            Event::CaughtUp { .. } => Ok(()),
            Event::SignedOut { reason } => self.line(&format!(
                "· signed out{}",
                reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            )),
            Event::Error { message } => {
                eprintln!("taskbell: {}", sanitize::terminal_line(message));
                Ok(())
            }
        }
    }

    fn stopped(&mut self) -> Result<(), CliError> {
        self.prefix.clear();
        if self.json {
            self.json_line(None, &serde_json::json!({"event": "stopped"}))
        } else {
            self.line("· stopped")
        }
    }

    fn flush(&mut self) -> Result<(), CliError> {
        self.stdout.lock().flush()?;
        Ok(())
    }
}

/// Human log lines on stderr for `--events json`.
fn log_event(ev: &Event) {
    match ev {
        Event::Toast(t) => tracing::info!(title = %t.title, urgency = ?t.urgency, "toast"),
        Event::Notification(n) => tracing::info!(kind = ?n.kind, title = %n.title, "notification"),
        Event::Summary(s) => tracing::info!(unavailable = s.unavailable, "login summary"),
        Event::Latency { ms } => tracing::debug!(ms, "latency"),
        Event::Reconnecting {
            reason,
            delay_ms,
            attempt,
        } => {
            tracing::info!(%reason, delay_ms, attempt, "reconnecting")
        }
        Event::Connected => tracing::info!("connected"),
        Event::CaughtUp { fetched, new, .. } => tracing::info!(fetched, new, "caught up"),
        Event::SignedOut { reason } => tracing::warn!(?reason, "signed out"),
        Event::Error { message } => tracing::warn!("{message}"),
        Event::ShowFolded { keys } => tracing::debug!(keys = keys.len(), "show folded"),
    }
}

/// Undoes the markup escaping toasts carry for notification daemons.
fn unescape_markup(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(state: State, latency: Option<u64>, unread: u64) -> Status {
        Status {
            state,
            paused_until_ms: None,
            unread,
            user: None,
            server: "http://127.0.0.1:1".into(),
            keyring: "test".into(),
            latency_ms: latency,
            reconnects: 0,
        }
    }

    #[test]
    fn state_json_follows_changes_at_once_and_latency_only_now_and_then() {
        let t0 = tokio::time::Instant::now();
        let up = |ms| State::Connected {
            latency_ms: Some(ms),
        };
        let mut r = StateRecord::new(&status(up(3), Some(3), 0), t0);
        // Every pong changes the latency: no write for a heartbeat's worth of them.
        for i in 1..=9u64 {
            let at = t0 + Duration::from_secs(30 * i);
            assert!(!r.due(&status(up(3 + i), Some(3 + i), 0), at), "pong {i}");
        }
        // Anything `taskbell status` shows besides the latency: written at once.
        let t1 = t0 + Duration::from_secs(271);
        assert!(r.due(&status(up(9), Some(9), 1), t1), "unread changed");
        assert!(r.due(
            &status(State::Connecting, None, 1),
            t1 + Duration::from_secs(1)
        ));
        assert!(!r.due(
            &status(State::Connecting, None, 1),
            t1 + Duration::from_secs(2)
        ));
        // The latency alone, once the period has passed.
        let mut r = StateRecord::new(&status(up(3), Some(3), 0), t0);
        assert!(r.due(&status(up(4), Some(4), 0), t0 + LATENCY_RECORD_EVERY));
    }

    #[test]
    fn markup_is_unescaped_for_the_terminal() {
        assert_eq!(unescape_markup("a &lt;b&gt; &amp;amp; c"), "a <b> &amp; c");
    }

    #[test]
    fn states_read_well() {
        assert_eq!(
            describe_state(&State::Connected {
                latency_ms: Some(3)
            }),
            "connected, latency 3 ms"
        );
        assert_eq!(
            describe_state(&State::Reconnecting {
                in_secs: 2,
                reason: "closed".into()
            }),
            "reconnecting in 2 s (closed)"
        );
        assert_eq!(
            describe_state(&State::SignedOut { reason: None }),
            "signed out"
        );
    }
}
