//! The operations endpoint of the real `sbc run` (`[http]` on a loopback
//! port): `/metrics` passes `promtool check metrics` (Debian's
//! `prometheus` package) and counts a call SIPp places through the SBC to
//! a Teams peer; `/ready` turns 503 on SIGTERM while that call is still up.
//! The status page, loaded in headless Chromium (Debian's `chromium`),
//! shows a Teams peer whose port is closed as down and the call in
//! progress with its numbers masked.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::daemon::{Daemon, TempDir};
use crate::peers::*;

/// Carrier (UDP) → Teams (one proxy, TLS), the endpoint on a port of its own.
fn config(c: &Path, p: &Ports) -> String {
    config_with(c, p, "")
}

/// [`config`] with `teams_extra` in the Teams trunk (after its peers).
fn config_with(c: &Path, p: &Ports, teams_extra: &str) -> String {
    let head = sbc_head(c, "127.0.0.1", p.udp, p.tls);
    format!(
        r#"{head}
[http]
addr = "127.0.0.1:0"

[[trunk]]
name = "carrier"
kind = "carrier"
local_port = {udp}
peers = [{{ host = "127.0.0.1", port = {carrier}, addr = "127.0.0.1:{carrier}" }}]
acl = ["127.0.0.0/8"]
numbers = {{ inbound = [{{ match = "^0(\\d+)$", replace = "+49$1" }}] }}

[[trunk]]
name = "teams"
kind = "teams"
fqdn = "teams.sbc.example.test"
local_port = {tls}
tls = "teams"
peers = [{{ host = "sip.pstnhub.microsoft.com", addr = "127.0.0.1:{t1}" }}]
acl = ["127.0.0.0/8"]
invite_timeout_s = 3
{teams_extra}

[[route]]
name = "carrier-to-teams"
from = ["carrier"]
to = ["teams"]

[drain]
max_wait_s = 20
"#,
        udp = p.udp,
        tls = p.tls,
        carrier = p.carrier,
        t1 = p.teams[0],
    )
}

/// The endpoint's address, from the daemon's `http ADDR` line (10 s at most).
pub(crate) fn http_addr(d: &Daemon) -> SocketAddr {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(a) = d
            .stdout()
            .lines()
            .find_map(|l| l.strip_prefix("http "))
            .map(|a| a.parse().unwrap())
        {
            return a;
        }
        assert!(
            Instant::now() < deadline,
            "no `http ADDR` line:\n{}\n{}",
            d.stdout(),
            d.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One GET (5 s at most): status code and body.
pub(crate) fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut c = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        c,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut r = String::new();
    c.read_to_string(&mut r).unwrap();
    let code = r.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = r
        .split_once("\r\n\r\n")
        .map(|x| x.1.to_owned())
        .unwrap_or_default();
    (code, body)
}

/// The value of the sample `name` (with its labels, as written) in `text`.
pub(crate) fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// The sum of the samples of family `name` whose labels contain `with`.
fn sum(text: &str, name: &str, with: &str) -> f64 {
    text.lines()
        .filter_map(|l| l.strip_prefix(name)?.strip_prefix('{'))
        .filter(|l| l.contains(with))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

/// Polls `path` (10 s at most) until `ok` holds for its body; the last one.
pub(crate) fn until(addr: SocketAddr, path: &str, ok: impl Fn(u16, &str) -> bool) -> (u16, String) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (code, body) = get(addr, path);
        if ok(code, &body) || Instant::now() > deadline {
            return (code, body);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `promtool check metrics` on `text`: (passed, its output).
fn promtool(text: &str) -> (bool, String) {
    let mut c = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian prometheus) must be installed: scripts/test installs it");
    c.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
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

#[test]
fn http_metrics_pass_promtool_count_a_call_and_ready_turns_503_on_drain() {
    let p = Ports::new();
    let d = Daemon::start("http-metrics", |c| config(c, &p));
    let addr = http_addr(&d);
    let work = TempDir::new("http-metrics-work");
    assert_eq!(
        until(addr, "/ready", |c, _| c == 200).0,
        200,
        "{}",
        d.stderr()
    );
    assert_eq!(get(addr, "/health"), (200, "ok\n".into()));
    let mut args = teams_args(&p, 0);
    args.extend(
        [
            "--media-seconds",
            "1",
            "--then",
            "wait-bye",
            "--timeout",
            "40",
        ]
        .map(String::from),
    );
    let peer = MsPeer::start(&work.0, &d.certs(), "teams", &strs(&args));
    let sipp = sipp_carrier(
        &work.0,
        "carrier-uac.xml",
        p.carrier,
        &[
            "-s",
            "0301234567",
            "-key",
            "caller",
            "0401112222",
            "-d",
            "8000",
        ],
        d.listeners.udp,
    );
    // The call is up.
    let (_, text) = until(addr, "/metrics", |_, b| {
        sample(b, "sbc_calls_active") == Some(1.0)
            && sample(b, "sbc_calls_answered_total") == Some(1.0)
    });
    assert_eq!(
        sample(&text, "sbc_calls_active"),
        Some(1.0),
        "{text}\n{}",
        d.stderr()
    );
    assert_eq!(sample(&text, "sbc_calls_total"), Some(1.0), "{text}");
    assert_eq!(
        sample(&text, "sbc_calls_answered_total"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(sample(&text, "sbc_media_sessions"), Some(1.0), "{text}");
    assert!(
        sample(&text, "sbc_sip_messages_received_total").unwrap() >= 2.0,
        "{text}"
    );
    assert!(
        sample(&text, "sbc_sip_messages_sent_total").unwrap() >= 2.0,
        "{text}"
    );
    assert_eq!(sample(&text, "sbc_draining"), Some(0.0), "{text}");
    let (ok, out) = promtool(&text);
    assert!(ok, "promtool check metrics:\n{out}\n--- metrics\n{text}");
    // By method and code: the INVITE in from the carrier and out to Teams,
    // the 200s both ways.
    for (sample_name, min) in [
        (
            r#"sbc_sip_requests_total{direction="in",method="INVITE"}"#,
            1.0,
        ),
        (
            r#"sbc_sip_requests_total{direction="out",method="INVITE"}"#,
            1.0,
        ),
        (
            r#"sbc_sip_requests_total{direction="in",method="ACK"}"#,
            1.0,
        ),
        (r#"sbc_sip_responses_total{direction="in",code="200"}"#, 1.0),
        (
            r#"sbc_sip_responses_total{direction="out",code="200"}"#,
            1.0,
        ),
        (
            r#"sbc_sip_responses_total{direction="out",code="100"}"#,
            1.0,
        ),
    ] {
        let v = sample(&text, sample_name);
        assert!(v.is_some_and(|v| v >= min), "{sample_name} {v:?}:\n{text}");
    }
    // The certificate the Teams trunk presents, valid for a while yet.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let expiry = sum(
        &text,
        "sbc_tls_certificate_expiry_timestamp_seconds",
        "profile=",
    );
    assert!(expiry > now, "{text}");
    // Media: the Teams peer sends SRTP for a second, the carrier RTP.
    let (_, text) = until(addr, "/metrics", |_, b| {
        sample(b, "sbc_media_packets_total").unwrap_or(0.0) >= 20.0
    });
    let packets = sample(&text, "sbc_media_packets_total").unwrap_or(0.0);
    assert!(packets >= 20.0, "{text}\n{}", d.stderr());
    assert!(
        sample(&text, "sbc_media_bytes_total").unwrap_or(0.0) > packets * 12.0,
        "{text}"
    );
    assert_eq!(
        sample(&text, "sbc_srtp_auth_failures_total"),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        sum(&text, "sbc_relay_worker_packets_total", "worker="),
        packets,
        "{text}"
    );
    assert_eq!(
        sum(&text, "sbc_relay_worker_sessions", "worker="),
        1.0,
        "{text}"
    );
    // The Teams peer was not up when the SBC pinged it (it started later;
    // the next OPTIONS is a minute away): no round trip yet. The status
    // page test pings every second and sees one.
    assert_eq!(
        sum(&text, "sbc_peer_options_rtt_seconds", "trunk="),
        0.0,
        "{text}"
    );
    let (ok, out) = promtool(&text);
    assert!(ok, "promtool check metrics:\n{out}\n--- metrics\n{text}");
    assert_eq!(get(addr, "/ready").0, 200);
    // SIGTERM: draining; the call goes on, /ready says 503, /health 200.
    d.signal("TERM");
    let (code, body) = until(addr, "/ready", |c, _| c == 503);
    assert_eq!((code, body.as_str()), (503, "draining\n"), "{}", d.stderr());
    assert_eq!(get(addr, "/health").0, 200);
    let (_, text) = get(addr, "/metrics");
    assert_eq!(sample(&text, "sbc_draining"), Some(1.0), "{text}");
    assert_eq!(
        sample(&text, "sbc_calls_active"),
        Some(1.0),
        "the call is still up: {text}"
    );
    let (ok, out) = promtool(&text);
    assert!(ok, "promtool check metrics while draining:\n{out}\n{text}");
    let (sok, stext) = sipp_result(sipp);
    let (pok, _, ptext) = peer.finish();
    let cdr = cdrs(&d, 1);
    let (code, err) = d.stop();
    assert!(sok, "SIPp carrier:\n{stext}\n{err}");
    assert!(pok, "Microsoft peer:\n{ptext}\n{err}");
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(cdr.len(), 1, "{err}");
    assert_eq!(cdr[0]["status"], 200);
    // The log line is printed from the same table.
    assert_eq!(crate::daemon::counter(&err, "calls"), Some(1), "{err}");
    assert_eq!(crate::daemon::counter(&err, "cdrs"), Some(1), "{err}");
    assert!(
        crate::daemon::counter(&err, "media_packets").unwrap_or(0) >= 20,
        "{err}"
    );
    // Numbers masked in the log (`new call`); whole in the CDR.
    assert!(err.contains("called=••••••••4567"), "{err}");
    for whole in ["301234567", "401112222"] {
        assert!(!err.contains(whole), "{whole} logged whole:\n{err}");
    }
    assert_eq!(cdr[0]["called"], "+49301234567");
}

/// Headless Chromium on `url` (60 s at most): the DOM after its scripts
/// ran for a few seconds, and a screenshot at `png`.
fn chromium(work: &Path, url: &str, png: &Path) -> String {
    let run = |extra: &[String]| {
        let out = Command::new("timeout")
            .arg("60")
            .arg("chromium")
            .args([
                "--headless",
                "--disable-gpu",
                "--no-sandbox",
                "--no-first-run",
                "--disable-extensions",
                "--virtual-time-budget=4000",
                "--window-size=1400,1000",
            ])
            .arg(format!(
                "--user-data-dir={}",
                work.join("chromium").display()
            ))
            .args(extra)
            .arg(url)
            .env("HOME", work)
            .output()
            .expect("chromium (Debian chromium) must be installed: scripts/test installs it");
        assert!(
            out.status.success(),
            "chromium failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let dom = run(&["--dump-dom".to_owned()]);
    run(&[format!("--screenshot={}", png.display())]);
    dom
}

#[test]
fn http_status_page_shows_a_down_teams_peer_and_the_call_in_progress() {
    let p = Ports::new();
    // A second Teams proxy on a port nobody listens on: its OPTIONS fail.
    let d = Daemon::start("http-page", |c| {
        let text = config_with(
            c,
            &p,
            "options = { interval_s = 1, timeout_s = 1, up_after = 1, down_after = 1 }",
        );
        let one = format!(
            "peers = [{{ host = \"sip.pstnhub.microsoft.com\", addr = \"127.0.0.1:{}\" }}]",
            p.teams[0]
        );
        assert!(text.contains(&one));
        text.replacen(
            &one,
            &format!(
                "peers = [{{ host = \"sip.pstnhub.microsoft.com\", addr = \"127.0.0.1:{}\" }}, \
                 {{ host = \"sip2.pstnhub.microsoft.com\", addr = \"127.0.0.1:{}\" }}]",
                p.teams[0], p.teams[1]
            ),
            1,
        )
    });
    let addr = http_addr(&d);
    let work = TempDir::new("http-page-work");
    let mut args = teams_args(&p, 0);
    args.extend(
        [
            "--media-seconds",
            "1",
            "--then",
            "wait-bye",
            "--timeout",
            "40",
        ]
        .map(String::from),
    );
    let peer = MsPeer::start(&work.0, &d.certs(), "teams", &strs(&args));
    let sipp = sipp_carrier(
        &work.0,
        "carrier-uac.xml",
        p.carrier,
        &[
            "-s",
            "0301234567",
            "-key",
            "caller",
            "0401112222",
            "-d",
            "15000",
        ],
        d.listeners.udp,
    );
    // The JSON first: the peer is down and the call answered.
    let (_, body) = until(addr, "/status.json", |_, b| {
        let v: serde_json::Value = serde_json::from_str(b).unwrap_or_default();
        let down = v["peers"].as_array().is_some_and(|ps| {
            ps.iter()
                .any(|x| x["host"] == "sip2.pstnhub.microsoft.com" && x["state"] == "down")
        });
        // sip answers the pings (every second) once its peer runs.
        let rtt = v["peers"].as_array().is_some_and(|ps| {
            ps.iter()
                .any(|x| x["host"] == "sip.pstnhub.microsoft.com" && x["rtt_ms"].is_number())
        });
        down && rtt && v["calls"][0]["state"] == "answered"
    });
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let sip2 = v["peers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["host"] == "sip2.pstnhub.microsoft.com")
        .unwrap();
    assert_eq!(sip2["state"], "down", "{body}\n{}", d.stderr());
    // Its round trip is shown.
    let sip = v["peers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["host"] == "sip.pstnhub.microsoft.com")
        .unwrap();
    let rtt = sip["rtt_ms"].as_f64().unwrap_or(-1.0);
    assert!(rtt > 0.0 && rtt < 5000.0, "{body}");
    assert!(sip2["rtt_ms"].is_null(), "{body}");
    // The certificate the Teams trunk presents, with its days left.
    let certs = v["certificates"].as_array().unwrap();
    let teams = certs.iter().find(|c| c["trunk"] == "teams");
    assert!(
        teams.is_some_and(|c| c["days_left"].as_i64().unwrap_or(-1) > 30),
        "{body}"
    );
    assert_eq!(v["calls"][0]["state"], "answered", "{body}\n{}", d.stderr());
    assert_eq!(v["calls"][0]["called"], "••••••••4567", "{body}");
    assert!(
        !v["log"].as_array().unwrap().is_empty(),
        "health change logged: {body}"
    );
    // The page, in a browser.
    let png = work.0.join("status.png");
    let dom = chromium(&work.0, &format!("http://{addr}/"), &png);
    std::fs::write(work.0.join("status.html"), &dom).unwrap();
    assert!(
        dom.contains(
            r#"<tr class="peer down" data-trunk="teams" data-peer="sip2.pstnhub.microsoft.com">"#
        ),
        "peer not shown down:\n{dom}"
    );
    let row = dom
        .split("<tr class=\"call answered\"")
        .nth(1)
        .unwrap_or_else(|| panic!("no answered call row:\n{dom}"));
    let row = &row[..row.find("</tr>").unwrap()];
    assert!(row.contains("<td>carrier</td><td>teams</td>"), "{row}");
    assert!(row.contains("••••••••4567"), "called number masked: {row}");
    assert!(
        row.contains("sip.pstnhub.microsoft.com answered"),
        "path: {row}"
    );
    assert!(
        !dom.contains("301234567"),
        "a whole number on the page:\n{dom}"
    );
    assert!(
        dom.contains("sip2.pstnhub.microsoft.com down"),
        "failover log: {dom}"
    );
    assert!(
        dom.contains(r#"<tr class="cert ok" data-trunk="teams""#),
        "certificate of the Teams trunk:\n{dom}"
    );
    assert!(dom.contains(" ms</td>"), "OPTIONS round trip shown:\n{dom}");
    let shot = std::fs::metadata(&png).map(|m| m.len()).unwrap_or(0);
    assert!(
        shot > 10_000,
        "screenshot {} is {shot} bytes",
        png.display()
    );
    let (code, err) = d.stop();
    let (sok, stext) = sipp_result(sipp);
    let _ = peer.finish();
    assert!(sok, "SIPp carrier:\n{stext}\n{err}");
    assert_eq!(code, Some(0), "{err}");
}
