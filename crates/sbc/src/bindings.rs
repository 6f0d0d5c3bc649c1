//! Where `sbc run` keeps registrations: the registrar (in the B2BUA) holds
//! them in memory and reports every change; a store on its own thread
//! writes them (redb under the data directory, or nothing for `memory`),
//! so the SIP loop never waits for a disk. At start-up the live bindings
//! are read back and given to the registrar.

use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::thread;
use std::time::{Duration, SystemTime};

use registrar::{Binding, Event, Store};

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

/// Opens the store of `kind`: the live bindings it holds, and the handle
/// that keeps it following the registrar.
pub(crate) fn open(kind: &StoreKind) -> Result<(Vec<(Binding, Duration)>, Bindings), String> {
    let mut store: Box<dyn Store + Send> = match kind {
        StoreKind::Memory => Box::new(registrar::MemoryStore::new()),
        StoreKind::Redb(dir) => {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("phones store: cannot create {}: {e}", dir.display()))?;
            Box::new(
                registrar::RedbStore::open(dir)
                    .map_err(|e| format!("phones store {}: {e}", dir.display()))?,
            )
        }
        StoreKind::Redis(url) => {
            return Err(format!(
                "phones store {url}: the Redis store is not available in this build"
            ));
        }
    };
    let live = store
        .load_all(SystemTime::now())
        .map_err(|e| format!("phones store: {e}"))?
        .into_iter()
        .map(|(b, ttl)| (restored(b), ttl))
        .collect::<Vec<_>>();
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
    Ok((
        live,
        Bindings {
            tx: Some(tx),
            dropped: 0,
        },
    ))
}
