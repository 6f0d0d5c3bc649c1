use super::*;

impl B2bua {
    /// Sends BYE on leg `li` (if it is confirmed) and marks it ended.
    pub(super) fn bye(&mut self, id: u64, li: usize) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let leg = &call.legs[li];
        if leg.state != LegState::Confirmed {
            return;
        }
        let via = self.via(leg.trunk, leg.peer.transport);
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let leg = &mut call.legs[li];
        leg.local_cseq += 1;
        let cseq = leg.local_cseq;
        leg.state = LegState::Ended;
        let t = leg.trunk;
        let peer = leg.peer;
        let Some(mut bye) = dialog_request(leg, "BYE", cseq, &via) else {
            return;
        };
        self.active[t] = self.active[t].saturating_sub(1);
        self.decorate(&mut bye, Some(t));
        let peer = self.in_dialog_peer(t, &mut bye, peer);
        match self.ep.send_request(self.now, bye, peer) {
            Ok(k) => {
                self.clients.insert(k, Pending::Fire);
            }
            Err(e) => tracing::debug!(%e, "BYE not sent"),
        }
    }

    /// Ends call `id`: the caller's pending INVITE answered `code`, every
    /// confirmed leg sent BYE, attempts in progress cancelled, media
    /// released, the CDR written.
    pub(super) fn end_call(&mut self, id: u64, reason: &str, by: &str, code: u16) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if !call.enter(CallState::Ended) {
            return;
        }
        // A 2xx held for a PRACK goes first: the BYE that follows ends a
        // dialog the caller knows of.
        if call.legs[call.a]
            .rel
            .as_ref()
            .is_some_and(|r| r.holds_final())
        {
            self.release_final(id);
        }
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if call.status == 0 || call.answered.is_none() {
            call.status = code;
        }
        call.reason = reason.to_owned();
        call.ended_by = by.to_owned();
        let pending = call.a_invite.take();
        let a = call.a;
        if let Some(server) = pending {
            let a_tag = call.legs[a].local_tag.clone();
            let a_trunk = call.legs[a].trunk;
            if let Some(Ok(mut r)) = call
                .a_request
                .as_deref()
                .map(|q| response_to(q, code, reason_phrase(code), Some(&a_tag)))
            {
                if code == 503 {
                    push(&mut r, "Retry-After", "5");
                }
                self.decorate(&mut r, Some(a_trunk));
                self.respond(server, r);
            }
            call_leg_end(&mut self.calls, &mut self.active, id, a);
        }
        let n = self.calls.get(&id).map_or(0, |c| c.legs.len());
        for li in 0..n {
            let Some(c) = self.calls.get(&id) else {
                return;
            };
            match c.legs[li].state {
                LegState::Confirmed => self.bye(id, li),
                LegState::Trying if c.legs[li].uac => {
                    if let Some(k) = c.legs[li].invite {
                        if let Ok(ck) = self.ep.cancel(self.now, k) {
                            self.clients.insert(ck, Pending::Fire);
                        }
                    }
                    call_leg_end(&mut self.calls, &mut self.active, id, li);
                }
                _ => {}
            }
        }
        self.finish(id);
    }

    /// Releases the media, writes the CDR and forgets the call. Late
    /// answers of its attempts are hung up from the response alone.
    pub(super) fn finish(&mut self, id: u64) {
        // Requests of this call forwarded to the other party and still
        // unanswered (a re-INVITE whose answerer sent 1xx and stopped, an
        // INFO) are answered 487 and a forwarded INVITE is cancelled: both
        // transactions used to wait for ever once the call was gone (fuzz
        // B2). `held` holds only requests in flight: a short scan.
        let held: Vec<ServerKey> = self
            .held
            .iter()
            .filter(|(_, h)| h.1 == id)
            .map(|(k, _)| *k)
            .collect();
        for server in held {
            self.drop_held(server, 487);
        }
        let Some(mut call) = self.calls.remove(&id) else {
            return;
        };
        // The caller's INVITE server transaction keeps its `invites` entry
        // until it terminates; a CANCEL that matches it then finds no call.
        for leg in &call.legs {
            self.dialogs
                .remove(&(leg.call_id.clone(), leg.local_tag.clone()));
        }
        Self::disarm_keys(&mut self.timers, &mut call.timers, |_| true);
        // Only this call's INVITE client transactions, found from its legs
        // (no scan of every transaction: thousands linger at high call rates).
        for l in &call.legs {
            let Some(p) = l.invite.and_then(|k| self.clients.get_mut(&k)) else {
                continue;
            };
            if matches!(*p, Pending::Invite { call: c, .. } if c == id) {
                *p = if !l.acked {
                    Pending::Abandoned {
                        trunk: l.trunk,
                        peer: l.peer,
                    }
                } else {
                    Pending::Fire
                };
            }
        }
        self.ringback_forget(id);
        if let Some(s) = call.session {
            self.outputs
                .push_back(Output::Media(MediaOp::Delete { id: s.id }));
        }
        if !call.cdr_done {
            call.cdr_done = true;
            let ms = |t: Instant| t.saturating_duration_since(call.start).as_millis() as u64;
            let b = call.b.map(|b| &call.legs[b]);
            let cdr = Cdr {
                call: id,
                a_call_id: call.legs[0].call_id.clone(),
                b_call_id: b.map(|l| l.call_id.clone()),
                from_trunk: self.cfg.trunks[call.from_trunk].name.clone(),
                to_trunk: b.map(|l| self.cfg.trunks[l.trunk].name.clone()),
                calling: call.calling.clone(),
                called: call.called.clone(),
                route: call.route.clone(),
                attempts: call.attempts.clone(),
                ringing_ms: call.ringing.map(ms),
                answer_ms: call.answered.map(ms),
                end_ms: ms(self.now),
                status: call.status,
                reason: call.reason.clone(),
                ended_by: call.ended_by.clone(),
                transfers: call.transfers,
                emergency: call.emergency,
                media_session: call.session.map(|s| s.id),
                packets: [0, 0],
            };
            self.outputs.push_back(Output::Cdr(Box::new(cdr)));
        }
    }

    pub(super) fn on_timer(&mut self, now: Instant, t: Timer) {
        match t {
            Timer::Invite { call, leg } => {
                let Some(c) = self.calls.get(&call) else {
                    return;
                };
                if c.legs[leg].state != LegState::Trying {
                    return;
                }
                let transfer = c.refer.as_ref().is_some_and(|r| r.new_leg == leg);
                if !transfer && !c.is_current(leg) {
                    return;
                }
                // Nothing at all from the peer in its per-attempt time: it
                // is silent (passive health: down at once, so the next call
                // goes elsewhere without waiting), this attempt is given up
                // (a CANCEL goes out once it shows life; a late 2xx is
                // ACKed and hung up).
                if let Some(p) = c.legs[leg].peer_index {
                    let t = c.legs[leg].trunk;
                    self.peer_silent(t, p);
                }
                self.abandon(call, leg, "timeout");
                if transfer {
                    self.transfer_failed(call, leg, 408);
                } else {
                    self.attempt_failed(call, leg, Outcome::Timeout);
                }
            }
            Timer::Window { call } => self.forward_now(call, false),
            Timer::Ring { call } => self.forward_now(call, true),
            Timer::Resend {
                call,
                leg,
                interval_ms,
                elapsed_ms,
            } => {
                let Some(c) = self.calls.get(&call) else {
                    return;
                };
                let Some((server, ok)) = c.legs[leg].ok.as_deref().cloned() else {
                    return;
                };
                let t1 = self.cfg.timers.t1.as_millis() as u64;
                let t2 = self.cfg.timers.t2.as_millis() as u64;
                // RFC 3261 §13.3.1.4: give up 64*T1 after the first 2xx.
                if elapsed_ms >= 64 * t1.max(1) {
                    tracing::info!(call, "no ACK for our 2xx");
                    self.end_call(call, "no ACK", "sbc", 408);
                    return;
                }
                self.respond(server, ok);
                let next = (interval_ms * 2).min(t2.max(1));
                self.arm(
                    now + Duration::from_millis(next),
                    Timer::Resend {
                        call,
                        leg,
                        interval_ms: next,
                        elapsed_ms: elapsed_ms + next,
                    },
                );
            }
            Timer::ForgetAck { call, leg } => {
                if let Some(l) = self.calls.get_mut(&call).and_then(|c| c.legs.get_mut(leg)) {
                    l.ack = None;
                }
            }
            Timer::Rel1xx {
                call,
                leg,
                interval_ms,
                elapsed_ms,
            } => self.on_rel1xx_timer(call, leg, interval_ms, elapsed_ms),
            Timer::Provisional { call, leg } => self.on_timer_c(call, leg),
            Timer::Refresh { call, leg } => self.on_refresh_timer(call, leg),
            Timer::SessionExpires { call, leg } => {
                if self
                    .calls
                    .get(&call)
                    .is_some_and(|c| c.legs[leg].state == LegState::Confirmed)
                {
                    tracing::info!(call, "session timer expired");
                    self.end_call(call, "session timer expired", "sbc", 408);
                }
            }
        }
    }

    pub(super) fn on_cancelled(&mut self, invite: ServerKey) {
        let Some(id) = self.invites.get(&invite).copied() else {
            // A re-INVITE we forwarded, cancelled by its sender: answered
            // 487, the CANCEL passed on (it used to wait for the other
            // party, for ever if that party stopped after 1xx: fuzz B2).
            if self.held.contains_key(&invite) {
                self.drop_held(invite, 487);
            }
            return;
        };
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if call.a_invite != Some(invite) {
            return;
        }
        tracing::info!(call = id, "cancelled by the caller");
        self.end_call(id, "cancelled", "caller", 487);
    }
}

pub(super) fn call_leg_end(
    calls: &mut HashMap<u64, Box<Call>>,
    active: &mut [u32],
    id: u64,
    li: usize,
) {
    if let Some(c) = calls.get_mut(&id) {
        if c.legs[li].state != LegState::Ended {
            c.legs[li].state = LegState::Ended;
            let t = c.legs[li].trunk;
            active[t] = active[t].saturating_sub(1);
        }
    }
}
