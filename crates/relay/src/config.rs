//! What the relay is configured with: its media interfaces, port range,
//! workers and their I/O, timers and the bound on waiting set-ups.

use std::net::IpAddr;
use std::time::Duration;

/// A local media address: where sockets are bound and what SDP advertises
/// (rtpengine's `NAME/IP!ADVERTISED`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// Name used to pick the interface (e.g. `carrier`, `teams`).
    pub name: String,
    /// Address the sockets are bound to.
    pub local: IpAddr,
    /// Address written into SDP (NAT: the public address).
    pub advertised: IpAddr,
}

impl Interface {
    /// Parses `[NAME/]IP[!ADVERTISED-IP]`.
    pub fn parse(s: &str) -> Result<Interface, String> {
        let (name, rest) = match s.split_once('/') {
            Some((n, r)) => (n.to_owned(), r),
            None => ("default".to_owned(), s),
        };
        let (local, adv) = match rest.split_once('!') {
            Some((l, a)) => (l, Some(a)),
            None => (rest, None),
        };
        let local: IpAddr = local
            .parse()
            .map_err(|e| format!("{s:?}: bad address {local:?}: {e}"))?;
        let advertised = match adv {
            Some(a) => a
                .parse()
                .map_err(|e| format!("{s:?}: bad advertised address {a:?}: {e}"))?,
            None => local,
        };
        Ok(Interface {
            name,
            local,
            advertised,
        })
    }
}

/// Relay configuration.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Media interfaces; the first is the default.
    pub interfaces: Vec<Interface>,
    /// Port range (inclusive).
    pub port_min: u16,
    /// Port range (inclusive).
    pub port_max: u16,
    /// Worker threads (0: one per core).
    pub workers: usize,
    /// A session with no packet for this long raises [`RelayEvent::Inactive`].
    pub inactivity: Duration,
    /// RTP clock rate assumed for jitter (8,000 Hz: G.711, G.729, telephone-event).
    pub clock_rate: u32,
    /// How the workers do their socket I/O.
    pub io: Io,
    /// Session set-ups that may wait for one worker; a create beyond that
    /// is refused ([`crate::RelayError::Backlog`]). Each waiting set-up holds its
    /// four sockets (descriptors, even with io_uring, until the worker
    /// takes them into its ring). Removals are never bounded nor delayed
    /// by set-ups.
    pub max_backlog: usize,
    /// Share of each interface's port pairs (percent, rounded up) kept for
    /// emergency calls ([`crate::Relay::create_emergency`]): an ordinary
    /// session is refused when only that many are free. 0 keeps none (the
    /// library's default; `sbc run` keeps 5 % unless configured).
    pub emergency_reserve_percent: u8,
}

/// The workers' I/O: io_uring (multishot receives into provided buffers,
/// sends of many sockets per system call, sockets in the ring's file table
/// instead of the descriptor table; Linux 6.10 or later), or epoll with
/// batched `recvmmsg`/`sendmmsg`. See docs/media.md.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Io {
    /// epoll (mio) and `recvmmsg`/`sendmmsg`/`sendto`.
    Epoll,
    /// io_uring (the default); a worker whose ring cannot be set up (older
    /// kernel, io_uring disabled) falls back to epoll and says so in the log.
    #[default]
    Uring,
}

impl std::str::FromStr for Io {
    type Err = String;
    fn from_str(s: &str) -> Result<Io, String> {
        match s {
            "epoll" => Ok(Io::Epoll),
            "uring" | "io_uring" | "io-uring" => Ok(Io::Uring),
            _ => Err(format!("unknown relay I/O {s:?} (epoll or uring)")),
        }
    }
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            interfaces: vec![Interface::parse("127.0.0.1").unwrap_or(Interface {
                name: "default".into(),
                local: IpAddr::from([127, 0, 0, 1]),
                advertised: IpAddr::from([127, 0, 0, 1]),
            })],
            port_min: 30000,
            port_max: 40000,
            workers: 0,
            inactivity: Duration::from_secs(60),
            clock_rate: 8000,
            io: Io::default(),
            max_backlog: 1024,
            emergency_reserve_percent: 0,
        }
    }
}
