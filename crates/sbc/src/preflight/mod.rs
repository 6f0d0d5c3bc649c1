//! `sbc check --preflight`: what Microsoft enforces on a Teams or ACS
//! Direct Routing SBC, checked before go-live, each finding naming its rule
//! and the fix (the rules and their sources: docs/operations.md,
//! "Pre-flight checks").
//!
//! This module is the shell: it reads the clock, the certificate files of
//! the TLS profiles Microsoft sees, the system's CA store and DNS, then
//! hands all of it to the rules, which do no I/O: `cert` (one certificate
//! file: chain, root, SAN, EKU, key, signature, validity) and `site`
//! (trunk FQDNs, DNS, ports, peers, ACLs, TLS profiles, clock).

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::Loaded;

mod cert;
mod roots;
mod site;
#[cfg(test)]
mod tests;

/// How bad a finding is. Errors make `sbc check --preflight` exit 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Severity {
    Ok,
    Warn,
    Error,
}

impl Severity {
    fn as_str(self) -> &'static str {
        match self {
            Severity::Ok => "OK",
            Severity::Warn => "WARN",
            Severity::Error => "ERROR",
        }
    }
}

/// One result of one rule about one thing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Finding {
    pub(crate) severity: Severity,
    /// The rule's id (`cert.eku`, `dns.sbc-fqdn`, …).
    pub(crate) rule: &'static str,
    /// What it is about: a certificate file, a trunk, a profile.
    pub(crate) subject: String,
    pub(crate) message: String,
    /// What to do about it (not for OK).
    pub(crate) fix: Option<String>,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:<5}  {}  {}: {}",
            self.severity.as_str(),
            self.rule,
            self.subject,
            self.message
        )?;
        if let Some(fix) = &self.fix {
            write!(f, " — fix: {fix}")?;
        }
        Ok(())
    }
}

/// `sbc check --preflight` options.
#[derive(Debug, Clone, Default)]
pub(crate) struct Options {
    /// CA certificate files taken as trusted by Microsoft (hidden
    /// `--trust-ca`: loopback tests and labs whose "Microsoft" is the
    /// development CA).
    pub(crate) trust_ca: Vec<PathBuf>,
}

/// 2026-12-01, when these rules were written: a clock before it is wrong
/// whatever the build. A package build's SOURCE_DATE_EPOCH moves it later.
const WRITTEN: i64 = 1_796_083_200;

fn built() -> i64 {
    option_env!("SOURCE_DATE_EPOCH")
        .and_then(|s| s.trim().parse::<i64>().ok())
        .map_or(WRITTEN, |t| t.max(WRITTEN))
}

/// Where the system's CA store usually is (Debian, RHEL, others).
const SYSTEM_STORES: [&str; 3] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
];

/// How long one DNS lookup may take (an offline machine must not hang).
const DNS_TIMEOUT: Duration = Duration::from_secs(5);

/// `YYYY-MM-DD` of a Unix time (UTC), proleptic Gregorian.
pub(crate) fn date(unix: i64) -> String {
    // Howard Hinnant's days-to-civil.
    let z = unix.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// The certificates (DER) of a PEM file.
fn read_pem(path: &Path) -> Result<Vec<Vec<u8>>, String> {
    let data = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let certs: Vec<Vec<u8>> = rustls_pemfile::certs(&mut &data[..])
        .map(|c| c.map(|c| c.to_vec()))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: bad PEM: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no PEM certificate in file", path.display()));
    }
    Ok(certs)
}

/// DNS answers by name: addresses, or why there are none.
pub(crate) type Answers = BTreeMap<String, Result<Vec<IpAddr>, String>>;

/// Resolves `names` (A/AAAA) the way the daemon would: the `[dns]`
/// servers, else the system's resolver. A failure or a timeout is an
/// answer too.
fn resolve(loaded: &Loaded, names: Vec<String>) -> Result<(Answers, String), String> {
    let servers = &loaded.dns.servers;
    let how = if servers.is_empty() {
        "the system resolver".to_owned()
    } else {
        format!(
            "the [dns] servers {}",
            servers
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("preflight: runtime: {e}"))?;
    let answers = rt.block_on(async {
        let resolver = transport::Resolver::new(transport::DnsConfig {
            servers: servers.clone(),
            ..transport::DnsConfig::default()
        });
        let resolver = match resolver {
            Ok(r) => r,
            Err(e) => {
                return names
                    .into_iter()
                    .map(|n| (n, Err(e.to_string())))
                    .collect::<Answers>()
            }
        };
        let mut set = tokio::task::JoinSet::new();
        for name in names {
            let r = resolver.clone();
            set.spawn(async move {
                let lookup = r.resolve(&name, Some(5061), Some(transport::Transport::Tls), false);
                let answer = match tokio::time::timeout(DNS_TIMEOUT, lookup).await {
                    Ok(Ok(targets)) => {
                        let mut ips: Vec<IpAddr> = targets.iter().map(|t| t.addr.ip()).collect();
                        ips.dedup();
                        Ok(ips)
                    }
                    // hickory words "no such name" as the query it gave up on.
                    Ok(Err(e)) if e.to_string().contains("no records found") => {
                        Err("no A or AAAA record".to_owned())
                    }
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(_) => Err(format!("no answer within {} s", DNS_TIMEOUT.as_secs())),
                };
                (name, answer)
            });
        }
        let mut out = BTreeMap::new();
        while let Some(r) = set.join_next().await {
            if let Ok((name, answer)) = r {
                out.insert(name, answer);
            }
        }
        out
    });
    Ok((answers, how))
}

/// Reads what the rules need and runs them.
pub(crate) fn run(loaded: &Loaded, opts: &Options) -> Result<Vec<Finding>, String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let mut trusted = Vec::new();
    for p in &opts.trust_ca {
        trusted.extend(read_pem(p).map_err(|e| format!("--trust-ca {e}"))?);
    }
    let system = SYSTEM_STORES
        .iter()
        .map(Path::new)
        .find(|p| p.exists())
        .and_then(|p| read_pem(p).ok())
        .unwrap_or_default();
    let files = site::files_to_read(loaded)
        .into_iter()
        .map(|p| {
            let r = read_pem(&p);
            (p, r)
        })
        .collect();
    let (dns, resolver) = resolve(loaded, site::names_to_resolve(loaded).into_iter().collect())?;
    let world = site::World {
        loaded,
        now,
        built: built(),
        files,
        trust: cert::Trust {
            system: &system,
            trusted: &trusted,
        },
        dns,
        resolver,
    };
    Ok(site::evaluate(&world))
}

/// Prints the findings and a summary line; true when there is no error.
pub(crate) fn report(findings: &[Finding]) -> bool {
    for f in findings {
        println!("{f}");
    }
    let count = |s: Severity| findings.iter().filter(|f| f.severity == s).count();
    let (e, w, o) = (
        count(Severity::Error),
        count(Severity::Warn),
        count(Severity::Ok),
    );
    println!(
        "preflight: {e} error{}, {w} warning{}, {o} ok{}",
        if e == 1 { "" } else { "s" },
        if w == 1 { "" } else { "s" },
        if e > 0 {
            " — Microsoft would refuse this SBC as configured"
        } else {
            ""
        }
    );
    e == 0
}
