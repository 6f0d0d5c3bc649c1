//! Fuzz target: the `sdp` crate's parser, typed views and editing API, and
//! the B2BUA's SDP handling on top of it (`b2bua::fuzzing::check_media`).
//!
//! Input: 5 control bytes, then the SDP (the control bytes are described at
//! `check_media`; here byte 0 bits 0–2 also pick the edit address family and
//! direction, bytes 1–2 the port, byte 3 the crypto tag and the formats
//! kept). Byte 4 splits the work so that one execution stays short: `& 3`
//! = 0 runs the edits below, 1–3 the B2BUA's checks (`check_media`); the
//! parse, round trip and views run always.
//!
//! Invariants of the `sdp` crate, for what parses:
//! * **Round trip.** The printed description re-parses to an equal one and
//!   prints the same bytes; it is byte-exact with the input when every LF
//!   of the input follows a CR and the input ends in LF; `printed_len` is
//!   the printed length; every typed view and `Display` runs.
//! * **Each edit does what it says**, on a copy, checked through the typed
//!   views: `set_connection_everywhere` puts the address in force for every
//!   section and leaves no `c=` line naming another; `set_origin_address`/`set_session_version`/
//!   `bump_session_version` (when Ok) show in `origin()`; per section
//!   `set_port` (port changed, media, proto, port count and formats kept),
//!   `set_proto`, `retain_formats` (exactly the kept formats, in order, and
//!   no `rtpmap`/`fmtp` of a dropped one), `set_direction`/`remove_direction`
//!   at both levels (`effective_direction`), `remove_crypto`/`add_crypto`/
//!   `replace_crypto`, `set_rtcp_mux`, `set_rtcp` with and without an
//!   address, `remove_ice`; invalid values are refused and change nothing.
//! * After all the edits the description still round-trips.
//!
//! The B2BUA's properties are listed at `b2bua::fuzzing`.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use libfuzzer_sys::fuzz_target;
use sdp::{Direction, EditError, ParseLimits, SessionDescription};

const KEY: &str = "AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^31";
const DIRS: [Direction; 4] = [
    Direction::SendRecv,
    Direction::SendOnly,
    Direction::RecvOnly,
    Direction::Inactive,
];

/// Re-parses without the default bounds: printing turns LF into CRLF and
/// edits add lines, so a description at the bounds may print past them.
fn reparse(b: &[u8]) -> SessionDescription {
    let limits = ParseLimits {
        max_bytes: usize::MAX,
        max_lines: usize::MAX,
        max_media: usize::MAX,
    };
    SessionDescription::parse_with(b, &limits)
        .unwrap_or_else(|e| panic!("printed description does not parse: {e}"))
}

fn round_trip(sd: &SessionDescription, what: &str) {
    let out = sd.to_bytes();
    assert_eq!(out.len(), sd.printed_len(), "{what}: printed_len");
    let again = reparse(&out);
    assert_eq!(&again, sd, "{what}: re-parsed description differs");
    assert_eq!(
        again.to_bytes(),
        out,
        "{what}: printing is not a fixed point"
    );
    let _ = sd.to_string();
}

/// Runs every typed view (they must not panic).
fn views(sd: &SessionDescription) {
    let _ = (
        sd.version(),
        sd.origin().map(|o| o.version()),
        sd.session_name(),
        sd.timing(),
    );
    let _ = (
        sd.connection().map(|c| c.ip()),
        sd.direction(),
        sd.ice_lite(),
    );
    let _ = (
        sd.ice_ufrag(),
        sd.ice_pwd(),
        sd.ice_options().count(),
        sd.bandwidths().count(),
    );
    let _ = sd.attributes().count();
    for (i, m) in sd.media().iter().enumerate() {
        assert!(!m.lines().is_empty() && m.lines()[0].as_bytes().starts_with(b"m="));
        let _ = (
            m.media_line(),
            m.media_type(),
            m.port(),
            m.proto(),
            m.formats().count(),
        );
        let _ = m.media_line().map(|l| l.is_secure());
        let _ = (
            m.connection().map(|c| c.ip()),
            m.bandwidths().count(),
            m.attributes().count(),
        );
        let _ = (
            m.rtpmaps().count(),
            m.fmtps().map(|f| f.payload_type()).count(),
        );
        let _ = (
            m.direction(),
            m.rtcp(),
            m.rtcp_mux(),
            m.ptime(),
            m.maxptime(),
        );
        let _ = (
            m.ice_ufrag(),
            m.ice_pwd(),
            m.ice_options().count(),
            m.end_of_candidates(),
        );
        let _ = (m.remote_candidates(), m.crypto().count());
        for c in m.candidates() {
            let _ = (c.transport_kind(), c.extensions());
        }
        assert!(sd.effective_direction(i).is_some());
        let _ = sd.effective_connection(i);
    }
    assert!(sd.effective_direction(sd.media().len()).is_none());
}

fn formats(m: &sdp::MediaDescription) -> Vec<String> {
    m.formats().map(str::to_owned).collect()
}

fn edits(sd: &SessionDescription, ctl: [u8; 4]) -> SessionDescription {
    let mut e = sd.clone();
    let addr = if ctl[0] & 1 == 0 {
        IpAddr::V4(Ipv4Addr::new(203, 0, 113, 5))
    } else {
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 5))
    };
    let port = u16::from_be_bytes([ctl[1], ctl[2]]);
    let dir = DIRS[usize::from(ctl[0] >> 1) & 3];
    let tag = u32::from(ctl[3]);

    // Session level.
    e.set_connection_everywhere(addr);
    let text = match addr {
        IpAddr::V4(a) => format!("IN IP4 {a}"),
        IpAddr::V6(a) => format!("IN IP6 {a}"),
    };
    for l in e.lines().filter(|l| l.kind() == Some('c')) {
        assert_eq!(
            l.value(),
            Some(text.as_str()),
            "set_connection_everywhere left a c= line"
        );
    }
    for i in 0..e.media().len() {
        let c = e.effective_connection(i).and_then(|c| c.ip());
        assert_eq!(
            c,
            Some(addr),
            "set_connection_everywhere: section {i} not at {addr}"
        );
    }
    let had_origin = e.origin().is_some();
    match e.set_origin_address(addr) {
        Ok(()) => {
            let o = e.origin().expect("origin after set_origin_address");
            assert_eq!(o.address, addr.to_string());
            assert_eq!(o.addr_type, if addr.is_ipv4() { "IP4" } else { "IP6" });
        }
        Err(EditError::Missing { .. } | EditError::Malformed { .. }) => assert!(!had_origin),
        Err(err) => panic!("set_origin_address: {err}"),
    }
    if let Ok(()) = e.set_session_version(u64::from(port)) {
        assert_eq!(e.origin().and_then(|o| o.version()), Some(u64::from(port)));
        let v = e.bump_session_version().expect("bump from a small version");
        assert_eq!(v, u64::from(port) + 1);
        assert_eq!(e.origin().and_then(|o| o.version()), Some(v));
    } else {
        assert!(
            e.origin().is_none(),
            "set_session_version refused a good origin"
        );
    }
    e.set_direction(dir);
    assert_eq!(e.direction(), Some(dir));
    for i in 0..e.media().len() {
        let own = e.media()[i].direction();
        assert_eq!(e.effective_direction(i), Some(own.unwrap_or(dir)));
    }
    assert!(e.set_attribute("x-fuzz", Some("a\r\nb")).is_err());
    assert!(e.add_attribute("bad name", None).is_err());
    let before = e.clone();
    assert!(e
        .media_mut()
        .first_mut()
        .is_none_or(|m| m.set_proto("RTP AVP").is_err()));
    assert_eq!(e, before, "a refused edit changed the description");

    // Each media section.
    let n = e.media().len();
    for i in 0..n {
        let m = &mut e.media_mut()[i];
        let old = m
            .media_line()
            .map(|l| (l.media.to_owned(), l.proto.to_owned(), l.port_count));
        let fmts = formats(m);
        match (m.set_port(port), &old) {
            (Ok(()), Some((media, proto, count))) => {
                let l = m.media_line().expect("m-line after set_port");
                assert_eq!(
                    (l.port, l.media, l.proto, l.port_count),
                    (port, media.as_str(), proto.as_str(), *count)
                );
                assert_eq!(formats(m), fmts, "set_port changed the formats");
            }
            (Err(EditError::Malformed { kind: 'm' }), None) => continue,
            (r, o) => panic!("set_port: {r:?} with m-line {o:?}"),
        }
        m.set_proto("RTP/SAVP").expect("proto of a good m-line");
        assert_eq!(m.proto(), Some("RTP/SAVP"));
        assert_eq!(formats(m), fmts, "set_proto changed the formats");
        // Keep every format whose index bit is set in byte 3 (cycled).
        let keep: Vec<String> = fmts
            .iter()
            .enumerate()
            .filter(|(j, _)| ctl[3] & (1 << (j % 8)) != 0)
            .map(|(_, f)| f.clone())
            .collect();
        let dropped_n = m
            .retain_formats(|f| keep.iter().any(|k| k == f))
            .expect("good m-line");
        let now = formats(m);
        let expect: Vec<String> = fmts.iter().filter(|f| keep.contains(f)).cloned().collect();
        assert_eq!(now, expect, "retain_formats");
        assert_eq!(dropped_n, fmts.len() - expect.len());
        if dropped_n > 0 {
            for f in fmts.iter().filter(|f| !keep.contains(f)) {
                for a in m.attributes() {
                    let named = ["rtpmap", "fmtp"]
                        .iter()
                        .any(|n| a.name.eq_ignore_ascii_case(n));
                    let first = a
                        .value
                        .and_then(|v| v.split([' ', '\t']).find(|x| !x.is_empty()));
                    assert!(
                        !(named && first == Some(f.as_str())),
                        "a={}:{f} of a dropped format kept",
                        a.name
                    );
                }
            }
        }
        m.set_direction(dir.reversed());
        assert_eq!(m.direction(), Some(dir.reversed()));
        if ctl[3] & 1 != 0 {
            m.remove_direction();
            assert_eq!(m.direction(), None);
        }
        m.remove_crypto();
        assert_eq!(m.crypto().count(), 0);
        assert!(!m.has_attribute("crypto"));
        m.add_crypto(tag, KEY).expect("valid crypto");
        let c: Vec<_> = m.crypto().map(|c| (c.tag, c.suite.to_owned())).collect();
        assert_eq!(c, [(tag, "AES_CM_128_HMAC_SHA1_80".to_owned())]);
        m.replace_crypto([
            (tag + 1, KEY),
            (tag + 2, "AES_CM_128_HMAC_SHA1_32 inline:x"),
        ])
        .expect("valid crypto");
        let c: Vec<u32> = m.crypto().map(|c| c.tag).collect();
        assert_eq!(c, [tag + 1, tag + 2]);
        let before = m.clone();
        assert!(m.replace_crypto([(1, KEY), (2, "bad\r\nsuite")]).is_err());
        assert!(m.add_crypto(1_000_000_000, KEY).is_err());
        assert_eq!(*m, before, "a refused crypto edit changed the section");
        let mux = ctl[0] & 2 != 0;
        m.set_rtcp_mux(mux);
        assert_eq!(m.rtcp_mux(), mux);
        m.set_rtcp_mux(!mux);
        assert_eq!(m.rtcp_mux(), !mux);
        m.set_rtcp(port, Some(addr));
        let r = m.rtcp().expect("a=rtcp after set_rtcp");
        assert_eq!(
            (r.port, r.connection.and_then(|c| c.ip())),
            (port, Some(addr))
        );
        m.set_rtcp(port ^ 1, None);
        let r = m.rtcp().expect("a=rtcp after set_rtcp");
        assert_eq!((r.port, r.connection), (port ^ 1, None));
        assert_eq!(m.attribute_values("rtcp").count(), 1);
        m.remove_ice();
        assert_eq!(m.candidates().count(), 0);
        assert!(m.ice_ufrag().is_none() && m.ice_pwd().is_none());
        m.set_connection(addr);
        assert_eq!(m.connection().and_then(|c| c.ip()), Some(addr));
    }
    e.remove_ice_everywhere();
    assert!(e.ice_ufrag().is_none() && !e.ice_lite());
    for i in 0..n {
        assert_eq!(e.effective_connection(i).and_then(|c| c.ip()), Some(addr));
    }
    e
}

fuzz_target!(|data: &[u8]| {
    b2bua::fuzzing::check_media(data);
    let Some((ctl, body)) = data.split_first_chunk::<5>() else {
        return;
    };
    let mode = ctl[4];
    let ctl = [ctl[0], ctl[1], ctl[2], ctl[3]];
    let Ok(sd) = SessionDescription::parse(body) else {
        return;
    };
    views(&sd);
    round_trip(&sd, "unmodified");
    let out = sd.to_bytes();
    let crlf_only = body.ends_with(b"\n")
        && body
            .iter()
            .enumerate()
            .all(|(i, b)| *b != b'\n' || (i > 0 && body[i - 1] == b'\r'));
    if crlf_only {
        assert_eq!(out, body, "CRLF input is not printed byte for byte");
    }
    if mode & 3 == 0 {
        let e = edits(&sd, ctl);
        views(&e);
        round_trip(&e, "edited");
    }
});
