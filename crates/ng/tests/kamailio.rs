//! Requests as Kamailio 5.6's `rtpengine` module (and OpenSIPS's) put them
//! on the wire, written from their documented format: the cookie
//! `<server id>_<random>_<seq>`, one space, and a bencoded dictionary whose
//! keys come in the order the module adds them (not sorted): `supports`,
//! `sdp`, `key=value` flags (`ICE`, `label`…), `direction`, `flags`,
//! `replace`, `transport-protocol`, `rtcp-mux`, `SDES`, `received-from`,
//! `call-id`, `via-branch`, `from-tag`, `to-tag`, `command`.

use ng::bencode::{self, Value};
use ng::{
    encode_reply, parse_request, AddressFamily, Command, Flag, Ice, Replace, Reply, RequestError,
    RtcpMux, Sdes, TransportProtocol,
};

/// A value in Kamailio's insertion order (the test's own tiny encoder, so the
/// datagrams are not produced by the code under test).
enum B<'a> {
    S(&'a str),
    I(i64),
    L(Vec<B<'a>>),
    D(Vec<(&'a str, B<'a>)>),
}

fn enc(b: &B<'_>, out: &mut Vec<u8>) {
    match b {
        B::S(s) => out.extend_from_slice(format!("{}:{s}", s.len()).as_bytes()),
        B::I(i) => out.extend_from_slice(format!("i{i}e").as_bytes()),
        B::L(l) => {
            out.push(b'l');
            l.iter().for_each(|x| enc(x, out));
            out.push(b'e');
        }
        B::D(d) => {
            out.push(b'd');
            for (k, v) in d {
                enc(&B::S(k), out);
                enc(v, out);
            }
            out.push(b'e');
        }
    }
}

fn datagram(cookie: &str, dict: Vec<(&str, B<'_>)>) -> Vec<u8> {
    let mut out = format!("{cookie} ").into_bytes();
    enc(&B::D(dict), &mut out);
    out
}

fn strs<'a>(items: &[&'a str]) -> B<'a> {
    B::L(items.iter().map(|s| B::S(s)).collect())
}

const CARRIER_SDP: &str = "v=0\r\no=- 3911234567 3911234567 IN IP4 198.51.100.20\r\ns=-\r\n\
c=IN IP4 198.51.100.20\r\nt=0 0\r\nm=audio 17000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\na=sendrecv\r\n";

#[test]
fn ping_gets_pong_with_the_same_cookie() {
    let req = parse_request(b"5323_1 d7:command4:pinge").unwrap();
    assert_eq!(req.command, Command::Ping);
    assert_eq!(req.cookie.as_bytes(), b"5323_1");
    assert_eq!(
        encode_reply(req.cookie, &Reply::Pong),
        b"5323_1 d6:result4:ponge"
    );
    // The test encoder agrees with the documented bytes.
    assert_eq!(
        datagram("5323_1", vec![("command", B::S("ping"))]),
        b"5323_1 d7:command4:pinge"
    );
}

#[test]
fn kamailio_offer_for_a_plain_call() {
    // rtpengine_offer("trust-address replace-origin replace-session-connection ICE=remove RTP/AVP")
    let d = datagram(
        "1_2847561_17",
        vec![
            ("supports", strs(&["load limit"])),
            ("sdp", B::S(CARRIER_SDP)),
            ("ICE", B::S("remove")),
            ("flags", strs(&["trust-address", "port-latching"])),
            ("replace", strs(&["origin", "session-connection"])),
            ("transport-protocol", B::S("RTP/AVP")),
            ("call-id", B::S("a84b4c76e66710@pc33.atlanta.example.com")),
            ("via-branch", B::S("z9hG4bK776asdhds")),
            ("received-from", strs(&["IP4", "198.51.100.20"])),
            ("from-tag", B::S("1928301774")),
            ("command", B::S("offer")),
        ],
    );
    let r = parse_request(&d).unwrap();
    assert_eq!(r.command, Command::Offer);
    assert_eq!(r.cookie.as_bytes(), b"1_2847561_17");
    assert_eq!(r.sdp.unwrap().as_bytes(), CARRIER_SDP.as_bytes());
    assert_eq!(
        r.call_id.unwrap(),
        "a84b4c76e66710@pc33.atlanta.example.com"
    );
    assert_eq!(r.from_tag.unwrap(), "1928301774");
    assert_eq!(r.to_tag, None);
    assert_eq!(r.via_branch.unwrap(), "z9hG4bK776asdhds");
    assert_eq!(r.ice, Some(Ice::Remove));
    assert_eq!(r.flags, [Flag::TrustAddress, Flag::PortLatching]);
    assert!(r.has_flag(Flag::TrustAddress) && !r.has_flag(Flag::StrictSource));
    assert_eq!(r.replace, [Replace::Origin, Replace::SessionConnection]);
    assert_eq!(r.transport_protocol, Some(TransportProtocol::RtpAvp));
    let rf = r.received_from.unwrap();
    assert_eq!(rf.family, AddressFamily::Ip4);
    assert_eq!(rf.ip(), Some("198.51.100.20".parse().unwrap()));
    let unknown: Vec<_> = r.unknown_keys().map(|(k, _)| k.to_str().unwrap()).collect();
    assert_eq!(unknown, ["supports"]);

    let reply = encode_reply(r.cookie, &Reply::sdp(b"v=0\r\n".to_vec()));
    assert_eq!(reply, b"1_2847561_17 d6:result2:ok3:sdp5:v=0\r\ne");
}

#[test]
fn kamailio_offer_rtp_to_srtp_towards_teams() {
    // rtpengine_offer("RTP/SAVP ICE=force rtcp-mux-offer SDES-no-AES_CM_128_HMAC_SHA1_32
    //   SIP-source-address strict-source replace-origin label=carrier direction=pub direction=ms")
    let d = datagram(
        "-1_1804289383_4",
        vec![
            ("supports", strs(&["load limit"])),
            ("sdp", B::S(CARRIER_SDP)),
            ("ICE", B::S("force")),
            ("label", B::S("carrier")),
            ("direction", strs(&["pub", "ms"])),
            ("flags", strs(&["SIP-source-address", "strict-source"])),
            ("replace", strs(&["origin"])),
            ("transport-protocol", B::S("RTP/SAVP")),
            ("rtcp-mux", strs(&["offer"])),
            ("SDES", strs(&["no-AES_CM_128_HMAC_SHA1_32", "lifetime"])),
            ("received-from", strs(&["IP6", "2001:db8::20"])),
            ("call-id", B::S("srtp-call-1")),
            ("from-tag", B::S("ft1")),
            ("command", B::S("offer")),
            ("sip-message-type", B::S("sip_request")),
        ],
    );
    let r = parse_request(&d).unwrap();
    assert_eq!(r.transport_protocol, Some(TransportProtocol::RtpSavp));
    assert_eq!(r.ice, Some(Ice::Force));
    assert_eq!(r.rtcp_mux, [RtcpMux::Offer]);
    assert_eq!(r.sdes.len(), 2);
    assert!(matches!(r.sdes[0], Sdes::NoSuite(s) if s == "AES_CM_128_HMAC_SHA1_32"));
    assert_eq!(r.sdes[1], Sdes::Lifetime);
    assert_eq!(r.flags, [Flag::SipSourceAddress, Flag::StrictSource]);
    assert_eq!(r.direction, ["pub", "ms"]);
    assert_eq!(r.label.unwrap(), "carrier");
    assert_eq!(r.received_from.unwrap().family, AddressFamily::Ip6);
    assert_eq!(
        r.received_from.unwrap().ip(),
        Some("2001:db8::20".parse().unwrap())
    );
    let unknown: Vec<_> = r.unknown_keys().map(|(k, _)| k.to_str().unwrap()).collect();
    assert_eq!(unknown, ["supports", "sip-message-type"]);
    assert_eq!(
        r.get("sip-message-type").and_then(Value::as_str),
        Some("sip_request")
    );
}

#[test]
fn opensips_style_prefixed_flags_fold_into_their_keys() {
    let d = datagram(
        "9876_3",
        vec![
            ("command", B::S("offer")),
            ("call-id", B::S("c")),
            ("from-tag", B::S("f")),
            ("sdp", B::S("v=0\r\n")),
            (
                "flags",
                strs(&[
                    "replace-origin",
                    "replace-session-connection",
                    "SDES-no-AES_CM_128_HMAC_SHA1_32",
                    "SDES-off",
                    "rtcp-mux-demux",
                    "from-tags-t1",
                    "trust address",
                    "loop_protect",
                    "my-own-flag",
                ]),
            ),
        ],
    );
    let r = parse_request(&d).unwrap();
    assert_eq!(r.replace, [Replace::Origin, Replace::SessionConnection]);
    assert!(matches!(r.sdes[0], Sdes::NoSuite(s) if s == "AES_CM_128_HMAC_SHA1_32"));
    assert_eq!(r.sdes[1], Sdes::Off);
    assert_eq!(r.rtcp_mux, [RtcpMux::Demux]);
    assert_eq!(r.from_tags, ["t1"]);
    assert_eq!(r.flags.len(), 3);
    assert_eq!(r.flags[0], Flag::TrustAddress, "space read as dash");
    assert_eq!(r.flags[1], Flag::LoopProtect, "underscore read as dash");
    assert!(matches!(r.flags[2], Flag::Other(f) if f == "my-own-flag"));
}

#[test]
fn kamailio_answer_carries_both_tags() {
    // In a 200 OK the module sends the From tag as from-tag and the To tag as to-tag.
    let d = datagram(
        "1_2847561_18",
        vec![
            ("sdp", B::S(CARRIER_SDP)),
            ("flags", strs(&["trust-address"])),
            ("replace", strs(&["origin", "session-connection"])),
            ("transport-protocol", B::S("RTP/AVP")),
            ("rtcp-mux", strs(&["demux"])),
            ("call-id", B::S("a84b4c76e66710")),
            ("via-branch", B::S("z9hG4bK776asdhds")),
            ("received-from", strs(&["IP4", "203.0.113.5"])),
            ("from-tag", B::S("1928301774")),
            ("to-tag", B::S("a6c85cf")),
            ("command", B::S("answer")),
        ],
    );
    let r = parse_request(&d).unwrap();
    assert_eq!(r.command, Command::Answer);
    assert_eq!(r.to_tag.unwrap(), "a6c85cf");
    assert_eq!(r.rtcp_mux, [RtcpMux::Demux]);

    let without_to_tag = datagram(
        "1_2_3",
        vec![
            ("sdp", B::S("v=0\r\n")),
            ("call-id", B::S("c")),
            ("from-tag", B::S("f")),
            ("command", B::S("answer")),
        ],
    );
    let (cookie, err) = parse_request(&without_to_tag).unwrap_err();
    assert_eq!(cookie.unwrap().as_bytes(), b"1_2_3");
    assert_eq!(
        err.request_error(),
        Some(&RequestError::MissingKey("to-tag"))
    );
    assert_eq!(
        encode_reply(cookie.unwrap(), &err.into()),
        b"1_2_3 d12:error-reason20:No to-tag in message6:result5:errore"
    );
}

#[test]
fn offer_without_sdp_or_call_id_is_an_error_reply() {
    for (dict, reason) in [
        (
            vec![
                ("call-id", B::S("c")),
                ("from-tag", B::S("f")),
                ("command", B::S("offer")),
            ],
            "No SDP body in message",
        ),
        (
            vec![
                ("sdp", B::S("v=0")),
                ("from-tag", B::S("f")),
                ("command", B::S("offer")),
            ],
            "No call-id in message",
        ),
        (
            vec![
                ("sdp", B::S("v=0")),
                ("call-id", B::S("c")),
                ("command", B::S("offer")),
            ],
            "No from-tag in message",
        ),
        (vec![("command", B::S("query"))], "No call-id in message"),
        (vec![("command", B::S("delete"))], "No call-id in message"),
    ] {
        let d = datagram("7_7", dict);
        let (cookie, err) = parse_request(&d).unwrap_err();
        assert!(cookie.is_some());
        assert_eq!(err.reason(), reason);
    }
}

#[test]
fn delete_query_and_list() {
    // rtpengine_delete("delete-delay=30"): Kamailio adds it as an integer.
    let d = datagram(
        "1_9_20",
        vec![
            ("delete-delay", B::I(30)),
            ("call-id", B::S("a84b4c76e66710")),
            ("via-branch", B::S("z9hG4bK776asdhds")),
            ("received-from", strs(&["IP4", "198.51.100.20"])),
            ("from-tag", B::S("1928301774")),
            ("command", B::S("delete")),
        ],
    );
    let r = parse_request(&d).unwrap();
    assert_eq!((r.command, r.delete_delay), (Command::Delete, Some(30)));
    let d = datagram(
        "x",
        vec![
            ("command", B::S("delete")),
            ("call-id", B::S("c")),
            ("delete delay", B::S("0")),
        ],
    );
    assert_eq!(parse_request(&d).unwrap().delete_delay, Some(0));
    let d = datagram(
        "x",
        vec![
            ("command", B::S("delete")),
            ("call-id", B::S("c")),
            ("delete-delay", B::S("soon")),
        ],
    );
    assert_eq!(
        parse_request(&d).unwrap_err().1.request_error(),
        Some(&RequestError::InvalidValue {
            key: "delete-delay"
        })
    );

    let qd = datagram(
        "q_1",
        vec![("command", B::S("query")), ("call-id", B::S("abc"))],
    );
    let q = parse_request(&qd).unwrap();
    assert_eq!(
        (q.command, q.call_id.unwrap().as_bytes()),
        (Command::Query, &b"abc"[..])
    );

    let ld = datagram(
        "l_1",
        vec![("command", B::S("list")), ("limit", B::S("32"))],
    );
    let l = parse_request(&ld).unwrap();
    assert_eq!((l.command, l.limit), (Command::List, Some(32)));
    let reply = encode_reply(
        l.cookie,
        &Reply::List {
            calls: vec![b"abc".to_vec(), b"def".to_vec()],
        },
    );
    assert_eq!(reply, b"l_1 d5:callsl3:abc3:defe6:result2:oke");
}

#[test]
fn keys_with_spaces_or_underscores_are_the_dashed_keys() {
    let d = datagram(
        "s_1",
        vec![
            ("command", B::S("offer")),
            ("call-id", B::S("c")),
            ("from-tag", B::S("f")),
            ("sdp", B::S("v=0")),
            ("media address", B::S("192.0.2.1")),
            ("address family", B::S("IP6")),
            ("received from", strs(&["IP4", "192.0.2.2"])),
            ("transport_protocol", B::S("UDP/TLS/RTP/SAVP")),
            ("from-label", B::S("teams")),
        ],
    );
    let r = parse_request(&d).unwrap();
    assert_eq!(r.media_address.unwrap(), "192.0.2.1");
    assert_eq!(r.address_family, Some(AddressFamily::Ip6));
    assert_eq!(r.received_from.unwrap().address, "192.0.2.2");
    assert_eq!(r.transport_protocol, Some(TransportProtocol::UdpTlsRtpSavp));
    assert_eq!(r.label.unwrap(), "teams");
    assert_eq!(r.unknown_keys().count(), 0);
}

#[test]
fn list_keys_also_accept_a_comma_separated_string() {
    let d = datagram(
        "c_1",
        vec![
            ("command", B::S("offer")),
            ("call-id", B::S("c")),
            ("from-tag", B::S("f")),
            ("sdp", B::S("v=0")),
            ("flags", B::S("trust-address, strict-source,,")),
            ("replace", B::S("origin")),
            ("rtcp-mux", B::S("accept,require")),
            ("SDES", B::S("off")),
            ("direction", B::S("priv,pub")),
        ],
    );
    let r = parse_request(&d).unwrap();
    assert_eq!(r.flags, [Flag::TrustAddress, Flag::StrictSource]);
    assert_eq!(r.replace, [Replace::Origin]);
    assert_eq!(r.rtcp_mux, [RtcpMux::Accept, RtcpMux::Require]);
    assert_eq!(r.sdes, [Sdes::Off]);
    assert_eq!(r.direction, ["priv", "pub"]);
}

#[test]
fn unknown_keys_and_values_are_ignored_but_kept() {
    let d = datagram(
        "u_1",
        vec![
            ("command", B::S("offer")),
            ("call-id", B::S("c")),
            ("from-tag", B::S("f")),
            ("sdp", B::S("v=0")),
            (
                "codec",
                B::D(vec![
                    ("transcode", strs(&["PCMA"])),
                    ("strip", strs(&["all"])),
                ]),
            ),
            ("ICE", B::S("something-new")),
            ("transport-protocol", B::S("RTP/XYZ")),
            ("x-vendor", B::I(-5)),
        ],
    );
    let r = parse_request(&d).unwrap();
    assert!(matches!(r.ice, Some(Ice::Other(v)) if v == "something-new"));
    assert!(matches!(r.transport_protocol, Some(TransportProtocol::Other(v)) if v == "RTP/XYZ"));
    let unknown: Vec<_> = r.unknown_keys().map(|(k, _)| k.to_str().unwrap()).collect();
    assert_eq!(unknown, ["codec", "x-vendor"]);
    let codec = r.get("codec").and_then(Value::as_dict).unwrap();
    assert_eq!(
        codec
            .get(b"strip")
            .and_then(Value::as_list)
            .map(<[Value<'_>]>::len),
        Some(1)
    );
    assert_eq!(r.get("x-vendor").and_then(Value::as_int), Some(-5));
    assert_eq!(r.dict().len(), 8);
}

#[test]
fn wrong_value_types_are_error_replies() {
    let base = || {
        vec![
            ("command", B::S("offer")),
            ("call-id", B::S("c")),
            ("from-tag", B::S("f")),
            ("sdp", B::S("v=0")),
        ]
    };
    for (extra, expected) in [
        (
            ("flags", B::I(1)),
            RequestError::WrongType {
                key: "flags",
                expected: "list of strings",
            },
        ),
        (
            ("flags", B::L(vec![B::I(1)])),
            RequestError::WrongType {
                key: "flags",
                expected: "list of strings",
            },
        ),
        (
            ("ICE", strs(&["remove"])),
            RequestError::WrongType {
                key: "ICE",
                expected: "string",
            },
        ),
        (
            ("received-from", strs(&["IP4"])),
            RequestError::InvalidValue {
                key: "received-from",
            },
        ),
        (
            ("received-from", B::S("IP4 1.2.3.4")),
            RequestError::WrongType {
                key: "received-from",
                expected: "list of strings",
            },
        ),
        (
            ("delete-delay", B::L(vec![])),
            RequestError::WrongType {
                key: "delete-delay",
                expected: "integer",
            },
        ),
    ] {
        let mut dict = base();
        dict.push(extra);
        let d = datagram("w_1", dict);
        let (cookie, err) = parse_request(&d).unwrap_err();
        assert_eq!(cookie.unwrap().as_bytes(), b"w_1");
        assert_eq!(err.request_error(), Some(&expected));
    }
    let d = datagram(
        "w_2",
        vec![
            ("command", B::S("offer")),
            ("call-id", strs(&["c"])),
            ("from-tag", B::S("f")),
            ("sdp", B::S("v")),
        ],
    );
    assert_eq!(
        parse_request(&d).unwrap_err().1.reason(),
        "Invalid value type for key \"call-id\" (expected string)"
    );
}

#[test]
fn unknown_or_missing_commands_are_error_replies() {
    let kd = datagram(
        "k_1",
        vec![("command", B::S("start recording")), ("call-id", B::S("c"))],
    );
    let (c, e) = parse_request(&kd).unwrap_err();
    assert_eq!(c.unwrap().as_bytes(), b"k_1");
    assert_eq!(e.reason(), "Unrecognized command");
    assert_eq!(
        e.request_error(),
        Some(&RequestError::UnknownCommand("start recording".into()))
    );
    let (_, e) = parse_request(&datagram("k_2", vec![("call-id", B::S("c"))])).unwrap_err();
    assert_eq!(e.request_error(), Some(&RequestError::NoCommand));
    let (_, e) = parse_request(&datagram("k_3", vec![("command", B::I(1))])).unwrap_err();
    assert_eq!(e.request_error(), Some(&RequestError::NoCommand));
    let (_, e) = parse_request(b"k_4 {\"command\":\"ping\"}").unwrap_err();
    assert_eq!(e.request_error(), Some(&RequestError::Json));
}

#[test]
fn datagrams_without_a_readable_cookie_are_dropped() {
    let long = format!("{} d7:command4:pinge", "7".repeat(ng::MAX_COOKIE_LEN + 1));
    for d in [
        &b"d7:command4:pinge"[..],
        b" d7:command4:pinge",
        b"",
        b"\x01\x02 d7:command4:pinge",
        "c\u{e9} d7:command4:pinge".as_bytes(),
        long.as_bytes(),
    ] {
        let (cookie, err) = parse_request(d).unwrap_err();
        assert_eq!(cookie, None, "{:?}", String::from_utf8_lossy(d));
        assert_eq!(err.request_error(), Some(&RequestError::NoCookie));
    }
    let ok = format!("{} d7:command4:pinge", "7".repeat(ng::MAX_COOKIE_LEN));
    assert!(parse_request(ok.as_bytes()).is_ok());
}

#[test]
fn a_retransmission_parses_to_the_same_request() {
    let d = datagram(
        "r_1",
        vec![("command", B::S("query")), ("call-id", B::S("c"))],
    );
    assert_eq!(
        parse_request(&d).unwrap(),
        parse_request(&d.clone()).unwrap()
    );
    // And the reply is canonical bencode: keys sorted, decodes and re-encodes identically.
    let reply = encode_reply(parse_request(&d).unwrap().cookie, &Reply::ok());
    let body = &reply[4..];
    assert_eq!(bencode::encode(&bencode::decode(body).unwrap()), body);
}
