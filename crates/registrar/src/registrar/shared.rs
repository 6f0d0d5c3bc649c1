//! Bindings shared by several SBCs through one store (Redis): what another
//! SBC registered is learned here without events, so it is routable from
//! this SBC and never written back.

use std::time::{Duration, Instant};

use super::{Entry, Registrar};
use crate::binding::Binding;

impl Registrar {
    /// Takes in `binding`, written by another SBC, live for `ttl` from
    /// `now`: [`Registrar::lookup`] returns it from now on. No event is
    /// emitted (the other SBC wrote it to the store), none when it expires
    /// (the store's TTL removes it there), and none when
    /// [`Registrar::forget`] removes it.
    ///
    /// It replaces a learned binding with the same key (the latest write
    /// wins) and an expired one, but not a live binding registered at this
    /// SBC: a phone that registers here too is reached on its own flow
    /// (behind NAT, the only one that reaches it). Then it returns `false`.
    ///
    /// Its connection id is dropped: ids are numbered by the SBC that
    /// accepted the connection and mean nothing here, so a call to a
    /// TCP/TLS phone learned from another SBC needs a new connection.
    pub fn learn(&mut self, now: Instant, mut binding: Binding, ttl: Duration) -> bool {
        if ttl.is_zero() {
            return false;
        }
        binding.flow.conn = None;
        let aor = binding.aor.clone();
        let expires_at = now + ttl;
        let entry = Entry {
            b: binding,
            expires_at,
            learned: true,
        };
        let mut a = self.take_aor(&aor);
        let key = entry.b.key();
        let taken = match a.entries.iter_mut().find(|e| e.b.key() == key) {
            Some(e) if !e.learned && e.expires_at > now => false,
            Some(e) => {
                *e = entry;
                true
            }
            None => {
                a.entries.push(entry);
                true
            }
        };
        self.put_aor(aor, a);
        if taken {
            self.counters.learned += 1;
        } else {
            self.counters.learned_ignored += 1;
        }
        taken
    }

    /// Removes the learned binding filed under `key` (its
    /// [`Binding::store_key`]), which its SBC reported removed. No event is
    /// emitted. A binding registered at this SBC is kept: the phone
    /// registered here too and its own REGISTERs say when it goes. Returns
    /// whether a binding was removed.
    pub fn forget(&mut self, key: &[u8]) -> bool {
        // A store key starts with the AOR and a NUL.
        let aor = key.split(|b| *b == 0).next().unwrap_or(key);
        let Some(aor) = std::str::from_utf8(aor)
            .ok()
            .and_then(|a| self.aors.get_key_value(a))
            .map(|(k, _)| k.clone())
        else {
            return false;
        };
        let mut a = self.take_aor(&aor);
        let before = a.entries.len();
        a.entries.retain(|e| !(e.learned && e.b.store_key() == key));
        let removed = a.entries.len() < before;
        self.put_aor(aor, a);
        if removed {
            self.counters.forgotten += 1;
        }
        removed
    }
}
