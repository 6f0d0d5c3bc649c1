//! A running `sbc run` for a test: its own config and PKI in a temp dir,
//! listeners on port 0 (the ports chosen are read from its stdout), stopped
//! with SIGTERM and required to exit 0.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::sbc;

/// A temp directory removed on drop.
pub(crate) struct TempDir(pub(crate) PathBuf);

impl TempDir {
    pub(crate) fn new(tag: &str) -> TempDir {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("sbc-e2e-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // SBC_E2E_KEEP=1 keeps every test's files (peer logs) for a look.
        if std::env::var_os("SBC_E2E_KEEP").is_some() {
            return;
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Generates a development PKI with the real binary (`sbc dev-certs`).
pub(crate) fn dev_certs(dir: &Path) {
    let out = sbc()
        .args(["dev-certs", "--dir"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "dev-certs: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Listener addresses of a running daemon.
#[derive(Debug, Default, Clone)]
pub(crate) struct Listeners {
    pub(crate) udp: Option<SocketAddr>,
    pub(crate) tcp: Option<SocketAddr>,
    pub(crate) tls: Option<SocketAddr>,
}

pub(crate) struct Daemon {
    child: Option<Child>,
    pub(crate) listeners: Listeners,
    pub(crate) dir: TempDir,
    stderr: Arc<Mutex<String>>,
    stdout: Arc<Mutex<String>>,
}

/// A media port range of `n` ports no other test of this run uses.
pub(crate) fn media_ports(n: u16) -> (u16, u16) {
    static NEXT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
    let i = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // 50000–59999, away from the ranges the media tests use.
    let min = 50_000 + (i % 40) * 250;
    (min, min + n.min(248))
}

/// A config with UDP, TCP and mutual-TLS listeners on loopback port 0.
pub(crate) fn default_config(certs: &Path, extra: &str) -> String {
    let c = certs.display();
    let (pmin, pmax) = media_ports(200);
    format!(
        r#"[sbc]
fqdn = "sbc.example.test"

[sip]
{extra}

[[listen]]
transport = "udp"
addr = "127.0.0.1:0"

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

# Every loopback source is the lab carrier, on each transport.
[[trunk]]
name = "lab-udp"
kind = "carrier"
fqdn = "sbc.example.test"
peers = [{{ host = "127.0.0.1", port = 5999, addr = "127.0.0.1:5999" }}]
acl = ["127.0.0.0/8", "::1/128"]

[[trunk]]
name = "lab-tcp"
kind = "carrier"
fqdn = "sbc.example.test"
transport = "tcp"
peers = [{{ host = "127.0.0.1", port = 5999, transport = "tcp", addr = "127.0.0.1:5999" }}]
acl = ["127.0.0.0/8", "::1/128"]

[[trunk]]
name = "lab-tls"
kind = "carrier"
fqdn = "sbc.example.test"
transport = "tls"
tls = "mtls"
peers = [{{ host = "localhost", port = 5999, transport = "tls", addr = "127.0.0.1:5999" }}]
acl = ["127.0.0.0/8", "::1/128"]

[media]
interfaces = ["127.0.0.1"]
port_min = {pmin}
port_max = {pmax}

[log]
level = "info"
bad_input_per_second = 5

[drain]
max_wait_s = 20
"#
    )
}

impl Daemon {
    /// Starts `sbc run --config` with `config(certs_dir)` and waits for its listeners.
    pub(crate) fn start(tag: &str, config: impl FnOnce(&Path) -> String) -> Daemon {
        let dir = TempDir::new(tag);
        let certs = dir.0.join("certs");
        dev_certs(&certs);
        let cfg = dir.0.join("sbc.toml");
        std::fs::write(&cfg, config(&certs)).unwrap();
        let mut child = sbc()
            .args(["run", "--config"])
            .arg(&cfg)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start sbc run");
        let stderr = Arc::new(Mutex::new(String::new()));
        {
            let err = child.stderr.take().unwrap();
            let sink = stderr.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(err).lines().map_while(Result::ok) {
                    let mut s = sink.lock().unwrap();
                    s.push_str(&line);
                    s.push('\n');
                }
            });
        }
        let out = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let stdout = Arc::new(Mutex::new(String::new()));
        {
            // Read stdout to the end (CDR lines) so the daemon never blocks on it.
            let sink = stdout.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    {
                        let mut s = sink.lock().unwrap();
                        s.push_str(&line);
                        s.push('\n');
                    }
                    let _ = tx.send(line);
                }
            });
        }
        let mut listeners = Listeners::default();
        let deadline = Instant::now() + Duration::from_secs(20);
        while listeners.udp.is_none() || listeners.tcp.is_none() || listeners.tls.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match rx.recv_timeout(left) {
                Ok(l) => l,
                Err(_) => panic!(
                    "sbc run did not report its listeners; stderr:\n{}",
                    stderr.lock().unwrap()
                ),
            };
            let parts: Vec<&str> = line.split_whitespace().collect();
            if let ["listening", t, addr] = parts[..] {
                let a: SocketAddr = addr.parse().unwrap();
                match t {
                    "udp" => listeners.udp = Some(a),
                    "tcp" => listeners.tcp = Some(a),
                    "tls" => listeners.tls = Some(a),
                    _ => {}
                }
            }
        }
        Daemon {
            child: Some(child),
            listeners,
            dir,
            stderr,
            stdout,
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or_default()
    }

    pub(crate) fn certs(&self) -> PathBuf {
        self.dir.0.join("certs")
    }

    /// What the daemon printed on stdout so far (listeners, CDR lines).
    pub(crate) fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    /// The CDRs printed so far, parsed.
    pub(crate) fn cdrs(&self) -> Vec<serde_json::Value> {
        self.stdout()
            .lines()
            .filter_map(|l| l.strip_prefix("cdr "))
            .filter_map(|j| serde_json::from_str(j).ok())
            .collect()
    }

    pub(crate) fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    pub(crate) fn signal(&self, sig: &str) {
        let st = Command::new("kill")
            .args([&format!("-{sig}"), &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(st.success());
    }

    /// SIGTERM, then wait (bounded) for exit; returns the exit code and stderr.
    pub(crate) fn stop(mut self) -> (Option<i32>, String) {
        self.signal("TERM");
        let mut child = self.child.take().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(st) = child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(100));
                return (st.code(), self.stderr());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!(
                    "sbc run did not exit within 30 s of SIGTERM:\n{}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Reads `/proc/<pid>`: resident memory in kB and the number of open file descriptors.
pub(crate) fn proc_usage(pid: u32) -> (u64, usize) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count();
    (rss, fds)
}

/// The last `counters` log line's value for `key`.
pub(crate) fn counter(stderr: &str, key: &str) -> Option<u64> {
    let line = stderr.lines().rfind(|l| l.contains(" counters"))?;
    let needle = format!("{key}=");
    let at = line.find(&needle)? + needle.len();
    line[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}
