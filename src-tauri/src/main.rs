//! The `taskbell-app` binary: TaskBell in the system tray. All of it is in the library.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() -> std::process::ExitCode {
    taskbell_app::main()
}
