//! Networks where annotators work: the reference server behind TLS with a
//! certificate of a private CA (`TlsFront`), reached through an HTTP CONNECT
//! proxy or a SOCKS5 proxy. REST and the WebSocket must make the same trust and
//! proxy decision (`taskbell_core::net::Network`): the CA file from the config
//! is trusted by both, the proxy from the config or the environment carries
//! both, and a wrong certificate or proxy is a clear error naming the cause.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)] // a failed step is a failed test

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use taskbell_core::config::{Config, Paths};
use taskbell_core::credentials::Credentials;
use taskbell_core::i18n::Lang;
use taskbell_core::notifier::RecordingNotifier;
use taskbell_core::supervisor::{
    Command, Engine, EngineHandle, EngineOptions, Event, Timing, sign_in,
};
use taskbell_e2e::{
    ChildGuard, ConnectProxy, Desktop, DesktopOptions, ServerOptions, ServerProcess, Socks5Proxy,
    Stdout, TestCa, TlsFront, binary,
};
use taskbell_server::DEMO_ANNOTATOR;

const WAIT: Duration = Duration::from_secs(60);

struct Net {
    server: ServerProcess,
    front: TlsFront,
    ca_file: std::path::PathBuf,
    dir: tempfile::TempDir,
}

impl Net {
    fn start() -> Net {
        let server = ServerProcess::start(ServerOptions {
            extra_args: vec!["--test-controls".into()],
            ..ServerOptions::default()
        })
        .expect("taskbell-server");
        let ca = TestCa::new().unwrap();
        let front = TlsFront::start(&ca, server.addr()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let ca_file = ca.write_ca(dir.path()).unwrap();
        Net {
            server,
            front,
            ca_file,
            dir,
        }
    }

    fn paths(&self) -> Paths {
        Paths {
            config_dir: self.dir.path().join("config"),
            data_dir: self.dir.path().join("data"),
        }
    }

    /// Writes `config.toml` with these network settings.
    fn configure(&self, ca: bool, proxy: Option<&str>) {
        let paths = self.paths();
        let config = Config {
            ca_file: ca.then(|| self.ca_file.display().to_string()),
            proxy: proxy.map(str::to_owned),
            ..Config::default()
        };
        config.save(&paths.config_file()).unwrap();
    }

    /// Publishes a notification to the demo annotator, straight to the server.
    async fn notify(&self, title: &str) {
        let resp = taskbell_testkit::http::http()
            .post(format!("{}/api/test/notify", self.server.base_url()))
            .json(&json!({"user_id": DEMO_ANNOTATOR.id, "type": "system", "title": title, "content": "c"}))
            .timeout(WAIT)
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{:?}", resp.text().await);
    }

    /// Signs in through the configured network and starts an engine.
    async fn engine(&self) -> EngineHandle {
        let paths = self.paths();
        let creds = Credentials::in_memory();
        let signed = sign_in(
            &paths,
            &creds,
            &self.front.base_url(),
            DEMO_ANNOTATOR.username,
            DEMO_ANNOTATOR.password,
            false,
        )
        .await
        .expect("sign in through the network");
        let mut opts = EngineOptions::new(
            signed.config,
            paths,
            Arc::new(RecordingNotifier::new()),
            creds,
        );
        opts.lang = Lang::En;
        opts.timing = Timing {
            clock_jump: Duration::from_secs(3600),
            ..Timing::default()
        };
        opts.timing.backoff.base = Duration::from_millis(100);
        opts.timing.backoff.cap = Duration::from_secs(1);
        Engine::start(opts).expect("engine starts")
    }
}

async fn wait_event(h: &mut EngineHandle, what: &str, pred: impl Fn(&Event) -> bool) -> Event {
    loop {
        let e = tokio::time::timeout(WAIT, h.events.recv())
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
            .unwrap_or_else(|| panic!("the engine stopped while waiting for {what}"));
        if pred(&e) {
            return e;
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Through an HTTP CONNECT proxy to a server whose certificate comes from a private
/// CA named in `ca_file`: sign-in, catch-up and live notifications all work, and
/// the socket itself goes through the proxy (cutting the proxy's tunnels drops it,
/// and it comes back through the proxy).
#[test]
fn an_internal_ca_and_a_connect_proxy_serve_rest_and_the_socket_alike() {
    let net = Net::start();
    let proxy = ConnectProxy::start().unwrap();
    net.configure(true, Some(&proxy.url()));
    runtime().block_on(async {
        let mut h = net.engine().await;
        wait_event(&mut h, "caught up", |e| matches!(e, Event::CaughtUp { .. })).await;
        net.notify("through the proxy").await;
        wait_event(
            &mut h,
            "the notification",
            |e| matches!(e, Event::Notification(n) if n.title == "through the proxy"),
        )
        .await;
        let target = format!("localhost:{}", net.front.port());
        assert!(
            proxy.tunnels().iter().all(|t| *t == target) && !proxy.tunnels().is_empty(),
            "{:?}",
            proxy.tunnels()
        );
        // The socket is one of the tunnels: cut them all and it must reconnect.
        proxy.cut_all();
        wait_event(&mut h, "the cut socket", |e| {
            matches!(e, Event::Reconnecting { .. })
        })
        .await;
        wait_event(&mut h, "caught up again", |e| {
            matches!(e, Event::CaughtUp { .. })
        })
        .await;
        net.notify("after the cut").await;
        wait_event(
            &mut h,
            "the second notification",
            |e| matches!(e, Event::Notification(n) if n.title == "after the cut"),
        )
        .await;
        let _ = h.commands.send(Command::Shutdown).await;
        let _ = h.join.await;
    });
}

/// SOCKS5 (the proxy resolves the name) carries REST and the socket too.
#[test]
fn a_socks5_proxy_carries_rest_and_the_socket() {
    let net = Net::start();
    let socks = Socks5Proxy::start().unwrap();
    net.configure(true, Some(&socks.url()));
    runtime().block_on(async {
        let mut h = net.engine().await;
        wait_event(&mut h, "caught up", |e| matches!(e, Event::CaughtUp { .. })).await;
        net.notify("through socks").await;
        wait_event(
            &mut h,
            "the notification",
            |e| matches!(e, Event::Notification(n) if n.title == "through socks"),
        )
        .await;
        let _ = h.commands.send(Command::Shutdown).await;
        let _ = h.join.await;
    });
    let target = format!("localhost:{}", net.front.port());
    let tunnels = socks.tunnels();
    // At least the sign-in, the engine's REST client and the socket.
    assert!(tunnels.len() >= 2, "{tunnels:?}");
    assert!(tunnels.iter().all(|t| *t == target), "{tunnels:?}");
}

/// The real `taskbell login`, its errors one line each.
fn login(desktop: &Desktop, net: &Net, env: &[(&str, &str)]) -> (bool, String) {
    let mut cmd = desktop.command(binary("taskbell").expect("taskbell"));
    cmd.env("TASKBELL_CONFIG_DIR", net.paths().config_dir)
        .env("TASKBELL_DATA_DIR", net.paths().data_dir)
        .env("LANG", "en_US.UTF-8")
        .env_remove("RUST_LOG");
    for k in [
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
        "NO_PROXY",
        "no_proxy",
    ] {
        cmd.env_remove(k);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.args([
        "login",
        "--server",
        &net.front.base_url(),
        "--username",
        DEMO_ANNOTATOR.username,
        "--password-stdin",
    ]);
    let logs = net.dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let mut child = ChildGuard::spawn_with_stdin(
        "taskbell-login",
        &mut cmd,
        &logs,
        Stdout::Collect,
        Some(format!("{}\n", DEMO_ANNOTATOR.password).as_bytes()),
    )
    .unwrap();
    let status = child.wait_timeout(WAIT).unwrap();
    (status.success(), child.log())
}

fn desktop() -> Desktop {
    Desktop::start_with(DesktopOptions {
        notifications: false,
        keyring: true,
        tray: false,
    })
    .expect("desktop session")
}

/// Without the CA file the certificate is not trusted: a clear error that says so
/// and names the setting that fixes it.
#[test]
fn an_untrusted_certificate_is_refused_with_the_ca_file_hint() {
    let net = Net::start();
    net.configure(false, Some("none"));
    let d = desktop();
    let (ok, err) = login(&d, &net, &[]);
    assert!(!ok, "{err}");
    assert!(
        err.contains("not trusted") && err.contains("ca_file"),
        "{err}"
    );
    // With it, the same sign-in works.
    net.configure(true, Some("none"));
    let (ok, err) = login(&d, &net, &[]);
    assert!(ok, "{err}");
}

/// A proxy that refuses the tunnel, and one that is not there, are named as such.
#[test]
fn a_refusing_or_missing_proxy_is_named_in_the_error() {
    let net = Net::start();
    let d = desktop();
    let refusing = ConnectProxy::refusing().unwrap();
    net.configure(true, Some(&refusing.url()));
    let (ok, err) = login(&d, &net, &[]);
    assert!(!ok, "{err}");
    assert!(err.contains("proxy"), "{err}");
    // Nothing listens there: kept bound, never listening, so connects are refused.
    let rt = runtime();
    let _in_rt = rt.enter();
    let reserved = tokio::net::TcpSocket::new_v4().unwrap();
    reserved.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = reserved.local_addr().unwrap().port();
    let absent = format!("http://127.0.0.1:{port}");
    net.configure(true, Some(&absent));
    let (ok, err) = login(&d, &net, &[]);
    assert!(!ok, "{err}");
    assert!(err.contains(&format!("proxy {absent}")), "{err}");
}

/// With no proxy in the config, the environment's is used; `NO_PROXY` is respected.
#[test]
fn the_environment_proxy_is_used_and_no_proxy_is_respected() {
    let net = Net::start();
    let d = desktop();
    let proxy = ConnectProxy::start().unwrap();
    net.configure(true, None);
    let (ok, err) = login(&d, &net, &[("HTTPS_PROXY", &proxy.url())]);
    assert!(ok, "{err}");
    let through = proxy.tunnels().len();
    assert!(through >= 1, "the sign-in went through the proxy");
    let (ok, err) = login(
        &d,
        &net,
        &[("HTTPS_PROXY", &proxy.url()), ("NO_PROXY", "localhost")],
    );
    assert!(ok, "{err}");
    assert_eq!(
        proxy.tunnels().len(),
        through,
        "NO_PROXY=localhost goes direct"
    );
}
