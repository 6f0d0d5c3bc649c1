//! The relay: worker threads on epoll (mio), each owning the sockets and the
//! forwarding state of the sessions assigned to it. The control side (the ng
//! server, later the B2BUA) installs, updates and removes sessions through
//! commands; the fast path only applies what is installed.
//!
//! Per packet: read (a batch per `recvmmsg`, see `sys`) into the worker's
//! reused buffers → the session's leg by socket token → latch or check the
//! source → unprotect in place if the leg is SRTP → protect in place if the
//! other leg is SRTP → send from the other leg's socket (one `sendmmsg` per
//! outgoing socket and batch). No allocation, no lock shared between
//! workers.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use media::control::MediaOp;
use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token, Waker};

mod forward;

use self::forward::{forward, set_payload, Arrival, Payload};
use crate::crypto::{Crypto, CryptoError, CryptoSpec};
use crate::pool::PortPool;
use crate::queue::{Cmd, NewSession, Queue, Refused};
use crate::stats::{LegStats, Published, RelayStats, StreamState, Tally, WorkerLoad};
use crate::sys::uring::{Completion, Uring, PAYLOAD_OFFSET};
use crate::sys::{Batch, Outgoing};

pub use crate::config::{Interface, Io, RelayConfig};

mod tone;
pub use media::control::{LegPorts, LegSpec, SessionInfo, Side};

/// Events from the workers.
#[derive(Debug, Clone, PartialEq)]
pub enum RelayEvent {
    /// No packet in either direction for the configured time.
    Inactive {
        /// Session id.
        id: u64,
    },
    /// A session removed with [`Relay::apply`] (`MediaOp::Delete`) is gone:
    /// its sockets are closed, its ports free, these are its final counts.
    Removed {
        /// Session id.
        id: u64,
        /// Final statistics of legs A and B.
        stats: [LegStats; 2],
    },
    /// An RFC 4733 telephone-event ended (its first packet with the E bit;
    /// the retransmitted end packets are not reported again).
    Dtmf {
        /// Session id.
        id: u64,
        /// The leg it arrived on (the party that sent it).
        side: Side,
        /// The event (0–9, 10 `*`, 11 `#`, 12–15 A–D, 16 flash).
        event: u8,
        /// Its duration, in timestamp units.
        duration: u16,
        /// The clock rate of the party's telephone-event format.
        clock_rate: u32,
    },
}

/// Why a control request failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum RelayError {
    /// No session with that id.
    NoSession,
    /// No such interface.
    NoInterface(usize),
    /// Port allocation or socket error.
    Io(io::Error),
    /// Bad SRTP parameters.
    Crypto(CryptoError),
    /// A worker stopped.
    WorkerGone,
    /// The worker lags: this many session set-ups wait for it already
    /// (`RelayConfig::max_backlog`).
    Backlog(usize),
}

impl std::fmt::Display for RelayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RelayError::NoSession => f.write_str("no such session"),
            RelayError::NoInterface(i) => write!(f, "no media interface #{i}"),
            RelayError::Io(e) => write!(f, "{e}"),
            RelayError::Crypto(e) => write!(f, "SRTP: {e}"),
            RelayError::WorkerGone => f.write_str("relay worker stopped"),
            RelayError::Backlog(n) => write!(f, "relay busy: {n} session set-ups wait"),
        }
    }
}

impl std::error::Error for RelayError {}

const WAKER: Token = Token(usize::MAX);

/// Handle to the relay; cheap to share between control tasks.
#[derive(Debug)]
pub struct Relay {
    cfg: RelayConfig,
    workers: Vec<WorkerHandle>,
    pool: Mutex<PortPool>,
    next_id: AtomicU64,
    /// Which worker and which local ports each session has.
    sessions: Mutex<HashMap<u64, (usize, SessionInfo)>>,
    /// Sessions deleted with [`Relay::apply`] whose worker has not yet
    /// reported them closed (their ports stay taken until it has).
    removing: Mutex<HashMap<u64, SessionInfo>>,
    /// Sessions per worker, and how many one worker can hold (io_uring:
    /// its socket table / 4; epoll: no limit of its own).
    per_worker: Mutex<Vec<usize>>,
    worker_capacity: usize,
    events: Mutex<mpsc::Receiver<RelayEvent>>,
    /// Creates refused: the worker's backlog full; out of ports, descriptors
    /// or socket-table room.
    refused_backlog: AtomicU64,
    refused_no_ports: AtomicU64,
}

struct WorkerHandle {
    queue: Arc<Queue>,
    waker: Arc<Waker>,
    /// What the worker relayed, as it last published it.
    load: Arc<Published>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for WorkerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WorkerHandle")
    }
}

impl WorkerHandle {
    fn send(&self, cmd: Cmd) -> Result<(), RelayError> {
        match self.queue.push(cmd) {
            Ok(true) => {
                // Queued either way: a worker not woken takes it at its
                // next tick (500 ms at most).
                if let Err(e) = self.waker.wake() {
                    tracing::warn!(%e, "relay worker not woken");
                }
                Ok(())
            }
            Ok(false) => Ok(()),
            Err(Refused::Backlog(n)) => Err(RelayError::Backlog(n)),
            Err(Refused::Closed) => Err(RelayError::WorkerGone),
        }
    }
}

impl Relay {
    /// Starts the worker threads.
    pub fn start(cfg: RelayConfig) -> io::Result<Relay> {
        let n = if cfg.workers == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            cfg.workers
        };
        let (ev_tx, ev_rx) = mpsc::channel();
        let mut workers = Vec::with_capacity(n);
        // Each io_uring worker's table of registered sockets may be as large
        // as the descriptor limit (the kernel's cap per ring).
        let files = if cfg.io == Io::Uring {
            crate::sys::nofile_limit().clamp(64, 1 << 20) as u32
        } else {
            0
        };
        for i in 0..n {
            let poll = Poll::new()?;
            let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
            let queue = Arc::new(Queue::new(cfg.max_backlog));
            let mut worker = Worker::new(
                poll,
                queue.clone(),
                ev_tx.clone(),
                cfg.inactivity,
                cfg.clock_rate,
            );
            worker.uring = cfg.io == Io::Uring;
            worker.files = files;
            let load = worker.published.clone();
            let closing = queue.clone();
            let thread = std::thread::Builder::new()
                .name(format!("relay-{i}"))
                .spawn(move || {
                    // However the worker ends, its queue refuses from then on.
                    let _close = closing.close_on_drop();
                    worker.run()
                })?;
            workers.push(WorkerHandle {
                queue,
                waker,
                load,
                thread: Some(thread),
            });
        }
        Ok(Relay {
            pool: Mutex::new(
                PortPool::new(cfg.port_min, cfg.port_max)
                    .with_reserve(cfg.emergency_reserve_percent),
            ),
            cfg,
            workers,
            next_id: AtomicU64::new(1),
            sessions: Mutex::new(HashMap::new()),
            removing: Mutex::new(HashMap::new()),
            per_worker: Mutex::new(vec![0; n]),
            worker_capacity: if files > 0 {
                files as usize / 4
            } else {
                usize::MAX
            },
            events: Mutex::new(ev_rx),
            refused_backlog: AtomicU64::new(0),
            refused_no_ports: AtomicU64::new(0),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &RelayConfig {
        &self.cfg
    }

    /// Creates a session: binds a port pair for each leg on its interface
    /// and installs the forwarding entries in one worker. Refused at once,
    /// and counted ([`Relay::stats`]), when every worker with room in its
    /// socket table has `max_backlog` set-ups waiting
    /// ([`RelayError::Backlog`]), or when ports, descriptors or socket-table
    /// room run out.
    pub fn create(&self, a: LegSpec, b: LegSpec) -> Result<SessionInfo, RelayError> {
        self.create_session(a, b, false)
    }

    /// Creates a session for an emergency call: as [`Relay::create`], but
    /// it may take the ports kept for them
    /// ([`RelayConfig::emergency_reserve_percent`]).
    pub fn create_emergency(&self, a: LegSpec, b: LegSpec) -> Result<SessionInfo, RelayError> {
        self.create_session(a, b, true)
    }

    fn create_session(
        &self,
        a: LegSpec,
        b: LegSpec,
        priority: bool,
    ) -> Result<SessionInfo, RelayError> {
        let ifa = self
            .cfg
            .interfaces
            .get(a.interface)
            .ok_or(RelayError::NoInterface(a.interface))?
            .clone();
        let ifb = self
            .cfg
            .interfaces
            .get(b.interface)
            .ok_or(RelayError::NoInterface(b.interface))?
            .clone();
        let ca = Crypto::new(&a.crypto).map_err(RelayError::Crypto)?;
        let cb = Crypto::new(&b.crypto).map_err(RelayError::Crypto)?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        // Round robin, skipping a worker whose socket table is full or that
        // lags; chosen before any socket is bound, so that a refusal costs
        // nothing.
        let w = {
            let mut load = lock(&self.per_worker);
            let n = load.len();
            let order = (0..n).map(|k| (id as usize + k) % n);
            let roomy: Vec<usize> = order.filter(|&w| load[w] < self.worker_capacity).collect();
            let Some(&w) = roomy.iter().find(|&&w| !self.workers[w].queue.is_full()) else {
                drop(load);
                return Err(match roomy.first() {
                    Some(&w) => self.refused(RelayError::Backlog(self.workers[w].queue.backlog())),
                    None => self.refused(RelayError::Io(io::Error::other(
                        "every relay worker's socket table is full",
                    ))),
                });
            };
            load[w] += 1;
            w
        };
        let unload = |e: RelayError| {
            if let Some(n) = lock(&self.per_worker).get_mut(w) {
                *n = n.saturating_sub(1);
            }
            self.refused(e)
        };
        let (pa, pb) = {
            let mut pool = lock(&self.pool);
            let pa = match pool.allocate(ifa.local, priority) {
                Ok(p) => p,
                Err(e) => {
                    drop(pool);
                    return Err(unload(RelayError::Io(e)));
                }
            };
            let pb = match pool.allocate(ifb.local, priority) {
                Ok(p) => p,
                Err(e) => {
                    if let Ok(addr) = pa.rtp.local_addr() {
                        pool.release(addr.ip(), addr.port());
                    }
                    drop(pool);
                    return Err(unload(RelayError::Io(e)));
                }
            };
            (pa, pb)
        };
        let release = |pool: &Mutex<PortPool>, pa: &crate::pool::Pair, pb: &crate::pool::Pair| {
            let mut pool = lock(pool);
            for p in [pa, pb] {
                if let Ok(addr) = p.rtp.local_addr() {
                    pool.release(addr.ip(), addr.port());
                }
            }
        };
        let ports = |p: &crate::pool::Pair, adv: IpAddr| -> Result<LegPorts, RelayError> {
            Ok(LegPorts {
                rtp: p.rtp.local_addr().map_err(RelayError::Io)?,
                rtcp: p.rtcp.local_addr().map_err(RelayError::Io)?,
                advertised: adv,
            })
        };
        let info = match (ports(&pa, ifa.advertised), ports(&pb, ifb.advertised)) {
            (Ok(pa_ports), Ok(pb_ports)) => SessionInfo {
                id,
                a: pa_ports,
                b: pb_ports,
            },
            (Err(e), _) | (_, Err(e)) => {
                release(&self.pool, &pa, &pb);
                return Err(unload(e));
            }
        };
        // Released before the send: a refused set-up closes its sockets as
        // it is dropped.
        let ports_of = [info.a.rtp, info.b.rtp];
        if let Err(e) = self.workers[w].send(Cmd::Add(Box::new(NewSession {
            id,
            legs: [(pa, a, ca), (pb, b, cb)],
        }))) {
            let mut pool = lock(&self.pool);
            for addr in ports_of {
                pool.release(addr.ip(), addr.port());
            }
            drop(pool);
            return Err(unload(e));
        }
        lock(&self.sessions).insert(id, (w, info));
        Ok(info)
    }

    /// Counts a refused create (a full backlog; no ports, descriptors or
    /// socket-table room) and hands its error back.
    fn refused(&self, e: RelayError) -> RelayError {
        match &e {
            RelayError::Backlog(_) => {
                self.refused_backlog.fetch_add(1, Ordering::Relaxed);
            }
            RelayError::Io(_) => {
                self.refused_no_ports.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
        e
    }

    /// Sessions, set-ups waiting for the workers, creates refused, and
    /// what the workers relayed (as of their last loop round).
    pub fn stats(&self) -> RelayStats {
        let mut s = RelayStats {
            sessions: lock(&self.sessions).len(),
            backlog: self.workers.iter().map(|w| w.queue.backlog()).sum(),
            refused_backlog: self.refused_backlog.load(Ordering::Relaxed),
            refused_no_ports: self.refused_no_ports.load(Ordering::Relaxed),
            ..RelayStats::default()
        };
        for w in &self.workers {
            w.load.add_to(&mut s);
        }
        s
    }

    /// Each worker's sessions and packets relayed, in worker order.
    pub fn workers(&self) -> Vec<WorkerLoad> {
        self.workers.iter().map(|w| w.load.load()).collect()
    }

    fn worker_of(&self, id: u64) -> Result<usize, RelayError> {
        lock(&self.sessions)
            .get(&id)
            .map(|(w, _)| *w)
            .ok_or(RelayError::NoSession)
    }

    /// The local ports of a session.
    pub fn info(&self, id: u64) -> Option<SessionInfo> {
        lock(&self.sessions).get(&id).map(|(_, i)| *i)
    }

    /// Updates a leg: its remote addresses (a re-offer or the answer) and/or
    /// its SRTP keys. New keys start fresh contexts (ROC 0), as a re-key must.
    pub fn update(
        &self,
        id: u64,
        side: Side,
        remote_rtp: Option<SocketAddr>,
        remote_rtcp: Option<SocketAddr>,
        crypto: Option<CryptoSpec>,
    ) -> Result<(), RelayError> {
        let w = self.worker_of(id)?;
        let (reply, rx) = mpsc::channel();
        self.workers[w].send(Cmd::Update {
            id,
            side,
            remote_rtp,
            remote_rtcp,
            crypto,
            rtcp_mux: None,
            reply: Some(reply),
        })?;
        rx.recv().map_err(|_| RelayError::WorkerGone)?
    }

    /// Applies a change without waiting for the worker: the SIP loop calls
    /// this and goes on. An update of an unknown session is ignored; a
    /// delete's final statistics arrive as [`RelayEvent::Removed`] from
    /// [`Relay::poll_event`], which also frees its ports.
    pub fn apply(&self, op: MediaOp) -> Result<(), RelayError> {
        match op {
            MediaOp::Update {
                id,
                side,
                remote_rtp,
                remote_rtcp,
                crypto,
                rtcp_mux,
            } => {
                let w = self.worker_of(id)?;
                self.workers[w].send(Cmd::Update {
                    id,
                    side,
                    remote_rtp,
                    remote_rtcp,
                    crypto,
                    rtcp_mux,
                    reply: None,
                })
            }
            MediaOp::Tone { id, side, tone } => {
                let w = self.worker_of(id)?;
                let tone = tone.map(Box::new);
                self.workers[w].send(Cmd::Tone { id, side, tone })
            }
            MediaOp::Payload { id, side, spec } => {
                let w = self.worker_of(id)?;
                self.workers[w].send(Cmd::Payload {
                    id,
                    side,
                    spec: Box::new(spec),
                })
            }
            MediaOp::Delete { id } => {
                let (w, info) = self.forget(id)?;
                lock(&self.removing).insert(id, info);
                self.workers[w].send(Cmd::Remove { id, reply: None })
            }
        }
    }

    /// Statistics of both legs.
    pub fn query(&self, id: u64) -> Result<[LegStats; 2], RelayError> {
        let w = self.worker_of(id)?;
        let (reply, rx) = mpsc::channel();
        self.workers[w].send(Cmd::Query { id, reply })?;
        rx.recv()
            .map_err(|_| RelayError::WorkerGone)?
            .ok_or(RelayError::NoSession)
    }

    /// Removes a session, closes its sockets, returns its final statistics.
    pub fn delete(&self, id: u64) -> Result<[LegStats; 2], RelayError> {
        let (w, info) = self.forget(id)?;
        let (reply, rx) = mpsc::channel();
        self.workers[w].send(Cmd::Remove {
            id,
            reply: Some(reply),
        })?;
        let stats = rx
            .recv()
            .map_err(|_| RelayError::WorkerGone)?
            .ok_or(RelayError::NoSession)?;
        let mut pool = lock(&self.pool);
        pool.release(info.a.rtp.ip(), info.a.rtp.port());
        pool.release(info.b.rtp.ip(), info.b.rtp.port());
        Ok(stats)
    }

    /// Takes a session off the control side's books (its worker's share
    /// too): which worker has it, and its ports (still bound until the
    /// worker has removed it).
    fn forget(&self, id: u64) -> Result<(usize, SessionInfo), RelayError> {
        let (w, info) = lock(&self.sessions)
            .remove(&id)
            .ok_or(RelayError::NoSession)?;
        if let Some(n) = lock(&self.per_worker).get_mut(w) {
            *n = n.saturating_sub(1);
        }
        Ok((w, info))
    }

    /// Port pairs in use.
    pub fn ports_in_use(&self) -> usize {
        lock(&self.pool).in_use()
    }

    /// Session ids.
    pub fn sessions(&self) -> Vec<u64> {
        let mut v: Vec<u64> = lock(&self.sessions).keys().copied().collect();
        v.sort_unstable();
        v
    }

    /// The next event, if any (non-blocking).
    pub fn poll_event(&self) -> Option<RelayEvent> {
        let ev = lock(&self.events).try_recv().ok()?;
        if let RelayEvent::Removed { id, .. } = ev {
            // The worker closed the sockets: the ports may be bound again.
            if let Some(info) = lock(&self.removing).remove(&id) {
                let mut pool = lock(&self.pool);
                pool.release(info.a.rtp.ip(), info.a.rtp.port());
                pool.release(info.b.rtp.ip(), info.b.rtp.port());
            }
        }
        Some(ev)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        for w in &mut self.workers {
            let _ = w.send(Cmd::Stop);
            if let Some(t) = w.thread.take() {
                let _ = t.join();
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock would be a bug elsewhere; the data stays usable.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

// ----- the worker ------------------------------------------------------------

struct Slot {
    /// `None` once the io_uring worker has moved it into its ring's table
    /// of registered files (the slot index is its index there).
    socket: Option<UdpSocket>,
    /// Index of the session in the worker's slab.
    session: usize,
    side: Side,
    rtcp: bool,
}

struct Leg {
    rtp_slot: usize,
    rtcp_slot: usize,
    remote_rtp: Option<SocketAddr>,
    remote_rtcp: Option<SocketAddr>,
    latched_rtp: bool,
    latched_rtcp: bool,
    rtcp_mux: bool,
    strict: bool,
    crypto: Crypto,
    stats: LegStats,
    stream: StreamState,
    /// Payload types, payload-type map toward the party, raw streams,
    /// telephone-events (`forward`).
    payload: Payload,
}

struct Session {
    id: u64,
    legs: [Leg; 2],
    created: Instant,
    inactive_reported: bool,
}

impl Session {
    /// The leg a packet arrived on (`side`) and the other one.
    fn legs_for(&mut self, side: Side) -> (&mut Leg, &mut Leg) {
        let (first, second) = self.legs.split_at_mut(1);
        match side {
            Side::A => (&mut first[0], &mut second[0]),
            Side::B => (&mut second[0], &mut first[0]),
        }
    }
}

struct Worker {
    poll: Poll,
    queue: Arc<Queue>,
    /// The commands being applied (reused).
    batch: Vec<Cmd>,
    events: mpsc::Sender<RelayEvent>,
    slots: Vec<Option<Slot>>,
    free_slots: Vec<usize>,
    sessions: Sessions,
    inactivity: Duration,
    clock_rate: u32,
    epoch: Instant,
    /// io_uring mode: sockets are not registered with `poll` (only the
    /// waker is); their receives are armed on the ring.
    uring: bool,
    /// Generation of each slot (io_uring completions of a removed socket
    /// are recognised by it).
    gens: Vec<u32>,
    /// Slots whose multishot receive must be (re)armed.
    to_arm: Vec<usize>,
    /// Receives to cancel (user data of removed slots).
    to_cancel: Vec<u64>,
    /// Slots to empty in the ring's file table.
    to_unregister: Vec<usize>,
    /// Size of the io_uring worker's table of registered sockets.
    files: u32,
    /// What it relayed (plain integers on the packet path) and where it
    /// publishes that once per loop round.
    tally: Tally,
    published: Arc<Published>,
    /// Tones playing (local ringback), apart from the forwarding state.
    tones: tone::Tones,
}

/// Buffer size: the largest RTP packet we relay plus SRTP tag room.
const BUF: usize = 2048;
/// Tailroom kept for the SRTP tag (and MKI) when protecting in place.
const TAILROOM: usize = 32;
/// Datagrams per `recvmmsg`/`sendmmsg` (64 KiB of buffers per worker).
const BATCH: usize = 32;

impl Worker {
    fn new(
        poll: Poll,
        queue: Arc<Queue>,
        events: mpsc::Sender<RelayEvent>,
        inactivity: Duration,
        clock_rate: u32,
    ) -> Worker {
        Worker {
            poll,
            queue,
            batch: Vec::new(),
            events,
            slots: Vec::new(),
            free_slots: Vec::new(),
            sessions: Sessions::default(),
            inactivity,
            clock_rate,
            epoch: Instant::now(),
            uring: false,
            gens: Vec::new(),
            to_arm: Vec::new(),
            to_cancel: Vec::new(),
            to_unregister: Vec::new(),
            files: 0,
            tally: Tally::default(),
            published: Arc::default(),
            tones: tone::Tones::default(),
        }
    }

    fn add_slot(
        &mut self,
        socket: std::net::UdpSocket,
        session: usize,
        side: Side,
        rtcp: bool,
    ) -> io::Result<usize> {
        let mut socket = UdpSocket::from_std(socket);
        let idx = match self.free_slots.pop() {
            Some(i) => i,
            None => {
                self.slots.push(None);
                self.gens.push(0);
                self.slots.len() - 1
            }
        };
        if self.uring {
            self.to_arm.push(idx);
        } else {
            self.poll
                .registry()
                .register(&mut socket, Token(idx), Interest::READABLE)?;
        }
        self.slots[idx] = Some(Slot {
            socket: Some(socket),
            session,
            side,
            rtcp,
        });
        Ok(idx)
    }

    fn remove_slot(&mut self, idx: usize) {
        if let Some(mut slot) = self.slots.get_mut(idx).and_then(Option::take) {
            if self.uring {
                // The ring holds the socket until the cancel completes.
                self.to_cancel.push(ud(KIND_RECV, self.gens[idx], idx));
                self.to_unregister.push(idx);
                // 30 bits, as much as the user data carries (`ud`).
                self.gens[idx] = (self.gens[idx] + 1) & UD_TAG_MASK;
            } else if let Some(socket) = slot.socket.as_mut() {
                let _ = self.poll.registry().deregister(socket);
            }
            self.free_slots.push(idx);
        }
    }

    fn run(mut self) {
        if self.uring {
            match Uring::with_own(URING_BUFFERS, tone::RING_BUFFERS, BUF, self.files) {
                Ok(u) => return self.run_uring(u),
                Err(e) => {
                    tracing::warn!(%e, "io_uring unavailable, relay worker falls back to epoll");
                    self.uring = false;
                    for idx in std::mem::take(&mut self.to_arm) {
                        if let Some(socket) = self
                            .slots
                            .get_mut(idx)
                            .and_then(Option::as_mut)
                            .and_then(|s| s.socket.as_mut())
                        {
                            let _ = self.poll.registry().register(
                                socket,
                                Token(idx),
                                Interest::READABLE,
                            );
                        }
                    }
                }
            }
        }
        let mut events = Events::with_capacity(256);
        // Made here, on the worker's thread: it holds raw pointers (see sys).
        let mut io = Batch::new(BATCH, BUF, TAILROOM);
        let mut out = OutQueue::with_capacity(BATCH);
        let mut last_sweep = Instant::now();
        loop {
            // A timeout shorter than the sweep's only while a tone plays.
            let tick = Duration::from_millis(500);
            let wait = self.tones.timeout(tick).unwrap_or(tick);
            if let Err(e) = self.poll.poll(&mut events, Some(wait)) {
                if e.kind() != io::ErrorKind::Interrupted {
                    tracing::error!(%e, "relay worker poll failed");
                    return;
                }
            }
            for ev in &events {
                if ev.token() == WAKER {
                    continue;
                }
                self.drain_socket(ev.token().0, &mut io, &mut out);
            }
            if !self.commands() {
                return;
            }
            if !self.tones.is_empty() {
                self.play_tones(Instant::now(), None);
            }
            self.publish();
            let now = Instant::now();
            if now.duration_since(last_sweep) >= Duration::from_millis(500) {
                last_sweep = now;
                self.sweep(now);
            }
        }
    }

    /// Applies control commands, removals first (see `queue`); false when
    /// told to stop.
    fn commands(&mut self) -> bool {
        let mut batch = std::mem::take(&mut self.batch);
        self.queue.take(&mut batch);
        let mut go_on = true;
        for cmd in batch.drain(..) {
            match cmd {
                Cmd::Add(s) => self.add(*s),
                Cmd::Update {
                    id,
                    side,
                    remote_rtp,
                    remote_rtcp,
                    crypto,
                    rtcp_mux,
                    reply,
                } => {
                    let r = self.update(id, side, remote_rtp, remote_rtcp, crypto, rtcp_mux);
                    match reply {
                        Some(reply) => {
                            let _ = reply.send(r);
                        }
                        None => {
                            if let Err(e) = r {
                                tracing::debug!(session = id, %e, "relay update not applied");
                            }
                        }
                    }
                }
                Cmd::Payload { id, side, spec } => match self.sessions.get_mut(id) {
                    Some(s) => set_payload(&mut s.legs, side, *spec),
                    None => tracing::debug!(session = id, "relay payload change not applied"),
                },
                Cmd::Query { id, reply } => {
                    let now = Instant::now();
                    let s = self.sessions.get_mut(id).map(|s| {
                        [
                            s.legs[0].stream.snapshot(&s.legs[0].stats, now),
                            s.legs[1].stream.snapshot(&s.legs[1].stats, now),
                        ]
                    });
                    let _ = reply.send(s);
                }
                Cmd::Tone { id, side, tone } => self.tone(id, side, tone),
                Cmd::Remove { id, reply } => {
                    self.tones.remove_session(id);
                    let now = Instant::now();
                    let s = self.sessions.remove(id).map(|s| {
                        for leg in &s.legs {
                            self.remove_slot(leg.rtp_slot);
                            self.remove_slot(leg.rtcp_slot);
                        }
                        [
                            s.legs[0].stream.snapshot(&s.legs[0].stats, now),
                            s.legs[1].stream.snapshot(&s.legs[1].stats, now),
                        ]
                    });
                    self.removed(id, reply, s);
                }
                // Removed before it was installed: its sockets are closed
                // already, it saw no packet.
                Cmd::Dropped { id, reply } => {
                    self.removed(id, reply, Some([LegStats::default(); 2]));
                }
                Cmd::Stop => {
                    go_on = false;
                    break;
                }
            }
        }
        self.batch = batch;
        go_on
    }

    /// Tells whoever waits, or the event channel, that session `id` is gone.
    fn removed(
        &mut self,
        id: u64,
        reply: Option<mpsc::Sender<Option<[LegStats; 2]>>>,
        stats: Option<[LegStats; 2]>,
    ) {
        match (reply, stats) {
            (Some(reply), s) => {
                let _ = reply.send(s);
            }
            (None, Some(stats)) => {
                let _ = self.events.send(RelayEvent::Removed { id, stats });
            }
            (None, None) => {}
        }
    }

    fn add(&mut self, s: NewSession) {
        let NewSession {
            id,
            legs: [(pa, sa, ca), (pb, sb, cb)],
        } = s;
        // The slab index the session will get (its sockets' slots point at it).
        let index = self.sessions.next_index();
        let make = |w: &mut Worker,
                    pair: crate::pool::Pair,
                    spec: LegSpec,
                    crypto: Crypto,
                    side: Side|
         -> io::Result<Leg> {
            let rtp_slot = w.add_slot(pair.rtp, index, side, false)?;
            let rtcp_slot = w.add_slot(pair.rtcp, index, side, true)?;
            Ok(Leg {
                rtp_slot,
                rtcp_slot,
                remote_rtp: spec.remote_rtp,
                remote_rtcp: spec.remote_rtcp.or(spec
                    .remote_rtp
                    .map(|a| SocketAddr::new(a.ip(), a.port().wrapping_add(1)))),
                latched_rtp: false,
                latched_rtcp: false,
                rtcp_mux: spec.rtcp_mux,
                strict: spec.strict_source,
                crypto,
                stats: LegStats::default(),
                stream: StreamState::default(),
                payload: Payload::new(spec.payload),
            })
        };
        let a = make(self, pa, sa, ca, Side::A);
        let b = make(self, pb, sb, cb, Side::B);
        match (a, b) {
            (Ok(a), Ok(b)) => {
                let mut legs = [a, b];
                forward::derive_maps(&mut legs);
                self.sessions.insert(
                    id,
                    Session {
                        id,
                        legs,
                        created: Instant::now(),
                        inactive_reported: false,
                    },
                );
            }
            (a, b) => {
                tracing::error!(id, "cannot register relay sockets");
                for leg in [a, b].into_iter().flatten() {
                    self.remove_slot(leg.rtp_slot);
                    self.remove_slot(leg.rtcp_slot);
                }
            }
        }
    }

    fn update(
        &mut self,
        id: u64,
        side: Side,
        remote_rtp: Option<SocketAddr>,
        remote_rtcp: Option<SocketAddr>,
        crypto: Option<CryptoSpec>,
        rtcp_mux: Option<bool>,
    ) -> Result<(), RelayError> {
        let s = self.sessions.get_mut(id).ok_or(RelayError::NoSession)?;
        let leg = &mut s.legs[side.index()];
        if let Some(m) = rtcp_mux {
            leg.rtcp_mux = m;
        }
        if let Some(c) = crypto {
            leg.crypto.update(&c).map_err(RelayError::Crypto)?;
        }
        if let Some(r) = remote_rtp {
            if leg.remote_rtp != Some(r) {
                leg.remote_rtp = Some(r);
                leg.latched_rtp = false;
            }
            if remote_rtcp.is_none() && !leg.latched_rtcp {
                leg.remote_rtcp = Some(SocketAddr::new(r.ip(), r.port().wrapping_add(1)));
            }
        }
        if let Some(r) = remote_rtcp {
            leg.remote_rtcp = Some(r);
            leg.latched_rtcp = false;
        }
        Ok(())
    }

    /// Publishes what this worker relayed so far: once per loop round (a
    /// few relaxed stores), never per packet.
    fn publish(&mut self) {
        self.tally.publish(self.sessions.ids.len(), &self.published);
        for ev in self.tally.dtmf.drain(..) {
            let _ = self.events.send(ev);
        }
    }

    fn sweep(&mut self, now: Instant) {
        for s in self.sessions.slab.iter_mut().flatten() {
            let last = s
                .legs
                .iter()
                .filter_map(|l| l.stream.last_packet)
                .max()
                .unwrap_or(s.created);
            let idle = now.duration_since(last) >= self.inactivity;
            if idle && !s.inactive_reported {
                s.inactive_reported = true;
                let _ = self.events.send(RelayEvent::Inactive { id: s.id });
            } else if !idle {
                s.inactive_reported = false;
            }
        }
    }

    /// Reads every pending datagram of one socket (edge-triggered epoll), a
    /// batch per `recvmmsg`, relays each batch in place and sends it with
    /// one `sendmmsg` per outgoing socket before reading the next.
    fn drain_socket(&mut self, idx: usize, io: &mut Batch, out: &mut OutQueue) {
        let mut errors = 0;
        loop {
            let Some(slot) = self.slots.get(idx).and_then(Option::as_ref) else {
                return;
            };
            let (index, side, on_rtcp_port) = (slot.session, slot.side, slot.rtcp);
            let Some(socket) = slot.socket.as_ref() else {
                return;
            };
            let n = match io.recv(socket.as_raw_fd()) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                // ICMP port unreachable from an earlier send surfaces here
                // (and is consumed by this call); it concerns that peer only.
                // An error that arrives during a batch raises its own epoll
                // edge, so the socket comes back even after a short count.
                // Bounded: a socket that keeps failing waits for its next edge.
                Err(_) => {
                    errors += 1;
                    if errors > 8 {
                        return;
                    }
                    continue;
                }
            };
            let Some(s) = self.sessions.at(index) else {
                return;
            };
            let at = Arrival {
                id: s.id,
                side,
                on_rtcp_port,
                now: Instant::now(),
                epoch: self.epoch,
                clock_rate: self.clock_rate,
            };
            let (from, to) = s.legs_for(side);
            out.clear();
            for i in 0..n {
                let r = io.received(i);
                let Some(src) = r.src.filter(|_| !r.truncated) else {
                    from.stats.dropped += 1;
                    continue;
                };
                let fwd = forward(from, to, &at, src, io.buf_mut(i), r.len, &mut self.tally);
                if let Some((out_slot, len, dest)) = fwd {
                    out.push(out_slot, Outgoing { buf: i, len, dest });
                }
            }
            // Runs of packets for the same outgoing socket, one sendmmsg each
            // (a batch from one socket goes to one or two sockets: RTP, RTCP).
            let mut failed = 0;
            let mut start = 0;
            while start < out.len() {
                let slot_idx = out.slots[start];
                let end = out.slots[start..]
                    .iter()
                    .position(|&x| x != slot_idx)
                    .map_or(out.len(), |k| start + k);
                let socket = self
                    .slots
                    .get(slot_idx)
                    .and_then(Option::as_ref)
                    .and_then(|s| s.socket.as_ref());
                match socket {
                    // One packet (the usual case with paced calls): `sendto`,
                    // which skips the msghdr copy-in that `sendmmsg` costs.
                    Some(o) if end - start == 1 => {
                        let it = out.items[start];
                        if o.send_to(&io.buf_mut(it.buf)[..it.len], it.dest).is_err() {
                            failed += 1;
                        }
                    }
                    Some(o) => failed += io.send(o.as_raw_fd(), &out.items[start..end]).failed,
                    None => failed += end - start,
                }
                start = end;
            }
            if failed > 0 {
                if let Some(s) = self.sessions.at(index) {
                    s.legs[side.index()].stats.dropped += failed as u64;
                }
            }
            if n < io.capacity() {
                // A short count: the queue was empty; a later datagram is a
                // new edge (no extra call that would fail with EAGAIN).
                return;
            }
        }
    }
}

// ----- the io_uring loop ------------------------------------------------------

/// Provided buffers per worker ring (2 MiB of `BUF`-octet buffers; at
/// 150,000 packets/s a buffer is back in the ring within ≈ 100 µs).
const URING_BUFFERS: u16 = 1024;
/// User data: kind in the top 2 bits, then a 30-bit generation or a 16-bit
/// buffer id, then the slot index in the low 32 bits.
const KIND_TONE: u64 = 0;
const KIND_RECV: u64 = 1;
const KIND_SEND: u64 = 2;
const KIND_OTHER: u64 = 3;
const UD_WAKE: u64 = KIND_OTHER << 62;
const UD_CANCEL: u64 = (KIND_OTHER << 62) | 1;
const UD_TICK: u64 = (KIND_OTHER << 62) | 2;

/// The generation/tag bits of the user data.
const UD_TAG_MASK: u32 = 0x3fff_ffff;

fn ud(kind: u64, tag: u32, slot: usize) -> u64 {
    (kind << 62) | (u64::from(tag & UD_TAG_MASK) << 32) | (slot as u64 & 0xffff_ffff)
}

fn ud_kind(u: u64) -> u64 {
    u >> 62
}

fn ud_tag(u: u64) -> u32 {
    (u >> 32) as u32 & UD_TAG_MASK
}

fn ud_slot(u: u64) -> usize {
    (u & 0xffff_ffff) as usize
}

impl Worker {
    /// The worker loop on io_uring: arm what was added, cancel what was
    /// removed, wait for completions (at most 500 ms), relay every received
    /// datagram in its buffer and queue its send, apply commands, sweep.
    fn run_uring(mut self, mut u: Uring) {
        // The waker (an eventfd in `poll`) makes the epoll fd readable.
        let poll_fd = self.poll.as_raw_fd();
        if let Err(e) = u.arm_poll(poll_fd, UD_WAKE) {
            tracing::error!(%e, "relay worker cannot watch its waker");
            return;
        }
        // The sweep's clock: a multishot timeout, so that a wait arms no timer.
        let tick = Duration::from_millis(500);
        if let Err(e) = u.arm_tick(tick, UD_TICK) {
            tracing::error!(%e, "relay worker cannot arm its tick");
            return;
        }
        self.tones.set_ring_buffers(u.own_buffers());
        let mut events = Events::with_capacity(16);
        let mut done: Vec<Completion> = Vec::with_capacity(1024);
        let mut last_sweep = Instant::now();
        loop {
            for target in std::mem::take(&mut self.to_cancel) {
                let _ = u.cancel(target, UD_CANCEL);
            }
            for idx in std::mem::take(&mut self.to_unregister) {
                u.unregister(idx as u32);
            }
            // A slot may be queued twice (a re-arm and a reuse in one
            // round): one multishot receive per socket.
            let mut to_arm = std::mem::take(&mut self.to_arm);
            to_arm.sort_unstable();
            to_arm.dedup();
            for idx in to_arm {
                let Some(slot) = self.slots.get_mut(idx).and_then(Option::as_mut) else {
                    continue;
                };
                // First arming: the socket moves into the ring's file table
                // and its descriptor is closed.
                if let Some(socket) = slot.socket.take() {
                    if let Err(e) = u.register(idx as u32, socket.as_raw_fd()) {
                        tracing::error!(%e, slot = idx, "cannot register a relay socket");
                        slot.socket = Some(socket);
                        continue;
                    }
                }
                if let Err(e) = u.arm_recv(idx as u32, ud(KIND_RECV, self.gens[idx], idx)) {
                    tracing::error!(%e, "cannot arm a relay receive");
                }
            }
            // Tone packets due go out with this wait (a new session's
            // sockets are in the ring's table by now).
            if !self.tones.is_empty() {
                self.play_tones(Instant::now(), Some(&mut u));
            }
            done.clear();
            // A wait with a timeout only while a tone plays.
            let waited = match self.tones.timeout(tick) {
                None => u.wait_one(&mut done),
                Some(t) => u.wait(t, &mut done),
            };
            if let Err(e) = waited {
                tracing::error!(%e, "relay worker ring failed");
                return;
            }
            let now = Instant::now();
            for c in &done {
                match ud_kind(c.user_data) {
                    KIND_RECV => self.on_recv(&mut u, c, now),
                    KIND_SEND => self.on_sent(&mut u, c),
                    KIND_TONE => self.tones.sent(ud_tag(c.user_data) as u16),
                    _ if c.user_data == UD_TICK && !c.more() => {
                        let _ = u.arm_tick(tick, UD_TICK);
                    }
                    _ if c.user_data == UD_WAKE => {
                        // Empty the epoll ready list so the next wake is a new edge.
                        let _ = self.poll.poll(&mut events, Some(Duration::ZERO));
                        if !c.more() {
                            let _ = u.arm_poll(poll_fd, UD_WAKE);
                        }
                    }
                    _ => {}
                }
            }
            if !self.commands() {
                return;
            }
            self.publish();
            if now.duration_since(last_sweep) >= Duration::from_millis(500) {
                last_sweep = now;
                self.sweep(now);
            }
        }
    }

    fn on_recv(&mut self, u: &mut Uring, c: &Completion, now: Instant) {
        let idx = ud_slot(c.user_data);
        let live = self.slots.get(idx).and_then(Option::as_ref).is_some()
            && self.gens.get(idx) == Some(&ud_tag(c.user_data));
        let bid = c.buffer();
        if live && !c.more() && (c.result >= 0 || c.result == -libc::ENOBUFS) {
            // The multishot ended (out of buffers, a full completion queue):
            // arm it again. Other errors are not retried in a loop.
            self.to_arm.push(idx);
        }
        let Some(bid) = bid else {
            return;
        };
        if !live || c.result <= 0 {
            u.recycle(bid);
            return;
        }
        let Some(slot) = self.slots.get(idx).and_then(Option::as_ref) else {
            u.recycle(bid);
            return;
        };
        let (index, side, on_rtcp_port) = (slot.session, slot.side, slot.rtcp);
        let d = u.datagram(bid, c.result);
        let Some(s) = self.sessions.at(index) else {
            u.recycle(bid);
            return;
        };
        let id = s.id;
        let (from, to) = s.legs_for(side);
        let Some((src, len)) = d.and_then(|d| d.src.filter(|_| !d.truncated).map(|a| (a, d.len)))
        else {
            from.stats.dropped += 1;
            u.recycle(bid);
            return;
        };
        let at = Arrival {
            id,
            side,
            on_rtcp_port,
            now,
            epoch: self.epoch,
            clock_rate: self.clock_rate,
        };
        let fwd = forward(
            from,
            to,
            &at,
            src,
            &mut u.buffer(bid)[PAYLOAD_OFFSET..],
            len,
            &mut self.tally,
        );
        let Some((out_slot, out_len, dest)) = fwd else {
            u.recycle(bid);
            return;
        };
        // Only through a socket that is in the ring's table (one whose
        // registration failed still holds its descriptor and is not).
        let registered = self
            .slots
            .get(out_slot)
            .and_then(Option::as_ref)
            .is_some_and(|s| s.socket.is_none());
        if !registered {
            from.stats.dropped += 1;
            u.recycle(bid);
            return;
        }
        let tag = u32::from(bid);
        if u.send(
            out_slot as u32,
            bid,
            PAYLOAD_OFFSET,
            out_len,
            dest,
            ud(KIND_SEND, tag, out_slot),
        )
        .is_err()
        {
            from.stats.dropped += 1;
            u.recycle(bid);
        }
    }

    fn on_sent(&mut self, u: &mut Uring, c: &Completion) {
        u.recycle(ud_tag(c.user_data) as u16);
        if c.result < 0 {
            // Count the failure on the leg the packet came from.
            let out_slot = ud_slot(c.user_data);
            if let Some(slot) = self.slots.get(out_slot).and_then(Option::as_ref) {
                let (index, side) = (slot.session, slot.side);
                if let Some(s) = self.sessions.at(index) {
                    let from = match side {
                        Side::A => 1,
                        Side::B => 0,
                    };
                    s.legs[from].stats.dropped += 1;
                }
            }
        }
    }
}

/// The sessions of a worker: a slab that the sockets' slots index (no
/// hashing on the per-packet path), and the id → index map for commands.
#[derive(Default)]
struct Sessions {
    slab: Vec<Option<Session>>,
    free: Vec<usize>,
    ids: HashMap<u64, usize>,
}

impl Sessions {
    /// The index the next [`Sessions::insert`] will use.
    fn next_index(&self) -> usize {
        self.free.last().copied().unwrap_or(self.slab.len())
    }

    fn insert(&mut self, id: u64, s: Session) {
        let i = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slab.push(None);
                self.slab.len() - 1
            }
        };
        self.slab[i] = Some(s);
        self.ids.insert(id, i);
    }

    fn at(&mut self, i: usize) -> Option<&mut Session> {
        self.slab.get_mut(i).and_then(Option::as_mut)
    }

    fn get_mut(&mut self, id: u64) -> Option<&mut Session> {
        let i = *self.ids.get(&id)?;
        self.at(i)
    }

    fn remove(&mut self, id: u64) -> Option<Session> {
        let i = self.ids.remove(&id)?;
        let s = self.slab.get_mut(i).and_then(Option::take);
        if s.is_some() {
            self.free.push(i);
        }
        s
    }
}

/// Packets of one receive batch to send, with the worker slot of the
/// socket each goes out from. Allocated once per worker.
struct OutQueue {
    slots: Vec<usize>,
    items: Vec<Outgoing>,
}

impl OutQueue {
    fn with_capacity(n: usize) -> OutQueue {
        OutQueue {
            slots: Vec::with_capacity(n),
            items: Vec::with_capacity(n),
        }
    }

    fn clear(&mut self) {
        self.slots.clear();
        self.items.clear();
    }

    fn push(&mut self, slot: usize, item: Outgoing) {
        self.slots.push(slot);
        self.items.push(item);
    }

    fn len(&self) -> usize {
        self.items.len()
    }
}
