//! The registrar core (RFC 3261 §10.3): every binding of every user, the
//! processing of REGISTER in the RFC's order, expiry as a timer, lookup for
//! routing, and the counters of every outcome.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sip::{Message, Method, Uri};
use transaction::response_to;

use crate::auth::{AuthConfig, AuthHeader, AuthOutcome, Authenticator};
use crate::binding::{Binding, Event, Flow, Strings};
use crate::digest::Algorithms;
use crate::protect::{BlockAction, Guard, ProtectConfig};
use crate::register::{read, ContactSpec, Contacts, Register, Reject};
use crate::users::Users;

/// Registrar settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Digest authentication (realm, nonce lifetime, seed).
    pub auth: AuthConfig,
    /// Failure counting and blocking.
    pub protect: ProtectConfig,
    /// Expiry when neither the Contact nor the request says (seconds).
    pub default_expires: u32,
    /// Shortest expiry accepted; shorter (but not 0) gets 423 with
    /// Min-Expires (RFC 3261 §10.3 step 7).
    pub min_expires: u32,
    /// Longest expiry granted; longer is shortened to this.
    pub max_expires: u32,
    /// Most bindings one AOR may have; a REGISTER that would leave more
    /// gets 403 and changes nothing.
    pub max_contacts: usize,
    /// `Flow-Timer` (RFC 5626 §4.4.1) sent with an outbound registration
    /// over a stream (TCP/TLS): the keep-alive interval asked of the phone.
    pub flow_timer_stream: u32,
    /// The same for UDP, where NAT bindings are short-lived.
    pub flow_timer_udp: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            auth: AuthConfig::default(),
            protect: ProtectConfig::default(),
            default_expires: 3600,
            min_expires: 60,
            max_expires: 7200,
            max_contacts: 10,
            flow_timer_stream: 120,
            flow_timer_udp: 29,
        }
    }
}

/// Something for the registrar to process.
// `Register` is large (a Message keeps its header index inline); an Input
// lives for one call.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Input {
    /// A request arrived (a REGISTER; anything else gets 405). `id` is the
    /// caller's, given back with the answer (e.g. its server transaction).
    Register {
        /// The caller's token for this request.
        id: u64,
        /// The request.
        msg: Message,
        /// The flow it arrived on.
        flow: Flow,
    },
    /// Time moved on (call at [`Registrar::poll_timeout`]): expire bindings.
    Timeout,
}

/// Why a request got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DropReason {
    /// The source is blocked (or the user locked) and the configured
    /// action is [`BlockAction::Drop`].
    Blocked,
    /// No response could be built from it (its headers are unusable).
    Unanswerable,
}

/// What the registrar hands back.
// `Respond` is large (a Message keeps its header index inline); outputs
// are taken one at a time, and boxing would cost an allocation per answer.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Output {
    /// Send `response` for request `id`.
    Respond {
        /// The caller's token.
        id: u64,
        /// The response.
        response: Message,
    },
    /// Request `id` gets no answer.
    Dropped {
        /// The caller's token.
        id: u64,
        /// Where it came from.
        from: Flow,
        /// Why.
        reason: DropReason,
    },
    /// A binding changed.
    Event(Event),
}

/// How many times each thing happened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Requests handled.
    pub requests: u64,
    /// Requests other than REGISTER checked with [`Registrar::authorize`].
    pub authorizations: u64,
    /// Bindings added.
    pub registered: u64,
    /// Bindings refreshed (same key re-registered).
    pub refreshed: u64,
    /// Bindings removed by a REGISTER (`expires=0`, `Contact: *`).
    pub removed: u64,
    /// Bindings that reached their expiry.
    pub expired: u64,
    /// REGISTERs without Contact (fetching the bindings).
    pub queried: u64,
    /// 200 OK sent.
    pub ok: u64,
    /// 401 sent (any reason).
    pub challenged: u64,
    /// Wrong response, unknown user, or no HA1 for the algorithm.
    pub auth_failed: u64,
    /// Correct response with an expired nonce (401 stale=true).
    pub stale: u64,
    /// Nonce-count that did not increase.
    pub replay: u64,
    /// 400 sent.
    pub bad_request: u64,
    /// 420 sent (a Require the registrar does not understand).
    pub bad_extension: u64,
    /// 423 sent.
    pub interval_too_brief: u64,
    /// 403 sent for too many bindings.
    pub too_many_contacts: u64,
    /// 403 sent: authenticated, but not as the user of the AOR.
    pub forbidden: u64,
    /// 404 sent: the AOR is no user.
    pub not_found: u64,
    /// 500 sent: a CSeq not above the binding's for the same Call-ID.
    pub out_of_order: u64,
    /// 405 sent: not a REGISTER.
    pub method_not_allowed: u64,
    /// Requests refused (dropped or 403) from a blocked source or for a
    /// locked user.
    pub blocked: u64,
    /// Blocks started on a source IP.
    pub sources_blocked: u64,
    /// Locks started on a user.
    pub users_locked: u64,
    /// Requests dropped because no response could be built.
    pub unanswerable: u64,
    /// Bindings learned from another SBC ([`Registrar::learn`]), new or
    /// replacing a learned one.
    pub learned: u64,
    /// Learned bindings not taken because this SBC holds its own live
    /// binding with the same key.
    pub learned_ignored: u64,
    /// Learned bindings removed because their SBC reported them removed
    /// ([`Registrar::forget`]).
    pub forgotten: u64,
    /// Learned bindings that reached their expiry (no event).
    pub learned_expired: u64,
}

#[derive(Debug, Clone)]
struct Entry {
    b: Binding,
    expires_at: Instant,
    /// Written by another SBC and learned from the shared store
    /// ([`Registrar::learn`]): it expires without an event, and a change
    /// the other SBC reports may replace or remove it.
    learned: bool,
}

/// The bindings of one AOR and their earliest expiry (its key in the
/// timer set).
#[derive(Debug, Clone, Default)]
struct Aor {
    entries: Vec<Entry>,
    next: Option<Instant>,
}

/// How a REGISTER ended (before the response is built).
enum Answer {
    Ok {
        aor: Arc<str>,
        outbound: Option<Flow>,
        path: Option<Vec<u8>>,
    },
    Status(u16, &'static str),
    Challenge {
        stale: bool,
        algs: Algorithms,
    },
    MinExpires(u32),
    Unsupported(Vec<String>),
    Block,
}

/// The sans-IO registrar. Feed it with [`Registrar::handle`]; collect what
/// to send and what changed with [`Registrar::poll_output`]; call again at
/// [`Registrar::poll_timeout`].
#[derive(Debug)]
pub struct Registrar {
    config: Config,
    users: Users,
    auth: Authenticator,
    guard: Guard,
    aors: HashMap<Arc<str>, Aor>,
    timers: BTreeSet<(Instant, Arc<str>)>,
    housekeeping: Option<Instant>,
    out: VecDeque<Output>,
    counters: Counters,
    bindings: usize,
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

impl Registrar {
    /// A registrar for `users`, its clocks starting at `now`.
    pub fn new(config: Config, users: Users, now: Instant) -> Registrar {
        Registrar {
            auth: Authenticator::new(config.auth.clone(), now),
            guard: Guard::new(config.protect),
            config,
            users,
            aors: HashMap::new(),
            timers: BTreeSet::new(),
            housekeeping: None,
            out: VecDeque::new(),
            counters: Counters::default(),
            bindings: 0,
        }
    }

    /// Replaces the users table (a reload). Bindings are kept: a user who
    /// is gone can no longer register, and the bindings expire.
    pub fn set_users(&mut self, users: Users) {
        self.users = users;
    }

    /// The users table.
    pub fn users(&self) -> &Users {
        &self.users
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The counters.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// How many bindings are held (live or awaiting their expiry timer).
    pub fn binding_count(&self) -> usize {
        self.bindings
    }

    /// The authenticator, for challenges the registrar does not make.
    pub fn authenticator(&mut self) -> &mut Authenticator {
        &mut self.auth
    }

    /// Processes one input.
    pub fn handle(&mut self, now: Instant, input: Input) {
        match input {
            Input::Register { id, msg, flow } => self.request(now, id, &msg, flow),
            Input::Timeout => self.timeout(now),
        }
    }

    /// The next thing to send or report.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// When to call [`Registrar::handle`] with [`Input::Timeout`]: the next
    /// expiry, or the next clean-up of the nonce and failure tables.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let next = self.timers.first().map(|(t, _)| *t);
        match (next, self.housekeeping) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The live bindings of an AOR, highest q first (then the one that
    /// lives longest). `aor` may be the E.164 number, a username, or a
    /// `sip:`/`tel:` URI naming either.
    pub fn lookup(&self, aor: &str, now: Instant) -> Vec<Binding> {
        let key = aor_key(aor);
        let found = self.aors.get(key.as_str()).or_else(|| {
            let u = self.users.find(&key)?;
            self.aors.get(u.number())
        });
        let Some(a) = found else {
            return Vec::new();
        };
        let mut live: Vec<&Entry> = a.entries.iter().filter(|e| e.expires_at > now).collect();
        live.sort_by(|x, y| y.b.q.cmp(&x.b.q).then(y.expires_at.cmp(&x.expires_at)));
        live.into_iter().map(|e| e.b.clone()).collect()
    }

    /// Puts back bindings a [`crate::Store`] kept (`ttl` = time left),
    /// after a restart. No events are emitted for them. Where two have the
    /// same key, the one that lives longer wins.
    pub fn restore(&mut self, now: Instant, bindings: Vec<(Binding, Duration)>) {
        for (b, ttl) in bindings {
            if ttl.is_zero() {
                continue;
            }
            let aor = b.aor.clone();
            let expires_at = now + ttl;
            let mut a = self.take_aor(&aor);
            let key = b.key();
            match a.entries.iter_mut().find(|e| e.b.key() == key) {
                Some(e) if e.expires_at >= expires_at => {}
                Some(e) => {
                    *e = Entry {
                        b,
                        expires_at,
                        learned: false,
                    }
                }
                None => a.entries.push(Entry {
                    b,
                    expires_at,
                    learned: false,
                }),
            }
            self.put_aor(aor, a);
        }
    }

    // ----- AOR bookkeeping --------------------------------------------------

    fn take_aor(&mut self, aor: &Arc<str>) -> Aor {
        let a = self.aors.remove(aor).unwrap_or_default();
        if let Some(t) = a.next {
            self.timers.remove(&(t, aor.clone()));
        }
        self.bindings -= a.entries.len();
        a
    }

    fn put_aor(&mut self, aor: Arc<str>, mut a: Aor) {
        if a.entries.is_empty() {
            return;
        }
        // Most AORs hold one binding: a Vec's first growth reserves four.
        a.entries.shrink_to_fit();
        a.next = a.entries.iter().map(|e| e.expires_at).min();
        if let Some(t) = a.next {
            self.timers.insert((t, aor.clone()));
        }
        self.bindings += a.entries.len();
        self.aors.insert(aor, a);
    }

    fn timeout(&mut self, now: Instant) {
        while let Some((t, aor)) = self.timers.first().cloned() {
            if t > now {
                break;
            }
            let mut a = self.take_aor(&aor);
            let (gone, kept): (Vec<Entry>, Vec<Entry>) =
                a.entries.drain(..).partition(|e| e.expires_at <= now);
            a.entries = kept;
            for e in gone {
                if e.learned {
                    // The SBC that wrote it, and the store's TTL, expire it
                    // there; nothing to tell the store.
                    self.counters.learned_expired += 1;
                    continue;
                }
                self.counters.expired += 1;
                self.out
                    .push_back(Output::Event(Event::BindingExpired { binding: e.b }));
            }
            self.put_aor(aor, a);
        }
        if self.housekeeping.is_some_and(|t| t <= now) {
            self.auth.purge(now);
            self.guard.purge(now);
            self.housekeeping = None;
        }
        self.schedule_housekeeping(now);
    }

    fn schedule_housekeeping(&mut self, now: Instant) {
        if self.housekeeping.is_none() && (self.auth.tracked_nonces() > 0 || !self.guard.is_empty())
        {
            let every = self
                .config
                .auth
                .nonce_lifetime
                .max(self.config.protect.window)
                .max(Duration::from_secs(1));
            self.housekeeping = Some(now + every);
        }
    }

    // ----- requests ---------------------------------------------------------

    fn request(&mut self, now: Instant, id: u64, msg: &Message, flow: Flow) {
        self.counters.requests += 1;
        let answer = if self.guard.ip_blocked(flow.remote.ip(), now) {
            Answer::Block
        } else if msg.method() != Some(Method::Register) {
            self.counters.method_not_allowed += 1;
            Answer::Status(405, "Method Not Allowed")
        } else {
            match read(msg) {
                Err(Reject::Bad(why)) => Answer::Status(400, why),
                Err(Reject::Extension(tags)) => Answer::Unsupported(tags),
                Ok(reg) => self.register(now, msg, &reg, flow),
            }
        };
        self.schedule_housekeeping(now);
        self.answer(now, id, msg, flow, answer);
    }

    fn register(&mut self, now: Instant, msg: &Message, reg: &Register<'_>, flow: Flow) -> Answer {
        // §10.3 step 3: authenticate.
        let to_user = reg.to_user.as_deref().and_then(|u| self.users.find(u));
        let to_algs = to_user.map_or(Algorithms::ALL, |u| u.ha1().algorithms());
        let users = &self.users;
        let outcome = self.auth.check(now, msg, AuthHeader::Www, |name| {
            users.by_username(name).map(|u| u.ha1())
        });
        let user = match outcome {
            AuthOutcome::Authorized { username } => {
                match self.users.by_username(&username) {
                    Some(u) => u.clone(),
                    // The table was just consulted; a user cannot vanish
                    // in between, but answer as a failure if it did.
                    None => return Answer::Status(403, "Forbidden"),
                }
            }
            AuthOutcome::Missing { .. } => {
                return Answer::Challenge {
                    stale: false,
                    algs: to_algs,
                }
            }
            AuthOutcome::Stale => {
                self.counters.stale += 1;
                return Answer::Challenge {
                    stale: true,
                    algs: to_algs,
                };
            }
            AuthOutcome::Replay => {
                self.counters.replay += 1;
                return Answer::Challenge {
                    stale: false,
                    algs: to_algs,
                };
            }
            AuthOutcome::Failed { username } => {
                self.counters.auth_failed += 1;
                let known = self.users.by_username(&username).cloned();
                let key = known.as_ref().map(|u| u.username_arc().clone());
                if key.as_ref().is_some_and(|k| self.guard.user_locked(k, now)) {
                    return Answer::Block;
                }
                let f = self.guard.fail(now, flow.remote.ip(), key.as_ref());
                self.counters.sources_blocked += u64::from(f.ip_blocked);
                self.counters.users_locked += u64::from(f.user_locked);
                let algs = known.map_or(to_algs, |u| u.ha1().algorithms());
                return Answer::Challenge { stale: false, algs };
            }
            AuthOutcome::Malformed(why) | AuthOutcome::TooLarge(why) => {
                return Answer::Status(400, why)
            }
        };
        if self.guard.user_locked(user.username_arc(), now) {
            return Answer::Block;
        }
        // §10.3 steps 4–5: the AOR must be a user, and this user.
        let Some(aor_user) = reg.to_user.as_deref().and_then(|u| self.users.find(u)) else {
            self.counters.not_found += 1;
            return Answer::Status(404, "Not Found");
        };
        if aor_user.username() != user.username() {
            self.counters.forbidden += 1;
            return Answer::Status(403, "Not Allowed For This AOR");
        }
        let aor = user.number_arc().clone();
        self.bind(now, reg, aor, flow)
    }

    /// §10.3 steps 6–8, atomically: every Contact is checked against the
    /// bindings as they were before this request, then all is applied or
    /// nothing.
    fn bind(&mut self, now: Instant, reg: &Register<'_>, aor: Arc<str>, flow: Flow) -> Answer {
        let list = match &reg.contacts {
            Contacts::Query => {
                self.counters.queried += 1;
                return Answer::Ok {
                    aor,
                    outbound: None,
                    path: None,
                };
            }
            Contacts::Star => None,
            Contacts::List(l) => Some(l),
        };
        let (min, max) = (self.config.min_expires, self.config.max_expires);
        let (default, max_contacts) = (self.config.default_expires, self.config.max_contacts);
        let mut a = self.take_aor(&aor);
        let before = a.entries.clone();
        let restore = |me: &mut Registrar, a: Aor| me.put_aor(aor.clone(), a);
        let stale_cseq =
            |e: &Entry| *e.b.call_id == *reg.call_id.as_bytes() && reg.cseq <= e.b.cseq;
        let mut events = Vec::new();
        let mut outbound = None;
        match list {
            None => {
                if a.entries.iter().any(stale_cseq) {
                    restore(self, a);
                    self.counters.out_of_order += 1;
                    return Answer::Status(500, "Stale CSeq");
                }
                for e in a.entries.drain(..) {
                    events.push(Event::BindingRemoved { binding: e.b });
                }
            }
            Some(list) => {
                let mut touched = vec![false; a.entries.len()];
                for c in list {
                    let secs = c.expires.or(reg.expires).unwrap_or(u64::from(default));
                    if secs != 0 && secs < u64::from(min) {
                        restore(
                            self,
                            Aor {
                                entries: before,
                                next: None,
                            },
                        );
                        self.counters.interval_too_brief += 1;
                        return Answer::MinExpires(min);
                    }
                    let secs = secs.min(u64::from(max));
                    let b = new_binding(&aor, c, reg, flow);
                    if b.reg_id.is_some() {
                        outbound = Some(flow);
                    }
                    let key = b.key();
                    let found = a.entries.iter().position(|e| e.b.key() == key);
                    if let Some(i) = found {
                        if !touched[i] && stale_cseq(&a.entries[i]) {
                            restore(
                                self,
                                Aor {
                                    entries: before,
                                    next: None,
                                },
                            );
                            self.counters.out_of_order += 1;
                            return Answer::Status(500, "Stale CSeq");
                        }
                    }
                    let ttl = Duration::from_secs(secs);
                    match (found, secs) {
                        (Some(i), 0) => {
                            let e = a.entries.remove(i);
                            touched.remove(i);
                            events.push(Event::BindingRemoved { binding: e.b });
                        }
                        (Some(i), _) => {
                            a.entries[i] = Entry {
                                b: b.clone(),
                                expires_at: now + ttl,
                                learned: false,
                            };
                            touched[i] = true;
                            events.push(Event::BindingRefreshed { binding: b, ttl });
                        }
                        (None, 0) => {}
                        (None, _) => {
                            a.entries.push(Entry {
                                b: b.clone(),
                                expires_at: now + ttl,
                                learned: false,
                            });
                            touched.push(true);
                            events.push(Event::BindingAdded { binding: b, ttl });
                        }
                    }
                }
                if a.entries.len() > max_contacts {
                    restore(
                        self,
                        Aor {
                            entries: before,
                            next: None,
                        },
                    );
                    self.counters.too_many_contacts += 1;
                    return Answer::Status(403, "Too Many Contacts");
                }
            }
        }
        // In request order; a Contact listed twice is reported twice (added,
        // then refreshed), which a store following the events handles.
        for ev in events {
            match &ev {
                Event::BindingAdded { .. } => self.counters.registered += 1,
                Event::BindingRefreshed { .. } => self.counters.refreshed += 1,
                Event::BindingRemoved { .. } => self.counters.removed += 1,
                Event::BindingExpired { .. } => {}
            }
            self.out.push_back(Output::Event(ev));
        }
        restore(self, a);
        let path = (reg.path_supported && !reg.path.is_empty()).then(|| reg.path.clone());
        Answer::Ok {
            aor,
            outbound,
            path,
        }
    }

    fn answer(&mut self, now: Instant, id: u64, msg: &Message, flow: Flow, answer: Answer) {
        if matches!(answer, Answer::Block) {
            self.counters.blocked += 1;
            if self.guard.action() == BlockAction::Drop {
                self.out.push_back(Output::Dropped {
                    id,
                    from: flow,
                    reason: DropReason::Blocked,
                });
                return;
            }
        }
        match self.build(now, msg, answer) {
            Some(response) => self.out.push_back(Output::Respond { id, response }),
            None => {
                self.counters.unanswerable += 1;
                self.out.push_back(Output::Dropped {
                    id,
                    from: flow,
                    reason: DropReason::Unanswerable,
                });
            }
        }
    }

    fn build(&mut self, now: Instant, msg: &Message, answer: Answer) -> Option<Message> {
        let (code, reason) = match &answer {
            Answer::Ok { .. } => (200, "OK"),
            Answer::Status(c, r) => (*c, *r),
            Answer::Challenge { .. } => AuthHeader::Www.status(),
            Answer::MinExpires(_) => (423, "Interval Too Brief"),
            Answer::Unsupported(_) => (420, "Bad Extension"),
            Answer::Block => (403, "Forbidden"),
        };
        let tag = self.auth.token();
        let mut r = response_to(msg, code, reason, Some(&tag)).ok()?;
        match answer {
            Answer::Ok {
                aor,
                outbound,
                path,
            } => {
                self.counters.ok += 1;
                if let Some(a) = self.aors.get(&aor) {
                    for e in a.entries.iter().filter(|e| e.expires_at > now) {
                        let left = ceil_secs(e.expires_at - now);
                        r.push_header("Contact", &e.b.contact_value(left)).ok()?;
                    }
                }
                if let Some(p) = path {
                    r.push_header("Path", &p).ok()?;
                }
                if let Some(f) = outbound {
                    // RFC 5626 §6: outbound was applied to this REGISTER.
                    r.push_header("Require", b"outbound").ok()?;
                    let secs = if f.transport.is_reliable() {
                        self.config.flow_timer_stream
                    } else {
                        self.config.flow_timer_udp
                    };
                    r.push_header("Flow-Timer", secs.to_string().as_bytes())
                        .ok()?;
                }
            }
            Answer::Challenge { stale, algs } => {
                self.counters.challenged += 1;
                let algs = if algs.sha256 || algs.md5 {
                    algs
                } else {
                    Algorithms::ALL
                };
                self.auth
                    .add_challenge(now, &mut r, AuthHeader::Www, stale, algs)
                    .ok()?;
            }
            Answer::MinExpires(min) => {
                r.push_header("Min-Expires", min.to_string().as_bytes())
                    .ok()?;
            }
            Answer::Unsupported(tags) => {
                self.counters.bad_extension += 1;
                r.push_header("Unsupported", tags.join(", ").as_bytes())
                    .ok()?;
            }
            Answer::Status(400, _) => self.counters.bad_request += 1,
            Answer::Status(405, _) => {
                r.push_header("Allow", b"REGISTER").ok()?;
            }
            Answer::Status(..) | Answer::Block => {}
        }
        Some(r)
    }
}

fn new_binding(aor: &Arc<str>, c: &ContactSpec<'_>, reg: &Register<'_>, flow: Flow) -> Binding {
    Binding::new(
        aor.clone(),
        Strings {
            uri: c.uri,
            params: &c.params,
            instance: c.instance.as_deref(),
            call_id: reg.call_id.as_bytes(),
            path: &reg.path,
        },
        c.q,
        c.reg_id,
        reg.cseq,
        flow,
    )
}

/// The user part an AOR string names: the string itself, or the user of a
/// `sip:`/`sips:` URI, or the number of a `tel:` URI.
fn aor_key(aor: &str) -> String {
    match Uri::parse(aor.as_bytes()) {
        Ok(Uri::Sip(u)) => u
            .user
            .map(|u| String::from_utf8_lossy(&sip::percent_decode(u)).into_owned())
            .unwrap_or_default(),
        Ok(Uri::Tel(t)) => t.number.to_owned(),
        _ => aor.to_owned(),
    }
}

mod authorize;
mod shared;
#[cfg(test)]
mod tests;
