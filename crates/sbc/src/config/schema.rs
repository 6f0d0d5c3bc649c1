//! The raw TOML schema: what `serde` reads, unknown fields refused. Values
//! whose place matters in an error are `Spanned`; nothing here is checked
//! beyond types (the sibling modules do that).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

pub(crate) use super::protect::ProtectSection;

/// `[emergency]`: the called numbers (after a trunk's inbound
/// normalisation) that make a call an emergency call on every trunk.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct EmergencySection {
    /// Default `["911", "112", "999"]`; `[]`: only `sos` URNs and the
    /// trunks' own `emergency` numbers.
    pub(crate) numbers: Option<Spanned<Vec<Spanned<String>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Config {
    pub(crate) sbc: SbcSection,
    #[serde(default)]
    pub(crate) sip: SipSection,
    #[serde(default)]
    pub(crate) listen: Vec<Listen>,
    #[serde(default)]
    pub(crate) tls: BTreeMap<String, TlsSection>,
    #[serde(default)]
    pub(crate) limits: LimitsSection,
    #[serde(default)]
    pub(crate) log: LogSection,
    #[serde(default)]
    pub(crate) drain: DrainSection,
    #[serde(default)]
    pub(crate) media: MediaSection,
    #[serde(default)]
    pub(crate) dns: DnsSection,
    /// Emergency numbers every trunk has (trunks add their own).
    #[serde(default)]
    pub(crate) emergency: EmergencySection,
    /// Protection independent of trunks.
    #[serde(default)]
    pub(crate) protect: ProtectSection,
    #[serde(default, rename = "trunk")]
    pub(crate) trunks: Vec<TrunkSection>,
    #[serde(default, rename = "route")]
    pub(crate) routes: Vec<RouteSection>,
    /// Registered phones: the registrar of the `phones` trunks.
    pub(crate) phones: Option<Spanned<PhonesSection>>,
    /// The operations endpoint (`/health`, `/ready`, `/metrics`, the
    /// status page); off without the section.
    pub(crate) http: Option<Spanned<HttpSection>>,
}

/// `[http]`: where the read-only operations endpoint listens.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct HttpSection {
    /// On unless `false` (the section itself turns it on).
    pub(crate) enabled: bool,
    /// `IP:port`; loopback by default. Port 0 picks one.
    pub(crate) addr: Spanned<String>,
    /// Bearer token `/metrics` and `/status.json` require; mandatory when
    /// `addr` is not a loopback address.
    pub(crate) token: Option<Spanned<String>>,
    /// Show whole phone numbers on the status page (default: the last 4
    /// digits only).
    pub(crate) show_numbers: bool,
}

impl Default for HttpSection {
    fn default() -> Self {
        HttpSection {
            enabled: true,
            addr: Spanned::new(0..0, "127.0.0.1:9090".to_owned()),
            token: None,
            show_numbers: false,
        }
    }
}

/// `[phones]`: who may register (the users file), for how long, where
/// registrations are kept, and when a source is blocked.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PhonesSection {
    /// The users file (TOML: number, username, password or HA1s).
    pub(crate) users: Spanned<PathBuf>,
    /// Digest realm (default: `[sbc] fqdn`).
    pub(crate) realm: Option<Spanned<String>>,
    /// Where registrations are kept: `"redb"` (a file under `data_dir`,
    /// the default), `"memory"`, or `"redis://host:port/db"` (shared by
    /// several SBCs).
    pub(crate) store: Option<Spanned<String>>,
    /// Directory of the redb store (default `data`, relative to the
    /// working directory; the package uses `/var/lib/sbc`).
    pub(crate) data_dir: Option<Spanned<PathBuf>>,
    pub(crate) default_expires_s: Option<Spanned<u32>>,
    pub(crate) min_expires_s: Option<Spanned<u32>>,
    pub(crate) max_expires_s: Option<Spanned<u32>>,
    pub(crate) max_contacts: Option<Spanned<usize>>,
    pub(crate) nonce_lifetime_s: Option<Spanned<u64>>,
    /// Failed authentications that block a source, and for how long.
    pub(crate) protect: Option<PhonesProtectSection>,
}

/// `[phones.protect]`: the registrar's blocking of guessing sources.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PhonesProtectSection {
    pub(crate) max_failures_per_ip: Option<Spanned<u32>>,
    pub(crate) max_failures_per_user: Option<Spanned<u32>>,
    pub(crate) window_s: Option<Spanned<u64>>,
    pub(crate) block_s: Option<Spanned<u64>>,
    /// `"drop"` (no answer) or `"forbidden"` (403).
    pub(crate) action: Option<Spanned<BlockName>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum BlockName {
    Drop,
    Forbidden,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SbcSection {
    /// The SBC's FQDN: Contact host (Microsoft refuses an IP), certificate name.
    pub(crate) fqdn: Spanned<String>,
    /// `Server` / `User-Agent` header value.
    #[serde(default = "default_agent")]
    pub(crate) user_agent: String,
    /// The control socket `sbc reload` talks to (see `crate::control`).
    pub(crate) control_socket: Option<Spanned<PathBuf>>,
}

pub(super) fn default_agent() -> String {
    format!("sbc/{}", env!("CARGO_PKG_VERSION"))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct SipSection {
    pub(crate) t1_ms: Spanned<u64>,
    pub(crate) t2_ms: Spanned<u64>,
    pub(crate) t4_ms: Spanned<u64>,
    pub(crate) max_message_size: Spanned<usize>,
    /// Option tags accepted in Require (others: 420) and advertised in
    /// Supported; a subset of those the SBC implements
    /// ([`sip::DEFAULT_SUPPORTED`]).
    pub(crate) supported: Vec<Spanned<String>>,
}

impl Default for SipSection {
    fn default() -> Self {
        SipSection {
            t1_ms: Spanned::new(0..0, 500),
            t2_ms: Spanned::new(0..0, 4000),
            t4_ms: Spanned::new(0..0, 5000),
            max_message_size: Spanned::new(0..0, 65_535),
            supported: sip::DEFAULT_SUPPORTED
                .iter()
                .map(|s| Spanned::new(0..0, (*s).to_owned()))
                .collect(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum TransportName {
    Udp,
    Tcp,
    Tls,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Listen {
    pub(crate) transport: TransportName,
    pub(crate) addr: Spanned<String>,
    /// Name of a `[tls.NAME]` profile (TLS listeners only).
    pub(crate) tls: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Identity {
    pub(crate) cert: Spanned<PathBuf>,
    pub(crate) key: Spanned<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TlsSection {
    /// Certificate/key pairs; the first is the default and the client certificate.
    pub(crate) identities: Vec<Identity>,
    pub(crate) ca: Option<Spanned<PathBuf>>,
    #[serde(default)]
    pub(crate) require_client_cert: bool,
    #[serde(default)]
    pub(crate) peer_names: Vec<String>,
    #[serde(default)]
    pub(crate) versions: Vec<String>,
    #[serde(default)]
    pub(crate) cipher_suites: Vec<String>,
    #[serde(default)]
    pub(crate) kx_groups: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct LimitsSection {
    pub(crate) idle_timeout_s: u64,
    pub(crate) handshake_timeout_s: u64,
    pub(crate) assembly_timeout_s: u64,
    pub(crate) max_connections: usize,
    pub(crate) max_connections_per_source: usize,
    pub(crate) max_tls_handshakes: usize,
    pub(crate) keepalive_interval_s: u64,
}

impl Default for LimitsSection {
    fn default() -> Self {
        let d = transport::Limits::default();
        LimitsSection {
            idle_timeout_s: d.idle_timeout.as_secs(),
            handshake_timeout_s: d.handshake_timeout.as_secs(),
            assembly_timeout_s: d.assembly_timeout.as_secs(),
            max_connections: d.max_connections,
            max_connections_per_source: d.max_connections_per_source,
            max_tls_handshakes: d.max_handshakes,
            keepalive_interval_s: d.keepalive_interval.as_secs(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct LogSection {
    /// tracing filter (`info`, `sbc=debug,transport=info`, …); `RUST_LOG` overrides.
    pub(crate) level: String,
    /// Most log lines per second about bad input; the rest are counted.
    pub(crate) bad_input_per_second: u32,
    /// `text` (the default) or `json` (one JSON object per line).
    pub(crate) format: Spanned<String>,
    /// Phone numbers in log lines show their last 4 digits only (the
    /// default); `false` logs them whole. CDRs always carry them whole.
    pub(crate) mask_numbers: bool,
}

impl Default for LogSection {
    fn default() -> Self {
        LogSection {
            level: "info".into(),
            bad_input_per_second: 10,
            format: Spanned::new(0..0, "text".to_owned()),
            mask_numbers: true,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct DrainSection {
    /// On SIGTERM, wait at most this long for transactions to finish.
    pub(crate) max_wait_s: u64,
}

impl Default for DrainSection {
    fn default() -> Self {
        DrainSection { max_wait_s: 40 }
    }
}

/// `[dns]`: how trunk peers without an `addr` are resolved (RFC 3263).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct DnsSection {
    /// Name servers (`IP` or `IP:port`); empty: the system's (`/etc/resolv.conf`).
    pub(crate) servers: Vec<Spanned<String>>,
    /// Shortest time between two lookups of a name that resolves (a TTL of 0).
    pub(crate) min_refresh_s: Spanned<u64>,
    /// Longest time an answer is used without asking again (a long TTL).
    pub(crate) max_refresh_s: Spanned<u64>,
}

impl Default for DnsSection {
    fn default() -> Self {
        let r = transport::Refresh::default();
        DnsSection {
            servers: Vec::new(),
            min_refresh_s: Spanned::new(0..0, r.min.as_secs()),
            max_refresh_s: Spanned::new(0..0, r.max.as_secs()),
        }
    }
}

/// `[media]`: the relay inside `sbc run`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct MediaSection {
    /// `[NAME/]IP[!ADVERTISED-IP]`; the first is the default interface.
    pub(crate) interfaces: Vec<Spanned<String>>,
    pub(crate) port_min: Spanned<u16>,
    pub(crate) port_max: Spanned<u16>,
    /// Relay worker threads (0: one per core).
    pub(crate) workers: usize,
    /// Seconds without media after which a call's media is considered dead.
    pub(crate) inactivity_s: Spanned<u64>,
    /// Worker socket I/O: "uring" (io_uring, the default) or "epoll".
    pub(crate) io: Spanned<String>,
    /// Share of the port pairs kept for emergency calls (percent).
    pub(crate) emergency_reserve_percent: Spanned<u8>,
    /// The tone of trunks with `ringback = "local"` that name none.
    pub(crate) ringback_tone: Spanned<String>,
    /// Tones of one's own, by name (beside and over the built-in ones).
    pub(crate) tones: BTreeMap<String, Spanned<ToneSection>>,
}

/// `[media.tones.NAME]`: one or two frequencies and an on/off cadence.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ToneSection {
    /// Hz, one or two.
    pub(crate) freqs: Vec<u16>,
    /// On, off, on, off… in ms; empty or absent: continuous.
    #[serde(default)]
    pub(crate) cadence_ms: Vec<u32>,
}

impl Default for MediaSection {
    fn default() -> Self {
        MediaSection {
            interfaces: vec![Spanned::new(0..0, "127.0.0.1".to_owned())],
            port_min: Spanned::new(0..0, 40_000),
            port_max: Spanned::new(0..0, 49_999),
            workers: 0,
            inactivity_s: Spanned::new(0..0, 60),
            io: Spanned::new(0..0, "uring".to_owned()),
            emergency_reserve_percent: Spanned::new(0..0, 5),
            ringback_tone: Spanned::new(0..0, "eu".to_owned()),
            tones: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum KindName {
    Carrier,
    Teams,
    Acs,
    Gateway,
    Phones,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum PrackName {
    Off,
    Supported,
    Required,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RefresherName {
    Sbc,
    Peer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum MediaName {
    Rtp,
    Srtp,
}

/// `ringback` of a trunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RingbackName {
    Pass,
    Local,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum DtmfName {
    Rfc4733,
    Info,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum PaiName {
    Pass,
    Strip,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum AppliesName {
    Called,
    Calling,
    Both,
}

/// `[[trunk]]`. Unset fields take the defaults of the trunk's kind.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TrunkSection {
    pub(crate) name: Spanned<String>,
    pub(crate) kind: Spanned<KindName>,
    pub(crate) fqdn: Option<Spanned<String>>,
    /// Our IP address in Contact and Via instead of the FQDN (carriers,
    /// gateways).
    pub(crate) contact_host: Option<Spanned<String>>,
    pub(crate) local_port: Option<Spanned<u16>>,
    pub(crate) transport: Option<Spanned<TransportName>>,
    /// Transports the trunk's peers may use (inbound classification; a
    /// large request goes over TCP when TCP is one of them).
    pub(crate) transports: Option<Spanned<Vec<Spanned<TransportName>>>>,
    pub(crate) tls: Option<Spanned<String>>,
    pub(crate) peers: Option<Spanned<Vec<PeerSection>>>,
    pub(crate) acl: Option<Vec<Spanned<String>>>,
    pub(crate) peer_names: Option<Vec<Spanned<String>>>,
    pub(crate) listen: Option<Vec<Spanned<String>>>,
    pub(crate) options: Option<OptionsSection>,
    pub(crate) failover_codes: Option<Vec<Spanned<u16>>>,
    pub(crate) invite_timeout_s: Option<Spanned<u64>>,
    pub(crate) numbers: Option<NumbersSection>,
    pub(crate) e164: Option<bool>,
    pub(crate) codecs: Option<Vec<Spanned<String>>>,
    pub(crate) media: Option<Spanned<MediaName>>,
    pub(crate) media_interface: Option<Spanned<String>>,
    pub(crate) headers: Option<HeadersSection>,
    pub(crate) max_calls: Option<Spanned<u32>>,
    /// New calls per second, both directions (emergency calls exempt).
    pub(crate) max_cps: Option<Spanned<u32>>,
    /// Emergency numbers of this trunk beside `[emergency] numbers`.
    pub(crate) emergency: Option<Vec<Spanned<String>>>,
    /// What callers from this trunk hear while the callee rings without
    /// SDP: `"pass"` (the 180 goes on) or `"local"` (our 183 and tone).
    pub(crate) ringback: Option<Spanned<RingbackName>>,
    /// The tone of `ringback = "local"` (default `[media] ringback_tone`).
    pub(crate) ringback_tone: Option<Spanned<String>>,
    /// Reliable provisional responses (RFC 3262): off, supported, required.
    pub(crate) prack: Option<Spanned<PrackName>>,
    /// The trunk's peers take UPDATE (RFC 3311).
    pub(crate) update: Option<Spanned<bool>>,
    /// Timer C (RFC 3261 §16.6), seconds.
    pub(crate) provisional_timeout_s: Option<Spanned<u64>>,
    /// The session interval the SBC asks for on this trunk (RFC 4028); 0: off.
    pub(crate) session_timer_s: Option<Spanned<u32>>,
    /// Who refreshes the session the SBC asks for: sbc or peer.
    pub(crate) session_refresher: Option<Spanned<RefresherName>>,
    /// The smallest session interval accepted (Min-SE), seconds.
    pub(crate) min_se_s: Option<Spanned<u32>>,
    /// DTMF toward the trunk: RFC 4733 in the media, or SIP INFO.
    pub(crate) dtmf: Option<Spanned<DtmfName>>,
    /// T.38 fax re-INVITEs to and from the trunk.
    pub(crate) t38: Option<Spanned<bool>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PeerSection {
    pub(crate) host: Spanned<String>,
    pub(crate) port: Option<Spanned<u16>>,
    pub(crate) transport: Option<Spanned<TransportName>>,
    /// Connect here instead of resolving `host` (`IP:port`).
    pub(crate) addr: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OptionsSection {
    pub(crate) enabled: Option<Spanned<bool>>,
    pub(crate) interval_s: Option<Spanned<u64>>,
    pub(crate) timeout_s: Option<Spanned<u64>>,
    pub(crate) up_after: Option<Spanned<u32>>,
    pub(crate) down_after: Option<Spanned<u32>>,
    pub(crate) failure_codes: Option<Vec<Spanned<u16>>>,
    /// The longest a 503 with Retry-After holds a peer down.
    pub(crate) max_hold_s: Option<Spanned<u64>>,
    /// With OPTIONS off, a down peer is tried again this long after its
    /// last failure.
    pub(crate) retry_interval_s: Option<Spanned<u64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct NumbersSection {
    pub(crate) inbound: Vec<RuleSection>,
    pub(crate) outbound: Vec<RuleSection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RuleSection {
    #[serde(rename = "match")]
    pub(crate) pattern: Spanned<String>,
    pub(crate) replace: Spanned<String>,
    pub(crate) applies: Option<AppliesName>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HeadersSection {
    /// `""` switches the header off.
    pub(crate) x_ms_sbc: Option<Spanned<String>>,
    pub(crate) pai: Option<PaiName>,
    pub(crate) history_info_to_diversion: Option<bool>,
    pub(crate) diversion_to_history_info: Option<bool>,
    pub(crate) pass: Option<Vec<Spanned<String>>>,
    pub(crate) user_agent: Option<Spanned<String>>,
}

/// `[[route]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RouteSection {
    pub(crate) name: Spanned<String>,
    #[serde(default)]
    pub(crate) from: Vec<Spanned<String>>,
    pub(crate) called: Option<Spanned<String>>,
    pub(crate) to: Spanned<Vec<Spanned<DestSection>>>,
    /// Label of every destination but the first (default `Fail-over`;
    /// `""`: none); a destination's own `label` wins.
    pub(crate) label: Option<Spanned<String>>,
    /// Forward-on-failure to an external number.
    pub(crate) forward: Option<Spanned<ForwardSection>>,
}

/// `[route.forward]`: when no destination began handling the call within
/// `window_s` (or all failed sooner), call `number` through `trunk`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ForwardSection {
    pub(crate) trunk: Spanned<String>,
    pub(crate) number: Spanned<String>,
    pub(crate) window_s: Spanned<f64>,
    pub(crate) ring_timeout_s: Option<Spanned<f64>>,
    pub(crate) label: Option<String>,
}

/// A destination: `"teams"` or `{ trunk = "acs", label = "Fail-over" }`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum DestSection {
    Name(String),
    Table(DestTable),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DestTable {
    pub(crate) trunk: String,
    pub(crate) label: Option<String>,
    /// An external number (E.164) called through the trunk instead of the
    /// called number.
    pub(crate) number: Option<String>,
    /// Through a `phones` trunk: the called number as a registered user.
    pub(crate) registered: Option<bool>,
    /// Through a `phones` trunk: this registered user (E.164), whatever
    /// number was called.
    pub(crate) user: Option<String>,
}
