//! The SRTP side of a leg: what the party sends us (unprotected here) and
//! what we send it (protected here).

use std::fmt;

/// SRTP keys of a leg (none: plain RTP).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CryptoSpec {
    /// Placeholder until the media crate's SRTP lands.
    pub srtp: bool,
}

/// Why a packet could not be protected or unprotected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CryptoError {
    /// Authentication failed.
    Auth,
    /// Replayed packet.
    Replay,
    /// Malformed or too short.
    Malformed,
    /// Unsupported parameters.
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

#[derive(Debug, Default)]
pub(crate) struct Crypto;

impl Crypto {
    pub(crate) fn new(spec: &CryptoSpec) -> Result<Crypto, CryptoError> {
        if spec.srtp {
            return Err(CryptoError::Unsupported);
        }
        Ok(Crypto)
    }

    pub(crate) fn update(&mut self, spec: &CryptoSpec) -> Result<(), CryptoError> {
        *self = Crypto::new(spec)?;
        Ok(())
    }

    pub(crate) fn unprotect_rtp(
        &mut self,
        _buf: &mut [u8],
        len: usize,
    ) -> Result<usize, CryptoError> {
        Ok(len)
    }

    pub(crate) fn unprotect_rtcp(
        &mut self,
        _buf: &mut [u8],
        len: usize,
    ) -> Result<usize, CryptoError> {
        Ok(len)
    }

    pub(crate) fn protect_rtp(
        &mut self,
        _buf: &mut [u8],
        len: usize,
    ) -> Result<usize, CryptoError> {
        Ok(len)
    }

    pub(crate) fn protect_rtcp(
        &mut self,
        _buf: &mut [u8],
        len: usize,
    ) -> Result<usize, CryptoError> {
        Ok(len)
    }
}
