//! One test per rule: a certificate (made with the development PKI) or a
//! configuration that breaks it, and the finding's id and severity.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use transport::devpki::{self, DevCa, LeafKey, LeafOptions};
use trunk::TrunkKind;

use super::cert::{self, CertCheck, Trust, Usage};
use super::site::{self, World};
use super::{date, read_pem, Finding, Severity};

const DAY: u64 = 86_400;

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let d =
            std::env::temp_dir().join(format!("sbc-preflight-{}-{name}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Scratch(d)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn unix(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs() as i64
}

fn now() -> SystemTime {
    SystemTime::now()
}

fn teams(fqdn: &str) -> Usage {
    Usage {
        trunk: "teams".into(),
        kind: TrunkKind::Teams,
        fqdn: fqdn.into(),
    }
}

fn acs(fqdn: &str) -> Usage {
    Usage {
        trunk: "acs".into(),
        kind: TrunkKind::Acs,
        fqdn: fqdn.into(),
    }
}

/// An RSA 2048 leaf for `names`, valid a year from yesterday: passes every
/// rule Microsoft has.
fn good(names: &[&str]) -> LeafOptions {
    LeafOptions {
        key: LeafKey::Rsa2048,
        not_before: Some(now() - Duration::from_secs(DAY)),
        not_after: Some(now() + Duration::from_secs(365 * DAY)),
        ..LeafOptions::new(names)
    }
}

/// Runs the certificate rules on the file `cert` (leaf first), with the CA
/// bundle `bundle` and `trusted` as `--trust-ca`.
fn check_cert(cert: &Path, bundle: &[&Path], trusted: &[&Path], uses: Vec<Usage>) -> Vec<Finding> {
    check_at(cert, bundle, trusted, uses, unix(now()), false)
}

fn check_at(
    cert: &Path,
    bundle: &[&Path],
    trusted: &[&Path],
    uses: Vec<Usage>,
    now: i64,
    gov: bool,
) -> Vec<Finding> {
    let chain = read_pem(cert).unwrap();
    let bundle: Vec<Vec<u8>> = bundle.iter().flat_map(|p| read_pem(p).unwrap()).collect();
    let trusted: Vec<Vec<u8>> = trusted.iter().flat_map(|p| read_pem(p).unwrap()).collect();
    let c = CertCheck {
        subject: cert.display().to_string(),
        chain: &chain,
        bundle: bundle.iter().map(Vec::as_slice).collect(),
        uses,
        gov,
    };
    cert::check(
        &c,
        Trust {
            system: &[],
            trusted: &trusted,
        },
        now,
    )
}

/// The findings of `rule`; panics (showing all) when there is none.
fn of<'a>(all: &'a [Finding], rule: &str) -> Vec<&'a Finding> {
    let v: Vec<&Finding> = all.iter().filter(|f| f.rule == rule).collect();
    assert!(!v.is_empty(), "no {rule} finding in:\n{}", show(all));
    v
}

fn show(all: &[Finding]) -> String {
    all.iter().map(|f| format!("{f}\n")).collect()
}

/// The one finding of `rule`, which must have `severity`.
fn one<'a>(all: &'a [Finding], rule: &str, severity: Severity) -> &'a Finding {
    let v = of(all, rule);
    let f = v
        .iter()
        .find(|f| f.severity == severity)
        .unwrap_or_else(|| panic!("no {severity:?} {rule} in:\n{}", show(all)));
    assert_eq!(v.len(), 1, "{}", show(all));
    f
}

fn no_problems_but(all: &[Finding], except: &[&str]) {
    let bad: Vec<&Finding> = all
        .iter()
        .filter(|f| f.severity != Severity::Ok && !except.contains(&f.rule))
        .collect();
    assert!(bad.is_empty(), "{}", show(all));
}

#[test]
fn a_good_certificate_from_the_dev_ca_fails_only_on_the_root() {
    let d = Scratch::new("good");
    let ca = DevCa::create(&d.0, "ca").unwrap();
    let leaf = ca
        .issue_with(&d.0, "teams", &good(&["teams.contoso.com"]))
        .unwrap();
    let all = check_cert(
        &leaf.cert,
        &[&ca.cert],
        &[],
        vec![teams("teams.contoso.com")],
    );
    no_problems_but(&all, &["cert.root"]);
    let root = one(&all, "cert.root", Severity::Error);
    assert!(root.message.contains("not trusted by Microsoft"), "{root}");
    assert!(root.message.contains("loopback tests"), "{root}");
    for rule in [
        "cert.san",
        "cert.eku",
        "cert.key",
        "cert.signature",
        "cert.expiry",
        "cert.chain",
    ] {
        one(&all, rule, Severity::Ok);
    }
    // Marked trusted (as --trust-ca does), nothing is left.
    let all = check_cert(
        &leaf.cert,
        &[&ca.cert],
        &[&ca.cert],
        vec![teams("teams.contoso.com")],
    );
    no_problems_but(&all, &[]);
    one(&all, "cert.root", Severity::Ok);
}

#[test]
fn expired_certificate_is_an_error() {
    let d = Scratch::new("expired");
    let ca = DevCa::create(&d.0, "ca").unwrap();
    let opts = LeafOptions {
        not_before: Some(now() - Duration::from_secs(400 * DAY)),
        not_after: Some(now() - Duration::from_secs(2 * DAY)),
        ..good(&["teams.contoso.com"])
    };
    let leaf = ca.issue_with(&d.0, "leaf", &opts).unwrap();
    let all = check_cert(
        &leaf.cert,
        &[&ca.cert],
        &[&ca.cert],
        vec![teams("teams.contoso.com")],
    );
    let f = one(&all, "cert.expiry", Severity::Error);
    assert!(f.message.contains("expired on"), "{f}");
    no_problems_but(&all, &["cert.expiry"]);
}

#[test]
fn not_yet_valid_certificate_is_an_error() {
    let d = Scratch::new("future");
    let ca = DevCa::create(&d.0, "ca").unwrap();
    let opts = LeafOptions {
        not_before: Some(now() + Duration::from_secs(3 * DAY)),
        not_after: Some(now() + Duration::from_secs(300 * DAY)),
        ..LeafOptions::new(&["teams.contoso.com"])
    };
    let leaf = ca.issue_with(&d.0, "leaf", &opts).unwrap();
    let all = check_cert(
        &leaf.cert,
        &[&ca.cert],
        &[&ca.cert],
        vec![teams("teams.contoso.com")],
    );
    let f = one(&all, "cert.expiry", Severity::Error);
    assert!(f.message.contains("not valid before"), "{f}");
    assert!(
        !f.message.contains("clock"),
        "3 days ahead is no clock problem: {f}"
    );
}

#[test]
fn certificate_expiring_within_30_days_is_a_warning() {
    let d = Scratch::new("soon");
    let ca = DevCa::create(&d.0, "ca").unwrap();
    let opts = LeafOptions {
        not_before: Some(now() - Duration::from_secs(300 * DAY)),
        not_after: Some(now() + Duration::from_secs(10 * DAY + 3600)),
        ..LeafOptions::new(&["teams.contoso.com"])
    };
    let leaf = ca.issue_with(&d.0, "leaf", &opts).unwrap();
    let all = check_cert(
        &leaf.cert,
        &[&ca.cert],
        &[&ca.cert],
        vec![teams("teams.contoso.com")],
    );
    let f = one(&all, "cert.expiry", Severity::Warn);
    assert!(f.message.contains("10 days left"), "{f}");
}

#[test]
fn rsa_1024_key_is_an_error() {
    let d = Scratch::new("rsa1024");
    let ca = DevCa::create(&d.0, "ca").unwrap();
    let opts = LeafOptions {
        key: LeafKey::RsaPublicOnly(1024),
        ..LeafOptions::new(&["teams.contoso.com"])
    };
    let leaf = ca.issue_with(&d.0, "leaf", &opts).unwrap();
    let all = check_cert(
        &leaf.cert,
        &[&ca.cert],
        &[&ca.cert],
        vec![teams("teams.contoso.com")],
    );
    let f = one(&all, "cert.key", Severity::Error);
    assert!(f.message.contains("1024 bits"), "{f}");
    // The same made-up modulus at 2048 bits passes: the size is what counts.
    let opts = LeafOptions {
        key: LeafKey::RsaPublicOnly(2048),
        ..LeafOptions::new(&["teams.contoso.com"])
    };
    let leaf = ca.issue_with(&d.0, "leaf2048", &opts).unwrap();
    let all = check_cert(
        &leaf.cert,
        &[&ca.cert],
        &[&ca.cert],
        vec![teams("teams.contoso.com")],
    );
    one(&all, "cert.key", Severity::Ok);
}

#[test]
fn ec_key_is_an_error_because_microsofts_suites_are_ecdhe_rsa() {
    let d = Scratch::new("ec");
    let ca = DevCa::create(&d.0, "ca").unwrap();
    let leaf = ca
        .issue_with(&d.0, "leaf", &LeafOptions::new(&["teams.contoso.com"]))
        .unwrap();
    let all = check_cert(
        &leaf.cert,
        &[&ca.cert],
        &[&ca.cert],
        vec![teams("teams.contoso.com")],
    );
    let f = one(&all, "cert.key", Severity::Error);
    assert!(
        f.message.contains("P-256") && f.message.contains("ECDHE-RSA"),
        "{f}"
    );
}

/// sha256WithRSAEncryption and sha1WithRSAEncryption differ in their last
/// byte only: a certificate signed by an RSA CA, so patched, says SHA-1.
#[test]
fn sha1_signature_is_an_error() {
    let d = Scratch::new("sha1");
    let ca = DevCa::create_named(&d.0, "ca", "Contoso RSA Root", LeafKey::Rsa2048).unwrap();
    let leaf = ca
        .issue_with(&d.0, "leaf", &LeafOptions::new(&["teams.contoso.com"]))
        .unwrap();
    let sha256 = [
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b,
    ];
    let mut der = read_pem(&leaf.cert).unwrap().remove(0);
    let mut patched = 0;
    for i in 0..der.len() - sha256.len() {
        if der[i..i + sha256.len()] == sha256 {
            der[i + sha256.len() - 1] = 0x05;
            patched += 1;
        }
    }
    assert_eq!(patched, 2, "the TBS and the outer signature algorithm");
    let pem = format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        base64_lines(&der)
    );
    let path = d.0.join("sha1.pem");
    std::fs::write(&path, pem).unwrap();
    let all = check_cert(&path, &[&ca.cert], &[], vec![teams("teams.contoso.com")]);
    let f = one(&all, "cert.signature", Severity::Error);
    assert!(f.message.contains("sha1WithRSAEncryption"), "{f}");
    // Unpatched, the same CA's SHA-256 signature is fine.
    let all = check_cert(
        &leaf.cert,
        &[&ca.cert],
        &[],
        vec![teams("teams.contoso.com")],
    );
    let f = one(&all, "cert.signature", Severity::Ok);
    assert!(f.message.contains("sha256WithRSAEncryption"), "{f}");
}

fn base64_lines(der: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for c in der.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                s.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s.as_bytes()
        .chunks(64)
        .map(|l| std::str::from_utf8(l).unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn missing_client_auth_is_an_error_for_teams_and_a_warning_for_acs() {
    let d = Scratch::new("eku");
    let ca = DevCa::create(&d.0, "ca").unwrap();
    let opts = LeafOptions {
        client_auth: false,
        ..LeafOptions::new(&["teams.contoso.com", "acs.contoso.com"])
    };
    let leaf = ca.issue_with(&d.0, "leaf", &opts).unwrap();
    let all = check_cert(
        &leaf.cert,
        &[&ca.cert],
        &[],
        vec![teams("teams.contoso.com")],
    );
    let f = one(&all, "cert.eku", Severity::Error);
    assert!(f.message.contains("clientAuth"), "{f}");
    let all = check_cert(&leaf.cert, &[&ca.cert], &[], vec![acs("acs.contoso.com")]);
    one(&all, "cert.eku", Severity::Warn);
    // No serverAuth: refused for ACS too.
    let opts = LeafOptions {
        server_auth: false,
        ..LeafOptions::new(&["acs.contoso.com"])
    };
    let leaf = ca.issue_with(&d.0, "noserver", &opts).unwrap();
    let all = check_cert(&leaf.cert, &[&ca.cert], &[], vec![acs("acs.contoso.com")]);
    let f = one(&all, "cert.eku", Severity::Error);
    assert!(f.message.contains("serverAuth"), "{f}");
}

#[test]
fn san_not_covering_the_fqdn_is_an_error() {
    let d = Scratch::new("san");
    let ca = DevCa::create(&d.0, "ca").unwrap();
    let leaf = ca
        .issue_with(&d.0, "leaf", &LeafOptions::new(&["sbc.contoso.com"]))
        .unwrap();
    let all = check_cert(
        &leaf.cert,
        &[&ca.cert],
        &[],
        vec![teams("teams.contoso.com")],
    );
    let f = one(&all, "cert.san", Severity::Error);
    assert!(
        f.message.contains("not in the SAN (sbc.contoso.com)"),
        "{f}"
    );
    // In the CN only: a warning.
    let opts = LeafOptions {
        dns_names: vec![],
        common_name: Some("teams.contoso.com".into()),
        ..LeafOptions::new(&[])
    };
    let leaf = ca.issue_with(&d.0, "cn", &opts).unwrap();
    let all = check_cert(
        &leaf.cert,
        &[&ca.cert],
        &[],
        vec![teams("teams.contoso.com")],
    );
    let f = one(&all, "cert.san", Severity::Warn);
    assert!(f.message.contains("only in the subject CN"), "{f}");
}

#[test]
fn wildcard_covers_one_label_only() {
    let d = Scratch::new("wildcard");
    let ca = DevCa::create(&d.0, "ca").unwrap();
    let leaf = ca
        .issue_with(&d.0, "leaf", &LeafOptions::new(&["*.contoso.com"]))
        .unwrap();
    let all = check_cert(&leaf.cert, &[&ca.cert], &[], vec![teams("sbc.contoso.com")]);
    one(&all, "cert.san", Severity::Ok);
    let all = check_cert(
        &leaf.cert,
        &[&ca.cert],
        &[],
        vec![teams("sbc.eu.contoso.com")],
    );
    let f = one(&all, "cert.san", Severity::Error);
    assert!(
        f.message.contains("*.contoso.com covers one label only"),
        "{f}"
    );
}

#[test]
fn chain_without_the_intermediate_is_an_error() {
    let d = Scratch::new("chain");
    let root = DevCa::create(&d.0, "root").unwrap();
    let mid = root.create_intermediate(&d.0, "mid").unwrap();
    let leaf = mid
        .issue_with(&d.0, "leaf", &LeafOptions::new(&["teams.contoso.com"]))
        .unwrap();
    let uses = || vec![teams("teams.contoso.com")];
    // The file has the leaf only, the bundle the root only.
    let all = check_cert(&leaf.cert, &[&root.cert], &[&root.cert], uses());
    let f = one(&all, "cert.chain", Severity::Error);
    assert!(
        f.message.contains("sbc development CA mid") && f.message.contains("neither"),
        "{f}"
    );
    // The intermediate in the CA bundle: still not sent.
    let all = check_cert(&leaf.cert, &[&mid.cert, &root.cert], &[&root.cert], uses());
    let f = one(&all, "cert.chain", Severity::Error);
    assert!(f.message.contains("not in the certificate file"), "{f}");
    // Leaf then intermediate in the file: complete.
    let full = d.0.join("full.pem");
    let text =
        std::fs::read_to_string(&leaf.cert).unwrap() + &std::fs::read_to_string(&mid.cert).unwrap();
    std::fs::write(&full, text).unwrap();
    let all = check_cert(&full, &[&root.cert], &[&root.cert], uses());
    let f = one(&all, "cert.chain", Severity::Ok);
    assert!(
        f.message
            .contains("teams.contoso.com → sbc development CA mid → sbc development CA root"),
        "{f}"
    );
    one(&all, "cert.root", Severity::Ok);
}

#[test]
fn issuer_whose_signature_does_not_verify_is_an_error() {
    let d = Scratch::new("forged");
    let real = DevCa::create(&d.0, "ca").unwrap();
    let leaf = real
        .issue_with(&d.0, "leaf", &LeafOptions::new(&["teams.contoso.com"]))
        .unwrap();
    // Another CA of the same name (another key) in the bundle.
    let other = Scratch::new("forged-other");
    let impostor = DevCa::create(&other.0, "ca").unwrap();
    let all = check_cert(
        &leaf.cert,
        &[&impostor.cert],
        &[],
        vec![teams("teams.contoso.com")],
    );
    let f = one(&all, "cert.chain", Severity::Error);
    assert!(f.message.contains("does not verify"), "{f}");
}

#[test]
fn self_signed_certificate_is_an_error() {
    let d = Scratch::new("self");
    let leaf = devpki::self_signed(&d.0, "leaf", &good(&["teams.contoso.com"])).unwrap();
    let all = check_cert(&leaf.cert, &[], &[], vec![teams("teams.contoso.com")]);
    one(&all, "cert.self-signed", Severity::Error);
    assert!(all.iter().all(|f| f.rule != "cert.chain"), "{}", show(&all));
}

#[test]
fn roots_are_judged_by_microsofts_names() {
    let d = Scratch::new("roots");
    let uses = || vec![teams("teams.contoso.com")];
    let issue = |label: &str, cn: &str| {
        let ca = DevCa::create_named(&d.0, label, cn, LeafKey::EcdsaP256).unwrap();
        let leaf = ca
            .issue_with(
                &d.0,
                &format!("{label}-leaf"),
                &LeafOptions::new(&["teams.contoso.com"]),
            )
            .unwrap();
        (ca, leaf)
    };
    // A root Microsoft names (a stand-in with its name).
    let (ca, leaf) = issue("named", "DigiCert Global Root G2");
    let all = check_cert(&leaf.cert, &[&ca.cert], &[], uses());
    one(&all, "cert.root", Severity::Ok);
    // GCC High/DoD want DigiCert Global Root CA (or High Assurance EV).
    let all = check_at(&leaf.cert, &[&ca.cert], &[], uses(), unix(now()), true);
    one(&all, "cert.root", Severity::Error);
    let (gca, gleaf) = issue("gov", "DigiCert Global Root CA");
    let all = check_at(&gleaf.cert, &[&gca.cert], &[], uses(), unix(now()), true);
    one(&all, "cert.root", Severity::Ok);
    // A private CA (only in the bundle): an error.
    let (pca, pleaf) = issue("private", "Contoso Internal Root");
    let all = check_cert(&pleaf.cert, &[&pca.cert], &[], uses());
    let f = one(&all, "cert.root", Severity::Error);
    assert!(f.message.contains("private CA"), "{f}");
    // The same root found in the system's store: public, not on the list.
    let chain = read_pem(&pleaf.cert).unwrap();
    let system = read_pem(&pca.cert).unwrap();
    let c = CertCheck {
        subject: "x".into(),
        chain: &chain,
        bundle: vec![],
        uses: uses(),
        gov: false,
    };
    let all = cert::check(
        &c,
        Trust {
            system: &system,
            trusted: &[],
        },
        unix(now()),
    );
    one(&all, "cert.root", Severity::Warn);
    one(&all, "cert.chain", Severity::Ok);
}

/// A Teams configuration: one TLS listener at `listen`, the profile `ms`
/// with `identity` and CA bundle `ca`, `extra` added to the Teams trunk
/// and `more` to the file.
fn config(
    identity: &Path,
    ca: &Path,
    listen: &str,
    extra: &str,
    more: &str,
) -> crate::config::Loaded {
    let key = identity.with_extension("key");
    let text = format!(
        r#"[sbc]
fqdn = "sbc.contoso.com"

[[listen]]
transport = "tls"
addr = "{listen}"
tls = "ms"

[tls.ms]
identities = [{{ cert = "{}", key = "{}" }}]
ca = "{}"
require_client_cert = true
{more}
[[trunk]]
name = "teams"
kind = "teams"
fqdn = "teams.contoso.com"
tls = "ms"
{extra}
"#,
        identity.display(),
        key.display(),
        ca.display()
    );
    crate::config::parse(&text, "test.toml").unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// Runs every rule on `loaded` with `dns` as the answers, the time `now`
/// and the CA files `trusted` as --trust-ca.
fn evaluate(
    loaded: &crate::config::Loaded,
    dns: &[(&str, Result<Vec<&str>, &str>)],
    trusted: &[&Path],
    now: i64,
) -> Vec<Finding> {
    let files = site::files_to_read(loaded)
        .into_iter()
        .map(|p| {
            let r = read_pem(&p);
            (p, r)
        })
        .collect();
    let trusted: Vec<Vec<u8>> = trusted.iter().flat_map(|p| read_pem(p).unwrap()).collect();
    let dns: super::Answers = dns
        .iter()
        .map(|(n, r)| {
            (
                (*n).to_owned(),
                r.clone()
                    .map(|v| v.iter().map(|a| a.parse().unwrap()).collect())
                    .map_err(str::to_owned),
            )
        })
        .collect();
    let w = World {
        loaded,
        now,
        built: super::WRITTEN,
        files,
        trust: Trust {
            system: &[],
            trusted: &trusted,
        },
        dns,
        resolver: "the test's answers".into(),
    };
    site::evaluate(&w)
}

/// Every name of the default Teams trunk resolving, the FQDN to `fqdn_ips`.
fn answers(
    fqdn: Result<Vec<&'static str>, &'static str>,
) -> Vec<(&'static str, Result<Vec<&'static str>, &'static str>)> {
    vec![
        ("teams.contoso.com", fqdn),
        ("sip.pstnhub.microsoft.com", Ok(vec!["52.112.1.1"])),
        ("sip2.pstnhub.microsoft.com", Ok(vec!["52.113.1.1"])),
        ("sip3.pstnhub.microsoft.com", Ok(vec!["52.114.1.1"])),
    ]
}

/// A good Microsoft-facing PKI: RSA leaf for teams.contoso.com, dev CA.
fn pki(d: &Scratch) -> (PathBuf, PathBuf) {
    let ca = DevCa::create(&d.0, "ca").unwrap();
    let leaf = ca
        .issue_with(&d.0, "teams", &good(&["teams.contoso.com"]))
        .unwrap();
    (leaf.cert, ca.cert)
}

#[test]
fn a_good_site_has_no_finding_but_ok() {
    let d = Scratch::new("site-good");
    let (leaf, ca) = pki(&d);
    let l = config(&leaf, &ca, "192.0.2.5:5061", "", "");
    let all = evaluate(&l, &answers(Ok(vec!["192.0.2.5"])), &[&ca], unix(now()));
    no_problems_but(&all, &[]);
    for rule in [
        "clock.build",
        "clock.certs",
        "dns.sbc-fqdn",
        "port.listen",
        "port.outbound",
        "peer.proxies",
        "dns.proxy",
        "acl.microsoft",
        "tls.version",
        "tls.ciphers",
        "tls.microsoft-roots",
        "cert.root",
    ] {
        of(&all, rule);
    }
    // Without --trust-ca: the dev CA as root and as Microsoft's root.
    let all = evaluate(&l, &answers(Ok(vec!["192.0.2.5"])), &[], unix(now()));
    let errors: Vec<&str> = all
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .map(|f| f.rule)
        .collect();
    assert_eq!(
        errors,
        ["tls.microsoft-roots", "cert.root"],
        "{}",
        show(&all)
    );
}

#[test]
fn sbc_fqdn_must_resolve_to_a_listener() {
    let d = Scratch::new("site-dns");
    let (leaf, ca) = pki(&d);
    let at = |listen: &str, fqdn: Result<Vec<&'static str>, &'static str>| {
        let l = config(&leaf, &ca, listen, "", "");
        evaluate(&l, &answers(fqdn), &[&ca], unix(now()))
    };
    let all = at("192.0.2.5:5061", Err("no such name"));
    let f = one(&all, "dns.sbc-fqdn", Severity::Error);
    assert!(
        f.message.contains("does not resolve") && f.message.contains("no such name"),
        "{f}"
    );
    let all = at("192.0.2.5:5061", Ok(vec!["198.51.100.7"]));
    one(&all, "dns.sbc-fqdn", Severity::Error);
    let all = at("0.0.0.0:5061", Ok(vec!["198.51.100.7"]));
    let f = one(&all, "dns.sbc-fqdn", Severity::Warn);
    assert!(f.message.contains("every address"), "{f}");
    let all = at("10.0.2.4:5061", Ok(vec!["20.50.1.10"]));
    let f = one(&all, "dns.sbc-fqdn", Severity::Warn);
    assert!(f.message.contains("behind NAT"), "{f}");
    assert!(
        f.fix.as_deref().unwrap_or("").contains("10.0.2.4:5061"),
        "{f}"
    );
}

#[test]
fn unresolvable_microsoft_proxies_are_warnings() {
    let d = Scratch::new("site-proxies");
    let (leaf, ca) = pki(&d);
    let l = config(&leaf, &ca, "192.0.2.5:5061", "", "");
    let mut dns = answers(Ok(vec!["192.0.2.5"]));
    dns[2].1 = Err("timed out");
    let all = evaluate(&l, &dns, &[&ca], unix(now()));
    let v = of(&all, "dns.proxy");
    assert_eq!(v.len(), 3, "{}", show(&all));
    let bad: Vec<&&Finding> = v.iter().filter(|f| f.severity == Severity::Warn).collect();
    assert_eq!(bad.len(), 1, "{}", show(&all));
    assert!(
        bad[0].message.contains("sip2.pstnhub.microsoft.com"),
        "{}",
        bad[0]
    );
    no_problems_but(&all, &["dns.proxy"]);
}

#[test]
fn peers_must_be_microsofts_three_proxies_on_5061() {
    let d = Scratch::new("site-peers");
    let (leaf, ca) = pki(&d);
    let peers = r#"peers = [
    { host = "sip.pstnhub.microsoft.com", port = 5062 },
    { host = "sip2.pstnhub.microsoft.com", addr = "127.0.0.1:25062" },
]"#;
    let l = config(&leaf, &ca, "192.0.2.5:5061", peers, "");
    let all = evaluate(&l, &answers(Ok(vec!["192.0.2.5"])), &[&ca], unix(now()));
    let f = one(&all, "port.outbound", Severity::Error);
    assert!(f.message.contains("port 5062"), "{f}");
    one(&all, "peer.proxies", Severity::Warn);
    let f = one(&all, "peer.pinned", Severity::Warn);
    assert!(f.message.contains("127.0.0.1:25062"), "{f}");
}

#[test]
fn listener_port_and_default_certificate() {
    let d = Scratch::new("site-port");
    let (leaf, ca) = pki(&d);
    // The trunk says 5061 in Contact; the listener is on 5067.
    let l = config(&leaf, &ca, "192.0.2.5:5067", "", "");
    let all = evaluate(&l, &answers(Ok(vec!["192.0.2.5"])), &[&ca], unix(now()));
    one(&all, "port.listen", Severity::Warn);
    // local_port = 5067 matches: fine (the tenant's -SipSignalingPort).
    let l = config(&leaf, &ca, "192.0.2.5:5067", "local_port = 5067", "");
    let all = evaluate(&l, &answers(Ok(vec!["192.0.2.5"])), &[&ca], unix(now()));
    let f = one(&all, "port.listen", Severity::Ok);
    assert!(f.message.contains("-SipSignalingPort 5067"), "{f}");
    // GCC High: 5061 only.
    let gov = r#"local_port = 5067
peers = [{ host = "sip.pstnhub.gov.teams.microsoft.us" }]"#;
    let l = config(&leaf, &ca, "192.0.2.5:5067", gov, "");
    let all = evaluate(
        &l,
        &[("teams.contoso.com", Ok(vec!["192.0.2.5"]))],
        &[&ca],
        unix(now()),
    );
    one(&all, "port.listen", Severity::Error);
    one(&all, "acl.microsoft", Severity::Warn);
}

#[test]
fn default_identity_not_valid_for_the_fqdn_is_a_warning() {
    let d = Scratch::new("site-sni");
    let (leaf, ca) = pki(&d);
    let dev = DevCa::create(&d.0, "other").unwrap();
    let sbc = dev
        .issue_with(&d.0, "sbc", &good(&["sbc.contoso.com"]))
        .unwrap();
    // A listener profile whose first identity is sbc.contoso.com's.
    let more = format!(
        r#"
[tls.listener]
identities = [
    {{ cert = "{}", key = "{}" }},
    {{ cert = "{}", key = "{}" }},
]
ca = "{}"
"#,
        sbc.cert.display(),
        sbc.key.display(),
        leaf.display(),
        leaf.with_extension("key").display(),
        ca.display()
    );
    let mut l = config(&leaf, &ca, "192.0.2.5:5061", "", &more);
    l.listeners[0].2 = Some("listener".into());
    let all = evaluate(&l, &answers(Ok(vec!["192.0.2.5"])), &[&ca], unix(now()));
    let f = one(&all, "listen.default-cert", Severity::Warn);
    assert!(f.message.contains("no SNI"), "{f}");
    // The certificate checked as server identity is the one for the FQDN.
    assert!(
        all.iter()
            .all(|f| f.subject != sbc.cert.display().to_string()),
        "{}",
        show(&all)
    );
}

#[test]
fn acl_must_cover_microsofts_ranges() {
    let d = Scratch::new("site-acl");
    let (leaf, ca) = pki(&d);
    let l = config(
        &leaf,
        &ca,
        "192.0.2.5:5061",
        r#"acl = ["52.112.0.0/14"]"#,
        "",
    );
    let all = evaluate(&l, &answers(Ok(vec!["192.0.2.5"])), &[&ca], unix(now()));
    let f = one(&all, "acl.microsoft", Severity::Warn);
    assert!(
        f.message.contains("52.120.0.0/14") && !f.message.contains("52.112"),
        "{f}"
    );
    let l = config(&leaf, &ca, "192.0.2.5:5061", r#"acl = ["52.0.0.0/8"]"#, "");
    let all = evaluate(&l, &answers(Ok(vec!["192.0.2.5"])), &[&ca], unix(now()));
    one(&all, "acl.microsoft", Severity::Ok);
}

#[test]
fn tls_profile_must_allow_tls12_and_microsofts_suites() {
    let d = Scratch::new("site-tls");
    let (leaf, ca) = pki(&d);
    let l = config(
        &leaf,
        &ca,
        "192.0.2.5:5061",
        "",
        "versions = [\"1.3\"]\ncipher_suites = [\"TLS13_AES_256_GCM_SHA384\"]\n",
    );
    let all = evaluate(&l, &answers(Ok(vec!["192.0.2.5"])), &[&ca], unix(now()));
    one(&all, "tls.version", Severity::Error);
    one(&all, "tls.ciphers", Severity::Error);
}

#[test]
fn microsoft_roots_in_the_ca_bundle() {
    let d = Scratch::new("site-roots");
    let (leaf, ca) = pki(&d);
    let g2 =
        DevCa::create_named(&d.0, "g2", "DigiCert Global Root G2", LeafKey::EcdsaP256).unwrap();
    let baltimore = DevCa::create_named(
        &d.0,
        "baltimore",
        "Baltimore CyberTrust Root",
        LeafKey::EcdsaP256,
    )
    .unwrap();
    let bundle = d.0.join("bundle.pem");
    let cat = |paths: &[&Path]| {
        let text: String = paths
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect();
        std::fs::write(&bundle, text).unwrap();
    };
    cat(&[&ca, &g2.cert]);
    let l = config(&leaf, &bundle, "192.0.2.5:5061", "", "");
    let all = evaluate(&l, &answers(Ok(vec!["192.0.2.5"])), &[], unix(now()));
    let f = one(&all, "tls.microsoft-roots", Severity::Warn);
    assert!(f.message.contains("lacks Baltimore CyberTrust Root"), "{f}");
    cat(&[&ca, &g2.cert, &baltimore.cert]);
    let all = evaluate(&l, &answers(Ok(vec!["192.0.2.5"])), &[], unix(now()));
    one(&all, "tls.microsoft-roots", Severity::Ok);
}

#[test]
fn clock_before_the_build_or_years_behind_the_certificates_is_an_error() {
    let d = Scratch::new("site-clock");
    let (leaf, ca) = pki(&d);
    let l = config(&leaf, &ca, "192.0.2.5:5061", "", "");
    let dns = answers(Ok(vec!["192.0.2.5"]));
    // Three years ago: before the build, and before the certificates.
    let past = unix(now()) - 3 * 365 * DAY as i64;
    let all = evaluate(&l, &dns, &[&ca], past);
    one(&all, "clock.build", Severity::Error);
    let f = one(&all, "clock.certs", Severity::Error);
    assert!(f.message.contains("clock is probably wrong"), "{f}");
    let all = evaluate(&l, &dns, &[&ca], unix(now()));
    one(&all, "clock.build", Severity::Ok);
    one(&all, "clock.certs", Severity::Ok);
}

#[test]
fn teams_and_acs_fqdns_must_differ() {
    let t = trunk::TrunkSpec::new("teams", TrunkKind::Teams, "sbc.contoso.com");
    let same = trunk::TrunkSpec::new("acs", TrunkKind::Acs, "SBC.contoso.com");
    let own = trunk::TrunkSpec::new("acs2", TrunkKind::Acs, "acs.contoso.com");
    let mut out = Vec::new();
    site::distinct(&[&t, &same, &own], &mut out);
    assert_eq!(out.len(), 2, "{}", show(&out));
    assert_eq!(
        (out[0].rule, out[0].severity),
        ("fqdn.distinct", Severity::Error)
    );
    assert_eq!(
        (out[1].rule, out[1].severity),
        ("fqdn.distinct", Severity::Ok)
    );
}

#[test]
fn findings_print_as_one_line_with_rule_subject_and_fix() {
    let f = Finding {
        severity: Severity::Error,
        rule: "cert.eku",
        subject: "/etc/sbc/tls/teams.pem".into(),
        message: "no clientAuth".into(),
        fix: Some("reissue".into()),
    };
    assert_eq!(
        f.to_string(),
        "ERROR  cert.eku  /etc/sbc/tls/teams.pem: no clientAuth — fix: reissue"
    );
    let ok = Finding {
        severity: Severity::Ok,
        fix: None,
        ..f
    };
    assert_eq!(
        ok.to_string(),
        "OK     cert.eku  /etc/sbc/tls/teams.pem: no clientAuth"
    );
}

#[test]
fn dates_are_utc_calendar_days() {
    assert_eq!(date(0), "1970-01-01");
    assert_eq!(date(super::WRITTEN), "2026-12-01");
    assert_eq!(date(951_782_400), "2000-02-29");
    assert_eq!(date(-86_400), "1969-12-31");
}
