//! The desktop notifier against a real notification daemon: dunst on a
//! private session bus under Xvfb, every `Notify` call read back by a bus
//! monitor. One connection for every toast, urgency and actions as sent, a
//! click (dunst's default action) opening the toast's link once, a missing
//! daemon reported as such, and the same connection used again once a daemon
//! is back. Toast actions (issue 12): Open task, Mark read, Snooze and Review
//! on Notify, chosen in dunst's own context menu (so dunst signals them from its
//! bus name); spoofed signals ignored; withdrawals seen as `CloseNotification`;
//! and, with engines against the real server process, Mark read and Snooze
//! carried out, and a read on one client withdrawing the toast on the other.
//! Mute and sound (issue 12): a muted kind never reaches `Notify` (but is
//! stored), an unmuted one carries the `sound-name` hint.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test helpers: a failed step is a failed test

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use taskbell_core::config::{Config, Paths};
use taskbell_core::credentials::Credentials;
use taskbell_core::delivery::{Toast, ToastAction, ToastActionKind, ToastCard, Urgency};
use taskbell_core::history::History;
use taskbell_core::i18n::Lang;
use taskbell_core::notifier::{
    ActionSink, DesktopNotifier, Notifier, NotifyError, RecordingNotifier,
};
use taskbell_core::supervisor::{
    Command, Engine, EngineHandle, EngineOptions, Event, Timing, sign_in,
};
use taskbell_e2e::{
    Dunst, NotificationRecorder, ServerOptions, ServerProcess, SessionBus, Xvfb, wait_until,
};
use taskbell_server::{DEMO_ANNOTATOR, DEMO_REVIEWER, DemoAccount};

const WAIT: Duration = Duration::from_secs(30);

fn toast(title: &str, urgency: Urgency, open_url: Option<&str>) -> Toast {
    Toast {
        title: title.to_owned(),
        body: format!("body of {title}"),
        urgency,
        open_url: open_url.map(str::to_owned),
        keys: vec![title.to_owned()],
        folded: 1,
        timeout_ms: None,
    }
}

/// A private desktop for toasts: a temp dir, a session bus, Xvfb, a `Notify` recorder and
/// dunst (bound in this order, so dropped in reverse: dunst goes before its bus).
fn dunst_desktop() -> (
    tempfile::TempDir,
    SessionBus,
    Xvfb,
    NotificationRecorder,
    Dunst,
) {
    let dir = tempfile::tempdir().unwrap();
    let bus = SessionBus::start(&dir.path().join("bus")).unwrap();
    let xvfb = Xvfb::start(dir.path()).unwrap();
    let recorder = NotificationRecorder::start(&bus).unwrap();
    let dunst = Dunst::start(dir.path(), &bus, &xvfb).unwrap();
    (dir, bus, xvfb, recorder, dunst)
}

/// A notifier on `bus` whose opener writes the URLs down.
fn notifier(bus: &SessionBus) -> (DesktopNotifier, Arc<Mutex<Vec<String>>>) {
    let opened = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&opened);
    let n = DesktopNotifier::at_address(bus.address()).with_opener(move |url| {
        sink.lock().unwrap().push(url.to_owned());
        Ok(())
    });
    (n, opened)
}

#[test]
fn one_connection_for_every_toast_and_a_click_opens_the_link_once() {
    let (_dir, bus, _xvfb, recorder, dunst) = dunst_desktop();
    let (n, opened) = notifier(&bus);

    let link = "https://platform.example/tasks/task-1006";
    n.show(&toast("low", Urgency::Low, None)).unwrap();
    n.show(&toast("normal", Urgency::Normal, None)).unwrap();
    // Clones share the connection (the engine hands one to its worker thread).
    n.clone()
        .show(&toast("critical", Urgency::Critical, Some(link)))
        .unwrap();
    let critical = recorder
        .wait_for(WAIT, |c| c.summary == "critical")
        .unwrap();
    let calls = recorder.calls();
    assert_eq!(calls.len(), 3, "{calls:#?}");
    assert!(
        calls.iter().all(|c| c.sender == critical.sender),
        "one bus connection for every toast: {calls:#?}"
    );
    let urgencies: Vec<Option<u8>> = calls.iter().map(|c| c.urgency).collect();
    assert_eq!(urgencies, [Some(0), Some(1), Some(2)]);
    assert!(calls.iter().all(|c| c.app_name == "TaskBell"));
    assert!(calls[0].actions.is_empty(), "no link, no action");
    assert_eq!(
        critical.actions,
        [
            ("default".to_owned(), "Open".to_owned()),
            ("open".to_owned(), "Open".to_owned())
        ]
    );
    assert!(critical.hint_names.contains(&"category".to_owned()));
    assert_eq!(critical.app_icon, "dialog-warning");
    assert_eq!(critical.body, "body of critical");

    // Show only the toast with the link, then click it.
    dunst.close_all().unwrap();
    n.show(&toast("with link", Urgency::Normal, Some(link)))
        .unwrap();
    wait_until("dunst to show the toast", WAIT, || {
        (dunst.displayed().ok()? == 1).then_some(())
    })
    .unwrap();
    dunst.invoke_action(0).unwrap();
    let got = wait_until("the click to reach the opener", WAIT, || {
        let o = opened.lock().unwrap().clone();
        (!o.is_empty()).then_some(o)
    })
    .unwrap();
    assert_eq!(got, [link]);
    // Closing it (NotificationClosed) forgets the link; nothing opens twice.
    dunst.close_all().unwrap();
    n.show(&toast("after", Urgency::Normal, None)).unwrap();
    recorder.wait_for(WAIT, |c| c.summary == "after").unwrap();
    assert_eq!(*opened.lock().unwrap(), [link], "opened exactly once");
    let senders: std::collections::BTreeSet<String> =
        recorder.calls().into_iter().map(|c| c.sender).collect();
    assert_eq!(senders.len(), 1, "{senders:?}");
}

/// Any client of the session bus can emit `ActionInvoked`: a spoofed click must
/// open nothing; only the daemon that showed a toast can open its link.
#[test]
fn a_click_signal_from_another_bus_client_opens_nothing() {
    let (_dir, bus, _xvfb, recorder, dunst) = dunst_desktop();
    let (n, opened) = notifier(&bus);

    let bait = "https://platform.example/tasks/bait";
    n.show(&toast("bait", Urgency::Normal, Some(bait))).unwrap();
    recorder.wait_for(WAIT, |c| c.summary == "bait").unwrap();

    // An attacker on the same bus "clicks" every id a fresh daemon may have given.
    let attacker = zbus::blocking::connection::Builder::address(bus.address())
        .unwrap()
        .build()
        .unwrap();
    for id in 1u32..=20 {
        for action in ["default", "open"] {
            attacker
                .emit_signal(
                    None::<&str>,
                    "/org/freedesktop/Notifications",
                    "org.freedesktop.Notifications",
                    "ActionInvoked",
                    &(id, action),
                )
                .unwrap();
        }
    }

    // Then a real click on another toast: the listener sees the spoofed signals first.
    dunst.close_all().unwrap();
    let real = "https://platform.example/tasks/real";
    n.show(&toast("real", Urgency::Normal, Some(real))).unwrap();
    wait_until("dunst to show the toast", WAIT, || {
        (dunst.displayed().ok()? == 1).then_some(())
    })
    .unwrap();
    dunst.invoke_action(0).unwrap();
    wait_until("the real click to reach the opener", WAIT, || {
        opened
            .lock()
            .unwrap()
            .iter()
            .any(|u| u == real)
            .then_some(())
    })
    .unwrap();
    assert_eq!(
        *opened.lock().unwrap(),
        [real],
        "only the daemon's click opened"
    );
}

#[test]
fn a_missing_daemon_is_reported_and_the_connection_serves_the_next_one() {
    let dir = tempfile::tempdir().unwrap();
    let bus = SessionBus::start(&dir.path().join("bus")).unwrap();
    let xvfb = Xvfb::start(dir.path()).unwrap();
    let recorder = NotificationRecorder::start(&bus).unwrap();
    let (n, _) = notifier(&bus);

    // No daemon yet: a clear error, no panic, and nothing hangs.
    let e = n.show(&toast("early", Urgency::Normal, None)).unwrap_err();
    assert!(matches!(e, NotifyError::NoDaemon(_)), "{e:?}");
    assert!(e.to_string().contains("no notification daemon"), "{e}");

    // A daemon arrives: the same notifier shows toasts.
    let first = Dunst::start(&dir.path().join("d1"), &bus, &xvfb).unwrap();
    n.show(&toast("one", Urgency::Normal, None)).unwrap();
    let one = recorder.wait_for(WAIT, |c| c.summary == "one").unwrap();

    // It goes away and another takes its place: still the same connection.
    drop(first);
    wait_until("the daemon to leave the bus", WAIT, || {
        (!bus
            .has_owner("org.freedesktop.Notifications")
            .unwrap_or(true))
        .then_some(())
    })
    .unwrap();
    let e = n.show(&toast("gap", Urgency::Normal, None)).unwrap_err();
    assert!(matches!(e, NotifyError::NoDaemon(_)), "{e:?}");
    let _second = Dunst::start(&dir.path().join("d2"), &bus, &xvfb).unwrap();
    n.show(&toast("two", Urgency::Normal, None)).unwrap();
    let two = recorder.wait_for(WAIT, |c| c.summary == "two").unwrap();
    assert_eq!(one.sender, two.sender);
}

#[test]
fn no_bus_at_all_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let address = format!("unix:path={}", dir.path().join("nothing").display());
    let n = DesktopNotifier::at_address(address);
    let e = n.show(&toast("x", Urgency::Normal, None)).unwrap_err();
    assert!(matches!(e, NotifyError::NoDaemon(_)), "{e:?}");
    assert!(e.to_string().contains("no session bus"), "{e}");
}

// ---- toast actions (issue 12) ---------------------------------------------

fn task_card(title: &str, review: bool) -> ToastCard {
    let url = format!("https://platform.example/tasks/{title}");
    ToastCard {
        toast: toast(title, Urgency::Normal, Some(&url)),
        review_url: review.then(|| format!("{url}/review")),
        sound: None,
    }
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, l)| ((*k).to_owned(), (*l).to_owned()))
        .collect()
}

/// A notifier with an engine's action channel attached (English labels), for the
/// headless CLI (`folded_to_center` false) or the tray app (true).
fn attached_with(
    bus: &SessionBus,
    folded_to_center: bool,
) -> (
    DesktopNotifier,
    Arc<Mutex<Vec<String>>>,
    tokio::sync::mpsc::Receiver<ToastAction>,
) {
    let (n, opened) = notifier(bus);
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    n.attach(ActionSink {
        sender: tx,
        lang: Lang::En,
        folded_to_center,
    });
    (n, opened, rx)
}

/// A notifier with an engine's action channel attached, as the headless CLI has it.
fn attached(
    bus: &SessionBus,
) -> (
    DesktopNotifier,
    Arc<Mutex<Vec<String>>>,
    tokio::sync::mpsc::Receiver<ToastAction>,
) {
    attached_with(bus, false)
}

/// A folded "N new notifications" toast standing for `keys`, without a shared link.
fn folded_card(keys: &[&str]) -> ToastCard {
    ToastCard::plain(Toast {
        title: format!("{} new notifications", keys.len()),
        body: keys.join("\n"),
        urgency: Urgency::Normal,
        open_url: None,
        keys: keys.iter().map(|k| (*k).to_owned()).collect(),
        folded: keys.len(),
        timeout_ms: None,
    })
}

#[test]
fn a_click_on_a_folded_toast_asks_the_center_to_show_its_notifications() {
    let (_dir, bus, _xvfb, recorder, dunst) = dunst_desktop();

    // The headless CLI: no center, so the folded toast offers nothing, as before.
    let (cli, opened, mut cli_rx) = attached_with(&bus, false);
    cli.show_card(&folded_card(&["c1", "c2"])).unwrap();
    let shown = recorder
        .wait_for(WAIT, |c| c.summary == "2 new notifications")
        .unwrap();
    assert!(shown.actions.is_empty(), "{shown:?}");

    // The tray app: a click on the body (dunst's default action) is "Show all".
    dunst.close_all().unwrap();
    let (tray, _, mut rx) = attached_with(&bus, true);
    tray.show_card(&folded_card(&["k1", "k2", "k3"])).unwrap();
    let shown = recorder
        .wait_for(WAIT, |c| c.summary == "3 new notifications")
        .unwrap();
    assert_eq!(shown.actions, pairs(&[("default", "Show all")]));
    wait_until("dunst to show the toast", WAIT, || {
        (dunst.displayed().ok()? == 1).then_some(())
    })
    .unwrap();
    dunst.invoke_action(0).unwrap();
    let got = next_action(&mut rx);
    assert_eq!(got.kind, ToastActionKind::ShowFolded);
    assert_eq!(got.card.toast.keys, ["k1", "k2", "k3"]);
    assert!(opened.lock().unwrap().is_empty(), "no page opened");
    assert!(
        cli_rx.try_recv().is_err(),
        "the CLI's toast reported nothing"
    );
}

/// Waits for the next toast action (polling: the receiver is a tokio one).
fn next_action(rx: &mut tokio::sync::mpsc::Receiver<ToastAction>) -> ToastAction {
    wait_until("a toast action to reach the engine's channel", WAIT, || {
        rx.try_recv().ok()
    })
    .unwrap()
}

#[test]
fn task_toasts_offer_their_actions_and_only_the_daemon_can_choose_them() {
    let (_dir, bus, _xvfb, recorder, dunst) = dunst_desktop();
    let (n, opened, mut rx) = attached(&bus);

    n.show_card(&task_card("plain", false)).unwrap();
    n.show_card(&task_card("reviewable", true)).unwrap();
    n.show_card(&ToastCard::plain(toast("no-task", Urgency::Normal, None)))
        .unwrap();
    let plain = recorder.wait_for(WAIT, |c| c.summary == "plain").unwrap();
    assert_eq!(
        plain.actions,
        pairs(&[
            ("default", "Open task"),
            ("open", "Open task"),
            ("mark_read", "Mark read"),
            ("snooze", "Snooze"),
        ])
    );
    let reviewable = recorder
        .wait_for(WAIT, |c| c.summary == "reviewable")
        .unwrap();
    assert_eq!(
        reviewable.actions.last(),
        Some(&("review".to_owned(), "Review".to_owned()))
    );
    assert_eq!(reviewable.actions.len(), 5);
    let none = recorder.wait_for(WAIT, |c| c.summary == "no-task").unwrap();
    assert!(none.actions.is_empty(), "{none:?}");

    // Another client of the bus "chooses" Mark read and Snooze on every id.
    let attacker = zbus::blocking::connection::Builder::address(bus.address())
        .unwrap()
        .build()
        .unwrap();
    for id in 1u32..=20 {
        for action in ["mark_read", "snooze", "review"] {
            attacker
                .emit_signal(
                    None::<&str>,
                    "/org/freedesktop/Notifications",
                    "org.freedesktop.Notifications",
                    "ActionInvoked",
                    &(id, action),
                )
                .unwrap();
        }
    }

    // Then the user chooses "Mark read" in dunst's menu: dunst signals it.
    dunst.close_all().unwrap();
    n.show_card(&task_card("real", true)).unwrap();
    wait_until("dunst to show the toast", WAIT, || {
        (dunst.displayed().ok()? == 1).then_some(())
    })
    .unwrap();
    dunst.choose_action("Mark read").unwrap();
    let got = next_action(&mut rx);
    assert_eq!(got.kind, ToastActionKind::MarkRead);
    assert_eq!(
        got.card,
        task_card("real", true),
        "the toast as it was shown"
    );
    // "Review" opens the review page through the vetted opener.
    dunst.close_all().unwrap();
    n.show_card(&task_card("review-me", true)).unwrap();
    wait_until("dunst to show the toast", WAIT, || {
        (dunst.displayed().ok()? == 1).then_some(())
    })
    .unwrap();
    dunst.choose_action("Review").unwrap();
    let urls = wait_until("the review page to open", WAIT, || {
        let o = opened.lock().unwrap().clone();
        (!o.is_empty()).then_some(o)
    })
    .unwrap();
    assert_eq!(urls, ["https://platform.example/tasks/review-me/review"]);
    // Nothing else reached the engine: the 60 spoofed signals were ignored.
    std::thread::sleep(Duration::from_millis(300));
    assert!(rx.try_recv().is_err(), "only the daemon's choice counts");
}

#[test]
fn a_withdrawn_toast_is_closed_with_close_notification_once_all_its_keys_are_read() {
    let (_dir, bus, _xvfb, recorder, dunst) = dunst_desktop();
    let (n, _, _rx) = attached(&bus);

    n.show_card(&task_card("one", false)).unwrap();
    let mut folded = toast("folded", Urgency::Normal, None);
    folded.keys = vec!["a".into(), "b".into()];
    folded.folded = 2;
    n.show(&folded).unwrap();
    let one = recorder
        .wait_for(WAIT, |c| c.summary == "one" && c.id.is_some())
        .unwrap();
    let two = recorder
        .wait_for(WAIT, |c| c.summary == "folded" && c.id.is_some())
        .unwrap();
    wait_until("dunst to show both", WAIT, || {
        (dunst.displayed().ok()? == 2).then_some(())
    })
    .unwrap();

    n.withdraw(&["one".to_owned(), "unknown".to_owned()])
        .unwrap();
    let close = recorder
        .wait_for_close(WAIT, |c| c.id == one.id.unwrap())
        .unwrap();
    assert_eq!(close.sender, one.sender, "closed by the notifier");
    assert!(
        close.destination.starts_with(':'),
        "sent to the daemon's unique name: {close:?}"
    );
    wait_until("dunst to close it", WAIT, || {
        (dunst.displayed().ok()? == 1).then_some(())
    })
    .unwrap();
    // A folded toast closes once every key it stands for was read.
    n.withdraw(&["a".to_owned()]).unwrap();
    n.withdraw(&["one".to_owned()]).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(recorder.closes().len(), 1, "{:?}", recorder.closes());
    n.withdraw(&["b".to_owned()]).unwrap();
    recorder
        .wait_for_close(WAIT, |c| c.id == two.id.unwrap())
        .unwrap();
    wait_until("dunst to close the folded toast", WAIT, || {
        (dunst.displayed().ok()? == 0).then_some(())
    })
    .unwrap();
}

// ---- engines against the real server ----------------------------------------

/// Publishes one notification to `to` through the server's test controls; its id.
async fn publish(
    server: &ServerProcess,
    to: DemoAccount,
    kind: &str,
    title: &str,
    task: &str,
) -> String {
    let v: Value = taskbell_testkit::http::http()
        .post(format!("{}/api/test/notify", server.base_url()))
        .json(&json!({"user_id": to.id, "type": kind, "title": title,
            "content": format!("{title} content"), "data": {"task_id": task}}))
        .timeout(WAIT)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["data"]["ids"][to.id]
        .as_str()
        .unwrap_or_else(|| panic!("{v}"))
        .to_owned()
}

/// Signs `who` in (in-memory keyring) and starts an engine with `notifier`.
/// `who` signed in to `server`, the account's files under `dir`, the token in an
/// in-memory keyring: the config the sign-in wrote, the paths and the keyring.
async fn signed_in(
    server: &ServerProcess,
    dir: &Path,
    who: DemoAccount,
) -> (Config, Paths, Credentials) {
    let paths = Paths {
        config_dir: dir.join("config"),
        data_dir: dir.join("data"),
    };
    let creds = Credentials::in_memory();
    let signed = sign_in(
        &paths,
        &creds,
        &server.base_url(),
        who.username,
        who.password,
        false,
    )
    .await
    .expect("sign in");
    (signed.config, paths, creds)
}

async fn start_engine(
    server: &ServerProcess,
    dir: &Path,
    who: DemoAccount,
    notifier: Arc<dyn Notifier>,
    snooze: Duration,
) -> (EngineHandle, Paths) {
    let (config, paths, creds) = signed_in(server, dir, who).await;
    let mut opts = EngineOptions::new(config, paths.clone(), notifier, creds);
    opts.lang = Lang::En;
    opts.timing = Timing {
        clock_jump: Duration::from_secs(3600),
        snooze,
        ..Timing::default()
    };
    let mut h = Engine::start(opts).expect("engine starts");
    wait_event(&mut h, "caught up", |e| matches!(e, Event::CaughtUp { .. })).await;
    (h, paths)
}

async fn wait_event(h: &mut EngineHandle, what: &str, pred: impl Fn(&Event) -> bool) -> Event {
    loop {
        let e = tokio::time::timeout(WAIT, h.events.recv())
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
            .unwrap_or_else(|| panic!("the engine stopped while waiting for {what}"));
        if pred(&e) {
            return e;
        }
    }
}

/// Whether the history in `paths` has `key` read (a second reader, as the CLI is).
fn read_in_history(paths: &Paths, key: &str) -> Option<bool> {
    let h = History::open(&paths.history_db()).ok()?;
    h.get(key).ok().flatten().map(|r| r.read)
}

/// Async `wait_until`: polls `f` until it gives something.
async fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let end = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < end,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mark_read_and_snooze_chosen_in_the_daemon_are_carried_out_by_the_engine() {
    let (dir, bus, _xvfb, recorder, dunst) = dunst_desktop();
    let server = ServerProcess::start(ServerOptions {
        extra_args: vec!["--test-controls".into()],
        ..ServerOptions::default()
    })
    .expect("taskbell-server");
    let notifier = Arc::new(DesktopNotifier::at_address(bus.address()).with_opener(|_| Ok(())));
    let snooze = Duration::from_secs(3);
    let (h, paths) = start_engine(
        &server,
        &dir.path().join("reviewer"),
        DEMO_REVIEWER,
        notifier,
        snooze,
    )
    .await;
    recorder
        .wait_for(WAIT, |c| c.summary == "Signed in")
        .unwrap();

    // A reviewer gets "Review" on a submission, not on other kinds.
    let key = publish(
        &server,
        DEMO_REVIEWER,
        "task_submitted",
        "to-review",
        "task-9",
    )
    .await;
    let shown = recorder
        .wait_for(WAIT, |c| c.summary == "to-review")
        .unwrap();
    let keys: Vec<&str> = shown.actions.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["default", "open", "mark_read", "snooze", "review"]);
    publish(
        &server,
        DEMO_REVIEWER,
        "task_assigned",
        "assigned",
        "task-8",
    )
    .await;
    let assigned = recorder
        .wait_for(WAIT, |c| c.summary == "assigned")
        .unwrap();
    let keys: Vec<&str> = assigned.actions.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["default", "open", "mark_read", "snooze"]);

    // "Mark read", chosen in dunst: read in the history and on the server.
    dunst.close_all().unwrap();
    let before = h.state.borrow().unread;
    // Show only the one to act on.
    let again = publish(
        &server,
        DEMO_REVIEWER,
        "task_submitted",
        "mark-me",
        "task-7",
    )
    .await;
    recorder.wait_for(WAIT, |c| c.summary == "mark-me").unwrap();
    wait_until("dunst to show it", WAIT, || {
        (dunst.displayed().ok()? == 1).then_some(())
    })
    .unwrap();
    dunst.choose_action("Mark read").unwrap();
    eventually("the history to mark it read", || {
        (read_in_history(&paths, &again) == Some(true)).then_some(())
    })
    .await;
    assert_eq!(read_in_history(&paths, &key), Some(false), "only that one");
    eventually("the unread count to follow", || {
        (h.state.borrow().unread == before).then_some(())
    })
    .await;
    let base = server.base_url();
    let token = {
        let v: Value = taskbell_testkit::http::http()
            .post(format!("{base}/api/auth/login"))
            .json(&json!({"username": DEMO_REVIEWER.username, "password": DEMO_REVIEWER.password}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["data"]["access_token"].as_str().unwrap().to_owned()
    };
    let mut server_read = false;
    for _ in 0..100 {
        let v: Value = taskbell_testkit::http::http()
            .get(format!("{base}/api/notifications"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        server_read = v["data"]["list"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["id"] == again.as_str() && n["read"] == true);
        if server_read {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(server_read, "POST /api/notifications/read was called");

    // "Snooze": off the screen, back once after the snooze, then never again.
    dunst.close_all().unwrap();
    publish(
        &server,
        DEMO_REVIEWER,
        "task_submitted",
        "snooze-me",
        "task-6",
    )
    .await;
    recorder
        .wait_for(WAIT, |c| c.summary == "snooze-me")
        .unwrap();
    wait_until("dunst to show it", WAIT, || {
        (dunst.displayed().ok()? == 1).then_some(())
    })
    .unwrap();
    let snoozed_at = std::time::Instant::now();
    dunst.choose_action("Snooze").unwrap();
    let count = || {
        recorder
            .calls()
            .iter()
            .filter(|c| c.summary == "snooze-me")
            .count()
    };
    let back = eventually("the snoozed toast to come back", || {
        (count() == 2).then(|| {
            recorder
                .calls()
                .into_iter()
                .rfind(|c| c.summary == "snooze-me")
        })
    })
    .await
    .unwrap();
    assert!(
        back.seen.duration_since(snoozed_at) >= snooze - Duration::from_millis(200),
        "back after {:?}",
        back.seen.duration_since(snoozed_at)
    );
    assert_eq!(back.actions.len(), 5, "with its actions: {back:?}");
    tokio::time::sleep(snooze * 2).await;
    assert_eq!(count(), 2, "it came back once");
    h.shutdown().await;
}

/// Two clients of the same account: a read on A withdraws B's toast (the server's
/// `read` frame), and B's history has it read.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_read_on_one_client_withdraws_the_toast_on_the_other() {
    let (dir, bus, _xvfb, recorder, dunst) = dunst_desktop();
    let server = ServerProcess::start(ServerOptions {
        extra_args: vec!["--test-controls".into()],
        ..ServerOptions::default()
    })
    .expect("taskbell-server");
    let a_toasts = RecordingNotifier::new();
    let (a, a_paths) = start_engine(
        &server,
        &dir.path().join("a"),
        DEMO_ANNOTATOR,
        Arc::new(a_toasts.clone()),
        Duration::from_secs(3600),
    )
    .await;
    let b_notifier = Arc::new(DesktopNotifier::at_address(bus.address()).with_opener(|_| Ok(())));
    let (b, b_paths) = start_engine(
        &server,
        &dir.path().join("b"),
        DEMO_ANNOTATOR,
        b_notifier,
        Duration::from_secs(3600),
    )
    .await;
    recorder
        .wait_for(WAIT, |c| c.summary == "Signed in")
        .unwrap();
    dunst.close_all().unwrap();

    let key = publish(
        &server,
        DEMO_ANNOTATOR,
        "task_reviewed",
        "rejected",
        "task-5",
    )
    .await;
    let other = publish(&server, DEMO_ANNOTATOR, "task_reviewed", "stays", "task-4").await;
    let on_b = recorder
        .wait_for(WAIT, |c| c.summary == "rejected" && c.id.is_some())
        .unwrap();
    recorder
        .wait_for(WAIT, |c| c.summary == "stays" && c.id.is_some())
        .unwrap();
    wait_until("dunst to show both on B", WAIT, || {
        (dunst.displayed().ok()? == 2).then_some(())
    })
    .unwrap();
    a_toasts
        .wait_for(WAIT, |t| t.keys == [key.clone()])
        .await
        .expect("A shows it too");
    let b_unread = b.state.borrow().unread;

    // A marks it read (as the center or the toast's Mark read does).
    a.commands
        .send(Command::MarkRead {
            keys: vec![key.clone()],
        })
        .await
        .unwrap();
    let close = recorder
        .wait_for_close(WAIT, |c| c.id == on_b.id.unwrap())
        .unwrap_or_else(|e| panic!("{e}\nserver log:\n{}", server.logs()));
    assert_eq!(close.sender, on_b.sender, "B withdrew its own toast");
    wait_until("dunst to close it", WAIT, || {
        (dunst.displayed().ok()? == 1).then_some(())
    })
    .unwrap();
    eventually("B's history to have it read", || {
        (read_in_history(&b_paths, &key) == Some(true)).then_some(())
    })
    .await;
    assert_eq!(read_in_history(&b_paths, &other), Some(false));
    assert_eq!(read_in_history(&a_paths, &key), Some(true));
    eventually("B's unread count to follow", || {
        (b.state.borrow().unread == b_unread - 1).then_some(())
    })
    .await;
    // A withdrew its own toast too (locally, and again on its own read frame).
    assert!(
        a_toasts.withdrawn().contains(&key),
        "{:?}",
        a_toasts.withdrawn()
    );
    assert_eq!(recorder.closes().len(), 1, "{:?}", recorder.closes());
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_muted_kind_shows_no_toast_and_a_shown_one_asks_for_its_sound() {
    use taskbell_core::config::{KindRule, ToastPolicy};
    let (dir, bus, _xvfb, recorder, _dunst) = dunst_desktop();
    let server = ServerProcess::start(ServerOptions {
        extra_args: vec!["--test-controls".into()],
        ..ServerOptions::default()
    })
    .expect("taskbell-server");
    let who = DEMO_ANNOTATOR;
    let (mut config, paths, creds) = signed_in(&server, dir.path(), who).await;
    config.kinds.insert(
        "task_reviewed".into(),
        KindRule {
            policy: ToastPolicy::Mute,
            sound: None,
        },
    );
    config.kinds.insert(
        "task_assigned".into(),
        KindRule {
            policy: ToastPolicy::Show,
            sound: Some("bell".into()),
        },
    );
    let notifier = Arc::new(DesktopNotifier::at_address(bus.address()).with_opener(|_| Ok(())));
    let mut opts = EngineOptions::new(config, paths.clone(), notifier, creds);
    opts.lang = Lang::En;
    let mut h = Engine::start(opts).expect("engine starts");
    wait_event(&mut h, "caught up", |e| matches!(e, Event::CaughtUp { .. })).await;

    // In this order over one socket: once the second is shown, the first was decided.
    let muted = publish(&server, who, "task_reviewed", "muted one", "task-1").await;
    let shown = publish(&server, who, "task_assigned", "shown one", "task-2").await;
    let call = recorder
        .wait_for(WAIT, |c| c.summary == "shown one")
        .expect("the unmuted kind is shown");
    assert!(
        call.hint_names.contains(&"sound-name".to_owned()),
        "{call:?}"
    );
    let calls = recorder.calls();
    assert!(
        calls.iter().all(|c| c.summary != "muted one"),
        "a muted kind is never toasted: {calls:#?}"
    );
    // Stored (and unread) all the same.
    for id in [&muted, &shown] {
        let read = eventually("stored", || read_in_history(&paths, id)).await;
        assert!(!read, "{id} unread");
    }
    h.shutdown().await;
}
