//! Errors that know what to answer.
//!
//! Every error says whether it concerns a request or a response, and
//! [`Error::response`] gives the status code and reason phrase to send back —
//! or `None` when the message must be dropped (any malformed response, and
//! input that is not recognisably SIP).

use std::fmt;

use crate::headers::ValueError;
use crate::message::Kind;
use crate::name::HeaderName;
use crate::uri::UriError;

/// What is wrong with a message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Nothing but CR/LF.
    Empty,
    /// The first line is neither a Request-Line nor a Status-Line.
    NotSip,
    /// Malformed Request-Line (extra or missing SP, missing version, …).
    BadRequestLine,
    /// The method is not a token.
    BadMethod,
    /// Malformed Status-Line (code not 3 digits in 100..=699, …).
    BadStatusLine,
    /// A well-formed SIP version other than 2.0 (505).
    VersionNotSupported,
    /// The Request-URI does not parse.
    BadRequestUri(UriError),
    /// The Request-URI carries `?headers` (RFC 4475 §3.1.2.11: never turned into real headers).
    RequestUriHeaders,
    /// A Request-URI scheme other than sip, sips or tel (416).
    UnsupportedUriScheme,
    /// A header line without a name or colon, or a continuation line with no header before it.
    BadHeaderLine,
    /// More header lines than allowed.
    TooManyHeaders,
    /// A header value does not parse.
    BadHeader(HeaderName, ValueError),
    /// A required header is missing.
    Missing(HeaderName),
    /// A single-value header appears more than once (or has several values).
    Multiple(HeaderName),
    /// CSeq method differs from the Request-Line method.
    CSeqMismatch,
    /// An unknown method, whose CSeq also disagrees (RFC 4475 §3.1.2.18: 501).
    UnknownMethod,
    /// Content-Length is larger than the bytes received.
    BodyTruncated,
    /// The message is larger than allowed (413).
    TooLarge,
    /// Require or Proxy-Require lists option tags this element does not support
    /// (420; the tags go into `Unsupported`).
    BadExtension(String),
    /// The request's Accept header admits no body type we could answer with (406).
    NotAcceptable,
    /// A response whose Via names a broadcast or multicast address.
    BroadcastVia,
}

/// A message that cannot be processed, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: Option<Kind>,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: Option<Kind>) -> Error {
        Error { kind, message }
    }

    pub(crate) fn header(name: HeaderName, e: ValueError, message: Kind) -> Error {
        Error {
            kind: ErrorKind::BadHeader(name, e),
            message: Some(message),
        }
    }

    /// What is wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// Whether the offending message was a request or a response, when known.
    pub fn message_kind(&self) -> Option<Kind> {
        self.message
    }

    /// The status code for this error if it were answered.
    pub fn status(&self) -> u16 {
        match self.kind {
            ErrorKind::VersionNotSupported => 505,
            ErrorKind::UnsupportedUriScheme => 416,
            ErrorKind::TooLarge => 413,
            ErrorKind::BadExtension(_) => 420,
            ErrorKind::NotAcceptable => 406,
            ErrorKind::UnknownMethod => 501,
            _ => 400,
        }
    }

    /// The response to send: `Some((status, reason phrase))` for a request
    /// that can be answered, `None` when the message must be dropped.
    pub fn response(&self) -> Option<(u16, String)> {
        match (&self.kind, self.message) {
            (ErrorKind::Empty | ErrorKind::NotSip, _) => None,
            (_, Some(Kind::Request)) => Some((self.status(), self.to_string())),
            _ => None,
        }
    }

    /// The option tags for an `Unsupported` header (420 only).
    pub fn unsupported(&self) -> Option<&str> {
        match &self.kind {
            ErrorKind::BadExtension(tags) => Some(tags),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    /// The reason phrase: it names the header or element at fault.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ErrorKind::Empty => f.write_str("Empty message"),
            ErrorKind::NotSip => f.write_str("Not a SIP message"),
            ErrorKind::BadRequestLine => f.write_str("Malformed Request-Line"),
            ErrorKind::BadMethod => f.write_str("Bad Method"),
            ErrorKind::BadStatusLine => f.write_str("Malformed Status-Line"),
            ErrorKind::VersionNotSupported => f.write_str("Version Not Supported"),
            ErrorKind::BadRequestUri(e) => write!(f, "Bad Request-URI ({e})"),
            ErrorKind::RequestUriHeaders => f.write_str("Bad Request-URI (headers not allowed)"),
            ErrorKind::UnsupportedUriScheme => f.write_str("Unsupported URI Scheme"),
            ErrorKind::BadHeaderLine => f.write_str("Malformed header line"),
            ErrorKind::TooManyHeaders => f.write_str("Too many headers"),
            ErrorKind::BadHeader(h, e) => write!(f, "Bad {h} header ({e})"),
            ErrorKind::Missing(h) => write!(f, "Missing {h} header"),
            ErrorKind::Multiple(h) => write!(f, "Multiple {h} headers"),
            ErrorKind::CSeqMismatch => f.write_str("CSeq method does not match Request-Line"),
            ErrorKind::UnknownMethod => f.write_str("Not Implemented"),
            ErrorKind::BodyTruncated => f.write_str("Bad Content-Length (larger than body)"),
            ErrorKind::TooLarge => f.write_str("Message Too Large"),
            ErrorKind::BadExtension(_) => f.write_str("Bad Extension"),
            ErrorKind::NotAcceptable => {
                f.write_str("Not Acceptable (Accept excludes application/sdp)")
            }
            ErrorKind::BroadcastVia => f.write_str("Via names a broadcast or multicast address"),
        }
    }
}

impl std::error::Error for Error {}
