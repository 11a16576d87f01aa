//! # taskbell-server
//!
//! The reference implementation of TaskBell's platform contract (`protocol.md`): the REST API of
//! §2 with the envelope of §1, the notification WebSocket of §3, the channels of §4 (in-process,
//! or Redis Pub/Sub with history in capped Redis Streams), seed 004's group chat, and demo data.
//! The `taskbell-server` binary wraps [`start`]; `taskbell demo`, the tray app's `--demo` and the
//! integration tests start it in-process:
//!
//! ```no_run
//! # async fn demo() -> Result<(), taskbell_server::ServerError> {
//! let server = taskbell_server::start(taskbell_server::ServerConfig::default()).await?;
//! println!("platform at {}", server.base_url()); // http://127.0.0.1:<port>
//! // log in as taskbell_server::DEMO_ANNOTATOR ...
//! server.shutdown().await; // sockets are closed with 1001
//! # Ok(()) }
//! ```
//!
//! ## Layout
//!
//! - `api`: REST routes, the JSON error envelope for every rejection, test controls.
//! - `ws`: the WebSocket: authentication (4001), the 5-per-user cap (1008), heartbeats, frame
//!   limits (1009).
//! - `hub`: local sockets and channel reference counts; delivery of bus messages.
//! - `bus`: publishing and history — in-memory ring, or Redis Pub/Sub (one subscriber
//!   connection per instance) and `notify:history:{user}` streams.
//! - `app`: instance state and platform operations (submit, review, skip, broadcast, chat).
//! - `auth`: HS256 JWTs with `jti`, revocation, the login limits (counted before the password
//!   check, per username and per client address) and the bound on concurrent password checks.
//! - `data`: the data file format, demo data, argon2 password hashes.
//! - `demo`: the scripted `--demo-activity`.

mod api;
mod app;
mod auth;
mod bus;
mod data;
mod demo;
mod error;
mod hub;
mod util;
mod ws;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use data::{
    DEMO_ACCOUNTS, DEMO_ADMIN, DEMO_ANNOTATOR, DEMO_ANNOTATOR2, DEMO_GROUP_ID, DEMO_REVIEWER,
    DataFile, DemoAccount, Group, Role, SkipRequest, Task, TaskStatus, UserSeed, demo_data,
};
pub use error::ServerError;

/// The largest WebSocket frame either side may send (protocol.md §3: 1 MiB).
pub const MAX_FRAME_BYTES: usize = 1 << 20;

/// How to run a server. `Default` is the in-process demo set-up: `127.0.0.1:0`, no Redis
/// (in-process bus and in-memory history), the built-in demo data, 12 h tokens, server pings every
/// 30 s, silent sockets dropped after 90 s, no demo activity, no test controls; logins limited to
/// 5 failures per username and 20 per client address a minute, one password check per core (at
/// most 8) at a time with 32 more waiting.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on; port 0 picks a free port (see [`RunningServer::addr`]).
    pub listen: SocketAddr,
    /// `redis://host:port/db`: Redis Pub/Sub and stream history instead of the in-process bus.
    pub redis_url: Option<String>,
    /// A JSON data file (see [`DataFile`]); `None` uses [`demo_data`].
    pub data_file: Option<PathBuf>,
    /// Data given directly (takes precedence over `data_file`); for tests and embedders.
    pub data: Option<DataFile>,
    /// Lifetime of issued tokens.
    pub token_ttl: Duration,
    /// Sockets silent (no frame at all) for longer than this are dropped.
    pub heartbeat_timeout: Duration,
    /// How often the server sends its JSON `ping` on each socket.
    pub ping_interval: Duration,
    /// Scripted demo events every so often (`None`: off).
    pub demo_activity: Option<Duration>,
    /// Enables the `/api/test/...` fault controls. Refused on a non-loopback listen address; while
    /// on, requests whose `Host` (or `Origin`) is not a loopback name are answered with 403.
    pub test_controls: bool,
    /// The HS256 signing secret. `None`: with Redis, a secret shared through Redis (so instances
    /// accept each other's tokens); without, a random one per process.
    pub jwt_secret: Option<String>,
    /// Notifications kept per user (in-memory ring or `XADD MAXLEN ~`).
    pub history_cap: usize,
    /// Sockets allowed per user; the next one is closed with 1008.
    pub max_sockets_per_user: usize,
    /// Client frames larger than this are refused with close code 1009.
    pub max_frame_bytes: usize,
    /// Request bodies larger than this are refused with 413.
    pub max_body_bytes: usize,
    /// Failed (or still in-flight) logins per username within `login_window` before 429 (0
    /// disables the limit). Attempts are counted before the password is checked.
    pub login_max_failures: u32,
    /// Failed (or still in-flight) logins per client address (IPv4, or IPv6 /64) within
    /// `login_window`, whatever the usernames, before 429 (0 disables the limit).
    pub login_max_failures_per_ip: u32,
    /// The window of the login limits, and the longest `Retry-After`.
    pub login_window: Duration,
    /// Password checks (argon2, ~19 MiB each) running at once; default: the number of cores, at
    /// most 8.
    pub login_hash_concurrency: usize,
    /// Logins that may wait for a password check on top of `login_hash_concurrency`; more are
    /// answered at once with 503 and `Retry-After`.
    pub login_hash_queue: usize,
    /// Allows the built-in demo accounts (published passwords) on a non-loopback listen address.
    /// Without it [`start`] refuses; with it a warning is logged.
    pub allow_public_demo: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            redis_url: None,
            data_file: None,
            data: None,
            token_ttl: Duration::from_secs(12 * 3600),
            heartbeat_timeout: Duration::from_secs(90),
            ping_interval: Duration::from_secs(30),
            demo_activity: None,
            test_controls: false,
            jwt_secret: None,
            history_cap: 1000,
            max_sockets_per_user: 5,
            max_frame_bytes: MAX_FRAME_BYTES,
            max_body_bytes: 64 * 1024,
            login_max_failures: 5,
            login_max_failures_per_ip: 20,
            login_window: Duration::from_secs(60),
            login_hash_concurrency: std::thread::available_parallelism()
                .map_or(2, |n| n.get())
                .min(8),
            login_hash_queue: 32,
            allow_public_demo: false,
        }
    }
}

/// A server started by [`start`]. Dropping it stops the server abruptly (sockets are dropped
/// without a close frame); [`RunningServer::shutdown`] stops it gracefully.
pub struct RunningServer {
    addr: SocketAddr,
    app: Arc<app::App>,
    stop: CancellationToken,
    http_stop: Option<tokio::sync::oneshot::Sender<()>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for RunningServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl RunningServer {
    /// The bound address (the real port when 0 was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>`, the base URL of protocol.md §1.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `ws://<addr>/ws/notifications` (append `?token=...`).
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws/notifications", self.addr)
    }

    /// How many WebSockets are open on this instance.
    pub fn socket_count(&self) -> usize {
        self.app.hub.socket_count()
    }

    /// Stops gracefully: every socket is closed with 1001 ("going away"), then the HTTP server
    /// and the background tasks (Redis subscriber, demo activity) stop. Bounded to a few seconds.
    pub async fn shutdown(mut self) {
        let n = self.app.hub.command_where(
            |_| true,
            || hub::Outgoing::Close(ws::code::GOING_AWAY, "server shutting down".into()),
        );
        tracing::info!(sockets = n, "shutting down");
        let _ = tokio::time::timeout(Duration::from_secs(5), self.app.hub.wait_empty()).await;
        if let Some(tx) = self.http_stop.take() {
            let _ = tx.send(());
        }
        self.stop.cancel();
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        for t in tasks {
            let abort = t.abort_handle();
            if tokio::time::timeout(Duration::from_secs(5), t)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.app
            .hub
            .command_where(|_| true, || hub::Outgoing::Abort);
        self.stop.cancel();
        for t in self
            .tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            t.abort();
        }
    }
}

/// Starts a server: loads (or builds) the data, hashes passwords, connects to Redis when asked,
/// binds the listen address and serves until [`RunningServer::shutdown`] or drop.
pub async fn start(config: ServerConfig) -> Result<RunningServer, ServerError> {
    let loopback = config.listen.ip().to_canonical().is_loopback();
    if config.test_controls && !loopback {
        return Err(ServerError::Config(format!(
            "--test-controls is only allowed on a loopback address, not {}",
            config.listen
        )));
    }
    if config.max_sockets_per_user == 0 || config.history_cap == 0 {
        return Err(ServerError::Config(
            "max_sockets_per_user and history_cap must be at least 1".into(),
        ));
    }
    if !(1..=1024).contains(&config.login_hash_concurrency) || config.login_hash_queue > 1 << 16 {
        return Err(ServerError::Config(format!(
            "login_hash_concurrency must be 1..=1024 (not {}) and login_hash_queue at most 65536 \
             (not {})",
            config.login_hash_concurrency, config.login_hash_queue
        )));
    }
    const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);
    for (name, value, max) in [
        ("token_ttl", config.token_ttl, 10 * YEAR),
        ("heartbeat_timeout", config.heartbeat_timeout, YEAR),
        ("ping_interval", config.ping_interval, YEAR),
        ("login_window", config.login_window, YEAR),
        (
            "demo_activity",
            config.demo_activity.unwrap_or(Duration::from_secs(1)),
            YEAR,
        ),
    ] {
        if value.is_zero() || value > max {
            return Err(ServerError::Config(format!(
                "{name} must be more than 0 and at most {} days, not {value:?}",
                max.as_secs() / 86_400
            )));
        }
    }
    let (seed, origin) = match (&config.data, &config.data_file) {
        (Some(d), _) => (d.clone(), PathBuf::from("<in-process data>")),
        (None, Some(p)) => (data::load(p)?, p.clone()),
        (None, None) => (demo_data(), PathBuf::from("<demo data>")),
    };
    let published = data::published_accounts(&seed);
    if !published.is_empty() && !loopback {
        if !config.allow_public_demo {
            return Err(ServerError::Config(format!(
                "the demo accounts ({}) have published passwords; refusing to serve them on the \
                 non-loopback address {}. Listen on 127.0.0.1 or [::1], give --data with your \
                 own accounts, or pass --allow-public-demo if anyone who can reach this address \
                 may sign in as them",
                published.join(", "),
                config.listen
            )));
        }
        tracing::warn!(
            listen = %config.listen,
            accounts = %published.join(", "),
            "!!! --allow-public-demo: demo accounts with PUBLISHED PASSWORDS (admin included) are \
             served on a non-loopback address; anyone who can reach it can sign in as them !!!"
        );
    }
    // Argon2 is deliberately slow: hash off the async threads.
    let data = tokio::task::spawn_blocking(move || data::build(seed, Path::new(&origin)))
        .await
        .map_err(|e| ServerError::Internal(format!("hashing passwords failed: {e}")))??;

    let stop = CancellationToken::new();
    let mut tasks = Vec::new();
    let instance = format!("{:08x}", rand::random::<u32>());

    let (auth, hub, bus, subscriber) = match &config.redis_url {
        None => {
            let secret = match &config.jwt_secret {
                Some(s) => s.as_bytes().to_vec(),
                None => rand::random::<[u8; 32]>().to_vec(),
            };
            let auth = Arc::new(auth::Auth::new(&secret, config.token_ttl));
            let hub = Arc::new(hub::Hub::new(None, config.max_sockets_per_user));
            (auth, hub, bus::Bus::memory(config.history_cap), None)
        }
        Some(url) => {
            let client = redis::Client::open(url.as_str())
                .map_err(|e| ServerError::Redis(format!("bad URL {url:?}: {e}")))?;
            let mut conn =
                tokio::time::timeout(Duration::from_secs(10), client.get_connection_manager())
                    .await
                    .map_err(|_| ServerError::Redis(format!("no answer from {url} within 10 s")))?
                    .map_err(|e| ServerError::Redis(format!("cannot connect to {url}: {e}")))?;
            let secret = match &config.jwt_secret {
                Some(s) => s.clone(),
                None => {
                    let fresh: String = rand::random::<[u8; 32]>()
                        .iter()
                        .map(|b| format!("{b:02x}"))
                        .collect();
                    let _: bool = redis::cmd("SET")
                        .arg("taskbell:jwt_secret")
                        .arg(&fresh)
                        .arg("NX")
                        .query_async::<Option<String>>(&mut conn)
                        .await
                        .map(|r| r.is_some())
                        .map_err(|e| ServerError::Redis(e.to_string()))?;
                    redis::cmd("GET")
                        .arg("taskbell:jwt_secret")
                        .query_async(&mut conn)
                        .await
                        .map_err(|e| ServerError::Redis(e.to_string()))?
                }
            };
            let auth = Arc::new(auth::Auth::new(secret.as_bytes(), config.token_ttl));
            bus::load_revocations(&mut conn, &auth)
                .await
                .map_err(|e| ServerError::Redis(e.to_string()))?;
            let (sub_tx, sub_rx) = tokio::sync::mpsc::unbounded_channel();
            let hub = Arc::new(hub::Hub::new(Some(sub_tx), config.max_sockets_per_user));
            let up = Arc::new(AtomicBool::new(false));
            let bus = bus::Bus::redis(conn, up.clone(), config.history_cap);
            (
                auth.clone(),
                hub.clone(),
                bus,
                Some((client, sub_rx, hub, auth, up)),
            )
        }
    };
    if let Some((client, sub_rx, hub, auth, up)) = subscriber {
        tasks.push(tokio::spawn(bus::run_subscriber(
            client,
            sub_rx,
            hub,
            auth,
            up,
            stop.clone(),
        )));
    }

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServerError::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ServerError::Bind {
        addr: config.listen,
        source,
    })?;

    let app = Arc::new(app::App {
        limiter: auth::LoginLimiter::new(
            config.login_max_failures,
            config.login_max_failures_per_ip,
            config.login_window,
        ),
        hashing: Arc::new(auth::HashGate::new(
            config.login_hash_concurrency,
            config.login_hash_queue,
        )),
        cfg: config,
        data: Mutex::new(data),
        auth,
        hub,
        bus,
        controls: app::TestControls::default(),
        instance,
    });
    let router = api::router(app.clone());
    let (http_tx, http_rx) = tokio::sync::oneshot::channel::<()>();
    let serve = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        let _ = http_rx.await;
    });
    tasks.push(tokio::spawn(async move {
        if let Err(e) = serve.await {
            tracing::error!("http server stopped: {e}");
        }
    }));
    if let Some(every) = app.cfg.demo_activity {
        tasks.push(tokio::spawn(demo::run(app.clone(), every, stop.clone())));
    }
    tracing::info!(%addr, instance = %app.instance, redis = app.bus.is_redis(), "taskbell-server listening");
    Ok(RunningServer {
        addr,
        app,
        stop,
        http_stop: Some(http_tx),
        tasks: Mutex::new(tasks),
    })
}
