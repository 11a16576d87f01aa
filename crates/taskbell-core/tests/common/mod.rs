//! Shared helpers of the core's integration tests: the reference server in-process on port 0
//! and engines with a `RecordingNotifier` and an in-memory keyring. The REST calls, the
//! black-holing TCP proxy and Redis come from `taskbell-testkit`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use taskbell_core::backoff::BackoffPolicy;
use taskbell_core::config::{Config, Paths};
use taskbell_core::credentials::Credentials;
use taskbell_core::i18n::Lang;
use taskbell_core::notifier::RecordingNotifier;
use taskbell_core::protocol::Notification;
use taskbell_core::supervisor::{
    Command, Engine, EngineOptions, Event, ExitReason, State, Status, Timing, sign_in,
};
use taskbell_server::{DemoAccount, RunningServer, ServerConfig};
// Each test binary uses some of these.
#[allow(unused_imports)]
pub use taskbell_testkit::http::{get, login, notify_user, post};
#[allow(unused_imports)]
pub use taskbell_testkit::{Proxy, Redis};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// Bounds every await (a hang fails the test instead of blocking CI); never a speed limit.
pub const WAIT: Duration = Duration::from_secs(40);

pub fn server_config() -> ServerConfig {
    ServerConfig {
        test_controls: true,
        jwt_secret: Some("core-integration-tests-secret".to_string()),
        ..ServerConfig::default()
    }
}

pub async fn server() -> RunningServer {
    taskbell_server::start(server_config())
        .await
        .expect("server starts")
}

/// Signs a demo account in with its password and returns the access token.
pub async fn token_of(base: &str, who: DemoAccount) -> String {
    login(base, who.username, who.password).await
}

/// A test client: an engine with its own config/data dirs, an in-memory keyring and a
/// recording notifier. Reads events into `seen` while waiting.
pub struct Client {
    pub events: mpsc::Receiver<Event>,
    pub state: watch::Receiver<Status>,
    pub commands: mpsc::Sender<Command>,
    pub join: Option<JoinHandle<ExitReason>>,
    pub notifier: RecordingNotifier,
    pub creds: Credentials,
    pub paths: Paths,
    pub dir: Arc<tempfile::TempDir>,
    pub seen: Vec<Event>,
    pub account: DemoAccount,
    pub config: Config,
}

/// Short heartbeats and fast backoff for tests.
pub fn test_config(base: &str, who: DemoAccount) -> Config {
    Config {
        server: Some(base.to_string()),
        username: Some(who.username.to_string()),
        heartbeat_interval_secs: 1,
        pong_timeout_secs: 5,
        language: Some(Lang::ZhCn),
        ..Config::default()
    }
}

pub fn test_timing() -> Timing {
    Timing {
        backoff: BackoffPolicy {
            base: Duration::from_millis(100),
            cap: Duration::from_secs(2),
            reset_after: Duration::from_secs(30),
            // These tests close sockets right after a catch-up and expect the next
            // outage to start from the first delay; the minimum uptime of a healthy
            // connection is tested on its own (tests/hostile.rs in taskbell-e2e).
            healthy_after: Duration::ZERO,
        },
        policy_close_floor: Duration::from_millis(500),
        // Test machines do not sleep; a busy CI box must not look like a resume.
        clock_jump: Duration::from_secs(3600),
        ..Timing::default()
    }
}

pub struct Setup {
    pub remember: bool,
    pub tweak_config: Box<dyn FnOnce(&mut Config) + Send>,
    pub tweak_options: Box<dyn FnOnce(&mut EngineOptions) + Send>,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            remember: false,
            tweak_config: Box::new(|_| {}),
            tweak_options: Box::new(|_| {}),
        }
    }
}

impl Client {
    /// Signs in through `sign_in` (token into the keyring, config written) and starts an engine.
    pub async fn start(base: &str, who: DemoAccount, setup: Setup) -> Client {
        let dir = Arc::new(tempfile::tempdir().unwrap());
        let paths = Paths {
            config_dir: dir.path().join("config"),
            data_dir: dir.path().join("data"),
        };
        std::fs::create_dir_all(&paths.config_dir).unwrap();
        std::fs::create_dir_all(&paths.data_dir).unwrap();
        let creds = Credentials::in_memory();
        let signed = sign_in(
            &paths,
            &creds,
            base,
            who.username,
            who.password,
            setup.remember,
        )
        .await
        .expect("sign in");
        assert_eq!(signed.user.username, who.username);
        let mut config = Config::load(&paths.config_file()).unwrap();
        let t = test_config(base, who);
        config.heartbeat_interval_secs = t.heartbeat_interval_secs;
        config.pong_timeout_secs = t.pong_timeout_secs;
        config.language = t.language;
        (setup.tweak_config)(&mut config);
        // Not saved: the 1 s test heartbeats are below what a config file may say.
        Client::start_engine(
            who,
            dir,
            paths,
            creds,
            RecordingNotifier::new(),
            config,
            setup.tweak_options,
        )
    }

    /// Starts a new engine over the same dirs and keyring (a restart of the client).
    pub fn restart(&self) -> Client {
        let config = self.config.clone();
        Client::start_engine(
            self.account,
            self.dir.clone(),
            self.paths.clone(),
            self.creds.clone(),
            RecordingNotifier::new(),
            config,
            Box::new(|_| {}),
        )
    }

    fn start_engine(
        who: DemoAccount,
        dir: Arc<tempfile::TempDir>,
        paths: Paths,
        creds: Credentials,
        notifier: RecordingNotifier,
        config: Config,
        tweak: Box<dyn FnOnce(&mut EngineOptions) + Send>,
    ) -> Client {
        let mut opts = EngineOptions::new(
            config,
            paths.clone(),
            Arc::new(notifier.clone()),
            creds.clone(),
        );
        opts.lang = Lang::ZhCn;
        opts.timing = test_timing();
        opts.utc_offset = time::UtcOffset::UTC;
        tweak(&mut opts);
        let config = opts.config.clone();
        let handle = Engine::start(opts).expect("engine starts");
        Client {
            events: handle.events,
            state: handle.state,
            commands: handle.commands,
            join: Some(handle.join),
            notifier,
            creds,
            paths,
            dir,
            seen: Vec::new(),
            account: who,
            config,
        }
    }

    /// Waits for the next event matching `pred` (events before it are kept in `seen`).
    pub async fn wait_event(&mut self, what: &str, mut pred: impl FnMut(&Event) -> bool) -> Event {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(e)) => {
                    self.seen.push(e.clone());
                    if pred(&e) {
                        return e;
                    }
                }
                Ok(None) => panic!(
                    "{}: engine ended while waiting for {what}; seen: {:#?}",
                    self.account.username, self.seen
                ),
                Err(_) => panic!(
                    "{}: timed out waiting for {what}; seen: {:#?}",
                    self.account.username, self.seen
                ),
            }
        }
    }

    /// Like `wait_event`, but an event already read counts too.
    pub async fn wait_seen(&mut self, what: &str, mut pred: impl FnMut(&Event) -> bool) -> Event {
        if let Some(e) = self.seen.iter().find(|e| pred(e)) {
            return e.clone();
        }
        self.wait_event(what, pred).await
    }

    /// Waits for the socket to be up and subscribed: `Connected`, then a heartbeat answered
    /// (the server subscribes a socket before it answers its first ping). Events already
    /// read count: a `Connected` not followed by `Reconnecting` is the current connection.
    pub async fn wait_synced(&mut self) {
        let last_connected = self
            .seen
            .iter()
            .rposition(|e| matches!(e, Event::Connected));
        let last_reconnecting = self
            .seen
            .iter()
            .rposition(|e| matches!(e, Event::Reconnecting { .. }));
        let current = match (last_connected, last_reconnecting) {
            (Some(c), Some(r)) if c > r => Some(c),
            (Some(c), None) => Some(c),
            _ => None,
        };
        let after = match current {
            Some(c) => c,
            None => {
                self.wait_event("connected", |e| matches!(e, Event::Connected))
                    .await;
                self.seen.len() - 1
            }
        };
        if !self.seen[after..]
            .iter()
            .any(|e| matches!(e, Event::Latency { .. }))
        {
            self.wait_event("first pong", |e| matches!(e, Event::Latency { .. }))
                .await;
        }
    }

    /// Waits until the current connection has caught up (a `CaughtUp` after the
    /// last `Connected`).
    #[allow(dead_code)] // not every test binary uses it
    pub async fn wait_caught_up(&mut self) {
        self.wait_synced().await;
        let last_connected = self
            .seen
            .iter()
            .rposition(|e| matches!(e, Event::Connected))
            .unwrap_or(0);
        if !self.seen[last_connected..]
            .iter()
            .any(|e| matches!(e, Event::CaughtUp { .. }))
        {
            self.wait_event("caught up", |e| matches!(e, Event::CaughtUp { .. }))
                .await;
        }
    }

    /// Waits for a new notification whose content contains `needle`.
    pub async fn wait_notification(&mut self, needle: &str) -> Notification {
        match self
            .wait_event(
                &format!("notification {needle:?}"),
                |e| matches!(e, Event::Notification(n) if n.content.contains(needle)),
            )
            .await
        {
            Event::Notification(n) => n,
            _ => unreachable!(),
        }
    }

    /// Notifications seen so far.
    pub fn notifications(&self) -> Vec<Notification> {
        self.seen
            .iter()
            .filter_map(|e| match e {
                Event::Notification(n) => Some(n.clone()),
                _ => None,
            })
            .collect()
    }

    /// Reads events until `pred` holds for the status, or panics after `WAIT`.
    pub async fn wait_state(&mut self, what: &str, pred: impl Fn(&Status) -> bool) -> Status {
        let mut rx = self.state.clone();
        let fut = rx.wait_for(|s| pred(s));
        match tokio::time::timeout(WAIT, fut).await {
            Ok(Ok(s)) => s.clone(),
            Ok(Err(_)) => panic!("engine ended while waiting for state {what}"),
            Err(_) => panic!(
                "timed out waiting for state {what}; now {:?}",
                self.state.borrow().state
            ),
        }
    }

    pub async fn command(&self, c: Command) {
        self.commands.send(c).await.expect("engine is running");
    }

    /// Shuts the engine down and returns why it ended.
    pub async fn stop(&mut self) -> ExitReason {
        let _ = self.commands.send(Command::Shutdown).await;
        self.join_exit().await
    }

    pub async fn join_exit(&mut self) -> ExitReason {
        let join = self.join.take().expect("engine still owned");
        tokio::time::timeout(WAIT, join)
            .await
            .expect("engine ends in time")
            .expect("engine task did not panic")
    }

    pub fn is_connected(&self) -> bool {
        matches!(self.state.borrow().state, State::Connected { .. })
    }
}
