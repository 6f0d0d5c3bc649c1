//! Per-SSRC state: a small map with least-recently-used eviction, and the
//! replay window.
//!
//! The map is a vector scanned linearly (a call has one or two SSRCs per
//! direction); it grows only when an SSRC is first seen and never beyond
//! its capacity, so the steady state allocates nothing. When it is full,
//! the least recently used SSRC is forgotten and its slot (and window
//! storage) reused.

use super::UnprotectError;

pub(crate) struct SsrcMap<S> {
    slots: Vec<Slot<S>>,
    cap: usize,
    tick: u64,
}

struct Slot<S> {
    ssrc: u32,
    used: u64,
    state: S,
}

impl<S> SsrcMap<S> {
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            slots: Vec::new(),
            cap,
            tick: 0,
        }
    }

    #[inline]
    pub(crate) fn find(&self, ssrc: u32) -> Option<usize> {
        self.slots.iter().position(|s| s.ssrc == ssrc)
    }

    #[inline]
    pub(crate) fn get(&self, i: usize) -> &S {
        &self.slots[i].state
    }

    /// The state at `i`, marked as just used.
    #[inline]
    pub(crate) fn get_mut(&mut self, i: usize) -> &mut S {
        self.tick += 1;
        let slot = &mut self.slots[i];
        slot.used = self.tick;
        &mut slot.state
    }

    pub(crate) fn lookup(&self, ssrc: u32) -> Option<&S> {
        self.find(ssrc).map(|i| self.get(i))
    }

    /// A slot for a new `ssrc`: a fresh one from `make` while below
    /// capacity, else the least recently used one, handed to `reuse`.
    /// Returns the state and whether an SSRC was evicted.
    pub(crate) fn insert(
        &mut self,
        ssrc: u32,
        make: impl FnOnce() -> S,
        reuse: impl FnOnce(&mut S),
    ) -> (&mut S, bool) {
        self.tick += 1;
        if self.slots.len() < self.cap {
            self.slots.push(Slot {
                ssrc,
                used: self.tick,
                state: make(),
            });
            let last = self.slots.len() - 1;
            return (&mut self.slots[last].state, false);
        }
        let victim = self
            .slots
            .iter()
            .enumerate()
            .min_by_key(|(_, s)| s.used)
            .map_or(0, |(i, _)| i);
        let slot = &mut self.slots[victim];
        slot.ssrc = ssrc;
        slot.used = self.tick;
        reuse(&mut slot.state);
        (&mut slot.state, true)
    }

    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }
}

/// Receive state of one SSRC: the highest authenticated index (which also
/// gives the ROC estimate) and a replay bitmap over the last `w` indices,
/// kept as a ring (bit `index mod w`). `w` is a power of two; an empty
/// bitmap means replay protection is off.
pub(crate) struct RxStream {
    pub(crate) top: u64,
    bits: Box<[u64]>,
}

impl RxStream {
    /// A stream whose first authenticated packet had `index`.
    pub(crate) fn new(words: usize, index: u64) -> Self {
        let mut s = Self {
            top: index,
            bits: vec![0; words].into_boxed_slice(),
        };
        s.set(index);
        s
    }

    /// Starts over at `index` (slot reused for another SSRC).
    pub(crate) fn restart(&mut self, index: u64) {
        self.top = index;
        self.bits.fill(0);
        self.set(index);
    }

    #[inline]
    fn window(&self) -> u64 {
        self.bits.len() as u64 * 64
    }

    #[inline]
    fn locate(&self, index: u64) -> (usize, u64) {
        let pos = index & (self.window() - 1);
        ((pos / 64) as usize, 1 << (pos % 64))
    }

    #[inline]
    fn set(&mut self, index: u64) {
        if !self.bits.is_empty() {
            let (w, m) = self.locate(index);
            self.bits[w] |= m;
        }
    }

    /// Whether `index` may be accepted (RFC 3711 §3.3.2); reads only.
    #[inline]
    pub(crate) fn check(&self, index: u64) -> Result<(), UnprotectError> {
        if self.bits.is_empty() || index > self.top {
            return Ok(());
        }
        if self.top - index >= self.window() {
            return Err(UnprotectError::TooOld);
        }
        let (w, m) = self.locate(index);
        if self.bits[w] & m != 0 {
            Err(UnprotectError::Replay)
        } else {
            Ok(())
        }
    }

    /// Records an authenticated `index`, moving the window forward if it is
    /// the newest.
    #[inline]
    pub(crate) fn accept(&mut self, index: u64) {
        if index > self.top {
            if !self.bits.is_empty() {
                let d = index - self.top;
                if d >= self.window() {
                    self.bits.fill(0);
                } else {
                    for i in self.top + 1..index {
                        let (w, m) = self.locate(i);
                        self.bits[w] &= !m;
                    }
                    let (w, m) = self.locate(index);
                    self.bits[w] &= !m;
                }
            }
            self.top = index;
        }
        self.set(index);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_ring_accepts_reordering_and_rejects_duplicates() {
        let mut s = RxStream::new(1, 1000);
        assert_eq!(s.check(1000), Err(UnprotectError::Replay));
        s.accept(1003);
        assert_eq!(s.check(1001), Ok(()));
        assert_eq!(s.check(1003), Err(UnprotectError::Replay));
        s.accept(1001);
        assert_eq!(s.check(1001), Err(UnprotectError::Replay));
        // 1003 - 939 = 64: outside a 64-packet window; 940 is the oldest inside.
        assert_eq!(s.check(939), Err(UnprotectError::TooOld));
        assert_eq!(s.check(940), Ok(()));
        // A jump of exactly the window size clears everything.
        s.accept(1003 + 64);
        assert_eq!(s.check(1003), Err(UnprotectError::TooOld));
        assert_eq!(s.check(1004), Ok(()));
        assert_eq!(s.check(1003 + 64), Err(UnprotectError::Replay));
        // Positions reused by the ring are cleared as the window moves.
        s.accept(1003 + 65);
        assert_eq!(s.check(1003 + 64), Err(UnprotectError::Replay));
        assert_eq!(s.check(1005), Ok(()));
    }

    #[test]
    fn map_evicts_least_recently_used() {
        let mut m: SsrcMap<u32> = SsrcMap::new(2);
        m.insert(1, || 10, |_| unreachable!());
        m.insert(2, || 20, |_| unreachable!());
        let i = m.find(1).unwrap();
        *m.get_mut(i) += 1;
        let (s, evicted) = m.insert(3, || unreachable!(), |s| *s = 30);
        assert_eq!((*s, evicted), (30, true));
        assert_eq!(m.lookup(1), Some(&11));
        assert_eq!(m.lookup(2), None);
        assert_eq!(m.lookup(3), Some(&30));
        assert_eq!(m.len(), 2);
    }
}
