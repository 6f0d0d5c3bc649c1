//! Admission: calls per second per trunk, and requests from sources no
//! trunk accepts.
//!
//! A trunk's `max_cps` is a token bucket (burst `max(1, max_cps)`, refilled
//! at `max_cps` a second on the B2BUA's clock) shared by the calls arriving
//! from the trunk and the attempts sent to it. A call arriving from a trunk
//! whose bucket is empty gets 503 with `Retry-After: 1` (counted in
//! [`Counters::refused_cps`]); an attempt toward one is skipped like a
//! trunk at its `max_calls` (the route's next destination). Emergency calls
//! take a token when there is one and are never refused.

use std::collections::HashMap;

use super::*;

/// What happens to a request whose source no trunk accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum UnknownSource {
    /// Nothing is sent (no transaction is kept); counted in
    /// [`Counters::unclassified`]. What the `sbc` configuration defaults to:
    /// a scanner learns nothing.
    Drop,
    /// 403 Forbidden, counted likewise (the B2BUA's own default).
    #[default]
    Reject,
}

/// Trunk-independent protection settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Protect {
    /// Requests from sources no trunk accepts.
    pub unknown_source: UnknownSource,
}

impl Protect {
    /// Protection with `unknown_source`.
    pub fn new(unknown_source: UnknownSource) -> Protect {
        Protect { unknown_source }
    }
}

/// One trunk's calls-per-second bucket, in thousandths of a call.
#[derive(Debug, Clone, Copy)]
pub(super) struct Bucket {
    milli: u64,
    at: Instant,
}

impl Bucket {
    /// Refills for the time since the last use, then takes one call if
    /// there is one (always, when `anyway`: the call is taken, the bucket
    /// does not go below empty). True when a call was there.
    fn take(&mut self, now: Instant, per_second: u32, anyway: bool) -> bool {
        let cap = u64::from(per_second.max(1)) * 1000;
        let us = now.saturating_duration_since(self.at).as_micros();
        let add = us.saturating_mul(u128::from(per_second)) / 1000;
        self.milli = u64::try_from(add)
            .unwrap_or(u64::MAX)
            .saturating_add(self.milli)
            .min(cap);
        self.at = now.max(self.at);
        let had = self.milli >= 1000;
        if had || anyway {
            self.milli = self.milli.saturating_sub(1000);
        }
        had
    }
}

/// The buckets of the trunks that have a `max_cps`, by trunk slot.
pub(super) type Buckets = HashMap<usize, Bucket>;

impl B2bua {
    /// Takes one call from trunk `t`'s bucket at the current time: false
    /// when the trunk is over its `max_cps` (nothing taken). An emergency
    /// call is always admitted (it takes a call when there is one).
    pub(super) fn cps_admit(&mut self, t: usize, emergency: bool) -> bool {
        let Some(rate) = self.cfg.trunks.get(t).and_then(|s| s.max_cps) else {
            return true;
        };
        let now = self.now;
        let b = self.cps.entry(t).or_insert(Bucket {
            milli: u64::from(rate.max(1)) * 1000,
            at: now,
        });
        b.take(now, rate, emergency) || emergency
    }

    /// 503 with `Retry-After: 1` to a call refused for its trunk's
    /// `max_cps` (the call was not taken: the next second may have room).
    pub(super) fn refuse_cps(&mut self, key: ServerKey, msg: &Message, tag: &str, trunk: usize) {
        self.counters.refused_cps += 1;
        tracing::info!(trunk = %self.cfg.trunks[trunk].name, "calls per second limit: 503");
        if let Ok(mut r) = response_to(msg, 503, "Service Unavailable", Some(tag)) {
            push(&mut r, "Retry-After", "1");
            self.decorate(&mut r, Some(trunk));
            self.respond(key, r);
        }
    }

    /// True when `msg`, from a source no trunk accepts, is dropped
    /// unanswered ([`UnknownSource::Drop`]): every request but an ACK
    /// (which is never answered) and a request of a dialog we have (a To
    /// tag we gave: a peer that moved is still heard on its calls).
    pub(super) fn drops_unknown(&self, msg: &Message) -> bool {
        if self.cfg.protect.unknown_source != UnknownSource::Drop || msg.method_str() == Some("ACK")
        {
            return false;
        }
        let tag = msg
            .to()
            .ok()
            .and_then(|t| t.tag().map(|t| String::from_utf8_lossy(t).into_owned()));
        match tag {
            Some(tag) => {
                let call_id = msg.call_id().unwrap_or("").to_owned();
                !self.dialogs.contains_key(&(call_id, tag))
            }
            None => true,
        }
    }
}
