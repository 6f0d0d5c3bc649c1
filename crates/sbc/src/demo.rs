//! `sbc demo`: the SBC and its three neighbours in one process, on loopback.
//!
//! The daemon of `sbc run` is started on the embedded default configuration
//! (`sbc-config/demo.toml`) next to three simulated peers written with the
//! same crates the SBC uses (`sip` to build and parse messages, `sdp` to read
//! descriptions, `media` for RTP and SRTP):
//!
//! * a **carrier** on UDP 127.0.0.1:5070, plain RTP, national numbers;
//! * **Teams** Direct Routing: the proxy `sip.pstnhub.microsoft.com` on
//!   127.0.0.1:25061 (mutual TLS with `certs/dev/microsoft.pem`, the SBC must
//!   present `teams.sbc.example.test`); `sip2`/`sip3` (25062/25063) are left
//!   unanswered so that the SBC's health checks find them down;
//! * **ACS** Direct Routing: `sip.pstnhub.microsoft.com` on 127.0.0.1:25071
//!   (the SBC must present `acs.sbc.example.test`).
//!
//! A script then walks through the flows a newcomer should know — OPTIONS
//! health, a call each way with audio, a REFER transfer and a failover to
//! ACS — and prints one short line per thing that happened. Every wait is
//! bounded; the demo stops the daemon itself and fails with the reason when
//! any check does.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use b2bua::{Cdr, Output};
use bytes::Bytes;
use media::{CryptoAttribute, RtpHeader, SrtpContext, SrtpProfile};
use sip::{Contact, Frame, Message, StreamFramer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{sleep, timeout, Instant};
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{ClientConfig, ServerConfig};
use tokio_rustls::{TlsAcceptor, TlsConnector};
use transport::tls::{cert_dns_names, client_config, server_config};
use transport::{IdentityFiles, TlsProfile};

use crate::config;
use crate::daemon::{self, Hooks};

/// Where the embedded configuration puts the SBC and its peers.
const SBC_UDP: &str = "127.0.0.1:5060";
const SBC_TLS: &str = "127.0.0.1:5061";
const CARRIER: &str = "127.0.0.1:5070";
/// The Microsoft proxies of each trunk and where the demo config puts
/// them; only the first (sip) is simulated, sip2 and sip3 stay silent.
const TEAMS_PEERS: [(&str, &str); 3] = [
    ("sip.pstnhub.microsoft.com", "127.0.0.1:25061"),
    ("sip2.pstnhub.microsoft.com", "127.0.0.1:25062"),
    ("sip3.pstnhub.microsoft.com", "127.0.0.1:25063"),
];
const ACS_PEERS: [(&str, &str); 3] = [
    ("sip.pstnhub.microsoft.com", "127.0.0.1:25071"),
    ("sip2.pstnhub.microsoft.com", "127.0.0.1:25072"),
    ("sip3.pstnhub.microsoft.com", "127.0.0.1:25073"),
];

const TEAMS_FQDN: &str = "teams.sbc.example.test";
const ACS_FQDN: &str = "acs.sbc.example.test";
const MS_PROXY: &str = "sip.pstnhub.microsoft.com";
const MS_AGENT: &str = "Microsoft.PSTNHub.SIPProxy (simulated by sbc demo)";
const MS_ALLOW: &str = "INVITE,ACK,OPTIONS,CANCEL,BYE,NOTIFY";
const CARRIER_AGENT: &str = "carrier (simulated by sbc demo)";
const SUITE: &str = "AES_CM_128_HMAC_SHA1_80";

/// The longest any single wait may take.
const WAIT: Duration = Duration::from_secs(10);
/// Audio per call: 20 ms packets for about 1.5 s.
const PACKETS: u32 = 75;

type Result<T, E = String> = std::result::Result<T, E>;

/// `sbc demo`: generates the development certificates if needed, then runs
/// the daemon and the script on one runtime.
pub(crate) fn run() -> Result<()> {
    let dir = std::path::Path::new(config::DEMO_CERT_DIR);
    let complete = ["sbc", "teams", "acs", "microsoft", "client"]
        .iter()
        .all(|n| dir.join(format!("{n}.pem")).exists());
    if !complete {
        println!(
            "sbc demo: generating development certificates into {}",
            dir.display()
        );
        crate::dev_certs(
            dir,
            &["sbc.example.test".to_owned(), "localhost".to_owned()],
        )?;
    }
    let loaded = config::parse(config::DEMO, "<embedded sbc-config/demo.toml>")
        .map_err(|e| e.to_string())?;
    // Quiet by default so that the narrative reads well (the refused
    // connections to sip2/sip3 are expected); RUST_LOG=info shows the daemon's log.
    crate::init_logging("error");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    rt.block_on(demo(loaded, dir))
}

async fn demo(cfg: config::Loaded, certs: &std::path::Path) -> Result<()> {
    let started = Instant::now();
    println!("sbc demo: the SBC on sbc-config/demo.toml, with a simulated carrier, Teams and ACS on loopback");
    // The neighbours start first: the SBC sends its first OPTIONS at start.
    let tls = MicrosoftTls::load(certs)?;
    let (carrier, carrier_link) = Endpoint::carrier(CARRIER).await?;
    let teams = Endpoint::microsoft("Teams", TEAMS_PEERS[0].1, TEAMS_FQDN, &tls).await?;
    let acs = Endpoint::microsoft("ACS", ACS_PEERS[0].1, ACS_FQDN, &tls).await?;

    let (stop_tx, stop_rx) = oneshot::channel();
    let (out_tx, out_rx) = mpsc::unbounded_channel();
    let (ready_tx, ready_rx) = oneshot::channel();
    let daemon = daemon::serve(
        cfg,
        Hooks {
            stop: Some(stop_rx),
            outputs: Some(out_tx),
            ready: Some(ready_tx),
        },
    );
    tokio::pin!(daemon);
    let mut script = Script {
        carrier,
        carrier_link,
        teams,
        acs,
        sbc: Sbc {
            outputs: out_rx,
            health: Vec::new(),
        },
        tls_to_sbc: tls.client,
    };
    let steps = async {
        timeout(WAIT, ready_rx)
            .await
            .map_err(|_| "the SBC did not start listening".to_owned())?
            .map_err(|_| "the SBC stopped before listening".to_owned())?;
        script.all().await
    };
    let (result, stopped) = tokio::select! {
        r = &mut daemon => (Err(format!("the SBC stopped by itself: {}", r.err().unwrap_or_default())), true),
        r = steps => (r, false),
    };
    if !stopped {
        // Drain and stop the daemon, as SIGTERM would: every call has ended.
        let _ = stop_tx.send(());
        match timeout(WAIT, &mut daemon).await {
            Ok(Ok(())) => println!("SBC drained and stopped"),
            Ok(Err(e)) => return Err(format!("the SBC failed while stopping: {e}")),
            Err(_) if result.is_ok() => {
                return Err("the SBC did not finish draining within 10 s".into())
            }
            Err(_) => println!("SBC stopped without draining (the failed step left a call up)"),
        }
    }
    let secs = started.elapsed().as_secs_f32();
    match &result {
        Ok(()) => println!("demo passed: every call worked ({secs:.1} s)"),
        Err(e) => println!("demo FAILED: {e}"),
    }
    result
}

// ----- the script ---------------------------------------------------------

/// The three neighbours and what the SBC reports.
struct Script {
    carrier: Endpoint,
    /// The carrier's socket toward the SBC.
    carrier_link: Link,
    teams: Endpoint,
    acs: Endpoint,
    sbc: Sbc,
    /// Teams' client side when it opens a connection to the SBC.
    tls_to_sbc: Arc<ClientConfig>,
}

impl Script {
    async fn all(&mut self) -> Result<()> {
        self.options_health().await?;
        self.carrier_to_teams().await?;
        self.teams_to_carrier().await?;
        self.transfer().await?;
        self.failover_to_acs().await?;
        self.teams.tls_ok()?;
        self.acs.tls_ok()
    }

    /// Step 1: the SBC pings sip, sip2 and sip3 of each Microsoft trunk at
    /// start; sip answers, nothing listens for sip2 and sip3.
    async fn options_health(&mut self) -> Result<()> {
        println!("[1] OPTIONS: the SBC pings sip, sip2 and sip3.pstnhub.microsoft.com of each Microsoft trunk");
        let deadline = Instant::now() + WAIT;
        // Known: reported by the SBC, or (sip) answered by the simulated proxy.
        let known = |sbc: &Sbc, ep: &Endpoint, peers: &[(&str, &str)]| {
            let trunk = ep.name.to_ascii_lowercase();
            peers.iter().enumerate().all(|(i, (host, _))| {
                sbc.health_of(&trunk, host).is_some() || (i == 0 && ep.seen.options() > 0)
            })
        };
        loop {
            self.sbc.collect();
            if known(&self.sbc, &self.teams, &TEAMS_PEERS)
                && known(&self.sbc, &self.acs, &ACS_PEERS)
            {
                break;
            }
            if Instant::now() >= deadline {
                let why = self.teams.tls_ok().and(self.acs.tls_ok()).err();
                return Err(format!(
                    "OPTIONS: the health of every proxy was not known within 10 s{}",
                    why.map(|w| format!(" ({w})")).unwrap_or_default()
                ));
            }
            sleep(Duration::from_millis(50)).await;
        }
        for (ep, peers) in [(&self.teams, TEAMS_PEERS), (&self.acs, ACS_PEERS)] {
            let trunk = ep.name.to_ascii_lowercase();
            for (i, (host, addr)) in peers.iter().enumerate() {
                // The SBC reports changes; one answered OPTIONS is not yet a
                // change (a peer is "up" after two), so sip's state is what
                // the simulated proxy saw.
                let state = match self.sbc.health_of(&trunk, host) {
                    Some((true, why)) => format!("up    {why}"),
                    Some((false, why)) if i == 0 => {
                        let tls = ep.tls_ok().err().unwrap_or_default();
                        return Err(format!("{trunk} {host} is down: {why} {tls}"));
                    }
                    Some((false, why)) => {
                        format!("down  {why} ({addr}: nothing listens there in this demo)")
                    }
                    None => format!(
                        "up    answered 200 over mutual TLS, SBC certificate {}",
                        ep.seen.client_names()
                    ),
                };
                println!("    {trunk:<5} {host:<27} {state}");
            }
        }
        Ok(())
    }

    /// Step 2: carrier → Teams with audio both ways; the carrier hangs up.
    async fn carrier_to_teams(&mut self) -> Result<()> {
        println!("[2] call carrier → Teams");
        let mut call = self.carrier_calls("0301234567").await?;
        let offer = self
            .teams
            .request("INVITE", "the INVITE toward Teams")
            .await?;
        let checked = microsoft_rules(&offer, TEAMS_FQDN)?;
        println!(
            "    path: carrier 0301234567 (UDP {CARRIER}) → SBC {SBC_UDP} → trunk teams, {MS_PROXY} over TLS as {TEAMS_FQDN}"
        );
        println!("    Teams checked: {checked}");
        let mut teams = self.teams.answer(&offer).await?;
        self.carrier_answered(&mut call).await?;
        self.teams.request("ACK", "the ACK toward Teams").await?;
        println!("    SRTP on: {SUITE} toward Teams, plain RTP toward the carrier");
        audio(("carrier", &mut call.audio), ("Teams", &mut teams.audio)).await?;
        call.hang_up(&mut self.carrier).await?;
        self.teams.answer_bye(&teams.dialog).await?;
        self.sbc.cdr_line().await
    }

    /// Step 3: Teams → carrier over a TLS connection Teams opens to the SBC.
    async fn teams_to_carrier(&mut self) -> Result<()> {
        println!("[3] call Teams → carrier");
        let link = self
            .teams
            .connect(SBC_TLS, TEAMS_FQDN, &self.tls_to_sbc)
            .await?;
        let mut audio_t = Audio::srtp().await?;
        let tag = unique("t");
        let ruri = format!("sip:+49301234567@{TEAMS_FQDN}:5061;user=phone;transport=tls");
        let from = format!("<sip:+15550100001@{MS_PROXY}:5061;user=phone>;tag={tag}");
        let contact = ms_contact();
        let branch = branch();
        let invite = request(
            "INVITE",
            &ruri,
            &[
                ("Via", &link.via(&branch)),
                ("Max-Forwards", "70"),
                (
                    "Record-Route",
                    &format!("<sip:{MS_PROXY}:5061;transport=tls;lr>"),
                ),
                ("From", &from),
                ("To", &format!("<{ruri}>")),
                ("Call-ID", &unique("ms-call")),
                ("CSeq", "1 INVITE"),
                ("Contact", &contact),
                ("Allow", MS_ALLOW),
                ("User-Agent", MS_AGENT),
            ],
            Some(&audio_t.sdp()),
        )?;
        link.send(&invite).await?;
        println!(
            "    path: Teams +15550100001 opens TLS to SBC {SBC_TLS} (SNI {TEAMS_FQDN}, SBC certificate {}) → trunk carrier → carrier UDP {CARRIER}",
            link.names().join(",")
        );
        let offer = self
            .carrier
            .request("INVITE", "the INVITE toward the carrier")
            .await?;
        let sdp = Remote::read(offer.msg.body())?;
        if sdp.crypto.is_some() || sdp.proto != "RTP/AVP" {
            return Err(format!(
                "the carrier got {} with{} a=crypto; plain RTP expected",
                sdp.proto,
                if sdp.crypto.is_some() { "" } else { "out" }
            ));
        }
        let mut carrier = self.carrier.answer(&offer).await?;
        println!("    carrier got the INVITE with plain RTP (RTP/AVP, no a=crypto), answered 180, 200 OK");
        let (ok, _) = self.teams.final_response(&branch).await?;
        if ok.status() != Some(200) {
            return Err(format!(
                "Teams' INVITE answered {}",
                ok.status().unwrap_or(0)
            ));
        }
        let contact_host = contact_host(&ok).unwrap_or_default();
        if contact_host != TEAMS_FQDN {
            return Err(format!(
                "the SBC's 200 to Teams has Contact host {contact_host:?}"
            ));
        }
        audio_t.set_remote(&Remote::read(ok.body())?)?;
        let mut dialog = Dialog::uac(link, &invite, &ok, &contact, MS_AGENT)?;
        dialog.ack(1).await?;
        self.carrier
            .request("ACK", "the ACK toward the carrier")
            .await?;
        println!("    Teams checked: 200 with Contact host {contact_host}, Record-Route and x-i Contact accepted");
        println!("    SRTP on: {SUITE} from Teams, plain RTP toward the carrier");
        audio(("Teams", &mut audio_t), ("carrier", &mut carrier.audio)).await?;
        dialog.hang_up(&mut self.teams).await?;
        self.carrier.answer_bye(&carrier.dialog).await?;
        self.sbc.cdr_line().await
    }

    /// Step 4: Teams transfers a carrier call with REFER; the SBC is the
    /// transferee and the carrier never notices.
    async fn transfer(&mut self) -> Result<()> {
        println!("[4] REFER: Teams transfers a carrier call to another Teams user");
        let mut call = self.carrier_calls("0301234568").await?;
        let offer = self
            .teams
            .request("INVITE", "the INVITE toward Teams")
            .await?;
        microsoft_rules(&offer, TEAMS_FQDN)?;
        println!("    path: carrier 0301234568 → SBC → trunk teams, {MS_PROXY} (SRTP {SUITE})");
        let mut first = self.teams.answer(&offer).await?;
        self.carrier_answered(&mut call).await?;
        self.teams.request("ACK", "the ACK toward Teams").await?;
        audio(("carrier", &mut call.audio), ("Teams", &mut first.audio)).await?;

        let target = format!("sip:{MS_PROXY}:5061;transport=tls;x-m=8:orgid:b0b;x-t=demo-tenant");
        let referred_by = format!("<sip:{MS_PROXY}:5061;x-m=8:orgid:a11ce;x-t=demo-tenant>");
        let refer_branch = first
            .dialog
            .send(
                "REFER",
                &[
                    ("Refer-To", &format!("<{target}>")),
                    ("Referred-By", &referred_by),
                ],
            )
            .await?;
        println!("    Teams → SBC: REFER, Refer-To <{target}>");
        // The SBC answers 202, reports progress with NOTIFY, calls the target
        // with a new INVITE and releases the first Teams leg; in any order.
        let mut refer_status = None;
        let mut frags: Vec<String> = Vec::new();
        let mut second: Option<Answered> = None;
        let mut acked = false;
        let mut released = false;
        let deadline = Instant::now() + WAIT;
        while !(refer_status.is_some()
            && frags.iter().any(|f| f.starts_with("SIP/2.0 200"))
            && acked
            && released)
        {
            let left = deadline.saturating_duration_since(Instant::now());
            let inc = self.teams.next("the transfer", left).await?;
            let m = &inc.msg;
            let in_first = m.call_id().ok() == Some(first.dialog.call_id.as_str());
            match (m.status(), m.method_str()) {
                (Some(code), _)
                    if code >= 200 && top_branch(m).as_deref() == Some(refer_branch.as_str()) =>
                {
                    refer_status = Some(code);
                }
                (None, Some("NOTIFY")) if in_first => {
                    frags.push(first_line(m.body()));
                    inc.reply(200, "OK", None, &[], None).await?;
                }
                (None, Some("INVITE")) if !in_first => {
                    let ruri = String::from_utf8_lossy(m.request_uri_raw().unwrap_or_default());
                    if ruri != target {
                        return Err(format!(
                            "the transfer INVITE has Request-URI {ruri}, Refer-To was {target}"
                        ));
                    }
                    let rb = value(m, "Referred-By").unwrap_or_default();
                    if rb != referred_by {
                        return Err(format!(
                            "the transfer INVITE has Referred-By {rb:?}, the REFER had {referred_by}"
                        ));
                    }
                    microsoft_rules(&inc, TEAMS_FQDN)?;
                    println!(
                        "    SBC → Teams: new INVITE, Request-URI = Refer-To, Referred-By copied"
                    );
                    second = Some(self.teams.answer(&inc).await?);
                }
                (None, Some("ACK"))
                    if second
                        .as_ref()
                        .is_some_and(|s| m.call_id().ok() == Some(s.dialog.call_id.as_str())) =>
                {
                    acked = true;
                }
                (None, Some("BYE")) if in_first => {
                    inc.reply(200, "OK", None, &[], None).await?;
                    released = true;
                }
                _ => {}
            }
        }
        let code = refer_status.unwrap_or(0);
        if code != 202 {
            return Err(format!("REFER answered {code}, 202 expected"));
        }
        println!(
            "    SBC: 202 Accepted; NOTIFY sipfrag {}; first Teams leg released with BYE",
            frags.join(", ")
        );
        let Some(mut second) = second else {
            return Err("no INVITE toward the transfer target".into());
        };
        // The carrier was told nothing: no REFER, no new dialog.
        while let Ok(inc) = self.carrier.inbox.try_recv() {
            if let Some(method) = inc.msg.method_str() {
                if method != "ACK" {
                    return Err(format!(
                        "the carrier received a {method} during the transfer"
                    ));
                }
            }
        }
        println!("    carrier: saw no REFER, its dialog and RTP stream continue");
        audio(("carrier", &mut call.audio), ("Teams", &mut second.audio)).await?;
        call.hang_up(&mut self.carrier).await?;
        self.teams.answer_bye(&second.dialog).await?;
        self.sbc.cdr_line().await
    }

    /// Step 5: Teams' sip answers 503, sip2/sip3 are unreachable: the SBC
    /// fails over to ACS and labels the caller "Fail-over".
    async fn failover_to_acs(&mut self) -> Result<()> {
        println!("[5] failover: Teams' sip answers 503, sip2/sip3 are down → ACS");
        let mut call = self.carrier_calls("0301234569").await?;
        let offer = self
            .teams
            .request("INVITE", "the INVITE toward Teams")
            .await?;
        offer
            .reply(503, "Service Unavailable", Some(&unique("t")), &[], None)
            .await?;
        println!("    Teams sip.pstnhub.microsoft.com: 503 Service Unavailable");
        let offer = self.acs.request("INVITE", "the INVITE toward ACS").await?;
        let checked = microsoft_rules(&offer, ACS_FQDN)?;
        let from = value(&offer.msg, "From").unwrap_or_default();
        if !from.contains("Fail-over") {
            return Err(format!(
                "the INVITE to ACS has From {from}, no \"Fail-over\" label"
            ));
        }
        println!("    SBC → trunk acs, {MS_PROXY} over TLS as {ACS_FQDN}; From: {from}");
        println!("    ACS checked: {checked}");
        let mut acs = self.acs.answer(&offer).await?;
        self.carrier_answered(&mut call).await?;
        self.acs.request("ACK", "the ACK toward ACS").await?;
        println!("    SRTP on: {SUITE} toward ACS, plain RTP toward the carrier");
        audio(("carrier", &mut call.audio), ("ACS", &mut acs.audio)).await?;
        call.hang_up(&mut self.carrier).await?;
        self.acs.answer_bye(&acs.dialog).await?;
        self.sbc.cdr_line().await
    }

    /// The carrier sends an INVITE for the national number `called`.
    async fn carrier_calls(&mut self, called: &str) -> Result<CarrierCall> {
        let audio = Audio::rtp().await?;
        let branch = branch();
        let ruri = format!("sip:{called}@{SBC_UDP}");
        let invite = request(
            "INVITE",
            &ruri,
            &[
                (
                    "Via",
                    &format!("SIP/2.0/UDP {CARRIER};branch={branch};rport"),
                ),
                ("Max-Forwards", "70"),
                (
                    "From",
                    &format!("<sip:0401112222@{CARRIER}>;tag={}", unique("c")),
                ),
                ("To", &format!("<sip:{called}@{SBC_UDP}>")),
                ("Call-ID", &unique("carrier-call")),
                ("CSeq", "1 INVITE"),
                ("Contact", &format!("<sip:0401112222@{CARRIER}>")),
                ("User-Agent", CARRIER_AGENT),
            ],
            Some(&audio.sdp()),
        )?;
        self.carrier_link.send(&invite).await?;
        Ok(CarrierCall {
            invite,
            branch,
            audio,
            dialog: None,
        })
    }

    /// Waits for the 200 to the carrier's INVITE and sends the ACK.
    async fn carrier_answered(&mut self, call: &mut CarrierCall) -> Result<()> {
        let (ok, provisional) = self.carrier.final_response(&call.branch).await?;
        if ok.status() != Some(200) {
            return Err(format!(
                "the carrier's INVITE answered {}",
                ok.status().unwrap_or(0)
            ));
        }
        call.audio.set_remote(&Remote::read(ok.body())?)?;
        let mut dialog = Dialog::uac(
            self.carrier_link.clone(),
            &call.invite,
            &ok,
            &format!("<sip:0401112222@{CARRIER}>"),
            CARRIER_AGENT,
        )?;
        dialog.ack(1).await?;
        let seen: Vec<String> = provisional.iter().map(u16::to_string).collect();
        println!(
            "    carrier got {}200 OK, sent ACK",
            if seen.is_empty() {
                String::new()
            } else {
                format!("{}, ", seen.join(", "))
            }
        );
        call.dialog = Some(dialog);
        Ok(())
    }
}

/// A call the carrier placed.
struct CarrierCall {
    invite: Message,
    branch: String,
    audio: Audio,
    /// Once answered.
    dialog: Option<Dialog>,
}

impl CarrierCall {
    async fn hang_up(&mut self, carrier: &mut Endpoint) -> Result<()> {
        match &mut self.dialog {
            Some(d) => d.hang_up(carrier).await,
            None => Err("the carrier's call was never answered".into()),
        }
    }
}

/// What a Microsoft proxy checks on an INVITE from the SBC
/// (teams-acs-requirements §0): numbers in +E.164 with `user=phone`, the
/// Contact host is the trunk's FQDN, X-MS-SBC, an SRTP offer, and the
/// connection's client certificate names the FQDN. Returns a summary.
fn microsoft_rules(inc: &Incoming, fqdn: &str) -> Result<String> {
    let m = &inc.msg;
    let ruri = String::from_utf8_lossy(m.request_uri_raw().unwrap_or_default()).into_owned();
    let e164 = |uri: &str| {
        uri.strip_prefix("sip:").is_some_and(|u| u.starts_with('+')) && uri.contains(";user=phone")
    };
    // A Teams user (x-m, no number) is the one exception: a transfer target.
    if !e164(&ruri) && !ruri.contains(";x-m=") {
        return Err(format!("Request-URI {ruri} is not +E.164 with user=phone"));
    }
    for h in ["From", "To"] {
        let uri = value(m, h).map(|v| uri_of(&v)).unwrap_or_default();
        if !e164(&uri) && !uri.contains(";x-m=") {
            return Err(format!("{h} {uri} is not +E.164 with user=phone"));
        }
    }
    let host = contact_host(m).unwrap_or_default();
    if host != fqdn {
        return Err(format!("Contact host is {host:?}, not {fqdn}"));
    }
    let Some(x_ms_sbc) = value(m, "X-MS-SBC") else {
        return Err("no X-MS-SBC header".into());
    };
    let sdp = Remote::read(m.body())?;
    if sdp.proto != "RTP/SAVP" || sdp.crypto.is_none() {
        return Err(format!(
            "the offer is {} without a=crypto {SUITE}",
            sdp.proto
        ));
    }
    let names = inc.link.names();
    if !names.iter().any(|n| n == fqdn) {
        return Err(format!(
            "the SBC's client certificate names {names:?}, not {fqdn}"
        ));
    }
    Ok(format!(
        "Request-URI {ruri}, Contact host {host}, X-MS-SBC {x_ms_sbc}, SDP RTP/SAVP with a=crypto {SUITE}, client certificate {}",
        names.join(",")
    ))
}

// ----- what the SBC reports -----------------------------------------------

/// The daemon's outputs: health changes and CDRs.
struct Sbc {
    outputs: mpsc::UnboundedReceiver<Output>,
    /// (trunk, host, up, reason), latest last.
    health: Vec<(String, String, bool, String)>,
}

impl Sbc {
    /// Takes in the outputs already reported, keeping health changes.
    fn collect(&mut self) {
        while let Ok(o) = self.outputs.try_recv() {
            self.keep(o);
        }
    }

    fn keep(&mut self, o: Output) -> Option<Box<Cdr>> {
        match o {
            Output::Cdr(c) => Some(c),
            Output::Health {
                trunk,
                host,
                up,
                reason,
            } => {
                self.health.push((trunk, host, up, reason));
                None
            }
            Output::Media(_) | Output::Disconnect { .. } => None,
        }
    }

    fn health_of(&self, trunk: &str, host: &str) -> Option<(bool, String)> {
        self.health
            .iter()
            .rev()
            .find(|(t, h, _, _)| t == trunk && h == host)
            .map(|(_, _, up, why)| (*up, why.clone()))
    }

    /// Waits for the next CDR and prints its summary.
    async fn cdr_line(&mut self) -> Result<()> {
        let deadline = Instant::now() + WAIT;
        let cdr = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match timeout(left, self.outputs.recv()).await {
                Ok(Some(o)) => {
                    if let Some(c) = self.keep(o) {
                        break c;
                    }
                }
                Ok(None) => return Err("the SBC stopped reporting".into()),
                Err(_) => return Err("no CDR within 10 s".into()),
            }
        };
        let attempts: Vec<String> = cdr
            .attempts
            .iter()
            .map(|a| {
                let label = a
                    .label
                    .as_ref()
                    .map(|l| format!(" [{l}]"))
                    .unwrap_or_default();
                format!("{}/{} {}{label}", a.trunk, a.peer, a.outcome)
            })
            .collect();
        println!(
            "    CDR: call {} {} → {}, {} → {}, status {}, {}, ended by {}, transfers {}, packets {}/{}; attempts: {}",
            cdr.call,
            cdr.from_trunk,
            cdr.to_trunk.as_deref().unwrap_or("-"),
            cdr.calling,
            cdr.called,
            cdr.status,
            cdr.reason,
            cdr.ended_by,
            cdr.transfers,
            cdr.packets[0],
            cdr.packets[1],
            attempts.join(", ")
        );
        if cdr.status != 200 {
            return Err(format!("the CDR says status {}", cdr.status));
        }
        Ok(())
    }
}

// ----- endpoints: the carrier and the Microsoft proxies --------------------

/// How a peer reaches the SBC: a UDP socket, or one TLS connection.
#[derive(Debug, Clone)]
enum Link {
    Udp {
        sock: Arc<UdpSocket>,
        to: SocketAddr,
    },
    Tls {
        /// Bytes to write on the connection.
        tx: mpsc::UnboundedSender<Bytes>,
        local: SocketAddr,
        /// DNS names of the certificate the SBC presented on it.
        names: Vec<String>,
    },
}

impl Link {
    async fn send(&self, m: &Message) -> Result<()> {
        match self {
            Link::Udp { sock, to } => sock
                .send_to(&m.to_bytes(), to)
                .await
                .map(|_| ())
                .map_err(|e| format!("send to {to}: {e}")),
            Link::Tls { tx, .. } => tx
                .send(m.to_bytes())
                .map_err(|_| "the TLS connection to the SBC is closed".to_owned()),
        }
    }

    /// A Via for a request sent on this link.
    fn via(&self, branch: &str) -> String {
        match self {
            Link::Udp { sock, .. } => match sock.local_addr() {
                Ok(a) => format!("SIP/2.0/UDP {a};branch={branch};rport"),
                Err(_) => format!("SIP/2.0/UDP {CARRIER};branch={branch};rport"),
            },
            Link::Tls { local, .. } => format!("SIP/2.0/TLS {local};branch={branch}"),
        }
    }

    fn names(&self) -> Vec<String> {
        match self {
            Link::Udp { .. } => Vec::new(),
            Link::Tls { names, .. } => names.clone(),
        }
    }
}

/// A message from the SBC and the link to answer on.
#[derive(Debug)]
struct Incoming {
    msg: Message,
    link: Link,
}

impl Incoming {
    async fn reply(
        &self,
        code: u16,
        reason: &str,
        to_tag: Option<&str>,
        headers: &[(&str, &str)],
        sdp: Option<&[u8]>,
    ) -> Result<()> {
        let mut r = transaction::response_to(&self.msg, code, reason, to_tag)
            .map_err(|e| format!("{code} response: {e}"))?;
        for (n, v) in headers {
            r.push_header(n, v.as_bytes()).map_err(|e| e.to_string())?;
        }
        if let Some(body) = sdp {
            r.set_body(Some("application/sdp"), body)
                .map_err(|e| e.to_string())?;
        }
        self.link.send(&r).await
    }
}

/// What an endpoint's background tasks saw: OPTIONS answered, the names in
/// the SBC's client certificates, TLS problems.
#[derive(Debug, Default)]
struct Seen {
    options: AtomicU32,
    names: Mutex<Vec<String>>,
    problems: Mutex<Vec<String>>,
}

impl Seen {
    fn options(&self) -> u32 {
        self.options.load(Ordering::Relaxed)
    }

    fn client_names(&self) -> String {
        self.names.lock().map(|n| n.join(",")).unwrap_or_default()
    }

    fn problem(&self, p: String) {
        if let Ok(mut v) = self.problems.lock() {
            v.push(p);
        }
    }
}

/// One simulated neighbour and what it receives from the SBC (OPTIONS
/// are answered by its reader tasks, the rest is queued for the script).
struct Endpoint {
    /// "carrier", "Teams" or "ACS".
    name: &'static str,
    /// A Microsoft proxy (answers as Microsoft does), or the carrier.
    microsoft: bool,
    inbox: mpsc::UnboundedReceiver<Incoming>,
    inbox_tx: mpsc::UnboundedSender<Incoming>,
    seen: Arc<Seen>,
}

impl Endpoint {
    /// The carrier: UDP on `addr`; the link sends to the SBC's UDP listener.
    async fn carrier(addr: &str) -> Result<(Endpoint, Link)> {
        let sock = Arc::new(
            UdpSocket::bind(addr)
                .await
                .map_err(|e| format!("carrier: cannot bind {addr}: {e}"))?,
        );
        let to: SocketAddr = SBC_UDP.parse().map_err(|e| format!("{e}"))?;
        let (inbox_tx, inbox) = mpsc::unbounded_channel();
        let seen = Arc::new(Seen::default());
        let link = Link::Udp {
            sock: sock.clone(),
            to,
        };
        let (tx, s, l) = (inbox_tx.clone(), seen.clone(), link.clone());
        tokio::spawn(async move {
            let mut buf = vec![0u8; 65536];
            while let Ok((n, _)) = sock.recv_from(&mut buf).await {
                let Ok(msg) = Message::parse(Bytes::copy_from_slice(&buf[..n])) else {
                    continue;
                };
                deliver(msg, &l, &tx, &s, CARRIER_AGENT).await;
            }
        });
        let ep = Endpoint {
            name: "carrier",
            microsoft: false,
            inbox,
            inbox_tx,
            seen,
        };
        Ok((ep, link))
    }

    /// A Microsoft proxy listening on `addr` with mutual TLS; the SBC must
    /// present a certificate naming `fqdn`.
    async fn microsoft(
        name: &'static str,
        addr: &str,
        fqdn: &'static str,
        tls: &MicrosoftTls,
    ) -> Result<Endpoint> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| format!("{name}: cannot listen on {addr}: {e}"))?;
        let (inbox_tx, inbox) = mpsc::unbounded_channel();
        let seen = Arc::new(Seen::default());
        let acceptor = TlsAcceptor::from(tls.server.clone());
        let (tx, s) = (inbox_tx.clone(), seen.clone());
        tokio::spawn(async move {
            while let Ok((tcp, from)) = listener.accept().await {
                let _ = tcp.set_nodelay(true);
                let (acceptor, tx, s) = (acceptor.clone(), tx.clone(), s.clone());
                tokio::spawn(async move {
                    let local = tcp.local_addr().unwrap_or(from);
                    let tls = match timeout(WAIT, acceptor.accept(tcp)).await {
                        Ok(Ok(t)) => t,
                        Ok(Err(e)) => return s.problem(format!("TLS from {from}: {e}")),
                        Err(_) => return s.problem(format!("TLS from {from}: no handshake")),
                    };
                    // The verifier already required a certificate from our CA;
                    // Microsoft also wants it to name the paired FQDN.
                    let names = tls
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|c| c.first())
                        .map(cert_dns_names)
                        .unwrap_or_default();
                    if !names.iter().any(|n| n == fqdn) {
                        return s.problem(format!(
                            "the SBC's client certificate names {names:?}, expected {fqdn}; connection refused"
                        ));
                    }
                    if let Ok(mut n) = s.names.lock() {
                        n.clone_from(&names);
                    }
                    spawn_link(tls, local, names, tx, s);
                });
            }
        });
        Ok(Endpoint {
            name,
            microsoft: true,
            inbox,
            inbox_tx,
            seen,
        })
    }

    /// Opens a TLS connection to the SBC asking for `sni` (and checking the
    /// SBC's certificate for that name), presenting the Microsoft certificate.
    async fn connect(&self, addr: &str, sni: &str, cfg: &Arc<ClientConfig>) -> Result<Link> {
        let tcp = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("{}: connect {addr}: {e}", self.name))?;
        let _ = tcp.set_nodelay(true);
        let local = tcp.local_addr().map_err(|e| e.to_string())?;
        let server = ServerName::try_from(sni.to_owned()).map_err(|e| e.to_string())?;
        let tls = timeout(WAIT, TlsConnector::from(cfg.clone()).connect(server, tcp))
            .await
            .map_err(|_| format!("{}: TLS handshake with {addr} timed out", self.name))?
            .map_err(|e| format!("{}: TLS with {addr} (SNI {sni}): {e}", self.name))?;
        let names = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first())
            .map(cert_dns_names)
            .unwrap_or_default();
        Ok(spawn_link(
            tls,
            local,
            names,
            self.inbox_tx.clone(),
            self.seen.clone(),
        ))
    }

    /// The next message from the SBC within `within`.
    async fn next(&mut self, what: &str, within: Duration) -> Result<Incoming> {
        match timeout(within, self.inbox.recv()).await {
            Ok(Some(m)) => Ok(m),
            Ok(None) => Err(format!("{}: stopped receiving", self.name)),
            // A refused TLS connection is the likely reason: say so.
            Err(_) => Err(match self.tls_ok() {
                Ok(()) => format!("{}: timeout waiting for {what}", self.name),
                Err(e) => format!("{}: timeout waiting for {what}; {e}", self.name),
            }),
        }
    }

    /// The next `method` request (others are left unanswered: they are
    /// retransmissions or ACKs of earlier steps).
    async fn request(&mut self, method: &str, what: &str) -> Result<Incoming> {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let inc = self.next(what, left).await?;
            if inc.msg.method_str() == Some(method) {
                return Ok(inc);
            }
            tracing::debug!(peer = self.name, msg = %first_line(&inc.msg.to_bytes()), "skipped");
        }
    }

    /// The final response to our request with Via branch `branch`, and the
    /// provisional status codes before it.
    async fn final_response(&mut self, branch: &str) -> Result<(Message, Vec<u16>)> {
        let deadline = Instant::now() + WAIT;
        let mut provisional = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let inc = self.next("a response", left).await?;
            let m = inc.msg;
            if top_branch(&m).as_deref() != Some(branch) {
                continue;
            }
            match m.status() {
                Some(code) if code >= 200 => return Ok((m, provisional)),
                Some(code) => provisional.push(code),
                None => {}
            }
        }
    }

    /// Answers an INVITE: 180 Ringing, then 200 OK with our SDP (SRTP if
    /// the offer is SRTP). A Microsoft proxy adds Record-Route and its :443
    /// Contact, as Microsoft does.
    async fn answer(&mut self, offer: &Incoming) -> Result<Answered> {
        let remote = Remote::read(offer.msg.body())?;
        let mut audio = if remote.crypto.is_some() {
            Audio::srtp().await?
        } else {
            Audio::rtp().await?
        };
        audio.set_remote(&remote)?;
        let tag = unique("t");
        let (contact, agent) = if self.microsoft {
            (ms_contact(), MS_AGENT)
        } else {
            let to = value(&offer.msg, "To")
                .map(|v| uri_of(&v))
                .unwrap_or_default();
            let user = to
                .strip_prefix("sip:")
                .and_then(|u| u.split('@').next())
                .unwrap_or("callee")
                .to_owned();
            (format!("<sip:{user}@{CARRIER}>"), CARRIER_AGENT)
        };
        let rr = format!("<sip:{MS_PROXY}:5061;transport=tls;lr>");
        let mut headers = vec![("Contact", contact.as_str()), ("Server", agent)];
        if self.microsoft {
            headers.push(("Record-Route", rr.as_str()));
            headers.push(("Allow", MS_ALLOW));
        }
        offer
            .reply(180, "Ringing", Some(&tag), &headers, None)
            .await?;
        offer
            .reply(200, "OK", Some(&tag), &headers, Some(&audio.sdp()))
            .await?;
        let dialog = Dialog::uas(offer, &tag, &contact, agent)?;
        Ok(Answered { audio, dialog })
    }

    /// Waits for the BYE of `dialog` and answers 200.
    async fn answer_bye(&mut self, dialog: &Dialog) -> Result<()> {
        let bye = self.request("BYE", "the BYE").await?;
        if bye.msg.call_id().ok() != Some(dialog.call_id.as_str()) {
            return Err(format!("{}: BYE for an unknown call", self.name));
        }
        bye.reply(200, "OK", None, &[], None).await?;
        println!("    {} got BYE, answered 200", self.name);
        Ok(())
    }

    /// Any TLS problem seen by the accept tasks (wrong or missing client certificate).
    fn tls_ok(&self) -> Result<()> {
        let p = self
            .seen
            .problems
            .lock()
            .map(|p| p.clone())
            .unwrap_or_default();
        match p.first() {
            Some(first) => Err(format!("{}: {first}", self.name)),
            None => Ok(()),
        }
    }
}

/// Answers OPTIONS on the spot (counting them); queues everything else.
async fn deliver(
    msg: Message,
    link: &Link,
    inbox: &mpsc::UnboundedSender<Incoming>,
    seen: &Seen,
    agent: &str,
) {
    let inc = Incoming {
        msg,
        link: link.clone(),
    };
    if inc.msg.method_str() == Some("OPTIONS") {
        seen.options.fetch_add(1, Ordering::Relaxed);
        let tag = unique("o");
        let headers = [("Allow", MS_ALLOW), ("Server", agent)];
        if let Err(e) = inc.reply(200, "OK", Some(&tag), &headers, None).await {
            tracing::warn!(%e, "OPTIONS answer not sent");
        }
        return;
    }
    let _ = inbox.send(inc);
}

/// Runs one TLS connection: a writer task draining the link's queue and a
/// reader task cutting the stream into SIP messages.
fn spawn_link<S>(
    stream: S,
    local: SocketAddr,
    names: Vec<String>,
    inbox: mpsc::UnboundedSender<Incoming>,
    seen: Arc<Seen>,
) -> Link
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut rd, mut wr) = tokio::io::split(stream);
    let (tx, mut rx) = mpsc::unbounded_channel::<Bytes>();
    tokio::spawn(async move {
        while let Some(b) = rx.recv().await {
            if wr.write_all(&b).await.is_err() || wr.flush().await.is_err() {
                break;
            }
        }
    });
    let link = Link::Tls { tx, local, names };
    let l = link.clone();
    tokio::spawn(async move {
        let mut framer = StreamFramer::new(65535);
        let mut buf = vec![0u8; 16384];
        loop {
            let n = match rd.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            framer.push(&buf[..n]);
            loop {
                match framer.next_frame() {
                    Ok(Some(Frame::Message(bytes))) => {
                        if let Ok(msg) = Message::parse(bytes) {
                            deliver(msg, &l, &inbox, &seen, MS_AGENT).await;
                        }
                    }
                    Ok(Some(Frame::Ping)) => {
                        if let Link::Tls { tx, .. } = &l {
                            let _ = tx.send(Bytes::from_static(b"\r\n"));
                        }
                    }
                    Ok(Some(Frame::Pong)) => {}
                    Ok(None) => break,
                    Err(_) => return,
                }
            }
        }
    });
    link
}

/// The TLS configurations of the simulated Microsoft side: the certificate
/// with the names sip/sip2/sip3.pstnhub.microsoft.com, the development CA.
struct MicrosoftTls {
    /// Server side: a client certificate from the CA is required.
    server: Arc<ServerConfig>,
    /// Client side (Teams opening a connection to the SBC).
    client: Arc<ClientConfig>,
}

impl MicrosoftTls {
    fn load(dir: &std::path::Path) -> Result<MicrosoftTls> {
        let profile = TlsProfile {
            identities: vec![IdentityFiles {
                cert: dir.join("microsoft.pem"),
                key: dir.join("microsoft.key"),
            }],
            ca: Some(dir.join("ca.pem")),
            require_client_cert: true,
            peer_names: Vec::new(),
            versions: Vec::new(),
            cipher_suites: Vec::new(),
            kx_groups: Vec::new(),
        };
        Ok(MicrosoftTls {
            server: Arc::new(server_config(&profile).map_err(|e| e.to_string())?),
            client: Arc::new(client_config(&profile).map_err(|e| e.to_string())?),
        })
    }
}

// ----- dialogs --------------------------------------------------------------

/// A call answered by a simulated peer: its media and its dialog.
struct Answered {
    audio: Audio,
    dialog: Dialog,
}

/// The little a peer keeps of a dialog (RFC 3261 §12) to send requests in it.
#[derive(Debug)]
struct Dialog {
    link: Link,
    call_id: String,
    /// Our From value in requests (with our tag) and the far end's To.
    local: String,
    remote: String,
    /// The far end's Contact URI: the Request-URI of our requests.
    target: String,
    route: Vec<String>,
    cseq: u32,
    contact: String,
    agent: &'static str,
}

impl Dialog {
    /// The dialog of an INVITE we sent, from its 2xx. Microsoft's own
    /// Record-Route (we play the proxy) is not part of the route set.
    fn uac(
        link: Link,
        invite: &Message,
        ok: &Message,
        contact: &str,
        agent: &'static str,
    ) -> Result<Dialog> {
        let mut route = record_routes(ok);
        route.reverse();
        route.retain(|r| !r.contains("pstnhub.microsoft.com"));
        Ok(Dialog {
            link,
            call_id: invite.call_id().map_err(|e| e.to_string())?.to_owned(),
            local: value(invite, "From").ok_or("INVITE without From")?,
            remote: value(ok, "To").ok_or("200 without To")?,
            target: contact_uri(ok).ok_or("200 without Contact")?,
            route,
            cseq: 1,
            contact: contact.to_owned(),
            agent,
        })
    }

    /// The dialog of an INVITE we answered with To tag `tag`.
    fn uas(offer: &Incoming, tag: &str, contact: &str, agent: &'static str) -> Result<Dialog> {
        let m = &offer.msg;
        let to = value(m, "To").ok_or("INVITE without To")?;
        Ok(Dialog {
            link: offer.link.clone(),
            call_id: m.call_id().map_err(|e| e.to_string())?.to_owned(),
            local: format!("{to};tag={tag}"),
            remote: value(m, "From").ok_or("INVITE without From")?,
            target: contact_uri(m).ok_or("INVITE without Contact")?,
            route: record_routes(m),
            cseq: 0,
            contact: contact.to_owned(),
            agent,
        })
    }

    fn build(&self, method: &str, cseq: u32, extra: &[(&str, &str)]) -> Result<(Message, String)> {
        let branch = branch();
        let via = self.link.via(&branch);
        let cseq = format!("{cseq} {method}");
        let mut headers: Vec<(&str, &str)> = vec![("Via", &via), ("Max-Forwards", "70")];
        headers.extend(self.route.iter().map(|r| ("Route", r.as_str())));
        headers.extend([
            ("From", self.local.as_str()),
            ("To", self.remote.as_str()),
            ("Call-ID", self.call_id.as_str()),
            ("CSeq", cseq.as_str()),
            ("Contact", self.contact.as_str()),
            ("User-Agent", self.agent),
        ]);
        headers.extend_from_slice(extra);
        Ok((request(method, &self.target, &headers, None)?, branch))
    }

    /// Sends a new request in the dialog; returns its Via branch.
    async fn send(&mut self, method: &str, extra: &[(&str, &str)]) -> Result<String> {
        self.cseq += 1;
        let (m, branch) = self.build(method, self.cseq, extra)?;
        self.link.send(&m).await?;
        Ok(branch)
    }

    /// The ACK of a 2xx to the INVITE with CSeq `cseq`.
    async fn ack(&mut self, cseq: u32) -> Result<()> {
        let (m, _) = self.build("ACK", cseq, &[])?;
        self.link.send(&m).await
    }

    /// Sends BYE and waits for its 200 on `ep`.
    async fn hang_up(&mut self, ep: &mut Endpoint) -> Result<()> {
        let branch = self.send("BYE", &[]).await?;
        let (r, _) = ep.final_response(&branch).await?;
        if r.status() != Some(200) {
            return Err(format!(
                "{}: BYE answered {}",
                ep.name,
                r.status().unwrap_or(0)
            ));
        }
        println!("    {} hung up: BYE, 200 OK", ep.name);
        Ok(())
    }
}

// ----- media ----------------------------------------------------------------

/// The far end's media as its SDP describes it.
struct Remote {
    addr: SocketAddr,
    proto: String,
    /// Its `a=crypto` AES_CM_128_HMAC_SHA1_80 key, if any.
    crypto: Option<CryptoAttribute>,
}

impl Remote {
    fn read(body: &[u8]) -> Result<Remote> {
        let sd = sdp::SessionDescription::parse(body).map_err(|e| format!("SDP: {e:?}"))?;
        let m = sd.media().first().ok_or("SDP without m= line")?;
        let ip = sd
            .effective_connection(0)
            .and_then(|c| c.ip())
            .ok_or("SDP without a connection address")?;
        let port = m.port().ok_or("SDP m= line without port")?;
        let crypto = m
            .crypto()
            .find(|c| c.suite == SUITE)
            .map(|c| CryptoAttribute::parse(&format!("{} {} {}", c.tag, c.suite, c.params)))
            .transpose()
            .map_err(|e| format!("a=crypto: {e:?}"))?;
        Ok(Remote {
            addr: SocketAddr::new(ip, port),
            proto: m.proto().unwrap_or_default().to_owned(),
            crypto,
        })
    }
}

/// One side's audio: a UDP socket sending 160-byte PCMA frames every 20 ms,
/// SRTP-protected when `key` is set.
struct Audio {
    sock: UdpSocket,
    remote: Option<SocketAddr>,
    /// Our SRTP key (put in our SDP) …
    key: Option<CryptoAttribute>,
    /// … and the contexts: ours to send, the far end's to receive.
    srtp: Option<(SrtpContext, SrtpContext)>,
    ssrc: u32,
    seq: u16,
    frame: u32,
}

impl Audio {
    async fn rtp() -> Result<Audio> {
        let sock = UdpSocket::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("media socket: {e}"))?;
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        Ok(Audio {
            sock,
            remote: None,
            key: None,
            srtp: None,
            ssrc: 0x5bc0_0000 | (n as u32 & 0xffff),
            seq: (n as u16).wrapping_mul(1000),
            frame: 0,
        })
    }

    async fn srtp() -> Result<Audio> {
        let mut a = Audio::rtp().await?;
        a.key = Some(
            CryptoAttribute::generate(1, SrtpProfile::AesCm128HmacSha1_80)
                .map_err(|e| format!("SRTP key: {e:?}"))?,
        );
        Ok(a)
    }

    fn port(&self) -> u16 {
        self.sock.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// Our SDP: PCMA and telephone-event, SRTP with our key or plain RTP.
    fn sdp(&self) -> Vec<u8> {
        let (proto, crypto) = match &self.key {
            Some(k) => ("RTP/SAVP", format!("{}\r\n", k.to_sdp_line())),
            None => ("RTP/AVP", String::new()),
        };
        format!(
            "v=0\r\no=- {s} 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio {port} {proto} 8 101\r\na=rtpmap:8 PCMA/8000\r\n\
             a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n{crypto}a=ptime:20\r\na=sendrecv\r\n",
            s = self.ssrc,
            port = self.port(),
        )
        .into_bytes()
    }

    /// Where to send, and (SRTP) the contexts from both keys.
    fn set_remote(&mut self, r: &Remote) -> Result<()> {
        self.remote = Some(r.addr);
        if let Some(ours) = &self.key {
            let theirs = r
                .crypto
                .as_ref()
                .ok_or(format!("the SBC's SDP has no a=crypto {SUITE}"))?;
            let ctx = |k: &CryptoAttribute| {
                k.srtp_policy()
                    .map_err(|e| format!("{e:?}"))
                    .and_then(|p| SrtpContext::new(&p).map_err(|e| format!("{e:?}")))
            };
            self.srtp = Some((ctx(ours)?, ctx(theirs)?));
        }
        Ok(())
    }

    /// Sends `PACKETS` frames marked `me` while counting the frames marked
    /// `peer` that arrive intact.
    async fn exchange(&mut self, me: u8, peer: u8) -> Result<Flow> {
        let to = self.remote.ok_or("no remote media address")?;
        let mut flow = Flow::default();
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        let end = Instant::now() + Duration::from_millis(20 * u64::from(PACKETS) + 400);
        let mut buf = [0u8; 1500];
        loop {
            tokio::select! {
                _ = tick.tick(), if flow.sent < PACKETS => {
                    let len = self.packet(me, &mut buf)?;
                    self.sock.send_to(&buf[..len], to).await.map_err(|e| format!("media send: {e}"))?;
                    flow.sent += 1;
                }
                r = self.sock.recv_from(&mut buf) => {
                    let (n, _) = r.map_err(|e| format!("media receive: {e}"))?;
                    self.receive(&mut buf[..n], peer, &mut flow);
                }
                () = tokio::time::sleep_until(end) => return Ok(flow),
            }
        }
    }

    /// Writes the next RTP (or SRTP) packet into `buf`; returns its length.
    fn packet(&mut self, me: u8, buf: &mut [u8]) -> Result<usize> {
        let marker = if self.frame == 0 { 0x80 } else { 0 };
        buf[0] = 0x80;
        buf[1] = marker | 8;
        buf[2..4].copy_from_slice(&self.seq.to_be_bytes());
        buf[4..8].copy_from_slice(&self.frame.wrapping_mul(160).to_be_bytes());
        buf[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        buf[12..172].copy_from_slice(&payload(me, self.frame));
        self.seq = self.seq.wrapping_add(1);
        self.frame += 1;
        match &mut self.srtp {
            Some((tx, _)) => tx.protect_rtp(buf, 172).map_err(|e| format!("SRTP: {e:?}")),
            None => Ok(172),
        }
    }

    fn receive(&mut self, pkt: &mut [u8], peer: u8, flow: &mut Flow) {
        let len = match &mut self.srtp {
            Some((_, rx)) => match rx.unprotect_rtp(pkt) {
                Ok(n) => n,
                Err(_) => {
                    flow.auth_failed += 1;
                    return;
                }
            },
            None => pkt.len(),
        };
        let Ok(h) = RtpHeader::parse(&pkt[..len]) else {
            flow.damaged += 1;
            return;
        };
        let body = &pkt[h.header_len()..len];
        let frame = body
            .get(1..5)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(u32::from_be_bytes);
        match frame {
            Some(f) if body.first() == Some(&peer) && body == payload(peer, f) => flow.intact += 1,
            _ => flow.damaged += 1,
        }
    }
}

/// The 160 bytes of frame `n` from side `from`: recognisable and checkable.
fn payload(from: u8, n: u32) -> [u8; 160] {
    let mut p = [0u8; 160];
    p[0] = from;
    p[1..5].copy_from_slice(&n.to_be_bytes());
    for (i, b) in p.iter_mut().enumerate().skip(5) {
        *b = (i as u8).wrapping_mul(31) ^ from ^ (n as u8);
    }
    p
}

/// What one side sent and received.
#[derive(Debug, Default, Clone, Copy)]
struct Flow {
    sent: u32,
    intact: u32,
    damaged: u32,
    auth_failed: u32,
}

/// Audio both ways between `a` and `b` at the same time; each checks the
/// other's payloads arrive intact (at least 80 %, nothing damaged).
async fn audio(a: (&str, &mut Audio), b: (&str, &mut Audio)) -> Result<()> {
    let ((na, aa), (nb, ab)) = (a, b);
    let (fa, fb) = tokio::join!(aa.exchange(b'A', b'B'), ab.exchange(b'B', b'A'));
    let (fa, fb) = (fa?, fb?);
    println!(
        "    audio: {na} → {nb} {} sent, {} arrived intact; {nb} → {na} {} sent, {} arrived intact",
        fa.sent, fb.intact, fb.sent, fa.intact
    );
    for (from, to, sent, got) in [(na, nb, fa, fb), (nb, na, fb, fa)] {
        if got.damaged > 0 || got.auth_failed > 0 || got.intact * 10 < sent.sent * 8 {
            return Err(format!(
                "audio {from} → {to}: {} sent, {} intact, {} damaged, {} failed SRTP authentication",
                sent.sent, got.intact, got.damaged, got.auth_failed
            ));
        }
    }
    Ok(())
}

// ----- small SIP helpers ----------------------------------------------------

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A token unique within this run and across runs.
fn unique(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64);
    format!("{prefix}{:x}{n:x}", t & 0xffff_ffff)
}

fn branch() -> String {
    format!("z9hG4bK{}", unique("d"))
}

/// A Microsoft-style Contact: the media-processor FQDN on :443 with x-i/x-c.
fn ms_contact() -> String {
    format!(
        "<sip:api-du-b-euwe.pstnhub.microsoft.com:443;x-i={};x-c={}/s/1/{}>",
        unique("5e7a"),
        unique("c"),
        unique("x")
    )
}

/// A request from its headers (in order) and an optional SDP body.
fn request(
    method: &str,
    ruri: &str,
    headers: &[(&str, &str)],
    sdp: Option<&[u8]>,
) -> Result<Message> {
    let mut m = Message::new_request(method, ruri.as_bytes())
        .map_err(|e| format!("{method} {ruri}: {e}"))?;
    for (n, v) in headers {
        m.push_header(n, v.as_bytes())
            .map_err(|e| format!("{method}: {n}: {e}"))?;
    }
    match sdp {
        Some(b) => m.set_body(Some("application/sdp"), b),
        None => m.set_body(None, b""),
    }
    .map_err(|e| e.to_string())?;
    Ok(m)
}

fn value(m: &Message, name: &str) -> Option<String> {
    m.header_by_name(name)
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

/// The URI of a name-addr value (`"x" <sip:…>;tag=…` → `sip:…`).
fn uri_of(v: &str) -> String {
    sip::NameAddr::parse(v.as_bytes())
        .map(|n| String::from_utf8_lossy(n.uri_raw).into_owned())
        .unwrap_or_default()
}

fn contact_uri(m: &Message) -> Option<String> {
    match m.contacts().next()?.ok()? {
        Contact::Addr(n) => Some(String::from_utf8_lossy(n.uri_raw).into_owned()),
        Contact::Star => None,
    }
}

fn contact_host(m: &Message) -> Option<String> {
    match m.contacts().next()?.ok()? {
        Contact::Addr(n) => n.uri.as_sip().map(|s| s.host_raw.to_owned()),
        Contact::Star => None,
    }
}

fn record_routes(m: &Message) -> Vec<String> {
    m.record_routes()
        .filter_map(|r| r.ok())
        .map(|n| format!("<{}>", String::from_utf8_lossy(n.uri_raw)))
        .collect()
}

fn top_branch(m: &Message) -> Option<String> {
    let via = m.top_via().ok()?;
    via.branch()
        .map(|b| String::from_utf8_lossy(b).into_owned())
}

fn first_line(b: &[u8]) -> String {
    let text = String::from_utf8_lossy(b);
    text.lines().next().unwrap_or_default().trim().to_owned()
}
