//! The settings file (TOML in the platform config dir), its defaults and
//! validation, and where TaskBell keeps its files ([`Paths`]).
//!
//! - A missing file means defaults; a malformed one is an error that names
//!   the key and says why ([`ConfigError`]). Unknown keys are errors too, so
//!   a typo never silently does nothing.
//! - [`Config::save`] is atomic (write a sibling file, fsync, rename).
//! - [`Config::server_url`] refuses `ws://` or `http://` to a host that is not
//!   loopback unless `allow_insecure = true`.
//!
//! Secrets never live here: tokens and passwords are in the OS keyring.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use serde::{Deserialize, Serialize};
use url::{Host, Url};

use crate::i18n::Lang;

/// Environment variable overriding the config dir.
pub const ENV_CONFIG_DIR: &str = "TASKBELL_CONFIG_DIR";
/// Environment variable overriding the data dir.
pub const ENV_DATA_DIR: &str = "TASKBELL_DATA_DIR";
/// The default task page template.
pub const DEFAULT_TASK_URL_TEMPLATE: &str = "{server}/tasks/{task_id}";
/// The default review page template (a reviewer's "Review" action on a toast).
pub const DEFAULT_REVIEW_URL_TEMPLATE: &str = "{server}/tasks/{task_id}/review";

/// Why the configuration could not be read, saved or used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Reading or writing a file failed.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What we tried ("read", "write", "create directory").
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML or has a value of the wrong type; the
    /// message comes from the TOML parser and names key and line.
    #[error("invalid config file {}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, where.
        message: String,
    },
    /// A value is well-typed but not acceptable.
    #[error("invalid config value `{key}`: {reason}")]
    Invalid {
        /// The key, e.g. `quiet_hours.start`.
        key: String,
        /// Why.
        reason: String,
    },
    /// An unencrypted URL to a host that is not this machine.
    #[error(
        "refusing unencrypted {url}: {host} is not a loopback address; use https:// (or set allow_insecure = true in the config)"
    )]
    Insecure {
        /// The URL.
        url: String,
        /// Its host.
        host: String,
    },
    /// No server configured yet.
    #[error("no server configured; run `taskbell login --server URL` first")]
    NoServer,
    /// No home directory to derive default dirs from.
    #[error(
        "cannot find a home directory for the config and data dirs; set {ENV_CONFIG_DIR} and {ENV_DATA_DIR}"
    )]
    NoDirs,
}

/// Daily quiet hours, local time, `"HH:MM"`; may span midnight (22:00–08:00).
/// `start == end` means no quiet hours.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuietHours {
    /// Start, `"HH:MM"` (inclusive).
    pub start: String,
    /// End, `"HH:MM"` (exclusive).
    pub end: String,
}

impl Default for QuietHours {
    fn default() -> Self {
        QuietHours {
            start: "22:00".to_owned(),
            end: "08:00".to_owned(),
        }
    }
}

impl QuietHours {
    /// Start and end as minutes of the day, or an error naming the key.
    pub fn minutes(&self) -> Result<(u16, u16), ConfigError> {
        Ok((
            parse_hhmm(&self.start, "quiet_hours.start")?,
            parse_hhmm(&self.end, "quiet_hours.end")?,
        ))
    }

    /// Whether `minute_of_day` (0..1440, local) falls in the quiet hours.
    /// Invalid times (see [`Config::validate`]) never silence anything.
    pub fn contains(&self, minute_of_day: u16) -> bool {
        match self.minutes() {
            Ok((start, end)) => in_window(start, end, minute_of_day),
            Err(_) => false,
        }
    }
}

/// Whether `m` is in `[start, end)`, wrapping past midnight when `start > end`.
pub fn in_window(start: u16, end: u16, m: u16) -> bool {
    match start.cmp(&end) {
        std::cmp::Ordering::Equal => false,
        std::cmp::Ordering::Less => start <= m && m < end,
        std::cmp::Ordering::Greater => m >= start || m < end,
    }
}

/// `"HH:MM"` → minutes of the day.
fn parse_hhmm(s: &str, key: &str) -> Result<u16, ConfigError> {
    let bad = || ConfigError::Invalid {
        key: key.to_owned(),
        reason: format!("expected a time as HH:MM (00:00 to 23:59), got \"{s}\""),
    };
    let (h, m) = s.trim().split_once(':').ok_or_else(bad)?;
    let digits = |p: &str| !p.is_empty() && p.len() <= 2 && p.bytes().all(|b| b.is_ascii_digit());
    if !digits(h) || m.len() != 2 || !digits(m) {
        return Err(bad());
    }
    let h: u16 = h.parse().map_err(|_| bad())?;
    let m: u16 = m.parse().map_err(|_| bad())?;
    if h > 23 || m > 59 {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

/// The sound `sound = true` asks for, for kinds without a sound of their own
/// (a freedesktop sound-theme name).
pub const DEFAULT_SOUND: &str = "message-new-instant";

/// The notification kinds `[kinds.NAME]` may name (their wire names).
pub const RULE_KINDS: [&str; 9] = [
    "task_reviewed",
    "task_submitted",
    "task_assigned",
    "skip_requested",
    "mention",
    "system",
    "test",
    "group",
    "private",
];

/// What happens to a notification's toast (`policy = "…"` of a kind or
/// project rule). Every notification is stored and counted whatever its policy;
/// only the toast (and with it the sound) is at stake. Ordered from least to
/// most strict.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum ToastPolicy {
    /// Show the toast (the default).
    #[default]
    Show,
    /// Store and count it, show no toast.
    Store,
    /// The user's "mute": as `Store` (stored, counted, no toast, so no sound).
    Mute,
}

impl ToastPolicy {
    /// The config name (`show`, `store`, `mute`).
    pub fn as_str(self) -> &'static str {
        match self {
            ToastPolicy::Show => "show",
            ToastPolicy::Store => "store",
            ToastPolicy::Mute => "mute",
        }
    }
}

/// A `[kinds.NAME]` rule: the toast policy and the sound of one kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KindRule {
    /// Show, store or mute this kind's toasts.
    pub policy: ToastPolicy,
    /// The freedesktop sound name its toasts ask for (instead of the default
    /// sound); unset: the default (`sound = true`) or none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sound: Option<String>,
}

/// A `[projects."ID"]` rule: the toast policy of one project's notifications.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProjectRule {
    /// Show, store or mute this project's toasts (applies when it is stricter
    /// than the kind's rule).
    pub policy: ToastPolicy,
}

/// Whether `name` is a plausible freedesktop sound-theme name: 1 to 64
/// characters of ASCII letters, digits, `-`, `_` and `.`.
pub fn valid_sound_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// TaskBell's settings (the `config.toml` file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Platform base URL, e.g. `https://annotate.example.com`.
    pub server: Option<String>,
    /// The account's user name (the token is in the keyring).
    pub username: Option<String>,
    /// Keep the password in the keyring to sign in again silently.
    pub remember_me: bool,
    /// Seconds between heartbeat pings (default 30).
    pub heartbeat_interval_secs: u64,
    /// Seconds without a pong after which the connection is dead (default 10).
    pub pong_timeout_secs: u64,
    /// Quiet hours, if any.
    pub quiet_hours: Option<QuietHours>,
    /// Let urgent (critical) notifications through pause and quiet hours.
    pub urgent_bypass: bool,
    /// Notifications paused until this wall-clock time (ms since the epoch).
    pub paused_until_ms: Option<i64>,
    /// UI language; `None` follows the system locale.
    pub language: Option<Lang>,
    /// Task page template with `{server}` and `{task_id}`.
    pub task_url_template: String,
    /// Review page template with `{server}` and `{task_id}` (the "Review" action
    /// reviewers get on `task_submitted` and `skip_requested` toasts; same origin
    /// rule as the task page).
    pub review_url_template: String,
    /// Allow `http://` / `ws://` to hosts that are not loopback.
    pub allow_insecure: bool,
    /// More than this many toasts within the fold window fold into one.
    pub fold_threshold: usize,
    /// The fold window in ms.
    pub fold_window_ms: u64,
    /// Ask the notification daemon to play [`DEFAULT_SOUND`] for kinds without
    /// a sound of their own ([`KindRule::sound`]).
    pub sound: bool,
    /// Start the tray app at login.
    pub autostart: bool,
    /// The history keeps at most this many notifications (the oldest go first).
    pub history_max_rows: u64,
    /// The history forgets notifications older than this many days.
    pub history_max_days: u32,
    /// A PEM file of extra certificate authorities to trust (an internal CA),
    /// besides the operating system's store; for REST and the socket alike.
    pub ca_file: Option<String>,
    /// The proxy for REST and the socket: `http://host:port`, `socks5://…`,
    /// `socks5h://…`, or `"none"`; unset: the environment (`HTTPS_PROXY`,
    /// `NO_PROXY` …) and the system settings.
    pub proxy: Option<String>,
    /// Hosts reached without `proxy` (comma-separated, as `NO_PROXY`).
    pub no_proxy: Option<String>,
    /// Toast policy and sound per notification kind (`[kinds.task_reviewed]`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub kinds: BTreeMap<String, KindRule>,
    /// Toast policy per project id (`[projects."p-12"]`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub projects: BTreeMap<String, ProjectRule>,
}

/// The allowed range of `heartbeat_interval_secs` (the config file, the settings window
/// and the CLI all check this one).
pub const HEARTBEAT_SECS_RANGE: std::ops::RangeInclusive<u64> = 5..=3600;

/// The allowed range of `history_max_rows`.
pub const HISTORY_ROWS_RANGE: std::ops::RangeInclusive<u64> = 100..=10_000_000;
/// The allowed range of `history_max_days`.
pub const HISTORY_DAYS_RANGE: std::ops::RangeInclusive<u32> = 1..=3650;

impl Default for Config {
    fn default() -> Self {
        Config {
            server: None,
            username: None,
            remember_me: false,
            heartbeat_interval_secs: 30,
            pong_timeout_secs: 10,
            quiet_hours: None,
            urgent_bypass: true,
            paused_until_ms: None,
            language: None,
            task_url_template: DEFAULT_TASK_URL_TEMPLATE.to_owned(),
            review_url_template: DEFAULT_REVIEW_URL_TEMPLATE.to_owned(),
            allow_insecure: false,
            fold_threshold: 3,
            fold_window_ms: 2000,
            sound: false,
            autostart: false,
            history_max_rows: 50_000,
            history_max_days: 365,
            ca_file: None,
            proxy: None,
            no_proxy: None,
            kinds: BTreeMap::new(),
            projects: BTreeMap::new(),
        }
    }
}

impl Config {
    /// Loads and validates the file; a missing file gives the defaults.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
            Err(source) => {
                return Err(ConfigError::Io {
                    action: "read",
                    path: path.to_owned(),
                    source,
                });
            }
        };
        let config = Config::from_toml(&text).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: path.to_owned(),
                message,
            },
            other => other,
        })?;
        Ok(config)
    }

    /// Parses and validates TOML text (errors carry an empty path).
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: PathBuf::new(),
            message: e.to_string().trim().to_owned(),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// The TOML text of this config.
    pub fn to_toml(&self) -> Result<String, ConfigError> {
        toml::to_string_pretty(self).map_err(|e| ConfigError::Invalid {
            key: "(config)".to_owned(),
            reason: e.to_string(),
        })
    }

    /// Changes the file at `path` under a process-wide lock: load, `change`, save.
    ///
    /// Every writer in a process goes through here (the engine saving a pause,
    /// sign-in and sign-out, the tray's settings window), so none of them ever
    /// overwrites another's change with a stale copy. Returns the saved config;
    /// when `change` fails, nothing is written.
    pub fn update<E: From<ConfigError>>(
        path: &Path,
        change: impl FnOnce(&mut Config) -> Result<(), E>,
    ) -> Result<Config, E> {
        static WRITERS: Mutex<()> = Mutex::new(());
        let _writer = WRITERS.lock().unwrap_or_else(PoisonError::into_inner);
        let mut config = Config::load(path)?;
        change(&mut config)?;
        config.save(path)?;
        Ok(config)
    }

    /// Validates, then writes the file atomically (sibling temp file, fsync,
    /// rename), creating the directory if needed. To change one setting of the
    /// file, use [`Config::update`].
    pub fn save(&self, path: &Path) -> Result<(), ConfigError> {
        self.validate()?;
        let text = self.to_toml()?;
        write_atomic(path, text.as_bytes())
    }

    /// Checks every value; the error names the first bad key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, reason: String| {
            Err(ConfigError::Invalid {
                key: key.to_owned(),
                reason,
            })
        };
        if !HEARTBEAT_SECS_RANGE.contains(&self.heartbeat_interval_secs) {
            return invalid(
                "heartbeat_interval_secs",
                format!(
                    "must be between {} and {} seconds, got {}",
                    HEARTBEAT_SECS_RANGE.start(),
                    HEARTBEAT_SECS_RANGE.end(),
                    self.heartbeat_interval_secs
                ),
            );
        }
        if !(1..=600).contains(&self.pong_timeout_secs) {
            return invalid(
                "pong_timeout_secs",
                format!(
                    "must be between 1 and 600 seconds, got {}",
                    self.pong_timeout_secs
                ),
            );
        }
        if self.fold_threshold == 0 {
            return invalid("fold_threshold", "must be at least 1".to_owned());
        }
        if self.fold_window_ms > 60_000 {
            return invalid(
                "fold_window_ms",
                format!("must be at most 60000 ms, got {}", self.fold_window_ms),
            );
        }
        if !HISTORY_ROWS_RANGE.contains(&self.history_max_rows) {
            return invalid(
                "history_max_rows",
                format!(
                    "must be between {} and {}, got {}",
                    HISTORY_ROWS_RANGE.start(),
                    HISTORY_ROWS_RANGE.end(),
                    self.history_max_rows
                ),
            );
        }
        if !HISTORY_DAYS_RANGE.contains(&self.history_max_days) {
            return invalid(
                "history_max_days",
                format!(
                    "must be between {} and {} days, got {}",
                    HISTORY_DAYS_RANGE.start(),
                    HISTORY_DAYS_RANGE.end(),
                    self.history_max_days
                ),
            );
        }
        if let Err(e) = crate::net::ProxyMode::from_config(self) {
            return invalid("proxy", e.to_string());
        }
        if self.ca_file.as_deref().is_some_and(|f| f.trim().is_empty()) {
            return invalid(
                "ca_file",
                "is empty; remove it or name a PEM file".to_owned(),
            );
        }
        for (key, template) in [
            ("task_url_template", &self.task_url_template),
            ("review_url_template", &self.review_url_template),
        ] {
            if !template.contains("{task_id}") {
                return invalid(key, format!("must contain {{task_id}}, got \"{template}\""));
            }
        }
        if let Some(q) = &self.quiet_hours {
            q.minutes()?;
        }
        for (kind, rule) in &self.kinds {
            if !RULE_KINDS.contains(&kind.as_str()) {
                return invalid(
                    &format!("kinds.{kind}"),
                    format!(
                        "\"{kind}\" is not a notification kind; use one of {}",
                        RULE_KINDS.join(", ")
                    ),
                );
            }
            if let Some(sound) = &rule.sound
                && !valid_sound_name(sound)
            {
                return invalid(
                    &format!("kinds.{kind}.sound"),
                    format!(
                        "expected a sound name such as \"{DEFAULT_SOUND}\" (letters, digits, - _ . and at most 64 characters), got \"{sound}\""
                    ),
                );
            }
        }
        if self.projects.keys().any(|p| p.trim().is_empty()) {
            return invalid("projects", "a project id is empty".to_owned());
        }
        if self.server.is_some() {
            self.server_url()?;
        }
        Ok(())
    }

    /// The sound for kinds without one of their own: [`DEFAULT_SOUND`] with
    /// `sound = true`, else none.
    pub fn default_sound(&self) -> Option<&'static str> {
        self.sound.then_some(DEFAULT_SOUND)
    }

    /// The platform base URL (scheme `http`/`https`; `ws`/`wss` are mapped to
    /// them). Refuses unencrypted URLs to a host that is not loopback unless
    /// `allow_insecure`.
    pub fn server_url(&self) -> Result<Url, ConfigError> {
        let server = self.server.as_deref().ok_or(ConfigError::NoServer)?;
        parse_server_url(server, self.allow_insecure)
    }
}

/// Parses a platform base URL (see [`Config::server_url`]).
pub fn parse_server_url(server: &str, allow_insecure: bool) -> Result<Url, ConfigError> {
    let invalid = |reason: String| ConfigError::Invalid {
        key: "server".to_owned(),
        reason,
    };
    let mut url = Url::parse(server.trim())
        .map_err(|e| invalid(format!("\"{server}\" is not a URL ({e})")))?;
    let secure = match url.scheme() {
        "https" => true,
        "http" => false,
        "wss" => {
            set_scheme(&mut url, "https").map_err(|()| invalid("cannot use wss".into()))?;
            true
        }
        "ws" => {
            set_scheme(&mut url, "http").map_err(|()| invalid("cannot use ws".into()))?;
            false
        }
        other => {
            return Err(invalid(format!(
                "scheme \"{other}\" is not supported; use https:// or http://"
            )));
        }
    };
    let host = url
        .host()
        .ok_or_else(|| invalid(format!("\"{server}\" has no host")))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(
            "user names or passwords do not belong in the URL".to_owned(),
        ));
    }
    if !secure && !allow_insecure && !is_loopback(&host) {
        return Err(ConfigError::Insecure {
            url: server.to_owned(),
            host: host.to_string(),
        });
    }
    url.set_query(None);
    url.set_fragment(None);
    Ok(url)
}

/// Url::set_scheme between special schemes.
fn set_scheme(url: &mut Url, scheme: &str) -> Result<(), ()> {
    url.set_scheme(scheme)
}

/// `localhost`, 127.0.0.0/8 and ::1. Not `*.localhost`: such names are resolved
/// through DNS like any other, so a plain-http URL to one can leave the machine.
pub fn is_loopback(host: &Host<&str>) -> bool {
    match host {
        Host::Domain(d) => d.trim_end_matches('.').eq_ignore_ascii_case("localhost"),
        Host::Ipv4(ip) => IpAddr::V4(*ip).is_loopback(),
        Host::Ipv6(ip) => IpAddr::V6(*ip).is_loopback(),
    }
}

/// Writes `bytes` to `path` atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ConfigError> {
    let io = |action: &'static str, p: &Path| {
        let p = p.to_owned();
        move |source| ConfigError::Io {
            action,
            path: p,
            source,
        }
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(io("create directory", &dir))?;
    // A temporary file of its own per call (not per process): the tray app saves from
    // two threads at once (the engine's pause, the settings window).
    let mut prefix = OsString::from(".");
    prefix.push(path.file_name().unwrap_or_default());
    prefix.push(".tmp-");
    let mut tmp = tempfile::Builder::new()
        .prefix(&prefix)
        .tempfile_in(&dir)
        .map_err(io("write", &dir))?;
    tmp.write_all(bytes).map_err(io("write", tmp.path()))?;
    tmp.as_file().sync_all().map_err(io("write", path))?;
    // On failure the temporary file is removed when `persist`'s error is dropped.
    tmp.persist(path).map_err(|e| io("write", path)(e.error))?;
    Ok(())
}

/// Where TaskBell keeps its files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Paths {
    /// Holds `config.toml`.
    pub config_dir: PathBuf,
    /// Holds `history.sqlite3`.
    pub data_dir: PathBuf,
}

impl Paths {
    /// Resolves the dirs: explicit overrides (CLI flags) first, then
    /// `TASKBELL_CONFIG_DIR` / `TASKBELL_DATA_DIR`, then the platform dirs
    /// (`directories`; on Linux `~/.config/taskbell`, `~/.local/share/taskbell`).
    pub fn resolve(
        config_override: Option<PathBuf>,
        data_override: Option<PathBuf>,
    ) -> Result<Paths, ConfigError> {
        Paths::resolve_with_env(config_override, data_override, |k| std::env::var_os(k))
    }

    /// As [`Paths::resolve`], with the environment passed in (for tests).
    pub fn resolve_with_env(
        config_override: Option<PathBuf>,
        data_override: Option<PathBuf>,
        env: impl Fn(&str) -> Option<OsString>,
    ) -> Result<Paths, ConfigError> {
        let from_env = |k: &str| env(k).filter(|v| !v.is_empty()).map(PathBuf::from);
        let config_dir = config_override.or_else(|| from_env(ENV_CONFIG_DIR));
        let data_dir = data_override.or_else(|| from_env(ENV_DATA_DIR));
        if let (Some(config_dir), Some(data_dir)) = (&config_dir, &data_dir) {
            return Ok(Paths {
                config_dir: config_dir.clone(),
                data_dir: data_dir.clone(),
            });
        }
        let dirs = directories::ProjectDirs::from("", "", "taskbell").ok_or(ConfigError::NoDirs)?;
        Ok(Paths {
            config_dir: config_dir.unwrap_or_else(|| dirs.config_dir().to_owned()),
            data_dir: data_dir.unwrap_or_else(|| dirs.data_dir().to_owned()),
        })
    }

    /// `<config_dir>/config.toml`.
    pub fn config_file(&self) -> PathBuf {
        self.config_dir.join("config.toml")
    }

    /// `<data_dir>/history.sqlite3`.
    pub fn history_db(&self) -> PathBuf {
        self.data_dir.join("history.sqlite3")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid_key(r: Result<Config, ConfigError>) -> String {
        match r {
            Err(ConfigError::Invalid { key, .. }) => key,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn missing_file_gives_defaults_and_save_load_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("config.toml");
        let c = Config::load(&path).unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.heartbeat_interval_secs, 30);
        assert_eq!(c.task_url_template, "{server}/tasks/{task_id}");
        assert_eq!(c.review_url_template, "{server}/tasks/{task_id}/review");

        let mut c = Config {
            server: Some("https://annotate.example.com".into()),
            username: Some("张三".into()),
            quiet_hours: Some(QuietHours::default()),
            language: Some(Lang::ZhCn),
            paused_until_ms: Some(1_700_000_000_000),
            ..Config::default()
        };
        c.save(&path).unwrap();
        assert_eq!(Config::load(&path).unwrap(), c);
        c.remember_me = true;
        c.save(&path).unwrap();
        assert_eq!(Config::load(&path).unwrap(), c);
        // no temp files left behind
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![OsString::from("config.toml")]);
    }

    #[test]
    fn a_failed_save_leaves_the_old_file_intact() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let old = Config {
            server: Some("https://old.example".into()),
            ..Config::default()
        };
        old.save(&path).unwrap();
        let new = Config {
            server: Some("https://new.example".into()),
            ..Config::default()
        };
        // A save whose directory cannot be created fails before touching anything.
        let blocked = dir.path().join("config.toml").join("nested.toml");
        let e = new.save(&blocked).unwrap_err();
        assert!(matches!(e, ConfigError::Io { .. }), "{e}");
        assert_eq!(Config::load(&path).unwrap(), old);
        // A save whose final rename fails (the target is a non-empty directory)
        // leaves no temporary file behind.
        let target = dir.path().join("taken.toml");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("keep"), b"x").unwrap();
        let e = new.save(&target).unwrap_err();
        assert!(matches!(e, ConfigError::Io { .. }), "{e}");
        assert!(target.join("keep").exists());
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".tmp-"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
        // An invalid config is never written.
        let bad = Config {
            heartbeat_interval_secs: 0,
            ..Config::default()
        };
        assert!(bad.save(&path).is_err());
        assert_eq!(Config::load(&path).unwrap(), old);
    }

    #[test]
    fn concurrent_updates_of_different_settings_are_all_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let pauses = {
            let path = path.clone();
            std::thread::spawn(move || {
                for i in 0..200i64 {
                    Config::update(&path, |c| {
                        c.paused_until_ms = Some(i);
                        Ok::<_, ConfigError>(())
                    })
                    .unwrap();
                }
            })
        };
        for i in 0..200u64 {
            Config::update(&path, |c| {
                c.heartbeat_interval_secs = 10 + i;
                Ok::<_, ConfigError>(())
            })
            .unwrap();
        }
        pauses.join().unwrap();
        let last = Config::load(&path).unwrap();
        assert_eq!(last.heartbeat_interval_secs, 209);
        assert_eq!(last.paused_until_ms, Some(199));
        // A failed change writes nothing.
        let e = Config::update(&path, |c| {
            c.heartbeat_interval_secs = 99;
            Err(ConfigError::NoServer)
        })
        .unwrap_err();
        assert!(matches!(e, ConfigError::NoServer), "{e}");
        assert_eq!(Config::load(&path).unwrap().heartbeat_interval_secs, 209);
    }

    #[test]
    fn concurrent_saves_from_threads_of_one_process_all_succeed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let handles: Vec<_> = (0..8u64)
            .map(|i| {
                let path = path.clone();
                std::thread::spawn(move || {
                    for j in 0..25u64 {
                        let c = Config {
                            heartbeat_interval_secs: 10 + i * 100 + j,
                            ..Config::default()
                        };
                        c.save(&path).unwrap();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        // The file holds one whole config written by one of the savers.
        let last = Config::load(&path).unwrap();
        assert!(last.heartbeat_interval_secs >= 10, "{last:?}");
    }

    #[test]
    fn errors_name_the_key() {
        let e = Config::from_toml("heartbeat_interval_secs = \"thirty\"").unwrap_err();
        assert!(e.to_string().contains("heartbeat_interval_secs"), "{e}");
        let e = Config::from_toml("heartbeat_intervl_secs = 30").unwrap_err();
        assert!(e.to_string().contains("heartbeat_intervl_secs"), "{e}");
        let e = Config::from_toml("server = [").unwrap_err();
        assert!(matches!(e, ConfigError::Parse { .. }), "{e}");
        assert_eq!(
            invalid_key(Config::from_toml("heartbeat_interval_secs = 0")),
            "heartbeat_interval_secs"
        );
        assert_eq!(
            invalid_key(Config::from_toml("pong_timeout_secs = 100000")),
            "pong_timeout_secs"
        );
        assert_eq!(
            invalid_key(Config::from_toml("fold_threshold = 0")),
            "fold_threshold"
        );
        assert_eq!(
            invalid_key(Config::from_toml("task_url_template = \"{server}/x\"")),
            "task_url_template"
        );
        assert_eq!(
            invalid_key(Config::from_toml("review_url_template = \"{server}/r\"")),
            "review_url_template"
        );
        assert_eq!(
            invalid_key(Config::from_toml(
                "quiet_hours = { start = \"25:00\", end = \"08:00\" }"
            )),
            "quiet_hours.start"
        );
        assert_eq!(
            invalid_key(Config::from_toml(
                "quiet_hours = { start = \"22:00\", end = \"8\" }"
            )),
            "quiet_hours.end"
        );
        assert_eq!(
            invalid_key(Config::from_toml("server = \"ftp://x\"")),
            "server"
        );
        let e = Config::from_toml("language = \"fr\"").unwrap_err();
        assert!(e.to_string().contains("language"), "{e}");
    }

    #[test]
    fn kind_and_project_rules_parse_round_trip_and_name_bad_keys() {
        let c = Config::from_toml(
            r#"
sound = true
[kinds.task_reviewed]
policy = "show"
sound = "message-new-instant"
[kinds.system]
policy = "store"
[projects."p-12"]
policy = "mute"
"#,
        )
        .unwrap();
        assert_eq!(c.default_sound(), Some(DEFAULT_SOUND));
        assert_eq!(c.kinds["task_reviewed"].policy, ToastPolicy::Show);
        assert_eq!(
            c.kinds["task_reviewed"].sound.as_deref(),
            Some("message-new-instant")
        );
        assert_eq!(c.kinds["system"].policy, ToastPolicy::Store);
        assert_eq!(c.kinds["system"].sound, None);
        assert_eq!(c.projects["p-12"].policy, ToastPolicy::Mute);
        assert_eq!(Config::from_toml(&c.to_toml().unwrap()).unwrap(), c);
        assert_eq!(Config::default().default_sound(), None);
        // An empty rule is the default policy.
        let c = Config::from_toml("[kinds.mention]").unwrap();
        assert_eq!(c.kinds["mention"], KindRule::default());
        assert!(ToastPolicy::Show < ToastPolicy::Store && ToastPolicy::Store < ToastPolicy::Mute);

        let e = Config::from_toml("[kinds.mention]\npolicy = \"loud\"").unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, ConfigError::Parse { .. }), "{msg}");
        assert!(msg.contains("policy") && msg.contains("loud"), "{msg}");
        assert!(msg.contains("show") && msg.contains("mute"), "{msg}");
        let e = Config::from_toml("[projects.p1]\npolicy = \"hide\"").unwrap_err();
        assert!(e.to_string().contains("policy"), "{e}");
        let e = Config::from_toml("[kinds.mention]\nvolume = 3").unwrap_err();
        assert!(e.to_string().contains("volume"), "{e}");
        let e = Config::from_toml("[projects.p1]\nsound = \"bell\"").unwrap_err();
        assert!(e.to_string().contains("sound"), "{e}");
        assert_eq!(
            invalid_key(Config::from_toml("[kinds.task_reviewd]\npolicy = \"mute\"")),
            "kinds.task_reviewd"
        );
        let e = Config::from_toml("[kinds.task_reviewd]").unwrap_err();
        assert!(
            e.to_string().contains("task_reviewed"),
            "lists the kinds: {e}"
        );
        for bad in ["", "a b", "../x", "bell\\n"] {
            assert_eq!(
                invalid_key(Config::from_toml(&format!(
                    "[kinds.mention]\nsound = \"{bad}\""
                ))),
                "kinds.mention.sound",
                "{bad:?}"
            );
        }
        assert_eq!(
            invalid_key(Config::from_toml("[projects.\"\"]\npolicy = \"mute\"")),
            "projects"
        );
    }

    #[test]
    fn a_corrupt_file_is_an_error_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "server = \"https://a\"\nremember_me = maybe\n").unwrap();
        let e = Config::load(&path).unwrap_err().to_string();
        assert!(e.contains("config.toml"), "{e}");
        assert!(e.contains("remember_me") || e.contains("line 2"), "{e}");
    }

    #[test]
    fn insecure_urls_only_to_loopback() {
        let url = |s: &str, allow: bool| {
            Config {
                server: Some(s.into()),
                allow_insecure: allow,
                ..Config::default()
            }
            .server_url()
        };
        for ok in [
            "http://localhost:8000",
            "http://127.0.0.1:9",
            "http://127.8.9.1",
            "http://[::1]:8000",
            "ws://localhost:8000",
            "https://annotate.example.com",
            "wss://annotate.example.com",
        ] {
            assert!(url(ok, false).is_ok(), "{ok}");
        }
        assert_eq!(
            url("ws://localhost:8000", false).unwrap().as_str(),
            "http://localhost:8000/"
        );
        assert_eq!(
            url("wss://a.example/", false).unwrap().as_str(),
            "https://a.example/"
        );
        for bad in [
            "http://annotate.example.com",
            "ws://10.0.0.5:8000",
            "http://192.168.1.2",
            "http://localhost.evil.com",
            "http://evil.localhost:8000",
            "ws://a.b.localhost.",
        ] {
            assert!(
                matches!(url(bad, false), Err(ConfigError::Insecure { .. })),
                "{bad}"
            );
            assert!(url(bad, true).is_ok(), "{bad} with allow_insecure");
        }
        assert!(matches!(
            url("https://user:pw@a.example", false),
            Err(ConfigError::Invalid { .. })
        ));
        assert!(matches!(
            url("not a url", false),
            Err(ConfigError::Invalid { .. })
        ));
        assert!(matches!(
            Config::default().server_url(),
            Err(ConfigError::NoServer)
        ));
        let e = Config::from_toml("server = \"http://example.com\"").unwrap_err();
        assert!(e.to_string().contains("allow_insecure"), "{e}");
    }

    #[test]
    fn quiet_hours_wrap_midnight() {
        let q = QuietHours::default(); // 22:00-08:00
        assert!(q.contains(22 * 60));
        assert!(q.contains(23 * 60 + 59));
        assert!(q.contains(0));
        assert!(q.contains(7 * 60 + 59));
        assert!(!q.contains(8 * 60));
        assert!(!q.contains(12 * 60));
        assert!(!q.contains(21 * 60 + 59));
        let day = QuietHours {
            start: "12:00".into(),
            end: "13:30".into(),
        };
        assert!(day.contains(12 * 60));
        assert!(day.contains(13 * 60 + 29));
        assert!(!day.contains(13 * 60 + 30));
        assert!(!day.contains(11 * 60));
        let none = QuietHours {
            start: "09:00".into(),
            end: "09:00".into(),
        };
        assert!(!none.contains(9 * 60));
        let broken = QuietHours {
            start: "x".into(),
            end: "09:00".into(),
        };
        assert!(!broken.contains(0));
    }

    #[test]
    fn paths_precedence() {
        let env = |k: &str| match k {
            ENV_CONFIG_DIR => Some(OsString::from("/env/config")),
            ENV_DATA_DIR => Some(OsString::from("/env/data")),
            _ => None,
        };
        let p = Paths::resolve_with_env(None, None, env).unwrap();
        assert_eq!(p.config_file(), PathBuf::from("/env/config/config.toml"));
        assert_eq!(p.history_db(), PathBuf::from("/env/data/history.sqlite3"));
        let p = Paths::resolve_with_env(Some("/flag/c".into()), None, env).unwrap();
        assert_eq!(p.config_dir, PathBuf::from("/flag/c"));
        assert_eq!(p.data_dir, PathBuf::from("/env/data"));
        let p = Paths::resolve_with_env(None, Some("/flag/d".into()), |_| None);
        // falls back to the platform dirs for the config dir (HOME exists here)
        if let Ok(p) = p {
            assert_eq!(p.data_dir, PathBuf::from("/flag/d"));
            assert!(p.config_dir.ends_with("taskbell"), "{:?}", p.config_dir);
        }
    }
}
