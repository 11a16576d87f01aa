//! Abuse resistance against an in-process server on port 0: the login limits (counted before the
//! password check, per username and per client address, bounded tracking), the bound on
//! concurrent password checks, and the loopback-only `Host`/`Origin` rule of `--test-controls`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::{IpAddr, Ipv4Addr};

use common::*;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use serde_json::{Value, json};
use taskbell_server::{DEMO_ANNOTATOR, DataFile, RunningServer, ServerConfig};

/// An admin token from the test control (no password check, so the counters stay untouched).
async fn admin_token(base: &str) -> String {
    let (status, body) = post(base, "/api/test/token", None, json!({"username": "admin"})).await;
    assert_eq!(status, 200, "{body}");
    body["data"]["access_token"].as_str().unwrap().to_owned()
}

/// The `logins` section of the debug endpoint.
async fn login_stats(base: &str) -> Value {
    let token = admin_token(base).await;
    let (status, body) = get(base, "/api/debug/connections", Some(&token)).await;
    assert_eq!(status, 200, "{body}");
    body["data"]["logins"].clone()
}

/// `(status, Retry-After)` of one login.
async fn try_login(
    client: &reqwest::Client,
    base: &str,
    username: &str,
    password: &str,
) -> (u16, Option<u64>) {
    let resp = client
        .post(format!("{base}/api/auth/login"))
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .expect("request sent");
    let status = resp.status().as_u16();
    let retry = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
    let body: Value = resp.json().await.expect("JSON body");
    assert_eq!(body["success"], status == 200, "{body}");
    (status, retry)
}

async fn start(config: ServerConfig) -> RunningServer {
    taskbell_server::start(config).await.expect("server starts")
}

#[tokio::test]
async fn parallel_wrong_logins_for_one_name_are_counted_before_the_password_check() {
    let s = start(test_config()).await; // 5 failures per username
    let base = s.base_url();
    let client = http();
    let answers: Vec<(u16, Option<u64>)> = (0..40)
        .map(|_| try_login(&client, &base, DEMO_ANNOTATOR.username, "wrong"))
        .collect::<FuturesUnordered<_>>()
        .collect()
        .await;
    let unauthorized = answers.iter().filter(|(s, _)| *s == 401).count();
    let limited: Vec<_> = answers.iter().filter(|(s, _)| *s == 429).collect();
    assert_eq!(unauthorized, 5, "{answers:?}");
    assert_eq!(limited.len(), 35, "{answers:?}");
    assert!(
        limited.iter().all(|(_, r)| r.is_some_and(|r| r >= 1)),
        "every 429 has a Retry-After: {answers:?}"
    );
    let stats = login_stats(&base).await;
    assert_eq!(
        stats["password_checks"]["checks"], 5,
        "only the counted attempts reach argon2: {stats}"
    );
    // Now locked even with the right password; the lock says how long.
    let (status, retry) = try_login(
        &client,
        &base,
        DEMO_ANNOTATOR.username,
        DEMO_ANNOTATOR.password,
    )
    .await;
    assert_eq!(status, 429);
    assert!(retry.is_some_and(|r| (1..=60).contains(&r)), "{retry:?}");
}

/// Users whose hashes are as cheap as argon2 allows (the check of unknown names costs the same),
/// so that ten thousand logins take seconds, not minutes.
fn cheap_data() -> DataFile {
    use argon2::password_hash::PasswordHasher;
    let params = argon2::Params::new(8, 1, 1, None).unwrap();
    let hash = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password(b"pw")
        .unwrap()
        .to_string();
    serde_json::from_value(json!({"users": [
        {"id": "1", "username": "victim", "role": "annotator", "password_hash": hash},
        {"id": "2", "username": "admin", "role": "admin", "password_hash": hash},
    ]}))
    .unwrap()
}

#[tokio::test]
async fn ten_thousand_and_one_new_names_do_not_lift_a_lockout() {
    let s = start(ServerConfig {
        data: Some(cheap_data()),
        login_max_failures: 3,
        // One attacker address standing for many: only the per-name tracking is under test.
        login_max_failures_per_ip: 0,
        // A window no run outlasts: 10,001 logins on a loaded machine may take longer
        // than the default minute, and the lockout must not end on its own meanwhile.
        login_window: std::time::Duration::from_secs(24 * 3600),
        ..test_config()
    })
    .await;
    let base = s.base_url();
    let client = http();
    for _ in 0..3 {
        assert_eq!(try_login(&client, &base, "victim", "wrong").await.0, 401);
    }
    assert_eq!(try_login(&client, &base, "victim", "pw").await.0, 429);

    let statuses: Vec<u16> = futures_util::stream::iter(0..10_001)
        .map(|i| {
            let (client, base) = (client.clone(), base.clone());
            async move {
                try_login(&client, &base, &format!("spray-{i}"), "wrong")
                    .await
                    .0
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    assert!(
        statuses.iter().all(|s| *s == 401),
        "each new name fails once"
    );

    let stats = login_stats(&base).await;
    let tracked = stats["tracked_usernames"].as_u64().unwrap();
    assert!(tracked <= 10_000, "tracking is bounded: {stats}");
    let (status, retry) = try_login(&client, &base, "victim", "pw").await;
    assert_eq!(status, 429, "the lockout survives {tracked} tracked names");
    assert!(retry.is_some());
}

#[tokio::test]
async fn the_per_address_limit_spans_usernames() {
    let s = start(test_config()).await; // 20 failures per address, 5 per username
    let base = s.base_url();
    let client = http();
    for i in 0..20 {
        let (status, _) = try_login(&client, &base, &format!("guess-{i}"), "wrong").await;
        assert_eq!(status, 401, "attempt {i}");
    }
    // Even a right password of an untouched account is not checked from this address now.
    let (status, retry) = try_login(
        &client,
        &base,
        DEMO_ANNOTATOR.username,
        DEMO_ANNOTATOR.password,
    )
    .await;
    assert_eq!(status, 429);
    assert!(retry.is_some_and(|r| (1..=60).contains(&r)), "{retry:?}");
    // Another address of this machine is not affected.
    taskbell_testkit::http::install_tls_provider();
    let elsewhere = reqwest::Client::builder()
        .timeout(WAIT)
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)))
        .build()
        .unwrap();
    let (status, _) = try_login(
        &elsewhere,
        &base,
        DEMO_ANNOTATOR.username,
        DEMO_ANNOTATOR.password,
    )
    .await;
    assert_eq!(status, 200);
    // Its successful attempt left nothing behind; the failing address is still tracked.
    assert_eq!(login_stats(&base).await["tracked_addresses"], 1);
}

#[tokio::test]
async fn password_checks_are_bounded_under_120_parallel_logins() {
    let s = start(ServerConfig {
        login_max_failures: 0,
        login_max_failures_per_ip: 0,
        login_hash_concurrency: 2,
        login_hash_queue: 8,
        ..test_config()
    })
    .await;
    let base = s.base_url();
    // Hold every permit, so the 120 logins overlap whatever the scheduling.
    let (status, body) = post(&base, "/api/test/hold-logins", None, json!({"hold": true})).await;
    assert_eq!(
        (status, &body["data"]["held"]),
        (200, &json!(true)),
        "{body}"
    );

    let client = http();
    let mut pending: FuturesUnordered<_> = (0..120)
        .map(|_| {
            try_login(
                &client,
                &base,
                DEMO_ANNOTATOR.username,
                DEMO_ANNOTATOR.password,
            )
        })
        .collect();
    // 2 + 8 are admitted and wait; the other 110 are turned away at once.
    for _ in 0..110 {
        let (status, retry) = pending.next().await.unwrap();
        assert_eq!(
            status, 503,
            "only refusals can finish while the checks are held"
        );
        assert_eq!(retry, Some(1));
    }
    let stats = login_stats(&base).await;
    assert_eq!(stats["password_checks"]["admitted"], 10, "{stats}");
    assert_eq!(stats["password_checks"]["checks"], 0, "{stats}");

    let (status, _) = post(&base, "/api/test/hold-logins", None, json!({"hold": false})).await;
    assert_eq!(status, 200);
    let rest: Vec<_> = pending.collect().await;
    assert_eq!(rest.len(), 10);
    assert!(rest.iter().all(|(s, _)| *s == 200), "{rest:?}");

    let stats = login_stats(&base).await;
    let checks = &stats["password_checks"];
    assert_eq!(checks["checks"], 10, "{stats}");
    let peak = checks["peak_running"].as_u64().unwrap();
    assert!((1..=2).contains(&peak), "at most 2 checks at once: {stats}");
    assert_eq!(checks["admitted"], 0, "{stats}");
    assert_eq!(checks["running"], 0, "{stats}");
    // And the server is still fine for an ordinary login.
    login_demo(&base, DEMO_ANNOTATOR).await;
}

/// `(status, body)` of a request with an explicit `Host` and optional `Origin`.
async fn with_host(url: &str, host: &str, origin: Option<&str>, body: Value) -> (u16, Value) {
    let mut req = http().post(url).header("Host", host).json(&body);
    if let Some(o) = origin {
        req = req.header("Origin", o);
    }
    call(req).await
}

#[tokio::test]
async fn test_controls_answer_only_requests_for_a_loopback_host() {
    let s = server().await;
    let port = s.addr().port();
    let url = format!("{}/api/test/token", s.base_url());
    let body = json!({"username": "admin"});

    for host in [
        "evil.example",
        &format!("evil.example:{port}"),
        "127.0.0.1.nip.io",
    ] {
        let (status, reply) = with_host(&url, host, None, body.clone()).await;
        assert_eq!(status, 403, "Host {host}: {reply}");
        assert_eq!(reply["success"], false);
        assert_eq!(reply["code"], "host_not_allowed");
        assert!(reply["message"].as_str().unwrap().contains("loopback"));
        assert!(reply.get("data").is_none(), "no token for {host}: {reply}");
    }
    // Every route, not only the controls: a rebound page must not even sign in.
    let (status, _) = with_host(
        &format!("{}/api/auth/login", s.base_url()),
        "evil.example",
        None,
        json!({"username": DEMO_ANNOTATOR.username, "password": DEMO_ANNOTATOR.password}),
    )
    .await;
    assert_eq!(status, 403);
    // A page of another origin, even when it addresses 127.0.0.1 directly.
    let (status, reply) = with_host(
        &url,
        &format!("127.0.0.1:{port}"),
        Some("https://evil.example"),
        body.clone(),
    )
    .await;
    assert_eq!(
        (status, reply["code"].as_str()),
        (403, Some("host_not_allowed"))
    );

    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        "127.0.0.1".to_owned(),
    ] {
        let (status, reply) = with_host(&url, &host, None, body.clone()).await;
        assert_eq!(status, 200, "Host {host}: {reply}");
        assert!(reply["data"]["access_token"].is_string());
    }
    let (status, _) = with_host(
        &url,
        &format!("localhost:{port}"),
        Some(&format!("http://localhost:{port}")),
        body,
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn without_test_controls_any_host_is_served() {
    let s = start(ServerConfig::default()).await;
    let (status, reply) = with_host(
        &format!("{}/api/auth/login", s.base_url()),
        "platform.example",
        None,
        json!({"username": DEMO_ANNOTATOR.username, "password": DEMO_ANNOTATOR.password}),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
}

#[tokio::test]
async fn demo_accounts_need_a_loopback_address_or_the_flag() {
    let public = "0.0.0.0:0".parse().unwrap();
    let err = taskbell_server::start(ServerConfig {
        listen: public,
        ..ServerConfig::default()
    })
    .await
    .unwrap_err();
    assert!(
        matches!(&err, taskbell_server::ServerError::Config(m) if m.contains("--allow-public-demo")),
        "{err}"
    );
    // Own accounts may be served anywhere.
    let s = start(ServerConfig {
        listen: public,
        data: Some(cheap_data()),
        ..ServerConfig::default()
    })
    .await;
    s.shutdown().await;
    // The IPv6 wildcard is public as well.
    let err = taskbell_server::start(ServerConfig {
        listen: "[::]:0".parse().unwrap(),
        ..ServerConfig::default()
    })
    .await
    .unwrap_err();
    assert!(err.to_string().contains("published passwords"), "{err}");
}
