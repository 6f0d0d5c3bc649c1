//! Reliable provisional responses (RFC 3262), on both sides of a call.
//!
//! - Toward a caller that requires `100rel` (or supports it, on a trunk
//!   set to `required`), every 18x we relay is sent reliably: `Require:
//!   100rel` and an `RSeq`, retransmitted from T1 doubling until its PRACK
//!   (answered 200), one at a time — a later 18x waits for the PRACK of the
//!   one before, the latest only. A 2xx waits while an unacknowledged one
//!   carried SDP (§3). No PRACK in 64·T1: the INVITE is answered 500 (§3).
//!   A PRACK that matches no unacknowledged 18x gets 481.
//! - From a callee: a reliable 18x (`Require: 100rel`, `RSeq`) is PRACKed in
//!   its early dialog (`RAck: RSeq CSeq INVITE`); a retransmission (an RSeq
//!   already PRACKed) or one out of order is ignored (§4).
//! - Toward Microsoft (`rel100 = off`, which it does not use) nothing of
//!   this happens: reliable 18x of the other leg are absorbed here.

use super::*;
use trunk::Rel100;

/// The reliability state of one leg.
#[derive(Debug, Default)]
pub(super) struct Rel {
    /// This party gets our 18x reliably.
    pub(super) out: bool,
    /// Our next RSeq toward it.
    next_rseq: u32,
    /// The reliable 18x awaiting its PRACK: RSeq, the response, whether it
    /// carried SDP.
    unacked: Option<(u32, Message, bool)>,
    /// An 18x waiting for the PRACK of the one before.
    queued: Option<Message>,
    /// Our 2xx and the INVITE it answers, waiting for the PRACK of an 18x
    /// with SDP.
    final_held: Option<(ServerKey, Message)>,
    /// The last RSeq we PRACKed on this (callee's) leg.
    last_rseq: Option<u32>,
    /// A reliable 18x with our SDP went to this party.
    sdp_sent: bool,
}

impl Rel {
    /// A caller's leg that gets our 18x reliably.
    pub(super) fn toward_caller() -> Rel {
        Rel {
            out: true,
            ..Rel::default()
        }
    }

    /// A 2xx waits for a PRACK.
    pub(super) fn holds_final(&self) -> bool {
        self.final_held.is_some()
    }
}

/// The `RAck` of a PRACK: (RSeq, CSeq number, method).
fn rack_of(m: &Message) -> Option<(u32, u32, String)> {
    let v = header_by_name(m, "RAck")?;
    let mut it = v.split_ascii_whitespace();
    let rseq = it.next()?.parse().ok()?;
    let cseq = it.next()?.parse().ok()?;
    let method = it.next()?.to_ascii_uppercase();
    it.next().is_none().then_some((rseq, cseq, method))
}

/// The `RSeq` of a reliable provisional response (1 to 2^31-1).
fn rseq_of(m: &Message) -> Option<u32> {
    header_by_name(m, "RSeq")
        .and_then(|v| v.trim().parse().ok())
        .filter(|n| (1..=0x7fff_ffff).contains(n))
}

impl Leg {
    /// This caller got our SDP in a reliable 18x: every later 18x and the
    /// 2xx carry the same SDP (RFC 3262 §5, RFC 6337 §3.1).
    pub(super) fn answered_early(&self) -> bool {
        self.rel.as_deref().is_some_and(|r| r.out && r.sdp_sent)
    }
}

impl B2bua {
    /// Whether a caller arriving on trunk `trunk` gets our 18x reliably; a
    /// `Require: 100rel` where the trunk has it off is answered 420 here
    /// (returns `Err(())`).
    pub(super) fn caller_rel(
        &mut self,
        key: ServerKey,
        msg: &Message,
        trunk: usize,
        tag: &str,
    ) -> Result<bool, ()> {
        let required = has_token(msg, HeaderName::Require, "100rel");
        let supported = required || has_token(msg, HeaderName::Supported, "100rel");
        match self.cfg.trunks[trunk].interop.rel100 {
            Rel100::Off if required => {
                self.counters.bad_extensions += 1;
                if let Ok(mut r) = response_to(msg, 420, "Bad Extension", Some(tag)) {
                    push(&mut r, "Unsupported", "100rel");
                    self.decorate(&mut r, Some(trunk));
                    self.respond(key, r);
                }
                Err(())
            }
            Rel100::Off => Ok(false),
            Rel100::Supported => Ok(required),
            Rel100::Required => Ok(supported),
        }
    }

    /// Sends 18x `r` to the caller of call `id` on its INVITE `server`:
    /// reliably when its leg wants that (queued behind an unacknowledged
    /// one), else as it is.
    pub(super) fn send_provisional(&mut self, id: u64, server: ServerKey, mut r: Message) {
        let t1 = self.cfg.timers.t1;
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let a = call.a;
        let Some(rel) = call.legs[a].rel.as_deref_mut().filter(|r| r.out) else {
            self.respond(server, r);
            return;
        };
        if rel.unacked.is_some() {
            rel.queued = Some(r);
            return;
        }
        if rel.next_rseq == 0 {
            // RFC 3262 §3: the first RSeq is random, 1 to 2^31-1, and small
            // enough to leave room to count up.
            rel.next_rseq = (self.uniq.next_u64() % 0x3fff_ffff) as u32 + 1;
        }
        let rseq = rel.next_rseq;
        rel.next_rseq += 1;
        push(&mut r, "Require", "100rel");
        push(&mut r, "RSeq", &rseq.to_string());
        let has_sdp = !r.body().is_empty();
        rel.sdp_sent |= has_sdp;
        rel.unacked = Some((rseq, r.clone(), has_sdp));
        self.counters.reliable_18x += 1;
        self.respond(server, r);
        let ms = t1.as_millis() as u64;
        self.arm(
            self.now + t1,
            Timer::Rel1xx {
                call: id,
                leg: a,
                interval_ms: ms,
                elapsed_ms: ms,
            },
        );
    }

    /// True when the caller's 2xx must wait: an unacknowledged reliable
    /// 18x carried SDP (RFC 3262 §3). `r` is kept and sent on the PRACK.
    pub(super) fn hold_final(&mut self, id: u64, server: ServerKey, r: &Message) -> bool {
        let Some(call) = self.calls.get_mut(&id) else {
            return false;
        };
        let a = call.a;
        match call.legs[a].rel.as_deref_mut() {
            Some(rel) if rel.unacked.as_ref().is_some_and(|u| u.2) => {
                rel.queued = None;
                rel.final_held = Some((server, r.clone()));
                true
            }
            Some(rel) => {
                // Nothing to wait for; what is queued is obsolete now.
                rel.queued = None;
                rel.unacked = None;
                false
            }
            None => false,
        }
    }

    /// A held 2xx goes out now (the call ends, or its PRACK never came).
    pub(super) fn release_final(&mut self, id: u64) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let a = call.a;
        let Some((server, r)) = call.legs[a]
            .rel
            .as_deref_mut()
            .and_then(|rel| rel.final_held.take())
        else {
            return;
        };
        if let Some(rel) = call.legs[a].rel.as_deref_mut() {
            rel.unacked = None;
        }
        self.disarm(id, |t| matches!(t, Timer::Rel1xx { .. }));
        self.send_final_ok(id, a, server, r);
    }

    /// A PRACK on leg `li`: 200 when it acknowledges our unacknowledged
    /// reliable 18x (then the next 18x or the held 2xx goes), else 481.
    pub(super) fn on_prack(&mut self, key: ServerKey, msg: &Message, id: u64, li: usize) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let (tag, trunk) = (call.legs[li].local_tag.clone(), call.legs[li].trunk);
        let invite_cseq = call
            .a_request
            .as_deref()
            .and_then(|q| q.cseq().ok())
            .map(|c| c.seq);
        let matched = match (rack_of(msg), call.legs[li].rel.as_deref_mut()) {
            (Some((rseq, cseq, method)), Some(rel))
                if method == "INVITE"
                    && rel.unacked.as_ref().is_some_and(|u| u.0 == rseq)
                    && (invite_cseq.is_none() || invite_cseq == Some(cseq)) =>
            {
                rel.unacked = None;
                Some((rel.final_held.take(), rel.queued.take()))
            }
            _ => None,
        };
        let Some((held, queued)) = matched else {
            self.counters.prack_unmatched += 1;
            tracing::info!(call = id, "PRACK matching no reliable provisional: 481");
            self.reply(key, msg, 481, Some(&tag), Some(trunk));
            return;
        };
        self.disarm(id, |t| matches!(t, Timer::Rel1xx { leg, .. } if *leg == li));
        self.reply(key, msg, 200, Some(&tag), Some(trunk));
        if let Some((server, r)) = held {
            self.send_final_ok(id, li, server, r);
        } else if let (Some(r), Some(server)) =
            (queued, self.calls.get(&id).and_then(|c| c.a_invite))
        {
            self.send_provisional(id, server, r);
        }
    }

    /// Retransmits the unacknowledged reliable 18x of leg `li`; after
    /// 64·T1 the caller's INVITE is answered 500 (RFC 3262 §3).
    pub(super) fn on_rel1xx_timer(
        &mut self,
        id: u64,
        li: usize,
        interval_ms: u64,
        elapsed_ms: u64,
    ) {
        let t1 = self.cfg.timers.t1.as_millis() as u64;
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let held = call.legs[li]
            .rel
            .as_deref()
            .and_then(|r| r.final_held.as_ref().map(|f| f.0));
        let server = call.a_invite.or(held);
        let Some(r) = call.legs[li]
            .rel
            .as_deref()
            .and_then(|rel| rel.unacked.as_ref())
            .map(|u| u.1.clone())
        else {
            return;
        };
        if elapsed_ms >= 64 * t1.max(1) {
            tracing::info!(call = id, "no PRACK for a reliable provisional");
            self.counters.prack_timeouts += 1;
            if held.is_some() {
                // Answered already: the call goes on, the 2xx goes now.
                self.release_final(id);
            } else {
                self.end_call(id, "no PRACK", "sbc", 500);
            }
            return;
        }
        let Some(server) = server else {
            return;
        };
        self.respond(server, r);
        // The last wait ends at 64·T1 exactly.
        let next = (interval_ms * 2).min(64 * t1.max(1) - elapsed_ms);
        self.arm(
            self.now + Duration::from_millis(next),
            Timer::Rel1xx {
                call: id,
                leg: li,
                interval_ms: next,
                elapsed_ms: elapsed_ms + next,
            },
        );
    }

    /// A reliable 18x on callee leg `li`: PRACKed in its early dialog
    /// unless it is a retransmission or out of order. False when the 18x
    /// is to be ignored.
    pub(super) fn prack(&mut self, id: u64, li: usize, msg: &Message) -> bool {
        if !has_token(msg, HeaderName::Require, "100rel") {
            return true;
        }
        let Some(rseq) = rseq_of(msg) else {
            // Reliable without a usable RSeq: it cannot be PRACKed (§4);
            // taken as an unreliable 18x.
            return true;
        };
        let Some(call) = self.calls.get_mut(&id) else {
            return false;
        };
        let leg = &mut call.legs[li];
        let rel = leg.rel.get_or_insert_with(Box::default);
        match rel.last_rseq {
            Some(last) if rseq <= last => return false,
            Some(last) if rseq != last.wrapping_add(1) => return false,
            _ => {}
        }
        rel.last_rseq = Some(rseq);
        // The early dialog the PRACK goes in (RFC 3262 §4, RFC 3261 §12.1.2).
        if leg.state == LegState::Trying {
            leg.remote_tag = msg.header(HeaderName::To).and_then(tag_of);
            if let Some(t) = contact_uri(msg) {
                leg.remote_target = Some(t);
            }
            let mut rr: Vec<String> = msg
                .values(HeaderName::RecordRoute)
                .map(|v| String::from_utf8_lossy(v).trim().to_owned())
                .collect();
            rr.reverse();
            leg.route_set = rr;
        }
        let cseq = msg.cseq().map(|c| c.seq).unwrap_or(1);
        let (trunk, transport) = (leg.trunk, leg.peer.transport);
        let via = self.via(trunk, transport);
        let Some(call) = self.calls.get_mut(&id) else {
            return false;
        };
        let leg = &mut call.legs[li];
        leg.local_cseq += 1;
        let Some(mut m) = dialog_request(leg, "PRACK", leg.local_cseq, &via) else {
            return true;
        };
        push(&mut m, "RAck", &format!("{rseq} {cseq} INVITE"));
        let peer = leg.peer;
        self.decorate(&mut m, Some(trunk));
        let peer = self.in_dialog_peer(trunk, &mut m, peer);
        match self.ep.send_request(self.now, m, peer) {
            Ok(k) => {
                self.counters.pracks_sent += 1;
                self.clients.insert(k, Pending::Fire);
            }
            Err(e) => tracing::info!(call = id, %e, "PRACK not sent"),
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(text: &str) -> Message {
        let raw = format!(
            "PRACK sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: x\r\nCSeq: 2 PRACK\r\nMax-Forwards: 70\r\n{text}Content-Length: 0\r\n\r\n"
        );
        Message::parse(Bytes::from(raw)).unwrap()
    }

    #[test]
    fn rack_and_rseq_are_read_strictly() {
        assert_eq!(
            rack_of(&msg("RAck: 776656 1 INVITE\r\n")),
            Some((776656, 1, "INVITE".into()))
        );
        assert_eq!(rack_of(&msg("RAck: 776656 1\r\n")), None);
        assert_eq!(rack_of(&msg("RAck: x 1 INVITE\r\n")), None);
        assert_eq!(rack_of(&msg("RAck: 1 1 INVITE extra\r\n")), None);
        assert_eq!(rack_of(&msg("")), None);
        assert_eq!(rseq_of(&msg("RSeq: 5\r\n")), Some(5));
        assert_eq!(rseq_of(&msg("RSeq: 0\r\n")), None);
        assert_eq!(rseq_of(&msg("RSeq: 4294967295\r\n")), None);
    }
}
