//! The test scenarios of protocol.md §6 (seed 003 §测试验证), each a named test: the core
//! engine against the reference server in-process on port 0, toasts recorded.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use serde_json::json;
use taskbell_core::delivery::Urgency;
use taskbell_core::i18n::Lang;
use taskbell_core::protocol::{NotificationKind, Role};
use taskbell_core::summary::{self, SummaryCounts};
use taskbell_core::supervisor::{Event, ExitReason, State};
use taskbell_server::{DEMO_ANNOTATOR, DEMO_REVIEWER, RunningServer, ServerConfig};

/// 1. An annotator submits → reviewers get "新任务待审核" at once; a reviewer reviews → the
/// annotator gets the result at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_1_submit_reaches_reviewers_and_review_reaches_annotator() {
    let s = server().await;
    let base = s.base_url();
    let mut zs = Client::start(&base, DEMO_ANNOTATOR, Setup::default()).await;
    let mut ls = Client::start(&base, DEMO_REVIEWER, Setup::default()).await;
    zs.wait_synced().await;
    ls.wait_synced().await;

    let zs_token = token_of(&base, DEMO_ANNOTATOR).await;
    let (st, body) = post(
        &base,
        "/api/tasks/task-1001/submit",
        Some(&zs_token),
        json!({}),
    )
    .await;
    assert_eq!(st, 200, "{body}");
    let n = match ls
        .wait_event(
            "task_submitted",
            |e| matches!(e, Event::Notification(n) if n.kind == NotificationKind::TaskSubmitted),
        )
        .await
    {
        Event::Notification(n) => n,
        _ => unreachable!(),
    };
    assert_eq!(n.task_id.as_deref(), Some("task-1001"));
    assert!(n.content.contains("图像标注-0041"), "{n:?}");
    let toast = ls
        .notifier
        .wait_for(WAIT, |t| t.keys.contains(&n.key))
        .await
        .expect("the reviewer's toast is shown");
    assert_eq!(toast.title, n.title);
    assert_eq!(
        toast.open_url.as_deref(),
        Some(format!("{base}/tasks/task-1001").as_str())
    );

    let ls_token = token_of(&base, DEMO_REVIEWER).await;
    let (st, body) = post(
        &base,
        "/api/tasks/task-1001/review",
        Some(&ls_token),
        json!({"action": "reject", "comment": "请重新标注"}),
    )
    .await;
    assert_eq!(st, 200, "{body}");
    let r = match zs
        .wait_event(
            "task_reviewed",
            |e| matches!(e, Event::Notification(n) if n.kind == NotificationKind::TaskReviewed),
        )
        .await
    {
        Event::Notification(n) => n,
        _ => unreachable!(),
    };
    assert_eq!(r.task_id.as_deref(), Some("task-1001"));
    assert!(r.content.contains("驳回"), "{r:?}");
    let toast = zs
        .notifier
        .wait_for(WAIT, |t| t.keys.contains(&r.key))
        .await
        .expect("the annotator's toast is shown");
    assert_eq!(
        toast.urgency,
        Urgency::Critical,
        "a rejection is high priority"
    );
    // The annotator did not get the reviewers' notification.
    assert!(
        zs.notifications()
            .iter()
            .all(|n| n.kind != NotificationKind::TaskSubmitted)
    );
    assert_eq!(zs.stop().await, ExitReason::Shutdown);
    assert_eq!(ls.stop().await, ExitReason::Shutdown);
}

/// 2. The annotator quits; a reviewer rejects a task; the annotator logs in again → the
/// summary shows the rejected tasks, and the urgent toast follows 3 s later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_2_offline_summary_shows_rejected_and_urgent_toast_later() {
    let s = server().await;
    let base = s.base_url();
    let mut zs = Client::start(&base, DEMO_ANNOTATOR, Setup::default()).await;
    zs.wait_synced().await;
    assert_eq!(zs.stop().await, ExitReason::Shutdown);

    // While the annotator is away, a reviewer rejects the submitted task-1006 (assigned to 1).
    let ls_token = token_of(&base, DEMO_REVIEWER).await;
    let (st, body) = post(
        &base,
        "/api/tasks/task-1006/review",
        Some(&ls_token),
        json!({"action": "reject", "comment": "分类错误"}),
    )
    .await;
    assert_eq!(st, 200, "{body}");

    // The counts the summary must show, read independently from the server.
    let zs_token = token_of(&base, DEMO_ANNOTATOR).await;
    let (_, mine) = get(&base, "/api/tasks/my", Some(&zs_token)).await;
    let list = mine["data"]["list"].as_array().unwrap();
    let count = |st: &str| list.iter().filter(|t| t["status"] == st).count() as u32;
    let expected = summary::render(
        Some(&SummaryCounts {
            role: Role::Annotator,
            rejected: count("rejected"),
            in_progress: count("in_progress"),
            pending_reviews: 0,
            pending_skips: 0,
        }),
        DEMO_ANNOTATOR.real_name,
        Lang::ZhCn,
    );
    assert_eq!(count("rejected"), 2, "task-1002 and task-1006 are rejected");

    let started = std::time::Instant::now();
    let mut zs = zs.restart();
    // The summary comes from a task of its own and races the catch-up: every wait below
    // also looks at the events already read.
    let sum = match zs
        .wait_seen("summary", |e| matches!(e, Event::Summary(_)))
        .await
    {
        Event::Summary(s) => s,
        _ => unreachable!(),
    };
    assert_eq!(sum, expected);
    assert!(!sum.unavailable);
    assert!(
        sum.body_lines.iter().any(|l| l.contains("2 个被驳回任务")),
        "{sum:?}"
    );
    let welcome = zs
        .notifier
        .wait_for(WAIT, |t| t.title == "登录成功")
        .await
        .expect("welcome toast");
    assert!(
        welcome.body.contains(DEMO_ANNOTATOR.real_name),
        "{welcome:?}"
    );
    let urgent = zs
        .notifier
        .wait_for(WAIT, |t| {
            t.urgency == Urgency::Critical && t.title.contains("驳回")
        })
        .await
        .expect("urgent toast");
    assert!(urgent.body.contains('2'), "{urgent:?}");
    // It follows the welcome toast, no sooner than the 3 s delay after the engine started.
    assert!(started.elapsed() >= summary::URGENT_DELAY);
    let toasts = zs.notifier.toasts();
    let pos = |pred: &dyn Fn(&taskbell_core::delivery::Toast) -> bool| {
        toasts.iter().position(pred).unwrap()
    };
    assert!(pos(&|t| t.title == "登录成功") < pos(&|t| t.title == urgent.title));
    // The rejection itself is also caught up from the history, exactly once.
    let reviewed = zs
        .wait_seen(
            "caught-up rejection",
            |e| matches!(e, Event::Notification(n) if n.task_id.as_deref() == Some("task-1006")),
        )
        .await;
    assert!(matches!(reviewed, Event::Notification(_)));
    zs.wait_seen("caught up", |e| matches!(e, Event::CaughtUp { .. }))
        .await;
    let n = zs
        .notifications()
        .iter()
        .filter(|n| n.task_id.as_deref() == Some("task-1006"))
        .count();
    assert_eq!(n, 1);
    zs.stop().await;
}

/// 3. Three submissions 3 s apart → three separate notifications, each with its own content.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_3_three_submissions_three_separate_notifications() {
    let s = server().await;
    let base = s.base_url();
    let mut ls = Client::start(&base, DEMO_REVIEWER, Setup::default()).await;
    ls.wait_synced().await;
    let zs_token = token_of(&base, DEMO_ANNOTATOR).await;
    let tasks = [
        ("task-1001", "图像标注-0041"),
        ("task-1002", "图像标注-0042"),
        ("task-1003", "文本分类-0007"),
    ];
    let mut keys = Vec::new();
    for (i, (id, title)) in tasks.iter().enumerate() {
        if i > 0 {
            // The scenario's own spacing (its input), not a synchronisation.
            tokio::time::sleep(std::time::Duration::from_secs(3)).await;
        }
        let (st, body) = post(
            &base,
            &format!("/api/tasks/{id}/submit"),
            Some(&zs_token),
            json!({}),
        )
        .await;
        assert_eq!(st, 200, "{body}");
        let n = ls.wait_notification(title).await;
        assert_eq!(n.task_id.as_deref(), Some(*id));
        keys.push(n.key.clone());
        let t = ls
            .notifier
            .wait_for(WAIT, |t| t.keys == vec![n.key.clone()])
            .await
            .expect("its own toast");
        assert!(t.body.contains(title), "{t:?}");
        assert_eq!(t.folded, 1);
    }
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 3);
    assert_eq!(
        ls.notifications()
            .iter()
            .filter(|n| n.kind == NotificationKind::TaskSubmitted)
            .count(),
        3
    );
    ls.stop().await;
}

/// 4. Heartbeat: pings at the interval, each answered, latency shown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_4_heartbeat_pings_are_answered_and_latency_shown() {
    let s = server().await;
    let base = s.base_url();
    let mut zs = Client::start(&base, DEMO_ANNOTATOR, Setup::default()).await;
    zs.wait_event("connected", |e| matches!(e, Event::Connected))
        .await;
    for _ in 0..3 {
        zs.wait_event("latency", |e| matches!(e, Event::Latency { .. }))
            .await;
    }
    let st = zs
        .wait_state("connected with latency", |s| {
            matches!(
                s.state,
                State::Connected {
                    latency_ms: Some(_)
                }
            )
        })
        .await;
    assert!(st.latency_ms.is_some());
    assert_eq!(st.reconnects, 0, "no reconnect while pongs come back");
    assert!(
        !zs.seen
            .iter()
            .any(|e| matches!(e, Event::Reconnecting { .. }))
    );
    zs.stop().await;
}

/// 5. Server restart → the client notices the close, reconnects with backoff, is subscribed
/// again, and notifications work; none is repeated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_5_server_restart_reconnect_and_notifications_work() {
    let s = server().await;
    let addr = s.addr();
    let base = s.base_url();
    let mut zs = Client::start(&base, DEMO_ANNOTATOR, Setup::default()).await;
    zs.wait_synced().await;
    notify_user(&base, DEMO_ANNOTATOR.id, "重启前").await;
    zs.wait_notification("重启前").await;

    s.shutdown().await;
    let r = zs
        .wait_event("reconnecting", |e| matches!(e, Event::Reconnecting { .. }))
        .await;
    if let Event::Reconnecting { reason, .. } = &r {
        assert!(
            reason.contains("1001") || reason.contains("closed"),
            "{reason}"
        );
    }

    // The same server comes back on the same port (same signing secret: the token stays valid).
    let s2 = start_on(addr, server_config).await;
    zs.wait_synced().await;
    notify_user(&base, DEMO_ANNOTATOR.id, "重启后").await;
    zs.wait_notification("重启后").await;
    let contents: Vec<String> = zs.notifications().into_iter().map(|n| n.content).collect();
    assert_eq!(
        contents.iter().filter(|c| c.as_str() == "重启前").count(),
        1,
        "{contents:?}"
    );
    assert_eq!(
        contents.iter().filter(|c| c.as_str() == "重启后").count(),
        1,
        "{contents:?}"
    );
    assert!(zs.state.borrow().reconnects >= 1);
    zs.stop().await;
    s2.shutdown().await;
}

/// Starts a server with `cfg()` on `addr`, the port of one that just stopped: retries while
/// the old listener is still being torn down (bounded by `WAIT`).
async fn start_on(addr: std::net::SocketAddr, cfg: impl Fn() -> ServerConfig) -> RunningServer {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match taskbell_server::start(ServerConfig {
            listen: addr,
            ..cfg()
        })
        .await
        {
            Ok(s) => return s,
            Err(e) if tokio::time::Instant::now() < deadline => {
                // Nothing to await: the kernel frees the port when the old socket is gone.
                eprintln!("port not free yet: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(e) => panic!("restart on {addr}: {e}"),
        }
    }
}

/// 6. The same account on two clients → both receive every notification.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_6_same_account_on_two_clients_both_receive() {
    let s = server().await;
    let base = s.base_url();
    let mut a = Client::start(&base, DEMO_ANNOTATOR, Setup::default()).await;
    let mut b = Client::start(&base, DEMO_ANNOTATOR, Setup::default()).await;
    a.wait_synced().await;
    b.wait_synced().await;
    for i in 0..3 {
        notify_user(&base, DEMO_ANNOTATOR.id, &format!("双端-{i}")).await;
    }
    for i in 0..3 {
        let na = a.wait_notification(&format!("双端-{i}")).await;
        let nb = b.wait_notification(&format!("双端-{i}")).await;
        assert_eq!(na.id, nb.id, "the same notification on both");
    }
    for c in [&a, &b] {
        assert!(c.notifier.wait_for_count(WAIT, 3).await.is_some());
    }
    a.stop().await;
    b.stop().await;
}

/// 5 with a real kill: the server process dies without closing sockets, notifications are
/// published meanwhile on another instance (same Redis), the server comes back on the same
/// port → the client reconnects and catches up each missed notification exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_5_killed_server_restart_catches_up_exactly_once() {
    let redis = Redis::start().expect("redis starts");
    let cfg = || ServerConfig {
        redis_url: Some(redis.url()),
        ..server_config()
    };
    let a = taskbell_server::start(cfg()).await.expect("instance A");
    let addr = a.addr();
    let base = a.base_url();
    let mut zs = Client::start(&base, DEMO_ANNOTATOR, Setup::default()).await;
    zs.wait_synced().await;
    notify_user(&base, DEMO_ANNOTATOR.id, "杀前").await;
    zs.wait_notification("杀前").await;

    drop(a); // killed: sockets dropped without a close frame
    zs.wait_event("reconnecting", |e| matches!(e, Event::Reconnecting { .. }))
        .await;
    let b = taskbell_server::start(cfg()).await.expect("instance B");
    for i in 0..3 {
        notify_user(&b.base_url(), DEMO_ANNOTATOR.id, &format!("停机-{i}")).await;
    }
    // A comes back on its port.
    let a2 = start_on(addr, cfg).await;
    for i in 0..3 {
        zs.wait_notification(&format!("停机-{i}")).await;
    }
    zs.wait_event("pong on the new connection", |e| {
        matches!(e, Event::Latency { .. })
    })
    .await;
    notify_user(&base, DEMO_ANNOTATOR.id, "重启后").await;
    zs.wait_notification("重启后").await;
    let contents: Vec<String> = zs.notifications().into_iter().map(|n| n.content).collect();
    for c in ["杀前", "停机-0", "停机-1", "停机-2", "重启后"] {
        assert_eq!(
            contents.iter().filter(|x| x.as_str() == c).count(),
            1,
            "{c}: {contents:?}"
        );
    }
    zs.stop().await;
    a2.shutdown().await;
    b.shutdown().await;
}
