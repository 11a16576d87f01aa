//! Fuzzes the REST answer decoder: the first byte picks the HTTP status and the
//! endpoint, the rest is the body, through `api::decode_fuzz_input` (envelope, then
//! the typed data). It must never panic, and every error must render as a message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use taskbell_core::api::decode_fuzz_input;

fuzz_target!(|data: &[u8]| {
    if let Some(Err(e)) = decode_fuzz_input(data) {
        let _ = e.to_string();
    }
});
