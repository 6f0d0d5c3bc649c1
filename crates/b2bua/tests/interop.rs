//! Carrier and gateway interop (issue 15) in virtual time: the payload
//! types each party declared reach the relay (which renumbers RFC 4733
//! telephone-events and comfort noise between the legs), comfort noise
//! stays in the SDP both ways, a T.38 re-INVITE between the carrier and
//! an analog gateway is relayed on the same relay ports and back to audio,
//! refused with 488 toward Teams or a `t38 = false` trunk, undone when the
//! far end refuses it, and telephone-events become SIP INFO toward a
//! `dtmf = "info"` trunk.

mod harness;

use harness::*;
use media::control::{PayloadFormat, PayloadSpec, Side};
use sip::Message;
use transaction::{Peer, Transport};
use trunk::{DtmfMode, PeerSpec, TrunkKind, TrunkSpec};

const GATEWAY: &str = "192.0.2.20:5060";

/// The harness's trunks and a gateway; the carrier's calls to +4940…
/// go to the gateway, the others to Teams.
fn config(gateway: impl FnOnce(&mut TrunkSpec)) -> b2bua::Config {
    let mut cfg = harness::config();
    let mut gw = TrunkSpec::new("gateway", TrunkKind::Gateway, "sbc.gateway.example");
    gw.peers = vec![PeerSpec {
        host: "192.0.2.20".into(),
        port: 5060,
        transport: Transport::Udp,
        addr: Some(addr(GATEWAY)),
    }];
    gateway(&mut gw);
    cfg.trunks.push(gw);
    let mut to_gw = route("to-gateway", "carrier", vec![dest("gateway", None)]);
    to_gw.called = Some(routing::regex::Regex::new(r"^\+4940").unwrap());
    cfg.routes.routes.insert(0, to_gw);
    cfg
}

fn world(gateway: impl FnOnce(&mut TrunkSpec)) -> World {
    let mut w = World::with(config(gateway));
    w.add_peer("gateway", GATEWAY, Transport::Udp);
    w
}

fn gateway_sends(w: &mut World, msg: Message) {
    w.0.deliver(
        msg,
        Peer::new(addr(GATEWAY), Transport::Udp),
        addr(SBC_UDP),
        None,
    );
}

/// The carrier's INVITE to national number `called`.
fn carrier_invite(call_id: &str, called: &str, sdp: &str) -> Message {
    let h = vec![
        format!(
            "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-{}",
            token(call_id)
        ),
        "Max-Forwards: 70".into(),
        "From: <sip:0891234567@192.0.2.10>;tag=c-from".into(),
        format!("To: <sip:{called}@192.0.2.1>"),
        format!("Call-ID: {call_id}"),
        "CSeq: 1 INVITE".into(),
        "Contact: <sip:0891234567@192.0.2.10:5060>".into(),
    ];
    build(
        &format!("INVITE sip:{called}@192.0.2.1:5060 SIP/2.0"),
        &h,
        sdp,
    )
}

/// A carrier request in its dialog (our tag `our_tag`).
fn carrier_in_dialog(method: &str, call_id: &str, our_tag: &str, cseq: u32, sdp: &str) -> Message {
    let h = vec![
        format!(
            "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-{method}{cseq}{}",
            token(call_id)
        ),
        "Max-Forwards: 70".into(),
        "From: <sip:0891234567@192.0.2.10>;tag=c-from".into(),
        format!("To: <sip:x@192.0.2.1>;tag={our_tag}"),
        format!("Call-ID: {call_id}"),
        format!("CSeq: {cseq} {method}"),
        "Contact: <sip:0891234567@192.0.2.10:5060>".into(),
    ];
    build(
        &format!("{method} sip:x@sbc.carrier.example:5060 SIP/2.0"),
        &h,
        sdp,
    )
}

/// The carrier's audio: PCMA, telephone-event on 96, comfort noise 13 and
/// a dynamic CN on 98.
fn carrier_audio(port: u16, version: u32) -> String {
    format!(
        "v=0\r\no=carrier 1 {version} IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 8 96 13 98\r\na=rtpmap:8 PCMA/8000\r\n\
         a=rtpmap:96 telephone-event/8000\r\na=fmtp:96 0-15\r\na=rtpmap:98 CN/8000\r\n\
         a=ptime:20\r\na=sendrecv\r\n"
    )
}

/// A T.38 offer or answer (audio replaced by the image stream).
fn t38(ip: &str, port: u16, version: u32) -> String {
    format!(
        "v=0\r\no=fax 1 {version} IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=image {port} udptl t38\r\na=T38FaxVersion:0\r\na=T38MaxBitRate:14400\r\n\
         a=T38FaxRateManagement:transferredTCF\r\na=T38FaxMaxBuffer:262\r\n\
         a=T38FaxMaxDatagram:176\r\na=T38FaxUdpEC:t38UDPRedundancy\r\n"
    )
}

/// The gateway's audio answer (no telephone-event unless `events`).
fn gateway_audio(port: u16, version: u32, events: bool) -> String {
    let (fmt, map) = if events {
        (" 100", "a=rtpmap:100 telephone-event/8000\r\n")
    } else {
        ("", "")
    };
    format!(
        "v=0\r\no=gw 1 {version} IN IP4 198.51.100.20\r\ns=-\r\nc=IN IP4 198.51.100.20\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 8{fmt}\r\na=rtpmap:8 PCMA/8000\r\n{map}a=sendrecv\r\n"
    )
}

/// An established carrier → gateway call: the carrier's Call-ID and our
/// tag toward it, and the gateway's INVITE (its dialog).
struct ToGateway {
    call_id: String,
    our_tag: String,
    invite: Message,
}

fn call_gateway(w: &mut World, gw_events: bool) -> ToGateway {
    let call_id = w.unique("c-gw-");
    w.carrier_sends(carrier_invite(
        &call_id,
        "040123456",
        &carrier_audio(30000, 1),
    ));
    let invite = w.take_req(GATEWAY, "INVITE");
    let ok = answer(
        &invite,
        200,
        "gw-tag",
        &["Contact: <sip:fxs@192.0.2.20:5060>".to_owned()],
        &gateway_audio(20000, 1, gw_events),
    );
    gateway_sends(w, ok);
    let _ack = w.take_req(GATEWAY, "ACK");
    let a_ok = w.take_resp(CARRIER, 200, "INVITE");
    let our_tag = tag(&hdr(&a_ok, "To").unwrap());
    w.carrier_sends(carrier_in_dialog("ACK", &call_id, &our_tag, 1, ""));
    w.clear();
    ToGateway {
        call_id,
        our_tag,
        invite,
    }
}

/// A request from the gateway in its dialog of `c`.
fn gateway_in_dialog(c: &ToGateway, method: &str, cseq: u32, sdp: &str) -> Message {
    let h = vec![
        format!("Via: SIP/2.0/UDP 192.0.2.20:5060;branch=z9hG4bK-gw{method}{cseq}"),
        "Max-Forwards: 70".into(),
        format!("From: {};tag=gw-tag", hdr(&c.invite, "To").unwrap()),
        format!("To: {}", hdr(&c.invite, "From").unwrap()),
        format!("Call-ID: {}", c.invite.call_id().unwrap()),
        format!("CSeq: {cseq} {method}"),
        "Contact: <sip:fxs@192.0.2.20:5060>".into(),
    ];
    let target = hdr(&c.invite, "Contact").unwrap();
    let uri = target.trim_start_matches('<').trim_end_matches('>');
    build(&format!("{method} {uri} SIP/2.0"), &h, sdp)
}

fn formats(spec: &PayloadSpec) -> Vec<(u8, String)> {
    spec.formats
        .iter()
        .map(|f| (f.pt, f.encoding.to_ascii_lowercase()))
        .collect()
}

fn session(w: &World) -> u64 {
    w.media().creates.last().expect("a session").2.id
}

#[test]
fn each_partys_payload_types_reach_the_relay_and_comfort_noise_stays_both_ways() {
    let mut w = World::new();
    w.carrier_sends(carrier_invite(
        "c-pt",
        "030123456",
        &carrier_audio(30000, 1),
    ));
    let inv = w.take_req(MS[0], "INVITE");
    let offer = body(&inv);
    // Comfort noise, static and dynamic, and the carrier's own 96 go to Teams.
    assert!(offer.contains("RTP/SAVP 8 96 13 98"), "{offer}");
    assert!(offer.contains("a=rtpmap:98 CN/8000"), "{offer}");
    assert!(
        offer.contains("a=rtpmap:96 telephone-event/8000"),
        "{offer}"
    );
    let id = session(&w);
    let a = w.media().payload_of(id, Side::A).unwrap();
    assert_eq!(
        formats(&a),
        [(8, "pcma"), (96, "telephone-event"), (13, "cn"), (98, "cn")]
            .map(|(p, e)| (p, e.to_owned()))
    );
    // Teams answers with its own numbering: telephone-event 101, CN 13.
    let ok = answer(
        &inv,
        200,
        "ms",
        &[
            "Contact: <sip:api.pstnhub.microsoft.com:443>".to_owned(),
            "Record-Route: <sip:sip.pstnhub.microsoft.com:5061;transport=tls;lr>".to_owned(),
        ],
        &ms_sdp("52.113.1.1", 49152, MS_KEY1, "sendrecv"),
    );
    w.ms_sends(0, ok);
    let a_ok = w.take_resp(CARRIER, 200, "INVITE");
    let b = body(&a_ok);
    assert!(b.contains("RTP/AVP 8 0 101 13"), "{b}");
    assert!(
        b.contains("a=rtpmap:13 CN/8000"),
        "CN back to the carrier: {b}"
    );
    let spec = w.media().payload_of(id, Side::B).unwrap();
    assert!(!spec.raw);
    assert_eq!(
        spec.telephone_event(),
        Some(&PayloadFormat::new(101, "telephone-event", 8000))
    );
    // What the relay derives from the two: 96 → 101 toward Teams, back the other way.
    let a = w.media().payload_of(id, Side::A).unwrap();
    let to_teams = media::control::PtMap::between(&a, &spec).unwrap();
    assert_eq!((to_teams.get(96), to_teams.get(98)), (101, 13));
    let to_carrier = media::control::PtMap::between(&spec, &a).unwrap();
    assert_eq!(to_carrier.get(101), 96);
}

#[test]
fn t38_reinvite_reaches_the_gateway_on_the_same_relay_ports_and_audio_comes_back() {
    let mut w = world(|_| {});
    let c = call_gateway(&mut w, true);
    let id = session(&w);
    let info = w.media().creates.last().unwrap().2;
    // The carrier's fax machine: a re-INVITE to T.38.
    w.carrier_sends(carrier_in_dialog(
        "INVITE",
        &c.call_id,
        &c.our_tag,
        2,
        &t38("198.51.100.7", 30004, 2),
    ));
    let re = w.take_req(GATEWAY, "INVITE");
    let sdp = body(&re);
    let want_m = format!("m=image {} udptl t38", info.b.rtp.port());
    assert!(
        sdp.contains(&want_m),
        "image on the gateway leg's port: {sdp}"
    );
    assert!(sdp.contains(&format!("c=IN IP4 {MEDIA_IP}")), "{sdp}");
    for a in [
        "a=T38FaxVersion:0",
        "a=T38MaxBitRate:14400",
        "a=T38FaxRateManagement:transferredTCF",
        "a=T38FaxUdpEC:t38UDPRedundancy",
    ] {
        assert!(sdp.contains(a), "{a} kept: {sdp}");
    }
    assert!(!sdp.contains("a=rtcp") && !sdp.contains("crypto"), "{sdp}");
    assert!(
        !sdp.contains("198.51.100.7"),
        "carrier address leaked: {sdp}"
    );
    // The relay's carrier side is a raw stream toward the fax machine's port.
    assert_eq!(w.media().payload_of(id, Side::A), Some(PayloadSpec::raw()));
    let upd = w.media().updates_of(Side::A);
    assert_eq!(upd.last().unwrap().rtp, Some(addr("198.51.100.7:30004")));
    // The gateway accepts.
    let ok = answer(&re, 200, "gw-tag", &[], &t38("198.51.100.20", 20002, 2));
    gateway_sends(&mut w, ok);
    let _ack = w.take_req(GATEWAY, "ACK");
    let ok = w.take_resp(CARRIER, 200, "INVITE");
    let sdp = body(&ok);
    let want_m = format!("m=image {} udptl t38", info.a.rtp.port());
    assert!(
        sdp.contains(&want_m),
        "image on the carrier leg's port: {sdp}"
    );
    assert!(sdp.contains("a=T38FaxMaxDatagram:176"), "{sdp}");
    assert_eq!(w.media().payload_of(id, Side::B), Some(PayloadSpec::raw()));
    w.carrier_sends(carrier_in_dialog("ACK", &c.call_id, &c.our_tag, 2, ""));
    // The fax is done: the gateway goes back to audio.
    w.clear();
    gateway_sends(
        &mut w,
        gateway_in_dialog(&c, "INVITE", 2, &gateway_audio(20000, 3, true)),
    );
    let re = w.take_req(CARRIER, "INVITE");
    let sdp = body(&re);
    assert!(
        sdp.contains(&format!("m=audio {} RTP/AVP 8 100", info.a.rtp.port())),
        "{sdp}"
    );
    let ok = answer(&re, 200, "c-from", &[], &carrier_audio(30000, 3));
    w.carrier_sends(ok);
    let ok = w.take_resp(GATEWAY, 200, "INVITE");
    assert!(body(&ok).contains("m=audio"), "{}", body(&ok));
    let a = w.media().payload_of(id, Side::A).unwrap();
    let b = w.media().payload_of(id, Side::B).unwrap();
    assert!(!a.raw && !b.raw);
    assert_eq!(a.telephone_event().map(|f| f.pt), Some(96));
    assert_eq!(b.telephone_event().map(|f| f.pt), Some(100));
    assert_eq!(w.b.counters().refused_t38, 0);
}

#[test]
fn t38_toward_teams_or_a_trunk_without_t38_is_refused_with_488_and_counted() {
    // Toward Teams (SRTP): never.
    let mut w = World::new();
    w.carrier_sends(carrier_invite(
        "c-t38-ms",
        "030123456",
        &carrier_audio(30000, 1),
    ));
    let inv = w.take_req(MS[0], "INVITE");
    let ok = answer(
        &inv,
        200,
        "ms",
        &["Contact: <sip:api.pstnhub.microsoft.com:443>".to_owned()],
        &ms_sdp("52.113.1.1", 49152, MS_KEY2, "sendrecv"),
    );
    w.ms_sends(0, ok);
    let a_ok = w.take_resp(CARRIER, 200, "INVITE");
    let our_tag = tag(&hdr(&a_ok, "To").unwrap());
    w.carrier_sends(carrier_in_dialog("ACK", "c-t38-ms", &our_tag, 1, ""));
    w.clear();
    let updates = w.media().updates.len();
    w.carrier_sends(carrier_in_dialog(
        "INVITE",
        "c-t38-ms",
        &our_tag,
        2,
        &t38("198.51.100.7", 30004, 2),
    ));
    let _ = w.take_resp(CARRIER, 488, "INVITE");
    assert!(
        w.pending_to(MS[0]).iter().all(|m| !m.starts_with("INVITE")),
        "nothing forwarded to Teams: {:?}",
        w.pending_to(MS[0])
    );
    assert_eq!(w.media().updates.len(), updates, "the relay untouched");
    assert_eq!(w.b.counters().refused_t38, 1);
    // Toward a gateway whose trunk says t38 = false.
    let mut w = world(|g| g.t38 = false);
    let c = call_gateway(&mut w, true);
    w.carrier_sends(carrier_in_dialog(
        "INVITE",
        &c.call_id,
        &c.our_tag,
        2,
        &t38("198.51.100.7", 30004, 2),
    ));
    let _ = w.take_resp(CARRIER, 488, "INVITE");
    assert!(
        w.pending_to(GATEWAY).is_empty(),
        "{:?}",
        w.pending_to(GATEWAY)
    );
    assert_eq!(w.b.counters().refused_t38, 1);
}

#[test]
fn a_t38_reinvite_the_gateway_refuses_leaves_the_relay_on_audio() {
    let mut w = world(|_| {});
    let c = call_gateway(&mut w, true);
    let id = session(&w);
    w.carrier_sends(carrier_in_dialog(
        "INVITE",
        &c.call_id,
        &c.our_tag,
        2,
        &t38("198.51.100.7", 30004, 2),
    ));
    let re = w.take_req(GATEWAY, "INVITE");
    assert_eq!(w.media().payload_of(id, Side::A), Some(PayloadSpec::raw()));
    gateway_sends(&mut w, answer(&re, 488, "gw-tag", &[], ""));
    let _ = w.take_resp(CARRIER, 488, "INVITE");
    let a = w.media().payload_of(id, Side::A).unwrap();
    assert!(!a.raw, "audio again: {a:?}");
    assert_eq!(a.telephone_event().map(|f| f.pt), Some(96));
    let upd = w.media().updates_of(Side::A);
    assert_eq!(upd.last().unwrap().rtp, Some(addr("198.51.100.7:30000")));
}

#[test]
fn telephone_events_become_sip_info_toward_a_dtmf_info_gateway() {
    let mut w = world(|g| g.dtmf = DtmfMode::Info);
    let call_id = w.unique("c-info-");
    w.carrier_sends(carrier_invite(
        &call_id,
        "040123456",
        &carrier_audio(30000, 1),
    ));
    let invite = w.take_req(GATEWAY, "INVITE");
    let offer = body(&invite);
    assert!(
        offer.contains("RTP/AVP 8 13 98") && !offer.contains("telephone-event"),
        "no RFC 4733 toward an INFO trunk: {offer}"
    );
    let ok = answer(
        &invite,
        200,
        "gw-tag",
        &["Contact: <sip:fxs@192.0.2.20:5060>".to_owned()],
        &gateway_audio(20000, 1, false),
    );
    gateway_sends(&mut w, ok);
    let _ack = w.take_req(GATEWAY, "ACK");
    let a_ok = w.take_resp(CARRIER, 200, "INVITE");
    let our_tag = tag(&hdr(&a_ok, "To").unwrap());
    w.carrier_sends(carrier_in_dialog("ACK", &call_id, &our_tag, 1, ""));
    w.clear();
    let id = session(&w);
    // The relay reports the carrier's key 5 (800 samples = 100 ms) and '#'.
    for (event, duration) in [(5, 800), (11, 1280)] {
        w.input(b2bua::Input::Dtmf {
            session: id,
            side: Side::A,
            event,
            duration,
            clock_rate: 8000,
        });
    }
    let first = w.take_req(GATEWAY, "INFO");
    assert_eq!(
        hdr(&first, "Content-Type").as_deref(),
        Some("application/dtmf-relay")
    );
    assert_eq!(body(&first), "Signal=5\r\nDuration=100\r\n");
    assert_eq!(first.call_id(), invite.call_id(), "in the gateway's dialog");
    assert!(hdr(&first, "To").unwrap().contains("tag=gw-tag"));
    let second = w.take_req(GATEWAY, "INFO");
    assert_eq!(body(&second), "Signal=#\r\nDuration=160\r\n");
    let seq = |m: &Message| m.cseq().unwrap().seq;
    assert!(seq(&second) > seq(&first));
    assert_eq!(w.b.counters().dtmf_info, 2);
    // An event from the gateway's side goes nowhere as INFO (the carrier
    // takes RFC 4733), nor does one on an unknown session.
    w.input(b2bua::Input::Dtmf {
        session: id,
        side: Side::B,
        event: 1,
        duration: 800,
        clock_rate: 8000,
    });
    w.input(b2bua::Input::Dtmf {
        session: id + 100,
        side: Side::A,
        event: 1,
        duration: 800,
        clock_rate: 8000,
    });
    assert!(
        w.pending_to(CARRIER).is_empty(),
        "{:?}",
        w.pending_to(CARRIER)
    );
    assert!(
        w.pending_to(GATEWAY).is_empty(),
        "{:?}",
        w.pending_to(GATEWAY)
    );
    assert_eq!(w.b.counters().dtmf_info, 2);
}

#[test]
fn rfc4733_trunks_get_no_info() {
    let mut w = world(|_| {});
    let _c = call_gateway(&mut w, true);
    let id = session(&w);
    w.input(b2bua::Input::Dtmf {
        session: id,
        side: Side::A,
        event: 5,
        duration: 800,
        clock_rate: 8000,
    });
    assert!(
        w.pending_to(GATEWAY).is_empty(),
        "{:?}",
        w.pending_to(GATEWAY)
    );
    assert_eq!(w.b.counters().dtmf_info, 0);
}
