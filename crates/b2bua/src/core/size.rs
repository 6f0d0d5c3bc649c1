//! Which transport a request of ours goes on (RFC 3261 §18.1.1): a request
//! larger than 1300 bytes toward a UDP peer goes over TCP when the trunk
//! takes TCP, its top Via changed to say so; if TCP is refused for a
//! request sent over it only for its size, that request is retried over
//! UDP (the RFC's SHOULD).

use super::*;

/// The largest request sent over UDP when the path MTU is unknown.
pub(super) const UDP_MAX: usize = 1300;

impl B2bua {
    /// Where request `m` of trunk `trunk`, built for `to`, goes: `to`
    /// itself, or — when `to` is UDP, the trunk takes TCP, `tcp` allows it
    /// and `m` is larger than [`UDP_MAX`] — the same address over TCP, with
    /// `m`'s top Via rewritten to TCP.
    pub(super) fn fit_transport(&self, trunk: usize, m: &mut Message, to: Peer, tcp: bool) -> Peer {
        if to.transport != Transport::Udp
            || !tcp
            || !self.cfg.trunks[trunk].takes(Transport::Tcp)
            || m.to_bytes().len() <= UDP_MAX
        {
            return to;
        }
        let Some(via) = m.header(HeaderName::Via) else {
            return to;
        };
        let via = String::from_utf8_lossy(via);
        let Some(rest) = via
            .get(..11)
            .filter(|p| p.eq_ignore_ascii_case("SIP/2.0/UDP"))
            .and_then(|_| via.get(11..))
        else {
            return to;
        };
        let tcp_via = format!("SIP/2.0/TCP{rest}");
        if m.set_header("Via", tcp_via.as_bytes()).is_err() {
            return to;
        }
        Peer {
            transport: Transport::Tcp,
            conn: None,
            ..to
        }
    }

    /// [`B2bua::fit_transport`] for an in-dialog request on a UDP leg: only
    /// toward an address configured as one of the trunk's peers (where its
    /// TCP listener is, RFC 3261 §18); toward anything else (the source
    /// port a caller's INVITE came from) the request stays on UDP.
    pub(super) fn in_dialog_peer(&self, trunk: usize, m: &mut Message, to: Peer) -> Peer {
        if self.cfg.trunks[trunk]
            .peers
            .iter()
            .any(|p| p.addr == Some(to.addr))
        {
            self.fit_transport(trunk, m, to, true)
        } else {
            to
        }
    }

    /// True when leg `li` of call `id` went over TCP only because its
    /// INVITE was too large for UDP: its peer is configured for UDP.
    pub(super) fn sized_to_tcp(&self, id: u64, li: usize) -> bool {
        let Some(leg) = self.calls.get(&id).and_then(|c| c.legs.get(li)) else {
            return false;
        };
        leg.peer.transport == Transport::Tcp
            && leg
                .peer_index
                .and_then(|pi| self.cfg.trunks[leg.trunk].peers.get(pi))
                .is_some_and(|p| p.transport == Transport::Udp)
    }

    /// TCP refused (connection refused or reset) for the INVITE of the
    /// current attempt, which went over TCP only for its size: the attempt
    /// is made again to the same peer over UDP (RFC 3261 §18.1.1), with a
    /// fresh leg; the peer is not taken down (its UDP may be fine). False
    /// when this is not such a failure, and nothing was done.
    pub(super) fn retry_over_udp(&mut self, id: u64, li: usize) -> bool {
        if !self.sized_to_tcp(id, li) {
            return false;
        }
        let Some(c) = self.calls.get_mut(&id) else {
            return false;
        };
        let transfer = c.refer.as_ref().is_some_and(|r| r.new_leg == li);
        if transfer || !c.is_current(li) || c.legs[li].state != LegState::Trying {
            return false;
        }
        let Some(att) = c.plan.as_ref().and_then(|p| p.attempts().last()).cloned() else {
            return false;
        };
        c.legs[li].state = LegState::Ended;
        let t = c.legs[li].trunk;
        if let Some(a) = c.legs[li].attempt.and_then(|a| c.attempts.get_mut(a)) {
            a.outcome = "tcp refused, retried over udp".into();
        }
        self.active[t] = self.active[t].saturating_sub(1);
        self.disarm(id, |x| matches!(x, Timer::Invite { leg, .. } if *leg == li));
        tracing::info!(call = id, trunk = %att.trunk, "TCP refused for a large INVITE: retried over UDP");
        if let Err(e) = self.start_attempt(id, &att, t, false) {
            tracing::warn!(call = id, %e, "retry over UDP not started");
            self.attempt_failed(id, li, Outcome::TransportError);
        }
        true
    }
}
