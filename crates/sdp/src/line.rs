//! One SDP line, stored verbatim, and the attribute view of an `a=` line.

use std::fmt;

/// One line of a session description, stored exactly as received, without
/// its line terminator (`\r\n` or `\n`).
///
/// A line normally has the form `<type>=<value>`; anything else (an empty
/// line, a continuation line starting with a space, text without `=`) is kept
/// too and reported with [`Line::kind`] `None`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Line {
    raw: Vec<u8>,
}

impl Line {
    pub(crate) fn from_raw(raw: &[u8]) -> Self {
        Self { raw: raw.to_vec() }
    }

    /// Builds `<kind>=<value>`; the caller has validated `value`.
    pub(crate) fn new(kind: u8, value: &str) -> Self {
        let mut raw = Vec::with_capacity(value.len() + 2);
        raw.push(kind);
        raw.push(b'=');
        raw.extend_from_slice(value.as_bytes());
        Self { raw }
    }

    /// Builds `a=<name>[:<value>]`; the caller has validated both parts.
    pub(crate) fn attribute(name: &str, value: Option<&str>) -> Self {
        match value {
            Some(v) => {
                let mut s = String::with_capacity(name.len() + v.len() + 1);
                s.push_str(name);
                s.push(':');
                s.push_str(v);
                Self::new(b'a', &s)
            }
            None => Self::new(b'a', name),
        }
    }

    /// The line's bytes, without the line terminator.
    pub fn as_bytes(&self) -> &[u8] {
        &self.raw
    }

    /// The line as text, if it is valid UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.raw).ok()
    }

    /// The type letter of a `<letter>=…` line (`'v'`, `'o'`, `'m'`, `'a'`, …);
    /// `None` for a line of any other form.
    pub fn kind(&self) -> Option<char> {
        self.kind_byte().map(char::from)
    }

    pub(crate) fn kind_byte(&self) -> Option<u8> {
        match self.raw.as_slice() {
            [k, b'=', ..] if k.is_ascii_alphabetic() => Some(*k),
            _ => None,
        }
    }

    pub(crate) fn is(&self, kind: u8) -> bool {
        self.kind_byte() == Some(kind)
    }

    /// The text after `<type>=`, if the line has that form and is UTF-8.
    pub fn value(&self) -> Option<&str> {
        self.kind_byte()?;
        std::str::from_utf8(&self.raw[2..]).ok()
    }

    /// The attribute view of an `a=` line.
    pub fn as_attribute(&self) -> Option<Attribute<'_>> {
        if !self.is(b'a') {
            return None;
        }
        Attribute::parse(self.value()?)
    }

    /// The value of an `a=` line if the attribute is called `name`
    /// (ASCII case-insensitively); `Some(None)` for a property attribute.
    pub(crate) fn attribute_named(&self, name: &str) -> Option<Option<&str>> {
        let a = self.as_attribute()?;
        a.name.eq_ignore_ascii_case(name).then_some(a.value)
    }
}

impl fmt::Debug for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&String::from_utf8_lossy(&self.raw), f)
    }
}

/// An `a=` line: `a=<name>` (a property attribute) or `a=<name>:<value>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attribute<'a> {
    /// The attribute name, e.g. `rtpmap`, `sendrecv`, `x-source`.
    pub name: &'a str,
    /// The text after the first `:`; `None` for a property attribute.
    pub value: Option<&'a str>,
}

impl<'a> Attribute<'a> {
    fn parse(text: &'a str) -> Option<Self> {
        let (name, value) = match text.split_once(':') {
            Some((n, v)) => (n, Some(v)),
            None => (text, None),
        };
        if name.is_empty() {
            return None;
        }
        Some(Self { name, value })
    }
}
