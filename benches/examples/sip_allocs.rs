//! Heap allocations and single-thread throughput of SIP parsing, `sbc-sip`
//! against rsip 0.4.0, on the Teams-style INVITE in `data/teams-invite.sip`.
//!
//! ```text
//! cargo run --release -p sbc-benches --example sip_allocs -- [--alloc-iters N] [--iters N] [--rounds R]
//! ```
//!
//! Allocations are counted by a `#[global_allocator]` that forwards to the
//! system allocator and counts every `alloc`, `alloc_zeroed` and `realloc`
//! (bytes = requested size; for `realloc`, the new size) over `--alloc-iters`
//! messages (default 100,000). Counting is switched off while timing, so the
//! throughput loops pay only a relaxed load per allocation.
//!
//! Throughput: `--iters` messages (default 1,000,000) per case and round,
//! timed with `std::time::Instant` on the calling thread after a warm-up of a
//! tenth of that. The cases run round-robin for `--rounds` rounds (default 3)
//! so background noise spreads over all of them; the table gives the median
//! round and the min–max.

use std::alloc::{GlobalAlloc, Layout, System};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Instant;

use sbc_benches::{shared_invite, TEAMS_INVITE};

#[path = "../sip_cases.rs"]
mod sip_cases;

/// The system allocator, counting while [`COUNTING`] is set.
struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

impl Counting {
    #[inline]
    fn note(size: usize) {
        if COUNTING.load(Relaxed) {
            ALLOCS.fetch_add(1, Relaxed);
            BYTES.fetch_add(size as u64, Relaxed);
        }
    }
}

// The workspace forbids unsafe code; this package lowers that to `deny`
// (benches/Cargo.toml) for this one impl, which only forwards to `System`.
#[allow(unsafe_code)]
// SAFETY: every method forwards its arguments unchanged to `System`, which
// upholds the `GlobalAlloc` contract; counting touches only atomics and never
// allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        Counting::note(layout.size());
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        Counting::note(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        Counting::note(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    SbcParse,
    SbcTyped,
    RsipParse,
    RsipTyped,
}

impl Case {
    const ALL: [Case; 4] = [
        Case::SbcParse,
        Case::SbcTyped,
        Case::RsipParse,
        Case::RsipTyped,
    ];

    fn name(self) -> &'static str {
        match self {
            Case::SbcParse => "sbc-sip/parse",
            Case::SbcTyped => "sbc-sip/parse+typed",
            Case::RsipParse => "rsip/parse",
            Case::RsipTyped => "rsip/parse+typed",
        }
    }
}

/// Runs `n` messages of `case`; monomorphised per case so the loop holds no
/// indirect call.
fn run(case: Case, n: u64) {
    let src = shared_invite();
    match case {
        Case::SbcParse => (0..n).for_each(|_| sip_cases::sbc_parse(src.clone())),
        Case::SbcTyped => (0..n).for_each(|_| sip_cases::sbc_parse_typed(src.clone())),
        Case::RsipParse => (0..n).for_each(|_| sip_cases::rsip_parse(TEAMS_INVITE)),
        Case::RsipTyped => (0..n).for_each(|_| sip_cases::rsip_parse_typed(TEAMS_INVITE)),
    }
}

/// (allocations, bytes) per message.
fn count_allocs(case: Case, n: u64) -> (f64, f64) {
    run(case, 10); // warm-up: any one-time initialisation is not counted
    let src = shared_invite(); // built outside the counted region
    ALLOCS.store(0, Relaxed);
    BYTES.store(0, Relaxed);
    COUNTING.store(true, Relaxed);
    match case {
        Case::SbcParse => (0..n).for_each(|_| sip_cases::sbc_parse(src.clone())),
        Case::SbcTyped => (0..n).for_each(|_| sip_cases::sbc_parse_typed(src.clone())),
        Case::RsipParse => (0..n).for_each(|_| sip_cases::rsip_parse(TEAMS_INVITE)),
        Case::RsipTyped => (0..n).for_each(|_| sip_cases::rsip_parse_typed(TEAMS_INVITE)),
    }
    COUNTING.store(false, Relaxed);
    let (a, b) = (ALLOCS.load(Relaxed), BYTES.load(Relaxed));
    (a as f64 / n as f64, b as f64 / n as f64)
}

/// Nanoseconds per message.
fn time(case: Case, n: u64) -> f64 {
    run(case, (n / 10).max(1));
    let t = Instant::now();
    run(case, n);
    t.elapsed().as_nanos() as f64 / n as f64
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

fn rate(ns: f64) -> String {
    let r = (1e9 / ns).round() as u64;
    // Thousands separators, e.g. 1,234,567.
    let s = r.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

struct Args {
    alloc_iters: u64,
    iters: u64,
    rounds: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        alloc_iters: 100_000,
        iters: 1_000_000,
        rounds: 3,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || -> Result<u64, String> {
            it.next()
                .and_then(|v| v.replace('_', "").parse().ok())
                .filter(|&v| v > 0)
                .ok_or_else(|| format!("{flag} needs a positive number"))
        };
        match flag.as_str() {
            "--alloc-iters" => a.alloc_iters = value()?,
            "--iters" => a.iters = value()?,
            "--rounds" => a.rounds = value()? as usize,
            "-h" | "--help" => {
                return Err("usage: sip_allocs [--alloc-iters N] [--iters N] [--rounds R]".into())
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(a)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let headers = sip::Message::parse(shared_invite())
        .map(|m| (m.header_count(), m.body().len()))
        .unwrap_or_default();
    println!(
        "message: data/teams-invite.sip, {} bytes, {} header lines, {}-byte SDP body",
        TEAMS_INVITE.len(),
        headers.0,
        headers.1
    );
    println!(
        "allocations over {} messages per case; throughput over {} messages per case x {} rounds (round-robin), one thread",
        args.alloc_iters, args.iters, args.rounds
    );

    let allocs: Vec<(f64, f64)> = Case::ALL
        .iter()
        .map(|&c| count_allocs(c, args.alloc_iters))
        .collect();

    let mut ns: Vec<Vec<f64>> = vec![Vec::new(); Case::ALL.len()];
    for round in 1..=args.rounds {
        let mut line = format!("round {round}:");
        for (i, &c) in Case::ALL.iter().enumerate() {
            let t = time(c, args.iters);
            line += &format!("  {} {:.0} ns", c.name(), t);
            ns[i].push(t);
        }
        println!("{line}");
    }

    println!();
    println!(
        "| case | msgs/s (median) | ns/msg (median) | msgs/s min–max | allocs/msg | bytes/msg |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    let mut med = [0.0; 4];
    for (i, &c) in Case::ALL.iter().enumerate() {
        let lo = ns[i].iter().copied().fold(f64::INFINITY, f64::min);
        let hi = ns[i].iter().copied().fold(0.0, f64::max);
        med[i] = median(&mut ns[i]);
        println!(
            "| {} | {} | {:.0} | {}–{} | {:.2} | {:.0} |",
            c.name(),
            rate(med[i]),
            med[i],
            rate(hi),
            rate(lo),
            allocs[i].0,
            allocs[i].1
        );
    }
    println!();
    println!(
        "sbc-sip / rsip (median msgs/s): parse {:.1}x, parse+typed {:.1}x",
        med[2] / med[0],
        med[3] / med[1]
    );
    let goal = 1e9 / med[1] >= 500_000.0 && allocs[1].0 == 0.0;
    println!(
        "goal (sbc-sip parse+typed >= 500,000 msgs/s on one core, 0 allocs/msg): {}",
        if goal { "met" } else { "NOT met" }
    );
    ExitCode::SUCCESS
}
