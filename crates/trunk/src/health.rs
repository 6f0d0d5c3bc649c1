//! The OPTIONS health machine of one trunk's peers.
//!
//! Every peer starts `Unknown` (usable, in configured order). An OPTIONS is
//! due for each peer every `interval`; a final response counts as a success
//! unless its code is a configured failure code; a failure code, a timeout
//! (no final within `timeout`), a transport or TLS failure count as failures.
//! `down_after` consecutive failures take a peer down, `up_after`
//! consecutive successes bring it up (AudioCodes proxy-set semantics).

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use transaction::Transport;

use crate::spec::{bracket, transport_param, OptionsSpec, TrunkSpec, ALLOW};

/// Why a peer could not be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// No final response in time (the health timeout or the transaction's Timer F).
    Timeout,
    /// The connection could not be opened or broke (TCP refused, ICMP unreachable).
    Transport,
    /// The TLS handshake failed (certificate refused either way, protocol error).
    Tls,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Failure::Timeout => "timeout",
            Failure::Transport => "transport failure",
            Failure::Tls => "TLS failure",
        })
    }
}

/// The health of one peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerState {
    /// Not proven either way yet: used, in configured order.
    Unknown,
    /// Up: answered `up_after` OPTIONS in a row.
    Up,
    /// Down, with the reason of the last failure (`timeout`, `503`, …):
    /// tried only after every other peer.
    Down(String),
}

impl PeerState {
    /// True when the peer is down.
    pub fn is_down(&self) -> bool {
        matches!(self, PeerState::Down(_))
    }
}

/// A peer went up or down (for logs and metrics).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthChange {
    /// Index of the peer in the trunk's peer list.
    pub peer: usize,
    /// The peer's host.
    pub host: String,
    /// True: it is up now; false: down.
    pub up: bool,
    /// What decided it (`200 OK x2`, `timeout`, `503`, `TLS failure`).
    pub reason: String,
}

/// An OPTIONS to send now.
#[derive(Debug, Clone)]
pub struct Ping {
    /// Index of the peer in the trunk's peer list (where to send it: its
    /// `addr`, or its `host` resolved; over its `transport`).
    pub peer: usize,
    /// The complete request.
    pub msg: sip::Message,
}

#[derive(Debug, Clone)]
struct PeerHealth {
    host: String,
    port: u16,
    transport: Transport,
    state: PeerState,
    successes: u32,
    failures: u32,
    /// When the next OPTIONS is due.
    due: Instant,
    /// The deadline of the OPTIONS in flight.
    pending: Option<Instant>,
}

/// OPTIONS health of one trunk's peers. Sans-IO: `now` is always an input,
/// the OPTIONS come out of [`Health::poll_ping`], the outcomes go in through
/// [`Health::on_response`] and [`Health::on_failure`].
#[derive(Debug)]
pub struct Health {
    options: OptionsSpec,
    fqdn: String,
    local_port: u16,
    contact_transport: Transport,
    x_ms_sbc: Option<String>,
    user_agent: String,
    peers: Vec<PeerHealth>,
    seed: u64,
    counter: u64,
    cseq: u32,
    changes: VecDeque<HealthChange>,
}

/// SplitMix64: spreads seed + counter over 64 bits, so that branches, tags
/// and Call-IDs differ between instances and between pings.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Health {
    /// The health of `spec`'s peers; `seed` makes this instance's branches,
    /// tags and Call-IDs unique (take it from the runtime's randomness; the
    /// trunk's name is folded in, so one seed may serve every trunk).
    /// With OPTIONS enabled the first pings are due at `now`.
    pub fn new(spec: &TrunkSpec, seed: u64, now: Instant) -> Health {
        Health {
            options: spec.options.clone(),
            fqdn: spec.fqdn.clone(),
            local_port: spec.local_port,
            contact_transport: spec.transport,
            x_ms_sbc: spec.headers.x_ms_sbc.clone(),
            user_agent: spec.headers.user_agent.clone(),
            peers: spec
                .peers
                .iter()
                .map(|p| PeerHealth {
                    host: p.host.clone(),
                    port: p.port,
                    transport: p.transport,
                    state: PeerState::Unknown,
                    successes: 0,
                    failures: 0,
                    due: now,
                    pending: None,
                })
                .collect(),
            seed: mix(seed ^ fnv(&spec.name)),
            counter: 0,
            cseq: 0,
            changes: VecDeque::new(),
        }
    }

    /// An OPTIONS due now for one peer, if any (call until `None`). Also
    /// counts pings whose `timeout` has passed as failures.
    pub fn poll_ping(&mut self, now: Instant) -> Option<Ping> {
        self.expire(now);
        if !self.options.enabled {
            return None;
        }
        let peer = self
            .peers
            .iter()
            .position(|p| p.pending.is_none() && p.due <= now)?;
        let msg = self.build(peer);
        let interval = self.options.interval.max(Duration::from_millis(1));
        let p = &mut self.peers[peer];
        p.pending = Some(now + self.options.timeout);
        // Keep the cadence; after a long pause do not fire a burst.
        p.due = (p.due + interval).max(now);
        Some(Ping { peer, msg })
    }

    fn expire(&mut self, now: Instant) {
        for i in 0..self.peers.len() {
            if self.peers[i].pending.is_some_and(|d| d <= now) {
                self.peers[i].pending = None;
                self.failure(i, Failure::Timeout.to_string());
            }
        }
    }

    /// When [`Health::poll_ping`] has something to do next: the next ping
    /// due or the next ping deadline. `None` when OPTIONS are off.
    pub fn next_wakeup(&self) -> Option<Instant> {
        if !self.options.enabled {
            return None;
        }
        self.peers.iter().map(|p| p.pending.unwrap_or(p.due)).min()
    }

    /// A final response to the OPTIONS in flight to `peer`. A configured
    /// failure code counts as a failure, any other final as a success.
    /// Provisional responses and responses with no ping in flight (late,
    /// after the ping was already counted as timed out) are ignored.
    pub fn on_response(&mut self, now: Instant, peer: usize, status: u16) {
        let _ = now;
        if status < 200 {
            return;
        }
        let Some(p) = self.peers.get_mut(peer) else {
            return;
        };
        if p.pending.take().is_none() {
            return;
        }
        if self.options.failure_codes.contains(&status) {
            self.failure(peer, status.to_string());
        } else {
            self.success(peer, status);
        }
    }

    /// `peer` could not be reached. Ends the OPTIONS in flight, if any, as a
    /// failure. With no ping in flight a transport or TLS failure (of a call's
    /// connection, say) still counts, a timeout does not (the ping was
    /// already counted, or it was a call's transaction).
    pub fn on_failure(&mut self, now: Instant, peer: usize, why: Failure) {
        let _ = now;
        let Some(p) = self.peers.get_mut(peer) else {
            return;
        };
        let had_ping = p.pending.take().is_some();
        if had_ping || why != Failure::Timeout {
            self.failure(peer, why.to_string());
        }
    }

    fn success(&mut self, peer: usize, status: u16) {
        let up_after = self.options.up_after.max(1);
        let p = &mut self.peers[peer];
        p.failures = 0;
        p.successes = p.successes.saturating_add(1);
        if p.state != PeerState::Up && p.successes >= up_after {
            p.state = PeerState::Up;
            let reason = if up_after > 1 {
                format!("{status} x{}", p.successes)
            } else {
                status.to_string()
            };
            self.changes.push_back(HealthChange {
                peer,
                host: p.host.clone(),
                up: true,
                reason,
            });
        }
    }

    fn failure(&mut self, peer: usize, reason: String) {
        let down_after = self.options.down_after.max(1);
        let p = &mut self.peers[peer];
        p.successes = 0;
        p.failures = p.failures.saturating_add(1);
        match &mut p.state {
            PeerState::Down(r) => *r = reason,
            _ if p.failures >= down_after => {
                p.state = PeerState::Down(reason.clone());
                self.changes.push_back(HealthChange {
                    peer,
                    host: p.host.clone(),
                    up: false,
                    reason,
                });
            }
            _ => {}
        }
    }

    /// The health of `peer` (`Unknown` for an index out of range).
    pub fn state(&self, peer: usize) -> PeerState {
        self.peers
            .get(peer)
            .map_or(PeerState::Unknown, |p| p.state.clone())
    }

    /// The peers to try: those not down in configured order, then the down
    /// ones in configured order (a down peer is still better than nothing).
    pub fn order(&self) -> Vec<usize> {
        let mut up: Vec<usize> = Vec::with_capacity(self.peers.len());
        let mut down = Vec::new();
        for (i, p) in self.peers.iter().enumerate() {
            if p.state.is_down() {
                down.push(i);
            } else {
                up.push(i);
            }
        }
        up.extend(down);
        up
    }

    /// True when at least one peer is not down.
    pub fn any_usable(&self) -> bool {
        self.peers.iter().any(|p| !p.state.is_down())
    }

    /// The next up/down change, for logs and metrics.
    pub fn poll_change(&mut self) -> Option<HealthChange> {
        self.changes.pop_front()
    }

    fn unique(&mut self) -> u64 {
        self.counter += 1;
        mix(self.seed ^ mix(self.counter))
    }

    fn build(&mut self, peer: usize) -> sip::Message {
        let (branch, tag, call_id) = (self.unique(), self.unique(), self.unique());
        self.cseq = self.cseq.wrapping_add(1).max(1);
        let p = &self.peers[peer];
        let host = bracket(&p.host);
        let fqdn = bracket(&self.fqdn);
        let lp = self.local_port;
        let uri = format!(
            "sip:{host}:{};transport={}",
            p.port,
            transport_param(p.transport)
        );
        let mut headers: Vec<(&str, String)> = vec![
            (
                "Via",
                format!(
                    "SIP/2.0/{} {fqdn}:{lp};branch=z9hG4bK{branch:016x}",
                    p.transport.as_str()
                ),
            ),
            ("Max-Forwards", "70".to_owned()),
            ("From", format!("<sip:{fqdn}:{lp}>;tag={tag:016x}")),
            ("To", format!("<sip:{host}:{}>", p.port)),
            ("Call-ID", format!("{call_id:016x}@{}", self.fqdn)),
            ("CSeq", format!("{} OPTIONS", self.cseq)),
            (
                "Contact",
                format!(
                    "<sip:{fqdn}:{lp};transport={}>",
                    transport_param(self.contact_transport)
                ),
            ),
            ("Allow", ALLOW.to_owned()),
        ];
        if let Some(x) = &self.x_ms_sbc {
            headers.push(("X-MS-SBC", x.clone()));
        }
        headers.push(("User-Agent", self.user_agent.clone()));
        headers.push(("Content-Length", "0".to_owned()));
        build_request("OPTIONS", &uri, &headers)
    }
}

/// Builds a request from configuration-derived text. A header value the sip
/// crate refuses (the configuration loader refuses such text first) is left
/// out rather than failing the ping.
fn build_request(method: &str, uri: &str, headers: &[(&str, String)]) -> sip::Message {
    let mut m = sip::Message::new_request(method, uri.as_bytes())
        // A peer host that does not form a URI (refused by the configuration
        // loader) makes a ping that fails visibly instead of a panic.
        .or_else(|_| sip::Message::new_request(method, b"sip:invalid.invalid"))
        .expect("constant OPTIONS request line"); // cannot fire: constant method and URI
    for (name, value) in headers {
        let _ = m.push_header(name, value.as_bytes());
    }
    m
}

/// FNV-1a of a text, to fold a trunk's name into its seed.
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
