//! A hostile platform server, for the hardening tests: it follows enough of
//! protocol.md for a client to sign in and connect, then misbehaves the way an
//! attacker's server would — redirects the login elsewhere, closes every socket
//! right after its first pong (with 4001 or a normal close), answers with
//! endless or huge bodies, sends text full of terminal escapes. It counts what
//! the client did (logins, socket connects, every request it received), so a
//! test can tell a storm from a backoff and see where a password went.
//!
//! It runs on a thread of its own (its own tokio runtime) on `127.0.0.1:0`,
//! so sync and async tests can use it alike, and stops on `Drop`.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::background::Background;
use crate::process::Result;

/// The token this server hands out (a JWT shape, so that log redaction by
/// shape is exercised too; the signature part is what must never be printed).
pub const HOSTILE_TOKEN: &str =
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIiwiaG9zdGlsZSI6dHJ1ZX0.SIGNATURE-hostile-0123456789abcdef";

/// What the socket does after answering the client's first ping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AfterPong {
    /// Stays open (answers pings, sends the configured frames).
    #[default]
    Stay,
    /// Closes with this code right after the first pong.
    Close(u16),
}

/// A body too large to hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HugeBody {
    /// `Content-Length` says this many bytes (and that many are streamed).
    Declared(u64),
    /// Chunked, without end (until the client hangs up).
    Endless,
}

/// How the server misbehaves.
#[derive(Debug, Clone, Default)]
pub struct Behaviour {
    /// `POST /api/auth/login` answers `307 Temporary Redirect` to this URL.
    pub login_redirect_to: Option<String>,
    /// `POST /api/auth/login` fails with 500 and this message.
    pub login_error: Option<String>,
    /// The socket's behaviour after the first pong.
    pub after_pong: AfterPong,
    /// `GET /api/auth/me` answers with this body.
    pub huge_me: Option<HugeBody>,
    /// Frames sent on the socket right after the first pong.
    pub frames: Vec<Value>,
    /// The user's real name (it is printed at sign-in).
    pub real_name: Option<String>,
    /// Whether `GET /api/notifications` is offered (else 404: no history).
    pub history: bool,
}

/// One request the server received.
#[derive(Debug, Clone)]
pub struct Seen {
    /// Method and path, e.g. `POST /api/auth/login`.
    pub what: String,
    /// The request body as text.
    pub body: String,
    /// The `Authorization` header, if any.
    pub authorization: Option<String>,
}

#[derive(Default)]
struct Counters {
    logins: AtomicU32,
    connects: AtomicU32,
    seen: Mutex<Vec<Seen>>,
}

struct Shared {
    behaviour: Behaviour,
    counters: Counters,
}

/// A running hostile server; stopped on `Drop`.
pub struct HostileServer {
    bg: Background,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for HostileServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostileServer")
            .field("addr", &self.bg.addr)
            .finish()
    }
}

impl HostileServer {
    /// Starts a server with `behaviour` on a free loopback port.
    pub fn start(behaviour: Behaviour) -> Result<HostileServer> {
        let shared = Arc::new(Shared {
            behaviour,
            counters: Counters::default(),
        });
        let app = router(Arc::clone(&shared));
        let bg = Background::start("hostile-server", move |listener| async move {
            let _ = axum::serve(listener, app).await;
        })?;
        Ok(HostileServer { bg, shared })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.bg.addr)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.bg.addr.port()
    }

    /// Logins received so far.
    pub fn logins(&self) -> u32 {
        self.shared.counters.logins.load(Ordering::SeqCst)
    }

    /// Socket upgrades received so far.
    pub fn connects(&self) -> u32 {
        self.shared.counters.connects.load(Ordering::SeqCst)
    }

    /// Every request received so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.shared
            .counters
            .seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Waits until `pred` holds for the counters (bounded by `timeout`).
    pub fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&HostileServer) -> bool,
    ) -> Result<()> {
        crate::process::wait_until(what, timeout, || pred(self).then_some(()))
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/api/auth/login", post(login))
        .route("/api/auth/me", get(me))
        .route("/api/auth/logout", post(ok_empty))
        .route("/api/tasks/my", get(empty_list))
        .route("/api/tasks", get(empty_list))
        .route("/api/skip-requests", get(empty_list))
        .route("/api/notifications", get(notifications))
        .route("/ws/notifications", get(socket))
        .fallback(any(record_only))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&shared),
            record,
        ))
        .with_state(shared)
}

/// Writes every request down (method, path, body, Authorization) before it is handled.
async fn record(
    State(shared): State<Arc<Shared>>,
    req: Request,
    next: axum::middleware::Next,
) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    shared
        .counters
        .seen
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(Seen {
            what: format!("{} {}", parts.method, parts.uri.path()),
            body: String::from_utf8_lossy(&bytes).into_owned(),
            authorization: parts
                .headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        });
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

async fn record_only() -> Response {
    (
        StatusCode::OK,
        Json(json!({"success": true, "data": {"recorded": true}})),
    )
        .into_response()
}

fn user(shared: &Shared) -> Value {
    json!({
        "id": 1,
        "username": "zhangsan",
        "real_name": shared.behaviour.real_name.clone().unwrap_or_else(|| "张三".into()),
        "role": "annotator",
        "project_ids": [1],
    })
}

async fn login(State(shared): State<Arc<Shared>>) -> Response {
    shared.counters.logins.fetch_add(1, Ordering::SeqCst);
    if let Some(to) = &shared.behaviour.login_redirect_to {
        let mut headers = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_str(to) {
            headers.insert(header::LOCATION, v);
        }
        return (StatusCode::TEMPORARY_REDIRECT, headers).into_response();
    }
    if let Some(msg) = &shared.behaviour.login_error {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"success": false, "message": msg, "code": "hostile"})),
        )
            .into_response();
    }
    Json(json!({
        "success": true,
        "data": {
            "access_token": HOSTILE_TOKEN,
            "token_type": "bearer",
            "expires_in": 3600,
            "user": user(&shared),
        }
    }))
    .into_response()
}

async fn me(State(shared): State<Arc<Shared>>) -> Response {
    match shared.behaviour.huge_me {
        None => Json(json!({"success": true, "data": user(&shared)})).into_response(),
        Some(HugeBody::Declared(n)) => {
            let chunk = Bytes::from(vec![b' '; 64 << 10]);
            let chunks = n.div_ceil(64 << 10);
            let stream = futures_util::stream::iter(
                (0..chunks).map(move |_| Ok::<_, std::io::Error>(chunk.clone())),
            );
            let mut resp = Body::from_stream(stream).into_response();
            if let Ok(v) = HeaderValue::from_str(&(chunks * (64 << 10)).to_string()) {
                resp.headers_mut().insert(header::CONTENT_LENGTH, v);
            }
            resp
        }
        Some(HugeBody::Endless) => {
            let chunk = Bytes::from(vec![b' '; 64 << 10]);
            let stream =
                futures_util::stream::repeat_with(move || Ok::<_, std::io::Error>(chunk.clone()));
            Body::from_stream(stream).into_response()
        }
    }
}

async fn ok_empty() -> Response {
    Json(json!({"success": true, "data": null})).into_response()
}

async fn empty_list() -> Response {
    Json(json!({"success": true, "data": {"list": [], "total": 0}})).into_response()
}

async fn notifications(State(shared): State<Arc<Shared>>) -> Response {
    if shared.behaviour.history {
        Json(json!({"success": true, "data": {"list": [], "next_cursor": null}})).into_response()
    } else {
        (
            StatusCode::NOT_FOUND,
            Json(json!({"success": false, "message": "no history here"})),
        )
            .into_response()
    }
}

async fn socket(State(shared): State<Arc<Shared>>, ws: WebSocketUpgrade) -> Response {
    shared.counters.connects.fetch_add(1, Ordering::SeqCst);
    ws.on_upgrade(move |s| run_socket(shared, s))
}

async fn run_socket(shared: Arc<Shared>, mut socket: WebSocket) {
    let mut ponged = false;
    while let Ok(Some(Ok(msg))) =
        tokio::time::timeout(Duration::from_secs(120), socket.recv()).await
    {
        let Message::Text(text) = msg else { continue };
        let Ok(v) = serde_json::from_str::<Value>(text.as_str()) else {
            continue;
        };
        if v["type"] != "ping" {
            continue;
        }
        let pong = json!({"type": "pong", "timestamp": v["timestamp"]}).to_string();
        if socket.send(Message::Text(pong.into())).await.is_err() {
            return;
        }
        if ponged {
            continue;
        }
        ponged = true;
        for f in &shared.behaviour.frames {
            if socket
                .send(Message::Text(f.to_string().into()))
                .await
                .is_err()
            {
                return;
            }
        }
        if let AfterPong::Close(code) = shared.behaviour.after_pong {
            let _ = socket
                .send(Message::Close(Some(CloseFrame {
                    code,
                    reason: "hostile".into(),
                })))
                .await;
            return;
        }
    }
}
