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

/// The key of a leaf issued by [`DevCa::issue_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LeafKey {
    /// ECDSA P-256, as [`DevCa::issue`] makes.
    #[default]
    EcdsaP256,
    /// RSA 2048, the kind of key Microsoft's TLS 1.2 suites (ECDHE-RSA) need.
    Rsa2048,
    /// An RSA public key of this many bits whose private key exists nowhere
    /// (a made-up modulus): only for testing checks of key sizes that
    /// nothing generates any more, such as 1024. No key file is written.
    RsaPublicOnly(u32),
}

/// What a leaf issued by [`DevCa::issue_with`] (or made by [`self_signed`])
/// looks like. The defaults are those of [`DevCa::issue`] but for the
/// loopback addresses, which are left out.
#[derive(Debug, Clone)]
pub struct LeafOptions {
    /// DNS names (SAN).
    pub dns_names: Vec<String>,
    /// Subject common name; `None`: the first DNS name.
    pub common_name: Option<String>,
    /// Add 127.0.0.1 and ::1 to the SAN.
    pub loopback_ips: bool,
    /// The key.
    pub key: LeafKey,
    /// Extended key usage serverAuth.
    pub server_auth: bool,
    /// Extended key usage clientAuth.
    pub client_auth: bool,
    /// Start of validity; `None`: rcgen's default (1975).
    pub not_before: Option<std::time::SystemTime>,
    /// End of validity; `None`: rcgen's default (4096).
    pub not_after: Option<std::time::SystemTime>,
}

impl LeafOptions {
    /// A server and client certificate for `dns_names`, ECDSA P-256.
    pub fn new(dns_names: &[&str]) -> LeafOptions {
        LeafOptions {
            dns_names: dns_names.iter().map(|s| (*s).to_owned()).collect(),
            common_name: None,
            loopback_ips: false,
            key: LeafKey::EcdsaP256,
            server_auth: true,
            client_auth: true,
            not_before: None,
            not_after: None,
        }
    }

    fn params(&self) -> Result<CertificateParams, TlsError> {
        let mut params = CertificateParams::new(self.dns_names.clone()).map_err(e)?;
        if self.loopback_ips {
            params
                .subject_alt_names
                .push(SanType::IpAddress([127, 0, 0, 1].into()));
            params
                .subject_alt_names
                .push(SanType::IpAddress(std::net::Ipv6Addr::LOCALHOST.into()));
        }
        if let Some(cn) = self.common_name.as_ref().or(self.dns_names.first()) {
            params.distinguished_name.push(DnType::CommonName, cn);
        }
        params.extended_key_usages = [
            (self.server_auth, ExtendedKeyUsagePurpose::ServerAuth),
            (self.client_auth, ExtendedKeyUsagePurpose::ClientAuth),
        ]
        .into_iter()
        .filter_map(|(on, p)| on.then_some(p))
        .collect();
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        if let Some(t) = self.not_before {
            params.not_before = t.into();
        }
        if let Some(t) = self.not_after {
            params.not_after = t.into();
        }
        Ok(params)
    }
}

/// An RSA public key with a made-up modulus of `bits` bits (top bit set,
/// odd) and exponent 65537: parses as an RSA key of that size, matches no
/// private key.
#[derive(Debug)]
struct PlaceholderRsa(Vec<u8>);

impl PlaceholderRsa {
    fn new(bits: u32) -> PlaceholderRsa {
        let len = (bits as usize).div_ceil(8).max(1);
        let mut n = vec![0x5a_u8; len];
        n[0] = 0x80 | 0x5a;
        n[len - 1] |= 1;
        // RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }
        let mut modulus = vec![0u8]; // leading zero: the INTEGER stays positive
        modulus.extend_from_slice(&n);
        let mut body = der_tlv(0x02, &modulus);
        body.extend(der_tlv(0x02, &[0x01, 0x00, 0x01]));
        PlaceholderRsa(der_tlv(0x30, &body))
    }
}

fn der_tlv(tag: u8, value: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = value.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(value);
    out
}

impl rcgen::PublicKeyData for PlaceholderRsa {
    fn der_bytes(&self) -> &[u8] {
        &self.0
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &rcgen::PKCS_RSA_SHA256
    }
}

fn leaf_key(key: LeafKey) -> Result<Option<KeyPair>, TlsError> {
    match key {
        LeafKey::EcdsaP256 => KeyPair::generate().map(Some).map_err(e),
        LeafKey::Rsa2048 => {
            KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
                .map(Some)
                .map_err(e)
        }
        LeafKey::RsaPublicOnly(_) => Ok(None),
    }
}

fn leaf_files(dir: &Path, label: &str) -> IdentityFiles {
    IdentityFiles {
        cert: dir.join(format!("{label}.pem")),
        key: dir.join(format!("{label}.key")),
    }
}

impl DevCa {
    /// Creates a self-signed CA whose subject common name is `common_name`
    /// (not the development CA's) with a key of kind `key` (its signatures:
    /// ECDSA or RSA with SHA-256), writing `<dir>/<label>.pem` and `.key`:
    /// for tests of checks that look at a root's name or signatures.
    pub fn create_named(
        dir: &Path,
        label: &str,
        common_name: &str,
        key: LeafKey,
    ) -> Result<DevCa, TlsError> {
        std::fs::create_dir_all(dir).map_err(|x| e(format!("{}: {x}", dir.display())))?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(e)?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let Some(key) = leaf_key(key)? else {
            return Err(e("a CA needs a private key"));
        };
        let cert = params.self_signed(&key).map_err(e)?;
        let cert_path = dir.join(format!("{label}.pem"));
        write(&cert_path, &cert.pem())?;
        write_key(&dir.join(format!("{label}.key")), &key.serialize_pem())?;
        Ok(DevCa {
            issuer: Issuer::new(params, key),
            cert: cert_path,
        })
    }

    /// Creates a CA called `name` issued by this one (an intermediate),
    /// writing `<dir>/<name>.pem` (its certificate alone) and `.key`.
    pub fn create_intermediate(&self, dir: &Path, name: &str) -> Result<DevCa, TlsError> {
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
        let cert = params.signed_by(&key, &self.issuer).map_err(e)?;
        let cert_path = dir.join(format!("{name}.pem"));
        write(&cert_path, &cert.pem())?;
        write_key(&dir.join(format!("{name}.key")), &key.serialize_pem())?;
        Ok(DevCa {
            issuer: Issuer::new(params, key),
            cert: cert_path,
        })
    }

    /// Issues a leaf as `opts` says; writes `<dir>/<label>.pem` and (unless
    /// the key is [`LeafKey::RsaPublicOnly`]) `<dir>/<label>.key`.
    pub fn issue_with(
        &self,
        dir: &Path,
        label: &str,
        opts: &LeafOptions,
    ) -> Result<IdentityFiles, TlsError> {
        let params = opts.params()?;
        let files = leaf_files(dir, label);
        let cert = match (opts.key, leaf_key(opts.key)?) {
            (_, Some(key)) => {
                write_key(&files.key, &key.serialize_pem())?;
                params.signed_by(&key, &self.issuer).map_err(e)?
            }
            (LeafKey::RsaPublicOnly(bits), None) => params
                .signed_by(&PlaceholderRsa::new(bits), &self.issuer)
                .map_err(e)?,
            (_, None) => return Err(e("no key generated")),
        };
        write(&files.cert, &cert.pem())?;
        Ok(files)
    }
}

/// A self-signed leaf (no CA): what Microsoft refuses. Writes
/// `<dir>/<label>.pem` and `.key`; a [`LeafKey::RsaPublicOnly`] key cannot
/// sign and is refused.
pub fn self_signed(dir: &Path, label: &str, opts: &LeafOptions) -> Result<IdentityFiles, TlsError> {
    std::fs::create_dir_all(dir).map_err(|x| e(format!("{}: {x}", dir.display())))?;
    let Some(key) = leaf_key(opts.key)? else {
        return Err(e("a self-signed certificate needs a private key"));
    };
    let cert = opts.params()?.self_signed(&key).map_err(e)?;
    let files = leaf_files(dir, label);
    write(&files.cert, &cert.pem())?;
    write_key(&files.key, &key.serialize_pem())?;
    Ok(files)
}
