//! The app on Tauri's mock runtime, with its real context (config, capabilities), the real
//! core and the real reference server in-process on a free port. Only the desktop is
//! replaced: an in-memory keyring and a notifier that records toasts.
//!
//! These tests drive the IPC commands exactly as a window would (through the ACL), and
//! watch the controller's events as a window would hear them.

// Test helpers outside `#[test]` functions: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};
use taskbell_app::controller::{self, Deps, EVENT_NOTIFICATION, EVENT_STATUS};
use taskbell_app::model::WindowKind;
use taskbell_app::model::{ConnState, Lang, UiStatus};
use taskbell_app::{Options, Shared, run_app};
use taskbell_core::accounts;
use taskbell_core::config::{Config, Paths};
use taskbell_core::credentials::Credentials;
use taskbell_core::delivery::ToastActionKind;
use taskbell_core::notifier::RecordingNotifier;
use tauri::test::{INVOKE_KEY, MockRuntime, get_ipc_response, mock_builder};
use tauri::webview::InvokeRequest;
use tauri::{App, Listener, Manager, WebviewWindow};

/// Bounds every wait; a hang fails the test instead of stalling CI.
const WAIT: Duration = Duration::from_secs(60);

struct Fixture {
    app: App<MockRuntime>,
    toasts: RecordingNotifier,
    _dir: tempfile::TempDir,
    statuses: mpsc::Receiver<UiStatus>,
    notifications: mpsc::Receiver<Value>,
}

fn main_paths(dir: &tempfile::TempDir) -> Paths {
    Paths {
        config_dir: dir.path().join("config"),
        data_dir: dir.path().join("data"),
    }
}

fn start_app(options: Options, config: Option<Config>) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let paths = main_paths(&dir);
    if let Some(c) = config {
        std::fs::create_dir_all(&paths.config_dir).unwrap();
        c.save(&paths.config_file()).unwrap();
    }
    start_app_in(options, dir, Credentials::in_memory())
}

/// The app on the config and data in `dir` (see [`main_paths`]), with `credentials`.
fn start_app_in(options: Options, dir: tempfile::TempDir, credentials: Credentials) -> Fixture {
    let paths = main_paths(&dir);
    let toasts = RecordingNotifier::new();
    let deps = Deps {
        paths,
        credentials: Ok(credentials),
        notifier: Arc::new(toasts.clone()),
        notifier_factory: None,
        utc_offset: time::UtcOffset::UTC,
    };
    let shared = Shared::new(
        Options {
            tray: false,
            ..options
        },
        Lang::En,
        deps,
    );
    let app = run_app(mock_builder(), taskbell_app::context(), shared).unwrap();
    // The mock runtime's event loop does not run here, so start what setup would.
    taskbell_app::init(app.handle()).unwrap();
    let (tx, statuses) = mpsc::channel();
    app.listen_any(EVENT_STATUS, move |e| {
        let _ = tx.send(serde_json::from_str::<UiStatus>(e.payload()).unwrap());
    });
    let (tx, notifications) = mpsc::channel();
    app.listen_any(EVENT_NOTIFICATION, move |e| {
        let _ = tx.send(serde_json::from_str::<Value>(e.payload()).unwrap());
    });
    Fixture {
        app,
        toasts,
        _dir: dir,
        statuses,
        notifications,
    }
}

impl Fixture {
    fn controller(&self) -> taskbell_app::Controller {
        taskbell_app::controller_of(self.app.handle())
    }

    /// Stops the engines, as the app does on its way out.
    fn shutdown(&self) {
        let ctl = self.controller();
        tauri::async_runtime::block_on(controller::shutdown(&ctl));
    }

    fn status(&self) -> UiStatus {
        self.controller().shared().status()
    }

    /// Waits until the current status satisfies `ok`. Published statuses only wake the wait:
    /// one still queued from before (say, the unread count before a notification arrived)
    /// must not pass for the state after a later command.
    fn wait_status(&self, what: &str, ok: impl Fn(&UiStatus) -> bool) -> UiStatus {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let now = self.status();
            if ok(&now) {
                return now;
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self
                .statuses
                .recv_timeout(left.min(Duration::from_millis(500)))
            {
                Ok(_) | Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(e) => panic!("status channel: {e}"),
            }
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for {what}: {now:?}"
            );
        }
    }

    fn window(&self, kind: WindowKind) -> Option<WebviewWindow<MockRuntime>> {
        self.app.get_webview_window(kind.label())
    }

    fn open(&self, kind: WindowKind) -> WebviewWindow<MockRuntime> {
        taskbell_app::windows::open(self.app.handle(), kind, Lang::En).unwrap();
        self.window(kind).unwrap()
    }
}

/// Calls `cmd` from `window` as its page would; `Err` carries the command's error JSON
/// (or the ACL's refusal as a string).
fn invoke(window: &WebviewWindow<MockRuntime>, cmd: &str, args: Value) -> Result<Value, Value> {
    let request = InvokeRequest {
        cmd: cmd.into(),
        callback: tauri::ipc::CallbackFn(0),
        error: tauri::ipc::CallbackFn(1),
        url: "tauri://localhost".parse().unwrap(),
        body: tauri::ipc::InvokeBody::Json(args),
        headers: Default::default(),
        invoke_key: INVOKE_KEY.to_string(),
    };
    get_ipc_response(window, request).map(|b| b.deserialize::<Value>().unwrap())
}

struct Server {
    rt: tokio::runtime::Runtime,
    server: Option<taskbell_server::RunningServer>,
    base: String,
}

impl Server {
    fn start() -> Server {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let server = rt
            .block_on(taskbell_server::start(taskbell_server::ServerConfig {
                test_controls: true,
                ..Default::default()
            }))
            .unwrap();
        let base = server.base_url();
        Server {
            rt,
            server: Some(server),
            base,
        }
    }

    /// Signs the demo annotator in to this server, keeping the account in `paths` (as
    /// `taskbell login` does) and its token in `credentials`.
    fn sign_in_demo(&self, paths: &Paths, credentials: &Credentials) {
        let demo = taskbell_server::DEMO_ANNOTATOR;
        self.rt
            .block_on(taskbell_core::supervisor::sign_in(
                paths,
                credentials,
                &self.base,
                demo.username,
                demo.password,
                false,
            ))
            .unwrap();
    }

    /// Makes the next `count` requests to `path` answer `status` (`/api/test/fail`).
    fn fail(&self, path: &str, status: u16, count: u32) {
        self.post(
            "/api/test/fail",
            json!({"path": path, "status": status, "count": count}),
        );
    }

    /// Makes the server push a notification to the demo annotator (user 1).
    fn notify(&self, body: Value) {
        self.post("/api/test/notify", body);
    }

    /// POSTs `body` to one of the server's test controls; it must succeed.
    fn post(&self, path: &str, body: Value) {
        let url = format!("{}{path}", self.base);
        let resp = self
            .rt
            .block_on(async {
                taskbell_testkit::http::http()
                    .post(url)
                    .json(&body)
                    .send()
                    .await
            })
            .unwrap();
        assert!(resp.status().is_success(), "{path}: {}", resp.status());
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            self.rt.block_on(s.shutdown());
        }
    }
}

/// The token is refused with 403 when the engine checks it: the tray ends signed out
/// with the reason and the login window opens. The engine's own last state (it never
/// left "Connecting…") is published before its end, never after it.
#[test]
fn access_denied_at_start_leaves_the_tray_signed_out_with_the_reason() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let credentials = Credentials::in_memory();
    server.sign_in_demo(&main_paths(&dir), &credentials);
    server.fail("/api/auth/me", 403, 1000);
    let f = start_app_in(Options::default(), dir, credentials);
    let deadline = std::time::Instant::now() + WAIT;
    while f.window(WindowKind::Login).is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "login window never opened: {:?}",
            f.controller().shared().status()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The login window opens after the end was published; nothing publishes after it.
    std::thread::sleep(Duration::from_millis(300));
    let s = f.controller().shared().status();
    match &s.state {
        ConnState::SignedOut { reason: Some(r) } => assert!(!r.is_empty(), "{s:?}"),
        other => panic!("the tray says {other:?}, not signed out with a reason"),
    }
    f.shutdown();
}

#[test]
fn starts_with_no_window_and_in_demo_mode_when_no_server_is_configured() {
    let f = start_app(Options::default(), None);
    assert!(
        f.app.webview_windows().is_empty(),
        "no window (so no webview) at start"
    );
    let s = f.wait_status("demo connected", |s| {
        matches!(s.state, ConnState::Connected { .. })
    });
    assert!(s.demo, "{s:?}");
    let user = s.user.unwrap();
    assert_eq!(
        (user.username.as_str(), user.role.as_str()),
        ("zhangsan", "annotator")
    );
    assert!(s.server.unwrap().starts_with("http://127.0.0.1:"));
    // The login summary reached the notifier and the menu.
    let toasts =
        tauri::async_runtime::block_on(f.toasts.wait_for_count(WAIT, 1)).expect("summary toast");
    assert!(
        toasts[0].title == "Signed in" || toasts[0].title == "登录成功",
        "{:?}",
        toasts[0]
    );
    let s = f.wait_status("summary lines", |s| !s.summary_lines.is_empty());
    assert!(
        toasts[0].body.contains(&s.summary_lines[0]),
        "{s:?} vs {:?}",
        toasts[0]
    );
    assert!(
        f.app.webview_windows().is_empty(),
        "still no window after signing in"
    );
    f.shutdown();
}

#[test]
fn login_window_signs_in_with_plain_errors_then_live_notifications_reach_the_center() {
    let server = Server::start();
    // Configured but never signed in: no token, so the login window opens by itself.
    let config = Config {
        server: Some(server.base.clone()),
        username: Some("zhangsan".into()),
        ..Config::default()
    };
    let f = start_app(Options::default(), Some(config));
    f.wait_status("signed out", |s| {
        matches!(s.state, ConnState::SignedOut { .. })
    });
    let deadline = std::time::Instant::now() + WAIT;
    while f.window(WindowKind::Login).is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "login window never opened"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let login = f.window(WindowKind::Login).unwrap();

    // The login window may not read the history (capabilities/login.json).
    let denied = invoke(&login, "list_history", json!({})).unwrap_err();
    assert!(denied.to_string().contains("not allowed"), "{denied}");

    let sign_in = |server: &str, password: &str| {
        invoke(
            &login,
            "sign_in",
            json!({"server": server, "username": "zhangsan", "password": password, "remember": false}),
        )
    };
    let e = sign_in(&server.base, "wrong-password").unwrap_err();
    assert_eq!(
        (e["kind"].as_str(), e["field"].as_str()),
        (Some("wrong_password"), Some("password")),
        "{e}"
    );
    // A port kept bound but never listening: connects are refused, and nothing else can take
    // the port meanwhile (a listener dropped at once would leave it free for anyone).
    let refusing = tokio::net::TcpSocket::new_v4().unwrap();
    refusing.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let closed = refusing.local_addr().unwrap().port();
    let e = sign_in(&format!("http://127.0.0.1:{closed}"), "x").unwrap_err();
    drop(refusing);
    assert_eq!(e["kind"], "unreachable", "{e}");
    let e = sign_in("http://label.example.com", "x").unwrap_err();
    assert_eq!(
        (e["kind"].as_str(), e["field"].as_str()),
        (Some("bad_url"), Some("server")),
        "{e}"
    );
    let e = sign_in("", "x").unwrap_err();
    assert_eq!(e["field"], "server", "{e}");

    let user = sign_in(&server.base, "annotate-123").unwrap();
    assert_eq!(user["display_name"], "张三");
    assert!(
        user.get("token").is_none(),
        "no token in what the window gets: {user}"
    );
    let s = f.wait_status("connected", |s| {
        matches!(s.state, ConnState::Connected { .. })
    });
    assert!(!s.demo);
    // (The login window is destroyed after this; the mock runtime only forgets a window in
    // its event loop, which does not run here, so the desktop test checks that part.)

    // A live notification: pushed to the center, stored, and toasted.
    let center = f.open(WindowKind::Center);
    let before = f.status().unread;
    server.notify(json!({"user_id": "1", "type": "task_reviewed", "title": "任务被驳回", "content": "街景 #12：框不准", "priority": "high", "data": {"task_id": "12"}}));
    let n = f
        .notifications
        .recv_timeout(WAIT)
        .expect("live notification event");
    assert_eq!(
        (n["title"].as_str(), n["group"].as_str()),
        (Some("任务被驳回"), Some("reviews"))
    );
    assert_eq!(
        (n["read"].as_bool(), n["has_link"].as_bool()),
        (Some(false), Some(true)),
        "{n}"
    );
    // The center searches by task and project.
    assert_eq!(
        (n["task_id"].as_str(), n["project"].is_null()),
        (Some("12"), true),
        "{n}"
    );
    let key = n["key"].as_str().unwrap().to_string();
    f.wait_status("one more unread", |s| s.unread == before + 1);

    let list = invoke(
        &center,
        "list_history",
        json!({"filter": {"groups": ["reviews"]}}),
    )
    .unwrap();
    let first = &list.as_array().unwrap()[0];
    assert_eq!(
        (first["key"].as_str(), first["read"].as_bool()),
        (Some(key.as_str()), Some(false))
    );
    // Paging: the newest first, then the rest from an offset, with no row twice.
    let all = invoke(
        &center,
        "list_history",
        json!({"filter": {"limit": 50_000}}),
    )
    .unwrap();
    let all: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["key"].as_str().unwrap())
        .collect();
    assert_eq!(all, [key.as_str()], "the one notification so far");
    let page = |offset: usize| {
        invoke(
            &center,
            "list_history",
            json!({"filter": {"limit": 1, "offset": offset}}),
        )
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["key"].as_str().unwrap().to_string())
        .collect::<Vec<_>>()
    };
    assert_eq!(page(0), [key.as_str()]);
    assert_eq!(page(1), Vec::<String>::new(), "the offset skips the newest");
    let none = invoke(
        &center,
        "list_history",
        json!({"filter": {"groups": ["chat"]}}),
    )
    .unwrap();
    assert!(
        none.as_array()
            .unwrap()
            .iter()
            .all(|n| n["group"] == "chat")
    );

    invoke(&center, "mark_read", json!({"keys": [key]})).unwrap();
    f.wait_status("unread back down", |s| s.unread == before);
    let list = invoke(&center, "list_history", json!({})).unwrap();
    let item = list
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["key"] == key.as_str())
        .unwrap()
        .clone();
    assert_eq!(item["read"], true);
    let e = invoke(&center, "mark_read", json!({"keys": []})).unwrap_err();
    assert_eq!(e["kind"], "invalid");

    // Pause from the menu: the state says until when, the icon turns to "paused"; resume.
    taskbell_app::on_menu(f.app.handle(), "pause-30m");
    let paused = f.wait_status("paused", |s| s.paused_until_ms.is_some());
    assert_eq!(
        taskbell_app::view::icon::IconState::of(&paused),
        taskbell_app::view::icon::IconState::Paused
    );
    assert!(
        taskbell_app::view::menu::tooltip(&paused, Lang::En).contains("paused until"),
        "{paused:?}"
    );
    taskbell_app::on_menu(f.app.handle(), "resume");
    f.wait_status("resumed", |s| s.paused_until_ms.is_none());

    // Toasts are shown by the engine's worker thread, asynchronously: wait for it.
    let toast =
        tauri::async_runtime::block_on(f.toasts.wait_for(WAIT, |t| t.title.contains("任务被驳回")));
    assert!(toast.is_some(), "{:?}", f.toasts.toasts());

    // Settings: a bad value is refused with the field named; a good one round-trips.
    let settings_w = f.open(WindowKind::Settings);
    let mut settings = invoke(&settings_w, "get_settings", json!({})).unwrap();
    assert_eq!(settings["username"], "zhangsan");
    settings["heartbeat_interval_secs"] = json!(1);
    let e = invoke(&settings_w, "save_settings", json!({"settings": settings})).unwrap_err();
    assert_eq!(e["field"], "heartbeat_interval_secs", "{e}");
    settings["heartbeat_interval_secs"] = json!(45);
    settings["quiet_hours_enabled"] = json!(true);
    settings["quiet_start"] = json!("21:30");
    let saved = invoke(&settings_w, "save_settings", json!({"settings": settings})).unwrap();
    assert_eq!(saved, settings);
    assert_eq!(
        invoke(&settings_w, "get_settings", json!({})).unwrap(),
        settings
    );

    // Sign out from the menu: signed out with no reason to show (the user asked), which is
    // also what keeps the login window from being pushed at them; the engine stops.
    taskbell_app::on_menu(f.app.handle(), "sign-out");
    f.wait_status("signed out", |s| {
        matches!(s.state, ConnState::SignedOut { reason: None }) && s.user.is_none()
    });
    let deadline = std::time::Instant::now() + WAIT;
    while f.controller().shared().engine.is_running() {
        assert!(
            std::time::Instant::now() < deadline,
            "the engine did not stop"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(f.status().state, ConnState::SignedOut { reason: None });
    let e = invoke(&center, "reconnect_now", json!({}));
    assert!(
        e.is_err(),
        "center may not reconnect (capability) and nobody is signed in"
    );
    f.shutdown();
}

#[test]
fn diagnostics_window_gets_checks_and_can_send_a_test_notification_while_signed_out() {
    let server = Server::start();
    let config = Config {
        server: Some(server.base.clone()),
        username: Some("nobody".into()),
        ..Config::default()
    };
    let f = start_app(
        Options {
            open: Some(WindowKind::Diagnostics),
            ..Options::default()
        },
        Some(config),
    );
    let diag = f
        .window(WindowKind::Diagnostics)
        .expect("--open diagnostics");
    // No token for "nobody": the engine ends and the app is signed out.
    f.wait_status("signed out", |s| {
        matches!(s.state, ConnState::SignedOut { reason: Some(_) })
    });
    let d = invoke(&diag, "get_diagnostics", json!({})).unwrap();
    let ids: Vec<&str> = d["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["keyring", "notifications", "tray"]);
    for c in d["checks"].as_array().unwrap() {
        assert!(
            c["ok"].as_bool().unwrap() || !c["fix"].as_str().unwrap().is_empty(),
            "a failing check says what to do: {c}"
        );
    }
    let deadline = std::time::Instant::now() + WAIT;
    while f.controller().shared().engine.is_running() {
        assert!(
            std::time::Instant::now() < deadline,
            "the engine did not stop"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    invoke(&diag, "send_test_notification", json!({})).unwrap();
    let toasts = tauri::async_runtime::block_on(f.toasts.wait_for_count(WAIT, 1)).unwrap();
    assert_eq!(toasts.last().unwrap().title, "TaskBell test notification");
    let e = invoke(&diag, "reconnect_now", json!({})).unwrap_err();
    assert_eq!(e["kind"], "not_signed_in", "{e}");
    // The diagnostics window may not sign in or read history.
    assert!(
        invoke(&diag, "sign_in", json!({}))
            .unwrap_err()
            .to_string()
            .contains("not allowed")
    );
    f.shutdown();
}

/// Waits until `ok` holds (polling), failing after [`WAIT`].
fn wait_until(what: &str, ok: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + WAIT;
    while !ok() {
        assert!(std::time::Instant::now() < deadline, "timed out: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Fixture {
    /// The next notification event with `title` (others, if any, are skipped).
    fn notification_titled(&self, title: &str) -> Value {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let n = self
                .notifications
                .recv_timeout(left)
                .unwrap_or_else(|e| panic!("no notification {title:?}: {e}"));
            if n["title"] == title {
                return n;
            }
        }
    }
}

#[test]
fn two_accounts_on_two_servers_run_side_by_side_in_one_tray() {
    let a = Server::start();
    let b = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let main = main_paths(&dir);
    let credentials = Credentials::in_memory();
    let demo = taskbell_server::DEMO_ANNOTATOR;
    // The first account in the main config dir, the second in its own (as `taskbell login`
    // does for a further account); both tokens in the (shared) in-memory keyring.
    a.sign_in_demo(&main, &credentials);
    let second_id = accounts::account_id(&b.base, demo.username);
    let second = main.account(&second_id);
    b.sign_in_demo(&second, &credentials);
    let first_id = accounts::account_id(&a.base, demo.username);
    assert_eq!(
        accounts::list(&main)
            .unwrap()
            .iter()
            .map(|a| a.id.as_str())
            .collect::<Vec<_>>(),
        [first_id.as_str(), second_id.as_str()]
    );

    let f = start_app_in(Options::default(), dir, credentials);
    // Both engines connect: the first account's state is the tray's, the second runs too.
    let s = f.wait_status("both running", |s| {
        matches!(s.state, ConnState::Connected { .. }) && s.accounts == 2
    });
    assert!(!s.demo);
    assert_eq!(
        f.controller().shared().engine.further_running(),
        std::slice::from_ref(&second_id)
    );
    assert!(
        taskbell_app::view::menu::tooltip(&s, Lang::En).contains("· 2 accounts ·"),
        "{s:?}"
    );
    let unread0 = s.unread;

    // A notification on each server reaches the center, named after its account.
    let center = f.open(WindowKind::Center);
    a.notify(json!({"user_id": "1", "type": "task_reviewed", "title": "A 驳回", "content": "a", "priority": "high", "data": {"task_id": "12"}}));
    let na = f.notification_titled("A 驳回");
    assert_eq!(na["account"], first_id.as_str(), "{na}");
    // A's row is stored (unread counts stored rows) before B's is sent: the center's
    // newest-first order is the order the rows were received in, and each account
    // stores on a writer thread of its own, after the toast.
    f.wait_status("A stored", |s| s.unread == unread0 + 1);
    std::thread::sleep(Duration::from_millis(5));
    b.notify(json!({"user_id": "1", "type": "system", "title": "B 维护", "content": "b", "priority": "normal"}));
    let nb = f.notification_titled("B 维护");
    assert_eq!(nb["account"], second_id.as_str(), "{nb}");
    let (ka, kb) = (
        na["key"].as_str().unwrap().to_string(),
        nb["key"].as_str().unwrap().to_string(),
    );
    assert!(ka.starts_with(&format!("{first_id}/")), "{ka}");
    assert!(kb.starts_with(&format!("{second_id}/")), "{kb}");
    assert_ne!(ka, kb);

    // The tray's unread count is the sum over both accounts.
    let s = f.wait_status("two more unread", |s| s.unread == unread0 + 2);
    assert_eq!(
        f.controller().shared().primary_status().unread + 1,
        s.unread,
        "the first account alone has one less"
    );

    // Toasts name the account.
    for (id, title) in [(&first_id, "A 驳回"), (&second_id, "B 维护")] {
        let want = format!("{id} · {title}");
        let t = tauri::async_runtime::block_on(f.toasts.wait_for(WAIT, |t| t.title == want));
        assert!(t.is_some(), "{want:?} in {:?}", f.toasts.toasts());
    }

    // The center's history: both accounts merged newest first, with the account, paged.
    let list = |filter: Value| -> Vec<(String, Value, bool)> {
        invoke(&center, "list_history", json!({ "filter": filter }))
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .map(|n| {
                (
                    n["key"].as_str().unwrap().to_string(),
                    n["account"].clone(),
                    n["read"].as_bool().unwrap(),
                )
            })
            .collect()
    };
    assert_eq!(
        list(json!({})),
        [
            (kb.clone(), json!(second_id), false),
            (ka.clone(), json!(first_id), false)
        ]
    );
    assert_eq!(list(json!({"limit": 1}))[0].0, kb);
    assert_eq!(list(json!({"limit": 1, "offset": 1}))[0].0, ka);
    assert!(list(json!({"limit": 1, "offset": 2})).is_empty());
    assert_eq!(list(json!({"groups": ["reviews"]}))[0].0, ka);

    // Keys find their account: B's notification has no task, so opening it says so
    // (it was found in B's history, not "not in the history").
    let e = invoke(&center, "open_notification", json!({"key": kb})).unwrap_err();
    assert_eq!(
        e["message"], "This notification has no task to open.",
        "{e}"
    );
    // Marking one of B's read goes to B's engine.
    invoke(&center, "mark_read", json!({"keys": [kb]})).unwrap();
    f.wait_status("one read", |s| s.unread == unread0 + 1);
    assert_eq!(
        list(json!({})),
        [
            (kb.clone(), json!(second_id), true),
            (ka.clone(), json!(first_id), false)
        ]
    );

    // Pause from the menu pauses both accounts (each saves its pause in its own file).
    let paused = |p: &Paths| p.load_config().unwrap().paused_until_ms;
    taskbell_app::on_menu(f.app.handle(), "pause-30m");
    wait_until("both paused", || {
        paused(&main).is_some() && paused(&second).is_some()
    });
    taskbell_app::on_menu(f.app.handle(), "resume");
    wait_until("both resumed", || {
        paused(&main).is_none() && paused(&second).is_none()
    });

    // Mark all read clears both.
    invoke(&center, "mark_all_read", json!({})).unwrap();
    f.wait_status("all read", |s| s.unread == 0);
    assert!(list(json!({})).iter().all(|(_, _, read)| *read));

    // Quit stops every engine: nothing runs, and a notification on either server is no
    // longer shown.
    f.shutdown();
    let ctl = f.controller();
    let shared = ctl.shared();
    assert!(!shared.engine.is_running() && shared.engine.further_running().is_empty());
    std::thread::sleep(Duration::from_millis(500));
    let shown = f.toasts.toasts().len();
    a.notify(json!({"user_id": "1", "type": "system", "title": "A late", "content": "a"}));
    b.notify(json!({"user_id": "1", "type": "system", "title": "B late", "content": "b"}));
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(f.toasts.toasts().len(), shown, "{:?}", f.toasts.toasts());
}

#[test]
fn an_account_added_from_the_login_window_runs_beside_the_first_and_signs_out_alone() {
    let a = Server::start();
    let b = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let main = main_paths(&dir);
    let credentials = Credentials::in_memory();
    let demo = taskbell_server::DEMO_ANNOTATOR;
    a.sign_in_demo(&main, &credentials);
    let f = start_app_in(Options::default(), dir, credentials.clone());
    let s = f.wait_status("the first account", |s| {
        matches!(s.state, ConnState::Connected { .. })
    });
    assert_eq!((s.accounts, s.account_list.len()), (1, 0), "{s:?}");
    let menu = |s: &UiStatus| format!("{:?}", taskbell_app::view::menu::menu_model(s, Lang::En));
    assert!(menu(&s).contains("add-account"), "{}", menu(&s));

    // "Add account…" opens the login window; signing in there as someone on another
    // server adds a second account (its own dir), the first keeps running.
    taskbell_app::on_menu(f.app.handle(), "add-account");
    let login = f
        .window(WindowKind::Login)
        .expect("the login window opened");
    invoke(
        &login,
        "sign_in",
        json!({"server": b.base, "username": demo.username, "password": demo.password, "remember": true}),
    )
    .unwrap();
    let first_id = accounts::account_id(&a.base, demo.username);
    let second_id = accounts::account_id(&b.base, demo.username);
    let s = f.wait_status("both running", |s| {
        s.accounts == 2
            && s.account_list.len() == 2
            && s.account_list
                .iter()
                .all(|a| matches!(a.state, ConnState::Connected { .. }))
    });
    assert_eq!(
        s.account_list
            .iter()
            .map(|a| a.id.as_str())
            .collect::<Vec<_>>(),
        [first_id.as_str(), second_id.as_str()]
    );
    assert_eq!(
        s.server.as_deref(),
        Some(a.base.as_str()),
        "the first is still A"
    );
    assert!(s.state_line.ends_with("· 2 accounts"), "{}", s.state_line);
    let second = main.account(&second_id);
    assert!(
        second.config_file().exists(),
        "the second account has its own config"
    );
    assert_eq!(
        main.load_config().unwrap().server.as_deref(),
        Some(a.base.as_str()),
        "the first account's config is untouched"
    );
    // The menu lists both, each with its own sign-out; no global one.
    let m = menu(&s);
    assert!(m.contains(&format!("sign-out-account:{second_id}")), "{m}");
    assert!(!m.contains("\"sign-out\""), "{m}");

    // A notification on B reaches the center with its account.
    b.notify(json!({"user_id": "1", "type": "system", "title": "B 加入", "content": "b"}));
    assert_eq!(
        f.notification_titled("B 加入")["account"],
        second_id.as_str()
    );

    // Its own pause: the second account alone is paused (saved in its own file), then
    // resumed; the first is never paused.
    taskbell_app::on_menu(f.app.handle(), &format!("account:pause-1h:{second_id}"));
    let paused = |p: &Paths| p.load_config().unwrap().paused_until_ms;
    wait_until("the second paused", || paused(&second).is_some());
    assert_eq!(paused(&main), None, "the first is not paused");
    let s = f.wait_status("its pause in the menu", |s| {
        s.account_list
            .iter()
            .any(|a| a.id == second_id && a.paused_until_ms.is_some())
    });
    assert_eq!(
        s.paused_until_ms, None,
        "the tray's own state is not paused"
    );
    taskbell_app::on_menu(f.app.handle(), &format!("account:resume:{second_id}"));
    wait_until("the second resumed", || paused(&second).is_none());

    // Signing the second account out from its entry stops it alone and forgets its token.
    taskbell_app::on_menu(f.app.handle(), &format!("sign-out-account:{second_id}"));
    let s = f.wait_status("the second signed out", |s| {
        s.accounts == 1
            && s.account_list
                .iter()
                .any(|a| a.id == second_id && matches!(a.state, ConnState::SignedOut { .. }))
    });
    assert!(matches!(s.state, ConnState::Connected { .. }), "{s:?}");
    assert!(f.controller().shared().engine.further_running().is_empty());
    let config = second.load_config().unwrap();
    assert!(
        !credentials.can_sign_in(&config).unwrap(),
        "the second account's token and password are gone from the keyring"
    );
    assert!(
        !config.remember_me,
        "signing out forgets the password as `taskbell logout` does"
    );
    let first = main.load_config().unwrap();
    assert!(
        credentials.can_sign_in(&first).unwrap(),
        "the first keeps its token"
    );
    // An unknown account is refused in words, nothing else changes.
    taskbell_app::on_menu(f.app.handle(), "sign-out-account:nobody@nowhere");
    assert!(f.controller().shared().engine.is_running());
    f.shutdown();
}

#[test]
fn a_folded_toast_opens_the_center_on_its_keys_and_a_project_muted_there_stops_its_toasts() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let main = main_paths(&dir);
    let credentials = Credentials::in_memory();
    server.sign_in_demo(&main, &credentials);
    let f = start_app_in(Options::default(), dir, credentials);
    f.wait_status("connected", |s| {
        matches!(s.state, ConnState::Connected { .. })
    });
    let (tx, shown) = mpsc::channel();
    f.app.listen_any(controller::EVENT_SHOW_KEYS, move |_| {
        let _ = tx.send(());
    });

    // A burst folds: the first three are toasted, the rest become one folded toast.
    for i in 0..6 {
        server.notify(json!({"user_id": "1", "type": "system", "title": format!("burst {i}"), "content": "c"}));
    }
    let folded = tauri::async_runtime::block_on(f.toasts.wait_for(WAIT, |t| t.folded > 1))
        .unwrap_or_else(|| panic!("no folded toast: {:?}", f.toasts.toasts()));
    let card = f
        .toasts
        .cards()
        .into_iter()
        .find(|c| c.toast == folded)
        .unwrap();
    assert!(f.window(WindowKind::Center).is_none());
    // The user clicks it (the notifier reports the body click as ShowFolded).
    assert!(f.toasts.choose(&card, ToastActionKind::ShowFolded));
    shown.recv_timeout(WAIT).expect("the show-keys event");
    let center = f.window(WindowKind::Center).expect("the center opened");
    let keys = invoke(&center, "take_shown_keys", json!({})).unwrap();
    assert_eq!(keys, json!(folded.keys), "the folded toast's notifications");
    let listed = invoke(&center, "list_history", json!({})).unwrap();
    let titles: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| folded.keys.iter().any(|k| n["key"] == k.as_str()))
        .map(|n| n["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles.len(), folded.folded, "{titles:?}");
    assert!(
        !titles.contains(&"burst 0"),
        "the toasted ones are not in it"
    );
    assert_eq!(
        invoke(&center, "take_shown_keys", json!({})).unwrap(),
        Value::Null,
        "taken once"
    );

    // "Mute this project" from a row: saved in config.toml, applied by the running engine.
    let rules = invoke(
        &center,
        "set_project_policy",
        json!({"project": "p-9", "policy": "mute"}),
    )
    .unwrap();
    assert_eq!(rules, json!([{"project": "p-9", "policy": "mute"}]));
    assert_eq!(
        invoke(&center, "get_project_policies", json!({})).unwrap(),
        rules
    );
    let saved = Config::load(&main_paths(&f._dir).config_file()).unwrap();
    assert_eq!(
        saved.projects["p-9"].policy,
        taskbell_core::config::ToastPolicy::Mute
    );
    server.notify(json!({"user_id": "1", "type": "task_reviewed", "title": "muted one", "content": "c", "data": {"task_id": "1", "project_id": "p-9"}}));
    server.notify(json!({"user_id": "1", "type": "task_reviewed", "title": "other project", "content": "c", "data": {"task_id": "2", "project_id": "p-1"}}));
    f.notification_titled("muted one");
    // Toasts go out in order: once the later one is shown, the muted one was passed over.
    let later =
        tauri::async_runtime::block_on(f.toasts.wait_for(WAIT, |t| t.title == "other project"));
    assert!(later.is_some(), "{:?}", f.toasts.toasts());
    assert!(
        !f.toasts.toasts().iter().any(|t| t.title == "muted one"),
        "stored but not toasted"
    );
    // Unmute (the same control toggles back): the rule is gone and toasts come again.
    let rules = invoke(
        &center,
        "set_project_policy",
        json!({"project": "p-9", "policy": null}),
    )
    .unwrap();
    assert_eq!(rules, json!([]));
    server.notify(json!({"user_id": "1", "type": "task_reviewed", "title": "unmuted one", "content": "c", "data": {"task_id": "3", "project_id": "p-9"}}));
    let back =
        tauri::async_runtime::block_on(f.toasts.wait_for(WAIT, |t| t.title == "unmuted one"));
    assert!(back.is_some(), "{:?}", f.toasts.toasts());
    // Another window may not do it (capabilities/settings.json).
    let settings_w = f.open(WindowKind::Settings);
    let denied = invoke(
        &settings_w,
        "set_project_policy",
        json!({"project": "p-9", "policy": "mute"}),
    )
    .unwrap_err();
    assert!(denied.to_string().contains("not allowed"), "{denied}");
    f.shutdown();
}
