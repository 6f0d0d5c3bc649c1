//! Batched UDP I/O for the workers: `recvmmsg(2)` and `sendmmsg(2)`.
//!
//! Why this module exists: the relay's cost per packet on this kind of
//! machine is mostly the kernel's (a bare C forwarder costs ≈ 5–6 µs per
//! packet, SRTP ≈ 0.2 µs), so the number of system calls per packet is what
//! is left to cut. The standard library and mio offer one datagram per call
//! (`recv_from`/`send_to`) and draining an edge-triggered socket needs one
//! more call that fails with `EAGAIN`. With `recvmmsg` one call reads up to
//! [`Batch::capacity`] datagrams, and a short count means the queue is empty
//! (no `EAGAIN` call); with `sendmmsg` one call sends every packet queued for
//! one socket. Neither call has a safe wrapper in std, mio or socket2, so
//! this is the crate's only `unsafe` code: the `mmsghdr`/`iovec`/`sockaddr`
//! set-up and the two calls. Everything else in the crate stays
//! `#![deny(unsafe_code)]`.
//!
//! Memory: one [`Batch`] per worker, made on the worker's own thread. It owns
//! `capacity` buffers of `slot` octets (the datagram is decrypted and
//! encrypted in place there, `tailroom` octets are never filled by a
//! receive), the source addresses, and the `mmsghdr`/`iovec` arrays, which
//! hold raw pointers into those buffers. The pointers are written afresh
//! before every call, from `&mut self`, so they never outlive the borrow
//! they come from and the struct can move freely; nothing is allocated after
//! [`Batch::new`].

pub(crate) mod uring;

use std::io;
use std::mem;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::RawFd;

/// One datagram read by [`Batch::recv`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Received {
    /// Octets in the buffer (at most the slot minus the tailroom).
    pub(crate) len: usize,
    /// The sender (`None` for an address family other than IPv4/IPv6).
    pub(crate) src: Option<SocketAddr>,
    /// The datagram was longer than the buffer and was cut (`MSG_TRUNC`).
    pub(crate) truncated: bool,
}

/// One datagram to send with [`Batch::send`]: `len` octets of buffer `buf`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Outgoing {
    /// Index of the buffer (as given to [`Batch::buf_mut`]).
    pub(crate) buf: usize,
    /// Octets to send from the start of the buffer.
    pub(crate) len: usize,
    /// Destination.
    pub(crate) dest: SocketAddr,
}

/// What [`Batch::send`] did with the datagrams it was given.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Sent {
    /// Handed to the kernel.
    pub(crate) sent: usize,
    /// Refused (socket buffer full, unreachable, …): dropped.
    pub(crate) failed: usize,
}

/// Receive buffers plus the headers that point into them.
pub(crate) struct Batch {
    data: Box<[u8]>,
    slot: usize,
    rx_cap: usize,
    received: Box<[Received]>,
    names: Box<[libc::sockaddr_storage]>,
    iovs: Box<[libc::iovec]>,
    hdrs: Box<[libc::mmsghdr]>,
}

impl std::fmt::Debug for Batch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch")
            .field("capacity", &self.capacity())
            .field("slot", &self.slot)
            .field("rx_cap", &self.rx_cap)
            .finish()
    }
}

fn zeroed_storage() -> libc::sockaddr_storage {
    // SAFETY: sockaddr_storage is plain old data (integers and padding);
    // all-zero is a valid value (family AF_UNSPEC).
    unsafe { mem::zeroed() }
}

fn empty_iovec() -> libc::iovec {
    libc::iovec {
        iov_base: std::ptr::null_mut(),
        iov_len: 0,
    }
}

fn empty_hdr() -> libc::mmsghdr {
    // SAFETY: mmsghdr is plain old data (integers, null-able raw pointers
    // and padding); all-zero is a valid value (null pointers, zero lengths).
    unsafe { mem::zeroed() }
}

impl Batch {
    /// `capacity` buffers of `slot` octets; a receive fills at most
    /// `slot - tailroom` of each.
    pub(crate) fn new(capacity: usize, slot: usize, tailroom: usize) -> Batch {
        assert!(capacity > 0 && slot > tailroom, "batch geometry");
        Batch {
            data: vec![0u8; capacity * slot].into_boxed_slice(),
            slot,
            rx_cap: slot - tailroom,
            received: vec![
                Received {
                    len: 0,
                    src: None,
                    truncated: false,
                };
                capacity
            ]
            .into_boxed_slice(),
            names: (0..capacity).map(|_| zeroed_storage()).collect(),
            iovs: (0..capacity).map(|_| empty_iovec()).collect(),
            hdrs: (0..capacity).map(|_| empty_hdr()).collect(),
        }
    }

    /// How many datagrams one call reads or sends at most.
    pub(crate) fn capacity(&self) -> usize {
        self.hdrs.len()
    }

    /// Buffer `i`, the whole slot (tailroom included).
    pub(crate) fn buf_mut(&mut self, i: usize) -> &mut [u8] {
        &mut self.data[i * self.slot..(i + 1) * self.slot]
    }

    /// What the last [`Batch::recv`] put in buffer `i`.
    pub(crate) fn received(&self, i: usize) -> Received {
        self.received[i]
    }

    /// Points header `i` at buffer `buf` (`len` octets) and at name `i`.
    fn set_header(&mut self, i: usize, buf: usize, len: usize, name_len: libc::socklen_t) {
        let base = self.data[buf * self.slot..buf * self.slot + len].as_mut_ptr();
        self.iovs[i] = libc::iovec {
            iov_base: base.cast(),
            iov_len: len,
        };
        let iov: *mut libc::iovec = &mut self.iovs[i];
        let name: *mut libc::sockaddr_storage = &mut self.names[i];
        let h = &mut self.hdrs[i];
        h.msg_hdr.msg_name = name.cast();
        h.msg_hdr.msg_namelen = name_len;
        h.msg_hdr.msg_iov = iov;
        h.msg_hdr.msg_iovlen = 1;
        h.msg_hdr.msg_control = std::ptr::null_mut();
        h.msg_hdr.msg_controllen = 0;
        h.msg_hdr.msg_flags = 0;
        h.msg_len = 0;
    }

    /// Reads up to [`Batch::capacity`] datagrams from `fd` (non-blocking)
    /// into buffers `0..n`. `Ok(n)` with `n < capacity` means the queue was
    /// empty when the call returned. An empty queue is
    /// `Err(WouldBlock)`.
    pub(crate) fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        let n = self.capacity();
        let name_len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        for i in 0..n {
            self.set_header(i, i, self.rx_cap, name_len);
        }
        // SAFETY: `hdrs[..n]` were just set to point at `iovs[i]`, at
        // `names[i]` (with its full size) and, through the iovec, at
        // `rx_cap` octets of buffer `i`; all are owned by `self`, which is
        // borrowed mutably for the whole call, so the kernel writes only
        // into memory we own and nobody else reads it meanwhile. The call
        // does not keep the pointers. A null timeout is allowed.
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
            let h = &self.hdrs[i];
            self.received[i] = Received {
                len: (h.msg_len as usize).min(self.rx_cap),
                src: from_storage(&self.names[i], h.msg_hdr.msg_namelen),
                truncated: h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0,
            };
        }
        Ok(got)
    }

    /// Sends `out` from `fd`, at most [`Batch::capacity`] per call, with as
    /// few calls as the kernel allows. A datagram the kernel refuses is
    /// counted in [`Sent::failed`] and skipped; a full socket buffer
    /// (`EAGAIN`) fails the rest of `out` (a relay drops rather than waits).
    pub(crate) fn send(&mut self, fd: RawFd, out: &[Outgoing]) -> Sent {
        let mut res = Sent::default();
        let mut rest = out;
        while !rest.is_empty() {
            let n = rest.len().min(self.capacity());
            for (i, o) in rest[..n].iter().enumerate() {
                let name_len = to_storage(o.dest, &mut self.names[i]);
                self.set_header(i, o.buf, o.len.min(self.slot), name_len);
            }
            // SAFETY: `hdrs[..n]` were just set to point at `iovs[i]`, at
            // `names[i]` (holding a sockaddr_in/sockaddr_in6 of the length
            // given) and, through the iovec, at `len` octets inside buffer
            // `o.buf` (bounds checked by the slice indexing in set_header).
            // All are owned by `self`, borrowed mutably for the call; the
            // kernel only reads them and does not keep the pointers.
            let r = unsafe { libc::sendmmsg(fd, self.hdrs.as_mut_ptr(), n as libc::c_uint, 0) };
            if r > 0 {
                res.sent += r as usize;
                rest = &rest[r as usize..];
                continue;
            }
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::Interrupted => continue,
                io::ErrorKind::WouldBlock => {
                    res.failed += rest.len();
                    return res;
                }
                // The first datagram was refused (e.g. ECONNREFUSED from an
                // earlier ICMP error, or no route): drop it, go on.
                _ => {
                    res.failed += 1;
                    rest = &rest[1..];
                }
            }
        }
        res
    }
}

/// The process's current (soft) limit on open descriptors, `ulimit -n`.
pub(crate) fn nofile_limit() -> u64 {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } == 0 {
        r.rlim_cur
    } else {
        1024
    }
}

/// Writes `addr` into `st` as a sockaddr_in or sockaddr_in6; returns its length.
fn to_storage(addr: SocketAddr, st: &mut libc::sockaddr_storage) -> libc::socklen_t {
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
            let p: *mut libc::sockaddr_storage = st;
            // SAFETY: sockaddr_storage is larger than and at least as aligned
            // as sockaddr_in (that is its purpose), and `p` comes from a
            // unique reference, so the write is in bounds and aligned.
            unsafe { p.cast::<libc::sockaddr_in>().write(sin) };
            size_of::<libc::sockaddr_in>() as libc::socklen_t
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
            let p: *mut libc::sockaddr_storage = st;
            // SAFETY: as above, for sockaddr_in6.
            unsafe { p.cast::<libc::sockaddr_in6>().write(sin6) };
            size_of::<libc::sockaddr_in6>() as libc::socklen_t
        }
    }
}

/// Reads the address the kernel wrote into `st` (`len` octets of it).
fn from_storage(st: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<SocketAddr> {
    let len = len as usize;
    let p: *const libc::sockaddr_storage = st;
    match i32::from(st.ss_family) {
        libc::AF_INET if len >= size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says the kernel wrote a sockaddr_in, the
            // length says all of it; sockaddr_storage is large and aligned
            // enough for one, and every bit pattern is a valid sockaddr_in.
            let sin = unsafe { p.cast::<libc::sockaddr_in>().read() };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes()),
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 if len >= size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 = unsafe { p.cast::<libc::sockaddr_in6>().read() };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                u16::from_be(sin6.sin6_port),
                u32::from_be(sin6.sin6_flowinfo),
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;

    // ---- pure: no system call (these also run under miri) ----

    #[test]
    fn addresses_round_trip_through_sockaddr_storage() {
        let mut st = zeroed_storage();
        for a in [
            "127.0.0.1:5004",
            "10.1.2.3:65535",
            "[::1]:40000",
            "[2001:db8::7]:1",
        ] {
            let a: SocketAddr = a.parse().unwrap();
            let len = to_storage(a, &mut st);
            assert_eq!(from_storage(&st, len), Some(a));
        }
        let scoped = SocketAddr::V6(SocketAddrV6::new("fe80::1".parse().unwrap(), 9, 5, 3));
        let len = to_storage(scoped, &mut st);
        assert_eq!(from_storage(&st, len), Some(scoped));
    }

    #[test]
    fn short_or_unknown_names_are_no_address() {
        let mut st = zeroed_storage();
        assert_eq!(from_storage(&st, 0), None, "AF_UNSPEC");
        let len = to_storage("127.0.0.1:1".parse().unwrap(), &mut st);
        assert_eq!(from_storage(&st, len - 1), None, "cut short");
    }

    #[test]
    fn headers_point_into_their_own_slot() {
        let mut b = Batch::new(4, 64, 16);
        assert_eq!(b.capacity(), 4);
        let name_len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        for i in 0..4 {
            b.set_header(i, 3 - i, b.rx_cap, name_len);
        }
        let base = b.data.as_ptr() as usize;
        for i in 0..4 {
            let h = &b.hdrs[i].msg_hdr;
            assert_eq!(h.msg_iovlen, 1);
            assert_eq!(h.msg_iov as usize, &b.iovs[i] as *const _ as usize);
            assert_eq!(h.msg_name as usize, &b.names[i] as *const _ as usize);
            assert_eq!(h.msg_namelen, name_len);
            assert_eq!(b.iovs[i].iov_base as usize, base + (3 - i) * 64);
            assert_eq!(b.iovs[i].iov_len, 48, "tailroom is never received into");
        }
        b.buf_mut(2)[63] = 7;
        assert_eq!(b.data[2 * 64 + 63], 7);
    }

    // ---- real sockets on loopback ----

    fn pair() -> (UdpSocket, UdpSocket) {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        b.set_nonblocking(true).unwrap();
        (a, b)
    }

    /// Waits (bounded) until `s` has something queued.
    fn wait_readable(s: &UdpSocket) {
        let mut one = [0u8; 1];
        for _ in 0..200 {
            if s.peek(&mut one).is_ok() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        panic!("nothing arrived");
    }

    #[test]
    fn several_datagrams_in_one_call_then_a_short_count() {
        let (tx, rx) = pair();
        let dest = rx.local_addr().unwrap();
        for i in 0..11u8 {
            tx.send_to(&[i; 20][..usize::from(i) + 1], dest).unwrap();
        }
        wait_readable(&rx);
        let mut b = Batch::new(8, 256, 32);
        assert_eq!(b.recv(rx.as_raw_fd()).unwrap(), 8, "a full batch");
        for i in 0..8 {
            let r = b.received(i);
            assert_eq!(r.len, i + 1);
            assert_eq!(r.src, Some(tx.local_addr().unwrap()));
            assert!(!r.truncated);
            assert_eq!(&b.buf_mut(i)[..r.len], &[i as u8; 20][..i + 1]);
        }
        assert_eq!(b.recv(rx.as_raw_fd()).unwrap(), 3, "the rest: short count");
        assert_eq!(b.received(2).len, 11);
    }

    #[test]
    fn empty_queue_is_would_block() {
        let (_tx, rx) = pair();
        let mut b = Batch::new(4, 256, 32);
        let e = b.recv(rx.as_raw_fd()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
    }

    #[test]
    fn datagram_longer_than_the_buffer_is_flagged_truncated() {
        let (tx, rx) = pair();
        tx.send_to(&[9u8; 300], rx.local_addr().unwrap()).unwrap();
        tx.send_to(&[1u8; 10], rx.local_addr().unwrap()).unwrap();
        wait_readable(&rx);
        let mut b = Batch::new(4, 256, 32);
        // Both may not be queued yet at the first call; read until both are in.
        let mut seen = Vec::new();
        for _ in 0..100 {
            match b.recv(rx.as_raw_fd()) {
                Ok(n) => seen.extend((0..n).map(|i| b.received(i))),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("{e}"),
            }
            if seen.len() == 2 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert_eq!(seen.len(), 2);
        assert!(seen[0].truncated);
        assert_eq!(seen[0].len, 224, "cut at the slot minus the tailroom");
        assert!(!seen[1].truncated);
        assert_eq!(seen[1].len, 10);
    }

    #[test]
    fn batch_out_to_several_destinations_and_empty_batch() {
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let (r1, r2) = (
            UdpSocket::bind("127.0.0.1:0").unwrap(),
            UdpSocket::bind("127.0.0.1:0").unwrap(),
        );
        for r in [&r1, &r2] {
            r.set_read_timeout(Some(std::time::Duration::from_secs(2)))
                .unwrap();
        }
        let mut b = Batch::new(4, 256, 32);
        assert_eq!(b.send(tx.as_raw_fd(), &[]), Sent::default(), "no call");
        for i in 0..4 {
            b.buf_mut(i)[..3].copy_from_slice(&[i as u8; 3]);
        }
        // Six datagrams (more than the capacity: two calls), buffers reused.
        let out: Vec<Outgoing> = (0..6)
            .map(|k| Outgoing {
                buf: k % 4,
                len: 1 + k % 3,
                dest: if k % 2 == 0 {
                    r1.local_addr().unwrap()
                } else {
                    r2.local_addr().unwrap()
                },
            })
            .collect();
        assert_eq!(b.send(tx.as_raw_fd(), &out), Sent { sent: 6, failed: 0 });
        let mut buf = [0u8; 64];
        for (k, o) in out.iter().enumerate() {
            let r = if k % 2 == 0 { &r1 } else { &r2 };
            let (n, from) = r.recv_from(&mut buf).unwrap();
            assert_eq!(from, tx.local_addr().unwrap());
            assert_eq!(&buf[..n], &[o.buf as u8; 3][..o.len]);
        }
    }

    #[test]
    fn refused_datagram_is_counted_and_the_rest_still_go() {
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .unwrap();
        let mut b = Batch::new(4, 256, 32);
        // An IPv6 destination from an IPv4 socket is refused (EAFNOSUPPORT
        // or EINVAL) for that datagram only.
        let out = [
            Outgoing {
                buf: 0,
                len: 4,
                dest: "[::1]:9".parse().unwrap(),
            },
            Outgoing {
                buf: 1,
                len: 4,
                dest: rx.local_addr().unwrap(),
            },
        ];
        assert_eq!(b.send(tx.as_raw_fd(), &out), Sent { sent: 1, failed: 1 });
        let mut buf = [0u8; 16];
        assert_eq!(rx.recv(&mut buf).unwrap(), 4);
    }
}
