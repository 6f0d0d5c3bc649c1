//! # sdp — the SDP layer of sbc
//!
//! Owns the session description model the SBC rewrites on every offer and
//! answer: a lenient, bounded parser for RFC 8866 (and RFC 4566) SDP that
//! keeps every line and the order of lines and media sections, typed views of
//! the lines a media relay needs (origin, connection, `m=`, `rtpmap`, `fmtp`,
//! direction, `rtcp`, `rtcp-mux`, `ptime`, ICE including the MS-ICE2
//! `tcp-act`/`tcp-pass` candidates Teams sends, `a=crypto` kept raw with its
//! tag), and an editing API for a relay (connection and origin addresses,
//! ports, proto, crypto, ICE removal, rtcp/rtcp-mux, direction, codecs).
//!
//! The model is line-oriented: each line is stored exactly as received and
//! parsed on demand, so an unmodified description prints back byte for byte
//! when it arrived with CRLF line endings (LF input is printed with CRLF).
//! Unknown lines and attributes — `a=x-*`, `a=label`, stray or continuation
//! lines — are kept where they were. Edits replace only the lines they touch.
//!
//! This crate does no I/O, reads no clock and never panics on input: parsing
//! is bounded by [`ParseLimits`], malformed lines are kept verbatim and simply
//! have no typed view, and editing a malformed line returns an [`EditError`].
//!
//! ```
//! use std::net::{IpAddr, Ipv4Addr};
//! let offer = b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
//!     m=audio 4000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=x-unknown:kept\r\n";
//! let mut sdp = sdp::SessionDescription::parse(offer).unwrap();
//! assert_eq!(sdp.to_bytes(), offer); // unmodified: byte-exact
//!
//! let relay = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7));
//! sdp.set_connection_everywhere(relay);
//! sdp.set_origin_address(relay).unwrap();
//! sdp.bump_session_version().unwrap();
//! let audio = &mut sdp.media_mut()[0];
//! audio.set_port(30000).unwrap();
//! audio.set_proto("RTP/SAVP").unwrap();
//! audio.add_crypto(1, "AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^31").unwrap();
//! let out = String::from_utf8(sdp.to_bytes()).unwrap();
//! assert!(out.contains("c=IN IP4 192.0.2.7\r\n"));
//! assert!(out.contains("m=audio 30000 RTP/SAVP 0 101\r\n"));
//! assert!(out.contains("a=x-unknown:kept\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80"));
//! ```

#![forbid(unsafe_code)]

mod description;
mod error;
mod line;
mod parse;
mod types;

pub use description::{MediaDescription, SessionDescription};
pub use error::{EditError, ParseError};
pub use line::{Attribute, Line};
pub use parse::ParseLimits;
pub use types::{
    Bandwidth, Candidate, CandidateTransport, Connection, Crypto, Direction, Fmtp, MediaLine,
    Origin, RtcpAttribute, RtpMap, ICE_ATTRIBUTES,
};
