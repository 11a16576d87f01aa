//! Redis mode: two server instances on one real redis-server (started by the test on a free
//! port): cross-instance delivery with the same ids, history in Redis streams surviving a
//! restart, revocation across instances, and no Pub/Sub connection leaks (seed 001).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::{Value, json};
use taskbell_server::{DEMO_ADMIN, DEMO_ANNOTATOR, DEMO_REVIEWER, RunningServer, ServerConfig};

async fn instance(r: &Redis) -> RunningServer {
    taskbell_server::start(ServerConfig {
        redis_url: Some(r.url()),
        ..test_config()
    })
    .await
    .expect("instance starts")
}

async fn expect_type(ws: &mut Ws, kind: &str) -> Value {
    let v = next_json(ws).await;
    assert_eq!(v["type"], kind, "unexpected frame {v}");
    v
}

#[tokio::test]
async fn a_submission_on_instance_a_reaches_a_reviewer_on_instance_b() {
    let r = Redis::start().expect("redis starts");
    let a = instance(&r).await;
    let b = instance(&r).await;
    let (base_a, base_b) = (a.base_url(), b.base_url());
    let zs = login_demo(&base_a, DEMO_ANNOTATOR).await;
    // A token issued by A is accepted by B (the signing secret is shared through Redis).
    let ls = login_demo(&base_a, DEMO_REVIEWER).await;
    let mut ls_b = connect(&base_b, &ls).await;
    let mut ls_a = connect(&base_a, &ls).await;
    let mut zs_b = connect(&base_b, &zs).await;
    for ws in [&mut ls_b, &mut ls_a, &mut zs_b] {
        sync(ws).await;
    }
    assert_eq!(
        post(&base_a, "/api/tasks/task-1001/submit", Some(&zs), json!({}))
            .await
            .0,
        200
    );
    let on_b = expect_type(&mut ls_b, "task_submitted").await;
    let on_a = expect_type(&mut ls_a, "task_submitted").await;
    assert_eq!(
        on_b, on_a,
        "every instance delivers the same notification with the same id"
    );
    let id = on_b["id"].as_str().unwrap();
    assert!(id.contains('-'));
    // The id is the entry id of lisi's history stream, readable through either instance.
    for base in [&base_a, &base_b] {
        let (_, body) = get(base, "/api/notifications", Some(&ls)).await;
        let ids: Vec<&str> = body["data"]["list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, [id]);
    }
    let mut c = conn(&r).await.unwrap();
    let len: usize = redis::cmd("XLEN")
        .arg("notify:history:2")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(len, 1);

    // A group message posted on A reaches zhangsan on B, and not the sender on A or B.
    post(
        &base_a,
        "/api/groups/g1/messages",
        Some(&ls),
        json!({"content": "跨实例消息"}),
    )
    .await;
    let m = expect_type(&mut zs_b, "group").await;
    assert_eq!(m["content"], "跨实例消息");
    assert!(sync(&mut ls_a).await.is_empty());
    assert!(sync(&mut ls_b).await.is_empty());

    // The debug endpoint reports the channels and Redis' subscriber counts.
    let admin = login_demo(&base_b, DEMO_ADMIN).await;
    let (_, dbg) = get(&base_b, "/api/debug/connections", Some(&admin)).await;
    assert_eq!(dbg["data"]["bus"]["backend"], "redis");
    assert_eq!(dbg["data"]["bus"]["subscriber_connected"], true);
    assert_eq!(
        dbg["data"]["bus"]["redis_numsub"]["notify:role:reviewer"], 2,
        "one subscription per instance: {dbg}"
    );
    assert_eq!(dbg["data"]["local_sockets"], 2);
}

#[tokio::test]
async fn history_survives_the_restart_of_an_instance() {
    let r = Redis::start().expect("redis starts");
    let a = instance(&r).await;
    let zs = login_demo(&a.base_url(), DEMO_ANNOTATOR).await;
    let (status, body) = post(
        &a.base_url(),
        "/api/test/notify",
        None,
        json!({"user_id": 1, "content": "重启前", "count": 3}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (_, before) = get(&a.base_url(), "/api/notifications", Some(&zs)).await;
    a.shutdown().await;

    let a2 = instance(&r).await;
    // The old token is still valid (same secret, from Redis) and the history is all there.
    let (status, after) = get(&a2.base_url(), "/api/notifications", Some(&zs)).await;
    assert_eq!(status, 200, "{after}");
    assert_eq!(after["data"]["list"].as_array().unwrap().len(), 3);
    assert_eq!(before["data"]["list"], after["data"]["list"]);
    // And delivery works on the new instance.
    let mut ws = connect(&a2.base_url(), &zs).await;
    sync(&mut ws).await;
    post(
        &a2.base_url(),
        "/api/test/notify",
        None,
        json!({"user_id": 1, "content": "重启后"}),
    )
    .await;
    let n = next_json(&mut ws).await;
    assert_eq!(n["content"], "重启后");
    let cursor = after["data"]["next_cursor"].as_str().unwrap();
    let (_, since) = get(
        &a2.base_url(),
        &format!("/api/notifications?since={cursor}"),
        Some(&zs),
    )
    .await;
    assert_eq!(since["data"]["list"][0]["id"], n["id"]);
}

#[tokio::test]
async fn revoking_on_one_instance_closes_sockets_on_the_other() {
    let r = Redis::start().expect("redis starts");
    let a = instance(&r).await;
    let b = instance(&r).await;
    let zs = login_demo(&b.base_url(), DEMO_ANNOTATOR).await;
    let mut ws = connect(&b.base_url(), &zs).await;
    sync(&mut ws).await;
    let admin = login_demo(&a.base_url(), DEMO_ADMIN).await;
    assert_eq!(
        post(
            &a.base_url(),
            "/api/admin/users/1/revoke-tokens",
            Some(&admin),
            json!({})
        )
        .await
        .0,
        200
    );
    assert_eq!(close_code(&mut ws).await, Some(4001));
    assert_eq!(get(&b.base_url(), "/api/auth/me", Some(&zs)).await.0, 401);
    // Instances started later know the revocation too.
    let c = instance(&r).await;
    assert_eq!(get(&c.base_url(), "/api/auth/me", Some(&zs)).await.0, 401);
}

const CHANNELS: [&str; 5] = [
    "notify:user:1",
    "notify:role:annotator",
    "notify:project:p1",
    "notify:project:p2",
    "notify:global",
];

#[tokio::test]
async fn a_thousand_connect_disconnect_cycles_leak_nothing() {
    let r = Redis::start().expect("redis starts");
    let a = instance(&r).await;
    let base = a.base_url();
    let token = login_demo(&base, DEMO_ANNOTATOR).await;
    // The instance's Pub/Sub connection comes up in a task of its own: count the clients
    // only once it is there.
    let admin = login_demo(&base, DEMO_ADMIN).await;
    eventually("the instance's subscriber connected", || async {
        let (_, dbg) = get(&base, "/api/debug/connections", Some(&admin)).await;
        dbg["data"]["bus"]["subscriber_connected"] == true
    })
    .await;
    let mut c = conn(&r).await.unwrap();
    let clients_before = client_count(&mut c).await;
    let numsub_before = numsub(&mut c, &CHANNELS).await;
    assert_eq!(numsub_before, [0; 5]);

    // While a socket is open its channels are subscribed, once.
    let mut ws = connect(&base, &token).await;
    sync(&mut ws).await;
    assert_eq!(numsub(&mut c, &CHANNELS).await, [1; 5]);
    let mut second = connect(&base, &token).await;
    sync(&mut second).await;
    assert_eq!(
        numsub(&mut c, &CHANNELS).await,
        [1; 5],
        "one subscription per instance, not per socket"
    );
    assert_eq!(
        client_count(&mut c).await,
        clients_before,
        "sockets open no Redis connections"
    );
    client_close(ws).await;
    client_close(second).await;

    for i in 0..1000 {
        let mut ws = connect(&base, &token).await;
        sync(&mut ws).await;
        if i % 250 == 0 {
            assert_eq!(client_count(&mut c).await, clients_before, "cycle {i}");
        }
        client_close(ws).await;
    }
    eventually("every socket unregistered", || async {
        a.socket_count() == 0
    })
    .await;
    eventually("subscriptions back where they started", || {
        let mut c = c.clone();
        let want = numsub_before.clone();
        async move { numsub(&mut c, &CHANNELS).await == want }
    })
    .await;
    assert_eq!(client_count(&mut c).await, clients_before);
    // Still working after all that.
    let mut ws = connect(&base, &token).await;
    sync(&mut ws).await;
    post(
        &base,
        "/api/test/notify",
        None,
        json!({"user_id": 1, "content": "还在"}),
    )
    .await;
    assert_eq!(next_json(&mut ws).await["content"], "还在");
}

#[tokio::test]
async fn a_killed_subscriber_connection_is_replaced_not_leaked() {
    let r = Redis::start().expect("redis starts");
    let a = instance(&r).await;
    let base = a.base_url();
    let token = login_demo(&base, DEMO_ANNOTATOR).await;
    let mut ws = connect(&base, &token).await;
    sync(&mut ws).await;
    let mut c = conn(&r).await.unwrap();
    let clients_before = client_count(&mut c).await;
    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("pubsub")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(killed, 1, "exactly one Pub/Sub connection per instance");
    eventually("the subscriber re-subscribed the socket's channels", || {
        let mut c = c.clone();
        async move { numsub(&mut c, &CHANNELS).await == [1; 5] }
    })
    .await;
    assert_eq!(client_count(&mut c).await, clients_before);
    post(
        &base,
        "/api/test/notify",
        None,
        json!({"user_id": 1, "content": "重连后"}),
    )
    .await;
    assert_eq!(next_json(&mut ws).await["content"], "重连后");
}

#[tokio::test]
async fn redis_that_is_not_there_is_a_clear_start_error() {
    // A port kept bound but never listening: connects are refused, and nothing else (another
    // test's redis-server) can take it meanwhile.
    let refusing = tokio::net::TcpSocket::new_v4().unwrap();
    refusing.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = refusing.local_addr().unwrap().port();
    let err = taskbell_server::start(ServerConfig {
        redis_url: Some(format!("redis://127.0.0.1:{port}/")),
        ..ServerConfig::default()
    })
    .await
    .unwrap_err();
    drop(refusing);
    assert!(
        matches!(err, taskbell_server::ServerError::Redis(_)),
        "{err}"
    );
    let err = taskbell_server::start(ServerConfig {
        redis_url: Some("http://nope".into()),
        ..ServerConfig::default()
    })
    .await
    .unwrap_err();
    assert!(err.to_string().contains("redis"), "{err}");
}

#[tokio::test]
async fn a_redis_outage_fails_the_request_and_changes_nothing() {
    let mut r = Redis::start().expect("redis starts");
    let a = instance(&r).await;
    let base = a.base_url();
    let zs = login_demo(&base, DEMO_ANNOTATOR).await;
    r.kill();
    let (status, body) = post(&base, "/api/tasks/task-1001/submit", Some(&zs), json!({})).await;
    assert_eq!(
        (status, body["success"].as_bool()),
        (500, Some(false)),
        "{body}"
    );
    assert!(
        body["message"].as_str().unwrap().contains("notification"),
        "{body}"
    );
    let (_, tasks) = get(&base, "/api/tasks/my?status=in_progress", Some(&zs)).await;
    let ids: Vec<&str> = tasks["data"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&"task-1001"),
        "the task is still in progress: {ids:?}"
    );
}
