//! # ng — rtpengine's "ng" control protocol, sans-IO
//!
//! Owns the codec for the protocol Kamailio's `rtpengine` module and OpenSIPS
//! use to drive a media relay: every UDP datagram is `COOKIE SP
//! bencoded-dictionary`, and the reply carries the same cookie. This crate
//! parses requests (`ping`, `offer`, `answer`, `delete`, `query`, `list`,
//! with the keys those modules send for plain and RTP⇄SRTP calls — flags,
//! `replace`, `transport-protocol`, `ICE`, `rtcp-mux`, `SDES`,
//! `received-from`, …) into a typed [`Request`] that borrows from the
//! datagram, and encodes [`Reply`] values. Its [`bencode`] module is a
//! zero-copy, bounded, non-recursive decoder and a sorted-key encoder.
//!
//! This crate does no I/O, reads no clock and never panics on input. A
//! malformed body with a readable cookie yields an [`ErrorReply`] to send
//! back; a datagram without a cookie yields `None` for the cookie and is
//! dropped. Acting on a request (allocating ports, rewriting the SDP with the
//! `sdp` crate) is the media layer's job.
//!
//! ```
//! let datagram = b"5323_1 d7:command4:pinge";
//! let request = ng::parse_request(datagram).unwrap();
//! assert_eq!(request.command, ng::Command::Ping);
//! let reply = ng::encode_reply(request.cookie, &ng::Reply::Pong);
//! assert_eq!(reply, b"5323_1 d6:result4:ponge");
//!
//! // A broken body still gets an error reply under its cookie.
//! let (cookie, error) = ng::parse_request(b"77_2 d7:command5:offe").unwrap_err();
//! let reply = ng::encode_reply(cookie.unwrap(), &error.into());
//! assert!(reply.starts_with(b"77_2 d12:error-reason"));
//! ```

#![forbid(unsafe_code)]

pub mod bencode;
mod error;
mod reply;
mod request;

pub use error::{ErrorReply, RequestError};
pub use reply::{
    encode_reply, CallStats, Counters, MediaStats, Reply, StreamStats, TagStats, Totals,
};
pub use request::{
    parse_request, parse_request_with, AddressFamily, BStr, Command, Cookie, Flag, Ice,
    ReceivedFrom, Replace, Request, RtcpMux, Sdes, TransportProtocol, MAX_COOKIE_LEN,
};
