//! Protection in the call core (issue 14): emergency calls are never
//! refused for load (draining, `max_calls`, `max_cps`), calls per second
//! per trunk, multipart bodies with a location (SDP + PIDF-LO, RFC 6442),
//! and requests from sources no trunk accepts.

mod harness;

use std::time::Duration;

use b2bua::{Protect, UnknownSource};
use harness::*;
use routing::regex::Regex;
use routing::{Destination, NumberRule, Route};
use sip::Message;

const CONTACT_443: &str =
    "<sip:api-du-a-euwe.pstnhub.microsoft.com:443;x-i=0a1b2c3d;x-c=f00d/s/1/abc>";

/// A PIDF-LO (RFC 4119 / RFC 5491) as a Teams client's E911 location
/// reaches the SBC: a geodetic point and a civic address.
const PIDF: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n\
<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" xmlns:gp=\"urn:ietf:params:xml:ns:pidf:geopriv10\" xmlns:gml=\"http://www.opengis.net/gml\" xmlns:ca=\"urn:ietf:params:xml:ns:pidf:geopriv10:civicAddr\" xmlns:dm=\"urn:ietf:params:xml:ns:pidf:data-model\" entity=\"pres:+14085551234@contoso.com\">\r\n\
  <dm:device id=\"sbc-test-device\">\r\n\
    <gp:geopriv>\r\n\
      <gp:location-info>\r\n\
        <gml:Point srsName=\"urn:ogc:def:crs:EPSG::4326\"><gml:pos>37.4220 -122.0841</gml:pos></gml:Point>\r\n\
        <ca:civicAddress xml:lang=\"en-US\"><ca:country>US</ca:country><ca:A1>CA</ca:A1><ca:A3>Mountain View</ca:A3><ca:RD>Amphitheatre</ca:RD><ca:STS>Pkwy</ca:STS><ca:HNO>1600</ca:HNO><ca:FLR>2</ca:FLR><ca:PC>94043</ca:PC></ca:civicAddress>\r\n\
      </gp:location-info>\r\n\
      <gp:usage-rules><gp:retransmission-allowed>yes</gp:retransmission-allowed></gp:usage-rules>\r\n\
      <gp:method>Manual</gp:method>\r\n\
    </gp:geopriv>\r\n\
    <dm:deviceID>mac:00155d0a1b2c</dm:deviceID>\r\n\
    <dm:timestamp>2024-05-01T10:00:00Z</dm:timestamp>\r\n\
  </dm:device>\r\n\
</presence>\r\n";

const CID: &str = "target123@contoso.com";

/// The carrier's INVITE to `called` (national format).
fn carrier_invite(call_id: &str, called: &str, extra: &[String], body: &str) -> Message {
    let mut h = vec![
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
    h.extend_from_slice(extra);
    build(
        &format!("INVITE sip:{called}@192.0.2.1:5060 SIP/2.0"),
        &h,
        body,
    )
}

/// Microsoft's INVITE from ELIN-bearing Teams user +14085551234 to `ruri_user`.
fn ms_invite(call_id: &str, ruri: &str, extra: &[String], body: &str) -> Message {
    let mut h =
        vec![
        format!("Via: SIP/2.0/TLS 52.112.1.1:5061;branch=z9hG4bK-{}", token(call_id)),
        "Max-Forwards: 69".into(),
        "From: \"Bob\" <sip:+14085551234@sip.pstnhub.microsoft.com:5061;user=phone>;tag=ms-from"
            .into(),
        "P-Asserted-Identity: <sip:+14085551234@sip.pstnhub.microsoft.com;user=phone>".into(),
        format!("To: <{ruri}>"),
        format!("Call-ID: {call_id}"),
        "CSeq: 1 INVITE".into(),
        format!("Contact: {CONTACT_443}"),
    ];
    h.extend_from_slice(extra);
    build(&format!("INVITE {ruri} SIP/2.0"), &h, body)
}

fn teams_911() -> String {
    format!("sip:911@{TEAMS_FQDN}:5061;user=phone;transport=tls")
}

/// SDP + PIDF-LO, as RFC 6442 §3 sends a location by value.
fn with_location(sdp: &str, boundary: &str) -> (String, Vec<String>) {
    let body = format!(
        "--{boundary}\r\nContent-Type: application/sdp\r\n\r\n{sdp}\r\n--{boundary}\r\nContent-Type: application/pidf+xml\r\nContent-ID: <{CID}>\r\nContent-Disposition: render;handling=optional\r\n\r\n{PIDF}\r\n--{boundary}--\r\n"
    );
    let headers = vec![
        format!("Content-Type: multipart/mixed;boundary={boundary}"),
        format!("Geolocation: <cid:{CID}>"),
        "Geolocation-Routing: yes".into(),
    ];
    (body, headers)
}

/// The parts of a multipart message as (part headers, content).
fn parts(m: &Message) -> Vec<(String, String)> {
    let ct = hdr(m, "Content-Type").unwrap_or_default();
    let b = ct
        .split("boundary=")
        .nth(1)
        .map(|b| b.trim_matches('"').to_owned())
        .unwrap_or_else(|| panic!("no boundary in {ct:?}"));
    let body = body(m);
    let delim = format!("\r\n--{b}");
    let body = format!("\r\n{body}");
    let mut out = Vec::new();
    for chunk in body.split(&delim).skip(1) {
        if chunk.starts_with("--") {
            break;
        }
        let chunk = chunk.strip_prefix("\r\n").unwrap();
        let (h, c) = chunk.split_once("\r\n\r\n").unwrap();
        out.push((h.to_owned(), c.to_owned()));
    }
    out
}

fn final_to(w: &mut World, to: &str) -> Message {
    w.try_take(to, |m| m.status().is_some_and(|s| s >= 200))
        .unwrap_or_else(|| panic!("no final to {to}:\n{}", w.dump()))
}

/// Answers the carrier-side INVITE 200 (plain SDP), ACKs nothing.
fn carrier_answers(w: &mut World, inv: &Message, tag: &str) {
    w.carrier_sends(answer(
        inv,
        200,
        tag,
        &["Contact: <sip:911@192.0.2.10:5060>".to_owned()],
        &carrier_sdp(31000, "sendrecv"),
    ));
}

// ----- emergency calls are never refused for load ----------------------------------

#[test]
fn emergency_call_reaches_teams_at_its_max_calls_and_an_ordinary_one_does_not() {
    let mut cfg = config();
    cfg.trunks[1].max_calls = Some(1);
    let mut w = World::with(cfg);
    // One call fills Teams.
    w.carrier_sends(carrier_invite(
        "first",
        "030123456",
        &[],
        &carrier_sdp(30000, "sendrecv"),
    ));
    let inv = w.take_req(MS[0], "INVITE");
    w.ms_sends(
        0,
        answer(
            &inv,
            200,
            "ms-1",
            &[format!("Contact: {CONTACT_443}")],
            &ms_sdp("52.113.1.1", 49152, MS_KEY1, "sendrecv"),
        ),
    );
    w.take_resp(CARRIER, 200, "INVITE");
    w.clear();
    // An ordinary second call: 503 at the limit.
    w.carrier_sends(carrier_invite(
        "second",
        "030123457",
        &[],
        &carrier_sdp(30010, "sendrecv"),
    ));
    assert_eq!(final_to(&mut w, CARRIER).status(), Some(503));
    // 112 (an emergency number by default) goes to Teams all the same.
    w.carrier_sends(carrier_invite(
        "sos",
        "112",
        &[],
        &carrier_sdp(30020, "sendrecv"),
    ));
    let inv = w.take_req(MS[0], "INVITE");
    assert!(
        ruri(&inv).starts_with("sip:+112@") || ruri(&inv).starts_with("sip:112@"),
        "{}",
        ruri(&inv)
    );
    let c = w.b.counters();
    assert_eq!((c.emergency_calls, c.calls), (1, 3));
    let ids = w.media().emergency.clone();
    assert_eq!(
        ids.len(),
        1,
        "the emergency call's media may take reserved ports"
    );
    // Its CDR says so.
    w.ms_sends(0, answer(&inv, 486, "ms-2", &[], ""));
    let cdrs = w.cdrs();
    let sos = cdrs
        .iter()
        .find(|c| c.called == "112")
        .expect("a CDR for 112");
    assert!(sos.emergency);
    assert!(cdrs
        .iter()
        .filter(|c| c.called != "112")
        .all(|c| !c.emergency));
}

#[test]
fn emergency_call_is_accepted_while_draining() {
    let mut w = World::new();
    w.b.drain();
    w.carrier_sends(carrier_invite(
        "d1",
        "030123456",
        &[],
        &carrier_sdp(30000, "sendrecv"),
    ));
    let r = final_to(&mut w, CARRIER);
    assert_eq!(r.status(), Some(503));
    w.carrier_sends(carrier_invite(
        "d2",
        "112",
        &[],
        &carrier_sdp(30010, "sendrecv"),
    ));
    w.take_req(MS[0], "INVITE");
    assert!(w.try_take(CARRIER, |m| m.status() == Some(503)).is_none());
    assert_eq!(w.b.counters().refused_draining, 1);
    assert_eq!(w.b.counters().emergency_calls, 1);
}

#[test]
fn per_trunk_emergency_numbers_and_sos_urns_are_emergency_calls() {
    let mut cfg = config();
    cfg.trunks[0].emergency.push("110".into());
    // A sos URN from Teams: the inbound rule makes it 911 for the carrier.
    cfg.trunks[1].numbers_in.rules.push(NumberRule {
        pattern: Regex::new(r"^urn:service:sos.*$").unwrap(),
        replace: "911".into(),
        applies: routing::Applies::Called,
    });
    let w = World::with(cfg);
    let inv = carrier_invite("e1", "110", &[], "");
    assert!(w.b.is_emergency(&inv, 0));
    assert!(!w.b.is_emergency(&inv, 1), "110 is the carrier's only");
    assert!(!w.b.is_emergency(&carrier_invite("e2", "0110", &[], ""), 0));
    let urn = ms_invite("e3", "urn:service:sos.fire", &[], "");
    assert!(w.b.is_emergency(&urn, 1));
    assert!(!w
        .b
        .is_emergency(&ms_invite("e4", "urn:service:counseling", &[], ""), 1));
    let mut w = w;
    w.ms_sends(0, urn);
    let out = w.take_req(CARRIER, "INVITE");
    assert!(ruri(&out).starts_with("sip:911@"), "{}", ruri(&out));
    assert_eq!(w.b.counters().emergency_calls, 1);
    // Classified as the daemon's rate limiter would ask.
    let peer = transaction::Peer::new(addr(MS[0]), transaction::Transport::Tls);
    let names = ms_names();
    let msg = ms_invite("e5", &teams_911(), &[], "");
    assert_eq!(
        w.b.classify(&msg, peer, addr(SBC_TLS), Some(&names)),
        Some(1)
    );
}

#[test]
fn a_sos_urn_left_as_it_is_goes_on_as_the_request_uri() {
    let mut cfg = config();
    cfg.routes.routes.insert(
        0,
        Route {
            name: "sos".into(),
            from: vec![],
            called: Some(Regex::new("^urn:service:sos").unwrap()),
            to: vec![Destination::trunk("carrier", None)],
            forward: None,
        },
    );
    let mut w = World::with(cfg);
    w.ms_sends(
        0,
        ms_invite(
            "u1",
            "urn:service:sos",
            &[],
            &ms_sdp("52.113.1.1", 49152, MS_KEY1, "sendrecv"),
        ),
    );
    let out = w.take_req(CARRIER, "INVITE");
    assert_eq!(ruri(&out), "urn:service:sos");
    assert_eq!(hdr(&out, "To").unwrap(), "<urn:service:sos>");
}

// ----- calls per second -------------------------------------------------------------

#[test]
fn inbound_trunk_over_its_cps_gets_503_retry_after_1_but_emergency_calls_pass() {
    let mut cfg = config();
    cfg.trunks[0].max_cps = Some(2);
    let mut w = World::with(cfg);
    for i in 0..2 {
        w.carrier_sends(carrier_invite(
            &format!("c{i}"),
            "030123456",
            &[],
            &carrier_sdp(30000 + i * 10, "sendrecv"),
        ));
        w.take_req(MS[0], "INVITE");
    }
    w.carrier_sends(carrier_invite(
        "c2",
        "030123456",
        &[],
        &carrier_sdp(30100, "sendrecv"),
    ));
    let r = final_to(&mut w, CARRIER);
    assert_eq!(r.status(), Some(503));
    assert_eq!(hdr(&r, "Retry-After").as_deref(), Some("1"));
    assert_eq!(w.b.counters().refused_cps, 1);
    // Beyond the limit, 911 is not refused.
    w.carrier_sends(carrier_invite(
        "c3",
        "911",
        &[],
        &carrier_sdp(30110, "sendrecv"),
    ));
    w.take_req(MS[0], "INVITE");
    assert_eq!(w.b.counters().refused_cps, 1);
    // Half a second refills one call.
    w.advance(Duration::from_millis(500));
    w.clear();
    w.carrier_sends(carrier_invite(
        "c4",
        "030123456",
        &[],
        &carrier_sdp(30120, "sendrecv"),
    ));
    w.take_req(MS[0], "INVITE");
    w.carrier_sends(carrier_invite(
        "c5",
        "030123456",
        &[],
        &carrier_sdp(30130, "sendrecv"),
    ));
    assert_eq!(final_to(&mut w, CARRIER).status(), Some(503));
    assert_eq!(w.b.counters().refused_cps, 2);
}

#[test]
fn destination_over_its_cps_fails_over_to_the_next_destination() {
    let mut cfg = config();
    cfg.trunks[1].max_cps = Some(1);
    cfg.routes.routes[0].to.push(dest("acs", Some("Fail-over")));
    let mut w = World::with(cfg);
    w.carrier_sends(carrier_invite(
        "f1",
        "030123456",
        &[],
        &carrier_sdp(30000, "sendrecv"),
    ));
    let first = w.take_req(MS[0], "INVITE");
    assert!(hdr(&first, "From").unwrap().contains(TEAMS_FQDN));
    // Same instant: Teams has no call left this second, ACS takes it.
    w.carrier_sends(carrier_invite(
        "f2",
        "030123457",
        &[],
        &carrier_sdp(30010, "sendrecv"),
    ));
    let second = w.take_req(MS[0], "INVITE");
    assert!(
        hdr(&second, "From").unwrap().contains(ACS_FQDN),
        "{}",
        text(&second)
    );
    let views = w.b.call_views(w.now, 10);
    let attempts = &views[0].attempts;
    assert_eq!(
        (attempts[0].trunk.as_str(), attempts[0].outcome.as_str()),
        ("teams", "cps")
    );
    assert_eq!(attempts[1].trunk, "acs");
    assert_eq!(
        w.b.counters().refused_cps,
        0,
        "refused_cps counts inbound refusals"
    );
    // An emergency call is still sent to Teams first.
    w.carrier_sends(carrier_invite(
        "f3",
        "112",
        &[],
        &carrier_sdp(30020, "sendrecv"),
    ));
    let sos = w.take_req(MS[0], "INVITE");
    assert!(
        hdr(&sos, "From").unwrap().contains(TEAMS_FQDN),
        "{}",
        text(&sos)
    );
}

// ----- multipart bodies: SDP + PIDF-LO ---------------------------------------------

#[test]
fn pidf_lo_and_geolocation_reach_the_carrier_unchanged_and_the_sdp_is_anchored() {
    let mut w = World::new();
    let offer = ms_sdp("52.113.1.1", 49152, MS_KEY2, "sendrecv");
    let (body, headers) = with_location(&offer, "teams-boundary-1");
    w.ms_sends(0, ms_invite("loc1", &teams_911(), &headers, &body));
    let out = w.take_req(CARRIER, "INVITE");
    // Location headers unchanged.
    assert_eq!(hdrs(&out, "Geolocation"), vec![format!("<cid:{CID}>")]);
    assert_eq!(hdrs(&out, "Geolocation-Routing"), vec!["yes".to_owned()]);
    assert!(hdr(&out, "Content-Type")
        .unwrap()
        .starts_with("multipart/mixed;boundary="));
    let p = parts(&out);
    assert_eq!(p.len(), 2, "{}", text(&out));
    // The SDP part: ours, toward the carrier (relay address, plain RTP).
    assert_eq!(p[0].0, "Content-Type: application/sdp");
    let (ip, port) = sdp_audio(&p[0].1);
    assert_eq!(ip, MEDIA_IP);
    assert_ne!(port, 49152);
    assert!(
        p[0].1.contains("RTP/AVP") && !p[0].1.contains("a=crypto"),
        "{}",
        p[0].1
    );
    assert!(!p[0].1.contains("52.113.1.1"));
    // The PIDF-LO part: byte for byte, headers too.
    assert_eq!(
        p[1].0,
        format!("Content-Type: application/pidf+xml\r\nContent-ID: <{CID}>\r\nContent-Disposition: render;handling=optional")
    );
    assert_eq!(p[1].1, PIDF);
    // ELIN: the calling number is the trunk's rules' (none match +1…), unchanged.
    assert!(
        hdr(&out, "From").unwrap().contains("<sip:+14085551234@"),
        "{}",
        text(&out)
    );
    assert!(hdr(&out, "P-Asserted-Identity")
        .unwrap()
        .contains("+14085551234@"));
    assert_eq!(w.b.counters().emergency_calls, 1);
    // The carrier answers with SDP and a part of its own: the caller gets the SDP.
    let answer_body = format!(
        "--pb\r\nContent-Type: application/sdp\r\n\r\n{}\r\n--pb\r\nContent-Type: text/plain\r\n\r\nPSAP 42\r\n--pb--\r\n",
        carrier_sdp(31000, "sendrecv")
    );
    let mut ok = answer(
        &out,
        200,
        "psap",
        &["Contact: <sip:911@192.0.2.10:5060>".to_owned()],
        "",
    );
    ok.set_body(
        Some("multipart/mixed; boundary=\"pb\""),
        answer_body.as_bytes(),
    )
    .unwrap();
    w.carrier_sends(Message::parse(ok.to_bytes()).unwrap());
    let a_ok = w.take_resp(MS[0], 200, "INVITE");
    assert_eq!(
        hdr(&a_ok, "Content-Type").as_deref(),
        Some("application/sdp")
    );
    assert!(body_of(&a_ok).contains("RTP/SAVP") && body_of(&a_ok).contains(MEDIA_IP));
    let creates = w.media().creates.len();
    assert_eq!(creates, 1);
    let up = w
        .media()
        .updates
        .iter()
        .any(|u| u.rtp.is_some_and(|a| a.port() == 31000));
    assert!(up, "the answer's SDP part reached the relay");
}

#[test]
fn a_multipart_body_without_sdp_is_a_late_offer_and_its_parts_go_on() {
    let mut w = World::new();
    let body = format!(
        "--lo\r\nContent-Type: application/pidf+xml\r\nContent-ID: <{CID}>\r\n\r\n{PIDF}\r\n--lo--\r\n"
    );
    let headers = vec![
        "Content-Type: multipart/mixed;boundary=lo".to_owned(),
        format!("Geolocation: <cid:{CID}>"),
    ];
    w.ms_sends(0, ms_invite("late", &teams_911(), &headers, &body));
    let out = w.take_req(CARRIER, "INVITE");
    let p = parts(&out);
    assert_eq!(p.len(), 2);
    assert_eq!(p[0].0, "Content-Type: application/sdp");
    assert!(
        p[0].1.starts_with("v=0") && p[0].1.contains(MEDIA_IP),
        "our offer: {}",
        p[0].1
    );
    assert_eq!(p[1].1, PIDF);
    carrier_answers(&mut w, &out, "psap");
    let ok = w.take_resp(MS[0], 200, "INVITE");
    assert!(
        body_of(&ok).contains("m=audio"),
        "we offer in the 2xx: {}",
        body_of(&ok)
    );
}

fn body_of(m: &Message) -> String {
    body(m)
}

#[test]
fn a_carrier_multipart_offer_to_teams_keeps_its_location_part() {
    let mut w = World::new();
    let (body, headers) = with_location(&carrier_sdp(30000, "sendrecv"), "carrier=b:x");
    let headers: Vec<String> = headers
        .into_iter()
        .map(|h| h.replace("boundary=carrier=b:x", "boundary=\"carrier=b:x\""))
        .collect();
    w.carrier_sends(carrier_invite("cm", "030123456", &headers, &body));
    let out = w.take_req(MS[0], "INVITE");
    let p = parts(&out);
    assert!(
        p[0].1.contains("RTP/SAVP") && p[0].1.contains("a=crypto"),
        "SRTP toward Teams"
    );
    assert_eq!(p[1].1, PIDF);
    assert_eq!(hdrs(&out, "Geolocation"), vec![format!("<cid:{CID}>")]);
}

#[test]
fn malformed_multipart_bodies_get_400_with_a_reason_and_no_media() {
    let mut w = World::new();
    let sdp = carrier_sdp(30000, "sendrecv");
    // No boundary.
    let (body, _) = with_location(&sdp, "bnd");
    w.carrier_sends(carrier_invite(
        "m1",
        "030123456",
        &["Content-Type: multipart/mixed".into()],
        &body,
    ));
    let r = final_to(&mut w, CARRIER);
    assert_eq!(r.status(), Some(400));
    assert_eq!(
        String::from_utf8_lossy(r.reason().unwrap_or_default()).into_owned(),
        "Multipart Body Without Boundary"
    );
    // Unterminated: the closing delimiter is missing.
    let cut = body.trim_end().trim_end_matches("--bnd--");
    w.carrier_sends(carrier_invite(
        "m2",
        "030123456",
        &["Content-Type: multipart/mixed;boundary=bnd".into()],
        cut,
    ));
    let r = final_to(&mut w, CARRIER);
    assert_eq!(r.status(), Some(400));
    assert_eq!(
        String::from_utf8_lossy(r.reason().unwrap_or_default()).into_owned(),
        "Unterminated Multipart Body"
    );
    assert_eq!(w.b.counters().bad_bodies, 2);
    assert!(w.media().creates.is_empty());
    assert!(w.pending_to(MS[0]).iter().all(|l| !l.starts_with("INVITE")));
}

// ----- unknown sources --------------------------------------------------------------

#[test]
fn unknown_source_is_dropped_silently_when_configured() {
    let mut cfg = config();
    cfg.protect = Protect::new(UnknownSource::Drop);
    let mut w = World::with(cfg);
    let stranger = "198.51.100.99:5060";
    for (i, method) in ["INVITE", "OPTIONS", "REGISTER"].iter().enumerate() {
        let mut m = carrier_invite(
            &format!("s{i}"),
            "030123456",
            &[],
            &carrier_sdp(30000, "sendrecv"),
        );
        if *method != "INVITE" {
            m = build(
                &format!("{method} sip:192.0.2.1:5060 SIP/2.0"),
                &[
                    format!("Via: SIP/2.0/UDP 198.51.100.99:5060;branch=z9hG4bK-s{i}"),
                    "Max-Forwards: 70".into(),
                    "From: <sip:scan@198.51.100.99>;tag=x".into(),
                    "To: <sip:scan@192.0.2.1>".into(),
                    format!("Call-ID: scan-{i}"),
                    format!("CSeq: 1 {method}"),
                ],
                "",
            );
        }
        w.deliver(
            m,
            transaction::Peer::new(addr(stranger), transaction::Transport::Udp),
            addr(SBC_UDP),
            None,
        );
    }
    w.advance(Duration::from_secs(1));
    assert!(
        w.ever_sent_to(stranger).is_empty(),
        "{:?}",
        w.ever_sent_to(stranger)
    );
    assert_eq!(w.b.counters().unclassified, 3);
    assert_eq!(
        w.b.pending_invites(),
        0,
        "a drain does not wait for dropped INVITEs"
    );
    assert!(w.media().creates.is_empty());
    // A known source is served as before.
    w.carrier_sends(carrier_invite(
        "known",
        "030123456",
        &[],
        &carrier_sdp(30000, "sendrecv"),
    ));
    w.take_req(MS[0], "INVITE");
}
