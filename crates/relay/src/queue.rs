//! The commands of one relay worker: what the control side asks, in two
//! lanes. Removals (which free sockets and ports) never wait behind
//! set-ups: the worker applies every removal queued before anything else,
//! and a session removed before its worker installed it is dropped
//! unopened (its sockets close at once). Set-ups waiting are bounded: a
//! create beyond the bound is refused at once ([`Refused`]) instead of
//! queuing four more sockets behind a worker that lags. Updates, tones, queries
//! and the stop keep their order with the set-ups and are never refused.

use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::mpsc;
use std::sync::{Mutex, MutexGuard};

use media::control::{LegSpec, PayloadSpec, Side, ToneSpec};

use crate::crypto::{Crypto, CryptoSpec};
use crate::engine::RelayError;
use crate::stats::LegStats;

/// A command for a worker.
pub(crate) enum Cmd {
    Add(Box<NewSession>),
    Update {
        id: u64,
        side: Side,
        remote_rtp: Option<SocketAddr>,
        remote_rtcp: Option<SocketAddr>,
        crypto: Option<CryptoSpec>,
        rtcp_mux: Option<bool>,
        /// `None`: nobody waits (failures are logged).
        reply: Option<mpsc::Sender<Result<(), RelayError>>>,
    },
    /// Start (`Some`) or stop a tone toward one leg's party.
    Tone {
        id: u64,
        side: Side,
        tone: Option<Box<ToneSpec>>,
    },
    /// What a leg's party now declares (payload types, a raw stream).
    Payload {
        id: u64,
        side: Side,
        spec: Box<PayloadSpec>,
    },
    Remove {
        id: u64,
        /// `None`: nobody waits; the statistics go out as `RelayEvent::Removed`.
        reply: Option<mpsc::Sender<Option<[LegStats; 2]>>>,
    },
    /// Made by [`Queue::take`], never sent: a session removed before its
    /// worker installed it. Its sockets are closed; it saw no packet.
    Dropped {
        id: u64,
        reply: Option<mpsc::Sender<Option<[LegStats; 2]>>>,
    },
    Query {
        id: u64,
        reply: mpsc::Sender<Option<[LegStats; 2]>>,
    },
    Stop,
}

/// A session for a worker to install: its two legs' sockets and state.
pub(crate) struct NewSession {
    pub(crate) id: u64,
    pub(crate) legs: [(crate::pool::Pair, LegSpec, Crypto); 2],
}

/// A command refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// A set-up: this many wait for the worker already.
    Backlog(usize),
    /// The worker has stopped.
    Closed,
}

#[derive(Default)]
struct Lanes {
    removes: Vec<Cmd>,
    ordered: VecDeque<Cmd>,
    /// Set-ups in `ordered`.
    adds: usize,
    closed: bool,
}

/// One worker's commands (shared by the control side and the worker).
pub(crate) struct Queue {
    lanes: Mutex<Lanes>,
    max_adds: usize,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("backlog", &self.backlog())
            .field("max_adds", &self.max_adds)
            .finish()
    }
}

impl Queue {
    /// A queue holding at most `max_adds` set-ups not yet taken.
    pub(crate) fn new(max_adds: usize) -> Queue {
        Queue {
            lanes: Mutex::new(Lanes::default()),
            max_adds,
        }
    }

    fn lanes(&self) -> MutexGuard<'_, Lanes> {
        // A panic while holding the lock would be a bug elsewhere; the lanes stay usable.
        self.lanes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Queues `cmd`; a set-up beyond the bound is refused (and dropped,
    /// which closes its sockets). `Ok(true)` when the queue was empty: the
    /// worker may be waiting and must be woken (otherwise a wake-up is
    /// already on its way, or the worker is busy and takes this with the rest).
    pub(crate) fn push(&self, cmd: Cmd) -> Result<bool, Refused> {
        let mut l = self.lanes();
        if l.closed {
            return Err(Refused::Closed);
        }
        let was_empty = l.removes.is_empty() && l.ordered.is_empty();
        match cmd {
            Cmd::Remove { .. } | Cmd::Dropped { .. } => l.removes.push(cmd),
            Cmd::Add(_) => {
                if l.adds >= self.max_adds {
                    return Err(Refused::Backlog(l.adds));
                }
                l.adds += 1;
                l.ordered.push_back(cmd);
            }
            _ => l.ordered.push_back(cmd),
        }
        Ok(was_empty)
    }

    /// Refuses everything from now on and drops what waits (closing the
    /// sockets of waiting set-ups): the worker has stopped.
    pub(crate) fn close(&self) {
        let mut l = self.lanes();
        l.closed = true;
        l.adds = 0;
        l.removes.clear();
        l.ordered.clear();
    }

    /// A guard that closes the queue when dropped (the worker thread's end,
    /// a panic included).
    pub(crate) fn close_on_drop(self: &std::sync::Arc<Self>) -> CloseOnDrop {
        CloseOnDrop(self.clone())
    }

    /// Set-ups waiting for the worker.
    pub(crate) fn backlog(&self) -> usize {
        self.lanes().adds
    }

    /// True when a create would be refused now.
    pub(crate) fn is_full(&self) -> bool {
        self.backlog() >= self.max_adds
    }

    /// Moves everything queued into `out` (emptied first), in the order to
    /// apply it: every removal, then the rest in the order it came. A
    /// set-up whose removal is in the same batch is not installed at all:
    /// it leaves as [`Cmd::Dropped`] among the removals.
    pub(crate) fn take(&self, out: &mut Vec<Cmd>) {
        out.clear();
        let (removes, ordered) = {
            let mut l = self.lanes();
            l.adds = 0;
            (
                std::mem::take(&mut l.removes),
                std::mem::take(&mut l.ordered),
            )
        };
        let gone: HashSet<u64> = removes
            .iter()
            .filter_map(|c| match c {
                Cmd::Remove { id, .. } => Some(*id),
                _ => None,
            })
            .collect();
        let mut dropped: HashSet<u64> = HashSet::new();
        let rest: Vec<Cmd> = ordered
            .into_iter()
            .filter(|c| match c {
                Cmd::Add(s) if gone.contains(&s.id) => {
                    dropped.insert(s.id);
                    false
                }
                _ => true,
            })
            .collect();
        for c in removes {
            match c {
                Cmd::Remove { id, reply } if dropped.contains(&id) => {
                    out.push(Cmd::Dropped { id, reply });
                }
                c => out.push(c),
            }
        }
        out.extend(rest);
    }
}

/// Closes its queue when dropped.
pub(crate) struct CloseOnDrop(std::sync::Arc<Queue>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::PortPool;

    fn add(pool: &mut PortPool, id: u64) -> Cmd {
        let ip = std::net::IpAddr::from([127, 0, 0, 1]);
        let mut leg = || {
            (
                pool.allocate(ip, false).unwrap(),
                LegSpec::default(),
                Crypto::new(&CryptoSpec::default()).unwrap(),
            )
        };
        Cmd::Add(Box::new(NewSession {
            id,
            legs: [leg(), leg()],
        }))
    }

    fn remove(id: u64) -> Cmd {
        Cmd::Remove { id, reply: None }
    }

    fn update(id: u64) -> Cmd {
        Cmd::Update {
            id,
            side: Side::A,
            remote_rtp: None,
            remote_rtcp: None,
            crypto: None,
            rtcp_mux: Some(true),
            reply: None,
        }
    }

    /// What a batch says, in order: `+id` set-up, `-id` removal, `xid`
    /// dropped unopened, `uid` update, `pid` payload change, `stop`.
    fn shape(batch: &[Cmd]) -> Vec<String> {
        batch
            .iter()
            .map(|c| match c {
                Cmd::Add(s) => format!("+{}", s.id),
                Cmd::Remove { id, .. } => format!("-{id}"),
                Cmd::Dropped { id, .. } => format!("x{id}"),
                Cmd::Update { id, .. } => format!("u{id}"),
                Cmd::Payload { id, .. } => format!("p{id}"),
                Cmd::Query { id, .. } => format!("q{id}"),
                Cmd::Tone { id, .. } => format!("t{id}"),
                Cmd::Stop => "stop".into(),
            })
            .collect()
    }

    #[test]
    fn removals_go_first_and_a_session_removed_before_it_was_installed_is_never_opened() {
        let mut pool = PortPool::new(41200, 41299);
        let q = Queue::new(16);
        assert_eq!(
            q.push(add(&mut pool, 1)),
            Ok(true),
            "empty: wake the worker"
        );
        assert_eq!(q.push(update(1)), Ok(false), "a wake-up is on its way");
        q.push(add(&mut pool, 2)).unwrap();
        q.push(remove(7)).unwrap();
        q.push(add(&mut pool, 3)).unwrap();
        q.push(remove(2)).unwrap();
        q.push(Cmd::Stop).unwrap();
        assert_eq!(q.backlog(), 3);
        let mut batch = Vec::new();
        q.take(&mut batch);
        assert_eq!(shape(&batch), ["-7", "x2", "+1", "u1", "+3", "stop"]);
        assert_eq!(q.backlog(), 0);
        assert_eq!(q.push(remove(3)), Ok(true), "emptied: the next push wakes");
        q.take(&mut batch);
        assert_eq!(shape(&batch), ["-3"], "the batch is replaced, not appended");
    }

    #[test]
    fn set_ups_beyond_the_bound_are_refused_and_closed_while_the_rest_still_queue() {
        let mut pool = PortPool::new(41300, 41399);
        let q = Queue::new(2);
        q.push(add(&mut pool, 1)).unwrap();
        q.push(add(&mut pool, 2)).unwrap();
        assert!(q.is_full());
        let refused = add(&mut pool, 3);
        assert_eq!(q.push(refused), Err(Refused::Backlog(2)));
        // Removals and updates are never refused.
        q.push(remove(1)).unwrap();
        q.push(update(2)).unwrap();
        // Its sockets closed with it (ports 41308 and 41310, after the
        // two pairs of each queued set-up); a queued set-up holds its own.
        assert!(std::net::UdpSocket::bind("127.0.0.1:41308").is_ok());
        assert!(std::net::UdpSocket::bind("127.0.0.1:41310").is_ok());
        assert!(std::net::UdpSocket::bind("127.0.0.1:41304").is_err());
        let mut batch = Vec::new();
        q.take(&mut batch);
        assert_eq!(shape(&batch), ["x1", "+2", "u2"]);
        assert!(!q.is_full());
        q.push(add(&mut pool, 4)).unwrap();
        assert_eq!(q.backlog(), 1);
        // A stopped worker: refused, and what waited is closed.
        q.close();
        assert_eq!(q.push(remove(4)), Err(Refused::Closed));
        assert_eq!(q.backlog(), 0);
    }
}
