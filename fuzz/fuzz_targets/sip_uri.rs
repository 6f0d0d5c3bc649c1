//! Fuzz target: `sip::Uri::parse` on arbitrary bytes.
//!
//! Invariants checked when the URI parses:
//! * parsing is deterministic and every borrowed part (host_raw, user,
//!   password, params, headers, tel number, opaque raw) lies inside the input;
//! * the scheme agrees with the input's prefix;
//! * `Host` Display does not panic, re-parses to the same host and, for
//!   names and IPv6 references, prints exactly `host_raw`;
//! * the same URI inside `<...>` parses as a name-addr with that URI;
//! * a request built with it (`Message::new_request`) prints and re-parses
//!   with the same Request-URI, and `set_request_uri` accepts it.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sip::{Host, Message, NameAddr, ParseOptions, Scheme, Uri};

const ROOMY: ParseOptions = ParseOptions {
    max_message_size: 1 << 24,
    max_headers: 1 << 16,
};

fn inside(data: &[u8], part: &[u8]) -> bool {
    let (b, p) = (data.as_ptr() as usize, part.as_ptr() as usize);
    part.is_empty() || (p >= b && p + part.len() <= b + data.len())
}

fn check_host(host: &Host<'_>, host_raw: &str) {
    let shown = host.to_string();
    assert_eq!(
        Host::parse(host_raw.as_bytes()),
        Ok(*host),
        "host_raw re-parse"
    );
    assert_eq!(
        Host::parse(shown.as_bytes()),
        Ok(*host),
        "Display {shown:?} does not re-parse to the host"
    );
    match host {
        Host::Name(n) => {
            assert_eq!(*n, host_raw);
            assert_eq!(shown, host_raw);
        }
        Host::Ipv6 { text, .. } => {
            assert_eq!(shown, host_raw);
            assert_eq!(format!("[{text}]"), host_raw);
        }
        Host::Ipv4(a) => assert_eq!(host_raw.parse::<std::net::Ipv4Addr>().ok(), Some(*a)),
    }
    let _ = host.is_broadcast_or_multicast();
}

fuzz_target!(|data: &[u8]| {
    let uri = match Uri::parse(data) {
        Ok(u) => u,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    assert_eq!(Uri::parse(data), Ok(uri), "non-deterministic parse");
    assert!(
        !data.iter().any(|&b| b <= b' ' || b == 0x7f),
        "accepted whitespace/control characters"
    );
    let colon = data.iter().position(|&b| b == b':').expect("scheme colon");
    let scheme = &data[..colon];

    match &uri {
        Uri::Sip(s) => {
            let expect = if s.secure { Scheme::Sips } else { Scheme::Sip };
            assert_eq!(uri.scheme(), expect);
            assert!(scheme.eq_ignore_ascii_case(if s.secure { b"sips" } else { b"sip" }));
            assert!(uri.as_sip().is_some());
            assert!(
                inside(data, s.host_raw.as_bytes()),
                "host_raw not a sub-slice of input"
            );
            assert!(!s.host_raw.is_empty());
            check_host(&s.host, s.host_raw);
            for part in [s.user, s.password, s.headers].into_iter().flatten() {
                assert!(inside(data, part));
            }
            if let Some(u) = s.user {
                assert!(!u.is_empty());
            }
            assert!(inside(data, s.params_raw));
            assert!(s.params_raw.is_empty() || s.params_raw[0] == b';');
            for p in s.params() {
                assert!(inside(data, p.name));
                if let Some(v) = p.value {
                    assert!(inside(data, v));
                }
            }
            let _ = (s.transport(), s.lr(), s.port);
        }
        Uri::Tel(t) => {
            assert_eq!(uri.scheme(), Scheme::Tel);
            assert!(scheme.eq_ignore_ascii_case(b"tel"));
            assert!(inside(data, t.number.as_bytes()));
            assert!(inside(data, t.params_raw));
            let _ = (t.is_global(), t.params().count());
        }
        Uri::Other { scheme: sch, raw } => {
            assert_eq!(uri.scheme(), Scheme::Other);
            assert_eq!(raw.as_bytes(), data);
            assert_eq!(sch.as_bytes(), scheme);
            assert!(uri.as_sip().is_none());
        }
    }

    // As a bracketed name-addr.
    if !data.contains(&b'>') {
        let wrapped = [&b"<"[..], data, &b">"[..]].concat();
        let na = match NameAddr::parse(&wrapped) {
            Ok(na) => na,
            Err(e) => panic!("<uri> does not parse as a name-addr: {e:?}"),
        };
        assert!(na.bracketed);
        assert_eq!(na.uri_raw, data);
        assert_eq!(na.uri, uri);
        assert!(na.params_raw.is_empty());
    }

    // As a Request-URI of a request we build and print.
    let m = Message::new_request("OPTIONS", data).expect("new_request with a URI that parses");
    let out = m.to_bytes();
    let re = match Message::parse_with(Bytes::clone(&out), &ROOMY) {
        Ok(re) => re,
        Err(e) => panic!("request built with this URI does not re-parse: {e:?}\n{out:?}"),
    };
    assert_eq!(re.request_uri_raw(), Some(data));
    assert_eq!(re.request_uri().map(|r| r.ok()), Some(Some(uri)));

    let mut base = Message::parse(Bytes::from_static(
        b"OPTIONS sip:a@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\nl: 0\r\n\r\n",
    ))
    .expect("base request");
    base.set_request_uri(data)
        .expect("set_request_uri with a URI that parses");
    assert_eq!(base.request_uri_raw(), Some(data));
});
