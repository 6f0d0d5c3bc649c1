//! Registered phones: a `phones` trunk's REGISTERs go to the registrar
//! (answers and binding changes come back through its outputs), calls
//! from phones are authenticated with the same credentials (407), and a
//! registered user is a destination: every live contact is called at once
//! (a fork per contact, over the flow it registered on), the first 2xx
//! wins and the others are cancelled.

use std::net::SocketAddr;

use registrar::{Binding, Flow};

use super::setup::Reach;
use super::*;

impl B2bua {
    /// True when trunk `t` takes REGISTERs (a `phones` trunk, with the
    /// registrar configured).
    pub(super) fn takes_registers(&self, t: usize) -> bool {
        self.registrar.is_some() && self.cfg.trunks[t].kind == trunk::TrunkKind::Phones
    }

    fn flow(&self, from: Peer) -> Flow {
        let local = self
            .class
            .map(|(_, l)| l)
            .unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0)));
        Flow {
            transport: from.transport,
            remote: from.addr,
            local,
            conn: from.conn,
        }
    }

    fn register_token(&mut self, key: ServerKey, trunk: usize) -> u64 {
        let id = self.next_register;
        self.next_register += 1;
        self.registering.insert(id, (key, trunk));
        id
    }

    /// A REGISTER from a phone (server transaction `key`).
    pub(super) fn on_register(&mut self, key: ServerKey, msg: Message, from: Peer, trunk: usize) {
        let flow = self.flow(from);
        let id = self.register_token(key, trunk);
        if let Some(r) = self.registrar.as_mut() {
            r.handle(self.now, registrar::Input::Register { id, msg, flow });
        }
        self.registrar_outputs();
    }

    /// The caller of an INVITE from a phone, authenticated: `Some(number)`
    /// to go on with the call; `None` when the registrar answered it (407,
    /// 400, 403) or dropped it.
    pub(super) fn phone_caller(
        &mut self,
        key: ServerKey,
        msg: &Message,
        from: Peer,
        trunk: usize,
    ) -> Option<String> {
        let flow = self.flow(from);
        let id = self.register_token(key, trunk);
        let now = self.now;
        let user = self.registrar.as_mut()?.authorize(now, id, msg, flow);
        match user {
            Some(u) => {
                self.registering.remove(&id);
                Some(u.number().to_owned())
            }
            None => {
                self.registrar_outputs();
                None
            }
        }
    }

    /// Sends what the registrar answered, forgets what it dropped, reports
    /// binding changes to the shell.
    pub(super) fn registrar_outputs(&mut self) {
        while let Some(o) = self
            .registrar
            .as_mut()
            .and_then(registrar::Registrar::poll_output)
        {
            match o {
                registrar::Output::Respond { id, response } => {
                    let Some((key, trunk)) = self.registering.remove(&id) else {
                        continue;
                    };
                    let mut r = response;
                    self.decorate(&mut r, Some(trunk));
                    self.respond(key, r);
                }
                registrar::Output::Dropped { id, reason, .. } => {
                    if let Some((key, _)) = self.registering.remove(&id) {
                        tracing::debug!(?reason, "request from a phone dropped");
                        self.ep.forget(key);
                    }
                }
                registrar::Output::Event(e) => self.outputs.push_back(Output::Binding(e)),
            }
        }
    }

    /// Replaces the users (a reload); bindings stay.
    pub fn set_users(&mut self, users: registrar::Users) {
        if let Some(r) = self.registrar.as_mut() {
            r.set_users(users);
        }
    }

    /// Puts back bindings a store kept across a restart (time left each).
    pub fn restore_bindings(&mut self, bindings: Vec<(Binding, Duration)>) {
        let now = self.now;
        if let Some(r) = self.registrar.as_mut() {
            r.restore(now, bindings);
        }
    }

    /// A binding another SBC wrote (a shared store): routable here, no
    /// event. False when a live binding registered here has its key.
    pub fn learn_binding(&mut self, binding: Binding, ttl: Duration) -> bool {
        let now = self.now;
        self.registrar
            .as_mut()
            .is_some_and(|r| r.learn(now, binding, ttl))
    }

    /// Another SBC removed the binding with store key `key`.
    pub fn forget_binding(&mut self, key: &[u8]) -> bool {
        self.registrar.as_mut().is_some_and(|r| r.forget(key))
    }

    /// The registrar's counters, when there is one.
    pub fn registrar_counters(&self) -> Option<registrar::Counters> {
        self.registrar.as_ref().map(registrar::Registrar::counters)
    }

    /// Bindings the registrar holds.
    pub fn binding_count(&self) -> usize {
        self.registrar
            .as_ref()
            .map_or(0, registrar::Registrar::binding_count)
    }

    /// The live bindings of user `number`.
    pub fn bindings_of(&self, number: &str) -> Vec<Binding> {
        self.registrar
            .as_ref()
            .map(|r| r.lookup(number, self.now))
            .unwrap_or_default()
    }

    /// How to reach the live contacts of user `number`.
    pub(super) fn reaches(&self, number: &str) -> Vec<Reach> {
        self.bindings_of(number)
            .into_iter()
            .map(|b| Reach {
                uri: String::from_utf8_lossy(&b.uri).into_owned(),
                peer: Peer {
                    addr: b.flow.remote,
                    transport: b.flow.transport,
                    conn: b.flow.conn,
                    trunk: None,
                },
                path: if b.path.is_empty() {
                    Vec::new()
                } else {
                    vec![String::from_utf8_lossy(&b.path).into_owned()]
                },
                local: b.flow.local,
            })
            .collect()
    }

    /// Attempt `att` of call `id` toward registered user `number` through
    /// phones trunk `t`: one fork per live contact. `Ok(false)` when the
    /// user has no live contact (not registered).
    pub(super) fn start_forks(
        &mut self,
        id: u64,
        att: &Attempt,
        t: usize,
        number: &str,
    ) -> Result<bool, String> {
        let reaches = self.reaches(number);
        if reaches.is_empty() {
            return Ok(false);
        }
        if let Some(c) = self.calls.get_mut(&id) {
            c.forks.clear();
        }
        let mut started = 0;
        let mut last_err = None;
        for r in &reaches {
            match self.send_invite(id, att, t, Some(r), true) {
                Ok(li) => {
                    started += 1;
                    if let Some(c) = self.calls.get_mut(&id) {
                        c.forks.push(li);
                    }
                }
                Err(e) => last_err = Some(e),
            }
        }
        match (started, last_err) {
            (0, Some(e)) => Err(e),
            _ => Ok(true),
        }
    }
}
