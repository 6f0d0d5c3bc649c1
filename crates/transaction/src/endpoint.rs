//! The endpoint: every transaction of one SIP element, the matching indexes,
//! the wake-up schedule, and the queues of datagrams to send and events for
//! the transaction user (TU).

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fmt;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sip::{EditError, HeaderName, Message};

use crate::build::{ack_for, cancel_for, response_to};
use crate::client::{ClientInput, ClientMachine, InviteClient};
use crate::key::{ClientKey, ServerKey, TxKey};
use crate::machine::{Action, Class, Ctx, TxState};
use crate::matching::{ClientMatch, RequestInfo, ServerMatch};
use crate::peer::{Peer, Transmit};
use crate::rng::Rng;
use crate::server::{InviteServer, ServerInput, ServerMachine};
use crate::timer::{TimerConfig, TimerTable};

/// Endpoint configuration.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Config {
    /// Timer values (RFC 3261 defaults).
    pub timers: TimerConfig,
    /// Seed for the To tags the endpoint writes itself (200 for CANCEL, 481).
    /// The layer reads no entropy source: the shell passes a random seed at
    /// start-up; tests pass a fixed one.
    pub seed: u64,
}

/// Something for the endpoint to process.
// `Receive` is large (a parsed Message keeps its header index inline); an
// Input lives for one call, and boxing would cost an allocation per message.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Input {
    /// A message arrived from `from` (parsed, and ideally validated with
    /// `sip::inspect`, by the shell).
    Receive {
        /// The message.
        msg: Message,
        /// Who sent it, on which transport and connection.
        from: Peer,
    },
    /// Nothing arrived; time moved on (call at [`Endpoint::poll_timeout`]).
    Timeout,
    /// Sending to `to` failed: ICMP unreachable, connection refused or
    /// reset, TLS handshake failure. Client transactions sending to that
    /// peer end with [`Event::TransportError`]. With `conn: None` every
    /// connection to that address and transport is concerned.
    TransportError {
        /// The peer the send was for.
        to: Peer,
    },
}

/// What happened, for the transaction user.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// A new request created server transaction `key`; the TU must answer it
    /// with [`Endpoint::respond`]. (For an INVITE the endpoint has already
    /// sent 100 Trying.)
    Request {
        /// The new server transaction.
        key: ServerKey,
        /// The request.
        msg: Message,
        /// Where it came from; responses go back there.
        from: Peer,
    },
    /// A response for client transaction `key`: each provisional, the final
    /// once (retransmissions absorbed), and for an INVITE every 2xx that
    /// arrives in Accepted (RFC 6026: the TU must ACK each).
    Response {
        /// The client transaction.
        key: ClientKey,
        /// The response.
        msg: Message,
    },
    /// A CANCEL matched INVITE server transaction `invite`, which had no
    /// final response yet. The endpoint answered the CANCEL (server
    /// transaction `cancel`) with 200; the TU must answer the INVITE, with
    /// 487 Request Terminated.
    Cancelled {
        /// The INVITE's server transaction.
        invite: ServerKey,
        /// The CANCEL's server transaction (already answered).
        cancel: ServerKey,
    },
    /// An ACK for the TU: one matching no transaction (the ACK for a 2xx,
    /// RFC 3261 §17.2.3 / §13.3.1.4), or one matching an INVITE server
    /// transaction in Accepted (RFC 6026). ACKs for non-2xx finals are
    /// absorbed by their transaction and never appear here.
    Ack {
        /// The ACK.
        msg: Message,
        /// Where it came from.
        from: Peer,
    },
    /// Timer B (INVITE) or Timer F (non-INVITE) fired: no final response.
    /// Also when an INVITE that was CANCELled got no final within 64*T1 of
    /// the CANCEL (§9.1).
    Timeout {
        /// The client transaction.
        key: ClientKey,
    },
    /// Timer H fired: the ACK for a non-2xx final never came (§17.2.1).
    AckTimeout {
        /// The INVITE server transaction.
        key: ServerKey,
    },
    /// The transport failed for client transaction `key` (see
    /// [`Input::TransportError`]).
    TransportError {
        /// The client transaction.
        key: ClientKey,
    },
    /// A response matching no client transaction (late, forged, or for a
    /// transaction already gone). Nothing was done with it.
    StrayResponse {
        /// The response.
        msg: Message,
        /// Where it came from.
        from: Peer,
    },
    /// A request the transaction layer cannot match (the shell should have
    /// refused it with `sip::inspect`). Nothing was done with it.
    Dropped {
        /// Where it came from.
        from: Peer,
        /// What is wrong with it.
        reason: DropReason,
    },
    /// Transaction `key` is gone; its key will not be used again. Sent for
    /// every transaction, including the ones the endpoint answered itself
    /// (CANCEL) and a CANCEL the TU asked for that never started.
    Terminated {
        /// The transaction.
        key: TxKey,
    },
}

/// Why a received request was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DropReason {
    /// The request line has no readable method.
    BadRequestLine,
    /// The top Via is missing or does not parse.
    BadVia,
    /// A header the layer matches on (CSeq, Call-ID, From, To) is missing
    /// or does not parse.
    BadHeader(HeaderName),
    /// The CSeq method is not the request's method.
    CSeqMismatch,
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DropReason::BadRequestLine => f.write_str("bad request line"),
            DropReason::BadVia => f.write_str("missing or bad top Via"),
            DropReason::BadHeader(h) => write!(f, "missing or bad {} header", h.as_str()),
            DropReason::CSeqMismatch => f.write_str("CSeq method differs from the request method"),
        }
    }
}

/// Why an operation on the endpoint was refused. Nothing was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TxError {
    /// A request was needed and a response given, or the reverse.
    WrongKind,
    /// ACK is not sent through a transaction: the one for a non-2xx final
    /// is written by the client transaction, the one for a 2xx is the TU's
    /// (send it with [`Endpoint::send_stateless`]).
    AckIsNotATransaction,
    /// The request's top Via has no RFC 3261 branch (`z9hG4bK` and more);
    /// the TU must add its Via with a fresh branch.
    NoBranch,
    /// A header the transaction layer needs is missing or does not parse
    /// (or the CSeq method is not the request's).
    BadHeader(HeaderName),
    /// A client transaction with this branch and method exists already.
    DuplicateBranch,
    /// No such transaction: never created, or terminated.
    UnknownTransaction,
    /// The transaction's state forbids this response: a second final, a
    /// provisional after the final, a non-2xx after a 2xx.
    InvalidState,
    /// Only INVITE client transactions can be cancelled.
    NotInvite,
    /// The INVITE has its final response already: nothing to cancel.
    AlreadyFinal,
    /// This INVITE was cancelled already.
    AlreadyCancelled,
    /// The `sip` crate refused to build a message (a value with CR/LF, a
    /// bad URI).
    Build(EditError),
}

impl fmt::Display for TxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TxError::WrongKind => f.write_str("wrong message kind (request vs response)"),
            TxError::AckIsNotATransaction => {
                f.write_str("ACK is not a transaction: send it with send_stateless")
            }
            TxError::NoBranch => f.write_str("top Via has no RFC 3261 branch"),
            TxError::BadHeader(h) => write!(f, "missing or bad {} header", h.as_str()),
            TxError::DuplicateBranch => f.write_str("a transaction with this branch exists"),
            TxError::UnknownTransaction => f.write_str("no such transaction"),
            TxError::InvalidState => f.write_str("the transaction's state forbids this"),
            TxError::NotInvite => f.write_str("only INVITE transactions can be cancelled"),
            TxError::AlreadyFinal => f.write_str("the INVITE already has a final response"),
            TxError::AlreadyCancelled => f.write_str("the INVITE was cancelled already"),
            TxError::Build(e) => write!(f, "cannot build message: {e}"),
        }
    }
}

impl std::error::Error for TxError {}

/// The CANCEL the TU asked for on an INVITE client transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CancelSlot {
    None,
    /// Key handed to the TU; the CANCEL waits for a provisional.
    Reserved(ClientKey),
    /// The CANCEL transaction started, or will never start (the INVITE got
    /// its final first) and its key was reported terminated.
    Done,
}

#[derive(Debug)]
struct ClientTx {
    machine: ClientMachine,
    peer: Peer,
    index: ClientMatch,
    /// The request as sent, for retransmission.
    request: Bytes,
    /// An INVITE transaction: `request` is parsed again to write its ACK or
    /// CANCEL (rare; a parsed message kept here would be 1 KiB more per
    /// transaction for its 32 s).
    invite: bool,
    /// The ACK sent for the non-2xx final, resent for its retransmissions.
    ack: Option<Bytes>,
    cancel: CancelSlot,
    timers: TimerTable,
    wakeup: Option<Instant>,
}

impl ClientTx {
    /// The INVITE as sent (our own printing always parses again).
    fn sent_invite(&self) -> Option<Message> {
        if self.invite {
            Message::parse(self.request.clone()).ok()
        } else {
            None
        }
    }
}

#[derive(Debug)]
struct ServerTx {
    machine: ServerMachine,
    /// Where the request came from: responses go there (same connection).
    peer: Peer,
    index: ServerMatch,
    request_to_tag: Option<Box<[u8]>>,
    response_to_tag: Option<Box<[u8]>>,
    last_response: Option<Bytes>,
    timers: TimerTable,
    wakeup: Option<Instant>,
}

/// What a server transition may use besides the transaction.
#[derive(Debug, Default)]
struct ServerExtra {
    response: Option<Bytes>,
    ack: Option<(Message, Peer)>,
}

/// How the To tag must compare when a request matched by the RFC 2543 rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TagRule {
    /// A retransmission, or a CANCEL: the To tag of the request.
    Request,
    /// An ACK: the To tag of the response the transaction sent.
    Ack,
}

/// Every transaction of one SIP element, driven by the caller's clock.
///
/// Call [`handle`](Endpoint::handle) with each message received and with
/// [`Input::Timeout`] at the instant [`poll_timeout`](Endpoint::poll_timeout)
/// names; after each call drain [`poll_transmit`](Endpoint::poll_transmit)
/// and [`poll_event`](Endpoint::poll_event). Time never goes backwards: an
/// earlier `now` than the last one is taken as the last one. Everything due
/// at `now` happens within the call, so a zero timer (D, I, J, K over
/// TCP/TLS) ends its transaction at once.
#[derive(Debug)]
pub struct Endpoint {
    cfg: Config,
    now: Option<Instant>,
    next_id: u64,
    /// Draws the To tags the endpoint writes itself.
    tags: Rng,
    clients: BTreeMap<ClientKey, ClientTx>,
    servers: BTreeMap<ServerKey, ServerTx>,
    client_index: HashMap<ClientMatch, ClientKey>,
    server_index: HashMap<ServerMatch, ServerKey>,
    /// Each transaction's next wake-up (the minimum of its timer table).
    wakeups: BTreeSet<(Instant, TxKey)>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
}

impl Endpoint {
    /// An endpoint with no transactions.
    pub fn new(cfg: Config) -> Endpoint {
        Endpoint {
            cfg,
            now: None,
            next_id: 1,
            tags: Rng::new(cfg.seed),
            clients: BTreeMap::new(),
            servers: BTreeMap::new(),
            client_index: HashMap::new(),
            server_index: HashMap::new(),
            wakeups: BTreeSet::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Processes one input at `now`.
    pub fn handle(&mut self, now: Instant, input: Input) {
        let now = self.advance(now);
        match input {
            Input::Receive { msg, from } => {
                if msg.is_request() {
                    self.on_request(now, msg, from);
                } else {
                    self.on_response(now, msg, from);
                }
            }
            Input::Timeout => {}
            Input::TransportError { to } => {
                let hit: Vec<ClientKey> = self
                    .clients
                    .iter()
                    .filter(|(_, tx)| tx.peer.affected_by(&to))
                    .map(|(k, _)| *k)
                    .collect();
                for k in hit {
                    self.run_client(now, k, ClientInput::TransportError, None);
                }
            }
        }
        self.fire_due(now);
    }

    /// Starts a client transaction for `request` towards `to` and sends it.
    ///
    /// The TU writes the request completely, including its own top Via with
    /// a fresh RFC 3261 branch: the transaction is matched by that branch
    /// and the CSeq method. ACK is refused (see [`TxError::AckIsNotATransaction`]).
    pub fn send_request(
        &mut self,
        now: Instant,
        request: Message,
        to: Peer,
    ) -> Result<ClientKey, TxError> {
        let now = self.advance(now);
        if !request.is_request() {
            return Err(TxError::WrongKind);
        }
        let method = request.method_str().ok_or(TxError::WrongKind)?;
        if method == "ACK" {
            return Err(TxError::AckIsNotATransaction);
        }
        let cseq = request
            .cseq()
            .map_err(|_| TxError::BadHeader(HeaderName::CSeq))?;
        if cseq.method != method {
            return Err(TxError::BadHeader(HeaderName::CSeq));
        }
        let via = request
            .top_via()
            .map_err(|_| TxError::BadHeader(HeaderName::Via))?;
        if !via.has_rfc3261_branch() {
            return Err(TxError::NoBranch);
        }
        let index = ClientMatch {
            branch: via.branch().unwrap_or_default().into(),
            method: method.into(),
        };
        if self.client_index.contains_key(&index) {
            return Err(TxError::DuplicateBranch);
        }
        let key = ClientKey(self.alloc());
        self.start_client(now, key, index, request, to);
        self.fire_due(now);
        Ok(key)
    }

    /// Sends `response` on server transaction `key`, to the peer the
    /// request came from (same connection for streams; for UDP the source
    /// address and port, i.e. symmetric response routing).
    ///
    /// The TU writes the response (see [`response_to`]). Refused when the
    /// state does not allow it: after a final, only a 2xx to an INVITE may
    /// be sent again (RFC 6026 Accepted, the TU's 2xx retransmissions).
    pub fn respond(
        &mut self,
        now: Instant,
        key: ServerKey,
        response: Message,
    ) -> Result<(), TxError> {
        let now = self.advance(now);
        let tx = self
            .servers
            .get_mut(&key)
            .ok_or(TxError::UnknownTransaction)?;
        let status = response.status().ok_or(TxError::WrongKind)?;
        let class = Class::of(status);
        if !tx.machine.accepts(class) {
            return Err(TxError::InvalidState);
        }
        if status > 100 {
            if let Some(tag) = response.to().ok().and_then(|t| t.tag()) {
                tx.response_to_tag = Some(tag.into());
            }
        }
        let extra = ServerExtra {
            response: Some(response.to_bytes()),
            ack: None,
        };
        self.run_server(now, key, ServerInput::Respond(class), extra);
        self.fire_due(now);
        Ok(())
    }

    /// Ends server transaction `key` without answering it: a request the
    /// TU drops on purpose (a blocked source) must not hold a transaction
    /// that nothing would ever end. A retransmission of that request is a
    /// new request to the TU. Reported [`Event::Terminated`].
    pub fn forget(&mut self, key: ServerKey) {
        self.remove_server(key);
    }

    /// Cancels the INVITE of client transaction `key` (RFC 3261 §9.1).
    ///
    /// The CANCEL is written from the INVITE (Request-URI, Call-ID, From,
    /// To, CSeq number, top Via, Route) and runs as its own non-INVITE
    /// client transaction, whose key is returned: its 200 (or 481) arrives
    /// as [`Event::Response`] for that key. It is sent at once if a
    /// provisional response has arrived, otherwise as soon as one does; if
    /// the INVITE ends first, it is never sent and its key is reported
    /// [`Event::Terminated`]. The INVITE then normally ends with a 487.
    pub fn cancel(&mut self, now: Instant, key: ClientKey) -> Result<ClientKey, TxError> {
        let now = self.advance(now);
        let tx = self.clients.get(&key).ok_or(TxError::UnknownTransaction)?;
        let ClientMachine::Invite(state) = tx.machine else {
            return Err(TxError::NotInvite);
        };
        if tx.cancel != CancelSlot::None {
            return Err(TxError::AlreadyCancelled);
        }
        if !matches!(
            state,
            InviteClient::Calling { .. } | InviteClient::Proceeding { .. }
        ) {
            return Err(TxError::AlreadyFinal);
        }
        let cancel_key = ClientKey(self.alloc());
        if let Some(tx) = self.clients.get_mut(&key) {
            tx.cancel = CancelSlot::Reserved(cancel_key);
        }
        self.run_client(now, key, ClientInput::Cancel, None);
        self.fire_due(now);
        Ok(cancel_key)
    }

    /// Queues `msg` for `to` outside any transaction: the ACK for a 2xx, a
    /// statelessly forwarded message, a keep-alive response.
    pub fn send_stateless(&mut self, msg: &Message, to: Peer) {
        self.send_stateless_bytes(msg.to_bytes(), to);
    }

    /// Queues bytes already printed (a stored ACK sent again) for `to`,
    /// outside any transaction.
    pub fn send_stateless_bytes(&mut self, bytes: Bytes, to: Peer) {
        self.transmits.push_back(Transmit { to, bytes });
    }

    /// The next datagram or stream message to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event for the TU.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When to call [`handle`](Endpoint::handle) with [`Input::Timeout`]
    /// next: the earliest timer of any transaction. `None` when no timer
    /// is armed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.wakeups.first().map(|(at, _)| *at)
    }

    /// The state of a transaction, `None` once it is gone.
    pub fn state(&self, key: impl Into<TxKey>) -> Option<TxState> {
        match key.into() {
            TxKey::Client(k) => self.clients.get(&k).map(|t| t.machine.state()),
            TxKey::Server(k) => self.servers.get(&k).map(|t| t.machine.state()),
        }
    }

    /// Number of live transactions (client and server).
    pub fn len(&self) -> usize {
        self.clients.len() + self.servers.len()
    }

    /// True when no transaction is alive.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    // ----- time -------------------------------------------------------------

    fn advance(&mut self, now: Instant) -> Instant {
        let now = match self.now {
            Some(prev) if prev > now => prev,
            _ => now,
        };
        self.now = Some(now);
        self.fire_due(now);
        now
    }

    /// Fires every timer due at `now`, earliest first.
    fn fire_due(&mut self, now: Instant) {
        while let Some(&(at, key)) = self.wakeups.first() {
            if at > now {
                break;
            }
            self.wakeups.remove(&(at, key));
            match key {
                TxKey::Client(k) => {
                    let Some(tx) = self.clients.get_mut(&k) else {
                        continue;
                    };
                    tx.wakeup = None;
                    match tx.timers.take_due(now) {
                        Some(t) => self.run_client(now, k, ClientInput::Timer(t), None),
                        None => self.reschedule(key),
                    }
                }
                TxKey::Server(k) => {
                    let Some(tx) = self.servers.get_mut(&k) else {
                        continue;
                    };
                    tx.wakeup = None;
                    match tx.timers.take_due(now) {
                        Some(t) => {
                            self.run_server(now, k, ServerInput::Timer(t), ServerExtra::default())
                        }
                        None => self.reschedule(key),
                    }
                }
            }
        }
    }

    /// Puts a transaction's next wake-up (the minimum of its table) into
    /// the schedule.
    fn reschedule(&mut self, key: TxKey) {
        let (timers, wakeup) = match key {
            TxKey::Client(k) => match self.clients.get_mut(&k) {
                Some(tx) => (&tx.timers, &mut tx.wakeup),
                None => return,
            },
            TxKey::Server(k) => match self.servers.get_mut(&k) {
                Some(tx) => (&tx.timers, &mut tx.wakeup),
                None => return,
            },
        };
        let next = timers.next().map(|(at, _)| at);
        if *wakeup == next {
            return;
        }
        if let Some(old) = wakeup.take() {
            self.wakeups.remove(&(old, key));
        }
        if let Some(at) = next {
            self.wakeups.insert((at, key));
        }
        *wakeup = next;
    }

    fn alloc(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// A To tag for a response the endpoint writes itself.
    fn new_tag(&mut self) -> String {
        self.tags.hex_token()
    }

    // ----- client side ------------------------------------------------------

    fn start_client(
        &mut self,
        now: Instant,
        key: ClientKey,
        index: ClientMatch,
        request: Message,
        to: Peer,
    ) {
        let invite = &*index.method == "INVITE";
        let ctx = Ctx {
            cfg: &self.cfg.timers,
            transport: to.transport,
        };
        let (machine, actions) = ClientMachine::start(invite, ctx);
        let bytes = request.to_bytes();
        self.transmits.push_back(Transmit {
            to,
            bytes: bytes.clone(),
        });
        self.client_index.insert(index.clone(), key);
        self.clients.insert(
            key,
            ClientTx {
                machine,
                peer: to,
                index,
                request: bytes,
                invite,
                ack: None,
                cancel: CancelSlot::None,
                timers: TimerTable::default(),
                wakeup: None,
            },
        );
        self.apply_client(now, key, &actions, None);
    }

    fn run_client(
        &mut self,
        now: Instant,
        key: ClientKey,
        input: ClientInput,
        response: Option<Message>,
    ) {
        let Some(tx) = self.clients.get_mut(&key) else {
            return;
        };
        let ctx = Ctx {
            cfg: &self.cfg.timers,
            transport: tx.peer.transport,
        };
        let (next, actions) = tx.machine.step(ctx, input);
        tx.machine = next;
        self.apply_client(now, key, &actions, response);
    }

    fn apply_client(
        &mut self,
        now: Instant,
        key: ClientKey,
        actions: &[Action],
        mut response: Option<Message>,
    ) {
        let mut terminate = false;
        let mut start_cancel = false;
        for &action in actions {
            let Some(tx) = self.clients.get_mut(&key) else {
                return;
            };
            match action {
                Action::Arm(t, d) => arm(&mut tx.timers, t, now, d),
                Action::Disarm(t) => tx.timers.stop(t),
                Action::Retransmit => self.transmits.push_back(Transmit {
                    to: tx.peer,
                    bytes: tx.request.clone(),
                }),
                Action::SendAck => {
                    if tx.ack.is_none() {
                        if let (Some(inv), Some(resp)) = (tx.sent_invite(), &response) {
                            // A response without To cannot be ACKed; it still
                            // completes the transaction.
                            tx.ack = ack_for(&inv, resp).ok().map(|m| m.to_bytes());
                        }
                    }
                    if let Some(ack) = &tx.ack {
                        self.transmits.push_back(Transmit {
                            to: tx.peer,
                            bytes: ack.clone(),
                        });
                    }
                }
                Action::SendCancel => start_cancel = true,
                Action::Deliver => {
                    if let Some(msg) = response.take() {
                        self.events.push_back(Event::Response { key, msg });
                    }
                }
                Action::Timeout => self.events.push_back(Event::Timeout { key }),
                Action::TransportError => self.events.push_back(Event::TransportError { key }),
                Action::Terminate => terminate = true,
                Action::SendTrying | Action::Send | Action::Resend | Action::DeliverAck => {}
            }
        }
        if start_cancel {
            self.start_cancel(now, key);
        }
        self.drop_unsent_cancel(key);
        if terminate {
            self.remove_client(key);
        } else {
            self.reschedule(TxKey::Client(key));
        }
    }

    fn start_cancel(&mut self, now: Instant, invite_key: ClientKey) {
        let Some(tx) = self.clients.get_mut(&invite_key) else {
            return;
        };
        let CancelSlot::Reserved(cancel_key) = tx.cancel else {
            return;
        };
        tx.cancel = CancelSlot::Done;
        let peer = tx.peer;
        let built = tx.sent_invite().as_ref().map(cancel_for);
        let index = ClientMatch {
            branch: tx.index.branch.clone(),
            method: "CANCEL".into(),
        };
        match built {
            Some(Ok(cancel)) if !self.client_index.contains_key(&index) => {
                self.start_client(now, cancel_key, index, cancel, peer);
            }
            // The INVITE cannot be turned into a CANCEL (or the TU sent its
            // own CANCEL with that branch): report the key as finished.
            _ => self.events.push_back(Event::Terminated {
                key: TxKey::Client(cancel_key),
            }),
        }
    }

    /// A CANCEL still waiting for a provisional when the INVITE got its final
    /// will never be sent: report its key finished.
    fn drop_unsent_cancel(&mut self, key: ClientKey) {
        let Some(tx) = self.clients.get_mut(&key) else {
            return;
        };
        let CancelSlot::Reserved(cancel_key) = tx.cancel else {
            return;
        };
        let waiting = matches!(
            tx.machine,
            ClientMachine::Invite(InviteClient::Calling { .. } | InviteClient::Proceeding { .. })
        );
        if !waiting {
            tx.cancel = CancelSlot::Done;
            self.events.push_back(Event::Terminated {
                key: TxKey::Client(cancel_key),
            });
        }
    }

    fn remove_client(&mut self, key: ClientKey) {
        let Some(tx) = self.clients.remove(&key) else {
            return;
        };
        if self.client_index.get(&tx.index) == Some(&key) {
            self.client_index.remove(&tx.index);
        }
        if let Some(at) = tx.wakeup {
            self.wakeups.remove(&(at, TxKey::Client(key)));
        }
        self.events.push_back(Event::Terminated {
            key: TxKey::Client(key),
        });
        if let CancelSlot::Reserved(cancel_key) = tx.cancel {
            self.events.push_back(Event::Terminated {
                key: TxKey::Client(cancel_key),
            });
        }
    }

    fn on_response(&mut self, now: Instant, msg: Message, from: Peer) {
        let key = ClientMatch::of_response(&msg).and_then(|m| self.client_index.get(&m).copied());
        let (Some(key), Some(status)) = (key, msg.status()) else {
            self.events.push_back(Event::StrayResponse { msg, from });
            return;
        };
        self.run_client(
            now,
            key,
            ClientInput::Response(Class::of(status)),
            Some(msg),
        );
    }

    // ----- server side ------------------------------------------------------

    fn run_server(&mut self, now: Instant, key: ServerKey, input: ServerInput, extra: ServerExtra) {
        let Some(tx) = self.servers.get_mut(&key) else {
            return;
        };
        let ctx = Ctx {
            cfg: &self.cfg.timers,
            transport: tx.peer.transport,
        };
        let (next, actions) = tx.machine.step(ctx, input);
        tx.machine = next;
        self.apply_server(now, key, &actions, extra);
    }

    fn apply_server(
        &mut self,
        now: Instant,
        key: ServerKey,
        actions: &[Action],
        mut extra: ServerExtra,
    ) {
        let mut terminate = false;
        for &action in actions {
            let Some(tx) = self.servers.get_mut(&key) else {
                return;
            };
            match action {
                Action::Arm(t, d) => arm(&mut tx.timers, t, now, d),
                Action::Disarm(t) => tx.timers.stop(t),
                Action::SendTrying | Action::Send => {
                    if let Some(bytes) = extra.response.take() {
                        tx.last_response = Some(bytes.clone());
                        self.transmits.push_back(Transmit { to: tx.peer, bytes });
                    }
                }
                Action::Resend => {
                    if let Some(bytes) = &tx.last_response {
                        self.transmits.push_back(Transmit {
                            to: tx.peer,
                            bytes: bytes.clone(),
                        });
                    }
                }
                Action::DeliverAck => {
                    if let Some((msg, from)) = extra.ack.take() {
                        self.events.push_back(Event::Ack { msg, from });
                    }
                }
                Action::Timeout => self.events.push_back(Event::AckTimeout { key }),
                Action::Terminate => terminate = true,
                Action::Retransmit
                | Action::SendAck
                | Action::SendCancel
                | Action::Deliver
                | Action::TransportError => {}
            }
        }
        if terminate {
            self.remove_server(key);
        } else {
            self.reschedule(TxKey::Server(key));
        }
    }

    fn remove_server(&mut self, key: ServerKey) {
        let Some(tx) = self.servers.remove(&key) else {
            return;
        };
        if self.server_index.get(&tx.index) == Some(&key) {
            self.server_index.remove(&tx.index);
        }
        if let Some(at) = tx.wakeup {
            self.wakeups.remove(&(at, TxKey::Server(key)));
        }
        self.events.push_back(Event::Terminated {
            key: TxKey::Server(key),
        });
    }

    /// §17.2.3: the server transaction `key` belongs to, if any. Under the
    /// RFC 2543 rules the To tag must also match.
    fn find_server(
        &self,
        key: &ServerMatch,
        to_tag: Option<&[u8]>,
        rule: TagRule,
    ) -> Option<ServerKey> {
        let sk = *self.server_index.get(key)?;
        if key.is_legacy() {
            let tx = self.servers.get(&sk)?;
            let ok = match rule {
                TagRule::Request => tx.request_to_tag.as_deref() == to_tag,
                TagRule::Ack => {
                    to_tag == tx.response_to_tag.as_deref()
                        || (tx.request_to_tag.is_some() && to_tag == tx.request_to_tag.as_deref())
                }
            };
            if !ok {
                return None;
            }
        }
        Some(sk)
    }

    fn is_invite_server(&self, key: ServerKey) -> bool {
        self.servers
            .get(&key)
            .is_some_and(|t| matches!(t.machine, ServerMachine::Invite(_)))
    }

    fn on_request(&mut self, now: Instant, msg: Message, from: Peer) {
        let info = match RequestInfo::of(&msg) {
            Ok(info) => info,
            Err(reason) => {
                self.events.push_back(Event::Dropped { from, reason });
                return;
            }
        };
        match &*info.method {
            "ACK" => self.on_ack(now, msg, from, &info),
            "CANCEL" => self.on_cancel(now, msg, from, &info),
            _ => self.on_other(now, msg, from, &info),
        }
    }

    /// A retransmission, or a new server transaction.
    fn on_other(&mut self, now: Instant, msg: Message, from: Peer, info: &RequestInfo) {
        let index = info.key(&info.method);
        if self.retransmission(now, &index, from, info) {
            return;
        }
        let invite = &*info.method == "INVITE";
        let key = ServerKey(self.alloc());
        let trying = if invite {
            response_to(&msg, 100, "Trying", None)
                .ok()
                .map(|m| m.to_bytes())
        } else {
            None
        };
        let (machine, actions) = ServerMachine::start(invite);
        self.insert_server(key, machine, from, index, info);
        self.events.push_back(Event::Request { key, msg, from });
        let extra = ServerExtra {
            response: trying,
            ack: None,
        };
        self.apply_server(now, key, &actions, extra);
    }

    fn insert_server(
        &mut self,
        key: ServerKey,
        machine: ServerMachine,
        from: Peer,
        index: ServerMatch,
        info: &RequestInfo,
    ) {
        self.server_index.insert(index.clone(), key);
        self.servers.insert(
            key,
            ServerTx {
                machine,
                peer: from,
                index,
                request_to_tag: info.to_tag.clone(),
                response_to_tag: None,
                last_response: None,
                timers: TimerTable::default(),
                wakeup: None,
            },
        );
    }

    /// If the request retransmits one a server transaction holds, feeds it
    /// to that transaction (which resends its last response or absorbs it).
    fn retransmission(
        &mut self,
        now: Instant,
        index: &ServerMatch,
        from: Peer,
        info: &RequestInfo,
    ) -> bool {
        let Some(key) = self.find_server(index, info.to_tag.as_deref(), TagRule::Request) else {
            return false;
        };
        if let Some(tx) = self.servers.get_mut(&key) {
            // A stream may have been re-opened: answer where the request now comes from.
            tx.peer = from;
        }
        self.run_server(
            now,
            key,
            ServerInput::Retransmission,
            ServerExtra::default(),
        );
        true
    }

    fn on_ack(&mut self, now: Instant, msg: Message, from: Peer, info: &RequestInfo) {
        let index = info.key("INVITE");
        let matched = self
            .find_server(&index, info.to_tag.as_deref(), TagRule::Ack)
            .filter(|k| self.is_invite_server(*k));
        match matched {
            Some(key) => {
                let extra = ServerExtra {
                    response: None,
                    ack: Some((msg, from)),
                };
                self.run_server(now, key, ServerInput::Ack, extra);
            }
            None => self.events.push_back(Event::Ack { msg, from }),
        }
    }

    /// RFC 3261 §9.2: a CANCEL is answered by the endpoint — 200 when it
    /// matches an INVITE server transaction, 481 otherwise — in a server
    /// transaction of its own, so that its retransmissions get the same answer.
    fn on_cancel(&mut self, now: Instant, msg: Message, from: Peer, info: &RequestInfo) {
        let index = info.key("CANCEL");
        if self.retransmission(now, &index, from, info) {
            return;
        }
        let invite = self
            .find_server(
                &info.key("INVITE"),
                info.to_tag.as_deref(),
                TagRule::Request,
            )
            .filter(|k| self.is_invite_server(*k));
        let key = ServerKey(self.alloc());
        let (machine, actions) = ServerMachine::start(false);
        self.insert_server(key, machine, from, index, info);
        self.apply_server(now, key, &actions, ServerExtra::default());
        let (status, reason, tag) = match invite {
            Some(ik) => {
                // §9.2: the To tag of the 200 SHOULD be the INVITE response's.
                let tag = self
                    .servers
                    .get(&ik)
                    .and_then(|t| t.response_to_tag.as_deref())
                    .and_then(|t| std::str::from_utf8(t).ok())
                    .map(str::to_owned);
                (200, "OK", tag.unwrap_or_else(|| self.new_tag()))
            }
            None => (481, "Call/Transaction Does Not Exist", self.new_tag()),
        };
        let response = response_to(&msg, status, reason, Some(&tag))
            .ok()
            .map(|m| m.to_bytes());
        let extra = ServerExtra {
            response,
            ack: None,
        };
        self.run_server(now, key, ServerInput::Respond(Class::of(status)), extra);
        if let Some(ik) = invite {
            let open = self
                .servers
                .get(&ik)
                .is_some_and(|t| t.machine == ServerMachine::Invite(InviteServer::Proceeding));
            if open {
                self.events.push_back(Event::Cancelled {
                    invite: ik,
                    cancel: key,
                });
            }
        }
    }
}

fn arm(timers: &mut TimerTable, timer: crate::timer::Timer, now: Instant, d: Duration) {
    match now.checked_add(d) {
        Some(at) => timers.set(timer, at),
        // Beyond what Instant can hold: the timer never fires.
        None => timers.stop(timer),
    }
}

#[cfg(test)]
mod tests;
