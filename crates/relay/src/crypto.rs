//! The SRTP side of a leg: the key the party encrypts with (we unprotect
//! what arrives from it) and the key we encrypt with toward it (we protect).
//! Contexts come from the `media` crate and work in place.

use std::fmt;

use media::{SrtpContext, SrtpPolicy, UnprotectError};

pub use media::control::CryptoSpec;

/// Why a packet could not be protected or unprotected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CryptoError {
    /// Authentication failed.
    Auth,
    /// Replayed (or older than the replay window).
    Replay,
    /// Malformed or too short.
    Malformed,
    /// Unusable SRTP parameters.
    Unsupported,
}

impl fmt::Display for CryptoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CryptoError::Auth => "authentication failed",
            CryptoError::Replay => "replayed packet",
            CryptoError::Malformed => "malformed packet",
            CryptoError::Unsupported => "unsupported SRTP parameters",
        })
    }
}

impl std::error::Error for CryptoError {}

/// Boxed so that a plain leg's forwarding entry stays small: the fast path
/// then touches a pointer, not a ≈ 2 KiB context, to learn that it is plain
/// (fewer cache lines per packet with thousands of sessions).
#[derive(Debug, Default)]
struct Side {
    ctx: Option<Box<SrtpContext>>,
    policy: Option<Box<SrtpPolicy>>,
}

impl Side {
    fn new(p: Option<&SrtpPolicy>) -> Result<Side, CryptoError> {
        Ok(match p {
            Some(p) => Side {
                ctx: Some(Box::new(
                    SrtpContext::new(p).map_err(|_| CryptoError::Unsupported)?,
                )),
                policy: Some(Box::new(p.clone())),
            },
            None => Side::default(),
        })
    }

    /// A re-offer with the same key keeps the context (ROC, replay window);
    /// a new key starts a fresh one with ROC 0, as Microsoft does on re-key.
    fn update(&mut self, p: Option<&SrtpPolicy>) -> Result<(), CryptoError> {
        let same = match (&self.policy, p) {
            (Some(old), Some(new)) => old.same_key(new),
            (None, None) => true,
            _ => false,
        };
        if !same {
            *self = Side::new(p)?;
        }
        Ok(())
    }
}

/// Both directions of a leg.
#[derive(Debug, Default)]
pub(crate) struct Crypto {
    rx: Side,
    tx: Side,
}

fn unprotect_err(e: UnprotectError) -> CryptoError {
    match e {
        UnprotectError::AuthFailed => CryptoError::Auth,
        UnprotectError::Replay | UnprotectError::TooOld => CryptoError::Replay,
        _ => CryptoError::Malformed,
    }
}

impl Crypto {
    pub(crate) fn new(spec: &CryptoSpec) -> Result<Crypto, CryptoError> {
        Ok(Crypto {
            rx: Side::new(spec.rx.as_ref())?,
            tx: Side::new(spec.tx.as_ref())?,
        })
    }

    /// Plain RTP both ways (no SRTP context on either side).
    pub(crate) fn is_plain(&self) -> bool {
        self.rx.ctx.is_none() && self.tx.ctx.is_none()
    }

    pub(crate) fn update(&mut self, spec: &CryptoSpec) -> Result<(), CryptoError> {
        self.rx.update(spec.rx.as_ref())?;
        self.tx.update(spec.tx.as_ref())
    }

    pub(crate) fn unprotect_rtp(
        &mut self,
        buf: &mut [u8],
        len: usize,
    ) -> Result<usize, CryptoError> {
        match &mut self.rx.ctx {
            Some(c) => c.unprotect_rtp(&mut buf[..len]).map_err(unprotect_err),
            None => Ok(len),
        }
    }

    pub(crate) fn unprotect_rtcp(
        &mut self,
        buf: &mut [u8],
        len: usize,
    ) -> Result<usize, CryptoError> {
        match &mut self.rx.ctx {
            Some(c) => c.unprotect_rtcp(&mut buf[..len]).map_err(unprotect_err),
            None => Ok(len),
        }
    }

    pub(crate) fn protect_rtp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, CryptoError> {
        match &mut self.tx.ctx {
            Some(c) => c.protect_rtp(buf, len).map_err(|_| CryptoError::Malformed),
            None => Ok(len),
        }
    }

    pub(crate) fn protect_rtcp(
        &mut self,
        buf: &mut [u8],
        len: usize,
    ) -> Result<usize, CryptoError> {
        match &mut self.tx.ctx {
            Some(c) => c.protect_rtcp(buf, len).map_err(|_| CryptoError::Malformed),
            None => Ok(len),
        }
    }
}
