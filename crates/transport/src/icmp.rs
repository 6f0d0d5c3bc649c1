//! What the network says about UDP destinations: ICMP port, host and
//! network unreachable for datagrams we sent.
//!
//! Linux reports ICMP errors on an *unconnected* UDP socket only with
//! `IP_RECVERR` / `IPV6_RECVERR`: then each error is queued on the socket
//! with the original destination of the datagram that caused it, read with
//! `recvmsg(MSG_ERRQUEUE)`, and the socket's pending error (`sk_err`, what
//! the next `recvfrom` or `sendto` returns, whoever the destination) is
//! cleared as the queue is read. So every signalling datagram still leaves
//! from the listening socket (symmetric signalling, the source port peers
//! know) and no per-peer socket is needed. Elsewhere this module does
//! nothing: UDP peers fail by timeout only.

use std::io;
use std::net::SocketAddr;

/// The errors that mean "nobody there": a destination that refuses
/// (port unreachable) or cannot be reached. Anything else (a full socket
/// buffer, a too-large datagram) says nothing about the peer.
pub(crate) fn is_unreachable(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::HostUnreachable
            | io::ErrorKind::NetworkUnreachable
    ) || e.raw_os_error() == Some(EHOSTDOWN)
}

#[cfg(target_os = "linux")]
const EHOSTDOWN: i32 = nix::libc::EHOSTDOWN;
#[cfg(not(target_os = "linux"))]
const EHOSTDOWN: i32 = -1;

#[cfg(target_os = "linux")]
mod imp {
    use std::io::{self, IoSliceMut};
    use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};
    use std::os::fd::RawFd;

    use nix::libc;
    use nix::sys::socket::{
        recvmsg, setsockopt, sockopt, ControlMessageOwned, MsgFlags, SockaddrStorage,
    };

    pub(crate) fn enable(fd: RawFd, v6: bool) -> io::Result<()> {
        let r = if v6 {
            setsockopt(fd, sockopt::Ipv6RecvErr, &true)
        } else {
            setsockopt(fd, sockopt::Ipv4RecvErr, &true)
        };
        r.map_err(io::Error::from)
    }

    pub(crate) fn drain(fd: RawFd) -> Vec<(SocketAddr, io::Error)> {
        let mut out = Vec::new();
        // Bounded: a flood of errors is read over several calls.
        for _ in 0..64 {
            let mut data = [0u8; 64];
            let mut iov = [IoSliceMut::new(&mut data)];
            let mut cmsg = nix::cmsg_space!(libc::sock_extended_err, libc::sockaddr_in6);
            let Ok(msg) = recvmsg::<SockaddrStorage>(
                fd,
                &mut iov,
                Some(&mut cmsg),
                MsgFlags::MSG_ERRQUEUE | MsgFlags::MSG_DONTWAIT,
            ) else {
                break; // EAGAIN: the queue is empty
            };
            let dest = msg.address.and_then(|a| {
                a.as_sockaddr_in()
                    .map(|v4| SocketAddr::V4(SocketAddrV4::from(*v4)))
                    .or_else(|| {
                        a.as_sockaddr_in6()
                            .map(|v6| SocketAddr::V6(SocketAddrV6::from(*v6)))
                    })
            });
            for c in msg.cmsgs() {
                let err = match c {
                    ControlMessageOwned::Ipv4RecvErr(e, _) => e,
                    ControlMessageOwned::Ipv6RecvErr(e, _) => e,
                    _ => continue,
                };
                let icmp = matches!(
                    err.ee_origin,
                    libc::SO_EE_ORIGIN_ICMP | libc::SO_EE_ORIGIN_ICMP6
                );
                if let (Some(d), true) = (dest, icmp) {
                    out.push((d, io::Error::from_raw_os_error(err.ee_errno as i32)));
                }
            }
        }
        out
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use std::io;
    use std::net::SocketAddr;

    pub(crate) fn enable(_fd: i32, _v6: bool) -> io::Result<()> {
        Ok(())
    }

    pub(crate) fn drain(_fd: i32) -> Vec<(SocketAddr, io::Error)> {
        Vec::new()
    }
}

/// Asks the kernel to queue ICMP errors on UDP socket `sock`.
pub(crate) fn enable(sock: &socket2::Socket, v6: bool) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::fd::AsRawFd;
        imp::enable(sock.as_raw_fd(), v6)
    }
    #[cfg(not(unix))]
    {
        let _ = (sock, v6);
        Ok(())
    }
}

/// The ICMP errors queued on `sock`: (original destination, error), only
/// those [`is_unreachable`] counts. Never blocks.
pub(crate) fn drain(sock: &tokio::net::UdpSocket) -> Vec<(SocketAddr, io::Error)> {
    #[cfg(unix)]
    {
        use std::os::fd::AsRawFd;
        let mut v = imp::drain(sock.as_raw_fd());
        v.retain(|(_, e)| is_unreachable(e));
        v
    }
    #[cfg(not(unix))]
    {
        let _ = sock;
        Vec::new()
    }
}
