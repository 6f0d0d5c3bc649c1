//! # registrar — RFC 3261 §10 registrar for the phones behind the SBC, sans-IO
//!
//! Owns who may register ([`Users`], read from a TOML users file), digest
//! authentication ([`Authenticator`]: RFC 7616 SHA-256 and MD5 with
//! `qop=auth`, self-validating nonces with a lifetime, nonce-count replay
//! refused; usable for a B2BUA's 407 too), the bindings of every
//! address-of-record with the flow each arrived on (RFC 5626 outbound, RFC
//! 3327 Path), their expiry, the lookup that routes calls to phones,
//! protection against password guessing, and the counters of every outcome.
//!
//! The core ([`Registrar`]) does no I/O and reads no clock: the caller
//! passes `now` to [`Registrar::handle`], takes responses and binding
//! events from [`Registrar::poll_output`] and calls again at
//! [`Registrar::poll_timeout`]. A [`Store`] follows the events so that
//! bindings survive a restart: [`MemoryStore`], [`RedbStore`] (a redb
//! file), or [`RedisStore`], shared by several SBCs: each learns the
//! others' bindings from a [`Subscription`] ([`Registrar::learn`],
//! [`Registrar::forget`]). The stores and [`Users::load`] are the only I/O
//! of the crate. See `docs/phones.md`.
//!
//! ```
//! use std::time::Instant;
//! use registrar::{Config, Flow, Input, Output, Registrar, User, Users};
//!
//! let users = Users::new([User::with_password("+15550100001", "alice", "sbc", "pw").unwrap()]).unwrap();
//! let now = Instant::now(); // in the daemon: the runtime's clock
//! let mut reg = Registrar::new(Config::default(), users, now);
//! let register = sip::Message::parse(bytes::Bytes::from_static(
//!     b"REGISTER sip:sbc.example.com SIP/2.0\r\n\
//!       Via: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bK1\r\n\
//!       From: <sip:alice@sbc.example.com>;tag=1\r\nTo: <sip:alice@sbc.example.com>\r\n\
//!       Call-ID: r1@192.0.2.10\r\nCSeq: 1 REGISTER\r\n\
//!       Contact: <sip:alice@192.0.2.10>\r\nContent-Length: 0\r\n\r\n",
//! )).unwrap();
//! let flow = Flow {
//!     transport: transaction::Transport::Udp,
//!     remote: "192.0.2.10:5060".parse().unwrap(),
//!     local: "198.51.100.1:5060".parse().unwrap(),
//!     conn: None,
//! };
//! reg.handle(now, Input::Register { id: 1, msg: register, flow });
//! match reg.poll_output() {
//!     Some(Output::Respond { id: 1, response }) => {
//!         assert_eq!(response.status(), Some(401)); // SHA-256 and MD5 challenges
//!         assert_eq!(response.count(sip::HeaderName::WwwAuthenticate), 2);
//!     }
//!     other => panic!("{other:?}"),
//! }
//! assert!(reg.lookup("+15550100001", now).is_empty());
//! ```

#![forbid(unsafe_code)]

mod auth;
mod binding;
mod client;
mod digest;
mod protect;
mod redis_store;
mod register;
mod registrar;
mod store;
#[cfg(test)]
mod testutil;
mod users;

pub use auth::{AuthConfig, AuthHeader, AuthOutcome, Authenticator};
pub use binding::{Binding, Event, Flow};
pub use client::{answer_challenge, directive, Credentials};
pub use digest::{Algorithm, Algorithms, Ha1};
pub use protect::{BlockAction, ProtectConfig};
pub use redis_store::{Change, RedisStore, Subscription};
pub use registrar::{Config, Counters, DropReason, Input, Output, Registrar};
pub use store::{MemoryStore, RedbStore, Store, StoreError};
pub use users::{User, Users, UsersError};
