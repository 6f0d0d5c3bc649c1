//! RTCP packet views (RFC 3550 §6): compound iteration with length checks,
//! typed views of SR, RR, SDES, BYE and APP, and a generic view of every
//! other type (feedback, XR, …).
//!
//! Nothing is copied; every view borrows the datagram. Lengths are checked
//! before any field is read, so the views never panic.

use core::fmt;

/// Sender report.
pub const RTCP_SR: u8 = 200;
/// Receiver report.
pub const RTCP_RR: u8 = 201;
/// Source description.
pub const RTCP_SDES: u8 = 202;
/// Goodbye.
pub const RTCP_BYE: u8 = 203;
/// Application-defined.
pub const RTCP_APP: u8 = 204;
/// Transport-layer feedback (RFC 4585).
pub const RTCP_RTPFB: u8 = 205;
/// Payload-specific feedback (RFC 4585).
pub const RTCP_PSFB: u8 = 206;
/// Extended reports (RFC 3611).
pub const RTCP_XR: u8 = 207;

/// Why bytes are not (valid) RTCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RtcpError {
    /// Fewer than 4 bytes where a packet header should be.
    TooShort,
    /// The version field is not 2.
    BadVersion(u8),
    /// The length field says more bytes than remain.
    LengthOverrun,
    /// The P bit is set but the padding count is 0, not a multiple of 4 or
    /// larger than the packet body.
    BadPadding,
    /// Padding in a packet that is not the last of the compound (RFC 3550 §6.4.1).
    PaddingNotLast,
    /// The compound does not start with an SR or RR (RFC 3550 §6.1, A.2).
    FirstNotReport,
    /// The packet is too short for its type and count (e.g. an SR without
    /// its sender info, fewer report blocks than RC says).
    BadLength {
        /// The packet type.
        packet_type: u8,
    },
    /// An SDES chunk or item runs past the end of the packet, or has no
    /// terminating null item.
    BadSdes,
}

impl fmt::Display for RtcpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooShort => f.write_str("RTCP packet shorter than its 4-byte header"),
            Self::BadVersion(v) => write!(f, "RTCP version {v}, expected 2"),
            Self::LengthOverrun => f.write_str("RTCP length field runs past the datagram"),
            Self::BadPadding => f.write_str("RTCP padding count is invalid"),
            Self::PaddingNotLast => {
                f.write_str("RTCP padding in a packet that is not the last of the compound")
            }
            Self::FirstNotReport => f.write_str("RTCP compound does not start with SR or RR"),
            Self::BadLength { packet_type } => {
                write!(f, "RTCP packet type {packet_type} too short for its count")
            }
            Self::BadSdes => f.write_str("RTCP SDES chunk or item is malformed"),
        }
    }
}

impl std::error::Error for RtcpError {}

#[inline]
fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// A compound RTCP datagram (plaintext; for SRTCP, after unprotect).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtcpCompound<'a> {
    buf: &'a [u8],
}

impl<'a> RtcpCompound<'a> {
    /// Wraps a datagram; nothing is checked until iteration.
    #[must_use]
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    /// The packets in order; an error ends the iteration.
    #[must_use]
    pub fn iter(&self) -> RtcpIter<'a> {
        RtcpIter {
            rest: self.buf,
            failed: false,
        }
    }

    /// The RFC 3550 Appendix A.2 validity checks: every packet parses, the
    /// lengths add up to the datagram exactly, only the last packet is
    /// padded, and, unless `reduced_size` (RFC 5506) is allowed, the first
    /// packet is an SR or RR. Typed packets are also checked against their
    /// counts.
    ///
    /// # Errors
    /// The first problem found.
    pub fn validate(&self, reduced_size: bool) -> Result<(), RtcpError> {
        let mut first = true;
        let mut padded = false;
        for p in self.iter() {
            let p = p?;
            if padded {
                return Err(RtcpError::PaddingNotLast);
            }
            if first && !reduced_size && !matches!(p.packet_type(), RTCP_SR | RTCP_RR) {
                return Err(RtcpError::FirstNotReport);
            }
            first = false;
            padded = p.padding();
            p.kind()?;
        }
        if first {
            return Err(RtcpError::TooShort);
        }
        Ok(())
    }
}

impl<'a> IntoIterator for RtcpCompound<'a> {
    type Item = Result<RtcpPacket<'a>, RtcpError>;
    type IntoIter = RtcpIter<'a>;

    fn into_iter(self) -> RtcpIter<'a> {
        self.iter()
    }
}

/// Iterator over the packets of an [`RtcpCompound`].
#[derive(Debug, Clone)]
pub struct RtcpIter<'a> {
    rest: &'a [u8],
    failed: bool,
}

impl<'a> Iterator for RtcpIter<'a> {
    type Item = Result<RtcpPacket<'a>, RtcpError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.is_empty() {
            return None;
        }
        match RtcpPacket::parse_first(self.rest) {
            Ok((p, rest)) => {
                self.rest = rest;
                Some(Ok(p))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// One RTCP packet: its 4-byte header and `length` words of body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtcpPacket<'a> {
    /// The whole packet, header and padding included.
    buf: &'a [u8],
    padding_len: usize,
}

impl<'a> RtcpPacket<'a> {
    /// Parses the first packet of `buf` and returns it with what follows.
    ///
    /// # Errors
    /// [`RtcpError::TooShort`], [`RtcpError::BadVersion`],
    /// [`RtcpError::LengthOverrun`] or [`RtcpError::BadPadding`].
    pub fn parse_first(buf: &'a [u8]) -> Result<(Self, &'a [u8]), RtcpError> {
        if buf.len() < 4 {
            return Err(RtcpError::TooShort);
        }
        let version = buf[0] >> 6;
        if version != 2 {
            return Err(RtcpError::BadVersion(version));
        }
        let len = (usize::from(u16::from_be_bytes([buf[2], buf[3]])) + 1) * 4;
        if buf.len() < len {
            return Err(RtcpError::LengthOverrun);
        }
        let (pkt, rest) = buf.split_at(len);
        let padding_len = if pkt[0] & 0x20 != 0 {
            let n = usize::from(pkt[len - 1]);
            if n == 0 || n % 4 != 0 || n > len - 4 {
                return Err(RtcpError::BadPadding);
            }
            n
        } else {
            0
        };
        Ok((
            Self {
                buf: pkt,
                padding_len,
            },
            rest,
        ))
    }

    /// The whole packet (header, body, padding).
    #[must_use]
    pub fn as_bytes(&self) -> &'a [u8] {
        self.buf
    }

    /// The P bit.
    #[must_use]
    pub fn padding(&self) -> bool {
        self.buf[0] & 0x20 != 0
    }

    /// The 5-bit count field (RC, SC or feedback FMT, by type).
    #[must_use]
    pub fn count(&self) -> u8 {
        self.buf[0] & 0x1f
    }

    /// The packet type (200 SR, 201 RR, …).
    #[must_use]
    pub fn packet_type(&self) -> u8 {
        self.buf[1]
    }

    /// The body after the 4-byte header, without padding.
    #[must_use]
    pub fn body(&self) -> &'a [u8] {
        &self.buf[4..self.buf.len() - self.padding_len]
    }

    /// The first 32-bit word of the body: the sender's SSRC for SR, RR,
    /// APP, feedback and XR, the first chunk's or source's SSRC for SDES
    /// and BYE. `None` for an empty body.
    #[must_use]
    pub fn ssrc(&self) -> Option<u32> {
        let b = self.body();
        (b.len() >= 4).then(|| be32(b, 0))
    }

    /// A typed view, checked against the packet's count.
    ///
    /// # Errors
    /// [`RtcpError::BadLength`] when the body is too short for the type and
    /// count; [`RtcpError::BadSdes`] for a malformed SDES.
    pub fn kind(&self) -> Result<RtcpKind<'a>, RtcpError> {
        let body = self.body();
        let count = usize::from(self.count());
        let bad = RtcpError::BadLength {
            packet_type: self.packet_type(),
        };
        Ok(match self.packet_type() {
            RTCP_SR => {
                if body.len() < 24 + 24 * count {
                    return Err(bad);
                }
                RtcpKind::SenderReport(SenderReport { body, count })
            }
            RTCP_RR => {
                if body.len() < 4 + 24 * count {
                    return Err(bad);
                }
                RtcpKind::ReceiverReport(ReceiverReport { body, count })
            }
            RTCP_SDES => {
                let sdes = SourceDescription { body, count };
                for chunk in sdes.chunks() {
                    for item in chunk?.items() {
                        item?;
                    }
                }
                RtcpKind::SourceDescription(sdes)
            }
            RTCP_BYE => {
                if body.len() < 4 * count {
                    return Err(bad);
                }
                let bye = Bye { body, count };
                if let Some(&n) = body.get(4 * count) {
                    if 4 * count + 1 + usize::from(n) > body.len() {
                        return Err(bad);
                    }
                }
                RtcpKind::Bye(bye)
            }
            RTCP_APP => {
                if body.len() < 8 {
                    return Err(bad);
                }
                RtcpKind::App(App {
                    subtype: self.count(),
                    body,
                })
            }
            _ => RtcpKind::Other(*self),
        })
    }
}

/// The typed views of [`RtcpPacket::kind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RtcpKind<'a> {
    /// SR (200).
    SenderReport(SenderReport<'a>),
    /// RR (201).
    ReceiverReport(ReceiverReport<'a>),
    /// SDES (202).
    SourceDescription(SourceDescription<'a>),
    /// BYE (203).
    Bye(Bye<'a>),
    /// APP (204).
    App(App<'a>),
    /// Any other type (feedback, XR, unknown): header and body only.
    Other(RtcpPacket<'a>),
}

/// A sender report (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderReport<'a> {
    body: &'a [u8],
    count: usize,
}

impl<'a> SenderReport<'a> {
    /// The sender's SSRC.
    #[must_use]
    pub fn ssrc(&self) -> u32 {
        be32(self.body, 0)
    }

    /// The 64-bit NTP timestamp.
    #[must_use]
    pub fn ntp_timestamp(&self) -> u64 {
        (u64::from(be32(self.body, 4)) << 32) | u64::from(be32(self.body, 8))
    }

    /// The RTP timestamp.
    #[must_use]
    pub fn rtp_timestamp(&self) -> u32 {
        be32(self.body, 12)
    }

    /// The sender's packet count.
    #[must_use]
    pub fn packet_count(&self) -> u32 {
        be32(self.body, 16)
    }

    /// The sender's octet count.
    #[must_use]
    pub fn octet_count(&self) -> u32 {
        be32(self.body, 20)
    }

    /// The report blocks.
    #[must_use]
    pub fn report_blocks(&self) -> ReportBlocks<'a> {
        ReportBlocks(self.body[24..24 + 24 * self.count].chunks_exact(24))
    }

    /// Profile-specific extension after the report blocks.
    #[must_use]
    pub fn profile_extension(&self) -> &'a [u8] {
        &self.body[24 + 24 * self.count..]
    }
}

/// A receiver report (RFC 3550 §6.4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiverReport<'a> {
    body: &'a [u8],
    count: usize,
}

impl<'a> ReceiverReport<'a> {
    /// The reporter's SSRC.
    #[must_use]
    pub fn ssrc(&self) -> u32 {
        be32(self.body, 0)
    }

    /// The report blocks.
    #[must_use]
    pub fn report_blocks(&self) -> ReportBlocks<'a> {
        ReportBlocks(self.body[4..4 + 24 * self.count].chunks_exact(24))
    }

    /// Profile-specific extension after the report blocks.
    #[must_use]
    pub fn profile_extension(&self) -> &'a [u8] {
        &self.body[4 + 24 * self.count..]
    }
}

/// One reception report block (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportBlock {
    /// The source this block reports on.
    pub ssrc: u32,
    /// Fraction lost since the last report, in 1/256.
    pub fraction_lost: u8,
    /// Cumulative number of packets lost (24-bit signed).
    pub cumulative_lost: i32,
    /// Extended highest sequence number received.
    pub extended_highest_seq: u32,
    /// Interarrival jitter, in timestamp units.
    pub jitter: u32,
    /// Last SR timestamp (middle 32 bits of its NTP timestamp).
    pub last_sr: u32,
    /// Delay since last SR, in 1/65536 s.
    pub delay_since_last_sr: u32,
}

/// Iterator over report blocks.
#[derive(Debug, Clone)]
pub struct ReportBlocks<'a>(core::slice::ChunksExact<'a, u8>);

impl Iterator for ReportBlocks<'_> {
    type Item = ReportBlock;

    fn next(&mut self) -> Option<ReportBlock> {
        let b = self.0.next()?;
        let lost = be32(b, 4) & 0x00ff_ffff;
        // Sign-extend the 24-bit count.
        let cumulative_lost = ((lost << 8) as i32) >> 8;
        Some(ReportBlock {
            ssrc: be32(b, 0),
            fraction_lost: b[4],
            cumulative_lost,
            extended_highest_seq: be32(b, 8),
            jitter: be32(b, 12),
            last_sr: be32(b, 16),
            delay_since_last_sr: be32(b, 20),
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl ExactSizeIterator for ReportBlocks<'_> {}

/// A source description packet (RFC 3550 §6.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceDescription<'a> {
    body: &'a [u8],
    count: usize,
}

impl<'a> SourceDescription<'a> {
    /// The chunks (SC of them).
    #[must_use]
    pub fn chunks(&self) -> SdesChunks<'a> {
        SdesChunks {
            body: self.body,
            pos: 0,
            left: self.count,
        }
    }
}

/// Iterator over SDES chunks; a malformed chunk yields
/// [`RtcpError::BadSdes`] once and ends the iteration.
#[derive(Debug, Clone)]
pub struct SdesChunks<'a> {
    body: &'a [u8],
    pos: usize,
    left: usize,
}

impl<'a> Iterator for SdesChunks<'a> {
    type Item = Result<SdesChunk<'a>, RtcpError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let fail = |s: &mut Self| {
            s.left = 0;
            Some(Err(RtcpError::BadSdes))
        };
        let start = self.pos;
        if start + 4 > self.body.len() {
            return fail(self);
        }
        let ssrc = be32(self.body, start);
        // Walk the items to the null terminator.
        let mut p = start + 4;
        loop {
            let Some(&t) = self.body.get(p) else {
                return fail(self);
            };
            if t == 0 {
                break;
            }
            let Some(&n) = self.body.get(p + 1) else {
                return fail(self);
            };
            p += 2 + usize::from(n);
        }
        let items = &self.body[start + 4..p];
        // The null octet, then padding to the next 32-bit boundary.
        let end = (p + 1).div_ceil(4) * 4;
        if end > self.body.len() {
            return fail(self);
        }
        self.pos = end;
        Some(Ok(SdesChunk { ssrc, items }))
    }
}

/// One SDES chunk: an SSRC/CSRC and its items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SdesChunk<'a> {
    /// The source described.
    pub ssrc: u32,
    items: &'a [u8],
}

impl<'a> SdesChunk<'a> {
    /// The items (CNAME, NAME, …), without the terminator.
    #[must_use]
    pub fn items(&self) -> SdesItems<'a> {
        SdesItems {
            rest: self.items,
            failed: false,
        }
    }

    /// The CNAME item's value, if present and well formed.
    #[must_use]
    pub fn cname(&self) -> Option<&'a [u8]> {
        self.items()
            .filter_map(Result::ok)
            .find(|i| i.kind == 1)
            .map(|i| i.value)
    }
}

/// One SDES item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SdesItem<'a> {
    /// The item type (1 CNAME, 2 NAME, …, 8 PRIV).
    pub kind: u8,
    /// The item text.
    pub value: &'a [u8],
}

/// Iterator over SDES items.
#[derive(Debug, Clone)]
pub struct SdesItems<'a> {
    rest: &'a [u8],
    failed: bool,
}

impl<'a> Iterator for SdesItems<'a> {
    type Item = Result<SdesItem<'a>, RtcpError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.is_empty() {
            return None;
        }
        let r = self.rest;
        if r.len() < 2 || r.len() < 2 + usize::from(r[1]) {
            self.failed = true;
            return Some(Err(RtcpError::BadSdes));
        }
        let end = 2 + usize::from(r[1]);
        self.rest = &r[end..];
        Some(Ok(SdesItem {
            kind: r[0],
            value: &r[2..end],
        }))
    }
}

/// A BYE packet (RFC 3550 §6.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bye<'a> {
    body: &'a [u8],
    count: usize,
}

impl<'a> Bye<'a> {
    /// The sources leaving.
    #[must_use]
    pub fn ssrcs(&self) -> ByeSsrcs<'a> {
        ByeSsrcs(self.body[..4 * self.count].chunks_exact(4))
    }

    /// The optional reason for leaving.
    #[must_use]
    pub fn reason(&self) -> Option<&'a [u8]> {
        let at = 4 * self.count;
        let n = usize::from(*self.body.get(at)?);
        self.body.get(at + 1..at + 1 + n)
    }
}

/// Iterator over the SSRCs of a BYE.
#[derive(Debug, Clone)]
pub struct ByeSsrcs<'a>(core::slice::ChunksExact<'a, u8>);

impl Iterator for ByeSsrcs<'_> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        self.0.next().map(|c| be32(c, 0))
    }
}

/// An APP packet (RFC 3550 §6.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct App<'a> {
    subtype: u8,
    body: &'a [u8],
}

impl<'a> App<'a> {
    /// The 5-bit subtype.
    #[must_use]
    pub fn subtype(&self) -> u8 {
        self.subtype
    }

    /// The sender's SSRC.
    #[must_use]
    pub fn ssrc(&self) -> u32 {
        be32(self.body, 0)
    }

    /// The four ASCII name bytes.
    #[must_use]
    pub fn name(&self) -> [u8; 4] {
        [self.body[4], self.body[5], self.body[6], self.body[7]]
    }

    /// Application-dependent data.
    #[must_use]
    pub fn data(&self) -> &'a [u8] {
        &self.body[8..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SR with one report block, SDES with CNAME, BYE with a reason, APP, and a
    /// transport-feedback packet, padded at the end.
    fn compound() -> Vec<u8> {
        let mut v = Vec::new();
        // SR, RC=1: header + 24 sender info + 24 block = 52 bytes = 13 words.
        v.extend_from_slice(&[0x81, 200, 0, 12]);
        v.extend_from_slice(&0x1111_1111u32.to_be_bytes());
        v.extend_from_slice(&[0, 0, 0, 1, 0x80, 0, 0, 0]); // NTP
        v.extend_from_slice(&160u32.to_be_bytes());
        v.extend_from_slice(&5u32.to_be_bytes());
        v.extend_from_slice(&800u32.to_be_bytes());
        v.extend_from_slice(&0x2222_2222u32.to_be_bytes());
        v.extend_from_slice(&[0x40, 0xff, 0xff, 0xfe]); // fraction 64, lost -2
        v.extend_from_slice(&70_000u32.to_be_bytes());
        v.extend_from_slice(&33u32.to_be_bytes());
        v.extend_from_slice(&7u32.to_be_bytes());
        v.extend_from_slice(&9u32.to_be_bytes());
        // SDES, SC=1: ssrc + CNAME "ab" (4) + null + pad → 12 bytes body.
        v.extend_from_slice(&[0x81, 202, 0, 3]);
        v.extend_from_slice(&0x1111_1111u32.to_be_bytes());
        v.extend_from_slice(&[1, 2, b'a', b'b', 0, 0, 0, 0]);
        // BYE, SC=1, reason "bye" → 4 + 4 = 8 bytes body.
        v.extend_from_slice(&[0x81, 203, 0, 2]);
        v.extend_from_slice(&0x1111_1111u32.to_be_bytes());
        v.extend_from_slice(&[3, b'b', b'y', b'e']);
        // APP subtype 3, name "TEST", 4 bytes data.
        v.extend_from_slice(&[0x83, 204, 0, 3]);
        v.extend_from_slice(&0x1111_1111u32.to_be_bytes());
        v.extend_from_slice(b"TEST");
        v.extend_from_slice(&[1, 2, 3, 4]);
        // RTPFB (NACK), padded with 4 bytes.
        v.extend_from_slice(&[0xa1, 205, 0, 3]);
        v.extend_from_slice(&0x1111_1111u32.to_be_bytes());
        v.extend_from_slice(&0x2222_2222u32.to_be_bytes());
        v.extend_from_slice(&[0, 0, 0, 4]);
        v
    }

    #[test]
    fn compound_iterates_all_types() {
        let buf = compound();
        let c = RtcpCompound::new(&buf);
        c.validate(false).unwrap();
        let kinds: Vec<_> = c.iter().map(|p| p.unwrap().kind().unwrap()).collect();
        assert_eq!(kinds.len(), 5);
        let RtcpKind::SenderReport(sr) = kinds[0] else {
            panic!("{:?}", kinds[0])
        };
        assert_eq!(sr.ssrc(), 0x1111_1111);
        assert_eq!(sr.ntp_timestamp(), 0x1_8000_0000);
        assert_eq!(
            (sr.rtp_timestamp(), sr.packet_count(), sr.octet_count()),
            (160, 5, 800)
        );
        let blocks: Vec<_> = sr.report_blocks().collect();
        assert_eq!(
            blocks,
            vec![ReportBlock {
                ssrc: 0x2222_2222,
                fraction_lost: 0x40,
                cumulative_lost: -2,
                extended_highest_seq: 70_000,
                jitter: 33,
                last_sr: 7,
                delay_since_last_sr: 9,
            }]
        );
        let RtcpKind::SourceDescription(sdes) = kinds[1] else {
            panic!()
        };
        let chunk = sdes.chunks().next().unwrap().unwrap();
        assert_eq!(chunk.ssrc, 0x1111_1111);
        assert_eq!(chunk.cname(), Some(&b"ab"[..]));
        let RtcpKind::Bye(bye) = kinds[2] else {
            panic!()
        };
        assert_eq!(bye.ssrcs().collect::<Vec<_>>(), vec![0x1111_1111]);
        assert_eq!(bye.reason(), Some(&b"bye"[..]));
        let RtcpKind::App(app) = kinds[3] else {
            panic!()
        };
        assert_eq!(
            (app.subtype(), &app.name(), app.data()),
            (3, b"TEST", &[1u8, 2, 3, 4][..])
        );
        let RtcpKind::Other(fb) = kinds[4] else {
            panic!()
        };
        assert_eq!((fb.packet_type(), fb.count()), (RTCP_RTPFB, 1));
        assert_eq!(fb.body().len(), 8);
        assert_eq!(fb.ssrc(), Some(0x1111_1111));
    }

    #[test]
    fn length_and_padding_errors() {
        let buf = compound();
        // Truncated: the last packet's length runs past the end.
        let short = &buf[..buf.len() - 1];
        assert_eq!(
            RtcpCompound::new(short).validate(false),
            Err(RtcpError::LengthOverrun)
        );
        // Padding on the first packet of two: a padded RR, then a BYE.
        let mut p = vec![0xa0, 201, 0, 2, 0, 0, 0, 1, 0, 0, 0, 4];
        p.extend_from_slice(&[0x81, 203, 0, 1, 0, 0, 0, 1]);
        assert_eq!(
            RtcpCompound::new(&p).validate(false),
            Err(RtcpError::PaddingNotLast)
        );
        // RC larger than the packet holds.
        let mut q = buf.clone();
        q[0] = 0x82;
        assert_eq!(
            RtcpCompound::new(&q).validate(false),
            Err(RtcpError::BadLength { packet_type: 200 })
        );
        // Starting with SDES is only fine with reduced size.
        let sdes_first = &buf[52..];
        assert_eq!(
            RtcpCompound::new(sdes_first).validate(false),
            Err(RtcpError::FirstNotReport)
        );
        RtcpCompound::new(sdes_first).validate(true).unwrap();
        // Version 1.
        assert_eq!(
            RtcpCompound::new(&[0x41, 201, 0, 1, 0, 0, 0, 0]).validate(false),
            Err(RtcpError::BadVersion(1))
        );
        // SDES item running past the chunk.
        let bad_sdes = [0x81, 202, 0, 2, 0, 0, 0, 1, 1, 9, b'a', b'b'];
        assert_eq!(
            RtcpCompound::new(&bad_sdes).validate(true),
            Err(RtcpError::BadSdes)
        );
        assert_eq!(
            RtcpCompound::new(&[]).validate(true),
            Err(RtcpError::TooShort)
        );
    }
}
