//! Fuzzes the protocol decoder: raw bytes through `decode_bytes`, and (when they are UTF-8)
//! the same text through `decode` and the pure `decode_at` at two clock values. None may panic;
//! `decode` and `decode_at` must agree on success vs error for the same input and clock-free
//! frames.
#![no_main]

use libfuzzer_sys::fuzz_target;
use taskbell_core::protocol::{decode, decode_at, decode_bytes};

fuzz_target!(|data: &[u8]| {
    let from_bytes = decode_bytes(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let a = decode(text);
        let b = decode_at(text, 0);
        let c = decode_at(text, 4_102_444_800_000);
        // Whether a frame is valid must not depend on the clock.
        assert_eq!(a.is_ok(), b.is_ok(), "decode vs decode_at(0) on {text:?}");
        assert_eq!(
            b.is_ok(),
            c.is_ok(),
            "decode_at(0) vs decode_at(2100) on {text:?}"
        );
        assert_eq!(
            from_bytes.is_ok(),
            a.is_ok(),
            "decode_bytes vs decode on {text:?}"
        );
    }
});
