//! `[[listen]]` and `[media]`: where the SBC takes signalling, and the relay
//! settings of `sbc run`.

use std::net::SocketAddr;
use std::time::Duration;

use super::error::{ConfigError, Ctx};
use super::schema::{Config, MediaSection, TransportName};

/// A checked listener: transport, address, TLS profile name (TLS only).
pub(crate) type Listener = (transport::Transport, SocketAddr, Option<String>);

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
    /// Share of the port pairs kept for emergency calls (percent).
    pub(crate) emergency_reserve_percent: u8,
    /// The ringback tones trunks may name, and the default one.
    pub(crate) tones: super::ringback::Tones,
}

/// Checks the `[[listen]]` entries: addresses, TLS profiles, duplicates.
pub(super) fn check_listeners(
    ctx: &Ctx<'_>,
    config: &Config,
) -> Result<Vec<Listener>, ConfigError> {
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
    Ok(listeners)
}

/// Checks `[media]`: interfaces, their names, the port range, the I/O.
pub(super) fn check_media(ctx: &Ctx<'_>, m: &MediaSection) -> Result<MediaSettings, ConfigError> {
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
    let reserve = *m.emergency_reserve_percent.get_ref();
    if reserve > 50 {
        return Err(ctx.err(
            Some(&m.emergency_reserve_percent.span()),
            "media.emergency_reserve_percent",
            "must be between 0 and 50 (percent of the port pairs kept for emergency calls)",
        ));
    }
    Ok(MediaSettings {
        interfaces: m.interfaces.iter().map(|s| s.get_ref().clone()).collect(),
        port_min: lo,
        port_max: hi,
        workers: m.workers,
        inactivity: Duration::from_secs(*m.inactivity_s.get_ref()),
        io,
        emergency_reserve_percent: reserve,
        tones: super::ringback::check_tones(ctx, m)?,
    })
}
