//! The client side of digest authentication (RFC 7616 §3.4): answering a
//! `WWW-Authenticate` / `Proxy-Authenticate` challenge with `qop=auth`, as
//! a phone does — and as the SBC does toward a carrier that challenges it.

use crate::digest::{response, Algorithm, Ha1};

/// Who answers a challenge, and for which request.
#[derive(Debug, Clone, Copy)]
pub struct Credentials<'a> {
    /// Username.
    pub username: &'a str,
    /// Password (never stored, never printed).
    pub password: &'a str,
    /// The request's method.
    pub method: &'a str,
    /// The request's Request-URI.
    pub uri: &'a str,
    /// Nonce-count: 1 for the first use of a nonce, then up.
    pub nc: u32,
    /// Client nonce.
    pub cnonce: &'a str,
}

/// The value of directive `name` in a challenge or credentials value
/// (`Digest realm="x", nonce="y", …`), quotes removed; commas inside
/// quoted strings are kept.
pub fn directive(value: &str, name: &str) -> Option<String> {
    let body = value.trim_start();
    let body = body
        .strip_prefix("Digest")
        .or_else(|| body.strip_prefix("digest"))
        .unwrap_or(body);
    let mut rest = body;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            return None;
        }
        let eq = rest.find('=')?;
        let key = rest[..eq].trim();
        let after = rest[eq + 1..].trim_start();
        let (val, next) = if let Some(q) = after.strip_prefix('"') {
            let mut out = String::new();
            let mut chars = q.char_indices();
            let mut end = q.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            out.push(n);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => out.push(c),
                }
            }
            (out, &q[end.min(q.len())..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_owned(), &after[end..])
        };
        if key.eq_ignore_ascii_case(name) {
            return Some(val);
        }
        rest = next;
    }
}

/// The credentials value (`Authorization` / `Proxy-Authorization`) that
/// answers `challenge` for `c`; `None` when the challenge lacks a realm or
/// nonce, or names an algorithm other than MD5 and SHA-256.
pub fn answer_challenge(challenge: &str, c: &Credentials<'_>) -> Option<String> {
    let realm = directive(challenge, "realm")?;
    let nonce = directive(challenge, "nonce")?;
    let opaque = directive(challenge, "opaque");
    let alg = match directive(challenge, "algorithm").as_deref() {
        None => Algorithm::Md5,
        Some(a) if a.eq_ignore_ascii_case("MD5") => Algorithm::Md5,
        Some(a) if a.eq_ignore_ascii_case("SHA-256") => Algorithm::Sha256,
        Some(_) => return None,
    };
    let ha1 = Ha1::from_password(c.username, &realm, c.password);
    let nc = format!("{:08x}", c.nc);
    let r = response(
        alg,
        ha1.get(alg)?,
        nonce.as_bytes(),
        nc.as_bytes(),
        c.cnonce.as_bytes(),
        b"auth",
        c.method.as_bytes(),
        c.uri.as_bytes(),
    )
    .hex();
    let mut v = format!(
        "Digest username=\"{}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{}\", \
         response=\"{r}\", algorithm={}, cnonce=\"{}\", qop=auth, nc={nc}",
        c.username,
        c.uri,
        alg.as_str(),
        c.cnonce
    );
    if let Some(o) = opaque {
        v.push_str(&format!(", opaque=\"{o}\""));
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7616_example_is_answered_with_its_response() {
        // RFC 7616 §3.9.1: the SHA-256 challenge and the response value.
        let challenge = "Digest realm=\"http-auth@example.org\", qop=\"auth, auth-int\", \
                         algorithm=SHA-256, nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", \
                         opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\"";
        let c = Credentials {
            username: "Mufasa",
            password: "Circle of Life",
            method: "GET",
            uri: "/dir/index.html",
            nc: 1,
            cnonce: "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
        };
        let v = answer_challenge(challenge, &c).unwrap();
        assert_eq!(
            directive(&v, "response").as_deref(),
            Some("753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1")
        );
        assert_eq!(
            directive(&v, "opaque").as_deref(),
            directive(challenge, "opaque").as_deref()
        );
        assert_eq!(
            directive(challenge, "qop").as_deref(),
            Some("auth, auth-int")
        );
    }

    #[test]
    fn unknown_algorithms_and_missing_nonces_are_not_answered() {
        let c = Credentials {
            username: "u",
            password: "p",
            method: "REGISTER",
            uri: "sip:x",
            nc: 1,
            cnonce: "c",
        };
        assert!(
            answer_challenge("Digest realm=\"r\", nonce=\"n\", algorithm=SHA-512-256", &c)
                .is_none()
        );
        assert!(answer_challenge("Digest realm=\"r\"", &c).is_none());
        assert!(answer_challenge("Digest realm=\"r\", nonce=\"n\"", &c).is_some());
    }
}
