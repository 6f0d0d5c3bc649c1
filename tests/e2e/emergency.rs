//! Emergency calls through the real `sbc run` (issue 14): an INVITE to 911
//! from the carrier with a location by value (multipart/mixed: SDP and a
//! PIDF-LO, a Geolocation header, RFC 6442) reaches the emergency gateway
//! while that gateway's trunk is at its `max_calls` and the SBC is
//! draining; the gateway (SIPp, `emergency-uas.xml`) checks with `<ereg>`
//! that the location part and headers arrived, the test compares the
//! PIDF-LO part byte for byte between what the carrier sent and what the
//! gateway received, and the CDR says `emergency: true`.
//!
//! The call that fills the gateway trunk comes *from* the gateway (a
//! trunk's `max_calls` counts its calls both ways), so the emergency
//! gateway's SIPp sees one call only: the gateway is 127.0.0.2, the
//! carrier 127.0.0.1, told apart by their ACLs.

use std::path::Path;
use std::time::Duration;

use crate::daemon::{counter, Daemon, TempDir};
use crate::peers::*;

struct World {
    p: Ports,
    /// The emergency gateway's UAS (127.0.0.2) and the gateway's caller (127.0.0.2).
    gateway: u16,
    gateway_caller: u16,
    /// The carrier's UAS (127.0.0.1, takes the gateway's call) and its emergency caller.
    carrier_caller: u16,
}

impl World {
    fn new() -> World {
        let p = Ports::new();
        let mut taken = vec![p.udp, p.tls, p.carrier];
        let mut udp = || loop {
            let x = free_udp();
            if !taken.contains(&x) {
                taken.push(x);
                return x;
            }
        };
        let (gateway, gateway_caller, carrier_caller) = (udp(), udp(), udp());
        World {
            p,
            gateway,
            gateway_caller,
            carrier_caller,
        }
    }
}

fn config(c: &Path, w: &World) -> String {
    let head = sbc_head(c, "127.0.0.1", w.p.udp, 0);
    format!(
        r#"{head}
[drain]
max_wait_s = 30

[[trunk]]
name = "carrier"
kind = "carrier"
peers = [{{ host = "127.0.0.1", port = {carrier}, addr = "127.0.0.1:{carrier}" }}]
acl = ["127.0.0.1/32"]

[[trunk]]
name = "psap-gateway"
kind = "gateway"
peers = [{{ host = "127.0.0.2", port = {gateway}, addr = "127.0.0.2:{gateway}" }}]
acl = ["127.0.0.2/32"]
max_calls = 1

[[route]]
name = "carrier-to-gateway"
from = ["carrier"]
to = ["psap-gateway"]

[[route]]
name = "gateway-to-carrier"
from = ["psap-gateway"]
to = ["carrier"]
"#,
        carrier = w.p.carrier,
        gateway = w.gateway,
    )
}

/// The PIDF-LO part of the first INVITE in a SIPp message trace: from its
/// Content-Type line to the delimiter after it.
fn pidf_part(trace: &str) -> String {
    let at = trace
        .find("Content-Type: application/pidf+xml")
        .unwrap_or_else(|| panic!("no PIDF-LO part in:\n{trace}"));
    let rest = &trace[at..];
    let end = rest
        .find("\n--")
        .expect("a delimiter after the PIDF-LO part");
    rest[..end].to_owned()
}

/// Waits (bounded) until a socket is bound to `ip_hex:port` (as
/// /proc/net/udp writes it): a SIPp peer is listening, without probing it.
fn udp_bound(ip_hex: &str, port: u16) -> bool {
    let needle = format!("{ip_hex}:{port:04X} ");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        let table = std::fs::read_to_string("/proc/net/udp").unwrap_or_default();
        if table.contains(&needle) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[test]
fn emergency_call_with_pidf_lo_reaches_a_full_gateway_trunk_while_draining() {
    let w = World::new();
    let d = Daemon::start("emergency", |c| config(c, &w));
    let work = TempDir::new("emergency-work");
    // The carrier takes the gateway's ordinary call; the PSAP gateway waits.
    let carrier = sipp_carrier(&work.0, "carrier-uas.xml", w.p.carrier, &[], None);
    let psap = sipp(
        "u1",
        "127.0.0.2",
        &work.0,
        "emergency-uas.xml",
        w.gateway,
        &["-trace_msg", "-message_file", "psap.msg"],
        None,
    );
    for (ip, port) in [("0100007F", w.p.carrier), ("0200007F", w.gateway)] {
        assert!(udp_bound(ip, port), "SIPp did not bind {ip}:{port}");
    }
    // 1. The gateway's own call fills its trunk (max_calls = 1) for 8 s.
    let sbc = format!("127.0.0.1:{}", w.p.udp).parse().unwrap();
    let held = sipp(
        "u1",
        "127.0.0.2",
        &work.0,
        "carrier-uac.xml",
        w.gateway_caller,
        &[
            "-s",
            "0891234567",
            "-key",
            "caller",
            "6505550100",
            "-d",
            "8000",
        ],
        Some(sbc),
    );
    assert!(
        wait_log(&d, "INFO answered call=", Duration::from_secs(10)),
        "the gateway's call was not answered:\n{}",
        d.stderr()
    );
    // 2. SIGTERM: the SBC drains (new calls 503) and waits for that call.
    d.signal("TERM");
    assert!(
        wait_log(&d, "draining", Duration::from_secs(5)),
        "{}",
        d.stderr()
    );
    // 3. The carrier calls 911 with its location, from an ELIN.
    let uac = sipp_carrier(
        &work.0,
        "emergency-uac.xml",
        w.carrier_caller,
        &[
            "-s",
            "911",
            "-key",
            "caller",
            "4085551234",
            "-d",
            "1000",
            "-trace_msg",
            "-message_file",
            "carrier.msg",
        ],
        Some(sbc),
    );
    let (ok, text) = sipp_result(uac);
    assert!(
        ok,
        "the emergency call (carrier side):\n{text}\n{}",
        d.stderr()
    );
    let (ok, text) = sipp_result(psap);
    assert!(
        ok,
        "the PSAP gateway's checks (PIDF-LO, Geolocation, SDP):\n{text}\n{}",
        d.stderr()
    );
    // The location part arrived byte for byte.
    let sent = std::fs::read_to_string(work.0.join("carrier.msg")).unwrap();
    let got = std::fs::read_to_string(work.0.join("psap.msg")).unwrap();
    assert_eq!(pidf_part(&got), pidf_part(&sent));
    // The ELIN is the From user toward the PSAP, untouched.
    assert!(got.contains("From: \"Carrier\" <sip:4085551234@"), "{got}");
    // 4. The held call ends; the daemon exits once it has.
    let (ok, text) = sipp_result(held);
    assert!(ok, "the held call:\n{text}");
    let (ok, text) = sipp_result(carrier);
    assert!(ok, "the carrier's side of the held call:\n{text}");
    let cdrs = cdrs(&d, 2);
    let sos = cdrs
        .iter()
        .find(|c| c["called"] == "911")
        .unwrap_or_else(|| panic!("no CDR for 911: {cdrs:?}"));
    assert_eq!(sos["emergency"], true, "{sos}");
    assert_eq!(sos["status"], 200, "{sos}");
    assert_eq!(sos["to_trunk"], "psap-gateway", "{sos}");
    assert_eq!(sos["calling"], "4085551234", "{sos}");
    let other = cdrs.iter().find(|c| c["called"] != "911").unwrap();
    assert_eq!(other["emergency"], false, "{other}");
    let (code, stderr) = d.stop();
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(counter(&stderr, "emergency_calls"), Some(1), "{stderr}");
}
