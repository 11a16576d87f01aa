//! The `taskbell-server` binary itself: first stdout line, login, graceful stop on SIGTERM.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Stdio;

use common::*;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Command;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_taskbell-server"));
    c.env("RUST_LOG", "warn").kill_on_drop(true);
    c
}

// SIGTERM is a Unix signal (on Windows the server stops on Ctrl-C).
#[cfg(unix)]
#[tokio::test]
async fn the_binary_prints_its_address_serves_and_stops_on_sigterm() {
    let mut child = bin()
        .args(["--listen", "127.0.0.1:0", "--test-controls"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(WAIT, lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let base = first
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("first line: {first}"))
        .to_owned();
    assert!(
        base.starts_with("http://127.0.0.1:") && !base.ends_with(":0"),
        "{base}"
    );
    let token = login(&base, "zhangsan", "annotate-123").await;
    let mut ws = connect(&base, &token).await;
    sync(&mut ws).await;

    let pid = child.id().unwrap().to_string();
    let status = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(status.success());
    assert_eq!(
        close_code(&mut ws).await,
        Some(1001),
        "sockets are closed with 1001 on SIGTERM"
    );
    let exit = tokio::time::timeout(WAIT, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(exit.success(), "{exit:?}");
}

#[tokio::test]
async fn the_binary_refuses_test_controls_on_a_public_address() {
    let out = tokio::time::timeout(
        WAIT,
        bin()
            .args(["--listen", "0.0.0.0:0", "--test-controls"])
            .output(),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("loopback"), "{err}");
    assert!(out.stdout.is_empty());
}

#[tokio::test]
async fn the_binary_prints_demo_data_that_it_can_load_again() {
    let out = bin().arg("--print-demo-data").output().await.unwrap();
    assert!(out.status.success());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("demo.json");
    std::fs::write(&file, &out.stdout).unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("张三") && text.contains("zhangsan"));
    let s = taskbell_server::start(taskbell_server::ServerConfig {
        data_file: Some(file),
        ..Default::default()
    })
    .await
    .unwrap();
    login(&s.base_url(), "lisi", "review-123").await;
}

#[tokio::test]
async fn the_binary_refuses_demo_accounts_on_a_public_address_without_the_flag() {
    let out = tokio::time::timeout(WAIT, bin().args(["--listen", "0.0.0.0:0"]).output())
        .await
        .unwrap()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("published passwords") && err.contains("--allow-public-demo"),
        "{err}"
    );
    assert!(out.stdout.is_empty(), "it never listened");

    // The same data written to a file is recognised too.
    let demo = bin().arg("--print-demo-data").output().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("demo.json");
    std::fs::write(&file, &demo.stdout).unwrap();
    let out = tokio::time::timeout(
        WAIT,
        bin()
            .args(["--listen", "0.0.0.0:0", "--data"])
            .arg(&file)
            .output(),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--allow-public-demo"));
}

#[tokio::test]
async fn the_binary_serves_public_demo_accounts_only_with_the_flag_and_a_warning() {
    let mut child = bin()
        .args(["--listen", "0.0.0.0:0", "--allow-public-demo"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(WAIT, out.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(first.starts_with("listening on http://0.0.0.0:"), "{first}");
    child.start_kill().unwrap();
    // The warning was logged before the address was printed.
    let mut err = String::new();
    tokio::time::timeout(WAIT, child.stderr.take().unwrap().read_to_string(&mut err))
        .await
        .unwrap()
        .unwrap();
    assert!(err.contains("PUBLISHED PASSWORDS"), "{err}");
    let _ = child.wait().await;
}
