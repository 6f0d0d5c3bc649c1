//! A small world for driving whole calls through the B2BUA in virtual time:
//! a fake media relay that records every request, a carrier UA over UDP and
//! the three Microsoft proxies over TLS, all scripted by the tests.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use b2bua::{B2bua, Cdr, Config, Input, MediaControl, Output};
use bytes::Bytes;
use media::control::{CryptoSpec, LegPorts, LegSpec, MediaOp, SessionInfo, Side};
use media::{CryptoAttribute, SrtpProfile};
use routing::regex::Regex;
use routing::{Destination, Normaliser, NumberRule, Route, Table};
use sip::{HeaderName, Message};
use transaction::{response_to, Peer, TimerConfig, Transport};
use trunk::{PeerSpec, TrunkKind, TrunkSpec};

/// The carrier's UA.
pub const CARRIER: &str = "192.0.2.10:5060";
/// Our listener facing the carrier (UDP).
pub const SBC_UDP: &str = "192.0.2.1:5060";
/// Our TLS listener facing Microsoft.
pub const SBC_TLS: &str = "192.0.2.1:5061";
/// sip, sip2, sip3.pstnhub.microsoft.com.
pub const MS: [&str; 3] = ["52.112.1.1:5061", "52.112.1.2:5061", "52.112.1.3:5061"];
pub const MS_HOSTS: [&str; 3] = [
    "sip.pstnhub.microsoft.com",
    "sip2.pstnhub.microsoft.com",
    "sip3.pstnhub.microsoft.com",
];
/// Our FQDN toward Teams and toward ACS.
pub const TEAMS_FQDN: &str = "sbc.contoso.com";
pub const ACS_FQDN: &str = "acs.contoso.com";
/// The relay's advertised address.
pub const MEDIA_IP: &str = "203.0.113.5";

pub fn addr(s: &str) -> SocketAddr {
    s.parse().expect("test address")
}

// ----- the fake relay -----------------------------------------------------------

/// One `update` call.
#[derive(Debug, Clone)]
pub struct Update {
    pub id: u64,
    pub side: Side,
    pub rtp: Option<SocketAddr>,
    pub rtcp: Option<SocketAddr>,
    pub crypto: Option<CryptoSpec>,
    pub rtcp_mux: Option<bool>,
}

/// Everything asked of the relay.
#[derive(Debug, Default)]
pub struct MediaLog {
    pub creates: Vec<(LegSpec, LegSpec, SessionInfo)>,
    pub updates: Vec<Update>,
    pub deletes: Vec<u64>,
    pub keys: Vec<CryptoAttribute>,
    next_port: u16,
    next_id: u64,
}

impl MediaLog {
    /// Records a change the B2BUA asked of the relay.
    pub fn apply(&mut self, op: MediaOp) {
        match op {
            MediaOp::Update {
                id,
                side,
                remote_rtp,
                remote_rtcp,
                crypto,
                rtcp_mux,
            } => self.updates.push(Update {
                id,
                side,
                rtp: remote_rtp,
                rtcp: remote_rtcp,
                crypto,
                rtcp_mux,
            }),
            MediaOp::Delete { id } => self.deletes.push(id),
        }
    }

    pub fn updates_of(&self, side: Side) -> Vec<Update> {
        self.updates
            .iter()
            .filter(|u| u.side == side)
            .cloned()
            .collect()
    }
}

#[derive(Debug, Clone)]
pub struct FakeMedia(pub Arc<Mutex<MediaLog>>);

impl MediaControl for FakeMedia {
    fn interface(&self, _name: Option<&str>) -> usize {
        0
    }

    fn create(&mut self, a: LegSpec, b: LegSpec) -> Result<SessionInfo, String> {
        let mut log = self.0.lock().unwrap();
        log.next_id += 1;
        let base = 40000 + log.next_port;
        log.next_port += 4;
        let ip = MEDIA_IP.parse().unwrap();
        let ports = |p: u16| LegPorts {
            rtp: SocketAddr::new(ip, p),
            rtcp: SocketAddr::new(ip, p + 1),
            advertised: ip,
        };
        let info = SessionInfo {
            id: log.next_id,
            a: ports(base),
            b: ports(base + 2),
        };
        log.creates.push((a, b, info));
        Ok(info)
    }

    fn new_key(&mut self, tag: u32, profile: SrtpProfile) -> Result<CryptoAttribute, String> {
        let mut log = self.0.lock().unwrap();
        let n = profile.master_key_len() + profile.master_salt_len();
        let seed = log.keys.len() as u8 + 1;
        let bytes: Vec<u8> = (0..n as u8).map(|i| i.wrapping_mul(7) ^ seed).collect();
        let k = CryptoAttribute::new(tag, profile, &bytes).map_err(|e| e.to_string())?;
        log.keys.push(k.clone());
        Ok(k)
    }
}

// ----- configuration --------------------------------------------------------------

pub fn rule(pattern: &str, replace: &str) -> NumberRule {
    NumberRule {
        pattern: Regex::new(pattern).unwrap(),
        replace: replace.to_owned(),
        applies: routing::Applies::Both,
    }
}

pub fn dest(trunk: &str, label: Option<&str>) -> Destination {
    Destination::trunk(trunk, label)
}

pub fn route(name: &str, from: &str, to: Vec<Destination>) -> Route {
    Route {
        name: name.to_owned(),
        from: vec![from.to_owned()],
        called: None,
        to,
        forward: None,
    }
}

fn microsoft(name: &str, kind: TrunkKind, fqdn: &str) -> TrunkSpec {
    let mut t = TrunkSpec::new(name, kind, fqdn);
    for (p, a) in t.peers.iter_mut().zip(MS) {
        p.addr = Some(addr(a));
    }
    t
}

/// Carrier (national numbers in, normalised to +49), Teams and ACS trunks;
/// carrier → Teams and Teams/ACS → carrier routes.
pub fn config() -> Config {
    let mut carrier = TrunkSpec::new("carrier", TrunkKind::Carrier, "sbc.carrier.example");
    carrier.peers = vec![PeerSpec {
        host: "192.0.2.10".into(),
        port: 5060,
        transport: Transport::Udp,
        addr: Some(addr(CARRIER)),
    }];
    carrier.numbers_in = Normaliser {
        rules: vec![rule(r"^0([1-9]\d+)$", "+49$1")],
    };
    carrier.numbers_out = Normaliser {
        rules: vec![rule(r"^\+49(\d+)$", "0$1")],
    };
    let teams = microsoft("teams", TrunkKind::Teams, TEAMS_FQDN);
    let acs = microsoft("acs", TrunkKind::Acs, ACS_FQDN);
    Config {
        trunks: vec![carrier, teams, acs],
        routes: Table {
            routes: vec![
                route("to-teams", "carrier", vec![dest("teams", None)]),
                route("from-teams", "teams", vec![dest("carrier", None)]),
                route("from-acs", "acs", vec![dest("carrier", None)]),
            ],
        },
        agent: "sbc-test/1".into(),
        timers: TimerConfig::default(),
        seed: 42,
        session_expires: 1800,
        supported: "timer, replaces".into(),
    }
}

// ----- the world ----------------------------------------------------------------

/// A message sent by the B2BUA.
#[derive(Debug, Clone)]
pub struct Sent {
    pub to: Peer,
    pub msg: Message,
}

impl Sent {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.msg.to_bytes()).into_owned()
    }
}

pub struct World {
    pub b: B2bua,
    pub now: Instant,
    pub start: Instant,
    pub media: Arc<Mutex<MediaLog>>,
    /// Sent and not yet taken by a test.
    pub out: Vec<Sent>,
    /// Everything ever sent, in order.
    pub log: Vec<Sent>,
    pub outputs: Vec<Output>,
    /// Answer the B2BUA's OPTIONS pings with 200 automatically.
    pub auto_pings: bool,
    pub pings_answered: usize,
    seq: u64,
}

impl World {
    pub fn new() -> World {
        World::with(config())
    }

    pub fn with(cfg: Config) -> World {
        let media = Arc::new(Mutex::new(MediaLog::default()));
        let now = Instant::now();
        let b = B2bua::new(cfg, Box::new(FakeMedia(media.clone())), now);
        let mut w = World {
            b,
            now,
            start: now,
            media,
            out: Vec::new(),
            log: Vec::new(),
            outputs: Vec::new(),
            auto_pings: true,
            pings_answered: 0,
            seq: 0,
        };
        // The first pings are due at once.
        w.b.handle(now, Input::Timeout);
        w.drain();
        w
    }

    pub fn unique(&mut self, prefix: &str) -> String {
        self.seq += 1;
        format!("{prefix}{}", self.seq)
    }

    fn drain(&mut self) {
        loop {
            let mut any = false;
            while let Some(t) = self.b.poll_transmit() {
                any = true;
                let msg = Message::parse(t.bytes.clone())
                    .unwrap_or_else(|e| panic!("B2BUA sent an unparsable message: {e}"));
                let s = Sent { to: t.to, msg };
                self.log.push(s.clone());
                if self.auto_pings && is_ping(&s) {
                    self.pings_answered += 1;
                    let r = response_to(&s.msg, 200, "OK", Some("ms-ping")).unwrap();
                    let from = s.to;
                    self.feed(r, from, addr(SBC_TLS), Some(ms_names()));
                    continue;
                }
                self.out.push(s);
            }
            while let Some(o) = self.b.poll_output() {
                any = true;
                match o {
                    Output::Media(op) => self.media.lock().unwrap().apply(op),
                    o => self.outputs.push(o),
                }
            }
            if !any {
                break;
            }
        }
    }

    fn feed(&mut self, msg: Message, from: Peer, local: SocketAddr, tls: Option<Vec<String>>) {
        self.b.handle(
            self.now,
            Input::Receive {
                msg,
                from,
                local,
                tls_names: tls,
            },
        );
    }

    /// Delivers `msg` as if it came from `from` on our listener `local`.
    pub fn deliver(
        &mut self,
        msg: Message,
        from: Peer,
        local: SocketAddr,
        tls: Option<Vec<String>>,
    ) {
        // A message goes through the wire: bytes, then a fresh parse.
        let msg = Message::parse(msg.to_bytes()).expect("test message parses");
        self.feed(msg, from, local, tls);
        self.drain();
    }

    /// A message from the carrier (UDP).
    pub fn carrier_sends(&mut self, msg: Message) {
        self.deliver(
            msg,
            Peer::new(addr(CARRIER), Transport::Udp),
            addr(SBC_UDP),
            None,
        );
    }

    /// A message from Microsoft proxy `i` (TLS).
    pub fn ms_sends(&mut self, i: usize, msg: Message) {
        self.deliver(
            msg,
            Peer::new(addr(MS[i]), Transport::Tls),
            addr(SBC_TLS),
            Some(ms_names()),
        );
    }

    /// Sending to `to` failed.
    pub fn transport_error(&mut self, to: Peer) {
        self.b
            .handle(self.now, Input::TransportError { to, tls: false });
        self.drain();
    }

    /// Runs the clock forward by `d`, firing every timer on the way.
    pub fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        while let Some(t) = self.b.poll_timeout() {
            if t > end {
                break;
            }
            self.now = t.max(self.now);
            self.b.handle(self.now, Input::Timeout);
            self.drain();
        }
        self.now = end;
        self.b.handle(self.now, Input::Timeout);
        self.drain();
    }

    // ----- looking at what was sent ----------------------------------------------

    pub fn dump(&self) -> String {
        self.out
            .iter()
            .map(|s| format!("→ {}: {}", s.to.addr, first_line(&s.msg)))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Takes the first message to `to` matching `pred`.
    pub fn try_take(&mut self, to: &str, pred: impl Fn(&Message) -> bool) -> Option<Message> {
        let a = addr(to);
        let i = self
            .out
            .iter()
            .position(|s| s.to.addr == a && pred(&s.msg))?;
        Some(self.out.remove(i).msg)
    }

    /// Takes the first request `method` sent to `to`; panics if none.
    pub fn take_req(&mut self, to: &str, method: &str) -> Message {
        self.try_take(to, |m| m.method_str() == Some(method))
            .unwrap_or_else(|| panic!("no {method} to {to}; outbox:\n{}", self.dump()))
    }

    /// Takes the first response `status` (to a request `method`) sent to `to`.
    pub fn take_resp(&mut self, to: &str, status: u16, method: &str) -> Message {
        self.try_take(to, |m| {
            m.status() == Some(status) && cseq_method(m) == method
        })
        .unwrap_or_else(|| panic!("no {status} ({method}) to {to}; outbox:\n{}", self.dump()))
    }

    /// Messages (still in the outbox) sent to `to`.
    pub fn pending_to(&self, to: &str) -> Vec<String> {
        let a = addr(to);
        self.out
            .iter()
            .filter(|s| s.to.addr == a)
            .map(|s| first_line(&s.msg))
            .collect()
    }

    /// Everything ever sent to `to` (first lines).
    pub fn ever_sent_to(&self, to: &str) -> Vec<String> {
        let a = addr(to);
        self.log
            .iter()
            .filter(|s| s.to.addr == a)
            .map(|s| first_line(&s.msg))
            .collect()
    }

    /// Forgets the outbox (retransmissions, messages a test does not look at).
    pub fn clear(&mut self) {
        self.out.clear();
    }

    pub fn cdrs(&self) -> Vec<Cdr> {
        self.outputs
            .iter()
            .filter_map(|o| match o {
                Output::Cdr(c) => Some((**c).clone()),
                _ => None,
            })
            .collect()
    }

    pub fn media(&self) -> std::sync::MutexGuard<'_, MediaLog> {
        self.media.lock().unwrap()
    }
}

impl Default for World {
    fn default() -> Self {
        World::new()
    }
}

pub fn ms_names() -> Vec<String> {
    vec!["sip.pstnhub.microsoft.com".to_owned()]
}

fn is_ping(s: &Sent) -> bool {
    s.msg.method_str() == Some("OPTIONS")
        && MS.iter().any(|m| addr(m) == s.to.addr)
        && s.msg
            .header(HeaderName::To)
            .is_some_and(|t| !String::from_utf8_lossy(t).contains("tag="))
}

pub fn first_line(m: &Message) -> String {
    let b = m.to_bytes();
    let s = String::from_utf8_lossy(&b);
    s.lines().next().unwrap_or("").to_owned()
}

pub fn cseq_method(m: &Message) -> String {
    m.cseq().map(|c| c.method.to_owned()).unwrap_or_default()
}

// ----- reading messages -----------------------------------------------------------

pub fn text(m: &Message) -> String {
    String::from_utf8_lossy(&m.to_bytes()).into_owned()
}

pub fn hdr(m: &Message, name: &str) -> Option<String> {
    m.header_by_name(name)
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

pub fn hdrs(m: &Message, name: &str) -> Vec<String> {
    m.headers()
        .filter(|h| String::from_utf8_lossy(h.name_raw).eq_ignore_ascii_case(name))
        .map(|h| String::from_utf8_lossy(h.value).into_owned())
        .collect()
}

pub fn ruri(m: &Message) -> String {
    String::from_utf8_lossy(m.request_uri_raw().unwrap_or_default()).into_owned()
}

pub fn body(m: &Message) -> String {
    String::from_utf8_lossy(m.body()).into_owned()
}

pub fn tag(v: &str) -> String {
    v.split(";tag=")
        .nth(1)
        .map(|t| t.split(';').next().unwrap_or(t).to_owned())
        .unwrap_or_default()
}

/// The (address, port) of the audio stream of an SDP body.
pub fn sdp_audio(b: &str) -> (String, u16) {
    let c = b
        .lines()
        .rfind(|l| l.starts_with("c="))
        .and_then(|l| l.split_whitespace().nth(2))
        .unwrap_or("")
        .to_owned();
    let port = b
        .lines()
        .find(|l| l.starts_with("m=audio"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    (c, port)
}

/// The a=crypto line of an SDP body.
pub fn crypto_line(b: &str) -> Option<String> {
    b.lines()
        .find(|l| l.starts_with("a=crypto:"))
        .map(str::to_owned)
}

// ----- writing messages -----------------------------------------------------------

/// A message from header lines and a body (Content-Length added).
pub fn build(start: &str, headers: &[String], body: &str) -> Message {
    let mut s = String::new();
    s.push_str(start);
    s.push_str("\r\n");
    for h in headers {
        s.push_str(h);
        s.push_str("\r\n");
    }
    if !body.is_empty() && !headers.iter().any(|h| h.starts_with("Content-Type")) {
        s.push_str("Content-Type: application/sdp\r\n");
    }
    s.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    Message::parse(Bytes::from(s)).expect("test message parses")
}

/// A response to `req` with a To tag, extra headers and a body.
pub fn answer(req: &Message, status: u16, to_tag: &str, headers: &[String], body: &str) -> Message {
    let mut r = response_to(req, status, "Whatever", Some(to_tag)).unwrap();
    r.remove_headers(HeaderName::ContentLength);
    for h in headers {
        let (n, v) = h.split_once(':').unwrap();
        r.push_header(n.trim(), v.trim().as_bytes()).unwrap();
    }
    if body.is_empty() {
        r.push_header("Content-Length", b"0").unwrap();
    } else {
        r.set_body(Some("application/sdp"), body.as_bytes())
            .unwrap();
    }
    Message::parse(r.to_bytes()).unwrap()
}

/// Plain RTP offer/answer of the carrier.
pub fn carrier_sdp(port: u16, dir: &str) -> String {
    format!(
        "v=0\r\no=carrier 1 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 8 0 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\na={dir}\r\n"
    )
}

/// Microsoft's SRTP SDP (media processor), ICE attributes included.
pub fn ms_sdp(ip: &str, port: u16, key: &str, dir: &str) -> String {
    format!(
        "v=0\r\no=- 7 {port} IN IP4 {ip}\r\ns=session\r\nc=IN IP4 {ip}\r\nb=CT:10000000\r\nt=0 0\r\n\
         m=audio {port} RTP/SAVP 8 0 101 13\r\nc=IN IP4 {ip}\r\n\
         a=rtcp:{} IN IP4 {ip}\r\n\
         a=ice-ufrag:abcd\r\na=ice-pwd:0123456789012345678901\r\n\
         a=candidate:1 1 UDP 2130706431 {ip} {port} typ host\r\n\
         a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key}|2^31\r\n\
         a=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n\
         a=fmtp:101 0-16\r\na=rtpmap:13 CN/8000\r\na=ptime:20\r\na={dir}\r\n",
        port + 1
    )
}

/// 30-byte base64 SDES keys for Microsoft's side.
pub const MS_KEY1: &str = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz";
pub const MS_KEY2: &str = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNk";

/// `s` with every character that may not appear in a branch replaced.
pub fn token(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

pub fn after(w: &World) -> u64 {
    w.now.duration_since(w.start).as_millis() as u64
}
