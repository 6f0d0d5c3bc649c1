//! Where `sbc run` keeps registrations: the registrar (in the B2BUA) holds
//! them in memory and reports every change; a store on its own thread
//! writes them (redb under the data directory, or Redis; nothing for
//! `memory`: the registrar's own copy is the only one), so the SIP loop never waits for a disk or a server. At
//! start-up the live bindings are read back and given to the registrar.
//! With Redis, a second thread follows what the other SBCs write (pub/sub)
//! and hands each change to the SIP loop.

use std::hash::BuildHasher;
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::thread;
use std::time::{Duration, SystemTime};

use registrar::{Binding, Change, Event, Store};
use tokio::sync::mpsc as tokio_mpsc;

use crate::config::StoreKind;

/// Binding changes waiting for the store thread, at most (a REGISTER
/// flood does not grow memory without bound; what is dropped is counted).
const QUEUE: usize = 16_384;

/// The store thread's end in the SIP loop.
#[derive(Debug)]
pub(crate) struct Bindings {
    tx: Option<SyncSender<Event>>,
    /// Changes the store thread could not take (queue full).
    pub(crate) dropped: u64,
}

impl Bindings {
    /// Hands a binding change to the store (never waits).
    pub(crate) fn follow(&mut self, e: Event) {
        let Some(tx) = &self.tx else {
            return;
        };
        match tx.try_send(e) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.dropped += 1;
                if self.dropped.is_power_of_two() {
                    tracing::warn!(
                        dropped = self.dropped,
                        "binding store behind: changes dropped"
                    );
                }
            }
            Err(TrySendError::Disconnected(_)) => self.tx = None,
        }
    }
}

/// A binding restored after a restart: its stream connection belonged to
/// the old process (requests to it open a new one; the phone's next
/// REGISTER brings its flow back).
fn restored(mut b: Binding) -> Binding {
    b.flow.conn = None;
    b
}

/// What a store holds at start-up.
pub(crate) struct Opened {
    /// Bindings this SBC kept (redb): restored as its own.
    pub(crate) own: Vec<(Binding, Duration)>,
    /// Bindings in a shared store (Redis), any SBC's: learned.
    pub(crate) shared: Vec<(Binding, Duration)>,
    /// The handle that keeps the store following the registrar.
    pub(crate) bindings: Bindings,
    /// With Redis: the other SBCs' changes, as they come.
    pub(crate) changes: Option<tokio_mpsc::Receiver<Change>>,
}

/// Opens the store of `kind`.
pub(crate) fn open(kind: &StoreKind) -> Result<Opened, String> {
    let mut changes = None;
    let mut store: Box<dyn Store + Send> = match kind {
        // The registrar holds the bindings already: nothing to keep twice,
        // no thread.
        StoreKind::Memory => {
            return Ok(Opened {
                own: Vec::new(),
                shared: Vec::new(),
                bindings: Bindings {
                    tx: None,
                    dropped: 0,
                },
                changes: None,
            })
        }
        StoreKind::Redb(dir) => {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("phones store: cannot create {}: {e}", dir.display()))?;
            Box::new(
                registrar::RedbStore::open(dir)
                    .map_err(|e| format!("phones store {}: {e}", dir.display()))?,
            )
        }
        StoreKind::Redis(url) => {
            // Each process is its own origin: it ignores its own publications.
            let origin = std::collections::hash_map::RandomState::new()
                .hash_one((std::process::id(), SystemTime::now()));
            let prefix = registrar::RedisStore::DEFAULT_PREFIX;
            let mut r = registrar::RedisStore::open(url, prefix, origin)
                .map_err(|e| format!("phones store {url}: {e}"))?;
            r.ping().map_err(|e| format!("phones store {url}: {e}"))?;
            changes = Some(follow_others(url.clone(), origin)?);
            Box::new(r)
        }
    };
    let live = store
        .load_all(SystemTime::now())
        .map_err(|e| format!("phones store: {e}"))?
        .into_iter()
        .map(|(b, ttl)| (restored(b), ttl))
        .collect::<Vec<_>>();
    let (own, shared) = if changes.is_some() {
        (Vec::new(), live)
    } else {
        (live, Vec::new())
    };
    let (tx, rx) = mpsc::sync_channel::<Event>(QUEUE);
    thread::Builder::new()
        .name("sbc-bindings".into())
        .spawn(move || {
            let mut failures = 0u64;
            while let Ok(e) = rx.recv() {
                if let Err(err) = store.follow(SystemTime::now(), &e) {
                    failures += 1;
                    if failures.is_power_of_two() {
                        tracing::warn!(%err, failures, "binding not written");
                    }
                }
            }
        })
        .map_err(|e| format!("phones store: cannot start its thread: {e}"))?;
    Ok(Opened {
        own,
        shared,
        bindings: Bindings {
            tx: Some(tx),
            dropped: 0,
        },
        changes,
    })
}

/// The thread that follows the other SBCs' changes in Redis; they reach
/// the SIP loop through the returned channel (bounded: a burst waits in
/// Redis' own buffer, not in our memory).
fn follow_others(url: String, origin: u64) -> Result<tokio_mpsc::Receiver<Change>, String> {
    let (tx, rx) = tokio_mpsc::channel::<Change>(4096);
    let mut sub =
        registrar::RedisStore::subscribe(&url, registrar::RedisStore::DEFAULT_PREFIX, origin)
            .map_err(|e| format!("phones store {url}: cannot subscribe: {e}"))?;
    thread::Builder::new()
        .name("sbc-bindings-sub".into())
        .spawn(move || {
            let mut errors = 0u64;
            loop {
                match sub.next(Duration::from_secs(1)) {
                    Ok(Some(c)) => {
                        if tx.blocking_send(c).is_err() {
                            return;
                        }
                    }
                    Ok(None) => {
                        if tx.is_closed() {
                            return;
                        }
                    }
                    Err(e) => {
                        errors += 1;
                        if errors.is_power_of_two() {
                            tracing::warn!(%e, errors, "shared registrations: subscription failing");
                        }
                    }
                }
            }
        })
        .map_err(|e| format!("phones store: cannot start its subscriber: {e}"))?;
    Ok(rx)
}
