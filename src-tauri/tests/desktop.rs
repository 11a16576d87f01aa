//! The real `taskbell-app` binary on a private desktop (harness: `taskbell-e2e`): Xvfb, a
//! session D-Bus, dunst, gnome-keyring and, for the tray, trayer. Screenshots go to
//! `target/screenshots/` for people to look at.
//!
//! - In the tray: starts without any WebKit process, its icon shows in the tray host, the
//!   login summary reaches dunst, a second launch opens the window of the first (and only
//!   then does a WebKit process start).
//! - Through WebKitWebDriver (what `tauri-driver` wraps; the app allows automation when
//!   `TAURI_WEBVIEW_AUTOMATION=true`): the login window shows a wrong password inline,
//!   then signs in and keeps the token in the keyring; a second start signs in from the
//!   keyring by itself, and a live notification appears in the notification center, where
//!   `/` focuses the search, typing narrows the rows, ↓ selects and `m` marks read.

// Test helpers outside `#[test]` functions: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use taskbell_e2e::{
    ChildGuard, Desktop, DesktopOptions, SniWatcher, Stdout, descendants, free_port, wait_until,
    webkit_processes,
};

const APP: &str = env!("CARGO_BIN_EXE_taskbell-app");
/// Bounds every wait (the machine is small and busy); it measures nothing.
const WAIT: Duration = Duration::from_secs(90);

fn screenshots() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Pixels in the top `rows` rows of a screenshot close to `rgb`.
fn count_colour(png: &Path, rows: u32, rgb: [u8; 3]) -> usize {
    let bytes = std::fs::read(png).unwrap();
    let img = tauri::image::Image::from_bytes(&bytes).unwrap();
    let (w, h) = (img.width(), img.height());
    let px = img.rgba();
    let mut n = 0;
    for y in 0..rows.min(h) {
        for x in 0..w {
            let i = ((y * w + x) * 4) as usize;
            if (0..3).all(|c| px[i + c].abs_diff(rgb[c]) <= 24) {
                n += 1;
            }
        }
    }
    n
}

fn app_command(desktop: &Desktop, dirs: &Path) -> Command {
    let mut cmd = desktop.command(APP);
    cmd.env("TASKBELL_CONFIG_DIR", dirs.join("config"))
        .env("TASKBELL_DATA_DIR", dirs.join("data"))
        .env("RUST_LOG", "info,taskbell_server=warn");
    cmd
}

/// The real app on the demo backend, in English, in `desktop`.
fn start_demo_app(desktop: &Desktop, dirs: &Path) -> ChildGuard {
    ChildGuard::spawn(
        "taskbell-app",
        app_command(desktop, dirs).args(["--demo", "--lang", "en"]),
        &desktop.log_dir(),
        Stdout::Log,
    )
    .unwrap()
}

#[test]
fn demo_lives_in_the_tray_without_a_webview_until_a_window_is_opened() {
    let desktop = Desktop::start_with(DesktopOptions {
        notifications: true,
        keyring: true,
        tray: true,
    })
    .unwrap();
    let dirs = desktop.dir().join("app");
    let mut app = start_demo_app(&desktop, &dirs);
    let recorder = desktop.recorder().unwrap();

    // The login summary reaches the notification daemon.
    let welcome = recorder
        .wait_for(WAIT, |c| c.summary == "Signed in")
        .unwrap_or_else(|e| panic!("{e}\n{}\n{}", app.log(), desktop.logs()));
    assert_eq!(welcome.app_name, "TaskBell");
    assert!(welcome.body.contains("张三"), "{welcome:?}");
    let dunst = desktop.dunst().unwrap();
    wait_until("the welcome toast in dunst's history", WAIT, || {
        dunst
            .history()
            .ok()?
            .into_iter()
            .find(|e| e.summary == "Signed in")
    })
    .unwrap();

    // The tray icon (the green "connected" bell) shows in trayer at the top of the screen.
    let shot = screenshots().join("tray-connected.png");
    let xvfb = desktop.xvfb().unwrap();
    wait_until("the green tray icon in a screenshot", WAIT, || {
        xvfb.screenshot(&shot).ok()?;
        (count_colour(&shot, 40, [0x1f, 0x9d, 0x55]) > 100).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}; see {}\n{}", shot.display(), app.log()));

    // Idle in the tray: no web content process at all.
    app.ensure_running().unwrap();
    assert_eq!(
        webkit_processes(app.id()),
        vec![],
        "no webview while only the tray runs"
    );

    // A second launch hands over to the first instance, which opens its window.
    let second = app_command(&desktop, &dirs).output().unwrap();
    assert!(second.status.success(), "second launch: {second:?}");
    wait_until("a WebKit process for the opened window", WAIT, || {
        (!webkit_processes(app.id()).is_empty()).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", app.log()));
    let window_shot = screenshots().join("center-window.png");
    // Give the page a moment to paint before the picture (a picture for people, not a check).
    std::thread::sleep(Duration::from_secs(2));
    xvfb.screenshot(&window_shot).unwrap();

    // Close the window as a window manager does (WM_DELETE_WINDOW): the window and its web
    // process go away, the app stays in the tray.
    let asked = xvfb
        .close_windows_until("TaskBell notifications", WAIT, || {
            webkit_processes(app.id()).is_empty()
        })
        .unwrap_or_else(|e| {
            xvfb.screenshot(&screenshots().join("close-failed.png"))
                .unwrap();
            let still = desktop
                .command("xdotool")
                .args(["search", "--name", "TaskBell"])
                .output()
                .unwrap();
            panic!(
                "{e}: {:?}; windows named TaskBell: {:?}\n{}",
                webkit_processes(app.id()),
                String::from_utf8_lossy(&still.stdout),
                app.log()
            )
        });
    let log = app.log();
    let seen: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("close requested") || l.contains("window destroyed"))
        .collect();
    eprintln!("close requests sent: {asked}; the app saw: {seen:?}");
    app.ensure_running()
        .expect("closing the window must not quit the app");
    // Still in the tray (the tray host may repaint a moment after the window went away).
    let after = screenshots().join("tray-after-close.png");
    wait_until("the green tray icon after the close", WAIT, || {
        xvfb.screenshot(&after).ok()?;
        (count_colour(&after, 40, [0x1f, 0x9d, 0x55]) > 100).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}; see {}\n{}", after.display(), app.log()));
    app.terminate(WAIT).unwrap();
}

/// A minimal W3C WebDriver client for WebKitWebDriver.
struct Driver {
    rt: tokio::runtime::Runtime,
    http: reqwest::Client,
    base: String,
    session: Option<String>,
    process: ChildGuard,
}

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

impl Driver {
    fn start(desktop: &Desktop, env: &[(&str, String)]) -> Driver {
        // A port another test takes between `free_port` and the driver's bind makes the
        // driver exit: it is started again on another port.
        let mut last = String::new();
        for _ in 0..3 {
            let port = free_port().unwrap();
            let mut cmd = desktop.command("WebKitWebDriver");
            cmd.arg(format!("--port={port}"))
                .env("TAURI_WEBVIEW_AUTOMATION", "true");
            for (k, v) in env {
                cmd.env(k, v);
            }
            let process =
                ChildGuard::spawn("WebKitWebDriver", &mut cmd, &desktop.log_dir(), Stdout::Log)
                    .unwrap();
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let mut driver = Driver {
                rt,
                http: taskbell_testkit::http::http(),
                base: format!("http://127.0.0.1:{port}"),
                session: None,
                process,
            };
            let start = std::time::Instant::now();
            loop {
                // An answer, and from our own driver (one that lost the port has exited).
                if driver.call("GET", "/status", None).is_ok()
                    && driver.process.ensure_running().is_ok()
                {
                    return driver;
                }
                if let Err(e) = driver.process.ensure_running() {
                    last = e.to_string();
                    break;
                }
                assert!(start.elapsed() < WAIT, "WebKitWebDriver never answered");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        panic!("WebKitWebDriver did not start: {last}");
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let url = format!("{}{path}", self.base);
        self.rt.block_on(async {
            let req = match method {
                "GET" => self.http.get(url),
                "DELETE" => self.http.delete(url),
                _ => self.http.post(url).json(&body.unwrap_or(json!({}))),
            };
            let resp = req.timeout(WAIT).send().await.map_err(|e| e.to_string())?;
            let status = resp.status();
            let v: Value = resp.json().await.map_err(|e| e.to_string())?;
            if status.is_success() {
                Ok(v["value"].clone())
            } else {
                Err(v["value"].to_string())
            }
        })
    }

    /// Starts the app with `args` under automation; its first window is the session's.
    fn launch(&mut self, args: &[&str]) {
        let caps = json!({"capabilities": {"alwaysMatch": {
            "webkitgtk:browserOptions": {"binary": APP, "args": args}
        }}});
        let v = self
            .call("POST", "/session", Some(caps))
            .unwrap_or_else(|e| panic!("new session {args:?}: {e}\n{}", self.process.log()));
        self.session = Some(v["sessionId"].as_str().unwrap().to_string());
    }

    fn s(&self) -> String {
        format!("/session/{}", self.session.as_deref().unwrap())
    }

    fn find(&self, css: &str) -> Result<String, String> {
        let v = self.call(
            "POST",
            &format!("{}/element", self.s()),
            Some(json!({"using": "css selector", "value": css})),
        )?;
        Ok(v[ELEMENT].as_str().ok_or("no element id")?.to_string())
    }

    fn wait_find(&self, css: &str) -> String {
        wait_until(css, WAIT, || self.find(css).ok()).unwrap()
    }

    fn text(&self, css: &str) -> Result<String, String> {
        let e = self.find(css)?;
        Ok(self
            .call("GET", &format!("{}/element/{e}/text", self.s()), None)?
            .as_str()
            .unwrap_or("")
            .to_string())
    }

    /// The text of the first element matching `css` when it is laid out inside the
    /// viewport with a non-empty box, else `None`.
    fn shown_text(&self, css: &str) -> Result<Option<String>, String> {
        let script = "const e = document.querySelector(arguments[0]); if (!e) return null; \
             const r = e.getBoundingClientRect(); \
             const shown = r.width > 0 && r.height > 0 && r.bottom > 0 && r.right > 0 \
               && r.top < innerHeight && r.left < innerWidth \
               && getComputedStyle(e).visibility === 'visible'; \
             return shown ? e.textContent : null;";
        let v = self.call(
            "POST",
            &format!("{}/execute/sync", self.s()),
            Some(json!({"script": script, "args": [css]})),
        )?;
        Ok(v.as_str().map(str::to_string))
    }

    fn value(&self, css: &str) -> String {
        let e = self.wait_find(css);
        self.call(
            "GET",
            &format!("{}/element/{e}/property/value", self.s()),
            None,
        )
        .unwrap()
        .as_str()
        .unwrap_or("")
        .to_string()
    }

    fn type_into(&self, css: &str, text: &str) {
        let e = self.wait_find(css);
        self.call("POST", &format!("{}/element/{e}/clear", self.s()), None)
            .unwrap();
        self.call(
            "POST",
            &format!("{}/element/{e}/value", self.s()),
            Some(json!({"text": text})),
        )
        .unwrap();
    }

    /// Presses `keys` one after another on whatever has the focus, as a keyboard would
    /// (W3C key actions; `\u{E015}` is ↓, `\u{E00C}` Esc).
    fn press(&self, keys: &str) {
        let actions: Vec<Value> = keys
            .chars()
            .flat_map(|k| {
                let k = k.to_string();
                [
                    json!({"type": "keyDown", "value": k}),
                    json!({"type": "keyUp", "value": k}),
                ]
            })
            .collect();
        self.call(
            "POST",
            &format!("{}/actions", self.s()),
            Some(json!({"actions": [{"type": "key", "id": "keyboard", "actions": actions}]})),
        )
        .unwrap_or_else(|e| panic!("keys {keys:?}: {e}"));
    }

    /// Runs `script` (a function body) in the page with `args`; its return value.
    fn script(&self, script: &str, args: Value) -> Value {
        self.call(
            "POST",
            &format!("{}/execute/sync", self.s()),
            Some(json!({"script": script, "args": args})),
        )
        .unwrap_or_else(|e| panic!("script: {e}"))
    }

    /// The titles of the center's rows in the DOM, top to bottom, with whether each is read.
    fn center_rows(&self) -> Vec<(String, bool)> {
        let v = self.script(
            "return [...document.querySelectorAll('#list li')].map((li) =>                [li.querySelector('.title').textContent, li.classList.contains('read')]);",
            json!([]),
        );
        serde_json::from_value(v).unwrap()
    }

    /// The id of the element that has the focus.
    fn focused_id(&self) -> String {
        let v = self.script("return document.activeElement.id;", json!([]));
        v.as_str().unwrap_or("").to_string()
    }

    fn click(&self, css: &str) {
        let e = self.wait_find(css);
        self.call("POST", &format!("{}/element/{e}/click", self.s()), None)
            .unwrap();
    }

    /// Ends the session and waits until the app it started has exited (so a next launch is
    /// a first instance again, not a second one).
    fn quit(&mut self) {
        if self.session.is_some() {
            let _ = self.call("DELETE", &self.s(), None);
            self.session = None;
            let driver = self.process.id();
            let apps = || -> Vec<u32> {
                descendants(driver)
                    .into_iter()
                    .filter(|(_, c)| c.starts_with("taskbell-app"))
                    .map(|(p, _)| p)
                    .collect()
            };
            // A tray app whose window is gone outlives its session: end the one we started.
            let gone = || apps().is_empty().then_some(());
            if wait_until(
                "the app to exit after the session",
                Duration::from_secs(5),
                gone,
            )
            .is_err()
            {
                for pid in apps() {
                    let _ = Command::new("kill").arg(pid.to_string()).status();
                }
                wait_until("the app to exit after SIGTERM", WAIT, gone).unwrap();
            }
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.quit();
    }
}

#[test]
fn login_window_then_keyring_sign_in_and_a_live_notification_in_the_center() {
    let desktop = Desktop::start_with(DesktopOptions {
        notifications: true,
        keyring: true,
        tray: true,
    })
    .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let server = rt
        .block_on(taskbell_server::start(taskbell_server::ServerConfig {
            test_controls: true,
            ..Default::default()
        }))
        .unwrap();
    let base = server.base_url();
    // A configured platform but no sign-in yet: the app asks for one.
    let dirs = desktop.dir().join("app");
    std::fs::create_dir_all(dirs.join("config")).unwrap();
    std::fs::write(
        dirs.join("config/config.toml"),
        format!("server = {:?}\n", base),
    )
    .unwrap();
    let env = [
        (
            "TASKBELL_CONFIG_DIR",
            dirs.join("config").display().to_string(),
        ),
        ("TASKBELL_DATA_DIR", dirs.join("data").display().to_string()),
        ("RUST_LOG", "info".to_string()),
    ];
    let mut driver = Driver::start(&desktop, &env);
    let xvfb = desktop.xvfb().unwrap();

    // 1. Sign in through the login window.
    driver.launch(&["--open", "login", "--lang", "en"]);
    wait_until("the server prefilled", WAIT, || {
        (driver.value("#server") == base).then_some(())
    })
    .unwrap();
    driver.type_into("#username", "zhangsan");
    driver.type_into("#password", "not-the-password");
    driver.click("#submit");
    wait_until("the inline error", WAIT, || {
        driver
            .text("#error")
            .ok()
            .filter(|t| t == "The user name or password is wrong.")
    })
    .unwrap();
    xvfb.screenshot(&screenshots().join("login-wrong-password.png"))
        .unwrap();
    driver.type_into("#password", "annotate-123");
    driver.click("#submit");
    let recorder = desktop.recorder().unwrap();
    recorder
        .wait_for(WAIT, |c| c.summary == "Signed in")
        .unwrap();
    // The token went to the keyring, nowhere else.
    let keyring = desktop.keyring().unwrap();
    let items = wait_until("a keyring item", WAIT, || {
        keyring.items().ok().filter(|i| !i.is_empty())
    })
    .unwrap();
    assert!(
        items
            .iter()
            .any(|i| i.attributes.values().any(|v| v.contains("zhangsan"))),
        "{items:?}"
    );
    let config = std::fs::read_to_string(dirs.join("config/config.toml")).unwrap();
    assert!(config.contains("zhangsan"), "{config}");
    for item in &items {
        assert!(
            !config.contains(&item.secret),
            "a secret leaked into the config file"
        );
    }
    driver.quit();

    // 2. Start again: signed in from the keyring, the center lists a live notification.
    let relaunched = std::time::Instant::now();
    driver.launch(&["--open", "center", "--lang", "en"]);
    recorder
        .wait_for(WAIT, |c| c.summary == "Signed in" && c.seen >= relaunched)
        .unwrap();
    driver.wait_find("body[data-ready=true]");
    let post = rt.block_on(async {
        taskbell_testkit::http::http()
            .post(format!("{base}/api/test/notify"))
            .json(&json!({"user_id": "1", "type": "task_reviewed", "title": "Task rejected: street view #12",
                          "content": "The boxes are off.", "priority": "high", "data": {"task_id": "12"}}))
            .send()
            .await
    });
    assert!(post.unwrap().status().is_success());
    // The title as laid out on screen: its text, and a box of its own inside the list's
    // viewport. (WebKitWebDriver's element text comes back empty for the center's
    // ellipsised one-line cells, so the page is asked directly.)
    wait_until("the live notification in the center", WAIT, || {
        driver
            .shown_text("#list li.unread .title")
            .ok()
            .flatten()
            .filter(|t| t == "Task rejected: street view #12")
    })
    .unwrap_or_else(|e| panic!("{e}: {:?}", driver.shown_text("#list li.unread .title")));
    recorder
        .wait_for(WAIT, |c| c.summary == "Task rejected: street view #12")
        .unwrap();
    std::thread::sleep(Duration::from_secs(1));
    xvfb.screenshot(&screenshots().join("center-live.png"))
        .unwrap();

    // 3. Triage with the keyboard, in the real webview: a second notification, then `/`
    // focuses the search, typing narrows the rows, Esc clears it, ↓ selects and `m` marks
    // read (through the app, so the unread count follows).
    let post = rt.block_on(async {
        taskbell_testkit::http::http()
            .post(format!("{base}/api/test/notify"))
            .json(
                &json!({"user_id": "1", "type": "mention", "title": "Mentioned in frame 3",
                          "content": "Please check frame 3.", "priority": "normal"}),
            )
            .send()
            .await
    });
    assert!(post.unwrap().status().is_success());
    let both = [
        ("Mentioned in frame 3".to_string(), false),
        ("Task rejected: street view #12".to_string(), false),
    ];
    wait_until("both notifications in the center", WAIT, || {
        (driver.center_rows() == both).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}: {:?}", driver.center_rows()));
    let unread = || driver.text("#unread").unwrap_or_default();
    assert_eq!(unread(), "2 unread");
    driver.press("/");
    wait_until("/ to focus the search", WAIT, || {
        (driver.focused_id() == "search").then_some(())
    })
    .unwrap();
    driver.press("street");
    wait_until("the search to narrow the rows", WAIT, || {
        (driver.center_rows() == both[1..]).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}: {:?}", driver.center_rows()));
    assert_eq!(driver.value("#search"), "street");
    // Esc clears the search; Esc again goes back to the list; ↓ ↓ selects the second row.
    driver.press("\u{E00C}");
    wait_until("Esc to clear the search", WAIT, || {
        (driver.center_rows() == both).then_some(())
    })
    .unwrap();
    driver.press("\u{E00C}\u{E015}\u{E015}m");
    wait_until("m to mark the selected row read", WAIT, || {
        (driver.center_rows()
            == [
                ("Mentioned in frame 3".to_string(), false),
                ("Task rejected: street view #12".to_string(), true),
            ])
        .then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}: {:?}", driver.center_rows()));
    wait_until("the unread count to follow", WAIT, || {
        (unread() == "1 unread").then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}: {}", unread()));
    xvfb.screenshot(&screenshots().join("center-keyboard.png"))
        .unwrap();
    driver.quit();
    rt.block_on(server.shutdown());
}

/// Pixels of an icon file close to `rgb`.
fn icon_colour(file: &Path, rgb: [u8; 3]) -> usize {
    let bytes = std::fs::read(file).unwrap();
    let img = tauri::image::Image::from_bytes(&bytes).unwrap();
    img.rgba()
        .chunks_exact(4)
        .filter(|p| p[3] > 128 && (0..3).all(|c| p[c].abs_diff(rgb[c]) <= 24))
        .count()
}

/// KDE Plasma and GNOME (AppIndicator extension) host tray icons as StatusNotifierItems,
/// not XEmbed windows. With a StatusNotifierWatcher on the bus the app's item registers
/// with it; its icon and state line follow the connection, and its native menu, read and
/// clicked over `com.canonical.dbusmenu` as a panel does, pauses, opens the center and
/// quits.
#[test]
fn statusnotifier_item_shows_state_and_its_dbusmenu_drives_the_app() {
    const GREEN: [u8; 3] = [0x1f, 0x9d, 0x55];
    const BLUE: [u8; 3] = [0x4a, 0x7f, 0xd6];
    let desktop = Desktop::start_with(DesktopOptions {
        notifications: true,
        keyring: true,
        tray: false,
    })
    .unwrap();
    // The host first: libappindicator looks for a watcher when the icon is created.
    let watcher = SniWatcher::start(desktop.bus()).unwrap();
    let dirs = desktop.dir().join("app");
    let mut app = start_demo_app(&desktop, &dirs);
    let item = watcher
        .wait_for_item(WAIT)
        .unwrap_or_else(|e| panic!("{e}\n{}", app.log()));

    // Connected: the state line carries the heartbeat latency (libappindicator sends no
    // tooltip), the item is titled TaskBell, and the icon is the green bell.
    let state = wait_until("the state line with the latency", WAIT, || {
        item.find(|e| e.label.starts_with("Connected · ") && e.label.ends_with(" ms"))
            .ok()
    })
    .unwrap_or_else(|e| panic!("{e}: {:#?}\n{}", item.menu(), app.log()));
    assert!(
        !state.enabled,
        "the state line is information, not an action"
    );
    let props = item.props().unwrap();
    assert_eq!(props.title, "TaskBell", "{props:?}");
    assert_eq!(props.status, "Active", "{props:?}");
    let icon = props
        .icon_file()
        .unwrap_or_else(|| panic!("no icon file: {props:?}"));
    assert!(
        icon_colour(&icon, GREEN) > 200,
        "{} is not the green bell",
        icon.display()
    );
    assert_eq!(icon_colour(&icon, BLUE), 0);
    let user = item.find(|e| e.label.contains("张三")).unwrap();
    assert!(!user.enabled);

    // "Pause notifications" → "30 min", clicked through dbusmenu: paused icon and state.
    let pause = item.find(|e| e.label == "30 min").unwrap();
    let resume = item.find(|e| e.label == "Resume").unwrap();
    assert!(!resume.enabled, "nothing to resume yet");
    item.click(pause.id).unwrap();
    wait_until("the paused state line", WAIT, || {
        item.find(|e| e.label.contains("paused until")).ok()
    })
    .unwrap_or_else(|e| panic!("{e}: {:#?}\n{}", item.menu(), app.log()));
    let paused = wait_until("the blue paused icon", WAIT, || {
        let p = item.props().ok()?;
        let file = p.icon_file()?;
        (icon_colour(&file, BLUE) > 200).then_some(p)
    })
    .unwrap_or_else(|e| panic!("{e}: {:?}", item.props()));
    assert_eq!(paused.status, "Active", "{paused:?}");
    let resume = item.find(|e| e.label == "Resume").unwrap();
    assert!(resume.enabled);
    item.click(resume.id).unwrap();
    wait_until("the state line without a pause", WAIT, || {
        item.find(|e| e.label.starts_with("Connected"))
            .ok()
            .filter(|e| !e.label.contains("paused"))
    })
    .unwrap();

    // "Notifications (N unread)…" opens the center: a web process starts.
    assert_eq!(webkit_processes(app.id()), vec![]);
    let center = item
        .find(|e| e.label.starts_with("Notifications ("))
        .unwrap();
    item.click(center.id).unwrap();
    wait_until("a WebKit process for the center", WAIT, || {
        (!webkit_processes(app.id()).is_empty()).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", app.log()));

    // "Quit TaskBell" ends the app cleanly.
    let quit = item.find(|e| e.label == "Quit TaskBell").unwrap();
    item.click(quit.id).unwrap();
    let status = app
        .wait_timeout(WAIT)
        .unwrap_or_else(|e| panic!("{e}\n{}", app.log()));
    assert!(status.success(), "{status:?}\n{}", app.log());
}
