//! Demultiplexing of one UDP port (RFC 7983, RFC 5761).
//!
//! RFC 7983 §7 tells STUN, ZRTP, DTLS, TURN channel data and RTP/RTCP apart
//! by the first byte; RFC 5761 §4 tells RTP from RTCP on an rtcp-mux port by
//! the second byte: RTCP packet types 192–223 (SR 200, RR 201, SDES 202, BYE
//! 203, APP 204, feedback 205/206, XR 207) fall where an RTP packet would
//! need the marker bit and a payload type 64–95, which RFC 5761 forbids on
//! a muxed port.

/// What a datagram on a media port is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PacketClass {
    /// First byte 0–3: STUN (ICE connectivity checks, consent).
    Stun,
    /// First byte 16–19: ZRTP.
    Zrtp,
    /// First byte 20–63: DTLS.
    Dtls,
    /// First byte 64–79: TURN channel data.
    TurnChannel,
    /// First byte 128–191 and a second byte outside 192–223: RTP (or SRTP).
    Rtp,
    /// First byte 128–191 and a second byte in 192–223: RTCP (or SRTCP).
    Rtcp,
    /// Anything else (including an empty datagram or a lone RTP/RTCP byte).
    Unknown,
}

/// Classifies a datagram by its first two bytes (RFC 7983, RFC 5761). Only
/// the class is decided here; the parsers check the rest.
///
/// ```
/// use media::{classify, PacketClass};
/// assert_eq!(classify(&[0x80, 0x00, 0, 1]), PacketClass::Rtp);
/// assert_eq!(classify(&[0x81, 200, 0, 6]), PacketClass::Rtcp);
/// assert_eq!(classify(&[0x00, 0x01, 0, 0]), PacketClass::Stun);
/// assert_eq!(classify(&[22, 0xfe, 0xfd]), PacketClass::Dtls);
/// ```
#[inline]
#[must_use]
pub fn classify(packet: &[u8]) -> PacketClass {
    let Some(&b0) = packet.first() else {
        return PacketClass::Unknown;
    };
    match b0 {
        0..=3 => PacketClass::Stun,
        16..=19 => PacketClass::Zrtp,
        20..=63 => PacketClass::Dtls,
        64..=79 => PacketClass::TurnChannel,
        128..=191 => match packet.get(1) {
            Some(192..=223) => PacketClass::Rtcp,
            Some(_) => PacketClass::Rtp,
            None => PacketClass::Unknown,
        },
        _ => PacketClass::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_first_byte_has_one_class() {
        for b in 0..=255u8 {
            let c = classify(&[b, 0]);
            let expected = match b {
                0..=3 => PacketClass::Stun,
                16..=19 => PacketClass::Zrtp,
                20..=63 => PacketClass::Dtls,
                64..=79 => PacketClass::TurnChannel,
                128..=191 => PacketClass::Rtp,
                _ => PacketClass::Unknown,
            };
            assert_eq!(c, expected, "first byte {b}");
        }
    }

    #[test]
    fn rtcp_mux_splits_by_second_byte() {
        for pt in 0..=255u8 {
            let c = classify(&[0x80, pt]);
            if (192..=223).contains(&pt) {
                assert_eq!(c, PacketClass::Rtcp);
            } else {
                assert_eq!(c, PacketClass::Rtp);
            }
        }
        // PCMU with the marker bit is still RTP; dynamic PT 96 with marker (224) too.
        assert_eq!(classify(&[0x80, 0x80]), PacketClass::Rtp);
        assert_eq!(classify(&[0x80, 0xe0]), PacketClass::Rtp);
        assert_eq!(classify(&[0x80]), PacketClass::Unknown);
        assert_eq!(classify(&[]), PacketClass::Unknown);
    }
}
