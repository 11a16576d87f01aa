//! Fuzzes the REST answer decoder: the first byte picks the HTTP status and the
//! endpoint, the rest is the body, through `api::decode_answer` (envelope, then the
//! typed data). It must never panic, and every error must render as a message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use taskbell_core::api::{Expect, decode_answer};

const STATUSES: [u16; 8] = [200, 201, 204, 400, 401, 404, 429, 500];
const EXPECT: [Expect; 5] = [
    Expect::Login,
    Expect::User,
    Expect::Tasks,
    Expect::SkipRequests,
    Expect::Notifications,
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let status = STATUSES[usize::from(pick & 7)];
    let expect = EXPECT[usize::from(pick >> 3) % EXPECT.len()];
    if let Err(e) = decode_answer(status, body, expect) {
        let _ = e.to_string();
    }
});
