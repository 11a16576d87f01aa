//! The controller with no desktop at all: a [`RecordingShell`] in place of the tray and
//! the windows, the real core, the real reference server (the demo) in-process, an
//! in-memory keyring and a notifier that records toasts. Commands go through
//! [`dispatch`], as a window's do.

// Test helpers outside `#[test]` functions: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use taskbell_core::config::Paths;
use taskbell_core::credentials::Credentials;
use taskbell_core::notifier::RecordingNotifier;
use taskbell_desktop::controller::{self, EVENT_STATUS, ShellCall};
use taskbell_desktop::dispatch::{COMMANDS, dispatch, on_menu};
use taskbell_desktop::error::ErrorKind;
use taskbell_desktop::model::{ConnState, Lang, UiStatus, WindowKind};
use taskbell_desktop::{Controller, Deps, Options, RecordingShell, Shared};

/// Bounds every wait; a hang fails the test instead of stalling CI.
const WAIT: Duration = Duration::from_secs(60);

struct Fixture {
    rt: tokio::runtime::Runtime,
    ctl: Controller,
    shell: RecordingShell,
    toasts: RecordingNotifier,
    _dir: tempfile::TempDir,
}

fn start(options: Options) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let toasts = RecordingNotifier::new();
    let deps = Deps {
        paths: Paths {
            config_dir: dir.path().join("config"),
            data_dir: dir.path().join("data"),
        },
        credentials: Ok(Credentials::in_memory()),
        notifier: Arc::new(toasts.clone()),
        notifier_factory: None,
        utc_offset: time::UtcOffset::UTC,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let shell = RecordingShell::new();
    let ctl = Controller::new(
        Shared::new(options, Lang::En, deps),
        shell.clone(),
        rt.handle().clone(),
    );
    Fixture {
        rt,
        ctl,
        shell,
        toasts,
        _dir: dir,
    }
}

impl Fixture {
    fn call(&self, cmd: &str, args: Value) -> Result<Value, (ErrorKind, String)> {
        self.rt
            .block_on(dispatch(&self.ctl, cmd, args))
            .map_err(|e| (e.kind, e.message))
    }

    fn wait_status(&self, what: &str, ok: impl Fn(&UiStatus) -> bool) -> UiStatus {
        let deadline = Instant::now() + WAIT;
        loop {
            let s = self.ctl.shared().status();
            if ok(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {s:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.rt.block_on(controller::shutdown(&self.ctl));
    }
}

#[test]
fn the_demo_shows_through_the_shell_alone() {
    let f = start(Options::default());
    controller::start(&f.ctl);
    let s = f.wait_status("demo connected", |s| {
        matches!(s.state, ConnState::Connected { .. }) && !s.summary_lines.is_empty()
    });
    assert!(s.demo, "{s:?}");
    // The tray was shown the status, and the windows were told it, as JSON.
    let calls = f.shell.calls();
    assert!(
        calls
            .iter()
            .any(|c| matches!(c, ShellCall::ShowStatus { state_line, .. }
            if *state_line == s.state_line)),
        "{calls:?}"
    );
    let emitted: Vec<UiStatus> = calls
        .iter()
        .filter_map(|c| match c {
            ShellCall::Emit(EVENT_STATUS, v) => Some(serde_json::from_value(v.clone()).unwrap()),
            _ => None,
        })
        .collect();
    assert!(
        emitted.iter().any(|e| e.demo && e.user.is_some()),
        "{emitted:?}"
    );
    // No window opened by itself, and the login summary reached the notifier.
    assert!(
        !calls.iter().any(|c| matches!(c, ShellCall::Open(_))),
        "{calls:?}"
    );
    let toasts =
        f.rt.block_on(f.toasts.wait_for_count(WAIT, 1))
            .expect("summary toast");
    assert!(toasts[0].body.contains(&s.summary_lines[0]), "{toasts:?}");

    // A window's commands, by name with JSON arguments.
    let status: UiStatus =
        serde_json::from_value(f.call("get_status", json!({})).unwrap()).unwrap();
    assert_eq!(status, f.ctl.shared().status());
    let rows = f
        .call("list_history", json!({"filter": {"limit": 5}}))
        .unwrap();
    assert!(rows.as_array().is_some_and(|r| r.len() <= 5), "{rows}");
    f.call("open_window", json!({"window": "settings"}))
        .unwrap();
    assert_eq!(
        f.shell.calls().last(),
        Some(&ShellCall::Open(WindowKind::Settings))
    );
}

#[test]
fn bad_calls_get_clear_errors_and_change_nothing() {
    let f = start(Options::default());
    let invalid = |cmd: &str, args: Value, says: &str| {
        let (kind, message) = f.call(cmd, args.clone()).expect_err(cmd);
        assert_eq!(kind, ErrorKind::Invalid, "{cmd} {args}: {message}");
        assert!(
            message.contains(says),
            "{cmd} {args}: {message:?} lacks {says:?}"
        );
    };
    invalid("no_such_command", json!({}), "no_such_command");
    invalid(
        "mark_read",
        json!([1, 2]),
        "expected an object, got an array",
    );
    invalid("mark_read", json!({}), "missing its argument `keys`");
    invalid("mark_read", json!({"keys": "k"}), "invalid argument `keys`");
    invalid("mark_read", json!({"keys": []}), "No notification given");
    invalid(
        "open_window",
        json!({"window": "mainframe"}),
        "invalid argument `window`",
    );
    invalid(
        "set_project_policy",
        json!({"project": " "}),
        "No project given",
    );
    invalid(
        "sign_in",
        json!({"server": "", "username": "u", "password": "p", "remember": false}),
        "platform's address",
    );
    invalid(
        "sign_in",
        json!({"server": "http://x"}),
        "missing its argument `username`",
    );
    assert!(f.shell.calls().is_empty(), "{:?}", f.shell.calls());
}

#[test]
fn every_listed_command_is_dispatched_and_the_menu_reaches_the_shell() {
    let f = start(Options::default());
    for cmd in COMMANDS.iter().filter(|c| **c != "close_window") {
        if let Err((_, message)) = f.call(cmd, Value::Null) {
            assert!(!message.contains("There is no command"), "{cmd}: {message}");
        }
    }
    for (entry, call) in [
        ("notifications", ShellCall::Open(WindowKind::Center)),
        ("settings", ShellCall::Open(WindowKind::Settings)),
        ("diagnostics", ShellCall::Open(WindowKind::Diagnostics)),
        ("add-account", ShellCall::Open(WindowKind::Login)),
        ("quit", ShellCall::Quit),
    ] {
        on_menu(&f.ctl, entry);
        assert_eq!(f.shell.calls().last(), Some(&call), "{entry}");
    }
}
