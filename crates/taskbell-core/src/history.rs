//! The notification history: an SQLite file (rusqlite, bundled SQLite) in the
//! data dir holding every notification, its read state and the catch-up
//! cursor.
//!
//! - **Dedupe lives here**: the notification key is `UNIQUE` and
//!   [`History::insert`] is `INSERT OR IGNORE`, returning whether the row is
//!   new. Because it is persisted, a notification seen before a restart (or
//!   both live and in a catch-up) is never shown twice.
//! - WAL journal mode, so the tray window or `taskbell history` can read
//!   while the engine writes; a busy timeout rides out short write locks.
//! - The schema version is SQLite's `user_version`; [`History::open`]
//!   migrates older files forward and refuses newer ones.
//! - Private from the first byte (unix): the directory is created `0700` (an
//!   existing one of ours that others can enter is tightened) and the file is
//!   created `0600` before SQLite opens it; SQLite gives the `-wal` and `-shm`
//!   files the main file's permissions.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};
use serde::Serialize;
use serde_json::Value;

use crate::protocol::{Notification, NotificationKind, Priority, now_ms};

/// The schema version this code writes.
pub const SCHEMA_VERSION: i64 = 1;

/// The meta row holding the catch-up cursor.
const CURSOR: &str = "cursor";

/// Schema of version 1.
const SCHEMA_V1: &str = "
CREATE TABLE notifications (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    key            TEXT    NOT NULL UNIQUE,
    id             TEXT,
    kind           TEXT    NOT NULL,
    title          TEXT    NOT NULL,
    content        TEXT    NOT NULL,
    task_id        TEXT,
    project_id     TEXT,
    priority       TEXT    NOT NULL,
    timestamp_ms   INTEGER NOT NULL,
    data           TEXT    NOT NULL,
    received_at_ms INTEGER NOT NULL,
    read           INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX notifications_newest ON notifications (timestamp_ms DESC, seq DESC);
CREATE INDEX notifications_unread ON notifications (read);
CREATE TABLE meta (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
";

/// How much history is kept ([`History::prune`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// At most this many notifications (the oldest go first).
    pub max_rows: u64,
    /// None stored longer ago than this.
    pub max_age: Duration,
}

impl Retention {
    /// The retention a config asks for (`history_max_rows`, `history_max_days`).
    pub fn from_config(config: &crate::config::Config) -> Retention {
        Retention {
            max_rows: config.history_max_rows,
            max_age: Duration::from_secs(u64::from(config.history_max_days) * 86_400),
        }
    }
}

/// Why the history store failed.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// SQLite reported an error (locked, corrupt, disk full, ...).
    #[error("history database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The data directory or the history file could not be created.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What failed, e.g. "create the data directory".
        action: &'static str,
        /// The directory or file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The file was written by a newer TaskBell.
    #[error(
        "the history database has schema version {found}, newer than this TaskBell supports ({supported}); upgrade TaskBell"
    )]
    TooNew {
        /// The file's version.
        found: i64,
        /// Ours.
        supported: i64,
    },
}

/// A filter for [`History::list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// Only unread notifications.
    pub unread_only: bool,
    /// Only these kinds (`None` = all).
    pub kinds: Option<Vec<NotificationKind>>,
    /// At most this many records (default 100).
    pub limit: usize,
    /// Skip this many (newest) records first, for paging.
    pub offset: usize,
}

impl Default for Query {
    fn default() -> Self {
        Query {
            unread_only: false,
            kinds: None,
            limit: 100,
            offset: 0,
        }
    }
}

/// A stored notification with its read state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Record {
    /// The notification as received.
    pub notification: Notification,
    /// Whether the user has read it.
    pub read: bool,
    /// When we stored it (wall clock, ms).
    pub received_at_ms: i64,
}

/// The history store (one SQLite connection).
#[derive(Debug)]
pub struct History {
    conn: Connection,
}

impl History {
    /// Opens (creating if needed, with its directory) the file at `path`,
    /// in WAL mode, migrating it to [`SCHEMA_VERSION`].
    ///
    /// On unix the directory is `0700` and the file `0600` before SQLite
    /// writes a byte; an existing directory or file others can read is
    /// tightened.
    pub fn open(path: &Path) -> Result<History, HistoryError> {
        prepare_private_files(path)?;
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(%mode, "SQLite did not switch the history to WAL mode");
        }
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        History::init(conn)
    }

    /// A read-only connection to the history at `path`, for lookups ([`History::contains`])
    /// beside the writer: it never writes, never checkpoints, and keeps a small page cache.
    pub fn open_read_only(path: &Path) -> Result<History, HistoryError> {
        let conn = Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(Duration::from_millis(200))?;
        // A lookup reads an index root and a leaf or two: 128 KiB of cache is plenty.
        conn.pragma_update(None, "cache_size", -128)?;
        Ok(History { conn })
    }

    /// An in-memory store (tests, or when the data dir is unusable).
    pub fn open_in_memory() -> Result<History, HistoryError> {
        History::init(Connection::open_in_memory()?)
    }

    /// Creates or migrates the schema.
    fn init(mut conn: Connection) -> Result<History, HistoryError> {
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version > SCHEMA_VERSION {
            return Err(HistoryError::TooNew {
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        if version < SCHEMA_VERSION {
            let tx = conn.transaction()?;
            if version < 1 {
                tx.execute_batch(SCHEMA_V1)?;
            }
            // Later versions: `if version < 2 { ALTER TABLE ... }` here.
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
            tx.commit()?;
        }
        Ok(History { conn })
    }

    /// The schema version of the open file.
    pub fn schema_version(&self) -> Result<i64, HistoryError> {
        Ok(self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))?)
    }

    /// Stores a notification unless one with the same key is stored;
    /// returns `true` when it is new.
    pub fn insert(&self, n: &Notification) -> Result<bool, HistoryError> {
        self.insert_at(n, now_ms())
    }

    /// As [`History::insert`] with an explicit receive time.
    pub fn insert_at(&self, n: &Notification, received_at_ms: i64) -> Result<bool, HistoryError> {
        let data = serde_json::to_string(&n.data).unwrap_or_else(|_| "{}".to_owned());
        let changed = self.conn.execute(
            "INSERT OR IGNORE INTO notifications
                (key, id, kind, title, content, task_id, project_id, priority,
                 timestamp_ms, data, received_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            params![
                n.key,
                n.id,
                n.kind.as_str(),
                n.title,
                n.content,
                n.task_id,
                n.project_id,
                n.priority.as_str(),
                n.timestamp_ms,
                data,
                received_at_ms,
            ],
        )?;
        Ok(changed == 1)
    }

    /// Stores several notifications in one transaction (a catch-up page);
    /// returns, for each, whether it was new. Duplicates within the batch
    /// count once.
    pub fn insert_many(&self, ns: &[Notification]) -> Result<Vec<bool>, HistoryError> {
        self.store_batch(ns, None)
    }

    /// Stores several notifications and, when given, the catch-up cursor that covers
    /// them, in one transaction: one commit (one WAL append) for all, and a cursor that
    /// never runs ahead of the rows it covers. Returns, for each, whether it was new.
    pub fn store_batch(
        &self,
        ns: &[Notification],
        cursor: Option<&str>,
    ) -> Result<Vec<bool>, HistoryError> {
        let tx = self.conn.unchecked_transaction()?;
        let now = now_ms();
        let mut fresh = Vec::with_capacity(ns.len());
        for n in ns {
            fresh.push(self.insert_at(n, now)?);
        }
        if let Some(c) = cursor {
            self.set_cursor(c)?;
        }
        tx.commit()?;
        Ok(fresh)
    }

    /// Leaves WAL checkpoints to [`History::checkpoint`]: SQLite otherwise runs one
    /// (with its fsyncs) inside whichever commit crosses 1,000 WAL pages, about every
    /// 140th notification, on the delivery path. The engine's writer thread checkpoints
    /// when it falls idle instead.
    pub fn defer_checkpoints(&self) -> Result<(), HistoryError> {
        self.conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        Ok(())
    }

    /// Copies the WAL back into the database file as far as no reader holds it back
    /// (`PASSIVE`: never waits); returns the WAL frames it left behind.
    pub fn checkpoint(&self) -> Result<u64, HistoryError> {
        let (log, done): (i64, i64) =
            self.conn
                .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                    Ok((r.get(1)?, r.get(2)?))
                })?;
        // In-memory or rollback-journal databases answer -1 for both.
        Ok(u64::try_from(log.saturating_sub(done)).unwrap_or(0))
    }

    /// Whether a notification with this key is stored.
    pub fn contains(&self, key: &str) -> Result<bool, HistoryError> {
        Ok(self
            .conn
            .prepare_cached("SELECT 1 FROM notifications WHERE key = ?1")?
            .query_row([key], |_| Ok(()))
            .optional()?
            .is_some())
    }

    /// The stored record with this key.
    pub fn get(&self, key: &str) -> Result<Option<Record>, HistoryError> {
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM notifications WHERE key = ?1"),
                [key],
                record_from_row,
            )
            .optional()?)
    }

    /// The catch-up cursor (the id of the last notification fetched), if any.
    pub fn cursor(&self) -> Result<Option<String>, HistoryError> {
        Ok(self
            .conn
            .query_row("SELECT value FROM meta WHERE name = ?1", [CURSOR], |r| {
                r.get(0)
            })
            .optional()?)
    }

    /// Saves the catch-up cursor.
    pub fn set_cursor(&self, cursor: &str) -> Result<(), HistoryError> {
        self.conn.execute(
            "INSERT INTO meta (name, value) VALUES (?1, ?2)
             ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            params![CURSOR, cursor],
        )?;
        Ok(())
    }

    /// Forgets the catch-up cursor (e.g. after switching accounts).
    pub fn clear_cursor(&self) -> Result<(), HistoryError> {
        self.conn
            .execute("DELETE FROM meta WHERE name = ?1", [CURSOR])?;
        Ok(())
    }

    /// Records matching `q`, newest first (by timestamp, then arrival).
    pub fn list(&self, q: &Query) -> Result<Vec<Record>, HistoryError> {
        let mut sql = format!("SELECT {COLUMNS} FROM notifications WHERE 1 = 1");
        let mut args: Vec<String> = Vec::new();
        if q.unread_only {
            sql.push_str(" AND read = 0");
        }
        if let Some(kinds) = &q.kinds {
            if kinds.is_empty() {
                return Ok(Vec::new());
            }
            sql.push_str(" AND kind IN (");
            for (i, k) in kinds.iter().enumerate() {
                if i > 0 {
                    sql.push_str(", ");
                }
                sql.push('?');
                args.push(k.as_str().to_owned());
            }
            sql.push(')');
        }
        let limit = i64::try_from(q.limit).unwrap_or(i64::MAX);
        let offset = i64::try_from(q.offset).unwrap_or(i64::MAX);
        sql.push_str(&format!(
            " ORDER BY timestamp_ms DESC, seq DESC LIMIT {limit} OFFSET {offset}"
        ));
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map(params_from_iter(args.iter()), record_from_row)?;
        let mut out = Vec::new();
        for r in rows {
            out.push(r?);
        }
        Ok(out)
    }

    /// Marks these keys read; returns how many changed.
    pub fn mark_read(&self, keys: &[String]) -> Result<usize, HistoryError> {
        let tx = self.conn.unchecked_transaction()?;
        let mut changed = 0;
        {
            let mut stmt =
                tx.prepare("UPDATE notifications SET read = 1 WHERE key = ?1 AND read = 0")?;
            for k in keys {
                changed += stmt.execute([k])?;
            }
        }
        tx.commit()?;
        Ok(changed)
    }

    /// Marks everything read; returns how many changed.
    pub fn mark_all_read(&self) -> Result<usize, HistoryError> {
        Ok(self
            .conn
            .execute("UPDATE notifications SET read = 1 WHERE read = 0", [])?)
    }

    /// How many notifications are unread.
    pub fn unread_count(&self) -> Result<u64, HistoryError> {
        let n: i64 = self.conn.query_row(
            "SELECT COUNT(*) FROM notifications WHERE read = 0",
            [],
            |r| r.get(0),
        )?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Forgets what the retention no longer keeps: notifications received more
    /// than `retention.max_age` before `now_ms`, then the oldest beyond
    /// `retention.max_rows`. Age counts from when a notification was stored, not
    /// from the server's timestamp (a server's clock or a replayed old event must
    /// not make a fresh notification vanish and come back as new). Returns how
    /// many were removed.
    pub fn prune(&self, retention: &Retention, now_ms: i64) -> Result<usize, HistoryError> {
        let max_age_ms = i64::try_from(retention.max_age.as_millis()).unwrap_or(i64::MAX);
        let cutoff = now_ms.saturating_sub(max_age_ms);
        let tx = self.conn.unchecked_transaction()?;
        let by_age = tx.execute(
            "DELETE FROM notifications WHERE received_at_ms < ?1",
            params![cutoff],
        )?;
        let keep = i64::try_from(retention.max_rows).unwrap_or(i64::MAX);
        let by_rows = tx.execute(
            "DELETE FROM notifications WHERE seq <= (
                 SELECT seq FROM notifications ORDER BY seq DESC LIMIT 1 OFFSET ?1)",
            params![keep],
        )?;
        tx.commit()?;
        let removed = by_age + by_rows;
        if removed > 0 {
            tracing::info!(removed, "old notifications removed from the history");
        }
        Ok(removed)
    }

    /// How many notifications are stored.
    pub fn len(&self) -> Result<u64, HistoryError> {
        let n: i64 = self
            .conn
            .query_row("SELECT COUNT(*) FROM notifications", [], |r| r.get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> Result<bool, HistoryError> {
        Ok(self.len()? == 0)
    }
}

/// Creates the history's directory and (on unix) the empty file, both
/// private to the user, so that no byte of the history is ever readable by
/// others: the directory `0700` (with any missing parents), the file `0600`.
/// SQLite then opens the existing file, and creates its `-wal` and `-shm`
/// files with the main file's permissions.
///
/// What an older TaskBell left group- or world-accessible is tightened: the
/// file and its `-wal`/`-shm`/`-journal` files, and the directory when it is
/// ours (same owner as the file) and not a shared sticky one such as `/tmp`.
/// A failure to tighten is logged, not fatal: the files' own modes are what
/// keep the history private.
fn prepare_private_files(path: &Path) -> Result<(), HistoryError> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};

        if let Some(dir) = dir {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|source| HistoryError::Io {
                    action: "create the data directory",
                    path: dir.to_owned(),
                    source,
                })?;
        }
        // Only a missing file is created; an existing one is left to SQLite
        // (which may open it read-only) and only its mode is checked below.
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(source) => {
                return Err(HistoryError::Io {
                    action: "create the history file",
                    path: path.to_owned(),
                    source,
                });
            }
        }
        let owner = std::fs::metadata(path).map(|m| m.uid()).ok();
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            let file = PathBuf::from(name);
            if let Ok(meta) = std::fs::metadata(&file)
                && meta.is_file()
                && meta.mode() & 0o077 != 0
                && let Err(e) =
                    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))
            {
                tracing::warn!(file = %file.display(), error = %e, "cannot make the history file private");
            }
        }
        if let Some(dir) = dir
            && let Ok(meta) = std::fs::metadata(dir)
            && meta.mode() & 0o077 != 0
            && meta.mode() & 0o1000 == 0
            && Some(meta.uid()) == owner
            && let Err(e) = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot make the data directory private");
        }
    }
    #[cfg(not(unix))]
    if let Some(dir) = dir {
        std::fs::create_dir_all(dir).map_err(|source| HistoryError::Io {
            action: "create the data directory",
            path: dir.to_owned(),
            source,
        })?;
    }
    Ok(())
}

/// The columns [`record_from_row`] reads, in order.
const COLUMNS: &str = "key, id, kind, title, content, task_id, project_id, priority, \
                       timestamp_ms, data, received_at_ms, read";

/// One row → a record. Unknown kinds and unreadable data degrade instead of failing.
fn record_from_row(r: &Row<'_>) -> rusqlite::Result<Record> {
    let kind: String = r.get(2)?;
    let priority: String = r.get(7)?;
    let data: String = r.get(9)?;
    let read: i64 = r.get(11)?;
    Ok(Record {
        notification: Notification {
            key: r.get(0)?,
            id: r.get(1)?,
            kind: NotificationKind::parse(&kind).unwrap_or(NotificationKind::Other(kind)),
            title: r.get(3)?,
            content: r.get(4)?,
            task_id: r.get(5)?,
            project_id: r.get(6)?,
            priority: Priority::parse(&priority),
            timestamp_ms: r.get(8)?,
            data: serde_json::from_str(&data).unwrap_or_else(|_| Value::Object(Default::default())),
        },
        read: read != 0,
        received_at_ms: r.get(10)?,
    })
}
