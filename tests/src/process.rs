//! Child processes that die with their guard, line collectors for their
//! output, and bounded waiting.

use std::ffi::OsString;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

/// Everything that can go wrong while setting up or driving a test process.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// A program could not be started (missing, not executable).
    #[error(
        "cannot start {program}: {source} (is it installed? scripts/install-deps.sh installs it)"
    )]
    Spawn {
        /// The program that failed to start.
        program: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A program exited while it was expected to keep running.
    #[error("{program} exited early with {status}; its log:\n{log}")]
    Exited {
        /// The program that exited.
        program: String,
        /// How it exited.
        status: ExitStatus,
        /// The tail of its stderr log.
        log: String,
    },
    /// Something did not happen within the allotted time.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long we waited.
        after: Duration,
    },
    /// A file or pipe operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A D-Bus call failed.
    #[error("D-Bus: {0}")]
    Dbus(String),
    /// Talking to the X server failed.
    #[error("X11: {0}")]
    X11(String),
    /// A tool printed something we could not understand.
    #[error("unexpected output from {program}: {detail}")]
    Parse {
        /// The tool.
        program: String,
        /// What was wrong.
        detail: String,
    },
    /// Building the binaries under test failed.
    #[error("building {what} failed: {detail}")]
    Build {
        /// What was being built.
        what: String,
        /// Cargo's output.
        detail: String,
    },
}

impl From<zbus::Error> for HarnessError {
    fn from(e: zbus::Error) -> Self {
        HarnessError::Dbus(e.to_string())
    }
}

impl From<zbus::fdo::Error> for HarnessError {
    fn from(e: zbus::fdo::Error) -> Self {
        HarnessError::Dbus(e.to_string())
    }
}

/// Result alias of the harness.
pub type Result<T, E = HarnessError> = std::result::Result<T, E>;

pub(crate) fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> HarnessError {
    let context = context.into();
    move |source| HarnessError::Io { context, source }
}

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

/// A set of environment variables to give child processes (never set on
/// the test process itself, so tests cannot race on the global env).
#[derive(Debug, Clone, Default)]
pub struct Env {
    vars: Vec<(OsString, Option<OsString>)>,
}

impl Env {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key` to `value` (a later set of the same key wins).
    pub fn set(&mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> &mut Self {
        self.vars.push((key.into(), Some(value.into())));
        self
    }

    /// Removes `key` from the child's environment.
    pub fn remove(&mut self, key: impl Into<OsString>) -> &mut Self {
        self.vars.push((key.into(), None));
        self
    }

    /// Adds every variable of `other` after ours.
    pub fn extend(&mut self, other: &Env) -> &mut Self {
        self.vars.extend(other.vars.iter().cloned());
        self
    }

    /// Applies the set to `cmd`.
    pub fn apply<'c>(&self, cmd: &'c mut Command) -> &'c mut Command {
        for (k, v) in &self.vars {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        cmd
    }

    /// The last value set for `key`, if any.
    pub fn get(&self, key: &str) -> Option<&OsString> {
        self.vars
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| v.as_ref())
    }

    /// A command for `program` with this environment.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        self.apply(&mut cmd);
        cmd
    }
}

/// `(pid, command name)` of every descendant of `root` (children,
/// grandchildren, ...), read from `/proc/*/stat`.
pub fn descendants(root: u32) -> Vec<(u32, String)> {
    let mut parent_of = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    for entry in dir.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid ...: comm may hold spaces, so split after the last ')'.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = stat[open + 1..close].to_string();
        let ppid = stat[close + 1..]
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse::<u32>().ok());
        if let Some(ppid) = ppid {
            parent_of.push((pid, ppid, comm));
        }
    }
    let mut out = Vec::new();
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for (pid, ppid, comm) in &parent_of {
            if *ppid == p {
                out.push((*pid, comm.clone()));
                frontier.push(*pid);
            }
        }
    }
    out
}

/// The WebKit web content processes under `root` (`WebKitWebProcess`, its
/// name cut to 15 characters by the kernel): an open Tauri window has one;
/// an app idle in the tray has none.
pub fn webkit_processes(root: u32) -> Vec<(u32, String)> {
    descendants(root)
        .into_iter()
        .filter(|(_, c)| c.starts_with("WebKitWebProces"))
        .collect()
}
