//! RFC 3263 against a real DNS server: dnsmasq (Debian `dnsmasq-base`) on a
//! loopback port, serving NAPTR, SRV and A records.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use transport::{DnsConfig, Resolver, Transport};

struct Dnsmasq(Child, SocketAddr);

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn dnsmasq() -> Dnsmasq {
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let records = [
        // carrier.test: NAPTR prefers UDP, then TCP.
        "--naptr-record=carrier.test,10,10,S,SIP+D2U,,_sip._udp.carrier.test",
        "--naptr-record=carrier.test,20,10,S,SIP+D2T,,_sip._tcp.carrier.test",
        "--srv-host=_sip._udp.carrier.test,a.carrier.test,5070,0,10",
        "--srv-host=_sip._tcp.carrier.test,b.carrier.test,5071,0,10",
        "--host-record=a.carrier.test,127.0.0.21",
        "--host-record=b.carrier.test,127.0.0.22",
        // srvonly.test: SRV without NAPTR, two priorities.
        "--srv-host=_sips._tcp.srvonly.test,c1.srvonly.test,5061,10,10",
        "--srv-host=_sips._tcp.srvonly.test,c2.srvonly.test,5062,20,10",
        "--host-record=c1.srvonly.test,127.0.0.23",
        "--host-record=c2.srvonly.test,127.0.0.24",
        // sip.pstnhub.example: A only, as Microsoft's proxies are published.
        "--host-record=sip.pstnhub.example,127.0.0.25",
    ];
    let child = Command::new("dnsmasq")
        .args([
            "--keep-in-foreground",
            "--no-resolv",
            "--no-hosts",
            "--bind-interfaces",
            "--listen-address=127.0.0.1",
            // The TTL of the records above (dnsmasq's default is 0).
            "--local-ttl=30",
        ])
        .args(["--user=root", "--pid-file", "--log-facility=-", "-q"])
        .arg(format!("--port={port}"))
        .args(records)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("dnsmasq (Debian dnsmasq-base) must be installed: scripts/test installs it");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    // Wait until it answers.
    let probe = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    probe
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let query = [
        0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, b'x', 0, 0, 1, 0, 1,
    ];
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let _ = probe.send_to(&query, addr);
        let mut buf = [0u8; 512];
        if probe.recv(&mut buf).is_ok() {
            break;
        }
        assert!(Instant::now() < deadline, "dnsmasq did not start");
    }
    Dnsmasq(child, addr)
}

fn resolver(server: SocketAddr) -> Resolver {
    Resolver::new(DnsConfig {
        servers: vec![server],
        overrides: HashMap::new(),
        ..DnsConfig::default()
    })
    .unwrap()
}

fn pairs(v: &[transport::Target]) -> Vec<(String, Transport)> {
    v.iter()
        .map(|t| (t.addr.to_string(), t.transport))
        .collect()
}

#[tokio::test]
async fn naptr_then_srv_then_addresses() {
    let d = dnsmasq();
    let r = resolver(d.1);
    let t = r.resolve("carrier.test", None, None, false).await.unwrap();
    assert_eq!(
        pairs(&t),
        [
            ("127.0.0.21:5070".to_owned(), Transport::Udp),
            ("127.0.0.22:5071".to_owned(), Transport::Tcp)
        ]
    );
    assert!(t.iter().all(|x| x.server_name == "carrier.test"));
    // sips: only SIPS+D2T rules count; carrier.test has none, and no _sips SRV → A lookup fails.
    assert!(r.resolve("carrier.test", None, None, true).await.is_err());
}

#[tokio::test]
async fn srv_without_naptr_follows_priorities() {
    let d = dnsmasq();
    let r = resolver(d.1);
    let t = r.resolve("srvonly.test", None, None, true).await.unwrap();
    assert_eq!(
        pairs(&t),
        [
            ("127.0.0.23:5061".to_owned(), Transport::Tls),
            ("127.0.0.24:5062".to_owned(), Transport::Tls)
        ]
    );
}

#[tokio::test]
async fn a_records_with_default_or_explicit_port() {
    let d = dnsmasq();
    let r = resolver(d.1);
    // No NAPTR, no SRV: A at the default port; UDP for sip:, TLS for transport=tls.
    let t = r
        .resolve("sip.pstnhub.example", None, None, false)
        .await
        .unwrap();
    assert_eq!(pairs(&t), [("127.0.0.25:5060".to_owned(), Transport::Udp)]);
    let t = r
        .resolve("sip.pstnhub.example", None, Some(Transport::Tls), false)
        .await
        .unwrap();
    assert_eq!(pairs(&t), [("127.0.0.25:5061".to_owned(), Transport::Tls)]);
    // An explicit port: A only.
    let t = r
        .resolve(
            "sip.pstnhub.example",
            Some(5067),
            Some(Transport::Tls),
            false,
        )
        .await
        .unwrap();
    assert_eq!(pairs(&t), [("127.0.0.25:5067".to_owned(), Transport::Tls)]);
    assert_eq!(t[0].server_name, "sip.pstnhub.example");
    assert!(r
        .resolve("nonexistent.test", None, None, false)
        .await
        .is_err());
}

#[tokio::test]
async fn static_overrides_and_ip_literals_need_no_dns() {
    let overrides = HashMap::from([(
        "SIP.pstnhub.microsoft.com".to_owned(),
        vec!["127.0.0.1:5999".parse().unwrap()],
    )]);
    // A name server that does not exist: any query would fail.
    let r = Resolver::new(DnsConfig {
        servers: vec!["127.0.0.1:9".parse().unwrap()],
        overrides,
        ..DnsConfig::default()
    })
    .unwrap();
    let t = r
        .resolve(
            "sip.pstnhub.microsoft.com",
            None,
            Some(Transport::Tls),
            false,
        )
        .await
        .unwrap();
    assert_eq!(pairs(&t), [("127.0.0.1:5999".to_owned(), Transport::Tls)]);
    assert_eq!(
        t[0].server_name, "sip.pstnhub.microsoft.com",
        "the FQDN stays the TLS name"
    );
    let t = r.resolve("[::1]", None, None, true).await.unwrap();
    assert_eq!(pairs(&t), [("[::1]:5061".to_owned(), Transport::Tls)]);
    let t = r
        .resolve("192.0.2.7", Some(5080), None, false)
        .await
        .unwrap();
    assert_eq!(pairs(&t), [("192.0.2.7:5080".to_owned(), Transport::Udp)]);
}

#[tokio::test]
async fn the_answer_says_how_long_it_holds() {
    let d = dnsmasq();
    let r = resolver(d.1);
    let a = r
        .resolve_ttl(
            "sip.pstnhub.example",
            Some(5061),
            Some(Transport::Tls),
            true,
        )
        .await
        .unwrap();
    let ttl = a.ttl.expect("a DNS answer has a TTL");
    assert!(
        ttl <= Duration::from_secs(30) && ttl >= Duration::from_secs(25),
        "{ttl:?}"
    );
    // NAPTR → SRV → A: the shortest-lived record counts (all 30 s here).
    let n = r
        .resolve_ttl("carrier.test", None, None, false)
        .await
        .unwrap();
    assert_eq!(n.targets.len(), 2);
    assert!(n.ttl.is_some_and(|t| t <= Duration::from_secs(30)));
}
