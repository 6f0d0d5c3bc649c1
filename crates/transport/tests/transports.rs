//! The transports on loopback: UDP, TCP framing and keepalives, mutual TLS
//! (accepted, refused without or with a foreign client certificate), SNI,
//! expected peer names, connection reuse, reload, limits, lost connections.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use transport::devpki::DevCa;
use transport::{
    IdentityFiles, Inbound, Limits, ListenerSpec, Lost, LostReason, Peer, SendError, TlsContext,
    TlsProfile, Transport, Transports,
};

const OPTIONS: &[u8] = b"OPTIONS sip:sbc.example.com SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1;branch=z9hG4bK1\r\n\
From: <sip:a@example.com>;tag=1\r\nTo: <sip:sbc.example.com>\r\nCall-ID: t1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";

struct Pki {
    dir: PathBuf,
    ca: DevCa,
    teams: IdentityFiles,
    acs: IdentityFiles,
    ms: IdentityFiles,
    rogue: IdentityFiles,
}

fn pki(tag: &str) -> Pki {
    let dir = std::env::temp_dir().join(format!("sbc-transport-{tag}-{}", std::process::id()));
    let ca = DevCa::create(&dir, "ca").unwrap();
    let teams = ca.issue(&dir, "teams-sbc", &["sbc.contoso.com"]).unwrap();
    let acs = ca.issue(&dir, "acs-sbc", &["acs-sbc.contoso.com"]).unwrap();
    let ms = ca
        .issue(&dir, "microsoft", &["sip.pstnhub.microsoft.com"])
        .unwrap();
    let rogue_ca = DevCa::create(&dir, "rogue-ca").unwrap();
    let rogue = rogue_ca
        .issue(&dir, "rogue", &["sip.pstnhub.microsoft.com"])
        .unwrap();
    Pki {
        dir,
        ca,
        teams,
        acs,
        ms,
        rogue,
    }
}

fn server_profile(p: &Pki, mutual: bool, peer_names: &[&str]) -> TlsProfile {
    TlsProfile {
        identities: vec![p.teams.clone(), p.acs.clone()],
        ca: Some(p.ca.cert.clone()),
        require_client_cert: mutual,
        peer_names: peer_names.iter().map(|s| (*s).to_owned()).collect(),
        versions: vec![],
        cipher_suites: vec![],
        kx_groups: vec![],
    }
}

async fn start(
    specs: Vec<ListenerSpec>,
    limits: Limits,
) -> (Transports, Vec<SocketAddr>, mpsc::Receiver<Inbound>) {
    let (tx, rx) = mpsc::channel(64);
    let (t, addrs) = Transports::bind(&specs, limits, tx).await.unwrap();
    (t, addrs, rx)
}

fn any(transport: Transport, tls: Option<Arc<TlsContext>>) -> ListenerSpec {
    ListenerSpec {
        transport,
        addr: "127.0.0.1:0".parse().unwrap(),
        tls,
    }
}

async fn recv(rx: &mut mpsc::Receiver<Inbound>) -> Inbound {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("timed out")
        .expect("channel open")
}

#[tokio::test]
async fn udp_datagram_in_and_answer_out_of_the_same_socket() {
    let (t, addrs, mut rx) = start(
        vec![any(Transport::Udp, None), any(Transport::Udp, None)],
        Limits::default(),
    )
    .await;
    let client = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    client.send_to(OPTIONS, addrs[1]).await.unwrap();
    // A CRLF keepalive is not a message.
    client.send_to(b"\r\n\r\n", addrs[1]).await.unwrap();
    let m = recv(&mut rx).await;
    assert_eq!(&m.bytes[..], OPTIONS);
    assert_eq!(m.peer.transport, Transport::Udp);
    assert_eq!(m.local, addrs[1]);
    t.send(&m.peer, Bytes::from_static(b"SIP/2.0 200 OK\r\n\r\n"))
        .unwrap();
    let mut buf = [0u8; 100];
    let (n, from) = client.recv_from(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], b"SIP/2.0 200 OK\r\n\r\n");
    assert_eq!(
        from, addrs[1],
        "answered from the socket the request arrived on"
    );
    assert!(rx.try_recv().is_err());
}

#[tokio::test]
async fn stun_binding_requests_on_the_sip_port_are_answered_not_delivered() {
    let (t, addrs, mut rx) = start(vec![any(Transport::Udp, None)], Limits::default()).await;
    let client = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut req = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xA4, 0x42];
    req.extend_from_slice(&[9u8; 12]);
    client.send_to(&req, addrs[0]).await.unwrap();
    let mut buf = [0u8; 100];
    let (n, from) = tokio::time::timeout(Duration::from_secs(5), client.recv_from(&mut buf))
        .await
        .expect("a STUN answer")
        .unwrap();
    assert_eq!(from, addrs[0]);
    assert_eq!(&buf[..2], &[0x01, 0x01], "Binding success");
    assert_eq!(&buf[8..20], &[9u8; 12]);
    let port = u16::from_be_bytes([buf[26], buf[27]]) ^ 0x2112;
    assert_eq!(
        port,
        client.local_addr().unwrap().port(),
        "XOR-MAPPED-ADDRESS is our source"
    );
    assert_eq!(n, 32);
    // SIP still flows on the port; the STUN request never reached the core.
    client.send_to(OPTIONS, addrs[0]).await.unwrap();
    assert_eq!(&recv(&mut rx).await.bytes[..], OPTIONS);
    assert_eq!(t.stats().stun, 1);
}

/// The next UDP destination reported unreachable (within 2 s).
#[cfg(target_os = "linux")]
async fn next_unreachable(errors: &mut mpsc::Receiver<transport::Unreachable>) -> SocketAddr {
    let u = tokio::time::timeout(Duration::from_secs(2), errors.recv())
        .await
        .expect("ICMP port unreachable reported within 2 s")
        .unwrap();
    assert!(u.error.contains("refused"), "{}", u.error);
    u.addr
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn icmp_port_unreachable_names_the_udp_destination() {
    let (t, _addrs, mut rx) = start(vec![any(Transport::Udp, None)], Limits::default()).await;
    let mut errors = t.unreachable().expect("first taker gets the receiver");
    assert!(t.unreachable().is_none());
    // Ports where nobody listens (bound, then closed), and someone who is there.
    let gone: Vec<SocketAddr> = (0..3)
        .map(|_| {
            std::net::UdpSocket::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
        })
        .collect();
    let alive = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let udp = |a: SocketAddr| Peer::new(a, Transport::Udp);
    // Let the runtime learn that the new socket is writable (try_send_to
    // would block before).
    tokio::time::sleep(Duration::from_millis(20)).await;
    // Found by the receiving side: nothing else is sent.
    t.send(&udp(gone[0]), Bytes::from_static(OPTIONS)).unwrap();
    assert_eq!(next_unreachable(&mut errors).await, gone[0]);
    // Found by the next send, to a live peer, whose datagram still goes out.
    let mut buf = [0u8; 1024];
    for to in &gone[1..] {
        let _ = t.send(&udp(*to), Bytes::from_static(OPTIONS));
        t.send(
            &udp(alive.local_addr().unwrap()),
            Bytes::from_static(OPTIONS),
        )
        .unwrap();
        assert_eq!(
            next_unreachable(&mut errors).await,
            *to,
            "the report names the one gone"
        );
        let got = tokio::time::timeout(Duration::from_secs(2), alive.recv_from(&mut buf)).await;
        assert!(
            matches!(got, Ok(Ok(_))),
            "the live peer's datagram was lost"
        );
    }
    assert_eq!(t.stats().unreachable, 3);
    assert!(rx.try_recv().is_err());
}

#[tokio::test]
async fn tcp_frames_messages_and_answers_pings() {
    let (t, addrs, mut rx) = start(vec![any(Transport::Tcp, None)], Limits::default()).await;
    let mut c = TcpStream::connect(addrs[0]).await.unwrap();
    let mut stream = Vec::new();
    stream.extend_from_slice(OPTIONS);
    stream.extend_from_slice(b"\r\n\r\n");
    stream.extend_from_slice(OPTIONS);
    for chunk in stream.chunks(17) {
        c.write_all(chunk).await.unwrap();
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let a = recv(&mut rx).await;
    let b = recv(&mut rx).await;
    assert_eq!((&a.bytes[..], &b.bytes[..]), (OPTIONS, OPTIONS));
    assert_eq!(a.peer, b.peer);
    let mut pong = [0u8; 2];
    c.read_exact(&mut pong).await.unwrap();
    assert_eq!(&pong, b"\r\n");
    t.send(
        &a.peer,
        Bytes::from_static(b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n"),
    )
    .unwrap();
    let mut resp = vec![0u8; 37];
    c.read_exact(&mut resp).await.unwrap();
    assert_eq!(&resp[..], b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(t.stats().pings, 1);
}

#[tokio::test]
async fn framing_error_is_answered_then_closed() {
    let (t, addrs, _rx) = start(vec![any(Transport::Tcp, None)], Limits::default()).await;
    let mut c = TcpStream::connect(addrs[0]).await.unwrap();
    c.write_all(b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK2\r\nCall-ID: x\r\nContent-Length: -5\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), c.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.starts_with("SIP/2.0 400 Bad Content-Length header\r\n"),
        "{text}"
    );
    assert!(text.contains("Call-ID: x\r\n"));
    assert_eq!(t.stats().framing_errors, 1);
}

#[tokio::test]
async fn stalled_and_idle_peers_are_dropped() {
    let limits = Limits {
        idle_timeout: Duration::from_millis(300),
        assembly_timeout: Duration::from_millis(200),
        ..Limits::default()
    };
    let (t, addrs, _rx) = start(vec![any(Transport::Tcp, None)], limits).await;
    let mut lost = t.lost().unwrap();
    // Half a message, then nothing: closed after the assembly timeout.
    let mut slow = TcpStream::connect(addrs[0]).await.unwrap();
    slow.write_all(b"OPTIONS sip:a@b SIP/2.0\r\nVia: x\r\n")
        .await
        .unwrap();
    let mut idle = TcpStream::connect(addrs[0]).await.unwrap();
    let mut buf = Vec::new();
    let r = tokio::time::timeout(Duration::from_secs(3), slow.read_to_end(&mut buf)).await;
    assert!(r.is_ok(), "slow peer not closed");
    let r = tokio::time::timeout(Duration::from_secs(3), idle.read_to_end(&mut buf)).await;
    assert!(r.is_ok(), "idle peer not closed");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(t.stats().timeouts, 2);
    assert_eq!(t.stats().open_connections, 0);
    // The stalled message is the peer's doing (what was pending on that
    // connection is lost); closing an idle connection is ours.
    let l = next_lost(&mut lost).await;
    assert_eq!(
        (l.peer.addr, l.reason, l.outbound),
        (slow.local_addr().unwrap(), LostReason::Stalled, false)
    );
    assert!(lost.try_recv().is_err(), "the idle close is not a loss");
}

/// Opens two connections to `addr` (kept open), then a third, which the
/// listener must close at once.
async fn third_is_closed(addr: SocketAddr, why: &str) -> (TcpStream, TcpStream) {
    let a = TcpStream::connect(addr).await.unwrap();
    let b = TcpStream::connect(addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut c = TcpStream::connect(addr).await.unwrap();
    let mut buf = [0u8; 1];
    let n = tokio::time::timeout(Duration::from_secs(3), c.read(&mut buf))
        .await
        .unwrap();
    assert!(matches!(n, Ok(0) | Err(_)), "{why}");
    (a, b)
}

#[tokio::test]
async fn connection_limit_refuses_the_excess() {
    let limits = Limits {
        max_connections: 2,
        ..Limits::default()
    };
    let (t, addrs, _rx) = start(vec![any(Transport::Tcp, None)], limits).await;
    let (_a, _b) = third_is_closed(addrs[0], "third connection should be closed").await;
    assert_eq!(t.stats().refused, 1);
}

#[tokio::test]
async fn connections_per_source_are_capped_and_a_closed_one_frees_its_slot() {
    let limits = Limits {
        max_connections_per_source: 2,
        ..Limits::default()
    };
    let (t, addrs, _rx) = start(vec![any(Transport::Tcp, None)], limits).await;
    let (a, _b) = third_is_closed(addrs[0], "the third from one source is closed").await;
    let mut buf = [0u8; 1];
    assert_eq!(t.stats().refused_per_source, 1);
    // One closes: its slot is free again.
    drop(a);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut d = TcpStream::connect(addrs[0]).await.unwrap();
    let r = tokio::time::timeout(Duration::from_millis(300), d.read(&mut buf)).await;
    assert!(r.is_err(), "the new connection stays open");
    assert_eq!(t.stats().refused_per_source, 1);
    assert_eq!(t.stats().open_connections, 2);
}

async fn tls_client(
    p: &Pki,
    client: Option<&IdentityFiles>,
    server_name: ServerName<'static>,
    addr: SocketAddr,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let profile = TlsProfile {
        identities: client.into_iter().cloned().collect(),
        ca: Some(p.ca.cert.clone()),
        require_client_cert: false,
        peer_names: vec![],
        versions: vec![],
        cipher_suites: vec![],
        kx_groups: vec![],
    };
    let cfg = transport::tls::client_config(&profile).unwrap();
    let tcp = TcpStream::connect(addr).await?;
    let mut s = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(server_name, tcp)
        .await?;
    // With TLS 1.3 the server verifies the client certificate after the
    // client has finished; a refusal shows on the first read.
    s.write_all(OPTIONS).await?;
    s.flush().await?;
    Ok(s)
}

async fn refused(mut s: tokio_rustls::client::TlsStream<TcpStream>) -> bool {
    let mut buf = [0u8; 16];
    matches!(
        tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await,
        Ok(Ok(0) | Err(_))
    )
}

#[tokio::test]
async fn mutual_tls_accepts_a_trusted_client_and_refuses_others() {
    let p = pki("mtls");
    let ctx = Arc::new(
        TlsContext::new(server_profile(&p, true, &["sip.pstnhub.microsoft.com"])).unwrap(),
    );
    let (t, addrs, mut rx) = start(vec![any(Transport::Tls, Some(ctx))], Limits::default()).await;
    let name = || ServerName::try_from("sbc.contoso.com").unwrap();

    let _ok = tls_client(&p, Some(&p.ms), name(), addrs[0]).await.unwrap();
    let m = recv(&mut rx).await;
    assert_eq!(&m.bytes[..], OPTIONS);
    assert_eq!(m.peer.transport, Transport::Tls);

    // No client certificate.
    if let Ok(s) = tls_client(&p, None, name(), addrs[0]).await {
        assert!(refused(s).await);
    }
    // Signed by a CA we do not trust.
    if let Ok(s) = tls_client(&p, Some(&p.rogue), name(), addrs[0]).await {
        assert!(refused(s).await);
    }
    // Trusted CA, but not the expected peer name.
    if let Ok(s) = tls_client(&p, Some(&p.acs), name(), addrs[0]).await {
        assert!(refused(s).await);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(t.stats().tls_failures, 3);
    assert_eq!(t.stats().accepted, 1);
    assert!(rx.try_recv().is_err(), "no message from a refused client");
    std::fs::remove_dir_all(&p.dir).ok();
}

#[tokio::test]
async fn sni_picks_the_identity_and_no_sni_gets_the_default() {
    let p = pki("sni");
    let ctx = Arc::new(TlsContext::new(server_profile(&p, false, &[])).unwrap());
    let (_t, addrs, _rx) = start(vec![any(Transport::Tls, Some(ctx))], Limits::default()).await;
    // The client verifies the server certificate against the name it asked
    // for: the handshake succeeds only if the right identity was chosen.
    tls_client(
        &p,
        None,
        ServerName::try_from("acs-sbc.contoso.com").unwrap(),
        addrs[0],
    )
    .await
    .unwrap();
    tls_client(
        &p,
        None,
        ServerName::try_from("sbc.contoso.com").unwrap(),
        addrs[0],
    )
    .await
    .unwrap();
    // An IP server name sends no SNI: the default (Teams) identity answers.
    let s = tls_client(
        &p,
        None,
        ServerName::IpAddress("127.0.0.1".parse::<std::net::IpAddr>().unwrap().into()),
        addrs[0],
    )
    .await
    .unwrap();
    let leaf = s.get_ref().1.peer_certificates().unwrap()[0].clone();
    assert_eq!(transport::tls::cert_dns_names(&leaf), ["sbc.contoso.com"]);
    std::fs::remove_dir_all(&p.dir).ok();
}

#[tokio::test]
async fn outbound_tls_checks_the_peer_name_and_reuses_the_connection() {
    let p = pki("out");
    let server = Arc::new(TlsContext::new(server_profile(&p, true, &[])).unwrap());
    let (_s, saddrs, mut srx) =
        start(vec![any(Transport::Tls, Some(server))], Limits::default()).await;
    let client_profile = TlsProfile {
        identities: vec![p.ms.clone()],
        ca: Some(p.ca.cert.clone()),
        require_client_cert: false,
        peer_names: vec![],
        versions: vec!["1.2".into()],
        cipher_suites: vec![],
        kx_groups: vec![],
    };
    let client = Arc::new(TlsContext::new(client_profile).unwrap());
    let (c, _caddrs, _crx) = start(vec![], Limits::default()).await;
    let peer = c
        .connect(
            saddrs[0],
            Transport::Tls,
            Some((client.clone(), "sbc.contoso.com".into())),
        )
        .await
        .unwrap();
    let again = c
        .connect(
            saddrs[0],
            Transport::Tls,
            Some((client.clone(), "sbc.contoso.com".into())),
        )
        .await
        .unwrap();
    assert_eq!(peer, again, "connection reused");
    c.send(&peer, Bytes::from_static(OPTIONS)).unwrap();
    assert_eq!(&recv(&mut srx).await.bytes[..], OPTIONS);
    // The server does not carry the expected name.
    let wrong = c
        .connect(
            saddrs[0],
            Transport::Tls,
            Some((client, "sip.pstnhub.microsoft.com".into())),
        )
        .await;
    assert!(wrong.is_err());
    assert_eq!(c.stats().tls_failures, 1);
    std::fs::remove_dir_all(&p.dir).ok();
}

#[tokio::test]
async fn identities_toward_one_address_get_connections_of_their_own() {
    let p = pki("ident");
    let server = Arc::new(TlsContext::new(server_profile(&p, true, &[])).unwrap());
    let (s, saddrs, mut srx) =
        start(vec![any(Transport::Tls, Some(server))], Limits::default()).await;
    let client = Arc::new(
        TlsContext::new(TlsProfile {
            identities: vec![p.ms.clone()],
            ca: Some(p.ca.cert.clone()),
            require_client_cert: false,
            peer_names: vec![],
            versions: vec![],
            cipher_suites: vec![],
            kx_groups: vec![],
        })
        .unwrap(),
    );
    let (c, _caddrs, mut crx) = start(vec![], Limits::default()).await;
    let tls = || Some((client.clone(), "sbc.contoso.com".to_owned()));
    let to = Peer::new(saddrs[0], Transport::Tls);
    let one = c.connect_as(to.for_trunk(1), tls()).await.unwrap();
    let two = c.connect_as(to.for_trunk(2), tls()).await.unwrap();
    assert_ne!(one.conn, two.conn, "one connection per identity");
    assert_eq!((one.trunk, two.trunk), (Some(1), Some(2)));
    assert_eq!(c.connect_as(to.for_trunk(2), tls()).await.unwrap(), two);
    // What comes back on a connection reports the identity it was opened for.
    c.send(&two, Bytes::from_static(OPTIONS)).unwrap();
    let at_server = recv(&mut srx).await;
    assert_eq!(at_server.peer.trunk, None, "accepted connections name none");
    s.send(&at_server.peer, Bytes::from_static(OPTIONS))
        .unwrap();
    let back = recv(&mut crx).await;
    assert_eq!(back.peer, two);
    std::fs::remove_dir_all(&p.dir).ok();
}

#[tokio::test]
async fn reload_serves_new_certificates_and_close_drops_old_connections() {
    let p = pki("reload");
    let ctx = Arc::new(TlsContext::new(server_profile(&p, false, &[])).unwrap());
    let (t, addrs, _rx) = start(
        vec![any(Transport::Tls, Some(ctx.clone()))],
        Limits::default(),
    )
    .await;
    let name = || ServerName::try_from("sbc.contoso.com").unwrap();
    let old = tls_client(&p, None, name(), addrs[0]).await.unwrap();
    let old_leaf = old.get_ref().1.peer_certificates().unwrap()[0].clone();
    // Re-issue the Teams identity in place and reload.
    p.ca.issue(&p.dir, "teams-sbc", &["sbc.contoso.com"])
        .unwrap();
    ctx.reload().unwrap();
    let new = tls_client(&p, None, name(), addrs[0]).await.unwrap();
    let new_leaf = new.get_ref().1.peer_certificates().unwrap()[0].clone();
    assert_ne!(old_leaf, new_leaf, "new handshakes see the new certificate");
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut lost = t.lost().unwrap();
    assert_eq!(t.close_tls_connections(), 2);
    assert!(refused(old).await, "old connection closed gracefully");
    // The peers close their side after ours: the end of a connection we
    // closed is no loss.
    drop(new);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(lost.try_recv().is_err(), "our own close reported as a loss");
    assert_eq!((t.stats().lost, t.stats().open_connections), (0, 0));
    // A broken file keeps the old configuration in force.
    std::fs::write(&p.teams.cert, "not a certificate").unwrap();
    assert!(ctx.reload().is_err());
    tls_client(&p, None, name(), addrs[0]).await.unwrap();
    std::fs::remove_dir_all(&p.dir).ok();
}

/// The next lost connection (within 2 s).
async fn next_lost(lost: &mut mpsc::Receiver<Lost>) -> Lost {
    tokio::time::timeout(Duration::from_secs(2), lost.recv())
        .await
        .expect("a lost connection reported within 2 s")
        .unwrap()
}

/// Waits (at most 1 s) until sends on `p` are refused.
async fn refused_within_a_second(t: &Transports, p: &Peer) -> bool {
    for _ in 0..100 {
        if t.send(p, Bytes::from_static(b"\r\n\r\n")) == Err(SendError::NoConnection) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

/// Resets a TCP connection (RST: SO_LINGER 0, then close), as the kernel
/// does for a killed process that had unread data.
fn reset(s: TcpStream) {
    socket2::SockRef::from(&s)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(s);
}

#[tokio::test]
async fn a_connection_the_far_end_resets_or_closes_is_reported_with_its_destination() {
    let (t, addrs, mut rx) = start(vec![any(Transport::Tcp, None)], Limits::default()).await;
    let mut lost = t.lost().unwrap();
    assert!(t.lost().is_none(), "one reader");
    // A proxy takes our connection (opened as trunk 2), reads a request,
    // and dies with the request pending.
    let far = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy = far.local_addr().unwrap();
    let to = Peer::new(proxy, Transport::Tcp).for_trunk(2);
    let p = t.connect_as(to, None).await.unwrap();
    let (mut s, _) = far.accept().await.unwrap();
    t.send(&p, Bytes::from_static(OPTIONS)).unwrap();
    let mut got = vec![0u8; OPTIONS.len()];
    s.read_exact(&mut got).await.unwrap();
    reset(s);
    let l = next_lost(&mut lost).await;
    assert_eq!(
        l,
        Lost {
            peer: p,
            outbound: true,
            reason: LostReason::Reset
        },
        "its destination: address, transport, the identity it was opened as, its connection"
    );
    assert_eq!((l.peer.addr, l.peer.trunk), (proxy, Some(2)));
    assert!(refused_within_a_second(&t, &p).await);
    // The next connect opens a new connection (the proxy restarted).
    let again = t.connect_as(to, None).await.unwrap();
    assert_ne!(again.conn, p.conn);
    let (s, _) = far.accept().await.unwrap();
    // A clean close by the far end (FIN) is a loss too: what was sent on
    // it will get no answer there.
    drop(s);
    let l = next_lost(&mut lost).await;
    assert_eq!((l.peer, l.reason), (again, LostReason::Closed));

    // An inbound connection: the client's address and our connection id.
    let c = TcpStream::connect(addrs[0]).await.unwrap();
    let client = c.local_addr().unwrap();
    let mut c = c;
    c.write_all(OPTIONS).await.unwrap();
    let m = recv(&mut rx).await;
    reset(c);
    let l = next_lost(&mut lost).await;
    assert_eq!(
        (l.peer, l.outbound, l.reason),
        (m.peer, false, LostReason::Reset)
    );
    assert_eq!(l.peer.addr, client);
    assert_eq!(t.stats().lost, 3);
    assert!(lost.try_recv().is_err(), "each loss reported once");
}

#[tokio::test]
async fn a_connection_we_close_is_not_reported() {
    let (t, _addrs, _rx) = start(vec![], Limits::default()).await;
    let mut lost = t.lost().unwrap();
    let far = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let to = Peer::new(far.local_addr().unwrap(), Transport::Tcp).for_trunk(0);
    let p = t.connect_as(to, None).await.unwrap();
    let (mut s, _) = far.accept().await.unwrap();
    // We close it (a 503 with Retry-After, a drain): the far end sees our
    // FIN and closes too.
    assert!(t.close_connection(p.conn.unwrap()));
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(2), s.read_to_end(&mut rest))
        .await
        .expect("our FIN")
        .unwrap();
    drop(s);
    assert!(refused_within_a_second(&t, &p).await);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(lost.try_recv().is_err(), "our own close reported as a loss");
    assert_eq!((t.stats().lost, t.stats().open_connections), (0, 0));
}
