//! Live reconfiguration: new trunks, routes and users apply to new calls;
//! calls in progress keep the trunks they were set up on.
//!
//! A trunk is a slot (an index: legs, health, pings, connections opened for
//! it and the shell's TLS identity name it by index). A reload keeps the
//! slot of every trunk whose specification did not change — its health,
//! its resolved addresses, its call count — and gives a changed or new
//! trunk a new slot at the end. A replaced or removed trunk's slot is
//! retired: it classifies nothing, no route reaches it, its OPTIONS stop,
//! but the calls set up on it go on with it (its peers, its headers, its
//! media settings) until they end. Slots are never reused, so nothing that
//! names an old slot (a late response, an idle connection) can be mistaken
//! for the new trunk; a process has room for [`MAX_SLOTS`].

use std::time::Instant;

use trunk::{Classifier, Health, TrunkSpec};

use super::B2bua;

/// Trunk slots one process can have (a peer names its trunk in 16 bits).
pub const MAX_SLOTS: usize = u16::MAX as usize;

/// What a reload changes.
#[derive(Debug)]
pub struct Reconfig {
    /// The new trunks, in configured order.
    pub trunks: Vec<TrunkSpec>,
    /// The new routing table (its destinations name trunks of `trunks`).
    pub routes: routing::Table,
    /// The phones' users, when the configuration has phones.
    pub users: Option<registrar::Users>,
}

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reconfigured {
    /// The slot of each trunk of [`Reconfig::trunks`], in that order.
    pub slots: Vec<usize>,
    /// Slots made by this reload (changed or new trunks).
    pub added: Vec<usize>,
    /// Slots this reload retired (changed or removed trunks).
    pub retired: Vec<usize>,
}

/// Why a reload was refused (nothing changed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadError {
    /// The process has used every trunk slot: restart it.
    NoSlots,
    /// A trunk of the phones kind appeared while the SBC runs without a
    /// registrar (or the reverse): that needs a restart.
    PhonesChanged,
}

impl std::fmt::Display for ReloadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReloadError::NoSlots => write!(
                f,
                "this process has used all {MAX_SLOTS} trunk slots (each reload that changes a trunk takes one): restart it"
            ),
            ReloadError::PhonesChanged => write!(
                f,
                "[phones] was added or removed: that takes effect at restart"
            ),
        }
    }
}

impl std::error::Error for ReloadError {}

/// `new` with the addresses `old` resolved for the same peers (same host,
/// port and transport) where `new` has none configured: DNS answers are
/// not configuration, and a changed trunk must not lose them.
fn with_resolved(old: &TrunkSpec, new: &TrunkSpec) -> TrunkSpec {
    let mut t = new.clone();
    for p in t.peers.iter_mut().filter(|p| p.addr.is_none()) {
        if let Some(o) = old
            .peers
            .iter()
            .find(|o| o.host == p.host && o.port == p.port && o.transport == p.transport)
        {
            p.addr = o.addr;
        }
    }
    t
}

impl B2bua {
    /// Applies a new configuration to new calls (see the module
    /// documentation). Calls in progress, pending attempts, registrations
    /// and transactions go on. Peers of a new slot whose name must be
    /// resolved keep the address the old slot had for them; others are
    /// unresolved until [`Input::PeerResolved`](super::Input::PeerResolved)
    /// names their new slot.
    pub fn reconfigure(&mut self, now: Instant, r: Reconfig) -> Result<Reconfigured, ReloadError> {
        let has_phones = r.trunks.iter().any(|t| t.kind == trunk::TrunkKind::Phones);
        if has_phones && self.registrar.is_none() {
            return Err(ReloadError::PhonesChanged);
        }
        let live: Vec<usize> = (0..self.cfg.trunks.len())
            .filter(|&i| !self.retired[i])
            .collect();
        // Each new trunk: the live slot of the same name, if its
        // specification is the same (resolved addresses aside).
        let mut slots = Vec::with_capacity(r.trunks.len());
        let mut fresh = 0;
        for t in &r.trunks {
            let same = live.iter().copied().find(|&i| {
                let old = &self.cfg.trunks[i];
                old.name == t.name && with_resolved(old, t) == *old
            });
            if same.is_none() {
                fresh += 1;
            }
            slots.push(same);
        }
        if self.cfg.trunks.len() + fresh > MAX_SLOTS {
            return Err(ReloadError::NoSlots);
        }
        let kept: Vec<usize> = slots.iter().flatten().copied().collect();
        let retired: Vec<usize> = live.into_iter().filter(|i| !kept.contains(i)).collect();
        let mut added = Vec::new();
        let mut out = Vec::with_capacity(r.trunks.len());
        for (t, slot) in r.trunks.into_iter().zip(slots) {
            if let Some(i) = slot {
                out.push(i);
                continue;
            }
            // The trunk it replaces (same name), for its DNS answers.
            let spec = match retired.iter().find(|&&i| self.cfg.trunks[i].name == t.name) {
                Some(&old) => with_resolved(&self.cfg.trunks[old], &t),
                None => t,
            };
            let i = self.cfg.trunks.len();
            let mut h = Health::new(&spec, self.cfg.seed ^ ((i as u64 + 1) << 48), now);
            for (p, ps) in spec.peers.iter().enumerate() {
                if ps.addr.is_none() {
                    h.set_unresolved(now, p);
                }
            }
            if self.draining {
                h.set_paused(true);
            }
            tracing::info!(trunk = %spec.name, slot = i, "trunk configured");
            self.cfg.trunks.push(spec);
            self.health.push(h);
            self.active.push(0);
            self.retired.push(false);
            added.push(i);
            out.push(i);
        }
        for &i in &retired {
            self.retired[i] = true;
            self.health[i].set_paused(true);
            tracing::info!(trunk = %self.cfg.trunks[i].name, slot = i, calls = self.active[i], "trunk retired: its calls go on, new calls take the new configuration");
        }
        self.cfg.routes = r.routes;
        if let Some(u) = r.users {
            self.set_users(u);
        }
        self.classifier = Classifier::with_retired(&self.cfg.trunks, &self.retired);
        Ok(Reconfigured {
            slots: out,
            added,
            retired,
        })
    }

    /// False for a trunk slot a reload retired (or one that does not exist).
    pub fn is_live(&self, trunk: usize) -> bool {
        self.retired.get(trunk).is_some_and(|r| !r)
    }
}
