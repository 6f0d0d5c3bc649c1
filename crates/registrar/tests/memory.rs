//! Memory per binding, measured: 100,000 phones register through the real
//! path (REGISTER, 401, REGISTER with credentials), and the growth of the
//! process's resident set is divided by the number of bindings. Ignored by
//! default (it wants a release build and a quiet process):
//!
//! ```text
//! cargo test --release -p registrar --test memory -- --ignored --nocapture
//! ```

use std::time::Instant;

use bytes::Bytes;
use md5::Digest;
use registrar::{AuthConfig, Binding, Config, Flow, Input, Output, Registrar, User, Users};
use sip::{HeaderName, Message};
use transaction::Transport;

const PHONES: u32 = 100_000;
const REALM: &str = "sbc.example.com";

/// Resident set size in bytes (Linux).
fn rss() -> usize {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = s
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn md5hex(s: &str) -> String {
    md5::Md5::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn register(n: u32, cseq: u32, auth: &str) -> Message {
    let text = format!(
        "REGISTER sip:{REALM} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.0.2.{}:5060;branch=z9hG4bK{n}x{cseq}\r\n\
         From: <sip:u{n}@{REALM}>;tag=f{n}\r\nTo: <sip:u{n}@{REALM}>\r\n\
         Call-ID: 5f2b8c1e-{n:08}-4d7a-9e3b@192.0.2.{}\r\nCSeq: {cseq} REGISTER\r\n\
         Supported: outbound, path\r\n{auth}\
         Contact: <sip:u{n}@192.0.2.{}:{};transport=udp;ob>;+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-{n:012}>\";reg-id=1\r\n\
         Expires: 3600\r\nContent-Length: 0\r\n\r\n",
        n % 250 + 1,
        n % 250 + 1,
        n % 250 + 1,
        1024 + n % 60000,
    );
    Message::parse(Bytes::from(text)).unwrap()
}

#[test]
#[ignore = "measurement: run alone, in release, with --nocapture"]
fn memory_per_binding_at_100k() {
    #[allow(clippy::disallowed_methods)] // a measurement needs some Instant
    let now = Instant::now();
    let users = Users::new((0..PHONES).map(|n| {
        User::with_password(&format!("+1555{n:07}"), &format!("u{n}"), REALM, "pw").unwrap()
    }))
    .unwrap();
    let config = Config {
        auth: AuthConfig {
            realm: REALM.into(),
            ..AuthConfig::default()
        },
        max_expires: 3600,
        ..Config::default()
    };
    let mut reg = Registrar::new(config, users, now);
    let h2 = md5hex(&format!("REGISTER:sip:{REALM}"));
    let before = rss();
    let mut id = 0;
    for n in 0..PHONES {
        let flow = Flow {
            transport: Transport::Udp,
            remote: std::net::SocketAddr::from((
                [192, 0, 2, (n % 250 + 1) as u8],
                1024 + (n % 60000) as u16,
            )),
            local: "198.51.100.1:5060".parse().unwrap(),
            conn: None,
        };
        id += 1;
        reg.handle(
            now,
            Input::Register {
                id,
                msg: register(n, 1, ""),
                flow,
            },
        );
        let mut challenge = None;
        while let Some(o) = reg.poll_output() {
            if let Output::Respond { response, .. } = o {
                challenge = response
                    .headers()
                    .filter(|h| h.name == HeaderName::WwwAuthenticate)
                    .map(|h| String::from_utf8_lossy(h.value).into_owned())
                    .nth(1); // the MD5 one
            }
        }
        let c = challenge.unwrap();
        let get = |k: &str| {
            c.split(", ")
                .find_map(|p| {
                    p.trim_start_matches("Digest ")
                        .strip_prefix(&format!("{k}="))
                })
                .unwrap()
                .trim_matches('"')
                .to_owned()
        };
        let (nonce, opaque) = (get("nonce"), get("opaque"));
        let h1 = md5hex(&format!("u{n}:{REALM}:pw"));
        let resp = md5hex(&format!("{h1}:{nonce}:00000001:c{n}:auth:{h2}"));
        let auth = format!(
            "Authorization: Digest username=\"u{n}\", realm=\"{REALM}\", nonce=\"{nonce}\", \
             uri=\"sip:{REALM}\", response=\"{resp}\", algorithm=MD5, cnonce=\"c{n}\", \
             opaque=\"{opaque}\", qop=auth, nc=00000001\r\n"
        );
        id += 1;
        reg.handle(
            now,
            Input::Register {
                id,
                msg: register(n, 2, &auth),
                flow,
            },
        );
        let mut ok = false;
        while let Some(o) = reg.poll_output() {
            if let Output::Respond { response, .. } = o {
                ok = response.status() == Some(200);
            }
        }
        assert!(ok, "phone {n}");
    }
    let after = rss();
    assert_eq!(reg.binding_count(), PHONES as usize);
    let per = (after.saturating_sub(before)) / PHONES as usize;
    let sample = &reg.lookup("u1", now)[0];
    eprintln!(
        "{PHONES} bindings: resident set grew {} KiB, {per} bytes per binding \
         (Binding is {} bytes inline + {} bytes of strings; {} nonce-counts tracked)",
        (after - before) / 1024,
        size_of::<Binding>(),
        sample.heap_bytes(),
        reg.authenticator().tracked_nonces(),
    );
    assert!(per <= 1024, "{per} bytes per binding");
}
