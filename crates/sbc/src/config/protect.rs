//! `[protect]`: protection that belongs to no trunk — what is done with a
//! request from a source no trunk accepts. (Per-trunk limits, `max_calls`
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
