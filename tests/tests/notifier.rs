//! The desktop notifier against a real notification daemon: dunst on a
//! private session bus under Xvfb, every `Notify` call read back by a bus
//! monitor. One connection for every toast, urgency and actions as sent, a
//! click (dunst's default action) opening the toast's link once, a missing
//! daemon reported as such, and the same connection used again once a daemon
//! is back.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test helpers: a failed step is a failed test

use std::sync::{Arc, Mutex};
use std::time::Duration;

use taskbell_core::delivery::{Toast, Urgency};
use taskbell_core::notifier::{DesktopNotifier, Notifier, NotifyError};
use taskbell_e2e::{Dunst, NotificationRecorder, SessionBus, Xvfb, wait_until};

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
    let dir = tempfile::tempdir().unwrap();
    let bus = SessionBus::start(&dir.path().join("bus")).unwrap();
    let xvfb = Xvfb::start(dir.path()).unwrap();
    let recorder = NotificationRecorder::start(&bus).unwrap();
    let dunst = Dunst::start(dir.path(), &bus, &xvfb).unwrap();
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
    let dir = tempfile::tempdir().unwrap();
    let bus = SessionBus::start(&dir.path().join("bus")).unwrap();
    let xvfb = Xvfb::start(dir.path()).unwrap();
    let recorder = NotificationRecorder::start(&bus).unwrap();
    let dunst = Dunst::start(dir.path(), &bus, &xvfb).unwrap();
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
