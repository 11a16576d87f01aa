//! One function per figure of issue 5. Each returns rows of a [`Report`]: the figure beside its
//! floor, measured in the same run. Loops are bounded; waits are on events (a `Notify` call, a
//! line from the agent), each with a generous timeout that only bounds a hang.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use taskbell_e2e::SessionBus;
use taskbell_server::{DEMO_ANNOTATOR, DEMO_ANNOTATOR2};
use taskbell_testkit::{Proxy, Redis};

use crate::Result;
use crate::agent::{Agent, AgentMode, AgentOptions, Line};
use crate::daemon::{Calls, NotifyDaemon};
use crate::platform::Platform;
use crate::procfs::{self, ProcSample};
use crate::stats::{Percentiles, Report, fmt_duration, fmt_kib, median_max};

/// Sizes of a run: the full figures of issue 5, or a quick smoke run.
#[derive(Debug, Clone)]
pub struct Sizes {
    /// Notifications for the latency figure.
    pub latency: usize,
    /// Frames in the burst.
    pub burst: u32,
    /// Outages (s) and repeats of each.
    pub outages: Vec<u64>,
    /// Repeats per outage.
    pub recovery_repeats: usize,
    /// Black-hole repeats.
    pub dead_repeats: usize,
    /// Also measure detection with the production heartbeat (30 s + 10 s).
    pub dead_production: bool,
    /// Idle window.
    pub idle: Duration,
    /// Fleet clients.
    pub fleet: usize,
    /// How long the engine stays connected before each recovery outage (the backoff resets
    /// after 30 s of stable connection).
    pub stable: Duration,
    /// A smoke run (shorter waits where a scenario has its own).
    pub quick: bool,
}

impl Sizes {
    /// The figures of issue 5.
    pub fn full() -> Sizes {
        Sizes {
            latency: 5000,
            burst: 10_000,
            outages: vec![1, 5, 30],
            recovery_repeats: 3,
            dead_repeats: 3,
            dead_production: true,
            idle: Duration::from_secs(60),
            fleet: 2000,
            stable: Duration::from_secs(31),
            quick: false,
        }
    }

    /// A smoke run (seconds, not minutes).
    pub fn quick() -> Sizes {
        Sizes {
            latency: 50,
            burst: 300,
            outages: vec![1],
            recovery_repeats: 1,
            dead_repeats: 1,
            dead_production: false,
            idle: Duration::from_secs(3),
            fleet: 20,
            stable: Duration::from_millis(500),
            quick: true,
        }
    }
}

/// The shared set-up: a private session bus with our notification daemon on it.
#[derive(Debug)]
pub struct Bench {
    /// The `taskbell-bench` executable (the agents are children of it).
    pub exe: PathBuf,
    /// The sizes.
    pub sizes: Sizes,
    daemon: NotifyDaemon,
    bus: SessionBus,
    _dir: tempfile::TempDir,
}

impl Bench {
    /// Starts the bus and the daemon.
    pub async fn start(exe: PathBuf, sizes: Sizes) -> Result<Bench> {
        let dir = tempfile::Builder::new()
            .prefix("taskbell-bench-")
            .tempdir()?;
        let bus_dir = dir.path().join("bus");
        let bus = tokio::task::spawn_blocking(move || SessionBus::start(&bus_dir)).await??;
        let daemon = NotifyDaemon::start(bus.address()).await?;
        Ok(Bench {
            exe,
            sizes,
            daemon,
            bus,
            _dir: dir,
        })
    }

    /// The `Notify` calls our daemon got.
    pub fn calls(&self) -> &Calls {
        self.daemon.calls()
    }

    /// Options for an agent of `mode` as `username` against `server`.
    pub fn agent(
        &self,
        mode: AgentMode,
        server: &str,
        username: &str,
        token: &str,
    ) -> AgentOptions {
        AgentOptions::new(&self.exe, self.bus.address(), mode, server, username, token)
    }
}

/// Starts an agent and waits until it is connected (and, for the engine, caught up); returns
/// the agent and the index of its next line.
pub async fn ready_agent(o: &AgentOptions) -> Result<(Agent, usize)> {
    let agent = Agent::spawn(o)?;
    let next = agent.ready(0, o.mode).await?;
    Ok((agent, next))
}

fn is_notification_titled(l: &Line, prefix: &str) -> bool {
    l.kind() == "notification"
        && l.value["title"]
            .as_str()
            .is_some_and(|t| t.starts_with(prefix))
}

/// One notification to `user_id`, waited for at the daemon: (publish → `Notify`, the
/// publishing request alone).
async fn one_latency_sample(
    b: &Bench,
    p: &Platform,
    agent: &mut Agent,
    user_id: &str,
    title: &str,
) -> Result<(Duration, Duration)> {
    let t0 = Instant::now();
    p.notify_user(user_id, title, 1).await?;
    let t_pub = Instant::now();
    match b.calls().wait_summary(title, Duration::from_secs(30)).await {
        Ok(at) => Ok((
            at.saturating_duration_since(t0),
            t_pub.saturating_duration_since(t0),
        )),
        Err(e) => {
            // Everything needed to tell where it was lost: what the agent printed and
            // logged, whether it is alive, and what the daemon got last.
            let last: Vec<String> = b
                .calls()
                .since(b.calls().len().saturating_sub(3))
                .into_iter()
                .map(|c| c.summary)
                .collect();
            let lines: Vec<String> = agent
                .since(agent.len().saturating_sub(5))
                .into_iter()
                .map(|l| l.value.to_string())
                .collect();
            Err(anyhow!(
                "{e}\nagent alive: {}; daemon got {} calls, the last {last:?}\n\
                 agent's last lines: {lines:#?}\nagent's log:\n{}",
                agent.is_alive(),
                b.calls().len(),
                agent.log()
            ))
        }
    }
}

/// How the latency samples are taken.
#[derive(Debug, Clone, Copy)]
enum Pace {
    /// Each client alone, each notification published as soon as the last one was
    /// shown: the client's work after a toast (storing, printing) overlaps the next one.
    BackToBack,
    /// Both clients in turns (engine, floor, engine…), each notification
    /// [`LATENCY_GAP`] after the last one was shown: each finds its client idle, as a
    /// notification does in use, and a slow stretch of the machine falls on both
    /// columns alike.
    Spaced,
}

/// The pause before each notification of [`Pace::Spaced`]: longer than a client's
/// work after a toast (its store commits in well under a millisecond).
const LATENCY_GAP: Duration = Duration::from_millis(5);

/// Latency samples of two agents (publish → `Notify`, and the publishing request alone),
/// one notification in flight at a time, after a warm-up of each, paced by `pace`.
async fn latency_samples(
    b: &Bench,
    p: &Platform,
    mut agents: [(&mut Agent, &str, &str); 2],
    n: usize,
    pace: Pace,
) -> Result<[(Vec<Duration>, Vec<Duration>); 2]> {
    let warmup = (n / 50).clamp(5, 100);
    let mut out: [(Vec<Duration>, Vec<Duration>); 2] = Default::default();
    for (lat, publish) in &mut out {
        lat.reserve(n);
        publish.reserve(n);
    }
    let mut one = async |which: usize, i: usize, out: &mut [(Vec<Duration>, Vec<Duration>); 2]| {
        let (agent, user_id, prefix) = &mut agents[which];
        if matches!(pace, Pace::Spaced) {
            tokio::time::sleep(LATENCY_GAP).await;
        }
        let (l, pb) = one_latency_sample(b, p, agent, user_id, &format!("{prefix}-{i}")).await?;
        if i >= warmup {
            out[which].0.push(l);
            out[which].1.push(pb);
        }
        anyhow::Ok(())
    };
    match pace {
        Pace::BackToBack => {
            for which in 0..2 {
                for i in 0..warmup + n {
                    one(which, i, &mut out).await?;
                }
            }
        }
        Pace::Spaced => {
            for i in 0..warmup + n {
                for which in 0..2 {
                    one(which, i, &mut out).await?;
                }
            }
        }
    }
    Ok(out)
}

/// Delivery latency: server write → `Notify` at the daemon, one notification in flight,
/// for the engine (folding off, so every notification is a toast) and for the floor, both
/// connected side by side: back to back, then spaced in turns.
pub async fn latency(b: &Bench) -> Result<Report> {
    let n = b.sizes.latency;
    eprintln!("== delivery latency ({n} notifications each, back to back and spaced)");
    let mut r = Report::default();
    let p = Platform::demo(None).await?;
    let (tok, uid) = p.token(DEMO_ANNOTATOR.username).await?;
    let (ftok, fuid) = p.token(DEMO_ANNOTATOR2.username).await?;

    let mut eo = b.agent(
        AgentMode::Engine,
        &p.base_url(),
        DEMO_ANNOTATOR.username,
        &tok,
    );
    eo.fold_threshold = 1_000_000;
    let (mut engine, _) = ready_agent(&eo).await?;
    let fo = b.agent(
        AgentMode::Floor,
        &p.base_url(),
        DEMO_ANNOTATOR2.username,
        &ftok,
    );
    let (mut floor, _) = ready_agent(&fo).await?;
    let s = "delivery latency";
    let mut publishing = Vec::new();
    for (pace, prefix, what) in [
        (Pace::BackToBack, "b2b", "back to back"),
        (Pace::Spaced, "spaced", "spaced, in turns"),
    ] {
        let [(lat, publish), (flat, _)] = latency_samples(
            b,
            &p,
            [
                (&mut engine, uid.as_str(), &format!("{prefix}-lat")),
                (&mut floor, fuid.as_str(), &format!("{prefix}-flat")),
            ],
            n,
            pace,
        )
        .await?;
        let e = Percentiles::of(&lat).ok_or_else(|| anyhow!("no samples"))?;
        let f = Percentiles::of(&flat).ok_or_else(|| anyhow!("no samples"))?;
        r.row(
            s,
            format!("p50 ({what})"),
            fmt_duration(e.p50),
            fmt_duration(f.p50),
        );
        r.row(
            s,
            format!("p99 ({what})"),
            fmt_duration(e.p99),
            fmt_duration(f.p99),
        );
        r.row(
            s,
            format!("max ({what})"),
            fmt_duration(e.max),
            fmt_duration(f.max),
        );
        r.row(
            s,
            format!("p50 / p99 ÷ floor ({what})"),
            format!(
                "{:.2}× / {:.2}×",
                e.p50.as_secs_f64() / f.p50.as_secs_f64().max(1e-9),
                e.p99.as_secs_f64() / f.p99.as_secs_f64().max(1e-9)
            ),
            "1×",
        );
        r.row(
            s,
            format!("samples ({what})"),
            e.count.to_string(),
            f.count.to_string(),
        );
        publishing.extend(publish);
    }
    drop(engine);
    drop(floor);
    let pb = Percentiles::of(&publishing).ok_or_else(|| anyhow!("no samples"))?;
    r.note(format!(
        "latency is measured from just before the publishing request (POST /api/test/notify; the \
         server writes the frame inside it) to the Notify call arriving at our daemon, one \
         notification in flight; both clients stay connected throughout. Back to back: each \
         client alone, the next notification as soon as the last was shown (its work after a \
         toast overlaps the next). Spaced: in turns, {} ms after the last was shown (each finds \
         its client idle, as in use). The publishing request alone takes {} (p50; p99 {}), \
         included in both columns",
        LATENCY_GAP.as_millis(),
        fmt_duration(pb.p50),
        fmt_duration(pb.p99)
    ));
    Ok(r)
}

/// Burst: `sizes.burst` frames in one request; client frames/s, toasts shown, history rows,
/// peak RSS — engine (default folding) beside the floor.
pub async fn burst(b: &Bench) -> Result<(Report, Option<ProcSample>)> {
    let n = b.sizes.burst;
    eprintln!("== burst ({n} frames)");
    let mut r = Report::default();
    let p = Platform::demo(None).await?;
    let (tok, uid) = p.token(DEMO_ANNOTATOR.username).await?;
    let (ftok, fuid) = p.token(DEMO_ANNOTATOR2.username).await?;

    // Engine.
    let eo = b.agent(
        AgentMode::Engine,
        &p.base_url(),
        DEMO_ANNOTATOR.username,
        &tok,
    );
    let (engine, next) = ready_agent(&eo).await?;
    // Let the login summary toasts pass first.
    b.calls()
        .wait_quiet(Duration::from_millis(3500), Duration::from_secs(20))
        .await;
    let before = b.calls().len();
    let t0 = Instant::now();
    p.notify_user(&uid, "burst", n).await?;
    let t_written = Instant::now();
    let waited = engine
        .wait_count(next, n as usize, Duration::from_secs(300), |l| {
            is_notification_titled(l, "burst")
        })
        .await;
    let t_last = match waited {
        Ok(t) => t,
        Err(e) => {
            // Events may be dropped when the child's reader lags (the engine's event channel is
            // bounded); the history is the record then.
            r.note(format!("burst: not every notification event was seen ({e}); throughput from the last event seen"));
            engine
                .since(next)
                .iter()
                .rev()
                .find(|l| is_notification_titled(l, "burst"))
                .map_or_else(Instant::now, |l| l.at)
        }
    };
    // Every notification ends up in exactly one toast (shown at once or folded): wait until the
    // toasts cover all of them, then until the daemon got every one of those toasts.
    let burst_toasts = |lines: &[Line]| -> (usize, usize) {
        let toasts: Vec<&Line> = lines
            .iter()
            .filter(|l| l.kind() == "toast" && l.at >= t0)
            .collect();
        let keys = toasts
            .iter()
            .map(|l| l.value["keys"].as_array().map_or(0, Vec::len))
            .sum();
        (toasts.len(), keys)
    };
    let covered = engine
        .wait_until(
            Duration::from_secs(120),
            "toasts covering the burst",
            |lines| burst_toasts(lines).1 >= n as usize,
        )
        .await;
    if let Err(e) = covered {
        r.note(format!(
            "burst: toasts did not cover every notification: {e}"
        ));
    }
    let (toast_events, _) = burst_toasts(&engine.since(next));
    let deadline = Instant::now() + Duration::from_secs(30);
    while b.calls().len() < before + toast_events && Instant::now() < deadline {
        b.calls()
            .wait_quiet(Duration::from_millis(200), Duration::from_secs(1))
            .await;
    }
    let shown = b.calls().len() - before;
    let mem = procfs::sample(engine.pid())?;
    let db = engine.history_db();
    let rows = tokio::task::spawn_blocking(move || -> Result<u64> {
        let h = taskbell_core::history::History::open(&db)?;
        Ok(h.len()?)
    })
    .await??;
    drop(engine);

    // Floor.
    let fo = b.agent(
        AgentMode::Floor,
        &p.base_url(),
        DEMO_ANNOTATOR2.username,
        &ftok,
    );
    let (floor, fnext) = ready_agent(&fo).await?;
    let fbefore = b.calls().len();
    let f0 = Instant::now();
    p.notify_user(&fuid, "fburst", n).await?;
    let f_written = Instant::now();
    let f_last = floor
        .wait_count(fnext, n as usize, Duration::from_secs(300), |l| {
            is_notification_titled(l, "fburst")
        })
        .await?;
    let fshown = b
        .calls()
        .wait_quiet(Duration::from_millis(1000), Duration::from_secs(60))
        .await
        - fbefore;
    let fmem = procfs::sample(floor.pid())?;
    drop(floor);

    let rate = |d: Duration| format!("{:.0} frames/s", f64::from(n) / d.as_secs_f64().max(1e-9));
    let s = "burst";
    r.row(
        s,
        format!("server writes {n} frames"),
        rate(t_written - t0),
        rate(f_written - f0),
    );
    r.row(s, "client throughput", rate(t_last - t0), rate(f_last - f0));
    r.row(
        s,
        "toasts shown (Notify calls)",
        format!("{shown} ({toast_events} toast events)"),
        format!("{fshown} (no folding)"),
    );
    r.row(s, "rows in history", rows.to_string(), "— (no history)");
    r.row(
        s,
        "peak RSS (VmHWM)",
        fmt_kib(mem.hwm_kib),
        fmt_kib(fmem.hwm_kib),
    );
    r.row(
        "memory",
        format!("engine RSS after {n} notifications"),
        fmt_kib(mem.rss_kib),
        fmt_kib(fmem.rss_kib),
    );
    Ok((r, Some(mem)))
}

/// Recovery after a server outage: from the restarted server accepting to the engine connected
/// and caught up (three notifications published right after the restart, while the client is
/// still away, must all have arrived). Redis keeps history and the signing secret across the
/// restart. Production backoff (1 s base, 60 s cap, full jitter).
pub async fn recovery(b: &Bench) -> Result<Report> {
    eprintln!("== recovery ({:?} s outages)", b.sizes.outages);
    let mut r = Report::default();
    let redis = tokio::task::spawn_blocking(Redis::start).await??;
    let mut p = Platform::demo(Some(redis.url())).await?;
    let (tok, uid) = p.token(DEMO_ANNOTATOR.username).await?;
    let eo = b.agent(
        AgentMode::Engine,
        &p.base_url(),
        DEMO_ANNOTATOR.username,
        &tok,
    );
    let (engine, mut next) = ready_agent(&eo).await?;
    let mut trail = Vec::new();
    // Each outage length after a stable connection (past the backoff's 30 s reset period),
    // then the middle one back to back: the next outage as soon as the engine has caught up,
    // which a healthy connection must not pay for with a longer backoff (finding 2).
    let mut series: Vec<(u64, bool)> = b.sizes.outages.iter().map(|o| (*o, false)).collect();
    if let Some(mid) = b.sizes.outages.get(b.sizes.outages.len() / 2) {
        series.push((*mid, true));
    }
    for (outage, back_to_back) in series {
        let mut samples = Vec::new();
        let mut connects = Vec::new();
        for rep in 0..b.sizes.recovery_repeats {
            if back_to_back {
                tokio::time::sleep(Duration::from_millis(200)).await;
            } else {
                tokio::time::sleep(b.sizes.stable).await;
            }
            p.kill();
            let (i, _) = engine
                .wait_for(next, Duration::from_secs(60), "reconnecting", |l| {
                    l.kind() == "reconnecting"
                })
                .await?;
            tokio::time::sleep(Duration::from_secs(outage)).await;
            let mark = engine.len().max(i + 1);
            let t_up = p.restart().await?;
            let prefix = format!("rec-{outage}-{back_to_back}-{rep}-");
            for k in 0..3 {
                p.notify_user(&uid, &format!("{prefix}{k}"), 1).await?;
            }
            let (ci, conn) = engine
                .wait_for(mark, Duration::from_secs(180), "connected", |l| {
                    l.kind() == "connected"
                })
                .await?;
            let (cu, caught) = engine
                .wait_for(ci, Duration::from_secs(180), "caught_up", |l| {
                    l.kind() == "caught_up"
                })
                .await?;
            let t_all = engine
                .wait_count(mark, 3, Duration::from_secs(180), |l| {
                    is_notification_titled(l, &prefix)
                })
                .await?;
            let done = caught.at.max(t_all);
            // The attempts of this outage: how many, and the delay drawn last (the wait that
            // was running when the server came back).
            let attempts: Vec<Line> = engine
                .since(i)
                .into_iter()
                .take_while(|l| l.kind() != "connected")
                .filter(|l| l.kind() == "reconnecting")
                .collect();
            if let Some(last) = attempts.last() {
                trail.push(format!(
                    "{outage} s{} #{rep}: {} attempts, last attempt {} with delay {} ms ({})",
                    if back_to_back { " back to back" } else { "" },
                    attempts.len(),
                    last.value["attempt"],
                    last.value["delay_ms"],
                    last.value["reason"].as_str().unwrap_or_default()
                ));
            }
            samples.push(done.saturating_duration_since(t_up));
            connects.push(conn.at.saturating_duration_since(t_up));
            next = engine.len().max(cu + 1);
        }
        let (med, max) = median_max(&samples).ok_or_else(|| anyhow!("no samples"))?;
        let (cmed, _) = median_max(&connects).ok_or_else(|| anyhow!("no samples"))?;
        r.row(
            "recovery",
            if back_to_back {
                format!(
                    "{outage} s outages back to back ({}; each as soon as caught up): median / max",
                    samples.len()
                )
            } else {
                format!(
                    "{outage} s outage ({} repeats): median / max",
                    samples.len()
                )
            },
            format!(
                "{} / {} (connected after {})",
                fmt_duration(med),
                fmt_duration(max),
                fmt_duration(cmed)
            ),
            "0",
        );
    }
    drop(engine);
    drop(p);
    drop(redis);
    r.note(format!("recovery attempts: {}", trail.join("; ")));
    Ok(r)
}

async fn detect_once(engine: &Agent, proxy: &Proxy, next: &mut usize) -> Result<Duration> {
    // Connected now; give the heartbeat a moment to settle in its cycle.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mark = engine.len().max(*next);
    let t_bh = Instant::now();
    proxy.black_hole();
    let (i, line) = engine
        .wait_for(mark, Duration::from_secs(180), "reconnecting", |l| {
            l.kind() == "reconnecting"
        })
        .await?;
    let took = line.at.saturating_duration_since(t_bh);
    proxy.heal();
    let (j, _) = engine
        .wait_for(i, Duration::from_secs(180), "connected", |l| {
            l.kind() == "connected"
        })
        .await?;
    *next = j + 1;
    Ok(took)
}

/// Dead-connection detection: a black-holing proxy between engine and server; time from the
/// black hole to the engine giving up on the connection, against interval + timeout.
pub async fn dead(b: &Bench) -> Result<Report> {
    eprintln!("== dead-connection detection");
    let mut r = Report::default();
    let p = Platform::demo(None).await?;
    let proxy = Proxy::start(p.addr()).await?;
    let (tok, _) = p.token(DEMO_ANNOTATOR.username).await?;
    let mut configs = vec![(5u64, 3u64, b.sizes.dead_repeats)];
    if b.sizes.dead_production {
        configs.push((30, 10, 1));
    }
    for (interval, timeout, repeats) in configs {
        let mut eo = b.agent(
            AgentMode::Engine,
            &proxy.base_url(),
            DEMO_ANNOTATOR.username,
            &tok,
        );
        eo.heartbeat = interval;
        eo.pong_timeout = timeout;
        let (engine, mut next) = ready_agent(&eo).await?;
        let mut samples = Vec::new();
        for _ in 0..repeats {
            samples.push(detect_once(&engine, &proxy, &mut next).await?);
        }
        drop(engine);
        let (med, max) = median_max(&samples).ok_or_else(|| anyhow!("no samples"))?;
        r.row(
            "dead connection",
            format!(
                "heartbeat {interval} s + timeout {timeout} s ({} runs): median / max",
                samples.len()
            ),
            format!("{} / {}", fmt_duration(med), fmt_duration(max)),
            format!("≤ {} s (interval + timeout)", interval + timeout),
        );
    }
    Ok(r)
}

/// Idle cost: CPU time and context switches over `sizes.idle` connected with heartbeats only,
/// and idle RSS — engine beside floor, measured at the same time.
pub async fn idle(b: &Bench) -> Result<Report> {
    let window = b.sizes.idle;
    eprintln!("== idle cost ({} s)", window.as_secs());
    let mut r = Report::default();
    let p = Platform::demo(None).await?;
    let (tok, _) = p.token(DEMO_ANNOTATOR.username).await?;
    let (ftok, _) = p.token(DEMO_ANNOTATOR2.username).await?;
    let eo = b.agent(
        AgentMode::Engine,
        &p.base_url(),
        DEMO_ANNOTATOR.username,
        &tok,
    );
    let fo = b.agent(
        AgentMode::Floor,
        &p.base_url(),
        DEMO_ANNOTATOR2.username,
        &ftok,
    );
    let (engine, _) = ready_agent(&eo).await?;
    let (floor, _) = ready_agent(&fo).await?;
    // Past the login summary (the urgent toast comes 3 s after the welcome).
    b.calls()
        .wait_quiet(Duration::from_millis(4000), Duration::from_secs(20))
        .await;
    let (e0, f0) = (procfs::sample(engine.pid())?, procfs::sample(floor.pid())?);
    let t0 = Instant::now();
    tokio::time::sleep(window).await;
    let took = t0.elapsed();
    let (e1, f1) = (procfs::sample(engine.pid())?, procfs::sample(floor.pid())?);
    let per_min = |a: &ProcSample, b: &ProcSample| {
        let n = (b.voluntary - a.voluntary) as f64 * 60.0 / took.as_secs_f64();
        format!("{n:.0}/min")
    };
    let s = "idle";
    r.row(
        s,
        format!("CPU time over {} s", window.as_secs()),
        fmt_duration(procfs::cpu_between(&e0, &e1)),
        fmt_duration(procfs::cpu_between(&f0, &f1)),
    );
    r.row(
        s,
        "wake-ups (voluntary context switches)",
        per_min(&e0, &e1),
        per_min(&f0, &f1),
    );
    r.row(
        s,
        "involuntary context switches",
        (e1.involuntary - e0.involuntary).to_string(),
        (f1.involuntary - f0.involuntary).to_string(),
    );
    r.row(s, "threads", e1.threads.to_string(), f1.threads.to_string());
    r.row(
        "memory",
        "engine RSS idle (connected)",
        fmt_kib(e1.rss_kib),
        fmt_kib(f1.rss_kib),
    );
    drop((engine, floor));
    Ok(r)
}

/// The tray app's memory, when its release build is there (a row says why not otherwise).
pub async fn tray(b: &Bench, app: Option<&std::path::Path>) -> Result<Report> {
    let bins = match crate::tray::locate_app(app, &b.exe) {
        Ok(a) => a,
        Err(e) => {
            let mut r = Report::default();
            r.row("tray app", "memory", "not measured", "—");
            r.note(format!("tray app: {e}"));
            return Ok(r);
        }
    };
    desktop_measure(b, bins, true).await
}

/// The headless `taskbell run` alone, idle in a private desktop (the first part of
/// [`tray`], without the tray app): the `taskbell` command beside this binary.
pub async fn daemon(b: &Bench) -> Result<Report> {
    let cli = b.exe.with_file_name("taskbell");
    if !cli.is_file() {
        return Err(anyhow!(
            "the taskbell command is not built at {}: build taskbell-cli with the same profile",
            cli.display()
        ));
    }
    let bins = crate::tray::TrayBinaries {
        app: cli.with_file_name("taskbell-app"),
        cli,
    };
    desktop_measure(b, bins, false).await
}

/// Runs [`crate::tray::measure`] against a quiet demo platform (no activity: only
/// heartbeats).
async fn desktop_measure(
    b: &Bench,
    bins: crate::tray::TrayBinaries,
    with_app: bool,
) -> Result<Report> {
    let sizes = if b.sizes.quick {
        crate::tray::TraySizes::quick()
    } else {
        crate::tray::TraySizes::full()
    };
    let p = Platform::demo(None).await?;
    let server = p.base_url();
    let r = tokio::task::spawn_blocking(move || {
        crate::tray::measure(
            &bins,
            &server,
            DEMO_ANNOTATOR.username,
            DEMO_ANNOTATOR.password,
            sizes,
            with_app,
        )
    })
    .await?;
    drop(p);
    r
}

/// Runs every scenario and prints the table.
pub async fn all(b: &Bench) -> Result<Report> {
    let mut r = Report::default();
    r.note(format!("machine: {}", procfs::machine()));
    r.extend(latency(b).await.context("latency")?);
    r.extend(burst(b).await.context("burst")?.0);
    r.extend(idle(b).await.context("idle")?);
    r.extend(dead(b).await.context("dead connection")?);
    r.extend(recovery(b).await.context("recovery")?);
    r.extend(crate::fleet::fleet(b.sizes.fleet).await.context("fleet")?);
    r.extend(tray(b, None).await.context("tray app")?);
    Ok(r)
}
