//! Proves each piece of the harness against the real programs: a
//! notification sent over the private bus reaches dunst and the recorder,
//! the Secret Service round-trips a secret, trayer comes up, Redis and the
//! reference server start on free ports and die with their guards.

#![allow(clippy::expect_used)] // test helpers: a failed setup step is a failed test

use std::time::Duration;

use taskbell_e2e::{Desktop, DesktopOptions, Redis, ServerOptions, ServerProcess};

const WAIT: Duration = Duration::from_secs(30);

/// Sends a notification with gdbus (a plain D-Bus client, like any app).
fn gdbus_notify(desktop: &Desktop, summary: &str, body: &str, urgency: u8) -> String {
    let out = desktop
        .command("gdbus")
        .args([
            "call",
            "--session",
            "--dest",
            "org.freedesktop.Notifications",
            "--object-path",
            "/org/freedesktop/Notifications",
            "--method",
            "org.freedesktop.Notifications.Notify",
            "harness-test",
            "0",
            "",
            summary,
            body,
            "[]",
            &format!("{{'urgency': <byte {urgency}>}}"),
            "5000",
        ])
        .output()
        .expect("gdbus runs");
    assert!(
        out.status.success(),
        "gdbus failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        desktop.logs()
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_notification_on_the_private_bus_reaches_dunst_and_the_recorder() {
    let desktop = Desktop::start_with(DesktopOptions {
        notifications: true,
        keyring: false,
        tray: false,
    })
    .expect("desktop starts");
    let body = "第一行\nsecond line with \"quotes\" & <b>markup</b>";
    let reply = gdbus_notify(&desktop, "⚠️ 任务被驳回提醒", body, 2);
    assert!(reply.starts_with("(uint32 "), "unexpected reply {reply}");
    gdbus_notify(&desktop, "plain", "normal one", 1);

    let recorder = desktop.recorder().expect("recorder");
    let critical = recorder
        .wait_for(WAIT, |c| c.summary == "⚠️ 任务被驳回提醒")
        .expect("recorded");
    assert_eq!(critical.body, body);
    assert_eq!(critical.urgency, Some(2));
    assert!(critical.is_critical());
    assert_eq!(critical.app_name, "harness-test");
    let normal = recorder
        .wait_for(WAIT, |c| c.summary == "plain")
        .expect("recorded");
    assert_eq!(normal.urgency, Some(1));
    assert_eq!(recorder.calls().len(), 2);

    let dunst = desktop.dunst().expect("dunst");
    let history = dunst.history().expect("dunstctl history");
    let summaries: Vec<&str> = history.iter().map(|e| e.summary.as_str()).collect();
    assert_eq!(summaries, ["⚠️ 任务被驳回提醒", "plain"], "{history:?}");
    assert_eq!(history[0].body, body);
    assert_eq!(history[0].appname, "harness-test");
    assert_eq!(dunst.displayed().expect("count"), 0);
}

#[test]
fn the_secret_service_round_trips_a_secret_with_secret_tool() {
    let desktop = Desktop::start_with(DesktopOptions {
        notifications: false,
        keyring: true,
        tray: false,
    })
    .expect("desktop starts");
    let keyring = desktop.keyring().expect("keyring");
    let attrs = [("service", "taskbell-harness"), ("user", "zhangsan")];
    assert_eq!(keyring.secret_tool_lookup(&attrs).expect("lookup"), None);
    keyring
        .secret_tool_store("harness", &attrs, "s3cret-令牌")
        .expect("store");
    assert_eq!(
        keyring
            .secret_tool_lookup(&attrs)
            .expect("lookup")
            .as_deref(),
        Some("s3cret-令牌")
    );
    let items = keyring.items().expect("items");
    let item = items
        .iter()
        .find(|i| i.secret == "s3cret-令牌")
        .unwrap_or_else(|| panic!("not among {items:?}"));
    assert_eq!(item.label, "harness");
    assert_eq!(
        item.attributes.get("user").map(String::as_str),
        Some("zhangsan")
    );
    // No Xvfb without notifications or tray.
    assert!(desktop.xvfb().is_none());
    assert!(desktop.env().get("DISPLAY").is_none());
}

#[test]
fn two_desktops_are_independent_and_gone_after_drop() {
    let a = Desktop::start_with(DesktopOptions {
        notifications: true,
        keyring: false,
        tray: true,
    })
    .expect("first desktop");
    let b = Desktop::start_with(DesktopOptions {
        notifications: true,
        keyring: false,
        tray: false,
    })
    .expect("second desktop");
    assert_ne!(a.bus().address(), b.bus().address());
    assert_ne!(
        a.xvfb().map(|x| x.display().to_owned()),
        b.xvfb().map(|x| x.display().to_owned())
    );
    assert!(a.tray().is_some());
    let shot = a.dir().join("screen.png");
    a.xvfb().unwrap().screenshot(&shot).expect("screenshot");
    let png = std::fs::read(&shot).unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG file");
    gdbus_notify(&a, "only in a", "x", 1);
    a.recorder()
        .expect("recorder")
        .wait_for(WAIT, |c| c.summary == "only in a")
        .expect("a got it");
    assert!(b.recorder().expect("recorder").calls().is_empty());
    let dir = a.dir().to_path_buf();
    let address = a.bus().address().to_owned();
    drop(a);
    assert!(!dir.exists(), "tempdir removed");
    let status = b
        .command("gdbus")
        .args([
            "introspect",
            "--address",
            &address,
            "--dest",
            "org.freedesktop.DBus",
            "--object-path",
            "/",
        ])
        .output()
        .expect("gdbus runs");
    assert!(!status.status.success(), "the first bus is gone");
}

#[test]
fn redis_starts_on_a_free_port_and_stops_on_drop() {
    let mut redis = Redis::start().expect("redis starts");
    let port = redis.port();
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
    assert!(redis.url().ends_with(&format!(":{port}")));
    let pid = redis.process().id();
    drop(redis);
    // Gone and reaped (a probe of the port could meet a parallel test that took it).
    assert!(
        !process_exists(pid),
        "redis-server {pid} outlived its guard"
    );
}

#[test]
fn the_server_binary_starts_on_port_zero_and_restarts_on_the_same_port() {
    let redis = Redis::start().expect("redis");
    let mut server = ServerProcess::start(ServerOptions {
        redis_url: Some(redis.url()),
        ..ServerOptions::default()
    })
    .expect("server starts");
    let addr = server.addr();
    assert_ne!(addr.port(), 0);
    let base = server.base_url();
    let login = || {
        let out = std::process::Command::new("curl")
            .args([
                "-s",
                "-X",
                "POST",
                "-H",
                "content-type: application/json",
                "-d",
                r#"{"username":"zhangsan","password":"annotate-123"}"#,
                &format!("{base}/api/auth/login"),
            ])
            .output()
            .expect("curl runs");
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap_or_default()
    };
    let first = login();
    assert_eq!(first["success"], true, "{first}");
    let pid = server.pid().expect("running");
    server.kill();
    assert!(!server.is_running());
    assert!(!process_exists(pid), "the killed server {pid} is gone");
    server.restart().expect("restart");
    assert_eq!(server.addr(), addr);
    let second = login();
    assert_eq!(second["data"]["user"]["username"], "zhangsan", "{second}");
}

/// Whether process `pid` exists (a zombie, unreaped, counts).
fn process_exists(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}
