//! `taskbell-bench peer --peer PATH`: `taskbell run` beside a peer client, gotify-desktop
//! (github.com/desbma/gotify-desktop, built by hand, never vendored), idle in **one** private
//! desktop over the **same** window, so that the ratio between the two is measured, not quoted.
//!
//! `taskbell run` is signed in with the real `taskbell login` against the reference server
//! (production heartbeat, 30 s); gotify-desktop runs against the [`crate::gotify`] shim. Before
//! the window each client must have shown one pushed message (its `Notify` call seen on the
//! session bus), which proves both are connected and delivering. Then both process trees are
//! read over the same idle window with the [`crate::procfs`] helpers: RSS, PSS, wake-ups
//! (voluntary context switches) and CPU time per minute, threads, and which threads woke.
//!
//! Without `--peer` the `taskbell run` row is measured the same way and the peer's row says it
//! was not given: no figure is made up.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use taskbell_e2e::{ChildGuard, Desktop, NotifyCall, Stdout};
use taskbell_server::DEMO_ANNOTATOR;

use crate::Result;
use crate::gotify::{GotifyShim, ShimOptions};
use crate::platform::Platform;
use crate::procfs;
use crate::stats::{fmt_duration, fmt_kib, render_notes, render_table};
use crate::tray::{self, IdleReading, IdleWindow, TraySizes, WAIT};

/// The peer's name in the table.
const PEER: &str = "gotify-desktop";
/// The peer's `app_name` in its `Notify` calls (`src/notif.rs`).
const PEER_APP_NAME: &str = "Gotify Desktop";

/// How long after the toast after idling the memory is read (the client has handled
/// the daemon's reply and gone back to waiting).
const AFTER_TOAST: Duration = Duration::from_secs(2);

/// What `peer` runs.
#[derive(Debug, Clone)]
pub struct PeerOptions {
    /// The `taskbell` command.
    pub cli: PathBuf,
    /// The gotify-desktop binary, when given.
    pub peer: Option<PathBuf>,
    /// Settle time and idle window.
    pub sizes: TraySizes,
    /// The Gotify shim's ping period (the real server's default: 45 s).
    pub ping_period: Duration,
}

/// The table: one row per client, the ratio, and notes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerReport {
    /// Rows under [`PeerReport::HEAD`].
    pub rows: Vec<Vec<String>>,
    /// Notes printed under the table.
    pub notes: Vec<String>,
}

impl PeerReport {
    /// The columns.
    pub const HEAD: [&'static str; 6] = [
        "client (idle, connected)",
        "RSS",
        "PSS",
        "wake-ups/min",
        "CPU/min",
        "threads",
    ];

    /// Adds a note (also printed to stderr as it comes, like [`crate::stats::Report::note`]).
    pub fn note(&mut self, note: impl Into<String>) {
        let note = note.into();
        eprintln!("  note: {note}");
        self.notes.push(note);
    }

    /// The table as Markdown, notes under it.
    pub fn render(&self) -> String {
        let mut out = render_table(&Self::HEAD, &self.rows);
        out.push_str(&render_notes(&self.notes));
        out
    }
}

/// The figures of one client over the window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Figures {
    /// RSS of the tree, KiB.
    pub rss_kib: u64,
    /// PSS of the tree, KiB.
    pub pss_kib: u64,
    /// Voluntary context switches per minute.
    pub wakeups_per_min: f64,
    /// CPU time per minute.
    pub cpu_per_min: Duration,
    /// Threads at the end of the window.
    pub threads: u64,
}

impl Figures {
    fn of(r: &IdleReading) -> Figures {
        let minutes = r.took.as_secs_f64().max(0.001) / 60.0;
        Figures {
            rss_kib: r.tree.sum.rss_kib,
            pss_kib: r.tree.pss_kib,
            wakeups_per_min: r.wakeups_per_min,
            cpu_per_min: Duration::from_secs_f64(r.cpu.as_secs_f64() / minutes),
            threads: r.tree.sum.threads,
        }
    }

    /// The row's cells after the client's name.
    pub fn cells(&self) -> Vec<String> {
        vec![
            fmt_kib(self.rss_kib),
            fmt_kib(self.pss_kib),
            format!("{:.0}", self.wakeups_per_min),
            fmt_duration(self.cpu_per_min),
            self.threads.to_string(),
        ]
    }

    /// `self ÷ other` for each figure, as "1.9×" (or "—" where `other` is 0).
    pub fn ratio(&self, other: &Figures) -> Vec<String> {
        let r = |a: f64, b: f64| {
            if b > 0.0 {
                format!("{:.1}×", a / b)
            } else {
                "— (peer 0)".to_string()
            }
        };
        vec![
            r(self.rss_kib as f64, other.rss_kib as f64),
            r(self.pss_kib as f64, other.pss_kib as f64),
            r(self.wakeups_per_min, other.wakeups_per_min),
            r(
                self.cpu_per_min.as_secs_f64(),
                other.cpu_per_min.as_secs_f64(),
            ),
            r(self.threads as f64, other.threads as f64),
        ]
    }
}

/// The `taskbell` command beside `bench_exe`, or why it is missing.
pub fn locate_cli(bench_exe: &Path) -> Result<PathBuf> {
    let cli = bench_exe.with_file_name("taskbell");
    if !cli.is_file() {
        bail!(
            "the taskbell command is not built at {}: build taskbell-cli with the same profile",
            cli.display()
        );
    }
    Ok(cli)
}

/// Runs the scenario: the reference server and (with a peer) the Gotify shim in this runtime,
/// the desktop and both clients on a blocking thread.
pub async fn run(opts: PeerOptions) -> Result<PeerReport> {
    if let Some(p) = &opts.peer {
        // Asked for by path: a missing binary is an error, not a "not measured" row.
        if !p.is_file() {
            bail!(
                "--peer {}: no such file (docs/benchmarks.md says how to build gotify-desktop)",
                p.display()
            );
        }
    }
    eprintln!(
        "== peer: `taskbell run` beside {} ({} s idle)",
        opts.peer
            .as_deref()
            .map_or_else(|| "no peer".to_string(), |p| p.display().to_string()),
        opts.sizes.idle.as_secs()
    );
    let platform = Arc::new(Platform::demo(None).await?);
    let (_, user_id) = platform.token(DEMO_ANNOTATOR.username).await?;
    let shim = match opts.peer {
        Some(_) => {
            let mut o = ShimOptions::new(format!("Cbench{:016x}", rand::random::<u64>()));
            o.ping_period = opts.ping_period;
            Some(Arc::new(GotifyShim::start(o).await?))
        }
        None => None,
    };
    let rt = tokio::runtime::Handle::current();
    let server = platform.base_url();
    let p = Arc::clone(&platform);
    let push_taskbell = move |title: &str| rt.block_on(p.notify_user(&user_id, title, 1));
    let rt = tokio::runtime::Handle::current();
    let wait_peer = {
        let shim = shim.clone();
        move || match &shim {
            Some(s) => rt.block_on(s.wait_streams(1, WAIT)),
            None => Ok(()),
        }
    };
    let report = tokio::task::spawn_blocking(move || {
        measure(&opts, &server, shim.as_deref(), &push_taskbell, &wait_peer)
    })
    .await??;
    drop(platform);
    Ok(report)
}

/// Waits for a `Notify` call from `app_name` that shows `text`, after `since`.
fn wait_toast(desktop: &Desktop, app_name: &str, text: &str, since: Instant) -> Result<NotifyCall> {
    let recorder = desktop
        .recorder()
        .ok_or_else(|| anyhow!("the desktop has no Notify recorder"))?;
    Ok(recorder.wait_for(WAIT, |c| {
        c.app_name == app_name
            && c.seen >= since
            && (c.summary.contains(text) || c.body.contains(text))
    })?)
}

/// gotify-desktop's config (`$XDG_CONFIG_HOME/gotify-desktop/config.toml`) for `shim`.
fn write_peer_config(desktop: &Desktop, shim: &GotifyShim) -> Result<PathBuf> {
    let dir = desktop.home().join(".config").join("gotify-desktop");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join("config.toml");
    let text = format!(
        "[gotify]\nurl = \"{}\"\ntoken = \"{}\"\nauto_delete = false\n\n\
         [notification]\nmin_priority = 0\n",
        shim.ws_url(),
        shim.token()
    );
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// The blocking part: desktop, clients, checks, the window.
fn measure(
    opts: &PeerOptions,
    server: &str,
    shim: Option<&GotifyShim>,
    push_taskbell: &dyn Fn(&str) -> Result<()>,
    wait_peer: &dyn Fn() -> Result<()>,
) -> Result<PeerReport> {
    let mut report = PeerReport::default();
    let (desktop, dirs) = tray::signed_in_desktop(
        false,
        &opts.cli,
        server,
        DEMO_ANNOTATOR.username,
        DEMO_ANNOTATOR.password,
    )?;
    let (mut taskbell, signed_in) = tray::spawn_signed_in(
        "taskbell-run",
        tray::app_command(&desktop, &opts.cli, &dirs).arg("run"),
        &desktop,
    )?;
    let mut peer = match (&opts.peer, shim) {
        (Some(path), Some(shim)) => {
            write_peer_config(&desktop, shim)?;
            let mut cmd = desktop.command(path);
            cmd.env("RUST_LOG", "info");
            let started = Instant::now();
            let child = ChildGuard::spawn(PEER, &mut cmd, &desktop.log_dir(), Stdout::Log)?;
            wait_peer().map_err(|e| anyhow!("{e}\n{PEER}'s log:\n{}", child.log()))?;
            Some((child, started.elapsed()))
        }
        _ => None,
    };

    // One message each, seen as a `Notify` call on the bus: both really deliver.
    let (taskbell_delivered, peer_delivered) = push_each(
        &desktop,
        &taskbell,
        peer.as_ref().map(|(c, _)| c).zip(shim),
        push_taskbell,
        "peer check",
    )?;

    // Nothing left on screen: dunst would otherwise expire the check toasts (10 s) right as
    // the window opens, and each `NotificationClosed` signal wakes the clients that listen.
    desktop
        .dunst()
        .ok_or_else(|| anyhow!("the desktop has no dunst"))?
        .close_all()?;
    // The same window for both.
    std::thread::sleep(opts.sizes.settle);
    taskbell.ensure_running()?;
    if let Some((child, _)) = &mut peer {
        child.ensure_running()?;
    }
    let tw = IdleWindow::open(taskbell.id())?;
    let pw = peer
        .as_ref()
        .map(|(child, _)| IdleWindow::open(child.id()))
        .transpose()?;
    std::thread::sleep(opts.sizes.idle);
    let tr = tw.close()?;
    let pr = pw.map(IdleWindow::close).transpose()?;
    let taskbell_threads = thread_names(taskbell.id());
    let peer_threads = peer.as_ref().map(|(c, _)| thread_names(c.id()));

    // Then one notification more each, after the idle window: how long the first
    // toast after idling takes (code given back while quiet is mapped in again), and what
    // the memory is once it is shown.
    let (taskbell_after, peer_after) = push_each(
        &desktop,
        &taskbell,
        peer.as_ref().map(|(c, _)| c).zip(shim),
        push_taskbell,
        "peer after idle",
    )?;
    std::thread::sleep(AFTER_TOAST);
    let taskbell_mem = tray::read_tree(taskbell.id())?;
    let peer_mem = peer
        .as_ref()
        .map(|(c, _)| tray::read_tree(c.id()))
        .transpose()?;

    let tf = Figures::of(&tr);
    let mut row = vec!["`taskbell run`".to_string()];
    row.extend(tf.cells());
    report.rows.push(row);
    match &pr {
        Some(pr) => {
            let pf = Figures::of(pr);
            let mut row = vec![PEER.to_string()];
            row.extend(pf.cells());
            report.rows.push(row);
            let mut row = vec![format!("ratio `taskbell run` ÷ {PEER}")];
            row.extend(tf.ratio(&pf));
            report.rows.push(row);
        }
        None => {
            let mut row = vec![format!("{PEER}: not measured (no --peer PATH given)")];
            row.extend(std::iter::repeat_n("—".to_string(), 5));
            report.rows.push(row);
        }
    }

    report.note(format!(
        "one private desktop (session bus, Xvfb, dunst, gnome-keyring); idle window {:.1} s \
         for both at once, after every toast was closed (`dunstctl close-all`) and {} s of \
         quiet; CPU is schedstat time, wake-ups are voluntary \
         context switches, both summed over the process tree and scaled to a minute; RSS and \
         PSS at the end of the window",
        tr.took.as_secs_f64(),
        opts.sizes.settle.as_secs()
    ));
    report.note(format!(
        "`taskbell run` ({}, {}): signed in with `taskbell login` against the reference server \
         (heartbeat 30 s; the server sends a `{{\"type\":\"ping\"}}` text frame every 30 s); \
         start → welcome toast {}, a pushed notification shown in {}; {}; threads: {}; \
         threads that woke: {}",
        opts.cli.display(),
        tray::file_size(&opts.cli),
        fmt_duration(signed_in),
        fmt_duration(taskbell_delivered),
        tray::describe(&tr.tree),
        taskbell_threads,
        or_none(&tr.wakers)
    ));
    report.note(format!(
        "after the window, one notification more each (the first after idling): `taskbell \
         run` showed it in {} and then held {}{}",
        fmt_duration(taskbell_after),
        tray::describe(&taskbell_mem),
        match (peer_after, &peer_mem) {
            (Some(d), Some(m)) => format!(
                "; {PEER} showed it in {} and then held {}",
                fmt_duration(d),
                tray::describe(m)
            ),
            _ => String::new(),
        }
    ));
    match (&opts.peer, &peer, &pr, shim) {
        (Some(path), Some((_, connected)), Some(pr), Some(_)) => report.note(format!(
            "{PEER} ({}, {}): against the Gotify shim (a WebSocket ping control frame every {} s; \
             gotify/server's default `pingPeriod` is 45 s; pong deadline ping + 15 s); start → \
             on /stream {}, a pushed message shown in {}; {}; threads: {}; threads that woke: {}",
            path.display(),
            tray::file_size(path),
            opts.ping_period.as_secs(),
            fmt_duration(*connected),
            peer_delivered.map_or_else(|| "—".to_string(), fmt_duration),
            tray::describe(&pr.tree),
            peer_threads.unwrap_or_default(),
            or_none(&pr.wakers)
        )),
        _ => report.note(format!(
            "{PEER} not given: build it by hand outside the repository (docs/benchmarks.md, \
             \"Peer client\") and pass --peer PATH"
        )),
    }

    tray::stop_daemon(&mut taskbell)?;
    if let Some((mut child, _)) = peer {
        // gotify-desktop has no SIGTERM handler: the default action ends it.
        child.terminate(WAIT)?;
    }
    Ok(report)
}

/// Pushes one message to each client (titled "`what`: taskbell" / "`what`: gotify") and
/// waits for its `Notify` call on the bus: how long each took.
fn push_each(
    desktop: &Desktop,
    taskbell: &ChildGuard,
    peer: Option<(&ChildGuard, &GotifyShim)>,
    push_taskbell: &dyn Fn(&str) -> Result<()>,
    what: &str,
) -> Result<(Duration, Option<Duration>)> {
    let t = Instant::now();
    let title = format!("{what}: taskbell");
    push_taskbell(&title)?;
    wait_toast(desktop, "TaskBell", &title, t)
        .map_err(|e| anyhow!("{e}\n`taskbell run`'s log:\n{}", taskbell.log()))?;
    let taskbell_took = t.elapsed();
    let peer_took = match peer {
        Some((child, shim)) => {
            let t = Instant::now();
            let title = format!("{what}: gotify");
            shim.push(&title, "pushed by taskbell-bench", 5);
            wait_toast(desktop, PEER_APP_NAME, &title, t)
                .map_err(|e| anyhow!("{e}\n{PEER}'s log:\n{}", child.log()))?;
            Some(t.elapsed())
        }
        None => None,
    };
    Ok((taskbell_took, peer_took))
}

/// The names of `pid`'s threads, sorted ("name ×N" for repeats).
fn thread_names(pid: u32) -> String {
    let mut names: Vec<String> = procfs::thread_wakeups(pid)
        .into_values()
        .map(|(name, _)| name)
        .collect();
    names.sort();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while let Some(name) = names.get(i) {
        let n = names[i..].iter().take_while(|m| *m == name).count();
        out.push(if n > 1 {
            format!("{name} ×{n}")
        } else {
            name.clone()
        });
        i += n;
    }
    or_none(&out)
}

fn or_none(v: &[String]) -> String {
    if v.is_empty() {
        "none".to_string()
    } else {
        v.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratio_is_taskbell_over_peer_and_never_divides_by_zero() {
        let t = Figures {
            rss_kib: 4096,
            pss_kib: 3000,
            wakeups_per_min: 10.0,
            cpu_per_min: Duration::from_millis(2),
            threads: 4,
        };
        let p = Figures {
            rss_kib: 2048,
            pss_kib: 1000,
            wakeups_per_min: 0.0,
            cpu_per_min: Duration::from_millis(1),
            threads: 1,
        };
        assert_eq!(
            t.ratio(&p),
            vec!["2.0×", "3.0×", "— (peer 0)", "2.0×", "4.0×"]
        );
        assert_eq!(t.cells()[0], "4.0 MiB");
        assert_eq!(t.cells()[2], "10");
    }

    #[test]
    fn the_report_renders_one_row_per_client_with_notes() {
        let mut r = PeerReport::default();
        r.rows.push(vec!["`taskbell run`".into(), "1.0 MiB".into()]);
        r.note("a note");
        let text = r.render();
        assert!(text.starts_with("| client"), "{text}");
        let row = text.lines().nth(2).unwrap_or_default();
        assert!(
            row.starts_with("| `taskbell run` ") && row.contains("| 1.0 MiB "),
            "{text}"
        );
        // Missing cells are padded: every line of the table is as wide as the head.
        let widths: Vec<usize> = text.lines().take(3).map(|l| l.chars().count()).collect();
        assert!(widths.iter().all(|w| *w == widths[0]), "{text}");
        assert!(text.contains("- a note"), "{text}");
    }
}
