//! Helpers shared by the unit tests: messages from text, and a digest
//! client that answers a challenge the way a phone does.

use bytes::Bytes;
use sip::Message;

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
        crate::client::answer_challenge(
            challenge,
            &crate::client::Credentials {
                username: self.username,
                password: self.password,
                method: self.method,
                uri: self.uri,
                nc: self.nc,
                cnonce: self.cnonce,
            },
        )
        .expect("a challenge the tests wrote")
    }
}

/// Some instant for a test's clock to start from.
#[allow(clippy::disallowed_methods)] // tests need some Instant to start from
pub(crate) fn t0() -> std::time::Instant {
    std::time::Instant::now()
}
