//! Behaviour of contexts: ROC, replay, tampering, re-keying, SRTCP.

use super::*;

const PROFILES: [SrtpProfile; 3] = [
    SrtpProfile::AesCm128HmacSha1_80,
    SrtpProfile::AesCm128HmacSha1_32,
    SrtpProfile::AeadAes128Gcm,
];

const SSRC: u32 = 0xcafe_babe;

fn policy_with(profile: SrtpProfile, seed: u8) -> SrtpPolicy {
    let key: Vec<u8> = (0..16)
        .map(|i| seed.wrapping_mul(31).wrapping_add(i))
        .collect();
    let salt: Vec<u8> = (0..profile.master_salt_len() as u8)
        .map(|i| seed ^ (0xa0 + i))
        .collect();
    SrtpPolicy::new(profile, &key, &salt).unwrap()
}

fn policy(profile: SrtpProfile) -> SrtpPolicy {
    policy_with(profile, 1)
}

/// A 172-byte RTP packet (12-byte header, 160-byte payload) in a buffer
/// with 32 bytes of tailroom; returns (buffer, RTP length).
fn rtp(ssrc: u32, seq: u16) -> (Vec<u8>, usize) {
    let mut b = vec![0u8; 172 + 32];
    b[0] = 0x80;
    b[2..4].copy_from_slice(&seq.to_be_bytes());
    b[4..8].copy_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    b[8..12].copy_from_slice(&ssrc.to_be_bytes());
    for (i, x) in b[12..172].iter_mut().enumerate() {
        *x = (i as u8) ^ (seq as u8);
    }
    (b, 172)
}

/// Protects `seq` with `tx`; returns the SRTP datagram.
fn srtp(tx: &mut SrtpContext, ssrc: u32, seq: u16) -> Vec<u8> {
    let (mut b, len) = rtp(ssrc, seq);
    let n = tx.protect_rtp(&mut b, len).unwrap();
    b.truncate(n);
    b
}

/// Unprotects a copy of `pkt` and checks it against the plaintext for `seq`.
fn open(rx: &mut SrtpContext, pkt: &[u8]) -> Result<(), UnprotectError> {
    let mut b = pkt.to_vec();
    let n = rx.unprotect_rtp(&mut b)?;
    let seq = u16::from_be_bytes([b[2], b[3]]);
    let ssrc = u32::from_be_bytes([b[8], b[9], b[10], b[11]]);
    let (plain, len) = rtp(ssrc, seq);
    assert_eq!(b[..n], plain[..len]);
    Ok(())
}

fn rtcp_rr(ssrc: u32) -> (Vec<u8>, usize) {
    let mut b = vec![0u8; 8 + 24 + 32];
    b[..4].copy_from_slice(&[0x81, 201, 0, 7]);
    b[4..8].copy_from_slice(&ssrc.to_be_bytes());
    for (i, x) in b[8..32].iter_mut().enumerate() {
        *x = i as u8;
    }
    (b, 32)
}

#[test]
fn roc_increments_across_sequence_wrap() {
    for profile in PROFILES {
        let mut tx = SrtpContext::new(&policy(profile)).unwrap();
        let mut rx = SrtpContext::new(&policy(profile)).unwrap();
        for seq in (65530..=65535).chain(0..=9) {
            let p = srtp(&mut tx, SSRC, seq);
            open(&mut rx, &p).unwrap();
            let roc = u32::from(seq < 100);
            assert_eq!(tx.tx_roc(SSRC), Some(roc), "{profile} tx seq {seq}");
            assert_eq!(rx.rx_roc(SSRC), Some(roc), "{profile} rx seq {seq}");
        }
        // A receiver that joins after the wrap (first packet seq 10) takes
        // ROC 0 and cannot authenticate: the ROC is part of the tag / IV.
        let p = srtp(&mut tx, SSRC, 10);
        let mut late_joiner = SrtpContext::new(&policy(profile)).unwrap();
        assert_eq!(open(&mut late_joiner, &p), Err(UnprotectError::AuthFailed));
        open(&mut rx, &p).unwrap();
        assert_eq!(rx.counters().rtp_unprotected, 17);
    }
}

#[test]
fn late_packet_before_wrap_uses_previous_roc() {
    for profile in PROFILES {
        let mut tx = SrtpContext::new(&policy(profile)).unwrap();
        let mut rx = SrtpContext::new(&policy(profile)).unwrap();
        // The sender itself forwards 65535 after 0 (a relay seeing reordering).
        let p65534 = srtp(&mut tx, SSRC, 65534);
        let p0 = srtp(&mut tx, SSRC, 0);
        let p65535 = srtp(&mut tx, SSRC, 65535);
        let p1 = srtp(&mut tx, SSRC, 1);
        assert_eq!(tx.tx_roc(SSRC), Some(1));
        // The receiver gets them in yet another order.
        open(&mut rx, &p65534).unwrap();
        open(&mut rx, &p0).unwrap();
        open(&mut rx, &p1).unwrap();
        assert_eq!(rx.rx_roc(SSRC), Some(1));
        open(&mut rx, &p65535).unwrap();
        assert_eq!(
            rx.rx_roc(SSRC),
            Some(1),
            "a late packet does not move the ROC"
        );
        assert_eq!(open(&mut rx, &p65535), Err(UnprotectError::Replay));
    }
}

#[test]
fn replayed_packet_is_rejected() {
    for profile in PROFILES {
        let mut tx = SrtpContext::new(&policy(profile)).unwrap();
        let mut rx = SrtpContext::new(&policy(profile)).unwrap();
        let a = srtp(&mut tx, SSRC, 7);
        let b = srtp(&mut tx, SSRC, 8);
        open(&mut rx, &a).unwrap();
        open(&mut rx, &b).unwrap();
        assert_eq!(open(&mut rx, &a), Err(UnprotectError::Replay));
        assert_eq!(open(&mut rx, &b), Err(UnprotectError::Replay));
        assert_eq!(rx.counters().replays, 2);
        assert_eq!(rx.counters().rtp_unprotected, 2);
    }
}

#[test]
fn packet_older_than_window_is_rejected() {
    for profile in PROFILES {
        let mut pol = policy(profile);
        pol.replay_window = 64;
        let mut tx = SrtpContext::new(&pol).unwrap();
        let mut rx = SrtpContext::new(&pol).unwrap();
        let old: Vec<_> = (100..=200).map(|s| srtp(&mut tx, SSRC, s)).collect();
        open(&mut rx, &old[100]).unwrap(); // seq 200
        open(&mut rx, &old[37]).unwrap(); // seq 137: 63 behind, inside
        assert_eq!(open(&mut rx, &old[36]), Err(UnprotectError::TooOld)); // 64 behind
        assert_eq!(open(&mut rx, &old[0]), Err(UnprotectError::TooOld));
        assert_eq!(rx.counters().too_old, 2);
        // A larger window accepts the same packet.
        pol.replay_window = 128;
        let mut wide = SrtpContext::new(&pol).unwrap();
        open(&mut wide, &old[100]).unwrap();
        open(&mut wide, &old[36]).unwrap();
    }
}

#[test]
fn replay_window_can_be_turned_off() {
    let mut pol = policy(SrtpProfile::AesCm128HmacSha1_80);
    pol.replay_window = 0;
    let mut tx = SrtpContext::new(&pol).unwrap();
    let mut rx = SrtpContext::new(&pol).unwrap();
    let a = srtp(&mut tx, SSRC, 1000);
    open(&mut rx, &a).unwrap();
    open(&mut rx, &a).unwrap();
    let old = srtp(&mut tx, SSRC, 1);
    open(&mut rx, &old).unwrap();
    assert_eq!(rx.counters().replays, 0);
}

#[test]
fn tampered_packet_fails_auth_and_is_counted() {
    for profile in PROFILES {
        let mut tx = SrtpContext::new(&policy(profile)).unwrap();
        let mut rx = SrtpContext::new(&policy(profile)).unwrap();
        open(&mut rx, &srtp(&mut tx, SSRC, 500)).unwrap();
        let good = srtp(&mut tx, SSRC, 501);
        let mut failures = 0;
        for at in [1, 3, 7, 11, 12, 100, good.len() - 5, good.len() - 1] {
            let mut bad = good.clone();
            // (0x10 keeps a flipped sequence number off the one already received,
            // which would be a replay, checked before the tag.)
            bad[at] ^= 0x10;
            assert_eq!(
                open(&mut rx, &bad),
                Err(UnprotectError::AuthFailed),
                "{profile} bit at {at}"
            );
            failures += 1;
        }
        // A forged packet far ahead (would be the next ROC) changes nothing.
        let mut forged = srtp(&mut tx, SSRC, 40_000);
        let last = forged.len() - 1;
        forged[last] ^= 0x80;
        assert_eq!(open(&mut rx, &forged), Err(UnprotectError::AuthFailed));
        failures += 1;
        assert_eq!(rx.counters().auth_failures, failures);
        assert_eq!(rx.rx_roc(SSRC), Some(0));
        // The genuine packet still goes through, once.
        open(&mut rx, &good).unwrap();
        // Wrong key: every packet fails.
        let mut other = SrtpContext::new(&policy_with(profile, 2)).unwrap();
        assert_eq!(open(&mut other, &good), Err(UnprotectError::AuthFailed));
        assert_eq!(
            other.rx_roc(SSRC),
            None,
            "no SSRC state before a packet authenticates"
        );
    }
}

#[test]
fn rekey_starts_a_fresh_context_with_roc_zero() {
    for profile in PROFILES {
        let key_a = policy_with(profile, 1);
        let key_b = policy_with(profile, 2);
        assert!(!key_a.same_key(&key_b));
        let mut tx = SrtpContext::new(&key_a).unwrap();
        let mut rx = SrtpContext::new(&key_a).unwrap();
        // Half an hour of 20 ms packets wraps the 16-bit sequence number.
        for seq in (65_000..=65_535).chain(0..=20) {
            open(&mut rx, &srtp(&mut tx, SSRC, seq)).unwrap();
        }
        assert_eq!((tx.tx_roc(SSRC), rx.rx_roc(SSRC)), (Some(1), Some(1)));

        // Re-INVITE with a new key: both sides start over at ROC 0, as
        // Microsoft's media processors do.
        tx.rekey(&key_b).unwrap();
        rx.rekey(&key_b).unwrap();
        assert_eq!((tx.tx_roc(SSRC), rx.rx_roc(SSRC)), (None, None));
        let p = srtp(&mut tx, SSRC, 21);
        assert_eq!(tx.tx_roc(SSRC), Some(0));
        open(&mut rx, &p).unwrap();
        assert_eq!(rx.rx_roc(SSRC), Some(0));
        // A fresh context for the new key (what the peer has) agrees.
        let mut peer = SrtpContext::new(&key_b).unwrap();
        open(&mut peer, &p).unwrap();
        // Counters survive the re-key.
        assert_eq!(rx.counters().rtp_unprotected, 536 + 21 + 1);

        // The rtpengine #1443 failure: a sender that keeps ROC 1 under the
        // new key is not understood by a peer that reset to ROC 0.
        let mut kept_roc = SrtpContext::new(&key_b).unwrap();
        for seq in (65_530..=65_535).chain(0..=21) {
            srtp(&mut kept_roc, SSRC, seq);
        }
        let p = srtp(&mut kept_roc, SSRC, 22);
        let mut peer = SrtpContext::new(&key_b).unwrap();
        assert_eq!(open(&mut peer, &p), Err(UnprotectError::AuthFailed));
    }
}

#[test]
fn same_key_reoffer_keeps_the_context() {
    let a = policy(SrtpProfile::AesCm128HmacSha1_80);
    let mut b = a.clone();
    b.replay_window = 256;
    assert!(a.same_key(&b));
    assert_ne!(a, b);
}

#[test]
fn srtcp_index_and_e_bit() {
    for profile in PROFILES {
        for encrypt in [true, false] {
            let mut pol = policy(profile);
            pol.encrypt_rtcp = encrypt;
            let mut tx = SrtpContext::new(&pol).unwrap();
            let mut rx = SrtpContext::new(&pol).unwrap();
            let mut sent = Vec::new();
            for i in 0..3u32 {
                assert_eq!(tx.tx_srtcp_index(SSRC), i);
                let (mut b, len) = rtcp_rr(SSRC);
                let n = tx.protect_rtcp(&mut b, len).unwrap();
                assert_eq!(n, len + profile.rtcp_overhead());
                let at = if profile == SrtpProfile::AeadAes128Gcm {
                    n - 4
                } else {
                    len
                };
                let e_index = u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
                assert_eq!(e_index & 0x7fff_ffff, i, "{profile} index");
                assert_eq!(e_index >> 31 == 1, encrypt, "{profile} E bit");
                // Header always in clear; the rest only without E.
                assert_eq!(b[..8], rtcp_rr(SSRC).0[..8]);
                assert_eq!(b[8..len] == rtcp_rr(SSRC).0[8..len], !encrypt);
                b.truncate(n);
                sent.push(b);
            }
            // Delivered out of order, each once.
            for i in [2, 0, 1] {
                let mut b = sent[i].clone();
                let n = rx.unprotect_rtcp(&mut b).unwrap();
                assert_eq!(b[..n], rtcp_rr(SSRC).0[..32]);
            }
            assert_eq!(rx.rx_srtcp_index(SSRC), Some(2));
            let mut again = sent[1].clone();
            assert_eq!(rx.unprotect_rtcp(&mut again), Err(UnprotectError::Replay));
            // Flipping the E bit is detected (it is authenticated).
            let mut flipped = sent[0].clone();
            let at = if profile == SrtpProfile::AeadAes128Gcm {
                flipped.len() - 4
            } else {
                32
            };
            flipped[at] ^= 0x80;
            let mut fresh = SrtpContext::new(&pol).unwrap();
            assert_eq!(
                fresh.unprotect_rtcp(&mut flipped),
                Err(UnprotectError::AuthFailed)
            );
            assert_eq!(rx.counters().rtcp_unprotected, 3);
            assert_eq!(tx.counters().rtcp_protected, 3);
        }
    }
}

#[test]
fn srtcp_index_exhaustion_needs_a_rekey() {
    let mut tx = SrtpContext::new(&policy(SrtpProfile::AesCm128HmacSha1_80)).unwrap();
    tx.set_tx_srtcp_index(SSRC, 0x7fff_ffff);
    let (mut b, len) = rtcp_rr(SSRC);
    tx.protect_rtcp(&mut b, len).unwrap();
    let (mut b, len) = rtcp_rr(SSRC);
    assert_eq!(
        tx.protect_rtcp(&mut b, len),
        Err(ProtectError::KeyExhausted)
    );
    assert_eq!(tx.counters().protect_failures, 1);
}

#[test]
fn profiles_have_the_rfc_overheads() {
    use SrtpProfile::*;
    assert_eq!(
        [AesCm128HmacSha1_80, AesCm128HmacSha1_32, AeadAes128Gcm].map(SrtpProfile::rtp_overhead),
        [10, 4, 16]
    );
    assert_eq!(
        [AesCm128HmacSha1_80, AesCm128HmacSha1_32, AeadAes128Gcm].map(SrtpProfile::rtcp_overhead),
        [14, 14, 20]
    );
    for p in PROFILES {
        assert_eq!(SrtpProfile::from_sdes_name(p.sdes_name()), Some(p));
        let mut tx = SrtpContext::new(&policy(p)).unwrap();
        let (mut b, len) = rtp(SSRC, 1);
        assert_eq!(tx.protect_rtp(&mut b, len), Ok(len + p.rtp_overhead()));
    }
}

#[test]
fn missing_tailroom_and_malformed_input_are_errors_not_panics() {
    for profile in PROFILES {
        let mut ctx = SrtpContext::new(&policy(profile)).unwrap();
        let (b, len) = rtp(SSRC, 1);
        let mut tight = b[..len + profile.rtp_overhead() - 1].to_vec();
        assert_eq!(
            ctx.protect_rtp(&mut tight, len),
            Err(ProtectError::BufferTooSmall {
                needed: len + profile.rtp_overhead()
            })
        );
        assert_eq!(
            ctx.protect_rtp(&mut tight, 1000),
            Err(ProtectError::Malformed)
        );
        let mut not_rtp = [0x40u8; 40];
        assert_eq!(
            ctx.protect_rtp(&mut not_rtp, 20),
            Err(ProtectError::Malformed)
        );
        assert_eq!(
            ctx.protect_rtcp(&mut not_rtp, 20),
            Err(ProtectError::Malformed)
        );
        assert_eq!(
            ctx.unprotect_rtp(&mut [0x80; 5]),
            Err(UnprotectError::TooShort)
        );
        assert_eq!(
            ctx.unprotect_rtcp(&mut [0x80; 5]),
            Err(UnprotectError::TooShort)
        );
        assert_eq!(
            ctx.unprotect_rtp(&mut not_rtp),
            Err(UnprotectError::Malformed)
        );
        assert_eq!(
            ctx.unprotect_rtcp(&mut not_rtp),
            Err(UnprotectError::Malformed)
        );
        // CSRC count larger than the packet.
        let mut cc = [0u8; 40];
        cc[0] = 0x8f;
        assert_eq!(ctx.unprotect_rtp(&mut cc), Err(UnprotectError::Malformed));
        assert_eq!(ctx.counters().malformed, 8);
        assert_eq!(ctx.counters().protect_failures, 1);
    }
}

#[test]
fn ssrc_table_forgets_least_recently_used() {
    let mut pol = policy(SrtpProfile::AesCm128HmacSha1_80);
    pol.max_ssrcs = 2;
    let mut tx = SrtpContext::new(&pol).unwrap();
    let mut rx = SrtpContext::new(&pol).unwrap();
    for (ssrc, seq) in [(1, 10), (2, 10), (1, 11), (3, 10)] {
        open(&mut rx, &srtp(&mut tx, ssrc, seq)).unwrap();
    }
    assert_eq!(rx.counters().ssrc_evictions, 1);
    assert_eq!(tx.counters().ssrc_evictions, 1);
    assert_eq!(rx.rx_roc(2), None);
    assert_eq!(rx.rx_roc(1), Some(0));
    assert_eq!(rx.rx_roc(3), Some(0));
}

#[test]
fn policy_checks() {
    let p = SrtpProfile::AesCm128HmacSha1_80;
    assert_eq!(
        SrtpPolicy::new(p, &[0; 15], &[0; 14]),
        Err(SrtpError::KeyLength {
            expected: 16,
            found: 15
        })
    );
    assert_eq!(
        SrtpPolicy::new(SrtpProfile::AeadAes128Gcm, &[0; 16], &[0; 14]),
        Err(SrtpError::SaltLength {
            expected: 12,
            found: 14
        })
    );
    assert_eq!(
        SrtpPolicy::from_key_salt(p, &[0; 29]),
        Err(SrtpError::KeyLength {
            expected: 30,
            found: 29
        })
    );
    let mut pol = policy(p);
    pol.replay_window = 63;
    assert_eq!(
        SrtpContext::new(&pol).err(),
        Some(SrtpError::ReplayWindow(63))
    );
    pol.replay_window = MAX_REPLAY_WINDOW + 1;
    assert!(SrtpContext::new(&pol).is_err());
    pol.replay_window = 100;
    let ctx = SrtpContext::new(&pol).unwrap();
    assert!(format!("{ctx:?}").contains("replay_window: 128"));
    pol.max_ssrcs = 0;
    assert_eq!(SrtpContext::new(&pol).err(), Some(SrtpError::MaxSsrcs));
    assert!(!format!("{pol:?}").contains(&format!("{:?}", pol.master_key())));
}

#[test]
fn contexts_move_between_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<SrtpContext>();
    send_sync::<SrtpPolicy>();
}
