//! # relay — the media relay engine of sbc
//!
//! Owns the media sockets and the fast path: worker threads (one per core by
//! default) on epoll or io_uring ([`Io`]), each owning the sockets and forwarding state of the
//! sessions assigned to it; a port pool; symmetric latching; per-leg
//! statistics and inactivity events; payload types renumbered between the
//! two parties' numberings (RFC 4733 telephone-events, dynamic codecs),
//! completed telephone-events reported, and raw streams (T.38 over UDPTL)
//! passed as they are. Packets are decrypted and encrypted in
//! place with the `media` crate's SRTP contexts; nothing on the per-packet
//! path allocates or takes a lock shared between workers. The control side
//! (`Relay::create` / `update` / `query` / `delete`) is the slow path: it
//! sends commands to the owning worker.
//!
//! The only `unsafe` code is in `sys` (batched `recvmmsg`/`sendmmsg`, which
//! have no safe wrapper, and in `sys::uring` the memory the kernel shares
//! with the io_uring worker); the rest of the crate denies it.

#![deny(unsafe_code)]

mod config;
mod crypto;
mod engine;
mod pool;
mod queue;
mod stats;
#[allow(unsafe_code)]
mod sys;

pub use crypto::{CryptoError, CryptoSpec};
pub use engine::{
    Interface, Io, LegPorts, LegSpec, Relay, RelayConfig, RelayError, RelayEvent, SessionInfo, Side,
};
pub use media::control::MediaOp;
pub use stats::{LegStats, RelayStats, WorkerLoad};
