//! The lenient, bounded line splitter behind [`crate::SessionDescription::parse`].

use crate::description::{MediaDescription, SessionDescription};
use crate::error::ParseError;
use crate::line::Line;

/// Bounds on what [`crate::SessionDescription::parse_with`] accepts. Memory
/// used by a parsed description is at most a small multiple of `max_bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseLimits {
    /// Maximum input length in bytes (default 65,536: a SIP body over UDP
    /// cannot be larger; Teams offers are 1–6 KB).
    pub max_bytes: usize,
    /// Maximum number of lines (default 2,048).
    pub max_lines: usize,
    /// Maximum number of `m=` sections (default 64).
    pub max_media: usize,
}

impl Default for ParseLimits {
    fn default() -> Self {
        Self {
            max_bytes: 65_536,
            max_lines: 2_048,
            max_media: 64,
        }
    }
}

/// Splits `input` into lines (terminated by LF, an optional CR before it
/// removed; a last line without terminator is a line too) and groups them into
/// the session part and one section per line starting with `m=`.
pub(crate) fn parse(input: &[u8], limits: &ParseLimits) -> Result<SessionDescription, ParseError> {
    if input.len() > limits.max_bytes {
        return Err(ParseError::TooLarge {
            len: input.len(),
            max: limits.max_bytes,
        });
    }
    if input.is_empty() {
        return Err(ParseError::Empty);
    }
    let body = input.strip_suffix(b"\n").unwrap_or(input);
    let mut session = Vec::new();
    let mut media: Vec<MediaDescription> = Vec::new();
    for (count, raw) in body.split(|b| *b == b'\n').enumerate() {
        if count >= limits.max_lines {
            return Err(ParseError::TooManyLines {
                max: limits.max_lines,
            });
        }
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let line = Line::from_raw(raw);
        if raw.starts_with(b"m=") {
            if media.len() >= limits.max_media {
                return Err(ParseError::TooManyMedia {
                    max: limits.max_media,
                });
            }
            media.push(MediaDescription::new(line));
        } else if let Some(m) = media.last_mut() {
            m.push_parsed(line);
        } else {
            session.push(line);
        }
    }
    Ok(SessionDescription::from_parts(session, media))
}
