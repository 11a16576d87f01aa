//! `taskbell login` and `taskbell logout`.

use std::io::{BufRead, IsTerminal};

use taskbell_core::config::Paths;
use taskbell_core::credentials::Credentials;
use taskbell_core::supervisor::{sign_in, sign_out};

use crate::cli::LoginArgs;
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

/// Runs `taskbell login`.
pub async fn login(paths: &Paths, args: &LoginArgs) -> Result<(), CliError> {
    let password = read_password(args.password_stdin)?;
    let credentials = open_keyring().await?;
    let signed_in = sign_in(
        paths,
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

/// Runs `taskbell logout`.
pub async fn logout(paths: &Paths) -> Result<(), CliError> {
    let credentials = open_keyring().await?;
    sign_out(paths, &credentials).await.map_err(|e| match e {
        taskbell_core::supervisor::SignInError::NotSignedIn => CliError::NotSignedIn,
        other => CliError::Logout(other),
    })?;
    say!("Signed out; the token was removed from the keyring.");
    Ok(())
}

/// Opens the OS keyring on the blocking pool (D-Bus round trips).
pub async fn open_keyring() -> Result<Credentials, CliError> {
    match tokio::task::spawn_blocking(Credentials::open).await {
        Ok(r) => Ok(r?),
        Err(e) => Err(CliError::Failed(format!("keyring task failed: {e}"))),
    }
}
