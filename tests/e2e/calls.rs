//! End-to-end calls through the real `sbc run`: SIPp plays the carrier over
//! UDP with RTP (`-rtp_echo` sends every packet back), `tools/ms_peer.py`
//! plays Microsoft's SIP proxies over mutual TLS with SRTP through libsrtp
//! (pylibsrtp). The Microsoft peer checks every message the SBC sends
//! against the Direct Routing rules (FQDN Contact, +E.164 with user=phone,
//! X-MS-SBC, early offer with AES_CM_128_HMAC_SHA1_80, no Replaces, client
//! certificate with the trunk's FQDN, route set…) and sends SRTP that must
//! come back, decrypted by the SBC toward the carrier and re-encrypted by
//! it toward Microsoft, byte for byte.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::daemon::{counter, Daemon, TempDir};
use crate::peers::*;

/// Carrier (UDP, loopback ACL, national numbers made E.164), Teams (three
/// proxies) and ACS trunks; carrier calls go to Teams, then to ACS labelled
/// "Fail-over"; Microsoft calls go to the carrier.
fn config(c: &Path, p: &Ports, options_s: u64) -> String {
    let head = sbc_head(c, "127.0.0.1", p.udp, p.tls);
    let [t1, t2, t3] = p.teams;
    let [a1] = p.acs;
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
options = {{ interval_s = {options_s} }}
invite_timeout_s = 3
codecs = ["PCMA", "PCMU", "G722", "telephone-event", "CN"]

[[trunk]]
name = "acs"
kind = "acs"
fqdn = "acs.sbc.example.test"
local_port = {tls}
tls = "acs"
peers = [{{ host = "sip.pstnhub.microsoft.com", addr = "127.0.0.1:{a1}" }}]
acl = ["127.0.0.0/8"]
options = {{ interval_s = {options_s} }}

[[route]]
name = "carrier-to-cloud"
from = ["carrier"]
to = ["teams", {{ trunk = "acs", label = "Fail-over" }}]

[[route]]
name = "cloud-to-carrier"
from = ["teams", "acs"]
to = ["carrier"]

[log]
level = "info"

[drain]
max_wait_s = 10
"#,
        udp = p.udp,
        tls = p.tls,
        carrier = p.carrier,
    )
}

#[test]
fn carrier_call_reaches_teams_with_srtp_audio_both_ways() {
    let p = Ports::new();
    let d = Daemon::start("call-c2t", |c| config(c, &p, 60));
    let work = TempDir::new("call-c2t-work");
    let mut args = teams_args(&p, 0);
    args.extend(
        [
            "--media-seconds",
            "2",
            "--offer-crypto32",
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
        "carrier-uac.xml",
        p.carrier,
        &[
            "-s",
            "0301234567",
            "-key",
            "caller",
            "0401112222",
            "-d",
            "4000",
        ],
        d.listeners.udp,
    );
    let (sok, stext) = sipp_result(sipp);
    let (pok, v, ptext) = peer.finish();
    let cdr = cdrs(&d, 1);
    let (code, err) = d.stop();
    assert!(sok, "SIPp carrier:\n{stext}\n{err}");
    assert!(pok, "Microsoft peer:\n{ptext}\n{err}");
    assert_eq!(v["violations"], serde_json::json!([]), "{ptext}");
    assert_eq!(
        media_matched(&v),
        [100],
        "SRTP in, RTP out, echoed, SRTP back: {ptext}"
    );
    assert_eq!(code, Some(0), "{err}");
    let c = &cdr[0];
    assert_eq!(c["status"], 200, "{c}");
    assert_eq!(c["from_trunk"], "carrier");
    assert_eq!(c["to_trunk"], "teams");
    assert_eq!(c["called"], "+49301234567", "national number normalised");
    assert_eq!(c["ended_by"], "caller");
    assert!(c["packets"][0].as_u64().unwrap() >= 90, "{c}");
}

/// The carrier places its call over TCP although its trunk is configured
/// for UDP (RFC 3261 §18.1.1: a carrier trunk takes both), and wants our IP
/// in Contact (`contact_host`): the call is the carrier's, reaches Teams,
/// audio flows, and our 200 on the TCP connection carries the IP.
#[test]
fn carrier_over_tcp_calls_teams_through_sbc_run() {
    let p = Ports::new();
    let d = Daemon::start("call-tcp", |c| {
        let text = config(c, &p, 60);
        let carrier = format!("local_port = {}\n", p.udp);
        assert!(text.contains(&carrier));
        text.replacen(
            &carrier,
            &format!("{carrier}contact_host = \"127.0.0.1\"\n"),
            1,
        )
    });
    let work = TempDir::new("call-tcp-work");
    let mut args = teams_args(&p, 0);
    args.extend(
        [
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
    let trace = work.0.join("carrier-tcp.msg");
    let trace_s = trace.display().to_string();
    let sipp = sipp_carrier_over(
        "t1",
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
            "3000",
            "-trace_msg",
            "-message_file",
            &trace_s,
        ],
        d.listeners.tcp,
    );
    let (sok, stext) = sipp_result(sipp);
    let (pok, v, ptext) = peer.finish();
    let cdr = cdrs(&d, 1);
    let (code, err) = d.stop();
    assert!(sok, "SIPp carrier over TCP:\n{stext}\n{err}");
    assert!(pok, "Microsoft peer:\n{ptext}\n{err}");
    assert_eq!(v["violations"], serde_json::json!([]), "{ptext}");
    assert_eq!(media_matched(&v), [100], "{ptext}");
    assert_eq!(code, Some(0), "{err}");
    let c = &cdr[0];
    assert_eq!(c["status"], 200, "{c}");
    assert_eq!(c["from_trunk"], "carrier", "{c}");
    assert_eq!(c["to_trunk"], "teams", "{c}");
    // What SIPp received over TCP: our 200 with the IP in Contact.
    let msgs = std::fs::read_to_string(&trace).unwrap_or_default();
    let ok = msgs
        .split("message received")
        .find(|m| m.contains("SIP/2.0 200") && m.contains("INVITE"))
        .unwrap_or_else(|| panic!("no 200 to the INVITE in SIPp's trace:\n{msgs}"));
    let contact = ok
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("contact:"))
        .unwrap_or_else(|| panic!("no Contact in our 200:\n{ok}"));
    assert!(
        contact.contains(&format!("@127.0.0.1:{};transport=udp>", p.udp)),
        "{contact}"
    );
    assert!(ok.contains("TCP"), "received over TCP:\n{ok}");
}

#[test]
fn teams_call_reaches_carrier_with_hold_resume_and_refresh() {
    let p = Ports::new();
    let d = Daemon::start("call-t2c", |c| config(c, &p, 60));
    let work = TempDir::new("call-t2c-work");
    let sipp = sipp_carrier(&work.0, "carrier-uas.xml", p.carrier, &[], None);
    std::thread::sleep(Duration::from_millis(300));
    let tls = d.listeners.tls.unwrap().to_string();
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
        "hold",
        "--then",
        "resume",
        "--then",
        "refresh",
        "--then",
        "bye",
        "--timeout",
        "30",
    ];
    let peer = MsPeer::start(&work.0, &d.certs(), "teams", &args);
    let (pok, v, ptext) = peer.finish();
    let (sok, stext) = sipp_result(sipp);
    let cdr = cdrs(&d, 1);
    let (code, err) = d.stop();
    assert!(pok, "Microsoft peer:\n{ptext}\n{err}");
    assert!(sok, "SIPp carrier:\n{stext}\n{err}");
    assert_eq!(v["violations"], serde_json::json!([]), "{ptext}");
    // Audio before the hold and after the resume, on the same relay ports.
    assert_eq!(media_matched(&v), [100, 100], "{ptext}");
    assert_eq!(code, Some(0), "{err}");
    let c = &cdr[0];
    assert_eq!(c["status"], 200, "{c}");
    assert_eq!(c["from_trunk"], "teams");
    assert_eq!(c["to_trunk"], "carrier");
    assert_eq!(c["ended_by"], "caller");
}

#[test]
fn refer_from_teams_transfers_the_carrier_caller() {
    let p = Ports::new();
    let d = Daemon::start("call-refer", |c| config(c, &p, 60));
    let work = TempDir::new("call-refer-work");
    let mut args = teams_args(&p, 0);
    args.extend(
        [
            "--media-seconds",
            "2",
            "--then",
            "refer:sip:sip.pstnhub.microsoft.com:5061;transport=tls;x-m=8:orgid:5f1c;x-t=4dca",
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
        "carrier-uac.xml",
        p.carrier,
        &[
            "-s",
            "0301234567",
            "-key",
            "caller",
            "0401112222",
            "-d",
            "9000",
        ],
        d.listeners.udp,
    );
    let (sok, stext) = sipp_result(sipp);
    let (pok, v, ptext) = peer.finish();
    let cdr = cdrs(&d, 1);
    let (code, err) = d.stop();
    assert!(
        sok,
        "SIPp carrier (never sees the transfer):\n{stext}\n{err}"
    );
    assert!(pok, "Microsoft peer:\n{ptext}\n{err}");
    assert_eq!(v["violations"], serde_json::json!([]), "{ptext}");
    assert_eq!(
        v["calls"], 2,
        "the transferred call is a new INVITE: {ptext}"
    );
    // Audio with the transferor, then with the transfer target, the carrier
    // echoing on the same relay port throughout.
    assert_eq!(media_matched(&v), [100, 100], "{ptext}");
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(cdr[0]["transfers"], 1, "{}", cdr[0]);
    assert_eq!(cdr[0]["status"], 200);
}

#[test]
fn failover_from_503_and_dead_proxies_to_acs_labelled_fail_over() {
    let p = Ports::new();
    let d = Daemon::start("call-failover", |c| config(c, &p, 60));
    let work = TempDir::new("call-failover-work");
    // sip answers 503; sip2 and sip3 are not there (connection refused).
    let mut a = teams_args(&p, 0);
    a.extend(
        [
            "--on-invite",
            "reject:503",
            "--timeout",
            "20",
            "--linger",
            "1",
        ]
        .map(String::from),
    );
    let sip = MsPeer::start(&work.0, &d.certs(), "sip", &strs(&a));
    let acs_port = format!("127.0.0.1:{}", p.acs[0]);
    let acs = MsPeer::start(
        &work.0,
        &d.certs(),
        "acs",
        &[
            "--listen",
            &acs_port,
            "--sbc-fqdn",
            "acs.sbc.example.test",
            "--media-seconds",
            "2",
            "--then",
            "wait-bye",
            "--timeout",
            "30",
        ],
    );
    let sipp = sipp_carrier(
        &work.0,
        "carrier-uac.xml",
        p.carrier,
        &[
            "-s",
            "+49301234567",
            "-key",
            "caller",
            "0401112222",
            "-d",
            "4000",
        ],
        d.listeners.udp,
    );
    let (sok, stext) = sipp_result(sipp);
    let (aok, av, atext) = acs.finish();
    let (_, sv, stx) = sip.finish();
    let cdr = cdrs(&d, 1);
    let (code, err) = d.stop();
    assert!(sok, "SIPp carrier:\n{stext}\n{err}");
    assert!(
        aok,
        "ACS peer (its checks include our ACS client certificate):\n{atext}\n{err}"
    );
    assert_eq!(av["violations"], serde_json::json!([]), "{atext}");
    assert_eq!(media_matched(&av), [100], "{atext}");
    assert_eq!(sv["violations"], serde_json::json!([]), "{stx}");
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
        [
            ("teams", "503"),
            ("teams", "transport"),
            ("teams", "transport"),
            ("acs", "answered")
        ],
        "{c}"
    );
    assert_eq!(c["attempts"][3]["label"], "Fail-over");
    assert_eq!(c["to_trunk"], "acs");
    // The ACS INVITE's From display name carries the label.
    let acs_log = std::fs::read_to_string(work.0.join("acs.log")).unwrap_or_default();
    assert!(
        acs_log.contains("\"Fail-over"),
        "label in From toward ACS:\n{acs_log}"
    );
}

#[test]
fn cancel_from_the_carrier_cancels_the_teams_leg() {
    let p = Ports::new();
    let d = Daemon::start("call-cancel", |c| config(c, &p, 60));
    let work = TempDir::new("call-cancel-work");
    let mut a = teams_args(&p, 0);
    a.extend(
        [
            "--on-invite",
            "ring-noanswer",
            "--timeout",
            "20",
            "--linger",
            "2",
        ]
        .map(String::from),
    );
    let peer = MsPeer::start(&work.0, &d.certs(), "teams", &strs(&a));
    let sipp = sipp_carrier(
        &work.0,
        "carrier-uac-cancel.xml",
        p.carrier,
        &["-s", "0301234567", "-key", "caller", "0401112222"],
        d.listeners.udp,
    );
    let (sok, stext) = sipp_result(sipp);
    let (_, v, ptext) = peer.finish();
    let cdr = cdrs(&d, 1);
    let (code, err) = d.stop();
    assert!(sok, "SIPp carrier (CANCEL → 200, 487):\n{stext}\n{err}");
    assert_eq!(v["violations"], serde_json::json!([]), "{ptext}");
    let log = std::fs::read_to_string(work.0.join("teams.log")).unwrap_or_default();
    assert!(log.contains("CANCEL sip:"), "CANCEL reached Teams:\n{log}");
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(cdr[0]["status"], 487, "{}", cdr[0]);
    assert_eq!(cdr[0]["ended_by"], "caller");
}

#[test]
fn microsoft_without_a_client_certificate_is_refused() {
    let p = Ports::new();
    let d = Daemon::start("call-nocert", |c| config(c, &p, 60));
    let work = TempDir::new("call-nocert-work");
    let tls = d.listeners.tls.unwrap().to_string();
    let peer = MsPeer::start(
        &work.0,
        &d.certs(),
        "teams",
        &[
            "--connect",
            &tls,
            "--sni",
            "teams.sbc.example.test",
            "--no-client-cert",
            "--call",
            "4930999",
            "--timeout",
            "10",
        ],
    );
    let (pok, _, ptext) = peer.finish();
    let (code, err) = d.stop();
    assert!(
        !pok,
        "a call without a client certificate must fail:\n{ptext}"
    );
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(counter(&err, "calls"), Some(0), "{err}");
    assert!(counter(&err, "tls_failures").unwrap_or(0) >= 1, "{err}");
}

#[test]
fn options_to_microsoft_carry_the_fqdn_contact_allow_refer_and_x_ms_sbc() {
    let p = Ports::new();
    // OPTIONS every second to each proxy; the peer checks each one.
    let d = Daemon::start("call-options", |c| config(c, &p, 1));
    let work = TempDir::new("call-options-work");
    let mut a = teams_args(&p, 0);
    a.extend(
        [
            "--expect-calls",
            "0",
            "--expect-options",
            "3",
            "--timeout",
            "15",
        ]
        .map(String::from),
    );
    let peer = MsPeer::start(&work.0, &d.certs(), "teams", &strs(&a));
    let (pok, v, ptext) = peer.finish();
    let (code, err) = d.stop();
    assert!(pok, "Microsoft peer:\n{ptext}\n{err}");
    assert_eq!(v["violations"], serde_json::json!([]), "{ptext}");
    assert!(v["options_received"].as_u64().unwrap() >= 3, "{ptext}");
    assert_eq!(code, Some(0), "{err}");
    // sip answered, sip2/sip3 refused the connection: marked down.
    assert!(
        err.contains("host=sip2.pstnhub.microsoft.com up=false"),
        "{err}"
    );
}

#[test]
fn late_offer_from_the_carrier_gets_an_sbc_offer_toward_teams() {
    let p = Ports::new();
    let d = Daemon::start("call-late", |c| config(c, &p, 60));
    let work = TempDir::new("call-late-work");
    let mut args = teams_args(&p, 0);
    args.extend(
        [
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
        "carrier-uac-late.xml",
        p.carrier,
        &[
            "-s",
            "0301234567",
            "-key",
            "caller",
            "0401112222",
            "-d",
            "4000",
        ],
        d.listeners.udp,
    );
    let (sok, stext) = sipp_result(sipp);
    let (pok, v, ptext) = peer.finish();
    let cdr = cdrs(&d, 1);
    let (code, err) = d.stop();
    assert!(
        sok,
        "SIPp carrier (offer in our 200, answer in its ACK):\n{stext}\n{err}"
    );
    assert!(
        pok,
        "Microsoft peer (INVITE must carry SDP):\n{ptext}\n{err}"
    );
    assert_eq!(v["violations"], serde_json::json!([]), "{ptext}");
    assert_eq!(media_matched(&v), [100], "{ptext}");
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(cdr[0]["status"], 200);
}

#[test]
fn bye_from_the_carrier_ends_a_teams_call() {
    let p = Ports::new();
    let d = Daemon::start("call-cbye", |c| config(c, &p, 60));
    let work = TempDir::new("call-cbye-work");
    let sipp = sipp_carrier(
        &work.0,
        "carrier-uas-bye.xml",
        p.carrier,
        &["-d", "4000"],
        None,
    );
    std::thread::sleep(Duration::from_millis(300));
    let tls = d.listeners.tls.unwrap().to_string();
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
        "--media-seconds",
        "2",
        "--then",
        "wait-bye",
        "--timeout",
        "30",
    ];
    let peer = MsPeer::start(&work.0, &d.certs(), "teams", &args);
    let (pok, v, ptext) = peer.finish();
    let (sok, stext) = sipp_result(sipp);
    let cdr = cdrs(&d, 1);
    let (code, err) = d.stop();
    assert!(pok, "Microsoft peer:\n{ptext}\n{err}");
    assert!(sok, "SIPp carrier:\n{stext}\n{err}");
    assert_eq!(v["violations"], serde_json::json!([]), "{ptext}");
    assert_eq!(media_matched(&v), [100], "{ptext}");
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(cdr[0]["ended_by"], "callee", "{}", cdr[0]);
}

/// The Microsoft peer's checks can fail: its self-test plays an SBC that
/// breaks one rule at a time (IP in Contact, no `+`, wrong or missing
/// client certificate, the Teams certificate toward ACS, INVITE before
/// OPTIONS on ACS, wrong server certificate) and requires the peer to name
/// each broken rule, besides whole calls, REFER and CANCEL races between
/// the two of them.
#[test]
fn microsoft_peer_names_every_broken_rule() {
    let work = TempDir::new("ms-peer-selftest");
    let out = Command::new("timeout")
        .arg("240")
        .arg("sh")
        .arg(tool("ms_peer_selftest.sh"))
        .arg(&work.0)
        .output()
        .expect("sh");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// [`config`] with the ACS trunk's proxy on the Teams trunk's first proxy
/// address (as in production: both face sip.pstnhub.microsoft.com), and
/// carrier calls to 040… routed to ACS, the others to Teams.
fn shared_proxy_config(c: &Path, p: &Ports) -> String {
    let cfg = config(c, p, 60);
    let acs = format!("addr = \"127.0.0.1:{}\" }}]", p.acs[0]);
    assert!(cfg.contains(&acs));
    let cfg = cfg.replace(&acs, &format!("addr = \"127.0.0.1:{}\" }}]", p.teams[0]));
    let routes = "[[route]]\nname = \"carrier-to-cloud\"\nfrom = [\"carrier\"]\nto = [\"teams\", { trunk = \"acs\", label = \"Fail-over\" }]";
    assert!(cfg.contains(routes));
    cfg.replace(
        routes,
        "[[route]]\nname = \"carrier-to-acs\"\nfrom = [\"carrier\"]\ncalled = \"^\\\\+4940\"\nto = [\"acs\"]\n\n\
         [[route]]\nname = \"carrier-to-teams\"\nfrom = [\"carrier\"]\nto = [\"teams\"]",
    )
}

#[test]
fn teams_and_acs_on_one_proxy_address_each_use_their_own_certificate() {
    let p = Ports::new();
    let d = Daemon::start("call-shared", |c| shared_proxy_config(c, &p));
    let work = TempDir::new("call-shared-work");
    // One Microsoft proxy for both trunks: every connection's client
    // certificate must name one of the two FQDNs, and every message on it
    // (OPTIONS, INVITE, ACK, BYE) must use that FQDN.
    let listen = format!("127.0.0.1:{}", p.teams[0]);
    let peer = MsPeer::start(
        &work.0,
        &d.certs(),
        "ms",
        &[
            "--listen",
            &listen,
            "--sbc-fqdn",
            "teams.sbc.example.test",
            "--sbc-fqdn",
            "acs.sbc.example.test",
            "--expect-calls",
            "2",
            "--media-seconds",
            "1",
            "--then",
            "wait-bye",
            "--timeout",
            "40",
        ],
    );
    for called in ["0301234567", "0401234567"] {
        let sipp = sipp_carrier(
            &work.0,
            "carrier-uac.xml",
            p.carrier,
            &["-s", called, "-key", "caller", "0401112222", "-d", "3000"],
            d.listeners.udp,
        );
        let (sok, stext) = sipp_result(sipp);
        assert!(sok, "SIPp carrier ({called}):\n{stext}\n{}", d.stderr());
    }
    let (pok, v, ptext) = peer.finish();
    let cdr = cdrs(&d, 2);
    let (code, err) = d.stop();
    assert!(pok, "Microsoft peer:\n{ptext}\n{err}");
    assert_eq!(v["violations"], serde_json::json!([]), "{ptext}");
    assert_eq!(
        v["invites_by_fqdn"],
        serde_json::json!({"teams.sbc.example.test": 1, "acs.sbc.example.test": 1}),
        "each trunk's call on a connection with its own certificate: {ptext}"
    );
    assert_eq!(media_matched(&v), [50, 50], "{ptext}");
    assert_eq!(code, Some(0), "{err}");
    let to: Vec<&str> = cdr
        .iter()
        .map(|c| c["to_trunk"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(to, ["teams", "acs"], "{cdr:?}");
    assert!(cdr.iter().all(|c| c["status"] == 200), "{cdr:?}");
}
