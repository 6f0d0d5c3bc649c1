//! The rules on the site around the certificates: trunk FQDNs, DNS,
//! listeners and ports, peers, ACLs, TLS profiles, the clock. Pure: what
//! the shell read (files, DNS answers, the time) comes in as [`World`].

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use transport::Transport;
use trunk::{Cidr, TrunkKind, TrunkSpec, MICROSOFT_PROXIES, MICROSOFT_SIGNALLING_RANGES};

use super::cert::{self, CertCheck, Trust, Usage};
use super::roots;
use super::{date, Finding, Severity};
use crate::config::Loaded;

/// Everything the rules look at.
#[derive(Debug)]
pub(crate) struct World<'a> {
    pub(crate) loaded: &'a Loaded,
    /// Now, seconds since the Unix epoch.
    pub(crate) now: i64,
    /// The clock cannot be right before this (seconds since the epoch).
    pub(crate) built: i64,
    /// Certificate (PEM) files by path: their certificates, DER, in order.
    pub(crate) files: BTreeMap<PathBuf, Result<Vec<Vec<u8>>, String>>,
    pub(crate) trust: Trust<'a>,
    /// DNS answers by name (lower case).
    pub(crate) dns: super::Answers,
    /// How names were resolved, for messages ("the system resolver").
    pub(crate) resolver: String,
}

fn f(severity: Severity, rule: &'static str, subject: &str, message: String, fix: &str) -> Finding {
    Finding {
        severity,
        rule,
        subject: subject.to_owned(),
        message,
        fix: (severity != Severity::Ok).then(|| fix.to_owned()),
    }
}

fn ok(rule: &'static str, subject: &str, message: String) -> Finding {
    f(Severity::Ok, rule, subject, message, "")
}

/// The names of the DNS lookups [`evaluate`] wants answered: each
/// Microsoft trunk's FQDN and its peers' hosts (not IP literals).
pub(crate) fn names_to_resolve(loaded: &Loaded) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for t in microsoft_trunks(loaded) {
        out.insert(t.fqdn.to_ascii_lowercase());
        for p in &t.peers {
            if p.host.parse::<IpAddr>().is_err() {
                out.insert(p.host.to_ascii_lowercase());
            }
        }
    }
    out
}

/// Certificate files [`evaluate`] wants read: the identities and CA
/// bundles of the profiles Microsoft trunks use, as clients and through
/// the TLS listeners they arrive on.
pub(crate) fn files_to_read(loaded: &Loaded) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    for name in profiles(loaded) {
        if let Some(t) = loaded.config.tls.get(&name) {
            out.extend(t.identities.iter().map(|i| i.cert.get_ref().clone()));
            out.extend(t.ca.as_ref().map(|c| c.get_ref().clone()));
        }
    }
    out
}

fn microsoft_trunks(loaded: &Loaded) -> impl Iterator<Item = &TrunkSpec> {
    loaded.trunks.iter().filter(|t| t.kind.is_microsoft())
}

/// The TLS listeners a trunk can arrive on.
fn reachable<'l>(
    t: &TrunkSpec,
    listeners: &'l [(Transport, SocketAddr, Option<String>)],
) -> Vec<(SocketAddr, &'l str)> {
    listeners
        .iter()
        .filter(|(tr, _, _)| *tr == Transport::Tls)
        .filter_map(|(_, addr, p)| p.as_deref().map(|p| (*addr, p)))
        .filter(|(addr, _)| {
            t.listen.is_empty()
                || t.listen.iter().any(|l| {
                    l.port() == addr.port() && (l.ip().is_unspecified() || l.ip() == addr.ip())
                })
        })
        .collect()
}

/// The profiles Microsoft sees: each Microsoft trunk's own, and those of
/// the TLS listeners it arrives on.
fn profiles(loaded: &Loaded) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for t in microsoft_trunks(loaded) {
        out.extend(t.tls.clone());
        out.extend(
            reachable(t, &loaded.listeners)
                .into_iter()
                .map(|(_, p)| p.to_owned()),
        );
    }
    out
}

fn is_gov(t: &TrunkSpec) -> bool {
    t.peers
        .iter()
        .any(|p| p.host.to_ascii_lowercase().ends_with(".teams.microsoft.us"))
}

/// The DER certificates of a file that was read, or nothing.
fn ders<'w>(w: &'w World<'_>, p: &PathBuf) -> &'w [Vec<u8>] {
    match w.files.get(p) {
        Some(Ok(v)) => v,
        _ => &[],
    }
}

/// The DNS names (SAN) of the first certificate of a file.
fn file_names(w: &World<'_>, p: &PathBuf) -> Vec<String> {
    ders(w, p)
        .first()
        .map(|d| {
            transport::tls::cert_dns_names(&rustls_pki_types::CertificateDer::from(d.as_slice()))
        })
        .unwrap_or_default()
}

fn covers(names: &[String], fqdn: &str) -> bool {
    names.iter().any(|n| sip::dns_name_matches(n, fqdn))
}

/// Runs every rule.
pub(crate) fn evaluate(w: &World<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    clock(w, &mut out);
    let trunks: Vec<&TrunkSpec> = microsoft_trunks(w.loaded).collect();
    if trunks.is_empty() {
        out.push(f(
            Severity::Warn,
            "trunks",
            &w.loaded.source,
            "no teams or acs trunk: nothing Microsoft checks is configured".into(),
            "add a [[trunk]] of kind \"teams\" or \"acs\"",
        ));
        return out;
    }
    distinct(&trunks, &mut out);
    for t in &trunks {
        let subject = format!("trunk {}", t.name);
        sbc_fqdn(w, t, &subject, &mut out);
        listen_port(w, t, &subject, &mut out);
        peers(w, t, &subject, &mut out);
        acl(t, &subject, &mut out);
    }
    for name in profiles(w.loaded) {
        profile(w, &name, &mut out);
    }
    certificates(w, &trunks, &mut out);
    out
}

/// `clock.build`, `clock.certs`: a clock before this build, or years
/// behind the certificates, makes every validity check meaningless.
fn clock(w: &World<'_>, out: &mut Vec<Finding>) {
    let s = "system clock";
    let fix = "set the clock (timedatectl set-ntp true, or chrony/ntpd) and run the check again";
    if w.now < w.built {
        out.push(f(
            Severity::Error,
            "clock.build",
            s,
            format!(
                "it is {} here, before this sbc was built ({})",
                date(w.now),
                date(w.built)
            ),
            fix,
        ));
    } else {
        out.push(ok(
            "clock.build",
            s,
            format!(
                "{} (UTC), after the build date {}",
                date(w.now),
                date(w.built)
            ),
        ));
    }
    let year = 365 * 86_400;
    let ahead: Vec<(String, i64)> = w
        .files
        .iter()
        .filter_map(|(p, r)| r.as_ref().ok().and_then(|d| d.first()).map(|d| (p, d)))
        .filter_map(|(p, d)| {
            x509_parser::parse_x509_certificate(d)
                .ok()
                .map(|(_, c)| (p.display().to_string(), c.validity().not_before.timestamp()))
        })
        .filter(|(_, nb)| nb - w.now > year)
        .collect();
    if let Some((p, nb)) = ahead.first() {
        out.push(f(
            Severity::Error,
            "clock.certs",
            s,
            format!("{p} was issued on {}, more than a year after the system time {}: the clock is probably wrong", date(*nb), date(w.now)),
            fix,
        ));
    } else if !w.files.is_empty() {
        out.push(ok(
            "clock.certs",
            s,
            "consistent with the certificates' issue dates".into(),
        ));
    }
}

/// `fqdn.distinct`: ACS needs an FQDN of its own.
pub(super) fn distinct(trunks: &[&TrunkSpec], out: &mut Vec<Finding>) {
    let by = |k: TrunkKind| trunks.iter().filter(move |t| t.kind == k);
    for a in by(TrunkKind::Acs) {
        let clash: Vec<&&TrunkSpec> = by(TrunkKind::Teams)
            .filter(|t| t.fqdn.eq_ignore_ascii_case(&a.fqdn))
            .collect();
        let s = format!("trunk {}", a.name);
        if let Some(t) = clash.first() {
            out.push(f(
                Severity::Error,
                "fqdn.distinct",
                &s,
                format!("ACS trunk uses {}, the FQDN of Teams trunk {:?}: Microsoft requires the ACS SBC FQDN to differ from the Teams one", a.fqdn, t.name),
                "give the ACS trunk its own FQDN (and certificate name), e.g. acs.<your domain>",
            ));
        } else if by(TrunkKind::Teams).next().is_some() {
            out.push(ok(
                "fqdn.distinct",
                &s,
                format!("{} differs from every Teams trunk's FQDN", a.fqdn),
            ));
        }
    }
}

fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v) => {
            v.is_private()
                || v.is_loopback()
                || v.is_link_local()
                || v.octets()[0] == 100 && (v.octets()[1] & 0xc0) == 64
        }
        IpAddr::V6(v) => {
            v.is_loopback()
                || (v.segments()[0] & 0xfe00) == 0xfc00
                || (v.segments()[0] & 0xffc0) == 0xfe80
        }
    }
}

fn list(ips: &[IpAddr]) -> String {
    ips.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// `dns.sbc-fqdn`: Microsoft connects to the trunk's FQDN, which must lead
/// to a TLS listener of this SBC.
fn sbc_fqdn(w: &World<'_>, t: &TrunkSpec, s: &str, out: &mut Vec<Finding>) {
    let listen: Vec<SocketAddr> = reachable(t, &w.loaded.listeners)
        .into_iter()
        .map(|(a, _)| a)
        .collect();
    let fqdn = &t.fqdn;
    let ips = match w.dns.get(&fqdn.to_ascii_lowercase()) {
        Some(Ok(ips)) if !ips.is_empty() => ips.clone(),
        other => {
            let why = match other {
                Some(Err(e)) => e.clone(),
                _ => "no address".to_owned(),
            };
            out.push(f(
                Severity::Error,
                "dns.sbc-fqdn",
                s,
                format!("{fqdn} does not resolve through {} ({why}): Microsoft finds the SBC by this name", w.resolver),
                &format!("publish an A record for {fqdn} with the public address of the TLS listener"),
            ));
            return;
        }
    };
    let shown = list(&ips);
    if let Some(a) = listen.iter().find(|a| ips.contains(&a.ip())) {
        out.push(ok(
            "dns.sbc-fqdn",
            s,
            format!("{fqdn} → {shown}: the TLS listener {a}"),
        ));
    } else if let Some(a) = listen.iter().find(|a| a.ip().is_unspecified()) {
        out.push(f(
            Severity::Warn,
            "dns.sbc-fqdn",
            s,
            format!("{fqdn} → {shown}; the TLS listener is {a} (every address), so whether that is this host could not be told"),
            &format!("check that {shown} is an address of this host, or is forwarded (NAT) to TCP port {}", a.port()),
        ));
    } else if let Some(a) = listen
        .iter()
        .find(|a| is_private(a.ip()) && ips.iter().any(|i| !is_private(*i)))
    {
        out.push(f(
            Severity::Warn,
            "dns.sbc-fqdn",
            s,
            format!("{fqdn} → {shown}, a public address; the TLS listener is {a}: behind NAT?"),
            &format!("check that the NAT/firewall forwards TCP {} on {shown} to {a}, from 52.112.0.0/14 and 52.120.0.0/14", t.local_port),
        ));
    } else {
        let on = listen
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        out.push(f(
            Severity::Error,
            "dns.sbc-fqdn",
            s,
            format!(
                "{fqdn} → {shown}, but the SBC's TLS listeners for this trunk are {}",
                if on.is_empty() { "none".to_owned() } else { on }
            ),
            &format!("point {fqdn} at the TLS listener's (public) address, or listen on {shown}"),
        ));
    }
}

/// `port.listen`: a TLS listener on the trunk's port (its Contact port,
/// the tenant's `-SipSignalingPort`); GCC High and DoD: 5061 only.
/// `listen.default-cert`: without SNI a listener serves its first identity.
fn listen_port(w: &World<'_>, t: &TrunkSpec, s: &str, out: &mut Vec<Finding>) {
    let listen = reachable(t, &w.loaded.listeners);
    let port = t.local_port;
    if listen.is_empty() {
        out.push(f(
            Severity::Error,
            "port.listen",
            s,
            "no TLS listener this trunk can arrive on: Microsoft's proxies could not reach the SBC"
                .into(),
            &format!("add a [[listen]] with transport = \"tls\" on port {port}"),
        ));
        return;
    }
    if is_gov(t) && port != 5061 {
        out.push(f(
            Severity::Error,
            "port.listen",
            s,
            format!("port {port}: GCC High and DoD connect to 5061 only"),
            "local_port = 5061 and a TLS listener on 5061",
        ));
    } else if let Some((a, _)) = listen.iter().find(|(a, _)| a.port() == port) {
        out.push(ok(
            "port.listen",
            s,
            format!("TLS listener {a} on the trunk's port {port}: the tenant's gateway needs -SipSignalingPort {port}"),
        ));
    } else {
        let on = listen
            .iter()
            .map(|(a, _)| a.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        out.push(f(
            Severity::Warn,
            "port.listen",
            s,
            format!("Contact says port {port}, the TLS listeners are {on}: right only if a NAT maps {port} to them"),
            &format!("listen on {port}, or set local_port to the listener's port (and -SipSignalingPort to match)"),
        ));
    }
    for (a, p) in &listen {
        let Some(first) = w
            .loaded
            .config
            .tls
            .get(*p)
            .and_then(|x| x.identities.first())
        else {
            continue;
        };
        let names = file_names(w, first.cert.get_ref());
        if names.is_empty() || covers(&names, &t.fqdn) {
            continue;
        }
        out.push(f(
            Severity::Warn,
            "listen.default-cert",
            s,
            format!("listener {a} serves {} to a client that sends no SNI, and it is not valid for {} (it has {})", first.cert.get_ref().display(), t.fqdn, names.join(", ")),
            &format!("put the identity for {} first in [tls.{p}] (Microsoft does not document sending SNI)", t.fqdn),
        ));
    }
}

/// `port.outbound`, `peer.proxies`, `peer.pinned`, `dns.proxy`.
fn peers(w: &World<'_>, t: &TrunkSpec, s: &str, out: &mut Vec<Finding>) {
    let mut bad_port = false;
    for p in &t.peers {
        if p.port != 5061 || p.transport != Transport::Tls {
            bad_port = true;
            out.push(f(
                Severity::Error,
                "port.outbound",
                s,
                format!("peer {} on port {} over {:?}: Microsoft's proxies take SIP over TLS on 5061 only", p.host, p.port, p.transport),
                "port = 5061 and transport = \"tls\" for every peer (or leave them unset)",
            ));
        }
    }
    if !bad_port && !t.peers.is_empty() {
        out.push(ok("port.outbound", s, "every peer on 5061 over TLS".into()));
    }
    let hosts: Vec<String> = t
        .peers
        .iter()
        .map(|p| p.host.to_ascii_lowercase())
        .collect();
    if is_gov(t) {
        out.push(ok(
            "peer.proxies",
            s,
            format!("{} (US government cloud: one proxy)", hosts.join(", ")),
        ));
    } else if hosts == MICROSOFT_PROXIES {
        out.push(ok(
            "peer.proxies",
            s,
            "sip, sip2, sip3.pstnhub.microsoft.com, in that order".into(),
        ));
    } else {
        out.push(f(
            Severity::Warn,
            "peer.proxies",
            s,
            format!("peers are {}: Microsoft requires sip, sip2 and sip3.pstnhub.microsoft.com, in this order (OPTIONS to all three, else the trunk is demoted)", if hosts.is_empty() { "none".to_owned() } else { hosts.join(", ") }),
            "peers = sip, sip2, sip3.pstnhub.microsoft.com (the default when peers is unset)",
        ));
    }
    for p in &t.peers {
        if let Some(addr) = p.addr {
            out.push(f(
                Severity::Warn,
                "peer.pinned",
                s,
                format!("{} is reached at {addr}, not through DNS: Microsoft moves these addresses between datacentres (an \"intermittently inactive\" SBC)", p.host),
                "remove addr from the peer (keep it for loopback tests and labs only)",
            ));
        }
    }
    let mut seen = BTreeSet::new();
    for h in hosts.iter().filter(|h| h.parse::<IpAddr>().is_err()) {
        if !seen.insert(h.clone()) {
            continue;
        }
        match w.dns.get(h) {
            Some(Ok(ips)) if !ips.is_empty() => {
                out.push(ok("dns.proxy", s, format!("{h} → {}", list(ips))))
            }
            other => {
                let why = match other {
                    Some(Err(e)) => e.clone(),
                    _ => "no address".to_owned(),
                };
                out.push(f(
                    Severity::Warn,
                    "dns.proxy",
                    s,
                    format!("{h} does not resolve through {} ({why}); an offline machine says so too", w.resolver),
                    "on the SBC's network: check the name servers and that the firewall lets DNS out",
                ));
            }
        }
    }
}

/// `acl.microsoft`: Microsoft connects from anywhere in its signalling
/// ranges, not only from where the proxies' names resolve today.
fn acl(t: &TrunkSpec, s: &str, out: &mut Vec<Finding>) {
    let gov = t
        .peers
        .iter()
        .map(|p| p.host.to_ascii_lowercase())
        .find(|h| h.ends_with(".teams.microsoft.us"));
    let needed: Vec<&str> = match gov.as_deref() {
        Some(h) if h.contains(".dod.") => vec!["52.127.64.0/21"],
        Some(_) => vec!["52.127.88.0/21"],
        None => MICROSOFT_SIGNALLING_RANGES.to_vec(),
    };
    let missing: Vec<&str> = needed
        .iter()
        .copied()
        .filter(|r| {
            let Ok(r) = Cidr::parse(r) else { return false };
            !t.acl
                .iter()
                .any(|c| c.len() <= r.len() && c.contains(r.addr()))
        })
        .collect();
    if missing.is_empty() {
        out.push(ok(
            "acl.microsoft",
            s,
            format!("acl covers {}", needed.join(" and ")),
        ));
    } else {
        out.push(f(
            Severity::Warn,
            "acl.microsoft",
            s,
            format!(
                "acl does not cover {}: Microsoft's proxies connect from any address there",
                missing.join(" and ")
            ),
            &format!(
                "acl = [\"{}\"] (the default when acl is unset)",
                needed.join("\", \"")
            ),
        ));
    }
}

/// Microsoft's four TLS 1.2 suites, as rustls names the two it has (it
/// has no CBC suites).
const MICROSOFT_SUITES: [&str; 2] = [
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
];

/// `tls.version`, `tls.ciphers`, `tls.microsoft-roots` for one profile.
fn profile(w: &World<'_>, name: &str, out: &mut Vec<Finding>) {
    let Some(p) = w.loaded.config.tls.get(name) else {
        return;
    };
    let s = format!("[tls.{name}]");
    if p.versions.is_empty() || p.versions.iter().any(|v| v == "1.2") {
        out.push(ok("tls.version", &s, "TLS 1.2 allowed".into()));
    } else {
        out.push(f(
            Severity::Error,
            "tls.version",
            &s,
            format!(
                "versions = {:?}: Microsoft Direct Routing speaks TLS 1.2",
                p.versions
            ),
            "versions = [\"1.2\"] or [\"1.2\", \"1.3\"]",
        ));
    }
    if p.cipher_suites.is_empty() {
        out.push(ok("tls.ciphers", &s, "default suites (they include TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 and _128_GCM_SHA256)".into()));
    } else if p
        .cipher_suites
        .iter()
        .any(|c| MICROSOFT_SUITES.iter().any(|m| m.eq_ignore_ascii_case(c)))
    {
        out.push(ok(
            "tls.ciphers",
            &s,
            "one of Microsoft's ECDHE-RSA suites is enabled".into(),
        ));
    } else {
        out.push(f(
            Severity::Error,
            "tls.ciphers",
            &s,
            "none of Microsoft's TLS 1.2 suites (ECDHE-RSA with AES-GCM or AES-CBC) is enabled"
                .into(),
            &format!("add {} to cipher_suites", MICROSOFT_SUITES.join(" and ")),
        ));
    }
    let Some(ca) = &p.ca else {
        out.push(f(
            Severity::Error,
            "tls.microsoft-roots",
            &s,
            "no CA bundle: the SBC cannot verify Microsoft's certificate (mutual TLS)".into(),
            "ca = a PEM file with DigiCert Global Root G2 and Baltimore CyberTrust Root",
        ));
        return;
    };
    let bundle = ders(w, ca.get_ref());
    let trusted = bundle
        .iter()
        .any(|d| w.trust.trusted.iter().any(|t| t == d));
    let names: Vec<Vec<String>> = bundle
        .iter()
        .filter_map(|d| x509_parser::parse_x509_certificate(d).ok())
        .map(|(_, c)| {
            c.subject()
                .iter_common_name()
                .chain(c.subject().iter_organization())
                .filter_map(|a| a.as_str().ok().map(str::to_owned))
                .collect()
        })
        .collect();
    let have: Vec<&str> = roots::MICROSOFT_SERVICE_ROOTS
        .iter()
        .copied()
        .filter(|r| names.iter().any(|n| roots::name_matches(n, r)))
        .collect();
    let path = ca.get_ref().display();
    if trusted {
        out.push(ok(
            "tls.microsoft-roots",
            &s,
            format!("{path} holds a CA given by --trust-ca (standing in for Microsoft's)"),
        ));
    } else if have.len() == roots::MICROSOFT_SERVICE_ROOTS.len() {
        out.push(ok(
            "tls.microsoft-roots",
            &s,
            format!("{path} holds {}", have.join(" and ")),
        ));
    } else if have.is_empty() {
        out.push(f(
            Severity::Error,
            "tls.microsoft-roots",
            &s,
            format!("{path} holds neither DigiCert Global Root G2 nor Baltimore CyberTrust Root: Microsoft's certificates chain to them, so mutual TLS fails"),
            &format!("add DigiCert Global Root G2 and Baltimore CyberTrust Root (PEM) to {path}"),
        ));
    } else {
        let lacking: Vec<&str> = roots::MICROSOFT_SERVICE_ROOTS
            .iter()
            .copied()
            .filter(|r| !have.contains(r))
            .collect();
        out.push(f(
            Severity::Warn,
            "tls.microsoft-roots",
            &s,
            format!(
                "{path} lacks {}: Microsoft says to trust both the old and the new root",
                lacking.join(" and ")
            ),
            &format!("add {} to {path}", lacking.join(" and ")),
        ));
    }
}

/// The certificate files Microsoft sees, each checked once with every
/// trunk it serves.
fn certificates(w: &World<'_>, trunks: &[&TrunkSpec], out: &mut Vec<Finding>) {
    // path → (uses, CA bundle paths, gov)
    let mut by_file: BTreeMap<PathBuf, (Vec<Usage>, BTreeSet<PathBuf>, bool)> = BTreeMap::new();
    let mut add = |path: &PathBuf, t: &TrunkSpec, ca: Option<&PathBuf>| {
        let e = by_file.entry(path.clone()).or_default();
        let u = Usage {
            trunk: t.name.clone(),
            kind: t.kind,
            fqdn: t.fqdn.clone(),
        };
        if !e.0.contains(&u) {
            e.0.push(u);
        }
        e.1.extend(ca.cloned());
        e.2 |= is_gov(t);
    };
    for t in trunks {
        // As TLS client: the first identity of the trunk's profile.
        if let Some(p) = t.tls.as_ref().and_then(|p| w.loaded.config.tls.get(p)) {
            if let Some(id) = p.identities.first() {
                add(id.cert.get_ref(), t, p.ca.as_ref().map(|c| c.get_ref()));
            }
        }
        // As TLS server: the listener identity valid for the FQDN (else
        // the default one, which cert.san then refuses).
        for (_, pname) in reachable(t, &w.loaded.listeners) {
            let Some(p) = w.loaded.config.tls.get(pname) else {
                continue;
            };
            let chosen = p
                .identities
                .iter()
                .find(|i| covers(&file_names(w, i.cert.get_ref()), &t.fqdn))
                .or(p.identities.first());
            if let Some(id) = chosen {
                add(id.cert.get_ref(), t, p.ca.as_ref().map(|c| c.get_ref()));
            }
        }
    }
    for (path, (uses, cas, gov)) in by_file {
        let subject = path.display().to_string();
        match w.files.get(&path) {
            Some(Ok(chain)) => {
                let bundle: Vec<&[u8]> = cas
                    .iter()
                    .flat_map(|c| ders(w, c).iter().map(Vec::as_slice))
                    .collect();
                let check = CertCheck {
                    subject,
                    chain,
                    bundle,
                    uses,
                    gov,
                };
                out.extend(cert::check(&check, w.trust, w.now));
            }
            Some(Err(e)) => out.push(f(
                Severity::Error,
                "cert.parse",
                &subject,
                e.clone(),
                "put the SBC certificate (PEM), then its intermediates, in this file",
            )),
            None => out.push(f(
                Severity::Error,
                "cert.parse",
                &subject,
                "not read".into(),
                "check the path in the configuration",
            )),
        }
    }
}
