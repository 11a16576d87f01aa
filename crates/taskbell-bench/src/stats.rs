//! Percentiles and the report table.
//!
//! Percentiles come from an [`hdrhistogram::Histogram`] with microsecond resolution and three
//! significant digits (values are exact to 0.1 %).

use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;

/// p50 / p99 / max (and min, mean) of a set of durations.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Percentiles {
    /// Number of samples.
    pub count: u64,
    /// Smallest sample.
    pub min: Duration,
    /// Median.
    pub p50: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// Largest sample.
    pub max: Duration,
    /// Mean.
    pub mean: Duration,
}

impl Percentiles {
    /// Summarises `samples`; `None` when there are none.
    pub fn of(samples: &[Duration]) -> Option<Percentiles> {
        if samples.is_empty() {
            return None;
        }
        // 1 µs .. 1 h, 3 significant digits.
        let mut h = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).ok()?;
        for s in samples {
            let us = u64::try_from(s.as_micros())
                .unwrap_or(u64::MAX)
                .clamp(1, 3_600_000_000);
            h.record(us).ok()?;
        }
        Some(Percentiles {
            count: h.len(),
            min: Duration::from_micros(h.min()),
            p50: Duration::from_micros(h.value_at_quantile(0.5)),
            p99: Duration::from_micros(h.value_at_quantile(0.99)),
            max: Duration::from_micros(h.max()),
            mean: Duration::from_micros(h.mean().round() as u64),
        })
    }

    /// `p50 1.23 ms · p99 4.56 ms · max 7.89 ms`.
    pub fn short(&self) -> String {
        format!(
            "p50 {} · p99 {} · max {}",
            fmt_duration(self.p50),
            fmt_duration(self.p99),
            fmt_duration(self.max)
        )
    }
}

/// The median and the largest of a few samples (no histogram: for 2–5 repeats).
pub fn median_max(samples: &[Duration]) -> Option<(Duration, Duration)> {
    let mut v = samples.to_vec();
    v.sort();
    let max = *v.last()?;
    let mid = v.len() / 2;
    let median = if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2
    };
    Some((median, max))
}

/// A human duration: µs below 1 ms, ms with two decimals below 1 s, s with two decimals above.
pub fn fmt_duration(d: Duration) -> String {
    let us = d.as_micros();
    if us < 1_000 {
        format!("{us} µs")
    } else if us < 1_000_000 {
        format!("{:.2} ms", us as f64 / 1_000.0)
    } else {
        format!("{:.2} s", d.as_secs_f64())
    }
}

/// KiB as MiB with one decimal.
pub fn fmt_kib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// One line of the report: a figure beside its floor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The section ("delivery latency", "burst", ...).
    pub section: String,
    /// What was measured.
    pub figure: String,
    /// The measured value.
    pub value: String,
    /// The floor it is compared with ("—" when there is none).
    pub floor: String,
}

/// The report: rows in the order they were measured, plus free-text notes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// The rows.
    pub rows: Vec<Row>,
    /// Notes printed under the table.
    pub notes: Vec<String>,
}

impl Report {
    /// Adds a row.
    pub fn row(
        &mut self,
        section: impl Into<String>,
        figure: impl Into<String>,
        value: impl Into<String>,
        floor: impl Into<String>,
    ) {
        let row = Row {
            section: section.into(),
            figure: figure.into(),
            value: value.into(),
            floor: floor.into(),
        };
        eprintln!(
            "  [{}] {}: {}   (floor: {})",
            row.section, row.figure, row.value, row.floor
        );
        self.rows.push(row);
    }

    /// Adds a note.
    pub fn note(&mut self, note: impl Into<String>) {
        let note = note.into();
        eprintln!("  note: {note}");
        self.notes.push(note);
    }

    /// Appends another report's rows and notes.
    pub fn extend(&mut self, other: Report) {
        self.rows.extend(other.rows);
        self.notes.extend(other.notes);
    }

    /// The table as Markdown (aligned, so it reads well in a terminal too).
    pub fn render(&self) -> String {
        let head = ["section", "figure", "TaskBell", "floor"];
        let cells: Vec<Vec<&str>> = self
            .rows
            .iter()
            .map(|r| {
                vec![
                    r.section.as_str(),
                    r.figure.as_str(),
                    r.value.as_str(),
                    r.floor.as_str(),
                ]
            })
            .collect();
        let mut out = render_table(&head, &cells);
        out.push_str(&render_notes(&self.notes));
        out
    }
}

/// Notes as a Markdown list after a blank line (nothing when there are none).
pub fn render_notes(notes: &[String]) -> String {
    let mut out = String::new();
    if !notes.is_empty() {
        out.push('\n');
        for n in notes {
            let _ = writeln!(out, "- {n}");
        }
    }
    out
}

/// A Markdown table with columns aligned (so it reads well in a terminal too); a row with
/// fewer cells than `head` is padded with empty cells, extra cells are dropped.
pub fn render_table<S: AsRef<str>>(head: &[&str], rows: &[Vec<S>]) -> String {
    let cells = |row: &[S]| -> Vec<String> {
        (0..head.len())
            .map(|i| row.get(i).map_or("", |s| s.as_ref()).to_string())
            .collect()
    };
    let body: Vec<Vec<String>> = rows.iter().map(|r| cells(r)).collect();
    let head: Vec<String> = head.iter().map(|h| h.to_string()).collect();
    let mut width: Vec<usize> = head.iter().map(|h| h.chars().count()).collect();
    for r in &body {
        for (w, v) in width.iter_mut().zip(r) {
            *w = (*w).max(v.chars().count());
        }
    }
    let line = |c: &[String]| {
        let mut s = String::from("|");
        for (w, v) in width.iter().zip(c) {
            let pad = w - v.chars().count();
            let _ = write!(s, " {v}{} |", " ".repeat(pad));
        }
        s.push('\n');
        s
    };
    let mut out = line(&head);
    out.push('|');
    for w in &width {
        let _ = write!(out, "{}|", "-".repeat(w + 2));
    }
    out.push('\n');
    for r in &body {
        out.push_str(&line(r));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_one_to_a_thousand_ms() {
        let samples: Vec<Duration> = (1..=1000).map(Duration::from_millis).collect();
        let p = Percentiles::of(&samples).unwrap();
        assert_eq!(p.count, 1000);
        assert_eq!(p.min, Duration::from_millis(1));
        // hdrhistogram keeps 3 significant digits: within 0.1 %.
        let close = |a: Duration, b: Duration| {
            (a.as_secs_f64() - b.as_secs_f64()).abs() <= b.as_secs_f64() * 0.001
        };
        assert!(close(p.p50, Duration::from_millis(500)), "{p:?}");
        assert!(close(p.p99, Duration::from_millis(990)), "{p:?}");
        assert!(close(p.max, Duration::from_millis(1000)), "{p:?}");
        assert!(close(p.mean, Duration::from_micros(500_500)), "{p:?}");
    }

    #[test]
    fn percentiles_of_nothing_is_none_and_one_sample_is_itself() {
        assert_eq!(Percentiles::of(&[]), None);
        let p = Percentiles::of(&[Duration::from_micros(1234)]).unwrap();
        assert_eq!(p.count, 1);
        assert!(p.p50 >= Duration::from_micros(1233) && p.p50 <= Duration::from_micros(1235));
        assert_eq!(p.p50, p.max);
    }

    #[test]
    fn sub_microsecond_and_huge_samples_are_clamped_not_dropped() {
        let p = Percentiles::of(&[Duration::from_nanos(10), Duration::from_secs(7200)]).unwrap();
        assert_eq!(p.count, 2);
        assert_eq!(p.min, Duration::from_micros(1));
        assert!(p.max >= Duration::from_secs(3590));
    }

    #[test]
    fn median_and_max_of_odd_and_even_sets() {
        let ms = Duration::from_millis;
        assert_eq!(median_max(&[ms(5), ms(1), ms(3)]), Some((ms(3), ms(5))));
        assert_eq!(
            median_max(&[ms(4), ms(1), ms(2), ms(8)]),
            Some((ms(3), ms(8)))
        );
        assert_eq!(median_max(&[]), None);
    }

    #[test]
    fn durations_are_formatted_by_magnitude() {
        assert_eq!(fmt_duration(Duration::from_micros(999)), "999 µs");
        assert_eq!(fmt_duration(Duration::from_micros(1500)), "1.50 ms");
        assert_eq!(fmt_duration(Duration::from_millis(2500)), "2.50 s");
        assert_eq!(fmt_kib(2048), "2.0 MiB");
    }

    #[test]
    fn report_renders_an_aligned_markdown_table_with_notes() {
        let mut r = Report::default();
        r.row("latency", "p50", "1.00 ms", "0.50 ms");
        r.row("burst", "frames/s", "12345", "—");
        r.note("measured on loopback");
        let text = r.render();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("| section"), "{text}");
        assert!(lines[1].starts_with("|---"), "{text}");
        assert!(
            lines[2].contains("| latency ") && lines[2].contains("| 0.50 ms"),
            "{text}"
        );
        assert!(lines[3].contains("12345"), "{text}");
        // Every table line has the same width (aligned columns).
        let widths: Vec<usize> = lines[..4].iter().map(|l| l.chars().count()).collect();
        assert!(widths.iter().all(|w| *w == widths[0]), "{text}");
        assert!(text.contains("- measured on loopback"), "{text}");
    }
}
