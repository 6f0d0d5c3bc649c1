//! `[sbc]`, `[sip]`, `[[listen]]`, and how errors are located.

use std::time::Duration;

use super::*;

#[test]
fn base_config_is_valid() {
    let l = parse(BASE, "t.toml").unwrap();
    assert_eq!(l.trunks.len(), 3);
    // Certificates not on this machine: the names could not be checked.
    assert_eq!(l.warnings.len(), 2, "{:?}", l.warnings);
    let line = line_of(BASE, "fqdn = \"teams.sbc.example.test\"");
    assert!(
        l.warnings[0].starts_with(&format!("t.toml:{line}: trunk[1].fqdn: warning: ")),
        "{}",
        l.warnings[0]
    );
    // Per-kind defaults.
    let acs = &l.trunks[2];
    assert_eq!(acs.peers.len(), 3);
    assert_eq!(acs.peers[0].host, "sip.pstnhub.microsoft.com");
    assert_eq!(acs.acl.len(), 2);
    assert_eq!(acs.failover_codes, [408, 503, 504]);
    assert_eq!(acs.invite_timeout, Duration::from_secs(2));
    assert!(acs.options.enabled);
    assert_eq!(acs.options.interval, Duration::from_secs(60));
    let x = acs.headers.x_ms_sbc.as_deref().unwrap();
    assert_eq!(x.split('/').count(), 3, "{x}");
    assert_eq!(l.trunks[0].transport, transaction::Transport::Udp);
    assert_eq!(l.trunks[0].local_port, 5060);
    assert!(!l.trunks[0].options.enabled);
    assert_eq!(l.trunks[0].headers.user_agent, default_agent());
}

#[test]
fn option_tags_the_sbc_does_not_implement_are_refused() {
    let listen = "[[listen]]\ntransport = \"udp\"";
    refused(
        listen,
        &format!("[sip]\nsupported = [\"gruu\"]\n\n{listen}"),
        "supported = ",
        "sip.supported[0]",
        "\"gruu\" is not an option tag the SBC implements (implemented: timer, replaces, norefersub, path, outbound, 100rel)",
    );
    // A subset of the implemented tags, in any case, is fine.
    let text = BASE.replacen(
        listen,
        &format!("[sip]\nsupported = [\"Timer\", \"replaces\"]\n\n{listen}"),
        1,
    );
    parse(&text, "t.toml").unwrap();
    // The default is every implemented tag, 100rel (PRACK) among them.
    let l = parse(BASE, "t.toml").unwrap();
    let tags: Vec<&str> = l
        .config
        .sip
        .supported
        .iter()
        .map(|t| t.get_ref().as_str())
        .collect();
    assert_eq!(tags, sip::DEFAULT_SUPPORTED);
    assert!(tags.contains(&"100rel"));
}

#[test]
fn config_without_trunks_still_loads() {
    let l = parse(
        "[sbc]\nfqdn = \"sbc.example.test\"\n[[listen]]\ntransport = \"udp\"\naddr = \"127.0.0.1:5060\"\n",
        "t.toml",
    )
    .unwrap();
    assert!(l.trunks.is_empty() && l.routes.routes.is_empty());
    assert_eq!(l.media.interfaces, ["127.0.0.1"]);
}

#[test]
fn errors_name_file_line_and_field() {
    let text = "[sbc]\nfqdn = \"sbc.example.com\"\n\n[[listen]]\ntransport = \"udp\"\naddr = \"127.0.0.1:99999\"\n";
    let e = parse(text, "x.toml").unwrap_err().to_string();
    assert!(e.starts_with("x.toml:6: listen[0].addr: "), "{e}");

    let e = parse("[sbc]\nfqdn = \"sbc.example.com\"\ncolour = 1\n", "y.toml")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("y.toml:3: "), "{e}");
    assert!(e.contains("unknown field `colour`"), "{e}");

    let e = parse("[sbc]\nfqdn = \"10.0.0.1\"\n", "z.toml")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("z.toml:2: sbc.fqdn: "), "{e}");

    let text = "[sbc]\nfqdn = \"s.example.com\"\n[[listen]]\ntransport = \"tls\"\naddr = \"127.0.0.1:5061\"\ntls = \"nope\"\n";
    let e = parse(text, "w.toml").unwrap_err().to_string();
    assert!(
        e.starts_with("w.toml:6: listen[0].tls: no [tls.nope] profile"),
        "{e}"
    );
}

#[test]
fn dns_section_is_checked() {
    let l = parse(BASE, "t.toml").unwrap();
    assert!(l.dns.servers.is_empty(), "default: the system's resolver");
    assert_eq!(l.dns.refresh, transport::Refresh::default());
    let text = format!(
        "{BASE}\n[dns]\nservers = [\"127.0.0.1:5353\", \"::1\"]\nmin_refresh_s = 1\nmax_refresh_s = 60\n"
    );
    let l = parse(&text, "t.toml").unwrap();
    assert_eq!(
        l.dns.servers,
        [
            "127.0.0.1:5353".parse().unwrap(),
            "[::1]:53".parse().unwrap()
        ]
    );
    assert_eq!(l.dns.refresh.min, Duration::from_secs(1));
    assert_eq!(l.dns.refresh.max, Duration::from_secs(60));
    for (bad, field) in [
        ("servers = [\"dns.example\"]", "dns.servers[0]"),
        ("min_refresh_s = 0", "dns.min_refresh_s"),
        (
            "min_refresh_s = 30\nmax_refresh_s = 10",
            "dns.max_refresh_s",
        ),
    ] {
        let text = format!("{BASE}\n[dns]\n{bad}\n");
        let e = parse(&text, "t.toml").unwrap_err().to_string();
        assert!(e.contains(&format!(": {field}: ")), "{e}");
    }
}
