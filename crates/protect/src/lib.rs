//! Protection against floods and scanners, in the spirit of Kamailio's
//! `pike` module: every source address has a budget of requests per method
//! class (INVITE, REGISTER, the rest), kept as token buckets; a source that
//! keeps exceeding its budget is banned for a while and everything it sends
//! is dropped unread. Trunk peers (Microsoft's ranges, the carrier's
//! addresses) are trusted: their budgets are higher, they are never banned,
//! and their excess is answered (503) rather than dropped. User-Agent
//! signatures of known scanners (SIPVicious' `friendly-scanner`, `sipcli`…)
//! ban their source at once.
//!
//! Sans-IO: the caller passes the time; nothing here reads a clock, a
//! socket or a message. Memory is bounded: at most
//! [`Config::max_sources`] sources are tracked (≈ 100 bytes each); when the
//! table is full and nothing idle can be pruned, new sources share one
//! budget (so a flood from spoofed addresses cannot grow the table or
//! starve the sources already known).

#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use trunk::Cidr;

/// A budget: `per_second` requests on average, up to `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Sustained requests per second.
    pub per_second: f32,
    /// Requests that may come at once (the bucket's size).
    pub burst: f32,
}

impl Rate {
    /// A budget of `per_second` with a burst of twice that (at least 1).
    pub fn per_second(per_second: f32) -> Rate {
        Rate {
            per_second,
            burst: (per_second * 2.0).max(1.0),
        }
    }
}

/// Which budget a request draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// INVITE (new calls and re-INVITEs).
    Invite,
    /// REGISTER.
    Register,
    /// Every other request (OPTIONS, BYE, ACK, …).
    Other,
}

impl Class {
    /// The class of a request method.
    pub fn of(method: &[u8]) -> Class {
        match method {
            b"INVITE" => Class::Invite,
            b"REGISTER" => Class::Register,
            _ => Class::Other,
        }
    }

    fn index(self) -> usize {
        match self {
            Class::Invite => 0,
            Class::Register => 1,
            Class::Other => 2,
        }
    }
}

/// What is allowed.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Budgets of an untrusted source: INVITE, REGISTER, other.
    pub untrusted: [Rate; 3],
    /// Budgets of a trusted source (a trunk peer).
    pub trusted: [Rate; 3],
    /// Trusted sources: never banned, their own budgets.
    pub trusted_sources: Vec<Cidr>,
    /// An untrusted source over its budget this many times within
    /// `ban_window` is banned. 0: never ban.
    pub ban_after: u32,
    /// The window over which excess requests are counted.
    pub ban_window: Duration,
    /// How long a ban lasts.
    pub ban_for: Duration,
    /// Most sources tracked at once.
    pub max_sources: usize,
    /// User-Agent substrings (case-insensitive) of scanners.
    pub scanners: Vec<String>,
}

/// The User-Agent signatures of common SIP scanners.
pub const DEFAULT_SCANNERS: [&str; 9] = [
    "friendly-scanner",
    "sipvicious",
    "sipcli",
    "sip-scan",
    "sundayddr",
    "iwar",
    "sivus",
    "vaxsipuseragent",
    "smap",
];

impl Default for Config {
    /// Untrusted: 5 INVITE/s, 10 REGISTER/s, 20 others/s (bursts of twice
    /// that); trusted: 10,000/s each (a runaway peer, not a busy trunk:
    /// per-trunk admission limits are for that). 50 excess requests in 10 s ban a source
    /// for 5 minutes. 100,000 sources tracked.
    fn default() -> Config {
        let untrusted = [
            Rate::per_second(5.0),
            Rate::per_second(10.0),
            Rate::per_second(20.0),
        ];
        Config {
            untrusted,
            trusted: [Rate::per_second(10_000.0); 3],
            trusted_sources: Vec::new(),
            ban_after: 50,
            ban_window: Duration::from_secs(10),
            ban_for: Duration::from_secs(300),
            max_sources: 100_000,
            scanners: DEFAULT_SCANNERS.iter().map(|s| (*s).to_owned()).collect(),
        }
    }
}

/// What to do with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Within budget.
    Pass,
    /// Over budget: drop it (untrusted) or answer 503 (trusted).
    Excess {
        /// The source is trusted (answer rather than drop).
        trusted: bool,
    },
    /// The source is banned: drop it unread.
    Banned,
}

/// What the limiter did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    /// Requests within budget.
    pub passed: u64,
    /// Requests over budget (dropped or answered 503).
    pub excess: u64,
    /// Messages dropped because their source was banned.
    pub banned_drops: u64,
    /// Bans imposed (excess, scanners).
    pub bans: u64,
    /// Requests with a scanner's User-Agent.
    pub scanners: u64,
    /// Requests of new sources counted in the shared budget (table full).
    pub overflow: u64,
    /// Sources banned now.
    pub banned_now: u64,
    /// Sources tracked now.
    pub sources: u64,
}

#[derive(Debug, Clone)]
struct Entry {
    tokens: [f32; 3],
    at: Instant,
    trusted: bool,
    strikes: u32,
    strikes_since: Instant,
    banned_until: Option<Instant>,
}

impl Entry {
    fn new(now: Instant, rates: &[Rate; 3], trusted: bool) -> Entry {
        Entry {
            tokens: rates.map(|r| r.burst),
            at: now,
            trusted,
            strikes: 0,
            strikes_since: now,
            banned_until: None,
        }
    }

    fn banned(&self, now: Instant) -> bool {
        self.banned_until.is_some_and(|t| t > now)
    }

    fn refill(&mut self, now: Instant, rates: &[Rate; 3]) {
        let dt = now.saturating_duration_since(self.at).as_secs_f32();
        if dt > 0.0 {
            for (t, r) in self.tokens.iter_mut().zip(rates) {
                *t = (*t + dt * r.per_second).min(r.burst);
            }
            self.at = now;
        }
    }

    /// Idle: not banned and its buckets would be full again by `now`.
    fn idle(&self, now: Instant, rates: &[Rate; 3]) -> bool {
        if self.banned(now) {
            return false;
        }
        let dt = now.saturating_duration_since(self.at).as_secs_f32();
        self.tokens
            .iter()
            .zip(rates)
            .all(|(t, r)| t + dt * r.per_second >= r.burst)
    }
}

/// Per-source budgets and bans. See the crate documentation.
#[derive(Debug)]
pub struct Limiter {
    cfg: Config,
    sources: HashMap<IpAddr, Entry>,
    /// The budget new sources share while the table is full.
    overflow: Entry,
    counters: Counters,
    scanners: Vec<Vec<u8>>,
}

impl Limiter {
    /// A limiter with no source known yet.
    pub fn new(cfg: Config, now: Instant) -> Limiter {
        let scanners = cfg
            .scanners
            .iter()
            .filter(|s| !s.is_empty())
            .map(|s| s.to_ascii_lowercase().into_bytes())
            .collect();
        Limiter {
            overflow: Entry::new(now, &cfg.untrusted, false),
            sources: HashMap::new(),
            counters: Counters::default(),
            scanners,
            cfg,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// True when `ip` is one of the trusted sources.
    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.cfg.trusted_sources.iter().any(|c| c.contains(ip))
    }

    /// Replaces the trusted ranges; sources already known follow them (a
    /// source no longer trusted keeps its tokens, capped to its new budget).
    pub fn set_trusted(&mut self, trusted: Vec<Cidr>) {
        self.cfg.trusted_sources = trusted;
        let cfg = &self.cfg;
        for (ip, e) in &mut self.sources {
            e.trusted = cfg.trusted_sources.iter().any(|c| c.contains(*ip));
            let rates = if e.trusted {
                &cfg.trusted
            } else {
                &cfg.untrusted
            };
            for (t, r) in e.tokens.iter_mut().zip(rates) {
                *t = t.min(r.burst);
            }
        }
    }

    /// True when `ip` is banned now. Counts the drop: call it for a message
    /// about to be dropped unread.
    pub fn drop_if_banned(&mut self, now: Instant, ip: IpAddr) -> bool {
        let banned = self
            .sources
            .get(&ip.to_canonical())
            .is_some_and(|e| e.banned(now));
        if banned {
            self.counters.banned_drops += 1;
        }
        banned
    }

    /// Draws one request of `class` from `ip`'s budget.
    pub fn check(&mut self, now: Instant, ip: IpAddr, class: Class) -> Verdict {
        let ip = ip.to_canonical();
        let known = self.sources.contains_key(&ip);
        if !known && self.sources.len() >= self.cfg.max_sources {
            self.prune(now);
        }
        // Only a source seen for the first time is looked up in the trusted
        // ranges (an entry remembers the answer). A trusted one gets an entry
        // of its own even in a full table (up to twice its size): a trunk
        // peer that idled out of the table must not share the budget of a
        // flood of new addresses.
        let trusted = !known && self.is_trusted(ip);
        let len = self.sources.len();
        let max = self.cfg.max_sources;
        let shared = !known && (len >= max.saturating_mul(2) || (len >= max && !trusted));
        let cfg = &self.cfg;
        let entry = if shared {
            self.counters.overflow += 1;
            &mut self.overflow
        } else {
            let rates = if trusted {
                &cfg.trusted
            } else {
                &cfg.untrusted
            };
            self.sources
                .entry(ip)
                .or_insert_with(|| Entry::new(now, rates, trusted))
        };
        if entry.banned(now) {
            self.counters.banned_drops += 1;
            return Verdict::Banned;
        }
        let rates = if entry.trusted {
            &cfg.trusted
        } else {
            &cfg.untrusted
        };
        entry.refill(now, rates);
        let t = &mut entry.tokens[class.index()];
        if *t >= 1.0 {
            *t -= 1.0;
            self.counters.passed += 1;
            return Verdict::Pass;
        }
        self.counters.excess += 1;
        if now.saturating_duration_since(entry.strikes_since) > cfg.ban_window {
            entry.strikes = 0;
            entry.strikes_since = now;
        }
        entry.strikes += 1;
        // The shared overflow budget is never banned: it is everybody's.
        if !entry.trusted && !shared && cfg.ban_after > 0 && entry.strikes >= cfg.ban_after {
            entry.banned_until = Some(now + cfg.ban_for);
            entry.strikes = 0;
            self.counters.bans += 1;
        }
        Verdict::Excess {
            trusted: entry.trusted,
        }
    }

    /// True when `user_agent` carries a scanner's signature.
    pub fn is_scanner(&self, user_agent: &[u8]) -> bool {
        self.scanners.iter().any(|s| {
            user_agent
                .windows(s.len())
                .any(|w| w.eq_ignore_ascii_case(s))
        })
    }

    /// A scanner's request came from `ip`: counted, and the source is
    /// banned (unless trusted).
    pub fn scanner_seen(&mut self, now: Instant, ip: IpAddr) {
        self.counters.scanners += 1;
        let ip = ip.to_canonical();
        if self.is_trusted(ip) || self.cfg.ban_after == 0 {
            return;
        }
        if !self.sources.contains_key(&ip) && self.sources.len() >= self.cfg.max_sources {
            self.prune(now);
            if self.sources.len() >= self.cfg.max_sources {
                return;
            }
        }
        let e = self
            .sources
            .entry(ip)
            .or_insert_with(|| Entry::new(now, &self.cfg.untrusted, false));
        if !e.banned(now) {
            self.counters.bans += 1;
        }
        e.banned_until = Some(now + self.cfg.ban_for);
    }

    /// Housekeeping (about once a second): forgets idle sources and ended
    /// bans, and counts the bans in force.
    pub fn tick(&mut self, now: Instant) {
        self.prune(now);
        self.counters.banned_now = self.sources.values().filter(|e| e.banned(now)).count() as u64;
    }

    fn prune(&mut self, now: Instant) {
        let cfg = &self.cfg;
        self.sources.retain(|_, e| {
            let rates = if e.trusted {
                &cfg.trusted
            } else {
                &cfg.untrusted
            };
            !e.idle(now, rates)
        });
    }

    /// The sources banned now with the time their ban has left, longest
    /// first, at most `limit`.
    pub fn banned(&self, now: Instant, limit: usize) -> Vec<(IpAddr, Duration)> {
        let mut v: Vec<(IpAddr, Duration)> = self
            .sources
            .iter()
            .filter_map(|(ip, e)| {
                let until = e.banned_until.filter(|t| *t > now)?;
                Some((*ip, until - now))
            })
            .collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        v.truncate(limit);
        v
    }

    /// Counters (`sources` as of now).
    pub fn counters(&self) -> Counters {
        Counters {
            sources: self.sources.len() as u64,
            ..self.counters
        }
    }
}

#[cfg(test)]
mod tests;
