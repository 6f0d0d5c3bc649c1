//! Tests of the endpoint: dispatch, stray messages, limits, timers.

use super::*;
use crate::peer::Transport;
use crate::timer::Timer;

fn parse(s: &str) -> Message {
    Message::parse(Bytes::from(s.replace('\n', "\r\n"))).unwrap()
}

fn request(method: &str, branch: &str, via_host: &str, transport: &str) -> Message {
    parse(&format!(
        "{method} sip:bob@192.0.2.2 SIP/2.0\n\
         Via: SIP/2.0/{transport} {via_host};branch={branch}\n\
         Max-Forwards: 70\nFrom: <sip:alice@192.0.2.1>;tag=a1\n\
         To: <sip:bob@192.0.2.2>\nCall-ID: call-1@192.0.2.1\n\
         CSeq: 1 {method}\nContent-Length: 0\n\n"
    ))
}

fn peer(port: u16, t: Transport) -> Peer {
    Peer::new(format!("192.0.2.9:{port}").parse().unwrap(), t)
}

fn events(ep: &mut Endpoint) -> Vec<Event> {
    std::iter::from_fn(|| ep.poll_event()).collect()
}

fn transmits(ep: &mut Endpoint) -> Vec<Transmit> {
    std::iter::from_fn(|| ep.poll_transmit()).collect()
}

fn status_of(t: &Transmit) -> Option<u16> {
    Message::parse(t.bytes.clone()).ok()?.status()
}

#[allow(clippy::disallowed_methods)] // tests need some Instant to start from
fn t0() -> Instant {
    Instant::now()
}

fn server_key(ev: &[Event]) -> ServerKey {
    ev.iter()
        .find_map(|e| match e {
            Event::Request { key, .. } => Some(*key),
            _ => None,
        })
        .expect("a Request event")
}

#[test]
fn invite_server_answers_100_and_absorbs_the_retransmission() {
    let mut ep = Endpoint::new(Config::default());
    let now = t0();
    let from = peer(5060, Transport::Udp);
    let inv = request("INVITE", "z9hG4bKi1", "192.0.2.9:5060", "UDP");
    ep.handle(
        now,
        Input::Receive {
            msg: inv.clone(),
            from,
        },
    );
    let ev = events(&mut ep);
    assert_eq!(ev.len(), 1);
    let key = server_key(&ev);
    let tx = transmits(&mut ep);
    assert_eq!(tx.len(), 1);
    assert_eq!(status_of(&tx[0]), Some(100));
    assert_eq!(tx[0].to, from);
    ep.handle(now, Input::Receive { msg: inv, from });
    assert!(events(&mut ep).is_empty(), "TU sees one Request");
    let tx = transmits(&mut ep);
    assert_eq!(
        tx.iter().map(status_of).collect::<Vec<_>>(),
        vec![Some(100)]
    );
    assert_eq!(ep.state(key), Some(TxState::Proceeding));
}

#[test]
fn responses_match_by_branch_and_cseq_method() {
    let mut ep = Endpoint::new(Config::default());
    let now = t0();
    let to = peer(5060, Transport::Udp);
    let inv = request("INVITE", "z9hG4bKc1", "192.0.2.1:5060", "UDP");
    let key = ep.send_request(now, inv.clone(), to).unwrap();
    transmits(&mut ep);
    let ringing = response_to(&inv, 180, "Ringing", Some("b1")).unwrap();
    ep.handle(
        now,
        Input::Receive {
            msg: ringing,
            from: to,
        },
    );
    assert!(matches!(&events(&mut ep)[..], [Event::Response { key: k, .. }] if *k == key));
    // A 200 for a CANCEL with the INVITE's branch is not the INVITE's.
    let cancel = request("CANCEL", "z9hG4bKc1", "192.0.2.1:5060", "UDP");
    let ok = response_to(&cancel, 200, "OK", Some("b1")).unwrap();
    ep.handle(now, Input::Receive { msg: ok, from: to });
    assert!(matches!(
        &events(&mut ep)[..],
        [Event::StrayResponse { .. }]
    ));
    // Another branch: stray.
    let other = request("INVITE", "z9hG4bKzz", "192.0.2.1:5060", "UDP");
    let r = response_to(&other, 486, "Busy Here", Some("b1")).unwrap();
    ep.handle(now, Input::Receive { msg: r, from: to });
    assert!(matches!(
        &events(&mut ep)[..],
        [Event::StrayResponse { .. }]
    ));
    assert_eq!(ep.state(key), Some(TxState::Proceeding));
}

#[test]
fn send_request_checks_what_it_keys_on() {
    let mut ep = Endpoint::new(Config::default());
    let now = t0();
    let to = peer(5060, Transport::Udp);
    let ack = request("ACK", "z9hG4bKa", "h", "UDP");
    assert_eq!(
        ep.send_request(now, ack, to),
        Err(TxError::AckIsNotATransaction)
    );
    let bare = request("OPTIONS", "z9hG4bK", "h", "UDP");
    assert_eq!(ep.send_request(now, bare, to), Err(TxError::NoBranch));
    let opt = request("OPTIONS", "z9hG4bKo", "h", "UDP");
    ep.send_request(now, opt.clone(), to).unwrap();
    assert_eq!(
        ep.send_request(now, opt.clone(), to),
        Err(TxError::DuplicateBranch)
    );
    let resp = response_to(&opt, 200, "OK", None).unwrap();
    assert_eq!(ep.send_request(now, resp, to), Err(TxError::WrongKind));
    let mismatch = parse(
        "OPTIONS sip:b@h SIP/2.0\nVia: SIP/2.0/UDP h;branch=z9hG4bKm\n\
         From: <sip:a@h>;tag=1\nTo: <sip:b@h>\nCall-ID: x\nCSeq: 1 INFO\n\n",
    );
    assert_eq!(
        ep.send_request(now, mismatch, to),
        Err(TxError::BadHeader(HeaderName::CSeq))
    );
}

#[test]
fn respond_refuses_a_second_final() {
    let mut ep = Endpoint::new(Config::default());
    let now = t0();
    let from = peer(5060, Transport::Udp);
    let opt = request("OPTIONS", "z9hG4bKs1", "192.0.2.9:5060", "UDP");
    ep.handle(
        now,
        Input::Receive {
            msg: opt.clone(),
            from,
        },
    );
    let key = server_key(&events(&mut ep));
    assert!(
        transmits(&mut ep).is_empty(),
        "no automatic 100 for non-INVITE"
    );
    let ok = response_to(&opt, 200, "OK", Some("t")).unwrap();
    ep.respond(now, key, ok.clone()).unwrap();
    assert_eq!(ep.respond(now, key, ok), Err(TxError::InvalidState));
    assert_eq!(
        ep.respond(
            now,
            ServerKey(999),
            response_to(&opt, 200, "OK", None).unwrap()
        ),
        Err(TxError::UnknownTransaction)
    );
    assert_eq!(ep.respond(now, key, opt), Err(TxError::WrongKind));
}

#[test]
fn unmatched_ack_goes_to_the_tu() {
    let mut ep = Endpoint::new(Config::default());
    let from = peer(5060, Transport::Udp);
    let ack = request("ACK", "z9hG4bK2xxack", "192.0.2.9:5060", "UDP");
    ep.handle(t0(), Input::Receive { msg: ack, from });
    assert!(matches!(&events(&mut ep)[..], [Event::Ack { .. }]));
    assert!(ep.is_empty());
}

#[test]
fn malformed_requests_are_dropped_without_panic() {
    let mut ep = Endpoint::new(Config::default());
    let from = peer(5060, Transport::Udp);
    for raw in [
        "INVITE sip:b@h SIP/2.0\nFrom: <sip:a@h>;tag=1\nTo: <sip:b@h>\nCall-ID: x\nCSeq: 1 INVITE\n\n",
        "INVITE sip:b@h SIP/2.0\nVia: garbage\nCSeq: 1 INVITE\n\n",
        "INVITE sip:b@h SIP/2.0\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\nCSeq: one INVITE\n\n",
        "BYE sip:b@h SIP/2.0\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\nFrom: x\nTo: y\nCall-ID: x\nCSeq: 1 BYE\n\n",
        "SIP/2.0 200 OK\n\n",
        "SIP/2.0 200 OK\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\nCSeq: x\n\n",
    ] {
        ep.handle(t0(), Input::Receive { msg: parse(raw), from });
    }
    let ev = events(&mut ep);
    assert_eq!(ev.len(), 6);
    assert!(
        ev[..4].iter().all(|e| matches!(e, Event::Dropped { .. })),
        "{ev:?}"
    );
    assert!(ev[4..]
        .iter()
        .all(|e| matches!(e, Event::StrayResponse { .. })));
    assert!(ep.is_empty());
    assert!(transmits(&mut ep).is_empty());
}

#[test]
fn rfc2543_ack_matches_by_to_tag_of_the_response() {
    let mut ep = Endpoint::new(Config::default());
    let now = t0();
    let from = peer(5060, Transport::Udp);
    let inv = "INVITE sip:UserB@example.com SIP/2.0\nVia: SIP/2.0/UDP iftgw.example.com\n\
        From: <sip:+13035551111@ift.client.example.net;user=phone>\n\
        To: sip:+16505552222@ss1.example.net;user=phone\n\
        Call-ID: inv2543.1717@ift.client.example.com\nCSeq: 56 INVITE\n\n";
    ep.handle(
        now,
        Input::Receive {
            msg: parse(inv),
            from,
        },
    );
    let key = server_key(&events(&mut ep));
    let busy = response_to(&parse(inv), 486, "Busy Here", Some("srv")).unwrap();
    ep.respond(now, key, busy).unwrap();
    transmits(&mut ep);
    let ack = |tag: &str| {
        parse(
            &inv.replace("INVITE sip", "ACK sip")
                .replace("56 INVITE", "56 ACK")
                .replace("user=phone\nCall", &format!("user=phone;tag={tag}\nCall")),
        )
    };
    ep.handle(
        now,
        Input::Receive {
            msg: ack("other"),
            from,
        },
    );
    assert!(
        matches!(&events(&mut ep)[..], [Event::Ack { .. }]),
        "wrong tag: not ours"
    );
    assert_eq!(ep.state(key), Some(TxState::Completed));
    ep.handle(
        now,
        Input::Receive {
            msg: ack("srv"),
            from,
        },
    );
    assert!(events(&mut ep).is_empty(), "absorbed");
    assert_eq!(ep.state(key), Some(TxState::Confirmed));
}

#[test]
fn zero_timers_end_transactions_within_the_call() {
    let mut ep = Endpoint::new(Config::default());
    let now = t0();
    let to = peer(5060, Transport::Tcp).with_conn(7);
    let opt = request("OPTIONS", "z9hG4bKz", "h", "TCP");
    let key = ep.send_request(now, opt.clone(), to).unwrap();
    let t = transmits(&mut ep);
    assert_eq!(t[0].to.conn, Some(7));
    let ok = response_to(&opt, 200, "OK", Some("x")).unwrap();
    ep.handle(now, Input::Receive { msg: ok, from: to });
    let ev = events(&mut ep);
    assert!(matches!(ev[0], Event::Response { .. }));
    assert!(matches!(ev[1], Event::Terminated { key: TxKey::Client(k) } if k == key));
    assert_eq!(ep.poll_timeout(), None);
}

#[test]
fn time_never_goes_backwards() {
    let mut ep = Endpoint::new(Config::default());
    let now = t0();
    let to = peer(5060, Transport::Udp);
    ep.send_request(now, request("OPTIONS", "z9hG4bKt", "h", "UDP"), to)
        .unwrap();
    transmits(&mut ep);
    let e1 = ep.poll_timeout().unwrap();
    assert_eq!(
        e1,
        now + ep
            .config()
            .timers
            .initial(Timer::E, Transport::Udp)
            .unwrap()
    );
    ep.handle(e1, Input::Timeout);
    assert_eq!(transmits(&mut ep).len(), 1);
    // An earlier `now` is taken as the last one: nothing fires twice.
    ep.handle(now, Input::Timeout);
    assert!(transmits(&mut ep).is_empty());
    assert_eq!(ep.poll_timeout(), Some(e1 + Duration::from_secs(1)));
}

#[test]
fn transport_error_hits_only_that_peer() {
    let mut ep = Endpoint::new(Config::default());
    let now = t0();
    let a = peer(5061, Transport::Tls).with_conn(1);
    let b = peer(5062, Transport::Tls).with_conn(2);
    let ka = ep
        .send_request(now, request("OPTIONS", "z9hG4bKa", "h", "TLS"), a)
        .unwrap();
    let kb = ep
        .send_request(now, request("OPTIONS", "z9hG4bKb", "h", "TLS"), b)
        .unwrap();
    ep.handle(
        now,
        Input::TransportError {
            to: Peer { conn: None, ..a },
        },
    );
    let ev = events(&mut ep);
    assert!(matches!(ev[0], Event::TransportError { key } if key == ka));
    assert!(matches!(ev[1], Event::Terminated { key: TxKey::Client(k) } if k == ka));
    assert_eq!(ev.len(), 2);
    assert_eq!(ep.state(kb), Some(TxState::Trying));
}

#[test]
fn icmp_unreachable_ends_a_udp_invite_at_once() {
    // A UDP destination that is gone (the shell saw ICMP port
    // unreachable): the INVITE stops retransmitting and fails now,
    // not at Timer B; an INVITE to another port goes on.
    let mut ep = Endpoint::new(Config::default());
    let now = t0();
    let gone = peer(5070, Transport::Udp).for_trunk(3);
    let other = peer(5071, Transport::Udp);
    let k = ep
        .send_request(now, request("INVITE", "z9hG4bKu1", "h", "UDP"), gone)
        .unwrap();
    let k2 = ep
        .send_request(now, request("INVITE", "z9hG4bKu2", "h", "UDP"), other)
        .unwrap();
    transmits(&mut ep);
    let later = now + Duration::from_millis(10);
    ep.handle(
        later,
        Input::TransportError {
            to: Peer::new(gone.addr, Transport::Udp),
        },
    );
    let ev = events(&mut ep);
    assert!(matches!(ev[0], Event::TransportError { key } if key == k));
    assert_eq!(ep.state(k), None);
    assert_eq!(ep.state(k2), Some(TxState::Calling));
    // Timer A now retransmits only the other one.
    ep.handle(now + Duration::from_millis(500), Input::Timeout);
    let sent = transmits(&mut ep);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].to.addr, other.addr);
}

#[test]
fn cancel_is_refused_where_it_makes_no_sense() {
    let mut ep = Endpoint::new(Config::default());
    let now = t0();
    let to = peer(5060, Transport::Udp);
    let opt = ep
        .send_request(now, request("OPTIONS", "z9hG4bKo", "h", "UDP"), to)
        .unwrap();
    assert_eq!(ep.cancel(now, opt), Err(TxError::NotInvite));
    let inv = request("INVITE", "z9hG4bKi", "h", "UDP");
    let k = ep.send_request(now, inv.clone(), to).unwrap();
    let c = ep.cancel(now, k).unwrap();
    assert_eq!(ep.cancel(now, k), Err(TxError::AlreadyCancelled));
    assert_eq!(ep.state(c), None, "the CANCEL waits for a provisional");
    // The INVITE fails before any provisional: the CANCEL never starts.
    let busy = response_to(&inv, 486, "Busy Here", Some("x")).unwrap();
    ep.handle(
        now,
        Input::Receive {
            msg: busy,
            from: to,
        },
    );
    let ev = events(&mut ep);
    assert!(ev
        .iter()
        .any(|e| matches!(e, Event::Terminated { key: TxKey::Client(x) } if *x == c)));
    assert_eq!(ep.state(k), Some(TxState::Completed));
    let k2 = ep
        .send_request(now, request("INVITE", "z9hG4bKj", "h", "UDP"), to)
        .unwrap();
    let ok = response_to(
        &request("INVITE", "z9hG4bKj", "h", "UDP"),
        200,
        "OK",
        Some("y"),
    )
    .unwrap();
    ep.handle(now, Input::Receive { msg: ok, from: to });
    assert_eq!(ep.cancel(now, k2), Err(TxError::AlreadyFinal));
}

#[test]
fn a_forgotten_request_holds_no_transaction() {
    let mut ep = Endpoint::new(Config::default());
    let now = t0();
    let from = peer(5060, Transport::Udp);
    let reg = request("REGISTER", "z9hG4bKf1", "192.0.2.9:5060", "UDP");
    ep.handle(
        now,
        Input::Receive {
            msg: reg.clone(),
            from,
        },
    );
    let key = server_key(&events(&mut ep));
    assert_eq!(ep.len(), 1);
    ep.forget(key);
    assert!(ep.is_empty(), "nothing left to expire");
    assert!(matches!(
        events(&mut ep).as_slice(),
        [Event::Terminated { key: TxKey::Server(k) }] if *k == key
    ));
    assert!(transmits(&mut ep).is_empty(), "nothing was sent");
    assert_eq!(
        ep.respond(now, key, response_to(&reg, 200, "OK", Some("t")).unwrap()),
        Err(TxError::UnknownTransaction)
    );
    // Its retransmission is a new request for the TU.
    ep.handle(now, Input::Receive { msg: reg, from });
    assert_eq!(events(&mut ep).len(), 1);
}
