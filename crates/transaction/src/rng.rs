//! The one small deterministic generator of the workspace (SplitMix64): the
//! same seed gives the same tags, branches, losses and delays on every
//! machine.

use std::time::Duration;

/// SplitMix64 (Steele, Lea, Flood 2014): seedable, tiny, fast. Good enough
/// for unique tags, branches and Call-IDs (the seed comes from the runtime's
/// randomness) and for deciding which packets a simulated network loses;
/// not a cryptographic generator — SRTP keys come from `aws-lc-rs`.
///
/// ```
/// let mut a = transaction::Rng::new(7);
/// let mut b = transaction::Rng::new(7);
/// assert_eq!(a.next_u64(), b.next_u64());
/// assert_eq!(a.hex_token().len(), 16);
/// ```
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng { state: seed }
    }

    /// A generator seeded with `seed` and `label` (folded in with FNV-1a),
    /// so that one seed serves several independent instances, e.g. one per
    /// trunk name.
    pub fn with_label(seed: u64, label: &str) -> Rng {
        let h = label.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        Rng::new(seed ^ h)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A float uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// True with probability `p` (0 never, 1 always).
    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.unit() < p
    }

    /// A duration uniform in [0, max] (at nanosecond resolution; a `max`
    /// beyond `u64::MAX` nanoseconds, some 584 years, is taken as that).
    pub fn up_to(&mut self, max: Duration) -> Duration {
        if max.is_zero() {
            return Duration::ZERO;
        }
        let nanos = max.as_nanos().min(u128::from(u64::MAX)) as u64;
        Duration::from_nanos(self.next_u64() % nanos.saturating_add(1))
    }

    /// The next 64 bits as 16 lowercase hex digits: a tag, a branch suffix
    /// or the local part of a Call-ID.
    pub fn hex_token(&mut self) -> String {
        format!("{:016x}", self.next_u64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence() {
        let mut a = Rng::new(42);
        let mut b = Rng::new(42);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        assert_ne!(Rng::new(1).next_u64(), Rng::new(2).next_u64());
    }

    #[test]
    fn sequence_is_splitmix64() {
        // The reference outputs of SplitMix64 for seed 0 and seed 1234567.
        let mut r = Rng::new(0);
        assert_eq!(r.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(r.next_u64(), 0x6e78_9e6a_a1b9_65f4);
        let mut r = Rng::new(1_234_567);
        assert_eq!(r.next_u64(), 6_457_827_717_110_365_317);
        assert_eq!(r.next_u64(), 3_203_168_211_198_807_973);
    }

    #[test]
    fn chance_is_roughly_calibrated() {
        let mut r = Rng::new(9);
        let hits = (0..10_000).filter(|_| r.chance(0.3)).count();
        assert!((2_700..3_300).contains(&hits), "{hits}");
        assert!(!r.chance(0.0));
        assert!(r.chance(1.0));
        let d = Duration::from_millis(5);
        assert!((0..1000).all(|_| r.up_to(d) <= d));
        assert_eq!(r.up_to(Duration::ZERO), Duration::ZERO);
        assert!(r.up_to(Duration::MAX) <= Duration::MAX);
    }

    #[test]
    fn hex_tokens_are_16_lowercase_hex_digits() {
        let mut r = Rng::new(3);
        let t = r.hex_token();
        assert_eq!(t.len(), 16);
        assert!(t
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        assert_ne!(t, r.hex_token());
    }

    #[test]
    fn labels_separate_instances_of_one_seed() {
        let a = Rng::with_label(5, "teams").next_u64();
        let b = Rng::with_label(5, "acs").next_u64();
        assert_ne!(a, b);
        assert_eq!(a, Rng::with_label(5, "teams").next_u64());
    }
}
