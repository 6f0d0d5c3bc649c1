//! The server machines: INVITE (RFC 3261 §17.2.1, RFC 6026 §7.1) and
//! non-INVITE (§17.2.2).

use std::time::Duration;

use crate::machine::{Action, Actions, Class, Ctx, TxState};
use crate::timer::Timer;

/// What can happen to a server transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ServerInput {
    /// The request arrived again (a retransmission).
    Retransmission,
    /// An ACK matched (INVITE only).
    Ack,
    /// The TU responds (the endpoint checked [`ServerMachine::accepts`]).
    Respond(Class),
    /// A timer fired.
    Timer(Timer),
}

/// INVITE server transaction (Figure 7 of RFC 3261 as updated by RFC 6026).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InviteServer {
    /// INVITE received, 100 Trying sent; the last provisional is resent on
    /// INVITE retransmissions.
    Proceeding,
    /// A non-2xx final was sent; `g` is the current Timer G interval.
    Completed { g: Duration },
    /// The ACK arrived; absorbing ACK retransmissions (I).
    Confirmed,
    /// A 2xx was sent (L); INVITE retransmissions are absorbed, the TU may
    /// send the 2xx again, ACKs that match go to the TU.
    Accepted,
    /// Done.
    Terminated,
}

impl InviteServer {
    pub(crate) fn start() -> (InviteServer, Actions) {
        let mut out = Actions::new();
        out.push(Action::SendTrying);
        (InviteServer::Proceeding, out)
    }

    pub(crate) fn accepts(&self, class: Class) -> bool {
        match self {
            InviteServer::Proceeding => true,
            // RFC 6026 §7.1: "2xx from TU / send response" in Accepted.
            InviteServer::Accepted => class == Class::Success,
            _ => false,
        }
    }

    pub(crate) fn step(self, ctx: Ctx<'_>, input: ServerInput) -> (InviteServer, Actions) {
        use Action::*;
        use InviteServer as S;
        use ServerInput as I;
        let mut out = Actions::new();
        let next = match (self, input) {
            (S::Proceeding, I::Retransmission) => {
                out.push(Resend);
                self
            }
            (S::Proceeding, I::Respond(Class::Provisional)) => {
                out.push(Send);
                self
            }
            (S::Proceeding, I::Respond(Class::Success)) => {
                out.push(Send);
                ctx.arm(Timer::L, &mut out);
                S::Accepted
            }
            (S::Proceeding, I::Respond(Class::Failure)) => {
                out.push(Send);
                ctx.arm(Timer::G, &mut out);
                ctx.arm(Timer::H, &mut out);
                S::Completed { g: ctx.cfg.t1 }
            }
            (S::Completed { .. }, I::Retransmission) => {
                out.push(Resend);
                self
            }
            (S::Completed { g }, I::Timer(Timer::G)) => {
                let g = g.saturating_mul(2).min(ctx.cfg.t2);
                out.extend([Resend, Arm(Timer::G, g)]);
                S::Completed { g }
            }
            (S::Completed { .. }, I::Timer(Timer::H)) => {
                out.extend([Timeout, Terminate]);
                S::Terminated
            }
            (S::Completed { .. }, I::Ack) => {
                out.extend([Disarm(Timer::G), Disarm(Timer::H)]);
                ctx.arm(Timer::I, &mut out);
                S::Confirmed
            }
            (S::Confirmed, I::Timer(Timer::I)) | (S::Accepted, I::Timer(Timer::L)) => {
                out.push(Terminate);
                S::Terminated
            }
            (S::Accepted, I::Respond(Class::Success)) => {
                out.push(Send);
                self
            }
            (S::Accepted, I::Ack) => {
                out.push(DeliverAck);
                self
            }
            // Absorbed: INVITE retransmissions in Accepted and Confirmed, ACKs
            // in Proceeding and Confirmed, responses refused by `accepts`.
            (s, _) => s,
        };
        (next, out)
    }

    pub(crate) fn state(&self) -> TxState {
        match self {
            InviteServer::Proceeding => TxState::Proceeding,
            InviteServer::Completed { .. } => TxState::Completed,
            InviteServer::Confirmed => TxState::Confirmed,
            InviteServer::Accepted => TxState::Accepted,
            InviteServer::Terminated => TxState::Terminated,
        }
    }
}

/// Non-INVITE server transaction (Figure 8 of RFC 3261).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NonInviteServer {
    /// Request received, nothing sent; retransmissions are absorbed.
    Trying,
    /// A provisional was sent; resent on retransmissions.
    Proceeding,
    /// The final was sent; resent on retransmissions until Timer J.
    Completed,
    /// Done.
    Terminated,
}

impl NonInviteServer {
    pub(crate) fn accepts(&self, _class: Class) -> bool {
        matches!(self, NonInviteServer::Trying | NonInviteServer::Proceeding)
    }

    pub(crate) fn step(self, ctx: Ctx<'_>, input: ServerInput) -> (NonInviteServer, Actions) {
        use Action::*;
        use NonInviteServer as S;
        use ServerInput as I;
        let mut out = Actions::new();
        let next = match (self, input) {
            (S::Trying | S::Proceeding, I::Respond(Class::Provisional)) => {
                out.push(Send);
                S::Proceeding
            }
            (S::Trying | S::Proceeding, I::Respond(_)) => {
                out.push(Send);
                ctx.arm(Timer::J, &mut out);
                S::Completed
            }
            (S::Proceeding | S::Completed, I::Retransmission) => {
                out.push(Resend);
                self
            }
            (S::Completed, I::Timer(Timer::J)) => {
                out.push(Terminate);
                S::Terminated
            }
            (s, _) => s,
        };
        (next, out)
    }

    pub(crate) fn state(&self) -> TxState {
        match self {
            NonInviteServer::Trying => TxState::Trying,
            NonInviteServer::Proceeding => TxState::Proceeding,
            NonInviteServer::Completed => TxState::Completed,
            NonInviteServer::Terminated => TxState::Terminated,
        }
    }
}

/// Either server machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ServerMachine {
    Invite(InviteServer),
    NonInvite(NonInviteServer),
}

impl ServerMachine {
    pub(crate) fn start(invite: bool) -> (ServerMachine, Actions) {
        if invite {
            let (s, a) = InviteServer::start();
            (ServerMachine::Invite(s), a)
        } else {
            (
                ServerMachine::NonInvite(NonInviteServer::Trying),
                Actions::new(),
            )
        }
    }

    pub(crate) fn accepts(&self, class: Class) -> bool {
        match self {
            ServerMachine::Invite(s) => s.accepts(class),
            ServerMachine::NonInvite(s) => s.accepts(class),
        }
    }

    pub(crate) fn step(self, ctx: Ctx<'_>, input: ServerInput) -> (ServerMachine, Actions) {
        match self {
            ServerMachine::Invite(s) => {
                let (s, a) = s.step(ctx, input);
                (ServerMachine::Invite(s), a)
            }
            ServerMachine::NonInvite(s) => {
                let (s, a) = s.step(ctx, input);
                (ServerMachine::NonInvite(s), a)
            }
        }
    }

    pub(crate) fn state(&self) -> TxState {
        match self {
            ServerMachine::Invite(s) => s.state(),
            ServerMachine::NonInvite(s) => s.state(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer::Transport;
    use crate::timer::TimerConfig;
    use Action::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn ctx(cfg: &TimerConfig, transport: Transport) -> Ctx<'_> {
        Ctx { cfg, transport }
    }

    const PROV: ServerInput = ServerInput::Respond(Class::Provisional);
    const OK: ServerInput = ServerInput::Respond(Class::Success);
    const FAIL: ServerInput = ServerInput::Respond(Class::Failure);

    #[test]
    fn invite_server_sends_trying_and_resends_last_provisional() {
        let cfg = TimerConfig::default();
        let c = ctx(&cfg, Transport::Udp);
        let (s, a) = InviteServer::start();
        assert_eq!(&a[..], &[SendTrying]);
        assert_eq!(&s.step(c, ServerInput::Retransmission).1[..], &[Resend]);
        let (s, a) = s.step(c, PROV);
        assert_eq!((s, &a[..]), (InviteServer::Proceeding, &[Send][..]));
        assert!(s.step(c, ServerInput::Ack).1.is_empty());
    }

    #[test]
    fn invite_server_non_2xx_retransmits_with_g_until_ack() {
        let cfg = TimerConfig::default();
        let c = ctx(&cfg, Transport::Udp);
        let (s, _) = InviteServer::start();
        let (mut s, a) = s.step(c, FAIL);
        assert_eq!(
            &a[..],
            &[Send, Arm(Timer::G, ms(500)), Arm(Timer::H, ms(32_000))]
        );
        for expect in [1_000, 2_000, 4_000, 4_000] {
            let (n, a) = s.step(c, ServerInput::Timer(Timer::G));
            assert_eq!(&a[..], &[Resend, Arm(Timer::G, ms(expect))]);
            s = n;
        }
        assert_eq!(&s.step(c, ServerInput::Retransmission).1[..], &[Resend]);
        assert!(!s.accepts(Class::Success), "one final per transaction");
        let (s, a) = s.step(c, ServerInput::Ack);
        assert_eq!(s, InviteServer::Confirmed);
        assert_eq!(
            &a[..],
            &[Disarm(Timer::G), Disarm(Timer::H), Arm(Timer::I, ms(5_000))]
        );
        assert!(
            s.step(c, ServerInput::Ack).1.is_empty(),
            "ACK retransmission absorbed"
        );
        assert!(s.step(c, ServerInput::Retransmission).1.is_empty());
        let (s, a) = s.step(c, ServerInput::Timer(Timer::I));
        assert_eq!((s, &a[..]), (InviteServer::Terminated, &[Terminate][..]));
    }

    #[test]
    fn invite_server_timer_h_reports_missing_ack() {
        let cfg = TimerConfig::default();
        let c = ctx(&cfg, Transport::Tcp);
        let (s, a) = InviteServer::start().0.step(c, FAIL);
        assert_eq!(&a[..], &[Send, Arm(Timer::H, ms(32_000))], "no G over TCP");
        let (s, a) = s.step(c, ServerInput::Timer(Timer::H));
        assert_eq!(
            (s, &a[..]),
            (InviteServer::Terminated, &[Timeout, Terminate][..])
        );
        // Over TCP, Timer I is zero.
        let (s, _) = InviteServer::start().0.step(c, FAIL);
        let (_, a) = s.step(c, ServerInput::Ack);
        assert_eq!(a.last(), Some(&Arm(Timer::I, Duration::ZERO)));
    }

    #[test]
    fn invite_server_2xx_enters_accepted() {
        let cfg = TimerConfig::default();
        let c = ctx(&cfg, Transport::Udp);
        let (s, a) = InviteServer::start().0.step(c, OK);
        assert_eq!(
            (s, &a[..]),
            (
                InviteServer::Accepted,
                &[Send, Arm(Timer::L, ms(32_000))][..]
            )
        );
        assert!(
            s.step(c, ServerInput::Retransmission).1.is_empty(),
            "RFC 6026: absorbed"
        );
        assert!(s.accepts(Class::Success) && !s.accepts(Class::Failure));
        assert_eq!(&s.step(c, OK).1[..], &[Send]);
        assert_eq!(&s.step(c, ServerInput::Ack).1[..], &[DeliverAck]);
        let (s, a) = s.step(c, ServerInput::Timer(Timer::L));
        assert_eq!((s, &a[..]), (InviteServer::Terminated, &[Terminate][..]));
    }

    #[test]
    fn non_invite_server_transitions() {
        let cfg = TimerConfig::default();
        let c = ctx(&cfg, Transport::Udp);
        let s = NonInviteServer::Trying;
        assert!(
            s.step(c, ServerInput::Retransmission).1.is_empty(),
            "nothing to resend yet"
        );
        let (s, a) = s.step(c, PROV);
        assert_eq!((s, &a[..]), (NonInviteServer::Proceeding, &[Send][..]));
        assert_eq!(&s.step(c, ServerInput::Retransmission).1[..], &[Resend]);
        let (s, a) = s.step(c, OK);
        assert_eq!(
            (s, &a[..]),
            (
                NonInviteServer::Completed,
                &[Send, Arm(Timer::J, ms(32_000))][..]
            )
        );
        assert!(!s.accepts(Class::Failure));
        assert_eq!(&s.step(c, ServerInput::Retransmission).1[..], &[Resend]);
        let (s, a) = s.step(c, ServerInput::Timer(Timer::J));
        assert_eq!((s, &a[..]), (NonInviteServer::Terminated, &[Terminate][..]));
        let tcp = ctx(&cfg, Transport::Tls);
        let (_, a) = NonInviteServer::Trying.step(tcp, FAIL);
        assert_eq!(&a[..], &[Send, Arm(Timer::J, Duration::ZERO)]);
    }
}
