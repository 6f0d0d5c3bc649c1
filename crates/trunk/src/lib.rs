//! # trunk — the trunks of sbc and the health of their peers
//!
//! Owns what the SBC knows about each trunk — a carrier, Microsoft Teams
//! Direct Routing, Azure Communication Services Direct Routing, an analog
//! gateway: its ordered peers (Teams: `sip` → `sip2` → `sip3`), our FQDN and
//! TLS identity toward it, the health machine of its peers (OPTIONS, failed
//! calls, 503 Retry-After hold-downs, retries where OPTIONS are off, pause
//! while draining, the order in which to try them), its number, codec, media,
//! DTMF, T.38 and header policies, and the classification of inbound messages
//! (listener, source ACL, TLS certificate name) into trunks.
//!
//! This crate does no I/O and reads no clock: `now` is an input, OPTIONS come
//! out as [`sip::Message`]s for the runtime to send, their outcomes go back
//! in through [`Health::on_response`] and [`Health::on_failure`], what calls
//! saw through [`Health::on_attempt_timeout`], [`Health::on_call_failure`]
//! and [`Health::hold_down`]; [`Health::poll_ping`], called at every
//! [`Health::next_wakeup`], is where ping deadlines, hold ends and retries
//! take effect. The rules are in `docs/failover.md` ("Peer health").
//!
//! ```
//! use std::time::{Duration, Instant};
//! use trunk::{Health, PeerState, TrunkKind, TrunkSpec};
//!
//! let teams = TrunkSpec::new("teams", TrunkKind::Teams, "sbc1.contoso.com");
//! let t0 = Instant::now(); // in the daemon: the runtime's clock
//! let mut health = Health::new(&teams, 42, t0);
//! let pings: Vec<_> = std::iter::from_fn(|| health.poll_ping(t0)).collect();
//! assert_eq!(pings.len(), 3); // sip, sip2, sip3
//! // sip does not answer within the timeout: down; sip2 and sip3 answer 200.
//! health.on_response(t0, 1, 200);
//! health.on_response(t0, 2, 200);
//! assert!(health.poll_ping(t0 + Duration::from_secs(32)).is_none());
//! assert!(matches!(health.state(0), PeerState::Down(_)));
//! assert_eq!(health.order(), vec![1, 2, 0]);
//! ```

#![forbid(unsafe_code)]

mod classify;
mod health;
mod interop;
mod spec;
#[cfg(test)]
mod tests;

pub use classify::Classifier;
pub use health::{Failure, Health, HealthChange, PeerState, Ping};
pub use interop::{Interop, Refresher, Rel100, SessionTimer, MIN_SE_FLOOR};
pub use spec::{
    default_user_agent, default_x_ms_sbc, Cidr, CidrError, DtmfMode, HeaderPolicy, MediaSecurity,
    OptionsSpec, PaiPolicy, PeerSpec, Ringback, TrunkKind, TrunkSpec, ALLOW,
    DEFAULT_EMERGENCY_NUMBERS, DEFAULT_FAILOVER_CODES, MICROSOFT_PROXIES,
    MICROSOFT_SIGNALLING_RANGES,
};
