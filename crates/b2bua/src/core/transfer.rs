use super::*;

impl B2bua {
    /// REFER from a party (Microsoft as transferor, RFC 5589): 202, NOTIFY
    /// 100 Trying, a new INVITE to the Refer-To target with Referred-By
    /// copied; the other party's media is re-pointed when the target answers.
    pub(super) fn refer(&mut self, key: ServerKey, msg: Message, id: u64, li: usize) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let tag = call.legs[li].local_tag.clone();
        let trunk = call.legs[li].trunk;
        if call.state != CallState::Answered || call.refer.is_some() {
            self.reply(key, &msg, 491, Some(&tag), Some(trunk));
            return;
        }
        let Some(target) = header_by_name(&msg, "Refer-To")
            .or_else(|| header_by_name(&msg, "r"))
            .and_then(|v| uri_of(v.as_bytes()))
        else {
            self.reply(key, &msg, 400, Some(&tag), Some(trunk));
            return;
        };
        // Header parameters of the Refer-To URI (`?Replaces=…`) are never
        // sent on (Microsoft refuses Replaces).
        let target = target.split('?').next().unwrap_or(&target).to_owned();
        let referred_by = header_by_name(&msg, "Referred-By").or_else(|| header_by_name(&msg, "b"));
        // Which trunk: the one whose peer the target names (a Teams user,
        // sent on verbatim), else a route for the target's number.
        let host = sip::Uri::parse(target.as_bytes())
            .ok()
            .and_then(|u| u.as_sip().map(|s| s.host_raw.to_ascii_lowercase()));
        let by_host = host.as_ref().and_then(|h| {
            self.cfg
                .trunks
                .iter()
                .position(|t| t.peers.iter().any(|p| p.host.eq_ignore_ascii_case(h)))
        });
        let number = number_of(target.as_bytes()).filter(|n| crate::is_number(n));
        // An E.164 target (a PSTN number) is routed like a call from the
        // transferor's trunk; a target without a number (a Teams user,
        // `x-m`/`x-t`) goes verbatim to the trunk whose peer it names.
        let routed = number.as_ref().and_then(|n| {
            let tn = &self.cfg.trunks[trunk];
            let n = tn.numbers_in.called(n);
            self.cfg
                .routes
                .select(&tn.name, &n)
                .and_then(|r| r.to.first())
                .and_then(|d| self.trunk_index(&d.trunk))
        });
        let (dest, ruri) = match (routed, by_host) {
            (Some(t), _) => (Some(t), None),
            (None, Some(t)) => (Some(t), Some(target.clone())),
            (None, None) => (None, None),
        };
        let Some(dest) = dest else {
            self.reply(key, &msg, 404, Some(&tag), Some(trunk));
            return;
        };
        self.reply(key, &msg, 202, Some(&tag), Some(trunk));
        self.notify(id, li, "SIP/2.0 100 Trying", false);
        let called = number.clone().unwrap_or_else(|| target.clone());
        match self.transfer_invite(id, li, dest, ruri, &called, referred_by.as_deref()) {
            Ok(new_leg) => {
                if let Some(c) = self.calls.get_mut(&id) {
                    c.refer = Some(Refer {
                        from_leg: li,
                        new_leg,
                    });
                }
            }
            Err(e) => {
                tracing::warn!(call = id, %e, "transfer INVITE not sent");
                self.notify(id, li, "SIP/2.0 503 Service Unavailable", true);
            }
        }
    }

    /// NOTIFY with a sipfrag body on leg `li` (the REFER's dialog).
    pub(super) fn notify(&mut self, id: u64, li: usize, frag: &str, last: bool) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let via = self.via(call.legs[li].trunk, call.legs[li].peer.transport);
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let leg = &mut call.legs[li];
        leg.local_cseq += 1;
        let Some(mut m) = dialog_request(leg, "NOTIFY", leg.local_cseq, &via) else {
            return;
        };
        push(&mut m, "Event", "refer");
        let state = if last {
            "terminated;reason=noresource"
        } else {
            "active;expires=60"
        };
        push(&mut m, "Subscription-State", state);
        let _ = m.set_body(
            Some("message/sipfrag;version=2.0"),
            format!("{frag}\r\n").as_bytes(),
        );
        let (peer, t) = (leg.peer, leg.trunk);
        self.decorate(&mut m, Some(t));
        if let Ok(k) = self.ep.send_request(self.now, m, peer) {
            self.clients.insert(k, Pending::Fire);
        }
    }

    /// The INVITE of a transfer toward trunk `t`: Request-URI the Refer-To
    /// URI (or one built for the number), From the party that stays,
    /// Referred-By copied, SDP on the transferor's relay side with a fresh key.
    pub(super) fn transfer_invite(
        &mut self,
        id: u64,
        li: usize,
        t: usize,
        ruri: Option<String>,
        called: &str,
        referred_by: Option<&str>,
    ) -> Result<usize, String> {
        let health_order = self.health[t].order();
        let pi = *health_order.first().ok_or("trunk has no peer")?;
        let call_id = format!("{}@{}", self.unique(), self.cfg.trunks[t].fqdn);
        let tag = self.unique();
        let trunk = &self.cfg.trunks[t];
        let peer = &trunk.peers[pi];
        let via = self.via(t, peer.transport);
        let trunk = &self.cfg.trunks[t];
        let peer = &trunk.peers[pi];
        let call = self.calls.get(&id).ok_or("call gone")?;
        let stay = Self::other(call, li).ok_or("no other party")?;
        let staying_number = if stay == call.a {
            &call.calling
        } else {
            &call.called
        };
        let calling = plus_if(trunk.e164, &trunk.numbers_out.calling(staying_number));
        let phone = if trunk.e164 { ";user=phone" } else { "" };
        let called_out = plus_if(trunk.e164, &trunk.numbers_out.called(called));
        let tparam = if peer.transport == Transport::Udp {
            String::new()
        } else {
            format!(";transport={}", uri_transport(peer.transport))
        };
        let ruri = ruri.unwrap_or_else(|| {
            format!(
                "sip:{called_out}@{}:{}{phone}{tparam}",
                peer.host, peer.port
            )
        });
        let to = format!("<{ruri}>");
        let from = format!("<sip:{calling}@{}{phone}>", trunk.fqdn);
        let contact = trunk.contact_with_user(&calling);
        let mut m = Message::new_request("INVITE", ruri.as_bytes()).map_err(|e| e.to_string())?;
        push(&mut m, "Via", &via);
        push(&mut m, "Max-Forwards", "70");
        push(&mut m, "From", &format!("{from};tag={tag}"));
        push(&mut m, "To", &to);
        push(&mut m, "Call-ID", &call_id);
        push(&mut m, "CSeq", "1 INVITE");
        push(&mut m, "Contact", &contact);
        push(&mut m, "Allow", ALLOW);
        if let Some(rb) = referred_by {
            push(&mut m, "Referred-By", rb);
        }
        let side = call.legs[li].side;
        let session = call.session.ok_or("no media session")?;
        let mut media = PartyMedia {
            proto: proto_of(trunk.media).to_owned(),
            mux: call.legs[li].media.mux,
            ..PartyMedia::default()
        };
        let codecs = trunk.codecs.clone();
        let source = call.legs[stay].media.last_remote_sdp.clone();
        let (addr, transport) = (
            peer.addr.ok_or("peer address not resolved")?,
            peer.transport,
        );
        md::ensure_key(self.ctl.as_mut(), &mut media, None, 1)?;
        let ports = md::side_ports(&session, side);
        let body = match source.as_deref().map(sdp::SessionDescription::parse) {
            Some(Ok(sd)) => md::rewrite(sd, ports, &mut media, &codecs)?,
            _ => md::generate_offer(ports, &mut media, &codecs, id),
        };
        m.set_body(Some("application/sdp"), &body)
            .map_err(|e| e.to_string())?;
        self.decorate(&mut m, Some(t));
        let to_peer = self.fit_transport(t, &mut m, Peer::new(addr, transport).for_trunk(t), true);
        let key = self
            .ep
            .send_request(self.now, m, to_peer)
            .map_err(|e| e.to_string())?;
        let leg = Leg {
            peer_index: Some(pi),
            uac: true,
            local_uri: from,
            remote_uri: to,
            local_cseq: 1,
            invite: Some(key),
            media,
            ..Leg::new(t, side, to_peer, call_id.clone(), tag.clone(), contact)
        };
        let call = self.calls.get_mut(&id).ok_or("call gone")?;
        call.legs.push(leg);
        let nl = call.legs.len() - 1;
        self.dialogs.insert((call_id, tag), (id, nl));
        self.clients
            .insert(key, Pending::Invite { call: id, leg: nl });
        self.active[t] += 1;
        // The same per-attempt timer as a call's attempts: a silent target
        // fails the transfer in seconds, not after Timer B.
        let at = self.now + self.cfg.trunks[t].invite_timeout;
        self.arm(at, Timer::Invite { call: id, leg: nl });
        Ok(nl)
    }

    /// The transfer target answered: it replaces the transferor's leg.
    pub(super) fn transfer_answered(&mut self, id: u64, nl: usize, _msg: &Message) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let Some(r) = call.refer.take() else {
            return;
        };
        let old = r.from_leg;
        // The relay sends with the new leg's key from now on (a fresh
        // context, ROC 0) and receives with the target's.
        if let Some(s) = call.session {
            let spec = call.legs[nl].media.crypto_spec();
            let remote = call.legs[nl].media.remote;
            self.outputs.push_back(Output::Media(MediaOp::Update {
                id: s.id,
                side: call.legs[nl].side,
                remote_rtp: remote,
                remote_rtcp: None,
                crypto: Some(spec),
                rtcp_mux: Some(call.legs[nl].media.mux),
            }));
        }
        if call.a == old {
            call.a = nl;
        } else {
            call.b = Some(nl);
        }
        call.transfers += 1;
        self.counters.transfers += 1;
        tracing::info!(call = id, "transfer completed");
        self.notify(id, old, "SIP/2.0 200 OK", true);
        self.bye(id, old);
    }

    pub(super) fn transfer_failed(&mut self, id: u64, nl: usize, status: u16) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let Some(r) = call.refer.take() else {
            return;
        };
        let _ = nl;
        tracing::info!(call = id, status, "transfer failed");
        self.notify(
            id,
            r.from_leg,
            &format!("SIP/2.0 {status} {}", reason_phrase(status)),
            true,
        );
    }

    /// INVITE with Replaces (RFC 3891) from a party: it takes the place of
    /// the dialog it names; the other party never notices.
    pub(super) fn replaces(
        &mut self,
        key: ServerKey,
        msg: Message,
        from: Peer,
        trunk: usize,
        rep: &str,
        tag: String,
    ) {
        let mut parts = rep.split(';').map(str::trim);
        let cid = parts.next().unwrap_or("").to_owned();
        let mut tags = Vec::new();
        for p in parts {
            if let Some((k, v)) = p.split_once('=') {
                if k.eq_ignore_ascii_case("to-tag") || k.eq_ignore_ascii_case("from-tag") {
                    tags.push(v.to_owned());
                }
            }
        }
        let found = tags
            .iter()
            .find_map(|t| self.dialogs.get(&(cid.clone(), t.clone())).copied());
        let Some((id, old)) = found else {
            self.reply(key, &msg, 481, Some(&tag), Some(trunk));
            return;
        };
        let Some(call) = self.calls.get(&id) else {
            self.reply(key, &msg, 481, Some(&tag), Some(trunk));
            return;
        };
        if call.state != CallState::Answered || call.legs[old].state != LegState::Confirmed {
            self.reply(key, &msg, 481, Some(&tag), Some(trunk));
            return;
        }
        let Some(body) = sdp_body(&msg).map(<[u8]>::to_vec) else {
            self.reply(key, &msg, 488, Some(&tag), Some(trunk));
            return;
        };
        let Ok(sd) = sdp::SessionDescription::parse(&body) else {
            self.reply(key, &msg, 488, Some(&tag), Some(trunk));
            return;
        };
        let Ok(remote) = md::read_remote(&sd) else {
            self.reply(key, &msg, 488, Some(&tag), Some(trunk));
            return;
        };
        let side = call.legs[old].side;
        let session = call.session;
        let t = &self.cfg.trunks[trunk];
        let contact = t.contact();
        let mut leg = uas_leg(&msg, from, trunk, side, tag.clone(), contact);
        leg.media = PartyMedia {
            proto: remote.proto.clone(),
            their_key: remote.key.clone(),
            mux: remote.mux,
            remote: remote.rtp,
            last_remote_sdp: Some(body.clone()),
            ..PartyMedia::default()
        };
        let their_tag = remote.key.as_ref().map_or(1, |(_, t)| *t);
        if md::ensure_key(self.ctl.as_mut(), &mut leg.media, remote.suite, their_tag).is_err() {
            self.reply(key, &msg, 500, Some(&tag), Some(trunk));
            return;
        }
        let Some(s) = session else {
            self.reply(key, &msg, 500, Some(&tag), Some(trunk));
            return;
        };
        let out = match md::rewrite(sd, md::side_ports(&s, side), &mut leg.media, &[]) {
            Ok(o) => o,
            Err(_) => {
                self.reply(key, &msg, 488, Some(&tag), Some(trunk));
                return;
            }
        };
        self.outputs.push_back(Output::Media(MediaOp::Update {
            id: s.id,
            side,
            remote_rtp: remote.rtp,
            remote_rtcp: remote.rtcp.filter(|_| !remote.mux),
            crypto: Some(leg.media.crypto_spec()),
            rtcp_mux: Some(remote.mux),
        }));
        leg.state = LegState::Confirmed;
        let call_id = leg.call_id.clone();
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        call.legs.push(leg);
        let nl = call.legs.len() - 1;
        if call.a == old {
            call.a = nl;
        } else {
            call.b = Some(nl);
        }
        call.transfers += 1;
        self.active[trunk] += 1;
        self.dialogs.insert((call_id, tag), (id, nl));
        self.counters.transfers += 1;
        tracing::info!(call = id, "dialog replaced");
        self.answer_reinvite(key, &msg, id, nl, Some(&out));
        self.bye(id, old);
    }
}
