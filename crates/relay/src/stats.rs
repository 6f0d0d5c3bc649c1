//! Per-leg statistics kept on the fast path: counters, last packet time,
//! loss from sequence numbers and RFC 3550 interarrival jitter.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

pub use media::control::LegStats;

/// The relay's control side, from [`crate::Relay::stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayStats {
    /// Sessions set up and not deleted.
    pub sessions: usize,
    /// Session set-ups waiting for their workers now.
    pub backlog: usize,
    /// Creates refused because every worker had `max_backlog` set-ups waiting.
    pub refused_backlog: u64,
    /// Creates refused for want of ports, descriptors (EMFILE) or room in
    /// the workers' socket tables.
    pub refused_no_ports: u64,
    /// Packets (RTP and RTCP) relayed: handed to the other leg's socket.
    /// Like the other worker figures, at most one worker round (500 ms) old.
    pub packets: u64,
    /// Octets of those packets, as sent (SRTP tags included).
    pub bytes: u64,
    /// Packets dropped because their SRTP/SRTCP authentication tag did
    /// not verify (a wrong key, or forged or damaged packets).
    pub auth_failures: u64,
}

/// One relay worker's load, from [`crate::Relay::workers`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerLoad {
    /// Sessions installed in the worker.
    pub sessions: usize,
    /// Packets it relayed (see [`RelayStats::packets`]).
    pub packets: u64,
}

/// What a worker relayed, counted in plain integers on its own thread and
/// published with [`Tally::publish`] once per loop round: the per-packet
/// path touches no shared cache line.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    pub(crate) packets: u64,
    pub(crate) bytes: u64,
    pub(crate) auth_failures: u64,
    /// Completed telephone-events seen since the last round (sent on the
    /// event channel by the worker once per loop round, not per packet).
    pub(crate) dtmf: Vec<crate::engine::RelayEvent>,
}

/// A worker's published figures: written by the worker only (plain
/// stores, no read-modify-write), read by [`crate::Relay::stats`].
#[derive(Debug, Default)]
pub(crate) struct Published {
    sessions: AtomicUsize,
    packets: AtomicU64,
    bytes: AtomicU64,
    auth_failures: AtomicU64,
}

impl Tally {
    /// Publishes the totals so far and the worker's session count.
    pub(crate) fn publish(&self, sessions: usize, to: &Published) {
        to.sessions.store(sessions, Ordering::Relaxed);
        to.packets.store(self.packets, Ordering::Relaxed);
        to.bytes.store(self.bytes, Ordering::Relaxed);
        to.auth_failures
            .store(self.auth_failures, Ordering::Relaxed);
    }
}

impl Published {
    /// Adds this worker's figures to `s`.
    pub(crate) fn add_to(&self, s: &mut RelayStats) {
        s.packets += self.packets.load(Ordering::Relaxed);
        s.bytes += self.bytes.load(Ordering::Relaxed);
        s.auth_failures += self.auth_failures.load(Ordering::Relaxed);
    }

    pub(crate) fn load(&self) -> WorkerLoad {
        WorkerLoad {
            sessions: self.sessions.load(Ordering::Relaxed),
            packets: self.packets.load(Ordering::Relaxed),
        }
    }
}

/// Sequence and timing state of the stream arriving on a leg.
#[derive(Debug, Clone, Default)]
pub(crate) struct StreamState {
    ssrc: Option<u32>,
    base_ext: u64,
    max_ext: u64,
    received: u64,
    last_transit: Option<f64>,
    pub(crate) last_packet: Option<Instant>,
}

impl StreamState {
    /// Accounts one RTP packet (its fixed header) that arrived at `now`;
    /// `clock_rate` converts arrival time to timestamp units.
    pub(crate) fn on_rtp(
        &mut self,
        stats: &mut LegStats,
        header: &[u8; 12],
        now: Instant,
        epoch: Instant,
        clock_rate: u32,
    ) {
        let seq = u16::from_be_bytes([header[2], header[3]]);
        let ts = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
        let ssrc = u32::from_be_bytes([header[8], header[9], header[10], header[11]]);
        if self.ssrc != Some(ssrc) {
            if self.ssrc.is_some() {
                stats.ssrc_changes += 1;
                // Loss so far is kept; a new source starts its own accounting.
                stats.lost += self.lost();
            }
            self.ssrc = Some(ssrc);
            self.base_ext = u64::from(seq);
            self.max_ext = u64::from(seq);
            self.received = 0;
            self.last_transit = None;
        } else {
            // Extend the sequence number relative to the highest seen.
            let max16 = (self.max_ext & 0xffff) as u16;
            let delta = seq.wrapping_sub(max16) as i16;
            let ext = (self.max_ext as i64 + i64::from(delta)).max(0) as u64;
            if ext > self.max_ext {
                self.max_ext = ext;
            }
        }
        self.received += 1;
        let arrival = now.duration_since(epoch).as_secs_f64() * f64::from(clock_rate);
        let transit = arrival - f64::from(ts);
        if let Some(prev) = self.last_transit {
            let d = (transit - prev).abs();
            stats.jitter += (d - stats.jitter) / 16.0;
        }
        self.last_transit = Some(transit);
        self.last_packet = Some(now);
    }

    fn lost(&self) -> u64 {
        let expected = self.max_ext.saturating_sub(self.base_ext) + 1;
        expected.saturating_sub(self.received)
    }

    /// A snapshot of `stats` with loss and idle time filled in.
    pub(crate) fn snapshot(&self, stats: &LegStats, now: Instant) -> LegStats {
        let mut s = *stats;
        if self.ssrc.is_some() {
            s.lost += self.lost();
        }
        s.idle_secs = self
            .last_packet
            .map(|t| now.duration_since(t).as_secs_f64());
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn hdr(seq: u16, ts: u32, ssrc: u32) -> [u8; 12] {
        let mut h = [0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        h[2..4].copy_from_slice(&seq.to_be_bytes());
        h[4..8].copy_from_slice(&ts.to_be_bytes());
        h[8..12].copy_from_slice(&ssrc.to_be_bytes());
        h
    }

    #[test]
    fn loss_is_counted_across_sequence_wrap() {
        let epoch = Instant::now();
        let mut st = StreamState::default();
        let mut s = LegStats::default();
        let mut t = epoch;
        for seq in [65533u16, 65534, 65535, 1, 2, 4] {
            t += Duration::from_millis(20);
            st.on_rtp(&mut s, &hdr(seq, u32::from(seq) * 160, 7), t, epoch, 8000);
        }
        // 65533..=4 is 8 packets; 0 and 3 are missing.
        assert_eq!(st.snapshot(&s, t).lost, 2);
    }

    #[test]
    fn steady_stream_has_no_jitter_and_ssrc_change_is_counted() {
        let epoch = Instant::now();
        let mut st = StreamState::default();
        let mut s = LegStats::default();
        for i in 0..50u32 {
            let t = epoch + Duration::from_millis(20 * u64::from(i));
            st.on_rtp(&mut s, &hdr(i as u16, i * 160, 1), t, epoch, 8000);
        }
        assert!(s.jitter < 0.01, "{}", s.jitter);
        st.on_rtp(
            &mut s,
            &hdr(9000, 0, 2),
            epoch + Duration::from_secs(2),
            epoch,
            8000,
        );
        assert_eq!(s.ssrc_changes, 1);
        assert_eq!(st.snapshot(&s, epoch + Duration::from_secs(2)).lost, 0);
    }
}
