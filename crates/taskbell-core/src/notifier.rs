//! Showing toasts: the [`Notifier`] trait, the desktop implementation
//! (freedesktop notifications over one persistent D-Bus connection; notify-rust
//! where there is no D-Bus), and a [`RecordingNotifier`] for tests.
//!
//! A missing notification daemon is an error the caller logs; it is never fatal.
//! [`Notifier::show`] blocks for one D-Bus round trip: the engine calls it from a
//! worker thread, never from its event loop.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::delivery::{Toast, Urgency};

/// Why a toast could not be shown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotifyError {
    /// No notification daemon answered on the session bus.
    #[error(
        "no notification daemon is running on the session bus ({0}); notifications are only logged"
    )]
    NoDaemon(String),
    /// The daemon refused or failed.
    #[error("the notification could not be shown: {0}")]
    Failed(String),
}

/// Something that shows toasts.
pub trait Notifier: Send + Sync {
    /// Shows one toast. Blocking; must not wait for the user.
    fn show(&self, toast: &Toast) -> Result<(), NotifyError>;
}

/// What the notification daemon says about itself (`GetServerInformation`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ServerInfo {
    /// Product name, e.g. "dunst".
    pub name: String,
    /// Vendor.
    pub vendor: String,
    /// Version.
    pub version: String,
    /// Supported spec version.
    pub spec_version: String,
}

/// Asks the session bus whether a notification daemon is there.
pub fn probe() -> Result<ServerInfo, NotifyError> {
    probe_platform()
}

#[cfg(all(unix, not(target_os = "macos")))]
fn probe_platform() -> Result<ServerInfo, NotifyError> {
    match notify_rust::get_server_information() {
        Ok(i) => Ok(ServerInfo {
            name: i.name,
            vendor: i.vendor,
            version: i.version,
            spec_version: i.spec_version,
        }),
        Err(e) => Err(NotifyError::NoDaemon(e.to_string())),
    }
}

#[cfg(not(all(unix, not(target_os = "macos"))))]
fn probe_platform() -> Result<ServerInfo, NotifyError> {
    Ok(ServerInfo {
        name: "system".to_string(),
        vendor: "os".to_string(),
        version: String::new(),
        spec_version: String::new(),
    })
}

/// Opens an http(s) URL in the default browser (`xdg-open` on Linux, `open` on macOS).
/// Any other scheme is refused. Does not wait for the browser.
pub fn open_in_browser(url: &str) -> Result<(), NotifyError> {
    let parsed = url::Url::parse(url).map_err(|e| NotifyError::Failed(format!("{url}: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(NotifyError::Failed(format!(
            "refusing to open {url}: only http(s) links are opened"
        )));
    }
    #[cfg(target_os = "macos")]
    let mut cmd = std::process::Command::new("open");
    #[cfg(target_os = "windows")]
    let mut cmd = {
        let mut c = std::process::Command::new("explorer");
        c.arg("/c");
        c
    };
    #[cfg(not(any(target_os = "macos", target_os = "windows")))]
    let mut cmd = std::process::Command::new("xdg-open");
    cmd.arg(parsed.as_str())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = cmd
        .spawn()
        .map_err(|e| NotifyError::Failed(format!("cannot start the browser opener: {e}")))?;
    // Reap the opener in the background so it leaves no zombie.
    std::thread::spawn(move || {
        let _ = child.wait();
    });
    Ok(())
}

/// Opens a vetted task URL when a toast's "Open" action is invoked.
pub type Opener = Arc<dyn Fn(&str) -> Result<(), NotifyError> + Send + Sync>;

/// Desktop notifications: app name "TaskBell", urgency hint, an "Open" action for
/// toasts with a (vetted) link.
///
/// On freedesktop systems (Linux, BSD) it keeps ONE D-Bus connection to the session
/// bus for its whole life, opened at the first toast and opened again only after
/// that connection failed, plus one listener thread for the `ActionInvoked` /
/// `NotificationClosed` signals of every toast it showed. notify-rust connects
/// anew for each toast and keeps a connection and a thread per toast with an
/// action; measured, that was most of the latency between a frame and its toast
/// (docs/benchmarks.md). Elsewhere it uses notify-rust.
#[derive(Clone)]
pub struct DesktopNotifier {
    app_name: String,
    open_label: String,
    opener: Opener,
    #[cfg(all(unix, not(target_os = "macos")))]
    bus: freedesktop::SharedBus,
}

impl fmt::Debug for DesktopNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DesktopNotifier")
            .field("app_name", &self.app_name)
            .field("open_label", &self.open_label)
            .finish_non_exhaustive()
    }
}

impl Default for DesktopNotifier {
    fn default() -> Self {
        DesktopNotifier::new()
    }
}

impl DesktopNotifier {
    /// A notifier on the session bus (`DBUS_SESSION_BUS_ADDRESS`) with the app name
    /// "TaskBell", the action label "Open" and [`open_in_browser`] as the opener.
    pub fn new() -> DesktopNotifier {
        DesktopNotifier {
            app_name: "TaskBell".to_string(),
            open_label: "Open".to_string(),
            opener: Arc::new(open_in_browser),
            #[cfg(all(unix, not(target_os = "macos")))]
            bus: freedesktop::SharedBus::new(None),
        }
    }

    /// A notifier on the D-Bus bus at `address` instead of the session bus named in
    /// the environment (tests and benchmarks with a private bus). Ignored where
    /// notifications do not go through D-Bus.
    pub fn at_address(address: impl Into<String>) -> DesktopNotifier {
        #[cfg(all(unix, not(target_os = "macos")))]
        {
            DesktopNotifier {
                bus: freedesktop::SharedBus::new(Some(address.into())),
                ..DesktopNotifier::new()
            }
        }
        #[cfg(not(all(unix, not(target_os = "macos"))))]
        {
            drop(address.into());
            DesktopNotifier::new()
        }
    }

    /// Sets the label of the "Open" action (localised by the caller).
    pub fn with_open_label(mut self, label: impl Into<String>) -> DesktopNotifier {
        self.open_label = label.into();
        self
    }

    /// Replaces what opens a toast's link when the user clicks it (tests).
    pub fn with_opener(
        mut self,
        opener: impl Fn(&str) -> Result<(), NotifyError> + Send + Sync + 'static,
    ) -> DesktopNotifier {
        self.opener = Arc::new(opener);
        self
    }

    /// The toast's link, if it is one we may open (http or https).
    fn link(toast: &Toast) -> Option<String> {
        toast
            .open_url
            .as_deref()
            .filter(|u| u.starts_with("http://") || u.starts_with("https://"))
            .map(str::to_string)
    }

    fn icon(toast: &Toast) -> &'static str {
        match toast.urgency {
            Urgency::Critical => "dialog-warning",
            _ => "dialog-information",
        }
    }
}

#[cfg(all(unix, not(target_os = "macos")))]
impl Notifier for DesktopNotifier {
    fn show(&self, toast: &Toast) -> Result<(), NotifyError> {
        let link = DesktopNotifier::link(toast);
        let actions: Vec<&str> = if link.is_some() {
            vec![
                DEFAULT_ACTION,
                &self.open_label,
                OPEN_ACTION,
                &self.open_label,
            ]
        } else {
            Vec::new()
        };
        let request = freedesktop::NotifyRequest {
            app_name: &self.app_name,
            icon: DesktopNotifier::icon(toast),
            summary: &toast.title,
            body: &toast.body,
            actions: &actions,
            urgency: match toast.urgency {
                Urgency::Low => 0,
                Urgency::Normal => 1,
                Urgency::Critical => 2,
            },
            timeout_ms: toast
                .timeout_ms
                .map_or(-1, |ms| i32::try_from(ms).unwrap_or(i32::MAX)),
        };
        self.bus.notify(&request, link, &self.opener)
    }
}

/// TaskBell's AppUserModelID on Windows: the installer's Start-menu shortcut
/// carries it (the bundle identifier), so toasts are attributed to TaskBell and
/// stay in the Action Center under its name.
pub const WINDOWS_APP_ID: &str = "dev.taskbell.tray";

/// A toast body is markup-escaped for freedesktop daemons; Windows and macOS
/// show text as it is.
#[cfg(not(all(unix, not(target_os = "macos"))))]
fn plain_text(body: &str) -> String {
    body.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Windows and macOS toasts through notify-rust: WinRT toasts on Windows (attributed
/// to [`WINDOWS_APP_ID`]), `UNUserNotificationCenter` on macOS. Urgency maps to each
/// OS's own notion: on Windows a critical toast uses the "Reminder" scenario (it stays
/// on screen), on macOS the "time-sensitive" interruption level (where the user allows
/// it). An "Open" button and a click on the body both open the link: the response comes
/// back to this process (WinRT's `Activated` event, the notification centre's delegate)
/// and is waited for on a thread of its own that ends when the toast is dismissed.
#[cfg(not(all(unix, not(target_os = "macos"))))]
impl Notifier for DesktopNotifier {
    fn show(&self, toast: &Toast) -> Result<(), NotifyError> {
        use notify_rust::NotificationResponse;
        let link = DesktopNotifier::link(toast);
        let body = plain_text(&toast.body);
        let mut n = notify_rust::Notification::new();
        n.appname(&self.app_name)
            .summary(&toast.title)
            .body(&body)
            .icon(DesktopNotifier::icon(toast))
            .urgency(match toast.urgency {
                Urgency::Low => notify_rust::Urgency::Low,
                Urgency::Normal => notify_rust::Urgency::Normal,
                Urgency::Critical => notify_rust::Urgency::Critical,
            });
        #[cfg(target_os = "windows")]
        n.app_id(WINDOWS_APP_ID);
        if link.is_some() {
            n.action(OPEN_ACTION, &self.open_label);
        }
        if let Some(ms) = toast.timeout_ms {
            n.timeout(notify_rust::Timeout::Milliseconds(ms));
        }
        let handle = n.show().map_err(|e| NotifyError::Failed(e.to_string()))?;
        let Some(url) = link else {
            return Ok(());
        };
        let opener = Arc::clone(&self.opener);
        let spawned = std::thread::Builder::new()
            .name("taskbell-toast-click".to_string())
            .spawn(move || {
                let _ = handle.wait_for_response(move |r: &NotificationResponse| {
                    if is_open(r) {
                        if let Err(e) = opener(&url) {
                            tracing::warn!(error = %e, "could not open the task page");
                        }
                    }
                });
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot wait for a click on the toast");
        }
        Ok(())
    }
}

/// The action key of the "Open" button on every OS.
const OPEN_ACTION: &str = "open";
/// The freedesktop key of a click on a toast's body.
const DEFAULT_ACTION: &str = "default";

/// Whether a toast response asks to open the task: a click on the body or "Open".
/// One rule for every OS: the freedesktop `ActionInvoked` key is mapped to the same
/// response type notify-rust gives on Windows and macOS ([`response_of_action_key`]).
pub fn is_open(response: &notify_rust::NotificationResponse) -> bool {
    match response {
        notify_rust::NotificationResponse::Default => true,
        notify_rust::NotificationResponse::Action(a) => a == OPEN_ACTION,
        _ => false,
    }
}

/// The response a freedesktop `ActionInvoked(id, key)` stands for.
pub fn response_of_action_key(key: &str) -> notify_rust::NotificationResponse {
    if key == DEFAULT_ACTION {
        notify_rust::NotificationResponse::Default
    } else {
        notify_rust::NotificationResponse::Action(key.to_string())
    }
}

/// The freedesktop notification protocol over one persistent zbus connection.
#[cfg(all(unix, not(target_os = "macos")))]
mod freedesktop {
    use std::collections::{BTreeMap, HashMap};
    use std::sync::{Arc, Mutex, PoisonError};
    use std::time::Duration;

    use super::{NotifyError, Opener};

    const NAME: &str = "org.freedesktop.Notifications";
    const PATH: &str = "/org/freedesktop/Notifications";
    /// A daemon that does not answer within this is treated as failed (the worker
    /// thread must not hang on it).
    const CALL_TIMEOUT: Duration = Duration::from_secs(5);
    /// Links kept for toasts the daemon has not reported closed yet; the oldest go
    /// first (some daemons never report persistent toasts closed).
    const MAX_LINKS: usize = 512;

    /// One `Notify` call's arguments.
    pub(super) struct NotifyRequest<'a> {
        pub app_name: &'a str,
        pub icon: &'a str,
        pub summary: &'a str,
        pub body: &'a str,
        pub actions: &'a [&'a str],
        pub urgency: u8,
        pub timeout_ms: i32,
    }

    /// A shown toast's link and the unique bus name of the daemon that showed it:
    /// only that daemon's signals may open it (any other client on the session
    /// bus can emit an `ActionInvoked` signal too).
    struct Link {
        url: String,
        daemon: String,
    }

    type Links = Arc<Mutex<BTreeMap<u32, Link>>>;

    /// The live connection and the links of the toasts shown over it.
    struct Bus {
        conn: zbus::blocking::Connection,
        links: Links,
    }

    impl Drop for Bus {
        fn drop(&mut self) {
            // Ends the listener thread, which holds a clone of the connection.
            let _ = self.conn.clone().close();
        }
    }

    /// The connection shared by every clone of a `DesktopNotifier`.
    #[derive(Clone)]
    pub(super) struct SharedBus {
        address: Option<String>,
        bus: Arc<Mutex<Option<Arc<Bus>>>>,
    }

    fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
        m.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether a call error means "nobody owns the name" rather than "the bus failed".
    fn classify(e: zbus::Error) -> NotifyError {
        let s = e.to_string();
        let missing = match &e {
            zbus::Error::MethodError(name, _, _) => matches!(
                name.as_str(),
                "org.freedesktop.DBus.Error.ServiceUnknown"
                    | "org.freedesktop.DBus.Error.NameHasNoOwner"
            ),
            zbus::Error::FDO(f) => matches!(
                **f,
                zbus::fdo::Error::ServiceUnknown(_) | zbus::fdo::Error::NameHasNoOwner(_)
            ),
            _ => false,
        };
        if missing {
            NotifyError::NoDaemon(s)
        } else {
            NotifyError::Failed(s)
        }
    }

    /// Whether the connection itself is broken (so the next call needs a new one).
    fn connection_broken(e: &zbus::Error) -> bool {
        matches!(e, zbus::Error::InputOutput(_))
    }

    fn timed_out(e: &zbus::Error) -> bool {
        matches!(e, zbus::Error::InputOutput(io) if io.kind() == std::io::ErrorKind::TimedOut)
    }

    impl SharedBus {
        pub(super) fn new(address: Option<String>) -> SharedBus {
            SharedBus {
                address,
                bus: Arc::new(Mutex::new(None)),
            }
        }

        fn connect(&self, opener: &Opener) -> Result<Arc<Bus>, NotifyError> {
            let builder = match &self.address {
                Some(a) => zbus::blocking::connection::Builder::address(a.as_str()),
                None => zbus::blocking::connection::Builder::session(),
            };
            let conn = builder
                .and_then(|b| b.method_timeout(CALL_TIMEOUT).build())
                .map_err(|e| NotifyError::NoDaemon(format!("no session bus: {e}")))?;
            let links: Links = Arc::new(Mutex::new(BTreeMap::new()));
            start_listener(&conn, Arc::clone(&links), Arc::clone(opener));
            tracing::debug!(unique_name = ?conn.unique_name(), "connected to the session bus for notifications");
            Ok(Arc::new(Bus { conn, links }))
        }

        /// The live connection, opening one if there is none.
        fn current(&self, opener: &Opener) -> Result<Arc<Bus>, NotifyError> {
            let mut slot = lock(&self.bus);
            if let Some(bus) = slot.as_ref() {
                return Ok(Arc::clone(bus));
            }
            let bus = self.connect(opener)?;
            *slot = Some(Arc::clone(&bus));
            Ok(bus)
        }

        /// Forgets `bus` (if it is still the current one) after it failed.
        fn forget(&self, bus: &Arc<Bus>) {
            let mut slot = lock(&self.bus);
            if slot.as_ref().is_some_and(|b| Arc::ptr_eq(b, bus)) {
                *slot = None;
            }
        }

        /// Sends one `Notify`; remembers `link` for the toast's "Open" action. A broken
        /// connection is replaced and the call tried once more.
        pub(super) fn notify(
            &self,
            req: &NotifyRequest<'_>,
            link: Option<String>,
            opener: &Opener,
        ) -> Result<(), NotifyError> {
            let mut retried = false;
            loop {
                let bus = self.current(opener)?;
                match call_notify(&bus.conn, req) {
                    Ok((id, daemon)) => {
                        if let Some(url) = link {
                            let mut links = lock(&bus.links);
                            links.insert(id, Link { url, daemon });
                            while links.len() > MAX_LINKS {
                                links.pop_first();
                            }
                        }
                        return Ok(());
                    }
                    // A slow daemon (a timed-out call) is no broken connection: keep it.
                    Err(e) if timed_out(&e) => return Err(NotifyError::Failed(e.to_string())),
                    Err(e) if connection_broken(&e) => {
                        self.forget(&bus);
                        if retried {
                            return Err(NotifyError::Failed(e.to_string()));
                        }
                        tracing::debug!(error = %e, "the notification bus connection broke; reconnecting");
                        retried = true;
                    }
                    Err(e) => return Err(classify(e)),
                }
            }
        }
    }

    /// Sends `Notify`; returns the notification id and the unique bus name of the
    /// daemon that answered.
    fn call_notify(
        conn: &zbus::blocking::Connection,
        req: &NotifyRequest<'_>,
    ) -> Result<(u32, String), zbus::Error> {
        let mut hints: HashMap<&str, zbus::zvariant::Value<'_>> = HashMap::new();
        hints.insert("urgency", zbus::zvariant::Value::U8(req.urgency));
        hints.insert("category", zbus::zvariant::Value::from("im.received"));
        let reply = conn.call_method(
            Some(NAME),
            PATH,
            Some(NAME),
            "Notify",
            &(
                req.app_name,
                0u32,
                req.icon,
                req.summary,
                req.body,
                req.actions,
                hints,
                req.timeout_ms,
            ),
        )?;
        let daemon = reply
            .header()
            .sender()
            .map(ToString::to_string)
            .unwrap_or_default();
        Ok((reply.body().deserialize::<u32>()?, daemon))
    }

    /// One thread per connection: opens the link of a toast whose action was invoked,
    /// forgets the link of a toast that was closed. Ends when the connection closes.
    fn start_listener(conn: &zbus::blocking::Connection, links: Links, opener: Opener) {
        let rule = zbus::MatchRule::builder()
            .msg_type(zbus::message::Type::Signal)
            .interface(NAME)
            .and_then(|r| r.path(PATH))
            .map(|r| r.build());
        let iter = rule
            .and_then(|rule| zbus::blocking::MessageIterator::for_match_rule(rule, conn, Some(64)));
        let iter = match iter {
            Ok(i) => i,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for clicks on notifications; toasts will not open links");
                return;
            }
        };
        let spawned = std::thread::Builder::new()
            .name("taskbell-toast-actions".to_string())
            .spawn(move || {
                for msg in iter {
                    let Ok(msg) = msg else { break };
                    let header = msg.header();
                    let sender = header.sender().map(|s| s.as_str()).unwrap_or_default();
                    match header.member().map(|m| m.as_str()) {
                        Some("ActionInvoked") => {
                            let Ok((id, action)) = msg.body().deserialize::<(u32, String)>() else {
                                continue;
                            };
                            if !super::is_open(&super::response_of_action_key(&action)) {
                                continue;
                            }
                            let url = {
                                let links = lock(&links);
                                match links.get(&id) {
                                    Some(l) if !l.daemon.is_empty() && l.daemon == sender => {
                                        Some(l.url.clone())
                                    }
                                    Some(_) => {
                                        tracing::warn!(
                                            notification = id,
                                            %sender,
                                            "ignored a click signal that did not come from the notification daemon"
                                        );
                                        None
                                    }
                                    None => None,
                                }
                            };
                            if let Some(url) = url {
                                tracing::info!(notification = id, "opening the task page");
                                if let Err(e) = opener(&url) {
                                    tracing::warn!(error = %e, "could not open the task page");
                                }
                            }
                        }
                        Some("NotificationClosed") => {
                            if let Ok((id, _reason)) = msg.body().deserialize::<(u32, u32)>() {
                                let mut links = lock(&links);
                                if links.get(&id).is_some_and(|l| l.daemon == sender) {
                                    links.remove(&id);
                                }
                            }
                        }
                        _ => {}
                    }
                }
                tracing::debug!("the notification listener stopped");
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start the notification listener");
        }
    }
}

/// Collects toasts in memory, for tests; can be told to fail like a missing daemon.
#[derive(Clone, Default)]
pub struct RecordingNotifier {
    inner: Arc<Mutex<Vec<Toast>>>,
    fail: Arc<Mutex<Option<NotifyError>>>,
    count: Arc<tokio::sync::watch::Sender<usize>>,
}

impl fmt::Debug for RecordingNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordingNotifier")
            .field("toasts", &self.toasts().len())
            .finish()
    }
}

impl RecordingNotifier {
    /// An empty recorder.
    pub fn new() -> RecordingNotifier {
        RecordingNotifier::default()
    }

    /// Every toast shown so far, in order.
    pub fn toasts(&self) -> Vec<Toast> {
        match self.inner.lock() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Makes every later `show` fail with `err` (`None` to succeed again).
    pub fn set_failure(&self, err: Option<NotifyError>) {
        match self.fail.lock() {
            Ok(mut g) => *g = err,
            Err(p) => *p.into_inner() = err,
        }
    }

    /// Waits until a toast matching `pred` has been shown (returns it), or `limit`
    /// passes (returns `None`). Looks at toasts shown before the call too.
    pub async fn wait_for(
        &self,
        limit: Duration,
        mut pred: impl FnMut(&Toast) -> bool,
    ) -> Option<Toast> {
        let mut rx = self.count.subscribe();
        let fut = async {
            loop {
                if let Some(t) = self.toasts().into_iter().find(|t| pred(t)) {
                    return Some(t);
                }
                if rx.changed().await.is_err() {
                    return None;
                }
            }
        };
        tokio::time::timeout(limit, fut).await.ok().flatten()
    }

    /// Waits until at least `n` toasts have been shown; returns them all.
    pub async fn wait_for_count(&self, limit: Duration, n: usize) -> Option<Vec<Toast>> {
        let mut rx = self.count.subscribe();
        let fut = async {
            loop {
                let all = self.toasts();
                if all.len() >= n {
                    return Some(all);
                }
                if rx.changed().await.is_err() {
                    return None;
                }
            }
        };
        tokio::time::timeout(limit, fut).await.ok().flatten()
    }
}

impl Notifier for RecordingNotifier {
    fn show(&self, toast: &Toast) -> Result<(), NotifyError> {
        let fail = match self.fail.lock() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        };
        if let Some(e) = fail {
            return Err(e);
        }
        let n = {
            let mut g = match self.inner.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            g.push(toast.clone());
            g.len()
        };
        self.count.send_replace(n);
        Ok(())
    }
}

/// A notifier that only logs (used when no daemon is there and for `--no-toasts`).
#[derive(Debug, Clone, Default)]
pub struct LogNotifier;

impl Notifier for LogNotifier {
    fn show(&self, toast: &Toast) -> Result<(), NotifyError> {
        tracing::info!(title = %toast.title, body = %toast.body, "toast");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One click rule for every OS: freedesktop action keys (Linux) map onto the
    /// responses notify-rust reports on Windows and macOS, and only a body click or
    /// "Open" opens the task.
    #[test]
    fn a_body_click_or_open_opens_on_every_os_and_nothing_else_does() {
        use notify_rust::{CloseReason, NotificationResponse as R};
        assert!(is_open(&response_of_action_key("default")));
        assert!(is_open(&response_of_action_key("open")));
        assert!(is_open(&R::Default));
        assert!(is_open(&R::Action("open".into())));
        assert!(!is_open(&response_of_action_key("snooze")));
        assert!(!is_open(&response_of_action_key("")));
        assert!(!is_open(&R::Closed(CloseReason::Dismissed)));
        assert_eq!(response_of_action_key("default"), R::Default);
    }

    fn toast(title: &str) -> Toast {
        Toast {
            title: title.to_string(),
            body: "b".to_string(),
            urgency: Urgency::Normal,
            open_url: None,
            keys: vec![],
            folded: 1,
            timeout_ms: None,
        }
    }

    #[tokio::test]
    async fn recorder_records_and_wakes_waiters() {
        let r = RecordingNotifier::new();
        let r2 = r.clone();
        let waiter = tokio::spawn(async move {
            r2.wait_for(Duration::from_secs(30), |t| t.title == "two")
                .await
        });
        r.show(&toast("one")).unwrap();
        r.show(&toast("two")).unwrap();
        let got = waiter.await.unwrap().unwrap();
        assert_eq!(got.title, "two");
        assert_eq!(r.toasts().len(), 2);
        assert_eq!(
            r.wait_for_count(Duration::from_secs(1), 2)
                .await
                .unwrap()
                .len(),
            2
        );
    }

    #[tokio::test(start_paused = true)]
    async fn recorder_wait_times_out() {
        let r = RecordingNotifier::new();
        assert!(r.wait_for(Duration::from_secs(5), |_| true).await.is_none());
    }

    #[test]
    fn recorder_failure_mode() {
        let r = RecordingNotifier::new();
        r.set_failure(Some(NotifyError::NoDaemon("none".into())));
        assert!(matches!(r.show(&toast("x")), Err(NotifyError::NoDaemon(_))));
        assert!(r.toasts().is_empty());
        r.set_failure(None);
        r.show(&toast("x")).unwrap();
        assert_eq!(r.toasts().len(), 1);
    }

    #[test]
    fn opener_refuses_other_schemes() {
        let e = open_in_browser("file:///etc/passwd").unwrap_err();
        assert!(e.to_string().contains("only http(s)"), "{e}");
        assert!(open_in_browser("not a url").is_err());
    }
}
