//! Several accounts: each (server, user) with its own engine, keyring entries,
//! cursor, history and pause.
//!
//! # Layout
//!
//! The **first account** lives where a single account always lived: its server and
//! user name in the main `config.toml`, its history and state in the data dir. A
//! config from before accounts existed is therefore already the first account: it
//! migrates without a word and without moving a file.
//!
//! Every **further account** gets a directory of its own under `accounts/<id>` in
//! both the config and the data dir ([`Paths::account`]). Its `config.toml` holds
//! only what belongs to the account (server, user name, remember me, its pause);
//! every other setting (heartbeat, quiet hours, proxy, …) comes from the main
//! `config.toml`, so one settings change applies to all accounts
//! ([`Paths::load_config`] layers the two).
//!
//! An account's id is `user@host` (`user@host_port` with a port), made file-name
//! safe; it names the account in `taskbell accounts`, `taskbell logout ACCOUNT`,
//! the events of `taskbell run` and the toasts when there is more than one.

use std::path::PathBuf;

use serde::Serialize;

use crate::config::{Config, ConfigError, Paths, parse_server_url};
use crate::delivery::{Toast, ToastCard};
use crate::notifier::{ActionSink, Notifier, NotifyError};

/// The directory (under the config and the data dir) that holds further accounts.
pub const ACCOUNTS_DIR: &str = "accounts";

/// One configured account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Account {
    /// `user@host`: what commands and events call it.
    pub id: String,
    /// The platform base URL.
    pub server: String,
    /// The user name.
    pub username: String,
    /// Whether this is the first account (main `config.toml`, data dir itself).
    pub primary: bool,
    /// Where its config and data live.
    #[serde(skip)]
    pub paths: Paths,
}

/// What went wrong finding an account.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// No account matches the name given.
    #[error("no account {given:?}; accounts: {known}")]
    Unknown {
        /// What the user typed.
        given: String,
        /// The ids there are (or "none").
        known: String,
    },
    /// Several accounts match (a bare user name on two servers).
    #[error("{given:?} names several accounts ({matches}); give the full user@host")]
    Ambiguous {
        /// What the user typed.
        given: String,
        /// The ids it matches.
        matches: String,
    },
    /// Reading a config failed.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// `user@host[_port]` for `server` and `username`, safe as a file name: letters,
/// digits, `.`, `-`, `_` and `@`; anything else becomes `_`.
pub fn account_id(server: &str, username: &str) -> String {
    let host = url::Url::parse(server)
        .ok()
        .map(|u| match (u.host_str(), u.port()) {
            (Some(h), Some(p)) => format!("{h}_{p}"),
            (Some(h), None) => h.to_string(),
            _ => server.to_string(),
        })
        .unwrap_or_else(|| server.to_string());
    let safe = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_alphanumeric() || matches!(c, '.' | '-' | '_') {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    format!("{}@{}", safe(username), safe(&host))
}

impl Paths {
    /// Where the further account `id` lives: `accounts/<id>` under both dirs.
    pub fn account(&self, id: &str) -> Paths {
        Paths {
            config_dir: self.config_dir.join(ACCOUNTS_DIR).join(id),
            data_dir: self.data_dir.join(ACCOUNTS_DIR).join(id),
        }
    }

    /// The main config file whose settings this account inherits, when these are a
    /// further account's paths (`…/accounts/<id>`).
    fn main_config_file(&self) -> Option<PathBuf> {
        let parent = self.config_dir.parent()?;
        (parent.file_name()? == ACCOUNTS_DIR)
            .then(|| parent.parent().map(|p| p.join("config.toml")))?
    }

    /// The effective config of the account these paths belong to: the main
    /// `config.toml` as it is for the first account; for a further account the main
    /// file's settings with the account's own server, user name, remember me and pause.
    pub fn load_config(&self) -> Result<Config, ConfigError> {
        let own = Config::load(&self.config_file())?;
        let Some(main) = self.main_config_file() else {
            return Ok(own);
        };
        let mut merged = Config::load(&main)?;
        merged.server = own.server;
        merged.username = own.username;
        merged.remember_me = own.remember_me;
        merged.paused_until_ms = own.paused_until_ms;
        Ok(merged)
    }
}

fn normalized(server: &str) -> String {
    server.trim_end_matches('/').to_ascii_lowercase()
}

fn same_identity(config: &Config, server: &str, username: &str) -> bool {
    config.server.as_deref().map(normalized) == Some(normalized(server))
        && config.username.as_deref() == Some(username)
}

/// Every configured account: the first (from the main config, when it names a
/// server and user) and then the further ones by id.
pub fn list(main: &Paths) -> Result<Vec<Account>, ConfigError> {
    let mut out = Vec::new();
    let config = Config::load(&main.config_file())?;
    if let (Some(server), Some(username)) = (config.server, config.username) {
        out.push(Account {
            id: account_id(&server, &username),
            server,
            username,
            primary: true,
            paths: main.clone(),
        });
    }
    let dir = main.config_dir.join(ACCOUNTS_DIR);
    let mut ids: Vec<String> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .filter(|e| e.path().join("config.toml").is_file())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(source) => {
            return Err(ConfigError::Io {
                action: "read",
                path: dir,
                source,
            });
        }
    };
    ids.sort();
    for id in ids {
        let paths = main.account(&id);
        let own = Config::load(&paths.config_file())?;
        if let (Some(server), Some(username)) = (own.server, own.username) {
            out.push(Account {
                id,
                server,
                username,
                primary: false,
                paths,
            });
        }
    }
    Ok(out)
}

/// Where signing in as `username` on `server` keeps its files: the account that
/// already has that identity; else the first account's place when the main config
/// names nobody yet; else a new further account. `allow_insecure` is the main
/// config's (the server URL is checked the same way sign-in checks it).
pub fn locate(main: &Paths, server: &str, username: &str) -> Result<Paths, ConfigError> {
    let config = Config::load(&main.config_file())?;
    let url = parse_server_url(server, config.allow_insecure)?;
    let server = url.as_str().trim_end_matches('/');
    if config.server.is_none() || config.username.is_none() {
        return Ok(main.clone());
    }
    if same_identity(&config, server, username) {
        return Ok(main.clone());
    }
    for account in list(main)? {
        if !account.primary
            && normalized(&account.server) == normalized(server)
            && account.username == username
        {
            return Ok(account.paths);
        }
    }
    Ok(main.account(&account_id(server, username)))
}

/// The account `given` names: its id (`user@host`), or a user name that only one
/// account has.
pub fn find(main: &Paths, given: &str) -> Result<Account, AccountError> {
    let all = list(main)?;
    if let Some(a) = all.iter().find(|a| a.id == given) {
        return Ok(a.clone());
    }
    let by_user: Vec<&Account> = all.iter().filter(|a| a.username == given).collect();
    match by_user.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(AccountError::Unknown {
            given: given.to_string(),
            known: ids(&all),
        }),
        many => Err(AccountError::Ambiguous {
            given: given.to_string(),
            matches: many
                .iter()
                .map(|a| a.id.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// The ids of `accounts`, comma-separated ("none" when empty).
pub fn ids(accounts: &[Account]) -> String {
    if accounts.is_empty() {
        "none".to_string()
    } else {
        accounts
            .iter()
            .map(|a| a.id.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A notifier that names the account on every toast ("zhangsan@a.example · title"),
/// for when several accounts run side by side. Give each account's engine a
/// notifier of its own inside: a notifier reports toast actions (Mark read,
/// Snooze) to the one engine attached to it.
pub struct Labelled {
    label: String,
    inner: std::sync::Arc<dyn Notifier>,
}

impl Labelled {
    /// Wraps `inner`; toasts get `label` in front of their title.
    pub fn new(label: impl Into<String>, inner: std::sync::Arc<dyn Notifier>) -> Labelled {
        Labelled {
            label: label.into(),
            inner,
        }
    }
}

impl Labelled {
    fn named(&self, toast: &Toast) -> Toast {
        let mut named = toast.clone();
        named.title = format!("{} · {}", self.label, toast.title);
        named
    }
}

impl Notifier for Labelled {
    fn show(&self, toast: &Toast) -> Result<(), NotifyError> {
        self.inner.show(&self.named(toast))
    }

    fn show_card(&self, card: &ToastCard) -> Result<(), NotifyError> {
        let mut named = card.clone();
        named.toast = self.named(&card.toast);
        self.inner.show_card(&named)
    }

    fn withdraw(&self, keys: &[String]) -> Result<(), NotifyError> {
        self.inner.withdraw(keys)
    }

    fn attach(&self, sink: ActionSink) {
        self.inner.attach(sink);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn main_paths(dir: &Path) -> Paths {
        Paths {
            config_dir: dir.join("config"),
            data_dir: dir.join("data"),
        }
    }

    fn write(paths: &Paths, server: &str, user: &str) {
        Config::update(&paths.config_file(), |c| {
            c.server = Some(server.into());
            c.username = Some(user.into());
            Ok::<_, ConfigError>(())
        })
        .unwrap();
    }

    #[test]
    fn ids_are_user_at_host_and_file_name_safe() {
        assert_eq!(
            account_id("https://annotate.example.com", "zhangsan"),
            "zhangsan@annotate.example.com"
        );
        assert_eq!(
            account_id("http://127.0.0.1:8080/", "li si"),
            "li_si@127.0.0.1_8080"
        );
        assert_eq!(account_id("http://h", "../x/y"), ".._x_y@h");
        assert!(!account_id("http://h", "a/b").contains('/'));
    }

    #[test]
    fn a_single_account_config_is_the_first_account_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let main = main_paths(dir.path());
        assert_eq!(list(&main).unwrap(), vec![]);
        // A config written before accounts existed.
        std::fs::create_dir_all(&main.config_dir).unwrap();
        std::fs::write(
            main.config_file(),
            "server = \"https://a.example\"\nusername = \"zhangsan\"\nremember_me = true\n",
        )
        .unwrap();
        let all = list(&main).unwrap();
        assert_eq!(all.len(), 1);
        assert!(all[0].primary);
        assert_eq!(all[0].id, "zhangsan@a.example");
        assert_eq!(all[0].paths, main, "its files stay where they were");
        assert_eq!(
            main.load_config().unwrap().username.as_deref(),
            Some("zhangsan")
        );
        // Signing in again as the same user keeps the same place.
        assert_eq!(
            locate(&main, "https://a.example/", "zhangsan").unwrap(),
            main
        );
    }

    #[test]
    fn further_accounts_get_their_own_dirs_and_inherit_the_settings() {
        let dir = tempfile::tempdir().unwrap();
        let main = main_paths(dir.path());
        // Nobody configured: the first sign-in takes the main place.
        assert_eq!(
            locate(&main, "http://127.0.0.1:1", "zhangsan").unwrap(),
            main
        );
        write(&main, "http://127.0.0.1:1", "zhangsan");
        Config::update(&main.config_file(), |c| {
            c.heartbeat_interval_secs = 45;
            c.paused_until_ms = Some(1);
            Ok::<_, ConfigError>(())
        })
        .unwrap();
        let second = locate(&main, "http://127.0.0.1:2", "lisi").unwrap();
        assert_eq!(second, main.account("lisi@127.0.0.1_2"));
        assert!(second.main_config_file().is_some());
        assert!(main.main_config_file().is_none());
        write(&second, "http://127.0.0.1:2", "lisi");
        // The further account: its identity, the main settings, its own pause.
        let eff = second.load_config().unwrap();
        assert_eq!(eff.server.as_deref(), Some("http://127.0.0.1:2"));
        assert_eq!(eff.username.as_deref(), Some("lisi"));
        assert_eq!(eff.heartbeat_interval_secs, 45);
        assert_eq!(eff.paused_until_ms, None);
        // Found again by identity, by id and by a unique user name.
        assert_eq!(
            locate(&main, "http://127.0.0.1:2/", "lisi").unwrap(),
            second
        );
        let all = list(&main).unwrap();
        assert_eq!(
            all.iter()
                .map(|a| (a.id.as_str(), a.primary))
                .collect::<Vec<_>>(),
            [("zhangsan@127.0.0.1_1", true), ("lisi@127.0.0.1_2", false)]
        );
        assert_eq!(find(&main, "lisi").unwrap().paths, second);
        assert_eq!(find(&main, "zhangsan@127.0.0.1_1").unwrap().paths, main);
        // The same user on a third server: the bare name is ambiguous now.
        let third = locate(&main, "http://127.0.0.1:3", "lisi").unwrap();
        write(&third, "http://127.0.0.1:3", "lisi");
        let e = find(&main, "lisi").unwrap_err();
        assert!(matches!(e, AccountError::Ambiguous { .. }), "{e}");
        let e = find(&main, "wangwu").unwrap_err();
        assert!(e.to_string().contains("zhangsan@127.0.0.1_1"), "{e}");
    }

    #[test]
    fn labelled_toasts_name_the_account() {
        #[derive(Default)]
        struct Seen(std::sync::Mutex<Vec<String>>);
        impl Notifier for Seen {
            fn show(&self, toast: &Toast) -> Result<(), NotifyError> {
                self.0.lock().unwrap().push(toast.title.clone());
                Ok(())
            }
        }
        let seen = std::sync::Arc::new(Seen::default());
        let n = Labelled::new("lisi@b", seen.clone());
        let toast = Toast::for_tests("任务被驳回");
        n.show(&toast).unwrap();
        assert_eq!(*seen.0.lock().unwrap(), ["lisi@b · 任务被驳回"]);
    }

    #[test]
    fn locate_checks_the_url_as_sign_in_does() {
        let dir = tempfile::tempdir().unwrap();
        let main = main_paths(dir.path());
        assert!(locate(&main, "http://remote.example.com", "x").is_err());
        assert!(locate(&main, "not a url", "x").is_err());
    }
}
