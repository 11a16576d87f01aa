//! The toast worker: one thread shows toasts and withdraws them, in order, from a
//! bounded queue, so a slow D-Bus never stalls the event loop; when a hung daemon
//! lets the queue fill up, the toasts that wait are folded into one.

use std::collections::VecDeque;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::{EngineError, Event, send_event};
use crate::delivery::{self, Toast, ToastCard};
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
    /// `shown`, for threads that wait without a runtime (the history writer).
    handed: std::sync::Mutex<u64>,
    handed_changed: std::sync::Condvar,
    lang: Lang,
}

/// One piece of work for the worker thread.
enum Job {
    Show(ToastCard),
    Withdraw(Vec<String>),
}

#[derive(Default)]
struct QueueState {
    pending: VecDeque<(u64, Job)>,
    pushed: u64,
    closed: bool,
}

impl ToastQueue {
    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `toast` (without actions beyond "Open"); see [`ToastQueue::push_card`].
    pub(super) fn push(&self, toast: Toast) -> u64 {
        self.push_card(ToastCard::plain(toast))
    }

    /// Queues `card`; when [`MAX_PENDING_TOASTS`] toasts already wait, they and
    /// it become one folded toast (shown first; the withdrawals that waited
    /// follow in their order). Returns the toast's sequence number.
    pub(super) fn push_card(&self, card: ToastCard) -> u64 {
        self.push_job(Job::Show(card))
    }

    /// Queues closing the toasts of `keys`, behind every toast queued before.
    pub(super) fn push_withdraw(&self, keys: Vec<String>) -> u64 {
        self.push_job(Job::Withdraw(keys))
    }

    fn push_job(&self, job: Job) -> u64 {
        let mut st = self.lock();
        st.pushed += 1;
        let seq = st.pushed;
        if st.closed {
            tracing::error!("the toast worker has stopped; toast dropped");
            return seq;
        }
        let waiting = st
            .pending
            .iter()
            .filter(|(_, j)| matches!(j, Job::Show(_)))
            .count();
        match job {
            Job::Show(card) if waiting >= MAX_PENDING_TOASTS => {
                let mut all: Vec<Toast> = Vec::new();
                let mut rest: VecDeque<(u64, Job)> = VecDeque::new();
                // The folded toast plays the first sound among those it stands for.
                let mut sound = None;
                for (s, j) in st.pending.drain(..) {
                    match j {
                        Job::Show(c) => {
                            sound = sound.or(c.sound);
                            all.push(c.toast);
                        }
                        other => rest.push_back((s, other)),
                    }
                }
                sound = sound.or(card.sound);
                all.push(card.toast);
                tracing::warn!(
                    waiting = all.len(),
                    "the notification daemon is slow; folding the toasts that wait"
                );
                let folded = ToastCard {
                    sound,
                    ..ToastCard::plain(delivery::fold_toasts(all, self.lang))
                };
                st.pending.push_back((seq, Job::Show(folded)));
                st.pending.extend(rest);
            }
            job => st.pending.push_back((seq, job)),
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

    /// The sequence number of the last job queued.
    pub(super) fn last_queued(&self) -> u64 {
        self.lock().pushed
    }

    /// Blocks (at most `limit`) until the job numbered `seq` was handed to the notifier,
    /// or the worker stopped. For threads without a runtime.
    pub(super) fn wait_handed(&self, seq: u64, limit: Duration) {
        let handed = self.handed.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = self
            .handed_changed
            .wait_timeout_while(handed, limit, |h| *h < seq)
            .unwrap_or_else(PoisonError::into_inner);
    }

    /// Says that the job numbered `seq` was handed to the notifier.
    fn mark_handed(&self, seq: u64) {
        self.shown.send_replace(seq);
        *self.handed.lock().unwrap_or_else(PoisonError::into_inner) = seq;
        self.handed_changed.notify_all();
    }

    /// The next job, waiting for one; `None` once closed and drained.
    fn pop(&self) -> Option<(u64, Job)> {
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

    /// The worker has ended: nobody waits for it any more.
    fn ended(&self) {
        *self.handed.lock().unwrap_or_else(PoisonError::into_inner) = u64::MAX;
        self.handed_changed.notify_all();
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
            handed: std::sync::Mutex::new(0),
            handed_changed: std::sync::Condvar::new(),
            lang,
        });
        let q = queue.clone();
        std::thread::Builder::new()
            .name("taskbell-toasts".to_string())
            .spawn(move || {
                let mut warned = false;
                while let Some((seq, job)) = q.pop() {
                    let card = match job {
                        Job::Show(card) => card,
                        Job::Withdraw(keys) => {
                            if let Err(e) = notifier.withdraw(&keys) {
                                tracing::warn!(error = %e, "a toast read elsewhere could not be withdrawn");
                            }
                            q.mark_handed(seq);
                            continue;
                        }
                    };
                    let toast = &card.toast;
                    let shown = notifier.show_card(&card);
                    // Announced here, once handed to the notifier (not before: the
                    // listener it wakes would compete with the call): toasts folded
                    // while they waited are one toast, one event, one Notify call.
                    send_event(&events, Event::Toast(toast.clone()));
                    q.mark_handed(seq);
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
                q.ended();
            })
            .map_err(|e| EngineError::Worker(e.to_string()))?;
        Ok(ToastWorker { queue })
    }

    pub(super) fn show(&self, card: ToastCard) {
        self.queue.push_card(card);
    }

    pub(super) fn withdraw(&self, keys: Vec<String>) {
        self.queue.push_withdraw(keys);
    }
}

impl Drop for ToastWorker {
    fn drop(&mut self) {
        // The thread shows what is queued, then ends.
        self.queue.close();
    }
}
