//! Child processes that die with their guard, line collectors for their
//! output, and bounded waiting.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use crate::error::{HarnessError, Result, io_err};

/// How long a helper process may take to become ready (bounds a hang; not a
/// speed limit).
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Polls `probe` every few milliseconds until it returns `Some`, for at most
/// `timeout`. Use it only for conditions that have no event to await (a name
/// appearing on the bus, a port accepting connections); the timeout bounds a
/// hang, it does not measure speed.
pub fn wait_until<T>(
    what: &str,
    timeout: Duration,
    mut probe: impl FnMut() -> Option<T>,
) -> Result<T> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(5);
    loop {
        if let Some(v) = probe() {
            note_if_slow(what, start.elapsed());
            return Ok(v);
        }
        if start.elapsed() >= timeout {
            return Err(HarnessError::Timeout {
                what: what.to_owned(),
                after: timeout,
            });
        }
        thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

/// A wait at least this long is noted on stderr: a passing test that waited long
/// somewhere says where (nextest prints the desktop tests' output even when they pass).
const SLOW_WAIT: Duration = Duration::from_secs(5);

/// Notes on stderr a wait for `what` that took `waited`, if that was [`SLOW_WAIT`] or
/// more; a diagnostic for slow runs, never a failure.
pub fn note_if_slow(what: &str, waited: Duration) {
    if waited >= SLOW_WAIT {
        eprintln!("slow wait: {what} took {waited:.1?}");
    }
}

#[derive(Debug, Default)]
struct Lines {
    lines: Vec<String>,
    closed: bool,
}

/// Collects the lines a pipe produces, on a thread of its own, and lets a
/// test wait for a line that matches a predicate.
#[derive(Debug, Clone)]
pub struct LineCollector {
    shared: Arc<(Mutex<Lines>, Condvar)>,
    name: String,
}

impl LineCollector {
    /// Starts reading `pipe` line by line until it closes.
    pub fn start(name: impl Into<String>, pipe: impl Read + Send + 'static) -> Self {
        let shared = Arc::new((Mutex::new(Lines::default()), Condvar::new()));
        let reader_shared = Arc::clone(&shared);
        let name = name.into();
        let thread_name = format!("lines-{name}");
        let spawned = thread::Builder::new().name(thread_name).spawn(move || {
            let mut reader = BufReader::new(pipe);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match reader.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let line = String::from_utf8_lossy(&buf)
                            .trim_end_matches(['\n', '\r'])
                            .to_owned();
                        let (lock, cvar) = &*reader_shared;
                        lock.lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .lines
                            .push(line);
                        cvar.notify_all();
                    }
                }
            }
            let (lock, cvar) = &*reader_shared;
            lock.lock().unwrap_or_else(PoisonError::into_inner).closed = true;
            cvar.notify_all();
        });
        if spawned.is_err() {
            shared
                .0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .closed = true;
        }
        LineCollector { shared, name }
    }

    /// Every line seen so far.
    pub fn lines(&self) -> Vec<String> {
        self.shared
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .lines
            .clone()
    }

    /// Waits until some line (seen before or later) matches `pred` and
    /// returns the first such line.
    pub fn wait_for(&self, timeout: Duration, pred: impl Fn(&str) -> bool) -> Result<String> {
        self.wait_for_nth(timeout, 1, pred).map(|mut v| v.remove(0))
    }

    /// Waits until `count` lines match `pred` and returns them in order.
    pub fn wait_for_nth(
        &self,
        timeout: Duration,
        count: usize,
        pred: impl Fn(&str) -> bool,
    ) -> Result<Vec<String>> {
        let deadline = Instant::now() + timeout;
        let (lock, cvar) = &*self.shared;
        let mut guard = lock.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            let found: Vec<String> = guard
                .lines
                .iter()
                .filter(|l| pred(l))
                .take(count)
                .cloned()
                .collect();
            if found.len() >= count.max(1) {
                return Ok(found);
            }
            let now = Instant::now();
            if guard.closed || now >= deadline {
                let why = if guard.closed {
                    "stream closed"
                } else {
                    "timeout"
                };
                return Err(HarnessError::Timeout {
                    what: format!(
                        "{count} matching line(s) from {} ({why}); lines so far:\n{}",
                        self.name,
                        guard.lines.join("\n")
                    ),
                    after: timeout,
                });
            }
            guard = cvar
                .wait_timeout(guard, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Waits until the pipe is closed (the process closed it or exited).
    pub fn wait_closed(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let (lock, cvar) = &*self.shared;
        let mut guard = lock.lock().unwrap_or_else(PoisonError::into_inner);
        while !guard.closed {
            let now = Instant::now();
            if now >= deadline {
                return Err(HarnessError::Timeout {
                    what: format!("{} to close", self.name),
                    after: timeout,
                });
            }
            guard = cvar
                .wait_timeout(guard, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        Ok(())
    }
}

/// A running child process that is killed (SIGKILL) and reaped when the
/// guard is dropped. Its stderr goes to a log file (see [`ChildGuard::log`]);
/// its stdout can be piped and collected line by line.
#[derive(Debug)]
pub struct ChildGuard {
    name: String,
    child: Child,
    log_path: PathBuf,
    stdout: Option<LineCollector>,
    status: Option<ExitStatus>,
}

/// How a [`ChildGuard`] treats the child's stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stdout {
    /// Discard it.
    Null,
    /// Collect it line by line ([`ChildGuard::stdout`]).
    Collect,
    /// Append it to the stderr log file.
    Log,
}

impl ChildGuard {
    /// Spawns `cmd` (stdin closed) with its stderr written to
    /// `<log_dir>/<name>.log`.
    pub fn spawn(name: &str, cmd: &mut Command, log_dir: &Path, stdout: Stdout) -> Result<Self> {
        Self::spawn_with_stdin(name, cmd, log_dir, stdout, None)
    }

    /// Like [`ChildGuard::spawn`], writing `stdin` to the child's standard
    /// input and closing it.
    pub fn spawn_with_stdin(
        name: &str,
        cmd: &mut Command,
        log_dir: &Path,
        stdout: Stdout,
        stdin: Option<&[u8]>,
    ) -> Result<Self> {
        let log_path = unique_log_path(log_dir, name);
        let log =
            File::create(&log_path).map_err(io_err(format!("creating {}", log_path.display())))?;
        let out = match stdout {
            Stdout::Null => Stdio::null(),
            Stdout::Collect => Stdio::piped(),
            Stdout::Log => Stdio::from(
                log.try_clone()
                    .map_err(io_err(format!("cloning {}", log_path.display())))?,
            ),
        };
        cmd.stdout(out).stderr(Stdio::from(log));
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        let program = cmd.get_program().to_string_lossy().into_owned();
        let mut child = cmd.spawn().map_err(|source| HarnessError::Spawn {
            program: program.clone(),
            source,
        })?;
        if let (Some(bytes), Some(mut pipe)) = (stdin, child.stdin.take()) {
            use std::io::Write;
            // A child that exits before reading its stdin is reported by the
            // readiness checks; the write error itself says nothing more.
            let _ = pipe.write_all(bytes);
        }
        let stdout = child
            .stdout
            .take()
            .map(|pipe| LineCollector::start(format!("{name} stdout"), pipe));
        Ok(ChildGuard {
            name: name.to_owned(),
            child,
            log_path,
            stdout,
            status: None,
        })
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The short name given at spawn.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The collected stdout, when spawned with [`Stdout::Collect`].
    pub fn stdout(&self) -> Option<&LineCollector> {
        self.stdout.as_ref()
    }

    /// Path of the stderr log.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The stderr log so far (lossy UTF-8).
    pub fn log(&self) -> String {
        std::fs::read(&self.log_path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// `Some(status)` once the process has exited.
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>> {
        if self.status.is_none() {
            self.status = self
                .child
                .try_wait()
                .map_err(io_err(format!("waiting for {}", self.name)))?;
        }
        Ok(self.status)
    }

    /// Fails with [`HarnessError::Exited`] (and the log) when the process is
    /// no longer running.
    pub fn ensure_running(&mut self) -> Result<()> {
        match self.try_wait()? {
            None => Ok(()),
            Some(status) => Err(HarnessError::Exited {
                program: self.name.clone(),
                status,
                log: tail(&self.log(), 4000),
            }),
        }
    }

    /// Waits for the process to exit, for at most `timeout`.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<ExitStatus> {
        let name = format!("{} to exit", self.name);
        wait_until(&name, timeout, || self.try_wait().ok().flatten())
    }

    /// Sends a signal by name (`"TERM"`, `"INT"`, `"STOP"`, `"CONT"`…) with
    /// kill(1).
    pub fn signal(&mut self, signal: &str) -> Result<()> {
        if self.try_wait()?.is_some() {
            return Ok(());
        }
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.id().to_string())
            .status()
            .map_err(|source| HarnessError::Spawn {
                program: "kill".into(),
                source,
            })?;
        if status.success() {
            Ok(())
        } else {
            Err(HarnessError::Io {
                context: format!("kill -{signal} {}", self.name),
                source: std::io::Error::other(status.to_string()),
            })
        }
    }

    /// SIGTERM, then waits for the exit for at most `timeout`.
    pub fn terminate(&mut self, timeout: Duration) -> Result<ExitStatus> {
        self.signal("TERM")?;
        self.wait_timeout(timeout)
    }

    /// SIGKILL and reap. Idempotent.
    pub fn kill(&mut self) {
        if self.status.is_none() {
            // Already gone is fine: we only want it gone.
            let _ = self.child.kill();
            self.status = self.child.wait().ok();
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

fn unique_log_path(dir: &Path, name: &str) -> PathBuf {
    let mut path = dir.join(format!("{name}.log"));
    let mut n = 1;
    while path.exists() {
        n += 1;
        path = dir.join(format!("{name}.{n}.log"));
    }
    path
}

/// The last `max` bytes of `s` (on a char boundary).
pub fn tail(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    format!("…{}", &s[start..])
}
