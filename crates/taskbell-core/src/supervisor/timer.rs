//! The engine loop's one timer: it wakes the loop at the machine's next deadline.
//!
//! Tokio's timer wheel files a far deadline in coarse slots (4.1 s wide at the level a
//! 30 s heartbeat lands in, then 64 ms) and wakes the thread at the start of each slot to
//! move the entry down a level: a 32 s sleep costs up to three wake-ups, and the loop,
//! which replaces its deadline whenever a frame arrives, paid one or two extra wake-ups
//! for every server ping (measured with strace, docs/benchmarks.md). On Linux the timer
//! is a `timerfd` armed for the exact deadline instead, registered with tokio's reactor:
//! one wake-up per deadline that is reached, none for one that is replaced first.
//! Elsewhere, and with [`TimerKind::Tokio`] (for a test on tokio's paused clock), it is
//! `tokio::time::sleep_until`. [`crate::memory::Quiet`] waits on one too.

use tokio::time::Instant;

/// Which timer the loop uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimerKind {
    /// `tokio::time::sleep_until`: follows tokio's clock, paused in tests included.
    Tokio,
    /// One wake-up per deadline where the OS offers it (a `timerfd` on Linux); tokio's
    /// timer elsewhere. Follows the real monotonic clock only (not a paused tokio clock).
    #[default]
    Precise,
}

/// The loop's timer.
pub(crate) struct Timer {
    #[cfg(target_os = "linux")]
    fd: Option<tokio::io::unix::AsyncFd<linux::Fd>>,
}

impl Timer {
    /// A timer of `kind`; a precise one that cannot be made falls back to tokio's (said
    /// once in the log).
    pub(crate) fn new(kind: TimerKind) -> Timer {
        #[cfg(target_os = "linux")]
        {
            let fd = match kind {
                TimerKind::Tokio => None,
                TimerKind::Precise => match linux::Fd::new().and_then(linux::register) {
                    Ok(fd) => Some(fd),
                    Err(e) => {
                        tracing::debug!(error = %e, "no timerfd; the engine uses tokio's timer");
                        None
                    }
                },
            };
            Timer { fd }
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = kind;
            Timer {}
        }
    }

    /// Waits until `at` (forever when `None`). Cancel-safe: dropping the future leaves
    /// nothing behind that matters (the next call re-arms the timer).
    pub(crate) async fn until(&mut self, at: Option<Instant>) {
        let Some(at) = at else {
            return std::future::pending().await;
        };
        #[cfg(target_os = "linux")]
        if let Some(fd) = &self.fd {
            let left = at.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            if fd.get_ref().arm(left).is_ok() {
                loop {
                    let Ok(mut ready) = fd.readable().await else {
                        break;
                    };
                    if ready.get_inner().expired() {
                        return;
                    }
                    // Readiness left over from an expiry that a re-arm cleared.
                    ready.clear_ready();
                }
            }
            // The timerfd failed: tokio's timer does the job.
        }
        tokio::time::sleep_until(at).await;
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use std::os::fd::{AsFd, AsRawFd, RawFd};
    use std::time::Duration;

    use nix::sys::time::TimeSpec;
    use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
    use tokio::io::Interest;
    use tokio::io::unix::AsyncFd;

    /// A non-blocking monotonic `timerfd`.
    pub(super) struct Fd(TimerFd);

    impl AsRawFd for Fd {
        fn as_raw_fd(&self) -> RawFd {
            self.0.as_fd().as_raw_fd()
        }
    }

    /// Registers `fd` with tokio's reactor, for reading.
    #[allow(unsafe_code)]
    pub(super) fn register(fd: Fd) -> Result<AsyncFd<Fd>, String> {
        // SAFETY: `Fd` owns its `TimerFd`, so the descriptor `as_raw_fd` returns is open,
        // and the same one, for as long as the `AsyncFd` owns the `Fd` (it is closed only
        // when both are dropped).
        unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }
            .map_err(|e| format!("cannot watch the timerfd: {e}"))
    }

    impl Fd {
        pub(super) fn new() -> Result<Fd, String> {
            TimerFd::new(
                ClockId::CLOCK_MONOTONIC,
                TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
            )
            .map(Fd)
            .map_err(|e| format!("timerfd_create: {e}"))
        }

        /// Arms the timer `after` from now (not zero: that would disarm it); an earlier
        /// arming and its unread expiry are replaced.
        pub(super) fn arm(&self, after: Duration) -> Result<(), String> {
            self.0
                .set(
                    Expiration::OneShot(TimeSpec::from_duration(after)),
                    TimerSetTimeFlags::empty(),
                )
                .map_err(|e| format!("timerfd_settime: {e}"))
        }

        /// Whether the timer expired (reads and clears its count; false when not yet).
        pub(super) fn expired(&self) -> bool {
            self.0.wait().is_ok()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_precise_timer_wakes_at_its_deadline_and_a_replaced_one_does_not_fire() {
        let mut t = Timer::new(TimerKind::Precise);
        let start = Instant::now();
        t.until(Some(start + Duration::from_millis(30))).await;
        assert!(start.elapsed() >= Duration::from_millis(30));
        // An arming replaced after it expired unseen, its readiness left behind: it does
        // not fire the new deadline. (Armed by one poll; no second clock races it.)
        let early = Instant::now() + Duration::from_millis(20);
        let _ = futures_util::FutureExt::now_or_never(t.until(Some(early)));
        std::thread::sleep(Duration::from_millis(30));
        // One turn of the reactor, which sees the expired timerfd readable.
        tokio::task::yield_now().await;
        let later = Instant::now() + Duration::from_millis(60);
        let t0 = Instant::now();
        t.until(Some(later)).await;
        assert!(
            t0.elapsed() >= Duration::from_millis(55),
            "the 20 ms arming was replaced: {:?}",
            t0.elapsed()
        );
        // A deadline in the past returns at once; none waits forever.
        t.until(Some(Instant::now())).await;
        let never = tokio::time::timeout(Duration::from_millis(20), t.until(None)).await;
        assert!(never.is_err());
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn on_linux_the_precise_timer_is_a_timerfd() {
        assert!(Timer::new(TimerKind::Precise).fd.is_some());
        assert!(Timer::new(TimerKind::Tokio).fd.is_none());
    }
}
