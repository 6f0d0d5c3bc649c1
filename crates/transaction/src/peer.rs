//! Where messages come from and go to: transports, peers, datagrams to send.

use std::fmt;
use std::net::SocketAddr;

use bytes::Bytes;

/// A SIP transport (RFC 3261 §18).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Transport {
    /// UDP: unreliable, so requests and non-2xx INVITE finals are retransmitted.
    Udp,
    /// TCP: reliable stream.
    Tcp,
    /// TLS over TCP: reliable stream.
    Tls,
}

impl Transport {
    /// True for stream transports, on which Timers A, E and G are never set
    /// and Timers D, I, J and K are zero (RFC 3261 §17).
    pub fn is_reliable(self) -> bool {
        !matches!(self, Transport::Udp)
    }

    /// The Via transport token (`UDP`, `TCP`, `TLS`).
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The other end of a hop: its address, the transport, for a stream the
/// connection a message came in on (so that responses go back on it, RFC 3261
/// §18.2.2), and for a message the TU sends on its own account the identity
/// it is sent as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Peer {
    /// Remote address: the source of a received message, or where to send.
    pub addr: SocketAddr,
    /// Transport.
    pub transport: Transport,
    /// Connection id assigned by the transport layer for a stream message;
    /// `None` for UDP, or when sending lets the transport pick or open one.
    pub conn: Option<u64>,
    /// The outbound identity a request is sent as: the B2BUA puts its trunk
    /// index here, and the shell keeps stream connections (and their TLS
    /// client certificate) per (address, transport, identity), so two
    /// trunks facing one address (Teams and ACS toward the same Microsoft
    /// proxy) never share a connection. `None` for what was received and
    /// for sending where no identity matters; a connection the shell opened
    /// for an identity reports it on every message it receives.
    pub trunk: Option<u16>,
}

impl Peer {
    /// A peer with no connection id.
    pub fn new(addr: SocketAddr, transport: Transport) -> Peer {
        Peer {
            addr,
            transport,
            conn: None,
            trunk: None,
        }
    }

    /// The same peer reached as trunk `trunk` (an index beyond `u16` names
    /// no identity).
    pub fn for_trunk(self, trunk: usize) -> Peer {
        Peer {
            trunk: u16::try_from(trunk).ok(),
            ..self
        }
    }

    /// The same peer on connection `conn`.
    pub fn with_conn(self, conn: u64) -> Peer {
        Peer {
            conn: Some(conn),
            ..self
        }
    }

    /// True when a transport failure reported for `failed` concerns messages
    /// sent to `self`: same address and transport, the same connection
    /// unless `failed` names none (then any connection to that address), and
    /// the same identity unless `failed` names none (then any: a UDP port
    /// that is gone is gone for everyone).
    pub fn affected_by(&self, failed: &Peer) -> bool {
        self.addr == failed.addr
            && self.transport == failed.transport
            && (failed.conn.is_none() || failed.conn == self.conn)
            && (failed.trunk.is_none() || failed.trunk == self.trunk)
    }
}

/// Bytes for the transport layer to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Destination (with the connection to use, for streams).
    pub to: Peer,
    /// One complete SIP message.
    pub bytes: Bytes,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transport_error_scope() {
        let a: SocketAddr = "192.0.2.1:5061".parse().unwrap();
        let on3 = Peer::new(a, Transport::Tls).with_conn(3);
        assert!(on3.affected_by(&Peer::new(a, Transport::Tls)));
        assert!(on3.affected_by(&Peer::new(a, Transport::Tls).with_conn(3)));
        assert!(!on3.affected_by(&Peer::new(a, Transport::Tls).with_conn(4)));
        assert!(!on3.affected_by(&Peer::new(a, Transport::Tcp)));
        // Two identities toward one address: a failure of one is not the other's.
        let teams = Peer::new(a, Transport::Tls).for_trunk(1);
        let acs = Peer::new(a, Transport::Tls).for_trunk(2);
        assert!(teams.affected_by(&teams));
        assert!(!acs.affected_by(&teams));
        assert!(acs.affected_by(&Peer::new(a, Transport::Tls)));
        assert!(!Peer::new(a, Transport::Tls).affected_by(&teams));
        assert!(!Transport::Udp.is_reliable());
        assert!(Transport::Tcp.is_reliable() && Transport::Tls.is_reliable());
    }
}
