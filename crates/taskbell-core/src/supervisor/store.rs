//! The history writer: one thread owns the SQLite connection and runs the
//! engine's history work in the order it was asked for, so the event loop never
//! blocks on a disk write and the writes keep their order (the rows of a page
//! before the cursor that covers them, one store before the next catch-up read).
//!
//! The loop awaits the answer of each store before it announces anything (a
//! notification is shown only once the history said it is new), except for a live
//! notification already known to be new: that one is shown first, and its store
//! starts once its toast was handed to the notifier (bounded), on a thread of lower
//! priority, so the write never competes with the toast for a core. Reads such as
//! the cursor queue behind every write asked for before them.

use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::oneshot;

use super::toasts::ToastQueue;
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
    /// How long a shown notification's store waits for its toast
    /// ([`TOAST_BEFORE_STORE`]; longer in tests that check the order).
    toast_wait: Duration,
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
        HistoryWriter::start_with(history, TOAST_BEFORE_STORE)
    }

    /// [`HistoryWriter::start`], with the longest wait of a store for its toast.
    fn start_with(history: History, toast_wait: Duration) -> std::io::Result<HistoryWriter> {
        let (tx, rx) = mpsc::channel::<Msg>();
        let thread = std::thread::Builder::new()
            .name("taskbell-history".to_string())
            .spawn(move || {
                lower_priority();
                write_loop(&history, &rx)
            })?;
        Ok(HistoryWriter {
            handle: HistoryHandle {
                jobs: tx,
                toast_wait,
            },
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

/// The writer thread's nice value on Linux: its disk work is bookkeeping that follows
/// a toast already shown, so it gives way to the loop, the toast worker and the
/// notification daemon when they want a core (on two cores the delivery latency's
/// p50 went from 1.3–2.2× the floor to 1.15–1.35×, docs/benchmarks.md); at nice 10 it
/// still gets about a tenth of a busy core, so nothing waits for long.
#[cfg(target_os = "linux")]
const WRITER_NICE: i32 = 10;

/// Lowers the calling thread's priority to [`WRITER_NICE`] (Linux, where a thread has
/// a nice value of its own; elsewhere nothing). A refusal is logged and changes nothing.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: setpriority takes no pointer; on Linux, PRIO_PROCESS with who = 0 is the
        // calling thread only.
        #[allow(unsafe_code)]
        let r = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, WRITER_NICE) };
        if r != 0 {
            tracing::debug!(
                error = %std::io::Error::last_os_error(),
                "the history writer keeps its priority"
            );
        }
    }
}

/// How long a shown notification's store waits for its toast to be handed to the
/// notifier (a slow or hung daemon must not hold the history up).
const TOAST_BEFORE_STORE: Duration = Duration::from_millis(50);

/// How long the writer waits, after its last job, before it checkpoints the WAL:
/// past the burst that the jobs belong to, off the delivery path.
const CHECKPOINT_WHEN_IDLE: Duration = Duration::from_millis(250);

/// Jobs after which the writer checkpoints even if it never falls idle (a steady
/// stream must not grow the WAL without bound); about 7 WAL pages a notification.
const CHECKPOINT_EVERY_JOBS: u32 = 500;

/// The writer thread: runs the jobs in order; checkpoints the WAL once it has been
/// idle for [`CHECKPOINT_WHEN_IDLE`] after writing (never on a timer while nothing is
/// written, so an idle engine does not wake for it), every [`CHECKPOINT_EVERY_JOBS`]
/// jobs, and on the way out.
fn write_loop(history: &History, rx: &mpsc::Receiver<Msg>) {
    let deferred = match history.defer_checkpoints() {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(error = %e, "cannot defer the history's checkpoints; SQLite keeps them");
            false
        }
    };
    let checkpoint = || {
        if let Err(e) = history.checkpoint() {
            tracing::debug!(error = %e, "history checkpoint");
        }
    };
    let mut since_checkpoint: u32 = 0;
    loop {
        let msg = if deferred && since_checkpoint > 0 {
            match rx.recv_timeout(CHECKPOINT_WHEN_IDLE) {
                Ok(msg) => msg,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    checkpoint();
                    since_checkpoint = 0;
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        } else {
            match rx.recv() {
                Ok(msg) => msg,
                Err(_) => break,
            }
        };
        match msg {
            Msg::Run(job) => {
                job(history);
                since_checkpoint += 1;
                if since_checkpoint >= CHECKPOINT_EVERY_JOBS {
                    checkpoint();
                    since_checkpoint = 0;
                }
            }
            Msg::Stop => break,
        }
    }
    if deferred && since_checkpoint > 0 {
        checkpoint();
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
            None => writer_stopped(tag, fallback),
        }
    }

    /// As [`HistoryHandle::store`], without waiting: the report is sent to `reports`
    /// once written (at once, all failed, when the writer has stopped). The write
    /// starts only once the toast `after` names was handed to the notifier (at most
    /// [`TOAST_BEFORE_STORE`] later): the writer's disk work does not compete for a
    /// core with the toast it follows.
    pub(super) fn store_then(
        &self,
        notes: Vec<Notification>,
        cursor: Option<String>,
        tag: StoreTag,
        reports: tokio::sync::mpsc::UnboundedSender<StoreReport>,
        after: (Arc<ToastQueue>, u64),
    ) {
        let fallback = notes.clone();
        let sent = reports.clone();
        let wait = self.toast_wait;
        let job: Job = Box::new(move |h| {
            let (toasts, seq) = after;
            toasts.wait_handed(seq, wait);
            let _ = sent.send(store(h, notes, cursor.as_deref(), tag));
        });
        if self.jobs.send(Msg::Run(job)).is_err() {
            let _ = reports.send(writer_stopped(tag, fallback));
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
    // Live frames and catch-up pages alike: the rows and the cursor in one transaction
    // (one commit on the delivery path). When that fails, each row on its own, so one
    // bad row costs only itself, and then the cursor.
    let (outcomes, one_by_one) = match history.store_batch(&notes, cursor) {
        Ok(fresh) => (
            fresh
                .into_iter()
                .map(|f| if f { Outcome::New } else { Outcome::Duplicate })
                .collect::<Vec<_>>(),
            false,
        ),
        Err(e) => {
            tracing::warn!(error = %e, n = notes.len(), "cannot store the notifications at once; one by one");
            let outcomes = notes.iter().map(one).collect::<Vec<_>>();
            if let Some(c) = cursor
                && let Err(e) = history.set_cursor(c)
            {
                tracing::warn!(error = %e, "cannot save the catch-up cursor");
            }
            (outcomes, matches!(tag, StoreTag::CatchUp { .. }))
        }
    };
    StoreReport {
        tag,
        outcomes: notes.into_iter().zip(outcomes).collect(),
        one_by_one,
    }
}

/// The report of a store the writer could not take: every notification failed.
fn writer_stopped(tag: StoreTag, notes: Vec<Notification>) -> StoreReport {
    StoreReport {
        tag,
        outcomes: notes
            .into_iter()
            .map(|n| (n, Outcome::Failed("the history writer has stopped".into())))
            .collect(),
        one_by_one: false,
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

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn on_linux_the_writer_thread_runs_at_a_lower_priority() {
        let w = HistoryWriter::start(History::open_in_memory().unwrap()).unwrap();
        // Read on the writer thread itself, by a job: a job runs only after the thread
        // has set its priority, so this cannot race the thread's start (reading
        // /proc/self/task from here could, and once did on CI).
        let stat = w
            .handle()
            .call(|_| std::fs::read_to_string("/proc/thread-self/stat"))
            .await
            .expect("the writer runs jobs")
            .expect("the writer thread's stat");
        // The nice value: field 19 of the stat, after the ")" that ends the name.
        let nice = stat.rsplit_once(')').and_then(|(name, after)| {
            assert!(name.ends_with("taskbell-histor"), "{name}");
            after.split_whitespace().nth(16)?.parse::<i32>().ok()
        });
        assert_eq!(nice, Some(WRITER_NICE));
        w.close().await;
    }

    /// A notifier whose `show` waits until the gate opens (60 s at most).
    #[derive(Default)]
    struct Gate {
        open: std::sync::Mutex<bool>,
        changed: std::sync::Condvar,
    }

    impl Gate {
        fn set(&self, open: bool) {
            *self.open.lock().unwrap() = open;
            self.changed.notify_all();
        }
    }

    impl crate::notifier::Notifier for Gate {
        fn show(&self, _: &crate::delivery::Toast) -> Result<(), crate::notifier::NotifyError> {
            let open = self.open.lock().unwrap();
            let _ = self
                .changed
                .wait_timeout_while(open, Duration::from_secs(60), |o| !*o)
                .unwrap();
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_shown_notifications_store_waits_for_its_toast_but_not_for_a_hung_daemon() {
        let gate = Arc::new(Gate::default());
        let (events, _keep) = tokio::sync::mpsc::channel(16);
        let worker =
            super::super::toasts::ToastWorker::start(gate.clone(), events, crate::i18n::Lang::En)
                .unwrap();
        let (reports, mut rx) = tokio::sync::mpsc::unbounded_channel();

        // The order: with a wait far longer than this check, a store that comes before
        // its toast is the writer not waiting (never a slow machine).
        let w =
            HistoryWriter::start_with(History::open_in_memory().unwrap(), Duration::from_secs(60))
                .unwrap();
        let seq = worker.queue.push(crate::delivery::Toast::for_tests("t"));
        let after = (worker.queue.clone(), seq);
        w.handle().store_then(
            vec![note("a")],
            None,
            StoreTag::LiveShown,
            reports.clone(),
            after,
        );
        let early = tokio::time::timeout(Duration::from_millis(100), rx.recv()).await;
        assert!(early.is_err(), "written before its toast was handed over");
        // The daemon answers: the store follows.
        gate.set(true);
        let r = tokio::time::timeout(Duration::from_secs(30), rx.recv()).await;
        let r = r.expect("stored once the toast was shown").unwrap();
        assert_eq!(r.outcomes[0].1, Outcome::New);
        w.close().await;

        // The bound, as the engine has it: a hung daemon holds the store up for
        // TOAST_BEFORE_STORE, and then the store goes ahead.
        let w = HistoryWriter::start(History::open_in_memory().unwrap()).unwrap();
        gate.set(false);
        let seq = worker.queue.push(crate::delivery::Toast::for_tests("t"));
        let t0 = std::time::Instant::now();
        let after = (worker.queue.clone(), seq);
        w.handle()
            .store_then(vec![note("b")], None, StoreTag::LiveShown, reports, after);
        // The gate holds the toast until it is opened: a store now is the bound at work.
        let r = tokio::time::timeout(Duration::from_secs(30), rx.recv()).await;
        let r = r.expect("stored although the toast hangs").unwrap();
        assert_eq!(r.outcomes[0].1, Outcome::New);
        assert!(t0.elapsed() >= TOAST_BEFORE_STORE, "{:?}", t0.elapsed());
        gate.set(true);
        w.close().await;
    }

    /// Rows in the database file alone, without its WAL: what a checkpoint has copied
    /// back. (A copy of the main file, opened on its own, sees no WAL.)
    fn rows_checkpointed(db: &std::path::Path) -> i64 {
        let dir = tempfile::tempdir().unwrap();
        let copy = dir.path().join("copy.db");
        std::fs::copy(db, &copy).unwrap();
        let c = rusqlite::Connection::open(&copy).unwrap();
        c.query_row("SELECT count(*) FROM notifications", [], |r| r.get(0))
            .unwrap_or(0)
    }

    #[test]
    fn deferred_checkpoints_stay_off_the_commits_until_asked_for() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("history.db");
        let h = History::open(&db).unwrap();
        h.checkpoint().unwrap();
        h.defer_checkpoints().unwrap();
        // 400 live stores, one commit each: well past the 1,000 WAL pages at which
        // SQLite would checkpoint inside a commit.
        for i in 0..400 {
            let id = format!("n{i}");
            let r = store(&h, vec![note(&id)], Some(&id), StoreTag::Live);
            assert_eq!(r.outcomes[0].1, Outcome::New);
        }
        assert_eq!(rows_checkpointed(&db), 0, "no commit checkpointed");
        assert_eq!(h.checkpoint().unwrap(), 0, "nothing left behind");
        assert_eq!(rows_checkpointed(&db), 400);
        assert_eq!(h.cursor().unwrap().as_deref(), Some("n399"));
    }

    #[tokio::test]
    async fn the_writer_checkpoints_once_it_falls_idle() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("history.db");
        let h = History::open(&db).unwrap();
        h.checkpoint().unwrap();
        let w = HistoryWriter::start(h).unwrap();
        let r = w
            .handle()
            .store(vec![note("a"), note("b")], Some("b".into()), StoreTag::Live)
            .await;
        assert!(r.outcomes.iter().all(|(_, o)| *o == Outcome::New));
        let mut waited = Duration::ZERO;
        while rows_checkpointed(&db) < 2 {
            assert!(waited < Duration::from_secs(30), "never checkpointed");
            tokio::time::sleep(Duration::from_millis(50)).await;
            waited += Duration::from_millis(50);
        }
        w.close().await;
    }
}
