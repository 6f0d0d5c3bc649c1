//! `sbc drill`, the built-in failover drill, as an operator runs it: the
//! real binary in an empty working directory (it generates certs/dev there),
//! on the fixed loopback ports of sbc-config/drill.toml (15060/15061 for the
//! SBC, 15070, 15081-15083, 15091, 127.0.0.2:15100, 127.0.0.3:15110 for its
//! peers, media 16000-16999: below the ephemeral range, apart from `sbc
//! demo`'s). It must end by itself within a minute, exit 0 and show every
//! row PASS; with impossible targets it must exit 1 and say why.
//!
//! Two drills cannot share those ports, so the tests here take turns.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::common::run_bounded;

use crate::daemon::TempDir;

/// One drill at a time (fixed ports).
static PORTS: Mutex<()> = Mutex::new(());

/// The rows of the table, in order: (step name, fault or "", where the
/// call went). Each must be there, once.
const ROWS: [(&str, &str); 12] = [
    ("baseline", "teams/sip"),
    ("silent peer", "teams/sip2"),
    ("silent, next call", "teams/sip2"),
    ("late answer", "sip: ACK+BYE"),
    ("peer dead", "teams/sip2"),
    ("503 Retry-After", "teams/sip3"),
    ("held peer skipped", "teams/sip3"),
    ("Teams down", "acs/sip"),
    ("Teams known down", "acs/sip"),
    ("Teams + ACS down", "gateway"),
    ("everything down", "pstn/+4915112345"),
    ("recovery", "teams/sip"),
];

/// Runs `sbc drill ARGS` in `dir`; killed after 90 s (the drill bounds
/// itself to well under 60 s).
fn run_drill(dir: &std::path::Path, args: &[&str]) -> (Option<i32>, String, String) {
    let mut all = vec!["drill"];
    all.extend_from_slice(args);
    run_bounded(dir, &all, Duration::from_secs(90))
}

/// The table's data rows: `(step, name, went to, result)` from lines such
/// as ` 2  silent peer  sip: TLS up, answers nothing  teams/sip2  2019 ms …  PASS`
/// (columns are separated by two spaces or more).
fn table(out: &str) -> Vec<(usize, String, String, String)> {
    out.lines()
        .filter_map(|l| {
            let cols: Vec<&str> = l
                .split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect();
            let step = cols.first()?.parse().ok()?;
            let result = cols.last()?.to_string();
            (cols.len() == 10 && (result == "PASS" || result == "FAIL"))
                .then(|| (step, cols[1].to_owned(), cols[3].to_owned(), result))
        })
        .collect()
}

#[test]
fn drill_passes_every_row_and_exits_0() {
    let _turn = PORTS.lock().unwrap_or_else(|e| e.into_inner());
    let work = TempDir::new("drill");
    let started = Instant::now();
    let (code, out, err) = run_drill(&work.0, &[]);
    let took = started.elapsed();
    let all = format!("--- stdout\n{out}\n--- stderr\n{err}");
    assert_eq!(code, Some(0), "sbc drill failed:\n{all}");
    assert!(took < Duration::from_secs(60), "took {took:?}:\n{all}");
    let rows = table(&out);
    assert_eq!(rows.len(), ROWS.len(), "{all}");
    for (i, ((step, name, went, result), (want_name, want_went))) in
        rows.iter().zip(ROWS).enumerate()
    {
        assert_eq!(*step, i + 1, "{all}");
        assert_eq!(
            (name.as_str(), went.as_str()),
            (want_name, want_went),
            "{all}"
        );
        assert_eq!(result, "PASS", "row {step} {name}:\n{all}");
    }
    assert!(
        out.contains("drill passed: 12 of 12 rows met their target"),
        "{all}"
    );
    assert!(!out.contains("FAIL"), "{all}");
    // The labels and the forward as the peers saw them, in the attempts.
    for line in [
        "teams/sip.pstnhub.microsoft.com timeout, teams/sip2.pstnhub.microsoft.com answered",
        "teams/sip2.pstnhub.microsoft.com 503, teams/sip3.pstnhub.microsoft.com answered",
        "acs/sip.pstnhub.microsoft.com answered [Fail-over]",
        "gateway/127.0.0.2 answered [Fail-over]",
        "pstn/127.0.0.3 answered [Fail-over]",
    ] {
        assert!(out.contains(line), "missing {line:?}:\n{all}");
    }
    // The SBC's own CDR lines: one per call (11), all answered.
    let cdrs: Vec<serde_json::Value> = out
        .lines()
        .filter_map(|l| l.strip_prefix("cdr "))
        .map(|j| serde_json::from_str(j).expect("CDR is JSON"))
        .collect();
    assert_eq!(cdrs.len(), 11, "{all}");
    assert!(cdrs.iter().all(|c| c["status"] == 200), "{all}");
}

#[test]
fn a_missed_target_fails_the_drill_with_the_reason() {
    let _turn = PORTS.lock().unwrap_or_else(|e| e.into_inner());
    let work = TempDir::new("drill-miss");
    // Every target scaled to 0 ms: a row whose setup takes a millisecond or
    // more misses it. The silent peer and the forward wait out a 2 s timer,
    // so those two miss for certain.
    let (code, out, err) = run_drill(&work.0, &["--target-scale", "0"]);
    let all = format!("--- stdout\n{out}\n--- stderr\n{err}");
    assert_eq!(code, Some(1), "{all}");
    let rows = table(&out);
    assert_eq!(rows.len(), ROWS.len(), "{all}");
    for step in [2, 11] {
        assert_eq!(rows[step - 1].3, "FAIL", "row {step}:\n{all}");
    }
    assert!(
        out.contains("ms > target 0 ms (silent peer: per-attempt timer + 1 s)"),
        "{all}"
    );
    assert!(out.contains("FAIL 11 everything down: setup "), "{all}");
    let failed = rows.iter().filter(|r| r.3 == "FAIL").count();
    assert!(
        out.contains(&format!(
            "drill FAILED: {failed} of 12 rows missed their target"
        )),
        "{all}"
    );
    assert!(err.contains("rows missed their target"), "{all}");
}
