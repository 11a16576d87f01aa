//! The `taskbell-server` binary: the reference platform backend on a TCP port.
//!
//! Prints `listening on http://ADDR` as its first stdout line, logs to stderr (`RUST_LOG`), and
//! stops gracefully (sockets closed with 1001) on Ctrl-C or SIGTERM.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use taskbell_server::{ServerConfig, start};

/// The reference TaskBell platform server (REST + WebSocket + optional Redis).
#[derive(Debug, Parser)]
#[command(name = "taskbell-server", version, about)]
struct Args {
    /// Address to listen on; port 0 picks a free port (printed on the first stdout line).
    #[arg(long, default_value = "127.0.0.1:8000")]
    listen: SocketAddr,
    /// Redis URL (redis://host:port); without it the bus and history are in-process.
    #[arg(long, env = "TASKBELL_REDIS_URL")]
    redis: Option<String>,
    /// JSON file with users, tasks, skip requests and groups; built-in demo data when absent.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Token lifetime in seconds.
    #[arg(long, default_value_t = 43_200, value_parser = clap::value_parser!(u64).range(1..))]
    token_ttl: u64,
    /// Drop sockets silent for this many seconds.
    #[arg(long, default_value_t = 90, value_parser = clap::value_parser!(u64).range(1..))]
    heartbeat_timeout: u64,
    /// Send a JSON ping on every socket this often (seconds).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    ping_interval: u64,
    /// Make scripted platform events every SECS seconds (submissions, reviews, notices, chat).
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    demo_activity: Option<u64>,
    /// Enable the /api/test/... fault controls (loopback addresses only).
    #[arg(long)]
    test_controls: bool,
    /// Serve the built-in demo accounts (published passwords) on a non-loopback address anyway.
    #[arg(long)]
    allow_public_demo: bool,
    /// Token signing secret (default: shared via Redis, or random per process).
    #[arg(long, env = "TASKBELL_JWT_SECRET", hide_env_values = true)]
    jwt_secret: Option<String>,
    /// Print the built-in demo data as a --data file and exit.
    #[arg(long)]
    print_demo_data: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    if args.print_demo_data {
        return match serde_json::to_string_pretty(&taskbell_server::demo_data()) {
            Ok(s) => {
                println!("{s}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let config = ServerConfig {
        listen: args.listen,
        redis_url: args.redis,
        data_file: args.data,
        token_ttl: Duration::from_secs(args.token_ttl),
        heartbeat_timeout: Duration::from_secs(args.heartbeat_timeout),
        ping_interval: Duration::from_secs(args.ping_interval),
        demo_activity: args.demo_activity.map(Duration::from_secs),
        test_controls: args.test_controls,
        jwt_secret: args.jwt_secret,
        allow_public_demo: args.allow_public_demo,
        ..ServerConfig::default()
    };
    // Install the stop handlers before telling anyone the address: a SIGTERM right
    // after "listening on" must stop the server cleanly, not kill it by signal.
    let stop = stop_signals();
    let server = match start(config).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("taskbell-server: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut out = std::io::stdout().lock();
    if writeln!(out, "listening on {}", server.base_url())
        .and_then(|()| out.flush())
        .is_err()
    {
        tracing::warn!("stdout is closed; the address is {}", server.base_url());
    }
    drop(out);
    stop.await;
    server.shutdown().await;
    ExitCode::SUCCESS
}

/// Registers the stop signals now (SIGTERM and SIGINT on Unix, Ctrl-C
/// elsewhere) and returns what waits for the first of them.
fn stop_signals() -> impl Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        async move {
            match (term, int) {
                (Ok(mut t), Ok(mut i)) => {
                    tokio::select! {
                        _ = t.recv() => {}
                        _ = i.recv() => {}
                    }
                }
                (Ok(mut t), Err(_)) => {
                    t.recv().await;
                }
                (Err(_), Ok(mut i)) => {
                    i.recv().await;
                }
                (Err(_), Err(_)) => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
