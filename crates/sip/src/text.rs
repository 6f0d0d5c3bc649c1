//! Character classes and small scanners shared by every grammar in this crate
//! (RFC 3261 §25.1). Everything works on byte slices and never allocates.

/// `token` characters: alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~".
pub(crate) const fn is_token(b: u8) -> bool {
    matches!(b,
        b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9'
        | b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~')
}

/// `word` characters (Call-ID): token characters plus `( ) < > : \ " / [ ] ? { }`.
pub(crate) const fn is_word(b: u8) -> bool {
    is_token(b)
        || matches!(
            b,
            b'(' | b')'
                | b'<'
                | b'>'
                | b':'
                | b'\\'
                | b'"'
                | b'/'
                | b'['
                | b']'
                | b'?'
                | b'{'
                | b'}'
        )
}

/// `unreserved` = alphanum / mark.
pub(crate) const fn is_unreserved(b: u8) -> bool {
    matches!(b,
        b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9'
        | b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')')
}

/// Whitespace inside a header value. Folding was validated when the message was
/// split into lines, so a CR or LF inside a value is always part of `LWS`.
pub(crate) const fn is_lws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

pub(crate) fn trim_lws(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|&b| !is_lws(b)).unwrap_or(s.len());
    let end = s.iter().rposition(|&b| !is_lws(b)).map_or(start, |p| p + 1);
    &s[start..end.max(start)]
}

pub(crate) fn skip_lws(s: &[u8], mut i: usize) -> usize {
    while i < s.len() && is_lws(s[i]) {
        i += 1;
    }
    i
}

pub(crate) fn all(s: &[u8], f: impl Fn(u8) -> bool) -> bool {
    s.iter().all(|&b| f(b))
}

pub(crate) fn is_token_str(s: &[u8]) -> bool {
    !s.is_empty() && all(s, is_token)
}

/// Checks `%HH` escapes in `s` and that every other byte satisfies `allowed`.
pub(crate) fn escaped_ok(s: &[u8], allowed: impl Fn(u8) -> bool) -> bool {
    let mut i = 0;
    while i < s.len() {
        let b = s[i];
        if b == b'%' {
            if i + 2 >= s.len() {
                return false;
            }
            if !(s[i + 1].is_ascii_hexdigit() && s[i + 2].is_ascii_hexdigit()) {
                return false;
            }
            i += 3;
        } else if allowed(b) {
            i += 1;
        } else {
            return false;
        }
    }
    true
}

/// Parses a decimal number of at most `max`, rejecting empty input, signs and
/// anything that is not a digit. Leading zeros are allowed (RFC 4475 `test`).
pub(crate) fn parse_u64(s: &[u8], max: u64) -> Option<u64> {
    if s.is_empty() || s.len() > 30 {
        return None;
    }
    let mut v: u64 = 0;
    for &b in s {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    (v <= max).then_some(v)
}

/// Length of the quoted string starting at `s[0] == '"'`, including both quotes,
/// honouring `\` quoted-pairs. `None` when the closing quote is missing.
pub(crate) fn quoted_len(s: &[u8]) -> Option<usize> {
    debug_assert_eq!(s.first(), Some(&b'"'));
    let mut i = 1;
    while i < s.len() {
        match s[i] {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// Splits a comma-separated header value into its elements, ignoring commas
/// inside quoted strings and inside `<...>`. Elements are trimmed of LWS; empty
/// elements are yielded as empty slices so that callers can reject them.
#[derive(Debug, Clone)]
pub struct CommaSplit<'a> {
    rest: Option<&'a [u8]>,
}

impl<'a> CommaSplit<'a> {
    pub(crate) fn new(value: &'a [u8]) -> Self {
        Self { rest: Some(value) }
    }
}

impl<'a> Iterator for CommaSplit<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let s = self.rest?;
        let mut i = 0;
        let mut angle = false;
        while i < s.len() {
            match s[i] {
                b'"' => match quoted_len(&s[i..]) {
                    Some(n) => {
                        i += n;
                        continue;
                    }
                    None => break,
                },
                b'<' => angle = true,
                b'>' => angle = false,
                b',' if !angle => {
                    self.rest = Some(&s[i + 1..]);
                    return Some(trim_lws(&s[..i]));
                }
                _ => {}
            }
            i += 1;
        }
        self.rest = None;
        Some(trim_lws(s))
    }
}

/// Iterates over `;name[=value]` parameters. The input starts at the first `;`
/// (or is empty). Values may be quoted strings; LWS around `;` and `=` is
/// allowed (RFC 3261 SEMI / EQUAL).
#[derive(Debug, Clone)]
pub struct Params<'a> {
    rest: &'a [u8],
}

impl<'a> Params<'a> {
    pub(crate) fn new(raw: &'a [u8]) -> Self {
        Self { rest: raw }
    }

    /// The value of the first parameter called `name` (case-insensitive);
    /// `Some(None)` for a parameter without a value.
    pub fn get(&self, name: &str) -> Option<Option<&'a [u8]>> {
        self.clone()
            .find(|p| p.name.eq_ignore_ascii_case(name.as_bytes()))
            .map(|p| p.value)
    }
}

/// One `name[=value]` parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Param<'a> {
    /// Parameter name as written.
    pub name: &'a [u8],
    /// Value as written (quotes kept), `None` when absent.
    pub value: Option<&'a [u8]>,
}

impl<'a> Iterator for Params<'a> {
    type Item = Param<'a>;

    fn next(&mut self) -> Option<Param<'a>> {
        let s = self.rest;
        let mut i = skip_lws(s, 0);
        if i >= s.len() || s[i] != b';' {
            self.rest = &[];
            return None;
        }
        i = skip_lws(s, i + 1);
        let ns = i;
        while i < s.len() && !matches!(s[i], b';' | b'=') && !is_lws(s[i]) {
            i += 1;
        }
        let name = &s[ns..i];
        i = skip_lws(s, i);
        let mut value = None;
        if i < s.len() && s[i] == b'=' {
            i = skip_lws(s, i + 1);
            let vs = i;
            if i < s.len() && s[i] == b'"' {
                i += quoted_len(&s[i..]).unwrap_or(s.len() - i);
            } else {
                while i < s.len() && s[i] != b';' && !is_lws(s[i]) {
                    i += 1;
                }
            }
            value = Some(&s[vs..i]);
            i = skip_lws(s, i);
        }
        self.rest = &s[i..];
        Some(Param { name, value })
    }
}

/// Validates a parameter list as written after a URI or header value: every
/// parameter has a non-empty token name, and a token, host or quoted-string value.
pub(crate) fn params_ok(raw: &[u8]) -> bool {
    let mut s = raw;
    loop {
        let i = skip_lws(s, 0);
        if i == s.len() {
            return true;
        }
        if s[i] != b';' {
            return false;
        }
        let mut p = Params::new(&s[i..]);
        let Some(param) = p.next() else { return false };
        if !is_token_str(param.name) {
            return false;
        }
        if let Some(v) = param.value {
            let ok = if v.first() == Some(&b'"') {
                quoted_len(v) == Some(v.len())
            } else {
                !v.is_empty() && all(v, |b| is_token(b) || matches!(b, b'[' | b']' | b':'))
            };
            if !ok {
                return false;
            }
        }
        s = p.rest;
    }
}

/// Decodes `%HH` escapes. Borrows when there are none.
pub fn percent_decode(s: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if !s.contains(&b'%') {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' && i + 2 < s.len() {
            if let (Some(h), Some(l)) = (hex(s[i + 1]), hex(s[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(s[i]);
        i += 1;
    }
    std::borrow::Cow::Owned(out)
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comma_split_respects_quotes_and_angles() {
        let v: Vec<_> = CommaSplit::new(br#""a, b" <sip:x@y;p=1,2>, sip:z , "#).collect();
        assert_eq!(v, vec![&br#""a, b" <sip:x@y;p=1,2>"#[..], b"sip:z", b""]);
    }

    #[test]
    fn params_iterate_with_lws_and_quotes() {
        let p: Vec<_> = Params::new(b" ; a = 1 ;b; c=\"x;y\"").collect();
        assert_eq!(p.len(), 3);
        assert_eq!(p[0].value, Some(&b"1"[..]));
        assert_eq!(p[1].value, None);
        assert_eq!(p[2].value, Some(&b"\"x;y\""[..]));
        assert!(params_ok(b" ; a = 1 ;b; c=\"x;y\""));
        assert!(!params_ok(b";;"));
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(&*percent_decode(b"%75se%72"), b"user");
        assert_eq!(&*percent_decode(b"100%"), b"100%");
        assert!(escaped_ok(b"a%20b", is_unreserved));
        assert!(!escaped_ok(b"a%2", is_unreserved));
        assert!(!escaped_ok(b"a%", is_unreserved));
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_u64(b"0068", 255), Some(68));
        assert_eq!(parse_u64(b"256", 255), None);
        assert_eq!(parse_u64(b"-1", 255), None);
        assert_eq!(parse_u64(b"36893488147419103232", u64::MAX), None);
    }
}
