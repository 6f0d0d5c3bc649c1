//! The virtual network: nodes (one endpoint each), packets in flight, the
//! virtual clock, and the record of what happened.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sip::Message;
use transaction::{
    ClientKey, Config, Endpoint, Event, Input, Peer, Rng, ServerKey, Transmit, Transport, TxError,
};

/// How the network treats packets. Loss, duplication and reordering apply
/// to UDP only: TCP and TLS are reliable, ordered streams (a send to an
/// address nobody listens on fails with a transport error instead).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NetConfig {
    /// One-way delay of every packet.
    pub latency: Duration,
    /// Extra delay, uniform in [0, jitter], per packet.
    pub jitter: Duration,
    /// Probability that a UDP packet is lost.
    pub loss: f64,
    /// Probability that a UDP packet arrives twice.
    pub duplicate: f64,
    /// Probability that a UDP packet is held back by up to `reorder_delay`
    /// (so later packets overtake it).
    pub reorder: f64,
    /// The extra delay of a reordered packet, at most.
    pub reorder_delay: Duration,
}

impl Default for NetConfig {
    /// A clean network: 10 ms one way, nothing lost, nothing reordered.
    fn default() -> Self {
        NetConfig {
            latency: Duration::from_millis(10),
            jitter: Duration::ZERO,
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            reorder_delay: Duration::ZERO,
        }
    }
}

impl NetConfig {
    /// A bad network: `loss` of UDP packets lost, 5 % duplicated, 10 %
    /// reordered by up to 200 ms, 10–30 ms one way.
    pub fn lossy(loss: f64) -> NetConfig {
        NetConfig {
            latency: Duration::from_millis(10),
            jitter: Duration::from_millis(20),
            loss,
            duplicate: 0.05,
            reorder: 0.1,
            reorder_delay: Duration::from_millis(200),
        }
    }
}

/// A node of the simulation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(usize);

impl NodeId {
    pub(crate) fn new(i: usize) -> NodeId {
        NodeId(i)
    }

    pub(crate) fn index(self) -> usize {
        self.0
    }
}

/// An event an endpoint produced, with the virtual time it happened at.
#[derive(Debug, Clone)]
pub struct Logged {
    /// Virtual time since the simulation started.
    pub at: Duration,
    /// The event.
    pub event: Event,
}

/// What became of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Arrives after this much time in flight (a duplicate is a second
    /// record with its own delay).
    Delivered(Duration),
    /// Lost by the network (UDP).
    Lost,
    /// Dropped by a test's filter.
    Filtered,
    /// No node at that address: a UDP datagram vanishes, a stream send
    /// fails with a transport error reported to the sender.
    Unreachable,
}

/// One message put on the wire.
#[derive(Debug, Clone)]
pub struct Packet {
    /// Virtual time it was sent at.
    pub sent: Duration,
    /// Sender address.
    pub from: SocketAddr,
    /// Destination address.
    pub to: SocketAddr,
    /// Transport.
    pub transport: Transport,
    /// The bytes.
    pub bytes: Bytes,
    /// What became of it.
    pub fate: Fate,
}

impl Packet {
    /// The start line (`INVITE sip:… SIP/2.0`, `SIP/2.0 180 Ringing`).
    pub fn first_line(&self) -> String {
        let end = self
            .bytes
            .iter()
            .position(|&c| c == b'\r' || c == b'\n')
            .unwrap_or(self.bytes.len());
        String::from_utf8_lossy(&self.bytes[..end]).into_owned()
    }

    /// True for a request with this method.
    pub fn is_request(&self, method: &str) -> bool {
        self.first_line().starts_with(&format!("{method} "))
    }

    /// The status code of a response.
    pub fn status(&self) -> Option<u16> {
        let line = self.first_line();
        line.strip_prefix("SIP/2.0 ")?.get(..3)?.parse().ok()
    }

    /// The CSeq method (of a request or response).
    pub fn cseq_method(&self) -> Option<String> {
        let m = Message::parse(self.bytes.clone()).ok()?;
        m.cseq().ok().map(|c| c.method.to_owned())
    }

    /// True unless the network or a filter dropped it.
    pub fn delivered(&self) -> bool {
        matches!(self.fate, Fate::Delivered(_))
    }
}

struct Node {
    name: String,
    addr: SocketAddr,
    endpoint: Endpoint,
    log: Vec<Logged>,
    read: usize,
}

enum Delivery {
    Message {
        node: usize,
        bytes: Bytes,
        from: Peer,
    },
    TransportError {
        node: usize,
        to: Peer,
    },
}

type Filter = Box<dyn FnMut(&Packet) -> bool>;

/// A seeded simulation of endpoints on a virtual network.
pub struct Sim {
    rng: Rng,
    net: NetConfig,
    epoch: Instant,
    now: Instant,
    nodes: Vec<Node>,
    in_flight: BTreeMap<(Instant, u64), Delivery>,
    seq: u64,
    packets: Vec<Packet>,
    /// Last delivery time per directed stream, to keep streams in order.
    stream_tail: BTreeMap<(SocketAddr, SocketAddr), Instant>,
    /// Connection ids per unordered address pair.
    conns: BTreeMap<(SocketAddr, SocketAddr), u64>,
    filter: Option<Filter>,
    unparsable: usize,
}

impl fmt::Debug for Sim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sim")
            .field("elapsed", &self.elapsed())
            .field(
                "nodes",
                &self.nodes.iter().map(|n| &n.name).collect::<Vec<_>>(),
            )
            .field("in_flight", &self.in_flight.len())
            .field("packets", &self.packets.len())
            .finish()
    }
}

impl Sim {
    /// An empty world whose randomness all comes from `seed`.
    pub fn new(seed: u64, net: NetConfig) -> Sim {
        // The one clock read: an origin for virtual time (Instant has no
        // other constructor). Nothing depends on its value.
        let epoch = Instant::now();
        Sim {
            rng: Rng::new(seed),
            net,
            epoch,
            now: epoch,
            nodes: Vec::new(),
            in_flight: BTreeMap::new(),
            seq: 0,
            packets: Vec::new(),
            stream_tail: BTreeMap::new(),
            conns: BTreeMap::new(),
            filter: None,
            unparsable: 0,
        }
    }

    /// Adds a node at `addr` with an endpoint using RFC 3261 default timers.
    ///
    /// # Panics
    /// When `addr` does not parse (a typo in a test).
    pub fn add_node(&mut self, name: &str, addr: &str) -> NodeId {
        let seed = self.rng.next_u64();
        self.add_node_with(
            name,
            addr,
            Config {
                seed,
                ..Config::default()
            },
        )
    }

    /// Adds a node with its own endpoint configuration.
    ///
    /// # Panics
    /// When `addr` does not parse, or is taken.
    pub fn add_node_with(&mut self, name: &str, addr: &str, cfg: Config) -> NodeId {
        let addr: SocketAddr = addr.parse().expect("node address"); // a test's literal
        assert!(
            self.nodes.iter().all(|n| n.addr != addr),
            "address {addr} taken"
        );
        self.nodes.push(Node {
            name: name.to_owned(),
            addr,
            endpoint: Endpoint::new(cfg),
            log: Vec::new(),
            read: 0,
        });
        NodeId(self.nodes.len() - 1)
    }

    /// Changes the network behaviour from now on.
    pub fn set_net(&mut self, net: NetConfig) {
        self.net = net;
    }

    /// Drops every packet for which `drop` returns true (before loss is
    /// applied), e.g. "the first 200 OK". Replaces any earlier filter.
    pub fn set_filter(&mut self, drop: impl FnMut(&Packet) -> bool + 'static) {
        self.filter = Some(Box::new(drop));
    }

    /// Removes the filter.
    pub fn clear_filter(&mut self) {
        self.filter = None;
    }

    /// Current virtual time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Virtual time since the start.
    pub fn elapsed(&self) -> Duration {
        self.now - self.epoch
    }

    /// The node's address.
    pub fn addr(&self, node: NodeId) -> SocketAddr {
        self.nodes[node.0].addr
    }

    /// How `from` reaches `to` over `transport`.
    pub fn peer(&self, to: NodeId, transport: Transport) -> Peer {
        Peer::new(self.addr(to), transport)
    }

    /// The node's endpoint (to inspect states, or act on it directly; call
    /// it with [`Sim::now`]).
    pub fn endpoint(&mut self, node: NodeId) -> &mut Endpoint {
        &mut self.nodes[node.0].endpoint
    }

    /// A minimal request from `from` to `to` (see [`crate::request`]).
    pub fn request(
        &self,
        from: NodeId,
        to: NodeId,
        method: &str,
        transport: Transport,
        branch: &str,
    ) -> Message {
        crate::request(method, self.addr(from), self.addr(to), transport, branch)
    }

    /// `from` starts a client transaction for `msg` towards `to`.
    pub fn send_request(
        &mut self,
        from: NodeId,
        to: NodeId,
        msg: Message,
        transport: Transport,
    ) -> Result<ClientKey, TxError> {
        let peer = self.peer(to, transport);
        let now = self.now;
        let r = self.nodes[from.0].endpoint.send_request(now, msg, peer);
        self.flush();
        r
    }

    /// `node` answers its server transaction `key`.
    pub fn respond(
        &mut self,
        node: NodeId,
        key: ServerKey,
        response: Message,
    ) -> Result<(), TxError> {
        let now = self.now;
        let r = self.nodes[node.0].endpoint.respond(now, key, response);
        self.flush();
        r
    }

    /// `node` cancels its INVITE client transaction `key`.
    pub fn cancel(&mut self, node: NodeId, key: ClientKey) -> Result<ClientKey, TxError> {
        let now = self.now;
        let r = self.nodes[node.0].endpoint.cancel(now, key);
        self.flush();
        r
    }

    /// `node` sends `msg` outside any transaction (an ACK for a 2xx).
    pub fn send_stateless(&mut self, node: NodeId, msg: &Message, to: Peer) {
        self.nodes[node.0].endpoint.send_stateless(msg, to);
        self.flush();
    }

    /// `node` puts `bytes` on the wire to `to` with no transaction at all:
    /// a stateless or RFC 2543 element, a retransmission by hand, garbage.
    pub fn send_raw(&mut self, node: NodeId, to: Peer, bytes: Bytes) {
        self.route(node.0, Transmit { to, bytes });
        self.flush();
    }

    /// Every event `node` produced so far, read or not.
    pub fn events(&self, node: NodeId) -> &[Logged] {
        &self.nodes[node.0].log
    }

    /// The events of `node` not yet taken by [`Sim::take_events`] or
    /// [`Sim::next_event`]; marks them taken.
    pub fn take_events(&mut self, node: NodeId) -> Vec<Event> {
        let n = &mut self.nodes[node.0];
        let out = n.log[n.read..].iter().map(|l| l.event.clone()).collect();
        n.read = n.log.len();
        out
    }

    /// Every packet sent so far.
    pub fn packets(&self) -> &[Packet] {
        &self.packets
    }

    /// Delivered messages that did not parse (the endpoints never write any).
    pub fn unparsable(&self) -> usize {
        self.unparsable
    }

    /// Runs until `node` has an event not yet taken and returns it, or
    /// `None` when nothing happens any more or `limit` of virtual time has
    /// passed first.
    pub fn next_event(&mut self, node: NodeId, limit: Duration) -> Option<Event> {
        let deadline = self.now + limit;
        loop {
            let n = &mut self.nodes[node.0];
            if let Some(l) = n.log.get(n.read) {
                n.read += 1;
                return Some(l.event.clone());
            }
            if !self.step_until(deadline) {
                return None;
            }
        }
    }

    /// Runs for `d` of virtual time (stops early only when nothing at all
    /// is pending); afterwards `elapsed()` has grown by exactly `d`.
    pub fn run_for(&mut self, d: Duration) {
        let deadline = self.now + d;
        while self.step_until(deadline) {}
        self.now = self.now.max(deadline);
    }

    /// Runs until nothing is in flight and no endpoint has a timer, or
    /// `limit` has passed. Returns true when idle.
    pub fn run_until_idle(&mut self, limit: Duration) -> bool {
        let deadline = self.now + limit;
        while self.step_until(deadline) {}
        self.next_happening().is_none()
    }

    /// Processes the next happening (a delivery or a timer) if it is due
    /// by `deadline`. Returns false when there is none.
    pub fn step_until(&mut self, deadline: Instant) -> bool {
        self.flush();
        let Some(at) = self.next_happening() else {
            return false;
        };
        if at > deadline {
            return false;
        }
        self.now = self.now.max(at);
        let now = self.now;
        let first = self.in_flight.first_key_value().map(|(k, _)| *k);
        match first {
            Some(k) if k.0 <= now => {
                if let Some(d) = self.in_flight.remove(&k) {
                    self.deliver(d);
                }
            }
            _ => {
                for n in &mut self.nodes {
                    if n.endpoint.poll_timeout().is_some_and(|t| t <= now) {
                        n.endpoint.handle(now, Input::Timeout);
                    }
                }
            }
        }
        self.flush();
        true
    }

    fn next_happening(&self) -> Option<Instant> {
        let delivery = self.in_flight.first_key_value().map(|((at, _), _)| *at);
        let timer = self
            .nodes
            .iter()
            .filter_map(|n| n.endpoint.poll_timeout())
            .min();
        match (delivery, timer) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn deliver(&mut self, d: Delivery) {
        let now = self.now;
        match d {
            Delivery::Message { node, bytes, from } => match Message::parse(bytes) {
                Ok(msg) => self.nodes[node]
                    .endpoint
                    .handle(now, Input::Receive { msg, from }),
                Err(_) => self.unparsable += 1,
            },
            Delivery::TransportError { node, to } => {
                self.nodes[node]
                    .endpoint
                    .handle(now, Input::TransportError { to });
            }
        }
    }

    /// Moves every endpoint's transmits onto the network and its events
    /// into the log.
    fn flush(&mut self) {
        for i in 0..self.nodes.len() {
            while let Some(t) = self.nodes[i].endpoint.poll_transmit() {
                self.route(i, t);
            }
            let at = self.elapsed();
            let n = &mut self.nodes[i];
            while let Some(event) = n.endpoint.poll_event() {
                n.log.push(Logged { at, event });
            }
        }
    }

    fn schedule(&mut self, at: Instant, d: Delivery) {
        self.seq += 1;
        self.in_flight.insert((at, self.seq), d);
    }

    fn conn_id(&mut self, a: SocketAddr, b: SocketAddr) -> u64 {
        let pair = if a <= b { (a, b) } else { (b, a) };
        let next = self.conns.len() as u64 + 1;
        *self.conns.entry(pair).or_insert(next)
    }

    fn route(&mut self, from_node: usize, t: Transmit) {
        let src = self.nodes[from_node].addr;
        let transport = t.to.transport;
        let mut packet = Packet {
            sent: self.elapsed(),
            from: src,
            to: t.to.addr,
            transport,
            bytes: t.bytes.clone(),
            fate: Fate::Lost,
        };
        if let Some(f) = &mut self.filter {
            if f(&packet) {
                packet.fate = Fate::Filtered;
                self.packets.push(packet);
                return;
            }
        }
        let dst = self.nodes.iter().position(|n| n.addr == t.to.addr);
        let base = self.net.latency + self.rng.up_to(self.net.jitter);
        let Some(dst) = dst else {
            packet.fate = Fate::Unreachable;
            self.packets.push(packet);
            if transport.is_reliable() {
                // Connection refused, reported back after a round trip.
                let at = self.now + base * 2;
                self.schedule(
                    at,
                    Delivery::TransportError {
                        node: from_node,
                        to: t.to,
                    },
                );
            }
            return;
        };
        let mut from = Peer::new(src, transport);
        if transport.is_reliable() {
            from.conn = Some(self.conn_id(src, t.to.addr));
            let tail = self.stream_tail.entry((src, t.to.addr)).or_insert(self.now);
            let at = (self.now + base).max(*tail);
            *tail = at;
            packet.fate = Fate::Delivered(at - self.now);
            self.packets.push(packet);
            self.schedule(
                at,
                Delivery::Message {
                    node: dst,
                    bytes: t.bytes,
                    from,
                },
            );
            return;
        }
        if self.rng.chance(self.net.loss) {
            self.packets.push(packet);
            return;
        }
        let copies = if self.rng.chance(self.net.duplicate) {
            2
        } else {
            1
        };
        for copy in 0..copies {
            let mut delay = if copy == 0 {
                base
            } else {
                self.net.latency + self.rng.up_to(self.net.jitter)
            };
            if self.rng.chance(self.net.reorder) {
                delay += self.rng.up_to(self.net.reorder_delay);
            }
            let mut p = packet.clone();
            p.fate = Fate::Delivered(delay);
            self.packets.push(p);
            let at = self.now + delay;
            let bytes = t.bytes.clone();
            self.schedule(
                at,
                Delivery::Message {
                    node: dst,
                    bytes,
                    from,
                },
            );
        }
    }
}
