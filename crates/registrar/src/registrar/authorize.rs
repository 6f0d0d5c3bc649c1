//! Requests other than REGISTER from phones (an INVITE placing a call):
//! the same users and credentials, challenged with 407 and
//! `Proxy-Authenticate` (RFC 3261 §22.3), the same failure counting and
//! blocks as registrations.

use std::time::Instant;

use sip::Message;
use transaction::response_to;

use super::{Output, Registrar};
use crate::auth::{AuthHeader, AuthOutcome};
use crate::binding::Flow;
use crate::digest::Algorithms;
use crate::users::User;

impl Registrar {
    /// Checks the `Proxy-Authorization` of `msg` (request `id`, arrived
    /// on `flow`). `Some(user)`: authenticated, go on with the request.
    /// `None`: an answer for `id` was queued ([`Output::Respond`]: 407
    /// with fresh challenges, 400 for malformed credentials, 403 for a
    /// blocked source or locked user) or it is to be dropped
    /// ([`Output::Dropped`]).
    pub fn authorize(&mut self, now: Instant, id: u64, msg: &Message, flow: Flow) -> Option<User> {
        self.counters.authorizations += 1;
        if self.guard.ip_blocked(flow.remote.ip(), now) {
            self.refuse_blocked(now, id, msg, flow);
            return None;
        }
        // As for REGISTER (challenged for the To user), the challenge
        // offers only what the caller named in From has an HA1 for: a user
        // with only an MD5 HA1 gets MD5 alone, not SHA-256 first, which it
        // could never answer (and which phones that stop at the first
        // challenge they cannot compute, such as baresip 1.0, fail on).
        let from_algs = caller_user(msg)
            .and_then(|u| self.users.find(&u))
            .map_or(Algorithms::ALL, |u| u.ha1().algorithms());
        let users = &self.users;
        let outcome = self.auth.check(now, msg, AuthHeader::Proxy, |name| {
            users.by_username(name).map(|u| u.ha1())
        });
        let (stale, algs) = match outcome {
            AuthOutcome::Authorized { username } => {
                let user = self.users.by_username(&username).cloned();
                match user {
                    Some(u) if !self.guard.user_locked(u.username_arc(), now) => return Some(u),
                    Some(_) => {
                        self.refuse_blocked(now, id, msg, flow);
                        return None;
                    }
                    None => {
                        self.respond(id, msg, 403, "Forbidden", None, now);
                        return None;
                    }
                }
            }
            AuthOutcome::Missing { .. } => (false, from_algs),
            AuthOutcome::Stale => {
                self.counters.stale += 1;
                (true, from_algs)
            }
            AuthOutcome::Replay => {
                self.counters.replay += 1;
                (false, from_algs)
            }
            AuthOutcome::Failed { username } => {
                self.counters.auth_failed += 1;
                let known = self.users.by_username(&username).cloned();
                let key = known.as_ref().map(|u| u.username_arc().clone());
                if key.as_ref().is_some_and(|k| self.guard.user_locked(k, now)) {
                    self.refuse_blocked(now, id, msg, flow);
                    return None;
                }
                let f = self.guard.fail(now, flow.remote.ip(), key.as_ref());
                self.counters.sources_blocked += u64::from(f.ip_blocked);
                self.counters.users_locked += u64::from(f.user_locked);
                (false, known.map_or(from_algs, |u| u.ha1().algorithms()))
            }
            AuthOutcome::Malformed(why) | AuthOutcome::TooLarge(why) => {
                self.counters.bad_request += 1;
                self.respond(id, msg, 400, why, None, now);
                return None;
            }
        };
        self.schedule_housekeeping(now);
        self.counters.challenged += 1;
        self.respond(
            id,
            msg,
            407,
            "Proxy Authentication Required",
            Some((stale, algs)),
            now,
        );
        None
    }

    fn refuse_blocked(&mut self, now: Instant, id: u64, msg: &Message, flow: Flow) {
        // Dropped or 403, counted, as for a REGISTER.
        self.answer(now, id, msg, flow, super::Answer::Block);
    }

    fn respond(
        &mut self,
        id: u64,
        msg: &Message,
        code: u16,
        reason: &str,
        challenge: Option<(bool, Algorithms)>,
        now: Instant,
    ) {
        let tag = self.auth.token();
        let Ok(mut r) = response_to(msg, code, reason, Some(&tag)) else {
            self.counters.unanswerable += 1;
            return;
        };
        if let Some((stale, algs)) = challenge {
            if self
                .auth
                .add_challenge(now, &mut r, AuthHeader::Proxy, stale, algs)
                .is_err()
            {
                self.counters.unanswerable += 1;
                return;
            }
        }
        self.out.push_back(Output::Respond { id, response: r });
    }
}

/// The user part of the From URI (a `sip:` user or a `tel:` number), if
/// there is one to look up.
fn caller_user(msg: &Message) -> Option<String> {
    let from = msg.from().ok()?;
    let user = match from.uri {
        sip::Uri::Sip(u) => sip::percent_decode(u.user?).into_owned(),
        sip::Uri::Tel(t) => t.number.as_bytes().to_vec(),
        sip::Uri::Other { .. } => return None,
    };
    String::from_utf8(user).ok()
}
