//! Timers of a call beyond the transaction layer's:
//!
//! - **Timer C** (RFC 3261 §16.6 step 11, §16.7 step 2): an attempt that
//!   got a provisional response and then nothing for the trunk's
//!   `provisional_timeout` is cancelled; it counts as a timeout and the
//!   plan decides what comes next (the next destination when nothing but
//!   100 reached the caller, else 408 to the caller).
//! - **Session timers** (RFC 4028), on each leg on its own: the SBC grants
//!   or refuses (422) what a caller asks, asks for its own interval where
//!   the trunk says so, and — where it is the refresher — refreshes at half
//!   the interval (UPDATE without SDP where the trunk takes UPDATE, else a
//!   re-INVITE with the SDP that party already has). A refresh that fails
//!   with 408 or 481 or gets no answer ends the call (§10); 422 raises the
//!   interval and refreshes again; 491 retries in 2 s. Where the party is
//!   the refresher, no refresh within the interval ends the call.

use super::*;
use trunk::Refresher;

/// What a caller's INVITE gets as session timer on its leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Granted {
    /// No session timer on this leg.
    None,
    /// Interval, and whether the SBC is the refresher.
    Timer { expires: u32, sbc_refreshes: bool },
    /// The interval asked for is below our minimum: 422 with this Min-SE.
    TooSmall(u32),
}

/// `refresher=` of a Session-Expires value (`uac`/`uas`), lower case.
fn refresher_param(v: &str) -> Option<String> {
    v.split(';').skip(1).find_map(|p| {
        let (k, val) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("refresher")
            .then(|| val.trim().to_ascii_lowercase())
    })
}

/// The session interval of a message's Session-Expires (or `x`), as sent.
fn session_expires(m: &Message) -> Option<(u32, Option<String>)> {
    let v = header_by_name(m, "Session-Expires").or_else(|| header_by_name(m, "x"))?;
    Some((leading_number(&v)?, refresher_param(&v)))
}

/// The Min-SE of a message.
fn min_se(m: &Message) -> Option<u32> {
    header_by_name(m, "Min-SE").and_then(|v| leading_number(&v))
}

/// What the UAS side grants a caller on `trunk` (RFC 4028 §9).
pub(super) fn grant(req: &Message, trunk: &TrunkSpec) -> Granted {
    let interop = &trunk.interop;
    let supports = has_token(req, HeaderName::Supported, "timer")
        || has_token(req, HeaderName::Require, "timer");
    let floor = interop
        .min_se
        .max(min_se(req).unwrap_or(0))
        .max(trunk::MIN_SE_FLOOR);
    match session_expires(req) {
        Some((asked, _)) if asked < floor && supports => Granted::TooSmall(floor),
        Some((asked, who)) => {
            let expires = asked.max(floor);
            let sbc_refreshes = match who.as_deref() {
                _ if !supports => true,
                Some("uas") => true,
                Some(_) => false,
                None => interop
                    .session_timer
                    .is_some_and(|s| s.refresher == Refresher::Sbc),
            };
            Granted::Timer {
                expires,
                sbc_refreshes,
            }
        }
        None => match interop.session_timer {
            Some(st) => Granted::Timer {
                expires: st.expires.max(floor),
                sbc_refreshes: !supports || st.refresher == Refresher::Sbc,
            },
            None => Granted::None,
        },
    }
}

impl B2bua {
    /// A refresh (re-INVITE or UPDATE) on leg `li` asking for less than the
    /// trunk's Min-SE, from a party that supports timers, gets 422 like an
    /// initial INVITE (RFC 4028 §8.1); true when it was answered so.
    pub(super) fn refuse_short_interval(
        &mut self,
        key: ServerKey,
        msg: &Message,
        id: u64,
        li: usize,
    ) -> bool {
        let Some((tag, trunk)) = self
            .calls
            .get(&id)
            .map(|c| (c.legs[li].local_tag.clone(), c.legs[li].trunk))
        else {
            return false;
        };
        if session_expires(msg).is_none() {
            return false;
        }
        let Granted::TooSmall(min) = grant(msg, &self.cfg.trunks[trunk]) else {
            return false;
        };
        self.counters.interval_too_small += 1;
        if let Ok(mut r) = response_to(msg, 422, "Session Interval Too Small", Some(&tag)) {
            push(&mut r, "Min-SE", &min.to_string());
            self.decorate(&mut r, Some(trunk));
            self.respond(key, r);
        }
        true
    }

    /// The Session-Expires / Min-SE / Supported of our INVITE toward trunk
    /// `t` for call `id` (after a 422, at least what it asked).
    pub(super) fn session_headers(&self, id: u64, t: usize, m: &mut Message) {
        let interop = &self.cfg.trunks[t].interop;
        if let Some(s) = interop.supported() {
            push(m, "Supported", s);
        }
        if interop.rel100 == trunk::Rel100::Required {
            push(m, "Require", "100rel");
        }
        let floor = self.calls.get(&id).map_or(0, |c| c.se_floor);
        let st = interop.session_timer;
        if st.is_none() && floor == 0 {
            return;
        }
        let expires = st.map_or(0, |s| s.expires).max(floor).max(interop.min_se);
        let who = match st.map(|s| s.refresher) {
            Some(Refresher::Peer) => ";refresher=uas",
            _ => ";refresher=uac",
        };
        if interop.supported().is_none() {
            push(m, "Supported", "timer");
        }
        push(m, "Session-Expires", &format!("{expires}{who}"));
        push(m, "Min-SE", &interop.min_se.max(floor).to_string());
    }

    /// A 422 to the INVITE of leg `li`: the attempt is made again with the
    /// interval it asks for (once per interval). False when it cannot be.
    pub(super) fn retry_422(&mut self, id: u64, li: usize, msg: &Message) -> bool {
        let Some(want) = min_se(msg) else {
            return false;
        };
        let Some(c) = self.calls.get_mut(&id) else {
            return false;
        };
        let transfer = c.refer.as_ref().is_some_and(|r| r.new_leg == li);
        if transfer || !c.is_current(li) || want <= c.se_floor || want > 86_400 {
            return false;
        }
        let Some(att) = c.plan.as_ref().and_then(|p| p.attempts().last()).cloned() else {
            return false;
        };
        c.se_floor = want;
        let t = c.legs[li].trunk;
        if let Some(a) = c.legs[li].attempt.and_then(|a| c.attempts.get_mut(a)) {
            a.outcome = "422, retried".into();
        }
        call_leg_end(&mut self.calls, &mut self.active, id, li);
        self.disarm(id, |x| {
            matches!(x, Timer::Invite { leg, .. } | Timer::Provisional { leg, .. } if *leg == li)
        });
        tracing::info!(
            call = id,
            min_se = want,
            "422: INVITE sent again with a longer session interval"
        );
        if let Err(e) = self.start_attempt(id, &att, t, true) {
            tracing::warn!(call = id, %e, "INVITE after 422 not sent");
            self.attempt_failed(id, li, Outcome::Final(422));
        }
        true
    }

    /// A response to the INVITE of leg `li`: Timer C starts at the first
    /// provisional and restarts at each one after 100; a final stops it.
    pub(super) fn timer_c(&mut self, id: u64, li: usize, status: u16) {
        let Some(c) = self.calls.get(&id) else {
            return;
        };
        let armed = c.timers.iter().any(
            |k| matches!(self.timers.get(k), Some(Timer::Provisional { leg, .. }) if *leg == li),
        );
        let after = self.cfg.trunks[c.legs[li].trunk]
            .interop
            .provisional_timeout;
        // A final stops it, a provisional after 100 restarts it, the
        // first response of all starts it.
        if status > 100 || !armed {
            self.disarm(
                id,
                |t| matches!(t, Timer::Provisional { leg, .. } if *leg == li),
            );
        }
        if status < 200 && (status > 100 || !armed) {
            self.arm(self.now + after, Timer::Provisional { call: id, leg: li });
        }
    }

    /// Timer C fired for leg `li`.
    pub(super) fn on_timer_c(&mut self, id: u64, li: usize) {
        let Some(c) = self.calls.get(&id) else {
            return;
        };
        if c.legs[li].state != LegState::Trying {
            return;
        }
        let transfer = c.refer.as_ref().is_some_and(|r| r.new_leg == li);
        if !transfer && !c.is_current(li) {
            return;
        }
        self.counters.timer_c += 1;
        tracing::info!(call = id, "no final response after a provisional (Timer C)");
        self.abandon(id, li, "timer C");
        self.disarm(
            id,
            |t| matches!(t, Timer::Provisional { leg, .. } if *leg == li),
        );
        if transfer {
            self.transfer_failed(id, li, 408);
        } else {
            self.attempt_failed(id, li, Outcome::Timeout);
        }
    }

    /// The session timer of a leg the SBC called, from its 2xx: who
    /// refreshes, and the first refresh or expiry armed.
    pub(super) fn uac_session_timer(&mut self, id: u64, li: usize, ok: &Message) {
        let Some(c) = self.calls.get(&id) else {
            return;
        };
        let t = c.legs[li].trunk;
        let st = self.cfg.trunks[t].interop.session_timer;
        let (expires, sbc) = match session_expires(ok) {
            Some((se, who)) => (se.max(trunk::MIN_SE_FLOOR), who.as_deref() != Some("uas")),
            // The callee does not do session timers: the SBC refreshes
            // where the trunk says it does (its refreshes find a dead leg).
            None => match st {
                Some(s) if s.refresher == Refresher::Sbc => (s.expires.max(c.se_floor), true),
                _ => return,
            },
        };
        self.start_session_timer(id, li, expires, sbc);
    }

    /// Leg `li` is timed at `expires` s, refreshed by the SBC or the party.
    pub(super) fn start_session_timer(&mut self, id: u64, li: usize, expires: u32, sbc: bool) {
        let Some(c) = self.calls.get_mut(&id) else {
            return;
        };
        let leg = &mut c.legs[li];
        leg.session_expires = Some(expires);
        leg.sbc_refreshes = sbc;
        self.disarm(id, |t| {
            matches!(t, Timer::SessionExpires { leg, .. } | Timer::Refresh { leg, .. } if *leg == li)
        });
        let secs = u64::from(expires);
        if sbc {
            self.arm(
                self.now + Duration::from_millis(secs * 500),
                Timer::Refresh { call: id, leg: li },
            );
        } else {
            self.arm(
                self.now + Duration::from_secs(secs),
                Timer::SessionExpires { call: id, leg: li },
            );
        }
    }

    /// The `Session-Expires` value of our 2xx to a refresh or INVITE on a
    /// leg we time: `N;refresher=uac|uas` as seen from that transaction.
    pub(super) fn session_expires_value(
        expires: u32,
        sbc_refreshes: bool,
        we_are_uas: bool,
    ) -> String {
        let who = if sbc_refreshes == we_are_uas {
            "uas"
        } else {
            "uac"
        };
        format!("{expires};refresher={who}")
    }

    /// Time to refresh leg `li`.
    pub(super) fn on_refresh_timer(&mut self, id: u64, li: usize) {
        let Some(c) = self.calls.get(&id) else {
            return;
        };
        let leg = &c.legs[li];
        if c.state != CallState::Answered || leg.state != LegState::Confirmed {
            return;
        }
        let Some(expires) = leg.session_expires else {
            return;
        };
        // An offer of the call in flight (a forwarded re-INVITE or UPDATE)
        // refreshes the session anyway: try again in a little while.
        if self.held.values().any(|h| h.1 == id) || leg.refreshing {
            self.arm(
                self.now + Duration::from_secs(2),
                Timer::Refresh { call: id, leg: li },
            );
            return;
        }
        let update = self.cfg.trunks[leg.trunk].interop.update;
        let (t, transport) = (leg.trunk, leg.peer.transport);
        let min = self.cfg.trunks[t].interop.min_se;
        let via = self.via(t, transport);
        let Some(c) = self.calls.get_mut(&id) else {
            return;
        };
        let leg = &mut c.legs[li];
        leg.local_cseq += 1;
        let method = if update { "UPDATE" } else { "INVITE" };
        let Some(mut m) = dialog_request(leg, method, leg.local_cseq, &via) else {
            return;
        };
        push(&mut m, "Supported", "timer");
        push(
            &mut m,
            "Session-Expires",
            &format!("{expires};refresher=uac"),
        );
        push(&mut m, "Min-SE", &min.to_string());
        if !update {
            push(&mut m, "Allow", self.cfg.trunks[t].interop.allow());
            if let Some(sdp) = &leg.media.last_local_sdp {
                // The SDP the party has, unchanged (same version): no change
                // of the session (RFC 3264 §8, RFC 6337 §5.3).
                let _ = m.set_body(Some("application/sdp"), sdp);
            }
        }
        let peer = leg.peer;
        leg.refreshing = true;
        self.decorate(&mut m, Some(t));
        let peer = self.in_dialog_peer(t, &mut m, peer);
        match self.ep.send_request(self.now, m, peer) {
            Ok(k) => {
                self.counters.refreshes_sent += 1;
                self.clients
                    .insert(k, Pending::Refresh { call: id, leg: li });
            }
            Err(e) => {
                tracing::info!(call = id, %e, "session refresh not sent");
                if let Some(l) = self.calls.get_mut(&id).map(|c| &mut c.legs[li]) {
                    l.refreshing = false;
                }
                self.refresh_failed(id);
            }
        }
    }

    /// The answer to our refresh of leg `li`.
    pub(super) fn on_refresh_response(&mut self, id: u64, li: usize, msg: &Message, status: u16) {
        if status < 200 {
            return;
        }
        let Some(c) = self.calls.get_mut(&id) else {
            return;
        };
        let leg = &mut c.legs[li];
        leg.refreshing = false;
        let expires = leg.session_expires.unwrap_or(trunk::MIN_SE_FLOOR);
        if (200..300).contains(&status) {
            self.ack_2xx(id, li, msg);
            let (se, sbc) = match session_expires(msg) {
                Some((se, who)) => (se.max(trunk::MIN_SE_FLOOR), who.as_deref() != Some("uas")),
                None => (expires, true),
            };
            self.start_session_timer(id, li, se, sbc);
            return;
        }
        match status {
            408 | 481 => self.refresh_failed(id),
            422 => {
                let want = min_se(msg).unwrap_or(expires).clamp(expires, 86_400);
                if let Some(l) = self.calls.get_mut(&id).map(|c| &mut c.legs[li]) {
                    l.session_expires = Some(want);
                }
                self.on_refresh_timer(id, li);
            }
            _ => {
                // 491 (glare) or another refusal: the session goes on (a
                // non-2xx other than 408/481 does not end it, RFC 4028
                // §10); the next refresh comes sooner.
                let after = if status == 491 {
                    Duration::from_secs(2)
                } else {
                    Duration::from_millis(u64::from(expires) * 250)
                };
                self.arm(self.now + after, Timer::Refresh { call: id, leg: li });
            }
        }
    }

    /// Our refresh got no answer, 408 or 481: the far end is gone.
    pub(super) fn refresh_failed(&mut self, id: u64) {
        self.counters.refresh_failures += 1;
        tracing::info!(call = id, "session refresh failed: call ended");
        self.end_call(id, "session refresh failed", "sbc", 408);
    }

    /// A client failure (timeout, transport) of our refresh of leg `li`.
    pub(super) fn on_refresh_failure(&mut self, id: u64, li: usize) {
        if let Some(l) = self.calls.get_mut(&id).map(|c| &mut c.legs[li]) {
            l.refreshing = false;
        }
        self.refresh_failed(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use trunk::{SessionTimer, TrunkKind};

    fn invite(extra: &str) -> Message {
        let raw = format!(
            "INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n{extra}Content-Length: 0\r\n\r\n"
        );
        Message::parse(Bytes::from(raw)).unwrap()
    }

    #[test]
    fn what_a_caller_is_granted() {
        let mut t = TrunkSpec::new("c", TrunkKind::Carrier, "sbc.example");
        let g = |m: &str, t: &TrunkSpec| grant(&invite(m), t);
        // Nothing asked, nothing configured: no timer (as before).
        assert_eq!(g("", &t), Granted::None);
        // Asked with support: the caller refreshes unless it says uas.
        let asked = "Supported: timer\r\nSession-Expires: 1800\r\n";
        assert_eq!(
            g(asked, &t),
            Granted::Timer {
                expires: 1800,
                sbc_refreshes: false
            }
        );
        assert_eq!(
            g(
                "Supported: timer\r\nSession-Expires: 1800;refresher=uas\r\n",
                &t
            ),
            Granted::Timer {
                expires: 1800,
                sbc_refreshes: true
            }
        );
        // Below our Min-SE: 422 when the caller supports timers, raised
        // when it does not (a proxy put it there), and then we refresh.
        t.interop.min_se = 600;
        assert_eq!(
            g("Supported: timer\r\nSession-Expires: 300\r\n", &t),
            Granted::TooSmall(600)
        );
        assert_eq!(
            g("Session-Expires: 300\r\n", &t),
            Granted::Timer {
                expires: 600,
                sbc_refreshes: true
            }
        );
        // The request's own Min-SE counts too (RFC 4028 §9).
        assert_eq!(
            g(
                "Supported: timer\r\nSession-Expires: 700\r\nMin-SE: 900\r\n",
                &t
            ),
            Granted::TooSmall(900)
        );
        // A trunk timing its legs: the SBC refreshes a caller without support.
        t.interop.session_timer = Some(SessionTimer {
            expires: 1200,
            refresher: Refresher::Peer,
        });
        assert_eq!(
            g("", &t),
            Granted::Timer {
                expires: 1200,
                sbc_refreshes: true
            }
        );
        assert_eq!(
            g("Supported: timer\r\n", &t),
            Granted::Timer {
                expires: 1200,
                sbc_refreshes: false
            }
        );
    }

    #[test]
    fn refresher_is_named_from_the_transaction() {
        // We refresh and answer as UAS: the refresher is the UAS.
        assert_eq!(
            B2bua::session_expires_value(90, true, true),
            "90;refresher=uas"
        );
        assert_eq!(
            B2bua::session_expires_value(90, false, true),
            "90;refresher=uac"
        );
        assert_eq!(
            B2bua::session_expires_value(90, true, false),
            "90;refresher=uac"
        );
        assert_eq!(refresher_param("1800; Refresher = UAS"), Some("uas".into()));
        assert_eq!(refresher_param("1800"), None);
    }
}
