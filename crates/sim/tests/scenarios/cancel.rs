//! CANCEL (RFC 3261 §9): written by the client transaction from the INVITE,
//! answered by the server endpoint, raced against a 2xx.

use super::*;
use sim::NetConfig;
use transaction::{Transport, TxError, TxState};

/// Runs until `node` gets `Event::Cancelled`; returns (invite, cancel).
fn take_cancelled(sim: &mut Sim, node: NodeId) -> (ServerKey, ServerKey) {
    loop {
        match sim.next_event(node, secs(5)) {
            Some(Event::Cancelled { invite, cancel }) => return (invite, cancel),
            Some(_) => {}
            None => panic!("no Cancelled event"),
        }
    }
}

#[test]
fn cancel_after_provisional_gets_200_and_487() {
    let (mut sim, uac, uas) = world(30, NetConfig::default());
    let inv = sim.request(uac, uas, "INVITE", Transport::Udp, "z9hG4bKc1");
    let key = sim
        .send_request(uac, uas, inv.clone(), Transport::Udp)
        .unwrap();
    let (skey, req) = take_request(&mut sim, uas);
    answer(&mut sim, uas, skey, &req, 180);
    sim.run_for(ms(100));
    assert_eq!(delivered(sim.events(uac), key), vec![100, 180]);
    let ckey = sim.cancel(uac, key).unwrap();
    // The CANCEL is the INVITE's: same Request-URI, Call-ID, From, To,
    // CSeq number, top Via branch.
    let cancels: Vec<_> = sim
        .packets()
        .iter()
        .filter(|p| p.is_request("CANCEL"))
        .collect();
    assert_eq!(cancels.len(), 1);
    let c = Message::parse(cancels[0].bytes.clone()).unwrap();
    assert_eq!(c.request_uri_raw(), inv.request_uri_raw());
    assert_eq!(c.call_id().unwrap(), inv.call_id().unwrap());
    assert_eq!(c.from().unwrap(), inv.from().unwrap());
    assert_eq!(c.to().unwrap(), inv.to().unwrap());
    assert_eq!(c.cseq().unwrap().seq, inv.cseq().unwrap().seq);
    assert_eq!(
        c.top_via().unwrap().branch(),
        inv.top_via().unwrap().branch()
    );
    // The UAS endpoint answered the CANCEL; its TU answers the INVITE with 487.
    let (invite, cancel) = take_cancelled(&mut sim, uas);
    assert_eq!(invite, skey);
    assert_eq!(
        count(sim.events(uas), |e| matches!(e, Event::Request { .. })),
        1,
        "the TU never sees the CANCEL as a request"
    );
    answer(&mut sim, uas, skey, &req, 487);
    sim.run_for(secs(1));
    assert_eq!(delivered(sim.events(uac), ckey), vec![200]);
    assert_eq!(delivered(sim.events(uac), key), vec![100, 180, 487]);
    // The 487 was ACKed hop by hop.
    assert_eq!(sim.endpoint(uas).state(invite), Some(TxState::Confirmed));
    assert!(
        sim.endpoint(uas).state(cancel).is_some()
            || terminated_at(sim.events(uas), cancel).is_some()
    );
}

#[test]
fn cancel_before_provisional_waits() {
    let (mut sim, uac, uas) = world(31, NetConfig::default());
    let uas_addr = sim.addr(uas);
    // The 100 Trying is lost; the UAC learns the INVITE arrived only when the
    // retransmission at 0.5 s is answered (at 0.52 s).
    let mut first = true;
    sim.set_filter(move |p| {
        let hit = first && p.from == uas_addr && p.status() == Some(100);
        first &= !hit;
        hit
    });
    let inv = sim.request(uac, uas, "INVITE", Transport::Udp, "z9hG4bKc2");
    let key = sim.send_request(uac, uas, inv, Transport::Udp).unwrap();
    sim.run_for(ms(100));
    let ckey = sim.cancel(uac, key).unwrap();
    sim.run_for(ms(300));
    assert!(
        sent(&sim, "CANCEL").is_empty(),
        "no CANCEL before a provisional (§9.1)"
    );
    assert_eq!(sim.endpoint(uac).state(ckey), None);
    let (skey, req) = take_request(&mut sim, uas);
    let _ = take_cancelled(&mut sim, uas);
    assert_eq!(
        sent(&sim, "CANCEL"),
        vec![ms(520)],
        "sent as the 100 arrived"
    );
    answer(&mut sim, uas, skey, &req, 487);
    sim.run_for(secs(1));
    assert_eq!(delivered(sim.events(uac), ckey), vec![200]);
    assert_eq!(delivered(sim.events(uac), key), vec![100, 487]);
}

#[test]
fn cancel_after_200_races() {
    let (mut sim, uac, uas) = world(32, NetConfig::default());
    let inv = sim.request(uac, uas, "INVITE", Transport::Udp, "z9hG4bKc3");
    let key = sim.send_request(uac, uas, inv, Transport::Udp).unwrap();
    let (skey, req) = take_request(&mut sim, uas);
    answer(&mut sim, uas, skey, &req, 180);
    sim.run_for(ms(100));
    // At the same instant the callee answers and the caller hangs up: the
    // 200 and the CANCEL cross on the wire.
    answer(&mut sim, uas, skey, &req, 200);
    let ckey = sim.cancel(uac, key).unwrap();
    sim.run_for(secs(2));
    // The 200 wins: the INVITE stays answered 200, the UAS's TU is not
    // asked for a 487 and could not send one.
    assert_eq!(delivered(sim.events(uac), key), vec![100, 180, 200]);
    assert_eq!(sim.endpoint(uac).state(key), Some(TxState::Accepted));
    assert_eq!(
        count(sim.events(uas), |e| matches!(e, Event::Cancelled { .. })),
        0
    );
    assert_eq!(sim.endpoint(uas).state(skey), Some(TxState::Accepted));
    let late = transaction::response_to(&req, 487, "Request Terminated", Some("uas-tag")).unwrap();
    assert_eq!(sim.respond(uas, skey, late), Err(TxError::InvalidState));
    // The CANCEL itself gets 200 (it matched the INVITE) or 481.
    let c = delivered(sim.events(uac), ckey);
    assert!(c == vec![200] || c == vec![481], "{c:?}");
    // Cancelling again, or after the final, is refused.
    assert_eq!(sim.cancel(uac, key), Err(TxError::AlreadyCancelled));
}

#[test]
fn cancel_after_final_is_refused() {
    let (mut sim, uac, uas) = world(33, NetConfig::default());
    let inv = sim.request(uac, uas, "INVITE", Transport::Udp, "z9hG4bKc4");
    let key = sim.send_request(uac, uas, inv, Transport::Udp).unwrap();
    let (skey, req) = take_request(&mut sim, uas);
    answer(&mut sim, uas, skey, &req, 200);
    sim.run_for(ms(100));
    assert_eq!(sim.cancel(uac, key), Err(TxError::AlreadyFinal));
    assert!(sent(&sim, "CANCEL").is_empty());
}

#[test]
fn unmatched_cancel_gets_481() {
    let (mut sim, uac, uas) = world(34, NetConfig::default());
    let cancel = sim.request(uac, uas, "CANCEL", Transport::Udp, "z9hG4bKnothing");
    let key = sim.send_request(uac, uas, cancel, Transport::Udp).unwrap();
    sim.run_for(secs(1));
    assert_eq!(delivered(sim.events(uac), key), vec![481]);
    let r = responses(&sim, 481);
    let msg = Message::parse(r[0].bytes.clone()).unwrap();
    assert!(msg.to().unwrap().tag().is_some(), "481 carries a To tag");
    // The UAS's TU saw nothing but the bookkeeping.
    assert!(sim
        .events(uas)
        .iter()
        .all(|l| matches!(l.event, Event::Terminated { .. })));
}

#[test]
fn retransmitted_cancel_gets_the_same_answer() {
    let (mut sim, uac, uas) = world(35, NetConfig::default());
    let cancel = sim.request(uac, uas, "CANCEL", Transport::Udp, "z9hG4bKnothing2");
    let to = sim.peer(uas, Transport::Udp);
    sim.send_raw(uac, to, cancel.to_bytes());
    sim.run_for(ms(100));
    sim.send_raw(uac, to, cancel.to_bytes());
    sim.run_for(ms(100));
    let r = responses(&sim, 481);
    assert_eq!(r.len(), 2);
    assert_eq!(r[0].bytes, r[1].bytes, "same tag, same bytes");
}
