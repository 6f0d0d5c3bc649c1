//! A small world for driving whole calls through the B2BUA in virtual time:
//! a fake media relay that records every request, a carrier UA over UDP and
//! the three Microsoft proxies over TLS, all scripted by the tests.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::time::Duration;

use b2bua::Config;
use bytes::Bytes;
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
const _: () = assert!(matches!(sim::world::MEDIA_IP, std::net::IpAddr::V4(_)));

pub fn addr(s: &str) -> SocketAddr {
    s.parse().expect("test address")
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
        phones: None,
        mask_numbers: true,
        protect: b2bua::Protect::default(),
    }
}

// ----- the world ----------------------------------------------------------------

#[allow(unused_imports)] // used by calls.rs, not by memory.rs
pub use sim::world::{cseq_method, Sent};

/// The B2BUA in the simulated world with no latency: the carrier and the
/// three Microsoft proxies are scripted neighbours (the proxies answer the
/// B2BUA's OPTIONS pings by themselves), every other address takes what
/// is sent to it.
pub struct World(pub sim::World);

impl std::ops::Deref for World {
    type Target = sim::World;
    fn deref(&self) -> &sim::World {
        &self.0
    }
}

impl std::ops::DerefMut for World {
    fn deref_mut(&mut self) -> &mut sim::World {
        &mut self.0
    }
}

static UNIQUE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl World {
    pub fn new() -> World {
        World::with(config())
    }

    pub fn with(cfg: Config) -> World {
        let instant = sim::NetConfig {
            latency: Duration::ZERO,
            ..sim::NetConfig::default()
        };
        let listeners = [(Transport::Udp, SBC_UDP), (Transport::Tls, SBC_TLS)];
        let mut w = sim::World::new(cfg, &listeners, instant, 42);
        w.add_peer("carrier", CARRIER, Transport::Udp);
        for (i, a) in MS.iter().enumerate() {
            let n = w.add_peer(MS_HOSTS[i], a, Transport::Tls);
            w.set_tls_names(n, &["sip.pstnhub.microsoft.com"]);
            w.set_answer_pings(n, true);
        }
        // The first pings are due at once.
        w.settle();
        World(w)
    }

    pub fn unique(&mut self, prefix: &str) -> String {
        let n = UNIQUE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!("{prefix}{n}")
    }

    /// A message from the carrier (UDP).
    pub fn carrier_sends(&mut self, msg: Message) {
        self.0.deliver(
            msg,
            Peer::new(addr(CARRIER), Transport::Udp),
            addr(SBC_UDP),
            None,
        );
    }

    /// A message from Microsoft proxy `i` (TLS).
    pub fn ms_sends(&mut self, i: usize, msg: Message) {
        self.0.deliver(
            msg,
            Peer::new(addr(MS[i]), Transport::Tls),
            addr(SBC_TLS),
            Some(ms_names()),
        );
    }

    /// Whether the Microsoft proxies answer the B2BUA's pings by themselves.
    pub fn set_auto_pings(&mut self, on: bool) {
        for a in MS {
            if let Some(n) = self.0.node(a) {
                self.0.set_answer_pings(n, on);
            }
        }
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
    sim::world::rtp("198.51.100.7", port, dir)
}

/// Microsoft's SRTP SDP (media processor), ICE attributes included.
pub fn ms_sdp(ip: &str, port: u16, key: &str, dir: &str) -> String {
    sim::world::srtp(ip, port, key, dir)
}

/// 30-byte base64 SDES keys for Microsoft's side.
pub use sim::world::{KEY1 as MS_KEY1, KEY2 as MS_KEY2};

/// `s` with every character that may not appear in a branch replaced.
pub fn token(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

pub fn after(w: &World) -> u64 {
    w.now.duration_since(w.start).as_millis() as u64
}

// ----- the call tests' messages ---------------------------------------------------

pub const CONTACT_443: &str =
    "<sip:api-du-a-euwe.pstnhub.microsoft.com:443;x-i=0a1b2c3d;x-c=f00d/s/1/abc>";
pub const CONTACT_443_URI: &str =
    "sip:api-du-a-euwe.pstnhub.microsoft.com:443;x-i=0a1b2c3d;x-c=f00d/s/1/abc";
pub const MS_RR: &str = "<sip:sip-du-a-eu.pstnhub.microsoft.com:5061;transport=tls;lr>";

/// The carrier's INVITE for 030123456 from 0891234567 (national numbers).
pub fn carrier_invite(call_id: &str, sdp: &str, extra: &[String]) -> Message {
    let mut h = vec![
        format!(
            "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-{}",
            token(call_id)
        ),
        "Max-Forwards: 70".into(),
        "From: \"Alice\" <sip:0891234567@192.0.2.10>;tag=c-from".into(),
        "To: <sip:030123456@192.0.2.1>".into(),
        format!("Call-ID: {call_id}"),
        "CSeq: 1 INVITE".into(),
        "Contact: <sip:0891234567@192.0.2.10:5060>".into(),
    ];
    h.extend_from_slice(extra);
    build("INVITE sip:030123456@192.0.2.1:5060 SIP/2.0", &h, sdp)
}

/// An in-dialog request from the carrier on a dialog where our tag is `our_tag`.
pub fn carrier_in_dialog(
    method: &str,
    call_id: &str,
    our_tag: &str,
    cseq: u32,
    extra: &[String],
    sdp: &str,
) -> Message {
    let mut h = vec![
        format!(
            "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-{method}{cseq}{}",
            token(call_id)
        ),
        "Max-Forwards: 70".into(),
        "From: \"Alice\" <sip:0891234567@192.0.2.10>;tag=c-from".into(),
        format!("To: <sip:030123456@192.0.2.1>;tag={our_tag}"),
        format!("Call-ID: {call_id}"),
        format!("CSeq: {cseq} {method}"),
    ];
    h.extend_from_slice(extra);
    build(
        &format!("{method} sip:+4930123456@sbc.carrier.example:5060 SIP/2.0"),
        &h,
        sdp,
    )
}

/// Microsoft's INVITE: from Teams user +4930111 to carrier number +4989222.
pub fn ms_invite(call_id: &str, sdp: &str, extra: &[String]) -> Message {
    let mut h = vec![
        format!(
            "Via: SIP/2.0/TLS 52.112.1.1:5061;branch=z9hG4bK-{}",
            token(call_id)
        ),
        format!("Record-Route: {MS_RR}"),
        "Max-Forwards: 69".into(),
        "From: \"Bob\" <sip:+4930111@sip.pstnhub.microsoft.com:5061;user=phone>;tag=ms-from".into(),
        format!("To: <sip:+4989222@{TEAMS_FQDN}:5061;user=phone>"),
        format!("Call-ID: {call_id}"),
        "CSeq: 1 INVITE".into(),
        format!("Contact: {CONTACT_443}"),
        "Allow: INVITE,ACK,OPTIONS,CANCEL,BYE,NOTIFY".into(),
    ];
    h.extend_from_slice(extra);
    build(
        &format!("INVITE sip:+4989222@{TEAMS_FQDN}:5061;user=phone;transport=tls SIP/2.0"),
        &h,
        sdp,
    )
}

/// An in-dialog request from Microsoft (proxy 0) toward us.
pub fn ms_in_dialog(
    method: &str,
    call_id: &str,
    from: &str,
    to: &str,
    cseq: u32,
    extra: &[String],
    body: &str,
) -> Message {
    let mut h = vec![
        format!(
            "Via: SIP/2.0/TLS 52.112.1.1:5061;branch=z9hG4bK-{method}{cseq}{}",
            token(call_id)
        ),
        "Max-Forwards: 69".into(),
        format!("From: {from}"),
        format!("To: {to}"),
        format!("Call-ID: {call_id}"),
        format!("CSeq: {cseq} {method}"),
        format!("Contact: {CONTACT_443}"),
    ];
    h.extend_from_slice(extra);
    build(
        &format!("{method} sip:{TEAMS_FQDN}:5061;transport=tls SIP/2.0"),
        &h,
        body,
    )
}

/// Microsoft's From in its requests on a dialog it made.
pub const MS_FROM: &str =
    "\"Bob\" <sip:+4930111@sip.pstnhub.microsoft.com:5061;user=phone>;tag=ms-from";
