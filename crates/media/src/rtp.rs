//! RTP header and packet views (RFC 3550 §5.1) and header extensions
//! (RFC 8285 one-byte and two-byte forms; other profiles are skipped by
//! length).
//!
//! [`RtpHeader::parse`] checks the version and that the CSRC list and the
//! header extension fit; it does not look at padding, which in SRTP is
//! encrypted. [`RtpPacket::parse`] also checks the padding of a plaintext
//! packet and gives the payload without it.

use core::fmt;

/// The RTP version this crate speaks.
pub const RTP_VERSION: u8 = 2;
/// Length of the fixed RTP header (no CSRCs, no extension).
pub const RTP_FIXED_HEADER_LEN: usize = 12;

/// Why bytes are not an RTP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RtpError {
    /// Shorter than the 12-byte fixed header.
    TooShort,
    /// The version field is not 2.
    BadVersion(u8),
    /// The CSRC count says more CSRCs than the packet holds.
    CsrcOverrun,
    /// The header extension (its 4-byte head or its length) runs past the end.
    ExtensionOverrun,
    /// The P bit is set but the padding count is 0 or larger than the payload.
    BadPadding,
    /// An RFC 8285 extension element runs past the end of the extension.
    ElementOverrun,
    /// A one-byte-form element with ID 0 and a length: ID 0 is reserved for
    /// the padding byte `0x00` (RFC 8285 §4.2).
    ReservedElementId,
}

impl fmt::Display for RtpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooShort => f.write_str("RTP packet shorter than its 12-byte header"),
            Self::BadVersion(v) => write!(f, "RTP version {v}, expected 2"),
            Self::CsrcOverrun => f.write_str("RTP CSRC list runs past the end of the packet"),
            Self::ExtensionOverrun => {
                f.write_str("RTP header extension runs past the end of the packet")
            }
            Self::BadPadding => f.write_str("RTP padding count is 0 or exceeds the payload"),
            Self::ElementOverrun => {
                f.write_str("RTP header extension element runs past the extension")
            }
            Self::ReservedElementId => {
                f.write_str("RTP one-byte header extension element with reserved ID 0")
            }
        }
    }
}

impl std::error::Error for RtpError {}

#[inline]
fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

#[inline]
fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// A validated view of an RTP header: fixed part, CSRCs and extension.
///
/// Borrows the datagram; nothing is copied. The payload (and, in SRTP, the
/// tag) follows at [`RtpHeader::header_len`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpHeader<'a> {
    buf: &'a [u8],
    header_len: usize,
}

impl<'a> RtpHeader<'a> {
    /// Parses the header at the start of `buf` (a whole datagram or more).
    ///
    /// # Errors
    /// [`RtpError::TooShort`], [`RtpError::BadVersion`],
    /// [`RtpError::CsrcOverrun`] or [`RtpError::ExtensionOverrun`].
    #[inline]
    pub fn parse(buf: &'a [u8]) -> Result<Self, RtpError> {
        if buf.len() < RTP_FIXED_HEADER_LEN {
            return Err(RtpError::TooShort);
        }
        let version = buf[0] >> 6;
        if version != RTP_VERSION {
            return Err(RtpError::BadVersion(version));
        }
        let cc = usize::from(buf[0] & 0x0f);
        let mut len = RTP_FIXED_HEADER_LEN + 4 * cc;
        if buf.len() < len {
            return Err(RtpError::CsrcOverrun);
        }
        if buf[0] & 0x10 != 0 {
            if buf.len() < len + 4 {
                return Err(RtpError::ExtensionOverrun);
            }
            let words = usize::from(be16(buf, len + 2));
            len += 4 + 4 * words;
            if buf.len() < len {
                return Err(RtpError::ExtensionOverrun);
            }
        }
        Ok(Self {
            buf,
            header_len: len,
        })
    }

    /// Length of the header in bytes, CSRCs and extension included.
    #[inline]
    #[must_use]
    pub fn header_len(&self) -> usize {
        self.header_len
    }

    /// The header bytes.
    #[inline]
    #[must_use]
    pub fn as_bytes(&self) -> &'a [u8] {
        &self.buf[..self.header_len]
    }

    /// Everything after the header (payload, padding and, in SRTP, the tag).
    #[inline]
    #[must_use]
    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.header_len..]
    }

    /// The P bit.
    #[inline]
    #[must_use]
    pub fn padding(&self) -> bool {
        self.buf[0] & 0x20 != 0
    }

    /// The X bit.
    #[inline]
    #[must_use]
    pub fn has_extension(&self) -> bool {
        self.buf[0] & 0x10 != 0
    }

    /// The CSRC count.
    #[inline]
    #[must_use]
    pub fn csrc_count(&self) -> u8 {
        self.buf[0] & 0x0f
    }

    /// The M bit.
    #[inline]
    #[must_use]
    pub fn marker(&self) -> bool {
        self.buf[1] & 0x80 != 0
    }

    /// The payload type (7 bits).
    #[inline]
    #[must_use]
    pub fn payload_type(&self) -> u8 {
        self.buf[1] & 0x7f
    }

    /// The sequence number.
    #[inline]
    #[must_use]
    pub fn sequence_number(&self) -> u16 {
        be16(self.buf, 2)
    }

    /// The timestamp.
    #[inline]
    #[must_use]
    pub fn timestamp(&self) -> u32 {
        be32(self.buf, 4)
    }

    /// The SSRC.
    #[inline]
    #[must_use]
    pub fn ssrc(&self) -> u32 {
        be32(self.buf, 8)
    }

    /// The CSRC list.
    #[must_use]
    pub fn csrcs(&self) -> Csrcs<'a> {
        let end = RTP_FIXED_HEADER_LEN + 4 * usize::from(self.csrc_count());
        Csrcs(self.buf[RTP_FIXED_HEADER_LEN..end].chunks_exact(4))
    }

    /// The header extension, if the X bit is set.
    #[must_use]
    pub fn extension(&self) -> Option<HeaderExtension<'a>> {
        if !self.has_extension() {
            return None;
        }
        let at = RTP_FIXED_HEADER_LEN + 4 * usize::from(self.csrc_count());
        Some(HeaderExtension {
            profile: be16(self.buf, at),
            data: &self.buf[at + 4..self.header_len],
        })
    }
}

/// Iterator over the CSRCs of an [`RtpHeader`].
#[derive(Debug, Clone)]
pub struct Csrcs<'a>(core::slice::ChunksExact<'a, u8>);

impl Iterator for Csrcs<'_> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        self.0.next().map(|c| be32(c, 0))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl ExactSizeIterator for Csrcs<'_> {}

/// The form of a header extension, from its 16-bit "defined by profile" field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtensionForm {
    /// RFC 8285 one-byte header (`0xBEDE`).
    OneByte,
    /// RFC 8285 two-byte header (`0x100` followed by 4 application bits).
    TwoByte {
        /// The 4 "appbits".
        appbits: u8,
    },
    /// Any other profile: the data is opaque and only skipped by length.
    Other,
}

/// An RTP header extension (RFC 3550 §5.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderExtension<'a> {
    profile: u16,
    data: &'a [u8],
}

impl<'a> HeaderExtension<'a> {
    /// The 16-bit "defined by profile" field.
    #[must_use]
    pub fn profile(&self) -> u16 {
        self.profile
    }

    /// The extension data (a multiple of 4 bytes), without its 4-byte head.
    #[must_use]
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// One-byte, two-byte or other.
    #[must_use]
    pub fn form(&self) -> ExtensionForm {
        match self.profile {
            0xbede => ExtensionForm::OneByte,
            p if p >> 4 == 0x100 => ExtensionForm::TwoByte {
                appbits: (p & 0x0f) as u8,
            },
            _ => ExtensionForm::Other,
        }
    }

    /// The RFC 8285 elements; empty for [`ExtensionForm::Other`].
    #[must_use]
    pub fn elements(&self) -> ExtensionElements<'a> {
        ExtensionElements {
            form: self.form(),
            data: self.data,
            pos: 0,
        }
    }
}

/// One RFC 8285 header extension element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtensionElement<'a> {
    /// The local identifier (1–14 one-byte, 1–255 two-byte).
    pub id: u8,
    /// The element data.
    pub data: &'a [u8],
}

/// Iterator over RFC 8285 elements. Padding bytes are skipped; in the
/// one-byte form, ID 15 stops the iteration (RFC 8285 §4.2). An element
/// that runs past the end yields [`RtpError::ElementOverrun`] once and ends
/// the iteration.
#[derive(Debug, Clone)]
pub struct ExtensionElements<'a> {
    form: ExtensionForm,
    data: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for ExtensionElements<'a> {
    type Item = Result<ExtensionElement<'a>, RtpError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let b = *self.data.get(self.pos)?;
            if b == 0 {
                self.pos += 1;
                continue;
            }
            let (id, start, len) = match self.form {
                ExtensionForm::OneByte => {
                    if b >> 4 == 15 {
                        self.pos = self.data.len();
                        return None;
                    }
                    if b >> 4 == 0 {
                        // Not padding (0x00 is skipped above) but ID 0: stop here.
                        self.pos = self.data.len();
                        return Some(Err(RtpError::ReservedElementId));
                    }
                    (b >> 4, self.pos + 1, usize::from(b & 0x0f) + 1)
                }
                ExtensionForm::TwoByte { .. } => {
                    let Some(&len) = self.data.get(self.pos + 1) else {
                        self.pos = self.data.len();
                        return Some(Err(RtpError::ElementOverrun));
                    };
                    (b, self.pos + 2, usize::from(len))
                }
                ExtensionForm::Other => return None,
            };
            let end = start + len;
            if end > self.data.len() {
                self.pos = self.data.len();
                return Some(Err(RtpError::ElementOverrun));
            }
            self.pos = end;
            return Some(Ok(ExtensionElement {
                id,
                data: &self.data[start..end],
            }));
        }
    }
}

/// A validated plaintext RTP packet: header, payload and padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    header: RtpHeader<'a>,
    padding_len: usize,
}

impl<'a> RtpPacket<'a> {
    /// Parses a whole plaintext RTP datagram.
    ///
    /// # Errors
    /// Those of [`RtpHeader::parse`], and [`RtpError::BadPadding`].
    pub fn parse(buf: &'a [u8]) -> Result<Self, RtpError> {
        let header = RtpHeader::parse(buf)?;
        let padding_len = if header.padding() {
            let n = usize::from(buf[buf.len() - 1]);
            if n == 0 || n > buf.len() - header.header_len() {
                return Err(RtpError::BadPadding);
            }
            n
        } else {
            0
        };
        Ok(Self {
            header,
            padding_len,
        })
    }

    /// The header.
    #[must_use]
    pub fn header(&self) -> RtpHeader<'a> {
        self.header
    }

    /// The payload, without padding.
    #[must_use]
    pub fn payload(&self) -> &'a [u8] {
        let b = self.header.buf;
        &b[self.header.header_len..b.len() - self.padding_len]
    }

    /// Number of padding bytes (the count byte included); 0 without P.
    #[must_use]
    pub fn padding_len(&self) -> usize {
        self.padding_len
    }

    /// The whole packet.
    #[must_use]
    pub fn as_bytes(&self) -> &'a [u8] {
        self.header.buf
    }
}

/// Writes the fields a relay rewrites (SSRC, sequence number, timestamp,
/// payload type, marker) into an RTP header in place.
#[derive(Debug)]
pub struct RtpHeaderMut<'a> {
    buf: &'a mut [u8],
}

impl<'a> RtpHeaderMut<'a> {
    /// Checks the fixed header (length and version) of `buf`; CSRCs and
    /// extension are not needed to rewrite the fixed fields.
    ///
    /// # Errors
    /// [`RtpError::TooShort`] or [`RtpError::BadVersion`].
    pub fn new(buf: &'a mut [u8]) -> Result<Self, RtpError> {
        if buf.len() < RTP_FIXED_HEADER_LEN {
            return Err(RtpError::TooShort);
        }
        let version = buf[0] >> 6;
        if version != RTP_VERSION {
            return Err(RtpError::BadVersion(version));
        }
        Ok(Self { buf })
    }

    /// Sets the M bit.
    pub fn set_marker(&mut self, marker: bool) {
        self.buf[1] = (self.buf[1] & 0x7f) | if marker { 0x80 } else { 0 };
    }

    /// Sets the payload type (the top bit of `pt` is ignored).
    pub fn set_payload_type(&mut self, pt: u8) {
        self.buf[1] = (self.buf[1] & 0x80) | (pt & 0x7f);
    }

    /// Sets the sequence number.
    pub fn set_sequence_number(&mut self, seq: u16) {
        self.buf[2..4].copy_from_slice(&seq.to_be_bytes());
    }

    /// Sets the timestamp.
    pub fn set_timestamp(&mut self, ts: u32) {
        self.buf[4..8].copy_from_slice(&ts.to_be_bytes());
    }

    /// Sets the SSRC.
    pub fn set_ssrc(&mut self, ssrc: u32) {
        self.buf[8..12].copy_from_slice(&ssrc.to_be_bytes());
    }

    /// A read view of the same header (parses CSRCs and extension).
    ///
    /// # Errors
    /// As [`RtpHeader::parse`].
    pub fn header(&self) -> Result<RtpHeader<'_>, RtpError> {
        RtpHeader::parse(self.buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PCMU: [u8; 16] = [
        0x80, 0x00, 0x12, 0x34, 0xde, 0xca, 0xfb, 0xad, 0xca, 0xfe, 0xba, 0xbe, 1, 2, 3, 4,
    ];

    #[test]
    fn fixed_header_fields() {
        let h = RtpHeader::parse(&PCMU).unwrap();
        assert_eq!(h.header_len(), 12);
        assert_eq!(h.sequence_number(), 0x1234);
        assert_eq!(h.timestamp(), 0xdeca_fbad);
        assert_eq!(h.ssrc(), 0xcafe_babe);
        assert_eq!(h.payload_type(), 0);
        assert!(!h.marker() && !h.padding() && !h.has_extension());
        assert_eq!(h.csrcs().count(), 0);
        assert_eq!(h.rest(), &[1, 2, 3, 4]);
        assert_eq!(RtpPacket::parse(&PCMU).unwrap().payload(), &[1, 2, 3, 4]);
    }

    #[test]
    fn csrcs_extension_and_padding() {
        let mut p = vec![0xb2, 0xe0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3];
        p.extend_from_slice(&[0, 0, 0, 0xa, 0, 0, 0, 0xb]); // two CSRCs
                                                            // One-byte extension: id 1 len 1 (2 bytes), padding, id 2 len 0 (1 byte), id 15 stop.
        p.extend_from_slice(&[0xbe, 0xde, 0, 2, 0x11, 0xaa, 0xbb, 0, 0x20, 0xcc, 0xf0, 0]);
        p.extend_from_slice(&[9, 9, 9, 0, 0, 3]); // payload 9 9 9 and 3 bytes padding
        let pkt = RtpPacket::parse(&p).unwrap();
        let h = pkt.header();
        assert!(h.marker());
        assert_eq!(h.payload_type(), 0x60);
        assert_eq!(h.csrcs().collect::<Vec<_>>(), vec![0xa, 0xb]);
        let ext = h.extension().unwrap();
        assert_eq!(ext.form(), ExtensionForm::OneByte);
        let els: Vec<_> = ext.elements().map(Result::unwrap).collect();
        assert_eq!(
            els,
            vec![
                ExtensionElement {
                    id: 1,
                    data: &[0xaa, 0xbb]
                },
                ExtensionElement {
                    id: 2,
                    data: &[0xcc]
                },
            ]
        );
        assert_eq!(h.header_len(), 12 + 8 + 12);
        assert_eq!(pkt.payload(), &[9, 9, 9]);
        assert_eq!(pkt.padding_len(), 3);
    }

    #[test]
    fn two_byte_extension_elements() {
        let mut p = PCMU[..12].to_vec();
        p[0] |= 0x10;
        p.extend_from_slice(&[0x10, 0x03, 0, 2, 7, 3, 1, 2, 3, 0, 9, 0]);
        let h = RtpHeader::parse(&p).unwrap();
        let ext = h.extension().unwrap();
        assert_eq!(ext.form(), ExtensionForm::TwoByte { appbits: 3 });
        let els: Vec<_> = ext.elements().collect();
        assert_eq!(
            els,
            vec![
                Ok(ExtensionElement {
                    id: 7,
                    data: &[1, 2, 3]
                }),
                Ok(ExtensionElement { id: 9, data: &[] }),
            ]
        );
    }

    #[test]
    fn malformed_headers_are_errors() {
        assert_eq!(RtpHeader::parse(&PCMU[..11]), Err(RtpError::TooShort));
        let mut p = PCMU;
        p[0] = 0x40;
        assert_eq!(RtpHeader::parse(&p), Err(RtpError::BadVersion(1)));
        p[0] = 0x8f;
        assert_eq!(RtpHeader::parse(&p), Err(RtpError::CsrcOverrun));
        p[0] = 0x90;
        assert_eq!(RtpHeader::parse(&p), Err(RtpError::ExtensionOverrun));
        p[0] = 0xa0;
        p[15] = 5;
        assert_eq!(RtpPacket::parse(&p), Err(RtpError::BadPadding));
        p[15] = 0;
        assert_eq!(RtpPacket::parse(&p), Err(RtpError::BadPadding));
        // One-byte element longer than the extension.
        let mut q = PCMU[..12].to_vec();
        q[0] |= 0x10;
        q.extend_from_slice(&[0xbe, 0xde, 0, 1, 0x1f, 0, 0, 0]);
        let h = RtpHeader::parse(&q).unwrap();
        let els: Vec<_> = h.extension().unwrap().elements().collect();
        assert_eq!(els, vec![Err(RtpError::ElementOverrun)]);
    }

    #[test]
    fn header_mut_rewrites_fields() {
        let mut p = PCMU;
        let mut h = RtpHeaderMut::new(&mut p).unwrap();
        h.set_ssrc(7);
        h.set_sequence_number(65535);
        h.set_timestamp(160);
        h.set_payload_type(0xff);
        h.set_marker(true);
        let r = h.header().unwrap();
        assert_eq!(
            (
                r.ssrc(),
                r.sequence_number(),
                r.timestamp(),
                r.payload_type()
            ),
            (7, 65535, 160, 0x7f)
        );
        assert!(r.marker());
    }
}
