//! What the SBC does with a message it received: accept it, answer it with an
//! error response, or drop it. `sbc sip check` and the daemon use this same
//! code path.

use bytes::Bytes;

use crate::error::{Error, ErrorKind};
use crate::headers::{parse_call_id, MediaType, NameAddr};
use crate::message::{Kind, Message, Method, ParseOptions};
use crate::name::HeaderName;
use crate::text::{is_token, CommaSplit};
use crate::uri::{Scheme, Uri};

/// Option tags the SBC implements, which is also the default supported set.
/// A request that `Require`s anything else is answered 420 with
/// `Unsupported` (RFC 3261 §8.2.2.3). A configuration may support fewer
/// tags, never more. `100rel` (PRACK, RFC 3262) is here; a trunk that has
/// it off (`prack = "off"`, Microsoft's by default) answers a `Require:
/// 100rel` with 420 itself.
pub const DEFAULT_SUPPORTED: &[&str] = &[
    "timer",
    "replaces",
    "norefersub",
    "path",
    "outbound",
    "100rel",
];

/// What the receiving element accepts.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Parse limits.
    pub limits: ParseOptions,
    /// Option tags accepted in Require / Proxy-Require.
    pub supported: Vec<String>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            limits: ParseOptions::default(),
            supported: DEFAULT_SUPPORTED.iter().map(|s| (*s).to_owned()).collect(),
        }
    }
}

/// The outcome of receiving one message.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // Accept is the common case; boxing it would allocate per message.
pub enum Verdict {
    /// Well-formed: hand it to the transaction layer.
    Accept(Message),
    /// A request that must be answered with an error response.
    Reply(Error),
    /// Drop silently (malformed responses, ACKs, non-SIP input).
    Drop(Error),
}

impl Verdict {
    /// The error behind a Reply or Drop.
    pub fn error(&self) -> Option<&Error> {
        match self {
            Verdict::Accept(_) => None,
            Verdict::Reply(e) | Verdict::Drop(e) => Some(e),
        }
    }
}

/// Parses and validates one received message (a UDP datagram, or one
/// message cut out of a stream).
pub fn inspect(buf: Bytes, policy: &Policy) -> Verdict {
    let raw = buf.clone();
    let result =
        Message::parse_with(buf, &policy.limits).and_then(|m| m.validate(policy).map(|()| m));
    match result {
        Ok(m) => Verdict::Accept(m),
        Err(e) => {
            // Never answer an ACK (RFC 3261 §17.2.1: there is no response to ACK).
            let is_ack = peek(&raw).method.as_deref() == Some("ACK");
            if e.response().is_some() && !is_ack && answerable(&raw) {
                Verdict::Reply(e)
            } else {
                Verdict::Drop(e)
            }
        }
    }
}

/// Most bytes of request lines (Via, From, To, Call-ID, CSeq) an error
/// response copies; a request whose lines are larger is dropped, not answered.
const MAX_ERROR_RESPONSE: usize = 16 * 1024;

/// The size of the lines an error response copies from the request (Via,
/// From, To, Call-ID, CSeq), and whether there is a Via to answer to.
fn copied_size(raw: &[u8]) -> (bool, usize) {
    let mut via = false;
    let mut size = 0;
    for (n, v) in header_lines(raw) {
        match HeaderName::from_bytes(n) {
            HeaderName::Via => via = true,
            HeaderName::From | HeaderName::To | HeaderName::CallId | HeaderName::CSeq => {}
            _ => continue,
        }
        size += v.len() + 24;
    }
    (via, size)
}

/// A request can be answered when it has a Via and the copied headers fit in
/// a reasonable response. `response_from_raw` applies the same rule, so a
/// `Reply` verdict always has a response.
fn answerable(raw: &[u8]) -> bool {
    let (via, size) = copied_size(raw);
    via && size < MAX_ERROR_RESPONSE
}

/// At most this much of the `Unsupported` list is echoed in a 420.
const MAX_UNSUPPORTED: usize = 1024;

pub(crate) fn validate(m: &Message, policy: &Policy) -> Result<(), Error> {
    let kind = m.kind();
    // Single-value headers appear at most once.
    for name in [
        HeaderName::CallId,
        HeaderName::CSeq,
        HeaderName::From,
        HeaderName::To,
        HeaderName::MaxForwards,
        HeaderName::ContentLength,
        HeaderName::ContentType,
        HeaderName::Replaces,
        HeaderName::ReferTo,
        HeaderName::RSeq,
        HeaderName::RAck,
        HeaderName::SessionExpires,
    ] {
        let n = m.count(name);
        if n > 1 {
            return Err(Error::new(ErrorKind::Multiple(name), Some(kind)));
        }
        if n == 0
            && matches!(
                name,
                HeaderName::CallId | HeaderName::CSeq | HeaderName::From | HeaderName::To
            )
        {
            return Err(Error::new(ErrorKind::Missing(name), Some(kind)));
        }
    }
    if m.count(HeaderName::Via) == 0 {
        return Err(Error::new(ErrorKind::Missing(HeaderName::Via), Some(kind)));
    }
    for v in m.via() {
        let v = v.map_err(|e| Error::header(HeaderName::Via, e, kind))?;
        if kind == Kind::Response && v.host.is_broadcast_or_multicast() {
            return Err(Error::new(ErrorKind::BroadcastVia, Some(kind)));
        }
    }
    m.from()?;
    m.to()?;
    m.call_id()?;
    let cseq = m.cseq()?;
    m.max_forwards()?;
    if let Some(ct) = m.content_type() {
        ct?;
    }
    for c in m.contacts() {
        c.map_err(|e| Error::header(HeaderName::Contact, e, kind))?;
    }
    for r in m.routes() {
        r.map_err(|e| Error::header(HeaderName::Route, e, kind))?;
    }
    for r in m.record_routes() {
        r.map_err(|e| Error::header(HeaderName::RecordRoute, e, kind))?;
    }
    if kind == Kind::Response {
        return Ok(());
    }

    // Requests only from here.
    let method = m.method_str().unwrap_or("");
    let known = Method::from_bytes(method.as_bytes()) != Method::Other;
    if cseq.method != method {
        let kind = if known {
            ErrorKind::CSeqMismatch
        } else {
            ErrorKind::UnknownMethod
        };
        return Err(Error::new(kind, Some(Kind::Request)));
    }
    match m.request_uri() {
        Some(Ok(uri)) => match uri {
            Uri::Other { .. } => {
                return Err(Error::new(
                    ErrorKind::UnsupportedUriScheme,
                    Some(Kind::Request),
                ))
            }
            Uri::Sip(s) if s.headers.is_some() => {
                return Err(Error::new(
                    ErrorKind::RequestUriHeaders,
                    Some(Kind::Request),
                ))
            }
            _ => debug_assert!(uri.scheme() != Scheme::Other),
        },
        Some(Err(e)) => return Err(e),
        None => {}
    }
    let method_enum = Method::from_bytes(method.as_bytes());
    if !matches!(method_enum, Method::Ack | Method::Cancel) {
        let mut unsupported = String::new();
        for name in [HeaderName::Require, HeaderName::ProxyRequire] {
            for tag in m.tokens(name) {
                let tag = tag.map_err(|e| Error::header(name, e, Kind::Request))?;
                if !policy.supported.iter().any(|s| s.eq_ignore_ascii_case(tag)) {
                    if !unsupported.is_empty() {
                        unsupported.push_str(", ");
                    }
                    unsupported.push_str(tag);
                }
            }
        }
        if !unsupported.is_empty() {
            return Err(Error::new(
                ErrorKind::BadExtension(unsupported),
                Some(Kind::Request),
            ));
        }
    }
    if method_enum == Method::Invite && m.count(HeaderName::Accept) > 0 {
        let mut any = false;
        let mut sdp = false;
        for v in m.values(HeaderName::Accept) {
            any = true;
            let mt = MediaType::parse(v)
                .map_err(|e| Error::header(HeaderName::Accept, e, Kind::Request))?;
            sdp |= mt.admits("application", "sdp");
        }
        if any && !sdp {
            return Err(Error::new(ErrorKind::NotAcceptable, Some(Kind::Request)));
        }
    }
    Ok(())
}

/// What can be read from a message's raw bytes without trusting them: the
/// kind, method and Call-ID, for logs and for `sbc sip check`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Peek {
    /// Request or response, when the first line says.
    pub kind: Option<Kind>,
    /// The Request-Line method, or the CSeq method of a response.
    pub method: Option<String>,
    /// The Call-ID, when it is well-formed.
    pub call_id: Option<String>,
}

/// Reads kind, method and Call-ID leniently from raw bytes.
pub fn peek(raw: &[u8]) -> Peek {
    let start = raw
        .iter()
        .position(|&c| c != b'\r' && c != b'\n')
        .unwrap_or(raw.len());
    let raw = &raw[start..];
    let first = raw.split(|&c| c == b'\n').next().unwrap_or(&[]);
    let mut p = Peek::default();
    if first.len() >= 4 && first[..4].eq_ignore_ascii_case(b"SIP/") {
        p.kind = Some(Kind::Response);
    } else {
        let tok_end = first
            .iter()
            .position(|&c| !is_token(c))
            .unwrap_or(first.len());
        if tok_end > 0 && first.get(tok_end) == Some(&b' ') {
            p.kind = Some(Kind::Request);
            p.method = Some(String::from_utf8_lossy(&first[..tok_end]).into_owned());
        }
    }
    for (name, value) in header_lines(raw) {
        match HeaderName::from_bytes(name) {
            HeaderName::CallId if p.call_id.is_none() => {
                p.call_id = parse_call_id(value).ok().map(str::to_owned);
            }
            HeaderName::CSeq if p.kind == Some(Kind::Response) && p.method.is_none() => {
                p.method = crate::headers::CSeq::parse(value)
                    .ok()
                    .map(|c| c.method.to_owned());
            }
            _ => {}
        }
    }
    p
}

/// Iterates over `(name, value)` of the header lines of raw bytes, leniently:
/// stops at the empty line, skips lines it cannot read, ignores folding.
fn header_lines(raw: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    let start = raw
        .iter()
        .position(|&c| c != b'\r' && c != b'\n')
        .unwrap_or(raw.len());
    raw[start..]
        .split(|&c| c == b'\n')
        .skip(1)
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .take_while(|l| !l.is_empty())
        .filter_map(|l| {
            let colon = memchr::memchr(b':', l)?;
            let name = crate::text::trim_lws(&l[..colon]);
            (!name.is_empty() && name.iter().all(|&c| is_token(c)))
                .then(|| (name, crate::text::trim_lws(&l[colon + 1..])))
        })
}

/// Builds the error response for a request that [`inspect`] said to answer,
/// from its raw bytes: the Via lines, From, To (with `to_tag` added when it
/// has none), Call-ID and CSeq are copied as received (RFC 3261 §8.2.6.2), a
/// 420 gets its `Unsupported` header, and `server` (if any) is added.
///
/// Returns `None` when the request has no Via, or the lines to copy exceed
/// 16 KiB (it cannot be answered) — exactly when [`inspect`] says `Drop`.
pub fn error_response(
    raw: &[u8],
    err: &Error,
    to_tag: &str,
    server: Option<&str>,
) -> Option<Bytes> {
    let (status, reason) = err.response()?;
    response_from_raw(raw, status, &reason, err.unsupported(), to_tag, server)
}

/// Builds a response with `status` and `reason` to the request in `raw`, as
/// [`error_response`] does, for callers that decided the status themselves
/// (e.g. a stream framing error: 400 or 413, then close).
pub fn response_from_raw(
    raw: &[u8],
    status: u16,
    reason: &str,
    unsupported: Option<&str>,
    to_tag: &str,
    server: Option<&str>,
) -> Option<Bytes> {
    if !(100..=699).contains(&status) || reason.bytes().any(|c| c < 0x20) || !answerable(raw) {
        return None;
    }
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(format!("SIP/2.0 {status} {reason}\r\n").as_bytes());
    let mut have_via = false;
    for (name, value) in header_lines(raw) {
        let hn = HeaderName::from_bytes(name);
        let copy = match hn {
            HeaderName::Via => {
                have_via = true;
                true
            }
            HeaderName::From | HeaderName::CallId | HeaderName::CSeq => true,
            HeaderName::To => {
                out.extend_from_slice(b"To: ");
                out.extend_from_slice(value);
                let has_tag = NameAddr::parse(value).ok().and_then(|n| n.tag()).is_some();
                if !has_tag && !to_tag.is_empty() && status > 100 {
                    out.extend_from_slice(b";tag=");
                    out.extend_from_slice(to_tag.as_bytes());
                }
                out.extend_from_slice(b"\r\n");
                false
            }
            _ => false,
        };
        if copy {
            out.extend_from_slice(hn.as_str().as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
    }
    if !have_via {
        return None;
    }
    if let Some(tags) = unsupported {
        // Echo the unsupported tags, cut at a tag boundary when the list is huge.
        let cut = if tags.len() <= MAX_UNSUPPORTED {
            tags
        } else {
            // A ',' is ASCII, so slicing just before it stays on a char boundary.
            // Without a comma inside the cap, the first tag is echoed whole: an
            // empty Unsupported header is not allowed (RFC 3261 §20.40).
            let bytes = tags.as_bytes();
            let comma = bytes[..MAX_UNSUPPORTED].iter().rposition(|&b| b == b',');
            let first = bytes.iter().position(|&b| b == b',').unwrap_or(tags.len());
            &tags[..comma.unwrap_or(first)]
        };
        out.extend_from_slice(format!("Unsupported: {cut}\r\n").as_bytes());
    }
    if status == 406 {
        out.extend_from_slice(b"Accept: application/sdp\r\n");
    }
    if let Some(s) = server {
        out.extend_from_slice(format!("Server: {s}\r\n").as_bytes());
    }
    out.extend_from_slice(b"Content-Length: 0\r\n\r\n");
    Some(Bytes::from(out))
}

/// Splits `value` at top-level commas (exposed for callers that handle
/// list headers the crate has no typed view for).
pub fn split_list(value: &[u8]) -> CommaSplit<'_> {
    CommaSplit::new(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE_REQUIRING_100REL: &[u8] = b"INVITE sip:+4930123@sbc.example.com SIP/2.0\r\n\
        Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKrel1\r\n\
        Max-Forwards: 70\r\nFrom: <sip:a@example.com>;tag=1\r\nTo: <sip:+4930123@sbc.example.com>\r\n\
        Call-ID: rel1@192.0.2.1\r\nCSeq: 1 INVITE\r\nContact: <sip:a@192.0.2.1>\r\n\
        Supported: timer\r\nRequire: 100rel\r\nContent-Length: 0\r\n\r\n";

    #[test]
    fn require_100rel_is_accepted_and_answered_420_where_not_supported() {
        let raw = Bytes::from_static(INVITE_REQUIRING_100REL);
        // Implemented (RFC 3262): accepted by default.
        assert!(DEFAULT_SUPPORTED.contains(&"100rel"));
        let v = inspect(raw.clone(), &Policy::default());
        assert!(matches!(v, Verdict::Accept(_)), "{v:?}");
        // A configuration without it answers 420 Unsupported: 100rel.
        let policy = Policy {
            supported: vec!["timer".into(), "replaces".into()],
            ..Policy::default()
        };
        let Verdict::Reply(err) = inspect(raw.clone(), &policy) else {
            panic!("a request requiring 100rel must be answered");
        };
        assert_eq!(err.status(), 420);
        assert_eq!(err.unsupported(), Some("100rel"));
        let resp = error_response(&raw, &err, "t1", None).unwrap();
        let m = Message::parse(resp).unwrap();
        assert_eq!(m.status(), Some(420));
        assert_eq!(m.header(HeaderName::Unsupported), Some(&b"100rel"[..]));
    }

    #[test]
    fn implemented_tags_in_require_are_accepted() {
        let text = std::str::from_utf8(INVITE_REQUIRING_100REL)
            .unwrap()
            .replace("Require: 100rel", "Require: timer, Replaces");
        let v = inspect(Bytes::from(text), &Policy::default());
        assert!(matches!(v, Verdict::Accept(_)), "{v:?}");
    }
}
