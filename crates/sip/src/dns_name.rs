//! DNS name matching for TLS peers: the RFC 2818 §3.1 wildcard rule.

/// True when the DNS name `name` is covered by `pattern`, a name taken from
/// a certificate (SAN) or from configuration.
///
/// Names compare ASCII case-insensitively. A pattern starting with `*.`
/// covers exactly one whole left-most label: `*.example.com` matches
/// `sbc.example.com` but neither `example.com` nor `a.b.example.com`
/// (RFC 2818 §3.1, RFC 6125 §6.4.3). A `*` anywhere else — a partial-label
/// wildcard such as `f*o.example.com` or `sbc*.example.com`, or a `*` below
/// the left-most label — is not a wildcard and only matches itself, and a
/// bare `*.` covers nothing.
///
/// The transport (choice of server certificate by SNI) and the trunk
/// classifier (peer certificate names against `peer_names`) used to carry
/// a copy each of the same rule; this is that rule, made stricter in one
/// corner: a bare `*.` used to match any single label followed by a dot.
pub fn dns_name_matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(suffix) => {
            if suffix.is_empty() {
                return false;
            }
            match name.split_once('.') {
                Some((label, rest)) => !label.is_empty() && rest.eq_ignore_ascii_case(suffix),
                None => false,
            }
        }
        None => pattern.eq_ignore_ascii_case(name),
    }
}

#[cfg(test)]
mod tests {
    use super::dns_name_matches;

    #[test]
    fn wildcards_cover_one_label() {
        assert!(dns_name_matches("*.contoso.com", "sbc.contoso.com"));
        assert!(!dns_name_matches("*.contoso.com", "sbc.test.contoso.com"));
        assert!(!dns_name_matches("*.contoso.com", "contoso.com"));
        assert!(!dns_name_matches("*.contoso.com", ".contoso.com"));
        assert!(dns_name_matches(
            "SIP.pstnhub.microsoft.com",
            "sip.pstnhub.microsoft.com"
        ));
    }

    #[test]
    fn wildcard_match_ignores_case() {
        assert!(dns_name_matches("*.CONTOSO.com", "Sbc.contoso.COM"));
        assert!(!dns_name_matches("sbc.contoso.com", "sbc.contoso.org"));
    }

    #[test]
    fn partial_label_wildcards_match_only_themselves() {
        assert!(!dns_name_matches("f*o.example.com", "foo.example.com"));
        assert!(!dns_name_matches("sbc*.example.com", "sbc1.example.com"));
        assert!(!dns_name_matches("sbc.*.example.com", "sbc.eu.example.com"));
        assert!(!dns_name_matches("*", "localhost"));
        assert!(!dns_name_matches("*.", "host."));
        // Taken literally, such a pattern is an ordinary (odd) name.
        assert!(dns_name_matches("f*o.example.com", "F*O.example.com"));
    }
}
