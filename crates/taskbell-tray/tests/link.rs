//! The tray's side of the local link, driven from the window process's side by this test
//! over the real socket, with the real controller: who may connect, calls and replies,
//! and that no open is lost while window processes come and go. The "window process"
//! the tray starts is a script that only records that it was started; this test then
//! plays its part on the socket.

// Test helpers outside `#[test]` functions: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![cfg(target_os = "linux")]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use taskbell_core::config::Paths;
use taskbell_core::credentials::Credentials;
use taskbell_core::notifier::RecordingNotifier;
use taskbell_desktop::ipc::{self, ToTray, ToWindows};
use taskbell_desktop::model::{Lang, UiStatus, WindowKind};
use taskbell_desktop::{Controller, Deps, Options, Shared};
use taskbell_tray::shell::TrayShell;
use taskbell_tray::windows::{self, Bound, Windows};
use tokio::net::UnixStream;
use tokio::sync::watch;

const TOKEN: &str = "0123456789abcdef";
const WAIT: Duration = Duration::from_secs(30);

struct Fixture {
    dir: tempfile::TempDir,
    socket: PathBuf,
    windows: Arc<Windows>,
    ctl: Controller,
    quit: watch::Receiver<bool>,
}

/// A "window process" that appends a line to `started` each time it is run, then does
/// `then` (a real one says hello; this test says hello for it).
fn recording_program(dir: &Path, then: &str) -> PathBuf {
    let program = dir.join("windows.sh");
    std::fs::write(
        &program,
        format!(
            "#!/bin/sh\necho \"$@\" >> {}\n{then}\n",
            dir.join("started").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
    program
}

fn starts(f: &Fixture) -> usize {
    std::fs::read_to_string(f.dir.path().join("started"))
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

/// A tray whose window process stays a while without a word (this test speaks for it).
async fn start() -> Fixture {
    start_with("exec sleep 10").await
}

async fn start_with(then: &str) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("t.sock");
    let Bound::Listening(listener) = windows::bind(&socket).await.unwrap() else {
        panic!("nothing else listens here");
    };
    let program = recording_program(dir.path(), then);
    let runtime = tokio::runtime::Handle::current();
    let windows = Windows::new(socket.clone(), program, TOKEN.into(), runtime.clone());
    let (status, _) = watch::channel((UiStatus::signed_out(), Lang::En));
    let (quit_tx, quit) = watch::channel(false);
    let shell = TrayShell {
        windows: Arc::clone(&windows),
        status,
        quit: quit_tx,
        exe: dir.path().join("taskbell-tray"),
    };
    let deps = Deps {
        paths: Paths {
            config_dir: dir.path().join("config"),
            data_dir: dir.path().join("data"),
        },
        credentials: Ok(Credentials::in_memory()),
        notifier: Arc::new(RecordingNotifier::new()),
        notifier_factory: None,
        utc_offset: time::UtcOffset::UTC,
    };
    let ctl = Controller::new(
        Shared::new(Options::default(), Lang::En, deps),
        shell,
        runtime,
    );
    tokio::spawn(windows::serve(listener, Arc::clone(&windows), ctl.clone()));
    Fixture {
        dir,
        socket,
        windows,
        ctl,
        quit,
    }
}

async fn hello(f: &Fixture, token: &str) -> UnixStream {
    let mut s = UnixStream::connect(&f.socket).await.unwrap();
    ipc::write(
        &mut s,
        &ToTray::Hello {
            token: token.into(),
        },
    )
    .await
    .unwrap();
    s
}

async fn next(s: &mut UnixStream) -> Option<ToWindows> {
    tokio::time::timeout(WAIT, ipc::read::<_, ToWindows>(s))
        .await
        .expect("an answer in time")
        .unwrap()
}

async fn wait_for(what: &str, ok: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !ok() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_right_token_gets_in_and_calls_reach_the_controller() {
    let f = start().await;
    // The socket is the owner's alone.
    let mode = std::fs::metadata(&f.socket).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");

    // A wrong token, and a first message that is no hello, are hung up on.
    let mut wrong = hello(&f, "not the token").await;
    assert_eq!(next(&mut wrong).await, None);
    let mut rude = UnixStream::connect(&f.socket).await.unwrap();
    ipc::write(&mut rude, &ToTray::Idle).await.unwrap();
    assert_eq!(next(&mut rude).await, None);
    assert!(!f.windows.connected());

    // The right one is welcome; its calls go to the controller and come back by id.
    let mut s = hello(&f, TOKEN).await;
    assert_eq!(next(&mut s).await, Some(ToWindows::Welcome));
    wait_for("the window process to be attached", || {
        f.windows.connected()
    })
    .await;
    for (id, cmd, args) in [
        (1, "get_status", json!({})),
        (2, "mark_read", json!({"keys": []})),
        (3, "format_disk", json!({})),
    ] {
        ipc::write(
            &mut s,
            &ToTray::Call {
                id,
                cmd: cmd.into(),
                args,
            },
        )
        .await
        .unwrap();
    }
    let mut replies = Vec::new();
    for _ in 0..3 {
        match next(&mut s).await {
            Some(ToWindows::Reply { id, ok, err }) => replies.push((id, ok, err)),
            other => panic!("{other:?}"),
        }
    }
    replies.sort_by_key(|r| r.0);
    let status: UiStatus = serde_json::from_value(replies[0].1.clone().unwrap()).unwrap();
    assert_eq!(status, f.ctl.shared().status());
    for (i, says) in [(1, "No notification given"), (2, "format_disk")] {
        let err = replies[i]
            .2
            .clone()
            .unwrap_or_else(|| panic!("{replies:?}"));
        assert_eq!(err["kind"], Value::from("invalid"), "{err}");
        assert!(err["message"].as_str().unwrap().contains(says), "{err}");
    }

    // Events reach the window process; Quit (the menu's) reaches it too.
    f.windows.emit("taskbell://history", json!(0));
    assert_eq!(
        next(&mut s).await,
        Some(ToWindows::Event {
            name: "taskbell://history".into(),
            payload: json!(0)
        })
    );
    taskbell_desktop::dispatch::on_menu(&f.ctl, "quit");
    assert_eq!(next(&mut s).await, Some(ToWindows::Quit));
    assert!(*f.quit.borrow(), "the main loop is told to leave");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_open_is_lost_while_window_processes_come_and_go() {
    let f = start().await;
    // No window process: an open starts one (once, however many opens wait).
    f.windows.open(WindowKind::Center, Lang::En).unwrap();
    f.windows.open(WindowKind::Settings, Lang::ZhCn).unwrap();
    wait_for("the window process to be started", || starts(&f) == 1).await;
    let args = std::fs::read_to_string(f.dir.path().join("started")).unwrap();
    assert_eq!(
        args.trim(),
        format!("--windows-for {}", f.socket.display()),
        "{args}"
    );
    // It says hello and gets what waited, in order.
    let mut s = hello(&f, TOKEN).await;
    assert_eq!(next(&mut s).await, Some(ToWindows::Welcome));
    assert_eq!(
        next(&mut s).await,
        Some(ToWindows::Open {
            kind: WindowKind::Center,
            lang: "en".into()
        })
    );
    assert_eq!(
        next(&mut s).await,
        Some(ToWindows::Open {
            kind: WindowKind::Settings,
            lang: "zh-CN".into()
        })
    );
    // Its last window closes before it handled the second open: it may not go yet.
    ipc::write(
        &mut s,
        &ToTray::Opened {
            kind: WindowKind::Center,
        },
    )
    .await
    .unwrap();
    ipc::write(&mut s, &ToTray::Idle).await.unwrap();
    // A call after the Idle: its reply comes after the tray has weighed the Idle.
    ipc::write(
        &mut s,
        &ToTray::Call {
            id: 9,
            cmd: "get_status".into(),
            args: json!({}),
        },
    )
    .await
    .unwrap();
    assert!(
        matches!(next(&mut s).await, Some(ToWindows::Reply { id: 9, .. })),
        "no Quit while an open is on its way"
    );
    // Once nothing is on its way, Idle lets it go.
    ipc::write(
        &mut s,
        &ToTray::Opened {
            kind: WindowKind::Settings,
        },
    )
    .await
    .unwrap();
    ipc::write(&mut s, &ToTray::Idle).await.unwrap();
    assert_eq!(next(&mut s).await, Some(ToWindows::Quit));
    drop(s);
    wait_for("the window process to be let go", || !f.windows.connected()).await;

    // A window process that dies with an open on its way: the next one gets it.
    f.windows.open(WindowKind::Diagnostics, Lang::En).unwrap();
    wait_for("a second window process", || starts(&f) == 2).await;
    let mut s = hello(&f, TOKEN).await;
    assert_eq!(next(&mut s).await, Some(ToWindows::Welcome));
    assert!(matches!(
        next(&mut s).await,
        Some(ToWindows::Open {
            kind: WindowKind::Diagnostics,
            ..
        })
    ));
    drop(s);
    wait_for("a third window process, for the lost open", || {
        starts(&f) == 3
    })
    .await;
    let mut s = hello(&f, TOKEN).await;
    assert_eq!(next(&mut s).await, Some(ToWindows::Welcome));
    assert!(matches!(
        next(&mut s).await,
        Some(ToWindows::Open {
            kind: WindowKind::Diagnostics,
            ..
        })
    ));

    // A second launch: Activate opens the default window (signed out: the login).
    let mut second = UnixStream::connect(&f.socket).await.unwrap();
    ipc::write(&mut second, &ToTray::Activate).await.unwrap();
    assert_eq!(
        next(&mut s).await,
        Some(ToWindows::Open {
            kind: WindowKind::Login,
            lang: "en".into()
        })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_tray_on_the_same_socket_hands_over_and_a_stale_socket_is_replaced() {
    let f = start().await;
    // The first tray answers: the second asks it for a window instead of listening.
    assert!(matches!(
        windows::bind(&f.socket).await.unwrap(),
        Bound::AlreadyRunning
    ));
    wait_for("the Activate to start a window process", || starts(&f) == 1).await;
    // A socket file nobody listens on (a tray that died) is replaced.
    let stale = f.dir.path().join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    assert!(stale.exists());
    assert!(matches!(
        windows::bind(&stale).await.unwrap(),
        Bound::Listening(_)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_process_that_keeps_dying_is_not_started_forever() {
    // It dies at once, before saying hello: retried, then given up on.
    let f = start_with("exit 3").await;
    f.windows.open(WindowKind::Center, Lang::En).unwrap();
    // Each start is counted once its process has ended (not when its script ran).
    wait_for("five failed starts", || f.windows.failed_starts() == 5).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(starts(&f), 5, "no sixth start");
    let e = f.windows.open(WindowKind::Center, Lang::En).unwrap_err();
    assert!(e.contains("failed to start 5 times"), "{e}");
    assert_eq!(starts(&f), 5);
}
