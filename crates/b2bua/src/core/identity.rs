use super::*;

/// Identity and history headers of the caller's INVITE carried to an
/// attempt under the destination trunk's policy: P-Asserted-Identity and
/// Privacy (pass or strip), History-Info ⇄ Diversion (RFC 7544 mapping of
/// the reason), headers on the pass list (`X-MS-Custom-…`), the location
/// headers of RFC 6442 ([`GEOLOCATION`]). Replaces is never copied
/// (Microsoft refuses it).
pub(super) fn copy_identity(
    from: &Message,
    to: &mut Message,
    t: &TrunkSpec,
    uri: &dyn Fn(&str) -> String,
    pai_uri: &dyn Fn(&str) -> String,
    label: Option<&str>,
) {
    if t.headers.pai == PaiPolicy::Pass {
        if let Some(pai) = header_by_name(from, "P-Asserted-Identity") {
            // The first value, rewritten (never the other side's host).
            let first = pai.split(',').next().unwrap_or(&pai).trim().to_owned();
            let v = match sip::NameAddr::parse(first.as_bytes()) {
                Ok(n) => {
                    let u = pai_uri(&String::from_utf8_lossy(n.uri_raw));
                    // The label (a non-primary path) goes in front of the
                    // display name here too: some phones show PAI's.
                    let display = match (label, display_of(first.as_bytes())) {
                        (Some(l), Some(d)) => Some(format!("{l} {d}")),
                        (Some(l), None) => Some(l.to_owned()),
                        (None, d) => d,
                    };
                    match display {
                        Some(d) => format!("{} <{u}>", quoted(&d)),
                        None => format!("<{u}>"),
                    }
                }
                Err(_) => String::new(),
            };
            if !v.is_empty() {
                push(to, "P-Asserted-Identity", &v);
            }
        }
        if let Some(p) = header_by_name(from, "Privacy") {
            push(to, "Privacy", &p);
        }
    }
    let hi = header_by_name(from, "History-Info");
    let div = header_by_name(from, "Diversion");
    if let Some(d) = &div {
        if t.headers.diversion_to_history_info && t.kind.is_microsoft() {
            if let Some(h) = diversion_to_history(d, uri) {
                push(to, "History-Info", &h);
            }
        } else {
            push(to, "Diversion", d);
        }
    }
    if let Some(h) = &hi {
        if t.headers.history_info_to_diversion && !t.kind.is_microsoft() {
            if let Some(d) = history_to_diversion(h, uri) {
                push(to, "Diversion", &d);
            }
        } else if div.is_none() {
            push(to, "History-Info", h);
        }
    }
    for h in from.headers() {
        let name = String::from_utf8_lossy(h.name_raw).into_owned();
        let location = GEOLOCATION.iter().any(|g| g.eq_ignore_ascii_case(&name));
        if location || t.headers.passes(&name) {
            push(to, &name, &String::from_utf8_lossy(h.value));
        }
    }
}

/// Location conveyance headers (RFC 6442), passed toward every trunk
/// unchanged and in order: an emergency call's location (a `cid:` of a
/// PIDF-LO part of the body, or a reference) must reach the PSAP.
pub(super) const GEOLOCATION: [&str; 3] =
    ["Geolocation", "Geolocation-Routing", "Geolocation-Error"];

/// Diversion reason → History-Info cause (RFC 7544 / RFC 6044).
pub(super) fn diversion_to_history(d: &str, rewrite: &dyn Fn(&str) -> String) -> Option<String> {
    let n = sip::NameAddr::parse(d.as_bytes()).ok()?;
    let uri = rewrite(&String::from_utf8_lossy(n.uri_raw));
    let reason = n
        .params()
        .get("reason")
        .flatten()
        .map(|r| {
            String::from_utf8_lossy(r)
                .trim_matches('"')
                .to_ascii_lowercase()
        })
        .unwrap_or_else(|| "unknown".into());
    let cause = match reason.as_str() {
        "user-busy" => 486,
        "no-answer" => 408,
        "unconditional" => 302,
        "deflection" => 480,
        "unavailable" | "unknown" => 404,
        _ => 404,
    };
    Some(format!("<{uri}?Reason=SIP%3Bcause%3D{cause}>;index=1"))
}

/// History-Info cause → Diversion reason (the inverse mapping), from the
/// last entry carrying a cause.
pub(super) fn history_to_diversion(h: &str, rewrite: &dyn Fn(&str) -> String) -> Option<String> {
    let entries: Vec<&str> = h.split(',').collect();
    let e = entries
        .iter()
        .rev()
        .find(|e| e.contains("cause%3D"))
        .or(entries.first())?;
    let n = sip::NameAddr::parse(e.trim().as_bytes()).ok()?;
    let uri_full = String::from_utf8_lossy(n.uri_raw).into_owned();
    let (uri, headers) = uri_full.split_once('?').unwrap_or((&uri_full, ""));
    let cause: Option<u16> = headers
        .split("cause%3D")
        .nth(1)
        .and_then(|r| r.get(..3))
        .and_then(|c| c.parse().ok());
    let reason = match cause {
        Some(486) => "user-busy",
        Some(408) => "no-answer",
        Some(302) => "unconditional",
        Some(480) => "deflection",
        Some(404) => "unavailable",
        _ => "unknown",
    };
    let uri = rewrite(uri);
    Some(format!("<{uri}>;reason={reason}"))
}

/// The originally called number on a forwarded call: History-Info toward
/// Microsoft (RFC 7044, cause 408: no answer where it was meant to go),
/// Diversion toward carriers and gateways (RFC 5806, reason no-answer).
pub(super) fn add_diversion(m: &mut Message, t: &TrunkSpec, original_uri: &str) {
    if t.kind.is_microsoft() {
        push(
            m,
            "History-Info",
            &format!("<{original_uri}?Reason=SIP%3Bcause%3D408>;index=1"),
        );
    } else {
        push(
            m,
            "Diversion",
            &format!("<{original_uri}>;reason=no-answer;counter=1"),
        );
    }
}
