//! Tones a worker plays toward a party (`MediaOp::Tone`: local ringback).
//!
//! A playing tone is an entry in the worker's short list [`Tones`], apart
//! from the forwarding state: the per-packet path does not look at it. The
//! worker's wait gets a timeout (the next tone packet's due time) only
//! while the list is not empty; with no tone the loop waits exactly as it
//! did before (epoll: 500 ms; io_uring: no timeout, its multishot tick).
//! Each loop round then sends every tone packet that is due: a 12-byte
//! header of the tone's own (random SSRC, sequence number and timestamp,
//! marker bit on the first packet) and 160 samples copied from the
//! precomputed [`ToneSignal`], SRTP-protected with the leg's send context
//! when the leg is SRTP, sent from the leg's RTP socket to its remote
//! address (epoll: `sendto`; io_uring: a send from one of the ring's own
//! buffers, which the kernel never receives into).
//!
//! A tone ends when the control side stops it, when its session is
//! removed, or when the other leg has received RTP since the tone began:
//! that RTP is forwarded toward the party (early media), which takes over.

use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, Instant};

use media::control::{Side, ToneSpec};
use media::tone::{ToneSignal, PACKET_SAMPLES};

use super::{Leg, Session, Slot, Worker, TAILROOM};
use crate::sys::uring::Uring;

/// One packet every 20 ms.
pub(super) const PTIME: Duration = Duration::from_millis(20);
/// Own buffers of an io_uring worker for tone packets (tones sending at
/// once; a tone finding none sends its packet in a later round).
pub(super) const RING_BUFFERS: u16 = 256;
/// Packets one tone sends in one round when the worker woke late; beyond
/// that it skips ahead (the timestamp follows the clock, the sequence
/// number does not jump: a receiver sees a pause, not a loss).
const CATCH_UP: u32 = 5;
/// RTP header + 20 ms of G.711.
const PACKET: usize = 12 + PACKET_SAMPLES;
/// The shortest wait a due tone asks for (no spinning while its packet
/// waits for a buffer).
const MIN_WAIT: Duration = Duration::from_millis(1);

/// A tone toward the party of one leg.
#[derive(Debug)]
pub(super) struct Playing {
    id: u64,
    /// Index of the session in the worker's slab.
    session: usize,
    side: Side,
    signal: ToneSignal,
    pt: u8,
    ssrc: u32,
    seq: u16,
    ts: u32,
    /// Samples since the tone began (where the cadence is).
    pos: u64,
    /// When the next packet is due.
    next: Instant,
    first: bool,
    /// RTP packets the other leg had received when the tone began.
    other_packets: u64,
}

impl Playing {
    /// Writes the next packet (header and samples) into `buf`.
    fn write(&self, buf: &mut [u8]) -> usize {
        buf[0] = 0x80;
        buf[1] = self.pt & 0x7f | if self.first { 0x80 } else { 0 };
        buf[2..4].copy_from_slice(&self.seq.to_be_bytes());
        buf[4..8].copy_from_slice(&self.ts.to_be_bytes());
        buf[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        self.signal.fill(self.pos, &mut buf[12..PACKET]);
        PACKET
    }

    /// `n` packets' worth of time on; the sequence number only for those sent.
    fn advance(&mut self, n: u32, sent: bool) {
        let samples = PACKET_SAMPLES as u32 * n;
        self.ts = self.ts.wrapping_add(samples);
        self.pos += u64::from(samples);
        self.next += PTIME * n;
        if sent {
            self.seq = self.seq.wrapping_add(1);
            self.first = false;
        }
    }
}

/// The tones of one worker.
#[derive(Debug, Default)]
pub(super) struct Tones {
    playing: Vec<Playing>,
    /// epoll: where a packet is written and protected.
    scratch: Vec<u8>,
    /// io_uring: the ring's own buffers not being sent.
    free: Vec<u16>,
}

impl Tones {
    /// True when no tone plays (the worker's wait is then as without tones).
    pub(super) fn is_empty(&self) -> bool {
        self.playing.is_empty()
    }

    /// How long the worker may wait before the next tone packet is due;
    /// `None` with no tone. Reads the clock only when a tone plays.
    pub(super) fn timeout(&self, cap: Duration) -> Option<Duration> {
        let next = self.playing.iter().map(|t| t.next).min()?;
        let wait = next.saturating_duration_since(Instant::now());
        Some(wait.clamp(MIN_WAIT, cap))
    }

    /// The io_uring worker's own buffers, all free.
    pub(super) fn set_ring_buffers(&mut self, bids: impl Iterator<Item = u16>) {
        self.free = bids.collect();
    }

    /// A tone packet's send completed: its buffer is free again.
    pub(super) fn sent(&mut self, bid: u16) {
        self.free.push(bid);
    }

    /// Stops the tone toward the party of `side` of session `id` (if any).
    pub(super) fn stop(&mut self, id: u64, side: Side) {
        self.playing.retain(|t| t.id != id || t.side != side);
    }

    /// Forgets the tones of a removed session.
    pub(super) fn remove_session(&mut self, id: u64) {
        self.playing.retain(|t| t.id != id);
    }

    /// Tones playing toward `(id, side)`, for tests.
    #[cfg(test)]
    fn playing(&self, id: u64, side: Side) -> bool {
        self.playing.iter().any(|t| t.id == id && t.side == side)
    }
}

/// Random SSRC, sequence number and timestamp (RFC 3550 §5.1: all three
/// random), from the process's random hash keys.
fn random(id: u64, side: Side) -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(id);
    h.write_usize(side.index());
    h.finish()
}

fn other(side: Side) -> usize {
    match side {
        Side::A => 1,
        Side::B => 0,
    }
}

impl Worker {
    /// Applies `MediaOp::Tone`: `Some` (re)starts the tone toward the
    /// party of `side`, `None` stops it.
    pub(super) fn tone(&mut self, id: u64, side: Side, spec: Option<Box<ToneSpec>>) {
        self.tones.stop(id, side);
        let Some(spec) = spec else {
            return;
        };
        let Some(&index) = self.sessions.ids.get(&id) else {
            tracing::debug!(session = id, "tone for no session");
            return;
        };
        let Some(s) = self.sessions.at(index) else {
            return;
        };
        let signal = match ToneSignal::new(&spec.tone, spec.law) {
            Ok(sig) => sig,
            Err(e) => {
                tracing::warn!(session = id, %e, "tone not played");
                return;
            }
        };
        let r = random(id, side);
        self.tones.playing.push(Playing {
            id,
            session: index,
            side,
            signal,
            pt: spec.payload_type,
            ssrc: r as u32,
            seq: (r >> 32) as u16,
            ts: (r >> 16) as u32 & 0x7fff_ffff,
            pos: 0,
            next: Instant::now(),
            first: true,
            other_packets: s.legs[other(side)].stats.packets,
        });
        if self.tones.scratch.len() < PACKET + TAILROOM {
            self.tones.scratch = vec![0; PACKET + TAILROOM];
        }
    }

    /// Sends every tone packet due at `now` (through `ring` on io_uring,
    /// else with `sendto`) and ends the tones whose session is gone or
    /// whose party now gets RTP from the other leg.
    pub(super) fn play_tones(&mut self, now: Instant, mut ring: Option<&mut Uring>) {
        let Worker {
            tones,
            sessions,
            slots,
            ..
        } = self;
        let Tones {
            playing,
            scratch,
            free,
        } = tones;
        let mut i = 0;
        while i < playing.len() {
            let t = &mut playing[i];
            let session = sessions.at(t.session).filter(|s| s.id == t.id);
            let go_on = match session {
                Some(s) => play(t, s, slots, now, scratch, free, ring.as_deref_mut()),
                None => false,
            };
            if go_on {
                i += 1;
            } else {
                playing.swap_remove(i);
            }
        }
    }
}

/// Sends what is due of tone `t` in session `s`; false when the tone ends
/// (RTP from the other leg has begun).
fn play(
    t: &mut Playing,
    s: &mut Session,
    slots: &[Option<Slot>],
    now: Instant,
    scratch: &mut [u8],
    free: &mut Vec<u16>,
    mut ring: Option<&mut Uring>,
) -> bool {
    if s.legs[other(t.side)].stats.packets > t.other_packets {
        tracing::debug!(session = t.id, side = ?t.side, "RTP from the other leg: tone ends");
        return false;
    }
    let leg: &mut Leg = &mut s.legs[t.side.index()];
    let mut sent = 0;
    while t.next <= now {
        if sent == CATCH_UP {
            // Late (a stalled worker): skip what cannot be sent in time.
            let behind = now.saturating_duration_since(t.next).as_micros() / PTIME.as_micros();
            t.advance(u32::try_from(behind + 1).unwrap_or(u32::MAX), false);
            break;
        }
        let Some(dest) = leg.remote_rtp else {
            // Nowhere to send yet: the time passes all the same.
            t.advance(1, false);
            sent += 1;
            continue;
        };
        let done = match ring.as_deref_mut() {
            Some(u) => {
                let Some(bid) = free.pop() else {
                    // Every own buffer is being sent: the next round.
                    break;
                };
                let queued = send_ring(t, leg, slots, u, bid, dest);
                if !queued {
                    free.push(bid);
                }
                queued
            }
            None => send_epoll(t, leg, slots, scratch, dest),
        };
        t.advance(1, done);
        sent += 1;
    }
    true
}

/// Writes, protects and sends one packet with `sendto`.
fn send_epoll(
    t: &Playing,
    leg: &mut Leg,
    slots: &[Option<Slot>],
    buf: &mut [u8],
    dest: std::net::SocketAddr,
) -> bool {
    let len = t.write(buf);
    let Ok(len) = leg.crypto.protect_rtp(buf, len) else {
        return false;
    };
    let socket = slots
        .get(leg.rtp_slot)
        .and_then(Option::as_ref)
        .and_then(|s| s.socket.as_ref());
    socket.is_some_and(|s| s.send_to(&buf[..len], dest).is_ok())
}

/// Writes and protects one packet in the ring's own buffer `bid` and
/// queues its send (submitted with the worker's next wait). True when queued.
fn send_ring(
    t: &Playing,
    leg: &mut Leg,
    slots: &[Option<Slot>],
    u: &mut Uring,
    bid: u16,
    dest: std::net::SocketAddr,
) -> bool {
    // Only through a socket in the ring's table (see `on_recv`).
    let registered = slots
        .get(leg.rtp_slot)
        .and_then(Option::as_ref)
        .is_some_and(|s| s.socket.is_none());
    if !registered {
        return false;
    }
    let buf = u.buffer(bid);
    let len = t.write(buf);
    let Ok(len) = leg.crypto.protect_rtp(buf, len) else {
        return false;
    };
    let ud = super::ud(super::KIND_TONE, u32::from(bid), leg.rtp_slot);
    u.send(leg.rtp_slot as u32, bid, 0, len, dest, ud).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use media::tone::{Tone, G711};

    fn playing(first: bool) -> Playing {
        Playing {
            id: 7,
            session: 0,
            side: Side::A,
            signal: ToneSignal::new(&Tone::named("de").unwrap(), G711::Pcma).unwrap(),
            pt: 8,
            ssrc: 0x1234_5678,
            seq: 0xffff,
            ts: u32::MAX - 100,
            pos: 0,
            next: Instant::now(),
            first,
            other_packets: 0,
        }
    }

    #[test]
    fn packets_carry_their_own_header_and_the_marker_only_first() {
        let mut t = playing(true);
        let mut buf = [0u8; PACKET];
        assert_eq!(t.write(&mut buf), 172);
        assert_eq!(&buf[..2], &[0x80, 0x88], "version 2, marker, PT 8");
        assert_eq!(&buf[2..4], &[0xff, 0xff]);
        assert_eq!(&buf[8..12], &[0x12, 0x34, 0x56, 0x78]);
        assert!(
            buf[12..].iter().any(|&b| b != 0xd5),
            "tone in the first second"
        );
        let due = t.next;
        t.advance(1, true);
        t.write(&mut buf);
        assert_eq!(buf[1], 8, "no marker after the first");
        assert_eq!(&buf[2..4], &[0, 0], "sequence number wraps");
        assert_eq!(u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]), 59);
        assert_eq!(t.next, due + PTIME);
        // Skipping ahead moves the clock, not the sequence number.
        t.advance(10, false);
        assert_eq!(t.seq, 0);
        assert_eq!(t.pos, 11 * 160);
    }

    #[test]
    fn the_list_times_the_wait_only_while_a_tone_plays() {
        let mut tones = Tones::default();
        assert!(tones.is_empty());
        assert_eq!(tones.timeout(Duration::from_millis(500)), None);
        tones.playing.push(playing(true));
        let mut late = playing(true);
        late.id = 8;
        late.next += Duration::from_millis(15);
        tones.playing.push(late);
        let w = tones.timeout(Duration::from_millis(500)).unwrap();
        assert_eq!(w, MIN_WAIT, "a packet due now: the shortest wait");
        tones.playing[0].next += Duration::from_secs(1);
        let w = tones.timeout(Duration::from_millis(500)).unwrap();
        assert!(
            w <= Duration::from_millis(15) && w > Duration::from_millis(5),
            "{w:?}"
        );
        tones.stop(7, Side::B);
        assert!(tones.playing(7, Side::A), "another side's stop leaves it");
        tones.stop(7, Side::A);
        assert!(!tones.playing(7, Side::A));
        tones.remove_session(8);
        assert!(tones.is_empty());
    }
}
