//! Shared helpers of the server's integration tests: in-process servers on port 0, a REST
//! client, a WebSocket client (tokio-tungstenite), and a real redis-server on a free port.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use taskbell_server::{RunningServer, ServerConfig};
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

pub fn http() -> reqwest::Client {
    reqwest::Client::builder().timeout(WAIT).build().unwrap()
}

/// `(status, body)` of a request; the body must be JSON (every answer of the server is).
pub async fn call(req: reqwest::RequestBuilder) -> (u16, Value) {
    let resp = req.send().await.expect("request sent");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body read");
    let body: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("body is not JSON ({e}): {text}"));
    (status, body)
}

pub async fn get(base: &str, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut req = http().get(format!("{base}{path}"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    call(req).await
}

pub async fn post(base: &str, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
    let mut req = http().post(format!("{base}{path}")).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    call(req).await
}

pub async fn login(base: &str, username: &str, password: &str) -> String {
    let (status, body) = post(
        base,
        "/api/auth/login",
        None,
        json!({"username": username, "password": password}),
    )
    .await;
    assert_eq!(status, 200, "login of {username}: {body}");
    body["data"]["access_token"].as_str().unwrap().to_owned()
}

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

/// A real redis-server on a free port, killed on drop.
pub struct Redis {
    child: Child,
    pub port: u16,
}

impl Redis {
    pub async fn start() -> Redis {
        let bin = ["/usr/bin/redis-server", "/usr/local/bin/redis-server"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .unwrap_or("redis-server");
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let child = Command::new(bin)
                .args([
                    "--port",
                    &port.to_string(),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| {
                    panic!("cannot run redis-server ({e}); run scripts/install-deps.sh")
                });
            let mut r = Redis { child, port };
            if r.wait_ready().await {
                return r;
            }
            // The port was taken between probing and binding: try another one.
            let _ = r.child.kill();
        }
        panic!("redis-server did not start");
    }

    async fn wait_ready(&mut self) -> bool {
        let deadline = tokio::time::Instant::now() + WAIT;
        while tokio::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if let Ok(mut c) = self.conn().await {
                if redis::cmd("PING")
                    .query_async::<String>(&mut c)
                    .await
                    .is_ok()
                {
                    return true;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    /// Kills the redis-server (an outage).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub async fn conn(&self) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
        redis::Client::open(self.url())?
            .get_multiplexed_async_connection()
            .await
    }

    /// Connected clients as Redis counts them (`CLIENT LIST`), excluding `exclude` connections of
    /// the caller.
    pub async fn client_count(&self, c: &mut redis::aio::MultiplexedConnection) -> usize {
        let list: String = redis::cmd("CLIENT")
            .arg("LIST")
            .query_async(c)
            .await
            .unwrap();
        list.lines().filter(|l| !l.trim().is_empty()).count()
    }

    pub async fn numsub(
        &self,
        c: &mut redis::aio::MultiplexedConnection,
        channels: &[&str],
    ) -> Vec<i64> {
        let mut cmd = redis::cmd("PUBSUB");
        cmd.arg("NUMSUB");
        for ch in channels {
            cmd.arg(*ch);
        }
        let v: Vec<(String, i64)> = cmd.query_async(c).await.unwrap();
        v.into_iter().map(|(_, n)| n).collect()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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
