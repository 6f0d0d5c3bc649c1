//! The registrar's rules, one test each, driven the way a phone drives it:
//! REGISTER, 401, REGISTER with credentials computed from the challenge.

use std::time::{Duration, Instant};

use sip::{HeaderName, Message};
use transaction::Transport;

use super::*;
use crate::digest::Ha1;
use crate::protect::{BlockAction, ProtectConfig};
use crate::store::{MemoryStore, Store};
use crate::testutil::{msg, param, t0, Answer as Digest};
use crate::users::{User, Users};

const REALM: &str = "sbc.example.com";
const ALICE: &str = "+15550100001";
const BOB: &str = "+15550100002";

fn users() -> Users {
    let bob = Ha1::from_password("bob", REALM, "bobpw");
    let md5 = crate::digest::hex(bob.get(crate::Algorithm::Md5).unwrap());
    Users::new([
        User::with_password(ALICE, "alice", REALM, "secret").unwrap(),
        User::new(BOB, "bob", Ha1::from_hex(Some(&md5), None).unwrap()).unwrap(),
    ])
    .unwrap()
}

fn config() -> Config {
    Config {
        auth: AuthConfig {
            realm: REALM.into(),
            nonce_lifetime: Duration::from_secs(30),
            seed: 1,
            max_tracked_nonces: 1000,
        },
        protect: ProtectConfig {
            max_failures_per_ip: 3,
            max_failures_per_user: 0,
            window: Duration::from_secs(60),
            block_for: Duration::from_secs(300),
            action: BlockAction::Drop,
            max_tracked: 1000,
        },
        default_expires: 600,
        min_expires: 60,
        max_expires: 3600,
        max_contacts: 3,
        flow_timer_stream: 120,
        flow_timer_udp: 29,
    }
}

fn udp(port: u16) -> Flow {
    Flow {
        transport: Transport::Udp,
        remote: format!("192.0.2.10:{port}").parse().unwrap(),
        local: "198.51.100.1:5060".parse().unwrap(),
        conn: None,
    }
}

fn tcp(port: u16, conn: u64) -> Flow {
    Flow {
        transport: Transport::Tcp,
        remote: format!("192.0.2.10:{port}").parse().unwrap(),
        local: "198.51.100.1:5060".parse().unwrap(),
        conn: Some(conn),
    }
}

struct Phone {
    user: &'static str,
    password: &'static str,
    to: String,
    call_id: String,
    cseq: u32,
    flow: Flow,
}

fn phone(user: &'static str, password: &'static str) -> Phone {
    Phone {
        user,
        password,
        to: format!("sip:{user}@{REALM}"),
        call_id: format!("{user}-call@192.0.2.10"),
        cseq: 0,
        flow: udp(5060),
    }
}

impl Phone {
    fn request(&mut self, extra: &str, authorization: Option<&str>) -> Message {
        self.cseq += 1;
        let auth = authorization.map_or(String::new(), |a| format!("Authorization: {a}\n"));
        msg(&format!(
            "REGISTER sip:{REALM} SIP/2.0\n\
             Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK{}-{}\n\
             From: <sip:{}@{REALM}>;tag=p1\nTo: <{}>\nCall-ID: {}\nCSeq: {} REGISTER\n\
             {auth}{extra}Content-Length: 0\n\n",
            self.user, self.cseq, self.user, self.to, self.call_id, self.cseq
        ))
    }

    fn authorization(&self, challenge: &str, nc: u32) -> String {
        Digest {
            username: self.user,
            password: self.password,
            method: "REGISTER",
            uri: &format!("sip:{REALM}"),
            nc,
            cnonce: "c0ffee",
        }
        .to(challenge)
    }
}

#[derive(Debug, Default)]
struct Reply {
    response: Option<Message>,
    events: Vec<Event>,
    dropped: Option<DropReason>,
}

impl Reply {
    fn status(&self) -> Option<u16> {
        self.response.as_ref().and_then(Message::status)
    }

    fn reason(&self) -> String {
        let r = self
            .response
            .as_ref()
            .and_then(Message::reason)
            .unwrap_or(b"");
        String::from_utf8_lossy(r).into_owned()
    }

    fn header(&self, name: &str) -> Option<String> {
        let v = self.response.as_ref()?.header_by_name(name)?;
        Some(String::from_utf8_lossy(v).into_owned())
    }

    fn all(&self, name: HeaderName) -> Vec<String> {
        self.response.as_ref().map_or(Vec::new(), |r| {
            r.headers()
                .filter(|h| h.name == name)
                .map(|h| String::from_utf8_lossy(h.value).into_owned())
                .collect()
        })
    }

    fn contacts(&self) -> Vec<String> {
        self.all(HeaderName::Contact)
    }
}

struct World {
    reg: Registrar,
    now: Instant,
    id: u64,
}

fn world() -> World {
    let now = t0();
    World {
        reg: Registrar::new(config(), users(), now),
        now,
        id: 0,
    }
}

impl World {
    fn send(&mut self, m: Message, flow: Flow) -> Reply {
        self.id += 1;
        self.reg.handle(
            self.now,
            Input::Register {
                id: self.id,
                msg: m,
                flow,
            },
        );
        self.drain()
    }

    fn drain(&mut self) -> Reply {
        let mut r = Reply::default();
        while let Some(o) = self.reg.poll_output() {
            match o {
                Output::Respond { id, response } => {
                    assert_eq!(id, self.id);
                    // Every response is one the wire can carry.
                    let bytes = response.to_bytes();
                    r.response = Some(Message::parse(bytes).unwrap());
                }
                Output::Dropped { id, reason, .. } => {
                    assert_eq!(id, self.id);
                    r.dropped = Some(reason);
                }
                Output::Event(e) => r.events.push(e),
            }
        }
        r
    }

    /// REGISTER, 401, REGISTER with credentials for the `alg_index`th
    /// challenge; returns (the 401, the final reply).
    fn register_with(&mut self, p: &mut Phone, extra: &str, alg_index: usize) -> (Reply, Reply) {
        let first = p.request(extra, None);
        let challenge = self.send(first, p.flow);
        assert_eq!(challenge.status(), Some(401), "{:?}", challenge.response);
        let c = challenge.all(HeaderName::WwwAuthenticate);
        let auth = p.authorization(&c[alg_index.min(c.len() - 1)], 1);
        let m = p.request(extra, Some(&auth));
        let reply = self.send(m, p.flow);
        (challenge, reply)
    }

    fn register(&mut self, p: &mut Phone, extra: &str) -> Reply {
        self.register_with(p, extra, 0).1
    }

    fn advance(&mut self, d: Duration) {
        self.now += d;
        while let Some(t) = self.reg.poll_timeout() {
            if t > self.now {
                break;
            }
            self.reg.handle(self.now, Input::Timeout);
        }
    }
}

fn uris(bindings: &[Binding]) -> Vec<String> {
    bindings
        .iter()
        .map(|b| String::from_utf8_lossy(&b.uri).into_owned())
        .collect()
}

// ----- authentication -------------------------------------------------------

#[test]
fn unauthenticated_register_is_challenged_sha256_then_md5() {
    let mut w = world();
    let mut p = phone("alice", "secret");
    let r = w.send(p.request("Contact: <sip:alice@192.0.2.10>\n", None), p.flow);
    assert_eq!(r.status(), Some(401));
    let c = r.all(HeaderName::WwwAuthenticate);
    assert_eq!(c.len(), 2);
    assert_eq!(param(&c[0], "algorithm").as_deref(), Some("SHA-256"));
    assert_eq!(param(&c[1], "algorithm").as_deref(), Some("MD5"));
    assert_eq!(param(&c[0], "realm").as_deref(), Some(REALM));
    assert_eq!(param(&c[0], "qop").as_deref(), Some("auth"));
    assert!(param(&c[0], "opaque").is_some());
    assert!(r.response.as_ref().unwrap().to().unwrap().tag().is_some());
    assert_eq!(w.reg.counters().challenged, 1);
    assert_eq!(w.reg.binding_count(), 0, "nothing stored before auth");
}

#[test]
fn challenge_response_round_trip_registers_with_either_algorithm() {
    for alg in [0, 1] {
        let mut w = world();
        let mut p = phone("alice", "secret");
        let (_, r) = w.register_with(&mut p, "Contact: <sip:alice@192.0.2.10:5060>\n", alg);
        assert_eq!(r.status(), Some(200), "algorithm #{alg}: {}", r.reason());
        assert_eq!(
            r.contacts(),
            vec!["<sip:alice@192.0.2.10:5060>;expires=600"]
        );
        let [Event::BindingAdded { binding, ttl }] = &r.events[..] else {
            panic!("{:?}", r.events)
        };
        assert_eq!(*ttl, Duration::from_secs(600));
        assert_eq!(&*binding.aor, ALICE);
        assert_eq!(binding.flow, p.flow);
        let c = w.reg.counters();
        assert_eq!((c.registered, c.ok, c.challenged), (1, 1, 1));
    }
}

#[test]
fn a_user_with_only_an_md5_ha1_is_challenged_with_md5_only() {
    let mut w = world();
    let mut p = phone("bob", "bobpw");
    let (challenge, r) = w.register_with(&mut p, "Contact: <sip:bob@192.0.2.11>\n", 0);
    let c = challenge.all(HeaderName::WwwAuthenticate);
    assert_eq!(c.len(), 1);
    assert_eq!(param(&c[0], "algorithm").as_deref(), Some("MD5"));
    assert_eq!(r.status(), Some(200));
}

#[test]
fn wrong_password_is_challenged_again_and_counted() {
    let mut w = world();
    let mut p = phone("alice", "wrong");
    let (_, r) = w.register_with(&mut p, "Contact: <sip:alice@192.0.2.10>\n", 0);
    assert_eq!(r.status(), Some(401));
    assert_eq!(r.all(HeaderName::WwwAuthenticate).len(), 2);
    let c = w.reg.counters();
    assert_eq!((c.auth_failed, c.challenged), (1, 2));
    assert_eq!(w.reg.binding_count(), 0);
}

#[test]
fn expired_nonce_with_a_correct_response_gets_stale_true() {
    let mut w = world();
    let mut p = phone("alice", "secret");
    let r = w.send(p.request("Contact: <sip:alice@192.0.2.10>\n", None), p.flow);
    let c = r.all(HeaderName::WwwAuthenticate).remove(0);
    w.advance(Duration::from_secs(31));
    let m = p.request(
        "Contact: <sip:alice@192.0.2.10>\n",
        Some(&p.authorization(&c, 1)),
    );
    let r = w.send(m, p.flow);
    assert_eq!(r.status(), Some(401));
    let fresh = r.all(HeaderName::WwwAuthenticate);
    assert!(fresh
        .iter()
        .all(|c| param(c, "stale").as_deref() == Some("true")));
    assert_eq!(w.reg.counters().stale, 1);
    assert_eq!(w.reg.counters().auth_failed, 0, "stale is not a failure");
    // The phone retries with the new nonce and gets in.
    let m = p.request(
        "Contact: <sip:alice@192.0.2.10>\n",
        Some(&p.authorization(&fresh[0], 1)),
    );
    assert_eq!(w.send(m, p.flow).status(), Some(200));
}

#[test]
fn a_replayed_nonce_count_is_refused() {
    let mut w = world();
    let mut p = phone("alice", "secret");
    let r = w.send(p.request("", None), p.flow);
    let c = r.all(HeaderName::WwwAuthenticate).remove(0);
    let auth = p.authorization(&c, 1);
    let m = p.request("Contact: <sip:alice@192.0.2.10>\n", Some(&auth));
    assert_eq!(w.send(m, p.flow).status(), Some(200));
    // The same credentials again (an attacker replaying them with a new CSeq).
    let m = p.request("Contact: <sip:evil@203.0.113.66>\n", Some(&auth));
    let r = w.send(m, p.flow);
    assert_eq!(r.status(), Some(401));
    assert_eq!(w.reg.counters().replay, 1);
    assert_eq!(
        uris(&w.reg.lookup(ALICE, w.now)),
        vec!["sip:alice@192.0.2.10"]
    );
    // The next nonce-count is fine.
    let m = p.request(
        "Contact: <sip:alice@192.0.2.10>\n",
        Some(&p.authorization(&c, 2)),
    );
    assert_eq!(w.send(m, p.flow).status(), Some(200));
}

#[test]
fn credentials_for_another_realm_get_a_fresh_challenge() {
    let mut w = world();
    let mut p = phone("alice", "secret");
    let r = w.send(p.request("", None), p.flow);
    let c = r.all(HeaderName::WwwAuthenticate).remove(0);
    let other = p.authorization(&c, 1).replace(REALM, "other.example.net");
    let r = w.send(p.request("", Some(&other)), p.flow);
    assert_eq!(r.status(), Some(401));
    assert_eq!(r.all(HeaderName::WwwAuthenticate).len(), 2);
    assert_eq!(w.reg.counters().auth_failed, 0);
}

#[test]
fn malformed_or_oversized_credentials_are_400() {
    let mut w = world();
    let mut p = phone("alice", "secret");
    let r = w.send(p.request("", Some("Digest username=\"alice")), p.flow);
    assert_eq!(
        (r.status(), r.reason().as_str()),
        (Some(400), "unterminated quoted string")
    );
    let huge = format!(
        "Digest username=\"{}\", realm=\"{REALM}\", nonce=\"n\", uri=\"sip:{REALM}\", response=\"0\"",
        "a".repeat(300)
    );
    let r = w.send(p.request("", Some(&huge)), p.flow);
    assert_eq!(
        (r.status(), r.reason().as_str()),
        (Some(400), "username too long")
    );
    assert_eq!(w.reg.counters().bad_request, 2);
}

#[test]
fn registering_another_users_aor_is_403_and_an_unknown_aor_is_404() {
    let mut w = world();
    let mut p = phone("alice", "secret");
    p.to = format!("sip:{BOB}@{REALM};user=phone");
    let r = w.register(&mut p, "Contact: <sip:alice@192.0.2.10>\n");
    assert_eq!(
        (r.status(), r.reason().as_str()),
        (Some(403), "Not Allowed For This AOR")
    );
    p.to = format!("sip:nobody@{REALM}");
    let r = w.register(&mut p, "Contact: <sip:alice@192.0.2.10>\n");
    assert_eq!(r.status(), Some(404));
    // Her own number, as a tel URI, is hers.
    p.to = format!("tel:{ALICE}");
    let r = w.register(&mut p, "Contact: <sip:alice@192.0.2.10>\n");
    assert_eq!(r.status(), Some(200));
    let c = w.reg.counters();
    assert_eq!((c.forbidden, c.not_found), (1, 1));
}

// ----- expiry rules ---------------------------------------------------------

#[test]
fn contact_expires_beats_the_header_which_beats_the_default() {
    let mut w = world();
    let mut p = phone("alice", "secret");
    let r = w.register(
        &mut p,
        "Expires: 900\nContact: <sip:a@192.0.2.10>;expires=120, <sip:b@192.0.2.10>\n",
    );
    assert_eq!(r.status(), Some(200));
    let mut c = r.contacts();
    c.sort();
    assert_eq!(
        c,
        vec![
            "<sip:a@192.0.2.10>;expires=120",
            "<sip:b@192.0.2.10>;expires=900"
        ]
    );
    let r = w.register(&mut p, "Contact: <sip:c@192.0.2.10>\n");
    assert!(r
        .contacts()
        .contains(&"<sip:c@192.0.2.10>;expires=600".to_owned()));
}

#[test]
fn below_min_expires_is_423_with_min_expires_and_nothing_stored() {
    let mut w = world();
    let mut p = phone("alice", "secret");
    let r = w.register(
        &mut p,
        "Contact: <sip:a@192.0.2.10>;expires=600, <sip:b@192.0.2.10>;expires=30\n",
    );
    assert_eq!(r.status(), Some(423));
    assert_eq!(r.header("Min-Expires").as_deref(), Some("60"));
    assert!(r.events.is_empty());
    assert_eq!(w.reg.binding_count(), 0);
    assert_eq!(w.reg.counters().interval_too_brief, 1);
}

#[test]
fn above_max_expires_is_shortened() {
    let mut w = world();
    let mut p = phone("alice", "secret");
    let r = w.register(
        &mut p,
        "Expires: 99999999999\nContact: <sip:a@192.0.2.10>\n",
    );
    assert_eq!(r.contacts(), vec!["<sip:a@192.0.2.10>;expires=3600"]);
}

#[test]
fn expires_zero_removes_one_binding_per_contact_or_header() {
    let mut w = world();
    let mut p = phone("alice", "secret");
    w.register(
        &mut p,
        "Contact: <sip:a@192.0.2.10>, <sip:b@192.0.2.10>, <sip:c@192.0.2.10>\n",
    );
    assert_eq!(w.reg.binding_count(), 3);
    let r = w.register(&mut p, "Contact: <sip:a@192.0.2.10>;expires=0\n");
    assert_eq!(r.contacts().len(), 2);
    assert!(
        matches!(&r.events[..], [Event::BindingRemoved { binding }] if &binding.uri[..] == b"sip:a@192.0.2.10")
    );
    let r = w.register(
        &mut p,
        "Expires: 0\nContact: <sip:B@192.0.2.10>, <sip:b@192.0.2.10>\n",
    );
    assert_eq!(
        r.contacts(),
        vec!["<sip:c@192.0.2.10>;expires=600"],
        "user parts are case-sensitive"
    );
    assert_eq!(w.reg.counters().removed, 2);
}

#[test]
fn contact_star_with_expires_zero_removes_all_and_otherwise_is_400() {
    let mut w = world();
    let mut p = phone("alice", "secret");
    w.register(&mut p, "Contact: <sip:a@192.0.2.10>, <sip:b@192.0.2.10>\n");
    // Malformed requests are answered before authentication.
    let r = w.send(p.request("Contact: *\n", None), p.flow);
    assert_eq!(
        (r.status(), r.reason().as_str()),
        (Some(400), "Contact * Needs Expires: 0")
    );
    let r = w.register(&mut p, "Contact: *\nExpires: 0\n");
    assert_eq!(r.status(), Some(200));
    assert!(r.contacts().is_empty());
    assert_eq!(r.events.len(), 2);
    assert!(w.reg.lookup(ALICE, w.now).is_empty());
}

#[test]
fn more_contacts_than_allowed_is_403_and_changes_nothing() {
    let mut w = world();
    let mut p = phone("alice", "secret");
    w.register(&mut p, "Contact: <sip:a@192.0.2.10>, <sip:b@192.0.2.10>\n");
    let r = w.register(&mut p, "Contact: <sip:c@192.0.2.10>, <sip:d@192.0.2.10>\n");
    assert_eq!(
        (r.status(), r.reason().as_str()),
        (Some(403), "Too Many Contacts")
    );
    assert!(r.events.is_empty());
    assert_eq!(uris(&w.reg.lookup(ALICE, w.now)).len(), 2);
    // Replacing one while adding one stays within the limit.
    let r = w.register(
        &mut p,
        "Contact: <sip:a@192.0.2.10>;expires=0, <sip:c@192.0.2.10>\n",
    );
    assert_eq!(r.status(), Some(200));
    assert_eq!(w.reg.counters().too_many_contacts, 1);
}

#[test]
fn lookup_gives_highest_q_first() {
    let mut w = world();
    let mut p = phone("alice", "secret");
    w.register(
        &mut p,
        "Contact: <sip:low@192.0.2.10>;q=0.1, <sip:none@192.0.2.10>, <sip:mid@192.0.2.10>;q=0.5\n",
    );
    assert_eq!(
        uris(&w.reg.lookup(ALICE, w.now)),
        vec![
            "sip:none@192.0.2.10",
            "sip:mid@192.0.2.10",
            "sip:low@192.0.2.10"
        ]
    );
    for key in [
        "alice",
        "15550100001",
        "sip:+15550100001@sbc.example.com;user=phone",
        "tel:+15550100001",
        "sip:alice@sbc.example.com",
    ] {
        assert_eq!(w.reg.lookup(key, w.now).len(), 3, "{key}");
    }
    assert!(w.reg.lookup("bob", w.now).is_empty());
    assert!(w.reg.lookup("", w.now).is_empty());
}

// ----- Call-ID / CSeq -------------------------------------------------------

#[test]
fn same_call_id_with_a_cseq_not_above_the_bindings_is_500() {
    let mut w = world();
    let mut p = phone("alice", "secret");
    w.register(&mut p, "Contact: <sip:a@192.0.2.10>\n");
    let stored = p.cseq;
    // An older REGISTER of the same Call-ID arrives late (credentials fresh).
    let r = w.send(p.request("", None), p.flow);
    let c = r.all(HeaderName::WwwAuthenticate).remove(0);
    p.cseq = stored - 1; // the next request carries `stored`
    let m = p.request(
        "Contact: <sip:a@192.0.2.10>;expires=0\n",
        Some(&p.authorization(&c, 1)),
    );
    let r = w.send(m, p.flow);
    assert_eq!((r.status(), r.reason().as_str()), (Some(500), "Stale CSeq"));
    assert!(r.events.is_empty());
    assert_eq!(w.reg.binding_count(), 1, "the binding stays");
    assert_eq!(w.reg.counters().out_of_order, 1);
    // Contact: * follows the same rule.
    p.cseq = stored - 2;
    let m = p.request("Contact: *\nExpires: 0\n", Some(&p.authorization(&c, 2)));
    assert_eq!(w.send(m, p.flow).status(), Some(500));
}

#[test]
fn another_call_id_updates_whatever_its_cseq() {
    let mut w = world();
    let mut p = phone("alice", "secret");
    p.cseq = 100;
    w.register(&mut p, "Contact: <sip:a@192.0.2.10>\n");
    // The phone rebooted: new Call-ID, CSeq from 1.
    p.call_id = "rebooted@192.0.2.10".into();
    p.cseq = 0;
    let r = w.register(&mut p, "Contact: <sip:a@192.0.2.10>;expires=300\n");
    assert_eq!(r.status(), Some(200));
    assert!(
        matches!(&r.events[..], [Event::BindingRefreshed { ttl, .. }] if *ttl == Duration::from_secs(300))
    );
    assert_eq!(
        &w.reg.lookup(ALICE, w.now)[0].call_id[..],
        b"rebooted@192.0.2.10"
    );
}

// ----- RFC 5626 outbound and RFC 3327 Path ----------------------------------

const OB: &str = "Supported: outbound, path\n";

fn ob_contact(reg_id: u32) -> String {
    format!(
        "Contact: <sip:alice@192.0.2.10;transport=tcp;ob>;+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>\";reg-id={reg_id}\n"
    )
}

#[test]
fn outbound_registration_requires_outbound_and_gets_a_flow_timer() {
    let mut w = world();
    let mut p = phone("alice", "secret");
    p.flow = tcp(40001, 7);
    let r = w.register(&mut p, &format!("{OB}{}", ob_contact(1)));
    assert_eq!(r.status(), Some(200));
    assert_eq!(r.header("Require").as_deref(), Some("outbound"));
    assert_eq!(r.header("Flow-Timer").as_deref(), Some("120"));
    let b = &w.reg.lookup(ALICE, w.now)[0];
    assert_eq!(b.reg_id, Some(1));
    assert_eq!(b.flow.conn, Some(7));
    let c = &r.contacts()[0];
    assert!(
        c.contains(";reg-id=1") && c.ends_with(";expires=600"),
        "{c}"
    );
    // Over UDP the keep-alive asked for is shorter.
    let mut q = phone("bob", "bobpw");
    let r = w.register(
        &mut q,
        &format!("{OB}{}", ob_contact(1).replace("alice", "bob")),
    );
    assert_eq!(r.header("Flow-Timer").as_deref(), Some("29"));
}

#[test]
fn a_new_flow_with_the_same_instance_and_reg_id_replaces_the_old_one() {
    let mut w = world();
    let mut p = phone("alice", "secret");
    p.flow = tcp(40001, 7);
    w.register(&mut p, &format!("{OB}{}", ob_contact(1)));
    // The connection broke; the phone reconnects (new port, new connection,
    // new Call-ID) and registers the same flow again.
    p.flow = tcp(40002, 8);
    p.call_id = "after-reconnect".into();
    let r = w.register(&mut p, &format!("{OB}{}", ob_contact(1)));
    assert!(
        matches!(&r.events[..], [Event::BindingRefreshed { .. }]),
        "{:?}",
        r.events
    );
    let all = w.reg.lookup(ALICE, w.now);
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].flow, tcp(40002, 8));
    // A second flow (reg-id 2) is a second binding.
    p.flow = tcp(40003, 9);
    let r = w.register(&mut p, &format!("{OB}{}", ob_contact(2)));
    assert_eq!(r.contacts().len(), 2);
}

#[test]
fn without_supported_outbound_the_reg_id_is_ignored() {
    let mut w = world();
    let mut p = phone("alice", "secret");
    let r = w.register(&mut p, &ob_contact(1));
    assert_eq!(r.status(), Some(200));
    assert_eq!(r.header("Require"), None);
    assert_eq!(r.header("Flow-Timer"), None);
    assert_eq!(w.reg.lookup(ALICE, w.now)[0].reg_id, None);
}

#[test]
fn path_is_stored_and_echoed_when_supported() {
    let mut w = world();
    let mut p = phone("alice", "secret");
    let path = "Path: <sip:edge1.example.com;lr>\nPath: <sip:edge2.example.com;lr>\n";
    let r = w.register(&mut p, &format!("{OB}{path}Contact: <sip:a@192.0.2.10>\n"));
    assert_eq!(
        r.all(HeaderName::Path),
        vec!["<sip:edge1.example.com;lr>, <sip:edge2.example.com;lr>"]
    );
    let b = &w.reg.lookup(ALICE, w.now)[0];
    assert_eq!(
        &b.path[..],
        b"<sip:edge1.example.com;lr>, <sip:edge2.example.com;lr>"
    );
    let r = w.register(&mut p, &format!("{path}Contact: <sip:a@192.0.2.10>\n"));
    assert!(
        r.all(HeaderName::Path).is_empty(),
        "not echoed without Supported: path"
    );
}

// ----- bad input ------------------------------------------------------------

#[test]
fn bad_contact_or_expires_is_400_with_a_reason_and_nothing_stored() {
    let mut w = world();
    let mut p = phone("alice", "secret");
    for (extra, why) in [
        ("Contact: <sip:a@192.0.2.10\n", "Bad Contact"),
        (
            "Expires: tomorrow\nContact: <sip:a@192.0.2.10>\n",
            "Bad Expires",
        ),
        (
            "Contact: <sip:a@192.0.2.10>;expires=soon\n",
            "Bad Contact expires",
        ),
    ] {
        let r = w.send(p.request(extra, None), p.flow);
        assert_eq!(
            (r.status(), r.reason().as_str()),
            (Some(400), why),
            "{extra}"
        );
    }
    assert_eq!(w.reg.binding_count(), 0);
    assert_eq!(w.reg.counters().bad_request, 3);
}

#[test]
fn a_register_without_contact_fetches_the_bindings() {
    let mut w = world();
    let mut p = phone("alice", "secret");
    w.register(&mut p, "Contact: <sip:a@192.0.2.10>\n");
    w.advance(Duration::from_secs(100));
    let r = w.register(&mut p, "");
    assert_eq!(r.contacts(), vec!["<sip:a@192.0.2.10>;expires=500"]);
    assert!(r.events.is_empty());
    assert_eq!(w.reg.counters().queried, 1);
}

#[test]
fn other_methods_get_405_and_unknown_requirements_420() {
    let mut w = world();
    let m = msg(
        "INVITE sip:alice@sbc.example.com SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bK9\n\
         From: <sip:x@h>;tag=1\nTo: <sip:alice@sbc.example.com>\nCall-ID: i\nCSeq: 1 INVITE\n\n",
    );
    let r = w.send(m, udp(5060));
    assert_eq!(r.status(), Some(405));
    assert_eq!(r.header("Allow").as_deref(), Some("REGISTER"));
    let mut p = phone("alice", "secret");
    let r = w.send(p.request("Require: gruu\n", None), p.flow);
    assert_eq!(r.status(), Some(420));
    assert_eq!(r.header("Unsupported").as_deref(), Some("gruu"));
}

// ----- expiry ---------------------------------------------------------------

#[test]
fn bindings_expire_at_their_time_with_an_event() {
    let mut w = world();
    let mut p = phone("alice", "secret");
    let start = w.now;
    w.register(
        &mut p,
        "Contact: <sip:short@192.0.2.10>;expires=60, <sip:long@192.0.2.10>;expires=120\n",
    );
    assert_eq!(w.reg.poll_timeout(), Some(start + Duration::from_secs(60)));
    // At the instant of expiry it is gone from lookup even before the timer.
    assert_eq!(
        uris(&w.reg.lookup(ALICE, start + Duration::from_secs(60))),
        vec!["sip:long@192.0.2.10"]
    );
    w.now = start + Duration::from_secs(60);
    w.reg.handle(w.now, Input::Timeout);
    let r = w.drain();
    assert!(
        matches!(&r.events[..], [Event::BindingExpired { binding }] if &binding.uri[..] == b"sip:short@192.0.2.10")
    );
    assert_eq!(w.reg.binding_count(), 1);
    assert!(w
        .reg
        .poll_timeout()
        .is_some_and(|t| t <= start + Duration::from_secs(120)));
    w.advance(Duration::from_secs(60));
    assert_eq!(w.reg.binding_count(), 0);
    assert_eq!(w.reg.counters().expired, 2);
    // Only housekeeping may remain, and it ends too.
    w.advance(Duration::from_secs(600));
    assert_eq!(w.reg.poll_timeout(), None);
}

// ----- protection -----------------------------------------------------------

#[test]
fn repeated_failures_block_the_source_which_then_gets_no_answer() {
    let mut w = world();
    let mut p = phone("alice", "guess");
    for _ in 0..3 {
        let (_, r) = w.register_with(&mut p, "Contact: <sip:a@192.0.2.10>\n", 0);
        assert_eq!(r.status(), Some(401));
    }
    let r = w.send(p.request("", None), p.flow);
    assert_eq!(r.dropped, Some(DropReason::Blocked));
    assert!(r.response.is_none());
    // Another source is not blocked.
    let mut other = phone("alice", "secret");
    other.flow.remote = "192.0.2.99:5060".parse().unwrap();
    assert_eq!(
        w.register(&mut other, "Contact: <sip:a@192.0.2.99>\n")
            .status(),
        Some(200)
    );
    // After the block period the source is heard again.
    w.advance(Duration::from_secs(300));
    let r = w.send(p.request("", None), p.flow);
    assert_eq!(r.status(), Some(401));
    let c = w.reg.counters();
    assert_eq!((c.auth_failed, c.blocked, c.sources_blocked), (3, 1, 1));
}

#[test]
fn blocked_sources_can_get_403_instead() {
    let mut cfg = config();
    cfg.protect.action = BlockAction::Forbidden;
    cfg.protect.max_failures_per_ip = 1;
    let mut w = world();
    w.reg = Registrar::new(cfg, users(), w.now);
    let mut p = phone("alice", "guess");
    w.register_with(&mut p, "", 0);
    let r = w.send(p.request("", None), p.flow);
    assert_eq!(r.status(), Some(403));
    assert_eq!(r.dropped, None);
}

#[test]
fn a_locked_user_is_refused_even_with_the_right_password() {
    let mut cfg = config();
    cfg.protect.max_failures_per_ip = 0;
    cfg.protect.max_failures_per_user = 2;
    let mut w = world();
    w.reg = Registrar::new(cfg, users(), w.now);
    let mut guesser = phone("alice", "guess");
    for port in [1000, 1001] {
        guesser.flow = udp(port);
        w.register_with(&mut guesser, "", 0);
    }
    let mut real = phone("alice", "secret");
    let (_, r) = w.register_with(&mut real, "Contact: <sip:a@192.0.2.10>\n", 0);
    assert_eq!(r.dropped, Some(DropReason::Blocked));
    assert_eq!(w.reg.counters().users_locked, 1);
    // Bob is not affected.
    let mut bob = phone("bob", "bobpw");
    assert_eq!(
        w.register(&mut bob, "Contact: <sip:b@192.0.2.11>\n")
            .status(),
        Some(200)
    );
}

// ----- users reload and restart ---------------------------------------------

#[test]
fn set_users_swaps_the_table_and_keeps_bindings() {
    let mut w = world();
    let mut p = phone("alice", "secret");
    w.register(&mut p, "Contact: <sip:a@192.0.2.10>\n");
    let only_bob = Users::new(users().iter().filter(|u| u.username() == "bob").cloned()).unwrap();
    w.reg.set_users(only_bob);
    assert_eq!(w.reg.lookup(ALICE, w.now).len(), 1, "binding kept");
    let (_, r) = w.register_with(&mut p, "Contact: <sip:a@192.0.2.10>\n", 0);
    assert_eq!(r.status(), Some(401), "alice can no longer register");
    assert_eq!(w.reg.users().len(), 1);
}

#[test]
fn bindings_come_back_from_a_store_after_a_restart() {
    let mut w = world();
    let mut store = MemoryStore::new();
    let wall = std::time::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let mut p = phone("alice", "secret");
    p.flow = tcp(40001, 7);
    for r in [
        w.register(&mut p, &format!("{OB}{}", ob_contact(1))),
        w.register(&mut p, "Contact: <sip:desk@192.0.2.10>;expires=60\n"),
    ] {
        for e in &r.events {
            store.follow(wall, e).unwrap();
        }
    }
    // 30 s later the daemon restarts.
    let loaded = store.load_all(wall + Duration::from_secs(30)).unwrap();
    let later = w.now + Duration::from_secs(30);
    let mut fresh = Registrar::new(config(), users(), later);
    fresh.restore(later, loaded);
    let before = w.reg.lookup(ALICE, later);
    assert_eq!(fresh.lookup(ALICE, later), before);
    assert_eq!(fresh.poll_timeout(), Some(later + Duration::from_secs(30)));
}

#[test]
fn counters_add_up_over_a_session() {
    let mut w = world();
    let mut p = phone("alice", "secret");
    w.register(&mut p, "Contact: <sip:a@192.0.2.10>\n");
    w.register(&mut p, "Contact: <sip:a@192.0.2.10>\n");
    w.register(&mut p, "Contact: <sip:a@192.0.2.10>;expires=0\n");
    let c = w.reg.counters();
    assert_eq!(c.requests, 6);
    assert_eq!((c.registered, c.refreshed, c.removed), (1, 1, 1));
    assert_eq!((c.ok, c.challenged), (3, 3));
}

// ----- bindings shared with other SBCs --------------------------------------

/// What an SBC's registrar put out since the last call: (responses and
/// drops, events).
fn outputs(reg: &mut Registrar) -> (usize, Vec<Event>) {
    let (mut answers, mut events) = (0, Vec::new());
    while let Some(o) = reg.poll_output() {
        match o {
            Output::Event(e) => events.push(e),
            Output::Respond { .. } | Output::Dropped { .. } => answers += 1,
        }
    }
    (answers, events)
}

/// Alice registers at SBC A over TCP (connection 7) for 120 s; returns A
/// and the binding as B learns it through the store.
fn registered_at_a() -> (World, Binding, Duration) {
    let mut a = world();
    let mut p = phone("alice", "secret");
    p.flow = tcp(40001, 7);
    let r = a.register(
        &mut p,
        "Contact: <sip:alice@192.0.2.10;transport=tcp>;expires=120\n",
    );
    let [Event::BindingAdded { binding, ttl }] = &r.events[..] else {
        panic!("{:?}", r.events)
    };
    (a, binding.clone(), *ttl)
}

#[test]
fn a_learned_binding_is_found_without_an_event_and_expires_silently_at_its_ttl() {
    let (_a, binding, ttl) = registered_at_a();
    let mut b = world();
    assert!(b.reg.learn(b.now, binding.clone(), ttl));
    let found = b.reg.lookup(ALICE, b.now);
    assert_eq!(uris(&found), vec!["sip:alice@192.0.2.10;transport=tcp"]);
    assert_eq!(found[0].flow.remote, binding.flow.remote);
    assert_eq!(found[0].flow.transport, Transport::Tcp);
    assert_eq!(
        found[0].flow.conn, None,
        "A's connection id means nothing at B"
    );
    assert_eq!(b.reg.lookup("alice", b.now).len(), 1, "by username too");
    assert_eq!(b.reg.binding_count(), 1);
    assert_eq!(outputs(&mut b.reg), (0, vec![]), "nothing to write back");
    // It expires at its TTL, with no event for the store.
    assert_eq!(b.reg.poll_timeout(), Some(b.now + ttl));
    b.advance(ttl - Duration::from_millis(1));
    assert_eq!(b.reg.lookup(ALICE, b.now).len(), 1);
    b.advance(Duration::from_millis(1));
    assert!(b.reg.lookup(ALICE, b.now).is_empty());
    assert_eq!(b.reg.binding_count(), 0);
    assert_eq!(outputs(&mut b.reg), (0, vec![]));
    let c = b.reg.counters();
    assert_eq!((c.learned, c.learned_expired, c.expired), (1, 1, 0));
}

#[test]
fn forget_removes_a_learned_binding_by_its_store_key_without_an_event() {
    let (_a, binding, ttl) = registered_at_a();
    let mut b = world();
    b.reg.learn(b.now, binding.clone(), ttl);
    assert!(!b.reg.forget(b"+15550100001\0uother"), "another key");
    assert!(!b.reg.forget(b"\xff\0"), "not an AOR");
    assert!(!b.reg.forget(b""));
    assert_eq!(b.reg.lookup(ALICE, b.now).len(), 1);
    assert!(b.reg.forget(&binding.store_key()));
    assert!(b.reg.lookup(ALICE, b.now).is_empty());
    assert_eq!(b.reg.binding_count(), 0);
    assert_eq!(b.reg.poll_timeout(), None, "its timer went with it");
    assert_eq!(outputs(&mut b.reg), (0, vec![]));
    assert!(!b.reg.forget(&binding.store_key()), "already gone");
    assert_eq!(b.reg.counters().forgotten, 1);
}

#[test]
fn a_newer_learned_binding_replaces_the_learned_one_with_the_same_key() {
    let (_a, binding, ttl) = registered_at_a();
    let mut b = world();
    b.reg.learn(b.now, binding.clone(), ttl);
    let mut moved = binding.clone();
    moved.flow.remote = "192.0.2.10:40002".parse().unwrap();
    moved.cseq += 1;
    // A refresh with a shorter expiry: the latest write wins.
    assert!(b.reg.learn(b.now, moved, Duration::from_secs(60)));
    let found = b.reg.lookup(ALICE, b.now);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].flow.remote.port(), 40002);
    assert_eq!(b.reg.poll_timeout(), Some(b.now + Duration::from_secs(60)));
    assert!(!b.reg.learn(b.now, binding, Duration::ZERO), "no zero TTL");
    assert_eq!(b.reg.lookup(ALICE, b.now)[0].flow.remote.port(), 40002);
}

#[test]
fn a_binding_registered_here_wins_over_a_learned_one_and_is_not_forgotten() {
    let (_a, binding, ttl) = registered_at_a();
    let mut b = world();
    // The same phone registers at B too (behind NAT: its own flow to B).
    let mut p = phone("alice", "secret");
    p.flow = tcp(50001, 3);
    let r = b.register(
        &mut p,
        "Contact: <sip:alice@192.0.2.10;transport=tcp>;expires=120\n",
    );
    assert_eq!(r.status(), Some(200));
    assert!(
        !b.reg.learn(b.now, binding.clone(), ttl),
        "B's own flow kept"
    );
    assert_eq!(b.reg.lookup(ALICE, b.now)[0].flow, p.flow);
    assert!(!b.reg.forget(&binding.store_key()), "B's binding is B's");
    assert_eq!(b.reg.lookup(ALICE, b.now)[0].flow, p.flow);
    assert_eq!(b.reg.counters().learned_ignored, 1);
    // Once B's own binding has expired, the learned one is taken.
    b.advance(Duration::from_secs(120));
    assert_eq!(b.reg.lookup(ALICE, b.now).len(), 0);
    assert!(b.reg.learn(b.now, binding.clone(), ttl));
    assert_eq!(b.reg.lookup(ALICE, b.now)[0].flow.remote.port(), 40001);
}

#[test]
fn a_register_at_this_sbc_makes_a_learned_binding_its_own() {
    let (_a, binding, ttl) = registered_at_a();
    let mut b = world();
    b.reg.learn(b.now, binding.clone(), ttl);
    // The phone now registers the same contact at B: a refresh, reported
    // as an event (B writes it to the store), and from then on B's own.
    let mut p = phone("alice", "secret");
    p.call_id = "other@192.0.2.10".into();
    p.flow = udp(5062);
    let r = b.register(
        &mut p,
        "Contact: <sip:alice@192.0.2.10;transport=tcp>;expires=300\n",
    );
    assert_eq!(r.status(), Some(200), "{}", r.reason());
    assert!(
        matches!(&r.events[..], [Event::BindingRefreshed { binding: got, .. }] if got.flow == p.flow),
        "{:?}",
        r.events
    );
    assert!(!b.reg.forget(&binding.store_key()));
    assert_eq!(b.reg.lookup(ALICE, b.now)[0].flow, p.flow);
    // It expires as B's own: with an event.
    b.advance(Duration::from_secs(300));
    let (_, events) = outputs(&mut b.reg);
    assert!(
        matches!(&events[..], [Event::BindingExpired { .. }]),
        "{events:?}"
    );
}

fn invite_from(user: &str, authorization: Option<&str>) -> Message {
    let auth = authorization.map_or(String::new(), |a| format!("Proxy-Authorization: {a}\n"));
    msg(&format!(
        "INVITE sip:+15550109999@{REALM} SIP/2.0\n\
         Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKinv{}\n\
         From: <sip:{user}@{REALM}>;tag=c1\nTo: <sip:+15550109999@{REALM}>\n\
         Call-ID: call-{user}@192.0.2.10\nCSeq: 1 INVITE\n{auth}Content-Length: 0\n\n",
        authorization.is_some()
    ))
}

#[test]
fn an_invite_from_a_user_with_only_an_md5_ha1_is_challenged_with_md5_only() {
    let mut w = world();
    // bob has only an MD5 HA1: one Proxy-Authenticate, MD5.
    w.id += 1;
    let id = w.id;
    assert!(w
        .reg
        .authorize(w.now, id, &invite_from("bob", None), udp(5060))
        .is_none());
    let r = w.drain();
    assert_eq!(r.status(), Some(407));
    let c = r.all(HeaderName::ProxyAuthenticate);
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!(param(&c[0], "algorithm").as_deref(), Some("MD5"));
    // The MD5 answer is accepted; by number in From the same holds.
    let answer = Digest {
        username: "bob",
        password: "bobpw",
        method: "INVITE",
        uri: &format!("sip:+15550109999@{REALM}"),
        nc: 1,
        cnonce: "c0ffee",
    }
    .to(&c[0]);
    w.id += 1;
    let id = w.id;
    let user = w
        .reg
        .authorize(w.now, id, &invite_from("bob", Some(&answer)), udp(5060));
    assert_eq!(user.map(|u| u.number().to_owned()).as_deref(), Some(BOB));
    w.id += 1;
    let id = w.id;
    assert!(w
        .reg
        .authorize(w.now, id, &invite_from(BOB, None), udp(5060))
        .is_none());
    assert_eq!(w.drain().all(HeaderName::ProxyAuthenticate).len(), 1);
    // alice has both HA1s, and an unknown caller learns nothing: SHA-256, MD5.
    for from in ["alice", "mallory"] {
        w.id += 1;
        let id = w.id;
        assert!(w
            .reg
            .authorize(w.now, id, &invite_from(from, None), udp(5060))
            .is_none());
        let c = w.drain().all(HeaderName::ProxyAuthenticate);
        let algs: Vec<Option<String>> = c.iter().map(|v| param(v, "algorithm")).collect();
        assert_eq!(
            algs,
            [Some("SHA-256".to_owned()), Some("MD5".to_owned())],
            "{from}"
        );
    }
}
