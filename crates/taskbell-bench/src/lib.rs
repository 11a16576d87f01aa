//! # taskbell-bench
//!
//! TaskBell's benchmarks and fault harness (issue 5). Every figure is measured beside its
//! floor in the same run and printed as one table by the `taskbell-bench` binary
//! (`cargo run --release -p taskbell-bench -- all`); nothing here asserts a wall-clock limit.
//!
//! Everything runs on loopback with real parts: the reference server in-process on port 0
//! (Redis from Debian where a scenario needs history that survives a restart), a TCP proxy
//! that can black-hole its connections (`taskbell_testkit::Proxy`), a private
//! session D-Bus (from `taskbell-e2e`) with a notification daemon of our own
//! ([`daemon::NotifyDaemon`]) that timestamps every `Notify` call, and the client engine in a
//! child process ([`agent`]) so that it sees only the private bus.
//!
//! ## Layout
//!
//! - [`stats`]: percentiles (hdrhistogram) and the report table.
//! - [`procfs`]: RSS, CPU time and context switches of a process tree from `/proc`.
//! - [`daemon`]: an `org.freedesktop.Notifications` server that timestamps each `Notify`.
//! - [`agent`]: the child process (the real engine, or the bare tungstenite floor) and the
//!   parent's handle on it.
//! - [`platform`]: the reference server in-process, restartable on the same port, and its
//!   test controls.
//! - [`scenarios`]: one function per figure.
//! - [`faults`]: the fault stream behind the fault harness and the soak run.
//! - [`tray`]: the release tray app's memory (idle, center open, after closing) over its
//!   whole process tree, in a private desktop.
//! - [`gotify`]: a Gotify API shim, just what gotify-desktop uses.
//! - [`peer`]: `taskbell run` beside gotify-desktop (a peer client, built by hand) in one
//!   private desktop, both measured over the same idle window.

pub mod agent;
pub mod daemon;
pub mod faults;
pub mod fleet;
pub mod gotify;
pub mod peer;
pub mod platform;
pub mod procfs;
pub mod scenarios;
pub mod stats;
pub mod tray;

/// The result type used across the bench.
pub type Result<T, E = anyhow::Error> = std::result::Result<T, E>;
