//! The relay engine on loopback: forwarding both ways, latching, strict
//! source, RTCP on its own port and muxed, SSRC change, inactivity, delete;
//! payload types, comfort noise, telephone-events and T.38 (`payload`).
//! Run once per worker I/O (`tests/relay.rs` with epoll,
//! `tests/relay_uring.rs` with io_uring): `crate::IO` says which.

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use relay::{LegSpec, MediaOp, Relay, RelayConfig, RelayEvent, Side};

mod payload;
mod tone;

fn relay(inactivity_ms: u64) -> Relay {
    Relay::start(RelayConfig {
        port_min: 42000,
        port_max: 42999,
        workers: 2,
        inactivity: Duration::from_millis(inactivity_ms),
        io: crate::IO,
        ..RelayConfig::default()
    })
    .unwrap()
}

fn party() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    s
}

fn rtp(seq: u16, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p[4..8].copy_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p[8..12].copy_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

fn recv(s: &UdpSocket) -> Option<(Vec<u8>, SocketAddr)> {
    let mut buf = [0u8; 2048];
    s.recv_from(&mut buf)
        .ok()
        .map(|(n, a)| (buf[..n].to_vec(), a))
}

/// The relay's totals once `ok` holds for them (the workers publish theirs
/// once per loop round; 2 s at most).
fn totals(r: &Relay, ok: impl Fn(&relay::RelayStats) -> bool) -> relay::RelayStats {
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    loop {
        let s = r.stats();
        if ok(&s) || std::time::Instant::now() > deadline {
            return s;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn leg(remote: &UdpSocket) -> LegSpec {
    LegSpec {
        remote_rtp: Some(remote.local_addr().unwrap()),
        ..LegSpec::default()
    }
}

#[test]
fn plain_rtp_flows_both_ways_unchanged() {
    let r = relay(60_000);
    let (a, b) = (party(), party());
    let s = r.create(leg(&a), leg(&b)).unwrap();
    for seq in 0..20u16 {
        let p = rtp(seq, 0xa, b"from-a");
        a.send_to(&p, s.a.rtp).unwrap();
        let (got, from) = recv(&b).expect("packet reached B");
        assert_eq!(got, p, "payload and header relayed unchanged");
        assert_eq!(from, s.b.rtp, "sent from leg B's port");
        let q = rtp(seq, 0xb, b"from-b");
        b.send_to(&q, s.b.rtp).unwrap();
        assert_eq!(recv(&a).expect("packet reached A").0, q);
    }
    let st = r.query(s.id).unwrap();
    assert_eq!((st[0].packets, st[1].packets), (20, 20));
    assert_eq!(st[0].lost, 0);
    // The relay-wide figures: 40 packets of 18 octets, on one worker.
    let t = totals(&r, |t| t.packets == 40);
    assert_eq!((t.packets, t.bytes, t.auth_failures), (40, 40 * 18, 0));
    let w = r.workers();
    assert_eq!(w.len(), 2);
    assert_eq!(w.iter().map(|w| w.sessions).sum::<usize>(), 1, "{w:?}");
    assert_eq!(w.iter().map(|w| w.packets).max(), Some(40), "{w:?}");
}

#[test]
fn latching_replaces_the_sdp_address_with_the_real_source() {
    let r = relay(60_000);
    let (a, b) = (party(), party());
    // A's SDP names an address nobody listens on (a NAT'ed phone).
    let sdp_a = LegSpec {
        remote_rtp: Some("127.0.0.1:9".parse().unwrap()),
        ..LegSpec::default()
    };
    let s = r.create(sdp_a, leg(&b)).unwrap();
    a.send_to(&rtp(1, 1, b"x"), s.a.rtp).unwrap();
    assert!(recv(&b).is_some());
    b.send_to(&rtp(1, 2, b"y"), s.b.rtp).unwrap();
    assert_eq!(
        recv(&a).expect("B's packet follows A's real source").0,
        rtp(1, 2, b"y")
    );
}

#[test]
fn strict_source_accepts_only_the_sdp_address() {
    let r = relay(60_000);
    let (a, b, intruder) = (party(), party(), party());
    let strict = LegSpec {
        strict_source: true,
        ..leg(&a)
    };
    let s = r.create(strict, leg(&b)).unwrap();
    intruder.send_to(&rtp(1, 9, b"evil"), s.a.rtp).unwrap();
    assert!(recv(&b).is_none(), "packet from another source dropped");
    a.send_to(&rtp(2, 1, b"ok"), s.a.rtp).unwrap();
    assert!(recv(&b).is_some());
    assert_eq!(r.query(s.id).unwrap()[0].wrong_source, 1);
}

#[test]
fn rtcp_uses_rtcp_ports_or_the_rtp_port_when_muxed() {
    let r = relay(60_000);
    let (a, b_rtp, b_rtcp) = (party(), party(), party());
    let a_rtcp = party();
    let spec_a = LegSpec {
        remote_rtp: Some(a.local_addr().unwrap()),
        remote_rtcp: Some(a_rtcp.local_addr().unwrap()),
        ..LegSpec::default()
    };
    // B multiplexes RTCP on its RTP port.
    let spec_b = LegSpec {
        remote_rtp: Some(b_rtp.local_addr().unwrap()),
        rtcp_mux: true,
        ..LegSpec::default()
    };
    let s = r.create(spec_a, spec_b).unwrap();
    let rr = [0x80u8, 201, 0, 1, 0, 0, 0, 1];
    a_rtcp.send_to(&rr, s.a.rtcp).unwrap();
    let (got, from) = recv(&b_rtp).expect("RTCP muxed toward B");
    assert_eq!((got.as_slice(), from), (&rr[..], s.b.rtp));
    // And back: RTCP from B on its RTP port goes to A's RTCP port.
    let sr = [0x80u8, 200, 0, 1, 0, 0, 0, 2, 0, 0, 0, 0];
    b_rtp.send_to(&sr, s.b.rtp).unwrap();
    let (got, from) = recv(&a_rtcp).expect("RTCP demuxed toward A");
    assert_eq!((got.as_slice(), from), (&sr[..], s.a.rtcp));
    assert!(recv(&b_rtcp).is_none());
    assert_eq!(r.query(s.id).unwrap()[1].rtcp_packets, 1);
}

#[test]
fn ssrc_change_loss_and_malformed_are_counted() {
    let r = relay(60_000);
    let (a, b) = (party(), party());
    let s = r.create(leg(&a), leg(&b)).unwrap();
    for seq in [1u16, 2, 4, 5] {
        a.send_to(&rtp(seq, 100, b"p"), s.a.rtp).unwrap();
        recv(&b).unwrap();
    }
    a.send_to(&rtp(500, 200, b"new source"), s.a.rtp).unwrap();
    recv(&b).unwrap();
    a.send_to(b"not rtp at all", s.a.rtp).unwrap();
    a.send_to(&[0x80, 0, 1], s.a.rtp).unwrap();
    assert!(recv(&b).is_none());
    let st = r.query(s.id).unwrap()[0];
    assert_eq!(st.ssrc_changes, 1);
    assert_eq!(st.lost, 1, "seq 3 missing");
    assert_eq!(st.dropped, 2);
    assert_eq!(st.packets, 5);
}

#[test]
fn inactivity_is_reported_once() {
    let r = relay(300);
    let (a, b) = (party(), party());
    let s = r.create(leg(&a), leg(&b)).unwrap();
    a.send_to(&rtp(1, 1, b"x"), s.a.rtp).unwrap();
    recv(&b).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(r.poll_event(), Some(RelayEvent::Inactive { id: s.id }));
    assert_eq!(r.poll_event(), None);
}

#[test]
fn update_and_delete() {
    let r = relay(60_000);
    let (a, b, b2) = (party(), party(), party());
    let s = r.create(leg(&a), LegSpec::default()).unwrap();
    // No destination for B yet: dropped and counted.
    a.send_to(&rtp(1, 1, b"x"), s.a.rtp).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(r.query(s.id).unwrap()[0].dropped, 1);
    // The answer arrives: B's address.
    r.update(s.id, Side::B, Some(b.local_addr().unwrap()), None, None)
        .unwrap();
    a.send_to(&rtp(2, 1, b"x"), s.a.rtp).unwrap();
    assert!(recv(&b).is_some());
    // A re-INVITE moves B.
    r.update(s.id, Side::B, Some(b2.local_addr().unwrap()), None, None)
        .unwrap();
    a.send_to(&rtp(3, 1, b"x"), s.a.rtp).unwrap();
    assert!(recv(&b2).is_some());
    let before = r.ports_in_use();
    let st = r.delete(s.id).unwrap();
    assert_eq!(st[0].packets, 3);
    assert_eq!(r.ports_in_use(), before - 2);
    assert!(r.query(s.id).is_err());
    a.send_to(&rtp(4, 1, b"x"), s.a.rtp).unwrap();
    assert!(recv(&b2).is_none(), "deleted session forwards nothing");
}

#[test]
fn apply_never_waits_and_a_delete_reports_its_statistics_later() {
    let r = relay(60_000);
    let (a, b) = (party(), party());
    let s = r.create(leg(&a), LegSpec::default()).unwrap();
    r.apply(MediaOp::Update {
        id: s.id,
        side: Side::B,
        remote_rtp: Some(b.local_addr().unwrap()),
        remote_rtcp: None,
        crypto: None,
        rtcp_mux: Some(true),
    })
    .unwrap();
    a.send_to(&rtp(1, 1, b"x"), s.a.rtp).unwrap();
    assert!(recv(&b).is_some(), "the update took effect");
    // RTCP from A toward a muxed B goes to B's RTP address.
    a.send_to(&[0x81, 200, 0, 1, 0, 0, 0, 1], s.a.rtcp).unwrap();
    assert_eq!(recv(&b).map(|(_, from)| from), Some(s.b.rtp));
    let before = r.ports_in_use();
    r.apply(MediaOp::Delete { id: s.id }).unwrap();
    assert!(r.query(s.id).is_err(), "gone for the control side at once");
    let mut removed = None;
    for _ in 0..100 {
        if let Some(ev) = r.poll_event() {
            removed = Some(ev);
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let Some(RelayEvent::Removed { id, stats }) = removed else {
        panic!("no Removed event: {removed:?}");
    };
    assert_eq!(id, s.id);
    assert_eq!(stats[0].packets, 1);
    assert_eq!(r.ports_in_use(), before - 2, "ports freed with the event");
    assert!(r.apply(MediaOp::Delete { id: s.id }).is_err());
}

mod srtp {
    use super::*;
    use media::{SrtpContext, SrtpPolicy, SrtpProfile};
    use relay::CryptoSpec;

    fn policy(profile: SrtpProfile, fill: u8) -> SrtpPolicy {
        let n = match profile {
            SrtpProfile::AeadAes128Gcm => 28,
            _ => 30,
        };
        SrtpPolicy::from_key_salt(profile, &vec![fill; n]).unwrap()
    }

    fn both_ways(profile: SrtpProfile) {
        let r = relay(60_000);
        let (a, b) = (party(), party());
        let key_b = policy(profile, 0x11); // what B encrypts with
        let key_r = policy(profile, 0x22); // what the relay encrypts with toward B
        let spec_b = LegSpec {
            crypto: CryptoSpec {
                rx: Some(key_b.clone()),
                tx: Some(key_r.clone()),
            },
            ..leg(&b)
        };
        let s = r.create(leg(&a), spec_b).unwrap();
        let mut b_tx = SrtpContext::new(&key_b).unwrap();
        let mut b_rx = SrtpContext::new(&key_r).unwrap();
        // Across the sequence-number wrap, so that the ROC moves on both sides.
        for i in 0..40u16 {
            let seq = 65520u16.wrapping_add(i);
            // A (plain) → relay → B (SRTP).
            let plain = rtp(seq, 0xa, &[i as u8; 160]);
            a.send_to(&plain, s.a.rtp).unwrap();
            let (mut got, _) = recv(&b).expect("SRTP reached B");
            assert!(got.len() > plain.len(), "tag added");
            let n = b_rx
                .unprotect_rtp(&mut got)
                .expect("B decrypts what the relay encrypted");
            assert_eq!(&got[..n], &plain[..], "payload byte for byte");
            // B (SRTP) → relay → A (plain).
            let orig = rtp(seq, 0xb, &[0x55 ^ i as u8; 160]);
            let mut pkt = orig.clone();
            pkt.resize(orig.len() + 16, 0);
            let n = b_tx.protect_rtp(&mut pkt, orig.len()).unwrap();
            b.send_to(&pkt[..n], s.b.rtp).unwrap();
            assert_eq!(recv(&a).expect("plain reached A").0, orig);
        }
        // A tampered packet is counted, not forwarded.
        let mut pkt = rtp(100, 0xb, &[1; 160]);
        pkt.resize(172 + 16, 0);
        let n = b_tx.protect_rtp(&mut pkt, 172).unwrap();
        pkt[20] ^= 1;
        b.send_to(&pkt[..n], s.b.rtp).unwrap();
        assert!(recv(&a).is_none());
        // A replayed packet too.
        let mut pkt = rtp(101, 0xb, &[2; 160]);
        pkt.resize(172 + 16, 0);
        let n = b_tx.protect_rtp(&mut pkt, 172).unwrap();
        b.send_to(&pkt[..n], s.b.rtp).unwrap();
        assert!(recv(&a).is_some());
        b.send_to(&pkt[..n], s.b.rtp).unwrap();
        assert!(recv(&a).is_none());
        let st = r.query(s.id).unwrap()[1];
        assert_eq!((st.auth_failures, st.replays), (1, 1));
        // Relay-wide: 40 each way and the one after the tampered packet.
        let t = totals(&r, |t| t.auth_failures == 1 && t.packets == 81);
        assert_eq!((t.packets, t.auth_failures), (81, 1));
    }

    #[test]
    fn rtp_to_srtp_and_back_aes_cm_80() {
        both_ways(SrtpProfile::AesCm128HmacSha1_80);
    }

    #[test]
    fn rtp_to_srtp_and_back_aead_gcm() {
        both_ways(SrtpProfile::AeadAes128Gcm);
    }

    #[test]
    fn rekey_starts_fresh_and_same_key_keeps_state() {
        let r = relay(60_000);
        let (a, b) = (party(), party());
        let k1 = policy(SrtpProfile::AesCm128HmacSha1_80, 0x31);
        let k2 = policy(SrtpProfile::AesCm128HmacSha1_80, 0x32);
        let spec_b = LegSpec {
            crypto: CryptoSpec {
                rx: Some(k1.clone()),
                tx: None,
            },
            ..leg(&b)
        };
        let s = r.create(leg(&a), spec_b).unwrap();
        let send = |ctx: &mut SrtpContext, seq: u16| {
            let mut p = rtp(seq, 7, &[9; 160]);
            p.resize(172 + 16, 0);
            let n = ctx.protect_rtp(&mut p, 172).unwrap();
            b.send_to(&p[..n], s.b.rtp).unwrap();
        };
        let mut c1 = SrtpContext::new(&k1).unwrap();
        send(&mut c1, 10);
        assert!(recv(&a).is_some());
        // A re-offer with the same key keeps the replay state: seq 10 again is a replay.
        r.update(
            s.id,
            Side::B,
            None,
            None,
            Some(CryptoSpec {
                rx: Some(k1.clone()),
                tx: None,
            }),
        )
        .unwrap();
        send(&mut c1, 10);
        assert!(recv(&a).is_none());
        // A new key (Microsoft re-keys with ROC 0): a fresh context accepts seq 10 with the new key only.
        r.update(
            s.id,
            Side::B,
            None,
            None,
            Some(CryptoSpec {
                rx: Some(k2.clone()),
                tx: None,
            }),
        )
        .unwrap();
        send(&mut c1, 11);
        assert!(recv(&a).is_none(), "old key refused after re-key");
        let mut c2 = SrtpContext::new(&k2).unwrap();
        send(&mut c2, 10);
        assert!(recv(&a).is_some(), "new key, ROC 0, accepted");
    }
}
