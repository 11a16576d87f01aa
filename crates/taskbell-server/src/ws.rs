//! `GET /ws/notifications`: authentication, the per-user socket cap, heartbeats in both
//! directions, frame limits, and delivery of what the hub queues for the socket.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::ws::{
    CloseFrame, Message, WebSocket, WebSocketUpgrade, rejection::WebSocketUpgradeRejection,
};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::time::{Instant, MissedTickBehavior, sleep_until, timeout};

use crate::app::App;
use crate::auth::{Claims, TokenError};
use crate::error::ApiError;
use crate::hub::{Outgoing, SocketInfo};
use crate::util::now_ms;

/// Close codes of protocol.md §3.
pub(crate) mod code {
    pub const GOING_AWAY: u16 = 1001;
    pub const POLICY: u16 = 1008;
    pub const TOO_BIG: u16 = 1009;
    pub const INTERNAL: u16 = 1011;
    pub const AUTH: u16 = 4001;
}

/// The bearer token of an `Authorization` header.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = v.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

pub(crate) async fn handler(
    State(app): State<Arc<App>>,
    query: Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let ws = match ws {
        Ok(ws) => ws,
        Err(r) => {
            return ApiError::new(
                r.status(),
                "websocket_required",
                format!("this endpoint needs a WebSocket upgrade: {}", r.body_text()),
            )
            .into_response();
        }
    };
    // The query token first (browsers cannot set headers), then the Authorization header.
    let token = query
        .ok()
        .and_then(|Query(q)| q.get("token").filter(|t| !t.is_empty()).cloned())
        .or_else(|| bearer(&headers).map(str::to_owned));
    let auth = match token {
        None => Err(TokenError::Missing),
        Some(t) => app.auth.verify(&t),
    };
    let limit = app.cfg.max_frame_bytes;
    // tungstenite's own limits sit above ours so that a too-large message is read whole and
    // answered with a clean 1009 close (see `run`).
    let hard = (limit * 4).max(4 << 20);
    ws.max_frame_size(hard)
        .max_message_size(hard)
        .on_upgrade(move |socket| run(app, socket, auth))
}

async fn close(socket: &mut WebSocket, code: u16, reason: &str) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    if socket.send(Message::Close(Some(frame))).await.is_err() {
        return;
    }
    // Wait (bounded) for the peer's close so the TCP connection ends cleanly.
    let _ = timeout(Duration::from_secs(3), async {
        while let Some(Ok(m)) = socket.recv().await {
            if matches!(m, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}

/// Removes the socket from the hub however the task ends (also when it is dropped).
struct Unregister {
    app: Arc<App>,
    id: u64,
}

impl Drop for Unregister {
    fn drop(&mut self) {
        self.app.hub.unregister(self.id);
    }
}

async fn run(app: Arc<App>, mut socket: WebSocket, auth: Result<Claims, TokenError>) {
    let claims = match auth {
        Ok(c) => c,
        Err(e) => {
            tracing::info!("websocket refused: {}", e.message());
            close(&mut socket, code::AUTH, e.message()).await;
            return;
        }
    };
    let user = {
        let data = app.data.lock().unwrap_or_else(|p| p.into_inner());
        data.user(&claims.sub).cloned()
    };
    let Some(user) = user else {
        close(&mut socket, code::AUTH, "unknown user").await;
        return;
    };
    let info = SocketInfo {
        user_id: user.id.clone(),
        username: user.username.clone(),
        role: user.role,
        jti: claims.jti.clone(),
        iat_ms: claims.iat_ms,
        channels: user.channels(),
    };
    let reg = match app.hub.register(info, now_ms()) {
        Ok(r) => r,
        Err(n) => {
            tracing::info!(user = %user.username, "socket refused: {n} already open");
            let reason = format!("too many connections for this user (max {n})");
            close(&mut socket, code::POLICY, &reason).await;
            return;
        }
    };
    let _guard = Unregister {
        app: app.clone(),
        id: reg.id,
    };
    let mut rx = reg.rx;
    if let Some(ack) = reg.subscribed {
        match timeout(Duration::from_secs(10), ack).await {
            Ok(Ok(Ok(()))) => {}
            other => {
                tracing::warn!(user = %user.username, "subscribing the socket failed: {other:?}");
                close(&mut socket, code::INTERNAL, "subscription failed").await;
                return;
            }
        }
    }
    // The token might be revoked between verification and registration.
    if app.auth.is_revoked(&claims) {
        close(&mut socket, code::AUTH, "token revoked").await;
        return;
    }
    tracing::info!(user = %user.username, socket = reg.id, "socket open");

    let ping_every = app.cfg.ping_interval.max(Duration::from_millis(10));
    let mut pings = tokio::time::interval_at(Instant::now() + ping_every, ping_every);
    pings.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let silent_limit = app.cfg.heartbeat_timeout;
    let mut last_seen = Instant::now();
    let exp_ms = claims
        .exp
        .saturating_mul(1000)
        .saturating_sub(now_ms())
        .max(0);
    let expires_at = Instant::now() + Duration::from_millis(u64::try_from(exp_ms).unwrap_or(0));
    let limit = app.cfg.max_frame_bytes;

    loop {
        tokio::select! {
            incoming = socket.recv() => {
                let msg = match incoming {
                    Some(Ok(m)) => m,
                    Some(Err(e)) => {
                        tracing::info!(socket = reg.id, "socket read error: {e}");
                        if is_capacity(&e) {
                            let _ = socket.send(Message::Close(Some(CloseFrame {
                                code: code::TOO_BIG,
                                reason: "frame too large (max 1 MiB)".into(),
                            }))).await;
                        }
                        break;
                    }
                    None => break,
                };
                last_seen = Instant::now();
                reg.last_seen_ms.store(now_ms(), Ordering::Relaxed);
                match msg {
                    Message::Text(t) => {
                        if t.len() > limit {
                            tracing::info!(socket = reg.id, len = t.len(), "frame over the limit: closing with 1009");
                            close(&mut socket, code::TOO_BIG, "frame too large (max 1 MiB)").await;
                            break;
                        }
                        if let Some(reply) = on_text(&app, reg.id, t.as_str()) {
                            if socket.send(Message::Text(reply.into())).await.is_err() {
                                break;
                            }
                        }
                    }
                    Message::Binary(b) => {
                        if b.len() > limit {
                            close(&mut socket, code::TOO_BIG, "frame too large (max 1 MiB)").await;
                            break;
                        }
                        tracing::warn!(socket = reg.id, len = b.len(), "binary frame ignored");
                    }
                    Message::Ping(_) | Message::Pong(_) => {}
                    Message::Close(_) => break,
                }
            }
            out = rx.recv() => match out {
                Some(Outgoing::Text(text)) => {
                    if socket.send(Message::Text(text.into())).await.is_err() {
                        break;
                    }
                }
                Some(Outgoing::Close(code, reason)) => {
                    close(&mut socket, code, &reason).await;
                    break;
                }
                Some(Outgoing::Abort) | None => {
                    tracing::info!(socket = reg.id, "socket dropped without a close frame");
                    return;
                }
            },
            _ = pings.tick() => {
                let ping = json!({"type": "ping", "timestamp": now_ms()}).to_string();
                if socket.send(Message::Text(ping.into())).await.is_err() {
                    break;
                }
            }
            _ = sleep_until(last_seen + silent_limit) => {
                tracing::info!(socket = reg.id, user = %user.username, "socket silent for {silent_limit:?}: dropped");
                close(&mut socket, code::GOING_AWAY, "heartbeat timeout").await;
                break;
            }
            _ = sleep_until(expires_at) => {
                close(&mut socket, code::AUTH, "token expired").await;
                break;
            }
        }
    }
    tracing::info!(user = %user.username, socket = reg.id, "socket closed");
}

fn is_capacity(e: &axum::Error) -> bool {
    let text = e.to_string().to_ascii_lowercase();
    text.contains("too long") || text.contains("too big") || text.contains("capacity")
}

/// Handles a client text frame; returns the reply to send, if any. Bad frames are logged and
/// ignored.
fn on_text(app: &App, socket: u64, text: &str) -> Option<String> {
    let v: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(socket, "frame that is not JSON ignored: {e}");
            return None;
        }
    };
    let Some(obj) = v.as_object() else {
        tracing::warn!(socket, "frame that is not a JSON object ignored");
        return None;
    };
    match obj.get("type").and_then(Value::as_str) {
        Some("ping") => {
            let Some(ts) = obj.get("timestamp").filter(|t| t.is_number()) else {
                tracing::warn!(socket, "ping without a numeric timestamp ignored");
                return None;
            };
            if app.controls.stall_pongs.load(Ordering::Relaxed) {
                tracing::debug!(socket, "pong withheld (test control)");
                return None;
            }
            Some(json!({"type": "pong", "timestamp": ts, "server_time": now_ms()}).to_string())
        }
        Some("pong") => {
            tracing::trace!(socket, "pong from client");
            None
        }
        Some("ack") => {
            let n = obj.get("ids").and_then(Value::as_array).map_or(0, Vec::len);
            tracing::debug!(socket, acked = n, "ack");
            None
        }
        Some(other) => {
            tracing::warn!(socket, "frame of unknown type {other:?} ignored");
            None
        }
        None => {
            tracing::warn!(socket, "frame without a \"type\" ignored");
            None
        }
    }
}
