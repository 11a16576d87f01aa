//! The environment of child processes and the process tree under one.
//!
//! Child guards, line collectors, bounded waiting and the error type come
//! from `taskbell-testkit` and are re-exported here, so `crate::process::…`
//! names every process helper of the harness.

use std::ffi::OsString;
use std::process::Command;

pub use taskbell_testkit::{
    ChildGuard, HarnessError, LineCollector, Result, Stdout, io_err, tail, wait_until,
};

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

/// Libraries only a GUI toolkit or a webview brings (WebKit, JavaScriptCore, GTK/GDK,
/// cairo, and GL through libepoxy, libGL/libEGL and Mesa's LLVM).
pub const HEAVY_LIBRARIES: &[&str] = &[
    "webkit",
    "javascriptcore",
    "libgtk",
    "libgdk",
    "libepoxy",
    "libEGL",
    "libGL",
    "libLLVM",
    "libcairo",
];

/// The [`HEAVY_LIBRARIES`] `pid` maps, by file name, each once and sorted (read from
/// `/proc/<pid>/maps`; empty when it cannot be read).
pub fn heavy_libraries(pid: u32) -> Vec<String> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
    let mut found: Vec<String> = maps
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .filter(|path| HEAVY_LIBRARIES.iter().any(|h| path.contains(h)))
        .filter_map(|path| path.rsplit('/').next().map(String::from))
        .collect();
    found.sort();
    found.dedup();
    found
}
