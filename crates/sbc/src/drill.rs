//! `sbc drill`: the built-in failover drill.
//!
//! The daemon of `sbc run` is started on the embedded `sbc-config/drill.toml`
//! (loopback, fixed ports) next to simulated peers (`crate::peers`, shared
//! with `sbc demo`): a **carrier** that places every call (UDP, RTP), the
//! three **Teams** proxies `sip`, `sip2`, `sip3.pstnhub.microsoft.com`
//! (mutual TLS, SRTP, each on its own address), **ACS** (its own FQDN and
//! certificate), an on-prem **analog gateway** (plain SIP over UDP, RTP/AVP,
//! G.711, no rtcp-mux) and an **external number** behind the carrier's PSTN
//! trunk, where forward-on-failure ends.
//!
//! The drill injects one fault after the other — a silent proxy (and its
//! late answer), a dead one, one answering 503 with Retry-After, the whole
//! of Teams, Teams and ACS, everything — then brings `sip` back, and places
//! a carrier call after each. Every call is answered with audio both ways
//! (SRTP toward Microsoft) and hung up; the SBC's CDR gives its setup time
//! (INVITE in to 200 out) and attempts. Each step is judged against the
//! timing rule it illustrates (`report`); the table at the end says PASS or
//! FAIL per row and the exit status is non-zero when any row failed. Every
//! wait is bounded; the whole drill takes about 20 s.

mod report;

use std::net::SocketAddr;
use std::task::Poll;
use std::time::Duration;

use b2bua::Cdr;
use sip::Message;
use tokio::time::{sleep, timeout, Instant};

use crate::config;
use crate::daemon;
use crate::peers::{
    attempts_summary, audio, branch, display_of, embed, microsoft_rules, request, top_branch,
    unique, value, Answered, Audio, Dialog, Endpoint, Incoming, Link, MicrosoftTls, Mode, Remote,
    Reports, Result, Stopped, ACS_FQDN, TEAMS_FQDN, WAIT,
};
use report::{judge, table, Expect, Observed, Row};

/// The drill's configuration, embedded in the binary.
const CONFIG: &str = include_str!("../../../sbc-config/drill.toml");

/// Where sbc-config/drill.toml puts the SBC and the carrier.
const SBC_UDP: &str = "127.0.0.1:15060";
const CARRIER: &str = "127.0.0.1:15070";

const CARRIER_AGENT: &str = "carrier (simulated by sbc drill)";
const GATEWAY_AGENT: &str = "analog gateway (simulated by sbc drill)";
const EXTERNAL_AGENT: &str = "mobile (simulated by sbc drill)";

/// The carrier's caller and the national number it dials (+49301234567
/// once normalised); the route's external number.
const CALLING: &str = "0401112222";
const CALLED: &str = "0301234567";
const CALLED_E164: &str = "+49301234567";
const FORWARD_NUMBER: &str = "+4915112345";
const LABEL: &str = "Fail-over";

/// Audio per call: 20 ms packets, both ways (0.2 s: enough to show that
/// the media path follows every failover, short enough for 12 calls).
const PACKETS: u32 = 10;
/// Retry-After of the overloaded proxy: longer than the rest of the drill,
/// so that the hold is still in force when later steps need it.
const RETRY_AFTER: u32 = 30;

/// A healthy first choice, or a known-down peer or trunk passed over:
/// nothing to wait for.
const AT_ONCE: Duration = Duration::from_millis(500);
/// A peer found dead (connection refused or reset) or refusing (503) when
/// the call comes: the next one at once.
const PEER_FAILED: Duration = Duration::from_secs(2);
/// On top of a timer the SBC must wait out.
const SLACK: Duration = Duration::from_secs(1);
/// An abandoned INVITE answered late must be ACKed and hung up at once.
const LATE_ANSWER: Duration = Duration::from_secs(1);
/// A fault is in place this long before the call that follows it: the
/// drill measures a call after a fault, not one racing it. Resets on
/// loopback arrive within microseconds, but the SBC's connection reader must
/// run once to notice one (an INVITE written into a connection reset a
/// moment before is lost without an error and costs the per-attempt
/// timer). With no settle at all the drill passed too; this is margin for
/// a loaded machine.
const SETTLE: Duration = Duration::from_millis(50);
/// The whole drill, whatever happens.
const TOTAL: Duration = Duration::from_secs(50);

/// The simulated peers the SBC calls, in the order of `Drill::peers`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Peer {
    Sip,
    Sip2,
    Sip3,
    Acs,
    Gateway,
    External,
}

use Peer::*;

impl Peer {
    const ALL: [Peer; 6] = [Sip, Sip2, Sip3, Acs, Gateway, External];

    /// The trunk the SBC reaches it through (as in CDRs and health changes).
    fn trunk(self) -> &'static str {
        match self {
            Sip | Sip2 | Sip3 => "teams",
            Acs => "acs",
            Gateway => "gateway",
            External => "pstn",
        }
    }

    /// Its host on that trunk.
    fn host(self) -> &'static str {
        match self {
            Sip | Acs => "sip.pstnhub.microsoft.com",
            Sip2 => "sip2.pstnhub.microsoft.com",
            Sip3 => "sip3.pstnhub.microsoft.com",
            Gateway => "127.0.0.2",
            External => "127.0.0.3",
        }
    }

    /// Where it listens (sbc-config/drill.toml).
    fn addr(self) -> &'static str {
        match self {
            Sip => "127.0.0.1:15081",
            Sip2 => "127.0.0.1:15082",
            Sip3 => "127.0.0.1:15083",
            Acs => "127.0.0.1:15091",
            Gateway => "127.0.0.2:15100",
            External => "127.0.0.3:15110",
        }
    }

    /// Its name in messages.
    fn name(self) -> &'static str {
        match self {
            Sip => "sip",
            Sip2 => "sip2",
            Sip3 => "sip3",
            Acs => "ACS",
            Gateway => "gateway",
            External => "external number",
        }
    }

    /// Where a call went, as the table says it.
    fn shown(self) -> String {
        match self {
            Sip => "teams/sip".into(),
            Sip2 => "teams/sip2".into(),
            Sip3 => "teams/sip3".into(),
            Acs => "acs/sip".into(),
            Gateway => "gateway".into(),
            External => format!("pstn/{FORWARD_NUMBER}"),
        }
    }
}

/// The timers of sbc-config/drill.toml the targets are made of.
#[derive(Debug, Clone, Copy)]
struct Timing {
    /// Teams' per-attempt timer (an INVITE answered by nothing at all).
    ms_attempt: Duration,
    /// The gateway's (a dead UDP peer refuses nothing: this timer fires).
    gateway_attempt: Duration,
    /// The forward-on-failure window of the carrier's route.
    window: Duration,
    /// Teams' OPTIONS interval plus timeout: how soon a recovery shows.
    options: Duration,
}

impl Timing {
    fn of(cfg: &config::Loaded) -> Result<Timing> {
        let trunk = |name: &str| {
            cfg.trunks
                .iter()
                .find(|t| t.name == name)
                .ok_or(format!("drill.toml has no trunk {name:?}"))
        };
        let teams = trunk("teams")?;
        let window = cfg
            .routes
            .routes
            .iter()
            .find_map(|r| r.forward.as_ref())
            .map(|f| f.window)
            .ok_or("drill.toml has no [route.forward]")?;
        Ok(Timing {
            ms_attempt: teams.invite_timeout,
            gateway_attempt: trunk("gateway")?.invite_timeout,
            window,
            options: teams.options.interval + teams.options.timeout,
        })
    }
}

/// `sbc drill`: generates the development certificates if needed, then runs
/// the daemon and the drill on one runtime. `target_scale` multiplies every
/// timing target (1 normally; a tiny one proves that a miss fails the drill).
pub(crate) fn run(target_scale: f64) -> Result<()> {
    if !(target_scale.is_finite() && target_scale >= 0.0) {
        return Err(format!(
            "--target-scale must be a number ≥ 0, not {target_scale}"
        ));
    }
    let dir = crate::peers::ensure_dev_certs("sbc drill")?;
    let loaded =
        config::parse(CONFIG, "<embedded sbc-config/drill.toml>").map_err(|e| e.to_string())?;
    // Quiet: refused connections and timeouts are the point of the drill.
    // RUST_LOG=info shows the daemon's log.
    crate::init_logging("error", config::LogFormat::Text);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    rt.block_on(drill(loaded, dir, target_scale))
}

async fn drill(cfg: config::Loaded, certs: &std::path::Path, scale: f64) -> Result<()> {
    let started = Instant::now();
    println!("sbc drill: the SBC on sbc-config/drill.toml with a simulated carrier, Teams (sip, sip2, sip3), ACS, an analog gateway and an external number on loopback; one fault after the other, a carrier call after each");
    let timing = Timing::of(&cfg)?;
    let tls = MicrosoftTls::load(certs)?;
    let busy = |e: String| format!("{e} (is another sbc drill running?)");
    let carrier = Endpoint::udp("carrier", addr(CARRIER)?, CARRIER_AGENT)
        .await
        .map_err(busy)?;
    let carrier_link = carrier.udp_link(addr(SBC_UDP)?)?;
    let mut peers = Vec::with_capacity(Peer::ALL.len());
    for p in Peer::ALL {
        let at = addr(p.addr())?;
        let ep = match p {
            Sip | Sip2 | Sip3 => Endpoint::microsoft(p.name(), at, TEAMS_FQDN, &tls).await,
            Acs => Endpoint::microsoft(p.name(), at, ACS_FQDN, &tls).await,
            Gateway => Endpoint::udp(p.name(), at, GATEWAY_AGENT).await,
            External => Endpoint::udp(p.name(), at, EXTERNAL_AGENT).await,
        };
        peers.push(ep.map_err(busy)?);
    }

    let (hooks, sbc, control) = embed();
    let mut d = Drill {
        carrier,
        carrier_link,
        peers,
        sbc,
        timing,
        scale,
        rows: Vec::new(),
    };
    let steps = async {
        timeout(TOTAL, d.all())
            .await
            .map_err(|_| format!("the drill did not end within {} s", TOTAL.as_secs()))?
    };
    let (result, stopped) = control.run(daemon::serve(cfg, hooks), steps).await;
    match stopped {
        Stopped::ByItself => {}
        Stopped::Drained => println!("SBC drained and stopped"),
        Stopped::Failed(e) => println!("the SBC failed while stopping: {e}"),
        Stopped::NotDrained => println!("the SBC did not finish draining within 10 s"),
    }
    let secs = started.elapsed().as_secs_f32();
    println!();
    print!("{}", table(&d.rows));
    let failed = d.rows.iter().filter(|r| !r.pass).count();
    let verdict = match (&result, failed) {
        (Err(e), _) => Err(format!("the drill stopped: {e}")),
        (Ok(()), 0) => Ok(()),
        (Ok(()), n) => Err(format!("{n} of {} rows missed their target", d.rows.len())),
    };
    match &verdict {
        Ok(()) => println!(
            "drill passed: {} of {} rows met their target ({secs:.1} s)",
            d.rows.len(),
            d.rows.len()
        ),
        Err(e) => println!("drill FAILED: {e} ({secs:.1} s)"),
    }
    verdict
}

fn addr(s: &str) -> Result<SocketAddr> {
    s.parse().map_err(|e| format!("{s}: {e}"))
}

/// What one carrier call did.
#[derive(Debug, Default)]
struct CallReport {
    /// The carrier's final status (0: none in time).
    status: u16,
    /// INVITE sent to 200 received, at the carrier.
    carrier_setup: Option<Duration>,
    /// The peer that answered and the INVITE it got.
    answered: Option<(Peer, Message)>,
    cdr: Option<Box<Cdr>>,
    problems: Vec<String>,
}

/// The peer that answered the call being set up.
struct Answer {
    peer: Peer,
    call: Answered,
    /// Its 200 was ACKed already.
    acked: bool,
}

/// The drill's world: the carrier, the peers it calls, what the SBC reports.
struct Drill {
    carrier: Endpoint,
    /// The carrier's socket toward the SBC.
    carrier_link: Link,
    /// Indexed by `Peer as usize`.
    peers: Vec<Endpoint>,
    sbc: Reports,
    timing: Timing,
    scale: f64,
    rows: Vec<Row>,
}

impl Drill {
    async fn all(&mut self) -> Result<()> {
        self.health_at_start().await?;
        self.baseline().await;
        self.silent_peer().await?;
        self.late_answer().await?;
        self.dead_peer().await?;
        self.refusing_peer().await?;
        self.teams_down().await?;
        self.teams_and_acs_down().await?;
        self.everything_down().await?;
        self.recovery().await
    }

    fn peer(&mut self, p: Peer) -> &mut Endpoint {
        // `peers` is built from `Peer::ALL`, in order: every peer has its slot.
        &mut self.peers[p as usize]
    }

    /// Puts fault `mode` on `p` (in place when this returns, plus `SETTLE`).
    async fn set(&mut self, p: Peer, mode: Mode) -> Result<()> {
        self.peer(p).set_mode(mode).await?;
        sleep(SETTLE).await;
        Ok(())
    }

    /// The SBC pings every Microsoft proxy and the gateway at start; each
    /// answers, and one answer brings it up.
    async fn health_at_start(&mut self) -> Result<()> {
        for p in [Sip, Sip2, Sip3, Acs, Gateway] {
            self.sbc
                .wait_health(p.trunk(), p.host(), true, WAIT)
                .await
                .map_err(|e| match self.peers[p as usize].tls_ok() {
                    Ok(()) => e,
                    Err(t) => format!("{e}; {t}"),
                })?;
        }
        println!("[0] health: sip, sip2, sip3, ACS and the gateway answer OPTIONS; the SBC reports each up");
        Ok(())
    }

    async fn baseline(&mut self) {
        let rep = self.call().await;
        self.record(
            "baseline",
            "none",
            going_to(Sip, None, AT_ONCE, "healthy first peer: ≤ 500 ms"),
            rep,
            Vec::new(),
        );
    }

    /// `sip` accepts TLS and keeps the connection but answers nothing: the
    /// first call costs Teams' per-attempt timer, the next one nothing.
    async fn silent_peer(&mut self) -> Result<()> {
        self.set(Sip, Mode::Silent).await?;
        let rep = self.call().await;
        let target = self.timing.ms_attempt + SLACK;
        self.record(
            "silent peer",
            "sip: TLS up, answers nothing",
            going_to(Sip2, None, target, "silent peer: per-attempt timer + 1 s"),
            rep,
            Vec::new(),
        );
        let before = self.peer(Sip).seen.ignored();
        let rep = self.call().await;
        let mut extra = Vec::new();
        if self.peer(Sip).seen.ignored() > before {
            extra.push("the SBC tried the silent sip again".to_owned());
        }
        self.record(
            "silent, next call",
            "sip still silent",
            going_to(Sip2, None, AT_ONCE, "known-down peer: ≤ 500 ms"),
            rep,
            extra,
        );
        Ok(())
    }

    /// `sip` comes back and answers 200 to the INVITE it ignored: the SBC
    /// had given up on that attempt, so it must ACK and BYE it (no ghost
    /// call on the Microsoft side). Then the SBC must see `sip` up again.
    async fn late_answer(&mut self) -> Result<()> {
        let ignored = self.peer(Sip).take_ignored();
        self.set(Sip, Mode::Up).await?;
        let mut seen = Observed::default();
        if ignored.is_empty() {
            seen.problems
                .push("the silent sip got no INVITE to answer late".into());
        }
        let mut slowest = None;
        for inv in &ignored {
            match self.answer_late(inv).await {
                Ok(took) => slowest = slowest.max(Some(took)),
                Err(e) => {
                    seen.ghosts += 1;
                    seen.problems.push(e);
                }
            }
        }
        if slowest.is_some() && seen.ghosts == 0 {
            seen.went = Some("sip: ACK+BYE".into());
        }
        seen.setup = slowest;
        let bound = self.timing.options + SLACK;
        if let Err(e) = self.sbc.wait_health("teams", Sip.host(), true, bound).await {
            seen.problems.push(e);
        }
        self.judge_row(
            "late answer",
            "sip wakes: 200 to ignored INVITE",
            Expect {
                to: "sip: ACK+BYE".into(),
                label: None,
                target: LATE_ANSWER,
                rule: "late 2xx: ACK and BYE at once",
            },
            seen,
            None,
        );
        Ok(())
    }

    /// Answers `inv` 200 OK now; returns how long the SBC took to ACK it
    /// and send its BYE (answered 200).
    async fn answer_late(&mut self, inv: &Incoming) -> Result<Duration> {
        let call_id = inv.msg.call_id().map_err(|e| e.to_string())?.to_owned();
        let sent = Instant::now();
        let ep = self.peer(Sip);
        ep.answer_with(inv, &unique("late"), false).await?;
        let (mut acked, mut bye) = (false, None);
        let deadline = sent + LATE_ANSWER + SLACK;
        while !acked || bye.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(m) = ep.next("the ACK and BYE of a late 200", left).await else {
                return Err(format!(
                    "late 200 to the abandoned INVITE {call_id}: {} within {} ms",
                    match (acked, bye.is_some()) {
                        (false, false) => "neither ACK nor BYE",
                        (true, false) => "ACK but no BYE",
                        _ => "BYE but no ACK",
                    },
                    (LATE_ANSWER + SLACK).as_millis()
                ));
            };
            if m.msg.call_id().ok() != Some(call_id.as_str()) {
                continue;
            }
            match m.msg.method_str() {
                Some("ACK") => acked = true,
                Some("BYE") => {
                    bye = Some(sent.elapsed());
                    m.reply(200, "OK", None, &[], None).await?;
                }
                _ => {}
            }
        }
        Ok(bye.unwrap_or_default())
    }

    /// `sip` dies: its listener closes and its connections are reset.
    async fn dead_peer(&mut self) -> Result<()> {
        self.set(Sip, Mode::Dead).await?;
        let rep = self.call().await;
        self.record(
            "peer dead",
            "sip: listener closed, conns reset",
            going_to(Sip2, None, PEER_FAILED, "peer died: ≤ 2 s"),
            rep,
            Vec::new(),
        );
        Ok(())
    }

    /// `sip2` sheds load: 503 with Retry-After. The call goes on to sip3
    /// at once; the next call does not try sip2 while the hold lasts.
    async fn refusing_peer(&mut self) -> Result<()> {
        let mode = Mode::Refuse {
            code: 503,
            retry_after: Some(RETRY_AFTER),
        };
        self.set(Sip2, mode).await?;
        let before = self.peer(Sip2).seen.refused();
        let rep = self.call().await;
        let mut extra = Vec::new();
        if self.peer(Sip2).seen.refused() == before {
            extra.push("sip2 never got the INVITE it was to refuse".to_owned());
        }
        match self.sbc.health_of("teams", Sip2.host()) {
            Some((false, why)) if why.contains("Retry-After") => {}
            other => extra.push(format!(
                "the SBC reports sip2 {}, not held down by its Retry-After",
                match other {
                    Some((up, why)) => format!("{} ({why})", if up { "up" } else { "down" }),
                    None => "unchanged".into(),
                }
            )),
        }
        self.record(
            "503 Retry-After",
            &format!("sip2: 503 Retry-After: {RETRY_AFTER}"),
            going_to(Sip3, None, PEER_FAILED, "peer refused: ≤ 2 s"),
            rep,
            extra,
        );
        let before = self.peer(Sip2).seen.refused();
        let rep = self.call().await;
        let mut extra = Vec::new();
        if self.peer(Sip2).seen.refused() > before {
            extra.push("the SBC tried sip2 during its Retry-After hold".to_owned());
        }
        self.record(
            "held peer skipped",
            "sip2 held, sip dead",
            going_to(Sip3, None, AT_ONCE, "known-down peer: ≤ 500 ms"),
            rep,
            extra,
        );
        Ok(())
    }

    /// Every Teams proxy dies: ACS, labelled. Then, with Teams known down,
    /// the next call goes to ACS without trying Teams first.
    async fn teams_down(&mut self) -> Result<()> {
        self.set(Sip2, Mode::Dead).await?;
        self.set(Sip3, Mode::Dead).await?;
        let rep = self.call().await;
        self.record(
            "Teams down",
            "sip, sip2, sip3 dead",
            going_to(Acs, Some(LABEL), PEER_FAILED, "peer died: ≤ 2 s"),
            rep,
            Vec::new(),
        );
        let mut extra = Vec::new();
        let bound = self.timing.options + SLACK;
        for p in [Sip, Sip2, Sip3] {
            if let Err(e) = self
                .sbc
                .wait_health(p.trunk(), p.host(), false, bound)
                .await
            {
                extra.push(e);
            }
        }
        let rep = self.call().await;
        if let Some(first) = rep.cdr.as_ref().and_then(|c| c.attempts.first()) {
            if first.trunk != "acs" {
                extra.push(format!(
                    "the known-down Teams was tried first ({}/{})",
                    first.trunk, first.peer
                ));
            }
        }
        self.record(
            "Teams known down",
            "sip, sip2, sip3 known down",
            going_to(Acs, Some(LABEL), AT_ONCE, "known-down trunk: ≤ 500 ms"),
            rep,
            extra,
        );
        Ok(())
    }

    /// ACS dies too: the on-prem analog gateway, labelled, plain RTP.
    async fn teams_and_acs_down(&mut self) -> Result<()> {
        self.set(Acs, Mode::Dead).await?;
        let rep = self.call().await;
        self.record(
            "Teams + ACS down",
            "+ ACS dead",
            going_to(Gateway, Some(LABEL), PEER_FAILED, "peer died: ≤ 2 s"),
            rep,
            Vec::new(),
        );
        Ok(())
    }

    /// The gateway dies too (its UDP socket closed: nothing refuses, its
    /// attempt timer fires): every destination failed, so the call is
    /// forwarded to the external number at once, with Diversion and label.
    async fn everything_down(&mut self) -> Result<()> {
        self.set(Gateway, Mode::Dead).await?;
        let rep = self.call().await;
        let t = self.timing;
        let mut extra = Vec::new();
        if let Some(c) = &rep.cdr {
            let forwarded = c.attempts.last().is_some_and(|a| a.trunk == "pstn");
            let tried = ["teams", "acs", "gateway"]
                .iter()
                .all(|d| c.attempts.iter().any(|a| a.trunk == *d));
            if !forwarded || !tried {
                extra.push(format!(
                    "forwarded before every destination was tried: {}",
                    attempts_summary(c)
                ));
            }
        }
        self.record(
            "everything down",
            "+ gateway dead",
            going_to(
                External,
                Some(LABEL),
                t.gateway_attempt.min(t.window) + SLACK,
                "forward once all failed: gateway timer (≤ window) + 1 s",
            ),
            rep,
            extra,
        );
        Ok(())
    }

    /// `sip` comes back: the SBC's OPTIONS see it, and the next call goes
    /// to it, unlabelled.
    async fn recovery(&mut self) -> Result<()> {
        let back = Instant::now();
        self.peer(Sip).set_mode(Mode::Up).await?;
        let bound = self.timing.options + SLACK;
        let (seen_up, mut extra) =
            match self.sbc.wait_health("teams", Sip.host(), true, bound).await {
                Ok(h) => (Some(h.at.saturating_duration_since(back)), Vec::new()),
                Err(e) => (None, vec![e]),
            };
        let fault = match seen_up {
            Some(d) => format!("sip back, seen up in {} ms", d.as_millis()),
            None => "sip back, not seen up".into(),
        };
        let rep = self.call().await;
        if rep.cdr.as_ref().is_some_and(|c| c.attempts.len() > 1) {
            extra.push("the call to the recovered sip needed more than one attempt".into());
        }
        self.record(
            "recovery",
            &fault,
            going_to(Sip, None, AT_ONCE, "recovered peer: ≤ 500 ms"),
            rep,
            extra,
        );
        Ok(())
    }

    /// Judges a call's report against `expect` and adds the row.
    fn record(
        &mut self,
        name: &str,
        fault: &str,
        expect: Expect,
        rep: CallReport,
        extra: Vec<String>,
    ) {
        let attempts = rep.cdr.as_deref().map(attempts_summary);
        let mut seen = observe(rep);
        seen.problems.extend(extra);
        self.judge_row(name, fault, expect, seen, attempts);
    }

    fn judge_row(
        &mut self,
        name: &str,
        fault: &str,
        expect: Expect,
        seen: Observed,
        attempts: Option<String>,
    ) {
        let step = self.rows.len() + 1;
        let row = judge(step, name, fault, &expect, seen, self.scale);
        let setup = row
            .setup_ms
            .map_or_else(|| "-".to_owned(), |m| format!("{m} ms"));
        println!(
            "[{step}] {name} ({fault}): {} in {setup} (target ≤ {} ms: {}) {}",
            row.went,
            row.target_ms,
            row.rule,
            if row.pass { "PASS" } else { "FAIL" }
        );
        if let Some(a) = attempts {
            println!("    attempts: {a}");
        }
        for w in &row.why {
            println!("    FAIL: {w}");
        }
        self.rows.push(row);
    }

    /// The carrier calls `CALLED`; the peer the SBC reaches answers (its
    /// own checks of the INVITE first), audio flows both ways, the carrier
    /// hangs up, the SBC's CDR comes. Never fails: what went wrong is in
    /// the report.
    async fn call(&mut self) -> CallReport {
        let call_id = unique("drill-call");
        let mut rep = CallReport::default();
        if let Err(e) = self.call_into(&call_id, &mut rep).await {
            rep.problems.push(e);
        }
        match self.sbc.cdr_of(&call_id, Duration::from_secs(3)).await {
            Ok(c) => rep.cdr = Some(c),
            Err(e) => rep.problems.push(e),
        }
        self.strays(&mut rep.problems).await;
        rep
    }

    async fn call_into(&mut self, call_id: &str, rep: &mut CallReport) -> Result<()> {
        let mut media = Audio::rtp().await?;
        let branch = branch();
        let contact = format!("<sip:{CALLING}@{CARRIER}>");
        let invite = request(
            "INVITE",
            &format!("sip:{CALLED}@{SBC_UDP}"),
            &[
                (
                    "Via",
                    &format!("SIP/2.0/UDP {CARRIER};branch={branch};rport"),
                ),
                ("Max-Forwards", "70"),
                (
                    "From",
                    &format!("<sip:{CALLING}@{CARRIER}>;tag={}", unique("c")),
                ),
                ("To", &format!("<sip:{CALLED}@{SBC_UDP}>")),
                ("Call-ID", call_id),
                ("CSeq", "1 INVITE"),
                ("Contact", &contact),
                ("User-Agent", CARRIER_AGENT),
            ],
            Some(&media.sdp()),
        )?;
        let sent = Instant::now();
        self.carrier_link.send(&invite).await?;
        // Longer than any failover the drill provokes can take.
        let deadline = sent + self.timing.window + Duration::from_secs(6);
        let mut answered: Option<Answer> = None;
        let ok = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(format!(
                    "the carrier got no final response within {} ms",
                    deadline.duration_since(sent).as_millis()
                ));
            }
            let (carrier, peers) = (&mut self.carrier, &mut self.peers);
            tokio::select! {
                r = carrier.next("the answer to its INVITE", left) => {
                    let m = r?.msg;
                    if top_branch(&m).as_deref() != Some(branch.as_str()) {
                        continue;
                    }
                    match m.status() {
                        Some(code) if code >= 200 => {
                            rep.status = code;
                            break m;
                        }
                        _ => continue,
                    }
                }
                (i, inc) = next_at(peers) => {
                    let p = Peer::ALL[i];
                    self.at_peer(p, inc, &mut answered, rep).await?;
                }
            }
        };
        if ok.status() != Some(200) {
            return Err(format!(
                "the carrier's call was answered {} {}",
                rep.status,
                first_words(&ok)
            ));
        }
        rep.carrier_setup = Some(sent.elapsed());
        let Some(mut a) = answered else {
            return Err("the carrier got 200 OK but no peer answered".into());
        };
        let mut dialog = Dialog::uac(
            self.carrier_link.clone(),
            &invite,
            &ok,
            &contact,
            CARRIER_AGENT,
        )?;
        dialog.ack(1).await?;
        let p = a.peer;
        let talk = async {
            if !a.acked {
                self.peer(p).request("ACK", "the ACK of its 200").await?;
            }
            media.set_remote(&Remote::read(ok.body())?)?;
            audio(
                ("carrier", &mut media),
                (p.name(), &mut a.call.audio),
                PACKETS,
            )
            .await
        }
        .await;
        // Hung up whatever happened: a call left up would hold the drain.
        let hang_up = async {
            dialog.hang_up(&mut self.carrier).await?;
            self.peer(p).answer_bye(&a.call.dialog).await
        }
        .await;
        talk.and(hang_up)
    }

    /// A message at peer `p` while a call is being set up: the first INVITE
    /// is checked as that peer checks it and answered; anything else that
    /// needs an answer gets one.
    async fn at_peer(
        &mut self,
        p: Peer,
        inc: Incoming,
        answered: &mut Option<Answer>,
        rep: &mut CallReport,
    ) -> Result<()> {
        match inc.msg.method_str() {
            Some("INVITE") => match answered {
                None => {
                    if let Err(e) = check(p, &inc) {
                        rep.problems.push(format!("{}: {e}", p.name()));
                    }
                    let call = self.peer(p).answer(&inc).await?;
                    rep.answered = Some((p, inc.msg));
                    *answered = Some(Answer {
                        peer: p,
                        call,
                        acked: false,
                    });
                }
                Some(a) => {
                    rep.problems.push(format!(
                        "{} got an INVITE too, after {} answered",
                        p.name(),
                        a.peer.name()
                    ));
                    inc.reply(
                        480,
                        "Temporarily Unavailable",
                        Some(&unique("x")),
                        &[],
                        None,
                    )
                    .await?;
                }
            },
            // The SBC's ACK of the answer may come before its 200 reaches the carrier.
            Some("ACK") => {
                if let Some(a) = answered.as_mut().filter(|a| {
                    a.peer == p && inc.msg.call_id().ok() == Some(a.call.dialog.call_id.as_str())
                }) {
                    a.acked = true;
                }
            }
            Some("CANCEL") | Some("BYE") => {
                inc.reply(200, "OK", None, &[], None).await?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Whatever is left at the peers after a call: an INVITE there is a
    /// call nobody will answer (refused, and a problem).
    async fn strays(&mut self, problems: &mut Vec<String>) {
        for p in Peer::ALL {
            while let Ok(inc) = self.peer(p).inbox.try_recv() {
                match inc.msg.method_str() {
                    Some("INVITE") => {
                        problems.push(format!("a stray INVITE at {}", p.name()));
                        let _ = inc
                            .reply(
                                480,
                                "Temporarily Unavailable",
                                Some(&unique("x")),
                                &[],
                                None,
                            )
                            .await;
                    }
                    Some("BYE") | Some("CANCEL") => {
                        let _ = inc.reply(200, "OK", None, &[], None).await;
                    }
                    _ => {}
                }
            }
        }
    }
}

/// The next message at any of `peers`, with the index of the one it came to.
async fn next_at(peers: &mut [Endpoint]) -> (usize, Incoming) {
    std::future::poll_fn(|cx| {
        for (i, ep) in peers.iter_mut().enumerate() {
            // `None` cannot come: each endpoint keeps a sender of its inbox.
            if let Poll::Ready(Some(m)) = ep.inbox.poll_recv(cx) {
                return Poll::Ready((i, m));
            }
        }
        Poll::Pending
    })
    .await
}

fn going_to(to: Peer, label: Option<&str>, target: Duration, rule: &'static str) -> Expect {
    Expect {
        to: to.shown(),
        label: label.map(str::to_owned),
        target,
        rule,
    }
}

/// What the table needs of a call: where it went (the answering peer,
/// cross-checked with the CDR), the setup time (the CDR's `answer_ms`:
/// INVITE in to 200 out at the SBC), the label the peer saw, whether the
/// carrier's call was lost.
fn observe(rep: CallReport) -> Observed {
    let mut seen = Observed {
        lost: u32::from(rep.status != 200),
        problems: rep.problems,
        ..Observed::default()
    };
    if let Some((p, inv)) = &rep.answered {
        seen.went = Some(p.shown());
        seen.label = value(inv, "From").and_then(|f| display_of(&f));
    }
    seen.setup = rep
        .cdr
        .as_ref()
        .and_then(|c| c.answer_ms)
        .map(Duration::from_millis)
        .or(rep.carrier_setup);
    if let (Some(c), Some((p, _))) = (&rep.cdr, &rep.answered) {
        let last = c.attempts.last();
        if c.to_trunk.as_deref() != Some(p.trunk())
            || last.map(|a| a.peer.as_str()) != Some(p.host())
        {
            seen.problems.push(format!(
                "{} answered, but the CDR says {}/{}",
                p.name(),
                c.to_trunk.as_deref().unwrap_or("-"),
                last.map_or("-", |a| a.peer.as_str())
            ));
        }
    }
    seen
}

/// What peer `p` checks on the INVITE it gets: Microsoft's rules at Teams
/// and ACS; plain RTP/AVP with G.711 and no rtcp-mux at the gateway and the
/// external number; the external number is called with the originally
/// called number in Diversion.
fn check(p: Peer, inc: &Incoming) -> Result<()> {
    match p {
        Sip | Sip2 | Sip3 => microsoft_rules(inc, TEAMS_FQDN).map(drop),
        Acs => microsoft_rules(inc, ACS_FQDN).map(drop),
        Gateway => plain_rtp(&inc.msg),
        External => forwarded(&inc.msg),
    }
}

/// An INVITE forwarded to the external number: plain RTP, the number in
/// the Request-URI, the number first called in Diversion (no-answer).
fn forwarded(m: &Message) -> Result<()> {
    plain_rtp(m)?;
    let ruri = String::from_utf8_lossy(m.request_uri_raw().unwrap_or_default()).into_owned();
    if !ruri.starts_with(&format!("sip:{FORWARD_NUMBER}@")) {
        return Err(format!("called as {ruri}, not {FORWARD_NUMBER}"));
    }
    let div = value(m, "Diversion").ok_or("no Diversion header")?;
    if !div.contains(CALLED_E164) || !div.contains("reason=no-answer") {
        return Err(format!(
            "Diversion {div} does not name {CALLED_E164} with reason=no-answer"
        ));
    }
    Ok(())
}

/// An offer for a plain SIP peer: RTP/AVP without a key, G.711, no rtcp-mux.
fn plain_rtp(m: &Message) -> Result<()> {
    let sdp = Remote::read(m.body())?;
    if sdp.proto != "RTP/AVP" || sdp.crypto.is_some() {
        return Err(format!(
            "offered {}{}, plain RTP/AVP expected",
            sdp.proto,
            if sdp.crypto.is_some() {
                " with a=crypto"
            } else {
                ""
            }
        ));
    }
    if sdp.rtcp_mux {
        return Err("offered a=rtcp-mux".into());
    }
    if !sdp.formats.iter().any(|f| f == "8" || f == "0") {
        return Err(format!(
            "offered no G.711 (formats {})",
            sdp.formats.join(" ")
        ));
    }
    Ok(())
}

fn first_words(m: &Message) -> String {
    crate::peers::first_line(&m.to_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str =
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR\r\n";

    fn invite(
        ruri: &str,
        diversion: Option<&str>,
        proto: &str,
        fmts: &str,
        extra: &str,
    ) -> Message {
        let sdp = format!(
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio 16000 {proto} {fmts}\r\na=rtpmap:8 PCMA/8000\r\n{extra}a=sendrecv\r\n"
        );
        let mut h = vec![
            ("Via", "SIP/2.0/UDP 127.0.0.1:15060;branch=z9hG4bK1"),
            (
                "From",
                "\"Fail-over\" <sip:+49401112222@sbc.example.test>;tag=1",
            ),
            ("To", "<sip:+4915112345@sbc.example.test>"),
            ("Call-ID", "c1"),
            ("CSeq", "1 INVITE"),
        ];
        if let Some(d) = diversion {
            h.push(("Diversion", d));
        }
        request("INVITE", ruri, &h, Some(sdp.as_bytes())).unwrap()
    }

    #[test]
    fn the_gateway_takes_only_plain_g711_without_rtcp_mux() {
        let ok = invite(
            "sip:+49301234567@127.0.0.2:15100",
            None,
            "RTP/AVP",
            "8 101",
            "",
        );
        assert_eq!(plain_rtp(&ok), Ok(()));
        let srtp = invite("sip:x@y", None, "RTP/SAVP", "8", KEY);
        assert_eq!(
            plain_rtp(&srtp),
            Err("offered RTP/SAVP with a=crypto, plain RTP/AVP expected".into())
        );
        let mux = invite("sip:x@y", None, "RTP/AVP", "8", "a=rtcp-mux\r\n");
        assert_eq!(plain_rtp(&mux), Err("offered a=rtcp-mux".into()));
        let g722 = invite("sip:x@y", None, "RTP/AVP", "9 101", "");
        assert_eq!(
            plain_rtp(&g722),
            Err("offered no G.711 (formats 9 101)".into())
        );
    }

    #[test]
    fn the_external_number_wants_its_number_and_the_diversion() {
        let div = "<sip:+49301234567@sbc.example.test>;reason=no-answer;counter=1";
        let ok = invite(
            "sip:+4915112345@127.0.0.3:15110",
            Some(div),
            "RTP/AVP",
            "8",
            "",
        );
        assert_eq!(forwarded(&ok), Ok(()));
        let none = invite("sip:+4915112345@127.0.0.3:15110", None, "RTP/AVP", "8", "");
        assert_eq!(forwarded(&none), Err("no Diversion header".into()));
        let other = invite(
            "sip:+49301234567@127.0.0.3:15110",
            Some(div),
            "RTP/AVP",
            "8",
            "",
        );
        assert!(forwarded(&other).unwrap_err().starts_with("called as"));
        let busy = "<sip:+49301234567@sbc.example.test>;reason=user-busy";
        let busy = invite(
            "sip:+4915112345@127.0.0.3:15110",
            Some(busy),
            "RTP/AVP",
            "8",
            "",
        );
        assert!(forwarded(&busy).unwrap_err().contains("reason=no-answer"));
    }

    #[test]
    fn targets_come_from_the_embedded_config() {
        let cfg = config::parse(CONFIG, "drill.toml").unwrap();
        let t = Timing::of(&cfg).unwrap();
        assert_eq!(t.ms_attempt, Duration::from_secs(2));
        assert_eq!(t.gateway_attempt, Duration::from_secs(2));
        assert_eq!(t.window, Duration::from_secs(4));
        assert_eq!(t.options, Duration::from_secs(2));
        // Every peer of the drill is where the config puts it.
        for p in Peer::ALL {
            let trunk = cfg.trunks.iter().find(|tr| tr.name == p.trunk()).unwrap();
            let peer = trunk.peers.iter().find(|x| x.host == p.host()).unwrap();
            assert_eq!(peer.addr, Some(addr(p.addr()).unwrap()), "{p:?}");
        }
    }
}
