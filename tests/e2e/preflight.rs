//! `sbc check --preflight` on real files: a Teams and an ACS trunk whose
//! certificates are right in every way Microsoft checks but their CA (the
//! development CA), and the same site with broken certificates. Names
//! resolve through dnsmasq on loopback, the config's `[dns]` server.

use std::path::Path;
use std::time::{Duration, SystemTime};

use transport::devpki::{DevCa, LeafKey, LeafOptions};

use crate::common::sbc;
use crate::daemon::TempDir;
use crate::net::Dnsmasq;

const DAY: Duration = Duration::from_secs(86_400);

/// An RSA leaf with both EKUs, valid for a year from yesterday.
fn good(name: &str) -> LeafOptions {
    LeafOptions {
        key: LeafKey::Rsa2048,
        not_before: Some(SystemTime::now() - DAY),
        not_after: Some(SystemTime::now() + 365 * DAY),
        ..LeafOptions::new(&[name])
    }
}

/// Teams on teams.sbc.example.test, ACS on acs.sbc.example.test, one TLS
/// listener on 127.0.0.1:5061 with both identities; the peers are
/// Microsoft's three proxies by name (nothing connects: only `check`).
fn config(dir: &Path, dns_port: u16, teams: &Path, acs: &Path, ca: &Path) -> String {
    let k = |p: &Path| p.with_extension("key").display().to_string();
    let (t, a, ca) = (teams.display(), acs.display(), ca.display());
    let (tk, ak) = (k(teams), k(acs));
    let text = format!(
        r#"[sbc]
fqdn = "sbc.example.test"

[dns]
servers = ["127.0.0.1:{dns_port}"]

[[listen]]
transport = "tls"
addr = "127.0.0.1:5061"
tls = "listener"

[tls.listener]
identities = [
    {{ cert = "{t}", key = "{tk}" }},
    {{ cert = "{a}", key = "{ak}" }},
]
ca = "{ca}"
require_client_cert = true
versions = ["1.2", "1.3"]

[tls.teams]
identities = [{{ cert = "{t}", key = "{tk}" }}]
ca = "{ca}"
peer_names = ["sip.pstnhub.microsoft.com", "sip2.pstnhub.microsoft.com", "sip3.pstnhub.microsoft.com"]

[tls.acs]
identities = [{{ cert = "{a}", key = "{ak}" }}]
ca = "{ca}"
peer_names = ["sip.pstnhub.microsoft.com", "sip2.pstnhub.microsoft.com", "sip3.pstnhub.microsoft.com"]

[[trunk]]
name = "teams"
kind = "teams"
fqdn = "teams.sbc.example.test"
tls = "teams"

[[trunk]]
name = "acs"
kind = "acs"
fqdn = "acs.sbc.example.test"
tls = "acs"
"#
    );
    let path = dir.join("sbc.toml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

const PROXIES: &str =
    "127.0.0.1 sip.pstnhub.microsoft.com sip2.pstnhub.microsoft.com sip3.pstnhub.microsoft.com\n";

/// `sbc check --config FILE --preflight ARGS`: exit code, stdout, stderr.
fn preflight(config: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let out = sbc()
        .args(["check", "--config", config, "--preflight"])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The rule ids of the lines starting with `severity`, in order, once each.
fn rules(stdout: &str, severity: &str) -> Vec<String> {
    let mut v: Vec<String> = stdout
        .lines()
        .filter(|l| l.split_whitespace().next() == Some(severity))
        .filter_map(|l| l.split_whitespace().nth(1).map(str::to_owned))
        .collect();
    v.dedup();
    v.sort();
    v.dedup();
    v
}

#[test]
fn preflight_passes_a_good_site_but_for_the_development_ca() {
    let dir = TempDir::new("preflight-good");
    let ca = DevCa::create(&dir.0, "ca").unwrap();
    let teams = ca
        .issue_with(&dir.0, "teams", &good("teams.sbc.example.test"))
        .unwrap();
    let acs = ca
        .issue_with(&dir.0, "acs", &good("acs.sbc.example.test"))
        .unwrap();
    let dns = Dnsmasq::start(
        &dir.0,
        &format!("127.0.0.1 teams.sbc.example.test acs.sbc.example.test\n{PROXIES}"),
    );
    let cfg = config(&dir.0, dns.port, &teams.cert, &acs.cert, &ca.cert);

    // As it is: the development CA is not Microsoft's, as the root of our
    // certificates nor as the root of theirs. Nothing else is wrong.
    let (code, out, err) = preflight(&cfg, &[]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(
        out.starts_with(&format!("{cfg}: ok\n")),
        "the normal check first:\n{out}"
    );
    assert_eq!(
        rules(&out, "ERROR"),
        ["cert.root", "tls.microsoft-roots"],
        "{out}"
    );
    let roots: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("ERROR  cert.root"))
        .collect();
    assert_eq!(roots.len(), 2, "one per certificate:\n{out}");
    for l in roots {
        assert!(
            l.contains("not trusted by Microsoft") && l.contains(" — fix: "),
            "{l}"
        );
    }
    for ok in [
        "OK     cert.chain  ",
        "OK     cert.eku  ",
        "OK     cert.key  ",
        "OK     cert.expiry  ",
        "OK     dns.sbc-fqdn  trunk teams: teams.sbc.example.test → 127.0.0.1: the TLS listener 127.0.0.1:5061",
        "OK     dns.proxy  trunk acs: sip3.pstnhub.microsoft.com → 127.0.0.1",
        "OK     fqdn.distinct  ",
    ] {
        assert!(out.lines().any(|l| l.starts_with(ok)), "{ok:?} in:\n{out}");
    }
    // Two certificates' roots, three profiles' bundles (listener, teams, acs).
    let summary = out.lines().last().unwrap_or("");
    assert!(summary.starts_with("preflight: 5 errors, "), "{summary}");

    // The development CA standing in for Microsoft's PKI (the hidden flag
    // of tests): no error left, exit 0. The one warning: the listener's
    // default (no-SNI) certificate is the Teams one, not valid for ACS.
    let (code, out, err) = preflight(&cfg, &["--trust-ca", &ca.cert.display().to_string()]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert_eq!(rules(&out, "ERROR"), Vec::<String>::new(), "{out}");
    assert_eq!(rules(&out, "WARN"), ["listen.default-cert"], "{out}");
    assert!(out.contains("OK     cert.root  "), "{out}");
}

#[test]
fn preflight_names_each_broken_rule_and_exits_1() {
    let dir = TempDir::new("preflight-bad");
    let root = DevCa::create(&dir.0, "ca").unwrap();
    // Teams: an EC key, no clientAuth, expired two days ago.
    let teams = root
        .issue_with(
            &dir.0,
            "teams",
            &LeafOptions {
                client_auth: false,
                not_before: Some(SystemTime::now() - 400 * DAY),
                not_after: Some(SystemTime::now() - 2 * DAY),
                ..LeafOptions::new(&["teams.sbc.example.test"])
            },
        )
        .unwrap();
    // ACS: issued by an intermediate that the file does not hold.
    let mid = root.create_intermediate(&dir.0, "mid").unwrap();
    let acs = mid
        .issue_with(&dir.0, "acs", &good("acs.sbc.example.test"))
        .unwrap();
    // acs.sbc.example.test is not in DNS; the proxies are.
    let dns = Dnsmasq::start(
        &dir.0,
        &format!("127.0.0.1 teams.sbc.example.test\n{PROXIES}"),
    );
    let cfg = config(&dir.0, dns.port, &teams.cert, &acs.cert, &root.cert);
    let trust = root.cert.display().to_string();
    let (code, out, err) = preflight(&cfg, &["--trust-ca", &trust]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert_eq!(
        rules(&out, "ERROR"),
        [
            "cert.chain",
            "cert.eku",
            "cert.expiry",
            "cert.key",
            "dns.sbc-fqdn"
        ],
        "{out}"
    );
    let line = |start: &str| {
        out.lines()
            .find(|l| l.starts_with(start))
            .unwrap_or_else(|| panic!("{start:?} in:\n{out}"))
            .to_owned()
    };
    let teams_pem = teams.cert.display().to_string();
    let acs_pem = acs.cert.display().to_string();
    assert!(line(&format!("ERROR  cert.eku  {teams_pem}: ")).contains("clientAuth"));
    assert!(line(&format!("ERROR  cert.expiry  {teams_pem}: ")).contains("expired on"));
    assert!(line(&format!("ERROR  cert.key  {teams_pem}: ")).contains("EC key (P-256)"));
    assert!(line(&format!("ERROR  cert.chain  {acs_pem}: ")).contains("sbc development CA mid"));
    let dns_line = line("ERROR  dns.sbc-fqdn  trunk acs: ");
    assert!(
        dns_line.contains(&format!("the [dns] servers 127.0.0.1:{}", dns.port)),
        "{dns_line}"
    );
    assert!(
        out.lines().last().unwrap_or("").starts_with("preflight: "),
        "{out}"
    );

    // Without --preflight the same file passes the normal check: these are
    // things only Microsoft would refuse.
    let plain = sbc().args(["check", "--config", &cfg]).output().unwrap();
    assert_eq!(
        plain.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&plain.stderr)
    );
}
