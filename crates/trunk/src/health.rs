//! The health machine of one trunk's peers: OPTIONS, what calls see, and
//! what peers tell us.
//!
//! Every peer starts `Unknown` (usable, in configured order).
//!
//! - **OPTIONS** (when enabled): one is due for each peer every `interval`;
//!   a final response counts as a success unless its code is a configured
//!   failure code; a failure code, a timeout (no final within `timeout`), a
//!   transport or TLS failure count as failures. `down_after` consecutive
//!   failures take a peer down, `up_after` consecutive successes bring it up
//!   (AudioCodes proxy-set semantics). A peer that stops answering is down
//!   within `interval + timeout` with `down_after = 1`.
//! - **Passive**: a call's INVITE that got no response within the attempt
//!   timer ([`Health::on_attempt_timeout`]) or whose connection or TLS
//!   handshake failed ([`Health::on_call_failure`]) takes the peer down at
//!   once, whatever `down_after` says, so that the next call does not try
//!   it first; with OPTIONS on its next ping is due at once.
//! - **Hold-down**: a 503 with Retry-After ([`Health::hold_down`]) keeps the
//!   peer down until `now + min(retry_after, max_hold)`; OPTIONS successes
//!   meanwhile do not bring it up. When the hold ends the peer is `Unknown`
//!   again, unless what was seen during the hold (failed OPTIONS, a failed
//!   call) says it is down.
//! - **Retry**: with OPTIONS off (or paused) nothing else could bring a
//!   down peer back, so it is `Unknown` again `retry_interval` after its
//!   last failure. With OPTIONS on, recovery is OPTIONS-driven.
//! - **Pause** ([`Health::set_paused`]): while draining, no OPTIONS are
//!   sent (peers should see us leave); pings in flight still complete.
//! - **Address** ([`Health::set_unresolved`], [`Health::set_resolved`]): a
//!   peer whose name has no address (yet) is down (`unresolved`) and gets
//!   no OPTIONS and no retry until an address is known; a new address makes
//!   it `Unknown` again (`resolved`, `address changed`), with a ping at once.
//! - **Ranking** ([`Health::ranked`]): usable peers in configured order,
//!   then down peers, the likeliest to be back first (the earliest hold end
//!   or retry time), configured order breaking ties.
//!
//! Every change of a peer between down and usable, and from `Unknown` to
//! `Up`, comes out of [`Health::poll_change`]. Time only moves in
//! [`Health::poll_ping`]: ping deadlines, hold ends and retries all happen
//! there, at the instants [`Health::next_wakeup`] announces.

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

/// The OPTIONS in flight to one peer.
#[derive(Debug, Clone, Copy)]
struct InFlight {
    /// When it was handed out by `poll_ping` (for the round-trip time).
    sent: Instant,
    /// No final response by then: a failure.
    deadline: Instant,
}

/// A hold-down (503 with Retry-After) of one peer.
#[derive(Debug, Clone, Copy)]
struct Hold {
    /// The hold ends then.
    until: Instant,
    /// What was seen during the hold says the peer is down (the failures
    /// reached `down_after`, or a call failed): it stays down when the hold
    /// ends. A success clears it.
    failed: bool,
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
    /// The OPTIONS in flight.
    pending: Option<InFlight>,
    /// The hold-down in force.
    hold: Option<Hold>,
    /// The last failure while down (when it went down, or a later one):
    /// the retry and the ranking count from it.
    last_failure: Option<Instant>,
    /// The last up/down change.
    since: Option<Instant>,
    /// The round trip of the last OPTIONS answered.
    rtt: Option<Duration>,
    /// No address is known for the peer (its name does not resolve yet).
    unresolved: bool,
    /// The last OPTIONS was lost with its connection and sent again
    /// ([`Health::on_ping_lost`]); cleared by any final response.
    resent: bool,
}

/// The health of one trunk's peers. Sans-IO: `now` is always an input, the
/// OPTIONS come out of [`Health::poll_ping`], what happened goes in through
/// [`Health::on_response`] and [`Health::on_failure`] (OPTIONS),
/// [`Health::on_attempt_timeout`] and [`Health::on_call_failure`] (calls)
/// and [`Health::hold_down`] (503 with Retry-After).
#[derive(Debug)]
pub struct Health {
    options: OptionsSpec,
    fqdn: String,
    /// Host of our Via and Contact (`TrunkSpec::local_host`).
    local_host: String,
    local_port: u16,
    contact_transport: Transport,
    x_ms_sbc: Option<String>,
    user_agent: String,
    peers: Vec<PeerHealth>,
    paused: bool,
    /// Branches, tags and Call-IDs of pings: the project's one seeded generator.
    rng: transaction::Rng,
    cseq: u32,
    changes: VecDeque<HealthChange>,
}

/// `t + d`, or the latest instant the platform can represent on the way
/// there (a huge configured duration must not panic).
fn after(t: Instant, mut d: Duration) -> Instant {
    loop {
        if let Some(later) = t.checked_add(d) {
            return later;
        }
        d /= 2;
    }
}

/// The reason of a peer taken down by a call's INVITE that got no response.
const NO_RESPONSE: &str = "no response to INVITE";

/// The reason of a peer whose name has no address.
const UNRESOLVED: &str = "unresolved";

impl Health {
    /// The health of `spec`'s peers; `seed` makes this instance's branches,
    /// tags and Call-IDs unique (take it from the runtime's randomness; the
    /// trunk's name is folded in, so one seed may serve every trunk).
    /// With OPTIONS enabled the first pings are due at `now`.
    pub fn new(spec: &TrunkSpec, seed: u64, now: Instant) -> Health {
        Health {
            options: spec.options.clone(),
            fqdn: spec.fqdn.clone(),
            local_host: spec.local_host(),
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
                    hold: None,
                    last_failure: None,
                    since: None,
                    rtt: None,
                    unresolved: false,
                    resent: false,
                })
                .collect(),
            paused: false,
            rng: transaction::Rng::with_label(seed, &spec.name),
            cseq: 0,
            changes: VecDeque::new(),
        }
    }

    /// An OPTIONS due now for one peer, if any (call until `None`, at least
    /// at every [`Health::next_wakeup`]). This is also where time moves for
    /// the peers: pings whose `timeout` has passed count as failures, holds
    /// that have ended release their peers, and (OPTIONS off or paused) down
    /// peers whose retry time has come are usable again. Nothing is sent
    /// while OPTIONS are off or paused.
    pub fn poll_ping(&mut self, now: Instant) -> Option<Ping> {
        self.expire(now);
        if !self.pinging() {
            return None;
        }
        let peer = self
            .peers
            .iter()
            .position(|p| p.pending.is_none() && !p.unresolved && p.due <= now)?;
        let msg = self.build(peer);
        let interval = self.options.interval.max(Duration::from_millis(1));
        let timeout = self.options.timeout;
        let p = &mut self.peers[peer];
        p.pending = Some(InFlight {
            sent: now,
            deadline: after(now, timeout),
        });
        // Keep the cadence; after a long pause do not fire a burst.
        p.due = after(p.due, interval).max(now);
        Some(Ping { peer, msg })
    }

    /// True when OPTIONS are sent: enabled and not paused.
    fn pinging(&self) -> bool {
        self.options.enabled && !self.paused
    }

    /// True when down peers come back by themselves after `retry_interval`:
    /// no OPTIONS could bring them up.
    fn retrying(&self) -> bool {
        !self.pinging()
    }

    fn expire(&mut self, now: Instant) {
        let retrying = self.retrying();
        let retry = self.options.retry_interval;
        for i in 0..self.peers.len() {
            if self.peers[i].pending.is_some_and(|f| f.deadline <= now) {
                self.peers[i].pending = None;
                self.failure(now, i, Failure::Timeout.to_string(), false);
            }
            if let Some(hold) = self.peers[i].hold.filter(|h| h.until <= now) {
                self.peers[i].hold = None;
                if !hold.failed {
                    self.usable(now, i, PeerState::Unknown, "retry-after elapsed".to_owned());
                    // Check a released peer soon.
                    let p = &mut self.peers[i];
                    p.due = p.due.min(now);
                }
            }
            let p = &self.peers[i];
            if retrying
                && !p.unresolved
                && p.hold.is_none()
                && p.state.is_down()
                && p.last_failure.is_some_and(|t| after(t, retry) <= now)
            {
                self.usable(now, i, PeerState::Unknown, "retry".to_owned());
            }
        }
    }

    /// When [`Health::poll_ping`] has something to do next: the next ping
    /// due (not while paused), the next ping deadline, hold end or retry
    /// time. `None` when there is nothing to wait for (OPTIONS off and no
    /// peer down).
    pub fn next_wakeup(&self) -> Option<Instant> {
        let pinging = self.pinging();
        let retrying = self.retrying();
        let retry = self.options.retry_interval;
        self.peers
            .iter()
            .filter_map(|p| {
                let ping = match p.pending {
                    Some(f) => Some(f.deadline),
                    None => (pinging && !p.unresolved).then_some(p.due),
                };
                let hold = p.hold.map(|h| h.until);
                let back = if retrying && !p.unresolved && p.hold.is_none() && p.state.is_down() {
                    p.last_failure.map(|t| after(t, retry))
                } else {
                    None
                };
                [ping, hold, back].into_iter().flatten().min()
            })
            .min()
    }

    /// A final response to the OPTIONS in flight to `peer`. A configured
    /// failure code counts as a failure, any other final as a success; both
    /// give the round-trip time ([`Health::rtt`]). Provisional responses and
    /// responses with no ping in flight (late, after the ping was already
    /// counted as timed out) are ignored.
    pub fn on_response(&mut self, now: Instant, peer: usize, status: u16) {
        if status < 200 {
            return;
        }
        let Some(p) = self.peers.get_mut(peer) else {
            return;
        };
        let Some(ping) = p.pending.take() else {
            return;
        };
        p.resent = false;
        p.rtt = Some(now.saturating_duration_since(ping.sent));
        if self.options.failure_codes.contains(&status) {
            self.failure(now, peer, status.to_string(), false);
        } else {
            self.success(now, peer, status);
        }
    }

    /// `peer` could not be reached by an OPTIONS. Ends the OPTIONS in
    /// flight, if any, as a failure. With no ping in flight a transport or
    /// TLS failure (of a connection shared with calls, say) still counts, a
    /// timeout does not (the ping was already counted, or it was a call's
    /// transaction). Counts toward `down_after` like any OPTIONS failure;
    /// a call's failures go to [`Health::on_call_failure`] instead.
    pub fn on_failure(&mut self, now: Instant, peer: usize, why: Failure) {
        let Some(p) = self.peers.get_mut(peer) else {
            return;
        };
        let had_ping = p.pending.take().is_some();
        if had_ping || why != Failure::Timeout {
            self.failure(now, peer, why.to_string(), false);
        }
    }

    /// The OPTIONS in flight to `peer` was lost with its connection (the
    /// peer closed or reset it: a proxy restarting does): that says nothing
    /// of the peer yet, so it is no failure and the next OPTIONS is due at
    /// once, on a new connection (which fails, and counts, if nobody
    /// listens). Lost again right after: a failure like
    /// [`Health::on_failure`] with `Failure::Transport` (a peer that drops
    /// every connection is not pinged in a loop). No ping in flight: nothing.
    pub fn on_ping_lost(&mut self, now: Instant, peer: usize) {
        let Some(p) = self.peers.get_mut(peer) else {
            return;
        };
        if p.pending.take().is_none() {
            return;
        }
        if std::mem::replace(&mut p.resent, true) {
            p.resent = false;
            self.failure(now, peer, Failure::Transport.to_string(), false);
        } else {
            p.due = now;
        }
    }

    /// A call's INVITE to `peer` got no response within the per-attempt
    /// timer: the peer is down at once (`no response to INVITE`), whatever
    /// `down_after` says, so the next call tries it last. With OPTIONS on
    /// its next ping is due at once, to notice its recovery soon (after the
    /// one in flight, if any).
    pub fn on_attempt_timeout(&mut self, now: Instant, peer: usize) {
        self.call_failure(now, peer, NO_RESPONSE.to_owned());
    }

    /// A call's attempt toward `peer` failed: its connection could not be
    /// opened or broke, its TLS handshake failed, or (`Failure::Timeout`)
    /// its INVITE got no response, as [`Health::on_attempt_timeout`]. The
    /// peer is down at once, whatever `down_after` says; with OPTIONS on its
    /// next ping is due at once. Not for OPTIONS: see [`Health::on_failure`].
    pub fn on_call_failure(&mut self, now: Instant, peer: usize, why: Failure) {
        let reason = match why {
            Failure::Timeout => NO_RESPONSE.to_owned(),
            Failure::Transport | Failure::Tls => why.to_string(),
        };
        self.call_failure(now, peer, reason);
    }

    fn call_failure(&mut self, now: Instant, peer: usize, reason: String) {
        if peer >= self.peers.len() {
            return;
        }
        self.failure(now, peer, reason, true);
        let p = &mut self.peers[peer];
        p.due = p.due.min(now);
    }

    /// `peer` answered a call with 503 and Retry-After: it is down (with
    /// `reason`, for example `503`) until `now + min(retry_after, max_hold)`,
    /// whatever OPTIONS say meanwhile. When the hold ends (in
    /// [`Health::poll_ping`]) it is usable again (`Unknown`, change reason
    /// `retry-after elapsed`), unless failed OPTIONS or calls during the
    /// hold say it is down. A later hold replaces an earlier one: the peer's
    /// latest word counts.
    pub fn hold_down(&mut self, now: Instant, peer: usize, retry_after: Duration, reason: &str) {
        let until = after(now, retry_after.min(self.options.max_hold));
        let Some(p) = self.peers.get_mut(peer) else {
            return;
        };
        p.successes = 0;
        p.failures = 0;
        p.hold = Some(Hold {
            until,
            failed: false,
        });
        self.down(now, peer, reason.to_owned());
    }

    /// No address is known for `peer` (its name does not resolve, or not
    /// yet): it is down (`unresolved`) — tried only after every other peer,
    /// where the caller finds it cannot be reached — and gets no OPTIONS
    /// and no retry until [`Health::set_resolved`]. A ping in flight is
    /// forgotten.
    pub fn set_unresolved(&mut self, now: Instant, peer: usize) {
        let Some(p) = self.peers.get_mut(peer) else {
            return;
        };
        if p.unresolved {
            return;
        }
        p.unresolved = true;
        p.pending = None;
        p.successes = 0;
        p.failures = 0;
        self.down(now, peer, UNRESOLVED.to_owned());
    }

    /// `peer` has an address: the first one after [`Health::set_unresolved`]
    /// (or at start), or, with `changed`, a different one than before. What
    /// was learnt about the old address (or its absence) no longer holds:
    /// the peer is `Unknown` (`resolved` / `address changed`) and, with
    /// OPTIONS on, pinged at once — unless a 503 Retry-After hold is in
    /// force (the peer asked by name), which keeps it down until it ends.
    /// The same address again changes nothing.
    pub fn set_resolved(&mut self, now: Instant, peer: usize, changed: bool) {
        let Some(p) = self.peers.get_mut(peer) else {
            return;
        };
        let was_unresolved = std::mem::take(&mut p.unresolved);
        if !was_unresolved && !changed {
            return;
        }
        p.pending = None;
        p.due = p.due.min(now);
        if let Some(h) = &mut p.hold {
            h.failed = false;
            return;
        }
        let reason = if was_unresolved {
            "resolved"
        } else {
            "address changed"
        };
        if p.state != PeerState::Unknown {
            self.usable(now, peer, PeerState::Unknown, reason.to_owned());
        } else {
            p.successes = 0;
            p.failures = 0;
        }
    }

    /// True while no address is known for `peer` ([`Health::set_unresolved`]).
    pub fn is_unresolved(&self, peer: usize) -> bool {
        self.peers.get(peer).is_some_and(|p| p.unresolved)
    }

    /// Stops (`true`) or resumes (`false`) sending OPTIONS: while the SBC
    /// drains, peers should see it leave. Pings in flight still complete or
    /// time out; holds end and, with no OPTIONS to bring them up, down peers
    /// come back after `retry_interval` as with OPTIONS off. On resuming,
    /// the pings that fell due meanwhile go out at once (one per peer).
    pub fn set_paused(&mut self, paused: bool) {
        self.paused = paused;
    }

    /// True while OPTIONS are paused ([`Health::set_paused`]).
    pub fn is_paused(&self) -> bool {
        self.paused
    }

    fn success(&mut self, now: Instant, peer: usize, status: u16) {
        let up_after = self.options.up_after.max(1);
        let p = &mut self.peers[peer];
        if p.unresolved {
            // An answer from an address no longer the peer's.
            return;
        }
        p.failures = 0;
        if let Some(hold) = &mut p.hold {
            // Alive, but it asked not to be used yet: not counted toward up.
            hold.failed = false;
            p.successes = 0;
            return;
        }
        p.successes = p.successes.saturating_add(1);
        if p.state != PeerState::Up && p.successes >= up_after {
            let reason = if up_after > 1 {
                format!("{status} x{}", p.successes)
            } else {
                status.to_string()
            };
            self.usable(now, peer, PeerState::Up, reason);
        }
    }

    /// A failure of `peer`; `forced` (a call's failure) takes it down
    /// whatever `down_after` says.
    fn failure(&mut self, now: Instant, peer: usize, reason: String, forced: bool) {
        let down_after = self.options.down_after.max(1);
        let p = &mut self.peers[peer];
        p.successes = 0;
        p.failures = p.failures.saturating_add(1);
        let verdict = forced || p.failures >= down_after;
        if let Some(hold) = &mut p.hold {
            hold.failed |= verdict;
        }
        if verdict || p.state.is_down() {
            self.down(now, peer, reason);
        }
    }

    /// `peer` is down for `reason`: a change when it was not down, the
    /// reason and the time of the last failure in any case.
    fn down(&mut self, now: Instant, peer: usize, reason: String) {
        let p = &mut self.peers[peer];
        p.last_failure = Some(now);
        if let PeerState::Down(r) = &mut p.state {
            *r = reason;
            return;
        }
        p.state = PeerState::Down(reason.clone());
        p.since = Some(now);
        self.changes.push_back(HealthChange {
            peer,
            host: p.host.clone(),
            up: false,
            reason,
        });
    }

    /// `peer` is usable again (`Unknown` or `Up`) for `reason`.
    fn usable(&mut self, now: Instant, peer: usize, state: PeerState, reason: String) {
        let p = &mut self.peers[peer];
        p.state = state;
        p.since = Some(now);
        p.last_failure = None;
        p.successes = 0;
        p.failures = 0;
        self.changes.push_back(HealthChange {
            peer,
            host: p.host.clone(),
            up: true,
            reason,
        });
    }

    /// The health of `peer` (`Unknown` for an index out of range).
    pub fn state(&self, peer: usize) -> PeerState {
        self.peers
            .get(peer)
            .map_or(PeerState::Unknown, |p| p.state.clone())
    }

    /// True when `peer` is down (false for an index out of range).
    pub fn is_down(&self, peer: usize) -> bool {
        self.peers.get(peer).is_some_and(|p| p.state.is_down())
    }

    /// The round trip of the last OPTIONS `peer` answered (from
    /// [`Health::poll_ping`] handing it out to [`Health::on_response`]);
    /// `None` before the first answer.
    pub fn rtt(&self, peer: usize) -> Option<Duration> {
        self.peers.get(peer).and_then(|p| p.rtt)
    }

    /// When `peer` last changed between down and usable or came up (the
    /// time of its last [`HealthChange`]); `None` before its first change.
    pub fn since(&self, peer: usize) -> Option<Instant> {
        self.peers.get(peer).and_then(|p| p.since)
    }

    /// Every peer, in the order to try them, with `true` when it is down:
    /// the usable peers in configured order, then the down ones, the
    /// likeliest to be back first — the earliest hold end, or for a peer not
    /// held the earliest retry time (`retry_interval` after its last
    /// failure: the one that failed longest ago) — configured order breaking
    /// ties; peers without an address after all of them. A down peer is
    /// still better than nothing.
    pub fn ranked(&self) -> Vec<(usize, bool)> {
        let retry = self.options.retry_interval;
        let mut down: Vec<(bool, Option<Instant>, usize)> = Vec::new();
        let mut ranked: Vec<(usize, bool)> = Vec::with_capacity(self.peers.len());
        for (i, p) in self.peers.iter().enumerate() {
            if p.state.is_down() {
                let back = match p.hold {
                    Some(h) => Some(h.until),
                    None => p.last_failure.map(|t| after(t, retry)),
                };
                // A peer without an address cannot be tried at all: last.
                down.push((p.unresolved, back, i));
            } else {
                ranked.push((i, false));
            }
        }
        down.sort();
        ranked.extend(down.into_iter().map(|(_, _, i)| (i, true)));
        ranked
    }

    /// The peers to try: [`Health::ranked`] without the flags.
    pub fn order(&self) -> Vec<usize> {
        self.ranked().into_iter().map(|(i, _)| i).collect()
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
        self.rng.next_u64()
    }

    fn build(&mut self, peer: usize) -> sip::Message {
        let (branch, tag, call_id) = (self.unique(), self.unique(), self.unique());
        self.cseq = self.cseq.wrapping_add(1).max(1);
        let p = &self.peers[peer];
        let host = bracket(&p.host);
        let fqdn = bracket(&self.fqdn);
        let ours = &self.local_host;
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
                    "SIP/2.0/{} {ours}:{lp};branch=z9hG4bK{branch:016x}",
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
                    "<sip:{ours}:{lp};transport={}>",
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
