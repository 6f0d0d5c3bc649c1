//! The configuration file (TOML, unknown fields refused) and its checks.
//! Every error names the file, the line and the field.
//!
//! Relative paths (certificates, keys, CA bundles) are relative to the
//! working directory of the process.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustls_pki_types::CertificateDer;
use serde::Deserialize;
use toml::Spanned;

/// The embedded default: loopback only, development certificates in `certs/dev/`.
pub(crate) const DEMO: &str = include_str!("../../../sbc-config/demo.toml");

/// Where the embedded default says the development PKI lives.
pub(crate) const DEMO_CERT_DIR: &str = "certs/dev";

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
    #[serde(default, rename = "trunk")]
    pub(crate) trunks: Vec<TrunkSection>,
    #[serde(default, rename = "route")]
    pub(crate) routes: Vec<RouteSection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SbcSection {
    /// The SBC's FQDN: Contact host (Microsoft refuses an IP), certificate name.
    pub(crate) fqdn: Spanned<String>,
    /// `Server` / `User-Agent` header value.
    #[serde(default = "default_agent")]
    pub(crate) user_agent: String,
}

fn default_agent() -> String {
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
}

impl Default for LogSection {
    fn default() -> Self {
        LogSection {
            level: "info".into(),
            bad_input_per_second: 10,
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

/// The checked `[dns]` section.
#[derive(Debug, Clone)]
pub(crate) struct DnsSettings {
    pub(crate) servers: Vec<SocketAddr>,
    pub(crate) refresh: transport::Refresh,
}

fn check_dns(ctx: &Ctx<'_>, d: &DnsSection) -> Result<DnsSettings, ConfigError> {
    let mut servers = Vec::new();
    for (i, s) in d.servers.iter().enumerate() {
        let text = s.get_ref();
        let addr = text
            .parse::<SocketAddr>()
            .or_else(|_| {
                text.parse::<std::net::IpAddr>()
                    .map(|ip| SocketAddr::new(ip, 53))
            })
            .map_err(|_| {
                ctx.err(
                    Some(&s.span()),
                    &format!("dns.servers[{i}]"),
                    format!("{text:?}: expected IP or IP:port"),
                )
            })?;
        servers.push(addr);
    }
    let (min, max) = (*d.min_refresh_s.get_ref(), *d.max_refresh_s.get_ref());
    if !(1..=86_400).contains(&min) {
        return Err(ctx.err(
            Some(&d.min_refresh_s.span()),
            "dns.min_refresh_s",
            "must be between 1 and 86400",
        ));
    }
    if !(min..=86_400).contains(&max) {
        return Err(ctx.err(
            Some(&d.max_refresh_s.span()),
            "dns.max_refresh_s",
            "must be between dns.min_refresh_s and 86400",
        ));
    }
    Ok(DnsSettings {
        servers,
        refresh: transport::Refresh {
            min: Duration::from_secs(min),
            max: Duration::from_secs(max),
            ..transport::Refresh::default()
        },
    })
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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum MediaName {
    Rtp,
    Srtp,
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
    pub(crate) local_port: Option<Spanned<u16>>,
    pub(crate) transport: Option<Spanned<TransportName>>,
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
}

/// The default label of a route's non-first destinations.
const DEFAULT_LABEL: &str = "Fail-over";

fn is_e164(n: &str) -> bool {
    let d = n.strip_prefix('+').unwrap_or("");
    (2..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()) && !d.starts_with('0')
}

fn label_problem(l: &str) -> Option<&'static str> {
    l.chars()
        .any(|c| c.is_control() || c == '"')
        .then_some("must not contain control characters or '\"' (it goes into a display name)")
}

/// The media relay settings of `sbc run`, checked.
#[derive(Debug, Clone)]
pub(crate) struct MediaSettings {
    /// `[NAME/]IP[!ADVERTISED-IP]` strings (each parses with `relay::Interface::parse`).
    pub(crate) interfaces: Vec<String>,
    pub(crate) port_min: u16,
    pub(crate) port_max: u16,
    pub(crate) workers: usize,
    pub(crate) inactivity: Duration,
    pub(crate) io: relay::Io,
}

/// A configuration error: file, line, field, message.
#[derive(Debug)]
pub(crate) struct ConfigError {
    file: String,
    line: Option<usize>,
    field: String,
    msg: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
        }
        if !self.field.is_empty() {
            write!(f, ": {}", self.field)?;
        }
        write!(f, ": {}", self.msg)
    }
}

impl std::error::Error for ConfigError {}

/// A loaded, checked configuration.
#[derive(Debug)]
#[allow(dead_code)] // `warnings`: for the runtime and `sbc check` to print
pub(crate) struct Loaded {
    pub(crate) config: Config,
    pub(crate) source: String,
    pub(crate) text: String,
    pub(crate) listeners: Vec<(transport::Transport, SocketAddr, Option<String>)>,
    /// Trunks, in configured order (indexes used by the classifier and health).
    pub(crate) trunks: Vec<trunk::TrunkSpec>,
    /// The routing table.
    pub(crate) routes: routing::Table,
    /// The media relay settings.
    pub(crate) media: MediaSettings,
    /// How trunk peers are resolved.
    pub(crate) dns: DnsSettings,
    /// Things worth fixing that do not stop the SBC (`FILE:LINE: FIELD: message`),
    /// such as a certificate file not there yet whose names could not be checked.
    pub(crate) warnings: Vec<String>,
}

struct Ctx<'a> {
    file: &'a str,
    text: &'a str,
}

impl Ctx<'_> {
    fn line(&self, span: &Range<usize>) -> Option<usize> {
        if span.start == 0 && span.end == 0 {
            return None;
        }
        Some(
            self.text[..span.start.min(self.text.len())]
                .matches('\n')
                .count()
                + 1,
        )
    }

    fn err(&self, span: Option<&Range<usize>>, field: &str, msg: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.file.to_owned(),
            line: span.and_then(|s| self.line(s)),
            field: field.to_owned(),
            msg: msg.into(),
        }
    }
}

/// Parses and checks a configuration text. `source` names it in errors.
pub(crate) fn parse(text: &str, source: &str) -> Result<Loaded, ConfigError> {
    let ctx = Ctx { file: source, text };
    let config: Config = toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
        ConfigError {
            file: source.to_owned(),
            line,
            field: String::new(),
            msg: e.message().to_owned(),
        }
    })?;
    let fqdn = config.sbc.fqdn.get_ref();
    if fqdn.parse::<std::net::IpAddr>().is_ok() || !fqdn.contains('.') {
        return Err(ctx.err(
            Some(&config.sbc.fqdn.span()),
            "sbc.fqdn",
            format!("{fqdn:?} is not a fully qualified domain name (Teams and ACS refuse an IP in Contact)"),
        ));
    }
    let sip = &config.sip;
    for (v, name) in [
        (&sip.t1_ms, "sip.t1_ms"),
        (&sip.t2_ms, "sip.t2_ms"),
        (&sip.t4_ms, "sip.t4_ms"),
    ] {
        if *v.get_ref() == 0 || *v.get_ref() > 600_000 {
            return Err(ctx.err(Some(&v.span()), name, "must be between 1 and 600000 ms"));
        }
    }
    if sip.t2_ms.get_ref() < sip.t1_ms.get_ref() {
        return Err(ctx.err(
            Some(&sip.t2_ms.span()),
            "sip.t2_ms",
            "must not be smaller than sip.t1_ms",
        ));
    }
    if !(1024..=16 * 1024 * 1024).contains(sip.max_message_size.get_ref()) {
        return Err(ctx.err(
            Some(&sip.max_message_size.span()),
            "sip.max_message_size",
            "must be between 1024 and 16777216",
        ));
    }
    for (i, tag) in sip.supported.iter().enumerate() {
        check_option_tag(&ctx, tag, &format!("sip.supported[{i}]"))?;
    }
    if config.listen.is_empty() {
        return Err(ctx.err(None, "listen", "at least one [[listen]] is required"));
    }
    let mut listeners = Vec::new();
    for (i, l) in config.listen.iter().enumerate() {
        let field = format!("listen[{i}].addr");
        let addr: SocketAddr = l.addr.get_ref().parse().map_err(|e| {
            ctx.err(
                Some(&l.addr.span()),
                &field,
                format!("{:?}: {e} (expected IP:port)", l.addr.get_ref()),
            )
        })?;
        let transport = match l.transport {
            TransportName::Udp => transport::Transport::Udp,
            TransportName::Tcp => transport::Transport::Tcp,
            TransportName::Tls => transport::Transport::Tls,
        };
        let profile = match (&l.tls, transport) {
            (Some(name), transport::Transport::Tls) => {
                if !config.tls.contains_key(name.get_ref()) {
                    return Err(ctx.err(
                        Some(&name.span()),
                        &format!("listen[{i}].tls"),
                        format!("no [tls.{}] profile", name.get_ref()),
                    ));
                }
                Some(name.get_ref().clone())
            }
            (None, transport::Transport::Tls) => {
                return Err(ctx.err(
                    Some(&l.addr.span()),
                    &format!("listen[{i}].tls"),
                    "a TLS listener needs a tls profile name",
                ));
            }
            (Some(name), _) => {
                return Err(ctx.err(
                    Some(&name.span()),
                    &format!("listen[{i}].tls"),
                    "only TLS listeners take a tls profile",
                ));
            }
            (None, _) => None,
        };
        if listeners
            .iter()
            .any(|(t, a, _)| *t == transport && *a == addr)
        {
            return Err(ctx.err(Some(&l.addr.span()), &field, "listed twice"));
        }
        listeners.push((transport, addr, profile));
    }
    for (name, t) in &config.tls {
        if t.identities.is_empty() {
            return Err(ctx.err(
                None,
                &format!("tls.{name}.identities"),
                "at least one certificate/key pair is required",
            ));
        }
        if t.require_client_cert && t.ca.is_none() {
            return Err(ctx.err(
                None,
                &format!("tls.{name}.ca"),
                "require_client_cert needs a CA bundle",
            ));
        }
    }
    let mut warnings = Vec::new();
    let media = check_media(&ctx, &config.media)?;
    let dns = check_dns(&ctx, &config.dns)?;
    let trunks = check_trunks(&ctx, &config, &listeners, &media, &mut warnings)?;
    let routes = check_routes(&ctx, &config.routes, &trunks)?;
    Ok(Loaded {
        config,
        source: source.to_owned(),
        text: text.to_owned(),
        listeners,
        trunks,
        routes,
        media,
        dns,
        warnings,
    })
}

/// An option tag of `[sip] supported` must be one the SBC implements: it is
/// accepted in Require and advertised in Supported, so a peer may rely on it.
fn check_option_tag(ctx: &Ctx<'_>, tag: &Spanned<String>, field: &str) -> Result<(), ConfigError> {
    let t = tag.get_ref();
    if t.eq_ignore_ascii_case("100rel") {
        return Err(ctx.err(
            Some(&tag.span()),
            field,
            "\"100rel\" cannot be supported: PRACK (RFC 3262) is not implemented, so reliable provisional responses would never be acknowledged",
        ));
    }
    if !sip::DEFAULT_SUPPORTED
        .iter()
        .any(|s| s.eq_ignore_ascii_case(t))
    {
        return Err(ctx.err(
            Some(&tag.span()),
            field,
            format!(
                "{t:?} is not an option tag the SBC implements (implemented: {})",
                sip::DEFAULT_SUPPORTED.join(", ")
            ),
        ));
    }
    Ok(())
}

fn check_media(ctx: &Ctx<'_>, m: &MediaSection) -> Result<MediaSettings, ConfigError> {
    if m.interfaces.is_empty() {
        return Err(ctx.err(
            None,
            "media.interfaces",
            "at least one interface is required",
        ));
    }
    let mut names: Vec<String> = Vec::new();
    for (i, s) in m.interfaces.iter().enumerate() {
        let field = format!("media.interfaces[{i}]");
        let iface = relay::Interface::parse(s.get_ref()).map_err(|e| {
            ctx.err(
                Some(&s.span()),
                &field,
                format!("{e} (expected [NAME/]IP[!ADVERTISED-IP])"),
            )
        })?;
        if names.contains(&iface.name) {
            return Err(ctx.err(
                Some(&s.span()),
                &field,
                format!("interface name {:?} used twice", iface.name),
            ));
        }
        names.push(iface.name);
    }
    let (lo, hi) = (*m.port_min.get_ref(), *m.port_max.get_ref());
    if lo < 1024 || lo % 2 == 1 {
        return Err(ctx.err(
            Some(&m.port_min.span()),
            "media.port_min",
            "must be an even port of at least 1024 (RTP on even ports, RTCP on the next)",
        ));
    }
    if hi <= lo {
        return Err(ctx.err(
            Some(&m.port_max.span()),
            "media.port_max",
            "must be larger than media.port_min",
        ));
    }
    if *m.inactivity_s.get_ref() == 0 {
        return Err(ctx.err(
            Some(&m.inactivity_s.span()),
            "media.inactivity_s",
            "must be at least 1",
        ));
    }
    let io =
        m.io.get_ref()
            .parse::<relay::Io>()
            .map_err(|e| ctx.err(Some(&m.io.span()), "media.io", &e))?;
    Ok(MediaSettings {
        interfaces: m.interfaces.iter().map(|s| s.get_ref().clone()).collect(),
        port_min: lo,
        port_max: hi,
        workers: m.workers,
        inactivity: Duration::from_secs(*m.inactivity_s.get_ref()),
        io,
    })
}

fn transport_of(t: TransportName) -> transaction::Transport {
    match t {
        TransportName::Udp => transaction::Transport::Udp,
        TransportName::Tcp => transaction::Transport::Tcp,
        TransportName::Tls => transaction::Transport::Tls,
    }
}

/// Refuses an IP or a single label where a fully qualified name is needed.
fn fqdn_problem(name: &str) -> Option<&'static str> {
    if name.parse::<std::net::IpAddr>().is_ok() {
        return Some("is an IP address, not a fully qualified domain name (Microsoft answers 403 to an IP in Contact)");
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if !name.contains('.') || !name.split('.').all(label_ok) {
        return Some("is not a fully qualified domain name");
    }
    None
}

/// A host in a URI: a domain name or an IP address.
fn host_ok(host: &str) -> bool {
    host.parse::<std::net::IpAddr>().is_ok()
        || (!host.is_empty()
            && host.split('.').all(|l| {
                !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            }))
}

fn compile(
    ctx: &Ctx<'_>,
    re: &Spanned<String>,
    field: &str,
) -> Result<routing::regex::Regex, ConfigError> {
    routing::regex::Regex::new(re.get_ref()).map_err(|e| {
        ctx.err(
            Some(&re.span()),
            field,
            format!("bad regular expression {:?}: {e}", re.get_ref()),
        )
    })
}

fn status_codes(
    ctx: &Ctx<'_>,
    codes: &[Spanned<u16>],
    field: &str,
    decline_allowed: bool,
) -> Result<Vec<u16>, ConfigError> {
    let mut out = Vec::with_capacity(codes.len());
    for (j, c) in codes.iter().enumerate() {
        let f = format!("{field}[{j}]");
        let v = *c.get_ref();
        if !(300..=699).contains(&v) {
            return Err(ctx.err(
                Some(&c.span()),
                &f,
                format!("{v} is not a failure status code (300 to 699)"),
            ));
        }
        if v == 603 && !decline_allowed {
            return Err(ctx.err(
                Some(&c.span()),
                &f,
                "603 Decline is never retried: the callee refused the call",
            ));
        }
        out.push(v);
    }
    Ok(out)
}

fn rules(
    ctx: &Ctx<'_>,
    rules: &[RuleSection],
    field: &str,
) -> Result<routing::Normaliser, ConfigError> {
    let mut out = Vec::with_capacity(rules.len());
    for (j, r) in rules.iter().enumerate() {
        let pattern = compile(ctx, &r.pattern, &format!("{field}[{j}].match"))?;
        // `$name` references to groups that do not exist expand to nothing:
        // catch the usual typo of a group number beyond the pattern's.
        let groups = pattern.captures_len();
        let replace = r.replace.get_ref();
        let mut rest = replace.as_str();
        while let Some(pos) = rest.find('$') {
            rest = &rest[pos + 1..];
            let digits: String = rest
                .trim_start_matches('{')
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            if let Ok(n) = digits.parse::<usize>() {
                if n >= groups {
                    return Err(ctx.err(
                        Some(&r.replace.span()),
                        &format!("{field}[{j}].replace"),
                        format!(
                            "${n} refers to a group the pattern {:?} does not have",
                            r.pattern.get_ref()
                        ),
                    ));
                }
            }
        }
        out.push(routing::NumberRule {
            pattern,
            replace: replace.clone(),
            applies: match r.applies.unwrap_or(AppliesName::Both) {
                AppliesName::Called => routing::Applies::Called,
                AppliesName::Calling => routing::Applies::Calling,
                AppliesName::Both => routing::Applies::Both,
            },
        });
    }
    Ok(routing::Normaliser { rules: out })
}

fn no_controls(ctx: &Ctx<'_>, v: &Spanned<String>, field: &str) -> Result<(), ConfigError> {
    if v.get_ref().chars().any(char::is_control) {
        return Err(ctx.err(
            Some(&v.span()),
            field,
            "must not contain control characters (it becomes a header value)",
        ));
    }
    Ok(())
}

#[allow(clippy::too_many_lines)] // one trunk, field by field, in the order of docs/config.md
fn check_trunk(
    ctx: &Ctx<'_>,
    config: &Config,
    i: usize,
    t: &TrunkSection,
    listeners: &[(transport::Transport, SocketAddr, Option<String>)],
    media: &MediaSettings,
    warnings: &mut Vec<String>,
) -> Result<trunk::TrunkSpec, ConfigError> {
    let f = |name: &str| format!("trunk[{i}].{name}");
    let name = t.name.get_ref();
    let name_span = t.name.span();
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(ctx.err(
            Some(&name_span),
            &f("name"),
            format!("{name:?}: use letters, digits, '-', '_' or '.'"),
        ));
    }
    let kind = match t.kind.get_ref() {
        KindName::Carrier => trunk::TrunkKind::Carrier,
        KindName::Teams => trunk::TrunkKind::Teams,
        KindName::Acs => trunk::TrunkKind::Acs,
        KindName::Gateway => trunk::TrunkKind::Gateway,
    };
    let ms = kind.is_microsoft();
    let kind_span = t.kind.span();
    let fqdn = match (&t.fqdn, ms) {
        (Some(fq), _) => {
            if let Some(p) = fqdn_problem(fq.get_ref()) {
                return Err(ctx.err(
                    Some(&fq.span()),
                    &f("fqdn"),
                    format!("{:?} {p}", fq.get_ref()),
                ));
            }
            if ms && fq.get_ref().len() > 63 {
                return Err(ctx.err(
                    Some(&fq.span()),
                    &f("fqdn"),
                    "Microsoft accepts an SBC FQDN of at most 63 characters",
                ));
            }
            fq.get_ref().to_ascii_lowercase()
        }
        (None, true) => {
            return Err(ctx.err(
                Some(&kind_span),
                &f("fqdn"),
                format!(
                    "a {} trunk needs the SBC FQDN paired with it (Contact host and certificate name)",
                    kind.as_str()
                ),
            ));
        }
        (None, false) => config.sbc.fqdn.get_ref().to_ascii_lowercase(),
    };
    let mut spec = trunk::TrunkSpec::new(name, kind, &fqdn);
    if let Some(tr) = &t.transport {
        spec.transport = transport_of(*tr.get_ref());
        if ms && spec.transport != transaction::Transport::Tls {
            return Err(ctx.err(
                Some(&tr.span()),
                &f("transport"),
                "Teams and ACS Direct Routing accept only TLS",
            ));
        }
    }
    spec.local_port = match &t.local_port {
        Some(p) if *p.get_ref() == 0 => {
            return Err(ctx.err(Some(&p.span()), &f("local_port"), "must not be 0"));
        }
        Some(p) => *p.get_ref(),
        None if spec.transport == transaction::Transport::Tls => 5061,
        None => 5060,
    };
    match &t.tls {
        Some(p) => {
            if !config.tls.contains_key(p.get_ref()) {
                return Err(ctx.err(
                    Some(&p.span()),
                    &f("tls"),
                    format!("no [tls.{}] profile", p.get_ref()),
                ));
            }
            if spec.transport != transaction::Transport::Tls {
                return Err(ctx.err(
                    Some(&p.span()),
                    &f("tls"),
                    "only a TLS trunk takes a tls profile",
                ));
            }
            spec.tls = Some(p.get_ref().clone());
        }
        None if ms => {
            return Err(ctx.err(
                Some(&kind_span),
                &f("tls"),
                format!(
                    "a {} trunk needs a tls profile: its certificate (for {fqdn}) is the client identity toward Microsoft",
                    kind.as_str()
                ),
            ));
        }
        None => {}
    }
    if let Some(peers) = &t.peers {
        if peers.get_ref().is_empty() {
            return Err(ctx.err(
                Some(&peers.span()),
                &f("peers"),
                "at least one peer is required",
            ));
        }
        spec.peers.clear();
        for (j, p) in peers.get_ref().iter().enumerate() {
            let host = p.host.get_ref();
            if !host_ok(host) {
                return Err(ctx.err(
                    Some(&p.host.span()),
                    &f(&format!("peers[{j}].host")),
                    format!("{host:?} is neither a domain name nor an IP address"),
                ));
            }
            let transport = p
                .transport
                .as_ref()
                .map_or(spec.transport, |t| transport_of(*t.get_ref()));
            if ms && transport != transaction::Transport::Tls {
                return Err(ctx.err(
                    p.transport.as_ref().map(Spanned::span).as_ref(),
                    &f(&format!("peers[{j}].transport")),
                    "Teams and ACS Direct Routing accept only TLS",
                ));
            }
            let port = match &p.port {
                Some(port) if *port.get_ref() == 0 => {
                    return Err(ctx.err(
                        Some(&port.span()),
                        &f(&format!("peers[{j}].port")),
                        "must not be 0",
                    ));
                }
                Some(port) => *port.get_ref(),
                None if transport == transaction::Transport::Tls => 5061,
                None => 5060,
            };
            let addr = match &p.addr {
                Some(a) => Some(a.get_ref().parse::<SocketAddr>().map_err(|e| {
                    ctx.err(
                        Some(&a.span()),
                        &f(&format!("peers[{j}].addr")),
                        format!("{:?}: {e} (expected IP:port)", a.get_ref()),
                    )
                })?),
                None => None,
            };
            spec.peers.push(trunk::PeerSpec {
                host: host.to_ascii_lowercase(),
                port,
                transport,
                addr,
            });
        }
    } else if !ms {
        return Err(ctx.err(
            Some(&name_span),
            &f("peers"),
            "at least one peer is required (peers = [{ host = \"…\", addr = \"IP:port\" }])",
        ));
    }
    if let Some(acl) = &t.acl {
        spec.acl = acl
            .iter()
            .enumerate()
            .map(|(j, c)| {
                trunk::Cidr::parse(c.get_ref())
                    .map_err(|e| ctx.err(Some(&c.span()), &f(&format!("acl[{j}]")), e.to_string()))
            })
            .collect::<Result<_, _>>()?;
    }
    if spec.acl.is_empty() && spec.peers.iter().all(|p| p.addr.is_none()) {
        warnings.push(
            ctx.err(
                Some(&name_span),
                &f("acl"),
                "warning: no acl and no peer addr: no request will be accepted from this trunk (outbound calls only)",
            )
            .to_string(),
        );
    }
    if let Some(names) = &t.peer_names {
        spec.peer_names = names
            .iter()
            .map(|n| n.get_ref().to_ascii_lowercase())
            .collect();
    }
    if let Some(list) = &t.listen {
        spec.listen.clear();
        for (j, l) in list.iter().enumerate() {
            let field = f(&format!("listen[{j}]"));
            let a: SocketAddr = l.get_ref().parse().map_err(|e| {
                ctx.err(
                    Some(&l.span()),
                    &field,
                    format!("{:?}: {e} (expected IP:port)", l.get_ref()),
                )
            })?;
            if !listeners.iter().any(|(_, la, _)| {
                la.port() == a.port() && (a.ip().is_unspecified() || la.ip() == a.ip())
            }) {
                return Err(ctx.err(
                    Some(&l.span()),
                    &field,
                    format!("no [[listen]] has the address {a}"),
                ));
            }
            spec.listen.push(a);
        }
    }
    if let Some(o) = &t.options {
        if let Some(e) = &o.enabled {
            if kind == trunk::TrunkKind::Acs && !*e.get_ref() {
                return Err(ctx.err(
                    Some(&e.span()),
                    &f("options.enabled"),
                    "ACS Direct Routing waits for the SBC to start the OPTIONS exchange: it cannot be off",
                ));
            }
            spec.options.enabled = *e.get_ref();
        } else {
            // Setting any OPTIONS parameter on a carrier or gateway turns them on.
            spec.options.enabled = true;
        }
        for (v, name, max) in [
            (&o.interval_s, "interval_s", 3600),
            (&o.timeout_s, "timeout_s", 600),
        ] {
            if let Some(v) = v {
                if !(1..=max).contains(v.get_ref()) {
                    return Err(ctx.err(
                        Some(&v.span()),
                        &f(&format!("options.{name}")),
                        format!("must be between 1 and {max} seconds"),
                    ));
                }
            }
        }
        if let Some(v) = &o.interval_s {
            spec.options.interval = Duration::from_secs(*v.get_ref());
        }
        if let Some(v) = &o.timeout_s {
            spec.options.timeout = Duration::from_secs(*v.get_ref());
        }
        for (v, name) in [(&o.up_after, "up_after"), (&o.down_after, "down_after")] {
            if let Some(v) = v {
                if !(1..=100).contains(v.get_ref()) {
                    return Err(ctx.err(
                        Some(&v.span()),
                        &f(&format!("options.{name}")),
                        "must be between 1 and 100",
                    ));
                }
            }
        }
        if let Some(v) = &o.up_after {
            spec.options.up_after = *v.get_ref();
        }
        if let Some(v) = &o.down_after {
            spec.options.down_after = *v.get_ref();
        }
        if let Some(c) = &o.failure_codes {
            spec.options.failure_codes = status_codes(ctx, c, &f("options.failure_codes"), true)?;
        }
    }
    if spec.options.enabled && spec.peers.is_empty() {
        return Err(ctx.err(
            Some(&name_span),
            &f("options"),
            "OPTIONS are on but the trunk has no peer",
        ));
    }
    if let Some(c) = &t.failover_codes {
        spec.failover_codes = status_codes(ctx, c, &f("failover_codes"), false)?;
    }
    if let Some(v) = &t.invite_timeout_s {
        if !(1..=180).contains(v.get_ref()) {
            return Err(ctx.err(
                Some(&v.span()),
                &f("invite_timeout_s"),
                "must be between 1 and 180 seconds",
            ));
        }
        spec.invite_timeout = Duration::from_secs(*v.get_ref());
    }
    if let Some(n) = &t.numbers {
        spec.numbers_in = rules(ctx, &n.inbound, &f("numbers.inbound"))?;
        spec.numbers_out = rules(ctx, &n.outbound, &f("numbers.outbound"))?;
    }
    if let Some(e) = t.e164 {
        spec.e164 = e;
    }
    if let Some(c) = &t.codecs {
        for (j, name) in c.iter().enumerate() {
            let n = name.get_ref();
            if n.is_empty()
                || !n
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            {
                return Err(ctx.err(
                    Some(&name.span()),
                    &f(&format!("codecs[{j}]")),
                    format!("{n:?} is not an SDP encoding name (PCMA, G722, telephone-event…)"),
                ));
            }
        }
        spec.codecs = c.iter().map(|n| n.get_ref().clone()).collect();
    }
    if let Some(m) = &t.media {
        spec.media = match m.get_ref() {
            MediaName::Rtp => trunk::MediaSecurity::Rtp,
            MediaName::Srtp => trunk::MediaSecurity::Srtp,
        };
        if ms && spec.media != trunk::MediaSecurity::Srtp {
            return Err(ctx.err(
                Some(&m.span()),
                &f("media"),
                "Teams and ACS Direct Routing require SRTP (SDES)",
            ));
        }
    }
    if let Some(mi) = &t.media_interface {
        let known: Vec<String> = media
            .interfaces
            .iter()
            .filter_map(|s| relay::Interface::parse(s).ok().map(|i| i.name))
            .collect();
        if !known.iter().any(|k| k == mi.get_ref()) {
            return Err(ctx.err(
                Some(&mi.span()),
                &f("media_interface"),
                format!(
                    "no media interface named {:?} (media.interfaces names: {})",
                    mi.get_ref(),
                    known.join(", ")
                ),
            ));
        }
        spec.media_interface = Some(mi.get_ref().clone());
    }
    spec.headers.user_agent = config.sbc.user_agent.clone();
    if let Some(h) = &t.headers {
        if let Some(x) = &h.x_ms_sbc {
            no_controls(ctx, x, &f("headers.x_ms_sbc"))?;
            spec.headers.x_ms_sbc = (!x.get_ref().is_empty()).then(|| x.get_ref().clone());
        }
        if let Some(p) = h.pai {
            spec.headers.pai = match p {
                PaiName::Pass => trunk::PaiPolicy::Pass,
                PaiName::Strip => trunk::PaiPolicy::Strip,
            };
        }
        if let Some(v) = h.history_info_to_diversion {
            spec.headers.history_info_to_diversion = v;
        }
        if let Some(v) = h.diversion_to_history_info {
            spec.headers.diversion_to_history_info = v;
        }
        if let Some(pass) = &h.pass {
            for (j, p) in pass.iter().enumerate() {
                if p.get_ref().is_empty()
                    || !p.get_ref().bytes().all(|b| {
                        b.is_ascii_alphanumeric()
                            || matches!(
                                b,
                                b'-' | b'_'
                                    | b'.'
                                    | b'!'
                                    | b'%'
                                    | b'*'
                                    | b'+'
                                    | b'`'
                                    | b'\''
                                    | b'~'
                            )
                    })
                {
                    return Err(ctx.err(
                        Some(&p.span()),
                        &f(&format!("headers.pass[{j}]")),
                        format!("{:?} is not a header-name prefix", p.get_ref()),
                    ));
                }
            }
            spec.headers.pass_headers = pass.iter().map(|p| p.get_ref().clone()).collect();
        }
        if let Some(ua) = &h.user_agent {
            no_controls(ctx, ua, &f("headers.user_agent"))?;
            spec.headers.user_agent = ua.get_ref().clone();
        }
    }
    if let Some(m) = &t.max_calls {
        if *m.get_ref() == 0 {
            return Err(ctx.err(Some(&m.span()), &f("max_calls"), "must be at least 1"));
        }
        spec.max_calls = Some(*m.get_ref());
    }
    Ok(spec)
}

fn check_trunks(
    ctx: &Ctx<'_>,
    config: &Config,
    listeners: &[(transport::Transport, SocketAddr, Option<String>)],
    media: &MediaSettings,
    warnings: &mut Vec<String>,
) -> Result<Vec<trunk::TrunkSpec>, ConfigError> {
    let mut out: Vec<trunk::TrunkSpec> = Vec::with_capacity(config.trunks.len());
    for (i, t) in config.trunks.iter().enumerate() {
        if let Some(first) = config.trunks[..i]
            .iter()
            .find(|o| o.name.get_ref() == t.name.get_ref())
        {
            return Err(ctx.err(
                Some(&t.name.span()),
                &format!("trunk[{i}].name"),
                format!(
                    "duplicate trunk name {:?} (first at line {})",
                    t.name.get_ref(),
                    ctx.line(&first.name.span()).unwrap_or(0)
                ),
            ));
        }
        let spec = check_trunk(ctx, config, i, t, listeners, media, warnings)?;
        if spec.kind.is_microsoft() {
            let fq_span = t.fqdn.as_ref().map(Spanned::span);
            if let Some((j, other)) = out
                .iter()
                .enumerate()
                .find(|(_, o)| o.kind.is_microsoft() && o.kind != spec.kind && o.fqdn == spec.fqdn)
            {
                let (teams, acs) = if spec.kind == trunk::TrunkKind::Acs {
                    (other.name.as_str(), spec.name.as_str())
                } else {
                    (spec.name.as_str(), other.name.as_str())
                };
                let other_line = config.trunks[j]
                    .fqdn
                    .as_ref()
                    .and_then(|s| ctx.line(&s.span()))
                    .unwrap_or(0);
                return Err(ctx.err(
                    fq_span.as_ref(),
                    &format!("trunk[{i}].fqdn"),
                    format!(
                        "ACS needs its own FQDN, different from the Teams one: trunks {teams:?} and {acs:?} both use {:?} (other at line {other_line})",
                        spec.fqdn
                    ),
                ));
            }
            check_identity(ctx, config, i, t, &spec, warnings)?;
            check_served(ctx, config, i, t, &spec, listeners)?;
        }
        out.push(spec);
    }
    Ok(out)
}

/// A Teams or ACS trunk's FQDN must be a name of its client certificate (the
/// first identity of its TLS profile): Microsoft checks it against Contact.
/// Checked when the file is there; a missing file is a warning here (the
/// daemon and `sbc check` refuse it when they load the profile).
fn check_identity(
    ctx: &Ctx<'_>,
    config: &Config,
    i: usize,
    t: &TrunkSection,
    spec: &trunk::TrunkSpec,
    warnings: &mut Vec<String>,
) -> Result<(), ConfigError> {
    let Some(profile) = spec
        .tls
        .as_ref()
        .and_then(|p| config.tls.get(p).map(|s| (p, s)))
    else {
        return Ok(());
    };
    let (pname, section) = profile;
    let Some(id) = section.identities.first() else {
        return Ok(());
    };
    let path = id.cert.get_ref();
    let fq_span = t.fqdn.as_ref().map(Spanned::span);
    let field = format!("trunk[{i}].fqdn");
    match std::fs::read(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            warnings.push(
                ctx.err(
                    fq_span.as_ref(),
                    &field,
                    format!(
                        "warning: {} (tls.{pname}.identities[0].cert) not found: whether it is valid for {} was not checked",
                        path.display(),
                        spec.fqdn
                    ),
                )
                .to_string(),
            );
            Ok(())
        }
        Err(e) => Err(ctx.err(
            Some(&id.cert.span()),
            &format!("tls.{pname}.identities[0].cert"),
            format!("{}: {e}", path.display()),
        )),
        Ok(pem) => {
            let der = match first_pem_certificate(&pem) {
                Ok(Some(der)) => der,
                Ok(None) => {
                    return Err(ctx.err(
                        Some(&id.cert.span()),
                        &format!("tls.{pname}.identities[0].cert"),
                        format!("{}: no PEM certificate in file", path.display()),
                    ))
                }
                Err(e) => {
                    return Err(ctx.err(
                        Some(&id.cert.span()),
                        &format!("tls.{pname}.identities[0].cert"),
                        format!("{}: {e}", path.display()),
                    ))
                }
            };
            let names = transport::tls::cert_dns_names(&der);
            if !transport::tls::cert_matches_any(&der, std::slice::from_ref(&spec.fqdn)) {
                return Err(ctx.err(
                    fq_span.as_ref(),
                    &field,
                    format!(
                        "{:?} is not a name of the certificate {} (tls.{pname}): it has {}; Microsoft refuses a Contact FQDN the certificate does not carry",
                        spec.fqdn,
                        path.display(),
                        if names.is_empty() { "no DNS name".to_owned() } else { names.join(", ") }
                    ),
                ));
            }
            Ok(())
        }
    }
}

/// Microsoft connects to a Teams or ACS trunk's FQDN and asks for it by SNI:
/// every TLS listener the trunk can arrive on must hold a certificate valid
/// for that FQDN, or the handshake gets the default one and fails. Checked
/// when all of the profile's certificate files exist.
fn check_served(
    ctx: &Ctx<'_>,
    config: &Config,
    i: usize,
    t: &TrunkSection,
    spec: &trunk::TrunkSpec,
    listeners: &[(transport::Transport, SocketAddr, Option<String>)],
) -> Result<(), ConfigError> {
    'listeners: for (_, addr, profile) in listeners {
        let Some(pname) = profile else { continue };
        let reachable = spec.listen.is_empty()
            || spec.listen.iter().any(|l| {
                l.port() == addr.port() && (l.ip().is_unspecified() || l.ip() == addr.ip())
            });
        let Some(section) = config.tls.get(pname) else {
            continue;
        };
        if !reachable {
            continue;
        }
        let mut covered = false;
        for id in &section.identities {
            let Some(der) = std::fs::read(id.cert.get_ref())
                .ok()
                .and_then(|pem| first_pem_certificate(&pem).ok().flatten())
            else {
                // A file not there (yet), or not a certificate (loading the
                // profile says so): nothing to say about this listener.
                continue 'listeners;
            };
            covered |= transport::tls::cert_matches_any(&der, std::slice::from_ref(&spec.fqdn));
        }
        if !covered {
            return Err(ctx.err(
                t.fqdn.as_ref().map(Spanned::span).as_ref(),
                &format!("trunk[{i}].fqdn"),
                format!(
                    "no certificate of [tls.{pname}] (listener {addr}) is valid for {}: Microsoft asks for it by SNI and would get another one",
                    spec.fqdn
                ),
            ));
        }
    }
    Ok(())
}

/// The first certificate of a PEM file, read with `rustls-pemfile` (which
/// also decodes the base64). `Ok(None)`: the file holds no `CERTIFICATE`
/// block; `Err`: it is not valid PEM (bad base64, a block without its END
/// line), said in words fit for a `FILE:LINE: FIELD: message` error.
fn first_pem_certificate(pem: &[u8]) -> Result<Option<CertificateDer<'static>>, String> {
    rustls_pemfile::certs(&mut &pem[..])
        .next()
        .transpose()
        .map_err(|e| format!("bad PEM: {e}"))
}

fn check_routes(
    ctx: &Ctx<'_>,
    routes: &[RouteSection],
    trunks: &[trunk::TrunkSpec],
) -> Result<routing::Table, ConfigError> {
    let known = |n: &str| trunks.iter().any(|t| t.name == n);
    let names = || {
        trunks
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut out = Vec::with_capacity(routes.len());
    for (i, r) in routes.iter().enumerate() {
        if let Some(first) = routes[..i]
            .iter()
            .find(|o| o.name.get_ref() == r.name.get_ref())
        {
            return Err(ctx.err(
                Some(&r.name.span()),
                &format!("route[{i}].name"),
                format!(
                    "duplicate route name {:?} (first at line {})",
                    r.name.get_ref(),
                    ctx.line(&first.name.span()).unwrap_or(0)
                ),
            ));
        }
        for (j, f) in r.from.iter().enumerate() {
            if !known(f.get_ref()) {
                return Err(ctx.err(
                    Some(&f.span()),
                    &format!("route[{i}].from[{j}]"),
                    format!("no trunk named {:?} (trunks: {})", f.get_ref(), names()),
                ));
            }
        }
        let called = match &r.called {
            Some(c) => Some(compile(ctx, c, &format!("route[{i}].called"))?),
            None => None,
        };
        if r.to.get_ref().is_empty() {
            return Err(ctx.err(
                Some(&r.to.span()),
                &format!("route[{i}].to"),
                "at least one destination is required",
            ));
        }
        let route_label = match &r.label {
            Some(l) => {
                if let Some(p) = label_problem(l.get_ref()) {
                    return Err(ctx.err(Some(&l.span()), &format!("route[{i}].label"), p));
                }
                Some(l.get_ref().clone()).filter(|l| !l.is_empty())
            }
            None => Some(DEFAULT_LABEL.to_owned()),
        };
        let mut to = Vec::with_capacity(r.to.get_ref().len());
        for (j, d) in r.to.get_ref().iter().enumerate() {
            let (trunk, label, number) = match d.get_ref() {
                DestSection::Name(n) => (n.clone(), None, None),
                DestSection::Table(t) => (t.trunk.clone(), t.label.clone(), t.number.clone()),
            };
            if !known(&trunk) {
                return Err(ctx.err(
                    Some(&d.span()),
                    &format!("route[{i}].to[{j}]"),
                    format!("no trunk named {trunk:?} (trunks: {})", names()),
                ));
            }
            if let Some(p) = label.as_deref().and_then(label_problem) {
                return Err(ctx.err(Some(&d.span()), &format!("route[{i}].to[{j}].label"), p));
            }
            if let Some(n) = number.as_deref().filter(|n| !is_e164(n)) {
                return Err(ctx.err(
                    Some(&d.span()),
                    &format!("route[{i}].to[{j}].number"),
                    format!("{n:?} is not an E.164 number (+ and 2 to 15 digits)"),
                ));
            }
            // The first destination is the primary path: never labelled.
            let label = match label {
                Some(l) => Some(l).filter(|l| !l.is_empty()),
                None if j == 0 => None,
                None => route_label.clone(),
            };
            to.push(routing::Destination {
                trunk,
                target: number.map_or(routing::Target::Trunk, routing::Target::Number),
                label,
            });
        }
        let forward = match &r.forward {
            None => None,
            Some(f) => {
                let fs = f.get_ref();
                let field = |x: &str| format!("route[{i}].forward.{x}");
                if !known(fs.trunk.get_ref()) {
                    return Err(ctx.err(
                        Some(&fs.trunk.span()),
                        &field("trunk"),
                        format!(
                            "no trunk named {:?} (trunks: {})",
                            fs.trunk.get_ref(),
                            names()
                        ),
                    ));
                }
                if !is_e164(fs.number.get_ref()) {
                    return Err(ctx.err(
                        Some(&fs.number.span()),
                        &field("number"),
                        format!(
                            "{:?} is not an E.164 number (+ and 2 to 15 digits)",
                            fs.number.get_ref()
                        ),
                    ));
                }
                let secs = |v: &Spanned<f64>, name: &str| -> Result<Duration, ConfigError> {
                    let x = *v.get_ref();
                    if !(x > 0.0 && x <= 3600.0) {
                        return Err(ctx.err(
                            Some(&v.span()),
                            &field(name),
                            format!("must be more than 0 and at most 3600 seconds (got {x})"),
                        ));
                    }
                    Ok(Duration::from_secs_f64(x))
                };
                let window = secs(&fs.window_s, "window_s")?;
                let ring_timeout = match &fs.ring_timeout_s {
                    Some(v) => Some(secs(v, "ring_timeout_s")?),
                    None => None,
                };
                if let Some(p) = fs.label.as_deref().and_then(label_problem) {
                    return Err(ctx.err(Some(&f.span()), &field("label"), p));
                }
                let label = match &fs.label {
                    Some(l) => Some(l.clone()).filter(|l| !l.is_empty()),
                    None => route_label.clone(),
                };
                Some(routing::Forward {
                    to: routing::Destination {
                        trunk: fs.trunk.get_ref().clone(),
                        target: routing::Target::Number(fs.number.get_ref().clone()),
                        label,
                    },
                    window,
                    ring_timeout,
                })
            }
        };
        out.push(routing::Route {
            name: r.name.get_ref().clone(),
            from: r.from.iter().map(|f| f.get_ref().clone()).collect(),
            called,
            to,
            forward,
        });
    }
    Ok(routing::Table { routes: out })
}

/// Reads and checks a configuration file.
pub(crate) fn load(path: &Path) -> Result<Loaded, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.display().to_string(),
        line: None,
        field: String::new(),
        msg: e.to_string(),
    })?;
    parse(&text, &path.display().to_string())
}

impl Loaded {
    /// The TLS profile `name` as the transport crate wants it, with file
    /// errors naming the config line.
    pub(crate) fn tls_profile(&self, name: &str) -> Result<transport::TlsProfile, ConfigError> {
        let ctx = Ctx {
            file: &self.source,
            text: &self.text,
        };
        let t = self
            .config
            .tls
            .get(name)
            .ok_or_else(|| ctx.err(None, &format!("tls.{name}"), "no such profile"))?;
        for (i, id) in t.identities.iter().enumerate() {
            for (p, f) in [(&id.cert, "cert"), (&id.key, "key")] {
                if !p.get_ref().exists() {
                    return Err(ctx.err(
                        Some(&p.span()),
                        &format!("tls.{name}.identities[{i}].{f}"),
                        format!("{}: no such file", p.get_ref().display()),
                    ));
                }
            }
        }
        if let Some(ca) = &t.ca {
            if !ca.get_ref().exists() {
                return Err(ctx.err(
                    Some(&ca.span()),
                    &format!("tls.{name}.ca"),
                    format!("{}: no such file", ca.get_ref().display()),
                ));
            }
        }
        Ok(transport::TlsProfile {
            identities: t
                .identities
                .iter()
                .map(|i| transport::IdentityFiles {
                    cert: i.cert.get_ref().clone(),
                    key: i.key.get_ref().clone(),
                })
                .collect(),
            ca: t.ca.as_ref().map(|c| c.get_ref().clone()),
            require_client_cert: t.require_client_cert,
            peer_names: t.peer_names.clone(),
            versions: t.versions.clone(),
            cipher_suites: t.cipher_suites.clone(),
            kx_groups: t.kx_groups.clone(),
        })
    }

    /// Loads every TLS profile a listener or a trunk uses (files read, keys
    /// checked), by profile name.
    pub(crate) fn tls_contexts(
        &self,
    ) -> Result<BTreeMap<String, std::sync::Arc<transport::TlsContext>>, ConfigError> {
        let mut out = BTreeMap::new();
        let used = self
            .listeners
            .iter()
            .filter_map(|(_, _, name)| name.as_ref())
            .chain(self.trunks.iter().filter_map(|t| t.tls.as_ref()));
        for name in used {
            if out.contains_key(name) {
                continue;
            }
            let profile = self.tls_profile(name)?;
            let ctx = transport::TlsContext::new(profile).map_err(|e| ConfigError {
                file: self.source.clone(),
                line: None,
                field: format!("tls.{name}"),
                msg: e.to_string(),
            })?;
            out.insert(name.clone(), std::sync::Arc::new(ctx));
        }
        Ok(out)
    }

    pub(crate) fn limits(&self) -> transport::Limits {
        let l = &self.config.limits;
        transport::Limits {
            max_message_size: *self.config.sip.max_message_size.get_ref(),
            idle_timeout: Duration::from_secs(l.idle_timeout_s.max(1)),
            handshake_timeout: Duration::from_secs(l.handshake_timeout_s.max(1)),
            assembly_timeout: Duration::from_secs(l.assembly_timeout_s.max(1)),
            max_connections: l.max_connections.max(1),
            keepalive_interval: Duration::from_secs(l.keepalive_interval_s.max(1)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_config_parses() {
        let l = parse(DEMO, "demo.toml").unwrap();
        assert_eq!(l.listeners.len(), 3);
        let names: Vec<&str> = l.trunks.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["carrier", "teams", "acs"]);
        assert_eq!(l.routes.routes.len(), 3);
        assert_eq!(
            l.media.interfaces,
            ["carrier/127.0.0.1", "microsoft/127.0.0.1"]
        );
        assert_eq!((l.media.port_min, l.media.port_max), (40000, 49999));
    }

    fn trunk<'a>(l: &'a Loaded, name: &str) -> &'a trunk::TrunkSpec {
        l.trunks.iter().find(|t| t.name == name).unwrap()
    }

    #[test]
    fn demo_trunks_face_microsoft_on_loopback() {
        let l = parse(DEMO, "demo.toml").unwrap();
        let teams = trunk(&l, "teams");
        assert_eq!(teams.kind, trunk::TrunkKind::Teams);
        assert_eq!(teams.fqdn, "teams.sbc.example.test");
        assert_eq!(teams.tls.as_deref(), Some("teams"));
        assert_eq!(
            teams.contact(),
            "<sip:teams.sbc.example.test:5061;transport=tls>"
        );
        let peers: Vec<(&str, Option<SocketAddr>)> = teams
            .peers
            .iter()
            .map(|p| (p.host.as_str(), p.addr))
            .collect();
        assert_eq!(
            peers,
            [
                (
                    "sip.pstnhub.microsoft.com",
                    Some("127.0.0.1:25061".parse().unwrap())
                ),
                (
                    "sip2.pstnhub.microsoft.com",
                    Some("127.0.0.1:25062".parse().unwrap())
                ),
                (
                    "sip3.pstnhub.microsoft.com",
                    Some("127.0.0.1:25063".parse().unwrap())
                ),
            ]
        );
        assert!(teams.options.enabled);
        assert_eq!(teams.options.failure_codes, [503]);
        assert_eq!(teams.media, trunk::MediaSecurity::Srtp);
        assert!(teams.e164);
        assert!(teams
            .headers
            .x_ms_sbc
            .as_deref()
            .unwrap()
            .starts_with("sbc/"));
        assert_eq!(teams.max_calls, Some(200));
        let acs = trunk(&l, "acs");
        assert_eq!(acs.fqdn, "acs.sbc.example.test");
        assert_eq!(acs.peers[0].port, 5061);
        assert_eq!(acs.peers[2].addr, Some("127.0.0.1:25073".parse().unwrap()));
        assert!(acs.options.enabled);
        assert_eq!(acs.media, trunk::MediaSecurity::Srtp);
        let carrier = trunk(&l, "carrier");
        assert_eq!(carrier.fqdn, "sbc.example.test");
        assert_eq!(carrier.transport, transaction::Transport::Udp);
        assert_eq!(carrier.media, trunk::MediaSecurity::Rtp);
        assert!(!carrier.options.enabled);
        assert_eq!(carrier.numbers_in.called("004930123"), "+4930123");
        assert_eq!(carrier.numbers_in.called("030123"), "+4930123");
        // Routes: carrier → Teams, then ACS labelled; Microsoft → carrier.
        let r = l.routes.select("carrier", "+4930123").unwrap();
        let to: Vec<(&str, Option<&str>)> =
            r.to.iter()
                .map(|d| (d.trunk.as_str(), d.label.as_deref()))
                .collect();
        assert_eq!(to, [("teams", None), ("acs", Some("Fail-over"))]);
        assert_eq!(
            l.routes.select("acs", "+4930").unwrap().to[0].trunk,
            "carrier"
        );
        // Classification: the carrier over UDP, Teams and ACS by certificate and SNI.
        let c = trunk::Classifier::new(&l.trunks);
        let lo: std::net::IpAddr = "127.0.0.1".parse().unwrap();
        let udp: SocketAddr = "127.0.0.1:5060".parse().unwrap();
        let tls: SocketAddr = "127.0.0.1:5061".parse().unwrap();
        let ms: Vec<String> = trunk::MICROSOFT_PROXIES
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        assert_eq!(
            c.classify(udp, lo, transaction::Transport::Udp, None),
            Some(0)
        );
        assert_eq!(
            c.classify_named(
                tls,
                lo,
                transaction::Transport::Tls,
                Some(&ms),
                Some("acs.sbc.example.test")
            ),
            Some(2)
        );
        assert_eq!(
            c.classify_named(
                tls,
                lo,
                transaction::Transport::Tls,
                Some(&ms),
                Some("teams.sbc.example.test")
            ),
            Some(1)
        );
        let carrier_cert = vec!["carrier.example.test".to_owned()];
        assert_eq!(
            c.classify(tls, lo, transaction::Transport::Tls, Some(&carrier_cert)),
            None
        );
    }

    /// A scratch directory, removed on drop.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let d = std::env::temp_dir().join(format!("sbc-config-{}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&d);
            std::fs::create_dir_all(&d).unwrap();
            Scratch(d)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// Issues, under `dir`, every certificate, key and CA file `text` names
    /// (below `prefix`): a leaf's names are the FQDNs of the trunks using
    /// its profile plus `[sbc] fqdn`; a CA file is a development CA.
    fn issue_for(text: &str, prefix: &str, dir: &Path) -> String {
        let l = parse(text, "sample").unwrap();
        let rel = |p: &Path| dir.join(p.strip_prefix(prefix).unwrap_or(p));
        let mut cas = BTreeMap::new();
        for t in l.config.tls.values() {
            if let Some(ca) = &t.ca {
                let path = rel(ca.get_ref());
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                let stem = path.file_stem().unwrap().to_str().unwrap().to_owned();
                cas.entry(path.clone()).or_insert_with(|| {
                    transport::devpki::DevCa::create(path.parent().unwrap(), &stem).unwrap()
                });
            }
        }
        let fallback = match cas.values().next() {
            Some(_) => None,
            None => Some(transport::devpki::DevCa::create(dir, "issuer").unwrap()),
        };
        let ca = cas.values().next().or(fallback.as_ref()).unwrap();
        for (pname, t) in &l.config.tls {
            for id in &t.identities {
                let cert = rel(id.cert.get_ref());
                let mut names: Vec<String> = l
                    .trunks
                    .iter()
                    .filter(|tr| tr.tls.as_deref() == Some(pname.as_str()))
                    .map(|tr| tr.fqdn.clone())
                    .collect();
                // A listener profile serving several identities: the file name says which.
                let stem = cert.file_stem().unwrap().to_str().unwrap().to_owned();
                names.extend(
                    l.trunks
                        .iter()
                        .filter(|tr| {
                            stem.contains(tr.name.as_str()) || stem.contains(tr.kind.as_str())
                        })
                        .map(|tr| tr.fqdn.clone()),
                );
                names.push(l.config.sbc.fqdn.get_ref().clone());
                names.dedup();
                let refs: Vec<&str> = names.iter().map(String::as_str).collect();
                std::fs::create_dir_all(cert.parent().unwrap()).unwrap();
                let files = ca.issue(cert.parent().unwrap(), &stem, &refs).unwrap();
                let key = rel(id.key.get_ref());
                if files.key != key {
                    std::fs::copy(&files.key, &key).unwrap();
                }
            }
        }
        text.replace(prefix, &format!("{}/", dir.display()))
    }

    #[test]
    fn every_sample_config_passes_the_checks_of_sbc_check() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sbc-config");
        let mut seen = Vec::new();
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_none_or(|x| x != "toml") {
                continue;
            }
            let name = p.file_name().unwrap().to_str().unwrap().to_owned();
            // As shipped: structure, references, patterns, ranges. Certificate
            // files are not on this machine: at most warnings.
            let loaded = load(&p).unwrap_or_else(|e| panic!("{e}"));
            for w in &loaded.warnings {
                assert!(w.contains("warning: "), "{w}");
            }
            // With certificates in place: exactly what `sbc check` does,
            // including the names in each Teams/ACS certificate.
            let text = std::fs::read_to_string(&p).unwrap();
            let scratch = Scratch::new(&name);
            let prefix = if text.contains("/etc/sbc/") {
                "/etc/sbc/"
            } else {
                "certs/dev/"
            };
            let placed = issue_for(&text, prefix, &scratch.0);
            let l = parse(&placed, &name).unwrap_or_else(|e| panic!("{e}"));
            assert!(l.warnings.is_empty(), "{name}: {:?}", l.warnings);
            l.tls_contexts().unwrap_or_else(|e| panic!("{e}"));
            seen.push(name);
        }
        seen.sort();
        assert_eq!(
            seen,
            [
                "azure-backup.toml",
                "azure-primary.toml",
                "demo.toml",
                "onprem.toml"
            ]
        );
    }

    #[test]
    fn demo_config_with_dev_certs_loads_every_tls_profile() {
        let scratch = Scratch::new("demo-dev-certs");
        let certs = scratch.0.join("certs/dev");
        crate::dev_certs(
            &certs,
            &["sbc.example.test".to_owned(), "localhost".to_owned()],
        )
        .unwrap();
        for f in ["ca", "sbc", "client", "teams", "acs", "microsoft"] {
            assert!(certs.join(format!("{f}.pem")).exists(), "{f}.pem");
            assert!(certs.join(format!("{f}.key")).exists(), "{f}.key");
        }
        let text = DEMO.replace("certs/dev/", &format!("{}/", certs.display()));
        let l = parse(&text, "demo.toml").unwrap();
        assert!(l.warnings.is_empty(), "{:?}", l.warnings);
        let ctx = l.tls_contexts().unwrap();
        assert!(
            ctx.contains_key("default") && ctx.contains_key("teams") && ctx.contains_key("acs")
        );
        // The Microsoft stand-ins' certificate carries the proxies' names.
        let pem = std::fs::read(certs.join("microsoft.pem")).unwrap();
        let names = transport::tls::cert_dns_names(&first_pem_certificate(&pem).unwrap().unwrap());
        for n in trunk::MICROSOFT_PROXIES {
            assert!(names.iter().any(|x| x == n), "{names:?}");
        }
    }

    // ----- negative tests: FILE:LINE: FIELD: message --------------------------

    /// A small valid configuration: carrier, Teams and ACS, one route.
    const BASE: &str = r#"[sbc]
fqdn = "sbc.example.test"

[[listen]]
transport = "udp"
addr = "127.0.0.1:5060"

[[listen]]
transport = "tls"
addr = "127.0.0.1:5061"
tls = "listener"

[tls.listener]
identities = [{ cert = "/nonexistent/teams.pem", key = "/nonexistent/teams.key" }]

[tls.teams]
identities = [{ cert = "/nonexistent/teams.pem", key = "/nonexistent/teams.key" }]

[tls.acs]
identities = [{ cert = "/nonexistent/acs.pem", key = "/nonexistent/acs.key" }]

[media]
interfaces = ["carrier/127.0.0.1", "microsoft/127.0.0.1"]

[[trunk]]
name = "carrier"
kind = "carrier"
peers = [{ host = "carrier.example.net", addr = "192.0.2.10:5060" }]
numbers = { inbound = [{ match = "^00(\\d+)$", replace = "+$1" }] }
media_interface = "carrier"

[[trunk]]
name = "teams"
kind = "teams"
fqdn = "teams.sbc.example.test"
tls = "teams"
media_interface = "microsoft"

[[trunk]]
name = "acs"
kind = "acs"
fqdn = "acs.sbc.example.test"
tls = "acs"

[[route]]
name = "carrier-to-teams"
from = ["carrier"]
called = "^\\+49"
to = ["teams", { trunk = "acs", label = "Fail-over" }]
"#;

    fn line_of(text: &str, needle: &str) -> usize {
        let at = text
            .find(needle)
            .unwrap_or_else(|| panic!("{needle:?} not in text"));
        text[..at].matches('\n').count() + 1
    }

    /// Replaces `from` by `to` in BASE, parses, and checks that the error
    /// starts with `t.toml:LINE: FIELD: ` where LINE is that of `at` in the
    /// edited text, and contains `what`.
    fn refused(from: &str, to: &str, at: &str, field: &str, what: &str) {
        assert!(BASE.contains(from), "{from:?} not in BASE");
        let text = BASE.replacen(from, to, 1);
        let e = parse(&text, "t.toml").unwrap_err().to_string();
        let want = if field.is_empty() {
            format!("t.toml:{}: ", line_of(&text, at))
        } else {
            format!("t.toml:{}: {field}: ", line_of(&text, at))
        };
        assert!(e.starts_with(&want), "want {want:?}, got {e:?}");
        assert!(e.contains(what), "want {what:?} in {e:?}");
    }

    #[test]
    fn dns_section_is_checked() {
        let l = parse(BASE, "t.toml").unwrap();
        assert!(l.dns.servers.is_empty(), "default: the system's resolver");
        assert_eq!(l.dns.refresh, transport::Refresh::default());
        let text = format!(
            "{BASE}\n[dns]\nservers = [\"127.0.0.1:5353\", \"::1\"]\nmin_refresh_s = 1\nmax_refresh_s = 60\n"
        );
        let l = parse(&text, "t.toml").unwrap();
        assert_eq!(
            l.dns.servers,
            [
                "127.0.0.1:5353".parse().unwrap(),
                "[::1]:53".parse().unwrap()
            ]
        );
        assert_eq!(l.dns.refresh.min, Duration::from_secs(1));
        assert_eq!(l.dns.refresh.max, Duration::from_secs(60));
        for (bad, field) in [
            ("servers = [\"dns.example\"]", "dns.servers[0]"),
            ("min_refresh_s = 0", "dns.min_refresh_s"),
            (
                "min_refresh_s = 30\nmax_refresh_s = 10",
                "dns.max_refresh_s",
            ),
        ] {
            let text = format!("{BASE}\n[dns]\n{bad}\n");
            let e = parse(&text, "t.toml").unwrap_err().to_string();
            assert!(e.contains(&format!(": {field}: ")), "{e}");
        }
    }

    #[test]
    fn base_config_is_valid() {
        let l = parse(BASE, "t.toml").unwrap();
        assert_eq!(l.trunks.len(), 3);
        // Certificates not on this machine: the names could not be checked.
        assert_eq!(l.warnings.len(), 2, "{:?}", l.warnings);
        let line = line_of(BASE, "fqdn = \"teams.sbc.example.test\"");
        assert!(
            l.warnings[0].starts_with(&format!("t.toml:{line}: trunk[1].fqdn: warning: ")),
            "{}",
            l.warnings[0]
        );
        // Per-kind defaults.
        let acs = &l.trunks[2];
        assert_eq!(acs.peers.len(), 3);
        assert_eq!(acs.peers[0].host, "sip.pstnhub.microsoft.com");
        assert_eq!(acs.acl.len(), 2);
        assert_eq!(acs.failover_codes, [408, 503, 504]);
        assert_eq!(acs.invite_timeout, Duration::from_secs(2));
        assert!(acs.options.enabled);
        assert_eq!(acs.options.interval, Duration::from_secs(60));
        let x = acs.headers.x_ms_sbc.as_deref().unwrap();
        assert_eq!(x.split('/').count(), 3, "{x}");
        assert_eq!(l.trunks[0].transport, transaction::Transport::Udp);
        assert_eq!(l.trunks[0].local_port, 5060);
        assert!(!l.trunks[0].options.enabled);
        assert_eq!(l.trunks[0].headers.user_agent, default_agent());
    }

    #[test]
    fn duplicate_trunk_name_is_refused() {
        refused(
            "name = \"acs\"",
            "name = \"teams\"",
            "name = \"teams\"\nkind = \"acs\"",
            "trunk[2].name",
            "duplicate trunk name \"teams\" (first at line 33)",
        );
    }

    #[test]
    fn unknown_trunk_in_route_is_refused() {
        refused(
            "to = [\"teams\", { trunk = \"acs\"",
            "to = [\"teams\", { trunk = \"acz\"",
            "to = [\"teams\"",
            "route[0].to[1]",
            "no trunk named \"acz\" (trunks: carrier, teams, acs)",
        );
        refused(
            "from = [\"carrier\"]",
            "from = [\"carier\"]",
            "from = [\"carier\"]",
            "route[0].from[0]",
            "no trunk named \"carier\"",
        );
        refused(
            "to = [\"teams\", { trunk = \"acs\", label = \"Fail-over\" }]",
            "to = []",
            "to = []",
            "route[0].to",
            "at least one destination",
        );
    }

    #[test]
    fn unknown_tls_profile_is_refused() {
        refused(
            "tls = \"acs\"",
            "tls = \"acs-client\"",
            "tls = \"acs-client\"",
            "trunk[2].tls",
            "no [tls.acs-client] profile",
        );
    }

    #[test]
    fn unknown_media_interface_is_refused() {
        refused(
            "media_interface = \"microsoft\"",
            "media_interface = \"teams\"",
            "media_interface = \"teams\"",
            "trunk[1].media_interface",
            "no media interface named \"teams\" (media.interfaces names: carrier, microsoft)",
        );
        refused(
            "interfaces = [\"carrier/127.0.0.1\", \"microsoft/127.0.0.1\"]",
            "interfaces = [\"carrier/127.0.0.1\", \"microsoft/127.0.0.300\"]",
            "interfaces = [",
            "media.interfaces[1]",
            "bad address",
        );
    }

    #[test]
    fn bad_regex_is_refused_with_the_regex_error() {
        refused(
            "match = \"^00(\\\\d+)$\"",
            "match = \"^00(\\\\d+$\"",
            "numbers = {",
            "trunk[0].numbers.inbound[0].match",
            "bad regular expression \"^00(\\\\d+$\": regex parse error",
        );
        let text = BASE.replacen("called = \"^\\\\+49\"", "called = \"^\\\\+49(\"", 1);
        let e = parse(&text, "t.toml").unwrap_err().to_string();
        let want = format!("t.toml:{}: route[0].called: ", line_of(&text, "called = "));
        assert!(e.starts_with(&want), "{e}");
        assert!(e.contains("unclosed group"), "{e}");
        refused(
            "replace = \"+$1\"",
            "replace = \"+$2\"",
            "numbers = {",
            "trunk[0].numbers.inbound[0].replace",
            "$2 refers to a group the pattern \"^00(\\\\d+)$\" does not have",
        );
    }

    #[test]
    fn bad_cidr_is_refused() {
        refused(
            "kind = \"teams\"\n",
            "kind = \"teams\"\nacl = [\"52.112.0.0/14\", \"52.120.0.0/33\"]\n",
            "acl = [",
            "trunk[1].acl[1]",
            "\"52.120.0.0/33\": bad prefix length",
        );
        refused(
            "kind = \"teams\"\n",
            "kind = \"teams\"\nacl = [\"52.112.1.0/14\"]\n",
            "acl = [",
            "trunk[1].acl[0]",
            "bits set after the prefix length",
        );
    }

    #[test]
    fn microsoft_trunk_without_fqdn_or_tls_is_refused() {
        refused(
            "fqdn = \"teams.sbc.example.test\"\n",
            "",
            "kind = \"teams\"",
            "trunk[1].fqdn",
            "a teams trunk needs the SBC FQDN paired with it",
        );
        refused(
            "tls = \"acs\"\n",
            "",
            "kind = \"acs\"",
            "trunk[2].tls",
            "a acs trunk needs a tls profile",
        );
        refused(
            "fqdn = \"acs.sbc.example.test\"",
            "fqdn = \"10.1.2.3\"",
            "fqdn = \"10.1.2.3\"",
            "trunk[2].fqdn",
            "is an IP address",
        );
        refused(
            "tls = \"teams\"\n",
            "tls = \"teams\"\ntransport = \"udp\"\n",
            "transport = \"udp\"\nmedia_interface",
            "trunk[1].transport",
            "only TLS",
        );
        refused(
            "tls = \"teams\"\n",
            "tls = \"teams\"\nmedia = \"rtp\"\n",
            "media = \"rtp\"",
            "trunk[1].media",
            "require SRTP",
        );
    }

    #[test]
    fn acs_fqdn_equal_to_teams_fqdn_is_refused() {
        refused(
            "fqdn = \"acs.sbc.example.test\"",
            "fqdn = \"Teams.sbc.example.test\"",
            "fqdn = \"Teams.sbc.example.test\"",
            "trunk[2].fqdn",
            "ACS needs its own FQDN, different from the Teams one: trunks \"teams\" and \"acs\" both use \"teams.sbc.example.test\"",
        );
    }

    #[test]
    fn fqdn_missing_from_certificate_is_refused() {
        let scratch = Scratch::new("wrong-cert");
        let ca = transport::devpki::DevCa::create(&scratch.0, "ca").unwrap();
        // The ACS profile holds the Teams certificate: a classic mix-up.
        ca.issue(&scratch.0, "teams", &["teams.sbc.example.test"])
            .unwrap();
        ca.issue(&scratch.0, "acs", &["teams.sbc.example.test"])
            .unwrap();
        // The listener serves both identities by SNI.
        let text = BASE
            .replacen(
                "[tls.listener]\nidentities = [{",
                "[tls.listener]\nidentities = [{ cert = \"/nonexistent/acs.pem\", key = \"/nonexistent/acs.key\" }, {",
                1,
            )
            .replace("/nonexistent/", &format!("{}/", scratch.0.display()));
        let e = parse(&text, "t.toml").unwrap_err().to_string();
        let want = format!(
            "t.toml:{}: trunk[2].fqdn: \"acs.sbc.example.test\" is not a name of the certificate ",
            line_of(&text, "fqdn = \"acs.sbc.example.test\"")
        );
        assert!(e.starts_with(&want), "{e}");
        assert!(e.contains("it has teams.sbc.example.test"), "{e}");
        // Right certificates: accepted, no warning, every profile loads.
        ca.issue(&scratch.0, "acs", &["acs.sbc.example.test"])
            .unwrap();
        let l = parse(&text, "t.toml").unwrap();
        assert!(l.warnings.is_empty(), "{:?}", l.warnings);
        l.tls_contexts().unwrap();
        // A wildcard certificate covers the FQDN too.
        ca.issue(&scratch.0, "acs", &["*.sbc.example.test"])
            .unwrap();
        parse(&text, "t.toml").unwrap();
    }

    #[test]
    fn malformed_pem_is_refused_not_a_panic() {
        let bad_base64 =
            b"-----BEGIN CERTIFICATE-----\nMIIB*not base64*\n-----END CERTIFICATE-----\n";
        let e = first_pem_certificate(bad_base64).unwrap_err();
        assert!(e.starts_with("bad PEM: "), "{e}");
        let no_end = b"-----BEGIN CERTIFICATE-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOC\n";
        let e = first_pem_certificate(no_end).unwrap_err();
        assert!(e.starts_with("bad PEM: "), "{e}");
        assert_eq!(first_pem_certificate(b"not a PEM file at all\n"), Ok(None));
        assert_eq!(first_pem_certificate(&[0xff, 0xfe, 0x00]), Ok(None));
        // Through the loader: FILE:LINE: FIELD: path: bad PEM: ...
        let scratch = Scratch::new("bad-pem");
        let ca = transport::devpki::DevCa::create(&scratch.0, "ca").unwrap();
        ca.issue(&scratch.0, "acs", &["acs.sbc.example.test"])
            .unwrap();
        std::fs::write(scratch.0.join("teams.pem"), bad_base64).unwrap();
        let text = BASE.replace("/nonexistent/", &format!("{}/", scratch.0.display()));
        let e = parse(&text, "t.toml").unwrap_err().to_string();
        let want = format!(
            "t.toml:{}: tls.teams.identities[0].cert: {}: bad PEM: ",
            line_of(&text, "[tls.teams]") + 1,
            scratch.0.join("teams.pem").display()
        );
        assert!(e.starts_with(&want), "want {want:?}, got {e:?}");
        // A file with no certificate in it says so.
        std::fs::write(scratch.0.join("teams.pem"), "just text\n").unwrap();
        let e = parse(&text, "t.toml").unwrap_err().to_string();
        assert!(e.contains("teams.pem: no PEM certificate in file"), "{e}");
    }

    #[test]
    fn listener_without_the_acs_certificate_is_refused() {
        let scratch = Scratch::new("listener-cert");
        let ca = transport::devpki::DevCa::create(&scratch.0, "ca").unwrap();
        ca.issue(&scratch.0, "teams", &["teams.sbc.example.test"])
            .unwrap();
        ca.issue(&scratch.0, "acs", &["acs.sbc.example.test"])
            .unwrap();
        // BASE's listener profile holds only the Teams certificate.
        let text = BASE.replace("/nonexistent/", &format!("{}/", scratch.0.display()));
        let e = parse(&text, "t.toml").unwrap_err().to_string();
        let want = format!(
            "t.toml:{}: trunk[2].fqdn: no certificate of [tls.listener] (listener 127.0.0.1:5061) is valid for acs.sbc.example.test",
            line_of(&text, "fqdn = \"acs.sbc.example.test\"")
        );
        assert!(e.starts_with(&want), "{e}");
        // ACS arriving only on another listener, Teams only on this one:
        // each listener serves the certificate of the trunks it takes.
        let text = text
            .replacen(
                "tls = \"listener\"\n",
                "tls = \"listener\"\n\n[[listen]]\ntransport = \"tls\"\naddr = \"127.0.0.1:5062\"\ntls = \"acs\"\n",
                1,
            )
            .replacen(
                "tls = \"acs\"\n\n[[route]]",
                "tls = \"acs\"\nlisten = [\"127.0.0.1:5062\"]\n\n[[route]]",
                1,
            )
            .replacen(
                "tls = \"teams\"\nmedia_interface",
                "tls = \"teams\"\nlisten = [\"127.0.0.1:5061\"]\nmedia_interface",
                1,
            );
        parse(&text, "t.toml").unwrap();
    }

    #[test]
    fn other_trunk_checks_name_the_field() {
        refused(
            "kind = \"acs\"\n",
            "kind = \"acs\"\nfailover_codes = [408, 603]\n",
            "failover_codes",
            "trunk[2].failover_codes[1]",
            "603 Decline is never retried",
        );
        refused(
            "kind = \"acs\"\n",
            "kind = \"acs\"\noptions = { enabled = false }\n",
            "options = ",
            "trunk[2].options.enabled",
            "cannot be off",
        );
        refused(
            "kind = \"acs\"\n",
            "kind = \"acs\"\nlisten = [\"127.0.0.1:5062\"]\n",
            "listen = [\"127.0.0.1:5062\"]",
            "trunk[2].listen[0]",
            "no [[listen]] has the address 127.0.0.1:5062",
        );
        refused(
            "kind = \"acs\"\n",
            "kind = \"acs\"\ncolour = \"blue\"\n",
            "colour",
            "",
            "unknown field `colour`",
        );
        refused(
            "peers = [{ host = \"carrier.example.net\", addr = \"192.0.2.10:5060\" }]",
            "peers = [{ host = \"carrier.example.net\", addr = \"192.0.2.10\" }]",
            "peers = [",
            "trunk[0].peers[0].addr",
            "expected IP:port",
        );
        refused(
            "peers = [{ host = \"carrier.example.net\", addr = \"192.0.2.10:5060\" }]\n",
            "",
            "name = \"carrier\"",
            "trunk[0].peers",
            "at least one peer is required",
        );
        refused(
            "kind = \"teams\"\n",
            "kind = \"teams\"\nmax_calls = 0\n",
            "max_calls",
            "trunk[1].max_calls",
            "at least 1",
        );
        refused(
            "kind = \"teams\"\n",
            "kind = \"teams\"\nheaders = { x_ms_sbc = \"a\\nb\" }\n",
            "headers = ",
            "trunk[1].headers.x_ms_sbc",
            "control characters",
        );
        refused(
            "[media]\n",
            "[media]\nport_min = 50000\nport_max = 40000\n",
            "port_max",
            "media.port_max",
            "larger than media.port_min",
        );
        refused(
            "[media]\n",
            "[media]\nio = \"poll\"\n",
            "io = ",
            "media.io",
            "epoll or uring",
        );
        refused(
            "kind = \"carrier\"",
            "kind = \"pstn\"",
            "kind = \"pstn\"",
            "",
            "unknown variant `pstn`",
        );
    }

    #[test]
    fn trunk_accepting_nothing_inbound_is_a_warning() {
        let text = BASE.replacen(
            "peers = [{ host = \"carrier.example.net\", addr = \"192.0.2.10:5060\" }]",
            "peers = [{ host = \"carrier.example.net\" }]",
            1,
        );
        let l = parse(&text, "t.toml").unwrap();
        let line = line_of(&text, "name = \"carrier\"");
        assert!(
            l.warnings[0].starts_with(&format!("t.toml:{line}: trunk[0].acl: warning: no acl")),
            "{:?}",
            l.warnings
        );
    }

    #[test]
    fn route_with_duplicate_name_is_refused() {
        let text = format!("{BASE}\n[[route]]\nname = \"carrier-to-teams\"\nto = [\"carrier\"]\n");
        let e = parse(&text, "t.toml").unwrap_err().to_string();
        let want = format!(
            "t.toml:{}: route[1].name: duplicate route name",
            text.lines().count() - 1
        );
        assert!(e.starts_with(&want), "{e}");
    }

    #[test]
    fn config_without_trunks_still_loads() {
        let l = parse(
            "[sbc]\nfqdn = \"sbc.example.test\"\n[[listen]]\ntransport = \"udp\"\naddr = \"127.0.0.1:5060\"\n",
            "t.toml",
        )
        .unwrap();
        assert!(l.trunks.is_empty() && l.routes.routes.is_empty());
        assert_eq!(l.media.interfaces, ["127.0.0.1"]);
    }

    #[test]
    fn option_tags_the_sbc_does_not_implement_are_refused() {
        let listen = "[[listen]]\ntransport = \"udp\"";
        refused(
            listen,
            &format!("[sip]\nsupported = [\"timer\", \"100rel\"]\n\n{listen}"),
            "supported = ",
            "sip.supported[1]",
            "\"100rel\" cannot be supported: PRACK (RFC 3262) is not implemented",
        );
        refused(
            listen,
            &format!("[sip]\nsupported = [\"gruu\"]\n\n{listen}"),
            "supported = ",
            "sip.supported[0]",
            "\"gruu\" is not an option tag the SBC implements (implemented: timer, replaces, norefersub, path, outbound)",
        );
        // A subset of the implemented tags, in any case, is fine.
        let text = BASE.replacen(
            listen,
            &format!("[sip]\nsupported = [\"Timer\", \"replaces\"]\n\n{listen}"),
            1,
        );
        parse(&text, "t.toml").unwrap();
        // The default is every implemented tag, and 100rel is not one.
        let l = parse(BASE, "t.toml").unwrap();
        let tags: Vec<&str> = l
            .config
            .sip
            .supported
            .iter()
            .map(|t| t.get_ref().as_str())
            .collect();
        assert_eq!(tags, sip::DEFAULT_SUPPORTED);
        assert!(!tags.contains(&"100rel"));
    }

    #[test]
    fn errors_name_file_line_and_field() {
        let text = "[sbc]\nfqdn = \"sbc.example.com\"\n\n[[listen]]\ntransport = \"udp\"\naddr = \"127.0.0.1:99999\"\n";
        let e = parse(text, "x.toml").unwrap_err().to_string();
        assert!(e.starts_with("x.toml:6: listen[0].addr: "), "{e}");

        let e = parse("[sbc]\nfqdn = \"sbc.example.com\"\ncolour = 1\n", "y.toml")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("y.toml:3: "), "{e}");
        assert!(e.contains("unknown field `colour`"), "{e}");

        let e = parse("[sbc]\nfqdn = \"10.0.0.1\"\n", "z.toml")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("z.toml:2: sbc.fqdn: "), "{e}");

        let text = "[sbc]\nfqdn = \"s.example.com\"\n[[listen]]\ntransport = \"tls\"\naddr = \"127.0.0.1:5061\"\ntls = \"nope\"\n";
        let e = parse(text, "w.toml").unwrap_err().to_string();
        assert!(
            e.starts_with("w.toml:6: listen[0].tls: no [tls.nope] profile"),
            "{e}"
        );
    }
}
