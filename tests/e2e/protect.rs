//! Protection of the real `sbc run` against floods and scanners (issue 14),
//! with SIPp on loopback addresses of its own: a flooder on 127.0.0.2 sends
//! INVITEs far above any budget while the carrier on 127.0.0.3 places calls
//! to Teams (the Microsoft peer, SRTP checked by echo); a SIPVicious-style
//! sweep gets no answer at all.

use std::path::Path;
use std::time::Duration;

use crate::daemon::{proc_usage, Daemon, TempDir};
use crate::http::{http_addr, sample, until};
use crate::peers::*;

/// Carrier (only 127.0.0.3 and, for the scanner test, 127.0.0.6 and the
/// scanner's 127.0.0.5) → Teams.
fn config(c: &Path, p: &Ports) -> String {
    let head = sbc_head(c, "127.0.0.1", p.udp, p.tls);
    let teams = teams_trunk(p, "127.0.0.1/32", "");
    format!(
        r#"{head}
[http]
addr = "127.0.0.1:0"

[[trunk]]
name = "carrier"
kind = "carrier"
local_port = {udp}
peers = [{{ host = "127.0.0.3", port = {carrier}, addr = "127.0.0.3:{carrier}" }}]
acl = ["127.0.0.3/32", "127.0.0.5/32", "127.0.0.6/32"]
numbers = {{ inbound = [{{ match = "^0(\\d+)$", replace = "+49$1" }}] }}

{teams}

[[route]]
name = "carrier-to-teams"
from = ["carrier"]
to = ["teams"]

[[route]]
name = "teams-to-carrier"
from = ["teams"]
to = ["carrier"]

[drain]
max_wait_s = 10
"#,
        udp = p.udp,
        carrier = p.carrier,
    )
}

/// Legitimate calls, one every 2 s (the Microsoft peer answers them one at a time).
const LEGIT_CALLS: u32 = 10;

#[test]
fn an_invite_flood_from_one_source_is_banned_and_legitimate_calls_complete_with_media() {
    let p = Ports::new();
    let d = Daemon::start("flood", |c| config(c, &p));
    let http = http_addr(&d);
    let work = TempDir::new("flood-work");
    let (rss_before, fds_before) = proc_usage(d.pid());

    // Teams answers every legitimate call and checks 1 s of SRTP echo on each.
    let mut args = teams_args(&p, 0);
    args.extend(
        [
            "--expect-calls",
            &LEGIT_CALLS.to_string(),
            "--media-seconds",
            "1",
            "--linger",
            "5",
            "--timeout",
            "60",
        ]
        .map(String::from),
    );
    let peer = MsPeer::start(&work.0, &d.certs(), "teams", &strs(&args));

    // The flood: 400 INVITE/s for 20 s from 127.0.0.2 (the legitimate
    // carrier calls at 0.5/s: 800 times its rate, 80 times an untrusted
    // source's INVITE budget).
    let flood = sipp(
        "u1",
        "127.0.0.2",
        &work.0,
        "flood-invite.xml",
        free_udp(),
        &["-r", "400", "-m", "8000", "-l", "8000"],
        d.listeners.udp,
    );
    std::thread::sleep(Duration::from_millis(500));
    let legit = sipp(
        "u1",
        "127.0.0.3",
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
            "1500",
            "-r",
            "1",
            "-rp",
            "2000",
            "-m",
            &LEGIT_CALLS.to_string(),
        ],
        d.listeners.udp,
    );
    let (lok, ltext) = sipp_result(legit);
    let _ = sipp_result(flood);
    let (pok, v, ptext) = peer.finish();
    let (rss_after, _) = proc_usage(d.pid());
    let (_, metrics) = until(http, "/metrics", |_, m| {
        sample(m, "sbc_calls_answered_total").is_some_and(|v| v >= f64::from(LEGIT_CALLS))
            && sample(m, "sbc_media_sessions") == Some(0.0)
            && sample(m, "sbc_calls_active") == Some(0.0)
    });
    // Every call over, its relay ports closed: the descriptors are back
    // where they were (the Teams peer's connection may stay open).
    // (A connection the peer closed may take a moment to be reaped.)
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut fds_after = proc_usage(d.pid()).1;
    while fds_after > fds_before + 1 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        fds_after = proc_usage(d.pid()).1;
    }
    let fd_list: Vec<String> = std::fs::read_dir(format!("/proc/{}/fd", d.pid()))
        .map(|r| {
            r.filter_map(Result::ok)
                .filter_map(|e| std::fs::read_link(e.path()).ok())
                .map(|l| l.display().to_string())
                .collect()
        })
        .unwrap_or_default();
    let cdr = cdrs(&d, LEGIT_CALLS as usize);
    let (code, err) = d.stop();
    let tail: String = err
        .chars()
        .rev()
        .take(4000)
        .collect::<String>()
        .chars()
        .rev()
        .collect();
    assert!(lok, "legitimate carrier calls:\n{ltext}\n{tail}");
    assert!(pok, "Microsoft peer:\n{ptext}\n{tail}");
    let media = media_matched(&v);
    assert_eq!(media.len(), LEGIT_CALLS as usize, "{ptext}");
    assert!(
        media.iter().all(|&m| m >= 45),
        "every legitimate call's SRTP came back (50 per call): {media:?}"
    );
    let answered = cdr.iter().filter(|c| c["status"] == 200).count();
    assert_eq!(answered, LEGIT_CALLS as usize, "{cdr:?}");
    // The flooder was banned, and the ban shows in the metrics.
    let bans = sample(&metrics, "sbc_protect_bans_total").unwrap_or(0.0);
    let banned = sample(&metrics, "sbc_protect_requests_total{verdict=\"banned\"}").unwrap_or(0.0);
    assert!(bans >= 1.0, "sbc_protect_bans_total {bans}:\n{metrics}");
    assert!(
        banned >= 7000.0,
        "most of the flood was dropped unread: {banned}\n{metrics}"
    );
    // Calls that reached the B2BUA from the flooder: its first budget only.
    let unclassified = sample(
        &metrics,
        "sbc_requests_refused_total{reason=\"unclassified\"}",
    )
    .unwrap_or(0.0);
    assert!(
        unclassified <= 20.0,
        "flood INVITEs the call core saw: {unclassified}"
    );
    assert!(
        fds_after <= fds_before + 1,
        "descriptors: {fds_before} before, {fds_after} after every call ended: {fd_list:?}"
    );
    assert_eq!(sample(&metrics, "sbc_calls_active"), Some(0.0));
    // Memory stays bounded (a table entry per source, not per request).
    let grown = rss_after.saturating_sub(rss_before);
    assert!(
        grown < 64 * 1024,
        "RSS grew {} MiB during the flood",
        grown / 1024
    );
    assert_eq!(code, Some(0), "{tail}");
}

#[test]
fn a_sipvicious_style_options_sweep_gets_no_answer() {
    let p = Ports::new();
    let d = Daemon::start("scanner", |c| config(c, &p));
    let http = http_addr(&d);
    let work = TempDir::new("scanner-work");
    // From inside the carrier's ACL: without the signature it would get 200.
    let sweep = sipp(
        "u1",
        "127.0.0.5",
        &work.0,
        "scanner-options.xml",
        free_udp(),
        &["-r", "20", "-m", "30", "-l", "30"],
        d.listeners.udp,
    );
    let (sok, stext) = sipp_result(sweep);
    // An OPTIONS without the signature, from the same ACL: answered.
    let normal = sipp(
        "u1",
        "127.0.0.6",
        &work.0,
        "options.xml",
        free_udp(),
        &[],
        d.listeners.udp,
    );
    let (nok, ntext) = sipp_result(normal);
    let (_, metrics) = until(http, "/metrics", |_, m| {
        sample(m, "sbc_options_answered_total").is_some_and(|v| v >= 1.0)
    });
    let (code, err) = d.stop();
    assert!(sok, "the sweep got an answer:\n{stext}\n{err}");
    assert!(nok, "a normal OPTIONS is answered:\n{ntext}\n{err}");
    let scanners =
        sample(&metrics, "sbc_protect_requests_total{verdict=\"scanner\"}").unwrap_or(0.0);
    assert_eq!(scanners, 30.0, "{metrics}");
    let answered = sample(&metrics, "sbc_options_answered_total").unwrap_or(0.0);
    assert_eq!(
        answered, 1.0,
        "only the normal OPTIONS was answered: {metrics}"
    );
    assert_eq!(code, Some(0), "{err}");
}

/// Carrier → gateway, the carrier trunk rated at 5 calls/s.
fn overload_config(c: &Path, p: &Ports, gateway: u16) -> String {
    let head = sbc_head(c, "127.0.0.1", p.udp, p.tls);
    format!(
        r#"{head}
[[trunk]]
name = "carrier"
kind = "carrier"
local_port = {udp}
peers = [{{ host = "127.0.0.3", port = {carrier}, addr = "127.0.0.3:{carrier}" }}]
acl = ["127.0.0.3/32"]
numbers = {{ inbound = [{{ match = "^0(\\d+)$", replace = "+49$1" }}] }}
max_cps = 5

[[trunk]]
name = "gateway"
kind = "gateway"
local_port = {udp}
peers = [{{ host = "127.0.0.1", port = {gateway}, addr = "127.0.0.1:{gateway}" }}]

[[route]]
name = "carrier-to-gateway"
from = ["carrier"]
to = ["gateway"]

[drain]
max_wait_s = 10
"#,
        udp = p.udp,
        carrier = p.carrier,
    )
}

/// Twice the carrier trunk's rated call rate (10/s against `max_cps = 5`)
/// for 6 s: the excess is answered 503 with Retry-After at once, every
/// admitted call is answered and lasts its full 3 s (none is dropped in the
/// middle), and the admitted rate is the rated one.
#[test]
fn twice_the_rated_call_rate_gets_503_for_the_excess_and_admitted_calls_complete() {
    let p = Ports::new();
    let gateway = free_udp();
    let d = Daemon::start("overload", |c| overload_config(c, &p, gateway));
    let work = TempDir::new("overload-work");
    let gw = sipp(
        "u1",
        "127.0.0.1",
        &work.0,
        "carrier-uas.xml",
        gateway,
        &["-m", "60"],
        None,
    );
    std::thread::sleep(Duration::from_millis(300));
    let carrier = sipp(
        "u1",
        "127.0.0.3",
        &work.0,
        "carrier-uac-or-503.xml",
        p.carrier,
        &[
            "-s",
            "0301234567",
            "-key",
            "caller",
            "0401112222",
            "-d",
            "3000",
            "-r",
            "10",
            "-m",
            "60",
        ],
        d.listeners.udp,
    );
    let (cok, ctext) = sipp_result(carrier);
    std::thread::sleep(Duration::from_millis(500));
    let cdr = d.cdrs();
    let (code, err) = d.stop();
    let mut gw = gw;
    let _ = gw.kill();
    let _ = gw.wait();
    assert!(
        cok,
        "every carrier call got a 200 or a 503:\n{ctext}\n{err}"
    );
    let answered: Vec<_> = cdr.iter().filter(|c| c["status"] == 200).collect();
    // 6 s at 5/s plus the burst of 5: about 35 admitted of 60.
    assert!(
        (25..=40).contains(&answered.len()),
        "admitted {} of 60: {cdr:?}",
        answered.len()
    );
    for c in &answered {
        assert_eq!(c["ended_by"], "caller", "{c}");
        let ms = c["end_ms"].as_u64().unwrap_or(0) - c["answer_ms"].as_u64().unwrap_or(0);
        assert!(ms >= 2900, "an admitted call lasted its 3 s: {c}");
    }
    let refused = crate::daemon::counter(&err, "refused_cps").unwrap_or(0);
    assert_eq!(
        refused as usize + answered.len(),
        60,
        "every call was admitted or refused 503:\n{err}"
    );
    assert_eq!(code, Some(0), "{err}");
}
