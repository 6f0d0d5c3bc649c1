//! `/metrics`: the Prometheus text format (0.0.4) of a [`Snapshot`].

use std::fmt::Write as _;

use super::sip_counts::Direction;
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

/// SIP messages by direction and method or status code.
fn sip(out: &mut String, s: &Snapshot) {
    family(
        out,
        "sbc_sip_requests_total",
        Kind::Counter,
        "SIP requests received (accepted by the parser) and sent, by method (other: any method not named).",
    );
    for d in Direction::ALL {
        for (method, n) in s.sip.requests(d) {
            let l = labels(&[("direction", d.label()), ("method", method)]);
            let _ = writeln!(out, "sbc_sip_requests_total{l} {n}");
        }
    }
    family(
        out,
        "sbc_sip_responses_total",
        Kind::Counter,
        "SIP responses received (accepted by the parser) and sent, by status code (the codes seen).",
    );
    for d in Direction::ALL {
        for (code, n) in s.sip.responses(d) {
            let code = code.map_or_else(|| "other".to_owned(), |c| c.to_string());
            let l = labels(&[("direction", d.label()), ("code", &code)]);
            let _ = writeln!(out, "sbc_sip_responses_total{l} {n}");
        }
    }
}

/// Each relay worker's load.
fn media(out: &mut String, s: &Snapshot) {
    family(
        out,
        "sbc_relay_worker_sessions",
        Kind::Gauge,
        "Media sessions installed in each relay worker.",
    );
    for (i, w) in s.relay_workers.iter().enumerate() {
        let _ = writeln!(
            out,
            "sbc_relay_worker_sessions{{worker=\"{i}\"}} {}",
            w.sessions
        );
    }
    family(
        out,
        "sbc_relay_worker_packets_total",
        Kind::Counter,
        "Media packets each relay worker relayed.",
    );
    for (i, w) in s.relay_workers.iter().enumerate() {
        let _ = writeln!(
            out,
            "sbc_relay_worker_packets_total{{worker=\"{i}\"}} {}",
            w.packets
        );
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
    sip(&mut out, s);
    media(&mut out, s);
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
    family(
        &mut out,
        "sbc_peer_options_rtt_seconds",
        Kind::Gauge,
        "Round trip of the last OPTIONS the trunk peer answered (peers that answered one).",
    );
    for p in &s.peers {
        if let Some(rtt) = p.rtt {
            let l = labels(&[("trunk", &p.trunk), ("peer", &p.host)]);
            let _ = writeln!(
                out,
                "sbc_peer_options_rtt_seconds{l} {:.6}",
                rtt.as_secs_f64()
            );
        }
    }
    family(
        &mut out,
        "sbc_tls_certificate_expiry_timestamp_seconds",
        Kind::Gauge,
        "When a certificate the SBC presents expires (notAfter), Unix time, by TLS profile and subject.",
    );
    for c in &s.certs {
        if let Some(t) = c.not_after {
            let l = labels(&[("profile", &c.profile), ("subject", &c.subject)]);
            let _ = writeln!(out, "sbc_tls_certificate_expiry_timestamp_seconds{l} {t}");
        }
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
