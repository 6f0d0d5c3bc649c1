//! The relay's edits, named after what they achieve on real offers.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use sdp::{Direction, EditError, ParseError, ParseLimits, SessionDescription};

const RELAY: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 10));
const KEY80: &str = "AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^31";

/// A carrier's plain RTP offer, as SIPp and most trunks send it.
const CARRIER_OFFER: &str = "v=0\r\n\
o=carrier 53655765 2353687637 IN IP4 198.51.100.20\r\n\
s=-\r\n\
c=IN IP4 198.51.100.20\r\n\
t=0 0\r\n\
m=audio 17000 RTP/AVP 0 8 18 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:18 G729/8000\r\n\
a=fmtp:18 annexb=no\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n";

/// A Teams-style SRTP offer with ICE (the shape of Microsoft's documented
/// offers plus the UC client's ICE lines).
const TEAMS_OFFER: &str = "v=0\r\n\
o=- 0 0 IN IP4 52.114.1.1\r\n\
s=session\r\n\
c=IN IP4 52.114.1.1\r\n\
b=CT:10000000\r\n\
t=0 0\r\n\
a=ice-lite\r\n\
m=audio 52884 RTP/SAVP 111 103 104 9 0 8 106 13 110 112 113 126\r\n\
a=x-ssrc-range:362803970-362803970\r\n\
a=ice-ufrag:/4N5\r\n\
a=ice-pwd:+3l2Yir4ryApcueo0Fqq4gex\r\n\
a=candidate:1 1 UDP 2130706431 52.114.1.1 52884 typ host\r\n\
a=candidate:1 2 UDP 2130705918 52.114.1.1 52885 typ host\r\n\
a=x-candidate-ipv6:2 1 UDP 2130705919 2001:db8::1 26920 typ host\r\n\
a=candidate:3 1 TCP-ACT 1684798463 52.114.1.1 52884 typ srflx raddr 10.0.0.1 rport 52884\r\n\
a=candidate:4 1 tcp-pass 1684797950 52.114.1.1 52886 typ host\r\n\
a=end-of-candidates\r\n\
a=crypto:0 AES_CM_128_HMAC_SHA1_32 inline:Hr4D2cgUu9+Uza5Igz/JkVx59DAxDbaxJg862ibQ|2^31\r\n\
a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:JPEaIxHegfuv53ykBPZk8hV0GO8kTiiqRMfHimEE|2^31|1:1\r\n\
a=rtcp:52885\r\n\
a=rtcp-mux\r\n\
a=label:main-audio\r\n\
a=rtpmap:111 SILK/16000\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=ptime:20\r\n\
m=video 0 RTP/SAVP 122\r\n\
a=x-unknown-video-line\r\n";

fn parse(s: &str) -> SessionDescription {
    let sdp = SessionDescription::parse(s.as_bytes()).unwrap();
    assert_eq!(sdp.to_bytes(), s.as_bytes(), "round trip before editing");
    sdp
}

fn text(sdp: &SessionDescription) -> String {
    String::from_utf8(sdp.to_bytes()).unwrap()
}

#[test]
fn rtp_avp_offer_becomes_savp_with_crypto() {
    let mut sdp = parse(CARRIER_OFFER);
    sdp.set_connection_everywhere(RELAY);
    sdp.set_origin_address(RELAY).unwrap();
    assert_eq!(sdp.bump_session_version().unwrap(), 2_353_687_638);
    let audio = &mut sdp.media_mut()[0];
    audio.set_port(40000).unwrap();
    audio.set_proto("RTP/SAVP").unwrap();
    audio.add_crypto(1, KEY80).unwrap();
    audio.set_rtcp_mux(true);
    let expected = CARRIER_OFFER
        .replace(
            "o=carrier 53655765 2353687637 IN IP4 198.51.100.20",
            "o=carrier 53655765 2353687638 IN IP4 203.0.113.10",
        )
        .replace("c=IN IP4 198.51.100.20", "c=IN IP4 203.0.113.10")
        .replace("m=audio 17000 RTP/AVP", "m=audio 40000 RTP/SAVP")
        + &format!("a=crypto:1 {KEY80}\r\na=rtcp-mux\r\n");
    assert_eq!(text(&sdp), expected);
    let back = SessionDescription::parse(&sdp.to_bytes()).unwrap();
    assert!(back.media()[0].media_line().unwrap().is_secure());
    assert_eq!(back.media()[0].crypto().next().unwrap().tag, 1);
}

#[test]
fn srtp_offer_from_teams_becomes_plain_rtp_for_the_carrier() {
    let mut sdp = parse(TEAMS_OFFER);
    let removed = sdp.remove_ice_everywhere();
    assert_eq!(
        removed, 9,
        "ice-lite, ufrag, pwd, 4 candidates, x-candidate-ipv6, end-of-candidates"
    );
    for m in sdp.media_mut() {
        m.remove_crypto();
        m.set_proto("RTP/AVP").unwrap();
    }
    sdp.set_connection_everywhere(RELAY);
    let out = text(&sdp);
    assert!(!out.contains("crypto") && !out.contains("candidate") && !out.contains("ice-"));
    assert!(out.contains("m=audio 52884 RTP/AVP 111 103 104"));
    assert!(out.contains("m=video 0 RTP/AVP 122\r\na=x-unknown-video-line\r\n"));
    assert!(out.contains("a=x-ssrc-range:362803970-362803970\r\na=rtcp:52885\r\n"));
}

#[test]
fn ice_attributes_are_removed() {
    let mut sdp = parse(TEAMS_OFFER);
    assert!(sdp.ice_lite());
    assert_eq!(sdp.media()[0].candidates().count(), 4);
    assert!(sdp.media()[0].end_of_candidates());
    assert_eq!(sdp.media_mut()[0].remove_ice(), 8);
    assert!(
        sdp.ice_lite(),
        "media-level removal leaves the session level alone"
    );
    assert_eq!(sdp.remove_ice(), 1);
    let audio = &sdp.media()[0];
    assert_eq!(audio.candidates().count(), 0);
    assert!(audio.ice_ufrag().is_none() && audio.ice_pwd().is_none() && !audio.end_of_candidates());
    assert!(!audio.has_attribute("x-candidate-ipv6"));
    // Everything else stays, in order.
    let names: Vec<_> = audio.attributes().map(|a| a.name).collect();
    assert_eq!(
        names,
        [
            "x-ssrc-range",
            "crypto",
            "crypto",
            "rtcp",
            "rtcp-mux",
            "label",
            "rtpmap",
            "rtpmap",
            "ptime"
        ]
    );
}

#[test]
fn unknown_lines_and_mline_order_are_kept() {
    let input = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\ni=info\r\nu=http://example.com\r\n\
e=a@example.com\r\nt=0 0\r\ny=strange line type\r\nnot an sdp line\r\n\r\n\
a=x-session:1\r\nm=video 5002 RTP/AVP 96\r\na=x-first\r\nm=audio 5000 RTP/AVP 0\r\n\
k=prompt\r\na=X-Mixed-Case:v\r\nm=application 5004 UDP/BFCP *\r\na=floorctrl:c-s\r\n\
m=image 5006 udptl t38\r\na=T38FaxVersion:0\r\n";
    let mut sdp = parse(input);
    let order: Vec<_> = sdp
        .media()
        .iter()
        .map(|m| m.media_type().unwrap())
        .collect();
    assert_eq!(order, ["video", "audio", "application", "image"]);
    sdp.set_connection_everywhere(RELAY);
    for (i, m) in sdp.media_mut().iter_mut().enumerate() {
        m.set_port(30000 + 2 * i as u16).unwrap();
    }
    let out = text(&sdp);
    let expected = input
        .replace(
            "i=info\r\nu=http://example.com\r\ne=a@example.com\r\n",
            "i=info\r\nu=http://example.com\r\ne=a@example.com\r\nc=IN IP4 203.0.113.10\r\n",
        )
        .replace("5002", "30000")
        .replace("5000", "30002")
        .replace("5004", "30004")
        .replace("5006", "30006");
    assert_eq!(out, expected);
    assert_eq!(sdp.media()[1].attribute("x-mixed-case"), Some(Some("v")));
}

#[test]
fn lf_only_input_prints_with_crlf() {
    let lf = CARRIER_OFFER.replace("\r\n", "\n");
    let sdp = SessionDescription::parse(lf.as_bytes()).unwrap();
    assert_eq!(text(&sdp), CARRIER_OFFER);
    // A last line without terminator is a line too.
    let cut = CARRIER_OFFER.trim_end_matches("\r\n");
    assert_eq!(
        text(&SessionDescription::parse(cut.as_bytes()).unwrap()),
        CARRIER_OFFER
    );
}

#[test]
fn connection_address_is_replaced_in_session_and_media() {
    let input = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nt=0 0\r\n\
m=audio 5000 RTP/AVP 0\r\ni=media title\r\nc=IN IP4 10.0.0.2\r\na=sendrecv\r\n\
m=audio 5002 RTP/AVP 0\r\nc=IN IP4 10.0.0.3/127\r\n";
    let mut sdp = parse(input);
    assert!(sdp.connection().is_none());
    assert_eq!(
        sdp.media()[1].connection().unwrap().ip(),
        Some("10.0.0.3".parse().unwrap())
    );
    let v6 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10));
    sdp.set_connection_everywhere(v6);
    assert!(
        sdp.connection().is_none(),
        "every section has its own c=: no session-level one added"
    );
    assert_eq!(
        text(&sdp),
        input
            .replace("c=IN IP4 10.0.0.2", "c=IN IP6 2001:db8::10")
            .replace("c=IN IP4 10.0.0.3/127", "c=IN IP6 2001:db8::10")
    );
    // Per media: insert after m= and i=, then replace in place.
    let mut sdp =
        parse("v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 1 RTP/AVP 0\r\ni=t\r\na=rtpmap:0 PCMU/8000\r\n");
    sdp.media_mut()[0].set_connection(RELAY);
    assert_eq!(text(&sdp), "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 1 RTP/AVP 0\r\ni=t\r\nc=IN IP4 203.0.113.10\r\na=rtpmap:0 PCMU/8000\r\n");
    assert_eq!(sdp.effective_connection(0).unwrap().address, "203.0.113.10");
    assert_eq!(sdp.media_mut()[0].remove_connection(), 1);
    assert_eq!(sdp.effective_connection(0).unwrap().address, "10.0.0.1");
    sdp.set_connection(v6);
    assert_eq!(sdp.connection().unwrap().addr_type, "IP6");
    assert_eq!(sdp.remove_connection(), 1);
    assert!(sdp.effective_connection(0).is_none());
    assert!(sdp.effective_connection(1).is_none());
}

#[test]
fn origin_address_is_replaced_and_version_bumped() {
    let mut sdp = parse(TEAMS_OFFER);
    sdp.set_origin_address(IpAddr::V6(Ipv6Addr::LOCALHOST))
        .unwrap();
    let o = sdp.origin().unwrap();
    assert_eq!(
        (
            o.username,
            o.session_id,
            o.session_version,
            o.net_type,
            o.addr_type,
            o.address
        ),
        ("-", "0", "0", "IN", "IP6", "::1")
    );
    assert_eq!(sdp.bump_session_version(), Ok(1));
    assert_eq!(sdp.bump_session_version(), Ok(2));
    sdp.set_session_version(u64::MAX).unwrap();
    assert_eq!(sdp.bump_session_version(), Err(EditError::VersionOverflow));
    assert_eq!(sdp.origin().unwrap().version(), Some(u64::MAX));

    let mut fragment = SessionDescription::parse(b"m=audio 1 RTP/AVP 0\r\n").unwrap();
    assert_eq!(
        fragment.set_origin_address(RELAY),
        Err(EditError::Missing { kind: 'o' })
    );
    let mut bad = SessionDescription::parse(b"v=0\r\no=- 1 IN IP4\r\n").unwrap();
    assert_eq!(
        bad.bump_session_version(),
        Err(EditError::Malformed { kind: 'o' })
    );
    assert_eq!(
        bad.to_bytes(),
        b"v=0\r\no=- 1 IN IP4\r\n",
        "a failed edit changes nothing"
    );
}

#[test]
fn crypto_lines_are_replaced_in_place() {
    let mut sdp = parse(TEAMS_OFFER);
    let audio = &mut sdp.media_mut()[0];
    audio.replace_crypto([(1, KEY80)]).unwrap();
    let names: Vec<_> = audio.attributes().map(|a| a.name).collect();
    let at = names.iter().position(|n| *n == "crypto").unwrap();
    assert_eq!(names[at - 1], "end-of-candidates");
    assert_eq!(names[at + 1], "rtcp");
    let c: Vec<_> = audio.crypto().collect();
    assert_eq!(c.len(), 1);
    assert_eq!((c[0].tag, c[0].suite), (1, "AES_CM_128_HMAC_SHA1_80"));
    assert_eq!(
        audio.replace_crypto([(2, "BAD\r\nm=audio 1 RTP/AVP 0")]),
        Err(EditError::InvalidValue { what: "crypto" })
    );
    assert_eq!(audio.crypto().count(), 1, "a failed edit changes nothing");
    assert_eq!(audio.remove_crypto(), 1);
    audio
        .replace_crypto([
            (1, KEY80),
            (
                2,
                "AES_CM_128_HMAC_SHA1_32 inline:Hr4D2cgUu9+Uza5Igz/JkVx59DAxDbaxJg862ibQ",
            ),
        ])
        .unwrap();
    let tags: Vec<_> = audio.crypto().map(|c| c.tag).collect();
    assert_eq!(tags, [1, 2]);
    assert!(audio
        .lines()
        .last()
        .unwrap()
        .as_bytes()
        .starts_with(b"a=crypto:2 "));
}

#[test]
fn rtcp_mux_is_added_and_removed() {
    let mut sdp = parse(CARRIER_OFFER);
    let audio = &mut sdp.media_mut()[0];
    assert!(!audio.rtcp_mux());
    audio.set_rtcp_mux(true);
    audio.set_rtcp_mux(true);
    assert_eq!(audio.attribute_values("rtcp-mux").count(), 1);
    audio.set_rtcp_mux(false);
    assert!(!audio.rtcp_mux());
    assert_eq!(text(&sdp), CARRIER_OFFER);
}

#[test]
fn rtcp_attribute_is_set_and_removed() {
    let mut sdp = parse(TEAMS_OFFER);
    let audio = &mut sdp.media_mut()[0];
    audio.set_rtcp(40001, Some(RELAY));
    let r = audio.rtcp().unwrap();
    assert_eq!(r.port, 40001);
    assert_eq!(r.connection.unwrap().ip(), Some(RELAY));
    assert!(text(&sdp).contains("a=end-of-candidates\r\na=crypto:0"));
    assert!(text(&sdp).contains("|2^31|1:1\r\na=rtcp:40001 IN IP4 203.0.113.10\r\na=rtcp-mux\r\n"));
    let audio = &mut sdp.media_mut()[0];
    audio.set_rtcp(40003, None);
    assert_eq!(audio.rtcp().unwrap().connection, None);
    assert_eq!(audio.remove_rtcp(), 1);
    assert!(audio.rtcp().is_none());
    audio.set_rtcp(40005, None);
    assert_eq!(audio.lines().last().unwrap().as_bytes(), b"a=rtcp:40005");
}

#[test]
fn direction_is_set_and_the_session_default_applies() {
    let mut sdp = parse(CARRIER_OFFER);
    assert_eq!(sdp.effective_direction(0), Some(Direction::SendRecv));
    sdp.media_mut()[0].set_direction(Direction::SendOnly);
    assert!(
        text(&sdp).ends_with("a=ptime:20\r\na=sendonly\r\n"),
        "replaced in place"
    );
    assert_eq!(sdp.media_mut()[0].remove_direction(), 1);
    sdp.set_direction(Direction::Inactive);
    assert_eq!(sdp.direction(), Some(Direction::Inactive));
    assert_eq!(sdp.effective_direction(0), Some(Direction::Inactive));
    sdp.media_mut()[0].set_direction(Direction::RecvOnly);
    assert_eq!(sdp.effective_direction(0), Some(Direction::RecvOnly));
    assert_eq!(sdp.effective_direction(1), None);
    assert_eq!(Direction::RecvOnly.reversed(), Direction::SendOnly);
    assert_eq!(sdp.remove_direction(), 1);
    assert_eq!(Direction::from_name("SENDRECV"), Some(Direction::SendRecv));
}

#[test]
fn attributes_are_removed_added_and_set_by_name() {
    let mut sdp = parse(TEAMS_OFFER);
    assert_eq!(sdp.remove_attribute_everywhere("x-ssrc-range"), 1);
    assert_eq!(sdp.remove_attribute("label"), 0, "session level only");
    let audio = &mut sdp.media_mut()[0];
    assert_eq!(audio.remove_attribute("LABEL"), 1);
    audio.add_attribute("maxptime", Some("40")).unwrap();
    audio.set_attribute("ptime", Some("30")).unwrap();
    assert_eq!(audio.ptime(), Some(30));
    assert_eq!(audio.maxptime(), Some(40));
    assert_eq!(
        audio.add_attribute("bad name", None),
        Err(EditError::InvalidValue {
            what: "attribute name"
        })
    );
    assert_eq!(
        audio.add_attribute("a:b", None),
        Err(EditError::InvalidValue {
            what: "attribute name"
        })
    );
    assert_eq!(
        audio.set_attribute("x", Some("a\nb")),
        Err(EditError::InvalidValue {
            what: "attribute value"
        })
    );
    sdp.add_attribute("tool", Some("sbc")).unwrap();
    sdp.set_attribute("tool", Some("sbc 2")).unwrap();
    assert_eq!(
        sdp.attribute_values("tool").collect::<Vec<_>>(),
        [Some("sbc 2")]
    );
}

#[test]
fn proto_and_port_edits_validate_and_keep_port_count() {
    let mut sdp = parse("m=audio 5000/2 RTP/AVP 0 8\r\n");
    let m = &mut sdp.media_mut()[0];
    m.set_port(6000).unwrap();
    m.set_proto("UDP/TLS/RTP/SAVP").unwrap();
    assert_eq!(
        m.lines()[0].as_bytes(),
        b"m=audio 6000/2 UDP/TLS/RTP/SAVP 0 8"
    );
    assert_eq!(
        m.set_proto("RTP/AVP 9"),
        Err(EditError::InvalidValue { what: "proto" })
    );
    assert_eq!(
        m.set_proto(""),
        Err(EditError::InvalidValue { what: "proto" })
    );
    assert_eq!(m.media_line().unwrap().port_count, Some(2));
}

#[test]
fn unused_codecs_are_stripped_with_their_attributes() {
    let mut sdp = parse(CARRIER_OFFER);
    let audio = &mut sdp.media_mut()[0];
    let dropped = audio.retain_formats(|f| f == "8" || f == "101").unwrap();
    assert_eq!(dropped, 2);
    assert_eq!(
        text(&sdp),
        "v=0\r\no=carrier 53655765 2353687637 IN IP4 198.51.100.20\r\ns=-\r\nc=IN IP4 198.51.100.20\r\nt=0 0\r\n\
m=audio 17000 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n"
    );
    assert_eq!(sdp.media_mut()[0].retain_formats(|_| true), Ok(0));
}

#[test]
fn limits_are_enforced() {
    let limits = ParseLimits {
        max_bytes: 64,
        max_lines: 4,
        max_media: 1,
    };
    assert_eq!(SessionDescription::parse(b""), Err(ParseError::Empty));
    assert_eq!(
        SessionDescription::parse_with(&[b'a'; 65], &limits),
        Err(ParseError::TooLarge { len: 65, max: 64 })
    );
    assert_eq!(
        SessionDescription::parse_with(b"v=0\na\nb\nc\nd\n", &limits),
        Err(ParseError::TooManyLines { max: 4 })
    );
    assert_eq!(
        SessionDescription::parse_with(b"m=a\nm=b\n", &limits),
        Err(ParseError::TooManyMedia { max: 1 })
    );
    assert!(SessionDescription::parse_with(b"v=0\na\nb\nc\n", &limits).is_ok());
    let big = "a=x\r\n".repeat(20_000);
    assert!(matches!(
        SessionDescription::parse(big.as_bytes()),
        Err(ParseError::TooLarge { .. })
    ));
}

#[test]
fn malformed_lines_have_no_typed_view_but_are_kept() {
    let input = "v=0\r\no=only three fields\r\nc=IN IP4\r\nb=AS:lots\r\nt=x y\r\n\
m=audio 70000 RTP/AVP 0\r\na=rtpmap:0\r\na=rtpmap:300 X/8000\r\na=rtcp:port\r\na=candidate:1 1 UDP 1 1.2.3.4 5 host\r\n\
a=crypto:1234567890 AES inline:x\r\na=ptime:-1\r\na=:novalue\r\n";
    let sdp = parse(input);
    assert!(sdp.origin().is_none());
    assert!(sdp.connection().is_none());
    assert_eq!(sdp.bandwidths().count(), 0);
    assert!(sdp.timing().is_none());
    let m = &sdp.media()[0];
    assert!(m.media_line().is_none(), "port out of range");
    assert_eq!(m.formats().count(), 0);
    assert_eq!(m.rtpmaps().count(), 0);
    assert!(m.rtcp().is_none());
    assert_eq!(m.candidates().count(), 0);
    assert_eq!(m.crypto().count(), 0);
    assert!(m.ptime().is_none());
    assert_eq!(m.attributes().count(), 6, "`a=:novalue` has no name");
}

#[test]
fn a_second_c_line_is_not_passed_on_with_the_partys_address() {
    // At most one c= per level (RFC 8866 §5.7); a relay rewriting the first
    // must not leave a later one naming the party (found by fuzz/sdp, S3).
    let mut sdp = parse(
        "v=0\r\nc=IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.2 junk\r\nt=0 0\r\n\
         m=audio 1 RTP/AVP 0\r\nc=IN IP4 10.0.0.3\r\na=x\r\nc=IN IP4 10.0.0.4\r\n",
    );
    sdp.set_connection_everywhere(RELAY);
    assert_eq!(
        text(&sdp),
        "v=0\r\nc=IN IP4 203.0.113.10\r\ns=-\r\nt=0 0\r\n\
         m=audio 1 RTP/AVP 0\r\nc=IN IP4 203.0.113.10\r\na=x\r\n"
    );
}
