//! Tokens (HS256 JWT with expiry and a `jti`), their revocation, and the login rate limit.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::data::Role;
use crate::util::now_ms;

/// The claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Claims {
    /// User id.
    pub sub: String,
    pub username: String,
    pub role: Role,
    /// Token id, for revocation.
    pub jti: String,
    /// Issued at, seconds.
    pub iat: i64,
    /// Issued at, milliseconds (for "revoke every token issued before").
    pub iat_ms: i64,
    /// Expiry, seconds.
    pub exp: i64,
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenError {
    Missing,
    Invalid,
    Expired,
    Revoked,
}

impl TokenError {
    pub fn message(self) -> &'static str {
        match self {
            TokenError::Missing => "authentication required: no token given",
            TokenError::Invalid => "invalid token",
            TokenError::Expired => "token expired",
            TokenError::Revoked => "token revoked",
        }
    }
    pub fn code(self) -> &'static str {
        match self {
            TokenError::Missing => "unauthorized",
            TokenError::Invalid => "invalid_token",
            TokenError::Expired => "token_expired",
            TokenError::Revoked => "token_revoked",
        }
    }
}

#[derive(Default)]
struct Revocations {
    /// jti → expiry (seconds); pruned once expired.
    jtis: HashMap<String, i64>,
    /// user id → tokens issued before this many ms are revoked.
    users: HashMap<String, i64>,
}

/// Issues and checks tokens.
pub(crate) struct Auth {
    enc: EncodingKey,
    dec: DecodingKey,
    validation: Validation,
    ttl: Duration,
    revoked: Mutex<Revocations>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth").field("secret", &"***").finish()
    }
}

impl Auth {
    pub fn new(secret: &[u8], ttl: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self {
            enc: EncodingKey::from_secret(secret),
            dec: DecodingKey::from_secret(secret),
            validation,
            ttl,
            revoked: Mutex::new(Revocations::default()),
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Issues a token valid for `ttl_secs` (negative: already expired, for tests).
    pub fn issue(
        &self,
        user_id: &str,
        username: &str,
        role: Role,
        ttl_secs: i64,
    ) -> Result<(String, Claims), String> {
        let now = now_ms();
        let jti: [u8; 16] = rand::random();
        let claims = Claims {
            sub: user_id.to_owned(),
            username: username.to_owned(),
            role,
            jti: jti.iter().map(|b| format!("{b:02x}")).collect(),
            iat: now / 1000,
            iat_ms: now,
            exp: now / 1000 + ttl_secs,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.enc)
            .map(|t| (t, claims))
            .map_err(|e| format!("cannot sign a token: {e}"))
    }

    /// Checks signature, expiry and revocation.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.dec, &self.validation).map_err(
            |e| match e.kind() {
                ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid,
            },
        )?;
        let c = data.claims;
        if self.is_revoked(&c) {
            return Err(TokenError::Revoked);
        }
        Ok(c)
    }

    pub fn is_revoked(&self, c: &Claims) -> bool {
        let r = self.revoked.lock().unwrap_or_else(|p| p.into_inner());
        r.jtis.contains_key(&c.jti) || r.users.get(&c.sub).is_some_and(|&cut| c.iat_ms <= cut)
    }

    /// Records a revoked token id (until its expiry).
    pub fn revoke_jti(&self, jti: &str, exp: i64) {
        let mut r = self.revoked.lock().unwrap_or_else(|p| p.into_inner());
        let now = now_ms() / 1000;
        r.jtis.retain(|_, e| *e >= now);
        r.jtis.insert(jti.to_owned(), exp);
    }

    /// Revokes every token of a user issued at or before `cutoff_ms`.
    pub fn revoke_user(&self, user_id: &str, cutoff_ms: i64) {
        let mut r = self.revoked.lock().unwrap_or_else(|p| p.into_inner());
        let e = r.users.entry(user_id.to_owned()).or_insert(cutoff_ms);
        *e = (*e).max(cutoff_ms);
    }
}

/// Failed-login counting per username: after `max_failures` failures within `window`, further
/// attempts are answered with 429 and `Retry-After` until the oldest failure leaves the window.
#[derive(Debug)]
pub(crate) struct LoginLimiter {
    max_failures: u32,
    window: Duration,
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl LoginLimiter {
    pub fn new(max_failures: u32, window: Duration) -> Self {
        Self {
            max_failures,
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(retry_after_secs)` when the username is locked out.
    pub fn check(&self, username: &str) -> Result<(), u64> {
        if self.max_failures == 0 {
            return Ok(());
        }
        let now = Instant::now();
        let mut f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let Some(q) = f.get_mut(username) else {
            return Ok(());
        };
        while q
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            q.pop_front();
        }
        if q.len() >= self.max_failures as usize {
            let oldest = q.front().copied().unwrap_or(now);
            let left = self.window.saturating_sub(now.duration_since(oldest));
            return Err(left.as_secs().max(1));
        }
        Ok(())
    }

    pub fn failed(&self, username: &str) {
        let mut f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if f.len() > 10_000 {
            f.clear();
        }
        f.entry(username.to_owned())
            .or_default()
            .push_back(Instant::now());
    }

    pub fn succeeded(&self, username: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(username);
    }

    pub fn reset(&self) {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_expire_and_revoke() {
        let auth = Auth::new(b"secret", Duration::from_secs(60));
        let (t, c) = auth.issue("1", "zhangsan", Role::Annotator, 60).unwrap();
        assert_eq!(auth.verify(&t).unwrap().sub, "1");
        let (old, _) = auth.issue("1", "zhangsan", Role::Annotator, -5).unwrap();
        assert_eq!(auth.verify(&old).unwrap_err(), TokenError::Expired);
        assert_eq!(auth.verify("garbage").unwrap_err(), TokenError::Invalid);
        let other = Auth::new(b"other", Duration::from_secs(60));
        assert_eq!(other.verify(&t).unwrap_err(), TokenError::Invalid);
        auth.revoke_jti(&c.jti, c.exp);
        assert_eq!(auth.verify(&t).unwrap_err(), TokenError::Revoked);
        let (t2, c2) = auth.issue("2", "lisi", Role::Reviewer, 60).unwrap();
        auth.revoke_user("2", c2.iat_ms);
        assert_eq!(auth.verify(&t2).unwrap_err(), TokenError::Revoked);
    }

    #[test]
    fn limiter_locks_after_failures() {
        let l = LoginLimiter::new(2, Duration::from_secs(60));
        assert!(l.check("a").is_ok());
        l.failed("a");
        assert!(l.check("a").is_ok());
        l.failed("a");
        let secs = l.check("a").unwrap_err();
        assert!((1..=60).contains(&secs));
        assert!(l.check("b").is_ok());
        l.succeeded("a");
        assert!(l.check("a").is_ok());
    }
}
