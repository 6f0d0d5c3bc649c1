//! Behaviour tests of the trunk crate: OPTIONS as Microsoft wants them, the
//! health machine, the peer order, inbound classification.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::Bytes;
use transaction::Transport;

use crate::*;

fn teams() -> TrunkSpec {
    let mut t = TrunkSpec::new("teams", TrunkKind::Teams, "sbc1.contoso.com");
    t.headers.x_ms_sbc = Some("sbc/Linux/0.1.0".into());
    t.headers.user_agent = "sbc/0.1.0".into();
    t
}

/// Parses what the SBC would put on the wire with the receiving side's
/// parser and policy.
fn wire(msg: &sip::Message) -> (String, sip::Message) {
    let bytes = msg.to_bytes();
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    match sip::inspect(Bytes::from(bytes.to_vec()), &sip::Policy::default()) {
        sip::Verdict::Accept(m) => (text, m),
        other => panic!("OPTIONS refused by the parser: {other:?}\n{text}"),
    }
}

/// The virtual clock's origin (any instant will do; tests never sleep).
#[allow(clippy::disallowed_methods)] // tests need some Instant to start from
fn start() -> Instant {
    Instant::now()
}

fn pings(h: &mut Health, now: Instant) -> Vec<Ping> {
    std::iter::from_fn(|| h.poll_ping(now)).collect()
}

fn header(m: &sip::Message, name: &str) -> String {
    String::from_utf8(m.header_by_name(name).unwrap_or_default().to_vec()).unwrap()
}

#[test]
fn options_carries_fqdn_contact_and_allow_with_refer() {
    let t0 = start();
    let mut h = Health::new(&teams(), 7, t0);
    let p = h.poll_ping(t0).unwrap();
    assert_eq!(p.peer, 0);
    let (text, m) = wire(&p.msg);
    assert!(
        text.starts_with("OPTIONS sip:sip.pstnhub.microsoft.com:5061;transport=tls SIP/2.0\r\n"),
        "{text}"
    );
    let names: Vec<String> = m
        .headers()
        .map(|h| String::from_utf8(h.name_raw.to_vec()).unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "Via",
            "Max-Forwards",
            "From",
            "To",
            "Call-ID",
            "CSeq",
            "Contact",
            "Allow",
            "X-MS-SBC",
            "User-Agent",
            "Content-Length"
        ]
    );
    let via = m.top_via().unwrap();
    assert_eq!(via.transport, "TLS");
    assert_eq!(via.host.to_string(), "sbc1.contoso.com");
    assert_eq!(via.port, Some(5061));
    assert!(via.has_rfc3261_branch());
    assert_eq!(m.max_forwards().unwrap(), Some(70));
    let from = m.from().unwrap();
    assert_eq!(from.uri_raw, b"sip:sbc1.contoso.com:5061");
    assert!(from.tag().is_some_and(|t| !t.is_empty()));
    let to = m.to().unwrap();
    assert_eq!(to.uri_raw, b"sip:sip.pstnhub.microsoft.com:5061");
    assert!(to.tag().is_none());
    assert!(m.call_id().unwrap().ends_with("@sbc1.contoso.com"));
    let cseq = m.cseq().unwrap();
    assert_eq!((cseq.seq, cseq.method), (1, "OPTIONS"));
    assert_eq!(
        header(&m, "Contact"),
        "<sip:sbc1.contoso.com:5061;transport=tls>"
    );
    assert_eq!(
        header(&m, "Allow"),
        "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, NOTIFY, REFER"
    );
    let allow: Vec<&str> = m
        .tokens(sip::HeaderName::Allow)
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(allow.contains(&"REFER"));
    assert_eq!(header(&m, "X-MS-SBC"), "sbc/Linux/0.1.0");
    assert_eq!(header(&m, "User-Agent"), "sbc/0.1.0");
    assert_eq!(m.content_length().unwrap(), Some(0));
    assert!(m.body().is_empty());
    // No IP anywhere the peer looks for our identity.
    for h in ["Via", "From", "Contact", "Call-ID"] {
        assert!(
            !header(&m, h).contains("127.0.0.1"),
            "{h}: {}",
            header(&m, h)
        );
    }
}

#[test]
fn options_goes_to_each_of_sip_sip2_sip3() {
    let t0 = start();
    let mut h = Health::new(&teams(), 7, t0);
    let ps = pings(&mut h, t0);
    let targets: Vec<(usize, String)> = ps
        .iter()
        .map(|p| {
            let (_, m) = wire(&p.msg);
            (
                p.peer,
                String::from_utf8(m.request_uri_raw().unwrap().to_vec()).unwrap(),
            )
        })
        .collect();
    assert_eq!(
        targets,
        [
            (
                0,
                "sip:sip.pstnhub.microsoft.com:5061;transport=tls".to_owned()
            ),
            (
                1,
                "sip:sip2.pstnhub.microsoft.com:5061;transport=tls".to_owned()
            ),
            (
                2,
                "sip:sip3.pstnhub.microsoft.com:5061;transport=tls".to_owned()
            ),
        ]
    );
}

#[test]
fn options_without_x_ms_sbc_when_policy_has_none() {
    let mut spec = TrunkSpec::new("carrier", TrunkKind::Carrier, "sbc.example.com");
    spec.options.enabled = true;
    spec.peers.push(PeerSpec {
        host: "carrier.example.net".into(),
        port: 5060,
        transport: Transport::Udp,
        addr: None,
    });
    let t0 = start();
    let mut h = Health::new(&spec, 1, t0);
    let (text, m) = wire(&h.poll_ping(t0).unwrap().msg);
    assert!(text.starts_with("OPTIONS sip:carrier.example.net:5060;transport=udp SIP/2.0\r\n"));
    assert!(m.header_by_name("X-MS-SBC").is_none());
    assert_eq!(m.top_via().unwrap().transport, "UDP");
    assert_eq!(
        header(&m, "Contact"),
        "<sip:sbc.example.com:5060;transport=udp>"
    );
}

#[test]
fn options_branch_tag_call_id_unique_per_ping_and_seed() {
    let t0 = start();
    let mut seen = std::collections::HashSet::new();
    let mut cseqs = Vec::new();
    for seed in [1, 2] {
        let mut h = Health::new(&teams(), seed, t0);
        for round in 0..3u32 {
            let now = t0 + Duration::from_secs(60) * round;
            for p in pings(&mut h, now) {
                let (_, m) = wire(&p.msg);
                assert!(seen.insert(m.top_via().unwrap().branch().unwrap().to_vec()));
                assert!(seen.insert(m.from().unwrap().tag().unwrap().to_vec()));
                assert!(seen.insert(m.call_id().unwrap().as_bytes().to_vec()));
                if seed == 1 {
                    cseqs.push(m.cseq().unwrap().seq);
                }
                h.on_response(now, p.peer, 200);
            }
        }
    }
    assert_eq!(cseqs, (1..=9).collect::<Vec<u32>>());
    // The same seed gives the same messages: runs are reproducible.
    let a = Health::new(&teams(), 5, t0).poll_ping(t0).unwrap().msg;
    let b = Health::new(&teams(), 5, t0).poll_ping(t0).unwrap().msg;
    assert_eq!(a.to_bytes(), b.to_bytes());
}

#[test]
fn ping_repeats_every_interval_and_wakeup_says_when() {
    let t0 = start();
    let mut h = Health::new(&teams(), 3, t0);
    assert_eq!(h.next_wakeup(), Some(t0));
    assert_eq!(pings(&mut h, t0).len(), 3);
    // In flight: the next thing to happen is the 32 s deadline.
    assert_eq!(h.next_wakeup(), Some(t0 + Duration::from_secs(32)));
    for p in 0..3 {
        h.on_response(t0, p, 200);
    }
    assert_eq!(h.next_wakeup(), Some(t0 + Duration::from_secs(60)));
    assert!(h.poll_ping(t0 + Duration::from_secs(59)).is_none());
    assert_eq!(pings(&mut h, t0 + Duration::from_secs(60)).len(), 3);
}

#[test]
fn no_second_ping_while_one_is_in_flight() {
    let mut spec = teams();
    spec.options.interval = Duration::from_secs(10);
    spec.options.timeout = Duration::from_secs(32);
    let t0 = start();
    let mut h = Health::new(&spec, 3, t0);
    assert_eq!(pings(&mut h, t0).len(), 3);
    assert!(h.poll_ping(t0 + Duration::from_secs(20)).is_none());
    h.on_response(t0, 0, 200);
    assert_eq!(h.poll_ping(t0 + Duration::from_secs(20)).unwrap().peer, 0);
}

#[test]
fn peer_down_after_timeout_and_up_after_two_successes() {
    let t0 = start();
    let mut h = Health::new(&teams(), 9, t0);
    assert_eq!(h.state(0), PeerState::Unknown);
    pings(&mut h, t0);
    h.on_response(t0, 1, 200);
    h.on_response(t0, 2, 200);
    // sip never answers: at the 32 s deadline it is down.
    let t32 = t0 + Duration::from_secs(32);
    assert!(h.poll_ping(t32).is_none());
    assert_eq!(h.state(0), PeerState::Down("timeout".into()));
    assert_eq!(
        h.poll_change(),
        Some(HealthChange {
            peer: 0,
            host: "sip.pstnhub.microsoft.com".into(),
            up: false,
            reason: "timeout".into()
        })
    );
    assert_eq!(h.poll_change(), None);
    // One success is not enough…
    let t60 = t0 + Duration::from_secs(60);
    for p in pings(&mut h, t60) {
        h.on_response(t60, p.peer, 200);
    }
    assert!(h.state(0).is_down());
    // …two in a row are; sip2 and sip3 are up by now too.
    let t120 = t0 + Duration::from_secs(120);
    for p in pings(&mut h, t120) {
        h.on_response(t120, p.peer, 200);
    }
    assert_eq!(h.state(0), PeerState::Up);
    let changes: Vec<HealthChange> = std::iter::from_fn(|| h.poll_change()).collect();
    assert_eq!(
        changes
            .iter()
            .map(|c| (c.peer, c.up, c.reason.as_str()))
            .collect::<Vec<_>>(),
        [
            (1, true, "200 x2"),
            (2, true, "200 x2"),
            (0, true, "200 x2")
        ]
    );
}

#[test]
fn transaction_timeout_of_ping_marks_down_once() {
    let mut spec = teams();
    spec.options.down_after = 2;
    let t0 = start();
    let mut h = Health::new(&spec, 9, t0);
    pings(&mut h, t0);
    // Timer F fires in the transaction layer; the health deadline passes too.
    h.on_failure(t0 + Duration::from_secs(32), 0, Failure::Timeout);
    assert!(h.poll_ping(t0 + Duration::from_secs(33)).is_none());
    // Counted once: down_after = 2 is not reached.
    assert_eq!(h.state(0), PeerState::Unknown);
}

#[test]
fn late_response_after_timeout_is_ignored() {
    let t0 = start();
    let mut h = Health::new(&teams(), 9, t0);
    pings(&mut h, t0);
    h.poll_ping(t0 + Duration::from_secs(32));
    assert!(h.state(0).is_down());
    h.on_response(t0 + Duration::from_secs(33), 0, 200);
    h.on_response(t0 + Duration::from_secs(34), 0, 200);
    assert!(h.state(0).is_down());
}

#[test]
fn failure_code_marks_down_other_codes_alive() {
    let mut spec = teams();
    spec.options.failure_codes = vec![503];
    spec.options.up_after = 1;
    let t0 = start();
    let mut h = Health::new(&spec, 9, t0);
    pings(&mut h, t0);
    h.on_response(t0, 0, 503);
    h.on_response(t0, 1, 404); // an answer: the proxy is alive
    h.on_response(t0, 2, 100); // provisional: still waiting
    assert_eq!(h.state(0), PeerState::Down("503".into()));
    assert_eq!(h.state(1), PeerState::Up);
    assert_eq!(h.state(2), PeerState::Unknown);
    h.on_response(t0, 2, 200);
    assert_eq!(h.state(2), PeerState::Up);
}

#[test]
fn a_ping_lost_with_its_connection_is_sent_again_at_once_and_counts_only_when_lost_twice() {
    let mut spec = teams();
    spec.options.interval = Duration::from_secs(60);
    let t0 = start();
    let mut h = Health::new(&spec, 9, t0);
    let answer = |h: &mut Health, now: Instant, ps: &[Ping], except: usize| {
        for p in ps.iter().filter(|p| p.peer != except) {
            h.on_response(now, p.peer, 200);
        }
    };
    let ps = pings(&mut h, t0);
    answer(&mut h, t0, &ps, usize::MAX);
    assert_eq!(h.state(0), PeerState::Unknown, "up_after = 2");
    // sip restarts with the next ping in flight: no verdict, pinged again
    // at once (not in 60 s), on a new connection.
    let t1 = t0 + Duration::from_secs(60);
    let ps = pings(&mut h, t1);
    assert_eq!(ps.len(), 3);
    answer(&mut h, t1, &ps, 0);
    h.on_ping_lost(t1, 0);
    assert_eq!(h.state(0), PeerState::Unknown);
    assert!(std::iter::from_fn(|| h.poll_change()).all(|c| c.peer != 0));
    assert_eq!(h.next_wakeup(), Some(t1));
    let again = pings(&mut h, t1);
    assert_eq!(again.iter().map(|p| p.peer).collect::<Vec<_>>(), [0]);
    // The restarted proxy answers: it counts as any success.
    h.on_response(t1, 0, 200);
    assert_eq!(h.state(0), PeerState::Up);
    // A peer that drops every connection: the second loss in a row is a
    // failure (down_after = 1), and the pings keep their interval.
    let t2 = t1 + Duration::from_secs(60);
    let ps = pings(&mut h, t2);
    answer(&mut h, t2, &ps, 0);
    h.on_ping_lost(t2, 0);
    assert_eq!(pings(&mut h, t2).len(), 1);
    h.on_ping_lost(t2, 0);
    assert_eq!(h.state(0), PeerState::Down("transport failure".into()));
    assert!(h.poll_ping(t2).is_none(), "no ping loop");
    // Nothing in flight: nothing to lose.
    h.on_ping_lost(t2, 1);
    assert_eq!(h.state(1), PeerState::Up);
}

#[test]
fn tls_failure_marks_down_even_without_ping() {
    let mut spec = teams();
    spec.options.enabled = false;
    let t0 = start();
    let mut h = Health::new(&spec, 9, t0);
    h.on_failure(t0, 1, Failure::Tls);
    assert_eq!(h.state(1), PeerState::Down("TLS failure".into()));
    // A call's transaction timing out is not a health verdict.
    h.on_failure(t0, 2, Failure::Timeout);
    assert_eq!(h.state(2), PeerState::Unknown);
    assert_eq!(h.order(), vec![0, 2, 1]);
}

#[test]
fn options_disabled_sends_nothing_and_all_peers_usable() {
    let mut spec = teams();
    spec.options.enabled = false;
    let t0 = start();
    let mut h = Health::new(&spec, 9, t0);
    assert!(h.poll_ping(t0).is_none());
    assert_eq!(h.next_wakeup(), None);
    assert_eq!(h.order(), vec![0, 1, 2]);
    assert!(h.any_usable());
}

#[test]
fn order_is_sip_sip2_sip3_with_down_peers_last() {
    let mut spec = teams();
    spec.options.failure_codes = vec![503];
    let t0 = start();
    let mut h = Health::new(&spec, 9, t0);
    assert_eq!(h.order(), vec![0, 1, 2]);
    pings(&mut h, t0);
    h.on_response(t0, 0, 503);
    h.on_response(t0, 1, 200);
    h.on_response(t0, 2, 503);
    assert_eq!(h.order(), vec![1, 0, 2]);
    assert!(h.any_usable());
    let t60 = t0 + Duration::from_secs(60);
    pings(&mut h, t60);
    h.on_failure(t60, 1, Failure::Transport);
    // All down: sip and sip3 failed a minute before sip2, so they are the
    // likelier to be back and are tried first.
    assert_eq!(h.order(), vec![0, 2, 1]);
    assert!(!h.any_usable());
}

#[test]
fn peer_order_feeds_the_routing_plan() {
    let spec = teams();
    let t0 = start();
    let mut h = Health::new(&spec, 9, t0);
    pings(&mut h, t0);
    h.on_failure(t0, 0, Failure::Tls);
    let route = routing::Route {
        name: "r".into(),
        from: vec![],
        called: None,
        to: vec![routing::Destination::trunk("teams", None)],
        forward: None,
    };
    let mut plan = routing::Plan::new(&route, |_| h.ranked());
    let mut peers = Vec::new();
    let mut next = plan.start();
    while let routing::Next::Try(a) = next {
        peers.push(a.peer);
        next = plan.on_outcome(routing::Outcome::TransportError, &[], false);
    }
    assert_eq!(peers, vec![1, 2, 0]);
}

// ----- passive health, hold-down, retry, pause, ranking ---------------------

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn changes(h: &mut Health) -> Vec<(usize, bool, String)> {
    std::iter::from_fn(|| h.poll_change())
        .map(|c| (c.peer, c.up, c.reason))
        .collect()
}

/// A gateway trunk (OPTIONS off, as configured by default) with `n` peers.
fn gateway(n: usize) -> TrunkSpec {
    let mut g = TrunkSpec::new("gateway", TrunkKind::Gateway, "sbc.example.com");
    for i in 0..n {
        g.peers.push(PeerSpec {
            host: format!("gw{i}.example.net"),
            port: 5060,
            transport: Transport::Udp,
            addr: None,
        });
    }
    g
}

#[test]
fn timed_out_invite_takes_the_peer_down_at_once() {
    let mut spec = teams();
    spec.options.down_after = 3;
    let t0 = start();
    let mut h = Health::new(&spec, 9, t0);
    for p in pings(&mut h, t0) {
        h.on_response(t0, p.peer, 200);
    }
    let t10 = t0 + secs(10);
    h.on_attempt_timeout(t10, 0);
    // Down although down_after = 3: a call saw it dead.
    assert_eq!(h.state(0), PeerState::Down("no response to INVITE".into()));
    assert!(h.is_down(0) && !h.is_down(1));
    assert_eq!(
        changes(&mut h),
        [(0, false, "no response to INVITE".into())]
    );
    assert_eq!(h.order(), vec![1, 2, 0]);
    // Its next OPTIONS is due now, not at t0 + 60 s; the others keep their cadence.
    assert_eq!(h.next_wakeup(), Some(t10));
    let ps = pings(&mut h, t10);
    assert_eq!(ps.iter().map(|p| p.peer).collect::<Vec<_>>(), [0]);
    // With a ping in flight, nothing is sent twice; once it is answered the
    // next one goes out at once, to reach up_after quickly.
    h.on_attempt_timeout(t0 + secs(11), 0);
    assert!(h.poll_ping(t0 + secs(11)).is_none());
    h.on_response(t0 + secs(12), 0, 200);
    assert_eq!(h.poll_ping(t0 + secs(12)).map(|p| p.peer), Some(0));
    h.on_response(t0 + secs(13), 0, 200);
    assert_eq!(h.state(0), PeerState::Up);
    assert_eq!(changes(&mut h), [(0, true, "200 x2".into())]);
}

#[test]
fn failed_call_connection_takes_the_peer_down_at_once() {
    let mut spec = teams();
    spec.options.down_after = 3;
    let t0 = start();
    let mut h = Health::new(&spec, 9, t0);
    h.on_call_failure(t0, 1, Failure::Tls);
    assert_eq!(h.state(1), PeerState::Down("TLS failure".into()));
    h.on_call_failure(t0, 2, Failure::Timeout);
    assert_eq!(h.state(2), PeerState::Down("no response to INVITE".into()));
    // The same failure reported for OPTIONS counts toward down_after.
    h.on_failure(t0, 0, Failure::Transport);
    assert_eq!(h.state(0), PeerState::Unknown);
    // An index out of range is ignored.
    h.on_call_failure(t0, 7, Failure::Transport);
    h.on_attempt_timeout(t0, 7);
    h.hold_down(t0, 7, secs(5), "503");
    assert_eq!(
        changes(&mut h),
        [
            (1, false, "TLS failure".into()),
            (2, false, "no response to INVITE".into())
        ]
    );
}

#[test]
fn retry_after_holds_the_peer_down_even_when_options_succeed() {
    let mut spec = teams();
    spec.options.up_after = 1;
    let t0 = start();
    let mut h = Health::new(&spec, 9, t0);
    for p in pings(&mut h, t0) {
        h.on_response(t0, p.peer, 200);
    }
    assert_eq!(h.state(0), PeerState::Up);
    changes(&mut h);
    let t1 = t0 + secs(1);
    h.hold_down(t1, 0, secs(120), "503");
    assert_eq!(h.state(0), PeerState::Down("503".into()));
    assert_eq!(changes(&mut h), [(0, false, "503".into())]);
    // OPTIONS go on and succeed; the peer stays down for the whole hold.
    for t in [60, 120] {
        let now = t0 + secs(t);
        for p in pings(&mut h, now) {
            h.on_response(now, p.peer, 200);
        }
        assert!(h.is_down(0), "at {t} s");
    }
    // The hold's end is the next thing to happen.
    let end = t1 + secs(120);
    assert_eq!(h.next_wakeup(), Some(end));
    assert!(h.poll_ping(end - Duration::from_millis(1)).is_none());
    assert!(h.is_down(0));
    // At its end the peer is usable again, and checked at once.
    let ps = pings(&mut h, end);
    assert_eq!(h.state(0), PeerState::Unknown);
    assert_eq!(changes(&mut h), [(0, true, "retry-after elapsed".into())]);
    assert_eq!(ps.iter().map(|p| p.peer).collect::<Vec<_>>(), [0]);
    assert_eq!(h.since(0), Some(end));
    h.on_response(end, 0, 200);
    assert_eq!(h.state(0), PeerState::Up);
}

#[test]
fn retry_after_is_cut_to_max_hold() {
    let mut spec = gateway(1);
    spec.options.max_hold = secs(300);
    let t0 = start();
    let mut h = Health::new(&spec, 9, t0);
    h.hold_down(t0, 0, secs(3600), "503");
    assert_eq!(h.next_wakeup(), Some(t0 + secs(300)));
    h.poll_ping(t0 + secs(299));
    assert!(h.is_down(0));
    h.poll_ping(t0 + secs(300));
    assert_eq!(h.state(0), PeerState::Unknown);
    // A Retry-After far beyond what an Instant holds is no panic either.
    h.hold_down(t0, 0, Duration::MAX, "503");
    assert_eq!(h.next_wakeup(), Some(t0 + secs(300)));
}

#[test]
fn peer_whose_options_fail_during_the_hold_stays_down_when_it_ends() {
    let t0 = start();
    let mut h = Health::new(&teams(), 9, t0);
    for p in pings(&mut h, t0) {
        h.on_response(t0, p.peer, 200);
    }
    h.hold_down(t0 + secs(1), 0, secs(100), "503");
    let t60 = t0 + secs(60);
    for p in pings(&mut h, t60) {
        if p.peer != 0 {
            h.on_response(t60, p.peer, 200);
        }
    }
    // The ping to sip times out during the hold…
    h.poll_ping(t60 + secs(32));
    assert_eq!(h.state(0), PeerState::Down("timeout".into()));
    // …so when the hold ends it is still down, and OPTIONS decide from here.
    h.poll_ping(t0 + secs(101));
    assert_eq!(h.state(0), PeerState::Down("timeout".into()));
    let sip: Vec<_> = changes(&mut h).into_iter().filter(|c| c.0 == 0).collect();
    assert_eq!(sip, [(0, false, "503".into())]);
    assert_eq!(h.next_wakeup(), Some(t0 + secs(120)));
}

#[test]
fn gateway_peer_without_options_comes_back_after_the_retry_interval() {
    let spec = gateway(2);
    assert!(!spec.options.enabled);
    assert_eq!(spec.options.retry_interval, secs(30));
    let t0 = start();
    let mut h = Health::new(&spec, 9, t0);
    assert_eq!(h.next_wakeup(), None);
    h.on_attempt_timeout(t0, 0);
    assert_eq!(h.order(), vec![1, 0]);
    assert_eq!(h.next_wakeup(), Some(t0 + secs(30)));
    assert!(h.poll_ping(t0 + secs(29)).is_none());
    assert!(h.is_down(0));
    assert!(h.poll_ping(t0 + secs(30)).is_none());
    assert_eq!(h.state(0), PeerState::Unknown);
    assert_eq!(
        changes(&mut h),
        [
            (0, false, "no response to INVITE".into()),
            (0, true, "retry".into())
        ]
    );
    assert_eq!(h.next_wakeup(), None);
    // Tried again and dead again: down at once, retried 30 s after the last
    // failure (a failure while down pushes the retry back).
    let t40 = t0 + secs(40);
    h.on_call_failure(t40, 0, Failure::Transport);
    h.on_call_failure(t40 + secs(10), 0, Failure::Transport);
    assert_eq!(h.next_wakeup(), Some(t40 + secs(40)));
    h.poll_ping(t40 + secs(39));
    assert!(h.is_down(0));
    h.poll_ping(t40 + secs(40));
    assert!(!h.is_down(0));
}

#[test]
fn with_options_on_a_down_peer_waits_for_options_not_the_retry_interval() {
    let t0 = start();
    let mut h = Health::new(&teams(), 9, t0);
    pings(&mut h, t0);
    h.on_response(t0, 1, 200);
    h.on_response(t0, 2, 200);
    h.poll_ping(t0 + secs(32));
    assert!(h.is_down(0));
    // Long past retry_interval, and no answer yet: still down.
    assert!(h.poll_ping(t0 + secs(59)).is_none());
    assert!(h.is_down(0));
    assert_eq!(h.next_wakeup(), Some(t0 + secs(60)));
}

#[test]
fn paused_health_sends_no_options() {
    let t0 = start();
    let mut h = Health::new(&teams(), 9, t0);
    assert_eq!(pings(&mut h, t0).len(), 3);
    h.set_paused(true);
    assert!(h.is_paused());
    // Pings in flight still complete.
    h.on_response(t0 + secs(1), 0, 200);
    h.on_response(t0 + secs(1), 1, 200);
    assert_eq!(h.next_wakeup(), Some(t0 + secs(32)));
    h.on_response(t0 + secs(2), 2, 200);
    assert_eq!(h.rtt(2), Some(secs(2)));
    // No cadence while paused: nothing to wake up for, nothing sent.
    assert_eq!(h.next_wakeup(), None);
    for t in [60, 120, 180] {
        assert!(h.poll_ping(t0 + secs(t)).is_none());
    }
    // Resumed: one ping per peer at once, then the cadence again.
    h.set_paused(false);
    let t200 = t0 + secs(200);
    assert_eq!(h.next_wakeup(), Some(t0 + secs(60)));
    assert_eq!(pings(&mut h, t200).len(), 3);
    assert_eq!(h.next_wakeup(), Some(t200 + secs(32)));
}

#[test]
fn paused_health_lets_down_peers_come_back_after_the_retry_interval() {
    let t0 = start();
    let mut h = Health::new(&teams(), 9, t0);
    pings(&mut h, t0);
    h.set_paused(true);
    // sip's ping in flight times out: down; no OPTIONS can bring it up now.
    h.on_response(t0, 1, 200);
    h.on_response(t0, 2, 200);
    h.poll_ping(t0 + secs(32));
    assert!(h.is_down(0));
    assert_eq!(h.next_wakeup(), Some(t0 + secs(62)));
    h.poll_ping(t0 + secs(62));
    assert_eq!(h.state(0), PeerState::Unknown);
}

#[test]
fn down_peers_rank_last_soonest_recovery_first() {
    let t0 = start();
    let mut h = Health::new(&gateway(5), 9, t0);
    assert_eq!(
        h.ranked(),
        [(0, false), (1, false), (2, false), (3, false), (4, false)]
    );
    // gw0 asked for 200 s; gw1 failed at 5 s, gw3 at 10 s (each back 30 s
    // later); gw4 asked for 27 s at 10 s.
    h.hold_down(t0, 0, secs(200), "503");
    h.on_attempt_timeout(t0 + secs(5), 1);
    h.on_call_failure(t0 + secs(10), 3, Failure::Transport);
    h.hold_down(t0 + secs(10), 4, secs(27), "503");
    assert_eq!(
        h.ranked(),
        [(2, false), (1, true), (4, true), (3, true), (0, true)]
    );
    assert_eq!(h.order(), vec![2, 1, 4, 3, 0]);
    assert!(h.is_down(3) && !h.is_down(2) && !h.is_down(9));
    let route = routing::Route {
        name: "r".into(),
        from: vec![],
        called: None,
        to: vec![routing::Destination::trunk("gateway", None)],
        forward: None,
    };
    let mut plan = routing::Plan::new(&route, |_| h.ranked());
    let mut peers = Vec::new();
    let mut next = plan.start();
    while let routing::Next::Try(a) = next {
        peers.push(a.peer);
        next = plan.on_outcome(routing::Outcome::Timeout, &[], false);
    }
    assert_eq!(peers, [2, 1, 4, 3, 0]);
}

#[test]
fn rtt_is_the_last_options_round_trip_and_since_the_last_change() {
    let t0 = start();
    let mut h = Health::new(&teams(), 9, t0);
    assert_eq!((h.rtt(0), h.since(0)), (None, None));
    pings(&mut h, t0);
    h.on_response(t0 + Duration::from_millis(40), 0, 100);
    assert_eq!(h.rtt(0), None); // provisional: not the round trip
    h.on_response(t0 + Duration::from_millis(150), 0, 200);
    h.on_response(t0 + Duration::from_millis(90), 1, 200);
    assert_eq!(h.rtt(0), Some(Duration::from_millis(150)));
    assert_eq!(h.rtt(1), Some(Duration::from_millis(90)));
    assert_eq!(h.since(0), None); // one success: still Unknown
    let t32 = t0 + secs(32);
    h.poll_ping(t32);
    assert_eq!(h.rtt(2), None);
    assert_eq!(h.since(2), Some(t32));
    let t60 = t0 + secs(60);
    for p in pings(&mut h, t60) {
        h.on_response(t60 + Duration::from_millis(20), p.peer, 200);
    }
    assert_eq!(h.rtt(0), Some(Duration::from_millis(20)));
    assert_eq!(h.since(0), Some(t60 + Duration::from_millis(20)));
    assert_eq!(h.since(2), Some(t32));
    assert_eq!(h.rtt(9), None);
}

#[test]
fn silent_peer_is_down_within_interval_plus_timeout() {
    let defaults = OptionsSpec::default();
    assert_eq!(defaults.down_after, 1);
    let bound = defaults.interval + defaults.timeout;
    // The peer falls silent at various points of the OPTIONS cycle.
    for silent_after in [0, 1, 30, 59, 60, 61, 119, 150] {
        let t0 = start();
        let silent = t0 + secs(silent_after);
        let mut h = Health::new(&teams(), 9, t0);
        let mut now = t0;
        let down_at = loop {
            for p in pings(&mut h, now) {
                if p.peer != 0 || now < silent {
                    h.on_response(now + Duration::from_millis(30), p.peer, 200);
                }
            }
            if h.is_down(0) {
                break now;
            }
            now = h.next_wakeup().expect("OPTIONS on: always a wake-up");
            assert!(now <= silent + bound, "silent at +{silent_after} s");
        };
        assert!(down_at >= silent && down_at <= silent + bound);
        assert_eq!(h.state(0), PeerState::Down("timeout".into()));
        assert!(!h.is_down(1) && !h.is_down(2));
    }
}

// ----- classification -------------------------------------------------------

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn options_to_a_carrier_with_contact_host_carry_our_ip_in_via_and_contact() {
    let t0 = start();
    let mut c = carrier();
    c.options.enabled = true;
    c.contact_host = Some("203.0.113.10".parse().unwrap());
    let mut h = Health::new(&c, 7, t0);
    let p = h.poll_ping(t0).unwrap();
    let (text, m) = wire(&p.msg);
    let via = m.top_via().unwrap();
    assert_eq!(via.transport, "UDP");
    assert_eq!(via.host.to_string(), "203.0.113.10");
    assert_eq!(via.port, Some(5060));
    assert_eq!(
        header(&m, "Contact"),
        "<sip:203.0.113.10:5060;transport=udp>",
        "{text}"
    );
    // From keeps our name.
    assert!(
        header(&m, "From").starts_with("<sip:sbc.example.com:5060>"),
        "{text}"
    );
}

fn names(n: &[&str]) -> Vec<String> {
    n.iter().map(|s| (*s).to_owned()).collect()
}

fn carrier() -> TrunkSpec {
    let mut c = TrunkSpec::new("carrier", TrunkKind::Carrier, "sbc.example.com");
    c.peers.push(PeerSpec {
        host: "sip.carrier.example.net".into(),
        port: 5060,
        transport: Transport::Udp,
        addr: Some(sa("198.51.100.10:5060")),
    });
    c
}

fn acs() -> TrunkSpec {
    TrunkSpec::new("acs", TrunkKind::Acs, "sbc.acs.contoso.com")
}

const TLS_LOCAL: &str = "192.0.2.1:5061";
const UDP_LOCAL: &str = "192.0.2.1:5060";

#[test]
fn unknown_source_is_refused() {
    let c = Classifier::new(&[carrier(), teams()]);
    assert_eq!(
        c.classify(sa(UDP_LOCAL), ip("203.0.113.9"), Transport::Udp, None),
        None
    );
    // A Microsoft address over UDP is not the Teams trunk either.
    assert_eq!(
        c.classify(sa(UDP_LOCAL), ip("52.114.75.24"), Transport::Udp, None),
        None
    );
    // Nor is a TLS client in Microsoft's range without a Microsoft certificate.
    let ms = names(&["evil.example.org"]);
    assert_eq!(
        c.classify(sa(TLS_LOCAL), ip("52.114.75.24"), Transport::Tls, Some(&ms)),
        None
    );
    assert_eq!(
        c.classify(sa(TLS_LOCAL), ip("52.114.75.24"), Transport::Tls, None),
        None
    );
}

#[test]
fn a_retired_trunk_classifies_nothing_and_its_successor_takes_its_peers() {
    // A reload replaced the carrier trunk (index 0) by a new one (index 2)
    // with the same peer: the old one stays for its calls, the new one
    // takes new requests.
    let trunks = [carrier(), teams(), carrier()];
    let c = Classifier::with_retired(&trunks, &[true, false, false]);
    assert_eq!(
        c.classify(sa(UDP_LOCAL), ip("198.51.100.10"), Transport::Udp, None),
        Some(2)
    );
    let c = Classifier::with_retired(&trunks, &[true, false, true]);
    assert_eq!(
        c.classify(sa(UDP_LOCAL), ip("198.51.100.10"), Transport::Udp, None),
        None
    );
}

#[test]
fn carrier_classified_by_peer_address() {
    let c = Classifier::new(&[carrier(), teams()]);
    assert_eq!(
        c.classify(sa(UDP_LOCAL), ip("198.51.100.10"), Transport::Udp, None),
        Some(0)
    );
    assert_eq!(
        c.classify(
            sa(UDP_LOCAL),
            ip("::ffff:198.51.100.10"),
            Transport::Udp,
            None
        ),
        Some(0)
    );
    assert_eq!(
        c.classify(sa(UDP_LOCAL), ip("198.51.100.11"), Transport::Udp, None),
        None
    );
}

#[test]
fn carrier_peer_over_tcp_classifies_to_its_udp_trunk() {
    // RFC 3261 §18.1.1: a peer configured for UDP may send over TCP (a
    // large request, or its choice); the message is the carrier's.
    let c = Classifier::new(&[carrier(), teams()]);
    const TCP_LOCAL: &str = "192.0.2.1:5060";
    assert_eq!(
        c.classify(sa(TCP_LOCAL), ip("198.51.100.10"), Transport::Tcp, None),
        Some(0)
    );
    // TLS is not one of its transports, and another source is no peer.
    assert_eq!(
        c.classify(sa(TLS_LOCAL), ip("198.51.100.10"), Transport::Tls, None),
        None
    );
    assert_eq!(
        c.classify(sa(TCP_LOCAL), ip("198.51.100.11"), Transport::Tcp, None),
        None
    );
    // A carrier limited to UDP refuses TCP.
    let mut udp_only = carrier();
    udp_only.transports = vec![Transport::Udp];
    let c = Classifier::new(&[udp_only.clone(), teams()]);
    assert_eq!(
        c.classify(sa(TCP_LOCAL), ip("198.51.100.10"), Transport::Tcp, None),
        None
    );
    assert_eq!(
        c.classify(sa(UDP_LOCAL), ip("198.51.100.10"), Transport::Udp, None),
        Some(0)
    );
    // A peer's own transport always counts, whatever the list says.
    udp_only.peers[0].transport = Transport::Tcp;
    let c = Classifier::new(&[udp_only]);
    assert_eq!(
        c.classify(sa(TCP_LOCAL), ip("198.51.100.10"), Transport::Tcp, None),
        Some(0)
    );
    // A trunk configured for TCP beats one that only allows it.
    let mut tcp = carrier();
    tcp.name = "carrier-tcp".into();
    tcp.transport = Transport::Tcp;
    tcp.peers[0].transport = Transport::Tcp;
    let c = Classifier::new(&[carrier(), tcp]);
    assert_eq!(
        c.classify(sa(TCP_LOCAL), ip("198.51.100.10"), Transport::Tcp, None),
        Some(1)
    );
    assert_eq!(
        c.classify(sa(UDP_LOCAL), ip("198.51.100.10"), Transport::Udp, None),
        Some(0)
    );
    // Microsoft over plain TCP from its own ranges is nobody's.
    let c = Classifier::new(&[carrier(), teams()]);
    assert_eq!(
        c.classify(sa(TCP_LOCAL), ip("52.114.75.24"), Transport::Tcp, None),
        None
    );
}

#[test]
fn microsoft_ranges_classified_as_teams() {
    let c = Classifier::new(&[carrier(), teams()]);
    let ms = names(&[
        "sip-du-a-eu.pstnhub.microsoft.com",
        "sip.pstnhub.microsoft.com",
    ]);
    for src in ["52.114.75.24", "52.112.0.1", "52.123.255.254"] {
        assert_eq!(
            c.classify(sa(TLS_LOCAL), ip(src), Transport::Tls, Some(&ms)),
            Some(1),
            "{src}"
        );
    }
    assert_eq!(
        c.classify(sa(TLS_LOCAL), ip("52.124.0.1"), Transport::Tls, Some(&ms)),
        None
    );
    // A wildcard certificate covers the proxies' names.
    let wild = names(&["*.pstnhub.microsoft.com"]);
    assert_eq!(
        c.classify(
            sa(TLS_LOCAL),
            ip("52.114.75.24"),
            Transport::Tls,
            Some(&wild)
        ),
        Some(1)
    );
}

/// The demo layout: every trunk accepts loopback, the carrier over UDP, the
/// Microsoft trunks over TLS with the proxies' names.
fn loopback_trunks() -> Vec<TrunkSpec> {
    let lo = Cidr::parse("127.0.0.0/8").unwrap();
    let mut c = carrier();
    c.acl = vec![lo];
    let mut t = teams();
    t.acl = vec![lo];
    let mut a = acs();
    a.acl = vec![lo];
    vec![c, t, a]
}

#[test]
fn tls_peer_name_distinguishes_microsoft_from_carrier() {
    let mut trunks = loopback_trunks();
    trunks[0].peers[0].transport = Transport::Tls;
    trunks[0].transport = Transport::Tls;
    let c = Classifier::new(&trunks);
    let carrier_cert = names(&["carrier.example.test"]);
    let ms = names(&["sip.pstnhub.microsoft.com"]);
    let lo = ip("127.0.0.1");
    assert_eq!(
        c.classify(sa(TLS_LOCAL), lo, Transport::Tls, Some(&carrier_cert)),
        Some(0)
    );
    // Matching certificate names beat the carrier's ACL-only match.
    assert_eq!(
        c.classify(sa(TLS_LOCAL), lo, Transport::Tls, Some(&ms)),
        Some(1)
    );
}

#[test]
fn tls_name_distinguishes_teams_from_acs() {
    let c = Classifier::new(&loopback_trunks());
    let ms = names(&[
        "sip.pstnhub.microsoft.com",
        "sip2.pstnhub.microsoft.com",
        "sip3.pstnhub.microsoft.com",
    ]);
    let lo = ip("127.0.0.1");
    let local = sa("127.0.0.1:5061");
    // Same proxies, same certificate: the name the proxy asked for decides.
    assert_eq!(
        c.classify_named(
            local,
            lo,
            Transport::Tls,
            Some(&ms),
            Some("sbc1.contoso.com")
        ),
        Some(1)
    );
    assert_eq!(
        c.classify_named(
            local,
            lo,
            Transport::Tls,
            Some(&ms),
            Some("SBC.ACS.contoso.com")
        ),
        Some(2)
    );
    // Different certificate names per trunk separate them without a hint.
    let mut trunks = loopback_trunks();
    trunks[2].peer_names = names(&["acs-proxy.example.test"]);
    let c = Classifier::new(&trunks);
    let acs_cert = names(&["acs-proxy.example.test"]);
    assert_eq!(
        c.classify(local, lo, Transport::Tls, Some(&acs_cert)),
        Some(2)
    );
    assert_eq!(c.classify(local, lo, Transport::Tls, Some(&ms)), Some(1));
    // The carrier over UDP from the same address stays the carrier.
    assert_eq!(
        c.classify(sa("127.0.0.1:5060"), lo, Transport::Udp, None),
        Some(0)
    );
}

#[test]
fn without_a_hint_the_first_of_equal_trunks_wins() {
    let c = Classifier::new(&loopback_trunks());
    let ms = names(&["sip.pstnhub.microsoft.com"]);
    assert_eq!(
        c.classify(sa(TLS_LOCAL), ip("127.0.0.1"), Transport::Tls, Some(&ms)),
        Some(1)
    );
}

#[test]
fn listener_restricts_trunk() {
    let mut trunks = loopback_trunks();
    trunks[2].listen = vec![sa("0.0.0.0:5062")];
    let c = Classifier::new(&trunks);
    let ms = names(&["sip.pstnhub.microsoft.com"]);
    let lo = ip("127.0.0.1");
    // On 5062 only ACS listens; its listener match makes it the most specific.
    assert_eq!(
        c.classify(sa("127.0.0.1:5062"), lo, Transport::Tls, Some(&ms)),
        Some(2)
    );
    assert_eq!(
        c.classify(sa("127.0.0.1:5061"), lo, Transport::Tls, Some(&ms)),
        Some(1)
    );
    trunks[1].listen = vec![sa("127.0.0.1:5061")];
    let c = Classifier::new(&trunks);
    assert_eq!(
        c.classify(sa("127.0.0.1:5063"), lo, Transport::Tls, Some(&ms)),
        None
    );
}

#[test]
fn a_peer_without_an_address_is_down_unpinged_and_last_until_it_resolves() {
    let t0 = start();
    let mut h = Health::new(&teams(), 9, t0);
    h.set_unresolved(t0, 0);
    assert_eq!(h.state(0), PeerState::Down("unresolved".into()));
    assert!(h.is_unresolved(0));
    assert_eq!(changes(&mut h), [(0, false, "unresolved".into())]);
    // No OPTIONS to it; the others are pinged.
    let ps: Vec<usize> = pings(&mut h, t0).iter().map(|p| p.peer).collect();
    assert_eq!(ps, [1, 2]);
    // sip3 failed too, but it has an address: it comes before sip.
    h.on_call_failure(t0, 2, Failure::Transport);
    assert_eq!(h.ranked(), vec![(1, false), (2, true), (0, true)]);
    // Time passes: no retry brings an unresolved peer back, no ping wakes for it.
    h.set_paused(true);
    let later = t0 + secs(3600);
    assert!(h.poll_ping(later).is_none());
    assert!(h.is_down(0));
    h.set_paused(false);
    // An address appears: Unknown again, pinged at once.
    let t1 = later + secs(1);
    h.set_resolved(t1, 0, true);
    assert!(!h.is_unresolved(0) && !h.is_down(0));
    assert!(changes(&mut h).contains(&(0, true, "resolved".into())));
    assert!(pings(&mut h, t1).iter().any(|p| p.peer == 0));
}

#[test]
fn a_new_address_forgets_what_the_old_one_taught() {
    let t0 = start();
    let mut h = Health::new(&teams(), 9, t0);
    h.on_attempt_timeout(t0, 1);
    assert!(h.is_down(1));
    changes(&mut h);
    // The same address again: nothing changes.
    h.set_resolved(t0 + secs(1), 1, false);
    assert!(h.is_down(1));
    // Another address: a fresh start.
    h.set_resolved(t0 + secs(2), 1, true);
    assert_eq!(h.state(1), PeerState::Unknown);
    assert_eq!(changes(&mut h), [(1, true, "address changed".into())]);
    // A 503 Retry-After hold is the peer's own word: a new address keeps it.
    h.hold_down(t0 + secs(3), 2, secs(120), "503");
    h.set_resolved(t0 + secs(4), 2, true);
    assert!(h.is_down(2));
    h.poll_ping(t0 + secs(124));
    assert!(!h.is_down(2), "the hold ends as usual");
}

#[test]
fn unresolved_peers_of_a_gateway_come_last_in_the_plan_order() {
    let t0 = start();
    let mut h = Health::new(&gateway(3), 9, t0);
    h.set_unresolved(t0, 0);
    assert_eq!(h.order(), vec![1, 2, 0]);
    // Retrying (OPTIONS off) does not make it usable.
    h.poll_ping(t0 + secs(600));
    assert!(h.is_down(0));
    assert_eq!(h.next_wakeup(), None, "nothing to wait for");
}
