//! The fault harness (issue 5): random faults — server killed and restarted, connection
//! black-holed, token revoked with remember-me on — during a stream of notifications to the
//! real engine (a child process with the desktop notifier on a private session bus). Every
//! notification must be announced once, shown in exactly one toast (one `Notify` call each),
//! and stored once in the history.
//!
//! The big run is opt-in (minutes of faults):
//! `cargo test -p taskbell-bench --release -- --ignored` (seed printed; repeat one with
//! `TASKBELL_FAULT_SEED=<seed>`). A short stream with one fault of each kind runs by default.

use std::path::PathBuf;
use std::time::Duration;

use taskbell_bench::faults::{self, Fault, Plan};
use taskbell_bench::scenarios::{Bench, Sizes};

fn exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_taskbell-bench"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "fault harness: run with cargo test -p taskbell-bench --release -- --ignored"]
async fn hundred_random_faults_during_two_thousand_notifications_lose_and_repeat_nothing() {
    let bench = Bench::start(exe(), Sizes::quick()).await.unwrap();
    let plan = Plan::random(2000, 100, faults::seed_from_env());
    eprintln!(
        "seed {} (TASKBELL_FAULT_SEED={} repeats this run)",
        plan.seed, plan.seed
    );
    let out = faults::run(&bench, &plan).await.unwrap();
    eprintln!("{}", out.summary());
    assert!(
        out.problems.is_empty(),
        "seed {}:\n{}",
        plan.seed,
        out.summary()
    );
    assert_eq!(out.published, 2000);
    assert_eq!(out.faults.values().sum::<usize>(), 100, "{:?}", out.faults);
    assert_eq!(out.announced, 2000);
    assert_eq!(out.history_rows, 2000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_stream_with_each_fault_once_loses_and_repeats_nothing() {
    let bench = Bench::start(exe(), Sizes::quick()).await.unwrap();
    let plan = Plan {
        notifications: 40,
        faults: vec![
            (10, Fault::Restart(Duration::from_millis(300))),
            (20, Fault::BlackHole),
            (30, Fault::Revoke),
        ],
        pace: None,
        fast_timing: true,
        rss_every: None,
        seed: 0,
        log_faults: true,
        settle: true,
    };
    let out = faults::run(&bench, &plan).await.unwrap();
    assert!(out.problems.is_empty(), "{}", out.summary());
    assert_eq!(out.published, 40);
    assert_eq!(out.announced, 40);
    assert_eq!(out.history_rows, 40);
    for kind in ["restart", "black_hole", "revoke"] {
        assert_eq!(out.faults.get(kind), Some(&1), "{:?}", out.faults);
    }
    // Every toast reached the daemon, and at least one per fold group was shown.
    assert!(
        out.toasts >= 1 && out.notify_calls == out.toasts,
        "{}",
        out.summary()
    );
}

#[test]
fn random_plans_are_reproducible_from_their_seed() {
    let a = Plan::random(2000, 100, 42);
    let b = Plan::random(2000, 100, 42);
    let c = Plan::random(2000, 100, 43);
    assert_eq!(a.faults, b.faults);
    assert_ne!(a.faults, c.faults);
    assert_eq!(a.faults.len(), 100);
    assert!(a.faults.windows(2).all(|w| w[0].0 <= w[1].0));
    assert!(a.faults.iter().all(|(at, _)| *at < 2000));
    // All three kinds occur in a hundred draws.
    assert!(a.faults.iter().any(|(_, f)| matches!(f, Fault::Restart(_))));
    assert!(a.faults.iter().any(|(_, f)| *f == Fault::BlackHole));
    assert!(a.faults.iter().any(|(_, f)| *f == Fault::Revoke));
}

#[test]
fn the_soak_plan_has_a_fault_every_five_minutes_in_turn() {
    let p = Plan::soak(16, 1);
    assert_eq!(p.notifications, 960);
    assert_eq!(p.pace, Some(Duration::from_secs(1)));
    let at: Vec<usize> = p.faults.iter().map(|(a, _)| *a).collect();
    assert_eq!(at, vec![300, 600, 900]);
    assert!(matches!(p.faults[0].1, Fault::Restart(_)));
    assert_eq!(p.faults[1].1, Fault::BlackHole);
    assert_eq!(p.faults[2].1, Fault::Revoke);
}
