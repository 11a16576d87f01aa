//! Windows on demand. No window exists at start; one is created when the user opens it
//! and destroyed when they close it, so no WebKit process runs while TaskBell idles in
//! the tray. Closing a window never quits the app (see `lib.rs`, `ExitRequested`).

use tauri::{AppHandle, Manager, Runtime, WebviewUrl, WebviewWindowBuilder};

use crate::model::{Lang, WindowKind};

/// The windows being created right now (managed state): a window's label is only
/// registered once it exists, so two callers could otherwise make two windows.
#[derive(Debug, Default)]
pub struct Opening(std::sync::Mutex<Vec<String>>);

/// While alive, a window is being created (see [`Opening::begin`]).
#[derive(Debug)]
pub struct OpeningGuard<'a> {
    opening: &'a Opening,
    label: String,
}

impl Drop for OpeningGuard<'_> {
    fn drop(&mut self) {
        self.opening.lock().retain(|l| *l != self.label);
    }
}

impl Opening {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Marks the window `label` as being created; `None` when another thread already is
    /// creating it.
    pub fn begin(&self, label: &str) -> Option<OpeningGuard<'_>> {
        let mut g = self.lock();
        if g.iter().any(|l| l == label) {
            return None;
        }
        g.push(label.to_string());
        Some(OpeningGuard {
            opening: self,
            label: label.to_string(),
        })
    }
}

fn size(kind: WindowKind) -> (f64, f64) {
    match kind {
        WindowKind::Login => (420.0, 520.0),
        WindowKind::Center => (520.0, 640.0),
        WindowKind::Settings => (480.0, 600.0),
        WindowKind::Diagnostics => (560.0, 620.0),
    }
}

/// Shows the window of `kind`: focuses it when it is open, creates it otherwise.
pub fn open<R: Runtime>(app: &AppHandle<R>, kind: WindowKind, lang: Lang) -> tauri::Result<()> {
    if let Some(w) = app.get_webview_window(kind.label()) {
        w.unminimize()?;
        w.show()?;
        return w.set_focus();
    }
    let opening = app.try_state::<Opening>();
    let _opening = match &opening {
        Some(o) => match o.begin(kind.label()) {
            Some(guard) => Some(guard),
            // Someone else is creating this very window right now.
            None => return Ok(()),
        },
        None => None,
    };
    let (w, h) = size(kind);
    let win = WebviewWindowBuilder::new(app, kind.label(), WebviewUrl::App(kind.page().into()))
        .title(kind.title(lang))
        // The page's language; a user script, so the CSP (no inline scripts) is not bent.
        .initialization_script(format!(
            "window.__TASKBELL_LANG__ = {};",
            serde_json::Value::from(lang.as_tag())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_is_created_by_one_caller_at_a_time() {
        let opening = Opening::default();
        let first = opening.begin("login").expect("first caller creates it");
        assert!(opening.begin("login").is_none(), "second caller backs off");
        assert!(
            opening.begin("center").is_some(),
            "other windows are independent"
        );
        drop(first);
        assert!(opening.begin("login").is_some(), "free again once created");
    }
}
