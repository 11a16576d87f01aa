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
}

impl Default for BackoffPolicy {
    fn default() -> Self {
        BackoffPolicy {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(60),
            reset_after: Duration::from_secs(30),
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
}

impl Backoff {
    /// A fresh backoff (attempt 0).
    pub fn new(policy: BackoffPolicy) -> Backoff {
        Backoff {
            policy,
            attempt: 0,
            connected_at: None,
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
    }

    /// Whether the current connection (see [`Backoff::connected_at`]) has
    /// lasted `reset_after` by `now`. Call it when the connection ends; if
    /// true, [`Backoff::reset`] before asking for the next delay.
    pub fn is_stable(&self, now: Instant) -> bool {
        self.connected_at
            .is_some_and(|t| now.saturating_duration_since(t) >= self.policy.reset_after)
    }

    /// The current connection proved healthy (the caller saw it answer a
    /// heartbeat and catch up): the next outage starts again from the first
    /// delay, however soon it comes. Without this, outages less than
    /// `reset_after` apart kept doubling the delay (bench finding 2: 31 s median
    /// recovery for back-to-back 5 s outages).
    pub fn healthy(&mut self) {
        self.attempt = 0;
    }

    /// Back to attempt 0, no connection.
    pub fn reset(&mut self) {
        self.attempt = 0;
        self.connected_at = None;
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
        // Dropped 2 s later, long before `reset_after`: still attempt 0.
        assert!(!b.is_stable(t0 + Duration::from_secs(2)));
        assert_eq!(b.attempt(), 0);
        assert!(b.next_delay(&mut r) <= Duration::from_secs(1));
        assert_eq!(b.attempt(), 1);
        // Failed attempts after it double again.
        assert_eq!(b.policy().ceiling(b.attempt()), Duration::from_secs(2));
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
