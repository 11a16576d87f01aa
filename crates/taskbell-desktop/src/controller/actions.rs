//! What the windows and the menu ask for: the merged history, mark read, open a task,
//! the settings, diagnostics, and the engine actions (pause, resume, reconnect, sign out,
//! test toast), each routed to the account it concerns.

use std::collections::VecDeque;

use taskbell_core::config::{Config, Paths, ProjectRule, ToastPolicy};
use taskbell_core::delivery::test_toast;
use taskbell_core::history::{History, Query};
use taskbell_core::notifier::open_in_browser;
use taskbell_core::supervisor::Command;
use tokio::sync::mpsc;

use super::engines::open_login;
use super::publish::{self, publish_signed_out};
use super::shell::Controller;
use super::slot::FurtherEngine;
use crate::checks;
use crate::error::{self, CmdError, CmdResult, ErrorKind, config_error, history_error};
use crate::model::{
    HistoryFilter, Lang, UiDiagnostics, UiNotification, UiProjectRule, UiSettings, WindowKind,
};
use crate::view::rules::project_rules;
use crate::view::{
    apply_settings, link_of, merge_newest_first, now_ms, settings_of, tomorrow_morning_ms,
    ui_notification,
};

/// What a window or the menu asks the engine to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Reconnect now.
    ReconnectNow,
    /// Pause for this many seconds.
    PauseFor(i64),
    /// Pause until tomorrow 08:00 local time.
    PauseUntilTomorrow,
    /// Resume notifications.
    Resume,
    /// Sign out.
    SignOut,
    /// Send a test notification.
    TestNotification,
}

/// Lists the history, newest first, filtered: every account's, merged by time (each
/// account is asked for `offset + limit` rows, the merge is sliced, so pages stay exact).
pub fn list_history(ctl: &Controller, filter: &HistoryFilter) -> CmdResult<Vec<UiNotification>> {
    let shared = ctl.shared();
    let limit = filter
        .limit
        .unwrap_or(200)
        .clamp(1, HistoryFilter::MAX_LIMIT);
    let offset = filter.offset.unwrap_or(0);
    let further = shared.engine.further_places();
    let label = shared.engine.primary_label();
    let config = shared.active_config().unwrap_or_default();
    let query = |offset: usize, limit: usize| Query {
        unread_only: filter.unread_only,
        limit,
        offset,
        ..Query::default()
    };
    // Each row with when it was stored, the tie-break between accounts.
    let of = |h: &History, q: &Query, config: &Config, account: Option<&str>| {
        h.list(q)
            .map(|records| {
                records
                    .iter()
                    .map(|r| {
                        (
                            r.received_at_ms,
                            ui_notification(&r.notification, r.read, config, account),
                        )
                    })
                    .collect::<VecDeque<_>>()
            })
            .map_err(error::local)
    };
    let rows: Vec<UiNotification> = if further.is_empty() {
        of(&shared.history()?, &query(offset, limit), &config, None)?
            .into_iter()
            .map(|(_, n)| n)
            .collect()
    } else {
        let wanted = offset.saturating_add(limit);
        let mut lists = vec![of(
            &shared.history()?,
            &query(0, wanted),
            &config,
            label.as_deref(),
        )?];
        for (id, paths) in further {
            if !paths.history_db().exists() {
                continue;
            }
            let config = paths.load_config().unwrap_or_default();
            match History::open(&paths.history_db())
                .map_err(history_error)
                .and_then(|h| of(&h, &query(0, wanted), &config, Some(&id)))
            {
                Ok(more) => lists.push(more),
                Err(e) => tracing::warn!("{id}: {e}"),
            }
        }
        merge_newest_first(lists, wanted)
            .into_iter()
            .skip(offset)
            .collect()
    };
    Ok(rows
        .into_iter()
        .filter(|n| filter.groups.is_empty() || filter.groups.contains(&n.group))
        .collect())
}

/// Marks `keys` (keys as the windows see them; all of every account when `None`) read:
/// each account through its engine when it runs (it owns the unread count), else
/// directly in its history.
pub fn mark_read(ctl: &Controller, keys: Option<&[String]>) -> CmdResult<()> {
    let shared = ctl.shared();
    let Some(keys) = keys else {
        for (_, paths, tx) in shared.engine.further_engines() {
            mark_further_read(&paths, tx, None)?;
        }
        return mark_primary_read(ctl, None);
    };
    let mut first = Vec::new();
    let mut further: Vec<(FurtherEngine, Vec<String>)> = Vec::new();
    for key in keys {
        let route = shared.engine.route(key);
        match route.further {
            None => first.push(route.key),
            Some(account) => match further.iter_mut().find(|(f, _)| f.0 == account.0) {
                Some((_, keys)) => keys.push(route.key),
                None => further.push((account, vec![route.key])),
            },
        }
    }
    for ((_, paths, tx), keys) in further {
        mark_further_read(&paths, tx, Some(&keys))?;
    }
    if first.is_empty() {
        return Ok(());
    }
    mark_primary_read(ctl, Some(&first))
}

fn mark_command(keys: Option<&[String]>) -> Command {
    match keys {
        Some(k) => Command::MarkRead { keys: k.to_vec() },
        None => Command::MarkAllRead,
    }
}

/// A further account's part of a mark read: its engine when it runs, else its history
/// (a stopped account's unread count is not in the tray's sum, so nothing to publish).
fn mark_further_read(
    paths: &Paths,
    tx: Option<mpsc::Sender<Command>>,
    keys: Option<&[String]>,
) -> CmdResult<()> {
    if let Some(tx) = tx {
        return tx.try_send(mark_command(keys)).map_err(error::busy);
    }
    if !paths.history_db().exists() {
        return Ok(());
    }
    let h = History::open(&paths.history_db()).map_err(history_error)?;
    match keys {
        Some(k) => h.mark_read(k),
        None => h.mark_all_read(),
    }
    .map(|_| ())
    .map_err(error::local)
}

fn mark_primary_read(ctl: &Controller, keys: Option<&[String]>) -> CmdResult<()> {
    let shared = ctl.shared();
    if let Some(tx) = shared.engine.sender() {
        return tx.try_send(mark_command(keys)).map_err(error::busy);
    }
    let h = shared.history()?;
    let done = match keys {
        Some(k) => h.mark_read(k),
        None => h.mark_all_read(),
    };
    done.map_err(error::local)?;
    let unread = h.unread_count().unwrap_or(0);
    shared.update_primary(|s| s.unread = unread);
    publish::refresh(ctl);
    publish::history_changed(ctl, shared.status().unread);
    Ok(())
}

/// Opens a notification's task in the browser (its URL is built here, on the platform's
/// own origin, from the account the key names) and marks it read.
pub fn open_notification(ctl: &Controller, key: &str) -> CmdResult<()> {
    let shared = ctl.shared();
    let route = shared.engine.route(key);
    let (h, config) = match &route.further {
        None => (shared.history()?, shared.active_config()?),
        Some((_, paths, _)) => (
            History::open(&paths.history_db()).map_err(history_error)?,
            paths.load_config()?,
        ),
    };
    let record = h.get(&route.key).map_err(error::local)?.ok_or_else(|| {
        CmdError::new(
            ErrorKind::Invalid,
            "That notification is not in the history.",
        )
    })?;
    let url = link_of(&record.notification, &config).ok_or_else(|| {
        CmdError::new(ErrorKind::Invalid, "This notification has no task to open.")
    })?;
    open_in_browser(&url).map_err(error::local)?;
    mark_read(ctl, Some(&[key.to_string()]))
}

/// Opens the platform's home page in the browser.
pub fn open_platform(ctl: &Controller) -> CmdResult<()> {
    let shared = ctl.shared();
    let url = shared
        .active_config()?
        .server_url()
        .map_err(CmdError::from)?;
    open_in_browser(url.as_str()).map_err(error::local)
}

/// The settings form.
pub fn get_settings(ctl: &Controller) -> CmdResult<UiSettings> {
    let shared = ctl.shared();
    Ok(settings_of(&shared.active_config()?))
}

/// Checks and saves settings; the engine applies them (a new server means a new sign-in).
pub fn save_settings(ctl: &Controller, s: UiSettings) -> CmdResult<UiSettings> {
    let shared = ctl.shared();
    let paths = shared.active_paths();
    let mut old = Config::default();
    let new = Config::update(&paths.config_file(), |on_disk| {
        old = on_disk.clone();
        *on_disk = apply_settings(on_disk.clone(), &s)?;
        Ok::<_, CmdError>(())
    })?;
    shared.set_lang(new.language.unwrap_or_else(Lang::from_system));
    publish::refresh(ctl);
    set_autostart(ctl, new.autostart);
    if new.server != old.server {
        // The token belongs to the old server: stop, and ask for a sign-in on the new one.
        if let Some(tx) = shared.engine.sender() {
            shared.engine.lock().signing_out = true;
            let _ = tx.try_send(Command::Shutdown);
        }
        shared.engine.lock().generation += 1;
        shared.engine.lock().commands = None;
        publish_signed_out(ctl, None);
        open_login(ctl);
    } else if let Some(tx) = shared.engine.sender() {
        let _ = tx.try_send(Command::SetConfig(Box::new(new.clone())));
    }
    apply_to_further_engines(ctl);
    Ok(settings_of(&new))
}

fn set_autostart(ctl: &Controller, on: bool) {
    if let Err(e) = ctl.shell().set_autostart(on) {
        tracing::warn!("autostart: {e}");
    }
}

/// Diagnostics data with the self-checks (blocking: D-Bus and X11 round trips).
pub fn diagnostics(ctl: &Controller) -> UiDiagnostics {
    let shared = ctl.shared();
    let lang = shared.lang();
    let keyring = shared
        .deps
        .credentials
        .as_ref()
        .map(|c| c.backend().to_string())
        .map_err(Clone::clone);
    let mut d = publish::live_diagnostics(ctl);
    d.checks = vec![
        checks::keyring(&keyring, lang),
        checks::notifications(lang),
        checks::tray(lang),
    ];
    d
}

/// Pauses or resumes the account `id` (`user@host`) alone (`action`: a pause or
/// [`Action::Resume`]).
pub fn pause_account(ctl: &Controller, id: &str, action: Action) -> CmdResult<()> {
    let shared = ctl.shared();
    let command = match pause_command(action, shared.deps.utc_offset) {
        Some(c) => c,
        None => {
            return Err(CmdError::new(
                ErrorKind::Invalid,
                "Only a pause or a resume applies to one account.",
            ));
        }
    };
    let tx = shared
        .engine
        .sender_of(id)
        .ok_or_else(error::not_signed_in)?;
    tx.try_send(command).map_err(error::busy)
}

/// The engine command of a pause or resume `action` (`None` for the others).
fn pause_command(action: Action, offset: time::UtcOffset) -> Option<Command> {
    match action {
        Action::PauseFor(secs) => Some(Command::Pause {
            until_ms: now_ms() + secs * 1000,
        }),
        Action::PauseUntilTomorrow => Some(Command::Pause {
            until_ms: tomorrow_morning_ms(now_ms(), offset),
        }),
        Action::Resume => Some(Command::Resume),
        Action::ReconnectNow | Action::SignOut | Action::TestNotification => None,
    }
}

/// Sends `action` to the engines: pause, resume and reconnect to every account's, sign
/// out and the test toast to the first account's. A test toast works without an engine.
pub fn send(ctl: &Controller, action: Action) -> CmdResult<()> {
    let shared = ctl.shared();
    let to_all = match action {
        Action::ReconnectNow => Some(Command::ReconnectNow),
        other => pause_command(other, shared.deps.utc_offset),
    };
    if let Some(command) = to_all {
        let all: Vec<_> = shared
            .engine
            .sender()
            .into_iter()
            .chain(shared.engine.further_senders())
            .collect();
        if all.is_empty() {
            return Err(error::not_signed_in());
        }
        let mut result = Ok(());
        for tx in all {
            if let Err(e) = tx.try_send(command.clone()) {
                result = Err(error::busy(e));
            }
        }
        return result;
    }
    let Some(tx) = shared.engine.sender() else {
        if action == Action::TestNotification {
            return shared
                .deps
                .notifier
                .show(&test_toast(shared.lang()))
                .map_err(error::local);
        }
        return Err(error::not_signed_in());
    };
    let command = match action {
        // Sent to every engine above.
        Action::ReconnectNow
        | Action::PauseFor(_)
        | Action::PauseUntilTomorrow
        | Action::Resume => return Ok(()),
        Action::SignOut => {
            shared.engine.lock().signing_out = true;
            Command::SignOut
        }
        Action::TestNotification => Command::TestNotification,
    };
    tx.try_send(command).map_err(error::busy)
}

/// Hands the first account's config `new`, just saved, to the running engines: the first
/// account's engine as it is, every further account's engine its own config.
pub fn apply_to_engines(ctl: &Controller, new: &Config) {
    if let Some(tx) = ctl.shared().engine.sender() {
        let _ = tx.try_send(Command::SetConfig(Box::new(new.clone())));
    }
    apply_to_further_engines(ctl);
}

/// Hands every running further account's engine its config anew, after the main config
/// changed: the further accounts share every setting but their identity and pause.
pub fn apply_to_further_engines(ctl: &Controller) {
    for (id, paths, tx) in ctl.shared().engine.further_engines() {
        if let Some(tx) = tx {
            match paths.load_config() {
                Ok(c) => {
                    let _ = tx.try_send(Command::SetConfig(Box::new(c)));
                }
                Err(e) => tracing::warn!("{id}: {e}"),
            }
        }
    }
}

/// The project rules of the account in use.
pub fn project_policies(ctl: &Controller) -> CmdResult<Vec<UiProjectRule>> {
    Ok(project_rules(&ctl.shared().active_config()?))
}

/// Sets one project's toast policy (`None` removes its rule: its toasts show again) in
/// `config.toml`; the running engines apply it at once. Returns every project rule.
pub fn set_project_policy(
    ctl: &Controller,
    project: &str,
    policy: Option<ToastPolicy>,
) -> CmdResult<Vec<UiProjectRule>> {
    let path = ctl.shared().active_paths().config_file();
    let new = Config::update(&path, |c| {
        match policy {
            Some(policy) => {
                c.projects
                    .insert(project.to_string(), ProjectRule { policy });
            }
            None => {
                c.projects.remove(project);
            }
        }
        c.validate().map_err(config_error)
    })?;
    apply_to_engines(ctl, &new);
    Ok(project_rules(&new))
}

/// The keys a folded toast asked the center to show, once (`None` when none wait).
pub fn take_shown_keys(ctl: &Controller) -> Option<Vec<String>> {
    ctl.shared().take_shown_keys()
}

/// Opens (or brings up) the window of `kind`, in the ctl's language.
pub fn open_window(ctl: &Controller, kind: WindowKind) -> CmdResult<()> {
    let lang = ctl.shared().lang();
    ctl.shell().open_window(kind, lang).map_err(|e| {
        CmdError::new(
            ErrorKind::Local,
            format!("could not open the {} window: {e}", kind.label()),
        )
    })
}
