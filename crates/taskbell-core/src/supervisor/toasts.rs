//! The toast worker: one thread shows toasts in order from a bounded queue, so a
//! slow D-Bus never stalls the event loop; when a hung daemon lets the queue fill
//! up, what waits is folded into one toast.

use std::collections::VecDeque;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::{EngineError, Event, send_event};
use crate::delivery::{self, Toast};
use crate::i18n::Lang;
use crate::notifier::{Notifier, NotifyError};

/// Toasts waiting for the notifier at most; one more folds everything waiting
/// into one "N new notifications" toast (a hung notification daemon must not
/// make the queue, and the memory, grow without bound).
const MAX_PENDING_TOASTS: usize = 16;

/// The toasts waiting for the worker thread: bounded, folded when full. Each
/// push gets a sequence number; `shown` is the highest one handed to the
/// notifier, so a caller can wait until its toast is on screen.
pub(super) struct ToastQueue {
    state: std::sync::Mutex<QueueState>,
    ready: std::sync::Condvar,
    shown: watch::Sender<u64>,
    lang: Lang,
}

#[derive(Default)]
struct QueueState {
    pending: VecDeque<(u64, Toast)>,
    pushed: u64,
    closed: bool,
}

impl ToastQueue {
    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `toast`; when [`MAX_PENDING_TOASTS`] already wait, they and it
    /// become one folded toast. Returns the toast's sequence number.
    pub(super) fn push(&self, toast: Toast) -> u64 {
        let mut st = self.lock();
        st.pushed += 1;
        let seq = st.pushed;
        if st.closed {
            tracing::error!("the toast worker has stopped; toast dropped");
            return seq;
        }
        if st.pending.len() >= MAX_PENDING_TOASTS {
            let mut all: Vec<Toast> = st.pending.drain(..).map(|(_, t)| t).collect();
            all.push(toast);
            tracing::warn!(
                waiting = all.len(),
                "the notification daemon is slow; folding the toasts that wait"
            );
            st.pending
                .push_back((seq, delivery::fold_toasts(all, self.lang)));
        } else {
            st.pending.push_back((seq, toast));
        }
        drop(st);
        self.ready.notify_one();
        seq
    }

    /// Waits (at most `limit`) until the toast numbered `seq` was handed to the notifier.
    pub(super) async fn shown(&self, seq: u64, limit: Duration) {
        let mut rx = self.shown.subscribe();
        let _ = tokio::time::timeout(limit, rx.wait_for(|s| *s >= seq)).await;
    }

    /// The next toast, waiting for one; `None` once closed and drained.
    fn pop(&self) -> Option<(u64, Toast)> {
        let mut st = self.lock();
        loop {
            if let Some(t) = st.pending.pop_front() {
                return Some(t);
            }
            if st.closed {
                return None;
            }
            st = self.ready.wait(st).unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }
}

/// Shows toasts one after another on a thread of its own, from a bounded queue.
pub(super) struct ToastWorker {
    pub(super) queue: Arc<ToastQueue>,
}

impl ToastWorker {
    pub(super) fn start(
        notifier: Arc<dyn Notifier>,
        events: mpsc::Sender<Event>,
        lang: Lang,
    ) -> Result<ToastWorker, EngineError> {
        let queue = Arc::new(ToastQueue {
            state: std::sync::Mutex::new(QueueState::default()),
            ready: std::sync::Condvar::new(),
            shown: watch::channel(0).0,
            lang,
        });
        let q = queue.clone();
        std::thread::Builder::new()
            .name("taskbell-toasts".to_string())
            .spawn(move || {
                let mut warned = false;
                while let Some((seq, toast)) = q.pop() {
                    // Announced here, as handed to the notifier: toasts folded while
                    // they waited are one toast, one event, one Notify call.
                    send_event(&events, Event::Toast(toast.clone()));
                    let shown = notifier.show(&toast);
                    q.shown.send_replace(seq);
                    match shown {
                        Ok(()) => warned = false,
                        Err(e) => {
                            if warned {
                                tracing::debug!(error = %e, title = %toast.title, "toast not shown");
                            } else {
                                warned = true;
                                tracing::warn!(error = %e, title = %toast.title, "toast not shown");
                                let message = match &e {
                                    NotifyError::NoDaemon(_) => e.to_string(),
                                    NotifyError::Failed(_) => e.to_string(),
                                };
                                let _ = events.try_send(Event::Error { message });
                            }
                        }
                    }
                }
            })
            .map_err(|e| EngineError::Worker(e.to_string()))?;
        Ok(ToastWorker { queue })
    }

    pub(super) fn show(&self, toast: Toast) {
        self.queue.push(toast);
    }
}

impl Drop for ToastWorker {
    fn drop(&mut self) {
        // The thread shows what is queued, then ends.
        self.queue.close();
    }
}
