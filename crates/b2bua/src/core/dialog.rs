use super::*;

impl B2bua {
    pub(super) fn in_dialog(&mut self, key: ServerKey, msg: Message, id: u64, li: usize) {
        let method = msg.method_str().unwrap_or("").to_owned();
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let tag = call.legs[li].local_tag.clone();
        let trunk = call.legs[li].trunk;
        // The remote CSeq only grows; an older one is out of order (§12.2.2).
        match method.as_str() {
            "BYE" => {
                let (is_a, is_b) = (call.a == li, call.b == Some(li));
                let early = call.legs[li].state == LegState::Trying;
                let (current, transfer) = (
                    call.is_current(li),
                    call.refer.as_ref().is_some_and(|r| r.new_leg == li),
                );
                self.reply(key, &msg, 200, Some(&tag), Some(trunk));
                if early && !is_a {
                    // A callee's BYE on its early dialog (RFC 3261 §15
                    // forbids it; peers send it): that attempt is over. Its
                    // INVITE is cancelled — left alone, the transaction
                    // (past its 1xx, no Timer C) waited for ever — and the
                    // plan goes on as for a refusal; the caller never gets
                    // the 200 it used to get here (fuzz B1).
                    self.abandon(id, li, "bye");
                    if transfer {
                        self.transfer_failed(id, li, 480);
                    } else if current {
                        self.attempt_failed(id, li, Outcome::Final(480));
                    }
                    return;
                }
                call_leg_end(&mut self.calls, &mut self.active, id, li);
                if is_a || is_b {
                    let by = if is_a { "caller" } else { "callee" };
                    if let Some(r) = header_by_name(&msg, "Reason") {
                        tracing::info!(call = id, reason = %r, "BYE with Reason");
                    }
                    // The caller's BYE before the answer ends its INVITE
                    // with 487 (RFC 3261 §15.1.2), not 200 (fuzz B1).
                    let code = if early { 487 } else { 200 };
                    self.end_call(id, &format!("bye from {by}"), by, code);
                }
            }
            "INVITE" => self.reinvite(key, msg, id, li),
            "INFO" => self.forward(key, msg, id, li),
            "OPTIONS" => self.reply(key, &msg, 200, Some(&tag), Some(trunk)),
            "REFER" => self.refer(key, msg, id, li),
            "NOTIFY" => self.reply(key, &msg, 200, Some(&tag), Some(trunk)),
            "UPDATE" => self.on_update(key, msg, id, li),
            "PRACK" => self.on_prack(key, &msg, id, li),
            _ => self.reply(key, &msg, 501, Some(&tag), Some(trunk)),
        }
    }

    /// A refresh on leg `li` restarts its session timer.
    pub(super) fn refreshed(&mut self, id: u64, li: usize) {
        let Some((se, sbc)) = self.calls.get(&id).and_then(|c| {
            c.legs[li]
                .session_expires
                .map(|se| (se, c.legs[li].sbc_refreshes))
        }) else {
            return;
        };
        self.start_session_timer(id, li, se, sbc);
    }

    /// The other party's current leg.
    pub(super) fn other(call: &Call, li: usize) -> Option<usize> {
        if li == call.a {
            call.b
        } else {
            Some(call.a)
        }
    }

    pub(super) fn forward(&mut self, key: ServerKey, msg: Message, id: u64, li: usize) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let tag = call.legs[li].local_tag.clone();
        let trunk = call.legs[li].trunk;
        let method = msg.method_str().unwrap_or("INFO").to_owned();
        let Some(o) = Self::other(call, li).filter(|o| call.legs[*o].state == LegState::Confirmed)
        else {
            self.reply(key, &msg, 200, Some(&tag), Some(trunk));
            return;
        };
        let via = self.via(call.legs[o].trunk, call.legs[o].peer.transport);
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let leg = &mut call.legs[o];
        leg.local_cseq += 1;
        let Some(mut m) = dialog_request(leg, &method, leg.local_cseq, &via) else {
            self.reply(key, &msg, 500, Some(&tag), Some(trunk));
            return;
        };
        if !msg.body().is_empty() {
            let ct = header_text(&msg, HeaderName::ContentType);
            let _ = m.set_body(ct.as_deref(), msg.body());
        }
        let (peer, ot) = (leg.peer, leg.trunk);
        self.decorate(&mut m, Some(ot));
        let peer = self.in_dialog_peer(ot, &mut m, peer);
        match self.ep.send_request(self.now, m, peer) {
            Ok(k) => {
                self.held.insert(key, (msg, id, li, k));
                self.clients.insert(k, Pending::Forward { server: key });
            }
            Err(_) => self.reply(key, &msg, 500, Some(&tag), Some(trunk)),
        }
    }

    pub(super) fn reinvite(&mut self, key: ServerKey, msg: Message, id: u64, li: usize) {
        if self.refuse_short_interval(key, &msg, id, li) {
            return;
        }
        self.refreshed(id, li);
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let tag = call.legs[li].local_tag.clone();
        let trunk = call.legs[li].trunk;
        if call.state != CallState::Answered || call.refer.is_some() || self.offer_pending(id, li) {
            self.counters.glare += 1;
            self.reply(key, &msg, 491, Some(&tag), Some(trunk));
            return;
        }
        let body = sdp_body(&msg).map(<[u8]>::to_vec);
        let unchanged = body.is_none() || body == call.legs[li].media.last_remote_sdp;
        if unchanged {
            // A session refresh (or an offerless re-INVITE): answered here
            // with the SDP we last gave this party; nothing is forwarded.
            let sdp = call.legs[li].media.last_local_sdp.clone();
            self.answer_reinvite(key, &msg, id, li, sdp.as_deref());
            return;
        }
        let Some(o) = Self::other(call, li).filter(|o| call.legs[*o].state == LegState::Confirmed)
        else {
            self.reply(key, &msg, 491, Some(&tag), Some(trunk));
            return;
        };
        let body = body.unwrap_or_default();
        let Ok(sd) = sdp::SessionDescription::parse(&body) else {
            self.reply(key, &msg, 488, Some(&tag), Some(trunk));
            return;
        };
        // Audio, or T.38 where both trunks take it (`t38`).
        if let Err(why) = self.acceptable_offer(call, li, o, &sd) {
            self.offer_refused(id, why);
            self.reply(key, &msg, 488, Some(&tag), Some(trunk));
            return;
        }
        let (ot, otp) = (call.legs[o].trunk, call.legs[o].peer.transport);
        let codecs = self.cfg.trunks[ot].codecs.clone();
        let via = self.via(ot, otp);
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let session = call.session;
        apply_remote(&mut self.outputs, session, &mut call.legs[li], &body, false);
        let Some(s) = session else {
            return;
        };
        let ports = md::side_ports(&s, call.legs[o].side);
        let out = match md::rewrite(sd, ports, &mut call.legs[o].media, &codecs) {
            Ok(b) => b,
            Err(_) => {
                self.reply(key, &msg, 488, Some(&tag), Some(trunk));
                return;
            }
        };
        // An UPDATE goes on as UPDATE where the other trunk takes it (an
        // SDP change toward Microsoft goes as re-INVITE).
        let update = msg.method_str() == Some("UPDATE") && self.cfg.trunks[ot].interop.update;
        let method = if update { "UPDATE" } else { "INVITE" };
        let leg = &mut call.legs[o];
        leg.local_cseq += 1;
        let Some(mut m) = dialog_request(leg, method, leg.local_cseq, &via) else {
            self.reply(key, &msg, 500, Some(&tag), Some(trunk));
            return;
        };
        let _ = m.set_body(Some("application/sdp"), &out);
        push(&mut m, "Allow", self.cfg.trunks[ot].interop.allow());
        let (peer, ot) = (leg.peer, leg.trunk);
        self.decorate(&mut m, Some(ot));
        let peer = self.in_dialog_peer(ot, &mut m, peer);
        match self.ep.send_request(self.now, m, peer) {
            Ok(k) => {
                self.held.insert(key, (msg, id, li, k));
                self.clients.insert(
                    k,
                    Pending::ReInvite {
                        call: id,
                        from: li,
                        to: o,
                        server: key,
                    },
                );
            }
            Err(_) => self.reply(key, &msg, 500, Some(&tag), Some(trunk)),
        }
    }

    /// 200 to a re-INVITE (or a Replaces INVITE) on leg `li` with `sdp`.
    pub(super) fn answer_reinvite(
        &mut self,
        key: ServerKey,
        req: &Message,
        id: u64,
        li: usize,
        sdp: Option<&[u8]>,
    ) {
        let now = self.now;
        let t1 = self.cfg.timers.t1;
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if req.method_str() == Some("UPDATE") {
            self.answer_update(key, req, id, li, sdp);
            return;
        }
        let leg = &mut call.legs[li];
        let Ok(mut r) = response_to(req, 200, "OK", Some(&leg.local_tag)) else {
            return;
        };
        push(&mut r, "Contact", &leg.contact);
        push(&mut r, "Allow", self.cfg.trunks[leg.trunk].interop.allow());
        let se = session_interval(req).filter(|_| has_token(req, HeaderName::Supported, "timer"));
        if let Some(se) = se {
            push(&mut r, "Session-Expires", &format!("{se};refresher=uac"));
            push(&mut r, "Require", "timer");
        }
        if let Some(b) = sdp {
            let _ = r.set_body(Some("application/sdp"), b);
        }
        let udp = leg.peer.transport == Transport::Udp;
        if udp {
            leg.ok = Some(Box::new((key, r.clone())));
        }
        let trunk = leg.trunk;
        self.decorate(&mut r, Some(trunk));
        self.respond(key, r);
        if let Some(se) = se {
            // The interval granted now (it may differ from the last one)
            // counts from this refresh.
            self.start_session_timer(id, li, se, false);
        }
        if udp {
            self.arm(
                now + t1,
                Timer::Resend {
                    call: id,
                    leg: li,
                    interval_ms: t1.as_millis() as u64,
                    elapsed_ms: t1.as_millis() as u64,
                },
            );
        }
    }

    pub(super) fn on_reinvite_response(
        &mut self,
        id: u64,
        from: usize,
        to: usize,
        server: ServerKey,
        msg: Message,
        status: u16,
    ) {
        if status < 200 {
            return;
        }
        let Some((req, _, _, _)) = self.held.remove(&server) else {
            // Answered already: a retransmitted 2xx (our ACK was lost)
            // is ACKed again (RFC 6026 7.2), nothing else.
            if (200..300).contains(&status) {
                self.ack_2xx(id, to, &msg);
            }
            return;
        };
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let (ftag, ftrunk) = (call.legs[from].local_tag.clone(), call.legs[from].trunk);
        if (200..300).contains(&status) {
            self.ack_2xx(id, to, &msg);
            let Some(call) = self.calls.get_mut(&id) else {
                return;
            };
            let session = call.session;
            let mut out = None;
            if let Some(body) = sdp_body(&msg).map(<[u8]>::to_vec) {
                apply_remote(&mut self.outputs, session, &mut call.legs[to], &body, true);
                if let (Ok(sd), Some(s)) = (sdp::SessionDescription::parse(&body), session) {
                    let ports = md::side_ports(&s, call.legs[from].side);
                    out = md::rewrite(sd, ports, &mut call.legs[from].media, &[]).ok();
                }
            }
            self.answer_reinvite(server, &req, id, from, out.as_deref());
        } else {
            self.reinvite_failed(id, from);
            self.reply(server, &req, status, Some(&ftag), Some(ftrunk));
        }
    }

    /// Copies a response back on server transaction `server` (INFO): the
    /// status, and the body when there is one.
    pub(super) fn relay_response(&mut self, server: ServerKey, msg: &Message, status: u16) {
        let Some((req, call, leg, _)) = self.held.get(&server).cloned() else {
            return;
        };
        let Some(l) = self
            .calls
            .get(&call)
            .map(|c| (c.legs[leg].local_tag.clone(), c.legs[leg].trunk))
        else {
            return;
        };
        let Ok(mut r) = response_to(&req, status, reason_phrase(status), Some(&l.0)) else {
            return;
        };
        if !msg.body().is_empty() {
            let ct = header_text(msg, HeaderName::ContentType);
            let _ = r.set_body(ct.as_deref(), msg.body());
        }
        self.decorate(&mut r, Some(l.1));
        if status >= 200 {
            self.held.remove(&server);
        }
        self.respond(server, r);
    }

    /// ACKs 2xx `ok` on leg `li` when it answers an INVITE of ours in the
    /// dialog (a re-INVITE, a refresh, or its retransmission: RFC 6026
    /// §7.2); a 2xx to an UPDATE is not ACKed.
    pub(super) fn ack_2xx(&mut self, id: u64, li: usize, ok: &Message) {
        let Ok(cseq) = ok.cseq() else {
            return;
        };
        if !cseq.method.eq_ignore_ascii_case("INVITE") {
            return;
        }
        let Some((t, tp)) = self
            .calls
            .get(&id)
            .map(|c| (c.legs[li].trunk, c.legs[li].peer.transport))
        else {
            return;
        };
        let via = self.via(t, tp);
        let Some(leg) = self.calls.get(&id).map(|c| &c.legs[li]) else {
            return;
        };
        if let Some(mut ack) = dialog_request(leg, "ACK", cseq.seq, &via) {
            if let Some(x) = &self.cfg.trunks[t].headers.x_ms_sbc {
                push(&mut ack, "X-MS-SBC", x);
            }
            self.ep.send_stateless(&ack, leg.peer);
        }
    }

    /// Gives up on a request we forwarded (server transaction `server`):
    /// the forwarded INVITE is cancelled, the sender answered `code`.
    pub(super) fn drop_held(&mut self, server: ServerKey, code: u16) {
        let Some(&(_, _, _, client)) = self.held.get(&server) else {
            return;
        };
        if let Ok(ck) = self.ep.cancel(self.now, client) {
            self.clients.insert(ck, Pending::Fire);
        }
        self.answer_server(server, code);
    }

    /// Answers a server transaction we kept (re-INVITE, INFO) with `code`.
    pub(super) fn answer_server(&mut self, server: ServerKey, code: u16) {
        let Some((req, call, leg, _)) = self.held.remove(&server) else {
            return;
        };
        let (tag, trunk) = self.calls.get(&call).map_or((None, None), |c| {
            (Some(c.legs[leg].local_tag.clone()), Some(c.legs[leg].trunk))
        });
        self.reply(server, &req, code, tag.as_deref(), trunk);
    }

    pub(super) fn on_ack(&mut self, msg: Message) {
        let call_id = msg.call_id().unwrap_or("").to_owned();
        let Some(tag) = msg.header(HeaderName::To).and_then(tag_of) else {
            return;
        };
        let Some((id, li)) = self.dialogs.get(&(call_id, tag)).copied() else {
            return;
        };
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        call.legs[li].ok = None;
        if let Some(body) = sdp_body(&msg).map(<[u8]>::to_vec) {
            let session = call.session;
            apply_remote(&mut self.outputs, session, &mut call.legs[li], &body, true);
        }
    }
}

/// Takes a party's SDP (offer or answer) into its leg and the relay: its
/// address, its key (a new key means a new SRTP context, ROC 0), its proto.
/// An `answer` to our offer without `a=rtcp-mux` turns multiplexing off
/// toward the party (RFC 5761 §5.1.1).
pub(super) fn apply_remote(
    out: &mut VecDeque<Output>,
    session: Option<SessionInfo>,
    leg: &mut Leg,
    body: &[u8],
    answer: bool,
) {
    let Ok(sd) = sdp::SessionDescription::parse(body) else {
        tracing::info!("unparsable SDP from a party ignored");
        return;
    };
    let remote = match md::read_stream(&sd) {
        Ok(r) => r,
        Err(e) => {
            tracing::info!(%e, "SDP from a party not usable");
            return;
        }
    };
    leg.media.prev_remote_sdp = leg.media.last_remote_sdp.replace(body.to_vec());
    let key_changed =
        leg.media.their_key.as_ref().map(|(p, _)| p) != remote.key.as_ref().map(|(p, _)| p);
    leg.media.their_key = remote.key.clone();
    leg.media.proto = remote.proto.clone();
    let rtp = remote
        .rtp
        .filter(|a| a.port() != 0 && !a.ip().is_unspecified());
    if rtp.is_some() {
        leg.media.remote = rtp;
    }
    let Some(s) = session else {
        return;
    };
    let crypto = key_changed.then(|| leg.media.crypto_spec());
    let mux_off = answer && leg.media.mux && !remote.mux;
    if mux_off {
        leg.media.mux = false;
    }
    let rtcp = if rtp.is_some() && !remote.mux {
        remote.rtcp
    } else {
        None
    };
    out.push_back(Output::Media(MediaOp::Update {
        id: s.id,
        side: leg.side,
        remote_rtp: rtp,
        remote_rtcp: rtcp,
        crypto,
        rtcp_mux: mux_off.then_some(false),
    }));
    out.push_back(Output::Media(remote.payload_op(s.id, leg.side)));
}

/// An in-dialog request on `leg` (RFC 3261 §12.2.1.1): Request-URI the
/// remote target, Route the route set, From/To with the dialog's tags.
pub(super) fn dialog_request(leg: &Leg, method: &str, cseq: u32, via: &str) -> Option<Message> {
    let target = leg.remote_target.clone()?;
    let mut m = Message::new_request(method, target.as_bytes()).ok()?;
    push(&mut m, "Via", via);
    push(&mut m, "Max-Forwards", "70");
    let local = format!("{};tag={}", leg.local_uri, leg.local_tag);
    let remote = match &leg.remote_tag {
        Some(t) => format!("{};tag={t}", leg.remote_uri),
        None => leg.remote_uri.clone(),
    };
    push(&mut m, "From", &local);
    push(&mut m, "To", &remote);
    push(&mut m, "Call-ID", &leg.call_id);
    push(&mut m, "CSeq", &format!("{cseq} {method}"));
    for r in &leg.route_set {
        push(&mut m, "Route", r);
    }
    if matches!(method, "INVITE" | "REFER" | "NOTIFY" | "UPDATE") {
        push(&mut m, "Contact", &leg.contact);
    }
    push(&mut m, "Content-Length", "0");
    Some(m)
}
