//! The attempt plan of one call: the single place that decides whether a
//! call tries another destination, and which one.
//!
//! Outcomes go in ([`Plan::on_outcome`], [`Plan::skip`], [`Plan::on_window`],
//! [`Plan::on_ring_timeout`]); the next action comes out ([`Next`]). The
//! rules, in order:
//!
//! 1. Every peer that is not known down, of every destination, in route
//!    order (a trunk's peers in their health ranking: sip → sip2 → sip3).
//!    A known-down peer or trunk never delays a call while a healthy
//!    destination exists.
//! 2. Then the known-down peers, as a last resort, in the same order (each
//!    trunk ranks its down peers likeliest-recovered first).
//! 3. Then the route's forward-on-failure destination, once.
//!
//! A failed attempt moves on only while nothing but `100 Trying` reached
//! the caller, never on 603 Decline, always on a timeout, a transport or
//! TLS failure, and on a final status only when it is one of the trunk's
//! failover codes. The forward-on-failure window and ring timeout go
//! straight to rule 3.

use std::collections::VecDeque;
use std::time::Duration;

use crate::{Destination, Forward, Route, Target};

/// How one attempt toward a destination ended (or how far it got).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A final non-2xx response with this status code.
    Final(u16),
    /// No response in time: nothing at all within the trunk's per-attempt
    /// timer, or no final within the transaction's Timer B.
    Timeout,
    /// The connection could not be opened or failed (TCP refused or reset,
    /// ICMP unreachable, a send error).
    TransportError,
    /// The TLS handshake failed (either side refused the certificate).
    Tls,
    /// A provisional other than 100 was relayed to the caller.
    Provisional,
    /// The call was answered (2xx).
    Answered,
}

impl Outcome {
    /// Short text for CDRs and logs (`503`, `timeout`, `transport`, `tls`…).
    pub fn text(self) -> String {
        match self {
            Outcome::Final(c) => c.to_string(),
            Outcome::Timeout => "timeout".into(),
            Outcome::TransportError => "transport".into(),
            Outcome::Tls => "tls".into(),
            Outcome::Provisional => "provisional".into(),
            Outcome::Answered => "answered".into(),
        }
    }
}

/// One attempt of a call toward one peer of one destination's trunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// Index of the destination in the route's `to` list; `None` for the
    /// forward-on-failure destination.
    pub dest: Option<usize>,
    /// The trunk's name.
    pub trunk: String,
    /// Index of the peer in the trunk's configured peer list.
    pub peer: usize,
    /// What is called.
    pub target: Target,
    /// The label for this attempt (`None` on the route's first destination).
    pub label: Option<String>,
    /// The peer was known down when the plan was made (rule 2).
    pub last_resort: bool,
}

impl Attempt {
    /// True for the forward-on-failure destination.
    pub fn is_forward(&self) -> bool {
        self.dest.is_none()
    }
}

/// What the call does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Start this attempt (after cancelling whatever is pending).
    Try(Attempt),
    /// Nothing more to try: answer the caller `code`.
    Fail {
        /// Status for the caller.
        code: u16,
        /// Why, for the CDR and the log.
        reason: String,
        /// True when the callee's own answer ends the call (486, 603, …),
        /// false when the SBC gave up.
        callee: bool,
    },
}

#[derive(Debug, Clone, Copy)]
struct Candidate {
    dest: usize,
    peer: usize,
    down: bool,
}

/// The attempts of one call. See the module documentation for the rules.
#[derive(Debug, Clone)]
pub struct Plan {
    route: String,
    dests: Vec<Destination>,
    queue: VecDeque<Candidate>,
    forward: Option<Forward>,
    /// The forward trunk's best peer when the plan was made.
    forward_peer: usize,
    forwarded: bool,
    history: Vec<Attempt>,
    last: Option<Outcome>,
}

impl Plan {
    /// Plans a call on `route`. `peers(trunk)` ranks that trunk's peers:
    /// `(peer index, known down)`, usable ones first in the order to try,
    /// then the down ones likeliest-recovered first (what `trunk::Health`
    /// gives). A destination whose trunk has no peer is skipped.
    pub fn new(route: &Route, peers: impl Fn(&str) -> Vec<(usize, bool)>) -> Plan {
        let ranked: Vec<Vec<(usize, bool)>> = route.to.iter().map(|d| peers(&d.trunk)).collect();
        let mut queue = VecDeque::new();
        for down in [false, true] {
            for (dest, ps) in ranked.iter().enumerate() {
                for &(peer, d) in ps.iter().filter(|(_, d)| *d == down) {
                    queue.push_back(Candidate {
                        dest,
                        peer,
                        down: d,
                    });
                }
            }
        }
        let forward_peer = route
            .forward
            .as_ref()
            .and_then(|f| peers(&f.to.trunk).first().map(|(p, _)| *p))
            .unwrap_or(0);
        Plan {
            route: route.name.clone(),
            dests: route.to.clone(),
            queue,
            forward: route.forward.clone(),
            forward_peer,
            forwarded: false,
            history: Vec::new(),
            last: None,
        }
    }

    /// The name of the route the plan was made from.
    pub fn route(&self) -> &str {
        &self.route
    }

    /// The first attempt (or the failure when there is nothing to try).
    pub fn start(&mut self) -> Next {
        self.advance()
    }

    /// The current attempt ended with `outcome`. `failover_codes` are the
    /// attempt's trunk's; `began` is true once a provisional (other than
    /// 100) or a final response was relayed to the caller.
    pub fn on_outcome(&mut self, outcome: Outcome, failover_codes: &[u16], began: bool) -> Next {
        self.last = Some(outcome);
        if !Plan::may_fail_over(outcome, failover_codes, began) {
            let (code, callee) = match outcome {
                Outcome::Final(c) => (c, true),
                Outcome::Timeout => (408, false),
                _ => (503, false),
            };
            let reason = if callee {
                format!("callee answered {code}")
            } else {
                format!("attempt failed ({}) after the call began", outcome.text())
            };
            return Next::Fail {
                code,
                reason,
                callee,
            };
        }
        self.advance()
    }

    /// The attempt handed out last could not even start (its trunk is at
    /// its call limit, its peer has no address…). With `whole_destination`
    /// the other peers of that destination are skipped too.
    pub fn skip(&mut self, whole_destination: bool) -> Next {
        if whole_destination {
            if let Some(d) = self.history.last().and_then(|a| a.dest) {
                self.queue.retain(|c| c.dest != d);
            }
        }
        self.advance()
    }

    /// The forward-on-failure window passed with no destination handling
    /// the call: the forward destination, or the failure when there is none
    /// (or it was tried already).
    pub fn on_window(&mut self) -> Next {
        self.queue.clear();
        self.last = Some(Outcome::Timeout);
        self.advance()
    }

    /// The call rang for the forward's ring timeout without an answer:
    /// the forward destination (allowed although an 18x was relayed).
    pub fn on_ring_timeout(&mut self) -> Next {
        self.on_window()
    }

    /// The forward-on-failure window, if the route has one.
    pub fn forward_window(&self) -> Option<Duration> {
        self.forward
            .as_ref()
            .filter(|_| !self.forwarded)
            .map(|f| f.window)
    }

    /// The forward-on-failure ring timeout, if the route has one.
    pub fn ring_timeout(&self) -> Option<Duration> {
        self.forward
            .as_ref()
            .filter(|_| !self.forwarded)
            .and_then(|f| f.ring_timeout)
    }

    /// True when nothing is left to try (not even the forward).
    pub fn is_exhausted(&self) -> bool {
        self.queue.is_empty() && (self.forwarded || self.forward.is_none())
    }

    /// Every attempt handed out so far, in order (for the CDR).
    pub fn attempts(&self) -> &[Attempt] {
        &self.history
    }

    /// The failover rule: whether a failed attempt may move on. Never once a
    /// provisional (other than 100) or a final response was relayed to the
    /// caller, never after an answer, never on 603 Decline (the callee
    /// refused: nobody else should ring), yes on a timeout, a transport or a
    /// TLS failure, and on a final status only when it is one of
    /// `failover_codes`.
    pub fn may_fail_over(outcome: Outcome, failover_codes: &[u16], began: bool) -> bool {
        if began {
            return false;
        }
        match outcome {
            Outcome::Final(603) => false,
            Outcome::Final(code) => failover_codes.contains(&code),
            Outcome::Timeout | Outcome::TransportError | Outcome::Tls => true,
            Outcome::Provisional | Outcome::Answered => false,
        }
    }

    fn advance(&mut self) -> Next {
        if let Some(c) = self.queue.pop_front() {
            let d = &self.dests[c.dest];
            let a = Attempt {
                dest: Some(c.dest),
                trunk: d.trunk.clone(),
                peer: c.peer,
                target: d.target.clone(),
                label: if c.dest == 0 { None } else { d.label.clone() },
                last_resort: c.down,
            };
            self.history.push(a.clone());
            return Next::Try(a);
        }
        if let Some(f) = self.forward.as_ref().filter(|_| !self.forwarded) {
            self.forwarded = true;
            let a = Attempt {
                dest: None,
                trunk: f.to.trunk.clone(),
                peer: self.forward_peer,
                target: f.to.target.clone(),
                label: f.to.label.clone(),
                last_resort: false,
            };
            self.history.push(a.clone());
            return Next::Try(a);
        }
        let (code, reason) = match self.last {
            Some(Outcome::Final(c)) => (c, format!("every destination failed (last {c})")),
            Some(Outcome::Timeout) => (408, "every destination timed out".into()),
            Some(Outcome::TransportError | Outcome::Tls) | None => {
                (503, "no destination reachable".into())
            }
            Some(_) => (500, "routing ended".into()),
        };
        Next::Fail {
            code,
            reason,
            callee: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(to: Vec<Destination>, forward: Option<Forward>) -> Route {
        Route {
            name: "r".into(),
            from: vec![],
            called: None,
            to,
            forward,
        }
    }

    fn teams_then_acs() -> Route {
        route(
            vec![
                Destination::trunk("teams", None),
                Destination::trunk("acs", Some("Fail-over")),
            ],
            None,
        )
    }

    fn forward_to(number: &str, window_s: u64) -> Forward {
        Forward {
            to: Destination {
                trunk: "carrier".into(),
                target: Target::Number(number.into()),
                label: Some("Fail-over".into()),
            },
            window: Duration::from_secs(window_s),
            ring_timeout: None,
        }
    }

    fn all_up(n: usize) -> Vec<(usize, bool)> {
        (0..n).map(|p| (p, false)).collect()
    }

    fn tried(plan: &mut Plan, first: Next) -> Vec<(String, usize, bool)> {
        let mut out = Vec::new();
        let mut next = first;
        while let Next::Try(a) = next {
            out.push((a.trunk.clone(), a.peer, a.last_resort));
            next = plan.on_outcome(Outcome::Final(503), &[503], false);
        }
        out
    }

    fn t(trunk: &str, peer: usize, down: bool) -> (String, usize, bool) {
        (trunk.into(), peer, down)
    }

    #[test]
    fn plan_walks_sip_sip2_sip3_then_the_next_trunk() {
        let mut plan = Plan::new(&teams_then_acs(), |tr| {
            if tr == "teams" {
                all_up(3)
            } else {
                all_up(1)
            }
        });
        let first = plan.start();
        let got = tried(&mut plan, first);
        assert_eq!(
            got,
            vec![
                t("teams", 0, false),
                t("teams", 1, false),
                t("teams", 2, false),
                t("acs", 0, false)
            ]
        );
        assert!(plan.is_exhausted());
        assert_eq!(plan.attempts().len(), 4);
    }

    #[test]
    fn known_down_teams_never_delays_a_healthy_acs() {
        // Every Teams proxy known down: ACS first, Teams only after it.
        let mut plan = Plan::new(&teams_then_acs(), |tr| {
            if tr == "teams" {
                vec![(1, true), (0, true), (2, true)]
            } else {
                all_up(3)
            }
        });
        let first = plan.start();
        let got = tried(&mut plan, first);
        assert_eq!(
            got,
            vec![
                t("acs", 0, false),
                t("acs", 1, false),
                t("acs", 2, false),
                t("teams", 1, true),
                t("teams", 0, true),
                t("teams", 2, true)
            ]
        );
    }

    #[test]
    fn a_down_proxy_is_tried_after_the_healthy_ones_of_every_destination() {
        let mut plan = Plan::new(&teams_then_acs(), |tr| {
            if tr == "teams" {
                vec![(1, false), (2, false), (0, true)]
            } else {
                all_up(1)
            }
        });
        let first = plan.start();
        let got = tried(&mut plan, first);
        assert_eq!(
            got,
            vec![
                t("teams", 1, false),
                t("teams", 2, false),
                t("acs", 0, false),
                t("teams", 0, true)
            ]
        );
    }

    #[test]
    fn label_only_off_the_first_destination() {
        let mut plan = Plan::new(&teams_then_acs(), |_| vec![(0, true)]);
        let Next::Try(a) = plan.start() else { panic!() };
        assert_eq!(a.label, None, "first destination, even as last resort");
        let Next::Try(b) = plan.on_outcome(Outcome::Timeout, &[], false) else {
            panic!()
        };
        assert_eq!(b.label.as_deref(), Some("Fail-over"));
    }

    #[test]
    fn failover_on_configured_codes_timeout_transport_and_tls() {
        let codes = [408, 503, 504];
        for o in [
            Outcome::Final(408),
            Outcome::Final(503),
            Outcome::Final(504),
            Outcome::Timeout,
            Outcome::TransportError,
            Outcome::Tls,
        ] {
            assert!(Plan::may_fail_over(o, &codes, false), "{o:?}");
        }
        for o in [
            Outcome::Final(404),
            Outcome::Final(486),
            Outcome::Final(500),
        ] {
            assert!(!Plan::may_fail_over(o, &codes, false), "{o:?}");
        }
    }

    #[test]
    fn decline_603_is_never_retried_and_answers_the_caller() {
        assert!(!Plan::may_fail_over(Outcome::Final(603), &[603], false));
        let mut plan = Plan::new(&teams_then_acs(), |_| all_up(1));
        plan.start();
        assert_eq!(
            plan.on_outcome(Outcome::Final(603), &[603], false),
            Next::Fail {
                code: 603,
                reason: "callee answered 603".into(),
                callee: true
            }
        );
    }

    #[test]
    fn nothing_is_retried_after_an_18x() {
        for o in [
            Outcome::Final(503),
            Outcome::Timeout,
            Outcome::TransportError,
        ] {
            assert!(!Plan::may_fail_over(o, &[503], true), "{o:?}");
        }
        let mut plan = Plan::new(&teams_then_acs(), |_| all_up(1));
        plan.start();
        assert!(matches!(
            plan.on_outcome(Outcome::Final(503), &[503], true),
            Next::Fail { code: 503, .. }
        ));
    }

    #[test]
    fn every_destination_failing_goes_to_the_forward_once() {
        let mut plan = Plan::new(
            &route(
                vec![Destination::trunk("teams", None)],
                Some(forward_to("+4915112345", 10)),
            ),
            |_| all_up(1),
        );
        plan.start();
        let Next::Try(f) = plan.on_outcome(Outcome::TransportError, &[], false) else {
            panic!("no forward")
        };
        assert!(f.is_forward());
        assert_eq!(f.trunk, "carrier");
        assert_eq!(f.target, Target::Number("+4915112345".into()));
        assert_eq!(f.label.as_deref(), Some("Fail-over"));
        assert_eq!(plan.forward_window(), None, "the window is spent");
        assert!(matches!(
            plan.on_outcome(Outcome::Final(503), &[503], false),
            Next::Fail { code: 503, .. }
        ));
        assert!(plan.is_exhausted());
    }

    #[test]
    fn window_expiry_skips_what_is_left_and_forwards() {
        let mut plan = Plan::new(
            &route(
                vec![
                    Destination::trunk("teams", None),
                    Destination::trunk("acs", Some("Fail-over")),
                ],
                Some(forward_to("+4915112345", 8)),
            ),
            |_| all_up(3),
        );
        assert_eq!(plan.forward_window(), Some(Duration::from_secs(8)));
        plan.start();
        let Next::Try(f) = plan.on_window() else {
            panic!()
        };
        assert!(f.is_forward());
        // A forward that fails ends the call.
        assert!(matches!(plan.on_window(), Next::Fail { code: 408, .. }));
    }

    #[test]
    fn a_busy_callee_is_not_forwarded() {
        let mut plan = Plan::new(
            &route(
                vec![Destination::trunk("teams", None)],
                Some(forward_to("+4915112345", 8)),
            ),
            |_| all_up(1),
        );
        plan.start();
        assert!(matches!(
            plan.on_outcome(Outcome::Final(486), &[503], false),
            Next::Fail {
                code: 486,
                callee: true,
                ..
            }
        ));
    }

    #[test]
    fn a_trunk_at_its_limit_is_skipped_whole() {
        let mut plan = Plan::new(&teams_then_acs(), |_| all_up(3));
        plan.start();
        let Next::Try(a) = plan.skip(true) else {
            panic!()
        };
        assert_eq!(a.trunk, "acs");
        let Next::Try(b) = plan.skip(false) else {
            panic!()
        };
        assert_eq!((b.trunk.as_str(), b.peer), ("acs", 1));
    }

    #[test]
    fn empty_route_fails_with_503() {
        let mut plan = Plan::new(&route(vec![], None), |_| all_up(1));
        assert!(plan.is_exhausted());
        assert!(matches!(plan.start(), Next::Fail { code: 503, .. }));
    }
}
