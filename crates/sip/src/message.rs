//! The SIP message: a zero-copy parse of one datagram or framed stream
//! message, typed accessors parsed on demand, an editing API, and a printer
//! that re-serialises only what changed.

use std::fmt;

use bytes::Bytes;
use smallvec::SmallVec;

use crate::error::{Error, ErrorKind};
use crate::headers::{
    parse_call_id, parse_number, parse_token, CSeq, Contact, MediaType, NameAddr, ValueError, Via,
};
use crate::name::HeaderName;
use crate::text::{is_token, is_token_str, trim_lws, CommaSplit};
use crate::uri::Uri;

/// Limits applied while parsing. Anything beyond them is rejected, so memory
/// and time per message are bounded whatever arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseOptions {
    /// Largest message accepted, in bytes (headers and body). Larger: 413.
    pub max_message_size: usize,
    /// Most header lines accepted. More: 400.
    pub max_headers: usize,
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions {
            max_message_size: 65_535,
            max_headers: 256,
        }
    }
}

/// A request method. Methods are case-sensitive (RFC 3261 §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Method {
    /// INVITE
    Invite,
    /// ACK
    Ack,
    /// BYE
    Bye,
    /// CANCEL
    Cancel,
    /// OPTIONS
    Options,
    /// REGISTER
    Register,
    /// PRACK (RFC 3262)
    Prack,
    /// SUBSCRIBE (RFC 6665)
    Subscribe,
    /// NOTIFY (RFC 6665)
    Notify,
    /// PUBLISH (RFC 3903)
    Publish,
    /// INFO (RFC 6086)
    Info,
    /// REFER (RFC 3515)
    Refer,
    /// MESSAGE (RFC 3428)
    Message,
    /// UPDATE (RFC 3311)
    Update,
    /// Any other token.
    Other,
}

impl Method {
    /// Recognises a method token (exact, case-sensitive).
    pub fn from_bytes(m: &[u8]) -> Method {
        match m {
            b"INVITE" => Method::Invite,
            b"ACK" => Method::Ack,
            b"BYE" => Method::Bye,
            b"CANCEL" => Method::Cancel,
            b"OPTIONS" => Method::Options,
            b"REGISTER" => Method::Register,
            b"PRACK" => Method::Prack,
            b"SUBSCRIBE" => Method::Subscribe,
            b"NOTIFY" => Method::Notify,
            b"PUBLISH" => Method::Publish,
            b"INFO" => Method::Info,
            b"REFER" => Method::Refer,
            b"MESSAGE" => Method::Message,
            b"UPDATE" => Method::Update,
            _ => Method::Other,
        }
    }
}

/// Request or response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A request.
    Request,
    /// A response.
    Response,
}

/// A byte range either in the received buffer or in the edit buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Slice {
    edit: bool,
    start: u32,
    end: u32,
}

impl Slice {
    const EMPTY: Slice = Slice {
        edit: false,
        start: 0,
        end: 0,
    };

    fn buf(start: usize, end: usize) -> Slice {
        // Messages are bounded by ParseOptions::max_message_size (< 4 GiB).
        Slice {
            edit: false,
            start: start as u32,
            end: end as u32,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    name: HeaderName,
    name_text: Slice,
    value: Slice,
    /// The whole raw line(s) including the terminator, while unchanged.
    line: Option<(u32, u32)>,
}

#[derive(Debug, Clone, Copy)]
enum StartLine {
    Request { method: Slice, uri: Slice },
    Response { code: u16, reason: Slice },
}

/// One header field as seen through [`Message::headers`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderField<'a> {
    /// The recognised name.
    pub name: HeaderName,
    /// The name as written (compact or long, original case).
    pub name_raw: &'a [u8],
    /// The value, with leading and trailing whitespace removed; folded lines
    /// keep their CRLF and leading whitespace (which typed parsers read as LWS).
    pub value: &'a [u8],
}

/// A SIP request or response.
///
/// Parsing keeps the received [`Bytes`] and records byte ranges: no header is
/// copied, and a typical message is parsed without a heap allocation. Typed
/// views (`via()`, `from()`, `cseq()`, …) parse the relevant value when called.
#[derive(Clone)]
pub struct Message {
    buf: Bytes,
    edit: Vec<u8>,
    start: StartLine,
    /// Raw start line including terminator, while unchanged.
    start_raw: Option<(u32, u32)>,
    headers: SmallVec<[Entry; 24]>,
    body: Slice,
    raw: (u32, u32),
    modified: bool,
}

/// Why an edit was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EditError {
    /// The header name is not a token.
    BadName,
    /// The value contains CR or LF (header injection) or is otherwise unusable.
    BadValue,
    /// The URI does not parse.
    BadUri,
    /// No header at that index, or it has no URI.
    NoSuchHeader,
    /// The operation needs a request (or a response).
    WrongKind,
}

impl fmt::Display for EditError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EditError::BadName => "header name is not a token",
            EditError::BadValue => "value contains CR or LF",
            EditError::BadUri => "URI does not parse",
            EditError::NoSuchHeader => "no such header",
            EditError::WrongKind => "wrong message kind",
        })
    }
}

impl std::error::Error for EditError {}

fn find_line_end(b: &[u8], from: usize) -> (usize, usize) {
    // Returns (end of content, start of next line).
    match memchr::memchr(b'\n', &b[from..]) {
        Some(p) => {
            let nl = from + p;
            let end = if nl > from && b[nl - 1] == b'\r' {
                nl - 1
            } else {
                nl
            };
            (end, nl + 1)
        }
        None => (b.len(), b.len()),
    }
}

fn looks_like_version(v: &[u8]) -> bool {
    v.len() >= 4 && v[..4].eq_ignore_ascii_case(b"SIP/")
}

fn version_is_2_0(v: &[u8]) -> bool {
    v.len() == 7 && v[..4].eq_ignore_ascii_case(b"SIP/") && &v[4..] == b"2.0"
}

fn version_is_wellformed(v: &[u8]) -> bool {
    if !looks_like_version(v) {
        return false;
    }
    let rest = &v[4..];
    match memchr::memchr(b'.', rest) {
        Some(d) => {
            d > 0
                && d + 1 < rest.len()
                && rest[..d].iter().all(u8::is_ascii_digit)
                && rest[d + 1..].iter().all(u8::is_ascii_digit)
        }
        None => false,
    }
}

impl Message {
    /// Parses one message (a UDP datagram, or a message cut out of a stream
    /// by [`crate::StreamFramer`]) with default limits.
    pub fn parse(buf: Bytes) -> Result<Message, Error> {
        Message::parse_with(buf, &ParseOptions::default())
    }

    /// Parses one message with the given limits.
    ///
    /// This checks the structure: start line, header lines, Content-Length
    /// framing. Header values are checked by [`Message::validate`] or when a
    /// typed accessor is called.
    pub fn parse_with(buf: Bytes, opts: &ParseOptions) -> Result<Message, Error> {
        let b: &[u8] = &buf;
        // RFC 3261 §7.5: ignore CRLFs before the start line.
        let mut pos = b
            .iter()
            .position(|&c| c != b'\r' && c != b'\n')
            .unwrap_or(b.len());
        if pos == b.len() {
            return Err(Error::new(ErrorKind::Empty, None));
        }
        let kind_hint = if looks_like_version(&b[pos..]) {
            Kind::Response
        } else {
            Kind::Request
        };
        // Offsets are stored as u32: no message can be larger than that.
        if b.len() > opts.max_message_size.min(u32::MAX as usize) {
            return Err(Error::new(ErrorKind::TooLarge, Some(kind_hint)));
        }
        let raw_start = pos;
        let (line_end, next) = find_line_end(b, pos);
        let line = &b[pos..line_end];
        let start = Self::parse_start_line(line, pos)?;
        let start_raw = Some((pos as u32, next as u32));
        pos = next;

        let mut headers: SmallVec<[Entry; 24]> = SmallVec::new();
        let mut content_length: Option<usize> = None;
        let body_start;
        loop {
            if pos >= b.len() {
                // Datagram ended without the empty line: tolerated (RFC 4475 baddn).
                body_start = b.len();
                break;
            }
            if b[pos] == b'\n' {
                body_start = pos + 1;
                break;
            }
            if b[pos] == b'\r' && b.get(pos + 1) == Some(&b'\n') {
                body_start = pos + 2;
                break;
            }
            if b[pos] == b' ' || b[pos] == b'\t' {
                return Err(Error::new(ErrorKind::BadHeaderLine, Some(kind_hint)));
            }
            if headers.len() >= opts.max_headers {
                return Err(Error::new(ErrorKind::TooManyHeaders, Some(kind_hint)));
            }
            let line_start = pos;
            // Header name: token, then optional whitespace, then ':'.
            let mut i = pos;
            while i < b.len() && is_token(b[i]) {
                i += 1;
            }
            let name_end = i;
            while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
                i += 1;
            }
            if name_end == pos || b.get(i) != Some(&b':') {
                return Err(Error::new(ErrorKind::BadHeaderLine, Some(kind_hint)));
            }
            i += 1;
            while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
                i += 1;
            }
            let value_start = i;
            // Value runs to the end of the line and any continuation lines.
            let (mut vend, mut nl) = find_line_end(b, i);
            while nl < b.len() && (b[nl] == b' ' || b[nl] == b'\t') {
                let (e, n) = find_line_end(b, nl);
                vend = e;
                nl = n;
            }
            let mut value_end = vend.max(value_start);
            while value_end > value_start
                && matches!(b[value_end - 1], b' ' | b'\t' | b'\r' | b'\n')
            {
                value_end -= 1;
            }
            let name = HeaderName::from_bytes(&b[pos..name_end]);
            if name == HeaderName::ContentLength {
                let v = &b[value_start..value_end];
                let n = parse_number(v, u64::from(u32::MAX))
                    .map_err(|e| Error::header(name, e, kind_hint))?;
                if content_length.is_some() {
                    return Err(Error::new(
                        ErrorKind::Multiple(HeaderName::ContentLength),
                        Some(kind_hint),
                    ));
                }
                content_length = Some(n as usize);
            }
            headers.push(Entry {
                name,
                name_text: Slice::buf(pos, name_end),
                value: Slice::buf(value_start, value_end),
                line: Some((line_start as u32, nl as u32)),
            });
            pos = nl;
        }
        let available = b.len() - body_start;
        let body_len = match content_length {
            Some(n) if n > available => {
                return Err(Error::new(ErrorKind::BodyTruncated, Some(kind_hint)));
            }
            Some(n) => n,
            // RFC 3261 §18.3: over UDP without Content-Length the body runs to
            // the end of the datagram (RFC 4475 inv2543).
            None => available,
        };
        let body_end = body_start + body_len;
        Ok(Message {
            start,
            start_raw,
            headers,
            body: Slice::buf(body_start, body_end),
            raw: (raw_start as u32, body_end as u32),
            modified: false,
            edit: Vec::new(),
            buf,
        })
    }

    fn parse_start_line(line: &[u8], off: usize) -> Result<StartLine, Error> {
        if looks_like_version(line) {
            // Status-Line = SIP-Version SP Status-Code SP Reason-Phrase
            let bad = || Error::new(ErrorKind::BadStatusLine, Some(Kind::Response));
            if line.len() < 11 || line[7] != b' ' {
                return Err(bad());
            }
            if !version_is_2_0(&line[..7]) {
                return Err(Error::new(
                    ErrorKind::VersionNotSupported,
                    Some(Kind::Response),
                ));
            }
            let code = &line[8..11];
            if !code.iter().all(u8::is_ascii_digit) || (line.len() > 11 && line[11] != b' ') {
                return Err(bad());
            }
            let code = (u16::from(code[0] - b'0')) * 100
                + u16::from(code[1] - b'0') * 10
                + u16::from(code[2] - b'0');
            if !(100..=699).contains(&code) {
                return Err(bad());
            }
            let reason = if line.len() > 12 {
                Slice::buf(off + 12, off + line.len())
            } else {
                Slice::EMPTY
            };
            if line.len() > 12 && line[12..].iter().any(|&c| c < 0x20 && c != b'\t') {
                return Err(bad());
            }
            return Ok(StartLine::Response { code, reason });
        }
        // Request-Line = Method SP Request-URI SP SIP-Version
        let mut parts = line.split(|&c| c == b' ');
        let (m, u, v, extra) = (parts.next(), parts.next(), parts.next(), parts.next());
        let trimmed_end = line
            .iter()
            .rposition(|&c| c != b' ' && c != b'\t')
            .map_or(0, |p| p + 1);
        let last = line[..trimmed_end]
            .rsplit(|&c| c == b' ')
            .next()
            .unwrap_or(line);
        if !looks_like_version(last) {
            // Not a SIP request line. A token followed by something URI-like is a
            // broken request worth a 400; anything else is not SIP at all.
            let is_reqish = matches!((m, u, v), (Some(m), Some(u), None) if is_token_str(m) && u.contains(&b':'))
                && !last.contains(&b'/');
            let kind = if is_reqish {
                ErrorKind::BadRequestLine
            } else {
                ErrorKind::NotSip
            };
            return Err(Error::new(kind, is_reqish.then_some(Kind::Request)));
        }
        let bad = Error::new(ErrorKind::BadRequestLine, Some(Kind::Request));
        let (Some(m), Some(u), Some(v), None) = (m, u, v, extra) else {
            return Err(bad);
        };
        if m.is_empty() || u.is_empty() || v.is_empty() {
            return Err(bad);
        }
        if !is_token_str(m) {
            return Err(Error::new(ErrorKind::BadMethod, Some(Kind::Request)));
        }
        if !version_is_2_0(v) {
            let kind = if version_is_wellformed(v) {
                ErrorKind::VersionNotSupported
            } else {
                ErrorKind::BadRequestLine
            };
            return Err(Error::new(kind, Some(Kind::Request)));
        }
        let m_end = off + m.len();
        Ok(StartLine::Request {
            method: Slice::buf(off, m_end),
            uri: Slice::buf(m_end + 1, m_end + 1 + u.len()),
        })
    }

    /// Checks every header this crate understands and the Request-URI, as an
    /// SBC must before acting on a message. See [`crate::Policy`].
    pub fn validate(&self, policy: &crate::Policy) -> Result<(), Error> {
        crate::verdict::validate(self, policy)
    }

    fn get(&self, s: Slice) -> &[u8] {
        let src: &[u8] = if s.edit { &self.edit } else { &self.buf };
        src.get(s.start as usize..s.end as usize).unwrap_or(&[])
    }

    // ----- start line -------------------------------------------------------

    /// Request or response.
    pub fn kind(&self) -> Kind {
        match self.start {
            StartLine::Request { .. } => Kind::Request,
            StartLine::Response { .. } => Kind::Response,
        }
    }

    /// True for a request.
    pub fn is_request(&self) -> bool {
        self.kind() == Kind::Request
    }

    /// The method of a request as written; for a response, the CSeq method.
    pub fn method_str(&self) -> Option<&str> {
        match self.start {
            StartLine::Request { method, .. } => std::str::from_utf8(self.get(method)).ok(),
            StartLine::Response { .. } => self.cseq().ok().map(|c| c.method),
        }
    }

    /// The method (of the request, or the CSeq method of a response).
    pub fn method(&self) -> Option<Method> {
        self.method_str().map(|m| Method::from_bytes(m.as_bytes()))
    }

    /// The Request-URI as written (requests only).
    pub fn request_uri_raw(&self) -> Option<&[u8]> {
        match self.start {
            StartLine::Request { uri, .. } => Some(self.get(uri)),
            StartLine::Response { .. } => None,
        }
    }

    /// The parsed Request-URI (requests only).
    pub fn request_uri(&self) -> Option<Result<Uri<'_>, Error>> {
        self.request_uri_raw().map(|u| {
            Uri::parse(u).map_err(|e| Error::new(ErrorKind::BadRequestUri(e), Some(Kind::Request)))
        })
    }

    /// Status code (responses only).
    pub fn status(&self) -> Option<u16> {
        match self.start {
            StartLine::Response { code, .. } => Some(code),
            StartLine::Request { .. } => None,
        }
    }

    /// Reason phrase as written (responses only).
    pub fn reason(&self) -> Option<&[u8]> {
        match self.start {
            StartLine::Response { reason, .. } => Some(self.get(reason)),
            StartLine::Request { .. } => None,
        }
    }

    // ----- headers ----------------------------------------------------------

    /// All header fields in order, one per header line.
    pub fn headers(&self) -> impl Iterator<Item = HeaderField<'_>> + '_ {
        self.headers.iter().map(move |e| HeaderField {
            name: e.name,
            name_raw: self.get(e.name_text),
            value: self.get(e.value),
        })
    }

    /// Number of header lines.
    pub fn header_count(&self) -> usize {
        self.headers.len()
    }

    /// The value of the first header line called `name`.
    pub fn header(&self, name: HeaderName) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|e| e.name == name)
            .map(|e| self.get(e.value))
    }

    /// The value of the first header line whose name is `name` (any header,
    /// including unknown ones; case-insensitive).
    pub fn header_by_name(&self, name: &str) -> Option<&[u8]> {
        let known = HeaderName::from_bytes(name.as_bytes());
        self.headers
            .iter()
            .find(|e| {
                if known == HeaderName::Other {
                    e.name == HeaderName::Other
                        && self.get(e.name_text).eq_ignore_ascii_case(name.as_bytes())
                } else {
                    e.name == known
                }
            })
            .map(|e| self.get(e.value))
    }

    /// How many header lines are called `name`.
    pub fn count(&self, name: HeaderName) -> usize {
        self.headers.iter().filter(|e| e.name == name).count()
    }

    /// Every value of `name`: each line, split at commas when `name` is a
    /// list header (RFC 3261 §7.3.1).
    pub fn values(&self, name: HeaderName) -> impl Iterator<Item = &[u8]> + '_ {
        let list = name.is_list();
        self.headers
            .iter()
            .filter(move |e| e.name == name)
            .flat_map(move |e| {
                let v = self.get(e.value);
                let split = if list { Some(CommaSplit::new(v)) } else { None };
                let single = if list { None } else { Some(v) };
                split.into_iter().flatten().chain(single)
            })
    }

    fn single(&self, name: HeaderName) -> Result<&[u8], Error> {
        let mut it = self.headers.iter().filter(|e| e.name == name);
        let first = it
            .next()
            .ok_or_else(|| Error::new(ErrorKind::Missing(name), Some(self.kind())))?;
        if it.next().is_some() {
            return Err(Error::new(ErrorKind::Multiple(name), Some(self.kind())));
        }
        Ok(self.get(first.value))
    }

    fn single_name_addr(&self, name: HeaderName) -> Result<NameAddr<'_>, Error> {
        let v = self.single(name)?;
        let mut parts = CommaSplit::new(v);
        let first = parts.next().unwrap_or(v);
        if parts.next().is_some() {
            return Err(Error::header(name, ValueError::SeveralValues, self.kind()));
        }
        NameAddr::parse(first).map_err(|e| Error::header(name, e, self.kind()))
    }

    /// All Via values, top first.
    pub fn via(&self) -> impl Iterator<Item = Result<Via<'_>, ValueError>> + '_ {
        self.values(HeaderName::Via).map(Via::parse)
    }

    /// The topmost Via.
    pub fn top_via(&self) -> Result<Via<'_>, Error> {
        let v = self
            .values(HeaderName::Via)
            .next()
            .ok_or_else(|| Error::new(ErrorKind::Missing(HeaderName::Via), Some(self.kind())))?;
        Via::parse(v).map_err(|e| Error::header(HeaderName::Via, e, self.kind()))
    }

    /// The From header.
    pub fn from(&self) -> Result<NameAddr<'_>, Error> {
        self.single_name_addr(HeaderName::From)
    }

    /// The To header.
    pub fn to(&self) -> Result<NameAddr<'_>, Error> {
        self.single_name_addr(HeaderName::To)
    }

    /// The Call-ID.
    pub fn call_id(&self) -> Result<&str, Error> {
        let v = self.single(HeaderName::CallId)?;
        parse_call_id(v).map_err(|e| Error::header(HeaderName::CallId, e, self.kind()))
    }

    /// The CSeq.
    pub fn cseq(&self) -> Result<CSeq<'_>, Error> {
        let v = self.single(HeaderName::CSeq)?;
        CSeq::parse(v).map_err(|e| Error::header(HeaderName::CSeq, e, self.kind()))
    }

    /// All Contact values.
    pub fn contacts(&self) -> impl Iterator<Item = Result<Contact<'_>, ValueError>> + '_ {
        self.values(HeaderName::Contact).map(Contact::parse)
    }

    /// All Route values, in order.
    pub fn routes(&self) -> impl Iterator<Item = Result<NameAddr<'_>, ValueError>> + '_ {
        self.values(HeaderName::Route).map(NameAddr::parse)
    }

    /// All Record-Route values, in order.
    pub fn record_routes(&self) -> impl Iterator<Item = Result<NameAddr<'_>, ValueError>> + '_ {
        self.values(HeaderName::RecordRoute).map(NameAddr::parse)
    }

    /// Max-Forwards, if present.
    pub fn max_forwards(&self) -> Result<Option<u8>, Error> {
        if self.count(HeaderName::MaxForwards) == 0 {
            return Ok(None);
        }
        let v = self.single(HeaderName::MaxForwards)?;
        parse_number(v, 255)
            .map(|n| Some(n as u8))
            .map_err(|e| Error::header(HeaderName::MaxForwards, e, self.kind()))
    }

    /// Content-Length as written, if present.
    pub fn content_length(&self) -> Result<Option<u32>, Error> {
        if self.count(HeaderName::ContentLength) == 0 {
            return Ok(None);
        }
        let v = self.single(HeaderName::ContentLength)?;
        parse_number(v, u64::from(u32::MAX))
            .map(|n| Some(n as u32))
            .map_err(|e| Error::header(HeaderName::ContentLength, e, self.kind()))
    }

    /// Content-Type, if present.
    pub fn content_type(&self) -> Option<Result<MediaType<'_>, Error>> {
        if self.count(HeaderName::ContentType) == 0 {
            return None;
        }
        Some(self.single(HeaderName::ContentType).and_then(|v| {
            MediaType::parse(v).map_err(|e| Error::header(HeaderName::ContentType, e, self.kind()))
        }))
    }

    /// Option tags or methods of a token-list header (Require, Proxy-Require,
    /// Supported, Unsupported, Allow, …).
    /// Empty elements (`Supported:` with no value, `a,,b`) are skipped.
    pub fn tokens(&self, name: HeaderName) -> impl Iterator<Item = Result<&str, ValueError>> + '_ {
        self.values(name).filter(|v| !v.is_empty()).map(parse_token)
    }

    /// The body.
    pub fn body(&self) -> &[u8] {
        self.get(self.body)
    }

    /// True when nothing was edited since parsing.
    pub fn is_modified(&self) -> bool {
        self.modified
    }

    // ----- building ---------------------------------------------------------

    /// A new request with no headers, to be filled in with the editing API.
    pub fn new_request(method: &str, uri: &[u8]) -> Result<Message, EditError> {
        if !is_token_str(method.as_bytes()) {
            return Err(EditError::BadValue);
        }
        Uri::parse(uri).map_err(|_| EditError::BadUri)?;
        let mut m = Message::empty(StartLine::Response {
            code: 0,
            reason: Slice::EMPTY,
        });
        let method = m.push_edit(method.as_bytes());
        let uri = m.push_edit(uri);
        m.start = StartLine::Request { method, uri };
        Ok(m)
    }

    /// A new response with no headers.
    pub fn new_response(code: u16, reason: &str) -> Result<Message, EditError> {
        if !(100..=699).contains(&code) || reason.bytes().any(|c| c < 0x20) {
            return Err(EditError::BadValue);
        }
        let mut m = Message::empty(StartLine::Response {
            code,
            reason: Slice::EMPTY,
        });
        let reason = m.push_edit(reason.as_bytes());
        m.start = StartLine::Response { code, reason };
        Ok(m)
    }

    fn empty(start: StartLine) -> Message {
        Message {
            buf: Bytes::new(),
            edit: Vec::new(),
            start,
            start_raw: None,
            headers: SmallVec::new(),
            body: Slice::EMPTY,
            raw: (0, 0),
            modified: true,
        }
    }

    // ----- editing ----------------------------------------------------------

    fn push_edit(&mut self, data: &[u8]) -> Slice {
        let start = self.edit.len();
        self.edit.extend_from_slice(data);
        self.modified = true;
        Slice {
            edit: true,
            start: start as u32,
            end: self.edit.len() as u32,
        }
    }

    fn new_entry(&mut self, name: &str, value: &[u8]) -> Result<Entry, EditError> {
        if !is_token_str(name.as_bytes()) {
            return Err(EditError::BadName);
        }
        if value.iter().any(|&c| matches!(c, b'\r' | b'\n')) {
            return Err(EditError::BadValue);
        }
        let known = HeaderName::from_bytes(name.as_bytes());
        // Print known headers in their canonical long form.
        let text = if known == HeaderName::Other {
            name
        } else {
            known.as_str()
        };
        let name_text = self.push_edit(text.as_bytes());
        let value = self.push_edit(trim_lws(value));
        Ok(Entry {
            name: known,
            name_text,
            value,
            line: None,
        })
    }

    /// Appends a header at the end.
    pub fn push_header(&mut self, name: &str, value: &[u8]) -> Result<(), EditError> {
        let e = self.new_entry(name, value)?;
        self.headers.push(e);
        Ok(())
    }

    /// Inserts a header at `index` (0 = first).
    pub fn insert_header(
        &mut self,
        index: usize,
        name: &str,
        value: &[u8],
    ) -> Result<(), EditError> {
        let e = self.new_entry(name, value)?;
        self.headers.insert(index.min(self.headers.len()), e);
        Ok(())
    }

    /// Removes the header line at `index`.
    pub fn remove_header_at(&mut self, index: usize) -> Result<(), EditError> {
        if index >= self.headers.len() {
            return Err(EditError::NoSuchHeader);
        }
        self.headers.remove(index);
        self.modified = true;
        Ok(())
    }

    /// Removes every header line called `name`; returns how many.
    pub fn remove_headers(&mut self, name: HeaderName) -> usize {
        let before = self.headers.len();
        self.headers.retain(|e| e.name != name);
        let n = before - self.headers.len();
        if n > 0 {
            self.modified = true;
        }
        n
    }

    /// Removes every header line whose name is `name` (case-insensitive, also
    /// for unknown headers); returns how many.
    pub fn remove_headers_by_name(&mut self, name: &str) -> usize {
        let known = HeaderName::from_bytes(name.as_bytes());
        if known != HeaderName::Other {
            return self.remove_headers(known);
        }
        let before = self.headers.len();
        let (buf, edit) = (&self.buf, &self.edit);
        self.headers.retain(|e| {
            let src: &[u8] = if e.name_text.edit { edit } else { buf };
            let n = &src[e.name_text.start as usize..e.name_text.end as usize];
            !(e.name == HeaderName::Other && n.eq_ignore_ascii_case(name.as_bytes()))
        });
        let n = before - self.headers.len();
        if n > 0 {
            self.modified = true;
        }
        n
    }

    /// Replaces every header line called `name` with one line holding
    /// `value`, at the position of the first (or at the end).
    pub fn set_header(&mut self, name: &str, value: &[u8]) -> Result<(), EditError> {
        let e = self.new_entry(name, value)?;
        let pos = self
            .headers
            .iter()
            .position(|h| h.name == e.name && e.name != HeaderName::Other);
        if e.name != HeaderName::Other {
            self.headers.retain(|h| h.name != e.name);
        } else {
            self.remove_headers_by_name(name);
        }
        let pos = pos.unwrap_or(self.headers.len()).min(self.headers.len());
        self.headers.insert(pos, e);
        Ok(())
    }

    /// Inserts a header before the first line of the same name (or first of
    /// all when there is none): how a proxy adds its Via or a Record-Route.
    pub fn prepend_header(&mut self, name: &str, value: &[u8]) -> Result<(), EditError> {
        let e = self.new_entry(name, value)?;
        let pos = self
            .headers
            .iter()
            .position(|h| h.name == e.name)
            .unwrap_or(0);
        self.headers.insert(pos, e);
        Ok(())
    }

    /// Removes the first value of the first `name` line (the top Via of a
    /// response a proxy relays, or the top Route); removes the line when it
    /// held only that value. Returns false when there is no such header.
    pub fn remove_first_value(&mut self, name: HeaderName) -> bool {
        let Some(idx) = self.headers.iter().position(|e| e.name == name) else {
            return false;
        };
        let value = self.get(self.headers[idx].value);
        let mut split = CommaSplit::new(value);
        let _first = split.next();
        let rest: Vec<&[u8]> = split.collect();
        if rest.is_empty() {
            self.headers.remove(idx);
            self.modified = true;
            return true;
        }
        let joined = rest.join(&b", "[..]);
        let v = self.push_edit(trim_lws(&joined));
        let e = &mut self.headers[idx];
        e.value = v;
        e.line = None;
        true
    }

    /// Replaces the Request-URI (requests only).
    pub fn set_request_uri(&mut self, uri: &[u8]) -> Result<(), EditError> {
        Uri::parse(uri).map_err(|_| EditError::BadUri)?;
        let StartLine::Request { method, .. } = self.start else {
            return Err(EditError::WrongKind);
        };
        let uri = self.push_edit(uri);
        self.start = StartLine::Request { method, uri };
        self.start_raw = None;
        Ok(())
    }

    /// Replaces the status code and reason phrase (responses only).
    pub fn set_status(&mut self, code: u16, reason: &str) -> Result<(), EditError> {
        if !(100..=699).contains(&code) || reason.bytes().any(|c| c < 0x20) {
            return Err(EditError::BadValue);
        }
        if self.is_request() {
            return Err(EditError::WrongKind);
        }
        let reason = self.push_edit(reason.as_bytes());
        self.start = StartLine::Response { code, reason };
        self.start_raw = None;
        Ok(())
    }

    /// Rewrites the URI inside the name-addr value of the header line at
    /// `index` (its first value), keeping display name and parameters. An
    /// addr-spec value gains `<>` when the new URI needs them.
    pub fn set_header_uri(&mut self, index: usize, uri: &[u8]) -> Result<(), EditError> {
        Uri::parse(uri).map_err(|_| EditError::BadUri)?;
        let entry = *self.headers.get(index).ok_or(EditError::NoSuchHeader)?;
        let value = self.get(entry.value);
        let first = CommaSplit::new(value).next().unwrap_or(value);
        // `first` is a sub-slice of `value`.
        let off = first.as_ptr() as usize - value.as_ptr() as usize;
        let na = NameAddr::parse(first).map_err(|_| EditError::NoSuchHeader)?;
        let (s, e) = (off + na.uri_range.0, off + na.uri_range.1);
        let needs_brackets = !na.bracketed && uri.iter().any(|&c| matches!(c, b',' | b';' | b'?'));
        let mut v = Vec::with_capacity(value.len() + uri.len() + 2);
        v.extend_from_slice(&value[..s]);
        if needs_brackets {
            v.push(b'<');
        }
        v.extend_from_slice(uri);
        if needs_brackets {
            v.push(b'>');
        }
        v.extend_from_slice(&value[e..]);
        let slice = self.push_edit(&v);
        let h = &mut self.headers[index];
        h.value = slice;
        h.line = None;
        Ok(())
    }

    /// Replaces the body, sets Content-Length, and sets Content-Type (or
    /// removes it when `content_type` is `None` and the body is empty).
    pub fn set_body(&mut self, content_type: Option<&str>, body: &[u8]) -> Result<(), EditError> {
        match content_type {
            Some(ct) => self.set_header("Content-Type", ct.as_bytes())?,
            None if body.is_empty() => {
                self.remove_headers(HeaderName::ContentType);
            }
            None => {}
        }
        let mut len = itoa_buf();
        let n = fmt_usize(&mut len, body.len());
        self.set_header("Content-Length", n)?;
        self.body = self.push_edit(body);
        Ok(())
    }

    // ----- printing ---------------------------------------------------------

    /// The message as bytes. Unmodified: the received bytes (without leading
    /// CRLFs or trailing bytes beyond Content-Length), without copying.
    pub fn to_bytes(&self) -> Bytes {
        if !self.modified {
            return self.buf.slice(self.raw.0 as usize..self.raw.1 as usize);
        }
        let mut out = Vec::with_capacity(self.buf.len() + self.edit.len() + 64);
        self.write_to(&mut out);
        Bytes::from(out)
    }

    /// Appends the message to `out`, copying unchanged lines byte for byte.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        if !self.modified {
            out.extend_from_slice(&self.buf[self.raw.0 as usize..self.raw.1 as usize]);
            return;
        }
        match (self.start_raw, self.start) {
            (Some((s, e)), _) => {
                let line = &self.buf[s as usize..e as usize];
                out.extend_from_slice(line);
                if !line.ends_with(b"\n") {
                    // A datagram holding only a start line, without its CRLF.
                    out.extend_from_slice(b"\r\n");
                }
            }
            (None, StartLine::Request { method, uri }) => {
                out.extend_from_slice(self.get(method));
                out.push(b' ');
                out.extend_from_slice(self.get(uri));
                out.extend_from_slice(b" SIP/2.0\r\n");
            }
            (None, StartLine::Response { code, reason }) => {
                out.extend_from_slice(b"SIP/2.0 ");
                let mut b = itoa_buf();
                out.extend_from_slice(fmt_usize(&mut b, usize::from(code)));
                out.push(b' ');
                out.extend_from_slice(self.get(reason));
                out.extend_from_slice(b"\r\n");
            }
        }
        for e in &self.headers {
            match e.line {
                Some((s, end)) => {
                    let line = &self.buf[s as usize..end as usize];
                    out.extend_from_slice(line);
                    if !line.ends_with(b"\n") {
                        // Last header of a datagram that ended without the empty line.
                        out.extend_from_slice(b"\r\n");
                    }
                }
                None => {
                    out.extend_from_slice(self.get(e.name_text));
                    out.extend_from_slice(b": ");
                    out.extend_from_slice(self.get(e.value));
                    out.extend_from_slice(b"\r\n");
                }
            }
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(self.body());
    }
}

fn itoa_buf() -> [u8; 20] {
    [0u8; 20]
}

fn fmt_usize(buf: &mut [u8; 20], mut n: usize) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[i..]
}

impl PartialEq for Message {
    /// Two messages are equal when their start lines, header lines (name as
    /// written, value) and bodies are equal.
    fn eq(&self, other: &Message) -> bool {
        self.kind() == other.kind()
            && self.status() == other.status()
            && self.reason() == other.reason()
            && self.method_str() == other.method_str()
            && self.request_uri_raw() == other.request_uri_raw()
            && self.body() == other.body()
            && self.headers().eq(other.headers())
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Message");
        match self.start {
            StartLine::Request { method, uri } => {
                d.field("method", &String::from_utf8_lossy(self.get(method)));
                d.field("uri", &String::from_utf8_lossy(self.get(uri)));
            }
            StartLine::Response { code, reason } => {
                d.field("status", &code);
                d.field("reason", &String::from_utf8_lossy(self.get(reason)));
            }
        }
        d.field("headers", &self.headers.len())
            .field("body_len", &self.body().len())
            .finish()
    }
}
