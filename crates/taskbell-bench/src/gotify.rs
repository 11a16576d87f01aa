//! A Gotify API shim: just what gotify-desktop (github.com/desbma/gotify-desktop) uses, so that
//! the `peer` scenario can run it beside `taskbell run` on loopback.
//!
//! gotify-desktop 1.4.4 (`src/gotify.rs`) uses, with the client token in `X-Gotify-Key`:
//!
//! - `GET /stream` (WebSocket): one JSON [`Message`] per text frame; the client answers the
//!   server's pings and does nothing else on the socket;
//! - `GET /message?limit=200` after a reconnect, to catch up: `{"paging": …, "messages": […]}`,
//!   newest first;
//! - `GET /application` on the first message of an application: the application list, whose
//!   `image` it then downloads (`GET /<image>`) and caches as the toast's icon;
//! - `DELETE /message/{id}` only with `auto_delete` (the bench leaves it off).
//!
//! Idle behaviour as the real server (gotify/server `api/stream/client.go`,
//! `config/config.go`): a WebSocket **ping control frame every 45 s** (`pingPeriod`,
//! `GOTIFY_SERVER_STREAM_PINGPERIODSECONDS`), and a connection whose pong has not come within
//! the ping period + 15 s is closed; each write has a 2 s deadline. Like Gotify, the token may
//! also come as `?token=`. Bad input gets an HTTP error, never a panic.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::{broadcast, watch};
use tokio::time::{Instant, sleep_until, timeout};

use crate::Result;

/// The real server's default ping period (`server.stream.pingperiodseconds: 45`).
pub const GOTIFY_PING_PERIOD: Duration = Duration::from_secs(45);
/// What the real server adds to the ping period before it gives up on a pong.
pub const GOTIFY_PONG_TIMEOUT: Duration = Duration::from_secs(15);
/// The real server's write deadline.
const WRITE_WAIT: Duration = Duration::from_secs(2);
/// Messages kept for `GET /message` (the real server keeps all; a bench needs few).
const HISTORY: usize = 1000;
/// The one application's icon path, as the real server names its default icon.
pub const APP_IMAGE: &str = "static/defaultapp.png";
/// A 1×1 PNG served as the application's icon.
const APP_IMAGE_PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xdf, 0xc0, 0xf0,
    0x1f, 0x00, 0x06, 0x80, 0x02, 0x7f, 0x10, 0x4c, 0x1b, 0xe1, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

/// A Gotify message as the server sends it (`model.MessageExternal`, without `extras`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Message id, increasing.
    pub id: i64,
    /// The application that sent it.
    pub appid: i64,
    /// The text.
    pub message: String,
    /// The title.
    pub title: String,
    /// Priority, 0–10 (gotify-desktop: 4–7 is a normal toast).
    pub priority: i64,
    /// RFC 3339.
    pub date: String,
}

/// A Gotify application (`model.Application`), as `GET /application` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Application {
    /// Application id.
    pub id: i64,
    /// Its token (for pushing; unused here).
    pub token: String,
    /// Its name.
    pub name: String,
    /// Its description.
    pub description: String,
    /// Whether the server made it.
    pub internal: bool,
    /// Icon path, relative to the server's URL.
    pub image: String,
    /// Priority of messages that give none.
    #[serde(rename = "defaultPriority")]
    pub default_priority: i64,
}

/// How the shim behaves.
#[derive(Debug, Clone)]
pub struct ShimOptions {
    /// The client token it accepts.
    pub token: String,
    /// Ping period of `/stream` ([`GOTIFY_PING_PERIOD`] on the real server).
    pub ping_period: Duration,
    /// Added to the ping period before a silent client is dropped.
    pub pong_timeout: Duration,
}

impl ShimOptions {
    /// The real server's defaults, with `token`.
    pub fn new(token: impl Into<String>) -> ShimOptions {
        ShimOptions {
            token: token.into(),
            ping_period: GOTIFY_PING_PERIOD,
            pong_timeout: GOTIFY_PONG_TIMEOUT,
        }
    }
}

struct Shared {
    opts: ShimOptions,
    app: Application,
    history: Mutex<VecDeque<Message>>,
    next_id: AtomicI64,
    tx: broadcast::Sender<Arc<str>>,
    streams: watch::Sender<usize>,
}

/// The running shim on `127.0.0.1:0`; it stops when dropped.
pub struct GotifyShim {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for GotifyShim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GotifyShim")
            .field("addr", &self.addr)
            .field("streams", &self.streams())
            .finish()
    }
}

impl Drop for GotifyShim {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl GotifyShim {
    /// Starts serving on a free loopback port (inside a tokio runtime).
    pub async fn start(opts: ShimOptions) -> Result<GotifyShim> {
        let (tx, _) = broadcast::channel(256);
        let (streams, _) = watch::channel(0);
        let app = Application {
            id: 1,
            token: "AbenchApp00000".to_string(),
            name: "taskbell-bench".to_string(),
            description: "messages pushed by taskbell-bench".to_string(),
            internal: false,
            image: APP_IMAGE.to_string(),
            default_priority: 0,
        };
        let shared = Arc::new(Shared {
            opts,
            app,
            history: Mutex::new(VecDeque::new()),
            next_id: AtomicI64::new(1),
            tx,
            streams,
        });
        let router = Router::new()
            .route("/stream", get(stream))
            .route("/message", get(messages))
            .route("/message/{id}", delete(delete_message))
            .route("/application", get(applications))
            .fallback(static_or_not_found)
            .with_state(Arc::clone(&shared));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router).await {
                tracing::warn!("gotify shim stopped: {e}");
            }
        });
        Ok(GotifyShim { addr, shared, task })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL gotify-desktop is configured with (`ws://…`; it derives `http://` itself).
    pub fn ws_url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// The `http://` base URL of the REST endpoints.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The client token it accepts.
    pub fn token(&self) -> &str {
        &self.shared.opts.token
    }

    /// WebSocket clients on `/stream` now.
    pub fn streams(&self) -> usize {
        *self.shared.streams.borrow()
    }

    /// Waits (bounded by `limit`) until at least `n` clients are on `/stream`.
    pub async fn wait_streams(&self, n: usize, limit: Duration) -> Result<()> {
        let mut rx = self.shared.streams.subscribe();
        timeout(limit, rx.wait_for(|c| *c >= n))
            .await
            .map_err(|_| {
                anyhow::anyhow!("no {n} client(s) on the Gotify /stream within {limit:?}")
            })?
            .map_err(|_| anyhow::anyhow!("the Gotify shim stopped"))?;
        Ok(())
    }

    /// Stores a message from the one application and sends it to every `/stream` client.
    pub fn push(&self, title: &str, text: &str, priority: i64) -> Message {
        let s = &self.shared;
        let msg = Message {
            id: s.next_id.fetch_add(1, Ordering::Relaxed),
            appid: s.app.id,
            message: text.to_string(),
            title: title.to_string(),
            priority,
            date: now_rfc3339(),
        };
        {
            let mut h = s.history.lock().unwrap_or_else(PoisonError::into_inner);
            if h.len() == HISTORY {
                h.pop_front();
            }
            h.push_back(msg.clone());
        }
        // No receiver (nobody connected) is not an error: the message is in the history.
        if let Ok(text) = serde_json::to_string(&msg) {
            let _ = s.tx.send(Arc::from(text));
        }
        msg
    }
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Gotify's error body.
fn error(status: StatusCode, description: &str) -> Response {
    let body = json!({
        "error": status.canonical_reason().unwrap_or("Error"),
        "errorCode": status.as_u16(),
        "errorDescription": description,
    });
    (status, axum::Json(body)).into_response()
}

#[derive(Debug, Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

/// Whether the client token from `X-Gotify-Key` or `?token=` is the one.
fn authorized(shared: &Shared, headers: &HeaderMap, query: &TokenQuery) -> bool {
    let given = headers
        .get("x-gotify-key")
        .and_then(|v| v.to_str().ok())
        .or(query.token.as_deref());
    given == Some(shared.opts.token.as_str())
}

/// The real server's answer to a missing or wrong token.
fn unauthorized() -> Response {
    error(
        StatusCode::UNAUTHORIZED,
        "you need to provide a valid access token or user credentials to access this api",
    )
}

async fn stream(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(q): Query<TokenQuery>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    // The token first, as the real server's middleware: a bad one is a 401 either way.
    if !authorized(&shared, &headers, &q) {
        return unauthorized();
    }
    match ws {
        Ok(ws) => ws.on_upgrade(move |socket| serve_stream(shared, socket)),
        Err(rejection) => rejection.into_response(),
    }
}

async fn serve_stream(shared: Arc<Shared>, mut socket: WebSocket) {
    // Subscribed before counted: whoever waits for the count may push at once.
    let mut rx = shared.tx.subscribe();
    shared.streams.send_modify(|n| *n += 1);
    let period = shared.opts.ping_period.max(Duration::from_millis(10));
    let pong_wait = period + shared.opts.pong_timeout;
    let mut pings = tokio::time::interval_at(Instant::now() + period, period);
    let mut deadline = Instant::now() + pong_wait;
    loop {
        tokio::select! {
            incoming = socket.recv() => match incoming {
                // Only a pong moves the read deadline, as in gorilla/websocket's pong handler.
                Some(Ok(WsMessage::Pong(_))) => deadline = Instant::now() + pong_wait,
                Some(Ok(WsMessage::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
            out = rx.recv() => match out {
                Ok(text) => {
                    let frame = WsMessage::Text(text.as_ref().into());
                    if !matches!(timeout(WRITE_WAIT, socket.send(frame)).await, Ok(Ok(()))) {
                        break;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => break,
            },
            _ = pings.tick() => {
                let ping = WsMessage::Ping(Bytes::new());
                if !matches!(timeout(WRITE_WAIT, socket.send(ping)).await, Ok(Ok(()))) {
                    break;
                }
            }
            _ = sleep_until(deadline) => break,
        }
    }
    shared.streams.send_modify(|n| *n = n.saturating_sub(1));
}

#[derive(Debug, Deserialize)]
struct PageQuery {
    token: Option<String>,
    limit: Option<i64>,
    since: Option<i64>,
}

async fn messages(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(q): Query<PageQuery>,
) -> Response {
    let token = TokenQuery { token: q.token };
    if !authorized(&shared, &headers, &token) {
        return unauthorized();
    }
    let limit = q.limit.unwrap_or(100);
    if !(1..=200).contains(&limit) {
        return error(StatusCode::BAD_REQUEST, "limit must be between 1 and 200");
    }
    // `since`: only messages with a smaller id (the next page), as the real server.
    let since = q.since.filter(|s| *s > 0).unwrap_or(i64::MAX);
    let h = shared
        .history
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let page: Vec<Message> = h
        .iter()
        .rev()
        .filter(|m| m.id < since)
        .take(usize::try_from(limit).unwrap_or(100))
        .cloned()
        .collect();
    let last = page.last().map_or(0, |m| m.id);
    let more = h.iter().any(|m| m.id < last);
    let mut paging = json!({"size": page.len(), "since": last, "limit": limit});
    if more {
        paging["next"] = json!(format!("/message?limit={limit}&since={last}"));
    }
    axum::Json(json!({"paging": paging, "messages": page})).into_response()
}

async fn delete_message(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(q): Query<TokenQuery>,
    Path(id): Path<i64>,
) -> Response {
    if !authorized(&shared, &headers, &q) {
        return unauthorized();
    }
    let mut h = shared
        .history
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    match h.iter().position(|m| m.id == id) {
        Some(i) => {
            h.remove(i);
            StatusCode::OK.into_response()
        }
        None => error(StatusCode::NOT_FOUND, "message does not exist"),
    }
}

async fn applications(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(q): Query<TokenQuery>,
) -> Response {
    if !authorized(&shared, &headers, &q) {
        return unauthorized();
    }
    axum::Json(vec![shared.app.clone()]).into_response()
}

/// The icon (public on the real server too), else Gotify's 404. gotify-desktop appends the
/// image path as one URL segment, so its `/` arrives as `%2F`; the real server (Go's net/http
/// and gin) routes on the decoded path, and so does this.
async fn static_or_not_found(uri: Uri) -> Response {
    let path = uri.path().replace("%2F", "/").replace("%2f", "/");
    if path.trim_start_matches('/') == APP_IMAGE {
        ([(header::CONTENT_TYPE, "image/png")], APP_IMAGE_PNG).into_response()
    } else {
        tracing::debug!("gotify shim: no route for {uri}");
        error(StatusCode::NOT_FOUND, "page not found")
    }
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest};

    use super::*;

    /// gotify-desktop 1.4.4's own types (`src/gotify.rs`): every field is required.
    #[derive(Debug, Deserialize)]
    struct PeerMessage {
        id: i64,
        appid: i64,
        message: String,
        title: String,
        priority: i64,
        #[allow(dead_code)]
        date: String,
    }

    #[derive(Debug, Deserialize)]
    struct PeerAllMessages {
        messages: Vec<PeerMessage>,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct PeerAppInfo {
        description: String,
        id: i64,
        image: String,
        internal: bool,
        name: String,
        token: String,
    }

    async fn no_streams_left(s: &GotifyShim) -> Result<(), tokio::time::error::Elapsed> {
        timeout(Duration::from_secs(10), async {
            while s.streams() > 0 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
    }

    async fn shim(ping: Duration) -> GotifyShim {
        let mut o = ShimOptions::new("Ctest");
        o.ping_period = ping;
        GotifyShim::start(o).await.unwrap()
    }

    #[tokio::test]
    async fn a_websocket_client_gets_pings_and_a_pushed_message() {
        let s = shim(Duration::from_millis(50)).await;
        // As gotify-desktop connects: `/stream` with the token in `X-Gotify-Key`.
        let mut req = format!("{}/stream", s.ws_url())
            .into_client_request()
            .unwrap();
        req.headers_mut()
            .insert("X-Gotify-Key", "Ctest".parse().unwrap());
        let (mut ws, resp) = tokio_tungstenite::connect_async(req).await.unwrap();
        assert_eq!(resp.status(), 101);
        s.wait_streams(1, Duration::from_secs(10)).await.unwrap();
        assert_eq!(s.streams(), 1);
        let pushed = s.push("Backup", "done", 5);
        let mut pings = 0;
        let got = loop {
            let frame = timeout(Duration::from_secs(10), ws.next())
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            match frame {
                tungstenite::Message::Ping(_) => pings += 1,
                tungstenite::Message::Text(t) => {
                    break serde_json::from_str::<PeerMessage>(t.as_str()).unwrap();
                }
                other => panic!("unexpected frame {other:?}"),
            }
        };
        assert_eq!(
            (
                got.id,
                got.appid,
                got.title.as_str(),
                got.message.as_str(),
                got.priority
            ),
            (pushed.id, 1, "Backup", "done", 5)
        );
        // The pings keep coming (answered by tungstenite as it reads).
        while pings < 2 {
            if let Some(Ok(tungstenite::Message::Ping(_))) =
                timeout(Duration::from_secs(10), ws.next()).await.unwrap()
            {
                pings += 1;
            }
        }
        drop(ws);
        no_streams_left(&s).await.unwrap();
    }

    #[tokio::test]
    async fn a_client_that_never_answers_pings_is_dropped() {
        let mut o = ShimOptions::new("Ctest");
        o.ping_period = Duration::from_millis(30);
        o.pong_timeout = Duration::from_millis(30);
        let s = GotifyShim::start(o).await.unwrap();
        // A raw socket that upgrades and then never reads: no pong ever comes back.
        let mut req = format!("{}/stream?token=Ctest", s.ws_url())
            .into_client_request()
            .unwrap();
        req.headers_mut().remove("X-Gotify-Key");
        let (ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
        s.wait_streams(1, Duration::from_secs(10)).await.unwrap();
        no_streams_left(&s)
            .await
            .expect("the silent client was not dropped");
        drop(ws);
    }

    #[tokio::test]
    async fn rest_endpoints_answer_what_gotify_desktop_reads() {
        let s = shim(GOTIFY_PING_PERIOD).await;
        let first = s.push("one", "1", 2);
        let second = s.push("two", "2", 8);
        let http = taskbell_testkit::http::http();
        let get = |path: &str, token: Option<&str>| {
            let mut r = http.get(format!("{}{path}", s.http_url()));
            if let Some(t) = token {
                r = r.header("X-Gotify-Key", t);
            }
            r.send()
        };

        // Catch-up: newest first (gotify-desktop filters `id > last` and reverses).
        let r = get("/message?limit=200", Some("Ctest")).await.unwrap();
        assert_eq!(r.status(), 200);
        let all: PeerAllMessages = r.json().await.unwrap();
        let ids: Vec<i64> = all.messages.iter().map(|m| m.id).collect();
        assert_eq!(ids, vec![second.id, first.id]);
        let page: serde_json::Value = get("/message?limit=1", Some("Ctest"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(page["paging"]["size"], 1);
        assert_eq!(page["paging"]["since"], second.id);
        assert_eq!(page["messages"][0]["title"], "two");

        // The application list, and its icon under the path gotify-desktop builds
        // (the image path pushed as one segment: its `/` percent-encoded).
        let apps: Vec<PeerAppInfo> = get("/application", Some("Ctest"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(apps.len(), 1);
        assert_eq!((apps[0].id, apps[0].image.as_str()), (1, APP_IMAGE));
        for path in ["/static%2Fdefaultapp.png", "/static/defaultapp.png"] {
            let r = get(path, None).await.unwrap();
            assert_eq!(r.status(), 200, "{path}");
            assert_eq!(r.headers()["content-type"], "image/png");
            assert!(r.bytes().await.unwrap().starts_with(b"\x89PNG"));
        }

        // `auto_delete`: DELETE /message/{id}.
        let del = |path: String| {
            http.delete(format!("{}{path}", s.http_url()))
                .header("X-Gotify-Key", "Ctest")
                .send()
        };
        // Deleted once; the second time it is gone.
        for want in [200, 404] {
            let r = del(format!("/message/{}", first.id)).await.unwrap();
            assert_eq!(r.status(), want);
        }
    }

    #[tokio::test]
    async fn bad_input_gets_an_http_error_not_a_panic() {
        let s = shim(GOTIFY_PING_PERIOD).await;
        let http = taskbell_testkit::http::http();
        let status = |path: &'static str, token: Option<&'static str>| {
            let mut r = http.get(format!("{}{path}", s.http_url()));
            if let Some(t) = token {
                r = r.header("X-Gotify-Key", t);
            }
            async move { r.send().await.unwrap().status().as_u16() }
        };
        assert_eq!(status("/message", None).await, 401);
        assert_eq!(status("/message", Some("wrong")).await, 401);
        assert_eq!(status("/application", None).await, 401);
        assert_eq!(status("/stream", None).await, 401);
        assert_eq!(status("/message?limit=0", Some("Ctest")).await, 400);
        assert_eq!(status("/message?limit=201", Some("Ctest")).await, 400);
        assert_eq!(status("/message?limit=x", Some("Ctest")).await, 400);
        assert_eq!(status("/message?since=-5", Some("Ctest")).await, 200);
        assert_eq!(status("/nowhere", Some("Ctest")).await, 404);
        let r = http
            .delete(format!("{}/message/abc", s.http_url()))
            .header("X-Gotify-Key", "Ctest")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        // A plain GET on /stream (no upgrade) is refused, and the shim still serves.
        let plain = status("/stream", Some("Ctest")).await;
        assert!((400..500).contains(&plain), "{plain}");
        assert_eq!(status("/message", Some("Ctest")).await, 200);
    }
}
