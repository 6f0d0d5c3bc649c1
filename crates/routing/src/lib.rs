//! # routing — where a call goes, and where it goes next
//!
//! Owns the routing decisions of sbc: number normalisation (regular
//! expression rules per trunk and direction), the routing table (inbound trunk
//! and called-number pattern → an ordered list of typed destinations: a
//! trunk's peers, an external number through a trunk, a registered user,
//! and a forward-on-failure), and the attempt [`Plan`] of one call — the one
//! place that decides whether a call tries another destination and which.
//!
//! This crate does no I/O and reads no clock: peer health comes in as a
//! function from the caller (the `trunk` crate keeps it), outcomes come in as
//! [`Outcome`] values, the next action goes out as [`Next`].
//!
//! ```
//! use routing::{Destination, Next, Outcome, Plan, Route, Table};
//!
//! let table = Table {
//!     routes: vec![Route {
//!         name: "carrier-to-teams".into(),
//!         from: vec!["carrier".into()],
//!         called: Some(regex::Regex::new(r"^\+4930").unwrap()),
//!         to: vec![
//!             Destination::trunk("teams", None),
//!             Destination::trunk("acs", Some("Fail-over")),
//!         ],
//!         forward: None,
//!     }],
//! };
//! let route = table.select("carrier", "+493012345").unwrap();
//! // sip is known down: sip2 and sip3 first, then ACS, sip last.
//! let mut plan = Plan::new(route, |trunk| match trunk {
//!     "teams" => vec![(1, false), (2, false), (0, true)],
//!     _ => vec![(0, false)],
//! });
//! let Next::Try(first) = plan.start() else { unreachable!() };
//! assert_eq!((first.trunk.as_str(), first.peer), ("teams", 1));
//! // sip2 answered 503: fail over to sip3.
//! let Next::Try(second) = plan.on_outcome(Outcome::Final(503), &[408, 503, 504], false) else {
//!     unreachable!()
//! };
//! assert_eq!(second.peer, 2);
//! ```

#![forbid(unsafe_code)]

mod plan;

pub use plan::{Attempt, Next, Outcome, Plan};

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

/// Two rules are the same when their pattern text, replacement and roles are.
impl PartialEq for NumberRule {
    fn eq(&self, other: &NumberRule) -> bool {
        self.pattern.as_str() == other.pattern.as_str()
            && self.replace == other.replace
            && self.applies == other.applies
    }
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
#[derive(Debug, Clone, Default, PartialEq)]
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

/// What a destination reaches through its trunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The called number at the trunk's peers (Teams, ACS, a carrier, the
    /// on-premises SBC or analog gateway), peers in health order.
    Trunk,
    /// An external number (E.164) called through the trunk instead of the
    /// called number: a forward-on-failure to a mobile group or an
    /// answering service. The original number goes along as Diversion /
    /// History-Info.
    Number(String),
    /// One user registered with the SBC, by number (a `phones` trunk):
    /// every live contact of that user is called at once; the called
    /// number goes along as Diversion / History-Info.
    User(String),
    /// The called number as a user registered with the SBC (a `phones`
    /// trunk): every live contact called at once; not registered is a 480
    /// to the plan (the next destination).
    Registered,
}

impl Destination {
    /// The called number as a registered user of `trunk` (a `phones` trunk).
    pub fn registered(trunk: &str, label: Option<&str>) -> Destination {
        Destination {
            trunk: trunk.to_owned(),
            target: Target::Registered,
            label: label.map(str::to_owned),
        }
    }
}

/// One destination of a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// The trunk's configured name (the way out).
    pub trunk: String,
    /// What is called through it.
    pub target: Target,
    /// The label put in front of the caller's display name (and the display
    /// name of P-Asserted-Identity) when the call takes this destination
    /// although it is not the route's first — `Fail-over` by default — so
    /// the person called knows why. `None`: no label.
    pub label: Option<String>,
}

impl Destination {
    /// The called number at `trunk`'s peers, labelled `label` when it is not
    /// the first destination.
    pub fn trunk(trunk: &str, label: Option<&str>) -> Destination {
        Destination {
            trunk: trunk.to_owned(),
            target: Target::Trunk,
            label: label.map(str::to_owned),
        }
    }
}

/// Forward-on-failure: when no destination has begun handling the call
/// (an 18x or a 2xx) within `window` — or every destination failed sooner —
/// what is pending is cancelled and the call goes to `to` (an external
/// number through a trunk). With `ring_timeout`, a call that rang but was
/// not answered within that time is forwarded the same way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    /// The destination (normally [`Target::Number`] through the carrier).
    pub to: Destination,
    /// Time from the call's arrival to the first 18x/2xx of any destination.
    pub window: std::time::Duration,
    /// Time from the first 18x relayed to an answer, if set.
    pub ring_timeout: Option<std::time::Duration>,
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
    /// The last resort, if any.
    pub forward: Option<Forward>,
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
        Destination::trunk(t, label)
    }

    fn carrier_to_teams() -> Route {
        Route {
            name: "carrier-to-teams".into(),
            from: vec!["carrier".into()],
            called: Some(Regex::new(r"^\+4930").unwrap()),
            to: vec![dest("teams", None), dest("acs", Some("Fail-over"))],
            forward: None,
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
                    forward: None,
                },
                Route {
                    name: "microsoft-to-carrier".into(),
                    from: vec!["teams".into(), "acs".into()],
                    called: None,
                    to: vec![dest("carrier", None)],
                    forward: None,
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
                forward: None,
            }],
        };
        assert!(table.select("whatever", "+1555").is_some());
        assert!(table.select("whatever", "+44").is_none());
    }
}
