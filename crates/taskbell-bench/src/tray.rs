//! The tray app's memory and idle cost: the release `taskbell-app` in a private desktop
//! (session bus, Xvfb, dunst, gnome-keyring's Secret Service and a trayer tray host, from
//! `taskbell-e2e`), measured over its whole process tree in three states: idle in the tray with
//! no window, with the notification center open, and after closing the center.
//!
//! The app runs as a user does: signed in beforehand with the real `taskbell login` (token in
//! the Secret Service, account in the config the app reads), against a reference server with
//! no activity, so "idle" means heartbeats only. (`--demo` would also run the demo server and
//! its scripted activity inside the app's process.)
//!
//! The center is opened the way a user does it a second time (a second launch hands over to the
//! running instance, which opens its default window) and closed the way a window manager closes
//! it (`WM_DELETE_WINDOW`). Each state is given as RSS summed over the processes (what `ps`
//! shows; shared library pages are counted once per process) and as PSS (shared pages split
//! between the processes that map them, so the tree's sum is what it really costs).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use taskbell_e2e::{
    ChildGuard, Desktop, DesktopOptions, Stdout, descendants, heavy_libraries, webkit_processes,
};

use crate::Result;
use crate::procfs::{self, ProcSample};
use crate::stats::{Report, fmt_duration, fmt_kib};

/// The center's window title (English, as the app runs with `--lang en`).
const CENTER_TITLE: &str = "TaskBell notifications";
/// Bounds every wait (a hang fails the run; it measures nothing).
pub(crate) const WAIT: Duration = Duration::from_secs(120);

/// How long each state is left alone before and while it is measured.
#[derive(Debug, Clone, Copy)]
pub struct TraySizes {
    /// Quiet time after reaching a state, before the reading.
    pub settle: Duration,
    /// The idle window (CPU time and wake-ups) in the tray.
    pub idle: Duration,
    /// Open/close cycles of the center after the first.
    pub cycles: usize,
}

impl TraySizes {
    /// The figures in docs/benchmarks.md.
    pub fn full() -> TraySizes {
        TraySizes {
            // Past the startup toasts' expiry (dunst closes a normal toast after 10 s,
            // and its `NotificationClosed` signals wake the notifier's threads): the idle
            // window then holds no event of the start.
            settle: Duration::from_secs(20),
            idle: Duration::from_secs(60),
            cycles: 10,
        }
    }

    /// A smoke run.
    pub fn quick() -> TraySizes {
        TraySizes {
            settle: Duration::from_secs(2),
            idle: Duration::from_secs(3),
            cycles: 1,
        }
    }
}

/// The binaries the measurement runs.
#[derive(Debug, Clone)]
pub struct TrayBinaries {
    /// The tray app.
    pub app: PathBuf,
    /// The `taskbell` command, for `taskbell login` before the app starts.
    pub cli: PathBuf,
}

/// Finds the release tray app: `explicit`, else `$TASKBELL_APP`, else `taskbell-app` beside
/// the running `taskbell-bench` (all three are in `target/release` after a release build); and
/// the `taskbell` command beside the app.
pub fn locate_app(explicit: Option<&Path>, bench_exe: &Path) -> Result<TrayBinaries> {
    let app = match explicit {
        Some(p) => p.to_path_buf(),
        None => match std::env::var_os("TASKBELL_APP") {
            Some(p) => PathBuf::from(p),
            None => bench_exe.with_file_name("taskbell-app"),
        },
    };
    if !app.is_file() {
        bail!(
            "the tray app is not built at {}: run `cargo build --release -p taskbell-app` \
             (with the same target directory), or pass --app PATH",
            app.display()
        );
    }
    let cli = app.with_file_name("taskbell");
    if !cli.is_file() {
        bail!(
            "the taskbell command is not built at {}: run `cargo build --release -p taskbell-cli`",
            cli.display()
        );
    }
    Ok(TrayBinaries { app, cli })
}

/// One reading of the app's process tree.
#[derive(Debug, Clone)]
pub(crate) struct TreeReading {
    /// RSS, threads, CPU and context switches summed over the tree.
    pub(crate) sum: ProcSample,
    /// PSS summed over the tree.
    pub(crate) pss_kib: u64,
    /// (name, PSS KiB) of each process, the app first.
    pub(crate) each: Vec<(String, u64)>,
}

pub(crate) fn read_tree(pid: u32) -> Result<TreeReading> {
    let (sum, _) = procfs::sample_tree(pid)?;
    let name = std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| pid.to_string());
    let mut each = vec![(name, procfs::pss_kib(pid).unwrap_or(0))];
    for (p, name) in descendants(pid) {
        each.push((name, procfs::pss_kib(p).unwrap_or(0)));
    }
    Ok(TreeReading {
        sum,
        pss_kib: each.iter().map(|(_, k)| k).sum(),
        each,
    })
}

/// RSS and PSS of a tree, with each process's PSS.
pub(crate) fn describe(r: &TreeReading) -> String {
    let parts: Vec<String> = r
        .each
        .iter()
        .map(|(n, k)| format!("{n} {}", fmt_kib(*k)))
        .collect();
    format!(
        "RSS {} / PSS {} in {} process{} (PSS: {})",
        fmt_kib(r.sum.rss_kib),
        fmt_kib(r.pss_kib),
        r.each.len(),
        if r.each.len() == 1 { "" } else { "es" },
        parts.join(", ")
    )
}

/// A TaskBell program (`taskbell`, `taskbell-app`) in `desktop`, with the account's config and
/// data directories under `dirs`.
pub(crate) fn app_command(desktop: &Desktop, program: &Path, dirs: &Path) -> Command {
    let mut cmd = desktop.command(program);
    cmd.env("TASKBELL_CONFIG_DIR", dirs.join("config"))
        .env("TASKBELL_DATA_DIR", dirs.join("data"))
        .env("RUST_LOG", "warn");
    cmd
}

/// An idle window of a process tree: its reading at the end, CPU time and wake-ups over it.
pub(crate) struct IdleReading {
    /// The tree at the end of the window.
    pub(crate) tree: TreeReading,
    /// How long the window lasted.
    pub(crate) took: Duration,
    /// CPU time of the tree over the window.
    pub(crate) cpu: Duration,
    /// Voluntary context switches of the tree, per minute.
    pub(crate) wakeups_per_min: f64,
    /// The root process's threads that woke most.
    pub(crate) wakers: Vec<String>,
    /// Where the root process's PSS lies at the end (largest first, KiB).
    pub(crate) pss_where: Vec<(String, u64)>,
}

/// An open idle window: the tree's reading at its start. Several can be open at once, so
/// that two clients are measured over the same minute.
pub(crate) struct IdleWindow {
    pid: u32,
    before: ProcSample,
    threads_before: std::collections::HashMap<u32, (String, u64)>,
    t0: Instant,
}

impl IdleWindow {
    /// Starts the window on `pid`'s tree.
    pub(crate) fn open(pid: u32) -> Result<IdleWindow> {
        Ok(IdleWindow {
            pid,
            before: procfs::sample_tree(pid)?.0,
            threads_before: procfs::thread_wakeups(pid),
            t0: Instant::now(),
        })
    }

    /// Ends the window: the tree now, and what it cost since [`IdleWindow::open`].
    pub(crate) fn close(self) -> Result<IdleReading> {
        let took = self.t0.elapsed();
        let tree = read_tree(self.pid)?;
        let wakers = procfs::top_wakers(
            &self.threads_before,
            &procfs::thread_wakeups(self.pid),
            took,
            5,
        );
        let cpu = Duration::from_nanos(tree.sum.cpu_ns.saturating_sub(self.before.cpu_ns));
        let wakeups_per_min = tree.sum.voluntary.saturating_sub(self.before.voluntary) as f64
            * 60.0
            / took.as_secs_f64().max(0.001);
        Ok(IdleReading {
            tree,
            took,
            cpu,
            wakeups_per_min,
            wakers,
            pss_where: procfs::pss_by_mapping(self.pid),
        })
    }
}

/// Lets `child` settle (past the urgent toast, 3 s after the welcome), then reads its tree
/// before and after the idle window.
fn idle_reading(child: &mut ChildGuard, sizes: TraySizes) -> Result<IdleReading> {
    std::thread::sleep(sizes.settle);
    child.ensure_running()?;
    let window = IdleWindow::open(child.id())?;
    std::thread::sleep(sizes.idle);
    window.close()
}

/// Starts `cmd` (a signed-in TaskBell client) in `desktop` and waits for its welcome toast:
/// the process and the time to the toast.
pub(crate) fn spawn_signed_in(
    name: &str,
    cmd: &mut Command,
    desktop: &Desktop,
) -> Result<(ChildGuard, Duration)> {
    let recorder = desktop
        .recorder()
        .ok_or_else(|| anyhow!("the desktop has no Notify recorder"))?;
    let child = ChildGuard::spawn(name, cmd, &desktop.log_dir(), Stdout::Log)?;
    let started = Instant::now();
    recorder
        .wait_for(WAIT, |c| c.app_name == "TaskBell" && c.seen >= started)
        .map_err(|e| anyhow!("{e}\n{}", child.log()))?;
    Ok((child, started.elapsed()))
}

/// [`spawn_signed_in`], then the idle window: the process, the time to the toast, the reading.
fn start_signed_in(
    name: &str,
    cmd: &mut Command,
    desktop: &Desktop,
    sizes: TraySizes,
) -> Result<(ChildGuard, Duration, IdleReading)> {
    let (mut child, signed_in) = spawn_signed_in(name, cmd, desktop)?;
    let idle = idle_reading(&mut child, sizes)?;
    Ok((child, signed_in, idle))
}

fn idle_rows(r: &mut Report, section: &str, what: &str, idle: &IdleReading) {
    r.row(section, what, describe(&idle.tree), "—");
    r.row(
        section,
        format!("idle CPU time over {} s", idle.took.as_secs()),
        fmt_duration(idle.cpu),
        "—",
    );
    r.row(
        section,
        "idle wake-ups",
        format!("{:.0}/min", idle.wakeups_per_min),
        "—",
    );
    r.note(format!(
        "{section}: threads that woke most while idle: {}",
        idle.wakers.join(", ")
    ));
    let shown: Vec<String> = idle
        .pss_where
        .iter()
        .take(8)
        .map(|(what, kib)| format!("{what} {}", fmt_kib(*kib)))
        .collect();
    r.note(format!(
        "{section}: where the PSS lies (largest first): {}",
        shown.join(", ")
    ));
}

/// A file's size in MiB (and bytes), or why it is unknown.
pub(crate) fn file_size(path: &Path) -> String {
    match std::fs::metadata(path) {
        Ok(m) => format!(
            "{:.1} MiB ({} bytes)",
            m.len() as f64 / 1_048_576.0,
            m.len()
        ),
        Err(e) => format!("unknown ({e})"),
    }
}

/// A private desktop (session bus, Xvfb, dunst, gnome-keyring, and trayer with `tray`) where
/// `username` has signed in with [`login`]: the desktop and the account's directories.
pub(crate) fn signed_in_desktop(
    tray: bool,
    cli: &Path,
    server: &str,
    username: &str,
    password: &str,
) -> Result<(Desktop, PathBuf)> {
    let desktop = Desktop::start_with(DesktopOptions {
        notifications: true,
        keyring: true,
        tray,
    })
    .context("starting the private desktop (scripts/install-deps.sh installs its parts)")?;
    let dirs = desktop.dir().join("app");
    login(&desktop, cli, &dirs, server, username, password)?;
    Ok((desktop, dirs))
}

/// Stops `taskbell run` with SIGTERM; an unclean exit is an error.
pub(crate) fn stop_daemon(daemon: &mut ChildGuard) -> Result<()> {
    // Not 10 s: that is `taskbell run`'s own shutdown grace; WAIT only bounds a hang.
    let status = daemon.terminate(WAIT)?;
    if !status.success() {
        bail!("taskbell run exited with {status}: {}", daemon.log());
    }
    Ok(())
}

/// Signs in with the real `taskbell login --password-stdin` in `desktop` (token in its Secret
/// Service, account in the config under `dirs`), the way a user of the command does; a client
/// started afterwards with [`app_command`] starts signed in.
fn login(
    desktop: &Desktop,
    cli: &Path,
    dirs: &Path,
    server: &str,
    username: &str,
    password: &str,
) -> Result<()> {
    let mut login = app_command(desktop, cli, dirs);
    login
        .args(["login", "--server", server, "--username", username])
        .arg("--password-stdin")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut proc = login.spawn().context("starting taskbell login")?;
    if let Some(mut stdin) = proc.stdin.take() {
        use std::io::Write;
        writeln!(stdin, "{password}").context("writing the password")?;
    }
    let done = proc.wait_with_output().context("taskbell login")?;
    if !done.status.success() {
        bail!(
            "taskbell login failed ({}): {}",
            done.status,
            String::from_utf8_lossy(&done.stderr)
        );
    }
    Ok(())
}

/// Measures (blocking: run it on a blocking thread) the headless daemon, then, with
/// `with_app`, the tray app, in one private desktop, signed in as `username` on the
/// platform at `server`.
pub fn measure(
    bins: &TrayBinaries,
    server: &str,
    username: &str,
    password: &str,
    sizes: TraySizes,
    with_app: bool,
) -> Result<Report> {
    let app = bins.app.as_path();
    if with_app {
        eprintln!("== tray app memory ({})", app.display());
    } else {
        eprintln!("== headless daemon ({})", bins.cli.display());
    }
    let mut report = Report::default();
    let r = &mut report;
    let (desktop, dirs) = signed_in_desktop(true, &bins.cli, server, username, password)?;
    // 0. The headless daemon, `taskbell run`, as the same signed-in user, idle; then stopped.
    let (mut daemon, signed_in, idle) = start_signed_in(
        "taskbell-run",
        app_command(&desktop, &bins.cli, &dirs).arg("run"),
        &desktop,
        sizes,
    )?;
    let s = "headless daemon";
    r.row(s, "`taskbell` binary size", file_size(&bins.cli), "—");
    r.row(
        s,
        "`taskbell run`: start → welcome toast",
        fmt_duration(signed_in),
        "—",
    );
    idle_rows(r, s, "`taskbell run` idle, connected", &idle);
    stop_daemon(&mut daemon)?;
    if !with_app {
        return Ok(report);
    }

    // 1. The all-in-one tray app (Tauri's tray; the windows in the same process), with
    // trayer as its tray host.
    let all_in_one = Shape {
        section: "tray app",
        name: "taskbell-app",
        program: app,
    };
    all_in_one.measure(r, &desktop, &dirs, app, sizes)?;

    // 2. The tray process of Linux (no WebKit, GTK or GL; the windows in a process started
    // on demand), with a StatusNotifierWatcher as its tray host.
    let tray = app.with_file_name("taskbell-tray");
    let s = "tray process (taskbell-tray)";
    if !tray.is_file() {
        r.row(s, "memory", "not measured", "—");
        r.note(format!(
            "{s}: not built at {}: run `cargo build --release -p taskbell-tray`",
            tray.display()
        ));
        return Ok(report);
    }
    let _watcher = taskbell_e2e::SniWatcher::start(desktop.bus())
        .map_err(|e| anyhow!("a StatusNotifierWatcher for taskbell-tray: {e}"))?;
    let split = Shape {
        section: s,
        name: "taskbell-tray",
        program: &tray,
    };
    split.measure(r, &desktop, &dirs, app, sizes)?;
    Ok(report)
}

/// One shape of the tray app to measure.
struct Shape<'a> {
    section: &'static str,
    name: &'static str,
    program: &'a Path,
}

impl Shape<'_> {
    /// Idle in the tray, the center open, after closing it, after more cycles.
    fn measure(
        &self,
        r: &mut Report,
        desktop: &Desktop,
        dirs: &Path,
        app: &Path,
        sizes: TraySizes,
    ) -> Result<()> {
        let s = self.section;
        let command = || {
            let mut c = app_command(desktop, self.program, dirs);
            c.env("TASKBELL_WINDOWS_PROGRAM", app);
            c
        };
        r.row(
            s,
            format!("`{}` binary size", self.name),
            file_size(self.program),
            "—",
        );
        let (mut child, signed_in, idle) =
            start_signed_in(self.name, command().args(["--lang", "en"]), desktop, sizes)?;
        let pid = child.id();
        r.row(
            s,
            "start → signed in (welcome toast)",
            fmt_duration(signed_in),
            "—",
        );
        idle_rows(r, s, "idle in the tray, no window", &idle);
        let heavy = heavy_libraries(pid);
        r.row(
            s,
            "WebKit / GTK / GL libraries mapped, no window",
            if heavy.is_empty() {
                "none".to_string()
            } else {
                format!("{} ({})", heavy.len(), heavy.join(" "))
            },
            "—",
        );

        let xvfb = desktop
            .xvfb()
            .ok_or_else(|| anyhow!("the desktop has no X server"))?;
        // A second launch opens the running instance's window (the center, when signed in).
        let open_center = |child: &ChildGuard| -> Result<()> {
            let second = command().output().context("second launch")?;
            if !second.status.success() {
                bail!(
                    "the second launch failed ({}): {}",
                    second.status,
                    String::from_utf8_lossy(&second.stderr)
                );
            }
            taskbell_e2e::wait_until("the notification center to show", WAIT, || {
                let web = !webkit_processes(pid).is_empty();
                let shown = !xvfb.visible_windows(CENTER_TITLE).ok()?.is_empty();
                (web && shown).then_some(())
            })
            .map_err(|e| anyhow!("{e}\n{}", child.log()))
        };
        // Closed as a window manager closes it (WM_DELETE_WINDOW): the window and its web
        // process go (with the split, the whole window process), the tray stays.
        let close_center = |child: &mut ChildGuard| -> Result<u32> {
            let asked = xvfb
                .close_windows_until(CENTER_TITLE, WAIT, || webkit_processes(pid).is_empty())
                .map_err(|e| anyhow!("{e}\n{}", child.log()))?;
            child
                .ensure_running()
                .context("closing the center must not quit the app")?;
            Ok(asked)
        };

        // The notification center open.
        open_center(&child)?;
        std::thread::sleep(sizes.settle);
        let open = read_tree(pid)?;
        r.row(s, "notification center open", describe(&open), "—");

        // After closing it.
        let mut asked = close_center(&mut child)?;
        std::thread::sleep(sizes.settle);
        let closed = read_tree(pid)?;
        r.row(s, "after closing the center", describe(&closed), "—");
        let back = closed.pss_kib as f64 / idle.tree.pss_kib.max(1) as f64;
        r.row(
            s,
            "PSS after closing / idle before",
            format!("{back:.2}x"),
            "—",
        );

        // More open/close cycles: what stays behind must not pile up.
        for _ in 0..sizes.cycles {
            open_center(&child)?;
            asked += close_center(&mut child)?;
        }
        std::thread::sleep(sizes.settle);
        let cycled = read_tree(pid)?;
        r.row(
            s,
            format!("after {} more open/close cycles", sizes.cycles),
            describe(&cycled),
            "—",
        );
        r.note(format!(
            "{s}: signed in with `taskbell login`, `--lang en`, against a server with no \
             activity, under Xvfb + dunst + gnome-keyring and a tray host; RSS sums every \
             process of the tree (shared pages once per process), PSS splits shared pages; \
             close asked {asked} time(s) in all; peak RSS of the app process {}",
            fmt_kib(procfs::sample(pid)?.hwm_kib)
        ));
        child.terminate(WAIT)?;
        Ok(())
    }
}
