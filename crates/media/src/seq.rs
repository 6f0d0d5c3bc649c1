//! RTP sequence-number arithmetic (RFC 3550 §A.1, RFC 3711 §3.3.1 and
//! Appendix A).
//!
//! Sequence numbers are 16 bits and wrap; an *extended* sequence number
//! (RFC 3550) or SRTP packet index (RFC 3711) counts the wraps above them:
//! `cycles << 16 | seq`. The estimate of which cycle a sequence number belongs
//! to is the one of RFC 3711 Appendix A, relative to the highest extended
//! number seen so far: a number more than 2^15 behind the highest belongs to
//! the next cycle, one more than 2^15 ahead belongs to the previous one.

/// The signed distance from `from` to `to` modulo 2^16: positive when `to`
/// is newer (`seq_delta(65535, 0) == 1`, `seq_delta(0, 65535) == -1`).
#[inline]
#[must_use]
pub fn seq_delta(from: u16, to: u16) -> i16 {
    to.wrapping_sub(from) as i16
}

/// Whether `a` is newer than `b`, modulo 2^16 (RFC 1982 serial arithmetic;
/// the two numbers exactly 2^15 apart count as `a` newer).
#[inline]
#[must_use]
pub fn seq_is_newer(a: u16, b: u16) -> bool {
    let d = a.wrapping_sub(b);
    d != 0 && d <= 0x8000
}

/// The extended number (`cycle << 16 | seq`) that `seq` most probably has,
/// given the highest extended number seen so far (RFC 3711 Appendix A).
///
/// Where the estimate would be the cycle before cycle 0, the packet is taken
/// as cycle 0 (as libsrtp does): with SDES every stream starts at ROC 0, so a
/// packet cannot come from before it. The result may exceed 2^48 − 1 only
/// when `highest` is already in the last cycle of a 32-bit ROC; callers of
/// the SRTP index check that.
#[inline]
pub(crate) fn estimate_index(highest: u64, seq: u16) -> u64 {
    let s_l = (highest & 0xffff) as u16;
    let roc = highest >> 16;
    let v = if s_l < 0x8000 {
        if i32::from(seq) - i32::from(s_l) > 0x8000 {
            roc.saturating_sub(1)
        } else {
            roc
        }
    } else if s_l - 0x8000 > seq {
        roc + 1
    } else {
        roc
    };
    (v << 16) | u64::from(seq)
}

/// Extends 16-bit RTP sequence numbers to 64-bit counters across wraps
/// (RFC 3550 §A.1 without the probation logic), using the RFC 3711
/// Appendix A estimate. Late packets keep their old cycle; only a newer
/// packet moves the highest number forward.
///
/// ```
/// let mut ext = media::SeqExtender::new();
/// assert_eq!(ext.extend(65534), 65534);
/// assert_eq!(ext.extend(1), 65537); // wrapped
/// assert_eq!(ext.extend(65535), 65535); // late, from before the wrap
/// assert_eq!(ext.highest(), Some(65537));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeqExtender {
    highest: Option<u64>,
}

impl SeqExtender {
    /// An extender that has seen nothing; the first number is taken as cycle 0.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The extended number of `seq`, without recording it.
    #[must_use]
    pub fn estimate(&self, seq: u16) -> u64 {
        match self.highest {
            Some(h) => estimate_index(h, seq),
            None => u64::from(seq),
        }
    }

    /// The extended number of `seq`; records it as the highest if it is newer.
    pub fn extend(&mut self, seq: u16) -> u64 {
        let e = self.estimate(seq);
        if self.highest.is_none_or(|h| e > h) {
            self.highest = Some(e);
        }
        e
    }

    /// The highest extended number seen, if any.
    #[must_use]
    pub fn highest(&self) -> Option<u64> {
        self.highest
    }

    /// How many times the sequence number has wrapped (the SRTP ROC of the
    /// highest packet), if any packet was seen.
    #[must_use]
    pub fn cycles(&self) -> Option<u64> {
        self.highest.map(|h| h >> 16)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delta_and_newer_wrap() {
        assert_eq!(seq_delta(65535, 0), 1);
        assert_eq!(seq_delta(0, 65535), -1);
        assert_eq!(seq_delta(100, 90), -10);
        assert!(seq_is_newer(0, 65535));
        assert!(!seq_is_newer(65535, 0));
        assert!(!seq_is_newer(7, 7));
    }

    #[test]
    fn estimate_follows_rfc3711_appendix_a() {
        // s_l in the lower half: a number far ahead belongs to the previous cycle.
        assert_eq!(estimate_index(0x2_0005, 0xfff0), 0x1_fff0);
        assert_eq!(estimate_index(0x2_0005, 0x0006), 0x2_0006);
        // s_l in the upper half: a number far behind belongs to the next cycle.
        assert_eq!(estimate_index(0x2_fff0, 0x0003), 0x3_0003);
        assert_eq!(estimate_index(0x2_fff0, 0xffee), 0x2_ffee);
        // Never before cycle 0.
        assert_eq!(estimate_index(10, 40_000), 40_000);
    }

    #[test]
    fn extender_wraps_twice_and_keeps_late_packets_in_their_cycle() {
        let mut e = SeqExtender::new();
        let mut last = 0;
        for i in 0..140_000u64 {
            let seq = ((65_000 + i) & 0xffff) as u16;
            last = e.extend(seq);
            assert_eq!(last, 65_000 + i);
        }
        assert_eq!(e.cycles(), Some(last >> 16));
        let late = (last - 5) as u16;
        assert_eq!(e.extend(late), last - 5);
        assert_eq!(e.highest(), Some(last));
    }
}
