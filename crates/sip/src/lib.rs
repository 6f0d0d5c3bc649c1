//! # sip — the SIP message layer of sbc
//!
//! Owns the SIP message model: a zero-copy parser over [`bytes::Bytes`]
//! (RFC 3261 §7 and §25, RFC 5118 IPv6 references), typed views of the headers
//! an SBC needs (parsed on demand), URIs (`sip:`, `sips:`, `tel:`, others kept
//! opaque), an editing API for a B2BUA with a printer that copies unchanged
//! lines byte for byte, stream framing for TCP/TLS with RFC 5626 keepalives,
//! the verdict — accept, reply with an error, or drop — for every message
//! received, and the RFC 2818 wildcard rule for the DNS names of TLS peers
//! ([`dns_name_matches`]), shared by the transport and the trunk classifier.
//!
//! This crate does no I/O, reads no clock and never panics on input: every
//! function taking bytes from the network returns a typed error instead, and
//! memory per message is bounded by [`ParseOptions`].
//!
//! ```
//! use bytes::Bytes;
//! let raw = Bytes::from_static(b"OPTIONS sip:sbc.example.com SIP/2.0\r\n\
//!     v: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK776\r\n\
//!     f: <sip:a@example.com>;tag=1\r\nt: <sip:sbc.example.com>\r\n\
//!     i: abc@192.0.2.1\r\nCSeq: 1 OPTIONS\r\nl: 0\r\n\r\n");
//! match sip::inspect(raw, &sip::Policy::default()) {
//!     sip::Verdict::Accept(m) => {
//!         assert_eq!(m.call_id().unwrap(), "abc@192.0.2.1");
//!         assert_eq!(m.top_via().unwrap().branch(), Some(&b"z9hG4bK776"[..]));
//!     }
//!     other => panic!("{other:?}"),
//! }
//! ```

#![forbid(unsafe_code)]

mod dns_name;
mod error;
mod framing;
mod headers;
mod message;
mod name;
mod text;
mod uri;
mod verdict;

pub use dns_name::dns_name_matches;
pub use error::{Error, ErrorKind};
pub use framing::{Frame, FramingAction, FramingError, FramingErrorKind, StreamFramer};
pub use headers::{
    parse_call_id, parse_number, parse_token, CSeq, Contact, MediaType, NameAddr, ValueError, Via,
};
pub use message::{EditError, HeaderField, Kind, Message, Method, ParseOptions};
pub use name::HeaderName;
pub use text::{percent_decode, CommaSplit, Param, Params};
pub use uri::{Host, Scheme, SipUri, TelUri, Uri, UriError};
pub use verdict::{
    error_response, inspect, peek, response_from_raw, split_list, Peek, Policy, Verdict,
    DEFAULT_SUPPORTED,
};
