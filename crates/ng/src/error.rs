//! What can be wrong with a request, and the error reply that says so.

use std::fmt;

use crate::bencode::DecodeError;

/// Why a datagram is not a valid ng request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestError {
    /// No cookie: no space in the datagram, an empty cookie, one longer than
    /// 256 bytes, or one with control or non-ASCII bytes. Such a datagram is
    /// dropped: a reply could not be matched by the sender.
    NoCookie,
    /// The body is a JSON object. rtpengine accepts JSON too; this codec
    /// speaks bencode only (what Kamailio and OpenSIPS send over UDP).
    Json,
    /// The body is not valid bencode.
    Bencode(DecodeError),
    /// The body is valid bencode but not a dictionary.
    NotADictionary {
        /// The type found instead (`string`, `integer`, `list`).
        found: &'static str,
    },
    /// The dictionary has no `command` key, or its value is not a string.
    NoCommand,
    /// The command is not one this codec knows (`ping`, `offer`, `answer`,
    /// `delete`, `query`, `list`).
    UnknownCommand(String),
    /// A key the command requires is absent (`call-id`, `from-tag`,
    /// `to-tag`, `sdp`).
    MissingKey(&'static str),
    /// A known key has a value of the wrong bencode type (e.g. `flags` as
    /// an integer).
    WrongType {
        /// The key, in its canonical spelling.
        key: &'static str,
        /// What was expected: `string`, `list of strings`, `integer`.
        expected: &'static str,
    },
    /// A known key has a value of the right type that cannot be used (e.g.
    /// `received-from` with one element, `delete-delay` that is not a number).
    InvalidValue {
        /// The key, in its canonical spelling.
        key: &'static str,
    },
}

impl fmt::Display for RequestError {
    /// The text sent as `error-reason`; rtpengine's wording where it has one.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoCookie => f.write_str("Message has no cookie"),
            Self::Json => f.write_str("JSON messages are not supported; use bencode"),
            Self::Bencode(e) => write!(f, "Could not decode bencode dictionary: {e}"),
            Self::NotADictionary { found } => {
                write!(
                    f,
                    "Could not decode bencode dictionary: top level is a {found}"
                )
            }
            Self::NoCommand => f.write_str("Dictionary contains no key \"command\""),
            Self::UnknownCommand(_) => f.write_str("Unrecognized command"),
            Self::MissingKey("sdp") => f.write_str("No SDP body in message"),
            Self::MissingKey(k) => write!(f, "No {k} in message"),
            Self::WrongType { key, expected } => {
                write!(
                    f,
                    "Invalid value type for key \"{key}\" (expected {expected})"
                )
            }
            Self::InvalidValue { key } => write!(f, "Invalid value for key \"{key}\""),
        }
    }
}

impl std::error::Error for RequestError {}

impl From<DecodeError> for RequestError {
    fn from(e: DecodeError) -> Self {
        Self::Bencode(e)
    }
}

/// The body of `{"result": "error", "error-reason": …}`: a reason, and the
/// request error behind it when the codec produced it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorReply {
    reason: String,
    error: Option<RequestError>,
}

impl ErrorReply {
    /// An error reply for a failure found after parsing (e.g. `Unknown call-id`,
    /// `Ran out of ports`; Kamailio retries another rtpengine on the latter).
    pub fn new(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            error: None,
        }
    }

    /// The `error-reason` text.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// The parsing error behind this reply, if the codec produced it.
    pub fn request_error(&self) -> Option<&RequestError> {
        self.error.as_ref()
    }
}

impl From<RequestError> for ErrorReply {
    fn from(e: RequestError) -> Self {
        Self {
            reason: e.to_string(),
            error: Some(e),
        }
    }
}

impl fmt::Display for ErrorReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}
