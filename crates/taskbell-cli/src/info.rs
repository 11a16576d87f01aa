//! `taskbell status` and `taskbell history`.

use serde::Serialize;
use taskbell_core::config::Paths;
use taskbell_core::history::{History, Query, Record};
use taskbell_core::notifier::ServerInfo;
use taskbell_core::sanitize;

use crate::cli::{HistoryArgs, StatusArgs};
use crate::error::CliError;
use crate::run::{StateFile, describe_state, read_state};

/// What `taskbell status --json` prints.
#[derive(Debug, Serialize)]
pub struct StatusReport {
    /// The configured server.
    pub server: Option<String>,
    /// The configured user name.
    pub username: Option<String>,
    /// Whether a token (or remembered password) is in the keyring.
    pub signed_in: bool,
    /// The keyring backend, when one could be opened.
    pub keyring: Option<String>,
    /// Why no keyring could be opened.
    pub keyring_error: Option<String>,
    /// The notification daemon on the session bus.
    pub notification_daemon: Option<ServerInfo>,
    /// Why there is none.
    pub notification_daemon_error: Option<String>,
    /// Unread notifications in the history.
    pub unread: u64,
    /// All notifications in the history.
    pub total: u64,
    /// What the last `taskbell run` recorded.
    pub last_state: Option<StateFile>,
    /// Whether that process is still alive.
    pub daemon_running: bool,
    /// The config file.
    pub config_file: String,
    /// The data directory.
    pub data_dir: String,
}

fn process_alive(pid: u32) -> bool {
    std::path::Path::new("/proc").join(pid.to_string()).exists()
}

/// Runs `taskbell status`.
pub async fn status(paths: &Paths, args: &StatusArgs) -> Result<(), CliError> {
    let config = paths.load_config()?;
    let (keyring, keyring_error, signed_in) = match crate::account::open_keyring().await {
        Ok(creds) => {
            let backend = creds.backend().to_string();
            let signed_in = match (config.server.clone(), config.username.clone()) {
                (Some(s), Some(u)) => {
                    let remember = config.remember_me;
                    tokio::task::spawn_blocking(move || {
                        matches!(creds.load_token(&s, &u), Ok(Some(_)))
                            || (remember && matches!(creds.load_password(&s, &u), Ok(Some(_))))
                    })
                    .await
                    .unwrap_or(false)
                }
                _ => false,
            };
            (Some(backend), None, signed_in)
        }
        Err(e) => (None, Some(e.one_line()), false),
    };
    let (daemon, daemon_error) =
        match tokio::task::spawn_blocking(taskbell_core::notifier::probe).await {
            Ok(Ok(info)) => (Some(info), None),
            Ok(Err(e)) => (None, Some(e.to_string())),
            Err(e) => (None, Some(e.to_string())),
        };
    let (unread, total) = if paths.history_db().exists() {
        let history = History::open(&paths.history_db())?;
        (history.unread_count()?, history.len()?)
    } else {
        (0, 0)
    };
    let last_state = read_state(paths);
    let daemon_running = last_state
        .as_ref()
        .is_some_and(|s| s.running && process_alive(s.pid));
    let report = StatusReport {
        server: config.server,
        username: config.username,
        signed_in,
        keyring,
        keyring_error,
        notification_daemon: daemon,
        notification_daemon_error: daemon_error,
        unread,
        total,
        last_state,
        daemon_running,
        config_file: paths.config_file().display().to_string(),
        data_dir: paths.data_dir.display().to_string(),
    };
    if args.json {
        let text = serde_json::to_string_pretty(&report)
            .map_err(|e| CliError::Failed(format!("cannot encode the status: {e}")))?;
        say_json!(text);
        return Ok(());
    }
    let none = || "(none)".to_string();
    say!(
        "server:        {}",
        report.server.clone().unwrap_or_else(none)
    );
    say!(
        "user:          {}{}",
        report.username.clone().unwrap_or_else(none),
        if report.signed_in {
            " (signed in)"
        } else {
            " (not signed in)"
        }
    );
    match (&report.keyring, &report.keyring_error) {
        (Some(k), _) => say!("keyring:       {k}"),
        (None, Some(e)) => say!("keyring:       unavailable: {e}"),
        (None, None) => say!("keyring:       unknown"),
    }
    match (
        &report.notification_daemon,
        &report.notification_daemon_error,
    ) {
        (Some(d), _) => say!("notifications: {} {} ({})", d.name, d.version, d.vendor),
        (None, Some(e)) => say!("notifications: none ({e})"),
        (None, None) => say!("notifications: unknown"),
    }
    say!("unread:        {} of {}", report.unread, report.total);
    match &report.last_state {
        Some(s) => say!(
            "last state:    {} ({} pid {}, {})",
            describe_state(&s.status.state),
            if report.daemon_running {
                "running,"
            } else {
                "stopped,"
            },
            s.pid,
            format_ms(s.updated_at_ms)
        ),
        None => say!("last state:    `taskbell run` has not run yet"),
    }
    say!("config:        {}", report.config_file);
    say!("data:          {}", report.data_dir);
    Ok(())
}

/// Runs `taskbell history`.
pub fn history(paths: &Paths, args: &HistoryArgs) -> Result<(), CliError> {
    let records: Vec<Record> = if paths.history_db().exists() {
        let history = History::open(&paths.history_db())?;
        history.list(&Query {
            unread_only: args.unread,
            limit: usize::try_from(args.limit).unwrap_or(usize::MAX),
            ..Query::default()
        })?
    } else {
        Vec::new()
    };
    if args.json {
        let text = serde_json::to_string_pretty(&records)
            .map_err(|e| CliError::Failed(format!("cannot encode the history: {e}")))?;
        say_json!(text);
        return Ok(());
    }
    if records.is_empty() {
        say!(
            "{}",
            if args.unread {
                "No unread notifications."
            } else {
                "No notifications yet."
            }
        );
        return Ok(());
    }
    for r in &records {
        let n = &r.notification;
        say!(
            "{} {}  [{}] {} — {}",
            if r.read { " " } else { "●" },
            format_ms(n.timestamp_ms),
            n.kind,
            sanitize::terminal_line(&n.title),
            sanitize::terminal_line(&n.content.replace('\n', " "))
        );
    }
    Ok(())
}

/// `YYYY-MM-DD HH:MM:SS` in local time (UTC when the offset is unknown).
pub fn format_ms(ms: i64) -> String {
    let offset = crate::LOCAL_OFFSET
        .get()
        .copied()
        .unwrap_or(time::UtcOffset::UTC);
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .map(|t| t.to_offset(offset))
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| ms.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_format_in_utc_without_an_offset() {
        assert_eq!(format_ms(0), "1970-01-01 00:00:00");
        assert_eq!(format_ms(1_698_739_200_000), "2023-10-31 08:00:00");
    }
}
