//! The four measured SIP parsing cases, shared by `benches/sip_parse.rs`
//! (criterion) and `examples/sip_allocs.rs` (allocations and throughput) so
//! both measure exactly the same work. Each case parses the message, reads
//! what it reads, and drops everything (the drop is part of the cost).
//!
//! Included with `#[path]` rather than living in the library because rsip is
//! a dev-dependency.

use std::hint::black_box;

use bytes::Bytes;
use rsip::prelude::*;

/// `sbc-sip/parse`: `Message::parse` only.
pub(crate) fn sbc_parse(buf: Bytes) {
    let m = sip::Message::parse(black_box(buf)).expect("sbc-sip parses the INVITE");
    black_box(&m);
}

/// `sbc-sip/parse+typed`: parse, then top Via (branch), From (tag), To,
/// Call-ID, CSeq and Contact.
pub(crate) fn sbc_parse_typed(buf: Bytes) {
    let m = sip::Message::parse(black_box(buf)).expect("sbc-sip parses the INVITE");
    let t = sbc_benches::typed(black_box(&m)).expect("sbc-sip decodes the headers");
    black_box(&t);
}

/// `rsip/parse`: `SipMessage::try_from(&[u8])` only.
pub(crate) fn rsip_parse(raw: &[u8]) {
    let m = rsip::SipMessage::try_from(black_box(raw)).expect("rsip parses the INVITE");
    black_box(&m);
}

/// `rsip/parse+typed`: parse, then the same six headers through rsip's typed
/// API (Call-ID has no typed form in rsip: its value is the decoded form).
pub(crate) fn rsip_parse_typed(raw: &[u8]) {
    let m = rsip::SipMessage::try_from(black_box(raw)).expect("rsip parses the INVITE");
    let m = black_box(&m);
    let via = m.via_header().and_then(|h| h.typed()).expect("rsip Via");
    let from = m.from_header().and_then(|h| h.typed()).expect("rsip From");
    let to = m.to_header().and_then(|h| h.typed()).expect("rsip To");
    let call_id = m.call_id_header().map(|h| h.value()).expect("rsip Call-ID");
    let cseq = m.cseq_header().and_then(|h| h.typed()).expect("rsip CSeq");
    let contact = m
        .contact_header()
        .and_then(|h| h.typed())
        .expect("rsip Contact");
    black_box((&via, &from, &to, call_id, &cseq, &contact));
}
