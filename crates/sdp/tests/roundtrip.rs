//! Property tests: printing is lossless, parsing never panics, and edits
//! touch only the lines they are about.

use std::net::{IpAddr, Ipv4Addr};

use proptest::prelude::*;
use sdp::{Direction, SessionDescription};

/// A plausible SDP line (typed or not), without terminator.
fn line() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("v=0".to_string()),
        (any::<u64>(), any::<u64>()).prop_map(|(a, b)| format!("o=- {a} {b} IN IP4 192.0.2.1")),
        "[ -~]{0,20}".prop_map(|s| format!("s={s}")),
        any::<[u8; 4]>().prop_map(|a| format!("c=IN IP4 {}", Ipv4Addr::from(a))),
        (0u32..100_000).prop_map(|b| format!("b=AS:{b}")),
        Just("t=0 0".to_string()),
        (
            any::<u16>(),
            prop::sample::select(vec!["RTP/AVP", "RTP/SAVP", "UDP/TLS/RTP/SAVP", "udptl"]),
            prop::collection::vec(0u8..128, 0..6)
        )
            .prop_map(|(p, proto, f)| {
                let f: Vec<String> = f.iter().map(u8::to_string).collect();
                format!("m=audio {p} {proto} {}", f.join(" "))
            }),
        (0u8..128, "[A-Za-z0-9-]{1,10}", 1u32..100_000)
            .prop_map(|(pt, e, r)| format!("a=rtpmap:{pt} {e}/{r}")),
        prop::sample::select(vec![
            "a=sendrecv",
            "a=sendonly",
            "a=recvonly",
            "a=inactive",
            "a=rtcp-mux",
            "a=ice-lite",
            "a=end-of-candidates"
        ])
        .prop_map(str::to_string),
        (any::<u16>()).prop_map(|p| format!("a=rtcp:{p}")),
        (1u32..1000, "[A-Za-z0-9+/]{40}")
            .prop_map(|(t, k)| format!("a=crypto:{t} AES_CM_128_HMAC_SHA1_80 inline:{k}|2^31")),
        (
            any::<u16>(),
            prop::sample::select(vec!["UDP", "TCP-ACT", "tcp-pass"])
        )
            .prop_map(|(p, t)| format!("a=candidate:1 1 {t} 2130706431 192.0.2.9 {p} typ host")),
        "[a-z-]{1,12}(:[ -~]{0,30})?".prop_map(|s| format!("a={s}")),
        // Anything printable, including lines that are not `x=…` at all.
        "[ -~]{0,40}",
    ]
}

fn description() -> impl Strategy<Value = String> {
    prop::collection::vec(line(), 1..40).prop_map(|lines| {
        let mut s = lines.join("\r\n");
        s.push_str("\r\n");
        s
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn crlf_input_round_trips_byte_exact(input in description()) {
        let sdp = SessionDescription::parse(input.as_bytes()).unwrap();
        prop_assert_eq!(sdp.to_bytes(), input.as_bytes());
        prop_assert_eq!(sdp.printed_len(), input.len());
        prop_assert_eq!(sdp.to_string(), input);
    }

    #[test]
    fn lf_input_prints_as_its_crlf_twin(input in description()) {
        let lf = input.replace("\r\n", "\n");
        let sdp = SessionDescription::parse(lf.as_bytes()).unwrap();
        prop_assert_eq!(sdp.to_bytes(), input.as_bytes());
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_printing_is_stable(input in prop::collection::vec(any::<u8>(), 0..600)) {
        if let Ok(sdp) = SessionDescription::parse(&input) {
            let printed = sdp.to_bytes();
            let again = SessionDescription::parse(&printed).unwrap();
            prop_assert_eq!(again.to_bytes(), printed.clone());
            prop_assert_eq!(&again, &sdp);
            // Exercise every typed view: none may panic.
            let _ = (sdp.origin(), sdp.connection(), sdp.timing(), sdp.direction(), sdp.ice_lite());
            for (i, m) in sdp.media().iter().enumerate() {
                let _ = (m.media_line(), m.rtcp(), m.ptime(), m.ice_ufrag(), sdp.effective_direction(i));
                let _ = (m.rtpmaps().count(), m.fmtps().count(), m.candidates().count(), m.crypto().count());
            }
        }
    }

    #[test]
    fn relay_edits_keep_unrelated_lines(input in description(), port in any::<u16>(), a in any::<[u8; 4]>()) {
        let mut sdp = SessionDescription::parse(input.as_bytes()).unwrap();
        let before: Vec<Vec<u8>> = sdp.lines().map(|l| l.as_bytes().to_vec()).collect();
        let addr = IpAddr::V4(Ipv4Addr::from(a));
        sdp.set_connection_everywhere(addr);
        sdp.remove_ice_everywhere();
        for m in sdp.media_mut() {
            let _ = m.set_port(port);
            m.set_direction(Direction::SendRecv);
            m.remove_crypto();
        }
        let printed = sdp.to_bytes();
        let after = SessionDescription::parse(&printed).unwrap();
        prop_assert_eq!(after.to_bytes(), printed);
        // Every line not touched by an edit is still there, in order.
        let touched = |l: &[u8]| {
            l.starts_with(b"c=") || l.starts_with(b"m=") || l.starts_with(b"a=")
        };
        let kept_before: Vec<&Vec<u8>> = before.iter().filter(|l| !touched(l)).collect();
        let kept_after: Vec<Vec<u8>> = after.lines().map(|l| l.as_bytes().to_vec()).filter(|l| !touched(l)).collect();
        prop_assert_eq!(kept_before.len(), kept_after.len());
        for (x, y) in kept_before.iter().zip(kept_after.iter()) {
            prop_assert_eq!(*x, y);
        }
        for (i, m) in after.media().iter().enumerate() {
            prop_assert_eq!(after.effective_connection(i).and_then(|c| c.ip()), Some(addr));
            prop_assert_eq!(m.crypto().count(), 0);
            prop_assert_eq!(m.candidates().count(), 0);
            if m.media_line().is_some() {
                prop_assert_eq!(m.port(), Some(port));
            }
        }
    }
}
