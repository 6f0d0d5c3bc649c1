//! # routing — where a call goes, and where it goes next
//!
//! Owns the routing decisions of sbc: number normalisation (regular
//! expression rules per trunk and direction), the routing table (inbound trunk
//! and called-number pattern → an ordered list of destination trunks), the
//! attempt plan of one call (every peer of a trunk in health order, then the
//! next destination), and the one rule that decides whether a failed attempt
//! may move on.
//!
//! This crate does no I/O and reads no clock: peer health comes in as a
//! function from the caller (the `trunk` crate keeps it), outcomes come in as
//! [`Outcome`] values.
//!
//! ```
//! use routing::{Destination, Outcome, Plan, Route, Table};
//!
//! let table = Table {
//!     routes: vec![Route {
//!         name: "carrier-to-teams".into(),
//!         from: vec!["carrier".into()],
//!         called: Some(regex::Regex::new(r"^\+4930").unwrap()),
//!         to: vec![
//!             Destination { trunk: "teams".into(), label: None },
//!             Destination { trunk: "acs".into(), label: Some("Fail-over".into()) },
//!         ],
//!     }],
//! };
//! let route = table.select("carrier", "+493012345").unwrap();
//! let mut plan = Plan::new(route, |trunk| if trunk == "teams" { vec![0, 1, 2] } else { vec![0] });
//! let first = plan.next().unwrap();
//! assert_eq!((first.trunk.as_str(), first.peer), ("teams", 0));
//! // sip.pstnhub answered 503: fail over to sip2.
//! assert!(Plan::should_fail_over(Outcome::Final(503), &[408, 503, 504], false));
//! assert_eq!(plan.next().unwrap().peer, 1);
//! ```

#![forbid(unsafe_code)]

/// The regular-expression crate the rules and routes are written with,
/// re-exported so that callers build them with the same version.
pub use regex;
use regex::Regex;

/// Which numbers of a call a [`NumberRule`] rewrites.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Applies {
    /// The called number (Request-URI and To user part).
    Called,
    /// The calling number (From and P-Asserted-Identity user part).
    Calling,
    /// Both.
    #[default]
    Both,
}

impl Applies {
    fn called(self) -> bool {
        matches!(self, Applies::Called | Applies::Both)
    }

    fn calling(self) -> bool {
        matches!(self, Applies::Calling | Applies::Both)
    }
}

/// One normalisation rule: where `pattern` matches, the match is replaced by
/// `replace`, in which `$1`, `${name}` refer to capture groups (the syntax of
/// [`regex::Regex::replace`]). Anchor the pattern (`^…$`) to rewrite the whole
/// number.
#[derive(Debug, Clone)]
pub struct NumberRule {
    /// What the number must match.
    pub pattern: Regex,
    /// The replacement, with `$1`-style references to capture groups.
    pub replace: String,
    /// Which numbers the rule rewrites.
    pub applies: Applies,
}

impl NumberRule {
    fn apply(&self, n: &str) -> Option<String> {
        if self.pattern.is_match(n) {
            Some(self.pattern.replace(n, self.replace.as_str()).into_owned())
        } else {
            None
        }
    }
}

/// An ordered list of [`NumberRule`]s: the first rule that applies to the
/// number's role and matches it wins; when none matches the number is kept.
#[derive(Debug, Clone, Default)]
pub struct Normaliser {
    /// The rules, in the order they are tried.
    pub rules: Vec<NumberRule>,
}

impl Normaliser {
    /// The called number after the first matching `Called`/`Both` rule.
    pub fn called(&self, n: &str) -> String {
        self.rules
            .iter()
            .filter(|r| r.applies.called())
            .find_map(|r| r.apply(n))
            .unwrap_or_else(|| n.to_owned())
    }

    /// The calling number after the first matching `Calling`/`Both` rule.
    pub fn calling(&self, n: &str) -> String {
        self.rules
            .iter()
            .filter(|r| r.applies.calling())
            .find_map(|r| r.apply(n))
            .unwrap_or_else(|| n.to_owned())
    }

    /// True when there are no rules (every number is kept).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

/// One destination of a route: a trunk by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// The trunk's configured name.
    pub trunk: String,
    /// A label put in front of the caller's display name when the call
    /// reaches this destination although it is not the route's first (for
    /// example `Fail-over`), so the person called knows why.
    pub label: Option<String>,
}

/// A route: which calls it takes, and the destinations to try in order.
#[derive(Debug, Clone)]
pub struct Route {
    /// Name, for logs and CDRs.
    pub name: String,
    /// Inbound trunk names the route takes calls from; empty: any trunk.
    pub from: Vec<String>,
    /// Pattern the normalised called number must match; `None`: any number.
    pub called: Option<Regex>,
    /// Destinations in the order they are tried.
    pub to: Vec<Destination>,
}

impl Route {
    /// True when a call from `from_trunk` to the (normalised) `called`
    /// number takes this route.
    pub fn matches(&self, from_trunk: &str, called: &str) -> bool {
        (self.from.is_empty() || self.from.iter().any(|f| f == from_trunk))
            && self.called.as_ref().is_none_or(|re| re.is_match(called))
    }
}

/// The routing table: routes tried in order.
#[derive(Debug, Clone, Default)]
pub struct Table {
    /// The routes, in the order they are tried.
    pub routes: Vec<Route>,
}

impl Table {
    /// The first route taking a call from `from_trunk` to the normalised
    /// `called` number; `None`: no route (the caller answers 404).
    pub fn select(&self, from_trunk: &str, called: &str) -> Option<&Route> {
        self.routes.iter().find(|r| r.matches(from_trunk, called))
    }
}

/// How one attempt toward a destination ended (or how far it got).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A final non-2xx response with this status code.
    Final(u16),
    /// No response in time (no provisional within the trunk's INVITE timeout,
    /// or the transaction's Timer B).
    Timeout,
    /// The connection could not be opened or failed (TCP, TLS handshake,
    /// ICMP unreachable).
    TransportError,
    /// A provisional other than 100 was relayed to the caller.
    Provisional,
    /// The call was answered (2xx).
    Answered,
}

/// One attempt of a call toward one peer of one destination trunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// Index of the destination in the route's `to` list.
    pub dest: usize,
    /// The destination trunk's name.
    pub trunk: String,
    /// Index of the peer in the trunk's configured peer list.
    pub peer: usize,
    /// The destination's label when it is not the route's first destination.
    pub label: Option<String>,
}

/// One destination as planned: its peers in the order to try them.
#[derive(Debug, Clone)]
struct Step {
    trunk: String,
    label: Option<String>,
    peers: Vec<usize>,
}

/// The attempts of one call, handed out by [`Plan::next`] (the plan is an
/// [`Iterator`] of [`Attempt`]s): every peer of the first destination trunk in
/// health order, then every peer of the next destination, and so on. Peer
/// order is taken when the plan is made.
#[derive(Debug, Clone)]
pub struct Plan {
    route: String,
    steps: Vec<Step>,
    dest: usize,
    peer: usize,
    history: Vec<Attempt>,
}

impl Plan {
    /// Plans a call on `route`. `peers(trunk)` returns that trunk's peer
    /// indexes in the order to try (healthy first, in configured order, down
    /// peers last); a destination whose trunk has no peer is skipped.
    pub fn new(route: &Route, peers: impl Fn(&str) -> Vec<usize>) -> Plan {
        let steps = route
            .to
            .iter()
            .enumerate()
            .map(|(i, d)| Step {
                trunk: d.trunk.clone(),
                label: if i == 0 { None } else { d.label.clone() },
                peers: peers(&d.trunk),
            })
            .collect();
        Plan {
            route: route.name.clone(),
            steps,
            dest: 0,
            peer: 0,
            history: Vec::new(),
        }
    }

    /// The name of the route the plan was made from.
    pub fn route(&self) -> &str {
        &self.route
    }

    /// Gives up on the current destination: the next [`Plan::next`] starts
    /// with the first peer of the following destination (for example when
    /// the trunk is at its call limit, or its answer condemns the whole trunk).
    /// Before any attempt it skips the first destination; calling it again
    /// without an attempt in between changes nothing.
    pub fn skip_destination(&mut self) {
        let past = self.history.last().map_or(1, |a| a.dest + 1);
        if self.dest < past {
            self.dest = past.min(self.steps.len());
            self.peer = 0;
        }
    }

    /// True when [`Plan::next`] would return `None`.
    pub fn is_exhausted(&self) -> bool {
        self.steps[self.dest.min(self.steps.len())..]
            .iter()
            .enumerate()
            .all(|(i, s)| {
                let from = if i == 0 { self.peer } else { 0 };
                s.peers.len() <= from
            })
    }

    /// Whether a failed attempt moves on to the next one: never once a
    /// provisional (other than 100) or a final response was relayed to the
    /// caller, never after an answer, never on 603 Decline (the callee
    /// refused: nobody else should ring), yes on a timeout or a transport
    /// error, and on a final status only when it is one of `failover_codes`.
    pub fn should_fail_over(
        outcome: Outcome,
        failover_codes: &[u16],
        final_or_18x_relayed: bool,
    ) -> bool {
        if final_or_18x_relayed {
            return false;
        }
        match outcome {
            Outcome::Final(603) => false,
            Outcome::Final(code) => failover_codes.contains(&code),
            Outcome::Timeout | Outcome::TransportError => true,
            Outcome::Provisional | Outcome::Answered => false,
        }
    }

    /// Every attempt handed out so far, in order (for the CDR).
    pub fn attempts(&self) -> &[Attempt] {
        &self.history
    }
}

impl Iterator for Plan {
    type Item = Attempt;

    /// The next attempt: the next peer of the same trunk, then the first
    /// peer of the next destination; `None` when everything was tried.
    fn next(&mut self) -> Option<Attempt> {
        while let Some(step) = self.steps.get(self.dest) {
            if let Some(&peer) = step.peers.get(self.peer) {
                self.peer += 1;
                let a = Attempt {
                    dest: self.dest,
                    trunk: step.trunk.clone(),
                    peer,
                    label: step.label.clone(),
                };
                self.history.push(a.clone());
                return Some(a);
            }
            self.dest += 1;
            self.peer = 0;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(p: &str, r: &str, applies: Applies) -> NumberRule {
        NumberRule {
            pattern: Regex::new(p).unwrap(),
            replace: r.into(),
            applies,
        }
    }

    fn dest(t: &str, label: Option<&str>) -> Destination {
        Destination {
            trunk: t.into(),
            label: label.map(Into::into),
        }
    }

    fn carrier_to_teams() -> Route {
        Route {
            name: "carrier-to-teams".into(),
            from: vec!["carrier".into()],
            called: Some(Regex::new(r"^\+4930").unwrap()),
            to: vec![dest("teams", None), dest("acs", Some("Fail-over"))],
        }
    }

    #[test]
    fn called_number_normalised_to_e164() {
        let n = Normaliser {
            rules: vec![
                rule(r"^00(\d+)$", "+$1", Applies::Both),
                rule(r"^0(\d+)$", "+49$1", Applies::Called),
            ],
        };
        assert_eq!(n.called("00493012345"), "+493012345");
        assert_eq!(n.called("03012345"), "+493012345");
        assert_eq!(n.called("+493012345"), "+493012345");
    }

    #[test]
    fn first_matching_rule_wins() {
        let n = Normaliser {
            rules: vec![
                rule(r"^0(\d+)$", "+49$1", Applies::Both),
                rule(r"^00(\d+)$", "+$1", Applies::Both),
            ],
        };
        // The first rule also matches "00…" and wins.
        assert_eq!(n.called("0033123"), "+49033123");
    }

    #[test]
    fn rule_applies_only_to_its_role() {
        let n = Normaliser {
            rules: vec![
                rule(r"^(\d{4})$", "+49301234$1", Applies::Calling),
                rule(r"^\+(\d+)$", "00$1", Applies::Called),
            ],
        };
        assert_eq!(n.calling("5678"), "+493012345678");
        assert_eq!(n.called("5678"), "5678");
        assert_eq!(n.called("+4930"), "004930");
        assert_eq!(n.calling("+4930"), "+4930");
    }

    #[test]
    fn unmatched_number_is_unchanged() {
        assert_eq!(Normaliser::default().called("anonymous"), "anonymous");
        let n = Normaliser {
            rules: vec![rule(r"^00(\d+)$", "+$1", Applies::Both)],
        };
        assert_eq!(n.calling("+441234"), "+441234");
    }

    #[test]
    fn named_capture_groups_in_replacement() {
        let n = Normaliser {
            rules: vec![rule(
                r"^(?P<cc>49)(?P<rest>\d+)$",
                "+${cc}${rest}",
                Applies::Both,
            )],
        };
        assert_eq!(n.called("4930123"), "+4930123");
    }

    #[test]
    fn route_selected_by_inbound_trunk_and_pattern() {
        let table = Table {
            routes: vec![
                carrier_to_teams(),
                Route {
                    name: "carrier-other".into(),
                    from: vec!["carrier".into()],
                    called: None,
                    to: vec![dest("acs", None)],
                },
                Route {
                    name: "microsoft-to-carrier".into(),
                    from: vec!["teams".into(), "acs".into()],
                    called: None,
                    to: vec![dest("carrier", None)],
                },
            ],
        };
        assert_eq!(
            table.select("carrier", "+493012345").unwrap().name,
            "carrier-to-teams"
        );
        assert_eq!(
            table.select("carrier", "+4989123").unwrap().name,
            "carrier-other"
        );
        assert_eq!(
            table.select("acs", "+4930123").unwrap().name,
            "microsoft-to-carrier"
        );
        assert!(table.select("gateway", "+4930123").is_none());
    }

    #[test]
    fn route_with_empty_from_takes_any_trunk() {
        let table = Table {
            routes: vec![Route {
                name: "any".into(),
                from: vec![],
                called: Some(Regex::new(r"^\+1").unwrap()),
                to: vec![dest("carrier", None)],
            }],
        };
        assert!(table.select("whatever", "+1555").is_some());
        assert!(table.select("whatever", "+44").is_none());
    }

    #[test]
    fn plan_walks_sip_sip2_sip3_then_next_trunk() {
        let route = carrier_to_teams();
        let mut plan = Plan::new(&route, |t| match t {
            "teams" => vec![0, 1, 2],
            "acs" => vec![0, 1],
            _ => vec![],
        });
        let got: Vec<(String, usize, usize, Option<String>)> = std::iter::from_fn(|| plan.next())
            .map(|a| (a.trunk, a.dest, a.peer, a.label))
            .collect();
        let fo = Some("Fail-over".to_owned());
        assert_eq!(
            got,
            vec![
                ("teams".into(), 0, 0, None),
                ("teams".into(), 0, 1, None),
                ("teams".into(), 0, 2, None),
                ("acs".into(), 1, 0, fo.clone()),
                ("acs".into(), 1, 1, fo),
            ]
        );
        assert_eq!(plan.attempts().len(), 5);
        assert!(plan.is_exhausted());
        assert!(plan.next().is_none());
    }

    #[test]
    fn plan_follows_health_order_of_peers() {
        let route = carrier_to_teams();
        // sip is down: the health machine lists it last.
        let mut plan = Plan::new(
            &route,
            |t| if t == "teams" { vec![1, 2, 0] } else { vec![0] },
        );
        let peers: Vec<usize> = std::iter::from_fn(|| plan.next()).map(|a| a.peer).collect();
        assert_eq!(peers, vec![1, 2, 0, 0]);
    }

    #[test]
    fn destination_without_peers_is_skipped() {
        let route = carrier_to_teams();
        let mut plan = Plan::new(&route, |t| if t == "teams" { vec![] } else { vec![0] });
        let a = plan.next().unwrap();
        assert_eq!((a.trunk.as_str(), a.dest), ("acs", 1));
        assert_eq!(a.label.as_deref(), Some("Fail-over"));
        assert!(plan.next().is_none());
    }

    #[test]
    fn label_of_first_destination_is_not_used() {
        let mut route = carrier_to_teams();
        route.to[0].label = Some("Primary".into());
        let mut plan = Plan::new(&route, |_| vec![0]);
        assert_eq!(plan.next().unwrap().label, None);
        assert_eq!(plan.next().unwrap().label.as_deref(), Some("Fail-over"));
    }

    #[test]
    fn skip_destination_moves_to_next_trunk() {
        let route = carrier_to_teams();
        let mut plan = Plan::new(&route, |_| vec![0, 1, 2]);
        assert_eq!(plan.next().unwrap().trunk, "teams");
        plan.skip_destination();
        let a = plan.next().unwrap();
        assert_eq!((a.trunk.as_str(), a.peer), ("acs", 0));
        assert_eq!(plan.attempts()[0].trunk, "teams");
        assert_eq!(plan.attempts()[1].trunk, "acs");
    }

    #[test]
    fn skip_destination_before_first_attempt_skips_first_trunk() {
        let route = carrier_to_teams();
        let mut plan = Plan::new(&route, |_| vec![0]);
        plan.skip_destination();
        assert_eq!(plan.next().unwrap().trunk, "acs");
    }

    #[test]
    fn skip_destination_twice_without_attempt_skips_once() {
        let mut route = carrier_to_teams();
        route.to.push(dest("carrier", None));
        let mut plan = Plan::new(&route, |_| vec![0, 1]);
        plan.next();
        plan.skip_destination();
        plan.skip_destination();
        assert_eq!(plan.next().unwrap().trunk, "acs");
        plan.skip_destination();
        assert_eq!(plan.next().unwrap().trunk, "carrier");
        plan.skip_destination();
        assert!(plan.next().is_none());
    }

    #[test]
    fn empty_route_plans_nothing() {
        let route = Route {
            name: "none".into(),
            from: vec![],
            called: None,
            to: vec![],
        };
        let mut plan = Plan::new(&route, |_| vec![0]);
        assert!(plan.is_exhausted());
        assert!(plan.next().is_none());
        assert_eq!(plan.route(), "none");
    }

    #[test]
    fn failover_on_configured_codes_timeout_and_transport_error() {
        let codes = [408, 503, 504];
        for o in [
            Outcome::Final(408),
            Outcome::Final(503),
            Outcome::Final(504),
            Outcome::Timeout,
            Outcome::TransportError,
        ] {
            assert!(Plan::should_fail_over(o, &codes, false), "{o:?}");
        }
        for o in [
            Outcome::Final(404),
            Outcome::Final(486),
            Outcome::Final(500),
        ] {
            assert!(!Plan::should_fail_over(o, &codes, false), "{o:?}");
        }
    }

    #[test]
    fn decline_603_is_never_retried() {
        assert!(!Plan::should_fail_over(
            Outcome::Final(603),
            &[408, 503, 504],
            false
        ));
        // Not even when someone configures it as a failover code.
        assert!(!Plan::should_fail_over(Outcome::Final(603), &[603], false));
    }

    #[test]
    fn no_failover_after_18x() {
        for o in [
            Outcome::Final(503),
            Outcome::Timeout,
            Outcome::TransportError,
        ] {
            assert!(!Plan::should_fail_over(o, &[503], true), "{o:?}");
        }
        assert!(!Plan::should_fail_over(Outcome::Provisional, &[503], false));
        assert!(!Plan::should_fail_over(Outcome::Answered, &[503], false));
    }
}
