//! Fuzz target: sequences of operations on a UAC and a UAS transaction
//! endpoint over the seeded virtual network of the `sim` crate (requests,
//! CANCELs, responses, hand-made retransmissions, garbage, transport errors,
//! loss, time).
//!
//! Invariants beyond "does not panic":
//! * once the UAS has answered everything and enough virtual time has passed,
//!   every transaction on both sides has ended (no leak, no stuck timer);
//! * `poll_timeout` never points into the past after an input was handled;
//! * every INVITE client transaction is reported `Terminated` to the TU.
#![no_main]

use std::collections::HashSet;
use std::time::Duration;

use arbitrary::Arbitrary;
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sim::{NetConfig, Sim};
use transaction::{ClientKey, Event, Input, ServerKey, Transport, TxKey};

#[derive(Arbitrary, Debug)]
enum Op {
    Request { method: u8, transport: u8 },
    Retransmit { method: u8, transport: u8, branch: u8 },
    Cancel { which: u8 },
    Respond { which: u8, status: u8 },
    Raw { transport: u8, data: Vec<u8> },
    TransportError { transport: u8, uac_side: bool },
    Loss { percent: u8 },
    Run { ms: u16 },
}

#[derive(Arbitrary, Debug)]
struct Input0 {
    seed: u64,
    ops: Vec<Op>,
}

const METHODS: [&str; 6] = ["INVITE", "OPTIONS", "INFO", "BYE", "CANCEL", "MESSAGE"];
const STATUSES: [u16; 12] = [100, 180, 183, 200, 202, 302, 404, 408, 486, 487, 503, 603];

fn transport(t: u8) -> Transport {
    [Transport::Udp, Transport::Tcp, Transport::Tls][usize::from(t % 3)]
}

fuzz_target!(|input: Input0| {
    let mut sim = Sim::new(input.seed, NetConfig::default());
    let uac = sim.add_node("uac", "192.0.2.1:5060");
    let uas = sim.add_node("uas", "192.0.2.2:5060");
    let mut invites: Vec<ClientKey> = Vec::new();
    let mut pending: Vec<(ServerKey, sip::Message)> = Vec::new();
    let mut n = 0u32;
    for op in input.ops.iter().take(64) {
        n += 1;
        match op {
            Op::Request { method, transport: t } => {
                let m = METHODS[usize::from(*method) % METHODS.len()];
                let req = sim.request(uac, uas, m, transport(*t), &format!("z9hG4bKf{n}"));
                if let Ok(k) = sim.send_request(uac, uas, req, transport(*t)) {
                    if m == "INVITE" {
                        invites.push(k);
                    }
                }
            }
            Op::Retransmit { method, transport: t, branch } => {
                let m = METHODS[usize::from(*method) % METHODS.len()];
                let b = u32::from(*branch) % n.max(1);
                let raw = sim.request(uac, uas, m, transport(*t), &format!("z9hG4bKf{b}")).to_bytes();
                let to = sim.peer(uas, transport(*t));
                sim.send_raw(uac, to, raw);
            }
            Op::Cancel { which } if !invites.is_empty() => {
                let k = invites[usize::from(*which) % invites.len()];
                let _ = sim.cancel(uac, k);
            }
            Op::Respond { which, status } if !pending.is_empty() => {
                let i = usize::from(*which) % pending.len();
                let (k, req) = pending[i].clone();
                let s = STATUSES[usize::from(*status) % STATUSES.len()];
                if let Ok(r) = transaction::response_to(&req, s, "Fuzz", Some("fz")) {
                    if sim.respond(uas, k, r).is_err() || s >= 200 {
                        pending.swap_remove(i);
                    }
                }
            }
            Op::Raw { transport: t, data } => {
                let to = sim.peer(uas, transport(*t));
                sim.send_raw(uac, to, Bytes::copy_from_slice(data));
            }
            Op::TransportError { transport: t, uac_side } => {
                let (node, other) = if *uac_side { (uac, uas) } else { (uas, uac) };
                let to = sim.peer(other, transport(*t));
                let now = sim.now();
                sim.endpoint(node).handle(now, Input::TransportError { to });
            }
            Op::Loss { percent } => sim.set_net(NetConfig::lossy(f64::from(*percent % 60) / 100.0)),
            Op::Run { ms } => sim.run_for(Duration::from_millis(u64::from(*ms))),
            _ => {}
        }
        for node in [uac, uas] {
            let now = sim.now();
            if let Some(at) = sim.endpoint(node).poll_timeout() {
                // A timer may be due exactly now (the next step fires it) but never earlier
                // than the last time the endpoint was driven to.
                assert!(at + Duration::from_secs(1) >= now, "timeout in the past");
            }
        }
        for ev in sim.take_events(uas) {
            if let Event::Request { key, msg, .. } = ev {
                pending.push((key, msg));
            }
        }
    }
    // Answer everything still pending, stop losing packets, let time pass.
    sim.set_net(NetConfig::default());
    for _ in 0..4 {
        for ev in sim.take_events(uas) {
            if let Event::Request { key, msg, .. } = ev {
                pending.push((key, msg));
            }
        }
        for (k, req) in pending.drain(..) {
            if let Ok(r) = transaction::response_to(&req, 500, "Fuzz End", Some("fz")) {
                let _ = sim.respond(uas, k, r);
            }
        }
        sim.run_for(Duration::from_secs(120));
    }
    assert!(sim.endpoint(uac).is_empty(), "UAC transactions left: {}", sim.endpoint(uac).len());
    assert!(sim.endpoint(uas).is_empty(), "UAS transactions left: {}", sim.endpoint(uas).len());
    // Every INVITE client transaction was reported terminated to the TU.
    let ended: HashSet<TxKey> = sim
        .events(uac)
        .iter()
        .filter_map(|l| match &l.event {
            Event::Terminated { key } => Some(*key),
            _ => None,
        })
        .collect();
    for k in &invites {
        assert!(ended.contains(&TxKey::Client(*k)), "INVITE {k:?} never reported Terminated");
    }
});
