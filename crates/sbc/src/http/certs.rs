//! When the certificates the SBC presents expire: the leaf of every
//! identity of every TLS profile in use (listeners and trunks), as the
//! profile last loaded it — a SIGHUP reload shows at the next snapshot.
//! `sbc_tls_certificate_expiry_timestamp_seconds{profile,subject}` and the
//! status page's certificate table.

use std::sync::{Arc, Mutex};

use rustls_pki_types::CertificateDer;
use transport::TlsContext;
use x509_parser::prelude::{FromDer, X509Certificate};

/// One certificate presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CertRow {
    /// The TLS profile (`[tls.NAME]`).
    pub(crate) profile: String,
    /// Its subject's common name (else its first DNS name, else the whole
    /// subject).
    pub(crate) subject: String,
    /// notAfter, Unix seconds; `None` when the certificate does not parse.
    pub(crate) not_after: Option<i64>,
}

/// The profiles to watch and what their leaves said last time: a leaf
/// list is parsed again only when its profile reloaded.
#[derive(Debug)]
pub(crate) struct CertWatch {
    profiles: Vec<(String, Arc<TlsContext>)>,
    seen: Mutex<Vec<Seen>>,
}

type Leaves = Arc<Vec<CertificateDer<'static>>>;

#[derive(Debug)]
struct Seen {
    leaves: Leaves,
    rows: Vec<CertRow>,
}

impl CertWatch {
    /// Watches `profiles` (a name given twice — a listener's and a trunk's
    /// context of one profile — is watched once), sorted by name.
    pub(crate) fn new<'a>(
        profiles: impl IntoIterator<Item = (&'a String, &'a Arc<TlsContext>)>,
    ) -> CertWatch {
        let mut v: Vec<(String, Arc<TlsContext>)> = Vec::new();
        for (name, ctx) in profiles {
            if !v.iter().any(|(n, _)| n == name) {
                v.push((name.clone(), ctx.clone()));
            }
        }
        v.sort_by(|a, b| a.0.cmp(&b.0));
        CertWatch {
            profiles: v,
            seen: Mutex::new(Vec::new()),
        }
    }

    /// Every profile's certificates, as loaded now.
    pub(crate) fn rows(&self) -> Vec<CertRow> {
        // Held for a pointer comparison per profile (and a parse after a reload).
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        seen.resize_with(self.profiles.len(), || Seen {
            leaves: Arc::default(),
            rows: Vec::new(),
        });
        let mut out = Vec::new();
        for ((name, ctx), s) in self.profiles.iter().zip(seen.iter_mut()) {
            let leaves = ctx.certificates();
            if !Arc::ptr_eq(&leaves, &s.leaves) {
                s.rows = leaves.iter().map(|der| row(name, der)).collect();
                s.leaves = leaves;
            }
            out.extend(s.rows.iter().cloned());
        }
        out
    }
}

/// The subject and notAfter of `der`.
pub(crate) fn row(profile: &str, der: &[u8]) -> CertRow {
    let Ok((_, c)) = X509Certificate::from_der(der) else {
        return CertRow {
            profile: profile.to_owned(),
            subject: "unparsable certificate".to_owned(),
            not_after: None,
        };
    };
    let cn = c
        .subject()
        .iter_common_name()
        .find_map(|a| a.as_str().ok().map(str::to_owned));
    let dns = || {
        c.subject_alternative_name().ok().flatten().and_then(|san| {
            san.value.general_names.iter().find_map(|n| match n {
                x509_parser::extensions::GeneralName::DNSName(d) => Some((*d).to_owned()),
                _ => None,
            })
        })
    };
    let subject = cn.or_else(dns).unwrap_or_else(|| c.subject().to_string());
    CertRow {
        profile: profile.to_owned(),
        subject,
        not_after: Some(c.validity().not_after.timestamp()),
    }
}
