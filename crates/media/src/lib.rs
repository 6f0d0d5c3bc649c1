//! # media — the packet code of the media relay
//!
//! Owns what the relay does to one datagram: zero-copy views of RTP and RTCP
//! packets (RFC 3550, header extensions per RFC 8285, compound RTCP),
//! demultiplexing of STUN/DTLS/RTP/RTCP on one port (RFC 7983, RFC 5761),
//! RTP sequence-number arithmetic, payload-type maps between two parties'
//! numberings and RFC 4733 event payloads ([`payload`]), SRTP and SRTCP in place (RFC 3711
//! `AES_CM_128_HMAC_SHA1_80`/`_32`, RFC 7714 `AEAD_AES_128_GCM`) with
//! rollover-counter estimation and replay windows per SSRC, and SDES
//! (RFC 4568 `a=crypto`) parsing and generation; G.711 and the call-progress
//! tones the relay plays (`tone`).
//!
//! This crate does no I/O, reads no clock, spawns nothing and never panics on
//! input from the network. The fast path works in place on the caller's
//! buffer and allocates nothing per packet: [`SrtpContext::protect_rtp`]
//! encrypts in place and appends the tag into tailroom the caller reserved
//! ([`SrtpProfile::rtp_overhead`]), [`SrtpContext::unprotect_rtp`] checks and
//! decrypts in place and returns the plaintext length, and a packet that fails
//! authentication or replay checks is a small `Copy` error plus a counter
//! ([`SrtpCounters`]). Keys (AES key schedule, HMAC inner/outer state, the
//! AEAD key) are expanded once per context. The sockets, the forwarding
//! entries and the worker threads live in the relay engine on top of this
//! API; see `docs/media.md`.
//!
//! ```
//! use media::{CryptoAttribute, SrtpContext};
//!
//! // The key a Teams offer carried (docs/media.md has the whole picture).
//! let offer = CryptoAttribute::parse(
//!     "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:V/Lr6Lsvhad/crSB9kCQ28jrYDxR2Yfk5bXryH5V|2^31",
//! )
//! .unwrap();
//! let policy = offer.srtp_policy().unwrap();
//! let mut tx = SrtpContext::new(&policy).unwrap();
//! let mut rx = SrtpContext::new(&policy).unwrap();
//!
//! // A 12-byte RTP header and 160 bytes of G.711, with tailroom for the tag.
//! let mut buf = [0u8; 172 + 16];
//! buf[..12].copy_from_slice(&[0x80, 0, 0x12, 0x34, 0, 0, 0, 160, 0xca, 0xfe, 0xba, 0xbe]);
//! let srtp_len = tx.protect_rtp(&mut buf, 172).unwrap();
//! assert_eq!(srtp_len, 172 + policy.profile.rtp_overhead());
//! let wire = buf[..srtp_len].to_vec();
//! let rtp_len = rx.unprotect_rtp(&mut buf[..srtp_len]).unwrap();
//! assert_eq!(rtp_len, 172);
//!
//! // The same datagram again is a replay: a small error value and a counter.
//! let mut again = wire.clone();
//! assert_eq!(rx.unprotect_rtp(&mut again), Err(media::UnprotectError::Replay));
//! assert_eq!(rx.counters().replays, 1);
//! ```

#![forbid(unsafe_code)]

pub mod control;
mod demux;
pub mod payload;
mod rtcp;
mod rtp;
mod sdes;
mod seq;
mod srtp;
pub mod tone;

pub use demux::{classify, PacketClass};
pub use rtcp::{
    App, Bye, ByeSsrcs, ReceiverReport, ReportBlock, ReportBlocks, RtcpCompound, RtcpError,
    RtcpIter, RtcpKind, RtcpPacket, SdesChunk, SdesChunks, SdesItem, SdesItems, SenderReport,
    SourceDescription, RTCP_APP, RTCP_BYE, RTCP_PSFB, RTCP_RR, RTCP_RTPFB, RTCP_SDES, RTCP_SR,
    RTCP_XR,
};
pub use rtp::{
    Csrcs, ExtensionElement, ExtensionElements, ExtensionForm, HeaderExtension, RtpError,
    RtpHeader, RtpHeaderMut, RtpPacket, RTP_FIXED_HEADER_LEN, RTP_VERSION,
};
pub use sdes::{choose_crypto, CryptoAttribute, CryptoSuite, KeyParam, Lifetime, Mki, SdesError};
pub use seq::{seq_delta, seq_is_newer, SeqExtender};
pub use srtp::{
    ProtectError, SrtpContext, SrtpCounters, SrtpError, SrtpPolicy, SrtpProfile, UnprotectError,
    DEFAULT_MAX_SSRCS, DEFAULT_REPLAY_WINDOW, MAX_REPLAY_WINDOW,
};

#[cfg(test)]
mod test_corpora;
