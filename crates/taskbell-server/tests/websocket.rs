//! The WebSocket of protocol.md §3 and the scenarios of §6 that the server side can show, with a
//! real tokio-tungstenite client against an in-process server on port 0.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use taskbell_server::{DEMO_ADMIN, DEMO_ANNOTATOR, DEMO_ANNOTATOR2, DEMO_REVIEWER, ServerConfig};
use tokio_tungstenite::tungstenite::Message;

/// The next frame of the given notification type (other notifications are not expected).
async fn expect_type(ws: &mut Ws, kind: &str) -> Value {
    let v = next_json(ws).await;
    assert_eq!(v["type"], kind, "unexpected frame {v}");
    v
}

#[tokio::test]
async fn ping_is_answered_with_pong_echoing_timestamp() {
    let s = server().await;
    let token = login_demo(&s.base_url(), DEMO_ANNOTATOR).await;
    let mut ws = connect(&s.base_url(), &token).await;
    let ts = now_ms();
    send_json(
        &mut ws,
        json!({"type": "ping", "timestamp": ts, "user_id": 1, "username": "张三"}),
    )
    .await;
    let pong = next_json(&mut ws).await;
    assert_eq!(pong["type"], "pong");
    assert_eq!(pong["timestamp"], ts);
    let server_time = pong["server_time"].as_i64().unwrap();
    assert!(
        (server_time - ts).abs() < 60_000,
        "server_time is in ms: {server_time}"
    );
    // The Authorization header works as well as the query token.
    let mut ws2 = connect_with_header(&s.base_url(), &token).await;
    sync(&mut ws2).await;
    // Protocol-level pings are answered by the protocol layer.
    ws.send(Message::Ping(b"hi".to_vec().into())).await.unwrap();
    let got = tokio::time::timeout(WAIT, async {
        loop {
            if let Some(Ok(Message::Pong(p))) = ws.next().await {
                return p;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(&got[..], b"hi");
}

/// §6 scenario 1: an annotator submits → reviewers get "新任务待审核" at once; a reviewer
/// reviews → the annotator gets the result at once.
#[tokio::test]
async fn scenario_1_submit_then_review_notifies_both_sides() {
    let s = server().await;
    let base = s.base_url();
    let zs = login_demo(&base, DEMO_ANNOTATOR).await;
    let ls = login_demo(&base, DEMO_REVIEWER).await;
    let ad = login_demo(&base, DEMO_ADMIN).await;
    let mut zs_ws = connect(&base, &zs).await;
    let mut ls_ws = connect(&base, &ls).await;
    let mut ad_ws = connect(&base, &ad).await;
    for ws in [&mut zs_ws, &mut ls_ws, &mut ad_ws] {
        sync(ws).await;
    }
    assert_eq!(
        post(&base, "/api/tasks/task-1001/submit", Some(&zs), json!({}))
            .await
            .0,
        200
    );
    for ws in [&mut ls_ws, &mut ad_ws] {
        let n = expect_type(ws, "task_submitted").await;
        assert_eq!(n["title"], "新任务待审核");
        assert!(
            n["content"].as_str().unwrap().contains("图像标注-0041"),
            "{n}"
        );
        assert_eq!(n["data"]["task_id"], "task-1001");
        assert!(n["id"].as_str().unwrap().contains('-'));
        assert!(
            n["timestamp"].as_i64().unwrap() < 100_000_000_000,
            "seconds"
        );
        assert_eq!(n["priority"], "normal");
    }
    let (status, _) = post(
        &base,
        "/api/tasks/task-1001/review",
        Some(&ls),
        json!({"action": "reject", "comment": "漏标了两辆车"}),
    )
    .await;
    assert_eq!(status, 200);
    let n = expect_type(&mut zs_ws, "task_reviewed").await;
    assert_eq!(n["title"], "任务审核结果");
    assert!(n["content"].as_str().unwrap().contains("已驳回"), "{n}");
    assert_eq!(n["data"]["status"], "rejected");
    assert_eq!(n["priority"], "high");
    // The annotator got nothing else: the next frame is the pong of a fresh ping.
    assert!(sync(&mut zs_ws).await.is_empty());
    // Approval.
    post(&base, "/api/tasks/task-1001/submit", Some(&zs), json!({})).await;
    expect_type(&mut ls_ws, "task_submitted").await;
    post(
        &base,
        "/api/tasks/task-1001/review",
        Some(&ls),
        json!({"action": "approve"}),
    )
    .await;
    let n = expect_type(&mut zs_ws, "task_reviewed").await;
    assert!(n["content"].as_str().unwrap().contains("已通过"));
    assert_eq!(n["data"]["status"], "approved");
}

/// §6 scenario 3: three submissions → three separate notifications, each with its own content.
#[tokio::test]
async fn scenario_3_three_submissions_three_notifications() {
    let s = server().await;
    let base = s.base_url();
    let zs = login_demo(&base, DEMO_ANNOTATOR).await;
    let ls = login_demo(&base, DEMO_REVIEWER).await;
    let mut ls_ws = connect(&base, &ls).await;
    sync(&mut ls_ws).await;
    let tasks = [
        ("task-1001", "图像标注-0041"),
        ("task-1002", "图像标注-0042"),
        ("task-1003", "文本分类-0007"),
    ];
    for (id, _) in tasks {
        assert_eq!(
            post(
                &base,
                &format!("/api/tasks/{id}/submit"),
                Some(&zs),
                json!({})
            )
            .await
            .0,
            200
        );
    }
    let mut ids = Vec::new();
    for (id, title) in tasks {
        let n = expect_type(&mut ls_ws, "task_submitted").await;
        assert_eq!(n["data"]["task_id"], id);
        assert!(n["content"].as_str().unwrap().contains(title));
        ids.push(n["id"].as_str().unwrap().to_owned());
    }
    ids.dedup();
    assert_eq!(ids.len(), 3, "three distinct ids");
    // The history has the same three, with the same ids.
    let (_, body) = get(&base, "/api/notifications", Some(&ls)).await;
    let hist: Vec<&str> = body["data"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap())
        .collect();
    assert_eq!(hist, ids);
}

/// §6 scenario 6: the same account on two clients → both receive every notification.
#[tokio::test]
async fn scenario_6_same_account_on_two_clients() {
    let s = server().await;
    let base = s.base_url();
    let zs = login_demo(&base, DEMO_ANNOTATOR).await;
    let zs2 = login_demo(&base, DEMO_ANNOTATOR).await;
    let ls = login_demo(&base, DEMO_REVIEWER).await;
    let mut a = connect(&base, &zs).await;
    let mut b = connect(&base, &zs2).await;
    sync(&mut a).await;
    sync(&mut b).await;
    post(
        &base,
        "/api/tasks/task-1006/review",
        Some(&ls),
        json!({"action": "reject", "comment": "重做"}),
    )
    .await;
    let na = expect_type(&mut a, "task_reviewed").await;
    let nb = expect_type(&mut b, "task_reviewed").await;
    assert_eq!(na, nb, "the same notification, same id");
    let admin = login_demo(&base, DEMO_ADMIN).await;
    post(
        &base,
        "/api/notifications/broadcast",
        Some(&admin),
        json!({"title": "维护", "content": "今晚维护"}),
    )
    .await;
    let na = expect_type(&mut a, "system").await;
    let nb = expect_type(&mut b, "system").await;
    assert_eq!(na["id"], nb["id"]);
    assert_eq!(na["content"], "今晚维护");
}

/// Marking read through REST pushes `{"type":"read","ids":[...]}` to every socket of that
/// user, and to nobody else.
#[tokio::test]
async fn read_marks_reach_every_socket_of_the_user_only() {
    let s = server().await;
    let base = s.base_url();
    let zs = login_demo(&base, DEMO_ANNOTATOR).await;
    let zs2 = login_demo(&base, DEMO_ANNOTATOR).await;
    let ls = login_demo(&base, DEMO_REVIEWER).await;
    let mut a = connect(&base, &zs).await;
    let mut b = connect(&base, &zs2).await;
    let mut other = connect(&base, &ls).await;
    for ws in [&mut a, &mut b, &mut other] {
        sync(ws).await;
    }
    post(
        &base,
        "/api/tasks/task-1006/review",
        Some(&ls),
        json!({"action": "reject", "comment": "重做"}),
    )
    .await;
    let n = expect_type(&mut a, "task_reviewed").await;
    expect_type(&mut b, "task_reviewed").await;
    let id = n["id"].as_str().unwrap().to_owned();
    let (status, body) = post(
        &base,
        "/api/notifications/read",
        Some(&zs),
        json!({"ids": [id, 42]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["pushed"], true);
    for ws in [&mut a, &mut b] {
        let r = expect_type(ws, "read").await;
        assert_eq!(r, json!({"type": "read", "ids": [id, "42"]}));
    }
    assert!(
        sync(&mut other).await.is_empty(),
        "another user hears nothing"
    );
    // Nothing to mark, nothing pushed.
    post(
        &base,
        "/api/notifications/read",
        Some(&zs),
        json!({"ids": []}),
    )
    .await;
    assert!(sync(&mut a).await.is_empty());
}

#[tokio::test]
async fn skip_requests_and_assignments_notify() {
    let s = server().await;
    let base = s.base_url();
    let zs = login_demo(&base, DEMO_ANNOTATOR).await;
    let ls = login_demo(&base, DEMO_REVIEWER).await;
    let mut zs_ws = connect(&base, &zs).await;
    let mut ls_ws = connect(&base, &ls).await;
    sync(&mut zs_ws).await;
    sync(&mut ls_ws).await;
    post(
        &base,
        "/api/skip-requests",
        Some(&zs),
        json!({"task_id": "task-1003", "reason": "图片损坏"}),
    )
    .await;
    let n = expect_type(&mut ls_ws, "skip_requested").await;
    assert!(n["content"].as_str().unwrap().contains("图片损坏"));
    let (status, body) = post(
        &base,
        "/api/tasks",
        Some(&ls),
        json!({"title": "新任务-01", "assignee_id": 1, "project_id": "p1"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let n = expect_type(&mut zs_ws, "task_assigned").await;
    assert_eq!(n["data"]["task_id"], body["data"]["id"]);
}

#[tokio::test]
async fn group_messages_reach_members_but_not_the_sender() {
    let s = server().await;
    let base = s.base_url();
    let ls = login_demo(&base, DEMO_REVIEWER).await;
    let zs = login_demo(&base, DEMO_ANNOTATOR).await;
    let ww = login_demo(&base, DEMO_ANNOTATOR2).await;
    let mut ls_ws = connect(&base, &ls).await;
    let mut zs_ws = connect(&base, &zs).await;
    let mut ww_ws = connect(&base, &ww).await;
    for ws in [&mut ls_ws, &mut zs_ws, &mut ww_ws] {
        sync(ws).await;
    }
    let (status, body) = post(
        &base,
        "/api/groups/g1/messages",
        Some(&ls),
        json!({"content": "大家好，今天开会"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    for ws in [&mut zs_ws, &mut ww_ws] {
        let m = expect_type(ws, "group").await;
        assert_eq!(m["group_id"], "g1");
        assert_eq!(m["from_user_id"], "2");
        assert_eq!(m["content"], "大家好，今天开会");
        assert!(m["id"].is_string() && m["created_at"].is_i64());
    }
    assert!(sync(&mut ls_ws).await.is_empty(), "the sender gets no copy");
    assert_eq!(
        post(
            &base,
            "/api/groups/nope/messages",
            Some(&ls),
            json!({"content": "x"})
        )
        .await
        .0,
        404
    );
    let (_, groups) = get(&base, "/api/groups", Some(&zs)).await;
    assert_eq!(groups["data"]["list"][0]["id"], "g1");

    // Private messages go to the addressee only.
    let (status, body) = post(
        &base,
        "/api/users/1/messages",
        Some(&ls),
        json!({"content": "张三，请看一下"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let m = expect_type(&mut zs_ws, "private").await;
    assert_eq!(
        (m["from_user_id"].as_str(), m["content"].as_str()),
        (Some("2"), Some("张三，请看一下"))
    );
    assert!(m["id"].is_string() && m["msg_id"].is_string());
    assert!(sync(&mut ww_ws).await.is_empty());
    assert!(sync(&mut ls_ws).await.is_empty());
    assert_eq!(
        post(
            &base,
            "/api/users/2/messages",
            Some(&ls),
            json!({"content": "x"})
        )
        .await
        .0,
        400
    );
    assert_eq!(
        post(
            &base,
            "/api/users/99/messages",
            Some(&ls),
            json!({"content": "x"})
        )
        .await
        .0,
        404
    );
}

#[tokio::test]
async fn missing_invalid_and_expired_tokens_close_with_4001() {
    let s = server().await;
    let base = s.base_url();
    let (mut ws, _) = tokio_tungstenite::connect_async(format!(
        "{}/ws/notifications",
        base.replacen("http", "ws", 1)
    ))
    .await
    .unwrap();
    assert_eq!(close_code(&mut ws).await, Some(4001), "missing token");
    let mut ws = connect(&base, "garbage").await;
    assert_eq!(close_code(&mut ws).await, Some(4001), "invalid token");
    let (_, minted) = post(
        &base,
        "/api/test/token",
        None,
        json!({"username": "zhangsan", "ttl_secs": -1}),
    )
    .await;
    let mut ws = connect(&base, minted["data"]["access_token"].as_str().unwrap()).await;
    assert_eq!(close_code(&mut ws).await, Some(4001), "expired token");
}

#[tokio::test]
async fn a_token_expiring_while_connected_closes_with_4001() {
    let s = server().await;
    let base = s.base_url();
    let (_, minted) = post(
        &base,
        "/api/test/token",
        None,
        json!({"username": "zhangsan", "ttl_secs": 1}),
    )
    .await;
    let mut ws = connect(&base, minted["data"]["access_token"].as_str().unwrap()).await;
    assert_eq!(close_code(&mut ws).await, Some(4001));
}

#[tokio::test]
async fn revoking_closes_live_sockets_with_4001() {
    let s = server().await;
    let base = s.base_url();
    let a = login_demo(&base, DEMO_ANNOTATOR).await;
    let b = login_demo(&base, DEMO_ANNOTATOR).await;
    let mut wa = connect(&base, &a).await;
    let mut wb = connect(&base, &b).await;
    sync(&mut wa).await;
    sync(&mut wb).await;
    // Logout revokes only that token: its socket closes, the other stays.
    post(&base, "/api/auth/logout", Some(&a), json!({})).await;
    assert_eq!(close_code(&mut wa).await, Some(4001));
    sync(&mut wb).await;
    let mut again = connect(&base, &a).await;
    assert_eq!(
        close_code(&mut again).await,
        Some(4001),
        "a revoked token cannot reconnect"
    );
    // The admin revokes all of the user's tokens.
    let admin = login_demo(&base, DEMO_ADMIN).await;
    post(
        &base,
        "/api/admin/users/1/revoke-tokens",
        Some(&admin),
        json!({}),
    )
    .await;
    assert_eq!(close_code(&mut wb).await, Some(4001));
}

#[tokio::test]
async fn the_sixth_socket_of_a_user_is_closed_with_1008() {
    let s = server().await;
    let base = s.base_url();
    let token = login_demo(&base, DEMO_ANNOTATOR).await;
    let mut open = Vec::new();
    for _ in 0..5 {
        let mut ws = connect(&base, &token).await;
        sync(&mut ws).await;
        open.push(ws);
    }
    let mut sixth = connect(&base, &token).await;
    assert_eq!(close_code(&mut sixth).await, Some(1008));
    // Other users are not affected.
    let other = login_demo(&base, DEMO_REVIEWER).await;
    let mut ws = connect(&base, &other).await;
    sync(&mut ws).await;
    // Closing one makes room again.
    client_close(open.pop().unwrap()).await;
    let mut ws = connect(&base, &token).await;
    sync(&mut ws).await;
    // The closed socket leaves the registry when its task ends, maybe after the close answer.
    eventually("six sockets registered", || async { s.socket_count() == 6 }).await;
}

#[tokio::test]
async fn oversized_frames_are_refused_with_1009() {
    let s = server().await;
    let token = login_demo(&s.base_url(), DEMO_ANNOTATOR).await;
    let mut ws = connect(&s.base_url(), &token).await;
    sync(&mut ws).await;
    // Exactly 1 MiB is allowed (it is not JSON, so it is ignored).
    ws.send(Message::text("x".repeat(1 << 20))).await.unwrap();
    sync(&mut ws).await;
    ws.send(Message::text("x".repeat((1 << 20) + 1)))
        .await
        .unwrap();
    assert_eq!(close_code(&mut ws).await, Some(1009));
    // Far over the limit: still 1009 (or at least a closed socket, never a crash).
    let mut ws = connect(&s.base_url(), &token).await;
    sync(&mut ws).await;
    let _ = ws.send(Message::binary(vec![0u8; 8 << 20])).await;
    let code = close_code(&mut ws).await;
    assert!(matches!(code, Some(1009) | None), "{code:?}");
    // The server is fine.
    let mut ws = connect(&s.base_url(), &token).await;
    sync(&mut ws).await;
}

#[tokio::test]
async fn bad_frames_are_logged_and_ignored() {
    let s = server().await;
    let token = login_demo(&s.base_url(), DEMO_ANNOTATOR).await;
    let mut ws = connect(&s.base_url(), &token).await;
    for bad in [
        "not json",
        "",
        "[1, 2, 3]",
        "42",
        "null",
        r#"{"no": "type"}"#,
        r#"{"type": 7}"#,
        r#"{"type": "teleport"}"#,
        r#"{"type": "ping"}"#,
        r#"{"type": "ping", "timestamp": "yesterday"}"#,
        r#"{"type": "ack", "ids": "x"}"#,
        r#"{"type": "pong", "timestamp": 1}"#,
        "{\"type\": \"ping\", \"timestamp\": 1, \"emoji\": \"\u{1F600}\"",
    ] {
        ws.send(Message::text(bad)).await.unwrap();
    }
    ws.send(Message::binary(vec![0xff, 0x00, 0x13]))
        .await
        .unwrap();
    send_json(&mut ws, json!({"type": "ack", "ids": ["1-0", "2-0"]})).await;
    let skipped = sync(&mut ws).await;
    assert!(skipped.is_empty(), "no replies to bad frames: {skipped:?}");
}

#[tokio::test]
async fn server_pings_and_drops_silent_sockets() {
    // A silence limit of seconds: this test runs the server and its client on one thread,
    // and a busy machine may stall it for a while without the client being silent.
    const SILENT_LIMIT: Duration = Duration::from_secs(3);
    let s = taskbell_server::start(ServerConfig {
        ping_interval: Duration::from_millis(300),
        heartbeat_timeout: SILENT_LIMIT,
        ..test_config()
    })
    .await
    .unwrap();
    let token = login_demo(&s.base_url(), DEMO_ANNOTATOR).await;
    // A client that answers every server ping stays connected across many timeouts.
    let mut ws = connect(&s.base_url(), &token).await;
    let started = tokio::time::Instant::now();
    let mut pings = 0;
    while started.elapsed() < 2 * SILENT_LIMIT {
        let msg = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a server ping in time")
            .expect("socket still open")
            .expect("no socket error");
        let text = match msg {
            Message::Text(t) => t,
            Message::Close(c) => {
                panic!("the server closed a socket that answered {pings} pings: {c:?}")
            }
            other => panic!("unexpected frame {other:?}"),
        };
        let v: Value = serde_json::from_str(text.as_str()).unwrap();
        assert_eq!(v["type"], "ping", "{v}");
        assert!(v["timestamp"].as_i64().unwrap() > 1_000_000_000_000, "ms");
        send_json(
            &mut ws,
            json!({"type": "pong", "timestamp": v["timestamp"]}),
        )
        .await;
        pings += 1;
    }
    // (Answered for more than twice the silence limit.)
    client_close(ws).await;
    // A silent client is dropped ("heartbeat timeout", 1001).
    let mut silent = connect(&s.base_url(), &token).await;
    let code = loop {
        match tokio::time::timeout(WAIT, silent.next()).await.unwrap() {
            Some(Ok(Message::Close(Some(f)))) => break Some(u16::from(f.code)),
            Some(Ok(_)) => continue, // server pings, deliberately unanswered
            _ => break None,
        }
    };
    assert_eq!(code, Some(1001));
}

#[tokio::test]
async fn test_controls_stall_pongs_and_drop_sockets() {
    let s = server().await;
    let base = s.base_url();
    let token = login_demo(&base, DEMO_ANNOTATOR).await;
    let mut ws = connect(&base, &token).await;
    sync(&mut ws).await;
    post(
        &base,
        "/api/test/stall-pongs",
        None,
        json!({"enabled": true}),
    )
    .await;
    // Re-enable pongs only once the server has read ping 111: its socket's `last_seen`
    // (ms) moves past the value it had before the ping was sent. (Server and test share
    // one thread, so the read and its stalled answer happen in one go.)
    let admin = login_demo(&base, DEMO_ADMIN).await;
    let last_seen = || async {
        let (_, dbg) = get(&base, "/api/debug/connections", Some(&admin)).await;
        let sockets = dbg["data"]["sockets"].as_array().unwrap().clone();
        assert_eq!(sockets.len(), 1, "{dbg}");
        sockets[0]["last_seen"].as_i64().unwrap()
    };
    let before = last_seen().await;
    // The ping must arrive in a later millisecond than the last frame did.
    eventually("the clock to pass the last frame's millisecond", || async {
        now_ms() > before
    })
    .await;
    send_json(&mut ws, json!({"type": "ping", "timestamp": 111})).await;
    eventually("the server to read ping 111", || async {
        last_seen().await > before
    })
    .await;
    post(
        &base,
        "/api/test/stall-pongs",
        None,
        json!({"enabled": false}),
    )
    .await;
    send_json(&mut ws, json!({"type": "ping", "timestamp": 222})).await;
    let pong = next_json(&mut ws).await;
    assert_eq!(pong["timestamp"], 222, "the stalled ping got no pong");

    // Raw frames reach the socket as they are.
    let (_, body) = post(
        &base,
        "/api/test/send-raw",
        None,
        json!({"user_id": 1, "text": "{broken"}),
    )
    .await;
    assert_eq!(body["data"]["sent"], 1);
    let raw = tokio::time::timeout(WAIT, ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(raw.to_text().unwrap(), "{broken");

    // Drop without a close frame.
    let (_, body) = post(
        &base,
        "/api/test/drop-sockets",
        None,
        json!({"mode": "abort"}),
    )
    .await;
    assert_eq!(body["data"]["dropped"], 1);
    assert_eq!(close_code(&mut ws).await, None);
    // Drop with 1001.
    let mut ws = connect(&base, &token).await;
    sync(&mut ws).await;
    post(
        &base,
        "/api/test/drop-sockets",
        None,
        json!({"mode": "going_away"}),
    )
    .await;
    assert_eq!(close_code(&mut ws).await, Some(1001));
    // Any close code.
    let mut ws = connect(&base, &token).await;
    sync(&mut ws).await;
    post(
        &base,
        "/api/test/close-sockets",
        None,
        json!({"code": 4003, "reason": "denied"}),
    )
    .await;
    assert_eq!(close_code(&mut ws).await, Some(4003));
    let (status, _) = post(
        &base,
        "/api/test/close-sockets",
        None,
        json!({"code": 1006}),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = post(
        &base,
        "/api/test/drop-sockets",
        None,
        json!({"mode": "explode"}),
    )
    .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn notification_ids_match_history_and_since_catches_up() {
    let s = server().await;
    let base = s.base_url();
    let zs = login_demo(&base, DEMO_ANNOTATOR).await;
    let mut ws = connect(&base, &zs).await;
    sync(&mut ws).await;
    post(
        &base,
        "/api/test/notify",
        None,
        json!({"user_id": "1", "content": "在线", "count": 2}),
    )
    .await;
    let first = next_json(&mut ws).await;
    let second = next_json(&mut ws).await;
    assert!(
        first["id"].as_str() < second["id"].as_str()
            || first["id"].as_str().unwrap().len() < second["id"].as_str().unwrap().len()
    );
    client_close(ws).await;
    // Offline: two more.
    post(
        &base,
        "/api/test/notify",
        None,
        json!({"user_id": "1", "content": "离线", "count": 2}),
    )
    .await;
    let cursor = second["id"].as_str().unwrap();
    let (_, body) = get(
        &base,
        &format!("/api/notifications?since={cursor}"),
        Some(&zs),
    )
    .await;
    let missed: Vec<&str> = body["data"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["content"].as_str().unwrap())
        .collect();
    assert_eq!(missed, ["离线 #1", "离线 #2"]);
}

#[tokio::test]
async fn graceful_shutdown_closes_sockets_with_1001() {
    let s = server().await;
    let token = login_demo(&s.base_url(), DEMO_ANNOTATOR).await;
    let mut ws = connect(&s.base_url(), &token).await;
    sync(&mut ws).await;
    let (code, ()) = tokio::join!(close_code(&mut ws), s.shutdown());
    assert_eq!(code, Some(1001));
}

#[tokio::test]
async fn demo_activity_makes_traffic() {
    let s = taskbell_server::start(ServerConfig {
        demo_activity: Some(Duration::from_millis(200)),
        ..ServerConfig::default()
    })
    .await
    .unwrap();
    let base = s.base_url();
    let zs = login_demo(&base, DEMO_ANNOTATOR).await;
    let ls = login_demo(&base, DEMO_REVIEWER).await;
    let mut zs_ws = connect(&base, &zs).await;
    let mut ls_ws = connect(&base, &ls).await;
    sync(&mut zs_ws).await;
    sync(&mut ls_ws).await;
    // One full cycle of the script (7 steps), as the two users see it.
    let mut zs_kinds = std::collections::BTreeSet::new();
    while !["task_reviewed", "system", "group", "task_assigned"]
        .iter()
        .all(|k| zs_kinds.contains(*k))
    {
        let n = next_json(&mut zs_ws).await;
        zs_kinds.insert(n["type"].as_str().unwrap().to_owned());
    }
    let mut ls_kinds = std::collections::BTreeSet::new();
    while !ls_kinds.contains("task_submitted") {
        let n = next_json(&mut ls_ws).await;
        ls_kinds.insert(n["type"].as_str().unwrap().to_owned());
    }
    let (_, tasks) = get(&base, "/api/tasks/my?status=rejected", Some(&zs)).await;
    assert!(
        tasks["data"]["list"].as_array().unwrap().len() >= 2,
        "the demo rejected another task"
    );
}
