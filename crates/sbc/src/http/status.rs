//! `/status.json`: what the status page shows, from the same [`Snapshot`]
//! as `/metrics`.

use serde_json::{json, Value};

use super::snapshot::{Snapshot, FIGURES, REGISTRAR};

/// The outcomes Microsoft's network effectiveness ratio counts as
/// effective: answered, user busy (486, 600), declined (603).
fn effective(outcome: &str) -> bool {
    matches!(outcome, "answered" | "486" | "600" | "603")
}

/// The certificates each trunk presents (its `tls` profile), then those of
/// profiles no trunk names (listeners only, `trunk` null), with the days
/// left before they expire.
fn certificates(s: &Snapshot) -> Vec<Value> {
    let now_s = i64::try_from(s.unix_ms / 1000).unwrap_or(i64::MAX);
    let row = |trunk: Option<&str>, c: &super::certs::CertRow| {
        json!({
            "trunk": trunk,
            "profile": c.profile,
            "subject": c.subject,
            "not_after_unix": c.not_after,
            "days_left": c.not_after.map(|t| (t - now_s).div_euclid(86_400)),
        })
    };
    let mut out = Vec::new();
    for (trunk, profile) in &s.trunk_tls {
        let Some(p) = profile else { continue };
        for c in s.certs.iter().filter(|c| &c.profile == p) {
            out.push(row(Some(trunk), c));
        }
    }
    for c in &s.certs {
        if !s
            .trunk_tls
            .iter()
            .any(|(_, p)| p.as_ref() == Some(&c.profile))
        {
            out.push(row(None, c));
        }
    }
    out
}

/// The status page's data.
pub(crate) fn render(s: &Snapshot, show_numbers: bool) -> Value {
    let peers: Vec<Value> = s
        .peers
        .iter()
        .map(|p| {
            let mut total = 0u64;
            let mut good = 0u64;
            let mut answered = 0u64;
            for ((t, h, outcome), n) in &s.tally.attempts {
                if *t == p.trunk && *h == p.host {
                    total += n;
                    if effective(outcome) {
                        good += n;
                    }
                    if outcome == "answered" {
                        answered += n;
                    }
                }
            }
            let ms = s
                .tally
                .answered_ms
                .get(&(p.trunk.clone(), p.host.clone()))
                .copied()
                .unwrap_or(0);
            let tls = match (p.transport.as_str(), p.state) {
                ("TLS", _) if p.reason.contains("TLS") => "failing",
                ("TLS", "up") => "ok",
                ("TLS", _) => "unknown",
                _ => "n/a",
            };
            json!({
                "trunk": p.trunk,
                "kind": p.kind,
                "host": p.host,
                "transport": p.transport,
                "state": p.state,
                "reason": p.reason,
                "since_unix_ms": p.since_unix_ms,
                "options": if p.options { p.state } else { "off" },
                "rtt_ms": p.rtt.map(|d| d.as_secs_f64() * 1000.0),
                "tls": tls,
                "attempts": total,
                "calls": s.calls.iter().filter(|c| {
                    c.to_trunk.as_deref() == Some(&p.trunk) && c.to_peer.as_deref() == Some(&p.host)
                }).count(),
                "ner": if total > 0 { Value::from(good as f64 / total as f64) } else { Value::Null },
                "acd_s": if answered > 0 { Value::from(ms as f64 / 1000.0 / answered as f64) } else { Value::Null },
            })
        })
        .collect();
    let figures = |table: &[super::snapshot::Figure]| -> Value {
        table
            .iter()
            .map(|f| (f.key.to_owned(), Value::from((f.get)(s))))
            .collect::<serde_json::Map<_, _>>()
            .into()
    };
    let number = |n: &str| {
        if show_numbers {
            n.to_owned()
        } else {
            b2bua::mask(n)
        }
    };
    let calls: Vec<Value> = s
        .calls
        .iter()
        .map(|c| {
            let path: Vec<Value> = c
                .attempts
                .iter()
                .map(|a| json!({"trunk": a.trunk, "peer": a.peer, "outcome": a.outcome}))
                .collect();
            json!({
                "id": c.id,
                "state": c.state,
                "from_trunk": c.from_trunk,
                "to_trunk": c.to_trunk,
                "to_peer": c.to_peer,
                "calling": number(&c.calling),
                "called": number(&c.called),
                "route": c.route,
                "age_s": c.age.as_secs(),
                "answered_s": c.answered_for.map(|d| d.as_secs()),
                "label": c.attempts.last().and_then(|a| a.label.clone()),
                "path": path,
            })
        })
        .collect();
    json!({
        "unix_ms": s.unix_ms,
        "active_calls": s.active_calls,
        "calls": calls,
        "started_unix_ms": s.started_unix_ms,
        "draining": s.draining,
        "numbers": if show_numbers { "shown" } else { "masked" },
        "counters": figures(FIGURES),
        "registrar": s.registrar.map(|_| figures(REGISTRAR)),
        "peers": peers,
        "certificates": certificates(s),
        "log": s.tally.log,
    })
}
