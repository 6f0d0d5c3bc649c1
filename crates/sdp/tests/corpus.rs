//! The SDP layer against descriptions nobody here wrote: the Teams Direct
//! Routing samples from Microsoft's documentation and a Microsoft UC client
//! offer, and pjsip's OSS-Fuzz SDP seeds. Corpora are read from
//! `../shared/corpora` or `$SBC_CORPORA`.

use std::path::{Path, PathBuf};

use sdp::{CandidateTransport, Direction, SessionDescription};

fn corpora() -> PathBuf {
    if let Some(p) = std::env::var_os("SBC_CORPORA") {
        return PathBuf::from(p);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpora")
}

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e} (corpora missing?)", p.display()))
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e} (corpora missing?)", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    v
}

fn teams(name: &str) -> SessionDescription {
    let raw = read(&corpora().join("teams-sdp").join(name));
    SessionDescription::parse(&raw).unwrap()
}

#[test]
fn every_teams_sample_parses_and_round_trips_byte_exact() {
    let dir = corpora().join("teams-sdp");
    let all = files(&dir);
    assert_eq!(all.len(), 6, "teams-sdp corpus changed: {all:?}");
    for p in all {
        let raw = read(&p);
        let sdp =
            SessionDescription::parse(&raw).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert_eq!(sdp.to_bytes(), raw, "{}", p.display());
        assert_eq!(sdp.printed_len(), raw.len(), "{}", p.display());
    }
}

#[test]
fn every_pjsip_seed_parses_and_round_trips_byte_exact() {
    let dir = corpora().join("fuzz/pjsip-ossfuzz-seeds/fuzz-sdp/fuzz-sdp_seed_corpus");
    let all = files(&dir);
    assert!(all.len() >= 6, "{all:?}");
    for p in all {
        let raw = read(&p);
        let sdp =
            SessionDescription::parse(&raw).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert_eq!(sdp.to_bytes(), raw, "{}", p.display());
        assert!(sdp.version().is_some(), "{}", p.display());
    }
}

#[test]
fn pjsip_seeds_have_the_expected_typed_views() {
    let dir = corpora().join("fuzz/pjsip-ossfuzz-seeds/fuzz-sdp/fuzz-sdp_seed_corpus");
    let one = SessionDescription::parse(&read(&dir.join("input.1.sdp"))).unwrap();
    let o = one.origin().unwrap();
    assert_eq!(
        (o.username, o.session_id, o.address),
        ("alice", "2890844526", "host.anywhere.com")
    );
    assert_eq!(o.version(), Some(2_890_844_526));
    assert_eq!(one.connection().unwrap().address, "host.anywhere.com");
    assert_eq!(one.connection().unwrap().ip(), None);
    let kinds: Vec<_> = one
        .media()
        .iter()
        .map(|m| (m.media_type().unwrap(), m.port().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        [("audio", 49170), ("video", 51372), ("video", 53000)]
    );
    assert_eq!(one.timing(), Some((0, 0)));

    let two = SessionDescription::parse(&read(&dir.join("input.2.sdp"))).unwrap();
    let formats: Vec<_> = two.media()[0].formats().collect();
    assert_eq!(formats, ["0", "4", "18"]);
    assert_eq!(two.media()[0].rtpmap(18).unwrap().encoding, "G729");
    assert_eq!(two.effective_direction(0), Some(Direction::Inactive));

    // A mutated seed: the m= line is garbage, `s=` swallowed the `c=` line.
    // Kept verbatim; the section has no typed m-line and cannot be edited.
    let mut six = SessionDescription::parse(&read(&dir.join("input.6.sdp"))).unwrap();
    assert_eq!(six.media().len(), 1);
    assert!(six.media()[0].media_line().is_none());
    assert_eq!(
        six.media()[0].rtpmap(101).unwrap().encoding,
        "telephone-event"
    );
    assert_eq!(six.media()[0].fmtp("101").unwrap().params, "0-15");
    assert_eq!(six.media()[0].ptime(), Some(20));
    assert!(six.connection().is_none());
    assert_eq!(
        six.media_mut()[0].set_port(1),
        Err(sdp::EditError::Malformed { kind: 'm' })
    );
}

#[test]
fn teams_client_offer_typed_views() {
    let sdp = teams("kodoma7-ms-uc-client-offer.joined.sdp");
    assert_eq!(
        sdp.bandwidths().next().map(|b| (b.bw_type, b.bandwidth)),
        Some(("CT", 99_980))
    );
    let audio = &sdp.media()[0];
    let m = audio.media_line().unwrap();
    assert_eq!((m.media, m.port, m.proto), ("audio", 10406, "RTP/AVP"));
    assert_eq!(m.formats().count(), 15);
    assert!(!m.is_secure());
    assert_eq!(audio.ice_ufrag(), Some("/4N5"));
    assert_eq!(audio.ice_pwd(), Some("+3l2Yir4ryApcueo0Fqq4gex"));
    let cands: Vec<_> = audio.candidates().collect();
    assert_eq!(cands.len(), 4);
    assert_eq!(cands[0].transport_kind(), CandidateTransport::Udp);
    assert_eq!(
        (cands[0].component, cands[0].priority, cands[0].port),
        (1, 2_130_706_431, 10406)
    );
    assert_eq!(cands[2].transport, "TCP-ACT");
    assert_eq!(cands[2].transport_kind(), CandidateTransport::TcpActive);
    assert_eq!(cands[2].candidate_type, "srflx");
    assert_eq!(cands[2].related_address, Some("192.168.106.63"));
    assert_eq!(cands[2].related_port, Some(10406));
    let rtcp = audio.rtcp().unwrap();
    assert_eq!((rtcp.port, rtcp.connection), (10407, None));
    assert!(audio.rtcp_mux());
    assert_eq!(audio.ptime(), Some(20));
    assert_eq!(audio.maxptime(), Some(200));
    let silk = audio.rtpmap(104).unwrap();
    assert_eq!(
        (silk.encoding, silk.clock_rate, silk.parameters),
        ("SILK", 16000, None)
    );
    assert_eq!(
        audio.fmtp("104").unwrap().params,
        "useinbandfec=1; usedtx=0"
    );
    assert_eq!(audio.fmtp("104").unwrap().payload_type(), Some(104));
    assert_eq!(audio.attribute("label"), Some(Some("main-audio")));
    assert_eq!(audio.attribute("x-source"), Some(Some("main-audio")));
    assert_eq!(audio.attribute("rtcp-rsize"), Some(None));
    assert_eq!(
        sdp.attribute("x-devicecaps"),
        Some(Some("audio:send,recv;video:send,recv"))
    );
    assert_eq!(sdp.effective_direction(0), Some(Direction::SendRecv));
    assert_eq!(
        sdp.effective_connection(0).unwrap().ip(),
        Some("192.168.106.63".parse().unwrap())
    );
}

#[test]
fn teams_offer_with_a_folded_line_is_kept_verbatim() {
    // The original capture has `a=rtcp-fb:*` folded onto a continuation line.
    // SDP has no folding: the continuation is kept as its own untyped line.
    let sdp = teams("kodoma7-ms-uc-client-offer.sdp");
    let odd: Vec<_> = sdp.lines().filter(|l| l.kind().is_none()).collect();
    assert_eq!(odd.len(), 1);
    assert_eq!(odd[0].as_bytes(), b" x-message app send:dsh recv:dsh");
    assert_eq!(sdp.media()[0].attribute("rtcp-fb"), Some(Some("*")));
}

#[test]
fn teams_crypto_lines_keep_tag_suite_and_mki() {
    let answer = teams("msdocs-answer-sdes-to-sbc.sdp-fragment");
    assert!(answer.version().is_none(), "a fragment: no v= line");
    let audio = &answer.media()[0];
    assert_eq!(
        audio.formats().nth(6),
        Some("description"),
        "the doc's m= line has a stray word"
    );
    let c: Vec<_> = audio.crypto().collect();
    assert_eq!(c.len(), 2);
    assert_eq!((c[0].tag, c[0].suite), (2, "AES_CM_128_HMAC_SHA1_80"));
    assert_eq!(
        c[0].params,
        "inline:fBc61ikv1kMy0sF85DblNqTzVAbFa7hJQ9GKb6Yj|2^31|1:1"
    );
    assert_eq!(c[1].tag, 3);
    assert!(audio.media_line().unwrap().is_secure());

    let offer = teams("msdocs-teams-offer-sdes-only.sdp-fragment");
    let suites: Vec<_> = offer.media()[0]
        .crypto()
        .map(|c| (c.tag, c.suite))
        .collect();
    assert_eq!(
        suites,
        [
            (0, "AES_CM_128_HMAC_SHA1_32"),
            (1, "AES_CM_128_HMAC_SHA1_80")
        ]
    );

    let bypass = teams("msdocs-sbc-offer-bypass.sdp-fragment");
    assert_eq!(bypass.media()[0].proto(), Some("UDP/TLS/RTP/SAVP"));
    assert!(bypass.media()[0].media_line().unwrap().is_secure());
    assert_eq!(bypass.media()[0].attribute("setup"), Some(Some("actpass")));

    let only = teams("msdocs-crypto-attribute-example.sdp-fragment");
    assert!(only.media().is_empty());
    assert_eq!(
        only.attribute("crypto")
            .flatten()
            .map(|v| v.starts_with("1 AES_CM_128_HMAC_SHA1_80")),
        Some(true)
    );
}
