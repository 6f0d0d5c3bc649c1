//! `sbc run`: the runtime shell. It owns the clock, the sockets, the media
//! relay's threads and the signals; the protocol work is done by the sans-IO
//! cores (`sip` verdicts, the `b2bua` with its transaction endpoint, trunk
//! health and routing) that it drives from one task.
//!
//! One loop: receive a message → verdict (accept / reply / drop) → the B2BUA
//! → datagrams and stream messages out through the transports (opening TLS
//! connections toward trunk peers with the trunk's identity on demand), CDR
//! lines on stdout; the B2BUA's next timeout is the loop's sleep. Trunk
//! peers without a configured address are resolved by one task each (RFC
//! 3263, again when the answer's TTL runs out, with backoff while the name
//! does not resolve); what they find reaches the B2BUA as
//! `Input::PeerResolved`.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use b2bua::{B2bua, Input as B2bInput, Output};
use bytes::Bytes;
use relay::Relay;
use sip::{HeaderName, Message, Verdict};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;
pub(crate) use transport::Refresh;
use transport::Resolver;
use transport::{Inbound, ListenerSpec, TlsContext, Transport, Transports};

use crate::config::Loaded;

/// Counters of what the daemon did with what it received.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Counters {
    pub(crate) received: u64,
    pub(crate) accepted: u64,
    pub(crate) replied_bad: u64,
    pub(crate) dropped_bad: u64,
    pub(crate) send_errors: u64,
    pub(crate) connect_errors: u64,
    /// UDP destinations reported unreachable (ICMP), passed to the B2BUA.
    pub(crate) unreachable: u64,
    /// Stream connections lost (closed or reset by the peer, failed),
    /// passed to the B2BUA.
    pub(crate) lost: u64,
    /// Configuration reloads applied and refused (`sbc reload`, SIGHUP).
    pub(crate) reloads: u64,
    pub(crate) reloads_refused: u64,
}

/// Lets through at most `per_second` log lines about bad input; counts the rest.
#[derive(Debug)]
struct RateLimit {
    per_second: u32,
    window: Instant,
    used: u32,
    suppressed: u64,
}

impl RateLimit {
    fn allow(&mut self, now: Instant) -> bool {
        if now.duration_since(self.window) >= Duration::from_secs(1) {
            if self.suppressed > 0 {
                tracing::warn!(
                    suppressed = self.suppressed,
                    "bad-input log lines suppressed"
                );
            }
            self.window = now;
            self.used = 0;
            self.suppressed = 0;
        }
        if self.used < self.per_second {
            self.used += 1;
            true
        } else {
            self.suppressed += 1;
            false
        }
    }
}

/// The media relay behind the B2BUA's `MediaControl` (ports and keys, which
/// never wait for a relay worker; changes come as `Output::Media`).
struct RelayCtl(Arc<Relay>);

impl b2bua::MediaControl for RelayCtl {
    fn interface(&self, name: Option<&str>) -> usize {
        name.and_then(|n| self.0.config().interfaces.iter().position(|i| i.name == n))
            .unwrap_or(0)
    }
    fn create(
        &mut self,
        a: relay::LegSpec,
        b: relay::LegSpec,
    ) -> Result<relay::SessionInfo, String> {
        self.0.create(a, b).map_err(|e| e.to_string())
    }
    fn create_emergency(
        &mut self,
        a: relay::LegSpec,
        b: relay::LegSpec,
    ) -> Result<relay::SessionInfo, String> {
        self.0.create_emergency(a, b).map_err(|e| e.to_string())
    }
    fn new_key(
        &mut self,
        tag: u32,
        profile: media::SrtpProfile,
    ) -> Result<media::CryptoAttribute, String> {
        media::CryptoAttribute::generate(tag, profile).map_err(|e| e.to_string())
    }
}

/// A stream destination the B2BUA sends to without a connection yet: the
/// address, the transport and the trunk it is reached as (Teams and ACS
/// face the same Microsoft proxies with different certificates, so each
/// has connections of its own).
type Dest = transport::Peer;

/// The destination of a message to `p`: the same peer, no connection named.
fn dest_of(p: &transport::Peer) -> Dest {
    transport::Peer { conn: None, ..*p }
}

/// What a connect task reports back to the loop.
struct Connected {
    dest: Dest,
    result: Result<transport::Peer, (String, bool)>,
}

/// What a peer's resolver task found.
pub(crate) struct Resolution {
    trunk: usize,
    peer: usize,
    /// Its addresses, or why the lookup failed.
    result: Result<Vec<SocketAddr>, String>,
    /// Failed lookups in a row (0 after a success).
    failures: u32,
}

/// Keeps one trunk peer's address current: resolves `host` (A/AAAA at the
/// configured port and transport, RFC 3263 §4.2) through `resolver`, reports
/// every answer, and resolves again when it expires ([`Refresh`]: the TTL
/// within bounds; after a failure 1 s, 2 s, 4 s … up to a minute). A name
/// that needs no DNS (an IP literal) is reported once. Ends when the
/// daemon stops listening.
pub(crate) async fn resolve_peer(
    resolver: Resolver,
    refresh: Refresh,
    (trunk, peer): (usize, usize),
    host: String,
    port: u16,
    transport: Transport,
    tx: mpsc::Sender<Resolution>,
) {
    let mut failures = 0u32;
    loop {
        let answer = resolver
            .resolve_ttl(
                &host,
                Some(port),
                Some(transport),
                transport == Transport::Tls,
            )
            .await
            .and_then(|r| {
                let addrs: Vec<SocketAddr> = r
                    .targets
                    .iter()
                    .filter(|t| t.transport == transport)
                    .map(|t| t.addr)
                    .collect();
                if addrs.is_empty() {
                    Err(transport::DnsError(format!("{host}: no address")))
                } else {
                    Ok((addrs, r.ttl))
                }
            });
        let (result, wait) = match answer {
            Ok((addrs, ttl)) => {
                failures = 0;
                (Ok(addrs), refresh.after_success(ttl))
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                (Err(e.to_string()), Some(refresh.after_failure(failures)))
            }
        };
        let r = Resolution {
            trunk,
            peer,
            result,
            failures,
        };
        if tx.send(r).await.is_err() {
            return;
        }
        match wait {
            Some(d) => tokio::time::sleep(d).await,
            None => return,
        }
    }
}

struct Core {
    b2b: B2bua,
    /// The registration store's thread, with phones configured.
    bindings: Option<crate::bindings::Bindings>,
    transports: Transports,
    policy: sip::Policy,
    agent: String,
    tags: RandomState,
    counters: Counters,
    log: RateLimit,
    draining: bool,
    /// The TLS identity of each trunk (by index), for its outbound connections.
    trunk_tls: Vec<Option<Arc<TlsContext>>>,
    /// Outbound connections in use per destination.
    conns: HashMap<Dest, transport::Peer>,
    /// Messages waiting for a connection being opened.
    waiting: HashMap<Dest, Vec<Bytes>>,
    /// Stream connections lost (this loop is their one reader).
    lost_rx: Option<mpsc::Receiver<transport::Lost>>,
    connected_tx: mpsc::UnboundedSender<Connected>,
    /// A copy of every output for an embedding program (`sbc demo`).
    outputs: Option<mpsc::UnboundedSender<Output>>,
    relay: Arc<Relay>,
    /// CDRs waiting for their relay session's final statistics (by session),
    /// with when they were written.
    cdrs: HashMap<u64, (Box<b2bua::Cdr>, Instant)>,
    /// What CDRs and health changes added up to, for the snapshot.
    tally: crate::http::Tally,
    started_unix_ms: u64,
    /// Budgets, bans, scanners and caps before the B2BUA.
    shield: crate::shield::Shield,
    /// Where the snapshot goes (`[http]`); nobody may be listening.
    publish: tokio::sync::watch::Sender<crate::http::Published>,
    /// SIP messages in and out by method and status code.
    sip: crate::http::SipCounts,
    /// The certificates the TLS profiles present, for their expiry.
    certs: crate::http::CertWatch,
}

impl Core {
    fn tag(&self, parts: &[&[u8]]) -> String {
        format!("{:016x}", self.tags.hash_one(parts))
    }

    fn transport_error(&mut self, to: transport::Peer, tls: bool) {
        self.b2b
            .handle(Instant::now(), B2bInput::TransportError { to, tls });
    }

    fn send(&mut self, to: transport::Peer, bytes: Bytes) {
        self.sip.sent(&bytes);
        let stream = to.transport.is_reliable();
        if stream && to.conn.is_none() {
            let dest = dest_of(&to);
            if let Some(q) = self.waiting.get_mut(&dest) {
                q.push(bytes);
                return;
            }
            if let Some(p) = self.conns.get(&dest).copied() {
                match self.transports.send(&p, bytes.clone()) {
                    Ok(()) => return,
                    // Gone: if the peer broke it, its loss is queued by
                    // now. Taken first, it fails what was sent over it —
                    // and this request, whose transaction went toward that
                    // destination too — before anything goes out on a new
                    // connection.
                    Err(transport::SendError::NoConnection)
                        if self.take_lost(p) && !is_ack_or_response(&bytes) =>
                    {
                        return;
                    }
                    Err(_) => {
                        self.conns.remove(&dest);
                    }
                }
            }
            self.open(dest, bytes);
            return;
        }
        if let Err(e) = self.transports.send(&to, bytes) {
            self.counters.send_errors += 1;
            tracing::debug!(peer = %to.addr, %e, "send failed");
            if stream {
                self.transport_error(to, false);
            }
        }
    }

    /// Opens a connection to `dest` (TLS with the trunk's identity and the
    /// peer's FQDN as SNI and certificate name) and queues `first`.
    fn open(&mut self, dest: Dest, first: Bytes) {
        let tls = if dest.transport == Transport::Tls {
            match self.tls_identity(dest) {
                Some(x) => Some(x),
                None => {
                    tracing::warn!(peer = %dest.addr, "no TLS identity for this destination");
                    self.counters.connect_errors += 1;
                    self.transport_error(dest, true);
                    return;
                }
            }
        } else {
            None
        };
        self.waiting.insert(dest, vec![first]);
        let t = self.transports.clone();
        let tx = self.connected_tx.clone();
        tokio::spawn(async move {
            let is_tls = tls.is_some();
            // A refused or timed-out TCP connect is a transport failure; the
            // rest on a TLS destination is the handshake's.
            let result = t.connect_as(dest, tls).await.map_err(|e| {
                let tcp = matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionRefused
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::HostUnreachable
                        | std::io::ErrorKind::NetworkUnreachable
                );
                (e.to_string(), is_tls && !tcp)
            });
            let _ = tx.send(Connected { dest, result });
        });
    }

    /// The client identity and expected server name for a TLS connection
    /// to `dest`: the identity of the trunk it is for, the FQDN of that
    /// trunk's peer at that address (its current one: DNS may move it). A
    /// destination without a trunk takes the first trunk peer at that address.
    fn tls_identity(&self, dest: Dest) -> Option<(Arc<TlsContext>, String)> {
        let (addr, t, trunk) = (dest.addr, dest.transport, dest.trunk);
        let trunks = self.b2b.trunks();
        let candidates: Vec<usize> = match trunk {
            Some(i) => vec![usize::from(i)],
            None => (0..trunks.len()).collect(),
        };
        candidates.into_iter().find_map(|i| {
            let ctx = self.trunk_tls.get(i)?.as_ref()?;
            let peer = trunks
                .get(i)?
                .peers
                .iter()
                .find(|p| p.addr == Some(addr) && p.transport == t)?;
            Some((ctx.clone(), peer.host.clone()))
        })
    }

    fn connected(&mut self, c: Connected) {
        let queued = self.waiting.remove(&c.dest).unwrap_or_default();
        match c.result {
            Ok(peer) => {
                self.conns.insert(c.dest, peer);
                for b in queued {
                    match self.transports.send(&peer, b) {
                        Ok(()) => {}
                        // Lost as soon as it was opened (its report may have
                        // come before this): what waited for it fails.
                        Err(transport::SendError::NoConnection) => {
                            self.counters.send_errors += 1;
                            if !self.take_lost(peer) {
                                self.conns.remove(&c.dest);
                                self.counters.lost += 1;
                                self.b2b.handle(
                                    Instant::now(),
                                    B2bInput::ConnectionLost { to: c.dest },
                                );
                            }
                            break;
                        }
                        Err(e) => {
                            self.counters.send_errors += 1;
                            tracing::debug!(peer = %peer.addr, %e, "send failed");
                        }
                    }
                }
            }
            Err((e, tls)) => {
                self.counters.connect_errors += 1;
                tracing::warn!(peer = %c.dest.addr, transport = %c.dest.transport, %e, "connection failed");
                self.transport_error(c.dest, tls);
            }
        }
        self.flush();
    }

    fn flush(&mut self) {
        loop {
            let mut any = false;
            while let Some(t) = self.b2b.poll_transmit() {
                any = true;
                self.send(t.to, t.bytes);
            }
            while let Some(o) = self.b2b.poll_output() {
                any = true;
                match o {
                    // Never waited for: the relay worker applies it in order.
                    Output::Media(op) => {
                        if let Err(e) = self.relay.apply(op) {
                            tracing::debug!(%e, "media change not applied");
                        }
                    }
                    // Written once the relay has counted the session's last packet.
                    Output::Cdr(cdr) => match cdr.media_session {
                        Some(id) => {
                            self.cdrs.insert(id, (cdr, Instant::now()));
                        }
                        None => self.emit(Output::Cdr(cdr)),
                    },
                    Output::Binding(e) => {
                        if let Some(tx) = &self.outputs {
                            let _ = tx.send(Output::Binding(e.clone()));
                        }
                        if let Some(b) = self.bindings.as_mut() {
                            b.follow(e);
                        }
                    }
                    // The next request to that peer opens a fresh connection.
                    Output::Disconnect { to } => {
                        let dest = dest_of(&to);
                        let conn = to
                            .conn
                            .or_else(|| self.conns.get(&dest).and_then(|p| p.conn));
                        self.conns.remove(&dest);
                        if let Some(c) = conn {
                            self.transports.close_connection(c);
                        }
                    }
                    o => self.emit(o),
                }
            }
            if !any {
                break;
            }
        }
    }

    fn emit(&mut self, o: Output) {
        self.tally.note(&o, unix_ms());
        if let Some(tx) = &self.outputs {
            let _ = tx.send(o.clone());
        }
        output(o);
    }

    /// Takes the relay's events: inactive sessions end their calls, removed
    /// sessions complete their CDRs (a CDR whose statistics do not come
    /// within a second is written without them).
    fn relay_events(&mut self) {
        let now = Instant::now();
        while let Some(ev) = self.relay.poll_event() {
            match ev {
                relay::RelayEvent::Inactive { id } => {
                    self.b2b
                        .handle(now, B2bInput::MediaInactive { session: id });
                }
                relay::RelayEvent::Dtmf {
                    id,
                    side,
                    event,
                    duration,
                    clock_rate,
                } => {
                    self.b2b.handle(
                        now,
                        B2bInput::Dtmf {
                            session: id,
                            side,
                            event,
                            duration,
                            clock_rate,
                        },
                    );
                }
                relay::RelayEvent::Removed { id, stats } => {
                    if let Some((mut cdr, _)) = self.cdrs.remove(&id) {
                        cdr.packets = [stats[0].packets, stats[1].packets];
                        self.emit(Output::Cdr(cdr));
                    }
                }
            }
        }
        if !self.cdrs.is_empty() {
            let late: Vec<u64> = self
                .cdrs
                .iter()
                .filter(|(_, (_, at))| now.duration_since(*at) >= Duration::from_secs(1))
                .map(|(id, _)| *id)
                .collect();
            for id in late {
                if let Some((cdr, _)) = self.cdrs.remove(&id) {
                    self.emit(Output::Cdr(cdr));
                }
            }
        }
        self.flush();
    }

    /// A UDP destination is gone (ICMP port/host unreachable for what we
    /// sent it): a transport failure of that address for every trunk, so
    /// that a pending INVITE to it moves on now and its peer is down.
    fn unreachable(&mut self, u: transport::Unreachable) {
        self.counters.unreachable += 1;
        tracing::debug!(peer = %u.addr, error = %u.error, "UDP destination unreachable");
        self.transport_error(transport::Peer::new(u.addr, Transport::Udp), false);
        self.flush();
    }

    /// A stream connection broke (not one we closed; see
    /// `transport::Lost`): what was sent over it fails now
    /// (`Input::ConnectionLost`), the peer's health is left to what comes
    /// next. One we opened concerns its destination while it is the
    /// connection in use there (a newer one carries requests of its own);
    /// one the peer opened concerns that connection. True when it was
    /// passed on.
    fn lost(&mut self, l: transport::Lost) -> bool {
        let to = if l.outbound {
            let dest = dest_of(&l.peer);
            if self.conns.get(&dest).map(|p| p.conn) != Some(l.peer.conn) {
                tracing::debug!(peer = %l.peer.addr, reason = %l.reason, "old connection lost");
                return false;
            }
            self.conns.remove(&dest);
            dest
        } else {
            l.peer
        };
        self.counters.lost += 1;
        tracing::info!(peer = %l.peer.addr, transport = %l.peer.transport, outbound = l.outbound, reason = %l.reason, "connection lost");
        self.b2b
            .handle(Instant::now(), B2bInput::ConnectionLost { to });
        true
    }

    /// Takes the losses reported so far; true when `p`'s connection was among them.
    fn take_lost(&mut self, p: transport::Peer) -> bool {
        let mut hit = false;
        while let Some(l) = self.lost_rx.as_mut().and_then(|rx| rx.try_recv().ok()) {
            let mine = l.outbound && l.peer.conn == p.conn;
            hit |= self.lost(l) && mine;
        }
        hit
    }

    /// A resolver task's answer: addresses go to the B2BUA; a failed lookup
    /// keeps the last addresses (a name server that is briefly away must not
    /// take a working peer out of service).
    fn resolved(&mut self, r: Resolution) {
        let Some(spec) = self
            .b2b
            .trunks()
            .get(r.trunk)
            .and_then(|t| t.peers.get(r.peer))
        else {
            return;
        };
        match r.result {
            Ok(addrs) => {
                self.b2b.handle(
                    Instant::now(),
                    B2bInput::PeerResolved {
                        trunk: r.trunk,
                        peer: r.peer,
                        addrs,
                    },
                );
                self.shield.trunks_changed(self.b2b.trunks());
                self.flush();
            }
            Err(e) if r.failures == 1 => {
                let trunk = &self.b2b.trunks()[r.trunk].name;
                match spec.addr {
                    None => {
                        tracing::warn!(%trunk, host = %spec.host, %e, "peer not resolved; retrying")
                    }
                    Some(a) => {
                        tracing::warn!(%trunk, host = %spec.host, %e, addr = %a, "peer lookup failed; keeping its address")
                    }
                }
            }
            Err(e) => {
                tracing::debug!(host = %spec.host, %e, failures = r.failures, "peer lookup failed")
            }
        }
    }

    /// The one counter table, as of now (logs, `/metrics`, the status page).
    fn snapshot(&self) -> crate::http::Snapshot {
        let b = &self.b2b;
        let mut peers = Vec::new();
        for (i, t) in b.trunks().iter().enumerate().filter(|(i, _)| b.is_live(*i)) {
            let rtts = b.peer_rtts(i);
            for ((p, state), rtt) in t.peers.iter().zip(b.peer_states(i)).zip(rtts) {
                let (state, reason) = match state {
                    trunk::PeerState::Up => ("up", String::new()),
                    trunk::PeerState::Down(r) => ("down", r),
                    trunk::PeerState::Unknown => ("unknown", String::new()),
                };
                let since = self.tally.changed.get(&(t.name.clone(), p.host.clone()));
                peers.push(crate::http::PeerRow {
                    trunk: t.name.clone(),
                    kind: t.kind.as_str().to_owned(),
                    host: p.host.clone(),
                    transport: p.transport.as_str().to_owned(),
                    state,
                    reason,
                    since_unix_ms: since.copied().unwrap_or(self.started_unix_ms),
                    options: t.options.enabled,
                    rtt,
                });
            }
        }
        crate::http::Snapshot {
            at: Instant::now(),
            unix_ms: unix_ms(),
            started_unix_ms: self.started_unix_ms,
            listening: true,
            draining: self.draining,
            daemon: self.counters,
            b2b: b.counters(),
            transport: self.transports.stats(),
            relay: self.relay.stats(),
            protect: self.shield.limiter().counters(),
            shield: self.shield.counters,
            relay_workers: self.relay.workers(),
            sip: self.sip.clone(),
            certs: self.certs.rows(),
            trunk_tls: b
                .trunks()
                .iter()
                .enumerate()
                .filter(|(i, _)| b.is_live(*i))
                .map(|(_, t)| (t.name.clone(), t.tls.clone()))
                .collect(),
            registrar: b.registrar_counters(),
            bindings: b.binding_count(),
            store_dropped: self.bindings.as_ref().map_or(0, |s| s.dropped),
            active_calls: b.active_calls(),
            pending_invites: b.pending_invites(),
            transactions: b.transactions(),
            peers,
            tally: self.tally.clone(),
            calls: b.call_views(Instant::now(), crate::http::CALLS_SHOWN),
        }
    }

    /// Hands the HTTP task a fresh snapshot (never waits for it).
    fn publish(&self) {
        if self.publish.receiver_count() > 0 {
            self.publish.send_replace(Some(Arc::new(self.snapshot())));
        }
    }

    fn inbound(&mut self, inb: Inbound, now: Instant) {
        self.counters.received += 1;
        // A banned source is dropped unread.
        if self.shield.banned(now, inb.peer.addr.ip()) {
            return;
        }
        let raw = inb.bytes.clone();
        match sip::inspect(inb.bytes, &self.policy) {
            Verdict::Accept(mut msg) => {
                self.counters.accepted += 1;
                self.sip.received(&msg);
                let tls_names = inb
                    .peer
                    .conn
                    .filter(|_| inb.peer.transport == Transport::Tls)
                    .and_then(|c| self.transports.peer_names(c));
                let screen = self.shield.screen(
                    now,
                    &msg,
                    inb.peer,
                    inb.local,
                    tls_names.as_deref(),
                    &self.b2b,
                );
                match screen {
                    crate::shield::Screen::Pass => {}
                    crate::shield::Screen::Drop => return,
                    crate::shield::Screen::Busy => {
                        let tag = self.tag(&[&raw]);
                        if let Ok(mut r) =
                            transaction::response_to(&msg, 503, "Service Unavailable", Some(&tag))
                        {
                            let _ = r.push_header("Retry-After", b"5");
                            let _ = r.push_header("Server", self.agent.as_bytes());
                            self.send(inb.peer, r.to_bytes());
                        }
                        return;
                    }
                }
                if msg.is_request() {
                    received_and_rport(&mut msg, inb.peer.addr);
                }
                let tls_names = tls_names.map(|n| n.to_vec());
                self.b2b.handle(
                    now,
                    B2bInput::Receive {
                        msg,
                        from: inb.peer,
                        local: inb.local,
                        tls_names,
                    },
                );
            }
            Verdict::Reply(err) => {
                self.counters.replied_bad += 1;
                if self.log.allow(now) {
                    tracing::info!(peer = %inb.peer.addr, transport = %inb.peer.transport, reason = %err, "bad request answered");
                }
                // A retransmission is the same datagram: the same tag, the same answer.
                let tag = self.tag(&[&raw]);
                if let Some(resp) = sip::error_response(&raw, &err, &tag, Some(&self.agent)) {
                    self.send(inb.peer, resp);
                }
            }
            Verdict::Drop(err) => {
                self.counters.dropped_bad += 1;
                if self.log.allow(now) {
                    tracing::info!(peer = %inb.peer.addr, transport = %inb.peer.transport, reason = %err, "bad message dropped");
                }
            }
        }
        self.flush();
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// True for what is sent on no transaction of its own: an ACK, a response.
fn is_ack_or_response(bytes: &[u8]) -> bool {
    let p = sip::peek(bytes);
    p.kind == Some(sip::Kind::Response) || p.method.as_deref() == Some("ACK")
}

/// Writes what the B2BUA reports: a CDR line on stdout (`cdr {json}`, with
/// the wall-clock start time added), health changes in the log.
fn output(o: Output) {
    match o {
        Output::Cdr(cdr) => {
            let end = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            let mut v = serde_json::to_value(&*cdr).unwrap_or_default();
            if let Some(m) = v.as_object_mut() {
                m.insert(
                    "start_unix_ms".into(),
                    (end.saturating_sub(cdr.end_ms)).into(),
                );
            }
            println!("cdr {v}");
            tracing::info!(call = cdr.call, status = cdr.status, reason = %cdr.reason, "call ended");
        }
        Output::Health {
            trunk,
            host,
            up,
            reason,
        } => {
            tracing::info!(%trunk, %host, up, %reason, "peer health changed");
        }
        Output::Media(_) | Output::Disconnect { .. } | Output::Binding(_) => {}
    }
}

/// RFC 3261 §18.2.1 and RFC 3581: note where a request really came from in
/// its top Via, so that responses find their way back through NAT.
fn received_and_rport(msg: &mut Message, src: SocketAddr) {
    let Some(top) = msg.values(HeaderName::Via).next() else {
        return;
    };
    let Ok(via) = sip::Via::parse(top) else {
        return;
    };
    let ip = src.ip();
    let host_is_src = match via.host {
        sip::Host::Ipv4(a) => std::net::IpAddr::V4(a) == ip,
        sip::Host::Ipv6 { addr, .. } => std::net::IpAddr::V6(addr) == ip,
        sip::Host::Name(_) => false,
    };
    let wants_rport = matches!(via.rport(), Some(None));
    if host_is_src && !wants_rport {
        return;
    }
    let (head, params) = top.split_at(top.len() - via.params_raw.len());
    let mut v = head.to_vec();
    for p in via.params() {
        if p.name.eq_ignore_ascii_case(b"received") || p.name.eq_ignore_ascii_case(b"rport") {
            continue;
        }
        v.push(b';');
        v.extend_from_slice(p.name);
        if let Some(val) = p.value {
            v.push(b'=');
            v.extend_from_slice(val);
        }
    }
    let _ = params;
    v.extend_from_slice(format!(";received={ip}").as_bytes());
    if wants_rport {
        v.extend_from_slice(format!(";rport={}", src.port()).as_bytes());
    }
    if msg.remove_first_value(HeaderName::Via) {
        let _ = msg.prepend_header("Via", &v);
    }
}

/// Runs the daemon until SIGTERM/SIGINT (drain, then exit 0).
pub(crate) fn run(cfg: Loaded) -> Result<(), String> {
    // One thread: a datagram is received and answered without crossing
    // threads (measured: the hop cost ~12 % of the CPU per OPTIONS). The media
    // relay has threads of its own.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_name("sbc")
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let hooks = Hooks {
        notify: crate::notify::Notify::from_env(),
        ..Hooks::default()
    };
    rt.block_on(serve(cfg, hooks))
}

/// What a program embedding the daemon (`sbc demo`) hooks into it.
#[derive(Debug, Default)]
pub(crate) struct Hooks {
    /// Resolves when the daemon should drain and stop (as on SIGTERM).
    pub(crate) stop: Option<tokio::sync::oneshot::Receiver<()>>,
    /// Receives a copy of every B2BUA output (CDRs, health changes).
    pub(crate) outputs: Option<mpsc::UnboundedSender<Output>>,
    /// Told the listener addresses once bound.
    pub(crate) ready: Option<tokio::sync::oneshot::Sender<Vec<(Transport, SocketAddr)>>>,
    /// systemd's notification socket (`sbc run` under a `Type=notify` unit).
    pub(crate) notify: crate::notify::Notify,
}

/// Runs the daemon on the current tokio runtime until SIGTERM/SIGINT or
/// `hooks.stop` (drain, then return).
pub(crate) async fn serve(cfg: Loaded, mut hooks: Hooks) -> Result<(), String> {
    let tls = cfg.tls_contexts().map_err(|e| e.to_string())?;
    let specs: Vec<ListenerSpec> = cfg
        .listeners
        .iter()
        .map(|(t, addr, profile)| ListenerSpec {
            transport: *t,
            addr: *addr,
            tls: profile.as_ref().and_then(|p| tls.get(p).cloned()),
        })
        .collect();
    // Bounded: at most 1,024 messages (each at most max_message_size) wait for the core;
    // beyond that the UDP socket buffer fills and the kernel drops (counted by the OS).
    let (tx, mut rx) = mpsc::channel::<Inbound>(1024);
    let (transports, bound) = Transports::bind(&specs, cfg.limits(), tx)
        .await
        .map_err(|e| format!("{}: cannot listen: {e}", cfg.source))?;
    // ICMP errors of UDP destinations and lost stream connections (this
    // loop is their one reader).
    let mut unreachable_rx = transports.unreachable();
    let lost_rx = transports.lost();
    let listeners: Vec<(Transport, SocketAddr)> = specs
        .iter()
        .map(|s| s.transport)
        .zip(bound.iter().copied())
        .collect();
    for (t, a) in &listeners {
        // One machine-readable line per listener on stdout (port 0 → the port chosen).
        println!("listening {} {a}", t.as_str().to_ascii_lowercase());
        tracing::info!(transport = %t, addr = %a, "listening");
    }
    if let Some(r) = hooks.ready.take() {
        let _ = r.send(listeners.clone());
    }
    // The operations endpoint reads the snapshots the loop publishes.
    let (publish, snapshots) = tokio::sync::watch::channel(None);
    if let Some(h) = &cfg.http {
        let addr = crate::http::start(h, snapshots)?;
        println!("http {addr}");
        tracing::info!(%addr, "operations endpoint listening");
    }
    // The media relay, on its own threads.
    let m = &cfg.media;
    let interfaces = m
        .interfaces
        .iter()
        .map(|i| relay::Interface::parse(i))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: media interface: {e}", cfg.source))?;
    let relay = Arc::new(
        Relay::start(relay::RelayConfig {
            interfaces,
            port_min: m.port_min,
            port_max: m.port_max,
            workers: m.workers,
            inactivity: m.inactivity,
            io: m.io,
            emergency_reserve_percent: m.emergency_reserve_percent,
            ..relay::RelayConfig::default()
        })
        .map_err(|e| format!("cannot start the media relay: {e}"))?,
    );
    println!(
        "media {}-{} on {}",
        m.port_min,
        m.port_max,
        m.interfaces.join(",")
    );
    let c = &cfg.config;
    let timers = transaction::TimerConfig {
        t1: Duration::from_millis(*c.sip.t1_ms.get_ref()),
        t2: Duration::from_millis(*c.sip.t2_ms.get_ref()),
        t4: Duration::from_millis(*c.sip.t4_ms.get_ref()),
        ..transaction::TimerConfig::default()
    };
    let mut policy = sip::Policy::default();
    policy.limits.max_message_size = *c.sip.max_message_size.get_ref();
    policy.supported = c
        .sip
        .supported
        .iter()
        .map(|t| t.get_ref().clone())
        .collect();
    let now = Instant::now();
    // Trunk peers: where they are (a configured address, else DNS, kept
    // current by a task per peer) and, for TLS, the identity we present.
    let trunks = cfg.trunks.clone();
    // One context per profile, listeners' and trunks' alike: a reload has
    // each take its new files in place.
    let trunk_identity: Vec<Option<Arc<TlsContext>>> = trunks
        .iter()
        .map(|t| t.tls.as_ref().and_then(|n| tls.get(n).cloned()))
        .collect();
    let seed = RandomState::new().hash_one(std::process::id());
    let b2b = B2bua::new(
        b2bua::Config {
            trunks,
            routes: cfg.routes.clone(),
            agent: c.sbc.user_agent.clone(),
            timers,
            seed,
            session_expires: 1800,
            supported: policy.supported.join(", "),
            phones: cfg.phones.as_ref().map(|p| p.phones.clone()),
            mask_numbers: cfg.log.mask_numbers,
            protect: cfg.protect.clone(),
        },
        Box::new(RelayCtl(relay.clone())),
        now,
    );
    // Registrations kept across restarts (and shared, with Redis).
    let mut b2b = b2b;
    let mut shared_rx = None;
    let bindings = match &cfg.phones {
        Some(p) => {
            let o = crate::bindings::open(&p.store)?;
            if !o.own.is_empty() {
                tracing::info!(bindings = o.own.len(), "registrations restored");
            }
            b2b.restore_bindings(o.own);
            if !o.shared.is_empty() {
                tracing::info!(
                    bindings = o.shared.len(),
                    "registrations learned from the shared store"
                );
            }
            for (b, ttl) in o.shared {
                b2b.learn_binding(b, ttl);
            }
            shared_rx = o.changes;
            Some(o.bindings)
        }
        None => None,
    };
    let (connected_tx, mut connected_rx) = mpsc::unbounded_channel();
    let mut core = Core {
        b2b,
        bindings,
        transports: transports.clone(),
        policy,
        agent: c.sbc.user_agent.clone(),
        tags: RandomState::new(),
        counters: Counters::default(),
        log: RateLimit {
            per_second: c.log.bad_input_per_second,
            window: now,
            used: 0,
            suppressed: 0,
        },
        draining: false,
        trunk_tls: trunk_identity,
        conns: HashMap::new(),
        waiting: HashMap::new(),
        lost_rx,
        connected_tx,
        outputs: hooks.outputs.take(),
        relay: relay.clone(),
        cdrs: HashMap::new(),
        tally: crate::http::Tally::default(),
        shield: crate::shield::Shield::new(
            cfg.shield.limiter.clone(),
            cfg.shield.caps,
            &cfg.trunks,
            now,
        ),
        started_unix_ms: unix_ms(),
        publish,
        sip: crate::http::SipCounts::default(),
        certs: crate::http::CertWatch::new(tls.iter()),
    };
    // One resolver task per peer without an address; the first answers are
    // awaited (3 s at most) so that the first calls find their peers.
    let resolver = Resolver::new(transport::DnsConfig {
        servers: cfg.dns.servers.clone(),
        overrides: HashMap::new(),
        // Our own schedule decides when to ask again: the cache must not
        // answer for longer than it.
        max_ttl: Some(cfg.dns.refresh.max),
        max_negative_ttl: Some(cfg.dns.refresh.retry_max),
    })
    .map_err(|e| format!("{}: dns: {e}", cfg.source))?;
    let (resolved_tx, mut resolved_rx) = mpsc::channel::<Resolution>(256);
    let mut reloader = crate::reload::Reloader::new(&cfg, tls, resolver, resolved_tx);
    let mut first: std::collections::HashSet<(usize, usize)> = std::collections::HashSet::new();
    for (ti, t) in cfg.trunks.iter().enumerate() {
        first.extend(reloader.resolve(ti, t));
    }
    let until = tokio::time::Instant::now() + Duration::from_secs(3);
    while !first.is_empty() {
        match tokio::time::timeout_at(until, resolved_rx.recv()).await {
            Ok(Some(r)) => {
                first.remove(&(r.trunk, r.peer));
                core.resolved(r);
            }
            _ => break,
        }
    }
    core.b2b.handle(Instant::now(), B2bInput::Timeout);
    core.flush();
    // Listeners bound, relay started, first DNS answers in: ready for systemd.
    let mut notify = std::mem::take(&mut hooks.notify);
    notify.ready(&format!("{} listeners", listeners.len()));
    let max_drain = Duration::from_secs(c.drain.max_wait_s);
    // `sbc reload` asks over the control socket.
    let (control_tx, mut control_rx) = mpsc::channel::<crate::control::Request>(4);
    let control_path =
        crate::control::path(c.sbc.control_socket.as_ref().map(|p| p.get_ref().as_path()));
    match crate::control::serve(&control_path, control_tx).await {
        Ok(()) => {
            println!("control {}", control_path.display());
            tracing::info!(path = %control_path.display(), "control socket listening (sbc reload)");
        }
        Err(e) => {
            tracing::warn!(%e, "no control socket: `sbc reload` cannot reach this daemon (SIGHUP still reloads)")
        }
    }

    let sig = |k| signal(k).map_err(|e| format!("cannot install a signal handler: {e}"));
    let (mut term, mut int, mut hup, mut usr2) = (
        sig(SignalKind::terminate())?,
        sig(SignalKind::interrupt())?,
        sig(SignalKind::hangup())?,
        sig(SignalKind::user_defined2())?,
    );
    let mut drain_deadline: Option<Instant> = None;
    let epoch = Instant::now();
    let mut stats_tick = tokio::time::interval(Duration::from_secs(60));
    // Relay events: inactive sessions, and removed ones completing their CDRs.
    let mut media_tick = tokio::time::interval(Duration::from_millis(100));
    // Ends bans and forgets idle sources.
    let mut shield_tick = tokio::time::interval(Duration::from_secs(1));
    let mut last_logged = String::new();
    // Snapshots for the operations endpoint, when it is on.
    let mut publish_tick = tokio::time::interval(Duration::from_millis(200));
    let publishing = cfg.http.is_some();
    let mut stop = hooks.stop.take();
    let stop_requested = async move {
        match stop.take() {
            Some(rx) => {
                let _ = rx.await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    tokio::pin!(stop_requested);
    loop {
        let wake = core.b2b.poll_timeout();
        // Wake for the next timer, or the drain deadline if sooner.
        let wake = match (wake, drain_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        // Timers are served in 20 ms slots: thousands of Timer J/K expiries per
        // second then cost one wake-up per slot instead of one each. RFC 3261
        // timers are not that precise anyway (T1 is 500 ms).
        let wake = wake.map(|at| {
            let slot = Duration::from_millis(20);
            let since = at.saturating_duration_since(epoch);
            let n = since.as_nanos().div_ceil(slot.as_nanos());
            epoch + slot * u32::try_from(n).unwrap_or(u32::MAX)
        });
        let sleep = async {
            match wake {
                Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            Some(inb) = rx.recv() => {
                core.inbound(inb, Instant::now());
            }
            Some(c) = connected_rx.recv() => core.connected(c),
            Some(r) = resolved_rx.recv() => core.resolved(r),
            Some(c) = async {
                match shared_rx.as_mut() {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            } => {
                match c {
                    registrar::Change::Put { binding, ttl } => {
                        core.b2b.learn_binding(binding, ttl);
                    }
                    registrar::Change::Removed { key } => {
                        core.b2b.forget_binding(&key);
                    }
                    _ => {}
                }
            }
            Some(u) = async {
                match unreachable_rx.as_mut() {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            } => core.unreachable(u),
            Some(l) = async {
                match core.lost_rx.as_mut() {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            } => {
                core.lost(l);
                core.flush();
            }
            () = sleep => {
                core.b2b.handle(Instant::now(), B2bInput::Timeout);
                core.flush();
            }
            _ = media_tick.tick() => core.relay_events(),
            _ = shield_tick.tick() => core.shield.tick(Instant::now()),
            () = &mut stop_requested, if drain_deadline.is_none() => {
                drain_deadline = Some(start_drain(&mut core, &notify, max_drain));
            }
            _ = term.recv() => drain_deadline = Some(start_drain(&mut core, &notify, max_drain)),
            _ = int.recv() => drain_deadline = Some(start_drain(&mut core, &notify, max_drain)),
            _ = hup.recv() => {
                let _ = reload_config(&mut core, &mut reloader, &notify);
            }
            Some(req) = control_rx.recv() => match req.command {
                crate::control::Command::Reload => {
                    let r = reload_config(&mut core, &mut reloader, &notify);
                    let _ = req.reply.send(match r {
                        Ok(text) => crate::control::Reply { ok: true, text },
                        Err(text) => crate::control::Reply { ok: false, text },
                    });
                }
            },
            () = notify.watchdog() => {}
            _ = usr2.recv() => reload(&reloader.tls_all(), &transports, true),
            _ = publish_tick.tick(), if publishing => core.publish(),
            _ = stats_tick.tick() => {
                let s = core.snapshot();
                let line = crate::http::log_line(&s, crate::http::REGISTRAR);
                let line = crate::http::log_line(&s, crate::http::FIGURES) + &line;
                if line != last_logged {
                    log_stats(&s);
                    last_logged = line;
                }
            }
        }
        if let Some(deadline) = drain_deadline {
            if (core.b2b.active_calls() == 0 && core.b2b.pending_invites() == 0)
                || Instant::now() >= deadline
            {
                // The last CDRs wait for their sessions' statistics (briefly).
                let until = Instant::now() + Duration::from_millis(500);
                while !core.cdrs.is_empty() && Instant::now() < until {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    core.relay_events();
                }
                for (_, (cdr, _)) in std::mem::take(&mut core.cdrs) {
                    core.emit(Output::Cdr(cdr));
                }
                log_stats(&core.snapshot());
                tracing::info!(
                    pending_invites = core.b2b.pending_invites(),
                    calls = core.b2b.active_calls(),
                    transactions = core.b2b.transactions(),
                    "drained; exiting"
                );
                return Ok(());
            }
        }
    }
}

fn start_drain(core: &mut Core, notify: &crate::notify::Notify, max: Duration) -> Instant {
    if !core.draining {
        notify.stopping();
        tracing::info!(
            calls = core.b2b.active_calls(),
            "draining: no new connections, new calls get 503; waiting for calls in progress"
        );
        core.draining = true;
        core.b2b.drain();
        core.transports.stop_accepting();
        core.publish();
    }
    Instant::now() + max
}

fn reload(tls: &[Arc<TlsContext>], transports: &Transports, close: bool) {
    for ctx in tls {
        match ctx.reload() {
            Ok(()) => tracing::info!("TLS certificates and trust store reloaded"),
            Err(e) => {
                tracing::error!(%e, "TLS reload failed; the previous certificates stay in use")
            }
        }
    }
    if close {
        let n = transports.close_tls_connections();
        tracing::info!(
            connections = n,
            "closing TLS connections gracefully so peers reconnect"
        );
    }
}

/// `sbc reload` / SIGHUP: the configuration read again and applied to
/// new calls ([`crate::reload`]); a refused one leaves the running one.
fn reload_config(
    core: &mut Core,
    reloader: &mut crate::reload::Reloader,
    notify: &crate::notify::Notify,
) -> Result<String, String> {
    notify.reloading();
    let r = reloader.reload(&mut core.b2b, &mut core.trunk_tls, Instant::now());
    core.shield.trunks_changed(core.b2b.trunks());
    // A profile the new file added is shown (and its expiry exported) too.
    core.certs = crate::http::CertWatch::new(reloader.tls_map());
    core.counters.reloads = reloader.applied;
    core.counters.reloads_refused = reloader.refused;
    match &r {
        Ok(text) => tracing::info!("configuration reloaded: {text}"),
        Err(e) => {
            tracing::error!("configuration reload refused, the running one stays: {e}")
        }
    }
    core.flush();
    core.publish();
    notify.ready("reloaded");
    r
}

/// The `counters` line (and `registrar counters` with phones), from the
/// same table as `/metrics`.
fn log_stats(s: &crate::http::Snapshot) {
    tracing::info!(
        "counters {}",
        crate::http::log_line(s, crate::http::FIGURES)
    );
    if s.registrar.is_some() {
        tracing::info!(
            "registrar counters {}",
            crate::http::log_line(s, crate::http::REGISTRAR)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn received_and_rport_fill_in_the_source() {
        let raw = Bytes::from_static(
            b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;rport;branch=z9hG4bK1, SIP/2.0/UDP x\r\nCall-ID: c\r\n\r\n",
        );
        let mut m = Message::parse(raw).unwrap();
        received_and_rport(&mut m, "192.0.2.9:40000".parse().unwrap());
        let v = m.top_via().unwrap();
        assert_eq!(v.received(), Some(&b"192.0.2.9"[..]));
        assert_eq!(v.rport(), Some(Some(&b"40000"[..])));
        assert_eq!(v.branch(), Some(&b"z9hG4bK1"[..]));
        assert_eq!(m.via().count(), 2);
        // Nothing to note: untouched.
        let raw = Bytes::from_static(
            b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.9:5060;branch=z9hG4bK1\r\n\r\n",
        );
        let mut m = Message::parse(raw).unwrap();
        received_and_rport(&mut m, "192.0.2.9:5060".parse().unwrap());
        assert!(!m.is_modified());
    }
}
