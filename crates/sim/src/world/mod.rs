//! The whole SBC call core in virtual time: the real [`B2bua`] (with its
//! transaction endpoint, trunk health, routing plan and timers), a relay
//! that records what it is asked ([`FakeMedia`]), and the SBC's
//! neighbours on a seeded network.
//!
//! A neighbour is a node at an address: either *scripted* (what the SBC
//! sends it lands in [`World::out`] for the test to take and answer by
//! hand) or a [`Ua`] (a transaction endpoint that answers calls by itself
//! as its [`Answer`] says and places calls on request). Every node can be
//! put in a [`Fault`] — dead, silent, refusing — decided by the same
//! [`crate::peer::react`] the socket peers of `sbc demo` and `sbc drill`
//! use. The network has latency, jitter and UDP loss ([`NetConfig`], per
//! node if wanted); a stream send to a dead host fails after a round trip,
//! a datagram to one draws ICMP unless the host is firewalled; both reach
//! the B2BUA as [`Input::TransportError`], as the daemon reports them.
//!
//! Time jumps to the next thing that happens — a delivery, a B2BUA timer,
//! a user agent's timer — so a 2-second per-attempt timer or a 30-second
//! forward window runs in microseconds, reproducibly from the seed.

mod bodies;
mod media;
mod ua;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use b2bua::{B2bua, Cdr, Config, Input, Output};
use bytes::Bytes;
use sip::Message;
use transaction::{Peer, Rng, Transmit, Transport};

pub use bodies::{rtp, srtp, KEY1, KEY2};
pub use media::{FakeMedia, MediaLog, Update, MEDIA_IP};
pub use ua::{Answer, Incoming, Outgoing, Registration, Ua, UaConfig};

use crate::net::{Fate, NetConfig, NodeId, Packet};
use crate::peer::{self, Fault, Reaction};

/// A message the B2BUA sent, as it reached (or would have reached) a
/// scripted neighbour.
#[derive(Debug, Clone)]
pub struct Sent {
    /// Where the B2BUA sent it.
    pub to: Peer,
    /// The message.
    pub msg: Message,
    /// Virtual time it was sent at.
    pub at: Duration,
}

impl Sent {
    /// The whole message as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.msg.to_bytes()).into_owned()
    }
}

/// One neighbour.
struct Node {
    name: String,
    addr: SocketAddr,
    transport: Transport,
    tls_names: Option<Vec<String>>,
    fault: Fault,
    /// A dead UDP host answers with ICMP (false: firewalled, silence).
    icmp: bool,
    net: Option<NetConfig>,
    /// `None`: scripted.
    ua: Option<Box<Ua>>,
    /// A scripted node answers out-of-dialog OPTIONS by itself.
    answer_pings: bool,
    kept: Vec<Sent>,
    options: u32,
    refused: u32,
}

enum Delivery {
    ToSbc {
        bytes: Bytes,
        from: Peer,
        local: SocketAddr,
        tls: Option<Vec<String>>,
    },
    ToNode {
        node: usize,
        sent: Sent,
    },
    /// To an address no node has, in an open world.
    ToOpen(Sent),
    SbcError {
        to: Peer,
    },
    NodeError {
        node: usize,
        to: Peer,
    },
}

type Filter = Box<dyn FnMut(&Packet) -> bool>;

/// The B2BUA and its neighbours in virtual time.
pub struct World {
    /// The call core under test.
    pub b: B2bua,
    /// Virtual now.
    pub now: Instant,
    /// When the world began.
    pub start: Instant,
    /// What the relay was asked.
    pub media: Arc<Mutex<MediaLog>>,
    /// What reached scripted neighbours and no test has taken yet.
    pub out: Vec<Sent>,
    /// Everything the B2BUA ever sent, in order.
    pub log: Vec<Sent>,
    /// The B2BUA's outputs other than media changes (CDRs, health…).
    pub outputs: Vec<Output>,
    /// Every packet on the network, both ways, with its fate.
    pub packets: Vec<Packet>,
    /// An address without a node takes what is sent to it, as a scripted
    /// neighbour would (false: it is a dead host).
    pub open: bool,
    rng: Rng,
    net: NetConfig,
    listeners: Vec<(Transport, SocketAddr)>,
    nodes: Vec<Node>,
    in_flight: BTreeMap<(Instant, u64), Delivery>,
    seq: u64,
    tags: u64,
    stream_tail: BTreeMap<(SocketAddr, SocketAddr), Instant>,
    filter: Option<Filter>,
}

impl fmt::Debug for World {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("World")
            .field("elapsed", &self.elapsed())
            .field(
                "nodes",
                &self.nodes.iter().map(|n| &n.name).collect::<Vec<_>>(),
            )
            .field("in_flight", &self.in_flight.len())
            .field("out", &self.out.len())
            .finish()
    }
}

/// The most happenings one call to [`World::settle`] processes: a B2BUA
/// that keeps re-arming a timer at the same instant is a bug, not a hang.
const SETTLE_LIMIT: usize = 1_000_000;

impl World {
    /// A world around a B2BUA with `cfg`, listening on `listeners` (one
    /// address per transport), on network `net`, every random choice
    /// drawn from `seed`. Time stands still until the first
    /// [`World::settle`], [`World::advance`] or [`World::call`].
    pub fn new(cfg: Config, listeners: &[(Transport, &str)], net: NetConfig, seed: u64) -> World {
        // The one clock read: an origin for virtual time (Instant has no
        // other constructor). Nothing depends on its value.
        let now = Instant::now();
        let media = Arc::new(Mutex::new(MediaLog::default()));
        let b = B2bua::new(cfg, Box::new(FakeMedia(media.clone())), now);
        let listeners = listeners
            .iter()
            .map(|(t, a)| (*t, a.parse().expect("listener address"))) // a test's literal
            .collect();
        World {
            b,
            now,
            start: now,
            media,
            out: Vec::new(),
            log: Vec::new(),
            outputs: Vec::new(),
            packets: Vec::new(),
            open: true,
            rng: Rng::new(seed),
            net,
            listeners,
            nodes: Vec::new(),
            in_flight: BTreeMap::new(),
            seq: 0,
            tags: 0,
            stream_tail: BTreeMap::new(),
            filter: None,
        }
        // Nothing happens yet: neighbours are added first, and the first
        // settle (or advance, or call) sends the pings due at once.
    }

    // ----- the neighbours --------------------------------------------------

    fn add(&mut self, name: &str, addr: &str, transport: Transport, ua: Option<Box<Ua>>) -> NodeId {
        let addr: SocketAddr = addr.parse().expect("node address"); // a test's literal
        assert!(
            self.nodes.iter().all(|n| n.addr != addr),
            "address {addr} taken"
        );
        self.nodes.push(Node {
            name: name.to_owned(),
            addr,
            transport,
            tls_names: (transport == Transport::Tls).then(Vec::new),
            fault: Fault::Up,
            icmp: true,
            net: None,
            ua,
            answer_pings: false,
            kept: Vec::new(),
            options: 0,
            refused: 0,
        });
        NodeId::new(self.nodes.len() - 1)
    }

    /// A scripted neighbour at `addr`: what the B2BUA sends it goes to
    /// [`World::out`].
    pub fn add_peer(&mut self, name: &str, addr: &str, transport: Transport) -> NodeId {
        self.add(name, addr, transport, None)
    }

    /// A user agent at `addr`.
    pub fn add_ua(
        &mut self,
        name: &str,
        addr: &str,
        transport: Transport,
        cfg: UaConfig,
    ) -> NodeId {
        let a: SocketAddr = addr.parse().expect("node address"); // a test's literal
        let seed = self.rng.next_u64();
        let ua = Ua::new(cfg, a, transport, self.start, seed);
        self.add(name, addr, transport, Some(Box::new(ua)))
    }

    /// The names of the TLS certificate `node` presents.
    pub fn set_tls_names(&mut self, node: NodeId, names: &[&str]) {
        self.nodes[node.index()].tls_names = Some(names.iter().map(|s| (*s).to_owned()).collect());
    }

    /// Puts `node` in `fault` from now on.
    pub fn set_fault(&mut self, node: NodeId, fault: Fault) {
        self.nodes[node.index()].fault = fault;
    }

    /// Whether a dead UDP `node` answers with ICMP (default) or not at all.
    pub fn set_icmp(&mut self, node: NodeId, icmp: bool) {
        self.nodes[node.index()].icmp = icmp;
    }

    /// The network between the SBC and `node` from now on.
    pub fn set_link(&mut self, node: NodeId, net: NetConfig) {
        self.nodes[node.index()].net = Some(net);
    }

    /// Whether scripted `node` answers out-of-dialog OPTIONS by itself.
    pub fn set_answer_pings(&mut self, node: NodeId, on: bool) {
        self.nodes[node.index()].answer_pings = on;
    }

    /// The network everywhere else from now on.
    pub fn set_net(&mut self, net: NetConfig) {
        self.net = net;
    }

    /// Drops every packet (either way) for which `drop` returns true.
    pub fn set_filter(&mut self, drop: impl FnMut(&Packet) -> bool + 'static) {
        self.filter = Some(Box::new(drop));
    }

    /// Removes the filter.
    pub fn clear_filter(&mut self) {
        self.filter = None;
    }

    /// The node at `addr`.
    pub fn node(&self, addr: &str) -> Option<NodeId> {
        let a: SocketAddr = addr.parse().ok()?;
        self.nodes.iter().position(|n| n.addr == a).map(NodeId::new)
    }

    /// The address of `node`.
    pub fn addr_of(&self, node: NodeId) -> SocketAddr {
        self.nodes[node.index()].addr
    }

    /// The user agent of `node` (panics for a scripted node: a test bug).
    pub fn ua(&self, node: NodeId) -> &Ua {
        let ua = self.nodes[node.index()].ua.as_deref();
        ua.expect("node is a user agent") // a test asking a scripted node is a test bug
    }

    fn ua_mut(&mut self, node: NodeId) -> &mut Ua {
        let ua = self.nodes[node.index()].ua.as_deref_mut();
        ua.expect("node is a user agent") // a test asking a scripted node is a test bug
    }

    /// OPTIONS `node` answered.
    pub fn options_answered(&self, node: NodeId) -> u32 {
        self.nodes[node.index()].options
    }

    /// OPTIONS answered by every node.
    pub fn pings_answered(&self) -> u32 {
        self.nodes.iter().map(|n| n.options).sum()
    }

    /// INVITEs `node` refused (`Fault::Refuse`).
    pub fn refused(&self, node: NodeId) -> u32 {
        self.nodes[node.index()].refused
    }

    /// The INVITEs `node` ignored while silent, oldest first (taken).
    pub fn take_kept(&mut self, node: NodeId) -> Vec<Sent> {
        std::mem::take(&mut self.nodes[node.index()].kept)
    }

    // ----- acting ----------------------------------------------------------

    /// User agent `node` calls `ruri` from `from_user` through the SBC's
    /// listener for its transport; returns the call's index in its
    /// [`Ua::outgoing`].
    pub fn call(&mut self, node: NodeId, ruri: &str, from_user: &str) -> usize {
        let n = node.index();
        let t = self.nodes[n].transport;
        let to = Peer::new(self.listener(t), t);
        let now = self.now;
        let i = self.ua_mut(node).invite(now, to, ruri, from_user, &[]);
        let i = i.expect("the user agent writes its INVITE"); // fails only on a URI a test mistyped
        self.settle();
        i
    }

    /// User agent `node` registers `user` at `domain` for `expires` s
    /// through the SBC's listener for its transport; returns the index of
    /// the registration in its [`Ua::registrations`].
    pub fn register(&mut self, node: NodeId, user: &str, domain: &str, expires: u32) -> usize {
        let n = node.index();
        let t = self.nodes[n].transport;
        let to = Peer::new(self.listener(t), t);
        let now = self.now;
        let i = self.ua_mut(node).register(now, to, user, domain, expires);
        let i = i.expect("the user agent writes its REGISTER"); // fails only on a name a test mistyped
        self.settle();
        i
    }

    /// User agent `node` hangs up its placed call `i`.
    pub fn hang_up(&mut self, node: NodeId, i: usize) -> bool {
        let now = self.now;
        let done = self.ua_mut(node).hang_up(now, i);
        self.settle();
        done
    }

    /// User agent `node` cancels its placed call `i` (true when the CANCEL
    /// went out: the call had no final response yet).
    pub fn cancel(&mut self, node: NodeId, i: usize) -> bool {
        let now = self.now;
        let done = self.ua_mut(node).cancel(now, i);
        self.settle();
        done
    }

    /// User agent `node` transfers the call `i` it received to `target`
    /// (REFER); true when the REFER went out.
    pub fn refer(&mut self, node: NodeId, i: usize, target: &str) -> bool {
        let now = self.now;
        let done = self.ua_mut(node).refer_incoming(now, i, target);
        self.settle();
        done
    }

    /// How user agent `node` answers INVITEs from now on.
    pub fn set_answer(&mut self, node: NodeId, answer: Answer) {
        self.ua_mut(node).cfg.answer = answer;
    }

    /// User agent `node` hangs up the call `i` it received.
    pub fn hang_up_incoming(&mut self, node: NodeId, i: usize) -> bool {
        let now = self.now;
        let done = self.ua_mut(node).hang_up_incoming(now, i);
        self.settle();
        done
    }

    /// Scripted `node` sends `msg` to the SBC (over the network).
    pub fn node_sends(&mut self, node: NodeId, msg: &Message) {
        let n = &self.nodes[node.index()];
        let (from, tls) = (Peer::new(n.addr, n.transport), n.tls_names.clone());
        let local = self.listener(n.transport);
        self.toward_sbc(Some(node.index()), msg.to_bytes(), from, local, tls);
        self.settle();
    }

    /// `msg` reaches the SBC at once from `from` on listener `local`, as
    /// bytes parsed afresh (what a test writes goes through the wire).
    pub fn deliver(
        &mut self,
        msg: Message,
        from: Peer,
        local: SocketAddr,
        tls: Option<Vec<String>>,
    ) {
        let Ok(msg) = Message::parse(msg.to_bytes()) else {
            panic!("a test wrote a message that does not parse") // test input, never network input
        };
        self.b.handle(
            self.now,
            Input::Receive {
                msg,
                from,
                local,
                tls_names: tls,
            },
        );
        self.settle();
    }

    /// Any input to the B2BUA now (a relay report, a DNS answer, a
    /// transport error with its details), and what follows at once.
    pub fn input(&mut self, input: Input) {
        self.b.handle(self.now, input);
        self.settle();
    }

    /// Sending to `to` failed (reported now).
    pub fn transport_error(&mut self, to: Peer) {
        self.b
            .handle(self.now, Input::TransportError { to, tls: false });
        self.settle();
    }

    // ----- time ------------------------------------------------------------

    /// Virtual time since the start.
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// Everything due now, and what that causes at the same instant.
    pub fn settle(&mut self) {
        let mut n = 0;
        while self.step(self.now) {
            n += 1;
            assert!(n < SETTLE_LIMIT, "the world does not settle at one instant");
        }
    }

    /// Runs the clock forward by `d`, everything on the way happening in
    /// order.
    pub fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        while self.step(end) {}
        self.now = end;
        self.b.handle(self.now, Input::Timeout);
        self.settle();
    }

    /// Runs until `done` holds (checked after each happening) or `limit`
    /// has passed; true when it held.
    pub fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&World) -> bool) -> bool {
        let end = self.now + limit;
        loop {
            if done(self) {
                return true;
            }
            if !self.step(end) {
                self.now = self.now.max(end);
                return done(self);
            }
        }
    }

    fn next_happening(&self) -> Option<Instant> {
        [
            self.in_flight.first_key_value().map(|((at, _), _)| *at),
            self.b.poll_timeout(),
            self.nodes
                .iter()
                .filter_map(|n| n.ua.as_ref().and_then(|u| u.poll_timeout()))
                .min(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Processes the next happening if it is due by `deadline`.
    fn step(&mut self, deadline: Instant) -> bool {
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
        if let Some(k) = first.filter(|k| k.0 <= now) {
            if let Some(d) = self.in_flight.remove(&k) {
                self.deliver_one(d);
            }
        } else if self.b.poll_timeout().is_some_and(|t| t <= now) {
            self.b.handle(now, Input::Timeout);
        } else {
            for n in &mut self.nodes {
                if let Some(ua) = n.ua.as_mut() {
                    if ua.poll_timeout().is_some_and(|t| t <= now) {
                        ua.timeout(now);
                    }
                }
            }
        }
        self.flush();
        true
    }

    // ----- the network -----------------------------------------------------

    fn listener(&self, t: Transport) -> SocketAddr {
        self.listeners
            .iter()
            .find(|(lt, _)| *lt == t)
            .or_else(|| self.listeners.first())
            .map(|(_, a)| *a)
            .expect("the world has a listener") // World::new is given at least one
    }

    fn link(&self, node: Option<usize>) -> NetConfig {
        node.and_then(|n| self.nodes[n].net).unwrap_or(self.net)
    }

    fn schedule(&mut self, at: Instant, d: Delivery) {
        self.seq += 1;
        self.in_flight.insert((at, self.seq), d);
    }

    /// The delay of one packet, or `None` when the network loses it.
    fn delay(
        &mut self,
        net: NetConfig,
        from: SocketAddr,
        to: SocketAddr,
        t: Transport,
    ) -> Option<Duration> {
        let base = net.latency + self.rng.up_to(net.jitter);
        if t.is_reliable() {
            // A stream keeps its order.
            let tail = self.stream_tail.entry((from, to)).or_insert(self.now);
            let at = (self.now + base).max(*tail);
            *tail = at;
            return Some(at - self.now);
        }
        if self.rng.chance(net.loss) {
            return None;
        }
        let mut d = base;
        if self.rng.chance(net.reorder) {
            d += self.rng.up_to(net.reorder_delay);
        }
        Some(d)
    }

    fn record(
        &mut self,
        from: SocketAddr,
        to: SocketAddr,
        t: Transport,
        bytes: &Bytes,
        fate: Fate,
    ) -> Packet {
        let p = Packet {
            sent: self.elapsed(),
            from,
            to,
            transport: t,
            bytes: bytes.clone(),
            fate,
        };
        self.packets.push(p.clone());
        p
    }

    fn filtered(&mut self, p: &Packet) -> bool {
        match &mut self.filter {
            Some(f) => f(p),
            None => false,
        }
    }

    /// A message of the B2BUA onto the network.
    fn sbc_sent(&mut self, t: Transmit) {
        let Ok(msg) = Message::parse(t.bytes.clone()) else {
            panic!("the B2BUA sent a message that does not parse") // the bug this world exists to catch
        };
        let transport = t.to.transport;
        let src = self.listener(transport);
        let sent = Sent {
            to: t.to,
            msg,
            at: self.elapsed(),
        };
        self.log.push(sent.clone());
        let probe = self.record(src, t.to.addr, transport, &t.bytes, Fate::Lost);
        if self.filtered(&probe) {
            self.mark_last(Fate::Filtered);
            return;
        }
        let node = self.nodes.iter().position(|n| n.addr == t.to.addr);
        let net = self.link(node);
        let rtt = (net.latency + self.rng.up_to(net.jitter)) * 2;
        let dead = match node {
            None => !self.open,
            Some(n) => self.nodes[n].fault == Fault::Dead,
        };
        if dead {
            self.mark_last(Fate::Unreachable);
            let icmp = node.is_none_or(|n| self.nodes[n].icmp);
            if transport.is_reliable() || icmp {
                self.schedule(self.now + rtt, Delivery::SbcError { to: t.to });
            }
            return;
        }
        let Some(d) = self.delay(net, src, t.to.addr, transport) else {
            return;
        };
        self.mark_last(Fate::Delivered(d));
        let at = self.now + d;
        match node {
            Some(node) => self.schedule(at, Delivery::ToNode { node, sent }),
            None => self.schedule(at, Delivery::ToOpen(sent)),
        }
    }

    fn mark_last(&mut self, fate: Fate) {
        if let Some(p) = self.packets.last_mut() {
            p.fate = fate;
        }
    }

    /// A message of a neighbour onto the network, toward the SBC.
    fn toward_sbc(
        &mut self,
        node: Option<usize>,
        bytes: Bytes,
        from: Peer,
        local: SocketAddr,
        tls: Option<Vec<String>>,
    ) {
        let probe = self.record(from.addr, local, from.transport, &bytes, Fate::Lost);
        if self.filtered(&probe) {
            self.mark_last(Fate::Filtered);
            return;
        }
        let net = self.link(node);
        let Some(d) = self.delay(net, from.addr, local, from.transport) else {
            return;
        };
        self.mark_last(Fate::Delivered(d));
        self.schedule(
            self.now + d,
            Delivery::ToSbc {
                bytes,
                from,
                local,
                tls,
            },
        );
    }

    fn deliver_one(&mut self, d: Delivery) {
        let now = self.now;
        match d {
            Delivery::ToSbc {
                bytes,
                from,
                local,
                tls,
            } => {
                // What the daemon does: unparsable input never reaches the core.
                if let Ok(msg) = Message::parse(bytes) {
                    self.b.handle(
                        now,
                        Input::Receive {
                            msg,
                            from,
                            local,
                            tls_names: tls,
                        },
                    );
                }
            }
            Delivery::SbcError { to } => {
                self.b.handle(now, Input::TransportError { to, tls: false })
            }
            Delivery::NodeError { node, to } => {
                if let Some(ua) = self.nodes[node].ua.as_mut() {
                    ua.transport_error(now, to);
                }
            }
            Delivery::ToOpen(sent) => self.out.push(sent),
            Delivery::ToNode { node, sent } => self.at_node(node, sent),
        }
    }

    /// What `node` does with a message the SBC sent it.
    fn at_node(&mut self, i: usize, sent: Sent) {
        let now = self.now;
        let fault = self.nodes[i].fault;
        match peer::react(fault, &sent.msg) {
            Reaction::Drop => {}
            Reaction::Keep => self.nodes[i].kept.push(sent),
            Reaction::Refuse { code, retry_after } => {
                let tag = self.tag();
                let n = &mut self.nodes[i];
                n.refused += 1;
                let agent = n.name.clone();
                if let Some(r) = peer::refusal(&sent.msg, code, retry_after, &tag, &agent) {
                    self.reply(i, &r);
                }
            }
            Reaction::AnswerOptions if self.answers_options(i, &sent.msg) => {
                self.nodes[i].options += 1;
                let tag = self.tag();
                let agent = self.nodes[i].name.clone();
                if let Some(r) = peer::options_ok(&sent.msg, &tag, &agent) {
                    self.reply(i, &r);
                }
            }
            Reaction::AnswerOptions | Reaction::Deliver => {
                let from = Peer::new(self.listener(sent.to.transport), sent.to.transport);
                match self.nodes[i].ua.as_mut() {
                    Some(ua) => ua.receive(now, sent.msg, from),
                    None => self.out.push(sent),
                }
            }
        }
    }

    fn answers_options(&self, i: usize, msg: &Message) -> bool {
        let n = &self.nodes[i];
        let in_dialog = msg.to().ok().and_then(|t| t.tag()).is_some();
        n.ua.is_some() || (n.answer_pings && !in_dialog)
    }

    fn tag(&mut self) -> String {
        self.tags += 1;
        format!("sim{}", self.tags)
    }

    /// `node` answers toward the SBC with `msg`.
    fn reply(&mut self, i: usize, msg: &Message) {
        let n = &self.nodes[i];
        let (from, tls) = (Peer::new(n.addr, n.transport), n.tls_names.clone());
        let local = self.listener(n.transport);
        self.toward_sbc(Some(i), msg.to_bytes(), from, local, tls);
    }

    /// Moves what the B2BUA and the user agents produced onto the network.
    fn flush(&mut self) {
        loop {
            let mut any = false;
            while let Some(t) = self.b.poll_transmit() {
                any = true;
                self.sbc_sent(t);
            }
            while let Some(o) = self.b.poll_output() {
                any = true;
                match o {
                    Output::Media(op) => media::lock(&self.media).apply(op),
                    o => self.outputs.push(o),
                }
            }
            for i in 0..self.nodes.len() {
                while let Some(t) = self.nodes[i].ua.as_mut().and_then(|u| u.poll_transmit()) {
                    any = true;
                    self.ua_sent(i, t);
                }
            }
            if !any {
                break;
            }
        }
    }

    fn ua_sent(&mut self, i: usize, t: Transmit) {
        let n = &self.nodes[i];
        if n.fault == Fault::Dead {
            return;
        }
        let (from, tls) = (Peer::new(n.addr, n.transport), n.tls_names.clone());
        let to_sbc = self.listeners.iter().any(|(_, a)| *a == t.to.addr);
        if !to_sbc {
            // Only the SBC is reachable from a neighbour here.
            let rtt = self.net.latency * 2;
            self.schedule(self.now + rtt, Delivery::NodeError { node: i, to: t.to });
            return;
        }
        self.toward_sbc(Some(i), t.bytes, from, t.to.addr, tls);
    }

    // ----- looking at what happened ----------------------------------------

    /// What is in [`World::out`], a line each.
    pub fn dump(&self) -> String {
        self.out
            .iter()
            .map(|s| format!("→ {}: {}", s.to.addr, first_line(&s.msg)))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Takes the first message to `to` matching `pred`.
    pub fn try_take(&mut self, to: &str, pred: impl Fn(&Message) -> bool) -> Option<Message> {
        let a: SocketAddr = to.parse().ok()?;
        let i = self
            .out
            .iter()
            .position(|s| s.to.addr == a && pred(&s.msg))?;
        Some(self.out.remove(i).msg)
    }

    /// Takes the first request `method` sent to `to`; panics if none.
    pub fn take_req(&mut self, to: &str, method: &str) -> Message {
        let m = self.try_take(to, |m| m.method_str() == Some(method));
        let Some(m) = m else {
            panic!("no {method} to {to}; outbox:\n{}", self.dump()) // a test's assertion failed
        };
        m
    }

    /// Takes the first response `status` (to a request `method`) sent to `to`.
    pub fn take_resp(&mut self, to: &str, status: u16, method: &str) -> Message {
        let m = self.try_take(to, |m| {
            m.status() == Some(status) && cseq_method(m) == method
        });
        let Some(m) = m else {
            panic!("no {status} ({method}) to {to}; outbox:\n{}", self.dump()) // a test's assertion failed
        };
        m
    }

    /// Messages (still in the outbox) sent to `to`, first lines.
    pub fn pending_to(&self, to: &str) -> Vec<String> {
        let Ok(a) = to.parse::<SocketAddr>() else {
            return Vec::new();
        };
        self.out
            .iter()
            .filter(|s| s.to.addr == a)
            .map(|s| first_line(&s.msg))
            .collect()
    }

    /// Everything the B2BUA ever sent to `to`, first lines.
    pub fn ever_sent_to(&self, to: &str) -> Vec<String> {
        let Ok(a) = to.parse::<SocketAddr>() else {
            return Vec::new();
        };
        self.log
            .iter()
            .filter(|s| s.to.addr == a)
            .map(|s| first_line(&s.msg))
            .collect()
    }

    /// Forgets the outbox (retransmissions, messages a test does not look at).
    pub fn clear(&mut self) {
        self.out.clear();
    }

    /// The CDRs written so far.
    pub fn cdrs(&self) -> Vec<Cdr> {
        self.outputs
            .iter()
            .filter_map(|o| match o {
                Output::Cdr(c) => Some((**c).clone()),
                _ => None,
            })
            .collect()
    }

    /// The health changes reported so far: (trunk, host, up).
    pub fn health_changes(&self) -> Vec<(String, String, bool)> {
        self.outputs
            .iter()
            .filter_map(|o| match o {
                Output::Health {
                    trunk, host, up, ..
                } => Some((trunk.clone(), host.clone(), *up)),
                _ => None,
            })
            .collect()
    }

    /// The relay's log.
    pub fn media(&self) -> MutexGuard<'_, MediaLog> {
        media::lock(&self.media)
    }
}

/// The start line of a message.
pub fn first_line(m: &Message) -> String {
    let b = m.to_bytes();
    let s = String::from_utf8_lossy(&b);
    s.lines().next().unwrap_or("").to_owned()
}

/// The CSeq method of a message.
pub fn cseq_method(m: &Message) -> String {
    m.cseq().map(|c| c.method.to_owned()).unwrap_or_default()
}
