//! Small SIP helpers of the simulated peers: unique tokens, building a
//! request, reading header values.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use sip::{Contact, Message};

use super::Result;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// The next number of a process-wide counter (SSRCs, sequence numbers, tokens).
pub(crate) fn next_number() -> u64 {
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

/// A token unique within this run and across runs.
pub(crate) fn unique(prefix: &str) -> String {
    let n = next_number();
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64);
    format!("{prefix}{:x}{n:x}", t & 0xffff_ffff)
}

pub(crate) fn branch() -> String {
    format!("z9hG4bK{}", unique("d"))
}

/// A Microsoft-style Contact: the media-processor FQDN on :443 with x-i/x-c.
pub(crate) fn ms_contact() -> String {
    format!(
        "<sip:api-du-b-euwe.pstnhub.microsoft.com:443;x-i={};x-c={}/s/1/{}>",
        unique("5e7a"),
        unique("c"),
        unique("x")
    )
}

/// A request from its headers (in order) and an optional SDP body.
pub(crate) fn request(
    method: &str,
    ruri: &str,
    headers: &[(&str, &str)],
    sdp: Option<&[u8]>,
) -> Result<Message> {
    let mut m = Message::new_request(method, ruri.as_bytes())
        .map_err(|e| format!("{method} {ruri}: {e}"))?;
    for (n, v) in headers {
        m.push_header(n, v.as_bytes())
            .map_err(|e| format!("{method}: {n}: {e}"))?;
    }
    match sdp {
        Some(b) => m.set_body(Some("application/sdp"), b),
        None => m.set_body(None, b""),
    }
    .map_err(|e| e.to_string())?;
    Ok(m)
}

pub(crate) fn value(m: &Message, name: &str) -> Option<String> {
    m.header_by_name(name)
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

/// The URI of a name-addr value (`"x" <sip:…>;tag=…` → `sip:…`).
pub(crate) fn uri_of(v: &str) -> String {
    sip::NameAddr::parse(v.as_bytes())
        .map(|n| String::from_utf8_lossy(n.uri_raw).into_owned())
        .unwrap_or_default()
}

/// The display name of a name-addr value, without its quotes.
pub(crate) fn display_of(v: &str) -> Option<String> {
    let n = sip::NameAddr::parse(v.as_bytes()).ok()?;
    let d = String::from_utf8_lossy(n.display_name?).into_owned();
    let d = d.trim().trim_matches('"').to_owned();
    (!d.is_empty()).then_some(d)
}

pub(crate) fn contact_uri(m: &Message) -> Option<String> {
    match m.contacts().next()?.ok()? {
        Contact::Addr(n) => Some(String::from_utf8_lossy(n.uri_raw).into_owned()),
        Contact::Star => None,
    }
}

pub(crate) fn contact_host(m: &Message) -> Option<String> {
    match m.contacts().next()?.ok()? {
        Contact::Addr(n) => n.uri.as_sip().map(|s| s.host_raw.to_owned()),
        Contact::Star => None,
    }
}

pub(crate) fn record_routes(m: &Message) -> Vec<String> {
    m.record_routes()
        .filter_map(|r| r.ok())
        .map(|n| format!("<{}>", String::from_utf8_lossy(n.uri_raw)))
        .collect()
}

pub(crate) fn top_branch(m: &Message) -> Option<String> {
    let via = m.top_via().ok()?;
    via.branch()
        .map(|b| String::from_utf8_lossy(b).into_owned())
}

pub(crate) fn first_line(b: &[u8]) -> String {
    let text = String::from_utf8_lossy(b);
    text.lines().next().unwrap_or_default().trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_lose_their_quotes() {
        assert_eq!(
            display_of("\"Fail-over\" <sip:+4940@x;user=phone>;tag=1").as_deref(),
            Some("Fail-over")
        );
        assert_eq!(display_of("<sip:+4940@x>;tag=1"), None);
        assert_eq!(uri_of("\"a\" <sip:+4940@x>;tag=1"), "sip:+4940@x");
    }
}
