//! User-facing strings in Chinese (zh-CN) and English, in one table ([`tr`]).
//! Pure. The language comes from the system locale ([`Lang::from_system`]) and
//! can be overridden in the config.
//!
//! The Chinese texts of the login summary are protocol.md §5 verbatim.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A UI language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Lang {
    /// Simplified Chinese (`zh-CN`).
    ZhCn,
    /// English (`en`).
    #[default]
    En,
}

impl Lang {
    /// Parses a language tag or POSIX locale leniently: anything starting
    /// with `zh` (`zh`, `zh-CN`, `zh_CN.UTF-8`, `zh-Hans`) is Chinese, anything
    /// starting with `en` is English; `None` otherwise.
    pub fn parse(s: &str) -> Option<Lang> {
        let lower = s.trim().to_ascii_lowercase();
        if lower.starts_with("zh") {
            Some(Lang::ZhCn)
        } else if lower.starts_with("en") || lower == "c" || lower == "posix" {
            Some(Lang::En)
        } else {
            None
        }
    }

    /// The language of the system locale (`sys-locale`): Chinese for `zh*`,
    /// English otherwise.
    pub fn from_system() -> Lang {
        Lang::from_locale(sys_locale::get_locale().as_deref())
    }

    /// The language for a locale string (`None` = unknown → English).
    pub fn from_locale(locale: Option<&str>) -> Lang {
        match locale.and_then(Lang::parse) {
            Some(Lang::ZhCn) => Lang::ZhCn,
            _ => Lang::En,
        }
    }

    /// The tag used in the config file: `"zh-CN"` or `"en"`.
    pub fn as_tag(self) -> &'static str {
        match self {
            Lang::ZhCn => "zh-CN",
            Lang::En => "en",
        }
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_tag())
    }
}

impl Serialize for Lang {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_tag())
    }
}

impl<'de> Deserialize<'de> for Lang {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Lang::parse(&s).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown language \"{s}\", expected \"zh-CN\" or \"en\""
            ))
        })
    }
}

/// A message id with its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Msg<'a> {
    /// Title of the welcome toast: "登录成功".
    WelcomeTitle,
    /// First line of the welcome toast: "欢迎回来，{real_name}".
    WelcomeBack {
        /// The user's display name.
        real_name: &'a str,
    },
    /// Annotator summary line for rejected tasks (urgent).
    SummaryRejected {
        /// Count.
        n: u32,
    },
    /// Annotator summary line for tasks in progress.
    SummaryInProgress {
        /// Count.
        n: u32,
    },
    /// Reviewer summary line for tasks waiting for review.
    SummaryPendingReviews {
        /// Count.
        n: u32,
    },
    /// Reviewer summary line for pending skip requests.
    SummaryPendingSkips {
        /// Count.
        n: u32,
    },
    /// Summary line when nothing is waiting *(ours)*.
    SummaryNothing,
    /// Summary line when the counts could not be fetched.
    SummaryUnavailable,
    /// Title of the annotator's urgent toast: "⚠️ 任务被驳回提醒".
    UrgentRejectedTitle,
    /// Body of the annotator's urgent toast.
    UrgentRejectedBody {
        /// Rejected tasks.
        n: u32,
    },
    /// Title of the reviewer's urgent toast *(ours)*.
    UrgentReviewTitle,
    /// Body of the reviewer's urgent toast *(ours)*.
    UrgentReviewBody {
        /// Tasks waiting for review.
        reviews: u32,
        /// Skip requests waiting.
        skips: u32,
    },
    /// Title of a folded toast: "N new notifications".
    FoldedTitle {
        /// How many notifications it stands for.
        n: usize,
    },
    /// "… and N more" in a folded toast's body.
    FoldedMore {
        /// How many are not listed.
        n: usize,
    },
    /// Title for a group chat message.
    GroupMessageTitle {
        /// The group id.
        group: &'a str,
    },
    /// Title for a private chat message.
    PrivateMessageTitle {
        /// Sender (name or id).
        from: &'a str,
    },
    /// State: connecting.
    StateConnecting,
    /// State: connected, with the last heartbeat latency if known.
    StateConnected {
        /// Latency in ms.
        latency_ms: Option<u64>,
    },
    /// State: reconnecting in N seconds.
    StateReconnecting {
        /// Seconds until the next attempt.
        in_secs: u64,
    },
    /// State: offline.
    StateOffline,
    /// State: signed out.
    StateSignedOut,
    /// State: notifications paused until a (formatted) time.
    StatePausedUntil {
        /// The end of the pause, already formatted.
        until: &'a str,
    },
    /// "{n} unread".
    Unread {
        /// Count.
        n: u64,
    },
    /// The "Open" action on a toast.
    Open,
    /// The "Open task" action on a toast about a task.
    OpenTask,
    /// The "Mark read" action on a toast.
    MarkRead,
    /// The "Snooze" action on a toast (shown again later, once).
    Snooze,
    /// The "Review" action on a reviewer's toast about a submission or a skip request.
    Review,
    /// The action of a folded toast that opens the notification center on its notifications.
    ShowAll,
    /// The session ended (token expired or revoked) and no password is remembered.
    SessionEnded,
    /// The server denied access (close code 4003).
    AccessDenied {
        /// The server's reason.
        reason: &'a str,
    },
    /// Too many connections for this user (close code 1008).
    TooManyConnections,
    /// Title of the test notification.
    TestTitle,
    /// Body of the test notification.
    TestBody,
    /// How many accounts run, after the tray's state line: "2 个账号".
    Accounts {
        /// How many.
        n: u32,
    },
    /// A role's name ("annotator", "reviewer", "admin"); another text is shown as it is.
    RoleName {
        /// The role as the platform names it.
        role: &'a str,
    },
    /// Tray menu: "Notifications (N unread)…".
    MenuNotifications {
        /// Unread count.
        n: u64,
    },
    /// Tray menu: the pause submenu.
    MenuPause,
    /// Tray menu: pause for 30 minutes.
    MenuPause30m,
    /// Tray menu: pause for an hour.
    MenuPause1h,
    /// Tray menu: pause until tomorrow morning.
    MenuPauseTomorrow,
    /// Tray menu: resume.
    MenuResume,
    /// Tray menu: reconnect now.
    MenuReconnect,
    /// Tray menu: the settings window.
    MenuSettings,
    /// Tray menu: the diagnostics window.
    MenuDiagnostics,
    /// Tray menu: the sign-in window.
    MenuSignIn,
    /// Tray menu: sign out.
    MenuSignOut,
    /// Tray menu: the accounts submenu.
    MenuAccounts,
    /// Tray menu: sign in to one more account.
    MenuAddAccount,
    /// Tray menu: quit.
    MenuQuit,
    /// Title of the sign-in window.
    WindowLogin,
    /// Title of the notification center.
    WindowCenter,
    /// Title of the settings window.
    WindowSettings,
    /// Title of the diagnostics window.
    WindowDiagnostics,
    /// What to do without a keyring.
    FixKeyring,
    /// What to do without a notification daemon.
    FixNotifications,
    /// What to do without a tray host.
    FixTray,
}

/// Translates a message into `lang`.
pub fn tr(lang: Lang, msg: Msg<'_>) -> String {
    let zh = lang == Lang::ZhCn;
    let pick = |z: String, e: String| if zh { z } else { e };
    match msg {
        Msg::WelcomeTitle => pick("登录成功".into(), "Signed in".into()),
        Msg::WelcomeBack { real_name } => pick(
            format!("欢迎回来，{real_name}"),
            format!("Welcome back, {real_name}"),
        ),
        Msg::SummaryRejected { n } => pick(
            format!("⚠️ 您有 {n} 个被驳回任务，建议请您先修订"),
            format!(
                "⚠️ You have {n} rejected {} — please revise {} first",
                plural(n, "task", "tasks"),
                if n == 1 { "it" } else { "them" }
            ),
        ),
        Msg::SummaryInProgress { n } => pick(
            format!("您有 {n} 个进行中的任务"),
            format!("You have {n} {} in progress", plural(n, "task", "tasks")),
        ),
        Msg::SummaryPendingReviews { n } => pick(
            format!("有 {n} 个任务待审核"),
            format!(
                "{n} {} waiting for review",
                plural(n, "task is", "tasks are")
            ),
        ),
        Msg::SummaryPendingSkips { n } => pick(
            format!("有 {n} 个跳过申请待处理"),
            format!(
                "{n} skip {} waiting",
                plural(n, "request is", "requests are")
            ),
        ),
        Msg::SummaryNothing => pick("暂无待处理事项".into(), "Nothing is waiting for you".into()),
        Msg::SummaryUnavailable => {
            pick("暂时无法获取任务汇总".into(), "Summary unavailable".into())
        }
        Msg::UrgentRejectedTitle => pick("⚠️ 任务被驳回提醒".into(), "⚠️ Rejected tasks".into()),
        Msg::UrgentRejectedBody { n } => pick(
            format!("您有 {n} 个任务被驳回，请尽快修订并重新提交！"),
            format!(
                "You have {n} rejected {}. Please revise and resubmit as soon as possible!",
                plural(n, "task", "tasks")
            ),
        ),
        Msg::UrgentReviewTitle => pick("⚠️ 待处理提醒".into(), "⚠️ Waiting for you".into()),
        Msg::UrgentReviewBody { reviews, skips } => {
            let mut zh_parts = Vec::new();
            let mut en_parts = Vec::new();
            if reviews > 0 {
                zh_parts.push(format!("有 {reviews} 个任务待审核"));
                en_parts.push(format!(
                    "{reviews} {} waiting for review",
                    plural(reviews, "task is", "tasks are")
                ));
            }
            if skips > 0 {
                zh_parts.push(format!("有 {skips} 个跳过申请待处理"));
                en_parts.push(format!(
                    "{skips} skip {} waiting",
                    plural(skips, "request is", "requests are")
                ));
            }
            pick(
                format!("{}，请尽快处理！", zh_parts.join("，")),
                format!("{}. Please handle them soon!", en_parts.join(", ")),
            )
        }
        Msg::FoldedTitle { n } => pick(format!("{n} 条新通知"), format!("{n} new notifications")),
        Msg::FoldedMore { n } => pick(format!("……还有 {n} 条"), format!("… and {n} more")),
        Msg::GroupMessageTitle { group } => pick(
            format!("群组 {group} 有新消息"),
            format!("New message in group {group}"),
        ),
        Msg::PrivateMessageTitle { from } => pick(
            format!("来自 {from} 的新消息"),
            format!("New message from {from}"),
        ),
        Msg::StateConnecting => pick("正在连接…".into(), "Connecting…".into()),
        Msg::StateConnected { latency_ms } => match latency_ms {
            Some(ms) => pick(format!("已连接 · {ms} ms"), format!("Connected · {ms} ms")),
            None => pick("已连接".into(), "Connected".into()),
        },
        Msg::StateReconnecting { in_secs } => pick(
            format!("{in_secs} 秒后重连"),
            format!("Reconnecting in {in_secs} s"),
        ),
        Msg::StateOffline => pick("离线".into(), "Offline".into()),
        Msg::StateSignedOut => pick("未登录".into(), "Signed out".into()),
        Msg::StatePausedUntil { until } => pick(
            format!("已暂停至 {until}"),
            format!("paused until {until}"),
        ),
        Msg::Unread { n } => pick(format!("{n} 条未读"), format!("{n} unread")),
        Msg::Open => pick("打开".into(), "Open".into()),
        Msg::OpenTask => pick("打开任务".into(), "Open task".into()),
        Msg::MarkRead => pick("标为已读".into(), "Mark read".into()),
        Msg::Snooze => pick("稍后提醒".into(), "Snooze".into()),
        Msg::Review => pick("去审核".into(), "Review".into()),
        Msg::ShowAll => pick("查看全部".into(), "Show all".into()),
        Msg::SessionEnded => pick(
            "登录已失效，请重新登录".into(),
            "Your session has ended; please sign in again".into(),
        ),
        Msg::AccessDenied { reason } => pick(
            format!("访问被拒绝：{reason}"),
            format!("Access denied: {reason}"),
        ),
        Msg::TooManyConnections => pick(
            "此账号的连接数过多，稍后重试".into(),
            "Too many connections for this account; retrying later".into(),
        ),
        Msg::TestTitle => pick(
            "TaskBell 测试通知".into(),
            "TaskBell test notification".into(),
        ),
        Msg::TestBody => pick(
            "如果你看到了这条消息，桌面通知工作正常。".into(),
            "If you can read this, desktop notifications work.".into(),
        ),
        Msg::Accounts { n } => pick(format!("{n} 个账号"), format!("{n} accounts")),
        Msg::RoleName { role } => match role {
            "annotator" => pick("标注员".into(), "Annotator".into()),
            "reviewer" => pick("审核员".into(), "Reviewer".into()),
            "admin" => pick("管理员".into(), "Admin".into()),
            other => other.to_string(),
        },
        Msg::MenuNotifications { n } => {
            pick(format!("通知（{n} 条未读）…"), format!("Notifications ({n} unread)…"))
        }
        Msg::MenuPause => pick("暂停通知".into(), "Pause notifications".into()),
        Msg::MenuPause30m => pick("30 分钟".into(), "30 min".into()),
        Msg::MenuPause1h => pick("1 小时".into(), "1 hour".into()),
        Msg::MenuPauseTomorrow => pick("直到明天".into(), "Until tomorrow".into()),
        Msg::MenuResume => pick("恢复通知".into(), "Resume".into()),
        Msg::MenuReconnect => pick("立即重连".into(), "Reconnect now".into()),
        Msg::MenuSettings => pick("设置…".into(), "Settings…".into()),
        Msg::MenuDiagnostics => pick("诊断…".into(), "Diagnostics…".into()),
        Msg::MenuSignIn => pick("登录…".into(), "Sign in…".into()),
        Msg::MenuSignOut => pick("退出登录".into(), "Sign out".into()),
        Msg::MenuAccounts => pick("账号".into(), "Accounts".into()),
        Msg::MenuAddAccount => pick("添加账号…".into(), "Add account…".into()),
        Msg::MenuQuit => pick("退出 TaskBell".into(), "Quit TaskBell".into()),
        Msg::WindowLogin => pick("登录 TaskBell".into(), "Sign in to TaskBell".into()),
        Msg::WindowCenter => pick("TaskBell 通知".into(), "TaskBell notifications".into()),
        Msg::WindowSettings => pick("TaskBell 设置".into(), "TaskBell settings".into()),
        Msg::WindowDiagnostics => pick("TaskBell 诊断".into(), "TaskBell diagnostics".into()),
        Msg::FixKeyring => pick(
            "没有可用的钥匙串：安装并启动 gnome-keyring（或 KWallet），确保会话 D-Bus 在运行；否则 TaskBell 无法记住登录。".into(),
            "No keyring: install and start gnome-keyring (or KWallet) with a session D-Bus running; without one TaskBell cannot remember your sign-in.".into(),
        ),
        Msg::FixNotifications => pick(
            "没有通知服务：安装并启动一个通知守护进程（如 dunst、mako，或桌面自带的），然后点“发送测试通知”。".into(),
            "No notification daemon: install and start one (dunst, mako, or your desktop's own), then press \"Send a test notification\".".into(),
        ),
        Msg::FixTray => pick(
            "没有系统托盘：GNOME 请安装“AppIndicator and KStatusNotifierItem Support”扩展；其他桌面请在面板中添加托盘/通知区域（或运行 trayer、stalonetray）。".into(),
            "No system tray: on GNOME install the \"AppIndicator and KStatusNotifierItem Support\" extension; elsewhere add a tray / notification area to your panel (or run trayer or stalonetray).".into(),
        ),
    }
}

/// English singular/plural.
fn plural(n: u32, one: &'static str, many: &'static str) -> &'static str {
    if n == 1 { one } else { many }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tags_and_locales() {
        assert_eq!(Lang::parse("zh-CN"), Some(Lang::ZhCn));
        assert_eq!(Lang::parse("zh_CN.UTF-8"), Some(Lang::ZhCn));
        assert_eq!(Lang::parse("zh-Hans-CN"), Some(Lang::ZhCn));
        assert_eq!(Lang::parse("en"), Some(Lang::En));
        assert_eq!(Lang::parse("en_US.UTF-8"), Some(Lang::En));
        assert_eq!(Lang::parse("fr-FR"), None);
        assert_eq!(Lang::from_locale(Some("fr-FR")), Lang::En);
        assert_eq!(Lang::from_locale(Some("zh-TW")), Lang::ZhCn);
        assert_eq!(Lang::from_locale(None), Lang::En);
    }

    #[test]
    fn serde_uses_tags() {
        #[derive(Serialize, Deserialize)]
        struct W {
            l: Lang,
        }
        let w: W = toml::from_str("l = \"zh-CN\"").unwrap_or(W { l: Lang::En });
        assert_eq!(w.l, Lang::ZhCn);
        assert_eq!(
            toml::to_string(&w).unwrap_or_default().trim(),
            "l = \"zh-CN\""
        );
        let err = toml::from_str::<W>("l = \"klingon\"")
            .err()
            .map(|e| e.to_string());
        assert!(err.unwrap_or_default().contains("unknown language"));
    }

    #[test]
    fn protocol_texts_verbatim() {
        assert_eq!(
            tr(Lang::ZhCn, Msg::SummaryRejected { n: 2 }),
            "⚠️ 您有 2 个被驳回任务，建议请您先修订"
        );
        assert_eq!(
            tr(Lang::ZhCn, Msg::SummaryInProgress { n: 5 }),
            "您有 5 个进行中的任务"
        );
        assert_eq!(
            tr(Lang::ZhCn, Msg::SummaryPendingReviews { n: 1 }),
            "有 1 个任务待审核"
        );
        assert_eq!(
            tr(Lang::ZhCn, Msg::SummaryPendingSkips { n: 3 }),
            "有 3 个跳过申请待处理"
        );
        assert_eq!(
            tr(Lang::ZhCn, Msg::UrgentRejectedTitle),
            "⚠️ 任务被驳回提醒"
        );
        assert_eq!(
            tr(Lang::ZhCn, Msg::UrgentRejectedBody { n: 1 }),
            "您有 1 个任务被驳回，请尽快修订并重新提交！"
        );
        assert_eq!(tr(Lang::ZhCn, Msg::WelcomeTitle), "登录成功");
        assert_eq!(
            tr(
                Lang::ZhCn,
                Msg::WelcomeBack {
                    real_name: "张三"
                }
            ),
            "欢迎回来，张三"
        );
    }

    #[test]
    fn english_plurals() {
        assert_eq!(
            tr(Lang::En, Msg::SummaryRejected { n: 1 }),
            "⚠️ You have 1 rejected task — please revise it first"
        );
        assert_eq!(
            tr(Lang::En, Msg::SummaryRejected { n: 3 }),
            "⚠️ You have 3 rejected tasks — please revise them first"
        );
        assert_eq!(
            tr(Lang::En, Msg::FoldedTitle { n: 7 }),
            "7 new notifications"
        );
        assert_eq!(
            tr(
                Lang::En,
                Msg::StateConnected {
                    latency_ms: Some(12)
                }
            ),
            "Connected · 12 ms"
        );
        assert_eq!(
            tr(
                Lang::En,
                Msg::UrgentReviewBody {
                    reviews: 2,
                    skips: 1
                }
            ),
            "2 tasks are waiting for review, 1 skip request is waiting. Please handle them soon!"
        );
    }
}
