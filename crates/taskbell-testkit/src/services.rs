//! Back-end processes: Redis on a free port, the reference server binary on
//! port 0, and locating (building once) the workspace's binaries.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use crate::error::{HarnessError, Result, io_err};
use crate::process::{ChildGuard, START_TIMEOUT, Stdout};

/// A port that was free a moment ago (bound to 127.0.0.1:0 and released).
/// Only for programs that cannot bind port 0 themselves and report it;
/// callers retry when the port got taken in between.
pub fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(io_err("binding 127.0.0.1:0"))?;
    Ok(l.local_addr().map_err(io_err("local_addr"))?.port())
}

/// A throwaway `redis-server` on a free port, no persistence, data dir in
/// its own tempdir.
#[derive(Debug)]
pub struct Redis {
    child: ChildGuard,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Redis {
    /// Starts Redis and waits until it answers on its port. The answer must come from
    /// the process started here (its `process_id`): a port taken by another test's Redis
    /// in between would otherwise be shared without anyone noticing.
    pub fn start() -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("taskbell-redis-")
            .tempdir()
            .map_err(io_err("creating the redis tempdir"))?;
        let mut last_err = None;
        for _ in 0..5 {
            let port = free_port()?;
            let mut cmd = Command::new("redis-server");
            cmd.args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--loglevel",
                "warning",
            ])
            .arg("--dir")
            .arg(dir.path());
            let mut child = ChildGuard::spawn("redis-server", &mut cmd, dir.path(), Stdout::Log)?;
            let start = Instant::now();
            loop {
                if redis_pid(port) == Some(child.id()) {
                    return Ok(Redis {
                        child,
                        port,
                        _dir: dir,
                    });
                }
                if let Err(e) = child.ensure_running() {
                    // Most likely the port was taken in between: try another.
                    last_err = Some(e);
                    break;
                }
                if start.elapsed() > START_TIMEOUT {
                    return Err(HarnessError::Timeout {
                        what: "redis-server to answer PING".into(),
                        after: START_TIMEOUT,
                    });
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Err(last_err.unwrap_or_else(|| HarnessError::Timeout {
            what: "a free port for redis-server".into(),
            after: START_TIMEOUT,
        }))
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The process guard.
    pub fn process(&mut self) -> &mut ChildGuard {
        &mut self.child
    }

    /// Kills redis-server now (SIGKILL): an outage for the servers using it.
    pub fn kill(&mut self) {
        self.child.kill();
    }
}

/// The `process_id` of the Redis answering on `port` (`INFO server`), if one answers.
fn redis_pid(port: u16) -> Option<u32> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(b"INFO server\r\n").ok()?;
    // A bulk string: `$LEN\r\n`, then LEN bytes and `\r\n`.
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n") && head.len() < 32 {
        s.read_exact(&mut byte).ok()?;
        head.push(byte[0]);
    }
    let len: usize = std::str::from_utf8(head.strip_prefix(b"$")?)
        .ok()?
        .trim_end()
        .parse()
        .ok()?;
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).ok()?;
    String::from_utf8_lossy(&body)
        .lines()
        .find_map(|l| l.strip_prefix("process_id:"))
        .and_then(|pid| pid.trim().parse().ok())
}

/// How to start the reference server binary.
#[derive(Debug, Clone, Default)]
pub struct ServerOptions {
    /// `--redis URL`; without it the server keeps its bus and history in
    /// process (so a restart forgets them).
    pub redis_url: Option<String>,
    /// `--jwt-secret`: a fixed secret keeps tokens valid across restarts
    /// even without Redis.
    pub jwt_secret: Option<String>,
    /// More arguments (`--demo-activity 5`, `--test-controls`…).
    pub extra_args: Vec<String>,
}

/// The real `taskbell-server` binary on 127.0.0.1 port 0 (first start) or
/// its previous port (restarts), killed on drop.
#[derive(Debug)]
pub struct ServerProcess {
    child: Option<ChildGuard>,
    options: ServerOptions,
    addr: SocketAddr,
    log_dir: tempfile::TempDir,
}

impl ServerProcess {
    /// Starts the server on a port it picks and waits for its
    /// `listening on http://ADDR` line.
    pub fn start(options: ServerOptions) -> Result<Self> {
        let log_dir = tempfile::Builder::new()
            .prefix("taskbell-server-")
            .tempdir()
            .map_err(io_err("creating the server tempdir"))?;
        let (child, addr) = spawn_server(&options, "127.0.0.1:0", log_dir.path())?;
        Ok(ServerProcess {
            child: Some(child),
            options,
            addr,
            log_dir,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops the server abruptly (SIGKILL): clients see the TCP connection
    /// drop without a close frame.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill();
        }
    }

    /// Stops the server gracefully (SIGTERM: it closes sockets with 1001).
    pub fn stop(&mut self) -> Result<()> {
        if let Some(mut c) = self.child.take() {
            c.terminate(START_TIMEOUT)?;
        }
        Ok(())
    }

    /// Starts it again on the same port (after [`ServerProcess::kill`] or
    /// [`ServerProcess::stop`]; stops it first otherwise). Retries while the
    /// port is still held by the old socket.
    pub fn restart(&mut self) -> Result<()> {
        self.kill();
        let listen = self.addr.to_string();
        let start = Instant::now();
        loop {
            match spawn_server(&self.options, &listen, self.log_dir.path()) {
                Ok((child, _)) => {
                    self.child = Some(child);
                    return Ok(());
                }
                Err(e) if start.elapsed() > START_TIMEOUT => return Err(e),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// The current run's process id; `None` once killed or stopped.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(ChildGuard::id)
    }

    /// Whether the current run's process is alive (false once killed or stopped).
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// The log (stderr) of the current run; empty when stopped.
    pub fn current_log(&self) -> String {
        self.child.as_ref().map(ChildGuard::log).unwrap_or_default()
    }

    /// The logs of every run so far.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        if let Ok(entries) = std::fs::read_dir(self.log_dir.path()) {
            let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
            paths.sort();
            for p in paths {
                if let Ok(text) = std::fs::read_to_string(&p) {
                    out.push_str(&text);
                }
            }
        }
        out
    }
}

fn spawn_server(
    options: &ServerOptions,
    listen: &str,
    log_dir: &Path,
) -> Result<(ChildGuard, SocketAddr)> {
    let bin = binary("taskbell-server")?;
    let mut cmd = Command::new(bin);
    cmd.args(["--listen", listen]);
    if let Some(url) = &options.redis_url {
        cmd.args(["--redis", url]);
    }
    if let Some(secret) = &options.jwt_secret {
        cmd.args(["--jwt-secret", secret]);
    }
    cmd.args(&options.extra_args);
    cmd.env_remove("TASKBELL_REDIS_URL")
        .env_remove("TASKBELL_JWT_SECRET")
        .env("RUST_LOG", "info");
    let mut child = ChildGuard::spawn("taskbell-server", &mut cmd, log_dir, Stdout::Collect)?;
    let line = match child.stdout() {
        Some(out) => out.wait_for(START_TIMEOUT, |l| l.starts_with("listening on ")),
        None => Err(HarnessError::Parse {
            program: "taskbell-server".into(),
            detail: "no stdout".into(),
        }),
    };
    let line = match line {
        Ok(l) => l,
        Err(e) => {
            child.ensure_running()?;
            return Err(e);
        }
    };
    let addr = line
        .trim_start_matches("listening on ")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse::<SocketAddr>()
        .map_err(|e| HarnessError::Parse {
            program: "taskbell-server".into(),
            detail: format!("{line:?}: {e}"),
        })?;
    Ok((child, addr))
}

/// The binaries of this workspace that the end-to-end tests run.
pub const WORKSPACE_BINARIES: &[(&str, &str)] = &[
    ("taskbell-server", "taskbell-server"),
    ("taskbell-cli", "taskbell"),
    // The window process of `taskbell-tray`.
    ("taskbell-app", "taskbell-app"),
];

static BUILT: OnceLock<Mutex<Option<std::result::Result<PathBuf, String>>>> = OnceLock::new();

/// The path of a workspace binary (`taskbell`, `taskbell-server`).
///
/// `CARGO_BIN_EXE_*` only exists for a package's own binaries, so this
/// finds them itself: when `TASKBELL_E2E_BIN_DIR` is set, there; otherwise
/// it runs `cargo build --bins -p taskbell-server -p taskbell-cli` once per
/// test process, into the target directory this test binary was built in
/// (the parent of `target/<profile>/deps/`), with the same profile. When
/// nothing changed that build is a no-op of about a second, and it
/// guarantees the tests never run a stale binary.
pub fn binary(name: &str) -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("TASKBELL_E2E_BIN_DIR") {
        let path = PathBuf::from(dir).join(name);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(HarnessError::Build {
                what: name.into(),
                detail: format!("TASKBELL_E2E_BIN_DIR has no {}", path.display()),
            })
        };
    }
    let cell = BUILT.get_or_init(|| Mutex::new(None));
    let mut guard = cell.lock().unwrap_or_else(PoisonError::into_inner);
    if guard.is_none() {
        *guard = Some(build_binaries().map_err(|e| e.to_string()));
    }
    match guard.as_ref() {
        Some(Ok(dir)) => Ok(dir.join(name)),
        Some(Err(e)) => Err(HarnessError::Build {
            what: "the workspace binaries".into(),
            detail: e.clone(),
        }),
        None => Err(HarnessError::Build {
            what: name.into(),
            detail: "not built".into(),
        }),
    }
}

/// `(target dir, profile dir)` of the running test binary.
fn target_dirs() -> Result<(PathBuf, PathBuf)> {
    let exe = std::env::current_exe().map_err(io_err("current_exe"))?;
    // target/<profile>/deps/<test-binary>
    let profile_dir = exe
        .parent()
        .filter(|d| d.file_name().is_some_and(|n| n == "deps"))
        .and_then(Path::parent)
        .ok_or_else(|| HarnessError::Build {
            what: "the workspace binaries".into(),
            detail: format!(
                "cannot find the target dir from {}; set TASKBELL_E2E_BIN_DIR",
                exe.display()
            ),
        })?;
    let target = profile_dir.parent().ok_or_else(|| HarnessError::Build {
        what: "the workspace binaries".into(),
        detail: "profile dir has no parent".into(),
    })?;
    Ok((target.to_path_buf(), profile_dir.to_path_buf()))
}

fn build_binaries() -> Result<PathBuf> {
    let (target, profile_dir) = target_dirs()?;
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => "dev".to_owned(),
        Some(other) => other.to_owned(),
    };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    // This crate is crates/taskbell-testkit: the workspace root is two levels up.
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map(|root| root.join("Cargo.toml"))
        .ok_or_else(|| HarnessError::Build {
            what: "the workspace binaries".into(),
            detail: "no workspace root".into(),
        })?;
    eprintln!(
        "taskbell-testkit: building the binaries under test (cargo build --bins -p taskbell-server \
         -p taskbell-cli --features taskbell-cli/demo) into {}",
        target.display()
    );
    let mut cmd = Command::new(cargo);
    cmd.arg("build")
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&target)
        .args(["--profile", &profile, "--bins", "--quiet"])
        // The tests run `taskbell demo` too.
        .args(["--features", "taskbell-cli/demo"]);
    for (package, _) in WORKSPACE_BINARIES {
        cmd.args(["-p", package]);
    }
    let out = cmd.output().map_err(|source| HarnessError::Spawn {
        program: "cargo".into(),
        source,
    })?;
    if !out.status.success() {
        return Err(HarnessError::Build {
            what: "the workspace binaries".into(),
            detail: crate::process::tail(&String::from_utf8_lossy(&out.stderr), 4000),
        });
    }
    for (_, bin) in WORKSPACE_BINARIES {
        if !profile_dir.join(bin).is_file() {
            return Err(HarnessError::Build {
                what: (*bin).into(),
                detail: format!(
                    "cargo build succeeded but {} is missing",
                    profile_dir.join(bin).display()
                ),
            });
        }
    }
    Ok(profile_dir)
}
