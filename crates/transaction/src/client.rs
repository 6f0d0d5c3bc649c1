//! The client machines: INVITE (RFC 3261 §17.1.1, RFC 6026 §7.2) and
//! non-INVITE (§17.1.2). Each is an enum of states; `step` consumes the state
//! and an input and returns the next state and the actions to carry out.

use std::time::Duration;

use crate::machine::{Action, Actions, Class, Ctx, TxState};
use crate::timer::Timer;

/// What can happen to a client transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClientInput {
    /// A response matched the transaction.
    Response(Class),
    /// A timer fired.
    Timer(Timer),
    /// The transport reported a failure sending to the peer.
    TransportError,
    /// The TU asked to cancel (INVITE only).
    Cancel,
}

/// INVITE client transaction (Figure 5 of RFC 3261 as updated by RFC 6026).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InviteClient {
    /// INVITE sent; `a` is the current Timer A interval. `cancel_pending`:
    /// the TU asked to cancel before any provisional response (§9.1: the
    /// CANCEL waits for one).
    Calling { a: Duration, cancel_pending: bool },
    /// A provisional arrived. `cancel_sent`: the CANCEL went out, and Timer B
    /// runs again (§9.1: give up 64*T1 after the CANCEL without a final).
    Proceeding { cancel_sent: bool },
    /// A non-2xx final arrived and was ACKed; absorbing retransmissions (D).
    Completed,
    /// A 2xx arrived; further 2xx go to the TU, which ACKs them (M).
    Accepted,
    /// Done.
    Terminated,
}

impl InviteClient {
    /// The request has just been sent.
    pub(crate) fn start(ctx: Ctx<'_>) -> (InviteClient, Actions) {
        let mut out = Actions::new();
        ctx.arm(Timer::A, &mut out);
        ctx.arm(Timer::B, &mut out);
        let state = InviteClient::Calling {
            a: ctx.cfg.t1,
            cancel_pending: false,
        };
        (state, out)
    }

    pub(crate) fn step(self, ctx: Ctx<'_>, input: ClientInput) -> (InviteClient, Actions) {
        use Action::*;
        use ClientInput as I;
        use InviteClient as S;
        let mut out = Actions::new();
        let next = match (self, input) {
            (S::Calling { a, cancel_pending }, I::Timer(Timer::A)) => {
                // No T2 cap for INVITE: 0.5, 1, 2, 4, 8, 16 s (§17.1.1.2).
                let a = a.saturating_mul(2);
                out.extend([Retransmit, Arm(Timer::A, a)]);
                S::Calling { a, cancel_pending }
            }
            (S::Calling { .. }, I::Timer(Timer::B))
            | (S::Proceeding { cancel_sent: true }, I::Timer(Timer::B)) => {
                out.extend([Timeout, Terminate]);
                S::Terminated
            }
            (S::Calling { cancel_pending, .. }, I::Response(Class::Provisional)) => {
                out.extend([Disarm(Timer::A), Disarm(Timer::B), Deliver]);
                if cancel_pending {
                    out.push(SendCancel);
                    ctx.arm(Timer::B, &mut out);
                }
                S::Proceeding {
                    cancel_sent: cancel_pending,
                }
            }
            (S::Proceeding { .. }, I::Response(Class::Provisional)) => {
                out.push(Deliver);
                self
            }
            (S::Calling { .. } | S::Proceeding { .. }, I::Response(Class::Success)) => {
                out.extend([Disarm(Timer::A), Disarm(Timer::B), Deliver]);
                ctx.arm(Timer::M, &mut out);
                S::Accepted
            }
            (S::Calling { .. } | S::Proceeding { .. }, I::Response(Class::Failure)) => {
                out.extend([Disarm(Timer::A), Disarm(Timer::B), SendAck, Deliver]);
                ctx.arm(Timer::D, &mut out);
                S::Completed
            }
            (S::Completed, I::Response(Class::Failure)) => {
                // A retransmitted final: ACK it again, do not bother the TU.
                out.push(SendAck);
                self
            }
            (S::Completed, I::Timer(Timer::D)) | (S::Accepted, I::Timer(Timer::M)) => {
                out.push(Terminate);
                S::Terminated
            }
            (S::Accepted, I::Response(Class::Success)) => {
                // RFC 6026 §7.2: every 2xx goes to the TU, which must ACK it.
                out.push(Deliver);
                self
            }
            (S::Calling { a, .. }, I::Cancel) => S::Calling {
                a,
                cancel_pending: true,
            },
            (S::Proceeding { cancel_sent: false }, I::Cancel) => {
                out.push(SendCancel);
                ctx.arm(Timer::B, &mut out);
                S::Proceeding { cancel_sent: true }
            }
            (S::Calling { .. } | S::Proceeding { .. } | S::Completed, I::TransportError) => {
                out.extend([TransportError, Terminate]);
                S::Terminated
            }
            // Everything else is absorbed: provisionals or 2xx after a non-2xx
            // final, non-2xx in Accepted, stale timers, a second Cancel.
            (s, _) => s,
        };
        (next, out)
    }

    pub(crate) fn state(&self) -> TxState {
        match self {
            InviteClient::Calling { .. } => TxState::Calling,
            InviteClient::Proceeding { .. } => TxState::Proceeding,
            InviteClient::Completed => TxState::Completed,
            InviteClient::Accepted => TxState::Accepted,
            InviteClient::Terminated => TxState::Terminated,
        }
    }
}

/// Non-INVITE client transaction (Figure 6 of RFC 3261).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NonInviteClient {
    /// Request sent; `e` is the current Timer E interval.
    Trying { e: Duration },
    /// A provisional arrived; Timer E now fires every T2.
    Proceeding,
    /// A final arrived; absorbing retransmissions (K).
    Completed,
    /// Done.
    Terminated,
}

impl NonInviteClient {
    pub(crate) fn start(ctx: Ctx<'_>) -> (NonInviteClient, Actions) {
        let mut out = Actions::new();
        ctx.arm(Timer::E, &mut out);
        ctx.arm(Timer::F, &mut out);
        (NonInviteClient::Trying { e: ctx.cfg.t1 }, out)
    }

    pub(crate) fn step(self, ctx: Ctx<'_>, input: ClientInput) -> (NonInviteClient, Actions) {
        use Action::*;
        use ClientInput as I;
        use NonInviteClient as S;
        let mut out = Actions::new();
        let next = match (self, input) {
            (S::Trying { e }, I::Timer(Timer::E)) => {
                let e = e.saturating_mul(2).min(ctx.cfg.t2);
                out.extend([Retransmit, Arm(Timer::E, e)]);
                S::Trying { e }
            }
            (S::Proceeding, I::Timer(Timer::E)) => {
                out.extend([Retransmit, Arm(Timer::E, ctx.cfg.t2)]);
                S::Proceeding
            }
            (S::Trying { .. } | S::Proceeding, I::Timer(Timer::F)) => {
                out.extend([Timeout, Terminate]);
                S::Terminated
            }
            (S::Trying { .. } | S::Proceeding, I::Response(Class::Provisional)) => {
                out.push(Deliver);
                S::Proceeding
            }
            (S::Trying { .. } | S::Proceeding, I::Response(_)) => {
                out.extend([Disarm(Timer::E), Disarm(Timer::F), Deliver]);
                ctx.arm(Timer::K, &mut out);
                S::Completed
            }
            (S::Completed, I::Timer(Timer::K)) => {
                out.push(Terminate);
                S::Terminated
            }
            (S::Trying { .. } | S::Proceeding, I::TransportError) => {
                out.extend([TransportError, Terminate]);
                S::Terminated
            }
            (s, _) => s,
        };
        (next, out)
    }

    pub(crate) fn state(&self) -> TxState {
        match self {
            NonInviteClient::Trying { .. } => TxState::Trying,
            NonInviteClient::Proceeding => TxState::Proceeding,
            NonInviteClient::Completed => TxState::Completed,
            NonInviteClient::Terminated => TxState::Terminated,
        }
    }
}

/// Either client machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClientMachine {
    Invite(InviteClient),
    NonInvite(NonInviteClient),
}

impl ClientMachine {
    pub(crate) fn start(invite: bool, ctx: Ctx<'_>) -> (ClientMachine, Actions) {
        if invite {
            let (s, a) = InviteClient::start(ctx);
            (ClientMachine::Invite(s), a)
        } else {
            let (s, a) = NonInviteClient::start(ctx);
            (ClientMachine::NonInvite(s), a)
        }
    }

    pub(crate) fn step(self, ctx: Ctx<'_>, input: ClientInput) -> (ClientMachine, Actions) {
        match self {
            ClientMachine::Invite(s) => {
                let (s, a) = s.step(ctx, input);
                (ClientMachine::Invite(s), a)
            }
            ClientMachine::NonInvite(s) => {
                let (s, a) = s.step(ctx, input);
                (ClientMachine::NonInvite(s), a)
            }
        }
    }

    pub(crate) fn state(&self) -> TxState {
        match self {
            ClientMachine::Invite(s) => s.state(),
            ClientMachine::NonInvite(s) => s.state(),
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

    fn udp(cfg: &TimerConfig) -> Ctx<'_> {
        Ctx {
            cfg,
            transport: Transport::Udp,
        }
    }

    fn tcp(cfg: &TimerConfig) -> Ctx<'_> {
        Ctx {
            cfg,
            transport: Transport::Tcp,
        }
    }

    const PROV: ClientInput = ClientInput::Response(Class::Provisional);
    const OK: ClientInput = ClientInput::Response(Class::Success);
    const FAIL: ClientInput = ClientInput::Response(Class::Failure);

    #[test]
    fn invite_client_calling_doubles_timer_a_without_cap() {
        let cfg = TimerConfig::default();
        let (mut s, a) = InviteClient::start(udp(&cfg));
        assert_eq!(&a[..], &[Arm(Timer::A, ms(500)), Arm(Timer::B, ms(32_000))]);
        for expect in [1_000, 2_000, 4_000, 8_000, 16_000] {
            let (n, a) = s.step(udp(&cfg), ClientInput::Timer(Timer::A));
            assert_eq!(&a[..], &[Retransmit, Arm(Timer::A, ms(expect))]);
            s = n;
        }
        let (s, a) = s.step(udp(&cfg), ClientInput::Timer(Timer::B));
        assert_eq!(s, InviteClient::Terminated);
        assert_eq!(&a[..], &[Timeout, Terminate]);
    }

    #[test]
    fn invite_client_over_tcp_sets_no_timer_a() {
        let cfg = TimerConfig::default();
        let (_, a) = InviteClient::start(tcp(&cfg));
        assert_eq!(&a[..], &[Arm(Timer::B, ms(32_000))]);
    }

    #[test]
    fn invite_client_provisional_stops_a_and_b() {
        let cfg = TimerConfig::default();
        let (s, _) = InviteClient::start(udp(&cfg));
        let (s, a) = s.step(udp(&cfg), PROV);
        assert_eq!(s, InviteClient::Proceeding { cancel_sent: false });
        assert_eq!(&a[..], &[Disarm(Timer::A), Disarm(Timer::B), Deliver]);
        let (s, a) = s.step(udp(&cfg), PROV);
        assert_eq!(s.state(), TxState::Proceeding);
        assert_eq!(&a[..], &[Deliver]);
    }

    #[test]
    fn invite_client_non_2xx_is_acked_and_waits_timer_d() {
        let cfg = TimerConfig::default();
        let (s, _) = InviteClient::start(udp(&cfg));
        let (s, a) = s.step(udp(&cfg), FAIL);
        assert_eq!(s, InviteClient::Completed);
        assert_eq!(
            &a[..],
            &[
                Disarm(Timer::A),
                Disarm(Timer::B),
                SendAck,
                Deliver,
                Arm(Timer::D, ms(32_000))
            ]
        );
        // Retransmitted final: re-ACK, not delivered.
        let (s, a) = s.step(udp(&cfg), FAIL);
        assert_eq!(&a[..], &[SendAck]);
        // Late provisional or 2xx: absorbed.
        assert!(s.step(udp(&cfg), PROV).1.is_empty());
        assert!(s.step(udp(&cfg), OK).1.is_empty());
        let (s, a) = s.step(udp(&cfg), ClientInput::Timer(Timer::D));
        assert_eq!((s, &a[..]), (InviteClient::Terminated, &[Terminate][..]));
        // Over TCP Timer D is zero.
        let (s, _) = InviteClient::start(tcp(&cfg));
        let (_, a) = s.step(tcp(&cfg), FAIL);
        assert_eq!(a.last(), Some(&Arm(Timer::D, Duration::ZERO)));
    }

    #[test]
    fn invite_client_2xx_enters_accepted_and_delivers_retransmissions() {
        let cfg = TimerConfig::default();
        let (s, _) = InviteClient::start(udp(&cfg));
        let (s, _) = s.step(udp(&cfg), PROV);
        let (s, a) = s.step(udp(&cfg), OK);
        assert_eq!(s, InviteClient::Accepted);
        assert_eq!(
            &a[..],
            &[
                Disarm(Timer::A),
                Disarm(Timer::B),
                Deliver,
                Arm(Timer::M, ms(32_000))
            ]
        );
        let (s, a) = s.step(udp(&cfg), OK);
        assert_eq!(&a[..], &[Deliver]);
        assert!(s.step(udp(&cfg), FAIL).1.is_empty());
        assert!(s.step(udp(&cfg), ClientInput::TransportError).1.is_empty());
        let (s, a) = s.step(udp(&cfg), ClientInput::Timer(Timer::M));
        assert_eq!((s, &a[..]), (InviteClient::Terminated, &[Terminate][..]));
    }

    #[test]
    fn invite_client_cancel_waits_for_a_provisional() {
        let cfg = TimerConfig::default();
        let (s, _) = InviteClient::start(udp(&cfg));
        let (s, a) = s.step(udp(&cfg), ClientInput::Cancel);
        assert!(a.is_empty(), "no CANCEL before a provisional (§9.1)");
        let (s, a) = s.step(udp(&cfg), PROV);
        assert_eq!(s, InviteClient::Proceeding { cancel_sent: true });
        assert_eq!(
            &a[..],
            &[
                Disarm(Timer::A),
                Disarm(Timer::B),
                Deliver,
                SendCancel,
                Arm(Timer::B, ms(32_000))
            ]
        );
        // No final within 64*T1 of the CANCEL: give up.
        let (s, a) = s.step(udp(&cfg), ClientInput::Timer(Timer::B));
        assert_eq!(
            (s, &a[..]),
            (InviteClient::Terminated, &[Timeout, Terminate][..])
        );
    }

    #[test]
    fn invite_client_cancel_in_proceeding_goes_out_at_once() {
        let cfg = TimerConfig::default();
        let (s, _) = InviteClient::start(udp(&cfg));
        let (s, _) = s.step(udp(&cfg), PROV);
        let (s, a) = s.step(udp(&cfg), ClientInput::Cancel);
        assert_eq!(&a[..], &[SendCancel, Arm(Timer::B, ms(32_000))]);
        assert!(s.step(udp(&cfg), ClientInput::Cancel).1.is_empty());
        // Without a CANCEL, Timer B does not run in Proceeding.
        let (p, _) = InviteClient::start(udp(&cfg)).0.step(udp(&cfg), PROV);
        assert!(p.step(udp(&cfg), ClientInput::Timer(Timer::B)).1.is_empty());
    }

    #[test]
    fn invite_client_transport_error_terminates() {
        let cfg = TimerConfig::default();
        let (s, _) = InviteClient::start(tcp(&cfg));
        let (s, a) = s.step(tcp(&cfg), ClientInput::TransportError);
        assert_eq!(s, InviteClient::Terminated);
        assert_eq!(&a[..], &[TransportError, Terminate]);
    }

    #[test]
    fn non_invite_client_timer_e_caps_at_t2() {
        let cfg = TimerConfig::default();
        let (mut s, a) = NonInviteClient::start(udp(&cfg));
        assert_eq!(&a[..], &[Arm(Timer::E, ms(500)), Arm(Timer::F, ms(32_000))]);
        for expect in [1_000, 2_000, 4_000, 4_000, 4_000] {
            let (n, a) = s.step(udp(&cfg), ClientInput::Timer(Timer::E));
            assert_eq!(&a[..], &[Retransmit, Arm(Timer::E, ms(expect))]);
            s = n;
        }
        let (s, a) = s.step(udp(&cfg), ClientInput::Timer(Timer::F));
        assert_eq!(
            (s, &a[..]),
            (NonInviteClient::Terminated, &[Timeout, Terminate][..])
        );
    }

    #[test]
    fn non_invite_client_proceeding_retransmits_every_t2() {
        let cfg = TimerConfig::default();
        let (s, _) = NonInviteClient::start(udp(&cfg));
        let (s, a) = s.step(udp(&cfg), PROV);
        assert_eq!((s, &a[..]), (NonInviteClient::Proceeding, &[Deliver][..]));
        let (s, a) = s.step(udp(&cfg), ClientInput::Timer(Timer::E));
        assert_eq!(&a[..], &[Retransmit, Arm(Timer::E, ms(4_000))]);
        let (s, a) = s.step(udp(&cfg), OK);
        assert_eq!(s, NonInviteClient::Completed);
        assert_eq!(
            &a[..],
            &[
                Disarm(Timer::E),
                Disarm(Timer::F),
                Deliver,
                Arm(Timer::K, ms(5_000))
            ]
        );
        assert!(
            s.step(udp(&cfg), OK).1.is_empty(),
            "retransmitted final absorbed"
        );
        let (s, a) = s.step(udp(&cfg), ClientInput::Timer(Timer::K));
        assert_eq!((s, &a[..]), (NonInviteClient::Terminated, &[Terminate][..]));
    }

    #[test]
    fn non_invite_client_over_tcp_k_is_zero() {
        let cfg = TimerConfig::default();
        let (s, a) = NonInviteClient::start(tcp(&cfg));
        assert_eq!(&a[..], &[Arm(Timer::F, ms(32_000))]);
        let (_, a) = s.step(tcp(&cfg), FAIL);
        assert_eq!(a.last(), Some(&Arm(Timer::K, Duration::ZERO)));
    }
}
