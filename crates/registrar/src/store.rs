//! Where bindings are kept across restarts. The registrar core holds its
//! bindings in memory and reports every change as an [`Event`]; a
//! [`Store`] follows those events and gives the bindings back at start-up.
//! A stored value is the absolute expiry (Unix milliseconds) followed by
//! the binding's compact bytes; a backend with its own expiry
//! ([`crate::RedisStore`], `SET … PX`) stores the same bytes.
//!
//! These are the only parts of the crate that do I/O (the redb file; Redis
//! in [`crate::RedisStore`]).

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redb::{Database, TableDefinition};

use crate::binding::{decode, encode, Binding, Event};

/// Why a store operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend failed (I/O, a database error); the text says how.
    Backend(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Backend(s) => write!(f, "binding store: {s}"),
        }
    }
}

impl std::error::Error for StoreError {}

impl From<redb::Error> for StoreError {
    fn from(e: redb::Error) -> Self {
        StoreError::Backend(e.to_string())
    }
}

/// A place bindings survive in.
pub trait Store {
    /// Writes (or overwrites) `binding`, live for `ttl` from `now`.
    fn put(&mut self, now: SystemTime, binding: &Binding, ttl: Duration) -> Result<(), StoreError>;

    /// Deletes `binding` (found by its [`Binding::store_key`]).
    fn remove(&mut self, binding: &Binding) -> Result<(), StoreError>;

    /// Every binding still live at `now`, with the time it has left.
    /// Expired and unreadable entries are dropped (and deleted where the
    /// backend can).
    fn load_all(&mut self, now: SystemTime) -> Result<Vec<(Binding, Duration)>, StoreError>;

    /// Applies one event of the registrar.
    fn follow(&mut self, now: SystemTime, event: &Event) -> Result<(), StoreError> {
        match event {
            Event::BindingAdded { binding, ttl } | Event::BindingRefreshed { binding, ttl } => {
                self.put(now, binding, *ttl)
            }
            Event::BindingRemoved { binding } | Event::BindingExpired { binding } => {
                self.remove(binding)
            }
        }
    }
}

pub(crate) fn unix_ms(t: SystemTime) -> u64 {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

pub(crate) fn ttl_ms(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX)
}

/// A stored value: expiry (Unix ms, big-endian) then the binding.
pub(crate) fn value(now: SystemTime, binding: &Binding, ttl: Duration) -> Vec<u8> {
    let expiry = unix_ms(now).saturating_add(ttl_ms(ttl));
    let mut v = expiry.to_be_bytes().to_vec();
    v.extend_from_slice(&encode(binding));
    v
}

/// Reads a stored value: `None` when expired at `now_ms` or unreadable.
pub(crate) fn read(now_ms: u64, v: &[u8]) -> Option<(Binding, Duration)> {
    let (head, rest) = v.split_at_checked(8)?;
    let mut e = [0u8; 8];
    e.copy_from_slice(head);
    let expiry = u64::from_be_bytes(e);
    if expiry <= now_ms {
        return None;
    }
    Some((decode(rest)?, Duration::from_millis(expiry - now_ms)))
}

/// Bindings in memory (in their stored form, so the codec is exercised):
/// for tests and for a daemon that needs no persistence.
#[derive(Debug, Default, Clone)]
pub struct MemoryStore {
    map: HashMap<Vec<u8>, Vec<u8>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// How many entries (live or not yet purged).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

impl Store for MemoryStore {
    fn put(&mut self, now: SystemTime, binding: &Binding, ttl: Duration) -> Result<(), StoreError> {
        self.map
            .insert(binding.store_key(), value(now, binding, ttl));
        Ok(())
    }

    fn remove(&mut self, binding: &Binding) -> Result<(), StoreError> {
        self.map.remove(&binding.store_key());
        Ok(())
    }

    fn load_all(&mut self, now: SystemTime) -> Result<Vec<(Binding, Duration)>, StoreError> {
        let now_ms = unix_ms(now);
        let mut out = Vec::with_capacity(self.map.len());
        self.map.retain(|_, v| match read(now_ms, v) {
            Some(b) => {
                out.push(b);
                true
            }
            None => false,
        });
        Ok(out)
    }
}

const TABLE: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("bindings");

/// Bindings in a redb database (`registrations.redb` in a directory): one
/// ACID transaction per change, committed to disk before `put` returns.
pub struct RedbStore {
    db: Database,
    path: PathBuf,
}

impl fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedbStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl RedbStore {
    /// The file name inside the directory.
    pub const FILE: &'static str = "registrations.redb";

    /// Opens (creating the directory and file if needed) the store in `dir`.
    pub fn open(dir: &Path) -> Result<RedbStore, StoreError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Backend(format!("{}: {e}", dir.display())))?;
        let path = dir.join(Self::FILE);
        let db = Database::create(&path)
            .map_err(|e| StoreError::Backend(format!("{}: {e}", path.display())))?;
        let w = db.begin_write().map_err(redb::Error::from)?;
        w.open_table(TABLE).map_err(redb::Error::from)?;
        w.commit().map_err(redb::Error::from)?;
        Ok(RedbStore { db, path })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Store for RedbStore {
    fn put(&mut self, now: SystemTime, binding: &Binding, ttl: Duration) -> Result<(), StoreError> {
        let w = self.db.begin_write().map_err(redb::Error::from)?;
        {
            let mut t = w.open_table(TABLE).map_err(redb::Error::from)?;
            t.insert(
                binding.store_key().as_slice(),
                value(now, binding, ttl).as_slice(),
            )
            .map_err(redb::Error::from)?;
        }
        w.commit().map_err(redb::Error::from)?;
        Ok(())
    }

    fn remove(&mut self, binding: &Binding) -> Result<(), StoreError> {
        let w = self.db.begin_write().map_err(redb::Error::from)?;
        {
            let mut t = w.open_table(TABLE).map_err(redb::Error::from)?;
            t.remove(binding.store_key().as_slice())
                .map_err(redb::Error::from)?;
        }
        w.commit().map_err(redb::Error::from)?;
        Ok(())
    }

    fn load_all(&mut self, now: SystemTime) -> Result<Vec<(Binding, Duration)>, StoreError> {
        let now_ms = unix_ms(now);
        let mut out = Vec::new();
        let w = self.db.begin_write().map_err(redb::Error::from)?;
        {
            let mut t = w.open_table(TABLE).map_err(redb::Error::from)?;
            t.retain(|_, v| match read(now_ms, v) {
                Some(b) => {
                    out.push(b);
                    true
                }
                None => false,
            })
            .map_err(redb::Error::from)?;
        }
        w.commit().map_err(redb::Error::from)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use crate::binding::tests::sample;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
    }

    fn scratch() -> PathBuf {
        static N: AtomicU32 = AtomicU32::new(0);
        let d = std::env::temp_dir().join(format!(
            "registrar-store-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn exercise(store: &mut dyn Store) {
        let a = sample(None, None);
        let b = sample(Some("<urn:uuid:1>"), Some(1));
        let c = sample(Some("<urn:uuid:2>"), None);
        store.put(at(0), &a, Duration::from_secs(60)).unwrap();
        store.put(at(0), &b, Duration::from_secs(3600)).unwrap();
        store.put(at(0), &c, Duration::from_secs(10)).unwrap();
        store.remove(&c).unwrap();
        let mut got = store.load_all(at(30)).unwrap();
        got.sort_by_key(|(_, ttl)| *ttl);
        assert_eq!(
            got,
            vec![
                (a.clone(), Duration::from_secs(30)),
                (b.clone(), Duration::from_secs(3570))
            ]
        );
        // At 60 s the first has expired: not loaded.
        let got = store.load_all(at(60)).unwrap();
        assert_eq!(got, vec![(b.clone(), Duration::from_secs(3540))]);
        // Events drive the same operations.
        store
            .follow(at(60), &Event::BindingExpired { binding: b.clone() })
            .unwrap();
        assert!(store.load_all(at(60)).unwrap().is_empty());
        store
            .follow(
                at(60),
                &Event::BindingAdded {
                    binding: a.clone(),
                    ttl: Duration::from_secs(5),
                },
            )
            .unwrap();
        assert_eq!(store.load_all(at(61)).unwrap().len(), 1);
    }

    #[test]
    fn memory_store_keeps_live_bindings_with_their_remaining_ttl() {
        let mut s = MemoryStore::new();
        exercise(&mut s);
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn redb_store_keeps_live_bindings_with_their_remaining_ttl() {
        let dir = scratch();
        let mut s = RedbStore::open(&dir).unwrap();
        exercise(&mut s);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn redb_bindings_survive_reopening_and_expired_ones_are_not_loaded() {
        let dir = scratch();
        let a = sample(None, None);
        let b = sample(Some("<urn:uuid:1>"), Some(1));
        {
            let mut s = RedbStore::open(&dir).unwrap();
            s.put(at(0), &a, Duration::from_secs(60)).unwrap();
            s.put(at(0), &b, Duration::from_secs(600)).unwrap();
            assert_eq!(s.path(), dir.join(RedbStore::FILE));
        } // closed, as by a restart
        let mut s = RedbStore::open(&dir).unwrap();
        let got = s.load_all(at(100)).unwrap();
        assert_eq!(got, vec![(b.clone(), Duration::from_secs(500))]);
        drop(s);
        // The expired one was deleted from the file, not only skipped.
        let mut s = RedbStore::open(&dir).unwrap();
        assert_eq!(s.load_all(at(0)).unwrap().len(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unreadable_values_are_dropped_not_fatal() {
        assert_eq!(read(0, b"short"), None);
        let mut v = value(at(0), &sample(None, None), Duration::from_secs(5));
        assert!(read(unix_ms(at(0)), &v).is_some());
        v.truncate(v.len() - 1);
        assert_eq!(read(unix_ms(at(0)), &v), None);
        let e = StoreError::Backend("x".into());
        assert_eq!(e.to_string(), "binding store: x");
    }
}
