//! From notifications to toasts. Pure: the caller passes the monotonic time
//! (`Instant`), the local minute of the day and the wall clock.
//!
//! - priority → urgency: `urgent`/`high` → [`Urgency::Critical`], `normal` →
//!   `Normal`, `low` → `Low`;
//! - folding: once `fold_threshold` toasts were shown within `fold_window`,
//!   further ones are held and shown, when the window has passed since the
//!   first of them, as one "N new notifications" toast (a lone held toast is
//!   shown as it is). So a burst of 10,000 gives `fold_threshold` toasts and
//!   one folded toast. Every notification is still stored by the caller;
//! - pause-until and quiet hours (which may span midnight) suppress toasts;
//!   with `urgent_bypass`, critical ones still come through;
//! - kind and project rules ([`decide`]): `store` and `mute` suppress a
//!   notification's toast (the strictest of its kind's and its project's rule
//!   applies; with `urgent_bypass`, critical ones still come through); shown
//!   toasts carry their kind's sound, else the default sound, else none;
//! - bodies are markup-escaped (`&`, `<`, `>`) for daemons that render markup;
//! - the "Open" URL is only ever an `http(s)` URL on the platform's own
//!   origin ([`task_url`]), with the task id percent-encoded; so is the
//!   "Review" URL reviewers get ([`DeliveryPolicy::review_url`]).
//!
//! A toast goes to the notifier as a [`ToastCard`] (the toast and its review
//! link); what the user chooses on it that the engine must carry out comes back
//! as a [`ToastAction`].
//!
//! Dedupe is not done here but by the persistent [`crate::history`] store.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use url::Url;

use crate::config::{Config, KindRule, ProjectRule, QuietHours, ToastPolicy};
use crate::i18n::{Lang, Msg, tr};
use crate::protocol::{self, Notification, NotificationKind, Priority, Role};

/// How many titles a folded toast lists before "… and N more".
const FOLD_LIST: usize = 3;
/// A toast's title is cut to this many characters.
pub const TOAST_TITLE_CHARS: usize = 200;
/// A toast's body is cut to this many characters (before markup escaping).
pub const TOAST_BODY_CHARS: usize = 1_000;
/// Toasts held for folding at most; more are folded into the first in place.
const MAX_HELD: usize = 256;
/// Notification keys a folded toast carries at most.
const MAX_FOLD_KEYS: usize = 50_000;

/// Desktop notification urgency (freedesktop: low, normal, critical).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Urgency {
    /// Low.
    Low,
    /// Normal.
    Normal,
    /// Critical: stays until dismissed on most daemons.
    Critical,
}

/// Maps a notification priority to an urgency (urgent/high → critical).
pub fn urgency(p: Priority) -> Urgency {
    match p {
        Priority::Low => Urgency::Low,
        Priority::Normal => Urgency::Normal,
        Priority::High | Priority::Urgent => Urgency::Critical,
    }
}

/// One desktop notification to show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Toast {
    /// Title (plain text).
    pub title: String,
    /// Body, markup-escaped.
    pub body: String,
    /// Urgency.
    pub urgency: Urgency,
    /// A vetted http(s) URL on the platform's origin for the "Open" action.
    pub open_url: Option<String>,
    /// The notification keys this toast stands for.
    pub keys: Vec<String>,
    /// How many notifications it stands for (1 unless folded).
    pub folded: usize,
    /// Expiry in ms; `None` leaves it to the daemon.
    pub timeout_ms: Option<u32>,
}

#[cfg(test)]
impl Toast {
    /// A plain normal-urgency toast titled `title` for notification key "k" (tests).
    pub(crate) fn for_tests(title: &str) -> Toast {
        Toast {
            title: title.into(),
            body: String::new(),
            urgency: Urgency::Normal,
            open_url: None,
            keys: vec!["k".into()],
            folded: 1,
            timeout_ms: None,
        }
    }
}

/// A toast as handed to the notifier: the toast and what a click on it can
/// open besides its task page.
///
/// A toast with a task (`toast.open_url`) offers "Open task" (also a click on
/// its body), "Mark read" and "Snooze"; one with a `review_url` also "Review".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToastCard {
    /// The toast.
    pub toast: Toast,
    /// The vetted review page (reviewers, `task_submitted` / `skip_requested`).
    pub review_url: Option<String>,
    /// The sound the daemon is asked to play (freedesktop `sound-name`).
    pub sound: Option<String>,
}

impl ToastCard {
    /// A card without a review link.
    pub fn plain(toast: Toast) -> ToastCard {
        ToastCard {
            toast,
            review_url: None,
            sound: None,
        }
    }

    /// Whether the toast is about a task, so it offers Open, Mark read and Snooze.
    pub fn has_task(&self) -> bool {
        self.toast.open_url.is_some() && !self.toast.keys.is_empty()
    }

    /// Whether the toast stands for several notifications ("N new notifications")
    /// and knows which: a click on it can show just those.
    pub fn is_folded(&self) -> bool {
        self.toast.folded > 1 && !self.toast.keys.is_empty()
    }
}

/// What the user chose on a toast that the engine carries out ("Open task" and
/// "Review" only open a vetted link; the notifier does that itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToastActionKind {
    /// Mark the toast's notifications read (locally and on the server).
    MarkRead,
    /// Show the toast again later, once.
    Snooze,
    /// Show the notifications a folded toast stands for (a click on its body,
    /// offered only where a notification center can show them: the tray app).
    ShowFolded,
}

/// A choice on a toast, reported by the notifier to the engine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToastAction {
    /// The toast it was made on, as it was shown.
    pub card: ToastCard,
    /// What was chosen.
    pub kind: ToastActionKind,
}

/// Why a toast was not shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Suppression {
    /// Notifications are paused until this wall-clock time (ms).
    Paused {
        /// End of the pause.
        until_ms: i64,
    },
    /// It is within the quiet hours.
    QuietHours,
    /// Its kind or project rule says `store` or `mute` (this one).
    Rule(ToastPolicy),
}

/// What [`decide`] says about one notification's toast.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The strictest of its kind's and its project's policy.
    pub policy: ToastPolicy,
    /// Whether it gets a toast (`show`, or an urgent bypass); it is stored and
    /// counted either way.
    pub toast: bool,
    /// The sound of its toast (none without a toast).
    pub sound: Option<String>,
}

/// The kind and project rules for one notification: `toast` unless the stricter
/// of its kind's and its project's policy is `store` or `mute` (with
/// `urgent_bypass`, a critical one gets its toast anyway); the sound is its
/// kind's, else the default sound (`sound = true`), else none. Pause and quiet
/// hours are not looked at here ([`DeliveryPolicy::suppression`]).
pub fn decide(policy: &DeliveryPolicy, n: &Notification) -> Decision {
    let kind = policy.kinds.get(n.kind.as_str());
    let kind_policy = kind.map(|r| r.policy).unwrap_or_default();
    let project_policy = n
        .project_id
        .as_ref()
        .and_then(|p| policy.projects.get(p))
        .map(|r| r.policy)
        .unwrap_or_default();
    let strictest = kind_policy.max(project_policy);
    let toast = strictest == ToastPolicy::Show
        || (policy.urgent_bypass && urgency(n.priority) == Urgency::Critical);
    let sound = if toast {
        kind.and_then(|r| r.sound.clone())
            .or_else(|| policy.default_sound.clone())
    } else {
        None
    };
    Decision {
        policy: strictest,
        toast,
        sound,
    }
}

/// The settings delivery works with.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryPolicy {
    /// More than this many toasts within `fold_window` fold into one.
    pub fold_threshold: usize,
    /// The folding window.
    pub fold_window: Duration,
    /// Quiet hours, if any.
    pub quiet_hours: Option<QuietHours>,
    /// Paused until (wall clock, ms).
    pub paused_until_ms: Option<i64>,
    /// Critical toasts ignore pause and quiet hours.
    pub urgent_bypass: bool,
    /// Task page template (`{server}`, `{task_id}`).
    pub url_template: String,
    /// Review page template (`{server}`, `{task_id}`).
    pub review_url_template: String,
    /// The platform base URL; `None` → no "Open" URLs.
    pub server_origin: Option<Url>,
    /// Language for generated titles.
    pub lang: Lang,
    /// Toast policy and sound per kind (wire name).
    pub kinds: BTreeMap<String, KindRule>,
    /// Toast policy per project id.
    pub projects: BTreeMap<String, ProjectRule>,
    /// The sound of kinds without their own, if any.
    pub default_sound: Option<String>,
}

impl Default for DeliveryPolicy {
    /// The config defaults, English, no server (so no "Open" URLs).
    fn default() -> Self {
        DeliveryPolicy::from_config(&Config::default(), Lang::En)
    }
}

impl DeliveryPolicy {
    /// The policy a config asks for; the "Open" URLs use
    /// [`Config::server_url`] (none when it is unset or unusable).
    pub fn from_config(config: &Config, lang: Lang) -> DeliveryPolicy {
        DeliveryPolicy {
            fold_threshold: config.fold_threshold.max(1),
            fold_window: Duration::from_millis(config.fold_window_ms),
            quiet_hours: config.quiet_hours.clone(),
            paused_until_ms: config.paused_until_ms,
            urgent_bypass: config.urgent_bypass,
            url_template: config.task_url_template.clone(),
            review_url_template: config.review_url_template.clone(),
            server_origin: config.server_url().ok(),
            lang,
            kinds: config.kinds.clone(),
            projects: config.projects.clone(),
            default_sound: config.default_sound().map(str::to_owned),
        }
    }

    /// The "Review" link of a notification for a user of `role`: only reviewers
    /// and admins, only for `task_submitted` and `skip_requested`, only with a
    /// task id, and only on the platform's own origin (as [`task_url`]).
    pub fn review_url(&self, n: &Notification, role: Role) -> Option<String> {
        if !role.reviews()
            || !matches!(
                n.kind,
                NotificationKind::TaskSubmitted | NotificationKind::SkipRequested
            )
        {
            return None;
        }
        let server = self.server_origin.as_ref()?;
        let task_id = n.task_id.as_deref()?;
        task_url(&self.review_url_template, server, task_id)
    }

    /// Whether a toast of this urgency is suppressed now, and why.
    pub fn suppression(
        &self,
        urgency: Urgency,
        local_minutes_of_day: u16,
        wall_ms: i64,
    ) -> Option<Suppression> {
        if self.urgent_bypass && urgency == Urgency::Critical {
            return None;
        }
        if let Some(until_ms) = self.paused_until_ms
            && wall_ms < until_ms
        {
            return Some(Suppression::Paused { until_ms });
        }
        if let Some(q) = &self.quiet_hours
            && q.contains(local_minutes_of_day)
        {
            return Some(Suppression::QuietHours);
        }
        None
    }
}

/// The folding state machine; see the module docs.
#[derive(Debug, Clone)]
pub struct Delivery {
    policy: DeliveryPolicy,
    /// When recent individual toasts were shown (within the window).
    recent: VecDeque<Instant>,
    /// Toasts held for folding.
    held: Vec<Toast>,
    /// When the first held toast arrived.
    held_since: Option<Instant>,
    /// Why the last offered notification was not shown, if it was suppressed.
    last_suppression: Option<Suppression>,
}

impl Delivery {
    /// A delivery with this policy.
    pub fn new(policy: DeliveryPolicy) -> Delivery {
        Delivery {
            policy,
            recent: VecDeque::new(),
            held: Vec::new(),
            held_since: None,
            last_suppression: None,
        }
    }

    /// The policy in force.
    pub fn policy(&self) -> &DeliveryPolicy {
        &self.policy
    }

    /// Replaces the policy (new config, pause, resume); folding state is kept.
    pub fn set_policy(&mut self, policy: DeliveryPolicy) {
        self.policy = policy;
    }

    /// Sets or clears the pause.
    pub fn set_paused_until(&mut self, until_ms: Option<i64>) {
        self.policy.paused_until_ms = until_ms;
    }

    /// Why the last [`Delivery::offer`] showed nothing, when it was suppressed.
    pub fn last_suppression(&self) -> Option<Suppression> {
        self.last_suppression
    }

    /// The toast for one notification (no folding, no suppression).
    pub fn toast_for(&self, n: &Notification) -> Toast {
        let lang = self.policy.lang;
        let data_str = |k: &str| {
            n.data.get(k).and_then(|v| match v {
                serde_json::Value::String(s) => Some(s.clone()),
                serde_json::Value::Number(x) => Some(x.to_string()),
                _ => None,
            })
        };
        // Localise the titles protocol.rs generated for chat frames.
        let title = match n.kind {
            NotificationKind::GroupMessage => match data_str("group_id") {
                Some(g) if n.title == format!("New message in group {g}") => {
                    tr(lang, Msg::GroupMessageTitle { group: &g })
                }
                _ => n.title.clone(),
            },
            NotificationKind::PrivateMessage => match data_str("from_user_id") {
                Some(u) if n.title == format!("New message from {u}") => {
                    let from = data_str("from_username").unwrap_or(u);
                    tr(lang, Msg::PrivateMessageTitle { from: &from })
                }
                _ => n.title.clone(),
            },
            _ => n.title.clone(),
        };
        let open_url = match (&self.policy.server_origin, &n.task_id) {
            (Some(server), Some(task_id)) => task_url(&self.policy.url_template, server, task_id),
            _ => None,
        };
        Toast {
            title: protocol::truncate_chars(&title, TOAST_TITLE_CHARS).into_owned(),
            body: escape_markup(&protocol::truncate_chars(&n.content, TOAST_BODY_CHARS)),
            urgency: urgency(n.priority),
            open_url,
            keys: vec![n.key.clone()],
            folded: 1,
            timeout_ms: None,
        }
    }

    /// Offers one (new, already deduplicated) notification. Returns the
    /// toasts to show now: possibly this one, possibly a due folded toast,
    /// possibly nothing (its kind or project rule says `store`/`mute` (see
    /// [`decide`]), suppressed, or held for folding; see
    /// [`Delivery::next_flush_at`]).
    pub fn offer(
        &mut self,
        n: &Notification,
        now: Instant,
        local_minutes_of_day: u16,
        wall_ms: i64,
    ) -> Vec<Toast> {
        let decision = decide(&self.policy, n);
        if !decision.toast {
            let out = self.poll(now);
            self.last_suppression = Some(Suppression::Rule(decision.policy));
            return out;
        }
        let toast = self.toast_for(n);
        self.offer_toast(toast, now, local_minutes_of_day, wall_ms)
    }

    /// As [`Delivery::offer`], for a ready-made toast.
    pub fn offer_toast(
        &mut self,
        toast: Toast,
        now: Instant,
        local_minutes_of_day: u16,
        wall_ms: i64,
    ) -> Vec<Toast> {
        let mut out = self.poll(now);
        self.last_suppression =
            self.policy
                .suppression(toast.urgency, local_minutes_of_day, wall_ms);
        if self.last_suppression.is_some() {
            return out;
        }
        let window = self.policy.fold_window;
        while let Some(first) = self.recent.front() {
            if now.saturating_duration_since(*first) >= window {
                self.recent.pop_front();
            } else {
                break;
            }
        }
        if !self.held.is_empty() || self.recent.len() >= self.policy.fold_threshold {
            if self.held.is_empty() {
                self.held_since = Some(now);
            }
            if self.held.len() >= MAX_HELD {
                // A flood within one window: fold what is held into one now, so the
                // held list stays small (folding is associative: counts add up).
                let held = std::mem::take(&mut self.held);
                self.held.push(fold(held, self.policy.lang));
            }
            self.held.push(toast);
        } else {
            self.recent.push_back(now);
            out.push(toast);
        }
        out
    }

    /// Returns the held toasts, folded, once the window has passed since the
    /// first of them; else nothing.
    pub fn poll(&mut self, now: Instant) -> Vec<Toast> {
        match self.next_flush_at() {
            Some(at) if now >= at => self.flush(now),
            _ => Vec::new(),
        }
    }

    /// When [`Delivery::poll`] will have something, if anything is held.
    pub fn next_flush_at(&self) -> Option<Instant> {
        self.held_since
            .and_then(|since| since.checked_add(self.policy.fold_window))
    }

    /// Flushes whatever is held now (e.g. at shutdown).
    pub fn flush(&mut self, now: Instant) -> Vec<Toast> {
        self.held_since = None;
        let held = std::mem::take(&mut self.held);
        if held.is_empty() {
            return Vec::new();
        }
        self.recent.clear();
        self.recent.push_back(now);
        if held.len() == 1 {
            return held;
        }
        vec![fold(held, self.policy.lang)]
    }

    /// How many toasts are held for folding.
    pub fn held(&self) -> usize {
        self.held.len()
    }
}

/// Folds several toasts into one "N new notifications" toast (one toast stays as
/// it is). Used for bursts and when toasts wait for a slow notification daemon.
pub fn fold_toasts(mut toasts: Vec<Toast>, lang: Lang) -> Toast {
    if toasts.len() == 1 {
        if let Some(t) = toasts.pop() {
            return t;
        }
    }
    fold(toasts, lang)
}

/// Folds several toasts into one "N new notifications" toast.
fn fold(held: Vec<Toast>, lang: Lang) -> Toast {
    let total: usize = held.iter().map(|t| t.folded.max(1)).sum();
    let urgency = held
        .iter()
        .map(|t| t.urgency)
        .max()
        .unwrap_or(Urgency::Normal);
    let mut lines: Vec<String> = held
        .iter()
        .take(FOLD_LIST)
        .map(|t| escape_markup(&t.title))
        .collect();
    if held.len() > FOLD_LIST {
        lines.push(escape_markup(&tr(
            lang,
            Msg::FoldedMore {
                n: total.saturating_sub(FOLD_LIST),
            },
        )));
    }
    let first_url = held.first().and_then(|t| t.open_url.clone());
    let open_url = first_url.filter(|u| held.iter().all(|t| t.open_url.as_deref() == Some(u)));
    Toast {
        title: tr(lang, Msg::FoldedTitle { n: total }),
        body: lines.join("\n"),
        urgency,
        open_url,
        keys: held
            .into_iter()
            .flat_map(|t| t.keys)
            .take(MAX_FOLD_KEYS)
            .collect(),
        folded: total,
        timeout_ms: None,
    }
}

/// The test toast ("TaskBell test notification"): the same from the engine (which adds
/// its key and sound) and from a shell with no engine running.
pub fn test_toast(lang: Lang) -> Toast {
    Toast {
        title: tr(lang, Msg::TestTitle),
        body: escape_markup(&tr(lang, Msg::TestBody)),
        urgency: Urgency::Normal,
        open_url: None,
        keys: Vec::new(),
        folded: 1,
        timeout_ms: None,
    }
}

/// Escapes `&`, `<` and `>` for notification daemons that render markup in
/// the body.
pub fn escape_markup(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes everything but RFC 3986 unreserved characters, so the id
/// stays one path segment (`/`, `?`, `#`, `%`, `@`, `:` are all encoded).
pub fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The task page URL for the "Open" action: `template` with `{server}` (the
/// base URL without trailing slash) and `{task_id}` (percent-encoded) filled
/// in; relative templates are resolved against `server`. `None` unless the
/// result is an `http(s)` URL on exactly the server's origin (scheme, host,
/// port) without user info, and the id is a usable segment (not empty, `.`
/// or `..`).
pub fn task_url(template: &str, server: &Url, task_id: &str) -> Option<String> {
    if !matches!(server.scheme(), "http" | "https") {
        return None;
    }
    if task_id.is_empty()
        || task_id == "."
        || task_id == ".."
        || task_id.chars().any(char::is_control)
    {
        return None;
    }
    let base = server.as_str().trim_end_matches('/');
    let id = encode_segment(task_id);
    // One pass, so text substituted in is never scanned for placeholders.
    let mut filled = String::with_capacity(template.len() + base.len() + id.len());
    let mut rest = template;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("{server}") {
            filled.push_str(base);
            rest = r;
        } else if let Some(r) = rest.strip_prefix("{task_id}") {
            filled.push_str(&id);
            rest = r;
        } else {
            let mut chars = rest.chars();
            if let Some(c) = chars.next() {
                filled.push(c);
            }
            rest = chars.as_str();
        }
    }
    let url = server.join(&filled).ok()?;
    let ok = matches!(url.scheme(), "http" | "https")
        && url.origin() == server.origin()
        && url.username().is_empty()
        && url.password().is_none();
    ok.then(|| url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{NotificationKind, decode_at};

    fn server() -> Url {
        Url::parse("http://localhost:8000").unwrap()
    }

    fn notif(key: &str, priority: Priority, task_id: Option<&str>) -> Notification {
        Notification {
            id: Some(key.into()),
            key: key.into(),
            kind: NotificationKind::TaskReviewed,
            title: format!("title {key}"),
            content: "你的任务 <b>已驳回</b> & more".into(),
            task_id: task_id.map(Into::into),
            project_id: None,
            priority,
            timestamp_ms: 0,
            data: serde_json::json!({}),
        }
    }

    fn policy() -> DeliveryPolicy {
        DeliveryPolicy {
            server_origin: Some(server()),
            ..DeliveryPolicy::default()
        }
    }

    const NOON: u16 = 12 * 60;

    #[test]
    fn urgency_mapping() {
        assert_eq!(urgency(Priority::Urgent), Urgency::Critical);
        assert_eq!(urgency(Priority::High), Urgency::Critical);
        assert_eq!(urgency(Priority::Normal), Urgency::Normal);
        assert_eq!(urgency(Priority::Low), Urgency::Low);
    }

    #[test]
    fn a_toast_carries_escaped_body_url_and_key() {
        let d = Delivery::new(policy());
        let t = d.toast_for(&notif("k1", Priority::High, Some("task123")));
        assert_eq!(t.title, "title k1");
        assert_eq!(t.body, "你的任务 &lt;b&gt;已驳回&lt;/b&gt; &amp; more");
        assert_eq!(t.urgency, Urgency::Critical);
        assert_eq!(
            t.open_url.as_deref(),
            Some("http://localhost:8000/tasks/task123")
        );
        assert_eq!(t.keys, vec!["k1"]);
        assert_eq!(t.folded, 1);
        let t = d.toast_for(&notif("k2", Priority::Normal, None));
        assert_eq!(t.open_url, None);
    }

    #[test]
    fn chat_titles_are_localised() {
        let mut p = policy();
        p.lang = Lang::ZhCn;
        let d = Delivery::new(p);
        let Ok(protocol::Inbound::Notification(n)) = decode_at(
            r#"{"type":"group","group_id":"g7","from_user_id":1,"content":"hi"}"#,
            0,
        ) else {
            panic!("decode failed")
        };
        assert_eq!(d.toast_for(&n).title, "群组 g7 有新消息");
        let Ok(protocol::Inbound::Notification(n)) = decode_at(
            r#"{"type":"private","from_user_id":5,"from_username":"李四","content":"hi"}"#,
            0,
        ) else {
            panic!("decode failed")
        };
        assert_eq!(d.toast_for(&n).title, "来自 李四 的新消息");
    }

    #[test]
    fn toast_titles_and_bodies_are_cut() {
        let d = Delivery::new(policy());
        let mut n = notif("long", Priority::Normal, None);
        n.title = "题".repeat(1000);
        n.content = "<".repeat(5000);
        let t = d.toast_for(&n);
        assert_eq!(t.title.chars().count(), TOAST_TITLE_CHARS);
        assert!(t.title.ends_with('…'));
        // Cut first, then escaped: 999 `<` become `&lt;`, plus the ellipsis.
        assert_eq!(t.body, format!("{}…", "&lt;".repeat(TOAST_BODY_CHARS - 1)));
    }

    #[test]
    fn a_flood_within_one_window_keeps_the_held_list_small_and_counts_all() {
        let mut d = Delivery::new(policy());
        let t0 = Instant::now();
        let n = 10_000;
        let mut shown = Vec::new();
        for i in 0..n {
            shown.extend(d.offer(
                &notif(&format!("k{i}"), Priority::Normal, None),
                t0 + Duration::from_micros(i as u64),
                NOON,
                0,
            ));
            assert!(d.held() <= MAX_HELD, "{} held after {i}", d.held());
        }
        shown.extend(d.flush(t0 + Duration::from_secs(1)));
        let total: usize = shown.iter().map(|t| t.folded).sum();
        assert_eq!(total, n);
        let keys: usize = shown.iter().map(|t| t.keys.len()).sum();
        assert_eq!(keys, n, "every key in some toast");
        assert_eq!(shown.len(), 4, "three at once, then one fold");
    }

    #[test]
    fn fold_toasts_keeps_one_as_it_is() {
        let d = Delivery::new(policy());
        let t = d.toast_for(&notif("a", Priority::Low, None));
        assert_eq!(fold_toasts(vec![t.clone()], Lang::En), t);
        let u = d.toast_for(&notif("b", Priority::High, None));
        let f = fold_toasts(vec![t, u], Lang::En);
        assert_eq!(f.folded, 2);
        assert_eq!(f.urgency, Urgency::Critical);
        assert_eq!(f.keys, ["a", "b"]);
    }

    #[test]
    fn more_than_three_within_two_seconds_fold_into_one() {
        let mut d = Delivery::new(policy());
        let t0 = Instant::now();
        let mut shown = Vec::new();
        for i in 0..3 {
            let out = d.offer(
                &notif(&format!("k{i}"), Priority::Normal, None),
                t0 + Duration::from_millis(i * 100),
                NOON,
                0,
            );
            assert_eq!(out.len(), 1, "toast {i} shows at once");
            shown.extend(out);
        }
        for i in 3..10 {
            let out = d.offer(
                &notif(&format!("k{i}"), Priority::Normal, None),
                t0 + Duration::from_millis(i * 100),
                NOON,
                0,
            );
            assert!(out.is_empty(), "toast {i} is held");
        }
        assert_eq!(d.held(), 7);
        let at = d.next_flush_at().unwrap();
        assert_eq!(at, t0 + Duration::from_millis(300) + Duration::from_secs(2));
        assert!(d.poll(at - Duration::from_millis(1)).is_empty());
        let out = d.poll(at);
        assert_eq!(out.len(), 1);
        let f = &out[0];
        assert_eq!(f.title, "7 new notifications");
        assert_eq!(f.folded, 7);
        assert_eq!(f.keys, (3..10).map(|i| format!("k{i}")).collect::<Vec<_>>());
        assert_eq!(f.body, "title k3\ntitle k4\ntitle k5\n… and 4 more");
        assert_eq!(f.urgency, Urgency::Normal);
        assert!(d.next_flush_at().is_none());
        assert!(d.poll(at + Duration::from_secs(10)).is_empty());
        // every key is accounted for exactly once
        let mut all: Vec<String> = shown
            .iter()
            .chain(out.iter())
            .flat_map(|t| t.keys.clone())
            .collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 10);
    }

    #[test]
    fn spaced_toasts_never_fold() {
        let mut d = Delivery::new(policy());
        let t0 = Instant::now();
        for i in 0..20u64 {
            // 3 s apart (protocol.md §6 scenario 3)
            let out = d.offer(
                &notif(&format!("k{i}"), Priority::Normal, None),
                t0 + Duration::from_secs(3 * i),
                NOON,
                0,
            );
            assert_eq!(out.len(), 1);
            assert_eq!(out[0].folded, 1);
        }
        // exactly three within the window is still fine; the fourth at 2 s is not within
        let mut d = Delivery::new(policy());
        for ms in [0u64, 500, 1000] {
            assert_eq!(
                d.offer(
                    &notif("a", Priority::Normal, None),
                    t0 + Duration::from_millis(ms),
                    NOON,
                    0
                )
                .len(),
                1
            );
        }
        assert_eq!(
            d.offer(
                &notif("b", Priority::Normal, None),
                t0 + Duration::from_millis(2000),
                NOON,
                0
            )
            .len(),
            1
        );
        assert_eq!(
            d.offer(
                &notif("c", Priority::Normal, None),
                t0 + Duration::from_millis(2100),
                NOON,
                0
            )
            .len(),
            0
        );
    }

    #[test]
    fn a_single_held_toast_is_shown_unfolded_and_critical_wins_in_a_fold() {
        let mut d = Delivery::new(policy());
        let t0 = Instant::now();
        for i in 0..3 {
            d.offer(
                &notif(&format!("k{i}"), Priority::Normal, None),
                t0,
                NOON,
                0,
            );
        }
        assert!(
            d.offer(&notif("lone", Priority::Low, Some("t1")), t0, NOON, 0)
                .is_empty()
        );
        let out = d.poll(t0 + Duration::from_secs(2));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].title, "title lone");
        assert_eq!(out[0].folded, 1);

        let mut d = Delivery::new(policy());
        for i in 0..3 {
            d.offer(
                &notif(&format!("k{i}"), Priority::Normal, None),
                t0,
                NOON,
                0,
            );
        }
        d.offer(&notif("x", Priority::Low, Some("t1")), t0, NOON, 0);
        d.offer(&notif("y", Priority::Urgent, Some("t1")), t0, NOON, 0);
        // a later offer flushes the due fold first
        let out = d.offer(
            &notif("z", Priority::Normal, None),
            t0 + Duration::from_secs(5),
            NOON,
            0,
        );
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].folded, 2);
        assert_eq!(out[0].urgency, Urgency::Critical);
        assert_eq!(
            out[0].open_url.as_deref(),
            Some("http://localhost:8000/tasks/t1")
        );
        assert_eq!(out[1].keys, vec!["z"]);
    }

    #[test]
    fn pause_suppresses_until_its_end_and_urgent_bypasses() {
        let mut p = policy();
        p.paused_until_ms = Some(10_000);
        let mut d = Delivery::new(p);
        let t0 = Instant::now();
        assert!(
            d.offer(&notif("a", Priority::Normal, None), t0, NOON, 9_999)
                .is_empty()
        );
        assert_eq!(
            d.last_suppression(),
            Some(Suppression::Paused { until_ms: 10_000 })
        );
        assert_eq!(d.held(), 0, "suppressed toasts are not held");
        assert_eq!(
            d.offer(&notif("u", Priority::Urgent, None), t0, NOON, 9_999)
                .len(),
            1
        );
        assert_eq!(d.last_suppression(), None);
        assert_eq!(
            d.offer(&notif("b", Priority::Normal, None), t0, NOON, 10_000)
                .len(),
            1
        );
        let mut p = policy();
        p.paused_until_ms = Some(10_000);
        p.urgent_bypass = false;
        let mut d = Delivery::new(p);
        assert!(
            d.offer(&notif("u", Priority::Urgent, None), t0, NOON, 0)
                .is_empty()
        );
        d.set_paused_until(None);
        assert_eq!(
            d.offer(&notif("u", Priority::Urgent, None), t0, NOON, 0)
                .len(),
            1
        );
    }

    fn rules(
        kinds: &[(&str, ToastPolicy, Option<&str>)],
        projects: &[(&str, ToastPolicy)],
    ) -> DeliveryPolicy {
        let mut p = policy();
        for (k, policy, sound) in kinds {
            p.kinds.insert(
                (*k).to_owned(),
                KindRule {
                    policy: *policy,
                    sound: sound.map(str::to_owned),
                },
            );
        }
        for (id, policy) in projects {
            p.projects
                .insert((*id).to_owned(), ProjectRule { policy: *policy });
        }
        p
    }

    fn in_project(
        mut n: Notification,
        kind: NotificationKind,
        project: Option<&str>,
    ) -> Notification {
        n.kind = kind;
        n.project_id = project.map(Into::into);
        n
    }

    #[test]
    fn no_rules_show_everything_without_sound() {
        let n = notif("a", Priority::Normal, None);
        let d = decide(&policy(), &n);
        assert_eq!(
            d,
            Decision {
                policy: ToastPolicy::Show,
                toast: true,
                sound: None
            }
        );
    }

    #[test]
    fn a_kind_rule_stores_or_mutes_that_kind_only() {
        for strict in [ToastPolicy::Store, ToastPolicy::Mute] {
            let p = rules(&[("system", strict, None)], &[]);
            let sys = in_project(
                notif("s", Priority::Normal, None),
                NotificationKind::System,
                None,
            );
            let d = decide(&p, &sys);
            assert_eq!((d.policy, d.toast, d.sound), (strict, false, None));
            let other = notif("r", Priority::Normal, None);
            assert!(decide(&p, &other).toast, "task_reviewed has no rule");
        }
        let p = rules(&[("task_reviewed", ToastPolicy::Show, None)], &[]);
        assert!(decide(&p, &notif("r", Priority::Low, None)).toast);
    }

    #[test]
    fn a_project_rule_applies_to_that_project_only() {
        let p = rules(&[], &[("p-12", ToastPolicy::Mute)]);
        let k = NotificationKind::TaskAssigned;
        let muted = in_project(notif("a", Priority::Normal, None), k.clone(), Some("p-12"));
        let d = decide(&p, &muted);
        assert_eq!((d.policy, d.toast), (ToastPolicy::Mute, false));
        let other = in_project(notif("b", Priority::Normal, None), k.clone(), Some("p-13"));
        assert!(decide(&p, &other).toast);
        let none = in_project(notif("c", Priority::Normal, None), k, None);
        assert!(decide(&p, &none).toast);
    }

    #[test]
    fn the_stricter_of_kind_and_project_rule_wins() {
        let k = NotificationKind::TaskReviewed;
        let n = in_project(notif("a", Priority::Normal, None), k, Some("p"));
        // project stricter than kind
        let p = rules(
            &[("task_reviewed", ToastPolicy::Show, Some("bell"))],
            &[("p", ToastPolicy::Store)],
        );
        let d = decide(&p, &n);
        assert_eq!(
            (d.policy, d.toast, d.sound),
            (ToastPolicy::Store, false, None)
        );
        let p = rules(
            &[("task_reviewed", ToastPolicy::Store, None)],
            &[("p", ToastPolicy::Mute)],
        );
        assert_eq!(decide(&p, &n).policy, ToastPolicy::Mute);
        // a laxer project rule does not lift the kind's
        let p = rules(
            &[("task_reviewed", ToastPolicy::Mute, None)],
            &[("p", ToastPolicy::Show)],
        );
        let d = decide(&p, &n);
        assert_eq!((d.policy, d.toast), (ToastPolicy::Mute, false));
    }

    #[test]
    fn urgent_ones_bypass_store_and_mute_only_with_urgent_bypass() {
        let k = NotificationKind::System;
        let mut p = rules(
            &[("system", ToastPolicy::Mute, Some("alarm-clock-elapsed"))],
            &[("p", ToastPolicy::Store)],
        );
        for pri in [Priority::Urgent, Priority::High] {
            let n = in_project(notif("u", pri, None), k.clone(), Some("p"));
            let d = decide(&p, &n);
            assert_eq!(d.policy, ToastPolicy::Mute);
            assert!(d.toast, "{pri:?} bypasses");
            assert_eq!(d.sound.as_deref(), Some("alarm-clock-elapsed"));
        }
        let normal = in_project(notif("n", Priority::Normal, None), k.clone(), Some("p"));
        assert!(!decide(&p, &normal).toast);
        p.urgent_bypass = false;
        let n = in_project(notif("u", Priority::Urgent, None), k, Some("p"));
        let d = decide(&p, &n);
        assert_eq!((d.toast, d.sound), (false, None));
    }

    #[test]
    fn sound_per_kind_then_default_then_none() {
        let mut p = rules(&[("mention", ToastPolicy::Show, Some("bell"))], &[]);
        let mention = in_project(
            notif("m", Priority::Normal, None),
            NotificationKind::Mention,
            None,
        );
        let other = notif("o", Priority::Normal, None);
        assert_eq!(decide(&p, &mention).sound.as_deref(), Some("bell"));
        assert_eq!(decide(&p, &other).sound, None, "no default sound");
        p.default_sound = Some("message-new-instant".into());
        assert_eq!(decide(&p, &mention).sound.as_deref(), Some("bell"));
        assert_eq!(
            decide(&p, &other).sound.as_deref(),
            Some("message-new-instant")
        );
        // from a config: sound = true is the default sound
        let c = Config {
            sound: true,
            ..Config::default()
        };
        assert_eq!(
            DeliveryPolicy::from_config(&c, Lang::En)
                .default_sound
                .as_deref(),
            Some(crate::config::DEFAULT_SOUND)
        );
        assert_eq!(DeliveryPolicy::default().default_sound, None);
    }

    #[test]
    fn offer_shows_no_toast_for_a_muted_one_and_says_why() {
        let p = rules(
            &[("system", ToastPolicy::Mute, None)],
            &[("p", ToastPolicy::Store)],
        );
        let mut d = Delivery::new(p);
        let t0 = Instant::now();
        let sys = in_project(
            notif("s", Priority::Normal, None),
            NotificationKind::System,
            None,
        );
        assert!(d.offer(&sys, t0, NOON, 0).is_empty());
        assert_eq!(
            d.last_suppression(),
            Some(Suppression::Rule(ToastPolicy::Mute))
        );
        assert_eq!(d.held(), 0);
        let proj = in_project(
            notif("p", Priority::Low, None),
            NotificationKind::Mention,
            Some("p"),
        );
        assert!(d.offer(&proj, t0, NOON, 0).is_empty());
        assert_eq!(
            d.last_suppression(),
            Some(Suppression::Rule(ToastPolicy::Store))
        );
        // muted ones do not count towards folding
        for i in 0..3 {
            assert_eq!(
                d.offer(
                    &notif(&format!("k{i}"), Priority::Normal, None),
                    t0,
                    NOON,
                    0
                )
                .len(),
                1
            );
            assert_eq!(d.last_suppression(), None);
        }
        let urgent = in_project(
            notif("u", Priority::Urgent, None),
            NotificationKind::System,
            None,
        );
        assert!(
            d.offer(&urgent, t0, NOON, 0).is_empty(),
            "held for folding, not muted"
        );
        assert_eq!(d.last_suppression(), None);
        assert_eq!(d.held(), 1);
    }

    #[test]
    fn quiet_hours_across_midnight() {
        let mut p = policy();
        p.quiet_hours = Some(QuietHours {
            start: "22:00".into(),
            end: "07:30".into(),
        });
        let mut d = Delivery::new(p);
        let t0 = Instant::now();
        let mut t = t0;
        let mut offer = |d: &mut Delivery, pri, minute| {
            t += Duration::from_secs(10);
            d.offer(&notif("n", pri, None), t, minute, 0).len()
        };
        assert_eq!(offer(&mut d, Priority::Normal, 23 * 60), 0);
        assert_eq!(d.last_suppression(), Some(Suppression::QuietHours));
        assert_eq!(offer(&mut d, Priority::Normal, 2 * 60), 0);
        assert_eq!(offer(&mut d, Priority::Normal, 7 * 60 + 29), 0);
        assert_eq!(offer(&mut d, Priority::Normal, 7 * 60 + 30), 1);
        assert_eq!(offer(&mut d, Priority::Normal, 21 * 60 + 59), 1);
        assert_eq!(offer(&mut d, Priority::High, 23 * 60), 1, "urgent bypass");
    }

    #[test]
    fn task_urls_stay_on_the_platform_origin() {
        let s = server();
        let t = |tpl: &str, id: &str| task_url(tpl, &s, id);
        let def = "{server}/tasks/{task_id}";
        assert_eq!(
            t(def, "task123").as_deref(),
            Some("http://localhost:8000/tasks/task123")
        );
        assert_eq!(
            t(def, "42").as_deref(),
            Some("http://localhost:8000/tasks/42")
        );
        // hostile ids stay inside one path segment
        assert_eq!(
            t(def, "../../evil").as_deref(),
            Some("http://localhost:8000/tasks/..%2F..%2Fevil")
        );
        assert_eq!(
            t(def, "a/b?c=d#e").as_deref(),
            Some("http://localhost:8000/tasks/a%2Fb%3Fc%3Dd%23e")
        );
        assert_eq!(
            t(def, "图像 1").as_deref(),
            Some("http://localhost:8000/tasks/%E5%9B%BE%E5%83%8F%201")
        );
        assert_eq!(
            t(def, "%2e%2e").as_deref(),
            Some("http://localhost:8000/tasks/%252e%252e")
        );
        assert_eq!(t(def, ".."), None);
        assert_eq!(t(def, "."), None);
        assert_eq!(t(def, ""), None);
        assert_eq!(t(def, "a\nb"), None);
        assert_eq!(t("{server}{task_id}", "@evil.com"), None);
        assert_eq!(t("{server}{task_id}", ".evil.com"), None);
        // hostile templates
        assert_eq!(t("javascript:alert(1)//{task_id}", "1"), None);
        assert_eq!(t("https://evil.example/{task_id}", "1"), None);
        assert_eq!(t("//evil.example/{task_id}", "1"), None);
        assert_eq!(t("{server}@evil.example/{task_id}", "1"), None);
        assert_eq!(
            t("http://localhost:8001/tasks/{task_id}", "1"),
            None,
            "other port"
        );
        assert_eq!(
            t("https://localhost:8000/tasks/{task_id}", "1"),
            None,
            "other scheme"
        );
        assert_eq!(t("file:///etc/passwd?{task_id}", "1"), None);
        assert_eq!(t("data:text/html,{task_id}", "1"), None);
        // relative and absolute same-origin templates are fine
        assert_eq!(
            t("/app/#/task/{task_id}", "7").as_deref(),
            Some("http://localhost:8000/app/#/task/7")
        );
        assert_eq!(
            t("http://localhost:8000/t?id={task_id}", "a&b").as_deref(),
            Some("http://localhost:8000/t?id=a%26b")
        );
        // a server with a path prefix
        let p = Url::parse("https://x.example/platform/").unwrap();
        assert_eq!(
            task_url(def, &p, "1").as_deref(),
            Some("https://x.example/platform/tasks/1")
        );
        // a non-http server never yields URLs
        let f = Url::parse("file:///tmp").unwrap();
        assert_eq!(task_url(def, &f, "1"), None);
    }

    #[test]
    fn review_links_only_for_reviewers_on_submissions_and_skip_requests() {
        let p = policy();
        let mut n = notif("k", Priority::Normal, Some("task 1"));
        n.kind = NotificationKind::TaskSubmitted;
        assert_eq!(
            p.review_url(&n, Role::Reviewer).as_deref(),
            Some("http://localhost:8000/tasks/task%201/review")
        );
        assert!(p.review_url(&n, Role::Admin).is_some());
        assert_eq!(p.review_url(&n, Role::Annotator), None);
        n.kind = NotificationKind::SkipRequested;
        assert!(p.review_url(&n, Role::Reviewer).is_some());
        for kind in [
            NotificationKind::TaskReviewed,
            NotificationKind::TaskAssigned,
            NotificationKind::System,
        ] {
            n.kind = kind;
            assert_eq!(p.review_url(&n, Role::Reviewer), None);
        }
        n.kind = NotificationKind::TaskSubmitted;
        n.task_id = None;
        assert_eq!(p.review_url(&n, Role::Reviewer), None, "no task, no review");
        // The same origin rule as the task page.
        let mut evil = policy();
        evil.review_url_template = "https://evil.example/{task_id}".into();
        n.task_id = Some("1".into());
        assert_eq!(evil.review_url(&n, Role::Reviewer), None);
        let mut relative = policy();
        relative.review_url_template = "/review?task={task_id}".into();
        assert_eq!(
            relative.review_url(&n, Role::Reviewer).as_deref(),
            Some("http://localhost:8000/review?task=1")
        );
    }

    #[test]
    fn markup_escaping() {
        assert_eq!(
            escape_markup("<a href='x'>&amp;</a>"),
            "&lt;a href='x'&gt;&amp;amp;&lt;/a&gt;"
        );
        assert_eq!(escape_markup("中文 ✅"), "中文 ✅");
    }
}
