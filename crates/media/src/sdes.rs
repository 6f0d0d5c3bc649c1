//! SDES: the SDP `a=crypto` attribute (RFC 4568 §9.1, SRTP key parameters
//! §6.1) — parsing, generation, and the step to an [`SrtpPolicy`].
//!
//! ```text
//! a=crypto:<tag> <crypto-suite> <key-params> [<session-param> ...]
//! key-params = key-param *(";" key-param)
//! key-param  = "inline:" base64(key || salt) ["|" lifetime] ["|" MKI ":" length]
//! lifetime   = ["2^"] 1*DIGIT
//! ```
//!
//! Parsing is strict where a mistake would give a wrong key (base64, key
//! length of a known suite, lifetime and MKI syntax) and lenient where
//! peers differ harmlessly (base64 with or without `=` padding, a missing
//! `a=` prefix, trailing CR/LF, several spaces). Unknown suites parse and
//! are marked unsupported ([`CryptoSuite::Other`]); session parameters are
//! kept as text. Nothing here panics on any input.

use core::fmt;

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;

use crate::srtp::{SrtpPolicy, SrtpProfile};

/// Standard alphabet; decoding accepts padded and unpadded input, encoding pads.
const B64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_encode_padding(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Longest `a=crypto` value accepted, to bound work on hostile SDP.
const MAX_LINE: usize = 4096;
/// Most key parameters in one attribute.
const MAX_KEYS: usize = 16;

/// Why an `a=crypto` line was refused. Parsing errors say which part is
/// wrong; the `Unsupported…`/`Mki…` ones come from
/// [`CryptoAttribute::srtp_policy`] for a well-formed line this crate cannot use.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SdesError {
    /// Longer than 4096 octets.
    TooLong,
    /// The tag is missing, not 1–9 digits, or not followed by a space.
    BadTag,
    /// No crypto-suite.
    MissingSuite,
    /// No key parameters.
    MissingKeyParams,
    /// A key method other than `inline:`.
    BadKeyMethod,
    /// The key is not valid base64.
    BadBase64,
    /// The decoded key‖salt has the wrong length for the suite.
    KeyLength {
        /// Octets the suite needs.
        expected: usize,
        /// Octets decoded.
        found: usize,
    },
    /// The lifetime is not `2^n` (n ≤ 64) or a decimal that fits 64 bits.
    BadLifetime,
    /// The MKI is not `value:length` with a decimal value that fits in
    /// `length` octets (1–128; values beyond 64 bits are refused).
    BadMki,
    /// More than one lifetime or MKI in a key parameter, or more than 16 key
    /// parameters.
    BadKeyParam,
    /// The suite is not one this crate implements.
    UnsupportedSuite(String),
    /// The key parameter carries an MKI (or there are several keys, which
    /// needs MKIs); this crate does not implement MKI.
    MkiUnsupported,
    /// A session parameter this crate does not implement (e.g.
    /// `UNAUTHENTICATED_SRTP`, `KDR` other than 0, or an unknown one).
    UnsupportedSessionParam(String),
    /// The random source failed.
    Random,
    /// The policy could not be built (an internal length mismatch).
    Policy,
}

impl fmt::Display for SdesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLong => f.write_str("a=crypto line too long"),
            Self::BadTag => f.write_str("a=crypto tag missing or not 1-9 digits"),
            Self::MissingSuite => f.write_str("a=crypto without a crypto-suite"),
            Self::MissingKeyParams => f.write_str("a=crypto without key parameters"),
            Self::BadKeyMethod => f.write_str("a=crypto key method is not inline:"),
            Self::BadBase64 => f.write_str("a=crypto key is not valid base64"),
            Self::KeyLength { expected, found } => write!(
                f,
                "a=crypto key||salt is {found} octets, the suite needs {expected}"
            ),
            Self::BadLifetime => f.write_str("a=crypto key lifetime is malformed"),
            Self::BadMki => f.write_str("a=crypto MKI is malformed"),
            Self::BadKeyParam => f.write_str("a=crypto key parameter is malformed"),
            Self::UnsupportedSuite(s) => write!(f, "crypto-suite {s} is not supported"),
            Self::MkiUnsupported => f.write_str("a=crypto with an MKI is not supported"),
            Self::UnsupportedSessionParam(p) => {
                write!(f, "a=crypto session parameter {p} is not supported")
            }
            Self::Random => f.write_str("random source failed"),
            Self::Policy => f.write_str("cannot build an SRTP policy from a=crypto"),
        }
    }
}

impl std::error::Error for SdesError {}

/// The crypto-suite of an `a=crypto` line.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CryptoSuite {
    /// `AES_CM_128_HMAC_SHA1_80`.
    AesCm128HmacSha1_80,
    /// `AES_CM_128_HMAC_SHA1_32`.
    AesCm128HmacSha1_32,
    /// `AEAD_AES_128_GCM` (RFC 7714 §12).
    AeadAes128Gcm,
    /// Any other suite (`F8_128_HMAC_SHA1_80`, `AES_256_CM_HMAC_SHA1_80`,
    /// `AEAD_AES_256_GCM`, …): parsed, unsupported.
    Other(String),
}

impl CryptoSuite {
    /// The suite named `name` (case-sensitive, as RFC 4568 registers them).
    #[must_use]
    pub fn from_name(name: &str) -> Self {
        match SrtpProfile::from_sdes_name(name) {
            Some(p) => Self::from(p),
            None => Self::Other(name.to_owned()),
        }
    }

    /// The registered name.
    #[must_use]
    pub fn name(&self) -> &str {
        match self {
            Self::Other(s) => s,
            Self::AesCm128HmacSha1_80 => SrtpProfile::AesCm128HmacSha1_80.sdes_name(),
            Self::AesCm128HmacSha1_32 => SrtpProfile::AesCm128HmacSha1_32.sdes_name(),
            Self::AeadAes128Gcm => SrtpProfile::AeadAes128Gcm.sdes_name(),
        }
    }

    /// The SRTP profile, if this crate implements the suite.
    #[must_use]
    pub fn profile(&self) -> Option<SrtpProfile> {
        match self {
            Self::AesCm128HmacSha1_80 => Some(SrtpProfile::AesCm128HmacSha1_80),
            Self::AesCm128HmacSha1_32 => Some(SrtpProfile::AesCm128HmacSha1_32),
            Self::AeadAes128Gcm => Some(SrtpProfile::AeadAes128Gcm),
            Self::Other(_) => None,
        }
    }

    /// Octets of key‖salt the suite carries, where known (also for some
    /// unsupported suites, so their keys are still length-checked).
    #[must_use]
    pub fn key_salt_len(&self) -> Option<usize> {
        if let Some(p) = self.profile() {
            return Some(p.master_key_len() + p.master_salt_len());
        }
        match self.name() {
            "F8_128_HMAC_SHA1_80"
            | "F8_128_HMAC_SHA1_32"
            | "NULL_HMAC_SHA1_80"
            | "NULL_HMAC_SHA1_32" => Some(30),
            "AES_192_CM_HMAC_SHA1_80" | "AES_192_CM_HMAC_SHA1_32" => Some(38),
            "AES_256_CM_HMAC_SHA1_80" | "AES_256_CM_HMAC_SHA1_32" => Some(46),
            "AEAD_AES_256_GCM" => Some(44),
            _ => None,
        }
    }
}

impl From<SrtpProfile> for CryptoSuite {
    fn from(p: SrtpProfile) -> Self {
        match p {
            SrtpProfile::AesCm128HmacSha1_80 => Self::AesCm128HmacSha1_80,
            SrtpProfile::AesCm128HmacSha1_32 => Self::AesCm128HmacSha1_32,
            SrtpProfile::AeadAes128Gcm => Self::AeadAes128Gcm,
        }
    }
}

impl fmt::Display for CryptoSuite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A key lifetime: how many packets the key may protect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lifetime {
    /// `2^n`.
    PowerOfTwo(u8),
    /// A decimal count.
    Packets(u64),
}

impl Lifetime {
    /// The number of packets, saturating at `u64::MAX` for `2^64`.
    #[must_use]
    pub fn packets(self) -> u64 {
        match self {
            Self::PowerOfTwo(n) => 1u64.checked_shl(u32::from(n)).unwrap_or(u64::MAX),
            Self::Packets(n) => n,
        }
    }
}

impl fmt::Display for Lifetime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PowerOfTwo(n) => write!(f, "2^{n}"),
            Self::Packets(n) => write!(f, "{n}"),
        }
    }
}

/// A master key identifier (`value:length`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Mki {
    /// The MKI value.
    pub value: u64,
    /// Its length on the wire in octets (1–128).
    pub length: u8,
}

/// One `inline:` key parameter.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyParam {
    key_salt: Vec<u8>,
    /// The optional key lifetime.
    pub lifetime: Option<Lifetime>,
    /// The optional MKI.
    pub mki: Option<Mki>,
}

impl KeyParam {
    /// Master key and salt, concatenated (the decoded `inline:` value).
    #[must_use]
    pub fn key_salt(&self) -> &[u8] {
        &self.key_salt
    }
}

impl fmt::Debug for KeyParam {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyParam")
            .field(
                "key_salt",
                &format_args!("<{} octets>", self.key_salt.len()),
            )
            .field("lifetime", &self.lifetime)
            .field("mki", &self.mki)
            .finish()
    }
}

/// One `a=crypto` attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CryptoAttribute {
    /// The tag (0–999999999) an answer echoes.
    pub tag: u32,
    /// The crypto-suite.
    pub suite: CryptoSuite,
    /// The key parameters (at least one).
    pub keys: Vec<KeyParam>,
    /// Session parameters, as written (`UNENCRYPTED_SRTCP`, `KDR=0`, …).
    pub session_params: Vec<String>,
}

impl CryptoAttribute {
    /// Parses an `a=crypto` line: `a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:…`,
    /// with or without the `a=` (or `a=crypto:`) prefix and line ending.
    ///
    /// # Errors
    /// An [`SdesError`] naming the malformed part.
    pub fn parse(line: &str) -> Result<Self, SdesError> {
        let line = line.trim_end_matches(['\r', '\n']).trim();
        if line.len() > MAX_LINE {
            return Err(SdesError::TooLong);
        }
        let value = line.strip_prefix("a=").unwrap_or(line);
        let value = value.strip_prefix("crypto:").unwrap_or(value);
        let mut fields = value.split_ascii_whitespace();
        let tag = fields.next().ok_or(SdesError::BadTag)?;
        if tag.is_empty() || tag.len() > 9 || !tag.bytes().all(|b| b.is_ascii_digit()) {
            return Err(SdesError::BadTag);
        }
        let tag: u32 = tag.parse().map_err(|_| SdesError::BadTag)?;
        let suite = CryptoSuite::from_name(fields.next().ok_or(SdesError::MissingSuite)?);
        let key_params = fields.next().ok_or(SdesError::MissingKeyParams)?;
        let mut keys = Vec::new();
        for kp in key_params.split(';') {
            if keys.len() == MAX_KEYS {
                return Err(SdesError::BadKeyParam);
            }
            keys.push(parse_key_param(kp, &suite)?);
        }
        let session_params = fields.map(str::to_owned).collect();
        let attr = Self {
            tag,
            suite,
            keys,
            session_params,
        };
        // What we print must parse again: the printed form (with the
        // `a=crypto:` prefix and normalised base64 padding) may be longer than
        // the input, so the limit applies to it too (fuzz M2).
        if attr.to_sdp_line().len() > MAX_LINE {
            return Err(SdesError::TooLong);
        }
        Ok(attr)
    }

    /// An attribute for `profile` with the key and salt the caller drew
    /// from its random source (`key_salt` = master key ‖ master salt).
    ///
    /// # Errors
    /// [`SdesError::KeyLength`] when `key_salt` has the wrong length.
    pub fn new(tag: u32, profile: SrtpProfile, key_salt: &[u8]) -> Result<Self, SdesError> {
        let expected = profile.master_key_len() + profile.master_salt_len();
        if key_salt.len() != expected {
            return Err(SdesError::KeyLength {
                expected,
                found: key_salt.len(),
            });
        }
        Ok(Self {
            tag,
            suite: profile.into(),
            keys: vec![KeyParam {
                key_salt: key_salt.to_vec(),
                lifetime: None,
                mki: None,
            }],
            session_params: Vec::new(),
        })
    }

    /// An attribute for `profile` with a fresh key from the system's secure
    /// random source (aws-lc-rs).
    ///
    /// # Errors
    /// [`SdesError::Random`] when the random source fails.
    pub fn generate(tag: u32, profile: SrtpProfile) -> Result<Self, SdesError> {
        let mut key_salt = [0u8; 30];
        let n = profile.master_key_len() + profile.master_salt_len();
        aws_lc_rs::rand::fill(&mut key_salt[..n]).map_err(|_| SdesError::Random)?;
        Self::new(tag, profile, &key_salt[..n])
    }

    /// The same attribute with `lifetime` on its (first) key, e.g.
    /// `Lifetime::PowerOfTwo(31)` for peers that want `|2^31`.
    #[must_use]
    pub fn with_lifetime(mut self, lifetime: Lifetime) -> Self {
        if let Some(k) = self.keys.first_mut() {
            k.lifetime = Some(lifetime);
        }
        self
    }

    /// The full SDP line, `a=crypto:…` (no line ending).
    #[must_use]
    pub fn to_sdp_line(&self) -> String {
        format!("a=crypto:{self}")
    }

    /// Whether [`CryptoAttribute::srtp_policy`] would succeed.
    #[must_use]
    pub fn is_supported(&self) -> bool {
        self.srtp_policy().is_ok()
    }

    /// The SRTP policy this attribute describes: a supported suite, one key
    /// without MKI, and only session parameters this crate implements
    /// (`UNENCRYPTED_SRTP`, `UNENCRYPTED_SRTCP`, `KDR=0`, `WSH=n` — raises
    /// the replay window to n — and `FEC_ORDER`/`FEC_KEY`, irrelevant
    /// without FEC). The lifetime is not enforced beyond the RFC 3711 limits.
    ///
    /// # Errors
    /// [`SdesError::UnsupportedSuite`], [`SdesError::MkiUnsupported`],
    /// [`SdesError::UnsupportedSessionParam`].
    pub fn srtp_policy(&self) -> Result<SrtpPolicy, SdesError> {
        let profile = self
            .suite
            .profile()
            .ok_or_else(|| SdesError::UnsupportedSuite(self.suite.name().to_owned()))?;
        let [key] = self.keys.as_slice() else {
            return Err(SdesError::MkiUnsupported);
        };
        if key.mki.is_some() {
            return Err(SdesError::MkiUnsupported);
        }
        let mut policy = SrtpPolicy::from_key_salt(profile, &key.key_salt).map_err(|_| {
            SdesError::KeyLength {
                expected: profile.master_key_len() + profile.master_salt_len(),
                found: key.key_salt.len(),
            }
        })?;
        for p in &self.session_params {
            let unsupported = || SdesError::UnsupportedSessionParam(p.clone());
            let (name, value) = match p.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (p.as_str(), None),
            };
            match (name, value) {
                ("UNENCRYPTED_SRTP", None) => policy.encrypt_rtp = false,
                ("UNENCRYPTED_SRTCP", None) => policy.encrypt_rtcp = false,
                ("KDR", Some("0")) => {}
                ("WSH", Some(v)) => {
                    let w: u32 = v.parse().map_err(|_| unsupported())?;
                    if w > crate::srtp::MAX_REPLAY_WINDOW {
                        return Err(unsupported());
                    }
                    policy.replay_window = policy.replay_window.max(w);
                }
                ("FEC_ORDER" | "FEC_KEY", Some(_)) => {}
                _ => return Err(unsupported()),
            }
        }
        Ok(policy)
    }
}

impl fmt::Display for CryptoAttribute {
    /// The attribute value: `<tag> <suite> inline:<key>[|lifetime][|mki:len][;…] [params]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} ", self.tag, self.suite)?;
        for (i, k) in self.keys.iter().enumerate() {
            if i > 0 {
                f.write_str(";")?;
            }
            write!(f, "inline:{}", B64.encode(&k.key_salt))?;
            if let Some(l) = k.lifetime {
                write!(f, "|{l}")?;
            }
            if let Some(m) = k.mki {
                write!(f, "|{}:{}", m.value, m.length)?;
            }
        }
        for p in &self.session_params {
            write!(f, " {p}")?;
        }
        Ok(())
    }
}

fn parse_key_param(kp: &str, suite: &CryptoSuite) -> Result<KeyParam, SdesError> {
    let rest = kp.strip_prefix("inline:").ok_or(SdesError::BadKeyMethod)?;
    let mut parts = rest.split('|');
    let b64 = parts.next().unwrap_or_default();
    // Bound the decode: no known suite has more than 46 octets of key‖salt.
    if b64.is_empty() || b64.len() > 128 {
        return Err(SdesError::BadBase64);
    }
    let key_salt = B64.decode(b64).map_err(|_| SdesError::BadBase64)?;
    if let Some(expected) = suite.key_salt_len() {
        if key_salt.len() != expected {
            return Err(SdesError::KeyLength {
                expected,
                found: key_salt.len(),
            });
        }
    }
    let mut lifetime = None;
    let mut mki = None;
    for part in parts {
        if let Some((value, length)) = part.split_once(':') {
            if mki.is_some() {
                return Err(SdesError::BadKeyParam);
            }
            mki = Some(parse_mki(value, length)?);
        } else {
            if lifetime.is_some() || mki.is_some() {
                // A lifetime after the MKI is out of order (RFC 4568 §6.1).
                return Err(SdesError::BadKeyParam);
            }
            lifetime = Some(parse_lifetime(part)?);
        }
    }
    Ok(KeyParam {
        key_salt,
        lifetime,
        mki,
    })
}

fn digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn parse_lifetime(s: &str) -> Result<Lifetime, SdesError> {
    if let Some(exp) = s.strip_prefix("2^") {
        if !digits(exp) {
            return Err(SdesError::BadLifetime);
        }
        match exp.parse::<u8>() {
            Ok(n) if n <= 64 => Ok(Lifetime::PowerOfTwo(n)),
            _ => Err(SdesError::BadLifetime),
        }
    } else if digits(s) {
        s.parse()
            .map(Lifetime::Packets)
            .map_err(|_| SdesError::BadLifetime)
    } else {
        Err(SdesError::BadLifetime)
    }
}

fn parse_mki(value: &str, length: &str) -> Result<Mki, SdesError> {
    if !digits(value) || !digits(length) || length.len() > 3 {
        return Err(SdesError::BadMki);
    }
    let value: u64 = value.parse().map_err(|_| SdesError::BadMki)?;
    let length: u8 = length.parse().map_err(|_| SdesError::BadMki)?;
    if !(1..=128).contains(&length) {
        return Err(SdesError::BadMki);
    }
    // The value must fit in `length` octets.
    if length < 8 && value >> (8 * u32::from(length)) != 0 {
        return Err(SdesError::BadMki);
    }
    Ok(Mki { value, length })
}

/// The first offered attribute whose profile comes earliest in
/// `preference` and that [`CryptoAttribute::srtp_policy`] accepts — e.g.
/// `_80` from a Teams offer listing `_32` as `crypto:0` and `_80` as
/// `crypto:1`.
#[must_use]
pub fn choose_crypto<'a>(
    offered: &'a [CryptoAttribute],
    preference: &[SrtpProfile],
) -> Option<&'a CryptoAttribute> {
    preference.iter().find_map(|want| {
        offered
            .iter()
            .find(|a| a.suite.profile() == Some(*want) && a.is_supported())
    })
}

#[cfg(test)]
mod tests;
