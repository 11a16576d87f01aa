//! The engines the tray runs: the first account's (or the demo's) and one per further
//! signed-in account, each with its command sender; which generation is current (so the
//! pumps of a replaced engine stand down); where a key from the windows belongs.

use taskbell_core::config::Paths;
use taskbell_core::supervisor::{Command, State};

use crate::model::UiAccount;
use tokio::sync::mpsc;

/// The running engine (and the demo server, in demo mode).
#[derive(Default)]
pub struct EngineSlot {
    inner: std::sync::Mutex<Slot>,
}

#[derive(Default)]
pub(super) struct Slot {
    pub(super) generation: u64,
    pub(super) commands: Option<mpsc::Sender<Command>>,
    /// The paths of the account the engine runs for (demo or real).
    pub(super) paths: Option<Paths>,
    pub(super) summary_lines: Vec<String>,
    pub(super) demo: Option<taskbell_server::RunningServer>,
    /// The user asked to sign out (so the login window is not pushed at them).
    pub(super) signing_out: bool,
    /// The first account's id when there are several accounts (names its rows and
    /// toasts); `None` with a single account and in demo mode.
    pub(super) primary_label: Option<String>,
    /// The further accounts (configured when the app started or signed in), running or
    /// not: the center lists their histories too.
    pub(super) further: Vec<Further>,
    /// Bumped when every further engine is stopped, so their pumps stand down.
    pub(super) further_generation: u64,
}

/// A further account (not the first): its place and, while it runs, its engine.
pub(super) struct Further {
    /// `user@host`.
    pub(super) id: String,
    /// Its config and data dirs (`accounts/<id>`).
    pub(super) paths: Paths,
    /// Its engine, while it runs.
    pub(super) commands: Option<mpsc::Sender<Command>>,
    /// Its unread count as its engine last said (0 when it does not run).
    pub(super) unread: u64,
    /// Its connection as its engine last said (signed out when it does not run).
    pub(super) state: State,
    /// Its pause as its engine last said.
    pub(super) paused_until_ms: Option<i64>,
}

/// A further account's id, paths and engine (`None`: not running).
pub(super) type FurtherEngine = (String, Paths, Option<mpsc::Sender<Command>>);

/// Where a key from the windows belongs (see [`EngineSlot::route`]).
pub(super) struct Route {
    /// The further account it names (its id, paths and engine); `None`: the first account.
    pub(super) further: Option<FurtherEngine>,
    /// The key as that account's history knows it.
    pub(super) key: String,
}

impl std::fmt::Debug for EngineSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.lock();
        f.debug_struct("EngineSlot")
            .field("generation", &s.generation)
            .field("running", &s.commands.is_some())
            .field("demo", &s.demo.is_some())
            .finish()
    }
}

impl EngineSlot {
    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, Slot> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether an engine runs.
    pub fn is_running(&self) -> bool {
        self.lock().commands.is_some()
    }

    pub(super) fn sender(&self) -> Option<mpsc::Sender<Command>> {
        self.lock().commands.clone()
    }

    /// The ids of the further accounts whose engines run now.
    pub fn further_running(&self) -> Vec<String> {
        self.lock()
            .further
            .iter()
            .filter(|f| f.commands.is_some())
            .map(|f| f.id.clone())
            .collect()
    }

    pub(super) fn further_senders(&self) -> Vec<mpsc::Sender<Command>> {
        self.lock()
            .further
            .iter()
            .filter_map(|f| f.commands.clone())
            .collect()
    }

    /// How many further engines run, and their unread count together.
    pub(super) fn further_summary(&self) -> (u32, u64) {
        let slot = self.lock();
        slot.further
            .iter()
            .filter(|f| f.commands.is_some())
            .fold((0, 0), |(n, unread), f| (n + 1, unread + f.unread))
    }

    /// The further accounts as the tray's accounts menu lists them.
    pub(super) fn further_accounts(&self) -> Vec<UiAccount> {
        self.lock()
            .further
            .iter()
            .map(|f| UiAccount {
                id: f.id.clone(),
                state: f.state.clone(),
                unread: f.unread,
                paused_until_ms: f.paused_until_ms,
            })
            .collect()
    }

    /// The engine of the account `id` (`user@host`): the first account's when `id` names
    /// it, else that further account's; `None` when it does not run or is unknown.
    pub(super) fn sender_of(&self, id: &str) -> Option<mpsc::Sender<Command>> {
        let slot = self.lock();
        if slot.primary_label.as_deref() == Some(id) {
            return slot.commands.clone();
        }
        slot.further
            .iter()
            .find(|f| f.id == id)
            .and_then(|f| f.commands.clone())
    }

    pub(super) fn primary_label(&self) -> Option<String> {
        self.lock().primary_label.clone()
    }

    /// The further accounts' ids and paths (running or not).
    pub(super) fn further_places(&self) -> Vec<(String, Paths)> {
        self.lock()
            .further
            .iter()
            .map(|f| (f.id.clone(), f.paths.clone()))
            .collect()
    }

    /// The further accounts' ids, paths and engines (`None`: not running).
    pub(super) fn further_engines(&self) -> Vec<FurtherEngine> {
        self.lock()
            .further
            .iter()
            .map(|f| (f.id.clone(), f.paths.clone(), f.commands.clone()))
            .collect()
    }

    /// The account a key from the windows belongs to: `"<account>/<key>"` names a
    /// further account or the first one (account ids never contain `/`); anything else is
    /// the first account's key as it is (a single account's keys have no prefix).
    pub(super) fn route(&self, ui_key: &str) -> Route {
        let slot = self.lock();
        if let Some((prefix, key)) = ui_key.split_once('/') {
            if slot.primary_label.as_deref() == Some(prefix) {
                return Route {
                    further: None,
                    key: key.to_string(),
                };
            }
            if let Some(f) = slot.further.iter().find(|f| f.id == prefix) {
                return Route {
                    further: Some((f.id.clone(), f.paths.clone(), f.commands.clone())),
                    key: key.to_string(),
                };
            }
        }
        Route {
            further: None,
            key: ui_key.to_string(),
        }
    }
}
