//! The per-datagram path of a worker: one datagram of one leg relayed in
//! place toward the other leg (latch, unprotect, account, renumber the
//! payload type, protect), and the payload state of a leg that the slow
//! path installs for it (payload-type maps, raw streams, telephone-event
//! reporting).

use std::net::SocketAddr;
use std::time::Instant;

use media::control::{PayloadSpec, PtMap, Side};
use media::payload::TelephoneEvent;
use media::RtpPacket;

use super::{Leg, RelayEvent};
use crate::crypto::CryptoError;
use crate::stats::Tally;

/// What is the same for every datagram of one read: the session, the leg
/// and port it came to, the time.
#[derive(Clone, Copy)]
pub(super) struct Arrival {
    pub(super) id: u64,
    /// The leg the datagram arrived on.
    pub(super) side: Side,
    pub(super) on_rtcp_port: bool,
    pub(super) now: Instant,
    pub(super) epoch: Instant,
    pub(super) clock_rate: u32,
}

/// The payload state of a leg, installed by the slow path.
#[derive(Debug, Default)]
pub(super) struct Payload {
    /// What the leg's party declared (its last SDP).
    spec: PayloadSpec,
    /// Renumbering of packets sent *to* this leg's party: from the other
    /// party's numbering to this one's. `None`: nothing changes, and the
    /// fast path does no lookup.
    toward: Option<Box<PtMap>>,
    /// The telephone-event payload type this party sends, and its clock
    /// rate: its completed events are reported ([`RelayEvent::Dtmf`]).
    events: Option<(u8, u32)>,
    /// The last event reported from this party (RTP timestamp and SSRC):
    /// an event's end packet comes three times (RFC 4733 §2.5.1.4).
    last_end: Option<(u32, u32)>,
}

impl Payload {
    /// A leg's state from its party's formats (no map until both are known).
    pub(super) fn new(spec: PayloadSpec) -> Payload {
        let mut p = Payload::default();
        p.set(spec);
        p
    }

    fn set(&mut self, spec: PayloadSpec) {
        self.events = spec
            .telephone_event()
            .filter(|_| !spec.raw)
            .map(|f| (f.pt, f.clock_rate));
        self.spec = spec;
    }

    /// True when the leg's party sends something that is not RTP (T.38).
    pub(super) fn raw(&self) -> bool {
        self.spec.raw
    }
}

/// Installs what party `side` of a session declared and derives both
/// directions' maps again from the two legs' formats (the slow path).
pub(super) fn set_payload(legs: &mut [Leg; 2], side: Side, spec: PayloadSpec) {
    legs[side.index()].payload.set(spec);
    derive_maps(legs);
}

/// Both directions' maps from the legs' current formats.
pub(super) fn derive_maps(legs: &mut [Leg; 2]) {
    let (a, b) = (&legs[0].payload.spec, &legs[1].payload.spec);
    let toward_a = PtMap::between(b, a).map(Box::new);
    let toward_b = PtMap::between(a, b).map(Box::new);
    legs[0].payload.toward = toward_a;
    legs[1].payload.toward = toward_b;
}

/// Relays one datagram of leg `from` in place (latch, unprotect, account,
/// renumber, protect for `to`); returns the worker slot of the socket to
/// send it from, its length and its destination, or `None` if it is
/// dropped (counted in `from`'s statistics; a telephone-event the other
/// party did not declare is dropped without being counted). What is
/// relayed, SRTP authentication failures and completed telephone-events
/// are added to the worker's `tally` as well.
pub(super) fn forward(
    from: &mut Leg,
    to: &mut Leg,
    at: &Arrival,
    src: SocketAddr,
    buf: &mut [u8],
    len: usize,
    tally: &mut Tally,
) -> Option<(usize, usize, SocketAddr)> {
    if from.payload.raw() {
        return forward_raw(from, to, at, src, len, tally);
    }
    let Arrival {
        id,
        side,
        on_rtcp_port,
        now,
        epoch,
        clock_rate,
    } = *at;
    // RFC 5761 / 7983: on a muxed port, RTCP has packet types 192..=223 in byte 1.
    let is_rtcp = on_rtcp_port || (len >= 2 && (192..=223).contains(&buf[1]) && (buf[0] >> 6) == 2);
    if len < if is_rtcp { 8 } else { 12 } || (buf[0] >> 6) != 2 {
        from.stats.dropped += 1;
        return None;
    }
    latch(from, is_rtcp, src, id)?;
    // Decrypt what the party sent (if it speaks SRTP).
    let plain_len = if is_rtcp {
        from.crypto.unprotect_rtcp(buf, len)
    } else {
        from.crypto.unprotect_rtp(buf, len)
    };
    let plain_len = match plain_len {
        Ok(n) => n,
        Err(e) => {
            match e {
                CryptoError::Auth => {
                    from.stats.auth_failures += 1;
                    tally.auth_failures += 1;
                }
                CryptoError::Replay => from.stats.replays += 1,
                _ => from.stats.dropped += 1,
            }
            return None;
        }
    };
    if is_rtcp {
        from.stats.rtcp_packets += 1;
    } else {
        from.stats.packets += 1;
        let mut header = [0u8; 12];
        header.copy_from_slice(&buf[..12]);
        from.stream
            .on_rtp(&mut from.stats, &header, now, epoch, clock_rate);
    }
    from.stats.bytes += len as u64;
    if !is_rtcp {
        // A telephone-event of this party: its end is reported once.
        if let Some((pt, rate)) = from.payload.events {
            if buf[1] & 0x7f == pt {
                on_event(&mut from.payload, id, side, &buf[..plain_len], rate, tally);
            }
        }
        // The other party's numbering (plaintext, before protecting).
        if let Some(map) = &to.payload.toward {
            buf[1] = map.rewrite(buf[1])?;
        }
    }
    // Encrypt for the other party (if it speaks SRTP).
    let out_len = if is_rtcp {
        to.crypto.protect_rtcp(buf, plain_len)
    } else {
        to.crypto.protect_rtp(buf, plain_len)
    };
    let Ok(out_len) = out_len else {
        from.stats.dropped += 1;
        return None;
    };
    let (dest, slot) = if is_rtcp && !to.rtcp_mux {
        (to.remote_rtcp, to.rtcp_slot)
    } else {
        (to.remote_rtp, to.rtp_slot)
    };
    let Some(dest) = dest else {
        from.stats.dropped += 1;
        return None;
    };
    tally.packets += 1;
    tally.bytes += out_len as u64;
    Some((slot, out_len, dest))
}

/// Source check: latch to the first packet (and follow a source that
/// changes, as NAT rebinding does), or in strict mode accept only the SDP
/// address (`None`: dropped, counted).
fn latch(from: &mut Leg, is_rtcp: bool, src: SocketAddr, id: u64) -> Option<()> {
    let (remote, latched) = if is_rtcp && !from.rtcp_mux {
        (&mut from.remote_rtcp, &mut from.latched_rtcp)
    } else {
        (&mut from.remote_rtp, &mut from.latched_rtp)
    };
    if from.strict {
        if *remote != Some(src) {
            from.stats.wrong_source += 1;
            return None;
        }
    } else if !*latched || *remote != Some(src) {
        if *latched && remote.is_some() {
            // A latched source changing mid-call: follow it (NAT rebinding),
            // as rtpengine does without strict-source.
            tracing::debug!(id, %src, "media source changed");
        }
        *remote = Some(src);
        *latched = true;
    }
    Some(())
}

/// A datagram of a stream that is not RTP (T.38 over UDPTL): latched like
/// RTP on the leg's RTP port and sent to the other party's RTP address as
/// it is. Only between plain legs (an SRTP leg cannot carry it: dropped);
/// what arrives on the RTCP port of such a leg is dropped.
fn forward_raw(
    from: &mut Leg,
    to: &mut Leg,
    at: &Arrival,
    src: SocketAddr,
    len: usize,
    tally: &mut Tally,
) -> Option<(usize, usize, SocketAddr)> {
    if at.on_rtcp_port || len == 0 || !from.crypto.is_plain() || !to.crypto.is_plain() {
        from.stats.dropped += 1;
        return None;
    }
    latch(from, false, src, at.id)?;
    from.stats.packets += 1;
    from.stats.bytes += len as u64;
    from.stream.last_packet = Some(at.now);
    let Some(dest) = to.remote_rtp else {
        from.stats.dropped += 1;
        return None;
    };
    tally.packets += 1;
    tally.bytes += len as u64;
    Some((to.rtp_slot, len, dest))
}

/// A telephone-event packet (plaintext) of a party: the first packet with
/// the E bit of each event (timestamp, SSRC) is reported.
fn on_event(p: &mut Payload, id: u64, side: Side, pkt: &[u8], rate: u32, tally: &mut Tally) {
    let Ok(rtp) = RtpPacket::parse(pkt) else {
        return;
    };
    let Some(ev) = TelephoneEvent::parse(rtp.payload()) else {
        return;
    };
    if !ev.end {
        return;
    }
    let h = rtp.header();
    let key = (h.timestamp(), h.ssrc());
    if p.last_end == Some(key) {
        return;
    }
    p.last_end = Some(key);
    // Bounded: the worker hands them to the event channel once per loop
    // round; a party sending hundreds of distinct events within one round
    // loses the excess.
    if tally.dtmf.len() < 256 {
        tally.dtmf.push(RelayEvent::Dtmf {
            id,
            side,
            event: ev.event,
            duration: ev.duration,
            clock_rate: rate,
        });
    }
}
