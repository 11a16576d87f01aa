//! # taskbell-tray
//!
//! TaskBell's tray process for Linux, which does not link WebKit, GTK or GL. It runs the
//! desktop controller (`taskbell-desktop`: the engines, the toasts, the state) and shows
//! it as a StatusNotifierItem with a D-Bus menu ([`item`]). The windows run in a window
//! process (`taskbell-app --windows-for SOCKET`) that it starts when a window is wanted
//! and that leaves when the last window closes ([`windows`]); every command a window
//! calls comes back over the local socket to the controller here.
//!
//! Why a process of its own: a process maps every library its executable links when it
//! starts, so a tray inside the Tauri app holds WebKit, JavaScriptCore, GTK and (through
//! GTK's GL) Mesa's LLVM all day, for windows that are open a few minutes
//! (ARCHITECTURE.md; docs/benchmarks.md has the figures).
//!
//! Where there is no StatusNotifier host but an XEmbed tray (trayer, stalonetray), this
//! process hands over to the all-in-one `taskbell-app`, whose libappindicator docks there.

#[cfg(target_os = "linux")]
pub mod item;
#[cfg(target_os = "linux")]
mod run;
#[cfg(target_os = "linux")]
pub mod shell;
#[cfg(target_os = "linux")]
pub mod windows;

use std::process::ExitCode;

/// The binary's entry point.
pub fn main() -> ExitCode {
    #[cfg(target_os = "linux")]
    {
        run::main()
    }
    #[cfg(not(target_os = "linux"))]
    {
        eprintln!("taskbell-tray is TaskBell's tray for Linux; on this system run taskbell-app");
        ExitCode::from(2)
    }
}
