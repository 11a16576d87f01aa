//! The `taskbell-tray` binary: TaskBell's lean tray for Linux. All of it is in the library.

fn main() -> std::process::ExitCode {
    taskbell_tray::main()
}
