//! A notification daemon of our own: `org.freedesktop.Notifications` on a private session bus,
//! timestamping every `Notify` call the moment it is dispatched. It shows nothing; it is the
//! finish line of the latency measurements (the same role dunst plays in the end-to-end tests,
//! with a clock attached).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::anyhow;
use tokio::sync::watch;
use zbus::zvariant::OwnedValue;

use crate::Result;

/// One `Notify` call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// When the daemon got it.
    pub at: Instant,
    /// `app_name`.
    pub app: String,
    /// `summary` (the title).
    pub summary: String,
    /// `body`.
    pub body: String,
}

#[derive(Debug, Default)]
struct Log {
    calls: Vec<Call>,
    first_by_summary: HashMap<String, usize>,
}

/// The calls seen so far, shared with the D-Bus handler.
#[derive(Debug, Clone)]
pub struct Calls {
    log: Arc<Mutex<Log>>,
    count: watch::Sender<usize>,
}

impl Calls {
    fn push(&self, call: Call) {
        let n = {
            let mut log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
            let idx = log.calls.len();
            log.first_by_summary
                .entry(call.summary.clone())
                .or_insert(idx);
            log.calls.push(call);
            log.calls.len()
        };
        self.count.send_replace(n);
    }

    /// How many calls so far.
    pub fn len(&self) -> usize {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .calls
            .len()
    }

    /// Whether no call came yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Calls from index `from` on.
    pub fn since(&self, from: usize) -> Vec<Call> {
        let log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        log.calls
            .get(from..)
            .map(<[Call]>::to_vec)
            .unwrap_or_default()
    }

    /// When the first call with this summary came.
    pub fn first_with_summary(&self, summary: &str) -> Option<Instant> {
        let log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        log.first_by_summary
            .get(summary)
            .and_then(|i| log.calls.get(*i))
            .map(|c| c.at)
    }

    /// Waits until a call with this summary came (bounded by `timeout`).
    pub async fn wait_summary(&self, summary: &str, timeout: Duration) -> Result<Instant> {
        let mut rx = self.count.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(at) = self.first_with_summary(summary) {
                return Ok(at);
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err(anyhow!("the notification daemon stopped")),
                Err(_) => {
                    return Err(anyhow!(
                        "no Notify with summary {summary:?} within {timeout:?}"
                    ));
                }
            }
        }
    }

    /// Waits until no call came for `quiet` (bounded by `timeout`); returns the count.
    pub async fn wait_quiet(&self, quiet: Duration, timeout: Duration) -> usize {
        let mut rx = self.count.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            rx.borrow_and_update();
            match tokio::time::timeout(quiet, rx.changed()).await {
                Err(_) => return self.len(),
                Ok(Err(_)) => return self.len(),
                Ok(Ok(())) => {
                    if tokio::time::Instant::now() >= deadline {
                        return self.len();
                    }
                }
            }
        }
    }
}

struct Server {
    calls: Calls,
    next_id: AtomicU32,
}

#[zbus::interface(name = "org.freedesktop.Notifications")]
impl Server {
    #[allow(clippy::too_many_arguments)]
    fn notify(
        &self,
        app_name: String,
        _replaces_id: u32,
        _app_icon: String,
        summary: String,
        body: String,
        _actions: Vec<String>,
        _hints: HashMap<String, OwnedValue>,
        _expire_timeout: i32,
    ) -> u32 {
        let at = Instant::now();
        self.calls.push(Call {
            at,
            app: app_name,
            summary,
            body,
        });
        self.next_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn get_capabilities(&self) -> Vec<String> {
        vec!["body".to_string(), "actions".to_string()]
    }

    fn get_server_information(&self) -> (String, String, String, String) {
        (
            "taskbell-bench".to_string(),
            "TaskBell".to_string(),
            env!("CARGO_PKG_VERSION").to_string(),
            "1.2".to_string(),
        )
    }

    fn close_notification(&self, _id: u32) {}
}

/// The daemon; it leaves the bus when dropped.
pub struct NotifyDaemon {
    _conn: zbus::Connection,
    calls: Calls,
}

impl std::fmt::Debug for NotifyDaemon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotifyDaemon")
            .field("calls", &self.calls.len())
            .finish()
    }
}

impl NotifyDaemon {
    /// Owns `org.freedesktop.Notifications` on the bus at `address`.
    pub async fn start(address: &str) -> Result<NotifyDaemon> {
        let (count, _) = watch::channel(0usize);
        let calls = Calls {
            log: Arc::new(Mutex::new(Log::default())),
            count,
        };
        let server = Server {
            calls: calls.clone(),
            next_id: AtomicU32::new(0),
        };
        let conn = zbus::connection::Builder::address(address)?
            .name("org.freedesktop.Notifications")?
            .serve_at("/org/freedesktop/Notifications", server)?
            .build()
            .await?;
        Ok(NotifyDaemon { _conn: conn, calls })
    }

    /// The calls it got.
    pub fn calls(&self) -> &Calls {
        &self.calls
    }
}
