//! Bindings in Redis, shared by several SBCs: every SBC writes the
//! bindings registered with it, with a TTL so that Redis itself enforces
//! their expiry, and announces each change on a channel; every other SBC
//! subscribes ([`RedisStore::subscribe`]) and learns them
//! ([`crate::Registrar::learn`], [`crate::Registrar::forget`]).
//!
//! Keys are `{prefix}{store key}` (the raw bytes of
//! [`Binding::store_key`]; Redis keys are binary-safe), values the same
//! bytes as every store (absolute expiry in Unix ms, then the binding), set
//! with `PX ttl`. Changes go to `{prefix}changes` as
//! `{origin:016x} put {store key}` or `{origin:016x} del {store key}`, so
//! an SBC skips its own.
//!
//! The client is the `redis` crate's synchronous one: every call blocks
//! for at most the store's timeout. An error drops the connection, and the
//! next call opens a new one.

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, SystemTime};

use redis::{
    Client, Connection, ConnectionLike, IntoConnectionInfo, Msg, ProtocolVersion, RedisError,
    RedisResult, Value,
};

use crate::binding::{decode, Binding, Event};
use crate::store::{read, ttl_ms, unix_ms, value, Store, StoreError};

/// Keys scanned (and values fetched) per round trip.
const BATCH: usize = 500;

fn backend(e: RedisError) -> StoreError {
    StoreError::Backend(format!("redis: {e}"))
}

/// What a publication says was done to a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Put,
    Del,
}

fn message(origin: u64, op: Op, key: &[u8]) -> Vec<u8> {
    let op = match op {
        Op::Put => "put",
        Op::Del => "del",
    };
    let mut m = format!("{origin:016x} {op} ").into_bytes();
    m.extend_from_slice(key);
    m
}

fn parse(m: &[u8]) -> Option<(u64, Op, &[u8])> {
    let (head, key) = m.split_at_checked(21)?;
    let origin = std::str::from_utf8(head.get(..16)?).ok()?;
    let origin = u64::from_str_radix(origin, 16).ok()?;
    let op = match head.get(16..)? {
        b" put " => Op::Put,
        b" del " => Op::Del,
        _ => return None,
    };
    Some((origin, op, key))
}

/// `prefix*` as a SCAN pattern: the prefix's glob characters escaped.
fn pattern(prefix: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(prefix.len() + 2);
    for &b in prefix {
        if matches!(b, b'*' | b'?' | b'[' | b']' | b'\\') {
            p.push(b'\\');
        }
        p.push(b);
    }
    p.push(b'*');
    p
}

/// Bindings in Redis, shared with the other SBCs that use the same server
/// and prefix. See the module documentation and `docs/phones.md`.
pub struct RedisStore {
    client: Client,
    conn: Option<Connection>,
    prefix: Vec<u8>,
    channel: Vec<u8>,
    origin: u64,
    timeout: Duration,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not the URL: it may hold a password.
        let info = self.client.get_connection_info();
        f.debug_struct("RedisStore")
            .field("addr", &info.addr().to_string())
            .field("db", &info.redis_settings().db())
            .field("prefix", &String::from_utf8_lossy(&self.prefix))
            .field("origin", &format_args!("{:016x}", self.origin))
            .field("connected", &self.conn.is_some())
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// The key prefix the daemon uses.
    pub const DEFAULT_PREFIX: &'static str = "sbc:binding:";

    /// How long one call may block unless [`RedisStore::with_timeout`]
    /// says otherwise.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

    /// A store at `url` (`redis://host:port/db`, a password as
    /// `redis://:password@host/…`; no TLS) under `prefix`, writing as
    /// `origin` (a random number per SBC process: its own publications are
    /// skipped by its subscription). Only the URL is checked here; the
    /// connection is opened by the first call.
    pub fn open(url: &str, prefix: &str, origin: u64) -> Result<RedisStore, StoreError> {
        let client = Client::open(url).map_err(backend)?;
        Ok(RedisStore::with_client(client, prefix, origin))
    }

    fn with_client(client: Client, prefix: &str, origin: u64) -> RedisStore {
        let prefix = prefix.as_bytes().to_vec();
        let mut channel = prefix.clone();
        channel.extend_from_slice(b"changes");
        RedisStore {
            client,
            conn: None,
            prefix,
            channel,
            origin,
            timeout: RedisStore::DEFAULT_TIMEOUT,
        }
    }

    /// The same store with another bound on connecting, and on each read
    /// and write (at least 1 ms).
    pub fn with_timeout(mut self, timeout: Duration) -> RedisStore {
        self.timeout = timeout.max(Duration::from_millis(1));
        self.conn = None;
        self
    }

    /// This SBC's origin id.
    pub fn origin(&self) -> u64 {
        self.origin
    }

    /// The Redis key of `binding`.
    pub fn key(&self, binding: &Binding) -> Vec<u8> {
        self.full_key(&binding.store_key())
    }

    /// The channel changes are published on.
    pub fn channel(&self) -> &[u8] {
        &self.channel
    }

    /// Checks that Redis answers (`PING`).
    pub fn ping(&mut self) -> Result<(), StoreError> {
        self.run(|c| redis::cmd("PING").query::<String>(c).map(drop))
    }

    /// Subscribes to the changes other SBCs make under `prefix` at `url`;
    /// `origin` is this SBC's (its own changes are skipped). Returns once
    /// Redis has confirmed the subscription, so every change published
    /// after this returns is seen: subscribe first, then
    /// [`Store::load_all`], and nothing falls in between. Needs Redis 6 or
    /// later (RESP3).
    pub fn subscribe(url: &str, prefix: &str, origin: u64) -> Result<Subscription, StoreError> {
        let store = RedisStore::open(url, prefix, origin)?;
        let mut info = url.into_connection_info().map_err(backend)?;
        let settings = info
            .redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3);
        info = info.set_redis_settings(settings);
        let client = Client::open(info).map_err(backend)?;
        let conn = listen(&client, &store.channel, store.timeout).map_err(backend)?;
        Ok(Subscription {
            client,
            conn: Some(conn),
            store,
            pending: VecDeque::new(),
            resync: false,
        })
    }

    fn full_key(&self, store_key: &[u8]) -> Vec<u8> {
        let mut k = Vec::with_capacity(self.prefix.len() + store_key.len());
        k.extend_from_slice(&self.prefix);
        k.extend_from_slice(store_key);
        k
    }

    /// Runs `f` on the connection, opening one if there is none; any error
    /// drops it, so the next call reconnects.
    fn run<T>(
        &mut self,
        f: impl FnOnce(&mut Connection) -> RedisResult<T>,
    ) -> Result<T, StoreError> {
        let conn = match self.conn.take() {
            Some(c) if c.is_open() => c,
            _ => {
                let c = self
                    .client
                    .get_connection_with_timeout(self.timeout)
                    .map_err(backend)?;
                c.set_read_timeout(Some(self.timeout)).map_err(backend)?;
                c.set_write_timeout(Some(self.timeout)).map_err(backend)?;
                c
            }
        };
        let conn = self.conn.insert(conn);
        let r = f(conn).map_err(backend);
        if r.is_err() {
            self.conn = None;
        }
        r
    }

    /// Every key under the prefix (SCAN, a batch per round trip).
    fn keys(&mut self) -> Result<Vec<Vec<u8>>, StoreError> {
        let pat = pattern(&self.prefix);
        let mut keys = Vec::new();
        let mut cursor = 0u64;
        loop {
            let (next, batch): (u64, Vec<Vec<u8>>) = self.run(|c| {
                redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pat)
                    .arg("COUNT")
                    .arg(BATCH)
                    .query(c)
            })?;
            keys.extend(batch);
            // Redis ends every full iteration with cursor 0.
            if next == 0 {
                return Ok(keys);
            }
            cursor = next;
        }
    }

    /// The binding at each key and the time Redis gives it (PTTL: Redis's
    /// clock, which enforces the expiry); `None` where the key is gone,
    /// has no TTL (not ours) or its value does not read as a binding.
    fn fetch(&mut self, keys: &[Vec<u8>]) -> Result<Vec<Option<(Binding, Duration)>>, StoreError> {
        let mut out = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(BATCH) {
            let mut p = redis::pipe();
            p.atomic();
            for k in chunk {
                p.cmd("GET").arg(k).cmd("PTTL").arg(k);
            }
            let values: Vec<Value> = self.run(|c| p.query(c))?;
            for pair in values.chunks(2) {
                out.push(match pair {
                    [Value::BulkString(v), Value::Int(ms)] if *ms > 0 => v
                        .get(8..)
                        .and_then(decode)
                        .map(|b| (b, Duration::from_millis(ms.unsigned_abs()))),
                    _ => None,
                });
            }
        }
        Ok(out)
    }
}

impl Store for RedisStore {
    /// `SET key value PX ttl`, then `PUBLISH` a `put`, in one round trip.
    fn put(&mut self, now: SystemTime, binding: &Binding, ttl: Duration) -> Result<(), StoreError> {
        let ms = ttl_ms(ttl);
        if ms == 0 {
            // Redis refuses `PX 0`; a binding with no time left is gone.
            return self.remove(binding);
        }
        let store_key = binding.store_key();
        let key = self.full_key(&store_key);
        let v = value(now, binding, ttl);
        let m = message(self.origin, Op::Put, &store_key);
        let channel = self.channel.clone();
        self.run(|c| {
            redis::pipe()
                .cmd("SET")
                .arg(&key)
                .arg(&v)
                .arg("PX")
                .arg(ms)
                .ignore()
                .cmd("PUBLISH")
                .arg(&channel)
                .arg(&m)
                .ignore()
                .query::<()>(c)
        })
    }

    /// `DEL key`, then `PUBLISH` a `del`, in one round trip.
    fn remove(&mut self, binding: &Binding) -> Result<(), StoreError> {
        let store_key = binding.store_key();
        let key = self.full_key(&store_key);
        let m = message(self.origin, Op::Del, &store_key);
        let channel = self.channel.clone();
        self.run(|c| {
            redis::pipe()
                .cmd("DEL")
                .arg(&key)
                .ignore()
                .cmd("PUBLISH")
                .arg(&channel)
                .arg(&m)
                .ignore()
                .query::<()>(c)
        })
    }

    /// Every binding under the prefix, whichever SBC wrote it, with the
    /// time its value says it has left at `now`. Unreadable values are
    /// skipped but not deleted: another SBC (a newer version during an
    /// upgrade) may read them, and their TTL removes them anyway.
    fn load_all(&mut self, now: SystemTime) -> Result<Vec<(Binding, Duration)>, StoreError> {
        let now_ms = unix_ms(now);
        let keys = self.keys()?;
        let mut out = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(BATCH) {
            let values: Vec<Option<Vec<u8>>> =
                self.run(|c| redis::cmd("MGET").arg(chunk).query(c))?;
            out.extend(values.iter().flatten().filter_map(|v| read(now_ms, v)));
        }
        Ok(out)
    }

    /// As the default, except that an expiry writes nothing: Redis expired
    /// the key at the same instant (its TTL), and a `DEL` could remove a
    /// newer value another SBC wrote for the same binding.
    fn follow(&mut self, now: SystemTime, event: &Event) -> Result<(), StoreError> {
        match event {
            Event::BindingAdded { binding, ttl } | Event::BindingRefreshed { binding, ttl } => {
                self.put(now, binding, *ttl)
            }
            Event::BindingRemoved { binding } => self.remove(binding),
            Event::BindingExpired { .. } => Ok(()),
        }
    }
}

/// Opens a RESP3 connection subscribed to `channel`, once Redis has
/// confirmed the subscription.
fn listen(client: &Client, channel: &[u8], timeout: Duration) -> RedisResult<Connection> {
    let mut c = client.get_connection_with_timeout(timeout)?;
    c.set_read_timeout(Some(timeout))?;
    c.set_write_timeout(Some(timeout))?;
    c.send_packed_command(&redis::cmd("SUBSCRIBE").arg(channel).get_packed_command())?;
    // Nothing else is sent before the confirmation: it is the first reply.
    match c.recv_response()? {
        Value::Push {
            kind: redis::PushKind::Subscribe,
            ..
        } => Ok(c),
        other => Err(RedisError::from(std::io::Error::other(format!(
            "SUBSCRIBE answered {other:?}"
        )))),
    }
}

/// A change another SBC made to the shared bindings.
// `Put` is large (a Binding is inline); changes are taken one at a time,
// and boxing would cost an allocation per change.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Change {
    /// A binding written (added or refreshed), with the time Redis gives
    /// it: for [`crate::Registrar::learn`].
    Put {
        /// The binding as stored.
        binding: Binding,
        /// Its remaining TTL in Redis.
        ttl: Duration,
    },
    /// A binding removed (a REGISTER with `expires=0` or `Contact: *`):
    /// for [`crate::Registrar::forget`].
    Removed {
        /// Its [`Binding::store_key`].
        key: Vec<u8>,
    },
}

/// The changes other SBCs make, read on a thread of the daemon's. After a
/// lost connection it reconnects and, once subscribed again, yields a
/// [`Change::Put`] for every binding in Redis, so that what was written
/// in the gap is not missed (removals in the gap are not seen; those
/// bindings expire at their TTL).
pub struct Subscription {
    client: Client,
    conn: Option<Connection>,
    store: RedisStore,
    pending: VecDeque<Change>,
    resync: bool,
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("store", &self.store)
            .field("subscribed", &self.conn.is_some())
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl Subscription {
    /// The next change, waiting at most `timeout` (at least 1 ms) for it:
    /// `Ok(None)` when none came, or when what came was not for this SBC
    /// (its own change, a binding already gone). `Err` when Redis could not
    /// be reached; the call then first waits `timeout`, so a loop around it
    /// does not spin while Redis is down, and the next call reconnects.
    pub fn next(&mut self, timeout: Duration) -> Result<Option<Change>, StoreError> {
        if let Some(c) = self.pending.pop_front() {
            return Ok(Some(c));
        }
        let timeout = timeout.max(Duration::from_millis(1));
        let conn = match self.conn.take() {
            Some(c) if c.is_open() => c,
            _ => match listen(&self.client, &self.store.channel, self.store.timeout) {
                Ok(c) => {
                    self.resync = true;
                    c
                }
                Err(e) => {
                    std::thread::sleep(timeout);
                    return Err(backend(e));
                }
            },
        };
        let conn = self.conn.insert(conn);
        if self.resync {
            let all = self.store.keys().and_then(|k| self.store.fetch(&k));
            match all {
                Ok(all) => {
                    self.resync = false;
                    self.pending.extend(
                        all.into_iter()
                            .flatten()
                            .map(|(binding, ttl)| Change::Put { binding, ttl }),
                    );
                    return Ok(self.pending.pop_front());
                }
                Err(e) => {
                    std::thread::sleep(timeout);
                    return Err(e);
                }
            }
        }
        if let Err(e) = conn.set_read_timeout(Some(timeout)) {
            self.conn = None;
            return Err(backend(e));
        }
        match conn.recv_response() {
            Ok(v) => self.change(v),
            Err(e) if e.is_timeout() => Ok(None),
            Err(e) => {
                self.conn = None;
                Err(backend(e))
            }
        }
    }

    fn change(&mut self, v: Value) -> Result<Option<Change>, StoreError> {
        let Some(msg) = Msg::from_owned_value(v) else {
            return Ok(None);
        };
        let Some((origin, op, key)) = parse(msg.get_payload_bytes()) else {
            return Ok(None);
        };
        if origin == self.store.origin {
            return Ok(None);
        }
        match op {
            Op::Del => Ok(Some(Change::Removed { key: key.to_vec() })),
            Op::Put => {
                let full = self.store.full_key(key);
                match self.store.fetch(&[full]) {
                    Ok(mut got) => Ok(got
                        .pop()
                        .flatten()
                        .filter(|(b, _)| b.store_key() == key)
                        .map(|(binding, ttl)| Change::Put { binding, ttl })),
                    Err(e) => {
                        // This change is lost: list everything once Redis
                        // answers again.
                        self.resync = true;
                        Err(e)
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
