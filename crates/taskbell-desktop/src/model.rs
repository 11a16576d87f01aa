//! The shapes the app shows: what the tray renders and what the ui/ windows receive.
//! They are built from the core's types in [`crate::view`]; none of them can carry a
//! token (there is no field for one), which is how "no token reaches the UI" is kept.

use serde::{Deserialize, Serialize};
use taskbell_core::config::ToastPolicy;
use taskbell_core::i18n::{Msg, tr};

/// The language of the tray and the windows: the core's, serialised as `"zh-CN"`/`"en"`.
pub use taskbell_core::i18n::Lang;

/// The connection state as the tray and the windows see it: the core's own state
/// (serialised with a `state` tag, e.g. `{"state": "connected", "latency_ms": 38}`).
pub use taskbell_core::supervisor::State as ConnState;

/// The signed-in user as shown (never with a token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UiUser {
    /// Login name.
    pub username: String,
    /// Real name, or the login name when there is none.
    pub display_name: String,
    /// "annotator", "reviewer" or "admin".
    pub role: String,
}

/// Everything the tray icon, tooltip and menu show; also sent to the windows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UiStatus {
    /// Connection state.
    pub state: ConnState,
    /// Notifications are paused until this wall-clock time (ms since the epoch).
    pub paused_until_ms: Option<i64>,
    /// `paused_until_ms` as local "HH:MM" (or a date when not today), for labels.
    pub paused_label: Option<String>,
    /// Unread notifications in the history.
    pub unread: u64,
    /// Who is signed in.
    pub user: Option<UiUser>,
    /// The login summary lines (click opens the platform).
    pub summary_lines: Vec<String>,
    /// The platform's base URL, when configured.
    pub server: Option<String>,
    /// Running against the embedded demo server.
    pub demo: bool,
    /// How many accounts the tray runs (the first one and the further signed-in ones);
    /// `unread` is their sum.
    pub accounts: u32,
    /// Every account with its own state, when there are several (empty with one).
    #[serde(default)]
    pub account_list: Vec<UiAccount>,
    /// The state in words, in the app's language ("Connected · 38 ms · 2 accounts"),
    /// computed once in Rust for the menu, the tooltip and the windows.
    #[serde(default)]
    pub state_line: String,
}

/// One account of several, as the tray's "Accounts" submenu shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UiAccount {
    /// `user@host`.
    pub id: String,
    /// Its connection.
    pub state: ConnState,
    /// Its unread count.
    pub unread: u64,
    /// Its notifications are paused until then (ms since the epoch).
    #[serde(default)]
    pub paused_until_ms: Option<i64>,
}

impl UiStatus {
    /// The state before anything is known: signed out, nothing unread.
    pub fn signed_out() -> Self {
        Self {
            state: ConnState::SignedOut { reason: None },
            paused_until_ms: None,
            paused_label: None,
            unread: 0,
            user: None,
            summary_lines: Vec::new(),
            server: None,
            demo: false,
            accounts: 1,
            account_list: Vec::new(),
            state_line: String::new(),
        }
    }
}

/// One history entry for the notification center.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UiNotification {
    /// Stable key: the dedupe key in the history store; with several accounts,
    /// `"<account>/<key>"`, so keys stay unique across accounts (account ids never
    /// contain a `/`) and the commands that take keys know which account they mean.
    pub key: String,
    /// The account it came to (`user@host`), when there are several; `None` with one.
    pub account: Option<String>,
    /// The notification kind, e.g. "task_reviewed".
    pub kind: String,
    /// The filter group: "reviews", "submissions", "mentions", "system" or "chat".
    pub group: String,
    /// Title.
    pub title: String,
    /// Body text.
    pub content: String,
    /// "low", "normal", "high" or "urgent".
    pub priority: String,
    /// When it happened (ms since the epoch).
    pub timestamp_ms: i64,
    /// Whether the user has read it.
    pub read: bool,
    /// Whether clicking it opens a task on the platform.
    pub has_link: bool,
    /// The platform's task id, when the notification is about a task (searchable).
    pub task_id: Option<String>,
    /// The project id, when the platform names one (searchable, a filter).
    pub project: Option<String>,
}

/// The filter of the notification center's list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryFilter {
    /// Only these groups (see [`UiNotification::group`]); empty or absent = all.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Only unread ones.
    #[serde(default)]
    pub unread_only: bool,
    /// At most this many (default 200, at most [`HistoryFilter::MAX_LIMIT`]).
    #[serde(default)]
    pub limit: Option<usize>,
    /// Skip this many of the newest first (paging; default 0).
    #[serde(default)]
    pub offset: Option<usize>,
}

impl HistoryFilter {
    /// The most rows one call returns: the default history retention
    /// (`history_max_rows`), so the center can hold the whole history.
    pub const MAX_LIMIT: usize = 50_000;
}

/// The settings window's form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UiSettings {
    /// Platform base URL.
    pub server: String,
    /// The last signed-in user name (read-only here; prefills the login window).
    #[serde(default)]
    pub username: String,
    /// Heartbeat interval in seconds.
    pub heartbeat_interval_secs: u64,
    /// Quiet hours on or off.
    pub quiet_hours_enabled: bool,
    /// Quiet hours start, "HH:MM".
    pub quiet_start: String,
    /// Quiet hours end, "HH:MM".
    pub quiet_end: String,
    /// Let urgent notifications through while paused or in quiet hours.
    pub urgent_bypass: bool,
    /// "system", "zh-CN" or "en".
    pub language: String,
    /// Start TaskBell at login.
    pub autostart: bool,
    /// Play the notification sound.
    pub sound: bool,
    /// The heartbeat interval's allowed range in seconds, `[min, max]` (the core's one
    /// range, `config::HEARTBEAT_SECS_RANGE`; the form checks against it, read-only).
    #[serde(default)]
    pub heartbeat_secs_range: (u64, u64),
    /// Toast policy and sound per notification kind, one entry per kind a rule may name,
    /// in the config's order (`[kinds.NAME]`).
    #[serde(default)]
    pub kinds: Vec<UiKindRule>,
    /// The per-project toast policies (`[projects."ID"]`); saving drops the ones left out.
    #[serde(default)]
    pub projects: Vec<UiProjectRule>,
}

/// One notification kind's rule in the settings form (`[kinds.NAME]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UiKindRule {
    /// The kind's wire name, e.g. "task_reviewed".
    pub kind: String,
    /// "show", "store" or "mute".
    pub policy: ToastPolicy,
    /// Its own sound (a freedesktop sound name); `None`: the default sound setting.
    pub sound: Option<String>,
}

/// One project's rule in the settings form and the center (`[projects."ID"]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UiProjectRule {
    /// The project id as the server sends it.
    pub project: String,
    /// "show", "store" or "mute".
    pub policy: ToastPolicy,
}

/// One reconnect, for the diagnostics log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconnectEntry {
    /// When (ms since the epoch).
    pub at_ms: i64,
    /// Why the connection ended.
    pub reason: String,
    /// The wait before the next attempt.
    pub delay_ms: u64,
    /// Which attempt in a row (1 after a healthy connection).
    #[serde(default)]
    pub attempt: u32,
    /// The account (`user@host`) when there are several; `None` with one.
    #[serde(default)]
    pub account: Option<String>,
}

/// One self-check line of the diagnostics window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// "keyring", "notifications" or "tray".
    pub id: String,
    /// Whether it works.
    pub ok: bool,
    /// What was found.
    pub detail: String,
    /// What to do when it does not work (empty when ok).
    pub fix: String,
}

/// The diagnostics window's data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UiDiagnostics {
    /// Recent heartbeat round trips, oldest first.
    pub latency_ms: Vec<u64>,
    /// Recent reconnects, newest first.
    pub reconnects: Vec<ReconnectEntry>,
    /// Self-checks.
    pub checks: Vec<Check>,
}

/// The app's windows; each has its own page in ui/ and its own capability file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WindowKind {
    /// Sign in (server URL, user name, password, remember me).
    Login,
    /// The notification center.
    Center,
    /// Settings.
    Settings,
    /// Diagnostics.
    Diagnostics,
}

impl WindowKind {
    /// All windows.
    pub const ALL: [WindowKind; 4] = [Self::Login, Self::Center, Self::Settings, Self::Diagnostics];

    /// The window label (also the capability's `windows` entry).
    pub fn label(self) -> &'static str {
        match self {
            Self::Login => "login",
            Self::Center => "center",
            Self::Settings => "settings",
            Self::Diagnostics => "diagnostics",
        }
    }

    /// The page in ui/.
    pub fn page(self) -> &'static str {
        match self {
            Self::Login => "login.html",
            Self::Center => "center.html",
            Self::Settings => "settings.html",
            Self::Diagnostics => "diagnostics.html",
        }
    }

    /// The window title.
    pub fn title(self, lang: Lang) -> String {
        let msg = match self {
            Self::Login => Msg::WindowLogin,
            Self::Center => Msg::WindowCenter,
            Self::Settings => Msg::WindowSettings,
            Self::Diagnostics => Msg::WindowDiagnostics,
        };
        tr(lang, msg)
    }
}

/// A signed-in annotator with three unread and a two-line summary, in `state`: a fixture
/// for the tests of this crate and of the shells that show it.
#[doc(hidden)]
pub fn test_status(state: ConnState) -> UiStatus {
    UiStatus {
        state,
        unread: 3,
        user: Some(UiUser {
            username: "zhangsan".into(),
            display_name: "张三".into(),
            role: "annotator".into(),
        }),
        summary_lines: vec!["被驳回的任务：2 个".into(), "进行中的任务：5 个".into()],
        server: Some("http://127.0.0.1:1".into()),
        ..UiStatus::signed_out()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::DeserializeOwned;
    use serde_json::Value;

    /// The fixture parses into the Rust type and serialises back to the same JSON, so the
    /// ui/ tests' stub speaks exactly what the app sends.
    fn round_trips<T: DeserializeOwned + Serialize>(json: &str) {
        let v: Value = serde_json::from_str(json).unwrap();
        let typed: T = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(serde_json::to_value(&typed).unwrap(), v);
    }

    #[test]
    fn ui_test_fixtures_have_the_shapes_of_the_rust_types() {
        round_trips::<Vec<UiNotification>>(include_str!("../../../ui/tests/fixtures/history.json"));
        round_trips::<UiSettings>(include_str!("../../../ui/tests/fixtures/settings.json"));
        round_trips::<UiStatus>(include_str!("../../../ui/tests/fixtures/status.json"));
        round_trips::<UiDiagnostics>(include_str!("../../../ui/tests/fixtures/diagnostics.json"));
    }

    #[test]
    fn states_serialise_with_a_kind_tag() {
        let v = serde_json::to_value(ConnState::Reconnecting {
            in_secs: 8,
            reason: "x".into(),
        })
        .unwrap();
        assert_eq!(
            v,
            serde_json::json!({"state": "reconnecting", "in_secs": 8, "reason": "x"})
        );
        assert_eq!(serde_json::to_value(Lang::ZhCn).unwrap(), "zh-CN");
    }
}
