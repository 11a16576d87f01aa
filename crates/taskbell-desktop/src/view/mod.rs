//! What the tray and the windows show, computed from the core's types with no Tauri in
//! sight: the status (with its state line), notification rows, the settings form, the
//! merged history, the diagnostics log; [`menu`] is the tray menu and tooltip, [`icon`]
//! the tray icon and its badge. Everything here is pure and unit-tested; the controller
//! calls it and the shell renders what it returns.

pub mod icon;
pub mod menu;
pub mod rules;

use std::collections::VecDeque;

use taskbell_core::config::{Config, HEARTBEAT_SECS_RANGE, QuietHours};
use taskbell_core::delivery::task_url;
use taskbell_core::protocol::{Notification, User};
use taskbell_core::supervisor::{State, Status};
use time::{OffsetDateTime, UtcOffset};

use crate::error::{CmdError, CmdResult, ErrorKind};
use crate::model::{
    ConnState, Lang, ReconnectEntry, UiNotification, UiSettings, UiStatus, UiUser, WindowKind,
};

/// Latency samples kept for the sparkline.
pub const MAX_SAMPLES: usize = 60;
/// Reconnects kept for the log.
pub const MAX_RECONNECTS: usize = 50;

/// Recent latencies and reconnects, for the diagnostics window.
#[derive(Debug, Default)]
pub struct DiagLog {
    latency_ms: VecDeque<u64>,
    reconnects: VecDeque<ReconnectEntry>,
}

impl DiagLog {
    /// Records a heartbeat round trip.
    pub fn latency(&mut self, ms: u64) {
        if self.latency_ms.len() == MAX_SAMPLES {
            self.latency_ms.pop_front();
        }
        self.latency_ms.push_back(ms);
    }

    /// Records a reconnect.
    pub fn reconnect(&mut self, entry: ReconnectEntry) {
        if self.reconnects.len() == MAX_RECONNECTS {
            self.reconnects.pop_back();
        }
        self.reconnects.push_front(entry);
    }

    /// Samples oldest first.
    pub fn samples(&self) -> Vec<u64> {
        self.latency_ms.iter().copied().collect()
    }

    /// Reconnects newest first.
    pub fn reconnects(&self) -> Vec<ReconnectEntry> {
        self.reconnects.iter().cloned().collect()
    }
}

/// Now, in ms since the epoch.
pub fn now_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// "HH:MM" when `ms` is today (local), else "MM-DD HH:MM".
pub fn local_label(ms: i64, now_ms: i64, offset: UtcOffset) -> String {
    let at = |ms: i64| {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
            .to_offset(offset)
    };
    let (t, now) = (at(ms), at(now_ms));
    if t.date() == now.date() {
        format!("{:02}:{:02}", t.hour(), t.minute())
    } else {
        format!(
            "{:02}-{:02} {:02}:{:02}",
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute()
        )
    }
}

/// Tomorrow 08:00 local time, in ms since the epoch.
pub fn tomorrow_morning_ms(now_ms: i64, offset: UtcOffset) -> i64 {
    let now = OffsetDateTime::from_unix_timestamp_nanos(i128::from(now_ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
        .to_offset(offset);
    let date = now.date().next_day().unwrap_or(now.date());
    let at = date.with_hms(8, 0, 0).map(|dt| dt.assume_offset(offset));
    match at {
        Ok(t) => (t.unix_timestamp_nanos() / 1_000_000) as i64,
        Err(_) => now_ms + 24 * 3600 * 1000,
    }
}

/// The link a notification opens, if any: only on the platform's own origin.
pub fn link_of(n: &Notification, config: &Config) -> Option<String> {
    let server = config.server_url().ok()?;
    let task = n.task_id.as_deref()?;
    task_url(&config.task_url_template, &server, task)
}

/// A key as the windows see it: with several accounts, `"<account>/<key>"`
/// ([`crate::model::UiNotification::key`]).
pub fn ui_key(account: Option<&str>, key: &str) -> String {
    match account {
        Some(a) => format!("{a}/{key}"),
        None => key.to_string(),
    }
}

/// A notification as the notification center shows it; `account` names the account it
/// came to when there are several (and prefixes its key, see [`UiNotification::key`]).
pub fn ui_notification(
    n: &Notification,
    read: bool,
    config: &Config,
    account: Option<&str>,
) -> UiNotification {
    UiNotification {
        key: ui_key(account, &n.key),
        account: account.map(str::to_string),
        kind: n.kind.as_str().to_string(),
        group: n.kind.group().to_string(),
        title: n.title.clone(),
        content: n.content.clone(),
        priority: n.priority.as_str().to_string(),
        timestamp_ms: n.timestamp_ms,
        read,
        has_link: link_of(n, config).is_some(),
        task_id: n.task_id.clone(),
        project: n.project_id.clone(),
    }
}

/// The signed-in user as the windows show them (the real name, or the login name).
pub fn ui_user(u: &User) -> UiUser {
    UiUser {
        username: u.username.clone(),
        display_name: if u.real_name.is_empty() {
            u.username.clone()
        } else {
            u.real_name.clone()
        },
        role: u.role.as_str().to_string(),
    }
}

/// The core's status as the tray and the windows show it, with its state line in `lang`.
pub fn ui_status(
    s: &Status,
    summary_lines: &[String],
    demo: bool,
    now_ms: i64,
    offset: UtcOffset,
) -> UiStatus {
    let state = match &s.state {
        // The last heartbeat's latency when the state itself carries none yet.
        State::Connected { latency_ms } => ConnState::Connected {
            latency_ms: latency_ms.or(s.latency_ms),
        },
        other => other.clone(),
    };
    let paused_until_ms = s.paused_until_ms.filter(|t| *t > now_ms);
    // Signed out means no current user and no summary, whatever the engine's last status
    // still carried (as `publish_signed_out` shows it).
    let signed_out = matches!(s.state, State::SignedOut { .. });
    UiStatus {
        state,
        paused_until_ms,
        paused_label: paused_until_ms.map(|t| local_label(t, now_ms, offset)),
        unread: s.unread,
        user: s.user.as_ref().filter(|_| !signed_out).map(ui_user),
        summary_lines: if signed_out {
            Vec::new()
        } else {
            summary_lines.to_vec()
        },
        server: (!s.server.is_empty()).then(|| s.server.clone()),
        demo,
        // The further accounts are added in, and the state line written, by `publish`.
        accounts: 1,
        account_list: Vec::new(),
        state_line: String::new(),
    }
}

/// Merges lists that are each newest first (the history's own order) into one of at most
/// `max` rows, newest first: by time, then by when each was stored, then the earlier list
/// (the first account). Each list's own order is kept, so paging through the merge is
/// exact.
pub fn merge_newest_first(
    mut lists: Vec<VecDeque<(i64, UiNotification)>>,
    max: usize,
) -> Vec<UiNotification> {
    let mut out = Vec::new();
    while out.len() < max {
        let mut best: Option<(usize, (i64, i64))> = None;
        for (i, list) in lists.iter().enumerate() {
            if let Some((received, n)) = list.front() {
                let key = (n.timestamp_ms, *received);
                if best.is_none_or(|(_, b)| key > b) {
                    best = Some((i, key));
                }
            }
        }
        let Some((i, _)) = best else { break };
        if let Some((_, n)) = lists[i].pop_front() {
            out.push(n);
        }
    }
    out
}

/// The settings form from the config.
pub fn settings_of(c: &Config) -> UiSettings {
    let quiet = c.quiet_hours.clone().filter(|q| q.start != q.end);
    UiSettings {
        server: c.server.clone().unwrap_or_default(),
        username: c.username.clone().unwrap_or_default(),
        heartbeat_interval_secs: c.heartbeat_interval_secs,
        quiet_hours_enabled: quiet.is_some(),
        quiet_start: quiet
            .as_ref()
            .map_or_else(|| "22:00".into(), |q| q.start.clone()),
        quiet_end: quiet
            .as_ref()
            .map_or_else(|| "08:00".into(), |q| q.end.clone()),
        urgent_bypass: c.urgent_bypass,
        language: c
            .language
            .map_or_else(|| "system".into(), |l| l.as_tag().to_string()),
        autostart: c.autostart,
        sound: c.sound,
        heartbeat_secs_range: (*HEARTBEAT_SECS_RANGE.start(), *HEARTBEAT_SECS_RANGE.end()),
        kinds: rules::kind_rules(c),
        projects: rules::project_rules(c),
    }
}

/// Applies the form to `c`, checking every field; errors name the field.
pub fn apply_settings(mut c: Config, s: &UiSettings) -> CmdResult<Config> {
    let server = s.server.trim();
    c.server = if server.is_empty() {
        None
    } else {
        let url = taskbell_core::config::parse_server_url(server, c.allow_insecure)
            .map_err(|e| CmdError::new(ErrorKind::BadUrl, e.to_string()).on("server"))?;
        Some(url.as_str().trim_end_matches('/').to_string())
    };
    c.heartbeat_interval_secs = s.heartbeat_interval_secs;
    c.quiet_hours = if s.quiet_hours_enabled {
        let q = QuietHours {
            start: s.quiet_start.clone(),
            end: s.quiet_end.clone(),
        };
        q.minutes()
            .map_err(|e| CmdError::new(ErrorKind::Invalid, e.to_string()).on("quiet_start"))?;
        Some(q)
    } else {
        None
    };
    c.urgent_bypass = s.urgent_bypass;
    c.language = match s.language.as_str() {
        "system" | "" => None,
        other => Some(Lang::parse(other).ok_or_else(|| {
            CmdError::new(ErrorKind::Invalid, format!("Unknown language {other:?}.")).on("language")
        })?),
    };
    c.autostart = s.autostart;
    c.sound = s.sound;
    // The mute and sound rules, then the core's checks of it all (one range per
    // setting); a refused value names its field.
    c = rules::apply_rules(c, s)?;
    Ok(c)
}

/// The window to show when the user asks for "the" window (second launch, left click).
pub fn default_window(status: &UiStatus) -> WindowKind {
    match status.state {
        ConnState::SignedOut { .. } if status.account_list.len() < 2 => WindowKind::Login,
        _ => WindowKind::Center,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_histories_are_newest_first_keep_each_order_and_page_exactly() {
        let n = |key: &str, ts: i64| UiNotification {
            key: key.into(),
            account: None,
            kind: "system".into(),
            group: "system".into(),
            title: key.into(),
            content: String::new(),
            priority: "normal".into(),
            timestamp_ms: ts,
            read: false,
            has_link: false,
            task_id: None,
            project: None,
        };
        // (stored at, row), each list newest first as its history gives it: a1 and a2
        // share a second and keep their order even though a2 was stored earlier.
        let lists = || {
            vec![
                VecDeque::from([
                    (50, n("a1", 3000)),
                    (40, n("a2", 3000)),
                    (10, n("a3", 1000)),
                ]),
                VecDeque::from([(60, n("b1", 3000)), (30, n("b2", 2000)), (5, n("b3", 1000))]),
            ]
        };
        let keys = |v: Vec<UiNotification>| v.into_iter().map(|n| n.key).collect::<Vec<_>>();
        assert_eq!(
            keys(merge_newest_first(lists(), 100)),
            ["b1", "a1", "a2", "b2", "a3", "b3"]
        );
        assert_eq!(keys(merge_newest_first(lists(), 2)), ["b1", "a1"]);
        // Pages of two put together are the whole merge.
        let pages: Vec<String> = (0..3)
            .flat_map(|p| {
                keys(merge_newest_first(lists(), p * 2 + 2))
                    .into_iter()
                    .skip(p * 2)
            })
            .collect();
        assert_eq!(pages, keys(merge_newest_first(lists(), 100)));
    }

    #[test]
    fn pause_labels_and_tomorrow_morning_use_local_time() {
        let cst = UtcOffset::from_hms(8, 0, 0).unwrap();
        // 2026-11-21 10:00 UTC = 18:00 in UTC+8.
        let now = 1_763_719_200_000;
        assert_eq!(local_label(now + 30 * 60 * 1000, now, cst), "18:30");
        assert_eq!(local_label(now + 24 * 3600 * 1000, now, cst), "11-22 18:00");
        let t = tomorrow_morning_ms(now, cst);
        assert_eq!(local_label(t, now, cst), "11-22 08:00");
        assert!(t > now && t - now < 24 * 3600 * 1000);
    }

    #[test]
    fn status_maps_user_pause_and_drops_a_pause_in_the_past() {
        let user: User = serde_json::from_value(serde_json::json!({
            "id": 1, "username": "zhangsan", "real_name": "张三", "role": "annotator"
        }))
        .unwrap();
        let now = 1_763_719_200_000;
        let mut s = Status {
            state: State::Connected {
                latency_ms: Some(38),
            },
            paused_until_ms: Some(now + 60_000),
            unread: 2,
            user: Some(user),
            server: "http://127.0.0.1:1".into(),
            keyring: "Memory".into(),
            latency_ms: Some(38),
            reconnects: 0,
        };
        let ui = ui_status(&s, &["a".into()], true, now, UtcOffset::UTC);
        assert_eq!(
            ui.state,
            ConnState::Connected {
                latency_ms: Some(38)
            }
        );
        assert_eq!(ui.paused_label.as_deref(), Some("10:01"));
        assert_eq!(
            ui.user.as_ref().map(|u| u.display_name.as_str()),
            Some("张三")
        );
        assert_eq!(ui.user.as_ref().map(|u| u.role.as_str()), Some("annotator"));
        assert!(ui.demo && ui.summary_lines == ["a"]);
        s.paused_until_ms = Some(now - 1);
        assert_eq!(
            ui_status(&s, &[], false, now, UtcOffset::UTC).paused_until_ms,
            None
        );
    }

    #[test]
    fn settings_round_trip_and_refuse_bad_values_naming_the_field() {
        let c = Config {
            server: Some("http://127.0.0.1:8080".into()),
            ..Config::default()
        };
        let mut s = settings_of(&c);
        assert_eq!(s.language, "system");
        s.heartbeat_interval_secs = 45;
        s.quiet_hours_enabled = true;
        s.quiet_start = "21:30".into();
        s.quiet_end = "07:15".into();
        s.language = "zh-CN".into();
        let c2 = apply_settings(c.clone(), &s).unwrap();
        assert_eq!(settings_of(&c2), s);

        let bad = |f: &dyn Fn(&mut UiSettings)| {
            let mut b = s.clone();
            f(&mut b);
            apply_settings(c.clone(), &b).unwrap_err()
        };
        assert_eq!(
            bad(&|b| b.heartbeat_interval_secs = 2).field.as_deref(),
            Some("heartbeat_interval_secs")
        );
        assert_eq!(
            bad(&|b| b.server = "not a url".into()).field.as_deref(),
            Some("server")
        );
        let insecure = bad(&|b| b.server = "http://label.example.com".into());
        assert_eq!(
            (insecure.kind, insecure.field.as_deref()),
            (ErrorKind::BadUrl, Some("server"))
        );
        assert_eq!(
            bad(&|b| b.quiet_start = "25:00".into()).field.as_deref(),
            Some("quiet_start")
        );
        assert_eq!(
            bad(&|b| b.language = "fr".into()).field.as_deref(),
            Some("language")
        );
    }

    #[test]
    fn keys_of_a_further_account_get_its_prefix() {
        assert_eq!(ui_key(None, "k1"), "k1");
        assert_eq!(ui_key(Some("li@b.example"), "k1"), "li@b.example/k1");
    }
}
