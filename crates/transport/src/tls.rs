//! The TLS profile: identities chosen by SNI (with a default when no SNI is
//! sent), the same identity presented as client certificate on outbound
//! connections, peer certificates checked against a CA bundle *and* an
//! expected peer name, per-listener/peer versions, cipher suites and
//! key-exchange groups, and hot reload of certificates and trust stores.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::{ArcSwap, ArcSwapOption};
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, ServerConfig, SupportedProtocolVersion};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};

/// A TLS configuration error, naming the file or setting at fault.
#[derive(Debug)]
pub struct TlsError(pub String);

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TlsError {}

fn err(msg: impl Into<String>) -> TlsError {
    TlsError(msg.into())
}

/// Where an identity's certificate chain and key are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityFiles {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// The TLS parameters of one listener or peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsProfile {
    /// Identities; the first is the default (used without SNI and as client certificate).
    pub identities: Vec<IdentityFiles>,
    /// PEM CA bundle that peer certificates must chain to. Empty: no peer verification
    /// (server side: no client certificate requested).
    pub ca: Option<PathBuf>,
    /// Server side: require a client certificate (mutual TLS).
    pub require_client_cert: bool,
    /// Names of which at least one must be in the peer certificate (SAN or CN);
    /// empty: any name the CA vouches for. Outbound: the first is the SNI and
    /// the name verified.
    pub peer_names: Vec<String>,
    /// "1.2", "1.3"; empty means both.
    pub versions: Vec<String>,
    /// rustls cipher suite names (e.g. `TLS13_AES_256_GCM_SHA384`,
    /// `TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384`); empty means the provider's defaults.
    pub cipher_suites: Vec<String>,
    /// Key-exchange groups (`X25519`, `secp256r1`, `secp384r1`, `X25519MLKEM768`);
    /// empty means X25519, secp256r1, secp384r1 (no post-quantum hybrid: it makes
    /// the ClientHello larger than some middleboxes accept).
    pub kx_groups: Vec<String>,
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let data = std::fs::read(path).map_err(|e| err(format!("{}: {e}", path.display())))?;
    let certs: Vec<_> = rustls_pemfile::certs(&mut &data[..])
        .collect::<Result<_, _>>()
        .map_err(|e| err(format!("{}: bad PEM: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(err(format!("{}: no certificate in file", path.display())));
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let data = std::fs::read(path).map_err(|e| err(format!("{}: {e}", path.display())))?;
    rustls_pemfile::private_key(&mut &data[..])
        .map_err(|e| err(format!("{}: bad PEM: {e}", path.display())))?
        .ok_or_else(|| err(format!("{}: no private key in file", path.display())))
}

fn read_roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for c in read_certs(path)? {
        roots
            .add(c)
            .map_err(|e| err(format!("{}: bad CA certificate: {e}", path.display())))?;
    }
    Ok(roots)
}

/// The crypto provider for a profile: aws-lc-rs, with its suites and groups
/// filtered as configured.
fn provider(p: &TlsProfile) -> Result<CryptoProvider, TlsError> {
    let mut prov = rustls::crypto::aws_lc_rs::default_provider();
    if !p.cipher_suites.is_empty() {
        let all = prov.cipher_suites.clone();
        prov.cipher_suites = p
            .cipher_suites
            .iter()
            .map(|name| {
                all.iter()
                    .find(|s| format!("{:?}", s.suite()).eq_ignore_ascii_case(name))
                    .copied()
                    .ok_or_else(|| err(format!("cipher_suites: unknown suite {name:?}")))
            })
            .collect::<Result<_, _>>()?;
    }
    let groups: Vec<String> = if p.kx_groups.is_empty() {
        vec!["X25519".into(), "secp256r1".into(), "secp384r1".into()]
    } else {
        p.kx_groups.clone()
    };
    let all = prov.kx_groups.clone();
    prov.kx_groups = groups
        .iter()
        .map(|name| {
            all.iter()
                .find(|g| format!("{:?}", g.name()).eq_ignore_ascii_case(name))
                .copied()
                .ok_or_else(|| err(format!("kx_groups: unknown group {name:?}")))
        })
        .collect::<Result<_, _>>()?;
    Ok(prov)
}

fn versions(p: &TlsProfile) -> Result<Vec<&'static SupportedProtocolVersion>, TlsError> {
    if p.versions.is_empty() {
        return Ok(vec![&rustls::version::TLS13, &rustls::version::TLS12]);
    }
    p.versions
        .iter()
        .map(|v| match v.as_str() {
            "1.2" => Ok(&rustls::version::TLS12),
            "1.3" => Ok(&rustls::version::TLS13),
            other => Err(err(format!(
                "versions: unsupported TLS version {other:?} (use \"1.2\" or \"1.3\")"
            ))),
        })
        .collect()
}

/// A loaded identity.
#[derive(Debug)]
struct Identity {
    key: Arc<CertifiedKey>,
    names: Vec<String>,
}

/// DNS names (SAN) of a certificate, falling back to nothing when it has none.
pub fn cert_dns_names(der: &CertificateDer<'_>) -> Vec<String> {
    let Ok(cert) = webpki::EndEntityCert::try_from(der) else {
        return Vec::new();
    };
    cert.valid_dns_names().map(str::to_owned).collect()
}

/// True when the certificate is valid for one of `names` (SAN DNS names, RFC 2818 wildcards).
pub fn cert_matches_any(der: &CertificateDer<'_>, names: &[String]) -> bool {
    let Ok(cert) = webpki::EndEntityCert::try_from(der) else {
        return false;
    };
    names.iter().any(|n| {
        ServerName::try_from(n.as_str())
            .ok()
            .is_some_and(|sn| cert.verify_is_valid_for_subject_name(&sn).is_ok())
    })
}

/// Chooses the server certificate by SNI among several identities, with the
/// first as default when no SNI is sent or none matches.
#[derive(Debug)]
struct SniResolver {
    identities: Vec<Identity>,
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let chosen = hello.server_name().and_then(|sni| {
            self.identities
                .iter()
                .find(|id| id.names.iter().any(|n| sip::dns_name_matches(n, sni)))
        });
        chosen
            .or_else(|| self.identities.first())
            .map(|id| id.key.clone())
    }
}

fn load_identities(p: &TlsProfile, prov: &CryptoProvider) -> Result<Vec<Identity>, TlsError> {
    if p.identities.is_empty() {
        return Err(err(
            "identities: at least one certificate/key pair is required",
        ));
    }
    p.identities
        .iter()
        .map(|f| {
            let certs = read_certs(&f.cert)?;
            let key = read_key(&f.key)?;
            let signing = prov
                .key_provider
                .load_private_key(key)
                .map_err(|e| err(format!("{}: unusable key: {e}", f.key.display())))?;
            let names = cert_dns_names(&certs[0]);
            let ck = CertifiedKey::new(certs, signing);
            ck.keys_match().map_err(|e| {
                err(format!(
                    "{} and {}: key does not match certificate: {e}",
                    f.cert.display(),
                    f.key.display()
                ))
            })?;
            Ok(Identity {
                key: Arc::new(ck),
                names,
            })
        })
        .collect()
}

/// Builds the rustls server configuration of a listener.
pub fn server_config(p: &TlsProfile) -> Result<ServerConfig, TlsError> {
    server_parts(p).map(|(cfg, _)| cfg)
}

/// [`server_config`] and the leaf certificate of each identity.
fn server_parts(p: &TlsProfile) -> Result<(ServerConfig, Vec<CertificateDer<'static>>), TlsError> {
    let prov = Arc::new(provider(p)?);
    let identities = load_identities(p, &prov)?;
    let leaves = identities
        .iter()
        .filter_map(|id| id.key.cert.first().cloned())
        .collect();
    let verifier = match &p.ca {
        Some(ca) => {
            let b = WebPkiClientVerifier::builder_with_provider(
                Arc::new(read_roots(ca)?),
                prov.clone(),
            );
            let b = if p.require_client_cert {
                b
            } else {
                b.allow_unauthenticated()
            };
            b.build()
                .map_err(|e| err(format!("{}: {e}", ca.display())))?
        }
        None if p.require_client_cert => {
            return Err(err(
                "require_client_cert needs a ca bundle to verify client certificates",
            ));
        }
        None => WebPkiClientVerifier::no_client_auth(),
    };
    let mut cfg = ServerConfig::builder_with_provider(prov)
        .with_protocol_versions(&versions(p)?)
        .map_err(|e| err(format!("versions/cipher_suites/kx_groups: {e}")))?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(Arc::new(SniResolver { identities }));
    cfg.alpn_protocols.clear();
    Ok((cfg, leaves))
}

/// Builds the rustls client configuration for outbound connections: the
/// profile's default identity as client certificate, peers verified against
/// the CA bundle (required outbound).
pub fn client_config(p: &TlsProfile) -> Result<ClientConfig, TlsError> {
    let prov = Arc::new(provider(p)?);
    let ca =
        p.ca.as_ref()
            .ok_or_else(|| err("ca: outbound TLS needs a CA bundle to verify peers"))?;
    let roots = read_roots(ca)?;
    let builder = ClientConfig::builder_with_provider(prov)
        .with_protocol_versions(&versions(p)?)
        .map_err(|e| err(format!("versions/cipher_suites/kx_groups: {e}")))?
        .with_root_certificates(roots);
    let cfg = match p.identities.first() {
        Some(id) => builder
            .with_client_auth_cert(read_certs(&id.cert)?, read_key(&id.key)?)
            .map_err(|e| err(format!("{}: {e}", id.cert.display())))?,
        None => builder.with_no_client_auth(),
    };
    Ok(cfg)
}

/// A profile's live configurations, swapped atomically on reload: new
/// handshakes use the new files, established connections are untouched.
#[derive(Debug)]
pub struct TlsContext {
    profile: ArcSwap<TlsProfile>,
    server: ArcSwap<ServerConfig>,
    client: ArcSwapOption<ClientConfig>,
    /// The leaf certificate of each identity, as last loaded.
    leaves: ArcSwap<Vec<CertificateDer<'static>>>,
}

impl TlsContext {
    /// Loads a profile. The client side is built only when the profile has a CA bundle.
    pub fn new(profile: TlsProfile) -> Result<TlsContext, TlsError> {
        let (server, leaves) = server_parts(&profile)?;
        let client = match profile.ca {
            Some(_) => ArcSwapOption::from_pointee(client_config(&profile)?),
            None => ArcSwapOption::empty(),
        };
        Ok(TlsContext {
            profile: ArcSwap::from_pointee(profile),
            server: ArcSwap::from_pointee(server),
            client,
            leaves: ArcSwap::from_pointee(leaves),
        })
    }

    /// Re-reads certificates, keys and the CA bundle. On error the old
    /// configuration stays in force.
    pub fn reload(&self) -> Result<(), TlsError> {
        let profile = self.profile.load_full();
        let (server, leaves) = server_parts(&profile)?;
        let client = match profile.ca {
            Some(_) => Some(Arc::new(client_config(&profile)?)),
            None => None,
        };
        self.server.store(Arc::new(server));
        self.leaves.store(Arc::new(leaves));
        self.client.store(client);
        Ok(())
    }

    /// Takes the profile and configurations of `new` (a context the same
    /// profile name has in a reloaded configuration, already loaded, so
    /// nothing can fail half-way): new handshakes use them, established
    /// connections are untouched.
    pub fn adopt(&self, new: &TlsContext) {
        self.profile.store(new.profile.load_full());
        self.server.store(new.server());
        self.leaves.store(new.certificates());
        self.client.store(new.client());
    }

    /// The current server configuration.
    pub fn server(&self) -> Arc<ServerConfig> {
        self.server.load_full()
    }

    /// The current client configuration, if outbound TLS is possible.
    pub fn client(&self) -> Option<Arc<ClientConfig>> {
        self.client.load_full()
    }

    /// The leaf certificate of each identity, in the profile's order, as
    /// last (re)loaded: a new `Arc` after each successful [`Self::reload`]
    /// or [`Self::adopt`].
    pub fn certificates(&self) -> Arc<Vec<CertificateDer<'static>>> {
        self.leaves.load_full()
    }

    /// The profile (the one last loaded).
    pub fn profile(&self) -> Arc<TlsProfile> {
        self.profile.load_full()
    }
}
