//! Cross-check against webrtc-rs `webrtc-srtp` (an independent implementation
//! that interoperates with libsrtp), both directions, for every profile,
//! across a sequence-number wrap (ROC 0 → 1), with SRTCP too.

use media::{SrtpContext, SrtpPolicy, SrtpProfile, UnprotectError};
use webrtc_srtp::context::Context;
use webrtc_srtp::option::{srtcp_replay_protection, srtp_replay_protection};
use webrtc_srtp::protection_profile::ProtectionProfile;

const SSRC: u32 = 0x1234_5678;
/// From 65,000 across the wrap at 65,536 and on: 1,200 packets.
const FIRST_SEQ: u32 = 65_000;
const COUNT: u32 = 1_200;

fn profiles() -> [(SrtpProfile, ProtectionProfile); 3] {
    [
        (
            SrtpProfile::AesCm128HmacSha1_80,
            ProtectionProfile::Aes128CmHmacSha1_80,
        ),
        (
            SrtpProfile::AesCm128HmacSha1_32,
            ProtectionProfile::Aes128CmHmacSha1_32,
        ),
        (SrtpProfile::AeadAes128Gcm, ProtectionProfile::AeadAes128Gcm),
    ]
}

fn keys(profile: SrtpProfile) -> (Vec<u8>, Vec<u8>) {
    let key: Vec<u8> = (0..16).map(|i| 0x11 * (i % 15) as u8 + 3).collect();
    let salt: Vec<u8> = (0..profile.master_salt_len())
        .map(|i| 0xe0 ^ i as u8)
        .collect();
    (key, salt)
}

fn ours(profile: SrtpProfile) -> SrtpContext {
    let (k, s) = keys(profile);
    SrtpContext::new(&SrtpPolicy::new(profile, &k, &s).unwrap()).unwrap()
}

fn theirs(ours: SrtpProfile, theirs: ProtectionProfile) -> Context {
    let (k, s) = keys(ours);
    Context::new(
        &k,
        &s,
        theirs,
        Some(srtp_replay_protection(128)),
        Some(srtcp_replay_protection(128)),
    )
    .unwrap()
}

/// RTP with a CSRC and a one-byte header extension, 160-byte payload.
fn rtp(seq: u16) -> Vec<u8> {
    let mut p = vec![0x91, 0x00];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq).wrapping_mul(160)).to_be_bytes());
    p.extend_from_slice(&SSRC.to_be_bytes());
    p.extend_from_slice(&0xdead_beefu32.to_be_bytes());
    p.extend_from_slice(&[0xbe, 0xde, 0, 1, 0x10, 0x7f, 0, 0]);
    p.extend((0..160).map(|i| (i as u8).wrapping_add(seq as u8)));
    p
}

fn rtcp(n: u8) -> Vec<u8> {
    // SR with no report blocks and an SDES CNAME chunk.
    let mut p = vec![0x80, 200, 0, 6];
    p.extend_from_slice(&SSRC.to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, n, 0, 0, 0, 0, 0, 0, 0, n, 0, 0, 0, n, 0, 0, 0, n]);
    p.extend_from_slice(&[0x81, 202, 0, 3]);
    p.extend_from_slice(&SSRC.to_be_bytes());
    p.extend_from_slice(&[1, 3, b's', b'b', b'c', 0, 0, 0]);
    p
}

fn seqs() -> impl Iterator<Item = u16> {
    (FIRST_SEQ..FIRST_SEQ + COUNT).map(|s| s as u16)
}

#[test]
fn ours_protects_webrtc_srtp_unprotects_across_roc_wrap() {
    for (p, w) in profiles() {
        let mut tx = ours(p);
        let mut rx = theirs(p, w);
        for seq in seqs() {
            let plain = rtp(seq);
            let mut buf = plain.clone();
            buf.resize(plain.len() + p.rtp_overhead(), 0);
            let n = tx.protect_rtp(&mut buf, plain.len()).unwrap();
            let got = rx
                .decrypt_rtp(&buf[..n])
                .unwrap_or_else(|e| panic!("{p} seq {seq}: {e}"));
            assert_eq!(&got[..], &plain[..], "{p} seq {seq}");
        }
        assert_eq!(tx.tx_roc(SSRC), Some(1));
        for i in 0..20 {
            let plain = rtcp(i);
            let mut buf = plain.clone();
            buf.resize(plain.len() + p.rtcp_overhead(), 0);
            let n = tx.protect_rtcp(&mut buf, plain.len()).unwrap();
            let got = rx
                .decrypt_rtcp(&buf[..n])
                .unwrap_or_else(|e| panic!("{p} SRTCP {i}: {e}"));
            assert_eq!(&got[..], &plain[..], "{p} SRTCP {i}");
        }
    }
}

#[test]
fn webrtc_srtp_protects_ours_unprotects_across_roc_wrap_with_reordering() {
    for (p, w) in profiles() {
        let mut tx = theirs(p, w);
        let mut rx = ours(p);
        let mut packets: Vec<(u16, Vec<u8>)> = seqs()
            .map(|seq| (seq, tx.encrypt_rtp(&rtp(seq)).unwrap().to_vec()))
            .collect();
        // Swap neighbours every 7 packets, including around the wrap, and
        // deliver one packet twice.
        for i in (3..packets.len() - 1).step_by(7) {
            packets.swap(i, i + 1);
        }
        let wrap = packets.iter().position(|(s, _)| *s == 0).unwrap();
        packets.swap(wrap - 1, wrap);
        let dup = packets[wrap].clone();
        packets.insert(wrap + 3, dup);
        let mut replays = 0;
        for (seq, pkt) in &packets {
            let mut buf = pkt.clone();
            match rx.unprotect_rtp(&mut buf) {
                Ok(n) => assert_eq!(buf[..n], rtp(*seq)[..], "{p} seq {seq}"),
                Err(UnprotectError::Replay) => replays += 1,
                Err(e) => panic!("{p} seq {seq}: {e}"),
            }
        }
        assert_eq!(replays, 1);
        assert_eq!(rx.counters().rtp_unprotected, u64::from(COUNT));
        assert_eq!(rx.rx_roc(SSRC), Some(1));
        for i in 0..20 {
            let plain = rtcp(i);
            let mut buf = tx.encrypt_rtcp(&plain).unwrap().to_vec();
            let n = rx
                .unprotect_rtcp(&mut buf)
                .unwrap_or_else(|e| panic!("{p} SRTCP {i}: {e}"));
            assert_eq!(buf[..n], plain[..], "{p} SRTCP {i}");
        }
        // webrtc-srtp numbers SRTCP from 1.
        assert_eq!(rx.rx_srtcp_index(SSRC), Some(20));
    }
}

#[test]
fn both_agree_byte_for_byte() {
    // Same key, same packets: identical SRTP from both implementations.
    for (p, w) in profiles() {
        let mut a = ours(p);
        let mut b = theirs(p, w);
        for seq in (65_530..=65_535).chain(0..=9) {
            let plain = rtp(seq);
            let mut buf = plain.clone();
            buf.resize(plain.len() + p.rtp_overhead(), 0);
            let n = a.protect_rtp(&mut buf, plain.len()).unwrap();
            assert_eq!(
                buf[..n],
                b.encrypt_rtp(&plain).unwrap()[..],
                "{p} seq {seq}"
            );
        }
    }
}
