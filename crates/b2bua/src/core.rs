//! The B2BUA proper: the call table and every SIP flow.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use media::control::{CryptoSpec, MediaOp, SessionInfo, Side};
use routing::{Attempt, Outcome, Plan};
use sip::{HeaderName, Message};
use transaction::{
    response_to, ClientKey, Endpoint, Event, Peer, ServerKey, TimerConfig, Transmit, Transport,
    TxKey,
};
use trunk::{Classifier, Health, MediaSecurity, PaiPolicy, TrunkSpec};

use crate::build::{
    display_of, has_token, header_by_name, header_text, leading_number, push, quoted, sdp_body,
    tag_of, uri_of, uri_transport, without_tag, ALLOW,
};
use crate::cdr::{AttemptRecord, Cdr};
use crate::media::{self as md, MediaControl, PartyMedia, Remote};
use crate::number::{number_of, plus};

/// B2BUA configuration.
#[derive(Debug)]
pub struct Config {
    /// The trunks (carrier, Teams, ACS, gateway), with peer addresses
    /// resolved (`PeerSpec::addr` set) by the shell.
    pub trunks: Vec<TrunkSpec>,
    /// The routing table.
    pub routes: routing::Table,
    /// `User-Agent` / `Server` value.
    pub agent: String,
    /// Transaction timers.
    pub timers: TimerConfig,
    /// Seed for tags, branches and Call-IDs (the shell passes a random one).
    pub seed: u64,
    /// Session interval we grant a refresher (RFC 4028), seconds.
    pub session_expires: u32,
    /// Option tags written in Supported.
    pub supported: String,
}

/// Something for the B2BUA to process.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Input {
    /// A message (validated by `sip::inspect`) from `from`, received on the
    /// listener `local`; `tls_names` are the DNS names of the peer's TLS
    /// certificate when it came over TLS.
    Receive {
        /// The message.
        msg: Message,
        /// Who sent it.
        from: Peer,
        /// The local listener address.
        local: SocketAddr,
        /// Names in the peer's TLS certificate.
        tls_names: Option<Vec<String>>,
    },
    /// Time passed (call at [`B2bua::poll_timeout`]).
    Timeout,
    /// Sending to `to` failed (connection refused, TLS handshake failure…).
    TransportError {
        /// The peer.
        to: Peer,
        /// True when the TLS handshake failed.
        tls: bool,
    },
    /// The relay saw no media on a session for its inactivity time.
    MediaInactive {
        /// Relay session id.
        session: u64,
    },
}

/// Something for the shell: a finished call's record, a health change.
#[derive(Debug, Clone)]
pub enum Output {
    /// A call ended.
    Cdr(Box<Cdr>),
    /// A change for the media relay (never waited for).
    Media(MediaOp),
    /// A trunk peer went up or down.
    Health {
        /// Trunk name.
        trunk: String,
        /// Peer host.
        host: String,
        /// Now up?
        up: bool,
        /// Why.
        reason: String,
    },
}

/// What the B2BUA did, for the status line and metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    /// Calls accepted for routing.
    pub calls: u64,
    /// Calls answered.
    pub answered: u64,
    /// Calls that failed (no answer, no route, every destination failed).
    pub failed: u64,
    /// Failovers to a next attempt.
    pub failovers: u64,
    /// Requests refused because their source matched no trunk.
    pub unclassified: u64,
    /// Requests refused because no route matched.
    pub no_route: u64,
    /// OPTIONS answered.
    pub options_answered: u64,
    /// OPTIONS pings sent to trunk peers.
    pub pings: u64,
    /// Transfers (REFER) completed.
    pub transfers: u64,
    /// Requests answered 481 (no such dialog).
    pub no_dialog: u64,
    /// INVITEs refused while draining.
    pub refused_draining: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LegState {
    /// INVITE sent / received, no final yet.
    Trying,
    /// 2xx sent / received.
    Confirmed,
    /// BYE sent or received, or the attempt failed.
    Ended,
}

/// One dialog of a call with one party.
#[derive(Debug)]
struct Leg {
    trunk: usize,
    /// Relay side facing this party.
    side: Side,
    /// Where requests of this dialog go (same connection for streams).
    peer: Peer,
    /// Peer index within the trunk (outbound legs).
    peer_index: Option<usize>,
    /// True when we sent the INVITE that made this leg.
    uac: bool,
    call_id: String,
    local_tag: String,
    remote_tag: Option<String>,
    /// Our name-addr (no tag): From of our requests on a UAC leg, To on a UAS leg.
    local_uri: String,
    remote_uri: String,
    local_cseq: u32,
    remote_target: Option<String>,
    route_set: Vec<String>,
    contact: String,
    state: LegState,
    /// The initial INVITE client transaction (UAC legs).
    invite: Option<ClientKey>,
    /// Our ACK for its 2xx as sent (printed: a parsed message would be
    /// 1 KiB more per call), resent for 2xx retransmissions until 64·T1.
    ack: Option<Bytes>,
    /// We ACKed a 2xx on this leg (the ACK itself is forgotten later).
    acked: bool,
    /// Our 2xx to its INVITE (UAS legs over UDP: retransmitted until ACK).
    ok: Option<Box<(ServerKey, Message)>>,
    media: PartyMedia,
    /// Session-timer interval the party refreshes at, seconds.
    session_expires: Option<u32>,
    /// The outcome of this leg's attempt, for the CDR.
    attempt: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CallState {
    /// Looking for a destination that answers.
    Routing,
    /// Answered: both legs confirmed.
    Answered,
    /// Ending: BYEs/CANCEL out, waiting for the last transactions.
    Ended,
}

#[derive(Debug)]
struct Refer {
    /// The leg that sent the REFER (the transferor's dialog).
    from_leg: usize,
    /// The new leg toward the transfer target.
    new_leg: usize,
}

#[derive(Debug)]
struct Call {
    id: u64,
    state: CallState,
    start: Instant,
    session: Option<SessionInfo>,
    legs: Vec<Leg>,
    /// The caller's leg (index into legs): 0 for the original INVITE.
    a: usize,
    /// The callee's current leg.
    b: Option<usize>,
    /// The caller's INVITE server transaction until its final response.
    a_invite: Option<ServerKey>,
    /// The caller's INVITE (headers copied to attempts).
    /// Dropped once the caller is answered (only its INVITE's answers need it).
    a_request: Option<Box<Message>>,
    plan: Option<Plan>,
    attempts: Vec<AttemptRecord>,
    relayed_18x: bool,
    last_relayed: Option<u16>,
    /// The caller sent no SDP: we offered to the callee and must offer to
    /// the caller in our 2xx, its ACK carrying the answer.
    late_offer: bool,
    calling: String,
    called: String,
    display: Option<String>,
    route: Option<String>,
    ringing: Option<Instant>,
    answered: Option<Instant>,
    status: u16,
    reason: String,
    ended_by: String,
    transfers: u32,
    refer: Option<Refer>,
    cdr_done: bool,
    /// Keys of this call's armed timers (so that ending or re-arming one
    /// does not scan every timer of every call).
    timers: Vec<(Instant, u64)>,
    from_trunk: usize,
}

/// What a client transaction of ours is for.
#[derive(Debug, Clone, Copy)]
enum Pending {
    /// The INVITE of a leg (an attempt, or a transfer's new leg).
    Invite { call: u64, leg: usize },
    /// A re-INVITE forwarded from leg `from` (server transaction `server`)
    /// to leg `to`.
    ReInvite {
        call: u64,
        from: usize,
        to: usize,
        server: ServerKey,
    },
    /// A request forwarded with its answer relayed back (INFO).
    Forward { server: ServerKey },
    /// Our BYE, NOTIFY, CANCEL: nothing to do with the answer.
    Fire,
    /// The INVITE of a call that ended before this leg answered: a 2xx
    /// (the CANCEL/200 race) is ACKed and hung up from the response alone.
    Abandoned { trunk: usize, peer: Peer },
    /// An OPTIONS ping to a trunk peer.
    Ping { trunk: usize, peer: usize },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    /// No response to an attempt's INVITE in the trunk's INVITE timeout.
    Invite { call: u64, leg: usize },
    /// Retransmit our 2xx to a UDP caller until its ACK (RFC 3261 §13.3.1.4).
    Resend {
        call: u64,
        leg: usize,
        interval_ms: u64,
        /// Time since the 2xx was first sent when this timer fires.
        elapsed_ms: u64,
    },
    /// The session interval of a leg passed without a refresh.
    SessionExpires { call: u64, leg: usize },
    /// 64·T1 after our ACK for a leg's 2xx: no retransmission of that 2xx
    /// can come any more (RFC 3261 §13.3.1.4), so the stored ACK goes.
    ForgetAck { call: u64, leg: usize },
}

impl Timer {
    fn call(&self) -> u64 {
        match *self {
            Timer::Invite { call, .. }
            | Timer::Resend { call, .. }
            | Timer::SessionExpires { call, .. }
            | Timer::ForgetAck { call, .. } => call,
        }
    }
}

/// The back-to-back user agent. See the crate documentation.
pub struct B2bua {
    cfg: Config,
    ep: Endpoint,
    ctl: Box<dyn MediaControl + Send>,
    classifier: Classifier,
    health: Vec<Health>,
    /// Boxed: a map of ≈ 600-byte values would carry its empty buckets at
    /// that size too (up to half the table after a resize).
    calls: HashMap<u64, Box<Call>>,
    /// (Call-ID, our tag) → (call, leg).
    dialogs: HashMap<(String, String), (u64, usize)>,
    /// The caller's INVITE server transaction → call.
    invites: HashMap<ServerKey, u64>,
    clients: HashMap<ClientKey, Pending>,
    timers: BTreeMap<(Instant, u64), Timer>,
    timer_seq: u64,
    next_call: u64,
    uniq: u64,
    outputs: VecDeque<Output>,
    draining: bool,
    counters: Counters,
    active: Vec<u32>,
    now: Instant,
    /// Classification of the request being received (trunk, listener).
    class: Option<(Option<usize>, SocketAddr)>,
    /// INVITE server transactions alive (a drain waits for them).
    server_invites: std::collections::HashSet<ServerKey>,
    /// Requests we forwarded and answer when the other side does:
    /// server transaction → (request, call, leg it came on).
    held: HashMap<ServerKey, (Message, u64, usize)>,
}

impl std::fmt::Debug for B2bua {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("B2bua")
            .field("calls", &self.calls.len())
            .field("transactions", &self.ep.len())
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

fn outcome_text(o: Outcome) -> String {
    match o {
        Outcome::Final(c) => c.to_string(),
        Outcome::Timeout => "timeout".into(),
        Outcome::TransportError => "transport".into(),
        Outcome::Provisional => "provisional".into(),
        Outcome::Answered => "answered".into(),
    }
}

fn reason_phrase(code: u16) -> &'static str {
    match code {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        183 => "Session Progress",
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        491 => "Request Pending",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        603 => "Decline",
        _ => "Unknown",
    }
}

impl B2bua {
    /// A B2BUA with no calls; the first OPTIONS pings are due at `now`.
    pub fn new(cfg: Config, ctl: Box<dyn MediaControl + Send>, now: Instant) -> B2bua {
        let ep = Endpoint::new(transaction::Config {
            timers: cfg.timers,
            seed: cfg.seed,
        });
        let classifier = Classifier::new(&cfg.trunks);
        let health = cfg
            .trunks
            .iter()
            .enumerate()
            .map(|(i, t)| Health::new(t, cfg.seed ^ ((i as u64 + 1) << 48), now))
            .collect();
        let active = vec![0; cfg.trunks.len()];
        let uniq = cfg.seed;
        B2bua {
            cfg,
            ep,
            ctl,
            classifier,
            health,
            calls: HashMap::new(),
            dialogs: HashMap::new(),
            invites: HashMap::new(),
            clients: HashMap::new(),
            timers: BTreeMap::new(),
            timer_seq: 0,
            next_call: 1,
            uniq,
            outputs: VecDeque::new(),
            draining: false,
            counters: Counters::default(),
            active,
            now,
            class: None,
            server_invites: std::collections::HashSet::new(),
            held: HashMap::new(),
        }
    }

    /// Processes one input at `now`.
    pub fn handle(&mut self, now: Instant, input: Input) {
        self.now = now.max(self.now);
        let now = self.now;
        match input {
            Input::Receive {
                msg,
                from,
                local,
                tls_names,
            } => {
                if msg.is_request() {
                    // The Request-URI host names the trunk FQDN the peer is
                    // calling (Teams and ACS share proxies and certificates).
                    let host = msg.request_uri().and_then(Result::ok).and_then(|u| {
                        u.as_sip()
                            .map(|s| s.host_raw.trim_matches(['[', ']']).to_owned())
                    });
                    let trunk = self.classifier.classify_named(
                        local,
                        from.addr.ip(),
                        from.transport,
                        tls_names.as_deref(),
                        host.as_deref(),
                    );
                    self.class = Some((trunk, local));
                }
                self.ep
                    .handle(now, transaction::Input::Receive { msg, from });
                self.process_events();
                self.class = None;
            }
            Input::Timeout => {
                self.ep.handle(now, transaction::Input::Timeout);
            }
            Input::TransportError { to, tls } => {
                let why = if tls {
                    trunk::Failure::Tls
                } else {
                    trunk::Failure::Transport
                };
                for (i, t) in self.cfg.trunks.iter().enumerate() {
                    for (p, ps) in t.peers.iter().enumerate() {
                        if ps.addr == Some(to.addr) && ps.transport == to.transport {
                            self.health[i].on_failure(now, p, why);
                        }
                    }
                }
                self.ep
                    .handle(now, transaction::Input::TransportError { to });
            }
            Input::MediaInactive { session } => {
                let id = self
                    .calls
                    .values()
                    .find(|c| c.session.is_some_and(|s| s.id == session))
                    .map(|c| c.id);
                if let Some(id) = id {
                    self.end_call(id, "media timeout", "sbc", 408);
                }
            }
        }
        self.process_events();
        self.fire_timers(now);
        self.run_health(now);
        self.process_events();
    }

    /// The next datagram or stream message to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.ep.poll_transmit()
    }

    /// The next output for the shell.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When to call [`handle`](B2bua::handle) with [`Input::Timeout`].
    pub fn poll_timeout(&self) -> Option<Instant> {
        let t = self.timers.keys().next().map(|(t, _)| *t);
        let h = self.health.iter().filter_map(Health::next_wakeup).min();
        [self.ep.poll_timeout(), t, h].into_iter().flatten().min()
    }

    /// Refuses new calls from now on (503); calls in progress go on.
    pub fn drain(&mut self) {
        self.draining = true;
    }

    /// Calls not yet ended.
    pub fn active_calls(&self) -> usize {
        self.calls.len()
    }

    /// INVITE server transactions not answered yet, or answered with a
    /// non-2xx final still waiting for its ACK over UDP. A drain waits for them.
    pub fn pending_invites(&self) -> usize {
        self.server_invites.len()
    }

    /// Live transactions.
    pub fn transactions(&self) -> usize {
        self.ep.len()
    }

    /// Counters.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// The configured trunks.
    pub fn trunks(&self) -> &[TrunkSpec] {
        &self.cfg.trunks
    }

    /// Health of each peer of trunk `trunk`.
    pub fn peer_states(&self, trunk: usize) -> Vec<trunk::PeerState> {
        let n = self.cfg.trunks.get(trunk).map_or(0, |t| t.peers.len());
        (0..n).map(|p| self.health[trunk].state(p)).collect()
    }

    // ----- plumbing ----------------------------------------------------------

    fn unique(&mut self) -> String {
        self.uniq = self
            .uniq
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let x = self.uniq ^ (self.uniq >> 29);
        format!("{x:016x}")
    }

    fn arm(&mut self, at: Instant, t: Timer) {
        self.timer_seq += 1;
        let key = (at, self.timer_seq);
        if let Some(c) = self.calls.get_mut(&t.call()) {
            c.timers.push(key);
        }
        self.timers.insert(key, t);
    }

    /// Disarms the timers of call `id` that `pred` picks.
    fn disarm(&mut self, id: u64, pred: impl Fn(&Timer) -> bool) {
        let Some(c) = self.calls.get_mut(&id) else {
            return;
        };
        Self::disarm_keys(&mut self.timers, &mut c.timers, pred);
    }

    fn disarm_keys(
        timers: &mut BTreeMap<(Instant, u64), Timer>,
        keys: &mut Vec<(Instant, u64)>,
        pred: impl Fn(&Timer) -> bool,
    ) {
        keys.retain(|k| match timers.get(k) {
            Some(t) if pred(t) => {
                timers.remove(k);
                false
            }
            Some(_) => true,
            None => false,
        });
    }

    fn fire_timers(&mut self, now: Instant) {
        while let Some((&(at, seq), _)) = self.timers.iter().next() {
            if at > now {
                break;
            }
            let Some(t) = self.timers.remove(&(at, seq)) else {
                break;
            };
            if let Some(c) = self.calls.get_mut(&t.call()) {
                c.timers.retain(|k| *k != (at, seq));
            }
            self.on_timer(now, t);
            self.process_events();
        }
    }

    fn run_health(&mut self, now: Instant) {
        for i in 0..self.health.len() {
            while let Some(ping) = self.health[i].poll_ping(now) {
                let Some(addr) = self.cfg.trunks[i].peers[ping.peer].addr else {
                    continue;
                };
                let to = Peer::new(addr, self.cfg.trunks[i].peers[ping.peer].transport);
                match self.ep.send_request(now, ping.msg, to) {
                    Ok(key) => {
                        self.counters.pings += 1;
                        self.clients.insert(
                            key,
                            Pending::Ping {
                                trunk: i,
                                peer: ping.peer,
                            },
                        );
                    }
                    Err(e) => tracing::warn!(%e, "OPTIONS ping not sent"),
                }
            }
            while let Some(ch) = self.health[i].poll_change() {
                let trunk = self.cfg.trunks[i].name.clone();
                tracing::info!(%trunk, host = %ch.host, up = ch.up, reason = %ch.reason, "trunk peer health");
                self.outputs.push_back(Output::Health {
                    trunk,
                    host: ch.host,
                    up: ch.up,
                    reason: ch.reason,
                });
            }
        }
    }

    fn process_events(&mut self) {
        while let Some(ev) = self.ep.poll_event() {
            match ev {
                Event::Request { key, msg, from } => self.on_request(key, msg, from),
                Event::Response { key, msg } => self.on_response(key, msg),
                Event::Cancelled { invite, .. } => self.on_cancelled(invite),
                Event::Ack { msg, .. } => self.on_ack(msg),
                Event::Timeout { key } => self.on_client_failure(key, Outcome::Timeout),
                Event::TransportError { key } => {
                    self.on_client_failure(key, Outcome::TransportError)
                }
                Event::Terminated { key } => match key {
                    TxKey::Client(k) => {
                        self.clients.remove(&k);
                    }
                    TxKey::Server(k) => {
                        self.invites.remove(&k);
                        self.server_invites.remove(&k);
                    }
                },
                Event::AckTimeout { .. } | Event::StrayResponse { .. } | Event::Dropped { .. } => {}
                _ => {}
            }
        }
    }

    fn respond(&mut self, key: ServerKey, resp: Message) {
        // An INVITE answered 2xx is the call's business from now on (its
        // transaction only absorbs retransmissions): a drain need not wait.
        if resp.status().is_some_and(|s| (200..300).contains(&s)) {
            self.server_invites.remove(&key);
        }
        if let Err(e) = self.ep.respond(self.now, key, resp) {
            tracing::debug!(%e, "response not sent");
        }
    }

    /// A response to `req` with our tag, Server, Allow (and X-MS-SBC toward
    /// Microsoft trunks).
    fn reply(
        &mut self,
        key: ServerKey,
        req: &Message,
        code: u16,
        tag: Option<&str>,
        trunk: Option<usize>,
    ) {
        let Ok(mut r) = response_to(req, code, reason_phrase(code), tag) else {
            return;
        };
        self.decorate(&mut r, trunk);
        if code == 405 || code == 501 || (200..300).contains(&code) {
            push(&mut r, "Allow", ALLOW);
        }
        if code == 503 {
            push(&mut r, "Retry-After", "5");
        }
        self.respond(key, r);
    }

    fn decorate(&self, m: &mut Message, trunk: Option<usize>) {
        let t = trunk.and_then(|t| self.cfg.trunks.get(t));
        let agent = t.map_or(self.cfg.agent.as_str(), |t| {
            if t.headers.user_agent.is_empty() {
                self.cfg.agent.as_str()
            } else {
                t.headers.user_agent.as_str()
            }
        });
        let name = if m.is_request() {
            "User-Agent"
        } else {
            "Server"
        };
        push(m, name, agent);
        if let Some(x) = t.and_then(|t| t.headers.x_ms_sbc.as_deref()) {
            push(m, "X-MS-SBC", x);
        }
    }

    fn via(&mut self, trunk: usize, transport: Transport) -> String {
        let t = &self.cfg.trunks[trunk];
        let host = t.fqdn.clone();
        let port = t.local_port;
        let branch = self.unique();
        format!(
            "SIP/2.0/{} {host}:{port};branch=z9hG4bK{branch};rport",
            transport.as_str()
        )
    }

    // ----- requests ------------------------------------------------------------

    fn on_request(&mut self, key: ServerKey, msg: Message, from: Peer) {
        let class = self.class.and_then(|(t, _)| t);
        let method = msg.method_str().unwrap_or("").to_owned();
        if method == "INVITE" {
            self.server_invites.insert(key);
        }
        let to_tag = msg
            .to()
            .ok()
            .and_then(|t| t.tag().map(|t| String::from_utf8_lossy(t).into_owned()));
        if let Some(tag) = to_tag {
            let call_id = msg.call_id().unwrap_or("").to_owned();
            match self.dialogs.get(&(call_id, tag.clone())).copied() {
                Some((call, leg)) => self.in_dialog(key, msg, call, leg),
                None => {
                    self.counters.no_dialog += 1;
                    self.reply(key, &msg, 481, Some(&tag), class);
                }
            }
            return;
        }
        let Some(trunk) = class else {
            self.counters.unclassified += 1;
            tracing::info!(peer = %from.addr, %method, "request from an unknown source refused");
            let tag = self.unique();
            self.reply(key, &msg, 403, Some(&tag), None);
            return;
        };
        match method.as_str() {
            "INVITE" => self.new_call(key, msg, from, trunk),
            "OPTIONS" if self.draining => {
                // Draining: tell the peer (Microsoft marks us down, a
                // carrier moves to the other SBC) to send new calls elsewhere.
                self.counters.refused_draining += 1;
                let tag = self.unique();
                if let Ok(mut r) = response_to(&msg, 503, "Service Unavailable", Some(&tag)) {
                    push(&mut r, "Retry-After", "30");
                    self.decorate(&mut r, Some(trunk));
                    self.respond(key, r);
                }
            }
            "OPTIONS" => {
                self.counters.options_answered += 1;
                let tag = self.unique();
                let Ok(mut r) = response_to(&msg, 200, "OK", Some(&tag)) else {
                    return;
                };
                let t = &self.cfg.trunks[trunk];
                push(&mut r, "Contact", &t.contact());
                push(&mut r, "Allow", ALLOW);
                push(&mut r, "Accept", "application/sdp");
                push(&mut r, "Supported", &self.cfg.supported.clone());
                self.decorate(&mut r, Some(trunk));
                self.respond(key, r);
            }
            "BYE" | "INFO" | "NOTIFY" | "REFER" | "UPDATE" | "PRACK" => {
                self.counters.no_dialog += 1;
                let tag = self.unique();
                self.reply(key, &msg, 481, Some(&tag), Some(trunk));
            }
            _ => {
                let tag = self.unique();
                self.reply(key, &msg, 501, Some(&tag), Some(trunk));
            }
        }
    }
}

// ----- calls -----------------------------------------------------------------

impl Leg {
    /// A leg of `trunk` facing relay side `side`, reached at `peer`, with
    /// the dialog's Call-ID, our tag and our Contact; everything else empty
    /// (callers set what they know with struct update syntax).
    fn new(
        trunk: usize,
        side: Side,
        peer: Peer,
        call_id: String,
        local_tag: String,
        contact: String,
    ) -> Leg {
        Leg {
            trunk,
            side,
            peer,
            peer_index: None,
            uac: false,
            call_id,
            local_tag,
            remote_tag: None,
            local_uri: String::new(),
            remote_uri: String::new(),
            local_cseq: 0,
            remote_target: None,
            route_set: Vec::new(),
            contact,
            state: LegState::Trying,
            invite: None,
            ack: None,
            acked: false,
            ok: None,
            media: PartyMedia::default(),
            session_expires: None,
            attempt: None,
        }
    }
}

/// The URI of the first Contact of a message (the remote target).
fn contact_uri(m: &Message) -> Option<String> {
    m.contacts().filter_map(Result::ok).find_map(|c| match c {
        sip::Contact::Addr(n) => Some(String::from_utf8_lossy(n.uri_raw).into_owned()),
        sip::Contact::Star => None,
    })
}

/// What a new UAS leg is made of (from the request that created it).
fn uas_leg(
    req: &Message,
    from: Peer,
    trunk: usize,
    side: Side,
    tag: String,
    contact: String,
) -> Leg {
    let route_set = req
        .values(HeaderName::RecordRoute)
        .map(|v| String::from_utf8_lossy(v).trim().to_owned())
        .collect();
    let remote_target = contact_uri(req);
    Leg {
        remote_tag: req.header(HeaderName::From).and_then(tag_of),
        local_uri: req
            .header(HeaderName::To)
            .map(without_tag)
            .unwrap_or_default(),
        remote_uri: req
            .header(HeaderName::From)
            .map(without_tag)
            .unwrap_or_default(),
        remote_target,
        route_set,
        ..Leg::new(
            trunk,
            side,
            from,
            req.call_id().unwrap_or("").to_owned(),
            tag,
            contact,
        )
    }
}

/// The session interval a request asks for, when the sender supports
/// session timers (RFC 4028), raised to 90 s at least.
fn session_interval(req: &Message) -> Option<u32> {
    let se = header_by_name(req, "Session-Expires")
        .or_else(|| header_by_name(req, "x"))
        .and_then(|v| leading_number(&v))?;
    Some(se.max(90))
}

impl B2bua {
    fn trunk_index(&self, name: &str) -> Option<usize> {
        self.cfg.trunks.iter().position(|t| t.name == name)
    }

    fn new_call(&mut self, key: ServerKey, msg: Message, from: Peer, trunk: usize) {
        let tag = self.unique();
        if self.draining {
            self.counters.refused_draining += 1;
            self.reply(key, &msg, 503, Some(&tag), Some(trunk));
            return;
        }
        if msg.max_forwards().ok().flatten() == Some(0) {
            self.reply(key, &msg, 483, Some(&tag), Some(trunk));
            return;
        }
        if let Some(rep) = header_by_name(&msg, "Replaces") {
            self.replaces(key, msg, from, trunk, &rep, tag);
            return;
        }
        let t = &self.cfg.trunks[trunk];
        if t.max_calls.is_some_and(|m| self.active[trunk] >= m) {
            tracing::info!(trunk = %t.name, "call limit reached");
            self.reply(key, &msg, 503, Some(&tag), Some(trunk));
            return;
        }
        let called_raw = msg
            .request_uri_raw()
            .and_then(number_of)
            .or_else(|| {
                msg.header(HeaderName::To)
                    .and_then(uri_of)
                    .and_then(|u| number_of(u.as_bytes()))
            })
            .unwrap_or_default();
        let called = t.numbers_in.called(&called_raw);
        let from_uri = msg
            .header(HeaderName::From)
            .and_then(uri_of)
            .unwrap_or_default();
        let calling_raw = number_of(from_uri.as_bytes()).unwrap_or_else(|| "anonymous".into());
        let calling = t.numbers_in.calling(&calling_raw);
        let display = msg.header(HeaderName::From).and_then(display_of);
        let Some(route) = self.cfg.routes.select(&t.name, &called) else {
            self.counters.no_route += 1;
            tracing::info!(trunk = %t.name, %called, "no route");
            self.reply(key, &msg, 404, Some(&tag), Some(trunk));
            return;
        };
        let health = &self.health;
        let trunks = &self.cfg.trunks;
        let plan = Plan::new(route, |name| {
            trunks
                .iter()
                .position(|t| t.name == name)
                .map(|i| health[i].order())
                .unwrap_or_default()
        });
        let route_name = route.name.clone();
        let first_dest = route.to.first().and_then(|d| self.trunk_index(&d.trunk));
        // The caller's media.
        let offer = sdp_body(&msg).map(|b| b.to_vec());
        let remote: Option<Remote> = match offer.as_deref().map(sdp::SessionDescription::parse) {
            None => None,
            Some(Ok(sd)) => match md::read_remote(&sd) {
                Ok(r) => Some(r),
                Err(e) => {
                    tracing::info!(%e, "offer refused");
                    self.reply(key, &msg, 488, Some(&tag), Some(trunk));
                    return;
                }
            },
            Some(Err(e)) => {
                tracing::info!(%e, "unparsable SDP");
                self.reply(key, &msg, 488, Some(&tag), Some(trunk));
                return;
            }
        };
        let t = &self.cfg.trunks[trunk];
        let mut ma = PartyMedia {
            proto: remote
                .as_ref()
                .map_or_else(|| proto_of(t.media).to_owned(), |r| r.proto.clone()),
            their_key: remote.as_ref().and_then(|r| r.key.clone()),
            mux: remote.as_ref().is_some_and(|r| r.mux),
            remote: remote.as_ref().and_then(|r| r.rtp),
            last_remote_sdp: offer.clone(),
            ..PartyMedia::default()
        };
        let their_tag = remote
            .as_ref()
            .and_then(|r| r.key.as_ref().map(|(_, t)| *t))
            .unwrap_or(1);
        if let Err(e) = md::ensure_key(
            self.ctl.as_mut(),
            &mut ma,
            remote.as_ref().and_then(|r| r.suite),
            their_tag,
        ) {
            tracing::warn!(%e, "no SRTP key");
            self.reply(key, &msg, 500, Some(&tag), Some(trunk));
            return;
        }
        let ia = self.ctl.interface(t.media_interface.as_deref());
        let b_trunk = first_dest.map(|i| &self.cfg.trunks[i]);
        let ib = self
            .ctl
            .interface(b_trunk.and_then(|t| t.media_interface.as_deref()));
        let mb = PartyMedia {
            mux: b_trunk.is_some_and(|t| t.media == MediaSecurity::Srtp),
            ..PartyMedia::default()
        };
        let session = match self.ctl.create(
            md::leg_spec(ia, &ma, remote.as_ref()),
            md::leg_spec(ib, &mb, None),
        ) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(%e, "no media ports");
                self.reply(key, &msg, 503, Some(&tag), Some(trunk));
                return;
            }
        };
        let contact = {
            let user = plus_if(t.e164, &called);
            t.contact_with_user(&user)
        };
        let mut leg = uas_leg(&msg, from, trunk, Side::A, tag.clone(), contact);
        leg.media = ma;
        leg.session_expires =
            session_interval(&msg).filter(|_| has_token(&msg, HeaderName::Supported, "timer"));
        let id = self.next_call;
        self.next_call += 1;
        self.dialogs.insert((leg.call_id.clone(), tag), (id, 0));
        self.invites.insert(key, id);
        self.active[trunk] += 1;
        self.counters.calls += 1;
        tracing::info!(call = id, from = %self.cfg.trunks[trunk].name, %calling, %called, route = %route_name, "new call");
        let call = Call {
            id,
            state: CallState::Routing,
            start: self.now,
            session: Some(session),
            legs: {
                // Two legs in nearly every call (a transfer adds a third).
                let mut legs = Vec::with_capacity(2);
                legs.push(leg);
                legs
            },
            a: 0,
            b: None,
            a_invite: Some(key),
            late_offer: offer.is_none(),
            a_request: Some(Box::new(msg)),
            plan: Some(plan),
            attempts: Vec::new(),
            relayed_18x: false,
            last_relayed: None,
            calling,
            called,
            display,
            route: Some(route_name),
            ringing: None,
            answered: None,
            status: 0,
            reason: String::new(),
            ended_by: String::new(),
            transfers: 0,
            refer: None,
            cdr_done: false,
            timers: Vec::new(),
            from_trunk: trunk,
        };
        self.calls.insert(id, Box::new(call));
        self.next_attempt(id, None);
    }

    /// Starts the next attempt of call `id`, or fails the call with the
    /// status the last failure suggests.
    fn next_attempt(&mut self, id: u64, last: Option<Outcome>) {
        loop {
            let Some(call) = self.calls.get_mut(&id) else {
                return;
            };
            let Some(att) = call.plan.as_mut().and_then(Iterator::next) else {
                let (code, why) = match last {
                    Some(Outcome::Final(c)) => (c, format!("every destination failed (last {c})")),
                    Some(Outcome::Timeout) => (408, "every destination timed out".into()),
                    Some(Outcome::TransportError) | None => {
                        (503, "no destination reachable".into())
                    }
                    Some(_) => (500, "routing ended".into()),
                };
                self.counters.failed += 1;
                self.end_call(id, &why, "sbc", code);
                return;
            };
            let Some(t) = self.trunk_index(&att.trunk) else {
                continue;
            };
            if self.cfg.trunks[t]
                .max_calls
                .is_some_and(|m| self.active[t] >= m)
            {
                self.record(id, &att, "limit");
                continue;
            }
            if self.cfg.trunks[t].peers[att.peer].addr.is_none() {
                self.record(id, &att, "unresolved");
                continue;
            }
            if last.is_some() {
                self.counters.failovers += 1;
                tracing::info!(call = id, trunk = %att.trunk, host = %self.cfg.trunks[t].peers[att.peer].host, "failing over");
            }
            match self.start_attempt(id, &att, t) {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(call = id, %e, "attempt not started");
                    self.record(id, &att, "error");
                }
            }
        }
    }

    fn record(&mut self, id: u64, att: &Attempt, outcome: &str) -> usize {
        let host = self
            .trunk_index(&att.trunk)
            .and_then(|t| self.cfg.trunks[t].peers.get(att.peer))
            .map(|p| p.host.clone())
            .unwrap_or_default();
        let Some(call) = self.calls.get_mut(&id) else {
            return 0;
        };
        call.attempts.push(AttemptRecord {
            trunk: att.trunk.clone(),
            peer: host,
            outcome: outcome.to_owned(),
            label: att.label.clone(),
        });
        call.attempts.len() - 1
    }

    /// Writes and sends the INVITE of an attempt toward peer `att.peer` of trunk `t`.
    fn start_attempt(&mut self, id: u64, att: &Attempt, t: usize) -> Result<(), String> {
        let ai = self.record(id, att, "pending");
        let call_id = format!("{}@{}", self.unique(), self.cfg.trunks[t].fqdn);
        let tag = self.unique();
        let via = self.via(t, self.cfg.trunks[t].peers[att.peer].transport);
        let trunk = &self.cfg.trunks[t];
        let peer = &trunk.peers[att.peer];
        let call = self.calls.get(&id).ok_or("call gone")?;
        let called = plus_if(trunk.e164, &trunk.numbers_out.called(&call.called));
        let calling_n = trunk.numbers_out.calling(&call.calling);
        let calling_is_number = crate::is_number(&calling_n);
        let calling = plus_if(trunk.e164, &calling_n);
        let tp = uri_transport(peer.transport);
        let phone = if trunk.e164 { ";user=phone" } else { "" };
        let tparam = if peer.transport == Transport::Udp {
            String::new()
        } else {
            format!(";transport={tp}")
        };
        let ruri = format!("sip:{called}@{}:{}{phone}{tparam}", peer.host, peer.port);
        let to = format!("<sip:{called}@{}{phone}>", peer.host);
        let display = match (&att.label, &call.display) {
            (Some(l), Some(d)) => Some(format!("{l} {d}")),
            (Some(l), None) => Some(l.clone()),
            (None, d) => d.clone(),
        };
        let from_uri = if calling_is_number {
            format!("<sip:{calling}@{}{phone}>", trunk.fqdn)
        } else {
            "<sip:anonymous@anonymous.invalid>".to_owned()
        };
        let from = match (&display, calling_is_number) {
            (Some(d), _) => format!("{} {from_uri}", quoted(d)),
            (None, false) => format!("\"Anonymous\" {from_uri}"),
            (None, true) => from_uri,
        };
        let contact = if calling_is_number {
            trunk.contact_with_user(&calling)
        } else {
            trunk.contact()
        };
        let a_request = call.a_request.as_deref().ok_or("caller already answered")?;
        let mf = a_request
            .max_forwards()
            .ok()
            .flatten()
            .map_or(70, |m| m.saturating_sub(1).min(70));
        let mut m = Message::new_request("INVITE", ruri.as_bytes()).map_err(|e| e.to_string())?;
        push(&mut m, "Via", &via);
        push(&mut m, "Max-Forwards", &mf.to_string());
        push(&mut m, "From", &format!("{from};tag={tag}"));
        push(&mut m, "To", &to);
        push(&mut m, "Call-ID", &call_id);
        push(&mut m, "CSeq", "1 INVITE");
        push(&mut m, "Contact", &contact);
        push(&mut m, "Allow", ALLOW);
        // History URIs name the other side's hosts and its number format:
        // rewritten as this trunk's number at this trunk's host.
        let in_trunk = &self.cfg.trunks[call.from_trunk];
        let history_uri = |uri: &str| -> String {
            let n = number_of(uri.as_bytes()).filter(|n| crate::is_number(n));
            let Some(n) = n else {
                return uri.to_owned();
            };
            let n = plus_if(
                trunk.e164,
                &trunk.numbers_out.called(&in_trunk.numbers_in.called(&n)),
            );
            let host = if trunk.kind.is_microsoft() {
                &peer.host
            } else {
                &trunk.fqdn
            };
            format!("sip:{n}@{host}{phone}")
        };
        // The asserted identity is ours toward this trunk: the caller's
        // number in this trunk's format at this trunk's FQDN.
        let pai_uri = |uri: &str| -> String {
            match number_of(uri.as_bytes()).filter(|n| crate::is_number(n)) {
                Some(n) => {
                    let n = plus_if(
                        trunk.e164,
                        &trunk.numbers_out.calling(&in_trunk.numbers_in.calling(&n)),
                    );
                    format!("sip:{n}@{}{phone}", trunk.fqdn)
                }
                None => uri.to_owned(),
            }
        };
        copy_identity(a_request, &mut m, trunk, &history_uri, &pai_uri);
        let (proto, mux) = (
            proto_of(trunk.media).to_owned(),
            trunk.media == MediaSecurity::Srtp,
        );
        let codecs = trunk.codecs.clone();
        let peer_addr = peer.addr.ok_or("peer address not resolved")?;
        let peer_t = peer.transport;
        let invite_timeout = trunk.invite_timeout;
        let local_uri = from.clone();
        let session = call.session.ok_or("no media session")?;
        let source_sdp = call.legs[call.a].media.last_remote_sdp.clone();
        let late = call.late_offer;
        // Media toward this destination: our key (kept across attempts while
        // the side stays SRTP), rtcp-mux as the relay leg was made.
        let prev = call.b.map(|b| call.legs[b].media.clone());
        let mut mb = PartyMedia {
            proto,
            mux: prev
                .as_ref()
                .map_or(mux, |p| p.mux)
                .max(mux && prev.is_none()),
            our_key: prev.and_then(|p| p.our_key),
            ..PartyMedia::default()
        };
        if !mb.secure() {
            mb.our_key = None;
        }
        md::ensure_key(self.ctl.as_mut(), &mut mb, None, 1)?;
        let ports = md::side_ports(&session, Side::B);
        let body = match source_sdp.as_deref().map(sdp::SessionDescription::parse) {
            Some(Ok(sd)) if !late => md::rewrite(sd, ports, &mut mb, &codecs)?,
            _ => md::generate_offer(ports, &mut mb, &codecs, id),
        };
        m.set_body(Some("application/sdp"), &body)
            .map_err(|e| e.to_string())?;
        self.outputs.push_back(Output::Media(MediaOp::Update {
            id: session.id,
            side: Side::B,
            remote_rtp: None,
            remote_rtcp: None,
            crypto: Some(CryptoSpec {
                rx: None,
                tx: mb.crypto_spec().tx,
            }),
            rtcp_mux: None,
        }));
        self.decorate(&mut m, Some(t));
        let to_peer = Peer::new(peer_addr, peer_t);
        let key = self
            .ep
            .send_request(self.now, m, to_peer)
            .map_err(|e| e.to_string())?;
        let leg = Leg {
            peer_index: Some(att.peer),
            uac: true,
            local_uri,
            remote_uri: to,
            local_cseq: 1,
            invite: Some(key),
            media: mb,
            attempt: Some(ai),
            ..Leg::new(t, Side::B, to_peer, call_id.clone(), tag.clone(), contact)
        };
        let call = self.calls.get_mut(&id).ok_or("call gone")?;
        call.legs.push(leg);
        let li = call.legs.len() - 1;
        call.b = Some(li);
        self.dialogs.insert((call_id, tag), (id, li));
        self.clients
            .insert(key, Pending::Invite { call: id, leg: li });
        self.active[t] += 1;
        let at = self.now + invite_timeout;
        self.arm(at, Timer::Invite { call: id, leg: li });
        if let Some(a) = self.calls.get_mut(&id).and_then(|c| c.attempts.get_mut(ai)) {
            a.outcome = "trying".into();
        }
        Ok(())
    }
}

fn proto_of(m: MediaSecurity) -> &'static str {
    match m {
        MediaSecurity::Srtp => "RTP/SAVP",
        MediaSecurity::Rtp => "RTP/AVP",
    }
}

fn plus_if(e164: bool, n: &str) -> String {
    if e164 {
        plus(n)
    } else {
        n.to_owned()
    }
}

/// Identity and history headers of the caller's INVITE carried to an
/// attempt under the destination trunk's policy: P-Asserted-Identity and
/// Privacy (pass or strip), History-Info ⇄ Diversion (RFC 7544 mapping of
/// the reason), headers on the pass list (`X-MS-Custom-…`). Replaces is
/// never copied (Microsoft refuses it).
fn copy_identity(
    from: &Message,
    to: &mut Message,
    t: &TrunkSpec,
    uri: &dyn Fn(&str) -> String,
    pai_uri: &dyn Fn(&str) -> String,
) {
    if t.headers.pai == PaiPolicy::Pass {
        if let Some(pai) = header_by_name(from, "P-Asserted-Identity") {
            // The first value, rewritten (never the other side's host).
            let first = pai.split(',').next().unwrap_or(&pai).trim().to_owned();
            let v = match sip::NameAddr::parse(first.as_bytes()) {
                Ok(n) => {
                    let u = pai_uri(&String::from_utf8_lossy(n.uri_raw));
                    match display_of(first.as_bytes()) {
                        Some(d) => format!("{} <{u}>", quoted(&d)),
                        None => format!("<{u}>"),
                    }
                }
                Err(_) => String::new(),
            };
            if !v.is_empty() {
                push(to, "P-Asserted-Identity", &v);
            }
        }
        if let Some(p) = header_by_name(from, "Privacy") {
            push(to, "Privacy", &p);
        }
    }
    let hi = header_by_name(from, "History-Info");
    let div = header_by_name(from, "Diversion");
    if let Some(d) = &div {
        if t.headers.diversion_to_history_info && t.kind.is_microsoft() {
            if let Some(h) = diversion_to_history(d, uri) {
                push(to, "History-Info", &h);
            }
        } else {
            push(to, "Diversion", d);
        }
    }
    if let Some(h) = &hi {
        if t.headers.history_info_to_diversion && !t.kind.is_microsoft() {
            if let Some(d) = history_to_diversion(h, uri) {
                push(to, "Diversion", &d);
            }
        } else if div.is_none() {
            push(to, "History-Info", h);
        }
    }
    for h in from.headers() {
        let name = String::from_utf8_lossy(h.name_raw).into_owned();
        if t.headers.passes(&name) {
            push(to, &name, &String::from_utf8_lossy(h.value));
        }
    }
}

/// Diversion reason → History-Info cause (RFC 7544 / RFC 6044).
fn diversion_to_history(d: &str, rewrite: &dyn Fn(&str) -> String) -> Option<String> {
    let n = sip::NameAddr::parse(d.as_bytes()).ok()?;
    let uri = rewrite(&String::from_utf8_lossy(n.uri_raw));
    let reason = n
        .params()
        .get("reason")
        .flatten()
        .map(|r| {
            String::from_utf8_lossy(r)
                .trim_matches('"')
                .to_ascii_lowercase()
        })
        .unwrap_or_else(|| "unknown".into());
    let cause = match reason.as_str() {
        "user-busy" => 486,
        "no-answer" => 408,
        "unconditional" => 302,
        "deflection" => 480,
        "unavailable" | "unknown" => 404,
        _ => 404,
    };
    Some(format!("<{uri}?Reason=SIP%3Bcause%3D{cause}>;index=1"))
}

/// History-Info cause → Diversion reason (the inverse mapping), from the
/// last entry carrying a cause.
fn history_to_diversion(h: &str, rewrite: &dyn Fn(&str) -> String) -> Option<String> {
    let entries: Vec<&str> = h.split(',').collect();
    let e = entries
        .iter()
        .rev()
        .find(|e| e.contains("cause%3D"))
        .or(entries.first())?;
    let n = sip::NameAddr::parse(e.trim().as_bytes()).ok()?;
    let uri_full = String::from_utf8_lossy(n.uri_raw).into_owned();
    let (uri, headers) = uri_full.split_once('?').unwrap_or((&uri_full, ""));
    let cause: Option<u16> = headers
        .split("cause%3D")
        .nth(1)
        .and_then(|r| r.get(..3))
        .and_then(|c| c.parse().ok());
    let reason = match cause {
        Some(486) => "user-busy",
        Some(408) => "no-answer",
        Some(302) => "unconditional",
        Some(480) => "deflection",
        Some(404) => "unavailable",
        _ => "unknown",
    };
    let uri = rewrite(uri);
    Some(format!("<{uri}>;reason={reason}"))
}

// ----- responses, dialogs, endings ------------------------------------------

impl B2bua {
    fn on_response(&mut self, key: ClientKey, msg: Message) {
        let Some(p) = self.clients.get(&key).copied() else {
            return;
        };
        let status = msg.status().unwrap_or(0);
        match p {
            Pending::Ping { trunk, peer } => {
                if status >= 200 {
                    self.health[trunk].on_response(self.now, peer, status);
                }
            }
            Pending::Invite { call, leg } => self.on_invite_response(call, leg, key, msg, status),
            Pending::ReInvite {
                call,
                from,
                to,
                server,
            } => self.on_reinvite_response(call, from, to, server, msg, status),
            Pending::Forward { server, .. } => {
                if status > 100 {
                    self.relay_response(server, &msg, status);
                }
            }
            Pending::Abandoned { trunk, peer } => {
                if (200..300).contains(&status) {
                    self.hang_up_late_answer(trunk, peer, &msg);
                }
            }
            Pending::Fire => {}
        }
    }

    /// ACK and BYE for a 2xx that answered an INVITE of a call already
    /// gone, written from the response (RFC 3261 §12.1.2 dialog state).
    fn hang_up_late_answer(&mut self, trunk: usize, peer: Peer, msg: &Message) {
        let mut route_set: Vec<String> = msg
            .values(HeaderName::RecordRoute)
            .map(|v| String::from_utf8_lossy(v).trim().to_owned())
            .collect();
        route_set.reverse();
        let remote_target = contact_uri(msg);
        let (Some(from), Some(to)) = (msg.header(HeaderName::From), msg.header(HeaderName::To))
        else {
            return;
        };
        let leg = Leg {
            uac: true,
            remote_tag: tag_of(to),
            local_uri: without_tag(from),
            remote_uri: without_tag(to),
            local_cseq: msg.cseq().map(|c| c.seq).unwrap_or(1),
            remote_target,
            route_set,
            state: LegState::Confirmed,
            ..Leg::new(
                trunk,
                Side::B,
                peer,
                msg.call_id().unwrap_or("").to_owned(),
                tag_of(from).unwrap_or_default(),
                self.cfg.trunks[trunk].contact(),
            )
        };
        let via = self.via(trunk, peer.transport);
        if let Some(mut ack) = dialog_request(&leg, "ACK", leg.local_cseq, &via) {
            if let Some(x) = &self.cfg.trunks[leg.trunk].headers.x_ms_sbc {
                push(&mut ack, "X-MS-SBC", x);
            }
            self.ep.send_stateless(&ack, peer);
        }
        let via = self.via(trunk, peer.transport);
        if let Some(mut bye) = dialog_request(&leg, "BYE", leg.local_cseq + 1, &via) {
            self.decorate(&mut bye, Some(trunk));
            match self.ep.send_request(self.now, bye, peer) {
                Ok(k) => {
                    self.clients.insert(k, Pending::Fire);
                }
                Err(e) => tracing::debug!(%e, "BYE not sent"),
            }
        }
    }

    /// Copies a response back on server transaction `server` (INFO): the
    /// status, and the body when there is one.
    fn relay_response(&mut self, server: ServerKey, msg: &Message, status: u16) {
        let Some((req, call, leg)) = self.held.get(&server).cloned() else {
            return;
        };
        let Some(l) = self
            .calls
            .get(&call)
            .map(|c| (c.legs[leg].local_tag.clone(), c.legs[leg].trunk))
        else {
            return;
        };
        let Ok(mut r) = response_to(&req, status, reason_phrase(status), Some(&l.0)) else {
            return;
        };
        if !msg.body().is_empty() {
            let ct = header_text(msg, HeaderName::ContentType);
            let _ = r.set_body(ct.as_deref(), msg.body());
        }
        self.decorate(&mut r, Some(l.1));
        if status >= 200 {
            self.held.remove(&server);
        }
        self.respond(server, r);
    }

    fn on_invite_response(
        &mut self,
        id: u64,
        li: usize,
        key: ClientKey,
        msg: Message,
        status: u16,
    ) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let is_transfer = call.refer.as_ref().is_some_and(|r| r.new_leg == li);
        let current = call.b == Some(li) && call.state == CallState::Routing;
        let already_confirmed = call.legs[li].state == LegState::Confirmed;
        let was_ended = call.legs[li].state == LegState::Ended;
        if status >= 100 {
            self.disarm(id, |t| matches!(t, Timer::Invite { leg, .. } if *leg == li));
        }
        if (200..300).contains(&status) {
            if already_confirmed {
                let Some(l) = self.calls.get(&id).map(|c| &c.legs[li]) else {
                    return;
                };
                let (trunk, peer) = (l.trunk, l.peer);
                if msg.header(HeaderName::To).and_then(tag_of) != l.remote_tag {
                    // A second fork answered too: ACK and hang up its
                    // dialog; the call stays with the first.
                    self.hang_up_late_answer(trunk, peer, &msg);
                } else if let Some(ack) = l.ack.clone() {
                    // A retransmitted 2xx: ACK again.
                    self.ep.send_stateless_bytes(ack, peer);
                }
                return;
            }
            self.confirm_uac(id, li, &msg, is_transfer || current);
            if is_transfer {
                self.transfer_answered(id, li, &msg);
            } else if current {
                self.callee_answered(id, li, &msg);
            } else {
                // An abandoned attempt answered after all: hang it up.
                // Giving up on it released its trunk slot; bye() releases
                // it again, so take it back first.
                if let Some(t) = self.calls.get(&id).map(|c| c.legs[li].trunk) {
                    if was_ended {
                        self.active[t] += 1;
                    }
                }
                self.bye(id, li);
            }
            let _ = key;
            return;
        }
        if status < 200 {
            if current && status > 100 {
                self.callee_progress(id, li, &msg, status);
            }
            return;
        }
        // A final failure. The trunk slot is released once: a leg given up
        // on (INVITE timeout, CANCEL) released it already.
        call_leg_end(&mut self.calls, &mut self.active, id, li);
        if is_transfer {
            self.transfer_failed(id, li, status);
            return;
        }
        if current {
            self.attempt_failed(id, li, Outcome::Final(status));
        }
    }

    /// Fills the dialog of a UAC leg from its 2xx and ACKs it; with
    /// `media`, its SDP goes to the relay (not for an abandoned attempt's
    /// late 2xx: media stays with the leg that is the call).
    fn confirm_uac(&mut self, id: u64, li: usize, msg: &Message, media: bool) {
        let via = {
            let Some(call) = self.calls.get(&id) else {
                return;
            };
            let leg = &call.legs[li];
            self.via(leg.trunk, leg.peer.transport)
        };
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let leg = &mut call.legs[li];
        leg.state = LegState::Confirmed;
        leg.remote_tag = msg.header(HeaderName::To).and_then(tag_of);
        leg.remote_target = contact_uri(msg);
        let mut rr: Vec<String> = msg
            .values(HeaderName::RecordRoute)
            .map(|v| String::from_utf8_lossy(v).trim().to_owned())
            .collect();
        rr.reverse();
        leg.route_set = rr;
        let cseq = msg.cseq().map(|c| c.seq).unwrap_or(1);
        if let Some(mut ack) = dialog_request(leg, "ACK", cseq, &via) {
            if let Some(x) = &self.cfg.trunks[leg.trunk].headers.x_ms_sbc {
                push(&mut ack, "X-MS-SBC", x);
            }
            let bytes = ack.to_bytes();
            self.ep.send_stateless_bytes(bytes.clone(), leg.peer);
            leg.ack = Some(bytes);
            leg.acked = true;
            let at = self.now + self.cfg.timers.t1 * 64;
            self.arm(at, Timer::ForgetAck { call: id, leg: li });
        }
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if let Some(body) = sdp_body(msg).map(<[u8]>::to_vec).filter(|_| media) {
            let session = call.session;
            let leg = &mut call.legs[li];
            apply_remote(&mut self.outputs, session, leg, &body);
        }
    }

    fn callee_progress(&mut self, id: u64, li: usize, msg: &Message, status: u16) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let session = call.session;
        if let Some(att) = call.legs[li].attempt.and_then(|a| call.attempts.get_mut(a)) {
            att.outcome = "ringing".into();
        }
        let body = sdp_body(msg).map(<[u8]>::to_vec);
        if let Some(b) = &body {
            apply_remote(&mut self.outputs, session, &mut call.legs[li], b);
        }
        let early_sdp = body.is_some() && !call.late_offer;
        if call.last_relayed == Some(status) && !early_sdp {
            return;
        }
        let Some(server) = call.a_invite else {
            return;
        };
        let a = call.a;
        let a_tag = call.legs[a].local_tag.clone();
        let a_trunk = call.legs[a].trunk;
        let code = if status == 183 && !early_sdp {
            180
        } else {
            status
        };
        let Some(Ok(mut r)) = call
            .a_request
            .as_deref()
            .map(|q| response_to(q, code, reason_phrase(code), Some(&a_tag)))
        else {
            return;
        };
        push(&mut r, "Contact", &call.legs[a].contact);
        if early_sdp {
            if let (Some(b), Some(s)) = (&body, session) {
                if let Ok(sd) = sdp::SessionDescription::parse(b) {
                    let ports = md::side_ports(&s, call.legs[a].side);
                    if let Ok(out) = md::rewrite(sd, ports, &mut call.legs[a].media, &[]) {
                        let _ = r.set_body(Some("application/sdp"), &out);
                    }
                }
            }
        }
        call.relayed_18x = true;
        call.last_relayed = Some(code);
        call.ringing.get_or_insert(self.now);
        self.decorate(&mut r, Some(a_trunk));
        self.respond(server, r);
    }

    fn callee_answered(&mut self, id: u64, li: usize, msg: &Message) {
        let now = self.now;
        let t1 = self.cfg.timers.t1;
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        call.state = CallState::Answered;
        call.answered = Some(now);
        call.status = 200;
        if let Some(att) = call.legs[li].attempt.and_then(|a| call.attempts.get_mut(a)) {
            att.outcome = "answered".into();
        }
        self.counters.answered += 1;
        let Some(server) = call.a_invite.take() else {
            return;
        };
        let a = call.a;
        let session = call.session;
        let a_tag = call.legs[a].local_tag.clone();
        let a_trunk = call.legs[a].trunk;
        let Some(Ok(mut r)) = call
            .a_request
            .take()
            .map(|q| response_to(&q, 200, "OK", Some(&a_tag)))
        else {
            return;
        };
        push(&mut r, "Contact", &call.legs[a].contact);
        push(&mut r, "Allow", ALLOW);
        if let Some(se) = call.legs[a].session_expires {
            push(&mut r, "Session-Expires", &format!("{se};refresher=uac"));
            push(&mut r, "Require", "timer");
        }
        let b_sdp = sdp_body(msg)
            .map(<[u8]>::to_vec)
            .or_else(|| call.legs[li].media.last_remote_sdp.clone());
        if let (Some(b), Some(s)) = (b_sdp, session) {
            if let Ok(sd) = sdp::SessionDescription::parse(&b) {
                let ports = md::side_ports(&s, call.legs[a].side);
                match md::rewrite(sd, ports, &mut call.legs[a].media, &[]) {
                    Ok(out) => {
                        let _ = r.set_body(Some("application/sdp"), &out);
                    }
                    Err(e) => tracing::warn!(call = id, %e, "answer SDP not written"),
                }
            }
        }
        self.decorate(&mut r, Some(a_trunk));
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let a_leg = &mut call.legs[a];
        a_leg.state = LegState::Confirmed;
        let udp = a_leg.peer.transport == Transport::Udp;
        if udp {
            a_leg.ok = Some(Box::new((server, r.clone())));
        }
        let se = a_leg.session_expires;
        tracing::info!(call = id, "answered");
        self.respond(server, r);
        if udp {
            let ms = t1.as_millis() as u64;
            self.arm(
                now + t1,
                Timer::Resend {
                    call: id,
                    leg: a,
                    interval_ms: ms,
                    elapsed_ms: ms,
                },
            );
        }
        if let Some(se) = se {
            self.arm(
                now + Duration::from_secs(u64::from(se)),
                Timer::SessionExpires { call: id, leg: a },
            );
        }
    }

    fn attempt_failed(&mut self, id: u64, li: usize, outcome: Outcome) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let t = call.legs[li].trunk;
        if let Some(att) = call.legs[li].attempt.and_then(|a| call.attempts.get_mut(a)) {
            att.outcome = outcome_text(outcome);
        }
        call.legs[li].state = LegState::Ended;
        let relayed = call.relayed_18x;
        let codes = &self.cfg.trunks[t].failover_codes;
        if Plan::should_fail_over(outcome, codes, relayed) {
            if let Some(p) = call.legs[li].peer_index {
                if matches!(outcome, Outcome::Final(503)) {
                    tracing::info!(call = id, peer = %self.cfg.trunks[t].peers[p].host, "503 from peer");
                }
            }
            self.next_attempt(id, Some(outcome));
        } else {
            let code = match outcome {
                Outcome::Final(c) => c,
                Outcome::Timeout => 408,
                _ => 503,
            };
            self.counters.failed += 1;
            self.end_call(id, &format!("callee answered {code}"), "callee", code);
        }
    }

    fn on_client_failure(&mut self, key: ClientKey, outcome: Outcome) {
        let Some(p) = self.clients.get(&key).copied() else {
            return;
        };
        match p {
            Pending::Ping { trunk, peer } => {
                let why = if outcome == Outcome::Timeout {
                    trunk::Failure::Timeout
                } else {
                    trunk::Failure::Transport
                };
                self.health[trunk].on_failure(self.now, peer, why);
            }
            Pending::Invite { call, leg } => {
                let Some(c) = self.calls.get_mut(&call) else {
                    return;
                };
                if c.legs[leg].state == LegState::Ended {
                    return;
                }
                c.legs[leg].state = LegState::Ended;
                let t = c.legs[leg].trunk;
                self.active[t] = self.active[t].saturating_sub(1);
                if let (Some(pi), Outcome::TransportError) = (c.legs[leg].peer_index, outcome) {
                    self.health[t].on_failure(self.now, pi, trunk::Failure::Transport);
                }
                if c.refer.as_ref().is_some_and(|r| r.new_leg == leg) {
                    let code = if outcome == Outcome::Timeout {
                        408
                    } else {
                        503
                    };
                    self.transfer_failed(call, leg, code);
                } else if c.b == Some(leg) && c.state == CallState::Routing {
                    self.attempt_failed(call, leg, outcome);
                }
            }
            Pending::ReInvite { server, .. } | Pending::Forward { server, .. } => {
                let code = if outcome == Outcome::Timeout {
                    408
                } else {
                    503
                };
                self.answer_server(server, code);
            }
            Pending::Fire | Pending::Abandoned { .. } => {}
        }
    }

    /// Answers a server transaction we kept (re-INVITE, INFO) with `code`.
    fn answer_server(&mut self, server: ServerKey, code: u16) {
        let Some((req, call, leg)) = self.held.remove(&server) else {
            return;
        };
        let (tag, trunk) = self.calls.get(&call).map_or((None, None), |c| {
            (Some(c.legs[leg].local_tag.clone()), Some(c.legs[leg].trunk))
        });
        self.reply(server, &req, code, tag.as_deref(), trunk);
    }

    fn on_timer(&mut self, now: Instant, t: Timer) {
        match t {
            Timer::Invite { call, leg } => {
                let Some(c) = self.calls.get_mut(&call) else {
                    return;
                };
                if c.legs[leg].state != LegState::Trying
                    || c.b != Some(leg)
                    || c.state != CallState::Routing
                {
                    return;
                }
                // No answer in time: give up on this attempt (a CANCEL goes
                // out once it shows life; a late 2xx is hung up).
                if let Some(k) = c.legs[leg].invite {
                    if let Ok(ck) = self.ep.cancel(now, k) {
                        self.clients.insert(ck, Pending::Fire);
                    }
                }
                let tr = c.legs[leg].trunk;
                self.active[tr] = self.active[tr].saturating_sub(1);
                self.attempt_failed(call, leg, Outcome::Timeout);
            }
            Timer::Resend {
                call,
                leg,
                interval_ms,
                elapsed_ms,
            } => {
                let Some(c) = self.calls.get(&call) else {
                    return;
                };
                let Some((server, ok)) = c.legs[leg].ok.as_deref().cloned() else {
                    return;
                };
                let t1 = self.cfg.timers.t1.as_millis() as u64;
                let t2 = self.cfg.timers.t2.as_millis() as u64;
                // RFC 3261 §13.3.1.4: give up 64*T1 after the first 2xx.
                if elapsed_ms >= 64 * t1.max(1) {
                    tracing::info!(call, "no ACK for our 2xx");
                    self.end_call(call, "no ACK", "sbc", 408);
                    return;
                }
                self.respond(server, ok);
                let next = (interval_ms * 2).min(t2.max(1));
                self.arm(
                    now + Duration::from_millis(next),
                    Timer::Resend {
                        call,
                        leg,
                        interval_ms: next,
                        elapsed_ms: elapsed_ms + next,
                    },
                );
            }
            Timer::ForgetAck { call, leg } => {
                if let Some(l) = self.calls.get_mut(&call).and_then(|c| c.legs.get_mut(leg)) {
                    l.ack = None;
                }
            }
            Timer::SessionExpires { call, leg } => {
                if self
                    .calls
                    .get(&call)
                    .is_some_and(|c| c.legs[leg].state == LegState::Confirmed)
                {
                    tracing::info!(call, "session timer expired");
                    self.end_call(call, "session timer expired", "sbc", 408);
                }
            }
        }
    }

    fn on_cancelled(&mut self, invite: ServerKey) {
        let Some(id) = self.invites.get(&invite).copied() else {
            return;
        };
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if call.a_invite != Some(invite) {
            return;
        }
        tracing::info!(call = id, "cancelled by the caller");
        self.end_call(id, "cancelled", "caller", 487);
    }

    fn on_ack(&mut self, msg: Message) {
        let call_id = msg.call_id().unwrap_or("").to_owned();
        let Some(tag) = msg.header(HeaderName::To).and_then(tag_of) else {
            return;
        };
        let Some((id, li)) = self.dialogs.get(&(call_id, tag)).copied() else {
            return;
        };
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        call.legs[li].ok = None;
        if let Some(body) = sdp_body(&msg).map(<[u8]>::to_vec) {
            let session = call.session;
            apply_remote(&mut self.outputs, session, &mut call.legs[li], &body);
        }
    }

    /// Sends BYE on leg `li` (if it is confirmed) and marks it ended.
    fn bye(&mut self, id: u64, li: usize) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let leg = &call.legs[li];
        if leg.state != LegState::Confirmed {
            return;
        }
        let via = self.via(leg.trunk, leg.peer.transport);
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let leg = &mut call.legs[li];
        leg.local_cseq += 1;
        let cseq = leg.local_cseq;
        leg.state = LegState::Ended;
        let t = leg.trunk;
        let peer = leg.peer;
        let Some(mut bye) = dialog_request(leg, "BYE", cseq, &via) else {
            return;
        };
        self.active[t] = self.active[t].saturating_sub(1);
        self.decorate(&mut bye, Some(t));
        match self.ep.send_request(self.now, bye, peer) {
            Ok(k) => {
                self.clients.insert(k, Pending::Fire);
            }
            Err(e) => tracing::debug!(%e, "BYE not sent"),
        }
    }

    /// Ends call `id`: the caller's pending INVITE answered `code`, every
    /// confirmed leg sent BYE, attempts in progress cancelled, media
    /// released, the CDR written.
    fn end_call(&mut self, id: u64, reason: &str, by: &str, code: u16) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if call.state == CallState::Ended {
            return;
        }
        call.state = CallState::Ended;
        if call.status == 0 || call.answered.is_none() {
            call.status = code;
        }
        call.reason = reason.to_owned();
        call.ended_by = by.to_owned();
        let pending = call.a_invite.take();
        let a = call.a;
        if let Some(server) = pending {
            let a_tag = call.legs[a].local_tag.clone();
            let a_trunk = call.legs[a].trunk;
            if let Some(Ok(mut r)) = call
                .a_request
                .as_deref()
                .map(|q| response_to(q, code, reason_phrase(code), Some(&a_tag)))
            {
                if code == 503 {
                    push(&mut r, "Retry-After", "5");
                }
                self.decorate(&mut r, Some(a_trunk));
                self.respond(server, r);
            }
            call_leg_end(&mut self.calls, &mut self.active, id, a);
        }
        let n = self.calls.get(&id).map_or(0, |c| c.legs.len());
        for li in 0..n {
            let Some(c) = self.calls.get(&id) else {
                return;
            };
            match c.legs[li].state {
                LegState::Confirmed => self.bye(id, li),
                LegState::Trying if c.legs[li].uac => {
                    if let Some(k) = c.legs[li].invite {
                        if let Ok(ck) = self.ep.cancel(self.now, k) {
                            self.clients.insert(ck, Pending::Fire);
                        }
                    }
                    call_leg_end(&mut self.calls, &mut self.active, id, li);
                }
                _ => {}
            }
        }
        self.finish(id);
    }

    /// Releases the media, writes the CDR and forgets the call. Late
    /// answers of its attempts are hung up from the response alone.
    fn finish(&mut self, id: u64) {
        let Some(mut call) = self.calls.remove(&id) else {
            return;
        };
        // The caller's INVITE server transaction keeps its `invites` entry
        // until it terminates; a CANCEL that matches it then finds no call.
        for leg in &call.legs {
            self.dialogs
                .remove(&(leg.call_id.clone(), leg.local_tag.clone()));
        }
        Self::disarm_keys(&mut self.timers, &mut call.timers, |_| true);
        // Only this call's INVITE client transactions, found from its legs
        // (no scan of every transaction: thousands linger at high call rates).
        for l in &call.legs {
            let Some(p) = l.invite.and_then(|k| self.clients.get_mut(&k)) else {
                continue;
            };
            if matches!(*p, Pending::Invite { call: c, .. } if c == id) {
                *p = if !l.acked {
                    Pending::Abandoned {
                        trunk: l.trunk,
                        peer: l.peer,
                    }
                } else {
                    Pending::Fire
                };
            }
        }
        if let Some(s) = call.session {
            self.outputs
                .push_back(Output::Media(MediaOp::Delete { id: s.id }));
        }
        if !call.cdr_done {
            call.cdr_done = true;
            let ms = |t: Instant| t.saturating_duration_since(call.start).as_millis() as u64;
            let b = call.b.map(|b| &call.legs[b]);
            let cdr = Cdr {
                call: id,
                a_call_id: call.legs[0].call_id.clone(),
                b_call_id: b.map(|l| l.call_id.clone()),
                from_trunk: self.cfg.trunks[call.from_trunk].name.clone(),
                to_trunk: b.map(|l| self.cfg.trunks[l.trunk].name.clone()),
                calling: call.calling.clone(),
                called: call.called.clone(),
                route: call.route.clone(),
                attempts: call.attempts.clone(),
                ringing_ms: call.ringing.map(ms),
                answer_ms: call.answered.map(ms),
                end_ms: ms(self.now),
                status: call.status,
                reason: call.reason.clone(),
                ended_by: call.ended_by.clone(),
                transfers: call.transfers,
                media_session: call.session.map(|s| s.id),
                packets: [0, 0],
            };
            self.outputs.push_back(Output::Cdr(Box::new(cdr)));
        }
    }
}

fn call_leg_end(calls: &mut HashMap<u64, Box<Call>>, active: &mut [u32], id: u64, li: usize) {
    if let Some(c) = calls.get_mut(&id) {
        if c.legs[li].state != LegState::Ended {
            c.legs[li].state = LegState::Ended;
            let t = c.legs[li].trunk;
            active[t] = active[t].saturating_sub(1);
        }
    }
}

/// An in-dialog request on `leg` (RFC 3261 §12.2.1.1): Request-URI the
/// remote target, Route the route set, From/To with the dialog's tags.
fn dialog_request(leg: &Leg, method: &str, cseq: u32, via: &str) -> Option<Message> {
    let target = leg.remote_target.clone()?;
    let mut m = Message::new_request(method, target.as_bytes()).ok()?;
    push(&mut m, "Via", via);
    push(&mut m, "Max-Forwards", "70");
    let local = format!("{};tag={}", leg.local_uri, leg.local_tag);
    let remote = match &leg.remote_tag {
        Some(t) => format!("{};tag={t}", leg.remote_uri),
        None => leg.remote_uri.clone(),
    };
    push(&mut m, "From", &local);
    push(&mut m, "To", &remote);
    push(&mut m, "Call-ID", &leg.call_id);
    push(&mut m, "CSeq", &format!("{cseq} {method}"));
    for r in &leg.route_set {
        push(&mut m, "Route", r);
    }
    if matches!(method, "INVITE" | "REFER" | "NOTIFY" | "UPDATE") {
        push(&mut m, "Contact", &leg.contact);
    }
    push(&mut m, "Content-Length", "0");
    Some(m)
}

/// Takes a party's SDP (offer or answer) into its leg and the relay: its
/// address, its key (a new key means a new SRTP context, ROC 0), its proto.
fn apply_remote(
    out: &mut VecDeque<Output>,
    session: Option<SessionInfo>,
    leg: &mut Leg,
    body: &[u8],
) {
    let Ok(sd) = sdp::SessionDescription::parse(body) else {
        tracing::info!("unparsable SDP from a party ignored");
        return;
    };
    let remote = match md::read_remote(&sd) {
        Ok(r) => r,
        Err(e) => {
            tracing::info!(%e, "SDP from a party not usable");
            return;
        }
    };
    leg.media.last_remote_sdp = Some(body.to_vec());
    let key_changed =
        leg.media.their_key.as_ref().map(|(p, _)| p) != remote.key.as_ref().map(|(p, _)| p);
    leg.media.their_key = remote.key.clone();
    leg.media.proto = remote.proto.clone();
    let rtp = remote
        .rtp
        .filter(|a| a.port() != 0 && !a.ip().is_unspecified());
    if rtp.is_some() {
        leg.media.remote = rtp;
    }
    let Some(s) = session else {
        return;
    };
    let crypto = key_changed.then(|| leg.media.crypto_spec());
    let rtcp = if rtp.is_some() && !remote.mux {
        remote.rtcp
    } else {
        None
    };
    out.push_back(Output::Media(MediaOp::Update {
        id: s.id,
        side: leg.side,
        remote_rtp: rtp,
        remote_rtcp: rtcp,
        crypto,
        rtcp_mux: None,
    }));
}

// ----- in-dialog requests: BYE, re-INVITE, INFO, REFER, Replaces ------------

impl B2bua {
    fn in_dialog(&mut self, key: ServerKey, msg: Message, id: u64, li: usize) {
        let method = msg.method_str().unwrap_or("").to_owned();
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let tag = call.legs[li].local_tag.clone();
        let trunk = call.legs[li].trunk;
        // The remote CSeq only grows; an older one is out of order (§12.2.2).
        match method.as_str() {
            "BYE" => {
                let (is_a, is_b) = (call.a == li, call.b == Some(li));
                self.reply(key, &msg, 200, Some(&tag), Some(trunk));
                call_leg_end(&mut self.calls, &mut self.active, id, li);
                if is_a || is_b {
                    let by = if is_a { "caller" } else { "callee" };
                    if let Some(r) = header_by_name(&msg, "Reason") {
                        tracing::info!(call = id, reason = %r, "BYE with Reason");
                    }
                    self.end_call(id, &format!("bye from {by}"), by, 200);
                }
            }
            "INVITE" => self.reinvite(key, msg, id, li),
            "INFO" => self.forward(key, msg, id, li),
            "OPTIONS" => self.reply(key, &msg, 200, Some(&tag), Some(trunk)),
            "REFER" => self.refer(key, msg, id, li),
            "NOTIFY" => self.reply(key, &msg, 200, Some(&tag), Some(trunk)),
            "UPDATE" if msg.body().is_empty() => {
                self.refreshed(id, li);
                self.reply(key, &msg, 200, Some(&tag), Some(trunk));
            }
            "UPDATE" => self.reply(key, &msg, 501, Some(&tag), Some(trunk)),
            "PRACK" => self.reply(key, &msg, 481, Some(&tag), Some(trunk)),
            _ => self.reply(key, &msg, 501, Some(&tag), Some(trunk)),
        }
    }

    /// A refresh on leg `li` restarts its session timer.
    fn refreshed(&mut self, id: u64, li: usize) {
        let Some(se) = self.calls.get(&id).and_then(|c| c.legs[li].session_expires) else {
            return;
        };
        self.disarm(
            id,
            |t| matches!(t, Timer::SessionExpires { leg, .. } if *leg == li),
        );
        let at = self.now + Duration::from_secs(u64::from(se));
        self.arm(at, Timer::SessionExpires { call: id, leg: li });
    }

    /// The other party's current leg.
    fn other(call: &Call, li: usize) -> Option<usize> {
        if li == call.a {
            call.b
        } else {
            Some(call.a)
        }
    }

    fn forward(&mut self, key: ServerKey, msg: Message, id: u64, li: usize) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let tag = call.legs[li].local_tag.clone();
        let trunk = call.legs[li].trunk;
        let method = msg.method_str().unwrap_or("INFO").to_owned();
        let Some(o) = Self::other(call, li).filter(|o| call.legs[*o].state == LegState::Confirmed)
        else {
            self.reply(key, &msg, 200, Some(&tag), Some(trunk));
            return;
        };
        let via = self.via(call.legs[o].trunk, call.legs[o].peer.transport);
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let leg = &mut call.legs[o];
        leg.local_cseq += 1;
        let Some(mut m) = dialog_request(leg, &method, leg.local_cseq, &via) else {
            self.reply(key, &msg, 500, Some(&tag), Some(trunk));
            return;
        };
        if !msg.body().is_empty() {
            let ct = header_text(&msg, HeaderName::ContentType);
            let _ = m.set_body(ct.as_deref(), msg.body());
        }
        let (peer, ot) = (leg.peer, leg.trunk);
        self.decorate(&mut m, Some(ot));
        match self.ep.send_request(self.now, m, peer) {
            Ok(k) => {
                self.held.insert(key, (msg, id, li));
                self.clients.insert(k, Pending::Forward { server: key });
            }
            Err(_) => self.reply(key, &msg, 500, Some(&tag), Some(trunk)),
        }
    }

    fn reinvite(&mut self, key: ServerKey, msg: Message, id: u64, li: usize) {
        self.refreshed(id, li);
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let tag = call.legs[li].local_tag.clone();
        let trunk = call.legs[li].trunk;
        if call.state != CallState::Answered
            || call.refer.is_some()
            || self.held.values().any(|(_, c, _)| *c == id)
        {
            self.reply(key, &msg, 491, Some(&tag), Some(trunk));
            return;
        }
        let body = sdp_body(&msg).map(<[u8]>::to_vec);
        let unchanged = body.is_none() || body == call.legs[li].media.last_remote_sdp;
        if unchanged {
            // A session refresh (or an offerless re-INVITE): answered here
            // with the SDP we last gave this party; nothing is forwarded.
            let sdp = call.legs[li].media.last_local_sdp.clone();
            self.answer_reinvite(key, &msg, id, li, sdp.as_deref());
            return;
        }
        let Some(o) = Self::other(call, li).filter(|o| call.legs[*o].state == LegState::Confirmed)
        else {
            self.reply(key, &msg, 491, Some(&tag), Some(trunk));
            return;
        };
        let body = body.unwrap_or_default();
        let Ok(sd) = sdp::SessionDescription::parse(&body) else {
            self.reply(key, &msg, 488, Some(&tag), Some(trunk));
            return;
        };
        if md::read_remote(&sd).is_err() {
            self.reply(key, &msg, 488, Some(&tag), Some(trunk));
            return;
        }
        let (ot, otp) = (call.legs[o].trunk, call.legs[o].peer.transport);
        let codecs = self.cfg.trunks[ot].codecs.clone();
        let via = self.via(ot, otp);
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let session = call.session;
        apply_remote(&mut self.outputs, session, &mut call.legs[li], &body);
        let Some(s) = session else {
            return;
        };
        let ports = md::side_ports(&s, call.legs[o].side);
        let out = match md::rewrite(sd, ports, &mut call.legs[o].media, &codecs) {
            Ok(b) => b,
            Err(_) => {
                self.reply(key, &msg, 488, Some(&tag), Some(trunk));
                return;
            }
        };
        let leg = &mut call.legs[o];
        leg.local_cseq += 1;
        let Some(mut m) = dialog_request(leg, "INVITE", leg.local_cseq, &via) else {
            self.reply(key, &msg, 500, Some(&tag), Some(trunk));
            return;
        };
        let _ = m.set_body(Some("application/sdp"), &out);
        push(&mut m, "Allow", ALLOW);
        let (peer, ot) = (leg.peer, leg.trunk);
        self.decorate(&mut m, Some(ot));
        match self.ep.send_request(self.now, m, peer) {
            Ok(k) => {
                self.held.insert(key, (msg, id, li));
                self.clients.insert(
                    k,
                    Pending::ReInvite {
                        call: id,
                        from: li,
                        to: o,
                        server: key,
                    },
                );
            }
            Err(_) => self.reply(key, &msg, 500, Some(&tag), Some(trunk)),
        }
    }

    /// 200 to a re-INVITE (or a Replaces INVITE) on leg `li` with `sdp`.
    fn answer_reinvite(
        &mut self,
        key: ServerKey,
        req: &Message,
        id: u64,
        li: usize,
        sdp: Option<&[u8]>,
    ) {
        let now = self.now;
        let t1 = self.cfg.timers.t1;
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let leg = &mut call.legs[li];
        let Ok(mut r) = response_to(req, 200, "OK", Some(&leg.local_tag)) else {
            return;
        };
        push(&mut r, "Contact", &leg.contact);
        push(&mut r, "Allow", ALLOW);
        let se = session_interval(req).filter(|_| has_token(req, HeaderName::Supported, "timer"));
        if let Some(se) = se {
            leg.session_expires = Some(se);
            push(&mut r, "Session-Expires", &format!("{se};refresher=uac"));
            push(&mut r, "Require", "timer");
        }
        if let Some(b) = sdp {
            let _ = r.set_body(Some("application/sdp"), b);
        }
        let udp = leg.peer.transport == Transport::Udp;
        if udp {
            leg.ok = Some(Box::new((key, r.clone())));
        }
        let trunk = leg.trunk;
        self.decorate(&mut r, Some(trunk));
        self.respond(key, r);
        if se.is_some() {
            // The interval granted now (it may differ from the last one)
            // counts from this refresh.
            self.refreshed(id, li);
        }
        if udp {
            self.arm(
                now + t1,
                Timer::Resend {
                    call: id,
                    leg: li,
                    interval_ms: t1.as_millis() as u64,
                    elapsed_ms: t1.as_millis() as u64,
                },
            );
        }
    }

    fn on_reinvite_response(
        &mut self,
        id: u64,
        from: usize,
        to: usize,
        server: ServerKey,
        msg: Message,
        status: u16,
    ) {
        if status < 200 {
            return;
        }
        let Some((req, _, _)) = self.held.remove(&server) else {
            // Answered already: a retransmitted 2xx (our ACK was lost)
            // is ACKed again (RFC 6026 7.2), nothing else.
            if (200..300).contains(&status) {
                let Some((t, tp)) = self
                    .calls
                    .get(&id)
                    .map(|c| (c.legs[to].trunk, c.legs[to].peer.transport))
                else {
                    return;
                };
                let via = self.via(t, tp);
                let cseq = msg.cseq().map(|c| c.seq).unwrap_or(1);
                if let Some(leg) = self.calls.get(&id).map(|c| &c.legs[to]) {
                    if let Some(mut ack) = dialog_request(leg, "ACK", cseq, &via) {
                        if let Some(x) = &self.cfg.trunks[leg.trunk].headers.x_ms_sbc {
                            push(&mut ack, "X-MS-SBC", x);
                        }
                        self.ep.send_stateless(&ack, leg.peer);
                    }
                }
            }
            return;
        };
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let (tt, ttp) = (call.legs[to].trunk, call.legs[to].peer.transport);
        let (ftag, ftrunk) = (call.legs[from].local_tag.clone(), call.legs[from].trunk);
        let via = self.via(tt, ttp);
        if (200..300).contains(&status) {
            let Some(call) = self.calls.get_mut(&id) else {
                return;
            };
            let session = call.session;
            let cseq = msg.cseq().map(|c| c.seq).unwrap_or(1);
            let leg = &mut call.legs[to];
            if let Some(mut ack) = dialog_request(leg, "ACK", cseq, &via) {
                if let Some(x) = &self.cfg.trunks[leg.trunk].headers.x_ms_sbc {
                    push(&mut ack, "X-MS-SBC", x);
                }
                self.ep.send_stateless(&ack, leg.peer);
            }
            let mut out = None;
            if let Some(body) = sdp_body(&msg).map(<[u8]>::to_vec) {
                apply_remote(&mut self.outputs, session, &mut call.legs[to], &body);
                if let (Ok(sd), Some(s)) = (sdp::SessionDescription::parse(&body), session) {
                    let ports = md::side_ports(&s, call.legs[from].side);
                    out = md::rewrite(sd, ports, &mut call.legs[from].media, &[]).ok();
                }
            }
            self.answer_reinvite(server, &req, id, from, out.as_deref());
        } else {
            self.reply(server, &req, status, Some(&ftag), Some(ftrunk));
        }
    }

    /// REFER from a party (Microsoft as transferor, RFC 5589): 202, NOTIFY
    /// 100 Trying, a new INVITE to the Refer-To target with Referred-By
    /// copied; the other party's media is re-pointed when the target answers.
    fn refer(&mut self, key: ServerKey, msg: Message, id: u64, li: usize) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let tag = call.legs[li].local_tag.clone();
        let trunk = call.legs[li].trunk;
        if call.state != CallState::Answered || call.refer.is_some() {
            self.reply(key, &msg, 491, Some(&tag), Some(trunk));
            return;
        }
        let Some(target) = header_by_name(&msg, "Refer-To")
            .or_else(|| header_by_name(&msg, "r"))
            .and_then(|v| uri_of(v.as_bytes()))
        else {
            self.reply(key, &msg, 400, Some(&tag), Some(trunk));
            return;
        };
        // Header parameters of the Refer-To URI (`?Replaces=…`) are never
        // sent on (Microsoft refuses Replaces).
        let target = target.split('?').next().unwrap_or(&target).to_owned();
        let referred_by = header_by_name(&msg, "Referred-By").or_else(|| header_by_name(&msg, "b"));
        // Which trunk: the one whose peer the target names (a Teams user,
        // sent on verbatim), else a route for the target's number.
        let host = sip::Uri::parse(target.as_bytes())
            .ok()
            .and_then(|u| u.as_sip().map(|s| s.host_raw.to_ascii_lowercase()));
        let by_host = host.as_ref().and_then(|h| {
            self.cfg
                .trunks
                .iter()
                .position(|t| t.peers.iter().any(|p| p.host.eq_ignore_ascii_case(h)))
        });
        let number = number_of(target.as_bytes()).filter(|n| crate::is_number(n));
        // An E.164 target (a PSTN number) is routed like a call from the
        // transferor's trunk; a target without a number (a Teams user,
        // `x-m`/`x-t`) goes verbatim to the trunk whose peer it names.
        let routed = number.as_ref().and_then(|n| {
            let tn = &self.cfg.trunks[trunk];
            let n = tn.numbers_in.called(n);
            self.cfg
                .routes
                .select(&tn.name, &n)
                .and_then(|r| r.to.first())
                .and_then(|d| self.trunk_index(&d.trunk))
        });
        let (dest, ruri) = match (routed, by_host) {
            (Some(t), _) => (Some(t), None),
            (None, Some(t)) => (Some(t), Some(target.clone())),
            (None, None) => (None, None),
        };
        let Some(dest) = dest else {
            self.reply(key, &msg, 404, Some(&tag), Some(trunk));
            return;
        };
        self.reply(key, &msg, 202, Some(&tag), Some(trunk));
        self.notify(id, li, "SIP/2.0 100 Trying", false);
        let called = number.clone().unwrap_or_else(|| target.clone());
        match self.transfer_invite(id, li, dest, ruri, &called, referred_by.as_deref()) {
            Ok(new_leg) => {
                if let Some(c) = self.calls.get_mut(&id) {
                    c.refer = Some(Refer {
                        from_leg: li,
                        new_leg,
                    });
                }
            }
            Err(e) => {
                tracing::warn!(call = id, %e, "transfer INVITE not sent");
                self.notify(id, li, "SIP/2.0 503 Service Unavailable", true);
            }
        }
    }

    /// NOTIFY with a sipfrag body on leg `li` (the REFER's dialog).
    fn notify(&mut self, id: u64, li: usize, frag: &str, last: bool) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let via = self.via(call.legs[li].trunk, call.legs[li].peer.transport);
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let leg = &mut call.legs[li];
        leg.local_cseq += 1;
        let Some(mut m) = dialog_request(leg, "NOTIFY", leg.local_cseq, &via) else {
            return;
        };
        push(&mut m, "Event", "refer");
        let state = if last {
            "terminated;reason=noresource"
        } else {
            "active;expires=60"
        };
        push(&mut m, "Subscription-State", state);
        let _ = m.set_body(
            Some("message/sipfrag;version=2.0"),
            format!("{frag}\r\n").as_bytes(),
        );
        let (peer, t) = (leg.peer, leg.trunk);
        self.decorate(&mut m, Some(t));
        if let Ok(k) = self.ep.send_request(self.now, m, peer) {
            self.clients.insert(k, Pending::Fire);
        }
    }

    /// The INVITE of a transfer toward trunk `t`: Request-URI the Refer-To
    /// URI (or one built for the number), From the party that stays,
    /// Referred-By copied, SDP on the transferor's relay side with a fresh key.
    fn transfer_invite(
        &mut self,
        id: u64,
        li: usize,
        t: usize,
        ruri: Option<String>,
        called: &str,
        referred_by: Option<&str>,
    ) -> Result<usize, String> {
        let health_order = self.health[t].order();
        let pi = *health_order.first().ok_or("trunk has no peer")?;
        let call_id = format!("{}@{}", self.unique(), self.cfg.trunks[t].fqdn);
        let tag = self.unique();
        let trunk = &self.cfg.trunks[t];
        let peer = &trunk.peers[pi];
        let via = self.via(t, peer.transport);
        let trunk = &self.cfg.trunks[t];
        let peer = &trunk.peers[pi];
        let call = self.calls.get(&id).ok_or("call gone")?;
        let stay = Self::other(call, li).ok_or("no other party")?;
        let staying_number = if stay == call.a {
            &call.calling
        } else {
            &call.called
        };
        let calling = plus_if(trunk.e164, &trunk.numbers_out.calling(staying_number));
        let phone = if trunk.e164 { ";user=phone" } else { "" };
        let called_out = plus_if(trunk.e164, &trunk.numbers_out.called(called));
        let tparam = if peer.transport == Transport::Udp {
            String::new()
        } else {
            format!(";transport={}", uri_transport(peer.transport))
        };
        let ruri = ruri.unwrap_or_else(|| {
            format!(
                "sip:{called_out}@{}:{}{phone}{tparam}",
                peer.host, peer.port
            )
        });
        let to = format!("<{ruri}>");
        let from = format!("<sip:{calling}@{}{phone}>", trunk.fqdn);
        let contact = trunk.contact_with_user(&calling);
        let mut m = Message::new_request("INVITE", ruri.as_bytes()).map_err(|e| e.to_string())?;
        push(&mut m, "Via", &via);
        push(&mut m, "Max-Forwards", "70");
        push(&mut m, "From", &format!("{from};tag={tag}"));
        push(&mut m, "To", &to);
        push(&mut m, "Call-ID", &call_id);
        push(&mut m, "CSeq", "1 INVITE");
        push(&mut m, "Contact", &contact);
        push(&mut m, "Allow", ALLOW);
        if let Some(rb) = referred_by {
            push(&mut m, "Referred-By", rb);
        }
        let side = call.legs[li].side;
        let session = call.session.ok_or("no media session")?;
        let mut media = PartyMedia {
            proto: proto_of(trunk.media).to_owned(),
            mux: call.legs[li].media.mux,
            ..PartyMedia::default()
        };
        let codecs = trunk.codecs.clone();
        let source = call.legs[stay].media.last_remote_sdp.clone();
        let (addr, transport) = (
            peer.addr.ok_or("peer address not resolved")?,
            peer.transport,
        );
        md::ensure_key(self.ctl.as_mut(), &mut media, None, 1)?;
        let ports = md::side_ports(&session, side);
        let body = match source.as_deref().map(sdp::SessionDescription::parse) {
            Some(Ok(sd)) => md::rewrite(sd, ports, &mut media, &codecs)?,
            _ => md::generate_offer(ports, &mut media, &codecs, id),
        };
        m.set_body(Some("application/sdp"), &body)
            .map_err(|e| e.to_string())?;
        self.decorate(&mut m, Some(t));
        let to_peer = Peer::new(addr, transport);
        let key = self
            .ep
            .send_request(self.now, m, to_peer)
            .map_err(|e| e.to_string())?;
        let leg = Leg {
            peer_index: Some(pi),
            uac: true,
            local_uri: from,
            remote_uri: to,
            local_cseq: 1,
            invite: Some(key),
            media,
            ..Leg::new(t, side, to_peer, call_id.clone(), tag.clone(), contact)
        };
        let call = self.calls.get_mut(&id).ok_or("call gone")?;
        call.legs.push(leg);
        let nl = call.legs.len() - 1;
        self.dialogs.insert((call_id, tag), (id, nl));
        self.clients
            .insert(key, Pending::Invite { call: id, leg: nl });
        self.active[t] += 1;
        Ok(nl)
    }

    /// The transfer target answered: it replaces the transferor's leg.
    fn transfer_answered(&mut self, id: u64, nl: usize, _msg: &Message) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let Some(r) = call.refer.take() else {
            return;
        };
        let old = r.from_leg;
        // The relay sends with the new leg's key from now on (a fresh
        // context, ROC 0) and receives with the target's.
        if let Some(s) = call.session {
            let spec = call.legs[nl].media.crypto_spec();
            let remote = call.legs[nl].media.remote;
            self.outputs.push_back(Output::Media(MediaOp::Update {
                id: s.id,
                side: call.legs[nl].side,
                remote_rtp: remote,
                remote_rtcp: None,
                crypto: Some(spec),
                rtcp_mux: Some(call.legs[nl].media.mux),
            }));
        }
        if call.a == old {
            call.a = nl;
        } else {
            call.b = Some(nl);
        }
        call.transfers += 1;
        self.counters.transfers += 1;
        tracing::info!(call = id, "transfer completed");
        self.notify(id, old, "SIP/2.0 200 OK", true);
        self.bye(id, old);
    }

    fn transfer_failed(&mut self, id: u64, nl: usize, status: u16) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let Some(r) = call.refer.take() else {
            return;
        };
        let _ = nl;
        tracing::info!(call = id, status, "transfer failed");
        self.notify(
            id,
            r.from_leg,
            &format!("SIP/2.0 {status} {}", reason_phrase(status)),
            true,
        );
    }

    /// INVITE with Replaces (RFC 3891) from a party: it takes the place of
    /// the dialog it names; the other party never notices.
    fn replaces(
        &mut self,
        key: ServerKey,
        msg: Message,
        from: Peer,
        trunk: usize,
        rep: &str,
        tag: String,
    ) {
        let mut parts = rep.split(';').map(str::trim);
        let cid = parts.next().unwrap_or("").to_owned();
        let mut tags = Vec::new();
        for p in parts {
            if let Some((k, v)) = p.split_once('=') {
                if k.eq_ignore_ascii_case("to-tag") || k.eq_ignore_ascii_case("from-tag") {
                    tags.push(v.to_owned());
                }
            }
        }
        let found = tags
            .iter()
            .find_map(|t| self.dialogs.get(&(cid.clone(), t.clone())).copied());
        let Some((id, old)) = found else {
            self.reply(key, &msg, 481, Some(&tag), Some(trunk));
            return;
        };
        let Some(call) = self.calls.get(&id) else {
            self.reply(key, &msg, 481, Some(&tag), Some(trunk));
            return;
        };
        if call.state != CallState::Answered || call.legs[old].state != LegState::Confirmed {
            self.reply(key, &msg, 481, Some(&tag), Some(trunk));
            return;
        }
        let Some(body) = sdp_body(&msg).map(<[u8]>::to_vec) else {
            self.reply(key, &msg, 488, Some(&tag), Some(trunk));
            return;
        };
        let Ok(sd) = sdp::SessionDescription::parse(&body) else {
            self.reply(key, &msg, 488, Some(&tag), Some(trunk));
            return;
        };
        let Ok(remote) = md::read_remote(&sd) else {
            self.reply(key, &msg, 488, Some(&tag), Some(trunk));
            return;
        };
        let side = call.legs[old].side;
        let session = call.session;
        let t = &self.cfg.trunks[trunk];
        let contact = t.contact();
        let mut leg = uas_leg(&msg, from, trunk, side, tag.clone(), contact);
        leg.media = PartyMedia {
            proto: remote.proto.clone(),
            their_key: remote.key.clone(),
            mux: remote.mux,
            remote: remote.rtp,
            last_remote_sdp: Some(body.clone()),
            ..PartyMedia::default()
        };
        let their_tag = remote.key.as_ref().map_or(1, |(_, t)| *t);
        if md::ensure_key(self.ctl.as_mut(), &mut leg.media, remote.suite, their_tag).is_err() {
            self.reply(key, &msg, 500, Some(&tag), Some(trunk));
            return;
        }
        let Some(s) = session else {
            self.reply(key, &msg, 500, Some(&tag), Some(trunk));
            return;
        };
        let out = match md::rewrite(sd, md::side_ports(&s, side), &mut leg.media, &[]) {
            Ok(o) => o,
            Err(_) => {
                self.reply(key, &msg, 488, Some(&tag), Some(trunk));
                return;
            }
        };
        self.outputs.push_back(Output::Media(MediaOp::Update {
            id: s.id,
            side,
            remote_rtp: remote.rtp,
            remote_rtcp: remote.rtcp.filter(|_| !remote.mux),
            crypto: Some(leg.media.crypto_spec()),
            rtcp_mux: Some(remote.mux),
        }));
        leg.state = LegState::Confirmed;
        let call_id = leg.call_id.clone();
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        call.legs.push(leg);
        let nl = call.legs.len() - 1;
        if call.a == old {
            call.a = nl;
        } else {
            call.b = Some(nl);
        }
        call.transfers += 1;
        self.active[trunk] += 1;
        self.dialogs.insert((call_id, tag), (id, nl));
        self.counters.transfers += 1;
        tracing::info!(call = id, "dialog replaced");
        self.answer_reinvite(key, &msg, id, nl, Some(&out));
        self.bye(id, old);
    }
}
