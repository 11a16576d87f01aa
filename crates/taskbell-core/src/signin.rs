//! Sign-in and sign-out, shared by the `taskbell` command and the tray app.
//!
//! [`sign_in`] checks the server URL (no plain http to a remote host unless the
//! config allows it), logs in, keeps the token (and with "remember me" the
//! password) in the keyring and records server and user name in the config.
//! [`sign_out`] revokes the token on the server when it can and clears the keyring.

use std::time::Duration;

use crate::api::{Api, ApiError, CONNECT_TIMEOUT, REQUEST_TIMEOUT};
use crate::config::{Config, ConfigError, Paths};
use crate::credentials::{Backend, Credentials, CredentialsError, blocking};
use crate::net::{NetError, Network};
use crate::protocol::User;

/// Why signing in or out failed. `Display` is one line for the user.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    /// The server refused, or could not be reached (see [`ApiError`]).
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The config (or the server URL in it) is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The keyring failed.
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    /// The trust or proxy settings are unusable (`ca_file`, `proxy`).
    #[error(transparent)]
    Network(#[from] NetError),
    /// Sign-out without a configured account.
    #[error("not signed in")]
    NotSignedIn,
    /// The user name or password is empty.
    #[error("{0}")]
    Invalid(String),
}

/// The result of a sign-in.
#[derive(Debug, Clone)]
pub struct SignedIn {
    /// The user as the server describes them.
    pub user: User,
    /// The server URL as stored in the config.
    pub server: String,
    /// Where the token is kept.
    pub keyring: Backend,
    /// The saved config.
    pub config: Config,
}

/// Logs in to `server` as `username`; stores the token (and the password when
/// `remember`) in `credentials`, and server, user name and the remember choice
/// in the config file under `paths`.
pub async fn sign_in(
    paths: &Paths,
    credentials: &Credentials,
    server: &str,
    username: &str,
    password: &str,
    remember: bool,
) -> Result<SignedIn, SignInError> {
    let username = username.trim();
    if username.is_empty() {
        return Err(SignInError::Invalid("the user name is empty".to_string()));
    }
    if password.is_empty() {
        return Err(SignInError::Invalid("the password is empty".to_string()));
    }
    let config = paths.load_config()?;
    let url = crate::config::parse_server_url(server, config.allow_insecure)?;
    let server_text = url.as_str().trim_end_matches('/').to_string();
    let network = Network::from_config(&config)?;
    let api = Api::with_network(url, &network, CONNECT_TIMEOUT, REQUEST_TIMEOUT)?;
    let ok = api.login(username, password).await?;

    let creds = credentials.clone();
    let (s, u, t) = (server_text.clone(), username.to_string(), ok.token.clone());
    blocking(move || creds.store_token(&s, &u, &t)).await?;
    let creds = credentials.clone();
    let (s, u, p) = (
        server_text.clone(),
        username.to_string(),
        password.to_string(),
    );
    if remember {
        blocking(move || creds.store_password(&s, &u, &p)).await?;
    } else {
        blocking(move || creds.clear_password(&s, &u)).await?;
    }

    Config::update(&paths.config_file(), |c| {
        c.server = Some(server_text.clone());
        c.username = Some(username.to_string());
        c.remember_me = remember;
        Ok::<_, ConfigError>(())
    })?;
    // The effective config: for a further account, the main file's settings too.
    let config = paths.load_config()?;
    tracing::info!(server = %server_text, user = %username, keyring = %credentials.backend(), "signed in");
    Ok(SignedIn {
        user: ok.user,
        server: server_text,
        keyring: credentials.backend().clone(),
        config,
    })
}

/// Revokes the token on the server when possible (best effort, 5 s) and removes
/// token and password from the keyring. Server and user name stay in the config
/// (to prefill the next sign-in); `remember_me` is turned off. This is
/// `taskbell logout`; a running engine's sign-out (the tray's) ends the same way
/// ([`end_session`]).
pub async fn sign_out(paths: &Paths, credentials: &Credentials) -> Result<(), SignInError> {
    let config = paths.load_config()?;
    let (Some(server), Some(username)) = (config.server.clone(), config.username.clone()) else {
        return Err(SignInError::NotSignedIn);
    };
    let creds = credentials.clone();
    let (s, u) = (server.clone(), username.clone());
    let token = blocking(move || creds.load_token(&s, &u)).await?;
    let api = match (token, config.server_url()) {
        (Some(token), Ok(url)) => Network::from_config(&config)
            .map_err(|e| ApiError::BadUrl(e.to_string()))
            .and_then(|n| Api::with_network(url, &n, CONNECT_TIMEOUT, REQUEST_TIMEOUT))
            .map(|api| api.with_token(token))
            .inspect_err(|e| tracing::debug!(error = %e, "no logout request"))
            .ok(),
        _ => None,
    };
    end_session(api, paths, credentials, &server, &username).await
}

/// The one way a session ends: the token revoked on the server through `api` (one that
/// carries it; best effort, 5 s), token and password removed from the keyring,
/// `remember_me` turned off in the account's config.
pub(crate) async fn end_session(
    api: Option<Api>,
    paths: &Paths,
    credentials: &Credentials,
    server: &str,
    username: &str,
) -> Result<(), SignInError> {
    if let Some(api) = api {
        match tokio::time::timeout(Duration::from_secs(5), api.logout()).await {
            Ok(Ok(())) => tracing::info!("token revoked on the server"),
            Ok(Err(e)) => tracing::info!(error = %e, "the server did not revoke the token"),
            Err(_) => tracing::info!("the server did not answer the logout in time"),
        }
    }
    let creds = credentials.clone();
    let (s, u) = (server.to_string(), username.to_string());
    blocking(move || creds.clear(&s, &u)).await?;
    if paths.load_config().is_ok_and(|c| c.remember_me) {
        Config::update(&paths.config_file(), |c| {
            c.remember_me = false;
            Ok::<_, ConfigError>(())
        })?;
    }
    tracing::info!(server = %server, user = %username, "signed out");
    Ok(())
}
