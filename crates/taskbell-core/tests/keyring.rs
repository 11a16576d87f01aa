//! The platform keyring as this machine has it: the Secret Service when one answers on the
//! session bus, else the kernel keyring. Either it round-trips a token, or it says clearly
//! why there is no keyring. (The end-to-end tests run it against a real gnome-keyring.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use taskbell_core::api::SecretToken;
use taskbell_core::credentials::{Backend, Credentials, CredentialsError};

#[test]
fn the_platform_keyring_round_trips_or_says_why_not() {
    let server = format!(
        "http://taskbell-keyring-test-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    match Credentials::open() {
        Ok(c) => {
            println!("keyring backend: {}", c.backend());
            assert!(matches!(
                c.backend(),
                Backend::SecretService | Backend::KernelKeyring
            ));
            assert!(c.load_token(&server, "tester").unwrap().is_none());
            c.store_token(&server, "tester", &SecretToken::new("tok-xyz".into()))
                .unwrap();
            c.store_password(&server, "tester", "pw").unwrap();
            // A second handle (as after a restart) sees the same secrets.
            let again = Credentials::open().unwrap();
            assert_eq!(
                again
                    .load_token(&server, "tester")
                    .unwrap()
                    .unwrap()
                    .expose(),
                "tok-xyz"
            );
            assert_eq!(
                again.load_password(&server, "tester").unwrap().as_deref(),
                Some("pw")
            );
            c.clear(&server, "tester").unwrap();
            assert!(again.load_token(&server, "tester").unwrap().is_none());
            assert!(again.load_password(&server, "tester").unwrap().is_none());
        }
        Err(CredentialsError::NoKeyring(why)) => {
            println!("no keyring here: {why}");
            assert!(
                why.contains("Secret Service") && why.contains("kernel keyring"),
                "{why}"
            );
        }
        Err(other) => panic!("unexpected keyring failure: {other}"),
    }
}
