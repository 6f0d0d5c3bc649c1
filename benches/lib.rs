//! Shared pieces of the benchmarks.
//!
//! The SIP parsing benchmarks (`benches/sip_parse.rs`, criterion) and the
//! allocation/throughput tool (`examples/sip_allocs.rs`) measure the same
//! cases on the same message; the `sbc-sip` side of those cases lives here.
//! Results are recorded in `docs/performance.md`.

use std::fmt;

/// Batched UDP with kernel receive timestamps for `examples/rtp_load.rs`;
/// the only `unsafe` here (reasons in the module).
#[allow(unsafe_code)]
pub mod udp_batch;

use bytes::Bytes;
use sip::{CSeq, Contact, Message, NameAddr, ValueError, Via};

/// A Teams Direct Routing INVITE as an SBC sends it to
/// `sip.pstnhub.microsoft.com` over TLS: 14 header lines and an SDES-SRTP
/// SDP offer, CRLF line endings, exact Content-Length.
pub const TEAMS_INVITE: &[u8] = include_bytes!("data/teams-invite.sip");

/// A [`Bytes`] over [`TEAMS_INVITE`] whose clones are reference-count bumps,
/// as for a datagram received into a shared buffer.
///
/// `Bytes::copy_from_slice` gives a "promotable" buffer whose first clone
/// allocates the shared header; this clones once so that the returned value
/// (and every clone of it) is already shared.
pub fn shared_invite() -> Bytes {
    let owned = Bytes::copy_from_slice(TEAMS_INVITE);
    let shared = owned.clone();
    drop(owned);
    shared
}

/// The headers an SBC reads from every message, decoded by `sbc-sip`.
#[derive(Debug, Clone, Copy)]
pub struct Typed<'a> {
    /// Top Via.
    pub via: Via<'a>,
    /// Its `branch` parameter.
    pub branch: Option<&'a [u8]>,
    /// From.
    pub from: NameAddr<'a>,
    /// Its `tag` parameter.
    pub from_tag: Option<&'a [u8]>,
    /// To.
    pub to: NameAddr<'a>,
    /// Call-ID.
    pub call_id: &'a str,
    /// CSeq.
    pub cseq: CSeq<'a>,
    /// First Contact.
    pub contact: Contact<'a>,
}

/// Why [`typed`] failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypedError {
    /// A header the message accessors check (Via, From, To, Call-ID, CSeq).
    Sip(sip::Error),
    /// The first Contact value does not parse.
    Contact(ValueError),
    /// No Contact header.
    NoContact,
}

impl fmt::Display for TypedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TypedError::Sip(e) => write!(f, "{e}"),
            TypedError::Contact(e) => write!(f, "Contact: {e}"),
            TypedError::NoContact => f.write_str("no Contact"),
        }
    }
}

impl std::error::Error for TypedError {}

impl From<sip::Error> for TypedError {
    fn from(e: sip::Error) -> Self {
        TypedError::Sip(e)
    }
}

/// Decodes top Via (and branch), From (and tag), To, Call-ID, CSeq and the
/// first Contact: the minimum an SBC needs per message.
pub fn typed(m: &Message) -> Result<Typed<'_>, TypedError> {
    let via = m.top_via()?;
    let from = m.from()?;
    let to = m.to()?;
    let call_id = m.call_id()?;
    let cseq = m.cseq()?;
    let contact = m
        .contacts()
        .next()
        .ok_or(TypedError::NoContact)?
        .map_err(TypedError::Contact)?;
    Ok(Typed {
        via,
        branch: via.branch(),
        from,
        from_tag: from.tag(),
        to,
        call_id,
        cseq,
        contact,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsip::prelude::*;

    #[test]
    fn invite_is_well_framed() {
        let n = TEAMS_INVITE.len();
        assert!((1_000..=1_150).contains(&n), "size {n}");
        let m = Message::parse(shared_invite()).unwrap();
        assert_eq!(m.header_count(), 14);
        assert_eq!(m.content_length().unwrap(), Some(m.body().len() as u32));
        // Content-Length covers the datagram exactly: nothing after the body.
        assert!(TEAMS_INVITE.ends_with(m.body()));
        assert!(TEAMS_INVITE
            .windows(2)
            .filter(|w| w[1] == b'\n')
            .all(|w| w[0] == b'\r'));
        m.validate(&sip::Policy::default()).unwrap();
    }

    #[test]
    fn both_parsers_read_the_same_headers() {
        let m = Message::parse(shared_invite()).unwrap();
        let t = typed(&m).unwrap();
        assert_eq!(t.via.transport, "TLS");
        assert!(t.branch.unwrap().starts_with(b"z9hG4bK"));
        assert_eq!(t.from_tag, Some(&b"1928301774"[..]));
        assert_eq!(t.cseq.seq, 1);

        let r = rsip::SipMessage::try_from(TEAMS_INVITE).unwrap();
        let via = r.via_header().unwrap().typed().unwrap();
        assert_eq!(
            via.branch().unwrap().to_string().as_bytes(),
            t.branch.unwrap()
        );
        let from = r.from_header().unwrap().typed().unwrap();
        assert_eq!(
            from.tag().unwrap().to_string().as_bytes(),
            t.from_tag.unwrap()
        );
        r.to_header().unwrap().typed().unwrap();
        assert_eq!(r.call_id_header().unwrap().value(), t.call_id);
        assert_eq!(r.cseq_header().unwrap().typed().unwrap().seq, t.cseq.seq);
        r.contact_header().unwrap().typed().unwrap();
        assert_eq!(r.body().len(), m.body().len());
    }
}
