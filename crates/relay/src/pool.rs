//! The port pool: RTP/RTCP port pairs (even RTP port, RTCP = RTP + 1) per
//! local address, handed out round-robin across the configured range so that
//! a just-released port is not reused at once (late packets of the old call
//! would land in the new one).
//!
//! A share of each address's pairs may be kept for emergency calls: an
//! ordinary allocation never takes one of the last `reserve` free pairs,
//! a priority one may take every pair.

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr, UdpSocket};

/// A pair of bound sockets: RTP on an even port, RTCP on the next one.
#[derive(Debug)]
pub(crate) struct Pair {
    pub(crate) rtp: UdpSocket,
    pub(crate) rtcp: UdpSocket,
}

/// Hands out port pairs in `[min, max]` on each local address.
#[derive(Debug)]
pub(crate) struct PortPool {
    min: u16,
    max: u16,
    next: HashMap<IpAddr, u16>,
    in_use: HashMap<IpAddr, BTreeSet<u16>>,
    /// Pairs per address only a priority allocation may take.
    reserve: usize,
}

impl PortPool {
    pub(crate) fn new(min: u16, max: u16) -> PortPool {
        let min = min.max(1024) + min % 2;
        PortPool {
            min,
            max: max.max(min + 1),
            next: HashMap::new(),
            in_use: HashMap::new(),
            reserve: 0,
        }
    }

    /// Keeps `percent` of each address's pairs (rounded up: any share
    /// keeps at least one) for priority allocations.
    pub(crate) fn with_reserve(mut self, percent: u8) -> PortPool {
        let pairs = self.pairs();
        self.reserve = (pairs * usize::from(percent.min(100))).div_ceil(100);
        self
    }

    /// Pairs in the range, on each address.
    fn pairs(&self) -> usize {
        usize::from(self.max - self.min).div_ceil(2)
    }

    /// Binds the next free pair on `ip`; tries every pair of the range
    /// once. Without `priority`, the last reserved pairs are refused.
    pub(crate) fn allocate(&mut self, ip: IpAddr, priority: bool) -> std::io::Result<Pair> {
        let pairs = u32::from(self.max - self.min) / 2;
        let total = self.pairs();
        let reserve = self.reserve;
        let start = *self.next.get(&ip).unwrap_or(&self.min);
        let used = self.in_use.entry(ip).or_default();
        if !priority && reserve > 0 && total.saturating_sub(used.len()) <= reserve {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                format!("only the {reserve} port pairs kept for emergency calls are free on {ip}"),
            ));
        }
        let mut port = start;
        for _ in 0..pairs.max(1) {
            if port + 1 > self.max {
                port = self.min;
            }
            let candidate = port;
            port += 2;
            if used.contains(&candidate) {
                continue;
            }
            // Someone else may hold the port (another process): try the next
            // pair. Any other error (out of file descriptors, no such
            // address) would fail for every pair: give up at once.
            let rtp = match bind(SocketAddr::new(ip, candidate)) {
                Ok(s) => s,
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => continue,
                Err(e) => return Err(e),
            };
            let rtcp = match bind(SocketAddr::new(ip, candidate + 1)) {
                Ok(s) => s,
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => continue,
                Err(e) => return Err(e),
            };
            used.insert(candidate);
            self.next.insert(ip, port);
            return Ok(Pair { rtp, rtcp });
        }
        Err(std::io::Error::new(
            std::io::ErrorKind::AddrInUse,
            format!("no free port pair on {ip} in {}-{}", self.min, self.max),
        ))
    }

    /// Returns a pair's RTP port to the pool (the sockets are closed by their owner).
    pub(crate) fn release(&mut self, ip: IpAddr, rtp_port: u16) {
        if let Some(set) = self.in_use.get_mut(&ip) {
            set.remove(&rtp_port);
        }
    }

    pub(crate) fn in_use(&self) -> usize {
        self.in_use.values().map(BTreeSet::len).sum()
    }
}

fn bind(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    let domain = if addr.is_ipv4() {
        socket2::Domain::IPV4
    } else {
        socket2::Domain::IPV6
    };
    let s = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    // Room for bursts: one socket per leg, 50 packets/s steady, but a worker may be busy.
    s.set_recv_buffer_size(256 * 1024).ok();
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    Ok(s.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_even_and_consecutive_and_not_reused_at_once() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let mut pool = PortPool::new(41000, 41011);
        let a = pool.allocate(ip, false).unwrap();
        let pa = a.rtp.local_addr().unwrap().port();
        assert_eq!(pa % 2, 0);
        assert_eq!(a.rtcp.local_addr().unwrap().port(), pa + 1);
        pool.release(ip, pa);
        drop(a);
        let b = pool.allocate(ip, false).unwrap();
        assert_ne!(
            b.rtp.local_addr().unwrap().port(),
            pa,
            "released port not reused at once"
        );
        assert_eq!(pool.in_use(), 1);
    }

    #[test]
    fn reserved_pairs_go_to_priority_allocations_only() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        // 4 pairs, 25 % kept: 3 ordinary, the 4th for an emergency call
        // (below the ephemeral range: no port-0 socket elsewhere takes one).
        let mut pool = PortPool::new(23200, 23208).with_reserve(25);
        let held: Vec<Pair> = (0..3).map(|_| pool.allocate(ip, false).unwrap()).collect();
        let refused = pool.allocate(ip, false).unwrap_err();
        assert!(refused.to_string().contains("emergency"), "{refused}");
        let sos = pool.allocate(ip, true).unwrap();
        assert!(pool.allocate(ip, true).is_err(), "nothing left at all");
        assert_eq!(pool.in_use(), 4);
        // One pair freed while the emergency call holds its own: that one
        // is the reserve again; once that call ends too, ordinary calls
        // have a pair.
        let port = held[0].rtp.local_addr().unwrap().port();
        pool.release(ip, port);
        drop(held);
        assert!(pool.allocate(ip, false).is_err());
        pool.release(ip, sos.rtp.local_addr().unwrap().port());
        drop(sos);
        assert!(pool.allocate(ip, false).is_ok());
        // Any share keeps at least one pair; none keeps none.
        assert_eq!(PortPool::new(41300, 41400).with_reserve(1).reserve, 1);
        assert_eq!(PortPool::new(41300, 41400).with_reserve(0).reserve, 0);
    }

    #[test]
    fn exhaustion_is_an_error_not_a_hang() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let mut pool = PortPool::new(41100, 41103);
        let _a = pool.allocate(ip, false).unwrap();
        let _b = pool.allocate(ip, false).unwrap();
        assert!(pool.allocate(ip, false).is_err());
    }
}
