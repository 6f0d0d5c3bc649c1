//! The one counter table: what the SIP loop publishes every 200 ms
//! ([`Snapshot`]), and [`FIGURES`] / [`REGISTRAR`], which name every
//! figure once for the `counters` log line, `/metrics` and the status page.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use b2bua::Output;

use super::certs::CertRow;
use super::sip_counts::SipCounts;

/// Everything the operations endpoint shows, as of `at`.
#[derive(Debug, Clone)]
pub(crate) struct Snapshot {
    /// When the SIP loop made it (a stale one means the loop is stuck).
    pub(crate) at: Instant,
    pub(crate) unix_ms: u64,
    pub(crate) started_unix_ms: u64,
    /// The listeners are bound and the loop runs.
    pub(crate) listening: bool,
    /// SIGTERM received: new calls get 503.
    pub(crate) draining: bool,
    pub(crate) daemon: crate::daemon::Counters,
    pub(crate) b2b: b2bua::Counters,
    pub(crate) transport: transport::Stats,
    pub(crate) relay: relay::RelayStats,
    /// Per-source budgets and bans.
    pub(crate) protect: protect::Counters,
    pub(crate) shield: crate::shield::Counters,
    /// Each relay worker's sessions and packets.
    pub(crate) relay_workers: Vec<relay::WorkerLoad>,
    /// SIP messages by direction and method or status code.
    pub(crate) sip: SipCounts,
    /// The certificates the SBC presents, by TLS profile.
    pub(crate) certs: Vec<CertRow>,
    /// Each trunk and the TLS profile it presents as client (`tls`), in
    /// configured order.
    pub(crate) trunk_tls: Vec<(String, Option<String>)>,
    /// With `[phones]` only.
    pub(crate) registrar: Option<registrar::Counters>,
    pub(crate) bindings: usize,
    pub(crate) store_dropped: u64,
    pub(crate) active_calls: usize,
    pub(crate) pending_invites: usize,
    pub(crate) transactions: usize,
    /// Every trunk peer, in configured order.
    pub(crate) peers: Vec<PeerRow>,
    /// What the CDRs and health changes added up to.
    pub(crate) tally: Tally,
    /// The newest calls in progress ([`CALLS_SHOWN`] at most), newest first.
    pub(crate) calls: Vec<b2bua::CallView>,
}

/// Calls in progress the snapshot copies for the status page.
pub(crate) const CALLS_SHOWN: usize = 200;

/// One trunk peer's health.
#[derive(Debug, Clone)]
pub(crate) struct PeerRow {
    pub(crate) trunk: String,
    /// `carrier`, `teams`, `acs`, `phones`.
    pub(crate) kind: String,
    pub(crate) host: String,
    pub(crate) transport: String,
    /// `up`, `down` or `unknown`.
    pub(crate) state: &'static str,
    /// Why it is down (the last failure).
    pub(crate) reason: String,
    /// When it last changed (the process start if it never did).
    pub(crate) since_unix_ms: u64,
    /// OPTIONS are sent to it.
    pub(crate) options: bool,
    /// The round trip of the last OPTIONS it answered.
    pub(crate) rtt: Option<Duration>,
}

/// Calls that ended, by from trunk, to trunk and outcome.
pub(crate) type CallKey = (String, String, &'static str);

/// Attempts, by trunk, peer and outcome (a status code, `timeout`,
/// `transport`, `answered`, `cancelled`).
pub(crate) type AttemptKey = (String, String, String);

/// Health changes and calls that took a path other than their first: the
/// status page's failover log.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct LogEntry {
    pub(crate) unix_ms: u64,
    pub(crate) what: String,
}

/// Kept at most in the failover log.
pub(crate) const LOG_MAX: usize = 100;

/// What the B2BUA's outputs add up to (the shell feeds it every output).
#[derive(Debug, Clone, Default)]
pub(crate) struct Tally {
    pub(crate) cdrs: u64,
    pub(crate) calls: BTreeMap<CallKey, u64>,
    /// Seconds of answered calls, by to trunk and peer.
    pub(crate) answered_ms: BTreeMap<(String, String), u64>,
    pub(crate) attempts: BTreeMap<AttemptKey, u64>,
    /// Last change of each (trunk, host), Unix ms.
    pub(crate) changed: BTreeMap<(String, String), u64>,
    pub(crate) log: VecDeque<LogEntry>,
}

/// The outcome of a call from its final status, as Microsoft's network
/// effectiveness ratio counts them.
pub(crate) fn outcome(status: u16, reason: &str) -> &'static str {
    match status {
        200..=299 => "answered",
        486 | 600 => "busy",
        487 => "cancelled",
        _ if reason == "cancelled" => "cancelled",
        _ => "failed",
    }
}

impl Tally {
    /// Adds what `o` says; `now_ms` is the wall clock.
    pub(crate) fn note(&mut self, o: &Output, now_ms: u64) {
        match o {
            Output::Cdr(c) => {
                self.cdrs += 1;
                let to = c.to_trunk.clone().unwrap_or_default();
                let out = outcome(c.status, &c.reason);
                *self
                    .calls
                    .entry((c.from_trunk.clone(), to.clone(), out))
                    .or_default() += 1;
                for a in &c.attempts {
                    *self
                        .attempts
                        .entry((a.trunk.clone(), a.peer.clone(), a.outcome.clone()))
                        .or_default() += 1;
                }
                if let Some(ans) = c.answer_ms {
                    let peer = c
                        .attempts
                        .iter()
                        .rfind(|a| a.outcome == "answered")
                        .map(|a| a.peer.clone())
                        .unwrap_or_default();
                    *self.answered_ms.entry((to, peer)).or_default() +=
                        c.end_ms.saturating_sub(ans);
                }
                if c.attempts.len() > 1 {
                    let path: Vec<String> = c
                        .attempts
                        .iter()
                        .map(|a| format!("{}/{} {}", a.trunk, a.peer, a.outcome))
                        .collect();
                    self.push(now_ms, format!("call {} took {}", c.call, path.join(" → ")));
                }
            }
            Output::Health {
                trunk,
                host,
                up,
                reason,
            } => {
                self.changed.insert((trunk.clone(), host.clone()), now_ms);
                let state = if *up { "up" } else { "down" };
                self.push(now_ms, format!("{trunk}/{host} {state}: {reason}"));
            }
            _ => {}
        }
    }

    fn push(&mut self, unix_ms: u64, what: String) {
        if self.log.len() == LOG_MAX {
            self.log.pop_front();
        }
        self.log.push_back(LogEntry { unix_ms, what });
    }
}

/// A Prometheus metric type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Counter,
    Gauge,
}

/// One figure: its key in the log line, its metric (with at most one
/// fixed label), its type and help, and how to read it.
#[derive(Debug)]
pub(crate) struct Figure {
    pub(crate) key: &'static str,
    pub(crate) metric: &'static str,
    pub(crate) label: Option<(&'static str, &'static str)>,
    pub(crate) kind: Kind,
    pub(crate) help: &'static str,
    pub(crate) get: fn(&Snapshot) -> u64,
}

macro_rules! fig {
    ($key:literal, $metric:literal, $kind:ident, $help:literal, $get:expr) => {
        Figure {
            key: $key,
            metric: $metric,
            label: None,
            kind: Kind::$kind,
            help: $help,
            get: $get,
        }
    };
    ($key:literal, $metric:literal { $l:literal = $v:literal }, $kind:ident, $help:literal, $get:expr) => {
        Figure {
            key: $key,
            metric: $metric,
            label: Some(($l, $v)),
            kind: Kind::$kind,
            help: $help,
            get: $get,
        }
    };
}

fn n(x: usize) -> u64 {
    u64::try_from(x).unwrap_or(u64::MAX)
}

/// The daemon's figures, in the order of the `counters` log line. Entries
/// of one metric are adjacent (one HELP/TYPE each).
pub(crate) const FIGURES: &[Figure] = &[
    fig!(
        "received",
        "sbc_sip_messages_received_total",
        Counter,
        "SIP messages received (every transport).",
        |s| s.daemon.received
    ),
    fig!(
        "accepted",
        "sbc_sip_messages_accepted_total",
        Counter,
        "SIP messages that passed the parser's verdict.",
        |s| s.daemon.accepted
    ),
    fig!(
        "sent",
        "sbc_sip_messages_sent_total",
        Counter,
        "SIP messages sent.",
        |s| s.transport.sent
    ),
    fig!("replied_bad", "sbc_bad_input_total" { "action" = "replied" }, Counter, "Malformed messages, answered (4xx/5xx) or dropped.", |s| s.daemon.replied_bad),
    fig!("dropped_bad", "sbc_bad_input_total" { "action" = "dropped" }, Counter, "Malformed messages, answered (4xx/5xx) or dropped.", |s| s.daemon.dropped_bad),
    fig!(
        "send_errors",
        "sbc_sip_send_errors_total",
        Counter,
        "Sends that failed.",
        |s| s.daemon.send_errors
    ),
    fig!(
        "connect_errors",
        "sbc_sip_connect_errors_total",
        Counter,
        "Outbound TCP/TLS connections that could not be opened.",
        |s| s.daemon.connect_errors
    ),
    fig!(
        "unreachable",
        "sbc_sip_unreachable_total",
        Counter,
        "UDP destinations reported unreachable (ICMP).",
        |s| s.daemon.unreachable
    ),
    fig!(
        "lost",
        "sbc_sip_connections_lost_total",
        Counter,
        "TCP/TLS connections closed or reset by the peer.",
        |s| s.daemon.lost
    ),
    fig!("reloads", "sbc_config_reloads_total" { "result" = "applied" }, Counter, "Configuration reloads (sbc reload, SIGHUP), applied or refused (the running configuration stayed).", |s| s.daemon.reloads),
    fig!("reloads_refused", "sbc_config_reloads_total" { "result" = "refused" }, Counter, "Configuration reloads (sbc reload, SIGHUP), applied or refused (the running configuration stayed).", |s| s.daemon.reloads_refused),
    fig!("flood_passed", "sbc_protect_requests_total" { "verdict" = "passed" }, Counter, "Requests screened by the per-source budgets: within budget, over budget (dropped, or 503 for a trusted peer), dropped from a banned source, from a scanner (dropped and banned).", |s| s.protect.passed),
    fig!("flood_excess", "sbc_protect_requests_total" { "verdict" = "excess" }, Counter, "Requests screened by the per-source budgets: within budget, over budget (dropped, or 503 for a trusted peer), dropped from a banned source, from a scanner (dropped and banned).", |s| s.protect.excess),
    fig!("flood_banned", "sbc_protect_requests_total" { "verdict" = "banned" }, Counter, "Requests screened by the per-source budgets: within budget, over budget (dropped, or 503 for a trusted peer), dropped from a banned source, from a scanner (dropped and banned).", |s| s.protect.banned_drops),
    fig!("scanners", "sbc_protect_requests_total" { "verdict" = "scanner" }, Counter, "Requests screened by the per-source budgets: within budget, over budget (dropped, or 503 for a trusted peer), dropped from a banned source, from a scanner (dropped and banned).", |s| s.protect.scanners),
    fig!("bans", "sbc_protect_bans_total", Counter, "Sources banned (repeated excess, scanner signature).", |s| s.protect.bans),
    fig!("banned_now", "sbc_protect_banned_sources", Gauge, "Sources banned now.", |s| s.protect.banned_now),
    fig!("sources", "sbc_protect_sources", Gauge, "Sources with a budget tracked now (bounded by [protect] max_sources).", |s| s.protect.sources),
    fig!("over_cap", "sbc_protect_over_cap_total", Counter, "New calls refused at a global cap (calls, transactions): 503 to a trusted peer, dropped otherwise.", |s| s.shield.over_cap),
    fig!("conn_refused_per_source", "sbc_connections_refused_total" { "reason" = "per_source" }, Counter, "Inbound TCP/TLS connections refused at accept: a source at [limits] max_connections_per_source, max_tls_handshakes in progress.", |s| s.transport.refused_per_source),
    fig!("conn_refused_handshakes", "sbc_connections_refused_total" { "reason" = "handshakes" }, Counter, "Inbound TCP/TLS connections refused at accept: a source at [limits] max_connections_per_source, max_tls_handshakes in progress.", |s| s.transport.refused_handshakes),
    fig!(
        "calls",
        "sbc_calls_total",
        Counter,
        "Calls accepted for routing.",
        |s| s.b2b.calls
    ),
    fig!(
        "answered",
        "sbc_calls_answered_total",
        Counter,
        "Calls answered.",
        |s| s.b2b.answered
    ),
    fig!(
        "failed",
        "sbc_calls_failed_total",
        Counter,
        "Calls that failed (no answer, every destination failed).",
        |s| s.b2b.failed
    ),
    fig!(
        "failovers",
        "sbc_failovers_total",
        Counter,
        "Failovers to a next attempt (all trunks; per peer: sbc_call_attempts_total).",
        |s| s.b2b.failovers
    ),
    fig!(
        "active_calls",
        "sbc_calls_active",
        Gauge,
        "Calls not yet ended.",
        |s| n(s.active_calls)
    ),
    fig!(
        "pending_invites",
        "sbc_invites_pending",
        Gauge,
        "Inbound INVITEs not answered yet.",
        |s| n(s.pending_invites)
    ),
    fig!("unclassified", "sbc_requests_refused_total" { "reason" = "unclassified" }, Counter, "Requests refused: source of no trunk (403), no route (404), draining (503).", |s| s.b2b.unclassified),
    fig!("no_route", "sbc_requests_refused_total" { "reason" = "no_route" }, Counter, "Requests refused: source of no trunk (403), no route (404), draining (503).", |s| s.b2b.no_route),
    fig!("refused_draining", "sbc_requests_refused_total" { "reason" = "draining" }, Counter, "Requests refused: source of no trunk (403), no route (404), draining (503).", |s| s.b2b.refused_draining),
    fig!(
        "options_answered",
        "sbc_options_answered_total",
        Counter,
        "OPTIONS answered.",
        |s| s.b2b.options_answered
    ),
    fig!(
        "pings",
        "sbc_options_sent_total",
        Counter,
        "OPTIONS pings sent to trunk peers.",
        |s| s.b2b.pings
    ),
    fig!(
        "transfers",
        "sbc_transfers_total",
        Counter,
        "Transfers (REFER) completed.",
        |s| s.b2b.transfers
    ),
    fig!(
        "late_answers",
        "sbc_late_answers_total",
        Counter,
        "2xx of abandoned attempts, ACKed and hung up.",
        |s| s.b2b.late_answers
    ),
    fig!(
        "forwarded",
        "sbc_calls_forwarded_total",
        Counter,
        "Calls sent to their route's forward-on-failure destination.",
        |s| s.b2b.forwarded
    ),
    fig!(
        "bad_answers",
        "sbc_bad_answers_total",
        Counter,
        "Answers no dialog could be made of.",
        |s| s.b2b.bad_answers
    ),
    fig!(
        "emergency_calls",
        "sbc_emergency_calls_total",
        Counter,
        "Emergency calls accepted (sos URN or emergency number; never refused for load).",
        |s| s.b2b.emergency_calls
    ),
    fig!(
        "refused_cps",
        "sbc_calls_refused_cps_total",
        Counter,
        "Calls refused (503, Retry-After: 1): their inbound trunk was over its max_cps.",
        |s| s.b2b.refused_cps
    ),
    fig!(
        "bad_bodies",
        "sbc_bad_bodies_total",
        Counter,
        "INVITEs refused (400) for a multipart body that cannot be read.",
        |s| s.b2b.bad_bodies
    ),
    fig!(
        "bad_extensions",
        "sbc_bad_extensions_total",
        Counter,
        "INVITEs refused with 420: Require: 100rel on a trunk with prack off.",
        |s| s.b2b.bad_extensions
    ),
    fig!(
        "reliable_18x",
        "sbc_reliable_provisionals_total",
        Counter,
        "18x sent reliably (RFC 3262), retransmissions not counted.",
        |s| s.b2b.reliable_18x
    ),
    fig!(
        "pracks_sent",
        "sbc_pracks_sent_total",
        Counter,
        "PRACKs sent for reliable 18x of callees.",
        |s| s.b2b.pracks_sent
    ),
    fig!(
        "prack_unmatched",
        "sbc_prack_unmatched_total",
        Counter,
        "PRACKs answered 481: no unacknowledged 18x with that RAck.",
        |s| s.b2b.prack_unmatched
    ),
    fig!(
        "prack_timeouts",
        "sbc_prack_timeouts_total",
        Counter,
        "Reliable 18x never PRACKed within 64*T1.",
        |s| s.b2b.prack_timeouts
    ),
    fig!(
        "glare",
        "sbc_offer_glare_total",
        Counter,
        "re-INVITEs and UPDATEs answered 491: an offer already in flight.",
        |s| s.b2b.glare
    ),
    fig!(
        "bad_offers",
        "sbc_bad_offers_total",
        Counter,
        "UPDATE offers refused with 488 (SDP that cannot be read).",
        |s| s.b2b.bad_offers
    ),
    fig!(
        "timer_c",
        "sbc_timer_c_total",
        Counter,
        "Attempts given up by Timer C (a provisional response, then nothing).",
        |s| s.b2b.timer_c
    ),
    fig!(
        "refreshes_sent",
        "sbc_session_refreshes_sent_total",
        Counter,
        "Session refreshes sent by the SBC (RFC 4028).",
        |s| s.b2b.refreshes_sent
    ),
    fig!(
        "refresh_failures",
        "sbc_session_refresh_failures_total",
        Counter,
        "Calls ended because a session refresh of the SBC failed (408, 481, no answer).",
        |s| s.b2b.refresh_failures
    ),
    fig!(
        "interval_too_small",
        "sbc_session_interval_too_small_total",
        Counter,
        "INVITEs answered 422: session interval below the trunk's Min-SE.",
        |s| s.b2b.interval_too_small
    ),
    fig!(
        "refused_t38",
        "sbc_t38_refused_total",
        Counter,
        "Re-INVITEs refused (488): T.38 from or toward a trunk that takes none.",
        |s| s.b2b.refused_t38
    ),
    fig!(
        "dtmf_info",
        "sbc_dtmf_info_total",
        Counter,
        "DTMF keys sent as SIP INFO to dtmf = \"info\" trunks.",
        |s| s.b2b.dtmf_info
    ),
    fig!(
        "transactions",
        "sbc_transactions",
        Gauge,
        "Live SIP transactions.",
        |s| n(s.transactions)
    ),
    fig!(
        "tls_failures",
        "sbc_tls_handshake_failures_total",
        Counter,
        "TLS handshakes that failed.",
        |s| s.transport.tls_failures
    ),
    fig!(
        "framing_errors",
        "sbc_stream_framing_errors_total",
        Counter,
        "TCP/TLS streams closed for a framing error.",
        |s| s.transport.framing_errors
    ),
    fig!(
        "open_connections",
        "sbc_connections_open",
        Gauge,
        "TCP/TLS connections open.",
        |s| s.transport.open_connections
    ),
    fig!(
        "media_sessions",
        "sbc_media_sessions",
        Gauge,
        "Media relay sessions.",
        |s| n(s.relay.sessions)
    ),
    fig!(
        "media_backlog",
        "sbc_media_backlog",
        Gauge,
        "Media session set-ups waiting for the relay's workers.",
        |s| n(s.relay.backlog)
    ),
    fig!("media_refused_backlog", "sbc_media_refused_total" { "reason" = "backlog" }, Counter, "Media sessions refused (calls answered 503).", |s| s.relay.refused_backlog),
    fig!("media_refused_no_ports", "sbc_media_refused_total" { "reason" = "no_ports" }, Counter, "Media sessions refused (calls answered 503).", |s| s.relay.refused_no_ports),
    fig!(
        "media_packets",
        "sbc_media_packets_total",
        Counter,
        "Media packets (RTP and RTCP) relayed.",
        |s| s.relay.packets
    ),
    fig!(
        "media_bytes",
        "sbc_media_bytes_total",
        Counter,
        "Octets of the media packets relayed, as sent.",
        |s| s.relay.bytes
    ),
    fig!(
        "srtp_auth_failures",
        "sbc_srtp_auth_failures_total",
        Counter,
        "SRTP/SRTCP packets dropped: their authentication tag did not verify.",
        |s| s.relay.auth_failures
    ),
    fig!(
        "cdrs",
        "sbc_cdrs_total",
        Counter,
        "Call detail records written.",
        |s| s.tally.cdrs
    ),
];

fn reg(s: &Snapshot) -> registrar::Counters {
    s.registrar.unwrap_or_default()
}

/// The registrar's figures (with `[phones]` only): the `registrar
/// counters` log line.
pub(crate) const REGISTRAR: &[Figure] = &[
    fig!(
        "bindings",
        "sbc_registrations",
        Gauge,
        "Registered contacts (bindings).",
        |s| n(s.bindings)
    ),
    fig!("registered", "sbc_registrar_events_total" { "event" = "registered" }, Counter, "Registrar events.", |s| reg(s).registered),
    fig!("refreshed", "sbc_registrar_events_total" { "event" = "refreshed" }, Counter, "Registrar events.", |s| reg(s).refreshed),
    fig!("removed", "sbc_registrar_events_total" { "event" = "removed" }, Counter, "Registrar events.", |s| reg(s).removed),
    fig!("expired", "sbc_registrar_events_total" { "event" = "expired" }, Counter, "Registrar events.", |s| reg(s).expired),
    fig!("challenged", "sbc_registrar_events_total" { "event" = "challenged" }, Counter, "Registrar events.", |s| reg(s).challenged),
    fig!("auth_failed", "sbc_registrar_events_total" { "event" = "auth_failed" }, Counter, "Registrar events.", |s| reg(s).auth_failed),
    fig!("stale", "sbc_registrar_events_total" { "event" = "stale" }, Counter, "Registrar events.", |s| reg(s).stale),
    fig!("replay", "sbc_registrar_events_total" { "event" = "replay" }, Counter, "Registrar events.", |s| reg(s).replay),
    fig!("bad_request", "sbc_registrar_events_total" { "event" = "bad_request" }, Counter, "Registrar events.", |s| reg(s).bad_request),
    fig!("blocked", "sbc_registrar_events_total" { "event" = "blocked" }, Counter, "Registrar events.", |s| reg(s).blocked),
    fig!("sources_blocked", "sbc_registrar_events_total" { "event" = "source_blocked" }, Counter, "Registrar events.", |s| reg(s).sources_blocked),
    fig!("learned", "sbc_registrar_events_total" { "event" = "learned" }, Counter, "Registrar events.", |s| reg(s).learned),
    fig!(
        "stun",
        "sbc_stun_requests_total",
        Counter,
        "STUN Binding requests answered on UDP listeners.",
        |s| s.transport.stun
    ),
    fig!(
        "store_dropped",
        "sbc_registration_store_dropped_total",
        Counter,
        "Registration changes the store could not keep up with.",
        |s| s.store_dropped
    ),
];

/// `key=value …` of `figures`, for a log line.
pub(crate) fn log_line(s: &Snapshot, figures: &[Figure]) -> String {
    let mut out = String::new();
    for f in figures {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(f.key);
        out.push('=');
        out.push_str(&(f.get)(s).to_string());
    }
    out
}
