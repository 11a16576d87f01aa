//! Decodes every frame of the corpus in `tests/corpus/` (see its README):
//! good frames decode to the kind their directory names, bad ones give a
//! `DecodeError`, and nothing panics, not even on truncated or mutated frames.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers; a failure is the point

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use taskbell_core::protocol::{DecodeError, Inbound, MAX_FRAME_BYTES, decode, decode_bytes};

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/corpus")
}

/// Every file under `dir`, recursively, sorted.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// Decodes without letting a panic escape; a panic is reported as a failure
/// naming the input.
fn decode_no_panic(bytes: &[u8], what: &str) -> Result<Inbound, DecodeError> {
    catch_unwind(AssertUnwindSafe(|| decode_bytes(bytes)))
        .unwrap_or_else(|_| panic!("decode panicked on {what}"))
}

fn kind_of(i: &Inbound) -> String {
    match i {
        Inbound::Pong { .. } => "pong".to_owned(),
        Inbound::Ping { .. } => "ping".to_owned(),
        Inbound::Read { .. } => "read".to_owned(),
        Inbound::Notification(n) => n.kind.as_str().to_owned(),
    }
}

#[test]
fn good_frames_decode_to_their_kind() {
    let root = corpus_dir().join("good");
    let all = files(&root);
    assert!(
        all.len() >= 20,
        "the good corpus is missing: {}",
        root.display()
    );
    let mut kinds = std::collections::BTreeSet::new();
    for path in all {
        let expected = path
            .parent()
            .and_then(Path::file_name)
            .and_then(|s| s.to_str())
            .unwrap()
            .to_owned();
        let bytes = std::fs::read(&path).unwrap();
        let name = path.display().to_string();
        let got = decode_no_panic(&bytes, &name)
            .unwrap_or_else(|e| panic!("{name} should decode, got: {e}"));
        assert_eq!(kind_of(&got), expected, "{name}");
        if let Inbound::Notification(n) = &got {
            assert!(!n.key.is_empty(), "{name}: empty key");
            assert!(
                !(n.title.is_empty() && n.content.is_empty()),
                "{name}: nothing to show"
            );
            assert!(n.data.is_object(), "{name}: data is not an object");
            assert!(n.timestamp_ms > 0, "{name}: timestamp {}", n.timestamp_ms);
            // the key is stable: decoding again gives the same one
            let again = decode_no_panic(&bytes, &name).unwrap();
            assert_eq!(kind_of(&again), expected);
            if let Inbound::Notification(m) = again {
                assert_eq!(m.key, n.key, "{name}: key not stable");
            }
        }
        kinds.insert(expected);
    }
    for k in [
        "pong",
        "ping",
        "task_reviewed",
        "task_submitted",
        "task_assigned",
        "skip_requested",
        "mention",
        "system",
        "test",
        "group",
        "private",
        "read",
    ] {
        assert!(kinds.contains(k), "no good frame of kind {k}");
    }
}

#[test]
fn bad_frames_give_errors() {
    let root = corpus_dir().join("bad");
    let all = files(&root);
    assert!(
        all.len() >= 30,
        "the bad corpus is missing: {}",
        root.display()
    );
    for path in all {
        let bytes = std::fs::read(&path).unwrap();
        let name = path.display().to_string();
        match decode_no_panic(&bytes, &name) {
            Ok(v) => panic!("{name} should not decode, got {v:?}"),
            Err(e) => assert!(!e.to_string().is_empty(), "{name}: empty message"),
        }
    }
}

#[test]
fn a_frame_over_one_mib_is_refused_before_parsing() {
    let big = format!(
        r#"{{"type":"system","title":"t","content":"{}"}}"#,
        "长".repeat(MAX_FRAME_BYTES / 3 + 1)
    );
    assert!(big.len() > MAX_FRAME_BYTES);
    let e = decode(&big).unwrap_err();
    assert!(matches!(e, DecodeError::TooLarge { .. }), "{e}");
    assert!(e.to_string().contains("too large"), "{e}");
    let e = decode_bytes(big.as_bytes()).unwrap_err();
    assert!(matches!(e, DecodeError::TooLarge { .. }), "{e}");
    // just under the limit is fine
    let fits = format!(
        r#"{{"type":"system","title":"t","content":"{}"}}"#,
        "x".repeat(MAX_FRAME_BYTES - 64)
    );
    assert!(fits.len() <= MAX_FRAME_BYTES);
    assert!(decode(&fits).is_ok());
}

#[test]
fn truncated_and_mutated_frames_never_panic() {
    // A small deterministic fuzz over the whole corpus: every prefix of every
    // file, and single-byte mutations at every position.
    let mut decoded = 0usize;
    let mut failed = 0usize;
    for path in files(&corpus_dir()) {
        if path.extension().and_then(|e| e.to_str()) == Some("md") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        if bytes.len() > 4096 {
            continue;
        }
        let name = path.display().to_string();
        for cut in 0..bytes.len() {
            match decode_no_panic(&bytes[..cut], &format!("{name}[..{cut}]")) {
                Ok(_) => decoded += 1,
                Err(_) => failed += 1,
            }
        }
        for pos in 0..bytes.len() {
            for replacement in [b'"', b'{', b'}', b'\\', b'0', 0xff, b' '] {
                let mut m = bytes.clone();
                m[pos] = replacement;
                match decode_no_panic(&m, &format!("{name} with byte {pos} = {replacement:#x}")) {
                    Ok(_) => decoded += 1,
                    Err(_) => failed += 1,
                }
            }
        }
    }
    // Both outcomes occur: mutations inside strings keep frames decodable,
    // most truncations break them.
    assert!(decoded > 100, "decoded {decoded}");
    assert!(failed > 1000, "failed {failed}");
}

#[test]
fn random_frames_never_panic_and_reach_both_outcomes() {
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};
    use serde_json::{Map, Value, json};
    // Seeded, so a failure reproduces. Valid JSON objects with protocol
    // field names and values of every JSON type, so the decoder's field
    // handling (not only the JSON parser) is exercised.
    const TYPES: &[&str] = &[
        "task_reviewed",
        "task_submitted",
        "group",
        "private",
        "pong",
        "ping",
        "system",
        "weird",
    ];
    const KEYS: &[&str] = &[
        "id",
        "title",
        "content",
        "data",
        "task_id",
        "project_id",
        "timestamp",
        "created_at",
        "priority",
        "group_id",
        "from_user_id",
        "server_time",
    ];
    let values = [
        json!(null),
        json!(true),
        json!(0),
        json!(-1),
        json!(1_698_739_200),
        json!(1_699_012_345_678_i64),
        json!(1.5),
        json!(u64::MAX),
        json!(""),
        json!("任务审核结果 😀"),
        json!("2024-01-01 12:00:00"),
        json!("2024-01-01T12:00:00Z"),
        json!("urgent"),
        json!("../../evil"),
        json!([1, "a"]),
        json!({"task_id": 7, "status": "rejected"}),
        json!({"task_id": {"deep": [null]}}),
    ];
    let mut rng = StdRng::seed_from_u64(20_261_121);
    let (mut decoded, mut failed) = (0usize, 0usize);
    for round in 0..20_000 {
        let mut m = Map::new();
        if rng.random_bool(0.9) {
            m.insert(
                "type".into(),
                json!(TYPES[rng.random_range(0..TYPES.len())]),
            );
        }
        for _ in 0..rng.random_range(0..8) {
            let k = KEYS[rng.random_range(0..KEYS.len())];
            m.insert(k.into(), values[rng.random_range(0..values.len())].clone());
        }
        let text = Value::Object(m).to_string();
        match decode_no_panic(text.as_bytes(), &format!("round {round}: {text}")) {
            Ok(_) => decoded += 1,
            Err(e) => {
                assert!(!e.to_string().is_empty());
                failed += 1;
            }
        }
    }
    println!("random frames: {decoded} decoded, {failed} refused");
    assert!(
        decoded > 1000 && failed > 1000,
        "{decoded} decoded, {failed} refused"
    );
}
