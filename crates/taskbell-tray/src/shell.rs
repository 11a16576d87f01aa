//! The controller's [`Shell`] in the tray process: the status goes to the tray item (by a
//! watch channel the main loop reads), windows and events to the window process, and
//! autostart to the XDG autostart entry.

use std::path::PathBuf;
use std::sync::Arc;

use taskbell_desktop::Shell;
use taskbell_desktop::model::{Lang, UiStatus, WindowKind};
use taskbell_desktop::view::icon::APP_NAME;
use tokio::sync::watch;

use crate::windows::Windows;

/// The tray process's shell.
#[derive(Debug)]
pub struct TrayShell {
    /// The window process and the socket.
    pub windows: Arc<Windows>,
    /// The status (and language) the tray item shows; the main loop applies it.
    pub status: watch::Sender<(UiStatus, Lang)>,
    /// Set when "Quit" was clicked.
    pub quit: watch::Sender<bool>,
    /// This executable, for the autostart entry.
    pub exe: PathBuf,
}

impl Shell for TrayShell {
    fn show_status(&self, status: &UiStatus, lang: Lang) -> Result<(), String> {
        self.status.send_replace((status.clone(), lang));
        Ok(())
    }

    fn emit(&self, event: &'static str, payload: serde_json::Value) {
        self.windows.emit(event, payload);
    }

    fn open_window(&self, kind: WindowKind, lang: Lang) -> Result<(), String> {
        self.windows.open(kind, lang)
    }

    fn close_window(&self, kind: WindowKind) -> Result<(), String> {
        self.windows.close(kind);
        Ok(())
    }

    fn set_autostart(&self, on: bool) -> Result<(), String> {
        let exe = self.exe.to_string_lossy();
        let launcher = auto_launch::AutoLaunchBuilder::new()
            .set_app_name(APP_NAME)
            .set_app_path(&exe)
            .set_args(&["--minimized"])
            .build()
            .map_err(|e| e.to_string())?;
        let done = if on {
            launcher.enable()
        } else {
            launcher.disable()
        };
        done.map_err(|e| e.to_string())
    }

    fn quit(&self) {
        self.windows.quit();
        self.quit.send_replace(true);
    }
}
