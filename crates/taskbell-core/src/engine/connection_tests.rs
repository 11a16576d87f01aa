//! Every rule of the connection, with plain `Instant`s: no sockets, no runtime.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::StdRng;

use super::*;
use crate::protocol::{self, Role};

const WALL0: i64 = 1_700_000_000_000;

fn rules() -> Rules {
    Rules {
        backoff: BackoffPolicy::default(),
        policy_close_floor: Duration::from_secs(30),
        clock_jump: Duration::from_secs(10),
        catchup_retry: Duration::from_secs(5),
        auth_refusal_window: Duration::from_secs(600),
        snooze: Duration::from_secs(3600),
    }
}

fn user() -> User {
    User {
        id: "7".to_string(),
        username: "zhangsan".to_string(),
        real_name: "张三".to_string(),
        role: Role::Annotator,
        project_ids: Vec::new(),
    }
}

fn note(id: &str) -> Notification {
    let text = format!(
        r#"{{"type":"task_reviewed","id":"{id}","title":"t {id}","content":"c {id}","timestamp":1700000000}}"#
    );
    match protocol::decode_at(&text, WALL0).unwrap() {
        Inbound::Notification(n) => n,
        other => panic!("{other:?}"),
    }
}

fn page(ids: &[&str]) -> NotificationPage {
    NotificationPage {
        list: ids.iter().map(|i| note(i)).collect(),
        next_cursor: None,
        last_id: ids.last().map(|i| i.to_string()),
    }
}

/// A full page (`CATCHUP_LIMIT` notifications) ending at `last`.
fn full_page(prefix: &str) -> NotificationPage {
    let ids: Vec<String> = (0..CATCHUP_LIMIT)
        .map(|i| format!("{prefix}-{i:03}"))
        .collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    page(&refs)
}

/// The machine, a clock, and what it said.
struct Rig {
    m: Connection,
    t0: Instant,
    now: Instant,
    last_ping: Option<i64>,
}

impl Rig {
    fn new() -> Rig {
        Rig::with(Config::default(), rules())
    }

    /// The history's answer that the live notification `key` was stored as new.
    fn store_new_live(&mut self, key: &str) -> Vec<Action> {
        self.feed(Input::Stored(StoreReport {
            tag: StoreTag::Live,
            outcomes: vec![(note(key), Outcome::New)],
            one_by_one: false,
        }))
    }

    fn with(config: Config, rules: Rules) -> Rig {
        let t0 = Instant::now();
        Rig {
            m: Connection::new(
                config,
                Lang::En,
                "zhangsan".to_string(),
                rules,
                StdRng::seed_from_u64(0x7a5c_be11),
            ),
            t0,
            now: t0,
            last_ping: None,
        }
    }

    fn at(&self) -> Now {
        let ms = i64::try_from((self.now - self.t0).as_millis()).unwrap();
        Now {
            mono: self.now,
            wall_ms: WALL0 + ms,
            local_minute: 12 * 60,
        }
    }

    fn feed(&mut self, input: Input) -> Vec<Action> {
        let out = self.m.handle(input, self.at());
        for a in &out {
            if let Action::Send(Outbound::Ping { timestamp, .. }) = a {
                self.last_ping = Some(*timestamp);
            }
        }
        out
    }

    /// Moves the clock on by `d` and ticks (whether or not a deadline passed).
    fn advance(&mut self, d: Duration) -> Vec<Action> {
        self.now += d;
        self.feed(Input::Tick)
    }

    /// Ticks at every deadline up to `d` from now; returns everything said.
    fn run_for(&mut self, d: Duration) -> Vec<Action> {
        let end = self.now + d;
        let mut all = Vec::new();
        while let Some(at) = self.m.deadline() {
            if at > end {
                break;
            }
            self.now = self.now.max(at);
            all.extend(self.feed(Input::Tick));
        }
        self.now = end;
        all
    }

    /// Waits out a backoff delay as published (whole ms, so up to 1 ms short).
    fn wait_out(&mut self, delay: Duration) -> Vec<Action> {
        self.run_for(delay + Duration::from_millis(1))
    }

    fn cmd(&mut self, c: Command) -> Vec<Action> {
        self.feed(Input::Command(c))
    }

    /// Start → signed in → socket open.
    fn connected() -> Rig {
        let mut r = Rig::new();
        r.connect();
        r
    }

    fn connect(&mut self) -> Vec<Action> {
        let mut all = self.feed(Input::Start);
        all.extend(self.feed(Input::SignedIn(user())));
        all.extend(self.feed(Input::Opened));
        all
    }

    /// After a wait, from `SignIn` to open again.
    fn reconnect(&mut self) -> Vec<Action> {
        let mut all = self.feed(Input::SignedIn(user()));
        all.extend(self.feed(Input::Opened));
        all
    }

    fn pong(&mut self) -> Vec<Action> {
        let ts = self.last_ping.expect("a ping was sent");
        self.feed(Input::Frame(Inbound::Pong {
            timestamp: ts,
            server_time: None,
        }))
    }

    fn fetched(&mut self, asked_with: Option<&str>, page: NotificationPage) -> Vec<Action> {
        self.feed(Input::Fetched {
            asked_with: asked_with.map(str::to_string),
            result: Ok(Some(page)),
        })
    }

    fn fetch_failed(&mut self, e: ApiError) -> Vec<Action> {
        self.feed(Input::Fetched {
            asked_with: Some("c0".to_string()),
            result: Err(e),
        })
    }

    /// Answers every store request in `actions` as the history would: all new.
    fn store_all_new(&mut self, actions: &[Action]) -> Vec<Action> {
        let mut all = Vec::new();
        for a in actions {
            if let Action::Store { notes, tag, .. } = a {
                all.extend(self.feed(Input::Stored(StoreReport {
                    tag: *tag,
                    outcomes: notes.iter().map(|n| (n.clone(), Outcome::New)).collect(),
                    one_by_one: false,
                })));
            }
        }
        all
    }

    /// Pong, an empty catch-up page, stored: the connection is caught up.
    fn catch_up(&mut self) -> Vec<Action> {
        let mut all = self.pong();
        assert!(all.contains(&Action::Fetch(Since::StoredCursor)), "{all:?}");
        let stores = self.fetched(Some("c0"), page(&[]));
        all.extend(self.store_all_new(&stores));
        all.extend(stores);
        all
    }

    fn live(&mut self, id: &str) -> Vec<Action> {
        self.feed(Input::Frame(Inbound::Notification(note(id))))
    }
}

fn events(actions: &[Action]) -> Vec<&Event> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Emit(e) => Some(e),
            _ => None,
        })
        .collect()
}

fn states(actions: &[Action]) -> Vec<&State> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Status(StatusChange::State(s)) => Some(s),
            _ => None,
        })
        .collect()
}

/// The `Reconnecting` event: (reason, delay, attempt).
fn reconnecting(actions: &[Action]) -> Option<(String, Duration, u32)> {
    events(actions).into_iter().find_map(|e| match e {
        Event::Reconnecting {
            reason,
            delay_ms,
            attempt,
        } => Some((reason.clone(), Duration::from_millis(*delay_ms), *attempt)),
        _ => None,
    })
}

fn errors(actions: &[Action]) -> Vec<String> {
    events(actions)
        .into_iter()
        .filter_map(|e| match e {
            Event::Error { message } => Some(message.clone()),
            _ => None,
        })
        .collect()
}

fn exit(actions: &[Action]) -> Option<&ExitReason> {
    actions.iter().find_map(|a| match a {
        Action::Exit(r) => Some(r),
        _ => None,
    })
}

fn stores(actions: &[Action]) -> Vec<(Vec<String>, Option<String>, StoreTag)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Store { notes, cursor, tag } => Some((
                notes.iter().map(|n| n.key.clone()).collect(),
                cursor.clone(),
                *tag,
            )),
            _ => None,
        })
        .collect()
}

fn count(actions: &[Action], f: impl Fn(&Action) -> bool) -> usize {
    actions.iter().filter(|a| f(a)).count()
}

fn closed(code: u16, reason: &str) -> Input {
    Input::Closed {
        code: Some(code),
        reason: reason.to_string(),
    }
}

// ---- start, sign-in -------------------------------------------------------

#[test]
fn start_signs_in_summarises_once_connects_and_pings_at_once() {
    let mut r = Rig::new();
    let a = r.feed(Input::Start);
    assert_eq!(
        a,
        vec![
            Action::Status(StatusChange::State(State::Connecting)),
            Action::SignIn
        ]
    );
    let a = r.feed(Input::SignedIn(user()));
    assert_eq!(
        a,
        vec![
            Action::Status(StatusChange::User(user())),
            Action::Summary,
            Action::Connect
        ]
    );
    let a = r.feed(Input::Opened);
    assert_eq!(states(&a), vec![&State::Connected { latency_ms: None }]);
    assert!(events(&a).contains(&&Event::Connected));
    assert!(a.contains(&Action::Send(Outbound::Ping {
        timestamp: WALL0,
        user_id: "7".to_string(),
        username: "zhangsan".to_string(),
    })));
    // The next ping is due one interval later.
    assert_eq!(
        r.m.deadline(),
        Some(r.t0 + Duration::from_secs(10)),
        "pong deadline first"
    );
    r.pong();
    // The pong is a frame: the next ping waits an interval and the slack (2 s) after it.
    assert_eq!(r.m.deadline(), Some(r.t0 + Duration::from_secs(32)));

    // A second session (after a drop) does not repeat the summary.
    r.feed(Input::Lost("connection lost: reset".to_string()));
    r.run_for(Duration::from_secs(2));
    let a = r.feed(Input::SignedIn(user()));
    assert!(!a.contains(&Action::Summary), "{a:?}");
    assert!(a.contains(&Action::Connect));
}

#[test]
fn sign_in_without_a_session_signs_out_with_the_reason() {
    let mut r = Rig::new();
    r.feed(Input::Start);
    let a = r.feed(Input::SignInFailed(SignInFailure::Ended(
        "session ended".to_string(),
    )));
    assert_eq!(
        states(&a),
        vec![&State::SignedOut {
            reason: Some("session ended".to_string())
        }]
    );
    assert!(events(&a).contains(&&Event::SignedOut {
        reason: Some("session ended".to_string())
    }));
    assert_eq!(exit(&a), Some(&ExitReason::SignedOut));
    assert!(r.m.is_stopped());
    assert_eq!(r.m.deadline(), None);
    assert!(r.cmd(Command::ReconnectNow).is_empty(), "stopped for good");
}

#[test]
fn a_keyring_failure_stops_the_engine() {
    let mut r = Rig::new();
    r.feed(Input::Start);
    let a = r.feed(Input::SignInFailed(SignInFailure::Keyring(
        "no keyring".into(),
    )));
    assert_eq!(errors(&a), vec!["no keyring".to_string()]);
    assert_eq!(exit(&a), Some(&ExitReason::Failed("no keyring".into())));
}

#[test]
fn a_403_while_signing_in_stops_with_access_denied() {
    let mut r = Rig::new();
    r.feed(Input::Start);
    let a = r.feed(Input::SignInFailed(SignInFailure::Forbidden(
        "banned".into(),
    )));
    assert_eq!(
        a,
        vec![Action::Exit(ExitReason::AccessDenied("banned".into()))]
    );
}

#[test]
fn a_transient_sign_in_failure_waits_at_least_the_retry_after() {
    let mut r = Rig::new();
    r.feed(Input::Start);
    let a = r.feed(Input::SignInFailed(SignInFailure::Transient {
        reason: "rate limited".into(),
        retry_after: Some(Duration::from_secs(20)),
    }));
    let (reason, delay, attempt) = reconnecting(&a).unwrap();
    assert_eq!((reason.as_str(), attempt), ("rate limited", 1));
    assert!(delay >= Duration::from_secs(20));
    assert!(
        !a.iter()
            .any(|a| matches!(a, Action::Status(StatusChange::Reconnected))),
        "a failed sign-in is no reconnect"
    );
    let later = r.wait_out(delay);
    assert!(later.contains(&Action::SignIn), "{later:?}");
}

#[test]
fn a_reconnect_command_while_signing_in_starts_over() {
    let mut r = Rig::new();
    r.feed(Input::Start);
    let a = r.cmd(Command::ReconnectNow);
    assert_eq!(
        a,
        vec![
            Action::Status(StatusChange::State(State::Connecting)),
            Action::SignIn
        ]
    );
}

// ---- close codes (protocol.md §3) ------------------------------------------

#[test]
fn close_4001_forgets_the_token_and_signs_in_again_at_once() {
    let mut r = Rig::connected();
    let a = r.feed(closed(4001, "token expired"));
    assert_eq!(
        a,
        vec![
            Action::Close(Close::Gone),
            Action::Status(StatusChange::LatencyUnknown),
            Action::ForgetToken,
            Action::Status(StatusChange::Reconnected),
            Action::Status(StatusChange::State(State::Connecting)),
            Action::SignIn,
        ]
    );
}

#[test]
fn http_401_on_the_upgrade_is_a_4001() {
    let mut r = Rig::new();
    r.feed(Input::Start);
    r.feed(Input::SignedIn(user()));
    let a = r.feed(Input::ConnectFailed(ConnectFailure::Unauthorized(
        "401".into(),
    )));
    assert!(a.contains(&Action::ForgetToken));
    assert_eq!(a.last(), Some(&Action::SignIn));
    assert!(
        !a.iter().any(|a| matches!(a, Action::Close(_))),
        "no socket to close"
    );
}

#[test]
fn close_4003_stops_and_tells_the_user() {
    let mut r = Rig::connected();
    let a = r.feed(closed(4003, "account disabled"));
    assert_eq!(a[0], Action::Close(Close::Gone));
    assert_eq!(errors(&a).len(), 1);
    assert!(errors(&a)[0].contains("account disabled"), "{a:?}");
    assert!(matches!(
        states(&a)[..],
        [State::SignedOut { reason: Some(_) }]
    ));
    assert_eq!(
        exit(&a),
        Some(&ExitReason::AccessDenied("account disabled".into()))
    );
    // Without a reason the code stands in for it.
    let mut r = Rig::connected();
    let a = r.feed(closed(4003, ""));
    assert_eq!(exit(&a), Some(&ExitReason::AccessDenied("4003".into())));
    // A 403 on the upgrade is the same.
    let mut r = Rig::new();
    r.feed(Input::Start);
    r.feed(Input::SignedIn(user()));
    let a = r.feed(Input::ConnectFailed(ConnectFailure::Forbidden(
        "HTTP 403".into(),
    )));
    assert_eq!(exit(&a), Some(&ExitReason::AccessDenied("HTTP 403".into())));
}

#[test]
fn close_1008_tells_the_user_and_waits_at_least_the_policy_floor() {
    let mut r = Rig::connected();
    let a = r.feed(closed(1008, "too many connections"));
    assert_eq!(errors(&a).len(), 1, "{a:?}");
    let (reason, delay, attempt) = reconnecting(&a).unwrap();
    assert_eq!(reason, "closed by the server (1008: too many connections)");
    assert!(delay >= Duration::from_secs(30), "{delay:?}");
    assert_eq!(attempt, 1);
    // Nothing happens before the floor has passed.
    let early = r.run_for(Duration::from_secs(29));
    assert!(!early.contains(&Action::SignIn));
    let later = r.wait_out(delay - Duration::from_secs(29));
    assert!(later.contains(&Action::SignIn), "{later:?}");
}

#[test]
fn normal_going_away_too_large_internal_error_and_unknown_closes_reconnect_with_backoff() {
    // 4002 is no code of the protocol: like any other, it reconnects with backoff.
    for code in [1000u16, 1001, 1009, 1011, 4002] {
        let mut r = Rig::connected();
        let a = r.feed(closed(code, ""));
        assert_eq!(a[0], Action::Close(Close::Gone), "{code}");
        assert!(errors(&a).is_empty(), "{code}: {a:?}");
        assert!(exit(&a).is_none(), "{code}");
        assert!(a.contains(&Action::Status(StatusChange::Reconnected)));
        let (reason, delay, attempt) = reconnecting(&a).unwrap();
        assert_eq!(reason, format!("closed by the server ({code})"));
        assert!(
            delay <= Duration::from_secs(1),
            "{code}: first delay {delay:?}"
        );
        assert_eq!(attempt, 1);
        let later = r.wait_out(delay);
        assert!(later.contains(&Action::SignIn), "{code}");
    }
}

#[test]
fn an_abnormal_end_reconnects_with_backoff() {
    // The stream ended without a close frame.
    let mut r = Rig::connected();
    let a = r.feed(Input::Closed {
        code: None,
        reason: "the connection was closed".into(),
    });
    assert_eq!(reconnecting(&a).unwrap().0, "the connection was closed");
    // A transport error.
    let mut r = Rig::connected();
    let a = r.feed(Input::Lost("connection lost: reset by peer".into()));
    assert_eq!(a[0], Action::Close(Close::Gone));
    assert_eq!(
        reconnecting(&a).unwrap().0,
        "connection lost: reset by peer"
    );
    assert!(matches!(states(&a)[..], [State::Reconnecting { .. }]));
}

#[test]
fn an_unreachable_server_shows_offline_and_a_retry_after_is_a_floor() {
    let mut r = Rig::new();
    r.feed(Input::Start);
    r.feed(Input::SignedIn(user()));
    let a = r.feed(Input::ConnectFailed(ConnectFailure::Failed {
        reason: "cannot reach the server".into(),
        retry_after: None,
        unreachable: true,
    }));
    assert!(
        matches!(states(&a)[..], [State::Offline { reason }] if reason == "cannot reach the server"),
        "{a:?}"
    );
    let a = r.run_for(Duration::from_secs(5));
    r.feed(Input::SignedIn(user()));
    assert!(a.contains(&Action::SignIn));
    let a = r.feed(Input::ConnectFailed(ConnectFailure::Failed {
        reason: "HTTP 429".into(),
        retry_after: Some(Duration::from_secs(7)),
        unreachable: false,
    }));
    assert!(reconnecting(&a).unwrap().1 >= Duration::from_secs(7));
}

// ---- the refusal streak ---------------------------------------------------

#[test]
fn token_refusals_close_together_wait_longer_and_longer() {
    let mut r = Rig::connected();
    // The first refusal signs in again at once.
    let a = r.feed(closed(4001, ""));
    assert_eq!(a.last(), Some(&Action::SignIn));
    assert!(reconnecting(&a).is_none());
    let mut floors = Vec::new();
    for _ in 0..5 {
        r.now += Duration::from_secs(1);
        r.reconnect();
        // An answered heartbeat in between does not end the streak.
        r.catch_up();
        r.now += Duration::from_secs(1);
        let a = r.feed(closed(4001, ""));
        assert!(a.contains(&Action::ForgetToken));
        let (_, delay, _) = reconnecting(&a).expect("a refusal within the window waits");
        floors.push(delay.as_secs());
        let later = r.wait_out(delay);
        assert!(later.contains(&Action::SignIn));
    }
    assert_eq!(floors, [2, 4, 8, 16, 32]);
    // Ten quiet minutes end the streak.
    r.reconnect();
    r.now += Duration::from_secs(600);
    let a = r.feed(closed(4001, ""));
    assert!(reconnecting(&a).is_none(), "{a:?}");
    assert_eq!(a.last(), Some(&Action::SignIn));
}

// ---- the heartbeat --------------------------------------------------------

#[test]
fn pongs_give_latency_and_pings_follow_every_interval() {
    let mut r = Rig::connected();
    r.now += Duration::from_millis(40);
    let a = r.pong();
    assert!(a.contains(&Action::Status(StatusChange::Latency(40))));
    assert!(events(&a).contains(&&Event::Latency { ms: 40 }));
    let a = r.run_for(Duration::from_secs(90));
    // Pings at 30 s, then (unanswered) the link is dead 10 s later.
    let pings = count(&a, |a| matches!(a, Action::Send(Outbound::Ping { .. })));
    assert_eq!(pings, 1, "{a:?}");
}

#[test]
fn a_missing_pong_is_a_dead_link_and_reconnects() {
    let mut r = Rig::connected();
    // The first ping goes unanswered: after the pong timeout (10 s) the link is dead.
    let a = r.advance(Duration::from_millis(9_999));
    assert!(a.is_empty(), "{a:?}");
    let a = r.advance(Duration::from_millis(1));
    assert_eq!(a[0], Action::Close(Close::Quick));
    assert_eq!(a[1], Action::Status(StatusChange::LatencyUnknown));
    let (reason, _, attempt) = reconnecting(&a).unwrap();
    assert_eq!(reason, "no answer to the heartbeat for 10 s");
    assert_eq!(attempt, 1);
}

/// Issue 13: every frame is proof of life. A server that pings (or notifies) more
/// often than the heartbeat interval costs no pings of ours; when it falls silent, one
/// ping after the interval, and a dead link within interval + timeout of its last frame.
#[test]
fn a_talkative_server_costs_no_pings_and_silence_is_still_noticed() {
    let mut r = Rig::connected();
    r.now += Duration::from_millis(40);
    r.pong();
    // The server's own ping every 20 s for five minutes: we answer, never ping.
    let mut sent_pings = 0;
    for _ in 0..15 {
        let a = r.run_for(Duration::from_secs(20));
        sent_pings += count(&a, |a| matches!(a, Action::Send(Outbound::Ping { .. })));
        let a = r.feed(Input::Frame(Inbound::Ping { timestamp: Some(1) }));
        assert_eq!(a, vec![Action::Send(Outbound::Pong { timestamp: 1 })]);
    }
    assert_eq!(sent_pings, 0);
    // Silence: a ping 30 s (and the 2 s slack) after the last frame; the link dead
    // 40 s (interval + timeout) after that frame all the same.
    let a = r.run_for(Duration::from_millis(31_999));
    assert!(a.is_empty(), "{a:?}");
    let a = r.advance(Duration::from_millis(1));
    assert_eq!(
        count(&a, |a| matches!(a, Action::Send(Outbound::Ping { .. }))),
        1,
        "{a:?}"
    );
    let a = r.run_for(Duration::from_millis(7_999));
    assert!(!a.contains(&Action::Close(Close::Quick)), "{a:?}");
    let a = r.advance(Duration::from_millis(1));
    assert_eq!(a.first(), Some(&Action::Close(Close::Quick)), "{a:?}");
}

#[test]
fn server_pings_are_answered_with_their_timestamp() {
    let mut r = Rig::connected();
    let a = r.feed(Input::Frame(Inbound::Ping {
        timestamp: Some(42),
    }));
    assert_eq!(a, vec![Action::Send(Outbound::Pong { timestamp: 42 })]);
    r.now += Duration::from_millis(5);
    let a = r.feed(Input::Frame(Inbound::Ping { timestamp: None }));
    assert_eq!(
        a,
        vec![Action::Send(Outbound::Pong {
            timestamp: WALL0 + 5
        })]
    );
}

// ---- backoff --------------------------------------------------------------

#[test]
fn failed_attempts_grow_the_backoff_up_to_the_cap() {
    let mut r = Rig::new();
    r.feed(Input::Start);
    let p = BackoffPolicy::default();
    let mut attempts = Vec::new();
    for i in 0..9u32 {
        r.feed(Input::SignedIn(user()));
        let a = r.feed(Input::ConnectFailed(ConnectFailure::Failed {
            reason: "refused".into(),
            retry_after: None,
            unreachable: false,
        }));
        let (_, delay, attempt) = reconnecting(&a).unwrap();
        assert!(delay <= p.ceiling(i), "attempt {attempt}: {delay:?}");
        attempts.push(attempt);
        let later = r.wait_out(delay);
        assert!(later.contains(&Action::SignIn));
    }
    assert_eq!(attempts, [1, 2, 3, 4, 5, 6, 7, 8, 9]);
}

#[test]
fn the_backoff_resets_only_after_a_healthy_connection_lasted_healthy_after() {
    let mut r = Rig::new();
    r.feed(Input::Start);
    // Grow the backoff with a few failed attempts.
    for _ in 0..4 {
        r.feed(Input::SignedIn(user()));
        let a = r.feed(Input::ConnectFailed(ConnectFailure::Failed {
            reason: "refused".into(),
            retry_after: None,
            unreachable: false,
        }));
        let (_, delay, _) = reconnecting(&a).unwrap();
        r.wait_out(delay);
    }
    // Healthy (pong + caught up) but closed after 300 ms: the delays keep growing.
    r.reconnect();
    r.catch_up();
    r.now += Duration::from_millis(300);
    let a = r.feed(closed(1001, ""));
    let (_, delay, attempt) = reconnecting(&a).unwrap();
    assert_eq!(attempt, 5);
    r.wait_out(delay);
    // Up 12 s without proving healthy (no pong): still growing.
    r.reconnect();
    r.now += Duration::from_secs(9);
    r.pong();
    r.now += Duration::from_secs(3);
    let a = r.feed(closed(1001, ""));
    assert_eq!(reconnecting(&a).unwrap().2, 6, "answered but not caught up");
    r.wait_out(reconnecting(&a).unwrap().1);
    // Healthy and up for `healthy_after` (10 s): the next outage starts again at attempt 1.
    r.reconnect();
    r.catch_up();
    r.now += Duration::from_secs(10);
    let a = r.feed(closed(1001, ""));
    let (_, delay, attempt) = reconnecting(&a).unwrap();
    assert_eq!(attempt, 1);
    assert!(delay <= Duration::from_secs(1));
}

#[test]
fn a_connection_that_lasted_reset_after_resets_the_backoff_even_unproven() {
    let mut r = Rig::new();
    r.feed(Input::Start);
    for _ in 0..3 {
        r.feed(Input::SignedIn(user()));
        let a = r.feed(Input::ConnectFailed(ConnectFailure::Failed {
            reason: "refused".into(),
            retry_after: None,
            unreachable: false,
        }));
        r.wait_out(reconnecting(&a).unwrap().1);
    }
    r.reconnect();
    // Pings answered every interval for 30 s, never caught up (the fetch hangs).
    for _ in 0..2 {
        r.pong();
        r.run_for(Duration::from_secs(15));
    }
    let a = r.feed(closed(1001, ""));
    assert_eq!(reconnecting(&a).unwrap().2, 1);
}

#[test]
fn the_wait_counts_down_in_the_state_every_second() {
    let mut r = Rig::connected();
    let a = r.feed(closed(1008, ""));
    let (_, delay, _) = reconnecting(&a).unwrap();
    let first = states(&a)[0].clone();
    let State::Reconnecting { in_secs, .. } = first else {
        panic!("{first:?}")
    };
    assert_eq!(
        in_secs,
        delay.as_secs() + u64::from(delay.subsec_nanos() > 0)
    );
    let rest = r.wait_out(delay);
    let secs: Vec<u64> = states(&rest)
        .iter()
        .filter_map(|s| match s {
            State::Reconnecting { in_secs, .. } => Some(*in_secs),
            _ => None,
        })
        .collect();
    assert_eq!(secs.len() as u64, in_secs - 1, "{secs:?}");
    assert!(secs.windows(2).all(|w| w[0] == w[1] + 1), "{secs:?}");
    assert_eq!(states(&rest).last(), Some(&&State::Connecting));
    assert_eq!(rest.last(), Some(&Action::SignIn));
}

// ---- the catch-up and the cursor ------------------------------------------

#[test]
fn the_catch_up_starts_at_the_first_pong_only() {
    let mut r = Rig::connected();
    r.live("n1");
    let a = r.pong();
    assert_eq!(count(&a, |a| matches!(a, Action::Fetch(_))), 1, "{a:?}");
    r.run_for(Duration::from_secs(30));
    let a = r.pong();
    assert_eq!(count(&a, |a| matches!(a, Action::Fetch(_))), 0);
}

#[test]
fn live_frames_during_the_catch_up_do_not_move_the_cursor() {
    let mut r = Rig::connected();
    r.pong();
    let a = r.live("live-1");
    assert_eq!(
        stores(&a),
        vec![(vec!["live-1".to_string()], None, StoreTag::Live)]
    );
    let a = r.fetched(Some("c0"), page(&["h1", "h2"]));
    assert_eq!(
        stores(&a),
        vec![(
            vec!["h1".to_string(), "h2".to_string()],
            Some("h2".to_string()),
            StoreTag::CatchUp {
                conn: 1,
                last: true
            }
        )]
    );
    // Caught up: live ids move the cursor, and their stores follow the page's.
    let a = r.live("live-2");
    assert_eq!(
        stores(&a),
        vec![(
            vec!["live-2".to_string()],
            Some("live-2".to_string()),
            StoreTag::Live
        )]
    );
}

#[test]
fn caught_up_is_announced_after_the_last_page_is_stored_with_what_was_new() {
    let mut r = Rig::connected();
    r.pong();
    let a = r.fetched(Some("c0"), page(&["h1", "h2", "h3"]));
    assert!(
        events(&a).is_empty(),
        "nothing before the history answered: {a:?}"
    );
    let n = |id: &str, o: Outcome| (note(id), o);
    let a = r.feed(Input::Stored(StoreReport {
        tag: StoreTag::CatchUp {
            conn: 1,
            last: true,
        },
        outcomes: vec![
            n("h1", Outcome::Duplicate),
            n("h2", Outcome::New),
            n("h3", Outcome::New),
        ],
        one_by_one: false,
    }));
    let ev = events(&a);
    assert!(matches!(ev[0], Event::Notification(x) if x.key == "h2"));
    assert!(matches!(ev[1], Event::Notification(x) if x.key == "h3"));
    assert_eq!(
        ev.last(),
        Some(&&Event::CaughtUp {
            fetched: 3,
            new: 2,
            supported: true
        })
    );
    assert_eq!(
        count(&a, |a| *a == Action::Status(StatusChange::UnreadAdded)),
        2
    );
}

#[test]
fn pages_follow_each_other_and_each_moves_the_cursor() {
    let mut r = Rig::connected();
    r.pong();
    let a = r.fetched(Some("c0"), full_page("p1"));
    let s = stores(&a);
    assert_eq!(s[0].1.as_deref(), Some("p1-099"));
    assert_eq!(
        s[0].2,
        StoreTag::CatchUp {
            conn: 1,
            last: false
        }
    );
    assert_eq!(a.last(), Some(&Action::Fetch(Since::StoredCursor)));
    // A page whose next cursor is the one it was asked with ends the catch-up.
    let mut p = full_page("p2");
    p.next_cursor = Some("p1-099".to_string());
    let a = r.fetched(Some("p1-099"), p);
    assert!(!a.iter().any(|a| matches!(a, Action::Fetch(_))));
    assert_eq!(
        stores(&a)[0].2,
        StoreTag::CatchUp {
            conn: 1,
            last: true
        }
    );
}

#[test]
fn the_catch_up_stops_after_the_page_limit() {
    let mut r = Rig::connected();
    r.pong();
    for i in 0..CATCHUP_MAX_PAGES {
        let a = r.fetched(Some("c"), full_page(&format!("p{i}")));
        let more = a.iter().any(|a| matches!(a, Action::Fetch(_)));
        assert_eq!(more, i + 1 < CATCHUP_MAX_PAGES, "page {i}");
    }
}

#[test]
fn a_failed_catch_up_moves_nothing_and_retries_with_a_doubling_delay() {
    let mut r = Rig::connected();
    r.pong();
    let mut delays = Vec::new();
    for i in 0..8 {
        let a = r.fetch_failed(ApiError::Server {
            status: 502,
            message: String::new(),
        });
        assert!(stores(&a).is_empty());
        assert_eq!(errors(&a).len(), usize::from(i == 0), "told once: {a:?}");
        assert!(exit(&a).is_none());
        let before = r.now;
        // Keep the link alive meanwhile; stop at the retry.
        loop {
            let deadline = r.m.deadline().unwrap();
            r.now = deadline;
            let a = r.feed(Input::Tick);
            if r.last_ping.is_some()
                && a.iter()
                    .any(|a| matches!(a, Action::Send(Outbound::Ping { .. })))
            {
                r.pong();
            }
            if a.contains(&Action::Fetch(Since::StoredCursor)) {
                break;
            }
        }
        delays.push((r.now - before).as_secs());
    }
    assert_eq!(delays, [5, 10, 20, 40, 60, 60, 60, 60]);
    // Live frames meanwhile do not move the cursor.
    let a = r.live("x");
    assert_eq!(stores(&a)[0].1, None);
    // Success resets the count.
    r.fetched(Some("c0"), page(&["h"]));
}

#[test]
fn a_refused_cursor_is_dropped_once_and_history_fetched_from_the_beginning() {
    let mut r = Rig::connected();
    r.pong();
    let a = r.fetch_failed(ApiError::Server {
        status: 400,
        message: "bad cursor".into(),
    });
    assert_eq!(a, vec![Action::Fetch(Since::Beginning)]);
    // The same refusal without a cursor is an ordinary failure.
    let a = r.feed(Input::Fetched {
        asked_with: None,
        result: Err(ApiError::Server {
            status: 422,
            message: String::new(),
        }),
    });
    assert_eq!(errors(&a).len(), 1);
    assert!(!a.iter().any(|a| matches!(a, Action::Fetch(_))));
}

#[test]
fn a_revoked_token_while_catching_up_signs_in_again() {
    let mut r = Rig::connected();
    r.pong();
    let a = r.fetch_failed(ApiError::Unauthorized("revoked".into()));
    assert_eq!(a[0], Action::Close(Close::Normal));
    assert!(a.contains(&Action::ForgetToken));
    assert_eq!(a.last(), Some(&Action::SignIn));
}

#[test]
fn a_server_without_history_relies_on_live_frames() {
    let mut r = Rig::connected();
    r.pong();
    let a = r.feed(Input::Fetched {
        asked_with: None,
        result: Ok(None),
    });
    assert_eq!(
        events(&a),
        vec![&Event::CaughtUp {
            fetched: 0,
            new: 0,
            supported: false
        }]
    );
    assert_eq!(stores(&r.live("l"))[0].1.as_deref(), Some("l"));
}

#[test]
fn a_page_stored_after_its_connection_ended_is_announced_but_not_counted() {
    let mut r = Rig::connected();
    r.pong();
    let a = r.fetched(Some("c0"), page(&["h1"]));
    r.feed(closed(1001, ""));
    let b = r.store_all_new(&a);
    assert_eq!(events(&b).len(), 1, "{b:?}");
    assert!(matches!(events(&b)[0], Event::Notification(_)));
}

#[test]
fn answers_for_a_socket_that_is_gone_are_ignored() {
    let mut r = Rig::connected();
    r.pong();
    r.feed(closed(1001, ""));
    let a = r.fetched(Some("c0"), page(&["h1"]));
    assert!(a.is_empty());
    assert!(r.live("x").is_empty());
    assert!(r.feed(Input::Opened).is_empty(), "not connecting");
}

// ---- storing and announcing ------------------------------------------------

#[test]
fn only_new_or_unstorable_notifications_are_announced() {
    let mut r = Rig::connected();
    let report = |id: &str, o: Outcome| {
        Input::Stored(StoreReport {
            tag: StoreTag::Live,
            outcomes: vec![(note(id), o)],
            one_by_one: false,
        })
    };
    let a = r.feed(report("dup", Outcome::Duplicate));
    assert!(a.is_empty(), "{a:?}");
    let a = r.feed(report("new", Outcome::New));
    assert!(matches!(events(&a)[..], [Event::Notification(n)] if n.key == "new"));
    assert_eq!(count(&a, |a| matches!(a, Action::Show(_))), 1);
    let a = r.feed(report("bad", Outcome::Failed("disk full".into())));
    assert_eq!(
        errors(&a),
        vec!["cannot store a notification: disk full".to_string()]
    );
    assert_eq!(
        count(&a, |a| matches!(a, Action::Show(_))),
        1,
        "shown anyway"
    );
}

#[test]
fn the_history_is_pruned_every_thousand_stored_live() {
    let mut r = Rig::connected();
    let mut prunes = 0;
    for i in 0..2_500 {
        let a = r.feed(Input::Stored(StoreReport {
            tag: StoreTag::Live,
            outcomes: vec![(note(&format!("n{i}")), Outcome::New)],
            one_by_one: false,
        }));
        prunes += count(&a, |a| matches!(a, Action::Prune(_)));
        r.now += Duration::from_secs(3);
    }
    assert_eq!(prunes, 2);
}

#[test]
fn bursts_are_held_and_folded_and_flushed_when_the_window_ends() {
    let mut r = Rig::connected();
    let mut shown = 0;
    for i in 0..10 {
        let a = r.store_new_live(&format!("b{i}"));
        shown += count(&a, |a| matches!(a, Action::Show(_)));
    }
    assert_eq!(shown, 3, "the fold threshold");
    assert_eq!(
        r.m.deadline(),
        Some(r.t0 + Duration::from_secs(2)),
        "the fold window"
    );
    let a = r.advance(Duration::from_secs(2));
    let folded: Vec<&Toast> = a
        .iter()
        .filter_map(|a| match a {
            Action::Show(t) => Some(&t.toast),
            _ => None,
        })
        .collect();
    assert_eq!(folded.len(), 1);
    assert_eq!(folded[0].folded, 7);
}

#[test]
fn a_folded_card_carries_its_keys_and_a_click_on_it_asks_to_show_them() {
    let mut r = Rig::connected();
    for i in 0..10 {
        r.store_new_live(&format!("b{i}"));
    }
    let a = r.advance(Duration::from_secs(2));
    let cards = shows(&a);
    assert_eq!(cards.len(), 1, "{a:?}");
    let card = cards[0].clone();
    let held: Vec<String> = (3..10).map(|i| format!("b{i}")).collect();
    assert_eq!(
        card.toast.keys, held,
        "the keys of every notification it stands for"
    );
    assert!(card.is_folded());
    // The tray's center: the click comes back as the keys to show, nothing else.
    let a = r.feed(Input::ToastAction(ToastAction {
        card,
        kind: ToastActionKind::ShowFolded,
    }));
    assert_eq!(a, vec![Action::Emit(Event::ShowFolded { keys: held })]);
}

// ---- the clock --------------------------------------------------------------

#[test]
fn a_clock_jump_reconnects_at_once_without_a_wait() {
    let mut r = Rig::connected();
    r.catch_up();
    assert!(
        r.feed(Input::ClockChecked {
            ahead: Duration::from_secs(10)
        })
        .is_empty(),
        "at the limit"
    );
    let a = r.feed(Input::ClockChecked {
        ahead: Duration::from_secs(600),
    });
    assert_eq!(
        a,
        vec![
            Action::Close(Close::Quick),
            Action::Status(StatusChange::LatencyUnknown),
            Action::Status(StatusChange::Reconnected),
            Action::Status(StatusChange::State(State::Connecting)),
            Action::SignIn,
        ]
    );
}

#[test]
fn a_clock_jump_cuts_a_wait_or_a_connect_short_but_not_a_sign_in() {
    let jump = Input::ClockChecked {
        ahead: Duration::from_secs(60),
    };
    let mut r = Rig::new();
    r.feed(Input::Start);
    assert!(r.feed(jump.clone()).is_empty(), "signing in");
    r.feed(Input::SignedIn(user()));
    let a = r.feed(jump.clone());
    assert!(
        a.contains(&Action::Status(StatusChange::Reconnected)),
        "connecting: {a:?}"
    );
    assert_eq!(a.last(), Some(&Action::SignIn));
    r.feed(Input::SignedIn(user()));
    r.feed(Input::ConnectFailed(ConnectFailure::Failed {
        reason: "x".into(),
        retry_after: Some(Duration::from_secs(60)),
        unreachable: false,
    }));
    let a = r.feed(jump);
    assert_eq!(
        a,
        vec![
            Action::Status(StatusChange::State(State::Connecting)),
            Action::SignIn
        ],
        "the wait is skipped"
    );
}

// ---- commands ---------------------------------------------------------------

#[test]
fn reconnect_now_closes_normally_and_resets_the_backoff() {
    let mut r = Rig::new();
    r.feed(Input::Start);
    for _ in 0..3 {
        r.feed(Input::SignedIn(user()));
        let a = r.feed(Input::ConnectFailed(ConnectFailure::Failed {
            reason: "refused".into(),
            retry_after: None,
            unreachable: false,
        }));
        r.wait_out(reconnecting(&a).unwrap().1);
    }
    r.reconnect();
    let a = r.cmd(Command::ReconnectNow);
    assert_eq!(
        a,
        vec![
            Action::Close(Close::Normal),
            Action::Status(StatusChange::LatencyUnknown),
            Action::Status(StatusChange::Reconnected),
            Action::Status(StatusChange::State(State::Connecting)),
            Action::SignIn,
        ]
    );
    r.feed(Input::SignedIn(user()));
    let a = r.feed(Input::ConnectFailed(ConnectFailure::Failed {
        reason: "refused".into(),
        retry_after: None,
        unreachable: false,
    }));
    assert_eq!(reconnecting(&a).unwrap().2, 1, "backoff reset");
}

#[test]
fn reconnect_now_skips_a_wait() {
    let mut r = Rig::connected();
    r.feed(closed(1008, ""));
    let a = r.cmd(Command::ReconnectNow);
    assert_eq!(a.last(), Some(&Action::SignIn));
    assert!(!a.contains(&Action::Status(StatusChange::Reconnected)));
}

#[test]
fn shutdown_closes_flushes_held_toasts_and_stops() {
    let mut r = Rig::connected();
    for i in 0..5 {
        r.store_new_live(&format!("s{i}"));
    }
    let a = r.cmd(Command::Shutdown);
    assert_eq!(a[0], Action::Close(Close::Normal));
    assert!(
        matches!(&a[2], Action::Show(t) if t.toast.folded == 2),
        "{a:?}"
    );
    assert_eq!(
        states(&a),
        vec![&State::Offline {
            reason: "stopped".into()
        }]
    );
    assert_eq!(a.last(), Some(&Action::Exit(ExitReason::Shutdown)));
    // While waiting there is no socket to close.
    let mut r = Rig::connected();
    r.feed(closed(1011, ""));
    let a = r.cmd(Command::Shutdown);
    assert!(!a.iter().any(|a| matches!(a, Action::Close(_))));
    assert_eq!(a.last(), Some(&Action::Exit(ExitReason::Shutdown)));
}

#[test]
fn sign_out_closes_revokes_and_stops() {
    let mut r = Rig::connected();
    let a = r.cmd(Command::SignOut);
    assert_eq!(
        a,
        vec![
            Action::Close(Close::Normal),
            Action::Status(StatusChange::LatencyUnknown),
            Action::SignOut,
            Action::Status(StatusChange::State(State::SignedOut { reason: None })),
            Action::Emit(Event::SignedOut { reason: None }),
            Action::Exit(ExitReason::SignedOut),
        ]
    );
}

#[test]
fn a_pause_is_saved_and_holds_toasts_but_not_storing() {
    let mut r = Rig::connected();
    let until = WALL0 + 3_600_000;
    let a = r.cmd(Command::Pause { until_ms: until });
    assert_eq!(
        a,
        vec![
            Action::SavePause(Some(until)),
            Action::Status(StatusChange::Paused(Some(until)))
        ]
    );
    let a = r.live("p1");
    assert_eq!(stores(&a).len(), 1, "stored while paused");
    let a = r.store_all_new(&a);
    assert_eq!(events(&a).len(), 1, "announced");
    assert_eq!(count(&a, |a| matches!(a, Action::Show(_))), 0, "not shown");
    let a = r.cmd(Command::Resume);
    assert_eq!(
        a,
        vec![
            Action::SavePause(None),
            Action::Status(StatusChange::Paused(None))
        ]
    );
    let a = r.live("p2");
    let a = r.store_all_new(&a);
    assert_eq!(count(&a, |a| matches!(a, Action::Show(_))), 1);
}

#[test]
fn a_muted_kind_is_stored_and_counted_but_not_shown_and_others_carry_their_sound() {
    use crate::config::{KindRule, ToastPolicy};
    let mut config = Config {
        sound: true,
        ..Config::default()
    };
    config.kinds.insert(
        "task_reviewed".into(),
        KindRule {
            policy: ToastPolicy::Mute,
            sound: None,
        },
    );
    let mut r = Rig::with(config.clone(), rules());
    r.connect();
    let a = r.live("m1");
    assert_eq!(stores(&a).len(), 1, "stored while muted");
    let a = r.store_all_new(&a);
    assert_eq!(events(&a).len(), 1, "announced");
    assert_eq!(
        count(&a, |a| *a == Action::Status(StatusChange::UnreadAdded)),
        1,
        "counted"
    );
    assert_eq!(count(&a, |a| matches!(a, Action::Show(_))), 0, "not shown");

    // Its own sound for the kind; the default sound for the test toast.
    config.kinds.insert(
        "task_reviewed".into(),
        KindRule {
            policy: ToastPolicy::Show,
            sound: Some("bell".into()),
        },
    );
    r.cmd(Command::SetConfig(Box::new(config)));
    let a = r.live("m2");
    let a = r.store_all_new(&a);
    let sounds: Vec<_> = a
        .iter()
        .filter_map(|a| match a {
            Action::Show(c) => Some(c.sound.as_deref()),
            _ => None,
        })
        .collect();
    assert_eq!(sounds, [Some("bell")]);
    let a = r.cmd(Command::TestNotification);
    assert!(
        matches!(&a[..], [Action::Show(c)] if c.sound.as_deref() == Some(crate::config::DEFAULT_SOUND)),
        "{a:?}"
    );
}

#[test]
fn local_commands_work_in_every_phase() {
    let mut r = Rig::new();
    r.feed(Input::Start);
    let a = r.cmd(Command::TestNotification);
    assert!(matches!(&a[..], [Action::Show(t)] if t.toast.keys == [format!("test:{WALL0}")]));
    assert_eq!(
        r.cmd(Command::MarkRead {
            keys: vec!["k".into()]
        }),
        vec![
            Action::MarkRead(vec!["k".into()]),
            Action::Withdraw(vec!["k".into()]),
            Action::MarkReadOnServer(vec!["k".into()]),
        ]
    );
    assert_eq!(r.cmd(Command::MarkAllRead), vec![Action::MarkAllRead]);
    let config = Config {
        paused_until_ms: Some(5),
        heartbeat_interval_secs: 60,
        ..Config::default()
    };
    let a = r.cmd(Command::SetConfig(Box::new(config)));
    assert_eq!(a, vec![Action::Status(StatusChange::Paused(Some(5)))]);
    // The heartbeat interval applies to the next connection.
    r.feed(Input::SignedIn(user()));
    r.feed(Input::Opened);
    r.pong();
    assert_eq!(r.m.deadline(), Some(r.t0 + Duration::from_secs(62)));
}

// ---- toast actions, read marks, snooze --------------------------------------

fn shows(actions: &[Action]) -> Vec<&ToastCard> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Show(c) => Some(c),
            _ => None,
        })
        .collect()
}

/// A rig with a server (so toasts have task links), connected and caught up,
/// signed in as `role`.
fn with_tasks(role: Role) -> Rig {
    let config = Config {
        server: Some("http://localhost:8000".to_string()),
        ..Config::default()
    };
    let mut r = Rig::with(config, rules());
    r.feed(Input::Start);
    r.feed(Input::SignedIn(User { role, ..user() }));
    r.feed(Input::Opened);
    r.catch_up();
    r
}

/// A live notification of `kind` about task `t-<id>`, stored as new; its card.
fn task_note(r: &mut Rig, id: &str, kind: &str) -> ToastCard {
    let text = format!(
        r#"{{"type":"{kind}","id":"{id}","title":"t {id}","content":"c","data":{{"task_id":"t-{id}"}},"timestamp":1700000000}}"#
    );
    let Inbound::Notification(n) = protocol::decode_at(&text, WALL0).unwrap() else {
        panic!("not a notification")
    };
    let stores = r.feed(Input::Frame(Inbound::Notification(n)));
    let a = r.store_all_new(&stores);
    let cards = shows(&a);
    assert_eq!(cards.len(), 1, "{a:?}");
    cards[0].clone()
}

#[test]
fn a_read_frame_marks_read_and_withdraws_but_does_not_tell_the_server_back() {
    let mut r = with_tasks(Role::Annotator);
    task_note(&mut r, "n1", "task_reviewed");
    let a = r.feed(Input::Frame(Inbound::Read {
        ids: vec!["n1".into(), "n0".into()],
    }));
    assert_eq!(
        a,
        vec![
            Action::MarkRead(vec!["n1".into(), "n0".into()]),
            Action::Withdraw(vec!["n1".into(), "n0".into()]),
        ]
    );
    // An empty one is nothing.
    assert!(
        r.feed(Input::Frame(Inbound::Read { ids: vec![] }))
            .is_empty()
    );
}

#[test]
fn marking_read_here_withdraws_and_calls_the_endpoint_with_server_ids_only() {
    let mut r = with_tasks(Role::Annotator);
    let card = task_note(&mut r, "n1", "task_reviewed");
    // "Mark read" on the toast.
    let a = r.feed(Input::ToastAction(ToastAction {
        card,
        kind: ToastActionKind::MarkRead,
    }));
    assert_eq!(
        a,
        vec![
            Action::MarkRead(vec!["n1".into()]),
            Action::Withdraw(vec!["n1".into()]),
            Action::MarkReadOnServer(vec!["n1".into()]),
        ]
    );
    // From the center: a frame without id has a content key the server never saw.
    let a = r.cmd(Command::MarkRead {
        keys: vec!["content:abc".into(), "n2".into()],
    });
    assert_eq!(a.last(), Some(&Action::MarkReadOnServer(vec!["n2".into()])));
    let a = r.cmd(Command::MarkRead {
        keys: vec!["content:abc".into()],
    });
    assert!(
        !a.iter().any(|a| matches!(a, Action::MarkReadOnServer(_))),
        "{a:?}"
    );
    // Mark all read is a round trip: what was unread is withdrawn and sent.
    assert_eq!(r.cmd(Command::MarkAllRead), vec![Action::MarkAllRead]);
    let a = r.feed(Input::MarkedAllRead(vec!["n3".into(), "content:x".into()]));
    assert_eq!(
        a,
        vec![
            Action::Withdraw(vec!["n3".into(), "content:x".into()]),
            Action::MarkReadOnServer(vec!["n3".into()]),
        ]
    );
    assert!(r.feed(Input::MarkedAllRead(vec![])).is_empty());
}

#[test]
fn a_snoozed_toast_comes_back_once_after_the_snooze_on_the_machines_clock() {
    let mut r = with_tasks(Role::Annotator);
    let card = task_note(&mut r, "n1", "task_reviewed");
    let snooze = ToastAction {
        card: card.clone(),
        kind: ToastActionKind::Snooze,
    };
    let a = r.feed(Input::ToastAction(snooze.clone()));
    assert_eq!(
        a,
        vec![Action::Withdraw(vec!["n1".into()])],
        "off the screen"
    );
    let due = r.now + Duration::from_secs(3600);
    // The same toast reported twice (a repeated signal) still comes back once.
    r.advance(Duration::from_secs(1));
    r.feed(Input::ToastAction(snooze));
    assert_eq!(r.m.snoozed(), 1);
    let due = due + Duration::from_secs(1);
    assert!(r.m.deadline().unwrap() <= due);
    // The connection drops meanwhile: the snooze survives it.
    r.feed(Input::Lost("gone".into()));
    let before = r.run_for(due - r.now - Duration::from_millis(1));
    assert!(shows(&before).is_empty(), "not before its time: {before:?}");
    let at = r.run_for(Duration::from_millis(2));
    assert_eq!(shows(&at), [&card], "the same toast, once");
    assert_eq!(r.m.snoozed(), 0);
    let after = r.run_for(Duration::from_secs(7200));
    assert!(shows(&after).is_empty(), "{after:?}");
}

#[test]
fn a_snoozed_toast_read_meanwhile_never_comes_back() {
    let mut r = with_tasks(Role::Annotator);
    let one = task_note(&mut r, "n1", "task_reviewed");
    let two = task_note(&mut r, "n2", "task_reviewed");
    for card in [one, two] {
        r.feed(Input::ToastAction(ToastAction {
            card,
            kind: ToastActionKind::Snooze,
        }));
    }
    assert_eq!(r.m.snoozed(), 2);
    // Read on another client; then everything read in the center.
    r.feed(Input::Frame(Inbound::Read {
        ids: vec!["n1".into()],
    }));
    assert_eq!(r.m.snoozed(), 1);
    r.feed(Input::MarkedAllRead(vec!["n2".into()]));
    assert_eq!(r.m.snoozed(), 0);
    let a = r.run_for(Duration::from_secs(7200));
    assert!(shows(&a).is_empty(), "{a:?}");
}

#[test]
fn pause_and_quiet_hours_still_apply_when_a_snoozed_toast_comes_back() {
    let mut r = with_tasks(Role::Annotator);
    let card = task_note(&mut r, "n1", "task_reviewed");
    r.feed(Input::ToastAction(ToastAction {
        card,
        kind: ToastActionKind::Snooze,
    }));
    // Paused for two hours from now: the snooze ends inside the pause.
    let until = r.at().wall_ms + 2 * 3600 * 1000;
    r.cmd(Command::Pause { until_ms: until });
    let a = r.run_for(Duration::from_secs(3601));
    assert!(shows(&a).is_empty(), "held back by the pause: {a:?}");
    assert_eq!(r.m.snoozed(), 0, "it came due; it does not come back later");
    let a = r.run_for(Duration::from_secs(7200));
    assert!(shows(&a).is_empty(), "{a:?}");
}

#[test]
fn reviewers_get_a_review_link_on_submissions_and_skip_requests_only() {
    let mut r = with_tasks(Role::Reviewer);
    let submitted = task_note(&mut r, "n1", "task_submitted");
    assert_eq!(
        submitted.toast.open_url.as_deref(),
        Some("http://localhost:8000/tasks/t-n1")
    );
    assert_eq!(
        submitted.review_url.as_deref(),
        Some("http://localhost:8000/tasks/t-n1/review")
    );
    let skip = task_note(&mut r, "n2", "skip_requested");
    assert!(skip.review_url.is_some());
    let reviewed = task_note(&mut r, "n3", "task_reviewed");
    assert_eq!(reviewed.review_url, None);
    let mut a = with_tasks(Role::Annotator);
    assert_eq!(task_note(&mut a, "n1", "task_submitted").review_url, None);
}

/// Issue 13: a burst's frames already waiting are decided together: the live
/// notifications that follow each other become one store (one history round trip),
/// with the last cursor; nothing moves past another action, and each is announced once
/// its store says it is new, in order.
#[test]
fn frames_waiting_together_store_their_notifications_at_once() {
    let mut r = Rig::connected();
    r.catch_up();
    let key = |id: &str| note(id).key;
    let a = r.feed(Input::Frames(vec![
        Inbound::Notification(note("n1")),
        Inbound::Notification(note("n2")),
        Inbound::Ping { timestamp: Some(5) },
        Inbound::Notification(note("n3")),
        Inbound::Notification(note("n4")),
    ]));
    assert_eq!(
        stores(&a),
        vec![
            (
                vec![key("n1"), key("n2")],
                Some("n2".to_string()),
                StoreTag::Live
            ),
            (
                vec![key("n3"), key("n4")],
                Some("n4".to_string()),
                StoreTag::Live
            ),
        ]
    );
    // The pong stays between the two stores.
    let pong = a
        .iter()
        .position(|x| matches!(x, Action::Send(Outbound::Pong { timestamp: 5 })));
    let store_at: Vec<usize> = a
        .iter()
        .enumerate()
        .filter(|(_, x)| matches!(x, Action::Store { .. }))
        .map(|(i, _)| i)
        .collect();
    assert!(
        pong.is_some_and(|p| store_at[0] < p && p < store_at[1]),
        "{a:?}"
    );
    // Stored: each new one announced once, in order.
    let announced = r.store_all_new(&a);
    let shown: Vec<String> = events(&announced)
        .iter()
        .filter_map(|e| match e {
            Event::Notification(n) => Some(n.key.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(shown, [key("n1"), key("n2"), key("n3"), key("n4")]);
    // A batch of one is stored as a `Frame` would be.
    let one = r.feed(Input::Frames(vec![Inbound::Notification(note("n5"))]));
    assert_eq!(
        stores(&one),
        vec![(vec![key("n5")], Some("n5".to_string()), StoreTag::Live)]
    );
}

// ---- the live fast path: shown before stored (issue 13) ----------------------

fn checked(ids: &[&str], stored: &[&str]) -> Input {
    Input::Checked {
        frames: ids
            .iter()
            .map(|id| Inbound::Notification(note(id)))
            .collect(),
        stored: stored.iter().map(|id| note(id).key).collect(),
    }
}

fn notified(actions: &[Action]) -> Vec<String> {
    events(actions)
        .iter()
        .filter_map(|e| match e {
            Event::Notification(n) => Some(n.id.clone().unwrap_or_default()),
            _ => None,
        })
        .collect()
}

fn position(actions: &[Action], f: impl Fn(&Action) -> bool) -> Option<usize> {
    actions.iter().position(f)
}

#[test]
fn a_live_notification_the_history_lacks_is_shown_before_it_is_stored() {
    let mut r = Rig::connected();
    r.catch_up();
    let a = r.feed(checked(&["n1"], &[]));
    assert_eq!(notified(&a), ["n1"]);
    let show = position(&a, |x| matches!(x, Action::Show(_))).expect("shown");
    let store = position(&a, |x| matches!(x, Action::Store { .. })).expect("stored");
    assert!(show < store, "the toast does not wait for the write: {a:?}");
    assert_eq!(
        stores(&a),
        vec![(
            vec![note("n1").key],
            Some("n1".to_string()),
            StoreTag::LiveShown
        )]
    );
    // Counted unread once written: the count never covers a row not stored yet.
    assert!(!a.contains(&Action::Status(StatusChange::UnreadAdded)));
    // The report confirms, and counts it: nothing is announced or shown again.
    let after = r.store_all_new(&a);
    assert_eq!(
        count(&after, |x| *x == Action::Status(StatusChange::UnreadAdded)),
        1
    );
    assert!(notified(&after).is_empty(), "{after:?}");
    assert_eq!(count(&after, |x| matches!(x, Action::Show(_))), 0);
}

#[test]
fn a_live_notification_the_history_holds_waits_for_its_store_and_stays_unshown() {
    let mut r = Rig::connected();
    r.catch_up();
    let a = r.feed(checked(&["n1"], &["n1"]));
    assert_eq!(count(&a, |x| matches!(x, Action::Show(_))), 0);
    assert!(notified(&a).is_empty());
    assert_eq!(stores(&a)[0].2, StoreTag::Live, "the old round trip");
    let after = r.feed(Input::Stored(StoreReport {
        tag: StoreTag::Live,
        outcomes: vec![(note("n1"), Outcome::Duplicate)],
        one_by_one: false,
    }));
    assert!(notified(&after).is_empty());
    assert_eq!(count(&after, |x| matches!(x, Action::Show(_))), 0);
}

#[test]
fn a_notification_whose_store_is_on_its_way_is_never_shown_twice() {
    let mut r = Rig::connected();
    r.catch_up();
    // Shown at once; its store not reported yet, so the reader cannot see it.
    let first = r.feed(checked(&["n1"], &[]));
    assert_eq!(notified(&first), ["n1"]);
    // The same id again (a server that repeats itself): the lookup finds nothing,
    // but the store on its way has it, so it waits for the history's word.
    let again = r.feed(checked(&["n1"], &[]));
    assert!(notified(&again).is_empty(), "{again:?}");
    assert_eq!(stores(&again)[0].2, StoreTag::Live);
    r.store_all_new(&first);
    let dup = r.feed(Input::Stored(StoreReport {
        tag: StoreTag::Live,
        outcomes: vec![(note("n1"), Outcome::Duplicate)],
        one_by_one: false,
    }));
    assert!(notified(&dup).is_empty());
    // A catch-up page on its way counts too: a live copy of one of its rows waits.
    let mut r = Rig::connected();
    let pong = r.pong();
    assert!(pong.contains(&Action::Fetch(Since::StoredCursor)));
    let page_store = r.fetched(Some("c0"), page(&["p1"]));
    let live = r.feed(checked(&["p1"], &[]));
    assert!(notified(&live).is_empty(), "{live:?}");
    let announced = r.store_all_new(&page_store);
    assert_eq!(notified(&announced), ["p1"], "announced once, by the page");
    let live_report = r.feed(Input::Stored(StoreReport {
        tag: StoreTag::Live,
        outcomes: vec![(note("p1"), Outcome::Duplicate)],
        one_by_one: false,
    }));
    assert!(notified(&live_report).is_empty());
    // Once reported, the key is forgotten: the lookup is the history's word again.
    let later = r.feed(checked(&["p1"], &["p1"]));
    assert!(notified(&later).is_empty());
}

#[test]
fn a_checked_burst_shows_every_toast_first_and_stores_them_in_one_write() {
    let mut r = Rig::with(
        Config {
            fold_threshold: 100,
            ..Config::default()
        },
        rules(),
    );
    r.connect();
    r.catch_up();
    let a = r.feed(Input::Checked {
        frames: vec![
            Inbound::Notification(note("n1")),
            Inbound::Ping { timestamp: Some(5) },
            Inbound::Notification(note("n2")),
            Inbound::Notification(note("n3")),
        ],
        stored: std::collections::HashSet::new(),
    });
    assert_eq!(notified(&a), ["n1", "n2", "n3"]);
    assert_eq!(
        stores(&a),
        vec![(
            vec![note("n1").key, note("n2").key, note("n3").key],
            Some("n3".to_string()),
            StoreTag::LiveShown
        )]
    );
    let last_show = a
        .iter()
        .rposition(|x| matches!(x, Action::Show(_)))
        .expect("shown");
    let pong = position(&a, |x| matches!(x, Action::Send(Outbound::Pong { .. }))).expect("pong");
    let store = position(&a, |x| matches!(x, Action::Store { .. })).expect("stored");
    assert!(last_show < store && pong < store, "{a:?}");
}

#[test]
fn a_shown_notification_that_cannot_be_stored_is_told_not_shown_again() {
    let mut r = Rig::connected();
    r.catch_up();
    r.feed(checked(&["n1"], &[]));
    let a = r.feed(Input::Stored(StoreReport {
        tag: StoreTag::LiveShown,
        outcomes: vec![(note("n1"), Outcome::Failed("disk full".into()))],
        one_by_one: false,
    }));
    assert!(errors(&a).iter().any(|e| e.contains("disk full")), "{a:?}");
    assert!(notified(&a).is_empty());
    assert_eq!(count(&a, |x| matches!(x, Action::Show(_))), 0);
}
