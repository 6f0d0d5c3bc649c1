//! Typed views of header values, parsed on demand from the bytes of the
//! message. Each parser takes one value (one element of a comma list) and
//! borrows from it.

use std::fmt;

use crate::text::{
    is_lws, is_token, is_token_str, is_word, params_ok, parse_u64, quoted_len, skip_lws, trim_lws,
    Params,
};
use crate::uri::{Host, Uri, UriError};

/// Why a header value did not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ValueError {
    /// The value is empty where something is required.
    Empty,
    /// A quoted string has no closing quote.
    UnterminatedQuote,
    /// `<` without `>`, or text after `>` that is not a parameter.
    BadAngleBrackets,
    /// The display name has characters a token cannot have and is not quoted.
    BadDisplayName,
    /// The URI is malformed.
    Uri(UriError),
    /// A URI containing `,`, `?` or `;` that is not enclosed in `<>` (RFC 3261 §20).
    UnbracketedUri,
    /// A parameter is malformed.
    BadParams,
    /// A number is missing, malformed or out of range.
    BadNumber,
    /// Via sent-protocol is malformed.
    BadProtocol,
    /// Via sent-by is malformed.
    BadSentBy,
    /// A method or token is malformed.
    BadToken,
    /// Call-ID has characters outside `word`.
    BadCallId,
    /// A `type/subtype` media type is malformed.
    BadMediaType,
    /// An unquoted comma in a single-value header (RFC 4475 baddn).
    SeveralValues,
}

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValueError::Empty => f.write_str("empty value"),
            ValueError::UnterminatedQuote => f.write_str("unterminated quoted string"),
            ValueError::BadAngleBrackets => f.write_str("bad angle brackets"),
            ValueError::BadDisplayName => f.write_str("bad display name"),
            ValueError::Uri(e) => write!(f, "{e}"),
            ValueError::UnbracketedUri => f.write_str("URI with , ? or ; must be in <>"),
            ValueError::BadParams => f.write_str("bad parameter"),
            ValueError::BadNumber => f.write_str("bad number"),
            ValueError::BadProtocol => f.write_str("bad sent-protocol"),
            ValueError::BadSentBy => f.write_str("bad sent-by"),
            ValueError::BadToken => f.write_str("bad token"),
            ValueError::BadCallId => f.write_str("bad Call-ID"),
            ValueError::BadMediaType => f.write_str("bad media type"),
            ValueError::SeveralValues => f.write_str("unquoted comma: several values"),
        }
    }
}

impl std::error::Error for ValueError {}

impl From<UriError> for ValueError {
    fn from(e: UriError) -> Self {
        ValueError::Uri(e)
    }
}

/// Converts validated ASCII bytes to `&str`.
fn ascii(s: &[u8]) -> Result<&str, ValueError> {
    std::str::from_utf8(s).map_err(|_| ValueError::BadToken)
}

/// `name-addr` or `addr-spec` with header parameters: From, To, Contact,
/// Route, Record-Route, Refer-To, P-Asserted-Identity, …
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameAddr<'a> {
    /// Display name as written (quotes kept), if any.
    pub display_name: Option<&'a [u8]>,
    /// The URI.
    pub uri: Uri<'a>,
    /// The URI text as written.
    pub uri_raw: &'a [u8],
    /// Byte range of `uri_raw` within the value this was parsed from.
    pub uri_range: (usize, usize),
    /// True when the URI was enclosed in `<>`.
    pub bracketed: bool,
    /// Raw header parameters after the URI (starts with `;`, or empty).
    pub params_raw: &'a [u8],
}

impl<'a> NameAddr<'a> {
    /// Parses one name-addr / addr-spec value.
    pub fn parse(v: &'a [u8]) -> Result<NameAddr<'a>, ValueError> {
        let start = skip_lws(v, 0);
        if start == v.len() {
            return Err(ValueError::Empty);
        }
        let mut i = start;
        let mut display_name = None;
        if v[i] == b'"' {
            let n = quoted_len(&v[i..]).ok_or(ValueError::UnterminatedQuote)?;
            display_name = Some(&v[i..i + n]);
            i = skip_lws(v, i + n);
            if v.get(i) != Some(&b'<') {
                return Err(ValueError::BadAngleBrackets);
            }
        } else if let Some(lt) = memchr::memchr(b'<', v) {
            // Either `*(token LWS) <uri>` or an addr-spec whose parameters contain '<'
            // (which is invalid anyway).
            let dn = trim_lws(&v[i..lt]);
            if !dn.is_empty() {
                if !dn.iter().all(|&b| is_token(b) || is_lws(b) || b >= 0x80) {
                    return Err(ValueError::BadDisplayName);
                }
                display_name = Some(dn);
            }
            i = lt;
        }
        if v.get(i) == Some(&b'<') {
            let close = memchr::memchr(b'>', &v[i..]).ok_or(ValueError::BadAngleBrackets)? + i;
            let uri_raw = &v[i + 1..close];
            let uri = Uri::parse(uri_raw)?;
            let rest = &v[close + 1..];
            if !params_ok(rest) {
                return Err(ValueError::BadParams);
            }
            return Ok(NameAddr {
                display_name,
                uri,
                uri_raw,
                uri_range: (i + 1, close),
                bracketed: true,
                params_raw: rest,
            });
        }
        // addr-spec: the URI ends at the first ';' (what follows are header params),
        // and may contain neither ',' nor '?' (RFC 3261 §20).
        let end = v[i..]
            .iter()
            .position(|&b| b == b';' || is_lws(b))
            .map_or(v.len(), |p| p + i);
        let uri_raw = &v[i..end];
        if uri_raw.contains(&b'?') || uri_raw.contains(&b',') {
            return Err(ValueError::UnbracketedUri);
        }
        let uri = Uri::parse(uri_raw)?;
        let rest = &v[end..];
        if !params_ok(rest) {
            return Err(ValueError::BadParams);
        }
        Ok(NameAddr {
            display_name,
            uri,
            uri_raw,
            uri_range: (i, end),
            bracketed: false,
            params_raw: rest,
        })
    }

    /// Header parameters.
    pub fn params(&self) -> Params<'a> {
        Params::new(self.params_raw)
    }

    /// The `tag` parameter.
    pub fn tag(&self) -> Option<&'a [u8]> {
        self.params().get("tag").flatten()
    }
}

/// One Contact value: `*` or a name-addr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contact<'a> {
    /// `Contact: *` (REGISTER removing all bindings).
    Star,
    /// A contact address.
    Addr(NameAddr<'a>),
}

impl<'a> Contact<'a> {
    /// Parses one Contact value.
    pub fn parse(v: &'a [u8]) -> Result<Contact<'a>, ValueError> {
        if trim_lws(v) == b"*" {
            return Ok(Contact::Star);
        }
        NameAddr::parse(v).map(Contact::Addr)
    }
}

/// One Via value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Via<'a> {
    /// Protocol name (`SIP`).
    pub protocol: &'a str,
    /// Protocol version (`2.0`).
    pub version: &'a str,
    /// Transport token as written (`UDP`, `TCP`, `TLS`, `SCTP`, anything else).
    pub transport: &'a str,
    /// sent-by host.
    pub host: Host<'a>,
    /// sent-by port.
    pub port: Option<u16>,
    /// Raw parameters (starts with `;`, or empty).
    pub params_raw: &'a [u8],
}

impl<'a> Via<'a> {
    /// Parses one Via value (`SIP / 2.0 / UDP host:port;params`).
    pub fn parse(v: &'a [u8]) -> Result<Via<'a>, ValueError> {
        let mut i = skip_lws(v, 0);
        let mut parts: [&[u8]; 3] = [&[]; 3];
        for (n, part) in parts.iter_mut().enumerate() {
            let s = i;
            while i < v.len() && is_token(v[i]) {
                i += 1;
            }
            *part = &v[s..i];
            if part.is_empty() {
                return Err(ValueError::BadProtocol);
            }
            i = skip_lws(v, i);
            if n < 2 {
                if v.get(i) != Some(&b'/') {
                    return Err(ValueError::BadProtocol);
                }
                i = skip_lws(v, i + 1);
            }
        }
        if i == v.len() {
            return Err(ValueError::BadSentBy);
        }
        // sent-by = host [ COLON port ]
        let hs = i;
        if v[i] == b'[' {
            i = memchr::memchr(b']', &v[i..]).ok_or(ValueError::BadSentBy)? + i + 1;
        } else {
            while i < v.len() && !matches!(v[i], b':' | b';') && !is_lws(v[i]) {
                i += 1;
            }
        }
        let host = Host::parse(&v[hs..i]).map_err(|_| ValueError::BadSentBy)?;
        i = skip_lws(v, i);
        let mut port = None;
        if v.get(i) == Some(&b':') {
            i = skip_lws(v, i + 1);
            let ps = i;
            while i < v.len() && v[i].is_ascii_digit() {
                i += 1;
            }
            port = Some(parse_u64(&v[ps..i], 65535).ok_or(ValueError::BadSentBy)? as u16);
        }
        let params_raw = &v[i..];
        if !params_ok(params_raw) {
            return Err(ValueError::BadParams);
        }
        let via = Via {
            protocol: ascii(parts[0])?,
            version: ascii(parts[1])?,
            transport: ascii(parts[2])?,
            host,
            port,
            params_raw,
        };
        if let Some(r) = via.received() {
            let ok = Host::parse(r).is_ok_and(|h| !matches!(h, Host::Name(_)))
                || Host::parse_ipv6_bare(r).is_ok();
            if !ok {
                return Err(ValueError::BadParams);
            }
        }
        Ok(via)
    }

    /// Parameters.
    pub fn params(&self) -> Params<'a> {
        Params::new(self.params_raw)
    }

    /// The `branch` parameter.
    pub fn branch(&self) -> Option<&'a [u8]> {
        self.params().get("branch").flatten()
    }

    /// True when the branch starts with the RFC 3261 magic cookie `z9hG4bK`
    /// and has something after it (RFC 4475 §3.2.1 `badbranch` does not).
    pub fn has_rfc3261_branch(&self) -> bool {
        self.branch()
            .is_some_and(|b| b.len() > 7 && b.starts_with(b"z9hG4bK"))
    }

    /// The `received` parameter (brackets kept if written).
    pub fn received(&self) -> Option<&'a [u8]> {
        self.params().get("received").flatten()
    }

    /// `Some(None)` for a bare `;rport`, `Some(Some(port))` when filled in.
    pub fn rport(&self) -> Option<Option<&'a [u8]>> {
        self.params().get("rport")
    }
}

/// CSeq: sequence number and method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CSeq<'a> {
    /// Sequence number (< 2^32).
    pub seq: u32,
    /// Method as written.
    pub method: &'a str,
}

impl<'a> CSeq<'a> {
    /// Parses `1*DIGIT LWS Method`.
    pub fn parse(v: &'a [u8]) -> Result<CSeq<'a>, ValueError> {
        let v = trim_lws(v);
        let sp = v
            .iter()
            .position(|&b| is_lws(b))
            .ok_or(ValueError::BadToken)?;
        let seq = parse_u64(&v[..sp], u64::from(u32::MAX)).ok_or(ValueError::BadNumber)? as u32;
        let m = trim_lws(&v[sp..]);
        if !is_token_str(m) {
            return Err(ValueError::BadToken);
        }
        Ok(CSeq {
            seq,
            method: ascii(m)?,
        })
    }
}

/// Parses a Call-ID (`word [@ word]`).
pub fn parse_call_id(v: &[u8]) -> Result<&str, ValueError> {
    let v = trim_lws(v);
    if v.is_empty() {
        return Err(ValueError::Empty);
    }
    let (a, b) = match memchr::memchr(b'@', v) {
        Some(at) => (&v[..at], &v[at + 1..]),
        None => (v, &b"x"[..]),
    };
    if a.is_empty()
        || b.is_empty()
        || !a.iter().all(|&c| is_word(c))
        || !b.iter().all(|&c| is_word(c))
    {
        return Err(ValueError::BadCallId);
    }
    // `word` characters are ASCII.
    std::str::from_utf8(v).map_err(|_| ValueError::BadCallId)
}

/// Parses an unsigned decimal value no larger than `max` (Max-Forwards,
/// Content-Length, Expires, …).
pub fn parse_number(v: &[u8], max: u64) -> Result<u64, ValueError> {
    parse_u64(trim_lws(v), max).ok_or(ValueError::BadNumber)
}

/// A media type (`type/subtype;params`): Content-Type and Accept elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaType<'a> {
    /// Type, e.g. `application`.
    pub kind: &'a str,
    /// Subtype, e.g. `sdp`.
    pub subtype: &'a str,
    /// Raw parameters.
    pub params_raw: &'a [u8],
}

impl<'a> MediaType<'a> {
    /// Parses `type LWS "/" LWS subtype *(SEMI param)`.
    pub fn parse(v: &'a [u8]) -> Result<MediaType<'a>, ValueError> {
        let v = trim_lws(v);
        let slash = memchr::memchr(b'/', v).ok_or(ValueError::BadMediaType)?;
        let kind = trim_lws(&v[..slash]);
        let rest = &v[slash + 1..];
        let s = skip_lws(rest, 0);
        let mut e = s;
        while e < rest.len() && is_token(rest[e]) {
            e += 1;
        }
        let subtype = &rest[s..e];
        if !is_token_str(kind) || !is_token_str(subtype) {
            return Err(ValueError::BadMediaType);
        }
        let params_raw = &rest[e..];
        if !params_ok(params_raw) {
            return Err(ValueError::BadParams);
        }
        Ok(MediaType {
            kind: ascii(kind)?,
            subtype: ascii(subtype)?,
            params_raw,
        })
    }

    /// True for `application/sdp` (case-insensitive).
    pub fn is_sdp(&self) -> bool {
        self.kind.eq_ignore_ascii_case("application") && self.subtype.eq_ignore_ascii_case("sdp")
    }

    /// True when this (Accept) media range admits `kind/subtype`.
    pub fn admits(&self, kind: &str, subtype: &str) -> bool {
        (self.kind == "*" || self.kind.eq_ignore_ascii_case(kind))
            && (self.subtype == "*" || self.subtype.eq_ignore_ascii_case(subtype))
    }
}

/// Parses one token of a token list (Require, Supported, Allow, …).
pub fn parse_token(v: &[u8]) -> Result<&str, ValueError> {
    let v = trim_lws(v);
    if !is_token_str(v) {
        return Err(ValueError::BadToken);
    }
    ascii(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_addr_forms() {
        let n = NameAddr::parse(br#""Bell, Alexander" <sip:a.g.bell@example.com>;tag=43"#).unwrap();
        assert_eq!(n.display_name, Some(&br#""Bell, Alexander""#[..]));
        assert_eq!(n.tag(), Some(&b"43"[..]));
        assert!(n.bracketed);
        let n = NameAddr::parse(b"caller<sip:caller@example.com>;tag=323").unwrap();
        assert_eq!(n.display_name, Some(&b"caller"[..]));
        let n = NameAddr::parse(b"sip:user@example.com;tag=1").unwrap();
        assert!(!n.bracketed);
        assert_eq!(n.tag(), Some(&b"1"[..]));
        assert_eq!(n.uri_raw, b"sip:user@example.com");
        assert_eq!(
            NameAddr::parse(b"sip:user@example.com?Route=%3Csip:x%3E"),
            Err(ValueError::UnbracketedUri)
        );
        assert_eq!(
            NameAddr::parse(b"\"Watson <sip:t@example.org>"),
            Err(ValueError::UnterminatedQuote)
        );
        assert!(NameAddr::parse(b"< sip:t.watson@example.org >").is_err());
        assert!(NameAddr::parse(b"\"J\" <sip:j@example.org>;;;;").is_err());
    }

    #[test]
    fn via_with_lws_and_ipv6() {
        let v = Via::parse(b"SIP  /   2.0 / UDP [2001:db8::9:1]:5061 ; branch = z9hG4bK1;received=[2001:db8::9:255]").unwrap();
        assert_eq!(v.transport, "UDP");
        assert_eq!(v.port, Some(5061));
        assert_eq!(v.branch(), Some(&b"z9hG4bK1"[..]));
        assert!(v.has_rfc3261_branch());
        Via::parse(b"SIP/2.0/UDP host;received=2001:db8::9:255").unwrap();
        assert!(Via::parse(b"SIP/2.0/UDP 192.0.2.15;;").is_err());
        assert!(Via::parse(b"").is_err());
        assert!(!Via::parse(b"SIP/2.0/UDP h;branch=z9hG4bK")
            .unwrap()
            .has_rfc3261_branch());
    }

    #[test]
    fn cseq_and_numbers() {
        assert_eq!(
            CSeq::parse(b" 4711  INVITE ").unwrap(),
            CSeq {
                seq: 4711,
                method: "INVITE"
            }
        );
        assert!(CSeq::parse(b"36893488147419103232 INVITE").is_err());
        assert!(CSeq::parse(b"1").is_err());
        assert_eq!(parse_number(b" 0068", 255), Ok(68));
        assert!(parse_number(b"-999", u64::MAX).is_err());
    }

    #[test]
    fn media_types() {
        let m = MediaType::parse(b"application/SDP; charset=utf-8").unwrap();
        assert!(m.is_sdp());
        assert!(MediaType::parse(b"*/*")
            .unwrap()
            .admits("application", "sdp"));
        assert!(!MediaType::parse(b"text/nobodyKnowsThis")
            .unwrap()
            .admits("application", "sdp"));
    }
}
