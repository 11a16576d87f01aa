//! The notification bus and history: in-process by default, Redis Pub/Sub plus capped Redis
//! Streams with `--redis`.
//!
//! With Redis each instance keeps exactly one Pub/Sub connection (the subscriber task below) and
//! one multiplexed command connection. The subscriber PSUBSCRIBEs `group_msg:*`, SUBSCRIBEs the
//! control channel and, reference-counted by the hub, the `notify:*` channels its local sockets
//! need. A subscribe that fails drops the whole connection (nothing half-open is kept) and a new
//! one is made that subscribes everything again.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::auth::Auth;
use crate::hub::{BusMessage, Hub, Outgoing, SubCmd};
use crate::util::{NotifId, now_ms};

/// The channel instances use to tell each other about revoked tokens (not part of protocol.md §4).
pub(crate) const CONTROL_CHANNEL: &str = "taskbell:control";
/// The pattern of seed 004's chat hub.
pub(crate) const GROUP_PATTERN: &str = "group_msg:*";

/// A message on the control channel.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Control {
    RevokeJti { jti: String, exp: i64 },
    RevokeUser { user_id: String, cutoff_ms: i64 },
}

#[derive(Default)]
struct MemHistory {
    last: Option<NotifId>,
    users: HashMap<String, VecDeque<(NotifId, Value)>>,
}

/// The Redis side of the bus.
struct RedisBus {
    conn: ConnectionManager,
    subscriber_up: Arc<AtomicBool>,
}

enum Backend {
    Memory(Mutex<MemHistory>),
    Redis(RedisBus),
}

/// Publishing, history and read marks.
pub(crate) struct Bus {
    backend: Backend,
    cap: usize,
    read: Mutex<HashMap<String, HashSet<String>>>,
}

/// A failure talking to Redis while serving a request.
#[derive(Debug, thiserror::Error)]
#[error("redis: {0}")]
pub(crate) struct BusError(String);

impl From<redis::RedisError> for BusError {
    fn from(e: redis::RedisError) -> Self {
        BusError(e.to_string())
    }
}

fn history_key(user: &str) -> String {
    format!("notify:history:{user}")
}

impl Bus {
    pub fn memory(cap: usize) -> Self {
        Self {
            backend: Backend::Memory(Mutex::new(MemHistory::default())),
            cap,
            read: Mutex::new(HashMap::new()),
        }
    }

    pub fn redis(conn: ConnectionManager, subscriber_up: Arc<AtomicBool>, cap: usize) -> Self {
        Self {
            backend: Backend::Redis(RedisBus {
                conn,
                subscriber_up,
            }),
            cap,
            read: Mutex::new(HashMap::new()),
        }
    }

    pub fn is_redis(&self) -> bool {
        matches!(self.backend, Backend::Redis(_))
    }

    /// Appends `frame` to every recipient's history and returns the id per recipient.
    pub async fn append(
        &self,
        recipients: &[String],
        frame: &Value,
    ) -> Result<HashMap<String, String>, BusError> {
        match &self.backend {
            Backend::Memory(m) => {
                let mut h = m.lock().unwrap_or_else(|p| p.into_inner());
                let now = u64::try_from(now_ms()).unwrap_or(0);
                let id = match h.last {
                    Some(last) if last.ms >= now => NotifId {
                        ms: last.ms,
                        seq: last.seq + 1,
                    },
                    _ => NotifId { ms: now, seq: 0 },
                };
                h.last = Some(id);
                let mut out = HashMap::new();
                for r in recipients {
                    let q = h.users.entry(r.clone()).or_default();
                    q.push_back((id, frame.clone()));
                    while q.len() > self.cap {
                        q.pop_front();
                    }
                    out.insert(r.clone(), id.to_string());
                }
                Ok(out)
            }
            Backend::Redis(r) => {
                if recipients.is_empty() {
                    return Ok(HashMap::new());
                }
                let text = frame.to_string();
                let mut pipe = redis::pipe();
                for u in recipients {
                    pipe.cmd("XADD")
                        .arg(history_key(u))
                        .arg("MAXLEN")
                        .arg("~")
                        .arg(self.cap)
                        .arg("*")
                        .arg("frame")
                        .arg(&text);
                }
                let mut conn = r.conn.clone();
                let ids: Vec<String> = pipe.query_async(&mut conn).await?;
                Ok(recipients.iter().cloned().zip(ids).collect())
            }
        }
    }

    /// Publishes a message on `channel`. In-process it is handed to the hub directly; with Redis
    /// it goes through PUBLISH and reaches every instance (this one included) via its subscriber.
    pub async fn publish(&self, hub: &Hub, channel: &str, msg: BusMessage) -> Result<(), BusError> {
        match &self.backend {
            Backend::Memory(_) => {
                hub.dispatch(channel, &msg);
                Ok(())
            }
            Backend::Redis(r) => {
                let text = serde_json::to_string(&msg).map_err(|e| BusError(e.to_string()))?;
                let mut conn = r.conn.clone();
                let _: i64 = conn.publish(channel, text).await?;
                Ok(())
            }
        }
    }

    /// Tells every instance (this one included) about a revocation.
    pub async fn control(&self, hub: &Hub, auth: &Auth, c: Control) -> Result<(), BusError> {
        match &self.backend {
            Backend::Memory(_) => {
                apply_control(hub, auth, &c);
                Ok(())
            }
            Backend::Redis(r) => {
                let mut conn = r.conn.clone();
                // Persist, so that instances started later know it too.
                match &c {
                    Control::RevokeJti { jti, exp } => {
                        let _: i64 = conn.hset("taskbell:revoked:jti", jti, *exp).await?;
                    }
                    Control::RevokeUser { user_id, cutoff_ms } => {
                        let _: i64 = conn
                            .hset("taskbell:revoked:users", user_id, *cutoff_ms)
                            .await?;
                    }
                }
                // Apply locally at once (the request that revoked must see it), then tell the rest.
                apply_control(hub, auth, &c);
                let text = serde_json::to_string(&c).map_err(|e| BusError(e.to_string()))?;
                let _: i64 = conn.publish(CONTROL_CHANNEL, text).await?;
                Ok(())
            }
        }
    }

    /// The caller's history newer than `since`, oldest first, at most `limit`.
    pub async fn since(
        &self,
        user: &str,
        since: Option<NotifId>,
        limit: usize,
    ) -> Result<Vec<Value>, BusError> {
        let mut list: Vec<Value> = match &self.backend {
            Backend::Memory(m) => {
                let h = m.lock().unwrap_or_else(|p| p.into_inner());
                h.users
                    .get(user)
                    .map(|q| {
                        q.iter()
                            .filter(|(id, _)| since.is_none_or(|s| *id > s))
                            .take(limit)
                            .map(|(id, f)| with_id(f.clone(), &id.to_string()))
                            .collect()
                    })
                    .unwrap_or_default()
            }
            Backend::Redis(r) => {
                let start = match since {
                    Some(s) => format!("({s}"),
                    None => "-".to_owned(),
                };
                let mut conn = r.conn.clone();
                let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
                    .arg(history_key(user))
                    .arg(start)
                    .arg("+")
                    .arg("COUNT")
                    .arg(limit)
                    .query_async(&mut conn)
                    .await?;
                reply
                    .ids
                    .into_iter()
                    .filter_map(|e| {
                        let text: String = e.get("frame")?;
                        match serde_json::from_str::<Value>(&text) {
                            Ok(v) => Some(with_id(v, &e.id)),
                            Err(err) => {
                                tracing::warn!(id = %e.id, "history entry is not JSON, skipped: {err}");
                                None
                            }
                        }
                    })
                    .collect()
            }
        };
        let read = self.read.lock().unwrap_or_else(|p| p.into_inner());
        let mine = read.get(user);
        for v in &mut list {
            let is_read = v
                .get("id")
                .and_then(Value::as_str)
                .is_some_and(|id| mine.is_some_and(|m| m.contains(id)));
            if let Some(o) = v.as_object_mut() {
                o.insert("read".into(), Value::Bool(is_read));
            }
        }
        Ok(list)
    }

    /// Marks notification ids read for a user; returns how many were new.
    pub fn mark_read(&self, user: &str, ids: &[String]) -> usize {
        let mut read = self.read.lock().unwrap_or_else(|p| p.into_inner());
        let set = read.entry(user.to_owned()).or_default();
        ids.iter().filter(|id| set.insert((*id).clone())).count()
    }

    /// Debug information: backend, subscriber state and Redis' own subscriber counts.
    pub async fn debug(&self, channels: &[(String, usize)]) -> Value {
        match &self.backend {
            Backend::Memory(_) => serde_json::json!({"backend": "memory"}),
            Backend::Redis(r) => {
                let mut conn = r.conn.clone();
                let mut cmd = redis::cmd("PUBSUB");
                cmd.arg("NUMSUB");
                for (c, _) in channels {
                    cmd.arg(c);
                }
                let numsub: Result<Vec<(String, i64)>, _> = cmd.query_async(&mut conn).await;
                let numpat: Result<i64, _> = redis::cmd("PUBSUB")
                    .arg("NUMPAT")
                    .query_async(&mut conn)
                    .await;
                serde_json::json!({
                    "backend": "redis",
                    "subscriber_connected": r.subscriber_up.load(Ordering::Relaxed),
                    "subscriber_connections": 1,
                    "redis_numsub": numsub.map(|v| v.into_iter().collect::<HashMap<_, _>>()).map_err(|e| e.to_string()).ok(),
                    "redis_numpat": numpat.ok(),
                })
            }
        }
    }
}

fn with_id(mut v: Value, id: &str) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.insert("id".into(), Value::String(id.to_owned()));
    }
    v
}

/// Applies a revocation: remember it and close the matching local sockets with 4001.
pub(crate) fn apply_control(hub: &Hub, auth: &Auth, c: &Control) {
    let closed = match c {
        Control::RevokeJti { jti, exp } => {
            auth.revoke_jti(jti, *exp);
            hub.command_where(
                |s| s.jti == *jti,
                || Outgoing::Close(4001, "token revoked".into()),
            )
        }
        Control::RevokeUser { user_id, cutoff_ms } => {
            auth.revoke_user(user_id, *cutoff_ms);
            hub.command_where(
                |s| s.user_id == *user_id && s.iat_ms <= *cutoff_ms,
                || Outgoing::Close(4001, "token revoked".into()),
            )
        }
    };
    if closed > 0 {
        tracing::info!(?c, closed, "revocation closed local sockets");
    }
}

/// Loads the revocations stored in Redis into `auth`.
pub(crate) async fn load_revocations(
    conn: &mut ConnectionManager,
    auth: &Auth,
) -> Result<(), redis::RedisError> {
    let jtis: HashMap<String, i64> = conn.hgetall("taskbell:revoked:jti").await?;
    let now = now_ms() / 1000;
    for (jti, exp) in jtis {
        if exp >= now {
            auth.revoke_jti(&jti, exp);
        }
    }
    let users: HashMap<String, i64> = conn.hgetall("taskbell:revoked:users").await?;
    for (u, cut) in users {
        auth.revoke_user(&u, cut);
    }
    Ok(())
}

/// The one Pub/Sub connection of this instance. Runs until `stop` is cancelled.
pub(crate) async fn run_subscriber(
    client: redis::Client,
    mut cmds: mpsc::UnboundedReceiver<SubCmd>,
    hub: Arc<Hub>,
    auth: Arc<Auth>,
    up: Arc<AtomicBool>,
    stop: CancellationToken,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let pubsub = tokio::select! {
            _ = stop.cancelled() => return,
            r = client.get_async_pubsub() => r,
        };
        match pubsub {
            Ok(pubsub) => {
                let (mut sink, mut stream) = pubsub.split();
                let mut channels = hub.active_channels();
                channels.push(CONTROL_CHANNEL.to_owned());
                let setup = async {
                    sink.psubscribe(GROUP_PATTERN).await?;
                    sink.subscribe(&channels).await
                };
                if let Err(e) = setup.await {
                    // Dropping sink and stream closes this connection: nothing leaks.
                    tracing::warn!("redis subscribe failed, dropping the connection: {e}");
                } else {
                    tracing::info!(channels = channels.len(), "redis subscriber connected");
                    up.store(true, Ordering::Relaxed);
                    backoff = Duration::from_millis(100);
                    loop {
                        tokio::select! {
                            _ = stop.cancelled() => {
                                up.store(false, Ordering::Relaxed);
                                return;
                            }
                            cmd = cmds.recv() => match cmd {
                                None => {
                                    up.store(false, Ordering::Relaxed);
                                    return;
                                }
                                Some(SubCmd::Subscribe(chs, ack)) => {
                                    let r = if chs.is_empty() { Ok(()) } else { sink.subscribe(&chs).await };
                                    let failed = r.is_err();
                                    if let Some(ack) = ack {
                                        let _ = ack.send(r.map_err(|e| e.to_string()));
                                    }
                                    if failed {
                                        tracing::warn!("redis SUBSCRIBE failed; reconnecting the subscriber");
                                        break;
                                    }
                                }
                                Some(SubCmd::Unsubscribe(chs)) => {
                                    if let Err(e) = sink.unsubscribe(&chs).await {
                                        tracing::warn!("redis UNSUBSCRIBE failed; reconnecting the subscriber: {e}");
                                        break;
                                    }
                                }
                            },
                            msg = stream.next() => match msg {
                                Some(m) => on_redis_message(&hub, &auth, &m),
                                None => {
                                    tracing::warn!("redis subscriber connection lost");
                                    break;
                                }
                            },
                        }
                    }
                    up.store(false, Ordering::Relaxed);
                }
                drop(sink);
                drop(stream);
            }
            Err(e) => tracing::warn!("cannot open the redis subscriber connection: {e}"),
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

fn on_redis_message(hub: &Hub, auth: &Auth, m: &redis::Msg) {
    let channel = m.get_channel_name();
    let payload = m.get_payload_bytes();
    if channel == CONTROL_CHANNEL {
        match serde_json::from_slice::<Control>(payload) {
            Ok(c) => apply_control(hub, auth, &c),
            Err(e) => tracing::warn!("bad control message ignored: {e}"),
        }
        return;
    }
    match serde_json::from_slice::<BusMessage>(payload) {
        Ok(msg) => {
            let n = hub.dispatch(channel, &msg);
            tracing::debug!(channel, sockets = n, "delivered");
        }
        Err(e) => tracing::warn!(
            channel,
            "message that is not a TaskBell bus message ignored: {e}"
        ),
    }
}
