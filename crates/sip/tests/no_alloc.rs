//! Parsing a Teams-style INVITE and reading the headers every message needs
//! does not touch the heap (a counting allocator checks it).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use bytes::Bytes;
use sip::Message;

struct Counting;

thread_local! {
    static COUNT: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; only counts on the side.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        COUNT.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const INVITE: &[u8] =
    b"INVITE sip:+14255550123@sip.pstnhub.microsoft.com:5061;user=phone;transport=tls SIP/2.0\r\n\
Via: SIP/2.0/TLS sbc.contoso.com:5061;branch=z9hG4bK-524287-1---c1b8a4e5d6f7;rport\r\n\
Max-Forwards: 70\r\n\
From: \"Alice Example\" <sip:+14255550100@sbc.contoso.com;user=phone>;tag=8a4f2c1d\r\n\
To: <sip:+14255550123@sip.pstnhub.microsoft.com;user=phone>\r\n\
Call-ID: 5f1c9a7e-3b2d-4c8e-9f0a-1d2e3f4a5b6c@sbc.contoso.com\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:+14255550100@sbc.contoso.com:5061;transport=tls>\r\n\
Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, REFER, NOTIFY, UPDATE, PRACK\r\n\
Supported: replaces, timer, 100rel\r\n\
User-Agent: sbc/0.1\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 0\r\n\r\n";

#[test]
fn parse_and_typed_reads_do_not_allocate() {
    let buf = Bytes::from_static(INVITE);
    let before = COUNT.with(Cell::get);
    for _ in 0..100 {
        let m = Message::parse(buf.clone()).unwrap();
        let via = m.top_via().unwrap();
        let from = m.from().unwrap();
        let to = m.to().unwrap();
        let cid = m.call_id().unwrap();
        let cseq = m.cseq().unwrap();
        let contact = m.contacts().next().unwrap().unwrap();
        std::hint::black_box((via, from, to, cid, cseq, contact));
        let unchanged = m.to_bytes();
        std::hint::black_box(unchanged);
    }
    let after = COUNT.with(Cell::get);
    assert_eq!(after - before, 0, "allocations during 100 parses");
}
