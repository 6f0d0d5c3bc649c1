//! A burst of session set-ups and deletes, as the SIP loop makes them
//! under call-rate saturation: afterwards the process holds the
//! descriptors it held before, no session, no port and no waiting set-up.
//! Its own test binary with one test, so that no other test opens
//! descriptors while this one counts them (`/proc/self/fd`).

use std::time::{Duration, Instant};

use relay::{LegSpec, MediaOp, Relay, RelayConfig, RelayError, RelayEvent};

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Takes the relay's events (as `sbc run` does on its media tick: a
/// removed session's ports are free again once its removal is read);
/// returns how many sessions were reported removed.
fn take_removed(r: &Relay) -> usize {
    std::iter::from_fn(|| r.poll_event())
        .filter(|e| matches!(e, RelayEvent::Removed { .. }))
        .count()
}

/// Creates `n` sessions and deletes each without waiting (`apply`, the SIP
/// loop's way), four at a time alive, the way short calls come and go.
/// Returns (created, refused for the backlog, removals read).
fn burst(r: &Relay, n: usize) -> (usize, usize, usize) {
    let (mut created, mut refused, mut removed) = (0, 0, 0);
    let mut alive = std::collections::VecDeque::new();
    for _ in 0..n {
        match r.create(LegSpec::default(), LegSpec::default()) {
            Ok(s) => {
                created += 1;
                alive.push_back(s.id);
            }
            Err(RelayError::Backlog(_)) => refused += 1,
            Err(e) => panic!("create: {e}"),
        }
        if alive.len() > 4 {
            let id = alive.pop_front().unwrap();
            r.apply(MediaOp::Delete { id }).unwrap();
        }
        removed += take_removed(r);
    }
    for id in alive {
        r.apply(MediaOp::Delete { id }).unwrap();
    }
    // The rest (at most 5 s).
    let deadline = Instant::now() + Duration::from_secs(5);
    while removed < created && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
        removed += take_removed(r);
    }
    (created, refused, removed)
}

fn check(io: relay::Io, ports: (u16, u16)) {
    let n = 2000;
    let r = Relay::start(RelayConfig {
        port_min: ports.0,
        port_max: ports.1,
        workers: 1,
        io,
        max_backlog: 64,
        ..RelayConfig::default()
    })
    .unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let baseline = open_fds();
    let (created, refused, removed) = burst(&r, n);
    assert_eq!(created + refused, n);
    assert!(created > 0, "{io:?}: nothing created");
    assert_eq!(
        removed, created,
        "{io:?}: every deleted session reported removed"
    );
    let s = r.stats();
    assert_eq!(
        (s.sessions, s.backlog, r.ports_in_use()),
        (0, 0, 0),
        "{io:?}"
    );
    assert_eq!(
        s.refused_backlog as usize, refused,
        "{io:?}: refusals counted"
    );
    // The workers close the sockets as they remove (io_uring: once the
    // ring's cancel completes); give them a moment.
    let deadline = Instant::now() + Duration::from_secs(2);
    while open_fds() > baseline && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        open_fds(),
        baseline,
        "{io:?}: descriptors after {created} sessions created and deleted ({refused} refused)"
    );
    eprintln!(
        "{io:?}: {created} created and deleted, {refused} refused, descriptors back to {baseline}"
    );
}

/// A relay that may not queue a single set-up refuses every create, counts
/// each, and leaks nothing (the refused sockets were never bound).
fn refuse_all(ports: (u16, u16)) {
    let r = Relay::start(RelayConfig {
        port_min: ports.0,
        port_max: ports.1,
        workers: 2,
        io: relay::Io::Epoll,
        max_backlog: 0,
        ..RelayConfig::default()
    })
    .unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let baseline = open_fds();
    for _ in 0..100 {
        match r.create(LegSpec::default(), LegSpec::default()) {
            Err(RelayError::Backlog(0)) => {}
            other => panic!("expected a refusal: {other:?}"),
        }
    }
    assert_eq!(r.stats().refused_backlog, 100);
    assert_eq!((r.ports_in_use(), open_fds()), (0, baseline));
}

#[test]
fn a_burst_of_sessions_leaves_descriptors_ports_and_sessions_at_their_baseline() {
    check(relay::Io::Epoll, (45000, 45999));
    check(relay::Io::Uring, (46000, 46999));
    refuse_all((47000, 47099));
}
