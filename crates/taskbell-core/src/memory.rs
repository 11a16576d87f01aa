//! Giving start-up's memory back once the process is quiet.
//!
//! A long-running TaskBell process touches much of its code once, at start-up and
//! sign-in (argument parsing, config, the keyring, REST, the TLS handshake, the
//! login summary), and then only a small part of it while idle (the socket, the
//! heartbeat, a toast now and then). The kernel keeps every page it ever mapped
//! for the process, 64 KiB around each page touched, until memory runs short, so
//! an idle `taskbell run` carried about 10 MiB of its executable in its resident
//! set where its idle minute touches well under 1 MiB (docs/benchmarks.md).
//!
//! [`release_idle_memory`] drops the executable's read-only pages from the
//! process's page tables (`madvise(MADV_DONTNEED)`) and returns the allocator's
//! free pages to the system (`malloc_trim`). Nothing is lost: a dropped code page
//! stays in the page cache, and the next instruction on it maps it again (a minor
//! fault; a read from disk if the kernel has evicted it meanwhile). Callers run it once after a quiet period ([`QUIET_BEFORE_RELEASE`]),
//! never on the delivery path. On systems other than Linux it does nothing.

use std::time::Duration;

use tokio::time::Instant;

use crate::supervisor::TimerKind;
use crate::supervisor::timer::Timer;

/// How long a process waits without activity (notifications, toasts, connection
/// changes; heartbeats do not count) before it calls [`release_idle_memory`]:
/// long enough that a burst or a reconnection is over, short enough that the
/// idle hours run lean.
pub const QUIET_BEFORE_RELEASE: Duration = Duration::from_secs(15);

/// What [`release_idle_memory`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Released {
    /// Bytes of the executable's read-only mappings dropped from the page tables
    /// (their resident part before the call).
    pub code_bytes: u64,
    /// The process's resident set before the call, in KiB (0 where unknown).
    pub rss_before_kib: u64,
    /// The process's resident set after the call, in KiB (0 where unknown).
    pub rss_after_kib: u64,
}

/// Drops the pages of the executable's read-only, never-written mappings from the
/// resident set and trims the allocator (Linux; elsewhere `Ok` with nothing done).
///
/// # Errors
/// When `/proc/self` cannot be read or `madvise` refuses; nothing is changed then
/// beyond the mappings already advised.
pub fn release_idle_memory() -> std::io::Result<Released> {
    imp::release()
}

/// Tells a task of its own when the process was last active, so that it calls
/// [`release_idle_memory`] after [`QUIET_BEFORE_RELEASE`] without activity, once per
/// quiet period. Cheap to clone; the task ends when the last clone is dropped.
///
/// [`Quiet::activity`] only writes down the time: the task is not woken for it (so a
/// burst of notifications costs it nothing) unless it is parked after a release. At its
/// deadline it checks the last activity and waits again if there was some since.
#[derive(Debug, Clone)]
pub struct Quiet {
    state: std::sync::Arc<std::sync::Mutex<QuietState>>,
    /// Wakes the parked task; dropped with the last handle, which ends the task.
    wake: tokio::sync::watch::Sender<()>,
}

fn lock(state: &std::sync::Mutex<QuietState>) -> std::sync::MutexGuard<'_, QuietState> {
    state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[derive(Debug)]
struct QuietState {
    last: Instant,
    /// The task released and waits for the next activity.
    parked: bool,
}

impl Quiet {
    /// Starts the task on the current tokio runtime; start-up counts as activity, so
    /// the first release comes [`QUIET_BEFORE_RELEASE`] after the last activity of
    /// start-up.
    ///
    /// # Panics
    /// Outside a tokio runtime (as `tokio::spawn`).
    #[must_use]
    pub fn start() -> Quiet {
        Quiet::start_with(QUIET_BEFORE_RELEASE, TimerKind::Precise, |r| match r {
            Ok(r) => tracing::debug!(
                code_kib = r.code_bytes / 1024,
                rss_before_kib = r.rss_before_kib,
                rss_after_kib = r.rss_after_kib,
                "quiet: start-up's memory given back"
            ),
            // It only costs memory: said, never fatal.
            Err(e) => tracing::debug!(error = %e, "quiet: memory not given back"),
        })
    }

    /// [`Quiet::start`] with another quiet period and timer ([`TimerKind::Tokio`] for a
    /// test on tokio's paused clock), and `done` told of each release.
    ///
    /// # Panics
    /// Outside a tokio runtime (as `tokio::spawn`).
    pub fn start_with(
        quiet: Duration,
        timer: TimerKind,
        done: impl Fn(std::io::Result<Released>) + Send + 'static,
    ) -> Quiet {
        let state = std::sync::Arc::new(std::sync::Mutex::new(QuietState {
            last: Instant::now(),
            parked: false,
        }));
        let (wake, mut woken) = tokio::sync::watch::channel(());
        let shared = std::sync::Arc::clone(&state);
        tokio::spawn(async move {
            // One wake-up per quiet period (the engine's precise timer: tokio's wheel
            // would wake a few times on the way to 15 s), none while nothing happens.
            let mut timer = Timer::new(timer);
            loop {
                // Quiet means `quiet` since the last activity.
                loop {
                    let deadline = lock(&shared).last + quiet;
                    if Instant::now() >= deadline {
                        break;
                    }
                    tokio::select! {
                        // Only a closed channel can come here while not parked.
                        changed = woken.changed() => if changed.is_err() { return },
                        () = timer.until(Some(deadline)) => {}
                    }
                }
                done(release_idle_memory());
                // Nothing more to give back until something happens.
                lock(&shared).parked = true;
                if woken.changed().await.is_err() {
                    return;
                }
            }
        });
        Quiet { state, wake }
    }

    /// Something happened (a notification, a toast, a reconnection): the quiet period
    /// starts again. Heartbeats are not activity.
    pub fn activity(&self) {
        let mut st = lock(&self.state);
        st.last = Instant::now();
        if std::mem::take(&mut st.parked) {
            self.wake.send_replace(());
        }
    }
}

/// A mapping of the executable that may be dropped: its address range and the
/// resident bytes it held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Droppable {
    start: usize,
    end: usize,
    rss_bytes: u64,
}

/// The mappings of `/proc/self/smaps` text `smaps` that belong to the file `exe`,
/// are not writable, and hold no anonymous (copied-on-write) page: exactly those
/// whose every page can be read back from the file, so dropping them loses nothing.
/// Relocated read-only data (RELRO) has anonymous pages and is left alone.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn droppable(smaps: &str, exe: &str) -> Vec<Droppable> {
    let mut out = Vec::new();
    // The mapping being read when it qualifies so far, and its Anonymous count.
    let mut current: Option<(Droppable, Option<u64>)> = None;
    let keep = |c: Option<(Droppable, Option<u64>)>, out: &mut Vec<Droppable>| {
        if let Some((d, Some(0))) = c
            && d.rss_bytes > 0
        {
            out.push(d);
        }
    };
    for line in smaps.lines() {
        if let Some(header) = mapping_header(line) {
            keep(current.take(), &mut out);
            current = header.filter(|m| m.path == exe && !m.writable).map(|m| {
                let d = Droppable {
                    start: m.start,
                    end: m.end,
                    rss_bytes: 0,
                };
                (d, None)
            });
        } else if let Some((d, anon)) = &mut current {
            if let Some(v) = line.strip_prefix("Rss:") {
                d.rss_bytes = kib(v).unwrap_or(0) * 1024;
            } else if let Some(v) = line.strip_prefix("Anonymous:") {
                *anon = kib(v);
            }
        }
    }
    keep(current, &mut out);
    out
}

/// A mapping's header line, parsed.
struct Header<'a> {
    start: usize,
    end: usize,
    writable: bool,
    path: &'a str,
}

/// `Some(Some(header))` for a mapping header line, `Some(None)` for a header whose
/// fields do not parse (the mapping is then skipped), `None` for a `Key: value` line.
fn mapping_header(line: &str) -> Option<Option<Header<'_>>> {
    // "start-end perms offset dev inode   path": five fields, then the path, which may
    // hold blanks itself. Field lines ("Rss:   12 kB", "VmFlags: rd ex") never start
    // with hex-hex.
    let mut fields = [""; 5];
    let mut rest = line;
    for field in &mut fields {
        rest = rest.trim_start_matches(' ');
        let (f, tail) = rest.split_once(' ').unwrap_or((rest, ""));
        *field = f;
        rest = tail;
    }
    let [range, perms, ..] = fields;
    let (start, end) = range.split_once('-')?;
    let hex = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit());
    if !hex(start) || !hex(end) {
        return None;
    }
    let parsed = (|| {
        Some(Header {
            start: usize::from_str_radix(start, 16).ok()?,
            end: usize::from_str_radix(end, 16).ok()?,
            writable: perms.as_bytes().get(1) == Some(&b'w'),
            path: rest.trim(),
        })
    })();
    Some(parsed.filter(|h| h.start < h.end && perms.len() == 4))
}

fn kib(value: &str) -> Option<u64> {
    value.trim().strip_suffix("kB")?.trim().parse().ok()
}

#[cfg(target_os = "linux")]
mod imp {
    use std::ffi::c_void;
    use std::ptr::NonNull;

    use super::{Released, droppable};

    fn rss_kib() -> u64 {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(super::kib)
            })
            .unwrap_or(0)
    }

    pub(super) fn release() -> std::io::Result<Released> {
        let rss_before_kib = rss_kib();
        let exe = std::fs::read_link("/proc/self/exe")?;
        let smaps = std::fs::read_to_string("/proc/self/smaps")?;
        let mut code_bytes = 0;
        for m in droppable(&smaps, &exe.to_string_lossy()) {
            let Some(addr) = NonNull::new(m.start as *mut c_void) else {
                continue;
            };
            // SAFETY: `[start, end)` is a whole mapping of the executable file, private,
            // not writable and without a single anonymous page (read from smaps just
            // now; nothing in this process makes it writable): every page in it is the
            // file's content, which `MADV_DONTNEED` drops from the page tables and the
            // next access maps again from the page cache. No Rust reference can see a
            // difference: the bytes read back are the same.
            #[allow(unsafe_code)]
            let advised = unsafe {
                nix::sys::mman::madvise(
                    addr,
                    m.end - m.start,
                    nix::sys::mman::MmapAdvise::MADV_DONTNEED,
                )
            };
            advised.map_err(std::io::Error::from)?;
            code_bytes += m.rss_bytes;
        }
        trim_allocator();
        Ok(Released {
            code_bytes,
            rss_before_kib,
            rss_after_kib: rss_kib(),
        })
    }

    #[cfg(target_env = "gnu")]
    fn trim_allocator() {
        // SAFETY: glibc's malloc_trim takes no pointer and is safe to call from any
        // thread at any time; it returns free heap pages to the system.
        #[allow(unsafe_code)]
        unsafe {
            libc::malloc_trim(0);
        }
    }

    #[cfg(not(target_env = "gnu"))]
    fn trim_allocator() {}
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use super::Released;

    pub(super) fn release() -> std::io::Result<Released> {
        Ok(Released::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXE: &str = "/usr/bin/taskbell";

    fn sample() -> String {
        // Shaped like a real /proc/self/smaps (fields trimmed): text, rodata, RELRO
        // (anonymous pages), data (writable), a library, the heap, a path with blanks.
        format!(
            "55d000000000-55d000100000 r--p 00000000 08:01 1234                       {EXE}\n\
             Size:               1024 kB\n\
             Rss:                 512 kB\n\
             Pss:                 512 kB\n\
             Anonymous:             0 kB\n\
             VmFlags: rd mr mw me dw sd\n\
             55d000100000-55d000900000 r-xp 00100000 08:01 1234                       {EXE}\n\
             Size:               8192 kB\n\
             Rss:                6000 kB\n\
             Anonymous:             0 kB\n\
             VmFlags: rd ex mr mw me dw sd\n\
             55d000900000-55d000980000 r--p 00900000 08:01 1234                       {EXE}\n\
             Rss:                 512 kB\n\
             Anonymous:           512 kB\n\
             55d000980000-55d000990000 rw-p 00980000 08:01 1234                       {EXE}\n\
             Rss:                  64 kB\n\
             Anonymous:             0 kB\n\
             55d000990000-55d0009a0000 r-xp 00000000 08:01 1234                       {EXE}\n\
             Rss:                   0 kB\n\
             Anonymous:             0 kB\n\
             7f0000000000-7f0000100000 r-xp 00000000 08:01 99                         /usr/lib/x86_64-linux-gnu/libc.so.6\n\
             Rss:                 900 kB\n\
             Anonymous:             0 kB\n\
             55d001000000-55d001100000 rw-p 00000000 00:00 0                          [heap]\n\
             Rss:                 700 kB\n\
             Anonymous:           700 kB\n\
             7f0000200000-7f0000300000 r-xp 00000000 08:01 77                         /opt/my app/taskbell\n\
             Rss:                 100 kB\n\
             Anonymous:             0 kB\n"
        )
    }

    #[test]
    fn only_the_executables_read_only_pages_without_copies_are_droppable() {
        let found = droppable(&sample(), EXE);
        assert_eq!(
            found,
            vec![
                Droppable {
                    start: 0x55d0_0000_0000,
                    end: 0x55d0_0010_0000,
                    rss_bytes: 512 * 1024
                },
                Droppable {
                    start: 0x55d0_0010_0000,
                    end: 0x55d0_0090_0000,
                    rss_bytes: 6000 * 1024
                },
            ]
        );
    }

    #[test]
    fn a_path_with_blanks_is_matched_whole() {
        let found = droppable(&sample(), "/opt/my app/taskbell");
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].start, 0x7f00_0020_0000);
        assert!(droppable(&sample(), "/opt/my").is_empty());
    }

    #[test]
    fn a_mapping_whose_anonymous_count_is_missing_is_left_alone() {
        let smaps =
            format!("55d000100000-55d000900000 r-xp 00100000 08:01 1234 {EXE}\nRss: 6000 kB\n");
        assert!(droppable(&smaps, EXE).is_empty());
        assert!(droppable("garbage\n-\n12-zz r-xp\n", EXE).is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn quiet_releases_once_per_quiet_period_and_activity_postpones_it() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let quiet = Quiet::start_with(Duration::from_secs(15), TimerKind::Tokio, move |r| {
            let _ = tx.send((Instant::now(), r.is_ok()));
        });
        let t0 = Instant::now();
        // Activity at 10 s postpones the first release to 25 s.
        tokio::time::sleep(Duration::from_secs(10)).await;
        quiet.activity();
        let (at, ok) = rx.recv().await.unwrap_or((t0, false));
        assert!(ok);
        assert_eq!(at - t0, Duration::from_secs(25));
        // No second release without activity.
        tokio::time::sleep(Duration::from_secs(600)).await;
        assert!(rx.try_recv().is_err(), "released again with no activity");
        // Activity, then quiet: one more, 15 s after it.
        let t1 = Instant::now();
        quiet.activity();
        let (at, _) = rx.recv().await.unwrap_or((t1, false));
        assert_eq!(at - t1, Duration::from_secs(15));
        // The task ends with the last handle.
        drop(quiet);
        assert!(rx.recv().await.is_none(), "the task outlived its handle");
    }

    #[tokio::test]
    async fn on_the_precise_timer_the_release_comes_after_the_quiet_period() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let t0 = Instant::now();
        let _quiet = Quiet::start_with(Duration::from_millis(40), TimerKind::Precise, move |_| {
            let _ = tx.send(Instant::now());
        });
        let at = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await;
        let at = at.ok().flatten().unwrap_or(t0);
        assert!(
            at - t0 >= Duration::from_millis(40),
            "released after {:?}",
            at - t0
        );
    }

    /// The real thing, on this test process: the executable's code leaves the resident
    /// set, and the code still runs afterwards (it is mapped back on the next call).
    #[cfg(target_os = "linux")]
    #[test]
    fn release_drops_this_processs_code_and_it_still_runs() {
        fn resident_code_kib() -> u64 {
            let exe = std::fs::read_link("/proc/self/exe").unwrap_or_default();
            let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap_or_default();
            droppable(&smaps, &exe.to_string_lossy())
                .iter()
                .map(|d| d.rss_bytes / 1024)
                .sum()
        }
        let before = resident_code_kib();
        assert!(before > 0, "the test binary's code is resident");
        let released = release_idle_memory();
        let after = resident_code_kib();
        let released = match released {
            Ok(r) => r,
            Err(e) => panic!("release failed: {e}"),
        };
        assert!(
            released.code_bytes >= before * 1024 / 2,
            "{released:?}, {before} KiB before"
        );
        assert!(
            after < before,
            "resident code {before} KiB before, {after} KiB after"
        );
        // Code on dropped pages runs again (a minor fault maps it back).
        let again = droppable(&sample(), EXE);
        assert_eq!(again.len(), 2);
        assert!(released.rss_before_kib > 0 && released.rss_after_kib > 0);
    }
}
