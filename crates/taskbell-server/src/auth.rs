//! Tokens (HS256 JWT with expiry and a `jti`), their revocation, and the login rate limit.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hashlink::LinkedHashMap;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

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

/// The most user names, and separately the most client addresses, the login limiter tracks.
/// Beyond it the entry whose last attempt is oldest and that is not locked out is forgotten (a
/// locked-out entry only when every tracked one is locked out), never all at once.
pub(crate) const MAX_TRACKED: usize = 10_000;

/// One counted login attempt: in flight (`pending`) until its password check is done, then a
/// failure (a success removes it).
#[derive(Debug, Clone, Copy)]
struct Stamp {
    id: u64,
    at: Instant,
    pending: bool,
}

/// Attempts per key (a user name or a client network), least recently used first.
struct Tracker<K> {
    max: u32,
    entries: LinkedHashMap<K, VecDeque<Stamp>, RandomState>,
}

impl<K: Hash + Eq + Clone> Tracker<K> {
    fn new(max: u32) -> Self {
        Self {
            max,
            entries: LinkedHashMap::with_hasher(RandomState::new()),
        }
    }

    fn live(q: &VecDeque<Stamp>, now: Instant, window: Duration) -> usize {
        q.iter()
            .filter(|s| now.duration_since(s.at) < window)
            .count()
    }

    /// `Some(seconds)` when `key` has used up its attempts.
    fn blocked(&mut self, key: &K, now: Instant, window: Duration) -> Option<u64> {
        if self.max == 0 {
            return None;
        }
        let q = self.entries.get_mut(key)?;
        while q
            .front()
            .is_some_and(|s| now.duration_since(s.at) >= window)
        {
            q.pop_front();
        }
        if q.len() < self.max as usize {
            return None;
        }
        let failures: Vec<Instant> = q.iter().filter(|s| !s.pending).map(|s| s.at).collect();
        if failures.len() >= self.max as usize {
            // Locked out until enough failures have left the window.
            let oldest = failures[failures.len() - self.max as usize];
            let left = window.saturating_sub(now.duration_since(oldest));
            Some(left.as_secs().max(1))
        } else {
            // Attempts still being checked: they end within moments.
            Some(1)
        }
    }

    fn record(&mut self, key: &K, stamp: Stamp, window: Duration) {
        if self.max == 0 {
            return;
        }
        if let Some(q) = self.entries.to_back(key) {
            q.push_back(stamp);
            return;
        }
        while self.entries.len() >= MAX_TRACKED {
            self.evict_one(stamp.at, window);
        }
        self.entries.insert(key.clone(), VecDeque::from([stamp]));
    }

    /// Forgets the least recently used entry that is not locked out, else the least recently
    /// used one.
    fn evict_one(&mut self, now: Instant, window: Duration) {
        let victim = self
            .entries
            .iter()
            .find(|(_, q)| Self::live(q, now, window) < self.max as usize)
            .or_else(|| self.entries.front())
            .map(|(k, _)| k.clone());
        if let Some(k) = victim {
            self.entries.remove(&k);
        }
    }

    /// Marks the attempt `id` of `key` as failed (`drop == false`) or removes it.
    fn settle(&mut self, key: &K, id: u64, drop: bool) {
        let Some(q) = self.entries.get_mut(key) else {
            return;
        };
        if let Some(i) = q.iter().position(|s| s.id == id) {
            if drop {
                q.remove(i);
            } else if let Some(s) = q.get_mut(i) {
                s.pending = false;
            }
        }
        if q.is_empty() {
            self.entries.remove(key);
        }
    }
}

/// Why a login attempt was refused before its password was checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Limited {
    /// Too many failed or in-flight attempts for this user name.
    Name(u64),
    /// Too many failed or in-flight attempts from this client address.
    Address(u64),
}

impl Limited {
    /// The `Retry-After` in seconds.
    pub fn retry_after(self) -> u64 {
        match self {
            Limited::Name(s) | Limited::Address(s) => s,
        }
    }
}

/// An attempt counted by [`LoginLimiter::reserve`]; settle it with `failed`, `succeeded` or
/// `release`. Dropped unsettled (the request was cancelled), it stays counted as in flight until
/// it leaves the window.
#[derive(Debug)]
#[must_use]
pub(crate) struct Reservation {
    name: String,
    ip: IpAddr,
    id: u64,
}

struct LimiterState {
    names: Tracker<String>,
    ips: Tracker<IpAddr>,
    next_id: u64,
}

/// Login attempts counted per user name and per client address (an IPv4 address, an IPv6 /64):
/// each attempt is counted *before* its password is checked, so parallel attempts cannot
/// overtake the limit. After `max_per_name` (or `max_per_ip`) failed or in-flight attempts within
/// `window`, further attempts are answered with 429 and `Retry-After`. A successful login forgets
/// its name's failures and its own attempt (not the address's earlier failures).
pub(crate) struct LoginLimiter {
    window: Duration,
    state: Mutex<LimiterState>,
}

impl std::fmt::Debug for LoginLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginLimiter")
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

/// The key of a client address: IPv4 as is (IPv4-mapped IPv6 too), IPv6 by its /64 (one host
/// usually holds a whole /64).
pub(crate) fn address_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(bits))
        }
        v4 => v4,
    }
}

impl LoginLimiter {
    pub fn new(max_per_name: u32, max_per_ip: u32, window: Duration) -> Self {
        Self {
            window,
            state: Mutex::new(LimiterState {
                names: Tracker::new(max_per_name),
                ips: Tracker::new(max_per_ip),
                next_id: 0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LimiterState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts an attempt of `username` from `ip`, or refuses it when either has used up its
    /// attempts.
    pub fn reserve(&self, username: &str, ip: IpAddr) -> Result<Reservation, Limited> {
        let now = Instant::now();
        let ip = address_key(ip);
        let name = username.to_owned();
        let mut st = self.lock();
        if let Some(s) = st.names.blocked(&name, now, self.window) {
            return Err(Limited::Name(s));
        }
        if let Some(s) = st.ips.blocked(&ip, now, self.window) {
            return Err(Limited::Address(s));
        }
        st.next_id += 1;
        let stamp = Stamp {
            id: st.next_id,
            at: now,
            pending: true,
        };
        st.names.record(&name, stamp, self.window);
        st.ips.record(&ip, stamp, self.window);
        Ok(Reservation {
            name,
            ip,
            id: stamp.id,
        })
    }

    /// The password was wrong: the attempt stays counted for its name and address.
    pub fn failed(&self, r: Reservation) {
        let mut st = self.lock();
        st.names.settle(&r.name, r.id, false);
        st.ips.settle(&r.ip, r.id, false);
    }

    /// The password was right: the name's failures are forgotten (attempts of it still in
    /// flight stay counted), and this attempt no longer counts against the address.
    pub fn succeeded(&self, r: Reservation) {
        let mut st = self.lock();
        if let Some(q) = st.names.entries.get_mut(&r.name) {
            q.retain(|s| s.pending && s.id != r.id);
            if q.is_empty() {
                st.names.entries.remove(&r.name);
            }
        }
        st.ips.settle(&r.ip, r.id, true);
    }

    /// The password was not checked at all (the server was busy): the attempt is not counted.
    pub fn release(&self, r: Reservation) {
        let mut st = self.lock();
        st.names.settle(&r.name, r.id, true);
        st.ips.settle(&r.ip, r.id, true);
    }

    /// How many user names and client addresses are tracked.
    pub fn tracked(&self) -> (usize, usize) {
        let st = self.lock();
        (st.names.entries.len(), st.ips.entries.len())
    }

    /// Forgets every attempt (the `reset-login-limits` test control).
    pub fn reset(&self) {
        let mut st = self.lock();
        st.names.entries.clear();
        st.ips.entries.clear();
    }
}

/// Bounds concurrent password checks (argon2 takes ~19 MiB and tens of ms each): at most
/// `permits` run at once on the blocking pool, each with a reused working memory, at most `permits + queue` logins are admitted at a
/// time (checking or waiting), and the rest are turned away at once ([`HashGate::admit`] gives
/// `None`) instead of piling up.
pub(crate) struct HashGate {
    sem: Arc<Semaphore>,
    permits: usize,
    max_admitted: usize,
    admitted: AtomicUsize,
    running: AtomicUsize,
    peak: AtomicUsize,
    checks: AtomicU64,
    /// Idle argon2 working memories, reused (no more than `permits`).
    memory: Mutex<Vec<Vec<argon2::Block>>>,
}

impl std::fmt::Debug for HashGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashGate")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// A login admitted by [`HashGate::admit`]; counted until dropped.
#[derive(Debug)]
pub(crate) struct Admission {
    gate: Arc<HashGate>,
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.gate.admitted.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Counts a running check; decremented even if the check panics.
struct Running<'a>(&'a HashGate);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Counters of a [`HashGate`], for the debug endpoint.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub(crate) struct GateStats {
    /// Checks allowed to run at once.
    pub concurrency: usize,
    /// Logins admitted at once (running or waiting) before 503.
    pub max_admitted: usize,
    /// Logins admitted now.
    pub admitted: usize,
    /// Checks running now.
    pub running: usize,
    /// The most checks that ever ran at once.
    pub peak_running: usize,
    /// Checks done since start.
    pub checks: u64,
}

impl HashGate {
    pub fn new(permits: usize, queue: usize) -> Self {
        Self {
            sem: Arc::new(Semaphore::new(permits)),
            permits,
            max_admitted: permits.saturating_add(queue),
            admitted: AtomicUsize::new(0),
            running: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            checks: AtomicU64::new(0),
            memory: Mutex::new(Vec::new()),
        }
    }

    /// Admits a login, or `None` when `permits + queue` are already admitted.
    pub fn admit(self: &Arc<Self>) -> Option<Admission> {
        self.admitted
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max_admitted).then_some(n + 1)
            })
            .ok()?;
        Some(Admission { gate: self.clone() })
    }

    /// Waits for a permit, then runs `check` on the blocking pool with a reused argon2 working
    /// memory (at most one per permit exists). The permit and the admission are held by the
    /// blocking task, so a cancelled request cannot raise the concurrency.
    pub async fn run<T: Send + 'static>(
        admission: Admission,
        check: impl FnOnce(&mut Vec<argon2::Block>) -> T + Send + 'static,
    ) -> Result<T, String> {
        let gate = admission.gate.clone();
        let permit = gate
            .sem
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| format!("password checks stopped: {e}"))?;
        tokio::task::spawn_blocking(move || {
            let _held = (permit, admission);
            let now = gate.running.fetch_add(1, Ordering::AcqRel) + 1;
            let _running = Running(&gate);
            gate.peak.fetch_max(now, Ordering::AcqRel);
            gate.checks.fetch_add(1, Ordering::Relaxed);
            let mut memory = gate.pool().pop().unwrap_or_default();
            let result = check(&mut memory);
            gate.pool().push(memory);
            result
        })
        .await
        .map_err(|e| format!("password check failed: {e}"))
    }

    fn pool(&self) -> std::sync::MutexGuard<'_, Vec<Vec<argon2::Block>>> {
        self.memory.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes every permit until the returned guard is dropped (the `hold-logins` test control).
    pub async fn hold(&self) -> Option<OwnedSemaphorePermit> {
        let n = u32::try_from(self.permits).ok()?;
        self.sem.clone().acquire_many_owned(n).await.ok()
    }

    pub fn stats(&self) -> GateStats {
        GateStats {
            concurrency: self.permits,
            max_admitted: self.max_admitted,
            admitted: self.admitted.load(Ordering::Acquire),
            running: self.running.load(Ordering::Acquire),
            peak_running: self.peak.load(Ordering::Acquire),
            checks: self.checks.load(Ordering::Acquire),
        }
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

    const HOME: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[test]
    fn limiter_locks_after_failures() {
        let l = LoginLimiter::new(2, 0, Duration::from_secs(60));
        l.failed(l.reserve("a", HOME).unwrap());
        let r = l.reserve("a", HOME).unwrap();
        l.failed(r);
        let Err(Limited::Name(secs)) = l.reserve("a", HOME) else {
            panic!("a is locked out");
        };
        assert!((1..=60).contains(&secs));
        assert!(l.reserve("b", HOME).is_ok());
        l.reset();
        // A success forgets the failures, not the attempts still in flight.
        l.failed(l.reserve("a", HOME).unwrap());
        let guess = l.reserve("a", HOME).unwrap();
        l.reset();
        let first = l.reserve("a", HOME).unwrap();
        let second = l.reserve("a", HOME).unwrap();
        l.succeeded(first);
        l.failed(second);
        l.failed(guess); // reset before: no longer tracked, a no-op
        let r = l.reserve("a", HOME).unwrap();
        l.failed(r);
        assert!(
            l.reserve("a", HOME).is_err(),
            "the in-flight failure was kept"
        );
        l.reset();
        let r = l.reserve("a", HOME).unwrap();
        l.succeeded(r);
        assert!(l.reserve("a", HOME).is_ok());
    }

    #[test]
    fn attempts_in_flight_count_and_released_ones_do_not() {
        let l = LoginLimiter::new(2, 0, Duration::from_secs(60));
        let a = l.reserve("a", HOME).unwrap();
        let b = l.reserve("a", HOME).unwrap();
        assert_eq!(l.reserve("a", HOME).unwrap_err(), Limited::Name(1));
        l.release(a);
        let c = l.reserve("a", HOME).unwrap();
        l.failed(b);
        l.failed(c);
        assert!(l.reserve("a", HOME).unwrap_err().retry_after() > 1);
    }

    #[test]
    fn addresses_are_limited_across_names_and_a_success_does_not_clear_them() {
        let l = LoginLimiter::new(5, 3, Duration::from_secs(60));
        let other: IpAddr = "10.0.0.7".parse().unwrap();
        for name in ["a", "b"] {
            l.failed(l.reserve(name, HOME).unwrap());
        }
        l.succeeded(l.reserve("c", HOME).unwrap());
        l.failed(l.reserve("d", HOME).unwrap());
        assert!(matches!(l.reserve("e", HOME), Err(Limited::Address(_))));
        assert!(l.reserve("e", other).is_ok());
        // One IPv6 host: any address of its /64.
        let v6a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let v6b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        assert_eq!(address_key(v6a), address_key(v6b));
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        assert_eq!(address_key(mapped), HOME);
    }

    #[test]
    fn many_names_evict_the_oldest_unlocked_ones_and_never_a_lockout() {
        let l = LoginLimiter::new(2, 0, Duration::from_secs(60));
        for _ in 0..2 {
            l.failed(l.reserve("victim", HOME).unwrap());
        }
        for i in 0..2 * MAX_TRACKED {
            l.failed(l.reserve(&format!("n{i}"), HOME).unwrap());
        }
        assert_eq!(l.tracked().0, MAX_TRACKED);
        assert!(matches!(l.reserve("victim", HOME), Err(Limited::Name(_))));
        // The newest names are still counted; the oldest unlocked ones were forgotten.
        let newest = format!("n{}", 2 * MAX_TRACKED - 1);
        l.failed(l.reserve(&newest, HOME).unwrap());
        assert!(l.reserve(&newest, HOME).is_err());
        l.failed(l.reserve("n0", HOME).unwrap());
        assert!(l.reserve("n0", HOME).is_ok());
    }
}
