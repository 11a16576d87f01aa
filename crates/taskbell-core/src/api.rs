//! The REST client (reqwest with rustls): sign-in, the caller's user, the task
//! lists behind the login summary, and notification history for catch-up.
//!
//! Every failure becomes an [`ApiError`] whose `Display` is one sentence a user
//! understands: a wrong password reads differently from an unreachable server,
//! a TLS problem, a bad URL, a server error or a response that is not the JSON
//! of `protocol.md`.

use std::fmt;
use std::time::Duration;

use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::Value;
use url::Url;

use crate::net::Network;
use crate::protocol::{self, Notification, Role, SkipRequest, Task, User};
use crate::summary::{self, SummaryCounts};

/// Default time to open a TCP (and TLS) connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time for a whole request, response body included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// The largest response body read (declared or streamed); a larger one is refused
/// with [`ApiError::BadResponse`]. A catch-up page of a few hundred notifications
/// is tens of KiB.
pub const MAX_BODY_BYTES: usize = 8 << 20;
/// Same-origin redirects followed at most.
const MAX_REDIRECTS: usize = 5;

/// An access token. `Debug` and `Display` print `***`; only [`SecretToken::expose`]
/// gives the text, for the `Authorization` header and the keyring.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretToken(String);

impl SecretToken {
    /// Wraps a token, and registers it with [`crate::sanitize::redact`] so that
    /// no log line or output can show it.
    pub fn new(token: String) -> SecretToken {
        crate::sanitize::register_secret(&token);
        SecretToken(token)
    }

    /// The token text. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretToken(***)")
    }
}

impl fmt::Display for SecretToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Why a REST call failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    /// 401: wrong user name or password at login; an expired or revoked token elsewhere.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: the account may not do this.
    #[error("access denied: {0}")]
    Forbidden(String),
    /// 429: too many requests; try again after `retry_after` when the server said.
    #[error("the server is rate limiting requests{}", match retry_after {
        Some(d) => format!("; try again in {} s", d.as_secs().max(1)),
        None => String::new(),
    })]
    RateLimited {
        /// The server's `Retry-After`, when it sent one.
        retry_after: Option<Duration>,
    },
    /// Any other non-success status (404, 5xx…).
    #[error("{}", server_message(*status, message))]
    Server {
        /// The HTTP status code.
        status: u16,
        /// The server's `message`, or the reason phrase.
        message: String,
    },
    /// The server could not be reached (DNS, refused, reset).
    #[error("cannot reach the server: {0}")]
    Network(String),
    /// The server did not answer in time.
    #[error("the server did not answer in time")]
    Timeout,
    /// TLS failed (certificate not trusted, wrong host name, handshake).
    #[error("secure connection failed: {0}")]
    Tls(String),
    /// The server URL is not usable.
    #[error("bad server URL: {0}")]
    BadUrl(String),
    /// The answer is not the JSON that protocol.md describes.
    #[error("the server sent an unexpected answer: {0}")]
    BadResponse(String),
}

fn server_message(status: u16, message: &str) -> String {
    let what = if status >= 500 {
        "the server had an internal problem"
    } else if status == 404 {
        "the server does not offer this"
    } else {
        "the server refused the request"
    };
    if message.is_empty() {
        format!("{what} (HTTP {status})")
    } else {
        format!("{what} (HTTP {status}: {message})")
    }
}

impl ApiError {
    /// True for failures that a later retry may cure (network, timeout, 5xx, 429).
    pub fn is_transient(&self) -> bool {
        match self {
            ApiError::Network(_) | ApiError::Timeout | ApiError::RateLimited { .. } => true,
            ApiError::Server { status, .. } => *status >= 500,
            _ => false,
        }
    }
}

/// A successful login.
#[derive(Debug, Clone)]
pub struct LoginOk {
    /// The access token.
    pub token: SecretToken,
    /// Token lifetime in seconds, when the server said.
    pub expires_in: Option<u64>,
    /// The signed-in user.
    pub user: User,
}

/// One page of notification history, oldest first.
#[derive(Debug, Clone, Default)]
pub struct NotificationPage {
    /// The notifications that decoded; bad entries are logged and skipped.
    pub list: Vec<Notification>,
    /// Where to continue, when the server says there is more.
    pub next_cursor: Option<String>,
    /// The largest id the server sent on this page (for the catch-up cursor).
    pub last_id: Option<String>,
}

/// The REST client for one server.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: Url,
    token: Option<SecretToken>,
    /// The proxy the calls go through, if any (named in errors).
    proxy: Option<String>,
}

impl fmt::Debug for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Api")
            .field("base", &self.base.as_str())
            .field("token", &self.token)
            .finish()
    }
}

/// Checks and normalises a server URL: http(s), a host, no query or fragment, a
/// trailing slash so that relative joins keep a path prefix.
pub fn normalize_base(base: &Url) -> Result<Url, ApiError> {
    match base.scheme() {
        "http" | "https" => {}
        other => {
            return Err(ApiError::BadUrl(format!(
                "{base}: the scheme must be http or https, not {other}"
            )));
        }
    }
    if base.host_str().is_none_or(str::is_empty) {
        return Err(ApiError::BadUrl(format!("{base}: no host")));
    }
    let mut u = base.clone();
    u.set_query(None);
    u.set_fragment(None);
    if !u.path().ends_with('/') {
        let p = format!("{}/", u.path());
        u.set_path(&p);
    }
    Ok(u)
}

/// Parses a user-typed server URL (`host:port` without a scheme is refused with a hint).
pub fn parse_server_url(text: &str) -> Result<Url, ApiError> {
    let text = text.trim();
    let url = Url::parse(text).map_err(|e| {
        if !text.contains("://") {
            ApiError::BadUrl(format!(
                "{text}: {e}; write the full address, e.g. https://{text}"
            ))
        } else {
            ApiError::BadUrl(format!("{text}: {e}"))
        }
    })?;
    normalize_base(&url)
}

impl Api {
    /// A client for `base` with the default timeouts.
    pub fn new(base: Url) -> Result<Api, ApiError> {
        Api::with_timeouts(base, CONNECT_TIMEOUT, REQUEST_TIMEOUT)
    }

    /// A client for `base` with the given connect and request timeouts, the OS
    /// trust store and the system's proxy settings.
    pub fn with_timeouts(base: Url, connect: Duration, request: Duration) -> Result<Api, ApiError> {
        let network = Network::system().map_err(|e| ApiError::Tls(e.to_string()))?;
        Api::with_network(base, &network, connect, request)
    }

    /// A client for `base` that trusts and connects as `network` decides (the
    /// same decision the socket follows), with the given timeouts.
    pub fn with_network(
        base: Url,
        network: &Network,
        connect: Duration,
        request: Duration,
    ) -> Result<Api, ApiError> {
        let base = normalize_base(&base)?;
        let origin = base.origin();
        // Credentials (the password of a login, the token of every other call) may
        // only ever reach the configured origin: redirects are followed within it
        // only, which also rules out https → http. Anything else stops here and is
        // reported (see `interpret`).
        let redirects = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= MAX_REDIRECTS {
                attempt.error("too many redirects")
            } else if attempt.url().origin() == origin {
                attempt.follow()
            } else {
                attempt.stop()
            }
        });
        let http = network
            .http_builder()
            .map_err(|e| ApiError::BadUrl(e.to_string()))?
            .redirect(redirects)
            .connect_timeout(connect)
            .timeout(request)
            .user_agent(concat!("TaskBell/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ApiError::Tls(format!("cannot set up the HTTP client: {e}")))?;
        let proxy = network.proxy_for(&base).map(|p| {
            format!(
                "{}://{}",
                p.scheme(),
                p.host_str().map_or(String::new(), |h| match p.port() {
                    Some(port) => format!("{h}:{port}"),
                    None => h.to_string(),
                })
            )
        });
        Ok(Api {
            http,
            base,
            token: None,
            proxy,
        })
    }

    /// The same client, sending `token` as `Authorization: Bearer`.
    pub fn with_token(mut self, token: SecretToken) -> Api {
        self.token = Some(token);
        self
    }

    /// The normalised base URL (ends with `/`).
    pub fn base(&self) -> &Url {
        &self.base
    }

    /// The token this client sends, if any.
    pub fn token(&self) -> Option<&SecretToken> {
        self.token.as_ref()
    }

    fn url(&self, path: &str) -> Result<Url, ApiError> {
        self.base
            .join(path.trim_start_matches('/'))
            .map_err(|e| ApiError::BadUrl(format!("{}{path}: {e}", self.base)))
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<Value>,
        login: bool,
    ) -> Result<Value, ApiError> {
        let url = self.url(path)?;
        let mut req = self.http.request(method, url);
        if !query.is_empty() {
            req = req.query(query);
        }
        if let Some(t) = &self.token {
            req = req.bearer_auth(t.expose());
        }
        if let Some(b) = &body {
            req = req.json(b);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| classify_via(e, self.proxy.as_deref()))?;
        let status = resp.status();
        if status.is_redirection() {
            return Err(refused_redirect(&resp));
        }
        let retry_after = parse_retry_after(resp.headers());
        let bytes = read_capped(resp, MAX_BODY_BYTES).await?;
        interpret(status, retry_after, &bytes, login)
    }

    /// `POST /api/auth/login`.
    pub async fn login(&self, username: &str, password: &str) -> Result<LoginOk, ApiError> {
        crate::sanitize::register_secret(password);
        let body = serde_json::json!({ "username": username, "password": password });
        let data = self
            .call(Method::POST, "api/auth/login", &[], Some(body), true)
            .await?;
        parse_login(data)
    }

    /// `POST /api/auth/logout` (revokes the token where the server supports it).
    pub async fn logout(&self) -> Result<(), ApiError> {
        self.call(Method::POST, "api/auth/logout", &[], None, false)
            .await
            .map(|_| ())
    }

    /// `GET /api/auth/me`.
    pub async fn me(&self) -> Result<User, ApiError> {
        let data = self
            .call(Method::GET, "api/auth/me", &[], None, false)
            .await?;
        parse_value(data, "user")
    }

    /// `GET /api/tasks/my[?status=]` (annotators).
    pub async fn my_tasks(&self, status: Option<&str>) -> Result<Vec<Task>, ApiError> {
        let q: Vec<(&str, String)> = status
            .map(|s| ("status", s.to_string()))
            .into_iter()
            .collect();
        let data = self
            .call(Method::GET, "api/tasks/my", &q, None, false)
            .await?;
        parse_list(data, "tasks")
    }

    /// `GET /api/tasks?status=submitted` (reviewers, admins).
    pub async fn submitted_tasks(&self) -> Result<Vec<Task>, ApiError> {
        let q = [("status", "submitted".to_string())];
        let data = self.call(Method::GET, "api/tasks", &q, None, false).await?;
        parse_list(data, "tasks")
    }

    /// `GET /api/skip-requests?status=pending` (reviewers, admins).
    pub async fn pending_skip_requests(&self) -> Result<Vec<SkipRequest>, ApiError> {
        let q = [("status", "pending".to_string())];
        let data = self
            .call(Method::GET, "api/skip-requests", &q, None, false)
            .await?;
        parse_list(data, "skip requests")
    }

    /// `GET /api/notifications?since=&limit=`, oldest first. `Ok(None)` when the
    /// server answers 404: it keeps no history.
    pub async fn notifications_since(
        &self,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Option<NotificationPage>, ApiError> {
        let mut q = vec![("limit", limit.to_string())];
        if let Some(c) = cursor {
            q.push(("since", c.to_string()));
        }
        let data = match self
            .call(Method::GET, "api/notifications", &q, None, false)
            .await
        {
            Ok(d) => d,
            Err(ApiError::Server { status: 404, .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        Ok(Some(parse_page(&data)?))
    }

    /// `POST /api/notifications/read`. `Ok(false)` when the server does not offer it.
    pub async fn mark_read(&self, ids: &[String]) -> Result<bool, ApiError> {
        let body = serde_json::json!({ "ids": ids });
        match self
            .call(
                Method::POST,
                "api/notifications/read",
                &[],
                Some(body),
                false,
            )
            .await
        {
            Ok(_) => Ok(true),
            Err(ApiError::Server {
                status: 404 | 405, ..
            }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The counts behind the login summary (protocol.md §5), per role.
    pub async fn summary_counts(&self, user: &User) -> Result<SummaryCounts, ApiError> {
        match user.role {
            Role::Annotator => {
                let tasks = self.my_tasks(None).await?;
                let (rejected, in_progress) = summary::count_annotator(&tasks);
                Ok(SummaryCounts {
                    role: user.role,
                    rejected,
                    in_progress,
                    pending_reviews: 0,
                    pending_skips: 0,
                })
            }
            _ => {
                let (tasks, skips) =
                    tokio::join!(self.submitted_tasks(), self.pending_skip_requests());
                Ok(SummaryCounts {
                    role: user.role,
                    rejected: 0,
                    in_progress: 0,
                    pending_reviews: count_u32(tasks?.len()),
                    pending_skips: count_u32(skips?.len()),
                })
            }
        }
    }
}

/// The error for a redirect that was not followed (another origin).
fn refused_redirect(resp: &reqwest::Response) -> ApiError {
    let to = resp
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|l| resp.url().join(l).ok())
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_else(|| "an unknown address".to_string());
    ApiError::BadUrl(format!(
        "the server redirects to another address ({}), and TaskBell sends credentials \
         only to the configured server; if you trust that address, use it as the server URL",
        crate::sanitize::terminal_line(&to)
    ))
}

/// Reads a response body, refusing one larger than `max` bytes, declared
/// (`Content-Length`) or streamed, before holding more than `max` in memory.
async fn read_capped(mut resp: reqwest::Response, max: usize) -> Result<Vec<u8>, ApiError> {
    let too_large = || {
        ApiError::BadResponse(format!(
            "the answer is larger than {} MiB; refused",
            max >> 20
        ))
    };
    let declared = resp.content_length();
    if declared.is_some_and(|n| n > max as u64) {
        return Err(too_large());
    }
    let hint = declared.map_or(0, |n| usize::try_from(n).unwrap_or(max));
    let mut body = Vec::with_capacity(hint.min(max).min(64 << 10));
    while let Some(chunk) = resp.chunk().await.map_err(classify)? {
        if body.len() + chunk.len() > max {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn count_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Turns a reqwest error into a user-level [`ApiError`].
fn classify(e: reqwest::Error) -> ApiError {
    classify_via(e, None)
}

/// As [`classify`], for a call that went through `proxy`: a failure to reach
/// the server is then told as a failure through that proxy.
fn classify_via(e: reqwest::Error, proxy: Option<&str>) -> ApiError {
    if e.is_timeout() {
        return ApiError::Timeout;
    }
    if e.is_builder() {
        return ApiError::BadUrl(e.to_string());
    }
    let chain = error_chain(&e);
    let lower = chain.to_lowercase();
    // What the user reads: the innermost cause, and where ("connection refused (host:port)").
    let cause = innermost(&e);
    let place = e
        .url()
        .and_then(|u| {
            u.host_str()
                .map(|h| format!("{h}:{}", u.port_or_known_default().unwrap_or(0)))
        })
        .unwrap_or_default();
    let told = if place.is_empty() {
        cause
    } else {
        format!("{cause} ({place})")
    };
    tracing::debug!(error = %chain, "request failed");
    // rustls is not named in the error types reqwest exposes; its messages are stable.
    const TLS_WORDS: [&str; 9] = [
        "certificate",
        "tls",
        "handshake",
        "unknownissuer",
        "invalid peer",
        "peer misbehaved",
        "corrupt message",
        "invalidcontenttype",
        "received fatal alert",
    ];
    if TLS_WORDS.iter().any(|w| lower.contains(w)) {
        return ApiError::Tls(crate::net::tls_failure(&told));
    }
    if let Some(p) = proxy {
        if !e.is_decode() {
            let cause = innermost(&e);
            return ApiError::Network(if lower.contains("unsuccessful") {
                format!("the proxy {p} refused the tunnel ({cause})")
            } else {
                format!("through the proxy {p}: {cause}")
            });
        }
    }
    if e.is_decode() {
        return ApiError::BadResponse(told);
    }
    ApiError::Network(told)
}

/// The innermost source's message (the actual cause).
fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// The error and its sources, innermost last, without repeats.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        let s = err.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = err.source();
    }
    parts.join(": ")
}

/// `Retry-After` as seconds or an HTTP date.
pub fn parse_retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    parse_retry_after_value(v, time::OffsetDateTime::now_utc())
}

fn parse_retry_after_value(v: &str, now: time::OffsetDateTime) -> Option<Duration> {
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Ok(f) = v.parse::<f64>() {
        if f.is_finite() && f >= 0.0 {
            return Some(Duration::from_secs_f64(f.min(86_400.0)));
        }
        return None;
    }
    let when =
        time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc2822).ok()?;
    let diff = when - now;
    if diff.is_negative() {
        Some(Duration::ZERO)
    } else {
        Some(Duration::try_from(diff).unwrap_or(Duration::ZERO))
    }
}

#[derive(Deserialize)]
struct Envelope {
    success: Option<bool>,
    #[serde(default)]
    data: Value,
    #[serde(default)]
    message: Option<Value>,
    #[serde(default)]
    detail: Option<Value>,
}

fn message_of(env: &Envelope) -> String {
    for v in [&env.message, &env.detail].into_iter().flatten() {
        match v {
            Value::String(s) if !s.is_empty() => return s.clone(),
            Value::Null => {}
            other => return other.to_string(),
        }
    }
    String::new()
}

fn interpret(
    status: StatusCode,
    retry_after: Option<Duration>,
    body: &[u8],
    login: bool,
) -> Result<Value, ApiError> {
    let env: Option<Envelope> = serde_json::from_slice(body).ok();
    let msg = env.as_ref().map(message_of).unwrap_or_default();
    if status == StatusCode::UNAUTHORIZED {
        return Err(ApiError::Unauthorized(if login {
            "wrong user name or password".to_string()
        } else if msg.is_empty() {
            "the session has expired or was revoked; sign in again".to_string()
        } else {
            format!("the session has expired or was revoked ({msg}); sign in again")
        }));
    }
    if status == StatusCode::FORBIDDEN {
        return Err(ApiError::Forbidden(if msg.is_empty() {
            "this account may not do that".to_string()
        } else {
            msg
        }));
    }
    if status == StatusCode::TOO_MANY_REQUESTS {
        return Err(ApiError::RateLimited { retry_after });
    }
    if !status.is_success() {
        let message = if msg.is_empty() {
            status.canonical_reason().unwrap_or("").to_string()
        } else {
            msg
        };
        return Err(ApiError::Server {
            status: status.as_u16(),
            message,
        });
    }
    let env = match env {
        Some(e) => e,
        None => {
            let preview: String = String::from_utf8_lossy(body).chars().take(80).collect();
            return Err(ApiError::BadResponse(format!(
                "not the expected JSON envelope (starts with {preview:?})"
            )));
        }
    };
    if env.success == Some(false) {
        let m = message_of(&env);
        if login {
            return Err(ApiError::Unauthorized(if m.is_empty() {
                "wrong user name or password".to_string()
            } else {
                m
            }));
        }
        return Err(ApiError::Server {
            status: status.as_u16(),
            message: if m.is_empty() {
                "request failed".to_string()
            } else {
                m
            },
        });
    }
    Ok(env.data)
}

fn parse_login(data: Value) -> Result<LoginOk, ApiError> {
    let token = data
        .get("access_token")
        .or_else(|| data.get("token"))
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::BadResponse("login answer has no access_token".into()))?;
    let expires_in = data.get("expires_in").and_then(Value::as_u64);
    let user = data
        .get("user")
        .cloned()
        .ok_or_else(|| ApiError::BadResponse("login answer has no user".into()))?;
    let user: User = parse_value(user, "user")?;
    Ok(LoginOk {
        token: SecretToken::new(token.to_string()),
        expires_in,
        user,
    })
}

/// Which answer a body is for ([`decode_answer`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// `POST /api/auth/login`.
    Login,
    /// `GET /api/auth/me`.
    User,
    /// `GET /api/tasks/my`, `GET /api/tasks`.
    Tasks,
    /// `GET /api/skip-requests`.
    SkipRequests,
    /// `GET /api/notifications`.
    Notifications,
}

/// Decodes fuzzer input as one REST answer: the first byte picks the HTTP status
/// (low three bits: 200, 201, 204, 400, 401, 404, 429, 500) and the endpoint
/// (the rest, modulo the five [`Expect`]s), the remaining bytes are the body.
/// Shared by the `envelope` fuzz target and its corpus replay; empty input is
/// `None`.
pub fn decode_fuzz_input(data: &[u8]) -> Option<Result<(), ApiError>> {
    const STATUSES: [u16; 8] = [200, 201, 204, 400, 401, 404, 429, 500];
    const EXPECT: [Expect; 5] = [
        Expect::Login,
        Expect::User,
        Expect::Tasks,
        Expect::SkipRequests,
        Expect::Notifications,
    ];
    let (&pick, body) = data.split_first()?;
    let status = STATUSES[usize::from(pick & 7)];
    let expect = EXPECT[usize::from(pick >> 3) % EXPECT.len()];
    Some(decode_answer(status, body, expect))
}

/// Decodes one REST answer exactly as the client does after reading it (status,
/// envelope, then the typed data), without any I/O: the entry point of the
/// envelope fuzzer (`fuzz/fuzz_targets/envelope.rs`) and of its corpus replay.
/// Never panics; every bad answer is an [`ApiError`].
pub fn decode_answer(status: u16, body: &[u8], expect: Expect) -> Result<(), ApiError> {
    let status = StatusCode::from_u16(status)
        .map_err(|_| ApiError::BadResponse(format!("HTTP status {status} is not valid")))?;
    let data = interpret(status, None, body, expect == Expect::Login)?;
    match expect {
        Expect::Login => parse_login(data).map(drop),
        Expect::User => parse_value::<User>(data, "user").map(drop),
        Expect::Tasks => parse_list::<Task>(data, "tasks").map(drop),
        Expect::SkipRequests => parse_list::<SkipRequest>(data, "skip requests").map(drop),
        Expect::Notifications => parse_page(&data).map(drop),
    }
}

fn parse_value<T: serde::de::DeserializeOwned>(v: Value, what: &str) -> Result<T, ApiError> {
    serde_json::from_value(v).map_err(|e| ApiError::BadResponse(format!("{what}: {e}")))
}

/// `data.list`, or `data` itself when it is an array. Entries that do not decode are
/// logged and skipped: one odd task must not hide the others.
fn parse_list<T: serde::de::DeserializeOwned>(data: Value, what: &str) -> Result<Vec<T>, ApiError> {
    let list = match data {
        Value::Array(a) => a,
        Value::Object(mut o) => match o.remove("list").or_else(|| o.remove("items")) {
            Some(Value::Array(a)) => a,
            Some(other) => {
                return Err(ApiError::BadResponse(format!(
                    "{what}: data.list is not a list but {}",
                    kind_of(&other)
                )));
            }
            None => {
                return Err(ApiError::BadResponse(format!(
                    "{what}: data.list is missing"
                )));
            }
        },
        other => {
            return Err(ApiError::BadResponse(format!(
                "{what}: data is {} instead of an object with a list",
                kind_of(&other)
            )));
        }
    };
    let mut out = Vec::with_capacity(list.len());
    for item in list {
        match serde_json::from_value::<T>(item) {
            Ok(t) => out.push(t),
            Err(e) => tracing::warn!(what, error = %e, "skipping an entry that does not decode"),
        }
    }
    Ok(out)
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn id_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn parse_page(data: &Value) -> Result<NotificationPage, ApiError> {
    let items: &[Value] = match data {
        Value::Array(a) => a,
        Value::Object(o) => match o.get("list") {
            Some(Value::Array(a)) => a,
            Some(Value::Null) | None => &[],
            Some(other) => {
                return Err(ApiError::BadResponse(format!(
                    "notifications: data.list is {}",
                    kind_of(other)
                )));
            }
        },
        Value::Null => &[],
        other => {
            return Err(ApiError::BadResponse(format!(
                "notifications: data is {}",
                kind_of(other)
            )));
        }
    };
    let next_cursor = data.get("next_cursor").and_then(id_text);
    let now = protocol::now_ms();
    let mut page = NotificationPage {
        list: Vec::with_capacity(items.len()),
        next_cursor,
        last_id: None,
    };
    for item in items {
        if let Some(id) = item.get("id").and_then(id_text) {
            page.last_id = Some(id);
        }
        match Notification::from_value(item, now) {
            Ok(n) => page.list.push(n),
            Err(e) => tracing::warn!(error = %e, "history entry does not decode; skipped"),
        }
    }
    Ok(page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_never_printed() {
        let t = SecretToken::new("abc.def".into());
        assert_eq!(format!("{t}"), "***");
        assert!(!format!("{t:?}").contains("abc"));
        let api = Api::new(Url::parse("http://127.0.0.1:1").unwrap())
            .unwrap()
            .with_token(t);
        assert!(!format!("{api:?}").contains("abc"), "{api:?}");
    }

    #[test]
    fn base_urls() {
        assert_eq!(
            parse_server_url("https://x.example/platform")
                .unwrap()
                .as_str(),
            "https://x.example/platform/"
        );
        assert_eq!(
            parse_server_url(" http://127.0.0.1:8000 ")
                .unwrap()
                .as_str(),
            "http://127.0.0.1:8000/"
        );
        let e = parse_server_url("localhost:8000").unwrap_err();
        assert!(matches!(e, ApiError::BadUrl(_)), "{e}");
        let e = parse_server_url("example.com").unwrap_err();
        assert!(e.to_string().contains("https://example.com"), "{e}");
        let e = parse_server_url("ftp://example.com").unwrap_err();
        assert!(e.to_string().contains("http or https"), "{e}");
        let api = Api::new(Url::parse("https://x.example/platform").unwrap()).unwrap();
        assert_eq!(
            api.url("/api/auth/login").unwrap().as_str(),
            "https://x.example/platform/api/auth/login"
        );
    }

    #[test]
    fn retry_after_forms() {
        let now = time::macros::datetime!(2015-10-21 07:28:00 UTC);
        assert_eq!(
            parse_retry_after_value("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after_value("1.5", now),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            parse_retry_after_value("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after_value("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after_value("soon", now), None);
        assert_eq!(parse_retry_after_value("-3", now), None);
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(parse_retry_after(&h), Some(Duration::from_secs(7)));
    }

    #[test]
    fn interpret_statuses() {
        let e = interpret(
            StatusCode::UNAUTHORIZED,
            None,
            br#"{"success":false,"message":"bad"}"#,
            true,
        )
        .unwrap_err();
        assert_eq!(
            e,
            ApiError::Unauthorized("wrong user name or password".into())
        );
        let e = interpret(StatusCode::UNAUTHORIZED, None, b"", false).unwrap_err();
        assert!(e.to_string().contains("sign in again"), "{e}");
        let e = interpret(
            StatusCode::TOO_MANY_REQUESTS,
            Some(Duration::from_secs(9)),
            b"",
            true,
        )
        .unwrap_err();
        assert_eq!(
            e,
            ApiError::RateLimited {
                retry_after: Some(Duration::from_secs(9))
            }
        );
        assert!(e.to_string().contains("9 s"), "{e}");
        let e = interpret(StatusCode::BAD_GATEWAY, None, b"<html>", false).unwrap_err();
        assert!(matches!(e, ApiError::Server { status: 502, .. }));
        assert!(e.to_string().contains("internal problem"), "{e}");
        assert!(e.is_transient());
        let e = interpret(StatusCode::OK, None, b"<html>oops", false).unwrap_err();
        assert!(matches!(e, ApiError::BadResponse(_)), "{e}");
        let e = interpret(
            StatusCode::OK,
            None,
            br#"{"success":false,"message":"nope"}"#,
            true,
        )
        .unwrap_err();
        assert_eq!(e, ApiError::Unauthorized("nope".into()));
        let v = interpret(
            StatusCode::OK,
            None,
            br#"{"success":true,"data":{"a":1}}"#,
            false,
        )
        .unwrap();
        assert_eq!(v["a"], 1);
        let e = interpret(
            StatusCode::FORBIDDEN,
            None,
            br#"{"detail":"admins only"}"#,
            false,
        )
        .unwrap_err();
        assert_eq!(e, ApiError::Forbidden("admins only".into()));
    }

    #[test]
    fn lists_skip_bad_entries_and_reject_bad_shapes() {
        let v = serde_json::json!({"list": [1, "x", {"a": 2}]});
        let out: Vec<serde_json::Map<String, Value>> = parse_list(v, "things").unwrap();
        assert_eq!(out.len(), 1);
        let e = parse_list::<Value>(serde_json::json!({"list": 3}), "things").unwrap_err();
        assert!(e.to_string().contains("not a list"), "{e}");
        let e = parse_list::<Value>(serde_json::json!("x"), "things").unwrap_err();
        assert!(matches!(e, ApiError::BadResponse(_)));
        let out: Vec<Value> = parse_list(serde_json::json!([1, 2]), "things").unwrap();
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn page_keeps_server_ids_and_skips_garbage() {
        let data = serde_json::json!({
            "list": [
                {"type": "task_reviewed", "id": "1-0", "title": "t", "content": "c", "timestamp": 1698739200},
                {"type": "system", "id": 17, "title": "m", "content": "x", "timestamp": 1698739201},
                "garbage"
            ],
            "next_cursor": "17"
        });
        let p = parse_page(&data).unwrap();
        assert_eq!(p.list.len(), 2);
        assert_eq!(p.last_id.as_deref(), Some("17"));
        assert_eq!(p.next_cursor.as_deref(), Some("17"));
        let p = parse_page(&serde_json::json!({"list": null})).unwrap();
        assert!(p.list.is_empty());
    }
}
