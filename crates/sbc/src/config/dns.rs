//! `[dns]`: how trunk peers without an `addr` are resolved (RFC 3263).

use std::net::SocketAddr;
use std::time::Duration;

use super::error::{ConfigError, Ctx};
use super::schema::DnsSection;

/// The checked `[dns]` section.
#[derive(Debug, Clone)]
pub(crate) struct DnsSettings {
    pub(crate) servers: Vec<SocketAddr>,
    pub(crate) refresh: transport::Refresh,
}

pub(crate) fn check_dns(ctx: &Ctx<'_>, d: &DnsSection) -> Result<DnsSettings, ConfigError> {
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
