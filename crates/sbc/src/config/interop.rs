//! A trunk's interop keys: `prack`, `update`, `provisional_timeout_s`,
//! `session_timer_s`, `session_refresher`, `min_se_s`.

use std::time::Duration;

use toml::Spanned;

use super::error::{ConfigError, Ctx};
use super::schema::{PrackName, RefresherName, TrunkSection};

/// Applies the interop keys of trunk `i` to `spec`.
pub(super) fn check_interop(
    ctx: &Ctx<'_>,
    i: usize,
    t: &TrunkSection,
    spec: &mut trunk::TrunkSpec,
) -> Result<(), ConfigError> {
    let f = |name: &str| format!("trunk[{i}].{name}");
    let ms = spec.kind.is_microsoft();
    let it = &mut spec.interop;
    if let Some(p) = &t.prack {
        it.rel100 = match p.get_ref() {
            PrackName::Off => trunk::Rel100::Off,
            PrackName::Supported => trunk::Rel100::Supported,
            PrackName::Required => trunk::Rel100::Required,
        };
        if ms && it.rel100 != trunk::Rel100::Off {
            return Err(ctx.err(
                Some(&p.span()),
                &f("prack"),
                "Teams and ACS Direct Routing do not use 100rel: the SBC absorbs reliable provisional responses of the other leg (leave prack off)",
            ));
        }
    }
    if let Some(u) = &t.update {
        it.update = *u.get_ref();
    }
    if let Some(v) = &t.provisional_timeout_s {
        if !(10..=600).contains(v.get_ref()) {
            return Err(ctx.err(
                Some(&v.span()),
                &f("provisional_timeout_s"),
                "must be between 10 and 600 seconds (RFC 3261 §16.6: Timer C is more than 3 minutes by default)",
            ));
        }
        it.provisional_timeout = Duration::from_secs(*v.get_ref());
    }
    if let Some(v) = &t.min_se_s {
        if !(90..=86_400).contains(v.get_ref()) {
            return Err(ctx.err(
                Some(&v.span()),
                &f("min_se_s"),
                "must be between 90 (RFC 4028 §4) and 86400 seconds",
            ));
        }
        it.min_se = *v.get_ref();
    }
    let refresher = match t.session_refresher.as_ref().map(Spanned::get_ref) {
        Some(RefresherName::Peer) => trunk::Refresher::Peer,
        Some(RefresherName::Sbc) | None => trunk::Refresher::Sbc,
    };
    match &t.session_timer_s {
        Some(v) if *v.get_ref() == 0 => it.session_timer = None,
        Some(v) => {
            if !(it.min_se..=86_400).contains(v.get_ref()) {
                return Err(ctx.err(
                    Some(&v.span()),
                    &f("session_timer_s"),
                    format!(
                        "must be 0 (off) or between min_se_s ({}) and 86400 seconds",
                        it.min_se
                    ),
                ));
            }
            it.session_timer = Some(trunk::SessionTimer {
                expires: *v.get_ref(),
                refresher,
            });
        }
        None => {
            if let Some(r) = &t.session_refresher {
                return Err(ctx.err(
                    Some(&r.span()),
                    &f("session_refresher"),
                    "needs session_timer_s (the interval the SBC asks for)",
                ));
            }
        }
    }
    Ok(())
}
