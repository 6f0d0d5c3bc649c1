//! Timers A–M as data: their configuration (RFC 3261 Table 4, RFC 6026) and
//! the per-transaction table whose minimum is the next wake-up.

use std::fmt;
use std::time::{Duration, Instant};

use crate::peer::Transport;

/// The transaction timers of RFC 3261 §17 (Table 4) and RFC 6026.
/// Timer C belongs to proxies (§16.6) and is not a transaction timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Timer {
    /// INVITE client: request retransmission interval (UDP only), T1 doubling.
    A,
    /// INVITE client: transaction timeout in Calling, 64*T1.
    B,
    /// INVITE client: wait time for response retransmissions in Completed,
    /// ≥ 32 s over UDP, 0 over TCP/TLS.
    D,
    /// Non-INVITE client: request retransmission interval (UDP only), T1
    /// doubling up to T2.
    E,
    /// Non-INVITE client: transaction timeout, 64*T1.
    F,
    /// INVITE server: final response retransmission interval (UDP only), T1
    /// doubling up to T2.
    G,
    /// INVITE server: wait time for ACK receipt, 64*T1.
    H,
    /// INVITE server: wait time for ACK retransmissions in Confirmed, T4
    /// over UDP, 0 over TCP/TLS.
    I,
    /// Non-INVITE server: wait time for request retransmissions in
    /// Completed, 64*T1 over UDP, 0 over TCP/TLS.
    J,
    /// Non-INVITE client: wait time for response retransmissions in
    /// Completed, T4 over UDP, 0 over TCP/TLS.
    K,
    /// INVITE server (RFC 6026): wait time for INVITE retransmissions in
    /// Accepted, 64*T1.
    L,
    /// INVITE client (RFC 6026): wait time for 2xx retransmissions in
    /// Accepted, 64*T1.
    M,
}

impl Timer {
    /// Every timer, in table order.
    pub const ALL: [Timer; 12] = [
        Timer::A,
        Timer::B,
        Timer::D,
        Timer::E,
        Timer::F,
        Timer::G,
        Timer::H,
        Timer::I,
        Timer::J,
        Timer::K,
        Timer::L,
        Timer::M,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Timer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timer {self:?}")
    }
}

/// Timer values. `Default` gives RFC 3261's: T1 500 ms, T2 4 s, T4 5 s,
/// timeouts of 64*T1 (32 s), Timer D 32 s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerConfig {
    /// RTT estimate; first retransmission interval (A, E, G).
    pub t1: Duration,
    /// Maximum retransmission interval for non-INVITE requests and INVITE
    /// responses (E, G).
    pub t2: Duration,
    /// Maximum time a message may remain in the network (I, K).
    pub t4: Duration,
    /// Multiple of T1 for the transaction timeouts B, F, H, J (UDP), L, M.
    /// RFC 3261: 64.
    pub timeout_multiplier: u32,
    /// Timer B when set (a failover layer may want to give up on a silent
    /// INVITE sooner than 32 s); `None`: `timeout_multiplier * t1`.
    pub timer_b: Option<Duration>,
    /// Timer F when set; `None`: `timeout_multiplier * t1`.
    pub timer_f: Option<Duration>,
    /// Timer D over UDP (RFC 3261: at least 32 s). Zero over TCP/TLS.
    pub timer_d: Duration,
}

impl Default for TimerConfig {
    fn default() -> Self {
        TimerConfig {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
            timeout_multiplier: 64,
            timer_b: None,
            timer_f: None,
            timer_d: Duration::from_secs(32),
        }
    }
}

/// Why a [`TimerConfig`] is unusable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimerConfigError {
    /// T1 is zero (retransmissions would never back off).
    ZeroT1,
    /// T2 is smaller than T1.
    T2BelowT1,
    /// The timeout multiplier is zero.
    ZeroMultiplier,
    /// Timer B or F is set to zero.
    ZeroTimeout,
    /// Timer D is below RFC 3261's minimum of 32 s for UDP.
    TimerDTooShort,
}

impl fmt::Display for TimerConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TimerConfigError::ZeroT1 => "T1 must be greater than zero",
            TimerConfigError::T2BelowT1 => "T2 must not be smaller than T1",
            TimerConfigError::ZeroMultiplier => "the timeout multiplier must be at least 1",
            TimerConfigError::ZeroTimeout => "Timer B and Timer F must be greater than zero",
            TimerConfigError::TimerDTooShort => {
                "Timer D must be at least 32 s (RFC 3261 §17.1.1.2)"
            }
        })
    }
}

impl std::error::Error for TimerConfigError {}

impl TimerConfig {
    /// `timeout_multiplier * T1` (64*T1 = 32 s by default): Timers H, J, L, M.
    pub fn timeout(&self) -> Duration {
        self.t1.saturating_mul(self.timeout_multiplier)
    }

    /// Timer B.
    pub fn timer_b(&self) -> Duration {
        self.timer_b.unwrap_or_else(|| self.timeout())
    }

    /// Timer F.
    pub fn timer_f(&self) -> Duration {
        self.timer_f.unwrap_or_else(|| self.timeout())
    }

    /// The value a timer is first set to on `transport`; `None` for a
    /// retransmission timer (A, E, G) on a reliable transport, which is
    /// never set. Zero means "fires at once".
    pub fn initial(&self, timer: Timer, transport: Transport) -> Option<Duration> {
        let reliable = transport.is_reliable();
        let unless_reliable = |d: Duration| if reliable { Duration::ZERO } else { d };
        match timer {
            Timer::A | Timer::E | Timer::G => (!reliable).then_some(self.t1),
            Timer::B => Some(self.timer_b()),
            Timer::F => Some(self.timer_f()),
            Timer::D => Some(unless_reliable(self.timer_d)),
            Timer::H | Timer::L | Timer::M => Some(self.timeout()),
            Timer::J => Some(unless_reliable(self.timeout())),
            Timer::I | Timer::K => Some(unless_reliable(self.t4)),
        }
    }

    /// Checks the values against RFC 3261's constraints. The endpoint runs
    /// with whatever it is given; a configuration loader calls this.
    pub fn validate(&self) -> Result<(), TimerConfigError> {
        if self.t1.is_zero() {
            return Err(TimerConfigError::ZeroT1);
        }
        if self.t2 < self.t1 {
            return Err(TimerConfigError::T2BelowT1);
        }
        if self.timeout_multiplier == 0 {
            return Err(TimerConfigError::ZeroMultiplier);
        }
        if self.timer_b.is_some_and(|d| d.is_zero()) || self.timer_f.is_some_and(|d| d.is_zero()) {
            return Err(TimerConfigError::ZeroTimeout);
        }
        if self.timer_d < Duration::from_secs(32) {
            return Err(TimerConfigError::TimerDTooShort);
        }
        Ok(())
    }
}

/// The deadlines of one transaction's timers, indexed by [`Timer`]. The next
/// wake-up of the transaction is the minimum.
#[derive(Debug, Clone, Default)]
pub(crate) struct TimerTable {
    at: [Option<Instant>; 12],
}

impl TimerTable {
    pub(crate) fn set(&mut self, timer: Timer, at: Instant) {
        self.at[timer.index()] = Some(at);
    }

    pub(crate) fn stop(&mut self, timer: Timer) {
        self.at[timer.index()] = None;
    }

    #[cfg(test)]
    pub(crate) fn get(&self, timer: Timer) -> Option<Instant> {
        self.at[timer.index()]
    }

    /// The earliest armed timer (ties: table order).
    pub(crate) fn next(&self) -> Option<(Instant, Timer)> {
        Timer::ALL
            .iter()
            .filter_map(|&t| self.at[t.index()].map(|at| (at, t)))
            .min()
    }

    /// The earliest timer due at `now`, disarmed.
    pub(crate) fn take_due(&mut self, now: Instant) -> Option<Timer> {
        let (at, t) = self.next()?;
        if at > now {
            return None;
        }
        self.stop(t);
        Some(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3261_defaults() {
        let c = TimerConfig::default();
        c.validate().unwrap();
        let udp = Transport::Udp;
        let tcp = Transport::Tcp;
        let s = Duration::from_secs;
        assert_eq!(c.initial(Timer::A, udp), Some(Duration::from_millis(500)));
        assert_eq!(c.initial(Timer::A, tcp), None);
        assert_eq!(c.initial(Timer::E, tcp), None);
        assert_eq!(c.initial(Timer::G, tcp), None);
        assert_eq!(c.initial(Timer::B, tcp), Some(s(32)));
        assert_eq!(c.initial(Timer::F, udp), Some(s(32)));
        assert_eq!(c.initial(Timer::D, udp), Some(s(32)));
        assert_eq!(c.initial(Timer::D, tcp), Some(Duration::ZERO));
        assert_eq!(c.initial(Timer::H, tcp), Some(s(32)));
        assert_eq!(c.initial(Timer::I, udp), Some(s(5)));
        assert_eq!(c.initial(Timer::I, tcp), Some(Duration::ZERO));
        assert_eq!(c.initial(Timer::J, udp), Some(s(32)));
        assert_eq!(c.initial(Timer::J, tcp), Some(Duration::ZERO));
        assert_eq!(c.initial(Timer::K, udp), Some(s(5)));
        assert_eq!(c.initial(Timer::K, tcp), Some(Duration::ZERO));
        assert_eq!(c.initial(Timer::L, udp), Some(s(32)));
        assert_eq!(c.initial(Timer::M, udp), Some(s(32)));
    }

    #[test]
    fn explicit_timeouts_and_validation() {
        let c = TimerConfig {
            timer_b: Some(Duration::from_secs(8)),
            ..TimerConfig::default()
        };
        assert_eq!(c.timer_b(), Duration::from_secs(8));
        assert_eq!(c.timer_f(), Duration::from_secs(32));
        let short_d = TimerConfig {
            timer_d: Duration::from_secs(5),
            ..TimerConfig::default()
        };
        assert_eq!(short_d.validate(), Err(TimerConfigError::TimerDTooShort));
        let bad_t2 = TimerConfig {
            t2: Duration::from_millis(100),
            ..TimerConfig::default()
        };
        assert_eq!(bad_t2.validate(), Err(TimerConfigError::T2BelowT1));
    }

    #[test]
    fn table_minimum_is_next_wakeup() {
        // Instants cannot be built from nothing without a clock read; tests may read it.
        #[allow(clippy::disallowed_methods)]
        let t0 = Instant::now();
        let mut t = TimerTable::default();
        assert_eq!(t.next(), None);
        t.set(Timer::B, t0 + Duration::from_secs(32));
        t.set(Timer::A, t0 + Duration::from_millis(500));
        assert_eq!(t.next(), Some((t0 + Duration::from_millis(500), Timer::A)));
        assert_eq!(t.take_due(t0), None);
        assert_eq!(t.take_due(t0 + Duration::from_secs(1)), Some(Timer::A));
        assert_eq!(t.get(Timer::A), None);
        t.stop(Timer::B);
        assert_eq!(t.next(), None);
    }
}
