//! `sbc media` against real peers: libsrtp (pylibsrtp) through the running
//! relay, and malformed ng input.

use std::path::PathBuf;
use std::process::Command;

use crate::common::start_media;

fn tool(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/e2e/tools")
        .join(name)
}

#[test]
fn libsrtp_peer_exchanges_srtp_with_the_relay_both_ways() {
    let (mut child, ng) = start_media(44000, 44999);
    let out = Command::new("python3")
        .arg(tool("srtp_peer.py"))
        .arg(ng.to_string())
        .arg("200")
        .output()
        .expect("python3 with pylibsrtp (scripts/test installs it)");
    let _ = child.kill();
    let _ = child.wait();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
    // Every packet, across the sequence-number wrap, both directions, byte for byte.
    assert_eq!(v["a_to_b"], 200, "{v}");
    assert_eq!(v["b_to_a"], 200, "{v}");
    assert_eq!(v["mismatch"], 0, "{v}");
    assert_eq!(v["relay_rtp_packets"], 400, "{v}");
}

#[test]
fn malformed_ng_gets_an_error_reply_and_the_relay_keeps_serving() {
    let (mut child, ng) = start_media(45000, 45099);
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(2)))
        .unwrap();
    let mut buf = [0u8; 2048];
    let mut ask = |msg: &[u8]| -> Option<String> {
        s.send_to(msg, ng).unwrap();
        s.recv(&mut buf)
            .ok()
            .map(|n| String::from_utf8_lossy(&buf[..n]).into_owned())
    };
    for bad in [
        &b"c1 d7:command"[..],
        b"c2 l4:pinge",
        b"c3 d7:command5:fancye",
        b"c4 i99999999999999999999e",
        b"c5 d3:sdp4:v=0\r\ne",
    ] {
        let r = ask(bad).expect("error reply");
        assert!(r.contains("6:result5:error"), "{r}");
    }
    assert!(ask(b"no-space-no-cookie").is_none(), "no cookie: dropped");
    assert_eq!(
        ask(b"c6 d7:command4:pinge").as_deref(),
        Some("c6 d6:result4:ponge")
    );
    // An answer for a call that does not exist.
    let r = ask(b"c7 d7:command6:answer7:call-id4:none3:sdp4:v=0\re").unwrap();
    assert!(r.contains("error"), "{r}");
    let _ = child.kill();
    let _ = child.wait();
}

/// Kamailio 5.6 with its rtpengine module drives `sbc media`; SIPp places a
/// call through Kamailio and plays G.711 RTP from a pcap; the SIPp UAS echoes
/// it. The relay must have rewritten the SDP and relayed RTP both ways.
#[test]
fn kamailio_rtpengine_module_drives_the_relay_for_a_sipp_call() {
    use std::os::unix::process::CommandExt;
    let work = crate::daemon::TempDir::new("kamailio");
    let media_log = work.0.join("media.log");
    let (mut media, ng) = crate::common::start_media_logging(46000, 46999, Some(&media_log));
    let free = || {
        std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let (sip_port, uas_port, uac_port) = (free(), free(), free());
    let cfg = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/e2e/kamailio/rtpengine-proxy.cfg"),
    )
    .unwrap()
    .replace("@SIP_PORT@", &sip_port.to_string())
    .replace("@NG_PORT@", &ng.port().to_string())
    .replace("@UAS_PORT@", &uas_port.to_string());
    let cfg_path = work.0.join("kamailio.cfg");
    std::fs::write(&cfg_path, cfg).unwrap();
    let kamailio_log = work.0.join("kamailio.log");
    // Its own process group: Kamailio forks workers, all stopped together at the end.
    let kamailio = Command::new("kamailio")
        .arg("-f")
        .arg(&cfg_path)
        .args(["-DD", "-E", "-m", "64", "-M", "8", "-w"])
        .arg(&work.0)
        .arg("-P")
        .arg(work.0.join("kamailio.pid"))
        .stderr(std::fs::File::create(&kamailio_log).unwrap())
        .process_group(0)
        .spawn()
        .expect("kamailio (Debian kamailio) must be installed: scripts/test installs it");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    // The pcap the uac_pcap scenario plays, from the shared corpora (SIPp's own files).
    let pcap = work.0.join("pcap");
    std::fs::create_dir_all(&pcap).unwrap();
    for f in ["g711a.pcap", "dtmf_2833_1.pcap"] {
        std::fs::copy(
            crate::common::corpora().join("sipp/pcap").join(f),
            pcap.join(f),
        )
        .unwrap();
    }
    let mut uas = Command::new("sipp")
        .current_dir(&work.0)
        .args([
            "-sn",
            "uas",
            "-rtp_echo",
            "-i",
            "127.0.0.1",
            "-p",
            &uas_port.to_string(),
            "-mp",
            &free().to_string(),
        ])
        .args(["-nostdin", "-m", "1", "-timeout", "40"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("sipp");
    let uac = Command::new("sipp")
        .current_dir(&work.0)
        .args([
            "-sn",
            "uac_pcap",
            "-i",
            "127.0.0.1",
            "-p",
            &uac_port.to_string(),
            "-mp",
            &free().to_string(),
        ])
        .args([
            "-nostdin",
            "-m",
            "1",
            "-timeout",
            "40",
            "-trace_msg",
            "-message_file",
            "uac.msg",
        ])
        .arg(format!("127.0.0.1:{sip_port}"))
        .output()
        .expect("sipp");
    let _ = uas.wait();
    // Give the BYE's `delete` time to reach the relay, then stop everything.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let _ = Command::new("kill")
        .args(["-TERM", "--", &format!("-{}", kamailio.id())])
        .status();
    let mut kamailio = kamailio;
    let _ = kamailio.wait();
    let kerr = std::fs::read_to_string(&kamailio_log).unwrap_or_default();
    let _ = media.kill();
    let _ = media.wait();
    let mlog = std::fs::read_to_string(&media_log).unwrap_or_default();
    let uac_text = String::from_utf8_lossy(&uac.stdout);
    assert!(
        uac.status.success(),
        "SIPp call failed:\n{uac_text}\nkamailio:\n{kerr}"
    );
    // The 200 OK that reached the UAC carries the relay's address and a port of its range.
    let msgs = std::fs::read_to_string(work.0.join("uac.msg")).unwrap_or_default();
    let port = msgs
        .split("SIP/2.0 200 OK")
        .nth(1)
        .and_then(|r| r.split("m=audio ").nth(1))
        .and_then(|r| r.split(' ').next())
        .and_then(|p| p.parse::<u16>().ok())
        .unwrap_or_else(|| panic!("no SDP in the 200 OK:\n{msgs}"));
    assert!(
        (46000..=46999).contains(&port),
        "SDP not rewritten by the relay: port {port}"
    );
    // The BYE made Kamailio delete the call; the relay had relayed the pcap's
    // RTP from the UAC and the UAS's echo of it.
    let deleted = mlog
        .lines()
        .find(|l| l.contains("call deleted"))
        .unwrap_or_else(|| panic!("no delete:\n{mlog}\n{kerr}"));
    let count = |k: &str| -> u64 {
        deleted
            .split(&format!("{k}="))
            .nth(1)
            .and_then(|v| v.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    assert!(count("a_packets") > 100, "UAC → relay: {deleted}");
    assert!(count("b_packets") > 100, "UAS echo → relay: {deleted}");
}
