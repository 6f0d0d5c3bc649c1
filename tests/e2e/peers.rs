//! The peers of the end-to-end call tests: SIPp as carrier, gateway or
//! external number (UDP, RTP echo), `tools/ms_peer.py` as a Microsoft proxy
//! (mutual TLS, SRTP through libsrtp), and the ports they use.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::daemon::{media_ports, Daemon};

pub(crate) fn tool(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/e2e/tools")
        .join(name)
}

pub(crate) fn scenario(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/e2e/scenarios")
        .join(name)
}

pub(crate) fn free_tcp() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub(crate) fn free_udp() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An even RTP port for SIPp's media (and +2 for its video, unused) that no
/// other test of this run uses.
pub(crate) fn sipp_media_port() -> u16 {
    static NEXT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
    let i = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    17_000 + (i % 200) * 10
}

/// The ports of one test's SBC and its peers.
pub(crate) struct Ports {
    pub(crate) udp: u16,
    pub(crate) tls: u16,
    pub(crate) carrier: u16,
    pub(crate) teams: [u16; 3],
    pub(crate) acs: [u16; 1],
}

impl Ports {
    /// Distinct ports: a port freed by one probe may come back from the
    /// next, and two peers on one port would take each other's calls.
    pub(crate) fn new() -> Ports {
        let mut taken = std::collections::HashSet::new();
        let mut tcp = || loop {
            let p = free_tcp();
            if taken.insert(p) {
                return p;
            }
        };
        let (tls, teams, acs) = (tcp(), [tcp(), tcp(), tcp()], [tcp()]);
        let udp = free_udp();
        let carrier = loop {
            let p = free_udp();
            if p != udp {
                break p;
            }
        };
        Ports {
            udp,
            tls,
            carrier,
            teams,
            acs,
        }
    }
}

/// A running `ms_peer.py`.
pub(crate) struct MsPeer {
    pub(crate) child: Child,
    pub(crate) log: PathBuf,
}

impl MsPeer {
    /// Starts a Microsoft proxy with `args` (certificates of `certs` added)
    /// and waits until it is ready.
    pub(crate) fn start(work: &Path, certs: &Path, name: &str, args: &[&str]) -> MsPeer {
        let ready = work.join(format!("{name}.ready"));
        let log = work.join(format!("{name}.log"));
        let child = Command::new("python3")
            .arg(tool("ms_peer.py"))
            .arg("--cert")
            .arg(certs.join("microsoft.pem"))
            .arg("--key")
            .arg(certs.join("microsoft.key"))
            .arg("--ca")
            .arg(certs.join("ca.pem"))
            .arg("--ready-file")
            .arg(&ready)
            .arg("--log")
            .arg(&log)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python3 with pylibsrtp (scripts/test installs it)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !ready.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        MsPeer { child, log }
    }

    /// Sends `sig` (`KILL`, `STOP`, `CONT`) to the peer process.
    pub(crate) fn signal(&self, sig: &str) {
        let st = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(st.success(), "kill -{sig}");
    }

    /// Kills it (SIGKILL: the kernel resets its connections) and reaps it.
    pub(crate) fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM (it stops lingering and reports), then [`MsPeer::finish`].
    pub(crate) fn finish_now(self) -> (bool, serde_json::Value, String) {
        self.signal("TERM");
        self.finish()
    }

    /// Waits for it to finish; returns (exit ok, its JSON summary, all output).
    pub(crate) fn finish(self) -> (bool, serde_json::Value, String) {
        let out = self.child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let v = stdout
            .lines()
            .rev()
            .find_map(|l| serde_json::from_str(l).ok())
            .unwrap_or(serde_json::Value::Null);
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let text = format!(
            "{stdout}\n--- stderr\n{}\n--- log (tail)\n{}",
            String::from_utf8_lossy(&out.stderr),
            log.chars()
                .rev()
                .take(6000)
                .collect::<String>()
                .chars()
                .rev()
                .collect::<String>()
        );
        (out.status.success(), v, text)
    }
}

/// Runs SIPp as the carrier (UDP, RTP echo) with scenario `sf`.
pub(crate) fn sipp_carrier(
    work: &Path,
    sf: &str,
    local_port: u16,
    extra: &[&str],
    target: Option<SocketAddr>,
) -> Child {
    sipp_carrier_over("u1", work, sf, local_port, extra, target)
}

/// [`sipp_carrier`] over SIPp transport `t` (`u1` UDP, `t1` one TCP connection).
pub(crate) fn sipp_carrier_over(
    t: &str,
    work: &Path,
    sf: &str,
    local_port: u16,
    extra: &[&str],
    target: Option<SocketAddr>,
) -> Child {
    sipp(t, "127.0.0.1", work, sf, local_port, extra, target)
}

/// SIPp on `ip:port` over transport `t` playing scenario `sf` once (RTP
/// echo on a port of its own), bounded (`-timeout 40`, `timeout 60`).
pub(crate) fn sipp(
    t: &str,
    ip: &str,
    work: &Path,
    sf: &str,
    port: u16,
    extra: &[&str],
    target: Option<SocketAddr>,
) -> Child {
    let mut cmd = Command::new("timeout");
    cmd.current_dir(work)
        .arg("60")
        .arg("sipp")
        .arg("-sf")
        .arg(scenario(sf))
        .args(["-t", t, "-i", ip, "-p"])
        .arg(port.to_string())
        .args(["-m", "1", "-rtp_echo", "-mp"])
        .arg(sipp_media_port().to_string())
        .args(["-nostdin", "-timeout", "40", "-timeout_error", "-trace_err"])
        .args(extra);
    if let Some(t) = target {
        cmd.arg(t.to_string());
    }
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sipp (Debian sip-tester) must be installed: scripts/test installs it")
}

pub(crate) fn sipp_result(c: Child) -> (bool, String) {
    let out = c.wait_with_output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Waits (bounded) until the daemon printed `n` CDRs.
pub(crate) fn cdrs(d: &Daemon, n: usize) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let c = d.cdrs();
        if c.len() >= n || Instant::now() > deadline {
            return c;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub(crate) fn media_matched(v: &serde_json::Value) -> Vec<u64> {
    v["media"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|m| m["matched"].as_u64().unwrap_or(0))
                .collect()
        })
        .unwrap_or_default()
}

pub(crate) fn teams_args(p: &Ports, i: usize) -> Vec<String> {
    vec![
        "--listen".into(),
        format!("127.0.0.1:{}", p.teams[i]),
        "--sbc-fqdn".into(),
        "teams.sbc.example.test".into(),
    ]
}

pub(crate) fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// The head of a test SBC's config on loopback address `ip`: `[sbc]`,
/// `[sip]` (T1 200 ms), UDP on `udp`, TCP on any port, mutual TLS on `tls`
/// (0: any) with the Teams and ACS identities of the daemon's development
/// PKI in `c` (profiles `microsoft`, `teams`, `acs`), and `[media]` on `ip`
/// with 100 ports of its own. Trunks and routes follow.
pub(crate) fn sbc_head(c: &Path, ip: &str, udp: u16, tls: u16) -> String {
    let c = c.display();
    let (pmin, pmax) = media_ports(100);
    format!(
        r#"[sbc]
fqdn = "sbc.example.test"

[sip]
t1_ms = 200

[[listen]]
transport = "udp"
addr = "{ip}:{udp}"

[[listen]]
transport = "tcp"
addr = "{ip}:0"

[[listen]]
transport = "tls"
addr = "{ip}:{tls}"
tls = "microsoft"

[tls.microsoft]
identities = [{{ cert = "{c}/teams.pem", key = "{c}/teams.key" }}, {{ cert = "{c}/acs.pem", key = "{c}/acs.key" }}]
ca = "{c}/ca.pem"
require_client_cert = true

[tls.teams]
identities = [{{ cert = "{c}/teams.pem", key = "{c}/teams.key" }}]
ca = "{c}/ca.pem"

[tls.acs]
identities = [{{ cert = "{c}/acs.pem", key = "{c}/acs.key" }}]
ca = "{c}/ca.pem"

[media]
interfaces = ["{ip}"]
port_min = {pmin}
port_max = {pmax}
"#
    )
}

/// Waits (bounded) until the daemon logged `needle`.
pub(crate) fn wait_log(d: &Daemon, needle: &str, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if d.stderr().contains(needle) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// A CDR's setup time: INVITE in to 200 out, ms (`u64::MAX` if unanswered).
pub(crate) fn answer_ms(c: &serde_json::Value) -> u64 {
    c["answer_ms"].as_u64().unwrap_or(u64::MAX)
}

/// (trunk, peer host, outcome) of every attempt of a CDR.
pub(crate) fn path(c: &serde_json::Value) -> Vec<(String, String, String)> {
    c["attempts"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|a| {
                    (
                        a["trunk"].as_str().unwrap_or("").to_owned(),
                        a["peer"].as_str().unwrap_or("").to_owned(),
                        a["outcome"].as_str().unwrap_or("").to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

pub(crate) fn hop(trunk: &str, peer: &str, outcome: &str) -> (String, String, String) {
    (trunk.to_owned(), peer.to_owned(), outcome.to_owned())
}

/// The `[[trunk]]` of Teams on loopback: the three proxies on `p.teams`,
/// mutual TLS with the `teams` profile of [`sbc_head`], source ACL `acl`,
/// OPTIONS every minute; `extra` lines follow.
pub(crate) fn teams_trunk(p: &Ports, acl: &str, extra: &str) -> String {
    let [t1, t2, t3] = p.teams;
    format!(
        r#"[[trunk]]
name = "teams"
kind = "teams"
fqdn = "teams.sbc.example.test"
local_port = {tls}
tls = "teams"
peers = [
  {{ host = "sip.pstnhub.microsoft.com", addr = "127.0.0.1:{t1}" }},
  {{ host = "sip2.pstnhub.microsoft.com", addr = "127.0.0.1:{t2}" }},
  {{ host = "sip3.pstnhub.microsoft.com", addr = "127.0.0.1:{t3}" }},
]
acl = ["{acl}"]
options = {{ interval_s = 60 }}
{extra}"#,
        tls = p.tls
    )
}
