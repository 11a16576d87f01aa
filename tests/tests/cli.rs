//! End-to-end: the real `taskbell` binary against the real `taskbell-server`
//! binary (with Redis), inside a private session D-Bus with dunst under Xvfb
//! and gnome-keyring's Secret Service. Everything lives in tempdirs, on free
//! ports, and dies with its guard.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test helpers: a failed step is a failed test

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::Duration;

use serde_json::{Value, json};
use taskbell_e2e::{
    ChildGuard, Desktop, DesktopOptions, NotifyCall, Redis, ServerOptions, ServerProcess, Stdout,
    binary,
};

/// Bounds every wait (a hang fails the test; it does not measure speed).
const WAIT: Duration = Duration::from_secs(60);

const WELCOME_TITLE: &str = "登录成功";
const URGENT_TITLE: &str = "⚠️ 任务被驳回提醒";

struct Fixture {
    // Drop order: the client side first, then the server, then the session.
    server: ServerProcess,
    _redis: Redis,
    desktop: Desktop,
    dir: tempfile::TempDir,
}

impl Fixture {
    fn start(options: DesktopOptions) -> Fixture {
        let desktop = Desktop::start_with(options).expect("desktop session");
        let redis = Redis::start().expect("redis");
        let server = ServerProcess::start(ServerOptions {
            redis_url: Some(redis.url()),
            ..ServerOptions::default()
        })
        .expect("taskbell-server");
        let dir = tempfile::Builder::new()
            .prefix("taskbell-cli-e2e-")
            .tempdir()
            .unwrap();
        std::fs::create_dir_all(dir.path().join("logs")).unwrap();
        // A stand-in `xdg-open` first on PATH: it writes down what a click on a
        // toast opened, instead of starting a browser.
        let bin = dir.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let opener = bin.join("xdg-open");
        std::fs::write(
            &opener,
            format!(
                "#!/bin/sh\nprintf '%s\\n' \"$1\" >> '{}'\n",
                dir.path().join("opened.txt").display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&opener, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        Fixture {
            server,
            _redis: redis,
            desktop,
            dir,
        }
    }

    fn config_dir(&self) -> PathBuf {
        self.dir.path().join("config")
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn logs(&self) -> PathBuf {
        self.dir.path().join("logs")
    }

    /// The URLs the stand-in `xdg-open` was asked to open, in order.
    fn opened(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("opened.txt"))
            .map(|s| s.lines().map(str::to_owned).collect())
            .unwrap_or_default()
    }

    /// `taskbell` inside the session, with this account's dirs (through the
    /// environment variables) and a Chinese locale (protocol.md §5 texts).
    fn taskbell(&self) -> Command {
        let mut cmd = self
            .desktop
            .command(binary("taskbell").expect("taskbell binary"));
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut dirs = vec![self.dir.path().join("bin")];
        dirs.extend(std::env::split_paths(&path));
        cmd.env("PATH", std::env::join_paths(dirs).unwrap())
            .env("TASKBELL_CONFIG_DIR", self.config_dir())
            .env("TASKBELL_DATA_DIR", self.data_dir())
            .env("LANG", "zh_CN.UTF-8")
            .env("LC_ALL", "zh_CN.UTF-8")
            .env_remove("LC_MESSAGES")
            .env_remove("RUST_LOG")
            .env_remove("RUST_BACKTRACE");
        cmd
    }

    /// Runs `taskbell ARGS` to completion with `stdin`.
    fn run_cmd(&self, args: &[&str], stdin: Option<&str>) -> Finished {
        let mut cmd = self.taskbell();
        cmd.args(args);
        finish(&mut cmd, &self.logs(), stdin)
    }

    fn login(&self, user: &str, password: &str) -> Finished {
        let server = self.server.base_url();
        self.run_cmd(
            &[
                "login",
                "--server",
                &server,
                "--username",
                user,
                "--password-stdin",
            ],
            Some(&format!("{password}\n")),
        )
    }

    /// Starts `taskbell run --events json` in the background.
    fn start_run(&self) -> ChildGuard {
        let mut cmd = self.taskbell();
        cmd.args(["run", "--events", "json"]);
        ChildGuard::spawn("taskbell-run", &mut cmd, &self.logs(), Stdout::Collect)
            .expect("taskbell run starts")
    }

    fn notify_calls(&self) -> Vec<NotifyCall> {
        self.desktop.recorder().expect("recorder").calls()
    }

    fn wait_notify(&self, what: &str, pred: impl Fn(&NotifyCall) -> bool) -> NotifyCall {
        self.desktop
            .recorder()
            .expect("recorder")
            .wait_for(WAIT, pred)
            .unwrap_or_else(|e| panic!("{what}: {e}\nserver log:\n{}", self.server.logs()))
    }

    /// Signs in to the REST API directly (as the platform's web UI would).
    fn rest_login(&self, user: &str, password: &str) -> String {
        let v = rest(
            "POST",
            &format!("{}/api/auth/login", self.server.base_url()),
            None,
            Some(json!({"username": user, "password": password})),
        );
        v["data"]["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("login as {user}: {v}"))
            .to_owned()
    }

    fn submit(&self, annotator_token: &str, task: &str) {
        let v = rest(
            "POST",
            &format!("{}/api/tasks/{task}/submit", self.server.base_url()),
            Some(annotator_token),
            None,
        );
        assert_eq!(v["success"], true, "submit {task}: {v}");
    }

    fn reject(&self, reviewer_token: &str, task: &str, comment: &str) {
        let v = rest(
            "POST",
            &format!("{}/api/tasks/{task}/review", self.server.base_url()),
            Some(reviewer_token),
            Some(json!({"action": "reject", "comment": comment})),
        );
        assert_eq!(v["success"], true, "reject {task}: {v}");
    }
}

/// The result of a finished `taskbell` command.
#[derive(Debug)]
struct Finished {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

fn finish(cmd: &mut Command, logs: &Path, stdin: Option<&str>) -> Finished {
    let mut child = ChildGuard::spawn_with_stdin(
        "taskbell",
        cmd,
        logs,
        Stdout::Collect,
        stdin.map(str::as_bytes),
    )
    .expect("taskbell starts");
    let status = child.wait_timeout(WAIT).expect("taskbell finishes");
    let out = child.stdout().expect("stdout").clone();
    out.wait_closed(WAIT).expect("stdout closed");
    Finished {
        status,
        stdout: out.lines().join("\n"),
        stderr: child.log(),
    }
}

/// One blocking REST call with reqwest.
fn rest(method: &str, url: &str, token: Option<&str>, body: Option<Value>) -> Value {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = taskbell_testkit::http::http();
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = client.request(method, url).timeout(WAIT);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("REST call");
        resp.json::<Value>().await.expect("JSON answer")
    })
}

/// Asserts a failed command printed exactly one clear line and nothing else.
fn assert_one_line_failure(f: &Finished, expect: &str) {
    assert!(!f.status.success(), "should fail: {f:?}");
    let lines: Vec<&str> = f.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "exactly one line on stderr: {f:?}");
    let line = lines[0];
    assert!(line.starts_with("taskbell: "), "{line}");
    assert!(
        line.to_lowercase().contains(&expect.to_lowercase()),
        "{line:?} should mention {expect:?}"
    );
    for bad in [
        "panicked",
        "RUST_BACKTRACE",
        "Error {",
        "Unauthorized(",
        "Some(",
        "\\n",
    ] {
        assert!(!line.contains(bad), "{line:?} contains {bad:?}");
    }
    assert!(f.stdout.trim().is_empty(), "nothing on stdout: {f:?}");
}

fn events(lines: &[String]) -> Vec<Value> {
    lines
        .iter()
        .map(|l| {
            serde_json::from_str::<Value>(l)
                .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {l:?}"))
        })
        .collect()
}

fn count_events(out: &taskbell_e2e::LineCollector, name: &str) -> usize {
    events(&out.lines())
        .iter()
        .filter(|e| e["event"] == name)
        .count()
}

/// Every file under `dir` whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            found.extend(files_containing(&p, needle));
        } else if let Ok(bytes) = std::fs::read(&p) {
            if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                found.push(p);
            }
        }
    }
    found
}

#[test]
fn login_errors_print_one_clear_line_and_fail() {
    let f = Fixture::start(DesktopOptions::default());

    let wrong = f.login("zhangsan", "not-the-password");
    assert_one_line_failure(&wrong, "login failed");

    let unreachable = {
        // A port kept bound but never listening: connects are refused, and nothing else can
        // take the port meanwhile (a port merely found free could be reused by then).
        let refusing = tokio::net::TcpSocket::new_v4().unwrap();
        refusing.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let port = refusing.local_addr().unwrap().port();
        f.run_cmd(
            &[
                "login",
                "--server",
                &format!("http://127.0.0.1:{port}"),
                "--username",
                "zhangsan",
                "--password-stdin",
            ],
            Some("annotate-123\n"),
        )
    };
    assert_one_line_failure(&unreachable, "cannot reach the server");

    let bad_url = f.run_cmd(
        &[
            "login",
            "--server",
            "not a url",
            "--username",
            "zhangsan",
            "--password-stdin",
        ],
        Some("annotate-123\n"),
    );
    assert_one_line_failure(&bad_url, "url");

    // Plain http to a remote host is refused before anything is sent.
    let insecure = f.run_cmd(
        &[
            "login",
            "--server",
            "http://annotate.example.invalid",
            "--username",
            "zhangsan",
            "--password-stdin",
        ],
        Some("annotate-123\n"),
    );
    assert_one_line_failure(&insecure, "allow_insecure");

    let not_signed_in = f.run_cmd(&["run"], None);
    assert_one_line_failure(&not_signed_in, "not signed in");
    assert_eq!(
        not_signed_in.status.code(),
        Some(3),
        "only the user can fix it"
    );
    assert_eq!(wrong.status.code(), Some(1));

    // Nothing was stored by the failures.
    let keyring = f.desktop.keyring().unwrap();
    assert!(
        keyring
            .items()
            .unwrap()
            .iter()
            .all(|i| !i.label.contains("taskbell")
                && !i.attributes.values().any(|v| v.contains("taskbell"))),
        "{:?}",
        keyring.items()
    );
}

#[test]
fn login_run_live_notifications_reconnect_and_history() {
    let mut f = Fixture::start(DesktopOptions::default());

    // Sign in: the token goes to the Secret Service, and nowhere on disk.
    let ok = f.login("zhangsan", "annotate-123");
    assert!(ok.status.success(), "{ok:?}");
    assert!(ok.stdout.contains("张三"), "{ok:?}");
    assert!(ok.stdout.contains("Secret Service"), "{ok:?}");
    let items = f.desktop.keyring().unwrap().items().unwrap();
    let token_item = items
        .iter()
        .find(|i| i.secret.split('.').count() == 3 && i.secret.len() > 20)
        .unwrap_or_else(|| panic!("no token in the Secret Service: {items:?}"));
    let token = token_item.secret.clone();
    let described = format!("{} {:?}", token_item.label, token_item.attributes);
    assert!(described.contains("zhangsan"), "{described}");
    assert!(
        f.config_dir().join("config.toml").is_file(),
        "the config was written"
    );
    for dir in [f.config_dir(), f.data_dir(), f.desktop.home().to_path_buf()] {
        assert_eq!(files_containing(&dir, &token), Vec::<PathBuf>::new());
    }
    let token_tail = &token[token.len() - 16..];
    assert!(
        !ok.stdout.contains(token_tail) && !ok.stderr.contains(token_tail),
        "the token is never printed"
    );

    // Run: the welcome toast, then the urgent one (protocol.md §5 texts).
    let mut run = f.start_run();
    let out = run.stdout().unwrap().clone();
    let welcome = f.wait_notify("welcome toast", |c| c.summary == WELCOME_TITLE);
    assert_eq!(
        welcome.body,
        "欢迎回来，张三\n⚠️ 您有 1 个被驳回任务，建议请您先修订\n您有 2 个进行中的任务"
    );
    assert_eq!(welcome.app_name, "TaskBell");
    let urgent = f.wait_notify("urgent toast", |c| c.summary == URGENT_TITLE);
    assert_eq!(urgent.body, "您有 1 个任务被驳回，请尽快修订并重新提交！");
    assert!(urgent.is_critical(), "{urgent:?}");
    assert_ne!(welcome.urgency, Some(2), "{welcome:?}");
    // "3 s later" (a lower bound: load can only delay it further).
    let gap = urgent.seen.duration_since(welcome.seen);
    assert!(
        gap >= Duration::from_millis(2500),
        "urgent toast after {gap:?}"
    );
    out.wait_for(WAIT, |l| l.contains(r#""event":"connected""#))
        .unwrap();
    let summary = out
        .wait_for(WAIT, |l| l.contains(r#""event":"summary""#))
        .unwrap();
    let summary: Value = serde_json::from_str(&summary).unwrap();
    assert_eq!(summary["title"], WELCOME_TITLE);

    // A reviewer rejects a task through REST: a live notification, critical.
    // (Close the summary toasts first, so that the rejection is the one shown.)
    f.desktop.dunst().unwrap().close_all().unwrap();
    let reviewer = f.rest_login("lisi", "review-123");
    let before_reject = std::time::Instant::now();
    f.reject(&reviewer, "task-1006", "类别标签错误，请修正");
    let first = f.wait_notify("first rejection", |c| c.body.contains("文本分类-0010"));
    // A figure, not a limit.
    eprintln!(
        "REST reject → D-Bus Notify: {:?}",
        first.seen.saturating_duration_since(before_reject)
    );
    assert_eq!(first.summary, "任务审核结果");
    assert_eq!(
        first.body,
        "你的任务《文本分类-0010》已驳回：类别标签错误，请修正"
    );
    assert!(first.is_critical(), "high priority → critical: {first:?}");
    assert!(
        first.actions.iter().any(|(k, _)| k == "default"),
        "an Open action for the task: {first:?}"
    );
    // A click on it (dunst's default action) opens the task page on the
    // platform's own origin.
    taskbell_e2e::wait_until("dunst to show the rejection", WAIT, || {
        (f.desktop.dunst().unwrap().displayed().ok()? == 1).then_some(())
    })
    .unwrap();
    f.desktop.dunst().unwrap().invoke_action(0).unwrap();
    let opened = taskbell_e2e::wait_until("the click to open the task page", WAIT, || {
        let o = f.opened();
        (!o.is_empty()).then_some(o)
    })
    .unwrap_or_else(|e| panic!("{e}\nlog:\n{}", run.log()));
    assert_eq!(opened.len(), 1, "{opened:?}");
    assert!(
        opened[0].starts_with(&f.server.base_url()) && opened[0].contains("task-1006"),
        "{opened:?}"
    );

    // The server dies and comes back on the same port; the client reconnects.
    f.server.kill();
    out.wait_for(WAIT, |l| l.contains(r#""event":"reconnecting""#))
        .unwrap();
    f.server.restart().expect("server restarts");
    // A rejection made right after the restart arrives once, whether the
    // client is still waiting to reconnect (catch-up) or already back (live).
    let annotator = f.rest_login("zhangsan", "annotate-123");
    let reviewer = f.rest_login("lisi", "review-123");
    f.submit(&annotator, "task-1001");
    f.reject(&reviewer, "task-1001", "漏标了两个行人");
    let second = f.wait_notify("rejection after the restart", |c| {
        c.body.contains("图像标注-0041")
    });
    assert_eq!(
        second.body,
        "你的任务《图像标注-0041》已驳回：漏标了两个行人"
    );
    out.wait_for_nth(WAIT, 2, |l| l.contains(r#""event":"connected""#))
        .unwrap();
    // One more live one after the reconnect proves the new socket is subscribed.
    let annotator_again = f.rest_login("zhangsan", "annotate-123");
    f.submit(&annotator_again, "task-1003");
    f.reject(&reviewer, "task-1003", "请补充标签说明");
    f.wait_notify("live rejection on the new socket", |c| {
        c.body.contains("文本分类-0007")
    });

    // SIGTERM: a clean stop with exit code 0, after a closing handshake
    // (the server logs "socket closed" for a Close frame, "socket read
    // error" for a connection dropped without one).
    let status = run.terminate(WAIT).expect("taskbell run stops");
    assert!(
        status.success(),
        "exit status {status}; log:\n{}",
        run.log()
    );
    taskbell_e2e::wait_until("the server to see the close", WAIT, || {
        let log = f.server.current_log();
        log.lines()
            .any(|l| l.contains("socket closed") && l.contains("zhangsan"))
            .then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", f.server.current_log()));
    assert!(
        !f.server.current_log().contains("socket read error"),
        "{}",
        f.server.current_log()
    );
    out.wait_closed(WAIT).unwrap();
    let all = events(&out.lines());
    assert_eq!(all.last().unwrap()["event"], "stopped", "{all:?}");
    assert!(
        !run.log().contains(token_tail) && !out.lines().join("\n").contains(token_tail),
        "the token is never logged"
    );

    // Nothing was shown twice.
    let calls = f.notify_calls();
    for needle in [
        WELCOME_TITLE,
        URGENT_TITLE,
        "文本分类-0010",
        "图像标注-0041",
        "文本分类-0007",
    ] {
        let n = calls
            .iter()
            .filter(|c| c.summary == needle || c.body.contains(needle))
            .count();
        assert_eq!(n, 1, "{needle:?} shown {n} times: {calls:#?}");
    }
    assert_eq!(count_events(&out, "notification"), 3, "{all:#?}");
    // All of them over one D-Bus connection, kept across the server restart.
    let senders: std::collections::BTreeSet<&str> =
        calls.iter().map(|c| c.sender.as_str()).collect();
    assert_eq!(
        senders.len(),
        1,
        "one bus connection for every toast: {calls:#?}"
    );
    // dunst received them all, with the exact texts.
    let history = f.desktop.dunst().unwrap().history().unwrap();
    for (summary, body) in [
        (WELCOME_TITLE, welcome.body.as_str()),
        (URGENT_TITLE, urgent.body.as_str()),
        ("任务审核结果", first.body.as_str()),
        ("任务审核结果", second.body.as_str()),
    ] {
        assert!(
            history
                .iter()
                .any(|e| e.summary == summary && e.body == body),
            "dunst lacks {summary:?}/{body:?}: {history:#?}"
        );
    }

    // `taskbell history --json` lists them, each once, newest first.
    let listed = f.run_cmd(&["history", "--json"], None);
    assert!(listed.status.success(), "{listed:?}");
    let records: Vec<Value> = serde_json::from_str(&listed.stdout).unwrap();
    let contents: Vec<&str> = records
        .iter()
        .map(|r| r["notification"]["content"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        contents,
        [
            "你的任务《文本分类-0007》已驳回：请补充标签说明",
            "你的任务《图像标注-0041》已驳回：漏标了两个行人",
            "你的任务《文本分类-0010》已驳回：类别标签错误，请修正",
        ],
        "{records:#?}"
    );
    assert!(records.iter().all(|r| r["read"] == false));
    let unread = f.run_cmd(&["history", "--unread", "--limit", "1"], None);
    assert!(unread.status.success(), "{unread:?}");
    assert_eq!(unread.stdout.lines().count(), 1, "{unread:?}");
    assert!(unread.stdout.contains("文本分类-0007"), "{unread:?}");

    // `taskbell status --json` tells the whole story.
    let st = f.run_cmd(&["status", "--json"], None);
    assert!(st.status.success(), "{st:?}");
    let st: Value = serde_json::from_str(&st.stdout).unwrap();
    assert_eq!(st["server"], f.server.base_url());
    assert_eq!(st["username"], "zhangsan");
    assert_eq!(st["signed_in"], true);
    assert_eq!(st["keyring"], "Secret Service");
    assert_eq!(st["notification_daemon"]["name"], "dunst");
    assert_eq!(st["unread"], 3);
    assert_eq!(st["last_state"]["running"], false);
    assert_eq!(st["daemon_running"], false);
    assert_eq!(st["last_state"]["status"]["user"]["username"], "zhangsan");
    let human = f.run_cmd(&["status"], None);
    assert!(human.status.success(), "{human:?}");
    for needle in [
        "zhangsan (signed in)",
        "Secret Service",
        "dunst",
        "unread:        3 of 3",
    ] {
        assert!(
            human.stdout.contains(needle),
            "{needle:?} in {}",
            human.stdout
        );
    }

    // The directory flags win over the environment variables.
    let other = f.dir.path().join("other");
    let flagged = f.run_cmd(
        &[
            "--config-dir",
            other.join("c").to_str().unwrap(),
            "--data-dir",
            other.join("d").to_str().unwrap(),
            "status",
            "--json",
        ],
        None,
    );
    assert!(flagged.status.success(), "{flagged:?}");
    let flagged: Value = serde_json::from_str(&flagged.stdout).unwrap();
    assert_eq!(flagged["signed_in"], false);
    assert_eq!(flagged["total"], 0);
    assert_eq!(
        flagged["config_file"],
        other.join("c").join("config.toml").to_str().unwrap()
    );

    // Logout removes the token from the keyring.
    let out = f.run_cmd(&["logout"], None);
    assert!(out.status.success(), "{out:?}");
    let items = f.desktop.keyring().unwrap().items().unwrap();
    assert!(items.iter().all(|i| i.secret != token), "{items:?}");
    let st = f.run_cmd(&["status", "--json"], None);
    let st: Value = serde_json::from_str(&st.stdout).unwrap();
    assert_eq!(st["signed_in"], false);
}

#[test]
fn run_without_a_notification_daemon_still_runs_and_logs() {
    let f = Fixture::start(DesktopOptions {
        notifications: false,
        keyring: true,
        tray: false,
    });
    let ok = f.login("lisi", "review-123");
    assert!(ok.status.success(), "{ok:?}");
    let mut run = f.start_run();
    let out = run.stdout().unwrap().clone();
    let toast = out
        .wait_for(WAIT, |l| l.contains(r#""event":"toast""#))
        .unwrap();
    let toast: Value = serde_json::from_str(&toast).unwrap();
    assert_eq!(toast["title"], WELCOME_TITLE);
    out.wait_for(WAIT, |l| l.contains(r#""event":"connected""#))
        .unwrap();
    // A reviewer's summary: "有 N 个任务待审核" (two tasks are submitted in the demo data).
    assert!(
        toast["body"]
            .as_str()
            .unwrap()
            .contains("有 2 个任务待审核"),
        "{toast}"
    );
    // SIGINT (Ctrl-C) stops it as cleanly as SIGTERM.
    run.signal("INT").unwrap();
    let status = run.wait_timeout(WAIT).unwrap();
    assert!(status.success(), "{status}: {}", run.log());
    out.wait_closed(WAIT).unwrap();
    assert_eq!(events(&out.lines()).last().unwrap()["event"], "stopped");
    let log = run.log();
    assert!(
        log.contains("no notification daemon"),
        "the missing daemon is logged: {log}"
    );
}

#[test]
fn demo_runs_with_no_keyring_and_no_notification_daemon() {
    // No session bus at all: the demo keeps its token in memory and prints
    // toasts on the terminal.
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(binary("taskbell").unwrap());
    cmd.args(["demo", "--activity-secs", "1"])
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env_remove("DISPLAY")
        .env("LANG", "zh_CN.UTF-8")
        .env("LC_ALL", "zh_CN.UTF-8")
        .env("HOME", dir.path())
        .env("XDG_RUNTIME_DIR", dir.path())
        .env_remove("RUST_LOG");
    let mut demo =
        ChildGuard::spawn("taskbell-demo", &mut cmd, dir.path(), Stdout::Collect).unwrap();
    let out = demo.stdout().unwrap().clone();
    out.wait_for(WAIT, |l| l.contains(WELCOME_TITLE)).unwrap();
    out.wait_for(WAIT, |l| l.contains(URGENT_TITLE)).unwrap();
    out.wait_for(WAIT, |l| l.contains("connected")).unwrap();
    let status = demo.terminate(WAIT).unwrap();
    assert!(status.success(), "{status}: {}", demo.log());
    assert!(
        demo.log().contains("toasts are printed here instead"),
        "{}",
        demo.log()
    );
    let text = out.lines().join("\n");
    assert!(text.contains("zhangsan / annotate-123"), "{text}");
}

#[test]
fn login_prompts_for_the_password_without_echo() {
    use std::io::{Read, Write};
    use std::sync::{Arc, Mutex};

    let f = Fixture::start(DesktopOptions {
        notifications: false,
        keyring: true,
        tray: false,
    });
    // `script` gives the command a terminal, as an interactive shell would.
    let inner = format!(
        "{} login --server {} --username zhangsan",
        binary("taskbell").unwrap().display(),
        f.server.base_url()
    );
    let cmd = f.taskbell();
    let mut script = Command::new("script");
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => script.env(k, v),
            None => script.env_remove(k),
        };
    }
    let mut child = script
        .args(["-qec", &inner, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("script(1) from util-linux");
    let output = Arc::new(Mutex::new(Vec::new()));
    let reader = {
        let output = Arc::clone(&output);
        let mut stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 256];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                output.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        })
    };
    taskbell_e2e::wait_until("the password prompt", WAIT, || {
        String::from_utf8_lossy(&output.lock().unwrap())
            .contains("Password:")
            .then_some(())
    })
    .unwrap();
    // rpassword prints the prompt before it turns echo off: type the password only once the
    // terminal says echo is off (the pty `script` gave `taskbell`, read with stty).
    let tty = taskbell_e2e::wait_until("taskbell on its terminal", WAIT, || {
        let (pid, _) = taskbell_e2e::descendants(child.id())
            .into_iter()
            .find(|(_, comm)| comm == "taskbell")?;
        std::fs::read_link(format!("/proc/{pid}/fd/0"))
            .ok()
            .filter(|p| p.starts_with("/dev/pts/"))
    })
    .unwrap();
    taskbell_e2e::wait_until("echo off on the password prompt's terminal", WAIT, || {
        let out = Command::new("stty")
            .arg("-a")
            .arg("-F")
            .arg(&tty)
            .output()
            .ok()?;
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .any(|flag| flag == "-echo")
            .then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.lock().unwrap())));
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"annotate-123\n").unwrap();
    let status = child.wait().unwrap();
    drop(stdin);
    reader.join().unwrap();
    let text = String::from_utf8_lossy(&output.lock().unwrap()).into_owned();
    assert!(status.success(), "{status}: {text}");
    assert!(text.contains("Signed in to"), "{text}");
    assert!(text.contains("Secret Service"), "{text}");
    assert!(
        !text.contains("annotate-123"),
        "the password was echoed: {text}"
    );
}

/// Two accounts on two real servers: `login` adds the second, `accounts` lists both,
/// one `run` holds both connections and names the account on each event and toast,
/// `logout` wants the account named and signs out that one only. The first account's
/// files stay where a single account's always were (a config from before accounts
/// needs no migration).
#[test]
fn two_accounts_on_two_servers_run_side_by_side() {
    let f = Fixture::start(DesktopOptions::default());
    let b = ServerProcess::start(ServerOptions::default()).expect("a second server");
    let a_url = f.server.base_url();
    let b_url = b.base_url();
    let port = |u: &str| {
        u.rsplit(':')
            .next()
            .unwrap()
            .trim_end_matches('/')
            .to_string()
    };
    let a_id = format!("zhangsan@127.0.0.1_{}", port(&a_url));
    let b_id = format!("lisi@127.0.0.1_{}", port(&b_url));

    // The annotator on A (the first account), then the reviewer on B.
    assert!(f.login("zhangsan", "annotate-123").status.success());
    let added = f.run_cmd(
        &[
            "login",
            "--server",
            &b_url,
            "--username",
            "lisi",
            "--password-stdin",
        ],
        Some("review-123\n"),
    );
    assert!(added.status.success(), "{added:?}");
    let main = std::fs::read_to_string(f.config_dir().join("config.toml")).unwrap();
    assert!(
        main.contains("zhangsan") && !main.contains("lisi"),
        "{main}"
    );
    let second = f
        .config_dir()
        .join("accounts")
        .join(&b_id)
        .join("config.toml");
    assert!(std::fs::read_to_string(&second).unwrap().contains("lisi"));

    let listed = f.run_cmd(&["accounts", "--json"], None);
    assert!(listed.status.success(), "{listed:?}");
    let listed: Value = serde_json::from_str(&listed.stdout).unwrap();
    let rows: Vec<(String, bool, bool)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["id"].as_str().unwrap().to_string(),
                a["primary"].as_bool().unwrap(),
                a["signed_in"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [(a_id.clone(), true, true), (b_id.clone(), false, true)]
    );

    // One run, two connections; every event names its account.
    let mut run = f.start_run();
    let out = run.stdout().unwrap().clone();
    for id in [&a_id, &b_id] {
        out.wait_for(WAIT, |l| {
            l.contains(r#""event":"caught_up""#) && l.contains(&format!(r#""account":"{id}""#))
        })
        .unwrap_or_else(|e| panic!("{e}: {id} caught up\n{}", run.log()));
    }
    f.desktop.dunst().unwrap().close_all().unwrap();
    // On B the annotator submits: B's reviewer (lisi) is told, named on the toast.
    let annotator_b = {
        let v = rest(
            "POST",
            &format!("{b_url}/api/auth/login"),
            None,
            Some(json!({"username": "zhangsan", "password": "annotate-123"})),
        );
        v["data"]["access_token"].as_str().unwrap().to_string()
    };
    let v = rest(
        "POST",
        &format!("{b_url}/api/tasks/task-1001/submit"),
        Some(&annotator_b),
        None,
    );
    assert_eq!(v["success"], true, "{v}");
    // (Each account's welcome toast is named too: "lisi@… · 登录成功".)
    f.wait_notify("lisi's welcome, named", |c| {
        c.summary == format!("{b_id} · 登录成功")
    });
    let on_b = f.wait_notify("the submission on B, for lisi", |c| {
        c.summary == format!("{b_id} · 新任务待审核")
    });
    assert!(!on_b.body.is_empty(), "{on_b:?}");
    let event = out
        .wait_for(WAIT, |l| {
            l.contains(r#""event":"notification""#) && l.contains(&b_id)
        })
        .unwrap();
    assert!(event.contains("task_submitted"), "{event}");
    // On A a reviewer rejects zhangsan's task: A's account is named.
    let reviewer_a = f.rest_login("lisi", "review-123");
    f.reject(&reviewer_a, "task-1006", "类别标签错误，请修正");
    let on_a = f.wait_notify("the rejection on A, for zhangsan", |c| {
        c.summary == format!("{a_id} · 任务审核结果")
    });
    assert!(on_a.body.contains("文本分类-0010"), "{on_a:?}");
    run.signal("TERM").unwrap();
    let status = run.wait_timeout(WAIT).unwrap();
    assert!(status.success(), "{status:?}\n{}", run.log());
    // Each account's history is its own.
    let hist = |account: &str| -> Vec<String> {
        let h = f.run_cmd(&["history", "--json", "--account", account], None);
        assert!(h.status.success(), "{h:?}");
        serde_json::from_str::<Value>(&h.stdout)
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["notification"]["kind"].as_str().unwrap_or("").to_string())
            .collect()
    };
    assert!(hist(&b_id).contains(&"task_submitted".to_string()));
    assert!(!hist(&a_id).contains(&"task_submitted".to_string()));
    assert!(hist("zhangsan").contains(&"task_reviewed".to_string()));

    // Logout needs the account named when there are several; then only that one goes.
    let which = f.run_cmd(&["logout"], None);
    assert_one_line_failure(&which, "several accounts");
    let out_b = f.run_cmd(&["logout", &b_id], None);
    assert!(out_b.status.success(), "{out_b:?}");
    let listed: Value =
        serde_json::from_str(&f.run_cmd(&["accounts", "--json"], None).stdout).unwrap();
    let signed: Vec<bool> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["signed_in"].as_bool().unwrap())
        .collect();
    assert_eq!(signed, [true, false]);
    let unknown = f.run_cmd(&["logout", "wangwu"], None);
    assert_one_line_failure(&unknown, "no account");
}
