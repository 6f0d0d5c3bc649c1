//! Client timers: A, B, E, F, D, and what the transport changes.

use super::*;
use sim::NetConfig;
use transaction::{Config, Peer, TimerConfig, Transport, TxState};

/// Nobody lives at this address: UDP datagrams to it vanish.
const VOID: &str = "192.0.2.99:5060";

fn void() -> Peer {
    Peer::new(VOID.parse().unwrap(), Transport::Udp)
}

#[test]
fn timer_b_fires_after_64_t1() {
    for (t1, expect) in [(500, 32_000), (100, 6_400)] {
        let mut sim = Sim::new(1, NetConfig::default());
        let cfg = Config {
            timers: TimerConfig {
                t1: ms(t1),
                ..TimerConfig::default()
            },
            seed: 1,
        };
        let uac = sim.add_node_with("uac", "192.0.2.1:5060", cfg);
        let inv = sim::request(
            "INVITE",
            sim.addr(uac),
            void().addr,
            Transport::Udp,
            "z9hG4bKb1",
        );
        let now = sim.now();
        let key = sim.endpoint(uac).send_request(now, inv, void()).unwrap();
        assert!(
            matches!(sim.next_event(uac, secs(60)), Some(Event::Timeout { key: k }) if k == key)
        );
        assert_eq!(
            sim.elapsed(),
            ms(expect),
            "Timer B = 64*T1 with T1 = {t1} ms"
        );
        assert_eq!(terminated_at(sim.events(uac), key), Some(ms(expect)));
        assert!(sim.endpoint(uac).is_empty());
    }
}

#[test]
fn timer_b_can_be_shortened_for_failover() {
    let mut sim = Sim::new(1, NetConfig::default());
    let cfg = Config {
        timers: TimerConfig {
            timer_b: Some(secs(8)),
            ..TimerConfig::default()
        },
        seed: 1,
    };
    let uac = sim.add_node_with("uac", "192.0.2.1:5060", cfg);
    let inv = sim::request(
        "INVITE",
        sim.addr(uac),
        void().addr,
        Transport::Udp,
        "z9hG4bKb2",
    );
    let now = sim.now();
    sim.endpoint(uac).send_request(now, inv, void()).unwrap();
    assert!(matches!(
        sim.next_event(uac, secs(60)),
        Some(Event::Timeout { .. })
    ));
    assert_eq!(sim.elapsed(), secs(8));
}

#[test]
fn timer_f_fires_after_64_t1() {
    let (mut sim, uac, _) = world(2, NetConfig::default());
    let opt = sim::request(
        "OPTIONS",
        sim.addr(uac),
        void().addr,
        Transport::Udp,
        "z9hG4bKf1",
    );
    let now = sim.now();
    let key = sim.endpoint(uac).send_request(now, opt, void()).unwrap();
    assert!(matches!(sim.next_event(uac, secs(60)), Some(Event::Timeout { key: k }) if k == key));
    assert_eq!(sim.elapsed(), secs(32));
    assert_eq!(terminated_at(sim.events(uac), key), Some(secs(32)));
}

#[test]
fn invite_retransmits_with_timer_a_doubling_until_timer_b() {
    let (mut sim, uac, _) = world(3, NetConfig::default());
    let inv = sim::request(
        "INVITE",
        sim.addr(uac),
        void().addr,
        Transport::Udp,
        "z9hG4bKa1",
    );
    let now = sim.now();
    sim.endpoint(uac).send_request(now, inv, void()).unwrap();
    sim.run_for(secs(40));
    let times = sent(&sim, "INVITE");
    assert_eq!(
        intervals(&times),
        vec![ms(500), secs(1), secs(2), secs(4), secs(8), secs(16)],
        "A doubles from T1 with no cap: sent at {times:?}"
    );
}

#[test]
fn invite_retransmits_until_provisional() {
    let (mut sim, uac, uas) = world(4, NetConfig::default());
    // The UAS's 100 Trying is lost until 2 s; its answer to the INVITE
    // retransmission at 3.5 s gets through and stops Timer A.
    let uas_addr = sim.addr(uas);
    sim.set_filter(move |p| p.from == uas_addr && p.sent < secs(2));
    let inv = sim.request(uac, uas, "INVITE", Transport::Udp, "z9hG4bKa2");
    let key = sim.send_request(uac, uas, inv, Transport::Udp).unwrap();
    sim.run_for(secs(40));
    let times = sent(&sim, "INVITE");
    assert_eq!(
        times,
        vec![ms(0), ms(500), ms(1_500), ms(3_500)],
        "0.5, 1, 2 s, then a provisional"
    );
    assert_eq!(delivered(sim.events(uac), key), vec![100]);
    assert_eq!(sim.endpoint(uac).state(key), Some(TxState::Proceeding));
    // In Proceeding an INVITE waits for its final: Timer B no longer runs.
    assert!(!sim
        .events(uac)
        .iter()
        .any(|l| matches!(l.event, Event::Timeout { .. })));
}

#[test]
fn non_invite_retransmits_capped_at_t2() {
    let (mut sim, uac, _) = world(5, NetConfig::default());
    let opt = sim::request(
        "OPTIONS",
        sim.addr(uac),
        void().addr,
        Transport::Udp,
        "z9hG4bKe1",
    );
    let now = sim.now();
    sim.endpoint(uac).send_request(now, opt, void()).unwrap();
    sim.run_for(secs(40));
    let times = sent(&sim, "OPTIONS");
    let iv = intervals(&times);
    assert_eq!(&iv[..4], &[ms(500), secs(1), secs(2), secs(4)]);
    assert!(
        iv[3..].iter().all(|d| *d == secs(4)),
        "E stays at T2: {iv:?}"
    );
    assert_eq!(*times.last().unwrap(), ms(31_500));
    assert_eq!(times.len(), 11);
}

#[test]
fn non_invite_retransmits_at_t2_once_proceeding() {
    let (mut sim, uac, uas) = world(6, NetConfig::default());
    let opt = sim.request(uac, uas, "OPTIONS", Transport::Udp, "z9hG4bKe2");
    sim.send_request(uac, uas, opt, Transport::Udp).unwrap();
    let (key, req) = take_request(&mut sim, uas);
    answer(&mut sim, uas, key, &req, 180);
    sim.run_for(secs(20));
    let times = sent(&sim, "OPTIONS");
    // Sent at 0, the 180 arrives at 20 ms (Proceeding); the armed E fires at
    // 0.5 s and from then on every T2 = 4 s.
    assert_eq!(intervals(&times)[..3], [ms(500), secs(4), secs(4)]);
}

#[test]
fn no_retransmission_over_tcp() {
    let (mut sim, uac, uas) = world(7, NetConfig::default());
    // The UAS is silent (everything it sends is dropped).
    let uas_addr = sim.addr(uas);
    sim.set_filter(move |p| p.from == uas_addr);
    let inv = sim.request(uac, uas, "INVITE", Transport::Tcp, "z9hG4bKt1");
    let opt = sim.request(uac, uas, "OPTIONS", Transport::Tcp, "z9hG4bKt2");
    let ki = sim.send_request(uac, uas, inv, Transport::Tcp).unwrap();
    let ko = sim.send_request(uac, uas, opt, Transport::Tcp).unwrap();
    sim.run_for(secs(40));
    assert_eq!(sent(&sim, "INVITE").len(), 1);
    assert_eq!(sent(&sim, "OPTIONS").len(), 1);
    // Timers B and F still run.
    let log = sim.events(uac);
    assert_eq!(
        count(log, |e| matches!(e, Event::Timeout { key } if *key == ki)),
        1
    );
    assert_eq!(
        count(log, |e| matches!(e, Event::Timeout { key } if *key == ko)),
        1
    );
    assert_eq!(terminated_at(log, ki), Some(secs(32)));
}

#[test]
fn timer_d_32s_over_udp_zero_over_tcp() {
    for (transport, expect_d) in [(Transport::Udp, secs(32)), (Transport::Tcp, Duration::ZERO)] {
        let (mut sim, uac, uas) = world(8, NetConfig::default());
        let inv = sim.request(uac, uas, "INVITE", transport, "z9hG4bKd1");
        let key = sim.send_request(uac, uas, inv, transport).unwrap();
        let (skey, req) = take_request(&mut sim, uas);
        answer(&mut sim, uas, skey, &req, 486);
        sim.run_for(secs(60));
        let log = sim.events(uac);
        let final_at = log
            .iter()
            .find_map(|l| match &l.event {
                Event::Response { msg, .. } if msg.status() == Some(486) => Some(l.at),
                _ => None,
            })
            .unwrap();
        assert_eq!(
            terminated_at(log, key).unwrap() - final_at,
            expect_d,
            "Timer D over {transport}"
        );
    }
}

#[test]
fn timer_k_t4_over_udp_zero_over_tcp() {
    for (transport, expect_k) in [(Transport::Udp, secs(5)), (Transport::Tls, Duration::ZERO)] {
        let (mut sim, uac, uas) = world(9, NetConfig::default());
        let opt = sim.request(uac, uas, "OPTIONS", transport, "z9hG4bKk1");
        let key = sim.send_request(uac, uas, opt, transport).unwrap();
        let (skey, req) = take_request(&mut sim, uas);
        answer(&mut sim, uas, skey, &req, 200);
        sim.run_for(secs(60));
        let log = sim.events(uac);
        let final_at = log
            .iter()
            .find_map(|l| matches!(l.event, Event::Response { .. }).then_some(l.at))
            .unwrap();
        assert_eq!(
            terminated_at(log, key).unwrap() - final_at,
            expect_k,
            "Timer K over {transport}"
        );
    }
}
