//! `[sbc]` and `[sip]`: our own name, the RFC 3261 timers, the largest
//! message, the option tags.

use toml::Spanned;

use super::error::{ConfigError, Ctx};
use super::schema::Config;

/// Checks `[sbc] fqdn` and the `[sip]` section.
pub(super) fn check(ctx: &Ctx<'_>, config: &Config) -> Result<(), ConfigError> {
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
        check_option_tag(ctx, tag, &format!("sip.supported[{i}]"))?;
    }
    Ok(())
}

/// An option tag of `[sip] supported` must be one the SBC implements: it is
/// accepted in Require and advertised in Supported, so a peer may rely on it.
fn check_option_tag(ctx: &Ctx<'_>, tag: &Spanned<String>, field: &str) -> Result<(), ConfigError> {
    let t = tag.get_ref();
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
