//! Bencode (BEP 3) as the ng protocol uses it: a zero-copy decoder over
//! `&[u8]` with depth, item and size limits, and an encoder that writes
//! dictionary keys in sorted order.
//!
//! The decoder is strict about syntax — integers and lengths without leading
//! zeros or `-0`, no trailing bytes, no duplicate dictionary keys — and
//! lenient about one thing rtpengine is lenient about too: dictionary keys
//! need not arrive sorted (Kamailio's rtpengine module sends them in the order
//! it adds them). It never recurses: nesting is tracked on an explicit stack
//! bounded by [`Limits::max_depth`].

use std::fmt;

/// A decoded bencode value. Byte strings borrow from the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value<'a> {
    /// A byte string (`4:spam`).
    Bytes(&'a [u8]),
    /// An integer (`i42e`), 64-bit signed.
    Int(i64),
    /// A list (`l…e`).
    List(Vec<Value<'a>>),
    /// A dictionary (`d…e`).
    Dict(Dict<'a>),
}

impl<'a> Value<'a> {
    /// The byte string, if this is one.
    pub fn as_bytes(&self) -> Option<&'a [u8]> {
        match self {
            Self::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The byte string as UTF-8 text, if this is a byte string that is UTF-8.
    pub fn as_str(&self) -> Option<&'a str> {
        self.as_bytes().and_then(|b| std::str::from_utf8(b).ok())
    }

    /// The integer, if this is one.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Self::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The list, if this is one.
    pub fn as_list(&self) -> Option<&[Value<'a>]> {
        match self {
            Self::List(l) => Some(l),
            _ => None,
        }
    }

    /// The dictionary, if this is one.
    pub fn as_dict(&self) -> Option<&Dict<'a>> {
        match self {
            Self::Dict(d) => Some(d),
            _ => None,
        }
    }

    /// The name of the value's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Bytes(_) => "string",
            Self::Int(_) => "integer",
            Self::List(_) => "list",
            Self::Dict(_) => "dictionary",
        }
    }
}

impl<'a> From<&'a [u8]> for Value<'a> {
    fn from(b: &'a [u8]) -> Self {
        Self::Bytes(b)
    }
}

impl<'a> From<&'a str> for Value<'a> {
    fn from(s: &'a str) -> Self {
        Self::Bytes(s.as_bytes())
    }
}

impl From<i64> for Value<'_> {
    fn from(i: i64) -> Self {
        Self::Int(i)
    }
}

/// A bencode dictionary: entries in the order they were decoded or inserted.
/// Keys are unique; [`encode`] writes them sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dict<'a> {
    entries: Vec<(&'a [u8], Value<'a>)>,
}

impl<'a> Dict<'a> {
    /// An empty dictionary.
    pub fn new() -> Self {
        Self::default()
    }

    /// The value for `key`.
    pub fn get(&self, key: &[u8]) -> Option<&Value<'a>> {
        self.entries.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// Sets `key` to `value`, replacing an existing entry in place.
    pub fn insert(&mut self, key: &'a [u8], value: Value<'a>) {
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some(e) => e.1 = value,
            None => self.entries.push((key, value)),
        }
    }

    /// Builder form of [`Dict::insert`].
    pub fn with(mut self, key: &'a str, value: impl Into<Value<'a>>) -> Self {
        self.insert(key.as_bytes(), value.into());
        self
    }

    /// The entries, in decoding or insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&'a [u8], &Value<'a>)> {
        self.entries.iter().map(|(k, v)| (*k, v))
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Bounds on what [`decode_with`] accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Maximum input length in bytes (default 262,144: Kamailio's reply buffer;
    /// a UDP datagram is at most 65,507).
    pub max_input: usize,
    /// Maximum nesting of lists and dictionaries (default 32; ng messages
    /// nest three levels deep, `codec` → `transcode` → list).
    pub max_depth: usize,
    /// Maximum number of values, containers included (default 16,384).
    pub max_items: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_input: 262_144,
            max_depth: 32,
            max_items: 16_384,
        }
    }
}

/// Why bencode input was refused. Offsets count bytes from the start of the
/// decoded input.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended inside a value (truncated message, or nothing at all).
    UnexpectedEnd {
        /// Where more input was needed.
        offset: usize,
    },
    /// A byte that cannot start or continue a value here (e.g. `x`, or `e`
    /// where a dictionary value is due).
    UnexpectedByte {
        /// Position of the byte.
        offset: usize,
        /// The byte.
        byte: u8,
    },
    /// An integer that is empty, has leading zeros, is `-0`, or does not fit
    /// in 64 bits.
    InvalidInteger {
        /// Position of the `i`.
        offset: usize,
    },
    /// A string length with leading zeros, too many digits, or no `:`.
    InvalidLength {
        /// Position of the length.
        offset: usize,
    },
    /// A string length larger than the rest of the input.
    LengthExceedsInput {
        /// Position of the length.
        offset: usize,
        /// The declared length (saturated at `u64::MAX`).
        length: u64,
    },
    /// A dictionary key that is not a byte string.
    NonStringKey {
        /// Position of the key.
        offset: usize,
    },
    /// The same key twice in one dictionary.
    DuplicateKey {
        /// Position of the dictionary's closing `e`.
        offset: usize,
    },
    /// Lists and dictionaries nested deeper than [`Limits::max_depth`].
    TooDeep {
        /// Position of the container that went too deep.
        offset: usize,
    },
    /// More values than [`Limits::max_items`].
    TooManyItems {
        /// Position where the limit was reached.
        offset: usize,
    },
    /// The input is longer than [`Limits::max_input`].
    InputTooLarge {
        /// Input length.
        len: usize,
        /// The configured maximum.
        max: usize,
    },
    /// Bytes after the complete top-level value.
    TrailingData {
        /// Position of the first extra byte.
        offset: usize,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnexpectedEnd { offset } => {
                write!(f, "input ends at byte {offset} inside a value")
            }
            Self::UnexpectedByte { offset, byte } => {
                write!(f, "unexpected byte 0x{byte:02x} at {offset}")
            }
            Self::InvalidInteger { offset } => write!(f, "invalid integer at byte {offset}"),
            Self::InvalidLength { offset } => write!(f, "invalid string length at byte {offset}"),
            Self::LengthExceedsInput { offset, length } => {
                write!(
                    f,
                    "string length {length} at byte {offset} exceeds the input"
                )
            }
            Self::NonStringKey { offset } => {
                write!(f, "dictionary key at byte {offset} is not a string")
            }
            Self::DuplicateKey { offset } => {
                write!(f, "duplicate key in dictionary ending at byte {offset}")
            }
            Self::TooDeep { offset } => write!(f, "nesting too deep at byte {offset}"),
            Self::TooManyItems { offset } => write!(f, "too many values (at byte {offset})"),
            Self::InputTooLarge { len, max } => {
                write!(f, "input of {len} bytes exceeds the limit of {max}")
            }
            Self::TrailingData { offset } => write!(f, "trailing data at byte {offset}"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Decodes exactly one value spanning all of `input`, with default [`Limits`].
pub fn decode(input: &[u8]) -> Result<Value<'_>, DecodeError> {
    decode_with(input, &Limits::default())
}

enum Frame<'a> {
    List(Vec<Value<'a>>),
    /// Entries so far, the key waiting for its value, and where the dictionary began.
    Dict(Vec<(&'a [u8], Value<'a>)>, Option<&'a [u8]>),
}

/// Decodes exactly one value spanning all of `input`, within `limits`.
pub fn decode_with<'a>(input: &'a [u8], limits: &Limits) -> Result<Value<'a>, DecodeError> {
    if input.len() > limits.max_input {
        return Err(DecodeError::InputTooLarge {
            len: input.len(),
            max: limits.max_input,
        });
    }
    let mut pos = 0usize;
    let mut items = 0usize;
    let mut stack: Vec<Frame<'a>> = Vec::new();
    loop {
        // A dictionary waiting for a key (or its end).
        if let Some(Frame::Dict(_, pending @ None)) = stack.last_mut() {
            match input.get(pos) {
                None => return Err(DecodeError::UnexpectedEnd { offset: pos }),
                Some(b'e') => {
                    let Some(Frame::Dict(entries, _)) = stack.pop() else {
                        unreachable!("top frame is a dict") // cannot fire: matched above
                    };
                    check_unique(&entries, pos)?;
                    pos += 1;
                    let done = Value::Dict(Dict { entries });
                    if let Some(root) = attach(&mut stack, done) {
                        return finish(root, input, pos);
                    }
                    continue;
                }
                Some(b'0'..=b'9') => {
                    let (key, next) = bytes(input, pos)?;
                    *pending = Some(key);
                    pos = next;
                    continue;
                }
                Some(_) => return Err(DecodeError::NonStringKey { offset: pos }),
            }
        }
        // A value is due: the root, a list element or a dictionary value.
        let Some(&b) = input.get(pos) else {
            return Err(DecodeError::UnexpectedEnd { offset: pos });
        };
        let ends_list = b == b'e' && matches!(stack.last(), Some(Frame::List(_)));
        if !ends_list {
            items += 1;
            if items > limits.max_items {
                return Err(DecodeError::TooManyItems { offset: pos });
            }
        }
        let value = match b {
            b'i' => {
                let (i, next) = integer(input, pos)?;
                pos = next;
                Value::Int(i)
            }
            b'0'..=b'9' => {
                let (s, next) = bytes(input, pos)?;
                pos = next;
                Value::Bytes(s)
            }
            b'l' | b'd' => {
                if stack.len() >= limits.max_depth {
                    return Err(DecodeError::TooDeep { offset: pos });
                }
                stack.push(if b == b'l' {
                    Frame::List(Vec::new())
                } else {
                    Frame::Dict(Vec::new(), None)
                });
                pos += 1;
                continue;
            }
            b'e' if ends_list => {
                let Some(Frame::List(list)) = stack.pop() else {
                    unreachable!("top frame is a list") // cannot fire: matched above
                };
                pos += 1;
                Value::List(list)
            }
            _ => {
                return Err(DecodeError::UnexpectedByte {
                    offset: pos,
                    byte: b,
                })
            }
        };
        if let Some(root) = attach(&mut stack, value) {
            return finish(root, input, pos);
        }
    }
}

/// Attaches a completed value to the container on top of the stack, or
/// returns it when it is the top-level value.
fn attach<'a>(stack: &mut [Frame<'a>], value: Value<'a>) -> Option<Value<'a>> {
    match stack.last_mut() {
        None => Some(value),
        Some(Frame::List(list)) => {
            list.push(value);
            None
        }
        Some(Frame::Dict(entries, pending)) => {
            // A dictionary only asks for a value after a key was read.
            if let Some(key) = pending.take() {
                entries.push((key, value));
            }
            None
        }
    }
}

fn finish<'a>(root: Value<'a>, input: &'a [u8], pos: usize) -> Result<Value<'a>, DecodeError> {
    if pos != input.len() {
        return Err(DecodeError::TrailingData { offset: pos });
    }
    Ok(root)
}

fn check_unique(entries: &[(&[u8], Value<'_>)], end: usize) -> Result<(), DecodeError> {
    if entries.len() < 2 {
        return Ok(());
    }
    let mut keys: Vec<&[u8]> = entries.iter().map(|(k, _)| *k).collect();
    keys.sort_unstable();
    if keys.windows(2).any(|w| w[0] == w[1]) {
        return Err(DecodeError::DuplicateKey { offset: end });
    }
    Ok(())
}

/// `i<digits>e` at `start`; returns the integer and the position after `e`.
fn integer(input: &[u8], start: usize) -> Result<(i64, usize), DecodeError> {
    let invalid = DecodeError::InvalidInteger { offset: start };
    let mut pos = start + 1;
    let negative = input.get(pos) == Some(&b'-');
    if negative {
        pos += 1;
    }
    let digits_start = pos;
    let mut magnitude: u64 = 0;
    while let Some(&d) = input.get(pos) {
        if !d.is_ascii_digit() {
            break;
        }
        magnitude = magnitude
            .checked_mul(10)
            .and_then(|m| m.checked_add(u64::from(d - b'0')))
            .ok_or(invalid.clone())?;
        pos += 1;
    }
    let digits = &input[digits_start..pos];
    match input.get(pos) {
        None => return Err(DecodeError::UnexpectedEnd { offset: pos }),
        Some(b'e') => {}
        Some(_) => return Err(invalid),
    }
    if digits.is_empty() || (digits[0] == b'0' && (digits.len() > 1 || negative)) {
        return Err(invalid);
    }
    let value = if negative {
        if magnitude > i64::MAX as u64 + 1 {
            return Err(invalid);
        }
        // magnitude ≤ 2^63, so the wrapping negation is exact (2^63 → i64::MIN).
        (magnitude as i64).wrapping_neg()
    } else {
        i64::try_from(magnitude).map_err(|_| invalid)?
    };
    Ok((value, pos + 1))
}

/// `<length>:<bytes>` at `start`; returns the bytes and the position after them.
fn bytes(input: &[u8], start: usize) -> Result<(&[u8], usize), DecodeError> {
    let mut pos = start;
    let mut length: u64 = 0;
    let mut saturated = false;
    while let Some(&d) = input.get(pos) {
        if !d.is_ascii_digit() {
            break;
        }
        if pos - start >= 20 {
            return Err(DecodeError::InvalidLength { offset: start });
        }
        match length
            .checked_mul(10)
            .and_then(|l| l.checked_add(u64::from(d - b'0')))
        {
            Some(l) => length = l,
            None => {
                saturated = true;
                length = u64::MAX;
            }
        }
        pos += 1;
    }
    match input.get(pos) {
        None => return Err(DecodeError::UnexpectedEnd { offset: pos }),
        Some(b':') => {}
        Some(_) => return Err(DecodeError::InvalidLength { offset: start }),
    }
    if input[start] == b'0' && pos - start > 1 {
        return Err(DecodeError::InvalidLength { offset: start });
    }
    let body = pos + 1;
    let available = (input.len() - body) as u64;
    if saturated || length > available {
        return Err(DecodeError::LengthExceedsInput {
            offset: start,
            length,
        });
    }
    // length ≤ available ≤ input.len(), so it fits in usize and the slice is in bounds.
    let end = body + length as usize;
    Ok((&input[body..end], end))
}

/// Appends the encoding of `value` to `out`; dictionary keys are written in
/// sorted order (byte-wise), as BEP 3 requires. Recursion depth equals the
/// value's nesting, which decoding bounds and replies keep shallow.
pub fn encode_into(value: &Value<'_>, out: &mut Vec<u8>) {
    match value {
        Value::Bytes(b) => {
            out.extend_from_slice(b.len().to_string().as_bytes());
            out.push(b':');
            out.extend_from_slice(b);
        }
        Value::Int(i) => {
            out.push(b'i');
            out.extend_from_slice(i.to_string().as_bytes());
            out.push(b'e');
        }
        Value::List(l) => {
            out.push(b'l');
            for v in l {
                encode_into(v, out);
            }
            out.push(b'e');
        }
        Value::Dict(d) => {
            let mut entries: Vec<&(&[u8], Value<'_>)> = d.entries.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push(b'd');
            for (k, v) in entries {
                encode_into(&Value::Bytes(k), out);
                encode_into(v, out);
            }
            out.push(b'e');
        }
    }
}

/// The encoding of `value`.
pub fn encode(value: &Value<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(value, &mut out);
    out
}
