//! What a party's stream carries, and the payload-type rewriting between
//! two parties.
//!
//! Each party numbers its dynamic payload types itself (a carrier may put
//! `telephone-event` on 96, 100 or 101, Microsoft uses 101). What a party
//! writes in its SDP is the numbering it receives with (RFC 3264 §5.1),
//! and by far the most endpoints send with the same numbers. So a packet
//! on its way from party X to party Y carries the number X gave the
//! encoding and must leave with the number Y gave it: [`PtMap::between`]
//! builds that table once per SDP change (the slow path); the relay applies
//! it with one lookup per packet ([`PtMap::rewrite`]), and not at all when
//! the numbering is the same on both sides (no map).
//!
//! A stream that is not RTP (T.38 over UDPTL, `m=image … udptl t38`) is
//! [`PayloadSpec::raw`]: its datagrams pass unchanged and unparsed.
//!
//! [`TelephoneEvent`] reads an RFC 4733 event payload (DTMF).

/// One payload format a party declared: its payload type and the encoding
/// it names (from `a=rtpmap`, or the static table of RFC 3551).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadFormat {
    /// The RTP payload type (0–127).
    pub pt: u8,
    /// Encoding name as written (`PCMA`, `telephone-event`, `CN`…);
    /// compared case-insensitively.
    pub encoding: String,
    /// RTP clock rate, Hz.
    pub clock_rate: u32,
}

impl PayloadFormat {
    /// A format.
    pub fn new(pt: u8, encoding: &str, clock_rate: u32) -> PayloadFormat {
        PayloadFormat {
            pt,
            encoding: encoding.to_owned(),
            clock_rate,
        }
    }

    /// The same encoding at the same clock rate.
    pub fn same_as(&self, other: &PayloadFormat) -> bool {
        self.clock_rate == other.clock_rate && self.encoding.eq_ignore_ascii_case(&other.encoding)
    }

    /// An RFC 4733 `telephone-event` format.
    pub fn is_telephone_event(&self) -> bool {
        self.encoding.eq_ignore_ascii_case("telephone-event")
    }
}

/// What a party's stream carries, as read from its last SDP.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PayloadSpec {
    /// The formats the party declared, in its order. Empty: not known
    /// (no SDP yet); nothing is rewritten toward or from such a party.
    pub formats: Vec<PayloadFormat>,
    /// The stream is not RTP (T.38 over UDPTL): datagrams pass as they are,
    /// nothing is parsed, rewritten or reported.
    pub raw: bool,
}

impl PayloadSpec {
    /// An RTP stream with these formats.
    pub fn rtp(formats: Vec<PayloadFormat>) -> PayloadSpec {
        PayloadSpec {
            formats,
            raw: false,
        }
    }

    /// A stream that is not RTP (T.38 over UDPTL).
    pub fn raw() -> PayloadSpec {
        PayloadSpec {
            formats: Vec::new(),
            raw: true,
        }
    }

    /// The format of payload type `pt`, if declared.
    pub fn format(&self, pt: u8) -> Option<&PayloadFormat> {
        self.formats.iter().find(|f| f.pt == pt)
    }

    /// The first `telephone-event` format (its payload type and clock rate).
    pub fn telephone_event(&self) -> Option<&PayloadFormat> {
        self.formats.iter().find(|f| f.is_telephone_event())
    }
}

/// Payload-type rewriting for one direction (sender → receiver), a table
/// of the 128 payload types: identity where nothing changes.
#[derive(Clone, PartialEq, Eq)]
pub struct PtMap {
    to: [u8; 128],
}

impl std::fmt::Debug for PtMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let changed: Vec<(usize, u8)> = self
            .to
            .iter()
            .enumerate()
            .filter(|&(i, &t)| i != usize::from(t))
            .map(|(i, &t)| (i, t))
            .collect();
        f.debug_struct("PtMap").field("changed", &changed).finish()
    }
}

impl PtMap {
    /// The value of a payload type whose packets are dropped: a
    /// `telephone-event` the receiver did not declare (it takes DTMF
    /// another way, e.g. SIP INFO, or not at all).
    pub const DROP: u8 = 0xff;

    /// The map for packets from a party with `sender`'s formats to one
    /// with `receiver`'s: each sender payload type whose encoding and clock
    /// rate the receiver declared under another number gets that number; a
    /// `telephone-event` the receiver has not declared at that rate is
    /// dropped; everything else passes unchanged. `None` when nothing
    /// changes (the same numbering, a side not known yet, a raw stream):
    /// the relay then does no lookup at all.
    pub fn between(sender: &PayloadSpec, receiver: &PayloadSpec) -> Option<PtMap> {
        if sender.raw || receiver.raw || sender.formats.is_empty() || receiver.formats.is_empty() {
            return None;
        }
        // Identity: index i < 128 holds i.
        let mut to: [u8; 128] = std::array::from_fn(|i| i as u8);
        let mut changed = false;
        let mut seen = [false; 128];
        for f in &sender.formats {
            let Some(slot) = seen.get_mut(usize::from(f.pt)) else {
                continue;
            };
            if std::mem::replace(slot, true) {
                continue; // a payload type declared twice: the first counts
            }
            let target = match receiver.formats.iter().find(|g| g.same_as(f)) {
                Some(g) if g.pt < 128 => g.pt,
                Some(_) => continue,
                None if f.is_telephone_event() => PtMap::DROP,
                None => continue,
            };
            if target != f.pt {
                to[usize::from(f.pt)] = target;
                changed = true;
            }
        }
        changed.then_some(PtMap { to })
    }

    /// The payload type a packet of type `pt` leaves with
    /// ([`PtMap::DROP`]: dropped).
    #[inline]
    pub fn get(&self, pt: u8) -> u8 {
        self.to[usize::from(pt & 0x7f)]
    }

    /// Rewrites the second octet of an RTP header (marker bit and payload
    /// type): the payload type per the map, the marker bit kept. `None`:
    /// the packet is to be dropped.
    #[inline]
    pub fn rewrite(&self, second_octet: u8) -> Option<u8> {
        let t = self.get(second_octet);
        (t != PtMap::DROP).then_some((second_octet & 0x80) | t)
    }
}

/// An RFC 4733 §2.3 event payload (the first four octets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// The event: 0–9 the digits, 10 `*`, 11 `#`, 12–15 A–D, 16 flash.
    pub event: u8,
    /// The E bit: the last packet(s) of the event.
    pub end: bool,
    /// Power level, −dBm0 (0–63).
    pub volume: u8,
    /// Duration so far, in timestamp units.
    pub duration: u16,
}

impl TelephoneEvent {
    /// Reads an event payload; `None` when it is shorter than four octets.
    pub fn parse(payload: &[u8]) -> Option<TelephoneEvent> {
        let b = payload.get(..4)?;
        Some(TelephoneEvent {
            event: b[0],
            end: b[1] & 0x80 != 0,
            volume: b[1] & 0x3f,
            duration: u16::from_be_bytes([b[2], b[3]]),
        })
    }

    /// The event as a DTMF character (`0`–`9`, `*`, `#`, `A`–`D`, `!` for
    /// flash), or `None` for the other events of RFC 4733 / RFC 4734.
    pub fn dtmf_char(event: u8) -> Option<char> {
        Some(match event {
            0..=9 => char::from(b'0' + event),
            10 => '*',
            11 => '#',
            12..=15 => char::from(b'A' + event - 12),
            16 => '!',
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn carrier() -> PayloadSpec {
        PayloadSpec::rtp(vec![
            PayloadFormat::new(8, "PCMA", 8000),
            PayloadFormat::new(0, "PCMU", 8000),
            PayloadFormat::new(96, "telephone-event", 8000),
            PayloadFormat::new(98, "CN", 8000),
        ])
    }

    fn teams() -> PayloadSpec {
        PayloadSpec::rtp(vec![
            PayloadFormat::new(8, "PCMA", 8000),
            PayloadFormat::new(101, "TELEPHONE-EVENT", 8000),
            PayloadFormat::new(13, "CN", 8000),
        ])
    }

    #[test]
    fn telephone_event_and_dynamic_cn_are_renumbered_each_way() {
        let c2t = PtMap::between(&carrier(), &teams()).expect("a map");
        assert_eq!(c2t.get(96), 101);
        assert_eq!(c2t.get(98), 13);
        assert_eq!(c2t.get(8), 8);
        // PCMU is not in Teams' answer: it passes as it is.
        assert_eq!(c2t.get(0), 0);
        let t2c = PtMap::between(&teams(), &carrier()).expect("a map");
        assert_eq!(t2c.get(101), 96);
        assert_eq!(t2c.get(13), 98);
        assert_eq!(t2c.get(8), 8);
    }

    #[test]
    fn the_marker_bit_is_kept() {
        let m = PtMap::between(&carrier(), &teams()).unwrap();
        assert_eq!(m.rewrite(0x80 | 96), Some(0x80 | 101));
        assert_eq!(m.rewrite(96), Some(101));
        assert_eq!(m.rewrite(0x88), Some(0x88));
    }

    #[test]
    fn the_same_numbering_or_an_unknown_side_needs_no_map() {
        assert_eq!(PtMap::between(&teams(), &teams()), None);
        assert_eq!(PtMap::between(&teams(), &PayloadSpec::default()), None);
        assert_eq!(PtMap::between(&PayloadSpec::default(), &teams()), None);
        assert_eq!(PtMap::between(&PayloadSpec::raw(), &teams()), None);
        assert_eq!(PtMap::between(&teams(), &PayloadSpec::raw()), None);
    }

    #[test]
    fn telephone_event_toward_a_party_without_it_is_dropped() {
        let voice_only = PayloadSpec::rtp(vec![PayloadFormat::new(8, "PCMA", 8000)]);
        let m = PtMap::between(&carrier(), &voice_only).unwrap();
        assert_eq!(m.rewrite(96), None);
        assert_eq!(m.rewrite(8), Some(8));
        // Another clock rate is another format (RFC 4733 §2.1: the rate of the audio).
        let wide = PayloadSpec::rtp(vec![PayloadFormat::new(101, "telephone-event", 16000)]);
        assert_eq!(
            PtMap::between(&carrier(), &wide).unwrap().get(96),
            PtMap::DROP
        );
    }

    #[test]
    fn swapped_numbers_swap_and_duplicates_count_once() {
        let x = PayloadSpec::rtp(vec![
            PayloadFormat::new(96, "telephone-event", 8000),
            PayloadFormat::new(97, "opus", 48000),
            PayloadFormat::new(96, "opus", 48000),
        ]);
        let y = PayloadSpec::rtp(vec![
            PayloadFormat::new(97, "telephone-event", 8000),
            PayloadFormat::new(96, "opus", 48000),
        ]);
        let m = PtMap::between(&x, &y).unwrap();
        assert_eq!((m.get(96), m.get(97)), (97, 96));
    }

    #[test]
    fn out_of_range_payload_types_are_ignored() {
        let x = PayloadSpec::rtp(vec![PayloadFormat::new(200, "telephone-event", 8000)]);
        let y = PayloadSpec::rtp(vec![PayloadFormat::new(101, "telephone-event", 8000)]);
        assert_eq!(PtMap::between(&x, &y), None);
        let y = PayloadSpec::rtp(vec![PayloadFormat::new(200, "telephone-event", 8000)]);
        let x = PayloadSpec::rtp(vec![PayloadFormat::new(101, "telephone-event", 8000)]);
        assert_eq!(PtMap::between(&x, &y), None);
    }

    #[test]
    fn telephone_event_payloads_are_read() {
        let e = TelephoneEvent::parse(&[0x05, 0x8a, 0x03, 0x20]).unwrap();
        assert_eq!(
            e,
            TelephoneEvent {
                event: 5,
                end: true,
                volume: 10,
                duration: 800
            }
        );
        assert!(!TelephoneEvent::parse(&[1, 0x0a, 0, 160]).unwrap().end);
        assert_eq!(TelephoneEvent::parse(&[1, 2, 3]), None);
        let chars: String = (0..=17).filter_map(TelephoneEvent::dtmf_char).collect();
        assert_eq!(chars, "0123456789*#ABCD!");
    }
}
