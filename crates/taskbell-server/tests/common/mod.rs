//! Shared helpers of the server's integration tests: in-process servers on port 0, a WebSocket
//! client (tokio-tungstenite) and Redis queries. The REST calls and the redis-server guard come
//! from `taskbell-testkit`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use taskbell_server::{RunningServer, ServerConfig};
// Each test binary uses some of these.
#[allow(unused_imports)]
pub use taskbell_testkit::Redis;
#[allow(unused_imports)]
pub use taskbell_testkit::http::{call, get, http, login, post};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Bounds every await on the network (a hang fails the test instead of blocking CI).
pub const WAIT: Duration = Duration::from_secs(20);

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub fn test_config() -> ServerConfig {
    ServerConfig {
        test_controls: true,
        ..ServerConfig::default()
    }
}

pub async fn server() -> RunningServer {
    taskbell_server::start(test_config())
        .await
        .expect("server starts")
}

/// Signs a demo account in with its password and returns the access token.
pub async fn login_demo(base: &str, who: taskbell_server::DemoAccount) -> String {
    login(base, who.username, who.password).await
}

pub fn ws_url(base: &str, token: &str) -> String {
    format!(
        "{}/ws/notifications?token={token}",
        base.replacen("http", "ws", 1)
    )
}

pub async fn connect(base: &str, token: &str) -> Ws {
    let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(ws_url(base, token)))
        .await
        .expect("connect in time")
        .expect("websocket connects");
    ws
}

/// Connects with the token in the Authorization header only.
pub async fn connect_with_header(base: &str, token: &str) -> Ws {
    let url = format!("{}/ws/notifications", base.replacen("http", "ws", 1));
    let mut req = url.into_client_request().unwrap();
    req.headers_mut()
        .insert("Authorization", format!("Bearer {token}").parse().unwrap());
    let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(req))
        .await
        .expect("connect in time")
        .expect("websocket connects");
    ws
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

pub async fn send_json(ws: &mut Ws, v: Value) {
    ws.send(Message::text(v.to_string()))
        .await
        .expect("frame sent");
}

/// The next JSON text frame that is not a server heartbeat `ping`.
pub async fn next_json(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a frame in time")
            .expect("socket still open")
            .expect("no socket error");
        match msg {
            Message::Text(t) => {
                let v: Value = serde_json::from_str(t.as_str()).expect("server frames are JSON");
                if v["type"] == "ping" {
                    continue;
                }
                return v;
            }
            Message::Close(c) => panic!("socket closed while waiting for a frame: {c:?}"),
            _ => continue,
        }
    }
}

/// Sends a JSON ping and waits for its pong (skipping other frames, which are returned).
/// Once the pong is back the socket is registered and subscribed.
pub async fn sync(ws: &mut Ws) -> Vec<Value> {
    let ts = now_ms() * 1000 + i64::from(rand_u16());
    send_json(
        ws,
        json!({"type": "ping", "timestamp": ts, "user_id": 1, "username": "张三"}),
    )
    .await;
    let mut skipped = Vec::new();
    loop {
        let v = next_json(ws).await;
        if v["type"] == "pong" && v["timestamp"] == ts {
            return skipped;
        }
        skipped.push(v);
    }
}

fn rand_u16() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static N: AtomicU16 = AtomicU16::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// Reads until the server closes; returns the close code, or `None` if the connection ended
/// without a close frame.
pub async fn close_code(ws: &mut Ws) -> Option<u16> {
    loop {
        let msg = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("close in time");
        match msg {
            Some(Ok(Message::Close(Some(f)))) => return Some(u16::from(f.code)),
            Some(Ok(Message::Close(None))) => return Some(1005),
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return None,
        }
    }
}

/// Closes from the client side and waits for the server's answer.
pub async fn client_close(mut ws: Ws) {
    let _ = ws.close(None).await;
    let _ = tokio::time::timeout(WAIT, async { while let Some(Ok(_)) = ws.next().await {} }).await;
}

/// A multiplexed connection to the test's redis-server.
pub async fn conn(r: &Redis) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
    redis::Client::open(r.url())?
        .get_multiplexed_async_connection()
        .await
}

/// Connected clients as Redis counts them (`CLIENT LIST`), the caller's connection included.
pub async fn client_count(c: &mut redis::aio::MultiplexedConnection) -> usize {
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(c)
        .await
        .unwrap();
    list.lines().filter(|l| !l.trim().is_empty()).count()
}

/// Subscribers of each channel (`PUBSUB NUMSUB`), in the order given.
pub async fn numsub(c: &mut redis::aio::MultiplexedConnection, channels: &[&str]) -> Vec<i64> {
    let mut cmd = redis::cmd("PUBSUB");
    cmd.arg("NUMSUB");
    for ch in channels {
        cmd.arg(*ch);
    }
    let v: Vec<(String, i64)> = cmd.query_async(c).await.unwrap();
    v.into_iter().map(|(_, n)| n).collect()
}

/// Polls `check` until it returns true (bounded by [`WAIT`]). For state that has no event to
/// await (counts reported by Redis).
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if check().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
