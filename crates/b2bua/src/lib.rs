//! The back-to-back user agent of sbc: calls and their two legs, routing
//! attempts with failover, media anchored in the relay (RTP on one side,
//! SRTP on the other), re-INVITE, session timers, REFER as transferee,
//! INVITE with Replaces, OPTIONS health of the trunks and a CDR per call;
//! emergency calls (never refused for load), calls-per-second limits per
//! trunk, multipart bodies (an SDP offer beside a PIDF-LO location).
//!
//! Sans-IO: [`B2bua`] owns the transaction endpoint and takes the caller's
//! clock; the shell feeds it messages and timeouts and drains datagrams to
//! send ([`B2bua::poll_transmit`]) and outputs ([`B2bua::poll_output`]).
//! Media goes through the [`MediaControl`] trait, so tests drive whole calls
//! in virtual time without sockets.
#![forbid(unsafe_code)]

mod build;
mod cdr;
mod core;
/// The cargo-fuzz targets' entry points (`cfg(fuzzing)`, set by `cargo fuzz`); not API.
#[cfg(any(test, fuzzing))]
#[doc(hidden)]
pub mod fuzzing;
mod media;
mod multipart;
mod number;

pub use crate::cdr::{AttemptRecord, Cdr};
pub use crate::core::{
    B2bua, CallView, Config, Counters, Input, Occupancy, Output, Phones, Protect, Reconfig,
    Reconfigured, ReloadError, UnknownSource, MAX_SLOTS,
};
pub use crate::media::MediaControl;
pub use crate::number::{is_number, mask, number_of, redact, Redacted};
