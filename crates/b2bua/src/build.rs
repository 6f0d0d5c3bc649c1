//! Small helpers to write SIP messages with the `sip` editing API.

use sip::{HeaderName, Message, NameAddr};
use transaction::Transport;

/// Methods we accept, written in every Allow (REFER included: Microsoft
/// then acts as transferor and sends us REFER).
pub(crate) const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, NOTIFY, REFER";

/// Pushes a header, ignoring the (impossible for our own values) edit error.
pub(crate) fn push(m: &mut Message, name: &str, value: &str) {
    if let Err(e) = m.push_header(name, value.as_bytes()) {
        tracing::debug!(%name, %e, "header not written");
    }
}

/// The transport token for URIs (`tls`, `tcp`, `udp`).
pub(crate) fn uri_transport(t: Transport) -> &'static str {
    match t {
        Transport::Udp => "udp",
        Transport::Tcp => "tcp",
        Transport::Tls => "tls",
    }
}

/// The URI inside a name-addr value (`"x" <sip:a@b>;tag=1` → `sip:a@b`).
pub(crate) fn uri_of(value: &[u8]) -> Option<String> {
    NameAddr::parse(value)
        .ok()
        .map(|n| String::from_utf8_lossy(n.uri_raw).into_owned())
}

/// The display name of a name-addr, without quotes.
pub(crate) fn display_of(value: &[u8]) -> Option<String> {
    let n = NameAddr::parse(value).ok()?;
    let d = n.display_name?;
    let s = String::from_utf8_lossy(d);
    let s = s.trim().trim_matches('"').trim();
    (!s.is_empty()).then(|| s.to_owned())
}

/// The tag of a name-addr value.
pub(crate) fn tag_of(value: &[u8]) -> Option<String> {
    NameAddr::parse(value)
        .ok()?
        .tag()
        .map(|t| String::from_utf8_lossy(t).into_owned())
}

/// A name-addr value without its `tag` parameter (kept: display name, URI,
/// other parameters).
pub(crate) fn without_tag(value: &[u8]) -> String {
    let s = String::from_utf8_lossy(value).into_owned();
    let Ok(n) = NameAddr::parse(value) else {
        return s;
    };
    let params = String::from_utf8_lossy(n.params_raw);
    let head = &s[..s.len() - n.params_raw.len()];
    let mut out = head.trim_end().to_owned();
    for p in params.split(';').filter(|p| !p.trim().is_empty()) {
        if !p.trim().to_ascii_lowercase().starts_with("tag=") {
            out.push(';');
            out.push_str(p.trim());
        }
    }
    out
}

/// A header value's text.
pub(crate) fn header_text(m: &Message, name: HeaderName) -> Option<String> {
    m.header(name)
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

/// A header by name (any header, case-insensitive), as text.
pub(crate) fn header_by_name(m: &Message, name: &str) -> Option<String> {
    m.header_by_name(name)
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

/// Quotes a display name for a name-addr.
pub(crate) fn quoted(s: &str) -> String {
    let clean: String = s
        .chars()
        .filter(|c| !matches!(c, '"' | '\\' | '\r' | '\n'))
        .collect();
    format!("\"{clean}\"")
}

/// The SDP a message carries: its body when that is `application/sdp`
/// (or untyped), the SDP part of a `multipart/mixed` body (RFC 5621; an
/// unreadable one carries none: a new call checks it first and answers 400).
pub(crate) fn sdp_body(m: &Message) -> Option<&[u8]> {
    let body = m.body();
    if body.is_empty() {
        return None;
    }
    if let Some(mp) = crate::multipart::of(m) {
        return mp.ok().and_then(|mp| mp.sdp());
    }
    match m.content_type() {
        Some(Ok(ct)) if ct.is_sdp() => Some(body),
        None => Some(body),
        _ => None,
    }
}

/// The value of a parameter in a header like `Session-Expires: 1800;refresher=uac`.
pub(crate) fn leading_number(v: &str) -> Option<u32> {
    v.split(';').next()?.trim().parse().ok()
}

/// True when the token list header `name` of `m` has `token`.
pub(crate) fn has_token(m: &Message, name: HeaderName, token: &str) -> bool {
    m.tokens(name)
        .filter_map(Result::ok)
        .any(|t| t.eq_ignore_ascii_case(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_removed_and_read() {
        assert_eq!(
            without_tag(b"\"Alice\" <sip:+1@a.example>;tag=abc;x=1"),
            "\"Alice\" <sip:+1@a.example>;x=1"
        );
        assert_eq!(without_tag(b"<sip:+1@a.example>"), "<sip:+1@a.example>");
        assert_eq!(
            tag_of(b"<sip:+1@a.example>;tag=abc").as_deref(),
            Some("abc")
        );
        assert_eq!(
            display_of(b"\"Alice\" <sip:+1@a>").as_deref(),
            Some("Alice")
        );
        assert_eq!(
            uri_of(b"<sip:+1@a;user=phone>;tag=1").as_deref(),
            Some("sip:+1@a;user=phone")
        );
        assert_eq!(quoted("Fail-over \"x\""), "\"Fail-over x\"");
    }
}
