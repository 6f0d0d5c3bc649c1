//! URIs: `sip:`/`sips:` (RFC 3261 §19.1, §25.1 with RFC 5118's IPv6 rules),
//! `tel:` (RFC 3966), and any other scheme kept as an opaque absolute URI.
//! Views borrow from the message; nothing here allocates.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::text::{escaped_ok, is_token, is_unreserved, params_ok, Params};

/// Why a URI did not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum UriError {
    /// No `scheme:` prefix.
    NoScheme,
    /// Empty host or a host with characters a host cannot have.
    BadHost,
    /// The port is not a number in 0..=65535.
    BadPort,
    /// The user or password part has an illegal character or a broken `%` escape.
    BadUserInfo,
    /// A URI parameter is malformed.
    BadParams,
    /// The `?headers` part is malformed.
    BadHeaders,
    /// A `tel:` number has an illegal character.
    BadTelNumber,
    /// Whitespace or a control character inside the URI.
    IllegalCharacter,
}

impl fmt::Display for UriError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UriError::NoScheme => "no URI scheme",
            UriError::BadHost => "bad host",
            UriError::BadPort => "bad port",
            UriError::BadUserInfo => "bad user part",
            UriError::BadParams => "bad URI parameter",
            UriError::BadHeaders => "bad URI headers",
            UriError::BadTelNumber => "bad tel number",
            UriError::IllegalCharacter => "illegal character in URI",
        })
    }
}

impl std::error::Error for UriError {}

/// The scheme of a URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `sip:`
    Sip,
    /// `sips:`
    Sips,
    /// `tel:`
    Tel,
    /// Anything else; the URI is kept opaque.
    Other,
}

/// A host in a SIP URI or Via sent-by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host<'a> {
    /// A domain name (not resolved, not lower-cased).
    Name(&'a str),
    /// An IPv4 address.
    Ipv4(Ipv4Addr),
    /// An IPv6 reference. `text` is what was written between the brackets;
    /// `addr` is the address when it is valid by RFC 4291 (RFC 5118 §4.10's
    /// three-colon form is tolerated as RFC 3261's ABNF allows it).
    Ipv6 {
        /// The address.
        addr: Ipv6Addr,
        /// The text between the brackets as written.
        text: &'a str,
    },
}

impl fmt::Display for Host<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(n) => f.write_str(n),
            Host::Ipv4(a) => write!(f, "{a}"),
            Host::Ipv6 { text, .. } => write!(f, "[{text}]"),
        }
    }
}

impl<'a> Host<'a> {
    /// Parses a host: `[IPv6]`, dotted IPv4 or a hostname.
    pub fn parse(s: &'a [u8]) -> Result<Host<'a>, UriError> {
        if s.first() == Some(&b'[') {
            if s.len() < 3 || s[s.len() - 1] != b']' {
                return Err(UriError::BadHost);
            }
            return parse_ipv6(&s[1..s.len() - 1]);
        }
        if s.is_empty() {
            return Err(UriError::BadHost);
        }
        if s.iter().all(|b| b.is_ascii_digit() || *b == b'.') {
            // All-numeric: must be a valid dotted quad (a toplabel may not start with a digit).
            let t = std::str::from_utf8(s).map_err(|_| UriError::BadHost)?;
            return t.parse().map(Host::Ipv4).map_err(|_| UriError::BadHost);
        }
        if !s
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
            || s[0] == b'.'
            || s[0] == b'-'
            || s.windows(2).any(|w| w == b"..")
        {
            return Err(UriError::BadHost);
        }
        // Checked to be ASCII just above.
        std::str::from_utf8(s)
            .map(Host::Name)
            .map_err(|_| UriError::BadHost)
    }

    /// Parses an IPv6 address written without brackets (a Via `received`).
    pub fn parse_ipv6_bare(s: &'a [u8]) -> Result<Host<'a>, UriError> {
        parse_ipv6(s)
    }

    /// True for the limited broadcast address and IPv4/IPv6 multicast, which a
    /// SIP element must never send a response to.
    pub fn is_broadcast_or_multicast(&self) -> bool {
        match self {
            Host::Ipv4(a) => a.is_broadcast() || a.is_multicast(),
            Host::Ipv6 { addr, .. } => addr.is_multicast(),
            Host::Name(_) => false,
        }
    }
}

fn parse_ipv6(inner: &[u8]) -> Result<Host<'_>, UriError> {
    let text = std::str::from_utf8(inner).map_err(|_| UriError::BadHost)?;
    if inner.is_empty()
        || inner.len() > 64
        || !text
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
    {
        return Err(UriError::BadHost);
    }
    if let Ok(addr) = text.parse::<Ipv6Addr>() {
        return Ok(Host::Ipv6 { addr, text });
    }
    // RFC 5118 §4.10: RFC 3261's ABNF admits "x::" hexseq ":" IPv4 with three
    // colons; read it as the two-colon form it was meant to be.
    if let Some(pos) = text.find(":::") {
        let mut buf = [0u8; 64];
        let (a, b) = (&inner[..pos], &inner[pos + 1..]);
        buf[..a.len()].copy_from_slice(a);
        buf[a.len()..a.len() + b.len()].copy_from_slice(b);
        let fixed =
            std::str::from_utf8(&buf[..a.len() + b.len()]).map_err(|_| UriError::BadHost)?;
        if b[2..].contains(&b'.') {
            if let Ok(addr) = fixed.parse::<Ipv6Addr>() {
                return Ok(Host::Ipv6 { addr, text });
            }
        }
    }
    Err(UriError::BadHost)
}

/// A parsed URI, borrowing from the text it was parsed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uri<'a> {
    /// `sip:` or `sips:`.
    Sip(SipUri<'a>),
    /// `tel:`.
    Tel(TelUri<'a>),
    /// Any other scheme, kept as written.
    Other {
        /// The scheme as written (without the colon).
        scheme: &'a str,
        /// The whole URI as written.
        raw: &'a str,
    },
}

/// A `sip:` or `sips:` URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SipUri<'a> {
    /// True for `sips:`.
    pub secure: bool,
    /// User part as written (escapes not decoded).
    pub user: Option<&'a [u8]>,
    /// Password as written.
    pub password: Option<&'a [u8]>,
    /// Host.
    pub host: Host<'a>,
    /// Host as written (brackets kept for IPv6).
    pub host_raw: &'a str,
    /// Port, if written.
    pub port: Option<u16>,
    /// Raw `;param...` text (starts with `;`, or empty).
    pub params_raw: &'a [u8],
    /// Raw headers after `?`, without the `?`.
    pub headers: Option<&'a [u8]>,
}

impl<'a> SipUri<'a> {
    /// URI parameters.
    pub fn params(&self) -> Params<'a> {
        Params::new(self.params_raw)
    }

    /// The `transport` parameter, if any.
    pub fn transport(&self) -> Option<&'a [u8]> {
        self.params().get("transport").flatten()
    }

    /// True when the URI has `;lr` (loose routing).
    pub fn lr(&self) -> bool {
        self.params().get("lr").is_some()
    }
}

/// A `tel:` URI (RFC 3966).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelUri<'a> {
    /// The number as written (`+` and visual separators kept).
    pub number: &'a str,
    /// Raw `;param...` text.
    pub params_raw: &'a [u8],
}

impl<'a> TelUri<'a> {
    /// True for a global number (`+` prefix).
    pub fn is_global(&self) -> bool {
        self.number.starts_with('+')
    }

    /// Parameters (`phone-context`, `ext`, …).
    pub fn params(&self) -> Params<'a> {
        Params::new(self.params_raw)
    }
}

impl<'a> Uri<'a> {
    /// Parses a URI. The input must be exactly the URI (no surrounding `<>`).
    pub fn parse(s: &'a [u8]) -> Result<Uri<'a>, UriError> {
        if s.iter().any(|&b| b <= b' ' || b == 0x7f) {
            return Err(UriError::IllegalCharacter);
        }
        let colon = memchr::memchr(b':', s).ok_or(UriError::NoScheme)?;
        let scheme = &s[..colon];
        if scheme.is_empty()
            || !scheme[0].is_ascii_alphabetic()
            || !scheme
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
        {
            return Err(UriError::NoScheme);
        }
        let rest = &s[colon + 1..];
        if scheme.eq_ignore_ascii_case(b"sip") {
            parse_sip(rest, false).map(Uri::Sip)
        } else if scheme.eq_ignore_ascii_case(b"sips") {
            parse_sip(rest, true).map(Uri::Sip)
        } else if scheme.eq_ignore_ascii_case(b"tel") {
            parse_tel(rest).map(Uri::Tel)
        } else {
            if rest.is_empty() || s.iter().any(|&b| b >= 0x80) {
                return Err(UriError::IllegalCharacter);
            }
            // ASCII checked just above.
            let raw = std::str::from_utf8(s).map_err(|_| UriError::IllegalCharacter)?;
            Ok(Uri::Other {
                scheme: &raw[..colon],
                raw,
            })
        }
    }

    /// The scheme.
    pub fn scheme(&self) -> Scheme {
        match self {
            Uri::Sip(u) if u.secure => Scheme::Sips,
            Uri::Sip(_) => Scheme::Sip,
            Uri::Tel(_) => Scheme::Tel,
            Uri::Other { .. } => Scheme::Other,
        }
    }

    /// The SIP URI, if this is one.
    pub fn as_sip(&self) -> Option<&SipUri<'a>> {
        match self {
            Uri::Sip(u) => Some(u),
            _ => None,
        }
    }
}

fn is_user_char(b: u8) -> bool {
    is_unreserved(b) || matches!(b, b'&' | b'=' | b'+' | b'$' | b',' | b';' | b'?' | b'/')
}

fn is_password_char(b: u8) -> bool {
    is_unreserved(b) || matches!(b, b'&' | b'=' | b'+' | b'$' | b',')
}

fn is_hnv_char(b: u8) -> bool {
    is_unreserved(b) || matches!(b, b'[' | b']' | b'/' | b'?' | b':' | b'+' | b'$')
}

fn is_param_char(b: u8) -> bool {
    is_unreserved(b) || matches!(b, b'[' | b']' | b'/' | b':' | b'&' | b'+' | b'$')
}

fn parse_sip(s: &[u8], secure: bool) -> Result<SipUri<'_>, UriError> {
    let (user, password, hostpart) = match memchr::memchr(b'@', s) {
        Some(at) => {
            let userinfo = &s[..at];
            let (u, p) = match memchr::memchr(b':', userinfo) {
                Some(c) => (&userinfo[..c], Some(&userinfo[c + 1..])),
                None => (userinfo, None),
            };
            if u.is_empty() || !escaped_ok(u, is_user_char) {
                return Err(UriError::BadUserInfo);
            }
            if let Some(p) = p {
                if !escaped_ok(p, is_password_char) {
                    return Err(UriError::BadUserInfo);
                }
            }
            (Some(u), p, &s[at + 1..])
        }
        None => (None, None, s),
    };
    // hostport ends at ';' or '?'; an IPv6 reference ends at ']'.
    let host_end = if hostpart.first() == Some(&b'[') {
        memchr::memchr(b']', hostpart).ok_or(UriError::BadHost)? + 1
    } else {
        hostpart
            .iter()
            .position(|&b| matches!(b, b':' | b';' | b'?'))
            .unwrap_or(hostpart.len())
    };
    let host_raw = &hostpart[..host_end];
    let host = Host::parse(host_raw)?;
    let mut i = host_end;
    let mut port = None;
    if hostpart.get(i) == Some(&b':') {
        let ps = i + 1;
        i = ps;
        while i < hostpart.len() && hostpart[i].is_ascii_digit() {
            i += 1;
        }
        let p = crate::text::parse_u64(&hostpart[ps..i], 65535).ok_or(UriError::BadPort)?;
        port = Some(p as u16);
    }
    let (params_raw, headers) = match memchr::memchr(b'?', &hostpart[i..]) {
        Some(q) => (&hostpart[i..i + q], Some(&hostpart[i + q + 1..])),
        None => (&hostpart[i..], None),
    };
    if !params_raw.is_empty() {
        if params_raw[0] != b';' {
            return Err(if port.is_none() && i == host_end {
                UriError::BadHost
            } else {
                UriError::BadPort
            });
        }
        for seg in params_raw[1..].split(|&b| b == b';') {
            let ok = !seg.is_empty()
                && match memchr::memchr(b'=', seg) {
                    Some(e) => {
                        !seg[..e].is_empty()
                            && escaped_ok(&seg[..e], is_param_char)
                            && escaped_ok(&seg[e + 1..], is_param_char)
                    }
                    None => escaped_ok(seg, is_param_char),
                };
            if !ok {
                return Err(UriError::BadParams);
            }
        }
    }
    if let Some(h) = headers {
        for hdr in h.split(|&b| b == b'&') {
            let ok = match memchr::memchr(b'=', hdr) {
                Some(e) => {
                    e > 0
                        && escaped_ok(&hdr[..e], is_hnv_char)
                        && escaped_ok(&hdr[e + 1..], is_hnv_char)
                }
                None => false,
            };
            if !ok {
                return Err(UriError::BadHeaders);
            }
        }
    }
    // Host is ASCII (validated by Host::parse).
    let host_raw = std::str::from_utf8(host_raw).map_err(|_| UriError::BadHost)?;
    Ok(SipUri {
        secure,
        user,
        password,
        host,
        host_raw,
        port,
        params_raw,
        headers,
    })
}

fn parse_tel(s: &[u8]) -> Result<TelUri<'_>, UriError> {
    let end = memchr::memchr(b';', s).unwrap_or(s.len());
    let number = &s[..end];
    let valid = |b: u8| {
        b.is_ascii_hexdigit()
            || matches!(
                b,
                b'+' | b'*' | b'#' | b'-' | b'.' | b'(' | b')' | b'p' | b'w' | b'P' | b'W'
            )
    };
    if number.is_empty() || !number.iter().all(|&b| valid(b)) || number[1..].contains(&b'+') {
        return Err(UriError::BadTelNumber);
    }
    let params_raw = &s[end..];
    if !params_raw.is_empty() && !params_ok(params_raw) {
        // tel parameters allow more than token chars (phone-context domains etc.):
        // accept any visible characters except another scheme separator issue.
        if !params_raw
            .iter()
            .all(|&b| is_token(b) || b"=;:/[]&$,?@%".contains(&b))
        {
            return Err(UriError::BadParams);
        }
    }
    // Checked to be ASCII just above.
    let number = std::str::from_utf8(number).map_err(|_| UriError::BadTelNumber)?;
    Ok(TelUri { number, params_raw })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sip(s: &str) -> SipUri<'_> {
        match Uri::parse(s.as_bytes()) {
            Ok(Uri::Sip(u)) => u,
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn basic_sip_uri() {
        let u = sip("sip:alice:secret@Example.com:5070;transport=tls;lr?Subject=hi&X=1");
        assert_eq!(u.user, Some(&b"alice"[..]));
        assert_eq!(u.password, Some(&b"secret"[..]));
        assert_eq!(u.host, Host::Name("Example.com"));
        assert_eq!(u.port, Some(5070));
        assert_eq!(u.transport(), Some(&b"tls"[..]));
        assert!(u.lr());
        assert_eq!(u.headers, Some(&b"Subject=hi&X=1"[..]));
    }

    #[test]
    fn rfc5118_ipv6_references() {
        let u = sip("sip:[2001:db8::10]:5070");
        assert_eq!(u.port, Some(5070));
        assert!(matches!(u.host, Host::Ipv6 { .. }));
        // Port-ambiguous: the whole thing is the address.
        let u = sip("sip:[2001:db8::10:5070]");
        assert_eq!(u.port, None);
        assert_eq!(u.host_raw, "[2001:db8::10:5070]");
        // Three colons before an embedded IPv4 address (RFC 3261 ABNF bug): tolerated.
        let u = sip("sip:user@[2001:db8:::192.0.2.1]");
        assert!(matches!(u.host, Host::Ipv6 { .. }));
        // Unbracketed IPv6 is not a host.
        assert!(Uri::parse(b"sip:2001:db8::10").is_err());
    }

    #[test]
    fn user_part_with_semicolons_and_escapes() {
        let u = sip("sip:user;par=u%40example.net@example.com");
        assert_eq!(u.user, Some(&b"user;par=u%40example.net"[..]));
        assert_eq!(u.host, Host::Name("example.com"));
        let u = sip("sip:sips%3Auser%40example.com@example.net");
        assert_eq!(u.host, Host::Name("example.net"));
        assert!(Uri::parse(b"sip:a%zz@example.com").is_err());
    }

    #[test]
    fn tel_and_opaque() {
        match Uri::parse(b"tel:+1-201-555-0123;phone-context=example.com").unwrap() {
            Uri::Tel(t) => {
                assert!(t.is_global());
                assert_eq!(t.number, "+1-201-555-0123");
            }
            other => panic!("{other:?}"),
        }
        let u = Uri::parse(b"nobodyKnowsThisScheme:totallyopaquecontent").unwrap();
        assert_eq!(u.scheme(), Scheme::Other);
        assert!(Uri::parse(b"sip:user@exa mple.com").is_err());
        assert!(Uri::parse(b"nocolon").is_err());
    }
}
