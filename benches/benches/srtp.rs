//! Criterion benchmarks of the relay's SRTP (crates/media): protect and
//! unprotect of one 172-byte RTP packet (12-byte header + 160 bytes of
//! G.711, 20 ms) in place, for `AES_CM_128_HMAC_SHA1_80`,
//! `AES_CM_128_HMAC_SHA1_32` and `AEAD_AES_128_GCM`, replay window on.
//!
//! Run with `taskset -c 1 cargo bench -p sbc-benches --bench srtp`.
//! Goals: CM_80 ≤ 250 ns and GCM ≤ 120 ns per packet (docs/media.md).
//! Each measured call gets a fresh packet with the next sequence number
//! (made outside the timed section), so the ROC estimate and the replay
//! window do their real work and no packet is a replay.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use media::{SrtpContext, SrtpPolicy, SrtpProfile};

const RTP_LEN: usize = 172;
const SSRC: u32 = 0x5bc0_0001;

/// A 172-byte RTP packet with sequence number `seq`, in a buffer with
/// 32 bytes of tailroom.
fn rtp(seq: u16) -> [u8; RTP_LEN + 32] {
    let mut b = [0xd5u8; RTP_LEN + 32];
    b[..12].copy_from_slice(&[0x80, 0x08, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    b[2..4].copy_from_slice(&seq.to_be_bytes());
    b[4..8].copy_from_slice(&u32::from(seq).wrapping_mul(160).to_be_bytes());
    b[8..12].copy_from_slice(&SSRC.to_be_bytes());
    b
}

fn context(profile: SrtpProfile) -> SrtpContext {
    let key: Vec<u8> = (1..=16).collect();
    let salt: Vec<u8> = (0..profile.master_salt_len() as u8)
        .map(|i| 0xa0 + i)
        .collect();
    SrtpContext::new(&SrtpPolicy::new(profile, &key, &salt).expect("valid lengths"))
        .expect("valid policy")
}

fn bench_profile(c: &mut Criterion, profile: SrtpProfile) {
    let mut g = c.benchmark_group(format!("srtp/{}", profile.sdes_name()));
    g.throughput(Throughput::Elements(1));

    let mut tx = context(profile);
    let mut seq = 0u16;
    g.bench_function("protect", |b| {
        b.iter_batched_ref(
            || {
                seq = seq.wrapping_add(1);
                rtp(seq)
            },
            |buf| tx.protect_rtp(buf, RTP_LEN).expect("protect"),
            BatchSize::SmallInput,
        )
    });

    let mut tx = context(profile);
    let mut rx = context(profile);
    let mut seq = 0u16;
    let n = RTP_LEN + profile.rtp_overhead();
    g.bench_function("unprotect", |b| {
        b.iter_batched_ref(
            || {
                seq = seq.wrapping_add(1);
                let mut buf = rtp(seq);
                tx.protect_rtp(&mut buf, RTP_LEN).expect("protect");
                buf
            },
            |buf| rx.unprotect_rtp(&mut buf[..n]).expect("unprotect"),
            BatchSize::SmallInput,
        )
    });
    g.finish();
    assert_eq!(rx.counters().replays + rx.counters().auth_failures, 0);
}

/// SRTCP protect of a 52-byte receiver report (8-byte header + RR block +
/// SDES-less padding). For AES-CM the context keeps only the SRTCP session
/// keys and expands the transform per packet (docs/media.md, memory): this
/// shows what that costs.
fn bench_rtcp(c: &mut Criterion, profile: SrtpProfile) {
    const RR: usize = 52;
    let mut g = c.benchmark_group(format!("srtcp/{}", profile.sdes_name()));
    g.throughput(Throughput::Elements(1));
    let mut tx = context(profile);
    g.bench_function("protect", |b| {
        b.iter_batched_ref(
            || {
                let mut p = [0u8; RR + 64];
                p[..8].copy_from_slice(&[0x81, 201, 0, 12, 0x5b, 0xc0, 0, 1]);
                p
            },
            |buf| tx.protect_rtcp(buf, RR).expect("protect"),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn srtp(c: &mut Criterion) {
    for profile in [
        SrtpProfile::AesCm128HmacSha1_80,
        SrtpProfile::AesCm128HmacSha1_32,
        SrtpProfile::AeadAes128Gcm,
    ] {
        bench_profile(c, profile);
        bench_rtcp(c, profile);
    }
}

criterion_group!(benches, srtp);
criterion_main!(benches);
