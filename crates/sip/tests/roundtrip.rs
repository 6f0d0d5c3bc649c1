//! Property tests: printing and parsing are inverse.
//!
//! * A message built with the editing API prints to bytes that parse back to
//!   an equal message, with the same typed values.
//! * A message written in any of the forms RFC 3261 allows (compact names,
//!   odd case, whitespace before the colon, folded lines) prints back to
//!   exactly its original bytes when unmodified, and keeps every unchanged
//!   line byte for byte when edited.

use bytes::Bytes;
use proptest::prelude::*;
use sip::{HeaderName, Message};

fn token() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9][a-zA-Z0-9.!%*_+`'~-]{0,11}"
}

fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9-]{0,8}(\\.[a-z][a-z0-9-]{0,8}){0,3}",
        (0u8..=255, 0u8..=255, 0u8..=255, 1u8..=254)
            .prop_map(|(a, b, c, d)| format!("{a}.{b}.{c}.{d}")),
        any::<[u16; 8]>().prop_map(|s| format!("[{}]", std::net::Ipv6Addr::from(s))),
    ]
}

fn sip_uri() -> impl Strategy<Value = String> {
    (
        prop::option::of("[a-zA-Z0-9+._-]{1,12}"),
        host(),
        prop::option::of(1u16..),
        prop::collection::vec(("[a-z]{1,6}", prop::option::of("[a-z0-9]{1,6}")), 0..3),
    )
        .prop_map(|(user, host, port, params)| {
            let mut s = String::from("sip:");
            if let Some(u) = user {
                s += &u;
                s += "@";
            }
            s += &host;
            if let Some(p) = port {
                s += &format!(":{p}");
            }
            for (k, v) in params {
                s += &format!(";{k}");
                if let Some(v) = v {
                    s += &format!("={v}");
                }
            }
            s
        })
}

fn tel_uri() -> impl Strategy<Value = String> {
    "\\+[1-9][0-9]{6,14}".prop_map(|n| format!("tel:{n}"))
}

fn display_name() -> impl Strategy<Value = Option<String>> {
    prop::option::of(prop_oneof![
        token(),
        // Quoted, with escaped quotes and backslashes and UTF-8.
        "[a-zA-Z ,;:<>@äö\"\\\\]{0,16}"
            .prop_map(|s| { format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"")) }),
    ])
}

fn name_addr() -> impl Strategy<Value = String> {
    (
        display_name(),
        prop_oneof![sip_uri(), tel_uri()],
        prop::option::of(token()),
    )
        .prop_map(|(d, u, tag)| {
            let mut s = String::new();
            if let Some(d) = d {
                s += &d;
                s += " ";
            }
            s += &format!("<{u}>");
            if let Some(t) = tag {
                s += &format!(";tag={t}");
            }
            s
        })
}

fn via() -> impl Strategy<Value = String> {
    (
        prop_oneof![Just("UDP"), Just("TCP"), Just("TLS")],
        host(),
        prop::option::of(1u16..),
        token(),
    )
        .prop_map(|(t, h, p, b)| {
            let port = p.map(|p| format!(":{p}")).unwrap_or_default();
            format!("SIP/2.0/{t} {h}{port};branch=z9hG4bK{b}")
        })
}

#[derive(Debug, Clone)]
struct Spec {
    method: &'static str,
    uri: String,
    vias: Vec<String>,
    from: String,
    to: String,
    call_id: String,
    cseq: u32,
    contacts: Vec<String>,
    extra: Vec<(String, String)>,
    body: Vec<u8>,
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        prop_oneof![
            Just("INVITE"),
            Just("OPTIONS"),
            Just("BYE"),
            Just("REGISTER"),
            Just("MESSAGE")
        ],
        sip_uri(),
        prop::collection::vec(via(), 1..4),
        name_addr(),
        name_addr(),
        "[a-zA-Z0-9.!%*_+`'~()<>:\\\\\"/\\[\\]?{}-]{1,20}(@[a-z0-9.]{1,12})?",
        any::<u32>(),
        prop::collection::vec(name_addr(), 0..3),
        prop::collection::vec(("X-[A-Za-z0-9-]{1,10}", "[ -~]{0,40}"), 0..4),
        prop::collection::vec(any::<u8>(), 0..200),
    )
        .prop_map(
            |(method, uri, vias, from, to, call_id, cseq, contacts, extra, body)| Spec {
                method,
                uri,
                vias,
                from,
                to,
                call_id,
                cseq,
                contacts,
                extra,
                body,
            },
        )
}

fn build(s: &Spec) -> Message {
    let mut m = Message::new_request(s.method, s.uri.as_bytes()).unwrap();
    for v in &s.vias {
        m.push_header("Via", v.as_bytes()).unwrap();
    }
    m.push_header("From", s.from.as_bytes()).unwrap();
    m.push_header("To", s.to.as_bytes()).unwrap();
    m.push_header("Call-ID", s.call_id.as_bytes()).unwrap();
    m.push_header("CSeq", format!("{} {}", s.cseq, s.method).as_bytes())
        .unwrap();
    m.push_header("Max-Forwards", b"70").unwrap();
    if !s.contacts.is_empty() {
        m.push_header("Contact", s.contacts.join(", ").as_bytes())
            .unwrap();
    }
    for (k, v) in &s.extra {
        m.push_header(k, v.as_bytes()).unwrap();
    }
    m.set_body(Some("application/octet-stream"), &s.body)
        .unwrap();
    m
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn parse_of_print_is_identity(s in spec()) {
        let m = build(&s);
        let bytes = m.to_bytes();
        let p = Message::parse(bytes.clone()).map_err(|e| TestCaseError::fail(format!("{e}: {}", String::from_utf8_lossy(&bytes))))?;
        prop_assert_eq!(&p, &m);
        // The typed views read what was written.
        prop_assert_eq!(p.method_str(), Some(s.method));
        prop_assert_eq!(p.call_id().unwrap(), s.call_id.as_str());
        prop_assert_eq!(p.cseq().unwrap().seq, s.cseq);
        prop_assert_eq!(p.via().count(), s.vias.len());
        prop_assert!(p.via().all(|v| v.is_ok()));
        prop_assert_eq!(p.contacts().count(), s.contacts.len());
        prop_assert!(p.contacts().all(|c| c.is_ok()));
        prop_assert_eq!(p.from().unwrap().uri_raw, m.from().unwrap().uri_raw);
        prop_assert_eq!(p.body(), &s.body[..]);
        prop_assert_eq!(p.content_length().unwrap(), Some(s.body.len() as u32));
        prop_assert!(matches!(sip::inspect(bytes, &sip::Policy::default()), sip::Verdict::Accept(_)));
        // Printing the parsed message again gives the same bytes.
        prop_assert_eq!(p.to_bytes(), m.to_bytes());
    }
}

/// One header line written in one of the equivalent forms RFC 3261 allows.
fn styled_line(name: &str, compact: Option<char>, value: &str, style: u8) -> String {
    let n = match (style % 4, compact) {
        (0, Some(c)) => c.to_string(),
        (1, _) => name.to_ascii_uppercase(),
        (2, _) => name.to_ascii_lowercase(),
        _ => name.to_owned(),
    };
    let sep = match style / 4 % 3 {
        0 => ": ",
        1 => " :\t",
        _ => ":",
    };
    // Fold the value at its first space, if asked and possible.
    let v = if style / 12 % 2 == 1 {
        value.replacen(' ', "\r\n   ", 1)
    } else {
        value.to_owned()
    };
    format!("{n}{sep}{v}\r\n")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn unmodified_message_prints_its_original_bytes(
        s in spec(),
        styles in prop::collection::vec(any::<u8>(), 16),
        lf_only in any::<bool>(),
    ) {
        let mut text = format!("{} {} SIP/2.0\r\n", s.method, s.uri);
        let mut lines = Vec::new();
        for v in &s.vias {
            lines.push(("Via", Some('v'), v.clone()));
        }
        lines.push(("From", Some('f'), s.from.clone()));
        lines.push(("To", Some('t'), s.to.clone()));
        lines.push(("Call-ID", Some('i'), s.call_id.clone()));
        lines.push(("CSeq", None, format!("{} {}", s.cseq, s.method)));
        for (k, v) in &s.extra {
            lines.push((k.as_str(), None, v.trim().to_owned()));
        }
        lines.push(("Content-Length", Some('l'), s.body.len().to_string()));
        for (i, (n, c, v)) in lines.iter().enumerate() {
            text += &styled_line(n, *c, v, styles[i % styles.len()]);
        }
        text += "\r\n";
        if lf_only {
            text = text.replace("\r\n", "\n");
        }
        let mut raw = text.into_bytes();
        raw.extend_from_slice(&s.body);
        let raw = Bytes::from(raw);
        let m = Message::parse(raw.clone()).map_err(|e| TestCaseError::fail(format!("{e}")))?;
        prop_assert_eq!(m.to_bytes(), raw.clone());
        prop_assert_eq!(m.call_id().unwrap(), s.call_id.as_str());
        prop_assert_eq!(m.via().count(), s.vias.len());
        prop_assert_eq!(m.body(), &s.body[..]);

        // Edit one thing: every other line is still there byte for byte.
        let mut e = m.clone();
        e.set_header("Max-Forwards", b"69").unwrap();
        e.set_request_uri(b"sip:edited@example.com").unwrap();
        let out = e.to_bytes();
        let reparsed = Message::parse(out.clone()).unwrap();
        prop_assert_eq!(reparsed.max_forwards().unwrap(), Some(69));
        prop_assert_eq!(reparsed.request_uri_raw(), Some(&b"sip:edited@example.com"[..]));
        prop_assert_eq!(reparsed.body(), &s.body[..]);
        // The original header lines (no Max-Forwards among them, so it is
        // appended) are copied as one verbatim block, folding and all.
        let head_end = raw.len() - s.body.len();
        let head = &raw[..head_end];
        let first_line_end = head.iter().position(|&b| b == b'\n').unwrap() + 1;
        let blank = if lf_only { 1 } else { 2 };
        let block = &head[first_line_end..head.len() - blank];
        prop_assert!(out.windows(block.len()).any(|w| w == block), "header block not copied verbatim");
        let kept: Vec<_> = reparsed.headers().filter(|h| h.name != HeaderName::MaxForwards).collect();
        let orig: Vec<_> = m.headers().collect();
        prop_assert_eq!(kept, orig);
    }
}

#[test]
fn editing_for_a_b2bua() {
    let raw = Bytes::from_static(
        b"INVITE sip:+4930123@carrier.example.net;user=phone SIP/2.0\r\n\
Via: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bKabc, SIP/2.0/UDP 198.51.100.1;branch=z9hG4bKdef\r\n\
Max-Forwards: 70\r\n\
From: \"Carrier, Inc\" <sip:+4930999@carrier.example.net;user=phone>;tag=99\r\n\
To: <sip:+4930123@carrier.example.net;user=phone>\r\n\
Call-ID: abc@198.51.100.7\r\n\
CSeq: 1 INVITE\r\n\
Contact: \"Trunk\" <sip:198.51.100.7:5060;transport=udp>;expires=60\r\n\
X-Carrier-Secret: internal\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 4\r\n\
\r\n\
v=0\n",
    );
    let m = Message::parse(raw.clone()).unwrap();
    assert!(!m.is_modified());
    assert_eq!(m.to_bytes(), raw);

    let mut b = m.clone();
    b.set_request_uri(b"sip:+4930123@sip.pstnhub.microsoft.com;user=phone")
        .unwrap();
    b.remove_headers(HeaderName::Via);
    b.prepend_header("Via", b"SIP/2.0/TLS sbc.example.com:5061;branch=z9hG4bKnew")
        .unwrap();
    b.remove_headers_by_name("x-carrier-secret");
    let contact = b
        .headers()
        .position(|h| h.name == HeaderName::Contact)
        .unwrap();
    b.set_header_uri(contact, b"sip:sbc.example.com:5061;transport=tls")
        .unwrap();
    b.set_body(
        Some("application/sdp"),
        b"v=0\r\no=- 1 1 IN IP4 203.0.113.5\r\n",
    )
    .unwrap();
    let out = Message::parse(b.to_bytes()).unwrap();

    assert_eq!(
        out.request_uri_raw().unwrap(),
        b"sip:+4930123@sip.pstnhub.microsoft.com;user=phone"
    );
    assert_eq!(out.via().count(), 1);
    assert_eq!(out.top_via().unwrap().transport, "TLS");
    assert!(out.header_by_name("X-Carrier-Secret").is_none());
    let c = out.contacts().next().unwrap().unwrap();
    let sip::Contact::Addr(c) = c else { panic!() };
    assert_eq!(c.display_name, Some(&b"\"Trunk\""[..]));
    assert_eq!(c.uri_raw, b"sip:sbc.example.com:5061;transport=tls");
    assert_eq!(c.params().get("expires"), Some(Some(&b"60"[..])));
    assert_eq!(out.content_length().unwrap(), Some(out.body().len() as u32));
    assert!(out.body().ends_with(b"203.0.113.5\r\n"));
    // Unchanged lines are copied byte for byte.
    let printed = b.to_bytes();
    for line in [
        &b"From: \"Carrier, Inc\" <sip:+4930999@carrier.example.net;user=phone>;tag=99\r\n"[..],
        b"Call-ID: abc@198.51.100.7\r\n",
    ] {
        assert!(printed.windows(line.len()).any(|w| w == line));
    }
    // A proxy-style edit: pop the top Via of a combined line.
    let mut p = m.clone();
    assert!(p.remove_first_value(HeaderName::Via));
    let p = Message::parse(p.to_bytes()).unwrap();
    assert_eq!(p.via().count(), 1);
    assert_eq!(p.top_via().unwrap().branch(), Some(&b"z9hG4bKdef"[..]));
}

#[test]
fn header_injection_is_refused() {
    let mut m = Message::new_request("OPTIONS", b"sip:a@example.com").unwrap();
    assert_eq!(
        m.push_header("Subject", b"hi\r\nVia: evil"),
        Err(sip::EditError::BadValue)
    );
    assert_eq!(
        m.push_header("Bad Name", b"x"),
        Err(sip::EditError::BadName)
    );
    assert_eq!(
        m.set_request_uri(b"sip:a@example.com SIP/2.0\r\nX: y"),
        Err(sip::EditError::BadUri)
    );
    assert!(Message::new_response(200, "OK\r\nX: y").is_err());
}

#[test]
fn addr_spec_gains_brackets_when_rewritten_with_params() {
    let raw = Bytes::from_static(
        b"OPTIONS sip:a@example.com SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\
From: sip:alice@example.com;tag=1\r\nTo: sip:bob@example.com\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\n\r\n",
    );
    let mut m = Message::parse(raw).unwrap();
    let to = m.headers().position(|h| h.name == HeaderName::To).unwrap();
    m.set_header_uri(to, b"sip:bob@sbc.example.com;transport=tls")
        .unwrap();
    let from = m
        .headers()
        .position(|h| h.name == HeaderName::From)
        .unwrap();
    m.set_header_uri(from, b"sip:alice@sbc.example.com")
        .unwrap();
    let p = Message::parse(m.to_bytes()).unwrap();
    assert_eq!(
        p.header(HeaderName::To).unwrap(),
        b"<sip:bob@sbc.example.com;transport=tls>"
    );
    assert_eq!(p.from().unwrap().tag(), Some(&b"1"[..]));
    assert_eq!(
        p.header(HeaderName::From).unwrap(),
        b"sip:alice@sbc.example.com;tag=1"
    );
}

#[test]
fn responses_build_and_edit() {
    let mut r = Message::new_response(180, "Ringing").unwrap();
    r.push_header("Via", b"SIP/2.0/UDP h;branch=z9hG4bK1")
        .unwrap();
    r.push_header("Call-ID", b"x@y").unwrap();
    r.set_body(None, b"").unwrap();
    let p = Message::parse(r.to_bytes()).unwrap();
    assert_eq!(p.status(), Some(180));
    assert_eq!(p.reason(), Some(&b"Ringing"[..]));
    let mut q = p.clone();
    q.set_status(183, "Session Progress").unwrap();
    assert_eq!(Message::parse(q.to_bytes()).unwrap().status(), Some(183));
    assert_eq!(
        q.set_request_uri(b"sip:x@y"),
        Err(sip::EditError::WrongKind)
    );
}

#[test]
fn removing_the_first_of_empty_values_leaves_no_trailing_blank() {
    // Found by fuzz target sip_message (RFC 4475 badinv01's Via).
    let raw = Bytes::from_static(
        b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.15;;,;,,\r\nCall-ID: x\r\n\r\n",
    );
    let mut m = Message::parse(raw).unwrap();
    assert!(m.remove_first_value(HeaderName::Via));
    let v = m.header(HeaderName::Via).unwrap();
    assert_eq!(v, b";, ,");
}

#[test]
fn a_start_line_without_crlf_gets_one_when_headers_are_added() {
    // Found by fuzz target sip_message: a datagram that is only a status line.
    let mut m = Message::parse(Bytes::from_static(b"SIP/2.0 183 Session Progress")).unwrap();
    m.push_header("Via", b"SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKx")
        .unwrap();
    let p = Message::parse(m.to_bytes()).unwrap();
    assert_eq!(p.reason(), Some(&b"Session Progress"[..]));
    assert_eq!(p.via().count(), 1);
}
