//! The fleet: thousands of engines (the core library, one process) against one server instance
//! and against two instances sharing Redis. Connect time, and the fan-out latency of a role
//! broadcast (publishing request → each client's notifier called).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use futures_util::StreamExt;
use taskbell_core::api::SecretToken;
use taskbell_core::config::{Config, Paths};
use taskbell_core::credentials::Credentials;
use taskbell_core::delivery::Toast;
use taskbell_core::i18n::Lang;
use taskbell_core::notifier::{Notifier, NotifyError};
use taskbell_core::supervisor::{Engine, EngineHandle, EngineOptions, Event};
use taskbell_server::{DataFile, ServerConfig};
use tokio::sync::watch;

use crate::Result;
use crate::platform::Platform;
use crate::procfs;
use crate::stats::{Percentiles, Report, fmt_duration, fmt_kib};

/// Broadcast rounds per set-up.
const ROUNDS: usize = 5;

/// Records when each client's notifier was asked to show a toast with a given title.
#[derive(Debug, Clone)]
struct Arrivals {
    log: Arc<Mutex<Vec<(String, Instant)>>>,
    count: watch::Sender<usize>,
}

impl Arrivals {
    fn new() -> Arrivals {
        Arrivals {
            log: Arc::new(Mutex::new(Vec::new())),
            count: watch::channel(0).0,
        }
    }

    fn with_title(&self, title: &str) -> Vec<Instant> {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|(t, _)| t == title)
            .map(|(_, at)| *at)
            .collect()
    }

    async fn wait_title(&self, title: &str, n: usize, timeout: Duration) -> Result<Vec<Instant>> {
        let mut rx = self.count.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let got = self.with_title(title);
            if got.len() >= n {
                return Ok(got);
            }
            if tokio::time::timeout_at(deadline, rx.changed())
                .await
                .is_err()
            {
                return Err(anyhow!(
                    "{} of {n} clients got {title:?} within {timeout:?}",
                    got.len()
                ));
            }
        }
    }
}

struct FleetNotifier(Arrivals);

impl Notifier for FleetNotifier {
    fn show(&self, toast: &Toast) -> Result<(), NotifyError> {
        let at = Instant::now();
        let n = {
            let mut g = self.0.log.lock().unwrap_or_else(PoisonError::into_inner);
            g.push((toast.title.clone(), at));
            g.len()
        };
        self.0.count.send_replace(n);
        Ok(())
    }
}

/// `clients` annotators `f0`, `f1`, … (one shared argon2 hash: tokens come from the test
/// control, nobody logs in with a password).
fn fleet_data(clients: usize) -> Result<DataFile> {
    use argon2::password_hash::PasswordHasher;
    let hash = argon2::Argon2::default()
        .hash_password(b"fleet-password")
        .map_err(|e| anyhow!("hashing: {e}"))?
        .to_string();
    let users: Vec<serde_json::Value> = (0..clients)
        .map(|i| {
            serde_json::json!({"id": format!("f{i}"), "username": format!("f{i}"),
                               "role": "annotator", "password_hash": hash})
        })
        .collect();
    Ok(serde_json::from_value(serde_json::json!({"users": users}))?)
}

async fn run(servers: &[&Platform], clients: usize, label: &str, r: &mut Report) -> Result<()> {
    let dir = tempfile::Builder::new()
        .prefix("taskbell-fleet-")
        .tempdir()?;
    // Tokens (test control, no argon2), 32 requests in flight.
    let tokens: Vec<Result<(String, String)>> = futures_util::stream::iter(0..clients)
        .map(|i| async move { servers[i % servers.len()].token(&format!("f{i}")).await })
        .buffered(32)
        .collect()
        .await;
    let arrivals = Arrivals::new();
    let (conn_tx, _) = watch::channel(0usize);
    let connected: Arc<Mutex<Vec<Instant>>> = Arc::new(Mutex::new(Vec::new()));
    let mut handles: Vec<tokio::sync::mpsc::Sender<taskbell_core::supervisor::Command>> =
        Vec::new();
    let mut joins = Vec::new();
    let t_start = Instant::now();
    for (i, tok) in tokens.into_iter().enumerate() {
        let (token, _) = tok.with_context(|| format!("token for f{i}"))?;
        let server = servers[i % servers.len()].base_url();
        let username = format!("f{i}");
        let config = Config {
            server: Some(server.clone()),
            username: Some(username.clone()),
            fold_threshold: 1_000_000,
            language: Some(Lang::En),
            ..Config::default()
        };
        let data = dir.path().join(i.to_string());
        let paths = Paths {
            config_dir: data.clone(),
            data_dir: data,
        };
        std::fs::create_dir_all(&paths.data_dir)?;
        let creds = Credentials::in_memory();
        creds.store_token(&server, &username, &SecretToken::new(token))?;
        let opts = EngineOptions::new(
            config,
            paths,
            Arc::new(FleetNotifier(arrivals.clone())),
            creds,
        );
        let EngineHandle {
            mut events,
            commands,
            join,
            ..
        } = Engine::start(opts).with_context(|| format!("engine f{i}"))?;
        handles.push(commands);
        joins.push(join);
        let (connected, conn_tx) = (connected.clone(), conn_tx.clone());
        tokio::spawn(async move {
            let mut first = true;
            while let Some(ev) = events.recv().await {
                if first && matches!(ev, Event::CaughtUp { .. }) {
                    first = false;
                    let n = {
                        let mut g = connected.lock().unwrap_or_else(PoisonError::into_inner);
                        g.push(Instant::now());
                        g.len()
                    };
                    conn_tx.send_replace(n);
                }
            }
        });
    }
    let mut rx = conn_tx.subscribe();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
    while *rx.borrow_and_update() < clients {
        if tokio::time::timeout_at(deadline, rx.changed())
            .await
            .is_err()
        {
            return Err(anyhow!(
                "only {} of {clients} clients connected within 600 s",
                *rx.borrow()
            ));
        }
    }
    let times: Vec<Duration> = connected
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .map(|t| t.saturating_duration_since(t_start))
        .collect();
    let all_in = times.iter().max().copied().unwrap_or_default();
    let pc = Percentiles::of(&times).ok_or_else(|| anyhow!("no samples"))?;
    let sockets: usize = servers.iter().map(|s| s.socket_count()).sum();
    // Let the login summaries pass (welcome toasts, then urgent ones 3 s later).
    tokio::time::sleep(Duration::from_secs(4)).await;

    let mut lat = Vec::new();
    for k in 0..ROUNDS {
        let title = format!("fan-{k}");
        let t0 = Instant::now();
        servers[0].notify_role("annotator", &title).await?;
        let got = arrivals
            .wait_title(&title, clients, Duration::from_secs(300))
            .await?;
        lat.extend(got.iter().map(|a| a.saturating_duration_since(t0)));
    }
    let pf = Percentiles::of(&lat).ok_or_else(|| anyhow!("no samples"))?;
    let me = procfs::sample(std::process::id())?;
    let s = format!("fleet, {label}");
    r.row(
        &s,
        format!("{clients} clients connected and caught up"),
        format!("all in {} (each: {})", fmt_duration(all_in), pc.short()),
        "—",
    );
    r.row(
        &s,
        "sockets open on the server(s)",
        sockets.to_string(),
        clients.to_string(),
    );
    r.row(
        &s,
        format!("role broadcast fan-out ({ROUNDS} rounds × {clients})"),
        pf.short(),
        "—",
    );
    r.row(
        &s,
        "RSS of the process (clients + servers)",
        fmt_kib(me.rss_kib),
        "—",
    );
    // Stop every engine (dropping the command senders is a shutdown), bounded.
    drop(handles);
    let _ = tokio::time::timeout(
        Duration::from_secs(120),
        futures_util::future::join_all(joins),
    )
    .await;
    Ok(())
}

/// The fleet figures: one instance, then two instances on Redis.
pub async fn fleet(clients: usize) -> Result<Report> {
    eprintln!("== fleet ({clients} clients)");
    let mut r = Report::default();
    let nofile = procfs::raise_nofile().context("raising RLIMIT_NOFILE")?;
    r.note(format!(
        "fleet: RLIMIT_NOFILE raised to {nofile}; clients, servers and Redis on one machine"
    ));
    let data = fleet_data(clients)?;
    {
        let p = Platform::start(ServerConfig {
            data: Some(data.clone()),
            ..ServerConfig::default()
        })
        .await?;
        run(&[&p], clients, "one instance", &mut r).await?;
    }
    let redis = tokio::task::spawn_blocking(taskbell_testkit::Redis::start).await??;
    let a = Platform::start(ServerConfig {
        data: Some(data.clone()),
        redis_url: Some(redis.url()),
        ..ServerConfig::default()
    })
    .await?;
    let b = Platform::start(ServerConfig {
        data: Some(data),
        redis_url: Some(redis.url()),
        ..ServerConfig::default()
    })
    .await?;
    run(&[&a, &b], clients, "two instances on Redis", &mut r).await?;
    Ok(r)
}
