//! The real `taskbell-tray` on a private desktop (harness: `taskbell-e2e`): Xvfb, a session
//! D-Bus, dunst, gnome-keyring and a StatusNotifierWatcher as KDE and GNOME's
//! AppIndicator extension are.
//!
//! - The tray process maps no WebKit, GTK or GL library; its item shows the state, the
//!   green bell and the menu, and the menu drives the controller.
//! - "Notifications…" starts the window process (`taskbell-app --windows-for`), whose
//!   center calls the tray's controller; closing the center ends that process, and the
//!   next "Notifications…" starts a new one.
//! - A second launch asks the running tray for a window and leaves; "Quit" ends both.

// Test helpers outside `#[test]` functions: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![cfg(target_os = "linux")]

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use taskbell_e2e::{
    ChildGuard, Desktop, DesktopOptions, SniWatcher, Stdout, descendants, heavy_libraries,
    wait_until, webkit_processes,
};

const TRAY: &str = env!("CARGO_BIN_EXE_taskbell-tray");
/// Bounds every wait (the machine is small and busy); it measures nothing.
const WAIT: Duration = Duration::from_secs(90);

fn tray_command(desktop: &Desktop, dirs: &Path) -> Command {
    let mut cmd = desktop.command(TRAY);
    cmd.env("TASKBELL_CONFIG_DIR", dirs.join("config"))
        .env("TASKBELL_DATA_DIR", dirs.join("data"))
        .env(
            "TASKBELL_WINDOWS_PROGRAM",
            taskbell_e2e::binary("taskbell-app").unwrap(),
        )
        .env("RUST_LOG", "info,taskbell_server=warn,taskbell_tray=debug");
    cmd
}

/// Whether `pid` runs (exists and is not a zombie waiting to be reaped).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().to_string())
        })
        .is_some_and(|rest| !rest.starts_with('Z'))
}

/// The window processes under `tray` (`taskbell-app --windows-for …`) that run.
fn window_processes(tray: u32) -> Vec<u32> {
    descendants(tray)
        .into_iter()
        .filter(|(pid, comm)| comm.starts_with("taskbell-app") && alive(*pid))
        .map(|(pid, _)| pid)
        .collect()
}

/// Pixels of an ARGB32 icon close to `rgb`.
fn argb_colour(argb: &[u8], rgb: [u8; 3]) -> usize {
    argb.chunks_exact(4)
        .filter(|p| p[0] > 128 && (0..3).all(|c| p[c + 1].abs_diff(rgb[c]) <= 24))
        .count()
}

#[test]
fn the_tray_maps_no_webview_and_its_windows_come_and_go_in_their_own_process() {
    const GREEN: [u8; 3] = [0x1f, 0x9d, 0x55];
    let desktop = Desktop::start_with(DesktopOptions {
        notifications: true,
        keyring: true,
        tray: false,
    })
    .unwrap();
    let watcher = SniWatcher::start(desktop.bus()).unwrap();
    let dirs = desktop.dir().join("app");
    let mut tray = ChildGuard::spawn(
        "taskbell-tray",
        tray_command(&desktop, &dirs).args(["--demo", "--lang", "en"]),
        &desktop.log_dir(),
        Stdout::Log,
    )
    .unwrap();
    let item = watcher
        .wait_for_item(WAIT)
        .unwrap_or_else(|e| panic!("{e}\n{}", tray.log()));

    // The item: connected with its latency, titled, the green bell with a badge.
    wait_until("the state line with the latency", WAIT, || {
        item.find(|e| e.label.starts_with("Connected · ") && e.label.ends_with(" ms"))
            .ok()
    })
    .unwrap_or_else(|e| panic!("{e}: {:#?}\n{}", item.menu(), tray.log()));
    let props = item.props().unwrap();
    assert_eq!(
        (props.id.as_str(), props.title.as_str()),
        ("taskbell", "TaskBell")
    );
    let (w, h, argb) = item.icon_pixmap().unwrap().expect("an icon pixmap");
    assert_eq!((w, h, argb.len()), (64, 64, 64 * 64 * 4));
    assert!(argb_colour(&argb, GREEN) > 200, "not the green bell");
    assert!(item.find(|e| e.label.contains("张三")).is_ok());

    // No webview, no toolkit, no GL in the tray process, and no window process yet.
    assert_eq!(heavy_libraries(tray.id()), Vec::<String>::new());
    assert_eq!(window_processes(tray.id()), Vec::<u32>::new());

    // The menu drives the controller: pause, then resume.
    item.click(item.find(|e| e.label == "30 min").unwrap().id)
        .unwrap();
    wait_until("the paused state line", WAIT, || {
        item.find(|e| e.label.contains("paused until")).ok()
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", tray.log()));
    item.click(item.find(|e| e.label == "Resume").unwrap().id)
        .unwrap();
    wait_until("no pause", WAIT, || {
        item.find(|e| e.label.starts_with("Connected") && !e.label.contains("paused"))
            .ok()
    })
    .unwrap();

    // "Notifications (N unread)…": a window process starts and shows the center, whose
    // page loads its rows from the tray's controller.
    let open_center = || {
        let entry = item
            .find(|e| e.label.starts_with("Notifications ("))
            .unwrap();
        item.click(entry.id).unwrap();
    };
    open_center();
    let xvfb = desktop.xvfb().unwrap();
    wait_until("the center window", WAIT, || {
        (!xvfb
            .visible_windows("TaskBell notifications")
            .ok()?
            .is_empty())
        .then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", tray.log()));
    // The center's page loads its rows from the tray's controller.
    wait_until("the center's calls", WAIT, || {
        tray.log().contains("cmd=\"list_history\"").then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", tray.log()));
    let first = window_processes(tray.id());
    assert_eq!(first.len(), 1, "{first:?}");
    assert!(
        !webkit_processes(tray.id()).is_empty(),
        "the center runs WebKit"
    );
    assert_eq!(
        heavy_libraries(tray.id()),
        Vec::<String>::new(),
        "the tray itself still maps none"
    );

    // Closing the center ends the window process and its WebKit processes.
    xvfb.close_windows_until("TaskBell notifications", WAIT, || {
        window_processes(tray.id()).is_empty()
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", tray.log()));
    wait_until("no WebKit process", WAIT, || {
        webkit_processes(tray.id()).is_empty().then_some(())
    })
    .unwrap();

    // A second launch asks the running tray for a window and leaves.
    let second = tray_command(&desktop, &dirs)
        .args(["--lang", "en"])
        .output()
        .unwrap();
    assert!(second.status.success(), "{second:?}");
    assert!(
        String::from_utf8_lossy(&second.stdout).contains("already running"),
        "{second:?}"
    );
    wait_until("a window process for the second launch", WAIT, || {
        (window_processes(tray.id()).len() == 1).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", tray.log()));
    assert_ne!(window_processes(tray.id()), first, "a new window process");

    // "Quit TaskBell" ends the tray and its window process.
    let window_pid = window_processes(tray.id())[0];
    item.click(item.find(|e| e.label == "Quit TaskBell").unwrap().id)
        .unwrap();
    let status = tray
        .wait_timeout(WAIT)
        .unwrap_or_else(|e| panic!("{e}\n{}", tray.log()));
    assert!(status.success(), "{status:?}\n{}", tray.log());
    wait_until("the window process to end", WAIT, || {
        (!alive(window_pid)).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", tray.log()));
}
