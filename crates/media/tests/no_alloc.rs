//! The fast path allocates nothing: protect and unprotect of SRTP and
//! SRTCP, once the SSRC is known (a counting allocator checks it).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use media::{SrtpContext, SrtpPolicy, SrtpProfile};

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

#[test]
fn protect_and_unprotect_do_not_allocate() {
    for profile in [
        SrtpProfile::AesCm128HmacSha1_80,
        SrtpProfile::AesCm128HmacSha1_32,
        SrtpProfile::AeadAes128Gcm,
    ] {
        let salt = vec![7u8; profile.master_salt_len()];
        let policy = SrtpPolicy::new(profile, &[9; 16], &salt).unwrap();
        let mut tx = SrtpContext::new(&policy).unwrap();
        let mut rx = SrtpContext::new(&policy).unwrap();
        let mut buf = [0u8; 172 + 32];
        let mut rtcp = [0u8; 32 + 32];
        let mut send = |tx: &mut SrtpContext, rx: &mut SrtpContext, seq: u16| {
            buf[..12].copy_from_slice(&[0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4]);
            buf[2..4].copy_from_slice(&seq.to_be_bytes());
            let n = tx.protect_rtp(&mut buf, 172).unwrap();
            assert_eq!(rx.unprotect_rtp(&mut buf[..n]), Ok(172));
            rtcp[..8].copy_from_slice(&[0x81, 201, 0, 7, 1, 2, 3, 4]);
            let n = tx.protect_rtcp(&mut rtcp, 32).unwrap();
            assert_eq!(rx.unprotect_rtcp(&mut rtcp[..n]), Ok(32));
        };
        // The first packet of an SSRC may grow the SSRC tables.
        send(&mut tx, &mut rx, 65_000);
        let before = COUNT.with(Cell::get);
        for i in 1..2_000u16 {
            send(&mut tx, &mut rx, 65_000u16.wrapping_add(i));
        }
        let after = COUNT.with(Cell::get);
        assert_eq!(after - before, 0, "{profile}: allocations on the fast path");
    }
}
