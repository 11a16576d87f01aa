//! Faults made for real against the reference server: half-open connections through a
//! black-holing proxy, stalled pongs, revoked tokens (4001), access denied (4003), too many
//! connections (1008), failing and slow summary endpoints, bad frames, client restarts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;
use taskbell_core::supervisor::{Command, Event, ExitReason, State};
use taskbell_server::{DEMO_ADMIN, DEMO_ANNOTATOR, ServerConfig};

/// A path that swallows every byte (half-open connection) is noticed by the missing pong
/// and the engine reconnects once the path works again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn black_holed_connection_is_noticed_and_replaced() {
    let s = server().await;
    let proxy = Proxy::start(s.addr()).await.expect("proxy starts");
    let base = proxy.base_url();
    let mut zs = Client::start(
        &base,
        DEMO_ANNOTATOR,
        Setup {
            // A pong timeout of a few seconds: a 1 s one also fires on a healthy path
            // when a loaded machine holds the pong back.
            tweak_config: Box::new(|c| {
                c.heartbeat_interval_secs = 1;
                c.pong_timeout_secs = 3;
            }),
            ..Setup::default()
        },
    )
    .await;
    zs.wait_synced().await;
    proxy.black_hole();
    let noticed = std::time::Instant::now();
    let e = zs
        .wait_event("dead connection", |e| {
            matches!(e, Event::Reconnecting { .. })
        })
        .await;
    let Event::Reconnecting { reason, .. } = e else {
        unreachable!()
    };
    assert!(reason.contains("heartbeat"), "{reason}");
    println!(
        "half-open connection noticed after {:?} (interval 1 s + timeout 3 s)",
        noticed.elapsed()
    );
    proxy.heal();
    zs.wait_synced().await;
    notify_user(&s.base_url(), DEMO_ANNOTATOR.id, "恢复后").await;
    zs.wait_notification("恢复后").await;
    zs.stop().await;
}

/// The server keeps the socket open but stops answering pings: same verdict.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_pongs_mean_a_dead_connection() {
    let s = server().await;
    let base = s.base_url();
    let mut zs = Client::start(
        &base,
        DEMO_ANNOTATOR,
        Setup {
            tweak_config: Box::new(|c| c.pong_timeout_secs = 3),
            ..Setup::default()
        },
    )
    .await;
    zs.wait_synced().await;
    let (st, _) = post(
        &base,
        "/api/test/stall-pongs",
        None,
        json!({"enabled": true}),
    )
    .await;
    assert_eq!(st, 200);
    let e = zs
        .wait_event("dead connection", |e| {
            matches!(e, Event::Reconnecting { .. })
        })
        .await;
    assert!(
        matches!(&e, Event::Reconnecting { reason, .. } if reason.contains("heartbeat")),
        "{e:?}"
    );
    post(
        &base,
        "/api/test/stall-pongs",
        None,
        json!({"enabled": false}),
    )
    .await;
    zs.wait_synced().await;
    zs.stop().await;
}

async fn revoke(base: &str, user_id: &str) {
    let admin = token_of(base, DEMO_ADMIN).await;
    let (st, body) = post(
        base,
        &format!("/api/admin/users/{user_id}/revoke-tokens"),
        Some(&admin),
        json!({}),
    )
    .await;
    assert_eq!(st, 200, "{body}");
}

/// 4001 with "remember me": the engine signs in again with the remembered password, stores
/// the new token and carries on without bothering the user.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_token_with_remember_me_signs_in_again_silently() {
    let s = server().await;
    let base = s.base_url();
    let mut zs = Client::start(
        &base,
        DEMO_ANNOTATOR,
        Setup {
            remember: true,
            ..Setup::default()
        },
    )
    .await;
    zs.wait_synced().await;
    let server_key = base.clone();
    let before = zs
        .creds
        .load_token(&server_key, DEMO_ANNOTATOR.username)
        .unwrap()
        .expect("token stored by sign_in");
    // Revocation cuts off tokens issued before now (ms); make sure the new one is later.
    tokio::time::sleep(Duration::from_millis(5)).await;
    revoke(&base, DEMO_ANNOTATOR.id).await;
    // The 4001 ends the connection; the next `Connected` is after the silent sign-in.
    zs.wait_event("connected again", |e| matches!(e, Event::Connected))
        .await;
    zs.wait_synced().await;
    let after = zs
        .creds
        .load_token(&server_key, DEMO_ANNOTATOR.username)
        .unwrap()
        .expect("a new token is stored");
    assert_ne!(
        before, after,
        "signed in again with the remembered password"
    );
    notify_user(&base, DEMO_ANNOTATOR.id, "重新登录后").await;
    zs.wait_notification("重新登录后").await;
    assert!(
        !zs.seen.iter().any(|e| matches!(e, Event::SignedOut { .. })),
        "{:?}",
        zs.seen
    );
    // No second welcome: the silent sign-in shows nothing. (The first summary comes from a
    // task of its own: wait until it is in.)
    zs.wait_seen("summary", |e| matches!(e, Event::Summary(_)))
        .await;
    assert_eq!(
        zs.seen
            .iter()
            .filter(|e| matches!(e, Event::Summary(_)))
            .count(),
        1
    );
    zs.stop().await;
}

/// 4001 without "remember me": the engine says the session ended and stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_token_without_remember_me_signs_out() {
    let s = server().await;
    let base = s.base_url();
    let mut zs = Client::start(&base, DEMO_ANNOTATOR, Setup::default()).await;
    zs.wait_synced().await;
    revoke(&base, DEMO_ANNOTATOR.id).await;
    let e = zs
        .wait_event("signed out", |e| matches!(e, Event::SignedOut { .. }))
        .await;
    let Event::SignedOut { reason } = e else {
        unreachable!()
    };
    let reason = reason.expect("a reason is given");
    assert!(
        reason.contains("会话") || reason.contains("登录"),
        "{reason}"
    );
    assert_eq!(zs.join_exit().await, ExitReason::SignedOut);
    assert!(matches!(
        zs.state.borrow().state,
        State::SignedOut { reason: Some(_) }
    ));
    // The rejected token is gone from the keyring.
    assert!(
        zs.creds
            .load_token(&base, DEMO_ANNOTATOR.username)
            .unwrap()
            .is_none()
    );
}

/// 4003: stop and say why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_denied_stops_with_the_reason() {
    let s = server().await;
    let base = s.base_url();
    let mut zs = Client::start(&base, DEMO_ANNOTATOR, Setup::default()).await;
    zs.wait_synced().await;
    let (st, body) = post(
        &base,
        "/api/test/close-sockets",
        None,
        json!({"code": 4003, "reason": "account disabled"}),
    )
    .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(
        zs.join_exit().await,
        ExitReason::AccessDenied("account disabled".to_string())
    );
    assert!(matches!(
        &zs.state.borrow().state,
        State::SignedOut { reason: Some(r) } if r.contains("account disabled")
    ));
}

/// 1008 (too many connections): tell the user, back off, come back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_connections_is_told_and_retried() {
    let s = server().await;
    let base = s.base_url();
    let mut zs = Client::start(&base, DEMO_ANNOTATOR, Setup::default()).await;
    zs.wait_synced().await;
    post(
        &base,
        "/api/test/close-sockets",
        None,
        json!({"code": 1008, "reason": "too many"}),
    )
    .await;
    let e = zs
        .wait_event("error told", |e| matches!(e, Event::Error { .. }))
        .await;
    assert!(matches!(e, Event::Error { .. }));
    let e = zs
        .wait_event("reconnecting", |e| matches!(e, Event::Reconnecting { .. }))
        .await;
    let Event::Reconnecting { delay_ms, .. } = e else {
        unreachable!()
    };
    assert!(delay_ms >= 500, "at least the 1008 floor: {delay_ms}");
    zs.wait_synced().await;
    zs.stop().await;
}

/// 1001 and 1011 both end in a reconnect; the socket comes back subscribed, and
/// back-to-back outages each start from the first backoff delay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn going_away_and_internal_error_reconnect() {
    let s = server().await;
    let base = s.base_url();
    let mut zs = Client::start(&base, DEMO_ANNOTATOR, Setup::default()).await;
    zs.wait_caught_up().await;
    for code in [1001, 1011, 1011, 1001] {
        post(
            &base,
            "/api/test/close-sockets",
            None,
            json!({"code": code}),
        )
        .await;
        let e = zs
            .wait_event("reconnecting", |e| matches!(e, Event::Reconnecting { .. }))
            .await;
        assert!(
            matches!(&e, Event::Reconnecting { reason, .. } if reason.contains(&code.to_string())),
            "{e:?}"
        );
        // The second close comes seconds after the first, long before a connection
        // counts as stable by age; having caught up, it counts as healthy, so each
        // outage starts again from the first delay.
        assert!(
            matches!(&e, Event::Reconnecting { attempt: 1, delay_ms, .. } if *delay_ms <= 100),
            "{e:?}"
        );
        zs.wait_caught_up().await;
    }
    notify_user(&base, DEMO_ANNOTATOR.id, "再次连接").await;
    zs.wait_notification("再次连接").await;
    zs.stop().await;
}

/// Summary endpoints answering 500: "summary unavailable", and the socket still works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn summary_server_errors_degrade_to_unavailable_and_socket_stays_up() {
    let s = server().await;
    let base = s.base_url();
    let (st, body) = post(
        &base,
        "/api/test/fail",
        None,
        json!({"path": "/api/tasks/my", "status": 503, "count": 100}),
    )
    .await;
    assert_eq!(st, 200, "{body}");
    let mut zs = Client::start(&base, DEMO_ANNOTATOR, Setup::default()).await;
    let e = zs
        .wait_event("summary", |e| matches!(e, Event::Summary(_)))
        .await;
    let Event::Summary(sum) = e else {
        unreachable!()
    };
    assert!(sum.unavailable, "{sum:?}");
    assert!(sum.urgent.is_none());
    let w = zs
        .notifier
        .wait_for(WAIT, |t| t.title == "登录成功")
        .await
        .expect("the welcome toast still comes");
    assert!(w.body.contains("暂") || w.body.contains("无法"), "{w:?}");
    zs.wait_synced().await;
    notify_user(&base, DEMO_ANNOTATOR.id, "摘要失败后").await;
    zs.wait_notification("摘要失败后").await;
    zs.stop().await;
}

/// Summary endpoints too slow: the request times out → unavailable; the socket is unaffected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn summary_timeouts_degrade_to_unavailable() {
    let s = server().await;
    let base = s.base_url();
    // The summary's request takes five times the request timeout; the timeout leaves the
    // engine's other requests (sign-in, catch-up) room on a loaded machine.
    post(
        &base,
        "/api/test/fail",
        None,
        json!({"path": "/api/tasks/my", "delay_ms": 15_000, "count": 100}),
    )
    .await;
    let mut zs = Client::start(
        &base,
        DEMO_ANNOTATOR,
        Setup {
            tweak_options: Box::new(|o| o.timing.request_timeout = Duration::from_secs(3)),
            ..Setup::default()
        },
    )
    .await;
    zs.wait_synced().await;
    // The summary comes from a task of its own: `wait_synced` may have read it already.
    let e = zs
        .wait_seen("summary", |e| matches!(e, Event::Summary(_)))
        .await;
    assert!(matches!(&e, Event::Summary(s) if s.unavailable), "{e:?}");
    // The socket was unaffected: the connection of before the summary is still the one.
    assert!(
        !zs.seen
            .iter()
            .any(|e| matches!(e, Event::Reconnecting { .. })),
        "{:?}",
        zs.seen
    );
    zs.stop().await;
}

/// A corpus of bad frames is logged and skipped; the connection stays, the next good
/// notification arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_frames_never_disconnect() {
    let s = server().await;
    let base = s.base_url();
    let mut zs = Client::start(&base, DEMO_ANNOTATOR, Setup::default()).await;
    zs.wait_synced().await;
    let bad = [
        "not json",
        "[]",
        "42",
        "null",
        "{}",
        r#"{"type": 7}"#,
        r#"{"type": "no_such_type"}"#,
        r#"{"type": "pong"}"#,
        r#"{"type": "task_reviewed", "title": {"x": 1}}"#,
        "{\"type\": \"system\", \"content\": \"\u{0}\"",
        &"[".repeat(10_000),
    ];
    for text in bad {
        let (st, body) = post(
            &base,
            "/api/test/send-raw",
            None,
            json!({"text": text, "user_id": DEMO_ANNOTATOR.id}),
        )
        .await;
        assert_eq!(st, 200, "{body}");
    }
    notify_user(&base, DEMO_ANNOTATOR.id, "坏帧之后").await;
    zs.wait_notification("坏帧之后").await;
    assert_eq!(zs.state.borrow().reconnects, 0);
    assert!(
        !zs.seen
            .iter()
            .any(|e| matches!(e, Event::Reconnecting { .. }))
    );
    zs.stop().await;
}

/// Server pings (JSON) are answered, so a server that drops silent sockets keeps ours even
/// when our own heartbeat is slow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_pings_are_answered() {
    const SILENT_LIMIT: Duration = Duration::from_secs(5);
    let s = taskbell_server::start(ServerConfig {
        ping_interval: Duration::from_millis(300),
        heartbeat_timeout: SILENT_LIMIT,
        ..server_config()
    })
    .await
    .unwrap();
    let base = s.base_url();
    let mut zs = Client::start(
        &base,
        DEMO_ANNOTATOR,
        Setup {
            // Our own pings: one at connect, the next only after a minute.
            tweak_config: Box::new(|c| c.heartbeat_interval_secs = 60),
            ..Setup::default()
        },
    )
    .await;
    zs.wait_synced().await;
    let admin = token_of(&base, DEMO_ADMIN).await;
    let (b, a) = (&base, &admin);
    let socket = move || async move {
        let (st, body) = get(b, "/api/debug/connections", Some(a)).await;
        assert_eq!(st, 200, "{body}");
        let mine: Vec<_> = body["data"]["sockets"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["user_id"] == DEMO_ANNOTATOR.id)
            .cloned()
            .collect();
        assert_eq!(mine.len(), 1, "{body}");
        (
            mine[0]["id"].clone(),
            mine[0]["connected_at"].as_i64().unwrap(),
            mine[0]["last_seen"].as_i64().unwrap(),
        )
    };
    let (id, connected_at, _) = socket().await;
    // Wait until the server has heard from this very socket two silence limits after it
    // connected: with our heartbeat a minute away, only answers to its pings can say so
    // (a socket that did not answer would be dropped after one limit, and the id change).
    let limit_ms = i64::try_from(SILENT_LIMIT.as_millis()).unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (now_id, _, last_seen) = socket().await;
        assert_eq!(now_id, id, "the socket was replaced: {:?}", zs.seen);
        if last_seen >= connected_at + 2 * limit_ms {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the socket was last heard from {} ms after it connected",
            last_seen - connected_at
        );
        // Server-side state with no event to await: poll it.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    zs.wait_synced().await;
    notify_user(&base, DEMO_ANNOTATOR.id, "服务器心跳").await;
    zs.wait_notification("服务器心跳").await;
    assert_eq!(zs.state.borrow().reconnects, 0, "{:?}", zs.seen);
    zs.stop().await;
}

/// Notifications published while the client is not running are caught up after its next
/// start, each exactly once, and older ones are not repeated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catch_up_after_client_restart_exactly_once() {
    let s = server().await;
    let base = s.base_url();
    let mut zs = Client::start(&base, DEMO_ANNOTATOR, Setup::default()).await;
    zs.wait_synced().await;
    notify_user(&base, DEMO_ANNOTATOR.id, "在线时").await;
    zs.wait_notification("在线时").await;
    assert_eq!(zs.stop().await, ExitReason::Shutdown);

    for i in 0..3 {
        notify_user(&base, DEMO_ANNOTATOR.id, &format!("离线-{i}")).await;
    }
    let mut zs = zs.restart();
    zs.wait_caught_up().await;
    notify_user(&base, DEMO_ANNOTATOR.id, "重启后在线").await;
    zs.wait_notification("重启后在线").await;
    let contents: Vec<String> = zs.notifications().into_iter().map(|n| n.content).collect();
    for i in 0..3 {
        let c = format!("离线-{i}");
        assert_eq!(
            contents.iter().filter(|x| **x == c).count(),
            1,
            "{contents:?}"
        );
    }
    assert!(
        !contents.iter().any(|c| c == "在线时"),
        "not repeated: {contents:?}"
    );
    zs.stop().await;
}

/// A dropped socket (no close frame) during live traffic: everything published meanwhile
/// arrives exactly once (live or caught up).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_sockets_lose_and_repeat_nothing() {
    let s = server().await;
    let base = s.base_url();
    let mut zs = Client::start(&base, DEMO_ANNOTATOR, Setup::default()).await;
    zs.wait_synced().await;
    for round in 0..3 {
        notify_user(&base, DEMO_ANNOTATOR.id, &format!("前-{round}")).await;
        post(
            &base,
            "/api/test/drop-sockets",
            None,
            json!({"mode": "abort", "user_id": DEMO_ANNOTATOR.id}),
        )
        .await;
        notify_user(&base, DEMO_ANNOTATOR.id, &format!("后-{round}")).await;
        zs.wait_notification(&format!("后-{round}")).await;
    }
    let contents: Vec<String> = zs.notifications().into_iter().map(|n| n.content).collect();
    for round in 0..3 {
        for p in ["前", "后"] {
            let c = format!("{p}-{round}");
            assert_eq!(
                contents.iter().filter(|x| **x == c).count(),
                1,
                "{c}: {contents:?}"
            );
        }
    }
    zs.stop().await;
}

/// Reconnect now, pause, test notification, mark all read and sign out through the command
/// channel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_pause_test_mark_read_and_sign_out() {
    let s = server().await;
    let base = s.base_url();
    let mut zs = Client::start(&base, DEMO_ANNOTATOR, Setup::default()).await;
    zs.wait_synced().await;
    zs.command(Command::ReconnectNow).await;
    zs.wait_event("connected again", |e| matches!(e, Event::Connected))
        .await;
    assert_eq!(zs.state.borrow().reconnects, 1);
    zs.wait_synced().await;
    let until = taskbell_core::protocol::now_ms() + 3_600_000;
    zs.command(Command::Pause { until_ms: until }).await;
    zs.wait_state("paused", |s| s.paused_until_ms == Some(until))
        .await;
    notify_user(&base, DEMO_ANNOTATOR.id, "暂停中").await;
    let n = zs.wait_notification("暂停中").await;
    zs.command(Command::TestNotification).await;
    let t = zs
        .notifier
        .wait_for(WAIT, |t| t.keys.iter().any(|k| k.starts_with("test:")))
        .await
        .expect("test toast shows even while paused");
    assert!(!t.title.is_empty());
    assert!(
        !zs.notifier.toasts().iter().any(|t| t.keys.contains(&n.key)),
        "paused: no toast for the notification"
    );
    zs.wait_state("unread counted", |s| s.unread >= 1).await;
    zs.command(Command::MarkAllRead).await;
    zs.wait_state("all read", |s| s.unread == 0).await;
    zs.command(Command::Resume).await;
    zs.wait_state("resumed", |s| s.paused_until_ms.is_none())
        .await;
    zs.command(Command::SignOut).await;
    assert_eq!(zs.join_exit().await, ExitReason::SignedOut);
    assert!(
        zs.creds
            .load_token(&base, DEMO_ANNOTATOR.username)
            .unwrap()
            .is_none()
    );
    // The old token was revoked on the server.
    let _ = s;
}

/// A command queued before a notification arrives applies to it, even when both are
/// ready at the engine's next wake-up (a project muted, or a pause, a moment before a
/// notification must hold its toast back). The engine runs on this test's one thread,
/// which is held while the server's frame reaches the socket; the pause is queued after
/// the reactor saw the frame and before the engine runs: both are then waiting, and a
/// loop that picked between them at random would toast in about half the rounds.
#[test]
fn a_command_queued_before_a_frame_applies_to_it() {
    // The server on threads of its own, so holding the engine's thread holds only it.
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let s = server_rt.block_on(server());
    let base = s.base_url();
    let engine_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    engine_rt.block_on(async {
        let mut zs = Client::start(&base, DEMO_ANNOTATOR, Setup::default()).await;
        zs.wait_synced().await;
        for round in 0..6 {
            let title = format!("round {round}");
            let until = taskbell_core::protocol::now_ms() + 3_600_000;
            // Holding the engine's thread: the notification is sent and given time to
            // reach the engine's socket.
            let (sent, delivered) = std::sync::mpsc::channel();
            let (b, t) = (base.clone(), title.clone());
            server_rt.spawn(async move {
                notify_user(&b, DEMO_ANNOTATOR.id, &t).await;
                let _ = sent.send(());
            });
            delivered.recv_timeout(WAIT).unwrap();
            std::thread::sleep(Duration::from_millis(200));
            // One turn of the reactor, which marks the socket readable and wakes the
            // engine; `yield_now` resumes this test before the engine runs, and the
            // pause is queued then.
            tokio::task::yield_now().await;
            zs.commands
                .try_send(Command::Pause { until_ms: until })
                .unwrap();
            // Let go: the engine finds both waiting.
            let n = zs.wait_notification(&title).await;
            // Toasts show in order: once the test toast queued after it is shown, a
            // toast for the notification would have been shown too.
            let shown = zs.notifier.toasts().len();
            zs.command(Command::TestNotification).await;
            zs.notifier
                .wait_for_count(WAIT, shown + 1)
                .await
                .expect("the test toast shows while paused");
            assert!(
                !zs.notifier.toasts().iter().any(|t| t.keys.contains(&n.key)),
                "round {round}: the notification was toasted although the pause came first"
            );
            zs.command(Command::Resume).await;
            zs.wait_state("resumed", |s| s.paused_until_ms.is_none())
                .await;
        }
        zs.stop().await;
    });
    drop(s);
}

/// A cursor the server does not understand (history from another server) is dropped: the
/// engine fetches the whole history again and dedupe keeps every old one from repeating.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_cursor_is_dropped_and_nothing_repeats() {
    let s = server().await;
    let base = s.base_url();
    let mut zs = Client::start(&base, DEMO_ANNOTATOR, Setup::default()).await;
    zs.wait_synced().await;
    notify_user(&base, DEMO_ANNOTATOR.id, "旧的").await;
    zs.wait_notification("旧的").await;
    zs.stop().await;
    {
        let h = taskbell_core::history::History::open(&zs.paths.history_db()).unwrap();
        h.set_cursor("not-a-stream-id").unwrap();
    }
    notify_user(&base, DEMO_ANNOTATOR.id, "新的").await;
    let mut zs = zs.restart();
    zs.wait_notification("新的").await;
    let e = zs
        .wait_seen("caught up", |e| matches!(e, Event::CaughtUp { .. }))
        .await;
    assert!(
        matches!(
            e,
            Event::CaughtUp {
                supported: true,
                new: 1,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(
        !zs.notifications().iter().any(|n| n.content == "旧的"),
        "{:?}",
        zs.notifications()
    );
    zs.stop().await;
}

/// A server without history (404 on `/api/notifications`): the engine relies on the summary
/// and the live stream, and says so in `CaughtUp { supported: false }`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_without_history_falls_back_to_live_and_summary() {
    let s = server().await;
    let base = s.base_url();
    post(
        &base,
        "/api/test/fail",
        None,
        json!({"path": "/api/notifications", "status": 404, "count": 1000}),
    )
    .await;
    let mut zs = Client::start(&base, DEMO_ANNOTATOR, Setup::default()).await;
    let e = zs
        .wait_event("caught up", |e| matches!(e, Event::CaughtUp { .. }))
        .await;
    assert!(
        matches!(
            e,
            Event::CaughtUp {
                supported: false,
                ..
            }
        ),
        "{e:?}"
    );
    if !zs.seen.iter().any(|e| matches!(e, Event::Summary(_))) {
        zs.wait_event("summary", |e| matches!(e, Event::Summary(_)))
            .await;
    }
    assert!(
        zs.seen
            .iter()
            .any(|e| matches!(e, Event::Summary(s) if !s.unavailable))
    );
    zs.wait_synced().await;
    notify_user(&base, DEMO_ANNOTATOR.id, "无历史").await;
    zs.wait_notification("无历史").await;
    zs.stop().await;
}

/// A burst of 10,000 notifications: every one is stored once, the toasts are folded (each
/// notification is represented in exactly one toast), and the socket survives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_ten_thousand_is_stored_and_folded() {
    const N: usize = 10_000;
    // 10,000 inserts in a debug build on a busy machine: a bound of its own, far above
    // `WAIT` (it only bounds a hang).
    const BURST_WAIT: Duration = Duration::from_secs(300);
    let s = server().await;
    let base = s.base_url();
    // A generous pong timeout: on a slow debug build the burst may hold a pong back for
    // seconds, which is not what this test is about.
    let mut zs = Client::start(
        &base,
        DEMO_ANNOTATOR,
        Setup {
            tweak_config: Box::new(|c| c.pong_timeout_secs = 60),
            ..Setup::default()
        },
    )
    .await;
    zs.wait_synced().await;
    zs.wait_seen("caught up", |e| matches!(e, Event::CaughtUp { .. }))
        .await;
    let unread_before = zs.state.borrow().unread;
    let start = std::time::Instant::now();
    let (st, body) = post(
        &base,
        "/api/test/notify",
        None,
        json!({"user_id": DEMO_ANNOTATOR.id, "content": "洪水", "count": N}),
    )
    .await;
    assert_eq!(st, 200, "{body}");
    // Every newly stored notification counts as unread: wait for all of them, draining events
    // meanwhile (a consumer that keeps up; events that still overflow the bounded channel when
    // this task is starved are dropped, by design, so the counts below come from the history).
    let mut state = zs.state.clone();
    let events = &mut zs.events;
    let seen = &mut zs.seen;
    tokio::time::timeout(BURST_WAIT, async {
        loop {
            tokio::select! {
                e = events.recv() => seen.push(e.expect("engine is running")),
                r = state.wait_for(|s| s.unread >= unread_before + N as u64) => {
                    r.expect("engine is running");
                    return;
                }
            }
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "not all {N} stored within {BURST_WAIT:?}: {:?}",
            zs.state.borrow()
        )
    });
    let elapsed = start.elapsed();
    // A new live notification is counted and shown as it arrives and stored right after:
    // the last rows may still be on their way to the history when the count is reached.
    let read_flood = || {
        let db = zs.paths.history_db();
        tokio::task::spawn_blocking(move || {
            let h = taskbell_core::history::History::open(&db).unwrap();
            let q = taskbell_core::history::Query {
                limit: 1_000_000,
                ..Default::default()
            };
            h.list(&q)
                .unwrap()
                .into_iter()
                .map(|r| r.notification)
                .filter(|n| n.content.starts_with("洪水"))
                .collect::<Vec<_>>()
        })
    };
    let settle = std::time::Instant::now();
    let mut flood = read_flood().await.unwrap();
    while flood.len() < N && settle.elapsed() < BURST_WAIT {
        tokio::time::sleep(Duration::from_millis(50)).await;
        flood = read_flood().await.unwrap();
    }
    assert_eq!(flood.len(), N, "each notification stored once");
    let mut keys: Vec<&str> = flood.iter().map(|n| n.key.as_str()).collect();
    keys.sort_unstable();
    keys.dedup();
    assert_eq!(keys.len(), N, "each notification stored once");
    // Whatever events got through: none announced twice.
    let mut announced: Vec<String> = zs
        .notifications()
        .into_iter()
        .filter(|n| n.content.starts_with("洪水"))
        .map(|n| n.key)
        .collect();
    let events_through = announced.len();
    announced.sort_unstable();
    announced.dedup();
    assert_eq!(
        announced.len(),
        events_through,
        "a notification announced twice"
    );
    // Toasts: held ones are flushed one fold window after the first; wait for the last one.
    let last_key = flood
        .iter()
        .find(|n| n.content.contains(&format!("洪水 #{N}")))
        .expect("the last one is stored")
        .key
        .clone();
    zs.notifier
        .wait_for(BURST_WAIT, |t| t.keys.contains(&last_key))
        .await
        .expect("the last one is in a toast");
    let toasts: Vec<_> = zs
        .notifier
        .toasts()
        .into_iter()
        .filter(|t| {
            t.keys
                .iter()
                .any(|k| keys.binary_search(&k.as_str()).is_ok())
        })
        .collect();
    let represented: usize = toasts.iter().map(|t| t.keys.len()).sum();
    assert_eq!(represented, N, "every notification is in exactly one toast");
    assert!(toasts.len() < 100, "folded: {} toasts", toasts.len());
    println!(
        "burst of {N}: all stored after {elapsed:?} ({:.0}/s), {events_through} announced \
         through the event channel, {} toasts",
        N as f64 / elapsed.as_secs_f64(),
        toasts.len()
    );
    assert_eq!(zs.state.borrow().reconnects, 0);
    zs.stop().await;
}

static WALL_OFFSET_SECS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn shifted_wall_clock() -> std::time::SystemTime {
    std::time::SystemTime::now()
        + Duration::from_secs(WALL_OFFSET_SECS.load(std::sync::atomic::Ordering::SeqCst))
}

/// The wall clock jumping ahead of the monotonic clock (what a resume from suspend looks
/// like) makes the engine drop the connection and connect again at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_from_sleep_reconnects_at_once() {
    let s = server().await;
    let base = s.base_url();
    let mut zs = Client::start(
        &base,
        DEMO_ANNOTATOR,
        Setup {
            tweak_options: Box::new(|o| {
                o.timing.wall_clock = shifted_wall_clock;
                o.timing.clock_jump = Duration::from_secs(10);
                o.timing.clock_check_every = Duration::from_millis(200);
            }),
            ..Setup::default()
        },
    )
    .await;
    zs.wait_synced().await;
    assert_eq!(zs.state.borrow().reconnects, 0);
    WALL_OFFSET_SECS.fetch_add(600, std::sync::atomic::Ordering::SeqCst);
    zs.wait_event("connected again", |e| matches!(e, Event::Connected))
        .await;
    assert!(zs.state.borrow().reconnects >= 1);
    assert!(
        !zs.seen
            .iter()
            .any(|e| matches!(e, Event::Reconnecting { .. })),
        "no backoff wait: {:?}",
        zs.seen
    );
    zs.stop().await;
}

/// The socket request carries the token both in the query and as `Authorization: Bearer`
/// (checked with a raw stub server that records the upgrade request and refuses it with 403).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_request_carries_the_token_in_query_and_header() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Vec<String>>();
    tokio::spawn(async move {
        while let Ok((c, _)) = l.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let (r, mut w) = c.into_split();
                let mut r = BufReader::new(r);
                let mut head = Vec::new();
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let line = line.trim_end().to_string();
                    if line.is_empty() {
                        break;
                    }
                    head.push(line);
                }
                let first = head.first().cloned().unwrap_or_default();
                let (status, body) = if first.starts_with("GET /api/auth/me") {
                    (
                        "200 OK",
                        r#"{"success":true,"data":{"id":7,"username":"u","role":"annotator"}}"#,
                    )
                } else if first.starts_with("GET /ws/notifications") {
                    let _ = tx.send(head.clone());
                    ("403 Forbidden", "blocked")
                } else {
                    ("404 Not Found", r#"{"success":false,"message":"no"}"#)
                };
                let resp = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = w.write_all(resp.as_bytes()).await;
                let _ = w.shutdown().await;
            });
        }
    });
    let base = format!("http://{addr}");
    let dir = tempfile::tempdir().unwrap();
    let paths = taskbell_core::config::Paths {
        config_dir: dir.path().join("c"),
        data_dir: dir.path().join("d"),
    };
    std::fs::create_dir_all(&paths.data_dir).unwrap();
    let creds = taskbell_core::credentials::Credentials::in_memory();
    creds
        .store_token(
            &base,
            "u",
            &taskbell_core::api::SecretToken::new("tok-123".into()),
        )
        .unwrap();
    let config = taskbell_core::config::Config {
        server: Some(base.clone()),
        username: Some("u".into()),
        ..Default::default()
    };
    let mut opts = taskbell_core::supervisor::EngineOptions::new(
        config,
        paths,
        std::sync::Arc::new(taskbell_core::notifier::RecordingNotifier::new()),
        creds,
    );
    opts.timing = test_timing();
    let h = taskbell_core::supervisor::Engine::start(opts).unwrap();
    let head = tokio::time::timeout(WAIT, rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(head[0].contains("token=tok-123"), "{head:?}");
    assert!(
        head.iter()
            .any(|l| l.eq_ignore_ascii_case("authorization: Bearer tok-123")),
        "{head:?}"
    );
    let exit = tokio::time::timeout(WAIT, h.join).await.unwrap().unwrap();
    assert_eq!(exit, ExitReason::AccessDenied("blocked".into()));
}

/// A pause also holds back the welcome toast; the urgent summary toast comes through (urgent
/// bypass, the default). The summary itself is still published as an event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_holds_the_welcome_but_not_the_urgent_toast() {
    let s = server().await;
    let base = s.base_url();
    let until = taskbell_core::protocol::now_ms() + 3_600_000;
    let mut zs = Client::start(
        &base,
        DEMO_ANNOTATOR,
        Setup {
            tweak_config: Box::new(move |c| c.paused_until_ms = Some(until)),
            ..Setup::default()
        },
    )
    .await;
    let e = zs
        .wait_seen("summary", |e| matches!(e, Event::Summary(_)))
        .await;
    assert!(matches!(e, Event::Summary(s) if s.urgent.is_some()));
    let urgent = zs
        .notifier
        .wait_for(WAIT, |t| {
            t.urgency == taskbell_core::delivery::Urgency::Critical
        })
        .await
        .expect("the urgent toast bypasses the pause");
    assert!(urgent.title.contains("驳回"), "{urgent:?}");
    assert!(
        !zs.notifier.toasts().iter().any(|t| t.title == "登录成功"),
        "{:?}",
        zs.notifier.toasts()
    );
    zs.stop().await;
}
