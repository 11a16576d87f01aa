//! The seam between the controller and whatever shows TaskBell on the desktop: the
//! [`Shell`] (tray, windows, events, autostart, quit) and the [`Controller`] handle that
//! carries the shared state, the shell and the runtime the controller's tasks run on.
//!
//! The controller decides; the shell only shows and opens. So the controller knows no
//! GUI toolkit: the Tauri app implements [`Shell`] with its tray and webviews, and the
//! controller's tests implement it with a recorder.

use std::future::Future;
use std::sync::Arc;

use super::shared::Shared;
use crate::model::{Lang, UiStatus, WindowKind};

/// What the controller asks of the desktop. Every call returns at once (work that
/// takes time is the shell's to schedule) and may come from any thread.
pub trait Shell: Send + Sync + 'static {
    /// Shows `status` in the tray: icon, tooltip, title and menu, in `lang`.
    fn show_status(&self, status: &UiStatus, lang: Lang) -> Result<(), String>;
    /// Tells every open window `event` (a `taskbell://…` name of [`super::publish`]) with
    /// its JSON payload. Nothing happens when no window is open.
    fn emit(&self, event: &'static str, payload: serde_json::Value);
    /// Shows the window of `kind` in `lang`: brings it up when open, creates it otherwise.
    fn open_window(&self, kind: WindowKind, lang: Lang) -> Result<(), String>;
    /// Closes the window of `kind` when it is open.
    fn close_window(&self, kind: WindowKind) -> Result<(), String>;
    /// Starts TaskBell at login (`true`) or not.
    fn set_autostart(&self, on: bool) -> Result<(), String>;
    /// Leaves the app ("Quit" in the menu); the shell then calls
    /// [`super::engines::shutdown`] on its way out.
    fn quit(&self);
}

/// The controller: cheap to clone (one `Arc`), handed to every task and command.
#[derive(Clone)]
pub struct Controller(Arc<Inner>);

struct Inner {
    shared: Shared,
    shell: Box<dyn Shell>,
    runtime: tokio::runtime::Handle,
    /// Gives start-up's memory back once the process is quiet.
    quiet: taskbell_core::memory::Quiet,
}

impl std::fmt::Debug for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller")
            .field("shared", &self.0.shared)
            .finish_non_exhaustive()
    }
}

impl Controller {
    /// A controller over `shared` that shows through `shell` and runs its tasks on
    /// `runtime`.
    pub fn new(shared: Shared, shell: impl Shell, runtime: tokio::runtime::Handle) -> Self {
        let quiet = {
            let _in = runtime.enter();
            taskbell_core::memory::Quiet::start()
        };
        Self(Arc::new(Inner {
            shared,
            shell: Box::new(shell),
            runtime,
            quiet,
        }))
    }

    /// Something happened (an engine event other than a heartbeat, a command, a menu
    /// click): the quiet period after which start-up's memory is given back starts again.
    pub fn activity(&self) {
        self.0.quiet.activity();
    }

    /// The state: options, deps, engines, status.
    pub fn shared(&self) -> &Shared {
        &self.0.shared
    }

    /// The desktop it shows on.
    pub fn shell(&self) -> &dyn Shell {
        self.0.shell.as_ref()
    }

    /// The runtime the controller's tasks run on.
    pub fn runtime(&self) -> &tokio::runtime::Handle {
        &self.0.runtime
    }

    /// Runs `task` in the background on the controller's runtime.
    pub(crate) fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        drop(self.0.runtime.spawn(task));
    }
}

/// What a [`RecordingShell`] was asked, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum ShellCall {
    /// [`Shell::show_status`] with this unread count and state line.
    ShowStatus {
        /// The unread count shown.
        unread: u64,
        /// The state line shown.
        state_line: String,
    },
    /// [`Shell::emit`].
    Emit(&'static str, serde_json::Value),
    /// [`Shell::open_window`].
    Open(WindowKind),
    /// [`Shell::close_window`].
    Close(WindowKind),
    /// [`Shell::set_autostart`].
    Autostart(bool),
    /// [`Shell::quit`].
    Quit,
}

/// A [`Shell`] that only records what it is asked (the controller's own tests, with no
/// desktop). Clones share the record.
#[derive(Debug, Clone, Default)]
pub struct RecordingShell(Arc<std::sync::Mutex<Vec<ShellCall>>>);

impl RecordingShell {
    /// An empty record.
    pub fn new() -> Self {
        Self::default()
    }

    /// Everything asked so far.
    pub fn calls(&self) -> Vec<ShellCall> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<ShellCall>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn push(&self, call: ShellCall) {
        self.lock().push(call);
    }
}

impl Shell for RecordingShell {
    fn show_status(&self, status: &UiStatus, _lang: Lang) -> Result<(), String> {
        self.push(ShellCall::ShowStatus {
            unread: status.unread,
            state_line: status.state_line.clone(),
        });
        Ok(())
    }

    fn emit(&self, event: &'static str, payload: serde_json::Value) {
        self.push(ShellCall::Emit(event, payload));
    }

    fn open_window(&self, kind: WindowKind, _lang: Lang) -> Result<(), String> {
        self.push(ShellCall::Open(kind));
        Ok(())
    }

    fn close_window(&self, kind: WindowKind) -> Result<(), String> {
        self.push(ShellCall::Close(kind));
        Ok(())
    }

    fn set_autostart(&self, on: bool) -> Result<(), String> {
        self.push(ShellCall::Autostart(on));
        Ok(())
    }

    fn quit(&self) {
        self.push(ShellCall::Quit);
    }
}
