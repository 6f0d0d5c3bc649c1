//! Fuzz target: `media::RtcpCompound` iteration, `validate` and the typed
//! views on arbitrary bytes (one plaintext RTCP datagram).
//!
//! Invariants:
//! * iteration terminates (at most len/4 + 1 items) and ends after the
//!   first error; the packets are consecutive, non-overlapping slices of the
//!   input starting at 0, each 4·(length+1) bytes of version 2 as its header
//!   says; a `RtcpPacket::parse_first` on the rest gives the same packet;
//! * `body()` lies inside its packet, after the 4-byte header, and body +
//!   header + padding is the packet; padding is a non-zero multiple of 4;
//! * when `validate` succeeds (either mode), the packet lengths sum to the
//!   input length exactly, there is at least one packet, no error, only the
//!   last is padded, every `kind()` succeeds and, unless reduced-size, the
//!   first is SR or RR; `validate(false)` Ok implies `validate(true)` Ok;
//! * the typed views stay inside the body: SR/RR report blocks number RC,
//!   profile extensions end the body, SDES chunks number SC with items and
//!   CNAME inside the body, BYE SSRCs number SC and its reason lies in the
//!   body, APP name/data inside the body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use media::{RtcpCompound, RtcpError, RtcpKind, RtcpPacket, RTCP_RR, RTCP_SR};

fn inside(outer: &[u8], part: &[u8]) -> bool {
    let (b, p) = (outer.as_ptr() as usize, part.as_ptr() as usize);
    part.is_empty() || (p >= b && p + part.len() <= b + outer.len())
}

fn offset(outer: &[u8], part: &[u8]) -> usize {
    part.as_ptr() as usize - outer.as_ptr() as usize
}

fn check_kind(p: &RtcpPacket<'_>) -> Result<(), RtcpError> {
    let body = p.body();
    let count = usize::from(p.count());
    match p.kind()? {
        RtcpKind::SenderReport(sr) => {
            assert_eq!(p.packet_type(), RTCP_SR);
            assert_eq!(sr.report_blocks().count(), count);
            assert_eq!(sr.report_blocks().len(), count);
            let ext = sr.profile_extension();
            assert!(inside(body, ext));
            assert_eq!(24 + 24 * count + ext.len(), body.len());
            assert_eq!(Some(sr.ssrc()), p.ssrc());
            let _ = (sr.ntp_timestamp(), sr.rtp_timestamp(), sr.packet_count(), sr.octet_count());
            for b in sr.report_blocks() {
                assert!((-(1 << 23)..(1 << 23)).contains(&b.cumulative_lost));
            }
        }
        RtcpKind::ReceiverReport(rr) => {
            assert_eq!(p.packet_type(), RTCP_RR);
            assert_eq!(rr.report_blocks().count(), count);
            let ext = rr.profile_extension();
            assert!(inside(body, ext));
            assert_eq!(4 + 24 * count + ext.len(), body.len());
            assert_eq!(Some(rr.ssrc()), p.ssrc());
        }
        RtcpKind::SourceDescription(sdes) => {
            let mut n = 0;
            for c in sdes.chunks() {
                n += 1;
                assert!(n <= 31, "more SDES chunks than SC");
                let c = c.expect("kind() accepted the SDES, a chunk fails");
                let mut items = 0;
                for item in c.items() {
                    items += 1;
                    assert!(items <= body.len(), "SDES items do not terminate");
                    let item = item.expect("kind() accepted the SDES, an item fails");
                    assert!(inside(body, item.value));
                    assert_ne!(item.kind, 0, "null item yielded as an item");
                }
                if let Some(cname) = c.cname() {
                    assert!(inside(body, cname));
                }
            }
            assert_eq!(n, count, "SDES chunks != SC");
        }
        RtcpKind::Bye(bye) => {
            assert_eq!(bye.ssrcs().count(), count);
            if let Some(r) = bye.reason() {
                assert!(inside(body, r));
                assert_eq!(offset(body, r), 4 * count + 1);
                assert_eq!(usize::from(body[4 * count]), r.len());
            } else {
                assert!(body.len() <= 4 * count, "BYE with a reason byte but no reason");
            }
        }
        RtcpKind::App(app) => {
            assert_eq!(app.subtype(), p.count());
            assert_eq!(app.name(), [body[4], body[5], body[6], body[7]]);
            assert!(inside(body, app.data()));
            assert_eq!(app.data().len() + 8, body.len());
            assert_eq!(Some(app.ssrc()), p.ssrc());
        }
        RtcpKind::Other(o) => {
            assert_eq!(o, *p);
            assert!(!(200..=204).contains(&p.packet_type()));
        }
        _ => {}
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let compound = RtcpCompound::new(data);

    // Walk the packets and check each against the input.
    let mut pos = 0usize;
    let mut packets: Vec<RtcpPacket<'_>> = Vec::new();
    let mut error = None;
    let mut steps = 0usize;
    for item in compound.iter() {
        steps += 1;
        assert!(steps <= data.len() / 4 + 1, "iteration does not terminate");
        assert!(error.is_none(), "item after an error");
        match item {
            Ok(p) => {
                let b = p.as_bytes();
                assert!(inside(data, b), "packet outside the input");
                assert_eq!(offset(data, b), pos, "packets are not consecutive");
                assert!(b.len() >= 4 && b.len() % 4 == 0);
                assert_eq!(b.len(), (usize::from(u16::from_be_bytes([b[2], b[3]])) + 1) * 4);
                assert_eq!(b[0] >> 6, 2);
                assert_eq!(RtcpPacket::parse_first(&data[pos..]).map(|(q, r)| (q, r.len())), Ok((p, data.len() - pos - b.len())));
                let body = p.body();
                assert!(inside(b, body));
                assert!(body.is_empty() || offset(b, body) == 4);
                let pad = b.len() - 4 - body.len();
                if p.padding() {
                    assert_eq!(pad, usize::from(b[b.len() - 1]));
                    assert!(pad > 0 && pad % 4 == 0);
                } else {
                    assert_eq!(pad, 0);
                }
                assert_eq!(p.count(), b[0] & 0x1f);
                assert_eq!(p.packet_type(), b[1]);
                pos += b.len();
                packets.push(p);
            }
            Err(e) => {
                assert!(pos < data.len(), "error with nothing left");
                assert_eq!(RtcpPacket::parse_first(&data[pos..]).map(|_| ()), Err(e));
                error = Some(e);
            }
        }
    }
    assert!(pos <= data.len());
    if error.is_none() {
        assert_eq!(pos, data.len(), "iteration stopped early without an error");
    }
    assert_eq!(compound.iter().count(), steps, "iteration not repeatable");
    assert_eq!(compound.into_iter().count(), steps);

    let kinds: Vec<Result<(), RtcpError>> = packets.iter().map(check_kind).collect();

    for reduced in [false, true] {
        let v = compound.validate(reduced);
        assert_eq!(v, compound.validate(reduced), "validate not deterministic");
        if v.is_ok() {
            assert!(error.is_none(), "validate Ok with a parse error {error:?}");
            assert!(!packets.is_empty(), "validate Ok on no packets");
            let total: usize = packets.iter().map(|p| p.as_bytes().len()).sum();
            assert_eq!(total, data.len(), "validate Ok but lengths sum to {total} of {}", data.len());
            for p in &packets[..packets.len() - 1] {
                assert!(!p.padding(), "validate Ok with padding before the last packet");
            }
            assert!(kinds.iter().all(Result::is_ok), "validate Ok but a kind() fails: {kinds:?}");
            if !reduced {
                assert!(matches!(packets[0].packet_type(), RTCP_SR | RTCP_RR));
            }
        } else {
            // The converse: validate fails for a reason the walk can see.
            let e = v.unwrap_err();
            let explained = error.is_some()
                || packets.is_empty()
                || packets[..packets.len() - 1].iter().any(|p| p.padding())
                || kinds.iter().any(Result::is_err)
                || (!reduced && !matches!(packets[0].packet_type(), RTCP_SR | RTCP_RR));
            assert!(explained, "validate({reduced}) refused a clean compound: {e:?}");
        }
    }
    if compound.validate(false).is_ok() {
        assert!(compound.validate(true).is_ok());
    }
});
