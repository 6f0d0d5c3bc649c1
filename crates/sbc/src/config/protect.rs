//! `[protect]`: protection that belongs to no trunk — what is done with a
//! request from a source no trunk accepts, the per-source budgets and bans
//! and the global caps (docs/protection.md). (Per-trunk limits, `max_calls`
//! and `max_cps`, are trunk keys; the registrar's are `[phones.protect]`.)

use serde::Deserialize;
use toml::Spanned;

use super::error::{ConfigError, Ctx};

/// `[protect]`, every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ProtectSection {
    /// `"drop"` (the default: nothing is sent, the request is counted) or
    /// `"reject"` (403 Forbidden).
    pub(crate) unknown_source: Option<Spanned<UnknownSourceName>>,
    /// The per-source budgets and bans (default true).
    pub(crate) enabled: Option<bool>,
    /// Budgets of an untrusted source, requests per second (bursts of twice).
    pub(crate) invite_per_second: Option<Spanned<f32>>,
    pub(crate) register_per_second: Option<Spanned<f32>>,
    pub(crate) other_per_second: Option<Spanned<f32>>,
    /// Budget of a trusted source, each class.
    pub(crate) trusted_per_second: Option<Spanned<f32>>,
    /// Trusted ranges besides the trunks' own.
    pub(crate) trusted: Vec<Spanned<String>>,
    pub(crate) ban_after: Option<u32>,
    pub(crate) ban_window_s: Option<u64>,
    pub(crate) ban_for_s: Option<u64>,
    pub(crate) max_sources: Option<usize>,
    /// User-Agent substrings of scanners (replaces the default list).
    pub(crate) scanners: Option<Vec<String>>,
    /// Global caps on new calls.
    pub(crate) max_calls: Option<usize>,
    pub(crate) max_transactions: Option<usize>,
}

/// The shell's protection settings from `[protect]`.
#[derive(Debug, Clone)]
pub(crate) struct ShieldSettings {
    /// The budgets; `None`: `enabled = false`.
    pub(crate) limiter: Option<protect::Config>,
    pub(crate) caps: crate::shield::Caps,
}

/// Checks the budgets, ranges and caps of `[protect]`.
pub(crate) fn check_shield(
    ctx: &Ctx<'_>,
    p: &ProtectSection,
) -> Result<ShieldSettings, ConfigError> {
    let mut c = protect::Config::default();
    let rate = |v: &Option<Spanned<f32>>, field: &str, d: protect::Rate| match v {
        None => Ok(d),
        Some(x) if x.get_ref().is_finite() && *x.get_ref() > 0.0 => {
            Ok(protect::Rate::per_second(*x.get_ref()))
        }
        Some(x) => Err(ctx.err(
            Some(&x.span()),
            &format!("protect.{field}"),
            format!("{}: must be a positive number", x.get_ref()),
        )),
    };
    c.untrusted = [
        rate(&p.invite_per_second, "invite_per_second", c.untrusted[0])?,
        rate(
            &p.register_per_second,
            "register_per_second",
            c.untrusted[1],
        )?,
        rate(&p.other_per_second, "other_per_second", c.untrusted[2])?,
    ];
    let t = rate(&p.trusted_per_second, "trusted_per_second", c.trusted[0])?;
    c.trusted = [t; 3];
    for (i, r) in p.trusted.iter().enumerate() {
        let cidr = trunk::Cidr::parse(r.get_ref()).map_err(|e| {
            ctx.err(
                Some(&r.span()),
                &format!("protect.trusted[{i}]"),
                format!("{:?}: {e}", r.get_ref()),
            )
        })?;
        c.trusted_sources.push(cidr);
    }
    if let Some(v) = p.ban_after {
        c.ban_after = v;
    }
    if let Some(v) = p.ban_window_s {
        c.ban_window = std::time::Duration::from_secs(v.max(1));
    }
    if let Some(v) = p.ban_for_s {
        c.ban_for = std::time::Duration::from_secs(v);
    }
    if let Some(v) = p.max_sources {
        c.max_sources = v.max(1);
    }
    if let Some(v) = &p.scanners {
        c.scanners = v.clone();
    }
    let d = crate::shield::Caps::default();
    let caps = crate::shield::Caps {
        calls: p.max_calls.unwrap_or(d.calls),
        transactions: p.max_transactions.unwrap_or(d.transactions),
    };
    Ok(ShieldSettings {
        limiter: p.enabled.unwrap_or(true).then_some(c),
        caps,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum UnknownSourceName {
    Drop,
    Reject,
}

/// The B2BUA's protection settings from `[protect]`.
pub(crate) fn check_protect(
    _ctx: &Ctx<'_>,
    p: &ProtectSection,
) -> Result<b2bua::Protect, ConfigError> {
    let unknown = match p.unknown_source.as_ref().map(|u| *u.get_ref()) {
        None | Some(UnknownSourceName::Drop) => b2bua::UnknownSource::Drop,
        Some(UnknownSourceName::Reject) => b2bua::UnknownSource::Reject,
    };
    Ok(b2bua::Protect::new(unknown))
}
