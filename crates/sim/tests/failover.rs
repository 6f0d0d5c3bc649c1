//! Failover of the whole call core in the simulated world, deterministic
//! and in virtual time: a carrier user agent calls through the real B2BUA
//! toward Teams (sip, sip2, sip3), ACS, an on-premises gateway and, as the
//! last resort, an external number back through the carrier; the faults
//! (dead host, silent host, 503 with Retry-After, a lossy network) are the
//! world's. Each test measures the setup time of the next call — what
//! docs/failover.md promises — not only that it succeeded.

use std::time::Duration;

use b2bua::{Cdr, Config};
use routing::regex::Regex;
use routing::{Destination, Forward, Normaliser, NumberRule, Route, Table, Target};
use sim::peer::Fault;
use sim::world::{rtp, srtp, Answer, UaConfig, KEY1};
use sim::{NetConfig, NodeId, World};
use transaction::{TimerConfig, Transport};
use trunk::{PeerSpec, TrunkKind, TrunkSpec};

const SBC_UDP: &str = "192.0.2.1:5060";
const SBC_TLS: &str = "192.0.2.1:5061";
const CARRIER: &str = "192.0.2.10:5060";
const GATEWAY: &str = "192.0.2.30:5060";
const TEAMS: [&str; 3] = ["52.112.1.1:5061", "52.112.1.2:5061", "52.112.1.3:5061"];
const ACS: [&str; 3] = ["52.112.2.1:5061", "52.112.2.2:5061", "52.112.2.3:5061"];
const HOSTS: [&str; 3] = [
    "sip.pstnhub.microsoft.com",
    "sip2.pstnhub.microsoft.com",
    "sip3.pstnhub.microsoft.com",
];
const EXTERNAL: &str = "+4915112345";
/// The called number as the carrier dials it, and the caller.
const CALLED: &str = "sip:030123456@192.0.2.1:5060";
const CALLER: &str = "0891234567";

fn peer(addr: &str, transport: Transport) -> PeerSpec {
    let a: std::net::SocketAddr = addr.parse().unwrap();
    PeerSpec {
        host: a.ip().to_string(),
        port: a.port(),
        transport,
        addr: Some(a),
    }
}

fn rule(pattern: &str, replace: &str) -> NumberRule {
    NumberRule {
        pattern: Regex::new(pattern).unwrap(),
        replace: replace.to_owned(),
        applies: routing::Applies::Both,
    }
}

/// carrier → [Teams, ACS "Fail-over", gateway "Fail-over"], forward to
/// the external number through the carrier after `window`.
fn config(window: Duration) -> Config {
    let mut carrier = TrunkSpec::new("carrier", TrunkKind::Carrier, "sbc.carrier.example");
    carrier.peers = vec![peer(CARRIER, Transport::Udp)];
    carrier.numbers_in = Normaliser {
        rules: vec![rule(r"^0([1-9]\d+)$", "+49$1")],
    };
    let mut teams = TrunkSpec::new("teams", TrunkKind::Teams, "sbc.contoso.com");
    for (p, a) in teams.peers.iter_mut().zip(TEAMS) {
        p.addr = Some(a.parse().unwrap());
    }
    let mut acs = TrunkSpec::new("acs", TrunkKind::Acs, "acs.contoso.com");
    for (p, a) in acs.peers.iter_mut().zip(ACS) {
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
            Destination::trunk("acs", label),
            Destination::trunk("gateway", label),
        ],
        forward: Some(Forward {
            to: Destination {
                trunk: "carrier".into(),
                target: Target::Number(EXTERNAL.into()),
                label: label.map(str::to_owned),
            },
            window,
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
        trunks: vec![carrier, teams, acs, gateway],
        routes: Table {
            routes: vec![route, back("teams"), back("acs"), back("gateway")],
        },
        agent: "sbc-sim/1".into(),
        timers: TimerConfig::default(),
        seed: 7,
        session_expires: 1800,
        supported: "timer, replaces".into(),
        phones: None,
        mask_numbers: true,
        protect: b2bua::Protect::default(),
    }
}

struct Site {
    w: World,
    carrier: NodeId,
    teams: [NodeId; 3],
    acs: [NodeId; 3],
    gateway: NodeId,
}

fn microsoft(w: &mut World, name: &str, addr: &str, answer: Answer) -> NodeId {
    let ip = addr.split(':').next().unwrap_or("52.113.1.1");
    let n = w.add_ua(
        name,
        addr,
        Transport::Tls,
        UaConfig {
            agent: "Microsoft.PSTNHub.SIPProxy (sim)".into(),
            answer,
            sdp: srtp(ip, 49152, KEY1, "sendrecv"),
            headers: Vec::new(),
            contact: "sip:api-du-a-euwe.pstnhub.microsoft.com:443;x-i=0a1b".into(),
            credentials: None,
        },
    );
    w.set_tls_names(n, &["sip.pstnhub.microsoft.com"]);
    n
}

fn plain(w: &mut World, name: &str, addr: &str, answer: Answer) -> NodeId {
    let ip = addr.split(':').next().unwrap_or("192.0.2.99");
    w.add_ua(
        name,
        addr,
        Transport::Udp,
        UaConfig {
            agent: format!("{name} (sim)"),
            answer,
            sdp: rtp(ip, 30000, "sendrecv"),
            headers: Vec::new(),
            contact: format!("sip:{name}@{addr}"),
            credentials: None,
        },
    )
}

/// Everybody answers at once (180 and 200 with no delay), on `net`.
fn site(net: NetConfig, seed: u64, window: Duration) -> Site {
    let mut w = World::new(
        config(window),
        &[(Transport::Udp, SBC_UDP), (Transport::Tls, SBC_TLS)],
        net,
        seed,
    );
    w.open = false;
    let now = Answer::after(Duration::ZERO);
    let carrier = plain(&mut w, "carrier", CARRIER, now);
    let teams = [0, 1, 2].map(|i| microsoft(&mut w, HOSTS[i], TEAMS[i], now));
    let acs = [0, 1, 2].map(|i| microsoft(&mut w, &format!("acs-{}", HOSTS[i]), ACS[i], now));
    let gateway = plain(&mut w, "gateway", GATEWAY, now);
    w.settle();
    Site {
        w,
        carrier,
        teams,
        acs,
        gateway,
    }
}

/// The clean network: 10 ms one way.
fn clean() -> Site {
    site(NetConfig::default(), 1, Duration::from_secs(30))
}

/// The carrier places a call and the world runs until its final response
/// (40 s at most); returns the call's index.
fn place(s: &mut Site) -> usize {
    let i = s.w.call(s.carrier, CALLED, CALLER);
    let carrier = s.carrier;
    let done = s.w.run_until(Duration::from_secs(40), |w| {
        w.ua(carrier).outgoing[i].status.is_some()
    });
    assert!(done, "the call got no final response in 40 s");
    i
}

/// Setup time of the carrier's call `i`: INVITE to 200 OK, in ms.
fn setup_ms(s: &Site, i: usize) -> u128 {
    let c = &s.w.ua(s.carrier).outgoing[i];
    assert_eq!(c.status, Some(200), "call {i} answered: {:?}", c.responses);
    c.setup().map(|d| d.as_millis()).unwrap_or(u128::MAX)
}

/// Calls `node` received so far.
fn got(s: &Site, node: NodeId) -> usize {
    s.w.ua(node).incoming.len()
}

/// The From display name of the last INVITE `node` received.
fn label(s: &Site, node: NodeId) -> Option<String> {
    let inc = s.w.ua(node).incoming.last()?;
    let from = inc.invite.from().ok()?;
    from.display_name
        .map(|d| String::from_utf8_lossy(d).trim_matches('"').to_owned())
}

/// Hangs up every answered carrier call and lets the BYEs complete.
fn hang_up_all(s: &mut Site) {
    for i in 0..s.w.ua(s.carrier).outgoing.len() {
        s.w.hang_up(s.carrier, i);
    }
    s.w.advance(Duration::from_secs(1));
}

fn last_cdr(s: &Site) -> Cdr {
    s.w.cdrs().pop().expect("a CDR")
}

/// Normal setup on the clean network: four one-way trips (carrier → SBC →
/// Microsoft → SBC → carrier), every neighbour answering at once.
const NORMAL_MS: u128 = 40;

#[test]
fn healthy_call_reaches_sip_in_normal_setup_time() {
    let mut s = clean();
    let i = place(&mut s);
    assert_eq!(setup_ms(&s, i), NORMAL_MS);
    assert_eq!(got(&s, s.teams[0]), 1);
    assert_eq!(label(&s, s.teams[0]), None, "no label on the primary path");
    hang_up_all(&mut s);
    assert_eq!(s.w.b.active_calls(), 0);
    let cdr = last_cdr(&s);
    assert_eq!(cdr.attempts.len(), 1);
    assert_eq!(cdr.attempts[0].peer, HOSTS[0]);
}

#[test]
fn dead_sip_costs_one_round_trip_then_nothing() {
    let mut s = clean();
    s.w.set_fault(s.teams[0], Fault::Dead);
    // The connection is refused after one round trip (20 ms): sip2 at once.
    let i = place(&mut s);
    assert_eq!(setup_ms(&s, i), NORMAL_MS + 20);
    assert_eq!(got(&s, s.teams[1]), 1);
    assert!(s.w.b.peer_states(1)[0].is_down(), "sip is down");
    // Known down: the next call does not try it at all.
    let j = place(&mut s);
    assert_eq!(setup_ms(&s, j), NORMAL_MS);
    assert_eq!(last_cdr_attempts(&mut s), vec![HOSTS[1].to_owned()]);
}

fn last_cdr_attempts(s: &mut Site) -> Vec<String> {
    hang_up_all(s);
    last_cdr(s)
        .attempts
        .iter()
        .map(|a| a.peer.clone())
        .collect()
}

#[test]
fn refusing_sip_is_held_down_for_its_retry_after() {
    let mut s = clean();
    s.w.set_fault(
        s.teams[0],
        Fault::Refuse {
            code: 503,
            retry_after: Some(30),
        },
    );
    let i = place(&mut s);
    // 503 comes back after one round trip; sip2 answers.
    assert_eq!(setup_ms(&s, i), NORMAL_MS + 20);
    assert_eq!(s.w.refused(s.teams[0]), 1);
    assert_eq!(got(&s, s.teams[1]), 1);
    s.w.set_fault(s.teams[0], Fault::Up);
    // Held down for Retry-After although it answers OPTIONS again.
    s.w.advance(Duration::from_secs(20));
    let j = place(&mut s);
    assert_eq!(setup_ms(&s, j), NORMAL_MS);
    assert_eq!(got(&s, s.teams[0]), 0, "sip not tried while held down");
    // After Retry-After and the OPTIONS that follow: sip again.
    s.w.advance(Duration::from_secs(75));
    place(&mut s);
    assert_eq!(got(&s, s.teams[0]), 1, "sip back after Retry-After");
}

#[test]
fn silent_sip_costs_its_attempt_timer_once() {
    let mut s = clean();
    s.w.set_fault(s.teams[0], Fault::Silent);
    let i = place(&mut s);
    // The 2 s per-attempt timer of a Microsoft trunk, then sip2.
    let first = setup_ms(&s, i);
    assert!(
        (2000..=2000 + NORMAL_MS + 10).contains(&first),
        "first call into a silent sip: {first} ms"
    );
    assert!(
        s.w.b.peer_states(1)[0].is_down(),
        "a timed-out attempt marks sip down"
    );
    let j = place(&mut s);
    assert_eq!(setup_ms(&s, j), NORMAL_MS, "sip known down: no delay");
}

#[test]
fn late_200_from_an_abandoned_attempt_is_acked_and_ended() {
    let mut s = clean();
    s.w.set_fault(s.teams[0], Fault::Silent);
    let i = place(&mut s);
    assert_eq!(got(&s, s.teams[1]), 1, "sip2 answered");
    // sip wakes up (SIGCONT) and answers the INVITE it had ignored.
    s.w.set_fault(s.teams[0], Fault::Up);
    let kept = s.w.take_kept(s.teams[0]);
    assert_eq!(kept.len(), 1, "sip kept the INVITE it ignored");
    let invite = &kept[0].msg;
    let ok = {
        let mut r = transaction::response_to(invite, 200, "OK", Some("late")).unwrap();
        r.push_header(
            "Contact",
            b"<sip:api-du-a-euwe.pstnhub.microsoft.com:443;x-i=late>",
        )
        .unwrap();
        r.set_body(
            Some("application/sdp"),
            srtp("52.112.1.1", 49152, KEY1, "sendrecv").as_bytes(),
        )
        .unwrap();
        r
    };
    let sip = s.teams[0];
    let before = s.w.log.len();
    s.w.node_sends(sip, &ok);
    s.w.advance(Duration::from_millis(100));
    let after: Vec<String> = s.w.log[before..]
        .iter()
        .filter(|m| m.to.addr == s.w.addr_of(sip))
        .map(|m| sim::world::first_line(&m.msg))
        .collect();
    assert!(
        after.iter().any(|l| l.starts_with("ACK ")),
        "late 200 ACKed: {after:?}"
    );
    assert!(
        after.iter().any(|l| l.starts_with("BYE ")),
        "and ended: {after:?}"
    );
    assert_eq!(s.w.b.counters().late_answers, 1);
    assert_eq!(s.w.b.active_calls(), 1, "only the real call, no ghost");
    let c = &s.w.ua(s.carrier).outgoing[i];
    assert_eq!(c.status, Some(200));
    hang_up_all(&mut s);
    assert_eq!(s.w.b.active_calls(), 0);
}

#[test]
fn whole_teams_down_goes_to_acs_labelled_then_back() {
    let mut s = clean();
    for n in s.teams {
        s.w.set_fault(n, Fault::Dead);
    }
    let i = place(&mut s);
    // Three refused connections, one after another: 3 × 20 ms.
    assert_eq!(setup_ms(&s, i), NORMAL_MS + 60);
    assert_eq!(got(&s, s.acs[0]), 1);
    assert_eq!(label(&s, s.acs[0]).as_deref(), Some("Fail-over"));
    // Teams known down: ACS at once.
    let j = place(&mut s);
    assert_eq!(setup_ms(&s, j), NORMAL_MS);
    // Teams comes back: the OPTIONS bring it up, calls go there again.
    for n in s.teams {
        s.w.set_fault(n, Fault::Up);
    }
    let teams = s.teams[0];
    let back = s.w.run_until(Duration::from_secs(200), |w| {
        w.health_changes()
            .iter()
            .any(|(t, h, up)| t == "teams" && h == HOSTS[0] && *up)
    });
    assert!(back, "sip reported up again");
    place(&mut s);
    assert_eq!(got(&s, teams), 1, "back on Teams");
    assert_eq!(label(&s, teams), None, "no label on the primary path");
}

#[test]
fn teams_and_acs_down_reaches_the_gateway_with_plain_rtp() {
    let mut s = clean();
    for n in s.teams.into_iter().chain(s.acs) {
        s.w.set_fault(n, Fault::Dead);
    }
    let i = place(&mut s);
    assert_eq!(setup_ms(&s, i), NORMAL_MS + 120);
    assert_eq!(got(&s, s.gateway), 1);
    assert_eq!(label(&s, s.gateway).as_deref(), Some("Fail-over"));
    let offer = String::from_utf8_lossy(s.w.ua(s.gateway).incoming[0].invite.body()).into_owned();
    assert!(
        offer.contains("RTP/AVP"),
        "plain RTP toward the gateway:\n{offer}"
    );
    assert!(!offer.contains("a=crypto"), "{offer}");
    assert!(!offer.contains("a=rtcp-mux"), "{offer}");
}

#[test]
fn everything_down_forwards_to_the_external_number_at_once() {
    let mut s = clean();
    for n in s.teams.into_iter().chain(s.acs) {
        s.w.set_fault(n, Fault::Dead);
    }
    // The gateway is gone too; its host answers with ICMP.
    s.w.set_fault(s.gateway, Fault::Dead);
    let i = place(&mut s);
    // Seven failed attempts (20 ms each), then the forward's INVITE to
    // the carrier and its answer.
    assert_eq!(setup_ms(&s, i), NORMAL_MS + 140);
    let fwd =
        s.w.ua(s.carrier)
            .incoming
            .last()
            .expect("the carrier got the forward");
    let ruri =
        String::from_utf8_lossy(fwd.invite.request_uri_raw().unwrap_or_default()).into_owned();
    assert!(
        ruri.contains(&EXTERNAL[1..]),
        "to the external number: {ruri}"
    );
    let diversion = fwd
        .invite
        .header_by_name("Diversion")
        .map(|v| String::from_utf8_lossy(v).into_owned());
    assert!(
        diversion
            .as_deref()
            .is_some_and(|d| d.contains("4930123456")),
        "Diversion with the originally called number: {diversion:?}"
    );
    assert_eq!(s.w.b.counters().forwarded, 1);
}

#[test]
fn forward_window_fires_on_time_when_everyone_is_silent() {
    let mut s = site(NetConfig::default(), 1, Duration::from_secs(3));
    for n in s.teams.into_iter().chain(s.acs) {
        s.w.set_fault(n, Fault::Silent);
    }
    s.w.set_fault(s.gateway, Fault::Silent);
    let i = place(&mut s);
    let setup = setup_ms(&s, i);
    assert!(
        (3000..=3000 + NORMAL_MS).contains(&setup),
        "forward at the 3 s window: {setup} ms"
    );
    assert_eq!(s.w.b.counters().forwarded, 1);
}

#[test]
fn calls_complete_on_a_lossy_network_for_every_seed() {
    // 5 % of UDP lost, 10–30 ms one way, duplicates and reordering on the
    // carrier side; TLS toward Microsoft is reliable. Twenty seeds, ten
    // calls each, every one answered and ended with nothing left behind.
    let mut worst = 0;
    for seed in 1..=20 {
        let mut s = site(NetConfig::lossy(0.05), seed, Duration::from_secs(30));
        for _ in 0..10 {
            let i = place(&mut s);
            worst = worst.max(setup_ms(&s, i));
        }
        hang_up_all(&mut s);
        s.w.advance(Duration::from_secs(40));
        assert_eq!(s.w.b.active_calls(), 0, "seed {seed}: calls left");
        let byes =
            s.w.ua(s.carrier)
                .outgoing
                .iter()
                .filter(|c| c.bye_status == Some(200))
                .count();
        assert_eq!(byes, 10, "seed {seed}: every BYE answered");
    }
    // Retransmissions recover a lost INVITE or 200 within Timer A/T1 steps.
    assert!(worst < 4_000, "worst setup {worst} ms");
    println!("lossy: worst setup {worst} ms");
}

// Live reload (`sbc reload`, SIGHUP): the next call follows the new
// configuration, calls in progress keep their trunks and media.

/// The site's configuration as a reload gives it.
fn reconfig(cfg: Config) -> b2bua::Reconfig {
    b2bua::Reconfig {
        trunks: cfg.trunks,
        routes: cfg.routes,
        users: None,
    }
}

/// Call `i` of the carrier is still up at both ends and its media session
/// was never deleted.
fn still_up(s: &Site, i: usize, far: NodeId) {
    let c = &s.w.ua(s.carrier).outgoing[i];
    assert!(!c.ended, "call {i} still up at the carrier");
    assert!(
        s.w.ua(far).incoming.iter().any(|x| x.acked && !x.ended),
        "call {i} still up at the far end"
    );
    assert!(s.w.media().deletes.is_empty(), "no media session deleted");
}

#[test]
fn reloaded_routes_take_the_next_call_and_the_first_stays_up() {
    let mut s = clean();
    let first = place(&mut s);
    assert_eq!(got(&s, s.teams[0]), 1);
    // The route now goes to the gateway first.
    let mut cfg = config(Duration::from_secs(30));
    cfg.routes.routes[0].to = vec![Destination::trunk("gateway", None)];
    let done = s.w.b.reconfigure(s.w.now, reconfig(cfg)).unwrap();
    assert!(done.added.is_empty() && done.retired.is_empty(), "{done:?}");
    let next = place(&mut s);
    assert_eq!(setup_ms(&s, next), NORMAL_MS);
    assert_eq!(got(&s, s.gateway), 1, "the next call took the new route");
    assert_eq!(got(&s, s.teams[0]), 1, "and not the old one");
    s.w.advance(Duration::from_secs(60));
    still_up(&s, first, s.teams[0]);
    // The first call ends normally, through Teams.
    assert!(s.w.hang_up(s.carrier, first));
    s.w.advance(Duration::from_secs(1));
    assert_eq!(s.w.ua(s.carrier).outgoing[first].bye_status, Some(200));
    assert!(s.w.ua(s.teams[0]).incoming[0].ended);
    let cdr =
        s.w.cdrs()
            .into_iter()
            .find(|c| c.to_trunk.as_deref() == Some("teams"));
    assert!(cdr.is_some(), "the first call's CDR names Teams");
}

#[test]
fn a_changed_trunk_takes_new_calls_and_old_calls_keep_the_old_one() {
    let mut s = clean();
    let first = place(&mut s);
    // Teams' sip moves to another address (and the trunk's headers change).
    let moved = "52.112.1.9:5061";
    let new_sip = microsoft(&mut s.w, "new-sip", moved, Answer::after(Duration::ZERO));
    s.w.settle();
    let mut cfg = config(Duration::from_secs(30));
    cfg.trunks[1].peers[0].addr = Some(moved.parse().unwrap());
    cfg.trunks[1].headers.x_ms_sbc = Some("sbc/2 reloaded".into());
    let done = s.w.b.reconfigure(s.w.now, reconfig(cfg)).unwrap();
    assert_eq!(done.retired, vec![1], "the old Teams slot is retired");
    assert_eq!(done.added, vec![4], "the new Teams trunk has a new slot");
    assert_eq!(done.slots, vec![0, 4, 2, 3]);
    assert!(!s.w.b.is_live(1) && s.w.b.is_live(4));
    let next = place(&mut s);
    assert_eq!(setup_ms(&s, next), NORMAL_MS);
    assert_eq!(got(&s, new_sip), 1, "the next call reached the new sip");
    let inv = &s.w.ua(new_sip).incoming[0].invite;
    assert_eq!(inv.header_by_name("X-MS-SBC"), Some(&b"sbc/2 reloaded"[..]));
    assert_eq!(got(&s, s.teams[0]), 1, "the old sip got nothing new");
    s.w.advance(Duration::from_secs(120));
    still_up(&s, first, s.teams[0]);
    // The old peer's in-dialog BYE still reaches the caller: the call
    // kept its trunk (and its dialog) through the reload.
    assert!(s.w.hang_up_incoming(s.teams[0], 0));
    s.w.advance(Duration::from_secs(1));
    assert!(
        s.w.ua(s.carrier).outgoing[first].ended,
        "the carrier got the BYE"
    );
    assert_eq!(s.w.b.active_calls(), 1, "only the second call is left");
    // The retired slot sends no OPTIONS any more; the new one does.
    let before = s.w.options_answered(s.teams[0]);
    s.w.advance(Duration::from_secs(180));
    assert_eq!(
        s.w.options_answered(s.teams[0]),
        before,
        "no OPTIONS from the retired slot"
    );
    assert!(
        s.w.options_answered(new_sip) > 0,
        "the new trunk pings its sip"
    );
}

#[test]
fn a_removed_trunk_refuses_new_calls_but_its_call_goes_on() {
    let mut s = clean();
    s.w.set_fault(s.teams[0], Fault::Dead);
    s.w.set_fault(s.teams[1], Fault::Dead);
    s.w.set_fault(s.teams[2], Fault::Dead);
    s.w.set_fault(s.acs[0], Fault::Dead);
    s.w.set_fault(s.acs[1], Fault::Dead);
    s.w.set_fault(s.acs[2], Fault::Dead);
    let first = place(&mut s);
    assert_eq!(got(&s, s.gateway), 1, "the call failed over to the gateway");
    // The gateway trunk goes away.
    let mut cfg = config(Duration::from_secs(30));
    cfg.trunks.pop();
    cfg.routes.routes[0].to.pop();
    cfg.routes.routes.pop();
    let done = s.w.b.reconfigure(s.w.now, reconfig(cfg)).unwrap();
    assert_eq!(done.retired, vec![3]);
    // A new call from the gateway is refused (its source is no trunk's).
    let refused =
        s.w.call(s.gateway, "sip:+4930999@192.0.2.1:5060", "+4930111");
    let g = s.gateway;
    assert!(s
        .w
        .run_until(Duration::from_secs(5), |w| w.ua(g).outgoing[refused]
            .status
            .is_some()));
    assert_eq!(s.w.ua(g).outgoing[refused].status, Some(403));
    s.w.advance(Duration::from_secs(60));
    still_up(&s, first, s.gateway);
    assert!(s.w.hang_up(s.carrier, first));
    s.w.advance(Duration::from_secs(1));
    assert_eq!(s.w.ua(s.carrier).outgoing[first].bye_status, Some(200));
    assert!(s.w.ua(s.gateway).incoming[0].ended);
    assert_eq!(s.w.b.active_calls(), 0);
}

#[test]
fn an_unchanged_trunk_keeps_its_health_through_a_reload() {
    let mut s = clean();
    s.w.set_fault(s.teams[0], Fault::Dead);
    let i = place(&mut s);
    assert_eq!(setup_ms(&s, i), NORMAL_MS + 20);
    assert!(s.w.b.peer_states(1)[0].is_down());
    let mut cfg = config(Duration::from_secs(30));
    cfg.routes.routes[0].name = "to-teams-v2".into();
    let done = s.w.b.reconfigure(s.w.now, reconfig(cfg)).unwrap();
    assert_eq!(done.slots, vec![0, 1, 2, 3]);
    assert!(s.w.b.peer_states(1)[0].is_down(), "sip still known down");
    let j = place(&mut s);
    assert_eq!(setup_ms(&s, j), NORMAL_MS, "no new attempt on the dead sip");
    hang_up_all(&mut s);
    assert_eq!(last_cdr(&s).route.as_deref(), Some("to-teams-v2"));
}
