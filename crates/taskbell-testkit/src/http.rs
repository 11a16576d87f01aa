//! REST calls to the reference server, as the tests make them: every helper
//! panics with the status and body when the server does not answer as the
//! test expects, so a failure reads as an assertion of the test.
#![allow(clippy::expect_used)]

use std::time::Duration;

use serde_json::{Value, json};

/// Bounds every request (a hang fails the test instead of blocking CI); never
/// a speed limit.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(40);

/// Makes ring the process's rustls provider (as `taskbell_core::net` does for the
/// client): reqwest is built without a provider of its own. Idempotent.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A client with [`REQUEST_TIMEOUT`].
pub fn http() -> reqwest::Client {
    install_tls_provider();
    reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .expect("a reqwest client with a timeout builds")
}

/// `(status, body)` of a request; the body must be JSON (every answer of the
/// reference server is), else this panics with the text.
pub async fn call(req: reqwest::RequestBuilder) -> (u16, Value) {
    let resp = req.send().await.expect("request sent");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body read");
    let body: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("body is not JSON ({e}): {text}"));
    (status, body)
}

/// `GET {base}{path}`, with `token` as the bearer when given.
pub async fn get(base: &str, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut req = http().get(format!("{base}{path}"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    call(req).await
}

/// `POST {base}{path}` with a JSON `body`, with `token` as the bearer when given.
pub async fn post(base: &str, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
    let mut req = http().post(format!("{base}{path}")).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    call(req).await
}

/// Signs in with a password (`/api/auth/login`) and returns the access token;
/// panics unless the server answers 200.
pub async fn login(base: &str, username: &str, password: &str) -> String {
    let (status, body) = post(
        base,
        "/api/auth/login",
        None,
        json!({"username": username, "password": password}),
    )
    .await;
    assert_eq!(status, 200, "login of {username}: {body}");
    body["data"]["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no access_token in {body}"))
        .to_owned()
}

/// Publishes a `system` notification titled "通知" with `content` to one
/// user through the server's test control (`/api/test/notify`; the server
/// must run with test controls); panics unless the server answers 200.
pub async fn notify_user(base: &str, user_id: &str, content: &str) {
    let (status, body) = post(
        base,
        "/api/test/notify",
        None,
        json!({"user_id": user_id, "type": "system", "title": "通知", "content": content}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}
