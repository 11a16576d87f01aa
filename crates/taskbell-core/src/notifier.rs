//! Showing toasts: the [`Notifier`] trait, the desktop implementation
//! (freedesktop notifications over one persistent D-Bus connection; notify-rust
//! where there is no D-Bus), and a [`RecordingNotifier`] for tests.
//!
//! A toast about a task offers "Open task" (also a click on its body), "Mark
//! read", "Snooze" and, for reviewers on submissions and skip requests,
//! "Review", once an engine has [attached](Notifier::attach) itself. Open and
//! Review open a vetted link here; Mark read and Snooze go back to the engine
//! as a [`ToastAction`]. [`Notifier::withdraw`] closes the toasts of
//! notifications read elsewhere.
//!
//! A missing notification daemon is an error the caller logs; it is never fatal.
//! [`Notifier::show`] blocks for one D-Bus round trip: the engine calls it from a
//! worker thread, never from its event loop.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::delivery::{Toast, ToastAction, ToastActionKind, ToastCard, Urgency};
use crate::i18n::{Lang, Msg, tr};

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

    /// Shows one toast with its actions (the engine calls this). The default
    /// shows the plain toast.
    fn show_card(&self, card: &ToastCard) -> Result<(), NotifyError> {
        self.show(&card.toast)
    }

    /// Closes the toasts standing for these notification keys that are still on
    /// screen (a folded toast once every key it stands for was withdrawn).
    /// Blocking, like [`Notifier::show`]. The default does nothing.
    fn withdraw(&self, keys: &[String]) -> Result<(), NotifyError> {
        let _ = keys;
        Ok(())
    }

    /// Reports "Mark read" and "Snooze" to `sink` from now on (an engine calls
    /// this when it starts; the last one wins). Without a sink a toast offers
    /// only "Open". The default ignores it.
    fn attach(&self, sink: ActionSink) {
        let _ = sink;
    }
}

/// Where a notifier reports what the user chose on a toast, and the language
/// of the action labels.
#[derive(Debug, Clone)]
pub struct ActionSink {
    /// The engine's input.
    pub sender: tokio::sync::mpsc::Sender<ToastAction>,
    /// The language of the action labels.
    pub lang: Lang,
    /// Whether a click on a folded toast ("N new notifications") is reported as
    /// [`ToastActionKind::ShowFolded`]: only where a notification center can show
    /// them (the tray app). Otherwise a folded toast offers what it did before:
    /// "Open" when all its notifications share one link, else nothing.
    pub folded_to_center: bool,
}

impl ActionSink {
    /// Reports one choice without blocking; a full or closed channel is logged.
    pub fn report(&self, action: ToastAction) {
        if let Err(e) = self.sender.try_send(action) {
            tracing::warn!(error = %e, "a toast action could not be handed to the engine");
        }
    }
}

/// The action keys a toast offers, as (key, label) pairs in order.
///
/// With an engine attached, a toast with a task offers "Open task" (also the
/// body click, `default`), "Mark read", "Snooze" and, with a review link,
/// "Review"; without one, a toast with a link offers only "Open". With an
/// engine that has a center (`center`), the body click of a folded toast is
/// "Show all" instead (its buttons stay as they were).
fn action_pairs(
    card: &ToastCard,
    labels: &Labels,
    attached: bool,
    center: bool,
) -> Vec<(&'static str, String)> {
    let mut pairs = plain_action_pairs(card, labels, attached);
    if center && card.is_folded() {
        pairs.retain(|(k, _)| *k != DEFAULT_ACTION);
        pairs.insert(0, (DEFAULT_ACTION, labels.show_all.clone()));
    }
    pairs
}

/// The action pairs of [`action_pairs`] without a center.
fn plain_action_pairs(
    card: &ToastCard,
    labels: &Labels,
    attached: bool,
) -> Vec<(&'static str, String)> {
    let link = DesktopNotifier::link(&card.toast).is_some();
    if attached && card.has_task() && link {
        let mut v = vec![
            (DEFAULT_ACTION, labels.open_task.clone()),
            (OPEN_ACTION, labels.open_task.clone()),
            (MARK_READ_ACTION, labels.mark_read.clone()),
            (SNOOZE_ACTION, labels.snooze.clone()),
        ];
        if vetted(card.review_url.as_deref()).is_some() {
            v.push((REVIEW_ACTION, labels.review.clone()));
        }
        v
    } else if link {
        vec![
            (DEFAULT_ACTION, labels.open.clone()),
            (OPEN_ACTION, labels.open.clone()),
        ]
    } else {
        Vec::new()
    }
}

/// An http(s) link, or nothing.
fn vetted(url: Option<&str>) -> Option<String> {
    url.filter(|u| u.starts_with("http://") || u.starts_with("https://"))
        .map(str::to_string)
}

/// The labels of a toast's actions.
#[derive(Debug, Clone)]
struct Labels {
    open: String,
    open_task: String,
    mark_read: String,
    snooze: String,
    review: String,
    show_all: String,
}

impl Labels {
    fn new(lang: Lang, open: String) -> Labels {
        Labels {
            open,
            open_task: tr(lang, Msg::OpenTask),
            mark_read: tr(lang, Msg::MarkRead),
            snooze: tr(lang, Msg::Snooze),
            review: tr(lang, Msg::Review),
            show_all: tr(lang, Msg::ShowAll),
        }
    }
}

/// The sink and the labels, shared by every clone of a notifier and its listener.
#[derive(Debug)]
struct Attached {
    sink: Option<ActionSink>,
    labels: Labels,
}

type SharedAttached = Arc<Mutex<Attached>>;

fn lock_attached(a: &SharedAttached) -> std::sync::MutexGuard<'_, Attached> {
    a.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
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

/// Opens an http(s) URL in the default browser (`xdg-open` on Linux, `open` on macOS,
/// the URL protocol handler on Windows).
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
    // Explorer has no switch to open a URL and splits its argument at `,` and `=`;
    // the URL protocol handler passes it to ShellExecute as it is.
    #[cfg(target_os = "windows")]
    let mut cmd = {
        let mut c = std::process::Command::new("rundll32.exe");
        c.arg("url.dll,FileProtocolHandler");
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
    attached: SharedAttached,
    opener: Opener,
    /// Whether a thread waits for the user's response to a toast with a link (the
    /// Windows/macOS branch; see [`DesktopNotifier::without_click_wait`]).
    wait_for_clicks: bool,
    #[cfg(all(unix, not(target_os = "macos")))]
    bus: freedesktop::SharedBus,
}

impl fmt::Debug for DesktopNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DesktopNotifier")
            .field("app_name", &self.app_name)
            .field("wait_for_clicks", &self.wait_for_clicks)
            .field("labels", &lock_attached(&self.attached).labels)
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
    /// "TaskBell", the action label "Open" (the other labels in English until an
    /// engine attaches with its language) and [`open_in_browser`] as the opener.
    pub fn new() -> DesktopNotifier {
        DesktopNotifier {
            app_name: "TaskBell".to_string(),
            attached: Arc::new(Mutex::new(Attached {
                sink: None,
                labels: Labels::new(Lang::En, "Open".to_string()),
            })),
            opener: Arc::new(open_in_browser),
            wait_for_clicks: true,
            #[cfg(all(unix, not(target_os = "macos")))]
            bus: freedesktop::SharedBus::new(None),
        }
    }

    /// Shows toasts without waiting for clicks on them where the response needs the
    /// main thread's run loop (macOS), for processes that do not run one (the
    /// headless `taskbell`). No effect on Linux, where clicks come over D-Bus.
    pub fn without_click_wait(mut self) -> DesktopNotifier {
        self.wait_for_clicks = !cfg!(target_os = "macos");
        self
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
    pub fn with_open_label(self, label: impl Into<String>) -> DesktopNotifier {
        lock_attached(&self.attached).labels.open = label.into();
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
        vetted(toast.open_url.as_deref())
    }

    /// The actions `card` offers now, and whether an engine is attached.
    fn actions_of(&self, card: &ToastCard) -> Vec<(&'static str, String)> {
        let a = lock_attached(&self.attached);
        let center = a.sink.as_ref().is_some_and(|s| s.folded_to_center);
        action_pairs(card, &a.labels, a.sink.is_some(), center)
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
        self.show_card(&ToastCard::plain(toast.clone()))
    }

    fn show_card(&self, card: &ToastCard) -> Result<(), NotifyError> {
        let toast = &card.toast;
        let pairs = self.actions_of(card);
        let actions: Vec<&str> = pairs.iter().flat_map(|(k, l)| [*k, l.as_str()]).collect();
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
            sound: card.sound.as_deref(),
        };
        self.bus
            .notify(&request, card, &self.opener, &self.attached)
    }

    fn withdraw(&self, keys: &[String]) -> Result<(), NotifyError> {
        self.bus.withdraw(keys)
    }

    fn attach(&self, sink: ActionSink) {
        let mut a = lock_attached(&self.attached);
        let open = a.labels.open.clone();
        a.labels = Labels::new(sink.lang, open);
        a.sink = Some(sink);
    }
}

/// TaskBell's AppUserModelID on Windows: the installer's Start-menu shortcut
/// carries it (the bundle identifier), so toasts are attributed to TaskBell and
/// stay in the Action Center under its name.
pub const WINDOWS_APP_ID: &str = "dev.taskbell.tray";

/// TaskBell's bundle identifier on macOS (tauri.conf.json `identifier`).
pub const MACOS_BUNDLE_ID: &str = "dev.taskbell.tray";

/// Makes notify-rust attribute toasts to TaskBell's bundle, once (by default it
/// borrows another application's identity).
#[cfg(target_os = "macos")]
fn macos_identity() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if let Err(e) = notify_rust::set_application(MACOS_BUNDLE_ID) {
            tracing::warn!(error = %e, "toasts are not attributed to TaskBell's bundle");
        }
    });
}

/// A toast body is markup-escaped for freedesktop daemons; Windows and macOS
/// show text as it is.
#[cfg(not(all(unix, not(target_os = "macos"))))]
fn plain_text(body: &str) -> String {
    body.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Windows and macOS toasts through notify-rust: WinRT toasts on Windows (attributed
/// to [`WINDOWS_APP_ID`]), `NSUserNotificationCenter` on macOS (notify-rust's default
/// backend, attributed to [`MACOS_BUNDLE_ID`]). Urgency: on Windows a critical toast
/// uses the "Reminder" scenario (it stays on screen); notify-rust 4.19 offers urgency
/// on macOS only with its preview `UNUserNotificationCenter` backend, which TaskBell
/// does not enable, so macOS toasts have one level. The same action ids as on Linux ("Open task", "Mark read", "Snooze", "Review";
/// a click on the body opens the task): the response comes back to this process (WinRT's
/// `Activated` event, the notification centre's delegate) and is waited for on a thread
/// of its own that ends when the toast is dismissed; [`chosen`] maps it, as on Linux.
/// Withdrawing is not supported here (notify-rust cannot close a toast on these OSes).
#[cfg(not(all(unix, not(target_os = "macos"))))]
impl Notifier for DesktopNotifier {
    fn show(&self, toast: &Toast) -> Result<(), NotifyError> {
        self.show_card(&ToastCard::plain(toast.clone()))
    }

    fn attach(&self, sink: ActionSink) {
        let mut a = lock_attached(&self.attached);
        let open = a.labels.open.clone();
        a.labels = Labels::new(sink.lang, open);
        a.sink = Some(sink);
    }

    fn show_card(&self, card: &ToastCard) -> Result<(), NotifyError> {
        use notify_rust::NotificationResponse;
        let toast = &card.toast;
        let pairs = self.actions_of(card);
        let body = plain_text(&toast.body);
        let mut n = notify_rust::Notification::new();
        n.appname(&self.app_name)
            .summary(&toast.title)
            .body(&body)
            .icon(DesktopNotifier::icon(toast));
        #[cfg(target_os = "windows")]
        n.app_id(WINDOWS_APP_ID).urgency(match toast.urgency {
            Urgency::Low => notify_rust::Urgency::Low,
            Urgency::Normal => notify_rust::Urgency::Normal,
            Urgency::Critical => notify_rust::Urgency::Critical,
        });
        #[cfg(target_os = "macos")]
        macos_identity();
        // The body click is the platform's own; only the buttons are listed.
        for (key, label) in pairs.iter().filter(|(k, _)| *k != DEFAULT_ACTION) {
            n.action(key, label);
        }
        if let Some(ms) = toast.timeout_ms {
            n.timeout(notify_rust::Timeout::Milliseconds(ms));
        }
        if let Some(sound) = &card.sound {
            #[cfg(target_os = "windows")]
            n.sound_name(windows_sound_name(sound));
            #[cfg(not(target_os = "windows"))]
            n.sound_name(sound);
        }
        let handle = n.show().map_err(|e| NotifyError::Failed(e.to_string()))?;
        // macOS reports clicks through the main run loop, which only the tray app runs:
        // without it the waiting thread would never end.
        if pairs.is_empty() || !self.wait_for_clicks {
            return Ok(());
        }
        let opener = Arc::clone(&self.opener);
        let attached = Arc::clone(&self.attached);
        let card = card.clone();
        let spawned = std::thread::Builder::new()
            .name("taskbell-toast-click".to_string())
            .spawn(move || {
                let _ = handle.wait_for_response(move |r: &NotificationResponse| {
                    carry_out(chosen_on(&card, r, &attached), &card, &opener, &attached);
                });
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot wait for a click on the toast");
        }
        Ok(())
    }
}

/// The sound names a Windows toast knows (tauri-winrt-notification's `Sound`).
const WINDOWS_SOUNDS: [&str; 25] = [
    "Default", "IM", "Mail", "Reminder", "SMS", "Alarm", "Alarm2", "Alarm3", "Alarm4", "Alarm5",
    "Alarm6", "Alarm7", "Alarm8", "Alarm9", "Alarm10", "Call", "Call2", "Call3", "Call4", "Call5",
    "Call6", "Call7", "Call8", "Call9", "Call10",
];

/// The Windows toast sound for a configured sound: a Windows sound name as it is,
/// anything else (a freedesktop name such as `message-new-instant`) `Default`; an
/// unknown name would silence the toast.
pub fn windows_sound_name(name: &str) -> &str {
    if WINDOWS_SOUNDS.contains(&name) {
        name
    } else {
        "Default"
    }
}

/// The action key of the "Open" button on every OS.
pub const OPEN_ACTION: &str = "open";
/// The freedesktop key of a click on a toast's body.
pub const DEFAULT_ACTION: &str = "default";
/// The action key of "Mark read" on every OS.
pub const MARK_READ_ACTION: &str = "mark_read";
/// The action key of "Snooze" on every OS.
pub const SNOOZE_ACTION: &str = "snooze";
/// The action key of "Review" on every OS.
pub const REVIEW_ACTION: &str = "review";

/// What a response on a toast asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chosen {
    /// Open the task page (a click on the body, or "Open task").
    Open,
    /// Open the review page.
    Review,
    /// Something the engine carries out.
    Engine(ToastActionKind),
    /// Nothing (closed, dismissed, an unknown key).
    Nothing,
}

/// What a toast response asks for. One rule for every OS: the freedesktop
/// `ActionInvoked` key is mapped to the response notify-rust gives on Windows
/// and macOS ([`response_of_action_key`]) first.
pub fn chosen(response: &notify_rust::NotificationResponse) -> Chosen {
    match response {
        notify_rust::NotificationResponse::Default => Chosen::Open,
        notify_rust::NotificationResponse::Action(a) => match a.as_str() {
            OPEN_ACTION => Chosen::Open,
            REVIEW_ACTION => Chosen::Review,
            MARK_READ_ACTION => Chosen::Engine(ToastActionKind::MarkRead),
            SNOOZE_ACTION => Chosen::Engine(ToastActionKind::Snooze),
            _ => Chosen::Nothing,
        },
        _ => Chosen::Nothing,
    }
}

/// What `response` on `card` asks for: as [`chosen`], except that a click on
/// the body of a folded toast shows its notifications when the attached engine
/// has a center ([`ActionSink::folded_to_center`]).
fn chosen_on(
    card: &ToastCard,
    response: &notify_rust::NotificationResponse,
    attached: &SharedAttached,
) -> Chosen {
    let center = || {
        lock_attached(attached)
            .sink
            .as_ref()
            .is_some_and(|s| s.folded_to_center)
    };
    if *response == notify_rust::NotificationResponse::Default && card.is_folded() && center() {
        Chosen::Engine(ToastActionKind::ShowFolded)
    } else {
        chosen(response)
    }
}

/// Does what was chosen on `card`: opens its vetted task or review page, or
/// hands the choice to the attached engine (nothing when none is attached).
fn carry_out(chosen: Chosen, card: &ToastCard, opener: &Opener, attached: &SharedAttached) {
    let url = match chosen {
        Chosen::Nothing => return,
        Chosen::Open => DesktopNotifier::link(&card.toast),
        Chosen::Review => vetted(card.review_url.as_deref()),
        Chosen::Engine(kind) => {
            let sink = lock_attached(attached).sink.clone();
            match sink {
                Some(sink) => {
                    tracing::info!(action = ?kind, title = %card.toast.title, "toast action");
                    sink.report(ToastAction {
                        card: card.clone(),
                        kind,
                    });
                }
                None => tracing::debug!("a toast action without an engine to carry it out"),
            }
            return;
        }
    };
    if let Some(url) = url {
        tracing::info!(action = ?chosen, "opening a page from a toast");
        if let Err(e) = opener(&url) {
            tracing::warn!(error = %e, "could not open the page");
        }
    }
}

/// Whether a toast response asks to open the task: a click on the body or "Open"
/// (see [`chosen`]).
pub fn is_open(response: &notify_rust::NotificationResponse) -> bool {
    chosen(response) == Chosen::Open
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

    use super::{NotifyError, Opener, SharedAttached};
    use crate::delivery::ToastCard;

    const NAME: &str = "org.freedesktop.Notifications";
    const PATH: &str = "/org/freedesktop/Notifications";
    /// A daemon that does not answer within this is treated as failed (the worker
    /// thread must not hang on it).
    const CALL_TIMEOUT: Duration = Duration::from_secs(5);
    /// Toasts remembered until the daemon reports them closed; the oldest go first
    /// (some daemons never report persistent toasts closed).
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
        /// The `sound-name` hint, if any.
        pub sound: Option<&'a str>,
    }

    /// A shown toast (its links and keys), the keys not withdrawn yet, and the
    /// unique bus name of the daemon that showed it: only that daemon's signals may
    /// act on it (any other client on the session bus can emit an `ActionInvoked`
    /// signal too), and only that daemon is asked to close it.
    struct Link {
        card: ToastCard,
        keys_left: Vec<String>,
        daemon: String,
    }

    type Links = Arc<Mutex<BTreeMap<u32, Link>>>;

    /// The live connection and the toasts shown over it, by daemon id.
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

        fn connect(
            &self,
            opener: &Opener,
            attached: &SharedAttached,
        ) -> Result<Arc<Bus>, NotifyError> {
            let builder = match &self.address {
                Some(a) => zbus::blocking::connection::Builder::address(a.as_str()),
                None => zbus::blocking::connection::Builder::session(),
            };
            let conn = builder
                .and_then(|b| b.method_timeout(CALL_TIMEOUT).build())
                .map_err(|e| NotifyError::NoDaemon(format!("no session bus: {e}")))?;
            let links: Links = Arc::new(Mutex::new(BTreeMap::new()));
            start_listener(
                &conn,
                Arc::clone(&links),
                Arc::clone(opener),
                Arc::clone(attached),
            );
            tracing::debug!(unique_name = ?conn.unique_name(), "connected to the session bus for notifications");
            Ok(Arc::new(Bus { conn, links }))
        }

        /// The live connection, opening one if there is none.
        fn current(
            &self,
            opener: &Opener,
            attached: &SharedAttached,
        ) -> Result<Arc<Bus>, NotifyError> {
            let mut slot = lock(&self.bus);
            if let Some(bus) = slot.as_ref() {
                return Ok(Arc::clone(bus));
            }
            let bus = self.connect(opener, attached)?;
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

        /// Sends one `Notify`; remembers the toast for its actions and for
        /// withdrawing it. A broken connection is replaced and the call tried once more.
        pub(super) fn notify(
            &self,
            req: &NotifyRequest<'_>,
            card: &ToastCard,
            opener: &Opener,
            attached: &SharedAttached,
        ) -> Result<(), NotifyError> {
            let mut retried = false;
            loop {
                let bus = self.current(opener, attached)?;
                match call_notify(&bus.conn, req) {
                    Ok((id, daemon)) => {
                        if !req.actions.is_empty() || !card.toast.keys.is_empty() {
                            let mut links = lock(&bus.links);
                            links.insert(
                                id,
                                Link {
                                    card: card.clone(),
                                    keys_left: card.toast.keys.clone(),
                                    daemon,
                                },
                            );
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

    impl SharedBus {
        /// Closes (`CloseNotification`, to the daemon that showed them) the toasts
        /// whose every key is now withdrawn. Without a connection nothing is shown.
        pub(super) fn withdraw(&self, keys: &[String]) -> Result<(), NotifyError> {
            let Some(bus) = lock(&self.bus).clone() else {
                return Ok(());
            };
            let closing: Vec<(u32, String)> = {
                let mut links = lock(&bus.links);
                let mut done = Vec::new();
                for (id, l) in links.iter_mut() {
                    let before = l.keys_left.len();
                    l.keys_left.retain(|k| !keys.contains(k));
                    if before > 0 && l.keys_left.is_empty() {
                        done.push((*id, l.daemon.clone()));
                    }
                }
                for (id, _) in &done {
                    links.remove(id);
                }
                done
            };
            let mut failed = None;
            for (id, daemon) in closing {
                let to = if daemon.is_empty() {
                    NAME
                } else {
                    daemon.as_str()
                };
                tracing::debug!(notification = id, "withdrawing a toast read elsewhere");
                if let Err(e) =
                    bus.conn
                        .call_method(Some(to), PATH, Some(NAME), "CloseNotification", &(id,))
                {
                    if connection_broken(&e) {
                        self.forget(&bus);
                    }
                    failed = Some(NotifyError::Failed(format!("CloseNotification: {e}")));
                }
            }
            failed.map_or(Ok(()), Err)
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
        if let Some(sound) = req.sound {
            hints.insert("sound-name", zbus::zvariant::Value::from(sound));
        }
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

    /// One thread per connection: carries out the action invoked on a toast (opens
    /// its vetted link, or hands "Mark read" / "Snooze" to the engine), forgets a
    /// toast that was closed. Ends when the connection closes.
    fn start_listener(
        conn: &zbus::blocking::Connection,
        links: Links,
        opener: Opener,
        attached: SharedAttached,
    ) {
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
                            let response = super::response_of_action_key(&action);
                            if super::chosen(&response) == super::Chosen::Nothing {
                                continue;
                            }
                            let card = {
                                let links = lock(&links);
                                match links.get(&id) {
                                    Some(l) if !l.daemon.is_empty() && l.daemon == sender => {
                                        Some(l.card.clone())
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
                            if let Some(card) = card {
                                let chosen = super::chosen_on(&card, &response, &attached);
                                super::carry_out(chosen, &card, &opener, &attached);
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

/// Collects toasts (with their review links) and withdrawals in memory, for
/// tests; can be told to fail like a missing daemon, and can play the user's
/// choice on a toast ([`RecordingNotifier::choose`]).
#[derive(Clone, Default)]
pub struct RecordingNotifier {
    inner: Arc<Mutex<Vec<ToastCard>>>,
    withdrawn: Arc<Mutex<Vec<String>>>,
    sink: Arc<Mutex<Option<ActionSink>>>,
    fail: Arc<Mutex<Option<NotifyError>>>,
    count: Arc<tokio::sync::watch::Sender<usize>>,
}

fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
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
        locked(&self.inner)
            .iter()
            .map(|c| c.toast.clone())
            .collect()
    }

    /// Every toast shown so far with its review link, in order.
    pub fn cards(&self) -> Vec<ToastCard> {
        locked(&self.inner).clone()
    }

    /// Every key withdrawn so far, in order.
    pub fn withdrawn(&self) -> Vec<String> {
        locked(&self.withdrawn).clone()
    }

    /// Plays the user choosing `kind` on `card`, as a notifier reports it; false
    /// when no engine is attached.
    pub fn choose(&self, card: &ToastCard, kind: ToastActionKind) -> bool {
        let sink = locked(&self.sink).clone();
        match sink {
            Some(s) => s
                .sender
                .try_send(ToastAction {
                    card: card.clone(),
                    kind,
                })
                .is_ok(),
            None => false,
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
        self.show_card(&ToastCard::plain(toast.clone()))
    }

    fn withdraw(&self, keys: &[String]) -> Result<(), NotifyError> {
        locked(&self.withdrawn).extend(keys.iter().cloned());
        Ok(())
    }

    fn attach(&self, sink: ActionSink) {
        *locked(&self.sink) = Some(sink);
    }

    fn show_card(&self, card: &ToastCard) -> Result<(), NotifyError> {
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
            g.push(card.clone());
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

    /// The same action ids mean the same on every OS.
    #[test]
    fn action_keys_map_to_one_choice_on_every_os() {
        use notify_rust::NotificationResponse as R;
        let of = |k: &str| chosen(&response_of_action_key(k));
        assert_eq!(of("default"), Chosen::Open);
        assert_eq!(of("open"), Chosen::Open);
        assert_eq!(of("review"), Chosen::Review);
        assert_eq!(of("mark_read"), Chosen::Engine(ToastActionKind::MarkRead));
        assert_eq!(of("snooze"), Chosen::Engine(ToastActionKind::Snooze));
        assert_eq!(of("other"), Chosen::Nothing);
        assert_eq!(
            chosen(&R::Action("snooze".into())),
            Chosen::Engine(ToastActionKind::Snooze)
        );
    }

    fn task_card(review: Option<&str>) -> ToastCard {
        let mut t = toast("task");
        t.open_url = Some("https://p.example/tasks/1".into());
        t.keys = vec!["k1".into()];
        ToastCard {
            toast: t,
            review_url: review.map(str::to_string),
            sound: None,
        }
    }

    #[test]
    fn a_toast_with_a_task_offers_every_action_once_an_engine_is_attached() {
        let labels = Labels::new(Lang::ZhCn, "打开".into());
        let keys =
            |v: Vec<(&'static str, String)>| v.into_iter().map(|(k, _)| k).collect::<Vec<_>>();
        assert_eq!(
            keys(action_pairs(&task_card(None), &labels, true, false)),
            ["default", "open", "mark_read", "snooze"]
        );
        let with_review = action_pairs(
            &task_card(Some("https://p.example/tasks/1/review")),
            &labels,
            true,
            false,
        );
        assert_eq!(
            with_review,
            [
                ("default", "打开任务".to_string()),
                ("open", "打开任务".to_string()),
                ("mark_read", "标为已读".to_string()),
                ("snooze", "稍后提醒".to_string()),
                ("review", "去审核".to_string()),
            ]
        );
        // A review link that is not http(s) is no action.
        assert_eq!(
            keys(action_pairs(
                &task_card(Some("javascript:x")),
                &labels,
                true,
                false
            ))
            .len(),
            4
        );
        // No engine: only "Open"; no task: nothing.
        assert_eq!(
            action_pairs(&task_card(None), &labels, false, false),
            [
                ("default", "打开".to_string()),
                ("open", "打开".to_string())
            ]
        );
        assert!(action_pairs(&ToastCard::plain(toast("x")), &labels, true, false).is_empty());
    }

    fn folded_card(open_url: Option<&str>) -> ToastCard {
        let mut t = toast("3 new notifications");
        t.keys = vec!["k1".into(), "k2".into(), "k3".into()];
        t.folded = 3;
        t.open_url = open_url.map(str::to_string);
        ToastCard::plain(t)
    }

    #[test]
    fn a_folded_toast_offers_show_all_only_where_a_center_can_show_it() {
        let labels = Labels::new(Lang::En, "Open".into());
        // The tray app (a center): the body click shows its notifications.
        assert_eq!(
            action_pairs(&folded_card(None), &labels, true, true),
            [("default", "Show all".to_string())]
        );
        let shared = "https://p.example/tasks/1";
        let keys =
            |v: Vec<(&'static str, String)>| v.into_iter().map(|(k, _)| k).collect::<Vec<_>>();
        let with_center = action_pairs(&folded_card(Some(shared)), &labels, true, true);
        assert_eq!(with_center[0], ("default", "Show all".to_string()));
        assert_eq!(
            keys(with_center),
            ["default", "open", "mark_read", "snooze"]
        );
        // The headless CLI (no center): as before, the task's actions when every
        // notification shares one link, else nothing.
        assert!(action_pairs(&folded_card(None), &labels, true, false).is_empty());
        let without = action_pairs(&folded_card(Some(shared)), &labels, true, false);
        assert_eq!(without[0], ("default", "Open task".to_string()));
        assert_eq!(keys(without), ["default", "open", "mark_read", "snooze"]);
        // A single toast is never "folded", center or not.
        assert!(action_pairs(&ToastCard::plain(toast("x")), &labels, true, true).is_empty());
    }

    #[test]
    fn a_body_click_on_a_folded_toast_shows_its_notifications_only_with_a_center() {
        let attached = |center: Option<bool>| -> SharedAttached {
            let sink = center.map(|c| ActionSink {
                sender: tokio::sync::mpsc::channel(1).0,
                lang: Lang::En,
                folded_to_center: c,
            });
            Arc::new(Mutex::new(Attached {
                sink,
                labels: Labels::new(Lang::En, "Open".into()),
            }))
        };
        let body = notify_rust::NotificationResponse::Default;
        let open = response_of_action_key("open");
        let folded = folded_card(Some("https://p.example/tasks/1"));
        assert_eq!(
            chosen_on(&folded, &body, &attached(Some(true))),
            Chosen::Engine(ToastActionKind::ShowFolded)
        );
        assert_eq!(
            chosen_on(&folded, &open, &attached(Some(true))),
            Chosen::Open
        );
        assert_eq!(
            chosen_on(&folded, &body, &attached(Some(false))),
            Chosen::Open
        );
        assert_eq!(chosen_on(&folded, &body, &attached(None)), Chosen::Open);
        assert_eq!(
            chosen_on(&task_card(None), &body, &attached(Some(true))),
            Chosen::Open
        );
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
    fn windows_toasts_get_a_sound_they_know() {
        assert_eq!(windows_sound_name("message-new-instant"), "Default");
        assert_eq!(windows_sound_name("bell"), "Default");
        assert_eq!(windows_sound_name("Mail"), "Mail");
        assert_eq!(windows_sound_name("Alarm3"), "Alarm3");
    }

    #[test]
    fn opener_refuses_other_schemes() {
        let e = open_in_browser("file:///etc/passwd").unwrap_err();
        assert!(e.to_string().contains("only http(s)"), "{e}");
        assert!(open_in_browser("not a url").is_err());
    }
}
