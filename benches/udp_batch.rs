//! Batched UDP for the RTP load tool (`examples/rtp_load.rs`):
//! `sendmmsg(2)`, and `recvmmsg(2)` with the kernel's receive timestamp of
//! each datagram (`SO_TIMESTAMPNS`).
//!
//! Why: with one `send_to`/`recv_from` per packet the generator saturated
//! its core at ≈ 1,500–2,000 paced flows, below what the relays under test
//! can carry; batching cuts its system calls per packet, and the kernel
//! timestamp makes the measured latency independent of when the generator
//! gets round to reading (its wake-ups no longer add to p50/p99). std has
//! no safe wrapper for either call, so this module is the package's only
//! `unsafe` code besides the counting allocator of `examples/sip_allocs.rs`;
//! each block says why it is sound. The same pattern as the relay's own
//! `crates/relay/src/sys/mod.rs`: headers are rebuilt from `&mut self` before
//! every call, so no pointer outlives its borrow.

use std::io;
use std::mem;
use std::net::SocketAddr;
use std::os::fd::RawFd;

/// Octets of control buffer per datagram: one `cmsghdr` + `timespec`,
/// rounded up, in `u64`s so that it is aligned for `cmsghdr`.
const CTRL_WORDS: usize = 8;

/// Buffers plus the headers that point into them; see the module doc.
pub struct UdpBatch {
    data: Box<[u8]>,
    slot: usize,
    lens: Box<[usize]>,
    stamps: Box<[Option<u64>]>,
    names: Box<[libc::sockaddr_storage]>,
    iovs: Box<[libc::iovec]>,
    hdrs: Box<[libc::mmsghdr]>,
    ctrl: Box<[[u64; CTRL_WORDS]]>,
}

impl std::fmt::Debug for UdpBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UdpBatch")
            .field("capacity", &self.capacity())
            .field("slot", &self.slot)
            .finish()
    }
}

/// One datagram to send: `len` octets of buffer `buf` to `dest`.
#[derive(Debug, Clone, Copy)]
pub struct Out {
    /// Buffer index.
    pub buf: usize,
    /// Octets.
    pub len: usize,
    /// Destination.
    pub dest: SocketAddr,
}

/// Asks the kernel to timestamp every datagram `fd` receives
/// (`SO_TIMESTAMPNS`, CLOCK_REALTIME, read back by [`UdpBatch::recv`]).
pub fn enable_rx_timestamps(fd: RawFd) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: `on` is a live c_int and its size is passed; the kernel copies
    // it and keeps no pointer.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            (&on as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Sets the receive buffer to `bytes`, beyond `rmem_max` if allowed
/// (`SO_RCVBUFFORCE`, root), else as far as `SO_RCVBUF` goes.
pub fn set_rcvbuf(fd: RawFd, bytes: usize) -> io::Result<()> {
    let v = bytes.min(i32::MAX as usize) as libc::c_int;
    for opt in [libc::SO_RCVBUFFORCE, libc::SO_RCVBUF] {
        // SAFETY: as in enable_rx_timestamps.
        let r = unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                opt,
                (&v as *const libc::c_int).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if r == 0 {
            return Ok(());
        }
    }
    Err(io::Error::last_os_error())
}

fn zeroed<T: Pod>() -> T {
    // SAFETY: `Pod` is implemented only for the C structs below, made of
    // integers, nullable raw pointers and padding, for which all-zero is a
    // valid value.
    unsafe { mem::zeroed() }
}

/// C structs for which all-zero bytes are a valid value.
trait Pod {}
impl Pod for libc::sockaddr_storage {}
impl Pod for libc::iovec {}
impl Pod for libc::mmsghdr {}

impl UdpBatch {
    /// `capacity` buffers of `slot` octets.
    pub fn new(capacity: usize, slot: usize) -> UdpBatch {
        assert!(capacity > 0 && slot > 0);
        UdpBatch {
            data: vec![0u8; capacity * slot].into_boxed_slice(),
            slot,
            lens: vec![0; capacity].into_boxed_slice(),
            stamps: vec![None; capacity].into_boxed_slice(),
            names: (0..capacity).map(|_| zeroed()).collect(),
            iovs: (0..capacity).map(|_| zeroed()).collect(),
            hdrs: (0..capacity).map(|_| zeroed()).collect(),
            ctrl: vec![[0u64; CTRL_WORDS]; capacity].into_boxed_slice(),
        }
    }

    /// Datagrams per call at most.
    pub fn capacity(&self) -> usize {
        self.hdrs.len()
    }

    /// Buffer `i` (the whole slot).
    pub fn buf_mut(&mut self, i: usize) -> &mut [u8] {
        &mut self.data[i * self.slot..(i + 1) * self.slot]
    }

    /// Octets the last [`UdpBatch::recv`] put in buffer `i`.
    pub fn len(&self, i: usize) -> usize {
        self.lens[i]
    }

    /// The kernel's receive time of datagram `i` (ns since the Unix epoch,
    /// CLOCK_REALTIME), if the socket has timestamps on.
    pub fn rx_time(&self, i: usize) -> Option<u64> {
        self.stamps[i]
    }

    fn set_header(&mut self, i: usize, buf: usize, len: usize, name_len: usize, ctrl: bool) {
        let base = self.data[buf * self.slot..buf * self.slot + len].as_mut_ptr();
        self.iovs[i] = libc::iovec {
            iov_base: base.cast(),
            iov_len: len,
        };
        let iov: *mut libc::iovec = &mut self.iovs[i];
        let name: *mut libc::sockaddr_storage = &mut self.names[i];
        let c: *mut [u64; CTRL_WORDS] = &mut self.ctrl[i];
        let h = &mut self.hdrs[i];
        h.msg_hdr.msg_name = name.cast();
        h.msg_hdr.msg_namelen = name_len as libc::socklen_t;
        h.msg_hdr.msg_iov = iov;
        h.msg_hdr.msg_iovlen = 1;
        if ctrl {
            h.msg_hdr.msg_control = c.cast();
            h.msg_hdr.msg_controllen = CTRL_WORDS * 8;
        } else {
            h.msg_hdr.msg_control = std::ptr::null_mut();
            h.msg_hdr.msg_controllen = 0;
        }
        h.msg_hdr.msg_flags = 0;
        h.msg_len = 0;
    }

    /// Reads up to [`UdpBatch::capacity`] datagrams (non-blocking) into
    /// buffers `0..n`; an empty queue is `Err(WouldBlock)`.
    pub fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        let n = self.capacity();
        for i in 0..n {
            self.set_header(i, i, self.slot, size_of::<libc::sockaddr_storage>(), true);
        }
        // SAFETY: `hdrs[..n]` point at `iovs[i]`, `names[i]` (full size),
        // `ctrl[i]` (CTRL_WORDS * 8 octets, u64-aligned) and, through the
        // iovec, at buffer `i`; all owned by `self`, borrowed mutably for the
        // call, and not kept by the kernel after it returns.
        let r = unsafe {
            libc::recvmmsg(
                fd,
                self.hdrs.as_mut_ptr(),
                n as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        let got = r as usize;
        for i in 0..got {
            self.lens[i] = (self.hdrs[i].msg_len as usize).min(self.slot);
            self.stamps[i] = self.timestamp(i);
        }
        Ok(got)
    }

    /// The SCM_TIMESTAMPNS control message of datagram `i`, if any.
    fn timestamp(&self, i: usize) -> Option<u64> {
        let h = &self.hdrs[i].msg_hdr;
        // SAFETY: `h` is the header the kernel just filled: msg_control
        // points at ctrl[i] and msg_controllen says how much of it holds
        // control messages, which is exactly what CMSG_FIRSTHDR/NXTHDR walk
        // (they return null at the end and never leave that range).
        let mut cm = unsafe { libc::CMSG_FIRSTHDR(h) };
        while !cm.is_null() {
            // SAFETY: `cm` is non-null and was returned by CMSG_FIRSTHDR or
            // CMSG_NXTHDR for this header, so it points at a complete cmsghdr
            // inside ctrl[i].
            let c = unsafe { &*cm };
            if c.cmsg_level == libc::SOL_SOCKET
                && c.cmsg_type == libc::SCM_TIMESTAMPNS
                && c.cmsg_len as usize >= size_of::<libc::cmsghdr>() + size_of::<libc::timespec>()
            {
                // SAFETY: the length check above says a whole timespec
                // follows the header; CMSG_DATA may be unaligned for it, hence
                // read_unaligned.
                let ts = unsafe {
                    libc::CMSG_DATA(cm)
                        .cast::<libc::timespec>()
                        .read_unaligned()
                };
                return Some(ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64);
            }
            // SAFETY: as for CMSG_FIRSTHDR above.
            cm = unsafe { libc::CMSG_NXTHDR(h, cm) };
        }
        None
    }

    /// Sends `out` from `fd`, a `sendmmsg` per [`UdpBatch::capacity`]
    /// datagrams. Returns how many were refused (dropped).
    pub fn send(&mut self, fd: RawFd, out: &[Out]) -> usize {
        let mut failed = 0;
        let mut rest = out;
        while !rest.is_empty() {
            let n = rest.len().min(self.capacity());
            for (i, o) in rest[..n].iter().enumerate() {
                let name_len = write_addr(o.dest, &mut self.names[i]);
                self.set_header(i, o.buf, o.len.min(self.slot), name_len, false);
            }
            // SAFETY: `hdrs[..n]` point at `iovs[i]`, at `names[i]` (a
            // sockaddr_in/in6 of the length given) and, through the iovec,
            // at `len` octets of buffer `o.buf`; all owned by `self`,
            // borrowed mutably, only read by the kernel and not kept.
            let r = unsafe { libc::sendmmsg(fd, self.hdrs.as_mut_ptr(), n as libc::c_uint, 0) };
            if r > 0 {
                rest = &rest[r as usize..];
                continue;
            }
            match io::Error::last_os_error().kind() {
                io::ErrorKind::Interrupted => {}
                io::ErrorKind::WouldBlock => return failed + rest.len(),
                _ => {
                    failed += 1;
                    rest = &rest[1..];
                }
            }
        }
        failed
    }
}

fn write_addr(addr: SocketAddr, st: &mut libc::sockaddr_storage) -> usize {
    let p: *mut libc::sockaddr_storage = st;
    match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is big and aligned enough for any
            // sockaddr; `p` comes from a unique reference.
            unsafe { p.cast::<libc::sockaddr_in>().write(sin) };
            size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo().to_be(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: as above.
            unsafe { p.cast::<libc::sockaddr_in6>().write(sin6) };
            size_of::<libc::sockaddr_in6>()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    #[test]
    fn batch_out_and_in_with_kernel_timestamps() {
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        enable_rx_timestamps(rx.as_raw_fd()).unwrap();
        set_rcvbuf(rx.as_raw_fd(), 1 << 20).unwrap();
        let before = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        let mut b = UdpBatch::new(4, 64);
        for i in 0..4 {
            b.buf_mut(i)[..10].copy_from_slice(&[i as u8; 10]);
        }
        let out: Vec<Out> = (0..6)
            .map(|k| Out {
                buf: k % 4,
                len: 5 + k,
                dest: rx.local_addr().unwrap(),
            })
            .collect();
        assert_eq!(b.send(tx.as_raw_fd(), &out), 0);
        let mut got = Vec::new();
        for _ in 0..200 {
            match b.recv(rx.as_raw_fd()) {
                Ok(n) => got.extend((0..n).map(|i| (b.len(i), b.rx_time(i)))),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("{e}"),
            }
            if got.len() == 6 {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(got.len(), 6);
        for (k, (len, ts)) in got.into_iter().enumerate() {
            assert_eq!(len, 5 + k);
            let ts = ts.expect("kernel timestamp");
            assert!(
                ts >= before && ts < before + 10_000_000_000,
                "{ts} vs {before}"
            );
        }
        let mut empty = UdpBatch::new(2, 64);
        assert_eq!(
            empty.recv(rx.as_raw_fd()).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
    }
}
