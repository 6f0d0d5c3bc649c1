//! `[tls.NAME]` profiles: their own checks, the Teams/ACS certificate names
//! (a trunk's FQDN must be on its certificate, and on every TLS listener it
//! can arrive on), and loading them for the transport crate.

use std::collections::BTreeMap;
use std::sync::Arc;

use rustls_pki_types::CertificateDer;
use toml::Spanned;

use super::error::{ConfigError, Ctx};
use super::listen::Listener;
use super::schema::{Config, TrunkSection};
use super::Loaded;

/// Checks each `[tls.NAME]` section on its own (files are read later).
pub(super) fn check_sections(ctx: &Ctx<'_>, config: &Config) -> Result<(), ConfigError> {
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
    Ok(())
}

/// A Teams or ACS trunk's FQDN must be a name of its client certificate (the
/// first identity of its TLS profile): Microsoft checks it against Contact.
/// Checked when the file is there; a missing file is a warning here (the
/// daemon and `sbc check` refuse it when they load the profile).
pub(super) fn check_identity(
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
pub(super) fn check_served(
    ctx: &Ctx<'_>,
    config: &Config,
    i: usize,
    t: &TrunkSection,
    spec: &trunk::TrunkSpec,
    listeners: &[Listener],
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
pub(super) fn first_pem_certificate(pem: &[u8]) -> Result<Option<CertificateDer<'static>>, String> {
    rustls_pemfile::certs(&mut &pem[..])
        .next()
        .transpose()
        .map_err(|e| format!("bad PEM: {e}"))
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
    ) -> Result<BTreeMap<String, Arc<transport::TlsContext>>, ConfigError> {
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
            let ctx = transport::TlsContext::new(profile).map_err(|e| {
                ConfigError::unlocated(&self.source, &format!("tls.{name}"), e.to_string())
            })?;
            out.insert(name.clone(), Arc::new(ctx));
        }
        Ok(out)
    }
}
