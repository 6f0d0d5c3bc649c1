//! Call detail records: one JSON line per call.

use serde::Serialize;

/// One routing attempt of a call.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AttemptRecord {
    /// Destination trunk.
    pub trunk: String,
    /// Peer host (FQDN) of that trunk.
    pub peer: String,
    /// What ended the attempt: a status code, `timeout`, `transport`,
    /// `answered`, `cancelled`.
    pub outcome: String,
    /// When the attempt's request was sent, ms after the call started (the
    /// time the plan spent before it: dead, silent or refusing peers).
    pub at_ms: u64,
    /// Display label the attempt carried (e.g. `Fail-over`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// The record of one call. Times are milliseconds since the call started;
/// the shell adds the wall-clock start time when it writes the line.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Cdr {
    /// Call number within this process.
    pub call: u64,
    /// Call-ID of the inbound leg.
    pub a_call_id: String,
    /// Call-ID of the outbound leg that answered (or the last tried).
    pub b_call_id: Option<String>,
    /// Inbound trunk.
    pub from_trunk: String,
    /// Trunk that answered (or the last tried).
    pub to_trunk: Option<String>,
    /// Calling number as normalised.
    pub calling: String,
    /// Called number as normalised.
    pub called: String,
    /// Route used.
    pub route: Option<String>,
    /// Every attempt in order.
    pub attempts: Vec<AttemptRecord>,
    /// First provisional (18x) relayed, ms after start.
    pub ringing_ms: Option<u64>,
    /// Answer, ms after start.
    pub answer_ms: Option<u64>,
    /// End, ms after start.
    pub end_ms: u64,
    /// Final status given to the caller (200 for an answered call).
    pub status: u16,
    /// Why the call ended (`bye from caller`, `cancelled`, a failure reason…).
    pub reason: String,
    /// Who ended it: `caller`, `callee`, `sbc`.
    pub ended_by: String,
    /// Transfers performed (REFER / Replaces).
    pub transfers: u32,
    /// An emergency call (a `sos` URN or an emergency number).
    pub emergency: bool,
    /// Packets received from the caller's side and from the callee's side
    /// (filled in by the shell from the relay's final statistics).
    pub packets: [u64; 2],
    /// The relay session whose statistics `packets` come from (not written).
    #[serde(skip)]
    pub media_session: Option<u64>,
}
