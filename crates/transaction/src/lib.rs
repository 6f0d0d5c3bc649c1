//! # transaction — RFC 3261 §17 SIP transactions, sans-IO
//!
//! Owns the four transaction state machines of RFC 3261 §17 (INVITE client,
//! non-INVITE client, INVITE server, non-INVITE server, each with the RFC 6026
//! `Accepted` state where it applies), their timers A–M as data, the matching
//! rules of §17.1.3 and §17.2.3 (with the RFC 2543 fallback), the ACK for
//! non-2xx finals, CANCEL handling (§9), and one [`Endpoint`] that holds every
//! transaction of a SIP element.
//!
//! This crate does no I/O: it opens no socket, reads no clock, spawns no task
//! or thread. Time is an input (`now: Instant` on every call); the caller asks
//! [`Endpoint::poll_transmit`] what to send, [`Endpoint::poll_event`] what
//! happened and [`Endpoint::poll_timeout`] when to call again. The same code
//! therefore runs under the tokio shell of the daemon and under the seeded
//! virtual network of the `sim` crate, where a 32-second Timer B takes a
//! millisecond. See `docs/transactions.md`.
//!
//! It also holds the workspace's one small deterministic generator,
//! [`Rng`] (SplitMix64), for tags, branches and Call-IDs here and in the
//! cores built on this crate, and for the losses and delays of `sim`.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use bytes::Bytes;
//! use transaction::{Config, Endpoint, Event, Input, Peer, Transport};
//!
//! let mut ep = Endpoint::new(Config::default());
//! let t0 = Instant::now(); // in a real shell: the runtime's clock
//! let peer = Peer::new("192.0.2.7:5060".parse().unwrap(), Transport::Udp);
//! let options = sip::Message::parse(Bytes::from_static(
//!     b"OPTIONS sip:sbc.example.com SIP/2.0\r\n\
//!       Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKopt1\r\n\
//!       From: <sip:ping@example.com>;tag=1\r\nTo: <sip:sbc.example.com>\r\n\
//!       Call-ID: opt1@192.0.2.1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
//! )).unwrap();
//! let key = ep.send_request(t0, options, peer).unwrap();
//! assert!(ep.poll_transmit().is_some()); // the OPTIONS itself
//! // Nobody answers: Timer E retransmits, Timer F (64*T1) gives up.
//! while let Some(at) = ep.poll_timeout() {
//!     ep.handle(at, Input::Timeout);
//! }
//! let events: Vec<Event> = std::iter::from_fn(|| ep.poll_event()).collect();
//! assert!(matches!(events[0], Event::Timeout { key: k } if k == key));
//! ```

#![forbid(unsafe_code)]

mod build;
mod client;
mod endpoint;
mod key;
mod machine;
mod matching;
mod peer;
mod rng;
mod server;
mod timer;

pub use build::response_to;
pub use endpoint::{Config, DropReason, Endpoint, Event, Input, TxError};
pub use key::{ClientKey, ServerKey, TxKey};
pub use machine::TxState;
pub use peer::{Peer, Transmit, Transport};
pub use rng::Rng;
pub use timer::{Timer, TimerConfig, TimerConfigError};
