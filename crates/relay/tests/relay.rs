//! The relay's loopback cases (`cases/`) with the epoll workers.

const IO: relay::Io = relay::Io::Epoll;

mod cases;

/// Emergency calls keep media when ordinary calls are refused for ports:
/// 8 pairs, 25 % (2 pairs) kept for them (below the ephemeral port range:
/// no socket bound to port 0 elsewhere takes one).
#[test]
fn emergency_sessions_take_the_reserved_ports() {
    use relay::{LegSpec, Relay, RelayConfig};
    let r = Relay::start(RelayConfig {
        port_min: 23300,
        port_max: 23316,
        workers: 1,
        io: IO,
        emergency_reserve_percent: 25,
        ..RelayConfig::default()
    })
    .unwrap();
    let leg = LegSpec::default;
    // Two legs a session: three ordinary sessions leave the reserve.
    let ordinary: Vec<_> = (0..3).map(|_| r.create(leg(), leg()).unwrap()).collect();
    let refused = r.create(leg(), leg()).unwrap_err();
    assert!(refused.to_string().contains("emergency"), "{refused}");
    assert_eq!(r.stats().refused_no_ports, 1);
    let sos = r.create_emergency(leg(), leg()).unwrap();
    assert!(
        r.create_emergency(leg(), leg()).is_err(),
        "every pair taken"
    );
    assert_eq!(r.stats().sessions, 4);
    let _ = (ordinary, sos, Relay::config(&r));
}
