//! RFC 7616 digest computations (MD5 and SHA-256 with `qop=auth`, as RFC
//! 8760 carries them into SIP), HA1 values, and the parser of one `Digest`
//! credentials value. Nothing here keeps state; the nonce and nonce-count
//! rules live in [`crate::Authenticator`].

use std::borrow::Cow;
use std::fmt;

use md5::Md5;
use sha2::{Digest, Sha256};

/// A digest algorithm this crate offers and verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// `SHA-256` (RFC 7616 §3.2), offered first.
    Sha256,
    /// `MD5`, for phones that know nothing else.
    Md5,
}

impl Algorithm {
    /// The token as written in `algorithm=`.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Md5 => "MD5",
        }
    }

    /// Recognises an `algorithm=` value (case-insensitive). The `-sess`
    /// variants are not offered, so they are not recognised.
    pub(crate) fn parse(v: &[u8]) -> Option<Algorithm> {
        if v.eq_ignore_ascii_case(b"SHA-256") {
            Some(Algorithm::Sha256)
        } else if v.eq_ignore_ascii_case(b"MD5") {
            Some(Algorithm::Md5)
        } else {
            None
        }
    }

    /// Length of a digest of this algorithm in hex digits.
    pub fn hex_len(self) -> usize {
        self.len() * 2
    }

    fn len(self) -> usize {
        match self {
            Algorithm::Sha256 => 32,
            Algorithm::Md5 => 16,
        }
    }

    /// H(p0 ":" p1 ":" …).
    pub(crate) fn hash(self, parts: &[&[u8]]) -> Hash {
        fn run<D: Digest>(parts: &[&[u8]], out: &mut [u8; 32]) {
            let mut d = D::new();
            for (i, p) in parts.iter().enumerate() {
                if i > 0 {
                    d.update(b":");
                }
                d.update(p);
            }
            let r = d.finalize();
            out[..r.len()].copy_from_slice(&r);
        }
        let mut bytes = [0u8; 32];
        match self {
            Algorithm::Sha256 => run::<Sha256>(parts, &mut bytes),
            Algorithm::Md5 => run::<Md5>(parts, &mut bytes),
        }
        Hash { bytes, alg: self }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of algorithms: what a challenge offers, what a user's HA1s allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Algorithms {
    /// SHA-256 is in the set.
    pub sha256: bool,
    /// MD5 is in the set.
    pub md5: bool,
}

impl Algorithms {
    /// Both, SHA-256 first.
    pub const ALL: Algorithms = Algorithms {
        sha256: true,
        md5: true,
    };

    /// The members, in the order a challenge lists them (SHA-256 first,
    /// RFC 7616 §3.7 / RFC 8760 §2.4: most preferred first).
    pub fn iter(self) -> impl Iterator<Item = Algorithm> {
        [
            self.sha256.then_some(Algorithm::Sha256),
            self.md5.then_some(Algorithm::Md5),
        ]
        .into_iter()
        .flatten()
    }
}

/// A digest output (16 or 32 bytes).
#[derive(Clone, Copy)]
pub(crate) struct Hash {
    bytes: [u8; 32],
    alg: Algorithm,
}

impl Hash {
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.alg.len()]
    }

    /// Lowercase hex, as the digest formulas and the `response` use it.
    pub(crate) fn hex(&self) -> String {
        hex(self.as_bytes())
    }
}

pub(crate) fn hex(b: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for &x in b {
        s.push(char::from(DIGITS[usize::from(x >> 4)]));
        s.push(char::from(DIGITS[usize::from(x & 0xf)]));
    }
    s
}

/// Decodes hex (either case) into `out`; false unless `s` is exactly
/// `2 * out.len()` hex digits.
pub(crate) fn unhex(s: &[u8], out: &mut [u8]) -> bool {
    if s.len() != out.len() * 2 {
        return false;
    }
    let val = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    for (i, o) in out.iter_mut().enumerate() {
        match (val(s[2 * i]), val(s[2 * i + 1])) {
            (Some(h), Some(l)) => *o = h << 4 | l,
            _ => return false,
        }
    }
    true
}

/// Equality that takes the same time wherever the first difference is.
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A user's HA1 = H(username ":" realm ":" password) for each algorithm the
/// users file gave (from a password: both). Debug output never shows the
/// values.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct Ha1 {
    md5: Option<[u8; 16]>,
    sha256: Option<[u8; 32]>,
}

impl Ha1 {
    /// Both HA1s from a password.
    pub fn from_password(username: &str, realm: &str, password: &str) -> Ha1 {
        let parts: [&[u8]; 3] = [username.as_bytes(), realm.as_bytes(), password.as_bytes()];
        let mut md5 = [0u8; 16];
        md5.copy_from_slice(Algorithm::Md5.hash(&parts).as_bytes());
        let mut sha256 = [0u8; 32];
        sha256.copy_from_slice(Algorithm::Sha256.hash(&parts).as_bytes());
        Ha1 {
            md5: Some(md5),
            sha256: Some(sha256),
        }
    }

    /// HA1s given as hex (32 digits for MD5, 64 for SHA-256); `None` when a
    /// value is not hex of the right length or neither is given.
    pub fn from_hex(md5: Option<&str>, sha256: Option<&str>) -> Option<Ha1> {
        let mut h = Ha1::default();
        if let Some(s) = md5 {
            let mut b = [0u8; 16];
            unhex(s.as_bytes(), &mut b).then_some(())?;
            h.md5 = Some(b);
        }
        if let Some(s) = sha256 {
            let mut b = [0u8; 32];
            unhex(s.as_bytes(), &mut b).then_some(())?;
            h.sha256 = Some(b);
        }
        (h.md5.is_some() || h.sha256.is_some()).then_some(h)
    }

    /// The raw HA1 for `alg`, when the user has one.
    pub(crate) fn get(&self, alg: Algorithm) -> Option<&[u8]> {
        match alg {
            Algorithm::Md5 => self.md5.as_ref().map(|b| &b[..]),
            Algorithm::Sha256 => self.sha256.as_ref().map(|b| &b[..]),
        }
    }

    /// The algorithms this user can be verified with.
    pub fn algorithms(&self) -> Algorithms {
        Algorithms {
            sha256: self.sha256.is_some(),
            md5: self.md5.is_some(),
        }
    }
}

impl fmt::Debug for Ha1 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = |present: bool| if present { "<redacted>" } else { "none" };
        f.debug_struct("Ha1")
            .field("md5", &shown(self.md5.is_some()))
            .field("sha256", &shown(self.sha256.is_some()))
            .finish()
    }
}

/// The `response` RFC 7616 §3.4.1 defines for `qop=auth`:
/// H(hex(HA1) ":" nonce ":" nc ":" cnonce ":" qop ":" hex(H(method ":" uri))).
#[allow(clippy::too_many_arguments)] // the formula's own eight inputs
pub(crate) fn response(
    alg: Algorithm,
    ha1: &[u8],
    nonce: &[u8],
    nc: &[u8],
    cnonce: &[u8],
    qop: &[u8],
    method: &[u8],
    uri: &[u8],
) -> Hash {
    let ha1 = hex(ha1);
    let ha2 = alg.hash(&[method, uri]).hex();
    alg.hash(&[ha1.as_bytes(), nonce, nc, cnonce, qop, ha2.as_bytes()])
}

/// Largest credentials value read (one `Authorization` line).
pub(crate) const MAX_CREDENTIALS: usize = 4096;
/// Largest username accepted.
pub(crate) const MAX_USERNAME: usize = 128;
/// Largest realm, nonce, cnonce and opaque accepted.
pub(crate) const MAX_FIELD: usize = 256;
/// Largest digest-uri accepted.
pub(crate) const MAX_URI: usize = 1024;

/// Why a credentials value was not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CredError {
    /// Another scheme (`Basic`, …): not for us.
    NotDigest,
    /// Broken syntax or a missing or impossible directive.
    Malformed(&'static str),
    /// A directive, or the whole value, beyond the limits above.
    TooLarge(&'static str),
}

/// One parsed `Digest` credentials value (RFC 7616 §3.4). Quoted values
/// are unescaped; everything borrows from the message unless it had
/// quoted-pairs.
#[derive(Debug, Clone, Default)]
pub(crate) struct Credentials<'a> {
    pub(crate) username: Cow<'a, [u8]>,
    pub(crate) realm: Cow<'a, [u8]>,
    pub(crate) nonce: Cow<'a, [u8]>,
    pub(crate) uri: Cow<'a, [u8]>,
    pub(crate) response: Cow<'a, [u8]>,
    pub(crate) algorithm: Option<Cow<'a, [u8]>>,
    pub(crate) cnonce: Option<Cow<'a, [u8]>>,
    pub(crate) nc: Option<Cow<'a, [u8]>>,
    pub(crate) qop: Option<Cow<'a, [u8]>>,
    pub(crate) opaque: Option<Cow<'a, [u8]>>,
    pub(crate) userhash: Option<Cow<'a, [u8]>>,
}

fn is_token(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&c)
}

fn is_lws(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

fn skip_lws(v: &[u8], mut i: usize) -> usize {
    while i < v.len() && is_lws(v[i]) {
        i += 1;
    }
    i
}

/// Reads a quoted string starting at `v[i] == '"'`: (unescaped value, index
/// after the closing quote).
fn quoted(v: &[u8], i: usize) -> Option<(Cow<'_, [u8]>, usize)> {
    let start = i + 1;
    let mut j = start;
    let mut escaped = false;
    while j < v.len() {
        match v[j] {
            b'\\' => {
                escaped = true;
                j += 2;
            }
            b'"' => break,
            _ => j += 1,
        }
    }
    if j >= v.len() {
        return None;
    }
    let raw = &v[start..j];
    if !escaped {
        return Some((Cow::Borrowed(raw), j + 1));
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut k = 0;
    while k < raw.len() {
        if raw[k] == b'\\' && k + 1 < raw.len() {
            k += 1;
        }
        out.push(raw[k]);
        k += 1;
    }
    Some((Cow::Owned(out), j + 1))
}

/// Parses `Digest name=value, name="value", …`.
pub(crate) fn parse_credentials(v: &[u8]) -> Result<Credentials<'_>, CredError> {
    use CredError::{Malformed, TooLarge};
    if v.len() > MAX_CREDENTIALS {
        return Err(TooLarge("credentials too large"));
    }
    let mut i = skip_lws(v, 0);
    let s = i;
    while i < v.len() && is_token(v[i]) {
        i += 1;
    }
    if !v[s..i].eq_ignore_ascii_case(b"Digest") {
        return Err(CredError::NotDigest);
    }
    if i == v.len() || !is_lws(v[i]) {
        return Err(Malformed("no digest parameters"));
    }
    let mut c = Credentials::default();
    let mut seen: u16 = 0;
    loop {
        i = skip_lws(v, i);
        if i == v.len() {
            break;
        }
        let ns = i;
        while i < v.len() && is_token(v[i]) {
            i += 1;
        }
        let name = &v[ns..i];
        if name.is_empty() {
            return Err(Malformed("bad digest parameter"));
        }
        i = skip_lws(v, i);
        if v.get(i) != Some(&b'=') {
            return Err(Malformed("digest parameter without value"));
        }
        i = skip_lws(v, i + 1);
        let value: Cow<'_, [u8]> = if v.get(i) == Some(&b'"') {
            let (val, next) = quoted(v, i).ok_or(Malformed("unterminated quoted string"))?;
            i = next;
            val
        } else {
            let vs = i;
            while i < v.len() && is_token(v[i]) {
                i += 1;
            }
            if vs == i {
                return Err(Malformed("empty digest parameter"));
            }
            Cow::Borrowed(&v[vs..i])
        };
        i = skip_lws(v, i);
        match v.get(i) {
            None => {}
            Some(b',') => i += 1,
            Some(_) => return Err(Malformed("digest parameters not separated by commas")),
        }
        let lower = name.to_ascii_lowercase();
        let (bit, slot): (u16, &mut Option<Cow<'_, [u8]>>) = match lower.as_slice() {
            b"algorithm" => (1, &mut c.algorithm),
            b"cnonce" => (2, &mut c.cnonce),
            b"nc" => (4, &mut c.nc),
            b"qop" => (8, &mut c.qop),
            b"opaque" => (16, &mut c.opaque),
            b"userhash" => (32, &mut c.userhash),
            b"username" | b"realm" | b"nonce" | b"uri" | b"response" => {
                let (bit, field, max, what) = match lower.as_slice() {
                    b"username" => (64, &mut c.username, MAX_USERNAME, "username too long"),
                    b"realm" => (128, &mut c.realm, MAX_FIELD, "realm too long"),
                    b"nonce" => (256, &mut c.nonce, MAX_FIELD, "nonce too long"),
                    b"uri" => (512, &mut c.uri, MAX_URI, "digest uri too long"),
                    _ => (1024, &mut c.response, 64, "response too long"),
                };
                if seen & bit != 0 {
                    return Err(Malformed("repeated digest parameter"));
                }
                seen |= bit;
                if value.len() > max {
                    return Err(TooLarge(what));
                }
                *field = value;
                continue;
            }
            // Unknown directives are ignored (RFC 7616 §3.4).
            _ => continue,
        };
        if seen & bit != 0 {
            return Err(Malformed("repeated digest parameter"));
        }
        seen |= bit;
        if value.len() > MAX_FIELD {
            return Err(TooLarge("digest parameter too long"));
        }
        *slot = Some(value);
    }
    for (bit, what) in [
        (64, "no username"),
        (128, "no realm"),
        (256, "no nonce"),
        (512, "no digest uri"),
        (1024, "no response"),
    ] {
        if seen & bit == 0 {
            return Err(Malformed(what));
        }
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7616 §3.9.1: "Mufasa" / "Circle of Life", GET /dir/index.html.
    const NONCE: &[u8] = b"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
    const CNONCE: &[u8] = b"f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";

    fn rfc_response(alg: Algorithm) -> String {
        let ha1 = Ha1::from_password("Mufasa", "http-auth@example.org", "Circle of Life");
        response(
            alg,
            ha1.get(alg).unwrap(),
            NONCE,
            b"00000001",
            CNONCE,
            b"auth",
            b"GET",
            b"/dir/index.html",
        )
        .hex()
    }

    #[test]
    fn rfc7616_3_9_1_md5_response() {
        assert_eq!(
            rfc_response(Algorithm::Md5),
            "8ca523f5e9506fed4657c9700eebdbec"
        );
    }

    #[test]
    fn rfc7616_3_9_1_sha256_response() {
        assert_eq!(
            rfc_response(Algorithm::Sha256),
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
    }

    #[test]
    fn ha1_from_hex_matches_from_password_and_hides_itself() {
        let p = Ha1::from_password("Mufasa", "http-auth@example.org", "Circle of Life");
        let md5 = hex(p.get(Algorithm::Md5).unwrap());
        let sha = hex(p.get(Algorithm::Sha256).unwrap());
        assert_eq!(Ha1::from_hex(Some(&md5), Some(&sha)), Some(p));
        let only = Ha1::from_hex(Some(&md5.to_uppercase()), None).unwrap();
        assert_eq!(
            only.algorithms(),
            Algorithms {
                sha256: false,
                md5: true
            }
        );
        assert_eq!(Ha1::from_hex(Some("abc"), None), None);
        assert_eq!(Ha1::from_hex(None, Some(&md5)), None, "wrong length");
        assert_eq!(Ha1::from_hex(None, None), None);
        let dbg = format!("{p:?}");
        assert!(!dbg.contains(&md5) && !dbg.contains(&sha), "{dbg}");
        assert!(dbg.contains("redacted"));
    }

    #[test]
    fn parses_the_rfc_credentials() {
        let v = br#"Digest username="Mufasa", realm="http-auth@example.org",
            uri="/dir/index.html", algorithm=SHA-256,
            nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", nc=00000001,
            cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", qop=auth,
            response="753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
            opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#;
        let c = parse_credentials(v).unwrap();
        assert_eq!(&*c.username, b"Mufasa");
        assert_eq!(&*c.realm, b"http-auth@example.org");
        assert_eq!(c.algorithm.as_deref(), Some(&b"SHA-256"[..]));
        assert_eq!(c.nc.as_deref(), Some(&b"00000001"[..]));
        assert_eq!(c.qop.as_deref(), Some(&b"auth"[..]));
        assert_eq!(&*c.nonce, NONCE);
    }

    #[test]
    fn quoted_pairs_are_unescaped() {
        let c = parse_credentials(
            br#"Digest username="a\"b", realm="r", nonce="n", uri="sip:x", response="0""#,
        )
        .unwrap();
        assert_eq!(&*c.username, b"a\"b");
    }

    #[test]
    fn broken_credentials_are_refused_with_a_reason() {
        let cases: &[(&[u8], CredError)] = &[
            (b"Basic QWxhZGRpbg==", CredError::NotDigest),
            (b"Digest", CredError::Malformed("no digest parameters")),
            (
                br#"Digest username="a, realm="r""#,
                CredError::Malformed("digest parameters not separated by commas"),
            ),
            (br#"Digest username="a"#, CredError::Malformed("unterminated quoted string")),
            (
                br#"Digest username="a", username="b", realm="r", nonce="n", uri="u", response="0""#,
                CredError::Malformed("repeated digest parameter"),
            ),
            (
                br#"Digest realm="r", nonce="n", uri="u", response="0""#,
                CredError::Malformed("no username"),
            ),
            (b"Digest username=", CredError::Malformed("empty digest parameter")),
            (b"Digest =x", CredError::Malformed("bad digest parameter")),
            (b"Digest username", CredError::Malformed("digest parameter without value")),
        ];
        for (v, want) in cases {
            assert_eq!(
                parse_credentials(v).map(|_| ()),
                Err(*want),
                "{}",
                String::from_utf8_lossy(v)
            );
        }
    }

    #[test]
    fn oversized_credentials_are_too_large() {
        let long = "u".repeat(MAX_USERNAME + 1);
        let v = format!(r#"Digest username="{long}", realm="r", nonce="n", uri="u", response="0""#);
        assert_eq!(
            parse_credentials(v.as_bytes()).map(|_| ()),
            Err(CredError::TooLarge("username too long"))
        );
        let v = format!(
            "Digest username=\"a\", x=\"{}\"",
            "y".repeat(MAX_CREDENTIALS)
        );
        assert_eq!(
            parse_credentials(v.as_bytes()).map(|_| ()),
            Err(CredError::TooLarge("credentials too large"))
        );
        let v = format!(r#"Digest username="a", response="{}""#, "0".repeat(65));
        assert_eq!(
            parse_credentials(v.as_bytes()).map(|_| ()),
            Err(CredError::TooLarge("response too long"))
        );
    }

    #[test]
    fn hex_helpers() {
        let mut b = [0u8; 2];
        assert!(unhex(b"aBcd", &mut b));
        assert_eq!(b, [0xab, 0xcd]);
        assert!(!unhex(b"abc", &mut b));
        assert!(!unhex(b"zz00", &mut b));
        assert_eq!(hex(&[0, 0xff]), "00ff");
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
    }
}
