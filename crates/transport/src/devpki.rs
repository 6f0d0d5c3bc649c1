//! A development PKI for loopback tests, labs and `sbc run`'s default
//! configuration: a CA and leaf certificates (server and client
//! authentication, as Microsoft requires of an SBC certificate) written as
//! PEM files. Never for production: keys are written unencrypted.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

use crate::tls::{IdentityFiles, TlsError};

/// A CA able to issue leaf certificates.
#[derive(Debug)]
pub struct DevCa {
    issuer: Issuer<'static, KeyPair>,
    /// The CA certificate (PEM) file.
    pub cert: PathBuf,
}

fn e(x: impl std::fmt::Display) -> TlsError {
    TlsError(format!("dev PKI: {x}"))
}

fn write(path: &Path, data: &str) -> Result<(), TlsError> {
    std::fs::write(path, data).map_err(|x| e(format!("{}: {x}", path.display())))
}

/// Writes a private key readable by its owner only.
fn write_key(path: &Path, data: &str) -> Result<(), TlsError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|x| e(format!("{}: {x}", path.display())))?;
    f.write_all(data.as_bytes())
        .map_err(|x| e(format!("{}: {x}", path.display())))
}

impl DevCa {
    /// Creates a CA called `name`, writing `<dir>/<name>.pem` and `<dir>/<name>.key`.
    pub fn create(dir: &Path, name: &str) -> Result<DevCa, TlsError> {
        std::fs::create_dir_all(dir).map_err(|x| e(format!("{}: {x}", dir.display())))?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(e)?;
        params
            .distinguished_name
            .push(DnType::CommonName, format!("sbc development CA {name}"));
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().map_err(e)?;
        let cert = params.self_signed(&key).map_err(e)?;
        let cert_path = dir.join(format!("{name}.pem"));
        write(&cert_path, &cert.pem())?;
        write_key(&dir.join(format!("{name}.key")), &key.serialize_pem())?;
        Ok(DevCa {
            issuer: Issuer::new(params, key),
            cert: cert_path,
        })
    }

    /// Issues a leaf for `dns_names` (plus 127.0.0.1 and ::1), usable as
    /// server and client certificate; writes `<dir>/<label>.pem` and `.key`.
    pub fn issue(
        &self,
        dir: &Path,
        label: &str,
        dns_names: &[&str],
    ) -> Result<IdentityFiles, TlsError> {
        let mut params = CertificateParams::new(
            dns_names
                .iter()
                .map(|s| (*s).to_owned())
                .collect::<Vec<_>>(),
        )
        .map_err(e)?;
        params
            .subject_alt_names
            .push(SanType::IpAddress([127, 0, 0, 1].into()));
        params
            .subject_alt_names
            .push(SanType::IpAddress(std::net::Ipv6Addr::LOCALHOST.into()));
        if let Some(first) = dns_names.first() {
            params.distinguished_name.push(DnType::CommonName, *first);
        }
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        let key = KeyPair::generate().map_err(e)?;
        let cert = params.signed_by(&key, &self.issuer).map_err(e)?;
        let files = IdentityFiles {
            cert: dir.join(format!("{label}.pem")),
            key: dir.join(format!("{label}.key")),
        };
        write(&files.cert, &cert.pem())?;
        write_key(&files.key, &key.serialize_pem())?;
        Ok(files)
    }
}
