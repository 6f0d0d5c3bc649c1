//! The rules on one certificate Microsoft sees (the SBC's, as TLS server
//! and as TLS client): chain, root, names, EKU, key, signature, validity.
//! Pure: the certificates, the CA stores and the time are inputs.

use trunk::TrunkKind;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::public_key::PublicKey;
use x509_parser::x509::X509Name;

use super::roots;
use super::{date, Finding, Severity};

/// A trunk that uses a certificate, and the FQDN it must carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Usage {
    pub(crate) trunk: String,
    pub(crate) kind: TrunkKind,
    pub(crate) fqdn: String,
}

/// One certificate file to check, and what it is for.
#[derive(Debug)]
pub(crate) struct CertCheck<'a> {
    /// How findings name it (the file's path).
    pub(crate) subject: String,
    /// The file's certificates (DER), leaf first: what the SBC sends.
    pub(crate) chain: &'a [Vec<u8>],
    /// The CA bundles of the profiles it is used in.
    pub(crate) bundle: Vec<&'a [u8]>,
    /// The trunks it serves.
    pub(crate) uses: Vec<Usage>,
    /// Used toward GCC High or DoD (`*.teams.microsoft.us` peers).
    pub(crate) gov: bool,
}

/// CA certificates other than the file's and the profile's bundle.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Trust<'a> {
    /// The system's store (a public CA's root is there).
    pub(crate) system: &'a [Vec<u8>],
    /// `--trust-ca`: taken as trusted by Microsoft (loopback tests, labs).
    pub(crate) trusted: &'a [Vec<u8>],
}

/// Seconds in a day.
const DAY: i64 = 86_400;

/// Microsoft's health dashboard warns this long before expiry (S7).
const EXPIRY_WARNING_DAYS: i64 = 30;

/// Where a CA certificate of a chain was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    File,
    Trusted,
    Bundle,
    System,
}

impl Source {
    fn as_str(self) -> &'static str {
        match self {
            Source::File => "the certificate file",
            Source::Trusted => "--trust-ca",
            Source::Bundle => "the CA bundle",
            Source::System => "the system's CA store",
        }
    }
}

fn finding(
    severity: Severity,
    rule: &'static str,
    subject: &str,
    message: String,
    fix: &str,
) -> Finding {
    Finding {
        severity,
        rule,
        subject: subject.to_owned(),
        message,
        fix: (severity != Severity::Ok).then(|| fix.to_owned()),
    }
}

fn ok(rule: &'static str, subject: &str, message: String) -> Finding {
    finding(Severity::Ok, rule, subject, message, "")
}

/// The values of a name's CN and O attributes.
fn cn_and_o(name: &X509Name<'_>) -> Vec<String> {
    name.iter_common_name()
        .chain(name.iter_organization())
        .filter_map(|a| a.as_str().ok().map(str::to_owned))
        .collect()
}

fn common_names(name: &X509Name<'_>) -> Vec<String> {
    name.iter_common_name()
        .filter_map(|a| a.as_str().ok().map(str::to_owned))
        .collect()
}

/// A short name for a certificate: its CN, else the whole subject.
fn short(name: &X509Name<'_>) -> String {
    common_names(name)
        .into_iter()
        .next()
        .unwrap_or_else(|| name.to_string())
}

fn same_name(a: &X509Name<'_>, b: &X509Name<'_>) -> bool {
    a.as_raw() == b.as_raw() || a.to_string() == b.to_string()
}

fn dns_sans(c: &X509Certificate<'_>) -> Vec<String> {
    match c.subject_alternative_name() {
        Ok(Some(ext)) => ext
            .value
            .general_names
            .iter()
            .filter_map(|g| match g {
                GeneralName::DNSName(n) => Some((*n).to_owned()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn parse(der: &[u8]) -> Option<X509Certificate<'_>> {
    x509_parser::parse_x509_certificate(der)
        .ok()
        .map(|(_, c)| c)
}

fn parsed(ders: &[Vec<u8>], src: Source) -> Vec<(X509Certificate<'_>, Source)> {
    ders.iter()
        .filter_map(|d| parse(d))
        .map(|x| (x, src))
        .collect()
}

/// Checks one certificate file against every rule on certificates.
pub(crate) fn check(c: &CertCheck<'_>, trust: Trust<'_>, now: i64) -> Vec<Finding> {
    let s = c.subject.as_str();
    let mut out = Vec::new();
    let Some(leaf) = c.chain.first().and_then(|d| parse(d)) else {
        out.push(finding(
            Severity::Error,
            "cert.parse",
            s,
            "no X.509 certificate could be read from the file".into(),
            "put the SBC certificate (PEM), then its intermediates, in this file",
        ));
        return out;
    };
    let file: Vec<X509Certificate<'_>> = c.chain.iter().skip(1).filter_map(|d| parse(d)).collect();
    names(&leaf, c, &mut out);
    eku(&leaf, c, &mut out);
    key(&leaf, s, &mut out);
    let mut issued = vec![&leaf];
    issued.extend(file.iter().filter(|x| !is_self_issued(x)));
    signature(&issued, s, &mut out);
    validity(&issued, s, now, &mut out);
    chain(&leaf, &file, c, trust, &mut out);
    out
}

fn is_self_issued(c: &X509Certificate<'_>) -> bool {
    same_name(c.subject(), c.issuer())
}

/// `cert.san`: every FQDN the certificate must carry is in its SAN
/// (RFC 2818 one-label wildcards); CN alone is a warning.
fn names(leaf: &X509Certificate<'_>, c: &CertCheck<'_>, out: &mut Vec<Finding>) {
    let s = c.subject.as_str();
    let sans = dns_sans(leaf);
    let cns = common_names(leaf.subject());
    let mut seen = std::collections::BTreeSet::new();
    for u in &c.uses {
        if !seen.insert(u.fqdn.to_ascii_lowercase()) {
            continue;
        }
        let fqdn = u.fqdn.as_str();
        if let Some(n) = sans.iter().find(|n| sip::dns_name_matches(n, fqdn)) {
            out.push(ok(
                "cert.san",
                s,
                format!("SAN {n} covers {fqdn} ({} trunk {:?})", u.kind, u.trunk),
            ));
            continue;
        }
        if cns.iter().any(|n| sip::dns_name_matches(n, fqdn)) {
            out.push(finding(
                Severity::Warn,
                "cert.san",
                s,
                format!("{fqdn} is only in the subject CN, not in the SAN; Microsoft wants wildcards in the SAN and the SBC's TLS stack looks at the SAN only"),
                &format!("have the certificate reissued with {fqdn} as a SAN DNS name"),
            ));
            continue;
        }
        // A wildcard of the right domain that covers one label only.
        let deep = sans.iter().find(|n| {
            n.strip_prefix("*.").is_some_and(|suffix| {
                fqdn.len() > suffix.len() + 1
                    && fqdn
                        .to_ascii_lowercase()
                        .ends_with(&format!(".{}", suffix.to_ascii_lowercase()))
            })
        });
        let why = match deep {
            Some(w) => format!(
                "the wildcard {w} covers one label only (RFC 2818 §3.1, as Microsoft applies it), not {fqdn}"
            ),
            None => format!(
                "{fqdn} is not in the SAN ({})",
                if sans.is_empty() {
                    "it has no DNS name".to_owned()
                } else {
                    sans.join(", ")
                }
            ),
        };
        out.push(finding(
            Severity::Error,
            "cert.san",
            s,
            format!("{why}; Microsoft refuses a Contact FQDN the certificate does not carry ({} trunk {:?})", u.kind, u.trunk),
            &format!("a certificate with {fqdn} (or *.{}) in the SAN", fqdn.split_once('.').map_or(fqdn, |(_, r)| r)),
        ));
    }
}

/// `cert.eku`: serverAuth and clientAuth. Teams refuses a certificate
/// without both since 2024-03-19; the ACS text asks for serverAuth only,
/// so a missing clientAuth is a warning there.
fn eku(leaf: &X509Certificate<'_>, c: &CertCheck<'_>, out: &mut Vec<Finding>) {
    let s = c.subject.as_str();
    let (server, client) = match leaf.extended_key_usage() {
        Ok(Some(e)) => (e.value.server_auth, e.value.client_auth),
        _ => (false, false),
    };
    let teams = c.uses.iter().any(|u| u.kind == TrunkKind::Teams);
    let fix = "a certificate whose Extended Key Usage has both Server Authentication and Client Authentication";
    if !server {
        out.push(finding(
            Severity::Error,
            "cert.eku",
            s,
            "no Server Authentication (serverAuth) EKU: Microsoft refuses the certificate".into(),
            fix,
        ));
    }
    if !client {
        let (sev, why) = if teams {
            (Severity::Error, "Teams Direct Routing requires both EKUs since 2024-03-19 (mutual TLS: the SBC is also a TLS client)")
        } else {
            (Severity::Warn, "ACS documents serverAuth only, but the SBC presents this certificate as a TLS client too")
        };
        out.push(finding(
            sev,
            "cert.eku",
            s,
            format!("no Client Authentication (clientAuth) EKU: {why}"),
            fix,
        ));
    }
    if server && client {
        out.push(ok("cert.eku", s, "serverAuth and clientAuth".into()));
    }
}

/// `cert.key`: RSA of at least 2048 bits. Every TLS 1.2 suite Microsoft
/// lists is ECDHE-RSA, so an EC key cannot be used with it.
fn key(leaf: &X509Certificate<'_>, s: &str, out: &mut Vec<Finding>) {
    let spki = leaf.public_key();
    let fix = "a new RSA key of 2048 bits or more, and a certificate for it";
    match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) => {
            let bits = rsa.key_size();
            if bits < 2048 {
                out.push(finding(
                    Severity::Error,
                    "cert.key",
                    s,
                    format!("RSA key of {bits} bits: Microsoft and its CAs require at least 2048"),
                    fix,
                ));
            } else {
                out.push(ok("cert.key", s, format!("RSA {bits} bits")));
            }
        }
        Ok(PublicKey::EC(_)) => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| match o.to_id_string().as_str() {
                    "1.2.840.10045.3.1.7" => "P-256".to_owned(),
                    "1.3.132.0.34" => "P-384".to_owned(),
                    other => other.to_owned(),
                })
                .unwrap_or_else(|| "unknown curve".to_owned());
            out.push(finding(
                Severity::Error,
                "cert.key",
                s,
                format!("EC key ({curve}): the four TLS 1.2 cipher suites Microsoft accepts are all ECDHE-RSA, which need an RSA certificate"),
                fix,
            ));
        }
        _ => out.push(finding(
            Severity::Error,
            "cert.key",
            s,
            format!(
                "{} key: Microsoft's TLS 1.2 suites need RSA",
                spki.algorithm.algorithm.to_id_string()
            ),
            fix,
        )),
    }
}

/// The name of a weak signature algorithm, `None` when it is not one.
fn weak_signature(c: &X509Certificate<'_>) -> Option<&'static str> {
    match c.signature_algorithm.algorithm.to_id_string().as_str() {
        "1.2.840.113549.1.1.5" | "1.3.14.3.2.29" => Some("sha1WithRSAEncryption"),
        "1.2.840.10045.4.1" => Some("ecdsa-with-SHA1"),
        "1.2.840.10040.4.3" => Some("dsa-with-sha1"),
        "1.2.840.113549.1.1.4" => Some("md5WithRSAEncryption"),
        "1.2.840.113549.1.1.2" => Some("md2WithRSAEncryption"),
        _ => None,
    }
}

/// `cert.signature`: no SHA-1 (or older) signature on the leaf or the
/// intermediates (a root's own signature is not checked by anyone).
fn signature(issued: &[&X509Certificate<'_>], s: &str, out: &mut Vec<Finding>) {
    let mut bad = false;
    for c in issued {
        if let Some(alg) = weak_signature(c) {
            bad = true;
            out.push(finding(
                Severity::Error,
                "cert.signature",
                s,
                format!("{} is signed with {alg}: SHA-1 signatures are refused by Microsoft's TLS stack and no public CA issues them", short(c.subject())),
                "have the certificate reissued (any public CA signs with SHA-256 today)",
            ));
        }
    }
    if !bad {
        let alg = issued
            .first()
            .map(|c| c.signature_algorithm.algorithm.to_id_string())
            .unwrap_or_default();
        let name = match alg.as_str() {
            "1.2.840.113549.1.1.11" => "sha256WithRSAEncryption",
            "1.2.840.113549.1.1.12" => "sha384WithRSAEncryption",
            "1.2.840.113549.1.1.13" => "sha512WithRSAEncryption",
            "1.2.840.10045.4.3.2" => "ecdsa-with-SHA256",
            "1.2.840.10045.4.3.3" => "ecdsa-with-SHA384",
            other => other,
        };
        out.push(ok("cert.signature", s, format!("signed with {name}")));
    }
}

/// `cert.expiry`: valid now, and for 30 days more.
fn validity(issued: &[&X509Certificate<'_>], s: &str, now: i64, out: &mut Vec<Finding>) {
    let mut worst: Option<Finding> = None;
    for c in issued {
        let v = c.validity();
        let (nb, na) = (v.not_before.timestamp(), v.not_after.timestamp());
        let who = short(c.subject());
        let f = if now < nb {
            let far = if nb - now > 365 * DAY {
                " — more than a year ahead: is this machine's clock right? (see clock.certs)"
            } else {
                ""
            };
            finding(
                Severity::Error,
                "cert.expiry",
                s,
                format!("{who} is not valid before {}{far}", date(nb)),
                "check the system clock (NTP); if it is right, use a certificate valid now",
            )
        } else if now > na {
            finding(
                Severity::Error,
                "cert.expiry",
                s,
                format!("{who} expired on {}", date(na)),
                "renew the certificate, install it, and restart or reload (SIGHUP) the SBC",
            )
        } else if na - now < EXPIRY_WARNING_DAYS * DAY {
            finding(
                Severity::Warn,
                "cert.expiry",
                s,
                format!(
                    "{who} expires on {} ({} days left; Microsoft's dashboard warns from 30)",
                    date(na),
                    (na - now) / DAY
                ),
                "renew it now; after installing, reload (SIGHUP) so that new TLS connections use it",
            )
        } else {
            continue;
        };
        if worst.as_ref().is_none_or(|w| f.severity > w.severity) {
            worst = Some(f);
        }
    }
    out.push(worst.unwrap_or_else(|| {
        let na = issued
            .iter()
            .map(|c| c.validity().not_after.timestamp())
            .min()
            .unwrap_or(now);
        ok(
            "cert.expiry",
            s,
            format!("valid until {} ({} days)", date(na), (na - now) / DAY),
        )
    }));
}

/// `cert.self-signed`, `cert.chain`, `cert.root`.
fn chain(
    leaf: &X509Certificate<'_>,
    file: &[X509Certificate<'_>],
    c: &CertCheck<'_>,
    trust: Trust<'_>,
    out: &mut Vec<Finding>,
) {
    let s = c.subject.as_str();
    if is_self_issued(leaf) && leaf.verify_signature(None).is_ok() {
        out.push(finding(
            Severity::Error,
            "cert.self-signed",
            s,
            format!(
                "{} is self-signed: Microsoft trusts only CAs of its Trusted Root Program",
                short(leaf.subject())
            ),
            "a certificate from a public CA of the Microsoft Trusted Root Program",
        ));
        return;
    }
    let mut pool: Vec<(X509Certificate<'_>, Source)> =
        file.iter().cloned().map(|x| (x, Source::File)).collect();
    pool.extend(parsed(trust.trusted, Source::Trusted));
    pool.extend(
        c.bundle
            .iter()
            .filter_map(|d| parse(d))
            .map(|x| (x, Source::Bundle)),
    );
    pool.extend(parsed(trust.system, Source::System));

    let mut path: Vec<String> = vec![short(leaf.subject())];
    let mut current = leaf.clone();
    let mut root: Option<(X509Certificate<'_>, Source)> = None;
    let mut not_sent: Vec<(String, Source)> = Vec::new();
    let fix_chain = "append the intermediate certificate(s) your CA supplied to the certificate file, after the SBC's certificate";
    for _ in 0..8 {
        let candidates: Vec<&(X509Certificate<'_>, Source)> = pool
            .iter()
            .filter(|(x, _)| same_name(x.subject(), current.issuer()))
            .collect();
        if candidates.is_empty() {
            out.push(finding(
                Severity::Error,
                "cert.chain",
                s,
                format!(
                    "the issuer of {} ({}) is in neither the certificate file, the CA bundle nor the system's CA store: the chain is incomplete and Microsoft cannot build it",
                    short(current.subject()),
                    current.issuer()
                ),
                fix_chain,
            ));
            return;
        }
        let Some((issuer, src)) = candidates
            .into_iter()
            .find(|(x, _)| current.verify_signature(Some(x.public_key())).is_ok())
        else {
            out.push(finding(
                Severity::Error,
                "cert.chain",
                s,
                format!(
                    "{} names {} as issuer, but its signature does not verify with that CA's key",
                    short(current.subject()),
                    short(current.issuer())
                ),
                "use the intermediate that actually issued this certificate (the CA's current bundle)",
            ));
            return;
        };
        path.push(short(issuer.subject()));
        if is_self_issued(issuer) {
            root = Some((issuer.clone(), *src));
            break;
        }
        if *src != Source::File {
            not_sent.push((short(issuer.subject()), *src));
        }
        current = issuer.clone();
    }
    let Some((root, root_src)) = root else {
        out.push(finding(
            Severity::Error,
            "cert.chain",
            s,
            format!("no self-signed root after {}", path.join(" → ")),
            fix_chain,
        ));
        return;
    };
    if not_sent.is_empty() {
        out.push(ok(
            "cert.chain",
            s,
            format!("{} (root from {})", path.join(" → "), root_src.as_str()),
        ));
    } else {
        for (name, src) in &not_sent {
            out.push(finding(
                Severity::Error,
                "cert.chain",
                s,
                format!("intermediate {name} is in {} but not in the certificate file: the SBC sends only the file's certificates and Microsoft does not fetch missing intermediates", src.as_str()),
                fix_chain,
            ));
        }
    }
    out.push(judge_root(&root, root_src, c, trust, s));
}

/// `cert.root`: the root is one Microsoft trusts. The development CA and
/// private CAs are errors; a public root (in the system's store) that is
/// not on Microsoft's named list is a warning, since the full list of the
/// Trusted Root Program is not available offline.
fn judge_root(
    root: &X509Certificate<'_>,
    src: Source,
    c: &CertCheck<'_>,
    trust: Trust<'_>,
    s: &str,
) -> Finding {
    let names = cn_and_o(root.subject());
    let name = short(root.subject());
    let fix_public = "a certificate from a CA of the Microsoft Trusted Root Program (for example DigiCert, GlobalSign, Sectigo, Entrust)";
    if trust.trusted.iter().any(|d| d.as_slice() == root.as_raw()) {
        return ok("cert.root", s, format!("{name} (trusted by --trust-ca)"));
    }
    if common_names(root.subject())
        .iter()
        .any(|n| n.starts_with(roots::DEV_CA_PREFIX))
    {
        return finding(
            Severity::Error,
            "cert.root",
            s,
            format!("{name} is the sbc development CA: not trusted by Microsoft (fine for loopback tests and labs, never for Teams or ACS)"),
            fix_public,
        );
    }
    if c.gov {
        return match roots::first_match(&names, roots::GOV_ROOTS) {
            Some(m) => ok("cert.root", s, format!("{name}: {m}, accepted by GCC High/DoD")),
            None => finding(
                Severity::Error,
                "cert.root",
                s,
                format!("{name}: GCC High and DoD accept only DigiCert Global Root CA or DigiCert High Assurance EV Root CA"),
                "a certificate chaining to DigiCert Global Root CA or DigiCert High Assurance EV Root CA",
            ),
        };
    }
    if let Some(m) = roots::first_match(&names, roots::MICROSOFT_NAMED_ROOTS) {
        return ok("cert.root", s, format!("{name} (Microsoft names {m:?})"));
    }
    if src == Source::System {
        return finding(
            Severity::Warn,
            "cert.root",
            s,
            format!("{name} is a public root (in the system's CA store) but not one of the roots Microsoft names; Microsoft trusts the members of its Trusted Root Program"),
            "check that this root is in the CCADB \"Included CA Certificate\" report for Microsoft",
        );
    }
    finding(
        Severity::Error,
        "cert.root",
        s,
        format!("{name} (from {}) is neither a root Microsoft names nor a public one in the system's CA store: a private CA, not trusted by Microsoft", src.as_str()),
        fix_public,
    )
}
