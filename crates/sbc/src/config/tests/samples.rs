//! The shipped configurations: the embedded demo and every `sbc-config/` sample.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

use super::*;

#[test]
fn demo_config_parses() {
    let l = parse(DEMO, "demo.toml").unwrap();
    assert_eq!(l.listeners.len(), 3);
    let names: Vec<&str> = l.trunks.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["carrier", "teams", "acs"]);
    assert_eq!(l.routes.routes.len(), 3);
    assert_eq!(
        l.media.interfaces,
        ["carrier/127.0.0.1", "microsoft/127.0.0.1"]
    );
    assert_eq!((l.media.port_min, l.media.port_max), (40000, 49999));
}

#[test]
fn demo_trunks_face_microsoft_on_loopback() {
    let l = parse(DEMO, "demo.toml").unwrap();
    let teams = trunk(&l, "teams");
    assert_eq!(teams.kind, trunk::TrunkKind::Teams);
    assert_eq!(teams.fqdn, "teams.sbc.example.test");
    assert_eq!(teams.tls.as_deref(), Some("teams"));
    assert_eq!(
        teams.contact(),
        "<sip:teams.sbc.example.test:5061;transport=tls>"
    );
    let peers: Vec<(&str, Option<SocketAddr>)> = teams
        .peers
        .iter()
        .map(|p| (p.host.as_str(), p.addr))
        .collect();
    assert_eq!(
        peers,
        [
            (
                "sip.pstnhub.microsoft.com",
                Some("127.0.0.1:25061".parse().unwrap())
            ),
            (
                "sip2.pstnhub.microsoft.com",
                Some("127.0.0.1:25062".parse().unwrap())
            ),
            (
                "sip3.pstnhub.microsoft.com",
                Some("127.0.0.1:25063".parse().unwrap())
            ),
        ]
    );
    assert!(teams.options.enabled);
    assert_eq!(teams.options.failure_codes, [503]);
    assert_eq!(teams.media, trunk::MediaSecurity::Srtp);
    assert!(teams.e164);
    assert!(teams
        .headers
        .x_ms_sbc
        .as_deref()
        .unwrap()
        .starts_with("sbc/"));
    assert_eq!(teams.max_calls, Some(200));
    let acs = trunk(&l, "acs");
    assert_eq!(acs.fqdn, "acs.sbc.example.test");
    assert_eq!(acs.peers[0].port, 5061);
    assert_eq!(acs.peers[2].addr, Some("127.0.0.1:25073".parse().unwrap()));
    assert!(acs.options.enabled);
    assert_eq!(acs.media, trunk::MediaSecurity::Srtp);
    let carrier = trunk(&l, "carrier");
    assert_eq!(carrier.fqdn, "sbc.example.test");
    assert_eq!(carrier.transport, transaction::Transport::Udp);
    assert_eq!(carrier.media, trunk::MediaSecurity::Rtp);
    assert!(!carrier.options.enabled);
    assert_eq!(carrier.numbers_in.called("004930123"), "+4930123");
    assert_eq!(carrier.numbers_in.called("030123"), "+4930123");
    // Routes: carrier → Teams, then ACS labelled; Microsoft → carrier.
    let r = l.routes.select("carrier", "+4930123").unwrap();
    let to: Vec<(&str, Option<&str>)> =
        r.to.iter()
            .map(|d| (d.trunk.as_str(), d.label.as_deref()))
            .collect();
    assert_eq!(to, [("teams", None), ("acs", Some("Fail-over"))]);
    assert_eq!(
        l.routes.select("acs", "+4930").unwrap().to[0].trunk,
        "carrier"
    );
    // Classification: the carrier over UDP, Teams and ACS by certificate and SNI.
    let c = trunk::Classifier::new(&l.trunks);
    let lo: std::net::IpAddr = "127.0.0.1".parse().unwrap();
    let udp: SocketAddr = "127.0.0.1:5060".parse().unwrap();
    let tls: SocketAddr = "127.0.0.1:5061".parse().unwrap();
    let ms: Vec<String> = trunk::MICROSOFT_PROXIES
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    assert_eq!(
        c.classify(udp, lo, transaction::Transport::Udp, None),
        Some(0)
    );
    assert_eq!(
        c.classify_named(
            tls,
            lo,
            transaction::Transport::Tls,
            Some(&ms),
            Some("acs.sbc.example.test")
        ),
        Some(2)
    );
    assert_eq!(
        c.classify_named(
            tls,
            lo,
            transaction::Transport::Tls,
            Some(&ms),
            Some("teams.sbc.example.test")
        ),
        Some(1)
    );
    let carrier_cert = vec!["carrier.example.test".to_owned()];
    assert_eq!(
        c.classify(tls, lo, transaction::Transport::Tls, Some(&carrier_cert)),
        None
    );
}

/// Issues, under `dir`, every certificate, key and CA file `text` names
/// (below `prefix`): a leaf's names are the FQDNs of the trunks using
/// its profile plus `[sbc] fqdn`; a CA file is a development CA.
fn issue_for(text: &str, prefix: &str, dir: &Path) -> String {
    let l = parse(text, "sample").unwrap();
    let rel = |p: &Path| dir.join(p.strip_prefix(prefix).unwrap_or(p));
    let mut cas = BTreeMap::new();
    for t in l.config.tls.values() {
        if let Some(ca) = &t.ca {
            let path = rel(ca.get_ref());
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            let stem = path.file_stem().unwrap().to_str().unwrap().to_owned();
            cas.entry(path.clone()).or_insert_with(|| {
                transport::devpki::DevCa::create(path.parent().unwrap(), &stem).unwrap()
            });
        }
    }
    let fallback = match cas.values().next() {
        Some(_) => None,
        None => Some(transport::devpki::DevCa::create(dir, "issuer").unwrap()),
    };
    let ca = cas.values().next().or(fallback.as_ref()).unwrap();
    for (pname, t) in &l.config.tls {
        for id in &t.identities {
            let cert = rel(id.cert.get_ref());
            let mut names: Vec<String> = l
                .trunks
                .iter()
                .filter(|tr| tr.tls.as_deref() == Some(pname.as_str()))
                .map(|tr| tr.fqdn.clone())
                .collect();
            // A listener profile serving several identities: the file name says which.
            let stem = cert.file_stem().unwrap().to_str().unwrap().to_owned();
            names.extend(
                l.trunks
                    .iter()
                    .filter(|tr| stem.contains(tr.name.as_str()) || stem.contains(tr.kind.as_str()))
                    .map(|tr| tr.fqdn.clone()),
            );
            names.push(l.config.sbc.fqdn.get_ref().clone());
            names.dedup();
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            std::fs::create_dir_all(cert.parent().unwrap()).unwrap();
            let files = ca.issue(cert.parent().unwrap(), &stem, &refs).unwrap();
            let key = rel(id.key.get_ref());
            if files.key != key {
                std::fs::copy(&files.key, &key).unwrap();
            }
        }
    }
    text.replace(prefix, &format!("{}/", dir.display()))
}

#[test]
fn every_sample_config_passes_the_checks_of_sbc_check() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sbc-config");
    let mut seen = Vec::new();
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_none_or(|x| x != "toml") {
            continue;
        }
        let name = p.file_name().unwrap().to_str().unwrap().to_owned();
        // The phones' users file is no configuration; the sample that
        // names it loads it (below, and `phones_sample_*`).
        if name == "users.toml" {
            continue;
        }
        // A sample names its users file where it is deployed; here it is
        // the one beside it.
        let text = std::fs::read_to_string(&p)
            .unwrap()
            .replace(SAMPLE_USERS, &dir.join("users.toml").display().to_string());
        // As shipped: structure, references, patterns, ranges. Certificate
        // files are not on this machine: at most warnings.
        let loaded = parse(&text, &p.display().to_string()).unwrap_or_else(|e| panic!("{e}"));
        for w in &loaded.warnings {
            assert!(w.contains("warning: "), "{w}");
        }
        // With certificates in place: exactly what `sbc check` does,
        // including the names in each Teams/ACS certificate.
        let scratch = Scratch::new(&name);
        let prefix = if text.contains("/etc/sbc/") {
            "/etc/sbc/"
        } else {
            "certs/dev/"
        };
        let placed = issue_for(&text, prefix, &scratch.0);
        let l = parse(&placed, &name).unwrap_or_else(|e| panic!("{e}"));
        assert!(l.warnings.is_empty(), "{name}: {:?}", l.warnings);
        l.tls_contexts().unwrap_or_else(|e| panic!("{e}"));
        seen.push(name);
    }
    seen.sort();
    assert_eq!(
        seen,
        [
            "azure-backup.toml",
            "azure-primary.toml",
            "carrier-side.toml",
            "demo.toml",
            "drill.toml",
            "onprem.toml",
            "phones.toml"
        ]
    );
}

/// Where `sbc-config/phones.toml` expects its users file once deployed.
const SAMPLE_USERS: &str = "/etc/sbc/users.toml";

/// `phones.toml` with its users file (`sbc-config/users.toml`) in place.
fn phones_sample() -> Loaded {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sbc-config");
    let text = std::fs::read_to_string(dir.join("phones.toml"))
        .unwrap()
        .replace(SAMPLE_USERS, &dir.join("users.toml").display().to_string());
    parse(&text, "phones.toml").unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn phones_sample_rings_teams_then_the_registered_phones() {
    let l = phones_sample();
    let kinds: Vec<(&str, trunk::TrunkKind)> =
        l.trunks.iter().map(|t| (t.name.as_str(), t.kind)).collect();
    assert_eq!(
        kinds,
        [
            ("carrier", trunk::TrunkKind::Carrier),
            ("teams", trunk::TrunkKind::Teams),
            ("phones", trunk::TrunkKind::Phones)
        ]
    );
    // A carrier call: Teams, then the phones of the called number as
    // "Fail-over"; the reception number falls back to the reception's phone.
    let r = l.routes.select("carrier", "+4930123456101").unwrap();
    let to: Vec<(&str, &routing::Target, Option<&str>)> =
        r.to.iter()
            .map(|d| (d.trunk.as_str(), &d.target, d.label.as_deref()))
            .collect();
    assert_eq!(to[0].0, "teams");
    assert_eq!(
        (to[1].0, to[1].1, to[1].2),
        ("phones", &routing::Target::Registered, Some("Fail-over"))
    );
    let r = l.routes.select("carrier", "+49301234560").unwrap();
    assert_eq!(r.name, "carrier-reception");
    assert_eq!(
        r.to[1].target,
        routing::Target::User("+4930123456100".into())
    );
    assert_eq!(
        l.routes.select("phones", "+4989123").unwrap().to[0].trunk,
        "carrier"
    );
    // The phones trunk: the voice VLAN, UDP and TCP on the LAN listener,
    // our LAN address in Contact.
    let p = trunk(&l, "phones");
    assert_eq!(
        p.transports,
        [transaction::Transport::Udp, transaction::Transport::Tcp]
    );
    assert_eq!(p.contact_host, Some("192.168.10.2".parse().unwrap()));
    let c = trunk::Classifier::new(&l.trunks);
    let lan: SocketAddr = "192.168.10.2:5060".parse().unwrap();
    let phone: std::net::IpAddr = "192.168.20.31".parse().unwrap();
    assert_eq!(
        c.classify(lan, phone, transaction::Transport::Udp, None),
        Some(2)
    );
    // [phones]: the users beside it, kept in redb under /var/lib/sbc.
    let ph = l.phones.as_ref().unwrap();
    assert_eq!(ph.store, StoreKind::Redb("/var/lib/sbc".into()));
    let reg = &ph.phones.registrar;
    assert_eq!(reg.auth.realm, "sbc.contoso.com");
    assert_eq!(
        (
            reg.min_expires,
            reg.default_expires,
            reg.max_expires,
            reg.max_contacts
        ),
        (60, 3600, 7200, 5)
    );
    assert_eq!(reg.protect.max_failures_per_ip, 5);
    assert_eq!(reg.protect.action, registrar::BlockAction::Drop);
    let users = &ph.phones.users;
    for n in ["+4930123456100", "+4930123456101", "+4930123456102"] {
        assert!(users.by_number(n).is_some(), "{n}");
    }
    // ben.mueller has only an MD5 HA1, for phones that answer nothing else.
    let ben = users.by_number("+4930123456102").unwrap();
    assert!(ben.ha1().algorithms().md5 && !ben.ha1().algorithms().sha256);
    assert!(
        users
            .by_number("+4930123456101")
            .unwrap()
            .ha1()
            .algorithms()
            .sha256
    );
}

#[test]
fn demo_config_with_dev_certs_loads_every_tls_profile() {
    let scratch = Scratch::new("demo-dev-certs");
    let certs = scratch.0.join("certs/dev");
    crate::dev_certs(
        &certs,
        &["sbc.example.test".to_owned(), "localhost".to_owned()],
    )
    .unwrap();
    for f in ["ca", "sbc", "client", "teams", "acs", "microsoft"] {
        assert!(certs.join(format!("{f}.pem")).exists(), "{f}.pem");
        assert!(certs.join(format!("{f}.key")).exists(), "{f}.key");
    }
    let text = DEMO.replace("certs/dev/", &format!("{}/", certs.display()));
    let l = parse(&text, "demo.toml").unwrap();
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    let ctx = l.tls_contexts().unwrap();
    assert!(ctx.contains_key("default") && ctx.contains_key("teams") && ctx.contains_key("acs"));
    // The Microsoft stand-ins' certificate carries the proxies' names.
    let pem = std::fs::read(certs.join("microsoft.pem")).unwrap();
    let names = transport::tls::cert_dns_names(&first_pem_certificate(&pem).unwrap().unwrap());
    for n in trunk::MICROSOFT_PROXIES {
        assert!(names.iter().any(|x| x == n), "{names:?}");
    }
}
