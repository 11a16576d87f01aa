//! The Tauri app as the controller's [`Shell`]: the tray icon ([`crate::tray`]), the
//! webview windows ([`crate::windows`]), events to the pages, the autostart plugin and
//! the app's exit.

use taskbell_desktop::Shell;
use tauri::{AppHandle, Emitter, Manager, Runtime};

use crate::model::{Lang, UiStatus, WindowKind};
use crate::{tray, windows};

/// The controller's shell in this process: everything goes through the app's handle.
#[derive(Debug)]
pub struct TauriShell<R: Runtime>(AppHandle<R>);

impl<R: Runtime> TauriShell<R> {
    /// The shell of the app behind `app`.
    pub fn new(app: AppHandle<R>) -> Self {
        Self(app)
    }
}

impl<R: Runtime> Shell for TauriShell<R> {
    fn show_status(&self, status: &UiStatus, lang: Lang) -> Result<(), String> {
        tray::apply(&self.0, status, lang).map_err(|e| e.to_string())
    }

    fn emit(&self, event: &'static str, payload: serde_json::Value) {
        if let Err(e) = self.0.emit(event, payload) {
            tracing::debug!("emit {event}: {e}");
        }
    }

    fn open_window(&self, kind: WindowKind, lang: Lang) -> Result<(), String> {
        windows::open(&self.0, kind, lang).map_err(|e| e.to_string())
    }

    fn close_window(&self, kind: WindowKind) -> Result<(), String> {
        windows::close(&self.0, kind).map_err(|e| e.to_string())
    }

    fn set_autostart(&self, on: bool) -> Result<(), String> {
        // Absent on the mock runtime and wherever the plugin was not registered.
        let Some(manager) = self
            .0
            .try_state::<tauri_plugin_autostart::AutoLaunchManager>()
        else {
            return Ok(());
        };
        let done = if on {
            manager.enable()
        } else {
            manager.disable()
        };
        done.map_err(|e| e.to_string())
    }

    fn quit(&self) {
        self.0.exit(0);
    }
}
