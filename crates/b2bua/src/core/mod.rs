//! The B2BUA proper: the dispatcher. It owns the call table and the
//! transaction endpoint, turns inputs (messages, time, transport errors,
//! media inactivity) into calls to the flows, which live by responsibility:
//!
//! - [`setup`]: a new call, its attempt plan and attempts, their answers;
//! - [`emergency`]: which INVITE is an emergency call (never refused for load);
//! - [`admission`]: calls per second per trunk, unknown sources;
//! - [`dialog`]: in-dialog requests, re-INVITE, forwarded requests, ACK;
//! - [`t38`]: T.38 fax re-INVITEs (which trunks take them), a refused
//!   re-INVITE's media undone;
//! - [`dtmf`]: telephone-events as SIP INFO toward trunks that want them;
//! - [`transfer`]: REFER as transferee, INVITE with Replaces;
//! - [`identity`]: identity and history headers toward a trunk;
//! - [`ending`]: timers, BYE, ending a call and its CDR;
//! - [`ringback`]: local ringback toward the caller (a 183 and a tone);
//! - [`leg`]: a dialog with one party;
//! - [`prack`]: reliable provisional responses (RFC 3262) on both sides;
//! - [`update`]: UPDATE (RFC 3311) before and after the answer;
//! - [`refresh`]: Timer C and session timers (RFC 4028).

mod admission;
mod dialog;
mod dtmf;
mod emergency;
mod ending;
mod identity;
mod leg;
mod phones;
mod prack;
mod refresh;
mod reload;
mod ringback;
mod setup;
mod size;
mod t38;
mod transfer;
mod update;

pub use self::admission::{Protect, UnknownSource};
use self::dialog::*;
use self::emergency::*;
use self::ending::*;
use self::identity::*;
use self::leg::*;
pub use self::reload::{Reconfig, Reconfigured, ReloadError, MAX_SLOTS};
use self::setup::*;

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
    /// The trunks (carrier, Teams, ACS, gateway). A peer whose `addr` is
    /// `None` has no address yet: it is down for routing (tried last, and
    /// then skipped as `unresolved`) until [`Input::PeerResolved`] gives one.
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
    /// Registered phones (a `phones` trunk's REGISTERs and users), if any.
    pub phones: Option<Phones>,
    /// Phone numbers in log lines show their last 4 digits only
    /// ([`crate::redact`]); CDRs always carry them whole.
    pub mask_numbers: bool,
    /// Protection independent of trunks (requests from unknown sources).
    pub protect: Protect,
}

/// The registrar of the phones and who may register.
#[derive(Debug, Clone)]
pub struct Phones {
    /// Registrar settings (realm, expiries, protection).
    pub registrar: registrar::Config,
    /// The users (numbers, usernames, credentials).
    pub users: registrar::Users,
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
    /// Sending to `to` failed (connection refused, TLS handshake failure,
    /// ICMP unreachable…). With `to.trunk` set, only that trunk's peer at
    /// that address is concerned (Teams and ACS may share a proxy address
    /// but never a connection); without, every trunk's peer there.
    TransportError {
        /// The peer.
        to: Peer,
        /// True when the TLS handshake failed.
        tls: bool,
    },
    /// The shell resolved peer `peer` of trunk `trunk` (DNS, RFC 3263):
    /// these are its addresses now, in the order to use them. The current
    /// address is kept while it is among them (no churn when a name server
    /// rotates its answers), else the first is taken; none means the peer
    /// has no address (down for routing, no OPTIONS). Classification,
    /// health and the trunk of a peer follow the new address; dialogs
    /// already established stay where they are.
    PeerResolved {
        /// Trunk index (into [`Config::trunks`]).
        trunk: usize,
        /// Peer index within the trunk.
        peer: usize,
        /// Its addresses.
        addrs: Vec<SocketAddr>,
    },
    /// A stream connection broke: the peer closed or reset it, or a write
    /// on it failed (never one the shell closed itself). `to` names it as
    /// its messages did: a connection the peer opened by its `conn`; one
    /// the shell opened toward a destination by that destination
    /// (`conn: None`, with `trunk`), whose requests it carried. The client
    /// transactions sent over it end as transport failures — a pending
    /// INVITE's attempt moves on to the next destination at once — but the
    /// peer is not marked down for it: a proxy that restarts closes its
    /// connections, and the next request opens a new one (refused if
    /// nobody listens, which is a failure). An OPTIONS it carried is sent
    /// again at once ([`trunk::Health::on_ping_lost`]).
    ConnectionLost {
        /// The connection or the destination.
        to: Peer,
    },
    /// The relay saw no media on a session for its inactivity time.
    MediaInactive {
        /// Relay session id.
        session: u64,
    },
    /// An RFC 4733 telephone-event ended on a relay session (reported once
    /// per event): toward a party on a `dtmf = "info"` trunk it becomes a
    /// SIP INFO (see `dtmf`); otherwise it is already in the media.
    Dtmf {
        /// Relay session id.
        session: u64,
        /// The relay leg it arrived on (the party that sent it).
        side: Side,
        /// The event (0–9, 10 `*`, 11 `#`, 12–15 A–D, 16 flash).
        event: u8,
        /// Its duration, in timestamp units.
        duration: u16,
        /// The clock rate of the sender's telephone-event format.
        clock_rate: u32,
    },
}

/// Something for the shell: a finished call's record, a health change.
#[derive(Debug, Clone)]
pub enum Output {
    /// A call ended.
    Cdr(Box<Cdr>),
    /// A change for the media relay (never waited for).
    Media(MediaOp),
    /// Close the stream connection to this peer (it answered 503 with
    /// Retry-After: the next request opens a fresh one).
    Disconnect {
        /// The peer.
        to: Peer,
    },
    /// A registration changed (for the shell's store).
    Binding(registrar::Event),
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

/// A call in progress, for a status page (read-only, a copy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallView {
    /// Call number within this process (as in its CDR).
    pub id: u64,
    /// `routing`, `answered` or `ending`.
    pub state: &'static str,
    /// Inbound trunk.
    pub from_trunk: String,
    /// Trunk and peer host of the current (or answering) attempt.
    pub to_trunk: Option<String>,
    pub to_peer: Option<String>,
    /// Numbers as normalised (not masked).
    pub calling: String,
    pub called: String,
    pub route: Option<String>,
    /// Since the INVITE came in.
    pub age: Duration,
    /// Since the answer.
    pub answered_for: Option<Duration>,
    /// Every attempt so far (the path).
    pub attempts: Vec<AttemptRecord>,
}

/// The sizes of the B2BUA's tables ([`B2bua::occupancy`]).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Occupancy {
    /// Calls not yet ended.
    pub calls: usize,
    /// Dialogs of those calls' legs, by (Call-ID, our tag).
    pub dialogs: usize,
    /// Callers' INVITE server transactions still mapped to their call.
    pub caller_invites: usize,
    /// Our requests whose client transaction has not ended (INVITEs, BYEs,
    /// CANCELs, NOTIFYs, forwarded requests, OPTIONS pings).
    pub client_requests: usize,
    /// Call timers armed (INVITE timeout, 2xx resend, session expiry,
    /// ACK memory, forward window, ring timeout); the trunks' OPTIONS
    /// schedule is not among them.
    pub timers: usize,
    /// Requests forwarded to the other party and not yet answered.
    pub held: usize,
    /// INVITE server transactions a drain waits for ([`B2bua::pending_invites`]).
    pub pending_invites: usize,
    /// REGISTERs (and phone INVITEs) the registrar has not answered yet.
    pub registering: usize,
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
    /// Requests from a source no trunk accepts: refused (403) or dropped
    /// unanswered ([`UnknownSource`]).
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
    /// 2xx answers of abandoned attempts, ACKed and hung up.
    pub late_answers: u64,
    /// Calls sent to the route's forward-on-failure destination.
    pub forwarded: u64,
    /// Answers no dialog could be made of (a 2xx without a To tag).
    pub bad_answers: u64,
    /// Emergency calls accepted (see [`B2bua::is_emergency`]).
    pub emergency_calls: u64,
    /// Calls refused (503, Retry-After: 1) because their inbound trunk was
    /// over its `max_cps`.
    pub refused_cps: u64,
    /// INVITEs refused with 400 for a multipart body that cannot be read.
    pub bad_bodies: u64,
    /// INVITEs refused with 420 (`Require: 100rel` where it is off).
    pub bad_extensions: u64,
    /// 18x sent reliably (RFC 3262), retransmissions not counted.
    pub reliable_18x: u64,
    /// PRACKs we sent for callees' reliable 18x.
    pub pracks_sent: u64,
    /// PRACKs answered 481 (no unacknowledged 18x with that RAck).
    pub prack_unmatched: u64,
    /// Reliable 18x never PRACKed within 64·T1.
    pub prack_timeouts: u64,
    /// re-INVITEs and UPDATEs answered 491 (an offer already in flight).
    pub glare: u64,
    /// UPDATE offers refused with 488 (SDP that cannot be read).
    pub bad_offers: u64,
    /// Attempts given up by Timer C (a provisional, then nothing).
    pub timer_c: u64,
    /// Session refreshes the SBC sent (RFC 4028).
    pub refreshes_sent: u64,
    /// Calls ended because a refresh of ours failed (408, 481, no answer).
    pub refresh_failures: u64,
    /// INVITEs answered 422 (session interval below our Min-SE).
    pub interval_too_small: u64,
    /// Re-INVITEs refused with 488 for a T.38 offer from or toward a trunk
    /// that takes no T.38 (`t38 = false`, SRTP legs).
    pub refused_t38: u64,
    /// DTMF keys sent as SIP INFO to `dtmf = "info"` trunks.
    pub dtmf_info: u64,
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
    /// Session-timer interval of this leg, seconds.
    session_expires: Option<u32>,
    /// The SBC refreshes this leg's session (else the party does).
    sbc_refreshes: bool,
    /// Our session refresh of this leg is in flight.
    refreshing: bool,
    /// Reliable provisional responses on this leg (RFC 3262).
    rel: Option<Box<prack::Rel>>,
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
    /// The legs of the current attempt when it forks (a registered user's
    /// contacts, all called at once); empty otherwise.
    forks: Vec<usize>,
    /// The caller's INVITE server transaction until its final response.
    a_invite: Option<ServerKey>,
    /// The caller's INVITE (headers copied to attempts).
    /// Dropped once the caller is answered (only its INVITE's answers need it).
    a_request: Option<Box<Message>>,
    /// The attempt plan, while routing.
    plan: Option<Plan>,
    attempts: Vec<AttemptRecord>,
    /// A destination began handling the call: its 18x was relayed (or a
    /// final). From then on no failover (only the forward's ring timeout).
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
    /// An emergency call: never refused for load.
    emergency: bool,
    /// The session interval a destination asked for with 422 (0: none).
    se_floor: u32,
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
    /// Our session refresh (re-INVITE or UPDATE) of a leg.
    Refresh { call: u64, leg: usize },
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
    /// The route's forward-on-failure window passed.
    Window { call: u64 },
    /// The call rang for the forward's ring timeout without an answer.
    Ring { call: u64 },
    /// Retransmit our unacknowledged reliable 18x (RFC 3262 §3).
    Rel1xx {
        call: u64,
        leg: usize,
        interval_ms: u64,
        elapsed_ms: u64,
    },
    /// Timer C of an attempt (RFC 3261 §16.6).
    Provisional { call: u64, leg: usize },
    /// Time for the SBC to refresh a leg's session (RFC 4028).
    Refresh { call: u64, leg: usize },
}

impl Timer {
    fn call(&self) -> u64 {
        match *self {
            Timer::Invite { call, .. }
            | Timer::Resend { call, .. }
            | Timer::SessionExpires { call, .. }
            | Timer::ForgetAck { call, .. }
            | Timer::Window { call }
            | Timer::Ring { call }
            | Timer::Rel1xx { call, .. }
            | Timer::Provisional { call, .. }
            | Timer::Refresh { call, .. } => call,
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
    /// Trunk slots a reload replaced or removed (see [`reload`]).
    retired: Vec<bool>,
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
    /// Branches and tags: the project's one seeded generator.
    uniq: transaction::Rng,
    /// The phones' registrar, when the configuration has phones.
    registrar: Option<registrar::Registrar>,
    /// REGISTERs (and phone INVITEs) the registrar has not answered yet:
    /// its token → our server transaction and trunk.
    registering: HashMap<u64, (ServerKey, usize)>,
    next_register: u64,
    outputs: VecDeque<Output>,
    draining: bool,
    counters: Counters,
    active: Vec<u32>,
    /// Calls-per-second buckets of the trunks with a `max_cps`.
    cps: admission::Buckets,
    now: Instant,
    /// Classification of the request being received (trunk, listener).
    class: Option<(Option<usize>, SocketAddr)>,
    /// INVITE server transactions alive (a drain waits for them).
    server_invites: std::collections::HashSet<ServerKey>,
    /// Requests we forwarded and answer when the other side does:
    /// server transaction → (request, call, leg it came on, the forwarded
    /// request's client transaction).
    held: HashMap<ServerKey, (Message, u64, usize, ClientKey)>,
    /// Set while the transactions of a lost connection end
    /// ([`Input::ConnectionLost`]): their failures do not count against
    /// the peer.
    connection_lost: bool,
    /// Calls whose caller hears (or heard) our ringback tone.
    ringback: HashMap<u64, ringback::Ringing>,
}

impl Call {
    /// The one place a call changes state: Routing → Answered → Ended, or
    /// Routing → Ended. Anything else is refused (false) and changes nothing,
    /// so a late answer can never revive an ended call. Leaving Routing
    /// drops the attempt plan.
    fn enter(&mut self, to: CallState) -> bool {
        let ok = matches!(
            (self.state, to),
            (CallState::Routing, CallState::Answered)
                | (CallState::Routing | CallState::Answered, CallState::Ended)
        );
        if ok {
            self.state = to;
            self.plan = None;
        }
        ok
    }

    /// True while the call is looking for a destination and `li` is the
    /// attempt it is waiting for.
    fn is_current(&self, li: usize) -> bool {
        self.state == CallState::Routing && (self.b == Some(li) || self.forks.contains(&li))
    }

    /// The forks of the current attempt still waiting for an answer,
    /// other than leg `li`.
    fn other_forks(&self, li: usize) -> Vec<usize> {
        self.forks
            .iter()
            .copied()
            .filter(|&f| f != li && self.legs[f].state == LegState::Trying)
            .collect()
    }
}

/// The peers of trunk `name` ranked for a plan: `(peer, known down)`.
/// A phones trunk has no peers: its one "peer" is the registrar (whether
/// the user is registered is found when the attempt starts).
fn ranking(
    trunks: &[TrunkSpec],
    health: &[Health],
    retired: &[bool],
    name: &str,
) -> Vec<(usize, bool)> {
    let Some(i) = live_named(trunks, retired, name) else {
        return Vec::new();
    };
    if trunks[i].kind == trunk::TrunkKind::Phones {
        return vec![(0, false)];
    }
    health[i].ranked()
}

/// The live (not retired) trunk called `name`.
fn live_named(trunks: &[TrunkSpec], retired: &[bool], name: &str) -> Option<usize> {
    trunks
        .iter()
        .zip(retired)
        .position(|(t, r)| !r && t.name == name)
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
            .map(|(i, t)| {
                let mut h = Health::new(t, cfg.seed ^ ((i as u64 + 1) << 48), now);
                for (p, ps) in t.peers.iter().enumerate() {
                    if ps.addr.is_none() {
                        h.set_unresolved(now, p);
                    }
                }
                h
            })
            .collect();
        let active = vec![0; cfg.trunks.len()];
        let retired = vec![false; cfg.trunks.len()];
        let uniq = transaction::Rng::with_label(cfg.seed, "b2bua");
        let registrar = cfg.phones.as_ref().map(|p| {
            let mut rc = p.registrar.clone();
            rc.auth.seed ^= cfg.seed;
            registrar::Registrar::new(rc, p.users.clone(), now)
        });
        B2bua {
            cfg,
            ep,
            ctl,
            classifier,
            health,
            retired,
            calls: HashMap::new(),
            dialogs: HashMap::new(),
            invites: HashMap::new(),
            clients: HashMap::new(),
            timers: BTreeMap::new(),
            timer_seq: 0,
            next_call: 1,
            uniq,
            registrar,
            registering: HashMap::new(),
            next_register: 1,
            outputs: VecDeque::new(),
            draining: false,
            counters: Counters::default(),
            active,
            cps: admission::Buckets::new(),
            now,
            class: None,
            server_invites: std::collections::HashSet::new(),
            held: HashMap::new(),
            connection_lost: false,
            ringback: HashMap::new(),
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
                let mut dropped = false;
                if msg.is_request() {
                    let trunk = self.classify(&msg, from, local, tls_names.as_deref());
                    // Silent: no response, no transaction.
                    dropped = trunk.is_none() && self.drops_unknown(&msg);
                    if dropped {
                        self.counters.unclassified += 1;
                        tracing::debug!(peer = %from.addr, method = msg.method_str().unwrap_or(""), "request from an unknown source dropped");
                    }
                    self.class = Some((trunk, local));
                }
                if !dropped {
                    self.ep
                        .handle(now, transaction::Input::Receive { msg, from });
                    self.process_events();
                }
                self.class = None;
            }
            Input::Timeout => {
                self.ep.handle(now, transaction::Input::Timeout);
                if let Some(r) = self.registrar.as_mut() {
                    if r.poll_timeout().is_some_and(|t| t <= now) {
                        r.handle(now, registrar::Input::Timeout);
                    }
                }
                self.registrar_outputs();
            }
            Input::TransportError { to, tls } => {
                let why = if tls {
                    trunk::Failure::Tls
                } else {
                    trunk::Failure::Transport
                };
                for (i, t) in self.cfg.trunks.iter().enumerate() {
                    if to.trunk.is_some_and(|tr| usize::from(tr) != i) {
                        continue;
                    }
                    for (p, ps) in t.peers.iter().enumerate() {
                        if ps.addr == Some(to.addr) && ps.transport == to.transport {
                            self.health[i].on_failure(now, p, why);
                        }
                    }
                }
                self.ep
                    .handle(now, transaction::Input::TransportError { to });
            }
            Input::ConnectionLost { to } => {
                self.connection_lost = true;
                self.ep
                    .handle(now, transaction::Input::TransportError { to });
                self.process_events();
                self.connection_lost = false;
            }
            Input::PeerResolved { trunk, peer, addrs } => {
                self.peer_resolved(now, trunk, peer, &addrs);
            }
            Input::Dtmf {
                session,
                side,
                event,
                duration,
                clock_rate,
            } => self.on_dtmf(session, side, event, duration, clock_rate),
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
        let r = self
            .registrar
            .as_ref()
            .and_then(registrar::Registrar::poll_timeout);
        [self.ep.poll_timeout(), t, h, r]
            .into_iter()
            .flatten()
            .min()
    }

    /// Refuses new calls from now on (503); calls in progress go on.
    pub fn drain(&mut self) {
        self.draining = true;
        // Our OPTIONS stop, so peers see this SBC leave (Microsoft marks it
        // down and sends new calls to the other SBC of the pair).
        for h in &mut self.health {
            h.set_paused(true);
        }
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

    /// How full the B2BUA's own tables are, for leak checks (the sim
    /// tests, the `b2bua_state` fuzz target). Once every call has ended
    /// and its transactions are over, each count is 0 — except
    /// `client_requests` while an OPTIONS ping is out.
    pub fn occupancy(&self) -> Occupancy {
        Occupancy {
            calls: self.calls.len(),
            dialogs: self.dialogs.len(),
            caller_invites: self.invites.len(),
            client_requests: self.clients.len(),
            timers: self.timers.len(),
            held: self.held.len(),
            pending_invites: self.server_invites.len(),
            registering: self.registering.len(),
        }
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

    /// The round trip of the last OPTIONS each peer of `trunk` answered
    /// (`None` before its first answer), in configured order.
    pub fn peer_rtts(&self, trunk: usize) -> Vec<Option<Duration>> {
        let n = self.cfg.trunks.get(trunk).map_or(0, |t| t.peers.len());
        (0..n).map(|p| self.health[trunk].rtt(p)).collect()
    }

    /// The newest `limit` calls in progress, newest first.
    pub fn call_views(&self, now: Instant, limit: usize) -> Vec<CallView> {
        let mut ids: Vec<u64> = self.calls.keys().copied().collect();
        ids.sort_unstable_by(|a, b| b.cmp(a));
        ids.truncate(limit);
        ids.iter()
            .filter_map(|id| self.calls.get(id))
            .map(|c| {
                let b = c.b.and_then(|i| c.legs.get(i));
                let trunk = b.and_then(|l| self.cfg.trunks.get(l.trunk));
                let peer =
                    b.and_then(|l| trunk.and_then(|t| l.peer_index.and_then(|p| t.peers.get(p))));
                CallView {
                    id: c.id,
                    state: match c.state {
                        CallState::Routing => "routing",
                        CallState::Answered => "answered",
                        CallState::Ended => "ending",
                    },
                    from_trunk: self
                        .cfg
                        .trunks
                        .get(c.from_trunk)
                        .map(|t| t.name.clone())
                        .unwrap_or_default(),
                    to_trunk: trunk.map(|t| t.name.clone()),
                    to_peer: peer.map(|p| p.host.clone()),
                    calling: c.calling.clone(),
                    called: c.called.clone(),
                    route: c.route.clone(),
                    age: now.saturating_duration_since(c.start),
                    answered_for: c.answered.map(|a| now.saturating_duration_since(a)),
                    attempts: c.attempts.clone(),
                }
            })
            .collect()
    }

    fn unique(&mut self) -> String {
        format!("{:016x}", self.uniq.next_u64())
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
                let to =
                    Peer::new(addr, self.cfg.trunks[i].peers[ping.peer].transport).for_trunk(i);
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
                if self.retired[i] {
                    continue;
                }
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
                Event::StrayResponse { msg, from } => self.on_stray(msg, from),
                Event::AckTimeout { .. } | Event::Dropped { .. } => {}
                _ => {}
            }
        }
    }

    /// A response no transaction of ours waits for. A 2xx to an INVITE of
    /// ours whose transaction is gone (Timer B expired, the call ended) is
    /// a dialog nobody wants: ACKed and hung up (RFC 3261 §13.2.2.4), so no
    /// ghost call stays on the far side. A 2xx retransmission of a live
    /// dialog is ACKed again.
    fn on_stray(&mut self, msg: Message, from: Peer) {
        let status = msg.status().unwrap_or(0);
        if !(200..300).contains(&status) || msg.cseq().map(|c| c.method).ok() != Some("INVITE") {
            return;
        }
        let Some(trunk) = self.trunk_of_peer(from) else {
            return;
        };
        let call_id = msg.call_id().unwrap_or("").to_owned();
        let our_tag = msg
            .header(HeaderName::From)
            .and_then(tag_of)
            .unwrap_or_default();
        if let Some((id, li)) = self.dialogs.get(&(call_id, our_tag)).copied() {
            let live = self.calls.get(&id).map(|c| &c.legs[li]);
            if let Some(ack) = live.and_then(|l| l.ack.clone()) {
                self.ep.send_stateless_bytes(ack, from);
            }
            if live.is_some_and(|l| l.acked) {
                return;
            }
        }
        self.counters.late_answers += 1;
        tracing::info!(peer = %from.addr, "2xx for an abandoned INVITE: ACK and BYE");
        self.hang_up_late_answer(trunk, from, &msg);
    }

    /// The trunk a peer belongs to: the one it was reached as (a message
    /// on a connection opened for a trunk says so), else the first whose
    /// peer has that address.
    fn trunk_of_peer(&self, p: Peer) -> Option<usize> {
        if let Some(t) = p
            .trunk
            .map(usize::from)
            .filter(|&t| t < self.cfg.trunks.len())
        {
            return Some(t);
        }
        let at = |i: &usize| {
            self.cfg.trunks[*i]
                .peers
                .iter()
                .any(|ps| ps.addr == Some(p.addr) && ps.transport == p.transport)
        };
        let mut all = 0..self.cfg.trunks.len();
        (0..self.cfg.trunks.len())
            .filter(|&i| !self.retired[i])
            .find(at)
            .or_else(|| all.find(at))
    }

    /// A trunk peer's addresses changed (see [`Input::PeerResolved`]).
    fn peer_resolved(&mut self, now: Instant, t: usize, p: usize, addrs: &[SocketAddr]) {
        let Some(spec) = self
            .cfg
            .trunks
            .get_mut(t)
            .and_then(|tr| tr.peers.get_mut(p))
        else {
            return;
        };
        let old = spec.addr;
        let new = match old {
            Some(a) if addrs.contains(&a) => Some(a),
            _ => addrs.first().copied(),
        };
        if new == old {
            return;
        }
        spec.addr = new;
        tracing::info!(trunk = %self.cfg.trunks[t].name, host = %self.cfg.trunks[t].peers[p].host, ?old, ?new, "trunk peer address");
        self.classifier = Classifier::with_retired(&self.cfg.trunks, &self.retired);
        match new {
            Some(_) => self.health[t].set_resolved(now, p, old.is_some()),
            None => self.health[t].set_unresolved(now, p),
        }
    }

    /// Passive health: a call's INVITE to this peer got nothing in its
    /// per-attempt time. The peer is down at once (the next call avoids it).
    fn peer_silent(&mut self, trunk: usize, peer: usize) {
        self.health[trunk].on_attempt_timeout(self.now, peer);
    }

    /// A call could not reach this peer (connection refused/reset, TLS).
    fn peer_unreachable(&mut self, trunk: usize, peer: usize, tls: bool) {
        let why = if tls {
            trunk::Failure::Tls
        } else {
            trunk::Failure::Transport
        };
        self.health[trunk].on_call_failure(self.now, peer, why);
    }

    /// 503 with Retry-After: the peer is held down that long (capped).
    fn peer_hold(&mut self, trunk: usize, peer: usize, secs: u64) {
        self.health[trunk].hold_down(self.now, peer, Duration::from_secs(secs), "503 Retry-After");
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
            let allow = trunk
                .and_then(|t| self.cfg.trunks.get(t))
                .map_or(ALLOW, |t| t.interop.allow());
            push(&mut r, "Allow", allow);
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
        if let Some(t) = t {
            dtmf::strip_events_toward(m, t);
        }
    }

    fn via(&mut self, trunk: usize, transport: Transport) -> String {
        let t = &self.cfg.trunks[trunk];
        let host = t.local_host();
        let port = t.local_port;
        let branch = self.unique();
        format!(
            "SIP/2.0/{} {host}:{port};branch=z9hG4bK{branch};rport",
            transport.as_str()
        )
    }

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
            "REGISTER" if self.takes_registers(trunk) => self.on_register(key, msg, from, trunk),
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
                push(&mut r, "Allow", t.interop.allow());
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
                    self.counters.late_answers += 1;
                    self.hang_up_late_answer(trunk, peer, &msg);
                }
            }
            Pending::Refresh { call, leg } => self.on_refresh_response(call, leg, &msg, status),
            Pending::Fire => {}
        }
    }

    fn on_client_failure(&mut self, key: ClientKey, outcome: Outcome) {
        let Some(p) = self.clients.get(&key).copied() else {
            return;
        };
        match p {
            Pending::Ping { trunk, peer } if self.connection_lost => {
                self.health[trunk].on_ping_lost(self.now, peer);
            }
            Pending::Ping { trunk, peer } => {
                let why = if outcome == Outcome::Timeout {
                    trunk::Failure::Timeout
                } else {
                    trunk::Failure::Transport
                };
                self.health[trunk].on_failure(self.now, peer, why);
            }
            Pending::Invite { call, leg } => {
                // A large INVITE whose TCP connection was refused goes over
                // UDP; one whose connection broke found TCP spoken.
                if outcome == Outcome::TransportError
                    && !self.connection_lost
                    && self.retry_over_udp(call, leg)
                {
                    return;
                }
                let Some(c) = self.calls.get_mut(&call) else {
                    return;
                };
                if c.legs[leg].state == LegState::Ended {
                    return;
                }
                c.legs[leg].state = LegState::Ended;
                let t = c.legs[leg].trunk;
                self.active[t] = self.active[t].saturating_sub(1);
                let transfer = c.refer.as_ref().is_some_and(|r| r.new_leg == leg);
                let current = c.is_current(leg);
                if let (Some(pi), Outcome::TransportError | Outcome::Tls, false) =
                    (c.legs[leg].peer_index, outcome, self.connection_lost)
                {
                    self.peer_unreachable(t, pi, outcome == Outcome::Tls);
                }
                let Some(c) = self.calls.get(&call) else {
                    return;
                };
                let _ = c;
                if transfer {
                    let code = if outcome == Outcome::Timeout {
                        408
                    } else {
                        503
                    };
                    self.transfer_failed(call, leg, code);
                } else if current {
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
            Pending::Refresh { call, leg } => self.on_refresh_failure(call, leg),
            Pending::Fire | Pending::Abandoned { .. } => {}
        }
    }
}
