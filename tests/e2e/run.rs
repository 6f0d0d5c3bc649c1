//! `sbc run` against real peers: SIPp (UDP, TCP, and TLS with client
//! certificates through stunnel), openssl s_client, the RFC 4475 and PROTOS
//! corpora as datagrams; signals; leaks.

use std::io::Write;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{corpora, run};
use crate::daemon::{counter, default_config, proc_usage, Daemon, TempDir};

fn scenario(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/e2e/scenarios")
        .join(name)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs SIPp (`sip-tester`) with the OPTIONS scenario; returns (exit ok, successful calls, output).
fn sipp_options(
    dir: &Path,
    transport: &str,
    target: SocketAddr,
    calls: u32,
) -> (bool, u32, String) {
    let out = Command::new("sipp")
        .current_dir(dir)
        .arg("-sf")
        .arg(scenario("options.xml"))
        .args([
            "-t",
            transport,
            "-i",
            "127.0.0.1",
            "-p",
            &free_port().to_string(),
        ])
        .args([
            "-m",
            &calls.to_string(),
            "-r",
            "100",
            "-nostdin",
            "-timeout",
            "30",
            "-timeout_error",
        ])
        .arg(target.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("sipp (Debian sip-tester) must be installed: scripts/test installs it");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let ok = text
        .lines()
        .find(|l| l.contains("Successful call"))
        .and_then(|l| l.split('|').nth(2))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    (out.status.success(), ok, text)
}

fn stunnel(
    dir: &Path,
    certs: &Path,
    client_cert: Option<&str>,
    target: SocketAddr,
) -> (std::process::Child, SocketAddr) {
    let port = free_port();
    let c = certs.display();
    let mut conf = format!(
        "foreground = yes\npid =\n[sip]\nclient = yes\naccept = 127.0.0.1:{port}\nconnect = {target}\n\
         CAfile = {c}/ca.pem\nverifyChain = yes\ncheckHost = sbc.example.test\nsni = sbc.example.test\n"
    );
    if let Some(name) = client_cert {
        conf += &format!("cert = {c}/{name}.pem\nkey = {c}/{name}.key\n");
    }
    let path = dir.join(format!("stunnel-{port}.conf"));
    std::fs::write(&path, conf).unwrap();
    let child = Command::new("stunnel")
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("stunnel (Debian stunnel4) must be installed: scripts/test installs it");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "stunnel did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    (child, addr)
}

#[test]
fn sipp_options_over_udp_tcp_and_mutual_tls() {
    let d = Daemon::start("sipp", |c| default_config(c, ""));
    let l = d.listeners.clone();
    let work = TempDir::new("sipp-work");
    let (ok, n, text) = sipp_options(&work.0, "u1", l.udp.unwrap(), 50);
    assert!(ok && n == 50, "UDP: {n} of 50\n{text}");
    let (ok, n, text) = sipp_options(&work.0, "t1", l.tcp.unwrap(), 50);
    assert!(ok && n == 50, "TCP: {n} of 50\n{text}");
    // Debian's SIPp has no TLS: stunnel (client mode) carries SIPp's TCP over
    // TLS, presenting the client certificate and checking the SBC's.
    let (mut tunnel, via) = stunnel(&work.0, &d.certs(), Some("client"), l.tls.unwrap());
    let (ok, n, text) = sipp_options(&work.0, "t1", via, 50);
    let _ = tunnel.kill();
    let _ = tunnel.wait();
    assert!(ok && n == 50, "TLS: {n} of 50\n{text}");
    let (code, err) = d.stop();
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(counter(&err, "options_answered"), Some(150), "{err}");
}

/// `openssl s_client` sends one OPTIONS over TLS; returns what it printed.
fn openssl_options(target: SocketAddr, certs: &Path, client: Option<(&Path, &str)>) -> String {
    let mut cmd = Command::new("timeout");
    cmd.args([
        "5",
        "openssl",
        "s_client",
        "-connect",
        &target.to_string(),
        "-servername",
        "sbc.example.test",
        "-quiet",
    ]);
    cmd.arg("-CAfile").arg(certs.join("ca.pem"));
    if let Some((dir, name)) = client {
        cmd.arg("-cert").arg(dir.join(format!("{name}.pem")));
        cmd.arg("-key").arg(dir.join(format!("{name}.key")));
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl");
    let msg = "OPTIONS sip:sbc.example.test SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:5999;branch=z9hG4bKossl\r\n\
               From: <sip:o@example.test>;tag=1\r\nTo: <sip:sbc.example.test>\r\nCall-ID: ossl@127.0.0.1\r\n\
               CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n";
    let mut stdin = child.stdin.take().unwrap();
    let _ = stdin.write_all(msg.as_bytes());
    std::thread::sleep(Duration::from_millis(1500));
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn mutual_tls_refuses_clients_without_a_trusted_certificate() {
    let d = Daemon::start("mtls", |c| default_config(c, ""));
    let tls = d.listeners.tls.unwrap();
    let certs = d.certs();
    // Positive control: the trusted client certificate gets its 200.
    let good = openssl_options(tls, &certs, Some((&certs, "client")));
    assert!(good.contains("SIP/2.0 200 OK"), "trusted client: {good:?}");
    // No client certificate.
    let none = openssl_options(tls, &certs, None);
    assert!(!none.contains("SIP/2.0"), "no client certificate: {none:?}");
    // A certificate from a CA the SBC does not trust.
    let rogue = TempDir::new("rogue");
    crate::daemon::dev_certs(&rogue.0);
    let foreign = openssl_options(tls, &certs, Some((&rogue.0, "client")));
    assert!(
        !foreign.contains("SIP/2.0"),
        "foreign client certificate: {foreign:?}"
    );
    let (code, err) = d.stop();
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(counter(&err, "options_answered"), Some(1), "{err}");
}

fn udp_client() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    s
}

/// Every datagram received within the read timeout.
fn drain(s: &UdpSocket) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 65_536];
    while let Ok(n) = s.recv(&mut buf) {
        out.push(buf[..n].to_vec());
    }
    out
}

fn status(resp: &[u8]) -> u16 {
    std::str::from_utf8(&resp[8..11])
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[test]
fn rfc4475_datagrams_get_the_responses_their_verdicts_say() {
    let d = Daemon::start("rfc4475", |c| default_config(c, ""));
    let udp = d.listeners.udp.unwrap();
    let dir = corpora().join("rfc4475");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "sip"))
        .collect();
    names.sort();
    // What the verdict tool says, from the same binary.
    let args: Vec<String> = ["sip", "check"]
        .iter()
        .map(|s| (*s).to_owned())
        .chain(names.iter().map(|p| p.display().to_string()))
        .collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let verdicts: Vec<serde_json::Value> = String::from_utf8(run(&args).stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut failures = Vec::new();
    for (path, v) in names.iter().zip(&verdicts) {
        let s = udp_client();
        s.send_to(&std::fs::read(path).unwrap(), udp).unwrap();
        // Over UDP a final response is retransmitted until ACKed (Timer G):
        // repeats of the same status count once.
        let mut got: Vec<u16> = drain(&s).iter().map(|r| status(r)).collect();
        got.dedup();
        let want: Vec<u16> = match (
            v["verdict"].as_str().unwrap(),
            v["kind"].as_str(),
            v["method"].as_str(),
        ) {
            ("reply", _, _) => vec![v["status"].as_u64().unwrap() as u16],
            ("accept", Some("request"), Some("OPTIONS")) => vec![200],
            // No route in this configuration (a To tag: no such dialog).
            ("accept", Some("request"), Some("INVITE")) if got == [100, 481] => vec![100, 481],
            ("accept", Some("request"), Some("INVITE")) => vec![100, 404],
            ("accept", Some("request"), Some("ACK")) => vec![],
            // In-dialog methods without a dialog: 481; the rest: 501.
            ("accept", Some("request"), _) if got == [481] => vec![481],
            ("accept", Some("request"), _) => vec![501],
            _ => vec![],
        };
        if got != want {
            failures.push(format!(
                "{}: want {want:?} got {got:?} ({v})",
                path.display()
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    let (code, err) = d.stop();
    assert_eq!(code, Some(0), "{err}");
}

#[test]
fn retransmissions_get_the_identical_response_and_are_processed_once() {
    let d = Daemon::start("retrans", |c| default_config(c, ""));
    let udp = d.listeners.udp.unwrap();
    let s = udp_client();
    let options = b"OPTIONS sip:sbc.example.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bKretrans1\r\n\
From: <sip:o@example.test>;tag=77\r\nTo: <sip:sbc.example.test>\r\nCall-ID: retrans@127.0.0.1\r\n\
CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n";
    let mut answers = Vec::new();
    for _ in 0..3 {
        s.send_to(options, udp).unwrap();
        answers.extend(drain(&s));
    }
    assert_eq!(answers.len(), 3, "one answer per retransmission");
    assert!(
        answers.iter().all(|a| a == &answers[0]),
        "identical stored response"
    );
    assert_eq!(status(&answers[0]), 200);
    // A bad request's retransmission gets the identical (stateless) answer too.
    let bad = std::fs::read(corpora().join("rfc4475/badvers.sip")).unwrap();
    s.send_to(&bad, udp).unwrap();
    s.send_to(&bad, udp).unwrap();
    let b = drain(&s);
    assert_eq!(b.len(), 2);
    assert_eq!(b[0], b[1]);
    assert_eq!(status(&b[0]), 505);
    let (code, err) = d.stop();
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(counter(&err, "received"), Some(5), "{err}");
    assert_eq!(
        counter(&err, "options_answered"),
        Some(1),
        "processed once: {err}"
    );
}

fn options_answered(udp: SocketAddr, n: u32) -> bool {
    let s = udp_client();
    let msg = format!(
        "OPTIONS sip:sbc.example.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bKalive{n}\r\n\
         From: <sip:o@example.test>;tag=1\r\nTo: <sip:sbc.example.test>\r\nCall-ID: alive{n}@127.0.0.1\r\n\
         CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    );
    s.send_to(msg.as_bytes(), udp).unwrap();
    drain(&s).iter().any(|r| status(r) == 200)
}

/// Sends every file as a datagram. Every 100 datagrams an OPTIONS probe must
/// be answered before sending on: the daemon handles datagrams in order, so
/// its backlog (and the memory it holds) stays bounded and comparable
/// between rounds.
fn send_protos(udp: SocketAddr, files: &[PathBuf], round: u32) {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut buf = vec![0u8; 65_536];
    for (i, f) in files.iter().enumerate() {
        let data = std::fs::read(f).unwrap();
        // Datagrams over 64 KiB cannot be sent at all; the daemon never sees them.
        let _ = s.send_to(&data, udp);
        // Answers (and their Timer G retransmissions) are read as they come,
        // so that the probe's answer is not lost to a full receive buffer.
        s.set_nonblocking(true).unwrap();
        while s.recv(&mut buf).is_ok() {}
        s.set_nonblocking(false).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        if i % 100 == 99 {
            let probe = format!(
                "OPTIONS sip:sbc.example.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bKprobe{round}x{i}\r\n\
                 From: <sip:o@example.test>;tag=1\r\nTo: <sip:sbc.example.test>\r\nCall-ID: probe{round}x{i}@127.0.0.1\r\n\
                 CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
            );
            let deadline = Instant::now() + Duration::from_secs(10);
            let marker = format!("probe{round}x{i}@");
            let mut next_send = Instant::now();
            loop {
                assert!(
                    Instant::now() < deadline,
                    "probe {i} of round {round} not answered"
                );
                if Instant::now() >= next_send {
                    // Retransmitted like a UAC would: same branch, same transaction.
                    s.send_to(probe.as_bytes(), udp).unwrap();
                    next_send = Instant::now() + Duration::from_millis(500);
                }
                match s.recv(&mut buf) {
                    Ok(n) if String::from_utf8_lossy(&buf[..n]).contains(&marker) => break,
                    _ => {}
                }
            }
        }
    }
    s.set_nonblocking(true).unwrap();
    while s.recv(&mut buf).is_ok() {}
}

#[test]
fn protos_c07_sip_flood_leaves_the_daemon_answering_and_leak_free() {
    // T1 = 20 ms: Timer H / J end every transaction within about 1.3 s.
    let d = Daemon::start("protos", |c| default_config(c, "t1_ms = 20\nt2_ms = 400"));
    let udp = d.listeners.udp.unwrap();
    let dir = corpora().join("fuzz/protos-c07-sip/rendered-invite");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 4527);
    assert!(options_answered(udp, 0));
    // Rounds 1 and 2 warm up allocator pools and tables; round 3 must not grow them.
    for round in 1..=2 {
        send_protos(udp, &files, round);
        std::thread::sleep(Duration::from_secs(3));
        assert!(
            options_answered(udp, round),
            "still answering after round {round}"
        );
    }
    let (rss1, fds1) = proc_usage(d.pid());
    send_protos(udp, &files, 3);
    std::thread::sleep(Duration::from_secs(3));
    assert!(options_answered(udp, 3), "still answering after round 3");
    let (rss2, fds2) = proc_usage(d.pid());
    assert_eq!(fds2, fds1, "file descriptors leaked");
    assert!(
        rss2 <= rss1 + rss1 / 10 + 2048,
        "memory grew from {rss1} kB to {rss2} kB"
    );
    // Let the liveness OPTIONS transactions end (Timer J = 64 T1) before stopping.
    std::thread::sleep(Duration::from_secs(2));
    let (code, err) = d.stop();
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(counter(&err, "transactions"), Some(0), "{err}");
    let received = counter(&err, "received").unwrap();
    assert!(
        received > 3 * 4400,
        "{received} datagrams reached the daemon"
    );
    eprintln!("PROTOS x3: rss {rss1} -> {rss2} kB, fds {fds1} -> {fds2}, received {received}");
}

#[test]
fn sigterm_drains_with_503_then_exits_zero() {
    // T1 = 100 ms: an INVITE answered 404 (no route here) over UDP keeps its
    // transaction for Timer H (64 T1 = 6.4 s), which the drain waits for.
    let d = Daemon::start("drain", |c| default_config(c, "t1_ms = 100"));
    let udp = d.listeners.udp.unwrap();
    let s = udp_client();
    let invite = std::fs::read(corpora().join("rfc4475/invut.sip")).unwrap();
    s.send_to(&invite, udp).unwrap();
    let mut got: Vec<u16> = drain(&s).iter().map(|r| status(r)).collect();
    got.dedup();
    assert_eq!(
        got,
        [100, 404],
        "404 retransmitted until ACKed (Timer G), never ACKed here"
    );
    let started = Instant::now();
    d.signal("TERM");
    std::thread::sleep(Duration::from_millis(300));
    let s = udp_client();
    let msg = b"OPTIONS sip:sbc.example.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bKdrain\r\n\
From: <sip:o@example.test>;tag=1\r\nTo: <sip:sbc.example.test>\r\nCall-ID: drain@127.0.0.1\r\n\
CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n";
    s.send_to(msg, udp).unwrap();
    let r = drain(&s);
    assert_eq!(r.len(), 1);
    assert_eq!(status(&r[0]), 503);
    assert!(String::from_utf8_lossy(&r[0]).contains("Retry-After:"));
    let (code, err) = d.stop();
    assert_eq!(code, Some(0), "{err}");
    assert!(
        started.elapsed() >= Duration::from_secs(5),
        "exited before the INVITE transaction ended"
    );
    assert_eq!(counter(&err, "refused_draining"), Some(1), "{err}");
    assert!(err.contains("drained; exiting pending_invites=0"), "{err}");
}

fn server_cert_fingerprint(tls: SocketAddr, certs: &Path) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "timeout 5 openssl s_client -connect {tls} -servername sbc.example.test -CAfile {ca} \
             -cert {c}/client.pem -key {c}/client.key </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256",
            ca = certs.join("ca.pem").display(),
            c = certs.display()
        ))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn sighup_reloads_the_certificate_for_new_handshakes() {
    let d = Daemon::start("reload", |c| default_config(c, ""));
    let tls = d.listeners.tls.unwrap();
    let before = server_cert_fingerprint(tls, &d.certs());
    assert!(before.contains("Fingerprint"), "{before:?}");
    // New PKI in place (new CA, SBC and client certificates), then SIGHUP.
    crate::daemon::dev_certs(&d.certs());
    d.signal("HUP");
    std::thread::sleep(Duration::from_millis(500));
    let after = server_cert_fingerprint(tls, &d.certs());
    assert!(
        after.contains("Fingerprint"),
        "new client certificate accepted after reload: {after:?}"
    );
    assert_ne!(before, after, "new handshakes see the new certificate");
    let (code, err) = d.stop();
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("reloaded"), "{err}");
}

#[test]
fn sbc_check_validates_configs_naming_file_line_and_field() {
    // The embedded default is valid with the development PKI in place (the
    // production samples name /etc/sbc certificates: the config unit test
    // `every_sample_config_passes_the_checks_of_sbc_check` covers them).
    let examples = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../sbc-config");
    let certs = TempDir::new("check-certs");
    let p = examples.join("demo.toml");
    // It names certificates relative to the working directory.
    let cwd = certs.0.join("demo");
    crate::daemon::dev_certs(&cwd.join("certs/dev"));
    let out = crate::common::sbc()
        .current_dir(&cwd)
        .args(["check", "--config"])
        .arg(&p)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}: {}",
        p.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = TempDir::new("check");
    let cases = [
        ("[sbc]\nfqdn = \"sbc.example.test\"\nport = 5060\n", ":3: ", "unknown field `port`"),
        ("[sbc]\nfqdn = \"127.0.0.1\"\n", ":2: sbc.fqdn: ", "fully qualified"),
        ("[sbc]\nfqdn = \"s.example.test\"\n[[listen]]\ntransport = \"udp\"\naddr = \"localhost\"\n", ":5: listen[0].addr: ", "IP:port"),
        (
            "[sbc]\nfqdn = \"s.example.test\"\n[[listen]]\ntransport = \"tls\"\naddr = \"127.0.0.1:0\"\ntls = \"t\"\n\
             [tls.t]\nidentities = [{ cert = \"/nonexistent.pem\", key = \"/nonexistent.key\" }]\n",
            ":8: tls.t.identities[0].cert: ",
            "no such file",
        ),
    ];
    for (i, (text, where_, what)) in cases.iter().enumerate() {
        let p = dir.0.join(format!("bad{i}.toml"));
        std::fs::write(&p, text).unwrap();
        let out = crate::common::sbc()
            .args(["check", "--config"])
            .arg(&p)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            err.contains(&format!("{}{where_}", p.display())),
            "case {i}: {err}"
        );
        assert!(err.contains(what), "case {i}: {err}");
    }
}
