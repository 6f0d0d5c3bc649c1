//! Server transactions: absorbing retransmissions, resending responses,
//! Timers G, H, I, J, L.

use super::*;
use sim::NetConfig;
use transaction::{Transport, TxState};

/// Drops the first packet from `node` that satisfies `pred`.
fn drop_first(sim: &mut Sim, node: NodeId, pred: impl Fn(&Packet) -> bool + 'static) {
    let addr = sim.addr(node);
    let mut dropped = false;
    sim.set_filter(move |p| {
        if !dropped && p.from == addr && pred(p) {
            dropped = true;
            return true;
        }
        false
    });
}

#[test]
fn server_absorbs_retransmitted_invite() {
    let (mut sim, uac, uas) = world(10, NetConfig::default());
    drop_first(&mut sim, uas, |p| p.status() == Some(100));
    let inv = sim.request(uac, uas, "INVITE", Transport::Udp, "z9hG4bKs1");
    let key = sim.send_request(uac, uas, inv, Transport::Udp).unwrap();
    sim.run_for(secs(5));
    // The INVITE went twice (Timer A at 0.5 s); the TU saw it once.
    assert_eq!(sent(&sim, "INVITE"), vec![ms(0), ms(500)]);
    assert_eq!(
        count(sim.events(uas), |e| matches!(e, Event::Request { .. })),
        1
    );
    // The stored 100 Trying was resent for the retransmission.
    let trying = responses(&sim, 100);
    assert_eq!(trying.len(), 2);
    assert!(!trying[0].delivered() && trying[1].delivered());
    assert_eq!(trying[1].sent, ms(510));
    assert_eq!(delivered(sim.events(uac), key), vec![100]);
}

#[test]
fn server_resends_final_response_on_request_retransmission() {
    let (mut sim, uac, uas) = world(11, NetConfig::default());
    drop_first(&mut sim, uas, |p| p.status() == Some(200));
    let opt = sim.request(uac, uas, "OPTIONS", Transport::Udp, "z9hG4bKs2");
    let key = sim.send_request(uac, uas, opt, Transport::Udp).unwrap();
    let (skey, req) = take_request(&mut sim, uas);
    answer(&mut sim, uas, skey, &req, 200);
    sim.run_for(secs(10));
    assert_eq!(
        count(sim.events(uas), |e| matches!(e, Event::Request { .. })),
        1
    );
    let oks = responses(&sim, 200);
    assert_eq!(
        oks.len(),
        2,
        "first lost, resent for the retransmission at 0.5 s"
    );
    assert_eq!(oks[1].sent, ms(510));
    assert_eq!(delivered(sim.events(uac), key), vec![200], "delivered once");
}

#[test]
fn server_resends_last_provisional_on_invite_retransmission() {
    let (mut sim, uac, uas) = world(12, NetConfig::default());
    let uas_addr = sim.addr(uas);
    // Everything from the UAS is lost for the first second.
    sim.set_filter(move |p| p.from == uas_addr && p.sent < secs(1));
    let inv = sim.request(uac, uas, "INVITE", Transport::Udp, "z9hG4bKs3");
    let key = sim.send_request(uac, uas, inv, Transport::Udp).unwrap();
    let (skey, req) = take_request(&mut sim, uas);
    answer(&mut sim, uas, skey, &req, 180);
    sim.run_for(secs(5));
    // Retransmission at 1.5 s answered with the 180, not the 100.
    let resent: Vec<_> = sim
        .packets()
        .iter()
        .filter(|p| p.from == uas_addr && p.delivered())
        .map(|p| p.status())
        .collect();
    assert_eq!(resent, vec![Some(180)]);
    assert_eq!(delivered(sim.events(uac), key), vec![180]);
}

#[test]
fn invite_server_retransmits_non_2xx_with_timer_g_until_timer_h() {
    let (mut sim, uac, uas) = world(13, NetConfig::default());
    let uac_addr = sim.addr(uac);
    // The UAC's ACKs never arrive.
    sim.set_filter(move |p| p.from == uac_addr && p.is_request("ACK"));
    let inv = sim.request(uac, uas, "INVITE", Transport::Udp, "z9hG4bKs4");
    sim.send_request(uac, uas, inv, Transport::Udp).unwrap();
    let (skey, req) = take_request(&mut sim, uas);
    answer(&mut sim, uas, skey, &req, 486);
    sim.run_for(secs(40));
    let times: Vec<_> = responses(&sim, 486)
        .iter()
        .filter(|p| p.from == sim.addr(uas))
        .map(|p| p.sent)
        .collect();
    let iv = intervals(&times);
    assert_eq!(
        &iv[..4],
        &[ms(500), secs(1), secs(2), secs(4)],
        "G: T1 doubling to T2"
    );
    assert!(iv[3..].iter().all(|d| *d == secs(4)));
    let log = sim.events(uas);
    assert_eq!(
        count(
            log,
            |e| matches!(e, Event::AckTimeout { key } if *key == skey)
        ),
        1
    );
    assert_eq!(
        terminated_at(log, skey),
        Some(ms(10) + secs(32)),
        "Timer H = 64*T1"
    );
}

#[test]
fn non_invite_server_keeps_final_for_timer_j() {
    for (transport, j) in [(Transport::Udp, secs(32)), (Transport::Tcp, Duration::ZERO)] {
        let (mut sim, uac, uas) = world(14, NetConfig::default());
        let opt = sim.request(uac, uas, "OPTIONS", transport, "z9hG4bKs5");
        sim.send_request(uac, uas, opt, transport).unwrap();
        let (skey, req) = take_request(&mut sim, uas);
        let answered_at = sim.elapsed();
        answer(&mut sim, uas, skey, &req, 200);
        sim.run_for(secs(60));
        assert_eq!(
            terminated_at(sim.events(uas), skey).unwrap() - answered_at,
            j,
            "Timer J over {transport}"
        );
    }
}

#[test]
fn responses_follow_the_stream_connection() {
    let (mut sim, uac, uas) = world(15, NetConfig::default());
    let opt = sim.request(uac, uas, "OPTIONS", Transport::Tls, "z9hG4bKs6");
    let ckey = sim.send_request(uac, uas, opt, Transport::Tls).unwrap();
    let (key, req, from) = loop {
        match sim.next_event(uas, secs(1)) {
            Some(Event::Request { key, msg, from }) => break (key, msg, from),
            Some(_) => {}
            None => panic!("no request"),
        }
    };
    assert_eq!((from.addr, from.transport), (sim.addr(uac), Transport::Tls));
    assert!(
        from.conn.is_some(),
        "stream requests carry their connection"
    );
    assert_eq!(sim.endpoint(uas).state(key), Some(TxState::Trying));
    // The response goes back to exactly that peer, connection included.
    let now = sim.now();
    let ok = transaction::response_to(&req, 200, "OK", Some("t")).unwrap();
    sim.endpoint(uas).respond(now, key, ok).unwrap();
    let t = sim.endpoint(uas).poll_transmit().unwrap();
    assert_eq!(t.to, from);
    sim.send_raw(uas, t.to, t.bytes);
    sim.run_for(secs(1));
    assert_eq!(delivered(sim.events(uac), ckey), vec![200]);
}
