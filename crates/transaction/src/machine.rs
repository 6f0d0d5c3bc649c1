//! What the four machines share: the context of a transition, the class of
//! a response, and the actions a transition asks the endpoint to carry out.

use std::time::Duration;

use smallvec::SmallVec;

use crate::peer::Transport;
use crate::timer::{Timer, TimerConfig};

/// What a transition needs to know besides its state and input.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ctx<'a> {
    pub(crate) cfg: &'a TimerConfig,
    pub(crate) transport: Transport,
}

impl Ctx<'_> {
    /// `Arm(timer, initial value)` unless the timer is unused on this transport.
    pub(crate) fn arm(&self, timer: Timer, out: &mut Actions) {
        if let Some(d) = self.cfg.initial(timer, self.transport) {
            out.push(Action::Arm(timer, d));
        }
    }
}

/// Response classes as the machines see them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    /// 1xx
    Provisional,
    /// 2xx
    Success,
    /// 3xx–6xx
    Failure,
}

impl Class {
    pub(crate) fn of(status: u16) -> Class {
        match status {
            0..=199 => Class::Provisional,
            200..=299 => Class::Success,
            _ => Class::Failure,
        }
    }
}

/// What a transition asks the endpoint to do, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// Set a timer to fire after the duration (from `now`).
    Arm(Timer, Duration),
    /// Stop a timer.
    Disarm(Timer),
    /// Client: send the request again.
    Retransmit,
    /// Client: send the ACK for the non-2xx final response being handled.
    SendAck,
    /// Client (INVITE): start the CANCEL transaction the TU asked for.
    SendCancel,
    /// Client: pass the response being handled to the TU.
    Deliver,
    /// Server (INVITE): send 100 Trying (RFC 3261 §17.2.1).
    SendTrying,
    /// Server: send the TU's response and keep it as the last response.
    Send,
    /// Server: send the last response again.
    Resend,
    /// Server (INVITE, RFC 6026 Accepted): pass the ACK to the TU.
    DeliverAck,
    /// Client: Timer B or F fired. Server: Timer H fired (no ACK).
    Timeout,
    /// Client: the transport failed.
    TransportError,
    /// Remove the transaction.
    Terminate,
}

/// Most transitions produce at most five actions.
pub(crate) type Actions = SmallVec<[Action; 6]>;

/// The state of a transaction, for observation (metrics, tests, logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TxState {
    /// INVITE client: request sent, no response yet.
    Calling,
    /// Non-INVITE client or server: request sent or received, no response yet.
    Trying,
    /// A provisional response was received (client) or sent (server).
    Proceeding,
    /// A final response (non-2xx for INVITE) was received or sent; absorbing
    /// retransmissions.
    Completed,
    /// INVITE server: the ACK for the non-2xx final arrived.
    Confirmed,
    /// INVITE (RFC 6026): a 2xx was received (client) or sent (server).
    Accepted,
    /// Done; about to be removed.
    Terminated,
}
