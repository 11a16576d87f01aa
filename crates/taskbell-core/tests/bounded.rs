//! Bounded everything (hardening, attack 7): a hung notification daemon must not
//! make the toast queue grow without end, huge titles are cut for the history and
//! for toasts, and the history keeps to its retention. The engine runs against the
//! reference server in-process; the "hung daemon" is a notifier that blocks until
//! the test lets it go, as a daemon that never answers `Notify` would.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use common::*;
use serde_json::json;
use taskbell_core::delivery::Toast;
use taskbell_core::history::{History, Retention};
use taskbell_core::notifier::{Notifier, NotifyError, RecordingNotifier};
use taskbell_core::protocol::{self, Notification};
use taskbell_core::supervisor::Event;
use taskbell_server::DEMO_ANNOTATOR;

/// Blocks every `show` while the gate is closed; then records like a daemon.
#[derive(Clone)]
struct HungDaemon {
    gate: Arc<(Mutex<bool>, Condvar)>,
    calls: Arc<Mutex<usize>>,
    recorder: RecordingNotifier,
}

impl HungDaemon {
    fn new(recorder: RecordingNotifier) -> HungDaemon {
        HungDaemon {
            gate: Arc::new((Mutex::new(false), Condvar::new())),
            calls: Arc::new(Mutex::new(0)),
            recorder,
        }
    }

    fn open(&self) {
        *self.gate.0.lock().unwrap() = true;
        self.gate.1.notify_all();
    }
}

impl Notifier for HungDaemon {
    fn show(&self, toast: &Toast) -> Result<(), NotifyError> {
        *self.calls.lock().unwrap() += 1;
        let mut open = self.gate.0.lock().unwrap();
        while !*open {
            open = self.gate.1.wait(open).unwrap();
        }
        drop(open);
        self.recorder.show(toast)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_daemon_keeps_the_toast_queue_bounded_and_loses_nothing() {
    let s = server().await;
    let base = s.base_url();
    let recorder = RecordingNotifier::new();
    let daemon = HungDaemon::new(recorder.clone());
    let d2 = daemon.clone();
    let mut zs = Client::start(
        &base,
        DEMO_ANNOTATOR,
        Setup {
            // No burst folding in the engine: every notification is a toast of its own,
            // so only the queue's bound can fold them.
            tweak_config: Box::new(|c| c.fold_threshold = 1_000_000),
            tweak_options: Box::new(move |o| o.notifier = Arc::new(d2)),
            ..Setup::default()
        },
    )
    .await;
    zs.wait_caught_up().await;
    let n = 300;
    let (status, body) = post(
        &base,
        "/api/test/notify",
        None,
        json!({"user_id": DEMO_ANNOTATOR.id, "type": "system", "title": "堆积", "content": "n", "count": n}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // All stored and announced while the daemon hangs on the first toast.
    let mut keys = Vec::new();
    while keys.len() < n {
        if let Event::Notification(x) = zs
            .wait_event("notifications", |e| matches!(e, Event::Notification(_)))
            .await
        {
            keys.push(x.key);
        }
    }
    let queued_calls = *daemon.calls.lock().unwrap();
    assert!(queued_calls <= 1, "the daemon hangs on its first call");
    daemon.open();
    // Every key is on screen in exactly one toast, in a handful of Notify calls.
    let mut count: HashMap<String, usize> = HashMap::new();
    let toasts = loop {
        let toasts = recorder.toasts();
        count.clear();
        for t in &toasts {
            for k in &t.keys {
                *count.entry(k.clone()).or_default() += 1;
            }
        }
        if keys.iter().all(|k| count.contains_key(k)) {
            break toasts;
        }
        recorder
            .wait_for_count(WAIT, toasts.len() + 1)
            .await
            .unwrap_or_else(|| panic!("toasts stopped coming: {} keys shown of {n}", count.len()));
    };
    for k in &keys {
        assert_eq!(count.get(k), Some(&1), "{k} shown once");
    }
    // 300 toasts behind a hung daemon: at most the queue's 16 plus the one it
    // hung on, plus the summary's, reach it.
    assert!(toasts.len() <= 20, "{} Notify calls", toasts.len());
    assert!(
        toasts.iter().any(|t| t.folded > 100),
        "a folded toast: {:?}",
        toasts.iter().map(|t| t.folded).collect::<Vec<_>>()
    );
    // One Toast event per Notify call (the event is sent as it is handed over).
    let mut toast_events = zs
        .seen
        .iter()
        .filter(|e| matches!(e, Event::Toast(_)))
        .count();
    while toast_events < toasts.len() {
        zs.wait_event("toast events", |e| matches!(e, Event::Toast(_)))
            .await;
        toast_events += 1;
    }
    assert_eq!(toast_events, toasts.len());
    zs.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_titles_and_contents_are_cut_for_the_history_and_the_toast() {
    let s = server().await;
    let base = s.base_url();
    let mut zs = Client::start(&base, DEMO_ANNOTATOR, Setup::default()).await;
    zs.wait_caught_up().await;
    let title = "题".repeat(5_000);
    let content = format!("needle {}", "x".repeat(40_000));
    let (status, body) = post(
        &base,
        "/api/test/notify",
        None,
        json!({"user_id": DEMO_ANNOTATOR.id, "type": "system", "title": title, "content": content}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let n = zs.wait_notification("needle").await;
    assert_eq!(n.title.chars().count(), protocol::MAX_TITLE_CHARS);
    assert!(n.title.ends_with('…'));
    assert_eq!(n.content.chars().count(), protocol::MAX_CONTENT_CHARS);
    let t = zs
        .notifier
        .wait_for(WAIT, |t| t.body.starts_with("needle"))
        .await
        .expect("the toast");
    assert_eq!(
        t.title.chars().count(),
        taskbell_core::delivery::TOAST_TITLE_CHARS
    );
    assert!(t.body.chars().count() <= taskbell_core::delivery::TOAST_BODY_CHARS);
    zs.stop().await;
    let h = History::open(&zs.paths.history_db()).unwrap();
    let stored = h.get(&n.key).unwrap().expect("stored");
    assert_eq!(stored.notification.title, n.title, "stored as cut");
}

fn note(i: usize) -> Notification {
    let text = format!(r#"{{"type":"system","id":"n{i}","title":"t{i}","timestamp":1700000000}}"#);
    match protocol::decode(&text).unwrap() {
        protocol::Inbound::Notification(n) => n,
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_history_keeps_to_its_retention_by_age_and_by_rows() {
    let dir = tempfile::tempdir().unwrap();
    let h = History::open(&dir.path().join("history.sqlite3")).unwrap();
    let day = 86_400_000i64;
    let now = 1_800_000_000_000i64;
    // 10 rows received 40 days ago, 300 received today.
    for i in 0..10 {
        assert!(h.insert_at(&note(i), now - 40 * day).unwrap());
    }
    for i in 10..310 {
        assert!(h.insert_at(&note(i), now - 1000 + i as i64).unwrap());
    }
    let keep = Retention {
        max_rows: 200,
        max_age: Duration::from_secs(30 * 86_400),
    };
    let removed = h.prune(&keep, now).unwrap();
    assert_eq!(removed, 110);
    assert_eq!(h.len().unwrap(), 200);
    // The newest 200 stay.
    assert!(h.contains("n309").unwrap());
    assert!(h.contains("n110").unwrap());
    assert!(!h.contains("n109").unwrap());
    assert!(!h.contains("n0").unwrap());
    // Idempotent.
    assert_eq!(h.prune(&keep, now).unwrap(), 0);
}

/// The engine applies the configured retention when it starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_prunes_the_history_to_the_configured_rows_at_start() {
    let s = server().await;
    let base = s.base_url();
    let mut zs = Client::start(&base, DEMO_ANNOTATOR, Setup::default()).await;
    zs.wait_caught_up().await;
    zs.stop().await;
    {
        let h = History::open(&zs.paths.history_db()).unwrap();
        for i in 0..400 {
            h.insert(&note(i)).unwrap();
        }
        assert!(h.len().unwrap() >= 400);
    }
    let mut config = zs.config.clone();
    config.history_max_rows = 100;
    zs.config = config;
    let mut again = zs.restart();
    again.wait_caught_up().await;
    let h = History::open(&again.paths.history_db()).unwrap();
    assert!(h.len().unwrap() <= 100, "{}", h.len().unwrap());
    assert!(h.contains("n399").unwrap(), "the newest stay");
    again.stop().await;
}
