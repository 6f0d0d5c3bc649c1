//! `[phones]`: the registrar of the `phones` trunks — the users file
//! (read and checked at load, so `sbc check` finds its mistakes with their
//! line), the realm, expiries, the store, and the blocking of sources that
//! keep failing authentication.

use std::path::PathBuf;
use std::time::Duration;

use toml::Spanned;

use super::error::{ConfigError, Ctx};
use super::schema::{BlockName, Config, PhonesSection};

/// Where registrations are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StoreKind {
    /// Only in memory: lost on restart.
    Memory,
    /// An embedded redb file in this directory: survives a restart.
    Redb(PathBuf),
    /// A Redis server, shared by several SBCs (`redis://host:port/db`).
    Redis(String),
}

/// The checked `[phones]` section.
#[derive(Debug, Clone)]
pub(crate) struct PhonesSettings {
    /// The users file, to read again on reload.
    pub(crate) users_file: PathBuf,
    /// The registrar's settings and the users as loaded.
    pub(crate) phones: b2bua::Phones,
    pub(crate) store: StoreKind,
}

pub(super) fn check_phones(
    ctx: &Ctx<'_>,
    config: &Config,
) -> Result<Option<PhonesSettings>, ConfigError> {
    let Some(section) = &config.phones else {
        return Ok(None);
    };
    let p: &PhonesSection = section.get_ref();
    let f = |name: &str| format!("phones.{name}");
    let realm = match &p.realm {
        Some(r) if r.get_ref().is_empty() || r.get_ref().contains('"') => {
            return Err(ctx.err(
                Some(&r.span()),
                &f("realm"),
                "a realm is a non-empty text without quotes",
            ));
        }
        Some(r) => r.get_ref().clone(),
        None => config.sbc.fqdn.get_ref().clone(),
    };
    let users_file = p.users.get_ref().clone();
    let users = registrar::Users::load(&users_file, &realm).map_err(|e| {
        // The users file's own file:line: field: message, named from here.
        ctx.err(Some(&p.users.span()), &f("users"), e.to_string())
    })?;
    let secs32 = |v: &Option<Spanned<u32>>, name: &str, default: u32| -> Result<u32, ConfigError> {
        match v {
            Some(x) if *x.get_ref() == 0 => {
                Err(ctx.err(Some(&x.span()), &f(name), "must be more than 0"))
            }
            Some(x) => Ok(*x.get_ref()),
            None => Ok(default),
        }
    };
    let mut rc = registrar::Config::default();
    rc.auth.realm = realm;
    rc.default_expires = secs32(
        &p.default_expires_s,
        "default_expires_s",
        rc.default_expires,
    )?;
    rc.min_expires = secs32(&p.min_expires_s, "min_expires_s", rc.min_expires)?;
    rc.max_expires = secs32(&p.max_expires_s, "max_expires_s", rc.max_expires)?;
    if rc.min_expires > rc.max_expires {
        let span = p.min_expires_s.as_ref().map(Spanned::span);
        return Err(ctx.err(
            span.as_ref(),
            &f("min_expires_s"),
            format!(
                "{} is above max_expires_s {}",
                rc.min_expires, rc.max_expires
            ),
        ));
    }
    if let Some(m) = &p.max_contacts {
        if *m.get_ref() == 0 {
            return Err(ctx.err(Some(&m.span()), &f("max_contacts"), "must be at least 1"));
        }
        rc.max_contacts = *m.get_ref();
    }
    if let Some(n) = &p.nonce_lifetime_s {
        if !(1..=86_400).contains(n.get_ref()) {
            return Err(ctx.err(
                Some(&n.span()),
                &f("nonce_lifetime_s"),
                "must be 1 to 86400 seconds",
            ));
        }
        rc.auth.nonce_lifetime = Duration::from_secs(*n.get_ref());
    }
    if let Some(pr) = &p.protect {
        if let Some(x) = &pr.max_failures_per_ip {
            rc.protect.max_failures_per_ip = *x.get_ref();
        }
        if let Some(x) = &pr.max_failures_per_user {
            rc.protect.max_failures_per_user = *x.get_ref();
        }
        for (v, name, slot) in [
            (&pr.window_s, "protect.window_s", &mut rc.protect.window),
            (&pr.block_s, "protect.block_s", &mut rc.protect.block_for),
        ] {
            if let Some(x) = v {
                if *x.get_ref() == 0 {
                    return Err(ctx.err(Some(&x.span()), &f(name), "must be more than 0"));
                }
                *slot = Duration::from_secs(*x.get_ref());
            }
        }
        if let Some(a) = &pr.action {
            rc.protect.action = match a.get_ref() {
                BlockName::Drop => registrar::BlockAction::Drop,
                BlockName::Forbidden => registrar::BlockAction::Forbidden,
            };
        }
    }
    let data_dir = p
        .data_dir
        .as_ref()
        .map_or_else(|| PathBuf::from("data"), |d| d.get_ref().clone());
    let store = match p.store.as_ref().map(|s| (s.get_ref().as_str(), s.span())) {
        None | Some(("redb", _)) => StoreKind::Redb(data_dir),
        Some(("memory", _)) => StoreKind::Memory,
        Some((url, _)) if url.starts_with("redis://") && url.len() > "redis://".len() => {
            StoreKind::Redis(url.to_owned())
        }
        Some((other, span)) => {
            return Err(ctx.err(
                Some(&span),
                &f("store"),
                format!("{other:?}: use \"redb\", \"memory\" or \"redis://host:port/db\""),
            ));
        }
    };
    Ok(Some(PhonesSettings {
        users_file,
        phones: b2bua::Phones {
            registrar: rc,
            users,
        },
        store,
    }))
}
