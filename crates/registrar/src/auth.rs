//! The digest authenticator: challenges (`401`/`407`), self-validating
//! nonces with a lifetime, the nonce-count rule, and verification of a
//! request's credentials. The registrar uses it for REGISTER; the B2BUA can
//! use the same object for INVITE with [`AuthHeader::Proxy`].

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use hmac::{KeyInit, Mac};
use sha2::Sha256;
use sip::{EditError, HeaderName, Message};
use transaction::Rng;

use crate::digest::{
    ct_eq, hex, parse_credentials, response, unhex, Algorithm, Algorithms, CredError, Ha1,
};

type HmacSha256 = hmac::Hmac<Sha256>;

/// Which pair of headers a challenge uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthHeader {
    /// `401 Unauthorized` with `WWW-Authenticate`, answered in
    /// `Authorization` (a registrar, a UAS).
    Www,
    /// `407 Proxy Authentication Required` with `Proxy-Authenticate`,
    /// answered in `Proxy-Authorization` (a proxy or B2BUA for INVITE).
    Proxy,
}

impl AuthHeader {
    /// The status code and reason phrase of a challenge.
    pub fn status(self) -> (u16, &'static str) {
        match self {
            AuthHeader::Www => (401, "Unauthorized"),
            AuthHeader::Proxy => (407, "Proxy Authentication Required"),
        }
    }

    /// The header a challenge is written in.
    pub fn challenge_header(self) -> HeaderName {
        match self {
            AuthHeader::Www => HeaderName::WwwAuthenticate,
            AuthHeader::Proxy => HeaderName::ProxyAuthenticate,
        }
    }

    /// The header credentials come in.
    pub fn credentials_header(self) -> HeaderName {
        match self {
            AuthHeader::Www => HeaderName::Authorization,
            AuthHeader::Proxy => HeaderName::ProxyAuthorization,
        }
    }
}

/// Authenticator settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthConfig {
    /// The realm of every challenge; credentials for another realm are not
    /// ours.
    pub realm: String,
    /// How long a nonce may be used. A correct response with an older
    /// nonce is answered with a new challenge marked `stale=true`.
    pub nonce_lifetime: Duration,
    /// Seed of the generator the server secret is drawn from (the daemon
    /// takes it from the OS; tests fix it).
    pub seed: u64,
    /// Most nonces whose last nonce-count is remembered. A nonce pushed out
    /// of the table before it expired is answered as stale, never accepted
    /// again, so a full table costs a round trip, not a replay.
    pub max_tracked_nonces: usize,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            realm: "sbc".to_owned(),
            nonce_lifetime: Duration::from_secs(300),
            seed: 0,
            max_tracked_nonces: 100_000,
        }
    }
}

/// What the credentials of a request came to.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthOutcome {
    /// A correct response with a fresh nonce seen for the first time at
    /// this nonce-count: the request comes from `username`.
    Authorized {
        /// The authenticated username.
        username: String,
    },
    /// No credentials for this realm: challenge. `other_realm` when there
    /// were credentials, but for another realm (or another scheme).
    Missing {
        /// Credentials were present, for another realm or scheme.
        other_realm: bool,
    },
    /// A correct response, but the nonce has expired (or is not one of
    /// ours, e.g. from before a restart): challenge with `stale=true`.
    Stale,
    /// The nonce-count did not increase for this nonce: a replay. Challenge.
    Replay,
    /// Wrong response, unknown user, or a user without an HA1 for the
    /// algorithm used: challenge, and count a failure.
    Failed {
        /// The username as presented (at most [`crate::digest`]'s limit).
        username: String,
    },
    /// The credentials do not parse or break a rule of RFC 7616: 400.
    Malformed(&'static str),
    /// A directive over the size limits: 400.
    TooLarge(&'static str),
}

/// The server secret: 32 bytes drawn from the seeded generator, never
/// printed. Nothing this crate sends is a raw output of the generator
/// (SplitMix64 is invertible): every nonce, opaque and tag is an HMAC
/// under this secret.
#[derive(Clone)]
struct Secret([u8; 32]);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Issues challenges and verifies digest credentials (RFC 7616, RFC 8760).
///
/// A nonce is `hex(issued_ms ‖ counter ‖ HMAC-SHA256(secret, issued_ms ‖
/// counter)[..16])`: the server keeps no state per challenge, only the last
/// nonce-count of each nonce that was used (bounded, purged at expiry).
#[derive(Debug, Clone)]
pub struct Authenticator {
    config: AuthConfig,
    secret: Secret,
    opaque: String,
    base: Instant,
    counter: u64,
    /// counter → (issued ms, last nc), for nonces that were used.
    nc: BTreeMap<u64, (u64, u32)>,
    /// Every nonce at or below this counter whose entry is gone was pushed
    /// out before it expired: stale, never fresh again.
    evicted_to: u64,
}

const NONCE_BYTES: usize = 32;

impl Authenticator {
    /// An authenticator whose nonce clock starts at `now`.
    pub fn new(config: AuthConfig, now: Instant) -> Authenticator {
        let mut rng = Rng::with_label(config.seed, "registrar secret");
        let mut key = [0u8; 32];
        for chunk in key.chunks_mut(8) {
            chunk.copy_from_slice(&rng.next_u64().to_be_bytes());
        }
        let mut a = Authenticator {
            config,
            secret: Secret(key),
            opaque: String::new(),
            base: now,
            counter: 0,
            nc: BTreeMap::new(),
            evicted_to: 0,
        };
        a.opaque = hex(&a.mac(b"opaque", &[])[..16]);
        a
    }

    /// The realm.
    pub fn realm(&self) -> &str {
        &self.config.realm
    }

    /// The settings.
    pub fn config(&self) -> &AuthConfig {
        &self.config
    }

    fn mac(&self, label: &[u8], data: &[u8]) -> [u8; 32] {
        // HMAC takes keys of any length: this cannot fail.
        let mut m = HmacSha256::new_from_slice(&self.secret.0).unwrap_or_else(|_| unreachable!()); // HMAC takes a key of any length
        m.update(label);
        m.update(data);
        let mut out = [0u8; 32];
        out.copy_from_slice(&m.finalize().into_bytes());
        out
    }

    /// A token for a To tag: 16 hex digits no one can predict.
    pub fn token(&mut self) -> String {
        self.counter += 1;
        hex(&self.mac(b"tag", &self.counter.to_be_bytes())[..8])
    }

    fn ms_since_base(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.base).as_millis()).unwrap_or(u64::MAX)
    }

    /// A new nonce.
    pub fn nonce(&mut self, now: Instant) -> String {
        self.counter += 1;
        let mut raw = [0u8; NONCE_BYTES];
        raw[..8].copy_from_slice(&self.ms_since_base(now).to_be_bytes());
        raw[8..16].copy_from_slice(&self.counter.to_be_bytes());
        let mac = self.mac(b"nonce", &raw[..16]);
        raw[16..].copy_from_slice(&mac[..16]);
        hex(&raw)
    }

    /// Reads one of our nonces: `Some((issued ms, counter, fresh))`, `None`
    /// when it is not ours.
    fn read_nonce(&self, now: Instant, nonce: &[u8]) -> Option<(u64, u64, bool)> {
        let mut raw = [0u8; NONCE_BYTES];
        if !unhex(nonce, &mut raw) {
            return None;
        }
        let mac = self.mac(b"nonce", &raw[..16]);
        if !ct_eq(&mac[..16], &raw[16..]) {
            return None;
        }
        let mut b = [0u8; 8];
        b.copy_from_slice(&raw[..8]);
        let issued = u64::from_be_bytes(b);
        b.copy_from_slice(&raw[8..16]);
        let counter = u64::from_be_bytes(b);
        let now_ms = self.ms_since_base(now);
        let lifetime = u64::try_from(self.config.nonce_lifetime.as_millis()).unwrap_or(u64::MAX);
        let fresh = issued <= now_ms && now_ms - issued < lifetime;
        Some((issued, counter, fresh))
    }

    /// The challenge header values, one per algorithm (SHA-256 first), each
    /// with a new nonce: `Digest realm="…", nonce="…", opaque="…",
    /// algorithm=…, qop="auth"[, stale=true]`.
    pub fn challenges(&mut self, now: Instant, stale: bool, algs: Algorithms) -> Vec<String> {
        let mut out = Vec::with_capacity(2);
        for alg in algs.iter() {
            let nonce = self.nonce(now);
            let mut v = format!(
                "Digest realm=\"{}\", nonce=\"{nonce}\", opaque=\"{}\", algorithm={}, qop=\"auth\"",
                self.config.realm,
                self.opaque,
                alg.as_str()
            );
            if stale {
                v.push_str(", stale=true");
            }
            out.push(v);
        }
        out
    }

    /// Adds the challenge headers of `kind` to `response` (built with
    /// `transaction::response_to` with the status of `kind`).
    pub fn add_challenge(
        &mut self,
        now: Instant,
        response: &mut Message,
        kind: AuthHeader,
        stale: bool,
        algs: Algorithms,
    ) -> Result<(), EditError> {
        for v in self.challenges(now, stale, algs) {
            response.push_header(kind.challenge_header().as_str(), v.as_bytes())?;
        }
        Ok(())
    }

    /// Verifies the credentials of `request` in the header of `kind`.
    /// `ha1` finds a user's HA1s by username. Records the nonce-count of
    /// an accepted response.
    pub fn check(
        &mut self,
        now: Instant,
        request: &Message,
        kind: AuthHeader,
        ha1: impl Fn(&str) -> Option<Ha1>,
    ) -> AuthOutcome {
        let name = kind.credentials_header();
        let mut other_realm = false;
        let mut ours = None;
        for h in request.headers().filter(|h| h.name == name) {
            match parse_credentials(h.value) {
                Ok(c) if *c.realm == *self.config.realm.as_bytes() => {
                    ours = Some(c);
                    break;
                }
                Ok(_) | Err(CredError::NotDigest) => other_realm = true,
                Err(CredError::Malformed(why)) => return AuthOutcome::Malformed(why),
                Err(CredError::TooLarge(why)) => return AuthOutcome::TooLarge(why),
            }
        }
        let Some(c) = ours else {
            return AuthOutcome::Missing { other_realm };
        };
        let alg = match c.algorithm.as_deref() {
            None => Algorithm::Md5, // RFC 7616 §3.4: absent means MD5
            Some(a) => match Algorithm::parse(a) {
                Some(alg) => alg,
                None => return AuthOutcome::Malformed("unsupported digest algorithm"),
            },
        };
        let Some(qop) = c.qop.as_deref() else {
            return AuthOutcome::Malformed("qop=auth required");
        };
        if !qop.eq_ignore_ascii_case(b"auth") {
            return AuthOutcome::Malformed("qop=auth required");
        }
        if c.userhash
            .as_deref()
            .is_some_and(|u| u.eq_ignore_ascii_case(b"true"))
        {
            return AuthOutcome::Malformed("userhash not offered");
        }
        let (Some(nc), Some(cnonce)) = (c.nc.as_deref(), c.cnonce.as_deref()) else {
            return AuthOutcome::Malformed("qop=auth needs nc and cnonce");
        };
        let mut nc_bytes = [0u8; 4];
        if !unhex(nc, &mut nc_bytes) {
            return AuthOutcome::Malformed("nc is not 8 hex digits");
        }
        let nc_value = u32::from_be_bytes(nc_bytes);
        if cnonce.is_empty() {
            return AuthOutcome::Malformed("empty cnonce");
        }
        let mut presented = [0u8; 32];
        let presented = &mut presented[..alg.hex_len() / 2];
        if !unhex(&c.response, presented) {
            return AuthOutcome::Malformed("response is not a digest of the algorithm");
        }
        let Some(uri) = request.request_uri_raw() else {
            return AuthOutcome::Malformed("credentials on a response");
        };
        if *c.uri != *uri {
            return AuthOutcome::Malformed("digest uri is not the Request-URI");
        }
        let Ok(username) = std::str::from_utf8(&c.username) else {
            return AuthOutcome::Malformed("username is not UTF-8");
        };
        let method = request.method_str().unwrap_or("");
        let user = ha1(username);
        // Unknown users cost the same work as known ones.
        let dummy = [0u8; 32];
        let key = user.as_ref().and_then(|h| h.get(alg));
        let expected = response(
            alg,
            key.unwrap_or(&dummy[..alg.hex_len() / 2]),
            &c.nonce,
            nc,
            cnonce,
            qop,
            method.as_bytes(),
            &c.uri,
        );
        if key.is_none() || !ct_eq(expected.as_bytes(), presented) {
            return AuthOutcome::Failed {
                username: username.to_owned(),
            };
        }
        if c.opaque
            .as_deref()
            .is_some_and(|o| *o != *self.opaque.as_bytes())
        {
            return AuthOutcome::Stale;
        }
        let Some((issued, counter, fresh)) = self.read_nonce(now, &c.nonce) else {
            return AuthOutcome::Stale;
        };
        if !fresh {
            return AuthOutcome::Stale;
        }
        self.purge(now);
        match self.nc.get_mut(&counter) {
            Some((_, last)) if nc_value <= *last => return AuthOutcome::Replay,
            Some((_, last)) => *last = nc_value,
            None if counter <= self.evicted_to => return AuthOutcome::Stale,
            None => {
                if self.nc.len() >= self.config.max_tracked_nonces.max(1) {
                    if let Some((c, _)) = self.nc.pop_first() {
                        self.evicted_to = self.evicted_to.max(c);
                    }
                }
                self.nc.insert(counter, (issued, nc_value));
            }
        }
        AuthOutcome::Authorized {
            username: username.to_owned(),
        }
    }

    /// Forgets the nonce-counts of expired nonces.
    pub fn purge(&mut self, now: Instant) {
        let now_ms = self.ms_since_base(now);
        let lifetime = u64::try_from(self.config.nonce_lifetime.as_millis()).unwrap_or(u64::MAX);
        // Counters grow with time, so the oldest nonces come first.
        while let Some((_, &(issued, _))) = self.nc.first_key_value() {
            if now_ms.saturating_sub(issued) < lifetime {
                break;
            }
            self.nc.pop_first();
        }
    }

    /// How many nonces have their nonce-count remembered.
    pub fn tracked_nonces(&self) -> usize {
        self.nc.len()
    }
}

#[cfg(test)]
mod tests;
