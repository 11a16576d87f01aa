//! A private desktop session: session D-Bus, Xvfb, dunst, a recorder of
//! every `Notify` call, gnome-keyring's Secret Service and a tray host.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use zbus::blocking::Connection;
use zbus::zvariant::{OwnedObjectPath, OwnedValue};

use crate::process::{ChildGuard, Env, HarnessError, Result, Stdout, io_err, wait_until};

/// How long a daemon may take to come up on two busy cores (bounds a hang).
pub use taskbell_testkit::START_TIMEOUT;

const NOTIFICATIONS: &str = "org.freedesktop.Notifications";
const SECRETS: &str = "org.freedesktop.secrets";

fn mkdir(path: &Path) -> Result<()> {
    std::fs::create_dir_all(path).map_err(io_err(format!("creating {}", path.display())))
}

fn mkdir_private(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    mkdir(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
        .map_err(io_err(format!("chmod 700 {}", path.display())))
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(io_err(format!("writing {}", path.display())))
}

/// A private session bus (`dbus-daemon --nofork`) listening on a socket in
/// a temporary directory, with no service activation (so nothing starts
/// behind the test's back: every daemon on it is one the test started).
#[derive(Debug)]
pub struct SessionBus {
    child: ChildGuard,
    address: String,
}

impl SessionBus {
    /// Starts the bus; its socket and config live in `dir`.
    pub fn start(dir: &Path) -> Result<Self> {
        mkdir(dir)?;
        let config = dir.join("bus.conf");
        write(
            &config,
            &format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <keep_umask/>
  <listen>unix:dir={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#,
                dir.display()
            ),
        )?;
        let mut cmd = std::process::Command::new("dbus-daemon");
        cmd.arg(format!("--config-file={}", config.display()))
            .arg("--nofork")
            .arg("--print-address=1");
        let mut child = ChildGuard::spawn("dbus-daemon", &mut cmd, dir, Stdout::Collect)?;
        let first = match child.stdout() {
            Some(out) => out.wait_for(START_TIMEOUT, |l| l.starts_with("unix:")),
            None => Err(HarnessError::Parse {
                program: "dbus-daemon".into(),
                detail: "no stdout".into(),
            }),
        };
        let address = match first {
            Ok(a) => a,
            Err(e) => {
                child.ensure_running()?;
                return Err(e);
            }
        };
        Ok(SessionBus { child, address })
    }

    /// The bus address (`unix:path=…,guid=…`).
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The variables a child needs to use this bus.
    pub fn env(&self) -> Env {
        let mut env = Env::new();
        env.set("DBUS_SESSION_BUS_ADDRESS", &self.address);
        env
    }

    /// A fresh client connection to the bus.
    pub fn connect(&self) -> Result<Connection> {
        Ok(zbus::blocking::connection::Builder::address(self.address.as_str())?.build()?)
    }

    /// Whether `name` has an owner on the bus.
    pub fn has_owner(&self, name: &str) -> Result<bool> {
        let conn = self.connect()?;
        let proxy = zbus::blocking::fdo::DBusProxy::new(&conn)?;
        let bus_name = zbus::names::BusName::try_from(name)
            .map_err(|e| HarnessError::Dbus(format!("bad bus name {name}: {e}")))?;
        Ok(proxy.name_has_owner(bus_name)?)
    }

    /// Waits until `name` is owned (a daemon finished starting), failing
    /// early when `daemon` exits.
    pub fn wait_for_name(&self, name: &str, daemon: &mut ChildGuard) -> Result<()> {
        let what = format!("{name} on the session bus");
        let start = Instant::now();
        let mut pause = Duration::from_millis(5);
        loop {
            if self.has_owner(name)? {
                return Ok(());
            }
            daemon.ensure_running()?;
            if start.elapsed() > START_TIMEOUT {
                return Err(HarnessError::Timeout {
                    what,
                    after: START_TIMEOUT,
                });
            }
            thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }

    /// The bus daemon's process guard.
    pub fn process(&mut self) -> &mut ChildGuard {
        &mut self.child
    }
}

/// A virtual X server (`Xvfb -displayfd`) on a display number it picks
/// itself, so two test processes never collide.
#[derive(Debug)]
pub struct Xvfb {
    child: ChildGuard,
    display: String,
}

impl Xvfb {
    /// Starts Xvfb and waits until `xdpyinfo` can talk to it.
    pub fn start(dir: &Path) -> Result<Self> {
        mkdir(dir)?;
        let mut cmd = std::process::Command::new("Xvfb");
        cmd.args([
            "-displayfd",
            "1",
            "-nolisten",
            "tcp",
            "-screen",
            "0",
            "1280x800x24",
        ]);
        let mut child = ChildGuard::spawn("Xvfb", &mut cmd, dir, Stdout::Collect)?;
        let number = match child.stdout() {
            Some(out) => out.wait_for(START_TIMEOUT, |l| {
                !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit())
            }),
            None => Err(HarnessError::Parse {
                program: "Xvfb".into(),
                detail: "no stdout".into(),
            }),
        };
        let number = match number {
            Ok(n) => n,
            Err(e) => {
                child.ensure_running()?;
                return Err(e);
            }
        };
        let display = format!(":{number}");
        wait_until("xdpyinfo to reach Xvfb", START_TIMEOUT, || {
            std::process::Command::new("xdpyinfo")
                .args(["-display", &display])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .ok()
                .filter(|s| s.success())
        })?;
        Ok(Xvfb { child, display })
    }

    /// The display name, e.g. `:3`.
    pub fn display(&self) -> &str {
        &self.display
    }

    /// The variables a child needs to use this display.
    pub fn env(&self) -> Env {
        let mut env = Env::new();
        env.set("DISPLAY", &self.display);
        env
    }

    /// Saves a screenshot of the whole screen to `path` (PNG, with
    /// ImageMagick's `import`).
    pub fn screenshot(&self, path: &Path) -> Result<()> {
        let out = self
            .env()
            .command("import")
            .args(["-window", "root"])
            .arg(path)
            .output()
            .map_err(|source| HarnessError::Spawn {
                program: "import".into(),
                source,
            })?;
        if out.status.success() {
            Ok(())
        } else {
            Err(HarnessError::Parse {
                program: "import -window root".into(),
                detail: String::from_utf8_lossy(&out.stderr).into_owned(),
            })
        }
    }

    /// The ids of the mapped (visible) windows whose title contains `name`
    /// (`xdotool search --onlyvisible --name`).
    pub fn visible_windows(&self, name: &str) -> Result<Vec<u32>> {
        let out = self
            .env()
            .command("xdotool")
            .args(["search", "--onlyvisible", "--name", name])
            .output()
            .map_err(|source| HarnessError::Spawn {
                program: "xdotool".into(),
                source,
            })?;
        // xdotool exits 1 when nothing matches.
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect())
    }

    /// Asks window `id` to close the way a window manager does: a
    /// `WM_PROTOCOLS` client message carrying `WM_DELETE_WINDOW` (the app
    /// decides what closing means; nothing is destroyed behind its back).
    pub fn close_window(&self, id: u32) -> Result<()> {
        use x11rb::connection::Connection as _;
        use x11rb::protocol::xproto::{ClientMessageEvent, ConnectionExt as _, EventMask};
        let x = |e: &dyn std::fmt::Display| HarnessError::X11(e.to_string());
        let (conn, _) = x11rb::connect(Some(&self.display)).map_err(|e| x(&e))?;
        let mut atoms = [0u32; 2];
        for (slot, name) in atoms.iter_mut().zip(["WM_PROTOCOLS", "WM_DELETE_WINDOW"]) {
            *slot = conn
                .intern_atom(false, name.as_bytes())
                .map_err(|e| x(&e))?
                .reply()
                .map_err(|e| x(&e))?
                .atom;
        }
        let [protocols, delete] = atoms;
        let event =
            ClientMessageEvent::new(32, id, protocols, [delete, x11rb::CURRENT_TIME, 0, 0, 0]);
        conn.send_event(false, id, EventMask::NO_EVENT, event)
            .map_err(|e| x(&e))?;
        conn.flush().map_err(|e| x(&e))?;
        Ok(())
    }

    /// Asks every visible window titled like `name` to close, and asks again
    /// every 3 s while `done` says it is not done yet: without a window manager a
    /// close request sent right after mapping is sometimes not acted on when the
    /// machine is busy. Returns how many rounds of requests were sent.
    pub fn close_windows_until(
        &self,
        name: &str,
        timeout: Duration,
        mut done: impl FnMut() -> bool,
    ) -> Result<u32> {
        let mut asked = 0;
        let mut last_ask: Option<Instant> = None;
        let mut failure = None;
        wait_until(&format!("windows {name:?} to close"), timeout, || {
            if done() {
                return Some(());
            }
            if last_ask.is_none_or(|t| t.elapsed() > Duration::from_secs(3)) {
                match self.visible_windows(name) {
                    Ok(ids) if !ids.is_empty() => {
                        for id in ids {
                            if let Err(e) = self.close_window(id) {
                                failure = Some(e);
                            }
                        }
                        asked += 1;
                    }
                    Ok(_) => {}
                    Err(e) => failure = Some(e),
                }
                last_ask = Some(Instant::now());
            }
            None
        })
        .map_err(|e| failure.unwrap_or(e))?;
        Ok(asked)
    }

    /// The X server's process guard.
    pub fn process(&mut self) -> &mut ChildGuard {
        &mut self.child
    }
}

/// One notification as dunst keeps it in its history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DunstEntry {
    /// Dunst's notification id.
    pub id: i64,
    /// The sending application's name.
    pub appname: String,
    /// The summary (title).
    pub summary: String,
    /// The body as sent.
    pub body: String,
}

/// The dunst notification daemon on a [`SessionBus`] and an [`Xvfb`]
/// display, with a config of its own (unlimited history, no limit on shown
/// notifications).
#[derive(Debug)]
pub struct Dunst {
    child: ChildGuard,
    env: Env,
    /// The label [`Dunst::choose_action`] makes the context menu pick.
    pick: PathBuf,
}

impl Dunst {
    /// Starts dunst and waits until it owns `org.freedesktop.Notifications`.
    pub fn start(dir: &Path, bus: &SessionBus, xvfb: &Xvfb) -> Result<Self> {
        let config_home = dir.join("dunst-config");
        mkdir(&config_home.join("dunst"))?;
        let rc = config_home.join("dunst").join("dunstrc");
        // The context menu ("dunstctl context") runs `dmenu` with one line per action
        // ("#<label> (<summary>) [<id>,<key>]"); ours picks the line of the label
        // written to `pick`, as a user choosing it would.
        let pick = config_home.join("dunst").join("pick.txt");
        let menu = config_home.join("dunst").join("pick.sh");
        write(
            &menu,
            &format!(
                "#!/bin/sh\nlabel=$(cat '{}')\ngrep -F \"#$label (\" | head -n 1\n",
                pick.display()
            ),
        )?;
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&menu, std::fs::Permissions::from_mode(0o755))
                .map_err(io_err(format!("making {} executable", menu.display())))?;
        }
        write(
            &rc,
            &format!(
                "[global]\n    notification_limit = 0\n    history_length = 10000\n    \
                 sticky_history = yes\n    idle_threshold = 0\n    show_indicators = no\n    \
                 dmenu = {}\n",
                menu.display()
            ),
        )?;
        let mut env = bus.env();
        env.extend(&xvfb.env());
        env.set("XDG_CONFIG_HOME", &config_home);
        let mut cmd = env.command("dunst");
        cmd.arg("-config").arg(&rc);
        let mut child = ChildGuard::spawn("dunst", &mut cmd, dir, Stdout::Log)?;
        bus.wait_for_name(NOTIFICATIONS, &mut child)?;
        Ok(Dunst { child, env, pick })
    }

    fn dunstctl(&self, args: &[&str]) -> Result<String> {
        let out = self
            .env
            .command("dunstctl")
            .args(args)
            .output()
            .map_err(|source| HarnessError::Spawn {
                program: "dunstctl".into(),
                source,
            })?;
        if !out.status.success() {
            return Err(HarnessError::Parse {
                program: format!("dunstctl {}", args.join(" ")),
                detail: String::from_utf8_lossy(&out.stderr).into_owned(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Closes every shown notification (dunst then moves them to its
    /// history) and returns the whole history, oldest first. Dunst 1.9's
    /// history has no urgency; use [`NotificationRecorder`] for that.
    pub fn history(&self) -> Result<Vec<DunstEntry>> {
        self.dunstctl(&["close-all"])?;
        let text = self.dunstctl(&["history"])?;
        parse_dunst_history(&text)
    }

    /// Closes every notification shown now (they move to dunst's history).
    pub fn close_all(&self) -> Result<()> {
        self.dunstctl(&["close-all"]).map(drop)
    }

    /// Does what a click on the notification at `position` (0: the first shown)
    /// does: invokes its "default" action, which dunst signals as
    /// `ActionInvoked(id, "default")`.
    pub fn invoke_action(&self, position: usize) -> Result<()> {
        self.dunstctl(&["action", &position.to_string()]).map(drop)
    }

    /// Chooses the action labelled `label` on a shown notification through dunst's
    /// context menu, as a user would: dunst then signals `ActionInvoked(id, key)`
    /// from its own bus name. Returns once dunst was asked (the signal follows).
    pub fn choose_action(&self, label: &str) -> Result<()> {
        write(&self.pick, label)?;
        self.dunstctl(&["context"]).map(drop)
    }

    /// The number of notifications dunst shows right now.
    pub fn displayed(&self) -> Result<u64> {
        let text = self.dunstctl(&["count", "displayed"])?;
        text.trim().parse().map_err(|_| HarnessError::Parse {
            program: "dunstctl count displayed".into(),
            detail: text.clone(),
        })
    }

    /// The daemon's process guard.
    pub fn process(&mut self) -> &mut ChildGuard {
        &mut self.child
    }
}

/// Parses `dunstctl history` (D-Bus JSON: `{"type":"aa{sv}","data":[[{...}]]}`).
pub fn parse_dunst_history(text: &str) -> Result<Vec<DunstEntry>> {
    let bad = |detail: &str| HarnessError::Parse {
        program: "dunstctl history".into(),
        detail: format!("{detail}: {}", crate::process::tail(text, 500)),
    };
    let v: Value = serde_json::from_str(text).map_err(|e| bad(&e.to_string()))?;
    let list = v
        .get("data")
        .and_then(|d| d.get(0))
        .and_then(Value::as_array)
        .ok_or_else(|| bad("no data[0] array"))?;
    let field = |o: &Value, k: &str| o.get(k).and_then(|f| f.get("data")).cloned();
    let mut out = Vec::new();
    for o in list {
        let s = |k: &str| {
            field(o, k)
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
        };
        out.push(DunstEntry {
            id: field(o, "id")
                .and_then(|v| v.as_i64())
                .ok_or_else(|| bad("entry without id"))?,
            appname: s("appname"),
            summary: s("summary"),
            body: s("body"),
        });
    }
    out.sort_by_key(|e| e.id);
    Ok(out)
}

/// One `org.freedesktop.Notifications.Notify` call seen on the bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyCall {
    /// The bus name of the caller.
    pub sender: String,
    /// `app_name`.
    pub app_name: String,
    /// `replaces_id`.
    pub replaces_id: u32,
    /// `app_icon`.
    pub app_icon: String,
    /// `summary` (the title).
    pub summary: String,
    /// `body`.
    pub body: String,
    /// `actions` as (key, label) pairs.
    pub actions: Vec<(String, String)>,
    /// The `urgency` hint: 0 low, 1 normal, 2 critical; `None` when absent.
    pub urgency: Option<u8>,
    /// Every hint name present.
    pub hint_names: Vec<String>,
    /// `expire_timeout` in ms (-1: server default, 0: never).
    pub expire_timeout: i32,
    /// The id the daemon answered with (`None` until its reply was seen).
    pub id: Option<u32>,
    /// When the recorder saw the call (monotonic; for intervals).
    pub seen: Instant,
    /// When the recorder saw the call (wall clock, ms since the epoch; for
    /// latencies against server timestamps).
    pub seen_at_ms: i64,
}

impl NotifyCall {
    /// Urgency 2.
    pub fn is_critical(&self) -> bool {
        self.urgency == Some(2)
    }
}

/// One `org.freedesktop.Notifications.CloseNotification` call seen on the bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseCall {
    /// The bus name of the caller.
    pub sender: String,
    /// The bus name it was sent to (the daemon's unique name, or the well-known one).
    pub destination: String,
    /// The notification id to close.
    pub id: u32,
}

#[derive(Debug, Default)]
struct Calls {
    calls: Vec<NotifyCall>,
    closes: Vec<CloseCall>,
    /// `Notify` calls waiting for their reply: (caller, serial) → index in `calls`.
    pending: HashMap<(String, u32), usize>,
    closed: bool,
}

/// Records every `Notify` method call on the bus (a D-Bus monitor
/// connection, like `dbus-monitor`), with urgency, actions and the id the
/// daemon answered with, and every `CloseNotification` call, for tests to
/// wait on.
#[derive(Debug, Clone)]
pub struct NotificationRecorder {
    shared: Arc<(Mutex<Calls>, Condvar)>,
}

type NotifyArgs = (
    String,
    u32,
    String,
    String,
    String,
    Vec<String>,
    HashMap<String, OwnedValue>,
    i32,
);

impl NotificationRecorder {
    /// Becomes a monitor on `bus`; every `Notify` call from now on is
    /// recorded. The reader thread ends when the bus goes away.
    pub fn start(bus: &SessionBus) -> Result<Self> {
        let conn = bus.connect()?;
        let rule = zbus::MatchRule::builder()
            .msg_type(zbus::message::Type::MethodCall)
            .interface(NOTIFICATIONS)?
            .member("Notify")?
            .build();
        let close_rule = zbus::MatchRule::builder()
            .msg_type(zbus::message::Type::MethodCall)
            .interface(NOTIFICATIONS)?
            .member("CloseNotification")?
            .build();
        // Every reply on the bus: those to a recorded `Notify` carry its id.
        let reply_rule = zbus::MatchRule::builder()
            .msg_type(zbus::message::Type::MethodReturn)
            .build();
        zbus::blocking::fdo::MonitoringProxy::new(&conn)?
            .become_monitor(&[rule, close_rule, reply_rule], 0)?;
        let shared = Arc::new((Mutex::new(Calls::default()), Condvar::new()));
        let reader = Arc::clone(&shared);
        let iter = zbus::blocking::MessageIterator::from(conn);
        thread::Builder::new()
            .name("notify-recorder".into())
            .spawn(move || {
                for msg in iter {
                    let Ok(msg) = msg else { break };
                    let seen = Instant::now();
                    let seen_at_ms = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
                        .unwrap_or(0);
                    let header = msg.header();
                    let sender = header.sender().map(|s| s.to_string()).unwrap_or_default();
                    if msg.message_type() == zbus::message::Type::MethodReturn {
                        let to = header
                            .destination()
                            .map(|d| d.to_string())
                            .unwrap_or_default();
                        let Some(serial) = header.reply_serial() else {
                            continue;
                        };
                        let (lock, cvar) = &*reader;
                        let mut g = lock.lock().unwrap_or_else(PoisonError::into_inner);
                        if let Some(i) = g.pending.remove(&(to, serial.get())) {
                            if let Ok(id) = msg.body().deserialize::<u32>() {
                                g.calls[i].id = Some(id);
                                cvar.notify_all();
                            }
                        }
                        continue;
                    }
                    match header.member().map(|m| m.as_str()) {
                        Some("Notify") => {}
                        Some("CloseNotification") => {
                            let Ok(id) = msg.body().deserialize::<u32>() else {
                                continue;
                            };
                            let destination = header
                                .destination()
                                .map(|d| d.to_string())
                                .unwrap_or_default();
                            let (lock, cvar) = &*reader;
                            lock.lock()
                                .unwrap_or_else(PoisonError::into_inner)
                                .closes
                                .push(CloseCall {
                                    sender,
                                    destination,
                                    id,
                                });
                            cvar.notify_all();
                            continue;
                        }
                        _ => continue,
                    }
                    let serial = msg.primary_header().serial_num().get();
                    let Ok(args) = msg.body().deserialize::<NotifyArgs>() else {
                        continue;
                    };
                    let (app_name, replaces_id, app_icon, summary, body, actions, hints, timeout) =
                        args;
                    let urgency = hints.get("urgency").and_then(|v| u8::try_from(v).ok());
                    let mut hint_names: Vec<String> = hints.keys().cloned().collect();
                    hint_names.sort();
                    let call = NotifyCall {
                        sender,
                        app_name,
                        replaces_id,
                        app_icon,
                        summary,
                        body,
                        actions: actions
                            .chunks(2)
                            .map(|c| (c[0].clone(), c.get(1).cloned().unwrap_or_default()))
                            .collect(),
                        urgency,
                        hint_names,
                        expire_timeout: timeout,
                        id: None,
                        seen,
                        seen_at_ms,
                    };
                    let (lock, cvar) = &*reader;
                    let mut g = lock.lock().unwrap_or_else(PoisonError::into_inner);
                    let key = (call.sender.clone(), serial);
                    g.calls.push(call);
                    let i = g.calls.len() - 1;
                    g.pending.insert(key, i);
                    cvar.notify_all();
                }
                let (lock, cvar) = &*reader;
                lock.lock().unwrap_or_else(PoisonError::into_inner).closed = true;
                cvar.notify_all();
            })
            .map_err(io_err("spawning the recorder thread"))?;
        Ok(NotificationRecorder { shared })
    }

    /// Every call recorded so far, in order.
    pub fn calls(&self) -> Vec<NotifyCall> {
        self.shared
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .calls
            .clone()
    }

    /// Every `CloseNotification` call recorded so far, in order.
    pub fn closes(&self) -> Vec<CloseCall> {
        self.shared
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .closes
            .clone()
    }

    /// Waits until a `CloseNotification` call matching `pred` was recorded and returns it.
    pub fn wait_for_close(
        &self,
        timeout: Duration,
        pred: impl Fn(&CloseCall) -> bool,
    ) -> Result<CloseCall> {
        let deadline = Instant::now() + timeout;
        let (lock, cvar) = &*self.shared;
        let mut guard = lock.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(c) = guard.closes.iter().find(|c| pred(c)) {
                return Ok(c.clone());
            }
            let now = Instant::now();
            if guard.closed || now >= deadline {
                return Err(HarnessError::Timeout {
                    what: format!(
                        "a matching CloseNotification call; seen so far: {:?}",
                        guard.closes
                    ),
                    after: timeout,
                });
            }
            guard = cvar
                .wait_timeout(guard, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Waits until a call matching `pred` was recorded and returns it.
    pub fn wait_for(
        &self,
        timeout: Duration,
        pred: impl Fn(&NotifyCall) -> bool,
    ) -> Result<NotifyCall> {
        let deadline = Instant::now() + timeout;
        let (lock, cvar) = &*self.shared;
        let mut guard = lock.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(c) = guard.calls.iter().find(|c| pred(c)) {
                return Ok(c.clone());
            }
            let now = Instant::now();
            if guard.closed || now >= deadline {
                let seen: Vec<String> = guard
                    .calls
                    .iter()
                    .map(|c| format!("{:?} / {:?} (urgency {:?})", c.summary, c.body, c.urgency))
                    .collect();
                return Err(HarnessError::Timeout {
                    what: format!("a matching Notify call; seen so far:\n{}", seen.join("\n")),
                    after: timeout,
                });
            }
            guard = cvar
                .wait_timeout(guard, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

/// An item of the Secret Service, with its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretItem {
    /// The D-Bus object path of the item.
    pub path: String,
    /// Its label.
    pub label: String,
    /// Its lookup attributes.
    pub attributes: HashMap<String, String>,
    /// The secret (lossy UTF-8).
    pub secret: String,
}

/// gnome-keyring-daemon (secrets component only) on a [`SessionBus`],
/// started unlocked: its "login" collection is created and unlocked from a
/// password on stdin, and is the default collection, so Secret Service
/// writes succeed without any prompt.
#[derive(Debug)]
pub struct SecretService {
    child: ChildGuard,
    env: Env,
    address: String,
    data_dir: PathBuf,
}

/// The password of the test login keyring.
pub const KEYRING_PASSWORD: &str = "taskbell-e2e";

impl SecretService {
    /// Starts the daemon with its files under `dir` and waits until it owns
    /// `org.freedesktop.secrets` and has a default collection.
    pub fn start(dir: &Path, bus: &SessionBus) -> Result<Self> {
        let home = dir.join("keyring-home");
        let data = home.join(".local/share");
        let run = dir.join("keyring-run");
        mkdir(&data)?;
        mkdir_private(&run)?;
        let mut env = bus.env();
        env.set("HOME", &home)
            .set("XDG_DATA_HOME", &data)
            .set("XDG_RUNTIME_DIR", &run)
            .remove("GNOME_KEYRING_CONTROL")
            .remove("DISPLAY");
        let mut cmd = env.command("gnome-keyring-daemon");
        cmd.args(["--foreground", "--unlock", "--components=secrets"]);
        let mut child = ChildGuard::spawn_with_stdin(
            "gnome-keyring-daemon",
            &mut cmd,
            dir,
            Stdout::Log,
            Some(KEYRING_PASSWORD.as_bytes()),
        )?;
        bus.wait_for_name(SECRETS, &mut child)?;
        let service = SecretService {
            child,
            env,
            address: bus.address().to_owned(),
            data_dir: data,
        };
        wait_until("a default Secret Service collection", START_TIMEOUT, || {
            service
                .default_collection()
                .ok()
                .filter(|p| p.as_str() != "/")
        })?;
        Ok(service)
    }

    fn connect(&self) -> Result<Connection> {
        Ok(zbus::blocking::connection::Builder::address(self.address.as_str())?.build()?)
    }

    fn proxy<'a>(
        conn: &Connection,
        path: &'a str,
        iface: &'a str,
    ) -> Result<zbus::blocking::Proxy<'a>> {
        Ok(zbus::blocking::Proxy::new(conn, SECRETS, path, iface)?)
    }

    /// The object path of the `default` alias (`/` when there is none).
    pub fn default_collection(&self) -> Result<OwnedObjectPath> {
        let conn = self.connect()?;
        let service = Self::proxy(
            &conn,
            "/org/freedesktop/secrets",
            "org.freedesktop.Secret.Service",
        )?;
        Ok(service.call("ReadAlias", &("default",))?)
    }

    /// Every item of every collection with its secret (read through a
    /// "plain" session), so a test can check where a token ended up without
    /// knowing the attribute names a keyring library picked.
    pub fn items(&self) -> Result<Vec<SecretItem>> {
        let conn = self.connect()?;
        let service = Self::proxy(
            &conn,
            "/org/freedesktop/secrets",
            "org.freedesktop.Secret.Service",
        )?;
        let (_, session): (OwnedValue, OwnedObjectPath) =
            service.call("OpenSession", &("plain", zbus::zvariant::Value::from("")))?;
        let collections: Vec<OwnedObjectPath> = service.get_property("Collections")?;
        let mut items = Vec::new();
        for c in &collections {
            let coll = Self::proxy(&conn, c.as_str(), "org.freedesktop.Secret.Collection")?;
            let paths: Vec<OwnedObjectPath> = coll.get_property("Items")?;
            items.extend(paths);
        }
        let secrets: HashMap<OwnedObjectPath, (OwnedObjectPath, Vec<u8>, Vec<u8>, String)> =
            service.call("GetSecrets", &(&items, &session))?;
        let mut out = Vec::new();
        for path in &items {
            let item = Self::proxy(&conn, path.as_str(), "org.freedesktop.Secret.Item")?;
            let label: String = item.get_property("Label")?;
            let attributes: HashMap<String, String> = item.get_property("Attributes")?;
            let secret = secrets
                .get(path)
                .map(|(_, _, value, _)| String::from_utf8_lossy(value).into_owned())
                .unwrap_or_default();
            out.push(SecretItem {
                path: path.to_string(),
                label,
                attributes,
                secret,
            });
        }
        let _: () = Self::proxy(&conn, session.as_str(), "org.freedesktop.Secret.Session")?
            .call("Close", &())?;
        Ok(out)
    }

    /// `secret-tool store --label=LABEL attr value…` with `secret` on stdin.
    pub fn secret_tool_store(
        &self,
        label: &str,
        attrs: &[(&str, &str)],
        secret: &str,
    ) -> Result<()> {
        let mut cmd = self.env.command("secret-tool");
        cmd.arg("store").arg(format!("--label={label}"));
        for (k, v) in attrs {
            cmd.args([k, v]);
        }
        let out = run_with_stdin(&mut cmd, secret.as_bytes())?;
        if out.status.success() {
            Ok(())
        } else {
            Err(HarnessError::Parse {
                program: "secret-tool store".into(),
                detail: String::from_utf8_lossy(&out.stderr).into_owned(),
            })
        }
    }

    /// `secret-tool lookup attr value…`: the secret, or `None` when absent.
    pub fn secret_tool_lookup(&self, attrs: &[(&str, &str)]) -> Result<Option<String>> {
        let mut cmd = self.env.command("secret-tool");
        cmd.arg("lookup");
        for (k, v) in attrs {
            cmd.args([k, v]);
        }
        let out = run_with_stdin(&mut cmd, b"")?;
        if out.status.success() {
            Ok(Some(String::from_utf8_lossy(&out.stdout).into_owned()))
        } else {
            Ok(None)
        }
    }

    /// Where the daemon keeps its keyring files (so a test can show that a
    /// secret is not in some plain file).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The daemon's process guard.
    pub fn process(&mut self) -> &mut ChildGuard {
        &mut self.child
    }
}

fn run_with_stdin(cmd: &mut std::process::Command, input: &[u8]) -> Result<std::process::Output> {
    use std::io::Write;
    use std::process::Stdio;
    let program = cmd.get_program().to_string_lossy().into_owned();
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| HarnessError::Spawn {
            program: program.clone(),
            source,
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input)
            .map_err(io_err(format!("writing to {program}")))?;
    }
    child
        .wait_with_output()
        .map_err(io_err(format!("waiting for {program}")))
}

/// A system-tray host (trayer) on an [`Xvfb`] display, for the tray app.
#[derive(Debug)]
pub struct Tray {
    child: ChildGuard,
}

impl Tray {
    /// Starts trayer and waits until its window exists.
    pub fn start(dir: &Path, xvfb: &Xvfb) -> Result<Self> {
        let env = xvfb.env();
        let mut cmd = env.command("trayer");
        cmd.args([
            "--edge",
            "top",
            "--align",
            "right",
            "--widthtype",
            "request",
            "--height",
            "32",
            "--transparent",
            "false",
            "--expand",
            "true",
        ]);
        let mut child = ChildGuard::spawn("trayer", &mut cmd, dir, Stdout::Log)?;
        let start = Instant::now();
        loop {
            let found = env
                .command("xdotool")
                .args(["search", "--classname", "trayer"])
                .output()
                .map(|o| o.status.success() && !o.stdout.is_empty())
                .unwrap_or(false);
            if found {
                break;
            }
            child.ensure_running()?;
            if start.elapsed() > START_TIMEOUT {
                return Err(HarnessError::Timeout {
                    what: "the trayer window".into(),
                    after: START_TIMEOUT,
                });
            }
            thread::sleep(Duration::from_millis(50));
        }
        Ok(Tray { child })
    }

    /// The tray host's process guard.
    pub fn process(&mut self) -> &mut ChildGuard {
        &mut self.child
    }
}

/// Which parts a [`Desktop`] starts. The bus always runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DesktopOptions {
    /// Xvfb and dunst (and the Notify recorder).
    pub notifications: bool,
    /// gnome-keyring's Secret Service.
    pub keyring: bool,
    /// A trayer tray host (implies Xvfb).
    pub tray: bool,
}

impl Default for DesktopOptions {
    fn default() -> Self {
        DesktopOptions {
            notifications: true,
            keyring: true,
            tray: false,
        }
    }
}

/// A whole private desktop session in a temporary directory: session bus,
/// and as asked Xvfb + dunst + recorder, Secret Service, tray host, plus a
/// private `HOME` and XDG directories. Dropping it stops everything (in
/// reverse order) and deletes the directory.
#[derive(Debug)]
pub struct Desktop {
    // Field order is drop order: clients before the bus, the bus before the
    // directory that holds its socket.
    tray: Option<Tray>,
    recorder: Option<NotificationRecorder>,
    dunst: Option<Dunst>,
    keyring: Option<SecretService>,
    xvfb: Option<Xvfb>,
    bus: SessionBus,
    env: Env,
    home: PathBuf,
    dir: tempfile::TempDir,
}

impl Desktop {
    /// Starts a session with the default options (notifications and
    /// keyring, no tray).
    pub fn start() -> Result<Self> {
        Self::start_with(DesktopOptions::default())
    }

    /// Starts a session with the given parts.
    pub fn start_with(options: DesktopOptions) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("taskbell-desktop-")
            .tempdir()
            .map_err(io_err("creating the desktop tempdir"))?;
        let root = dir.path().to_path_buf();
        let logs = root.join("logs");
        mkdir(&logs)?;
        let bus = SessionBus::start(&root.join("bus"))?;
        let xvfb = if options.notifications || options.tray {
            Some(Xvfb::start(&logs)?)
        } else {
            None
        };
        let (dunst, recorder) = match (&xvfb, options.notifications) {
            (Some(x), true) => {
                let recorder = NotificationRecorder::start(&bus)?;
                (Some(Dunst::start(&logs, &bus, x)?), Some(recorder))
            }
            _ => (None, None),
        };
        let keyring = if options.keyring {
            Some(SecretService::start(&root.join("keyring"), &bus)?)
        } else {
            None
        };
        let tray = match (&xvfb, options.tray) {
            (Some(x), true) => Some(Tray::start(&logs, x)?),
            _ => None,
        };
        let home = root.join("home");
        let run = root.join("run");
        mkdir(&home)?;
        mkdir_private(&run)?;
        let mut env = bus.env();
        match &xvfb {
            Some(x) => env.extend(&x.env()),
            None => env.remove("DISPLAY"),
        };
        env.set("HOME", &home)
            .set("XDG_CONFIG_HOME", home.join(".config"))
            .set("XDG_DATA_HOME", home.join(".local/share"))
            .set("XDG_CACHE_HOME", home.join(".cache"))
            .set("XDG_STATE_HOME", home.join(".local/state"))
            .set("XDG_RUNTIME_DIR", &run)
            .remove("WAYLAND_DISPLAY")
            .remove("GNOME_KEYRING_CONTROL")
            .remove("TASKBELL_CONFIG_DIR")
            .remove("TASKBELL_DATA_DIR");
        Ok(Desktop {
            tray,
            recorder,
            dunst,
            keyring,
            xvfb,
            bus,
            env,
            home,
            dir,
        })
    }

    /// The variables that put a child process into this session (bus,
    /// display, `HOME`, XDG dirs). Never applied to the test process.
    pub fn env(&self) -> &Env {
        &self.env
    }

    /// A command for `program` inside this session.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> std::process::Command {
        self.env.command(program)
    }

    /// The session's temporary root directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The private `HOME` of child processes.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// Where daemon logs go.
    pub fn log_dir(&self) -> PathBuf {
        self.dir.path().join("logs")
    }

    /// The session bus.
    pub fn bus(&self) -> &SessionBus {
        &self.bus
    }

    /// The X display, when started.
    pub fn xvfb(&self) -> Option<&Xvfb> {
        self.xvfb.as_ref()
    }

    /// dunst, when started.
    pub fn dunst(&self) -> Option<&Dunst> {
        self.dunst.as_ref()
    }

    /// The recorder of `Notify` calls, when notifications were started.
    pub fn recorder(&self) -> Option<&NotificationRecorder> {
        self.recorder.as_ref()
    }

    /// The Secret Service, when started.
    pub fn keyring(&self) -> Option<&SecretService> {
        self.keyring.as_ref()
    }

    /// The tray host, when started.
    pub fn tray(&self) -> Option<&Tray> {
        self.tray.as_ref()
    }

    /// All daemon logs concatenated (for failure messages).
    pub fn logs(&self) -> String {
        let mut out = String::new();
        if let Ok(entries) = std::fs::read_dir(self.log_dir()) {
            for e in entries.flatten() {
                if let Ok(text) = std::fs::read_to_string(e.path()) {
                    out.push_str(&format!("== {}\n{}\n", e.path().display(), text));
                }
            }
        }
        out
    }
}
