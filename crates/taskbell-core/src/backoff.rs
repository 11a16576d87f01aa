//! Reconnect delays: exponential backoff with full jitter, capped, never
//! giving up, reset after a stable connection (one that lasted 30 s, or one
//! the caller saw healthy: heartbeat answered and caught up). Pure: the
//! caller passes the random number generator and the (monotonic) time.
//!
//! delay(attempt) is uniform in `[0, min(cap, base · 2^attempt)]` ("full
//! jitter", so many clients restarted by one server deploy do not reconnect
//! in lock-step). A server's `Retry-After` is a floor
//! ([`Backoff::next_delay_at_least`]).

use std::time::{Duration, Instant};

use rand::RngExt;

/// The longest `Retry-After` we honour; a larger one is clamped to this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// Backoff parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackoffPolicy {
    /// Ceiling of the first delay (1 s).
    pub base: Duration,
    /// Largest ceiling (60 s).
    pub cap: Duration,
    /// A connection that lasted this long resets the attempt counter (30 s).
    pub reset_after: Duration,
    /// A connection the caller saw healthy (heartbeat answered, caught up) resets
    /// the counter once it has lasted this long (10 s). Without a minimum, a
    /// server that closes every socket right after its first pong got a connect
    /// every half second.
    pub healthy_after: Duration,
}

impl Default for BackoffPolicy {
    fn default() -> Self {
        BackoffPolicy {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(60),
            reset_after: Duration::from_secs(30),
            healthy_after: Duration::from_secs(10),
        }
    }
}

impl BackoffPolicy {
    /// `min(cap, base · 2^attempt)`, without overflow for any attempt.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        if attempt >= 32 {
            return self.cap;
        }
        self.base
            .checked_mul(1u32 << attempt)
            .map_or(self.cap, |d| d.min(self.cap))
    }

    /// A random delay, uniform in `[0, ceiling(attempt)]` (full jitter).
    pub fn delay(&self, attempt: u32, rng: &mut impl rand::Rng) -> Duration {
        let ceiling = self.ceiling(attempt);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(rng.random_range(0..=nanos))
    }
}

/// The backoff state of one connection supervisor.
#[derive(Debug, Clone)]
pub struct Backoff {
    policy: BackoffPolicy,
    attempt: u32,
    connected_at: Option<Instant>,
    healthy: bool,
}

impl Backoff {
    /// A fresh backoff (attempt 0).
    pub fn new(policy: BackoffPolicy) -> Backoff {
        Backoff {
            policy,
            attempt: 0,
            connected_at: None,
            healthy: false,
        }
    }

    /// The policy.
    pub fn policy(&self) -> &BackoffPolicy {
        &self.policy
    }

    /// How many delays were handed out since the last reset.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The delay before the next attempt; counts the attempt and ends the
    /// current connection (if any) for [`Backoff::is_stable`].
    pub fn next_delay(&mut self, rng: &mut impl rand::Rng) -> Duration {
        let d = self.policy.delay(self.attempt, rng);
        self.attempt = self.attempt.saturating_add(1);
        self.connected_at = None;
        self.healthy = false;
        d
    }

    /// As [`Backoff::next_delay`], but at least `floor` (a server's
    /// `Retry-After`, clamped to [`MAX_RETRY_AFTER`]).
    pub fn next_delay_at_least(&mut self, floor: Duration, rng: &mut impl rand::Rng) -> Duration {
        self.next_delay(rng).max(floor.min(MAX_RETRY_AFTER))
    }

    /// Records that a connection was established at `now`.
    pub fn connected_at(&mut self, now: Instant) {
        self.connected_at = Some(now);
        self.healthy = false;
    }

    /// Whether the current connection (see [`Backoff::connected_at`]) counts as
    /// stable by `now`: it lasted `reset_after`, or it was seen healthy
    /// ([`Backoff::healthy`]) and lasted `healthy_after`. Call it when the
    /// connection ends; if true, [`Backoff::reset`] before asking for the next
    /// delay.
    pub fn is_stable(&self, now: Instant) -> bool {
        self.connected_at.is_some_and(|t| {
            let up = now.saturating_duration_since(t);
            up >= self.policy.reset_after || (self.healthy && up >= self.policy.healthy_after)
        })
    }

    /// The current connection proved healthy (the caller saw it answer a
    /// heartbeat and catch up): once it has also lasted `healthy_after`, the
    /// next outage starts again from the first delay, well before `reset_after`
    /// (bench finding 2: outages seconds apart kept doubling the delay). A
    /// connection that a server closes right after proving healthy keeps the
    /// delays growing (hardening: no reconnect storm).
    pub fn healthy(&mut self) {
        self.healthy = true;
    }

    /// Back to attempt 0, no connection.
    pub fn reset(&mut self) {
        self.attempt = 0;
        self.connected_at = None;
        self.healthy = false;
    }
}

/// Refusals of the token (close code 4001, a 401) that come close together.
///
/// The first refusal of a while is an expired or revoked token: sign in again at
/// once. Another within `window` means the server refuses what it just issued;
/// each further one must wait longer ([`RefusalStreak::floor`]), whatever
/// happened in between (an answered heartbeat proves nothing about the next
/// token). The streak ends after `window` without a refusal.
#[derive(Debug, Clone)]
pub struct RefusalStreak {
    window: Duration,
    last: Option<Instant>,
    count: u32,
}

impl RefusalStreak {
    /// A streak that ends after `window` without a refusal.
    pub fn new(window: Duration) -> RefusalStreak {
        RefusalStreak {
            window,
            last: None,
            count: 0,
        }
    }

    /// Records a refusal at `now`; returns its number in the current streak (1 for
    /// the first of a while).
    pub fn refused(&mut self, now: Instant) -> u32 {
        let close = self
            .last
            .is_some_and(|l| now.saturating_duration_since(l) < self.window);
        self.count = if close {
            self.count.saturating_add(1)
        } else {
            1
        };
        self.last = Some(now);
        self.count
    }

    /// The least wait before signing in again after the latest refusal: none for
    /// the first, then the policy's ceilings for attempts 1, 2, 3… (2 s, 4 s, 8 s …
    /// up to the cap with the default policy).
    pub fn floor(&self, policy: &BackoffPolicy) -> Option<Duration> {
        (self.count > 1).then(|| policy.ceiling(self.count - 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn rng() -> StdRng {
        StdRng::seed_from_u64(0x7a5c_be11)
    }

    #[test]
    fn ceilings_double_up_to_the_cap() {
        let p = BackoffPolicy::default();
        let secs: Vec<u64> = (0..9).map(|a| p.ceiling(a).as_secs()).collect();
        assert_eq!(secs, vec![1, 2, 4, 8, 16, 32, 60, 60, 60]);
    }

    #[test]
    fn huge_attempts_do_not_overflow() {
        let p = BackoffPolicy::default();
        for a in [31, 32, 33, 63, 64, 1000, u32::MAX - 1, u32::MAX] {
            assert_eq!(p.ceiling(a), p.cap, "attempt {a}");
        }
        let huge = BackoffPolicy {
            base: Duration::MAX,
            cap: Duration::MAX,
            reset_after: Duration::ZERO,
            healthy_after: Duration::ZERO,
        };
        assert_eq!(huge.ceiling(5), Duration::MAX);
        let d = huge.delay(5, &mut rng());
        assert!(d <= Duration::MAX);
        let mut b = Backoff::new(BackoffPolicy::default());
        b.attempt = u32::MAX;
        let d = b.next_delay(&mut rng());
        assert!(d <= Duration::from_secs(60));
        assert_eq!(b.attempt(), u32::MAX, "saturates");
    }

    #[test]
    fn full_jitter_stays_within_bounds_and_spreads() {
        let p = BackoffPolicy::default();
        let mut r = rng();
        for attempt in 0..10u32 {
            let ceiling = p.ceiling(attempt);
            let samples: Vec<Duration> = (0..2000).map(|_| p.delay(attempt, &mut r)).collect();
            assert!(samples.iter().all(|d| *d <= ceiling), "attempt {attempt}");
            // spread over the whole range: some in the lowest and highest tenth
            let tenth = ceiling / 10;
            assert!(
                samples.iter().any(|d| *d < tenth),
                "attempt {attempt}: nothing low"
            );
            assert!(
                samples.iter().any(|d| *d > ceiling - tenth),
                "attempt {attempt}: nothing high"
            );
            let mean = samples.iter().sum::<Duration>() / 2000;
            let half = ceiling / 2;
            assert!(
                mean > half.mul_f64(0.9) && mean < half.mul_f64(1.1),
                "attempt {attempt}: mean {mean:?} not near {half:?}"
            );
        }
    }

    #[test]
    fn the_counter_grows_and_never_gives_up() {
        let mut b = Backoff::new(BackoffPolicy::default());
        let mut r = rng();
        for i in 0..100u32 {
            assert_eq!(b.attempt(), i);
            let d = b.next_delay(&mut r);
            assert!(d <= b.policy().ceiling(i));
        }
        assert_eq!(b.attempt(), 100);
    }

    #[test]
    fn resets_only_after_a_stable_connection() {
        let mut b = Backoff::new(BackoffPolicy::default());
        let mut r = rng();
        let t0 = Instant::now();
        for _ in 0..5 {
            b.next_delay(&mut r);
        }
        assert!(!b.is_stable(t0), "no connection yet");
        b.connected_at(t0);
        assert!(!b.is_stable(t0 + Duration::from_secs(29)));
        assert!(b.is_stable(t0 + Duration::from_secs(30)));
        // a short connection does not reset...
        b.next_delay(&mut r);
        assert_eq!(b.attempt(), 6);
        // ...and failed attempts later do not count as stable
        assert!(!b.is_stable(t0 + Duration::from_secs(300)));
        b.connected_at(t0 + Duration::from_secs(400));
        assert!(b.is_stable(t0 + Duration::from_secs(431)));
        b.reset();
        assert_eq!(b.attempt(), 0);
        assert!(!b.is_stable(t0 + Duration::from_secs(500)));
        assert!(b.next_delay(&mut r) <= Duration::from_secs(1));
    }

    #[test]
    fn a_healthy_connection_starts_the_next_outage_from_the_first_delay() {
        let mut b = Backoff::new(BackoffPolicy::default());
        let mut r = rng();
        let t0 = Instant::now();
        for _ in 0..6 {
            b.next_delay(&mut r);
        }
        b.connected_at(t0);
        b.healthy();
        // Dropped 12 s later, long before `reset_after` but after `healthy_after`:
        // stable, so the next outage starts from the first delay.
        assert!(b.is_stable(t0 + Duration::from_secs(12)));
        b.reset();
        assert!(b.next_delay(&mut r) <= Duration::from_secs(1));
        assert_eq!(b.attempt(), 1);
        // Failed attempts after it double again.
        assert_eq!(b.policy().ceiling(b.attempt()), Duration::from_secs(2));
    }

    #[test]
    fn a_healthy_connection_closed_at_once_keeps_the_delays_growing() {
        // A server that closes right after the first pong and a catch-up (attack 3).
        let mut b = Backoff::new(BackoffPolicy::default());
        let mut r = rng();
        let mut t = Instant::now();
        let mut ceilings = Vec::new();
        for _ in 0..8 {
            b.connected_at(t);
            b.healthy();
            t += Duration::from_millis(300);
            assert!(!b.is_stable(t), "healthy but only 300 ms up");
            let d = b.next_delay(&mut r);
            ceilings.push(b.policy().ceiling(b.attempt() - 1).as_secs());
            assert!(d <= b.policy().ceiling(b.attempt() - 1));
            t += d;
        }
        assert_eq!(ceilings, [1, 2, 4, 8, 16, 32, 60, 60]);
        // Healthy alone is forgotten by the next connection: it must prove itself again.
        b.connected_at(t);
        assert!(!b.is_stable(t + Duration::from_secs(12)));
    }

    #[test]
    fn refusals_close_together_wait_longer_and_longer() {
        let p = BackoffPolicy::default();
        let mut s = RefusalStreak::new(Duration::from_secs(600));
        let t0 = Instant::now();
        assert_eq!(s.refused(t0), 1);
        assert_eq!(
            s.floor(&p),
            None,
            "the first refusal signs in again at once"
        );
        let mut floors = Vec::new();
        let mut t = t0;
        for _ in 0..8 {
            t += Duration::from_secs(1);
            s.refused(t);
            floors.push(s.floor(&p).map(|d| d.as_secs()));
        }
        assert_eq!(
            floors,
            [2, 4, 8, 16, 32, 60, 60, 60].map(Some),
            "each refusal within the window waits longer"
        );
        // Ten quiet minutes end the streak: an expired token hours later is no attack.
        assert_eq!(s.refused(t + Duration::from_secs(600)), 1);
        assert_eq!(s.floor(&p), None);
    }

    #[test]
    fn retry_after_is_a_floor() {
        let mut b = Backoff::new(BackoffPolicy::default());
        let mut r = rng();
        for _ in 0..50 {
            let d = b.next_delay_at_least(Duration::from_secs(120), &mut r);
            assert!(d >= Duration::from_secs(120));
            assert!(
                d <= Duration::from_secs(120),
                "the jittered delay is below the floor here"
            );
        }
        b.reset();
        let d = b.next_delay_at_least(Duration::from_millis(10), &mut r);
        assert!(d <= Duration::from_secs(1));
        assert!(d >= Duration::from_millis(10));
        assert_eq!(
            b.next_delay_at_least(Duration::from_secs(10 * 24 * 3600), &mut r),
            MAX_RETRY_AFTER
        );
    }

    #[tokio::test(start_paused = true)]
    async fn delays_drive_a_paused_clock_retry_loop() {
        // The supervisor's shape: sleep the delay, try, fail, repeat. With the
        // clock paused, 20 attempts take no real time and the elapsed virtual
        // time is the sum of the delays, each within its ceiling.
        let mut b = Backoff::new(BackoffPolicy::default());
        let mut r = rng();
        let start = tokio::time::Instant::now();
        let mut total = Duration::ZERO;
        for i in 0..20u32 {
            let d = b.next_delay(&mut r);
            assert!(d <= b.policy().ceiling(i));
            total += d;
            tokio::time::sleep(d).await;
        }
        // (tokio's timer has 1 ms granularity: each sleep may end up to 1 ms late)
        let elapsed = tokio::time::Instant::now() - start;
        assert!(
            elapsed >= total && elapsed <= total + Duration::from_millis(20),
            "{elapsed:?} vs {total:?}"
        );
        // 20 attempts with a 60 s cap: at most 1+2+4+8+16+32 + 14·60 s
        assert!(total <= Duration::from_secs(63 + 14 * 60));
    }
}
