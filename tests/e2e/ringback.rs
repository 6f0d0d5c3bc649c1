//! Local ringback through the real `sbc run`: the carrier trunk has
//! `ringback = "local"`; SIPp (the carrier) calls Teams, `ms_peer.py`
//! (Teams) rings for 3 s with a bare 180 and then answers. The carrier must
//! get our 183 with SDP (no 180), then the 200; its media port is a socket
//! of this test, which records every packet (and echoes those that are not
//! the tone, so that ms_peer's SRTP echo check after the answer still
//! runs). What arrived before the answer must be the `uk` ringing tone in
//! PCMA: 50 packets a second, one SSRC, the marker on the first, the
//! 0.4/0.2/0.4/2.0 s cadence and 400 + 450 Hz by zero crossings.

use std::net::UdpSocket;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use media::tone::alaw_decode;

use crate::daemon::{Daemon, TempDir};
use crate::peers::*;

fn config(c: &Path, p: &Ports) -> String {
    let head = sbc_head(c, "127.0.0.1", p.udp, p.tls);
    let teams = teams_trunk(
        p,
        "127.0.0.0/8",
        "invite_timeout_s = 3\ncodecs = [\"PCMA\", \"PCMU\", \"telephone-event\"]\n",
    );
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
ringback = "local"
ringback_tone = "uk"

{teams}
[[route]]
name = "carrier-to-teams"
from = ["carrier"]
to = ["teams"]

[log]
level = "info"
"#,
        udp = p.udp,
        carrier = p.carrier,
    )
}

/// A packet the carrier's media port received, and when.
struct Got {
    at: Instant,
    bytes: Vec<u8>,
}

impl Got {
    fn ssrc(&self) -> u32 {
        u32::from_be_bytes([self.bytes[8], self.bytes[9], self.bytes[10], self.bytes[11]])
    }
    fn ts(&self) -> u32 {
        u32::from_be_bytes([self.bytes[4], self.bytes[5], self.bytes[6], self.bytes[7]])
    }
}

/// The carrier's media: records everything until `stop` (40 s at most);
/// echoes every packet whose SSRC is not the first one seen (the tone).
fn receiver(sock: UdpSocket, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Vec<Got>> {
    std::thread::spawn(move || {
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(40);
        let mut got: Vec<Got> = Vec::new();
        let mut buf = [0u8; 2048];
        while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
            let Ok((n, from)) = sock.recv_from(&mut buf) else {
                continue;
            };
            if n < 12 {
                continue;
            }
            let g = Got {
                at: Instant::now(),
                bytes: buf[..n].to_vec(),
            };
            if got.first().is_some_and(|f| f.ssrc() != g.ssrc()) {
                let _ = sock.send_to(&g.bytes, from);
            }
            got.push(g);
        }
        got
    })
}

/// Sign changes in a run of samples.
fn crossings(s: &[i16]) -> usize {
    s.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count()
}

#[test]
fn carrier_hears_local_ringback_in_pcma_until_teams_answers() {
    let p = Ports::new();
    let d = Daemon::start("ringback", |c| config(c, &p));
    let work = TempDir::new("ringback-work");
    let media = UdpSocket::bind("127.0.0.1:0").unwrap();
    let rtp_port = media.local_addr().unwrap().port().to_string();
    let stop = Arc::new(AtomicBool::new(false));
    let rx = receiver(media, stop.clone());
    let mut args = teams_args(&p, 0);
    args.extend(
        [
            "--on-invite",
            "ring-answer",
            "--ring-ms",
            "3000",
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
        "carrier-uac-ringback.xml",
        p.carrier,
        &[
            "-s",
            "0301234567",
            "-key",
            "caller",
            "0401112222",
            "-key",
            "rtp_port",
            &rtp_port,
            "-d",
            "3500",
        ],
        d.listeners.udp,
    );
    let (sok, stext) = sipp_result(sipp);
    let (pok, v, ptext) = peer.finish();
    stop.store(true, Ordering::Relaxed);
    let got = rx.join().unwrap();
    let cdr = cdrs(&d, 1);
    let (code, err) = d.stop();
    assert!(
        sok,
        "SIPp carrier (183 with SDP, no 180, then 200):\n{stext}\n{err}"
    );
    assert!(pok, "Microsoft peer:\n{ptext}\n{err}");
    assert_eq!(v["violations"], serde_json::json!([]), "{ptext}");
    assert_eq!(
        media_matched(&v),
        [100],
        "after the answer Teams' SRTP reaches the carrier and comes back: {ptext}"
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("local ringback"), "{err}");
    let c = &cdr[0];
    assert_eq!(c["status"], 200, "{c}");
    let ringing = c["ringing_ms"].as_u64().expect("ringing time");
    let answered = c["answer_ms"].as_u64().expect("answer time");

    // The tone: every packet of the first SSRC, all before the first
    // packet of Teams' media.
    assert!(!got.is_empty(), "nothing reached the carrier's media port");
    let ssrc = got[0].ssrc();
    let tone: Vec<&Got> = got.iter().filter(|g| g.ssrc() == ssrc).collect();
    let first_media = got.iter().position(|g| g.ssrc() != ssrc);
    let first_media = first_media.expect("Teams' media after the answer");
    assert!(
        got[first_media..]
            .iter()
            .filter(|g| g.ssrc() == ssrc)
            .count()
            <= 1,
        "the tone went on after Teams' media began"
    );
    let expected = (answered - ringing) / 20;
    let n = tone.len() as u64;
    assert!(
        n + 10 >= expected && n <= expected + 10,
        "{n} tone packets in {} ms of ringing (≈ {expected} at 50/s)",
        answered - ringing
    );
    let span = tone[tone.len() - 1].at.duration_since(tone[0].at);
    let per = span.as_secs_f64() * 1000.0 / (tone.len() - 1) as f64;
    assert!((18.0..=22.0).contains(&per), "{per:.2} ms a packet");
    assert_eq!(tone[0].bytes[1], 0x88, "PCMA (PT 8) with the marker first");
    // Sign changes and sample pairs over runs of consecutive on packets
    // (the pair across two packets counts too: the `uk` tone repeats every
    // 160 samples, so leaving it out would always drop the same crossing).
    let (mut changes, mut pairs) = (0, 0);
    let mut on = 0;
    let mut prev: Option<(u32, i16)> = None;
    for g in &tone {
        assert_eq!(g.bytes.len(), 172, "12 + 160 octets of G.711");
        assert_eq!(g.bytes[1] & 0x7f, 8, "PCMA");
        let k = g.ts().wrapping_sub(tone[0].ts()) / 160 % 150;
        let payload = &g.bytes[12..];
        let silent = payload.iter().all(|&b| b == 0xd5);
        match k {
            0..=19 | 30..=49 => {
                assert!(!silent, "packet {k} of the cycle is tone");
                on += 1;
                // Whole on periods only, away from their edges.
                if matches!(k, 0 | 19 | 30 | 49) {
                    prev = None;
                    continue;
                }
                let mut run: Vec<i16> = Vec::with_capacity(161);
                let before = prev.filter(|(ts, _)| ts.wrapping_add(160) == g.ts());
                run.extend(before.map(|(_, last)| last));
                run.extend(payload.iter().map(|&b| alaw_decode(b)));
                changes += crossings(&run);
                pairs += run.len() - 1;
                prev = run.last().map(|&l| (g.ts(), l));
            }
            _ => {
                assert!(silent, "packet {k} of the cycle is silence");
                prev = None;
            }
        }
    }
    assert!(on >= 35, "{on} packets of tone");
    // 400 + 450 Hz: the sum changes sign 2 · 450 times a second.
    let z = changes as f64 * 8000.0 / pairs as f64;
    assert!(
        (870.0..=930.0).contains(&z),
        "{z:.0} zero crossings a second"
    );
}
