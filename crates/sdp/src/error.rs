//! Errors of the SDP layer: one enum for parsing, one for editing.

use std::fmt;

/// Why a description could not be parsed at all.
///
/// Parsing is lenient: a malformed line is kept verbatim and only lacks a
/// typed view. These errors are about input that cannot be accepted whatever
/// its content — nothing to parse, or more than the configured bounds. The
/// B2BUA answers such an offer with a 488 (or 400) and relays nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseError {
    /// The input is empty: no line at all.
    Empty,
    /// The input is longer than [`crate::ParseLimits::max_bytes`].
    TooLarge {
        /// Length of the input in bytes.
        len: usize,
        /// The configured maximum.
        max: usize,
    },
    /// The input has more lines than [`crate::ParseLimits::max_lines`].
    TooManyLines {
        /// The configured maximum.
        max: usize,
    },
    /// The input has more `m=` sections than [`crate::ParseLimits::max_media`].
    TooManyMedia {
        /// The configured maximum.
        max: usize,
    },
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("empty session description"),
            Self::TooLarge { len, max } => {
                write!(
                    f,
                    "session description of {len} bytes exceeds the limit of {max}"
                )
            }
            Self::TooManyLines { max } => {
                write!(f, "session description has more than {max} lines")
            }
            Self::TooManyMedia { max } => {
                write!(f, "session description has more than {max} media sections")
            }
        }
    }
}

impl std::error::Error for ParseError {}

/// Why an edit could not be applied. The description is left unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EditError {
    /// The line the edit rewrites is not present (e.g. no `o=` line).
    Missing {
        /// The SDP line type that is missing, e.g. `'o'`.
        kind: char,
    },
    /// The line the edit rewrites is present but does not parse, so it cannot
    /// be rewritten field by field (e.g. `m=audio x RTP/AVP 0`).
    Malformed {
        /// The SDP line type of the malformed line, e.g. `'m'`.
        kind: char,
    },
    /// A value given to the edit would not make a valid line: empty, or
    /// containing whitespace where a token is required, CR, LF or NUL.
    InvalidValue {
        /// What the value was for, e.g. `"proto"`.
        what: &'static str,
    },
    /// `sess-version` is already at `u64::MAX` and cannot be increased.
    VersionOverflow,
}

impl fmt::Display for EditError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing { kind } => write!(f, "no {kind}= line to edit"),
            Self::Malformed { kind } => {
                write!(f, "the {kind}= line is malformed and cannot be edited")
            }
            Self::InvalidValue { what } => write!(f, "invalid value for {what}"),
            Self::VersionOverflow => {
                f.write_str("sess-version cannot be increased beyond u64::MAX")
            }
        }
    }
}

impl std::error::Error for EditError {}
