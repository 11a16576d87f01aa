//! The SQLite history store on real files: dedupe by key (also across
//! reopening), the cursor, listing with filters, read state, WAL mode and the
//! schema version, and the files' permissions.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers; a failure is the point

use taskbell_core::history::{History, HistoryError, Query, SCHEMA_VERSION};
use taskbell_core::protocol::{Inbound, Notification, NotificationKind, Priority, decode_at};

fn n(key: &str, kind: NotificationKind, ts: i64) -> Notification {
    Notification {
        id: Some(key.to_owned()),
        key: key.to_owned(),
        kind,
        title: format!("标题 {key}"),
        content: "内容 ✅ <b>".to_owned(),
        task_id: Some("task/1?x".to_owned()),
        project_id: None,
        priority: Priority::High,
        timestamp_ms: ts,
        data: serde_json::json!({"task_id": "task/1?x", "n": [1, 2]}),
    }
}

fn keys(records: &[taskbell_core::history::Record]) -> Vec<String> {
    records.iter().map(|r| r.notification.key.clone()).collect()
}

#[test]
fn insert_dedupes_by_key_and_round_trips() {
    let h = History::open_in_memory().unwrap();
    let a = n("a", NotificationKind::TaskReviewed, 1000);
    assert!(h.insert(&a).unwrap(), "first insert is new");
    assert!(!h.insert(&a).unwrap(), "second insert is a duplicate");
    // same key, different content: still a duplicate (the key decides)
    let mut a2 = a.clone();
    a2.title = "changed".to_owned();
    assert!(!h.insert(&a2).unwrap());
    assert_eq!(h.len().unwrap(), 1);
    let r = h.get("a").unwrap().unwrap();
    assert_eq!(r.notification, a, "stored exactly as given");
    assert!(!r.read);
    assert!(h.contains("a").unwrap());
    assert!(!h.contains("b").unwrap());
    assert!(h.get("b").unwrap().is_none());
}

#[test]
fn id_less_frames_dedupe_by_content_key() {
    let h = History::open_in_memory().unwrap();
    let text =
        r#"{"type":"task_submitted","title":"新任务待审核","content":"x","timestamp":1698739200}"#;
    let decode = |now| match decode_at(text, now) {
        Ok(Inbound::Notification(n)) => n,
        other => panic!("{other:?}"),
    };
    assert!(h.insert(&decode(1)).unwrap());
    assert!(
        !h.insert(&decode(2)).unwrap(),
        "same frame received later is a duplicate"
    );
}

#[test]
fn reopening_keeps_dedupe_cursor_and_read_state() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data").join("history.sqlite3");
    {
        let h = History::open(&path).unwrap();
        assert_eq!(h.cursor().unwrap(), None);
        for (i, k) in ["a", "b", "c"].iter().enumerate() {
            assert!(
                h.insert(&n(k, NotificationKind::Mention, i as i64))
                    .unwrap()
            );
        }
        h.set_cursor("1699012345678-0").unwrap();
        h.set_cursor("1699012345679-0").unwrap();
        assert_eq!(h.mark_read(&["b".to_owned()]).unwrap(), 1);
    }
    let h = History::open(&path).unwrap();
    assert_eq!(h.schema_version().unwrap(), SCHEMA_VERSION);
    for k in ["a", "b", "c"] {
        assert!(
            !h.insert(&n(k, NotificationKind::Mention, 0)).unwrap(),
            "{k} seen before the restart"
        );
    }
    assert!(h.insert(&n("d", NotificationKind::Mention, 9)).unwrap());
    assert_eq!(h.cursor().unwrap().as_deref(), Some("1699012345679-0"));
    assert_eq!(h.unread_count().unwrap(), 3);
    assert!(h.get("b").unwrap().unwrap().read);
    h.clear_cursor().unwrap();
    assert_eq!(h.cursor().unwrap(), None);
}

#[test]
fn wal_mode_lets_a_second_connection_read_while_one_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.sqlite3");
    let writer = History::open(&path).unwrap();
    let reader = History::open(&path).unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode.to_ascii_lowercase(), "wal");
    for i in 0..50 {
        assert!(
            writer
                .insert(&n(&format!("k{i}"), NotificationKind::System, i))
                .unwrap()
        );
        assert_eq!(reader.len().unwrap(), u64::try_from(i + 1).unwrap());
    }
    // dedupe holds across connections too
    assert!(
        !reader
            .insert(&n("k3", NotificationKind::System, 3))
            .unwrap()
    );
}

#[test]
fn list_is_newest_first_with_filters_and_paging() {
    let h = History::open_in_memory().unwrap();
    h.insert(&n("old", NotificationKind::TaskReviewed, 1_000))
        .unwrap();
    h.insert(&n("new", NotificationKind::TaskSubmitted, 3_000))
        .unwrap();
    h.insert(&n("mid", NotificationKind::GroupMessage, 2_000))
        .unwrap();
    // same timestamp: the later arrival first
    h.insert(&n("new2", NotificationKind::TaskReviewed, 3_000))
        .unwrap();
    h.insert(&n(
        "odd",
        NotificationKind::Other("future_kind".into()),
        500,
    ))
    .unwrap();

    let all = h.list(&Query::default()).unwrap();
    assert_eq!(keys(&all), ["new2", "new", "mid", "old", "odd"]);
    assert_eq!(
        all[4].notification.kind,
        NotificationKind::Other("future_kind".into())
    );

    let q = Query {
        kinds: Some(vec![
            NotificationKind::TaskReviewed,
            NotificationKind::GroupMessage,
        ]),
        ..Query::default()
    };
    assert_eq!(keys(&h.list(&q).unwrap()), ["new2", "mid", "old"]);
    let q = Query {
        kinds: Some(vec![]),
        ..Query::default()
    };
    assert!(h.list(&q).unwrap().is_empty());

    let page = Query {
        limit: 2,
        offset: 1,
        ..Query::default()
    };
    assert_eq!(keys(&h.list(&page).unwrap()), ["new", "mid"]);

    assert_eq!(
        h.mark_read(&["new".to_owned(), "mid".to_owned(), "nope".to_owned()])
            .unwrap(),
        2
    );
    assert_eq!(h.mark_read(&["new".to_owned()]).unwrap(), 0, "already read");
    let unread = Query {
        unread_only: true,
        ..Query::default()
    };
    assert_eq!(keys(&h.list(&unread).unwrap()), ["new2", "old", "odd"]);
    assert_eq!(h.unread_count().unwrap(), 3);
    let unread_reviews = Query {
        unread_only: true,
        kinds: Some(vec![NotificationKind::TaskReviewed]),
        limit: 1,
        offset: 0,
    };
    assert_eq!(keys(&h.list(&unread_reviews).unwrap()), ["new2"]);

    assert_eq!(h.mark_all_read().unwrap(), 3);
    assert_eq!(h.unread_count().unwrap(), 0);
    assert!(h.list(&unread).unwrap().is_empty());
    assert_eq!(h.list(&Query::default()).unwrap().len(), 5);
}

#[test]
fn a_newer_schema_is_refused_and_an_old_one_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.sqlite3");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
    }
    match History::open(&path) {
        Err(e @ HistoryError::TooNew { .. }) => assert!(e.to_string().contains("upgrade"), "{e}"),
        other => panic!("expected TooNew, got {other:?}"),
    }
    // version 0 (an empty file) is created fresh
    let path0 = dir.path().join("h0.sqlite3");
    drop(rusqlite::Connection::open(&path0).unwrap());
    let h = History::open(&path0).unwrap();
    assert_eq!(h.schema_version().unwrap(), SCHEMA_VERSION);
    assert!(h.is_empty().unwrap());
}

#[test]
fn a_file_that_is_not_a_database_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.sqlite3");
    std::fs::write(
        &path,
        b"this is not an SQLite file, just text that is long enough to have a header",
    )
    .unwrap();
    let e = History::open(&path).unwrap_err();
    assert!(e.to_string().contains("history database error"), "{e}");
}

#[test]
fn insert_many_is_one_transaction_with_per_item_results() {
    let dir = tempfile::tempdir().unwrap();
    let h = History::open(&dir.path().join("h.sqlite3")).unwrap();
    h.insert(&n("b", NotificationKind::System, 2)).unwrap();
    let batch: Vec<Notification> = ["a", "b", "c", "a"]
        .iter()
        .enumerate()
        .map(|(i, k)| n(k, NotificationKind::System, i as i64))
        .collect();
    assert_eq!(h.insert_many(&batch).unwrap(), [true, false, true, false]);
    assert_eq!(h.len().unwrap(), 3);
    let many: Vec<Notification> = (0..2000)
        .map(|i| n(&format!("m{i}"), NotificationKind::TaskSubmitted, i))
        .collect();
    assert!(h.insert_many(&many).unwrap().iter().all(|f| *f));
    assert!(h.insert_many(&many).unwrap().iter().all(|f| !*f));
    assert_eq!(h.len().unwrap(), 2003);
}

/// The permission bits of `path`, in octal ("600").
#[cfg(unix)]
fn mode(path: &std::path::Path) -> String {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode();
    format!("{:o}", mode & 0o7777)
}

/// `path` with `suffix` appended to its file name (`-wal`, `-shm`).
#[cfg(unix)]
fn sibling(path: &std::path::Path, suffix: &str) -> std::path::PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    s.into()
}

/// Runs `test` under a umask that lets group and others read new files (022, the usual
/// default), so a file created with default permissions would be 0644. When this process
/// has a stricter umask, the test re-runs itself in a child started by `sh` with umask 022.
#[cfg(unix)]
fn with_umask_022(name: &str, test: impl FnOnce()) {
    const CHILD: &str = "TASKBELL_TEST_UMASK_022";
    let probe_dir = tempfile::tempdir().unwrap();
    let probe = probe_dir.path().join("probe");
    std::fs::write(&probe, b"").unwrap();
    if mode(&probe) == "644" {
        return test();
    }
    assert!(
        std::env::var_os(CHILD).is_none(),
        "umask 022 did not take effect in the child"
    );
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg("umask 022 && exec \"$0\" \"$@\"")
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", name, "--test-threads=1"])
        .env(CHILD, "1")
        .status()
        .unwrap();
    assert!(status.success(), "{name} under umask 022: {status}");
}

#[cfg(unix)]
#[test]
fn history_files_are_private_from_the_first_byte() {
    with_umask_022("history_files_are_private_from_the_first_byte", || {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("share").join("taskbell");
        let path = dir.join("history.sqlite3");
        let h = History::open(&path).unwrap();
        // A write while the connection is open leaves the WAL and its shared memory file.
        assert!(h.insert(&n("a", NotificationKind::System, 1)).unwrap());
        let reader = History::open(&path).unwrap();
        assert_eq!(reader.len().unwrap(), 1);
        assert_eq!(mode(&dir), "700", "the data directory");
        assert_eq!(mode(&root.path().join("share")), "700", "a created parent");
        for file in [path.clone(), sibling(&path, "-wal"), sibling(&path, "-shm")] {
            assert_eq!(mode(&file), "600", "{}", file.display());
        }
    });
}

#[cfg(unix)]
#[test]
fn an_open_data_dir_and_history_left_by_an_older_version_are_tightened() {
    use std::os::unix::fs::PermissionsExt;
    with_umask_022(
        "an_open_data_dir_and_history_left_by_an_older_version_are_tightened",
        || {
            let root = tempfile::tempdir().unwrap();
            let dir = root.path().join("taskbell");
            std::fs::create_dir(&dir).unwrap();
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
            let path = dir.join("history.sqlite3");
            // What an older TaskBell left: a 0644 history, still open (so 0644 -wal/-shm).
            let old = rusqlite::Connection::open(&path).unwrap();
            let journal: String = old
                .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
                .unwrap();
            assert_eq!(journal.to_ascii_lowercase(), "wal");
            old.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
                .unwrap();
            for file in [&path, &sibling(&path, "-wal"), &sibling(&path, "-shm")] {
                assert_eq!(mode(file), "644", "precondition: {}", file.display());
            }

            let h = History::open(&path).unwrap();
            assert!(h.insert(&n("a", NotificationKind::System, 1)).unwrap());
            assert_eq!(mode(&dir), "700", "the data directory");
            for file in [path.clone(), sibling(&path, "-wal"), sibling(&path, "-shm")] {
                assert_eq!(mode(&file), "600", "{}", file.display());
            }
            drop(old);
            drop(h);
            // Reopened later: SQLite makes new -wal/-shm files like the (now 0600) main file.
            let h = History::open(&path).unwrap();
            assert!(h.insert(&n("b", NotificationKind::System, 2)).unwrap());
            for file in [path.clone(), sibling(&path, "-wal"), sibling(&path, "-shm")] {
                assert_eq!(mode(&file), "600", "{}", file.display());
            }
        },
    );
}
