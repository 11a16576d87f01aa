//! Tokens (and, when the user opts in, passwords) in the OS keyring.
//!
//! Built on [`keyring_core`] with pluggable stores. On Linux the Secret Service
//! (gnome-keyring, KWallet, KeePassXC…) is tried first; when none answers on the
//! session bus, the kernel keyring (keyutils) is used instead and the choice is
//! logged and reported by [`Credentials::backend`]. A secret is never written to
//! a plaintext file, and never logged.
//!
//! Every call here is blocking (D-Bus round trips): async code calls it through
//! `tokio::task::spawn_blocking`.

use std::fmt;
use std::sync::Arc;

use keyring_core::{CredentialStore, Entry, Error as KeyringError};

use crate::api::SecretToken;

/// Which keyring backend holds the secrets.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// The freedesktop Secret Service on the session D-Bus (gnome-keyring, KWallet…).
    SecretService,
    /// The Linux kernel keyring (keyutils): kept in kernel memory until reboot or logout.
    KernelKeyring,
    /// The Windows Credential Manager (generic credentials of the user).
    WindowsCredentialManager,
    /// The macOS login Keychain.
    MacosKeychain,
    /// An in-process store that forgets everything at exit (tests only).
    Memory,
    /// A store supplied by the caller, described by its vendor string.
    Other(String),
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Backend::SecretService => f.write_str("Secret Service"),
            Backend::KernelKeyring => f.write_str("Linux kernel keyring (keyutils)"),
            Backend::WindowsCredentialManager => f.write_str("Windows Credential Manager"),
            Backend::MacosKeychain => f.write_str("macOS Keychain"),
            Backend::Memory => f.write_str("in-memory store (nothing is kept after exit)"),
            Backend::Other(v) => write!(f, "{v}"),
        }
    }
}

/// What went wrong with the keyring.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// No keyring backend could be opened at all.
    #[error(
        "no keyring is available ({0}); TaskBell keeps tokens only in the OS keyring \
         (Secret Service or the kernel keyring on Linux, Credential Manager on Windows, \
         the Keychain on macOS) and never in a file"
    )]
    NoKeyring(String),
    /// The keyring is there but refused access (locked, or the user said no).
    #[error("the keyring refused access: {0}")]
    Access(String),
    /// Any other keyring failure.
    #[error("keyring error: {0}")]
    Backend(String),
}

impl From<KeyringError> for CredentialsError {
    fn from(e: KeyringError) -> Self {
        match e {
            KeyringError::NoStorageAccess(inner) => CredentialsError::Access(inner.to_string()),
            KeyringError::NoDefaultStore => {
                CredentialsError::NoKeyring("no credential store configured".to_string())
            }
            other => CredentialsError::Backend(other.to_string()),
        }
    }
}

/// Access to the secrets of TaskBell accounts, one entry per (server, username) and kind.
#[derive(Clone)]
pub struct Credentials {
    store: Arc<CredentialStore>,
    backend: Backend,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("backend", &self.backend)
            .finish()
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Token,
    Password,
}

fn service_name(kind: Kind, server: &str) -> String {
    let server = server.trim_end_matches('/');
    match kind {
        Kind::Token => format!("taskbell-token:{server}"),
        Kind::Password => format!("taskbell-password:{server}"),
    }
}

impl Credentials {
    /// Opens the platform keyring: on Linux the Secret Service if one answers on the
    /// session bus, else the kernel keyring. Logs which one is used.
    pub fn open() -> Result<Credentials, CredentialsError> {
        Self::open_platform()
    }

    #[cfg(target_os = "linux")]
    fn open_platform() -> Result<Credentials, CredentialsError> {
        let ss_problem = match zbus_secret_service_keyring_store::Store::new() {
            Ok(store) => {
                let store: Arc<CredentialStore> = store;
                match probe(&store) {
                    Ok(()) => {
                        tracing::info!(
                            backend = "secret-service",
                            "using the Secret Service keyring"
                        );
                        return Ok(Credentials {
                            store,
                            backend: Backend::SecretService,
                        });
                    }
                    Err(e) => e,
                }
            }
            Err(e) => e.to_string(),
        };
        match linux_keyutils_keyring_store::Store::new() {
            Ok(store) => {
                let store: Arc<CredentialStore> = store;
                match probe(&store) {
                    Ok(()) => {
                        tracing::warn!(
                            backend = "keyutils",
                            secret_service_problem = %ss_problem,
                            "no Secret Service on the session bus; using the Linux kernel keyring \
                             (secrets last until reboot)"
                        );
                        Ok(Credentials {
                            store,
                            backend: Backend::KernelKeyring,
                        })
                    }
                    Err(e) => Err(CredentialsError::NoKeyring(format!(
                        "Secret Service: {ss_problem}; kernel keyring: {e}"
                    ))),
                }
            }
            Err(e) => Err(CredentialsError::NoKeyring(format!(
                "Secret Service: {ss_problem}; kernel keyring: {e}"
            ))),
        }
    }

    #[cfg(target_os = "windows")]
    fn open_platform() -> Result<Credentials, CredentialsError> {
        let store: Arc<CredentialStore> = windows_native_keyring_store::Store::new()
            .map_err(|e| CredentialsError::NoKeyring(format!("Windows Credential Manager: {e}")))?;
        probe(&store)
            .map_err(|e| CredentialsError::NoKeyring(format!("Windows Credential Manager: {e}")))?;
        tracing::info!(backend = "windows", "using the Windows Credential Manager");
        Ok(Credentials {
            store,
            backend: Backend::WindowsCredentialManager,
        })
    }

    #[cfg(target_os = "macos")]
    fn open_platform() -> Result<Credentials, CredentialsError> {
        let store: Arc<CredentialStore> = apple_native_keyring_store::keychain::Store::new()
            .map_err(|e| CredentialsError::NoKeyring(format!("macOS Keychain: {e}")))?;
        probe(&store).map_err(|e| CredentialsError::NoKeyring(format!("macOS Keychain: {e}")))?;
        tracing::info!(backend = "keychain", "using the macOS Keychain");
        Ok(Credentials {
            store,
            backend: Backend::MacosKeychain,
        })
    }

    #[cfg(not(any(target_os = "linux", target_os = "windows", target_os = "macos")))]
    fn open_platform() -> Result<Credentials, CredentialsError> {
        Err(CredentialsError::NoKeyring(
            "this build of TaskBell knows the keyrings of Linux, Windows and macOS only"
                .to_string(),
        ))
    }

    /// The keyrings [`Credentials::open`] tries on this OS, in order, as the status
    /// line names them.
    pub fn platform_keyrings() -> &'static [Backend] {
        #[cfg(target_os = "linux")]
        const KEYRINGS: &[Backend] = &[Backend::SecretService, Backend::KernelKeyring];
        #[cfg(target_os = "windows")]
        const KEYRINGS: &[Backend] = &[Backend::WindowsCredentialManager];
        #[cfg(target_os = "macos")]
        const KEYRINGS: &[Backend] = &[Backend::MacosKeychain];
        #[cfg(not(any(target_os = "linux", target_os = "windows", target_os = "macos")))]
        const KEYRINGS: &[Backend] = &[];
        KEYRINGS
    }

    /// An in-process store shared by all clones of the returned value; it forgets
    /// everything when the last clone is dropped. For tests and demos.
    pub fn in_memory() -> Credentials {
        match keyring_core::mock::Store::new() {
            Ok(store) => Credentials {
                store,
                backend: Backend::Memory,
            },
            // `mock::Store::new` cannot fail; keep a clear path anyway.
            Err(_) => Credentials::with_store(
                Arc::new(EmptyStore),
                Backend::Other("unavailable".to_string()),
            ),
        }
    }

    /// Uses a caller-supplied keyring store.
    pub fn with_store(store: Arc<CredentialStore>, backend: Backend) -> Credentials {
        Credentials { store, backend }
    }

    /// Which backend holds the secrets.
    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    fn entry(&self, kind: Kind, server: &str, user: &str) -> Result<Entry, CredentialsError> {
        Ok(self.store.build(&service_name(kind, server), user, None)?)
    }

    fn set(
        &self,
        kind: Kind,
        server: &str,
        user: &str,
        secret: &str,
    ) -> Result<(), CredentialsError> {
        self.entry(kind, server, user)?.set_password(secret)?;
        Ok(())
    }

    fn get(
        &self,
        kind: Kind,
        server: &str,
        user: &str,
    ) -> Result<Option<String>, CredentialsError> {
        match self.entry(kind, server, user)?.get_password() {
            Ok(s) => Ok(Some(s)),
            Err(KeyringError::NoEntry) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn delete(&self, kind: Kind, server: &str, user: &str) -> Result<(), CredentialsError> {
        match self.entry(kind, server, user)?.delete_credential() {
            Ok(()) | Err(KeyringError::NoEntry) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Stores the access token of `user` on `server`.
    pub fn store_token(
        &self,
        server: &str,
        user: &str,
        token: &SecretToken,
    ) -> Result<(), CredentialsError> {
        self.set(Kind::Token, server, user, token.expose())
    }

    /// The stored access token, `None` when there is none.
    pub fn load_token(
        &self,
        server: &str,
        user: &str,
    ) -> Result<Option<SecretToken>, CredentialsError> {
        Ok(self.get(Kind::Token, server, user)?.map(SecretToken::new))
    }

    /// Forgets only the token (after the server rejected it), keeping a remembered password.
    pub fn clear_token(&self, server: &str, user: &str) -> Result<(), CredentialsError> {
        self.delete(Kind::Token, server, user)
    }

    /// Stores the password ("remember me").
    pub fn store_password(
        &self,
        server: &str,
        user: &str,
        password: &str,
    ) -> Result<(), CredentialsError> {
        self.set(Kind::Password, server, user, password)
    }

    /// The remembered password, `None` when the user did not opt in.
    pub fn load_password(
        &self,
        server: &str,
        user: &str,
    ) -> Result<Option<String>, CredentialsError> {
        self.get(Kind::Password, server, user)
    }

    /// Forgets the remembered password.
    pub fn clear_password(&self, server: &str, user: &str) -> Result<(), CredentialsError> {
        self.delete(Kind::Password, server, user)
    }

    /// Forgets token and password of `user` on `server`. Missing entries are fine.
    pub fn clear(&self, server: &str, user: &str) -> Result<(), CredentialsError> {
        let a = self.delete(Kind::Token, server, user);
        let b = self.delete(Kind::Password, server, user);
        a.and(b)
    }
}

/// Reads an entry that does not exist: `NoEntry` proves the store answers.
fn probe(store: &Arc<CredentialStore>) -> Result<(), String> {
    let entry = store
        .build("taskbell-probe", "taskbell-probe", None)
        .map_err(|e| e.to_string())?;
    match entry.get_password() {
        Ok(_) | Err(KeyringError::NoEntry) => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

/// A store that refuses everything; only used if the in-memory store cannot be built.
#[derive(Debug)]
struct EmptyStore;

impl keyring_core::api::CredentialStoreApi for EmptyStore {
    fn vendor(&self) -> String {
        "TaskBell empty store".to_string()
    }
    fn id(&self) -> String {
        "empty".to_string()
    }
    fn build(
        &self,
        _service: &str,
        _user: &str,
        _modifiers: Option<&std::collections::HashMap<&str, &str>>,
    ) -> keyring_core::Result<Entry> {
        Err(KeyringError::NoDefaultStore)
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// Runs keyring work on the blocking pool (D-Bus round trips must not stall an async
/// thread).
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, CredentialsError> + Send + 'static,
) -> Result<T, CredentialsError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) => Err(CredentialsError::Backend(format!(
            "keyring task failed: {e}"
        ))),
    }
}

impl Credentials {
    /// Whether the account `config` names can sign in without asking: a token, or a
    /// remembered password with `remember_me`. Blocking (see [`blocking`]).
    pub fn can_sign_in(&self, config: &crate::config::Config) -> Result<bool, CredentialsError> {
        let (Some(server), Some(user)) = (&config.server, &config.username) else {
            return Ok(false);
        };
        if self.load_token(server, user)?.is_some() {
            return Ok(true);
        }
        Ok(config.remember_me && self.load_password(server, user)?.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What every store must do, whichever OS it belongs to: one entry per (server,
    /// user) and kind, a trailing slash is the same server, clones share the store, and
    /// clearing is idempotent. `tag` keeps runs against a real keyring apart.
    fn round_trip_contract(c: &Credentials, tag: &str) {
        let a = format!("http://a-{tag}");
        let b = format!("http://b-{tag}");
        let t = SecretToken::new(format!("tok-{tag}"));
        c.store_token(&a, "alice", &t).unwrap();
        assert_eq!(
            c.load_token(&a, "alice").unwrap().unwrap().expose(),
            format!("tok-{tag}")
        );
        assert!(c.load_token(&format!("{a}/"), "alice").unwrap().is_some());
        assert!(c.load_token(&a, "bob").unwrap().is_none());
        assert!(c.load_token(&b, "alice").unwrap().is_none());
        assert!(c.load_password(&a, "alice").unwrap().is_none());
        c.store_password(&a, "alice", "pw").unwrap();
        let c2 = c.clone();
        assert_eq!(
            c2.load_password(&a, "alice").unwrap().as_deref(),
            Some("pw")
        );
        c2.clear_token(&a, "alice").unwrap();
        assert!(c.load_token(&a, "alice").unwrap().is_none());
        assert!(c.load_password(&a, "alice").unwrap().is_some());
        c.clear(&a, "alice").unwrap();
        assert!(c.load_password(&a, "alice").unwrap().is_none());
        c.clear(&a, "alice").unwrap();
    }

    #[test]
    fn can_sign_in_with_a_token_or_a_remembered_password_only() {
        let c = Credentials::in_memory();
        let mut config = crate::config::Config {
            server: Some("http://a".into()),
            username: Some("alice".into()),
            ..crate::config::Config::default()
        };
        assert!(!c.can_sign_in(&config).unwrap());
        c.store_password("http://a", "alice", "pw").unwrap();
        assert!(
            !c.can_sign_in(&config).unwrap(),
            "a password without remember_me"
        );
        config.remember_me = true;
        assert!(c.can_sign_in(&config).unwrap());
        config.remember_me = false;
        c.store_token("http://a", "alice", &SecretToken::new("t".into()))
            .unwrap();
        assert!(c.can_sign_in(&config).unwrap());
        assert!(!c.can_sign_in(&crate::config::Config::default()).unwrap());
    }

    #[test]
    fn in_memory_round_trip_per_server_and_user() {
        let c = Credentials::in_memory();
        assert_eq!(c.backend(), &Backend::Memory);
        round_trip_contract(&c, "mem");
    }

    /// The same contract against this OS's own keyring (Windows Credential Manager,
    /// macOS Keychain, Secret Service). Ignored by default: it writes to the user's real
    /// keyring. The hosted CI runs it on Windows and macOS (`--run-ignored`); on Linux
    /// the end-to-end tests cover gnome-keyring through the real binaries.
    #[test]
    #[ignore = "writes to the OS keyring; run with --run-ignored on a machine that has one"]
    fn os_keyring_round_trip() {
        let c = Credentials::open().unwrap();
        assert_ne!(c.backend(), &Backend::Memory);
        let tag = format!("ci-{}", std::process::id());
        round_trip_contract(&c, &tag);
    }

    /// Each OS opens its own keyring: on Linux the Secret Service, else the kernel
    /// keyring; never the in-memory store.
    #[test]
    fn the_platform_seam_names_this_oss_keyrings() {
        let names = Credentials::platform_keyrings();
        #[cfg(target_os = "linux")]
        assert_eq!(names, [Backend::SecretService, Backend::KernelKeyring]);
        #[cfg(target_os = "windows")]
        assert_eq!(names, [Backend::WindowsCredentialManager]);
        #[cfg(target_os = "macos")]
        assert_eq!(names, [Backend::MacosKeychain]);
        assert!(!names.contains(&Backend::Memory));
    }

    #[test]
    fn debug_never_shows_secrets() {
        let c = Credentials::in_memory();
        c.store_token("http://a", "alice", &SecretToken::new("sekrit".into()))
            .unwrap();
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("sekrit"), "{dbg}");
    }

    #[test]
    fn empty_store_gives_clear_error() {
        let c = Credentials::with_store(Arc::new(EmptyStore), Backend::Other("x".into()));
        let err = c.load_token("http://a", "alice").unwrap_err();
        assert!(matches!(err, CredentialsError::NoKeyring(_)), "{err}");
        assert!(err.to_string().contains("never in a file"), "{err}");
    }
}
