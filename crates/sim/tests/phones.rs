//! Registered phones in the simulated world: phones (user agents with
//! credentials) register through the real B2BUA's registrar with digest
//! authentication, receive carrier calls (a fork to every contact of the
//! user), take calls when Teams is down ("Fail-over"), and place calls
//! that are authenticated with 407 and routed to the carrier.

use std::time::Duration;

use b2bua::{Config, Phones};
use routing::regex::Regex;
use routing::{Destination, Normaliser, NumberRule, Route, Table};
use sim::peer::Fault;
use sim::world::{rtp, srtp, Answer, UaConfig, KEY1};
use sim::{NetConfig, NodeId, World};
use transaction::{TimerConfig, Transport};
use trunk::{Cidr, PeerSpec, TrunkKind, TrunkSpec};

const SBC_UDP: &str = "192.0.2.1:5060";
const SBC_TCP: &str = "192.0.2.1:5062";
const SBC_TLS: &str = "192.0.2.1:5061";
const CARRIER: &str = "192.0.2.10:5060";
const TEAMS: [&str; 3] = ["52.112.1.1:5061", "52.112.1.2:5061", "52.112.1.3:5061"];
const DOMAIN: &str = "phones.contoso.com";
const REALM: &str = "contoso";
/// Alice's number: the carrier dials 030123456.
const ALICE: &str = "+4930123456";
const CALLED: &str = "sip:030123456@192.0.2.1:5060";

fn rule(pattern: &str, replace: &str) -> NumberRule {
    NumberRule {
        pattern: Regex::new(pattern).unwrap(),
        replace: replace.to_owned(),
        applies: routing::Applies::Both,
    }
}

/// carrier → `to`; phones → carrier.
fn config(to: Vec<Destination>) -> Config {
    let mut carrier = TrunkSpec::new("carrier", TrunkKind::Carrier, "sbc.carrier.example");
    carrier.peers = vec![PeerSpec {
        host: "192.0.2.10".into(),
        port: 5060,
        transport: Transport::Udp,
        addr: Some(CARRIER.parse().unwrap()),
    }];
    carrier.numbers_in = Normaliser {
        rules: vec![rule(r"^0([1-9]\d+)$", "+49$1")],
    };
    let mut teams = TrunkSpec::new("teams", TrunkKind::Teams, "sbc.contoso.com");
    for (p, a) in teams.peers.iter_mut().zip(TEAMS) {
        p.addr = Some(a.parse().unwrap());
    }
    let mut phones = TrunkSpec::new("phones", TrunkKind::Phones, DOMAIN);
    phones.acl = vec![Cidr::parse("10.0.0.0/8").unwrap()];
    let users = registrar::Users::new([
        registrar::User::with_password(ALICE, "alice", REALM, "secret").unwrap(),
        registrar::User::with_password("+4930999", "bob", REALM, "hunter2").unwrap(),
    ])
    .unwrap();
    let mut reg = registrar::Config::default();
    reg.auth.realm = REALM.into();
    reg.protect.max_failures_per_ip = 3;
    Config {
        trunks: vec![carrier, teams, phones],
        routes: Table {
            routes: vec![
                Route {
                    name: "inbound".into(),
                    from: vec!["carrier".into()],
                    called: None,
                    to,
                    forward: None,
                },
                Route {
                    name: "outbound".into(),
                    from: vec!["phones".into(), "teams".into()],
                    called: None,
                    to: vec![Destination::trunk("carrier", None)],
                    forward: None,
                },
            ],
        },
        agent: "sbc-sim/1".into(),
        timers: TimerConfig::default(),
        seed: 11,
        session_expires: 1800,
        supported: "timer, replaces".into(),
        phones: Some(Phones {
            registrar: reg,
            users,
        }),
        mask_numbers: true,
        protect: b2bua::Protect::default(),
    }
}

struct Site {
    w: World,
    carrier: NodeId,
    teams: [NodeId; 3],
}

fn phone(
    w: &mut World,
    name: &str,
    addr: &str,
    t: Transport,
    user: &str,
    password: &str,
    answer: Answer,
) -> NodeId {
    let ip = addr.split(':').next().unwrap_or("10.9.9.9");
    w.add_ua(
        name,
        addr,
        t,
        UaConfig {
            agent: format!("{name} (sim phone)"),
            answer,
            sdp: rtp(ip, 40000, "sendrecv"),
            headers: Vec::new(),
            contact: format!(
                "sip:{user}@{addr};transport={}",
                t.as_str().to_ascii_lowercase()
            ),
            credentials: Some((user.to_owned(), password.to_owned())),
        },
    )
}

fn site(to: Vec<Destination>) -> Site {
    let mut w = World::new(
        config(to),
        &[
            (Transport::Udp, SBC_UDP),
            (Transport::Tcp, SBC_TCP),
            (Transport::Tls, SBC_TLS),
        ],
        NetConfig::default(),
        5,
    );
    w.open = false;
    let carrier = w.add_ua(
        "carrier",
        CARRIER,
        Transport::Udp,
        UaConfig {
            agent: "carrier (sim)".into(),
            answer: Answer::after(Duration::ZERO),
            sdp: rtp("192.0.2.10", 30000, "sendrecv"),
            headers: Vec::new(),
            contact: "sip:carrier@192.0.2.10:5060".into(),
            credentials: None,
        },
    );
    let teams = [0, 1, 2].map(|i| {
        let n = w.add_ua(
            &format!("sip{i}"),
            TEAMS[i],
            Transport::Tls,
            UaConfig {
                agent: "Microsoft.PSTNHub.SIPProxy (sim)".into(),
                answer: Answer::after(Duration::ZERO),
                sdp: srtp("52.113.1.1", 49152, KEY1, "sendrecv"),
                headers: Vec::new(),
                contact: "sip:api-du-a-euwe.pstnhub.microsoft.com:443;x-i=1".into(),
                credentials: None,
            },
        );
        w.set_tls_names(n, &["sip.pstnhub.microsoft.com"]);
        n
    });
    w.settle();
    Site { w, carrier, teams }
}

fn phones_first() -> Site {
    site(vec![Destination::registered("phones", None)])
}

fn register(s: &mut Site, node: NodeId, user: &str) -> u16 {
    let i = s.w.register(node, user, DOMAIN, 600);
    s.w.run_until(Duration::from_secs(10), |w| {
        w.ua(node).registrations[i].status.is_some()
    });
    s.w.ua(node).registrations[i].status.unwrap_or(0)
}

fn place(s: &mut Site) -> usize {
    let i = s.w.call(s.carrier, CALLED, "0891234567");
    let c = s.carrier;
    assert!(s
        .w
        .run_until(Duration::from_secs(40), |w| w.ua(c).outgoing[i]
            .status
            .is_some()));
    i
}

#[test]
fn a_phone_registers_with_digest_and_gets_the_carriers_call() {
    let mut s = phones_first();
    let p = phone(
        &mut s.w,
        "alice",
        "10.1.1.1:5060",
        Transport::Udp,
        "alice",
        "secret",
        Answer::after(Duration::from_millis(500)),
    );
    assert_eq!(register(&mut s, p, ALICE), 200);
    let reg = &s.w.ua(p).registrations[0];
    assert_eq!(
        reg.responses.iter().map(|(c, _)| *c).collect::<Vec<_>>(),
        vec![401, 200],
        "challenged once, then registered"
    );
    assert!(
        reg.contacts.iter().any(|c| c.contains("10.1.1.1:5060")),
        "{:?}",
        reg.contacts
    );
    assert_eq!(s.w.b.bindings_of(ALICE).len(), 1);
    let i = place(&mut s);
    let call = &s.w.ua(s.carrier).outgoing[i];
    assert_eq!(call.status, Some(200), "{:?}", call.responses);
    let inc = &s.w.ua(p).incoming;
    assert_eq!(inc.len(), 1, "the phone rang");
    let ruri = String::from_utf8_lossy(inc[0].invite.request_uri_raw().unwrap()).into_owned();
    assert!(
        ruri.starts_with("sip:alice@10.1.1.1:5060"),
        "to its contact: {ruri}"
    );
    let contact =
        String::from_utf8_lossy(inc[0].invite.header_by_name("Contact").unwrap()).into_owned();
    assert!(
        contact.contains("@192.0.2.1:5060;transport=udp"),
        "our Contact is the address the phone registered to, not the FQDN: {contact}"
    );
    let body = String::from_utf8_lossy(inc[0].invite.body()).into_owned();
    assert!(
        body.contains("RTP/AVP") && !body.contains("a=crypto"),
        "plain RTP toward the phone:\n{body}"
    );
    // 500 ms of ringing plus the trips.
    let setup = call.setup().unwrap().as_millis();
    assert!((500..600).contains(&setup), "setup {setup} ms");
    assert!(s.w.hang_up(s.carrier, i));
    s.w.advance(Duration::from_secs(1));
    assert_eq!(s.w.b.active_calls(), 0);
}

#[test]
fn a_user_with_two_phones_rings_both_and_the_first_answer_wins() {
    let mut s = phones_first();
    let desk = phone(
        &mut s.w,
        "desk",
        "10.1.1.1:5060",
        Transport::Udp,
        "alice",
        "secret",
        Answer::after(Duration::from_millis(800)),
    );
    let soft = phone(
        &mut s.w,
        "soft",
        "10.1.1.2:5062",
        Transport::Tcp,
        "alice",
        "secret",
        Answer::after(Duration::from_millis(300)),
    );
    assert_eq!(register(&mut s, desk, ALICE), 200);
    assert_eq!(register(&mut s, soft, ALICE), 200);
    assert_eq!(s.w.b.bindings_of(ALICE).len(), 2);
    let i = place(&mut s);
    assert_eq!(s.w.ua(s.carrier).outgoing[i].status, Some(200));
    s.w.advance(Duration::from_secs(2));
    let (d, t) = (&s.w.ua(desk).incoming[0], &s.w.ua(soft).incoming[0]);
    assert!(
        t.answered.is_some() && !t.cancelled,
        "the TCP phone answered first"
    );
    assert!(d.cancelled, "the desk phone was cancelled");
    let cdr = s.w.cdrs();
    assert!(cdr.is_empty(), "call still up");
    assert_eq!(s.w.b.active_calls(), 1);
    s.w.hang_up(s.carrier, i);
    s.w.advance(Duration::from_secs(1));
    let cdr = s.w.cdrs().pop().unwrap();
    let outcomes: Vec<(&str, &str)> = cdr
        .attempts
        .iter()
        .map(|a| (a.peer.as_str(), a.outcome.as_str()))
        .collect();
    assert_eq!(outcomes.len(), 2, "{outcomes:?}");
    assert!(
        outcomes
            .iter()
            .any(|(p, o)| p.contains("10.1.1.2") && *o == "answered"),
        "{outcomes:?}"
    );
    assert!(
        outcomes
            .iter()
            .any(|(p, o)| p.contains("10.1.1.1") && *o == "answered elsewhere"),
        "{outcomes:?}"
    );
}

#[test]
fn phones_take_the_call_when_teams_is_down_labelled_fail_over() {
    let mut s = site(vec![
        Destination::trunk("teams", None),
        Destination::registered("phones", Some("Fail-over")),
    ]);
    let p = phone(
        &mut s.w,
        "alice",
        "10.1.1.1:5060",
        Transport::Udp,
        "alice",
        "secret",
        Answer::after(Duration::ZERO),
    );
    assert_eq!(register(&mut s, p, ALICE), 200);
    for n in s.teams {
        s.w.set_fault(n, Fault::Dead);
    }
    let i = place(&mut s);
    assert_eq!(s.w.ua(s.carrier).outgoing[i].status, Some(200));
    let inv = &s.w.ua(p).incoming[0].invite;
    let from = String::from_utf8_lossy(inv.header_by_name("From").unwrap()).into_owned();
    assert!(from.starts_with("\"Fail-over"), "labelled: {from}");
    // Teams comes back: calls go there again, the phone no longer rings.
    for n in s.teams {
        s.w.set_fault(n, Fault::Up);
    }
    let t0 = s.teams[0];
    s.w.run_until(Duration::from_secs(200), |w| {
        w.health_changes()
            .iter()
            .any(|(t, _, up)| t == "teams" && *up)
    });
    place(&mut s);
    assert_eq!(s.w.ua(t0).incoming.len(), 1);
    assert_eq!(s.w.ua(p).incoming.len(), 1);
}

#[test]
fn an_unregistered_user_moves_the_call_on_or_gets_480() {
    let mut s = site(vec![
        Destination::registered("phones", None),
        Destination::trunk("teams", Some("Fail-over")),
    ]);
    let i = place(&mut s);
    assert_eq!(s.w.ua(s.carrier).outgoing[i].status, Some(200));
    assert_eq!(s.w.ua(s.teams[0]).incoming.len(), 1, "Teams took it");
    let mut only = phones_first();
    let j = place(&mut only);
    assert_eq!(only.w.ua(only.carrier).outgoing[j].status, Some(480));
}

#[test]
fn a_registration_expires_and_an_unregister_removes_it() {
    let mut s = phones_first();
    let p = phone(
        &mut s.w,
        "alice",
        "10.1.1.1:5060",
        Transport::Udp,
        "alice",
        "secret",
        Answer::after(Duration::ZERO),
    );
    let i = s.w.register(p, ALICE, DOMAIN, 120);
    s.w.advance(Duration::from_secs(1));
    assert_eq!(s.w.ua(p).registrations[i].status, Some(200));
    assert_eq!(s.w.b.bindings_of(ALICE).len(), 1);
    s.w.advance(Duration::from_secs(121));
    assert!(s.w.b.bindings_of(ALICE).is_empty(), "expired");
    let expired = s.w.outputs.iter().any(|o| {
        matches!(
            o,
            b2bua::Output::Binding(registrar::Event::BindingExpired { .. })
        )
    });
    assert!(expired, "the expiry was reported for the store");
    let k = s.w.register(p, ALICE, DOMAIN, 600);
    s.w.advance(Duration::from_secs(1));
    assert_eq!(s.w.ua(p).registrations[k].status, Some(200));
    let z = s.w.register(p, ALICE, DOMAIN, 0);
    s.w.advance(Duration::from_secs(1));
    assert_eq!(s.w.ua(p).registrations[z].status, Some(200));
    assert!(s.w.b.bindings_of(ALICE).is_empty(), "unregistered");
}

#[test]
fn a_phone_calls_out_authenticated_as_its_user() {
    let mut s = phones_first();
    let p = phone(
        &mut s.w,
        "bob",
        "10.1.1.5:5060",
        Transport::Udp,
        "bob",
        "hunter2",
        Answer::after(Duration::ZERO),
    );
    let i = s.w.call(p, &format!("sip:+4989111@{DOMAIN}"), "bob");
    s.w.run_until(Duration::from_secs(10), |w| {
        w.ua(p).outgoing[i].status.is_some()
    });
    let c = &s.w.ua(p).outgoing[i];
    let first_final = c.responses.iter().find(|r| r.0 >= 200).map(|r| r.0);
    assert_eq!(
        first_final,
        Some(407),
        "challenged first: {:?}",
        c.responses
    );
    assert_eq!(c.status, Some(200), "{:?}", c.responses);
    let ok = c.ok.as_ref().unwrap();
    let contact = String::from_utf8_lossy(ok.header_by_name("Contact").unwrap()).into_owned();
    assert!(
        contact.contains("@192.0.2.1:5060"),
        "the 200's Contact is our address: {contact}"
    );
    let at_carrier = &s.w.ua(s.carrier).incoming[0].invite;
    let from = String::from_utf8_lossy(at_carrier.header_by_name("From").unwrap()).into_owned();
    assert!(
        from.contains("4930999"),
        "the caller is bob's number: {from}"
    );
}

#[test]
fn wrong_passwords_block_the_source_and_spare_other_phones() {
    let mut s = phones_first();
    let thief = phone(
        &mut s.w,
        "thief",
        "10.6.6.6:5060",
        Transport::Udp,
        "alice",
        "guess",
        Answer::after(Duration::ZERO),
    );
    for _ in 0..3 {
        assert_eq!(register(&mut s, thief, ALICE), 401);
    }
    // Blocked: dropped silently from now on (Timer F ends the REGISTER).
    let i = s.w.register(thief, ALICE, DOMAIN, 600);
    s.w.advance(Duration::from_secs(40));
    assert_eq!(
        s.w.ua(thief).registrations[i].status,
        Some(408),
        "no answer while blocked"
    );
    let counters = s.w.b.registrar_counters().unwrap();
    assert_eq!(counters.auth_failed, 3);
    assert!(counters.blocked >= 1);
    // The real phone, from another address, registers at once.
    let alice = phone(
        &mut s.w,
        "alice",
        "10.1.1.1:5060",
        Transport::Udp,
        "alice",
        "secret",
        Answer::after(Duration::ZERO),
    );
    assert_eq!(register(&mut s, alice, ALICE), 200);
}

#[test]
fn a_phone_over_tls_is_called_over_tls_at_the_address_it_registered_from() {
    let mut s = phones_first();
    let p = phone(
        &mut s.w,
        "tls-phone",
        "10.1.1.3:5061",
        Transport::Tls,
        "alice",
        "secret",
        Answer::after(Duration::ZERO),
    );
    assert_eq!(register(&mut s, p, ALICE), 200);
    let b = s.w.b.bindings_of(ALICE);
    assert_eq!(b[0].flow.transport, Transport::Tls);
    let i = place(&mut s);
    assert_eq!(s.w.ua(s.carrier).outgoing[i].status, Some(200));
    // The INVITE went to the address and transport the phone registered
    // from (a TLS flow), with the SBC's TLS listener in Contact.
    let sent =
        s.w.log
            .iter()
            .find(|m| m.msg.method_str() == Some("INVITE") && m.to.addr == s.w.addr_of(p))
            .expect("an INVITE to the phone");
    assert_eq!(sent.to.transport, Transport::Tls);
    let contact = String::from_utf8_lossy(sent.msg.header_by_name("Contact").unwrap()).into_owned();
    assert!(
        contact.contains("@192.0.2.1:5061;transport=tls"),
        "{contact}"
    );
}
