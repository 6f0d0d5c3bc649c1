//! Property tests: no input from the network makes the packet code panic,
//! protect/unprotect round-trips any well-formed RTP/RTCP packet, and
//! payload-type maps stay within what the receiving party declared.
//! (The cargo-fuzz targets in `fuzz/` explore further; these run in CI.)

use media::{
    classify, CryptoAttribute, RtcpCompound, RtcpKind, RtpHeader, RtpPacket, SrtpContext,
    SrtpPolicy, SrtpProfile, UnprotectError,
};
use proptest::prelude::*;

const PROFILES: [SrtpProfile; 3] = [
    SrtpProfile::AesCm128HmacSha1_80,
    SrtpProfile::AesCm128HmacSha1_32,
    SrtpProfile::AeadAes128Gcm,
];

fn ctx(profile: SrtpProfile) -> SrtpContext {
    let salt = vec![5u8; profile.master_salt_len()];
    SrtpContext::new(&SrtpPolicy::new(profile, &[3; 16], &salt).unwrap()).unwrap()
}

/// Bytes biased toward looking like RTP/RTCP (first byte 0x80–0xbf).
fn datagram() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::bool::ANY,
        0x80u8..=0xbf,
        prop::collection::vec(any::<u8>(), 0..300),
    )
        .prop_map(|(rtpish, b0, mut v)| {
            if rtpish && !v.is_empty() {
                v[0] = b0;
            }
            v
        })
}

/// A well-formed RTP packet: random CSRCs, extension, payload, padding.
fn rtp_packet() -> impl Strategy<Value = Vec<u8>> {
    (
        0usize..=15,
        prop::option::of(prop::collection::vec(any::<u8>(), 0..5)),
        prop::collection::vec(any::<u8>(), 0..200),
        0u8..4,
        any::<[u8; 11]>(),
    )
        .prop_map(|(cc, ext, payload, pad, fixed)| {
            let mut p = vec![0x80 | cc as u8];
            p.extend_from_slice(&fixed);
            p[1] &= 0x7f;
            if p[1] >= 64 && p[1] < 96 {
                p[1] = 0; // RFC 5761: keep clear of RTCP types on a muxed port
            }
            for i in 0..cc {
                p.extend_from_slice(&(i as u32).to_be_bytes());
            }
            if let Some(words) = ext {
                p[0] |= 0x10;
                p.extend_from_slice(&[0xbe, 0xde]);
                p.extend_from_slice(&(words.len() as u16).to_be_bytes());
                for w in words {
                    p.extend_from_slice(&[w, 0, 0, 0]);
                }
            }
            p.extend_from_slice(&payload);
            if pad > 0 {
                p[0] |= 0x20;
                p.extend(std::iter::repeat_n(0, usize::from(pad) - 1));
                p.push(pad);
            }
            p
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn unprotect_never_panics(data in datagram(), pi in 0usize..3) {
        let mut c = ctx(PROFILES[pi]);
        let mut a = data.clone();
        let r = c.unprotect_rtp(&mut a);
        prop_assert!(matches!(
            r,
            Err(UnprotectError::TooShort | UnprotectError::Malformed | UnprotectError::AuthFailed)
        ), "{r:?}");
        let mut b = data.clone();
        let r = c.unprotect_rtcp(&mut b);
        prop_assert!(r.is_err(), "{r:?}");
        let total = c.counters().malformed + c.counters().auth_failures;
        prop_assert_eq!(total, 2);
    }

    #[test]
    fn protect_never_panics(data in datagram(), extra in 0usize..40, pi in 0usize..3) {
        let mut c = ctx(PROFILES[pi]);
        let len = data.len();
        let mut buf = data.clone();
        buf.resize(len + extra, 0);
        let _ = c.protect_rtp(&mut buf, len);
        let mut buf = data;
        buf.resize(len + extra, 0);
        let _ = c.protect_rtcp(&mut buf, len);
    }

    #[test]
    fn parsers_never_panic(data in datagram()) {
        let _ = classify(&data);
        if let Ok(h) = RtpHeader::parse(&data) {
            prop_assert!(h.header_len() <= data.len());
            let _ = h.csrcs().count();
            if let Some(e) = h.extension() {
                for el in e.elements() {
                    let _ = el;
                }
            }
        }
        if let Ok(p) = RtpPacket::parse(&data) {
            prop_assert!(p.payload().len() + p.padding_len() + p.header().header_len() == data.len());
        }
        let c = RtcpCompound::new(&data);
        let _ = c.validate(false);
        let mut total = 0;
        for p in c.iter() {
            let Ok(p) = p else { break };
            total += p.as_bytes().len();
            match p.kind() {
                Ok(RtcpKind::SenderReport(sr)) => { let _ = sr.report_blocks().count(); let _ = sr.profile_extension(); }
                Ok(RtcpKind::ReceiverReport(rr)) => { let _ = rr.report_blocks().count(); }
                Ok(RtcpKind::SourceDescription(s)) => {
                    for ch in s.chunks().flatten() { let _ = ch.items().count(); let _ = ch.cname(); }
                }
                Ok(RtcpKind::Bye(b)) => { let _ = b.ssrcs().count(); let _ = b.reason(); }
                Ok(RtcpKind::App(a)) => { let _ = (a.name(), a.data()); }
                _ => {}
            }
        }
        prop_assert!(total <= data.len());
    }

    #[test]
    fn sdes_parser_never_panics(s in "(a=crypto:)?[0-9]{0,3} ?[A-Z_0-9]{0,30} ?(inline:[A-Za-z0-9+/=]{0,60}(\\|[0-9^:]{0,8}){0,3};?){0,3}( [A-Z_=0-9]{0,12}){0,3}") {
        if let Ok(a) = CryptoAttribute::parse(&s) {
            // What parses prints back to something that parses to the same.
            prop_assert_eq!(CryptoAttribute::parse(&a.to_sdp_line()), Ok(a.clone()));
            let _ = a.srtp_policy();
        }
    }

    #[test]
    fn sdes_parser_never_panics_on_any_text(s in "\\PC{0,200}") {
        let _ = CryptoAttribute::parse(&s);
    }

    #[test]
    fn protect_unprotect_round_trips(pkt in rtp_packet(), pi in 0usize..3) {
        let profile = PROFILES[pi];
        let mut tx = ctx(profile);
        let mut rx = ctx(profile);
        prop_assert!(RtpPacket::parse(&pkt).is_ok());
        let mut buf = pkt.clone();
        buf.resize(pkt.len() + profile.rtp_overhead(), 0);
        let n = tx.protect_rtp(&mut buf, pkt.len()).unwrap();
        prop_assert_eq!(n, pkt.len() + profile.rtp_overhead());
        // The header stays in clear.
        let hlen = RtpHeader::parse(&pkt).unwrap().header_len();
        prop_assert_eq!(&buf[..hlen], &pkt[..hlen]);
        let m = rx.unprotect_rtp(&mut buf[..n]).unwrap();
        prop_assert_eq!(&buf[..m], &pkt[..]);
    }

    #[test]
    fn telephone_event_payloads_never_panic(data in prop::collection::vec(any::<u8>(), 0..8)) {
        let e = media::payload::TelephoneEvent::parse(&data);
        prop_assert_eq!(e.is_some(), data.len() >= 4);
    }

    /// Any two parties' formats (from SDP: payload types up to 255, any
    /// names and rates): the map never panics, keeps the marker bit, and
    /// only ever names a payload type the receiver declared (or drops).
    #[test]
    fn payload_maps_only_name_the_receivers_types(
        x in prop::collection::vec((any::<u8>(), 0usize..4, 0u32..3), 0..12),
        y in prop::collection::vec((any::<u8>(), 0usize..4, 0u32..3), 0..12),
    ) {
        use media::control::{PayloadFormat, PayloadSpec, PtMap};
        const NAMES: [&str; 4] = ["PCMA", "telephone-event", "CN", "opus"];
        let spec = |v: &[(u8, usize, u32)]| PayloadSpec::rtp(
            v.iter().map(|&(pt, n, r)| PayloadFormat::new(pt, NAMES[n], 8000 * (r + 1))).collect(),
        );
        let (sx, sy) = (spec(&x), spec(&y));
        if let Some(map) = PtMap::between(&sx, &sy) {
            for octet in 0..=255u8 {
                match map.rewrite(octet) {
                    Some(out) => {
                        prop_assert_eq!(out & 0x80, octet & 0x80);
                        let pt = out & 0x7f;
                        prop_assert!(pt == octet & 0x7f || sy.format(pt).is_some());
                    }
                    None => prop_assert!(sx.format(octet & 0x7f).is_some_and(|f| f.is_telephone_event())),
                }
            }
        }
    }
}

/// The inputs the media fuzz targets found (fuzz/regressions/) stay fixed.
#[test]
fn fuzz_regressions_stay_fixed() {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions");
    // M1: a one-byte-form element with ID 0 is an error, never an element.
    for e in std::fs::read_dir(root.join("rtp_header")).unwrap() {
        let data = std::fs::read(e.unwrap().path()).unwrap();
        if let Ok(p) = RtpPacket::parse(&data) {
            if let Some(ext) = p.header().extension() {
                for el in ext.elements().flatten() {
                    assert_ne!(el.id, 0, "element with reserved ID 0");
                }
            }
        }
    }
    // M2: whatever parses prints to something that parses again, equal.
    for e in std::fs::read_dir(root.join("sdes_crypto")).unwrap() {
        let data = std::fs::read(e.unwrap().path()).unwrap();
        let Ok(text) = std::str::from_utf8(&data) else {
            continue;
        };
        if let Ok(a) = CryptoAttribute::parse(text) {
            assert_eq!(CryptoAttribute::parse(&a.to_string()).as_ref(), Ok(&a));
            assert_eq!(CryptoAttribute::parse(&a.to_sdp_line()).as_ref(), Ok(&a));
        }
    }
}
