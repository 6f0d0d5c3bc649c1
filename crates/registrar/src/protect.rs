//! Protection against password guessing: failed authentications counted
//! per source IP and per user in a window; past a limit the source is
//! blocked (or the user locked) for a while. Tables are bounded: spoofed
//! UDP sources cannot grow them past `max_tracked`.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a blocked source or locked user gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockAction {
    /// No answer at all ([`crate::Output::Dropped`]): a scanner learns
    /// nothing and spends its timers.
    Drop,
    /// `403 Forbidden`: a misconfigured phone shows why it stopped.
    Forbidden,
}

/// Protection settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProtectConfig {
    /// Failures from one source IP within `window` that block it; 0 never
    /// blocks.
    pub max_failures_per_ip: u32,
    /// Failures for one user within `window` that lock the user (any
    /// source); 0 never locks. A lock also keeps the real phone out, so
    /// this limit is best higher than the per-IP one.
    pub max_failures_per_user: u32,
    /// The counting window.
    pub window: Duration,
    /// How long a block or lock lasts.
    pub block_for: Duration,
    /// What blocked requests get.
    pub action: BlockAction,
    /// Most sources (and, separately, users) tracked at once.
    pub max_tracked: usize,
}

impl Default for ProtectConfig {
    fn default() -> Self {
        ProtectConfig {
            max_failures_per_ip: 5,
            max_failures_per_user: 20,
            window: Duration::from_secs(60),
            block_for: Duration::from_secs(300),
            action: BlockAction::Drop,
            max_tracked: 100_000,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Tracker {
    window_start: Instant,
    failures: u32,
    blocked_until: Option<Instant>,
}

impl Tracker {
    fn blocked(&self, now: Instant) -> bool {
        self.blocked_until.is_some_and(|t| now < t)
    }

    /// Counts one failure; true when it starts a block.
    fn fail(&mut self, now: Instant, cfg: &ProtectConfig, max: u32) -> bool {
        if now.saturating_duration_since(self.window_start) >= cfg.window {
            self.window_start = now;
            self.failures = 0;
        }
        self.failures = self.failures.saturating_add(1);
        if max > 0 && self.failures >= max && !self.blocked(now) {
            self.blocked_until = Some(now + cfg.block_for);
            self.failures = 0;
            return true;
        }
        false
    }

    fn idle(&self, now: Instant, cfg: &ProtectConfig) -> bool {
        !self.blocked(now) && now.saturating_duration_since(self.window_start) >= cfg.window
    }
}

#[derive(Debug, Clone)]
struct Table<K> {
    map: HashMap<K, Tracker>,
}

impl<K: Hash + Eq> Table<K> {
    fn blocked(&self, k: &K, now: Instant) -> bool {
        self.map.get(k).is_some_and(|t| t.blocked(now))
    }

    fn fail(&mut self, k: K, now: Instant, cfg: &ProtectConfig, max: u32) -> bool {
        if !self.map.contains_key(&k) && self.map.len() >= cfg.max_tracked {
            self.purge(now, cfg);
            if self.map.len() >= cfg.max_tracked {
                return false; // full of live entries: count nothing new
            }
        }
        self.map
            .entry(k)
            .or_insert(Tracker {
                window_start: now,
                failures: 0,
                blocked_until: None,
            })
            .fail(now, cfg, max)
    }

    fn purge(&mut self, now: Instant, cfg: &ProtectConfig) {
        self.map.retain(|_, t| !t.idle(now, cfg));
    }
}

/// The failure counters and blocks.
#[derive(Debug, Clone)]
pub(crate) struct Guard {
    cfg: ProtectConfig,
    ips: Table<IpAddr>,
    users: Table<Arc<str>>,
}

/// What one failure led to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Fail {
    pub(crate) ip_blocked: bool,
    pub(crate) user_locked: bool,
}

impl Guard {
    pub(crate) fn new(cfg: ProtectConfig) -> Guard {
        Guard {
            cfg,
            ips: Table {
                map: HashMap::new(),
            },
            users: Table {
                map: HashMap::new(),
            },
        }
    }

    pub(crate) fn action(&self) -> BlockAction {
        self.cfg.action
    }

    pub(crate) fn ip_blocked(&self, ip: IpAddr, now: Instant) -> bool {
        self.ips.blocked(&ip, now)
    }

    pub(crate) fn user_locked(&self, user: &Arc<str>, now: Instant) -> bool {
        self.users.blocked(user, now)
    }

    /// Counts a failure from `ip`, and for `user` when it is a known user
    /// (unknown usernames are not tracked: they would fill the table).
    pub(crate) fn fail(&mut self, now: Instant, ip: IpAddr, user: Option<&Arc<str>>) -> Fail {
        let cfg = self.cfg;
        Fail {
            ip_blocked: self.ips.fail(ip, now, &cfg, cfg.max_failures_per_ip),
            user_locked: user.is_some_and(|u| {
                self.users
                    .fail(u.clone(), now, &cfg, cfg.max_failures_per_user)
            }),
        }
    }

    pub(crate) fn purge(&mut self, now: Instant) {
        let cfg = self.cfg;
        self.ips.purge(now, &cfg);
        self.users.purge(now, &cfg);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.ips.map.is_empty() && self.users.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::t0;

    fn cfg() -> ProtectConfig {
        ProtectConfig {
            max_failures_per_ip: 3,
            max_failures_per_user: 5,
            window: Duration::from_secs(10),
            block_for: Duration::from_secs(60),
            action: BlockAction::Drop,
            max_tracked: 2,
        }
    }

    #[test]
    fn n_failures_in_the_window_block_the_source_for_the_period() {
        let t = t0();
        let mut g = Guard::new(cfg());
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(g.fail(t, ip, None), Fail::default());
        assert_eq!(g.fail(t, ip, None), Fail::default());
        assert!(!g.ip_blocked(ip, t));
        assert!(g.fail(t, ip, None).ip_blocked);
        assert!(g.ip_blocked(ip, t + Duration::from_secs(59)));
        assert!(!g.ip_blocked(ip, t + Duration::from_secs(60)));
        assert!(!g.ip_blocked("192.0.2.2".parse().unwrap(), t));
    }

    #[test]
    fn failures_spread_beyond_the_window_do_not_block() {
        let t = t0();
        let mut g = Guard::new(cfg());
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for i in 0..10 {
            let r = g.fail(t + Duration::from_secs(6 * i), ip, None);
            assert!(!r.ip_blocked, "failure {i}");
        }
    }

    #[test]
    fn users_lock_across_sources() {
        let t = t0();
        let mut g = Guard::new(ProtectConfig {
            max_tracked: 100,
            ..cfg()
        });
        let alice: Arc<str> = "alice".into();
        for i in 0..4u8 {
            let ip = IpAddr::from([198, 51, 100, i]);
            assert!(!g.fail(t, ip, Some(&alice)).user_locked);
        }
        assert!(
            g.fail(t, IpAddr::from([198, 51, 100, 9]), Some(&alice))
                .user_locked
        );
        assert!(g.user_locked(&alice, t));
        assert!(!g.user_locked(&"bob".into(), t));
    }

    #[test]
    fn tables_are_bounded_and_purged() {
        let t = t0();
        let mut g = Guard::new(cfg());
        for i in 0..5u8 {
            g.fail(t, IpAddr::from([203, 0, 113, i]), None);
        }
        assert_eq!(g.ips.map.len(), 2, "bounded at max_tracked");
        g.purge(t + Duration::from_secs(10));
        assert!(g.is_empty());
        // After a purge there is room again.
        g.fail(
            t + Duration::from_secs(11),
            IpAddr::from([203, 0, 113, 7]),
            None,
        );
        assert_eq!(g.ips.map.len(), 1);
    }
}
