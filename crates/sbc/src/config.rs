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
    /// Option tags accepted in Require (others: 420).
    pub(crate) supported: Vec<String>,
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
                .map(|s| (*s).to_owned())
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
pub(crate) struct Loaded {
    pub(crate) config: Config,
    pub(crate) source: String,
    pub(crate) text: String,
    pub(crate) listeners: Vec<(transport::Transport, SocketAddr, Option<String>)>,
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
    Ok(Loaded {
        config,
        source: source.to_owned(),
        text: text.to_owned(),
        listeners,
    })
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

    /// Loads every TLS profile a listener uses (files read, keys checked).
    pub(crate) fn tls_contexts(
        &self,
    ) -> Result<BTreeMap<String, std::sync::Arc<transport::TlsContext>>, ConfigError> {
        let mut out = BTreeMap::new();
        for (_, _, name) in &self.listeners {
            let Some(name) = name else { continue };
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
