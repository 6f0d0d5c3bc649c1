//! Fuzz target: the B2BUA's call core as a state machine. An `arbitrary`
//! sequence of operations runs against one `b2bua::B2bua` with a fixed
//! configuration — a carrier (UDP), Teams (sip/sip2/sip3 over TLS) and a
//! gateway (UDP); carrier → Teams with failover to the gateway and a
//! forward to an external number through the carrier after 30 s; Teams and
//! gateway → carrier — and the recording relay of the `sim` crate
//! (`FakeMedia`). Its neighbours are played by the harness: nothing answers
//! unless an operation says so (OPTIONS pings excepted, answered as each
//! peer's ping mode says).
//!
//! Operations: a message from a peer — a new INVITE (SDP templates or fuzzed
//! bytes, optional session timer), a response (100…603, with a fuzzed or
//! template body, Retry-After, Record-Route) to a request the B2BUA sent
//! (the last one, or one further back), an ACK for a final response the
//! B2BUA sent, a CANCEL of an INVITE we sent, an in-dialog request (BYE,
//! re-INVITE, REFER, INFO, UPDATE, OPTIONS, NOTIFY, PRACK, MESSAGE) in a
//! dialog the B2BUA made with us, an out-of-dialog OPTIONS/REGISTER/BYE/…,
//! a retransmission or a byte-mutated copy of something we sent, raw bytes —
//! every one through `sip::inspect` first, as the daemon does, with one
//! header optionally replaced by a fuzzed value; time passing (timers fired
//! in order); a transport error or a lost connection for a peer; a relay
//! report of media inactivity; a change of a peer's ping answers; a drain.
//!
//! Invariants:
//! * nothing panics, and every message the B2BUA sends parses;
//! * after `handle(now, Timeout)`, `poll_timeout()` is never before `now`,
//!   and if it is `now` a few more `Timeout`s at that instant move it on
//!   (no busy loop);
//! * the relay is never told to delete a session twice or one it never made;
//! * at the end (drain — the OPTIONS pings stop —, a CANCEL for every
//!   INVITE we sent — callers give up (Timer C, 180 s, would also end them) —, then
//!   one hour of `Timeout`s, nobody answering), the only calls left are answered ones
//!   (no session timer: they wait for a BYE or the relay); after the relay
//!   reports each remaining session inactive and 5 more minutes:
//!   `active_calls() == 0`, `pending_invites() == 0`, `transactions() == 0`,
//!   every table of `occupancy()` empty, every session the relay made
//!   deleted, and one CDR written per call accepted.
#![no_main]

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use b2bua::{B2bua, Config, Input, Occupancy, Output};
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use routing::regex::Regex;
use routing::{Destination, Forward, Normaliser, NumberRule, Route, Table, Target};
use sim::world::{rtp, srtp, FakeMedia, MediaLog, KEY1, KEY2};
use sip::{HeaderName, Message, Policy, Verdict};
use transaction::{Peer, TimerConfig, Transport};
use trunk::{PeerSpec, TrunkKind, TrunkSpec};

const SBC_UDP: &str = "192.0.2.1:5060";
const SBC_TLS: &str = "192.0.2.1:5061";
/// The neighbours: carrier, the three Teams proxies, gateway, a stranger.
const PEERS: [(&str, Transport); 6] = [
    ("192.0.2.10:5060", Transport::Udp),
    ("52.112.1.1:5061", Transport::Tls),
    ("52.112.1.2:5061", Transport::Tls),
    ("52.112.1.3:5061", Transport::Tls),
    ("192.0.2.30:5060", Transport::Udp),
    ("198.51.100.66:5060", Transport::Udp),
];
const MS_NAME: &str = "sip.pstnhub.microsoft.com";
const STATUS: [u16; 18] = [
    100, 180, 181, 183, 200, 202, 302, 404, 408, 480, 481, 486, 487, 488, 500, 503, 504, 603,
];
const DIRS: [&str; 4] = ["sendrecv", "sendonly", "recvonly", "inactive"];
const HEADERS: [&str; 28] = [
    "Via",
    "From",
    "To",
    "Call-ID",
    "CSeq",
    "Contact",
    "Max-Forwards",
    "Content-Type",
    "Session-Expires",
    "Supported",
    "Require",
    "Record-Route",
    "Route",
    "Replaces",
    "Refer-To",
    "Referred-By",
    "Retry-After",
    "Diversion",
    "History-Info",
    "P-Asserted-Identity",
    "Privacy",
    "X-MS-SBC",
    "Reason",
    "Event",
    "Expires",
    "Authorization",
    "Min-SE",
    "Content-Length",
];

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("a literal address")
}

fn peer_spec(a: &str, transport: Transport) -> PeerSpec {
    let a = addr(a);
    PeerSpec {
        host: a.ip().to_string(),
        port: a.port(),
        transport,
        addr: Some(a),
    }
}

/// The trunks and routes, built once (the regex compiles once), cloned
/// into each execution's `Config`.
fn config(seed: u64) -> Config {
    static PARTS: OnceLock<(Vec<TrunkSpec>, Table)> = OnceLock::new();
    let (trunks, routes) = PARTS.get_or_init(|| {
        let mut carrier = TrunkSpec::new("carrier", TrunkKind::Carrier, "sbc.carrier.example");
        carrier.peers = vec![peer_spec(PEERS[0].0, Transport::Udp)];
        carrier.numbers_in = Normaliser {
            rules: vec![NumberRule {
                pattern: Regex::new(r"^0([1-9]\d+)$").expect("literal regex"),
                replace: "+49$1".into(),
                applies: routing::Applies::Both,
            }],
        };
        let mut teams = TrunkSpec::new("teams", TrunkKind::Teams, "sbc.contoso.com");
        for (p, (a, _)) in teams.peers.iter_mut().zip(&PEERS[1..4]) {
            p.addr = Some(addr(a));
        }
        let mut gateway = TrunkSpec::new("gateway", TrunkKind::Gateway, "sbc.contoso.local");
        gateway.peers = vec![peer_spec(PEERS[4].0, Transport::Udp)];
        let label = Some("Fail-over");
        let to_teams = Route {
            name: "to-teams".into(),
            from: vec!["carrier".into()],
            called: None,
            to: vec![
                Destination::trunk("teams", None),
                Destination::trunk("gateway", label),
            ],
            forward: Some(Forward {
                to: Destination {
                    trunk: "carrier".into(),
                    target: Target::Number("+4915112345".into()),
                    label: label.map(str::to_owned),
                },
                window: Duration::from_secs(30),
                ring_timeout: None,
            }),
        };
        let back = |from: &str| Route {
            name: format!("from-{from}"),
            from: vec![from.to_owned()],
            called: None,
            to: vec![Destination::trunk("carrier", None)],
            forward: None,
        };
        (
            vec![carrier, teams, gateway],
            Table {
                routes: vec![to_teams, back("teams"), back("gateway")],
            },
        )
    });
    Config {
        trunks: trunks.clone(),
        routes: routes.clone(),
        agent: "sbc-fuzz/1".into(),
        // Timers B, F, H and J at 8·T1 = 4 s instead of 32 s: the same
        // machines with a third of the UDP retransmissions (one execution
        // stays short enough for ten million of them).
        timers: TimerConfig {
            timeout_multiplier: 8,
            ..TimerConfig::default()
        },
        seed,
        session_expires: 1800,
        supported: "timer, replaces, 100rel".into(),
        phones: None,
        mask_numbers: true,
        protect: b2bua::Protect::default(),
    }
}

// ----- the input ------------------------------------------------------------------

#[derive(Arbitrary, Debug)]
enum Body {
    None,
    Rtp {
        port: u8,
        dir: u8,
    },
    Srtp {
        port: u8,
        dir: u8,
        key2: bool,
    },
    /// An SRTP offer whose only key is of an unsupported suite.
    BadCrypto,
    /// Video only.
    NoAudio,
    Bytes(Vec<u8>),
}

/// One header replaced (every line of that name removed, the new one put
/// after the start line).
#[derive(Arbitrary, Debug)]
struct Tweak {
    header: u8,
    value: String,
}

#[derive(Arbitrary, Debug)]
enum Op {
    Invite {
        from: u8,
        called: u8,
        body: Body,
        timer: bool,
        tweak: Option<Tweak>,
    },
    Respond {
        back: u8,
        status: u8,
        tag: u8,
        body: Body,
        route: bool,
        retry: Option<u8>,
        tweak: Option<Tweak>,
    },
    Ack {
        back: u8,
        body: Body,
    },
    Cancel {
        back: u8,
    },
    InDialog {
        dialog: u8,
        method: u8,
        body: Body,
        refer_to: u8,
        tweak: Option<Tweak>,
    },
    OutOfDialog {
        from: u8,
        method: u8,
        tweak: Option<Tweak>,
    },
    Retransmit {
        back: u8,
    },
    Mutate {
        back: u8,
        at: u16,
        bytes: Vec<u8>,
        insert: bool,
    },
    Raw {
        from: u8,
        bytes: Vec<u8>,
    },
    Advance {
        ms: u16,
        scale: u8,
    },
    TransportError {
        peer: u8,
        tls: bool,
    },
    ConnectionLost {
        peer: u8,
    },
    MediaInactive {
        which: u8,
    },
    PingMode {
        peer: u8,
        mode: u8,
    },
    Drain,
}

#[derive(Arbitrary, Debug)]
struct Case {
    seed: u8,
    ops: Vec<Op>,
}

/// Most operations per execution (keeps one execution short).
const MAX_OPS: usize = 12;

// ----- the harness ----------------------------------------------------------------

/// A dialog the B2BUA made with one of our peers.
#[derive(Debug, Clone)]
struct Dialog {
    peer: usize,
    call_id: String,
    /// Our From value in requests we send in it (with our tag).
    local: String,
    /// Theirs (with the B2BUA's tag).
    remote: String,
    target: String,
    cseq: u32,
}

struct H {
    b: B2bua,
    now: Instant,
    media: Arc<Mutex<MediaLog>>,
    /// What the B2BUA sent, oldest first (bounded).
    sent: Vec<(Peer, Message)>,
    /// What we delivered: (peer, bytes), bounded.
    ours: Vec<(usize, Bytes)>,
    /// Our INVITEs and re-INVITEs, in order (for CANCEL; the first 64).
    invites: Vec<(usize, Message)>,
    dialogs: Vec<Dialog>,
    /// Per peer: 0 answers pings 200, 1 ignores them, 2 answers 503.
    ping: [u8; PEERS.len()],
    n: u32,
    policy: Policy,
    deleted: BTreeSet<u64>,
    cdrs: u64,
}

fn lock(m: &Mutex<MediaLog>) -> MutexGuard<'_, MediaLog> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn hdr(m: &Message, name: &str) -> Option<String> {
    m.header_by_name(name)
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

fn tag_of(v: &str) -> Option<&str> {
    let t = v.split(";tag=").nth(1)?;
    Some(t.split([';', ' ', '>']).next().unwrap_or(t))
}

/// The URI in a Contact value (`<uri>` or the bare URI).
fn uri_in(v: &str) -> Option<String> {
    let v = v.trim();
    let u = match (v.find('<'), v.find('>')) {
        (Some(a), Some(b)) if a < b => &v[a + 1..b],
        _ => v.split(';').next().unwrap_or(v),
    };
    (!u.is_empty()).then(|| u.to_owned())
}

fn peer_index(a: SocketAddr) -> Option<usize> {
    PEERS.iter().position(|(p, _)| addr(p) == a)
}

fn transport_name(t: Transport) -> &'static str {
    match t {
        Transport::Udp => "UDP",
        Transport::Tcp => "TCP",
        _ => "TLS",
    }
}

impl Body {
    fn bytes(&self) -> Option<Vec<u8>> {
        let port = |p: &u8| 20_000 + u16::from(*p) * 2;
        Some(match self {
            Body::None => return None,
            Body::Rtp { port: p, dir } => {
                rtp("198.51.100.7", port(p), DIRS[usize::from(*dir) % 4]).into_bytes()
            }
            Body::Srtp { port: p, dir, key2 } => srtp(
                "52.113.1.1",
                port(p),
                if *key2 { KEY2 } else { KEY1 },
                DIRS[usize::from(*dir) % 4],
            )
            .into_bytes(),
            Body::BadCrypto => srtp("52.113.1.1", 40000, KEY1, "sendrecv")
                .replace("AES_CM_128_HMAC_SHA1_80", "F8_128_HMAC_SHA1_80")
                .into_bytes(),
            Body::NoAudio => {
                b"v=0\r\no=- 1 1 IN IP4 10.0.0.9\r\ns=-\r\nc=IN IP4 10.0.0.9\r\nt=0 0\r\n\
                m=video 4000 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
                    .to_vec()
            }
            Body::Bytes(b) => b.clone(),
        })
    }
}

/// A message from a start line, header lines and a body (Content-Type and
/// Content-Length added), with `tweak` applied.
fn build(start: &str, headers: &[String], body: Option<&[u8]>, tweak: Option<&Tweak>) -> Bytes {
    let mut lines: Vec<String> = headers.to_vec();
    if let Some(b) = body {
        lines.push("Content-Type: application/sdp".into());
        lines.push(format!("Content-Length: {}", b.len()));
    } else {
        lines.push("Content-Length: 0".into());
    }
    if let Some(t) = tweak {
        let name = HEADERS[usize::from(t.header) % HEADERS.len()];
        lines.retain(|l| {
            !l.split(':')
                .next()
                .is_some_and(|n| n.trim().eq_ignore_ascii_case(name))
        });
        lines.insert(0, format!("{name}: {}", t.value));
    }
    let mut s = Vec::with_capacity(512);
    s.extend_from_slice(start.as_bytes());
    s.extend_from_slice(b"\r\n");
    for l in &lines {
        s.extend_from_slice(l.as_bytes());
        s.extend_from_slice(b"\r\n");
    }
    s.extend_from_slice(b"\r\n");
    if let Some(b) = body {
        s.extend_from_slice(b);
    }
    Bytes::from(s)
}

/// A response to `req` as text lines (Via, From, To with `tag`, Call-ID,
/// CSeq copied).
fn response_lines(req: &Message, tag: Option<&str>) -> Vec<String> {
    let mut v: Vec<String> = req
        .headers()
        .filter(|h| {
            matches!(
                h.name,
                HeaderName::Via | HeaderName::From | HeaderName::CallId | HeaderName::CSeq
            )
        })
        .map(|h| {
            format!(
                "{}: {}",
                String::from_utf8_lossy(h.name_raw),
                String::from_utf8_lossy(h.value)
            )
        })
        .collect();
    if let Some(to) = hdr(req, "To") {
        match (tag, tag_of(&to)) {
            (Some(t), None) => v.push(format!("To: {to};tag={t}")),
            _ => v.push(format!("To: {to}")),
        }
    }
    v
}

impl H {
    fn new(seed: u64) -> H {
        let now = Instant::now();
        let media = Arc::new(Mutex::new(MediaLog::default()));
        let b = B2bua::new(config(seed), Box::new(FakeMedia(media.clone())), now);
        H {
            b,
            now,
            media,
            sent: Vec::new(),
            ours: Vec::new(),
            invites: Vec::new(),
            dialogs: Vec::new(),
            ping: [0; PEERS.len()],
            n: 0,
            policy: Policy::default(),
            deleted: BTreeSet::new(),
            cdrs: 0,
        }
    }

    fn next(&mut self) -> u32 {
        self.n += 1;
        self.n
    }

    /// Bytes from peer `p` through `sip::inspect`, as the daemon receives.
    fn deliver(&mut self, p: usize, bytes: Bytes, keep: bool) {
        let p = p % PEERS.len();
        if keep {
            if self.ours.len() >= 16 {
                self.ours.remove(0);
            }
            self.ours.push((p, bytes.clone()));
        }
        let (a, t) = PEERS[p];
        match sip::inspect(bytes.clone(), &self.policy) {
            Verdict::Accept(msg) => {
                let (local, tls) = match t {
                    Transport::Tls => (addr(SBC_TLS), Some(vec![MS_NAME.to_owned()])),
                    _ => (addr(SBC_UDP), None),
                };
                if msg.method_str() == Some("INVITE") && self.invites.len() < 64 {
                    self.invites.push((p, msg.clone()));
                }
                self.b.handle(
                    self.now,
                    Input::Receive {
                        msg,
                        from: Peer::new(addr(a), t),
                        local,
                        tls_names: tls,
                    },
                );
                self.pump();
            }
            Verdict::Reply(err) => {
                if let Some(r) = sip::error_response(&bytes, &err, "fz", Some("sbc-fuzz")) {
                    assert!(Message::parse(r).is_ok(), "error response does not parse");
                }
            }
            Verdict::Drop(_) => {}
        }
    }

    /// Takes what the B2BUA sent and reported; answers pings.
    fn pump(&mut self) {
        loop {
            let mut pings = Vec::new();
            let mut any = false;
            while let Some(t) = self.b.poll_transmit() {
                any = true;
                let msg = match Message::parse(t.bytes.clone()) {
                    Ok(m) => m,
                    Err(e) => panic!(
                        "the B2BUA sent a message that does not parse: {e}\n{:?}",
                        t.bytes
                    ),
                };
                self.learn(t.to, &msg);
                let ping = msg.method_str() == Some("OPTIONS")
                    && hdr(&msg, "To").as_deref().and_then(tag_of).is_none();
                if ping {
                    if let Some(p) = peer_index(t.to.addr) {
                        pings.push((p, msg));
                        continue;
                    }
                }
                if msg.method_str() != Some("ACK") {
                    if self.sent.len() >= 32 {
                        self.sent.drain(..8);
                    }
                    self.sent.push((t.to, msg));
                }
            }
            while let Some(o) = self.b.poll_output() {
                any = true;
                if matches!(o, Output::Cdr(_)) {
                    self.cdrs += 1;
                }
                if let Output::Media(op) = o {
                    if let media::control::MediaOp::Delete { id } = op {
                        let made = lock(&self.media).creates.iter().any(|c| c.2.id == id);
                        assert!(
                            made,
                            "the relay was told to delete session {id} it never made"
                        );
                        assert!(self.deleted.insert(id), "session {id} deleted twice");
                    }
                    lock(&self.media).apply(op);
                }
            }
            for (p, req) in pings {
                let code = match self.ping[p] % 3 {
                    0 => 200,
                    1 => continue,
                    _ => 503,
                };
                let lines = response_lines(&req, Some("ping"));
                let r = build(&format!("SIP/2.0 {code} Ping"), &lines, None, None);
                self.deliver(p, r, false);
            }
            if !any {
                break;
            }
        }
    }

    /// Dialogs the B2BUA makes with us: its 1xx/2xx (with a tag) to our
    /// INVITEs.
    fn learn(&mut self, to: Peer, m: &Message) {
        let Some(p) = peer_index(to.addr) else { return };
        let status = m.status().unwrap_or(0);
        if !(101..300).contains(&status) || m.cseq().map(|c| c.method).ok() != Some("INVITE") {
            return;
        }
        let (Some(from), Some(theirs)) = (hdr(m, "From"), hdr(m, "To")) else {
            return;
        };
        if tag_of(&theirs).is_none() {
            return;
        }
        let call_id = m.call_id().unwrap_or("").to_owned();
        if self
            .dialogs
            .iter()
            .any(|d| d.call_id == call_id && d.remote == theirs)
        {
            return;
        }
        let target = hdr(m, "Contact")
            .and_then(|c| uri_in(&c))
            .unwrap_or_else(|| "sip:sbc@192.0.2.1".into());
        self.add_dialog(Dialog {
            peer: p,
            call_id,
            local: from,
            remote: theirs,
            target,
            cseq: 1,
        });
    }

    fn add_dialog(&mut self, d: Dialog) {
        if self.dialogs.len() >= 8 {
            self.dialogs.remove(0);
        }
        self.dialogs.push(d);
    }

    fn via(&mut self, p: usize) -> String {
        let (a, t) = PEERS[p % PEERS.len()];
        let n = self.next();
        format!(
            "Via: SIP/2.0/{} {a};branch=z9hG4bK-fz{n};rport",
            transport_name(t)
        )
    }

    fn contact(p: usize) -> String {
        let (a, t) = PEERS[p % PEERS.len()];
        match t {
            Transport::Tls => format!("Contact: <sip:peer@{a};transport=tls>"),
            _ => format!("Contact: <sip:peer@{a}>"),
        }
    }

    fn invite(&mut self, from: u8, called: u8, body: &Body, timer: bool, tweak: Option<&Tweak>) {
        let p = usize::from(from) % PEERS.len();
        let (a, t) = PEERS[p];
        let number = [
            "030123456",
            "+4930123456",
            "0891234567",
            "anonymous",
            "+4915112345",
            "",
        ][usize::from(called) % 6];
        let ruri = match t {
            Transport::Tls => format!("sip:{number}@sbc.contoso.com:5061;transport=tls"),
            _ => format!("sip:{number}@192.0.2.1:5060"),
        };
        let n = self.next();
        let host = addr(a).ip();
        let mut h = vec![
            self.via(p),
            "Max-Forwards: 70".into(),
            format!("From: <sip:0891234567@{host}>;tag=f{n}"),
            format!("To: <{ruri}>"),
            format!("Call-ID: c{n}@fuzz"),
            "CSeq: 1 INVITE".into(),
            Self::contact(p),
            "Supported: timer, replaces".into(),
        ];
        if timer {
            h.push("Session-Expires: 90".into());
        }
        let b = body.bytes();
        let m = build(&format!("INVITE {ruri} SIP/2.0"), &h, b.as_deref(), tweak);
        self.deliver(p, m, true);
    }

    /// The `back`-th latest message the B2BUA sent that `pick` accepts.
    fn pick_sent(&self, back: u8, pick: impl Fn(&Message) -> bool) -> Option<(Peer, Message)> {
        let all: Vec<&(Peer, Message)> = self.sent.iter().rev().filter(|(_, m)| pick(m)).collect();
        if all.is_empty() {
            return None;
        }
        let (p, m) = all[usize::from(back) % all.len().min(4)];
        Some((*p, m.clone()))
    }

    #[allow(clippy::too_many_arguments)]
    fn respond(
        &mut self,
        back: u8,
        status: u8,
        tag: u8,
        body: &Body,
        route: bool,
        retry: Option<u8>,
        tweak: Option<&Tweak>,
    ) {
        let Some((to, req)) =
            self.pick_sent(back, |m| m.is_request() && m.method_str() != Some("ACK"))
        else {
            return;
        };
        let Some(p) = peer_index(to.addr) else { return };
        let code = STATUS[usize::from(status) % STATUS.len()];
        let our_tag = format!("t{}", tag % 3);
        let mut h = response_lines(&req, (code > 100).then_some(our_tag.as_str()));
        h.push(Self::contact(p));
        if route {
            h.push("Record-Route: <sip:proxy.example.net;lr>".into());
        }
        if let Some(r) = retry {
            h.push(format!("Retry-After: {r}"));
        }
        let invite = req.method_str() == Some("INVITE");
        let b = if invite && (180..300).contains(&code) {
            body.bytes()
        } else {
            None
        };
        let m = build(&format!("SIP/2.0 {code} Fuzz"), &h, b.as_deref(), tweak);
        let in_dialog = hdr(&req, "To").as_deref().and_then(tag_of).is_some();
        if invite && !in_dialog && (101..300).contains(&code) {
            let (Some(from), Some(to_v)) = (hdr(&req, "From"), hdr(&req, "To")) else {
                return;
            };
            let call_id = req.call_id().unwrap_or("").to_owned();
            let local = format!("{to_v};tag={our_tag}");
            if !self
                .dialogs
                .iter()
                .any(|d| d.call_id == call_id && d.local == local)
            {
                let target = hdr(&req, "Contact")
                    .and_then(|c| uri_in(&c))
                    .unwrap_or_else(|| "sip:sbc@192.0.2.1".into());
                self.add_dialog(Dialog {
                    peer: p,
                    call_id,
                    local,
                    remote: from,
                    target,
                    cseq: 1,
                });
            }
        }
        self.deliver(p, m, true);
    }

    fn ack(&mut self, back: u8, body: &Body) {
        let Some((to, r)) = self.pick_sent(back, |m| {
            m.status().is_some_and(|s| s >= 200)
                && m.cseq().map(|c| c.method).ok() == Some("INVITE")
        }) else {
            return;
        };
        let Some(p) = peer_index(to.addr) else { return };
        let ok = r.status().is_some_and(|s| s < 300);
        let via = if ok {
            self.via(p)
        } else {
            format!("Via: {}", hdr(&r, "Via").unwrap_or_default())
        };
        let seq = r.cseq().map(|c| c.seq).unwrap_or(1);
        let target = hdr(&r, "Contact")
            .and_then(|c| uri_in(&c))
            .unwrap_or_else(|| "sip:sbc@192.0.2.1".into());
        let h = vec![
            via,
            "Max-Forwards: 70".into(),
            format!("From: {}", hdr(&r, "From").unwrap_or_default()),
            format!("To: {}", hdr(&r, "To").unwrap_or_default()),
            format!("Call-ID: {}", r.call_id().unwrap_or("")),
            format!("CSeq: {seq} ACK"),
        ];
        let b = if ok { body.bytes() } else { None };
        let m = build(&format!("ACK {target} SIP/2.0"), &h, b.as_deref(), None);
        self.deliver(p, m, true);
    }

    fn cancel(&mut self, back: u8) {
        if self.invites.is_empty() {
            return;
        }
        let i = self.invites.len() - 1 - usize::from(back) % self.invites.len().min(4);
        self.cancel_at(i);
    }

    fn cancel_at(&mut self, i: usize) {
        let (p, inv) = self.invites[i].clone();
        let ruri = String::from_utf8_lossy(inv.request_uri_raw().unwrap_or_default()).into_owned();
        let seq = inv.cseq().map(|c| c.seq).unwrap_or(1);
        let h: Vec<String> = vec![
            format!("Via: {}", hdr(&inv, "Via").unwrap_or_default()),
            "Max-Forwards: 70".into(),
            format!("From: {}", hdr(&inv, "From").unwrap_or_default()),
            format!("To: {}", hdr(&inv, "To").unwrap_or_default()),
            format!("Call-ID: {}", inv.call_id().unwrap_or("")),
            format!("CSeq: {seq} CANCEL"),
        ];
        let m = build(&format!("CANCEL {ruri} SIP/2.0"), &h, None, None);
        self.deliver(p, m, true);
    }

    fn in_dialog(
        &mut self,
        dialog: u8,
        method: u8,
        body: &Body,
        refer_to: u8,
        tweak: Option<&Tweak>,
    ) {
        if self.dialogs.is_empty() {
            return;
        }
        let i = self.dialogs.len() - 1 - usize::from(dialog) % self.dialogs.len();
        self.dialogs[i].cseq += 1;
        let d = self.dialogs[i].clone();
        let method = [
            "BYE", "INVITE", "REFER", "INFO", "UPDATE", "OPTIONS", "NOTIFY", "PRACK", "MESSAGE",
            "BYE",
        ][usize::from(method) % 10];
        let mut h = vec![
            self.via(d.peer),
            "Max-Forwards: 70".into(),
            format!("From: {}", d.local),
            format!("To: {}", d.remote),
            format!("Call-ID: {}", d.call_id),
            format!("CSeq: {} {method}", d.cseq),
            Self::contact(d.peer),
        ];
        let mut b = None;
        match method {
            "INVITE" => {
                b = body.bytes();
                h.push("Supported: timer".into());
                h.push("Session-Expires: 120".into());
            }
            "REFER" => {
                let t = [
                    "<sip:+4930999888@sip.pstnhub.microsoft.com;user=phone>",
                    "<sip:+4915112345@192.0.2.10>",
                    "<sip:alice@sip.pstnhub.microsoft.com;x-m=8:teams;x-t=1>",
                    "<sip:+4930999888@sbc.contoso.com?Replaces=abc%3Bto-tag%3Dx%3Bfrom-tag%3Dy>",
                    "<sip:nobody@nowhere.invalid>",
                    "garbage",
                ][usize::from(refer_to) % 6];
                h.push(format!("Refer-To: {t}"));
                h.push(format!("Referred-By: <sip:peer@{}>", PEERS[d.peer].0));
            }
            "NOTIFY" => {
                h.push("Event: refer".into());
                h.push("Subscription-State: terminated".into());
            }
            _ => {}
        }
        let m = build(
            &format!("{method} {} SIP/2.0", d.target),
            &h,
            b.as_deref(),
            tweak,
        );
        self.deliver(d.peer, m, true);
    }

    fn out_of_dialog(&mut self, from: u8, method: u8, tweak: Option<&Tweak>) {
        let p = usize::from(from) % PEERS.len();
        let method = [
            "OPTIONS",
            "REGISTER",
            "BYE",
            "MESSAGE",
            "SUBSCRIBE",
            "INFO",
            "ACK",
            "REFER",
        ][usize::from(method) % 8];
        let n = self.next();
        let host = addr(PEERS[p].0).ip();
        let h = vec![
            self.via(p),
            "Max-Forwards: 70".into(),
            format!("From: <sip:peer@{host}>;tag=o{n}"),
            "To: <sip:sbc@192.0.2.1>".into(),
            format!("Call-ID: o{n}@fuzz"),
            format!("CSeq: 1 {method}"),
            Self::contact(p),
        ];
        let m = build(
            &format!("{method} sip:sbc@192.0.2.1 SIP/2.0"),
            &h,
            None,
            tweak,
        );
        self.deliver(p, m, true);
    }

    /// `handle(now, Timeout)` and the no-busy-loop check.
    fn timeout(&mut self) {
        for _ in 0..16 {
            self.b.handle(self.now, Input::Timeout);
            self.pump();
            match self.b.poll_timeout() {
                Some(t) if t < self.now => {
                    panic!("poll_timeout {:?} before now after Timeout", self.now - t)
                }
                Some(t) if t == self.now => continue,
                _ => return,
            }
        }
        panic!("busy loop: poll_timeout stays at now after 16 Timeouts");
    }

    /// Runs the clock forward by `d`, every timer on the way in order.
    fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        while let Some(t) = self.b.poll_timeout() {
            if t > end {
                break;
            }
            self.now = self.now.max(t);
            self.timeout();
        }
        self.now = end;
        self.timeout();
    }

    fn peer(&self, p: u8) -> Peer {
        let (a, t) = PEERS[usize::from(p) % PEERS.len()];
        // As the B2BUA named it, when it sent there (with its trunk).
        self.sent
            .iter()
            .rev()
            .find(|(to, _)| to.addr == addr(a))
            .map_or_else(|| Peer::new(addr(a), t), |(to, _)| *to)
    }

    fn live_sessions(&self) -> Vec<u64> {
        let log = lock(&self.media);
        log.creates
            .iter()
            .map(|c| c.2.id)
            .filter(|id| !self.deleted.contains(id))
            .collect()
    }

    fn op(&mut self, op: &Op) {
        match op {
            Op::Invite {
                from,
                called,
                body,
                timer,
                tweak,
            } => self.invite(*from, *called, body, *timer, tweak.as_ref()),
            Op::Respond {
                back,
                status,
                tag,
                body,
                route,
                retry,
                tweak,
            } => self.respond(*back, *status, *tag, body, *route, *retry, tweak.as_ref()),
            Op::Ack { back, body } => self.ack(*back, body),
            Op::Cancel { back } => self.cancel(*back),
            Op::InDialog {
                dialog,
                method,
                body,
                refer_to,
                tweak,
            } => self.in_dialog(*dialog, *method, body, *refer_to, tweak.as_ref()),
            Op::OutOfDialog {
                from,
                method,
                tweak,
            } => self.out_of_dialog(*from, *method, tweak.as_ref()),
            Op::Retransmit { back } => {
                if let Some((p, b)) = self.ours.iter().rev().nth(usize::from(*back) % 4).cloned() {
                    self.deliver(p, b, false);
                }
            }
            Op::Mutate {
                back,
                at,
                bytes,
                insert,
            } => {
                if let Some((p, b)) = self.ours.iter().rev().nth(usize::from(*back) % 4).cloned() {
                    let mut v = b.to_vec();
                    let at = usize::from(*at) % (v.len() + 1);
                    if *insert {
                        v.splice(at..at, bytes.iter().copied());
                    } else {
                        let end = (at + bytes.len()).min(v.len());
                        v.splice(at..end, bytes.iter().copied());
                    }
                    self.deliver(p, Bytes::from(v), false);
                }
            }
            Op::Raw { from, bytes } => {
                self.deliver(usize::from(*from), Bytes::from(bytes.clone()), false)
            }
            Op::Advance { ms, scale } => {
                // Up to 9 minutes (past the 30 s window, the 90 s session
                // timer, a 300 s hold); the final hour covers the rest.
                let ms = u64::from(*ms) * [1, 8][usize::from(*scale) % 2];
                self.advance(Duration::from_millis(ms));
            }
            Op::TransportError { peer, tls } => {
                let to = self.peer(*peer);
                self.b
                    .handle(self.now, Input::TransportError { to, tls: *tls });
                self.pump();
            }
            Op::ConnectionLost { peer } => {
                let to = self.peer(*peer);
                self.b.handle(self.now, Input::ConnectionLost { to });
                self.pump();
            }
            Op::MediaInactive { which } => {
                let live = self.live_sessions();
                let session = live
                    .get(usize::from(*which) % (live.len() + 1))
                    .copied()
                    .unwrap_or(999);
                self.b.handle(self.now, Input::MediaInactive { session });
                self.pump();
            }
            Op::PingMode { peer, mode } => self.ping[usize::from(*peer) % PEERS.len()] = *mode,
            Op::Drain => {
                self.b.drain();
                self.pump();
            }
        }
    }

    /// Drain, an hour of silence, the relay's inactivity reports, 5 minutes:
    /// nothing may be left.
    fn finish(&mut self) {
        self.b.drain();
        // Callers give up: every INVITE we sent is cancelled (the B2BUA has
        // no Timer C, issue 15: a callee that rings and never answers holds
        // the call until the caller cancels).
        for i in 0..self.invites.len() {
            self.cancel_at(i);
        }
        self.advance(Duration::from_secs(3600));
        for c in self.b.call_views(self.now, usize::MAX) {
            assert_eq!(
                c.state, "answered",
                "call {} still {} after an hour: {c:?}",
                c.id, c.state
            );
        }
        for session in self.live_sessions() {
            self.b.handle(self.now, Input::MediaInactive { session });
            self.pump();
        }
        self.advance(Duration::from_secs(300));
        let occ = self.b.occupancy();
        assert_eq!(self.b.active_calls(), 0, "calls leaked: {occ:?}");
        assert_eq!(
            self.b.pending_invites(),
            0,
            "pending INVITEs leaked: {occ:?}"
        );
        assert_eq!(self.b.transactions(), 0, "transactions leaked: {occ:?}");
        assert_eq!(occ, Occupancy::default(), "tables not empty");
        let live = self.live_sessions();
        assert!(live.is_empty(), "media sessions never deleted: {live:?}");
        assert_eq!(self.cdrs, self.b.counters().calls, "one CDR per call");
    }
}

/// `SBC_FUZZ_DEBUG=1` prints each decoded case (for reading a reproducer).
fn debug() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("SBC_FUZZ_DEBUG").is_some())
}

fuzz_target!(|case: Case| {
    if debug() {
        eprintln!("{case:#?}");
    }
    let mut h = H::new(u64::from(case.seed));
    // The first pings are due at once.
    h.timeout();
    for op in case.ops.iter().take(MAX_OPS) {
        h.op(op);
    }
    h.finish();
});
