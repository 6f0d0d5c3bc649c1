//! ACK: hop-by-hop for non-2xx finals, end-to-end (the TU's) for 2xx; RFC 6026.

use super::*;
use sim::NetConfig;
use transaction::{Transport, TxState};

#[test]
fn ack_for_non_2xx_is_hop_by_hop() {
    let (mut sim, uac, uas) = world(20, NetConfig::default());
    let inv = sim.request(uac, uas, "INVITE", Transport::Udp, "z9hG4bKack1");
    let key = sim.send_request(uac, uas, inv, Transport::Udp).unwrap();
    let (skey, req) = take_request(&mut sim, uas);
    answer(&mut sim, uas, skey, &req, 486);
    sim.run_for(secs(1));
    // The client transaction wrote the ACK: same branch, To with the tag.
    let acks: Vec<_> = sim
        .packets()
        .iter()
        .filter(|p| p.is_request("ACK"))
        .collect();
    assert_eq!(acks.len(), 1);
    let ack = Message::parse(acks[0].bytes.clone()).unwrap();
    assert_eq!(ack.top_via().unwrap().branch(), Some(&b"z9hG4bKack1"[..]));
    assert_eq!(ack.to().unwrap().tag(), Some(&b"uas-tag"[..]));
    assert_eq!(ack.cseq().unwrap().method, "ACK");
    // The TU of the UAC saw the 486 once and wrote no ACK; the TU of the UAS
    // never sees the ACK, which moved its transaction to Confirmed.
    assert_eq!(delivered(sim.events(uac), key), vec![100, 486]);
    assert_eq!(
        count(sim.events(uas), |e| matches!(e, Event::Ack { .. })),
        0
    );
    assert_eq!(sim.endpoint(uas).state(skey), Some(TxState::Confirmed));
    // Timer I (T4 over UDP) then ends it.
    sim.run_for(secs(6));
    assert_eq!(sim.endpoint(uas).state(skey), None);
    assert_eq!(
        count(sim.events(uas), |e| matches!(e, Event::AckTimeout { .. })),
        0
    );
}

#[test]
fn retransmitted_non_2xx_is_acked_again_but_not_delivered() {
    let (mut sim, uac, uas) = world(21, NetConfig::default());
    let uac_addr = sim.addr(uac);
    // The first ACK is lost: the UAS resends the 486 on Timer G.
    let mut first = true;
    sim.set_filter(move |p| {
        let hit = first && p.from == uac_addr && p.is_request("ACK");
        first &= !hit;
        hit
    });
    let inv = sim.request(uac, uas, "INVITE", Transport::Udp, "z9hG4bKack2");
    let key = sim.send_request(uac, uas, inv, Transport::Udp).unwrap();
    let (skey, req) = take_request(&mut sim, uas);
    answer(&mut sim, uas, skey, &req, 486);
    sim.run_for(secs(3));
    assert_eq!(sent(&sim, "ACK").len(), 2);
    assert_eq!(delivered(sim.events(uac), key), vec![100, 486]);
    assert_eq!(sim.endpoint(uas).state(skey), Some(TxState::Confirmed));
}

#[test]
fn ack_for_2xx_reaches_the_tu() {
    let (mut sim, uac, uas) = world(22, NetConfig::default());
    let inv = sim.request(uac, uas, "INVITE", Transport::Udp, "z9hG4bKack3");
    let key = sim
        .send_request(uac, uas, inv.clone(), Transport::Udp)
        .unwrap();
    let (skey, req) = take_request(&mut sim, uas);
    answer(&mut sim, uas, skey, &req, 200);
    let ok = loop {
        match sim.next_event(uac, secs(1)) {
            Some(Event::Response { msg, .. }) if msg.status() == Some(200) => break msg,
            Some(_) => {}
            None => panic!("no 200"),
        }
    };
    assert_eq!(sim.endpoint(uac).state(key), Some(TxState::Accepted));
    assert_eq!(
        sent(&sim, "ACK").len(),
        0,
        "the transaction does not ACK a 2xx"
    );
    // The UAC's TU ACKs the 2xx itself, outside the transaction.
    let ack = ack_for_2xx(&inv, &ok, "z9hG4bKack3-2xx");
    let to = sim.peer(uas, Transport::Udp);
    sim.send_stateless(uac, &ack, to);
    let got = loop {
        match sim.next_event(uas, secs(1)) {
            Some(Event::Ack { msg, from }) => break (msg, from),
            Some(_) => {}
            None => panic!("the ACK did not reach the TU"),
        }
    };
    assert_eq!(got.0.cseq().unwrap().seq, 1);
    assert_eq!(got.1.addr, sim.addr(uac));
    assert_eq!(sim.endpoint(uas).state(skey), Some(TxState::Accepted));
}

#[test]
fn rfc6026_accepted_delivers_2xx_retransmissions() {
    let (mut sim, uac, uas) = world(23, NetConfig::default());
    let inv = sim.request(uac, uas, "INVITE", Transport::Udp, "z9hG4bKacc1");
    let key = sim.send_request(uac, uas, inv, Transport::Udp).unwrap();
    let (skey, req) = take_request(&mut sim, uas);
    // The UAS core retransmits its 2xx (RFC 3261 §13.3.1.4) through the
    // Accepted server transaction; a late 486 is refused.
    answer(&mut sim, uas, skey, &req, 200);
    sim.run_for(ms(500));
    answer(&mut sim, uas, skey, &req, 200);
    sim.run_for(secs(1));
    answer(&mut sim, uas, skey, &req, 200);
    let late = transaction::response_to(&req, 486, "Busy Here", Some("x")).unwrap();
    assert_eq!(
        sim.respond(uas, skey, late),
        Err(transaction::TxError::InvalidState)
    );
    sim.run_for(secs(1));
    // Every 2xx reaches the UAC's TU (which must ACK each), none is absorbed.
    assert_eq!(delivered(sim.events(uac), key), vec![100, 200, 200, 200]);
    // Timer M (64*T1) ends the client transaction, Timer L the server's.
    sim.run_for(secs(40));
    assert_eq!(terminated_at(sim.events(uac), key), Some(ms(20) + secs(32)));
    assert_eq!(
        terminated_at(sim.events(uas), skey),
        Some(ms(10) + secs(32))
    );
}

#[test]
fn rfc6026_accepted_absorbs_invite_retransmissions() {
    let (mut sim, uac, uas) = world(24, NetConfig::default());
    let uas_addr = sim.addr(uas);
    let inv = sim.request(uac, uas, "INVITE", Transport::Udp, "z9hG4bKacc2");
    let key = sim
        .send_request(uac, uas, inv.clone(), Transport::Udp)
        .unwrap();
    let (skey, req) = take_request(&mut sim, uas);
    answer(&mut sim, uas, skey, &req, 200);
    sim.run_for(secs(1));
    let before = sim.packets().iter().filter(|p| p.from == uas_addr).count();
    // A late retransmission of the INVITE (as from a UAC that missed the
    // 200) reaches the Accepted server transaction: absorbed, not a new call.
    let to = sim.peer(uas, Transport::Udp);
    sim.send_raw(uac, to, inv.to_bytes());
    sim.run_for(secs(1));
    assert_eq!(
        count(sim.events(uas), |e| matches!(e, Event::Request { .. })),
        1
    );
    let after = sim.packets().iter().filter(|p| p.from == uas_addr).count();
    assert_eq!(before, after, "nothing resent for it");
    assert_eq!(sim.endpoint(uas).state(skey), Some(TxState::Accepted));
    assert_eq!(delivered(sim.events(uac), key), vec![100, 200]);
}
