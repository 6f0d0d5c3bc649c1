//! UPDATE (RFC 3311), before and after the answer, from either party.
//!
//! - Without SDP: a session refresh (RFC 4028), answered here.
//! - With SDP, after the answer: as a re-INVITE — the relay is re-pointed
//!   at (and re-keyed for) the sender, and the change goes on to the other
//!   party, as UPDATE where its trunk takes UPDATE, else as a re-INVITE;
//!   its answer comes back in our 200.
//! - With SDP, before the answer (an early dialog): the relay is re-pointed
//!   for the sender and the SBC answers with the SDP that party already
//!   has from us (its relay leg does not move); the other party is not
//!   involved. A caller that has no answer from us yet gets 500 with
//!   Retry-After (§5.2: its offer is still unanswered).
//! - While an offer of ours or of the other party's is in flight: 491 (§5.2).

use super::*;

impl B2bua {
    /// True when an offer/answer exchange of call `id` is unfinished on
    /// leg `li`: a request we forwarded and not yet answered, or our own
    /// refresh of that leg.
    pub(super) fn offer_pending(&self, id: u64, li: usize) -> bool {
        self.held.values().any(|h| h.1 == id)
            || self
                .calls
                .get(&id)
                .is_some_and(|c| c.legs.get(li).is_some_and(|l| l.refreshing))
    }

    /// An UPDATE on leg `li` of call `id`.
    pub(super) fn on_update(&mut self, key: ServerKey, msg: Message, id: u64, li: usize) {
        if self.refuse_short_interval(key, &msg, id, li) {
            return;
        }
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let (tag, trunk) = (call.legs[li].local_tag.clone(), call.legs[li].trunk);
        let body = sdp_body(&msg).map(<[u8]>::to_vec);
        let Some(body) = body else {
            self.refreshed(id, li);
            self.answer_update(key, &msg, id, li, None);
            return;
        };
        if self.offer_pending(id, li) {
            self.counters.glare += 1;
            self.reply(key, &msg, 491, Some(&tag), Some(trunk));
            return;
        }
        let parsed = sdp::SessionDescription::parse(&body);
        if !parsed.as_ref().is_ok_and(|sd| md::read_remote(sd).is_ok()) {
            self.counters.bad_offers += 1;
            self.reply(key, &msg, 488, Some(&tag), Some(trunk));
            return;
        }
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        if call.state == CallState::Answered {
            // As a re-INVITE: the relay, the other party, its answer.
            self.reinvite(key, msg, id, li);
            return;
        }
        // Early: the sender's relay entry follows its new SDP; it keeps
        // the SDP it has from us.
        let ours = call.legs[li].media.last_local_sdp.clone();
        let Some(ours) = ours else {
            if let Ok(mut r) = response_to(&msg, 500, "Server Internal Error", Some(&tag)) {
                push(&mut r, "Retry-After", "1");
                self.decorate(&mut r, Some(trunk));
                self.respond(key, r);
            }
            return;
        };
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let session = call.session;
        apply_remote(&mut self.outputs, session, &mut call.legs[li], &body, true);
        self.answer_update(key, &msg, id, li, Some(&ours));
    }

    /// 200 to an UPDATE on leg `li`, with `sdp` when it carried an offer;
    /// a session interval in it is granted as for a re-INVITE.
    pub(super) fn answer_update(
        &mut self,
        key: ServerKey,
        req: &Message,
        id: u64,
        li: usize,
        sdp: Option<&[u8]>,
    ) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let leg = &mut call.legs[li];
        let Ok(mut r) = response_to(req, 200, "OK", Some(&leg.local_tag)) else {
            return;
        };
        push(&mut r, "Contact", &leg.contact);
        let se = session_interval(req).filter(|_| has_token(req, HeaderName::Supported, "timer"));
        if let Some(se) = se {
            // The sender refreshes (it just did).
            push(&mut r, "Session-Expires", &format!("{se};refresher=uac"));
            push(&mut r, "Require", "timer");
        }
        if let Some(b) = sdp {
            let _ = r.set_body(Some("application/sdp"), b);
        }
        let trunk = leg.trunk;
        self.decorate(&mut r, Some(trunk));
        self.respond(key, r);
        if let Some(se) = se {
            self.start_session_timer(id, li, se, false);
        }
    }
}
