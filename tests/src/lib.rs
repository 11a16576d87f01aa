//! Harness for TaskBell's end-to-end tests, the tray app's tests and the
//! benchmarks: it starts real processes in a private session and cleans up
//! after itself.
//!
//! Every piece is an RAII guard. It starts on free resources (a socket in a
//! temporary directory, a display Xvfb picks with `-displayfd`, port 0 or a
//! just-freed port with retries), waits until the piece is ready by asking
//! it (a D-Bus name owned, `xdpyinfo` answering, Redis answering `PING`, the
//! server printing its address), and kills it on `Drop`. Environment
//! variables such as `DBUS_SESSION_BUS_ADDRESS` and `DISPLAY` are only ever
//! given to child processes ([`Env`]); the test process's own environment
//! is never changed, so tests cannot race on it.
//!
//! # Layout
//!
//! - from `taskbell-testkit`, re-exported: [`ChildGuard`] (kill on drop,
//!   stderr to a log file, stdout collected line by line), [`LineCollector`],
//!   [`wait_until`], [`HarnessError`], [`Redis`], [`ServerProcess`] (the real
//!   `taskbell-server` binary, restartable on the same port), [`binary`]
//!   (locates, building once, the workspace binaries) and [`free_port`].
//! - [`process`]: [`Env`] (the environment of child processes),
//!   [`descendants`], [`webkit_processes`].
//! - [`desktop`]: [`SessionBus`] (private `dbus-daemon` without service
//!   activation), [`Xvfb`], [`Dunst`] (history read back with `dunstctl`),
//!   [`NotificationRecorder`] (every `Notify` call with its urgency, through
//!   a D-Bus monitor connection), [`SecretService`] (gnome-keyring-daemon,
//!   unlocked, with a default "login" collection), [`Tray`] (trayer), and
//!   [`Desktop`], which bundles them with a private `HOME`.
//! - [`hostile`]: [`HostileServer`], a platform server that misbehaves like
//!   an attacker's (redirected logins, storms of closes, huge bodies, escapes).
//! - [`network`]: [`TestCa`] (a private CA), [`TlsFront`] (https in front of a
//!   server), [`ConnectProxy`] and [`Socks5Proxy`] (which record their tunnels).
//! - [`sni`]: [`SniWatcher`], a StatusNotifierItem host (KDE/GNOME-style tray) on the
//!   private bus, and [`SniItem`], an item's properties and its dbusmenu, clickable.
//!
//! # Example
//!
//! ```no_run
//! use std::time::Duration;
//! use taskbell_e2e::{Desktop, ServerOptions, ServerProcess};
//!
//! # fn main() -> Result<(), taskbell_e2e::HarnessError> {
//! let desktop = Desktop::start()?;
//! let server = ServerProcess::start(ServerOptions::default())?;
//! let status = desktop
//!     .command(taskbell_e2e::binary("taskbell")?)
//!     .args(["status", "--json"])
//!     .status();
//! let recorder = desktop.recorder().expect("notifications were started");
//! let _call = recorder.wait_for(Duration::from_secs(30), |c| c.summary == "登录成功")?;
//! # drop((status, server)); Ok(()) }
//! ```
//!
//! Nothing here survives the test process unless it is killed with
//! SIGKILL; nextest's timeout kills the whole process group, children
//! included.

mod background;
pub mod desktop;
pub mod hostile;
pub mod network;
pub mod process;
pub mod sni;

pub use desktop::{
    CloseCall, Desktop, DesktopOptions, Dunst, DunstEntry, KEYRING_PASSWORD, NotificationRecorder,
    NotifyCall, SecretItem, SecretService, SessionBus, Tray, Xvfb, parse_dunst_history,
};
pub use hostile::{AfterPong, Behaviour, HOSTILE_TOKEN, HostileServer, HugeBody};
pub use network::{ConnectProxy, Socks5Proxy, TestCa, TlsFront};
pub use process::{Env, HEAVY_LIBRARIES, descendants, heavy_libraries, webkit_processes};
pub use sni::{ItemProps, MenuEntry, SniItem, SniWatcher};
pub use taskbell_testkit::{
    ChildGuard, HarnessError, LineCollector, Redis, Result, ServerOptions, ServerProcess, Stdout,
    binary, free_port, wait_until,
};
