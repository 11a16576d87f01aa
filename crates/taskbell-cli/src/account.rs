//! `taskbell login`, `taskbell logout` and `taskbell accounts`.

use std::io::{BufRead, IsTerminal};

use serde::Serialize;
use taskbell_core::accounts::{self, Account};
use taskbell_core::config::Paths;
use taskbell_core::credentials::Credentials;
use taskbell_core::supervisor::{sign_in, sign_out};

use crate::cli::{AccountsArgs, LoginArgs, LogoutArgs};
use crate::error::CliError;

/// Reads the password: the first line of stdin with `--password-stdin`, else a
/// prompt without echo on the terminal.
fn read_password(from_stdin: bool) -> Result<String, CliError> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| CliError::Password(e.to_string()))?;
        let password = line.trim_end_matches(['\n', '\r']).to_string();
        if password.is_empty() {
            return Err(CliError::Password("standard input was empty".into()));
        }
        return Ok(password);
    }
    if !std::io::stdin().is_terminal() && std::fs::File::open("/dev/tty").is_err() {
        return Err(CliError::Password(
            "no terminal to prompt on; pass --password-stdin".into(),
        ));
    }
    rpassword::prompt_password("Password: ")
        .map_err(|e| CliError::Password(format!("{e} (no terminal? pass --password-stdin)")))
}

/// Runs `taskbell login`: signs in to the account with that server and user name,
/// adding it when it is new.
pub async fn login(paths: &Paths, args: &LoginArgs) -> Result<(), CliError> {
    let account_paths = accounts::locate(paths, &args.server, &args.username)?;
    let password = read_password(args.password_stdin)?;
    let credentials = open_keyring().await?;
    let signed_in = sign_in(
        &account_paths,
        &credentials,
        &args.server,
        &args.username,
        &password,
        args.remember,
    )
    .await
    .map_err(CliError::Login)?;
    say!(
        "Signed in to {} as {} ({}, {}). Token kept in the {}.{}",
        signed_in.server,
        signed_in.user.real_name,
        signed_in.user.username,
        signed_in.user.role.as_str(),
        signed_in.keyring,
        if args.remember {
            " Password remembered for silent sign-in."
        } else {
            ""
        }
    );
    Ok(())
}

/// The paths of the account `given` names; with none, the first account's (the main
/// config, as with a single account).
pub fn select(paths: &Paths, given: Option<&str>) -> Result<Paths, CliError> {
    match given {
        Some(name) => Ok(accounts::find(paths, name)?.paths),
        None => Ok(paths.clone()),
    }
}

/// Runs `taskbell logout [ACCOUNT]`.
pub async fn logout(paths: &Paths, args: &LogoutArgs) -> Result<(), CliError> {
    let (account_paths, id) = match &args.account {
        Some(name) => {
            let a = accounts::find(paths, name)?;
            (a.paths, Some(a.id))
        }
        None => {
            let all = accounts::list(paths)?;
            if all.len() > 1 {
                return Err(CliError::WhichAccount(accounts::ids(&all)));
            }
            (paths.clone(), None)
        }
    };
    let credentials = open_keyring().await?;
    sign_out(&account_paths, &credentials)
        .await
        .map_err(|e| match e {
            taskbell_core::supervisor::SignInError::NotSignedIn => CliError::NotSignedIn,
            other => CliError::Logout(other),
        })?;
    match id {
        Some(id) => say!("Signed out of {id}; its token was removed from the keyring."),
        None => say!("Signed out; the token was removed from the keyring."),
    }
    Ok(())
}

/// One line of `taskbell accounts`.
#[derive(Debug, Serialize)]
pub struct AccountLine {
    /// The account.
    #[serde(flatten)]
    pub account: Account,
    /// A token (or a remembered password) is in the keyring.
    pub signed_in: bool,
    /// Unread notifications in its history.
    pub unread: u64,
}

/// Whether `account` has a token, or a remembered password, in the keyring.
pub async fn has_credentials(
    credentials: &Credentials,
    account: &Account,
) -> Result<bool, CliError> {
    let config = account.paths.load_config()?;
    let creds = credentials.clone();
    Ok(taskbell_core::credentials::blocking(move || creds.can_sign_in(&config)).await?)
}

/// Runs `taskbell accounts`.
pub async fn accounts(paths: &Paths, args: &AccountsArgs) -> Result<(), CliError> {
    let all = accounts::list(paths)?;
    let credentials = open_keyring().await?;
    let mut lines = Vec::with_capacity(all.len());
    for account in all {
        let signed_in = has_credentials(&credentials, &account).await?;
        let db = account.paths.history_db();
        let unread = if db.exists() {
            taskbell_core::history::History::open(&db)?.unread_count()?
        } else {
            0
        };
        lines.push(AccountLine {
            account,
            signed_in,
            unread,
        });
    }
    if args.json {
        let text = serde_json::to_string_pretty(&lines)
            .map_err(|e| CliError::Failed(format!("cannot encode the accounts: {e}")))?;
        say_json!(text);
        return Ok(());
    }
    if lines.is_empty() {
        say!("No accounts yet: `taskbell login --server URL --username NAME` adds one.");
        return Ok(());
    }
    for l in &lines {
        say!(
            "{} {}  {}  {}, {} unread",
            if l.account.primary { "*" } else { " " },
            l.account.id,
            l.account.server,
            if l.signed_in {
                "signed in"
            } else {
                "signed out"
            },
            l.unread
        );
    }
    Ok(())
}

/// Opens the OS keyring on the blocking pool (D-Bus round trips).
pub async fn open_keyring() -> Result<Credentials, CliError> {
    match tokio::task::spawn_blocking(Credentials::open).await {
        Ok(r) => Ok(r?),
        Err(e) => Err(CliError::Failed(format!("keyring task failed: {e}"))),
    }
}
