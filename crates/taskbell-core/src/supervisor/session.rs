//! Getting a session: the token from the keyring, else the remembered password;
//! checked with `/api/auth/me`. The outcome is classified for the machine
//! ([`SignInFailure`]); the token and the REST client that carries it are shared
//! with the driver, so a sign-in cut short keeps what it already got.

use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::watch;

use super::Status;
use crate::api::{Api, ApiError, SecretToken};
use crate::config::Paths;
use crate::credentials::{Credentials, blocking};
use crate::engine::connection::SignInFailure;
use crate::i18n::{Lang, Msg, tr};
use crate::protocol::User;

/// The current token and the REST client that carries it.
struct Auth {
    token: Option<SecretToken>,
    api: Api,
}

/// Everything a sign-in needs; clones share the token.
#[derive(Clone)]
pub(super) struct Session {
    auth: Arc<Mutex<Auth>>,
    credentials: Credentials,
    server: String,
    username: String,
    lang: Lang,
    status: watch::Sender<Status>,
}

impl Session {
    pub(super) fn new(
        api: Api,
        credentials: Credentials,
        server: String,
        username: String,
        lang: Lang,
        status: watch::Sender<Status>,
    ) -> Session {
        Session {
            auth: Arc::new(Mutex::new(Auth { token: None, api })),
            credentials,
            server,
            username,
            lang,
            status,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Auth> {
        self.auth.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The account's user name.
    pub(super) fn username(&self) -> &str {
        &self.username
    }

    /// The current token.
    pub(super) fn token(&self) -> Option<SecretToken> {
        self.lock().token.clone()
    }

    /// The REST client with the last token it was given.
    pub(super) fn api(&self) -> Api {
        self.lock().api.clone()
    }

    /// Sets the token (a new one also goes into the REST client).
    fn set_token(&self, token: Option<SecretToken>) {
        let mut auth = self.lock();
        if let Some(t) = &token {
            auth.api = auth.api.clone().with_token(t.clone());
        }
        auth.token = token;
    }

    fn set_user(&self, user: User) {
        self.status.send_modify(|s| s.user = Some(user));
    }

    /// Forgets the refused token, in memory and in the keyring.
    pub(super) async fn forget_token(&self) {
        self.set_token(None);
        let creds = self.credentials.clone();
        let (s, u) = (self.server.clone(), self.username.clone());
        let _ = blocking(move || creds.clear_token(&s, &u)).await;
    }

    /// Ends the session as `taskbell logout` does ([`crate::signin::end_session`]):
    /// revoked where possible, forgotten in the keyring, `remember_me` off in the config
    /// at `paths`; returns what to tell when something failed.
    pub(super) async fn sign_out(&self, paths: &Paths) -> Option<String> {
        let api = self.token().map(|_| self.api());
        let done =
            crate::signin::end_session(api, paths, &self.credentials, &self.server, &self.username)
                .await;
        self.set_token(None);
        done.err().map(|e| e.to_string())
    }

    /// A session for the signed-in user, or why not.
    pub(super) async fn sign_in(self) -> Result<User, SignInFailure> {
        if self.token().is_none() {
            let creds = self.credentials.clone();
            let (s, u) = (self.server.clone(), self.username.clone());
            match blocking(move || creds.load_token(&s, &u)).await {
                Ok(Some(t)) => self.lock().token = Some(t),
                Ok(None) => self.relogin_with_password().await?,
                Err(e) => return Err(SignInFailure::Keyring(e.to_string())),
            }
        }
        let Some(token) = self.token() else {
            return Err(SignInFailure::Ended(tr(self.lang, Msg::SessionEnded)));
        };
        self.set_token(Some(token));
        match self.api().me().await {
            Ok(user) => Ok(user),
            Err(ApiError::Unauthorized(_)) => {
                self.forget_token().await;
                self.relogin_with_password().await?;
                self.api().me().await.map_err(|e| self.failure(e))
            }
            Err(e) => Err(self.failure(e)),
        }
    }

    fn failure(&self, e: ApiError) -> SignInFailure {
        match e {
            ApiError::Unauthorized(_) => SignInFailure::Ended(tr(self.lang, Msg::SessionEnded)),
            ApiError::Forbidden(why) => SignInFailure::Forbidden(why),
            ApiError::RateLimited { retry_after } => SignInFailure::Transient {
                reason: e.to_string(),
                retry_after,
            },
            other => SignInFailure::Transient {
                reason: other.to_string(),
                retry_after: None,
            },
        }
    }

    /// Signs in again with the remembered password; without one the session has ended.
    async fn relogin_with_password(&self) -> Result<(), SignInFailure> {
        let creds = self.credentials.clone();
        let (s, u) = (self.server.clone(), self.username.clone());
        let password = match blocking(move || creds.load_password(&s, &u)).await {
            Ok(Some(p)) => p,
            Ok(None) => return Err(SignInFailure::Ended(tr(self.lang, Msg::SessionEnded))),
            Err(e) => return Err(SignInFailure::Keyring(e.to_string())),
        };
        match self.api().login(&self.username, &password).await {
            Ok(ok) => {
                tracing::info!(user = %self.username, "signed in again with the remembered password");
                let creds = self.credentials.clone();
                let (s, u, t) = (self.server.clone(), self.username.clone(), ok.token.clone());
                if let Err(e) = blocking(move || creds.store_token(&s, &u, &t)).await {
                    tracing::warn!(error = %e, "cannot store the new token; keeping it in memory");
                }
                self.set_token(Some(ok.token));
                self.set_user(ok.user);
                Ok(())
            }
            Err(ApiError::Unauthorized(why)) => Err(SignInFailure::Ended(format!(
                "{}: {why}",
                tr(self.lang, Msg::SessionEnded)
            ))),
            Err(e) => Err(self.failure(e)),
        }
    }
}
