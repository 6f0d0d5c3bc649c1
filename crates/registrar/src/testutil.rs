//! Helpers shared by the unit tests: messages from text, and a digest
//! client that answers a challenge the way a phone does.

use bytes::Bytes;
use sip::Message;

use crate::digest::{response, Algorithm, Ha1};

/// A message from text written with `\n` line ends.
pub(crate) fn msg(s: &str) -> Message {
    Message::parse(Bytes::from(s.replace('\n', "\r\n"))).unwrap()
}

/// The value of `name=` in a challenge or credentials value (quotes removed).
pub(crate) fn param(v: &str, name: &str) -> Option<String> {
    let body = v.trim_start_matches("Digest").trim_start();
    for part in body.split(", ") {
        if let Some((k, val)) = part.split_once('=') {
            if k.trim().eq_ignore_ascii_case(name) {
                return Some(val.trim().trim_matches('"').to_owned());
            }
        }
    }
    None
}

/// The `Authorization` value a phone sends for `challenge`.
pub(crate) struct Answer<'a> {
    pub(crate) username: &'a str,
    pub(crate) password: &'a str,
    pub(crate) method: &'a str,
    pub(crate) uri: &'a str,
    pub(crate) nc: u32,
    pub(crate) cnonce: &'a str,
}

impl Answer<'_> {
    pub(crate) fn to(&self, challenge: &str) -> String {
        let realm = param(challenge, "realm").unwrap();
        let nonce = param(challenge, "nonce").unwrap();
        let opaque = param(challenge, "opaque").unwrap();
        let alg = match param(challenge, "algorithm").as_deref() {
            Some("SHA-256") => Algorithm::Sha256,
            _ => Algorithm::Md5,
        };
        let ha1 = Ha1::from_password(self.username, &realm, self.password);
        let nc = format!("{:08x}", self.nc);
        let r = response(
            alg,
            ha1.get(alg).unwrap(),
            nonce.as_bytes(),
            nc.as_bytes(),
            self.cnonce.as_bytes(),
            b"auth",
            self.method.as_bytes(),
            self.uri.as_bytes(),
        )
        .hex();
        format!(
            "Digest username=\"{}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{}\", \
             response=\"{r}\", algorithm={}, cnonce=\"{}\", opaque=\"{opaque}\", qop=auth, nc={nc}",
            self.username,
            self.uri,
            alg.as_str(),
            self.cnonce
        )
    }
}

/// Some instant for a test's clock to start from.
#[allow(clippy::disallowed_methods)] // tests need some Instant to start from
pub(crate) fn t0() -> std::time::Instant {
    std::time::Instant::now()
}
