//! # transport — SIP over UDP, TCP and TLS for sbc
//!
//! Owns the sockets: UDP, TCP and TLS listeners on configured addresses,
//! outbound connections reused per (remote address, transport, TLS identity,
//! caller's identity tag),
//! stream framing with the `sip` crate's framer, RFC 5626 CRLF keepalives,
//! idle and assembly timeouts so that slow or stalled peers cannot hold
//! resources, and the TLS profile (`tls`). This crate does I/O (tokio); it
//! does not interpret SIP beyond framing.

#![forbid(unsafe_code)]

pub mod devpki;
mod dns;
mod icmp;
mod net;
pub mod stun;
pub mod tls;

pub use dns::{DnsConfig, DnsError, Refresh, Resolved, Resolver, Target};
pub use net::{
    Inbound, Limits, ListenerSpec, Lost, LostReason, Peer, SendError, Stats, Transport, Transports,
    Unreachable,
};
pub use tls::{IdentityFiles, TlsContext, TlsError, TlsProfile};
