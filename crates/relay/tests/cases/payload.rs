//! Payload types between the legs: RFC 4733 telephone-events renumbered
//! each way (plain and SRTP legs), comfort noise (RFC 3389) passing, a
//! telephone-event the other party did not declare dropped, completed
//! events reported once, and T.38 (UDPTL) datagrams relayed as they are on
//! a raw stream.

use super::*;
use media::control::{PayloadFormat, PayloadSpec};
use media::{SrtpContext, SrtpPolicy, SrtpProfile};
use relay::CryptoSpec;

fn formats(list: &[(u8, &str)]) -> PayloadSpec {
    PayloadSpec::rtp(
        list.iter()
            .map(|&(pt, e)| PayloadFormat::new(pt, e, 8000))
            .collect(),
    )
}

/// The carrier numbers telephone-event 96 and comfort noise 98.
fn carrier() -> PayloadSpec {
    formats(&[(8, "PCMA"), (96, "telephone-event"), (98, "CN")])
}

/// Microsoft numbers telephone-event 101, comfort noise the static 13.
fn teams() -> PayloadSpec {
    formats(&[(8, "PCMA"), (101, "telephone-event"), (13, "CN")])
}

/// An RTP packet with payload type `pt` (marker bit `marker`).
fn rtp_pt(pt: u8, marker: bool, seq: u16, ts: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = rtp(seq, 0x7777, payload);
    p[1] = if marker { 0x80 | pt } else { pt };
    p[4..8].copy_from_slice(&ts.to_be_bytes());
    p
}

/// An RFC 4733 event payload.
fn event(ev: u8, end: bool, duration: u16) -> [u8; 4] {
    let d = duration.to_be_bytes();
    [ev, if end { 0x8a } else { 0x0a }, d[0], d[1]]
}

/// Sets B's formats without waiting, then waits until the worker has taken
/// it (a query behind it in the same queue).
fn set_b(r: &Relay, id: u64, spec: PayloadSpec) {
    r.apply(MediaOp::Payload {
        id,
        side: Side::B,
        spec,
    })
    .unwrap();
    r.query(id).unwrap();
}

#[test]
fn telephone_event_is_renumbered_each_way_with_the_marker_kept() {
    let r = relay(60_000);
    let (a, b) = (party(), party());
    let spec_a = LegSpec {
        payload: carrier(),
        ..leg(&a)
    };
    let s = r.create(spec_a, leg(&b)).unwrap();
    // B's formats are not known yet: nothing is renumbered.
    let first = rtp_pt(96, true, 1, 160, &event(1, false, 160));
    a.send_to(&first, s.a.rtp).unwrap();
    assert_eq!(recv(&b).unwrap().0, first);
    set_b(&r, s.id, teams());
    let start = rtp_pt(96, true, 2, 320, &event(1, false, 160));
    a.send_to(&start, s.a.rtp).unwrap();
    let (got, _) = recv(&b).unwrap();
    assert_eq!(got[1], 0x80 | 101, "PT 96 → 101, marker kept");
    assert_eq!(got[2..], start[2..], "nothing else changes");
    let cont = rtp_pt(96, false, 3, 320, &event(1, false, 320));
    a.send_to(&cont, s.a.rtp).unwrap();
    assert_eq!(recv(&b).unwrap().0[1], 101);
    // Voice keeps its number.
    let voice = rtp_pt(8, false, 4, 480, &[0xd5; 160]);
    a.send_to(&voice, s.a.rtp).unwrap();
    assert_eq!(recv(&b).unwrap().0, voice);
    // And back: Microsoft's 101 reaches the carrier as 96.
    let back = rtp_pt(101, true, 9, 800, &event(5, false, 160));
    b.send_to(&back, s.b.rtp).unwrap();
    assert_eq!(recv(&a).unwrap().0[1], 0x80 | 96);
}

#[test]
fn comfort_noise_passes_and_a_dynamic_cn_takes_the_other_number() {
    let r = relay(60_000);
    let (a, b) = (party(), party());
    // Both with the static CN 13: a one-octet noise level passes unchanged.
    let s = r
        .create(
            LegSpec {
                payload: teams(),
                ..leg(&a)
            },
            LegSpec {
                payload: teams(),
                ..leg(&b)
            },
        )
        .unwrap();
    let cn = rtp_pt(13, false, 1, 160, &[0x40]);
    a.send_to(&cn, s.a.rtp).unwrap();
    assert_eq!(recv(&b).unwrap().0, cn);
    b.send_to(&cn, s.b.rtp).unwrap();
    assert_eq!(recv(&a).unwrap().0, cn);
    // The carrier's dynamic CN/8000 on 98 reaches Microsoft as 13.
    r.apply(MediaOp::Payload {
        id: s.id,
        side: Side::A,
        spec: carrier(),
    })
    .unwrap();
    r.query(s.id).unwrap();
    let cn98 = rtp_pt(98, false, 2, 320, &[0x40]);
    a.send_to(&cn98, s.a.rtp).unwrap();
    let (got, _) = recv(&b).unwrap();
    assert_eq!((got[1], &got[12..]), (13, &[0x40u8][..]));
}

#[test]
fn telephone_event_toward_a_party_that_did_not_declare_it_is_dropped() {
    let r = relay(60_000);
    let (a, b) = (party(), party());
    let s = r
        .create(
            LegSpec {
                payload: carrier(),
                ..leg(&a)
            },
            LegSpec {
                payload: formats(&[(8, "PCMA")]),
                ..leg(&b)
            },
        )
        .unwrap();
    a.send_to(&rtp_pt(96, true, 1, 160, &event(3, false, 160)), s.a.rtp)
        .unwrap();
    let voice = rtp_pt(8, false, 2, 320, &[0xd5; 160]);
    a.send_to(&voice, s.a.rtp).unwrap();
    assert_eq!(recv(&b).unwrap().0, voice, "the event went nowhere");
    let st = r.query(s.id).unwrap()[0];
    assert_eq!((st.packets, st.dropped), (2, 0), "received, not an error");
}

#[test]
fn a_completed_event_is_reported_once_over_its_three_end_packets() {
    let r = relay(60_000);
    let (a, b) = (party(), party());
    let s = r
        .create(
            LegSpec {
                payload: carrier(),
                ..leg(&a)
            },
            LegSpec {
                payload: teams(),
                ..leg(&b)
            },
        )
        .unwrap();
    let ts = 8000;
    let mut seq = 10;
    for (i, d) in [160u16, 320, 480].into_iter().enumerate() {
        a.send_to(&rtp_pt(96, i == 0, seq, ts, &event(7, false, d)), s.a.rtp)
            .unwrap();
        seq += 1;
    }
    // The end packet, three times (the retransmissions with new sequence
    // numbers, as most senders do, and one with the same).
    for s_ in [seq, seq + 1, seq + 2, seq + 2] {
        a.send_to(&rtp_pt(96, false, s_, ts, &event(7, true, 640)), s.a.rtp)
            .unwrap();
    }
    for _ in 0..7 {
        assert_eq!(recv(&b).unwrap().0[1] & 0x7f, 101);
    }
    // A second event (another timestamp) is another report.
    a.send_to(
        &rtp_pt(96, true, seq + 3, ts + 1600, &event(11, true, 800)),
        s.a.rtp,
    )
    .unwrap();
    assert!(recv(&b).is_some());
    let mut got = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    while got.len() < 2 && std::time::Instant::now() < deadline {
        match r.poll_event() {
            Some(e @ RelayEvent::Dtmf { .. }) => got.push(e),
            Some(_) => {}
            None => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    std::thread::sleep(Duration::from_millis(100));
    while let Some(e) = r.poll_event() {
        got.push(e);
    }
    let dtmf = |event, duration| RelayEvent::Dtmf {
        id: s.id,
        side: Side::A,
        event,
        duration,
        clock_rate: 8000,
    };
    assert_eq!(got, vec![dtmf(7, 640), dtmf(11, 800)]);
}

fn policy(fill: u8) -> SrtpPolicy {
    SrtpPolicy::from_key_salt(SrtpProfile::AesCm128HmacSha1_80, &[fill; 30]).unwrap()
}

#[test]
fn the_payload_type_is_renumbered_inside_srtp_both_ways() {
    let r = relay(60_000);
    let (a, b) = (party(), party());
    let key_b = policy(0x41); // what B encrypts with
    let key_r = policy(0x42); // what the relay encrypts with toward B
    let s = r
        .create(
            LegSpec {
                payload: carrier(),
                ..leg(&a)
            },
            LegSpec {
                crypto: CryptoSpec {
                    rx: Some(key_b.clone()),
                    tx: Some(key_r.clone()),
                },
                payload: teams(),
                ..leg(&b)
            },
        )
        .unwrap();
    let mut b_rx = SrtpContext::new(&key_r).unwrap();
    let mut b_tx = SrtpContext::new(&key_b).unwrap();
    for i in 0..3u16 {
        // Carrier (plain, 96) → Microsoft (SRTP, 101): authenticated as 101.
        let plain = rtp_pt(96, i == 0, 100 + i, 4000, &event(9, i == 2, 160 * (i + 1)));
        a.send_to(&plain, s.a.rtp).unwrap();
        let (mut got, _) = recv(&b).expect("SRTP reached B");
        let n = b_rx
            .unprotect_rtp(&mut got)
            .expect("the tag covers the new PT");
        let mut want = plain.clone();
        want[1] = (plain[1] & 0x80) | 101;
        assert_eq!(&got[..n], &want[..]);
        // Microsoft (SRTP, 101) → carrier (plain, 96).
        let orig = rtp_pt(101, false, 200 + i, 9000, &event(2, false, 160));
        let mut pkt = orig.clone();
        pkt.resize(orig.len() + 16, 0);
        let n = b_tx.protect_rtp(&mut pkt, orig.len()).unwrap();
        b.send_to(&pkt[..n], s.b.rtp).unwrap();
        let (got, _) = recv(&a).expect("plain reached A");
        assert_eq!((got[1], &got[2..]), (96, &orig[2..]));
    }
}

/// A UDPTL datagram (RFC 3362 / T.38 Annex: sequence number, IFP): its
/// first octet is no RTP version 2.
fn udptl(seq: u16) -> Vec<u8> {
    let mut d = seq.to_be_bytes().to_vec();
    d.extend_from_slice(&[0x06, 0xc0, 0x01, 0x80, 0x00, 0x00]);
    d
}

#[test]
fn t38_datagrams_pass_unchanged_once_the_stream_is_raw_and_audio_comes_back() {
    let r = relay(60_000);
    let (a, b) = (party(), party());
    let s = r
        .create(
            LegSpec {
                payload: carrier(),
                ..leg(&a)
            },
            LegSpec {
                payload: teams(),
                ..leg(&b)
            },
        )
        .unwrap();
    // An audio stream drops what is not RTP.
    a.send_to(&udptl(0), s.a.rtp).unwrap();
    assert!(recv(&b).is_none(), "not RTP on an RTP stream");
    // The re-INVITE to T.38: both parties' streams are raw now.
    for side in [Side::A, Side::B] {
        r.apply(MediaOp::Payload {
            id: s.id,
            side,
            spec: PayloadSpec::raw(),
        })
        .unwrap();
    }
    r.query(s.id).unwrap();
    for i in 1..=5 {
        a.send_to(&udptl(i), s.a.rtp).unwrap();
        assert_eq!(recv(&b).unwrap().0, udptl(i));
        b.send_to(&udptl(100 + i), s.b.rtp).unwrap();
        assert_eq!(recv(&a).unwrap().0, udptl(100 + i));
    }
    // Something that looks like RTP with a mapped PT is not touched either,
    // nor sent to an RTCP address: a raw stream is not parsed.
    let looks_rtp = rtp_pt(96, false, 1, 1, &[1, 2, 3]);
    a.send_to(&looks_rtp, s.a.rtp).unwrap();
    assert_eq!(recv(&b).unwrap().0, looks_rtp);
    let looks_rtcp = [0x81u8, 200, 0, 1, 0, 0, 0, 1];
    a.send_to(&looks_rtcp, s.a.rtp).unwrap();
    assert_eq!(recv(&b).unwrap(), (looks_rtcp.to_vec(), s.b.rtp));
    assert_eq!(r.query(s.id).unwrap()[0].packets, 7);
    // Back to audio: RTP is renumbered again, UDPTL dropped.
    for (side, spec) in [(Side::A, carrier()), (Side::B, teams())] {
        r.apply(MediaOp::Payload {
            id: s.id,
            side,
            spec,
        })
        .unwrap();
    }
    r.query(s.id).unwrap();
    a.send_to(&udptl(9), s.a.rtp).unwrap();
    a.send_to(&rtp_pt(96, true, 2, 2, &event(1, false, 160)), s.a.rtp)
        .unwrap();
    assert_eq!(recv(&b).unwrap().0[1], 0x80 | 101);
}

#[test]
fn a_raw_stream_is_not_relayed_toward_an_srtp_leg() {
    let r = relay(60_000);
    let (a, b) = (party(), party());
    let s = r
        .create(
            LegSpec {
                payload: PayloadSpec::raw(),
                ..leg(&a)
            },
            LegSpec {
                crypto: CryptoSpec {
                    rx: Some(policy(1)),
                    tx: Some(policy(2)),
                },
                ..leg(&b)
            },
        )
        .unwrap();
    a.send_to(&udptl(1), s.a.rtp).unwrap();
    assert!(recv(&b).is_none());
    assert_eq!(r.query(s.id).unwrap()[0].dropped, 1);
}
