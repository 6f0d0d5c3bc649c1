//! The deployment examples against the samples they deploy: the cloud-init
//! files of `packaging/azure/` carry `sbc-config/azure-*.toml` byte for byte
//! and place every file it names before `sbc check --preflight` and the
//! service start; the inbound tables of `docs/deploy.md` open every port the
//! samples listen on, to the sources their trunks accept, and their media
//! port range.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::*;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The keys these files use (cloud-init 22.4, Debian 12). Any other key
/// fails the test: a misspelt one is ignored by cloud-init, so a new key
/// is added here once checked against `cloud-init schema`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CloudConfig {
    package_update: bool,
    packages: Vec<String>,
    write_files: Vec<WriteFile>,
    runcmd: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WriteFile {
    path: String,
    owner: String,
    permissions: String,
    content: String,
}

/// Each cloud-init example and the sample its `/etc/sbc/sbc.toml` is.
const CLOUD_INIT: [(&str, &str); 2] = [
    ("cloud-init-primary.yaml", "azure-primary.toml"),
    ("cloud-init-backup.yaml", "azure-backup.toml"),
];

/// Where the first difference between two texts is, for the failure message.
fn first_difference(a: &str, b: &str) -> String {
    let (mut la, mut lb) = (a.lines(), b.lines());
    let mut n = 1;
    loop {
        match (la.next(), lb.next()) {
            (Some(x), Some(y)) if x == y => n += 1,
            (None, None) => return "the line ends differ".to_owned(),
            (x, y) => return format!("line {n}: {x:?} vs {y:?}"),
        }
    }
}

#[test]
fn cloud_init_examples_embed_their_sample_and_check_it_before_starting_sbc() {
    let ws = workspace();
    let dir = ws.join("packaging/azure");
    let mut found: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    found.sort();
    let mut want: Vec<String> = CLOUD_INIT.iter().map(|(f, _)| (*f).to_owned()).collect();
    want.sort();
    assert_eq!(
        found, want,
        "packaging/azure/: every example is checked here"
    );

    for (file, sample) in CLOUD_INIT {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        assert!(
            text.starts_with("#cloud-config\n"),
            "{file}: cloud-init takes user data as cloud-config only after a first line `#cloud-config`"
        );
        let cc: CloudConfig =
            serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(cc.package_update, "{file}");
        for p in ["azure-cli", "openssl", "curl", "ca-certificates"] {
            assert!(
                cc.packages.iter().any(|x| x == p),
                "{file}: packages lack {p}"
            );
        }

        // The configuration: the sample, byte for byte.
        let configs: Vec<&WriteFile> = cc
            .write_files
            .iter()
            .filter(|w| w.path == "/etc/sbc/sbc.toml")
            .collect();
        assert_eq!(
            configs.len(),
            1,
            "{file}: one write_files entry for /etc/sbc/sbc.toml"
        );
        let config = configs[0];
        assert_eq!(
            (config.owner.as_str(), config.permissions.as_str()),
            ("root:root", "0644"),
            "{file}"
        );
        let shipped = std::fs::read_to_string(ws.join("sbc-config").join(sample)).unwrap();
        assert!(
            config.content == shipped,
            "{file}: /etc/sbc/sbc.toml is not sbc-config/{sample}: {}",
            first_difference(&config.content, &shipped)
        );
        for w in &cc.write_files {
            assert!(
                w.permissions.len() == 4
                    && w.permissions.bytes().all(|b| (b'0'..=b'7').contains(&b)),
                "{file}: {}: permissions {:?} (a quoted octal mode)",
                w.path,
                w.permissions
            );
        }

        // runcmd is one `sh` script: `set -eu` first, so that a failing
        // step stops it; the package before the certificates (their group
        // is the package's user); the preflight before the start.
        let at = |what: &str| {
            cc.runcmd
                .iter()
                .position(|c| c.contains(what))
                .unwrap_or_else(|| panic!("{file}: no runcmd entry with {what:?}"))
        };
        assert_eq!(cc.runcmd[0], "set -eu", "{file}");
        let install = at("--force-confold");
        let first_key = at("/etc/sbc/tls/");
        let check = at("sbc check --config /etc/sbc/sbc.toml --preflight");
        let start = cc
            .runcmd
            .iter()
            .position(|c| c == "systemctl enable --now sbc")
            .unwrap_or_else(|| panic!("{file}: no runcmd entry `systemctl enable --now sbc`"));
        assert_eq!(
            start,
            cc.runcmd.len() - 1,
            "{file}: the service starts last"
        );
        assert!(
            install < first_key && first_key < check && check < start,
            "{file}: install {install}, certificates {first_key}, check {check}, start {start}"
        );
        assert!(
            cc.runcmd[check].contains("runuser -u sbc --"),
            "{file}: check as the service's user"
        );

        // Every certificate, key and CA file the configuration names is
        // written by runcmd (`> PATH` or `-out PATH`), and handed to the
        // sbc group before the check.
        let l = parse(&config.content, file).unwrap_or_else(|e| panic!("{e}"));
        let mut files = Vec::new();
        for t in l.config.tls.values() {
            for id in &t.identities {
                files.push(id.cert.get_ref().display().to_string());
                files.push(id.key.get_ref().display().to_string());
            }
            files.extend(t.ca.as_ref().map(|c| c.get_ref().display().to_string()));
        }
        files.sort();
        files.dedup();
        assert!(!files.is_empty(), "{file}");
        for f in &files {
            let written = cc.runcmd[..check]
                .iter()
                .any(|c| c.ends_with(&format!("> {f}")) || c.ends_with(&format!("-out {f}")));
            assert!(
                written,
                "{file}: runcmd never writes {f}, which {sample} names"
            );
            for step in ["chgrp sbc ", "chmod 0640 "] {
                assert!(
                    cc.runcmd[..check]
                        .iter()
                        .any(|c| c.starts_with(step) && c.split(' ').any(|w| w == f)),
                    "{file}: no `{step}… {f}` before the check"
                );
            }
        }
    }
}

// ----- docs/deploy.md: the inbound rules ------------------------------------

/// Microsoft's media ranges (requirements §1.8.6, S1 and S20): SRTP comes
/// from these to the media ports of a Teams or ACS trunk.
const MICROSOFT_MEDIA: [&str; 2] = ["52.112.0.0/14", "52.120.0.0/14"];

/// Each sample and the heading of the `docs/deploy.md` table that opens its
/// ports.
const RULE_TABLES: [(&str, &str); 3] = [
    ("azure-primary.toml", "### Network security group"),
    ("azure-backup.toml", "### Network security group"),
    ("onprem.toml", "### Firewall"),
];

/// One inbound rule: its source cell, the ports it opens (a single port is
/// `(p, p)`) and its protocols.
#[derive(Debug)]
struct Rule {
    from: String,
    ports: Vec<(u16, u16)>,
    udp: bool,
    tcp: bool,
}

/// The rows of the first table after the line `heading`; columns are found
/// by the header words `from`, `port` and `protocol`. Backticks are dropped.
fn rules_after(doc: &str, heading: &str) -> Vec<Rule> {
    let start = doc
        .lines()
        .position(|l| l.trim_end() == heading || l.starts_with(&format!("{heading} ")))
        .unwrap_or_else(|| panic!("docs/deploy.md has no heading {heading:?}"));
    let cells = |l: &str| -> Vec<String> {
        l.trim()
            .trim_matches('|')
            .split('|')
            .map(|c| c.trim().replace('`', ""))
            .collect()
    };
    let mut rows = doc
        .lines()
        .skip(start + 1)
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'));
    let header = cells(
        rows.next()
            .unwrap_or_else(|| panic!("no table after {heading:?}")),
    );
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h.to_lowercase().contains(name))
            .unwrap_or_else(|| {
                panic!("the table after {heading:?} has no {name:?} column: {header:?}")
            })
    };
    let (from, port, protocol) = (col("from"), col("port"), col("protocol"));
    rows.skip(1) // | --- | --- |
        .map(|l| {
            let c = cells(l);
            assert_eq!(c.len(), header.len(), "{heading}: {l}");
            let p = c[protocol].to_uppercase();
            Rule {
                from: c[from].clone(),
                ports: ports_in(&c[port]),
                udp: p.contains("UDP"),
                tcp: p.contains("TCP"),
            }
        })
        .collect()
}

/// The ports and port ranges of a cell: `5061`, `40000–49999` (en dash or
/// hyphen), several separated by anything else.
fn ports_in(cell: &str) -> Vec<(u16, u16)> {
    let mut out = Vec::new();
    let mut rest = cell;
    while let Some(i) = rest.find(|c: char| c.is_ascii_digit()) {
        rest = &rest[i..];
        let end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (lo, after) = rest.split_at(end);
        rest = after;
        let Ok(lo) = lo.parse::<u16>() else { continue };
        let mut hi = lo;
        for dash in ["–", "-"] {
            if let Some(r) = rest.strip_prefix(dash) {
                let end = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
                if let Ok(h) = r[..end].parse::<u16>() {
                    hi = h;
                    rest = &r[end..];
                }
                break;
            }
        }
        out.push((lo, hi));
    }
    out
}

/// Something a sample needs let in.
struct Need {
    what: String,
    udp: bool,
    /// A single port is `(p, p)`.
    ports: (u16, u16),
    /// What the rule's `from` must name.
    sources: Vec<String>,
}

/// What `l` needs let in: its listeners, for the sources of each trunk
/// that arrives on one, its media ports, and `[http]` off loopback.
fn needed(l: &Loaded) -> Vec<Need> {
    let mut need = Vec::new();
    for (transport, addr, _) in &l.listeners {
        let udp = *transport == transport::Transport::Udp;
        let trunks: Vec<&trunk::TrunkSpec> = l
            .trunks
            .iter()
            .filter(|t| {
                t.transports.contains(transport) && (t.listen.is_empty() || t.listen.contains(addr))
            })
            .collect();
        assert!(
            !trunks.is_empty(),
            "{}: no trunk arrives on {addr}",
            l.source
        );
        for t in trunks {
            let sources: Vec<String> = if t.acl.is_empty() {
                t.peers
                    .iter()
                    .filter_map(|p| p.addr)
                    .map(|a| a.ip().to_string())
                    .collect()
            } else {
                t.acl.iter().map(ToString::to_string).collect()
            };
            need.push(Need {
                what: format!("{transport:?} listener {addr} for trunk {}", t.name),
                udp,
                ports: (addr.port(), addr.port()),
                sources,
            });
        }
    }
    let media = (l.media.port_min, l.media.port_max);
    let microsoft = l
        .trunks
        .iter()
        .any(|t| matches!(t.kind, trunk::TrunkKind::Teams | trunk::TrunkKind::Acs));
    let sources = if microsoft {
        MICROSOFT_MEDIA.iter().map(|s| (*s).to_owned()).collect()
    } else {
        Vec::new()
    };
    need.push(Need {
        what: "media ports".to_owned(),
        udp: true,
        ports: media,
        sources,
    });
    if let Some(h) = l.http.as_ref().filter(|h| !h.addr.ip().is_loopback()) {
        need.push(Need {
            what: format!("[http] on {}", h.addr),
            udp: false,
            ports: (h.addr.port(), h.addr.port()),
            sources: Vec::new(),
        });
    }
    need
}

#[test]
fn deploy_md_inbound_rules_open_every_port_of_the_samples() {
    let ws = workspace();
    let doc = std::fs::read_to_string(ws.join("docs/deploy.md")).unwrap();
    let mut missing: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (sample, heading) in RULE_TABLES {
        let rules = rules_after(&doc, heading);
        let text = std::fs::read_to_string(ws.join("sbc-config").join(sample)).unwrap();
        let l = parse(&text, sample).unwrap_or_else(|e| panic!("{e}"));
        for Need {
            what,
            udp,
            ports,
            sources,
        } in needed(&l)
        {
            let proto = if udp { "UDP" } else { "TCP" };
            let candidates: Vec<&Rule> = rules
                .iter()
                .filter(|r| if udp { r.udp } else { r.tcp })
                .filter(|r| r.ports.contains(&ports))
                .collect();
            let port = if ports.0 == ports.1 {
                ports.0.to_string()
            } else {
                format!("{}–{}", ports.0, ports.1)
            };
            if candidates.is_empty() {
                missing
                    .entry(sample)
                    .or_default()
                    .push(format!("{what}: no {proto} {port} row under {heading:?}"));
                continue;
            }
            if !candidates
                .iter()
                .any(|r| sources.iter().all(|s| r.from.contains(s.as_str())))
            {
                missing.entry(sample).or_default().push(format!(
                    "{what}: no {proto} {port} row under {heading:?} whose `from` names {}",
                    sources.join(", ")
                ));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "docs/deploy.md does not let in what the samples need:\n{}",
        missing
            .iter()
            .flat_map(|(s, m)| m.iter().map(move |m| format!("  {s}: {m}")))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn ports_in_reads_ports_and_ranges() {
    assert_eq!(ports_in("5061"), [(5061, 5061)]);
    assert_eq!(
        ports_in("40000–49999 ([media] port_min–port_max)"),
        [(40000, 49999)]
    );
    assert_eq!(ports_in("5060, 5062-5063"), [(5060, 5060), (5062, 5063)]);
    assert!(ports_in("any").is_empty());
}
