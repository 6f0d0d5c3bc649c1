//! `sbc demo`: the SBC and its three neighbours in one process, on loopback.
//!
//! The daemon of `sbc run` is started on the embedded default configuration
//! (`sbc-config/demo.toml`) next to three simulated peers (`crate::peers`,
//! shared with `sbc drill`):
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

use std::sync::Arc;
use std::time::Duration;

use sip::Message;
use tokio::time::{sleep, Instant};
use tokio_rustls::rustls::ClientConfig;

use crate::config;
use crate::daemon;
use crate::peers::{
    audio, branch, cdr_summary, contact_host, embed, first_line, microsoft_rules, ms_contact,
    request, top_branch, unique, value, Answered, Audio, Dialog, Endpoint, MicrosoftTls, Remote,
    Reports, Result, Stopped, ACS_FQDN, MS_AGENT, MS_ALLOW, MS_PROXY, SUITE, TEAMS_FQDN, WAIT,
};

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

const CARRIER_AGENT: &str = "carrier (simulated by sbc demo)";

/// Audio per call: 20 ms packets for about 1.5 s.
const PACKETS: u32 = 75;

/// `sbc demo`: generates the development certificates if needed, then runs
/// the daemon and the script on one runtime.
pub(crate) fn run() -> Result<()> {
    let dir = crate::peers::ensure_dev_certs("sbc demo")?;
    let loaded = config::parse(config::DEMO, "<embedded sbc-config/demo.toml>")
        .map_err(|e| e.to_string())?;
    // Quiet by default so that the narrative reads well (the refused
    // connections to sip2/sip3 are expected); RUST_LOG=info shows the daemon's log.
    crate::init_logging("error", config::LogFormat::Text);
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
    let carrier = Endpoint::udp("carrier", addr(CARRIER)?, CARRIER_AGENT).await?;
    let carrier_link = carrier.udp_link(addr(SBC_UDP)?)?;
    let teams = Endpoint::microsoft("Teams", addr(TEAMS_PEERS[0].1)?, TEAMS_FQDN, &tls).await?;
    let acs = Endpoint::microsoft("ACS", addr(ACS_PEERS[0].1)?, ACS_FQDN, &tls).await?;

    let (hooks, sbc, control) = embed();
    let mut script = Script {
        carrier,
        carrier_link,
        teams,
        acs,
        sbc,
        tls_to_sbc: tls.client,
    };
    let (result, stopped) = control.run(daemon::serve(cfg, hooks), script.all()).await;
    match stopped {
        Stopped::ByItself => {}
        Stopped::Drained => println!("SBC drained and stopped"),
        Stopped::Failed(e) => return Err(format!("the SBC failed while stopping: {e}")),
        Stopped::NotDrained if result.is_ok() => {
            return Err("the SBC did not finish draining within 10 s".into())
        }
        // Every call has ended unless the failed step left one up.
        Stopped::NotDrained => {
            println!("SBC stopped without draining (the failed step left a call up)")
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
    carrier_link: crate::peers::Link,
    teams: Endpoint,
    acs: Endpoint,
    sbc: Reports,
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
        let known = |sbc: &Reports, ep: &Endpoint, peers: &[(&str, &str)]| {
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
        print_audio(("carrier", &mut call.audio), ("Teams", &mut teams.audio)).await?;
        call.hang_up(&mut self.carrier).await?;
        self.teams.answer_bye(&teams.dialog).await?;
        println!("    Teams got BYE, answered 200");
        self.cdr_line().await
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
        print_audio(("Teams", &mut audio_t), ("carrier", &mut carrier.audio)).await?;
        dialog.hang_up(&mut self.teams).await?;
        println!("    Teams hung up: BYE, 200 OK");
        self.carrier.answer_bye(&carrier.dialog).await?;
        println!("    carrier got BYE, answered 200");
        self.cdr_line().await
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
        print_audio(("carrier", &mut call.audio), ("Teams", &mut first.audio)).await?;

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
        print_audio(("carrier", &mut call.audio), ("Teams", &mut second.audio)).await?;
        call.hang_up(&mut self.carrier).await?;
        self.teams.answer_bye(&second.dialog).await?;
        println!("    Teams got BYE, answered 200");
        self.cdr_line().await
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
        print_audio(("carrier", &mut call.audio), ("ACS", &mut acs.audio)).await?;
        call.hang_up(&mut self.carrier).await?;
        self.acs.answer_bye(&acs.dialog).await?;
        println!("    ACS got BYE, answered 200");
        self.cdr_line().await
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
            Some(d) => d.hang_up(carrier).await?,
            None => return Err("the carrier's call was never answered".into()),
        }
        println!("    carrier hung up: BYE, 200 OK");
        Ok(())
    }
}

/// Audio both ways; prints the summary line.
async fn print_audio(a: (&str, &mut Audio), b: (&str, &mut Audio)) -> Result<()> {
    println!("    {}", audio(a, b, PACKETS).await?);
    Ok(())
}

impl Script {
    /// Waits for the next CDR and prints its summary.
    async fn cdr_line(&mut self) -> Result<()> {
        let cdr = self.sbc.next_cdr(WAIT).await?;
        println!("    CDR: {}", cdr_summary(&cdr));
        if cdr.status != 200 {
            return Err(format!("the CDR says status {}", cdr.status));
        }
        Ok(())
    }
}

fn addr(s: &str) -> Result<std::net::SocketAddr> {
    s.parse().map_err(|e| format!("{s}: {e}"))
}
