use routing::{Next, Target};

use super::*;

/// How one registered contact of a user is reached: its URI (the
/// Request-URI), the flow it registered over (requests go through it: the
/// connection for TCP/TLS, the source address for UDP), its Path (RFC
/// 3327, sent as Route).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Reach {
    /// The contact URI.
    pub(super) uri: String,
    /// Where requests for it go.
    pub(super) peer: Peer,
    /// Route values (the binding's Path), in order.
    pub(super) path: Vec<String>,
    /// Our address the phone registered to (what it can reach us at).
    pub(super) local: SocketAddr,
}

/// Our Contact toward a phone: phones cannot be expected to resolve the
/// SBC's FQDN, so a phones trunk without `contact_host` gets the address
/// the phone reached us at (`local`). `None`: the trunk's own Contact.
pub(super) fn phone_contact(
    t: &TrunkSpec,
    user: &str,
    local: Option<SocketAddr>,
    transport: Transport,
) -> Option<String> {
    if t.kind != trunk::TrunkKind::Phones || t.contact_host.is_some() {
        return None;
    }
    let local = local.filter(|l| !l.ip().is_unspecified() && l.port() != 0)?;
    let host = match local.ip() {
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        ip => ip.to_string(),
    };
    let at = if user.is_empty() {
        String::new()
    } else {
        format!("{user}@")
    };
    Some(format!(
        "<sip:{at}{host}:{};transport={}>",
        local.port(),
        uri_transport(transport)
    ))
}

impl B2bua {
    pub(super) fn trunk_index(&self, name: &str) -> Option<usize> {
        live_named(&self.cfg.trunks, &self.retired, name)
    }

    pub(super) fn new_call(&mut self, key: ServerKey, msg: Message, from: Peer, trunk: usize) {
        let tag = self.unique();
        let called = called_number(&msg, &self.cfg.trunks[trunk]);
        // Never refused for load: not while draining, not at a limit.
        let emergency = emergency_call(&msg, &self.cfg.trunks[trunk], &called);
        if self.draining && !emergency {
            self.counters.refused_draining += 1;
            self.reply(key, &msg, 503, Some(&tag), Some(trunk));
            return;
        }
        if msg.max_forwards().ok().flatten() == Some(0) {
            self.reply(key, &msg, 483, Some(&tag), Some(trunk));
            return;
        }
        if let Some(rep) = header_by_name(&msg, "Replaces") {
            self.replaces(key, msg, from, trunk, &rep, tag);
            return;
        }
        // 100rel (RFC 3262) and the session interval (RFC 4028) asked for.
        let Ok(reliable) = self.caller_rel(key, &msg, trunk, &tag) else {
            return;
        };
        let granted = refresh::grant(&msg, &self.cfg.trunks[trunk]);
        if let refresh::Granted::TooSmall(min) = granted {
            self.counters.interval_too_small += 1;
            if let Ok(mut r) = response_to(&msg, 422, "Session Interval Too Small", Some(&tag)) {
                push(&mut r, "Min-SE", &min.to_string());
                self.decorate(&mut r, Some(trunk));
                self.respond(key, r);
            }
            return;
        }
        // A phone's call: its user, authenticated (407), is the caller.
        let mut caller = None;
        if self.takes_registers(trunk) {
            match self.phone_caller(key, &msg, from, trunk) {
                Some(n) => caller = Some(n),
                None => return,
            }
        }
        let t = &self.cfg.trunks[trunk];
        if !emergency && t.max_calls.is_some_and(|m| self.active[trunk] >= m) {
            tracing::info!(trunk = %t.name, "call limit reached");
            self.reply(key, &msg, 503, Some(&tag), Some(trunk));
            return;
        }
        if !self.cps_admit(trunk, emergency) {
            self.refuse_cps(key, &msg, &tag, trunk);
            return;
        }
        if let Some(Err(e)) = crate::multipart::of(&msg) {
            self.counters.bad_bodies += 1;
            tracing::info!(%e, "unreadable multipart body: 400");
            if let Ok(mut r) = response_to(&msg, 400, e.reason(), Some(&tag)) {
                self.decorate(&mut r, Some(trunk));
                self.respond(key, r);
            }
            return;
        }
        let t = &self.cfg.trunks[trunk];
        let from_uri = msg
            .header(HeaderName::From)
            .and_then(uri_of)
            .unwrap_or_default();
        let calling_raw = caller
            .or_else(|| number_of(from_uri.as_bytes()))
            .unwrap_or_else(|| "anonymous".into());
        let calling = t.numbers_in.calling(&calling_raw);
        let display = msg.header(HeaderName::From).and_then(display_of);
        let Some(route) = self.cfg.routes.select(&t.name, &called) else {
            self.counters.no_route += 1;
            let called = crate::redact(&called, self.cfg.mask_numbers);
            tracing::info!(trunk = %t.name, %called, "no route");
            self.reply(key, &msg, 404, Some(&tag), Some(trunk));
            return;
        };
        let (health, trunks, retired) = (&self.health, &self.cfg.trunks, &self.retired);
        let plan = Plan::new(route, |name| ranking(trunks, health, retired, name));
        let route_name = route.name.clone();
        let first_dest = route.to.first().and_then(|d| self.trunk_index(&d.trunk));
        // The caller's media.
        let offer = sdp_body(&msg).map(|b| b.to_vec());
        let remote: Option<Remote> = match offer.as_deref().map(sdp::SessionDescription::parse) {
            None => None,
            Some(Ok(sd)) => match md::read_remote(&sd) {
                Ok(r) => Some(r),
                Err(e) => {
                    tracing::info!(%e, "offer refused");
                    self.reply(key, &msg, 488, Some(&tag), Some(trunk));
                    return;
                }
            },
            Some(Err(e)) => {
                tracing::info!(%e, "unparsable SDP");
                self.reply(key, &msg, 488, Some(&tag), Some(trunk));
                return;
            }
        };
        let t = &self.cfg.trunks[trunk];
        let mut ma = PartyMedia {
            proto: remote
                .as_ref()
                .map_or_else(|| proto_of(t.media).to_owned(), |r| r.proto.clone()),
            their_key: remote.as_ref().and_then(|r| r.key.clone()),
            mux: remote.as_ref().is_some_and(|r| r.mux),
            remote: remote.as_ref().and_then(|r| r.rtp),
            last_remote_sdp: offer.clone(),
            ..PartyMedia::default()
        };
        let their_tag = remote
            .as_ref()
            .and_then(|r| r.key.as_ref().map(|(_, t)| *t))
            .unwrap_or(1);
        if let Err(e) = md::ensure_key(
            self.ctl.as_mut(),
            &mut ma,
            remote.as_ref().and_then(|r| r.suite),
            their_tag,
        ) {
            tracing::warn!(%e, "no SRTP key");
            self.reply(key, &msg, 500, Some(&tag), Some(trunk));
            return;
        }
        let ia = self.ctl.interface(t.media_interface.as_deref());
        let b_trunk = first_dest.map(|i| &self.cfg.trunks[i]);
        let ib = self
            .ctl
            .interface(b_trunk.and_then(|t| t.media_interface.as_deref()));
        let mb = PartyMedia {
            mux: b_trunk.is_some_and(|t| t.media == MediaSecurity::Srtp),
            ..PartyMedia::default()
        };
        let (la, lb) = (
            md::leg_spec(ia, &ma, remote.as_ref()),
            md::leg_spec(ib, &mb, None),
        );
        // An emergency call may take the relay's reserved ports.
        let created = if emergency {
            self.ctl.create_emergency(la, lb)
        } else {
            self.ctl.create(la, lb)
        };
        let session = match created {
            Ok(s) => s,
            // The relay is out of ports or descriptors, or lags behind
            // (its set-up backlog is full): this call only gets 503 with
            // Retry-After; the relay counts the refusal (info: under
            // overload there is one per call).
            Err(e) => {
                tracing::info!(%e, "no media session; 503");
                self.reply(key, &msg, 503, Some(&tag), Some(trunk));
                return;
            }
        };
        let contact = {
            // A URN (`urn:service:sos`) is no Contact user.
            let user = if called.starts_with("urn:") {
                String::new()
            } else {
                plus_if(t.e164, &called)
            };
            let local = self.class.map(|(_, l)| l);
            phone_contact(t, &user, local, from.transport).unwrap_or_else(|| {
                if user.is_empty() {
                    t.contact()
                } else {
                    t.contact_with_user(&user)
                }
            })
        };
        let mut leg = uas_leg(&msg, from, trunk, Side::A, tag.clone(), contact);
        leg.media = ma;
        if let refresh::Granted::Timer {
            expires,
            sbc_refreshes,
        } = granted
        {
            leg.session_expires = Some(expires);
            leg.sbc_refreshes = sbc_refreshes;
        }
        if reliable {
            leg.rel = Some(Box::new(prack::Rel::toward_caller()));
        }
        let id = self.next_call;
        self.next_call += 1;
        self.dialogs.insert((leg.call_id.clone(), tag), (id, 0));
        self.invites.insert(key, id);
        self.active[trunk] += 1;
        self.counters.calls += 1;
        let m = self.cfg.mask_numbers;
        let (calling_m, called_m) = (crate::redact(&calling, m), crate::redact(&called, m));
        if emergency {
            self.counters.emergency_calls += 1;
            tracing::warn!(call = id, from = %self.cfg.trunks[trunk].name, calling = %calling_m, called = %called_m, route = %route_name, "emergency call");
        } else {
            tracing::info!(call = id, from = %self.cfg.trunks[trunk].name, calling = %calling_m, called = %called_m, route = %route_name, "new call");
        }
        let call = Call {
            id,
            state: CallState::Routing,
            start: self.now,
            session: Some(session),
            legs: {
                // Two legs in nearly every call (a transfer adds a third).
                let mut legs = Vec::with_capacity(2);
                legs.push(leg);
                legs
            },
            a: 0,
            b: None,
            forks: Vec::new(),
            a_invite: Some(key),
            late_offer: offer.is_none(),
            a_request: Some(Box::new(msg)),
            plan: Some(plan),
            attempts: Vec::new(),
            relayed_18x: false,
            last_relayed: None,
            calling,
            called,
            display,
            route: Some(route_name),
            ringing: None,
            answered: None,
            status: 0,
            reason: String::new(),
            ended_by: String::new(),
            transfers: 0,
            refer: None,
            cdr_done: false,
            timers: Vec::new(),
            from_trunk: trunk,
            emergency,
            se_floor: 0,
        };
        let window = call.plan.as_ref().and_then(Plan::forward_window);
        self.calls.insert(id, Box::new(call));
        if let Some(w) = window {
            // Forward-on-failure: the caller hears ringing while the
            // attempts run (our own 180: it does not stop failover).
            self.arm(self.now + w, Timer::Window { call: id });
            self.ring_caller(id);
        }
        let next = self
            .calls
            .get_mut(&id)
            .and_then(|c| c.plan.as_mut())
            .map(Plan::start);
        if let Some(next) = next {
            self.follow(id, next);
        }
    }

    /// Our own 180 Ringing to the caller (no SDP).
    fn ring_caller(&mut self, id: u64) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let (Some(server), Some(req)) = (call.a_invite, call.a_request.as_deref()) else {
            return;
        };
        let a = call.a;
        let Ok(mut r) = response_to(req, 180, "Ringing", Some(&call.legs[a].local_tag)) else {
            return;
        };
        push(&mut r, "Contact", &call.legs[a].contact);
        call.last_relayed = Some(180);
        call.ringing.get_or_insert(self.now);
        let trunk = call.legs[a].trunk;
        self.decorate(&mut r, Some(trunk));
        self.send_provisional(id, server, r);
    }

    /// Does what the plan says next: start an attempt (skipping, through
    /// the plan, those that cannot start), or end the call.
    pub(super) fn follow(&mut self, id: u64, mut next: Next) {
        loop {
            let att = match next {
                Next::Fail {
                    code,
                    reason,
                    callee,
                } => {
                    self.counters.failed += 1;
                    let by = if callee { "callee" } else { "sbc" };
                    self.end_call(id, &reason, by, code);
                    return;
                }
                Next::Try(att) => att,
            };
            let Some(call) = self.calls.get(&id) else {
                return;
            };
            let first = call.attempts.is_empty();
            let (emergency, called) = (call.emergency, call.called.clone());
            // Whether the whole destination is skipped (a trunk at its
            // limits; never for an emergency call).
            let whole = match self.trunk_index(&att.trunk) {
                None => false,
                Some(t)
                    if !emergency
                        && self.cfg.trunks[t]
                            .max_calls
                            .is_some_and(|m| self.active[t] >= m) =>
                {
                    self.record(id, &att, "limit");
                    true
                }
                Some(t)
                    if !matches!(att.target, Target::User(_) | Target::Registered)
                        && self.cfg.trunks[t]
                            .peers
                            .get(att.peer)
                            .and_then(|p| p.addr)
                            .is_none() =>
                {
                    self.record(id, &att, "unresolved");
                    false
                }
                // Over its calls per second: the next destination, as at
                // `max_calls` (the check takes the attempt's call).
                Some(t) if !self.cps_admit(t, emergency) => {
                    tracing::info!(call = id, trunk = %att.trunk, "destination over its calls per second");
                    self.record(id, &att, "cps");
                    true
                }
                Some(t) if matches!(att.target, Target::User(_) | Target::Registered) => {
                    let number = match &att.target {
                        Target::User(n) => n.clone(),
                        _ => called,
                    };
                    if !first {
                        self.counters.failovers += 1;
                    }
                    match self.start_forks(id, &att, t, &number) {
                        Ok(true) => return,
                        Ok(false) => {
                            // Not registered: as if the user answered 480.
                            self.record(id, &att, "unregistered");
                            let Some(plan) = self.calls.get_mut(&id).and_then(|c| c.plan.as_mut())
                            else {
                                return;
                            };
                            next = plan.on_outcome(Outcome::Final(480), &[480], false);
                            continue;
                        }
                        Err(e) => {
                            tracing::warn!(call = id, %e, "forks not started");
                            self.record(id, &att, "error");
                            false
                        }
                    }
                }
                Some(t) => {
                    if att.is_forward() {
                        self.counters.forwarded += 1;
                        self.disarm(id, |t| matches!(t, Timer::Window { .. }));
                        tracing::info!(call = id, trunk = %att.trunk, "forward on failure");
                    } else if !first {
                        self.counters.failovers += 1;
                        tracing::info!(call = id, trunk = %att.trunk, host = %self.cfg.trunks[t].peers[att.peer].host, last_resort = att.last_resort, "failing over");
                    }
                    match self.start_attempt(id, &att, t, true) {
                        Ok(()) => return,
                        Err(e) => {
                            tracing::warn!(call = id, %e, "attempt not started");
                            self.record(id, &att, "error");
                            false
                        }
                    }
                }
            };
            let Some(plan) = self.calls.get_mut(&id).and_then(|c| c.plan.as_mut()) else {
                return;
            };
            next = plan.skip(whole);
        }
    }

    /// Gives up on the attempt of leg `li` without waiting for it: CANCEL
    /// once it shows life (a late 2xx is ACKed and hung up), its trunk slot
    /// freed, `why` in the CDR.
    pub(super) fn abandon(&mut self, id: u64, li: usize, why: &str) {
        let Some(c) = self.calls.get_mut(&id) else {
            return;
        };
        if c.legs[li].state != LegState::Trying {
            return;
        }
        if let Some(k) = c.legs[li].invite {
            if let Ok(ck) = self.ep.cancel(self.now, k) {
                self.clients.insert(ck, Pending::Fire);
            }
        }
        if let Some(att) = c.legs[li].attempt.and_then(|a| c.attempts.get_mut(a)) {
            att.outcome = why.to_owned();
        }
        call_leg_end(&mut self.calls, &mut self.active, id, li);
        self.disarm(id, |t| {
            matches!(t, Timer::Invite { leg, .. } | Timer::Provisional { leg, .. } if *leg == li)
        });
    }

    /// The forward-on-failure window or ring timeout passed: what is
    /// pending is cancelled and the plan's forward destination called.
    pub(super) fn forward_now(&mut self, id: u64, ring: bool) {
        let Some(c) = self.calls.get(&id) else {
            return;
        };
        if c.state != CallState::Routing || (!ring && c.relayed_18x) {
            return;
        }
        let mut pending: Vec<usize> = c.forks.clone();
        pending.extend(c.b);
        pending.retain(|&l| c.legs[l].state == LegState::Trying);
        pending.dedup();
        for li in pending {
            self.abandon(id, li, if ring { "ring timeout" } else { "window" });
        }
        let Some(plan) = self.calls.get_mut(&id).and_then(|c| c.plan.as_mut()) else {
            return;
        };
        let next = if ring {
            plan.on_ring_timeout()
        } else {
            plan.on_window()
        };
        self.follow(id, next);
    }

    pub(super) fn record(&mut self, id: u64, att: &Attempt, outcome: &str) -> usize {
        let host = self
            .trunk_index(&att.trunk)
            .and_then(|t| self.cfg.trunks[t].peers.get(att.peer))
            .map(|p| p.host.clone())
            .unwrap_or_default();
        let Some(call) = self.calls.get_mut(&id) else {
            return 0;
        };
        let at_ms = self.now.saturating_duration_since(call.start).as_millis() as u64;
        call.attempts.push(AttemptRecord {
            trunk: att.trunk.clone(),
            peer: host,
            outcome: outcome.to_owned(),
            at_ms,
            label: att.label.clone(),
        });
        call.attempts.len() - 1
    }

    /// Writes and sends the INVITE of an attempt toward peer `att.peer` of
    /// trunk `t`; over TCP when it is too large for UDP and `tcp` allows it
    /// (false: the retry over UDP after TCP was refused).
    pub(super) fn start_attempt(
        &mut self,
        id: u64,
        att: &Attempt,
        t: usize,
        tcp: bool,
    ) -> Result<(), String> {
        let li = self.send_invite(id, att, t, None, tcp)?;
        if let Some(c) = self.calls.get_mut(&id) {
            c.forks.clear();
            c.b = Some(li);
        }
        Ok(())
    }

    /// The INVITE of attempt `att` through trunk `t`: to its peer
    /// `att.peer`, or to `contact` (one registered contact of a user: its
    /// URI, its flow, its Path as Route).
    pub(super) fn send_invite(
        &mut self,
        id: u64,
        att: &Attempt,
        t: usize,
        contact_of_user: Option<&Reach>,
        tcp: bool,
    ) -> Result<usize, String> {
        let ai = self.record(id, att, "pending");
        if let (Some(r), Some(c)) = (contact_of_user, self.calls.get_mut(&id)) {
            if let Some(a) = c.attempts.get_mut(ai) {
                a.peer.clone_from(&r.uri);
            }
        }
        let call_id = format!("{}@{}", self.unique(), self.cfg.trunks[t].fqdn);
        let tag = self.unique();
        let transport = match contact_of_user {
            Some(r) => r.peer.transport,
            None => {
                self.cfg.trunks[t]
                    .peers
                    .get(att.peer)
                    .ok_or("no such peer")?
                    .transport
            }
        };
        let via = self.via(t, transport);
        let trunk = &self.cfg.trunks[t];
        let peer = match contact_of_user {
            Some(_) => None,
            None => Some(&trunk.peers[att.peer]),
        };
        let call = self.calls.get(&id).ok_or("call gone")?;
        // An external number (forward on failure) is called instead of the
        // called number, which goes along as Diversion / History-Info.
        let dialled = match &att.target {
            Target::Number(n) | Target::User(n) => n.as_str(),
            Target::Trunk | Target::Registered => call.called.as_str(),
        };
        let diverted = matches!(att.target, Target::Number(_) | Target::User(_));
        let called = plus_if(trunk.e164, &trunk.numbers_out.called(dialled));
        let calling_n = trunk.numbers_out.calling(&call.calling);
        let calling_is_number = crate::is_number(&calling_n);
        let calling = plus_if(trunk.e164, &calling_n);
        let tp = uri_transport(transport);
        let phone = if trunk.e164 { ";user=phone" } else { "" };
        let tparam = if transport == Transport::Udp {
            String::new()
        } else {
            format!(";transport={tp}")
        };
        let (ruri, to) = match (peer, contact_of_user) {
            // A `sos` URN not made a number by the rules goes on as the
            // Request-URI (RFC 5031: toward an ESRP or a PSAP that takes it).
            (Some(_), _) if called.starts_with("urn:service:sos") => {
                (called.clone(), format!("<{called}>"))
            }
            (Some(peer), _) => (
                format!("sip:{called}@{}:{}{phone}{tparam}", peer.host, peer.port),
                format!("<sip:{called}@{}{phone}>", peer.host),
            ),
            // A registered user: the Request-URI is its contact, To its
            // address of record at our domain.
            (None, Some(r)) => (r.uri.clone(), format!("<sip:{called}@{}>", trunk.fqdn)),
            (None, None) => return Err("no destination".into()),
        };
        let display = match (&att.label, &call.display) {
            (Some(l), Some(d)) => Some(format!("{l} {d}")),
            (Some(l), None) => Some(l.clone()),
            (None, d) => d.clone(),
        };
        let from_uri = if calling_is_number {
            format!("<sip:{calling}@{}{phone}>", trunk.fqdn)
        } else {
            "<sip:anonymous@anonymous.invalid>".to_owned()
        };
        let from = match (&display, calling_is_number) {
            (Some(d), _) => format!("{} {from_uri}", quoted(d)),
            (None, false) => format!("\"Anonymous\" {from_uri}"),
            (None, true) => from_uri,
        };
        let user = if calling_is_number {
            calling.as_str()
        } else {
            ""
        };
        let local = contact_of_user.map(|r| r.local);
        let contact = match phone_contact(trunk, user, local, transport) {
            Some(c) => c,
            None if calling_is_number => trunk.contact_with_user(&calling),
            None => trunk.contact(),
        };
        let a_request = call.a_request.as_deref().ok_or("caller already answered")?;
        let mf = a_request
            .max_forwards()
            .ok()
            .flatten()
            .map_or(70, |m| m.saturating_sub(1).min(70));
        let mut m = Message::new_request("INVITE", ruri.as_bytes()).map_err(|e| e.to_string())?;
        push(&mut m, "Via", &via);
        push(&mut m, "Max-Forwards", &mf.to_string());
        push(&mut m, "From", &format!("{from};tag={tag}"));
        push(&mut m, "To", &to);
        push(&mut m, "Call-ID", &call_id);
        push(&mut m, "CSeq", "1 INVITE");
        push(&mut m, "Contact", &contact);
        push(&mut m, "Allow", trunk.interop.allow());
        self.session_headers(id, t, &mut m);
        // History URIs name the other side's hosts and its number format:
        // rewritten as this trunk's number at this trunk's host.
        let in_trunk = &self.cfg.trunks[call.from_trunk];
        let history_uri = |uri: &str| -> String {
            let n = number_of(uri.as_bytes()).filter(|n| crate::is_number(n));
            let Some(n) = n else {
                return uri.to_owned();
            };
            let n = plus_if(
                trunk.e164,
                &trunk.numbers_out.called(&in_trunk.numbers_in.called(&n)),
            );
            let host = match peer {
                Some(p) if trunk.kind.is_microsoft() => &p.host,
                _ => &trunk.fqdn,
            };
            format!("sip:{n}@{host}{phone}")
        };
        // The asserted identity is ours toward this trunk: the caller's
        // number in this trunk's format at this trunk's FQDN.
        let pai_uri = |uri: &str| -> String {
            match number_of(uri.as_bytes()).filter(|n| crate::is_number(n)) {
                Some(n) => {
                    let n = plus_if(
                        trunk.e164,
                        &trunk.numbers_out.calling(&in_trunk.numbers_in.calling(&n)),
                    );
                    format!("sip:{n}@{}{phone}", trunk.fqdn)
                }
                None => uri.to_owned(),
            }
        };
        copy_identity(
            a_request,
            &mut m,
            trunk,
            &history_uri,
            &pai_uri,
            att.label.as_deref(),
        );
        if diverted {
            let original = history_uri(&format!("sip:{}@x", call.called));
            add_diversion(&mut m, trunk, &original);
        }
        let (proto, mux) = (
            proto_of(trunk.media).to_owned(),
            trunk.media == MediaSecurity::Srtp,
        );
        let codecs = trunk.codecs.clone();
        let to_peer = match (peer, contact_of_user) {
            (Some(p), _) => {
                Peer::new(p.addr.ok_or("peer address not resolved")?, p.transport).for_trunk(t)
            }
            (None, Some(r)) => r.peer,
            (None, None) => return Err("no destination".into()),
        };
        let routes = contact_of_user.map(|r| r.path.clone()).unwrap_or_default();
        let invite_timeout = trunk.invite_timeout;
        let local_uri = from.clone();
        let session = call.session.ok_or("no media session")?;
        let source_sdp = call.legs[call.a].media.last_remote_sdp.clone();
        let late = call.late_offer;
        // Media toward this destination: our key (kept across attempts while
        // the side stays SRTP), rtcp-mux offered only where the trunk's
        // media profile has it (SRTP toward Microsoft; never toward an RTP
        // gateway unless it answers with it): the relay leg follows.
        let prev = call.b.map(|b| call.legs[b].media.clone());
        let mut mb = PartyMedia {
            proto,
            mux,
            our_key: prev.and_then(|p| p.our_key),
            ..PartyMedia::default()
        };
        if !mb.secure() {
            mb.our_key = None;
        }
        md::ensure_key(self.ctl.as_mut(), &mut mb, None, 1)?;
        let ports = md::side_ports(&session, Side::B);
        let body = match source_sdp.as_deref().map(sdp::SessionDescription::parse) {
            Some(Ok(sd)) if !late => md::rewrite(sd, ports, &mut mb, &codecs)?,
            _ => md::generate_offer(ports, &mut mb, &codecs, id),
        };
        // A multipart offer (SDP + PIDF-LO…) goes on as one: our SDP in
        // place of the caller's, every other part unchanged.
        let (ct, body) = match crate::multipart::of(a_request).and_then(Result::ok) {
            Some(mp) => mp.with_sdp(&body, fold(&call_id)),
            None => ("application/sdp".to_owned(), body),
        };
        m.set_body(Some(&ct), &body).map_err(|e| e.to_string())?;
        self.outputs.push_back(Output::Media(MediaOp::Update {
            id: session.id,
            side: Side::B,
            remote_rtp: None,
            remote_rtcp: None,
            crypto: Some(CryptoSpec {
                rx: None,
                tx: mb.crypto_spec().tx,
            }),
            rtcp_mux: Some(mb.mux),
        }));
        for r in &routes {
            push(&mut m, "Route", r);
        }
        self.decorate(&mut m, Some(t));
        let to_peer = self.fit_transport(t, &mut m, to_peer, tcp);
        let key = self
            .ep
            .send_request(self.now, m, to_peer)
            .map_err(|e| e.to_string())?;
        let leg = Leg {
            peer_index: peer.map(|_| att.peer),
            uac: true,
            local_uri,
            remote_uri: to,
            local_cseq: 1,
            invite: Some(key),
            media: mb,
            attempt: Some(ai),
            ..Leg::new(t, Side::B, to_peer, call_id.clone(), tag.clone(), contact)
        };
        let call = self.calls.get_mut(&id).ok_or("call gone")?;
        call.legs.push(leg);
        let li = call.legs.len() - 1;
        call.b = Some(li);
        self.dialogs.insert((call_id, tag), (id, li));
        self.clients
            .insert(key, Pending::Invite { call: id, leg: li });
        self.active[t] += 1;
        let at = self.now + invite_timeout;
        self.arm(at, Timer::Invite { call: id, leg: li });
        if let Some(a) = self.calls.get_mut(&id).and_then(|c| c.attempts.get_mut(ai)) {
            a.outcome = "trying".into();
        }
        Ok(li)
    }

    pub(super) fn on_invite_response(
        &mut self,
        id: u64,
        li: usize,
        key: ClientKey,
        msg: Message,
        status: u16,
    ) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let is_transfer = call.refer.as_ref().is_some_and(|r| r.new_leg == li);
        let current = call.is_current(li);
        let already_confirmed = call.legs[li].state == LegState::Confirmed;
        let was_ended = call.legs[li].state == LegState::Ended;
        if status >= 100 {
            self.disarm(id, |t| matches!(t, Timer::Invite { leg, .. } if *leg == li));
            if !already_confirmed && !was_ended {
                self.timer_c(id, li, status);
            }
        }
        if (200..300).contains(&status) {
            if already_confirmed {
                let Some(l) = self.calls.get(&id).map(|c| &c.legs[li]) else {
                    return;
                };
                let (trunk, peer) = (l.trunk, l.peer);
                if msg.header(HeaderName::To).and_then(tag_of) != l.remote_tag {
                    // A second fork answered too: ACK and hang up its
                    // dialog; the call stays with the first.
                    self.hang_up_late_answer(trunk, peer, &msg);
                } else if let Some(ack) = l.ack.clone() {
                    // A retransmitted 2xx: ACK again.
                    self.ep.send_stateless_bytes(ack, peer);
                }
                return;
            }
            if current && msg.header(HeaderName::To).and_then(tag_of).is_none() {
                // No dialog can be made of it (RFC 3261 §12.1.2): the
                // attempt failed, the next destination is tried.
                self.counters.bad_answers += 1;
                tracing::info!(call = id, "2xx without a To tag: attempt failed");
                call_leg_end(&mut self.calls, &mut self.active, id, li);
                self.attempt_failed(id, li, Outcome::TransportError);
                return;
            }
            self.confirm_uac(id, li, &msg, is_transfer || current);
            if is_transfer || current {
                self.uac_session_timer(id, li, &msg);
            }
            if is_transfer {
                self.transfer_answered(id, li, &msg);
            } else if current {
                self.callee_answered(id, li, &msg);
            } else {
                // An abandoned attempt answered after all: hang it up.
                // Giving up on it released its trunk slot; bye() releases
                // it again, so take it back first.
                if let Some(t) = self.calls.get(&id).map(|c| c.legs[li].trunk) {
                    if was_ended {
                        self.active[t] += 1;
                    }
                }
                self.counters.late_answers += 1;
                self.bye(id, li);
            }
            let _ = key;
            return;
        }
        if status < 200 {
            // A reliable 18x is PRACKed (a retransmission is not relayed).
            if status > 100 && !was_ended && !self.prack(id, li, &msg) {
                return;
            }
            if current && status > 100 {
                self.callee_progress(id, li, &msg, status);
            }
            return;
        }
        if status == 422 && current && !is_transfer && self.retry_422(id, li, &msg) {
            return;
        }
        // A final failure. The trunk slot is released once: a leg given up
        // on (INVITE timeout, CANCEL) released it already.
        call_leg_end(&mut self.calls, &mut self.active, id, li);
        // 503 with Retry-After: that peer is held down, its connection
        // dropped (the next request opens a fresh one, maybe elsewhere).
        let retry = (status == 503)
            .then(|| header_by_name(&msg, "Retry-After").and_then(|v| leading_number(&v)))
            .flatten();
        let leg = self
            .calls
            .get(&id)
            .map(|c| (c.legs[li].trunk, c.legs[li].peer_index, c.legs[li].peer));
        if let (Some(secs), Some((t, Some(p), peer))) = (retry, leg) {
            tracing::info!(call = id, host = %self.cfg.trunks[t].peers[p].host, secs, "503 with Retry-After: peer held down");
            self.peer_hold(t, p, u64::from(secs));
            if peer.transport.is_reliable() {
                self.outputs.push_back(Output::Disconnect { to: peer });
            }
        }
        if is_transfer {
            self.transfer_failed(id, li, status);
            return;
        }
        if current {
            self.attempt_failed(id, li, Outcome::Final(status));
        }
    }

    /// Fills the dialog of a UAC leg from its 2xx and ACKs it; with
    /// `media`, its SDP goes to the relay (not for an abandoned attempt's
    /// late 2xx: media stays with the leg that is the call).
    pub(super) fn confirm_uac(&mut self, id: u64, li: usize, msg: &Message, media: bool) {
        let via = {
            let Some(call) = self.calls.get(&id) else {
                return;
            };
            let leg = &call.legs[li];
            self.via(leg.trunk, leg.peer.transport)
        };
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let leg = &mut call.legs[li];
        leg.state = LegState::Confirmed;
        leg.remote_tag = msg.header(HeaderName::To).and_then(tag_of);
        leg.remote_target = contact_uri(msg);
        let mut rr: Vec<String> = msg
            .values(HeaderName::RecordRoute)
            .map(|v| String::from_utf8_lossy(v).trim().to_owned())
            .collect();
        rr.reverse();
        leg.route_set = rr;
        let cseq = msg.cseq().map(|c| c.seq).unwrap_or(1);
        if let Some(mut ack) = dialog_request(leg, "ACK", cseq, &via) {
            if let Some(x) = &self.cfg.trunks[leg.trunk].headers.x_ms_sbc {
                push(&mut ack, "X-MS-SBC", x);
            }
            let bytes = ack.to_bytes();
            self.ep.send_stateless_bytes(bytes.clone(), leg.peer);
            leg.ack = Some(bytes);
            leg.acked = true;
            let at = self.now + self.cfg.timers.t1 * 64;
            self.arm(at, Timer::ForgetAck { call: id, leg: li });
        }
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if let Some(body) = sdp_body(msg).map(<[u8]>::to_vec).filter(|_| media) {
            let session = call.session;
            let leg = &mut call.legs[li];
            apply_remote(&mut self.outputs, session, leg, &body, true);
        }
    }

    pub(super) fn callee_progress(&mut self, id: u64, li: usize, msg: &Message, status: u16) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let session = call.session;
        if let Some(att) = call.legs[li].attempt.and_then(|a| call.attempts.get_mut(a)) {
            att.outcome = "ringing".into();
        }
        if !call.relayed_18x {
            // The destination began handling the call: no failover from
            // now on, the forward window is off, its ring timeout starts.
            call.relayed_18x = true;
            let ring = call.plan.as_ref().and_then(Plan::ring_timeout);
            self.disarm(id, |t| matches!(t, Timer::Window { .. }));
            if let Some(r) = ring {
                self.arm(self.now + r, Timer::Ring { call: id });
            }
        }
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let body = sdp_body(msg).map(<[u8]>::to_vec);
        if let Some(b) = &body {
            apply_remote(&mut self.outputs, session, &mut call.legs[li], b, true);
        }
        if self.ringback_progress(id, li, body.is_some()) {
            return;
        }
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let early_sdp = body.is_some() && !call.late_offer;
        if call.last_relayed == Some(status) && !early_sdp {
            return;
        }
        let Some(server) = call.a_invite else {
            return;
        };
        let a = call.a;
        let a_tag = call.legs[a].local_tag.clone();
        let a_trunk = call.legs[a].trunk;
        let code = if status == 183 && !early_sdp {
            180
        } else {
            status
        };
        let Some(Ok(mut r)) = call
            .a_request
            .as_deref()
            .map(|q| response_to(q, code, reason_phrase(code), Some(&a_tag)))
        else {
            return;
        };
        push(&mut r, "Contact", &call.legs[a].contact);
        if early_sdp && call.legs[a].answered_early() {
            // The caller has our answer (reliably): the same SDP again.
            if let Some(sdp) = &call.legs[a].media.last_local_sdp {
                let _ = r.set_body(Some("application/sdp"), sdp);
            }
        } else if early_sdp {
            if let (Some(b), Some(s)) = (&body, session) {
                if let Ok(sd) = sdp::SessionDescription::parse(b) {
                    let ports = md::side_ports(&s, call.legs[a].side);
                    if let Ok(out) = md::rewrite(sd, ports, &mut call.legs[a].media, &[]) {
                        let _ = r.set_body(Some("application/sdp"), &out);
                    }
                }
            }
        }
        call.last_relayed = Some(code);
        call.ringing.get_or_insert(self.now);
        self.decorate(&mut r, Some(a_trunk));
        self.send_provisional(id, server, r);
    }

    pub(super) fn callee_answered(&mut self, id: u64, li: usize, msg: &Message) {
        self.ringback_stop(id);
        let now = self.now;
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if !call.enter(CallState::Answered) {
            return;
        }
        // A fork won: it is the callee, the other forks are cancelled.
        call.b = Some(li);
        let losers = call.other_forks(li);
        call.forks.clear();
        for l in losers {
            self.abandon(id, l, "answered elsewhere");
        }
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        call.answered = Some(now);
        call.status = 200;
        if let Some(att) = call.legs[li].attempt.and_then(|a| call.attempts.get_mut(a)) {
            att.outcome = "answered".into();
        }
        self.counters.answered += 1;
        let Some(server) = call.a_invite.take() else {
            return;
        };
        let a = call.a;
        let session = call.session;
        let a_tag = call.legs[a].local_tag.clone();
        let a_trunk = call.legs[a].trunk;
        let Some(Ok(mut r)) = call
            .a_request
            .take()
            .map(|q| response_to(&q, 200, "OK", Some(&a_tag)))
        else {
            return;
        };
        push(&mut r, "Contact", &call.legs[a].contact);
        push(&mut r, "Allow", self.cfg.trunks[a_trunk].interop.allow());
        if let Some(se) = call.legs[a].session_expires {
            let sbc = call.legs[a].sbc_refreshes;
            push(
                &mut r,
                "Session-Expires",
                &Self::session_expires_value(se, sbc, true),
            );
            if !sbc {
                push(&mut r, "Require", "timer");
            }
        }
        let b_sdp = sdp_body(msg)
            .map(<[u8]>::to_vec)
            .or_else(|| call.legs[li].media.last_remote_sdp.clone());
        // The caller has its answer from a reliable 18x: the 2xx repeats
        // it unchanged (RFC 3262 §5, RFC 6337 §3.1); its relay leg stays.
        let answered_early = call.legs[a].answered_early();
        let b_sdp = b_sdp.filter(|_| !answered_early);
        if answered_early {
            if let Some(sdp) = &call.legs[a].media.last_local_sdp {
                let _ = r.set_body(Some("application/sdp"), sdp);
            }
        }
        if let (Some(b), Some(s)) = (b_sdp, session) {
            if let Ok(sd) = sdp::SessionDescription::parse(&b) {
                let ports = md::side_ports(&s, call.legs[a].side);
                match md::rewrite(sd, ports, &mut call.legs[a].media, &[]) {
                    Ok(out) => {
                        let _ = r.set_body(Some("application/sdp"), &out);
                    }
                    Err(e) => tracing::warn!(call = id, %e, "answer SDP not written"),
                }
            }
        }
        self.decorate(&mut r, Some(a_trunk));
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let a_leg = &mut call.legs[a];
        a_leg.state = LegState::Confirmed;
        let se = a_leg.session_expires.map(|se| (se, a_leg.sbc_refreshes));
        tracing::info!(call = id, "answered");
        if let Some((se, sbc)) = se {
            self.start_session_timer(id, a, se, sbc);
        }
        if self.hold_final(id, server, &r) {
            return;
        }
        self.send_final_ok(id, a, server, r);
    }

    /// Sends our 2xx `r` to the caller's INVITE `server` on leg `a`, kept
    /// and retransmitted over UDP until the ACK (RFC 3261 §13.3.1.4).
    pub(super) fn send_final_ok(&mut self, id: u64, a: usize, server: ServerKey, r: Message) {
        let (now, t1) = (self.now, self.cfg.timers.t1);
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let a_leg = &mut call.legs[a];
        let udp = a_leg.peer.transport == Transport::Udp;
        if udp {
            a_leg.ok = Some(Box::new((server, r.clone())));
        }
        self.respond(server, r);
        if udp {
            let ms = t1.as_millis() as u64;
            self.arm(
                now + t1,
                Timer::Resend {
                    call: id,
                    leg: a,
                    interval_ms: ms,
                    elapsed_ms: ms,
                },
            );
        }
    }

    /// The current attempt (leg `li`) failed with `outcome`: the plan says
    /// what next.
    pub(super) fn attempt_failed(&mut self, id: u64, li: usize, outcome: Outcome) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let t = call.legs[li].trunk;
        if let Some(att) = call.legs[li].attempt.and_then(|a| call.attempts.get_mut(a)) {
            att.outcome = outcome.text();
        }
        call.legs[li].state = LegState::Ended;
        if !call.other_forks(li).is_empty() {
            // Other contacts of the user are still being called.
            call.forks.retain(|&f| f != li);
            return;
        }
        let began = call.relayed_18x;
        let codes = &self.cfg.trunks[t].failover_codes;
        let Some(plan) = call.plan.as_mut() else {
            return;
        };
        let next = plan.on_outcome(outcome, codes, began);
        self.follow(id, next);
    }

    /// ACK and BYE for a 2xx that answered an INVITE of a call already
    /// gone, written from the response (RFC 3261 §12.1.2 dialog state).
    pub(super) fn hang_up_late_answer(&mut self, trunk: usize, peer: Peer, msg: &Message) {
        let mut route_set: Vec<String> = msg
            .values(HeaderName::RecordRoute)
            .map(|v| String::from_utf8_lossy(v).trim().to_owned())
            .collect();
        route_set.reverse();
        let remote_target = contact_uri(msg);
        let (Some(from), Some(to)) = (msg.header(HeaderName::From), msg.header(HeaderName::To))
        else {
            return;
        };
        let leg = Leg {
            uac: true,
            remote_tag: tag_of(to),
            local_uri: without_tag(from),
            remote_uri: without_tag(to),
            local_cseq: msg.cseq().map(|c| c.seq).unwrap_or(1),
            remote_target,
            route_set,
            state: LegState::Confirmed,
            ..Leg::new(
                trunk,
                Side::B,
                peer,
                msg.call_id().unwrap_or("").to_owned(),
                tag_of(from).unwrap_or_default(),
                self.cfg.trunks[trunk].contact(),
            )
        };
        let via = self.via(trunk, peer.transport);
        if let Some(mut ack) = dialog_request(&leg, "ACK", leg.local_cseq, &via) {
            if let Some(x) = &self.cfg.trunks[leg.trunk].headers.x_ms_sbc {
                push(&mut ack, "X-MS-SBC", x);
            }
            self.ep.send_stateless(&ack, peer);
        }
        let via = self.via(trunk, peer.transport);
        if let Some(mut bye) = dialog_request(&leg, "BYE", leg.local_cseq + 1, &via) {
            self.decorate(&mut bye, Some(trunk));
            match self.ep.send_request(self.now, bye, peer) {
                Ok(k) => {
                    self.clients.insert(k, Pending::Fire);
                }
                Err(e) => tracing::debug!(%e, "BYE not sent"),
            }
        }
    }
}

pub(super) fn proto_of(m: MediaSecurity) -> &'static str {
    match m {
        MediaSecurity::Srtp => "RTP/SAVP",
        MediaSecurity::Rtp => "RTP/AVP",
    }
}

pub(super) fn plus_if(e164: bool, n: &str) -> String {
    if e164 {
        plus(n)
    } else {
        n.to_owned()
    }
}

/// A number from a text (FNV-1a), to vary a multipart boundary without
/// drawing on the seeded generator.
fn fold(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
