//! Fuzzes the config parser: any text through `Config::from_toml` must be a config
//! or a clear error, never a panic; a config it accepts must save and load back
//! as the same config.
#![no_main]

use libfuzzer_sys::fuzz_target;
use taskbell_core::config::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Config::from_toml(text) {
        Ok(config) => {
            let saved = config.to_toml().expect("an accepted config serialises");
            let again = Config::from_toml(&saved).expect("a saved config loads");
            assert_eq!(config, again, "round trip of {text:?}");
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
