//! Fuzz target: one datagram through `sip::Message::parse` and `sip::inspect`.
//!
//! Invariants checked (beyond "does not panic"):
//! * an unmodified parsed message prints (`to_bytes`, `write_to`) as the exact
//!   input bytes minus leading CR/LF and minus bytes beyond Content-Length,
//!   without copying (the output points into the input buffer), and those
//!   bytes re-parse to an equal `Message`;
//! * every typed accessor runs, and they agree with each other (header names
//!   re-recognise, `top_via` = first of `via()`, Content-Length = body length);
//! * `inspect` accepts only what `parse` accepts (and the same message); a
//!   `Reply` is only for a request that is not an ACK, and `error_response`
//!   then builds a response that parses, carries the status/reason and a Via;
//! * edits on a clone (`set_header`, `remove_first_value(Via)`,
//!   `prepend_header`, `set_header_uri`, `set_body`, `set_request_uri` /
//!   `set_status`) are visible through the accessors, and the edited message
//!   prints to bytes that re-parse to an equal message.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sip::{
    error_response, inspect, peek, Contact, EditError, HeaderName, Host, Kind, Message, NameAddr,
    ParseOptions, Policy, Uri, Verdict, Via,
};

/// Limits for re-parsing what we printed ourselves: an edit may push a
/// message past the receive limits (one more header than max_headers), which
/// is not what these checks are about.
const ROOMY: ParseOptions = ParseOptions {
    max_message_size: 1 << 24,
    max_headers: 1 << 16,
};

/// `SBC_FUZZ_TOLERATE_KNOWN=1` skips the checks that known, reported bugs
/// fail (see docs/fuzzing.md and fuzz/regressions/), so that a long run can
/// look past them. Unset (the default), every check is strict and the
/// regression inputs reproduce the bugs.
fn tolerate_known() -> bool {
    static T: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *T.get_or_init(|| std::env::var_os("SBC_FUZZ_TOLERATE_KNOWN").is_some_and(|v| v != "0"))
}

const NEW_RURI: &[u8] = b"sip:x@example.com";
const NEW_FROM_URI: &[u8] = b"sip:fuzz@example.org";
const NEW_BODY: &[u8] = b"v=0\r\n";
const NEW_VIA: &[u8] = b"SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKfuzz";

fn lead_crlf(b: &[u8]) -> usize {
    b.iter().take_while(|&&c| c == b'\r' || c == b'\n').count()
}

fn touch_host(h: &Host<'_>) {
    let shown = h.to_string();
    assert!(!shown.is_empty());
    let _ = h.is_broadcast_or_multicast();
}

fn touch_uri(u: &Uri<'_>) {
    let _ = u.scheme();
    match u {
        Uri::Sip(s) => {
            touch_host(&s.host);
            let _ = (s.transport(), s.lr(), s.params().count());
            assert!(s.params_raw.is_empty() || s.params_raw[0] == b';');
        }
        Uri::Tel(t) => {
            let _ = (t.is_global(), t.params().count());
        }
        Uri::Other { scheme, raw } => assert!(raw.starts_with(scheme)),
    }
}

fn touch_name_addr(n: &NameAddr<'_>) {
    touch_uri(&n.uri);
    let _ = (n.tag(), n.params().count(), n.display_name);
}

fn touch_via(v: &Via<'_>) {
    touch_host(&v.host);
    let _ = (
        v.branch(),
        v.has_rfc3261_branch(),
        v.received(),
        v.rport(),
        v.params().count(),
    );
}

/// Calls every typed accessor and checks that they agree with each other.
fn exercise(m: &Message) {
    let kind = m.kind();
    assert_eq!(m.is_request(), kind == Kind::Request);
    assert_eq!(m.request_uri_raw().is_some(), m.is_request());
    assert_eq!(m.status().is_some(), !m.is_request());
    assert_eq!(m.reason().is_some(), !m.is_request());
    if let Some(code) = m.status() {
        assert!((100..=699).contains(&code), "status {code}");
    }
    let _ = (m.method_str(), m.method());
    match m.request_uri() {
        Some(Ok(u)) => touch_uri(&u),
        Some(Err(e)) => {
            let _ = e.to_string();
        }
        None => {}
    }

    let mut n = 0;
    for h in m.headers() {
        n += 1;
        assert!(!h.name_raw.is_empty(), "empty header name");
        assert_eq!(
            HeaderName::from_bytes(h.name_raw),
            h.name,
            "name {:?}",
            h.name_raw
        );
        assert!(
            !matches!(h.value.first(), Some(b' ' | b'\t')),
            "value keeps leading blank: {:?}",
            h.value
        );
        assert!(
            !matches!(h.value.last(), Some(b' ' | b'\t' | b'\r' | b'\n')),
            "value keeps trailing LWS: {:?}",
            h.value
        );
        if h.name != HeaderName::Other {
            assert!(m.header(h.name).is_some());
            assert!(m.count(h.name) >= 1);
        }
    }
    assert_eq!(n, m.header_count());

    let vias: Vec<_> = m.via().collect();
    assert_eq!(vias.len(), m.values(HeaderName::Via).count());
    match (m.top_via(), vias.first()) {
        (Ok(a), Some(Ok(b))) => assert_eq!(a, *b),
        (Err(_), None) | (Err(_), Some(Err(_))) => {}
        (a, b) => panic!("top_via() {a:?} disagrees with via() {b:?}"),
    }
    for v in vias.iter().flatten() {
        touch_via(v);
    }
    for r in [m.from(), m.to()] {
        match r {
            Ok(na) => touch_name_addr(&na),
            Err(e) => {
                let _ = (e.to_string(), e.status(), e.response());
            }
        }
    }
    if let Ok(id) = m.call_id() {
        assert!(!id.is_empty());
    }
    if let Ok(c) = m.cseq() {
        assert!(!c.method.is_empty());
        if !m.is_request() {
            assert_eq!(m.method_str(), Some(c.method));
        }
    }
    for c in m.contacts().flatten() {
        if let Contact::Addr(na) = c {
            touch_name_addr(&na);
        }
    }
    for r in m.routes().chain(m.record_routes()).flatten() {
        touch_name_addr(&r);
    }
    let _ = m.max_forwards();
    if let Some(Ok(ct)) = m.content_type() {
        let _ = (ct.is_sdp(), ct.admits("application", "sdp"));
    }
    for name in [
        HeaderName::Require,
        HeaderName::ProxyRequire,
        HeaderName::Supported,
    ] {
        for t in m.tokens(name).flatten() {
            assert!(!t.is_empty());
        }
    }
    // Content-Length, when present and valid, is exactly the body length: the
    // parser cuts the body there, and set_body writes it.
    if let Ok(Some(cl)) = m.content_length() {
        assert_eq!(m.body().len(), cl as usize, "Content-Length vs body");
    }
    let _ = m.header_by_name("X-Fuzz");
}

/// The edited message prints to bytes that re-parse (with roomy limits) to an
/// equal message, and printing is deterministic.
fn check_printed(m: &Message, what: &str) {
    assert!(
        m.is_modified(),
        "{what}: edit did not mark the message modified"
    );
    let out = m.to_bytes();
    let mut w = Vec::new();
    m.write_to(&mut w);
    assert_eq!(&w[..], &out[..], "{what}: write_to differs from to_bytes");
    let re = match Message::parse_with(out.clone(), &ROOMY) {
        Ok(re) => re,
        Err(e) => {
            panic!("{what}: printed edited message does not re-parse: {e:?}\nprinted: {out:?}")
        }
    };
    assert!(
        re == *m,
        "{what}: re-parse of edited message differs\nedited:  {m:?}\nreparsed: {re:?}\nprinted: {out:?}"
    );
    assert_eq!(
        re.to_bytes(),
        out,
        "{what}: reparse does not print identically"
    );
}

/// Header/body edits only: the start line stays as received.
fn edit_headers(orig: &Message) -> Message {
    let mut m = orig.clone();

    let vias_before = m.values(HeaderName::Via).count();
    let removed = m.remove_first_value(HeaderName::Via);
    assert_eq!(removed, vias_before > 0);
    if removed {
        assert_eq!(
            m.values(HeaderName::Via).count(),
            vias_before - 1,
            "remove_first_value(Via) removed other than one value"
        );
    }

    m.set_header("X-Fuzz", b"fuzz").expect("set_header X-Fuzz");
    assert_eq!(m.header_by_name("x-fuzz"), Some(&b"fuzz"[..]));
    assert_eq!(m.header_by_name("X-Fuzz"), Some(&b"fuzz"[..]));
    assert_eq!(m.set_header("Bad Name", b"x"), Err(EditError::BadName));
    assert_eq!(
        m.set_header("X-Inject", b"a\r\nVia: evil"),
        Err(EditError::BadValue)
    );

    m.prepend_header("Via", NEW_VIA).expect("prepend Via");
    let top = m.top_via().expect("top Via after prepend");
    assert_eq!(top.branch(), Some(&b"z9hG4bKfuzz"[..]));

    // Rewriting the From URI keeps display name and tag.
    if let Ok(from) = orig.from() {
        let tag = from.tag().map(<[u8]>::to_vec);
        let idx = m
            .headers()
            .position(|h| h.name == HeaderName::From)
            .expect("From present");
        m.set_header_uri(idx, NEW_FROM_URI)
            .expect("set_header_uri From");
        let nf = m.from().expect("From parses after set_header_uri");
        assert_eq!(nf.uri_raw, NEW_FROM_URI);
        assert_eq!(nf.tag().map(<[u8]>::to_vec), tag, "From tag changed");
    }

    m.set_body(Some("application/sdp"), NEW_BODY)
        .expect("set_body");
    assert_eq!(m.body(), NEW_BODY);
    assert_eq!(m.content_length().ok(), Some(Some(NEW_BODY.len() as u32)));
    assert_eq!(m.count(HeaderName::ContentLength), 1);
    assert!(m
        .content_type()
        .expect("Content-Type set")
        .expect("parses")
        .is_sdp());
    m
}

fn edit_and_check(orig: &Message, start_line_unterminated: bool) {
    // Pass A: headers and body; the start line is copied as received.
    let a = edit_headers(orig);
    exercise(&a);
    // Known bug K2 (regressions/sip_message/edit-unterminated-start-line*):
    // write_to copies a start line that had no CRLF (the whole datagram was
    // one line) without adding one, so the first header is glued to it.
    if !(start_line_unterminated && tolerate_known()) {
        check_printed(&a, "header/body edits");
    }

    // Pass B: also rewrite the start line.
    let mut b = a;
    if orig.is_request() {
        b.set_request_uri(NEW_RURI).expect("set_request_uri");
        assert_eq!(b.request_uri_raw(), Some(NEW_RURI));
        assert!(matches!(b.request_uri(), Some(Ok(Uri::Sip(_)))));
        assert_eq!(b.set_status(200, "OK"), Err(EditError::WrongKind));
    } else {
        assert_eq!(b.set_request_uri(NEW_RURI), Err(EditError::WrongKind));
        b.set_status(299, "Fuzz").expect("set_status");
        assert_eq!(b.status(), Some(299));
        assert_eq!(b.reason(), Some(&b"Fuzz"[..]));
    }
    assert_eq!(b.set_request_uri(b"not a uri"), Err(EditError::BadUri));
    exercise(&b);
    check_printed(&b, "start line + header/body edits");
}

/// What `inspect` said to answer gets an answer that parses.
fn check_reply(data: &[u8], e: &sip::Error, pk: &sip::Peek) {
    let (status, reason) = e.response().expect("Reply without a response");
    assert_eq!(e.message_kind(), Some(Kind::Request));
    assert_ne!(pk.method.as_deref(), Some("ACK"), "Reply to an ACK");
    let Some(resp) = error_response(data, e, "tag", None) else {
        // Known bug K3 (regressions/sip_message/reply-without-response*):
        // inspect's size estimate (`answerable`) says "fits" while
        // error_response's exact check says "too large", for requests whose
        // copied headers total just under 16 KiB.
        assert!(
            tolerate_known() && data.len() > 8 * 1024,
            "inspect said Reply but error_response gives None ({} byte request)",
            data.len()
        );
        return;
    };
    // Bounded size: the copied request lines are limited to 16 KiB (the
    // rule `inspect` applies too), the Unsupported echo to 1 KiB, and the
    // rest is a few fixed lines. (Before sip ba8defe the limit was on the
    // whole response and the Unsupported list was unbounded: known bug K4,
    // regressions/sip_message/error-response-over-16k*.)
    assert!(
        resp.len() <= 18 * 1024 || (tolerate_known() && e.unsupported().is_some()),
        "error response of {} bytes exceeds 18 KiB",
        resp.len()
    );
    // With a Server header and no To tag too.
    let _ = error_response(data, e, "", Some("sbc-fuzz"));
    let r = match Message::parse_with(resp.clone(), &ROOMY) {
        Ok(r) => r,
        Err(err) => panic!("error response does not parse: {err:?}\n{resp:?}"),
    };
    assert_eq!(r.status(), Some(status));
    assert_eq!(r.reason(), Some(reason.as_bytes()));
    assert!(r.count(HeaderName::Via) >= 1, "error response without Via");
    assert!(r.body().is_empty());
    assert_eq!(r.content_length().ok(), Some(Some(0)));
    if let Some(tags) = e.unsupported() {
        // The 420 echoes the unsupported tags, possibly cut (at a tag
        // boundary) when the list is long, but never none of them.
        let echoed = r
            .header(HeaderName::Unsupported)
            .expect("420 without Unsupported");
        let t = tags.as_bytes();
        // Known bug K6 (regressions/sip_message/unsupported-empty-long-tag*):
        // when the first unsupported tag alone is longer than the echo limit
        // (1 KiB), the list is cut to nothing.
        if echoed.is_empty() && tolerate_known() {
            return;
        }
        assert!(
            !echoed.is_empty(),
            "420 with an empty Unsupported header (tags: {} bytes)",
            t.len()
        );
        assert!(
            t.starts_with(echoed) && (echoed.len() == t.len() || t[echoed.len()] == b','),
            "Unsupported {echoed:?} is not a tag-boundary prefix of {tags:?}"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let input = Bytes::copy_from_slice(data);
    let parsed = Message::parse(input.clone());
    let verdict = inspect(input.clone(), &Policy::default());
    let pk = peek(data);

    if let Err(e) = &parsed {
        let _ = (e.to_string(), e.status(), e.kind());
        if e.response().is_some() {
            assert_eq!(e.message_kind(), Some(Kind::Request));
        }
    }

    match &verdict {
        Verdict::Accept(am) => {
            let m = parsed
                .as_ref()
                .expect("inspect accepted a message that parse rejected");
            assert!(am == m, "inspect's message differs from parse's");
            // Accepted means the mandatory typed views work.
            am.top_via().expect("accepted: top Via");
            am.from().expect("accepted: From");
            am.to().expect("accepted: To");
            am.call_id().expect("accepted: Call-ID");
            am.cseq().expect("accepted: CSeq");
            am.max_forwards().expect("accepted: Max-Forwards");
            if am.is_request() {
                let u = am
                    .request_uri()
                    .expect("request has a URI")
                    .expect("accepted: R-URI");
                assert!(!matches!(u, Uri::Other { .. }));
            }
        }
        Verdict::Reply(e) => check_reply(data, e, &pk),
        Verdict::Drop(e) => {
            let _ = (e.to_string(), verdict.error());
        }
    }

    let Ok(m) = parsed else { return };
    assert!(!m.is_modified());

    // Unmodified: zero-copy, byte-exact sub-slice of the input.
    let out = m.to_bytes();
    let lead = lead_crlf(data);
    assert!(
        data[lead..].starts_with(&out),
        "to_bytes is not the input minus leading CRLF: {out:?}"
    );
    if !out.is_empty() {
        let base = input.as_ptr() as usize;
        let p = out.as_ptr() as usize;
        assert!(
            p >= base && p + out.len() <= base + input.len(),
            "to_bytes of an unmodified message copied"
        );
    }
    let mut w = Vec::new();
    m.write_to(&mut w);
    assert_eq!(&w[..], &out[..]);

    let re = match Message::parse(out.clone()) {
        Ok(re) => re,
        Err(e) => panic!("to_bytes of a parsed message does not re-parse: {e:?}"),
    };
    assert_eq!(re, m, "re-parse of unmodified message differs");
    assert_eq!(re.to_bytes(), out);

    exercise(&m);
    edit_and_check(&m, !data[lead..].contains(&b'\n'));
});
