//! The local socket registry: which sockets are open on this instance, which channels they are
//! subscribed to, and delivery of bus messages to them.
//!
//! Channel reference counts live here; when a channel gains its first local socket or loses its
//! last one, the hub tells the Redis subscriber (if any) to SUBSCRIBE or UNSUBSCRIBE, from under
//! its lock so that the commands keep the order of the transitions.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::{Notify, mpsc, oneshot};

use crate::data::Role;

/// What a socket task is told to do.
#[derive(Debug)]
pub(crate) enum Outgoing {
    /// Send this text frame.
    Text(String),
    /// Send a close frame with this code and reason, then end.
    Close(u16, String),
    /// Drop the TCP connection without a close frame.
    Abort,
}

/// A message on the bus (in-process or Redis): the frame without `id`, and the notification id
/// per recipient user (its history entry id).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct BusMessage {
    pub frame: Value,
    #[serde(default)]
    pub ids: HashMap<String, String>,
}

/// A command for the Redis subscriber connection.
#[derive(Debug)]
pub(crate) enum SubCmd {
    Subscribe(Vec<String>, Option<oneshot::Sender<Result<(), String>>>),
    Unsubscribe(Vec<String>),
}

pub(crate) struct SocketInfo {
    pub user_id: String,
    pub username: String,
    pub role: Role,
    pub jti: String,
    pub iat_ms: i64,
    pub channels: Vec<String>,
}

struct SocketEntry {
    info: SocketInfo,
    tx: mpsc::UnboundedSender<Outgoing>,
    connected_at_ms: i64,
    last_seen_ms: Arc<AtomicI64>,
}

#[derive(Default)]
struct Inner {
    next_id: u64,
    sockets: BTreeMap<u64, SocketEntry>,
    channels: BTreeMap<String, HashSet<u64>>,
}

/// A registered socket: its id, its queue, and (with Redis) the subscription confirmation.
pub(crate) struct Registration {
    pub id: u64,
    pub rx: mpsc::UnboundedReceiver<Outgoing>,
    pub last_seen_ms: Arc<AtomicI64>,
    pub subscribed: Option<oneshot::Receiver<Result<(), String>>>,
}

/// Local sockets and channel reference counts.
pub(crate) struct Hub {
    inner: Mutex<Inner>,
    sub_tx: Option<mpsc::UnboundedSender<SubCmd>>,
    max_per_user: usize,
    emptied: Notify,
}

impl Hub {
    pub fn new(sub_tx: Option<mpsc::UnboundedSender<SubCmd>>, max_per_user: usize) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            sub_tx,
            max_per_user,
            emptied: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a socket; `Err(n)` when the user already has `n` (the maximum) sockets.
    pub fn register(&self, info: SocketInfo, now_ms: i64) -> Result<Registration, usize> {
        let mut g = self.lock();
        let n = g
            .sockets
            .values()
            .filter(|s| s.info.user_id == info.user_id)
            .count();
        if n >= self.max_per_user {
            return Err(n);
        }
        g.next_id += 1;
        let id = g.next_id;
        let mut fresh = Vec::new();
        for ch in &info.channels {
            let set = g.channels.entry(ch.clone()).or_default();
            if set.is_empty() {
                fresh.push(ch.clone());
            }
            set.insert(id);
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let last_seen_ms = Arc::new(AtomicI64::new(now_ms));
        g.sockets.insert(
            id,
            SocketEntry {
                info,
                tx,
                connected_at_ms: now_ms,
                last_seen_ms: last_seen_ms.clone(),
            },
        );
        // Even when no channel is new, wait for the subscriber to have processed the queue up to
        // here: an earlier SUBSCRIBE of the same channel may still be in flight.
        let subscribed = self.sub_tx.as_ref().map(|tx| {
            let (ack_tx, ack_rx) = oneshot::channel();
            if tx.send(SubCmd::Subscribe(fresh, Some(ack_tx))).is_err() {
                tracing::warn!("redis subscriber is gone; socket {id} gets no remote messages");
            }
            ack_rx
        });
        Ok(Registration {
            id,
            rx,
            last_seen_ms,
            subscribed,
        })
    }

    /// Removes a socket; channels without local sockets are unsubscribed.
    pub fn unregister(&self, id: u64) {
        let mut g = self.lock();
        let Some(entry) = g.sockets.remove(&id) else {
            return;
        };
        let mut gone = Vec::new();
        for ch in &entry.info.channels {
            if let Some(set) = g.channels.get_mut(ch) {
                set.remove(&id);
                if set.is_empty() {
                    g.channels.remove(ch);
                    gone.push(ch.clone());
                }
            }
        }
        if !gone.is_empty() {
            if let Some(tx) = &self.sub_tx {
                let _ = tx.send(SubCmd::Unsubscribe(gone));
            }
        }
        if g.sockets.is_empty() {
            self.emptied.notify_waiters();
        }
    }

    /// The channels that have local sockets now (the subscriber re-subscribes them after a
    /// reconnect).
    pub fn active_channels(&self) -> Vec<String> {
        self.lock().channels.keys().cloned().collect()
    }

    pub fn socket_count(&self) -> usize {
        self.lock().sockets.len()
    }

    /// Waits until no socket is registered.
    pub async fn wait_empty(&self) {
        loop {
            let notified = self.emptied.notified();
            if self.socket_count() == 0 {
                return;
            }
            notified.await;
        }
    }

    /// Delivers a message published on `channel` to the local sockets that should get it.
    /// Returns how many sockets it was queued for.
    pub fn dispatch(&self, channel: &str, msg: &BusMessage) -> usize {
        let g = self.lock();
        let targets: Vec<&SocketEntry> = if channel.starts_with("group_msg:") {
            // The chat hub: online members except the sender, i.e. the recipients of the message.
            g.sockets
                .values()
                .filter(|s| msg.ids.contains_key(&s.info.user_id))
                .collect()
        } else {
            match g.channels.get(channel) {
                Some(ids) => ids.iter().filter_map(|id| g.sockets.get(id)).collect(),
                None => Vec::new(),
            }
        };
        let mut n = 0;
        for s in targets {
            let mut frame = msg.frame.clone();
            if let (Some(obj), Some(id)) = (frame.as_object_mut(), msg.ids.get(&s.info.user_id)) {
                obj.insert("id".into(), Value::String(id.clone()));
            }
            if s.tx.send(Outgoing::Text(frame.to_string())).is_ok() {
                n += 1;
            }
        }
        n
    }

    /// Sends `cmd()` to every socket matching `pred`; returns how many.
    pub fn command_where(
        &self,
        pred: impl Fn(&SocketInfo) -> bool,
        cmd: impl Fn() -> Outgoing,
    ) -> usize {
        let g = self.lock();
        g.sockets
            .values()
            .filter(|s| pred(&s.info))
            .filter(|s| s.tx.send(cmd()).is_ok())
            .count()
    }

    /// A JSON description of the local sockets and channels (for the debug endpoint).
    pub fn snapshot(&self) -> (Vec<Value>, Vec<(String, usize)>) {
        let g = self.lock();
        let sockets = g
            .sockets
            .iter()
            .map(|(id, s)| {
                serde_json::json!({
                    "id": id,
                    "user_id": s.info.user_id,
                    "username": s.info.username,
                    "role": s.info.role.as_str(),
                    "channels": s.info.channels,
                    "connected_at": s.connected_at_ms,
                    "last_seen": s.last_seen_ms.load(Ordering::Relaxed),
                })
            })
            .collect();
        let channels = g
            .channels
            .iter()
            .map(|(c, s)| (c.clone(), s.len()))
            .collect();
        (sockets, channels)
    }
}
