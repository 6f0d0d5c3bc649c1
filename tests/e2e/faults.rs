//! Failover under real faults: the real `sbc run` between SIPp (carrier,
//! on-prem gateway, external number) and `tools/ms_peer.py` (Microsoft's
//! proxies, mutual TLS, SRTP through libsrtp), whose processes are killed
//! (SIGKILL: the kernel resets their connections), stopped (SIGSTOP: a
//! silent peer whose TCP/TLS connection stays open), resumed and restarted.
//! What is measured is the setup time of the next call (`answer_ms` of its
//! CDR: INVITE in to 200 out), not only that it succeeds, and that calls on
//! a surviving path keep their media through the fault.

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use crate::daemon::{counter, Daemon, TempDir};
use crate::peers::*;

/// Ports of one fault test: the SBC, its Microsoft peers (Ports), plus the
/// on-prem gateway and the external number's carrier.
struct World {
    p: Ports,
    gateway: u16,
    pstn: u16,
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
        let (gateway, pstn) = (udp(), udp());
        World { p, gateway, pstn }
    }

    /// A fresh UDP port for one SIPp caller.
    fn caller_port(&self) -> u16 {
        loop {
            let x = free_udp();
            if ![self.p.udp, self.p.carrier, self.gateway, self.pstn].contains(&x) {
                return x;
            }
        }
    }
}

/// The deployment of the mission: carrier calls go to Teams (sip, sip2,
/// sip3), then ACS, then the on-prem gateway, all but the first labelled
/// "Fail-over"; `forward` adds a `[route.forward]` to the external number
/// through the `pstn` trunk. Microsoft calls go to the carrier. OPTIONS
/// every second (a second without an answer is a failure, one answer brings
/// a peer back) so that detection and recovery fit in a test.
fn config(c: &Path, w: &World, forward: &str, teams_invite_s: u64) -> String {
    let options = "options = { interval_s = 1, timeout_s = 1, up_after = 1 }";
    config_with(c, w, forward, teams_invite_s, options)
}

/// [`config`] with `teams_options` as the Teams trunk's `options` line.
fn config_with(
    c: &Path,
    w: &World,
    forward: &str,
    teams_invite_s: u64,
    teams_options: &str,
) -> String {
    let p = &w.p;
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
{teams_options}
invite_timeout_s = {teams_invite_s}
codecs = ["PCMA", "PCMU", "G722", "telephone-event", "CN"]

[[trunk]]
name = "acs"
kind = "acs"
fqdn = "acs.sbc.example.test"
local_port = {tls}
tls = "acs"
peers = [{{ host = "sip.pstnhub.microsoft.com", addr = "127.0.0.1:{a1}" }}]
acl = ["127.0.0.0/8"]
options = {{ interval_s = 1, timeout_s = 1, up_after = 1 }}

[[trunk]]
name = "gateway"
kind = "gateway"
local_port = {udp}
peers = [{{ host = "127.0.0.1", port = {gateway}, addr = "127.0.0.1:{gateway}" }}]
acl = ["127.0.0.1/32"]
invite_timeout_s = 1
codecs = ["PCMA", "PCMU", "telephone-event"]

[[trunk]]
name = "pstn"
kind = "carrier"
local_port = {udp}
peers = [{{ host = "127.0.0.1", port = {pstn}, addr = "127.0.0.1:{pstn}" }}]
acl = ["127.0.0.1/32"]
codecs = ["PCMA", "PCMU", "telephone-event"]

[[route]]
name = "carrier-to-cloud"
from = ["carrier"]
to = ["teams", "acs", "gateway"]
{forward}

[[route]]
name = "cloud-to-carrier"
from = ["teams", "acs"]
to = ["carrier"]

[log]
level = "info"

[drain]
max_wait_s = 5
"#,
        udp = p.udp,
        tls = p.tls,
        carrier = p.carrier,
        gateway = w.gateway,
        pstn = w.pstn,
    )
}

/// A Microsoft proxy (`sip`, `sip2`, `sip3`: index 0–2 of Teams, 3: ACS)
/// answering `calls` INVITEs at once with 200 (no ringing: the setup time
/// is the SBC's), waiting for the BYE of each, then serving OPTIONS until
/// killed.
fn proxy(
    w: &World,
    work: &Path,
    d: &Daemon,
    name: &str,
    i: usize,
    calls: u32,
    extra: &[&str],
) -> MsPeer {
    let (port, fqdn) = match i {
        3 => (w.p.acs[0], "acs.sbc.example.test"),
        i => (w.p.teams[i], "teams.sbc.example.test"),
    };
    let listen = format!("127.0.0.1:{port}");
    let calls = calls.to_string();
    let mut args = vec![
        "--listen",
        &listen,
        "--sbc-fqdn",
        fqdn,
        "--on-invite",
        "answer",
        "--expect-calls",
        &calls,
        "--media-seconds",
        "1",
        "--then",
        "wait-bye",
        "--timeout",
        "60",
        "--linger",
        "60",
    ];
    args.extend_from_slice(extra);
    MsPeer::start(work, &d.certs(), name, &args)
}

/// One carrier call (SIPp UAC from its own port) to `number`, held `hold_ms`.
fn call(w: &World, work: &Path, d: &Daemon, number: &str, hold_ms: u64) -> Child {
    sipp_carrier(
        work,
        "carrier-uac.xml",
        w.caller_port(),
        &[
            "-s",
            number,
            "-key",
            "caller",
            "0401112222",
            "-d",
            &hold_ms.to_string(),
        ],
        d.listeners.udp,
    )
}

/// Places one call and waits for it and its CDR (the `n`-th of the run).
fn call_and_cdr(w: &World, work: &Path, d: &Daemon, n: usize) -> serde_json::Value {
    call_and_cdr_during(w, work, d, n, || ()).0
}

/// [`call_and_cdr`], doing `during` while the call is under way; also
/// returns what `during` returned.
fn call_and_cdr_during<T>(
    w: &World,
    work: &Path,
    d: &Daemon,
    n: usize,
    during: impl FnOnce() -> T,
) -> (serde_json::Value, T) {
    // Held longer than a peer's 1 s media check (SRTP sent, echo required).
    let uac = call(w, work, d, "0301234567", 1800);
    let t = during();
    let (ok, text) = sipp_result(uac);
    let c = cdrs(d, n);
    assert!(ok, "call {n}:\n{text}\n{}", d.stderr());
    assert_eq!(c.len(), n, "CDR of call {n}:\n{}", d.stdout());
    (c[n - 1].clone(), t)
}

/// Waits (at most 10 s, polling every 5 ms) until `peer` has logged its
/// `n`-th INVITE (it has answered 100 Trying then), then SIGKILLs it: the
/// kernel closes its connection with that INVITE pending on it.
fn kill_at_invite(peer: MsPeer, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while invites(&peer) < n && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(invites(&peer) >= n, "INVITE #{n} never reached the proxy");
    peer.kill();
}

/// The new INVITEs `peer` has logged so far.
fn invites(peer: &MsPeer) -> usize {
    std::fs::read_to_string(&peer.log)
        .unwrap_or_default()
        .matches("# INVITE received")
        .count()
}

/// The health log lines' count of `host … up=…` so far.
fn health_lines(d: &Daemon, host: &str, up: bool) -> usize {
    let needle = format!("host={host} up={up}");
    d.stderr().matches(&needle).count()
}

const SIP: &str = "sip.pstnhub.microsoft.com";
const SIP2: &str = "sip2.pstnhub.microsoft.com";
const SIP3: &str = "sip3.pstnhub.microsoft.com";

/// sip is killed with an INVITE pending on it, then sip2 is stopped
/// (silent, its TLS connection open), then resumed, then sip is restarted —
/// while a Teams → carrier call on another connection keeps its SRTP
/// flowing through every fault.
///
/// Targets (issue: failover under real faults): a call whose INVITE is
/// pending on a peer that dies moves on at once (≤ 500 ms: the connection's
/// loss, not a timer); the first call into a peer that just went
/// silent costs at most the per-attempt timer (2 s) + normal setup; once a
/// peer is known down the next call has no delay (≤ 500 ms); a 2xx the
/// silent peer sends after it resumes is ACKed and ended (no ghost call);
/// a restarted peer takes calls again once one OPTIONS is answered.
#[test]
fn killed_silent_and_restarted_proxies_cost_the_next_call_at_most_the_attempt_timer() {
    let w = World::new();
    let d = Daemon::start("fault-kill", |c| config(c, &w, "", 2));
    let work = TempDir::new("fault-kill-work");
    // sip3 is never there (connection refused); OPTIONS mark it down.
    let sip = proxy(&w, &work.0, &d, "sip", 0, 1, &[]);
    // sip2 takes call 2, then — after SIGCONT — the INVITE of call 3 it
    // ignored while stopped (the SBC must CANCEL or ACK and BYE that late
    // answer: sip2 waits for its end), then call 5. No media checks: the
    // late answer has none.
    let sip2 = proxy(&w, &work.0, &d, "sip2", 1, 3, &["--media", "none"]);
    let acs = proxy(&w, &work.0, &d, "acs", 3, 2, &[]);
    // The surviving path: a Teams → carrier call over its own connection,
    // SRTP checked before the faults and after them.
    let carrier = sipp_carrier(&work.0, "carrier-uas.xml", w.p.carrier, &[], None);
    std::thread::sleep(Duration::from_millis(300));
    let tls = d.listeners.tls.unwrap().to_string();
    let done = work.0.join("faults.done");
    let done_step = format!("wait-file:{}", done.display());
    let survivor = MsPeer::start(
        &work.0,
        &d.certs(),
        "survivor",
        &[
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
            "1",
            "--then",
            &done_step,
            "--then",
            "media",
            "--then",
            "bye",
            "--timeout",
            "90",
        ],
    );
    assert!(
        wait_log(
            &d,
            &format!("host={SIP3} up=false"),
            Duration::from_secs(10)
        ),
        "sip3 (nobody listening) marked down by OPTIONS:\n{}",
        d.stderr()
    );
    // The survivor is CDR 1 only when it ends; the carrier calls count from 1.
    let n = std::cell::Cell::new(0);
    let count = || {
        n.set(n.get() + 1);
        n.get()
    };
    let next = |d: &Daemon| call_and_cdr(&w, &work.0, d, count());

    // 1. Normal: sip answers.
    let c1 = next(&d);
    assert_eq!(path(&c1), [hop("teams", SIP, "answered")], "{c1}");
    let normal = answer_ms(&c1);

    // 2. sip dies (SIGKILL) with the INVITE of call 2 pending on its TLS
    //    connection (answered 100 Trying, so no attempt timer runs any
    //    more): the connection's loss fails that attempt at once and sip2
    //    answers — not after the 2 s attempt timer, not after Timer B.
    let (c2, ()) = call_and_cdr_during(&w, &work.0, &d, count(), || kill_at_invite(sip, 2));
    assert_eq!(
        path(&c2),
        [
            hop("teams", SIP, "transport"),
            hop("teams", SIP2, "answered")
        ],
        "{c2}"
    );
    let after_death = answer_ms(&c2);
    assert!(
        after_death <= 500,
        "INVITE pending on a proxy that was killed: {after_death} ms (the attempt timer is 2 s): {c2}"
    );

    // 3. sip2 goes silent (SIGSTOP: TLS connection open, nothing answers):
    //    the per-attempt timer (2 s) moves the call to ACS, labelled.
    sip2.signal("STOP");
    let c3 = next(&d);
    assert_eq!(
        path(&c3),
        [hop("teams", SIP2, "timeout"), hop("acs", SIP, "answered")],
        "{c3}"
    );
    assert_eq!(c3["attempts"][1]["label"], "Fail-over", "{c3}");
    let silent_first = answer_ms(&c3);
    assert!(
        (2000..=2000 + 1000).contains(&silent_first),
        "first call into a silent peer: {silent_first} ms (2 s timer + setup): {c3}"
    );

    // 4. Every Teams proxy is known down now: the next call goes to ACS
    //    with no delay at all.
    let c4 = next(&d);
    assert_eq!(path(&c4), [hop("acs", SIP, "answered")], "{c4}");
    let known_down = answer_ms(&c4);
    assert!(known_down <= 500, "known-down Teams: {known_down} ms: {c4}");

    // 5. sip2 resumes: it answers the INVITE of call 3 it had ignored; the
    //    SBC ACKs that 200 and hangs it up (sip2 waits for that BYE), and
    //    sip2's OPTIONS answers bring it back up.
    let ups = health_lines(&d, SIP2, true);
    sip2.signal("CONT");
    let deadline = Instant::now() + Duration::from_secs(10);
    while health_lines(&d, SIP2, true) <= ups && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        health_lines(&d, SIP2, true) > ups,
        "sip2 back up after SIGCONT:\n{}",
        d.stderr()
    );
    let c5 = next(&d);
    assert_eq!(path(&c5), [hop("teams", SIP2, "answered")], "{c5}");

    // 6. sip restarts (a new process on the same port): one answered
    //    OPTIONS and calls return to it.
    let ups = health_lines(&d, SIP, true);
    let restarted = Instant::now();
    let sip = proxy(&w, &work.0, &d, "sip-restarted", 0, 1, &[]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while health_lines(&d, SIP, true) <= ups && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let recovery = restarted.elapsed();
    let c6 = next(&d);
    assert_eq!(path(&c6), [hop("teams", SIP, "answered")], "{c6}");

    // The surviving call's SRTP flowed before and after all of it.
    std::fs::write(&done, b"done").unwrap();
    let (vok, vv, vtext) = survivor.finish();
    let (sok, stext) = sipp_result(carrier);
    sip.kill();
    let (ok2, v2, t2) = sip2.finish_now();
    let (aok, av, atext) = acs.finish_now();
    let all = cdrs(&d, 7);
    let (code, err) = d.stop();
    eprintln!(
        "setup times: normal {normal} ms, killed with the INVITE pending {after_death} ms, \
         first into silent {silent_first} ms, known down {known_down} ms; restarted peer up \
         after {} ms",
        recovery.as_millis()
    );
    assert!(vok, "survivor (Teams → carrier):\n{vtext}\n{err}");
    assert_eq!(
        media_matched(&vv),
        [50, 50],
        "surviving call's SRTP before and after the faults: {vtext}"
    );
    assert!(sok, "carrier UAS:\n{stext}");
    assert!(ok2, "sip2 (its late 200 ACKed and hung up):\n{t2}\n{err}");
    assert_eq!(
        v2["calls"], 3,
        "sip2: call 2, the late answer, call 5: {t2}"
    );
    assert!(aok, "ACS:\n{atext}");
    assert_eq!(av["violations"], serde_json::json!([]), "{atext}");
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(all.len(), 7, "6 carrier calls and the survivor");
    assert!(counter(&err, "late_answers").unwrap_or(0) >= 1, "{err}");
    assert_eq!(
        counter(&err, "active_calls"),
        Some(0),
        "no call left: {err}"
    );
}

/// sip restarts (SIGKILL, then a new process on the same port) with the
/// INVITE of a call pending on its connection: that attempt fails at once
/// and sip2 answers; the lost connection does not mark sip down, so the
/// next call goes to the restarted sip again, over a new connection. Teams
/// sends no OPTIONS here: only the calls judge the peers.
#[test]
fn a_proxy_restarted_with_an_invite_pending_costs_that_attempt_only() {
    let w = World::new();
    let d = Daemon::start("fault-restart", |c| {
        config_with(c, &w, "", 2, "options = { enabled = false }")
    });
    let work = TempDir::new("fault-restart-work");
    let sip = proxy(&w, &work.0, &d, "sip", 0, 1, &[]);
    // Room for a second call: a sip wrongly marked down would send call 3
    // here (and fail the test on the path, not on a timeout).
    let sip2 = proxy(&w, &work.0, &d, "sip2", 1, 2, &[]);
    std::thread::sleep(Duration::from_millis(300));

    let c1 = call_and_cdr(&w, &work.0, &d, 1);
    assert_eq!(path(&c1), [hop("teams", SIP, "answered")], "{c1}");

    // sip dies with call 2's INVITE pending and comes back at once.
    let (c2, sip) = call_and_cdr_during(&w, &work.0, &d, 2, || {
        kill_at_invite(sip, 2);
        proxy(&w, &work.0, &d, "sip-restarted", 0, 1, &[])
    });
    assert_eq!(
        path(&c2),
        [
            hop("teams", SIP, "transport"),
            hop("teams", SIP2, "answered")
        ],
        "{c2}"
    );
    let pending = answer_ms(&c2);
    assert!(
        pending <= 500,
        "INVITE pending on a restarted proxy: {pending} ms: {c2}"
    );

    // Not marked down: the next call reconnects to the restarted sip.
    let c3 = call_and_cdr(&w, &work.0, &d, 3);
    assert_eq!(path(&c3), [hop("teams", SIP, "answered")], "{c3}");
    let (ok, v, text) = sip.finish_now();
    let sip2_invites = invites(&sip2);
    sip2.kill();
    let (code, err) = d.stop();
    eprintln!(
        "setup times: INVITE pending on a restarted proxy {pending} ms, the next call {} ms",
        answer_ms(&c3)
    );
    assert!(ok, "restarted sip:\n{text}");
    assert_eq!(v["violations"], serde_json::json!([]), "{text}");
    assert_eq!(sip2_invites, 1, "sip2 got call 2 only");
    assert!(
        !err.contains(&format!("trunk=teams host={SIP} up=false")),
        "sip marked down: {err}"
    );
    assert!(counter(&err, "lost").unwrap_or(0) >= 1, "{err}");
    assert_eq!(code, Some(0), "{err}");
}

/// SIPp as a called party (gateway or external number) on `port`, for
/// `calls` calls.
fn sipp_uas(work: &Path, sf: &str, port: u16, calls: u32) -> Child {
    sipp_carrier(work, sf, port, &["-m", &calls.to_string()], None)
}

fn forward(window_s: u32, ring_s: Option<u32>) -> String {
    let ring = ring_s
        .map(|r| format!("ring_timeout_s = {r}\n"))
        .unwrap_or_default();
    format!(
        "[route.forward]\ntrunk = \"pstn\"\nnumber = \"+4915112345\"\nwindow_s = {window_s}\n{ring}"
    )
}

/// Waits (bounded) until OPTIONS have marked every Microsoft peer down
/// (nobody listens on their ports).
fn all_microsoft_down(d: &Daemon) {
    for host in [SIP, SIP2, SIP3] {
        assert!(
            wait_log(
                d,
                &format!("trunk=teams host={host} up=false"),
                Duration::from_secs(10)
            ),
            "{host} down:\n{}",
            d.stderr()
        );
    }
    assert!(
        wait_log(
            d,
            &format!("trunk=acs host={SIP} up=false"),
            Duration::from_secs(10)
        ),
        "ACS down:\n{}",
        d.stderr()
    );
}

/// Teams and ACS are down (nobody listens): the carrier call goes straight
/// to the on-prem gateway (plain RTP/AVP, no rtcp-mux, labelled), with no
/// delay. Then the gateway is gone too (ICMP port unreachable): every
/// destination fails and the call is forwarded at once to the external number through the carrier,
/// with the caller's identity, a Diversion naming the called number, and
/// the label (all checked by the SIPp scenarios).
#[test]
fn teams_and_acs_down_go_to_the_gateway_and_everything_down_forwards_at_once() {
    let w = World::new();
    let d = Daemon::start("fault-gw", |c| config(c, &w, &forward(10, None), 2));
    let work = TempDir::new("fault-gw-work");
    all_microsoft_down(&d);
    let gw = sipp_uas(&work.0, "gateway-uas.xml", w.gateway, 1);
    let ext = sipp_uas(&work.0, "external-uas.xml", w.pstn, 1);
    std::thread::sleep(Duration::from_millis(300));

    let c1 = call_and_cdr(&w, &work.0, &d, 1);
    let (gok, gtext) = sipp_result(gw);
    assert!(gok, "gateway (RTP/AVP, no rtcp-mux, label):\n{gtext}");
    assert_eq!(path(&c1), [hop("gateway", "127.0.0.1", "answered")], "{c1}");
    assert_eq!(c1["attempts"][0]["label"], "Fail-over", "{c1}");
    let to_gateway = answer_ms(&c1);
    assert!(to_gateway <= 500, "known-down Azure: {to_gateway} ms: {c1}");

    // The gateway's SIPp has exited: nothing answers on its port.
    let c2 = call_and_cdr(&w, &work.0, &d, 2);
    let (eok, etext) = sipp_result(ext);
    let (code, err) = d.stop();
    assert!(
        eok,
        "external number (Diversion, identity, label):\n{etext}\n{err}"
    );
    let p2 = path(&c2);
    assert_eq!(
        p2.first(),
        Some(&hop("gateway", "127.0.0.1", "transport")),
        "{c2}"
    );
    assert_eq!(
        p2.last(),
        Some(&hop("pstn", "127.0.0.1", "answered")),
        "{c2}"
    );
    assert_eq!(c2["to_trunk"], "pstn", "{c2}");
    let last = c2["attempts"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["label"], "Fail-over", "{c2}");
    // Every destination failed at once (the gateway's port answers ICMP
    // port unreachable, the known-down Microsoft peers refuse): forwarded
    // then, neither after the gateway's 1 s attempt timer nor after the
    // 10 s window.
    let fwd_at = last["at_ms"].as_u64().unwrap();
    assert!(
        fwd_at <= 500,
        "forward {fwd_at} ms after the call began: {c2}"
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(counter(&err, "forwarded").unwrap_or(0) >= 1, "{err}");
    eprintln!("setup times: to the gateway {to_gateway} ms; forwarded at {fwd_at} ms");
}

/// Forward-on-failure by time: a call Teams lets ring past the ring
/// timeout (2 s) is forwarded and the ringing INVITE CANCELed; a call
/// into a silent Teams (SIGSTOP, attempt timer longer than the window)
/// is forwarded when the 3 s window passes, within ±0.5 s.
#[test]
fn forward_fires_within_half_a_second_of_its_window_and_ring_timeout() {
    let w = World::new();
    // Teams' per-attempt timer (10 s) is longer than the window (3 s).
    let d = Daemon::start("fault-fwd", |c| config(c, &w, &forward(3, Some(2)), 10));
    let work = TempDir::new("fault-fwd-work");
    let sip = proxy(
        &w,
        &work.0,
        &d,
        "sip",
        0,
        1,
        &["--on-invite", "ring-noanswer"],
    );
    assert!(
        wait_log(
            &d,
            &format!("trunk=teams host={SIP} up=true"),
            Duration::from_secs(10)
        ),
        "sip up:\n{}",
        d.stderr()
    );
    let ext = sipp_uas(&work.0, "external-uas.xml", w.pstn, 2);
    std::thread::sleep(Duration::from_millis(300));

    // 1. sip rings and never answers: forwarded 2 s after the ringing began.
    let c1 = call_and_cdr(&w, &work.0, &d, 1);
    let ringing = c1["ringing_ms"].as_u64().unwrap_or(u64::MAX);
    let f1 = c1["attempts"].as_array().unwrap().last().unwrap()["at_ms"]
        .as_u64()
        .unwrap();
    assert_eq!(path(&c1)[0], hop("teams", SIP, "ring timeout"), "{c1}");
    assert_eq!(c1["to_trunk"], "pstn", "{c1}");
    assert!(
        f1.abs_diff(ringing + 2000) <= 500,
        "ring timeout: forward at {f1} ms, ringing at {ringing} ms: {c1}"
    );

    // 2. sip goes silent: nothing begins within the 3 s window.
    sip.signal("STOP");
    let c2 = call_and_cdr(&w, &work.0, &d, 2);
    let f2 = c2["attempts"].as_array().unwrap().last().unwrap()["at_ms"]
        .as_u64()
        .unwrap();
    assert_eq!(c2["to_trunk"], "pstn", "{c2}");
    assert!(f2.abs_diff(3000) <= 500, "window: forward at {f2} ms: {c2}");
    sip.signal("CONT");
    let (eok, etext) = sipp_result(ext);
    let (_, sv, stext) = sip.finish_now();
    let (code, err) = d.stop();
    assert!(eok, "external number:\n{etext}\n{err}");
    assert_eq!(sv["violations"], serde_json::json!([]), "{stext}");
    let sip_log = std::fs::read_to_string(work.0.join("sip.log")).unwrap_or_default();
    assert!(
        sip_log.contains("CANCEL sip:"),
        "the ringing INVITE was CANCELed:\n{stext}"
    );
    assert_eq!(code, Some(0), "{err}");
    eprintln!("forward: ring timeout at {f1} ms (ringing {ringing} ms), window at {f2} ms");
}

/// Bad input from a peer: sip answers the INVITE with garbage (a status
/// line that is not SIP, on a connection that stays framed). The SBC drops
/// and counts it, the attempt fails on its timer, sip2 takes the call, and
/// nothing else is disturbed.
#[test]
fn a_proxy_answering_garbage_fails_its_attempt_and_the_next_proxy_answers() {
    let w = World::new();
    let d = Daemon::start("fault-garbage", |c| config(c, &w, "", 2));
    let work = TempDir::new("fault-garbage-work");
    let sip = proxy(&w, &work.0, &d, "sip", 0, 1, &["--on-invite", "garbage"]);
    let sip2 = proxy(&w, &work.0, &d, "sip2", 1, 1, &[]);
    for host in [SIP, SIP2] {
        assert!(
            wait_log(
                &d,
                &format!("trunk=teams host={host} up=true"),
                Duration::from_secs(10)
            ),
            "{host} up:\n{}",
            d.stderr()
        );
    }
    let c = call_and_cdr(&w, &work.0, &d, 1);
    let (ok2, _, t2) = sip2.finish_now();
    let (_, v1, t1) = sip.finish_now();
    let (code, err) = d.stop();
    assert_eq!(
        path(&c),
        [hop("teams", SIP, "timeout"), hop("teams", SIP2, "answered")],
        "{c}"
    );
    assert!(ok2, "sip2:\n{t2}");
    assert!(
        v1["events"].to_string().contains("garbage sent"),
        "sip sent its garbage:\n{t1}"
    );
    assert!(
        counter(&err, "dropped_bad").unwrap_or(0) >= 1,
        "counted: {err}"
    );
    assert_eq!(code, Some(0), "{err}");
}
