//! A user agent of the virtual world: a carrier placing calls, a Microsoft
//! proxy or a gateway answering them. It is a real transaction endpoint
//! (`transaction::Endpoint`: retransmissions, CANCEL, ACK matching as the
//! SBC's own) with a small UA core on top: it answers INVITEs as its
//! [`Answer`] says, retransmits its 2xx until the ACK comes (RFC 3261
//! §13.3.1.4), ACKs every 2xx it receives, answers BYE, and records when
//! each response arrived so that tests can measure setup times.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sip::{HeaderName, Message};
use transaction::{
    response_to, ClientKey, Config, Endpoint, Event, Input, Peer, Rng, ServerKey, Transmit,
    Transport,
};

use crate::peer::reason_phrase;

/// How a user agent answers an INVITE (after the 100 Trying its
/// transaction layer sends at once).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    /// 180 Ringing this long after the INVITE (none: no 180).
    pub ring: Option<Duration>,
    /// The final response this long after the INVITE (none: never).
    pub after: Option<Duration>,
    /// Its status: 200 answers with the UA's SDP.
    pub code: u16,
}

impl Answer {
    /// 180 at once, 200 after `after`.
    pub fn after(after: Duration) -> Answer {
        Answer {
            ring: Some(Duration::ZERO),
            after: Some(after),
            code: 200,
        }
    }

    /// `code` at once.
    pub fn reject(code: u16) -> Answer {
        Answer {
            ring: None,
            after: Some(Duration::ZERO),
            code,
        }
    }

    /// 100 Trying (and 180 after `ring`, if set), then nothing.
    pub fn never(ring: Option<Duration>) -> Answer {
        Answer {
            ring,
            after: None,
            code: 200,
        }
    }
}

/// What a user agent is.
#[derive(Debug, Clone)]
pub struct UaConfig {
    /// `User-Agent` / `Server`.
    pub agent: String,
    /// How it answers INVITEs.
    pub answer: Answer,
    /// Its SDP, offered and answered.
    pub sdp: String,
    /// Extra headers on its 2xx (a Microsoft proxy: Record-Route; its
    /// Contact is written anyway).
    pub headers: Vec<(String, String)>,
    /// Its Contact URI.
    pub contact: String,
    /// Username and password it answers digest challenges with (401 to a
    /// REGISTER, 407 to an INVITE), once per request.
    pub credentials: Option<(String, String)>,
}

/// A call the UA received.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// The INVITE.
    pub invite: Message,
    /// When it arrived (virtual time since the world began).
    pub at: Duration,
    /// When the UA sent its final response.
    pub answered: Option<Duration>,
    /// The ACK for the 2xx arrived.
    pub acked: bool,
    /// The caller cancelled it before the answer.
    pub cancelled: bool,
    /// A BYE ended it (either side).
    pub ended: bool,
    key: ServerKey,
    from: Peer,
    tag: String,
    ok: Option<Message>,
    retransmit: Duration,
    local_cseq: u32,
}

/// A call the UA placed.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// The INVITE.
    pub invite: Message,
    /// When it was sent (virtual time since the world began).
    pub at: Duration,
    /// Every response (status, when), retransmitted 2xx included.
    pub responses: Vec<(u16, Duration)>,
    /// The final status; 408 for a timeout, 503 for a transport error.
    pub status: Option<u16>,
    /// The 2xx, once answered.
    pub ok: Option<Message>,
    /// A BYE ended it (either side); the status of ours, when we sent it.
    pub ended: bool,
    /// The final status of our BYE.
    pub bye_status: Option<u16>,
    key: ClientKey,
    to: Peer,
    bye: Option<ClientKey>,
    /// The INVITE was sent again with credentials.
    authed: bool,
}

/// A registration the UA made.
#[derive(Debug, Clone)]
pub struct Registration {
    /// The last REGISTER sent.
    pub request: Message,
    /// Every final response (status, when).
    pub responses: Vec<(u16, Duration)>,
    /// The final status of the last REGISTER.
    pub status: Option<u16>,
    /// The 200's Contact values (what the registrar holds).
    pub contacts: Vec<String>,
    key: ClientKey,
    to: Peer,
    cseq: u32,
    authed: bool,
}

impl Outgoing {
    /// Time from the INVITE to the first response with `code`.
    pub fn time_to(&self, code: u16) -> Option<Duration> {
        self.responses
            .iter()
            .find(|(c, _)| *c == code)
            .map(|(_, at)| at.saturating_sub(self.at))
    }

    /// Time from the INVITE to the final response.
    pub fn setup(&self) -> Option<Duration> {
        self.responses
            .iter()
            .find(|(c, _)| *c >= 200)
            .map(|(_, at)| at.saturating_sub(self.at))
    }
}

#[derive(Debug, Clone, Copy)]
enum Due {
    Ring(usize),
    Final(usize),
    Retransmit(usize),
}

/// One user agent.
#[derive(Debug)]
pub struct Ua {
    /// What it is.
    pub cfg: UaConfig,
    /// Calls it received, in order.
    pub incoming: Vec<Incoming>,
    /// Calls it placed, in order.
    pub outgoing: Vec<Outgoing>,
    /// Registrations it made, in order.
    pub registrations: Vec<Registration>,
    addr: SocketAddr,
    transport: Transport,
    epoch: Instant,
    endpoint: Endpoint,
    rng: Rng,
    due: BTreeMap<(Instant, u64), Due>,
    seq: u64,
}

impl Ua {
    pub(crate) fn new(
        cfg: UaConfig,
        addr: SocketAddr,
        transport: Transport,
        epoch: Instant,
        seed: u64,
    ) -> Ua {
        Ua {
            cfg,
            incoming: Vec::new(),
            outgoing: Vec::new(),
            registrations: Vec::new(),
            addr,
            transport,
            epoch,
            endpoint: Endpoint::new(Config {
                seed,
                ..Config::default()
            }),
            rng: Rng::new(seed ^ 0x5eed),
            due: BTreeMap::new(),
            seq: 0,
        }
    }

    pub(crate) fn poll_transmit(&mut self) -> Option<Transmit> {
        self.endpoint.poll_transmit()
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        let own = self.due.first_key_value().map(|((at, _), _)| *at);
        match (own, self.endpoint.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub(crate) fn receive(&mut self, now: Instant, msg: Message, from: Peer) {
        self.endpoint.handle(now, Input::Receive { msg, from });
        self.events(now);
    }

    pub(crate) fn timeout(&mut self, now: Instant) {
        while let Some((&(at, s), _)) = self.due.first_key_value() {
            if at > now {
                break;
            }
            if let Some(d) = self.due.remove(&(at, s)) {
                self.fire(now, d);
            }
        }
        if self.endpoint.poll_timeout().is_some_and(|t| t <= now) {
            self.endpoint.handle(now, Input::Timeout);
        }
        self.events(now);
    }

    pub(crate) fn transport_error(&mut self, now: Instant, to: Peer) {
        self.endpoint.handle(now, Input::TransportError { to });
        self.events(now);
    }

    fn elapsed(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.epoch)
    }

    fn token(&mut self, prefix: &str) -> String {
        format!("{prefix}{:012x}", self.rng.next_u64() >> 16)
    }

    fn arm(&mut self, at: Instant, d: Due) {
        self.seq += 1;
        self.due.insert((at, self.seq), d);
    }

    fn via(&mut self) -> String {
        let branch = self.token("z9hG4bKsim");
        format!(
            "SIP/2.0/{} {};branch={branch};rport",
            self.transport, self.addr
        )
    }

    /// Places a call to `ruri` through `to` (the SBC's listener), from
    /// `from_user`; returns its index in [`Ua::outgoing`].
    pub(crate) fn invite(
        &mut self,
        now: Instant,
        to: Peer,
        ruri: &str,
        from_user: &str,
        headers: &[(&str, &str)],
    ) -> Option<usize> {
        let via = self.via();
        let tag = self.token("f");
        let call_id = format!("{}@{}", self.token("c"), self.addr.ip());
        let mut m = Message::new_request("INVITE", ruri.as_bytes()).ok()?;
        let from = format!("<sip:{from_user}@{}>;tag={tag}", self.addr.ip());
        let contact = format!("<{}>", self.cfg.contact);
        let to_value = format!("<{ruri}>");
        let mut h: Vec<(&str, &str)> = vec![
            ("Via", &via),
            ("Max-Forwards", "70"),
            ("From", &from),
            ("To", &to_value),
            ("Call-ID", &call_id),
            ("CSeq", "1 INVITE"),
            ("Contact", &contact),
            ("User-Agent", &self.cfg.agent),
        ];
        h.extend_from_slice(headers);
        for (n, v) in h {
            m.push_header(n, v.as_bytes()).ok()?;
        }
        m.set_body(Some("application/sdp"), self.cfg.sdp.as_bytes())
            .ok()?;
        let key = self.endpoint.send_request(now, m.clone(), to).ok()?;
        self.outgoing.push(Outgoing {
            invite: m,
            at: self.elapsed(now),
            responses: Vec::new(),
            status: None,
            ok: None,
            ended: false,
            bye_status: None,
            key,
            to,
            bye: None,
            authed: false,
        });
        Some(self.outgoing.len() - 1)
    }

    /// Registers `aor_user` at `domain` through `to` for `expires`
    /// seconds (0: removes); returns its index in [`Ua::registrations`].
    pub(crate) fn register(
        &mut self,
        now: Instant,
        to: Peer,
        aor_user: &str,
        domain: &str,
        expires: u32,
    ) -> Option<usize> {
        let call_id = format!("{}@{}", self.token("r"), self.addr.ip());
        let tag = self.token("f");
        let aor = format!("<sip:{aor_user}@{domain}>");
        let mut m = Message::new_request("REGISTER", format!("sip:{domain}").as_bytes()).ok()?;
        let via = self.via();
        let contact = format!("<{}>;expires={expires}", self.cfg.contact);
        for (n, v) in [
            ("Via", via.as_str()),
            ("Max-Forwards", "70"),
            ("From", &format!("{aor};tag={tag}")),
            ("To", aor.as_str()),
            ("Call-ID", call_id.as_str()),
            ("CSeq", "1 REGISTER"),
            ("Contact", contact.as_str()),
            ("User-Agent", self.cfg.agent.as_str()),
        ] {
            m.push_header(n, v.as_bytes()).ok()?;
        }
        m.set_body(None, b"").ok()?;
        let key = self.endpoint.send_request(now, m.clone(), to).ok()?;
        self.registrations.push(Registration {
            request: m,
            responses: Vec::new(),
            status: None,
            contacts: Vec::new(),
            key,
            to,
            cseq: 1,
            authed: false,
        });
        Some(self.registrations.len() - 1)
    }

    /// `req` again with a new branch, CSeq `cseq` and the answer to
    /// `challenge` in `header`.
    fn with_credentials(
        &mut self,
        req: &Message,
        challenge: &Message,
        cseq: u32,
    ) -> Option<Message> {
        let (user, password) = self.cfg.credentials.clone()?;
        let (ch, auth) = if challenge.status() == Some(407) {
            ("Proxy-Authenticate", "Proxy-Authorization")
        } else {
            ("WWW-Authenticate", "Authorization")
        };
        // The strongest algorithm offered (SHA-256 comes first).
        let value = challenge
            .headers()
            .filter(|h| String::from_utf8_lossy(h.name_raw).eq_ignore_ascii_case(ch))
            .map(|h| String::from_utf8_lossy(h.value).into_owned())
            .next()?;
        let method = req.method_str()?.to_owned();
        let uri = String::from_utf8_lossy(req.request_uri_raw()?).into_owned();
        let cnonce = self.token("cn");
        let v = registrar::answer_challenge(
            &value,
            &registrar::Credentials {
                username: &user,
                password: &password,
                method: &method,
                uri: &uri,
                nc: 1,
                cnonce: &cnonce,
            },
        )?;
        let mut m = Message::new_request(&method, uri.as_bytes()).ok()?;
        let via = self.via();
        for h in req.headers() {
            let name = String::from_utf8_lossy(h.name_raw).into_owned();
            let value = match h.name {
                HeaderName::Via => via.as_bytes().to_vec(),
                HeaderName::CSeq => format!("{cseq} {method}").into_bytes(),
                HeaderName::ContentLength | HeaderName::ContentType => continue,
                _ => h.value.to_vec(),
            };
            m.push_header(&name, &value).ok()?;
        }
        m.push_header(auth, v.as_bytes()).ok()?;
        let ct = if req.body().is_empty() {
            None
        } else {
            Some("application/sdp")
        };
        m.set_body(ct, req.body()).ok()?;
        Some(m)
    }

    /// Cancels placed call `i` (while its INVITE awaits a final response).
    pub(crate) fn cancel(&mut self, now: Instant, i: usize) -> bool {
        let Some(c) = self.outgoing.get(i) else {
            return false;
        };
        if c.status.is_some() {
            return false;
        }
        self.endpoint.cancel(now, c.key).is_ok()
    }

    /// Ends placed call `i` with BYE (when it was answered).
    pub(crate) fn hang_up(&mut self, now: Instant, i: usize) -> bool {
        let Some(c) = self.outgoing.get(i) else {
            return false;
        };
        let (Some(ok), false) = (c.ok.clone(), c.ended) else {
            return false;
        };
        let to = c.to;
        let Some(bye) = self.in_dialog("BYE", &ok, 2, true) else {
            return false;
        };
        let Ok(key) = self.endpoint.send_request(now, bye, to) else {
            return false;
        };
        if let Some(c) = self.outgoing.get_mut(i) {
            c.ended = true;
            c.bye = Some(key);
        }
        true
    }

    /// Ends received call `i` with BYE (when it was answered).
    pub(crate) fn hang_up_incoming(&mut self, now: Instant, i: usize) -> bool {
        let Some(c) = self.incoming.get(i) else {
            return false;
        };
        let (Some(ok), false) = (c.ok.clone(), c.ended) else {
            return false;
        };
        let (to, cseq, invite) = (c.from, c.local_cseq + 1, c.invite.clone());
        let Some(mut bye) = self.in_dialog("BYE", &ok, cseq, false) else {
            return false;
        };
        // The UAS's request goes to the caller's Contact.
        if let Some(t) = contact_of(&invite) {
            if let Ok(m) = retarget(&bye, &t) {
                bye = m;
            }
        }
        if self.endpoint.send_request(now, bye, to).is_err() {
            return false;
        }
        if let Some(c) = self.incoming.get_mut(i) {
            c.ended = true;
            c.local_cseq = cseq;
        }
        true
    }

    /// Transfers received call `i` (when answered, not ended) to `target`
    /// with REFER (RFC 3515), as Microsoft does: the SBC answers 202 and
    /// NOTIFYs, calls the target and, once it answers, sends this call BYE.
    pub(crate) fn refer_incoming(&mut self, now: Instant, i: usize, target: &str) -> bool {
        let Some(c) = self.incoming.get(i) else {
            return false;
        };
        let (Some(ok), false) = (c.ok.clone(), c.ended) else {
            return false;
        };
        let (to, cseq, invite) = (c.from, c.local_cseq + 1, c.invite.clone());
        let Some(mut refer) = self.in_dialog("REFER", &ok, cseq, false) else {
            return false;
        };
        let contact = format!("<{}>", self.cfg.contact);
        let headers = [("Refer-To", format!("<{target}>")), ("Contact", contact)];
        for (n, v) in &headers {
            if refer.push_header(n, v.as_bytes()).is_err() {
                return false;
            }
        }
        if let Some(t) = contact_of(&invite) {
            if let Ok(m) = retarget(&refer, &t) {
                refer = m;
            }
        }
        if self.endpoint.send_request(now, refer, to).is_err() {
            return false;
        }
        if let Some(c) = self.incoming.get_mut(i) {
            c.local_cseq = cseq;
        }
        true
    }

    /// A request in the dialog of 2xx `ok`: as the caller (`uac`) or as
    /// the callee of that INVITE.
    fn in_dialog(&mut self, method: &str, ok: &Message, cseq: u32, uac: bool) -> Option<Message> {
        let from = header(ok, "From")?;
        let to = header(ok, "To")?;
        let (ours, theirs) = if uac { (from, to) } else { (to, from) };
        let target = if uac {
            ok.contacts().next()?.ok().and_then(|c| match c {
                sip::Contact::Addr(a) => Some(a.uri_raw.to_vec()),
                sip::Contact::Star => None,
            })?
        } else {
            self.cfg.contact.as_bytes().to_vec()
        };
        let mut m = Message::new_request(method, &target).ok()?;
        let via = self.via();
        let cseq = format!("{cseq} {method}");
        let call_id = ok.call_id().ok()?.to_owned();
        for (n, v) in [
            ("Via", via.as_str()),
            ("Max-Forwards", "70"),
            ("From", ours.as_str()),
            ("To", theirs.as_str()),
            ("Call-ID", call_id.as_str()),
            ("CSeq", cseq.as_str()),
        ] {
            m.push_header(n, v.as_bytes()).ok()?;
        }
        m.set_body(None, b"").ok()?;
        Some(m)
    }

    fn events(&mut self, now: Instant) {
        while let Some(e) = self.endpoint.poll_event() {
            match e {
                Event::Request { key, msg, from } => self.request(now, key, msg, from),
                Event::Response { key, msg } => self.response(now, key, &msg),
                Event::Cancelled { invite, .. } => {
                    let at = self.elapsed(now);
                    if let Some(i) = self.incoming.iter().position(|c| c.key == invite) {
                        let c = &mut self.incoming[i];
                        if c.answered.is_none() {
                            c.cancelled = true;
                            c.answered = Some(at);
                            let (inv, tag) = (c.invite.clone(), c.tag.clone());
                            self.respond(now, invite, &inv, 487, &tag, false);
                        }
                    }
                }
                Event::Ack { msg, .. } => {
                    let id = msg.call_id().ok().map(str::to_owned);
                    for c in &mut self.incoming {
                        if id.as_deref() == c.invite.call_id().ok() {
                            c.acked = true;
                        }
                    }
                }
                Event::Timeout { key } => self.failed(now, key, 408),
                Event::TransportError { key } => self.failed(now, key, 503),
                _ => {}
            }
        }
    }

    fn request(&mut self, now: Instant, key: ServerKey, msg: Message, from: Peer) {
        let method = msg.method_str().unwrap_or_default().to_owned();
        let in_dialog = msg.to().ok().and_then(|t| t.tag()).is_some();
        match method.as_str() {
            "INVITE" if !in_dialog => {
                let tag = self.token("t");
                self.incoming.push(Incoming {
                    invite: msg,
                    at: self.elapsed(now),
                    answered: None,
                    acked: false,
                    cancelled: false,
                    ended: false,
                    key,
                    from,
                    tag,
                    ok: None,
                    retransmit: Duration::from_millis(500),
                    local_cseq: 0,
                });
                let i = self.incoming.len() - 1;
                let a = self.cfg.answer;
                if let Some(r) = a.ring {
                    self.arm(now + r, Due::Ring(i));
                }
                if let Some(f) = a.after {
                    self.arm(now + f, Due::Final(i));
                }
            }
            "INVITE" => {
                // A re-INVITE: the same media again.
                let tag = tag_of(&msg, "To").unwrap_or_default();
                self.respond(now, key, &msg, 200, &tag, true);
            }
            "BYE" => {
                let id = msg.call_id().ok().map(str::to_owned);
                for c in &mut self.incoming {
                    if id.as_deref() == c.invite.call_id().ok() {
                        c.ended = true;
                    }
                }
                for c in &mut self.outgoing {
                    if id.as_deref() == c.invite.call_id().ok() {
                        c.ended = true;
                    }
                }
                let tag = tag_of(&msg, "To").unwrap_or_default();
                self.respond(now, key, &msg, 200, &tag, false);
            }
            "OPTIONS" | "INFO" | "NOTIFY" => {
                let tag = tag_of(&msg, "To").unwrap_or_else(|| "o".into());
                self.respond(now, key, &msg, 200, &tag, false);
            }
            _ => {
                let tag = tag_of(&msg, "To").unwrap_or_else(|| "n".into());
                self.respond(now, key, &msg, 501, &tag, false);
            }
        }
    }

    /// Answers `req` (server transaction `key`); with `sdp`, the 2xx
    /// carries the UA's description, Contact and extra headers.
    fn respond(
        &mut self,
        now: Instant,
        key: ServerKey,
        req: &Message,
        code: u16,
        tag: &str,
        sdp: bool,
    ) -> Option<Message> {
        let mut r = response_to(req, code, reason_phrase(code), Some(tag)).ok()?;
        r.push_header("Server", self.cfg.agent.as_bytes()).ok()?;
        if sdp && code < 300 {
            r.push_header("Contact", format!("<{}>", self.cfg.contact).as_bytes())
                .ok()?;
            for (n, v) in &self.cfg.headers {
                r.push_header(n, v.as_bytes()).ok()?;
            }
            r.set_body(Some("application/sdp"), self.cfg.sdp.as_bytes())
                .ok()?;
        }
        let _ = self.endpoint.respond(now, key, r.clone());
        Some(r)
    }

    fn fire(&mut self, now: Instant, d: Due) {
        match d {
            Due::Ring(i) => {
                let Some(c) = self.incoming.get(i) else {
                    return;
                };
                if c.answered.is_some() {
                    return;
                }
                let (key, inv, tag) = (c.key, c.invite.clone(), c.tag.clone());
                self.respond(now, key, &inv, 180, &tag, false);
            }
            Due::Final(i) => {
                let Some(c) = self.incoming.get(i) else {
                    return;
                };
                if c.answered.is_some() {
                    return;
                }
                let (key, inv, tag, code) =
                    (c.key, c.invite.clone(), c.tag.clone(), self.cfg.answer.code);
                let ok = self.respond(now, key, &inv, code, &tag, true);
                let at = self.elapsed(now);
                let udp = self.transport == Transport::Udp;
                if let Some(c) = self.incoming.get_mut(i) {
                    c.answered = Some(at);
                    if code < 300 {
                        c.ok = ok;
                        if udp {
                            let t = c.retransmit;
                            self.arm(now + t, Due::Retransmit(i));
                        }
                    }
                }
            }
            Due::Retransmit(i) => {
                let Some(c) = self.incoming.get_mut(i) else {
                    return;
                };
                // RFC 3261 §13.3.1.4: until the ACK, at most 64*T1.
                if c.acked || c.ended || c.retransmit > Duration::from_secs(16) {
                    return;
                }
                let Some(ok) = c.ok.clone() else { return };
                let to = c.from;
                c.retransmit = (c.retransmit * 2).min(Duration::from_secs(4));
                let t = c.retransmit;
                self.endpoint.send_stateless(&ok, to);
                self.arm(now + t, Due::Retransmit(i));
            }
        }
    }

    fn response(&mut self, now: Instant, key: ClientKey, msg: &Message) {
        let at = self.elapsed(now);
        let code = msg.status().unwrap_or(0);
        if let Some(i) = self.registrations.iter().position(|r| r.key == key) {
            self.registered(now, i, msg, code, at);
            return;
        }
        if code == 407 || code == 401 {
            if let Some(i) = self.outgoing.iter().position(|c| c.key == key && !c.authed) {
                let (inv, to) = (self.outgoing[i].invite.clone(), self.outgoing[i].to);
                if let Some(again) = self.with_credentials(&inv, msg, 2) {
                    if let Ok(k) = self.endpoint.send_request(now, again.clone(), to) {
                        let c = &mut self.outgoing[i];
                        c.responses.push((code, at));
                        c.key = k;
                        c.invite = again;
                        c.authed = true;
                        return;
                    }
                }
            }
        }
        if let Some(c) = self.outgoing.iter_mut().find(|c| c.bye == Some(key)) {
            if code >= 200 {
                c.bye_status = Some(code);
            }
            return;
        }
        let Some(i) = self.outgoing.iter().position(|c| c.key == key) else {
            return;
        };
        let c = &mut self.outgoing[i];
        c.responses.push((code, at));
        if code >= 200 && c.status.is_none() {
            c.status = Some(code);
        }
        if (200..300).contains(&code) {
            c.ok.get_or_insert_with(|| msg.clone());
            // Every 2xx is ACKed (retransmissions and forks alike).
            let to = c.to;
            if let Some(ack) = self.in_dialog("ACK", msg, 1, true) {
                self.endpoint.send_stateless(&ack, to);
            }
        }
    }

    fn registered(&mut self, now: Instant, i: usize, msg: &Message, code: u16, at: Duration) {
        if code < 200 {
            return;
        }
        let r = &mut self.registrations[i];
        r.responses.push((code, at));
        if code == 401 && !r.authed {
            let (req, to, cseq) = (r.request.clone(), r.to, r.cseq + 1);
            if let Some(again) = self.with_credentials(&req, msg, cseq) {
                if let Ok(k) = self.endpoint.send_request(now, again.clone(), to) {
                    let r = &mut self.registrations[i];
                    r.key = k;
                    r.request = again;
                    r.cseq = cseq;
                    r.authed = true;
                    return;
                }
            }
        }
        let r = &mut self.registrations[i];
        r.status = Some(code);
        r.contacts = msg
            .headers()
            .filter(|h| h.name == HeaderName::Contact)
            .map(|h| String::from_utf8_lossy(h.value).into_owned())
            .collect();
    }

    fn failed(&mut self, now: Instant, key: ClientKey, code: u16) {
        let at = self.elapsed(now);
        if let Some(r) = self.registrations.iter_mut().find(|r| r.key == key) {
            r.responses.push((code, at));
            r.status.get_or_insert(code);
        }
        if let Some(c) = self.outgoing.iter_mut().find(|c| c.key == key) {
            c.responses.push((code, at));
            c.status.get_or_insert(code);
        }
        if let Some(c) = self.outgoing.iter_mut().find(|c| c.bye == Some(key)) {
            c.bye_status.get_or_insert(code);
        }
    }
}

fn header(m: &Message, name: &str) -> Option<String> {
    m.header_by_name(name)
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

fn tag_of(m: &Message, name: &str) -> Option<String> {
    let na = if name == "To" { m.to() } else { m.from() };
    na.ok()?
        .tag()
        .map(|t| String::from_utf8_lossy(t).into_owned())
}

/// The first Contact URI of `m`.
fn contact_of(m: &Message) -> Option<Vec<u8>> {
    m.contacts()
        .next()
        .and_then(Result::ok)
        .and_then(|ct| match ct {
            sip::Contact::Addr(a) => Some(a.uri_raw.to_vec()),
            sip::Contact::Star => None,
        })
}

/// `m` with Request-URI `uri`.
fn retarget(m: &Message, uri: &[u8]) -> Result<Message, sip::EditError> {
    let mut out = Message::new_request(m.method_str().unwrap_or("BYE"), uri)?;
    for h in m.headers() {
        if h.name == HeaderName::ContentLength {
            continue;
        }
        out.push_header(&String::from_utf8_lossy(h.name_raw), h.value)?;
    }
    out.set_body(None, b"")?;
    Ok(out)
}
