//! `sbc run`: the runtime shell. It owns the clock, the sockets and the
//! signals; the protocol work is done by the sans-IO cores (`sip` verdicts,
//! the `transaction` endpoint) that it drives from one task.
//!
//! One loop: receive a message → verdict (accept / reply / drop) → the
//! transaction endpoint → events → responses; transmissions go out through
//! the transports; the endpoint's next timeout is the loop's sleep.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sip::{HeaderName, Message, Method, Verdict};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;
use transaction::{Endpoint, Event, Input};
use transport::{Inbound, ListenerSpec, TlsContext, Transport, Transports};

use crate::config::Loaded;

/// Methods this daemon answers with something other than 501 (ACK and
/// CANCEL are handled by the transaction layer).
const ALLOW: &str = "OPTIONS, ACK, CANCEL";

/// Counters of what the daemon did with what it received.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Counters {
    pub(crate) received: u64,
    pub(crate) accepted: u64,
    pub(crate) replied_bad: u64,
    pub(crate) dropped_bad: u64,
    pub(crate) requests: u64,
    pub(crate) options_ok: u64,
    pub(crate) not_implemented: u64,
    pub(crate) refused_draining: u64,
    pub(crate) stray: u64,
    pub(crate) send_errors: u64,
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

struct Core {
    ep: Endpoint,
    transports: Transports,
    policy: sip::Policy,
    agent: String,
    tags: RandomState,
    counters: Counters,
    log: RateLimit,
    draining: bool,
    /// Contact values for UDP, TCP and TLS, and the Supported value.
    contacts: [String; 3],
    supported: String,
    /// INVITE server transactions not yet terminated: what a drain waits for
    /// (non-INVITE transactions are answered at once and only linger to
    /// absorb retransmissions).
    invites: std::collections::HashSet<transaction::ServerKey>,
}

impl Core {
    fn tag(&self, parts: &[&[u8]]) -> String {
        format!("{:016x}", self.tags.hash_one(parts))
    }

    fn send(&mut self, to: transport::Peer, bytes: Bytes) {
        if let Err(e) = self.transports.send(&to, bytes) {
            self.counters.send_errors += 1;
            tracing::debug!(peer = %to.addr, %e, "send failed");
            if to.transport.is_reliable() {
                let now = Instant::now();
                self.ep.handle(now, Input::TransportError { to });
            }
        }
    }

    fn flush(&mut self) {
        while let Some(t) = self.ep.poll_transmit() {
            self.send(t.to, t.bytes);
        }
        while let Some(ev) = self.ep.poll_event() {
            self.event(ev);
            while let Some(t) = self.ep.poll_transmit() {
                self.send(t.to, t.bytes);
            }
        }
    }

    fn inbound(&mut self, inb: Inbound, now: Instant) {
        self.counters.received += 1;
        let raw = inb.bytes.clone();
        match sip::inspect(inb.bytes, &self.policy) {
            Verdict::Accept(mut msg) => {
                self.counters.accepted += 1;
                if msg.is_request() {
                    received_and_rport(&mut msg, inb.peer.addr);
                }
                self.ep.handle(
                    now,
                    Input::Receive {
                        msg,
                        from: inb.peer,
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

    /// Contact for a response to a request that came over `via_transport`:
    /// the configured FQDN (never an IP) and the port of our listener
    /// (precomputed: it is the same for every response).
    fn contact(&self, via_transport: &str) -> &str {
        if via_transport.eq_ignore_ascii_case("TLS") {
            &self.contacts[2]
        } else if via_transport.eq_ignore_ascii_case("TCP") {
            &self.contacts[1]
        } else {
            &self.contacts[0]
        }
    }

    fn event(&mut self, ev: Event) {
        let now = Instant::now();
        match ev {
            Event::Request { key, msg, .. } => {
                self.counters.requests += 1;
                let method = msg.method().unwrap_or(Method::Other);
                if method == Method::Invite {
                    self.invites.insert(key);
                }
                let call_id = msg.call_id().unwrap_or("");
                let from_tag = msg.from().ok().and_then(|f| f.tag()).unwrap_or(&[]);
                let branch = msg.top_via().ok().and_then(|v| v.branch()).unwrap_or(&[]);
                let tag = self.tag(&[call_id.as_bytes(), from_tag, branch]);
                let (code, reason) = if self.draining {
                    self.counters.refused_draining += 1;
                    (503, "Service Unavailable")
                } else if method == Method::Options {
                    self.counters.options_ok += 1;
                    (200, "OK")
                } else {
                    self.counters.not_implemented += 1;
                    (501, "Not Implemented")
                };
                let Ok(mut r) = transaction::response_to(&msg, code, reason, Some(&tag)) else {
                    tracing::warn!("cannot build a response");
                    return;
                };
                let _ = r.push_header("Server", self.agent.as_bytes());
                match code {
                    200 => {
                        let _ = r.push_header("Allow", ALLOW.as_bytes());
                        let _ = r.push_header("Accept", b"application/sdp");
                        let _ = r.push_header("Supported", self.supported.as_bytes());
                        let t = msg
                            .top_via()
                            .map(|v| v.transport.to_owned())
                            .unwrap_or_default();
                        let _ = r.push_header("Contact", self.contact(&t).as_bytes());
                    }
                    503 => {
                        let _ = r.push_header("Retry-After", b"30");
                    }
                    _ => {
                        let _ = r.push_header("Allow", ALLOW.as_bytes());
                    }
                }
                // Content-Length last, as response_to put it.
                r.remove_headers(HeaderName::ContentLength);
                let _ = r.push_header("Content-Length", b"0");
                if let Err(e) = self.ep.respond(now, key, r) {
                    tracing::warn!(%e, "respond failed");
                }
            }
            Event::Cancelled { invite, .. } => {
                // Nothing here answers INVITE with anything but 501 yet; an
                // INVITE still pending when its CANCEL arrives gets 487.
                tracing::debug!(?invite, "CANCEL matched a pending INVITE");
            }
            Event::StrayResponse { .. } => self.counters.stray += 1,
            Event::Terminated {
                key: transaction::TxKey::Server(k),
            } => {
                self.invites.remove(&k);
            }
            other => tracing::debug!(event = ?other, "transaction event"),
        }
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
    rt.block_on(serve(cfg))
}

async fn serve(cfg: Loaded) -> Result<(), String> {
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
    let c = &cfg.config;
    let timers = transaction::TimerConfig {
        t1: Duration::from_millis(*c.sip.t1_ms.get_ref()),
        t2: Duration::from_millis(*c.sip.t2_ms.get_ref()),
        t4: Duration::from_millis(*c.sip.t4_ms.get_ref()),
        ..transaction::TimerConfig::default()
    };
    let mut policy = sip::Policy::default();
    policy.limits.max_message_size = *c.sip.max_message_size.get_ref();
    policy.supported = c.sip.supported.clone();
    let now = Instant::now();
    let fqdn = c.sbc.fqdn.get_ref().clone();
    let contacts = [
        (Transport::Udp, "udp"),
        (Transport::Tcp, "tcp"),
        (Transport::Tls, "tls"),
    ]
    .map(|(t, name)| {
        let port = listeners
            .iter()
            .find(|(lt, _)| *lt == t)
            .map_or(5060, |(_, a)| a.port());
        format!("<sip:{fqdn}:{port};transport={name}>")
    });
    let supported = policy.supported.join(", ");
    let mut core = Core {
        // Tags the endpoint writes itself (100 Trying, 481) must not repeat across restarts.
        ep: Endpoint::new(transaction::Config {
            timers,
            seed: RandomState::new().hash_one(std::process::id()),
        }),
        transports: transports.clone(),
        policy,
        agent: c.sbc.user_agent.clone(),
        contacts,
        supported,
        tags: RandomState::new(),
        counters: Counters::default(),
        log: RateLimit {
            per_second: c.log.bad_input_per_second,
            window: now,
            used: 0,
            suppressed: 0,
        },
        draining: false,
        invites: std::collections::HashSet::new(),
    };
    let max_drain = Duration::from_secs(c.drain.max_wait_s);
    let tls_list: Vec<Arc<TlsContext>> = tls.values().cloned().collect();

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
    let mut last_logged = Counters::default();
    loop {
        let wake = core.ep.poll_timeout();
        // Wake for the endpoint's next timer, or the drain deadline if sooner.
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
            () = sleep => {
                core.ep.handle(Instant::now(), Input::Timeout);
                core.flush();
            }
            _ = term.recv() => drain_deadline = Some(start_drain(&mut core, max_drain)),
            _ = int.recv() => drain_deadline = Some(start_drain(&mut core, max_drain)),
            _ = hup.recv() => reload(&tls_list, &transports, false),
            _ = usr2.recv() => reload(&tls_list, &transports, true),
            _ = stats_tick.tick() => {
                if core.counters != last_logged {
                    log_stats(&core, &transports);
                    last_logged = core.counters;
                }
            }
        }
        if let Some(deadline) = drain_deadline {
            if core.invites.is_empty() || Instant::now() >= deadline {
                log_stats(&core, &transports);
                tracing::info!(
                    pending_invites = core.invites.len(),
                    transactions = core.ep.len(),
                    "drained; exiting"
                );
                return Ok(());
            }
        }
    }
}

fn start_drain(core: &mut Core, max: Duration) -> Instant {
    if !core.draining {
        tracing::info!(
            "draining: no new connections, new requests get 503; waiting for transactions"
        );
        core.draining = true;
        core.transports.stop_accepting();
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

fn log_stats(core: &Core, t: &Transports) {
    let c = core.counters;
    let s = t.stats();
    tracing::info!(
        received = c.received,
        accepted = c.accepted,
        replied_bad = c.replied_bad,
        dropped_bad = c.dropped_bad,
        options_ok = c.options_ok,
        not_implemented = c.not_implemented,
        refused_draining = c.refused_draining,
        stray_responses = c.stray,
        send_errors = c.send_errors,
        transactions = core.ep.len(),
        tls_failures = s.tls_failures,
        framing_errors = s.framing_errors,
        open_connections = s.open_connections,
        "counters"
    );
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
