//! The carrier-side role (`sbc-config/carrier-side.toml`) with real
//! processes: SIPp (the carrier's switch) → a carrier-side `sbc run` →
//! customer SBCs, each a `sbc run` of its own (Azure primary on 127.0.0.2,
//! Azure backup on 127.0.0.3) → `tools/ms_peer.py` as their Teams proxy
//! (mutual TLS, SRTP through libsrtp). The customer primary is killed in
//! the middle of the test; the next calls take the backup, and once both
//! are gone the carrier-side SBC forwards to the customer's external number
//! through the carrier. Audio crosses both SBCs: SRTP from Teams, RTP
//! between the SBCs and to the carrier (SIPp echoes it), checked by the
//! Teams peer byte for byte.

use std::path::Path;
use std::process::Child;
use std::time::Duration;

use crate::daemon::{media_ports, Daemon, TempDir};
use crate::peers::*;

/// A UDP port free on `ip` (127.0.0.x).
fn free_udp_on(ip: &str) -> u16 {
    std::net::UdpSocket::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A customer SBC on `ip`: its carrier is the carrier-side SBC at
/// 127.0.0.1:`edge`, its Teams proxy `sip` at 127.0.0.1:`teams`.
fn customer(c: &Path, ip: &str, udp: u16, edge: u16, teams: u16) -> String {
    let head = sbc_head(c, ip, udp, 0);
    format!(
        r#"{head}
[[trunk]]
name = "carrier"
kind = "carrier"
local_port = {udp}
peers = [{{ host = "127.0.0.1", port = {edge}, addr = "127.0.0.1:{edge}" }}]
acl = ["127.0.0.1/32"]
codecs = ["PCMA", "PCMU", "telephone-event"]

[[trunk]]
name = "teams"
kind = "teams"
fqdn = "teams.sbc.example.test"
tls = "teams"
peers = [{{ host = "sip.pstnhub.microsoft.com", addr = "127.0.0.1:{teams}" }}]
acl = ["127.0.0.0/8"]
options = {{ interval_s = 1, timeout_s = 1, up_after = 1 }}

[[route]]
name = "carrier-to-teams"
from = ["carrier"]
to = ["teams"]

[[route]]
name = "teams-to-carrier"
from = ["teams"]
to = ["carrier"]

[log]
level = "info"

[drain]
max_wait_s = 5
"#
    )
}

/// The carrier-side SBC on 127.0.0.1:`edge` (the shape of
/// `sbc-config/carrier-side.toml`): the switch at 127.0.0.1:`pstn`,
/// customer A's primary at 127.0.0.2:`a1` and backup at 127.0.0.3:`a2`,
/// each with OPTIONS every second and a 1 s attempt timer; then the
/// external number through the switch.
fn edge(c: &Path, edge: u16, pstn: u16, a1: u16, a2: u16) -> String {
    let c = c.display();
    let (pmin, pmax) = media_ports(60);
    format!(
        r#"[sbc]
fqdn = "edge.example.test"

[sip]
t1_ms = 200

[[listen]]
transport = "udp"
addr = "127.0.0.1:{edge}"

[[listen]]
transport = "tcp"
addr = "127.0.0.1:0"

# Unused by the calls; the test harness waits for a TLS listener.
[[listen]]
transport = "tls"
addr = "127.0.0.1:0"
tls = "edge"

[tls.edge]
identities = [{{ cert = "{c}/sbc.pem", key = "{c}/sbc.key" }}]
ca = "{c}/ca.pem"

[media]
interfaces = ["127.0.0.1"]
port_min = {pmin}
port_max = {pmax}

[[trunk]]
name = "pstn"
kind = "carrier"
local_port = {edge}
peers = [{{ host = "127.0.0.1", port = {pstn}, addr = "127.0.0.1:{pstn}" }}]
acl = ["127.0.0.1/32"]
numbers = {{ inbound = [{{ match = "^0(\\d+)$", replace = "+49$1" }}] }}
codecs = ["PCMA", "PCMU", "telephone-event"]

[[trunk]]
name = "a-azure-primary"
kind = "gateway"
local_port = {edge}
peers = [{{ host = "127.0.0.2", port = {a1}, addr = "127.0.0.2:{a1}" }}]
acl = ["127.0.0.2/32"]
options = {{ interval_s = 1, timeout_s = 1, up_after = 1, down_after = 1 }}
invite_timeout_s = 1

[[trunk]]
name = "a-azure-backup"
kind = "gateway"
local_port = {edge}
peers = [{{ host = "127.0.0.3", port = {a2}, addr = "127.0.0.3:{a2}" }}]
acl = ["127.0.0.3/32"]
options = {{ interval_s = 1, timeout_s = 1, up_after = 1, down_after = 1 }}
invite_timeout_s = 1

[[route]]
name = "customer-a"
from = ["pstn"]
called = "^\\+49301234\\d{{3,4}}$"
to = ["a-azure-primary", "a-azure-backup"]
[route.forward]
trunk = "pstn"
number = "+4915112345"
window_s = 8

[[route]]
name = "customers-to-pstn"
from = ["a-azure-primary", "a-azure-backup"]
to = ["pstn"]

[log]
level = "info"

[drain]
max_wait_s = 5
"#
    )
}

/// A Teams proxy for customer SBC `d` on `port`, answering `calls` calls
/// (1 s SRTP echo check each) and waiting for their BYE.
fn teams(work: &Path, d: &Daemon, name: &str, port: u16, calls: u32) -> MsPeer {
    let listen = format!("127.0.0.1:{port}");
    let calls = calls.to_string();
    MsPeer::start(
        work,
        &d.certs(),
        name,
        &[
            "--listen",
            &listen,
            "--sbc-fqdn",
            "teams.sbc.example.test",
            "--on-invite",
            "answer",
            "--expect-calls",
            &calls,
            "--media-seconds",
            "1",
            "--then",
            "wait-bye",
            "--timeout",
            "60",
            "--linger",
            "60",
        ],
    )
}

/// (trunk, outcome) of every attempt of a CDR.
fn trunks(c: &serde_json::Value) -> Vec<(String, String)> {
    path(c).into_iter().map(|(t, _, o)| (t, o)).collect()
}

fn pair(t: &str, o: &str) -> (String, String) {
    (t.to_owned(), o.to_owned())
}

#[test]
fn carrier_side_sbc_moves_to_the_customer_backup_when_the_primary_dies_then_forwards() {
    let work = TempDir::new("carrier-side-work");
    let (t1, t2) = (free_tcp(), free_tcp());
    let (a1, a2) = (free_udp_on("127.0.0.2"), free_udp_on("127.0.0.3"));
    let (edge_port, pstn) = loop {
        let (e, p) = (free_udp(), free_udp());
        if e != p {
            break (e, p);
        }
    };
    let primary = Daemon::start("cs-primary", |c| {
        customer(c, "127.0.0.2", a1, edge_port, t1)
    });
    let backup = Daemon::start("cs-backup", |c| customer(c, "127.0.0.3", a2, edge_port, t2));
    let teams1 = teams(&work.0, &primary, "teams-primary", t1, 1);
    let teams2 = teams(&work.0, &backup, "teams-backup", t2, 2);
    let edge = Daemon::start("cs-edge", |c| edge(c, edge_port, pstn, a1, a2));
    for host in ["127.0.0.2", "127.0.0.3"] {
        assert!(
            wait_log(
                &edge,
                &format!("host={host} up=true"),
                Duration::from_secs(10)
            ),
            "customer SBC {host} up by OPTIONS:\n{}",
            edge.stderr()
        );
    }
    let external = sipp_carrier(&work.0, "external-uas.xml", pstn, &["-m", "1"], None);
    let call = |n: usize| -> serde_json::Value {
        let port = loop {
            let p = free_udp();
            if ![edge_port, pstn].contains(&p) {
                break p;
            }
        };
        let c: Child = sipp_carrier(
            &work.0,
            "carrier-uac.xml",
            port,
            &[
                "-s",
                "0301234567",
                "-key",
                "caller",
                "0401112222",
                "-d",
                "1800",
            ],
            edge.listeners.udp,
        );
        let (ok, text) = sipp_result(c);
        let all = cdrs(&edge, n);
        assert!(ok, "call {n}:\n{text}\n{}", edge.stderr());
        assert_eq!(all.len(), n, "{}", edge.stdout());
        all[n - 1].clone()
    };

    // 1. The primary takes the call.
    let c1 = call(1);
    assert_eq!(trunks(&c1), [pair("a-azure-primary", "answered")], "{c1}");

    // 2. The customer primary dies (SIGKILL) in the middle of the test.
    drop(primary);
    let c2 = call(2);
    assert_eq!(c2["to_trunk"], "a-azure-backup", "{c2}");
    assert_eq!(
        c2["attempts"].as_array().unwrap().last().unwrap()["label"],
        "Fail-over",
        "{c2}"
    );
    let after_death = answer_ms(&c2);
    // At most the 1 s attempt timer (when the call came before OPTIONS
    // noticed) plus setup through the backup SBC.
    assert!(
        after_death <= 2000,
        "after the primary died: {after_death} ms: {c2}"
    );

    // 3. The primary is known down: no delay at all.
    assert!(
        wait_log(&edge, "host=127.0.0.2 up=false", Duration::from_secs(5)),
        "{}",
        edge.stderr()
    );
    let c3 = call(3);
    assert_eq!(trunks(&c3), [pair("a-azure-backup", "answered")], "{c3}");
    let known_down = answer_ms(&c3);
    assert!(
        known_down <= 500,
        "known-down primary: {known_down} ms: {c3}"
    );

    // 4. The backup dies too: forwarded at once to the external number
    //    (both customer SBCs known down: the last-resort attempts fail
    //    within their 1 s timers).
    let (bok, bv, btext) = teams2.finish_now();
    drop(backup);
    assert!(
        wait_log(&edge, "host=127.0.0.3 up=false", Duration::from_secs(5)),
        "{}",
        edge.stderr()
    );
    let c4 = call(4);
    assert_eq!(c4["to_trunk"], "pstn", "{c4}");
    let fwd_at = c4["attempts"].as_array().unwrap().last().unwrap()["at_ms"]
        .as_u64()
        .unwrap();
    let (eok, etext) = sipp_result(external);
    let (ok1, v1, text1) = teams1.finish_now();
    let (code, err) = edge.stop();
    assert!(
        eok,
        "external number (Diversion, identity, label):\n{etext}\n{err}"
    );
    assert!(fwd_at <= 2500, "forward at {fwd_at} ms: {c4}");
    assert!(ok1, "Teams behind the primary:\n{text1}");
    assert_eq!(media_matched(&v1), [50], "SRTP through both SBCs: {text1}");
    assert!(bok, "Teams behind the backup:\n{btext}");
    assert_eq!(media_matched(&bv), [50, 50], "{btext}");
    let log2 = std::fs::read_to_string(work.0.join("teams-backup.log")).unwrap_or_default();
    assert!(
        log2.contains("\"Fail-over"),
        "label carried through the customer SBC to Teams"
    );
    assert_eq!(code, Some(0), "{err}");
    eprintln!(
        "carrier side: after the primary died {after_death} ms, known down {known_down} ms, \
         forwarded at {fwd_at} ms"
    );
}
