//! Nothing is left behind after load: 10,000 calls through the real B2BUA
//! in the simulated world, with a seeded mix of faults — Teams proxies and
//! the gateway toggled dead, silent or refusing with 503, a network losing
//! 2–5 % of UDP packets, callers cancelling, callees rejecting, BYEs from
//! either side, transfers (REFER) from Teams back to the carrier — and, at
//! the end, once everybody has hung up and the world has run on, no call,
//! dialog, timer, pending INVITE, held request or transaction is left in the
//! B2BUA and every media session it made was deleted, exactly once.
//!
//! Virtual time, one seed: the same run every time; about two minutes in a
//! debug build on a busy two-core machine (`cargo test -p sim --test leaks --
//! --nocapture` prints what happened).

use std::collections::BTreeSet;
use std::time::Duration;

use b2bua::{Config, Occupancy};
use routing::regex::Regex;
use routing::{Destination, Forward, Normaliser, NumberRule, Route, Table, Target};
use sim::peer::Fault;
use sim::world::{rtp, srtp, Answer, UaConfig, KEY1};
use sim::{NetConfig, NodeId, Rng, World};
use transaction::{TimerConfig, Transport};
use trunk::{PeerSpec, TrunkKind, TrunkSpec};

const SBC_UDP: &str = "192.0.2.1:5060";
const SBC_TLS: &str = "192.0.2.1:5061";
const CARRIER: &str = "192.0.2.10:5060";
const GATEWAY: &str = "192.0.2.30:5060";
const TEAMS: [&str; 3] = ["52.112.1.1:5061", "52.112.1.2:5061", "52.112.1.3:5061"];
const HOSTS: [&str; 3] = [
    "sip.pstnhub.microsoft.com",
    "sip2.pstnhub.microsoft.com",
    "sip3.pstnhub.microsoft.com",
];
const CALLED: &str = "sip:030123456@192.0.2.1:5060";
const CALLER: &str = "0891234567";

/// Calls placed; concurrent calls per round.
const CALLS: usize = 10_000;
const PER_ROUND: usize = 10;

fn peer(addr: &str, transport: Transport) -> PeerSpec {
    let a: std::net::SocketAddr = addr.parse().unwrap();
    PeerSpec {
        host: a.ip().to_string(),
        port: a.port(),
        transport,
        addr: Some(a),
    }
}

/// carrier → [Teams, gateway "Fail-over"], forwarded to an external number
/// through the carrier after 30 s; Teams and gateway → carrier.
fn config() -> Config {
    let mut carrier = TrunkSpec::new("carrier", TrunkKind::Carrier, "sbc.carrier.example");
    carrier.peers = vec![peer(CARRIER, Transport::Udp)];
    carrier.numbers_in = Normaliser {
        rules: vec![NumberRule {
            pattern: Regex::new(r"^0([1-9]\d+)$").unwrap(),
            replace: "+49$1".into(),
            applies: routing::Applies::Both,
        }],
    };
    let mut teams = TrunkSpec::new("teams", TrunkKind::Teams, "sbc.contoso.com");
    for (p, a) in teams.peers.iter_mut().zip(TEAMS) {
        p.addr = Some(a.parse().unwrap());
    }
    let mut gateway = TrunkSpec::new("gateway", TrunkKind::Gateway, "sbc.contoso.local");
    gateway.peers = vec![peer(GATEWAY, Transport::Udp)];
    let label = Some("Fail-over");
    let route = Route {
        name: "to-teams".into(),
        from: vec!["carrier".into()],
        called: None,
        to: vec![
            Destination::trunk("teams", None),
            Destination::trunk("gateway", label),
        ],
        forward: Some(Forward {
            to: Destination {
                trunk: "carrier".into(),
                target: Target::Number("+4915112345".into()),
                label: label.map(str::to_owned),
            },
            window: Duration::from_secs(30),
            ring_timeout: None,
        }),
    };
    let back = |name: &str| Route {
        name: format!("from-{name}"),
        from: vec![name.to_owned()],
        called: None,
        to: vec![Destination::trunk("carrier", None)],
        forward: None,
    };
    Config {
        trunks: vec![carrier, teams, gateway],
        routes: Table {
            routes: vec![route, back("teams"), back("gateway")],
        },
        agent: "sbc-sim/1".into(),
        timers: TimerConfig::default(),
        seed: 14,
        session_expires: 1800,
        supported: "timer, replaces".into(),
        phones: None,
        mask_numbers: true,
        protect: b2bua::Protect::default(),
    }
}

/// A fault drawn for a peer: mostly up, sometimes dead, silent or shedding.
fn fault(rng: &mut Rng) -> Fault {
    match rng.next_u64() % 10 {
        0 => Fault::Dead,
        1 => Fault::Silent,
        2 => Fault::Refuse {
            code: 503,
            retry_after: Some(1 + (rng.next_u64() % 30) as u32),
        },
        _ => Fault::Up,
    }
}

/// How the callees answer in a round: mostly after a short ring,
/// sometimes a rejection.
fn answer(rng: &mut Rng) -> Answer {
    match rng.next_u64() % 8 {
        0 => Answer::reject([486, 603, 480, 404][(rng.next_u64() % 4) as usize]),
        _ => Answer::after(rng.up_to(Duration::from_secs(3))),
    }
}

#[derive(Debug, Clone, Copy)]
enum Act {
    /// The carrier's call `i` cancels (if still unanswered).
    Cancel(usize),
    /// The carrier hangs up its call `i`.
    CallerBye(usize),
    /// Some callee hangs up one of its answered calls.
    CalleeBye,
    /// A Teams proxy transfers one of its answered calls to the carrier.
    Refer,
}

struct Site {
    w: World,
    carrier: NodeId,
    callees: Vec<NodeId>,
    teams: [NodeId; 3],
    gateway: NodeId,
}

fn site() -> Site {
    let mut w = World::new(
        config(),
        &[(Transport::Udp, SBC_UDP), (Transport::Tls, SBC_TLS)],
        NetConfig::default(),
        14,
    );
    w.open = false;
    let now = Answer::after(Duration::ZERO);
    let plain = |w: &mut World, name: &str, addr: &str| {
        let ip = addr.split(':').next().unwrap();
        w.add_ua(
            name,
            addr,
            Transport::Udp,
            UaConfig {
                agent: format!("{name} (sim)"),
                answer: now,
                sdp: rtp(ip, 30000, "sendrecv"),
                headers: Vec::new(),
                contact: format!("sip:{name}@{addr}"),
                credentials: None,
            },
        )
    };
    let carrier = plain(&mut w, "carrier", CARRIER);
    let gateway = plain(&mut w, "gateway", GATEWAY);
    let teams = [0, 1, 2].map(|i| {
        let ip = TEAMS[i].split(':').next().unwrap();
        let n = w.add_ua(
            HOSTS[i],
            TEAMS[i],
            Transport::Tls,
            UaConfig {
                agent: "Microsoft.PSTNHub.SIPProxy (sim)".into(),
                answer: now,
                sdp: srtp(ip, 49152, KEY1, "sendrecv"),
                headers: Vec::new(),
                contact: format!("sip:api-{i}.pstnhub.microsoft.com:443;x-i=0a1b"),
                credentials: None,
            },
        );
        w.set_tls_names(n, &["sip.pstnhub.microsoft.com"]);
        n
    });
    w.settle();
    let mut callees = teams.to_vec();
    callees.push(gateway);
    callees.push(carrier); // forwarded and transferred calls reach the carrier
    Site {
        w,
        carrier,
        callees,
        teams,
        gateway,
    }
}

/// The answered, not yet ended calls `node` received: (index).
fn live_incoming(w: &World, node: NodeId) -> Vec<usize> {
    w.ua(node)
        .incoming
        .iter()
        .enumerate()
        .filter(|(_, c)| c.answered.is_some() && c.acked && !c.ended && !c.cancelled)
        .map(|(i, _)| i)
        .collect()
}

#[test]
fn ten_thousand_calls_with_faults_leave_nothing_behind() {
    let started = std::time::Instant::now();
    let mut s = site();
    let mut rng = Rng::new(0x1eaf);
    let mut placed = 0;
    let (mut cancels, mut refers, mut callee_byes) = (0, 0, 0);
    while placed < CALLS {
        // Faults and network for this round.
        for n in s.teams.into_iter().chain([s.gateway]) {
            if rng.chance(0.2) {
                let f = fault(&mut rng);
                s.w.set_fault(n, f);
            }
            let a = answer(&mut rng);
            s.w.set_answer(n, a);
        }
        let a = answer(&mut rng);
        s.w.set_answer(s.carrier, a);
        if rng.chance(0.3) {
            let loss = 0.02 + rng.unit() * 0.03;
            s.w.set_net(NetConfig::lossy(loss));
        } else if rng.chance(0.3) {
            s.w.set_net(NetConfig::default());
        }
        // The round's calls and what happens to them, in time order.
        let mut plan: Vec<(Duration, Act)> = Vec::new();
        for _ in 0..PER_ROUND.min(CALLS - placed) {
            let i = s.w.call(s.carrier, CALLED, CALLER);
            placed += 1;
            let at = rng.up_to(Duration::from_secs(20));
            let act = match rng.next_u64() % 10 {
                0 | 1 => Act::Cancel(i),
                2..=4 => Act::CalleeBye,
                5 => Act::Refer,
                _ => Act::CallerBye(i),
            };
            // Cancels come early, while the call may still ring.
            let at = match act {
                Act::Cancel(_) => at / 8,
                _ => at,
            };
            plan.push((at, act));
        }
        plan.sort_by_key(|(at, _)| *at);
        let start = s.w.elapsed();
        for (at, act) in plan {
            let now = s.w.elapsed() - start;
            if at > now {
                s.w.advance(at - now);
            }
            match act {
                Act::Cancel(i) => cancels += usize::from(s.w.cancel(s.carrier, i)),
                Act::CallerBye(i) => {
                    s.w.hang_up(s.carrier, i);
                }
                Act::CalleeBye => {
                    let n = s.callees[(rng.next_u64() % s.callees.len() as u64) as usize];
                    if let Some(&i) = live_incoming(&s.w, n).last() {
                        callee_byes += usize::from(s.w.hang_up_incoming(n, i));
                    }
                }
                Act::Refer => {
                    let n = s.teams[(rng.next_u64() % 3) as usize];
                    if let Some(&i) = live_incoming(&s.w, n).last() {
                        refers += usize::from(s.w.refer(n, i, "sip:+4989555123@sbc.contoso.com"));
                    }
                }
            }
        }
        // What the world recorded is not needed any more.
        s.w.packets.clear();
        s.w.log.clear();
        s.w.out.clear();
        for n in s.teams.into_iter().chain([s.gateway]) {
            s.w.take_kept(n);
        }
    }

    // Everybody hangs up what is still up, on a clean network, every peer
    // back; the SBC drains (its OPTIONS stop) and the world runs on.
    s.w.set_net(NetConfig::default());
    for n in s.teams.into_iter().chain([s.gateway]) {
        s.w.set_fault(n, Fault::Up);
    }
    for i in 0..s.w.ua(s.carrier).outgoing.len() {
        if !s.w.cancel(s.carrier, i) {
            s.w.hang_up(s.carrier, i);
        }
    }
    for n in s.callees.clone() {
        for i in live_incoming(&s.w, n) {
            s.w.hang_up_incoming(n, i);
        }
    }
    s.w.b.drain();
    s.w.advance(Duration::from_secs(300));

    let b = &s.w.b;
    let c = b.counters();
    eprintln!(
        "{placed} calls in {:?} virtual, {:?} real: {c:?}; cancels {cancels}, callee BYEs {callee_byes}, REFERs {refers}",
        s.w.elapsed(),
        started.elapsed()
    );
    assert_eq!(b.active_calls(), 0, "calls left: {:?}", b.occupancy());
    assert_eq!(
        b.pending_invites(),
        0,
        "pending INVITEs: {:?}",
        b.occupancy()
    );
    assert_eq!(
        b.transactions(),
        0,
        "transactions left: {:?}",
        b.occupancy()
    );
    assert_eq!(b.occupancy(), Occupancy::default(), "tables not empty");
    let media = s.w.media();
    let made: BTreeSet<u64> = media.creates.iter().map(|c| c.2.id).collect();
    let deleted: BTreeSet<u64> = media.deletes.iter().copied().collect();
    assert_eq!(
        media.deletes.len(),
        deleted.len(),
        "a session deleted twice"
    );
    assert_eq!(made, deleted, "sessions never deleted (or deleted unmade)");
    drop(media);
    assert_eq!(s.w.cdrs().len() as u64, c.calls, "one CDR per call");
    // The mix did happen.
    assert!(c.calls >= CALLS as u64, "{c:?}");
    assert!(
        c.answered > 1000 && c.failed > 100 && c.failovers > 100,
        "{c:?}"
    );
    assert!(
        cancels > 100 && callee_byes > 500 && refers > 50,
        "cancels {cancels}, callee BYEs {callee_byes}, REFERs {refers}"
    );
    assert!(c.transfers > 10, "{c:?}");
}
