//! The per-packet transforms with their keys expanded once.
//!
//! * AES-CM + HMAC-SHA1 (RFC 3711 §4.1.1, §4.2.1): the expanded `Aes128`
//!   is borrowed by a CTR instance per packet (no key schedule per packet).
//!   HMAC-SHA1 runs on `sha1`'s block function from the two SHA-1 states
//!   left after the ipad and opad blocks, computed once: per packet it
//!   compresses the packet's whole blocks straight from the buffer, one or
//!   two tail blocks with the ROC and padding, and one outer block. That is
//!   the minimum of four SHA-1 blocks for a 172-octet packet and about 35 ns
//!   less per packet than cloning and finalising an `hmac::Hmac<Sha1>`
//!   (which the tests use as the reference).
//! * AEAD_AES_128_GCM (RFC 7714): an aws-lc-rs `LessSafeKey` built once.
//!
//! IVs: both forms XOR the session salt with `SSRC` and the 48-bit index
//! (`ROC << 16 | SEQ` for SRTP, the 31-bit SRTCP index for SRTCP):
//! AES-CM IV = `(salt << 16) ^ (SSRC << 64) ^ (index << 16)` (16 octets),
//! GCM IV = `salt ^ (0x0000 || SSRC || index48)` (12 octets, RFC 7714 §8.1, §9.1).

use aes::Aes128;
use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_128_GCM};
use ctr::cipher::{InnerIvInit, KeyInit, StreamCipher};
use ctr::{Ctr128BE, CtrCore};
use sha1::block_api::compress;

use super::kdf::SessionKeys;

/// Length of the GCM tag (RFC 7714: 16 octets).
pub(crate) const GCM_TAG_LEN: usize = 16;

// The CM variant is large (an expanded AES key for every backend the `aes`
// crate may pick at run time); it stays inline so the
// per-packet path does not chase a pointer. A context holds two transforms.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Transform {
    Cm(Cm),
    Gcm(Gcm),
}

pub(crate) struct Cm {
    aes: Aes128,
    salt: [u8; 14],
    mac: HmacSha1,
}

pub(crate) struct Gcm {
    key: LessSafeKey,
    salt: [u8; 12],
}

/// The AEAD refused a key or an operation; only possible on a length bug.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CryptoRefused;

/// The SRTCP transform of a context. For AES-CM only the session keys are
/// kept (50 octets instead of a ≈ 770-octet expanded transform) and the
/// transform is expanded on the stack for each packet: SRTCP is about one
/// packet in 250 of a call, and the expansion (AES key schedule, two SHA-1
/// blocks) costs well under a microsecond and allocates nothing. GCM keeps
/// its prebuilt AEAD key, which lives on the C side's heap and would need an
/// allocation to build again.
pub(crate) enum Rtcp {
    Cm(SessionKeys),
    Gcm(Gcm),
}

impl Transform {
    pub(crate) fn cm(keys: &SessionKeys) -> Self {
        Transform::Cm(Cm::new(keys))
    }

    pub(crate) fn gcm(keys: &SessionKeys) -> Result<Self, CryptoRefused> {
        Gcm::new(keys).map(Transform::Gcm)
    }
}

impl Cm {
    pub(crate) fn new(keys: &SessionKeys) -> Self {
        Cm {
            aes: Aes128::new(&keys.cipher_key.into()),
            salt: keys.cipher_salt,
            mac: HmacSha1::new(&keys.auth_key),
        }
    }

    /// XORs `data` with the keystream for (`ssrc`, `index`).
    #[inline]
    pub(crate) fn apply_keystream(&self, ssrc: u32, index: u64, data: &mut [u8]) {
        let mut iv = [0u8; 16];
        iv[..14].copy_from_slice(&self.salt);
        xor_into(&mut iv[4..8], &ssrc.to_be_bytes());
        xor_into(&mut iv[8..14], &index.to_be_bytes()[2..]);
        Ctr128BE::from_core(CtrCore::inner_iv_init(&self.aes, &iv.into())).apply_keystream(data);
    }

    /// HMAC-SHA1 over `a || b`.
    #[inline]
    pub(crate) fn tag(&self, a: &[u8], b: &[u8]) -> [u8; 20] {
        self.mac.mac(a, b)
    }

    /// Checks, in constant time, that `tag` is the left part of HMAC-SHA1 over `a || b`.
    #[inline]
    pub(crate) fn verify(&self, a: &[u8], b: &[u8], tag: &[u8]) -> bool {
        let full = self.mac.mac(a, b);
        tag.len() <= 20 && ct_eq(&full[..tag.len()], tag)
    }
}

impl Gcm {
    pub(crate) fn new(keys: &SessionKeys) -> Result<Self, CryptoRefused> {
        let key = UnboundKey::new(&AES_128_GCM, &keys.cipher_key).map_err(|_| CryptoRefused)?;
        let mut salt = [0u8; 12];
        salt.copy_from_slice(&keys.cipher_salt[..12]);
        Ok(Gcm {
            key: LessSafeKey::new(key),
            salt,
        })
    }

    /// The 12-octet IV for (`ssrc`, `index`).
    #[inline]
    pub(crate) fn iv(&self, ssrc: u32, index: u64) -> [u8; 12] {
        let mut iv = self.salt;
        xor_into(&mut iv[2..6], &ssrc.to_be_bytes());
        xor_into(&mut iv[6..12], &index.to_be_bytes()[2..]);
        iv
    }

    #[inline]
    fn nonce(&self, ssrc: u32, index: u64) -> Nonce {
        Nonce::assume_unique_for_key(self.iv(ssrc, index))
    }

    /// Encrypts `in_out` in place and returns the tag.
    #[inline]
    pub(crate) fn seal(
        &self,
        ssrc: u32,
        index: u64,
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Result<[u8; GCM_TAG_LEN], CryptoRefused> {
        let tag = self
            .key
            .seal_in_place_separate_tag(self.nonce(ssrc, index), Aad::from(aad), in_out)
            .map_err(|_| CryptoRefused)?;
        let mut out = [0u8; GCM_TAG_LEN];
        out.copy_from_slice(tag.as_ref());
        Ok(out)
    }

    /// Checks `tag` over `aad` and `in_out` and decrypts `in_out` in place
    /// (authentication-only with an empty `in_out`); `false` on failure,
    /// when `in_out` is unspecified.
    #[inline]
    pub(crate) fn open(
        &self,
        ssrc: u32,
        index: u64,
        aad: &[u8],
        in_out: &mut [u8],
        tag: &[u8],
    ) -> bool {
        self.key
            .open_in_place_separate_tag(self.nonce(ssrc, index), Aad::from(aad), tag, in_out)
            .is_ok()
    }
}

/// HMAC-SHA1 (RFC 2104) with the ipad and opad blocks compressed once.
struct HmacSha1 {
    inner: [u32; 5],
    outer: [u32; 5],
}

const SHA1_H0: [u32; 5] = [
    0x6745_2301,
    0xefcd_ab89,
    0x98ba_dcfe,
    0x1032_5476,
    0xc3d2_e1f0,
];

impl HmacSha1 {
    fn new(key: &[u8; 20]) -> Self {
        let mut ipad = [0x36u8; 64];
        let mut opad = [0x5cu8; 64];
        for (i, k) in key.iter().enumerate() {
            ipad[i] ^= k;
            opad[i] ^= k;
        }
        let mut inner = SHA1_H0;
        compress(&mut inner, &[ipad]);
        let mut outer = SHA1_H0;
        compress(&mut outer, &[opad]);
        Self { inner, outer }
    }

    /// HMAC over `a || b`; `b` is at most 8 octets (the ROC, or nothing).
    #[inline]
    fn mac(&self, a: &[u8], b: &[u8]) -> [u8; 20] {
        debug_assert!(b.len() <= 8, "the tail buffer holds at most 63 + 8 octets");
        let mut st = self.inner;
        let (blocks, rest) = a.as_chunks::<64>();
        compress(&mut st, blocks);
        let mut tail = [0u8; 128];
        let n = rest.len() + b.len();
        tail[..rest.len()].copy_from_slice(rest);
        tail[rest.len()..n].copy_from_slice(b);
        tail[n] = 0x80;
        let end = if n + 9 <= 64 { 64 } else { 128 };
        let bits = (64 + a.len() as u64 + b.len() as u64) * 8;
        tail[end - 8..end].copy_from_slice(&bits.to_be_bytes());
        let (tail_blocks, _) = tail[..end].as_chunks::<64>();
        compress(&mut st, tail_blocks);

        let mut ob = [0u8; 64];
        for (o, w) in ob.chunks_exact_mut(4).zip(st) {
            o.copy_from_slice(&w.to_be_bytes());
        }
        ob[20] = 0x80;
        ob[56..].copy_from_slice(&((64u64 + 20) * 8).to_be_bytes());
        let mut out = self.outer;
        compress(&mut out, &[ob]);
        let mut tag = [0u8; 20];
        for (o, w) in tag.chunks_exact_mut(4).zip(out) {
            o.copy_from_slice(&w.to_be_bytes());
        }
        tag
    }
}

/// Constant-time equality of two equally long slices.
#[inline]
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y));
    core::hint::black_box(diff) == 0
}

#[inline]
fn xor_into(dst: &mut [u8], src: &[u8]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d ^= s;
    }
}

#[cfg(test)]
mod tests {
    use super::HmacSha1;
    use hmac::{Hmac, KeyInit, Mac};
    use proptest::prelude::*;
    use sha1::Sha1;

    proptest! {
        #[test]
        fn hmac_sha1_matches_the_hmac_crate(
            key in any::<[u8; 20]>(),
            data in prop::collection::vec(any::<u8>(), 0..400),
            trailer in prop::collection::vec(any::<u8>(), 0..=8),
        ) {
            let mut reference = <Hmac<Sha1> as KeyInit>::new_from_slice(&key).unwrap();
            reference.update(&data);
            reference.update(&trailer);
            let expected: [u8; 20] = reference.finalize().into_bytes().into();
            prop_assert_eq!(HmacSha1::new(&key).mac(&data, &trailer), expected);
        }
    }

    #[test]
    fn hmac_sha1_at_block_boundaries() {
        let key = [0x0b; 20];
        for len in 0..200 {
            let data = vec![0xa5u8; len];
            for trailer in [&[][..], &[1, 2, 3, 4][..]] {
                let mut r = <Hmac<Sha1> as KeyInit>::new_from_slice(&key).unwrap();
                r.update(&data);
                r.update(trailer);
                let expected: [u8; 20] = r.finalize().into_bytes().into();
                assert_eq!(
                    HmacSha1::new(&key).mac(&data, trailer),
                    expected,
                    "len {len}"
                );
            }
        }
    }
}
