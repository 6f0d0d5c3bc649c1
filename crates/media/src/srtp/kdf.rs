//! SRTP key derivation (RFC 3711 §4.3) with a key derivation rate of 0, and
//! the session-key transforms built from it.
//!
//! The PRF is AES-CM keyed with the master key: for label `l`,
//! `x = (l << 48) XOR master_salt` (the label lands in octet 7 of the 14-octet
//! salt), and the output is the keystream for IV `x · 2^16`. A 12-octet
//! master salt (AEAD_AES_128_GCM, RFC 7714 §11) is extended with two zero
//! octets first, as libsrtp does.

use aes::Aes128;
use ctr::cipher::{InnerIvInit, KeyInit, StreamCipher};
use ctr::{Ctr128BE, CtrCore};

/// The session keys of one direction (SRTP or SRTCP).
pub(crate) struct SessionKeys {
    pub(crate) cipher_key: [u8; 16],
    /// 14 octets; GCM uses the first 12.
    pub(crate) cipher_salt: [u8; 14],
    /// 20 octets (HMAC-SHA1 `n_a` = 160 bits); unused by GCM.
    pub(crate) auth_key: [u8; 20],
}

/// Labels (RFC 3711 §4.3.2).
const SRTP_ENCRYPTION: u8 = 0;
const SRTP_AUTHENTICATION: u8 = 1;
const SRTP_SALT: u8 = 2;
const SRTCP_ENCRYPTION: u8 = 3;
const SRTCP_AUTHENTICATION: u8 = 4;
const SRTCP_SALT: u8 = 5;

/// Fills `out` with the PRF output for `label`.
pub(crate) fn prf(master_key: &[u8; 16], master_salt: &[u8; 14], label: u8, out: &mut [u8]) {
    let aes = Aes128::new(&(*master_key).into());
    let mut iv = [0u8; 16];
    iv[..14].copy_from_slice(master_salt);
    iv[7] ^= label;
    out.fill(0);
    Ctr128BE::from_core(CtrCore::inner_iv_init(aes, &iv.into())).apply_keystream(out);
}

/// Derives the SRTP (`rtcp == false`) or SRTCP session keys.
pub(crate) fn session_keys(
    master_key: &[u8; 16],
    master_salt: &[u8; 14],
    rtcp: bool,
) -> SessionKeys {
    let (enc, auth, salt) = if rtcp {
        (SRTCP_ENCRYPTION, SRTCP_AUTHENTICATION, SRTCP_SALT)
    } else {
        (SRTP_ENCRYPTION, SRTP_AUTHENTICATION, SRTP_SALT)
    };
    let mut k = SessionKeys {
        cipher_key: [0; 16],
        cipher_salt: [0; 14],
        auth_key: [0; 20],
    };
    prf(master_key, master_salt, enc, &mut k.cipher_key);
    prf(master_key, master_salt, auth, &mut k.auth_key);
    prf(master_key, master_salt, salt, &mut k.cipher_salt);
    k
}
