//! The history writer: one thread owns the SQLite connection and runs the
//! engine's history work in the order it was asked for, so the event loop never
//! blocks on a disk write and the writes keep their order (the rows of a page
//! before the cursor that covers them, one store before the next catch-up read).
//!
//! The loop awaits the answer of each store before it announces anything (a
//! notification is shown only once the history said it is new); reads such as
//! the cursor queue behind every write asked for before them.

use std::sync::mpsc;
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use crate::engine::connection::{Outcome, StoreReport, StoreTag};
use crate::history::{History, HistoryError, Retention};
use crate::protocol::{self, Notification};

type Job = Box<dyn FnOnce(&History) + Send>;

/// What the writer thread is asked.
enum Msg {
    Run(Job),
    /// Finish what was asked before, then end (work asked later is dropped).
    Stop,
}

/// A handle that queues work for the writer thread; cheap to clone.
#[derive(Clone)]
pub(super) struct HistoryHandle {
    jobs: mpsc::Sender<Msg>,
}

/// The writer thread and a handle to it; [`HistoryWriter::close`] waits until
/// everything queued is written.
pub(super) struct HistoryWriter {
    handle: HistoryHandle,
    thread: Option<JoinHandle<()>>,
}

impl HistoryWriter {
    /// Moves `history` onto a thread of its own.
    pub(super) fn start(history: History) -> std::io::Result<HistoryWriter> {
        let (tx, rx) = mpsc::channel::<Msg>();
        let thread = std::thread::Builder::new()
            .name("taskbell-history".to_string())
            .spawn(move || {
                for msg in rx {
                    match msg {
                        Msg::Run(job) => job(&history),
                        Msg::Stop => break,
                    }
                }
            })?;
        Ok(HistoryWriter {
            handle: HistoryHandle { jobs: tx },
            thread: Some(thread),
        })
    }

    /// The handle.
    pub(super) fn handle(&self) -> &HistoryHandle {
        &self.handle
    }

    /// Stops taking work and waits (on the blocking pool) until what is queued is done.
    pub(super) async fn close(mut self) {
        let _ = self.handle.jobs.send(Msg::Stop);
        if let Some(t) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
    }
}

impl HistoryHandle {
    /// Runs `f` on the writer thread after everything queued before it; `None`
    /// when the thread is gone.
    pub(super) async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&History) -> T + Send + 'static,
    ) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |h| {
            let _ = tx.send(f(h));
        });
        self.jobs.send(Msg::Run(job)).ok()?;
        rx.await.ok()
    }

    /// Queues `f` without waiting for it.
    pub(super) fn submit(&self, f: impl FnOnce(&History) + Send + 'static) {
        if self.jobs.send(Msg::Run(Box::new(f))).is_err() {
            tracing::warn!("the history writer has stopped; work dropped");
        }
    }

    /// Stores `notes` and then saves `cursor`; says what became of each.
    pub(super) async fn store(
        &self,
        notes: Vec<Notification>,
        cursor: Option<String>,
        tag: StoreTag,
    ) -> StoreReport {
        let fallback = notes.clone();
        match self
            .call(move |h| store(h, notes, cursor.as_deref(), tag))
            .await
        {
            Some(report) => report,
            // Better shown twice than lost.
            None => StoreReport {
                tag,
                outcomes: fallback
                    .into_iter()
                    .map(|n| (n, Outcome::Failed("the history writer has stopped".into())))
                    .collect(),
                one_by_one: false,
            },
        }
    }

    /// The catch-up cursor.
    pub(super) async fn cursor(&self) -> Result<Option<String>, String> {
        match self.call(|h| h.cursor().map_err(|e| e.to_string())).await {
            Some(r) => r,
            None => Err("the history writer has stopped".to_string()),
        }
    }

    /// Applies the retention (in the background).
    pub(super) fn prune(&self, retention: Retention) {
        self.submit(move |h| {
            if let Err(e) = h.prune(&retention, protocol::now_ms()) {
                tracing::warn!(error = %e, "cannot apply the history retention");
            }
        });
    }
}

/// Stores live notifications one by one and a catch-up page in one transaction
/// (one by one when that fails), then saves the cursor.
pub(super) fn store(
    history: &History,
    notes: Vec<Notification>,
    cursor: Option<&str>,
    tag: StoreTag,
) -> StoreReport {
    let one = |n: &Notification| match history.insert(n) {
        Ok(true) => Outcome::New,
        Ok(false) => Outcome::Duplicate,
        Err(e) => Outcome::Failed(e.to_string()),
    };
    let mut one_by_one = false;
    let outcomes: Vec<Outcome> = match tag {
        StoreTag::Live => notes.iter().map(one).collect(),
        StoreTag::CatchUp { .. } => match history.insert_many(&notes) {
            Ok(fresh) => fresh
                .into_iter()
                .map(|f| if f { Outcome::New } else { Outcome::Duplicate })
                .collect(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot store a catch-up page at once; one by one");
                one_by_one = true;
                notes.iter().map(one).collect()
            }
        },
    };
    if let Some(c) = cursor
        && let Err(e) = history.set_cursor(c)
    {
        tracing::warn!(error = %e, "cannot save the catch-up cursor");
    }
    StoreReport {
        tag,
        outcomes: notes.into_iter().zip(outcomes).collect(),
        one_by_one,
    }
}

/// Marks `keys` read; returns the error to tell, and the unread count.
pub(super) fn mark_read(history: &History, keys: &[String]) -> (Option<HistoryError>, Option<u64>) {
    let err = history.mark_read(keys).err();
    (err, history.unread_count().ok())
}

/// Marks everything read; returns the keys that were unread (the newest
/// 10,000), the error to tell, and the unread count.
pub(super) fn mark_all_read(history: &History) -> (Vec<String>, Option<HistoryError>, Option<u64>) {
    let q = crate::history::Query {
        unread_only: true,
        limit: 10_000,
        ..Default::default()
    };
    let ids = match history.list(&q) {
        Ok(records) => records.into_iter().map(|r| r.notification.key).collect(),
        Err(_) => Vec::new(),
    };
    let err = history.mark_all_read().err();
    (ids, err, history.unread_count().ok())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::protocol::Inbound;

    fn note(id: &str) -> Notification {
        let text = format!(r#"{{"type":"system","id":"{id}","title":"t","timestamp":1700000000}}"#);
        match protocol::decode(&text).unwrap() {
            Inbound::Notification(n) => n,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_store_reports_new_and_duplicates_and_saves_the_cursor_after_the_rows() {
        let h = History::open_in_memory().unwrap();
        let r = store(&h, vec![note("a")], None, StoreTag::Live);
        assert_eq!(r.outcomes[0].1, Outcome::New);
        assert_eq!(h.cursor().unwrap(), None, "no cursor asked for");
        let tag = StoreTag::CatchUp {
            conn: 1,
            last: true,
        };
        let r = store(&h, vec![note("a"), note("b"), note("b")], Some("b"), tag);
        let outcomes: Vec<Outcome> = r.outcomes.into_iter().map(|(_, o)| o).collect();
        assert_eq!(
            outcomes,
            [Outcome::Duplicate, Outcome::New, Outcome::Duplicate]
        );
        assert!(!r.one_by_one);
        assert_eq!(h.cursor().unwrap().as_deref(), Some("b"));
    }

    #[tokio::test]
    async fn the_writer_keeps_the_order_of_its_work() {
        let w = HistoryWriter::start(History::open_in_memory().unwrap()).unwrap();
        let h = w.handle().clone();
        let tag = StoreTag::CatchUp {
            conn: 1,
            last: false,
        };
        // Queued without waiting: the read still sees the store before it.
        let pending = h.store(vec![note("x")], Some("x".into()), tag);
        let r = pending.await;
        assert_eq!(r.outcomes[0].1, Outcome::New);
        assert_eq!(h.cursor().await.unwrap().as_deref(), Some("x"));
        let r = h.store(vec![note("x")], None, StoreTag::Live).await;
        assert_eq!(r.outcomes[0].1, Outcome::Duplicate);
        let (err, unread) = h.call(|h| mark_read(h, &["x".to_string()])).await.unwrap();
        assert!(err.is_none());
        assert_eq!(unread, Some(0));
        w.close().await;
        // Closed: stores still report (failed, so shown rather than lost).
        let r = h.store(vec![note("y")], None, StoreTag::Live).await;
        assert!(matches!(r.outcomes[0].1, Outcome::Failed(_)));
    }
}
