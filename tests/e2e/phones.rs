//! Registered phones through the real `sbc run`: SIPp plays phones that
//! register with digest authentication (MD5: SIPp 3.6 computes nothing
//! else) over UDP and TCP, then ring and answer; baresip 1.0 (Debian) is a
//! real softphone that registers, auto-answers a carrier call with audio
//! and places a call that the SBC challenges with 407. The carrier is SIPp
//! with RTP echo. Everything is on loopback: the SBC and the carrier on
//! 127.0.0.1, the phones on 127.0.1.0/24 (the phones trunk's ACL).
//!
//! What the SBC answered is read from SIPp's message traces (`-trace_msg`)
//! and checked here: the challenge, the Contacts of each 200 with their
//! expiry, `stale=true`, `Min-Expires`; for calls, the CDR.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::daemon::{Daemon, TempDir};
use crate::peers::*;

/// The realm is `[sbc] fqdn` of `sbc_head`.
const REALM: &str = "sbc.example.test";
const USER: &str = "alice";
const PASSWORD: &str = "secret";
/// Alice's number; the carrier dials it nationally (030123456).
const NUMBER: &str = "+4930123456";
const DIALLED: &str = "030123456";

/// The users file: alice with only an MD5 HA1 (`printf
/// 'alice:sbc.example.test:secret' | md5sum`), so that she is challenged
/// with MD5 alone, which SIPp 3.6 and baresip 1.0 can answer.
const USERS: &str = r#"[[user]]
number = "+4930123456"
username = "alice"
ha1_md5 = "74fa4a7bda09f39b5cf8d088355b4687"
"#;

/// The SBC of these tests: the carrier (SIPp on 127.0.0.1, national
/// numbers made E.164), the phones trunk (sources in 127.0.1.0/24, our
/// loopback address in Contact since a phone cannot resolve the FQDN), the
/// carrier's calls to the registered user they name, the phones' calls to
/// the carrier. `phones` is added to `[phones]` (after `users`), `protect`
/// is the `[phones.protect]` body. The users file is written beside the
/// config unless `phones` names one.
fn config(c: &Path, p: &Ports, phones: &str, protect: &str) -> String {
    let head = sbc_head(c, "127.0.0.1", p.udp, 0);
    let users_line = if phones.contains("users =") {
        String::new()
    } else {
        let users = c.parent().unwrap().join("users.toml");
        std::fs::write(&users, USERS).unwrap();
        format!("users = {:?}\n", users.display().to_string())
    };
    format!(
        r#"{head}
[phones]
{users_line}min_expires_s = 60
{phones}

[phones.protect]
{protect}

[[trunk]]
name = "carrier"
kind = "carrier"
local_port = {udp}
peers = [{{ host = "127.0.0.1", port = {carrier}, addr = "127.0.0.1:{carrier}" }}]
acl = ["127.0.0.1/32"]
numbers = {{ inbound = [{{ match = "^0(\\d+)$", replace = "+49$1" }}] }}
codecs = ["PCMA", "PCMU", "telephone-event"]

[[trunk]]
name = "phones"
kind = "phones"
local_port = {udp}
contact_host = "127.0.0.1"
acl = ["127.0.1.0/24"]
codecs = ["PCMA", "PCMU", "telephone-event"]

[[route]]
name = "carrier-to-phones"
from = ["carrier"]
to = [{{ trunk = "phones", registered = true }}]

[[route]]
name = "phones-to-carrier"
from = ["phones"]
to = ["carrier"]

[log]
level = "info"

[drain]
max_wait_s = 5
"#,
        udp = p.udp,
        carrier = p.carrier,
    )
}

/// A free UDP port on loopback address `ip` (a phone's).
fn free_udp_on(ip: &str) -> u16 {
    std::net::UdpSocket::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

// ----- SIPp message traces ---------------------------------------------------

/// One message of a SIPp trace.
#[derive(Debug, Clone)]
struct Traced {
    received: bool,
    /// Seconds since midnight, as SIPp stamped it.
    at: f64,
    text: String,
}

impl Traced {
    fn first_line(&self) -> &str {
        self.text.lines().next().unwrap_or("")
    }

    fn status(&self) -> Option<u16> {
        self.first_line()
            .strip_prefix("SIP/2.0 ")?
            .split(' ')
            .next()?
            .parse()
            .ok()
    }

    /// Every value of header `name` (case-insensitive), one per line.
    fn headers(&self, name: &str) -> Vec<String> {
        self.text
            .lines()
            .take_while(|l| !l.is_empty())
            .filter_map(|l| {
                let (n, v) = l.split_once(':')?;
                n.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| v.trim().to_owned())
            })
            .collect()
    }

    fn header(&self, name: &str) -> Option<String> {
        self.headers(name).into_iter().next()
    }
}

/// The messages SIPp traced to `path`, in order.
fn trace(path: &Path) -> Vec<Traced> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("SIPp trace {}: {e}", path.display()));
    let mut out: Vec<Traced> = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(l) = lines.next() {
        let Some(stamp) = l.strip_prefix("----------------------------------------------- ") else {
            continue;
        };
        let at = stamp
            .split_whitespace()
            .nth(1)
            .and_then(|t| {
                let mut p = t.split(':');
                let h: f64 = p.next()?.parse().ok()?;
                let m: f64 = p.next()?.parse().ok()?;
                let s: f64 = p.next()?.parse().ok()?;
                Some(h * 3600.0 + m * 60.0 + s)
            })
            .unwrap_or(0.0);
        let Some(kind) = lines.next() else { break };
        let received = kind.contains("message received");
        if !received && !kind.contains("message sent") {
            continue;
        }
        let mut msg = String::new();
        while let Some(l) = lines.peek() {
            if l.starts_with("-----------------------------------------------") {
                break;
            }
            msg.push_str(lines.next().unwrap_or(""));
            msg.push('\n');
        }
        out.push(Traced {
            received,
            at,
            text: msg.trim().to_owned() + "\n",
        });
    }
    out
}

fn responses(t: &[Traced]) -> Vec<Traced> {
    t.iter()
        .filter(|m| m.received && m.status().is_some())
        .cloned()
        .collect()
}

fn requests_received<'a>(t: &'a [Traced], method: &str) -> Vec<&'a Traced> {
    t.iter()
        .filter(|m| m.received && m.first_line().starts_with(&format!("{method} ")))
        .collect()
}

/// `b - a` in seconds for two SIPp stamps (seconds since midnight), across
/// midnight too.
fn seconds_between(a: f64, b: f64) -> f64 {
    let d = b - a;
    if d < -43_200.0 {
        d + 86_400.0
    } else if d > 43_200.0 {
        d - 86_400.0
    } else {
        d
    }
}

// ----- SIPp phones -------------------------------------------------------------

/// A SIPp phone: a loopback address of 127.0.1.0/24 and a port of its own.
struct Phone {
    ip: String,
    port: u16,
}

impl Phone {
    fn new(ip: &str) -> Phone {
        Phone {
            ip: ip.to_owned(),
            port: free_udp_on(ip),
        }
    }

    /// What it registers: `sip:alice@IP:PORT;transport=T`.
    fn contact(&self, transport: &str) -> String {
        format!(
            "<sip:{USER}@{}:{};transport={transport}>",
            self.ip, self.port
        )
    }

    /// Plays `sf` once toward `target` over SIPp transport `t`, with the
    /// message trace in `work/NAME.msg`; returns (exit ok, output, trace).
    fn play(
        &self,
        work: &Path,
        name: &str,
        t: &str,
        sf: &str,
        extra: &[&str],
        target: Option<SocketAddr>,
    ) -> (bool, String, Vec<Traced>) {
        let file = work.join(format!("{name}.msg"));
        let f = file.display().to_string();
        let mut args = vec!["-trace_msg", "-message_file", &f];
        args.extend_from_slice(extra);
        let c = sipp(t, &self.ip, work, sf, self.port, &args, target);
        let (ok, out) = sipp_result(c);
        let t = if file.exists() {
            trace(&file)
        } else {
            Vec::new()
        };
        (ok, out, t)
    }

    /// Starts `sf` (a phone waiting for calls) on the address it
    /// registered from; its trace goes to `work/NAME.msg`.
    fn wait_for_calls(
        &self,
        work: &Path,
        name: &str,
        sf: &str,
        extra: &[&str],
    ) -> (Child, PathBuf) {
        let file = work.join(format!("{name}.msg"));
        let f = file.display().to_string();
        let mut args = vec!["-s", USER, "-trace_msg", "-message_file", &f];
        args.extend_from_slice(extra);
        (sipp("u1", &self.ip, work, sf, self.port, &args, None), file)
    }

    /// Registers alice (phone-register.xml) for `expires` seconds.
    fn register(
        &self,
        work: &Path,
        name: &str,
        t: &str,
        expires: u32,
        to: Option<SocketAddr>,
    ) -> (bool, String, Vec<Traced>) {
        let e = expires.to_string();
        self.play(
            work,
            name,
            t,
            "phone-register.xml",
            &[
                "-s", USER, "-au", USER, "-ap", PASSWORD, "-key", "expires", &e,
            ],
            to,
        )
    }
}

/// A carrier call (SIPp, national number) through `d` to alice, answered
/// by `phone` (phone-answer.xml, 200 ms ringing): asserts both ends
/// completed and returns the phone's trace and the call's CDR.
fn carrier_calls_phone(
    d: &Daemon,
    carrier_port: u16,
    phone: &Phone,
    work: &Path,
    name: &str,
) -> (Vec<Traced>, serde_json::Value) {
    let (uas, file) = phone.wait_for_calls(work, name, "phone-answer.xml", &["-d", "200"]);
    std::thread::sleep(Duration::from_millis(300));
    let carrier = sipp_carrier(
        work,
        "carrier-uac.xml",
        carrier_port,
        &["-s", DIALLED, "-key", "caller", "0891234567", "-d", "1000"],
        d.listeners.udp,
    );
    let (cok, ctext) = sipp_result(carrier);
    let (pok, ptext) = sipp_result(uas);
    assert!(cok, "carrier ({name}):\n{ctext}\n{}", d.stderr());
    assert!(pok, "phone ({name}):\n{ptext}\n{}", d.stderr());
    let cdr = cdrs(d, 1).remove(0);
    (trace(&file), cdr)
}

/// The one 200 of a registration trace, and the time from the first
/// REGISTER to it (ms).
fn final_ok(t: &[Traced], what: &str) -> (Traced, f64) {
    let r = responses(t);
    let ok = r
        .iter()
        .rfind(|m| m.status() == Some(200))
        .unwrap_or_else(|| panic!("{what}: no 200 in {r:#?}"))
        .clone();
    let first = t.iter().find(|m| !m.received).map_or(ok.at, |m| m.at);
    (ok.clone(), seconds_between(first, ok.at) * 1000.0)
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// The 401 is one Digest challenge: MD5 (alice has only an MD5 HA1),
/// `qop="auth"`, our realm, an opaque.
fn assert_md5_challenge(m: &Traced) {
    assert_eq!(m.status(), Some(401), "{}", m.text);
    let c = m.headers("WWW-Authenticate");
    assert_eq!(c.len(), 1, "MD5 only for an MD5-only user: {c:?}");
    for part in [
        &format!("realm=\"{REALM}\"")[..],
        "algorithm=MD5",
        "qop=\"auth\"",
        "opaque=\"",
        "nonce=\"",
    ] {
        assert!(c[0].contains(part), "{part} in {}", c[0]);
    }
    assert!(!c[0].contains("stale"), "{}", c[0]);
}

fn nonce(challenge: &str) -> String {
    // `nonce=`, not the `cnonce=` of credentials.
    challenge
        .trim_start_matches("Digest")
        .split(',')
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| k.trim() == "nonce")
        .map(|(_, v)| v.trim().trim_matches('"').to_owned())
        .unwrap_or_default()
}

// ----- registration ---------------------------------------------------------------

#[test]
fn sipp_registers_with_digest_over_udp_and_tcp_and_unregisters() {
    let p = Ports::new();
    let d = Daemon::start("ph-reg", |c| config(c, &p, "store = \"memory\"", ""));
    let work = TempDir::new("ph-reg-work");
    let udp = Phone::new("127.0.1.1");
    let tcp = Phone::new("127.0.1.2");

    // UDP: 401 with an MD5 challenge, then 200 listing the Contact with
    // the expiry asked for.
    let (ok, out, t) = udp.register(&work.0, "udp", "u1", 120, d.listeners.udp);
    assert!(ok, "SIPp REGISTER over UDP:\n{out}\n{}", d.stderr());
    let r = responses(&t);
    assert_eq!(
        r.iter().map(|m| m.status()).collect::<Vec<_>>(),
        [Some(401), Some(200)]
    );
    assert_md5_challenge(&r[0]);
    let (ok200, ms) = final_ok(&t, "UDP");
    assert_eq!(
        ok200.headers("Contact"),
        [format!("{};expires=120", udp.contact("UDP"))]
    );
    eprintln!("phones: UDP registration (REGISTER, 401, REGISTER, 200) took {ms:.1} ms");

    // TCP, from another phone of the same user: both bindings listed.
    let (ok, out, t) = tcp.register(&work.0, "tcp", "t1", 300, d.listeners.tcp);
    assert!(ok, "SIPp REGISTER over TCP:\n{out}\n{}", d.stderr());
    let (ok200, ms) = final_ok(&t, "TCP");
    assert!(t
        .iter()
        .all(|m| !m.received || m.text.contains("SIP/2.0/TCP")));
    let contacts = ok200.headers("Contact");
    assert_eq!(contacts.len(), 2, "{contacts:?}");
    assert!(contacts.contains(&format!("{};expires=300", tcp.contact("TCP"))));
    let udp_left = contacts
        .iter()
        .find(|c| c.starts_with(&udp.contact("UDP")))
        .and_then(|c| c.rsplit("expires=").next())
        .and_then(|s| s.parse::<u32>().ok())
        .unwrap_or_else(|| panic!("the UDP binding with its time left: {contacts:?}"));
    assert!((100..=120).contains(&udp_left), "{contacts:?}");
    eprintln!("phones: TCP registration took {ms:.1} ms");

    // Expires below min_expires_s (60): 423 with Min-Expires, then the
    // scenario asks for that and gets it.
    let (ok, out, t) = udp.play(
        &work.0,
        "brief",
        "u1",
        "phone-register-brief.xml",
        &["-s", USER, "-au", USER, "-ap", PASSWORD],
        d.listeners.udp,
    );
    assert!(ok, "SIPp brief REGISTER:\n{out}\n{}", d.stderr());
    let r = responses(&t);
    assert_eq!(
        r.iter().map(|m| m.status()).collect::<Vec<_>>(),
        [Some(401), Some(423), Some(401), Some(200)]
    );
    assert_eq!(r[1].header("Min-Expires").as_deref(), Some("60"));
    assert!(r[1].headers("Contact").is_empty(), "nothing changed on 423");
    assert!(r[3]
        .headers("Contact")
        .contains(&format!("{};expires=60", udp.contact("UDP"))));

    // Unregister (Expires: 0): the 200 no longer lists the UDP Contact.
    let (ok, out, t) = udp.register(&work.0, "unreg-udp", "u1", 0, d.listeners.udp);
    assert!(ok, "SIPp unREGISTER:\n{out}\n{}", d.stderr());
    let (ok200, _) = final_ok(&t, "unregister UDP");
    let left = ok200.headers("Contact");
    assert_eq!(
        left.iter()
            .map(|c| c.split(';').next().unwrap_or(""))
            .collect::<Vec<_>>(),
        [format!("<sip:{USER}@{}:{}", tcp.ip, tcp.port)],
        "{left:?}"
    );
    let (ok, out, t) = tcp.register(&work.0, "unreg-tcp", "t1", 0, d.listeners.tcp);
    assert!(ok, "SIPp unREGISTER over TCP:\n{out}\n{}", d.stderr());
    let (ok200, _) = final_ok(&t, "unregister TCP");
    assert!(ok200.headers("Contact").is_empty(), "{}", ok200.text);

    // Nobody registered and nothing after the phones: the carrier gets 480.
    let sipp = sipp_carrier(
        &work.0,
        "carrier-uac-unavailable.xml",
        p.carrier,
        &["-s", DIALLED, "-key", "caller", "0891234567"],
        d.listeners.udp,
    );
    let (cok, ctext) = sipp_result(sipp);
    let cdr = cdrs(&d, 1);
    let (code, err) = d.stop();
    assert!(cok, "carrier, expecting 480:\n{ctext}\n{err}");
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(cdr.len(), 1, "{cdr:?}");
    assert_eq!(cdr[0]["status"], 480, "{}", cdr[0]);
    assert_eq!(cdr[0]["called"], NUMBER);
}

#[test]
fn an_expired_nonce_is_answered_401_with_stale_true() {
    let p = Ports::new();
    let d = Daemon::start("ph-stale", |c| {
        config(c, &p, "store = \"memory\"\nnonce_lifetime_s = 1", "")
    });
    let work = TempDir::new("ph-stale-work");
    let phone = Phone::new("127.0.1.1");
    let (ok, out, t) = phone.play(
        &work.0,
        "stale",
        "u1",
        "phone-register-stale.xml",
        &[
            "-s", USER, "-au", USER, "-ap", PASSWORD, "-key", "expires", "120", "-d", "2000",
        ],
        d.listeners.udp,
    );
    let (code, err) = d.stop();
    assert!(ok, "SIPp stale nonce:\n{out}\n{err}");
    assert_eq!(code, Some(0), "{err}");
    let r = responses(&t);
    assert_eq!(
        r.iter().map(|m| m.status()).collect::<Vec<_>>(),
        [Some(401), Some(200), Some(401), Some(200)]
    );
    assert_md5_challenge(&r[0]);
    // The credentials reused 2 s later (nonce-count 2) are correct but for
    // an expired nonce: stale=true and a new nonce, which then works.
    let sent: Vec<&Traced> = t.iter().filter(|m| !m.received).collect();
    assert!(sent[2].text.contains("nc=00000002"), "{}", sent[2].text);
    assert_eq!(
        nonce(&sent[2].header("Authorization").unwrap_or_default()),
        nonce(&r[0].headers("WWW-Authenticate")[0])
    );
    let again = r[2].headers("WWW-Authenticate");
    assert_eq!(again.len(), 1, "{again:?}");
    assert!(again[0].contains("stale=true"), "{}", again[0]);
    assert_ne!(
        nonce(&again[0]),
        nonce(&r[0].headers("WWW-Authenticate")[0])
    );
    assert_eq!(
        r[3].headers("Contact"),
        [format!("{};expires=120", phone.contact("UDP"))]
    );
}

#[test]
fn wrong_passwords_get_401_until_the_source_is_blocked_and_another_source_registers() {
    for action in ["forbidden", "drop"] {
        let p = Ports::new();
        let d = Daemon::start("ph-block", |c| {
            config(
                c,
                &p,
                "store = \"memory\"",
                &format!(
                    "max_failures_per_ip = 3\nmax_failures_per_user = 10\nblock_s = 60\naction = \"{action}\""
                ),
            )
        });
        let work = TempDir::new("ph-block-work");
        let scanner = Phone::new("127.0.1.66");
        // Three wrong answers, each refused with a fresh challenge.
        let (ok, out, t) = scanner.play(
            &work.0,
            "wrong",
            "u1",
            "phone-register-wrong.xml",
            &[
                "-s", USER, "-au", USER, "-ap", "wrong", "-key", "expires", "120",
            ],
            d.listeners.udp,
        );
        assert!(ok, "{action}: SIPp wrong password:\n{out}\n{}", d.stderr());
        let r = responses(&t);
        assert_eq!(r.len(), 4, "{r:#?}");
        let mut nonces = Vec::new();
        for m in &r {
            assert_md5_challenge(m);
            nonces.push(nonce(&m.headers("WWW-Authenticate")[0]));
        }
        nonces.sort();
        nonces.dedup();
        assert_eq!(nonces.len(), 4, "a fresh nonce with every 401");
        // Now blocked: 403 at once, or nothing at all.
        let sf = if action == "forbidden" {
            "phone-register-forbidden.xml"
        } else {
            "phone-register-dropped.xml"
        };
        let (ok, out, t) = scanner.play(
            &work.0,
            "blocked",
            "u1",
            sf,
            &["-s", USER, "-key", "expires", "120"],
            d.listeners.udp,
        );
        assert!(ok, "{action}: the blocked source:\n{out}\n{}", d.stderr());
        let r = responses(&t);
        if action == "forbidden" {
            assert_eq!(r.len(), 1, "{r:#?}");
            assert_eq!(r[0].status(), Some(403));
            assert!(r[0].headers("WWW-Authenticate").is_empty());
        } else {
            assert!(r.is_empty(), "no answer to a blocked source: {r:#?}");
            let sent = t.iter().filter(|m| !m.received).count();
            assert!(sent >= 2, "SIPp retransmitted into the silence: {sent}");
        }
        // The real phone, from another address, registers as usual.
        let phone = Phone::new("127.0.1.67");
        let (ok, out, t) = phone.register(&work.0, "real", "u1", 120, d.listeners.udp);
        let (code, err) = d.stop();
        assert!(ok, "{action}: the real phone:\n{out}\n{err}");
        assert_eq!(code, Some(0), "{err}");
        let (ok200, _) = final_ok(&t, "real phone");
        assert_eq!(
            ok200.headers("Contact"),
            [format!("{};expires=120", phone.contact("UDP"))]
        );
    }
}

// ----- forking -----------------------------------------------------------------------

#[test]
fn three_phones_of_one_user_ring_at_once_and_the_first_to_answer_wins() {
    let p = Ports::new();
    let d = Daemon::start("ph-fork", |c| config(c, &p, "store = \"memory\"", ""));
    let work = TempDir::new("ph-fork-work");
    let phones = [
        Phone::new("127.0.1.1"),
        Phone::new("127.0.1.2"),
        Phone::new("127.0.1.3"),
    ];
    // Three registrations, each its own SIPp (Call-ID, Contact, source
    // port); the last 200 lists all three.
    let mut last = None;
    for (i, ph) in phones.iter().enumerate() {
        let (ok, out, t) = ph.register(&work.0, &format!("reg{i}"), "u1", 120, d.listeners.udp);
        assert!(ok, "registration {i}:\n{out}\n{}", d.stderr());
        last = Some(final_ok(&t, "registration").0);
    }
    let call_ids: Vec<String> = (0..3)
        .map(|i| {
            let t = trace(&work.0.join(format!("reg{i}.msg")));
            t[0].header("Call-ID").unwrap_or_default()
        })
        .collect();
    let mut distinct = call_ids.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 3, "{call_ids:?}");
    let listed: Vec<String> = last
        .unwrap()
        .headers("Contact")
        .iter()
        .map(|c| c.split(";expires=").next().unwrap_or("").to_owned())
        .collect();
    assert_eq!(
        sorted(listed),
        sorted(phones.iter().map(|ph| ph.contact("UDP")).collect())
    );

    // The carrier calls alice: all three ring; the middle one answers after
    // 1 s of ringing, the others are cancelled.
    let (c0, f0) = phones[0].wait_for_calls(&work.0, "uas0", "phone-ring-cancel.xml", &[]);
    let (c1, f1) = phones[1].wait_for_calls(&work.0, "uas1", "phone-answer.xml", &["-d", "1000"]);
    let (c2, f2) = phones[2].wait_for_calls(&work.0, "uas2", "phone-ring-cancel.xml", &[]);
    std::thread::sleep(Duration::from_millis(300));
    let carrier = sipp_carrier(
        &work.0,
        "carrier-uac.xml",
        p.carrier,
        &["-s", DIALLED, "-key", "caller", "0891234567", "-d", "1500"],
        d.listeners.udp,
    );
    let (cok, ctext) = sipp_result(carrier);
    let results = [sipp_result(c0), sipp_result(c1), sipp_result(c2)];
    let cdr = cdrs(&d, 1);
    let (code, err) = d.stop();
    assert!(cok, "carrier:\n{ctext}\n{err}");
    for (i, (ok, out)) in results.iter().enumerate() {
        assert!(ok, "phone {i}:\n{out}\n{err}");
    }
    assert_eq!(code, Some(0), "{err}");
    let t = [trace(&f0), trace(&f1), trace(&f2)];
    for (i, tr) in t.iter().enumerate() {
        assert_eq!(requests_received(tr, "INVITE").len(), 1, "phone {i}");
        let cancels = requests_received(tr, "CANCEL").len();
        assert_eq!(cancels, usize::from(i != 1), "phone {i} CANCEL");
        assert_eq!(requests_received(tr, "BYE").len(), usize::from(i == 1));
    }
    // Each INVITE went to the Contact registered from that address.
    for (ph, tr) in phones.iter().zip(&t) {
        let inv = requests_received(tr, "INVITE")[0];
        assert!(
            inv.first_line()
                .starts_with(&format!("INVITE sip:{USER}@{}:{}", ph.ip, ph.port)),
            "{}",
            inv.first_line()
        );
    }
    let invites: Vec<f64> = t
        .iter()
        .map(|tr| requests_received(tr, "INVITE")[0].at)
        .collect();
    let first = invites.iter().cloned().fold(f64::MAX, f64::min);
    let spread = invites
        .iter()
        .map(|a| seconds_between(first, *a) * 1000.0)
        .fold(0.0, f64::max);
    let answered = t[1]
        .iter()
        .find(|m| !m.received && m.status() == Some(200))
        .map(|m| m.at)
        .unwrap_or(0.0);
    let cancel_after: Vec<f64> = [&t[0], &t[2]]
        .iter()
        .map(|tr| seconds_between(answered, requests_received(tr, "CANCEL")[0].at) * 1000.0)
        .collect();
    eprintln!(
        "phones: fork: 3 INVITEs within {spread:.1} ms; CANCELs {:.1} / {:.1} ms after the 200",
        cancel_after[0], cancel_after[1]
    );
    assert!(spread < 500.0, "all ring at once: {spread} ms");
    // Stamped by two SIPp processes: the CANCEL (sent once the SBC has the
    // 200) may carry a stamp a fraction of a millisecond before the 200's.
    assert!(
        cancel_after.iter().all(|ms| (-5.0..2000.0).contains(ms)),
        "{cancel_after:?}"
    );
    let c = &cdr[0];
    assert_eq!(c["status"], 200, "{c}");
    assert_eq!(
        (c["from_trunk"].as_str(), c["to_trunk"].as_str()),
        (Some("carrier"), Some("phones"))
    );
    assert_eq!(c["called"], NUMBER);
    let mut outcomes: Vec<(String, String)> = path(c)
        .into_iter()
        .map(|(trunk, peer, outcome)| {
            assert_eq!(trunk, "phones");
            (peer, outcome)
        })
        .collect();
    outcomes.sort();
    let peer = |ph: &Phone| format!("sip:{USER}@{}:{};transport=UDP", ph.ip, ph.port);
    assert_eq!(
        outcomes,
        [
            (peer(&phones[0]), "answered elsewhere".to_owned()),
            (peer(&phones[1]), "answered".to_owned()),
            (peer(&phones[2]), "answered elsewhere".to_owned()),
        ],
        "{c}"
    );
}

// ----- restart ---------------------------------------------------------------------

#[test]
fn registrations_survive_a_restart_with_the_redb_store() {
    let p = Ports::new();
    let state = TempDir::new("ph-restart-state");
    let users = state.0.join("users.toml");
    std::fs::write(&users, USERS).unwrap();
    let data = state.0.join("data");
    let phones = format!(
        "users = {:?}\ndata_dir = {:?}",
        users.display().to_string(),
        data.display().to_string()
    );
    let work = TempDir::new("ph-restart-work");
    let phone = Phone::new("127.0.1.1");

    let d = Daemon::start("ph-restart-1", |c| config(c, &p, &phones, ""));
    let (ok, out, t) = phone.register(&work.0, "reg", "u1", 300, d.listeners.udp);
    assert!(ok, "registration:\n{out}\n{}", d.stderr());
    final_ok(&t, "registration");
    let (code, err) = d.stop();
    assert_eq!(code, Some(0), "{err}");
    assert!(data.join("registrations.redb").exists(), "{err}");

    // The same config again: the binding comes back from the file, and the
    // carrier's call reaches the phone, which sends no REGISTER.
    let d = Daemon::start("ph-restart-2", |c| config(c, &p, &phones, ""));
    assert!(
        wait_log(&d, "registrations restored", Duration::from_secs(5)),
        "{}",
        d.stderr()
    );
    assert!(d.stderr().contains("bindings=1"), "{}", d.stderr());
    let (t, c) = carrier_calls_phone(&d, p.carrier, &phone, &work.0, "uas");
    let (code, err) = d.stop();
    assert_eq!(code, Some(0), "{err}");
    assert!(t.iter().all(|m| !m.first_line().starts_with("REGISTER")));
    assert_eq!(requests_received(&t, "INVITE").len(), 1);
    let c = &c;
    assert_eq!(c["status"], 200, "{c}");
    assert_eq!(c["to_trunk"], "phones", "{c}");
    assert_eq!(
        path(c),
        [hop(
            "phones",
            &format!("sip:{USER}@{}:{};transport=UDP", phone.ip, phone.port),
            "answered"
        )]
    );
    eprintln!(
        "phones: after the restart the phone answered in {} ms (200 ms ringing)",
        answer_ms(c)
    );
}

// ----- baresip ---------------------------------------------------------------------

/// A running baresip 1.0 with its control socket (module ctrl_tcp:
/// netstring JSON commands and events).
struct Baresip {
    child: Child,
    ctrl: TcpStream,
    buf: Vec<u8>,
    events: Vec<serde_json::Value>,
    log: PathBuf,
}

impl Baresip {
    /// Starts baresip with its config in `dir`: SIP on `sip` (UDP), RTP in
    /// a port range of its own, a 440 Hz sine as microphone, a bridge as
    /// loudspeaker, the account `account`; waits for its control socket.
    fn start(dir: &Path, sip: SocketAddr, account: &str) -> Baresip {
        let conf = dir.join("baresip");
        std::fs::create_dir_all(&conf).unwrap();
        let ctrl_port = free_tcp();
        let rtp = sipp_media_port();
        std::fs::write(
            conf.join("config"),
            format!(
                "poll_method\tepoll\nsip_listen\t{sip}\ncall_local_timeout\t30\ncall_max_calls\t2\n\
                 audio_player\taubridge,speaker\naudio_source\tausine,440\naudio_alert\taubridge,alert\n\
                 ausrc_srate\t48000\nausrc_channels\t2\nrtp_ports\t{rtp}-{}\nrtcp_mux\tno\n\
                 module_path\t/usr/lib/baresip/modules\nmodule\tg711.so\nmodule\tausine.so\n\
                 module\taubridge.so\nmodule\tctrl_tcp.so\nmodule_tmp\taccount.so\n\
                 module_app\tmenu.so\nctrl_tcp_listen\t127.0.0.1:{ctrl_port}\n",
                rtp + 8
            ),
        )
        .unwrap();
        std::fs::write(conf.join("accounts"), format!("{account}\n")).unwrap();
        let log = dir.join("baresip.log");
        // Bounded by baresip itself (-t: quit after 120 s), so that killing
        // the child on a failed test kills baresip, not a wrapper.
        let child = Command::new("baresip")
            .arg("-f")
            .arg(&conf)
            .args(["-s", "-t", "120"])
            .stdin(Stdio::null())
            .stdout(Stdio::from(std::fs::File::create(&log).unwrap()))
            .stderr(Stdio::from(
                std::fs::File::create(dir.join("baresip.err")).unwrap(),
            ))
            .spawn()
            .expect("baresip (Debian baresip 1.0) must be installed: scripts/test installs it");
        let deadline = Instant::now() + Duration::from_secs(10);
        let ctrl = loop {
            match TcpStream::connect(("127.0.0.1", ctrl_port)) {
                Ok(s) => break s,
                Err(e) if Instant::now() > deadline => {
                    panic!(
                        "baresip's control socket: {e}\n{}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    )
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        };
        ctrl.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        Baresip {
            child,
            ctrl,
            buf: Vec::new(),
            events: Vec::new(),
            log,
        }
    }

    fn command(&mut self, command: &str, params: &str) {
        let j = serde_json::json!({ "command": command, "params": params, "token": command })
            .to_string();
        let frame = format!("{}:{j},", j.len());
        self.ctrl.write_all(frame.as_bytes()).unwrap();
    }

    /// Reads what arrived on the control socket (at most 100 ms).
    fn pump(&mut self) {
        let mut chunk = [0u8; 4096];
        if let Ok(n) = self.ctrl.read(&mut chunk) {
            self.buf.extend_from_slice(&chunk[..n]);
        }
        // Netstrings: LEN ":" JSON ",".
        loop {
            let Some(colon) = self.buf.iter().position(|b| *b == b':') else {
                return;
            };
            let Some(len) = std::str::from_utf8(&self.buf[..colon])
                .ok()
                .and_then(|s| s.parse::<usize>().ok())
            else {
                panic!("baresip control: bad netstring {:?}", self.buf);
            };
            if self.buf.len() < colon + 1 + len + 1 {
                return;
            }
            let body = self.buf[colon + 1..colon + 1 + len].to_vec();
            self.buf.drain(..colon + 1 + len + 1);
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body) {
                self.events.push(v);
            }
        }
    }

    /// Waits (bounded) for an event of type `kind` at index `from` or
    /// later; returns its index.
    fn wait(&mut self, kind: &str, from: usize, within: Duration) -> Option<usize> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(i) = self
                .events
                .iter()
                .enumerate()
                .skip(from)
                .find(|(_, e)| e["type"] == kind)
                .map(|(i, _)| i)
            {
                return Some(i);
            }
            if Instant::now() > deadline {
                return None;
            }
            self.pump();
        }
    }

    fn sip_log(&self) -> String {
        // Its SIP trace (-s) is coloured for a terminal.
        let raw = std::fs::read_to_string(&self.log).unwrap_or_default();
        let mut out = String::with_capacity(raw.len());
        let mut chars = raw.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '\u{1b}' {
                for n in chars.by_ref() {
                    if n.is_ascii_alphabetic() {
                        break;
                    }
                }
            } else {
                out.push(c);
            }
        }
        out
    }

    fn types(&self) -> Vec<String> {
        self.events
            .iter()
            .filter_map(|e| e["type"].as_str().map(str::to_owned))
            .collect()
    }

    /// `quit` (it unregisters), then waits (bounded) for it to exit.
    fn quit(mut self) {
        self.command("quit", "");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Baresip {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[test]
fn baresip_registers_answers_a_carrier_call_with_audio_and_calls_out_through_407() {
    let p = Ports::new();
    let d = Daemon::start("ph-baresip", |c| config(c, &p, "store = \"memory\"", ""));
    let work = TempDir::new("ph-baresip-work");
    let sbc = d.listeners.udp.unwrap();
    let sip: SocketAddr = format!("127.0.1.10:{}", free_udp_on("127.0.1.10"))
        .parse()
        .unwrap();
    let started = Instant::now();
    let mut b = Baresip::start(
        &work.0,
        sip,
        &format!(
            "<sip:{USER}@{sbc}>;auth_pass={PASSWORD};regint=120;answermode=auto;audio_codecs=PCMA,PCMU"
        ),
    );
    // The REGISTER_OK event may come before the control connection: its
    // console line says the same.
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline
        && !b.sip_log().contains("{0/UDP/v4} 200 OK")
        && !b.types().iter().any(|t| t == "REGISTER_OK")
    {
        b.pump();
    }
    assert!(
        b.sip_log()
            .contains(&format!("{USER}@127.0.0.1: {{0/UDP/v4}} 200 OK")),
        "baresip did not register: {:?}\n{}\n{}",
        b.types(),
        b.sip_log(),
        d.stderr()
    );
    eprintln!(
        "phones: baresip registered {} ms after its start",
        started.elapsed().as_millis()
    );
    let log = b.sip_log();
    assert!(log.contains("SIP/2.0 401 Unauthorized"), "{log}");
    assert!(
        log.contains("Authorization: Digest username=\"alice\""),
        "{log}"
    );

    // 1. The carrier calls alice: baresip answers by itself, RTP both ways
    //    (its sine through the SBC to SIPp, echoed back to it), the
    //    carrier's BYE ends it.
    let mark = b.events.len();
    let carrier = sipp_carrier(
        &work.0,
        "carrier-uac.xml",
        p.carrier,
        &["-s", DIALLED, "-key", "caller", "0891234567", "-d", "3000"],
        Some(sbc),
    );
    let (cok, ctext) = sipp_result(carrier);
    let closed = b.wait("CALL_CLOSED", mark, Duration::from_secs(10));
    let cdr = cdrs(&d, 1);
    assert!(cok, "carrier calling baresip:\n{ctext}\n{}", d.stderr());
    assert!(closed.is_some(), "{:?}", b.types());
    let seen = b.types()[mark..].to_vec();
    // CALL_RTPESTAB: RTP arrived at baresip (the SIPp carrier's echo of
    // its own audio, through the SBC both ways).
    for e in ["CALL_ESTABLISHED", "CALL_RTPESTAB", "CALL_CLOSED"] {
        assert!(seen.iter().any(|t| t == e), "{e} in {seen:?}");
    }
    let est = b
        .wait("CALL_ESTABLISHED", mark, Duration::ZERO)
        .unwrap_or(0);
    assert_eq!(b.events[est]["direction"], "incoming", "{}", b.events[est]);
    let c = &cdr[0];
    assert_eq!(c["status"], 200, "{c}");
    assert_eq!(
        (c["from_trunk"].as_str(), c["to_trunk"].as_str()),
        (Some("carrier"), Some("phones"))
    );
    assert_eq!(c["ended_by"], "caller", "{c}");
    let pk: Vec<u64> = c["packets"]
        .as_array()
        .map(|a| a.iter().map(|x| x.as_u64().unwrap_or(0)).collect())
        .unwrap_or_default();
    assert!(
        pk.len() == 2 && pk.iter().all(|n| *n >= 100),
        "about 150 packets each way in 3 s: {c}"
    );
    eprintln!(
        "phones: carrier call to baresip answered in {} ms, packets {pk:?}",
        answer_ms(c)
    );

    // 2. baresip calls out: the SBC challenges the INVITE (407, MD5 only,
    //    like the REGISTER), baresip answers it, the call reaches the
    //    carrier as alice's number; baresip hangs up.
    let uas = sipp_carrier(&work.0, "carrier-uas.xml", p.carrier, &[], None);
    std::thread::sleep(Duration::from_millis(300));
    let mark = b.events.len();
    b.command("dial", &format!("sip:+49891234567@{sbc}"));
    let up = b.wait("CALL_ESTABLISHED", mark, Duration::from_secs(10));
    assert!(up.is_some(), "{:?}\n{}", b.types(), b.sip_log());
    std::thread::sleep(Duration::from_secs(2));
    b.command("hangup", "");
    let closed = b.wait("CALL_CLOSED", mark, Duration::from_secs(10));
    let (uok, utext) = sipp_result(uas);
    let cdr = cdrs(&d, 2);
    let log = b.sip_log();
    b.quit();
    let (code, err) = d.stop();
    assert!(closed.is_some(), "{log}");
    assert!(uok, "carrier called by baresip:\n{utext}\n{err}");
    assert_eq!(code, Some(0), "{err}");
    let challenge = log
        .split("SIP/2.0 407 Proxy Authentication Required")
        .nth(1)
        .unwrap_or_else(|| panic!("no 407 to baresip's INVITE:\n{log}"));
    let pa: Vec<&str> = challenge
        .lines()
        .skip(1) // the rest of the status line
        .take_while(|l| !l.trim().is_empty())
        .filter(|l| l.starts_with("Proxy-Authenticate:"))
        .collect();
    assert_eq!(pa.len(), 1, "{pa:?}");
    assert!(pa[0].contains("algorithm=MD5"), "{}", pa[0]);
    assert!(
        log.contains("Proxy-Authorization: Digest username=\"alice\""),
        "{log}"
    );
    let c = &cdr[1];
    assert_eq!(c["status"], 200, "{c}");
    assert_eq!(
        (c["from_trunk"].as_str(), c["to_trunk"].as_str()),
        (Some("phones"), Some("carrier"))
    );
    assert_eq!(
        c["calling"], NUMBER,
        "the user's number, not its username: {c}"
    );
    assert_eq!(c["called"], "+49891234567");
    assert_eq!(c["ended_by"], "caller", "{c}");
    let pk: Vec<u64> = c["packets"]
        .as_array()
        .map(|a| a.iter().map(|x| x.as_u64().unwrap_or(0)).collect())
        .unwrap_or_default();
    assert!(pk.len() == 2 && pk.iter().all(|n| *n >= 50), "{c}");
    eprintln!(
        "phones: baresip's call (INVITE, 407, INVITE) answered by the carrier in {} ms, packets {pk:?}",
        answer_ms(c)
    );
}

// ----- registrations shared by two SBCs (Redis) -----------------------------------

/// A redis-server of our own on a free loopback port, in a temp dir,
/// without persistence; killed on drop.
struct Redis {
    child: Child,
    port: u16,
    _dir: TempDir,
}

impl Redis {
    fn start() -> Redis {
        let dir = TempDir::new("ph-redis");
        let port = free_tcp();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&dir.0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (Debian package redis-server; scripts/test installs it)");
        let r = Redis {
            child,
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
                let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
                let mut buf = [0u8; 16];
                if s.write_all(b"PING\r\n").is_ok()
                    && s.read(&mut buf)
                        .is_ok_and(|n| buf[..n].starts_with(b"+PONG"))
                {
                    return r;
                }
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer PING on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_phone_registered_at_sbc_a_takes_a_call_that_arrives_at_sbc_b() {
    let redis = Redis::start();
    let state = TempDir::new("ph-shared-state");
    let users = state.0.join("users.toml");
    std::fs::write(&users, USERS).unwrap();
    let phones = format!(
        "users = {:?}\nstore = {:?}",
        users.display().to_string(),
        redis.url()
    );
    let (pa, pb) = (Ports::new(), Ports::new());
    let a = Daemon::start("ph-shared-a", |c| config(c, &pa, &phones, ""));
    let b = Daemon::start("ph-shared-b", |c| config(c, &pb, &phones, ""));
    let work = TempDir::new("ph-shared-work");
    let phone = Phone::new("127.0.1.7");

    // The phone registers with A only.
    let (ok, out, t) = phone.register(&work.0, "reg", "u1", 300, a.listeners.udp);
    assert!(ok, "registration at A:\n{out}\n{}", a.stderr());
    let (_, reg_ms) = final_ok(&t, "registration at A");
    // B learns it through Redis (pub/sub); the carrier calls B right after
    // (0.3 s); the phone answers on the address it registered from.
    let (t, c) = carrier_calls_phone(&b, pb.carrier, &phone, &work.0, "uas");
    let (code_b, err_b) = b.stop();
    let (code_a, err_a) = a.stop();
    assert_eq!((code_a, code_b), (Some(0), Some(0)), "{err_a}\n{err_b}");
    // The INVITE came from B, not through A.
    assert_eq!(requests_received(&t, "INVITE").len(), 1);
    let c = &c;
    assert_eq!(c["status"], 200, "{c}");
    assert_eq!(c["to_trunk"], "phones", "{c}");
    assert!(
        err_a.contains(" calls=0 answered=0 "),
        "A saw no call:\n{err_a}"
    );
    eprintln!(
        "phones: registered at A in {reg_ms:.1} ms; a carrier call at B 0.3 s later reached the phone, answered in {} ms",
        answer_ms(c)
    );
}

#[test]
fn a_phone_registered_with_three_sbcs_is_reached_through_each_and_survives_one_dying() {
    let state = TempDir::new("ph-three-state");
    let users = state.0.join("users.toml");
    std::fs::write(&users, USERS).unwrap();
    let phones = format!(
        "users = {:?}\nstore = \"memory\"",
        users.display().to_string()
    );
    let ports = [Ports::new(), Ports::new(), Ports::new()];
    let mut sbcs: Vec<Option<Daemon>> = ports
        .iter()
        .enumerate()
        .map(|(i, p)| {
            Some(Daemon::start(&format!("ph-three-{i}"), |c| {
                config(c, p, &phones, "")
            }))
        })
        .collect();
    let work = TempDir::new("ph-three-work");
    let phone = Phone::new("127.0.1.9");
    // Primary, backup and on-prem: each its own REGISTER (own Call-ID).
    let mut call_ids = Vec::new();
    for (i, d) in sbcs.iter().enumerate() {
        let d = d.as_ref().unwrap();
        let (ok, out, t) = phone.register(&work.0, &format!("reg{i}"), "u1", 300, d.listeners.udp);
        assert!(ok, "registration with SBC {i}:\n{out}\n{}", d.stderr());
        let (ok200, _) = final_ok(&t, "registration");
        call_ids.push(ok200.header("Call-ID").unwrap_or_default());
    }
    call_ids.sort();
    call_ids.dedup();
    assert_eq!(call_ids.len(), 3, "three independent registrations");
    // The primary dies; the backup and the on-prem SBC still reach the phone.
    let (code, err) = sbcs[0].take().unwrap().stop();
    assert_eq!(code, Some(0), "{err}");
    for i in [1, 2] {
        let d = sbcs[i].as_ref().unwrap();
        let (t, c) = carrier_calls_phone(d, ports[i].carrier, &phone, &work.0, &format!("uas{i}"));
        assert_eq!(requests_received(&t, "INVITE").len(), 1);
        assert_eq!(
            (c["status"].as_u64(), c["to_trunk"].as_str()),
            (Some(200), Some("phones")),
            "{c}"
        );
    }
    for d in sbcs.iter_mut().filter_map(Option::take) {
        let (code, err) = d.stop();
        assert_eq!(code, Some(0), "{err}");
    }
}

#[test]
fn sighup_reloads_the_users_file_and_keeps_the_registrations() {
    let p = Ports::new();
    let state = TempDir::new("ph-reload-state");
    let users = state.0.join("users.toml");
    // At first only bob is a user; alice is not.
    let bob = "[[user]]\nnumber = \"+4930999\"\nusername = \"bob\"\nha1_md5 = \"00000000000000000000000000000000\"\n";
    std::fs::write(&users, bob).unwrap();
    let phones = format!(
        "users = {:?}\nstore = \"memory\"",
        users.display().to_string()
    );
    let d = Daemon::start("ph-reload", |c| config(c, &p, &phones, ""));
    let work = TempDir::new("ph-reload-work");
    let phone = Phone::new("127.0.1.11");
    let (_, _, t) = phone.register(&work.0, "before", "u1", 300, d.listeners.udp);
    assert!(
        responses(&t).iter().all(|m| m.status() != Some(200)),
        "alice is not a user yet: {:?}",
        responses(&t)
            .iter()
            .map(Traced::first_line)
            .collect::<Vec<_>>()
    );
    // alice is added; SIGHUP; she registers without a restart.
    std::fs::write(&users, format!("{bob}\n{USERS}")).unwrap();
    d.signal("HUP");
    assert!(
        wait_log(&d, "configuration reloaded", Duration::from_secs(5)),
        "{}",
        d.stderr()
    );
    let (ok, out, t) = phone.register(&work.0, "after", "u1", 300, d.listeners.udp);
    assert!(ok, "after the reload:\n{out}\n{}", d.stderr());
    final_ok(&t, "registration after the reload");
    // A broken users file is refused; alice's registration and the old
    // users stay.
    std::fs::write(&users, "[[user]]\nnumber = \"not a number\"\n").unwrap();
    d.signal("HUP");
    assert!(
        wait_log(&d, "configuration reload refused", Duration::from_secs(5)),
        "{}",
        d.stderr()
    );
    let (t, c) = carrier_calls_phone(&d, p.carrier, &phone, &work.0, "uas");
    assert_eq!(requests_received(&t, "INVITE").len(), 1);
    assert_eq!(c["status"], 200, "{c}");
    let (code, err) = d.stop();
    assert_eq!(code, Some(0), "{err}");
}
