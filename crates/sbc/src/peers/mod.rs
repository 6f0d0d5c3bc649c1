//! The SBC's neighbours, simulated in the SBC's own process for `sbc demo`
//! and `sbc drill`: a carrier, an analog gateway or an external number on
//! UDP, and Microsoft proxies (Teams, ACS) behind mutual TLS. They are
//! written with the crates the SBC uses (`sip` to build and parse messages,
//! `sdp` to read descriptions, `media` for RTP and SRTP).
//!
//! An [`Endpoint`] answers OPTIONS by itself and queues every other message
//! for the script driving it, which takes them with [`Endpoint::request`] /
//! [`Endpoint::final_response`], answers calls with [`Endpoint::answer`]
//! and keeps a [`Dialog`] per call. An endpoint can be switched to a fault
//! ([`Mode`]): dead, refusing every INVITE (503 with Retry-After), or
//! silent. [`Reports`] collects what the daemon tells its embedding program
//! (health changes, CDRs).

mod audio;
mod dialog;
mod embed;
mod msg;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use b2bua::{Cdr, Output};
use bytes::Bytes;
use sim::peer::Reaction;
use sip::{Frame, Message, StreamFramer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{timeout, Instant};
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{ClientConfig, ServerConfig};
use tokio_rustls::{TlsAcceptor, TlsConnector};
use transport::tls::{cert_dns_names, client_config, server_config};
use transport::{IdentityFiles, TlsProfile};

pub(crate) use audio::{audio, Audio, Remote};
pub(crate) use dialog::{Answered, Dialog};
pub(crate) use embed::{embed, Stopped};
pub(crate) use msg::*;

pub(crate) type Result<T, E = String> = std::result::Result<T, E>;

/// The FQDNs the SBC presents to Teams and to ACS (they differ, as
/// Microsoft requires), in the development PKI and both embedded configs.
pub(crate) const TEAMS_FQDN: &str = "teams.sbc.example.test";
pub(crate) const ACS_FQDN: &str = "acs.sbc.example.test";
pub(crate) const MS_PROXY: &str = "sip.pstnhub.microsoft.com";
pub(crate) const MS_AGENT: &str = "Microsoft.PSTNHub.SIPProxy (simulated)";
pub(crate) const MS_ALLOW: &str = sim::peer::MICROSOFT_ALLOW;
pub(crate) const SUITE: &str = "AES_CM_128_HMAC_SHA1_80";

/// The longest any single wait of a simulated peer may take.
pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// Generates the development certificates into `certs/dev` of the working
/// directory when any is missing (`program` names who says so).
pub(crate) fn ensure_dev_certs(program: &str) -> Result<&'static std::path::Path> {
    let dir = std::path::Path::new(crate::config::DEMO_CERT_DIR);
    let complete = ["sbc", "teams", "acs", "microsoft", "client"]
        .iter()
        .all(|n| dir.join(format!("{n}.pem")).exists());
    if !complete {
        println!(
            "{program}: generating development certificates into {}",
            dir.display()
        );
        crate::dev_certs(
            dir,
            &["sbc.example.test".to_owned(), "localhost".to_owned()],
        )?;
    }
    Ok(dir)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

// ----- faults ----------------------------------------------------------------

/// How a simulated peer behaves: normal, or one of the faults `sbc drill`
/// injects. The same fault model as the virtual world's ([`sim::peer`]):
/// dying here closes the listener and resets the connections, silence
/// keeps the ignored INVITEs ([`Endpoint::take_ignored`]) to answer late.
pub(crate) use sim::peer::Fault as Mode;

// ----- links and messages ----------------------------------------------------

/// How a peer reaches the SBC: a UDP socket, or one TLS connection.
#[derive(Debug, Clone)]
pub(crate) enum Link {
    Udp {
        sock: Arc<UdpSocket>,
        to: SocketAddr,
    },
    Tls {
        /// Bytes to write on the connection.
        tx: mpsc::UnboundedSender<Bytes>,
        local: SocketAddr,
        /// DNS names of the certificate the SBC presented on it.
        names: Vec<String>,
    },
}

impl Link {
    pub(crate) async fn send(&self, m: &Message) -> Result<()> {
        match self {
            Link::Udp { sock, to } => sock
                .send_to(&m.to_bytes(), to)
                .await
                .map(|_| ())
                .map_err(|e| format!("send to {to}: {e}")),
            Link::Tls { tx, .. } => tx
                .send(m.to_bytes())
                .map_err(|_| "the TLS connection to the SBC is closed".to_owned()),
        }
    }

    /// A Via for a request sent on this link.
    pub(crate) fn via(&self, branch: &str) -> String {
        match self {
            Link::Udp { sock, .. } => match sock.local_addr() {
                Ok(a) => format!("SIP/2.0/UDP {a};branch={branch};rport"),
                Err(_) => format!("SIP/2.0/UDP 127.0.0.1;branch={branch};rport"),
            },
            Link::Tls { local, .. } => format!("SIP/2.0/TLS {local};branch={branch}"),
        }
    }

    pub(crate) fn names(&self) -> Vec<String> {
        match self {
            Link::Udp { .. } => Vec::new(),
            Link::Tls { names, .. } => names.clone(),
        }
    }
}

/// A message from the SBC and the link to answer on.
#[derive(Debug)]
pub(crate) struct Incoming {
    pub(crate) msg: Message,
    pub(crate) link: Link,
}

impl Incoming {
    pub(crate) async fn reply(
        &self,
        code: u16,
        reason: &str,
        to_tag: Option<&str>,
        headers: &[(&str, &str)],
        sdp: Option<&[u8]>,
    ) -> Result<()> {
        let mut r = transaction::response_to(&self.msg, code, reason, to_tag)
            .map_err(|e| format!("{code} response: {e}"))?;
        for (n, v) in headers {
            r.push_header(n, v.as_bytes()).map_err(|e| e.to_string())?;
        }
        if let Some(body) = sdp {
            r.set_body(Some("application/sdp"), body)
                .map_err(|e| e.to_string())?;
        }
        self.link.send(&r).await
    }
}

/// What an endpoint's background tasks saw and how they behave: OPTIONS
/// answered, the names in the SBC's client certificates, TLS problems, the
/// fault in force and what it did.
#[derive(Debug, Default)]
pub(crate) struct Seen {
    options: AtomicU32,
    names: Mutex<Vec<String>>,
    problems: Mutex<Vec<String>>,
    mode: Mutex<Mode>,
    /// INVITEs answered by `Mode::Refuse`.
    refused: AtomicU32,
    /// INVITEs ignored by `Mode::Silent`, oldest first.
    ignored: Mutex<Vec<Incoming>>,
}

impl Seen {
    pub(crate) fn options(&self) -> u32 {
        self.options.load(Ordering::Relaxed)
    }

    pub(crate) fn client_names(&self) -> String {
        lock(&self.names).join(",")
    }

    /// INVITEs refused so far (`Mode::Refuse`).
    pub(crate) fn refused(&self) -> u32 {
        self.refused.load(Ordering::Relaxed)
    }

    /// INVITEs ignored so far and not yet taken (`Mode::Silent`).
    pub(crate) fn ignored(&self) -> usize {
        lock(&self.ignored).len()
    }

    fn problem(&self, p: String) {
        lock(&self.problems).push(p);
    }

    fn mode(&self) -> Mode {
        *lock(&self.mode)
    }
}

// ----- endpoints -------------------------------------------------------------

/// What an endpoint listens with, kept to listen again after `Mode::Dead`.
enum Listen {
    Udp {
        sock: Option<Arc<UdpSocket>>,
    },
    Tls {
        acceptor: TlsAcceptor,
        fqdn: &'static str,
    },
}

/// One simulated neighbour and what it receives from the SBC (OPTIONS are
/// answered by its background tasks, the rest is queued for the script).
pub(crate) struct Endpoint {
    /// "carrier", "Teams", "sip2", "gateway"…
    pub(crate) name: &'static str,
    /// A Microsoft proxy (answers as Microsoft does), or a UDP peer.
    microsoft: bool,
    agent: &'static str,
    /// Where it listens.
    addr: SocketAddr,
    pub(crate) inbox: mpsc::UnboundedReceiver<Incoming>,
    inbox_tx: mpsc::UnboundedSender<Incoming>,
    pub(crate) seen: Arc<Seen>,
    listen: Listen,
    /// The task accepting connections or reading datagrams (`None` while dead).
    task: Option<JoinHandle<()>>,
    /// The tasks of its connections, ended (the connections reset) when it dies.
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Endpoint {
    fn new(
        name: &'static str,
        microsoft: bool,
        agent: &'static str,
        addr: SocketAddr,
        listen: Listen,
    ) -> Endpoint {
        let (inbox_tx, inbox) = mpsc::unbounded_channel();
        Endpoint {
            name,
            microsoft,
            agent,
            addr,
            inbox,
            inbox_tx,
            seen: Arc::new(Seen::default()),
            listen,
            task: None,
            conns: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// A peer on UDP `addr` (a carrier, a gateway, an external number); it
    /// answers each datagram to where it came from.
    pub(crate) async fn udp(
        name: &'static str,
        addr: SocketAddr,
        agent: &'static str,
    ) -> Result<Endpoint> {
        let mut ep = Endpoint::new(name, false, agent, addr, Listen::Udp { sock: None });
        ep.open().await?;
        Ok(ep)
    }

    /// A Microsoft proxy listening on `addr` with mutual TLS; the SBC must
    /// present a certificate naming `fqdn`.
    pub(crate) async fn microsoft(
        name: &'static str,
        addr: SocketAddr,
        fqdn: &'static str,
        tls: &MicrosoftTls,
    ) -> Result<Endpoint> {
        let acceptor = TlsAcceptor::from(tls.server.clone());
        let mut ep = Endpoint::new(name, true, MS_AGENT, addr, Listen::Tls { acceptor, fqdn });
        ep.open().await?;
        Ok(ep)
    }

    /// A link sending from this UDP peer's socket to the SBC at `sbc`.
    pub(crate) fn udp_link(&self, sbc: SocketAddr) -> Result<Link> {
        match &self.listen {
            Listen::Udp { sock: Some(sock) } => Ok(Link::Udp {
                sock: sock.clone(),
                to: sbc,
            }),
            _ => Err(format!("{}: no UDP socket", self.name)),
        }
    }

    /// Starts listening (again) on the endpoint's address.
    async fn open(&mut self) -> Result<()> {
        let (name, addr, agent) = (self.name, self.addr, self.agent);
        let (tx, seen, conns) = (self.inbox_tx.clone(), self.seen.clone(), self.conns.clone());
        let task = match &mut self.listen {
            Listen::Udp { sock } => {
                let s = Arc::new(
                    UdpSocket::bind(addr)
                        .await
                        .map_err(|e| format!("{name}: cannot bind {addr}: {e}"))?,
                );
                *sock = Some(s.clone());
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 65536];
                    loop {
                        let (n, from) = match s.recv_from(&mut buf).await {
                            Ok(x) => x,
                            // An ICMP error for something sent earlier.
                            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => continue,
                            Err(_) => return,
                        };
                        let Ok(msg) = Message::parse(Bytes::copy_from_slice(&buf[..n])) else {
                            continue;
                        };
                        let link = Link::Udp {
                            sock: s.clone(),
                            to: from,
                        };
                        deliver(msg, &link, &tx, &seen, agent).await;
                    }
                })
            }
            Listen::Tls { acceptor, fqdn } => {
                // SO_REUSEADDR: a peer that comes back listens again at once.
                let listener = TcpSocket::new_v4()
                    .and_then(|s| {
                        s.set_reuseaddr(true)?;
                        s.bind(addr)?;
                        s.listen(64)
                    })
                    .map_err(|e| format!("{name}: cannot listen on {addr}: {e}"))?;
                let (acceptor, fqdn) = (acceptor.clone(), *fqdn);
                tokio::spawn(async move {
                    while let Ok((tcp, from)) = listener.accept().await {
                        let _ = tcp.set_nodelay(true);
                        // Its connections end as a crashed host's do: with RST.
                        let _ = tcp.set_zero_linger();
                        let (acceptor, tx, s, c) =
                            (acceptor.clone(), tx.clone(), seen.clone(), conns.clone());
                        let handshake = tokio::spawn(async move {
                            let local = tcp.local_addr().unwrap_or(from);
                            let tls = match timeout(WAIT, acceptor.accept(tcp)).await {
                                Ok(Ok(t)) => t,
                                Ok(Err(e)) => return s.problem(format!("TLS from {from}: {e}")),
                                Err(_) => {
                                    return s.problem(format!("TLS from {from}: no handshake"))
                                }
                            };
                            // The verifier already required a certificate from
                            // our CA; Microsoft also wants it to name the paired FQDN.
                            let names = tls
                                .get_ref()
                                .1
                                .peer_certificates()
                                .and_then(|c| c.first())
                                .map(cert_dns_names)
                                .unwrap_or_default();
                            if !names.iter().any(|n| n == fqdn) {
                                return s.problem(format!(
                                    "the SBC's client certificate names {names:?}, expected {fqdn}; connection refused"
                                ));
                            }
                            lock(&s.names).clone_from(&names);
                            spawn_link(tls, local, names, tx, s, &c);
                        });
                        lock(&conns).push(handshake);
                    }
                })
            }
        };
        self.task = Some(task);
        Ok(())
    }

    /// Stops listening and resets every connection (waits until they are gone).
    async fn close(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = t.await;
        }
        let conns = std::mem::take(&mut *lock(&self.conns));
        for c in &conns {
            c.abort();
        }
        for c in conns {
            let _ = c.await;
        }
        if let Listen::Udp { sock } = &mut self.listen {
            *sock = None;
        }
    }

    /// Switches the endpoint to `mode`. Dying closes its listener and resets
    /// its connections before this returns; coming back from the dead
    /// listens again on the same address.
    pub(crate) async fn set_mode(&mut self, mode: Mode) -> Result<()> {
        let was = self.seen.mode();
        *lock(&self.seen.mode) = mode;
        match (was == Mode::Dead, mode == Mode::Dead) {
            (false, true) => self.close().await,
            (true, false) => self.open().await?,
            _ => {}
        }
        Ok(())
    }

    /// The INVITEs ignored while silent, oldest first (taken: a second call
    /// returns only those ignored since).
    pub(crate) fn take_ignored(&self) -> Vec<Incoming> {
        std::mem::take(&mut *lock(&self.seen.ignored))
    }

    /// Opens a TLS connection to the SBC asking for `sni` (and checking the
    /// SBC's certificate for that name), presenting the Microsoft certificate.
    pub(crate) async fn connect(
        &self,
        addr: &str,
        sni: &str,
        cfg: &Arc<ClientConfig>,
    ) -> Result<Link> {
        let tcp = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("{}: connect {addr}: {e}", self.name))?;
        let _ = tcp.set_nodelay(true);
        let local = tcp.local_addr().map_err(|e| e.to_string())?;
        let server = ServerName::try_from(sni.to_owned()).map_err(|e| e.to_string())?;
        let tls = timeout(WAIT, TlsConnector::from(cfg.clone()).connect(server, tcp))
            .await
            .map_err(|_| format!("{}: TLS handshake with {addr} timed out", self.name))?
            .map_err(|e| format!("{}: TLS with {addr} (SNI {sni}): {e}", self.name))?;
        let names = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first())
            .map(cert_dns_names)
            .unwrap_or_default();
        Ok(spawn_link(
            tls,
            local,
            names,
            self.inbox_tx.clone(),
            self.seen.clone(),
            &self.conns,
        ))
    }

    /// The next message from the SBC within `within`.
    pub(crate) async fn next(&mut self, what: &str, within: Duration) -> Result<Incoming> {
        match timeout(within, self.inbox.recv()).await {
            Ok(Some(m)) => Ok(m),
            Ok(None) => Err(format!("{}: stopped receiving", self.name)),
            // A refused TLS connection is the likely reason: say so.
            Err(_) => Err(match self.tls_ok() {
                Ok(()) => format!("{}: timeout waiting for {what}", self.name),
                Err(e) => format!("{}: timeout waiting for {what}; {e}", self.name),
            }),
        }
    }

    /// The next `method` request (others are left unanswered: they are
    /// retransmissions or ACKs of earlier steps).
    pub(crate) async fn request(&mut self, method: &str, what: &str) -> Result<Incoming> {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let inc = self.next(what, left).await?;
            if inc.msg.method_str() == Some(method) {
                return Ok(inc);
            }
            // Method and status only: the first line's URI carries a number.
            tracing::debug!(
                peer = self.name,
                method = inc.msg.method_str().unwrap_or_default(),
                status = inc.msg.status().unwrap_or(0),
                "skipped"
            );
        }
    }

    /// The final response to our request with Via branch `branch`, and the
    /// provisional status codes before it.
    pub(crate) async fn final_response(&mut self, branch: &str) -> Result<(Message, Vec<u16>)> {
        let deadline = Instant::now() + WAIT;
        let mut provisional = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let inc = self.next("a response", left).await?;
            let m = inc.msg;
            if top_branch(&m).as_deref() != Some(branch) {
                continue;
            }
            match m.status() {
                Some(code) if code >= 200 => return Ok((m, provisional)),
                Some(code) => provisional.push(code),
                None => {}
            }
        }
    }

    /// Answers an INVITE: 180 Ringing, then 200 OK with our SDP (SRTP if
    /// the offer is SRTP). A Microsoft proxy adds Record-Route and its :443
    /// Contact, as Microsoft does.
    pub(crate) async fn answer(&mut self, offer: &Incoming) -> Result<Answered> {
        let tag = unique("t");
        let (audio, contact) = self.answer_with(offer, &tag, true).await?;
        let dialog = Dialog::uas(offer, &tag, &contact, self.agent)?;
        Ok(Answered { audio, dialog })
    }

    /// Answers an INVITE 200 OK with To tag `tag` (after a 180 when
    /// `ringing`); returns our media and our Contact.
    pub(crate) async fn answer_with(
        &self,
        offer: &Incoming,
        tag: &str,
        ringing: bool,
    ) -> Result<(Audio, String)> {
        let remote = Remote::read(offer.msg.body())?;
        let mut audio = if remote.crypto.is_some() {
            Audio::srtp().await?
        } else {
            Audio::rtp().await?
        };
        audio.set_remote(&remote)?;
        let contact = if self.microsoft {
            ms_contact()
        } else {
            let to = value(&offer.msg, "To")
                .map(|v| uri_of(&v))
                .unwrap_or_default();
            let user = to
                .strip_prefix("sip:")
                .and_then(|u| u.split('@').next())
                .unwrap_or("callee")
                .to_owned();
            format!("<sip:{user}@{}>", self.addr)
        };
        let rr = format!("<sip:{MS_PROXY}:5061;transport=tls;lr>");
        let mut headers = vec![("Contact", contact.as_str()), ("Server", self.agent)];
        if self.microsoft {
            headers.push(("Record-Route", rr.as_str()));
            headers.push(("Allow", MS_ALLOW));
        }
        if ringing {
            offer
                .reply(180, "Ringing", Some(tag), &headers, None)
                .await?;
        }
        offer
            .reply(200, "OK", Some(tag), &headers, Some(&audio.sdp()))
            .await?;
        Ok((audio, contact))
    }

    /// Waits for the BYE of `dialog` and answers 200.
    pub(crate) async fn answer_bye(&mut self, dialog: &Dialog) -> Result<()> {
        let bye = self.request("BYE", "the BYE").await?;
        if bye.msg.call_id().ok() != Some(dialog.call_id.as_str()) {
            return Err(format!("{}: BYE for an unknown call", self.name));
        }
        bye.reply(200, "OK", None, &[], None).await
    }

    /// Any TLS problem seen by the accept tasks (wrong or missing client certificate).
    pub(crate) fn tls_ok(&self) -> Result<()> {
        match lock(&self.seen.problems).first() {
            Some(first) => Err(format!("{}: {first}", self.name)),
            None => Ok(()),
        }
    }
}

/// Does what the endpoint's mode says with a message from the SBC: OPTIONS
/// answered on the spot (counted), INVITEs refused or ignored under a
/// fault, everything else queued for the script.
async fn deliver(
    msg: Message,
    link: &Link,
    inbox: &mpsc::UnboundedSender<Incoming>,
    seen: &Seen,
    agent: &str,
) {
    let inc = Incoming {
        msg,
        link: link.clone(),
    };
    match sim::peer::react(seen.mode(), &inc.msg) {
        Reaction::Drop => {}
        Reaction::Keep => lock(&seen.ignored).push(inc),
        Reaction::Refuse { code, retry_after } => {
            seen.refused.fetch_add(1, Ordering::Relaxed);
            let refusal = sim::peer::refusal(&inc.msg, code, retry_after, &unique("r"), agent);
            match refusal {
                Some(r) => send_logged(&inc.link, &r, "refusal").await,
                None => tracing::warn!(code, "refusal not written"),
            }
        }
        Reaction::AnswerOptions => {
            seen.options.fetch_add(1, Ordering::Relaxed);
            if let Some(r) = sim::peer::options_ok(&inc.msg, &unique("o"), agent) {
                send_logged(&inc.link, &r, "OPTIONS answer").await;
            }
        }
        Reaction::Deliver => {
            let _ = inbox.send(inc);
        }
    }
}

async fn send_logged(link: &Link, m: &Message, what: &str) {
    if let Err(e) = link.send(m).await {
        tracing::warn!(%e, "{what} not sent");
    }
}

/// Runs one TLS connection: a writer task draining the link's queue and a
/// reader task cutting the stream into SIP messages; both are registered
/// in `conns` (ended when the endpoint dies).
fn spawn_link<S>(
    stream: S,
    local: SocketAddr,
    names: Vec<String>,
    inbox: mpsc::UnboundedSender<Incoming>,
    seen: Arc<Seen>,
    conns: &Mutex<Vec<JoinHandle<()>>>,
) -> Link
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut rd, mut wr) = tokio::io::split(stream);
    let (tx, mut rx) = mpsc::unbounded_channel::<Bytes>();
    let writer = tokio::spawn(async move {
        while let Some(b) = rx.recv().await {
            if wr.write_all(&b).await.is_err() || wr.flush().await.is_err() {
                break;
            }
        }
    });
    let link = Link::Tls { tx, local, names };
    let l = link.clone();
    let reader = tokio::spawn(async move {
        let mut framer = StreamFramer::new(65535);
        let mut buf = vec![0u8; 16384];
        loop {
            let n = match rd.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            framer.push(&buf[..n]);
            loop {
                match framer.next_frame() {
                    Ok(Some(Frame::Message(bytes))) => {
                        if let Ok(msg) = Message::parse(bytes) {
                            deliver(msg, &l, &inbox, &seen, MS_AGENT).await;
                        }
                    }
                    Ok(Some(Frame::Ping)) => {
                        if let Link::Tls { tx, .. } = &l {
                            if seen.mode() != Mode::Silent {
                                let _ = tx.send(Bytes::from_static(b"\r\n"));
                            }
                        }
                    }
                    Ok(Some(Frame::Pong)) => {}
                    Ok(None) => break,
                    Err(_) => return,
                }
            }
        }
    });
    let mut c = lock(conns);
    c.retain(|h| !h.is_finished());
    c.extend([writer, reader]);
    link
}

/// The TLS configurations of the simulated Microsoft side: the certificate
/// with the names sip/sip2/sip3.pstnhub.microsoft.com, the development CA.
pub(crate) struct MicrosoftTls {
    /// Server side: a client certificate from the CA is required.
    server: Arc<ServerConfig>,
    /// Client side (Teams opening a connection to the SBC).
    pub(crate) client: Arc<ClientConfig>,
}

impl MicrosoftTls {
    pub(crate) fn load(dir: &std::path::Path) -> Result<MicrosoftTls> {
        let profile = TlsProfile {
            identities: vec![IdentityFiles {
                cert: dir.join("microsoft.pem"),
                key: dir.join("microsoft.key"),
            }],
            ca: Some(dir.join("ca.pem")),
            require_client_cert: true,
            peer_names: Vec::new(),
            versions: Vec::new(),
            cipher_suites: Vec::new(),
            kx_groups: Vec::new(),
        };
        Ok(MicrosoftTls {
            server: Arc::new(server_config(&profile).map_err(|e| e.to_string())?),
            client: Arc::new(client_config(&profile).map_err(|e| e.to_string())?),
        })
    }
}

/// What a Microsoft proxy checks on an INVITE from the SBC
/// (teams-acs-requirements §0): numbers in +E.164 with `user=phone`, the
/// Contact host is the trunk's FQDN, X-MS-SBC, an SRTP offer, and the
/// connection's client certificate names the FQDN. Returns a summary.
pub(crate) fn microsoft_rules(inc: &Incoming, fqdn: &str) -> Result<String> {
    let m = &inc.msg;
    let ruri = String::from_utf8_lossy(m.request_uri_raw().unwrap_or_default()).into_owned();
    let e164 = |uri: &str| {
        uri.strip_prefix("sip:").is_some_and(|u| u.starts_with('+')) && uri.contains(";user=phone")
    };
    // A Teams user (x-m, no number) is the one exception: a transfer target.
    if !e164(&ruri) && !ruri.contains(";x-m=") {
        return Err(format!("Request-URI {ruri} is not +E.164 with user=phone"));
    }
    for h in ["From", "To"] {
        let uri = value(m, h).map(|v| uri_of(&v)).unwrap_or_default();
        if !e164(&uri) && !uri.contains(";x-m=") {
            return Err(format!("{h} {uri} is not +E.164 with user=phone"));
        }
    }
    let host = contact_host(m).unwrap_or_default();
    if host != fqdn {
        return Err(format!("Contact host is {host:?}, not {fqdn}"));
    }
    let Some(x_ms_sbc) = value(m, "X-MS-SBC") else {
        return Err("no X-MS-SBC header".into());
    };
    let sdp = Remote::read(m.body())?;
    if sdp.proto != "RTP/SAVP" || sdp.crypto.is_none() {
        return Err(format!(
            "the offer is {} without a=crypto {SUITE}",
            sdp.proto
        ));
    }
    let names = inc.link.names();
    if !names.iter().any(|n| n == fqdn) {
        return Err(format!(
            "the SBC's client certificate names {names:?}, not {fqdn}"
        ));
    }
    Ok(format!(
        "Request-URI {ruri}, Contact host {host}, X-MS-SBC {x_ms_sbc}, SDP RTP/SAVP with a=crypto {SUITE}, client certificate {}",
        names.join(",")
    ))
}

// ----- what the SBC reports --------------------------------------------------

/// One health change the daemon reported.
#[derive(Debug, Clone)]
pub(crate) struct HealthSeen {
    pub(crate) trunk: String,
    pub(crate) host: String,
    pub(crate) up: bool,
    pub(crate) reason: String,
    /// When it reached the embedding program.
    pub(crate) at: Instant,
}

/// The daemon's outputs (its `outputs` hook): health changes and CDRs.
pub(crate) struct Reports {
    outputs: mpsc::UnboundedReceiver<Output>,
    /// Every health change, latest last.
    health: Vec<HealthSeen>,
    cdrs: VecDeque<Box<Cdr>>,
}

impl Reports {
    pub(crate) fn new(outputs: mpsc::UnboundedReceiver<Output>) -> Reports {
        Reports {
            outputs,
            health: Vec::new(),
            cdrs: VecDeque::new(),
        }
    }

    /// Takes in the outputs already reported.
    pub(crate) fn collect(&mut self) {
        while let Ok(o) = self.outputs.try_recv() {
            self.keep(o);
        }
    }

    fn keep(&mut self, o: Output) {
        match o {
            Output::Cdr(c) => self.cdrs.push_back(c),
            Output::Health {
                trunk,
                host,
                up,
                reason,
            } => self.health.push(HealthSeen {
                trunk,
                host,
                up,
                reason,
                at: Instant::now(),
            }),
            Output::Media(_) | Output::Disconnect { .. } | Output::Binding(_) => {}
        }
    }

    /// Waits up to `within` for the next output; false when none came.
    async fn wait(&mut self, within: Duration) -> Result<bool> {
        match timeout(within, self.outputs.recv()).await {
            Ok(Some(o)) => {
                self.keep(o);
                Ok(true)
            }
            Ok(None) => Err("the SBC stopped reporting".into()),
            Err(_) => Ok(false),
        }
    }

    /// The latest health change of `host` on `trunk`: (up, reason).
    pub(crate) fn health_of(&self, trunk: &str, host: &str) -> Option<(bool, String)> {
        self.health
            .iter()
            .rev()
            .find(|h| h.trunk == trunk && h.host == host)
            .map(|h| (h.up, h.reason.clone()))
    }

    /// Waits up to `within` until the latest change of `host` on `trunk`
    /// says `up`; returns that change.
    pub(crate) async fn wait_health(
        &mut self,
        trunk: &str,
        host: &str,
        up: bool,
        within: Duration,
    ) -> Result<HealthSeen> {
        let deadline = Instant::now() + within;
        loop {
            self.collect();
            if let Some(h) = self
                .health
                .iter()
                .rev()
                .find(|h| h.trunk == trunk && h.host == host)
                .filter(|h| h.up == up)
            {
                return Ok(h.clone());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || !self.wait(left).await? {
                let state = if up { "up" } else { "down" };
                return Err(format!(
                    "the SBC did not report {trunk} {host} {state} within {:.1} s",
                    within.as_secs_f32()
                ));
            }
        }
    }

    /// The CDR of the call whose inbound Call-ID is `a_call_id`, waiting up
    /// to `within` (the daemon writes it once the relay's statistics of the
    /// call's media session are in, within a second of the end).
    pub(crate) async fn cdr_of(&mut self, a_call_id: &str, within: Duration) -> Result<Box<Cdr>> {
        let deadline = Instant::now() + within;
        loop {
            self.collect();
            if let Some(i) = self.cdrs.iter().position(|c| c.a_call_id == a_call_id) {
                if let Some(c) = self.cdrs.remove(i) {
                    return Ok(c);
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || !self.wait(left).await? {
                return Err(format!(
                    "no CDR for call {a_call_id} within {:.1} s",
                    within.as_secs_f32()
                ));
            }
        }
    }

    /// The next CDR, waiting up to `within`.
    pub(crate) async fn next_cdr(&mut self, within: Duration) -> Result<Box<Cdr>> {
        let deadline = Instant::now() + within;
        loop {
            self.collect();
            if let Some(c) = self.cdrs.pop_front() {
                return Ok(c);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || !self.wait(left).await? {
                return Err(format!("no CDR within {:.0} s", within.as_secs_f32()));
            }
        }
    }
}

/// A CDR in one line: call, trunks, numbers, status, how it ended, packets,
/// every attempt with its outcome and label.
pub(crate) fn cdr_summary(cdr: &Cdr) -> String {
    format!(
        "call {} {} → {}, {} → {}, status {}, {}, ended by {}, transfers {}, packets {}/{}; attempts: {}",
        cdr.call,
        cdr.from_trunk,
        cdr.to_trunk.as_deref().unwrap_or("-"),
        cdr.calling,
        cdr.called,
        cdr.status,
        cdr.reason,
        cdr.ended_by,
        cdr.transfers,
        cdr.packets[0],
        cdr.packets[1],
        attempts_summary(cdr)
    )
}

/// Every attempt of a CDR: `trunk/peer outcome [label]`, comma-separated.
pub(crate) fn attempts_summary(cdr: &Cdr) -> String {
    let attempts: Vec<String> = cdr
        .attempts
        .iter()
        .map(|a| {
            let label = a
                .label
                .as_ref()
                .map(|l| format!(" [{l}]"))
                .unwrap_or_default();
            format!("{}/{} {}{label}", a.trunk, a.peer, a.outcome)
        })
        .collect();
    attempts.join(", ")
}
