//! What stands between the sockets and the call core: per-source budgets
//! and bans ([`protect::Limiter`]), scanner signatures, and global caps on
//! calls and transactions. Every message passes [`Shield::screen`] before
//! the B2BUA sees it; banned sources are dropped before they are parsed
//! ([`Shield::banned`]).
//!
//! Trusted sources (never banned, answered 503 rather than dropped when over
//! budget or over a cap) are the configured `[protect] trusted` ranges plus
//! every address and ACL range of the carrier, gateway, Teams and ACS
//! trunks — not the phones' networks, which are exactly who must not be
//! trusted.

use std::net::IpAddr;
use std::time::Instant;

use b2bua::B2bua;
use protect::{Class, Limiter, Verdict};
use sip::Message;
use trunk::{Cidr, TrunkKind, TrunkSpec};

/// The caps beyond which new calls are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Caps {
    /// Calls in progress.
    pub(crate) calls: usize,
    /// Transactions alive (server and client).
    pub(crate) transactions: usize,
}

impl Default for Caps {
    fn default() -> Caps {
        Caps {
            calls: 20_000,
            transactions: 100_000,
        }
    }
}

/// What to do with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Screen {
    /// On to the B2BUA.
    Pass,
    /// Dropped silently (counted).
    Drop,
    /// Answered 503 with Retry-After (a trusted peer over budget or cap).
    Busy,
}

/// What the shield did beyond the limiter's own counters.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Counters {
    /// New calls refused at a global cap.
    pub(crate) over_cap: u64,
    /// Emergency requests let through whatever the budgets said.
    pub(crate) emergency_passed: u64,
}

/// See the module documentation.
#[derive(Debug)]
pub(crate) struct Shield {
    /// `[protect] enabled = false`: everything passes (caps included).
    enabled: bool,
    limiter: Limiter,
    /// The configured trusted ranges (trunks' are added to them).
    configured: Vec<Cidr>,
    caps: Caps,
    pub(crate) counters: Counters,
}

/// The ranges of the trunks that are trusted: every non-phones trunk's ACL
/// and its peers' addresses.
fn trunk_ranges(trunks: &[TrunkSpec]) -> Vec<Cidr> {
    let mut out = Vec::new();
    for t in trunks.iter().filter(|t| t.kind != TrunkKind::Phones) {
        out.extend(t.acl.iter().cloned());
        out.extend(
            t.peers
                .iter()
                .filter_map(|p| p.addr)
                .map(|a| Cidr::host(a.ip())),
        );
    }
    out
}

impl Shield {
    pub(crate) fn new(
        cfg: Option<protect::Config>,
        caps: Caps,
        trunks: &[TrunkSpec],
        now: Instant,
    ) -> Shield {
        let enabled = cfg.is_some();
        let mut cfg = cfg.unwrap_or_default();
        let configured = cfg.trusted_sources.clone();
        cfg.trusted_sources.extend(trunk_ranges(trunks));
        Shield {
            enabled,
            limiter: Limiter::new(cfg, now),
            configured,
            caps,
            counters: Counters::default(),
        }
    }

    /// The trunks changed (a reload, a peer's new address): the trusted
    /// ranges follow them.
    pub(crate) fn trunks_changed(&mut self, trunks: &[TrunkSpec]) {
        let mut t = self.configured.clone();
        t.extend(trunk_ranges(trunks));
        self.limiter.set_trusted(t);
    }

    /// True (and counted) when `ip` is banned: drop unread.
    pub(crate) fn banned(&mut self, now: Instant, ip: IpAddr) -> bool {
        self.enabled && self.limiter.drop_if_banned(now, ip)
    }

    /// Decides on a parsed message from `ip`. Responses pass (they answer
    /// our own requests); requests are screened for scanners, budgets and,
    /// for new calls, the caps. An emergency request (as the B2BUA judges
    /// it) always passes.
    pub(crate) fn screen(
        &mut self,
        now: Instant,
        msg: &Message,
        from: transport::Peer,
        local: std::net::SocketAddr,
        tls_names: Option<&[String]>,
        b2b: &B2bua,
    ) -> Screen {
        let ip = from.addr.ip();
        if !self.enabled {
            return Screen::Pass;
        }
        let Some(method) = msg.method_str().filter(|_| msg.is_request()) else {
            return Screen::Pass;
        };
        if let Some(ua) = msg.header_by_name("User-Agent") {
            if self.limiter.is_scanner(ua) {
                self.limiter.scanner_seen(now, ip);
                return Screen::Drop;
            }
        }
        // Whether it is an emergency call is asked only of what would be
        // refused (classification costs a little): it then passes anyway.
        let emergency = |counters: &mut Counters| {
            let yes = method == "INVITE"
                && b2b
                    .classify(msg, from, local, tls_names)
                    .is_some_and(|t| b2b.is_emergency(msg, t));
            if yes {
                counters.emergency_passed += 1;
            }
            yes
        };
        let verdict = self.limiter.check(now, ip, Class::of(method.as_bytes()));
        let answer = |trusted: bool| {
            if trusted && method != "ACK" {
                Screen::Busy
            } else {
                Screen::Drop
            }
        };
        if verdict != Verdict::Pass && emergency(&mut self.counters) {
            return Screen::Pass;
        }
        match verdict {
            Verdict::Pass => {}
            Verdict::Banned => return Screen::Drop,
            Verdict::Excess { trusted } => return answer(trusted),
        }
        let new_call = method == "INVITE" && msg.to().ok().is_some_and(|t| t.tag().is_none());
        if new_call
            && (b2b.active_calls() >= self.caps.calls
                || b2b.transactions() >= self.caps.transactions)
        {
            if emergency(&mut self.counters) {
                return Screen::Pass;
            }
            self.counters.over_cap += 1;
            return answer(self.limiter.is_trusted(ip));
        }
        Screen::Pass
    }

    /// Housekeeping, about once a second.
    pub(crate) fn tick(&mut self, now: Instant) {
        self.limiter.tick(now);
    }

    pub(crate) fn limiter(&self) -> &Limiter {
        &self.limiter
    }
}
