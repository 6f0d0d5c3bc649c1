//! Carrier and gateway interop through the real `sbc run` (issue 15):
//!
//! * DTMF (RFC 4733): the carrier (SIPp) numbers telephone-event 96 and
//!   plays three keys with that payload type (a capture this test writes);
//!   the Teams side (`tools/ms_peer.py`) answers with its own 101 and
//!   counts what reaches it, decrypted with libsrtp: every event packet must
//!   arrive with 101, none with 96;
//! * DTMF as SIP INFO: the same keys toward a gateway trunk with
//!   `dtmf = "info"` arrive as three INFO requests (`application/dtmf-relay`,
//!   checked by the gateway's SIPp), and its SDP has no telephone-event;
//! * T.38: a carrier re-INVITE to `m=image … udptl t38` reaches the analog
//!   gateway's SIPp on the same relay ports; UDPTL datagrams sent to the
//!   relay's carrier-side port reach the gateway (its SIPp echoes them) and
//!   come back, byte for byte; the call goes back to audio; the same offer
//!   toward a gateway trunk with `t38 = false` is answered 488 and counted.

use std::net::UdpSocket;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::daemon::{counter, Daemon, TempDir};
use crate::peers::*;

/// A pcap (Ethernet, IPv4, UDP) of RFC 4733 events with payload type
/// `pt`, one per key of `events`: nine packets each, 20 ms apart (the
/// first with the marker bit, durations growing by 160; the last three are
/// the end packet sent three times, with sequence numbers of their own),
/// 200 ms between keys. Returns the number of packets.
fn write_dtmf_pcap(path: &Path, pt: u8, events: &[u8]) -> usize {
    let mut out = Vec::new();
    // Global header: microsecond pcap, Ethernet.
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&65535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    let (mut seq, mut n, mut at_us) = (1000u16, 0usize, 0u64);
    for (k, &ev) in events.iter().enumerate() {
        let ts = 16_000 + 8000 * k as u32;
        for i in 0..9u16 {
            let end = i >= 6;
            let duration = 160 * (i.min(6) + 1);
            let mut rtp = vec![0x80, if i == 0 { 0x80 | pt } else { pt }];
            rtp.extend_from_slice(&seq.to_be_bytes());
            rtp.extend_from_slice(&ts.to_be_bytes());
            rtp.extend_from_slice(&0x4d54_4d46u32.to_be_bytes());
            rtp.extend_from_slice(&[ev, if end { 0x8a } else { 0x0a }]);
            rtp.extend_from_slice(&duration.to_be_bytes());
            seq = seq.wrapping_add(1);
            let frame = frame(&rtp);
            out.extend_from_slice(&((at_us / 1_000_000) as u32).to_le_bytes());
            out.extend_from_slice(&((at_us % 1_000_000) as u32).to_le_bytes());
            out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
            out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
            out.extend_from_slice(&frame);
            n += 1;
            at_us += 20_000;
        }
        at_us += 200_000;
    }
    std::fs::write(path, out).unwrap();
    n
}

/// An Ethernet frame with IPv4 (checksummed) and UDP (no checksum) around
/// `payload`, 192.0.2.1:4000 → 192.0.2.2:5000 (SIPp rewrites both).
fn frame(payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 6, 0x08, 0x00];
    let total = (20 + 8 + payload.len()) as u16;
    let mut ip = vec![0x45, 0];
    ip.extend_from_slice(&total.to_be_bytes());
    ip.extend_from_slice(&[0, 0, 0x40, 0, 64, 17, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2]);
    let sum: u32 = ip
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    let folded = (sum & 0xffff) + (sum >> 16);
    let check = !(((folded & 0xffff) + (folded >> 16)) as u16);
    ip[10..12].copy_from_slice(&check.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&4000u16.to_be_bytes());
    f.extend_from_slice(&5000u16.to_be_bytes());
    f.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(payload);
    f
}

/// The carrier (its calls to 040… go to the fax gateway, to 041… to the
/// gateway without T.38, to 042… to the DTMF INFO gateway, the rest to
/// Teams), Teams, and three gateway trunks on 127.0.0.1.
fn config(c: &Path, p: &Ports, gw: [u16; 3]) -> String {
    let head = sbc_head(c, "127.0.0.1", p.udp, p.tls);
    let teams = teams_trunk(p, "127.0.0.0/8", "");
    let [fax, nofax, info] = gw;
    format!(
        r#"{head}
[[trunk]]
name = "carrier"
kind = "carrier"
local_port = {udp}
peers = [{{ host = "127.0.0.1", port = {carrier}, addr = "127.0.0.1:{carrier}" }}]
acl = ["127.0.0.1/32"]
numbers = {{ inbound = [{{ match = "^0(\\d+)$", replace = "+49$1" }}] }}

{teams}
[[trunk]]
name = "fax-gateway"
kind = "gateway"
peers = [{{ host = "127.0.0.2", port = {fax}, addr = "127.0.0.2:{fax}" }}]

[[trunk]]
name = "voice-gateway"
kind = "gateway"
peers = [{{ host = "127.0.0.3", port = {nofax}, addr = "127.0.0.3:{nofax}" }}]
t38 = false

[[trunk]]
name = "info-gateway"
kind = "gateway"
peers = [{{ host = "127.0.0.4", port = {info}, addr = "127.0.0.4:{info}" }}]
dtmf = "info"

[[route]]
name = "fax"
from = ["carrier"]
called = "^\\+4940"
to = ["fax-gateway"]

[[route]]
name = "voice"
from = ["carrier"]
called = "^\\+4941"
to = ["voice-gateway"]

[[route]]
name = "keys"
from = ["carrier"]
called = "^\\+4942"
to = ["info-gateway"]

[[route]]
name = "cloud"
from = ["carrier"]
to = ["teams"]

[log]
level = "info"
"#,
        udp = p.udp,
        carrier = p.carrier,
    )
}

struct World {
    p: Ports,
    gw: [u16; 3],
}

impl World {
    fn new() -> World {
        let p = Ports::new();
        let mut taken = vec![p.udp, p.carrier];
        let mut udp = || loop {
            let x = free_udp();
            if !taken.contains(&x) {
                taken.push(x);
                return x;
            }
        };
        let gw = [udp(), udp(), udp()];
        World { p, gw }
    }
}

/// The relay's port range from a configuration written by [`sbc_head`].
fn media_range(cfg: &str) -> (u16, u16) {
    let num = |key: &str| -> u16 {
        cfg.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("{key} in the configuration"))
    };
    (num("port_min = "), num("port_max = "))
}

#[test]
fn carrier_dtmf_on_96_reaches_teams_on_101_through_srtp() {
    let w = World::new();
    let d = Daemon::start("dtmf-teams", |c| config(c, &w.p, w.gw));
    let work = TempDir::new("dtmf-teams-work");
    let sent = write_dtmf_pcap(&work.0.join("dtmf-96.pcap"), 96, &[1, 5, 11]);
    let mut args = teams_args(&w.p, 0);
    args.extend(
        [
            "--media",
            "none",
            "--count-events",
            "--dtmf-pt",
            "101",
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
        "carrier-uac-dtmf.xml",
        w.p.carrier,
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
    assert!(sok, "carrier SIPp:\n{stext}\n{}", d.stderr());
    assert!(pok, "ms_peer:\n{ptext}");
    let dtmf = &v["dtmf"][0];
    let by_pt = dtmf["by_pt"].as_object().expect("packets by payload type");
    assert_eq!(
        by_pt.get("101").and_then(|n| n.as_u64()),
        Some(sent as u64),
        "every event packet with Microsoft's 101: {dtmf}"
    );
    assert!(
        by_pt.get("96").is_none(),
        "none with the carrier's 96: {dtmf}"
    );
    assert_eq!(dtmf["auth_fail"], 0, "{dtmf}");
    let events: Vec<(u64, bool, u64)> = dtmf["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["event"].as_u64().unwrap(),
                e["end"].as_bool().unwrap(),
                e["duration"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        events,
        vec![(1, true, 1120), (5, true, 1120), (11, true, 1120)],
        "{dtmf}"
    );
    assert!(
        dtmf["events"][0]["marker"].as_bool().unwrap(),
        "marker kept"
    );
    let (code, stderr) = d.stop();
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        counter(&stderr, "dtmf_info"),
        Some(0),
        "no INFO toward Teams"
    );
}

#[test]
fn carrier_dtmf_reaches_an_info_gateway_as_sip_info() {
    let w = World::new();
    let d = Daemon::start("dtmf-info", |c| config(c, &w.p, w.gw));
    let work = TempDir::new("dtmf-info-work");
    write_dtmf_pcap(&work.0.join("dtmf-96.pcap"), 96, &[1, 5, 11]);
    let gateway = sipp(
        "u1",
        "127.0.0.4",
        &work.0,
        "gateway-uas-info.xml",
        w.gw[2],
        &["-trace_msg", "-message_file", "gateway.msg"],
        None,
    );
    std::thread::sleep(Duration::from_millis(300));
    let uac = sipp_carrier(
        &work.0,
        "carrier-uac-dtmf.xml",
        w.p.carrier,
        &[
            "-s",
            "0421234567",
            "-key",
            "caller",
            "0401112222",
            "-d",
            "3000",
        ],
        d.listeners.udp,
    );
    let (ok, text) = sipp_result(uac);
    assert!(ok, "carrier SIPp:\n{text}\n{}", d.stderr());
    let (ok, text) = sipp_result(gateway);
    let trace = std::fs::read_to_string(work.0.join("gateway.msg")).unwrap_or_default();
    assert!(
        ok,
        "gateway SIPp (three INFO keys):\n{text}\n{trace}\n{}",
        d.stderr()
    );
    assert!(trace.contains("Signal=1\r\nDuration=140"), "{trace}");
    let (code, stderr) = d.stop();
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(counter(&stderr, "dtmf_info"), Some(3), "{stderr}");
}

/// The (media type, port) of every `m=` line in the messages a SIPp trace
/// (`-trace_msg`) says it received, in order.
fn received_streams(trace: &str) -> Vec<(String, u16)> {
    trace
        .split("----------------------------------------------- ")
        .filter(|m| m.contains("message received"))
        .flat_map(|m| {
            m.lines()
                .filter_map(|l| {
                    let mut f = l.trim().strip_prefix("m=")?.split_whitespace();
                    Some((f.next()?.to_owned(), f.next()?.parse().ok()?))
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Waits (bounded) for the port of the `m=image` answer in a SIPp trace.
fn image_port(trace: &Path, within: Duration) -> Option<u16> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        let text = std::fs::read_to_string(trace).unwrap_or_default();
        if let Some((_, port)) = received_streams(&text)
            .into_iter()
            .find(|(m, _)| m == "image")
        {
            return Some(port);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

#[test]
fn t38_reinvite_reaches_the_gateway_and_udptl_flows_both_ways_then_audio_comes_back() {
    let w = World::new();
    let mut cfg = String::new();
    let d = Daemon::start("t38", |c| {
        cfg = config(c, &w.p, w.gw);
        cfg.clone()
    });
    let (pmin, pmax) = media_range(&cfg);
    let work = TempDir::new("t38-work");
    let gateway = sipp(
        "u1",
        "127.0.0.2",
        &work.0,
        "gateway-uas-t38.xml",
        w.gw[0],
        &["-trace_msg", "-message_file", "gateway.msg"],
        None,
    );
    std::thread::sleep(Duration::from_millis(300));
    let trace = work.0.join("carrier.msg");
    let uac = sipp_carrier(
        &work.0,
        "carrier-uac-t38.xml",
        w.p.carrier,
        &[
            "-s",
            "0401234567",
            "-key",
            "caller",
            "0891112222",
            "-d",
            "3000",
            "-trace_msg",
            "-message_file",
            "carrier.msg",
        ],
        d.listeners.udp,
    );
    // The fax: UDPTL datagrams (sequence number, then an IFP) to the
    // relay's carrier-side image port; the gateway's SIPp echoes them.
    let port = image_port(&trace, Duration::from_secs(10));
    let port = port.unwrap_or_else(|| {
        panic!(
            "no m=image answer in the carrier's trace\n{}\n{}",
            std::fs::read_to_string(&trace).unwrap_or_default(),
            d.stderr()
        )
    });
    assert!(
        (pmin..=pmax).contains(&port),
        "the image stream is anchored on the relay ({pmin}–{pmax}): {port}"
    );
    let fax = UdpSocket::bind("127.0.0.1:0").unwrap();
    fax.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let (mut sent, mut back) = (Vec::new(), Vec::new());
    for i in 0..20u16 {
        let mut d = i.to_be_bytes().to_vec();
        d.extend_from_slice(&[0x06, 0xc0, 0x01, 0x80, i as u8, 0x00]);
        fax.send_to(&d, ("127.0.0.1", port)).unwrap();
        sent.push(d);
        let mut buf = [0u8; 512];
        if let Ok((n, _)) = fax.recv_from(&mut buf) {
            back.push(buf[..n].to_vec());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        back, sent,
        "every UDPTL datagram through the gateway and back"
    );
    let (ok, text) = sipp_result(uac);
    assert!(
        ok,
        "carrier SIPp (T.38 answer, back to audio):\n{text}\n{}",
        d.stderr()
    );
    let (ok, text) = sipp_result(gateway);
    let gw_trace = std::fs::read_to_string(work.0.join("gateway.msg")).unwrap_or_default();
    assert!(
        ok,
        "gateway SIPp (the T.38 offer's checks):\n{text}\n{gw_trace}"
    );
    // Both legs' streams stay on their relay ports: audio, image, audio.
    let carrier_trace = std::fs::read_to_string(&trace).unwrap_or_default();
    for (who, t) in [("carrier", &carrier_trace), ("gateway", &gw_trace)] {
        let mut streams = received_streams(t);
        // A retransmitted 200 (or re-INVITE) says the same again.
        streams.dedup();
        let kinds: Vec<&str> = streams.iter().map(|(m, _)| m.as_str()).collect();
        assert_eq!(kinds, ["audio", "image", "audio"], "{who}: {streams:?}");
        assert!(
            streams
                .iter()
                .all(|(_, p)| *p == streams[0].1 && (pmin..=pmax).contains(p)),
            "{who}: one relay port throughout: {streams:?}"
        );
    }
    let cdr = cdrs(&d, 1);
    assert_eq!(cdr[0]["to_trunk"], "fax-gateway", "{cdr:?}");
    let (code, stderr) = d.stop();
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(counter(&stderr, "refused_t38"), Some(0), "{stderr}");
}

#[test]
fn t38_toward_a_gateway_without_t38_is_refused_with_488_and_counted() {
    let w = World::new();
    let d = Daemon::start("t38-refused", |c| config(c, &w.p, w.gw));
    let work = TempDir::new("t38-refused-work");
    let gateway = sipp(
        "u1",
        "127.0.0.3",
        &work.0,
        "carrier-uas.xml",
        w.gw[1],
        &["-trace_msg", "-message_file", "gateway.msg"],
        None,
    );
    std::thread::sleep(Duration::from_millis(300));
    let uac = sipp_carrier(
        &work.0,
        "carrier-uac-t38-refused.xml",
        w.p.carrier,
        &[
            "-s",
            "0411234567",
            "-key",
            "caller",
            "0891112222",
            "-d",
            "500",
        ],
        d.listeners.udp,
    );
    let (ok, text) = sipp_result(uac);
    assert!(
        ok,
        "carrier SIPp (488, call goes on):\n{text}\n{}",
        d.stderr()
    );
    let (ok, text) = sipp_result(gateway);
    let trace = std::fs::read_to_string(work.0.join("gateway.msg")).unwrap_or_default();
    assert!(ok, "gateway SIPp:\n{text}\n{trace}");
    assert!(
        !trace.contains("m=image"),
        "no T.38 reached the gateway: {trace}"
    );
    let (code, stderr) = d.stop();
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(counter(&stderr, "refused_t38"), Some(1), "{stderr}");
}
