//! Carrier interop on the real `sbc run`: reliable provisional responses
//! (RFC 3262) on both legs and absorbed toward Microsoft, UPDATE (RFC 3311)
//! after the answer, Timer C (RFC 3261 §16.6) and a session timer the SBC
//! originates and refreshes (RFC 4028). SIPp plays the carrier with the
//! scenarios `carrier-uac-100rel.xml`, `carrier-uac-timeout.xml` and
//! `carrier-uas-100rel.xml`; `tools/ms_peer.py` plays Teams and flags any
//! `Require: 100rel` toward Microsoft (`require-100rel`).

use std::path::Path;
use std::time::{Duration, Instant};

use crate::daemon::{counter, Daemon, TempDir};
use crate::peers::*;

/// Carrier ⇄ Teams; `carrier_extra` and `teams_extra` go into the trunks.
fn config(c: &Path, p: &Ports, carrier_extra: &str, teams_extra: &str) -> String {
    let head = sbc_head(c, "127.0.0.1", p.udp, p.tls);
    let [t1, t2, t3] = p.teams;
    format!(
        r#"{head}
[[trunk]]
name = "carrier"
kind = "carrier"
local_port = {udp}
peers = [{{ host = "127.0.0.1", port = {carrier}, addr = "127.0.0.1:{carrier}" }}]
acl = ["127.0.0.0/8"]
numbers = {{ inbound = [{{ match = "^0(\\d+)$", replace = "+49$1" }}] }}
codecs = ["PCMA", "PCMU", "telephone-event"]
{carrier_extra}

[[trunk]]
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
acl = ["127.0.0.0/8"]
options = {{ interval_s = 60 }}
invite_timeout_s = 3
{teams_extra}

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
"#,
        udp = p.udp,
        tls = p.tls,
        carrier = p.carrier,
    )
}

#[test]
fn carrier_requiring_100rel_gets_reliable_18x_and_its_update_reaches_teams() {
    let p = Ports::new();
    let d = Daemon::start("interop-rel", |c| config(c, &p, "", ""));
    let work = TempDir::new("interop-rel-work");
    let mut args = teams_args(&p, 0);
    args.extend(
        [
            "--on-invite",
            "ring-answer",
            "--ring-ms",
            "800",
            "--media-seconds",
            "2",
            "--then",
            "wait-bye",
            "--timeout",
            "30",
        ]
        .map(String::from),
    );
    let peer = MsPeer::start(&work.0, &d.certs(), "teams", &strs(&args));
    let sipp = sipp_carrier(
        &work.0,
        "carrier-uac-100rel.xml",
        p.carrier,
        &[
            "-s",
            "0301234567",
            "-key",
            "caller",
            "0401112222",
            "-d",
            "3000",
        ],
        d.listeners.udp,
    );
    let (sok, stext) = sipp_result(sipp);
    let (pok, v, ptext) = peer.finish();
    let cdr = cdrs(&d, 1);
    let (code, err) = d.stop();
    assert!(
        sok,
        "SIPp carrier (reliable 180, 481 to a wrong RAck, UPDATE answered):\n{stext}\n{err}"
    );
    assert!(pok, "Microsoft peer:\n{ptext}\n{err}");
    assert_eq!(
        v["violations"],
        serde_json::json!([]),
        "no 100rel toward Microsoft: {ptext}"
    );
    assert!(media_matched(&v)[0] >= 80, "audio both ways: {ptext}");
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(cdr[0]["status"], 200, "{}", cdr[0]);
    assert!(counter(&err, "reliable_18x").unwrap_or(0) >= 1, "{err}");
    assert_eq!(counter(&err, "prack_unmatched"), Some(1), "{err}");
    // The UPDATE went on to Teams (which does not take UPDATE) as a re-INVITE.
    let events = v["events"].to_string();
    assert!(events.contains("re-INVITE"), "{events}");
}

#[test]
fn timer_c_ends_a_call_that_rings_without_an_answer() {
    let p = Ports::new();
    let d = Daemon::start("interop-timer-c", |c| {
        config(c, &p, "", "provisional_timeout_s = 10")
    });
    let work = TempDir::new("interop-timer-c-work");
    let mut args = teams_args(&p, 0);
    args.extend(["--on-invite", "ring-noanswer", "--timeout", "30"].map(String::from));
    let peer = MsPeer::start(&work.0, &d.certs(), "teams", &strs(&args));
    let started = Instant::now();
    let sipp = sipp_carrier(
        &work.0,
        "carrier-uac-timeout.xml",
        p.carrier,
        &["-s", "0301234567", "-key", "caller", "0401112222"],
        d.listeners.udp,
    );
    let (sok, stext) = sipp_result(sipp);
    let took = started.elapsed();
    let (pok, _v, ptext) = peer.finish();
    let cdr = cdrs(&d, 1);
    let (code, err) = d.stop();
    assert!(sok, "SIPp carrier (180, then 408):\n{stext}\n{err}");
    assert!(
        pok,
        "Microsoft peer (its ringing INVITE cancelled):\n{ptext}\n{err}"
    );
    assert!(
        took >= Duration::from_secs(9) && took < Duration::from_secs(16),
        "408 after Timer C (10 s), took {took:?}"
    );
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(cdr[0]["status"], 408, "{}", cdr[0]);
    assert_eq!(counter(&err, "timer_c"), Some(1), "{err}");
}

#[test]
fn teams_call_to_a_carrier_with_reliable_18x_and_an_sbc_session_refresh() {
    let p = Ports::new();
    let d = Daemon::start("interop-refresh", |c| {
        config(c, &p, "session_timer_s = 90", "")
    });
    let work = TempDir::new("interop-refresh-work");
    let sipp = sipp_carrier(
        &work.0,
        "carrier-uas-100rel.xml",
        p.carrier,
        &["-timeout", "58"],
        None,
    );
    std::thread::sleep(Duration::from_millis(300));
    let tls = d.listeners.tls.unwrap().to_string();
    // The SBC refreshes at half the interval (45 s): the call lasts 50 s.
    let args = [
        "--connect",
        &tls,
        "--sni",
        "teams.sbc.example.test",
        "--sbc-fqdn",
        "teams.sbc.example.test",
        "--call",
        "4930999",
        "--caller",
        "+4940111",
        "--options-first",
        "--media-seconds",
        "2",
        "--then",
        "pause:48000",
        "--then",
        "media",
        "--then",
        "bye",
        "--timeout",
        "80",
    ];
    let peer = MsPeer::start(&work.0, &d.certs(), "teams", &args);
    let (pok, v, ptext) = peer.finish();
    let (sok, stext) = sipp_result(sipp);
    let (code, err) = d.stop();
    assert!(pok, "Microsoft peer:\n{ptext}\n{err}");
    assert!(
        sok,
        "SIPp carrier (Supported: 100rel and Session-Expires on the INVITE, PRACK with RAck 1 1 INVITE, the SBC's UPDATE refresh):\n{stext}\n{err}"
    );
    assert_eq!(v["violations"], serde_json::json!([]), "{ptext}");
    assert_eq!(
        media_matched(&v),
        [100, 100],
        "audio before and after the refresh: {ptext}"
    );
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(counter(&err, "pracks_sent"), Some(1), "{err}");
    assert_eq!(counter(&err, "refreshes_sent"), Some(1), "{err}");
}
