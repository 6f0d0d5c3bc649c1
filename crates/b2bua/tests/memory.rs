//! What an answered call costs the B2BUA in heap memory, counted by a
//! global allocator that tracks live bytes: N carrier → Teams calls are set
//! up and answered, the setup transactions are left to expire, and the live
//! heap per call is printed (`cargo test -p b2bua --test memory -- --nocapture`)
//! and held to a budget so that a change which makes every call fatter fails
//! here rather than in a benchmark weeks later. The relay's share is measured
//! by `crates/relay/tests/memory.rs`; `scripts/bench-calls` measures the whole
//! process.

mod harness;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Duration;

use harness::*;
use sip::Message;

/// Live bytes as requested, and as glibc's malloc would hold them (16-byte
/// granules, 8 bytes of chunk header, 32 bytes at least).
static LIVE: AtomicIsize = AtomicIsize::new(0);
static LIVE_CHUNKS: AtomicIsize = AtomicIsize::new(0);
static ALLOCS: AtomicIsize = AtomicIsize::new(0);
/// Live allocations by size, in 16-byte classes (the last one: 4 KiB and up).
static BY_SIZE: [AtomicIsize; 257] = [const { AtomicIsize::new(0) }; 257];

/// The counters are global: the tests of this file run one at a time
/// (`cargo test` runs tests in parallel; two at once count each other).
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn class(size: usize) -> usize {
    (size / 16).min(256)
}

fn chunk(size: usize) -> isize {
    (size + 8).div_ceil(16).max(2) as isize * 16
}

struct Counting;

// SAFETY: forwards every call to the system allocator unchanged; only counts.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        LIVE_CHUNKS.fetch_add(chunk(l.size()), Ordering::Relaxed);
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        BY_SIZE[class(l.size())].fetch_add(1, Ordering::Relaxed);
        // SAFETY: same layout contract as ours.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        LIVE_CHUNKS.fetch_sub(chunk(l.size()), Ordering::Relaxed);
        ALLOCS.fetch_sub(1, Ordering::Relaxed);
        BY_SIZE[class(l.size())].fetch_sub(1, Ordering::Relaxed);
        // SAFETY: `p` came from `System.alloc` with this layout.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new as isize - l.size() as isize, Ordering::Relaxed);
        LIVE_CHUNKS.fetch_add(chunk(new) - chunk(l.size()), Ordering::Relaxed);
        BY_SIZE[class(l.size())].fetch_sub(1, Ordering::Relaxed);
        BY_SIZE[class(new)].fetch_add(1, Ordering::Relaxed);
        // SAFETY: `p` came from `System.alloc` with layout `l`.
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[derive(Debug, Clone, Copy)]
struct Sample {
    bytes: isize,
    chunks: isize,
    allocs: isize,
    by_size: [isize; 257],
}

fn sample() -> Sample {
    Sample {
        bytes: LIVE.load(Ordering::Relaxed),
        chunks: LIVE_CHUNKS.load(Ordering::Relaxed),
        allocs: ALLOCS.load(Ordering::Relaxed),
        by_size: std::array::from_fn(|i| BY_SIZE[i].load(Ordering::Relaxed)),
    }
}

/// Per-unit growth from `before` to `after` over `n` units; `by_size` in
/// hundredths of an allocation per unit.
fn per_call(before: Sample, after: Sample, n: isize) -> Sample {
    Sample {
        bytes: (after.bytes - before.bytes) / n,
        chunks: (after.chunks - before.chunks) / n,
        allocs: (after.allocs - before.allocs) / n,
        by_size: std::array::from_fn(|i| (after.by_size[i] - before.by_size[i]) * 100 / n),
    }
}

/// The size classes that hold the most, for the printout.
fn top_classes(s: &Sample) -> String {
    let mut v: Vec<(usize, isize)> = s
        .by_size
        .iter()
        .enumerate()
        .filter(|(_, n)| **n != 0)
        .map(|(i, n)| (i, *n))
        .collect();
    v.sort_by_key(|(i, n)| -(*n * (*i as isize * 16 + 8)));
    v.iter()
        .take(12)
        .map(|(i, n)| format!("{}-{} B: {:.2}", i * 16, i * 16 + 15, *n as f64 / 100.0))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Drops what the harness keeps for tests to look at (every message sent,
/// every relay request) so that only the B2BUA's own memory is counted.
fn forget(w: &mut World) {
    w.clear();
    w.log = Vec::new();
    w.packets = Vec::new();
    w.outputs = Vec::new();
    let mut m = w.media();
    m.creates = Vec::new();
    m.updates = Vec::new();
    m.keys = Vec::new();
    m.deletes = Vec::new();
}

/// One carrier → Teams call, answered by sip.pstnhub and ACKed both ways,
/// with a Teams-sized 200 (Contact with x-i, Record-Route, ICE candidates).
fn call(w: &mut World, i: usize) {
    let call_id = format!("{i:08x}-5d1c-4e2a-9f3b-carrier-call@192.0.2.10");
    let headers = vec![
        format!("Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-{i}-carrier"),
        "Max-Forwards: 70".to_owned(),
        format!("From: \"Alice\" <sip:0891234567@192.0.2.10>;tag=c-from-{i}"),
        "To: <sip:030123456@192.0.2.1>".to_owned(),
        format!("Call-ID: {call_id}"),
        "CSeq: 1 INVITE".to_owned(),
        "Contact: <sip:0891234567@192.0.2.10:5060>".to_owned(),
        "Allow: INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, REFER, NOTIFY".to_owned(),
    ];
    let port = 20000 + (i % 20000) as u16 * 2;
    w.carrier_sends(build(
        "INVITE sip:030123456@192.0.2.1:5060 SIP/2.0",
        &headers,
        &carrier_sdp(port, "sendrecv"),
    ));
    let invite = w.take_req(MS[0], "INVITE");
    let ok = answer(
        &invite,
        200,
        &format!("ms-tag-{i}"),
        &[
            "Contact: <sip:api-du-a-euwe.pstnhub.microsoft.com:443;x-i=0a1b2c3d;x-c=f00d/s/1/abc>"
                .to_owned(),
            "Record-Route: <sip:sip-du-a-eu.pstnhub.microsoft.com:5061;transport=tls;lr>"
                .to_owned(),
        ],
        &ms_sdp("52.113.1.1", port, MS_KEY1, "sendrecv"),
    );
    w.ms_sends(0, ok);
    w.take_req(MS[0], "ACK");
    let a_ok = w.take_resp(CARRIER, 200, "INVITE");
    let a_tag = tag(&hdr(&a_ok, "To").expect("To in our 200"));
    let ack: Message = build(
        "ACK sip:030123456@192.0.2.1:5060 SIP/2.0",
        &[
            format!("Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-{i}-ack"),
            "Max-Forwards: 70".to_owned(),
            format!("From: \"Alice\" <sip:0891234567@192.0.2.10>;tag=c-from-{i}"),
            format!("To: <sip:030123456@192.0.2.1>;tag={a_tag}"),
            format!("Call-ID: {call_id}"),
            "CSeq: 1 ACK".to_owned(),
        ],
        "",
    );
    w.carrier_sends(ack);
    forget(w);
}

#[test]
fn an_answered_call_stays_within_its_heap_budget() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    const N: usize = 1000;
    let mut w = World::new();
    // Warm up: the first calls size the maps; then measure on a running B2BUA.
    for i in 0..N {
        call(&mut w, i);
    }
    w.advance(Duration::from_secs(40));
    forget(&mut w);
    let before = sample();
    for i in N..2 * N {
        call(&mut w, i);
    }
    let setup = per_call(before, sample(), N as isize);
    // Transactions linger 64·T1 = 32 s after the call is set up.
    w.advance(Duration::from_secs(40));
    forget(&mut w);
    let held = per_call(before, sample(), N as isize);
    assert_eq!(w.b.active_calls(), 2 * N, "every call still up");
    println!(
        "b2bua heap per answered call ({N} calls): {} B requested, ~{} B in malloc chunks, {} allocations; \
         right after setup (with its transactions): {} B requested, ~{} B in chunks",
        held.bytes, held.chunks, held.allocs, setup.bytes, setup.chunks
    );
    println!("  by size, allocations per call: {}", top_classes(&held));
    println!("  right after setup: {}", top_classes(&setup));
    // The budget: the whole process must stay ≤ 16 KiB per call with the
    // relay's share beside this (see docs/performance.md).
    assert!(
        held.chunks <= 8 * 1024,
        "an answered call holds {} B of heap in the B2BUA (budget 8 KiB)",
        held.chunks
    );
}

/// The relay's side of the same calls: a session per call as `sbc run`
/// creates it (carrier leg plain RTP, Microsoft leg SRTP with both keys),
/// real sockets on loopback, one worker.
#[test]
fn a_relay_session_stays_within_its_heap_budget() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    use media::CryptoAttribute;
    use relay::{CryptoSpec, LegSpec, Relay, RelayConfig};
    const N: usize = 500;
    let r = Relay::start(RelayConfig {
        port_min: 44000,
        port_max: 48999,
        workers: 1,
        ..RelayConfig::default()
    })
    .expect("relay starts");
    let policy = |key: &str| {
        CryptoAttribute::parse(&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{key}|2^31"))
            .expect("crypto line")
            .srtp_policy()
            .expect("policy")
    };
    let create = |i: usize| {
        let port = 30000 + (i as u16) * 2;
        let a = LegSpec {
            remote_rtp: Some(addr(&format!("127.0.0.1:{port}"))),
            remote_rtcp: Some(addr(&format!("127.0.0.1:{}", port + 1))),
            ..LegSpec::default()
        };
        let b = LegSpec {
            remote_rtp: Some(addr(&format!("127.0.0.2:{port}"))),
            remote_rtcp: Some(addr(&format!("127.0.0.2:{}", port + 1))),
            crypto: CryptoSpec {
                rx: Some(policy(MS_KEY1)),
                tx: Some(policy(MS_KEY2)),
            },
            ..LegSpec::default()
        };
        r.create(a, b).expect("session").id
    };
    // Warm up (tables sized), then measure on top.
    let warm: Vec<u64> = (0..N).map(create).collect();
    let before = sample();
    let ids: Vec<u64> = (N..2 * N).map(create).collect();
    // The worker installs sessions asynchronously: wait until it has.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while r.ports_in_use() < 8 * N && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(200));
    let held = per_call(before, sample(), N as isize);
    println!(
        "relay heap per session ({N} sessions, RTP ⇄ SRTP): {} B requested, ~{} B in malloc chunks, {} allocations",
        held.bytes, held.chunks, held.allocs
    );
    println!("  by size, allocations per session: {}", top_classes(&held));
    for id in warm.into_iter().chain(ids) {
        r.delete(id).expect("delete");
    }
    assert!(
        held.chunks <= 6 * 1024,
        "a relay session holds {} B of heap (budget 6 KiB)",
        held.chunks
    );
}
