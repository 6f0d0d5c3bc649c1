//! # sim — a seeded virtual network and clock for the sans-IO cores
//!
//! Owns the test world of sbc: a virtual clock, a network that carries
//! [`transaction::Transmit`]s between two or more [`transaction::Endpoint`]s
//! with configurable latency, jitter, loss, duplication and reordering, and
//! a record of every packet and every event. Time jumps straight to the next
//! thing that happens — the earliest in-flight delivery or the earliest
//! `poll_timeout()` of any endpoint — so a 32-second Timer B runs in
//! microseconds, and everything is reproducible from the seed.
//!
//! This crate does no I/O: no sockets, no sleeping. It reads the real clock
//! once, in [`Sim::new`], only because `std::time::Instant` cannot be built
//! any other way; from then on time is virtual. It is a tests-only support
//! crate (`publish = false`).
//!
//! ```
//! use std::time::Duration;
//! use sim::{NetConfig, Sim};
//! use transaction::{Event, Transport};
//!
//! let mut sim = Sim::new(7, NetConfig::default());
//! let a = sim.add_node("uac", "192.0.2.1:5060");
//! let b = sim.add_node("uas", "192.0.2.2:5060");
//! let opts = sim.request(a, b, "OPTIONS", Transport::Udp, "z9hG4bKdoc1");
//! sim.send_request(a, b, opts, Transport::Udp).unwrap();
//! let Some(Event::Request { key, msg, .. }) = sim.next_event(b, Duration::from_secs(1)) else {
//!     panic!("no request")
//! };
//! let ok = transaction::response_to(&msg, 200, "OK", Some("t1")).unwrap();
//! sim.respond(b, key, ok).unwrap();
//! assert!(matches!(sim.next_event(a, Duration::from_secs(1)), Some(Event::Response { .. })));
//! ```

#![forbid(unsafe_code)]

mod msg;
mod net;
pub mod peer;
pub mod world;

pub use msg::request;
pub use net::{Fate, Logged, NetConfig, NodeId, Packet, Sim};
/// The seeded generator behind losses, delays and duplicates; the same one
/// the transaction layer draws its tags from.
pub use transaction::Rng;
pub use world::World;
