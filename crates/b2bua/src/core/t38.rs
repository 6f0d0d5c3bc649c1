//! T.38 fax in a call: a re-INVITE that replaces the audio stream with
//! `m=image PORT udptl t38` (ITU-T T.38 Annex D, RFC 3362) is relayed like
//! any re-INVITE — the image stream anchored on the same relay ports
//! (`media::rewrite`), its datagrams relayed as they are (the relay's raw
//! streams) — when both parties' trunks take T.38 (`TrunkSpec::t38`) and
//! neither leg is SRTP (UDPTL has no SRTP profile: Teams and ACS never
//! carry it). Otherwise the offer is answered 488 here, counted in
//! `refused_t38`. A later re-INVITE back to `m=audio` is an ordinary one.
//!
//! A re-INVITE the other party refuses (488, 491, a timeout…) leaves the
//! session as it was (RFC 3261 §14.1): the relay gets the offerer's
//! previous SDP back ([`B2bua::reinvite_failed`]).

use super::*;

/// Why a re-INVITE's offer is refused with 488.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum OfferRefusal {
    /// No audio or T.38 stream, or one we cannot use (see `read_stream`).
    Unusable(String),
    /// T.38 from or toward a trunk that does not take it, or an SRTP leg.
    T38 {
        /// The trunk that does not take it.
        trunk: String,
    },
}

impl B2bua {
    /// Whether the offer `sd` of a re-INVITE from leg `li` of `call`, to be
    /// sent on to leg `o`, can go on.
    pub(super) fn acceptable_offer(
        &self,
        call: &Call,
        li: usize,
        o: usize,
        sd: &sdp::SessionDescription,
    ) -> Result<(), OfferRefusal> {
        let remote = md::read_stream(sd).map_err(OfferRefusal::Unusable)?;
        if !remote.image {
            return Ok(());
        }
        for leg in [&call.legs[li], &call.legs[o]] {
            let t = &self.cfg.trunks[leg.trunk];
            if !t.t38 || t.media == MediaSecurity::Srtp || leg.media.secure() {
                return Err(OfferRefusal::T38 {
                    trunk: t.name.clone(),
                });
            }
        }
        Ok(())
    }

    /// Counts and logs a refused re-INVITE offer of call `id`.
    pub(super) fn offer_refused(&mut self, id: u64, why: OfferRefusal) {
        match why {
            OfferRefusal::T38 { trunk } => {
                self.counters.refused_t38 += 1;
                tracing::info!(call = id, %trunk, "T.38 re-INVITE refused (488): the trunk takes no T.38");
            }
            OfferRefusal::Unusable(e) => {
                tracing::info!(call = id, %e, "re-INVITE offer refused (488)");
            }
        }
    }

    /// The re-INVITE leg `from` of call `id` sent was refused by the other
    /// party: the relay goes back to what `from` had before (its address,
    /// key and stream: audio again after a refused T.38 offer).
    pub(super) fn reinvite_failed(&mut self, id: u64, from: usize) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let session = call.session;
        let leg = &mut call.legs[from];
        let Some(prev) = leg.media.prev_remote_sdp.take() else {
            return;
        };
        apply_remote(&mut self.outputs, session, leg, &prev, false);
        leg.media.prev_remote_sdp = None;
    }
}
