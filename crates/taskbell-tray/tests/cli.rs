//! The command line of the real `taskbell-tray`: help, and refusals with a reason and
//! exit code 2, before anything starts.

// Test helpers outside `#[test]` functions: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![cfg(target_os = "linux")]

use std::process::Command;

const TRAY: &str = env!("CARGO_BIN_EXE_taskbell-tray");

fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(TRAY)
        .args(args)
        // Nothing here may reach a desktop, a keyring or a data dir.
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env_remove("DISPLAY")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn help_names_the_tray_and_only_its_own_flags() {
    let (code, out, _) = run(&["--help"]);
    assert_eq!(code, Some(0));
    assert!(out.starts_with("usage: taskbell-tray"), "{out}");
    assert!(out.contains("--demo") && out.contains("--lang"), "{out}");
    assert!(!out.contains("--windows-for"), "{out}");
}

#[test]
fn bad_arguments_are_refused_with_a_reason() {
    for (args, says) in [
        (
            &["--windows-for", "/tmp/x.sock"][..],
            "belongs to taskbell-app",
        ),
        (&["--bogus"][..], "unknown argument"),
        (&["--lang", "fr"][..], "zh-CN, en"),
    ] {
        let (code, _, err) = run(args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
}
