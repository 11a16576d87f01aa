//! The REST API of protocol.md §2 plus logout, token revocation, debug and test controls. Every
//! answer uses the envelope of §1; every rejection (unknown route, bad JSON, wrong types, too
//! large bodies, panics) becomes a JSON error.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::app::{App, Fault, Target, check_priority, check_text, notification};
use crate::auth::{Claims, HashGate, Limited, TokenError};
use crate::bus::{Control, GROUP_PATTERN};
use crate::data::{Role, TaskStatus, UserRecord, verify_password};
use crate::error::ApiError;
use crate::hub::Outgoing;
use crate::util::{NotifId, now_ms};
use crate::ws;

/// A JSON body whose rejections become [`ApiError`]s.
#[derive(FromRequest)]
#[from_request(via(Json), rejection(ApiError))]
pub(crate) struct ApiJson<T>(pub T);

/// A query string whose rejections become [`ApiError`]s.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub(crate) struct ApiQuery<T>(pub T);

/// A path whose rejections become [`ApiError`]s.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub(crate) struct ApiPath<T>(pub T);

fn ok(data: impl serde::Serialize) -> Json<Value> {
    Json(json!({"success": true, "data": data}))
}

fn list(items: Vec<Value>) -> Json<Value> {
    let total = items.len();
    ok(json!({"list": items, "total": total}))
}

/// The authenticated caller.
pub(crate) struct Caller {
    pub claims: Claims,
    pub user: UserRecord,
}

impl FromRequestParts<Arc<App>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, ApiError> {
        let token = ws::bearer(&parts.headers).ok_or_else(|| {
            ApiError::unauthorized(
                TokenError::Missing.code(),
                "authentication required: send Authorization: Bearer <token>",
            )
        })?;
        let claims = app
            .auth
            .verify(token)
            .map_err(|e| ApiError::unauthorized(e.code(), e.message()))?;
        let user = app.user(&claims.sub)?;
        Ok(Caller { claims, user })
    }
}

impl Caller {
    fn require_reviewer(&self) -> Result<(), ApiError> {
        if self.user.role.can_review() {
            Ok(())
        } else {
            Err(ApiError::forbidden("reviewers and admins only"))
        }
    }
    fn require_admin(&self) -> Result<(), ApiError> {
        if self.user.role == Role::Admin {
            Ok(())
        } else {
            Err(ApiError::forbidden("admins only"))
        }
    }
}

pub(crate) fn router(app: Arc<App>) -> Router {
    let mut r = Router::new()
        .route("/api/health", get(health))
        .route("/api/auth/login", post(login))
        .route("/api/auth/logout", post(logout))
        .route("/api/auth/me", get(me))
        .route("/api/tasks/my", get(my_tasks))
        .route("/api/tasks", get(tasks).post(create_task))
        .route("/api/tasks/{id}/submit", post(submit))
        .route("/api/tasks/{id}/review", post(review))
        .route("/api/skip-requests", get(skip_requests).post(create_skip))
        .route("/api/notifications", get(notifications))
        .route("/api/notifications/read", post(mark_read))
        .route("/api/notifications/broadcast", post(broadcast))
        .route("/api/groups", get(groups))
        .route("/api/groups/{id}/messages", post(group_message))
        .route("/api/users/{id}/messages", post(private_message))
        .route("/api/admin/users/{id}/revoke-tokens", post(revoke_user))
        .route("/api/debug/connections", get(debug_connections))
        .route("/ws/notifications", get(ws::handler));
    if app.cfg.test_controls {
        r = r
            .route("/api/test/stall-pongs", post(test_stall_pongs))
            .route("/api/test/drop-sockets", post(test_drop_sockets))
            .route("/api/test/close-sockets", post(test_close_sockets))
            .route("/api/test/send-raw", post(test_send_raw))
            .route("/api/test/notify", post(test_notify))
            .route("/api/test/token", post(test_token))
            .route("/api/test/fail", post(test_fail))
            .route("/api/test/reset-login-limits", post(test_reset_limits))
            .route("/api/test/hold-logins", post(test_hold_logins))
            .layer(middleware::from_fn_with_state(app.clone(), faults));
    }
    r = r
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(app.cfg.max_body_bytes));
    if app.cfg.test_controls {
        // Unauthenticated controls: only for clients that asked for this machine by name
        // (no DNS rebinding) and, from a browser, only for pages of this machine.
        r = r.layer(middleware::from_fn(loopback_only));
    }
    r.layer(tower_http::catch_panic::CatchPanicLayer::custom(on_panic))
        .with_state(app)
}

/// Whether `authority` (a `Host` header value, or the authority of an origin) names this machine:
/// `localhost`, an address of 127.0.0.0/8, or `[::1]`, with or without a port.
fn is_loopback_authority(authority: &str) -> bool {
    let port_ok = |p: &str| {
        p.is_empty()
            || p.strip_prefix(':')
                .is_some_and(|n| n.parse::<u16>().is_ok())
    };
    if let Some(rest) = authority.strip_prefix('[') {
        let Some((ip, port)) = rest.split_once(']') else {
            return false;
        };
        return port_ok(port)
            && ip
                .parse::<Ipv6Addr>()
                .is_ok_and(|v6| IpAddr::V6(v6).to_canonical().is_loopback());
    }
    let (host, port) = authority
        .rfind(':')
        .map_or((authority, ""), |i| authority.split_at(i));
    if !port_ok(port) {
        return false;
    }
    // Only full dotted quads (no "127.1", no decimal forms).
    host.eq_ignore_ascii_case("localhost")
        || host.eq_ignore_ascii_case("localhost.")
        || host.parse::<Ipv4Addr>().is_ok_and(|v4| v4.is_loopback())
}

/// Why a request is refused by [`loopback_only`], if it is.
fn foreign_host(headers: &HeaderMap, uri_host: Option<&str>) -> Option<String> {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or(uri_host);
    match host {
        None => return Some("no Host header".into()),
        Some(h) if !is_loopback_authority(h) => return Some(format!("Host {h:?}")),
        Some(_) => {}
    }
    let origin = headers.get(header::ORIGIN)?;
    let ok = origin
        .to_str()
        .ok()
        .and_then(|o| o.split_once("://"))
        .is_some_and(|(scheme, rest)| {
            matches!(scheme, "http" | "https" | "ws" | "wss") && is_loopback_authority(rest)
        });
    (!ok).then(|| format!("Origin {:?}", String::from_utf8_lossy(origin.as_bytes())))
}

/// With `--test-controls`: refuses requests for another host name (DNS rebinding) and requests
/// made by pages of another origin.
async fn loopback_only(req: Request, next: Next) -> Response {
    if let Some(what) = foreign_host(req.headers(), req.uri().authority().map(|a| a.as_str())) {
        tracing::warn!(%what, path = %req.uri().path(), "refused: not a loopback host (test controls are on)");
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "host_not_allowed",
            format!(
                "{what} is not a loopback name: with --test-controls this server only answers \
                 requests for localhost, 127.0.0.0/8 or [::1]"
            ),
        )
        .into_response();
    }
    next.run(req).await
}

fn on_panic(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    ApiError::internal("internal error").into_response()
}

async fn not_found(req: Request) -> ApiError {
    ApiError::not_found(format!(
        "no route for {} {}",
        req.method(),
        req.uri().path()
    ))
}

async fn method_not_allowed(req: Request) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!(
            "method {} is not allowed on {}",
            req.method(),
            req.uri().path()
        ),
    )
}

/// The `/api/test/fail` rules, applied before routing.
async fn faults(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    if !path.starts_with("/api/test/") {
        let hit = {
            let mut f = app
                .controls
                .faults
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            let hit = f
                .iter_mut()
                .find(|r| r.path == path && r.count > 0)
                .map(|r| {
                    r.count -= 1;
                    r.clone()
                });
            f.retain(|r| r.count > 0);
            hit
        };
        if let Some(rule) = hit {
            if rule.delay_ms > 0 {
                tokio::time::sleep(Duration::from_millis(rule.delay_ms)).await;
            }
            if let Some(status) = rule.status {
                let status =
                    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                let mut e = ApiError::new(
                    status,
                    "injected_fault",
                    format!("injected fault ({status})"),
                );
                e.retry_after = rule.retry_after;
                return e.into_response();
            }
        }
    }
    next.run(req).await
}

async fn health(State(app): State<Arc<App>>) -> Json<Value> {
    ok(json!({
        "status": "ok",
        "instance": app.instance,
        "bus": if app.bus.is_redis() { "redis" } else { "memory" },
    }))
}

#[derive(Deserialize)]
struct LoginBody {
    username: String,
    password: String,
}

async fn login(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ApiJson(body): ApiJson<LoginBody>,
) -> Result<Json<Value>, ApiError> {
    let username = body.username.trim().to_owned();
    if username.is_empty() || body.password.is_empty() {
        return Err(ApiError::bad_request(
            "invalid_field",
            "username and password are required",
        ));
    }
    // Count the attempt before the slow check, so parallel attempts cannot overtake the limit.
    let attempt = app.limiter.reserve(&username, peer.ip()).map_err(|l| {
        tracing::info!(username, peer = %peer.ip(), ?l, "login refused: rate limited");
        let why = match l {
            Limited::Name(_) => "too many failed logins for this user",
            Limited::Address(_) => "too many failed logins from this address",
        };
        ApiError::rate_limited(why, l.retry_after())
    })?;
    let Some(admission) = app.hashing.admit() else {
        app.limiter.release(attempt);
        tracing::info!(username, peer = %peer.ip(), "login refused: too many password checks waiting");
        return Err(ApiError::busy(
            "too many sign-ins at once; try again in 1 s",
            1,
        ));
    };
    let (user, hash) = {
        let data = app.lock_data();
        let user = data.user_by_name(&username).cloned();
        // Check anyway for unknown users so that timing does not tell which names exist.
        let hash = user
            .as_ref()
            .map_or_else(|| data.dummy_hash.clone(), |u| u.password_hash.clone());
        (user, hash)
    };
    let pw = body.password;
    let good = HashGate::run(admission, move |memory| verify_password(&pw, &hash, memory))
        .await
        .map_err(ApiError::internal)?;
    let user = match (good, user) {
        (true, Some(u)) => u,
        _ => {
            app.limiter.failed(attempt);
            tracing::info!(username, peer = %peer.ip(), "login failed");
            return Err(ApiError::unauthorized(
                "invalid_credentials",
                "invalid username or password",
            ));
        }
    };
    app.limiter.succeeded(attempt);
    let ttl = i64::try_from(app.auth.ttl().as_secs()).unwrap_or(i64::MAX / 4);
    let (token, _) = app
        .auth
        .issue(&user.id, &user.username, user.role, ttl)
        .map_err(ApiError::internal)?;
    tracing::info!(username, "login");
    Ok(ok(json!({
        "access_token": token,
        "token_type": "bearer",
        "expires_in": ttl,
        "user": user.view(),
    })))
}

async fn logout(State(app): State<Arc<App>>, caller: Caller) -> Result<Json<Value>, ApiError> {
    let c = Control::RevokeJti {
        jti: caller.claims.jti.clone(),
        exp: caller.claims.exp,
    };
    app.bus
        .control(&app.hub, &app.auth, c)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(ok(json!({"revoked": true})))
}

async fn me(caller: Caller) -> Json<Value> {
    ok(caller.user.view())
}

#[derive(Deserialize)]
struct StatusQuery {
    status: Option<String>,
}

fn parse_status(s: Option<&str>) -> Result<Option<TaskStatus>, ApiError> {
    match s {
        None | Some("") => Ok(None),
        Some(s) => TaskStatus::parse(s).map(Some).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_query",
                format!(
                    "unknown status {s:?}; expected in_progress, submitted, rejected or approved"
                ),
            )
        }),
    }
}

fn task_json(t: &crate::data::Task) -> Value {
    serde_json::to_value(t).unwrap_or(Value::Null)
}

async fn my_tasks(
    State(app): State<Arc<App>>,
    caller: Caller,
    ApiQuery(q): ApiQuery<StatusQuery>,
) -> Result<Json<Value>, ApiError> {
    let status = parse_status(q.status.as_deref())?;
    let data = app.lock_data();
    let items = data
        .tasks
        .iter()
        .filter(|t| t.assignee_id.as_deref() == Some(caller.user.id.as_str()))
        .filter(|t| status.is_none_or(|s| t.status == s))
        .map(task_json)
        .collect();
    Ok(list(items))
}

async fn tasks(
    State(app): State<Arc<App>>,
    caller: Caller,
    ApiQuery(q): ApiQuery<StatusQuery>,
) -> Result<Json<Value>, ApiError> {
    caller.require_reviewer()?;
    let status = parse_status(q.status.as_deref())?;
    let data = app.lock_data();
    let items = data
        .tasks
        .iter()
        .filter(|t| status.is_none_or(|s| t.status == s))
        .map(task_json)
        .collect();
    Ok(list(items))
}

#[derive(Deserialize)]
struct CreateTask {
    title: String,
    assignee_id: Value,
    #[serde(default)]
    project_id: Option<Value>,
}

fn id_string(v: &Value, field: &str) -> Result<String, ApiError> {
    match v {
        Value::String(s) if !s.is_empty() => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        _ => Err(ApiError::bad_request(
            "invalid_field",
            format!("\"{field}\" must be an id (string or number)"),
        )),
    }
}

async fn create_task(
    State(app): State<Arc<App>>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateTask>,
) -> Result<Json<Value>, ApiError> {
    caller.require_reviewer()?;
    let assignee = id_string(&body.assignee_id, "assignee_id")?;
    let project = body
        .project_id
        .as_ref()
        .map(|p| id_string(p, "project_id"))
        .transpose()?;
    let t = app.assign_task(&body.title, project, &assignee).await?;
    Ok(ok(task_json(&t)))
}

async fn submit(
    State(app): State<Arc<App>>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let t = app.submit_task(&caller.user, &id).await?;
    Ok(ok(task_json(&t)))
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum ReviewAction {
    Approve,
    Reject,
}

#[derive(Deserialize)]
struct ReviewBody {
    action: ReviewAction,
    #[serde(default)]
    comment: Option<String>,
}

async fn review(
    State(app): State<Arc<App>>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<ReviewBody>,
) -> Result<Json<Value>, ApiError> {
    let approve = matches!(body.action, ReviewAction::Approve);
    let t = app
        .review_task(&caller.user, &id, approve, body.comment)
        .await?;
    Ok(ok(task_json(&t)))
}

async fn skip_requests(
    State(app): State<Arc<App>>,
    caller: Caller,
    ApiQuery(q): ApiQuery<StatusQuery>,
) -> Result<Json<Value>, ApiError> {
    let status = q.status.filter(|s| !s.is_empty());
    if let Some(s) = &status {
        if !matches!(s.as_str(), "pending" | "approved" | "rejected") {
            return Err(ApiError::bad_request(
                "invalid_query",
                format!("unknown status {s:?}; expected pending, approved or rejected"),
            ));
        }
    }
    let data = app.lock_data();
    let reviewer = caller.user.role.can_review();
    let items = data
        .skips
        .iter()
        // Annotators see their own requests; reviewers and admins see all.
        .filter(|s| reviewer || s.requested_by == caller.user.id)
        .filter(|s| status.as_ref().is_none_or(|st| s.status == *st))
        .map(|s| serde_json::to_value(s).unwrap_or(Value::Null))
        .collect();
    Ok(list(items))
}

#[derive(Deserialize)]
struct SkipBody {
    task_id: Value,
    reason: String,
}

async fn create_skip(
    State(app): State<Arc<App>>,
    caller: Caller,
    ApiJson(body): ApiJson<SkipBody>,
) -> Result<Json<Value>, ApiError> {
    let task_id = id_string(&body.task_id, "task_id")?;
    let r = app
        .request_skip(&caller.user, &task_id, &body.reason)
        .await?;
    Ok(ok(r))
}

#[derive(Deserialize)]
struct HistoryQuery {
    since: Option<String>,
    limit: Option<u32>,
}

async fn notifications(
    State(app): State<Arc<App>>,
    caller: Caller,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> Result<Json<Value>, ApiError> {
    let since = match q.since.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(NotifId::parse(s).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_cursor",
                format!("cursor {s:?} is not a notification id (<ms>-<seq>)"),
            )
        })?),
    };
    let limit = q.limit.unwrap_or(100).clamp(1, 500) as usize;
    let mut items = app
        .bus
        .since(&caller.user.id, since, limit + 1)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let has_more = items.len() > limit;
    items.truncate(limit);
    let next_cursor = items
        .last()
        .and_then(|v| v.get("id").cloned())
        .or_else(|| since.map(|s| Value::String(s.to_string())))
        .unwrap_or(Value::Null);
    Ok(ok(
        json!({"list": items, "next_cursor": next_cursor, "has_more": has_more}),
    ))
}

#[derive(Deserialize)]
struct ReadBody {
    ids: Vec<Value>,
}

async fn mark_read(
    State(app): State<Arc<App>>,
    caller: Caller,
    ApiJson(body): ApiJson<ReadBody>,
) -> Result<Json<Value>, ApiError> {
    let ids = body
        .ids
        .iter()
        .map(|v| id_string(v, "ids[]"))
        .collect::<Result<Vec<_>, _>>()?;
    let n = app.bus.mark_read(&caller.user.id, &ids);
    // Every socket of the caller learns it (the REST caller has no socket identity, so its
    // own sockets get the frame too; a client ignores ids it already has read). The marks
    // are kept even when the push fails: it is best effort, like the marks themselves.
    let pushed = match app.publish_read(&caller.user.id, &ids).await {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(user = %caller.user.id, "read marks not pushed to the sockets: {e:?}");
            false
        }
    };
    Ok(ok(json!({"marked": n, "pushed": pushed})))
}

#[derive(Deserialize)]
struct BroadcastBody {
    title: String,
    content: String,
    #[serde(default)]
    priority: Option<String>,
}

async fn broadcast(
    State(app): State<Arc<App>>,
    caller: Caller,
    ApiJson(body): ApiJson<BroadcastBody>,
) -> Result<Json<Value>, ApiError> {
    caller.require_admin()?;
    let ids = app
        .broadcast(
            &body.title,
            &body.content,
            body.priority.as_deref().unwrap_or("normal"),
        )
        .await?;
    Ok(ok(json!({"recipients": ids.len()})))
}

async fn groups(State(app): State<Arc<App>>, caller: Caller) -> Json<Value> {
    let data = app.lock_data();
    let items = data
        .groups
        .iter()
        .filter(|g| g.member_ids.contains(&caller.user.id))
        .map(|g| serde_json::to_value(g).unwrap_or(Value::Null))
        .collect();
    list(items)
}

#[derive(Deserialize)]
struct MessageBody {
    content: String,
}

async fn group_message(
    State(app): State<Arc<App>>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<MessageBody>,
) -> Result<Json<Value>, ApiError> {
    Ok(ok(app
        .group_message(&caller.user, &id, &body.content)
        .await?))
}

async fn private_message(
    State(app): State<Arc<App>>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<MessageBody>,
) -> Result<Json<Value>, ApiError> {
    Ok(ok(app
        .private_message(&caller.user, &id, &body.content)
        .await?))
}

async fn revoke_user(
    State(app): State<Arc<App>>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require_admin()?;
    if app.lock_data().user(&id).is_none() {
        return Err(ApiError::not_found(format!("no user {id:?}")));
    }
    let cutoff = now_ms();
    app.bus
        .control(
            &app.hub,
            &app.auth,
            Control::RevokeUser {
                user_id: id.clone(),
                cutoff_ms: cutoff,
            },
        )
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(ok(json!({"user_id": id, "revoked_before": cutoff})))
}

async fn debug_connections(
    State(app): State<Arc<App>>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    caller.require_admin()?;
    let (sockets, channels) = app.hub.snapshot();
    let bus = app.bus.debug(&channels).await;
    let (names, addresses) = app.limiter.tracked();
    Ok(ok(json!({
        "logins": {
            "password_checks": app.hashing.stats(),
            "tracked_usernames": names,
            "tracked_addresses": addresses,
        },
        "instance": app.instance,
        "local_sockets": sockets.len(),
        "sockets": sockets,
        "channels": channels.iter().map(|(c, n)| json!({"channel": c, "local_sockets": n})).collect::<Vec<_>>(),
        "patterns": [GROUP_PATTERN],
        "bus": bus,
    })))
}

// ---- test controls (only routed with --test-controls) ----

#[derive(Deserialize)]
struct Enabled {
    enabled: bool,
}

async fn test_stall_pongs(
    State(app): State<Arc<App>>,
    ApiJson(b): ApiJson<Enabled>,
) -> Json<Value> {
    app.controls.stall_pongs.store(b.enabled, Ordering::Relaxed);
    tracing::info!(enabled = b.enabled, "test control: stall pongs");
    ok(json!({"stall_pongs": b.enabled}))
}

#[derive(Deserialize)]
struct DropBody {
    #[serde(default)]
    mode: Option<String>,
    #[serde(default)]
    user_id: Option<Value>,
}

fn user_filter(v: &Option<Value>) -> Result<Option<String>, ApiError> {
    v.as_ref().map(|v| id_string(v, "user_id")).transpose()
}

async fn test_drop_sockets(
    State(app): State<Arc<App>>,
    ApiJson(b): ApiJson<DropBody>,
) -> Result<Json<Value>, ApiError> {
    let user = user_filter(&b.user_id)?;
    let abort = match b.mode.as_deref().unwrap_or("abort") {
        "abort" => true,
        "going_away" => false,
        other => {
            return Err(ApiError::bad_request(
                "invalid_field",
                format!("unknown mode {other:?}; expected abort or going_away"),
            ));
        }
    };
    let n = app.hub.command_where(
        |s| user.as_ref().is_none_or(|u| s.user_id == *u),
        || {
            if abort {
                Outgoing::Abort
            } else {
                Outgoing::Close(ws::code::GOING_AWAY, "server going away".into())
            }
        },
    );
    tracing::info!(n, abort, "test control: drop sockets");
    Ok(ok(json!({"dropped": n})))
}

#[derive(Deserialize)]
struct CloseBody {
    code: u16,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    user_id: Option<Value>,
}

async fn test_close_sockets(
    State(app): State<Arc<App>>,
    ApiJson(b): ApiJson<CloseBody>,
) -> Result<Json<Value>, ApiError> {
    let user = user_filter(&b.user_id)?;
    if !(b.code == 1000
        || (1001..=1014).contains(&b.code) && b.code != 1004 && b.code != 1005 && b.code != 1006
        || (3000..=4999).contains(&b.code))
    {
        return Err(ApiError::bad_request(
            "invalid_field",
            format!("{} is not a close code a server may send", b.code),
        ));
    }
    let reason = b.reason.unwrap_or_default();
    let n = app.hub.command_where(
        |s| user.as_ref().is_none_or(|u| s.user_id == *u),
        || Outgoing::Close(b.code, reason.clone()),
    );
    Ok(ok(json!({"closed": n})))
}

#[derive(Deserialize)]
struct RawBody {
    text: String,
    #[serde(default)]
    user_id: Option<Value>,
}

async fn test_send_raw(
    State(app): State<Arc<App>>,
    ApiJson(b): ApiJson<RawBody>,
) -> Result<Json<Value>, ApiError> {
    let user = user_filter(&b.user_id)?;
    let n = app.hub.command_where(
        |s| user.as_ref().is_none_or(|u| s.user_id == *u),
        || Outgoing::Text(b.text.clone()),
    );
    Ok(ok(json!({"sent": n})))
}

#[derive(Deserialize)]
struct NotifyBody {
    #[serde(default)]
    user_id: Option<Value>,
    #[serde(default)]
    role: Option<Role>,
    #[serde(default)]
    project_id: Option<Value>,
    #[serde(default)]
    global: bool,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    priority: Option<String>,
    #[serde(default)]
    data: Option<Value>,
    #[serde(default)]
    count: Option<u32>,
}

async fn test_notify(
    State(app): State<Arc<App>>,
    ApiJson(b): ApiJson<NotifyBody>,
) -> Result<Json<Value>, ApiError> {
    let target = match (user_filter(&b.user_id)?, b.role, &b.project_id, b.global) {
        (Some(u), None, None, false) => Target::User(u),
        (None, Some(r), None, false) => Target::Role(r),
        (None, None, Some(p), false) => Target::Project(id_string(p, "project_id")?),
        (None, None, None, true) => Target::Global,
        _ => {
            return Err(ApiError::bad_request(
                "invalid_field",
                "give exactly one of user_id, role, project_id or global: true",
            ));
        }
    };
    let priority = b.priority.unwrap_or_else(|| "normal".into());
    check_priority(&priority)?;
    let kind = b.kind.unwrap_or_else(|| "test".into());
    check_text("type", &kind, 100)?;
    let count = b.count.unwrap_or(1).clamp(1, 100_000);
    let mut last = None;
    for i in 1..=count {
        let title = b.title.clone().unwrap_or_else(|| "测试通知".into());
        let content = match (&b.content, count) {
            (Some(c), 1) => c.clone(),
            (Some(c), _) => format!("{c} #{i}"),
            (None, _) => format!("这是第 {i} 条测试通知"),
        };
        let frame = notification(
            &kind,
            &title,
            &content,
            b.data.clone().unwrap_or(json!({})),
            &priority,
        );
        last = Some(app.notify(target.clone(), frame).await?);
    }
    Ok(ok(json!({"published": count, "ids": last})))
}

#[derive(Deserialize)]
struct TokenBody {
    username: String,
    #[serde(default)]
    ttl_secs: Option<i64>,
}

async fn test_token(
    State(app): State<Arc<App>>,
    ApiJson(b): ApiJson<TokenBody>,
) -> Result<Json<Value>, ApiError> {
    let user = app
        .lock_data()
        .user_by_name(&b.username)
        .cloned()
        .ok_or_else(|| ApiError::not_found(format!("no user {:?}", b.username)))?;
    let ttl = b
        .ttl_secs
        .unwrap_or(3600)
        .clamp(-86_400 * 365, 86_400 * 365);
    let (token, claims) = app
        .auth
        .issue(&user.id, &user.username, user.role, ttl)
        .map_err(ApiError::internal)?;
    Ok(ok(
        json!({"access_token": token, "token_type": "bearer", "expires_in": ttl, "exp": claims.exp, "user": user.view()}),
    ))
}

async fn test_fail(
    State(app): State<Arc<App>>,
    ApiJson(rule): ApiJson<Fault>,
) -> Result<Json<Value>, ApiError> {
    if !rule.path.starts_with('/') {
        return Err(ApiError::bad_request(
            "invalid_field",
            "\"path\" must start with /",
        ));
    }
    if let Some(s) = rule.status {
        if !(400..=599).contains(&s) {
            return Err(ApiError::bad_request(
                "invalid_field",
                "\"status\" must be 400..=599",
            ));
        }
    }
    let mut f = app
        .controls
        .faults
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    f.retain(|r| r.path != rule.path);
    if rule.count > 0 {
        f.push(rule.clone());
    }
    Ok(ok(json!({"rules": *f})))
}

async fn test_reset_limits(State(app): State<Arc<App>>) -> Json<Value> {
    app.limiter.reset();
    ok(json!({"reset": true}))
}

#[derive(Deserialize)]
struct HoldBody {
    hold: bool,
}

async fn test_hold_logins(
    State(app): State<Arc<App>>,
    ApiJson(b): ApiJson<HoldBody>,
) -> Result<Json<Value>, ApiError> {
    let mut held = app.controls.held_logins.lock().await;
    if b.hold && held.is_none() {
        *held = Some(
            app.hashing
                .hold()
                .await
                .ok_or_else(|| ApiError::internal("cannot hold the password checks"))?,
        );
    } else if !b.hold {
        *held = None;
    }
    tracing::info!(hold = b.hold, "test control: hold logins");
    Ok(ok(json!({"held": held.is_some()})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_authorities() {
        for ok in [
            "localhost",
            "LOCALHOST:8000",
            "127.0.0.1",
            "127.0.0.1:41234",
            "127.3.2.1:80",
            "[::1]",
            "[::1]:8000",
            "[::ffff:127.0.0.1]:1",
        ] {
            assert!(is_loopback_authority(ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:8000",
            "127.0.0.1.evil.example",
            "localhost.evil.example",
            "0.0.0.0:8000",
            "10.0.0.1",
            "[::]:80",
            "::1",
            "2130706433",
            "127.1",
            "user@127.0.0.1",
            "",
            "127.0.0.1:x",
        ] {
            assert!(!is_loopback_authority(bad), "{bad}");
        }
    }

    #[test]
    fn hosts_and_origins() {
        let h = |pairs: &[(header::HeaderName, &str)]| {
            let mut m = HeaderMap::new();
            for (k, v) in pairs {
                m.insert(k.clone(), v.parse().unwrap());
            }
            m
        };
        assert!(foreign_host(&h(&[(header::HOST, "127.0.0.1:1")]), None).is_none());
        assert!(foreign_host(&h(&[]), Some("localhost:1")).is_none());
        assert!(foreign_host(&h(&[]), None).is_some());
        assert!(foreign_host(&h(&[(header::HOST, "evil.example")]), None).is_some());
        let local = (header::HOST, "localhost:9");
        assert!(
            foreign_host(
                &h(&[local.clone(), (header::ORIGIN, "http://localhost:9")]),
                None
            )
            .is_none()
        );
        for origin in [
            "https://evil.example",
            "null",
            "file://",
            "http://127.0.0.1.nip.io",
        ] {
            assert!(
                foreign_host(&h(&[local.clone(), (header::ORIGIN, origin)]), None).is_some(),
                "{origin}"
            );
        }
    }
}
