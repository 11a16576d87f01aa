//! Replays the cargo-fuzz corpus (`tests/corpus/fuzz/`, minimised, crash-free when it was
//! committed) through the decoder: no input may panic, and `decode_bytes` must agree with
//! `decode` on every input that is UTF-8 (the same properties `fuzz/fuzz_targets/decode.rs`
//! checks while fuzzing).

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
