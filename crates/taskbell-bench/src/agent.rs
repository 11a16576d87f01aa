//! The client under test, in a child process of its own so that it talks to the private
//! session bus (notify-rust reads `DBUS_SESSION_BUS_ADDRESS` from the environment, which a
//! multi-threaded parent must not change).
//!
//! The child (`taskbell-bench agent ...`) runs either the real engine
//! ([`AgentMode::Engine`]: `taskbell_core::supervisor::Engine` with the `DesktopNotifier`, an
//! in-memory keyring holding the token and, with remember-me, the password) or the floor
//! ([`AgentMode::Floor`]: a bare tokio-tungstenite read loop that answers pings and calls
//! `Notify` directly on one persistent D-Bus connection). It prints one JSON line per event on
//! stdout (the engine's `Event` serialisation; the floor prints `connected` and `notification`
//! lines of the same shape). The parent ([`Agent`]) timestamps each line as it arrives.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::Result;

/// What the child runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AgentMode {
    /// The real engine with the desktop notifier.
    Engine,
    /// A bare tokio-tungstenite read loop calling `Notify` directly.
    Floor,
}

/// The child's command line (`taskbell-bench agent ...`). Secrets come in the environment
/// (`TASKBELL_BENCH_TOKEN`, `TASKBELL_BENCH_PASSWORD`), never in argv.
#[derive(Debug, Clone, clap::Args)]
pub struct AgentArgs {
    /// Engine or floor.
    #[arg(long, value_enum)]
    pub mode: AgentMode,
    /// Platform base URL.
    #[arg(long)]
    pub server: String,
    /// The user.
    #[arg(long)]
    pub username: String,
    /// Holds the config and the history database.
    #[arg(long)]
    pub data_dir: PathBuf,
    /// Folding threshold (a large value turns folding off).
    #[arg(long, default_value_t = 3)]
    pub fold_threshold: usize,
    /// Heartbeat interval, seconds.
    #[arg(long, default_value_t = 30)]
    pub heartbeat: u64,
    /// Pong timeout, seconds.
    #[arg(long, default_value_t = 10)]
    pub pong_timeout: u64,
    /// Reconnect backoff base, ms (production: 1000).
    #[arg(long, default_value_t = 1000)]
    pub backoff_base_ms: u64,
    /// Reconnect backoff cap, ms (production: 60000).
    #[arg(long, default_value_t = 60_000)]
    pub backoff_cap_ms: u64,
}

/// Runs the child until killed (or stdin closes).
pub async fn run_agent(args: AgentArgs) -> Result<()> {
    let token = std::env::var("TASKBELL_BENCH_TOKEN").context("TASKBELL_BENCH_TOKEN not set")?;
    let password = std::env::var("TASKBELL_BENCH_PASSWORD").ok();
    // The parent closes our stdin when it goes: then we go too.
    let (stop_tx, mut stop) = watch::channel(false);
    std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
        let _ = stop_tx.send(true);
    });
    match args.mode {
        AgentMode::Engine => run_engine(args, token, password, &mut stop).await,
        AgentMode::Floor => run_floor(args, token, &mut stop).await,
    }
}

fn emit(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

async fn run_engine(
    args: AgentArgs,
    token: String,
    password: Option<String>,
    stop: &mut watch::Receiver<bool>,
) -> Result<()> {
    use taskbell_core::api::SecretToken;
    use taskbell_core::backoff::BackoffPolicy;
    use taskbell_core::config::{Config, Paths};
    use taskbell_core::credentials::Credentials;
    use taskbell_core::i18n::Lang;
    use taskbell_core::notifier::DesktopNotifier;
    use taskbell_core::supervisor::{Command, Engine, EngineOptions, ExitReason};

    let config = Config {
        server: Some(args.server.clone()),
        username: Some(args.username.clone()),
        remember_me: password.is_some(),
        heartbeat_interval_secs: args.heartbeat,
        pong_timeout_secs: args.pong_timeout,
        fold_threshold: args.fold_threshold,
        language: Some(Lang::En),
        ..Config::default()
    };
    let paths = Paths {
        config_dir: args.data_dir.clone(),
        data_dir: args.data_dir.clone(),
    };
    std::fs::create_dir_all(&args.data_dir)?;
    let creds = Credentials::in_memory();
    creds.store_token(&args.server, &args.username, &SecretToken::new(token))?;
    if let Some(p) = &password {
        creds.store_password(&args.server, &args.username, p)?;
    }
    let mut opts = EngineOptions::new(config, paths, Arc::new(DesktopNotifier::new()), creds);
    opts.timing.backoff = BackoffPolicy {
        base: Duration::from_millis(args.backoff_base_ms),
        cap: Duration::from_millis(args.backoff_cap_ms),
        ..BackoffPolicy::default()
    };
    let mut handle = Engine::start(opts)?;
    let mut stopping = false;
    loop {
        tokio::select! {
            ev = handle.events.recv() => match ev {
                Some(ev) => emit(&serde_json::to_string(&ev)?),
                None => break,
            },
            _ = stop.changed(), if !stopping => {
                // Shut down, but keep printing: toasts flushed on the way out are events too.
                stopping = true;
                let _ = handle.commands.send(Command::Shutdown).await;
            }
        }
    }
    let reason = match handle.join.await {
        Ok(r) => r,
        Err(e) => ExitReason::Failed(e.to_string()),
    };
    emit(&json!({"event": "exit", "reason": reason}).to_string());
    Ok(())
}

async fn run_floor(args: AgentArgs, token: String, stop: &mut watch::Receiver<bool>) -> Result<()> {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    // The bus is opened at the first notification, not before: an idle floor holds no
    // D-Bus connection (and no zbus/async-io threads), so the idle figures are a real
    // floor. The latency scenarios warm it with their first notifications.
    let mut bus: Option<zbus::Connection> = None;
    let url = format!(
        "{}/ws/notifications?token={token}",
        args.server.replacen("http", "ws", 1)
    );
    let (ws, _) = tokio_tungstenite::connect_async(url.as_str()).await?;
    let (mut sink, mut stream) = ws.split();
    // The handshake's answer does not mean the server has subscribed this socket yet: it
    // registers it after the upgrade, so a notification published right after the handshake
    // could miss it (and the floor, unlike the engine, has no catch-up). A ping's pong comes
    // from the socket's own task, after registration: only then is the floor connected.
    let ready_ts = 1u64;
    let probe = json!({"type": "ping", "timestamp": ready_ts}).to_string();
    sink.send(Message::text(probe)).await?;
    loop {
        let msg = tokio::select! {
            m = stream.next() => m,
            _ = stop.changed() => return Ok(()),
        };
        let Some(Ok(msg)) = msg else {
            return Err(anyhow!("the socket closed before the first pong"));
        };
        let Message::Text(text) = msg else { continue };
        let Ok(v) = serde_json::from_str::<Value>(text.as_str()) else {
            continue;
        };
        match v["type"].as_str() {
            Some("pong") if v["timestamp"] == ready_ts => break,
            Some("ping") => {
                let pong = json!({"type": "pong", "timestamp": v["timestamp"]}).to_string();
                sink.send(Message::text(pong)).await?;
            }
            _ => {}
        }
    }
    emit(r#"{"event":"connected"}"#);
    let hints: HashMap<&str, zbus::zvariant::Value<'_>> = HashMap::new();
    let actions: Vec<&str> = Vec::new();
    loop {
        let msg = tokio::select! {
            m = stream.next() => m,
            _ = stop.changed() => break,
        };
        let Some(Ok(msg)) = msg else { break };
        let Message::Text(text) = msg else { continue };
        let Ok(v) = serde_json::from_str::<Value>(text.as_str()) else {
            continue;
        };
        match v["type"].as_str() {
            Some("ping") => {
                let pong = json!({"type": "pong", "timestamp": v["timestamp"]}).to_string();
                sink.send(Message::text(pong)).await?;
            }
            Some("pong") => {}
            _ => {
                let title = v["title"].as_str().unwrap_or_default();
                let body = v["content"].as_str().unwrap_or_default();
                let bus = match &bus {
                    Some(b) => b.clone(),
                    None => bus.insert(zbus::Connection::session().await?).clone(),
                };
                bus.call_method(
                    Some("org.freedesktop.Notifications"),
                    "/org/freedesktop/Notifications",
                    Some("org.freedesktop.Notifications"),
                    "Notify",
                    &("floor", 0u32, "", title, body, &actions, &hints, -1i32),
                )
                .await?;
                emit(&json!({"event": "notification", "title": title, "id": v["id"]}).to_string());
            }
        }
    }
    Ok(())
}

/// What to start.
#[derive(Debug, Clone)]
pub struct AgentOptions {
    /// The `taskbell-bench` executable.
    pub exe: PathBuf,
    /// The session bus address for the child.
    pub bus: String,
    /// Engine or floor.
    pub mode: AgentMode,
    /// Platform base URL (the server or a proxy in front of it).
    pub server: String,
    /// The user.
    pub username: String,
    /// Their token.
    pub token: String,
    /// Remember-me: the password, for signing in again when the token is refused.
    pub password: Option<String>,
    /// Folding threshold.
    pub fold_threshold: usize,
    /// Heartbeat interval (s).
    pub heartbeat: u64,
    /// Pong timeout (s).
    pub pong_timeout: u64,
    /// Backoff base and cap (ms).
    pub backoff_ms: (u64, u64),
}

impl AgentOptions {
    /// Production settings for `mode`.
    pub fn new(
        exe: &Path,
        bus: &str,
        mode: AgentMode,
        server: &str,
        username: &str,
        token: &str,
    ) -> Self {
        AgentOptions {
            exe: exe.to_path_buf(),
            bus: bus.to_string(),
            mode,
            server: server.to_string(),
            username: username.to_string(),
            token: token.to_string(),
            password: None,
            fold_threshold: 3,
            heartbeat: 30,
            pong_timeout: 10,
            backoff_ms: (1000, 60_000),
        }
    }
}

/// One line the child printed, with its arrival time.
#[derive(Debug, Clone)]
pub struct Line {
    /// When the parent read it.
    pub at: Instant,
    /// The event (`event` holds its kind).
    pub value: Value,
}

impl Line {
    /// The `event` field.
    pub fn kind(&self) -> &str {
        self.value["event"].as_str().unwrap_or_default()
    }
}

/// The parent's handle on a child agent; kills it on drop.
#[derive(Debug)]
pub struct Agent {
    /// `None` once [`Agent::stop`] has reaped it.
    child: Option<Child>,
    pid: u32,
    lines: Arc<Mutex<Vec<Line>>>,
    count: watch::Sender<usize>,
    /// True once the stdout reader has read everything (end of file).
    eof: watch::Receiver<bool>,
    dir: tempfile::TempDir,
}

impl Agent {
    /// Starts the child in a fresh data directory.
    pub fn spawn(o: &AgentOptions) -> Result<Agent> {
        let dir = tempfile::Builder::new()
            .prefix("taskbell-bench-agent-")
            .tempdir()?;
        let log = std::fs::File::create(dir.path().join("agent.log"))?;
        let mode = match o.mode {
            AgentMode::Engine => "engine",
            AgentMode::Floor => "floor",
        };
        let mut cmd = Command::new(&o.exe);
        cmd.arg("agent")
            .args([
                "--mode",
                mode,
                "--server",
                &o.server,
                "--username",
                &o.username,
            ])
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(["--fold-threshold", &o.fold_threshold.to_string()])
            .args(["--heartbeat", &o.heartbeat.to_string()])
            .args(["--pong-timeout", &o.pong_timeout.to_string()])
            .args(["--backoff-base-ms", &o.backoff_ms.0.to_string()])
            .args(["--backoff-cap-ms", &o.backoff_ms.1.to_string()])
            .env("DBUS_SESSION_BUS_ADDRESS", &o.bus)
            .env("TASKBELL_BENCH_TOKEN", &o.token)
            .env_remove("TASKBELL_BENCH_PASSWORD")
            .env(
                "RUST_LOG",
                std::env::var("TASKBELL_BENCH_AGENT_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log);
        if let Some(p) = &o.password {
            cmd.env("TASKBELL_BENCH_PASSWORD", p);
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {}", o.exe.display()))?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (count, _) = watch::channel(0usize);
        let (eof_tx, eof) = watch::channel(false);
        let (l2, c2) = (lines.clone(), count.clone());
        std::thread::Builder::new()
            .name("agent-stdout".into())
            .spawn(move || {
                // Set when this thread ends, however it ends (even by a panic).
                struct Eof(watch::Sender<bool>);
                impl Drop for Eof {
                    fn drop(&mut self) {
                        self.0.send_replace(true);
                    }
                }
                let _eof = Eof(eof_tx);
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    let at = Instant::now();
                    let value = serde_json::from_str(&line).unwrap_or(Value::String(line));
                    let n = {
                        let mut g = l2.lock().unwrap_or_else(PoisonError::into_inner);
                        g.push(Line { at, value });
                        g.len()
                    };
                    c2.send_replace(n);
                }
            })?;
        Ok(Agent {
            pid: child.id(),
            child: Some(child),
            lines,
            count,
            eof,
            dir,
        })
    }

    /// Whether the child is still running (for failure messages).
    pub fn is_alive(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// The child's pid.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The child's history database (engine mode).
    pub fn history_db(&self) -> PathBuf {
        self.dir.path().join("data").join("history.sqlite3")
    }

    /// The child's stderr so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("agent.log")).unwrap_or_default()
    }

    /// Lines read so far.
    pub fn len(&self) -> usize {
        self.lines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Whether nothing was read yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Lines from index `from` on.
    pub fn since(&self, from: usize) -> Vec<Line> {
        let g = self.lines.lock().unwrap_or_else(PoisonError::into_inner);
        g.get(from..).map(<[Line]>::to_vec).unwrap_or_default()
    }

    /// Waits for the first line at index ≥ `from` matching `pred`; returns its index and line.
    pub async fn wait_for(
        &self,
        from: usize,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&Line) -> bool,
    ) -> Result<(usize, Line)> {
        let mut rx = self.count.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        let mut scanned = from;
        loop {
            {
                let g = self.lines.lock().unwrap_or_else(PoisonError::into_inner);
                for (i, l) in g.iter().enumerate().skip(scanned) {
                    if pred(l) {
                        return Ok((i, l.clone()));
                    }
                }
                scanned = scanned.max(g.len());
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => {}
                _ => {
                    return Err(anyhow!(
                        "agent: no {what} within {timeout:?}; its log:\n{}",
                        tail(&self.log(), 3000)
                    ));
                }
            }
        }
    }

    /// Waits until `cond` holds for all lines read so far.
    pub async fn wait_until(
        &self,
        timeout: Duration,
        what: &str,
        cond: impl Fn(&[Line]) -> bool,
    ) -> Result<()> {
        let mut rx = self.count.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if cond(&self.lines.lock().unwrap_or_else(PoisonError::into_inner)) {
                return Ok(());
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => {}
                _ => {
                    return Err(anyhow!(
                        "agent: no {what} within {timeout:?}; its log:\n{}",
                        tail(&self.log(), 3000)
                    ));
                }
            }
        }
    }

    /// Waits until `n` lines at index ≥ `from` match `pred`; returns the time of the n-th.
    pub async fn wait_count(
        &self,
        from: usize,
        n: usize,
        timeout: Duration,
        pred: impl Fn(&Line) -> bool,
    ) -> Result<Instant> {
        let mut rx = self.count.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        let mut seen = 0;
        let mut scanned = from;
        loop {
            {
                let g = self.lines.lock().unwrap_or_else(PoisonError::into_inner);
                for l in g.iter().skip(scanned) {
                    if pred(l) {
                        seen += 1;
                        if seen >= n {
                            return Ok(l.at);
                        }
                    }
                }
                scanned = scanned.max(g.len());
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => {}
                _ => {
                    return Err(anyhow!(
                        "agent: {seen} of {n} lines within {timeout:?}; its log:\n{}",
                        tail(&self.log(), 3000)
                    ));
                }
            }
        }
    }

    /// Waits until the engine is connected and caught up (or, for the floor, connected).
    pub async fn ready(&self, from: usize, mode: AgentMode) -> Result<usize> {
        let (i, _) = self
            .wait_for(from, Duration::from_secs(60), "connected", |l| {
                l.kind() == "connected"
            })
            .await?;
        if mode == AgentMode::Engine {
            let (j, _) = self
                .wait_for(i, Duration::from_secs(60), "caught_up", |l| {
                    l.kind() == "caught_up"
                })
                .await?;
            return Ok(j + 1);
        }
        Ok(i + 1)
    }

    /// Stops the child and waits until it has exited and every line it printed has been
    /// read: closes its stdin (it shuts down cleanly, printing what it flushes on the way
    /// out), waits for the end of its stdout, then reaps it. A child that has not closed its
    /// stdout within `timeout` is killed, and that is an error (what it would have flushed
    /// is lost). Never blocks the async runtime.
    pub async fn stop(&mut self, timeout: Duration) -> Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        drop(child.stdin.take());
        let mut eof = self.eof.clone();
        let ended = tokio::time::timeout(timeout, eof.wait_for(|e| *e))
            .await
            .is_ok();
        if !ended {
            let _ = child.kill();
        }
        // Its stdout is closed (it is exiting) or it was killed: the wait is short, but it
        // is a blocking call.
        let reaped = tokio::task::spawn_blocking(move || child.wait());
        let status = tokio::time::timeout(timeout, reaped)
            .await
            .map_err(|_| anyhow!("agent {}: not reaped within {timeout:?}", self.pid))?
            .map_err(|e| anyhow!("agent {}: waiting for it failed: {e}", self.pid))??;
        if !ended {
            // Killed: its stdout ends with it.
            let _ = tokio::time::timeout(timeout, eof.wait_for(|e| *e)).await;
            return Err(anyhow!(
                "agent {}: still running {timeout:?} after its stdin closed; killed ({status}); \
                 its log:\n{}",
                self.pid,
                tail(&self.log(), 3000)
            ));
        }
        Ok(())
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn tail(s: &str, max: usize) -> String {
    let start = s.len().saturating_sub(max);
    let start = (start..s.len())
        .find(|i| s.is_char_boundary(*i))
        .unwrap_or(s.len());
    s[start..].to_string()
}
