//! `[[trunk]]` checks.

use super::*;

#[test]
fn duplicate_trunk_name_is_refused() {
    refused(
        "name = \"acs\"",
        "name = \"teams\"",
        "name = \"teams\"\nkind = \"acs\"",
        "trunk[2].name",
        "duplicate trunk name \"teams\" (first at line 33)",
    );
}

#[test]
fn unknown_media_interface_is_refused() {
    refused(
        "media_interface = \"microsoft\"",
        "media_interface = \"teams\"",
        "media_interface = \"teams\"",
        "trunk[1].media_interface",
        "no media interface named \"teams\" (media.interfaces names: carrier, microsoft)",
    );
    refused(
        "interfaces = [\"carrier/127.0.0.1\", \"microsoft/127.0.0.1\"]",
        "interfaces = [\"carrier/127.0.0.1\", \"microsoft/127.0.0.300\"]",
        "interfaces = [",
        "media.interfaces[1]",
        "bad address",
    );
}

#[test]
fn bad_regex_is_refused_with_the_regex_error() {
    refused(
        "match = \"^00(\\\\d+)$\"",
        "match = \"^00(\\\\d+$\"",
        "numbers = {",
        "trunk[0].numbers.inbound[0].match",
        "bad regular expression \"^00(\\\\d+$\": regex parse error",
    );
    let text = BASE.replacen("called = \"^\\\\+49\"", "called = \"^\\\\+49(\"", 1);
    let e = parse(&text, "t.toml").unwrap_err().to_string();
    let want = format!("t.toml:{}: route[0].called: ", line_of(&text, "called = "));
    assert!(e.starts_with(&want), "{e}");
    assert!(e.contains("unclosed group"), "{e}");
    refused(
        "replace = \"+$1\"",
        "replace = \"+$2\"",
        "numbers = {",
        "trunk[0].numbers.inbound[0].replace",
        "$2 refers to a group the pattern \"^00(\\\\d+)$\" does not have",
    );
}

#[test]
fn bad_cidr_is_refused() {
    refused(
        "kind = \"teams\"\n",
        "kind = \"teams\"\nacl = [\"52.112.0.0/14\", \"52.120.0.0/33\"]\n",
        "acl = [",
        "trunk[1].acl[1]",
        "\"52.120.0.0/33\": bad prefix length",
    );
    refused(
        "kind = \"teams\"\n",
        "kind = \"teams\"\nacl = [\"52.112.1.0/14\"]\n",
        "acl = [",
        "trunk[1].acl[0]",
        "bits set after the prefix length",
    );
}

#[test]
fn microsoft_trunk_without_fqdn_or_tls_is_refused() {
    refused(
        "fqdn = \"teams.sbc.example.test\"\n",
        "",
        "kind = \"teams\"",
        "trunk[1].fqdn",
        "a teams trunk needs the SBC FQDN paired with it",
    );
    refused(
        "tls = \"acs\"\n",
        "",
        "kind = \"acs\"",
        "trunk[2].tls",
        "a acs trunk needs a tls profile",
    );
    refused(
        "fqdn = \"acs.sbc.example.test\"",
        "fqdn = \"10.1.2.3\"",
        "fqdn = \"10.1.2.3\"",
        "trunk[2].fqdn",
        "is an IP address",
    );
    refused(
        "tls = \"teams\"\n",
        "tls = \"teams\"\ntransport = \"udp\"\n",
        "transport = \"udp\"\nmedia_interface",
        "trunk[1].transport",
        "only TLS",
    );
    refused(
        "tls = \"teams\"\n",
        "tls = \"teams\"\nmedia = \"rtp\"\n",
        "media = \"rtp\"",
        "trunk[1].media",
        "require SRTP",
    );
}

#[test]
fn acs_fqdn_equal_to_teams_fqdn_is_refused() {
    refused(
        "fqdn = \"acs.sbc.example.test\"",
        "fqdn = \"Teams.sbc.example.test\"",
        "fqdn = \"Teams.sbc.example.test\"",
        "trunk[2].fqdn",
        "ACS needs its own FQDN, different from the Teams one: trunks \"teams\" and \"acs\" both use \"teams.sbc.example.test\"",
    );
}

#[test]
fn other_trunk_checks_name_the_field() {
    refused(
        "kind = \"acs\"\n",
        "kind = \"acs\"\nfailover_codes = [408, 603]\n",
        "failover_codes",
        "trunk[2].failover_codes[1]",
        "603 Decline is never retried",
    );
    refused(
        "kind = \"acs\"\n",
        "kind = \"acs\"\noptions = { enabled = false }\n",
        "options = ",
        "trunk[2].options.enabled",
        "cannot be off",
    );
    refused(
        "kind = \"acs\"\n",
        "kind = \"acs\"\nlisten = [\"127.0.0.1:5062\"]\n",
        "listen = [\"127.0.0.1:5062\"]",
        "trunk[2].listen[0]",
        "no [[listen]] has the address 127.0.0.1:5062",
    );
    refused(
        "kind = \"acs\"\n",
        "kind = \"acs\"\ncolour = \"blue\"\n",
        "colour",
        "",
        "unknown field `colour`",
    );
    refused(
        "peers = [{ host = \"carrier.example.net\", addr = \"192.0.2.10:5060\" }]",
        "peers = [{ host = \"carrier.example.net\", addr = \"192.0.2.10\" }]",
        "peers = [",
        "trunk[0].peers[0].addr",
        "expected IP:port",
    );
    refused(
        "peers = [{ host = \"carrier.example.net\", addr = \"192.0.2.10:5060\" }]\n",
        "",
        "name = \"carrier\"",
        "trunk[0].peers",
        "at least one peer is required",
    );
    refused(
        "kind = \"teams\"\n",
        "kind = \"teams\"\nmax_calls = 0\n",
        "max_calls",
        "trunk[1].max_calls",
        "at least 1",
    );
    refused(
        "kind = \"teams\"\n",
        "kind = \"teams\"\nheaders = { x_ms_sbc = \"a\\nb\" }\n",
        "headers = ",
        "trunk[1].headers.x_ms_sbc",
        "control characters",
    );
    refused(
        "[media]\n",
        "[media]\nport_min = 50000\nport_max = 40000\n",
        "port_max",
        "media.port_max",
        "larger than media.port_min",
    );
    refused(
        "[media]\n",
        "[media]\nio = \"poll\"\n",
        "io = ",
        "media.io",
        "epoll or uring",
    );
    refused(
        "kind = \"carrier\"",
        "kind = \"pstn\"",
        "kind = \"pstn\"",
        "",
        "unknown variant `pstn`",
    );
}

#[test]
fn trunk_accepting_nothing_inbound_is_a_warning() {
    let text = BASE.replacen(
        "peers = [{ host = \"carrier.example.net\", addr = \"192.0.2.10:5060\" }]",
        "peers = [{ host = \"carrier.example.net\" }]",
        1,
    );
    let l = parse(&text, "t.toml").unwrap();
    let line = line_of(&text, "name = \"carrier\"");
    assert!(
        l.warnings[0].starts_with(&format!("t.toml:{line}: trunk[0].acl: warning: no acl")),
        "{:?}",
        l.warnings
    );
}

#[test]
fn options_hold_and_retry_are_parsed_and_checked() {
    // Defaults: a Retry-After holds at most 300 s; a down peer of a trunk
    // without OPTIONS is tried again after 30 s.
    let l = parse(BASE, "t.toml").unwrap();
    for t in &l.trunks {
        assert_eq!(t.options.max_hold, Duration::from_secs(300), "{}", t.name);
        assert_eq!(
            t.options.retry_interval,
            Duration::from_secs(30),
            "{}",
            t.name
        );
    }
    // On a carrier they leave OPTIONS off: they are about health, not pings.
    let text = BASE.replacen(
        "kind = \"carrier\"\n",
        "kind = \"carrier\"\noptions = { max_hold_s = 60, retry_interval_s = 10 }\n",
        1,
    );
    let l = parse(&text, "t.toml").unwrap();
    let c = &l.trunks[0].options;
    assert!(!c.enabled);
    assert_eq!(c.max_hold, Duration::from_secs(60));
    assert_eq!(c.retry_interval, Duration::from_secs(10));
    // With a ping parameter as well, OPTIONS are on.
    let text = BASE.replacen(
        "kind = \"carrier\"\n",
        "kind = \"carrier\"\noptions = { interval_s = 20, retry_interval_s = 10 }\n",
        1,
    );
    let c = &parse(&text, "t.toml").unwrap().trunks[0].options;
    assert!(c.enabled);
    assert_eq!(
        (c.interval, c.retry_interval),
        (Duration::from_secs(20), Duration::from_secs(10))
    );
    // Teams keeps its OPTIONS on.
    let text = BASE.replacen(
        "kind = \"teams\"\n",
        "kind = \"teams\"\noptions = { max_hold_s = 120 }\n",
        1,
    );
    let t = &parse(&text, "t.toml").unwrap().trunks[1].options;
    assert!(t.enabled);
    assert_eq!(t.max_hold, Duration::from_secs(120));
    assert_eq!(t.retry_interval, Duration::from_secs(30));
    // Out of range: 0, or more than an hour.
    for (set, field) in [
        ("max_hold_s = 0", "max_hold_s"),
        ("max_hold_s = 3601", "max_hold_s"),
        ("retry_interval_s = 0", "retry_interval_s"),
        ("retry_interval_s = 86400", "retry_interval_s"),
    ] {
        refused(
            "kind = \"carrier\"\n",
            &format!("kind = \"carrier\"\noptions = {{ {set} }}\n"),
            "options = ",
            &format!("trunk[0].options.{field}"),
            "must be between 1 and 3600 seconds",
        );
    }
    // A negative number is a type error the TOML parser locates.
    refused(
        "kind = \"carrier\"\n",
        "kind = \"carrier\"\noptions = { retry_interval_s = -5 }\n",
        "options = ",
        "",
        "invalid value",
    );
}

#[test]
fn contact_host_is_an_ip_for_carriers_and_refused_toward_microsoft() {
    let text = BASE.replacen(
        "kind = \"carrier\"\n",
        "kind = \"carrier\"\ncontact_host = \"203.0.113.10\"\n",
        1,
    );
    let l = parse(&text, "t.toml").unwrap();
    let c = &l.trunks[0];
    assert_eq!(c.contact_host, Some("203.0.113.10".parse().unwrap()));
    assert_eq!(c.contact(), "<sip:203.0.113.10:5060;transport=udp>");
    assert_eq!(c.via_sent_by(0), "SIP/2.0/UDP 203.0.113.10:5060");
    // Our name stays where it is not an address (Teams and ACS untouched).
    assert_eq!(c.fqdn, "sbc.example.test");
    assert_eq!(l.trunks[1].contact_host, None);
    // IPv6, with or without brackets.
    for v in ["2001:db8::10", "[2001:db8::10]"] {
        let text = BASE.replacen(
            "kind = \"carrier\"\n",
            &format!("kind = \"carrier\"\ncontact_host = \"{v}\"\n"),
            1,
        );
        let c = &parse(&text, "t.toml").unwrap().trunks[0];
        assert_eq!(c.contact(), "<sip:[2001:db8::10]:5060;transport=udp>");
    }
    for (kind, i) in [("teams", 1), ("acs", 2)] {
        refused(
            &format!("kind = \"{kind}\"\n"),
            &format!("kind = \"{kind}\"\ncontact_host = \"203.0.113.10\"\n"),
            "contact_host = ",
            &format!("trunk[{i}].contact_host"),
            &format!("a {kind} trunk keeps its fqdn in Contact and Via: Microsoft identifies the SBC by it and answers 403 Forbidden to an IP"),
        );
    }
    refused(
        "kind = \"carrier\"\n",
        "kind = \"carrier\"\ncontact_host = \"sbc.example.test\"\n",
        "contact_host = ",
        "trunk[0].contact_host",
        "\"sbc.example.test\" is not an IP address (a name for Contact and Via goes in fqdn)",
    );
    refused(
        "kind = \"carrier\"\n",
        "kind = \"carrier\"\ncontact_host = \"0.0.0.0\"\n",
        "contact_host = ",
        "trunk[0].contact_host",
        "0.0.0.0 cannot be reached",
    );
}

#[test]
fn transports_default_by_kind_and_are_checked() {
    use transaction::Transport::{Tcp, Tls, Udp};
    let l = parse(BASE, "t.toml").unwrap();
    assert_eq!(l.trunks[0].transports, [Udp, Tcp], "carrier: UDP and TCP");
    assert_eq!(l.trunks[1].transports, [Tls], "teams: TLS only");
    assert_eq!(l.trunks[2].transports, [Tls], "acs: TLS only");
    // A carrier limited to UDP.
    let text = BASE.replacen(
        "kind = \"carrier\"\n",
        "kind = \"carrier\"\ntransports = [\"udp\"]\n",
        1,
    );
    assert_eq!(parse(&text, "t.toml").unwrap().trunks[0].transports, [Udp]);
    // A carrier over TLS keeps to TLS unless told otherwise.
    let text = BASE.replacen(
        "kind = \"carrier\"\n",
        "kind = \"carrier\"\ntransport = \"tls\"\n",
        1,
    );
    assert_eq!(parse(&text, "t.toml").unwrap().trunks[0].transports, [Tls]);
    refused(
        "kind = \"carrier\"\n",
        "kind = \"carrier\"\ntransports = [\"tcp\"]\n",
        "transports = ",
        "trunk[0].transports",
        "must include the trunk's transport (udp)",
    );
    refused(
        "peers = [{ host = \"carrier.example.net\", addr = \"192.0.2.10:5060\" }]",
        "transports = [\"udp\"]\npeers = [{ host = \"carrier.example.net\", addr = \"192.0.2.10:5060\" }, { host = \"b.example.net\", transport = \"tcp\" }]",
        "transports = ",
        "trunk[0].transports",
        "must include the transport of peers[1] (tcp)",
    );
    refused(
        "kind = \"carrier\"\n",
        "kind = \"carrier\"\ntransports = []\n",
        "transports = ",
        "trunk[0].transports",
        "at least one transport",
    );
    refused(
        "kind = \"teams\"\n",
        "kind = \"teams\"\ntransports = [\"tls\", \"tcp\"]\n",
        "transports = ",
        "trunk[1].transports[1]",
        "Teams and ACS Direct Routing accept only TLS",
    );
    refused(
        "kind = \"carrier\"\n",
        "kind = \"carrier\"\ntransports = [\"udp\", \"sctp\"]\n",
        "transports = ",
        "",
        "unknown variant `sctp`",
    );
}
