//! The fault stream: notifications published one after another while faults hit the engine —
//! server killed and restarted (Redis keeps history and the signing secret), the connection
//! black-holed, the token revoked with remember-me on — then a check that every notification
//! was shown exactly once and stored exactly once. Used by the fault harness
//! (`tests/faults.rs`) and by `taskbell-bench soak`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::anyhow;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use taskbell_core::history::{History, Query};
use taskbell_server::DEMO_ANNOTATOR;
use taskbell_testkit::{Proxy, Redis};

use crate::Result;
use crate::agent::{Agent, AgentMode, Line};
use crate::platform::Platform;
use crate::procfs;
use crate::scenarios::{Bench, ready_agent};
use crate::stats::{fmt_duration, fmt_kib};

/// One fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The server process dies (sockets cut, no close frame) and comes back after this long.
    Restart(Duration),
    /// Bytes stop flowing both ways until the engine notices and reconnects.
    BlackHole,
    /// Every token of the user is revoked (4001); the engine signs in again with the
    /// remembered password.
    Revoke,
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Notifications to publish.
    pub notifications: usize,
    /// Faults, by the index of the notification they come before.
    pub faults: Vec<(usize, Fault)>,
    /// Pause between notifications (`None`: as fast as the server takes them).
    pub pace: Option<Duration>,
    /// Short heartbeat (1 s + 3 s) and backoff (100 ms .. 2 s) instead of production values.
    pub fast_timing: bool,
    /// Print RSS every this many notifications.
    pub rss_every: Option<usize>,
    /// The seed the faults were drawn with (printed).
    pub seed: u64,
    /// Print each fault with its time (for post-mortems).
    pub log_faults: bool,
    /// Before each fault, wait until the engine has caught up after the previous one.
    pub settle: bool,
}

impl Plan {
    /// `faults` random faults at random positions among `notifications`, from `seed`.
    pub fn random(notifications: usize, faults: usize, seed: u64) -> Plan {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut list: Vec<(usize, Fault)> = (0..faults)
            .map(|_| {
                let at = rng.random_range(0..notifications.max(1));
                let fault = match rng.random_range(0..3u8) {
                    0 => Fault::Restart(Duration::from_millis(rng.random_range(100..1500u64))),
                    1 => Fault::BlackHole,
                    _ => Fault::Revoke,
                };
                (at, fault)
            })
            .collect();
        list.sort_by_key(|(at, _)| *at);
        Plan {
            notifications,
            faults: list,
            pace: None,
            fast_timing: true,
            rss_every: None,
            seed,
            log_faults: true,
            settle: true,
        }
    }

    /// The soak run: one notification a second for `minutes`, a fault every 5 minutes (in
    /// turn restart after 5 s, black hole, revocation), production timings.
    pub fn soak(minutes: u64, seed: u64) -> Plan {
        let n = usize::try_from(minutes * 60).unwrap_or(usize::MAX);
        let kinds = [
            Fault::Restart(Duration::from_secs(5)),
            Fault::BlackHole,
            Fault::Revoke,
        ];
        let faults = (1..)
            .map(|k| k * 300)
            .take_while(|at| *at < n)
            .enumerate()
            .map(|(i, at)| (at, kinds[i % kinds.len()]))
            .collect();
        Plan {
            notifications: n,
            faults,
            pace: Some(Duration::from_secs(1)),
            fast_timing: false,
            rss_every: Some(60),
            seed,
            log_faults: true,
            settle: true,
        }
    }
}

/// What came out.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Notifications published.
    pub published: usize,
    /// Faults applied, by kind.
    pub faults: HashMap<&'static str, usize>,
    /// Distinct notifications the engine announced.
    pub announced: usize,
    /// Toasts the engine handed to the notifier / `Notify` calls our daemon got from it.
    pub toasts: usize,
    /// `Notify` calls from the engine.
    pub notify_calls: usize,
    /// Rows in the engine's history.
    pub history_rows: usize,
    /// RSS samples: (elapsed, KiB).
    pub rss: Vec<(Duration, u64)>,
    /// Everything that broke "exactly once" (empty when all is well).
    pub problems: Vec<String>,
    /// Indices of notifications never announced, as ranges ("184-232").
    pub missing: Vec<String>,
    /// Where the engine's events were written when something broke.
    pub events_file: Option<PathBuf>,
    /// How long it took.
    pub elapsed: Duration,
}

impl Outcome {
    /// A few lines for humans.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "published {}, faults {:?}, announced {}, toasts {} (Notify calls {}), history rows {}, took {}\n",
            self.published,
            self.faults,
            self.announced,
            self.toasts,
            self.notify_calls,
            self.history_rows,
            fmt_duration(self.elapsed)
        );
        for (t, kib) in &self.rss {
            s.push_str(&format!(
                "  rss at {:>6.1} min: {}\n",
                t.as_secs_f64() / 60.0,
                fmt_kib(*kib)
            ));
        }
        if self.problems.is_empty() {
            s.push_str("every notification shown exactly once and stored exactly once\n");
        } else {
            s.push_str(&format!("never announced: {}\n", self.missing.join(", ")));
            if let Some(f) = &self.events_file {
                s.push_str(&format!("the engine's events: {}\n", f.display()));
            }
            s.push_str(&format!("{} PROBLEMS:\n", self.problems.len()));
            for p in self.problems.iter().take(50) {
                s.push_str(&format!("  {p}\n"));
            }
        }
        s
    }
}

const TITLE: &str = "fs-";

fn last_state(agent: &Agent) -> Option<String> {
    agent
        .since(0)
        .iter()
        .rev()
        .map(Line::kind)
        .find(|k| matches!(*k, "connected" | "reconnecting"))
        .map(str::to_string)
}

async fn wait_connected(agent: &Agent) -> Result<()> {
    if last_state(agent).as_deref() == Some("connected") {
        return Ok(());
    }
    let from = agent.len();
    // Re-check after taking the mark: it may have connected in between.
    if last_state(agent).as_deref() == Some("connected") {
        return Ok(());
    }
    agent
        .wait_for(from, Duration::from_secs(300), "connected", |l| {
            l.kind() == "connected"
        })
        .await
        .map(|_| ())
}

/// Waits until the engine's last connection event is a finished catch-up: it is connected
/// and has everything the server kept.
async fn wait_caught_up(agent: &Agent) -> Result<()> {
    agent
        .wait_until(
            Duration::from_secs(300),
            "caught_up after the last reconnect",
            |lines| {
                lines
                    .iter()
                    .rev()
                    .map(Line::kind)
                    .find(|k| matches!(*k, "connected" | "reconnecting" | "caught_up"))
                    == Some("caught_up")
            },
        )
        .await
}

/// Runs `plan` against an engine agent on `bench`'s bus.
pub async fn run(bench: &Bench, plan: &Plan) -> Result<Outcome> {
    eprintln!(
        "fault stream: {} notifications, {} faults, seed {} (set TASKBELL_FAULT_SEED={} to repeat)",
        plan.notifications,
        plan.faults.len(),
        plan.seed,
        plan.seed
    );
    let started = Instant::now();
    let redis = tokio::task::spawn_blocking(Redis::start).await??;
    let mut p = Platform::demo(Some(redis.url())).await?;
    let proxy = Proxy::start(p.addr()).await?;
    let (tok, uid) = p.token(DEMO_ANNOTATOR.username).await?;
    let mut o = bench.agent(
        AgentMode::Engine,
        &proxy.base_url(),
        DEMO_ANNOTATOR.username,
        &tok,
    );
    o.password = Some(DEMO_ANNOTATOR.password.to_string());
    if plan.fast_timing {
        o.heartbeat = 1;
        // Not 1 s: a loaded machine may hold a pong back that long on a healthy path, and a
        // spurious "dead" reconnect is not a fault of the plan.
        o.pong_timeout = 3;
        o.backoff_ms = (100, 2000);
    }
    let calls_before = bench.calls().len();
    let (mut agent, _) = ready_agent(&o).await?;
    let mut out = Outcome::default();
    let mut faults = plan.faults.iter().peekable();
    for i in 0..plan.notifications {
        while let Some((_, fault)) = faults.next_if(|(at, _)| *at <= i) {
            // Faults come no faster than the engine recovers from them: the server keeps a
            // capped history (1,000 per user), so a client that never gets to finish a catch-up
            // while the stream runs on would lose the oldest (see docs/benchmarks.md).
            if plan.settle {
                wait_caught_up(&agent).await?;
            }
            if plan.log_faults {
                eprintln!(
                    "  {:8.3} s: {fault:?} before {TITLE}{i}",
                    started.elapsed().as_secs_f64()
                );
            }
            match fault {
                Fault::Restart(outage) => {
                    p.kill();
                    tokio::time::sleep(*outage).await;
                    p.restart().await?;
                    *out.faults.entry("restart").or_default() += 1;
                }
                Fault::BlackHole => {
                    wait_connected(&agent).await?;
                    let mark = agent.len();
                    proxy.black_hole();
                    agent
                        .wait_for(
                            mark,
                            Duration::from_secs(300),
                            "reconnecting after a black hole",
                            |l| l.kind() == "reconnecting",
                        )
                        .await?;
                    proxy.heal();
                    *out.faults.entry("black_hole").or_default() += 1;
                }
                Fault::Revoke => {
                    wait_connected(&agent).await?;
                    let mark = agent.len();
                    p.revoke(&uid).await?;
                    // 4001 → signed in again with the remembered password → a new connection
                    // (a 4001 emits no `reconnecting`, so wait for the `connected`).
                    agent
                        .wait_for(
                            mark,
                            Duration::from_secs(300),
                            "connected after a revocation",
                            |l| l.kind() == "connected",
                        )
                        .await?;
                    *out.faults.entry("revoke").or_default() += 1;
                }
            }
        }
        p.notify_user(&uid, &format!("{TITLE}{i}"), 1).await?;
        out.published += 1;
        tracing::debug!(i, at = started.elapsed().as_secs_f64(), "published");
        if let Some(every) = plan.rss_every {
            if i % every == 0 {
                let s = procfs::sample(agent.pid())?;
                eprintln!(
                    "  {:>6.1} min: {i} published, engine RSS {}",
                    started.elapsed().as_secs_f64() / 60.0,
                    fmt_kib(s.rss_kib)
                );
                out.rss.push((started.elapsed(), s.rss_kib));
            }
        }
        if let Some(pace) = plan.pace {
            tokio::time::sleep(pace).await;
        }
    }
    // Everything published: wait until the engine has announced all of them.
    let n = plan.notifications;
    let waited = agent
        .wait_count(0, n, Duration::from_secs(600), |l| {
            l.kind() == "notification"
                && l.value["title"]
                    .as_str()
                    .is_some_and(|t| t.starts_with(TITLE))
        })
        .await;
    if let Err(e) = waited {
        out.problems
            .push(format!("not every notification arrived: {e}"));
    }
    let rss = procfs::sample(agent.pid())?;
    out.rss.push((started.elapsed(), rss.rss_kib));
    let db: PathBuf = agent.history_db();
    // Folds still held are flushed when the engine shuts down: stop it, and count only once
    // it has exited (its toast worker hands every toast over before that, each `Notify`
    // call answered) and every line it printed has been read.
    if let Err(e) = agent.stop(Duration::from_secs(120)).await {
        out.problems
            .push(format!("the agent did not stop cleanly: {e}"));
    }
    let lines = agent.since(0);
    check(&mut out, &lines, n);
    out.notify_calls = bench
        .calls()
        .since(calls_before)
        .iter()
        .filter(|c| c.app == "TaskBell")
        .count();
    if out.notify_calls != out.toasts {
        out.problems.push(format!(
            "{} toasts were handed to the notifier but the daemon got {} Notify calls",
            out.toasts, out.notify_calls
        ));
    }
    let rows = tokio::task::spawn_blocking(move || -> Result<Vec<String>> {
        let h = History::open(&db)?;
        let q = Query {
            limit: 1_000_000,
            ..Query::default()
        };
        Ok(h.list(&q)?
            .into_iter()
            .map(|r| r.notification.title)
            .collect())
    })
    .await??;
    out.history_rows = rows.len();
    let mut per_title: HashMap<String, usize> = HashMap::new();
    for t in rows {
        *per_title.entry(t).or_default() += 1;
    }
    for i in 0..n {
        let t = format!("{TITLE}{i}");
        match per_title.get(&t).copied().unwrap_or(0) {
            1 => {}
            k => out
                .problems
                .push(format!("{t} is in the history {k} times")),
        }
    }
    if out.history_rows != n {
        out.problems.push(format!(
            "{} history rows for {n} notifications",
            out.history_rows
        ));
    }
    out.elapsed = started.elapsed();
    if !out.problems.is_empty() {
        let path = std::env::temp_dir().join(format!("taskbell-fault-events-{}.jsonl", plan.seed));
        let text: String = lines
            .iter()
            .map(|l| {
                format!(
                    "{:.3} {}\n",
                    l.at.duration_since(started).as_secs_f64(),
                    l.value
                )
            })
            .collect();
        if std::fs::write(&path, text).is_ok() {
            out.events_file = Some(path);
        }
        let log = std::env::temp_dir().join(format!("taskbell-fault-agent-{}.log", plan.seed));
        let _ = std::fs::write(&log, agent.log());
    }
    drop(agent);
    drop(proxy);
    drop(p);
    drop(redis);
    Ok(out)
}

/// Checks the engine's events: each notification announced once, each key in exactly one
/// toast.
fn check(out: &mut Outcome, lines: &[Line], n: usize) {
    let mut titles: HashMap<String, usize> = HashMap::new();
    let mut key_title: HashMap<String, String> = HashMap::new();
    let mut shown: HashMap<String, usize> = HashMap::new();
    for l in lines {
        match l.kind() {
            "notification" => {
                let title = l.value["title"].as_str().unwrap_or_default().to_string();
                if let Some(k) = l.value["key"].as_str() {
                    key_title.insert(k.to_string(), title.clone());
                }
                *titles.entry(title).or_default() += 1;
            }
            "toast" => {
                out.toasts += 1;
                if let Some(keys) = l.value["keys"].as_array() {
                    for k in keys.iter().filter_map(|k| k.as_str()) {
                        *shown.entry(k.to_string()).or_default() += 1;
                    }
                }
            }
            _ => {}
        }
    }
    out.announced = titles.keys().filter(|t| t.starts_with(TITLE)).count();
    let mut run: Option<(usize, usize)> = None;
    for i in 0..n {
        if titles.contains_key(&format!("{TITLE}{i}")) {
            continue;
        }
        run = match run {
            Some((a, b)) if b + 1 == i => Some((a, i)),
            Some((a, b)) => {
                out.missing.push(format!("{a}-{b}"));
                Some((i, i))
            }
            None => Some((i, i)),
        };
    }
    if let Some((a, b)) = run {
        out.missing.push(format!("{a}-{b}"));
    }
    for i in 0..n {
        let t = format!("{TITLE}{i}");
        match titles.get(&t).copied().unwrap_or(0) {
            1 => {}
            k => out.problems.push(format!("{t} was announced {k} times")),
        }
    }
    for (key, title) in &key_title {
        if !title.starts_with(TITLE) {
            continue;
        }
        match shown.get(key).copied().unwrap_or(0) {
            1 => {}
            k => out
                .problems
                .push(format!("{title} (key {key}) was in {k} toasts")),
        }
    }
}

/// A seed from `TASKBELL_FAULT_SEED`, else from the clock.
pub fn seed_from_env() -> u64 {
    std::env::var("TASKBELL_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0)
        })
}

/// Fails with the outcome's summary when something broke.
pub fn ensure_clean(out: &Outcome) -> Result<()> {
    if out.problems.is_empty() {
        Ok(())
    } else {
        Err(anyhow!("{}", out.summary()))
    }
}
