//! SRTP and SRTCP in place (RFC 3711, RFC 7714).
//!
//! One [`SrtpContext`] holds the session keys derived from one master key
//! and salt, and per-SSRC state: for each SSRC it protects, the highest
//! index sent (for the ROC) and the next SRTCP index; for each SSRC it
//! receives, the highest authenticated index and a replay window, for SRTP
//! and SRTCP separately. Use one context per direction and key: a relay leg
//! has one context protecting toward the peer with the key the SBC offered,
//! and one unprotecting with the key the peer offered.
//!
//! Packet layouts (`|` separates what is appended):
//!
//! ```text
//! SRTP,  AES-CM:  header | payload (encrypted)        | tag (10 or 4, HMAC over header+payload+ROC)
//! SRTP,  GCM:     header | payload (encrypted)        | tag (16; AAD = header)
//! SRTCP, AES-CM:  8-byte header | rest (encrypted)    | E+index (4) | tag (10, HMAC over all before it)
//! SRTCP, GCM:     8-byte header | rest (encrypted)    | tag (16)    | E+index (4; AAD = header + E+index)
//! ```
//!
//! MKI is not supported: a policy has no MKI, so nothing is appended or
//! expected; an SDES line with an MKI is refused at configuration
//! ([`crate::SdesError::MkiUnsupported`]). The key derivation rate is 0.

mod kdf;
mod streams;
mod transform;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod vectors;

use core::fmt;

use crate::rtp::RtpHeader;
use crate::seq::estimate_index;
use streams::{RxStream, SsrcMap};
use transform::{Cm, Gcm, Rtcp, Transform, GCM_TAG_LEN};

/// The replay window a policy gets by default, in packets (as libsrtp).
pub const DEFAULT_REPLAY_WINDOW: u32 = 128;
/// The largest replay window a context accepts, in packets.
pub const MAX_REPLAY_WINDOW: u32 = 32_768;
/// How many SSRCs per direction a context tracks by default before it
/// forgets the least recently used one.
pub const DEFAULT_MAX_SSRCS: usize = 16;

/// The SRTP protection profiles (crypto suites) this crate implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SrtpProfile {
    /// RFC 3711 / RFC 4568: AES-128 counter mode, HMAC-SHA1 with an 80-bit tag.
    /// What Microsoft Teams and ACS Direct Routing require.
    AesCm128HmacSha1_80,
    /// As `_80` but with a 32-bit SRTP tag; SRTCP keeps the 80-bit tag
    /// (RFC 4568 §6.2.2).
    AesCm128HmacSha1_32,
    /// RFC 7714: AES-128 in GCM, 16-octet tag, 12-octet master salt.
    AeadAes128Gcm,
}

impl SrtpProfile {
    /// Master key length in octets.
    #[must_use]
    pub const fn master_key_len(self) -> usize {
        16
    }

    /// Master salt length in octets (14, or 12 for GCM).
    #[must_use]
    pub const fn master_salt_len(self) -> usize {
        match self {
            Self::AesCm128HmacSha1_80 | Self::AesCm128HmacSha1_32 => 14,
            Self::AeadAes128Gcm => 12,
        }
    }

    /// SRTP authentication tag length in octets.
    #[must_use]
    pub const fn rtp_tag_len(self) -> usize {
        match self {
            Self::AesCm128HmacSha1_80 => 10,
            Self::AesCm128HmacSha1_32 => 4,
            Self::AeadAes128Gcm => GCM_TAG_LEN,
        }
    }

    /// SRTCP authentication tag length in octets.
    #[must_use]
    pub const fn rtcp_tag_len(self) -> usize {
        match self {
            Self::AesCm128HmacSha1_80 | Self::AesCm128HmacSha1_32 => 10,
            Self::AeadAes128Gcm => GCM_TAG_LEN,
        }
    }

    /// Octets [`SrtpContext::protect_rtp`] appends: the tailroom to reserve.
    #[must_use]
    pub const fn rtp_overhead(self) -> usize {
        self.rtp_tag_len()
    }

    /// Octets [`SrtpContext::protect_rtcp`] appends (E+index and tag).
    #[must_use]
    pub const fn rtcp_overhead(self) -> usize {
        4 + self.rtcp_tag_len()
    }

    /// The name in SDES (`a=crypto`) and DTLS-SRTP registries.
    #[must_use]
    pub const fn sdes_name(self) -> &'static str {
        match self {
            Self::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            Self::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
            Self::AeadAes128Gcm => "AEAD_AES_128_GCM",
        }
    }

    /// The profile with this SDES name, if implemented.
    #[must_use]
    pub fn from_sdes_name(name: &str) -> Option<Self> {
        [
            Self::AesCm128HmacSha1_80,
            Self::AesCm128HmacSha1_32,
            Self::AeadAes128Gcm,
        ]
        .into_iter()
        .find(|p| p.sdes_name() == name)
    }

    fn is_gcm(self) -> bool {
        matches!(self, Self::AeadAes128Gcm)
    }
}

impl fmt::Display for SrtpProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.sdes_name())
    }
}

/// Everything needed to build an [`SrtpContext`]: profile, master key and
/// salt, and options. The key material is private and left out of `Debug`.
///
/// Two policies compare equal when every field does; [`SrtpPolicy::same_key`]
/// compares only profile, key and salt — what decides whether a re-offer is
/// a re-key.
#[derive(Clone, PartialEq, Eq)]
pub struct SrtpPolicy {
    /// The crypto suite.
    pub profile: SrtpProfile,
    master_key: [u8; 16],
    master_salt: [u8; 14],
    /// Replay window in packets, for SRTP and (separately) SRTCP: 0 turns
    /// replay protection off; otherwise 64 to [`MAX_REPLAY_WINDOW`], rounded
    /// up to a power of two. Default [`DEFAULT_REPLAY_WINDOW`].
    pub replay_window: u32,
    /// SSRCs tracked per direction and per SRTP/SRTCP before the least
    /// recently used one is forgotten (at least 1). Default [`DEFAULT_MAX_SSRCS`].
    pub max_ssrcs: usize,
    /// Encrypt SRTP payloads (`false` = SDES `UNENCRYPTED_SRTP`: authenticated only).
    pub encrypt_rtp: bool,
    /// Encrypt SRTCP (`false` = SDES `UNENCRYPTED_SRTCP`: E bit clear).
    pub encrypt_rtcp: bool,
}

impl SrtpPolicy {
    /// A policy with the default options.
    ///
    /// # Errors
    /// [`SrtpError::KeyLength`] or [`SrtpError::SaltLength`] when the lengths
    /// do not match the profile.
    pub fn new(
        profile: SrtpProfile,
        master_key: &[u8],
        master_salt: &[u8],
    ) -> Result<Self, SrtpError> {
        if master_key.len() != profile.master_key_len() {
            return Err(SrtpError::KeyLength {
                expected: profile.master_key_len(),
                found: master_key.len(),
            });
        }
        if master_salt.len() != profile.master_salt_len() {
            return Err(SrtpError::SaltLength {
                expected: profile.master_salt_len(),
                found: master_salt.len(),
            });
        }
        let mut key = [0u8; 16];
        key.copy_from_slice(master_key);
        let mut salt = [0u8; 14];
        salt[..master_salt.len()].copy_from_slice(master_salt);
        Ok(Self {
            profile,
            master_key: key,
            master_salt: salt,
            replay_window: DEFAULT_REPLAY_WINDOW,
            max_ssrcs: DEFAULT_MAX_SSRCS,
            encrypt_rtp: true,
            encrypt_rtcp: true,
        })
    }

    /// A policy from key and salt concatenated (the SDES `inline:` form).
    ///
    /// # Errors
    /// [`SrtpError::KeyLength`] when `key_salt` is not key + salt long.
    pub fn from_key_salt(profile: SrtpProfile, key_salt: &[u8]) -> Result<Self, SrtpError> {
        let k = profile.master_key_len();
        let expected = k + profile.master_salt_len();
        if key_salt.len() != expected {
            return Err(SrtpError::KeyLength {
                expected,
                found: key_salt.len(),
            });
        }
        Self::new(profile, &key_salt[..k], &key_salt[k..])
    }

    /// The master key.
    #[must_use]
    pub fn master_key(&self) -> &[u8] {
        &self.master_key[..self.profile.master_key_len()]
    }

    /// The master salt.
    #[must_use]
    pub fn master_salt(&self) -> &[u8] {
        &self.master_salt[..self.profile.master_salt_len()]
    }

    /// Whether `other` has the same profile, key and salt (so a context
    /// built from either is the same crypto context).
    #[must_use]
    pub fn same_key(&self, other: &SrtpPolicy) -> bool {
        self.profile == other.profile
            && self.master_key == other.master_key
            && self.master_salt == other.master_salt
    }
}

impl fmt::Debug for SrtpPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SrtpPolicy")
            .field("profile", &self.profile)
            .field("master_key", &"<redacted>")
            .field("replay_window", &self.replay_window)
            .field("max_ssrcs", &self.max_ssrcs)
            .field("encrypt_rtp", &self.encrypt_rtp)
            .field("encrypt_rtcp", &self.encrypt_rtcp)
            .finish()
    }
}

/// Why a policy cannot make a context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SrtpError {
    /// The master key (or key‖salt) has the wrong length for the profile.
    KeyLength {
        /// What the profile needs.
        expected: usize,
        /// What was given.
        found: usize,
    },
    /// The master salt has the wrong length for the profile.
    SaltLength {
        /// What the profile needs.
        expected: usize,
        /// What was given.
        found: usize,
    },
    /// The replay window is neither 0 nor within 64..=[`MAX_REPLAY_WINDOW`].
    ReplayWindow(u32),
    /// `max_ssrcs` is 0.
    MaxSsrcs,
    /// The AEAD implementation refused the key (not expected with a valid length).
    Crypto,
}

impl fmt::Display for SrtpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::KeyLength { expected, found } => {
                write!(
                    f,
                    "SRTP master key is {found} octets, the profile needs {expected}"
                )
            }
            Self::SaltLength { expected, found } => {
                write!(
                    f,
                    "SRTP master salt is {found} octets, the profile needs {expected}"
                )
            }
            Self::ReplayWindow(w) => write!(
                f,
                "SRTP replay window {w}: use 0 (off) or 64 to {MAX_REPLAY_WINDOW}"
            ),
            Self::MaxSsrcs => f.write_str("SRTP context needs room for at least one SSRC"),
            Self::Crypto => f.write_str("the AEAD implementation refused the SRTP key"),
        }
    }
}

impl std::error::Error for SrtpError {}

/// Why a packet was not protected. Nothing was sent; the buffer may have
/// been partly transformed only for [`ProtectError::Crypto`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtectError {
    /// Not an RTP packet (see [`RtpHeader::parse`]) or RTCP packet (version
    /// 2, at least 8 octets), or `len` is larger than the buffer.
    Malformed,
    /// The buffer has no room for what protection appends.
    BufferTooSmall {
        /// The length the buffer needs.
        needed: usize,
    },
    /// The key may not protect more packets: the ROC would pass 2^32 − 1
    /// or the SRTCP index 2^31 − 1 (RFC 3711 §9.2). Re-key.
    KeyExhausted,
    /// The AEAD implementation refused (not expected).
    Crypto,
}

impl fmt::Display for ProtectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed => f.write_str("not an RTP/RTCP packet"),
            Self::BufferTooSmall { needed } => write!(f, "buffer too small: need {needed} octets"),
            Self::KeyExhausted => f.write_str("SRTP key exhausted (index limit); re-key"),
            Self::Crypto => f.write_str("the AEAD implementation refused"),
        }
    }
}

impl std::error::Error for ProtectError {}

/// Why a received packet was dropped. Each is counted in [`SrtpCounters`];
/// the buffer's contents are unspecified afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum UnprotectError {
    /// Too short for a header, the tag and (SRTCP) the index.
    TooShort,
    /// Not an RTP or RTCP packet (version, CSRC list, extension length).
    Malformed,
    /// The tag does not match: wrong key, tampering, or a ROC the sender
    /// did not use.
    AuthFailed,
    /// This index was already received (replay window).
    Replay,
    /// The index is older than the replay window.
    TooOld,
}

impl fmt::Display for UnprotectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::TooShort => "SRTP packet too short",
            Self::Malformed => "SRTP packet malformed",
            Self::AuthFailed => "SRTP authentication failed",
            Self::Replay => "SRTP replay",
            Self::TooOld => "SRTP packet older than the replay window",
        })
    }
}

impl std::error::Error for UnprotectError {}

/// What a context has done, for metrics. Plain counters, never reset by the
/// context (a re-key keeps them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SrtpCounters {
    /// SRTP packets protected.
    pub rtp_protected: u64,
    /// SRTP packets unprotected (authenticated, decrypted, not replays).
    pub rtp_unprotected: u64,
    /// SRTCP packets protected.
    pub rtcp_protected: u64,
    /// SRTCP packets unprotected.
    pub rtcp_unprotected: u64,
    /// Packets whose tag did not verify.
    pub auth_failures: u64,
    /// Packets already received.
    pub replays: u64,
    /// Packets older than the replay window.
    pub too_old: u64,
    /// Packets too short or not RTP/RTCP (received or to protect).
    pub malformed: u64,
    /// Packets that could not be protected for another reason (no tailroom,
    /// key exhausted).
    pub protect_failures: u64,
    /// SSRCs forgotten because the context was tracking `max_ssrcs` already.
    pub ssrc_evictions: u64,
}

struct TxRtp {
    top: u64,
}

struct TxRtcp {
    next: u64,
}

/// An SRTP/SRTCP crypto context: session keys derived once from one master
/// key, and per-SSRC ROC, SRTCP index and replay state.
///
/// Build it on the slow path with [`SrtpContext::new`]; the fast path calls
/// the four `protect`/`unprotect` methods, which work in place and allocate
/// nothing (an SSRC seen for the first time may grow the SSRC table once,
/// up to `max_ssrcs`).
///
/// **Re-keying.** A new master key (an SDES re-offer with a different
/// `inline:` key) is a new context: ROC 0, empty replay windows, SRTCP index
/// 0 — what Microsoft's media processors do on a re-key (rtpengine issue
/// #1443: keeping the old ROC under the new key gave one-way audio after a
/// ~27-minute re-INVITE). Build a new context, or call
/// [`SrtpContext::rekey`] which does that and keeps the counters. A re-offer
/// with the same key ([`SrtpPolicy::same_key`]) keeps the context.
pub struct SrtpContext {
    profile: SrtpProfile,
    rtp: Transform,
    rtcp: Rtcp,
    encrypt_rtp: bool,
    encrypt_rtcp: bool,
    /// Replay bitmap size in 64-bit words (0 = off).
    window_words: usize,
    tx_rtp: SsrcMap<TxRtp>,
    tx_rtcp: SsrcMap<TxRtcp>,
    rx_rtp: SsrcMap<RxStream>,
    rx_rtcp: SsrcMap<RxStream>,
    counters: SrtpCounters,
}

impl fmt::Debug for SrtpContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SrtpContext")
            .field("profile", &self.profile)
            .field("replay_window", &(self.window_words * 64))
            .field("tx_ssrcs", &self.tx_rtp.len())
            .field("rx_ssrcs", &self.rx_rtp.len())
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

#[inline]
fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

const INDEX_LIMIT: u64 = 1 << 48;
const SRTCP_INDEX_LIMIT: u64 = 1 << 31;
const E_BIT: u32 = 1 << 31;

impl SrtpContext {
    /// Derives the session keys and builds a context with no SSRC state.
    ///
    /// # Errors
    /// [`SrtpError::ReplayWindow`], [`SrtpError::MaxSsrcs`] or [`SrtpError::Crypto`].
    pub fn new(policy: &SrtpPolicy) -> Result<Self, SrtpError> {
        let rtp_keys = kdf::session_keys(&policy.master_key, &policy.master_salt, false);
        let rtcp_keys = kdf::session_keys(&policy.master_key, &policy.master_salt, true);
        let (rtp, rtcp) = if policy.profile.is_gcm() {
            (
                Transform::gcm(&rtp_keys).map_err(|_| SrtpError::Crypto)?,
                Rtcp::Gcm(Gcm::new(&rtcp_keys).map_err(|_| SrtpError::Crypto)?),
            )
        } else {
            (Transform::cm(&rtp_keys), Rtcp::Cm(rtcp_keys))
        };
        Self::assemble(policy, rtp, rtcp)
    }

    fn assemble(policy: &SrtpPolicy, rtp: Transform, rtcp: Rtcp) -> Result<Self, SrtpError> {
        let window_words = match policy.replay_window {
            0 => 0,
            w @ 64..=MAX_REPLAY_WINDOW => (w.next_power_of_two() / 64) as usize,
            w => return Err(SrtpError::ReplayWindow(w)),
        };
        if policy.max_ssrcs == 0 {
            return Err(SrtpError::MaxSsrcs);
        }
        let n = policy.max_ssrcs;
        Ok(Self {
            profile: policy.profile,
            rtp,
            rtcp,
            encrypt_rtp: policy.encrypt_rtp,
            encrypt_rtcp: policy.encrypt_rtcp,
            window_words,
            tx_rtp: SsrcMap::new(n),
            tx_rtcp: SsrcMap::new(n),
            rx_rtp: SsrcMap::new(n),
            rx_rtcp: SsrcMap::new(n),
            counters: SrtpCounters::default(),
        })
    }

    /// Replaces the keys with those of `policy` and forgets every SSRC:
    /// ROC 0, empty replay windows, SRTCP index 0. The counters are kept.
    /// On error the context is unchanged.
    ///
    /// # Errors
    /// As [`SrtpContext::new`].
    pub fn rekey(&mut self, policy: &SrtpPolicy) -> Result<(), SrtpError> {
        let counters = self.counters;
        *self = Self::new(policy)?;
        self.counters = counters;
        Ok(())
    }

    /// The profile.
    #[must_use]
    pub fn profile(&self) -> SrtpProfile {
        self.profile
    }

    /// The counters.
    #[must_use]
    pub fn counters(&self) -> &SrtpCounters {
        &self.counters
    }

    /// The ROC of the newest packet protected for `ssrc`, if any was.
    #[must_use]
    pub fn tx_roc(&self, ssrc: u32) -> Option<u32> {
        self.tx_rtp.lookup(ssrc).map(|s| (s.top >> 16) as u32)
    }

    /// The ROC of the newest authenticated packet received from `ssrc`, if any.
    #[must_use]
    pub fn rx_roc(&self, ssrc: u32) -> Option<u32> {
        self.rx_rtp.lookup(ssrc).map(|s| (s.top >> 16) as u32)
    }

    /// The SRTCP index the next packet protected for `ssrc` will carry.
    #[must_use]
    pub fn tx_srtcp_index(&self, ssrc: u32) -> u32 {
        self.tx_rtcp.lookup(ssrc).map_or(0, |s| s.next as u32)
    }

    /// The highest SRTCP index authenticated from `ssrc`, if any.
    #[must_use]
    pub fn rx_srtcp_index(&self, ssrc: u32) -> Option<u32> {
        self.rx_rtcp.lookup(ssrc).map(|s| s.top as u32)
    }

    #[cfg(test)]
    pub(crate) fn set_tx_srtcp_index(&mut self, ssrc: u32, next: u32) {
        let next = u64::from(next);
        match self.tx_rtcp.find(ssrc) {
            Some(i) => self.tx_rtcp.get_mut(i).next = next,
            None => {
                self.tx_rtcp
                    .insert(ssrc, || TxRtcp { next }, |s| s.next = next);
            }
        }
    }

    /// Protects the RTP packet in `buf[..len]` in place and returns the
    /// SRTP length, `len + profile.rtp_overhead()`. `buf` must extend at
    /// least that far (reserve the tailroom when receiving into it).
    ///
    /// The index is `ROC << 16 | SEQ`, the ROC estimated from the newest
    /// packet protected for the SSRC (RFC 3711 Appendix A), so packets a
    /// relay forwards slightly out of order keep their ROC. Packets are not
    /// refused for being duplicates or old.
    ///
    /// # Errors
    /// [`ProtectError::Malformed`], [`ProtectError::BufferTooSmall`],
    /// [`ProtectError::KeyExhausted`]; all counted.
    pub fn protect_rtp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, ProtectError> {
        let r = self.protect_rtp_inner(buf, len);
        match r {
            Ok(_) => self.counters.rtp_protected += 1,
            Err(ProtectError::Malformed) => self.counters.malformed += 1,
            Err(_) => self.counters.protect_failures += 1,
        }
        r
    }

    #[inline]
    fn protect_rtp_inner(&mut self, buf: &mut [u8], len: usize) -> Result<usize, ProtectError> {
        if len > buf.len() {
            return Err(ProtectError::Malformed);
        }
        let tag_len = self.profile.rtp_tag_len();
        let out_len = len + tag_len;
        let (hlen, ssrc, seq) = {
            let h = RtpHeader::parse(&buf[..len]).map_err(|_| ProtectError::Malformed)?;
            (h.header_len(), h.ssrc(), h.sequence_number())
        };
        if out_len > buf.len() {
            return Err(ProtectError::BufferTooSmall { needed: out_len });
        }
        let slot = self.tx_rtp.find(ssrc);
        let index = match slot {
            Some(i) => estimate_index(self.tx_rtp.get(i).top, seq),
            None => u64::from(seq),
        };
        if index >= INDEX_LIMIT {
            return Err(ProtectError::KeyExhausted);
        }
        match &self.rtp {
            Transform::Cm(cm) => {
                if self.encrypt_rtp {
                    cm.apply_keystream(ssrc, index, &mut buf[hlen..len]);
                }
                let roc = ((index >> 16) as u32).to_be_bytes();
                let tag = cm.tag(&buf[..len], &roc);
                buf[len..out_len].copy_from_slice(&tag[..tag_len]);
            }
            Transform::Gcm(gcm) => {
                let tag = if self.encrypt_rtp {
                    let (head, rest) = buf.split_at_mut(hlen);
                    gcm.seal(ssrc, index, head, &mut rest[..len - hlen])
                } else {
                    gcm.seal(ssrc, index, &buf[..len], &mut [])
                }
                .map_err(|_| ProtectError::Crypto)?;
                buf[len..out_len].copy_from_slice(&tag);
            }
        }
        match slot {
            Some(i) => {
                let s = self.tx_rtp.get_mut(i);
                s.top = s.top.max(index);
            }
            None => {
                let (_, evicted) =
                    self.tx_rtp
                        .insert(ssrc, || TxRtp { top: index }, |s| s.top = index);
                self.counters.ssrc_evictions += u64::from(evicted);
            }
        }
        Ok(out_len)
    }

    /// Checks and decrypts the SRTP packet `buf` (the whole datagram) in
    /// place and returns the RTP length; the RTP packet is `buf[..n]`.
    ///
    /// Order (RFC 3711 §3.3): estimate the index from the newest
    /// authenticated packet of the SSRC, check the replay window (read
    /// only), verify the tag, decrypt, and only then record the index —
    /// so a forged packet never moves the ROC or the window. An SSRC is
    /// added to the table only after its first packet authenticates.
    ///
    /// # Errors
    /// An [`UnprotectError`], each counted.
    pub fn unprotect_rtp(&mut self, buf: &mut [u8]) -> Result<usize, UnprotectError> {
        let r = self.unprotect_rtp_inner(buf);
        match r {
            Ok(_) => self.counters.rtp_unprotected += 1,
            Err(e) => self.count_rx_error(e),
        }
        r
    }

    fn count_rx_error(&mut self, e: UnprotectError) {
        let c = &mut self.counters;
        match e {
            UnprotectError::TooShort | UnprotectError::Malformed => c.malformed += 1,
            UnprotectError::AuthFailed => c.auth_failures += 1,
            UnprotectError::Replay => c.replays += 1,
            UnprotectError::TooOld => c.too_old += 1,
        }
    }

    #[inline]
    fn unprotect_rtp_inner(&mut self, buf: &mut [u8]) -> Result<usize, UnprotectError> {
        let len = buf.len();
        let tag_len = self.profile.rtp_tag_len();
        if len < crate::rtp::RTP_FIXED_HEADER_LEN + tag_len {
            return Err(UnprotectError::TooShort);
        }
        let end = len - tag_len;
        let (hlen, ssrc, seq) = {
            let h = RtpHeader::parse(&buf[..end]).map_err(|_| UnprotectError::Malformed)?;
            (h.header_len(), h.ssrc(), h.sequence_number())
        };
        let slot = self.rx_rtp.find(ssrc);
        let index = match slot {
            Some(i) => {
                let s = self.rx_rtp.get(i);
                let index = estimate_index(s.top, seq);
                s.check(index)?;
                index
            }
            None => u64::from(seq),
        };
        if index >= INDEX_LIMIT {
            // No sender can have used a ROC of 2^32.
            return Err(UnprotectError::AuthFailed);
        }
        match &self.rtp {
            Transform::Cm(cm) => {
                let roc = ((index >> 16) as u32).to_be_bytes();
                if !cm.verify(&buf[..end], &roc, &buf[end..]) {
                    return Err(UnprotectError::AuthFailed);
                }
                if self.encrypt_rtp {
                    cm.apply_keystream(ssrc, index, &mut buf[hlen..end]);
                }
            }
            Transform::Gcm(gcm) => {
                let ok = if self.encrypt_rtp {
                    let (head, rest) = buf.split_at_mut(hlen);
                    let (ciphertext, tag) = rest.split_at_mut(end - hlen);
                    gcm.open(ssrc, index, head, ciphertext, tag)
                } else {
                    let (data, tag) = buf.split_at(end);
                    gcm.open(ssrc, index, data, &mut [], tag)
                };
                if !ok {
                    return Err(UnprotectError::AuthFailed);
                }
            }
        }
        match slot {
            Some(i) => self.rx_rtp.get_mut(i).accept(index),
            None => {
                let words = self.window_words;
                let (_, evicted) =
                    self.rx_rtp
                        .insert(ssrc, || RxStream::new(words, index), |s| s.restart(index));
                self.counters.ssrc_evictions += u64::from(evicted);
            }
        }
        Ok(end)
    }

    /// Protects the compound RTCP packet in `buf[..len]` in place and
    /// returns the SRTCP length, `len + profile.rtcp_overhead()`.
    ///
    /// The SRTCP index of an SSRC (that of the first packet's sender) starts
    /// at 0 and goes up by one per packet (RFC 3711 §3.4); the E bit says
    /// whether the packet is encrypted ([`SrtpPolicy::encrypt_rtcp`]).
    ///
    /// # Errors
    /// [`ProtectError::Malformed`], [`ProtectError::BufferTooSmall`],
    /// [`ProtectError::KeyExhausted`] after 2^31 packets; all counted.
    pub fn protect_rtcp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, ProtectError> {
        let r = self.protect_rtcp_inner(buf, len);
        match r {
            Ok(_) => self.counters.rtcp_protected += 1,
            Err(ProtectError::Malformed) => self.counters.malformed += 1,
            Err(_) => self.counters.protect_failures += 1,
        }
        r
    }

    #[inline]
    fn protect_rtcp_inner(&mut self, buf: &mut [u8], len: usize) -> Result<usize, ProtectError> {
        if len > buf.len() || len < 8 || buf[0] >> 6 != 2 {
            return Err(ProtectError::Malformed);
        }
        let tag_len = self.profile.rtcp_tag_len();
        let out_len = len + 4 + tag_len;
        if out_len > buf.len() {
            return Err(ProtectError::BufferTooSmall { needed: out_len });
        }
        let ssrc = be32(buf, 4);
        let slot = self.tx_rtcp.find(ssrc);
        let index = slot.map_or(0, |i| self.tx_rtcp.get(i).next);
        if index >= SRTCP_INDEX_LIMIT {
            return Err(ProtectError::KeyExhausted);
        }
        let e = if self.encrypt_rtcp { E_BIT } else { 0 };
        let e_index = (e | index as u32).to_be_bytes();
        match &self.rtcp {
            Rtcp::Cm(keys) => {
                let cm = Cm::new(keys);
                if self.encrypt_rtcp {
                    cm.apply_keystream(ssrc, index, &mut buf[8..len]);
                }
                buf[len..len + 4].copy_from_slice(&e_index);
                let tag = cm.tag(&buf[..len + 4], &[]);
                buf[len + 4..out_len].copy_from_slice(&tag[..tag_len]);
            }
            Rtcp::Gcm(gcm) => {
                let tag = if self.encrypt_rtcp {
                    let mut aad = [0u8; 12];
                    aad[..8].copy_from_slice(&buf[..8]);
                    aad[8..].copy_from_slice(&e_index);
                    gcm.seal(ssrc, index, &aad, &mut buf[8..len])
                } else {
                    buf[len..len + 4].copy_from_slice(&e_index);
                    gcm.seal(ssrc, index, &buf[..len + 4], &mut [])
                }
                .map_err(|_| ProtectError::Crypto)?;
                buf[len..len + GCM_TAG_LEN].copy_from_slice(&tag);
                buf[len + GCM_TAG_LEN..out_len].copy_from_slice(&e_index);
            }
        }
        match slot {
            Some(i) => self.tx_rtcp.get_mut(i).next = index + 1,
            None => {
                let next = index + 1;
                let (_, evicted) = self
                    .tx_rtcp
                    .insert(ssrc, || TxRtcp { next }, |s| s.next = next);
                self.counters.ssrc_evictions += u64::from(evicted);
            }
        }
        Ok(out_len)
    }

    /// Checks and (if its E bit is set) decrypts the SRTCP packet `buf` in
    /// place and returns the RTCP length. The SRTCP index is explicit, so
    /// there is nothing to estimate; it has its own replay window per SSRC.
    ///
    /// # Errors
    /// An [`UnprotectError`], each counted.
    pub fn unprotect_rtcp(&mut self, buf: &mut [u8]) -> Result<usize, UnprotectError> {
        let r = self.unprotect_rtcp_inner(buf);
        match r {
            Ok(_) => self.counters.rtcp_unprotected += 1,
            Err(e) => self.count_rx_error(e),
        }
        r
    }

    #[inline]
    fn unprotect_rtcp_inner(&mut self, buf: &mut [u8]) -> Result<usize, UnprotectError> {
        let len = buf.len();
        let tag_len = self.profile.rtcp_tag_len();
        if len < 8 + 4 + tag_len {
            return Err(UnprotectError::TooShort);
        }
        if buf[0] >> 6 != 2 {
            return Err(UnprotectError::Malformed);
        }
        let end = len - 4 - tag_len;
        let ssrc = be32(buf, 4);
        let e_index_at = if self.profile.is_gcm() { len - 4 } else { end };
        let e_index = be32(buf, e_index_at);
        let encrypted = e_index & E_BIT != 0;
        let index = u64::from(e_index & !E_BIT);
        let slot = self.rx_rtcp.find(ssrc);
        if let Some(i) = slot {
            self.rx_rtcp.get(i).check(index)?;
        }
        match &self.rtcp {
            Rtcp::Cm(keys) => {
                let cm = Cm::new(keys);
                let (data, tag) = buf.split_at(len - tag_len);
                if !cm.verify(data, &[], tag) {
                    return Err(UnprotectError::AuthFailed);
                }
                if encrypted {
                    cm.apply_keystream(ssrc, index, &mut buf[8..end]);
                }
            }
            Rtcp::Gcm(gcm) => {
                let e_bytes = e_index.to_be_bytes();
                let ok = if encrypted {
                    let mut aad = [0u8; 12];
                    aad[..8].copy_from_slice(&buf[..8]);
                    aad[8..].copy_from_slice(&e_bytes);
                    let (ciphertext, tag) = buf[8..len - 4].split_at_mut(end - 8);
                    gcm.open(ssrc, index, &aad, ciphertext, tag)
                } else {
                    // AAD = packet || E+index: move the index next to the
                    // packet, over the start of the tag kept aside.
                    let mut tag = [0u8; GCM_TAG_LEN];
                    tag.copy_from_slice(&buf[end..end + GCM_TAG_LEN]);
                    buf[end..end + 4].copy_from_slice(&e_bytes);
                    gcm.open(ssrc, index, &buf[..end + 4], &mut [], &tag)
                };
                if !ok {
                    return Err(UnprotectError::AuthFailed);
                }
            }
        }
        match slot {
            Some(i) => self.rx_rtcp.get_mut(i).accept(index),
            None => {
                let words = self.window_words;
                let (_, evicted) =
                    self.rx_rtcp
                        .insert(ssrc, || RxStream::new(words, index), |s| s.restart(index));
                self.counters.ssrc_evictions += u64::from(evicted);
            }
        }
        Ok(end)
    }
}
