//! What the B2BUA's log lines may not say: SRTP key material (SDES
//! `inline:` keys, ours and the peers'), SDP bodies, whole SIP messages,
//! and — with `mask_numbers`, the default — whole phone numbers. Calls
//! with SDES in both directions, a malformed key and a call no route
//! takes are driven with every line captured at TRACE level.

mod harness;

use std::io::Write;
use std::sync::{Arc, Mutex};

use harness::*;
use routing::regex::Regex;
use sip::Message;

/// Log output, collected in memory.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Buffer {
    type Writer = Buffer;
    fn make_writer(&'a self) -> Buffer {
        self.clone()
    }
}

/// Everything logged (TRACE and up, on this thread) while `f` runs.
fn captured(f: impl FnOnce()) -> String {
    let buf = Buffer::default();
    let sub = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(buf.clone())
        .finish();
    tracing::subscriber::with_default(sub, f);
    let out = buf.0.lock().unwrap().clone();
    String::from_utf8(out).unwrap()
}

/// The carrier calls 030123456 from 0891234567 (normalised +49…).
fn carrier_invite(call_id: &str, called: &str) -> Message {
    let h = vec![
        format!(
            "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-{}",
            token(call_id)
        ),
        "Max-Forwards: 70".into(),
        "From: \"Alice\" <sip:0891234567@192.0.2.10>;tag=c-from".into(),
        format!("To: <sip:{called}@192.0.2.1>"),
        format!("Call-ID: {call_id}"),
        "CSeq: 1 INVITE".into(),
        "Contact: <sip:0891234567@192.0.2.10:5060>".into(),
    ];
    build(
        &format!("INVITE sip:{called}@192.0.2.1:5060 SIP/2.0"),
        &h,
        &carrier_sdp(30000, "sendrecv"),
    )
}

fn carrier_in_dialog(method: &str, call_id: &str, our_tag: &str, cseq: u32) -> Message {
    let h = vec![
        format!(
            "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-{method}{cseq}{}",
            token(call_id)
        ),
        "Max-Forwards: 70".into(),
        "From: \"Alice\" <sip:0891234567@192.0.2.10>;tag=c-from".into(),
        format!("To: <sip:030123456@192.0.2.1>;tag={our_tag}"),
        format!("Call-ID: {call_id}"),
        format!("CSeq: {cseq} {method}"),
    ];
    build(
        &format!("{method} sip:+4930123456@sbc.carrier.example:5060 SIP/2.0"),
        &h,
        "",
    )
}

/// Microsoft calls +4989222 from +4930111 with `sdp`.
fn ms_invite(call_id: &str, sdp: &str) -> Message {
    let h = vec![
        format!(
            "Via: SIP/2.0/TLS 52.112.1.1:5061;branch=z9hG4bK-{}",
            token(call_id)
        ),
        "Max-Forwards: 69".into(),
        "From: \"Bob\" <sip:+4930111@sip.pstnhub.microsoft.com:5061;user=phone>;tag=ms-from".into(),
        format!("To: <sip:+4989222@{TEAMS_FQDN}:5061;user=phone>"),
        format!("Call-ID: {call_id}"),
        "CSeq: 1 INVITE".into(),
        "Contact: <sip:api-du-a-euwe.pstnhub.microsoft.com:443;x-i=0a1b2c3d>".into(),
    ];
    build(
        &format!("INVITE sip:+4989222@{TEAMS_FQDN}:5061;user=phone;transport=tls SIP/2.0"),
        &h,
        sdp,
    )
}

/// The key of the `a=crypto` line of `body`.
fn inline_key(body: &str) -> String {
    let line = crypto_line(body).expect("an a=crypto line");
    let key = line.split("inline:").nth(1).expect("an inline key");
    key.split(['|', ' ', '\r']).next().unwrap().to_owned()
}

#[test]
fn logs_show_no_srtp_keys_no_sdp_and_numbers_masked_to_their_last_4_digits() {
    let mut cfg = config();
    // Carrier calls to +4930… only: 089… finds no route.
    cfg.routes.routes[0].called = Some(Regex::new(r"^\+4930").unwrap());
    let mut w = World::with(cfg);
    let mut ours = Vec::new();
    let log = captured(|| {
        // Carrier → Teams: our key in the INVITE, Teams' in its 200.
        w.carrier_sends(carrier_invite("log-1@carrier", "030123456"));
        let inv = w.take_req(MS[0], "INVITE");
        ours.push(inline_key(&body(&inv)));
        let ok = answer(
            &inv,
            200,
            "ms-tag",
            &["Contact: <sip:api-du-a-euwe.pstnhub.microsoft.com:443;x-i=1>".to_owned()],
            &ms_sdp("52.113.1.1", 49152, MS_KEY1, "sendrecv"),
        );
        w.ms_sends(0, ok);
        let _ack = w.take_req(MS[0], "ACK");
        let a_ok = w.take_resp(CARRIER, 200, "INVITE");
        let a_tag = tag(&hdr(&a_ok, "To").unwrap());
        w.carrier_sends(carrier_in_dialog("ACK", "log-1@carrier", &a_tag, 1));
        w.carrier_sends(carrier_in_dialog("BYE", "log-1@carrier", &a_tag, 2));
        w.take_resp(CARRIER, 200, "BYE");
        let bye = w.take_req(MS[0], "BYE");
        w.ms_sends(0, answer(&bye, 200, "ms-tag", &[], ""));
        w.clear();
        // Teams → carrier: Teams' key in the INVITE, ours in our 200.
        w.ms_sends(
            0,
            ms_invite(
                "log-2@ms",
                &ms_sdp("52.113.1.1", 49154, MS_KEY2, "sendrecv"),
            ),
        );
        let c_inv = w.take_req(CARRIER, "INVITE");
        let c_ok = answer(
            &c_inv,
            200,
            "c-tag",
            &["Contact: <sip:089222@192.0.2.10:5060>".to_owned()],
            &carrier_sdp(30002, "sendrecv"),
        );
        w.carrier_sends(c_ok);
        let ms_ok = w.take_resp(MS[0], 200, "INVITE");
        ours.push(inline_key(&body(&ms_ok)));
        w.clear();
        // A key that does not decode: refused, and not quoted.
        let bad = ms_sdp("52.113.1.1", 49156, MS_KEY1, "sendrecv")
            .replace(MS_KEY1, "SECRETSECRET!!notbase64!!SECRETSECRET");
        w.ms_sends(0, ms_invite("log-3@ms", &bad));
        w.take_resp(MS[0], 488, "INVITE");
        w.clear();
        // No route for 089…: 404, and the called number masked.
        w.carrier_sends(carrier_invite("log-4@carrier", "0891239876"));
        w.take_resp(CARRIER, 404, "INVITE");
    });
    assert!(log.contains("new call"), "{log}");
    assert!(log.contains("no route"), "{log}");
    for secret in [MS_KEY1, MS_KEY2, "SECRETSECRET", &ours[0], &ours[1]] {
        // The key itself, and its first half (a key split across fields).
        assert!(
            !log.contains(secret),
            "key material {secret} logged:\n{log}"
        );
        assert!(
            !log.contains(&secret[..secret.len() / 2]),
            "{secret}:\n{log}"
        );
    }
    for sdp in ["inline:", "m=audio", "c=IN IP4", "v=0", "SIP/2.0", "CSeq:"] {
        assert!(
            !log.contains(sdp),
            "{sdp:?} (SDP or a message) logged:\n{log}"
        );
    }
    // Whole numbers, as received and as normalised.
    for number in [
        "030123456",
        "0891234567",
        "891234567",
        "30123456",
        "+4930111",
        "+4989222",
        "891239876",
    ] {
        assert!(!log.contains(number), "{number} logged whole:\n{log}");
    }
    assert!(log.contains("calling=••••••••4567"), "{log}");
    assert!(log.contains("called=•••••••3456"), "{log}");
    assert!(log.contains("called=••••••••9876"), "{log}");
    assert!(log.contains("calling=••••0111"), "{log}");
    // The CDRs are records: they keep the numbers whole.
    let cdrs = w.cdrs();
    assert_eq!(cdrs[0].called, "+4930123456");
}

#[test]
fn logs_show_whole_numbers_when_asked() {
    let mut cfg = config();
    cfg.mask_numbers = false;
    let mut w = World::with(cfg);
    let log = captured(|| {
        w.carrier_sends(carrier_invite("log-5@carrier", "030123456"));
        let _ = w.take_req(MS[0], "INVITE");
    });
    assert!(log.contains("calling=+49891234567"), "{log}");
    assert!(log.contains("called=+4930123456"), "{log}");
}
