//! Resource use of a process (tree) from `/proc`: RSS, peak RSS, CPU time, context switches.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, anyhow};

use crate::Result;

/// One reading of a process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProcSample {
    /// Resident set size (`VmRSS`), KiB.
    pub rss_kib: u64,
    /// Peak resident set size (`VmHWM`), KiB.
    pub hwm_kib: u64,
    /// User + system CPU time in clock ticks (`/proc/PID/stat` fields 14 and 15).
    pub cpu_ticks: u64,
    /// Voluntary context switches summed over all threads (a thread going to sleep: the
    /// matching wake-up is what an idle process costs).
    pub voluntary: u64,
    /// Involuntary context switches summed over all threads.
    pub involuntary: u64,
    /// Number of threads.
    pub threads: u64,
    /// Time on the CPU in ns, summed over the threads (`/proc/PID/task/*/schedstat`, field 1;
    /// finer than the 10 ms ticks of `cpu_ticks`; 0 when the kernel has no schedstat).
    pub cpu_ns: u64,
}

/// Parses `Key:   123 kB` lines of `/proc/PID/status` into a map (numbers only).
pub fn parse_status(text: &str) -> HashMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            let n = v.split_whitespace().next()?.parse().ok()?;
            Some((k.trim().to_string(), n))
        })
        .collect()
}

/// utime + stime (ticks) and the parent pid from `/proc/PID/stat` (the command name may hold
/// spaces and parentheses: fields are counted after the last `)`).
pub fn parse_stat(text: &str) -> Option<(u64, u32)> {
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After ")": state(3) ppid(4) ... utime(14) stime(15): indices shift by 3.
    let ppid = f.get(1)?.parse().ok()?;
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some((utime + stime, ppid))
}

/// Reads one process.
pub fn sample(pid: u32) -> Result<ProcSample> {
    let base = format!("/proc/{pid}");
    let status = std::fs::read_to_string(format!("{base}/status"))
        .with_context(|| format!("reading {base}/status"))?;
    let st = parse_status(&status);
    let stat = std::fs::read_to_string(format!("{base}/stat"))
        .with_context(|| format!("reading {base}/stat"))?;
    let (cpu_ticks, _) = parse_stat(&stat).ok_or_else(|| anyhow!("cannot parse {base}/stat"))?;
    let mut voluntary = 0;
    let mut involuntary = 0;
    let mut threads = 0;
    let mut cpu_ns = 0;
    if let Ok(dir) = std::fs::read_dir(format!("{base}/task")) {
        for t in dir.flatten() {
            if let Ok(text) = std::fs::read_to_string(t.path().join("status")) {
                let ts = parse_status(&text);
                voluntary += ts.get("voluntary_ctxt_switches").copied().unwrap_or(0);
                involuntary += ts.get("nonvoluntary_ctxt_switches").copied().unwrap_or(0);
                threads += 1;
            }
            if let Ok(text) = std::fs::read_to_string(t.path().join("schedstat")) {
                cpu_ns += text
                    .split_whitespace()
                    .next()
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0);
            }
        }
    }
    Ok(ProcSample {
        rss_kib: st.get("VmRSS").copied().unwrap_or(0),
        hwm_kib: st.get("VmHWM").copied().unwrap_or(0),
        cpu_ticks,
        voluntary,
        involuntary,
        threads,
        cpu_ns,
    })
}

/// Voluntary context switches of each thread of `pid`, by thread id: `(thread name, count)`.
pub fn thread_wakeups(pid: u32) -> HashMap<u32, (String, u64)> {
    let mut out = HashMap::new();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for t in dir.flatten() {
        let Some(tid) = t.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let name = std::fs::read_to_string(t.path().join("comm"))
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        if let Ok(text) = std::fs::read_to_string(t.path().join("status")) {
            let n = parse_status(&text)
                .get("voluntary_ctxt_switches")
                .copied()
                .unwrap_or(0);
            out.insert(tid, (name, n));
        }
    }
    out
}

/// The threads that woke most between two [`thread_wakeups`] readings, per minute over `took`,
/// as "name N/min" (at most `top`).
pub fn top_wakers(
    before: &HashMap<u32, (String, u64)>,
    after: &HashMap<u32, (String, u64)>,
    took: Duration,
    top: usize,
) -> Vec<String> {
    let mut rates: Vec<(f64, &str)> = after
        .iter()
        .map(|(tid, (name, n))| {
            let b = before.get(tid).map_or(0, |(_, b)| *b);
            (
                n.saturating_sub(b) as f64 * 60.0 / took.as_secs_f64().max(0.001),
                name.as_str(),
            )
        })
        .filter(|(r, _)| *r > 0.0)
        .collect();
    rates.sort_by(|a, b| b.0.total_cmp(&a.0));
    rates
        .into_iter()
        .take(top)
        .map(|(r, n)| format!("{n} {r:.0}/min"))
        .collect()
}

/// `pid` and all its descendants (by scanning `/proc/*/stat`).
pub fn tree(pid: u32) -> BTreeSet<u32> {
    let mut parent_of = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let Some(p) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            if let Ok(text) =
                std::fs::read_to_string(Path::new("/proc").join(p.to_string()).join("stat"))
            {
                if let Some((_, ppid)) = parse_stat(&text) {
                    parent_of.push((p, ppid));
                }
            }
        }
    }
    let mut set = BTreeSet::from([pid]);
    loop {
        let before = set.len();
        for (p, pp) in &parent_of {
            if set.contains(pp) {
                set.insert(*p);
            }
        }
        if set.len() == before {
            return set;
        }
    }
}

/// The sum of [`sample`] over `pid`'s process tree (processes that vanish meanwhile are
/// skipped). Peak RSS is the sum of each process's peak.
pub fn sample_tree(pid: u32) -> Result<(ProcSample, usize)> {
    let pids = tree(pid);
    let mut sum = ProcSample::default();
    let mut n = 0;
    for p in &pids {
        if let Ok(s) = sample(*p) {
            sum.rss_kib += s.rss_kib;
            sum.hwm_kib += s.hwm_kib;
            sum.cpu_ticks += s.cpu_ticks;
            sum.voluntary += s.voluntary;
            sum.involuntary += s.involuntary;
            sum.threads += s.threads;
            sum.cpu_ns += s.cpu_ns;
            n += 1;
        }
    }
    if n == 0 {
        return Err(anyhow!("process {pid} is gone"));
    }
    Ok((sum, n))
}

/// Proportional set size of one process, KiB (`Pss:` of `/proc/PID/smaps_rollup`: each shared
/// page divided by the number of processes mapping it). `None` when unreadable.
pub fn pss_kib(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    parse_status(&text).get("Pss").copied()
}

/// Where a process's PSS lies, KiB, largest first: its own executable (code, data and
/// the relocated tables), each shared library, the heap, thread stacks and other
/// anonymous memory (from `/proc/PID/smaps`). Empty when unreadable.
pub fn pss_by_mapping(pid: u32) -> Vec<(String, u64)> {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/smaps")) else {
        return Vec::new();
    };
    let exe = std::fs::read_link(format!("/proc/{pid}/exe"))
        .ok()
        .map(|p| p.to_string_lossy().into_owned());
    let mut by: HashMap<String, u64> = HashMap::new();
    let mut current = String::from("anonymous");
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let Some(first) = fields.next() else { continue };
        if first.contains('-') && first.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            // A mapping's header: range, perms, offset, dev, inode, then the path, if any.
            let path = fields.nth(4).unwrap_or("");
            current = if path.is_empty() {
                "anonymous".to_string()
            } else if exe.as_deref() == Some(path) {
                "the executable".to_string()
            } else if path.starts_with('[') {
                if path.starts_with("[stack") {
                    "[stack]".to_string()
                } else {
                    path.to_string()
                }
            } else {
                path.rsplit('/').next().unwrap_or(path).to_string()
            };
        } else if first == "Pss:" {
            let kib: u64 = fields.next().and_then(|v| v.parse().ok()).unwrap_or(0);
            *by.entry(current.clone()).or_insert(0) += kib;
        }
    }
    let mut out: Vec<(String, u64)> = by.into_iter().filter(|(_, k)| *k > 0).collect();
    out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    out
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`, 100 on Linux).
pub fn clock_ticks() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .and_then(|v| u64::try_from(v).ok())
        .filter(|v| *v > 0)
        .unwrap_or(100)
}

/// CPU time between two samples (from schedstat when both have it, else from ticks).
pub fn cpu_between(a: &ProcSample, b: &ProcSample) -> Duration {
    if a.cpu_ns > 0 && b.cpu_ns >= a.cpu_ns {
        return Duration::from_nanos(b.cpu_ns - a.cpu_ns);
    }
    let ticks = b.cpu_ticks.saturating_sub(a.cpu_ticks);
    Duration::from_millis(ticks * 1000 / clock_ticks())
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit; returns the new soft limit.
pub fn raise_nofile() -> Result<u64> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    Ok(getrlimit(Resource::RLIMIT_NOFILE)?.0)
}

/// A line describing the machine: CPU model, cores, memory, kernel.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".to_string());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .map(|t| parse_status(&t))
        .and_then(|m| m.get("MemTotal").copied())
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    format!(
        "{cores} cores ({cpu}), {:.1} GiB RAM, Linux {kernel}",
        mem as f64 / 1024.0 / 1024.0
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_spaces_and_parens_in_the_name() {
        let text = "1234 (tokio (rt) 1) S 99 1234 1234 0 -1 4194304 100 0 0 0 250 50 0 0 20 0 4 0";
        assert_eq!(parse_stat(text), Some((300, 99)));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn status_numbers_are_parsed() {
        let m = parse_status("Name:\tx\nVmRSS:\t  1234 kB\nvoluntary_ctxt_switches:\t7\n");
        assert_eq!(m.get("VmRSS"), Some(&1234));
        assert_eq!(m.get("voluntary_ctxt_switches"), Some(&7));
        assert_eq!(m.get("Name"), None);
    }

    #[test]
    fn this_process_can_be_sampled() {
        let me = std::process::id();
        let s = sample(me).unwrap();
        assert!(
            s.rss_kib > 0 && s.hwm_kib >= s.rss_kib && s.threads >= 1,
            "{s:?}"
        );
        let (t, n) = sample_tree(me).unwrap();
        // Not `>= s.rss_kib`: the two samples are taken at different moments, and RSS can
        // shrink in between.
        assert!(n >= 1 && t.rss_kib > 0, "{t:?}");
        assert!(tree(me).contains(&me));
        assert!(machine().contains("cores"));
    }
}
