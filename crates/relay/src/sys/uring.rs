//! The io_uring worker I/O (`RelayConfig::io = Io::Uring`): one ring per
//! worker, a multishot `recvmsg` armed once per socket that takes its buffer
//! from a ring of provided buffers, and sends queued as `IORING_OP_SEND`
//! with a destination address. The sockets live in the ring's table of
//! registered files, not in the process's descriptor table: their
//! descriptors are closed once registered, so a worker holds up to
//! as many sockets as its table has slots, whatever `ulimit -n` allows the process (the
//! kernel caps each ring's table at that limit; more workers, more tables),
//! and no request pays for a descriptor lookup. Completions of many sockets are reaped and
//! the sends of many sockets submitted in one `io_uring_enter`, so at paced
//! load a packet costs no system call of its own (with epoll it costs a
//! `recvmmsg` and a `sendto`, plus its share of `epoll_wait`).
//!
//! Why `unsafe`: the kernel reads and writes memory that Rust does not see
//! it touch. The buffer ring and the buffers are allocated here, page
//! aligned, and outlive every request that may use them ([`Uring::drop`]
//! cancels everything and waits for the completions before the memory is
//! freed). A buffer belongs to the kernel while it is in the ring; the
//! worker owns it from the completion that names it until it is put back
//! ([`Uring::recycle`]), and a buffer that is being sent is put back only
//! when the send completes. Destination addresses live in a per-buffer
//! array for the same span. The `msghdr` template is boxed and lives as
//! long as the ring. Buffers beyond the provided ones (`own`, for packets
//! the worker makes itself: tones) are never put into the ring, so the
//! kernel only reads them, for a send, while the worker does not write them.

use std::io;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use io_uring::types::{BufRingEntry, Fd, Fixed, RecvMsgOut, SubmitArgs, TimeoutFlags, Timespec};
use io_uring::{cqueue, opcode, squeue, IoUring};

use super::{from_storage, to_storage, zeroed_storage};

/// Submission queue entries (a full queue is submitted and reused).
const SQ_ENTRIES: u32 = 1024;
/// Provided-buffer group id of the relay's buffers.
const BGID: u16 = 0;
/// Space for the sender's address in each received buffer (a sockaddr_in6;
/// a sockaddr_in fits too).
const NAME_LEN: usize = size_of::<libc::sockaddr_in6>();
/// What the kernel writes before the payload: `io_uring_recvmsg_out`, then
/// the name field.
pub(crate) const PAYLOAD_OFFSET: usize = 16 + NAME_LEN;

/// One completion, copied out of the completion queue.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Completion {
    pub(crate) user_data: u64,
    pub(crate) result: i32,
    pub(crate) flags: u32,
}

impl Completion {
    /// The provided buffer the kernel filled, if any.
    pub(crate) fn buffer(&self) -> Option<u16> {
        cqueue::buffer_select(self.flags)
    }
    /// A multishot request stays armed after this completion.
    pub(crate) fn more(&self) -> bool {
        cqueue::more(self.flags)
    }
}

/// A datagram received into a provided buffer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Datagram {
    /// The sender (`None` for an unknown address family).
    pub(crate) src: Option<SocketAddr>,
    /// Payload octets, at [`PAYLOAD_OFFSET`] in the buffer.
    pub(crate) len: usize,
    /// The datagram was longer than the buffer and was cut.
    pub(crate) truncated: bool,
}

/// The ring, its provided buffers and the per-buffer destinations.
pub(crate) struct Uring {
    ring: IoUring,
    /// `entries` ring slots of `io_uring_buf` (16 octets each), page aligned.
    buf_ring: *mut BufRingEntry,
    /// `entries + own` buffers of `buf_size` octets, page aligned.
    data: *mut u8,
    entries: u16,
    /// Buffers after the provided ones, the worker's own (never in the ring).
    own: u16,
    buf_size: usize,
    /// Our copy of the buffer ring's tail (published on [`Uring::wait`]).
    tail: u16,
    /// Destination of the send that holds each buffer.
    dests: Box<[libc::sockaddr_storage]>,
    msghdr: Box<libc::msghdr>,
    /// The period of the tick (a multishot timeout), boxed for the kernel.
    tick: Box<Timespec>,
    /// Requests the kernel may still complete (for the drain on drop).
    in_flight: usize,
    /// Size of the registered-file table.
    files: u32,
}

impl std::fmt::Debug for Uring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Uring")
            .field("entries", &self.entries)
            .field("buf_size", &self.buf_size)
            .field("in_flight", &self.in_flight)
            .finish_non_exhaustive()
    }
}

/// `len` octets of fresh anonymous memory: page aligned, zero, and not
/// resident until touched (a worker's 2 MiB of buffers cost nothing while
/// no packet comes).
fn map(len: usize) -> io::Result<*mut u8> {
    // SAFETY: an anonymous private mapping at an address the kernel picks
    // touches no existing memory.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        Err(io::Error::last_os_error())
    } else {
        Ok(p.cast())
    }
}

/// Undoes [`map`].
///
/// # Safety
/// `p` and `len` come from one [`map`] call and nothing uses the memory any more.
unsafe fn unmap(p: *mut u8, len: usize) {
    // SAFETY: as the caller promises.
    unsafe { libc::munmap(p.cast(), len) };
}

impl Uring {
    /// A ring without buffers of the worker's own (tests).
    #[cfg(test)]
    pub(crate) fn new(entries: u16, buf_size: usize, files: u32) -> io::Result<Uring> {
        Uring::with_own(entries, 0, buf_size, files)
    }

    /// A ring with `entries` provided buffers of `buf_size` octets
    /// (`entries` a power of two, at most 32,768), `own` more that are
    /// never provided to the kernel (the worker writes packets of its own
    /// there and sends them: [`Uring::own_buffers`]) and a table of
    /// `files` registered sockets.
    pub(crate) fn with_own(
        entries: u16,
        own: u16,
        buf_size: usize,
        files: u32,
    ) -> io::Result<Uring> {
        if !entries.is_power_of_two()
            || entries > 1 << 15
            || own > 1 << 14
            || buf_size <= PAYLOAD_OFFSET
        {
            return Err(io::ErrorKind::InvalidInput.into());
        }
        // Completions wait for `io_uring_enter` (DEFER_TASKRUN): receives
        // of many sockets are then reaped together. Older kernels without
        // it still work, with completions run as they come.
        let cq = (u32::from(entries) * 4).max(2 * SQ_ENTRIES);
        let ring = IoUring::builder()
            .setup_single_issuer()
            .setup_defer_taskrun()
            .setup_cqsize(cq)
            .build(SQ_ENTRIES)
            .or_else(|_| IoUring::builder().setup_cqsize(cq).build(SQ_ENTRIES))?;
        // Everything used here (multishot recvmsg, provided-buffer rings,
        // sparse file tables, sends with an address, multishot timeouts) is
        // in Linux 6.10, the first with this feature flag; older kernels get
        // the epoll workers.
        if !ring.params().is_feature_recvsend_bundle() {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "io_uring of Linux 6.10 or later needed",
            ));
        }
        let n = usize::from(entries);
        let total = n + usize::from(own);
        let buf_ring = map(n * size_of::<BufRingEntry>())?.cast::<BufRingEntry>();
        let data = match map(total * buf_size) {
            Ok(d) => d,
            Err(e) => {
                // SAFETY: mapped just above with this length, not used yet.
                unsafe { unmap(buf_ring.cast(), n * size_of::<BufRingEntry>()) };
                return Err(e);
            }
        };
        // SAFETY: `msghdr` is plain data; all zero is a valid (empty) value.
        let mut msghdr: Box<libc::msghdr> = Box::new(unsafe { std::mem::zeroed() });
        msghdr.msg_namelen = NAME_LEN as libc::socklen_t;
        let mut u = Uring {
            ring,
            buf_ring,
            data,
            entries,
            own,
            buf_size,
            tail: 0,
            dests: vec![zeroed_storage(); total].into_boxed_slice(),
            msghdr,
            tick: Box::new(Timespec::new()),
            in_flight: 0,
            files,
        };
        u.ring.submitter().register_files_sparse(files)?;
        // SAFETY: `buf_ring` is page aligned (mmap), `entries` slots long,
        // zeroed (a valid empty ring) and lives until after the ring is
        // dropped (see Drop).
        unsafe {
            u.ring
                .submitter()
                .register_buf_ring_with_flags(buf_ring as u64, entries, BGID, 0)?;
        }
        for bid in 0..entries {
            u.recycle(bid);
        }
        u.publish();
        Ok(u)
    }

    /// Buffer `bid`, owned by the worker between the completion that named
    /// it and [`recycle`](Uring::recycle).
    pub(crate) fn buffer(&mut self, bid: u16) -> &mut [u8] {
        let bid = usize::from(bid) % self.total();
        // SAFETY: `data` holds `total() * buf_size` octets; the slice is
        // within it and borrowed from `&mut self`, so no other Rust
        // reference to it exists; the kernel does not write a buffer that
        // is not in the ring (the caller owns `bid`).
        unsafe { std::slice::from_raw_parts_mut(self.data.add(bid * self.buf_size), self.buf_size) }
    }

    /// What the kernel wrote into buffer `bid` for a receive of `res` octets.
    pub(crate) fn datagram(&mut self, bid: u16, res: i32) -> Option<Datagram> {
        let used = usize::try_from(res).ok()?;
        let hdr: libc::msghdr = *self.msghdr;
        let buf = self.buffer(bid);
        let out = RecvMsgOut::parse(&buf[..used.min(buf.len())], &hdr).ok()?;
        let mut st = zeroed_storage();
        let name = out.name_data();
        let st_bytes = size_of::<libc::sockaddr_storage>();
        let n = name.len().min(st_bytes);
        // SAFETY: `st` is a plain-data sockaddr_storage of `st_bytes`
        // octets; `n` octets are copied into it from a slice of that many.
        unsafe {
            std::ptr::copy_nonoverlapping(name.as_ptr(), std::ptr::addr_of_mut!(st).cast(), n)
        };
        Some(Datagram {
            src: from_storage(&st, n as libc::socklen_t),
            len: out.payload_data().len(),
            truncated: out.is_payload_truncated(),
        })
    }

    /// Buffers provided and own.
    fn total(&self) -> usize {
        usize::from(self.entries) + usize::from(self.own)
    }

    /// The ids of the worker's own buffers (after the provided ones): the
    /// worker's from the start, never to be [`recycle`](Uring::recycle)d.
    pub(crate) fn own_buffers(&self) -> std::ops::Range<u16> {
        self.entries..self.entries + self.own
    }

    /// Gives buffer `bid` back to the kernel (published on the next wait).
    pub(crate) fn recycle(&mut self, bid: u16) {
        if bid >= self.entries {
            // An own buffer is never the kernel's to receive into.
            return;
        }
        let mask = self.entries - 1;
        // SAFETY: the slot index is masked into the ring; the entry is
        // written before the tail that makes it visible (Release in publish).
        unsafe {
            let e = &mut *self.buf_ring.add(usize::from(self.tail & mask));
            e.set_addr(self.data.add(usize::from(bid) * self.buf_size) as u64);
            e.set_len(self.buf_size as u32);
            e.set_bid(bid);
        }
        self.tail = self.tail.wrapping_add(1);
    }

    fn publish(&mut self) {
        // SAFETY: the tail field overlays the first entry's reserved field;
        // the kernel reads it with acquire semantics.
        unsafe {
            let tail = BufRingEntry::tail(self.buf_ring).cast::<AtomicU16>();
            (*tail).store(self.tail, Ordering::Release);
        }
    }

    fn push(&mut self, e: &squeue::Entry) -> io::Result<()> {
        loop {
            // SAFETY: every entry pushed here refers only to memory owned by
            // `self` (buffers, destinations, msghdr) that outlives the request.
            if unsafe { self.ring.submission().push(e) }.is_ok() {
                self.in_flight += 1;
                return Ok(());
            }
            self.ring.submit()?;
        }
    }

    /// Puts socket `fd` into the registered-file table at `slot` (replacing
    /// what was there); the caller may close `fd` afterwards.
    pub(crate) fn register(&mut self, slot: u32, fd: RawFd) -> io::Result<()> {
        if slot >= self.files {
            return Err(io::Error::other("relay worker's socket table is full"));
        }
        self.ring
            .submitter()
            .register_files_update(slot, &[fd])
            .map(|_| ())
    }

    /// Empties `slot` of the registered-file table (the socket closes when
    /// no request holds it any more).
    pub(crate) fn unregister(&mut self, slot: u32) {
        if slot < self.files {
            let _ = self.ring.submitter().register_files_update(slot, &[-1]);
        }
    }

    /// Arms a multishot receive on the registered socket `slot`; its
    /// completions carry `user_data`.
    pub(crate) fn arm_recv(&mut self, slot: u32, user_data: u64) -> io::Result<()> {
        let e = opcode::RecvMsgMulti::new(Fixed(slot), &*self.msghdr, BGID)
            .build()
            .user_data(user_data);
        self.push(&e)
    }

    /// Arms a multishot poll for readability of `fd` (the worker's waker).
    pub(crate) fn arm_poll(&mut self, fd: RawFd, user_data: u64) -> io::Result<()> {
        let e = opcode::PollAdd::new(Fd(fd), libc::POLLIN as u32)
            .multi(true)
            .build()
            .user_data(user_data);
        self.push(&e)
    }

    /// A completion with `user_data` every `every` (a multishot timeout):
    /// the worker's periodic work without a timer armed per wait.
    pub(crate) fn arm_tick(&mut self, every: Duration, user_data: u64) -> io::Result<()> {
        *self.tick = Timespec::from(every);
        let e = opcode::Timeout::new(&*self.tick)
            .flags(TimeoutFlags::MULTISHOT)
            .build()
            .user_data(user_data);
        self.push(&e)
    }

    /// Publishes recycled buffers, submits what is queued and sleeps until
    /// at least one completion; appends every completion there is to `out`.
    pub(crate) fn wait_one(&mut self, out: &mut Vec<Completion>) -> io::Result<()> {
        self.publish();
        match self.ring.submit_and_wait(1) {
            Ok(_) => {}
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINTR) | Some(libc::EBUSY)) => {}
            Err(e) => return Err(e),
        }
        self.reap(out);
        Ok(())
    }

    fn reap(&mut self, out: &mut Vec<Completion>) {
        for c in self.ring.completion() {
            if !cqueue::more(c.flags()) {
                self.in_flight = self.in_flight.saturating_sub(1);
            }
            out.push(Completion {
                user_data: c.user_data(),
                result: c.result(),
                flags: c.flags(),
            });
        }
    }

    /// Cancels the request(s) with `target` user data; the cancel's own
    /// completion carries `user_data`.
    pub(crate) fn cancel(&mut self, target: u64, user_data: u64) -> io::Result<()> {
        let e = opcode::AsyncCancel::new(target)
            .build()
            .user_data(user_data);
        self.push(&e)
    }

    /// Sends `len` octets at `offset` in buffer `bid` from the registered
    /// socket `slot` to `dest`; the buffer stays the send's until its completion.
    pub(crate) fn send(
        &mut self,
        slot: u32,
        bid: u16,
        offset: usize,
        len: usize,
        dest: SocketAddr,
        user_data: u64,
    ) -> io::Result<()> {
        let i = usize::from(bid) % self.total();
        if offset + len > self.buf_size {
            return Err(io::ErrorKind::InvalidInput.into());
        }
        let alen = to_storage(dest, &mut self.dests[i]);
        let dest_ptr: *const libc::sockaddr = std::ptr::addr_of!(self.dests[i]).cast();
        // SAFETY: within the buffer (checked above).
        let buf = unsafe { self.data.add(i * self.buf_size + offset) };
        let e = opcode::Send::new(Fixed(slot), buf, len as u32)
            .dest_addr(dest_ptr)
            .dest_addr_len(alen)
            .build()
            .user_data(user_data);
        self.push(&e)
    }

    /// Publishes recycled buffers, submits what is queued and waits up to
    /// `timeout` for at least one completion; appends every completion
    /// there is to `out`.
    pub(crate) fn wait(&mut self, timeout: Duration, out: &mut Vec<Completion>) -> io::Result<()> {
        self.publish();
        let ts = Timespec::from(timeout);
        let args = SubmitArgs::new().timespec(&ts);
        match self.ring.submitter().submit_with_args(1, &args) {
            Ok(_) => {}
            Err(e) if matches!(e.raw_os_error(), Some(libc::ETIME) | Some(libc::EINTR)) => {}
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {}
            Err(e) => return Err(e),
        }
        self.reap(out);
        Ok(())
    }
}

impl Uring {
    /// Cancels every request and waits (at most ≈ 1 s) until the kernel
    /// has completed them all; returns how many are still in flight.
    fn shutdown(&mut self) -> usize {
        let all = opcode::AsyncCancel2::new(io_uring::types::CancelBuilder::any())
            .build()
            .user_data(u64::MAX);
        if self.push(&all).is_err() {
            return self.in_flight;
        }
        // The kernel runs at most 20 deferred completions per wait for
        // one (DEFER_TASKRUN), so this loops until all are in, not a
        // fixed number of times.
        let mut out = Vec::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        while self.in_flight > 0 && std::time::Instant::now() < deadline {
            out.clear();
            if let Err(e) = self.wait(Duration::from_millis(5), &mut out) {
                tracing::debug!(%e, "io_uring wait at shutdown");
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        self.in_flight
    }
}

impl Drop for Uring {
    fn drop(&mut self) {
        // Cancel everything and wait (bounded) until the kernel is done
        // with every request, so that no buffer is freed under one.
        self.shutdown();
        let _ = self.ring.submitter().unregister_buf_ring(BGID);
        let n = usize::from(self.entries);
        let leak = self.in_flight > 0;
        if leak {
            // Something is still in flight after a second: leaking the
            // memory is safe, freeing it might not be.
            tracing::error!(
                in_flight = self.in_flight,
                "io_uring requests still in flight at exit"
            );
            return;
        }
        // SAFETY: mapped in `new` with these lengths; no request refers to
        // them any more (in_flight is 0, the buffer ring is unregistered).
        unsafe {
            unmap(self.buf_ring.cast(), n * size_of::<BufRingEntry>());
            unmap(self.data, self.total() * self.buf_size);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;

    #[test]
    fn receives_and_sends_through_the_ring() {
        let mut u = Uring::new(8, 2048, 4).expect("io_uring available");
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        let (a_addr, b_addr) = (a.local_addr().unwrap(), b.local_addr().unwrap());
        let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
        peer.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        u.register(0, a.as_raw_fd()).unwrap();
        u.register(1, b.as_raw_fd()).unwrap();
        // The ring keeps the sockets: their descriptors can go.
        drop((a, b));
        assert!(u.register(4, peer.as_raw_fd()).is_err(), "beyond the table");
        u.arm_recv(0, 1).unwrap();
        let mut out = Vec::new();
        u.wait(Duration::from_millis(1), &mut out).unwrap();
        peer.send_to(b"hello relay", a_addr).unwrap();
        let c = loop {
            out.clear();
            u.wait(Duration::from_millis(100), &mut out).unwrap();
            if let Some(c) = out.iter().find(|c| c.user_data == 1) {
                break *c;
            }
        };
        assert!(c.result > 0, "receive failed: {}", c.result);
        assert!(c.more(), "multishot stays armed");
        let bid = c.buffer().expect("a provided buffer");
        let d = u.datagram(bid, c.result).expect("parsed");
        assert_eq!(d.src, Some(peer.local_addr().unwrap()));
        assert!(!d.truncated);
        assert_eq!(
            &u.buffer(bid)[PAYLOAD_OFFSET..PAYLOAD_OFFSET + d.len],
            b"hello relay"
        );
        u.buffer(bid)[PAYLOAD_OFFSET] = b'H';
        u.send(1, bid, PAYLOAD_OFFSET, d.len, peer.local_addr().unwrap(), 2)
            .unwrap();
        let mut got = [0u8; 64];
        let mut sent = false;
        for _ in 0..50 {
            out.clear();
            u.wait(Duration::from_millis(20), &mut out).unwrap();
            if let Some(c) = out.iter().find(|c| c.user_data == 2) {
                assert_eq!(c.result as usize, d.len);
                u.recycle(bid);
                sent = true;
                break;
            }
        }
        assert!(sent, "send completed");
        let (n, from) = peer.recv_from(&mut got).unwrap();
        assert_eq!(&got[..n], b"Hello relay");
        assert_eq!(from, b_addr);
    }

    #[test]
    fn own_buffers_are_sent_from_and_never_received_into() {
        let mut u = Uring::with_own(2, 2, 256, 2).unwrap();
        assert_eq!(u.own_buffers(), 2..4);
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
        peer.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        u.register(0, a.as_raw_fd()).unwrap();
        u.arm_recv(0, 5).unwrap();
        // An own buffer recycled by mistake stays out of the ring.
        u.recycle(3);
        u.buffer(3)[..5].copy_from_slice(b"ours!");
        u.send(0, 3, 0, 5, peer.local_addr().unwrap(), 6).unwrap();
        // Submitted with the next wait.
        let mut out = Vec::new();
        for _ in 0..50 {
            out.clear();
            u.wait(Duration::from_millis(20), &mut out).unwrap();
            if out.iter().any(|c| c.user_data == 6) {
                break;
            }
        }
        assert!(
            out.iter().any(|c| c.user_data == 6 && c.result == 5),
            "sent"
        );
        let mut got = [0u8; 16];
        let (n, _) = peer.recv_from(&mut got).unwrap();
        assert_eq!(&got[..n], b"ours!");
        // Datagrams land in the two provided buffers only.
        let mut bids = Vec::new();
        for i in 0..2u8 {
            peer.send_to(&[i; 4], a.local_addr().unwrap()).unwrap();
        }
        for _ in 0..50 {
            out.clear();
            u.wait(Duration::from_millis(20), &mut out).unwrap();
            bids.extend(
                out.iter()
                    .filter(|c| c.user_data == 5)
                    .filter_map(|c| c.buffer()),
            );
            if bids.len() == 2 {
                break;
            }
        }
        bids.sort_unstable();
        assert_eq!(bids, [0, 1]);
    }

    #[test]
    fn shutdown_completes_every_request() {
        // More armed receives than the completion queue holds: the
        // cancellations overflow it and must still all be reaped.
        let n = 6000u32;
        let mut u = Uring::new(8, 256, n).unwrap();
        for i in 0..n {
            let s = UdpSocket::bind("127.0.0.1:0").unwrap();
            u.register(i, s.as_raw_fd()).unwrap();
            u.arm_recv(i, u64::from(i)).unwrap();
        }
        let mut out = Vec::new();
        u.wait(Duration::from_millis(1), &mut out).unwrap();
        assert_eq!(u.shutdown(), 0, "requests left in flight");
    }

    #[test]
    fn buffers_come_back_after_many_datagrams() {
        // More datagrams than buffers: each is recycled, none is lost.
        let mut u = Uring::new(4, 256, 1).unwrap();
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
        u.register(0, a.as_raw_fd()).unwrap();
        u.arm_recv(0, 7).unwrap();
        let mut out = Vec::new();
        u.wait(Duration::from_millis(1), &mut out).unwrap();
        let mut received = 0;
        for i in 0..40u8 {
            peer.send_to(&[i; 10], a.local_addr().unwrap()).unwrap();
            out.clear();
            u.wait(Duration::from_millis(100), &mut out).unwrap();
            for c in out.clone() {
                if c.user_data == 7 {
                    if let Some(bid) = c.buffer() {
                        let d = u.datagram(bid, c.result).unwrap();
                        assert_eq!(u.buffer(bid)[PAYLOAD_OFFSET], i);
                        assert_eq!(d.len, 10);
                        received += 1;
                        u.recycle(bid);
                    }
                    if !c.more() {
                        u.arm_recv(0, 7).unwrap();
                    }
                }
            }
        }
        assert_eq!(received, 40);
    }
}
