//! Mutual-TLS handshakes per second against a TLS listener of `sbc run`,
//! and the server's CPU time per handshake.
//!
//! ```text
//! cargo run --release -p sbc-benches --example tls_handshakes -- \
//!     --addr 127.0.0.1:5061 --certs certs/dev [--server-name sbc.example.test] \
//!     [--concurrency 32] [--warmup 2] [--duration 10] [--max 1000000] \
//!     [--threads 1] [--tls-version 1.2|1.3] [--suite NAME] [--pid SERVER_PID]
//! ```
//!
//! `--concurrency` tasks each loop until the end of the run: TCP connect,
//! a full TLS handshake presenting `client.pem`/`client.key` and verifying
//! the server against `ca.pem` and `--server-name` (session resumption and
//! tickets disabled on the client, so every connection is a full
//! handshake; key exchange X25519, then P-256, P-384, as sbc offers by
//! default; TLS 1.3 unless `--tls-version 1.2`; the provider's cipher suites,
//! or only `--suite`, a rustls name such as `TLS13_AES_128_GCM_SHA256`),
//! one SIP OPTIONS over the connection (`Via: SIP/2.0/TLS`), its
//! `200` read back (this proves the server finished the handshake and
//! accepted the client certificate: with TLS 1.3 the client is done before
//! the server has checked it), then `close_notify` and close. A connection
//! counts as a completed handshake when the 200 arrived.
//!
//! Counting starts after `--warmup` seconds and lasts `--duration` seconds;
//! the run also stops after `--max` connections were started. With `--pid`,
//! the server's utime+stime (all threads, `/proc/PID/stat`) over that window
//! is divided by the handshakes completed in it. The tool's own CPU time is
//! reported the same way, to tell when the load generator is the limit.
//!
//! Output: a human-readable summary, then one `result key=value ...` line
//! for scripts (`scripts/bench-tls`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::client::Resumption;
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Linux reports utime/stime in USER_HZ, 100 on every architecture it supports.
const CLOCK_TICKS_PER_S: f64 = 100.0;

/// Give up on one connection after this long.
const CONN_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug)]
struct Args {
    addr: String,
    certs: PathBuf,
    server_name: String,
    concurrency: usize,
    warmup: Duration,
    duration: Duration,
    max: u64,
    threads: usize,
    tls_version: Option<String>,
    suite: Option<String>,
    pid: Option<u32>,
}

const USAGE: &str = "usage: tls_handshakes --addr HOST:PORT --certs DIR [--server-name NAME] \
[--concurrency N] [--warmup S] [--duration S] [--max N] [--threads N] [--tls-version 1.2|1.3] \
[--suite NAME] [--pid PID]";

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        addr: String::new(),
        certs: PathBuf::new(),
        server_name: "sbc.example.test".into(),
        concurrency: 32,
        warmup: Duration::from_secs(2),
        duration: Duration::from_secs(10),
        max: 1_000_000,
        threads: 1,
        tls_version: None,
        suite: None,
        pid: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        let num = |s: String| s.parse::<u64>().map_err(|e| format!("{flag}: {e}"));
        let secs = |s: String| {
            s.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v >= 0.0)
                .map(Duration::from_secs_f64)
                .ok_or_else(|| format!("{flag}: not a number of seconds: {s:?}"))
        };
        match flag.as_str() {
            "--addr" => a.addr = val()?,
            "--certs" => a.certs = PathBuf::from(val()?),
            "--server-name" => a.server_name = val()?,
            "--concurrency" => a.concurrency = num(val()?)?.max(1) as usize,
            "--warmup" => a.warmup = secs(val()?)?,
            "--duration" => a.duration = secs(val()?)?,
            "--max" => a.max = num(val()?)?,
            "--threads" => a.threads = num(val()?)?.max(1) as usize,
            "--tls-version" => a.tls_version = Some(val()?),
            "--suite" => a.suite = Some(val()?),
            "--pid" => a.pid = Some(num(val()?)? as u32),
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    if a.addr.is_empty() || a.certs.as_os_str().is_empty() {
        return Err(USAGE.into());
    }
    if a.duration.is_zero() {
        return Err("--duration must be more than 0".into());
    }
    Ok(a)
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let data = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    rustls_pemfile::certs(&mut &data[..])
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: {e}", path.display()))
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let data = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    rustls_pemfile::private_key(&mut &data[..])
        .map_err(|e| format!("{}: {e}", path.display()))?
        .ok_or_else(|| format!("{}: no private key", path.display()))
}

/// The client side of Microsoft-style mutual TLS, without resumption.
fn client_config(
    certs: &Path,
    version: Option<&str>,
    suite: Option<&str>,
) -> Result<ClientConfig, String> {
    let mut roots = RootCertStore::empty();
    for c in read_certs(&certs.join("ca.pem"))? {
        roots.add(c).map_err(|e| format!("ca.pem: {e}"))?;
    }
    let chain = read_certs(&certs.join("client.pem"))?;
    let key = read_key(&certs.join("client.key"))?;
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    // The groups sbc accepts by default, in its order: no post-quantum hybrid
    // key share for the client to compute and the server to ignore.
    provider.kx_groups = vec![
        rustls::crypto::aws_lc_rs::kx_group::X25519,
        rustls::crypto::aws_lc_rs::kx_group::SECP256R1,
        rustls::crypto::aws_lc_rs::kx_group::SECP384R1,
    ];
    if let Some(name) = suite {
        provider
            .cipher_suites
            .retain(|s| format!("{:?}", s.suite()).eq_ignore_ascii_case(name));
        if provider.cipher_suites.is_empty() {
            return Err(format!("--suite {name:?}: unknown cipher suite"));
        }
    }
    let versions: &[&'static rustls::SupportedProtocolVersion] = match version {
        None | Some("1.3") => &[&rustls::version::TLS13],
        Some("1.2") => &[&rustls::version::TLS12],
        Some(other) => return Err(format!("--tls-version {other:?}: use 1.2 or 1.3")),
    };
    let mut cfg = ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(versions)
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(|e| format!("client certificate: {e}"))?;
    // Every connection must be a full handshake: no session cache, no tickets.
    cfg.resumption = Resumption::disabled();
    cfg.enable_early_data = false;
    Ok(cfg)
}

/// utime+stime of a process (all its threads), in seconds.
fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) in parentheses:
    // state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / CLOCK_TICKS_PER_S)
}

#[derive(Debug, Default)]
struct Stats {
    started: AtomicU64,
    completed: AtomicU64,
    failed: AtomicU64,
    /// Set once the measured window has begun: latencies are recorded from then.
    measuring: AtomicBool,
    stop: AtomicBool,
    /// What the first connection negotiated (version, suite, group).
    negotiated: Mutex<Option<String>>,
    latencies_us: Mutex<Vec<u32>>,
    errors: Mutex<Vec<String>>,
}

#[derive(Debug)]
enum Fail {
    Connect(std::io::Error),
    Handshake(std::io::Error),
    Io(std::io::Error),
    Response(String),
    Timeout,
}

impl std::fmt::Display for Fail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fail::Connect(e) => write!(f, "connect: {e}"),
            Fail::Handshake(e) => write!(f, "TLS handshake: {e}"),
            Fail::Io(e) => write!(f, "I/O after the handshake: {e}"),
            Fail::Response(s) => write!(f, "unexpected response: {s}"),
            Fail::Timeout => write!(f, "no 200 within {CONN_TIMEOUT:?}"),
        }
    }
}

/// One connection: connect, full handshake, OPTIONS → 200, close.
async fn one(
    connector: &TlsConnector,
    addr: &str,
    name: &ServerName<'static>,
    n: u64,
    st: &Stats,
) -> Result<(), Fail> {
    let tcp = TcpStream::connect(addr).await.map_err(Fail::Connect)?;
    tcp.set_nodelay(true).map_err(Fail::Connect)?;
    let local = tcp.local_addr().map_err(Fail::Connect)?;
    let mut tls = connector
        .connect(name.clone(), tcp)
        .await
        .map_err(Fail::Handshake)?;
    if n == 0 {
        let c = tls.get_ref().1;
        let what = format!(
            "{}, {}, {}",
            c.protocol_version()
                .map_or("?".into(), |v| format!("{v:?}")),
            c.negotiated_cipher_suite()
                .map_or("?".into(), |s| format!("{:?}", s.suite())),
            c.negotiated_key_exchange_group()
                .map_or("?".into(), |g| format!("{:?}", g.name())),
        );
        *st.negotiated.lock().unwrap_or_else(|p| p.into_inner()) = Some(what);
    }
    let req = format!(
        "OPTIONS sip:ping@{addr};transport=tls SIP/2.0\r\n\
         Via: SIP/2.0/TLS {local};branch=z9hG4bK-hs{n};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:bench@carrier.example.test>;tag=hs{n}\r\n\
         To: <sip:ping@sbc.example.test>\r\n\
         Call-ID: hs{n}-{local}@bench\r\n\
         CSeq: 1 OPTIONS\r\n\
         Content-Length: 0\r\n\r\n"
    );
    tls.write_all(req.as_bytes()).await.map_err(Fail::Io)?;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    // The 200 has no body (Content-Length: 0): the end of its headers ends it.
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let k = tls.read(&mut chunk).await.map_err(Fail::Io)?;
        if k == 0 {
            return Err(Fail::Response("connection closed before a response".into()));
        }
        buf.extend_from_slice(&chunk[..k]);
        if buf.len() > 65_536 {
            return Err(Fail::Response("response too large".into()));
        }
    }
    if !buf.starts_with(b"SIP/2.0 200 ") {
        let line = buf.split(|&b| b == b'\r').next().unwrap_or_default();
        return Err(Fail::Response(String::from_utf8_lossy(line).into_owned()));
    }
    // close_notify, then FIN; the client closes first, so TIME_WAIT stays here.
    let _ = tls.shutdown().await;
    Ok(())
}

async fn worker(
    connector: TlsConnector,
    addr: Arc<str>,
    name: ServerName<'static>,
    st: Arc<Stats>,
    max: u64,
) {
    let mut lat = Vec::new();
    while !st.stop.load(Relaxed) {
        let n = st.started.fetch_add(1, Relaxed);
        if n >= max {
            break;
        }
        let t = Instant::now();
        let measuring = st.measuring.load(Relaxed);
        match tokio::time::timeout(CONN_TIMEOUT, one(&connector, &addr, &name, n, &st)).await {
            Ok(Ok(())) => {
                st.completed.fetch_add(1, Relaxed);
                if measuring {
                    lat.push(t.elapsed().as_micros().min(u32::MAX as u128) as u32);
                }
            }
            r => {
                st.failed.fetch_add(1, Relaxed);
                let e = match r {
                    Ok(Err(e)) => e,
                    _ => Fail::Timeout,
                };
                let mut errs = st.errors.lock().unwrap_or_else(|p| p.into_inner());
                if errs.len() < 5 {
                    errs.push(e.to_string());
                }
            }
        }
    }
    st.latencies_us
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .extend(lat);
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    f64::from(sorted[i]) / 1000.0
}

async fn run(a: Args) -> Result<(), String> {
    let cfg = client_config(&a.certs, a.tls_version.as_deref(), a.suite.as_deref())?;
    let connector = TlsConnector::from(Arc::new(cfg));
    let name = ServerName::try_from(a.server_name.clone())
        .map_err(|e| format!("--server-name {:?}: {e}", a.server_name))?;
    let addr: Arc<str> = a.addr.clone().into();
    let pid = a.pid.map(|p| p.to_string());
    if let Some(p) = &pid {
        cpu_seconds(p).ok_or_else(|| format!("cannot read /proc/{p}/stat"))?;
    }

    let st = Arc::new(Stats::default());
    let tasks: Vec<_> = (0..a.concurrency)
        .map(|_| {
            tokio::spawn(worker(
                connector.clone(),
                addr.clone(),
                name.clone(),
                st.clone(),
                a.max,
            ))
        })
        .collect();

    tokio::time::sleep(a.warmup).await;
    let c0 = st.completed.load(Relaxed);
    let f0 = st.failed.load(Relaxed);
    let s0 = pid.as_deref().and_then(cpu_seconds);
    let me0 = cpu_seconds("self");
    let t0 = Instant::now();
    st.measuring.store(true, Relaxed);

    // The window ends after --duration, or earlier once --max connections are done.
    let deadline = t0 + a.duration;
    while Instant::now() < deadline && st.completed.load(Relaxed) + st.failed.load(Relaxed) < a.max
    {
        tokio::time::sleep(Duration::from_millis(20).min(deadline - Instant::now())).await;
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let c1 = st.completed.load(Relaxed);
    let f1 = st.failed.load(Relaxed);
    let s1 = pid.as_deref().and_then(cpu_seconds);
    let me1 = cpu_seconds("self");
    st.measuring.store(false, Relaxed);
    st.stop.store(true, Relaxed);
    for t in tasks {
        let _ = t.await;
    }

    let done = c1 - c0;
    let failed = f1 - f0;
    let rate = done as f64 / elapsed;
    let per = |cpu: Option<f64>| {
        cpu.filter(|_| done > 0)
            .map_or(f64::NAN, |c| c * 1e6 / done as f64)
    };
    let server_cpu = s0.zip(s1).map(|(a, b)| b - a);
    let client_cpu = me0.zip(me1).map(|(a, b)| b - a);
    let mut lat = std::mem::take(&mut *st.latencies_us.lock().unwrap_or_else(|p| p.into_inner()));
    lat.sort_unstable();
    let (p50, p99) = (percentile(&lat, 0.5), percentile(&lat, 0.99));

    println!(
        "tls_handshakes: {} concurrency {} threads {} warmup {:.1}s window {:.2}s",
        a.addr,
        a.concurrency,
        a.threads,
        a.warmup.as_secs_f64(),
        elapsed
    );
    if let Some(n) = st
        .negotiated
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
    {
        println!("  negotiated: {n}");
    }
    println!("  completed handshakes (OPTIONS answered 200): {done}");
    println!("  failed connections:                          {failed}");
    println!("  handshakes/s:                                {rate:.0}");
    println!("  connection time p50 / p99:                   {p50:.2} / {p99:.2} ms");
    if let Some(c) = server_cpu {
        println!(
            "  server CPU: {c:.2} s = {:.0}% of one CPU, {:.0} µs per handshake",
            100.0 * c / elapsed,
            per(server_cpu)
        );
    }
    if let Some(c) = client_cpu {
        println!(
            "  load tool CPU: {c:.2} s = {:.0}% of one CPU, {:.0} µs per handshake",
            100.0 * c / elapsed,
            per(client_cpu)
        );
    }
    for e in st.errors.lock().unwrap_or_else(|p| p.into_inner()).iter() {
        println!("  error: {e}");
    }
    println!(
        "result completed={done} failed={failed} window_s={elapsed:.3} rate={rate:.1} \
         server_cpu_s={:.2} server_us_per_hs={:.1} client_cpu_s={:.2} client_us_per_hs={:.1} \
         p50_ms={p50:.3} p99_ms={p99:.3}",
        server_cpu.unwrap_or(f64::NAN),
        per(server_cpu),
        client_cpu.unwrap_or(f64::NAN),
        per(client_cpu),
    );
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tls_handshakes: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tls_handshakes: {e}");
            ExitCode::FAILURE
        }
    }
}
