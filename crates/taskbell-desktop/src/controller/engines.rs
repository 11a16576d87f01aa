//! The engines' life cycle: boot (the demo, or the configured accounts, or the login
//! window), one engine per signed-in account with pumps that turn its status and events
//! into publications, sign-in (which may add an account), per-account sign-out, and
//! shutdown.
//!
//! Each first-account engine run gets a generation number, and its three pump tasks
//! (status, events, exit) ignore themselves once a newer engine replaced it; the further
//! accounts share a generation of their own, bumped when they all stop.

use std::sync::Arc;
use std::time::Duration;

use taskbell_core::accounts::{self, Labelled};
use taskbell_core::config::{Config, Paths};
use taskbell_core::credentials::Credentials;
use taskbell_core::i18n::{Msg, tr};
use taskbell_core::notifier::Notifier;
use taskbell_core::supervisor::{
    Command, Engine, EngineError, EngineHandle, EngineOptions, Event, ExitReason, Status,
    sign_in as core_sign_in,
};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::publish::{self, publish, publish_signed_out};
use super::shell::Controller;
use super::slot::Further;
use crate::error::{self, CmdError, CmdResult, ErrorKind, keyring_error, sign_in_error};
use crate::model::{ConnState, ReconnectEntry, UiUser, WindowKind};
use crate::view::{now_ms, ui_key, ui_notification, ui_status, ui_user};

/// How often the demo server makes something happen.
pub const DEMO_ACTIVITY_EVERY: Duration = Duration::from_secs(20);

/// Starts the engine in the background: the demo when asked or when no server is
/// configured, else the configured account (signing in from the keyring); the login
/// window when that is not possible.
pub fn start(ctl: &Controller) {
    let c = ctl.clone();
    ctl.spawn(async move {
        if let Err(e) = boot(&c).await {
            tracing::warn!("{e}");
            publish_signed_out(&c, Some(e.message.clone()));
            open_login(&c);
        }
    });
}

/// Opens the sign-in window (the user must act: signed out, or an account to add).
pub(super) fn open_login(ctl: &Controller) {
    let lang = ctl.shared().lang();
    if let Err(e) = ctl.shell().open_window(WindowKind::Login, lang) {
        tracing::warn!("could not open the login window: {e}");
    }
}

async fn boot(ctl: &Controller) -> CmdResult<()> {
    let shared = ctl.shared();
    let paths = shared.deps.paths.clone();
    let config = Config::load(&paths.config_file());
    let demo = shared.options.demo || matches!(&config, Ok(c) if c.server.is_none());
    if demo {
        return start_demo(ctl).await;
    }
    let config = config.map_err(CmdError::from)?;
    let credentials = shared.deps.credentials.clone().map_err(keyring_error)?;
    load_accounts(ctl, &paths);
    let first = start_engine(ctl, config, paths, credentials.clone(), false);
    start_further(ctl, &credentials).await;
    match first {
        Err(EngineError::NotSignedIn) => {
            publish_signed_out(ctl, None);
            open_login(ctl);
            Ok(())
        }
        Err(e) => Err(CmdError::new(ErrorKind::Local, e.to_string())),
        Ok(()) => Ok(()),
    }
}

/// Starts the embedded reference server with demo activity and signs in as the demo
/// annotator, in a demo data directory of its own (the real config stays untouched).
async fn start_demo(ctl: &Controller) -> CmdResult<()> {
    let shared = ctl.shared();
    let server = taskbell_server::start(taskbell_server::ServerConfig {
        demo_activity: Some(DEMO_ACTIVITY_EVERY),
        ..taskbell_server::ServerConfig::default()
    })
    .await
    .map_err(|e| {
        CmdError::new(
            ErrorKind::Local,
            format!("the demo server did not start: {e}"),
        )
    })?;
    let dir = shared.deps.paths.data_dir.join("demo");
    // A fresh demo every time: the demo server's data starts afresh too.
    let _ = std::fs::remove_dir_all(&dir);
    let paths = Paths {
        config_dir: dir.clone(),
        data_dir: dir,
    };
    // The demo keeps its token in memory: it works without a keyring, and its tokens die
    // with the demo server anyway.
    let credentials = Credentials::in_memory();
    let account = taskbell_server::DEMO_ANNOTATOR;
    let base = server.base_url();
    tracing::info!(
        "demo: platform at {base}, signing in as {}",
        account.username
    );
    let signed = core_sign_in(
        &paths,
        &credentials,
        &base,
        account.username,
        account.password,
        false,
    )
    .await
    .map_err(sign_in_error)?;
    shared.engine.lock().demo = Some(server);
    start_engine(ctl, signed.config, paths, credentials, true).map_err(error::local)
}

fn start_engine(
    ctl: &Controller,
    config: Config,
    paths: Paths,
    credentials: Credentials,
    demo: bool,
) -> Result<(), EngineError> {
    let shared = ctl.shared();
    if let Some(lang) = config.language {
        shared.set_lang(lang);
    }
    let notifier: Arc<dyn Notifier> = match shared.engine.primary_label().filter(|_| !demo) {
        Some(label) => Arc::new(Labelled::new(label, shared.deps.notifier.clone())),
        None => shared.deps.notifier.clone(),
    };
    let mut opts = EngineOptions::new(config, paths.clone(), notifier, credentials);
    opts.lang = shared.lang();
    opts.utc_offset = shared.deps.utc_offset;
    // A click on a folded toast opens the center on its notifications.
    opts.folded_to_center = true;
    let EngineHandle {
        state,
        events,
        commands,
        join,
    } = Engine::start(opts)?;
    let generation = {
        let mut slot = shared.engine.lock();
        if let Some(old) = slot.commands.take() {
            let _ = old.try_send(Command::Shutdown);
        }
        if !demo && let Some(server) = slot.demo.take() {
            ctl.spawn(server.shutdown());
        }
        slot.generation += 1;
        slot.commands = Some(commands);
        slot.paths = Some(paths);
        slot.summary_lines.clear();
        slot.signing_out = false;
        slot.generation
    };
    ctl.spawn(pump(ctl.clone(), state, events, join, generation, demo));
    Ok(())
}

/// Reads the accounts from the main config dir: names the first one when there are
/// several, and keeps every further one (an engine already running for one stays; one that
/// is gone is stopped).
fn load_accounts(ctl: &Controller, paths: &Paths) {
    let all = accounts::list(paths).unwrap_or_else(|e| {
        tracing::warn!("cannot list the accounts: {e}");
        Vec::new()
    });
    let several = all.len() > 1;
    let shared = ctl.shared();
    let mut slot = shared.engine.lock();
    slot.primary_label = all
        .iter()
        .find(|a| a.primary)
        .filter(|_| several)
        .map(|a| a.id.clone());
    let mut old = std::mem::take(&mut slot.further);
    slot.further = all
        .into_iter()
        .filter(|a| !a.primary)
        .map(|a| match old.iter().position(|f| f.id == a.id) {
            Some(i) => old.swap_remove(i),
            None => Further {
                id: a.id,
                paths: a.paths,
                commands: None,
                unread: 0,
                state: ConnState::SignedOut { reason: None },
                paused_until_ms: None,
            },
        })
        .collect();
    for gone in old {
        if let Some(tx) = gone.commands {
            let _ = tx.try_send(Command::Shutdown);
        }
    }
}

/// Whether the account of `config` can sign in without asking: a token, or a remembered
/// password, in the keyring (what `taskbell run` checks too).
async fn has_credentials(credentials: &Credentials, config: &Config) -> bool {
    let (creds, config) = (credentials.clone(), config.clone());
    match taskbell_core::credentials::blocking(move || creds.can_sign_in(&config)).await {
        Ok(yes) => yes,
        Err(e) => {
            tracing::warn!("keyring: {e}");
            false
        }
    }
}

/// Starts an engine for every further account that is signed in and has none yet.
async fn start_further(ctl: &Controller, credentials: &Credentials) {
    let shared = ctl.shared();
    let (todo, generation) = {
        let slot = shared.engine.lock();
        let todo: Vec<(String, Paths)> = slot
            .further
            .iter()
            .filter(|f| f.commands.is_none())
            .map(|f| (f.id.clone(), f.paths.clone()))
            .collect();
        (todo, slot.further_generation)
    };
    for (id, paths) in todo {
        if let Err(e) = start_one_further(ctl, &id, paths, credentials, generation).await {
            tracing::warn!("{id}: {e}");
        }
    }
    publish::refresh(ctl);
}

async fn start_one_further(
    ctl: &Controller,
    id: &str,
    paths: Paths,
    credentials: &Credentials,
    generation: u64,
) -> CmdResult<()> {
    let shared = ctl.shared();
    let config = paths.load_config()?;
    if !has_credentials(credentials, &config).await {
        tracing::info!("{id} is signed out; it does not run");
        return Ok(());
    }
    let notifier = Arc::new(Labelled::new(
        id,
        shared.deps.notifier_for_further_account(),
    ));
    let mut opts = EngineOptions::new(config, paths, notifier, credentials.clone());
    opts.lang = shared.lang();
    opts.utc_offset = shared.deps.utc_offset;
    // A click on a folded toast opens the center on its notifications.
    opts.folded_to_center = true;
    let handle = Engine::start(opts).map_err(error::local)?;
    {
        let mut slot = shared.engine.lock();
        let current = slot.further_generation == generation;
        match slot.further.iter_mut().find(|f| f.id == id) {
            Some(f) if current && f.commands.is_none() => {
                f.commands = Some(handle.commands.clone());
                f.unread = handle.state.borrow().unread;
            }
            _ => {
                // Shut down (or replaced) meanwhile.
                let _ = handle.commands.try_send(Command::Shutdown);
                return Ok(());
            }
        }
    }
    tracing::info!("{id}: engine started");
    ctl.spawn(pump_further(
        ctl.clone(),
        id.to_string(),
        generation,
        handle,
    ));
    Ok(())
}

fn further_is_current(ctl: &Controller, id: &str, generation: u64) -> bool {
    let shared = ctl.shared();
    let slot = shared.engine.lock();
    slot.further_generation == generation
        && slot
            .further
            .iter()
            .any(|f| f.id == id && f.commands.is_some())
}

/// A further account's engine: its notifications go to the center (with the account),
/// its unread count into the tray's sum; when it ends it leaves the sum.
async fn pump_further(ctl: Controller, id: String, generation: u64, handle: EngineHandle) {
    let EngineHandle {
        mut state,
        mut events,
        commands: _,
        join,
    } = handle;
    let mut state_open = true;
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Some(event) => {
                    if !matches!(event, Event::Latency { .. }) {
                        ctl.activity();
                    }
                    if further_is_current(&ctl, &id, generation) {
                        on_further_event(&ctl, &id, event);
                    }
                }
                None => break,
            },
            changed = state.changed(), if state_open => {
                if changed.is_err() {
                    state_open = false;
                    continue;
                }
                let (unread, conn, paused) = {
                    let s = state.borrow_and_update();
                    (s.unread, s.state.clone(), s.paused_until_ms)
                };
                let shared = ctl.shared();
                let changed = {
                    let mut slot = shared.engine.lock();
                    let current = slot.further_generation == generation;
                    match slot.further.iter_mut().find(|f| f.id == id && f.commands.is_some()) {
                        Some(f)
                            if current
                                && (f.unread != unread
                                    || f.state != conn
                                    || f.paused_until_ms != paused) =>
                        {
                            f.unread = unread;
                            f.state = conn;
                            f.paused_until_ms = paused;
                            true
                        }
                        _ => false,
                    }
                };
                if changed {
                    publish::refresh(&ctl);
                }
            }
        }
    }
    let reason = match join.await {
        Ok(r) => r,
        Err(e) => ExitReason::Failed(format!("engine task failed: {e}")),
    };
    let shared = ctl.shared();
    {
        let mut slot = shared.engine.lock();
        if slot.further_generation != generation {
            return;
        }
        if let Some(f) = slot.further.iter_mut().find(|f| f.id == id) {
            f.commands = None;
            f.unread = 0;
            f.state = ConnState::SignedOut { reason: None };
        }
    }
    match reason {
        ExitReason::Shutdown => tracing::info!("{id}: engine stopped"),
        other => tracing::warn!(reason = ?other, "{id}: engine stopped"),
    }
    publish::refresh(&ctl);
}

/// Handles a further account's event: its notifications reach the center; the login
/// summary, latency and reconnects are the first account's business (menu, diagnostics).
fn on_further_event(ctl: &Controller, id: &str, event: Event) {
    match event {
        Event::Notification(n) => {
            let paths = ctl
                .shared()
                .engine
                .further_places()
                .into_iter()
                .find(|(f, _)| f == id)
                .map(|(_, p)| p);
            let config = paths.and_then(|p| p.load_config().ok()).unwrap_or_default();
            publish::notification(ctl, ui_notification(&n, false, &config, Some(id)));
        }
        // Its reconnects join the log, named; its latency is not the tray's state line.
        Event::Reconnecting {
            reason,
            delay_ms,
            attempt,
        } => record_reconnect(ctl, Some(id.to_string()), reason, delay_ms, attempt),
        Event::ShowFolded { keys } => show_folded(ctl, &keys, Some(id)),
        Event::Error { message } => tracing::warn!("{id}: engine: {message}"),
        other => tracing::debug!(?other, "{id}: engine event"),
    }
}

fn is_current(ctl: &Controller, generation: u64) -> bool {
    ctl.shared().engine.lock().generation == generation
}

/// Publishes the engine's status, handles its events and its end, in one task: the
/// status the tray shows is made of the engine's state and the summary lines together,
/// and separate tasks could publish in the wrong order (a summary's copy of an older
/// state last: the tray said "Connecting…" while connected until the next change; the
/// engine's last state after the sign-out its end published).
async fn pump(
    ctl: Controller,
    mut state: watch::Receiver<Status>,
    mut events: mpsc::Receiver<Event>,
    mut join: JoinHandle<ExitReason>,
    generation: u64,
    demo: bool,
) {
    let mut state_open = true;
    let mut events_open = true;
    if !is_current(&ctl, generation) {
        return;
    }
    let status = state.borrow_and_update().clone();
    republish(&ctl, &status, demo);
    loop {
        tokio::select! {
            changed = state.changed(), if state_open => {
                if changed.is_err() {
                    state_open = false;
                    continue;
                }
                if !is_current(&ctl, generation) {
                    return;
                }
                let status = state.borrow_and_update().clone();
                republish(&ctl, &status, demo);
            }
            event = events.recv(), if events_open => {
                let Some(event) = event else {
                    events_open = false;
                    continue;
                };
                if !is_current(&ctl, generation) {
                    return;
                }
                if !matches!(event, Event::Latency { .. }) {
                    ctl.activity();
                }
                on_event(&ctl, event, demo);
            }
            joined = &mut join => {
                // In order: what the engine said before it ended, its last state, and
                // then its end (which may publish "signed out" over that state).
                while let Ok(event) = events.try_recv() {
                    if is_current(&ctl, generation) {
                        on_event(&ctl, event, demo);
                    }
                }
                if is_current(&ctl, generation) {
                    let status = state.borrow_and_update().clone();
                    republish(&ctl, &status, demo);
                }
                let reason = joined.unwrap_or_else(|e| {
                    ExitReason::Failed(format!("engine task failed: {e}"))
                });
                on_exit(&ctl, generation, reason);
                return;
            }
        }
    }
}

fn republish(ctl: &Controller, status: &Status, demo: bool) {
    let shared = ctl.shared();
    let lines = shared.engine.lock().summary_lines.clone();
    let ui = ui_status(status, &lines, demo, now_ms(), shared.deps.utc_offset);
    shared.set_core_status(status.clone());
    publish(ctl, ui);
}

/// Handles one core event: windows hear about notifications and diagnostics, the menu
/// gets the summary lines.
pub fn on_event(ctl: &Controller, event: Event, demo: bool) {
    let shared = ctl.shared();
    match event {
        Event::Notification(n) => {
            let config = shared.active_config().unwrap_or_default();
            let label = shared.engine.primary_label().filter(|_| !demo);
            publish::notification(ctl, ui_notification(&n, false, &config, label.as_deref()));
        }
        Event::Summary(s) => {
            // The first line greets the user; the rest are the counts the menu lists.
            let lines: Vec<String> = s.body_lines.iter().skip(1).cloned().collect();
            shared.engine.lock().summary_lines = lines;
            if let Some(core) = shared.core_status() {
                republish(ctl, &core, demo);
            }
        }
        Event::Latency { ms } => {
            shared.with_diag(|d| d.latency(ms));
            publish::diagnostics_changed(ctl);
        }
        Event::Reconnecting {
            reason,
            delay_ms,
            attempt,
        } => {
            let account = shared.engine.primary_label().filter(|_| !demo);
            record_reconnect(ctl, account, reason, delay_ms, attempt);
        }
        Event::ShowFolded { keys } => {
            let account = shared.engine.primary_label().filter(|_| !demo);
            show_folded(ctl, &keys, account.as_deref());
        }
        Event::Error { message } => tracing::warn!("engine: {message}"),
        other => tracing::debug!(?other, "engine event"),
    }
}

/// A click on a folded toast of `account` (`None`: the single account, or the first one
/// in demo mode): opens the center (or brings it up) showing just those notifications.
fn show_folded(ctl: &Controller, keys: &[String], account: Option<&str>) {
    let shared = ctl.shared();
    shared.set_shown_keys(keys.iter().map(|k| ui_key(account, k)).collect());
    if let Err(e) = ctl.shell().open_window(WindowKind::Center, shared.lang()) {
        tracing::warn!("could not open the center: {e}");
    }
    publish::show_keys(ctl);
}

/// Adds a reconnect to the diagnostics log and tells the window.
fn record_reconnect(
    ctl: &Controller,
    account: Option<String>,
    reason: String,
    delay_ms: u64,
    attempt: u32,
) {
    ctl.shared().with_diag(|d| {
        d.reconnect(ReconnectEntry {
            at_ms: now_ms(),
            reason,
            delay_ms,
            attempt,
            account,
        })
    });
    publish::diagnostics_changed(ctl);
}

fn on_exit(ctl: &Controller, generation: u64, reason: ExitReason) {
    let shared = ctl.shared();
    let asked = {
        let mut slot = shared.engine.lock();
        if slot.generation != generation {
            return;
        }
        slot.commands = None;
        slot.summary_lines.clear();
        std::mem::take(&mut slot.signing_out)
    };
    tracing::info!(?reason, "engine stopped");
    let text = match &reason {
        ExitReason::Shutdown => return,
        ExitReason::SignedOut if asked => None,
        ExitReason::SignedOut => Some(tr(shared.lang(), Msg::SessionEnded)),
        ExitReason::AccessDenied(why) => Some(tr(shared.lang(), Msg::AccessDenied { reason: why })),
        ExitReason::Failed(why) => Some(why.clone()),
    };
    let push_login = text.is_some();
    publish_signed_out(ctl, text);
    if push_login {
        open_login(ctl);
    }
}

/// Stops the engine (and the demo server); called once when the ctl exits. Waits a
/// moment so the socket closes properly.
pub async fn shutdown(ctl: &Controller) {
    let shared = ctl.shared();
    let (commands, demo) = {
        let mut slot = shared.engine.lock();
        slot.generation += 1;
        slot.further_generation += 1;
        let mut all: Vec<_> = slot.commands.take().into_iter().collect();
        for f in &mut slot.further {
            all.extend(f.commands.take());
            f.unread = 0;
        }
        (all, slot.demo.take())
    };
    if !commands.is_empty() {
        for c in &commands {
            let _ = c.send(Command::Shutdown).await;
        }
        // The loop closes the socket with 1000; give it a moment, no more.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    if let Some(server) = demo {
        let _ = tokio::time::timeout(Duration::from_secs(3), server.shutdown()).await;
    }
}

/// Signs in from the login window. A new identity becomes a further account while the
/// first account runs (`accounts::locate`, as `taskbell login` decides); otherwise it is the
/// first account, whose engine (re)starts, leaving demo mode if it was on.
pub async fn sign_in(
    ctl: &Controller,
    server: &str,
    username: &str,
    password: &str,
    remember: bool,
) -> CmdResult<UiUser> {
    let shared = ctl.shared();
    let main = shared.deps.paths.clone();
    let credentials = shared.deps.credentials.clone().map_err(keyring_error)?;
    let located = accounts::locate(&main, server, username)
        .map_err(|e| CmdError::new(ErrorKind::BadUrl, e.to_string()).on("server"))?;
    // Only while a real first account runs does another identity sit beside it; a
    // signed-out (or demo) first place is taken over, as a single account always was.
    let first_runs = shared.engine.is_running() && shared.engine.lock().demo.is_none();
    let further = located != main && first_runs;
    let paths = if further { located } else { main.clone() };
    let signed = core_sign_in(&paths, &credentials, server, username, password, remember)
        .await
        .map_err(sign_in_error)?;
    let user = ui_user(&signed.user);
    // The accounts (and the first one's name) may have changed.
    load_accounts(ctl, &main);
    if !further {
        start_engine(ctl, signed.config, paths, credentials.clone(), false)
            .map_err(error::local)?;
    }
    // Leaving the demo, or a new account: the further accounts start now.
    start_further(ctl, &credentials).await;
    // The login window has done its job.
    let _ = ctl.shell().close_window(WindowKind::Login);
    Ok(user)
}

/// Signs the account `id` (`user@host`) out: its engine forgets the token and stops. The
/// first account goes through the usual sign-out (the tray shows it signed out).
pub fn sign_out_account(ctl: &Controller, id: &str) -> CmdResult<()> {
    let shared = ctl.shared();
    let (first, further) = {
        let slot = shared.engine.lock();
        let further = slot
            .further
            .iter()
            .find(|f| f.id == id)
            .map(|f| f.commands.clone());
        (slot.primary_label.as_deref() == Some(id), further)
    };
    if first {
        let tx = shared.engine.sender().ok_or_else(error::not_signed_in)?;
        shared.engine.lock().signing_out = true;
        return tx.try_send(Command::SignOut).map_err(error::busy);
    }
    match further {
        Some(Some(tx)) => tx.try_send(Command::SignOut).map_err(error::busy),
        Some(None) => Err(error::not_signed_in()),
        None => Err(CmdError::new(
            ErrorKind::Invalid,
            format!("There is no account {id:?}."),
        )),
    }
}
