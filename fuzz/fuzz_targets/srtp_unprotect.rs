//! Fuzz target: `media::SrtpContext` — unprotecting arbitrary bytes as SRTP
//! and SRTCP, and protect → unprotect round trips of packets built from the
//! input, with tampering.
//!
//! Input: byte 0 picks the profile (`% 3`: `AES_CM_128_HMAC_SHA1_80`,
//! `_32`, `AEAD_AES_128_GCM`), bit 4 clears `encrypt_rtp` and bit 5
//! `encrypt_rtcp` (`UNENCRYPTED_SRTP`/`_SRTCP`); byte 1 (when present) is
//! the sequence-number step to a second packet (1 + byte % 128); the rest is
//! the datagram. The master key and salt are fixed.
//!
//! Invariants:
//! * **Arbitrary bytes never authenticate.** `unprotect_rtp` and
//!   `unprotect_rtcp` on the datagram, with a fresh context, return an error
//!   and never panic; the error is `TooShort` exactly when the datagram is
//!   shorter than the fixed header plus the tag, `Malformed` exactly when the
//!   header (RTP) or version (RTCP) is bad, `AuthFailed` otherwise; exactly
//!   one matching counter goes up; no SSRC state is created.
//! * **Round trip.** An RTP packet (the datagram if it parses as an RTP
//!   header, else a 12-byte header + the datagram) protected by one context
//!   grows by `rtp_overhead`, keeps its header, and unprotects with another
//!   context of the same key to exactly the original bytes; a second packet
//!   `step` sequence numbers later (crossing the 16-bit wrap for a high
//!   sequence number) round-trips too and both sides agree on the ROC; a
//!   replay of the first is `Replay`. The same for RTCP (the datagram if it
//!   is ≥ 8 bytes of version 2, else an 8-byte RR head + the datagram):
//!   grows by `rtcp_overhead`, round-trips, SRTCP indexes 0 then 1, replay
//!   refused.
//! * **Tampering.** Flipping a bit in any byte of a protected packet (the
//!   first 64 header bytes, the index and tag, and up to 48 bytes spread
//!   over the rest) fails with `AuthFailed` (`Malformed` only when the flip
//!   breaks the RTP header / RTCP version) — and a failed packet changes no
//!   state: the genuine packet still unprotects afterwards on the same
//!   context.
#![no_main]

use libfuzzer_sys::fuzz_target;
use media::{
    RtpHeader, RtpHeaderMut, SrtpContext, SrtpCounters, SrtpPolicy, SrtpProfile, UnprotectError,
    RTP_FIXED_HEADER_LEN,
};

const KEY: [u8; 16] = *b"fuzz-master-key!";
const SALT: [u8; 14] = *b"fuzz-salt-1234";

fn policy(data: &[u8]) -> SrtpPolicy {
    let b = data[0];
    let profile = match b % 3 {
        0 => SrtpProfile::AesCm128HmacSha1_80,
        1 => SrtpProfile::AesCm128HmacSha1_32,
        _ => SrtpProfile::AeadAes128Gcm,
    };
    let mut p = SrtpPolicy::new(profile, &KEY, &SALT[..profile.master_salt_len()]).unwrap();
    p.encrypt_rtp = b & 0x10 == 0;
    p.encrypt_rtcp = b & 0x20 == 0;
    p
}

fn errors(c: &SrtpCounters) -> u64 {
    c.auth_failures + c.malformed + c.replays + c.too_old
}

/// Checks that `e` was counted, as the only change from `before`.
fn counted(ctx: &SrtpContext, before: &SrtpCounters, e: UnprotectError) {
    let c = ctx.counters();
    assert_eq!(errors(c), errors(before) + 1, "error {e:?} not counted once: {c:?}");
    let (field, was) = match e {
        UnprotectError::TooShort | UnprotectError::Malformed => (c.malformed, before.malformed),
        UnprotectError::AuthFailed => (c.auth_failures, before.auth_failures),
        UnprotectError::Replay => (c.replays, before.replays),
        UnprotectError::TooOld => (c.too_old, before.too_old),
        _ => panic!("unknown error {e:?}"),
    };
    assert_eq!(field, was + 1, "{e:?} counted in the wrong counter: {c:?}");
    assert_eq!(c.rtp_unprotected, before.rtp_unprotected);
    assert_eq!(c.rtcp_unprotected, before.rtcp_unprotected);
}

fn ssrc_at(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4).map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

/// Phase 1: the datagram as SRTP and as SRTCP on fresh contexts.
fn arbitrary(pol: &SrtpPolicy, dgram: &[u8]) {
    let prof = pol.profile;
    // RTP
    let mut ctx = SrtpContext::new(pol).unwrap();
    let before = *ctx.counters();
    let mut buf = dgram.to_vec();
    let r = ctx.unprotect_rtp(&mut buf);
    let e = match r {
        Ok(n) => {
            let flips_fail = (0..dgram.len()).all(|i| {
                let mut bad = dgram.to_vec();
                bad[i] ^= 1;
                SrtpContext::new(pol).unwrap().unprotect_rtp(&mut bad).is_err()
            });
            panic!(
                "arbitrary {}-byte datagram authenticated as SRTP ({n}); every 1-bit flip fails: {flips_fail}",
                dgram.len()
            )
        }
        Err(e) => e,
    };
    let tag = prof.rtp_tag_len();
    let expected = if dgram.len() < RTP_FIXED_HEADER_LEN + tag {
        UnprotectError::TooShort
    } else if RtpHeader::parse(&dgram[..dgram.len() - tag]).is_err() {
        UnprotectError::Malformed
    } else {
        UnprotectError::AuthFailed
    };
    assert_eq!(e, expected, "unprotect_rtp error");
    counted(&ctx, &before, e);
    if let Some(ssrc) = ssrc_at(dgram, 8) {
        assert_eq!(ctx.rx_roc(ssrc), None, "a failed SRTP packet created SSRC state");
    }
    // HMAC-checked profiles verify before decrypting; no profile touches a
    // packet it refuses before the crypto.
    if prof != SrtpProfile::AeadAes128Gcm || e != UnprotectError::AuthFailed {
        assert_eq!(buf, dgram, "refused SRTP packet was modified");
    }

    // RTCP
    let before = *ctx.counters();
    let mut buf = dgram.to_vec();
    let e = match ctx.unprotect_rtcp(&mut buf) {
        Ok(n) => {
            // Genuine (made with the fixed key) or a verification bug? A
            // genuine packet fails with any one byte flipped.
            let flips_fail = (0..dgram.len()).all(|i| {
                let mut bad = dgram.to_vec();
                bad[i] ^= 1;
                SrtpContext::new(pol).unwrap().unprotect_rtcp(&mut bad).is_err()
            });
            panic!(
                "arbitrary {}-byte datagram authenticated as SRTCP ({n}); every 1-bit flip fails: {flips_fail}",
                dgram.len()
            )
        }
        Err(e) => e,
    };
    let expected = if dgram.len() < 8 + 4 + prof.rtcp_tag_len() {
        UnprotectError::TooShort
    } else if dgram[0] >> 6 != 2 {
        UnprotectError::Malformed
    } else {
        UnprotectError::AuthFailed
    };
    assert_eq!(e, expected, "unprotect_rtcp error");
    counted(&ctx, &before, e);
    if let Some(ssrc) = ssrc_at(dgram, 4) {
        assert_eq!(ctx.rx_srtcp_index(ssrc), None, "a failed SRTCP packet created SSRC state");
    }
    if prof != SrtpProfile::AeadAes128Gcm || e != UnprotectError::AuthFailed {
        assert_eq!(buf, dgram, "refused SRTCP packet was modified");
    }
}

/// The byte positions to tamper with: everything in the first `head` and
/// last `tail` bytes, up to 48 spread over the middle.
fn positions(len: usize, head: usize, tail: usize) -> Vec<usize> {
    let head = head.min(len).min(64);
    let tail_start = len.saturating_sub(tail).max(head);
    let mut v: Vec<usize> = (0..head).collect();
    let middle = tail_start - head;
    let step = middle.div_ceil(48).max(1);
    v.extend((head..tail_start).step_by(step));
    v.extend(tail_start..len);
    v
}

/// Tamper with each chosen byte of `wire` on `rx`; every copy must fail.
fn tamper(
    rx: &mut SrtpContext,
    wire: &[u8],
    head: usize,
    tail: usize,
    rtcp: bool,
    tag_len: usize,
) {
    for (k, i) in positions(wire.len(), head, tail).into_iter().enumerate() {
        let mut bad = wire.to_vec();
        bad[i] ^= 1 << (k % 8);
        let before = *rx.counters();
        let r = if rtcp { rx.unprotect_rtcp(&mut bad) } else { rx.unprotect_rtp(&mut bad) };
        let mut flipped = wire.to_vec();
        flipped[i] ^= 1 << (k % 8);
        let expected = if rtcp {
            if flipped[0] >> 6 != 2 {
                UnprotectError::Malformed
            } else {
                UnprotectError::AuthFailed
            }
        } else if RtpHeader::parse(&flipped[..flipped.len() - tag_len]).is_err() {
            UnprotectError::Malformed
        } else {
            UnprotectError::AuthFailed
        };
        assert_eq!(
            r,
            Err(expected),
            "{} with byte {i} of {} flipped (bit {})",
            if rtcp { "SRTCP" } else { "SRTP" },
            wire.len(),
            k % 8
        );
        counted(rx, &before, expected);
    }
}

/// Phase 2/3 for RTP.
fn rtp_round_trip(pol: &SrtpPolicy, dgram: &[u8], step: u16) {
    let prof = pol.profile;
    let pkt: Vec<u8> = if RtpHeader::parse(dgram).is_ok() {
        dgram.to_vec()
    } else {
        let mut p = vec![0x80, 0, 0xff, 0xf0, 0, 0, 0, 160, 0xca, 0xfe, 0xba, 0xbe];
        p.extend_from_slice(dgram);
        p
    };
    let h = RtpHeader::parse(&pkt).unwrap();
    let (hlen, ssrc, seq) = (h.header_len(), h.ssrc(), h.sequence_number());

    let mut tx = SrtpContext::new(pol).unwrap();
    let mut rx = SrtpContext::new(pol).unwrap();

    // Too little tailroom is refused without touching the packet.
    let mut short = pkt.clone();
    let r = tx.protect_rtp(&mut short, pkt.len());
    assert!(matches!(r, Err(media::ProtectError::BufferTooSmall { .. })), "{r:?}");
    assert_eq!(short, pkt);
    assert_eq!(tx.tx_roc(ssrc), None);

    let protect = |tx: &mut SrtpContext, p: &[u8]| -> Vec<u8> {
        let mut buf = p.to_vec();
        buf.resize(p.len() + prof.rtp_overhead(), 0);
        let n = tx.protect_rtp(&mut buf, p.len()).expect("protect_rtp");
        assert_eq!(n, p.len() + prof.rtp_overhead());
        assert_eq!(buf[..hlen], p[..hlen], "protect changed the RTP header");
        if !pol.encrypt_rtp {
            assert_eq!(buf[..p.len()], *p, "UNENCRYPTED_SRTP changed the payload");
        }
        buf.truncate(n);
        buf
    };
    let wire1 = protect(&mut tx, &pkt);
    assert_eq!(tx.tx_roc(ssrc), Some(0));

    tamper(&mut rx, &wire1, hlen, prof.rtp_tag_len(), false, prof.rtp_tag_len());
    assert_eq!(rx.rx_roc(ssrc), None, "tampered packets created SSRC state");

    let mut buf = wire1.clone();
    let n = rx.unprotect_rtp(&mut buf).expect("genuine SRTP packet refused after tampering");
    assert_eq!(n, pkt.len());
    assert_eq!(buf[..n], pkt[..], "SRTP round trip changed the packet");
    assert_eq!(rx.rx_roc(ssrc), Some(0));

    let mut again = wire1.clone();
    assert_eq!(rx.unprotect_rtp(&mut again), Err(UnprotectError::Replay));

    // A second packet `step` later (across the wrap when seq is high).
    let mut pkt2 = pkt.clone();
    let seq2 = seq.wrapping_add(step);
    RtpHeaderMut::new(&mut pkt2).unwrap().set_sequence_number(seq2);
    let wire2 = protect(&mut tx, &pkt2);
    let roc = u32::from(seq2 < seq);
    assert_eq!(tx.tx_roc(ssrc), Some(roc));
    let mut buf = wire2.clone();
    let n = rx.unprotect_rtp(&mut buf).expect("second SRTP packet refused");
    assert_eq!(buf[..n], pkt2[..], "second SRTP round trip changed the packet");
    assert_eq!(rx.rx_roc(ssrc), Some(roc));
    let c = rx.counters();
    assert_eq!(c.rtp_unprotected, 2);
    assert_eq!(c.replays, 1);
    assert_eq!(tx.counters().rtp_protected, 2);
}

/// Phase 2/3 for RTCP.
fn rtcp_round_trip(pol: &SrtpPolicy, dgram: &[u8]) {
    let prof = pol.profile;
    let pkt: Vec<u8> = if dgram.len() >= 8 && dgram[0] >> 6 == 2 {
        dgram.to_vec()
    } else {
        let mut p = vec![0x80, 201, 0, 1, 0xca, 0xfe, 0xba, 0xbe];
        p.extend_from_slice(dgram);
        p
    };
    let ssrc = ssrc_at(&pkt, 4).unwrap();
    let mut tx = SrtpContext::new(pol).unwrap();
    let mut rx = SrtpContext::new(pol).unwrap();

    let protect = |tx: &mut SrtpContext| -> Vec<u8> {
        let mut buf = pkt.clone();
        buf.resize(pkt.len() + prof.rtcp_overhead(), 0);
        let n = tx.protect_rtcp(&mut buf, pkt.len()).expect("protect_rtcp");
        assert_eq!(n, pkt.len() + prof.rtcp_overhead());
        assert_eq!(buf[..8], pkt[..8], "protect changed the RTCP header/SSRC");
        if !pol.encrypt_rtcp {
            assert_eq!(buf[..pkt.len()], pkt[..], "UNENCRYPTED_SRTCP changed the packet");
        }
        buf
    };
    let wire1 = protect(&mut tx);
    assert_eq!(tx.tx_srtcp_index(ssrc), 1);

    tamper(&mut rx, &wire1, 8, prof.rtcp_overhead(), true, 0);
    assert_eq!(rx.rx_srtcp_index(ssrc), None, "tampered packets created SSRC state");

    let mut buf = wire1.clone();
    let n = rx.unprotect_rtcp(&mut buf).expect("genuine SRTCP packet refused after tampering");
    assert_eq!(n, pkt.len());
    assert_eq!(buf[..n], pkt[..], "SRTCP round trip changed the packet");
    assert_eq!(rx.rx_srtcp_index(ssrc), Some(0));
    let mut again = wire1.clone();
    assert_eq!(rx.unprotect_rtcp(&mut again), Err(UnprotectError::Replay));

    let wire2 = protect(&mut tx);
    // Not `assert_ne!`: a memcmp of two protected packets hands them to
    // libFuzzer's CMP hooks, which then splice genuine SRTCP packets (our
    // fixed key) into inputs; an XOR fold keeps the bytes out of its tables.
    let differs = wire1.iter().zip(&wire2).fold(0u8, |d, (a, b)| d | (a ^ b));
    assert!(std::hint::black_box(differs) != 0, "two SRTCP packets with the same index");
    let mut buf = wire2.clone();
    let n = rx.unprotect_rtcp(&mut buf).expect("second SRTCP packet refused");
    assert_eq!(buf[..n], pkt[..]);
    assert_eq!(rx.rx_srtcp_index(ssrc), Some(1));
    assert_eq!(rx.counters().rtcp_unprotected, 2);
}

fuzz_target!(|data: &[u8]| {
    if data.is_empty() {
        return;
    }
    let pol = policy(data);
    let dgram = &data[1..];
    arbitrary(&pol, dgram);
    let step = 1 + u16::from(dgram.first().copied().unwrap_or(0) % 128);
    rtp_round_trip(&pol, dgram, step);
    rtcp_round_trip(&pol, dgram);
});
