//! The JSON heartbeat (protocol.md §3): when to ping, which pings are still
//! unanswered, the pong timeout and latency samples. Pure: the caller passes
//! `std::time::Instant`s (from tokio: `tokio::time::Instant::into_std`, which
//! follows the paused test clock) and the wall clock in ms.
//!
//! - The first ping is due at once when the connection opens (so latency and
//!   half-open links are known early), then every `interval` after the last.
//! - A pong echoes our `timestamp` (wall ms); it answers that ping and every
//!   older one. A pong with a timestamp we never sent is ignored.
//! - The connection is dead when the oldest unanswered ping is older than
//!   `timeout` and nothing at all came in since it was sent: the caller closes
//!   it and reconnects.
//! - Every incoming frame is proof of life ([`Heartbeat::frame_received`]): once
//!   the first pong came, a ping is sent only after `interval` (plus a little
//!   slack, see [`Heartbeat::slack`]) without any frame, so a talkative server
//!   (its own pings, notifications) costs no pings at all and a silent one one
//!   ping per interval. A dead link is still noticed within `interval + timeout`
//!   of the last frame: a ping sent after the slack has that much less time.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How many latency samples are kept.
pub const MAX_SAMPLES: usize = 60;

/// How many unanswered pings are remembered (older ones are forgotten; by
/// then the connection is long dead anyway).
pub const MAX_OUTSTANDING: usize = 64;

/// Heartbeat state of one connection.
#[derive(Debug, Clone)]
pub struct Heartbeat {
    interval: Duration,
    timeout: Duration,
    next_ping: Instant,
    /// Unanswered pings, oldest first: (the timestamp we sent, when).
    outstanding: VecDeque<(i64, Instant)>,
    samples: VecDeque<Duration>,
    /// When the last frame of any kind came in.
    last_rx: Option<Instant>,
    /// Whether a pong has answered one of our pings on this connection.
    answered: bool,
}

impl Heartbeat {
    /// A heartbeat for a connection opened at `now`; the first ping is due at `now`.
    pub fn new(interval: Duration, timeout: Duration, now: Instant) -> Heartbeat {
        Heartbeat {
            interval,
            timeout,
            next_ping: now,
            outstanding: VecDeque::new(),
            samples: VecDeque::new(),
            last_rx: None,
            answered: false,
        }
    }

    /// The ping interval.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// The pong timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// When the next ping is due.
    pub fn next_ping_at(&self) -> Instant {
        self.next_ping
    }

    /// Whether a ping is due at `now`.
    pub fn ping_due(&self, now: Instant) -> bool {
        now >= self.next_ping
    }

    /// Records a ping sent at `now` carrying `wall_ms` as its timestamp; the
    /// next one is due `interval` later.
    pub fn ping_sent(&mut self, now: Instant, wall_ms: i64) {
        if self.outstanding.len() >= MAX_OUTSTANDING {
            self.outstanding.pop_front();
        }
        self.outstanding.push_back((wall_ms, now));
        self.next_ping = now.checked_add(self.interval).unwrap_or(now);
    }

    /// Records a pong echoing `echoed_ts`, received at `now`. Returns the
    /// round-trip latency of that ping; `None` (and no change) when we have
    /// no unanswered ping with that timestamp.
    pub fn pong_received(&mut self, echoed_ts: i64, now: Instant) -> Option<Duration> {
        let pos = self
            .outstanding
            .iter()
            .position(|(ts, _)| *ts == echoed_ts)?;
        let (_, sent) = self.outstanding[pos];
        // This ping and all older ones are answered: the link is alive.
        self.outstanding.drain(..=pos);
        self.answered = true;
        let latency = now.saturating_duration_since(sent);
        if self.samples.len() >= MAX_SAMPLES {
            self.samples.pop_front();
        }
        self.samples.push_back(latency);
        Some(latency)
    }

    /// Records that a frame of any kind (a pong, a notification, the server's own
    /// ping…) came in at `now`: the link is alive. Once a pong has answered one of
    /// our pings, the next ping waits for `interval` without frames. (Before that
    /// the first ping goes out at once whatever arrives: its pong starts the
    /// catch-up and gives the first latency.)
    pub fn frame_received(&mut self, now: Instant) {
        self.last_rx = Some(now);
        if self.answered {
            let quiet_until = now.checked_add(self.interval + self.slack()).unwrap_or(now);
            self.next_ping = self.next_ping.max(quiet_until);
        }
    }

    /// How much longer than `interval` a ping waits after the last frame: the least of
    /// a quarter of the timeout, a tenth of the interval and 2 s. A server that pings at
    /// our own interval (the reference server pings every socket every 30 s) is then
    /// heard just before our ping would go out, instead of racing it every interval
    /// (measured: a ping, its pong and the server's ping, 3 wake-ups instead of 1).
    pub fn slack(&self) -> Duration {
        (self.timeout / 4)
            .min(self.interval / 10)
            .min(Duration::from_secs(2))
    }

    /// When the ping sent at `sent` times out: `timeout` after it, but, once pongs
    /// came, no later than `interval + timeout` after the last frame (so the slack
    /// before the ping does not stretch how long a dead link goes unnoticed), and
    /// never sooner than `timeout - slack` after it.
    fn deadline_of(&self, sent: Instant) -> Instant {
        let by_ping = sent.checked_add(self.timeout).unwrap_or(sent);
        let at_least = sent
            .checked_add(self.timeout.saturating_sub(self.slack()))
            .unwrap_or(sent);
        match (self.answered, self.last_rx) {
            (true, Some(rx)) => {
                let by_silence = rx.checked_add(self.interval + self.timeout).unwrap_or(rx);
                by_ping.min(by_silence).max(at_least)
            }
            _ => by_ping,
        }
    }

    /// How many pings are unanswered.
    pub fn outstanding(&self) -> usize {
        self.outstanding.len()
    }

    /// The oldest unanswered ping sent after the last frame came in: the one whose
    /// silence counts (a frame after a ping proves the link alive, pong or not).
    fn oldest_unproven(&self) -> Option<Instant> {
        self.outstanding
            .iter()
            .map(|(_, sent)| *sent)
            .find(|sent| self.last_rx.is_none_or(|rx| *sent > rx))
    }

    /// When the oldest unanswered ping times out, if one is unanswered and nothing
    /// came in since it was sent.
    pub fn pong_deadline(&self) -> Option<Instant> {
        self.oldest_unproven().map(|sent| self.deadline_of(sent))
    }

    /// If the connection is dead at `now` (a ping unanswered past its deadline, with
    /// no frame at all since it went out), how long that ping has gone unanswered.
    pub fn dead_since(&self, now: Instant) -> Option<Duration> {
        let sent = self.oldest_unproven()?;
        (now >= self.deadline_of(sent)).then(|| now.saturating_duration_since(sent))
    }

    /// Whether the connection is dead at `now`.
    pub fn is_dead(&self, now: Instant) -> bool {
        self.dead_since(now).is_some()
    }

    /// The next moment something must be done: a ping is due or a pong times out.
    pub fn next_deadline(&self) -> Instant {
        match self.pong_deadline() {
            Some(d) => d.min(self.next_ping),
            None => self.next_ping,
        }
    }

    /// The last latency samples (up to [`MAX_SAMPLES`]), oldest first.
    pub fn latency_samples(&self) -> Vec<Duration> {
        self.samples.iter().copied().collect()
    }

    /// The latest latency sample.
    pub fn last_latency(&self) -> Option<Duration> {
        self.samples.back().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn hb(t0: Instant) -> Heartbeat {
        Heartbeat::new(30 * S, 10 * S, t0)
    }

    #[test]
    fn any_frame_is_proof_of_life_once_a_pong_came() {
        let t0 = Instant::now();
        let mut h = hb(t0);
        // Before the first pong, frames do not delay the first ping.
        h.frame_received(t0);
        assert!(h.ping_due(t0), "the first ping goes out at once");
        h.ping_sent(t0, 1);
        assert!(h.pong_received(1, t0 + S).is_some());
        h.frame_received(t0 + S);
        assert_eq!(
            h.slack(),
            2 * S,
            "a quarter of the 10 s timeout, at most 2 s"
        );
        assert_eq!(h.next_ping_at(), t0 + 33 * S);
        // A notification every 20 s: no ping is ever due.
        for i in 1..=10u32 {
            let at = t0 + S + 20 * S * i;
            assert!(!h.ping_due(at), "frame {i}");
            h.frame_received(at);
        }
        let last = t0 + 201 * S;
        assert_eq!(h.next_ping_at(), last + 32 * S);
        // Silence: one ping after the interval and the slack; dead `interval + timeout`
        // after the last frame all the same.
        h.ping_sent(last + 32 * S, 2);
        assert_eq!(h.pong_deadline(), Some(last + 40 * S));
        assert!(!h.is_dead(last + 39 * S));
        assert_eq!(h.dead_since(last + 40 * S), Some(8 * S));
    }

    #[test]
    fn a_server_pinging_at_our_interval_is_heard_before_we_ping() {
        let t0 = Instant::now();
        let mut h = hb(t0);
        h.ping_sent(t0, 1);
        h.pong_received(1, t0 + S);
        h.frame_received(t0 + S);
        // The server pings every 30 s; its frames come up to 50 ms late either way.
        let mut at = t0 + S;
        for i in 0..100u32 {
            let jitter = Duration::from_millis(u64::from(i % 5) * 25);
            let next = at + 30 * S + jitter - Duration::from_millis(50);
            assert!(!h.ping_due(next), "ping {i} would race the server's");
            h.frame_received(next);
            at = next;
        }
        assert_eq!(h.outstanding(), 0);
        // A ping sent late (after a sleep) still gets `timeout - slack` to be answered.
        let late = at + 300 * S;
        h.ping_sent(late, 2);
        assert_eq!(h.pong_deadline(), Some(late + 8 * S));
    }

    #[test]
    fn a_frame_after_a_ping_proves_the_link_though_the_pong_is_late() {
        let t0 = Instant::now();
        let mut h = hb(t0);
        h.ping_sent(t0, 1);
        h.pong_received(1, t0 + S);
        h.ping_sent(t0 + 31 * S, 2);
        // A notification arrives before the pong: the link is alive.
        h.frame_received(t0 + 32 * S);
        assert_eq!(h.pong_deadline(), None);
        assert!(!h.is_dead(t0 + 60 * S));
        // The late pong still gives a latency sample.
        assert_eq!(h.pong_received(2, t0 + 33 * S), Some(2 * S));
        assert_eq!(h.outstanding(), 0);
    }

    #[test]
    fn pings_at_once_then_every_interval() {
        let t0 = Instant::now();
        let mut h = hb(t0);
        assert_eq!(h.next_ping_at(), t0);
        assert!(h.ping_due(t0));
        h.ping_sent(t0, 1000);
        assert_eq!(h.next_ping_at(), t0 + 30 * S);
        assert!(!h.ping_due(t0 + 29 * S));
        assert_eq!(
            h.pong_received(1000, t0 + Duration::from_millis(40)),
            Some(Duration::from_millis(40))
        );
        assert_eq!(h.next_deadline(), t0 + 30 * S);
        h.ping_sent(t0 + 30 * S, 31_000);
        assert_eq!(h.next_ping_at(), t0 + 60 * S);
        // while a ping is unanswered, the pong timeout comes first
        assert_eq!(h.next_deadline(), t0 + 40 * S);
    }

    #[test]
    fn latency_from_pong_and_samples_are_bounded() {
        let t0 = Instant::now();
        let mut h = hb(t0);
        for i in 0..100u64 {
            let sent = t0 + 30 * S * u32::try_from(i).unwrap();
            h.ping_sent(sent, i64::try_from(i).unwrap());
            let lat = Duration::from_millis(i);
            assert_eq!(
                h.pong_received(i64::try_from(i).unwrap(), sent + lat),
                Some(lat)
            );
        }
        let samples = h.latency_samples();
        assert_eq!(samples.len(), MAX_SAMPLES);
        assert_eq!(samples[0], Duration::from_millis(40));
        assert_eq!(h.last_latency(), Some(Duration::from_millis(99)));
    }

    #[test]
    fn dead_after_timeout_without_pong() {
        let t0 = Instant::now();
        let mut h = hb(t0);
        assert!(!h.is_dead(t0 + 1000 * S), "no ping, nothing to time out");
        h.ping_sent(t0, 1);
        assert!(!h.is_dead(t0 + 9 * S));
        assert_eq!(h.dead_since(t0 + 10 * S), Some(10 * S));
        assert_eq!(h.dead_since(t0 + 12 * S), Some(12 * S));
        assert_eq!(h.next_deadline(), t0 + 10 * S);
        // a late pong revives it
        assert!(h.pong_received(1, t0 + 12 * S).is_some());
        assert!(!h.is_dead(t0 + 12 * S));
    }

    #[test]
    fn unknown_pong_timestamps_are_ignored() {
        let t0 = Instant::now();
        let mut h = hb(t0);
        h.ping_sent(t0, 5);
        assert_eq!(h.pong_received(4, t0 + S), None);
        assert_eq!(h.pong_received(0, t0 + S), None);
        assert_eq!(h.outstanding(), 1);
        assert!(h.latency_samples().is_empty());
        assert!(
            h.is_dead(t0 + 10 * S),
            "an unknown pong does not count as an answer"
        );
        // a duplicate pong is unknown the second time
        assert!(h.pong_received(5, t0 + 11 * S).is_some());
        assert_eq!(h.pong_received(5, t0 + 11 * S), None);
        assert_eq!(h.latency_samples().len(), 1);
    }

    #[test]
    fn multiple_outstanding_pings() {
        let t0 = Instant::now();
        // timeout longer than the interval, so pings pile up
        let mut h = Heartbeat::new(5 * S, 30 * S, t0);
        h.ping_sent(t0, 100);
        h.ping_sent(t0 + 5 * S, 200);
        h.ping_sent(t0 + 10 * S, 300);
        assert_eq!(h.outstanding(), 3);
        assert_eq!(h.pong_deadline(), Some(t0 + 30 * S));
        // the middle pong answers it and the older one
        assert_eq!(h.pong_received(200, t0 + 11 * S), Some(6 * S));
        assert_eq!(h.outstanding(), 1);
        assert_eq!(h.pong_deadline(), Some(t0 + 40 * S));
        assert!(!h.is_dead(t0 + 35 * S));
        assert!(h.is_dead(t0 + 40 * S));
        // the older ping's late pong is now unknown
        assert_eq!(h.pong_received(100, t0 + 12 * S), None);
        assert_eq!(h.pong_received(300, t0 + 12 * S), Some(2 * S));
        assert_eq!(h.outstanding(), 0);
    }

    #[test]
    fn outstanding_pings_are_bounded() {
        let t0 = Instant::now();
        let mut h = Heartbeat::new(S, 1000 * S, t0);
        for i in 0..1000 {
            h.ping_sent(t0 + S * i, i64::from(i));
        }
        assert_eq!(h.outstanding(), MAX_OUTSTANDING);
        assert_eq!(h.pong_received(0, t0 + 1000 * S), None);
        assert!(h.pong_received(999, t0 + 1000 * S).is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_peer_is_noticed_within_interval_plus_timeout() {
        // The supervisor's loop over a peer that never answers, on the
        // paused clock: sleep until the next deadline, ping when due, stop
        // when dead.
        let start = tokio::time::Instant::now();
        let mut h = Heartbeat::new(30 * S, 10 * S, start.into_std());
        // the first ping is answered, later ones are black-holed
        h.ping_sent(start.into_std(), 1);
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert!(
            h.pong_received(1, tokio::time::Instant::now().into_std())
                .is_some()
        );
        let mut pings = 1;
        let dead_at = loop {
            tokio::time::sleep_until(tokio::time::Instant::from_std(h.next_deadline())).await;
            let now = tokio::time::Instant::now().into_std();
            if h.is_dead(now) {
                break now;
            }
            if h.ping_due(now) {
                pings += 1;
                h.ping_sent(now, pings);
            }
        };
        let elapsed = dead_at - start.into_std();
        assert_eq!(pings, 2);
        assert!(
            elapsed >= 40 * S && elapsed <= 40 * S + Duration::from_millis(50),
            "{elapsed:?}"
        );
        assert_eq!(h.last_latency(), Some(Duration::from_millis(5)));
    }
}
