//! Tones (`MediaOp::Tone`): what the party hears, when it stops.

use std::time::{Duration, Instant};

use media::control::ToneSpec;
use media::tone::{Tone, G711};
use media::{SrtpContext, SrtpPolicy, SrtpProfile};
use relay::CryptoSpec;

use super::*;

fn uk(law: G711, payload_type: u8) -> ToneSpec {
    ToneSpec {
        tone: Tone::named("uk").unwrap(),
        law,
        payload_type,
    }
}

/// One received packet: when, and its bytes.
struct Got {
    at: Duration,
    bytes: Vec<u8>,
}

impl Got {
    fn ssrc(&self) -> u32 {
        u32::from_be_bytes([self.bytes[8], self.bytes[9], self.bytes[10], self.bytes[11]])
    }
    fn seq(&self) -> u16 {
        u16::from_be_bytes([self.bytes[2], self.bytes[3]])
    }
    fn ts(&self) -> u32 {
        u32::from_be_bytes([self.bytes[4], self.bytes[5], self.bytes[6], self.bytes[7]])
    }
}

/// Everything `s` receives for `d` (bounded by the clock).
fn gather(s: &UdpSocket, d: Duration) -> Vec<Got> {
    s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let start = Instant::now();
    let mut out = Vec::new();
    let mut buf = [0u8; 2048];
    while start.elapsed() < d {
        if let Ok((n, _)) = s.recv_from(&mut buf) {
            out.push(Got {
                at: start.elapsed(),
                bytes: buf[..n].to_vec(),
            });
        }
    }
    out
}

fn silent(payload: &[u8], law: G711) -> bool {
    payload.iter().all(|&b| b == law.silence())
}

#[test]
fn a_tone_is_g711_at_fifty_packets_a_second_with_its_own_header_and_cadence() {
    let r = relay(60_000);
    let (a, b) = (party(), party());
    let s = r.create(leg(&a), leg(&b)).unwrap();
    r.apply(MediaOp::Tone {
        id: s.id,
        side: Side::A,
        tone: Some(uk(G711::Pcma, 8)),
    })
    .unwrap();
    let got = gather(&a, Duration::from_millis(1500));
    assert!(
        (70..=78).contains(&got.len()),
        "{} packets in 1.5 s",
        got.len()
    );
    assert!(
        gather(&b, Duration::from_millis(60)).is_empty(),
        "only toward A"
    );
    let first = &got[0];
    assert_eq!(first.bytes.len(), 172, "12-byte header, 160 samples");
    assert_eq!(first.bytes[0], 0x80, "RTP version 2, no padding, no CSRC");
    assert_eq!(first.bytes[1], 0x88, "marker and PT 8 on the first");
    // Packet by packet, the sequence number goes up by one and the
    // timestamp by 160 (a worker that stalled past its catch-up skips
    // ahead in time, never in sequence number).
    let mut exact = 0;
    for (i, g) in got.iter().enumerate().skip(1) {
        assert_eq!(g.bytes[1], 8, "no marker after the first");
        assert_eq!(g.ssrc(), first.ssrc());
        assert_eq!(g.seq(), first.seq().wrapping_add(i as u16), "no gap");
        let step = g.ts().wrapping_sub(got[i - 1].ts());
        assert_eq!(step % 160, 0, "whole packets of 160 samples");
        exact += usize::from(step == 160);
    }
    assert!(
        exact * 10 >= got.len() * 9,
        "{exact} of {} steps of 160",
        got.len()
    );
    // 0.4 s on (packets 0–19), 0.2 s off (20–29), 0.4 s on (30–49), 2 s
    // off, by the packet's place in time (its timestamp).
    for g in &got {
        let k = g.ts().wrapping_sub(first.ts()) / 160;
        let quiet = silent(&g.bytes[12..], G711::Pcma);
        match k {
            0..=19 | 30..=49 => assert!(!quiet, "packet {k} is tone"),
            20..=29 | 50..=149 => assert!(quiet, "packet {k} is silence"),
            _ => {}
        }
    }
    // Paced, not bursts: the 60th packet ≈ 1.2 s after the first.
    let span = got[60].at.saturating_sub(got[0].at);
    assert!(
        span >= Duration::from_millis(1100) && span <= Duration::from_millis(1300),
        "{span:?}"
    );
}

#[test]
fn rtp_from_the_other_leg_takes_over_from_the_tone() {
    let r = relay(60_000);
    let (a, b) = (party(), party());
    let s = r.create(leg(&a), leg(&b)).unwrap();
    r.apply(MediaOp::Tone {
        id: s.id,
        side: Side::A,
        tone: Some(uk(G711::Pcmu, 0)),
    })
    .unwrap();
    let before = gather(&a, Duration::from_millis(200));
    assert!(before.len() >= 8, "{} tone packets", before.len());
    let tone_ssrc = before[0].ssrc();
    assert_eq!(before[0].bytes[1], 0x80, "marker, PT 0");
    // Early media from B: forwarded to A, and the tone ends.
    for seq in 0..5u16 {
        b.send_to(&rtp(seq, 0xb0b, &[0x42; 160]), s.b.rtp).unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    let after = gather(&a, Duration::from_millis(300));
    let early = after.iter().filter(|g| g.ssrc() == 0xb0b).count();
    let tone = after.iter().filter(|g| g.ssrc() == tone_ssrc).count();
    assert_eq!(early, 5, "early media relayed");
    assert!(tone <= 1, "{tone} tone packets after early media began");
}

#[test]
fn a_tone_stops_when_told_starts_again_afresh_and_ends_with_its_session() {
    let r = relay(60_000);
    let (a, b) = (party(), party());
    let s = r.create(leg(&a), leg(&b)).unwrap();
    let start = || MediaOp::Tone {
        id: s.id,
        side: Side::A,
        tone: Some(ToneSpec {
            tone: Tone {
                freqs: vec![425],
                cadence_ms: vec![],
            },
            law: G711::Pcmu,
            payload_type: 0,
        }),
    };
    r.apply(start()).unwrap();
    let one = gather(&a, Duration::from_millis(150));
    assert!(one.len() >= 5, "{}", one.len());
    r.apply(MediaOp::Tone {
        id: s.id,
        side: Side::A,
        tone: None,
    })
    .unwrap();
    // What was in flight arrives; then nothing.
    gather(&a, Duration::from_millis(60));
    assert!(gather(&a, Duration::from_millis(200)).is_empty(), "stopped");
    r.apply(start()).unwrap();
    let two = gather(&a, Duration::from_millis(150));
    assert!(two.len() >= 5, "{}", two.len());
    assert_eq!(two[0].bytes[1], 0x80, "a new tone begins with the marker");
    assert_ne!(two[0].ssrc(), one[0].ssrc(), "a new SSRC");
    r.apply(MediaOp::Delete { id: s.id }).unwrap();
    gather(&a, Duration::from_millis(60));
    assert!(gather(&a, Duration::from_millis(200)).is_empty(), "deleted");
    drop(b);
}

#[test]
fn a_tone_toward_an_srtp_leg_is_protected_with_its_key() {
    let r = relay(60_000);
    let (a, b) = (party(), party());
    let ours = SrtpPolicy::from_key_salt(SrtpProfile::AesCm128HmacSha1_80, &[0x5a; 30]).unwrap();
    let spec = LegSpec {
        crypto: CryptoSpec {
            rx: Some(ours.clone()),
            tx: Some(ours.clone()),
        },
        ..leg(&b)
    };
    let s = r.create(leg(&a), spec).unwrap();
    r.apply(MediaOp::Tone {
        id: s.id,
        side: Side::B,
        tone: Some(uk(G711::Pcma, 8)),
    })
    .unwrap();
    let got = gather(&b, Duration::from_millis(300));
    assert!(got.len() >= 12, "{}", got.len());
    let mut rx = SrtpContext::new(&ours).unwrap();
    for g in &got {
        assert_eq!(g.bytes.len(), 182, "172 + the 10-octet tag");
        let mut p = g.bytes.clone();
        let n = rx.unprotect_rtp(&mut p).expect("SRTP with the leg's key");
        assert_eq!(n, 172);
        assert!(!silent(&p[12..n], G711::Pcma), "the first 0.3 s is tone");
    }
}
