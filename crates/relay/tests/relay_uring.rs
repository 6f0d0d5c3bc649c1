//! The relay's loopback cases (`cases/`) with the io_uring workers.

const IO: relay::Io = relay::Io::Uring;

mod cases;

use std::time::Duration;

use relay::{LegSpec, Relay, RelayConfig};

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

/// With io_uring the sockets live in the workers' rings, not in the
/// descriptor table: sessions do not use up `ulimit -n` (4 sockets per
/// session with epoll; ≈ 5,000 calls under a limit of 20,000).
#[test]
fn sessions_hold_no_descriptors() {
    let r = Relay::start(RelayConfig {
        port_min: 43000,
        port_max: 43999,
        workers: 2,
        io: relay::Io::Uring,
        ..RelayConfig::default()
    })
    .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let before = open_fds();
    let ids: Vec<u64> = (0..100)
        .map(|_| r.create(LegSpec::default(), LegSpec::default()).unwrap().id)
        .collect();
    // The workers register the sockets asynchronously.
    let mut after = usize::MAX;
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(20));
        after = open_fds();
        if after <= before + 8 {
            break;
        }
    }
    assert!(
        after <= before + 8,
        "100 sessions (400 sockets) left {} descriptors open (was {before})",
        after
    );
    assert_eq!(r.ports_in_use(), 200, "port pairs");
    for id in ids {
        r.delete(id).unwrap();
    }
    assert_eq!(r.ports_in_use(), 0);
}
