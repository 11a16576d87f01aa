//! The `taskbell-server` binary itself: first stdout line, login, graceful stop on SIGTERM.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Stdio;

use common::*;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_taskbell-server"));
    c.env("RUST_LOG", "warn").kill_on_drop(true);
    c
}

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
