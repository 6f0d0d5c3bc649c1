//! Replies: the shapes Kamailio and OpenSIPS read, in canonical bencode.

use std::net::SocketAddr;

use ng::bencode::{decode, encode, Value};
use ng::{
    encode_reply, CallStats, Cookie, Counters, ErrorReply, MediaStats, Reply, StreamStats,
    TagStats, Totals,
};

fn body(reply: &Reply) -> Vec<u8> {
    let cookie = Cookie::new(b"5323_1").unwrap();
    let out = encode_reply(cookie, reply);
    assert!(out.starts_with(b"5323_1 "));
    let body = out[7..].to_vec();
    // Canonical: keys sorted, so decoding and re-encoding gives the same bytes.
    assert_eq!(encode(&decode(&body).unwrap()), body);
    body
}

fn stats() -> CallStats {
    let ep = |s: &str| Some(s.parse::<SocketAddr>().unwrap());
    let stream = |port, peer: &str, packets| StreamStats {
        local_port: port,
        endpoint: ep(peer),
        advertised_endpoint: ep(peer),
        last_packet: 1_700_000_100,
        stats: Counters {
            packets,
            bytes: packets.saturating_mul(172),
            errors: 1,
        },
    };
    CallStats {
        created: 1_700_000_000,
        last_signal: 1_700_000_050,
        tags: vec![
            TagStats {
                tag: b"1928301774".to_vec(),
                label: Some(b"carrier".to_vec()),
                created: 1_700_000_000,
                in_dialogue_with: Some(b"a6c85cf".to_vec()),
                medias: vec![MediaStats {
                    index: 1,
                    media_type: "audio".into(),
                    protocol: "RTP/AVP".into(),
                    streams: vec![stream(30000, "198.51.100.20:17000", 500)],
                }],
            },
            TagStats {
                tag: b"a6c85cf".to_vec(),
                label: None,
                created: 1_700_000_001,
                in_dialogue_with: Some(b"1928301774".to_vec()),
                medias: vec![MediaStats {
                    index: 1,
                    media_type: "audio".into(),
                    protocol: "RTP/SAVP".into(),
                    streams: vec![stream(30002, "[2603:1063::1]:52884", u64::MAX)],
                }],
            },
            TagStats {
                tag: b"a6c85cf".to_vec(),
                ..TagStats::default()
            },
        ],
        totals: Totals {
            rtp: Counters {
                packets: 1000,
                bytes: 172_000,
                errors: 2,
            },
            rtcp: Counters::default(),
        },
    }
}

#[test]
fn pong_ok_sdp_list_and_error() {
    assert_eq!(body(&Reply::Pong), b"d6:result4:ponge");
    assert_eq!(body(&Reply::ok()), b"d6:result2:oke");
    assert_eq!(
        body(&Reply::Ok {
            warning: Some("SDES suite dropped".into())
        }),
        b"d6:result2:ok7:warning18:SDES suite droppede"
    );
    assert_eq!(
        body(&Reply::sdp("v=0\r\n")),
        b"d6:result2:ok3:sdp5:v=0\r\ne"
    );
    assert_eq!(
        body(&Reply::List { calls: vec![] }),
        b"d5:callsle6:result2:oke"
    );
    assert_eq!(
        body(&Reply::error("Unknown call-id")),
        b"d12:error-reason15:Unknown call-id6:result5:errore"
    );
    assert_eq!(
        body(&ErrorReply::new("Ran out of ports").into()),
        b"d12:error-reason16:Ran out of ports6:result5:errore"
    );
    assert_eq!(body(&Reply::Deleted(None)), b"d6:result2:oke");
}

#[test]
fn query_reply_has_tags_streams_and_totals() {
    let b = body(&Reply::Query(stats()));
    let v = decode(&b).unwrap();
    let d = v.as_dict().unwrap();
    assert_eq!(d.get(b"result").and_then(Value::as_str), Some("ok"));
    assert_eq!(
        d.get(b"created").and_then(Value::as_int),
        Some(1_700_000_000)
    );
    assert_eq!(
        d.get(b"last signal").and_then(Value::as_int),
        Some(1_700_000_050)
    );
    let totals = d.get(b"totals").and_then(Value::as_dict).unwrap();
    let rtp = totals.get(b"RTP").and_then(Value::as_dict).unwrap();
    assert_eq!(rtp.get(b"packets").and_then(Value::as_int), Some(1000));
    assert_eq!(rtp.get(b"bytes").and_then(Value::as_int), Some(172_000));
    assert_eq!(rtp.get(b"errors").and_then(Value::as_int), Some(2));
    assert!(totals.get(b"RTCP").is_some());

    let tags = d.get(b"tags").and_then(Value::as_dict).unwrap();
    assert_eq!(tags.len(), 2, "the duplicate tag is sent once");
    let caller = tags.get(b"1928301774").and_then(Value::as_dict).unwrap();
    assert_eq!(
        caller.get(b"tag").and_then(Value::as_str),
        Some("1928301774")
    );
    assert_eq!(
        caller.get(b"label").and_then(Value::as_str),
        Some("carrier")
    );
    assert_eq!(
        caller.get(b"in dialogue with").and_then(Value::as_str),
        Some("a6c85cf")
    );
    let media = &caller.get(b"medias").and_then(Value::as_list).unwrap()[0];
    let media = media.as_dict().unwrap();
    assert_eq!(media.get(b"type").and_then(Value::as_str), Some("audio"));
    assert_eq!(
        media.get(b"protocol").and_then(Value::as_str),
        Some("RTP/AVP")
    );
    let stream = media.get(b"streams").and_then(Value::as_list).unwrap()[0]
        .as_dict()
        .unwrap()
        .clone();
    assert_eq!(
        stream.get(b"local port").and_then(Value::as_int),
        Some(30000)
    );
    let ep = stream.get(b"endpoint").and_then(Value::as_dict).unwrap();
    assert_eq!(ep.get(b"family").and_then(Value::as_str), Some("IPv4"));
    assert_eq!(
        ep.get(b"address").and_then(Value::as_str),
        Some("198.51.100.20")
    );
    assert_eq!(ep.get(b"port").and_then(Value::as_int), Some(17000));
    assert!(stream.get(b"advertised endpoint").is_some());
    let s = stream.get(b"stats").and_then(Value::as_dict).unwrap();
    assert_eq!(s.get(b"packets").and_then(Value::as_int), Some(500));

    let callee = tags.get(b"a6c85cf").and_then(Value::as_dict).unwrap();
    assert!(callee.get(b"label").is_none());
    let m = callee.get(b"medias").and_then(Value::as_list).unwrap()[0]
        .as_dict()
        .unwrap()
        .clone();
    let st = m.get(b"streams").and_then(Value::as_list).unwrap()[0]
        .as_dict()
        .unwrap()
        .clone();
    let ep = st.get(b"endpoint").and_then(Value::as_dict).unwrap();
    assert_eq!(ep.get(b"family").and_then(Value::as_str), Some("IPv6"));
    assert_eq!(
        ep.get(b"address").and_then(Value::as_str),
        Some("2603:1063::1")
    );
    let s = st.get(b"stats").and_then(Value::as_dict).unwrap();
    assert_eq!(
        s.get(b"packets").and_then(Value::as_int),
        Some(i64::MAX),
        "saturated"
    );
}

#[test]
fn delete_reply_carries_final_stats() {
    let b = body(&Reply::Deleted(Some(stats())));
    assert_eq!(b, body(&Reply::Query(stats())));
}
