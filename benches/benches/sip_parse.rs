//! Criterion benchmarks of SIP parsing on a ~1 KB Teams-style INVITE:
//! `sbc-sip/parse`, `sbc-sip/parse+typed`, `rsip/parse`, `rsip/parse+typed`.
//!
//! Run with `cargo bench -p sbc-benches --bench sip_parse` (or `scripts/bench-sip`).
//! Throughput is reported in messages per second (one element = one message).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sbc_benches::{shared_invite, TEAMS_INVITE};

#[path = "../sip_cases.rs"]
mod sip_cases;

fn sbc_sip(c: &mut Criterion) {
    // Built once; clones inside the loop are reference-count bumps.
    let src = shared_invite();
    let mut g = c.benchmark_group("sbc-sip");
    g.throughput(Throughput::Elements(1));
    g.bench_function("parse", |b| b.iter(|| sip_cases::sbc_parse(src.clone())));
    g.bench_function("parse+typed", |b| {
        b.iter(|| sip_cases::sbc_parse_typed(src.clone()))
    });
    g.finish();
}

fn rsip(c: &mut Criterion) {
    let mut g = c.benchmark_group("rsip");
    g.throughput(Throughput::Elements(1));
    g.bench_function("parse", |b| b.iter(|| sip_cases::rsip_parse(TEAMS_INVITE)));
    g.bench_function("parse+typed", |b| {
        b.iter(|| sip_cases::rsip_parse_typed(TEAMS_INVITE))
    });
    g.finish();
}

criterion_group!(benches, sbc_sip, rsip);
criterion_main!(benches);
