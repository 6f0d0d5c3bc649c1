//! `sbc demo` as a newcomer runs it: the real binary in an empty working
//! directory (it generates certs/dev there), on the fixed loopback ports of
//! the embedded default (5060, 5061, 5070, 25061, 25071). It must end by
//! itself, exit 0, and tell the story of every step.
//!
//! The ports are fixed by sbc-config/demo.toml: nothing else on the machine
//! may use them while this test runs (the other end-to-end tests bind port 0).

use std::time::{Duration, Instant};

use crate::common::run_bounded;
use crate::daemon::TempDir;

/// Runs `sbc demo` in `dir`; killed after 90 s (the demo itself promises
/// less than 60 s).
fn run_demo(dir: &std::path::Path) -> (Option<i32>, String, String) {
    run_bounded(dir, &["demo"], Duration::from_secs(90))
}

#[test]
fn demo_places_every_call_and_exits_0() {
    let work = TempDir::new("demo");
    let started = Instant::now();
    let (code, out, err) = run_demo(&work.0);
    let took = started.elapsed();
    let all = format!("--- stdout\n{out}\n--- stderr\n{err}");
    assert_eq!(code, Some(0), "sbc demo failed:\n{all}");
    assert!(took < Duration::from_secs(60), "took {took:?}:\n{all}");
    assert!(
        work.0.join("certs/dev/microsoft.pem").exists(),
        "development certificates generated in the working directory"
    );

    // The narrative: one line per thing that happened.
    for line in [
        // 1. OPTIONS health.
        "teams sip.pstnhub.microsoft.com   up    answered 200 over mutual TLS, SBC certificate teams.sbc.example.test",
        "teams sip2.pstnhub.microsoft.com  down  transport failure",
        "teams sip3.pstnhub.microsoft.com  down  transport failure",
        "acs   sip.pstnhub.microsoft.com   up    answered 200 over mutual TLS, SBC certificate acs.sbc.example.test",
        // 2. carrier → Teams, checked as Microsoft does.
        "[2] call carrier → Teams",
        "Request-URI sip:+49301234567@sip.pstnhub.microsoft.com:5061;user=phone;transport=tls, Contact host teams.sbc.example.test",
        "client certificate teams.sbc.example.test",
        "SRTP on: AES_CM_128_HMAC_SHA1_80",
        // 3. Teams → carrier.
        "[3] call Teams → carrier",
        "SNI teams.sbc.example.test, SBC certificate teams.sbc.example.test",
        "Teams checked: 200 with Contact host teams.sbc.example.test",
        // 4. REFER.
        "SBC → Teams: new INVITE, Request-URI = Refer-To, Referred-By copied",
        "NOTIFY sipfrag SIP/2.0 100 Trying, SIP/2.0 200 OK; first Teams leg released with BYE",
        "carrier: saw no REFER",
        // 5. failover to ACS.
        "Teams sip.pstnhub.microsoft.com: 503 Service Unavailable",
        "From: \"Fail-over\"",
        "client certificate acs.sbc.example.test",
        "acs/sip.pstnhub.microsoft.com answered [Fail-over]",
        "demo passed: every call worked",
    ] {
        assert!(out.contains(line), "missing {line:?}:\n{all}");
    }
    // Audio both ways in every call (twice in the transferred one).
    let audio: Vec<&str> = out
        .lines()
        .filter(|l| l.trim_start().starts_with("audio: "))
        .collect();
    assert_eq!(audio.len(), 5, "{all}");
    assert!(
        audio
            .iter()
            .all(|l| l.matches("arrived intact").count() == 2),
        "{all}"
    );

    // The SBC's own CDR lines.
    let cdrs: Vec<serde_json::Value> = out
        .lines()
        .filter_map(|l| l.strip_prefix("cdr "))
        .map(|j| serde_json::from_str(j).expect("CDR is JSON"))
        .collect();
    assert_eq!(cdrs.len(), 4, "{all}");
    let path: Vec<(String, String)> = cdrs
        .iter()
        .map(|c| {
            (
                c["from_trunk"].as_str().unwrap_or_default().to_owned(),
                c["to_trunk"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let want = [
        ("carrier", "teams"),
        ("teams", "carrier"),
        ("carrier", "teams"),
        ("carrier", "acs"),
    ];
    assert_eq!(
        path,
        want.map(|(a, b)| (a.to_owned(), b.to_owned())),
        "{all}"
    );
    assert!(cdrs.iter().all(|c| c["status"] == 200), "{all}");
    assert_eq!(cdrs[2]["transfers"], 1, "{all}");
    let attempts = cdrs[3]["attempts"].as_array().cloned().unwrap_or_default();
    assert_eq!(attempts.first().map(|a| &a["outcome"]), Some(&"503".into()));
    assert_eq!(
        attempts.last().map(|a| (&a["trunk"], &a["label"])),
        Some((&"acs".into(), &"Fail-over".into())),
        "{all}"
    );
}
