//! Against a real `redis-server` (the Debian package), started by each test
//! on a loopback port in a directory of its own and killed at the end.
//! A missing binary fails the test: it is not skipped.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::*;
use crate::binding::tests::sample;
use crate::binding::Flow;
use crate::users::{User, Users};
use crate::{Config, Registrar};

/// How long a test waits for anything to happen, at most.
const PATIENCE: Duration = Duration::from_secs(10);

#[allow(clippy::disallowed_methods)] // tests bound their waits by the real clock
fn clock() -> Instant {
    Instant::now()
}

#[allow(clippy::disallowed_methods)] // Redis expires keys by the real clock
fn wall() -> SystemTime {
    SystemTime::now()
}

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
}

struct Server {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
}

impl Server {
    fn start() -> Server {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "registrar-redis-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut s = Server {
            child: None,
            port,
            dir,
        };
        s.restart();
        s
    }

    /// Starts the server (again, on the same port and directory, empty:
    /// nothing is saved) and waits until it answers PING.
    fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .arg("--logfile")
            .arg(self.dir.join("redis.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run redis-server ({e}): install the Debian package redis-server")
            });
        self.child = Some(child);
        let client = Client::open(self.url()).unwrap();
        let deadline = clock() + PATIENCE;
        loop {
            let pong = client
                .get_connection_with_timeout(Duration::from_millis(200))
                .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c));
            if pong.as_deref() == Ok("PONG") {
                return;
            }
            let log = std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default();
            assert!(
                clock() < deadline,
                "redis-server on port {} did not answer: {pong:?}\n{log}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    fn store(&self, origin: u64) -> RedisStore {
        RedisStore::open(&self.url(), RedisStore::DEFAULT_PREFIX, origin)
            .unwrap()
            .with_timeout(Duration::from_millis(500))
    }

    /// A plain connection, to look at Redis behind the store's back.
    fn raw(&self) -> Connection {
        Client::open(self.url())
            .unwrap()
            .get_connection_with_timeout(Duration::from_secs(1))
            .unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The next change for `sub`, waiting up to [`PATIENCE`].
fn next_change(sub: &mut Subscription) -> Change {
    let deadline = clock() + PATIENCE;
    loop {
        if let Some(c) = sub.next(Duration::from_millis(200)).unwrap() {
            return c;
        }
        assert!(clock() < deadline, "no change within {PATIENCE:?}");
    }
}

/// Asserts that `sub` yields nothing for `d`.
fn quiet(sub: &mut Subscription, d: Duration) {
    let deadline = clock() + d;
    while clock() < deadline {
        let got = sub.next(Duration::from_millis(50)).unwrap();
        assert_eq!(got, None);
    }
}

fn ttl_near(ttl: Duration, want: Duration) {
    assert!(
        ttl <= want && ttl + Duration::from_secs(2) > want,
        "{ttl:?}, want about {want:?}"
    );
}

#[test]
fn messages_name_origin_operation_and_key() {
    let m = message(0xabc, Op::Put, b"+1555\0ux");
    assert_eq!(m, b"0000000000000abc put +1555\0ux");
    assert_eq!(parse(&m), Some((0xabc, Op::Put, &b"+1555\0ux"[..])));
    let m = message(u64::MAX, Op::Del, b"");
    assert_eq!(parse(&m), Some((u64::MAX, Op::Del, &b""[..])));
    assert_eq!(parse(b"0000000000000abc get k"), None);
    assert_eq!(parse(b"zz00000000000abc put k"), None);
    assert_eq!(parse(b"short"), None);
    assert_eq!(pattern(b"a*b?[c]\\:"), b"a\\*b\\?\\[c\\]\\\\:*");
}

#[test]
fn open_refuses_a_url_that_is_not_redis() {
    let e = RedisStore::open("http://127.0.0.1/", "p:", 1).unwrap_err();
    assert!(e.to_string().starts_with("binding store: redis:"), "{e}");
    assert!(RedisStore::subscribe("not a url", "p:", 1).is_err());
}

#[test]
fn redis_keeps_bindings_with_their_remaining_ttl_and_the_ttl_in_redis() {
    let server = Server::start();
    let mut s = server.store(1);
    s.ping().unwrap();
    let a = sample(None, None);
    let b = sample(Some("<urn:uuid:1>"), Some(1));
    let c = sample(Some("<urn:uuid:2>"), None);
    s.put(at(0), &a, Duration::from_secs(60)).unwrap();
    s.put(at(0), &b, Duration::from_secs(3600)).unwrap();
    s.put(at(0), &c, Duration::from_secs(10)).unwrap();
    s.remove(&c).unwrap();
    let mut got = s.load_all(at(30)).unwrap();
    got.sort_by_key(|(_, ttl)| *ttl);
    assert_eq!(
        got,
        vec![
            (a.clone(), Duration::from_secs(30)),
            (b.clone(), Duration::from_secs(3570))
        ]
    );
    // Redis holds the TTL (expiry is its job), under prefix + store key.
    let mut raw = server.raw();
    let key = s.key(&a);
    assert_eq!(key, [b"sbc:binding:".as_slice(), &a.store_key()].concat());
    let pttl: i64 = redis::cmd("PTTL").arg(&key).query(&mut raw).unwrap();
    assert!((59_000..=60_000).contains(&pttl), "PTTL {pttl}");
    let gone: Option<Vec<u8>> = redis::cmd("GET").arg(s.key(&c)).query(&mut raw).unwrap();
    assert_eq!(gone, None);
    // Expired by its value at 60 s: not loaded.
    assert_eq!(
        s.load_all(at(60)).unwrap(),
        vec![(b.clone(), Duration::from_secs(3540))]
    );
    // Another prefix is another store; an unreadable value is skipped
    // and left for its TTL.
    let mut other = RedisStore::open(&server.url(), "other:", 1).unwrap();
    assert!(other.load_all(at(30)).unwrap().is_empty());
    let junk = b"sbc:binding:junk".as_slice();
    redis::cmd("SET")
        .arg(junk)
        .arg("x")
        .arg("PX")
        .arg(60_000)
        .exec(&mut raw)
        .unwrap();
    assert_eq!(s.load_all(at(30)).unwrap().len(), 2);
    let kept: Option<Vec<u8>> = redis::cmd("GET").arg(junk).query(&mut raw).unwrap();
    assert_eq!(kept.as_deref(), Some(&b"x"[..]));
    // An expiry event writes nothing (Redis's TTL does it); a removal deletes.
    s.follow(at(60), &Event::BindingExpired { binding: b.clone() })
        .unwrap();
    assert_eq!(s.load_all(at(60)).unwrap().len(), 1);
    s.follow(at(60), &Event::BindingRemoved { binding: b.clone() })
        .unwrap();
    assert!(s.load_all(at(60)).unwrap().is_empty());
}

#[test]
fn redis_itself_expires_a_binding_at_its_ttl() {
    let server = Server::start();
    let mut s = server.store(1);
    let a = sample(None, None);
    let started = clock();
    s.put(wall(), &a, Duration::from_secs(1)).unwrap();
    let mut raw = server.raw();
    let key = s.key(&a);
    let v: Option<Vec<u8>> = redis::cmd("GET").arg(&key).query(&mut raw).unwrap();
    assert!(v.is_some());
    assert_eq!(s.load_all(wall()).unwrap().len(), 1);
    std::thread::sleep(Duration::from_millis(1200).saturating_sub(started.elapsed()));
    // Read straight from Redis: no store code runs in between.
    let v: Option<Vec<u8>> = redis::cmd("GET").arg(&key).query(&mut raw).unwrap();
    assert_eq!(v, None, "Redis kept the key past its TTL");
    let exists: i64 = redis::cmd("EXISTS").arg(&key).query(&mut raw).unwrap();
    assert_eq!(exists, 0);
}

fn users() -> Users {
    Users::new([User::with_password("+15550100001", "alice", "sbc", "pw").unwrap()]).unwrap()
}

#[test]
fn a_change_by_one_sbc_reaches_the_others_and_not_itself() {
    let server = Server::start();
    let (a_origin, b_origin) = (0x0a, 0x0b);
    let mut a = server.store(a_origin);
    let mut a_sub =
        RedisStore::subscribe(&server.url(), RedisStore::DEFAULT_PREFIX, a_origin).unwrap();
    let mut b_sub =
        RedisStore::subscribe(&server.url(), RedisStore::DEFAULT_PREFIX, b_origin).unwrap();
    let binding = sample(Some("<urn:uuid:1>"), Some(1));
    a.put(wall(), &binding, Duration::from_secs(120)).unwrap();
    let Change::Put { binding: got, ttl } = next_change(&mut b_sub) else {
        panic!("expected a put")
    };
    assert_eq!(got, binding, "decoded as written");
    ttl_near(ttl, Duration::from_secs(120));
    // B's registrar learns it: a call arriving at B finds the phone.
    let now = clock();
    let mut reg = Registrar::new(Config::default(), users(), now);
    assert!(reg.learn(now, got, ttl));
    let found = reg.lookup("+15550100001", now);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].flow.remote, binding.flow.remote);
    assert!(reg.poll_output().is_none(), "nothing to write back");
    // A does not hear itself.
    quiet(&mut a_sub, Duration::from_millis(300));

    a.remove(&binding).unwrap();
    let change = next_change(&mut b_sub);
    assert_eq!(
        change,
        Change::Removed {
            key: binding.store_key()
        }
    );
    let Change::Removed { key } = change else {
        unreachable!()
    };
    assert!(reg.forget(&key));
    assert!(reg.lookup("+15550100001", now).is_empty());
    quiet(&mut a_sub, Duration::from_millis(300));

    // A put whose key is gone by the time B reads it yields nothing.
    a.put(wall(), &binding, Duration::from_secs(120)).unwrap();
    let mut raw = server.raw();
    redis::cmd("DEL")
        .arg(a.key(&binding))
        .exec(&mut raw)
        .unwrap();
    quiet(&mut b_sub, Duration::from_millis(300));
    // Messages that are not ours are ignored.
    redis::cmd("PUBLISH")
        .arg(a.channel())
        .arg("hello")
        .exec(&mut raw)
        .unwrap();
    quiet(&mut b_sub, Duration::from_millis(300));
}

#[test]
fn a_lost_redis_is_an_error_and_the_store_reconnects_when_it_is_back() {
    let mut server = Server::start();
    let mut a = server.store(1);
    let mut b_sub = RedisStore::subscribe(&server.url(), RedisStore::DEFAULT_PREFIX, 2).unwrap();
    let first = sample(None, None);
    a.put(wall(), &first, Duration::from_secs(60)).unwrap();
    assert!(matches!(next_change(&mut b_sub), Change::Put { .. }));

    server.kill();
    let started = clock();
    let e = a.put(wall(), &first, Duration::from_secs(60)).unwrap_err();
    assert!(matches!(e, StoreError::Backend(_)), "{e:?}");
    assert!(a.remove(&first).is_err());
    assert!(a.load_all(wall()).is_err());
    assert!(a.ping().is_err());
    // The subscription reports it too, after waiting its timeout.
    let t = clock();
    let mut failed = false;
    for _ in 0..5 {
        if b_sub.next(Duration::from_millis(100)).is_err() {
            failed = true;
            break;
        }
    }
    assert!(failed, "the subscription did not notice");
    assert!(t.elapsed() < PATIENCE);
    assert!(
        b_sub.next(Duration::from_millis(100)).is_err(),
        "still down"
    );
    assert!(started.elapsed() < PATIENCE, "{:?}", started.elapsed());

    server.restart();
    a.ping().unwrap();
    let flow = Flow {
        remote: "192.0.2.20:5060".parse().unwrap(),
        ..first.flow
    };
    let mut second = sample(Some("<urn:uuid:9>"), None);
    second.flow = flow;
    a.put(wall(), &second, Duration::from_secs(60)).unwrap();
    assert_eq!(
        a.load_all(wall()).unwrap().len(),
        1,
        "Redis came back empty"
    );
    // B resubscribes and, whether by the resync or the message, learns it.
    let deadline = clock() + PATIENCE;
    loop {
        match b_sub.next(Duration::from_millis(200)) {
            Ok(Some(Change::Put { binding, .. })) if binding == second => break,
            Ok(_) | Err(_) => {}
        }
        assert!(clock() < deadline, "B did not learn the binding");
    }
}

/// Throughput on loopback, measured (not a check; ignored by default):
///
/// ```text
/// cargo test --release -p registrar --lib redis_store::tests::throughput -- --ignored --nocapture
/// ```
#[test]
#[ignore = "a measurement"]
fn throughput() {
    const N: usize = 10_000;
    let server = Server::start();
    let mut a = server.store(1);
    let mut b_sub = RedisStore::subscribe(&server.url(), RedisStore::DEFAULT_PREFIX, 2).unwrap();
    let bindings: Vec<Binding> = (0..N)
        .map(|i| sample(Some(&format!("<urn:uuid:{i}>")), None))
        .collect();
    let t = clock();
    for b in &bindings {
        a.put(wall(), b, Duration::from_secs(600)).unwrap();
    }
    let put = t.elapsed();
    let mut seen = 0;
    while seen < N {
        if let Change::Put { .. } = next_change(&mut b_sub) {
            seen += 1;
        }
    }
    let learned = t.elapsed();
    let t = clock();
    let all = a.load_all(wall()).unwrap();
    let load = t.elapsed();
    assert_eq!(all.len(), N);
    println!(
        "{N} puts: {put:?} ({:.0} µs each); all learned by B after {learned:?}; load_all {load:?}",
        put.as_secs_f64() * 1e6 / N as f64
    );
}
