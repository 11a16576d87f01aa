//! Showing toasts: the [`Notifier`] trait, the desktop implementation over
//! notify-rust (freedesktop notifications on D-Bus), and a [`RecordingNotifier`]
//! for tests.
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

/// Desktop notifications through notify-rust: app name "TaskBell", urgency hint,
/// an "Open" action for toasts with a (vetted) link.
#[derive(Debug, Clone)]
pub struct DesktopNotifier {
    app_name: String,
    open_label: String,
}

impl Default for DesktopNotifier {
    fn default() -> Self {
        DesktopNotifier::new()
    }
}

impl DesktopNotifier {
    /// A notifier with the app name "TaskBell" and the action label "Open".
    pub fn new() -> DesktopNotifier {
        DesktopNotifier {
            app_name: "TaskBell".to_string(),
            open_label: "Open".to_string(),
        }
    }

    /// Sets the label of the "Open" action (localised by the caller).
    pub fn with_open_label(mut self, label: impl Into<String>) -> DesktopNotifier {
        self.open_label = label.into();
        self
    }
}

impl Notifier for DesktopNotifier {
    fn show(&self, toast: &Toast) -> Result<(), NotifyError> {
        let mut n = notify_rust::Notification::new();
        n.appname(&self.app_name)
            .summary(&toast.title)
            .body(&toast.body)
            .icon(match toast.urgency {
                Urgency::Critical => "dialog-warning",
                _ => "dialog-information",
            });
        #[cfg(all(unix, not(target_os = "macos")))]
        {
            n.urgency(match toast.urgency {
                Urgency::Low => notify_rust::Urgency::Low,
                Urgency::Normal => notify_rust::Urgency::Normal,
                Urgency::Critical => notify_rust::Urgency::Critical,
            });
            n.hint(notify_rust::Hint::Category("im.received".to_string()));
        }
        if let Some(ms) = toast.timeout_ms {
            n.timeout(notify_rust::Timeout::Milliseconds(ms));
        }
        let url = toast
            .open_url
            .as_deref()
            .filter(|u| u.starts_with("http://") || u.starts_with("https://"))
            .map(str::to_string);
        if url.is_some() {
            n.action("default", &self.open_label);
            n.action("open", &self.open_label);
        }
        let handle = n.show().map_err(|e| {
            let s = e.to_string();
            if s.contains("ServiceUnknown")
                || s.contains("not provided by any .service")
                || s.contains("org.freedesktop.DBus.Error")
                || s.contains("DBUS_SESSION_BUS_ADDRESS")
                || s.contains("No such file")
            {
                NotifyError::NoDaemon(s)
            } else {
                NotifyError::Failed(s)
            }
        })?;
        #[cfg(all(unix, not(target_os = "macos")))]
        if let Some(url) = url {
            // Wait for the click on a thread of its own: never in the event loop.
            let spawned = std::thread::Builder::new()
                .name("taskbell-toast-action".to_string())
                .spawn(move || {
                    handle.wait_for_action(|action| {
                        if action == "default" || action == "open" {
                            if let Err(e) = open_in_browser(&url) {
                                tracing::warn!(error = %e, "could not open the task page");
                            }
                        }
                    });
                });
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "cannot wait for the Open action");
            }
        }
        #[cfg(not(all(unix, not(target_os = "macos"))))]
        drop((handle, url));
        Ok(())
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
