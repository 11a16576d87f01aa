//! The tray: one icon per state with the unread badge drawn at run time, the tooltip,
//! and the menu. Menu ids and their labels in both languages live in ONE table,
//! [`LABELS`]; everything here except [`install`] and [`apply`] is pure and unit-tested.

use serde::{Deserialize, Serialize};
use tauri::image::Image;
use tauri::menu::{IsMenuItem, Menu, MenuItem, PredefinedMenuItem, Submenu};
use tauri::tray::{MouseButton, MouseButtonState, TrayIconBuilder, TrayIconEvent};
use tauri::{AppHandle, Manager, Runtime};

use crate::model::{ConnState, Lang, UiStatus};

/// The id of the one tray icon the app owns.
pub const TRAY_ID: &str = "taskbell";

/// What the tray icon shows, one PNG per state (from `icons/src/<state>.svg`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IconState {
    /// Signed in, socket open.
    Connected,
    /// Connecting for the first time or waiting to reconnect.
    Connecting,
    /// No network or the server is unreachable for good.
    Offline,
    /// Nobody is signed in.
    SignedOut,
    /// Signed in, notifications paused.
    Paused,
}

impl IconState {
    /// The state the icon should show for `status` (pause wins over a working connection).
    pub fn of(status: &UiStatus) -> Self {
        match &status.state {
            ConnState::SignedOut { .. } => Self::SignedOut,
            ConnState::Offline { .. } => Self::Offline,
            ConnState::Connecting | ConnState::Reconnecting { .. } => Self::Connecting,
            ConnState::Connected { .. } if status.paused_until_ms.is_some() => Self::Paused,
            ConnState::Connected { .. } => Self::Connected,
        }
    }

    /// The committed PNG for this state (64×64 RGBA), built from `icons/src/<state>.svg`.
    pub fn png(self) -> &'static [u8] {
        match self {
            Self::Connected => include_bytes!("../../icons/tray/connected.png"),
            Self::Connecting => include_bytes!("../../icons/tray/connecting.png"),
            Self::Offline => include_bytes!("../../icons/tray/offline.png"),
            Self::SignedOut => include_bytes!("../../icons/tray/signed-out.png"),
            Self::Paused => include_bytes!("../../icons/tray/paused.png"),
        }
    }
}

/// Menu item ids. Their labels are in [`LABELS`]; [`MenuId::as_str`] is what Tauri sees.
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
    /// Reconnect now.
    Reconnect,
    /// Opens the settings window.
    Settings,
    /// Opens the diagnostics window.
    Diagnostics,
    /// Opens the sign-in window (shown when signed out).
    SignIn,
    /// Signs out.
    SignOut,
    /// Quits the app.
    Quit,
}

/// One row of the label table: id string, Chinese label, English label.
#[derive(Debug)]
pub struct Label {
    /// The menu id as Tauri sees it.
    pub id: MenuId,
    /// The id string.
    pub key: &'static str,
    /// Simplified Chinese text; `{n}`, `{name}`, `{role}` are filled in.
    pub zh: &'static str,
    /// English text; same placeholders.
    pub en: &'static str,
}

/// THE table: every menu id with its labels in both languages.
pub const LABELS: &[Label] = &[
    Label {
        id: MenuId::User,
        key: "user",
        zh: "{name} · {role}",
        en: "{name} · {role}",
    },
    Label {
        id: MenuId::State,
        key: "state",
        zh: "{state}",
        en: "{state}",
    },
    Label {
        id: MenuId::Summary,
        key: "summary",
        zh: "{line}",
        en: "{line}",
    },
    Label {
        id: MenuId::Notifications,
        key: "notifications",
        zh: "通知（{n} 条未读）…",
        en: "Notifications ({n} unread)…",
    },
    Label {
        id: MenuId::Pause,
        key: "pause",
        zh: "暂停通知",
        en: "Pause notifications",
    },
    Label {
        id: MenuId::Pause30m,
        key: "pause-30m",
        zh: "30 分钟",
        en: "30 min",
    },
    Label {
        id: MenuId::Pause1h,
        key: "pause-1h",
        zh: "1 小时",
        en: "1 hour",
    },
    Label {
        id: MenuId::PauseTomorrow,
        key: "pause-tomorrow",
        zh: "直到明天",
        en: "Until tomorrow",
    },
    Label {
        id: MenuId::Resume,
        key: "resume",
        zh: "恢复通知",
        en: "Resume",
    },
    Label {
        id: MenuId::Reconnect,
        key: "reconnect",
        zh: "立即重连",
        en: "Reconnect now",
    },
    Label {
        id: MenuId::Settings,
        key: "settings",
        zh: "设置…",
        en: "Settings…",
    },
    Label {
        id: MenuId::Diagnostics,
        key: "diagnostics",
        zh: "诊断…",
        en: "Diagnostics…",
    },
    Label {
        id: MenuId::SignIn,
        key: "sign-in",
        zh: "登录…",
        en: "Sign in…",
    },
    Label {
        id: MenuId::SignOut,
        key: "sign-out",
        zh: "退出登录",
        en: "Sign out",
    },
    Label {
        id: MenuId::Quit,
        key: "quit",
        zh: "退出 TaskBell",
        en: "Quit TaskBell",
    },
];

impl MenuId {
    fn row(self) -> &'static Label {
        // Every variant has a row (checked by a test); fall back to the last row rather than panic.
        LABELS
            .iter()
            .find(|l| l.id == self)
            .unwrap_or(&LABELS[LABELS.len() - 1])
    }

    /// The id string Tauri reports in menu events.
    pub fn as_str(self) -> &'static str {
        self.row().key
    }

    /// The label template in `lang`.
    pub fn label(self, lang: Lang) -> &'static str {
        match lang {
            Lang::ZhCn => self.row().zh,
            Lang::En => self.row().en,
        }
    }

    /// Parses a menu event id. Summary lines are `summary-<i>`.
    pub fn parse(id: &str) -> Option<Self> {
        if id.starts_with("summary-") {
            return Some(Self::Summary);
        }
        LABELS.iter().find(|l| l.key == id).map(|l| l.id)
    }
}

/// State line texts (zh, en), used in the menu and the tooltip.
fn state_text(status: &UiStatus, lang: Lang) -> String {
    let zh = lang == Lang::ZhCn;
    let base = match &status.state {
        ConnState::Connected {
            latency_ms: Some(ms),
        } => {
            if zh {
                format!("已连接 · {ms} ms")
            } else {
                format!("Connected · {ms} ms")
            }
        }
        ConnState::Connected { latency_ms: None } => {
            (if zh { "已连接" } else { "Connected" }).into()
        }
        ConnState::Connecting => (if zh {
            "正在连接…"
        } else {
            "Connecting…"
        })
        .into(),
        ConnState::Reconnecting { in_secs, .. } => {
            if zh {
                format!("{in_secs} 秒后重连")
            } else {
                format!("Reconnecting in {in_secs} s")
            }
        }
        ConnState::Offline { .. } => (if zh { "离线" } else { "Offline" }).into(),
        ConnState::SignedOut { .. } => (if zh { "未登录" } else { "Signed out" }).into(),
    };
    let base = match (&status.state, &status.paused_label) {
        (ConnState::SignedOut { .. }, _) | (_, None) => base,
        (_, Some(until)) => {
            if zh {
                format!("{base} · 已暂停至 {until}")
            } else {
                format!("{base} · paused until {until}")
            }
        }
    };
    match status.accounts {
        0 | 1 => base,
        n if zh => format!("{base} · {n} 个账号"),
        n => format!("{base} · {n} accounts"),
    }
}

/// The one-line state text shown in the menu ("Connected · 38 ms", "Reconnecting in 8 s").
pub fn state_line(status: &UiStatus, lang: Lang) -> String {
    state_text(status, lang)
}

/// The tooltip: the first account's state, heartbeat latency, how many accounts (when
/// several) and the unread count of them all.
pub fn tooltip(status: &UiStatus, lang: Lang) -> String {
    let state = state_text(status, lang);
    match lang {
        Lang::ZhCn => format!("TaskBell — {state} · {} 条未读", status.unread),
        Lang::En => format!("TaskBell — {state} · {} unread", status.unread),
    }
}

fn role_label(role: &str, lang: Lang) -> &str {
    match (role, lang) {
        ("annotator", Lang::ZhCn) => "标注员",
        ("reviewer", Lang::ZhCn) => "审核员",
        ("admin", Lang::ZhCn) => "管理员",
        ("annotator", Lang::En) => "Annotator",
        ("reviewer", Lang::En) => "Reviewer",
        ("admin", Lang::En) => "Admin",
        (other, _) => other,
    }
}

/// One entry of the tray menu, before it becomes a Tauri menu.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A clickable (or disabled) line.
    Item {
        /// Event id (`MenuId::as_str`, or `summary-<i>`).
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
        label: id.label(lang).into(),
        enabled,
    }
}

/// The whole menu for `status`, in `lang`. Pure: the tests check it line by line.
pub fn menu_model(status: &UiStatus, lang: Lang) -> Vec<Entry> {
    let mut out = Vec::new();
    let signed_in = !matches!(status.state, ConnState::SignedOut { .. });
    if let (true, Some(user)) = (signed_in, &status.user) {
        let label = MenuId::User
            .label(lang)
            .replace("{name}", &user.display_name)
            .replace("{role}", role_label(&user.role, lang));
        out.push(Entry::Item {
            id: MenuId::User.as_str().into(),
            label,
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
    if signed_in {
        out.push(Entry::Item {
            id: MenuId::Notifications.as_str().into(),
            label: MenuId::Notifications
                .label(lang)
                .replace("{n}", &status.unread.to_string()),
            enabled: true,
        });
        let paused = status.paused_until_ms.is_some();
        out.push(Entry::Submenu {
            id: MenuId::Pause.as_str().into(),
            label: MenuId::Pause.label(lang).into(),
            items: vec![
                item(MenuId::Pause30m, lang, true),
                item(MenuId::Pause1h, lang, true),
                item(MenuId::PauseTomorrow, lang, true),
                Entry::Separator,
                item(MenuId::Resume, lang, paused),
            ],
        });
        out.push(item(
            MenuId::Reconnect,
            lang,
            !matches!(status.state, ConnState::Connected { .. }),
        ));
        out.push(Entry::Separator);
        out.push(item(MenuId::Settings, lang, true));
        out.push(item(MenuId::Diagnostics, lang, true));
        out.push(item(MenuId::SignOut, lang, true));
    } else {
        out.push(item(MenuId::SignIn, lang, true));
        out.push(item(MenuId::Settings, lang, true));
        out.push(item(MenuId::Diagnostics, lang, true));
    }
    out.push(Entry::Separator);
    out.push(item(MenuId::Quit, lang, true));
    out
}

/// A 3×5 bitmap font for the badge digits and "+"; each row is 3 bits, MSB left.
const GLYPHS: [[u8; 5]; 11] = [
    [0b111, 0b101, 0b101, 0b101, 0b111], // 0
    [0b010, 0b110, 0b010, 0b010, 0b111], // 1
    [0b111, 0b001, 0b111, 0b100, 0b111], // 2
    [0b111, 0b001, 0b111, 0b001, 0b111], // 3
    [0b101, 0b101, 0b111, 0b001, 0b001], // 4
    [0b111, 0b100, 0b111, 0b001, 0b111], // 5
    [0b111, 0b100, 0b111, 0b101, 0b111], // 6
    [0b111, 0b001, 0b010, 0b010, 0b010], // 7
    [0b111, 0b101, 0b111, 0b101, 0b111], // 8
    [0b111, 0b101, 0b111, 0b001, 0b111], // 9
    [0b000, 0b010, 0b111, 0b010, 0b000], // +
];

/// The badge's fill colour (RGBA).
pub const BADGE_RED: [u8; 4] = [0xd9, 0x30, 0x25, 0xff];

/// Draws the unread badge (a red disc with the count, "9+" above nine) into the top-right
/// corner of an RGBA image. `unread == 0` leaves the image untouched.
pub fn draw_badge(rgba: &mut [u8], width: u32, height: u32, unread: u64) {
    if unread == 0 || width < 16 || height < 16 || rgba.len() < (width * height * 4) as usize {
        return;
    }
    let (w, h) = (width as i64, height as i64);
    let r = (w.min(h) * 9 / 32).max(5); // 18 px radius on a 64 px icon
    let (cx, cy) = (w - r - 1, r + 1);
    let mut put = |x: i64, y: i64, c: [u8; 4]| {
        if (0..w).contains(&x) && (0..h).contains(&y) {
            let i = ((y * w + x) * 4) as usize;
            rgba[i..i + 4].copy_from_slice(&c);
        }
    };
    for y in cy - r - 1..=cy + r + 1 {
        for x in cx - r - 1..=cx + r + 1 {
            let d2 = (x - cx) * (x - cx) + (y - cy) * (y - cy);
            if d2 <= r * r {
                put(x, y, BADGE_RED);
            } else if d2 <= (r + 1) * (r + 1) {
                put(x, y, [0xff, 0xff, 0xff, 0xff]);
            }
        }
    }
    let glyphs: Vec<usize> = if unread > 9 {
        vec![9, 10]
    } else {
        vec![unread as usize]
    };
    let scale = (r / 4).max(1);
    let gw = 3 * scale;
    let gap = scale;
    let total = glyphs.len() as i64 * gw + (glyphs.len() as i64 - 1) * gap;
    let x0 = cx - total / 2;
    let y0 = cy - 5 * scale / 2;
    for (k, g) in glyphs.iter().enumerate() {
        let gx = x0 + k as i64 * (gw + gap);
        for (row, bits) in GLYPHS[*g].iter().enumerate() {
            for col in 0..3 {
                if bits & (0b100 >> col) != 0 {
                    for dy in 0..scale {
                        for dx in 0..scale {
                            put(
                                gx + col * scale + dx,
                                y0 + row as i64 * scale + dy,
                                [0xff; 4],
                            );
                        }
                    }
                }
            }
        }
    }
}

/// The name panels show for the tray item.
pub const APP_NAME: &str = "TaskBell";

/// macOS draws menu-bar icons as templates: only the alpha channel counts, tinted to suit
/// the light or dark menu bar. Elsewhere the coloured icons are shown as they are.
pub const TEMPLATE_ICONS: bool = cfg!(target_os = "macos");

/// Windows users expect a left click on a notification-area icon to open the app and a
/// right click to show its menu; macOS menu-bar items and Linux AppIndicators show the menu
/// on any click (libappindicator reports no clicks at all).
pub const LEFT_CLICK_OPENS_CENTER: bool = cfg!(target_os = "windows");

/// Turns a coloured RGBA icon into a template image: every visible pixel black, near-white
/// details (the bell's highlights, the badge digits) knocked out so they still show as
/// holes once the OS tints the shape.
pub fn to_template(rgba: &mut [u8]) {
    for px in rgba.chunks_exact_mut(4) {
        let light = px[0] >= 0xd0 && px[1] >= 0xd0 && px[2] >= 0xd0;
        px[3] = if light { 0 } else { px[3] };
        px[0] = 0;
        px[1] = 0;
        px[2] = 0;
    }
}

/// The icon image for `status`: the state's PNG with the unread badge drawn on it (a
/// template image where [`TEMPLATE_ICONS`]).
pub fn icon_for(status: &UiStatus) -> tauri::Result<Image<'static>> {
    let base = Image::from_bytes(IconState::of(status).png())?;
    let (w, h) = (base.width(), base.height());
    let mut rgba = base.rgba().to_vec();
    draw_badge(&mut rgba, w, h, status.unread);
    if TEMPLATE_ICONS {
        to_template(&mut rgba);
    }
    Ok(Image::new_owned(rgba, w, h))
}

fn build_entries<R: Runtime, M: Manager<R>>(
    app: &M,
    entries: &[Entry],
) -> tauri::Result<Vec<Box<dyn IsMenuItem<R>>>> {
    let mut out: Vec<Box<dyn IsMenuItem<R>>> = Vec::with_capacity(entries.len());
    for e in entries {
        match e {
            Entry::Item { id, label, enabled } => out.push(Box::new(MenuItem::with_id(
                app,
                id.as_str(),
                label,
                *enabled,
                None::<&str>,
            )?)),
            Entry::Separator => out.push(Box::new(PredefinedMenuItem::separator(app)?)),
            Entry::Submenu { id, label, items } => {
                let children = build_entries(app, items)?;
                let refs: Vec<&dyn IsMenuItem<R>> = children.iter().map(|b| b.as_ref()).collect();
                out.push(Box::new(Submenu::with_id_and_items(
                    app,
                    id.as_str(),
                    label,
                    true,
                    &refs,
                )?));
            }
        }
    }
    Ok(out)
}

/// Turns the menu model into a Tauri menu.
pub fn build_menu<R: Runtime, M: Manager<R>>(app: &M, entries: &[Entry]) -> tauri::Result<Menu<R>> {
    let items = build_entries(app, entries)?;
    let refs: Vec<&dyn IsMenuItem<R>> = items.iter().map(|b| b.as_ref()).collect();
    Menu::with_items(app, &refs)
}

/// Creates the tray icon. Menu clicks go to [`crate::commands::on_menu`].
pub fn install<R: Runtime>(app: &AppHandle<R>, status: &UiStatus, lang: Lang) -> tauri::Result<()> {
    let menu = build_menu(app, &menu_model(status, lang))?;
    TrayIconBuilder::with_id(TRAY_ID)
        .icon(icon_for(status)?)
        .tooltip(tooltip(status, lang))
        .icon_as_template(TEMPLATE_ICONS)
        .menu(&menu)
        .show_menu_on_left_click(!LEFT_CLICK_OPENS_CENTER)
        .on_menu_event(|app, event| crate::commands::on_menu(app, event.id().as_ref()))
        .on_tray_icon_event(|tray, event| {
            if let TrayIconEvent::Click {
                button: MouseButton::Left,
                button_state: MouseButtonState::Up,
                ..
            } = event
            {
                if LEFT_CLICK_OPENS_CENTER {
                    crate::commands::on_menu(tray.app_handle(), MenuId::Notifications.as_str());
                }
            }
        })
        .build(app)?;
    Ok(())
}

/// Brings the tray icon, tooltip and menu up to date with `status`. No-op without a tray
/// (tests with the mock runtime run without one).
pub fn apply<R: Runtime>(app: &AppHandle<R>, status: &UiStatus, lang: Lang) -> tauri::Result<()> {
    let Some(tray) = app.tray_by_id(TRAY_ID) else {
        return Ok(());
    };
    tray.set_icon(Some(icon_for(status)?))?;
    tray.set_icon_as_template(TEMPLATE_ICONS)?;
    tray.set_tooltip(Some(tooltip(status, lang)))?;
    tray.set_menu(Some(build_menu(app, &menu_model(status, lang))?))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::UiUser;

    fn status(state: ConnState) -> UiStatus {
        UiStatus {
            state,
            paused_until_ms: None,
            paused_label: None,
            unread: 3,
            user: Some(UiUser {
                username: "zhangsan".into(),
                display_name: "张三".into(),
                role: "annotator".into(),
            }),
            summary_lines: vec!["被驳回的任务：2 个".into(), "进行中的任务：5 个".into()],
            server: Some("http://127.0.0.1:1".into()),
            demo: false,
            accounts: 1,
        }
    }

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
    fn every_menu_id_has_one_row_with_both_languages() {
        let all = [
            MenuId::User,
            MenuId::State,
            MenuId::Summary,
            MenuId::Notifications,
            MenuId::Pause,
            MenuId::Pause30m,
            MenuId::Pause1h,
            MenuId::PauseTomorrow,
            MenuId::Resume,
            MenuId::Reconnect,
            MenuId::Settings,
            MenuId::Diagnostics,
            MenuId::SignIn,
            MenuId::SignOut,
            MenuId::Quit,
        ];
        assert_eq!(all.len(), LABELS.len());
        for id in all {
            assert_eq!(LABELS.iter().filter(|l| l.id == id).count(), 1, "{id:?}");
            assert!(!id.label(Lang::ZhCn).is_empty() && !id.label(Lang::En).is_empty());
            assert_eq!(MenuId::parse(id.as_str()), Some(id));
        }
        assert_eq!(MenuId::parse("summary-3"), Some(MenuId::Summary));
        assert_eq!(MenuId::parse("nonsense"), None);
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
    fn icon_state_follows_connection_and_pause() {
        let mut s = status(ConnState::Connected { latency_ms: None });
        assert_eq!(IconState::of(&s), IconState::Connected);
        s.paused_until_ms = Some(1);
        assert_eq!(IconState::of(&s), IconState::Paused);
        s.state = ConnState::Offline {
            reason: "down".into(),
        };
        assert_eq!(IconState::of(&s), IconState::Offline);
        s.state = ConnState::Connecting;
        assert_eq!(IconState::of(&s), IconState::Connecting);
        s.state = ConnState::SignedOut { reason: None };
        assert_eq!(IconState::of(&s), IconState::SignedOut);
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
    fn every_state_icon_decodes_to_64px_rgba() {
        for st in [
            IconState::Connected,
            IconState::Connecting,
            IconState::Offline,
            IconState::SignedOut,
            IconState::Paused,
        ] {
            let img = Image::from_bytes(st.png()).expect("decodes");
            assert_eq!((img.width(), img.height()), (64, 64), "{st:?}");
        }
    }

    #[test]
    fn badge_is_drawn_only_when_there_is_something_unread() {
        let blank = vec![0u8; 64 * 64 * 4];
        let mut img = blank.clone();
        draw_badge(&mut img, 64, 64, 0);
        assert_eq!(img, blank);
        draw_badge(&mut img, 64, 64, 7);
        // The disc's edge (left of centre, clear of the digit) is red, the far corner untouched.
        let px = |x: usize, y: usize| img[(y * 64 + x) * 4..(y * 64 + x) * 4 + 4].to_vec();
        assert_eq!(px(64 - 18 - 1 - 15, 18 + 1), BADGE_RED.to_vec());
        assert_eq!(px(0, 63), vec![0, 0, 0, 0]);
        // Some white digit pixels inside the disc.
        let white = (30..64)
            .flat_map(|x| (0..34).map(move |y| (x, y)))
            .filter(|&(x, y)| px(x, y) == vec![255; 4])
            .count();
        assert!(white > 20, "digit drawn ({white} white px)");
        let mut many = blank.clone();
        draw_badge(&mut many, 64, 64, 120);
        assert_ne!(many, img, "9+ differs from 7");
    }

    #[test]
    fn template_icons_keep_the_shape_and_knock_out_light_details() {
        // Three unread: the badge is drawn.
        let coloured = icon_for(&status(ConnState::Connected {
            latency_ms: Some(20),
        }))
        .unwrap();
        let mut rgba = coloured.rgba().to_vec();
        let opaque_before = rgba.chunks_exact(4).filter(|p| p[3] > 0).count();
        let light = rgba
            .chunks_exact(4)
            .filter(|p| p[3] > 0 && p[..3].iter().all(|&c| c >= 0xd0))
            .count();
        assert!(light > 0, "the badge digits are white");
        to_template(&mut rgba);
        assert!(rgba.chunks_exact(4).all(|p| p[..3] == [0, 0, 0]));
        let opaque_after = rgba.chunks_exact(4).filter(|p| p[3] > 0).count();
        assert_eq!(opaque_after, opaque_before - light);
        // Only macOS uses templates; Linux keeps its coloured state icons.
        assert_eq!(TEMPLATE_ICONS, cfg!(target_os = "macos"));
        assert_eq!(LEFT_CLICK_OPENS_CENTER, cfg!(target_os = "windows"));
    }

    #[test]
    fn badge_ignores_images_too_small_or_short_buffers() {
        let mut tiny = vec![0u8; 8 * 8 * 4];
        draw_badge(&mut tiny, 8, 8, 5);
        assert!(tiny.iter().all(|b| *b == 0));
        let mut short = vec![0u8; 10];
        draw_badge(&mut short, 64, 64, 5);
        assert!(short.iter().all(|b| *b == 0));
    }
}
