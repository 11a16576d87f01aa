//! `taskbell-bench`: prints TaskBell's figures beside their floors, measured in one run.
//!
//! ```text
//! cargo run --release -p taskbell-bench -- all            # every figure (≈ 10 minutes)
//! cargo run --release -p taskbell-bench -- all --quick    # a smoke run (seconds)
//! cargo run --release -p taskbell-bench -- latency        # one figure
//! cargo run --release -p taskbell-bench -- soak --minutes 60
//! cargo build --release -p taskbell-app && cargo run --release -p taskbell-bench -- tray
//! cargo run --release -p taskbell-bench -- peer --peer /path/to/gotify-desktop
//! ```

use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use taskbell_bench::agent::{AgentArgs, run_agent};
use taskbell_bench::scenarios::{self, Bench, Sizes};
use taskbell_bench::stats::Report;
use taskbell_bench::{faults, fleet, peer, procfs};

#[derive(Debug, Parser)]
#[command(
    name = "taskbell-bench",
    about = "TaskBell benchmarks: each figure beside its floor"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, clap::Args, Clone, Copy)]
struct Common {
    /// Small sizes: a smoke run of seconds instead of the figures of issue 5.
    #[arg(long)]
    quick: bool,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Every figure, one table.
    All(Common),
    /// Delivery latency, engine vs a bare read loop.
    Latency(Common),
    /// A burst of 10,000 frames.
    Burst(Common),
    /// Recovery after 1 s, 5 s and 30 s outages.
    Recovery(Common),
    /// Dead-connection detection through a black-holing proxy.
    Dead(Common),
    /// Idle CPU, wake-ups and RSS over 60 s.
    Idle(Common),
    /// 2,000 clients against one instance and two on Redis.
    Fleet(Common),
    /// The release tray app's memory: idle in the tray, center open, after closing.
    Tray {
        #[command(flatten)]
        common: Common,
        /// The tray app binary (default: `taskbell-app` beside this binary, or $TASKBELL_APP).
        #[arg(long)]
        app: Option<std::path::PathBuf>,
        /// Only the headless `taskbell run` (the `taskbell` command beside this binary);
        /// no tray app is needed.
        #[arg(long)]
        daemon_only: bool,
    },
    /// `taskbell run` beside gotify-desktop in one private desktop, idle over the same window.
    Peer {
        #[command(flatten)]
        common: Common,
        /// The gotify-desktop binary (built by hand: see docs/benchmarks.md). Without it the
        /// peer's row says so.
        #[arg(long)]
        peer: Option<std::path::PathBuf>,
        /// The idle window in seconds (default 60; 3 with --quick).
        #[arg(long)]
        seconds: Option<u64>,
        /// The Gotify shim's ping period in seconds (gotify/server's default is 45).
        #[arg(long, default_value_t = 45)]
        ping_secs: u64,
    },
    /// A notification a second and a fault every 5 minutes, RSS over time.
    Soak {
        /// How long.
        #[arg(long, default_value_t = 60)]
        minutes: u64,
    },
    /// The fault harness's stream from the command line (N notifications, F faults).
    Faults {
        /// Notifications.
        #[arg(long, default_value_t = 2000)]
        notifications: usize,
        /// Faults.
        #[arg(long, default_value_t = 100)]
        faults: usize,
        /// Do not wait for the engine to catch up between faults (faults as fast as they come).
        #[arg(long)]
        no_settle: bool,
    },
    /// (internal) the client under test, started by the benchmarks.
    #[command(hide = true)]
    Agent(AgentArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    if let Cmd::Agent(args) = cli.command {
        // Before any thread starts: the local UTC offset is only readable single-threaded.
        let _ = taskbell_core::supervisor::local_offset();
        // One thread, as `taskbell run` runs the engine (and the floor alike): the figures
        // are the shipped client's, not those of a runtime it does not use.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        return rt.block_on(run_agent(args));
    }
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(run(cli.command))
}

async fn run(cmd: Cmd) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("locating taskbell-bench")?;
    let sizes = |c: Common| {
        if c.quick {
            Sizes::quick()
        } else {
            Sizes::full()
        }
    };
    let started = std::time::Instant::now();
    let mut report = Report::default();
    match cmd {
        Cmd::All(c) => {
            let b = Bench::start(exe, sizes(c)).await?;
            report = scenarios::all(&b).await?;
        }
        Cmd::Latency(c) => {
            let b = Bench::start(exe, sizes(c)).await?;
            report = scenarios::latency(&b).await?;
        }
        Cmd::Burst(c) => {
            let b = Bench::start(exe, sizes(c)).await?;
            report = scenarios::burst(&b).await?.0;
        }
        Cmd::Recovery(c) => {
            let b = Bench::start(exe, sizes(c)).await?;
            report = scenarios::recovery(&b).await?;
        }
        Cmd::Dead(c) => {
            let b = Bench::start(exe, sizes(c)).await?;
            report = scenarios::dead(&b).await?;
        }
        Cmd::Idle(c) => {
            let b = Bench::start(exe, sizes(c)).await?;
            report = scenarios::idle(&b).await?;
        }
        Cmd::Fleet(c) => {
            report = fleet::fleet(sizes(c).fleet).await?;
        }
        Cmd::Tray {
            common,
            app,
            daemon_only,
        } => {
            let b = Bench::start(exe, sizes(common)).await?;
            if daemon_only {
                report = scenarios::daemon(&b).await?;
            } else {
                // Asked for by name: a missing build is an error, not a "not measured" row.
                let bins = taskbell_bench::tray::locate_app(app.as_deref(), &b.exe)?;
                report = scenarios::tray(&b, Some(&bins.app)).await?;
            }
        }
        Cmd::Peer {
            common,
            peer,
            seconds,
            ping_secs,
        } => {
            let mut sizes = if common.quick {
                taskbell_bench::tray::TraySizes::quick()
            } else {
                taskbell_bench::tray::TraySizes::full()
            };
            if let Some(s) = seconds {
                sizes.idle = Duration::from_secs(s.max(1));
            }
            let mut out = peer::run(peer::PeerOptions {
                cli: peer::locate_cli(&exe)?,
                peer,
                sizes,
                ping_period: Duration::from_secs(ping_secs.max(1)),
            })
            .await?;
            out.note(format!(
                "machine: {}; run took {:.0} s",
                procfs::machine(),
                started.elapsed().as_secs_f64()
            ));
            println!("{}", out.render());
            return Ok(());
        }
        Cmd::Soak { minutes } => {
            let b = Bench::start(exe, Sizes::full()).await?;
            let plan = faults::Plan::soak(minutes, faults::seed_from_env());
            let out = faults::run(&b, &plan).await?;
            println!("soak, {minutes} min:\n{}", out.summary());
            return faults::ensure_clean(&out);
        }
        Cmd::Faults {
            notifications,
            faults: n,
            no_settle,
        } => {
            let b = Bench::start(exe, Sizes::full()).await?;
            let mut plan = faults::Plan::random(notifications, n, faults::seed_from_env());
            plan.settle = !no_settle;
            let out = faults::run(&b, &plan).await?;
            println!("fault stream (seed {}):\n{}", plan.seed, out.summary());
            return faults::ensure_clean(&out);
        }
        Cmd::Agent(_) => {}
    }
    report.note(format!(
        "machine: {}; run took {:.0} s",
        procfs::machine(),
        started.elapsed().as_secs_f64()
    ));
    let _ = Duration::ZERO;
    println!("{}", report.render());
    Ok(())
}
