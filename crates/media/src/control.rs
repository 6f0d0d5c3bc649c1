//! The control vocabulary between a call core and a media relay: what a
//! session's legs are made of, which local ports they got, what the relay
//! is asked to change, and what a leg counted. Plain data; the relay crate
//! acts on it, the B2BUA writes it (without depending on the relay).

use std::net::{IpAddr, SocketAddr};

pub use crate::payload::{PayloadFormat, PayloadSpec, PtMap};
use crate::tone::{Tone, G711};
use crate::SrtpPolicy;

/// SRTP keys of a leg; `None` on a side means plain RTP.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CryptoSpec {
    /// What the party sends us is SRTP with this policy (from its `a=crypto`).
    pub rx: Option<SrtpPolicy>,
    /// What we send the party is SRTP with this policy (our `a=crypto` to it).
    pub tx: Option<SrtpPolicy>,
}

/// One side of a session, as the control side describes it.
#[derive(Debug, Clone, Default)]
pub struct LegSpec {
    /// Interface index (into the relay's configured interfaces).
    pub interface: usize,
    /// Where the party wants to receive RTP (from its SDP), if known yet.
    pub remote_rtp: Option<SocketAddr>,
    /// Where it wants RTCP (`a=rtcp`, or RTP port + 1), if known.
    pub remote_rtcp: Option<SocketAddr>,
    /// RTCP multiplexed on the RTP port (RFC 5761) toward this party.
    pub rtcp_mux: bool,
    /// Accept packets only from the SDP address (no latching).
    pub strict_source: bool,
    /// SRTP keys: what this party sends us (we unprotect) and what we send it (we protect).
    pub crypto: CryptoSpec,
    /// What the party's stream carries (its payload types from its SDP;
    /// default: not known yet). The relay renumbers payload types between
    /// the two legs from both sides' formats ([`PtMap::between`]).
    pub payload: PayloadSpec,
}

/// Which leg of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The first leg (the offerer in rtpengine terms).
    A,
    /// The second leg.
    B,
}

impl Side {
    /// 0 for A, 1 for B.
    pub fn index(self) -> usize {
        match self {
            Side::A => 0,
            Side::B => 1,
        }
    }
}

/// The local ports of a leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LegPorts {
    /// Local RTP address (bound).
    pub rtp: SocketAddr,
    /// Local RTCP address (bound; unused when rtcp-mux).
    pub rtcp: SocketAddr,
    /// Address to write into SDP.
    pub advertised: IpAddr,
}

/// A session as created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionInfo {
    /// Session id.
    pub id: u64,
    /// Leg A's local ports (where party A sends).
    pub a: LegPorts,
    /// Leg B's local ports (where party B sends).
    pub b: LegPorts,
}

/// A change the call core asks of the relay. Nothing waits for it: the
/// core goes on at once, the relay applies it in order.
#[derive(Debug, Clone, PartialEq)]
pub enum MediaOp {
    /// Re-points one leg: its remote addresses (`None` keeps them) and its
    /// keys (`None` keeps them; new keys start fresh SRTP contexts, ROC 0).
    /// `rtcp_mux`, when set, switches RTCP multiplexing toward the party.
    Update {
        /// Session id.
        id: u64,
        /// Which leg.
        side: Side,
        /// New remote RTP address.
        remote_rtp: Option<SocketAddr>,
        /// New remote RTCP address.
        remote_rtcp: Option<SocketAddr>,
        /// New keys.
        crypto: Option<CryptoSpec>,
        /// RTCP multiplexing toward the party, when it changes.
        rtcp_mux: Option<bool>,
    },
    /// Starts (`Some`) or stops (`None`) a tone toward the party of one
    /// leg: 20 ms G.711 packets with a sequence number, timestamp and SSRC
    /// of their own (marker bit on the first), SRTP-protected when the leg
    /// is SRTP, sent to the leg's remote address. A new tone replaces the
    /// one playing. The relay stops it by itself once RTP from the other
    /// leg flows toward the party (early media takes over) and when the
    /// session is deleted.
    Tone {
        /// Session id.
        id: u64,
        /// Which leg's party hears it.
        side: Side,
        /// What to play; `None` stops it.
        tone: Option<ToneSpec>,
    },
    /// What one leg's party now declares for its stream (from its new SDP):
    /// its payload types, or a stream that is not RTP (T.38). The relay
    /// derives both directions' payload-type maps again from this side and
    /// the other side's last one, so that whichever dialog is the leg's
    /// party now (a fork, a failover, a transfer) it is the one in force.
    Payload {
        /// Session id.
        id: u64,
        /// Which leg.
        side: Side,
        /// What the party declared.
        spec: PayloadSpec,
    },
    /// Releases a session (its statistics arrive later, from the relay).
    Delete {
        /// Session id.
        id: u64,
    },
}

/// A tone for one party: what it sounds like and how the party was
/// offered G.711.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToneSpec {
    /// Frequencies and cadence.
    pub tone: Tone,
    /// µ-law or A-law.
    pub law: G711,
    /// The RTP payload type the party uses for it (0 and 8 are the static
    /// ones; an `a=rtpmap` may give another).
    pub payload_type: u8,
}

/// What one leg received (counted where the packet arrived).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LegStats {
    /// RTP packets received and forwarded.
    pub packets: u64,
    /// Bytes received (as on the wire).
    pub bytes: u64,
    /// RTCP packets received and forwarded.
    pub rtcp_packets: u64,
    /// SRTP/SRTCP packets that failed authentication (dropped).
    pub auth_failures: u64,
    /// SRTP packets refused as replays (dropped).
    pub replays: u64,
    /// Packets from an address other than the expected one in strict mode (dropped).
    pub wrong_source: u64,
    /// Packets that could not be forwarded (no destination yet, send error, malformed).
    pub dropped: u64,
    /// Packets lost, from RTP sequence numbers (expected − received, never negative).
    pub lost: u64,
    /// RFC 3550 interarrival jitter, in RTP timestamp units.
    pub jitter: f64,
    /// SSRC changes seen.
    pub ssrc_changes: u64,
    /// Seconds since the last packet at the time of the query (`None`: none yet).
    pub idle_secs: Option<f64>,
}
