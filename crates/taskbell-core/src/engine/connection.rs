//! The engine's connection to the platform as a pure state machine: every rule of
//! sign-in, socket, heartbeat, catch-up and reconnect, and no I/O.
//!
//! The driver ([`crate::supervisor`]) feeds [`Input`]s with the time ([`Now`]) to
//! [`Connection::handle`] and carries out the [`Action`]s it returns, in order.
//! Nothing here touches a socket, tokio, the keyring, SQLite or a clock, so every
//! rule is tested with plain `Instant`s (see the tests at the bottom).
//!
//! Shapes, and why:
//!
//! - **One machine for the whole life, not one per socket.** The rules that matter
//!   span connections (backoff grows across them, the refusal streak spans
//!   sign-ins, the summary runs once), so the machine has phases
//!   (signing in → connecting → open → waiting → …, or stopped) instead of four
//!   overlapping "how did it end" enums. `Connection` is the connection to the
//!   platform, which outlives every socket.
//! - **Timers are a deadline, not actions.** [`Connection::deadline`] says when
//!   the machine next needs to run; the driver sleeps until then and feeds
//!   [`Input::Tick`], and the machine works out what is due (a ping, a dead link, a
//!   catch-up retry, a step of the backoff countdown, a folded toast). No timer ids,
//!   nothing to cancel: a deadline that no longer exists is simply not returned.
//! - **[`Now`] carries both clocks.** The monotonic `Instant` drives heartbeat,
//!   backoff and folding; the wall clock and the local minute drive pause and quiet
//!   hours. The sleep detector's reading comes in as [`Input::ClockChecked`]
//!   (the driver owns that sensor; the machine decides what a jump means).
//! - **Storing is a round trip, except for what is new for sure.** A notification
//!   becomes [`Action::Store`]; the history answers with [`Input::Stored`], and only
//!   what it reports new (or could not store: better shown twice than lost) is
//!   announced and shown. A live frame the driver looked up first
//!   ([`Input::Checked`]) and the history does not hold, with no store of it on its
//!   way (the machine counts the keys of the stores it asked for until they are
//!   reported), is new for sure: announced and shown at once, and stored right after
//!   ([`StoreTag::LiveShown`]), so its toast does not wait for the write. The cursor to
//!   save rides on the store request, so it is written after the rows it covers.
//! - **Every socket ends with exactly one [`Action::Close`]**, so the driver knows
//!   when to drop the socket and the catch-up request that belong to it.
//!
//! - **Toast actions come back as inputs.** "Mark read" and "Snooze" on a toast
//!   arrive as [`Input::ToastAction`]; a snoozed toast is kept here and comes back
//!   once, [`Rules::snooze`] later on the machine's own clock (pause and quiet
//!   hours apply then). Whatever is marked read (a toast, a command, the server's
//!   `read` frame, "mark all read") is withdrawn from the screen
//!   ([`Action::Withdraw`]) and forgotten if snoozed; what the user marked read
//!   here also goes to the server ([`Action::MarkReadOnServer`]), what the server
//!   reported read does not go back.
//!
//! Invariant (from `ARCHITECTURE.md`): **a notification is announced only once the
//! history said it is new (by its store's report, or, for a live frame, by a lookup
//! that found neither it nor a store of it on its way), and the cursor only ever moves to ids the server
//! sent — from catch-up pages, and from live frames only once this connection's
//! catch-up has succeeded.**

use std::time::{Duration, Instant};

use rand::rngs::StdRng;

use super::{Command, Event, ExitReason, State};
use crate::api::{ApiError, NotificationPage};
use crate::backoff::{Backoff, BackoffPolicy, RefusalStreak};
use crate::config::Config;
use crate::delivery::{
    self, Delivery, DeliveryPolicy, Toast, ToastAction, ToastActionKind, ToastCard,
};
use crate::heartbeat::Heartbeat;
use crate::history::Retention;
use crate::i18n::{Lang, Msg, tr};
use crate::protocol::{Inbound, Notification, Outbound, User};

/// Catch-up page size.
pub const CATCHUP_LIMIT: u32 = 100;
/// At most this many pages per catch-up (the server caps history anyway).
pub const CATCHUP_MAX_PAGES: usize = 100;
/// The longest wait between catch-up retries.
pub const CATCHUP_RETRY_CAP: Duration = Duration::from_secs(60);
/// The history's retention is applied after this many stored notifications.
pub const PRUNE_EVERY: u32 = 1_000;
/// Snoozed toasts kept at most; snoozing one more drops the one due first.
pub const MAX_SNOOZED: usize = 64;
/// Review links (and sounds) kept for toasts not shown yet (held for folding,
/// suppressed).
const MAX_REVIEW_LINKS: usize = 256;

/// The time, as the driver read it when the input arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// The monotonic clock (heartbeat, backoff, folding, catch-up retries).
    pub mono: Instant,
    /// The wall clock, ms since the epoch (pause; ping timestamps).
    pub wall_ms: i64,
    /// Minutes since local midnight (quiet hours).
    pub local_minute: u16,
}

/// The timings the machine applies (the driver's `Timing` minus the I/O ones).
#[derive(Debug, Clone)]
pub struct Rules {
    /// Reconnect backoff.
    pub backoff: BackoffPolicy,
    /// Minimum delay after close code 1008 (too many connections).
    pub policy_close_floor: Duration,
    /// A wall clock running ahead of the monotonic clock by more than this means
    /// the machine slept: reconnect at once.
    pub clock_jump: Duration,
    /// First retry delay after a failed catch-up (doubles, up to [`CATCHUP_RETRY_CAP`]).
    pub catchup_retry: Duration,
    /// Token refusals less than this apart form a streak ([`RefusalStreak`]).
    pub auth_refusal_window: Duration,
    /// How long "Snooze" puts a toast away (1 h in production).
    pub snooze: Duration,
}

/// Why signing in did not produce a session (the driver's keyring and REST work,
/// classified).
#[derive(Debug, Clone, PartialEq)]
pub enum SignInFailure {
    /// No token and no remembered password, or the password was refused: the
    /// session has ended (the text says why).
    Ended(String),
    /// The keyring failed; the engine cannot go on.
    Keyring(String),
    /// The server denied access (403).
    Forbidden(String),
    /// Worth another try later (network, 5xx, 429 with its `Retry-After`).
    Transient {
        /// Why.
        reason: String,
        /// The server's `Retry-After`, a floor for the delay.
        retry_after: Option<Duration>,
    },
}

/// Why opening the socket failed (the upgrade answer or the transport, classified).
#[derive(Debug, Clone, PartialEq)]
pub enum ConnectFailure {
    /// HTTP 401 on the upgrade: the token was refused (as close code 4001).
    Unauthorized(String),
    /// HTTP 403 on the upgrade: access denied (as close code 4003).
    Forbidden(String),
    /// Anything else.
    Failed {
        /// Why.
        reason: String,
        /// A 429/503 answer's `Retry-After`.
        retry_after: Option<Duration>,
        /// The server cannot be reached at all (the state says "offline").
        unreachable: bool,
    },
}

/// What a store request was for; it comes back with the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreTag {
    /// A live frame.
    Live,
    /// Live frames already announced and shown ([`Input::Checked`]: the history's
    /// reader did not hold them and no store of them was on its way): the report
    /// only confirms, or tells a failure.
    LiveShown,
    /// A catch-up page of the connection numbered `conn`; `last` ends the catch-up.
    CatchUp {
        /// The connection it belongs to.
        conn: u64,
        /// The last page of this catch-up.
        last: bool,
    },
}

/// What the history did with one notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Newly stored: announce it.
    New,
    /// Stored before: never shown again.
    Duplicate,
    /// Could not be stored: shown anyway (better twice than lost).
    Failed(String),
}

/// The history's answer to an [`Action::Store`].
#[derive(Debug, Clone, PartialEq)]
pub struct StoreReport {
    /// The request's tag.
    pub tag: StoreTag,
    /// Each notification of the request, in order, with what became of it.
    pub outcomes: Vec<(Notification, Outcome)>,
    /// A page that could not be stored in one transaction was stored one by one.
    pub one_by_one: bool,
}

/// Where a catch-up request starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Since {
    /// After the cursor in the history (none: from the beginning).
    StoredCursor,
    /// From the beginning (the server refused the stored cursor).
    Beginning,
}

/// How to end a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Close {
    /// Send close code 1000 (we leave on purpose).
    Normal,
    /// Close without waiting for the peer (a dead link, a resume from sleep).
    Quick,
    /// The socket is already closed or broken: just drop it.
    Gone,
}

/// A change to the published status.
#[derive(Debug, Clone, PartialEq)]
pub enum StatusChange {
    /// The connection state (publish only when it differs).
    State(State),
    /// A heartbeat round trip (also into a `Connected` state).
    Latency(u64),
    /// The connection ended: no current latency.
    LatencyUnknown,
    /// One more reconnect.
    Reconnected,
    /// One more unread notification.
    UnreadAdded,
    /// The signed-in user.
    User(User),
    /// The pause.
    Paused(Option<i64>),
}

/// Something that happened, for the machine to decide on.
#[derive(Debug, Clone)]
pub enum Input {
    /// The engine starts.
    Start,
    /// [`Action::SignIn`] produced a session for this user.
    SignedIn(User),
    /// [`Action::SignIn`] failed.
    SignInFailed(SignInFailure),
    /// [`Action::Connect`] opened the socket.
    Opened,
    /// [`Action::Connect`] failed.
    ConnectFailed(ConnectFailure),
    /// A decoded frame from the server (bad frames never get here).
    Frame(Inbound),
    /// Frames that were already waiting together, in order (a burst): decided as one
    /// `Frame` each, except that the live notifications among them that follow each
    /// other are stored with one [`Action::Store`] (one round trip to the history).
    Frames(Vec<Inbound>),
    /// Frames as [`Input::Frames`], whose notifications the driver looked up in the
    /// history first (a read on the loop, no write): `stored` holds the keys it found.
    /// A live notification it did not find, and that no store on its way carries, is
    /// announced and shown at once and stored after ([`StoreTag::LiveShown`]): the
    /// toast does not wait for the write (issue 13).
    Checked {
        /// The frames, in order.
        frames: Vec<Inbound>,
        /// The keys among them that the history holds.
        stored: std::collections::HashSet<String>,
    },
    /// The server closed the socket (`code` is `None` when it sent none or the
    /// stream just ended).
    Closed {
        /// The close code.
        code: Option<u16>,
        /// The close reason, or the driver's description.
        reason: String,
    },
    /// Reading or writing the socket failed.
    Lost(String),
    /// The answer to [`Action::Fetch`]: `Ok(None)` when the server keeps no history.
    Fetched {
        /// The cursor the request carried (`None`: from the beginning).
        asked_with: Option<String>,
        /// The page, or why not.
        result: Result<Option<NotificationPage>, ApiError>,
    },
    /// The answer to [`Action::Store`].
    Stored(StoreReport),
    /// The sleep detector: how far the wall clock ran ahead of the monotonic one
    /// since the last check.
    ClockChecked {
        /// The jump.
        ahead: Duration,
    },
    /// A front end's command.
    Command(Command),
    /// The user chose "Mark read" or "Snooze" on a toast.
    ToastAction(ToastAction),
    /// The answer to [`Action::MarkAllRead`]: the keys that were unread.
    MarkedAllRead(Vec<String>),
    /// [`Connection::deadline`] has passed.
    Tick,
}

/// What the driver must do, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Get a session (token from the keyring, else the remembered password; check it
    /// with `/api/auth/me`); answer with [`Input::SignedIn`] or
    /// [`Input::SignInFailed`]. Replaces any sign-in or connect in progress.
    SignIn,
    /// The token was refused: forget it, in memory and in the keyring.
    ForgetToken,
    /// Fetch and show the login summary (once per engine).
    Summary,
    /// Open the socket; answer with [`Input::Opened`] or [`Input::ConnectFailed`].
    Connect,
    /// Send a frame; a failure is [`Input::Lost`].
    Send(Outbound),
    /// End the socket, and drop the catch-up request that belongs to it.
    Close(Close),
    /// Ask for a page of history; answer with [`Input::Fetched`].
    Fetch(Since),
    /// Store notifications (in order), then save `cursor` if given; answer with
    /// [`Input::Stored`].
    Store {
        /// The notifications.
        notes: Vec<Notification>,
        /// The cursor to save after them.
        cursor: Option<String>,
        /// What they are.
        tag: StoreTag,
    },
    /// Apply the history's retention.
    Prune(Retention),
    /// Hand a toast (with its actions' links) to the notifier.
    Show(ToastCard),
    /// Close the toasts standing for these notification keys, where still shown.
    Withdraw(Vec<String>),
    /// Publish an event.
    Emit(Event),
    /// Change the published status.
    Status(StatusChange),
    /// Persist the pause in the config file.
    SavePause(Option<i64>),
    /// Mark these notifications read in the history (the unread count follows).
    MarkRead(Vec<String>),
    /// Mark everything read in the history; answer with [`Input::MarkedAllRead`].
    MarkAllRead,
    /// Tell the server these ids were read (`POST /api/notifications/read`): best
    /// effort, in the background, a failure only logged.
    MarkReadOnServer(Vec<String>),
    /// Revoke the token where possible and clear the keyring.
    SignOut,
    /// Stop; nothing follows.
    Exit(ExitReason),
}

/// How one socket (or attempt) ended, before the policy says what follows.
#[derive(Debug)]
enum Ended {
    /// The server closed with a code other than 4001/4003 (or none).
    Closed { code: Option<u16>, reason: String },
    /// No pong within the timeout.
    Dead(Duration),
    /// Transport failure or refusal.
    Failed {
        reason: String,
        retry_after: Option<Duration>,
        unreachable: bool,
    },
    /// The token was refused (4001, a 401).
    AuthFailed(String),
    /// Access denied (4003, a 403).
    Denied(String),
    /// Reconnect now (command, resume from sleep).
    Now(String),
}

/// Where the machine is.
#[derive(Debug)]
enum Phase {
    /// Waiting for [`Input::SignedIn`] / [`Input::SignInFailed`].
    SigningIn,
    /// Waiting for [`Input::Opened`] / [`Input::ConnectFailed`].
    Connecting,
    /// The socket is up.
    Open(Box<Link>),
    /// Between attempts.
    Waiting(Wait),
    /// [`Action::Exit`] was returned.
    Stopped,
}

/// One open socket.
#[derive(Debug)]
struct Link {
    id: u64,
    heartbeat: Heartbeat,
    catch_up: CatchUp,
}

/// One connection's catch-up.
#[derive(Debug, Default)]
struct CatchUp {
    /// Started (at the first pong).
    started: bool,
    /// A request is out; `true` when it is this catch-up's first page.
    in_flight: Option<bool>,
    /// When to ask again after a failure.
    retry_at: Option<Instant>,
    /// Failures in a row.
    failures: u32,
    pages: usize,
    fetched: usize,
    new: usize,
    /// The last page arrived (or the server keeps no history): live ids may move the cursor.
    caught_up: bool,
}

/// A backoff wait.
#[derive(Debug)]
struct Wait {
    until: Instant,
    /// When the countdown in the state is next updated.
    step_at: Instant,
    reason: String,
    unreachable: bool,
}

/// A toast put away by "Snooze".
#[derive(Debug)]
struct Snoozed {
    due: Instant,
    card: ToastCard,
}

/// The state machine; see the module docs.
#[derive(Debug)]
pub struct Connection {
    rules: Rules,
    config: Config,
    lang: Lang,
    /// The configured user name (pings carry it until the user is known).
    username: String,
    user: Option<User>,
    backoff: Backoff,
    refusals: RefusalStreak,
    delivery: Delivery,
    rng: StdRng,
    summary_done: bool,
    stored_since_prune: u32,
    /// Keys of the stores asked for and not reported yet (how many of each): what
    /// the history's reader cannot see yet.
    storing: std::collections::HashMap<String, u32>,
    /// The keys the driver found in the history, for the frames being decided.
    found: std::collections::HashSet<String>,
    /// The frames being decided came with a lookup ([`Input::Checked`]).
    checked: bool,
    connections: u64,
    phase: Phase,
    /// Toasts put away by "Snooze", in the order they were snoozed.
    snoozed: Vec<Snoozed>,
    /// Review links of announced notifications whose toast is not shown yet.
    reviews: std::collections::VecDeque<(String, String)>,
    /// Sounds of announced notifications whose toast is not shown yet.
    sounds: std::collections::VecDeque<(String, String)>,
    out: Vec<Action>,
}

impl Connection {
    /// A machine for this account; feed it [`Input::Start`] first. `rng` supplies
    /// the backoff jitter (tests seed it).
    pub fn new(config: Config, lang: Lang, username: String, rules: Rules, rng: StdRng) -> Self {
        Connection {
            backoff: Backoff::new(rules.backoff.clone()),
            refusals: RefusalStreak::new(rules.auth_refusal_window),
            delivery: Delivery::new(DeliveryPolicy::from_config(&config, lang)),
            rules,
            config,
            lang,
            username,
            user: None,
            rng,
            summary_done: false,
            stored_since_prune: 0,
            storing: std::collections::HashMap::new(),
            found: std::collections::HashSet::new(),
            checked: false,
            connections: 0,
            phase: Phase::SigningIn,
            snoozed: Vec::new(),
            reviews: std::collections::VecDeque::new(),
            sounds: std::collections::VecDeque::new(),
            out: Vec::new(),
        }
    }

    /// The delivery rules in force (pause, quiet hours), for the summary toasts.
    pub fn delivery_policy(&self) -> &DeliveryPolicy {
        self.delivery.policy()
    }

    /// The signed-in user, once known.
    pub fn user(&self) -> Option<&User> {
        self.user.as_ref()
    }

    /// Whether the machine has stopped ([`Action::Exit`] was returned).
    pub fn is_stopped(&self) -> bool {
        matches!(self.phase, Phase::Stopped)
    }

    /// When the machine next needs an [`Input::Tick`], if ever.
    pub fn deadline(&self) -> Option<Instant> {
        let phase = match &self.phase {
            Phase::Open(link) => {
                let hb = link.heartbeat.next_deadline();
                Some(link.catch_up.retry_at.map_or(hb, |r| r.min(hb)))
            }
            Phase::Waiting(w) => Some(w.step_at.min(w.until)),
            Phase::Stopped => return None,
            Phase::SigningIn | Phase::Connecting => None,
        };
        let snooze = self.snoozed.iter().map(|s| s.due).min();
        [phase, self.delivery.next_flush_at(), snooze]
            .into_iter()
            .flatten()
            .min()
    }

    /// How many toasts are snoozed.
    pub fn snoozed(&self) -> usize {
        self.snoozed.len()
    }

    /// Decides what `input` means at `now`; returns what to do, in order.
    pub fn handle(&mut self, input: Input, now: Now) -> Vec<Action> {
        if !self.is_stopped() {
            self.step(input, now);
        }
        std::mem::take(&mut self.out)
    }

    fn step(&mut self, input: Input, now: Now) {
        match input {
            Input::Start => self.sign_in(),
            Input::SignedIn(user) => {
                if matches!(self.phase, Phase::SigningIn) {
                    self.user = Some(user.clone());
                    self.push(Action::Status(StatusChange::User(user)));
                    if !self.summary_done {
                        self.summary_done = true;
                        self.push(Action::Summary);
                    }
                    self.phase = Phase::Connecting;
                    self.push(Action::Connect);
                }
            }
            Input::SignInFailed(failure) => {
                if matches!(self.phase, Phase::SigningIn) {
                    self.sign_in_failed(failure, now);
                }
            }
            Input::Opened => {
                if matches!(self.phase, Phase::Connecting) {
                    self.opened(now);
                }
            }
            Input::ConnectFailed(failure) => {
                if matches!(self.phase, Phase::Connecting) {
                    let ended = match failure {
                        ConnectFailure::Unauthorized(why) => Ended::AuthFailed(why),
                        ConnectFailure::Forbidden(why) => Ended::Denied(why),
                        ConnectFailure::Failed {
                            reason,
                            retry_after,
                            unreachable,
                        } => Ended::Failed {
                            reason,
                            retry_after,
                            unreachable,
                        },
                    };
                    self.end(ended, now);
                }
            }
            Input::Frame(frame) => {
                if matches!(self.phase, Phase::Open(_)) {
                    self.frame(frame, now);
                }
            }
            Input::Frames(frames) => {
                let from = self.out.len();
                for frame in frames {
                    if matches!(self.phase, Phase::Open(_)) {
                        self.frame(frame, now);
                    }
                }
                merge_live_stores(&mut self.out, from);
            }
            Input::Checked { frames, stored } => {
                let from = self.out.len();
                self.found = stored;
                self.checked = true;
                for frame in frames {
                    if matches!(self.phase, Phase::Open(_)) {
                        self.frame(frame, now);
                    }
                }
                self.checked = false;
                self.found.clear();
                merge_live_stores(&mut self.out, from);
            }
            Input::Closed { code, reason } => {
                if matches!(self.phase, Phase::Open(_)) {
                    self.close(Close::Gone);
                    let ended = match code {
                        Some(4001) => Ended::AuthFailed(reason),
                        Some(4003) if reason.is_empty() => Ended::Denied("4003".to_string()),
                        Some(4003) => Ended::Denied(reason),
                        _ => Ended::Closed { code, reason },
                    };
                    self.end(ended, now);
                }
            }
            Input::Lost(reason) => {
                if matches!(self.phase, Phase::Open(_)) {
                    self.close(Close::Gone);
                    self.end(
                        Ended::Failed {
                            reason,
                            retry_after: None,
                            unreachable: false,
                        },
                        now,
                    );
                }
            }
            Input::Fetched { asked_with, result } => self.fetched(asked_with, result, now),
            Input::Stored(report) => self.stored(report, now),
            Input::ClockChecked { ahead } => {
                if ahead > self.rules.clock_jump {
                    self.clock_jumped(ahead, now);
                }
            }
            Input::Command(cmd) => self.command(cmd, now),
            Input::ToastAction(a) => match a.kind {
                ToastActionKind::MarkRead => self.read_here(a.card.toast.keys, true),
                ToastActionKind::Snooze => self.snooze(a.card, now),
                ToastActionKind::ShowFolded => self.emit(Event::ShowFolded {
                    keys: a.card.toast.keys,
                }),
            },
            Input::MarkedAllRead(keys) => {
                // Everything stored is read now: nothing snoozed comes back.
                self.snoozed.clear();
                self.reviews.clear();
                let ids = server_ids(&keys);
                if !keys.is_empty() {
                    self.push(Action::Withdraw(keys));
                }
                if !ids.is_empty() {
                    self.push(Action::MarkReadOnServer(ids));
                }
            }
            Input::Tick => self.tick(now),
        }
    }

    fn push(&mut self, action: Action) {
        self.out.push(action);
    }

    fn emit(&mut self, event: Event) {
        self.push(Action::Emit(event));
    }

    fn set_state(&mut self, state: State) {
        self.push(Action::Status(StatusChange::State(state)));
    }

    /// Hands `toast` to the notifier, with the review link and the sound of its
    /// notification; a folded toast plays the default sound, if any.
    fn show(&mut self, toast: Toast) {
        let take = |list: &mut std::collections::VecDeque<(String, String)>, key: &String| {
            list.iter()
                .position(|(k, _)| k == key)
                .and_then(|i| list.remove(i))
                .map(|(_, v)| v)
        };
        let (review_url, sound) = match toast.keys.as_slice() {
            [key] => (take(&mut self.reviews, key), take(&mut self.sounds, key)),
            _ => (None, self.delivery.policy().default_sound.clone()),
        };
        self.push(Action::Show(ToastCard {
            toast,
            review_url,
            sound,
        }));
    }

    // ---- read marks and toast actions ------------------------------------

    /// Marks `keys` read in the history, withdraws their toasts, forgets them if
    /// snoozed, and tells the server when the user marked them here.
    fn read_here(&mut self, keys: Vec<String>, tell_server: bool) {
        if keys.is_empty() {
            return;
        }
        self.snoozed
            .retain(|s| !s.card.toast.keys.iter().all(|k| keys.contains(k)));
        let ids = if tell_server {
            server_ids(&keys)
        } else {
            Vec::new()
        };
        self.push(Action::MarkRead(keys.clone()));
        self.push(Action::Withdraw(keys));
        if !ids.is_empty() {
            self.push(Action::MarkReadOnServer(ids));
        }
    }

    /// Puts a toast away until [`Rules::snooze`] from now; it comes back once.
    fn snooze(&mut self, card: ToastCard, now: Now) {
        if card.toast.keys.is_empty() {
            return;
        }
        // The same toast snoozed twice (a repeated signal) still comes back once.
        self.snoozed
            .retain(|s| s.card.toast.keys != card.toast.keys);
        if self.snoozed.len() >= MAX_SNOOZED {
            let first = self
                .snoozed
                .iter()
                .enumerate()
                .min_by_key(|(_, s)| s.due)
                .map(|(i, _)| i);
            if let Some(i) = first {
                tracing::warn!("too many snoozed toasts; the one due first is dropped");
                self.snoozed.remove(i);
            }
        }
        let keys = card.toast.keys.clone();
        self.snoozed.push(Snoozed {
            due: now.mono.checked_add(self.rules.snooze).unwrap_or(now.mono),
            card,
        });
        // Off the screen now (most daemons close a toast whose action was invoked).
        self.push(Action::Withdraw(keys));
    }

    /// Shows the snoozed toasts that are due, unless pause or quiet hours hold them.
    fn wake_snoozed(&mut self, now: Now) {
        if !self.snoozed.iter().any(|s| s.due <= now.mono) {
            return;
        }
        let (due, later): (Vec<Snoozed>, Vec<Snoozed>) = std::mem::take(&mut self.snoozed)
            .into_iter()
            .partition(|s| s.due <= now.mono);
        self.snoozed = later;
        for s in due {
            let policy = self.delivery.policy();
            match policy.suppression(s.card.toast.urgency, now.local_minute, now.wall_ms) {
                Some(why) => {
                    tracing::info!(reason = ?why, title = %s.card.toast.title, "a snoozed toast came due while toasts are held back; not shown (it stays unread in the history)");
                }
                None => self.push(Action::Show(s.card)),
            }
        }
    }

    fn exit(&mut self, reason: ExitReason) {
        self.phase = Phase::Stopped;
        self.push(Action::Exit(reason));
    }

    // ---- session -------------------------------------------------------

    fn sign_in(&mut self) {
        self.phase = Phase::SigningIn;
        self.set_state(State::Connecting);
        self.push(Action::SignIn);
    }

    fn sign_in_failed(&mut self, failure: SignInFailure, now: Now) {
        match failure {
            SignInFailure::Ended(reason) => self.signed_out(Some(reason)),
            SignInFailure::Keyring(message) => {
                self.emit(Event::Error {
                    message: message.clone(),
                });
                self.set_state(State::SignedOut {
                    reason: Some(message.clone()),
                });
                self.exit(ExitReason::Failed(message));
            }
            // As before the split: a 403 while signing in stops without a message.
            SignInFailure::Forbidden(why) => self.exit(ExitReason::AccessDenied(why)),
            SignInFailure::Transient {
                reason,
                retry_after,
            } => self.wait(reason, retry_after, false, now),
        }
    }

    fn signed_out(&mut self, reason: Option<String>) {
        self.set_state(State::SignedOut {
            reason: reason.clone(),
        });
        self.emit(Event::SignedOut { reason });
        self.exit(ExitReason::SignedOut);
    }

    // ---- the socket ----------------------------------------------------

    fn opened(&mut self, now: Now) {
        self.connections += 1;
        let heartbeat = Heartbeat::new(
            Duration::from_secs(self.config.heartbeat_interval_secs.max(1)),
            Duration::from_secs(self.config.pong_timeout_secs.max(1)),
            now.mono,
        );
        self.backoff.connected_at(now.mono);
        self.set_state(State::Connected { latency_ms: None });
        self.emit(Event::Connected);
        self.phase = Phase::Open(Box::new(Link {
            id: self.connections,
            heartbeat,
            catch_up: CatchUp::default(),
        }));
        // The first ping is due at once.
        self.heartbeat(now);
    }

    /// Sends a due ping, or ends a dead link.
    fn heartbeat(&mut self, now: Now) {
        let Phase::Open(link) = &mut self.phase else {
            return;
        };
        if let Some(since) = link.heartbeat.dead_since(now.mono) {
            self.close(Close::Quick);
            self.end(Ended::Dead(since), now);
            return;
        }
        if link.heartbeat.ping_due(now.mono) {
            link.heartbeat.ping_sent(now.mono, now.wall_ms);
            let (user_id, username) = match &self.user {
                Some(u) => (u.id.clone(), u.username.clone()),
                None => (String::new(), self.username.clone()),
            };
            self.push(Action::Send(Outbound::Ping {
                timestamp: now.wall_ms,
                user_id,
                username,
            }));
        }
    }

    fn frame(&mut self, frame: Inbound, now: Now) {
        let Phase::Open(link) = &mut self.phase else {
            return;
        };
        // Every frame proves the link alive (after the pong below is counted): a
        // talkative server costs no pings (issue 13).
        let is_pong = matches!(frame, Inbound::Pong { .. });
        if !is_pong {
            link.heartbeat.frame_received(now.mono);
        }
        match frame {
            Inbound::Pong { timestamp, .. } => {
                // The catch-up starts at the first pong, not at connect: a server that
                // subscribes the socket to its channels before it reads frames (ours
                // does) has then subscribed, so whatever it published before is in the
                // history the catch-up reads, and whatever comes after arrives live.
                // Started at connect, a notification published between the catch-up's
                // answer and the subscription was in neither (fault harness, seed 5000).
                let start = !link.catch_up.started;
                if start {
                    link.catch_up.started = true;
                    link.catch_up.in_flight = Some(true);
                }
                let latency = link.heartbeat.pong_received(timestamp, now.mono);
                link.heartbeat.frame_received(now.mono);
                if start {
                    self.push(Action::Fetch(Since::StoredCursor));
                }
                if let Some(lat) = latency {
                    let ms = u64::try_from(lat.as_millis()).unwrap_or(u64::MAX);
                    self.push(Action::Status(StatusChange::Latency(ms)));
                    self.emit(Event::Latency { ms });
                }
            }
            Inbound::Ping { timestamp } => self.push(Action::Send(Outbound::Pong {
                timestamp: timestamp.unwrap_or(now.wall_ms),
            })),
            Inbound::Read { ids } => self.read_here(ids, false),
            Inbound::Notification(n) => {
                // Live ids move the cursor only once this connection has caught up:
                // before that, the history between the cursor and them is not stored yet.
                let cursor = if link.catch_up.caught_up {
                    n.id.clone()
                } else {
                    None
                };
                let unseen = self.checked
                    && !self.found.contains(&n.key)
                    && !self.storing.contains_key(&n.key);
                if unseen {
                    // New for sure: shown now, stored right after (the toast is handed
                    // over before the write starts). The unread count follows the
                    // store's report, so it never counts a row not written yet.
                    self.announce(n.clone(), false, now);
                    self.count_for_prune();
                    self.store(vec![n], cursor, StoreTag::LiveShown);
                } else {
                    self.store(vec![n], cursor, StoreTag::Live);
                }
            }
        }
    }

    /// Ends the open socket (if one is open) the given way.
    fn close(&mut self, how: Close) {
        if matches!(self.phase, Phase::Open(_)) {
            self.push(Action::Close(how));
            self.push(Action::Status(StatusChange::LatencyUnknown));
            // Until `end` or `exit` says what follows.
            self.phase = Phase::Connecting;
        }
    }

    /// What follows the end of a connection or an attempt.
    fn end(&mut self, ended: Ended, now: Now) {
        let (reason, floor, unreachable) = match ended {
            Ended::Now(why) => {
                tracing::info!(reason = %why, "reconnecting now");
                self.push(Action::Status(StatusChange::Reconnected));
                self.backoff.reset();
                self.sign_in();
                return;
            }
            Ended::AuthFailed(why) => {
                tracing::warn!(reason = %why, "the server refused the token");
                self.push(Action::ForgetToken);
                self.push(Action::Status(StatusChange::Reconnected));
                // A server that keeps refusing fresh tokens must not get a tight loop
                // of logins: the first refusal of a while signs in again at once,
                // each further one within the window waits longer (an answered
                // heartbeat in between does not end the streak).
                self.refusals.refused(now.mono);
                match self.refusals.floor(&self.rules.backoff) {
                    Some(floor) => self.wait(why, Some(floor), false, now),
                    None => self.sign_in(),
                }
                return;
            }
            Ended::Denied(why) => {
                let message = tr(self.lang, Msg::AccessDenied { reason: &why });
                self.emit(Event::Error {
                    message: message.clone(),
                });
                self.set_state(State::SignedOut {
                    reason: Some(message),
                });
                self.exit(ExitReason::AccessDenied(why));
                return;
            }
            Ended::Closed { code, reason } => {
                let floor = match code {
                    Some(1008) => {
                        let message = tr(self.lang, Msg::TooManyConnections);
                        self.emit(Event::Error { message });
                        Some(self.rules.policy_close_floor)
                    }
                    _ => None,
                };
                let why = match code {
                    Some(c) if reason.is_empty() => format!("closed by the server ({c})"),
                    Some(c) => format!("closed by the server ({c}: {reason})"),
                    None => reason,
                };
                (why, floor, false)
            }
            Ended::Dead(since) => (
                format!(
                    "no answer to the heartbeat for {} s",
                    since.as_secs().max(1)
                ),
                None,
                false,
            ),
            Ended::Failed {
                reason,
                retry_after,
                unreachable,
            } => (reason, retry_after, unreachable),
        };
        self.push(Action::Status(StatusChange::Reconnected));
        self.wait(reason, floor, unreachable, now);
    }

    // ---- catch-up ------------------------------------------------------

    fn fetched(
        &mut self,
        asked_with: Option<String>,
        result: Result<Option<NotificationPage>, ApiError>,
        now: Now,
    ) {
        let Phase::Open(link) = &mut self.phase else {
            return;
        };
        let Some(first) = link.catch_up.in_flight.take() else {
            return;
        };
        let conn = link.id;
        let c = &mut link.catch_up;
        match result {
            Ok(None) => {
                c.caught_up = true;
                self.backoff.healthy();
                tracing::info!("the server keeps no history (404); relying on the summary");
                self.emit(Event::CaughtUp {
                    fetched: 0,
                    new: 0,
                    supported: false,
                });
            }
            Ok(Some(page)) => {
                c.failures = 0;
                let next = next_cursor(&page, asked_with.as_ref());
                c.pages += 1;
                c.fetched += page.list.len();
                let more = next.is_some() && c.pages < CATCHUP_MAX_PAGES;
                if !more {
                    if next.is_some() {
                        tracing::warn!(pages = c.pages, "catch-up stopped after the page limit");
                    }
                    // Answered a heartbeat and caught up: a healthy connection, so the
                    // next outage starts from the first delay (once it lasted
                    // `healthy_after`). Live ids move the cursor from now on; their
                    // stores queue behind this page's.
                    c.caught_up = true;
                    self.backoff.healthy();
                } else {
                    c.in_flight = Some(false);
                }
                // The protocol's cursor is the id of the last notification the client has.
                let cursor = page.last_id.or(page.next_cursor);
                self.store(page.list, cursor, StoreTag::CatchUp { conn, last: !more });
                if more {
                    self.push(Action::Fetch(Since::StoredCursor));
                }
            }
            // A cursor this server does not understand (another server, a reset
            // history): start from the beginning; dedupe keeps repeats away.
            Err(ApiError::Server {
                status: 400 | 422,
                message,
            }) if first && asked_with.is_some() => {
                tracing::warn!(%message, "the server refused the catch-up cursor; fetching all history");
                c.in_flight = Some(false);
                self.push(Action::Fetch(Since::Beginning));
            }
            // The token was refused while catching up (revoked): sign in again now,
            // as for a 4001, rather than retrying with the same token.
            Err(ApiError::Unauthorized(why)) => {
                self.close(Close::Normal);
                self.end(Ended::AuthFailed(why), now);
            }
            Err(e) => {
                // Retry with a doubling delay (capped); tell the user once.
                let delay = self
                    .rules
                    .catchup_retry
                    .saturating_mul(1u32 << c.failures.min(6))
                    .min(CATCHUP_RETRY_CAP);
                tracing::warn!(error = %e, retry_in = ?delay, "catch-up failed; retrying");
                let tell = c.failures == 0;
                c.failures = c.failures.saturating_add(1);
                c.retry_at = Some(now.mono + delay);
                if tell {
                    self.emit(Event::Error {
                        message: format!("catch-up failed: {e}"),
                    });
                }
            }
        }
    }

    /// Asks the history to store `notes` (and then save `cursor`), remembering their
    /// keys until the report comes.
    fn store(&mut self, notes: Vec<Notification>, cursor: Option<String>, tag: StoreTag) {
        for n in &notes {
            *self.storing.entry(n.key.clone()).or_insert(0) += 1;
        }
        self.push(Action::Store { notes, cursor, tag });
    }

    /// Counts one stored notification towards the next prune.
    fn count_for_prune(&mut self) {
        self.stored_since_prune += 1;
        if self.stored_since_prune >= PRUNE_EVERY {
            self.stored_since_prune = 0;
            self.push(Action::Prune(Retention::from_config(&self.config)));
        }
    }

    fn stored(&mut self, report: StoreReport, now: Now) {
        for (n, _) in &report.outcomes {
            if let Some(left) = self.storing.get_mut(&n.key) {
                *left -= 1;
                if *left == 0 {
                    self.storing.remove(&n.key);
                }
            }
        }
        if report.tag == StoreTag::LiveShown {
            for (n, outcome) in report.outcomes {
                match outcome {
                    Outcome::New => self.push(Action::Status(StatusChange::UnreadAdded)),
                    // Only another writer of this history could have stored it since
                    // the lookup (the engine is its one writer).
                    Outcome::Duplicate => {
                        tracing::warn!(key = %n.key, "a notification shown as new was already stored");
                    }
                    Outcome::Failed(e) => {
                        tracing::error!(error = %e, key = %n.key, "cannot store a notification already shown");
                        self.emit(Event::Error {
                            message: format!("cannot store a notification: {e}"),
                        });
                        // Counted as the store-first path counts what it could not store.
                        self.push(Action::Status(StatusChange::UnreadAdded));
                    }
                }
            }
            return;
        }
        let counts_for_prune = report.tag == StoreTag::Live || report.one_by_one;
        let mut new = 0;
        for (n, outcome) in report.outcomes {
            match outcome {
                Outcome::Duplicate => {
                    tracing::debug!(key = %n.key, "duplicate notification skipped");
                    continue;
                }
                Outcome::Failed(e) => {
                    tracing::error!(error = %e, key = %n.key, "cannot store a notification; showing it anyway");
                    self.emit(Event::Error {
                        message: format!("cannot store a notification: {e}"),
                    });
                }
                Outcome::New => {}
            }
            new += 1;
            self.announce(n, true, now);
            if counts_for_prune {
                self.count_for_prune();
            }
        }
        if let StoreTag::CatchUp { conn, last } = report.tag
            && let Phase::Open(link) = &mut self.phase
            && link.id == conn
        {
            let c = &mut link.catch_up;
            c.new += new;
            if last {
                let (fetched, new) = (c.fetched, c.new);
                tracing::info!(fetched, new, "caught up");
                self.emit(Event::CaughtUp {
                    fetched,
                    new,
                    supported: true,
                });
            }
        }
    }

    /// Announces a new notification and shows its toasts; `count` adds it to the
    /// unread count now (stored already), else its store's report does.
    fn announce(&mut self, n: Notification, count: bool, now: Now) {
        if count {
            self.push(Action::Status(StatusChange::UnreadAdded));
        }
        if let Some(role) = self.user.as_ref().map(|u| u.role)
            && let Some(url) = self.delivery.policy().review_url(&n, role)
        {
            if self.reviews.len() >= MAX_REVIEW_LINKS {
                self.reviews.pop_front();
            }
            self.reviews.push_back((n.key.clone(), url));
        }
        if let Some(sound) = delivery::decide(self.delivery.policy(), &n).sound {
            if self.sounds.len() >= MAX_REVIEW_LINKS {
                self.sounds.pop_front();
            }
            self.sounds.push_back((n.key.clone(), sound));
        }
        let toasts = self
            .delivery
            .offer(&n, now.mono, now.local_minute, now.wall_ms);
        // The toast first: the event wakes whoever listens, which the toast need not
        // wait for.
        for t in toasts {
            self.show(t);
        }
        self.emit(Event::Notification(n));
    }

    // ---- waiting -------------------------------------------------------

    /// Waits out the backoff delay (at least `floor`), counting down in the state.
    fn wait(&mut self, reason: String, floor: Option<Duration>, unreachable: bool, now: Now) {
        if self.backoff.is_stable(now.mono) {
            self.backoff.reset();
        }
        let delay = match floor {
            Some(f) => self.backoff.next_delay_at_least(f, &mut self.rng),
            None => self.backoff.next_delay(&mut self.rng),
        };
        let delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        let attempt = self.backoff.attempt();
        tracing::info!(%reason, delay_ms, attempt, "reconnecting after a delay");
        self.emit(Event::Reconnecting {
            reason: reason.clone(),
            delay_ms,
            attempt,
        });
        self.phase = Phase::Waiting(Wait {
            until: now.mono.checked_add(delay).unwrap_or(now.mono),
            step_at: now.mono,
            reason,
            unreachable,
        });
        self.countdown(now);
    }

    /// One step of the countdown: the state says how long is left, or the wait is over.
    fn countdown(&mut self, now: Now) {
        let Phase::Waiting(w) = &mut self.phase else {
            return;
        };
        let left = w.until.saturating_duration_since(now.mono);
        if left.is_zero() {
            self.sign_in();
            return;
        }
        w.step_at = now.mono + left.min(Duration::from_secs(1));
        let state = if w.unreachable {
            State::Offline {
                reason: w.reason.clone(),
            }
        } else {
            State::Reconnecting {
                in_secs: left.as_secs() + u64::from(left.subsec_nanos() > 0),
                reason: w.reason.clone(),
            }
        };
        self.set_state(state);
    }

    // ---- time ----------------------------------------------------------

    fn tick(&mut self, now: Now) {
        for t in self.delivery.poll(now.mono) {
            self.show(t);
        }
        self.wake_snoozed(now);
        match &mut self.phase {
            Phase::Open(link) => {
                let retry = link.catch_up.retry_at.filter(|at| now.mono >= *at);
                if retry.is_some() {
                    link.catch_up.retry_at = None;
                    link.catch_up.in_flight = Some(link.catch_up.pages == 0);
                    self.push(Action::Fetch(Since::StoredCursor));
                }
                self.heartbeat(now);
            }
            Phase::Waiting(w) => {
                if now.mono >= w.step_at {
                    self.countdown(now);
                }
            }
            Phase::SigningIn | Phase::Connecting | Phase::Stopped => {}
        }
    }

    fn clock_jumped(&mut self, ahead: Duration, now: Now) {
        let why = format!("the clock jumped {} s (resume from sleep)", ahead.as_secs());
        match &self.phase {
            // A sign-in in progress is not worth cutting short.
            Phase::SigningIn | Phase::Stopped => {}
            Phase::Connecting => self.end(Ended::Now(why), now),
            Phase::Open(_) => {
                self.close(Close::Quick);
                self.end(Ended::Now(why), now);
            }
            Phase::Waiting(_) => {
                tracing::info!(reason = %why, "skipping the wait");
                self.sign_in();
            }
        }
    }

    // ---- commands ------------------------------------------------------

    fn command(&mut self, cmd: Command, now: Now) {
        match cmd {
            Command::ReconnectNow => {
                let why = "reconnect requested".to_string();
                match &self.phase {
                    Phase::SigningIn => {
                        tracing::info!(reason = %why, "signing in again now");
                        self.sign_in();
                    }
                    Phase::Connecting => self.end(Ended::Now(why), now),
                    Phase::Open(_) => {
                        self.close(Close::Normal);
                        self.end(Ended::Now(why), now);
                    }
                    Phase::Waiting(_) => {
                        tracing::info!(reason = %why, "skipping the wait");
                        self.sign_in();
                    }
                    Phase::Stopped => {}
                }
            }
            Command::Shutdown => {
                self.close(Close::Normal);
                for t in self.delivery.flush(now.mono) {
                    self.show(t);
                }
                self.set_state(State::Offline {
                    reason: "stopped".to_string(),
                });
                self.exit(ExitReason::Shutdown);
            }
            Command::SignOut => {
                self.close(Close::Normal);
                self.push(Action::SignOut);
                self.signed_out(None);
            }
            Command::Pause { until_ms } => self.set_pause(Some(until_ms)),
            Command::Resume => self.set_pause(None),
            Command::TestNotification => {
                let toast = Toast {
                    keys: vec![format!("test:{}", now.wall_ms)],
                    ..delivery::test_toast(self.lang)
                };
                // The test toast plays the default sound, so the setting can be tried.
                if let (Some(key), Some(sound)) = (
                    toast.keys.first(),
                    self.delivery.policy().default_sound.clone(),
                ) {
                    self.sounds.push_back((key.clone(), sound));
                }
                self.show(toast);
            }
            Command::MarkRead { keys } => self.read_here(keys, true),
            Command::MarkAllRead => self.push(Action::MarkAllRead),
            Command::SetConfig(config) => {
                let config = *config;
                self.delivery
                    .set_policy(DeliveryPolicy::from_config(&config, self.lang));
                self.push(Action::Status(StatusChange::Paused(config.paused_until_ms)));
                self.config = config;
            }
        }
    }

    fn set_pause(&mut self, until_ms: Option<i64>) {
        self.config.paused_until_ms = until_ms;
        self.delivery
            .set_policy(DeliveryPolicy::from_config(&self.config, self.lang));
        // Persist the pause so a restart keeps it (other settings are the front
        // end's), before the status says it is done.
        self.push(Action::SavePause(until_ms));
        self.push(Action::Status(StatusChange::Paused(until_ms)));
    }
}

/// The keys that are server ids (not the content keys of frames without `id`).
fn server_ids(keys: &[String]) -> Vec<String> {
    keys.iter()
        .filter(|k| !k.starts_with("content:"))
        .cloned()
        .collect()
}

/// Where the page after `page` starts, when there is one and it is further on.
fn next_cursor(page: &NotificationPage, asked_with: Option<&String>) -> Option<String> {
    let full = page.list.len() >= CATCHUP_LIMIT as usize;
    let next = page.next_cursor.clone().or_else(|| page.last_id.clone());
    next.filter(|n| full && Some(n) != asked_with)
}

/// Merges the live stores in `out[from..]` (one batch of frames) so the batch costs
/// few round trips to the history:
/// - live stores that follow each other become one: their notifications in order, the
///   last cursor among them (a store saves its cursor after its rows);
/// - the stores of notifications already shown ([`StoreTag::LiveShown`]) become one,
///   placed after the toasts, events and pongs of the batch (which do not wait for
///   them) but before any other action, so no write or read of the history moves past
///   another.
fn merge_live_stores(out: &mut Vec<Action>, from: usize) {
    let tail: Vec<Action> = out.drain(from..).collect();
    let mut shown: Option<(Vec<Notification>, Option<String>)> = None;
    let flush = |out: &mut Vec<Action>, shown: &mut Option<(Vec<Notification>, Option<String>)>| {
        if let Some((notes, cursor)) = shown.take() {
            out.push(Action::Store {
                notes,
                cursor,
                tag: StoreTag::LiveShown,
            });
        }
    };
    for action in tail {
        match action {
            Action::Store {
                notes,
                cursor,
                tag: StoreTag::LiveShown,
            } => match &mut shown {
                Some((prev, prev_cursor)) => {
                    prev.extend(notes);
                    if cursor.is_some() {
                        *prev_cursor = cursor;
                    }
                }
                None => shown = Some((notes, cursor)),
            },
            a @ (Action::Show(_) | Action::Emit(_) | Action::Status(_) | Action::Send(_)) => {
                out.push(a);
            }
            Action::Store {
                notes,
                cursor,
                tag: StoreTag::Live,
            } => {
                flush(out, &mut shown);
                let mergeable = out.len() > from;
                if let Some(Action::Store {
                    notes: prev,
                    cursor: prev_cursor,
                    tag: StoreTag::Live,
                }) = out.last_mut().filter(|_| mergeable)
                {
                    prev.extend(notes);
                    if cursor.is_some() {
                        *prev_cursor = cursor;
                    }
                    continue;
                }
                out.push(Action::Store {
                    notes,
                    cursor,
                    tag: StoreTag::Live,
                });
            }
            other => {
                flush(out, &mut shown);
                out.push(other);
            }
        }
    }
    flush(out, &mut shown);
}

#[cfg(test)]
#[path = "connection_tests.rs"]
mod tests;
