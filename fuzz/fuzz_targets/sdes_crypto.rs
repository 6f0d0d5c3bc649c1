//! Fuzz target: `media::CryptoAttribute::parse` (SDES `a=crypto`, RFC 4568)
//! on arbitrary strings.
//!
//! Invariants when the line parses:
//! * parsing is deterministic; the tag is at most 999,999,999; there are 1
//!   to 16 key parameters; a known suite's keys have its key‖salt length;
//!   lifetimes are `2^0`..`2^64` or a count, MKI lengths 1..=128 with the
//!   value fitting; session parameters are non-empty and free of ASCII
//!   whitespace;
//! * `to_string()` and `to_sdp_line()` (also with CRLF) re-parse to an equal
//!   attribute, and printing that again gives the same text (printing is
//!   canonical) — M2 breaks this near the 4096-octet bound;
//! * `srtp_policy()` succeeds exactly for a supported suite with one key and
//!   no MKI and only implemented session parameters (`is_supported` agrees);
//!   its key‖salt is the attribute's, and `SrtpContext::new` accepts it;
//!   `choose_crypto` picks this attribute for its own profile iff supported.
//!
//! Errors are checked for the cases that are decidable from the text alone:
//! a line over 4096 bytes after trimming is `TooLong`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use media::{choose_crypto, CryptoAttribute, CryptoSuite, Lifetime, SdesError, SrtpContext};

/// `SBC_FUZZ_TOLERATE_KNOWN=1` skips the printing checks for attributes whose
/// printed line is near the 4096-octet bound (known bug M2, see
/// docs/fuzzing.md); unset, every check is strict.
fn tolerate_known() -> bool {
    static T: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *T.get_or_init(|| std::env::var_os("SBC_FUZZ_TOLERATE_KNOWN").is_some_and(|v| v != "0"))
}

fuzz_target!(|data: &[u8]| {
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = CryptoAttribute::parse(line);
    assert_eq!(CryptoAttribute::parse(line), parsed, "parse is not deterministic");
    let trimmed = line.trim_end_matches(['\r', '\n']).trim();
    if trimmed.len() > 4096 {
        assert_eq!(parsed, Err(SdesError::TooLong));
    }
    let Ok(attr) = parsed else {
        return;
    };

    assert!(attr.tag <= 999_999_999);
    assert!((1..=16).contains(&attr.keys.len()), "{} keys", attr.keys.len());
    for k in &attr.keys {
        if let Some(n) = attr.suite.key_salt_len() {
            assert_eq!(k.key_salt().len(), n, "key length for {}", attr.suite);
        }
        assert!(!k.key_salt().is_empty());
        if let Some(Lifetime::PowerOfTwo(n)) = k.lifetime {
            assert!(n <= 64);
        }
        if let Some(m) = k.mki {
            assert!((1..=128).contains(&m.length));
            if m.length < 8 {
                assert_eq!(m.value >> (8 * u32::from(m.length)), 0, "MKI value too wide");
            }
        }
    }
    for p in &attr.session_params {
        assert!(!p.is_empty() && !p.bytes().any(|b| b.is_ascii_whitespace()), "{p:?}");
    }
    if let CryptoSuite::Other(name) = &attr.suite {
        assert!(attr.suite.profile().is_none());
        assert_eq!(CryptoSuite::from_name(name), attr.suite);
    }

    // Printing round-trips.
    let printed = attr.to_string();
    let sdp_line = attr.to_sdp_line();
    assert_eq!(sdp_line, format!("a=crypto:{printed}"));
    // M2 (open): the 4096-octet bound counts the optional `a=crypto:` prefix
    // and the input's spelling, so a printed form of an accepted attribute
    // can be over it (`TooLong`).
    if tolerate_known() && sdp_line.len() + 2 > 4096 {
        return;
    }
    let again = CryptoAttribute::parse(&printed);
    assert_eq!(again.as_ref(), Ok(&attr), "to_string {printed:?} does not re-parse to the attribute");
    assert_eq!(again.unwrap().to_string(), printed, "printing is not canonical");
    assert_eq!(CryptoAttribute::parse(&sdp_line).as_ref(), Ok(&attr), "to_sdp_line re-parse");
    assert_eq!(CryptoAttribute::parse(&format!("{sdp_line}\r\n")).as_ref(), Ok(&attr));

    // The policy.
    let policy = attr.srtp_policy();
    assert_eq!(attr.is_supported(), policy.is_ok());
    let params_ok = attr.session_params.iter().all(|p| {
        matches!(p.as_str(), "UNENCRYPTED_SRTP" | "UNENCRYPTED_SRTCP" | "KDR=0")
            || p.strip_prefix("WSH=").is_some_and(|v| v.parse::<u32>().is_ok_and(|w| w <= 32_768))
            || p.starts_with("FEC_ORDER=")
            || p.starts_with("FEC_KEY=")
    });
    let expected_ok = attr.suite.profile().is_some()
        && attr.keys.len() == 1
        && attr.keys[0].mki.is_none()
        && params_ok;
    assert_eq!(policy.is_ok(), expected_ok, "srtp_policy: {policy:?}");
    if let Ok(pol) = policy {
        let profile = attr.suite.profile().unwrap();
        assert_eq!(pol.profile, profile);
        let mut ks = pol.master_key().to_vec();
        ks.extend_from_slice(pol.master_salt());
        assert_eq!(ks, attr.keys[0].key_salt());
        assert_eq!(pol.encrypt_rtp, !attr.session_params.iter().any(|p| p == "UNENCRYPTED_SRTP"));
        assert_eq!(pol.encrypt_rtcp, !attr.session_params.iter().any(|p| p == "UNENCRYPTED_SRTCP"));
        SrtpContext::new(&pol).expect("SrtpContext refuses a policy srtp_policy gave");
        let offered = [attr.clone()];
        assert_eq!(choose_crypto(&offered, &[profile]), Some(&offered[0]));
    } else if let Some(profile) = attr.suite.profile() {
        let offered = [attr.clone()];
        assert_eq!(choose_crypto(&offered, &[profile]), None);
    }
});
