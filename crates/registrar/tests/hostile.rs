//! The registrar against messages nobody here wrote: every message of the
//! shared corpora (RFC 4475/5118 torture tests, PROTOS c07-sip, pjsip's
//! OSS-Fuzz seeds, kamailio's test messages), as received and with its
//! method made REGISTER, and random mutations of an authenticated REGISTER.
//! Each request gets exactly one answer or drop, never a panic, and every
//! answer is a message the wire can carry. Corpora are read from
//! `../shared/corpora` or `$SBC_CORPORA`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use proptest::prelude::*;
use registrar::{AuthConfig, Config, Flow, Input, Output, Registrar, User, Users};
use sip::{HeaderName, Message};
use transaction::Transport;

fn corpora() -> PathBuf {
    if let Some(p) = std::env::var_os("SBC_CORPORA") {
        return PathBuf::from(p);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpora")
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e} (corpora missing?)", dir.display()));
    for e in entries {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else if p.is_file() {
            out.push(p);
        }
    }
}

#[allow(clippy::disallowed_methods)] // tests need some Instant to start from
fn t0() -> Instant {
    Instant::now()
}

fn registrar(now: Instant) -> Registrar {
    let users = Users::new([
        User::with_password("+15550100001", "alice", "sbc.example.com", "secret").unwrap(),
        // The PROTOS messages are addressed to sut@127.0.0.1.
        User::with_password("+15550100002", "sut", "sbc.example.com", "secret").unwrap(),
    ])
    .unwrap();
    let config = Config {
        auth: AuthConfig {
            realm: "sbc.example.com".into(),
            ..AuthConfig::default()
        },
        ..Config::default()
    };
    Registrar::new(config, users, now)
}

fn flow(n: u32) -> Flow {
    Flow {
        transport: Transport::Udp,
        remote: std::net::SocketAddr::from(([192, 0, 2, (n % 250) as u8 + 1], 5060)),
        local: "198.51.100.1:5060".parse().unwrap(),
        conn: None,
    }
}

/// Feeds one message; checks it got exactly one answer and that the
/// answer parses. Returns the status (None when dropped).
fn feed(reg: &mut Registrar, now: Instant, id: u64, msg: Message, from: Flow) -> Option<u16> {
    reg.handle(
        now,
        Input::Register {
            id,
            msg,
            flow: from,
        },
    );
    let mut answers = 0;
    let mut status = None;
    while let Some(o) = reg.poll_output() {
        match o {
            Output::Respond { id: got, response } => {
                assert_eq!(got, id);
                answers += 1;
                let back = Message::parse(response.to_bytes())
                    .unwrap_or_else(|e| panic!("unparsable answer to #{id}: {e:?}"));
                status = back.status();
                assert!(
                    status.is_some_and(|s| (200..700).contains(&s)),
                    "{status:?}"
                );
            }
            Output::Dropped { id: got, .. } => {
                assert_eq!(got, id);
                answers += 1;
            }
            Output::Event(_) => {}
        }
    }
    assert_eq!(answers, 1, "request #{id}");
    status
}

/// The message with every `INVITE` (method, CSeq) made `REGISTER`.
fn as_register(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + 16);
    let mut i = 0;
    while i < raw.len() {
        if raw[i..].starts_with(b"INVITE") {
            out.extend_from_slice(b"REGISTER");
            i += 6;
        } else {
            out.push(raw[i]);
            i += 1;
        }
    }
    out
}

#[test]
fn every_corpus_message_as_a_register_gets_one_answer_and_no_panic() {
    let root = corpora();
    let mut all = Vec::new();
    for d in [
        "rfc4475",
        "rfc5118",
        "fuzz/protos-c07-sip/rendered-invite",
        "fuzz/pjsip-ossfuzz-seeds/fuzz-sip",
        "fuzz/pjsip-ossfuzz-seeds/fuzz-sip-dialog",
        "fuzz/kamailio-test-misc-sip",
    ] {
        files(&root.join(d), &mut all);
    }
    all.sort();
    let now = t0();
    let mut reg = registrar(now);
    let (mut fed, mut registers, mut id) = (0u32, 0u32, 0u64);
    let mut statuses = std::collections::BTreeMap::new();
    for path in &all {
        let raw = std::fs::read(path).unwrap();
        // Kamailio's files have bare LF line ends; the parser takes both.
        for bytes in [raw.clone(), as_register(&raw)] {
            let Ok(msg) = Message::parse(Bytes::from(bytes)) else {
                continue;
            };
            if !msg.is_request() {
                continue;
            }
            registers += u32::from(msg.method() == Some(sip::Method::Register));
            id += 1;
            fed += 1;
            let s = feed(&mut reg, now, id, msg, flow(fed));
            *statuses.entry(s).or_insert(0u32) += 1;
        }
    }
    eprintln!(
        "{fed} requests ({registers} REGISTER) from {} files: {statuses:?}",
        all.len()
    );
    assert!(all.len() > 4500, "corpus shrank: {} files", all.len());
    assert!(
        registers > 4000,
        "only {registers} REGISTERs of {fed} requests"
    );
    // Unauthenticated REGISTERs that read well are challenged; the rest are
    // 400/405/420: nothing was ever bound.
    assert!(
        statuses.get(&Some(401)).is_some_and(|&n| n > 1000),
        "{statuses:?}"
    );
    assert!(
        statuses.get(&Some(400)).is_some_and(|&n| n > 100),
        "{statuses:?}"
    );
    assert_eq!(reg.binding_count(), 0, "{statuses:?}");
    assert_eq!(statuses.get(&Some(200)), None, "{statuses:?}");
    // Time passing with nothing bound is quiet.
    reg.handle(now + Duration::from_secs(3600), Input::Timeout);
    assert!(reg.poll_output().is_none());
}

/// A REGISTER for alice with correct credentials for `challenge`.
fn authorized(challenge: &str, cseq: u32) -> String {
    let get = |name: &str| {
        challenge
            .split(", ")
            .find_map(|p| {
                p.trim_start_matches("Digest ")
                    .strip_prefix(&format!("{name}="))
            })
            .unwrap()
            .trim_matches('"')
            .to_owned()
    };
    let (nonce, opaque) = (get("nonce"), get("opaque"));
    // Computed from scratch, as a phone would, not with the crate's code.
    let md5 = |s: &str| {
        use md5::Digest;
        let d = md5::Md5::digest(s.as_bytes());
        d.iter().map(|b| format!("{b:02x}")).collect::<String>()
    };
    let h1 = md5("alice:sbc.example.com:secret");
    let h2 = md5("REGISTER:sip:sbc.example.com");
    let resp = md5(&format!("{h1}:{nonce}:00000001:abc:auth:{h2}"));
    format!(
        "REGISTER sip:sbc.example.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKp{cseq}\r\n\
         From: <sip:alice@sbc.example.com>;tag=p\r\nTo: <sip:alice@sbc.example.com>\r\n\
         Call-ID: prop@192.0.2.10\r\nCSeq: {cseq} REGISTER\r\n\
         Supported: outbound, path\r\nPath: <sip:edge.example.com;lr>\r\n\
         Authorization: Digest username=\"alice\", realm=\"sbc.example.com\", nonce=\"{nonce}\", \
         uri=\"sip:sbc.example.com\", response=\"{resp}\", algorithm=MD5, cnonce=\"abc\", \
         opaque=\"{opaque}\", qop=auth, nc=00000001\r\n\
         Contact: <sip:alice@192.0.2.10;transport=tcp>;+sip.instance=\"<urn:uuid:1>\";reg-id=1;q=0.5;expires=600\r\n\
         Expires: 3600\r\nContent-Length: 0\r\n\r\n"
    )
}

#[test]
fn the_unmutated_template_registers() {
    let now = t0();
    let mut reg = registrar(now);
    let m = Message::parse(Bytes::from_static(
        b"REGISTER sip:sbc.example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bK0\r\n\
          From: <sip:alice@sbc.example.com>;tag=p\r\nTo: <sip:alice@sbc.example.com>\r\n\
          Call-ID: prop@192.0.2.10\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n",
    ))
    .unwrap();
    reg.handle(
        now,
        Input::Register {
            id: 1,
            msg: m,
            flow: flow(1),
        },
    );
    let Some(Output::Respond { response, .. }) = reg.poll_output() else {
        panic!()
    };
    let c: Vec<String> = response
        .headers()
        .filter(|h| h.name == HeaderName::WwwAuthenticate)
        .map(|h| String::from_utf8_lossy(h.value).into_owned())
        .collect();
    let m = Message::parse(Bytes::from(authorized(&c[1], 2))).unwrap();
    assert_eq!(feed(&mut reg, now, 2, m, flow(1)), Some(200));
    assert_eq!(reg.lookup("alice", now).len(), 1);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Random byte edits (overwrite, insert, delete) of an authenticated
    /// REGISTER: whatever still parses gets one answer and no panic.
    #[test]
    fn mutated_registers_never_panic(
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..12)
    ) {
        let now = t0();
        let mut reg = registrar(now);
        let m = Message::parse(Bytes::from_static(
            b"REGISTER sip:sbc.example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bK0\r\n\
              From: <sip:alice@sbc.example.com>;tag=p\r\nTo: <sip:alice@sbc.example.com>\r\n\
              Call-ID: prop@192.0.2.10\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n",
        )).unwrap();
        reg.handle(now, Input::Register { id: 1, msg: m, flow: flow(1) });
        let Some(Output::Respond { response, .. }) = reg.poll_output() else { panic!() };
        let c = String::from_utf8_lossy(
            response.header(HeaderName::WwwAuthenticate).unwrap()
        ).into_owned();
        let md5 = response
            .headers()
            .filter(|h| h.name == HeaderName::WwwAuthenticate)
            .map(|h| String::from_utf8_lossy(h.value).into_owned())
            .nth(1)
            .unwrap_or(c);
        let mut bytes = authorized(&md5, 2).into_bytes();
        for (at, b, op) in edits {
            let i = at.index(bytes.len());
            match op {
                0 => bytes[i] = b,
                1 => bytes.insert(i, b),
                _ => { bytes.remove(i); }
            }
        }
        if let Ok(m) = Message::parse(Bytes::from(bytes)) {
            if m.is_request() {
                feed(&mut reg, now, 2, m, flow(1));
            }
        }
        reg.handle(now + Duration::from_secs(7200), Input::Timeout);
        while reg.poll_output().is_some() {}
        prop_assert_eq!(reg.binding_count(), 0);
    }
}
