//! The configuration file (TOML, unknown fields refused) and its checks.
//! Every error names the file, the line and the field.
//!
//! Relative paths (certificates, keys, CA bundles) are relative to the
//! working directory of the process.
//!
//! `schema` is what serde reads; `error` turns spans into `FILE:LINE:
//! FIELD: message`; the other modules check one part each, in the order
//! [`parse`] calls them: `sip_section` (`[sbc]`, `[sip]`), `listen` (`[[listen]]`,
//! `[media]`; `ringback` its tones), `tls` (`[tls.NAME]`, certificate names), `trunks`, `routes`
//! (with `[route.forward]`), `phones` (`[phones]` and its users file);
//! `http` (`[http]`, the operations endpoint), `log` (`[log]`); `protect`
//! (`[protect]`, unknown sources); `numbers` holds what trunks and routes
//! share. `[emergency]` is checked with the trunks (each gets the list).

use std::path::{Path, PathBuf};
use std::time::Duration;

mod dns;
mod error;
mod http;
mod interop;
mod listen;
mod log;
mod numbers;
mod phones;
mod protect;
mod ringback;
mod routes;
mod schema;
mod sip_section;
#[cfg(test)]
mod tests;
mod tls;
mod trunks;

pub(crate) use dns::DnsSettings;
pub(crate) use error::ConfigError;
pub(crate) use http::HttpSettings;
pub(crate) use listen::MediaSettings;
pub(crate) use log::{LogFormat, LogSettings};
#[allow(unused_imports)] // the daemon's store picks by kind
pub(crate) use phones::{PhonesSettings, StoreKind};
pub(crate) use schema::Config;

use error::Ctx;

/// The embedded default: loopback only, development certificates in `certs/dev/`.
pub(crate) const DEMO: &str = include_str!("../../../../sbc-config/demo.toml");

/// Where the embedded default says the development PKI lives.
pub(crate) const DEMO_CERT_DIR: &str = "certs/dev";

/// A loaded, checked configuration.
#[derive(Debug)]
#[allow(dead_code)] // `warnings`: for the runtime and `sbc check` to print
pub(crate) struct Loaded {
    pub(crate) config: Config,
    pub(crate) source: String,
    pub(crate) text: String,
    /// The file it was read from (`None`: a text given, like the embedded default).
    pub(crate) path: Option<PathBuf>,
    pub(crate) listeners: Vec<listen::Listener>,
    /// Trunks, in configured order (indexes used by the classifier and health).
    pub(crate) trunks: Vec<trunk::TrunkSpec>,
    /// The routing table.
    pub(crate) routes: routing::Table,
    /// The media relay settings.
    pub(crate) media: MediaSettings,
    /// How trunk peers are resolved.
    pub(crate) dns: DnsSettings,
    /// Registered phones (`[phones]`), if configured.
    pub(crate) phones: Option<PhonesSettings>,
    /// The operations endpoint (`[http]`), if on.
    pub(crate) http: Option<HttpSettings>,
    /// How logs are written (`[log]`).
    pub(crate) log: LogSettings,
    /// Protection independent of trunks (`[protect]`).
    pub(crate) protect: b2bua::Protect,
    /// The per-source budgets and global caps (`[protect]`).
    pub(crate) shield: protect::ShieldSettings,
    /// Things worth fixing that do not stop the SBC (`FILE:LINE: FIELD: message`),
    /// such as a certificate file not there yet whose names could not be checked.
    pub(crate) warnings: Vec<String>,
}

/// Parses and checks a configuration text. `source` names it in errors.
pub(crate) fn parse(text: &str, source: &str) -> Result<Loaded, ConfigError> {
    let ctx = Ctx { file: source, text };
    let config: Config =
        toml::from_str(text).map_err(|e| ConfigError::from_toml(&e, text, source))?;
    sip_section::check(&ctx, &config)?;
    let listeners = listen::check_listeners(&ctx, &config)?;
    tls::check_sections(&ctx, &config)?;
    let mut warnings = Vec::new();
    let media = listen::check_media(&ctx, &config.media)?;
    let dns = dns::check_dns(&ctx, &config.dns)?;
    let trunks = trunks::check_trunks(&ctx, &config, &listeners, &media, &mut warnings)?;
    let routes = routes::check_routes(&ctx, &config.routes, &trunks)?;
    let phones = phones::check_phones(&ctx, &config)?;
    let http = http::check_http(&ctx, config.http.as_ref())?;
    let log = log::check_log(&ctx, &config.log)?;
    let protect = protect::check_protect(&ctx, &config.protect)?;
    let shield = protect::check_shield(&ctx, &config.protect)?;
    Ok(Loaded {
        config,
        source: source.to_owned(),
        text: text.to_owned(),
        path: None,
        listeners,
        trunks,
        routes,
        media,
        dns,
        phones,
        http,
        log,
        protect,
        shield,
        warnings,
    })
}

/// Reads and checks a configuration file.
pub(crate) fn load(path: &Path) -> Result<Loaded, ConfigError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::unlocated(&file, "", e.to_string()))?;
    let mut l = parse(&text, &file)?;
    l.path = Some(path.to_owned());
    Ok(l)
}

impl Loaded {
    pub(crate) fn limits(&self) -> transport::Limits {
        let l = &self.config.limits;
        transport::Limits {
            max_message_size: *self.config.sip.max_message_size.get_ref(),
            idle_timeout: Duration::from_secs(l.idle_timeout_s.max(1)),
            handshake_timeout: Duration::from_secs(l.handshake_timeout_s.max(1)),
            assembly_timeout: Duration::from_secs(l.assembly_timeout_s.max(1)),
            max_connections: l.max_connections.max(1),
            max_connections_per_source: l.max_connections_per_source.max(1),
            max_handshakes: l.max_tls_handshakes.max(1),
            keepalive_interval: Duration::from_secs(l.keepalive_interval_s.max(1)),
        }
    }
}
