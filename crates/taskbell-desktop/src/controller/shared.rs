//! The app's state (reached with [`super::Controller::shared`]): how it was
//! started, what it needs from the machine ([`Deps`]), the engines ([`EngineSlot`]), the
//! language, the last published status and the diagnostics log.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};

use taskbell_core::config::{Config, Paths};
use taskbell_core::credentials::Credentials;
use taskbell_core::history::History;
use taskbell_core::i18n::{Msg, tr};
use taskbell_core::notifier::Notifier;
use time::UtcOffset;

use super::slot::EngineSlot;
use crate::error::{CmdError, CmdResult, history_error};
use crate::model::{Lang, UiStatus};
use crate::options::Options;
use crate::view::DiagLog;

/// What the app needs from the machine: where files live, the keyring, the notifier.
/// `main` uses the real ones; tests pass a temp dir, an in-memory keyring and a recorder.
pub struct Deps {
    /// Config and history locations of the real account.
    pub paths: Paths,
    /// The OS keyring, or why it could not be opened.
    pub credentials: Result<Credentials, String>,
    /// Shows toasts.
    pub notifier: Arc<dyn Notifier>,
    /// Makes a notifier for each further account: a notifier reports toast actions
    /// (Mark read, Snooze) to the one engine attached to it, so accounts must not
    /// share one. `None` (tests with a recording notifier): they share `notifier`.
    pub notifier_factory: Option<NotifierFactory>,
    /// The local UTC offset (computed before threads start).
    pub utc_offset: UtcOffset,
}

/// Makes a fresh notifier (see [`Deps::notifier_factory`]).
pub type NotifierFactory = Arc<dyn Fn() -> Arc<dyn Notifier> + Send + Sync>;

impl std::fmt::Debug for Deps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deps")
            .field("paths", &self.paths)
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

impl Deps {
    /// The real machine: standard paths, the OS keyring, desktop notifications.
    pub fn system() -> Result<Self, String> {
        // First: the `time` crate reads the local offset only while one thread runs, and
        // opening the keyring may start D-Bus threads.
        let utc_offset = taskbell_core::supervisor::local_offset();
        let paths = Paths::resolve(None, None).map_err(|e| e.to_string())?;
        let credentials = Credentials::open().map_err(|e| e.to_string());
        if let Err(e) = &credentials {
            tracing::warn!("keyring unavailable: {e}");
        }
        // The toasts' "Open" label follows the configured language (a bad or
        // missing config falls back to the system locale; the engine reports it).
        let lang = Config::load(&paths.config_file())
            .ok()
            .and_then(|c| c.language)
            .unwrap_or_else(Lang::from_system);
        let open_label = tr(lang, Msg::Open);
        Ok(Self {
            paths,
            credentials,
            notifier: Arc::new(
                taskbell_core::notifier::DesktopNotifier::new().with_open_label(open_label.clone()),
            ),
            notifier_factory: Some(Arc::new(move || -> Arc<dyn Notifier> {
                Arc::new(
                    taskbell_core::notifier::DesktopNotifier::new()
                        .with_open_label(open_label.clone()),
                )
            })),
            utc_offset,
        })
    }

    /// A notifier for a further account's engine: a fresh one when there is a factory.
    pub fn notifier_for_further_account(&self) -> Arc<dyn Notifier> {
        match &self.notifier_factory {
            Some(make) => make(),
            None => Arc::clone(&self.notifier),
        }
    }
}

/// The app's shared state (reached with [`super::Controller::shared`]).
#[derive(Debug)]
pub struct Shared {
    /// How the app was started.
    pub options: Options,
    /// Paths, keyring, notifier.
    pub deps: Deps,
    inner: Mutex<Inner>,
    /// Held by the one thread showing the status on the tray; see
    /// [`super::publish::refresh`].
    showing: Mutex<()>,
    /// Bumped for every status that is to be shown.
    show_wanted: AtomicU64,
    /// The link to the core engine, once it runs.
    pub engine: EngineSlot,
}

#[derive(Debug)]
struct Inner {
    lang: Lang,
    /// What the tray and the windows show: the first account's status with the unread
    /// count summed over all accounts.
    status: UiStatus,
    /// The first account's own status (before the other accounts are added in).
    primary: UiStatus,
    /// Bumped whenever what `status` is made of may have changed (see
    /// [`Shared::begin_status`]).
    status_inputs: u64,
    core: Option<taskbell_core::supervisor::Status>,
    diag: DiagLog,
    /// The keys a folded toast asked the center to show, until the center takes them.
    shown_keys: Option<Vec<String>>,
}

impl Shared {
    /// New state: signed out, in `lang`.
    pub fn new(options: Options, lang: Lang, deps: Deps) -> Self {
        Self {
            options,
            deps,
            inner: Mutex::new(Inner {
                lang,
                status: UiStatus::signed_out(),
                primary: UiStatus::signed_out(),
                status_inputs: 0,
                core: None,
                diag: DiagLog::default(),
                shown_keys: None,
            }),
            showing: Mutex::new(()),
            show_wanted: AtomicU64::new(0),
            engine: EngineSlot::default(),
        }
    }

    /// The paths of the account in use: the first engine's (demo or real), else the real
    /// first account's.
    pub fn active_paths(&self) -> Paths {
        let slot = self.engine.lock().paths.clone();
        slot.unwrap_or_else(|| self.deps.paths.clone())
    }

    /// The config of the account in use.
    pub fn active_config(&self) -> CmdResult<Config> {
        Config::load(&self.active_paths().config_file()).map_err(CmdError::from)
    }

    /// The history of the account in use.
    pub fn history(&self) -> CmdResult<History> {
        History::open(&self.active_paths().history_db()).map_err(history_error)
    }

    /// The engine's last status, as the core sent it.
    pub fn core_status(&self) -> Option<taskbell_core::supervisor::Status> {
        self.lock().core.clone()
    }

    /// Keeps the engine's last status.
    pub fn set_core_status(&self, status: taskbell_core::supervisor::Status) {
        self.lock().core = Some(status);
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain data behind; keep going with it.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The current language.
    pub fn lang(&self) -> Lang {
        self.lock().lang
    }

    /// Sets the language.
    pub fn set_lang(&self, lang: Lang) {
        self.lock().lang = lang;
    }

    /// The current status snapshot.
    pub fn status(&self) -> UiStatus {
        self.lock().status.clone()
    }

    /// The first account's own status (its unread count alone, no account count), as
    /// last published; [`super::publish::publish`] adds the other accounts in.
    pub fn primary_status(&self) -> UiStatus {
        self.lock().primary.clone()
    }

    /// Keeps the first account's own status.
    pub fn set_primary_status(&self, status: UiStatus) {
        self.update_primary(|s| *s = status);
    }

    /// Changes the first account's own status in place (a field of it, without losing
    /// what another thread set meanwhile).
    pub fn update_primary(&self, change: impl FnOnce(&mut UiStatus)) {
        change(&mut self.lock().primary);
    }

    /// Starts making the status anew: says that its inputs may have changed, and returns
    /// the first account's own status with a ticket for [`Shared::finish_status`].
    pub fn begin_status(&self) -> (UiStatus, u64) {
        let mut g = self.lock();
        g.status_inputs += 1;
        (g.primary.clone(), g.status_inputs)
    }

    /// Keeps `status` made from the inputs of `ticket`: `None` (not kept) when another
    /// status was begun since, as this one may be made of older inputs (the one begun
    /// last is always kept), else whether it differs from the status kept before.
    pub fn finish_status(&self, ticket: u64, status: UiStatus) -> Option<bool> {
        let mut g = self.lock();
        if g.status_inputs != ticket {
            return None;
        }
        let changed = g.status != status;
        g.status = status;
        Some(changed)
    }

    /// Shows the status kept last with `show`, on one thread at a time and without
    /// waiting for another: a thread that finds another showing leaves it a request, and
    /// that one shows again until no request is left. The tray therefore always ends on
    /// the status kept last, whichever order the threads ran in (and no thread waits on
    /// one that may be waiting for the GUI thread).
    pub fn show_latest(&self, mut show: impl FnMut(&UiStatus)) {
        self.show_wanted.fetch_add(1, Ordering::SeqCst);
        loop {
            let guard = match self.showing.try_lock() {
                Ok(g) => g,
                // A panic while showing leaves nothing inconsistent behind.
                Err(TryLockError::Poisoned(p)) => p.into_inner(),
                Err(TryLockError::WouldBlock) => return,
            };
            let wanted = self.show_wanted.load(Ordering::SeqCst);
            let status = self.status();
            show(&status);
            drop(guard);
            if self.show_wanted.load(Ordering::SeqCst) == wanted {
                return;
            }
        }
    }

    /// Keeps the keys a folded toast asked the center to show (replacing older ones).
    pub fn set_shown_keys(&self, keys: Vec<String>) {
        self.lock().shown_keys = Some(keys);
    }

    /// The keys a folded toast asked the center to show, once.
    pub fn take_shown_keys(&self) -> Option<Vec<String>> {
        self.lock().shown_keys.take()
    }

    /// Runs `f` on the diagnostics log.
    pub fn with_diag<T>(&self, f: impl FnOnce(&mut DiagLog) -> T) -> T {
        f(&mut self.lock().diag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    fn shared() -> Shared {
        let dir = std::env::temp_dir().join("taskbell-desktop-shared-tests");
        Shared::new(
            Options::default(),
            Lang::En,
            Deps {
                paths: Paths {
                    config_dir: dir.join("config"),
                    data_dir: dir.join("data"),
                },
                credentials: Ok(Credentials::in_memory()),
                notifier: Arc::new(taskbell_core::notifier::RecordingNotifier::new()),
                notifier_factory: None,
                utc_offset: UtcOffset::UTC,
            },
        )
    }

    fn with_unread(unread: u64) -> UiStatus {
        let mut s = UiStatus::signed_out();
        s.unread = unread;
        s
    }

    #[test]
    fn a_status_made_from_older_inputs_is_not_kept() {
        let sh = shared();
        let (_, older) = sh.begin_status();
        let (_, newer) = sh.begin_status();
        assert_eq!(sh.finish_status(newer, with_unread(2)), Some(true));
        assert_eq!(sh.finish_status(older, with_unread(1)), None);
        assert_eq!(sh.status().unread, 2);
        assert_eq!(sh.finish_status(newer, with_unread(2)), Some(false));
    }

    #[test]
    fn the_tray_ends_on_the_status_kept_last_whoever_was_showing() {
        let sh = shared();
        let (entered_tx, entered) = mpsc::channel();
        let (go_tx, go) = mpsc::channel::<()>();
        let shown_by_first = std::thread::scope(|scope| {
            let sh = &sh;
            let first = scope.spawn(move || {
                let mut shown = Vec::new();
                sh.show_latest(|s| {
                    shown.push(s.unread);
                    if shown.len() == 1 {
                        entered_tx.send(()).unwrap();
                        go.recv().unwrap();
                    }
                });
                shown
            });
            // The first thread is in the middle of showing: a newer status is kept, and
            // this thread, finding it busy, leaves the showing to it.
            entered.recv().unwrap();
            let (_, ticket) = sh.begin_status();
            assert_eq!(sh.finish_status(ticket, with_unread(7)), Some(true));
            let mut shown_here = 0;
            sh.show_latest(|_| shown_here += 1);
            assert_eq!(shown_here, 0, "never two threads showing at once");
            go_tx.send(()).unwrap();
            first.join().unwrap()
        });
        assert_eq!(
            shown_by_first,
            vec![0, 7],
            "the first thread shows the newer one too"
        );
    }
}
