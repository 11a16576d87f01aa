//! Guards a choice made in `Cargo.lock` that no manifest can express: the `blocking` crate
//! (pulled in by zbus's async-io backend) stays below 1.7. From 1.7.0 the last idle thread
//! of its pool never exits and wakes every 500 ms for good: 120 of the 176 idle wake-ups a
//! minute of `taskbell run` (docs/benchmarks.md, finding 10). 1.6 ends idle threads after
//! 500 ms. A `cargo update` that lifts it fails here, with the reason.

use std::path::Path;

#[test]
fn the_blocking_crate_stays_below_1_7() {
    let lock = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.lock");
    let text = std::fs::read_to_string(&lock).unwrap_or_else(|e| panic!("{}: {e}", lock.display()));
    let versions: Vec<&str> = text
        .split("[[package]]")
        .filter(|p| p.lines().any(|l| l.trim() == r#"name = "blocking""#))
        .filter_map(|p| {
            p.lines()
                .find_map(|l| l.trim().strip_prefix("version = "))
                .map(|v| v.trim_matches('"'))
        })
        .collect();
    assert!(
        !versions.is_empty(),
        "no blocking crate in Cargo.lock: drop this test"
    );
    for v in versions {
        let mut parts = v.split('.').map(|x| x.parse::<u32>().unwrap_or(u32::MAX));
        let (major, minor) = (parts.next(), parts.next());
        assert!(
            major == Some(1) && minor.is_some_and(|m| m < 7),
            "blocking {v} is in Cargo.lock: from 1.7 its idle thread wakes 120 times a minute \
             forever; keep it with `cargo update -p blocking --precise 1.6.2`"
        );
    }
}
