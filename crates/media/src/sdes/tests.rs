use super::*;
use crate::srtp::SrtpContext;
use crate::test_corpora;

const TEAMS: &str =
    "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:V/Lr6Lsvhad/crSB9kCQ28jrYDxR2Yfk5bXryH5V|2^31";

/// Every `a=crypto` line of the Teams/ACS SDP corpus.
fn corpus_lines() -> Vec<String> {
    let dir = test_corpora::dir().join("teams-sdp");
    let mut lines = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        lines.extend(
            text.lines()
                .filter(|l| l.starts_with("a=crypto:"))
                .map(str::to_owned),
        );
    }
    lines
}

#[test]
fn parses_every_crypto_line_of_the_teams_corpus_and_prints_it_back() {
    let lines = corpus_lines();
    assert!(lines.len() >= 6, "{lines:?}");
    for line in &lines {
        let a = CryptoAttribute::parse(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        assert_eq!(a.to_sdp_line(), *line);
        assert_eq!(a.keys.len(), 1);
        assert_eq!(a.keys[0].key_salt().len(), 30);
        assert_eq!(a.keys[0].lifetime, Some(Lifetime::PowerOfTwo(31)));
        match a.keys[0].mki {
            None => {
                let p = a.srtp_policy().unwrap();
                assert_eq!(Some(p.profile), a.suite.profile());
                SrtpContext::new(&p).unwrap();
            }
            Some(mki) => {
                assert_eq!(
                    mki,
                    Mki {
                        value: 1,
                        length: 1
                    }
                );
                assert_eq!(a.srtp_policy(), Err(SdesError::MkiUnsupported));
            }
        }
    }
}

#[test]
fn teams_line_gives_the_80_bit_policy() {
    let a = CryptoAttribute::parse(TEAMS).unwrap();
    assert_eq!(a.tag, 1);
    assert_eq!(a.suite, CryptoSuite::AesCm128HmacSha1_80);
    assert_eq!(a.keys[0].lifetime.unwrap().packets(), 1 << 31);
    let p = a.srtp_policy().unwrap();
    assert_eq!(p.profile, SrtpProfile::AesCm128HmacSha1_80);
    assert_eq!(p.master_key(), &a.keys[0].key_salt()[..16]);
    assert_eq!(p.master_salt(), &a.keys[0].key_salt()[16..]);
    assert!(p.encrypt_rtp && p.encrypt_rtcp);
    // The same value without "a=", with CRLF and extra spaces.
    let b = CryptoAttribute::parse(
        "1  AES_CM_128_HMAC_SHA1_80   inline:V/Lr6Lsvhad/crSB9kCQ28jrYDxR2Yfk5bXryH5V|2^31\r\n",
    )
    .unwrap();
    assert_eq!(a, b);
}

#[test]
fn choose_prefers_80_over_32_as_teams_expects() {
    let offered = [
        CryptoAttribute::parse(
            "a=crypto:0 AES_CM_128_HMAC_SHA1_32 inline:Hr4D2cgUu9+Uza5Igz/JkVx59DAxDbaxJg862ibQ|2^31",
        )
        .unwrap(),
        CryptoAttribute::parse(TEAMS).unwrap(),
    ];
    let pref = [
        SrtpProfile::AesCm128HmacSha1_80,
        SrtpProfile::AesCm128HmacSha1_32,
    ];
    assert_eq!(choose_crypto(&offered, &pref).map(|a| a.tag), Some(1));
    assert_eq!(
        choose_crypto(&offered, &[SrtpProfile::AesCm128HmacSha1_32]).map(|a| a.tag),
        Some(0)
    );
    assert_eq!(choose_crypto(&offered, &[SrtpProfile::AeadAes128Gcm]), None);
}

#[test]
fn gcm_keys_parse_with_and_without_base64_padding() {
    let key_salt: Vec<u8> = (0..28).collect();
    let a = CryptoAttribute::new(3, SrtpProfile::AeadAes128Gcm, &key_salt).unwrap();
    let line = a.to_sdp_line();
    assert!(line.ends_with('='), "{line}");
    assert_eq!(CryptoAttribute::parse(&line).unwrap(), a);
    let unpadded = line.trim_end_matches('=');
    assert_eq!(CryptoAttribute::parse(unpadded).unwrap(), a);
    let p = a.srtp_policy().unwrap();
    assert_eq!(p.master_salt().len(), 12);
}

#[test]
fn generated_keys_are_fresh_and_round_trip() {
    for profile in [
        SrtpProfile::AesCm128HmacSha1_80,
        SrtpProfile::AesCm128HmacSha1_32,
        SrtpProfile::AeadAes128Gcm,
    ] {
        let a = CryptoAttribute::generate(1, profile)
            .unwrap()
            .with_lifetime(Lifetime::PowerOfTwo(31));
        let b = CryptoAttribute::generate(1, profile).unwrap();
        assert_ne!(a.keys[0].key_salt(), b.keys[0].key_salt());
        assert!(a.to_sdp_line().ends_with("|2^31"));
        let back = CryptoAttribute::parse(&a.to_sdp_line()).unwrap();
        assert_eq!(back, a);
        assert!(back
            .srtp_policy()
            .unwrap()
            .same_key(&a.srtp_policy().unwrap()));
    }
    assert_eq!(
        CryptoAttribute::new(1, SrtpProfile::AesCm128HmacSha1_80, &[0; 28]),
        Err(SdesError::KeyLength {
            expected: 30,
            found: 28
        })
    );
}

#[test]
fn session_params() {
    let with = |params: &str| CryptoAttribute::parse(&format!("{TEAMS} {params}")).unwrap();
    let p = with("UNENCRYPTED_SRTCP").srtp_policy().unwrap();
    assert!(p.encrypt_rtp && !p.encrypt_rtcp);
    let p = with("UNENCRYPTED_SRTP KDR=0").srtp_policy().unwrap();
    assert!(!p.encrypt_rtp && p.encrypt_rtcp);
    assert_eq!(with("WSH=512").srtp_policy().unwrap().replay_window, 512);
    assert_eq!(with("WSH=64").srtp_policy().unwrap().replay_window, 128);
    assert_eq!(
        with("FEC_ORDER=FEC_SRTP").session_params,
        ["FEC_ORDER=FEC_SRTP"]
    );
    with("FEC_ORDER=FEC_SRTP").srtp_policy().unwrap();
    for bad in [
        "KDR=1",
        "UNAUTHENTICATED_SRTP",
        "FOO",
        "WSH=x",
        "WSH=99999999",
    ] {
        assert_eq!(
            with(bad).srtp_policy(),
            Err(SdesError::UnsupportedSessionParam(bad.to_owned())),
            "{bad}"
        );
    }
    // Kept and printed back.
    assert_eq!(
        with("KDR=1 FOO").to_sdp_line(),
        format!("{TEAMS} KDR=1 FOO")
    );
}

#[test]
fn lifetimes_and_mkis() {
    let key = "inline:V/Lr6Lsvhad/crSB9kCQ28jrYDxR2Yfk5bXryH5V";
    let parse = |params: &str| {
        CryptoAttribute::parse(&format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 {key}{params}"))
    };
    let k = |params: &str| parse(params).unwrap().keys[0].clone();
    assert_eq!(k("").lifetime, None);
    assert_eq!(k("|1048576").lifetime, Some(Lifetime::Packets(1 << 20)));
    assert_eq!(k("|2^20").lifetime.unwrap().packets(), 1 << 20);
    assert_eq!(k("|2^64").lifetime.unwrap().packets(), u64::MAX);
    assert_eq!(
        k("|1:4").mki,
        Some(Mki {
            value: 1,
            length: 4
        })
    );
    assert_eq!(k("|1:4").lifetime, None);
    let both = k("|2^20|255:1");
    assert_eq!(
        (both.lifetime, both.mki),
        (
            Some(Lifetime::PowerOfTwo(20)),
            Some(Mki {
                value: 255,
                length: 1
            })
        )
    );
    for (params, err) in [
        ("|2^65", SdesError::BadLifetime),
        ("|2^", SdesError::BadLifetime),
        ("|2^x", SdesError::BadLifetime),
        ("|-5", SdesError::BadLifetime),
        ("|99999999999999999999999", SdesError::BadLifetime),
        ("|", SdesError::BadLifetime),
        ("|1:0", SdesError::BadMki),
        ("|1:129", SdesError::BadMki),
        ("|256:1", SdesError::BadMki),
        ("|1:", SdesError::BadMki),
        ("|1:4|2^20", SdesError::BadKeyParam),
        ("|2^20|2^20", SdesError::BadKeyParam),
        ("|1:1|2:1", SdesError::BadKeyParam),
    ] {
        assert_eq!(parse(params), Err(err), "{params}");
    }
    // Several keys need MKIs: parsed, but not usable here.
    let two = parse(&format!("|2^20|1:4;{key}|2^20|2:4")).unwrap();
    assert_eq!(two.keys.len(), 2);
    assert_eq!(two.srtp_policy(), Err(SdesError::MkiUnsupported));
    assert_eq!(
        two.to_sdp_line(),
        format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 {key}|2^20|1:4;{key}|2^20|2:4")
    );
}

#[test]
fn malformed_lines_are_typed_errors() {
    let k40 = "V/Lr6Lsvhad/crSB9kCQ28jrYDxR2Yfk5bXryH5V";
    let cases: Vec<(String, SdesError)> = vec![
        ("a=crypto:".into(), SdesError::BadTag),
        (
            "a=crypto:x AES_CM_128_HMAC_SHA1_80 inline:AAAA".into(),
            SdesError::BadTag,
        ),
        (
            "a=crypto:1234567890 AES_CM_128_HMAC_SHA1_80 inline:AAAA".into(),
            SdesError::BadTag,
        ),
        (
            "a=crypto:-1 AES_CM_128_HMAC_SHA1_80 inline:AAAA".into(),
            SdesError::BadTag,
        ),
        ("a=crypto:1".into(), SdesError::MissingSuite),
        (
            "a=crypto:1 AES_CM_128_HMAC_SHA1_80".into(),
            SdesError::MissingKeyParams,
        ),
        (
            format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 uri:{k40}"),
            SdesError::BadKeyMethod,
        ),
        (
            "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:".into(),
            SdesError::BadBase64,
        ),
        (
            "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:%%%%".into(),
            SdesError::BadBase64,
        ),
        (
            "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:A".into(),
            SdesError::BadBase64,
        ),
        (
            format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{}", &k40[..36]),
            SdesError::KeyLength {
                expected: 30,
                found: 27,
            },
        ),
        (
            format!("a=crypto:1 AEAD_AES_128_GCM inline:{k40}"),
            SdesError::KeyLength {
                expected: 28,
                found: 30,
            },
        ),
        (
            format!("a=crypto:1 AES_256_CM_HMAC_SHA1_80 inline:{k40}"),
            SdesError::KeyLength {
                expected: 46,
                found: 30,
            },
        ),
        (
            format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{k40};"),
            SdesError::BadKeyMethod,
        ),
        (
            format!(
                "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{}",
                "A".repeat(5000)
            ),
            SdesError::TooLong,
        ),
    ];
    for (line, err) in cases {
        assert_eq!(CryptoAttribute::parse(&line), Err(err), "{line}");
    }
}

#[test]
fn unknown_suites_parse_and_are_unsupported() {
    let a = CryptoAttribute::parse(
        "a=crypto:2 F8_128_HMAC_SHA1_80 inline:MTIzNDU2Nzg5QUJDREUwMTIzNDU2Nzg5QUJjZGVm|2^20|1:4",
    )
    .unwrap();
    assert_eq!(a.suite, CryptoSuite::Other("F8_128_HMAC_SHA1_80".into()));
    assert!(!a.is_supported());
    assert_eq!(
        a.srtp_policy(),
        Err(SdesError::UnsupportedSuite("F8_128_HMAC_SHA1_80".into()))
    );
    // A suite nobody registered: any key length.
    let b = CryptoAttribute::parse("a=crypto:3 VENDOR_SUITE inline:AAAA").unwrap();
    assert_eq!(b.keys[0].key_salt(), &[0, 0, 0]);
    assert_eq!(b.to_sdp_line(), "a=crypto:3 VENDOR_SUITE inline:AAAA");
}
