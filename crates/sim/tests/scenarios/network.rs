//! Whole exchanges on a bad network, and transport failures.

use super::*;
use sim::NetConfig;
use transaction::{Peer, Transport, TxState};

/// One seed: an INVITE rejected 486, an OPTIONS answered 200, and an
/// INVITE answered 200 whose 2xx the UAS core retransmits until the ACK
/// (RFC 3261 §13.3.1.4) while the UAC core ACKs every 2xx (RFC 6026).
/// Returns a description of what did not complete.
fn lossy_run(seed: u64, loss: f64) -> Result<(), String> {
    let (mut sim, uac, uas) = world(seed, NetConfig::lossy(loss));
    let udp = Transport::Udp;
    let busy = sim.request(uac, uas, "INVITE", udp, "z9hG4bKl1");
    let opts = sim.request(uac, uas, "OPTIONS", udp, "z9hG4bKl2");
    let call = sim.request(uac, uas, "INVITE", udp, "z9hG4bKl3");
    let kb = sim.send_request(uac, uas, busy, udp).unwrap();
    let ko = sim.send_request(uac, uas, opts, udp).unwrap();
    let kc = sim.send_request(uac, uas, call.clone(), udp).unwrap();
    let uas_peer = sim.peer(uas, udp);
    let mut ok_2xx: Option<(ServerKey, Message)> = None;
    let mut next_2xx = sim.now();
    let mut interval = ms(500);
    let mut acked = false;
    let deadline = sim.now() + secs(120);
    loop {
        // The TU has a timer of its own (the 2xx retransmission): wake for it too.
        let retransmitting = ok_2xx.is_some() && !acked;
        let wake = if retransmitting {
            next_2xx.min(deadline)
        } else {
            deadline
        };
        if !sim.step_until(wake) {
            if !retransmitting || sim.now() >= deadline {
                break;
            }
            sim.run_for(wake - sim.now());
        }
        for ev in sim.take_events(uas) {
            match ev {
                Event::Request { key, msg, .. } => {
                    let status = match msg.cseq().unwrap().method {
                        "OPTIONS" => 200,
                        _ if msg.call_id().unwrap() == call.call_id().unwrap() => 200,
                        _ => 486,
                    };
                    answer(&mut sim, uas, key, &msg, status);
                    if status == 200 && msg.method_str() == Some("INVITE") {
                        ok_2xx = Some((key, msg));
                        next_2xx = sim.now() + interval;
                    }
                }
                Event::Ack { .. } => acked = true,
                _ => {}
            }
        }
        for ev in sim.take_events(uac) {
            if let Event::Response { key, msg } = ev {
                if key == kc && msg.status() == Some(200) {
                    let ack = ack_for_2xx(&call, &msg, "z9hG4bKl3-ack");
                    sim.send_stateless(uac, &ack, uas_peer);
                }
            }
        }
        // The UAS core's 2xx retransmission: T1 doubling to T2 until the ACK.
        if let Some((key, req)) = &ok_2xx {
            if !acked && sim.now() >= next_2xx && sim.endpoint(uas).state(*key).is_some() {
                let (key, req) = (*key, req.clone());
                answer(&mut sim, uas, key, &req, 200);
                interval = (interval * 2).min(secs(4));
                next_2xx = sim.now() + interval;
            }
        }
    }
    let log = sim.events(uac);
    let mut failures = Vec::new();
    if delivered(log, kb).iter().filter(|s| **s == 486).count() != 1 {
        failures.push(format!("486 delivered {:?}", delivered(log, kb)));
    }
    if delivered(log, ko) != vec![200] {
        failures.push(format!("OPTIONS got {:?}", delivered(log, ko)));
    }
    if !delivered(log, kc).contains(&200) {
        failures.push(format!("call got {:?}", delivered(log, kc)));
    }
    if !acked {
        failures.push("the 2xx was never ACKed".into());
    }
    let uas_log = sim.events(uas);
    if count(uas_log, |e| matches!(e, Event::Request { .. })) != 3 {
        failures.push("the UAS TU saw a request twice".into());
    }
    if count(uas_log, |e| matches!(e, Event::AckTimeout { .. })) != 0 {
        failures.push("the 486 was never ACKed".into());
    }
    if !sim.endpoint(uac).is_empty() || !sim.endpoint(uas).is_empty() {
        failures.push("transactions left over".into());
    }
    if sim.unparsable() != 0 {
        failures.push("unparsable messages".into());
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("; "))
    }
}

#[test]
fn lossy_network_still_completes() {
    let failed: Vec<String> = (0..64)
        .filter_map(|seed| {
            lossy_run(seed, 0.3)
                .err()
                .map(|e| format!("seed {seed}: {e}"))
        })
        .collect();
    assert!(failed.is_empty(), "{failed:#?}");
}

#[test]
fn same_seed_same_world() {
    let trace = |seed| {
        let (mut sim, uac, uas) = world(seed, NetConfig::lossy(0.3));
        let opt = sim.request(uac, uas, "OPTIONS", Transport::Udp, "z9hG4bKsame");
        sim.send_request(uac, uas, opt, Transport::Udp).unwrap();
        let (k, req) = take_request(&mut sim, uas);
        answer(&mut sim, uas, k, &req, 200);
        sim.run_for(secs(60));
        sim.packets()
            .iter()
            .map(|p| (p.sent, p.fate, p.first_line()))
            .collect::<Vec<_>>()
    };
    assert_eq!(trace(5), trace(5));
    assert_ne!(trace(5), trace(6));
}

#[test]
fn transport_error_terminates_client_transaction() {
    let (mut sim, uac, _) = world(50, NetConfig::default());
    // Nobody listens at this address: the TCP connect is refused.
    let nowhere = Peer::new("192.0.2.77:5060".parse().unwrap(), Transport::Tcp);
    let inv = sim::request(
        "INVITE",
        sim.addr(uac),
        nowhere.addr,
        Transport::Tcp,
        "z9hG4bKte1",
    );
    let now = sim.now();
    let key = sim.endpoint(uac).send_request(now, inv, nowhere).unwrap();
    assert!(matches!(
        sim.next_event(uac, secs(60)),
        Some(Event::TransportError { key: k }) if k == key
    ));
    assert_eq!(sim.elapsed(), ms(20), "one round trip, not Timer B");
    assert!(matches!(
        sim.next_event(uac, secs(60)),
        Some(Event::Terminated { key: TxKey::Client(k) }) if k == key
    ));
    assert_eq!(
        count(sim.events(uac), |e| matches!(e, Event::Timeout { .. })),
        0
    );
    assert!(sim.endpoint(uac).is_empty());
}

#[test]
fn transport_error_spares_other_peers() {
    let (mut sim, uac, uas) = world(51, NetConfig::default());
    let nowhere = Peer::new("192.0.2.77:5061".parse().unwrap(), Transport::Tls);
    let opt = sim::request(
        "OPTIONS",
        sim.addr(uac),
        nowhere.addr,
        Transport::Tls,
        "z9hG4bKte2",
    );
    let now = sim.now();
    let dead = sim.endpoint(uac).send_request(now, opt, nowhere).unwrap();
    let live_req = sim.request(uac, uas, "OPTIONS", Transport::Tls, "z9hG4bKte3");
    let live = sim
        .send_request(uac, uas, live_req, Transport::Tls)
        .unwrap();
    sim.run_for(ms(30));
    assert_eq!(sim.endpoint(uac).state(dead), None);
    assert_eq!(sim.endpoint(uac).state(live), Some(TxState::Trying));
}

#[test]
fn random_operations_never_panic_and_every_transaction_ends() {
    for seed in 0..32 {
        let (mut sim, uac, uas) = world(seed, NetConfig::lossy(0.2));
        let mut rng = sim::Rng::new(seed ^ 0xA5A5);
        let mut invites: Vec<ClientKey> = Vec::new();
        let mut pending: Vec<(ServerKey, Message)> = Vec::new();
        let methods = ["INVITE", "OPTIONS", "INFO", "CANCEL", "BYE"];
        let statuses = [100, 180, 183, 200, 202, 302, 404, 486, 487, 503, 603];
        for step in 0..200u32 {
            let transport =
                [Transport::Udp, Transport::Tcp, Transport::Tls][(rng.next_u64() % 3) as usize];
            match rng.next_u64() % 6 {
                0 | 1 => {
                    let m = methods[(rng.next_u64() % methods.len() as u64) as usize];
                    let req =
                        sim.request(uac, uas, m, transport, &format!("z9hG4bKr{seed}x{step}"));
                    if let Ok(k) = sim.send_request(uac, uas, req, transport) {
                        if m == "INVITE" {
                            invites.push(k);
                        }
                    }
                }
                2 if !invites.is_empty() => {
                    let k = invites[(rng.next_u64() % invites.len() as u64) as usize];
                    let _ = sim.cancel(uac, k);
                }
                3 if !pending.is_empty() => {
                    let i = (rng.next_u64() % pending.len() as u64) as usize;
                    let (k, req) = pending[i].clone();
                    let s = statuses[(rng.next_u64() % statuses.len() as u64) as usize];
                    let r = transaction::response_to(&req, s, "Random", Some("rt")).unwrap();
                    if sim.respond(uas, k, r).is_err() || s >= 200 {
                        pending.swap_remove(i);
                    }
                }
                4 => {
                    // A retransmission by hand, or garbage.
                    let to = sim.peer(uas, transport);
                    let raw = if rng.chance(0.5) {
                        Bytes::from_static(b"INVITE sip:x SIP/2.0\r\nVia: nonsense\r\n\r\n")
                    } else {
                        let m = methods[(rng.next_u64() % methods.len() as u64) as usize];
                        sim.request(
                            uac,
                            uas,
                            m,
                            transport,
                            &format!("z9hG4bKr{seed}x{}", rng.next_u64() % (u64::from(step) + 1)),
                        )
                        .to_bytes()
                    };
                    sim.send_raw(uac, to, raw);
                }
                _ => sim.run_for(ms(rng.next_u64() % 3_000)),
            }
            for ev in sim.take_events(uas) {
                if let Event::Request { key, msg, .. } = ev {
                    pending.push((key, msg));
                }
            }
        }
        // The TU answers everything still open; then everything must end.
        for (k, req) in pending.drain(..) {
            let r = transaction::response_to(&req, 500, "Server Error", Some("rt")).unwrap();
            let _ = sim.respond(uas, k, r);
        }
        sim.run_for(secs(600));
        for ev in sim.take_events(uas) {
            if let Event::Request { key, msg, .. } = ev {
                let r = transaction::response_to(&msg, 500, "Server Error", Some("rt")).unwrap();
                let _ = sim.respond(uas, key, r);
            }
        }
        assert!(sim.run_until_idle(secs(600)), "seed {seed}: still busy");
        assert!(
            sim.endpoint(uac).is_empty(),
            "seed {seed}: client transactions leak"
        );
        assert!(
            sim.endpoint(uas).is_empty(),
            "seed {seed}: server transactions leak"
        );
    }
}
