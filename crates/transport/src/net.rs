//! Sockets: UDP, TCP and TLS listeners, outbound connections, the
//! connection table, keepalives and timeouts.
//!
//! Everything received goes to one channel as [`Inbound`] (a datagram, or a
//! message framed from a stream); everything sent goes through
//! [`Transports::send`] to a [`Peer`]. For UDP a peer's `conn` is the index
//! of the local socket the datagram arrived on (answers leave from the same
//! socket); for TCP/TLS it is the connection id.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use rustls_pki_types::ServerName;
use sip::{Frame, FramingAction, StreamFramer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, Notify};

use crate::tls::{cert_matches_any, TlsContext};

// `Transport` and `Peer` are the transaction layer's: the shell hands
// messages to it and sends what it returns without converting.
pub use transaction::{Peer, Transport};

/// One message received.
#[derive(Debug, Clone)]
pub struct Inbound {
    /// The datagram or framed message.
    pub bytes: Bytes,
    /// Who sent it and how.
    pub peer: Peer,
    /// The local address it arrived on.
    pub local: SocketAddr,
}

/// A UDP destination the network says cannot be reached: an ICMP port,
/// host or network unreachable for a datagram sent to it (Linux: queued on
/// the socket with `IP_RECVERR`), or a send to it that failed that way.
/// Read them with [`Transports::unreachable`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreachable {
    /// The destination of the datagram that drew the error.
    pub addr: SocketAddr,
    /// What the kernel said (`Connection refused (os error 111)`, …).
    pub error: String,
}

/// A stream connection that ended without our asking, with what it
/// carried: the peer closed or reset it, a read or a write on it failed,
/// or it was closed for what the peer sent. Connections we close
/// ([`Transports::close_connection`], [`Transports::close_tls_connections`],
/// an inbound connection idle for `idle_timeout`, the shutdown) are not
/// reported. Read them with [`Transports::lost`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lost {
    /// The connection as its messages named it: address, transport,
    /// connection id and, for one opened with [`Transports::connect_as`],
    /// the identity (`trunk`) it was opened for.
    pub peer: Peer,
    /// True for a connection we opened.
    pub outbound: bool,
    /// What happened.
    pub reason: LostReason,
}

/// How a stream connection was lost.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LostReason {
    /// The peer closed it (EOF; for TLS with or without close_notify).
    Closed,
    /// The peer reset it (RST), or a write found it gone (EPIPE).
    Reset,
    /// Another read or write error (a TLS protocol error, …).
    Error(String),
    /// Closed for what the peer sent: a framing error (answered 400/413
    /// first when it was a request).
    Framing,
    /// Closed because a message the peer started stalled (`assembly_timeout`).
    Stalled,
}

impl LostReason {
    fn of(e: &io::Error) -> LostReason {
        match e.kind() {
            // rustls: the peer closed the TCP connection without close_notify.
            io::ErrorKind::UnexpectedEof => LostReason::Closed,
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe => LostReason::Reset,
            _ => LostReason::Error(e.to_string()),
        }
    }
}

impl fmt::Display for LostReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LostReason::Closed => f.write_str("closed by the peer"),
            LostReason::Reset => f.write_str("reset by the peer"),
            LostReason::Error(e) => write!(f, "{e}"),
            LostReason::Framing => f.write_str("closed for a framing error"),
            LostReason::Stalled => f.write_str("closed: a message stalled"),
        }
    }
}

/// What to listen on.
#[derive(Debug, Clone)]
pub struct ListenerSpec {
    /// Transport.
    pub transport: Transport,
    /// Address (port 0 picks a free port).
    pub addr: SocketAddr,
    /// The TLS profile of a TLS listener.
    pub tls: Option<Arc<TlsContext>>,
}

/// Limits that keep slow, stalled or hostile peers from holding resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest SIP message accepted.
    pub max_message_size: usize,
    /// Close a stream connection after this long without a byte received.
    pub idle_timeout: Duration,
    /// Close a stream connection whose TLS handshake takes longer.
    pub handshake_timeout: Duration,
    /// Close a stream connection on which a started message is not complete after this long.
    pub assembly_timeout: Duration,
    /// Most simultaneous stream connections; more are refused.
    pub max_connections: usize,
    /// Most inbound stream connections from one address (TLS handshakes
    /// in progress included); more are refused at accept.
    pub max_connections_per_source: usize,
    /// Most inbound TLS handshakes in progress at once; more connections
    /// are refused at accept (a handshake costs an RSA signature).
    pub max_handshakes: usize,
    /// Send a CRLFCRLF ping on an idle outbound connection after this long (RFC 5626).
    pub keepalive_interval: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_size: 65_535,
            idle_timeout: Duration::from_secs(600),
            handshake_timeout: Duration::from_secs(10),
            assembly_timeout: Duration::from_secs(30),
            max_connections: 10_000,
            max_connections_per_source: 500,
            max_handshakes: 256,
            keepalive_interval: Duration::from_secs(30),
        }
    }
}

/// Counters, read with [`Transports::stats`].
#[derive(Debug, Default)]
struct Counters {
    udp_in: AtomicU64,
    stream_in: AtomicU64,
    sent: AtomicU64,
    send_errors: AtomicU64,
    accepted: AtomicU64,
    refused: AtomicU64,
    refused_per_source: AtomicU64,
    refused_handshakes: AtomicU64,
    tls_failures: AtomicU64,
    framing_errors: AtomicU64,
    timeouts: AtomicU64,
    pings: AtomicU64,
    stun: AtomicU64,
    unreachable: AtomicU64,
    lost: AtomicU64,
}

/// A snapshot of the transport counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Datagrams received.
    pub udp_in: u64,
    /// Messages framed from streams.
    pub stream_in: u64,
    /// Messages sent.
    pub sent: u64,
    /// Sends that failed (no such connection, socket error, queue full).
    pub send_errors: u64,
    /// Stream connections accepted (after the TLS handshake for TLS).
    pub accepted: u64,
    /// Stream connections refused (limit reached).
    pub refused: u64,
    /// Inbound connections refused: their source had `max_connections_per_source`.
    pub refused_per_source: u64,
    /// Inbound TLS connections refused: `max_handshakes` were in progress.
    pub refused_handshakes: u64,
    /// TLS handshakes that failed (bad or missing client certificate, wrong name, …).
    pub tls_failures: u64,
    /// Streams closed for a framing error.
    pub framing_errors: u64,
    /// Streams closed for idleness, slow assembly or a slow handshake.
    pub timeouts: u64,
    /// RFC 5626 pings answered.
    pub pings: u64,
    /// STUN messages received on UDP listeners (Binding requests answered).
    pub stun: u64,
    /// UDP destinations reported unreachable (ICMP, failed sends).
    pub unreachable: u64,
    /// Stream connections lost (closed or reset by the peer, failed; see [`Lost`]).
    pub lost: u64,
    /// Stream connections open now.
    pub open_connections: u64,
}

/// Why a send failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// No open connection with that id (closed meanwhile).
    NoConnection,
    /// The connection's queue is full (the peer does not read).
    QueueFull,
    /// The UDP socket refused the datagram.
    Socket(String),
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::NoConnection => f.write_str("no such connection"),
            SendError::QueueFull => f.write_str("connection send queue full"),
            SendError::Socket(e) => write!(f, "socket error: {e}"),
        }
    }
}

impl std::error::Error for SendError {}

enum WriteCmd {
    Data(Bytes),
    Close,
}

#[derive(Debug)]
struct Conn {
    tx: mpsc::Sender<WriteCmd>,
    peer: Peer,
    tls: bool,
    /// DNS names of the peer's TLS certificate.
    names: Option<Arc<[String]>>,
    ending: Arc<Ending>,
}

/// How one connection ends, shared by its reader, its writer and the table.
#[derive(Debug, Default)]
struct Ending {
    /// Set once its end is decided: we asked to close it, or its loss was
    /// reported. Whoever sets it first decides; a loss is reported once.
    decided: AtomicBool,
    /// The writer stopped on an error (the reader stops too).
    write_failed: AtomicBool,
}

impl Conn {
    /// Asks the writer to close after the queued writes; what the
    /// connection does afterwards (the peer's FIN) is not a loss.
    fn close(&self) -> bool {
        let was = self.ending.decided.swap(true, Ordering::SeqCst);
        let queued = self.tx.try_send(WriteCmd::Close).is_ok();
        if !queued && !was {
            self.ending.decided.store(false, Ordering::SeqCst);
        }
        queued
    }
}

impl fmt::Debug for WriteCmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WriteCmd::Data(b) => write!(f, "Data({} bytes)", b.len()),
            WriteCmd::Close => f.write_str("Close"),
        }
    }
}

/// Outbound connections are reused per (remote, transport, TLS identity,
/// the caller's identity tag `Peer::trunk`).
type ReuseKey = (SocketAddr, Transport, String, Option<u16>);

#[derive(Debug)]
struct Inner {
    udp: Vec<Arc<UdpSocket>>,
    conns: Mutex<HashMap<u64, Conn>>,
    outbound: Mutex<HashMap<ReuseKey, u64>>,
    next_id: AtomicU64,
    limits: Limits,
    counters: Counters,
    inbound: mpsc::Sender<Inbound>,
    unreachable: mpsc::Sender<Unreachable>,
    unreachable_rx: Mutex<Option<mpsc::Receiver<Unreachable>>>,
    lost: mpsc::Sender<Lost>,
    lost_rx: Mutex<Option<mpsc::Receiver<Lost>>>,
    accepting: AtomicBool,
    stop: Notify,
    /// Inbound stream connections per source address (handshaking or open).
    per_source: Mutex<HashMap<std::net::IpAddr, usize>>,
    /// Inbound TLS handshakes in progress.
    handshakes: AtomicUsize,
}

/// Handle to the running transports; cheap to clone.
#[derive(Debug, Clone)]
pub struct Transports {
    inner: Arc<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding this lock would be a bug elsewhere; the table stays usable.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Transports {
    /// Binds every listener and starts receiving; returns the handle and the
    /// bound addresses (in the order of `specs`). Must run inside a tokio runtime.
    pub async fn bind(
        specs: &[ListenerSpec],
        limits: Limits,
        inbound: mpsc::Sender<Inbound>,
    ) -> io::Result<(Transports, Vec<SocketAddr>)> {
        let mut udp = Vec::new();
        let mut tcp = Vec::new();
        let mut bound = Vec::new();
        for spec in specs {
            match spec.transport {
                Transport::Udp => {
                    let sock = udp_socket(spec.addr)?;
                    bound.push(sock.local_addr()?);
                    udp.push(Arc::new(sock));
                }
                Transport::Tcp | Transport::Tls => {
                    if spec.transport == Transport::Tls && spec.tls.is_none() {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidInput,
                            "TLS listener without a TLS profile",
                        ));
                    }
                    let l = TcpListener::bind(spec.addr).await?;
                    bound.push(l.local_addr()?);
                    tcp.push((l, spec.clone()));
                }
            }
        }
        // Bounded: beyond 1,024 unread reports they are counted, not queued.
        let (unreachable, unreachable_rx) = mpsc::channel(1024);
        // The same for lost connections (at most one report per connection).
        let (lost, lost_rx) = mpsc::channel(4096);
        let inner = Arc::new(Inner {
            udp,
            conns: Mutex::new(HashMap::new()),
            outbound: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            limits,
            counters: Counters::default(),
            inbound,
            unreachable,
            unreachable_rx: Mutex::new(Some(unreachable_rx)),
            lost,
            lost_rx: Mutex::new(Some(lost_rx)),
            accepting: AtomicBool::new(true),
            stop: Notify::new(),
            per_source: Mutex::new(HashMap::new()),
            handshakes: AtomicUsize::new(0),
        });
        let t = Transports { inner };
        for (i, sock) in t.inner.udp.iter().enumerate() {
            tokio::spawn(udp_loop(t.clone(), sock.clone(), i as u64));
        }
        for (l, spec) in tcp {
            tokio::spawn(accept_loop(t.clone(), l, spec));
        }
        Ok((t, bound))
    }

    /// Sends `bytes` to `peer` without waiting: a UDP datagram from the local
    /// socket the peer used, or a write queued on its connection.
    pub fn send(&self, peer: &Peer, bytes: Bytes) -> Result<(), SendError> {
        let c = &self.inner.counters;
        let r = match peer.transport {
            Transport::Udp => {
                let idx = peer.conn.unwrap_or(0) as usize;
                match self.inner.udp.get(idx).or_else(|| self.inner.udp.first()) {
                    Some(sock) => match sock.try_send_to(&bytes, peer.addr) {
                        Ok(_) => Ok(()),
                        Err(e) => {
                            // The error may be the socket's pending one: an
                            // earlier ICMP error, maybe for another
                            // destination, which the kernel returns instead of
                            // sending. What is queued says whose; reading it
                            // clears the pending error, so the datagram goes
                            // out on a second try. Nothing queued: the error
                            // is this send's own.
                            let queued = crate::icmp::drain(sock);
                            let pending = !queued.is_empty();
                            for (addr, err) in queued {
                                self.report_unreachable(addr, &err);
                            }
                            if pending {
                                sock.try_send_to(&bytes, peer.addr)
                                    .map(|_| ())
                                    .map_err(|e| SendError::Socket(e.to_string()))
                            } else {
                                if crate::icmp::is_unreachable(&e) {
                                    self.report_unreachable(peer.addr, &e);
                                }
                                Err(SendError::Socket(e.to_string()))
                            }
                        }
                    },
                    None => Err(SendError::Socket("no UDP socket".into())),
                }
            }
            Transport::Tcp | Transport::Tls => {
                let conns = lock(&self.inner.conns);
                match peer.conn.and_then(|id| conns.get(&id)) {
                    Some(conn) => conn
                        .tx
                        .try_send(WriteCmd::Data(bytes))
                        .map_err(|e| match e {
                            mpsc::error::TrySendError::Full(_) => SendError::QueueFull,
                            mpsc::error::TrySendError::Closed(_) => SendError::NoConnection,
                        }),
                    None => Err(SendError::NoConnection),
                }
            }
        };
        match &r {
            Ok(()) => c.sent.fetch_add(1, Ordering::Relaxed),
            Err(_) => c.send_errors.fetch_add(1, Ordering::Relaxed),
        };
        r
    }

    /// The UDP destinations found unreachable from now on (ICMP errors for
    /// datagrams sent to them, sends that failed so). Only the first caller
    /// gets the receiver; reports nobody reads are dropped once 1,024 wait
    /// (and counted in [`Stats::unreachable`] all the same).
    pub fn unreachable(&self) -> Option<mpsc::Receiver<Unreachable>> {
        lock(&self.inner.unreachable_rx).take()
    }

    fn report_unreachable(&self, addr: SocketAddr, err: &io::Error) {
        self.inner
            .counters
            .unreachable
            .fetch_add(1, Ordering::Relaxed);
        tracing::debug!(%addr, %err, "UDP destination unreachable");
        let _ = self.inner.unreachable.try_send(Unreachable {
            addr,
            error: err.to_string(),
        });
    }

    /// The stream connections lost from now on ([`Lost`]: closed or reset
    /// by the peer, failed; not those we close). A loss is reported before
    /// the connection refuses sends: a [`SendError::NoConnection`] for a
    /// connection the peer broke comes after its report is queued. Only the
    /// first caller gets the receiver; reports nobody reads are dropped
    /// once 4,096 wait (and counted in [`Stats::lost`] all the same).
    pub fn lost(&self) -> Option<mpsc::Receiver<Lost>> {
        lock(&self.inner.lost_rx).take()
    }

    fn report_lost(&self, ending: &Ending, peer: Peer, outbound: bool, reason: LostReason) {
        if ending.decided.swap(true, Ordering::SeqCst) {
            return;
        }
        self.inner.counters.lost.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(addr = %peer.addr, transport = %peer.transport, %reason, "connection lost");
        let _ = self.inner.lost.try_send(Lost {
            peer,
            outbound,
            reason,
        });
    }

    /// Opens (or reuses) an outbound stream connection to `addr`. For TLS,
    /// `tls` gives the profile (its default identity is the client
    /// certificate) and the name the server certificate must carry.
    pub async fn connect(
        &self,
        addr: SocketAddr,
        transport: Transport,
        tls: Option<(Arc<TlsContext>, String)>,
    ) -> io::Result<Peer> {
        self.connect_as(Peer::new(addr, transport), tls).await
    }

    /// [`Transports::connect`] for `to.addr` over `to.transport` as the
    /// identity `to.trunk`: a connection is reused only by the same
    /// identity, and every message received on it reports that identity
    /// in its [`Inbound::peer`] (so answers arriving on a trunk's
    /// connection are known to be that trunk's).
    pub async fn connect_as(
        &self,
        to: Peer,
        tls: Option<(Arc<TlsContext>, String)>,
    ) -> io::Result<Peer> {
        let (addr, transport) = (to.addr, to.transport);
        let identity = tls
            .as_ref()
            .map(|(ctx, name)| format!("{:p}/{name}", Arc::as_ptr(ctx)))
            .unwrap_or_default();
        let key = (addr, transport, identity, to.trunk);
        if let Some(id) = lock(&self.inner.outbound).get(&key).copied() {
            if let Some(c) = lock(&self.inner.conns).get(&id) {
                if !c.tx.is_closed() {
                    return Ok(c.peer);
                }
            }
        }
        let tcp = tokio::time::timeout(
            self.inner.limits.handshake_timeout,
            TcpStream::connect(addr),
        )
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
        tcp.set_nodelay(true).ok();
        let local = tcp.local_addr()?;
        let peer = match transport {
            Transport::Tcp => self.register(tcp, to, local, true, None),
            Transport::Tls => {
                let (ctx, name) = tls.ok_or_else(|| {
                    io::Error::new(io::ErrorKind::InvalidInput, "TLS without profile")
                })?;
                let cfg = ctx.client().ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "TLS profile has no CA bundle for outbound connections",
                    )
                })?;
                let server_name = ServerName::try_from(name.clone()).map_err(|e| {
                    io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("bad peer name {name:?}: {e}"),
                    )
                })?;
                let connector = tokio_rustls::TlsConnector::from(cfg);
                let s = tokio::time::timeout(
                    self.inner.limits.handshake_timeout,
                    connector.connect(server_name, tcp),
                )
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))?
                .inspect_err(|_| {
                    self.inner
                        .counters
                        .tls_failures
                        .fetch_add(1, Ordering::Relaxed);
                })?;
                let names = leaf_names(s.get_ref().1.peer_certificates());
                self.register(s, to, local, true, names)
            }
            Transport::Udp => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "UDP needs no connection",
                ))
            }
        };
        let id = peer.conn.unwrap_or_default();
        lock(&self.inner.outbound).insert(key, id);
        Ok(peer)
    }

    /// Starts the reader and writer of a stream connection to `to` (its
    /// address, transport and, outbound, identity).
    fn register<S>(
        &self,
        stream: S,
        to: Peer,
        local: SocketAddr,
        outbound: bool,
        names: Option<Arc<[String]>>,
    ) -> Peer
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let transport = to.transport;
        let peer = to.with_conn(id);
        // Writes waiting on one connection. A trunk carries thousands of
        // calls on one TLS connection: a burst of setups must not overflow
        // it (an overflow is a send error the transaction layer sees).
        let (tx, rx) = mpsc::channel(8192);
        let ending = Arc::new(Ending::default());
        lock(&self.inner.conns).insert(
            id,
            Conn {
                tx: tx.clone(),
                peer,
                tls: transport == Transport::Tls,
                names,
                ending: ending.clone(),
            },
        );
        tokio::spawn(connection(
            self.clone(),
            stream,
            Link {
                peer,
                local,
                outbound,
                ending,
            },
            tx,
            rx,
        ));
        peer
    }

    /// The DNS names in the TLS certificate of the peer of connection `conn`
    /// (what classifies a Microsoft proxy apart from any other TLS client).
    pub fn peer_names(&self, conn: u64) -> Option<Arc<[String]>> {
        lock(&self.inner.conns)
            .get(&conn)
            .and_then(|c| c.names.clone())
    }

    /// Stops accepting new stream connections (drain); UDP keeps receiving.
    pub fn stop_accepting(&self) {
        self.inner.accepting.store(false, Ordering::Relaxed);
        self.inner.stop.notify_waiters();
    }

    /// Closes every TLS connection gracefully (close_notify after queued
    /// writes): after a certificate reload, peers reconnect and see the new one.
    pub fn close_tls_connections(&self) -> usize {
        let conns = lock(&self.inner.conns);
        let mut n = 0;
        for c in conns.values().filter(|c| c.tls) {
            if c.close() {
                n += 1;
            }
        }
        n
    }

    /// Closes one stream connection gracefully (close_notify after queued
    /// writes); false when it is not open.
    pub fn close_connection(&self, conn: u64) -> bool {
        lock(&self.inner.conns).get(&conn).is_some_and(Conn::close)
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        let c = &self.inner.counters;
        Stats {
            udp_in: c.udp_in.load(Ordering::Relaxed),
            stream_in: c.stream_in.load(Ordering::Relaxed),
            sent: c.sent.load(Ordering::Relaxed),
            send_errors: c.send_errors.load(Ordering::Relaxed),
            accepted: c.accepted.load(Ordering::Relaxed),
            refused: c.refused.load(Ordering::Relaxed),
            refused_per_source: c.refused_per_source.load(Ordering::Relaxed),
            refused_handshakes: c.refused_handshakes.load(Ordering::Relaxed),
            tls_failures: c.tls_failures.load(Ordering::Relaxed),
            framing_errors: c.framing_errors.load(Ordering::Relaxed),
            timeouts: c.timeouts.load(Ordering::Relaxed),
            pings: c.pings.load(Ordering::Relaxed),
            stun: c.stun.load(Ordering::Relaxed),
            unreachable: c.unreachable.load(Ordering::Relaxed),
            lost: c.lost.load(Ordering::Relaxed),
            open_connections: lock(&self.inner.conns).len() as u64,
        }
    }
}

fn udp_socket(addr: SocketAddr) -> io::Result<UdpSocket> {
    let domain = if addr.is_ipv4() {
        socket2::Domain::IPV4
    } else {
        socket2::Domain::IPV6
    };
    let s = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    // Bursts of signalling (a failover moves many calls at once) must not be dropped by the kernel.
    s.set_recv_buffer_size(4 << 20).ok();
    s.set_send_buffer_size(4 << 20).ok();
    s.set_reuse_address(true)?;
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    // ICMP errors for what we send from it, with the destination (see icmp.rs).
    if let Err(e) = crate::icmp::enable(&s, addr.is_ipv6()) {
        tracing::debug!(%addr, %e, "IP_RECVERR not available: UDP peers fail by timeout only");
    }
    UdpSocket::from_std(s.into())
}

async fn udp_loop(t: Transports, sock: Arc<UdpSocket>, index: u64) {
    let local = sock
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    let mut buf = vec![0u8; 65_536];
    loop {
        let (n, from) = match sock.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(e) => {
                // ICMP errors surface here (the socket's pending error); they
                // concern one destination, which the error queue names.
                tracing::debug!(%e, "UDP receive error");
                for (addr, err) in crate::icmp::drain(&sock) {
                    t.report_unreachable(addr, &err);
                }
                continue;
            }
        };
        let data = &buf[..n];
        // Keepalives over UDP (CRLF or CRLFCRLF) carry no message.
        if data.iter().all(|&b| b == b'\r' || b == b'\n') {
            continue;
        }
        // STUN keepalives of phones behind NAT (RFC 5626 §8.2): answered
        // here, never a SIP message.
        if crate::stun::is_stun(data) {
            t.inner.counters.stun.fetch_add(1, Ordering::Relaxed);
            if let Some(r) = crate::stun::binding_response(data, from) {
                let _ = sock.send_to(&r, from).await;
            }
            continue;
        }
        t.inner.counters.udp_in.fetch_add(1, Ordering::Relaxed);
        let msg = Inbound {
            bytes: Bytes::copy_from_slice(data),
            peer: Peer::new(from, Transport::Udp).with_conn(index),
            local,
        };
        if t.inner.inbound.send(msg).await.is_err() {
            return;
        }
    }
}

async fn accept_loop(t: Transports, listener: TcpListener, spec: ListenerSpec) {
    let local = listener.local_addr().unwrap_or(spec.addr);
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            () = t.inner.stop.notified() => return,
        };
        if !t.inner.accepting.load(Ordering::Relaxed) {
            return;
        }
        let (tcp, addr) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(%e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if lock(&t.inner.conns).len() >= t.inner.limits.max_connections {
            t.inner.counters.refused.fetch_add(1, Ordering::Relaxed);
            drop(tcp);
            continue;
        }
        let tls = matches!((&spec.tls, spec.transport), (Some(_), Transport::Tls));
        if tls && t.inner.handshakes.load(Ordering::Relaxed) >= t.inner.limits.max_handshakes {
            t.inner
                .counters
                .refused_handshakes
                .fetch_add(1, Ordering::Relaxed);
            drop(tcp);
            continue;
        }
        if !t.take_source(addr.ip()) {
            t.inner
                .counters
                .refused_per_source
                .fetch_add(1, Ordering::Relaxed);
            drop(tcp);
            continue;
        }
        tcp.set_nodelay(true).ok();
        match (&spec.tls, spec.transport) {
            (Some(ctx), Transport::Tls) => {
                let t = t.clone();
                let ctx = ctx.clone();
                tokio::spawn(async move {
                    let acceptor = tokio_rustls::TlsAcceptor::from(ctx.server());
                    t.inner.handshakes.fetch_add(1, Ordering::Relaxed);
                    let hs = tokio::time::timeout(
                        t.inner.limits.handshake_timeout,
                        acceptor.accept(tcp),
                    )
                    .await;
                    t.inner.handshakes.fetch_sub(1, Ordering::Relaxed);
                    // A connection that does not become ours gives its
                    // source's slot back.
                    let release = Release(Some((t.clone(), addr.ip())));
                    let stream = match hs {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            t.inner
                                .counters
                                .tls_failures
                                .fetch_add(1, Ordering::Relaxed);
                            tracing::info!(%addr, %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            t.inner.counters.timeouts.fetch_add(1, Ordering::Relaxed);
                            t.inner
                                .counters
                                .tls_failures
                                .fetch_add(1, Ordering::Relaxed);
                            return;
                        }
                    };
                    let profile = ctx.profile();
                    let names = &profile.peer_names;
                    if !names.is_empty() {
                        let ok = stream
                            .get_ref()
                            .1
                            .peer_certificates()
                            .and_then(|c| c.first())
                            .is_some_and(|leaf| cert_matches_any(leaf, names));
                        if !ok {
                            t.inner
                                .counters
                                .tls_failures
                                .fetch_add(1, Ordering::Relaxed);
                            tracing::info!(%addr, "TLS client certificate does not carry an expected name");
                            return;
                        }
                    }
                    t.inner.counters.accepted.fetch_add(1, Ordering::Relaxed);
                    let names = leaf_names(stream.get_ref().1.peer_certificates());
                    release.keep();
                    t.register(stream, Peer::new(addr, Transport::Tls), local, false, names);
                });
            }
            _ => {
                t.inner.counters.accepted.fetch_add(1, Ordering::Relaxed);
                t.register(tcp, Peer::new(addr, Transport::Tcp), local, false, None);
            }
        }
    }
}

/// Gives a source's connection slot back when dropped, unless kept.
struct Release(Option<(Transports, std::net::IpAddr)>);

impl Release {
    /// The connection became ours: its task gives the slot back.
    fn keep(mut self) {
        self.0 = None;
    }
}

impl Drop for Release {
    fn drop(&mut self) {
        if let Some((t, ip)) = self.0.take() {
            t.give_source(ip);
        }
    }
}

impl Transports {
    /// Takes one of `ip`'s inbound connection slots; false when it has none left.
    fn take_source(&self, ip: std::net::IpAddr) -> bool {
        let mut m = lock(&self.inner.per_source);
        let n = m.entry(ip.to_canonical()).or_insert(0);
        if *n >= self.inner.limits.max_connections_per_source {
            return false;
        }
        *n += 1;
        true
    }

    /// Gives one of `ip`'s slots back.
    fn give_source(&self, ip: std::net::IpAddr) {
        let mut m = lock(&self.inner.per_source);
        let ip = ip.to_canonical();
        if let Some(n) = m.get_mut(&ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                m.remove(&ip);
            }
        }
    }
}

fn leaf_names(certs: Option<&[rustls_pki_types::CertificateDer<'_>]>) -> Option<Arc<[String]>> {
    certs
        .and_then(|c| c.first())
        .map(|leaf| crate::tls::cert_dns_names(leaf).into())
}

/// What a connection task knows of its connection.
struct Link {
    peer: Peer,
    local: SocketAddr,
    outbound: bool,
    ending: Arc<Ending>,
}

/// One stream connection: a reader that frames messages and a writer fed by
/// a queue. Closed on EOF, error, framing error, idleness or a slow message;
/// all but idleness and our own close are reported as [`Lost`] — before the
/// queue stops taking writes and before the connection leaves the table.
async fn connection<S>(
    t: Transports,
    stream: S,
    link: Link,
    tx: mpsc::Sender<WriteCmd>,
    mut rx: mpsc::Receiver<WriteCmd>,
) where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let Link {
        peer,
        local,
        outbound,
        ending,
    } = link;
    let (mut reader, mut writer) = tokio::io::split(stream);
    let limits = t.inner.limits;
    let writer_task = {
        let (t, ending) = (t.clone(), ending.clone());
        tokio::spawn(async move {
            while let Some(cmd) = rx.recv().await {
                match cmd {
                    WriteCmd::Data(b) => {
                        if let Err(e) = writer.write_all(&b).await {
                            // Reported while `rx` still exists: a send
                            // refused from now on finds the report queued.
                            ending.write_failed.store(true, Ordering::SeqCst);
                            t.report_lost(&ending, peer, outbound, LostReason::of(&e));
                            break;
                        }
                    }
                    WriteCmd::Close => break,
                }
            }
            // TLS: sends close_notify; TCP: FIN.
            let _ = writer.shutdown().await;
        })
    };
    let mut framer = StreamFramer::new(limits.max_message_size);
    let mut buf = vec![0u8; 16 * 1024];
    let mut partial_since: Option<tokio::time::Instant> = None;
    let mut writer_open = true;
    let mut lost: Option<LostReason> = None;
    'read: loop {
        let wait = match partial_since {
            Some(since) => limits.assembly_timeout.saturating_sub(since.elapsed()),
            None if outbound => limits.keepalive_interval.min(limits.idle_timeout),
            None => limits.idle_timeout,
        };
        let read = tokio::select! {
            r = tokio::time::timeout(wait, reader.read(&mut buf)) => Some(r),
            () = tx.closed(), if writer_open => None,
        };
        let Some(read) = read else {
            // The writer is gone: on an error (reported), stop; after our
            // own close, read on until the peer closes too.
            writer_open = false;
            if ending.write_failed.load(Ordering::SeqCst) {
                break;
            }
            continue;
        };
        let n = match read {
            Ok(Ok(0)) => {
                lost = Some(LostReason::Closed);
                break;
            }
            Ok(Err(e)) => {
                lost = Some(LostReason::of(&e));
                break;
            }
            Ok(Ok(n)) => n,
            Err(_) if outbound && partial_since.is_none() => {
                // Idle outbound connection: RFC 5626 ping; a dead peer fails the write.
                framer.ping_sent();
                if tx
                    .send(WriteCmd::Data(Bytes::from_static(b"\r\n\r\n")))
                    .await
                    .is_err()
                {
                    break;
                }
                continue;
            }
            Err(_) => {
                t.inner.counters.timeouts.fetch_add(1, Ordering::Relaxed);
                if partial_since.is_some() {
                    lost = Some(LostReason::Stalled);
                }
                break;
            }
        };
        framer.push(&buf[..n]);
        loop {
            match framer.next_frame() {
                Ok(Some(Frame::Message(bytes))) => {
                    t.inner.counters.stream_in.fetch_add(1, Ordering::Relaxed);
                    if t.inner
                        .inbound
                        .send(Inbound { bytes, peer, local })
                        .await
                        .is_err()
                    {
                        break 'read;
                    }
                }
                Ok(Some(Frame::Ping)) => {
                    t.inner.counters.pings.fetch_add(1, Ordering::Relaxed);
                    let _ = tx.try_send(WriteCmd::Data(Bytes::from_static(b"\r\n")));
                }
                Ok(Some(Frame::Pong)) => {}
                Ok(None) => break,
                Err(e) => {
                    t.inner
                        .counters
                        .framing_errors
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::info!(addr = %peer.addr, kind = ?e.kind, "stream framing error; closing");
                    if let FramingAction::RespondAndClose { status, reason } = e.action {
                        let is_request = sip::peek(&e.head).kind == Some(sip::Kind::Request);
                        if let Some(resp) = sip::response_from_raw(
                            &e.head,
                            status,
                            reason,
                            None,
                            "sbc-framing",
                            None,
                        )
                        .filter(|_| is_request)
                        {
                            let _ = tx.try_send(WriteCmd::Data(resp));
                        }
                    }
                    lost = Some(LostReason::Framing);
                    break 'read;
                }
            }
        }
        partial_since = if framer.buffered() > 0 {
            partial_since.or_else(|| Some(tokio::time::Instant::now()))
        } else {
            None
        };
    }
    if let Some(reason) = lost {
        t.report_lost(&ending, peer, outbound, reason);
    }
    let _ = tx.try_send(WriteCmd::Close);
    drop(tx);
    if let Some(id) = peer.conn {
        lock(&t.inner.conns).remove(&id);
    }
    if !outbound {
        t.give_source(peer.addr.ip());
    }
    let _ = writer_task.await;
}
