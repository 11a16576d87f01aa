//! REST API of protocol.md §2 against an in-process server on port 0.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::{Value, json};
use taskbell_server::{DEMO_ADMIN, DEMO_ANNOTATOR, DEMO_REVIEWER, ServerConfig, ServerError};

#[tokio::test]
async fn login_good_and_bad_password() {
    let s = server().await;
    let base = s.base_url();
    let (status, body) = post(
        &base,
        "/api/auth/login",
        None,
        json!({"username": "zhangsan", "password": "annotate-123"}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["success"], true);
    let data = &body["data"];
    assert!(data["access_token"].as_str().unwrap().len() > 20);
    assert_eq!(data["token_type"], "bearer");
    assert!(data["expires_in"].as_i64().unwrap() > 0);
    assert_eq!(data["user"]["username"], "zhangsan");
    assert_eq!(data["user"]["real_name"], "张三");
    assert_eq!(data["user"]["role"], "annotator");

    let (status, body) = post(
        &base,
        "/api/auth/login",
        None,
        json!({"username": "zhangsan", "password": "wrong"}),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(body["success"], false);
    assert_eq!(body["code"], "invalid_credentials");
    assert!(body["message"].as_str().unwrap().contains("invalid"));

    let (status, _) = post(
        &base,
        "/api/auth/login",
        None,
        json!({"username": "nobody", "password": "x"}),
    )
    .await;
    assert_eq!(status, 401);
    let (status, body) = post(
        &base,
        "/api/auth/login",
        None,
        json!({"username": "", "password": ""}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test]
async fn login_is_rate_limited_with_retry_after() {
    let s = taskbell_server::start(ServerConfig {
        login_max_failures: 3,
        ..test_config()
    })
    .await
    .unwrap();
    let base = s.base_url();
    for _ in 0..3 {
        let (status, _) = post(
            &base,
            "/api/auth/login",
            None,
            json!({"username": "lisi", "password": "nope"}),
        )
        .await;
        assert_eq!(status, 401);
    }
    let resp = http()
        .post(format!("{base}/api/auth/login"))
        .json(&json!({"username": "lisi", "password": "review-123"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 429);
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["success"], false);
    assert_eq!(body["code"], "rate_limited");
    // Other accounts are not affected.
    login_demo(&base, DEMO_ANNOTATOR).await;
    // The test control lifts the lock.
    post(&base, "/api/test/reset-login-limits", None, json!({})).await;
    login_demo(&base, DEMO_REVIEWER).await;
}

#[tokio::test]
async fn me_and_unauthorized() {
    let s = server().await;
    let base = s.base_url();
    let token = login_demo(&base, DEMO_REVIEWER).await;
    let (status, body) = get(&base, "/api/auth/me", Some(&token)).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["username"], "lisi");
    assert_eq!(body["data"]["real_name"], "李四");
    assert_eq!(body["data"]["role"], "reviewer");
    assert!(body["data"]["project_ids"].is_array());

    let (status, body) = get(&base, "/api/auth/me", None).await;
    assert_eq!((status, body["code"].as_str()), (401, Some("unauthorized")));
    let (status, body) = get(&base, "/api/auth/me", Some("not.a.token")).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("invalid_token"))
    );

    // An expired token (minted by the test control) → 401 token_expired.
    let (_, minted) = post(
        &base,
        "/api/test/token",
        None,
        json!({"username": "lisi", "ttl_secs": -30}),
    )
    .await;
    let expired = minted["data"]["access_token"].as_str().unwrap();
    let (status, body) = get(&base, "/api/auth/me", Some(expired)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("token_expired"))
    );

    // A token of another server (other secret) is invalid.
    let other = server().await;
    let foreign = login_demo(&other.base_url(), DEMO_REVIEWER).await;
    let (status, _) = get(&base, "/api/auth/me", Some(&foreign)).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn logout_revokes_the_token_only() {
    let s = server().await;
    let base = s.base_url();
    let a = login_demo(&base, DEMO_ANNOTATOR).await;
    let b = login_demo(&base, DEMO_ANNOTATOR).await;
    let (status, _) = post(&base, "/api/auth/logout", Some(&a), json!({})).await;
    assert_eq!(status, 200);
    let (status, body) = get(&base, "/api/auth/me", Some(&a)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("token_revoked"))
    );
    let (status, _) = get(&base, "/api/auth/me", Some(&b)).await;
    assert_eq!(status, 200, "the other session stays valid");
}

#[tokio::test]
async fn admin_revokes_every_token_of_a_user() {
    let s = server().await;
    let base = s.base_url();
    let admin = login_demo(&base, DEMO_ADMIN).await;
    let zs = login_demo(&base, DEMO_ANNOTATOR).await;
    let (status, _) = post(
        &base,
        "/api/admin/users/1/revoke-tokens",
        Some(&zs),
        json!({}),
    )
    .await;
    assert_eq!(status, 403, "annotators cannot revoke");
    let (status, _) = post(
        &base,
        "/api/admin/users/999/revoke-tokens",
        Some(&admin),
        json!({}),
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = post(
        &base,
        "/api/admin/users/1/revoke-tokens",
        Some(&admin),
        json!({}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = get(&base, "/api/auth/me", Some(&zs)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("token_revoked"))
    );
    // Logging in again gives a fresh, valid token.
    let fresh = login_demo(&base, DEMO_ANNOTATOR).await;
    assert_eq!(get(&base, "/api/auth/me", Some(&fresh)).await.0, 200);
}

fn statuses(body: &Value) -> Vec<String> {
    body["data"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["status"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn annotator_summary_endpoints() {
    let s = server().await;
    let base = s.base_url();
    let token = login_demo(&base, DEMO_ANNOTATOR).await;
    let (status, body) = get(&base, "/api/tasks/my", Some(&token)).await;
    assert_eq!(status, 200);
    let all = statuses(&body);
    assert_eq!(body["data"]["total"].as_u64().unwrap() as usize, all.len());
    let count = |s: &str| all.iter().filter(|x| *x == s).count();
    assert!(count("in_progress") >= 2, "{all:?}");
    assert!(count("rejected") >= 1, "{all:?}");
    for t in body["data"]["list"].as_array().unwrap() {
        assert_eq!(t["assignee_id"], "1");
        assert!(!t["title"].as_str().unwrap().is_ascii(), "Chinese titles");
        assert!(t["id"].is_string() && t["updated_at"].is_i64());
    }
    let (_, rejected) = get(&base, "/api/tasks/my?status=rejected", Some(&token)).await;
    assert_eq!(statuses(&rejected), vec!["rejected"; count("rejected")]);
    assert!(rejected["data"]["list"][0]["review_comment"].is_string());
    let (status, body) = get(&base, "/api/tasks/my?status=bogus", Some(&token)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_query"))
    );
    // Annotators cannot list the review queue.
    assert_eq!(
        get(&base, "/api/tasks?status=submitted", Some(&token))
            .await
            .0,
        403
    );
}

#[tokio::test]
async fn reviewer_summary_endpoints() {
    let s = server().await;
    let base = s.base_url();
    let token = login_demo(&base, DEMO_REVIEWER).await;
    let (status, body) = get(&base, "/api/tasks?status=submitted", Some(&token)).await;
    assert_eq!(status, 200);
    let st = statuses(&body);
    assert!(
        !st.is_empty() && st.iter().all(|s| s == "submitted"),
        "{st:?}"
    );
    let (status, body) = get(&base, "/api/skip-requests?status=pending", Some(&token)).await;
    assert_eq!(status, 200);
    let list = body["data"]["list"].as_array().unwrap();
    assert!(!list.is_empty());
    for k in [
        "id",
        "task_id",
        "task_title",
        "requested_by",
        "reason",
        "status",
        "created_at",
    ] {
        assert!(!list[0][k].is_null(), "SkipRequest.{k}");
    }
    assert_eq!(list[0]["status"], "pending");
    let (status, _) = get(&base, "/api/skip-requests?status=maybe", Some(&token)).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn submit_review_and_skip_change_state() {
    let s = server().await;
    let base = s.base_url();
    let zs = login_demo(&base, DEMO_ANNOTATOR).await;
    let ls = login_demo(&base, DEMO_REVIEWER).await;
    let (status, body) = post(&base, "/api/tasks/task-1001/submit", Some(&zs), json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["status"], "submitted");
    let (status, body) = post(&base, "/api/tasks/task-1001/submit", Some(&zs), json!({})).await;
    assert_eq!((status, body["code"].as_str()), (409, Some("conflict")));
    assert_eq!(
        post(&base, "/api/tasks/task-1005/submit", Some(&zs), json!({}))
            .await
            .0,
        403,
        "not his task"
    );
    assert_eq!(
        post(&base, "/api/tasks/nope/submit", Some(&zs), json!({}))
            .await
            .0,
        404
    );
    assert_eq!(
        post(
            &base,
            "/api/tasks/task-1001/review",
            Some(&zs),
            json!({"action": "approve"})
        )
        .await
        .0,
        403,
        "annotators cannot review"
    );
    let (status, body) = post(
        &base,
        "/api/tasks/task-1001/review",
        Some(&ls),
        json!({"action": "maybe"}),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert!(body["message"].as_str().unwrap().contains("approve"));
    let (status, body) = post(
        &base,
        "/api/tasks/task-1001/review",
        Some(&ls),
        json!({"action": "reject", "comment": "请补充标签"}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["status"], "rejected");
    assert_eq!(body["data"]["review_comment"], "请补充标签");

    let (status, body) = post(
        &base,
        "/api/skip-requests",
        Some(&zs),
        json!({"task_id": "task-1003", "reason": "数据缺失"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["status"], "pending");
    let (_, body) = get(&base, "/api/skip-requests?status=pending", Some(&ls)).await;
    assert!(
        body["data"]["list"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["task_id"] == "task-1003")
    );
    let (status, _) = post(
        &base,
        "/api/skip-requests",
        Some(&zs),
        json!({"task_id": "task-1003", "reason": " "}),
    )
    .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn bad_input_gets_json_errors() {
    let s = server().await;
    let base = s.base_url();
    let token = login_demo(&base, DEMO_ADMIN).await;
    let c = http();
    // Malformed JSON.
    let (status, body) = call(
        c.post(format!("{base}/api/auth/login"))
            .header("content-type", "application/json")
            .body("{\"username\": \"zhangsan\""),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("malformed_json"))
    );
    // Wrong types.
    let (status, body) = post(
        &base,
        "/api/auth/login",
        None,
        json!({"username": 5, "password": []}),
    )
    .await;
    assert_eq!((status, body["code"].as_str()), (422, Some("invalid_body")));
    assert!(
        body["message"].as_str().unwrap().contains("invalid type"),
        "{body}"
    );
    // Missing content type.
    let (status, _) = call(c.post(format!("{base}/api/auth/login")).body("{}")).await;
    assert_eq!(status, 415);
    // Oversized body.
    let big = "x".repeat(200 * 1024);
    let (status, body) = post(
        &base,
        "/api/notifications/broadcast",
        Some(&token),
        json!({"title": "t", "content": big}),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (413, Some("payload_too_large"))
    );
    // Unknown route, wrong method.
    let (status, body) = get(&base, "/api/nothing/here", None).await;
    assert_eq!((status, body["success"].as_bool()), (404, Some(false)));
    let (status, _) = call(c.delete(format!("{base}/api/auth/me"))).await;
    assert_eq!(status, 405);
    // Wrong query types.
    let (status, body) = get(&base, "/api/notifications?limit=many", Some(&token)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_query"))
    );
    let (status, body) = get(&base, "/api/notifications?since=yesterday", Some(&token)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_cursor"))
    );
    // Bad broadcast fields.
    let (status, _) = post(
        &base,
        "/api/notifications/broadcast",
        Some(&token),
        json!({"title": "t", "content": "c", "priority": "loud"}),
    )
    .await;
    assert_eq!(status, 400);
    // Plain HTTP on the WebSocket endpoint.
    let (status, body) = get(&base, "/ws/notifications", None).await;
    assert!(status >= 400 && body["success"] == false, "{status} {body}");
    // The server is still fine.
    assert_eq!(get(&base, "/api/health", None).await.0, 200);
}

#[tokio::test]
async fn broadcast_is_admin_only() {
    let s = server().await;
    let base = s.base_url();
    let ls = login_demo(&base, DEMO_REVIEWER).await;
    let admin = login_demo(&base, DEMO_ADMIN).await;
    let body = json!({"title": "系统维护", "content": "今晚维护", "priority": "high"});
    assert_eq!(
        post(
            &base,
            "/api/notifications/broadcast",
            Some(&ls),
            body.clone()
        )
        .await
        .0,
        403
    );
    let (status, resp) = post(&base, "/api/notifications/broadcast", Some(&admin), body).await;
    assert_eq!(status, 200);
    assert_eq!(resp["data"]["recipients"], 4);
}

#[tokio::test]
async fn history_since_pages_oldest_first() {
    let s = server().await;
    let base = s.base_url();
    let zs = login_demo(&base, DEMO_ANNOTATOR).await;
    let (status, body) = get(&base, "/api/notifications", Some(&zs)).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["list"].as_array().unwrap().len(), 0);
    assert!(body["data"]["next_cursor"].is_null());
    let (status, _) = post(
        &base,
        "/api/test/notify",
        None,
        json!({"user_id": "1", "title": "T", "content": "第", "count": 5}),
    )
    .await;
    assert_eq!(status, 200);
    let (_, body) = get(&base, "/api/notifications?limit=2", Some(&zs)).await;
    let page1 = body["data"]["list"].as_array().unwrap().clone();
    assert_eq!(page1.len(), 2);
    assert_eq!(page1[0]["content"], "第 #1");
    assert_eq!(body["data"]["has_more"], true);
    let cursor = body["data"]["next_cursor"].as_str().unwrap().to_owned();
    assert_eq!(cursor, page1[1]["id"].as_str().unwrap());
    let (_, body) = get(
        &base,
        &format!("/api/notifications?since={cursor}&limit=10"),
        Some(&zs),
    )
    .await;
    let rest = body["data"]["list"].as_array().unwrap();
    let contents: Vec<&str> = rest
        .iter()
        .map(|n| n["content"].as_str().unwrap())
        .collect();
    assert_eq!(contents, ["第 #3", "第 #4", "第 #5"]);
    assert_eq!(body["data"]["has_more"], false);
    let last = body["data"]["next_cursor"].as_str().unwrap().to_owned();
    let (_, body) = get(
        &base,
        &format!("/api/notifications?since={last}"),
        Some(&zs),
    )
    .await;
    assert!(body["data"]["list"].as_array().unwrap().is_empty());
    assert_eq!(
        body["data"]["next_cursor"],
        last.as_str(),
        "an empty page keeps the cursor"
    );
    // Others do not see zhangsan's notifications.
    let ls = login_demo(&base, DEMO_REVIEWER).await;
    let (_, body) = get(&base, "/api/notifications", Some(&ls)).await;
    assert!(body["data"]["list"].as_array().unwrap().is_empty());
    // Read marks.
    let (status, body) = post(
        &base,
        "/api/notifications/read",
        Some(&zs),
        json!({"ids": [cursor]}),
    )
    .await;
    assert_eq!((status, body["data"]["marked"].as_u64()), (200, Some(1)));
    let (_, body) = get(&base, "/api/notifications?limit=2", Some(&zs)).await;
    assert_eq!(body["data"]["list"][1]["read"], true);
    assert_eq!(body["data"]["list"][0]["read"], false);
}

#[tokio::test]
async fn injected_faults_hit_the_next_requests() {
    let s = server().await;
    let base = s.base_url();
    let zs = login_demo(&base, DEMO_ANNOTATOR).await;
    let (status, _) = post(
        &base,
        "/api/test/fail",
        None,
        json!({"path": "/api/tasks/my", "status": 503, "count": 1}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = get(&base, "/api/tasks/my", Some(&zs)).await;
    assert_eq!((status, body["success"].as_bool()), (503, Some(false)));
    assert_eq!(get(&base, "/api/tasks/my", Some(&zs)).await.0, 200);
    post(
        &base,
        "/api/test/fail",
        None,
        json!({"path": "/api/auth/me", "status": 429, "retry_after": 7}),
    )
    .await;
    let resp = http()
        .get(format!("{base}/api/auth/me"))
        .bearer_auth(&zs)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 429);
    assert_eq!(resp.headers()["retry-after"], "7");
}

#[tokio::test]
async fn test_controls_are_off_by_default_and_loopback_only() {
    let s = taskbell_server::start(ServerConfig::default())
        .await
        .unwrap();
    let (status, _) = post(
        &s.base_url(),
        "/api/test/stall-pongs",
        None,
        json!({"enabled": true}),
    )
    .await;
    assert_eq!(status, 404);
    let err = taskbell_server::start(ServerConfig {
        listen: "0.0.0.0:0".parse().unwrap(),
        test_controls: true,
        ..ServerConfig::default()
    })
    .await
    .unwrap_err();
    assert!(matches!(err, ServerError::Config(_)), "{err}");
    assert!(err.to_string().contains("loopback"));
    for bad in [
        ServerConfig {
            heartbeat_timeout: std::time::Duration::from_secs(u64::MAX),
            ..ServerConfig::default()
        },
        ServerConfig {
            ping_interval: std::time::Duration::ZERO,
            ..ServerConfig::default()
        },
    ] {
        let err = taskbell_server::start(bad).await.unwrap_err();
        assert!(matches!(err, ServerError::Config(_)), "{err}");
    }
}

#[tokio::test]
async fn data_files_are_loaded_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("data.json");
    std::fs::write(
        &good,
        json!({
            "users": [
                {"id": 7, "username": "ann", "role": "annotator", "password": "pw-1", "project_ids": [1]},
                {"id": "r", "username": "rev", "real_name": "审核员", "role": "reviewer", "password": "pw-2"}
            ],
            "tasks": [{"id": 1, "title": "任务一", "status": "rejected", "assignee_id": 7, "project_id": 1}]
        })
        .to_string(),
    )
    .unwrap();
    let s = taskbell_server::start(ServerConfig {
        data_file: Some(good),
        ..ServerConfig::default()
    })
    .await
    .unwrap();
    let token = login(&s.base_url(), "ann", "pw-1").await;
    let (_, me) = get(&s.base_url(), "/api/auth/me", Some(&token)).await;
    assert_eq!(me["data"]["id"], "7");
    assert_eq!(me["data"]["real_name"], "ann");
    let (_, tasks) = get(&s.base_url(), "/api/tasks/my", Some(&token)).await;
    assert_eq!(tasks["data"]["list"][0]["title"], "任务一");

    for (bad, expect) in [
        (json!({"users": []}), "no users"),
        (
            json!({"users": [{"id": 1, "username": "a", "role": "annotator"}]}),
            "exactly one",
        ),
        (
            json!({"users": [{"id": 1, "username": "a", "role": "boss", "password": "x"}]}),
            "unknown variant",
        ),
        (
            json!({"users": [{"id": 1, "username": "a", "role": "annotator", "password": "x"}],
                   "tasks": [{"id": 1, "title": "t", "status": "in_progress", "assignee_id": 2}]}),
            "unknown assignee",
        ),
    ] {
        let p = dir.path().join("bad.json");
        std::fs::write(&p, bad.to_string()).unwrap();
        let err = taskbell_server::start(ServerConfig {
            data_file: Some(p),
            ..ServerConfig::default()
        })
        .await
        .unwrap_err();
        assert!(
            err.to_string().contains(expect),
            "{err} should mention {expect}"
        );
    }
    let missing = taskbell_server::start(ServerConfig {
        data_file: Some(dir.path().join("missing.json")),
        ..ServerConfig::default()
    })
    .await
    .unwrap_err();
    assert!(matches!(missing, ServerError::Data { .. }));
}

#[tokio::test]
async fn debug_connections_is_admin_only() {
    let s = server().await;
    let base = s.base_url();
    let zs = login_demo(&base, DEMO_ANNOTATOR).await;
    let admin = login_demo(&base, DEMO_ADMIN).await;
    assert_eq!(get(&base, "/api/debug/connections", Some(&zs)).await.0, 403);
    let mut ws = connect(&base, &zs).await;
    sync(&mut ws).await;
    let (status, body) = get(&base, "/api/debug/connections", Some(&admin)).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["local_sockets"], 1);
    assert_eq!(body["data"]["sockets"][0]["username"], "zhangsan");
    let channels: Vec<&str> = body["data"]["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["channel"].as_str().unwrap())
        .collect();
    assert!(
        channels.contains(&"notify:user:1") && channels.contains(&"notify:global"),
        "{channels:?}"
    );
    assert_eq!(body["data"]["bus"]["backend"], "memory");
}
