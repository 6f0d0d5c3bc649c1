//! Live reload of the real `sbc run`: a call is up (SIPp carrier with RTP
//! echo, the Microsoft peer sending SRTP through libsrtp), the route
//! changes in the file, `sbc reload` answers what changed, the next call
//! follows the new route to the gateway (SIPp), a broken file is refused
//! with the `sbc check` error while the running configuration stays, and
//! the first call's media never stops: every SRTP packet the Microsoft
//! peer sent during the reloads came back.

use std::path::Path;
use std::time::Duration;

use crate::common::sbc;
use crate::daemon::{Daemon, TempDir};
use crate::peers::*;

/// Carrier, Teams and gateway trunks; carrier calls go to `carrier_to`.
fn config(c: &Path, p: &Ports, gateway: u16, socket: &Path, carrier_to: &str) -> String {
    let head = sbc_head(c, "127.0.0.1", p.udp, p.tls).replacen(
        "fqdn = \"sbc.example.test\"\n",
        &format!(
            "fqdn = \"sbc.example.test\"\ncontrol_socket = \"{}\"\n",
            socket.display()
        ),
        1,
    );
    let teams = teams_trunk(p, "127.0.0.0/8", "invite_timeout_s = 3\n");
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

{teams}

[[trunk]]
name = "gateway"
kind = "gateway"
local_port = {udp}
peers = [{{ host = "127.0.0.1", port = {gateway}, addr = "127.0.0.1:{gateway}" }}]

[[route]]
name = "carrier-out"
from = ["carrier"]
to = ["{carrier_to}"]

[[route]]
name = "back"
from = ["teams", "gateway"]
to = ["carrier"]

[drain]
max_wait_s = 10
"#,
        udp = p.udp,
        carrier = p.carrier,
    )
}

/// `sbc reload --config FILE`: (exit success, stdout + stderr).
fn reload(cfg: &Path) -> (bool, String) {
    let out = sbc()
        .args(["reload", "--config"])
        .arg(cfg)
        .output()
        .expect("sbc reload runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn reload_moves_the_next_call_and_the_first_calls_media_never_stops() {
    let p = Ports::new();
    let gateway = free_udp();
    let work = TempDir::new("reload-work");
    let socket = work.0.join("control.sock");
    let mut file = None;
    let d = Daemon::start("reload", |c| {
        let f = c.parent().unwrap().join("sbc.toml");
        file = Some((c.to_owned(), f));
        config(c, &p, gateway, &socket, "teams")
    });
    let (certs, cfg) = file.unwrap();
    assert!(
        wait_log(&d, "control socket listening", Duration::from_secs(5)),
        "{}",
        d.stderr()
    );

    // Call 1: carrier → Teams, 8 s of SRTP echoed through the carrier.
    let mut args = teams_args(&p, 0);
    args.extend(
        [
            "--media-seconds",
            "8",
            "--then",
            "wait-bye",
            "--timeout",
            "40",
        ]
        .map(String::from),
    );
    let peer = MsPeer::start(&work.0, &d.certs(), "teams", &strs(&args));
    let first = sipp_carrier(
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
            "12000",
        ],
        d.listeners.udp,
    );
    assert!(
        wait_log(&d, "answered call=1", Duration::from_secs(10)),
        "the first call was answered:\n{}",
        d.stderr()
    );
    std::thread::sleep(Duration::from_secs(1));

    // The route changes: carrier calls go to the gateway now.
    std::fs::write(&cfg, config(&certs, &p, gateway, &socket, "gateway")).unwrap();
    let (ok, text) = reload(&cfg);
    assert!(ok, "sbc reload: {text}\n{}", d.stderr());
    assert!(text.starts_with("ok "), "{text}");
    assert!(text.contains("3 trunks (3 unchanged"), "{text}");

    // A broken file is refused with the check's error; the running
    // configuration (the gateway route) stays.
    let good = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        good.replace("to = [\"gateway\"]", "to = [\"nowhere\"]"),
    )
    .unwrap();
    let (ok, text) = reload(&cfg);
    assert!(!ok, "a broken configuration must be refused: {text}");
    assert!(text.starts_with("error "), "{text}");
    assert!(
        text.contains("sbc.toml:") && text.contains("nowhere"),
        "the error names the file, line and value: {text}"
    );
    std::fs::write(&cfg, &good).unwrap();

    // Call 2 takes the new route to the gateway.
    let gw = sipp_carrier(&work.0, "carrier-uas.xml", gateway, &[], None);
    std::thread::sleep(Duration::from_millis(300));
    let second = sipp_carrier(
        &work.0,
        "carrier-uac.xml",
        free_udp(),
        &[
            "-s",
            "0307654321",
            "-key",
            "caller",
            "0401113333",
            "-d",
            "1000",
        ],
        d.listeners.udp,
    );
    let (sok2, stext2) = sipp_result(second);
    let (gok, gtext) = sipp_result(gw);
    assert!(sok2, "second call:\n{stext2}\n{}", d.stderr());
    assert!(gok, "gateway:\n{gtext}");

    // Call 1 ends as it began; its media went on through both reloads.
    let (sok1, stext1) = sipp_result(first);
    let (pok, v, ptext) = peer.finish();
    let cdr = cdrs(&d, 2);
    let (code, err) = d.stop();
    assert!(sok1, "first call:\n{stext1}\n{err}");
    assert!(pok, "Microsoft peer:\n{ptext}\n{err}");
    assert_eq!(
        media_matched(&v),
        [400],
        "every SRTP packet of the first call came back through the reloads: {ptext}"
    );
    let by_called = |n: &str| {
        cdr.iter()
            .find(|c| c["called"] == n)
            .cloned()
            .unwrap_or_default()
    };
    let c1 = by_called("+49301234567");
    let c2 = by_called("+49307654321");
    assert_eq!(c1["to_trunk"], "teams", "{c1}");
    assert_eq!(c1["status"], 200, "{c1}");
    assert_eq!(c2["to_trunk"], "gateway", "{c2}");
    assert_eq!(c2["route"], "carrier-out", "{c2}");
    assert!(err.contains("configuration reloaded"), "{err}");
    assert!(err.contains("configuration reload refused"), "{err}");
    assert_eq!(code, Some(0), "{err}");
}
