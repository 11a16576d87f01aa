//! Windows on demand. No window exists at start; one is created when the user opens it
//! and destroyed when they close it, so no WebKit process runs while TaskBell idles in
//! the tray. Closing a window never quits the app (see `lib.rs`, `ExitRequested`).

use serde::{Deserialize, Serialize};
use tauri::{AppHandle, Manager, Runtime, WebviewUrl, WebviewWindowBuilder};

use crate::model::Lang;

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
    pub fn title(self, lang: Lang) -> &'static str {
        match (self, lang) {
            (Self::Login, Lang::ZhCn) => "登录 TaskBell",
            (Self::Login, Lang::En) => "Sign in to TaskBell",
            (Self::Center, Lang::ZhCn) => "TaskBell 通知",
            (Self::Center, Lang::En) => "TaskBell notifications",
            (Self::Settings, Lang::ZhCn) => "TaskBell 设置",
            (Self::Settings, Lang::En) => "TaskBell settings",
            (Self::Diagnostics, Lang::ZhCn) => "TaskBell 诊断",
            (Self::Diagnostics, Lang::En) => "TaskBell diagnostics",
        }
    }

    fn size(self) -> (f64, f64) {
        match self {
            Self::Login => (420.0, 520.0),
            Self::Center => (520.0, 640.0),
            Self::Settings => (480.0, 600.0),
            Self::Diagnostics => (560.0, 620.0),
        }
    }
}

fn lang_tag(lang: Lang) -> &'static str {
    match lang {
        Lang::ZhCn => "zh-CN",
        Lang::En => "en",
    }
}

/// Shows the window of `kind`: focuses it when it is open, creates it otherwise.
pub fn open<R: Runtime>(app: &AppHandle<R>, kind: WindowKind, lang: Lang) -> tauri::Result<()> {
    if let Some(w) = app.get_webview_window(kind.label()) {
        w.unminimize()?;
        w.show()?;
        return w.set_focus();
    }
    let shared = app.try_state::<crate::Shared>();
    let _opening = match &shared {
        Some(s) => match s.begin_opening(kind.label()) {
            Some(guard) => Some(guard),
            // Someone else is creating this very window right now.
            None => return Ok(()),
        },
        None => None,
    };
    let (w, h) = kind.size();
    let win = WebviewWindowBuilder::new(app, kind.label(), WebviewUrl::App(kind.page().into()))
        .title(kind.title(lang))
        // The page's language; a user script, so the CSP (no inline scripts) is not bent.
        .initialization_script(format!(
            "window.__TASKBELL_LANG__ = {};",
            serde_json::Value::from(lang_tag(lang))
        ))
        .inner_size(w, h)
        .min_inner_size(360.0, 400.0)
        .center()
        .build()?;
    // Some window managers open new windows behind the focused one.
    let _ = win.set_focus();
    Ok(())
}

/// Closes (destroys) the window of `kind` if it is open.
pub fn close<R: Runtime>(app: &AppHandle<R>, kind: WindowKind) -> tauri::Result<()> {
    match app.get_webview_window(kind.label()) {
        Some(w) => w.destroy(),
        None => Ok(()),
    }
}

/// The labels of the windows open now.
pub fn open_windows<R: Runtime>(app: &AppHandle<R>) -> Vec<String> {
    let mut v: Vec<String> = app.webview_windows().into_keys().collect();
    v.sort();
    v
}
