//! The counter table, the Prometheus rendering, the tally of outputs, and
//! the endpoint itself on a loopback port.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Instant;

use super::snapshot::{Kind, LOG_MAX};
use super::*;

fn empty() -> Snapshot {
    Snapshot {
        at: Instant::now(),
        unix_ms: 1_700_000_000_000,
        started_unix_ms: 1_700_000_000_000,
        listening: true,
        draining: false,
        daemon: crate::daemon::Counters::default(),
        b2b: b2bua::Counters::default(),
        transport: transport::Stats::default(),
        relay: relay::RelayStats::default(),
        protect: protect::Counters::default(),
        shield: crate::shield::Counters::default(),
        relay_workers: Vec::new(),
        sip: SipCounts::default(),
        certs: Vec::new(),
        trunk_tls: Vec::new(),
        registrar: None,
        bindings: 0,
        store_dropped: 0,
        active_calls: 0,
        pending_invites: 0,
        transactions: 0,
        peers: Vec::new(),
        tally: Tally::default(),
        calls: Vec::new(),
    }
}

fn cdr(call: u64, attempts: &[(&str, &str, &str)], status: u16) -> b2bua::Output {
    b2bua::Output::Cdr(Box::new(b2bua::Cdr {
        call,
        a_call_id: "a".into(),
        b_call_id: None,
        from_trunk: "carrier".into(),
        to_trunk: attempts.last().map(|a| a.0.to_owned()),
        calling: "+4940111222".into(),
        called: "+4930123456".into(),
        route: None,
        attempts: attempts
            .iter()
            .map(|(t, p, o)| b2bua::AttemptRecord {
                trunk: (*t).into(),
                peer: (*p).into(),
                outcome: (*o).into(),
                at_ms: 0,
                label: None,
            })
            .collect(),
        ringing_ms: None,
        answer_ms: (status == 200).then_some(1000),
        end_ms: 4500,
        status,
        reason: String::new(),
        ended_by: "caller".into(),
        transfers: 0,
        emergency: false,
        packets: [0, 0],
        media_session: None,
    }))
}

#[test]
fn http_every_figure_has_one_key_and_a_well_formed_metric() {
    let mut keys = HashSet::new();
    let mut families = HashSet::new();
    let mut last = "";
    for f in FIGURES.iter().chain(REGISTRAR) {
        assert!(keys.insert(f.key), "key {} twice", f.key);
        assert!(f.metric.starts_with("sbc_"), "{}", f.metric);
        match f.kind {
            Kind::Counter => assert!(f.metric.ends_with("_total"), "{}", f.metric),
            Kind::Gauge => assert!(!f.metric.ends_with("_total"), "{}", f.metric),
        }
        // A family's samples are adjacent, so HELP/TYPE are written once.
        if f.metric != last {
            assert!(families.insert(f.metric), "{} not adjacent", f.metric);
            last = f.metric;
        }
    }
}

#[test]
fn http_metrics_render_each_family_once_with_labels_escaped() {
    let mut s = empty();
    s.daemon.received = 7;
    s.daemon.replied_bad = 2;
    s.daemon.dropped_bad = 3;
    s.b2b.calls = 1;
    s.active_calls = 1;
    s.peers.push(PeerRow {
        trunk: "teams".into(),
        kind: "teams".into(),
        host: "sip\"2\".example".into(),
        transport: "TLS".into(),
        state: "down",
        reason: "timeout".into(),
        since_unix_ms: 1_700_000_001_500,
        options: true,
        rtt: Some(Duration::from_micros(12_345)),
    });
    s.tally.note(
        &cdr(1, &[("teams", "a", "503"), ("acs", "b", "answered")], 200),
        0,
    );
    let text = metrics::render(&s);
    for line in [
        "sbc_sip_messages_received_total 7",
        "sbc_bad_input_total{action=\"replied\"} 2",
        "sbc_bad_input_total{action=\"dropped\"} 3",
        "sbc_calls_total 1",
        "sbc_calls_active 1",
        "sbc_peer_up{trunk=\"teams\",peer=\"sip\\\"2\\\".example\"} 0",
        "sbc_peer_last_change_timestamp_seconds{trunk=\"teams\",peer=\"sip\\\"2\\\".example\"} 1700000001.500",
        "sbc_calls_ended_total{from_trunk=\"carrier\",to_trunk=\"acs\",outcome=\"answered\"} 1",
        "sbc_call_attempts_total{trunk=\"teams\",peer=\"a\",outcome=\"503\"} 1",
        "sbc_call_answered_seconds_total{trunk=\"acs\",peer=\"b\"} 3.500",
        "sbc_cdrs_total 1",
        "# TYPE sbc_calls_active gauge",
        "# TYPE sbc_bad_input_total counter",
    ] {
        assert!(text.lines().any(|l| l == line), "{line:?} not in\n{text}");
    }
    assert_eq!(text.matches("# TYPE sbc_bad_input_total ").count(), 1);
    // Without [phones], no registrar figures.
    assert!(!text.contains("sbc_registrations"), "{text}");
    s.registrar = Some(registrar::Counters::default());
    s.bindings = 4;
    assert!(metrics::render(&s)
        .lines()
        .any(|l| l == "sbc_registrations 4"));
}

#[test]
fn http_tally_logs_failovers_and_health_changes_and_keeps_the_last_100() {
    let mut t = Tally::default();
    t.note(&cdr(1, &[("teams", "a", "answered")], 200), 10);
    assert!(t.log.is_empty(), "a call on its first path is no failover");
    t.note(
        &cdr(2, &[("teams", "a", "timeout"), ("acs", "b", "486")], 486),
        20,
    );
    assert_eq!(t.log.len(), 1);
    assert!(
        t.log[0].what.contains("teams/a timeout → acs/b 486"),
        "{:?}",
        t.log
    );
    assert_eq!(t.calls[&("carrier".into(), "acs".into(), "busy")], 1);
    t.note(
        &b2bua::Output::Health {
            trunk: "teams".into(),
            host: "a".into(),
            up: false,
            reason: "timeout".into(),
        },
        30,
    );
    assert_eq!(t.changed[&("teams".into(), "a".into())], 30);
    assert_eq!(t.log.back().unwrap().what, "teams/a down: timeout");
    for i in 0..200 {
        t.note(
            &cdr(i, &[("x", "y", "503"), ("z", "w", "answered")], 200),
            40,
        );
    }
    assert_eq!(t.log.len(), LOG_MAX);
    assert!(t.log[0].what.starts_with("call 100 "), "{:?}", t.log[0]);
}

/// One GET over loopback (5 s at most); the status code and the body.
fn get(addr: SocketAddr, path: &str, auth: Option<&str>) -> (u16, String) {
    let mut c = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let auth = auth
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        c,
        "GET {path} HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut r = String::new();
    c.read_to_string(&mut r).unwrap();
    let code = r[9..12].parse().unwrap();
    let body = r
        .split_once("\r\n\r\n")
        .map(|x| x.1.to_owned())
        .unwrap_or_default();
    (code, body)
}

#[test]
fn http_endpoint_serves_ready_until_draining_and_wants_its_token() {
    let (tx, rx) = watch::channel(None);
    let settings = HttpSettings {
        addr: "127.0.0.1:0".parse().unwrap(),
        token: Some("0123456789abcdef".into()),
        show_numbers: false,
    };
    let addr = start(&settings, rx).unwrap();
    // No snapshot yet: starting.
    assert_eq!(get(addr, "/health", None).0, 503);
    assert_eq!(get(addr, "/ready", None).0, 503);
    let mut s = empty();
    tx.send_replace(Some(Arc::new(s.clone())));
    assert_eq!(get(addr, "/health", None), (200, "ok\n".into()));
    assert_eq!(get(addr, "/ready", None), (200, "ready\n".into()));
    assert_eq!(get(addr, "/metrics", None).0, 401);
    assert_eq!(get(addr, "/metrics", Some("0123456789abcdeX")).0, 401);
    let (code, body) = get(addr, "/metrics", Some("0123456789abcdef"));
    assert_eq!(code, 200);
    assert!(body.contains("\nsbc_draining 0\n"), "{body}");
    assert_eq!(get(addr, "/status.json", None).0, 401);
    let (code, body) = get(addr, "/status.json", Some("0123456789abcdef"));
    assert_eq!(code, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["draining"], false);
    assert_eq!(v["numbers"], "masked");
    s.draining = true;
    tx.send_replace(Some(Arc::new(s.clone())));
    assert_eq!(get(addr, "/ready", None), (503, "draining\n".into()));
    assert_eq!(get(addr, "/health", None).0, 200);
    // A loop that stopped publishing is not healthy.
    s.at = Instant::now() - Duration::from_secs(6);
    tx.send_replace(Some(Arc::new(s)));
    assert_eq!(
        get(addr, "/health", None),
        (503, "SIP loop stalled\n".into())
    );
    assert_eq!(get(addr, "/nothing", None).0, 404);
    drop(tx);
}

#[test]
fn http_numbers_are_masked_to_their_last_4_digits() {
    let mut s = empty();
    s.calls.push(b2bua::CallView {
        id: 1,
        state: "answered",
        from_trunk: "carrier".into(),
        to_trunk: Some("teams".into()),
        to_peer: None,
        calling: "+49401112222".into(),
        called: "+49301234567".into(),
        route: None,
        age: Duration::from_secs(3),
        answered_for: None,
        attempts: Vec::new(),
    });
    let v = status::render(&s, false);
    assert_eq!(v["calls"][0]["called"], "••••••••4567");
    assert_eq!(v["calls"][0]["calling"], "••••••••2222");
    let v = status::render(&s, true);
    assert_eq!(v["calls"][0]["called"], "+49301234567");
}

#[test]
fn http_metrics_render_messages_by_method_and_code_media_and_rtt() {
    let mut s = empty();
    let invite = sip::Message::parse(bytes::Bytes::from_static(
        b"INVITE sip:+4930@x SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
    ))
    .unwrap();
    s.sip.received(&invite);
    s.sip.sent(b"SIP/2.0 100 Trying\r\n\r\n");
    s.sip.sent(b"SIP/2.0 200 OK\r\n\r\n");
    s.sip.sent(b"INVITE sip:x SIP/2.0\r\n\r\n");
    s.relay.packets = 100;
    s.relay.bytes = 17_200;
    s.relay.auth_failures = 2;
    s.relay_workers = vec![
        relay::WorkerLoad {
            sessions: 1,
            packets: 100,
        },
        relay::WorkerLoad::default(),
    ];
    s.peers.push(PeerRow {
        trunk: "teams".into(),
        kind: "teams".into(),
        host: "sip.pstnhub.microsoft.com".into(),
        transport: "TLS".into(),
        state: "up",
        reason: String::new(),
        since_unix_ms: 1_700_000_000_000,
        options: true,
        rtt: Some(Duration::from_micros(12_345)),
    });
    s.certs.push(certs::CertRow {
        profile: "teams".into(),
        subject: "sbc.contoso.com".into(),
        not_after: Some(1_800_000_000),
    });
    let text = metrics::render(&s);
    for line in [
        "sbc_sip_requests_total{direction=\"in\",method=\"INVITE\"} 1",
        "sbc_sip_requests_total{direction=\"in\",method=\"BYE\"} 0",
        "sbc_sip_requests_total{direction=\"out\",method=\"INVITE\"} 1",
        "sbc_sip_requests_total{direction=\"out\",method=\"other\"} 0",
        "sbc_sip_responses_total{direction=\"out\",code=\"100\"} 1",
        "sbc_sip_responses_total{direction=\"out\",code=\"200\"} 1",
        "sbc_media_packets_total 100",
        "sbc_media_bytes_total 17200",
        "sbc_srtp_auth_failures_total 2",
        "sbc_relay_worker_sessions{worker=\"0\"} 1",
        "sbc_relay_worker_sessions{worker=\"1\"} 0",
        "sbc_relay_worker_packets_total{worker=\"0\"} 100",
        "sbc_peer_options_rtt_seconds{trunk=\"teams\",peer=\"sip.pstnhub.microsoft.com\"} 0.012345",
        "sbc_tls_certificate_expiry_timestamp_seconds{profile=\"teams\",subject=\"sbc.contoso.com\"} 1800000000",
        "# TYPE sbc_sip_responses_total counter",
        "# TYPE sbc_relay_worker_sessions gauge",
    ] {
        assert!(text.lines().any(|l| l == line), "{line:?} not in\n{text}");
    }
    // Only the codes seen; every method always.
    assert!(!text.contains("direction=\"in\",code="), "{text}");
    assert_eq!(text.matches("sbc_sip_requests_total{").count(), 30);
    // Each family once.
    for family in [
        "sbc_sip_requests_total",
        "sbc_sip_responses_total",
        "sbc_peer_options_rtt_seconds",
        "sbc_tls_certificate_expiry_timestamp_seconds",
    ] {
        assert_eq!(
            text.matches(&format!("# TYPE {family} ")).count(),
            1,
            "{family}"
        );
    }
    let v = status::render(&s, false);
    assert_eq!(v["peers"][0]["rtt_ms"], 12.345);
}

#[test]
fn http_certificates_follow_a_reload_and_are_shown_per_trunk() {
    let dir = std::env::temp_dir().join(format!("sbc-http-certs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let ca = transport::devpki::DevCa::create(&dir, "ca").unwrap();
    let at = |unix: u64| Some(std::time::UNIX_EPOCH + Duration::from_secs(unix));
    let issue = |not_after| {
        let mut o = transport::devpki::LeafOptions::new(&["sbc.contoso.com"]);
        o.not_after = not_after;
        ca.issue_with(&dir, "teams", &o).unwrap()
    };
    let files = issue(at(1_800_000_000));
    let ctx = Arc::new(
        transport::TlsContext::new(transport::TlsProfile {
            identities: vec![files],
            ca: None,
            require_client_cert: false,
            peer_names: Vec::new(),
            versions: Vec::new(),
            cipher_suites: Vec::new(),
            kx_groups: Vec::new(),
        })
        .unwrap(),
    );
    let (teams, listener) = ("teams".to_owned(), "listener".to_owned());
    let watch = CertWatch::new([(&teams, &ctx), (&listener, &ctx), (&teams, &ctx)]);
    let rows = watch.rows();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0].profile, "listener");
    assert_eq!(rows[1].subject, "sbc.contoso.com");
    assert_eq!(rows[1].not_after, Some(1_800_000_000));
    // A reload with a renewed certificate shows at the next snapshot.
    issue(at(1_900_000_000));
    assert_eq!(
        watch.rows()[1].not_after,
        Some(1_800_000_000),
        "not reloaded yet"
    );
    ctx.reload().unwrap();
    assert_eq!(watch.rows()[1].not_after, Some(1_900_000_000));
    // On the page: by trunk, then the profiles no trunk names.
    let mut s = empty();
    s.unix_ms = 1_899_913_600_000; // one day before
    s.certs = watch.rows();
    s.trunk_tls = vec![
        ("carrier".into(), None),
        ("teams".into(), Some("teams".into())),
    ];
    let v = status::render(&s, false);
    let c = v["certificates"].as_array().unwrap();
    assert_eq!(c.len(), 2, "{c:?}");
    assert_eq!(c[0]["trunk"], "teams");
    assert_eq!(c[0]["days_left"], 1);
    assert_eq!(c[1]["trunk"], serde_json::Value::Null);
    assert_eq!(c[1]["profile"], "listener");
    let _ = std::fs::remove_dir_all(&dir);
}
