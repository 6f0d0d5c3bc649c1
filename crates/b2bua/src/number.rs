//! Numbers in URIs: the user part of a `sip:` URI or the number of a `tel:`.

use sip::Uri;

/// The number (or user) a URI names: the `sip:` user part without user
/// parameters (`;phone-context=…`), or the `tel:` number; visual separators
/// (`-`, `.`, `(`, `)`) removed when what remains is a number.
pub fn number_of(uri_raw: &[u8]) -> Option<String> {
    let uri = Uri::parse(uri_raw).ok()?;
    let user = match uri {
        Uri::Sip(s) => {
            let u = s.user?;
            let u = u.split(|&b| b == b';').next().unwrap_or(u);
            String::from_utf8_lossy(u).into_owned()
        }
        Uri::Tel(t) => t.number.to_owned(),
        Uri::Other { .. } => return None,
    };
    let cleaned: String = user
        .chars()
        .filter(|c| !matches!(c, '-' | '.' | '(' | ')'))
        .collect();
    if is_number(&cleaned) {
        Some(cleaned)
    } else {
        Some(user)
    }
}

/// True for `+`? followed by digits (and `*`/`#`), at least one digit.
pub fn is_number(s: &str) -> bool {
    let d = s.strip_prefix('+').unwrap_or(s);
    !d.is_empty()
        && d.bytes().any(|b| b.is_ascii_digit())
        && d.bytes()
            .all(|b| b.is_ascii_digit() || b == b'*' || b == b'#')
}

/// A phone number as a log line shows it: with `masked`, every character
/// but the last 4 is `•` (`+49301234567` → `••••••••4567`, the status
/// page's form too); otherwise whole. Written without allocating, so a log
/// line filtered out costs nothing:
/// `tracing::info!(called = %redact(&called, masked), …)`.
#[derive(Debug, Clone, Copy)]
pub struct Redacted<'a> {
    number: &'a str,
    masked: bool,
}

/// `number`, masked to its last 4 characters when `masked` ([`Redacted`]).
pub fn redact(number: &str, masked: bool) -> Redacted<'_> {
    Redacted { number, masked }
}

/// `number` masked to its last 4 characters, as a string.
pub fn mask(number: &str) -> String {
    redact(number, true).to_string()
}

impl std::fmt::Display for Redacted<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if !self.masked {
            return f.write_str(self.number);
        }
        let hidden = self.number.chars().count().saturating_sub(4);
        for _ in 0..hidden {
            f.write_str("•")?;
        }
        self.number.chars().skip(hidden).try_for_each(|c| {
            use std::fmt::Write as _;
            f.write_char(c)
        })
    }
}

/// The number as E.164 with `+` when it is all digits (Microsoft needs the
/// `+`; normalisation rules are expected to have made it international).
pub(crate) fn plus(n: &str) -> String {
    if !n.starts_with('+') && is_number(n) && n.bytes().all(|b| b.is_ascii_digit()) {
        format!("+{n}")
    } else {
        n.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_masked_to_their_last_4_characters() {
        assert_eq!(mask("+49301234567"), "••••••••4567");
        assert_eq!(mask("4567"), "4567");
        assert_eq!(mask("123"), "123");
        assert_eq!(mask(""), "");
        assert_eq!(mask("anonymous"), "•••••mous");
        assert_eq!(redact("+49301234567", false).to_string(), "+49301234567");
        assert_eq!(format!("n={}", redact("0301234567", true)), "n=••••••4567");
    }

    #[test]
    fn numbers_from_sip_and_tel_uris() {
        assert_eq!(
            number_of(b"sip:+4930123@example.com;user=phone").as_deref(),
            Some("+4930123")
        );
        assert_eq!(
            number_of(b"sip:030123;phone-context=+49@example.com").as_deref(),
            Some("030123")
        );
        assert_eq!(
            number_of(b"tel:+1-201-555-0123").as_deref(),
            Some("+12015550123")
        );
        assert_eq!(
            number_of(b"sip:alice@example.com").as_deref(),
            Some("alice")
        );
        assert_eq!(number_of(b"sip:example.com"), None);
        assert!(is_number("+4930"));
        assert!(!is_number("+"));
        assert!(!is_number("alice"));
        assert_eq!(plus("4930"), "+4930");
        assert_eq!(plus("+4930"), "+4930");
        assert_eq!(plus("anonymous"), "anonymous");
    }
}
