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
