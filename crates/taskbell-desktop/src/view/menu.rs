//! The tray menu, its state line and the tooltip, as plain data. Every text comes from
//! the one Rust string table (`taskbell_core::i18n::tr`); the ids are [`MenuId`]s (and
//! `summary-<i>`, `sign-out-account:<id>`), parsed back by [`MenuAction::parse`]. Pure:
//! the tests check the menus line by line; `crate::tray` turns [`Entry`]s into a Tauri
//! menu.

use taskbell_core::i18n::{Msg, tr};

use crate::model::{ConnState, Lang, UiStatus};

/// Menu item ids; [`MenuId::as_str`] is what Tauri reports in menu events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MenuId {
    /// "{name} · {role}" (disabled, informational).
    User,
    /// The state line, e.g. "Connected · 38 ms" (disabled).
    State,
    /// A line of the login summary; clicking opens the platform.
    Summary,
    /// "Notifications (N unread)…": opens the notification center.
    Notifications,
    /// The "Pause notifications" submenu.
    Pause,
    /// Pause for 30 minutes.
    Pause30m,
    /// Pause for one hour.
    Pause1h,
    /// Pause until tomorrow 08:00 local time.
    PauseTomorrow,
    /// Resume notifications.
    Resume,
    /// Reconnect now (every account).
    Reconnect,
    /// Opens the settings window.
    Settings,
    /// Opens the diagnostics window.
    Diagnostics,
    /// Opens the sign-in window (shown when signed out).
    SignIn,
    /// Signs out (the only account; with several, each has its own entry).
    SignOut,
    /// The "Accounts" submenu (several accounts).
    Accounts,
    /// Opens the sign-in window to add one more account.
    AddAccount,
    /// Quits the app.
    Quit,
}

impl MenuId {
    /// Every id, in menu order.
    pub const ALL: [MenuId; 17] = [
        Self::User,
        Self::State,
        Self::Summary,
        Self::Notifications,
        Self::Pause,
        Self::Pause30m,
        Self::Pause1h,
        Self::PauseTomorrow,
        Self::Resume,
        Self::Reconnect,
        Self::Settings,
        Self::Diagnostics,
        Self::SignIn,
        Self::SignOut,
        Self::Accounts,
        Self::AddAccount,
        Self::Quit,
    ];

    /// The id string Tauri reports in menu events.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::State => "state",
            Self::Summary => "summary",
            Self::Notifications => "notifications",
            Self::Pause => "pause",
            Self::Pause30m => "pause-30m",
            Self::Pause1h => "pause-1h",
            Self::PauseTomorrow => "pause-tomorrow",
            Self::Resume => "resume",
            Self::Reconnect => "reconnect",
            Self::Settings => "settings",
            Self::Diagnostics => "diagnostics",
            Self::SignIn => "sign-in",
            Self::SignOut => "sign-out",
            Self::Accounts => "accounts",
            Self::AddAccount => "add-account",
            Self::Quit => "quit",
        }
    }

    /// The fixed label of an entry, in `lang`; `None` for the lines whose text is
    /// data (user, state, summary).
    pub fn label(self, lang: Lang) -> Option<String> {
        let msg = match self {
            Self::User | Self::State | Self::Summary => return None,
            Self::Notifications => return None,
            Self::Pause => Msg::MenuPause,
            Self::Pause30m => Msg::MenuPause30m,
            Self::Pause1h => Msg::MenuPause1h,
            Self::PauseTomorrow => Msg::MenuPauseTomorrow,
            Self::Resume => Msg::MenuResume,
            Self::Reconnect => Msg::MenuReconnect,
            Self::Settings => Msg::MenuSettings,
            Self::Diagnostics => Msg::MenuDiagnostics,
            Self::SignIn => Msg::MenuSignIn,
            Self::SignOut => Msg::MenuSignOut,
            Self::Accounts => Msg::MenuAccounts,
            Self::AddAccount => Msg::MenuAddAccount,
            Self::Quit => Msg::MenuQuit,
        };
        Some(tr(lang, msg))
    }

    /// Parses a fixed menu id (not the summary lines or the per-account entries).
    pub fn parse(id: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == id)
    }
}

/// The prefix of a per-account "Sign out" entry's id; the account id follows.
pub const SIGN_OUT_ACCOUNT: &str = "sign-out-account:";

/// The prefix of a per-account pause entry's id: `account:<what>:<id>`, where `<what>`
/// is a pause entry's [`MenuId::as_str`] (`pause-30m`, `pause-1h`, `pause-tomorrow`,
/// `resume`).
pub const ACCOUNT_PREFIX: &str = "account:";

/// What a click in the menu asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MenuAction {
    /// A fixed entry.
    Item(MenuId),
    /// The `i`-th login summary line.
    Summary(usize),
    /// Sign this account (`user@host`) out.
    SignOutAccount(String),
    /// Pause (or resume: [`MenuId::Resume`]) this account alone.
    PauseAccount {
        /// The pause entry: [`MenuId::Pause30m`], `Pause1h`, `PauseTomorrow` or `Resume`.
        what: MenuId,
        /// The account (`user@host`).
        id: String,
    },
}

impl MenuAction {
    /// Parses a menu event id; `None` for ids the menu never makes.
    pub fn parse(id: &str) -> Option<Self> {
        if let Some(i) = id.strip_prefix("summary-") {
            return i.parse().ok().map(Self::Summary);
        }
        if let Some(account) = id.strip_prefix(SIGN_OUT_ACCOUNT) {
            return (!account.is_empty()).then(|| Self::SignOutAccount(account.to_string()));
        }
        if let Some(rest) = id.strip_prefix(ACCOUNT_PREFIX) {
            let (what, account) = rest.split_once(':')?;
            let what = MenuId::parse(what).filter(|m| PAUSE_ENTRIES.contains(m))?;
            return (!account.is_empty()).then(|| Self::PauseAccount {
                what,
                id: account.to_string(),
            });
        }
        MenuId::parse(id).map(Self::Item)
    }
}

/// The state of one connection in words ("Connected · 38 ms", "Reconnecting in 8 s").
pub fn conn_text(state: &ConnState, lang: Lang) -> String {
    let msg = match state {
        ConnState::Connected { latency_ms } => Msg::StateConnected {
            latency_ms: *latency_ms,
        },
        ConnState::Connecting => Msg::StateConnecting,
        ConnState::Reconnecting { in_secs, .. } => Msg::StateReconnecting { in_secs: *in_secs },
        ConnState::Offline { .. } => Msg::StateOffline,
        ConnState::SignedOut { .. } => Msg::StateSignedOut,
    };
    tr(lang, msg)
}

/// The one-line state text of the menu, the tooltip and the windows: the first account's
/// connection, the pause, and how many accounts run when several.
pub fn state_line(status: &UiStatus, lang: Lang) -> String {
    let mut line = conn_text(&status.state, lang);
    let signed_out = matches!(status.state, ConnState::SignedOut { .. });
    if let (false, Some(until)) = (signed_out, &status.paused_label) {
        line = format!("{line} · {}", tr(lang, Msg::StatePausedUntil { until }));
    }
    if status.accounts > 1 {
        line = format!(
            "{line} · {}",
            tr(lang, Msg::Accounts { n: status.accounts })
        );
    }
    line
}

/// The tooltip: "TaskBell — " and the state line and the unread count of all accounts.
pub fn tooltip(status: &UiStatus, lang: Lang) -> String {
    format!(
        "TaskBell — {} · {}",
        state_line(status, lang),
        tr(lang, Msg::Unread { n: status.unread })
    )
}

/// One entry of the tray menu, before it becomes a Tauri menu.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A clickable (or disabled) line.
    Item {
        /// Event id (`MenuId::as_str`, `summary-<i>`, `sign-out-account:<id>`).
        id: String,
        /// The text shown.
        label: String,
        /// Whether it can be clicked.
        enabled: bool,
    },
    /// A separator line.
    Separator,
    /// A submenu.
    Submenu {
        /// Event id.
        id: String,
        /// The text shown.
        label: String,
        /// Its entries.
        items: Vec<Entry>,
    },
}

fn item(id: MenuId, lang: Lang, enabled: bool) -> Entry {
    Entry::Item {
        id: id.as_str().into(),
        label: id.label(lang).unwrap_or_default(),
        enabled,
    }
}

/// The pause entries, in menu order (the last resumes).
const PAUSE_ENTRIES: [MenuId; 4] = [
    MenuId::Pause30m,
    MenuId::Pause1h,
    MenuId::PauseTomorrow,
    MenuId::Resume,
];

/// The pause submenu's entries; `id_of` names each entry's event id.
fn pause_items(lang: Lang, paused: bool, id_of: impl Fn(MenuId) -> String) -> Vec<Entry> {
    let mut items: Vec<Entry> = PAUSE_ENTRIES
        .into_iter()
        .map(|m| Entry::Item {
            id: id_of(m),
            label: m.label(lang).unwrap_or_default(),
            enabled: m != MenuId::Resume || paused,
        })
        .collect();
    items.insert(3, Entry::Separator);
    items
}

/// The "Accounts" submenu: each account with its state, a pause and a "Sign out" of its
/// own, then "Add account…".
fn accounts_menu(status: &UiStatus, lang: Lang) -> Entry {
    let mut items: Vec<Entry> = status
        .account_list
        .iter()
        .map(|a| {
            let signed_in = !matches!(a.state, ConnState::SignedOut { .. });
            let mut label = format!("{} · {}", a.id, conn_text(&a.state, lang));
            if a.paused_until_ms.is_some() && signed_in {
                label = format!("{label} · {}", tr(lang, Msg::MenuPause));
            }
            let mut entries = Vec::new();
            if signed_in {
                entries.extend(pause_items(lang, a.paused_until_ms.is_some(), |m| {
                    format!("{ACCOUNT_PREFIX}{}:{}", m.as_str(), a.id)
                }));
                entries.push(Entry::Separator);
            }
            entries.push(Entry::Item {
                id: format!("{SIGN_OUT_ACCOUNT}{}", a.id),
                label: tr(lang, Msg::MenuSignOut),
                enabled: signed_in,
            });
            Entry::Submenu {
                id: format!("{ACCOUNT_PREFIX}{}", a.id),
                label,
                items: entries,
            }
        })
        .collect();
    items.push(Entry::Separator);
    items.push(item(MenuId::AddAccount, lang, true));
    Entry::Submenu {
        id: MenuId::Accounts.as_str().into(),
        label: tr(lang, Msg::MenuAccounts),
        items,
    }
}

/// The whole menu for `status`, in `lang`. Pure: the tests check it line by line.
pub fn menu_model(status: &UiStatus, lang: Lang) -> Vec<Entry> {
    let mut out = Vec::new();
    let signed_in = !matches!(status.state, ConnState::SignedOut { .. });
    if let (true, Some(user)) = (signed_in, &status.user) {
        out.push(Entry::Item {
            id: MenuId::User.as_str().into(),
            label: format!(
                "{} · {}",
                user.display_name,
                tr(lang, Msg::RoleName { role: &user.role })
            ),
            enabled: false,
        });
    }
    out.push(Entry::Item {
        id: MenuId::State.as_str().into(),
        label: state_line(status, lang),
        enabled: false,
    });
    if signed_in && !status.summary_lines.is_empty() {
        out.push(Entry::Separator);
        for (i, line) in status.summary_lines.iter().enumerate() {
            out.push(Entry::Item {
                id: format!("summary-{i}"),
                label: line.clone(),
                enabled: true,
            });
        }
    }
    out.push(Entry::Separator);
    let several = status.account_list.len() > 1;
    if signed_in || several {
        out.push(Entry::Item {
            id: MenuId::Notifications.as_str().into(),
            label: tr(lang, Msg::MenuNotifications { n: status.unread }),
            enabled: true,
        });
        let paused = status.paused_until_ms.is_some();
        out.push(Entry::Submenu {
            id: MenuId::Pause.as_str().into(),
            label: tr(lang, Msg::MenuPause),
            items: pause_items(lang, paused, |m| m.as_str().to_string()),
        });
        out.push(item(
            MenuId::Reconnect,
            lang,
            !matches!(status.state, ConnState::Connected { .. }) || several,
        ));
        out.push(Entry::Separator);
        if several {
            out.push(accounts_menu(status, lang));
        }
        if !signed_in {
            out.push(item(MenuId::SignIn, lang, true));
        }
        out.push(item(MenuId::Settings, lang, true));
        out.push(item(MenuId::Diagnostics, lang, true));
        if !several {
            out.push(item(MenuId::AddAccount, lang, true));
            out.push(item(MenuId::SignOut, lang, true));
        }
    } else {
        out.push(item(MenuId::SignIn, lang, true));
        out.push(item(MenuId::Settings, lang, true));
        out.push(item(MenuId::Diagnostics, lang, true));
    }
    out.push(Entry::Separator);
    out.push(item(MenuId::Quit, lang, true));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::test_status as status;

    fn labels(entries: &[Entry]) -> Vec<String> {
        entries
            .iter()
            .map(|e| match e {
                Entry::Item { label, .. } | Entry::Submenu { label, .. } => label.clone(),
                Entry::Separator => "---".into(),
            })
            .collect()
    }

    #[test]
    fn every_menu_id_has_a_unique_key_that_parses_back_and_labels_in_both_languages() {
        let mut keys: Vec<&str> = MenuId::ALL.iter().map(|m| m.as_str()).collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), MenuId::ALL.len(), "keys are unique");
        for id in MenuId::ALL {
            assert_eq!(MenuId::parse(id.as_str()), Some(id));
            assert_eq!(MenuAction::parse(id.as_str()), Some(MenuAction::Item(id)));
            let data = matches!(
                id,
                MenuId::User | MenuId::State | MenuId::Summary | MenuId::Notifications
            );
            let (zh, en) = (id.label(Lang::ZhCn), id.label(Lang::En));
            assert_eq!(zh.is_none(), data, "{id:?}");
            assert!(zh != en || data, "{id:?} is translated");
        }
        assert_eq!(MenuAction::parse("summary-3"), Some(MenuAction::Summary(3)));
        assert_eq!(MenuAction::parse("summary-x"), None);
        assert_eq!(
            MenuAction::parse("sign-out-account:li@b.example"),
            Some(MenuAction::SignOutAccount("li@b.example".into()))
        );
        assert_eq!(MenuAction::parse("sign-out-account:"), None);
        assert_eq!(
            MenuAction::parse("account:pause-1h:li@b.example"),
            Some(MenuAction::PauseAccount {
                what: MenuId::Pause1h,
                id: "li@b.example".into()
            })
        );
        assert_eq!(
            MenuAction::parse("account:resume:li@b.example"),
            Some(MenuAction::PauseAccount {
                what: MenuId::Resume,
                id: "li@b.example".into()
            })
        );
        assert_eq!(MenuAction::parse("account:quit:li@b.example"), None);
        assert_eq!(MenuAction::parse("account:pause-1h:"), None);
        assert_eq!(MenuAction::parse("account:li@b.example"), None);
        assert_eq!(MenuAction::parse("nonsense"), None);
    }

    #[test]
    fn connected_menu_has_user_state_summary_and_actions_in_english() {
        let s = status(ConnState::Connected {
            latency_ms: Some(38),
        });
        let m = menu_model(&s, Lang::En);
        assert_eq!(
            labels(&m),
            [
                "张三 · Annotator",
                "Connected · 38 ms",
                "---",
                "被驳回的任务：2 个",
                "进行中的任务：5 个",
                "---",
                "Notifications (3 unread)…",
                "Pause notifications",
                "Reconnect now",
                "---",
                "Settings…",
                "Diagnostics…",
                "Add account…",
                "Sign out",
                "---",
                "Quit TaskBell",
            ]
        );
        let Entry::Submenu { items, .. } = &m[7] else {
            panic!("pause is a submenu")
        };
        assert_eq!(
            labels(items),
            ["30 min", "1 hour", "Until tomorrow", "---", "Resume"]
        );
        assert!(
            matches!(&items[4], Entry::Item { enabled: false, .. }),
            "resume off when not paused"
        );
        assert!(
            matches!(&m[8], Entry::Item { enabled: false, .. }),
            "reconnect off when connected"
        );
    }

    #[test]
    fn reconnecting_menu_in_chinese_counts_down_and_enables_reconnect() {
        let s = status(ConnState::Reconnecting {
            in_secs: 8,
            reason: "x".into(),
        });
        let m = menu_model(&s, Lang::ZhCn);
        assert_eq!(labels(&m)[1], "8 秒后重连");
        assert_eq!(labels(&m)[6], "通知（3 条未读）…");
        assert!(
            m.iter()
                .any(|e| matches!(e, Entry::Item { id, enabled: true, .. } if id == "reconnect"))
        );
    }

    #[test]
    fn signed_out_menu_offers_sign_in_and_no_account_actions() {
        let s = status(ConnState::SignedOut { reason: None });
        let l = labels(&menu_model(&s, Lang::En));
        assert_eq!(
            l,
            [
                "Signed out",
                "---",
                "Sign in…",
                "Settings…",
                "Diagnostics…",
                "---",
                "Quit TaskBell"
            ]
        );
    }

    #[test]
    fn tooltip_says_state_latency_and_unread() {
        let s = status(ConnState::Connected {
            latency_ms: Some(38),
        });
        assert_eq!(
            tooltip(&s, Lang::En),
            "TaskBell — Connected · 38 ms · 3 unread"
        );
        assert_eq!(
            tooltip(&s, Lang::ZhCn),
            "TaskBell — 已连接 · 38 ms · 3 条未读"
        );
        let mut p = s.clone();
        p.paused_until_ms = Some(1);
        p.paused_label = Some("08:00".into());
        assert_eq!(
            tooltip(&p, Lang::En),
            "TaskBell — Connected · 38 ms · paused until 08:00 · 3 unread"
        );
    }

    #[test]
    fn several_accounts_are_counted_in_the_state_line_and_the_tooltip() {
        let mut s = status(ConnState::Connected {
            latency_ms: Some(38),
        });
        s.accounts = 2;
        assert_eq!(state_line(&s, Lang::En), "Connected · 38 ms · 2 accounts");
        assert_eq!(
            tooltip(&s, Lang::En),
            "TaskBell — Connected · 38 ms · 2 accounts · 3 unread"
        );
        assert_eq!(
            tooltip(&s, Lang::ZhCn),
            "TaskBell — 已连接 · 38 ms · 2 个账号 · 3 条未读"
        );
        s.accounts = 1;
        assert_eq!(state_line(&s, Lang::En), "Connected · 38 ms");
    }

    #[test]
    fn several_accounts_get_an_accounts_submenu_each_with_its_state_and_sign_out() {
        use crate::model::UiAccount;
        let mut s = status(ConnState::Connected {
            latency_ms: Some(38),
        });
        s.accounts = 2;
        s.account_list = vec![
            UiAccount {
                id: "zhangsan@a.example".into(),
                state: s.state.clone(),
                unread: 1,
                paused_until_ms: None,
            },
            UiAccount {
                id: "li@b.example".into(),
                state: ConnState::Reconnecting {
                    in_secs: 4,
                    reason: "x".into(),
                },
                unread: 2,
                paused_until_ms: None,
            },
        ];
        let m = menu_model(&s, Lang::En);
        let l = labels(&m);
        assert!(!l.contains(&"Sign out".to_string()), "{l:?}");
        assert!(l.contains(&"Reconnect now".to_string()));
        assert!(
            m.iter()
                .any(|e| matches!(e, Entry::Item { id, enabled: true, .. } if id == "reconnect")),
            "reconnect reaches every account, so it stays on"
        );
        let Some(Entry::Submenu { items, .. }) = m
            .iter()
            .find(|e| matches!(e, Entry::Submenu { id, .. } if id == "accounts"))
        else {
            panic!("an accounts submenu: {l:?}")
        };
        assert_eq!(
            labels(items),
            [
                "zhangsan@a.example · Connected · 38 ms",
                "li@b.example · Reconnecting in 4 s",
                "---",
                "Add account…"
            ]
        );
        let Entry::Submenu { items: second, .. } = &items[1] else {
            panic!("each account is a submenu")
        };
        assert_eq!(
            labels(second),
            [
                "30 min",
                "1 hour",
                "Until tomorrow",
                "---",
                "Resume",
                "---",
                "Sign out"
            ]
        );
        assert_eq!(
            second[0],
            Entry::Item {
                id: "account:pause-30m:li@b.example".into(),
                label: "30 min".into(),
                enabled: true
            }
        );
        assert!(
            matches!(&second[4], Entry::Item { enabled: false, .. }),
            "nothing to resume"
        );
        assert_eq!(
            second[6],
            Entry::Item {
                id: "sign-out-account:li@b.example".into(),
                label: "Sign out".into(),
                enabled: true
            }
        );
        // Paused alone: said in its line, and its Resume is on.
        let mut p = s.clone();
        p.account_list[1].paused_until_ms = Some(1);
        let m = menu_model(&p, Lang::En);
        let Some(Entry::Submenu { items, .. }) = m
            .iter()
            .find(|e| matches!(e, Entry::Submenu { id, .. } if id == "accounts"))
        else {
            panic!("an accounts submenu")
        };
        assert_eq!(
            labels(items)[1],
            "li@b.example · Reconnecting in 4 s · Pause notifications"
        );
        let Entry::Submenu { items: second, .. } = &items[1] else {
            panic!("a submenu")
        };
        assert!(matches!(&second[4], Entry::Item { enabled: true, .. }));
        // Signed-out first account while another runs: the account actions stay.
        s.state = ConnState::SignedOut { reason: None };
        s.account_list[0].state = s.state.clone();
        let m = menu_model(&s, Lang::En);
        let l = labels(&m);
        assert!(
            l.contains(&"Sign in…".to_string()) && l.contains(&"Accounts".to_string()),
            "{l:?}"
        );
    }
}
