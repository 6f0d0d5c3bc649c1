//! What a trunk is: its kind, peers, identity, health settings and policies.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

use transaction::Transport;

/// The Microsoft SIP proxies of Direct Routing, in the order they are tried.
pub const MICROSOFT_PROXIES: [&str; 3] = [
    "sip.pstnhub.microsoft.com",
    "sip2.pstnhub.microsoft.com",
    "sip3.pstnhub.microsoft.com",
];

/// The address ranges Microsoft's SIP proxies connect from (Teams and ACS
/// Direct Routing signalling).
pub const MICROSOFT_SIGNALLING_RANGES: [&str; 2] = ["52.112.0.0/14", "52.120.0.0/14"];

/// The `Allow` header value of every request and response the SBC sends:
/// REFER included, because Microsoft decides the transfer mode from it.
pub const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, NOTIFY, REFER";

/// What is on the other side of a trunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrunkKind {
    /// A PSTN carrier's SIP trunk (usually UDP, plain RTP).
    Carrier,
    /// Microsoft Teams Direct Routing.
    Teams,
    /// Azure Communication Services Direct Routing.
    Acs,
    /// An analog gateway (FXS/FXO) or other on-premises SIP equipment.
    Gateway,
    /// SIP phones that register with the SBC: no fixed peers, an ACL of
    /// the networks they come from, UDP, TCP and TLS.
    Phones,
}

impl TrunkKind {
    /// The name used in the configuration (`carrier`, `teams`, `acs`,
    /// `gateway`, `phones`).
    pub fn as_str(self) -> &'static str {
        match self {
            TrunkKind::Carrier => "carrier",
            TrunkKind::Teams => "teams",
            TrunkKind::Acs => "acs",
            TrunkKind::Gateway => "gateway",
            TrunkKind::Phones => "phones",
        }
    }

    /// True for Teams and ACS: mutual TLS, SRTP, E.164, FQDN in Contact.
    pub fn is_microsoft(self) -> bool {
        matches!(self, TrunkKind::Teams | TrunkKind::Acs)
    }
}

impl fmt::Display for TrunkKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One peer of a trunk (for Teams: `sip`, `sip2` or `sip3`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerSpec {
    /// FQDN (or IP) of the peer: Request-URI host, TLS SNI and the name its
    /// certificate must carry.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Transport.
    pub transport: Transport,
    /// Connect to this address instead of resolving `host` (tests, or a
    /// peer without DNS); `host` stays in SNI, certificate checks and URIs.
    pub addr: Option<SocketAddr>,
}

impl PeerSpec {
    /// The peer's URI, `sip:{host}:{port};transport={transport}`.
    pub fn uri(&self) -> String {
        format!(
            "sip:{}:{};transport={}",
            bracket(&self.host),
            self.port,
            transport_param(self.transport)
        )
    }
}

/// `host` with brackets when it is an IPv6 address.
pub(crate) fn bracket(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

/// The URI `transport` parameter value (lower case).
pub(crate) fn transport_param(t: Transport) -> &'static str {
    match t {
        Transport::Udp => "udp",
        Transport::Tcp => "tcp",
        Transport::Tls => "tls",
    }
}

/// OPTIONS keepalive and health settings of a trunk (the semantics of an
/// AudioCodes proxy set: down after `down_after` consecutive failures, up
/// after `up_after` consecutive successes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionsSpec {
    /// Send OPTIONS to every peer.
    pub enabled: bool,
    /// Time between two OPTIONS to the same peer (Microsoft expects 60 s).
    pub interval: Duration,
    /// A ping with no final response after this long is a failure.
    pub timeout: Duration,
    /// Consecutive successes that bring a peer up.
    pub up_after: u32,
    /// Consecutive failures that take a peer down.
    pub down_after: u32,
    /// Final responses meaning "down"; any other final response means alive.
    pub failure_codes: Vec<u16>,
    /// The longest a 503 with Retry-After holds a peer down, whatever the
    /// Retry-After says.
    pub max_hold: Duration,
    /// With OPTIONS off (or paused while draining), a down peer is usable
    /// again this long after its last failure; with OPTIONS on, recovery
    /// is up to the OPTIONS.
    pub retry_interval: Duration,
}

impl Default for OptionsSpec {
    /// Disabled; when enabled: every 60 s, 32 s timeout, up after 2, down
    /// after 1. Retry-After holds at most 300 s; without OPTIONS a down
    /// peer is retried after 30 s.
    fn default() -> Self {
        OptionsSpec {
            enabled: false,
            interval: Duration::from_secs(60),
            timeout: Duration::from_secs(32),
            up_after: 2,
            down_after: 1,
            failure_codes: Vec::new(),
            max_hold: Duration::from_secs(300),
            retry_interval: Duration::from_secs(30),
        }
    }
}

/// Media security on a trunk's leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MediaSecurity {
    /// Plain RTP/AVP.
    #[default]
    Rtp,
    /// SRTP with SDES keys (RTP/SAVP, `a=crypto`), as Teams and ACS require.
    Srtp,
}

/// What a caller arriving over a trunk hears while the callee rings, when
/// the callee's 180 carries no SDP.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Ringback {
    /// The 180 is relayed; the caller plays its own ringback (the default).
    #[default]
    Pass,
    /// The SBC answers the caller early (183 Session Progress with our SDP)
    /// and its relay plays this tone toward the caller until the answer or
    /// the callee's own early media.
    Local {
        /// The tone's name (`de`, `uk`…, or one of `[media.tones]`), for logs.
        name: String,
        /// Frequencies, Hz (one or two).
        freqs: Vec<u16>,
        /// On/off periods, ms, starting with an on period; empty: continuous.
        cadence_ms: Vec<u32>,
    },
}

/// How DTMF reaches a trunk's party.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DtmfMode {
    /// RFC 4733 telephone-events in the media, with the payload type the
    /// party declared (renumbered by the relay between the legs).
    #[default]
    Rfc4733,
    /// SIP INFO in the dialog (`application/dtmf-relay`, one per key):
    /// telephone-events from the other party become INFO requests, and
    /// `telephone-event` is not offered or answered toward the trunk.
    Info,
}

/// What happens to P-Asserted-Identity (and Privacy) toward a trunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PaiPolicy {
    /// Passed through unchanged.
    #[default]
    Pass,
    /// Removed.
    Strip,
}

/// Header handling toward and from a trunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderPolicy {
    /// `X-MS-SBC` value put on every request and response sent to the trunk
    /// (`Vendor/Model/Version`); `None`: no such header.
    pub x_ms_sbc: Option<String>,
    /// P-Asserted-Identity / Privacy toward the trunk.
    pub pai: PaiPolicy,
    /// History-Info of the other leg is sent to this trunk as Diversion
    /// (RFC 6044 / RFC 7544 mapping): for carriers that want Diversion.
    pub history_info_to_diversion: bool,
    /// Diversion of the other leg is sent to this trunk as History-Info:
    /// for Microsoft, which does not use Diversion.
    pub diversion_to_history_info: bool,
    /// Header-name prefixes (case-insensitive, for example `X-MS-Custom-`)
    /// copied between this trunk and the other leg; other unknown headers
    /// are dropped.
    pub pass_headers: Vec<String>,
    /// `User-Agent` (requests) and `Server` (responses) value toward the trunk.
    pub user_agent: String,
}

impl Default for HeaderPolicy {
    fn default() -> Self {
        HeaderPolicy {
            x_ms_sbc: None,
            pai: PaiPolicy::Pass,
            history_info_to_diversion: false,
            diversion_to_history_info: false,
            pass_headers: Vec::new(),
            user_agent: default_user_agent(),
        }
    }
}

impl HeaderPolicy {
    /// True when a header called `name` is passed through (its name starts
    /// with one of `pass_headers`, ignoring case).
    pub fn passes(&self, name: &str) -> bool {
        self.pass_headers.iter().any(|p| {
            name.len() >= p.len() && name.as_bytes()[..p.len()].eq_ignore_ascii_case(p.as_bytes())
        })
    }
}

/// `sbc/<version>`.
pub fn default_user_agent() -> String {
    format!("sbc/{}", env!("CARGO_PKG_VERSION"))
}

/// The default `X-MS-SBC` value: `sbc/<os>/<version>` (for example `sbc/Linux/0.1.0`).
pub fn default_x_ms_sbc() -> String {
    let os = std::env::consts::OS;
    let mut chars = os.chars();
    let os = match chars.next() {
        Some(c) => c.to_ascii_uppercase().to_string() + chars.as_str(),
        None => String::new(),
    };
    format!("sbc/{os}/{}", env!("CARGO_PKG_VERSION"))
}

/// An IPv4 or IPv6 prefix (`52.112.0.0/14`, `2603:1063::/38`; a bare address
/// is a /32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    addr: IpAddr,
    len: u8,
}

/// Why a CIDR text was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CidrError {
    /// The address part is not an IP address.
    BadAddress(String),
    /// The prefix length is not a number or too long for the address family.
    BadLength(String),
    /// Bits are set after the prefix (`10.0.0.1/8`): probably a typo.
    HostBitsSet(String),
}

impl fmt::Display for CidrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CidrError::BadAddress(s) => write!(f, "{s:?}: not an IP address or prefix"),
            CidrError::BadLength(s) => write!(f, "{s:?}: bad prefix length"),
            CidrError::HostBitsSet(s) => {
                write!(f, "{s:?}: bits set after the prefix length")
            }
        }
    }
}

impl std::error::Error for CidrError {}

fn bits(addr: IpAddr) -> (u128, u8) {
    match addr {
        IpAddr::V4(a) => (u128::from(u32::from(a)), 32),
        IpAddr::V6(a) => (u128::from(a), 128),
    }
}

fn mask(len: u8, width: u8) -> u128 {
    if len == 0 {
        0
    } else {
        let all = if width == 32 {
            u128::from(u32::MAX)
        } else {
            u128::MAX
        };
        all & !((1u128 << (width - len)) - 1)
    }
}

impl Cidr {
    /// The range of one address (/32, /128; IPv4-mapped IPv6 as IPv4).
    pub fn host(ip: IpAddr) -> Cidr {
        let addr = ip.to_canonical();
        let len = if addr.is_ipv4() { 32 } else { 128 };
        Cidr { addr, len }
    }

    /// Parses `ADDR/LEN` or a bare address.
    pub fn parse(s: &str) -> Result<Cidr, CidrError> {
        let (a, l) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let addr: IpAddr = a
            .trim()
            .parse()
            .map_err(|_| CidrError::BadAddress(s.to_owned()))?;
        let (value, width) = bits(addr);
        let len = match l {
            None => width,
            Some(l) => l
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|&n| n <= width)
                .ok_or_else(|| CidrError::BadLength(s.to_owned()))?,
        };
        if value & !mask(len, width) != 0 {
            return Err(CidrError::HostBitsSet(s.to_owned()));
        }
        Ok(Cidr { addr, len })
    }

    /// True when `ip` is inside the prefix (an IPv4-mapped IPv6 address
    /// counts as its IPv4 address).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        let (net, width) = bits(self.addr);
        let (v, w) = bits(ip);
        w == width && (v & mask(self.len, width)) == net
    }

    /// The network address.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length.
    pub fn len(&self) -> u8 {
        self.len
    }

    /// True for a zero-length prefix (`0.0.0.0/0`, `::/0`): every address.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(s: &str) -> Result<Cidr, CidrError> {
        Cidr::parse(s)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// Everything the SBC knows about one trunk.
#[derive(Debug, Clone, PartialEq)]
pub struct TrunkSpec {
    /// The trunk's name (routes and logs refer to it).
    pub name: String,
    /// What is on the other side.
    pub kind: TrunkKind,
    /// Our FQDN toward this trunk: Contact and Via host (unless
    /// `contact_host` says otherwise), From host of our OPTIONS, and the
    /// name in our certificate (the Teams and ACS FQDNs differ).
    pub fqdn: String,
    /// Our IP address in Contact and Via instead of `fqdn`: many carriers
    /// want one. Never for Teams and ACS, which answer 403 to an IP in
    /// Contact (the configuration loader refuses it there).
    pub contact_host: Option<IpAddr>,
    /// The port written in our Contact and Via (5061 for TLS).
    pub local_port: u16,
    /// Transport of our Contact, and of peers that do not set one.
    pub transport: Transport,
    /// Transports the trunk's peers may use (RFC 3261 §18: every element
    /// does UDP and TCP). Inbound, a message over any of them (or over
    /// `transport` or a peer's) classifies to the trunk; outbound, a request
    /// too large for UDP goes over TCP when TCP is one of them (§18.1.1).
    /// Teams and ACS: TLS only; carriers and gateways: UDP and TCP.
    pub transports: Vec<Transport>,
    /// Name of the `[tls.NAME]` profile used as client identity toward the trunk.
    pub tls: Option<String>,
    /// Peers in the order they are tried (Teams: sip, sip2, sip3).
    pub peers: Vec<PeerSpec>,
    /// Source ranges accepted inbound; empty: only the peers' `addr`.
    pub acl: Vec<Cidr>,
    /// Inbound TLS: the peer certificate must carry one of these names.
    pub peer_names: Vec<String>,
    /// Inbound only on these local listener addresses; empty: any.
    pub listen: Vec<SocketAddr>,
    /// OPTIONS keepalive and health.
    pub options: OptionsSpec,
    /// Final responses on which a call moves to the next peer/destination.
    pub failover_codes: Vec<u16>,
    /// No provisional response within this → fail over.
    pub invite_timeout: Duration,
    /// Normalisation of the numbers of calls arriving from this trunk.
    pub numbers_in: routing::Normaliser,
    /// Normalisation of the numbers of calls sent to this trunk.
    pub numbers_out: routing::Normaliser,
    /// Numbers toward this trunk are `+E.164` with `;user=phone`.
    pub e164: bool,
    /// Codec encoding names kept in SDP toward this trunk, in order
    /// (case-insensitive); empty: all.
    pub codecs: Vec<String>,
    /// RTP or SRTP on this trunk's leg.
    pub media: MediaSecurity,
    /// Name of the media relay interface for this trunk's leg; `None`: the first.
    pub media_interface: Option<String>,
    /// Header policy.
    pub headers: HeaderPolicy,
    /// Most concurrent calls on the trunk; `None`: no limit.
    pub max_calls: Option<u32>,
    /// Most new calls per second on the trunk, both directions together (a
    /// token bucket with a burst of `max(1, max_cps)`); `None`: no limit.
    /// Emergency calls are never refused for it.
    pub max_cps: Option<u32>,
    /// Called numbers (after `numbers_in`) that make a call from this
    /// trunk an emergency call, matched exactly: the configuration's
    /// `[emergency] numbers` and the trunk's own additions.
    pub emergency: Vec<String>,
    /// Ringback toward callers arriving over this trunk.
    pub ringback: Ringback,
    /// 100rel, UPDATE, Timer C and session timers ([`crate::Interop`]).
    pub interop: crate::Interop,
    /// How DTMF reaches the trunk's party.
    pub dtmf: DtmfMode,
    /// T.38 fax (`m=image … udptl t38` re-INVITEs) to and from the trunk:
    /// true for carriers, gateways and phones, never for Teams and ACS
    /// (SRTP legs cannot carry UDPTL). A T.38 offer from or toward a trunk
    /// without it is refused with 488.
    pub t38: bool,
}

/// The emergency numbers every trunk has unless the configuration says
/// otherwise: 911 (North America), 112 (Europe, GSM), 999 (UK).
pub const DEFAULT_EMERGENCY_NUMBERS: [&str; 3] = ["911", "112", "999"];

/// The default failover codes: 408, 503, 504.
pub const DEFAULT_FAILOVER_CODES: [u16; 3] = [408, 503, 504];

impl TrunkSpec {
    /// A trunk with the defaults of its kind.
    ///
    /// Teams and ACS: TLS on 5061 to `sip`/`sip2`/`sip3.pstnhub.microsoft.com`,
    /// Microsoft's signalling ranges as ACL and proxy names as `peer_names`,
    /// OPTIONS every 60 s, SRTP, E.164, `X-MS-SBC`, Diversion sent as
    /// History-Info (ACS also passes `X-MS-Custom-` headers). Carrier and
    /// gateway: UDP on 5060, no peers, no ACL (only the peers' addresses),
    /// OPTIONS off, RTP, History-Info sent as Diversion.
    /// Phones: as a gateway, but taking UDP, TCP and TLS (its ACL, the
    /// phones' networks, is set by the configuration).
    /// All: failover on 408/503/504; INVITE timeout (to the first response) 2 s
    /// toward Microsoft, 5 s otherwise.
    pub fn new(name: &str, kind: TrunkKind, fqdn: &str) -> TrunkSpec {
        let ms = kind.is_microsoft();
        let phones = kind == TrunkKind::Phones;
        let transport = if ms { Transport::Tls } else { Transport::Udp };
        let port = if ms { 5061 } else { 5060 };
        TrunkSpec {
            name: name.to_owned(),
            kind,
            fqdn: fqdn.to_owned(),
            contact_host: None,
            local_port: port,
            transport,
            transports: if ms {
                vec![Transport::Tls]
            } else if phones {
                vec![Transport::Udp, Transport::Tcp, Transport::Tls]
            } else {
                vec![Transport::Udp, Transport::Tcp]
            },
            tls: None,
            peers: if ms {
                MICROSOFT_PROXIES
                    .iter()
                    .map(|h| PeerSpec {
                        host: (*h).to_owned(),
                        port: 5061,
                        transport: Transport::Tls,
                        addr: None,
                    })
                    .collect()
            } else {
                Vec::new()
            },
            acl: if ms {
                MICROSOFT_SIGNALLING_RANGES
                    .iter()
                    .filter_map(|c| Cidr::parse(c).ok())
                    .collect()
            } else {
                Vec::new()
            },
            peer_names: if ms {
                MICROSOFT_PROXIES.iter().map(|h| (*h).to_owned()).collect()
            } else {
                Vec::new()
            },
            listen: Vec::new(),
            options: OptionsSpec {
                enabled: ms,
                ..OptionsSpec::default()
            },
            failover_codes: DEFAULT_FAILOVER_CODES.to_vec(),
            // Microsoft answers 100 Trying within milliseconds: 2 s of silence
            // means the proxy is gone (a carrier on UDP gets 5 s).
            invite_timeout: Duration::from_secs(if ms { 2 } else { 5 }),
            numbers_in: routing::Normaliser::default(),
            numbers_out: routing::Normaliser::default(),
            e164: ms,
            codecs: Vec::new(),
            media: if ms {
                MediaSecurity::Srtp
            } else {
                MediaSecurity::Rtp
            },
            media_interface: None,
            headers: HeaderPolicy {
                x_ms_sbc: ms.then(default_x_ms_sbc),
                history_info_to_diversion: !ms,
                diversion_to_history_info: ms,
                pass_headers: if kind == TrunkKind::Acs {
                    vec!["X-MS-Custom-".to_owned()]
                } else {
                    Vec::new()
                },
                ..HeaderPolicy::default()
            },
            max_calls: None,
            max_cps: None,
            emergency: DEFAULT_EMERGENCY_NUMBERS.map(str::to_owned).to_vec(),
            ringback: Ringback::Pass,
            interop: crate::Interop::for_kind(ms),
            dtmf: DtmfMode::Rfc4733,
            t38: !ms,
        }
    }

    /// The host of our Contact and Via toward this trunk: `contact_host`
    /// when set (an IPv6 address in brackets), else `fqdn`.
    pub fn local_host(&self) -> String {
        match self.contact_host {
            Some(ip) => bracket(&ip.to_string()),
            None => bracket(&self.fqdn),
        }
    }

    /// Our Contact toward this trunk without user part:
    /// `<sip:{host}:{local_port};transport={t}>`, `host` being
    /// [`TrunkSpec::local_host`].
    pub fn contact(&self) -> String {
        format!(
            "<sip:{}:{};transport={}>",
            self.local_host(),
            self.local_port,
            transport_param(self.transport)
        )
    }

    /// Our Contact toward this trunk with a user part (for example the
    /// caller's `+E.164` number): `<sip:{user}@{host}:{local_port};transport={t}>`.
    pub fn contact_with_user(&self, user: &str) -> String {
        format!(
            "<sip:{user}@{}:{};transport={}>",
            self.local_host(),
            self.local_port,
            transport_param(self.transport)
        )
    }

    /// Our Via sent-by toward peer `peer` (transport and host:port, no
    /// parameters): `SIP/2.0/TLS {host}:{local_port}`.
    pub fn via_sent_by(&self, peer: usize) -> String {
        let t = self.peers.get(peer).map_or(self.transport, |p| p.transport);
        format!(
            "SIP/2.0/{} {}:{}",
            t.as_str(),
            self.local_host(),
            self.local_port
        )
    }

    /// True when the trunk's peers may use transport `t`: one of
    /// `transports`, the trunk's `transport`, or a peer's.
    pub fn takes(&self, t: Transport) -> bool {
        self.transports.contains(&t)
            || self.transport == t
            || self.peers.iter().any(|p| p.transport == t)
    }

    /// True when `code` is one of this trunk's failover codes.
    pub fn is_failover_code(&self, code: u16) -> bool {
        self.failover_codes.contains(&code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_contains_v4_and_v6() {
        let c = Cidr::parse("52.112.0.0/14").unwrap();
        assert!(c.contains("52.112.0.1".parse().unwrap()));
        assert!(c.contains("52.115.255.255".parse().unwrap()));
        assert!(!c.contains("52.116.0.0".parse().unwrap()));
        assert!(!c.contains("2001:db8::1".parse().unwrap()));
        assert!(c.contains("::ffff:52.114.75.24".parse().unwrap()));
        let c = Cidr::parse("2603:1063::/38").unwrap();
        assert!(c.contains("2603:1063:1:2::5".parse().unwrap()));
        assert!(!c.contains("2603:1064::1".parse().unwrap()));
        assert_eq!(c.to_string(), "2603:1063::/38");
        let any = Cidr::parse("0.0.0.0/0").unwrap();
        assert!(any.is_empty() && any.contains("203.0.113.9".parse().unwrap()));
        let one = Cidr::parse("127.0.0.1").unwrap();
        assert_eq!(one.len(), 32);
        assert!(one.contains("127.0.0.1".parse().unwrap()));
        assert!(!one.contains("127.0.0.2".parse().unwrap()));
    }

    #[test]
    fn bad_cidr_is_refused() {
        assert!(matches!(
            Cidr::parse("52.112.0.0/33"),
            Err(CidrError::BadLength(_))
        ));
        assert!(matches!(
            Cidr::parse("52.112.0/14"),
            Err(CidrError::BadAddress(_))
        ));
        assert!(matches!(
            Cidr::parse("10.0.0.1/8"),
            Err(CidrError::HostBitsSet(_))
        ));
        assert!(matches!(Cidr::parse("::/x"), Err(CidrError::BadLength(_))));
    }

    #[test]
    fn microsoft_defaults_follow_direct_routing() {
        let t = TrunkSpec::new("teams", TrunkKind::Teams, "sbc1.contoso.com");
        assert_eq!(t.transport, Transport::Tls);
        assert_eq!(t.local_port, 5061);
        assert_eq!(t.peers.len(), 3);
        assert_eq!(t.peers[1].host, "sip2.pstnhub.microsoft.com");
        assert!(t.options.enabled);
        assert_eq!(t.options.interval, Duration::from_secs(60));
        assert_eq!(t.media, MediaSecurity::Srtp);
        assert!(t.e164);
        assert_eq!(t.failover_codes, vec![408, 503, 504]);
        assert!(t.acl[0].contains("52.114.75.24".parse().unwrap()));
        assert!(t.headers.x_ms_sbc.as_deref().unwrap().starts_with("sbc/"));
        assert_eq!(
            t.contact(),
            "<sip:sbc1.contoso.com:5061;transport=tls>".to_owned()
        );
        assert_eq!(
            t.contact_with_user("+4930123"),
            "<sip:+4930123@sbc1.contoso.com:5061;transport=tls>".to_owned()
        );
        assert_eq!(t.via_sent_by(0), "SIP/2.0/TLS sbc1.contoso.com:5061");
        assert_eq!(
            t.peers[0].uri(),
            "sip:sip.pstnhub.microsoft.com:5061;transport=tls"
        );
        assert!(t.headers.diversion_to_history_info && !t.headers.history_info_to_diversion);
        let a = TrunkSpec::new("acs", TrunkKind::Acs, "sbc.acs.contoso.com");
        assert!(a.headers.passes("x-ms-custom-reroute"));
        assert!(!a.headers.passes("X-Other"));
    }

    #[test]
    fn carrier_defaults_are_plain() {
        let c = TrunkSpec::new("carrier", TrunkKind::Carrier, "sbc.example.com");
        assert_eq!(c.transport, Transport::Udp);
        assert!(c.peers.is_empty() && c.acl.is_empty());
        assert!(!c.options.enabled);
        assert_eq!(c.media, MediaSecurity::Rtp);
        assert!(!c.e164);
        assert!(c.headers.x_ms_sbc.is_none());
        assert!(c.headers.history_info_to_diversion && !c.headers.diversion_to_history_info);
        assert_eq!(c.contact(), "<sip:sbc.example.com:5060;transport=udp>");
        assert_eq!(c.transports, [Transport::Udp, Transport::Tcp]);
        assert!(c.takes(Transport::Tcp) && !c.takes(Transport::Tls));
        let t = TrunkSpec::new("teams", TrunkKind::Teams, "sbc1.contoso.com");
        assert_eq!(t.transports, [Transport::Tls]);
        assert!(!t.takes(Transport::Tcp) && !t.takes(Transport::Udp));
    }

    #[test]
    fn contact_host_puts_our_ip_in_contact_and_via() {
        let mut c = TrunkSpec::new("carrier", TrunkKind::Carrier, "sbc.example.com");
        c.contact_host = Some("203.0.113.10".parse().unwrap());
        assert_eq!(c.local_host(), "203.0.113.10");
        assert_eq!(c.contact(), "<sip:203.0.113.10:5060;transport=udp>");
        assert_eq!(
            c.contact_with_user("0301234"),
            "<sip:0301234@203.0.113.10:5060;transport=udp>"
        );
        assert_eq!(c.via_sent_by(0), "SIP/2.0/UDP 203.0.113.10:5060");
        c.contact_host = Some("2001:db8::10".parse().unwrap());
        assert_eq!(c.contact(), "<sip:[2001:db8::10]:5060;transport=udp>");
        assert_eq!(c.via_sent_by(0), "SIP/2.0/UDP [2001:db8::10]:5060");
    }
}
