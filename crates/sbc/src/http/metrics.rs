//! `/metrics`: the Prometheus text format (0.0.4) of a [`Snapshot`].

use std::fmt::Write as _;

use super::snapshot::{Figure, Kind, Snapshot, FIGURES, REGISTRAR};

/// The content type Prometheus expects.
pub(crate) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

fn family(out: &mut String, name: &str, kind: Kind, help: &str) {
    let kind = match kind {
        Kind::Counter => "counter",
        Kind::Gauge => "gauge",
    };
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// A label value as the format wants it: `\`, `"` and newlines escaped.
fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn labels(pairs: &[(&str, &str)]) -> String {
    if pairs.is_empty() {
        return String::new();
    }
    let inner: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", esc(v)))
        .collect();
    format!("{{{}}}", inner.join(","))
}

fn table(out: &mut String, s: &Snapshot, figures: &[Figure]) {
    let mut last = "";
    for f in figures {
        if f.metric != last {
            family(out, f.metric, f.kind, f.help);
            last = f.metric;
        }
        let l = f.label.map(|(k, v)| labels(&[(k, v)])).unwrap_or_default();
        let _ = writeln!(out, "{}{l} {}", f.metric, (f.get)(s));
    }
}

fn secs(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

/// Renders every metric of `s`.
pub(crate) fn render(s: &Snapshot) -> String {
    let mut out = String::with_capacity(8192);
    family(
        &mut out,
        "sbc_start_time_seconds",
        Kind::Gauge,
        "When the process started, Unix time.",
    );
    let _ = writeln!(out, "sbc_start_time_seconds {}", secs(s.started_unix_ms));
    family(
        &mut out,
        "sbc_draining",
        Kind::Gauge,
        "1 while draining (SIGTERM: new calls get 503).",
    );
    let _ = writeln!(out, "sbc_draining {}", u8::from(s.draining));
    table(&mut out, s, FIGURES);
    if s.registrar.is_some() {
        table(&mut out, s, REGISTRAR);
    }
    family(
        &mut out,
        "sbc_peer_up",
        Kind::Gauge,
        "1 when the trunk peer is up (OPTIONS answered), 0 when down or not proven yet.",
    );
    for p in &s.peers {
        let l = labels(&[("trunk", &p.trunk), ("peer", &p.host)]);
        let _ = writeln!(out, "sbc_peer_up{l} {}", u8::from(p.state == "up"));
    }
    family(
        &mut out,
        "sbc_peer_last_change_timestamp_seconds",
        Kind::Gauge,
        "When the peer's health last changed (the process start if it never did), Unix time.",
    );
    for p in &s.peers {
        let l = labels(&[("trunk", &p.trunk), ("peer", &p.host)]);
        let _ = writeln!(
            out,
            "sbc_peer_last_change_timestamp_seconds{l} {}",
            secs(p.since_unix_ms)
        );
    }
    family(&mut out, "sbc_calls_ended_total", Kind::Counter, "Calls ended (CDRs), by inbound trunk, outbound trunk and outcome (answered, busy, cancelled, failed).");
    for ((from, to, outcome), v) in &s.tally.calls {
        let l = labels(&[("from_trunk", from), ("to_trunk", to), ("outcome", outcome)]);
        let _ = writeln!(out, "sbc_calls_ended_total{l} {v}");
    }
    family(&mut out, "sbc_call_attempts_total", Kind::Counter, "Routing attempts of ended calls, by trunk, peer and outcome (status code, timeout, transport, answered, cancelled).");
    for ((trunk, peer, outcome), v) in &s.tally.attempts {
        let l = labels(&[("trunk", trunk), ("peer", peer), ("outcome", outcome)]);
        let _ = writeln!(out, "sbc_call_attempts_total{l} {v}");
    }
    family(
        &mut out,
        "sbc_call_answered_seconds_total",
        Kind::Counter,
        "Time answered calls were up (answer to end), by outbound trunk and peer.",
    );
    for ((trunk, peer), ms) in &s.tally.answered_ms {
        let l = labels(&[("trunk", trunk), ("peer", peer)]);
        let _ = writeln!(out, "sbc_call_answered_seconds_total{l} {}", secs(*ms));
    }
    out
}
