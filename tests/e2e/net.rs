//! Where trunk peers are and whether they are there, end to end: a gateway
//! found through a real DNS server (dnsmasq on loopback) that moves or
//! appears after start, and a UDP gateway that is gone (ICMP port
//! unreachable) costing no per-attempt timer. SIPp plays the carrier and
//! the gateways.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::daemon::{media_ports, Daemon, TempDir};
use crate::peers::{cdrs, free_udp, sipp, sipp_result};

/// dnsmasq answering for the names in a hosts file (TTL 1 s), on a loopback
/// port of its own; SIGHUP makes it read the file again.
pub(crate) struct Dnsmasq {
    child: Child,
    pub(crate) port: u16,
    hosts: PathBuf,
}

impl Dnsmasq {
    pub(crate) fn start(dir: &Path, hosts: &str) -> Dnsmasq {
        let file = dir.join("hosts");
        std::fs::write(&file, hosts).unwrap();
        let port = free_udp();
        let child = Command::new("dnsmasq")
            .args([
                "--keep-in-foreground",
                "--no-resolv",
                "--no-hosts",
                "--bind-interfaces",
                "--listen-address=127.0.0.1",
                "--user=root",
                "--pid-file",
                "--log-facility=-",
                "-q",
                "--local-ttl=1",
            ])
            .arg(format!("--port={port}"))
            .arg(format!("--addn-hosts={}", file.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dnsmasq (Debian dnsmasq-base) must be installed: scripts/test installs it");
        // Wait until it answers a query.
        let probe = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        probe
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let query = [
            0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, b'x', 0, 0, 1, 0, 1,
        ];
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let _ = probe.send_to(&query, ("127.0.0.1", port));
            let mut buf = [0u8; 512];
            if probe.recv(&mut buf).is_ok() {
                break;
            }
            assert!(Instant::now() < deadline, "dnsmasq did not start");
        }
        Dnsmasq {
            child,
            port,
            hosts: file,
        }
    }

    /// Serves `hosts` from now on.
    fn set_hosts(&self, hosts: &str) {
        std::fs::write(&self.hosts, hosts).unwrap();
        let st = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(st.success());
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// SIPp on `ip:port` playing scenario `sf` once (RTP echo).
fn sipp_at(
    work: &Path,
    sf: &str,
    ip: &str,
    port: u16,
    extra: &[&str],
    target: Option<std::net::SocketAddr>,
) -> Child {
    sipp("u1", ip, work, sf, port, extra, target)
}

/// Waits (bounded) until the daemon's log has a line with every one of `parts`.
fn wait_log(d: &Daemon, parts: &[&str], secs: u64) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if d.stderr()
            .lines()
            .any(|l| parts.iter().all(|p| l.contains(p)))
        {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The SBC on loopback: a carrier (UDP, 127.0.0.1 only) whose calls go to
/// the destinations `route`, the trunks `trunks` (TOML), `dns` as `[dns]`.
fn config(c: &Path, udp: u16, carrier: u16, trunks: &str, route: &str, dns: &str) -> String {
    let c = c.display();
    let (pmin, pmax) = media_ports(40);
    format!(
        r#"[sbc]
fqdn = "sbc.example.test"

[sip]
t1_ms = 200

[[listen]]
transport = "udp"
addr = "127.0.0.1:{udp}"

[[listen]]
transport = "tcp"
addr = "127.0.0.1:0"

[[listen]]
transport = "tls"
addr = "127.0.0.1:0"
tls = "mtls"

[tls.mtls]
identities = [{{ cert = "{c}/sbc.pem", key = "{c}/sbc.key" }}]
ca = "{c}/ca.pem"
require_client_cert = true

{dns}

[media]
interfaces = ["127.0.0.1"]
port_min = {pmin}
port_max = {pmax}

[[trunk]]
name = "carrier"
kind = "carrier"
local_port = {udp}
peers = [{{ host = "127.0.0.1", port = {carrier}, addr = "127.0.0.1:{carrier}" }}]
acl = ["127.0.0.1/32"]
codecs = ["PCMA", "PCMU", "telephone-event"]

{trunks}

[[route]]
name = "carrier-out"
from = ["carrier"]
to = {route}

[log]
level = "info"

[drain]
max_wait_s = 10
"#
    )
}

fn gateway_by_name(port: u16) -> String {
    format!(
        r#"[[trunk]]
name = "gateway"
kind = "gateway"
peers = [{{ host = "gw.dns.test", port = {port} }}]
codecs = ["PCMA", "PCMU", "telephone-event"]"#
    )
}

/// One carrier call through the SBC to the gateway SIPp at `ip:gw`.
fn call_reaches(d: &Daemon, work: &Path, carrier: u16, ip: &str, gw: u16) {
    let uas = sipp_at(work, "carrier-uas.xml", ip, gw, &[], None);
    std::thread::sleep(Duration::from_millis(300));
    let uac = sipp_at(
        work,
        "carrier-uac.xml",
        "127.0.0.1",
        carrier,
        &[
            "-s",
            "0301234567",
            "-key",
            "caller",
            "0401112222",
            "-d",
            "1000",
        ],
        d.listeners.udp,
    );
    let (cok, ctext) = sipp_result(uac);
    let (gok, gtext) = sipp_result(uas);
    assert!(cok, "carrier:\n{ctext}\n{}", d.stderr());
    assert!(gok, "gateway at {ip}:{gw}:\n{gtext}\n{}", d.stderr());
}

#[test]
fn a_gateway_found_by_dns_takes_calls_at_its_new_address_after_the_ttl() {
    let work = TempDir::new("net-dns-move");
    let dns = Dnsmasq::start(&work.0, "127.0.0.2 gw.dns.test\n");
    let (udp, carrier, gw) = (free_udp(), free_udp(), free_udp());
    let d = Daemon::start("net-dns-move", |c| {
        config(
            c,
            udp,
            carrier,
            &gateway_by_name(gw),
            r#"["gateway"]"#,
            &format!(
                "[dns]\nservers = [\"127.0.0.1:{}\"]\nmin_refresh_s = 1",
                dns.port
            ),
        )
    });
    assert!(
        wait_log(&d, &["trunk peer address", "127.0.0.2"], 5),
        "{}",
        d.stderr()
    );
    call_reaches(&d, &work.0, carrier, "127.0.0.2", gw);
    // The name moves; within its TTL (1 s) and our refresh the SBC follows.
    dns.set_hosts("127.0.0.3 gw.dns.test\n");
    assert!(
        wait_log(&d, &["trunk peer address", "127.0.0.3"], 10),
        "{}",
        d.stderr()
    );
    call_reaches(&d, &work.0, carrier, "127.0.0.3", gw);
    let cdr = cdrs(&d, 2);
    let (code, err) = d.stop();
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(cdr.len(), 2, "{err}");
    assert!(cdr.iter().all(|c| c["status"] == 200), "{cdr:?}");
    assert!(cdr.iter().all(|c| c["to_trunk"] == "gateway"), "{cdr:?}");
}

#[test]
fn a_gateway_whose_name_appears_after_start_gets_calls() {
    let work = TempDir::new("net-dns-late");
    let dns = Dnsmasq::start(&work.0, "");
    let (udp, carrier, gw) = (free_udp(), free_udp(), free_udp());
    let d = Daemon::start("net-dns-late", |c| {
        config(
            c,
            udp,
            carrier,
            &gateway_by_name(gw),
            r#"["gateway"]"#,
            &format!(
                "[dns]\nservers = [\"127.0.0.1:{}\"]\nmin_refresh_s = 1",
                dns.port
            ),
        )
    });
    // Not skipped for good: retried.
    assert!(
        wait_log(&d, &["peer not resolved; retrying", "gw.dns.test"], 5),
        "{}",
        d.stderr()
    );
    dns.set_hosts("127.0.0.2 gw.dns.test\n");
    let t = Instant::now();
    assert!(
        wait_log(&d, &["trunk peer address", "127.0.0.2"], 20),
        "{}",
        d.stderr()
    );
    eprintln!("name found {:?} after it appeared", t.elapsed());
    call_reaches(&d, &work.0, carrier, "127.0.0.2", gw);
    let cdr = cdrs(&d, 1);
    let (code, err) = d.stop();
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(cdr[0]["status"], 200, "{cdr:?}");
}

#[test]
fn a_dead_udp_gateway_costs_no_attempt_timer() {
    // carrier → [gateway: UDP on a port where nobody listens, backup: SIPp].
    // The INVITE to the gateway draws ICMP port unreachable: the attempt
    // fails at once and the backup answers, well inside the gateway's
    // per-attempt timer (5 s).
    let work = TempDir::new("net-icmp");
    let (udp, carrier, dead, backup) = (free_udp(), free_udp(), free_udp(), free_udp());
    let trunks = format!(
        r#"[[trunk]]
name = "gateway"
kind = "gateway"
peers = [{{ host = "127.0.0.1", port = {dead}, addr = "127.0.0.1:{dead}" }}]
acl = ["192.0.2.1/32"]
codecs = ["PCMA", "PCMU", "telephone-event"]

[[trunk]]
name = "backup"
kind = "gateway"
peers = [{{ host = "127.0.0.2", port = {backup}, addr = "127.0.0.2:{backup}" }}]
codecs = ["PCMA", "PCMU", "telephone-event"]"#
    );
    let d = Daemon::start("net-icmp", |c| {
        config(
            c,
            udp,
            carrier,
            &trunks,
            r#"["gateway", { trunk = "backup", label = "" }]"#,
            "",
        )
    });
    call_reaches(&d, &work.0, carrier, "127.0.0.2", backup);
    let cdr = cdrs(&d, 1);
    let (code, err) = d.stop();
    assert_eq!(code, Some(0), "{err}");
    let c = &cdr[0];
    let outcomes: Vec<(&str, &str)> = c["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["trunk"].as_str().unwrap(), a["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(
        outcomes,
        [("gateway", "transport"), ("backup", "answered")],
        "{c}"
    );
    // The backup answers 200 ms after its INVITE; the dead gateway may cost
    // milliseconds, not its 5 s attempt timer.
    let answer = c["answer_ms"].as_u64().unwrap();
    eprintln!("answered after {answer} ms (the backup itself takes 200 ms)");
    assert!(answer < 1500, "answered after {answer} ms: {c}");
    assert!(
        err.contains("host=127.0.0.1 up=false"),
        "the gateway is marked down:\n{err}"
    );
}
