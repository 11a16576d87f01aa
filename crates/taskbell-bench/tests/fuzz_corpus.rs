//! Replays the cargo-fuzz corpora (minimised, crash-free when committed) through what they
//! fuzz: the frame decoder (`tests/corpus/fuzz/`: no input may panic, and `decode_bytes` must
//! agree with `decode` on every input that is UTF-8, as `fuzz/fuzz_targets/decode.rs` checks),
//! the REST answer decoder (`tests/corpus/envelope/`) and the config parser
//! (`tests/corpus/config/`).

use std::path::Path;

use taskbell_core::protocol::{decode, decode_at, decode_bytes};

#[test]
fn every_fuzz_input_decodes_or_errs_without_panicking() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/corpus/fuzz");
    let mut n = 0;
    let mut ok = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let from_bytes = decode_bytes(&bytes);
        if let Ok(text) = std::str::from_utf8(&bytes) {
            let a = decode(text);
            assert_eq!(from_bytes.is_ok(), a.is_ok(), "{}", path.display());
            assert_eq!(
                decode_at(text, 0).is_ok(),
                decode_at(text, 4_102_444_800_000).is_ok(),
                "{}",
                path.display()
            );
        }
        n += 1;
        ok += usize::from(from_bytes.is_ok());
    }
    // The corpus is there, and it covers both outcomes.
    assert!(n >= 100, "only {n} inputs in {}", dir.display());
    assert!(ok > 0 && ok < n, "{ok} of {n} decoded");
}

/// The envelope fuzzer's corpus (`tests/corpus/envelope/`): every REST answer decodes or is a
/// clear error, never a panic (the property `fuzz/fuzz_targets/envelope.rs` checks).
#[test]
fn every_envelope_input_decodes_or_errs_without_panicking() {
    use taskbell_core::api::decode_fuzz_input;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/corpus/envelope");
    let (mut n, mut ok) = (0, 0);
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        match decode_fuzz_input(&bytes) {
            None => continue,
            Some(Ok(())) => ok += 1,
            Some(Err(e)) => assert!(!e.to_string().is_empty()),
        }
        n += 1;
    }
    assert!(n >= 10, "only {n} inputs in {}", dir.display());
    assert!(ok > 0 && ok < n, "{ok} of {n} decoded");
}

/// The config fuzzer's corpus (`tests/corpus/config/`): every text is a config that saves and
/// loads back the same, or a clear error, never a panic.
#[test]
fn every_config_input_parses_or_errs_and_round_trips() {
    use taskbell_core::config::Config;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/corpus/config");
    let (mut n, mut ok) = (0, 0);
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let Ok(text) = std::str::from_utf8(&bytes) else {
            continue;
        };
        match Config::from_toml(text) {
            Ok(c) => {
                let saved = c.to_toml().unwrap();
                assert_eq!(Config::from_toml(&saved).unwrap(), c, "{}", path.display());
                ok += 1;
            }
            Err(e) => assert!(!e.to_string().is_empty()),
        }
        n += 1;
    }
    assert!(n >= 5, "only {n} inputs in {}", dir.display());
    assert!(ok > 0 && ok < n, "{ok} of {n} parsed");
}
