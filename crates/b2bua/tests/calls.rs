//! Whole calls through the B2BUA in virtual time: a carrier over UDP with
//! plain RTP on one side, Microsoft's proxies over TLS with SRTP on the
//! other, a fake relay in between.

mod harness;

use std::time::Duration;

use harness::*;
use media::control::Side;
use media::CryptoAttribute;
use sip::Message;

/// The Teams side of an established carrier → Teams call.
struct Established {
    /// The carrier dialog: Call-ID and our tag.
    a_call_id: String,
    a_tag: String,
    /// The Teams dialog: the INVITE we sent and its 200.
    invite: Message,
    ok: Message,
    /// The 200 the carrier received.
    a_ok: Message,
}

impl Established {
    fn teams_call_id(&self) -> String {
        self.invite.call_id().unwrap().to_owned()
    }
    /// From/To as Microsoft writes them in its requests on the Teams dialog.
    fn ms_from(&self) -> String {
        hdr(&self.ok, "To").unwrap()
    }
    fn ms_to(&self) -> String {
        hdr(&self.ok, "From").unwrap()
    }
}

/// Carrier → Teams, answered by proxy 0 (sip.pstnhub) and ACKed.
fn establish(w: &mut World) -> Established {
    let a_call_id = w.unique("carrier-call-");
    w.carrier_sends(carrier_invite(
        &a_call_id,
        &carrier_sdp(30000, "sendrecv"),
        &[],
    ));
    let invite = w.take_req(MS[0], "INVITE");
    let ok = answer(
        &invite,
        200,
        "ms-tag",
        &[
            format!("Contact: {CONTACT_443}"),
            format!("Record-Route: {MS_RR}"),
        ],
        &ms_sdp("52.113.1.1", 49152, MS_KEY1, "sendrecv"),
    );
    w.ms_sends(0, ok.clone());
    let ack = w.take_req(MS[0], "ACK");
    assert!(hdr(&ack, "X-MS-SBC").is_some(), "X-MS-SBC on our ACK too");
    let a_ok = w.take_resp(CARRIER, 200, "INVITE");
    let a_tag = tag(&hdr(&a_ok, "To").unwrap());
    let ack = carrier_in_dialog("ACK", &a_call_id, &a_tag, 1, &[], "");
    w.carrier_sends(ack);
    w.clear();
    Established {
        a_call_id,
        a_tag,
        invite,
        ok,
        a_ok,
    }
}

fn policy(key: &str) -> media::SrtpPolicy {
    CryptoAttribute::parse(&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{key}|2^31"))
        .unwrap()
        .srtp_policy()
        .unwrap()
}

// ----- carrier → Teams -----------------------------------------------------------

#[test]
fn carrier_call_reaches_teams_with_e164_fqdn_contact_and_srtp() {
    let mut w = World::new();
    w.carrier_sends(carrier_invite(
        "c1@carrier",
        &carrier_sdp(30000, "sendrecv"),
        &[],
    ));
    let _trying = w.take_resp(CARRIER, 100, "INVITE");
    let inv = w.take_req(MS[0], "INVITE");
    let t = text(&inv);
    assert_eq!(
        ruri(&inv),
        "sip:+4930123456@sip.pstnhub.microsoft.com:5061;user=phone;transport=tls"
    );
    let from = hdr(&inv, "From").unwrap();
    assert!(
        from.contains(&format!("<sip:+49891234567@{TEAMS_FQDN};user=phone>")),
        "{from}"
    );
    let to = hdr(&inv, "To").unwrap();
    assert!(
        to.contains("<sip:+4930123456@sip.pstnhub.microsoft.com;user=phone>"),
        "{to}"
    );
    let contact = hdr(&inv, "Contact").unwrap();
    assert!(
        contact.contains(&format!("@{TEAMS_FQDN}:5061;transport=tls>")),
        "{contact}"
    );
    assert!(hdr(&inv, "X-MS-SBC").is_some(), "{t}");
    assert!(hdr(&inv, "Allow").unwrap().contains("REFER"));
    assert!(hdr(&inv, "Replaces").is_none());
    assert!(!t.contains("192.0.2.10"), "carrier topology leaked: {t}");
    assert_ne!(inv.call_id().unwrap(), "c1@carrier");
    let b = body(&inv);
    assert!(b.contains("m=audio 40002 RTP/SAVP"), "{b}");
    assert!(b.contains(&format!("c=IN IP4 {MEDIA_IP}")), "{b}");
    let crypto = crypto_line(&b).expect("a=crypto toward Teams");
    assert!(
        crypto.contains("AES_CM_128_HMAC_SHA1_80 inline:"),
        "{crypto}"
    );
    assert!(!b.contains("a=ice-") && !b.contains("a=candidate"), "{b}");
    assert!(!b.contains("198.51.100.7"), "{b}");

    // 180 from Teams → 180 to the carrier.
    let ringing = answer(
        &inv,
        180,
        "ms-tag",
        &[
            format!("Contact: {CONTACT_443}"),
            format!("Record-Route: {MS_RR}"),
        ],
        "",
    );
    w.advance(Duration::from_millis(300));
    w.ms_sends(0, ringing);
    let r180 = w.take_resp(CARRIER, 180, "INVITE");
    assert!(!text(&r180).contains("pstnhub"), "{}", text(&r180));

    // 200 with SDP: ACK to Teams, 200 to the carrier with plain RTP.
    w.advance(Duration::from_millis(2000));
    let ok = answer(
        &inv,
        200,
        "ms-tag",
        &[
            format!("Contact: {CONTACT_443}"),
            format!("Record-Route: {MS_RR}"),
        ],
        &ms_sdp("52.113.1.1", 49152, MS_KEY1, "sendrecv"),
    );
    w.ms_sends(0, ok);
    let ack = w.take_req(MS[0], "ACK");
    assert_eq!(ruri(&ack), CONTACT_443_URI);
    assert_eq!(hdrs(&ack, "Route"), vec![MS_RR.to_owned()]);
    assert_eq!(tag(&hdr(&ack, "To").unwrap()), "ms-tag");
    let a_ok = w.take_resp(CARRIER, 200, "INVITE");
    let ab = body(&a_ok);
    assert!(ab.contains("m=audio 40000 RTP/AVP"), "{ab}");
    assert!(ab.contains(&format!("c=IN IP4 {MEDIA_IP}")), "{ab}");
    assert!(crypto_line(&ab).is_none(), "{ab}");
    assert!(!ab.contains("ice-") && !ab.contains("candidate"), "{ab}");
    assert!(!text(&a_ok).contains("pstnhub"), "{}", text(&a_ok));
    {
        let m = w.media();
        let u = m
            .updates_of(Side::B)
            .into_iter()
            .find(|u| u.rtp.is_some())
            .expect("relay told where Teams receives");
        assert_eq!(u.rtp, Some(addr("52.113.1.1:49152")));
        let rx = u.crypto.and_then(|c| c.rx).expect("Teams' key installed");
        assert!(rx == policy(MS_KEY1));
    }

    // The carrier ACKs, then hangs up.
    let a_tag = tag(&hdr(&a_ok, "To").unwrap());
    w.carrier_sends(carrier_in_dialog("ACK", "c1@carrier", &a_tag, 1, &[], ""));
    w.advance(Duration::from_secs(10));
    w.clear();
    w.carrier_sends(carrier_in_dialog("BYE", "c1@carrier", &a_tag, 2, &[], ""));
    w.take_resp(CARRIER, 200, "BYE");
    let bye = w.take_req(MS[0], "BYE");
    assert_eq!(ruri(&bye), CONTACT_443_URI);
    assert_eq!(hdrs(&bye, "Route"), vec![MS_RR.to_owned()]);
    assert_eq!(bye.call_id().unwrap(), inv.call_id().unwrap());
    assert!(hdr(&bye, "X-MS-SBC").is_some());
    w.ms_sends(0, answer(&bye, 200, "ms-tag", &[], ""));

    let cdrs = w.cdrs();
    assert_eq!(cdrs.len(), 1, "{cdrs:?}");
    let c = &cdrs[0];
    assert_eq!(c.status, 200);
    assert_eq!(c.from_trunk, "carrier");
    assert_eq!(c.to_trunk.as_deref(), Some("teams"));
    assert_eq!(c.calling, "+49891234567");
    assert_eq!(c.called, "+4930123456");
    assert_eq!(c.attempts.len(), 1);
    assert_eq!(c.attempts[0].peer, MS_HOSTS[0]);
    assert_eq!(c.attempts[0].outcome, "answered");
    assert_eq!(c.ringing_ms, Some(300));
    assert_eq!(c.answer_ms, Some(2300));
    assert_eq!(c.end_ms, 12300);
    assert_eq!(c.ended_by, "caller");
    assert_eq!(w.media().deletes, vec![1]);
    assert_eq!(w.b.active_calls(), 0);
}

// ----- Teams → carrier -----------------------------------------------------------

/// A Teams → carrier call as both sides saw it.
struct FromTeams {
    ms_call_id: String,
    /// Our 200 to Microsoft.
    ms_ok: Message,
    /// The INVITE the carrier got, and its 200.
    c_invite: Message,
    c_ok: Message,
}

impl FromTeams {
    /// To of Microsoft's in-dialog requests (our tag).
    fn our_side(&self) -> String {
        hdr(&self.ms_ok, "To").unwrap()
    }
}

/// Microsoft (proxy 0) calls +4989222 at the carrier; the carrier answers;
/// Microsoft ACKs. `extra` goes into Microsoft's INVITE.
fn establish_from_teams(w: &mut World, extra: &[String]) -> FromTeams {
    let ms_call_id = w.unique("ms-call-");
    w.ms_sends(
        0,
        ms_invite(
            &ms_call_id,
            &ms_sdp("52.113.1.1", 49152, MS_KEY1, "sendrecv"),
            extra,
        ),
    );
    let c_invite = w.take_req(CARRIER, "INVITE");
    let c_ok = answer(
        &c_invite,
        200,
        "c-tag",
        &["Contact: <sip:089222@192.0.2.10:5060>".to_owned()],
        &carrier_sdp(30000, "sendrecv"),
    );
    w.carrier_sends(c_ok.clone());
    let _ack = w.take_req(CARRIER, "ACK");
    let ms_ok = w.take_resp(MS[0], 200, "INVITE");
    let to = hdr(&ms_ok, "To").unwrap();
    w.ms_sends(
        0,
        ms_in_dialog("ACK", &ms_call_id, MS_FROM, &to, 1, &[], ""),
    );
    w.clear();
    FromTeams {
        ms_call_id,
        ms_ok,
        c_invite,
        c_ok,
    }
}

#[test]
fn teams_call_reaches_carrier() {
    let mut w = World::new();
    w.ms_sends(
        0,
        ms_invite(
            "ms1",
            &ms_sdp("52.113.1.1", 49152, MS_KEY1, "sendrecv"),
            &[],
        ),
    );
    let inv = w.take_req(CARRIER, "INVITE");
    assert_ne!(inv.call_id().unwrap(), "ms1");
    let t = text(&inv);
    assert!(ruri(&inv).starts_with("sip:089222@192.0.2.10"), "{t}");
    assert!(!t.contains("pstnhub"), "Microsoft topology leaked: {t}");
    assert!(!t.contains("x-i="), "{t}");
    let b = body(&inv);
    // Microsoft called first: its relay leg is A (40000), the carrier's B (40002).
    assert!(b.contains("m=audio 40002 RTP/AVP "), "{b}");
    assert!(b.contains(&format!("c=IN IP4 {MEDIA_IP}")), "{b}");
    assert!(crypto_line(&b).is_none(), "{b}");
    assert!(!b.contains("ice-") && !b.contains("candidate"), "{b}");
    assert!(!b.contains("52.113.1.1"), "{b}");
    {
        let m = w.media();
        let (a, _, _) = &m.creates[0];
        assert_eq!(a.remote_rtp, Some(addr("52.113.1.1:49152")));
        assert!(a.crypto.rx.as_ref() == Some(&policy(MS_KEY1)));
        assert!(a.crypto.tx.is_some(), "our key toward Microsoft");
    }

    // The carrier rings, then answers.
    w.carrier_sends(answer(
        &inv,
        180,
        "c-tag",
        &["Contact: <sip:089222@192.0.2.10:5060>".to_owned()],
        "",
    ));
    let r180 = w.take_resp(MS[0], 180, "INVITE");
    assert!(hdr(&r180, "Contact").is_none_or(|c| c.contains(TEAMS_FQDN)));
    assert!(!text(&r180).contains("192.0.2.10"));
    w.carrier_sends(answer(
        &inv,
        200,
        "c-tag",
        &["Contact: <sip:089222@192.0.2.10:5060>".to_owned()],
        &carrier_sdp(30000, "sendrecv"),
    ));
    let ack = w.take_req(CARRIER, "ACK");
    assert_eq!(ruri(&ack), "sip:089222@192.0.2.10:5060");
    let ok = w.take_resp(MS[0], 200, "INVITE");
    let contact = hdr(&ok, "Contact").unwrap();
    assert!(
        contact.contains(&format!("@{TEAMS_FQDN}:5061;transport=tls>"))
            || contact.contains(&format!("<sip:{TEAMS_FQDN}:5061;transport=tls>")),
        "{contact}"
    );
    assert!(hdr(&ok, "X-MS-SBC").is_some());
    assert!(hdr(&ok, "Allow").unwrap().contains("REFER"));
    assert!(hdrs(&ok, "Record-Route").is_empty() || hdrs(&ok, "Record-Route") == vec![MS_RR]);
    let ob = body(&ok);
    assert!(ob.contains("m=audio 40000 RTP/SAVP"), "{ob}");
    assert!(ob.contains(&format!("c=IN IP4 {MEDIA_IP}")), "{ob}");
    let c = crypto_line(&ob).expect("our key toward Microsoft");
    assert!(
        c.starts_with("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"),
        "{c}"
    );
    assert!(!ob.contains("198.51.100.7"), "{ob}");
    {
        let m = w.media();
        let ours = m.keys[0].to_sdp_line();
        assert_eq!(c, format!("{ours}|2^31"), "the relay's key, lifetime 2^31");
        let u = m
            .updates_of(Side::B)
            .into_iter()
            .find(|u| u.rtp.is_some())
            .expect("relay told where the carrier receives");
        assert_eq!(u.rtp, Some(addr("198.51.100.7:30000")));
    }
    assert!(w.cdrs().is_empty());
    assert_eq!(w.b.active_calls(), 1);
}

/// Our address toward the carrier when it wants an IP in Contact and Via.
const OUR_CARRIER_IP: &str = "203.0.113.10";

fn config_with_carrier_contact_ip() -> b2bua::Config {
    let mut cfg = config();
    cfg.trunks[0].contact_host = Some(OUR_CARRIER_IP.parse().unwrap());
    cfg
}

/// Host and transport of the top Via, and the Contact, of a message we sent.
fn via_and_contact(m: &Message) -> (String, String, Option<String>) {
    let via = m.top_via().unwrap();
    (
        via.host.to_string(),
        via.transport.to_string(),
        hdr(m, "Contact"),
    )
}

#[test]
fn carrier_with_contact_host_gets_our_ip_in_contact_and_via_and_microsoft_keeps_the_fqdn() {
    // Teams → carrier: the INVITE, its ACK and the BYE toward the carrier
    // carry the IP; what goes back to Teams keeps the FQDN.
    let mut w = World::with(config_with_carrier_contact_ip());
    let e = establish_from_teams(&mut w, &[]);
    let (host, transport, contact) = via_and_contact(&e.c_invite);
    assert_eq!((host.as_str(), transport.as_str()), (OUR_CARRIER_IP, "UDP"));
    let contact = contact.unwrap();
    assert!(
        contact.contains(&format!("@{OUR_CARRIER_IP}:5060;transport=udp>")),
        "{contact}"
    );
    assert!(
        !text(&e.c_invite).contains("sbc.carrier.example:"),
        "{}",
        text(&e.c_invite)
    );
    let contact = hdr(&e.ms_ok, "Contact").unwrap();
    assert!(
        contact.contains(&format!("{TEAMS_FQDN}:5061;transport=tls>")),
        "{contact}"
    );
    assert!(
        !text(&e.ms_ok).contains(OUR_CARRIER_IP),
        "{}",
        text(&e.ms_ok)
    );
    let to = hdr(&e.ms_ok, "To").unwrap();
    w.ms_sends(
        0,
        ms_in_dialog("BYE", &e.ms_call_id, MS_FROM, &to, 2, &[], ""),
    );
    let bye = w.take_req(CARRIER, "BYE");
    let (host, transport, _) = via_and_contact(&bye);
    assert_eq!((host.as_str(), transport.as_str()), (OUR_CARRIER_IP, "UDP"));

    // Carrier → Teams: our responses to the carrier carry the IP in
    // Contact; the INVITE toward Teams has the FQDN in Via and Contact.
    let mut w = World::with(config_with_carrier_contact_ip());
    let e = establish(&mut w);
    let contact = hdr(&e.a_ok, "Contact").unwrap();
    assert!(
        contact.contains(&format!("@{OUR_CARRIER_IP}:5060;transport=udp>")),
        "{contact}"
    );
    let (host, transport, contact) = via_and_contact(&e.invite);
    assert_eq!((host.as_str(), transport.as_str()), (TEAMS_FQDN, "TLS"));
    assert!(contact
        .unwrap()
        .contains(&format!("@{TEAMS_FQDN}:5061;transport=tls>")));
    assert!(
        !text(&e.invite).contains(OUR_CARRIER_IP),
        "{}",
        text(&e.invite)
    );
}

// ----- a carrier over UDP and TCP (RFC 3261 §18.1.1) -------------------------------

/// The carrier trunk passes `X-Pad` headers: Microsoft's INVITE carries a
/// big one, so that ours toward the carrier is larger than 1300 bytes.
fn config_passing_pad() -> b2bua::Config {
    let mut cfg = config();
    cfg.trunks[0].headers.pass_headers = vec!["X-Pad".into()];
    cfg
}

fn pad() -> String {
    format!("X-Pad: {}", "p".repeat(900))
}

/// Takes what was sent to the carrier's address over `transport`.
fn take_to_carrier(w: &mut World, transport: transaction::Transport, method: &str) -> Sent {
    let i = w
        .out
        .iter()
        .position(|s| {
            s.to.addr == addr(CARRIER)
                && s.to.transport == transport
                && s.msg.method_str() == Some(method)
        })
        .unwrap_or_else(|| panic!("no {method} over {transport} to the carrier:\n{}", w.dump()));
    w.out.remove(i)
}

#[test]
fn large_invite_to_a_udp_carrier_goes_over_tcp_and_the_dialog_stays_there() {
    use transaction::Transport::{Tcp, Udp};
    let mut w = World::with(config_passing_pad());
    // A small INVITE stays on UDP.
    w.ms_sends(
        0,
        ms_invite(
            "small",
            &ms_sdp("52.113.1.1", 49152, MS_KEY1, "sendrecv"),
            &[],
        ),
    );
    let small = take_to_carrier(&mut w, Udp, "INVITE");
    assert!(small.msg.to_bytes().len() <= 1300);
    assert_eq!(small.msg.top_via().unwrap().transport.to_string(), "UDP");
    // A large one goes over TCP, its Via says so, its Contact keeps UDP.
    w.ms_sends(
        0,
        ms_invite(
            "large",
            &ms_sdp("52.113.1.1", 49152, MS_KEY1, "sendrecv"),
            &[pad()],
        ),
    );
    let big = take_to_carrier(&mut w, Tcp, "INVITE");
    assert!(big.msg.to_bytes().len() > 1300, "{}", big.text());
    assert_eq!(big.msg.top_via().unwrap().transport.to_string(), "TCP");
    assert!(hdr(&big.msg, "Contact")
        .unwrap()
        .ends_with(";transport=udp>"));
    // The carrier answers on the connection; our ACK follows on TCP.
    let tcp_peer = transaction::Peer::new(addr(CARRIER), Tcp).with_conn(9);
    let ok = answer(
        &big.msg,
        200,
        "c-tag",
        &["Contact: <sip:089222@192.0.2.10:5060>".to_owned()],
        &carrier_sdp(30000, "sendrecv"),
    );
    w.deliver(ok, tcp_peer, addr(SBC_UDP), None);
    let ack = take_to_carrier(&mut w, Tcp, "ACK");
    assert_eq!(ack.msg.top_via().unwrap().transport.to_string(), "TCP");
    let _ = w.take_resp(MS[0], 200, "INVITE");

    // A carrier limited to UDP gets the large INVITE over UDP.
    let mut cfg = config_passing_pad();
    cfg.trunks[0].transports = vec![Udp];
    let mut w = World::with(cfg);
    w.ms_sends(
        0,
        ms_invite(
            "large",
            &ms_sdp("52.113.1.1", 49152, MS_KEY1, "sendrecv"),
            &[pad()],
        ),
    );
    let big = take_to_carrier(&mut w, Udp, "INVITE");
    assert!(big.msg.to_bytes().len() > 1300);
    assert_eq!(big.msg.top_via().unwrap().transport.to_string(), "UDP");
}

#[test]
fn tcp_refused_for_a_large_invite_is_retried_over_udp_without_taking_the_peer_down() {
    use transaction::Transport::{Tcp, Udp};
    let mut w = World::with(config_passing_pad());
    w.ms_sends(
        0,
        ms_invite(
            "refused",
            &ms_sdp("52.113.1.1", 49152, MS_KEY1, "sendrecv"),
            &[pad()],
        ),
    );
    let first = take_to_carrier(&mut w, Tcp, "INVITE");
    w.transport_error(transaction::Peer::new(addr(CARRIER), Tcp));
    let again = take_to_carrier(&mut w, Udp, "INVITE");
    assert_eq!(again.msg.top_via().unwrap().transport.to_string(), "UDP");
    assert!(again.msg.to_bytes().len() > 1300);
    assert_ne!(again.msg.call_id().unwrap(), first.msg.call_id().unwrap());
    assert!(!w.b.peer_states(0)[0].is_down(), "UDP may be fine");
    // The call goes on over UDP.
    w.carrier_sends(answer(
        &again.msg,
        200,
        "c-tag",
        &["Contact: <sip:089222@192.0.2.10:5060>".to_owned()],
        &carrier_sdp(30000, "sendrecv"),
    ));
    let _ack = take_to_carrier(&mut w, Udp, "ACK");
    let _ok = w.take_resp(MS[0], 200, "INVITE");
    assert_eq!(w.b.active_calls(), 1);
}

#[test]
fn carrier_invite_over_tcp_is_the_carriers_and_answered_on_its_connection() {
    use transaction::Transport::Tcp;
    let mut w = World::new();
    let from = transaction::Peer::new(addr(CARRIER), Tcp).with_conn(4);
    w.deliver(
        carrier_invite("over-tcp", &carrier_sdp(30000, "sendrecv"), &[]),
        from,
        addr(SBC_UDP),
        None,
    );
    let inv = w.take_req(MS[0], "INVITE");
    assert!(ruri(&inv).starts_with("sip:+4930123456@"), "{}", text(&inv));
    let trying = w
        .out
        .iter()
        .find(|s| s.to.addr == addr(CARRIER) && s.msg.status() == Some(100))
        .unwrap_or_else(|| panic!("no 100 to the carrier:\n{}", w.dump()));
    assert_eq!(trying.to, from, "back on the connection it came on");
    // Microsoft answers; the 200 goes back on the same connection.
    let ok = answer(
        &inv,
        200,
        "ms-tag",
        &[
            format!("Contact: {CONTACT_443}"),
            format!("Record-Route: {MS_RR}"),
        ],
        &ms_sdp("52.113.1.1", 49152, MS_KEY1, "sendrecv"),
    );
    w.ms_sends(0, ok);
    let i = w
        .out
        .iter()
        .position(|s| s.to.addr == addr(CARRIER) && s.msg.status() == Some(200))
        .unwrap_or_else(|| panic!("no 200 to the carrier:\n{}", w.dump()));
    assert_eq!(w.out[i].to, from);
}

#[test]
fn bye_from_teams_ends_carrier_leg() {
    let mut w = World::new();
    let e = establish(&mut w);
    w.advance(Duration::from_secs(30));
    w.clear();
    let bye = ms_in_dialog(
        "BYE",
        &e.teams_call_id(),
        &e.ms_from(),
        &e.ms_to(),
        2,
        &["Reason: Q.850;cause=16;text=\"Normal call clearing\"".to_owned()],
        "",
    );
    w.ms_sends(0, bye);
    w.take_resp(MS[0], 200, "BYE");
    let cbye = w.take_req(CARRIER, "BYE");
    assert_eq!(ruri(&cbye), "sip:0891234567@192.0.2.10:5060");
    assert_eq!(cbye.call_id().unwrap(), e.a_call_id);
    assert_eq!(tag(&hdr(&cbye, "From").unwrap()), e.a_tag);
    assert_eq!(tag(&hdr(&cbye, "To").unwrap()), "c-from");
    let cseq = cbye.cseq().unwrap();
    assert_eq!(cseq.method, "BYE");
    w.carrier_sends(answer(&cbye, 200, "c-from", &[], ""));
    let cdrs = w.cdrs();
    assert_eq!(cdrs.len(), 1);
    assert_eq!(cdrs[0].ended_by, "callee");
    assert_eq!(cdrs[0].status, 200);
    assert_eq!(w.b.active_calls(), 0);
    // The retransmission timer of the carrier's BYE stops with its 200.
    w.advance(Duration::from_secs(40));
    assert!(
        w.pending_to(CARRIER).is_empty(),
        "{:?}",
        w.pending_to(CARRIER)
    );
    let _ = &e.a_ok;
}

#[test]
fn late_offer_from_carrier_gets_an_sbc_offer_toward_teams() {
    let mut w = World::new();
    w.carrier_sends(carrier_invite("late1", "", &[]));
    let inv = w.take_req(MS[0], "INVITE");
    let b = body(&inv);
    assert!(b.contains("m=audio 40002 RTP/SAVP"), "{b}");
    assert!(crypto_line(&b).is_some(), "{b}");
    assert!(b.contains(&format!("c=IN IP4 {MEDIA_IP}")), "{b}");
    w.ms_sends(
        0,
        answer(
            &inv,
            200,
            "ms-tag",
            &[format!("Contact: {CONTACT_443}")],
            &ms_sdp("52.113.1.1", 49152, MS_KEY1, "sendrecv"),
        ),
    );
    w.take_req(MS[0], "ACK");
    let ok = w.take_resp(CARRIER, 200, "INVITE");
    let ob = body(&ok);
    assert!(
        ob.contains("m=audio 40000 RTP/AVP"),
        "an offer in the 200: {ob}"
    );
    assert!(crypto_line(&ob).is_none(), "{ob}");
    let a_tag = tag(&hdr(&ok, "To").unwrap());
    w.carrier_sends(carrier_in_dialog(
        "ACK",
        "late1",
        &a_tag,
        1,
        &[],
        &carrier_sdp(30000, "sendrecv"),
    ));
    let m = w.media();
    let u = m
        .updates_of(Side::A)
        .into_iter()
        .find(|u| u.rtp.is_some())
        .expect("the ACK's answer reaches the relay");
    assert_eq!(u.rtp, Some(addr("198.51.100.7:30000")));
}

#[test]
fn forked_180s_relayed_once_and_200_on_another_fork() {
    let mut w = World::new();
    w.carrier_sends(carrier_invite(
        "fork1",
        &carrier_sdp(30000, "sendrecv"),
        &[],
    ));
    let inv = w.take_req(MS[0], "INVITE");
    let _ = w.try_take(CARRIER, |m| m.status() == Some(100));
    for t in ["fork-a", "fork-b"] {
        w.ms_sends(
            0,
            answer(&inv, 180, t, &[format!("Contact: {CONTACT_443}")], ""),
        );
    }
    w.take_resp(CARRIER, 180, "INVITE");
    assert!(
        w.try_take(CARRIER, |m| m.status() == Some(180)).is_none(),
        "second fork's 180 relayed again"
    );
    w.ms_sends(
        0,
        answer(
            &inv,
            200,
            "fork-b",
            &[format!("Contact: {CONTACT_443}")],
            &ms_sdp("52.113.1.1", 49152, MS_KEY1, "sendrecv"),
        ),
    );
    let ack = w.take_req(MS[0], "ACK");
    assert_eq!(tag(&hdr(&ack, "To").unwrap()), "fork-b");
    w.take_resp(CARRIER, 200, "INVITE");
}

#[test]
fn session_progress_183_with_sdp_is_early_media() {
    let mut w = World::new();
    w.carrier_sends(carrier_invite("em1", &carrier_sdp(30000, "sendrecv"), &[]));
    let inv = w.take_req(MS[0], "INVITE");
    w.ms_sends(
        0,
        answer(
            &inv,
            183,
            "ms-tag",
            &[format!("Contact: {CONTACT_443}")],
            &ms_sdp("52.113.1.1", 49152, MS_KEY1, "sendrecv"),
        ),
    );
    let p = w.take_resp(CARRIER, 183, "INVITE");
    let pb = body(&p);
    assert!(pb.contains("m=audio 40000 RTP/AVP"), "{pb}");
    assert!(crypto_line(&pb).is_none(), "{pb}");
    {
        let m = w.media();
        let u = m
            .updates_of(Side::B)
            .into_iter()
            .find(|u| u.rtp.is_some())
            .expect("early media connected to the 183's SDP");
        assert_eq!(u.rtp, Some(addr("52.113.1.1:49152")));
        assert!(u.crypto.and_then(|c| c.rx) == Some(policy(MS_KEY1)));
    }
    w.ms_sends(
        0,
        answer(
            &inv,
            200,
            "ms-tag",
            &[format!("Contact: {CONTACT_443}")],
            &ms_sdp("52.113.1.1", 49152, MS_KEY1, "sendrecv"),
        ),
    );
    w.take_req(MS[0], "ACK");
    let ok = w.take_resp(CARRIER, 200, "INVITE");
    let (ip, port) = sdp_audio(&body(&ok));
    assert_eq!((ip.as_str(), port), (MEDIA_IP, 40000));
}

// ----- routing and failover --------------------------------------------------------

/// What the carrier's caller finally got.
fn final_to_carrier(w: &mut World) -> u16 {
    let m = w
        .try_take(CARRIER, |m| m.status().is_some_and(|s| s >= 200))
        .unwrap_or_else(|| panic!("no final to the carrier:\n{}", w.dump()));
    m.status().unwrap()
}

#[test]
fn failover_sip_503_goes_to_sip2() {
    let mut w = World::new();
    w.carrier_sends(carrier_invite("fo1", &carrier_sdp(30000, "sendrecv"), &[]));
    let inv = w.take_req(MS[0], "INVITE");
    let key1 = crypto_line(&body(&inv)).unwrap();
    w.ms_sends(0, answer(&inv, 503, "x", &[], ""));
    let inv2 = w.take_req(MS[1], "INVITE");
    assert_eq!(
        ruri(&inv2),
        "sip:+4930123456@sip2.pstnhub.microsoft.com:5061;user=phone;transport=tls"
    );
    assert_ne!(inv2.call_id().unwrap(), inv.call_id().unwrap());
    assert_eq!(sdp_audio(&body(&inv2)), (MEDIA_IP.to_owned(), 40002));
    assert_eq!(
        crypto_line(&body(&inv2)).unwrap(),
        key1,
        "same key per side"
    );
    assert!(w.try_take(CARRIER, |m| m.status() == Some(503)).is_none());
    w.ms_sends(
        1,
        answer(
            &inv2,
            200,
            "ms-tag",
            &[format!("Contact: {CONTACT_443}")],
            &ms_sdp("52.113.1.1", 49152, MS_KEY1, "sendrecv"),
        ),
    );
    w.take_req(MS[1], "ACK");
    w.take_resp(CARRIER, 200, "INVITE");
    assert_eq!(w.b.counters().failovers, 1);
    let a_tag = w
        .log
        .iter()
        .rev()
        .find_map(|s| (s.msg.status() == Some(200)).then(|| tag(&hdr(&s.msg, "To").unwrap())));
    w.carrier_sends(carrier_in_dialog(
        "ACK",
        "fo1",
        &a_tag.clone().unwrap(),
        1,
        &[],
        "",
    ));
    w.carrier_sends(carrier_in_dialog("BYE", "fo1", &a_tag.unwrap(), 2, &[], ""));
    let cdr = &w.cdrs()[0];
    let outcomes: Vec<(&str, &str)> = cdr
        .attempts
        .iter()
        .map(|a| (a.peer.as_str(), a.outcome.as_str()))
        .collect();
    assert_eq!(
        outcomes,
        vec![(MS_HOSTS[0], "503"), (MS_HOSTS[1], "answered")]
    );
}

#[test]
fn timeout_goes_to_next_peer() {
    let mut w = World::new();
    w.carrier_sends(carrier_invite("to1", &carrier_sdp(30000, "sendrecv"), &[]));
    let _inv = w.take_req(MS[0], "INVITE");
    // Microsoft answers 100 Trying within milliseconds: 2 s of silence is a dead proxy.
    w.advance(Duration::from_millis(1900));
    assert!(w
        .try_take(MS[1], |m| m.method_str() == Some("INVITE"))
        .is_none());
    w.advance(Duration::from_millis(200));
    let inv2 = w.take_req(MS[1], "INVITE");
    assert!(ruri(&inv2).contains("sip2.pstnhub.microsoft.com"));
    // sip2 stays silent too: sip3, then the caller gets 408.
    w.advance(Duration::from_secs(2));
    w.take_req(MS[2], "INVITE");
    w.advance(Duration::from_secs(2));
    assert_eq!(final_to_carrier(&mut w), 408);
    let cdr = &w.cdrs()[0];
    assert_eq!(cdr.attempts.len(), 3);
    assert!(cdr.attempts.iter().all(|a| a.outcome == "timeout"));
    assert_eq!(w.b.active_calls(), 0);
}

/// Teams first, ACS labelled, then a forward to +4915112345 through the
/// carrier after `window_s` (and `ring_s` of ringing, if set).
fn forward_config(window_s: u64, ring_s: Option<u64>) -> b2bua::Config {
    let mut cfg = config();
    let mut r = route(
        "to-teams",
        "carrier",
        vec![dest("teams", None), dest("acs", Some("Fail-over"))],
    );
    r.forward = Some(routing::Forward {
        to: routing::Destination {
            trunk: "carrier".into(),
            target: routing::Target::Number("+4915112345".into()),
            label: Some("Fail-over".into()),
        },
        window: Duration::from_secs(window_s),
        ring_timeout: ring_s.map(Duration::from_secs),
    });
    cfg.routes.routes[0] = r;
    for (p, a) in cfg.trunks[2].peers.iter_mut().zip(ACS_PEERS) {
        p.addr = Some(addr(a));
    }
    cfg
}

/// The INVITE the carrier got (a forward), not a response to its own.
fn carrier_gets_invite(w: &mut World) -> Message {
    w.try_take(CARRIER, |m| {
        m.is_request() && m.method_str() == Some("INVITE")
    })
    .unwrap_or_else(|| panic!("no INVITE to the carrier:\n{}", w.dump()))
}

/// ACS's own proxies in these tests (Teams has MS).
const ACS_PEERS: [&str; 3] = ["52.112.2.1:5061", "52.112.2.2:5061", "52.112.2.3:5061"];

fn acs_sends(w: &mut World, i: usize, msg: Message) {
    w.deliver(
        msg,
        transaction::Peer::new(addr(ACS_PEERS[i]), transaction::Transport::Tls),
        addr(SBC_TLS),
        Some(ms_names()),
    );
}

fn trying(req: &Message) -> Message {
    transaction::response_to(req, 100, "Trying", None).unwrap()
}

#[test]
fn silent_proxy_costs_one_attempt_timer_and_the_next_call_skips_it() {
    let mut w = World::new();
    w.carrier_sends(carrier_invite("si1", &carrier_sdp(30000, "sendrecv"), &[]));
    w.take_req(MS[0], "INVITE");
    w.advance(Duration::from_millis(2100));
    let inv = w.take_req(MS[1], "INVITE");
    assert!(
        w.b.peer_states(1)[0].is_down(),
        "passive health: sip is down at once"
    );
    w.ms_sends(1, trying(&inv));
    // The next call does not wait for sip at all.
    w.carrier_sends(carrier_invite("si2", &carrier_sdp(30002, "sendrecv"), &[]));
    let inv2 = w.take_req(MS[1], "INVITE");
    assert_ne!(inv2.call_id().ok(), inv.call_id().ok());
    assert!(w
        .try_take(MS[0], |m| m.method_str() == Some("INVITE"))
        .is_none());
}

#[test]
fn known_down_teams_never_delays_a_healthy_acs() {
    let mut w = World::with(forward_config(30, None));
    w.carrier_sends(carrier_invite("kd1", &carrier_sdp(30000, "sendrecv"), &[]));
    for ms in MS {
        w.take_req(ms, "INVITE");
        w.transport_error(transaction::Peer::new(
            addr(ms),
            transaction::Transport::Tls,
        ));
    }
    // Teams is down as a whole: the next call's first INVITE is ACS's, at once.
    w.carrier_sends(carrier_invite("kd2", &carrier_sdp(30002, "sendrecv"), &[]));
    let acs1 = w.take_req(ACS_PEERS[0], "INVITE");
    assert!(text(&acs1).contains(ACS_FQDN));
    let acs2 = w.take_req(ACS_PEERS[0], "INVITE");
    assert!(hdr(&acs2, "From").unwrap().starts_with("\"Fail-over"));
    assert!(
        w.dump()
            .lines()
            .all(|l| !l.contains("INVITE") || l.contains("52.112.2.1")),
        "no Teams attempt for the second call:\n{}",
        w.dump()
    );
}

#[test]
fn retry_after_holds_the_proxy_down_and_drops_its_connection() {
    let mut w = World::new();
    w.carrier_sends(carrier_invite("ra1", &carrier_sdp(30000, "sendrecv"), &[]));
    let inv = w.take_req(MS[0], "INVITE");
    w.ms_sends(0, answer(&inv, 503, "x", &["Retry-After: 120".into()], ""));
    w.take_req(MS[1], "INVITE");
    assert!(w
        .outputs
        .iter()
        .any(|o| matches!(o, b2bua::Output::Disconnect { to } if to.addr == addr(MS[0]))));
    assert!(w.b.peer_states(1)[0].is_down());
    // OPTIONS keep succeeding (auto-answered), still held for 120 s.
    w.advance(Duration::from_secs(100));
    assert!(w.b.peer_states(1)[0].is_down());
    w.advance(Duration::from_secs(25));
    assert!(!w.b.peer_states(1)[0].is_down(), "back after Retry-After");
}

#[test]
fn every_destination_failing_forwards_at_once_with_diversion_and_label() {
    let mut w = World::with(forward_config(30, None));
    w.carrier_sends(carrier_invite("fw1", &carrier_sdp(30000, "sendrecv"), &[]));
    // Our own 180 while the attempts run.
    w.take_resp(CARRIER, 180, "INVITE");
    for (i, ms) in MS.iter().enumerate() {
        let inv = w.take_req(ms, "INVITE");
        w.ms_sends(i, answer(&inv, 503, "x", &[], ""));
    }
    for (i, acs) in ACS_PEERS.iter().enumerate() {
        let inv = w.take_req(acs, "INVITE");
        assert!(text(&inv).contains(ACS_FQDN));
        acs_sends(&mut w, i, answer(&inv, 503, "x", &[], ""));
    }
    let fwd = carrier_gets_invite(&mut w);
    assert_eq!(ruri(&fwd), "sip:015112345@192.0.2.10:5060");
    let from = hdr(&fwd, "From").unwrap();
    assert!(from.starts_with("\"Fail-over Alice\""), "{from}");
    assert!(
        from.contains("0891234567"),
        "caller's identity kept: {from}"
    );
    let div = hdr(&fwd, "Diversion").expect("Diversion with the called number");
    assert!(
        div.contains("030123456") && div.contains("reason=no-answer"),
        "{div}"
    );
    assert_eq!(w.b.counters().forwarded, 1);
}

#[test]
fn forward_fires_when_the_window_passes_and_the_pending_attempt_is_cancelled() {
    let mut w = World::with(forward_config(8, None));
    w.carrier_sends(carrier_invite("fw2", &carrier_sdp(30000, "sendrecv"), &[]));
    w.take_resp(CARRIER, 180, "INVITE");
    let inv = w.take_req(MS[0], "INVITE");
    // sip is alive (100 Trying) but nobody ever rings.
    w.ms_sends(0, trying(&inv));
    w.advance(Duration::from_millis(7900));
    assert!(w
        .try_take(CARRIER, |m| m.is_request()
            && m.method_str() == Some("INVITE"))
        .is_none());
    w.advance(Duration::from_millis(200));
    w.take_req(MS[0], "CANCEL");
    let fwd = carrier_gets_invite(&mut w);
    assert!(ruri(&fwd).starts_with("sip:015112345@"));
    let cdr_attempts = w.b.counters();
    assert_eq!(cdr_attempts.forwarded, 1);
}

#[test]
fn a_call_that_rings_too_long_is_forwarded_after_the_ring_timeout() {
    let mut w = World::with(forward_config(8, Some(5)));
    w.carrier_sends(carrier_invite("fw3", &carrier_sdp(30000, "sendrecv"), &[]));
    let inv = w.take_req(MS[0], "INVITE");
    w.ms_sends(0, answer(&inv, 180, "ms-r", &[], ""));
    // Ringing: the 8 s window no longer applies, the 5 s ring timeout does.
    w.advance(Duration::from_millis(4900));
    assert!(w
        .try_take(CARRIER, |m| m.is_request()
            && m.method_str() == Some("INVITE"))
        .is_none());
    w.advance(Duration::from_millis(200));
    w.take_req(MS[0], "CANCEL");
    carrier_gets_invite(&mut w);
}

#[test]
fn late_200_after_the_attempt_was_abandoned_is_acked_and_hung_up() {
    let mut w = World::new();
    w.carrier_sends(carrier_invite("lt1", &carrier_sdp(30000, "sendrecv"), &[]));
    let inv = w.take_req(MS[0], "INVITE");
    w.advance(Duration::from_millis(2100));
    let inv2 = w.take_req(MS[1], "INVITE");
    w.ms_sends(1, trying(&inv2));
    // Long after its transaction is gone (Timer B), sip answers after all.
    w.advance(Duration::from_secs(40));
    let late = answer(
        &inv,
        200,
        "ghost",
        &[format!("Contact: {CONTACT_443}")],
        &ms_sdp("52.113.1.1", 49152, MS_KEY1, "sendrecv"),
    );
    w.ms_sends(0, late);
    let ack = w.take_req(MS[0], "ACK");
    assert_eq!(tag(&hdr(&ack, "To").unwrap()), "ghost");
    let bye = w.take_req(MS[0], "BYE");
    assert_eq!(bye.call_id(), inv.call_id());
    assert_eq!(w.b.counters().late_answers, 1);
}

#[test]
fn a_2xx_without_a_to_tag_fails_the_attempt_and_the_next_peer_is_tried() {
    let mut w = World::new();
    w.carrier_sends(carrier_invite("nt1", &carrier_sdp(30000, "sendrecv"), &[]));
    let inv = w.take_req(MS[0], "INVITE");
    let mut ok = transaction::response_to(&inv, 200, "OK", None).unwrap();
    ok.set_body(
        Some("application/sdp"),
        ms_sdp("52.113.1.1", 49152, MS_KEY1, "sendrecv").as_bytes(),
    )
    .unwrap();
    w.ms_sends(0, ok);
    w.take_req(MS[1], "INVITE");
    assert_eq!(w.b.counters().bad_answers, 1);
    assert!(w.try_take(CARRIER, |m| m.status() == Some(200)).is_none());
}

#[test]
fn draining_stops_our_options() {
    let mut w = World::new();
    w.advance(Duration::from_secs(1));
    let before = w.pings_answered();
    w.b.drain();
    w.advance(Duration::from_secs(300));
    assert_eq!(w.pings_answered(), before, "no OPTIONS while draining");
}

#[test]
fn transport_error_goes_to_next() {
    let mut w = World::new();
    w.carrier_sends(carrier_invite("te1", &carrier_sdp(30000, "sendrecv"), &[]));
    let _inv = w.take_req(MS[0], "INVITE");
    w.transport_error(transaction::Peer::new(
        addr(MS[0]),
        transaction::Transport::Tls,
    ));
    let inv2 = w.take_req(MS[1], "INVITE");
    assert!(ruri(&inv2).contains("sip2.pstnhub.microsoft.com"));
    assert!(w.b.peer_states(1)[0].is_down());
}

#[test]
fn teams_to_acs_failover_carries_fail_over_label() {
    let mut cfg = config();
    cfg.routes.routes[0] = route(
        "to-teams",
        "carrier",
        vec![dest("teams", None), dest("acs", Some("Fail-over"))],
    );
    let mut w = World::with(cfg);
    w.carrier_sends(carrier_invite("acs1", &carrier_sdp(30000, "sendrecv"), &[]));
    for (i, ms) in MS.iter().enumerate() {
        let inv = w.take_req(ms, "INVITE");
        assert!(hdr(&inv, "Contact").unwrap().contains(TEAMS_FQDN));
        assert!(!hdr(&inv, "From").unwrap().contains("Fail-over"));
        w.ms_sends(i, answer(&inv, 503, "x", &[], ""));
    }
    let inv = w.take_req(MS[0], "INVITE");
    let from = hdr(&inv, "From").unwrap();
    assert!(from.starts_with("\"Fail-over"), "{from}");
    assert!(
        from.contains(&format!("<sip:+49891234567@{ACS_FQDN};user=phone>")),
        "{from}"
    );
    let contact = hdr(&inv, "Contact").unwrap();
    assert!(
        contact.contains(&format!("@{ACS_FQDN}:5061;transport=tls>")),
        "{contact}"
    );
    assert!(!text(&inv).contains(TEAMS_FQDN), "{}", text(&inv));
    assert_eq!(
        ruri(&inv),
        "sip:+4930123456@sip.pstnhub.microsoft.com:5061;user=phone;transport=tls"
    );
    w.ms_sends(
        0,
        answer(
            &inv,
            200,
            "acs-tag",
            &[format!("Contact: {CONTACT_443}")],
            &ms_sdp("52.113.1.1", 49152, MS_KEY1, "sendrecv"),
        ),
    );
    w.take_resp(CARRIER, 200, "INVITE");
}

#[test]
fn decline_603_is_never_retried() {
    let mut w = World::new();
    w.carrier_sends(carrier_invite("d1", &carrier_sdp(30000, "sendrecv"), &[]));
    let inv = w.take_req(MS[0], "INVITE");
    w.ms_sends(0, answer(&inv, 603, "x", &[], ""));
    assert_eq!(final_to_carrier(&mut w), 603);
    w.advance(Duration::from_secs(10));
    assert!(w.pending_to(MS[1]).is_empty() && w.pending_to(MS[2]).is_empty());
    assert_eq!(w.cdrs()[0].status, 603);
    assert_eq!(w.media().deletes.len(), 1);
}

#[test]
fn no_failover_after_180() {
    let mut w = World::new();
    w.carrier_sends(carrier_invite("n1", &carrier_sdp(30000, "sendrecv"), &[]));
    let inv = w.take_req(MS[0], "INVITE");
    w.ms_sends(0, answer(&inv, 180, "t", &[], ""));
    w.take_resp(CARRIER, 180, "INVITE");
    w.ms_sends(0, answer(&inv, 503, "t", &[], ""));
    assert_eq!(final_to_carrier(&mut w), 503);
    assert!(w.pending_to(MS[1]).is_empty());
}

// ----- CANCEL ----------------------------------------------------------------------

/// The carrier's CANCEL of its INVITE `call_id`.
fn carrier_cancel(call_id: &str) -> Message {
    build(
        "CANCEL sip:030123456@192.0.2.1:5060 SIP/2.0",
        &[
            format!(
                "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-{}",
                token(call_id)
            ),
            "Max-Forwards: 70".into(),
            "From: \"Alice\" <sip:0891234567@192.0.2.10>;tag=c-from".into(),
            "To: <sip:030123456@192.0.2.1>".into(),
            format!("Call-ID: {call_id}"),
            "CSeq: 1 CANCEL".into(),
        ],
        "",
    )
}

#[test]
fn cancel_from_carrier_cancels_teams() {
    let mut w = World::new();
    w.carrier_sends(carrier_invite("cx1", &carrier_sdp(30000, "sendrecv"), &[]));
    let inv = w.take_req(MS[0], "INVITE");
    w.advance(Duration::from_millis(100));
    // Before Teams said anything: the CANCEL waits for its provisional.
    w.carrier_sends(carrier_cancel("cx1"));
    w.take_resp(CARRIER, 200, "CANCEL");
    w.take_resp(CARRIER, 487, "INVITE");
    assert!(
        w.try_take(MS[0], |m| m.method_str() == Some("CANCEL"))
            .is_none(),
        "CANCEL before any provisional (RFC 3261 §9.1)"
    );
    w.ms_sends(0, answer(&inv, 180, "ms-tag", &[], ""));
    let cancel = w.take_req(MS[0], "CANCEL");
    assert_eq!(ruri(&cancel), ruri(&inv));
    assert!(w.try_take(CARRIER, |m| m.status() == Some(180)).is_none());
    w.ms_sends(0, answer(&cancel, 200, "ms-tag", &[], ""));
    w.ms_sends(0, answer(&inv, 487, "ms-tag", &[], ""));
    w.take_req(MS[0], "ACK");
    let cdrs = w.cdrs();
    assert_eq!(cdrs.len(), 1);
    assert_eq!(cdrs[0].status, 487);
    assert_eq!(cdrs[0].ended_by, "caller");
    assert_eq!(w.b.active_calls(), 0);
    assert_eq!(w.media().deletes.len(), 1);
}

#[test]
fn cancel_200_race() {
    let mut w = World::new();
    w.carrier_sends(carrier_invite(
        "race1",
        &carrier_sdp(30000, "sendrecv"),
        &[],
    ));
    let inv = w.take_req(MS[0], "INVITE");
    w.ms_sends(
        0,
        answer(
            &inv,
            180,
            "ms-tag",
            &[format!("Contact: {CONTACT_443}")],
            "",
        ),
    );
    w.take_resp(CARRIER, 180, "INVITE");
    w.carrier_sends(carrier_cancel("race1"));
    w.take_resp(CARRIER, 487, "INVITE");
    let cancel = w.take_req(MS[0], "CANCEL");
    // Teams answered before the CANCEL reached it.
    w.ms_sends(
        0,
        answer(
            &inv,
            200,
            "ms-tag",
            &[
                format!("Contact: {CONTACT_443}"),
                format!("Record-Route: {MS_RR}"),
            ],
            &ms_sdp("52.113.1.1", 49152, MS_KEY1, "sendrecv"),
        ),
    );
    w.ms_sends(0, answer(&cancel, 200, "ms-tag", &[], ""));
    let ack = w.take_req(MS[0], "ACK");
    assert_eq!(ruri(&ack), CONTACT_443_URI);
    let bye = w.take_req(MS[0], "BYE");
    assert_eq!(ruri(&bye), CONTACT_443_URI);
    assert_eq!(hdrs(&bye, "Route"), vec![MS_RR.to_owned()]);
    assert_eq!(tag(&hdr(&bye, "To").unwrap()), "ms-tag");
    w.ms_sends(0, answer(&bye, 200, "ms-tag", &[], ""));
    assert!(
        w.try_take(CARRIER, |m| m.status() == Some(200)
            && cseq_method(m) == "INVITE")
            .is_none(),
        "the carrier must not see the 200"
    );
    assert_eq!(w.cdrs()[0].status, 487);
}

// ----- in-dialog: re-INVITE, session timers ------------------------------------------

#[test]
fn reinvite_hold_resume_forwarded_with_same_relay_ports_and_same_key() {
    let mut w = World::new();
    let c = establish_from_teams(&mut w, &[]);
    let first = body(&c.ms_ok);
    let key = crypto_line(&first).unwrap();
    let to = c.our_side();
    let carrier_contact = "sip:089222@192.0.2.10:5060";
    for (cseq, dir, answer_dir) in [(2, "sendonly", "recvonly"), (3, "sendrecv", "sendrecv")] {
        w.ms_sends(
            0,
            ms_in_dialog(
                "INVITE",
                &c.ms_call_id,
                MS_FROM,
                &to,
                cseq,
                &[],
                &ms_sdp("52.113.1.1", 49152, MS_KEY1, dir),
            ),
        );
        let re = w.take_req(CARRIER, "INVITE");
        assert_eq!(ruri(&re), carrier_contact);
        assert_eq!(re.call_id().unwrap(), c.c_invite.call_id().unwrap());
        let rb = body(&re);
        assert!(rb.contains(&format!("a={dir}")), "{rb}");
        assert_eq!(sdp_audio(&rb), (MEDIA_IP.to_owned(), 40002), "{rb}");
        assert!(crypto_line(&rb).is_none(), "{rb}");
        assert!(!rb.contains("ice-"), "{rb}");
        w.carrier_sends(answer(
            &re,
            200,
            "c-tag",
            &["Contact: <sip:089222@192.0.2.10:5060>".to_owned()],
            &carrier_sdp(30000, answer_dir),
        ));
        w.take_req(CARRIER, "ACK");
        let ok = w.take_resp(MS[0], 200, "INVITE");
        let ob = body(&ok);
        assert!(ob.contains(&format!("a={answer_dir}")), "{ob}");
        assert_eq!(sdp_audio(&ob), (MEDIA_IP.to_owned(), 40000), "{ob}");
        assert_eq!(crypto_line(&ob).as_deref(), Some(key.as_str()), "same key");
        assert!(hdr(&ok, "Contact").unwrap().contains(TEAMS_FQDN));
        w.ms_sends(
            0,
            ms_in_dialog("ACK", &c.ms_call_id, MS_FROM, &to, cseq, &[], ""),
        );
    }
    let m = w.media();
    assert_eq!(m.keys.len(), 1, "no new key on hold/resume");
    assert_eq!(m.creates.len(), 1);
    assert!(m.updates.iter().filter(|u| u.side == Side::A).all(|u| u
        .crypto
        .as_ref()
        .is_none_or(|c| c.tx.is_none() || c.tx == m.keys[0].srtp_policy().ok())));
    let _ = &c.c_ok;
}

#[test]
fn session_refresh_answered_locally() {
    let mut w = World::new();
    let timer = [
        "Supported: timer".to_owned(),
        "Session-Expires: 1800;refresher=uac".to_owned(),
        "Min-SE: 300".to_owned(),
    ];
    let c = establish_from_teams(&mut w, &timer);
    assert!(hdr(&c.ms_ok, "Session-Expires")
        .unwrap()
        .starts_with("1800"));
    assert_eq!(hdr(&c.ms_ok, "Require").as_deref(), Some("timer"));
    let to = c.our_side();
    let sent_to_carrier = w.ever_sent_to(CARRIER).len();
    w.advance(Duration::from_secs(900));
    w.ms_sends(
        0,
        ms_in_dialog(
            "INVITE",
            &c.ms_call_id,
            MS_FROM,
            &to,
            2,
            &timer,
            &ms_sdp("52.113.1.1", 49152, MS_KEY1, "sendrecv"),
        ),
    );
    let ok = w.take_resp(MS[0], 200, "INVITE");
    assert!(hdr(&ok, "Session-Expires").unwrap().starts_with("1800"));
    assert_eq!(hdr(&ok, "Require").as_deref(), Some("timer"));
    assert_eq!(
        crypto_line(&body(&ok)),
        crypto_line(&body(&c.ms_ok)),
        "same key"
    );
    assert_eq!(sdp_audio(&body(&ok)), (MEDIA_IP.to_owned(), 40000));
    w.ms_sends(
        0,
        ms_in_dialog("ACK", &c.ms_call_id, MS_FROM, &to, 2, &[], ""),
    );
    assert_eq!(w.ever_sent_to(CARRIER).len(), sent_to_carrier);
    // Refreshed at 900 s: still up at 1800 s + a bit.
    w.advance(Duration::from_secs(1000));
    assert!(w.ever_sent_to(CARRIER).len() == sent_to_carrier);
    assert_eq!(w.b.active_calls(), 1);
}

#[test]
fn session_timer_expiry_ends_call() {
    let mut w = World::new();
    let c = establish_from_teams(
        &mut w,
        &[
            "Supported: timer".to_owned(),
            "Session-Expires: 90;refresher=uac".to_owned(),
        ],
    );
    assert!(hdr(&c.ms_ok, "Session-Expires").unwrap().starts_with("90"));
    w.advance(Duration::from_secs(80));
    assert!(w.pending_to(CARRIER).is_empty());
    w.advance(Duration::from_secs(20));
    let bye = w.take_req(CARRIER, "BYE");
    assert_eq!(bye.call_id().unwrap(), c.c_invite.call_id().unwrap());
    w.take_req(MS[0], "BYE");
    let cdr = &w.cdrs()[0];
    assert_eq!(cdr.ended_by, "sbc");
    assert!(cdr.reason.contains("session timer"), "{}", cdr.reason);
}

// ----- operations -----------------------------------------------------------------

#[test]
fn drain_refuses_new_invites_with_503() {
    let mut w = World::new();
    let e = establish(&mut w);
    w.b.drain();
    w.carrier_sends(carrier_invite("dr1", &carrier_sdp(30002, "sendrecv"), &[]));
    let r = w.take_resp(CARRIER, 503, "INVITE");
    assert!(hdr(&r, "Retry-After").is_some(), "{}", text(&r));
    assert!(w.pending_to(MS[0]).is_empty());
    assert_eq!(w.b.counters().refused_draining, 1);
    // Microsoft's OPTIONS are refused too, so it moves traffic elsewhere.
    let opt = build(
        &format!("OPTIONS sip:{TEAMS_FQDN}:5061;transport=tls SIP/2.0"),
        &[
            "Via: SIP/2.0/TLS 52.112.1.2:5061;branch=z9hG4bKdrainopt".to_owned(),
            "From: <sip:sip-du-a-eu.pstnhub.microsoft.com:5061>;tag=8eb9".into(),
            format!("To: <sip:{TEAMS_FQDN}>"),
            "Call-ID: opt-drain".into(),
            "CSeq: 1 OPTIONS".into(),
            "Max-Forwards: 70".into(),
        ],
        "",
    );
    w.ms_sends(1, opt);
    let r = w.take_resp(MS[1], 503, "OPTIONS");
    assert!(hdr(&r, "Retry-After").is_some());
    // The call in progress goes on and ends normally.
    w.carrier_sends(carrier_in_dialog("BYE", &e.a_call_id, &e.a_tag, 2, &[], ""));
    w.take_req(MS[0], "BYE");
    assert_eq!(w.b.active_calls(), 0);
    assert_eq!(w.cdrs().len(), 1, "the refused INVITE makes no CDR");
}

#[test]
fn cdr_is_one_json_line_with_legs_times_and_attempts() {
    let mut w = World::new();
    let e = establish(&mut w);
    w.advance(Duration::from_secs(5));
    w.carrier_sends(carrier_in_dialog("BYE", &e.a_call_id, &e.a_tag, 2, &[], ""));
    let cdr = &w.cdrs()[0];
    let line = serde_json::to_string(cdr).unwrap();
    assert!(!line.contains('\n'));
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["status"], 200);
    assert_eq!(v["a_call_id"], e.a_call_id.as_str());
    assert_eq!(v["b_call_id"], e.teams_call_id().as_str());
    assert_eq!(v["from_trunk"], "carrier");
    assert_eq!(v["to_trunk"], "teams");
    assert_eq!(v["route"], "to-teams");
    assert_eq!(v["attempts"][0]["peer"], MS_HOSTS[0]);
    assert_eq!(v["reason"], "bye from caller");
    assert_eq!(
        v["end_ms"].as_u64().unwrap() - v["answer_ms"].as_u64().unwrap(),
        5000
    );
}

#[test]
fn ok_to_udp_carrier_retransmitted_until_ack() {
    let mut w = World::new();
    w.carrier_sends(carrier_invite("rt1", &carrier_sdp(30000, "sendrecv"), &[]));
    let inv = w.take_req(MS[0], "INVITE");
    w.ms_sends(
        0,
        answer(
            &inv,
            200,
            "ms-tag",
            &[format!("Contact: {CONTACT_443}")],
            &ms_sdp("52.113.1.1", 49152, MS_KEY1, "sendrecv"),
        ),
    );
    let count = |w: &World| {
        w.log
            .iter()
            .filter(|s| s.to.addr == addr(CARRIER) && s.msg.status() == Some(200))
            .count()
    };
    assert_eq!(count(&w), 1);
    w.advance(Duration::from_millis(510));
    assert_eq!(count(&w), 2, "T1");
    w.advance(Duration::from_millis(1000));
    assert_eq!(count(&w), 3, "2*T1");
    w.advance(Duration::from_millis(2000));
    assert_eq!(count(&w), 4, "4*T1");
    let ok = w.take_resp(CARRIER, 200, "INVITE");
    let a_tag = tag(&hdr(&ok, "To").unwrap());
    w.carrier_sends(carrier_in_dialog("ACK", "rt1", &a_tag, 1, &[], ""));
    w.advance(Duration::from_secs(30));
    assert_eq!(count(&w), 4, "no more after the ACK");
    assert_eq!(w.b.active_calls(), 1);
}

#[test]
fn call_without_ack_from_carrier_is_ended() {
    let mut w = World::new();
    w.carrier_sends(carrier_invite("na1", &carrier_sdp(30000, "sendrecv"), &[]));
    let inv = w.take_req(MS[0], "INVITE");
    w.ms_sends(
        0,
        answer(
            &inv,
            200,
            "ms-tag",
            &[format!("Contact: {CONTACT_443}")],
            &ms_sdp("52.113.1.1", 49152, MS_KEY1, "sendrecv"),
        ),
    );
    // 200 at 0, 0.5, 1.5, 3.5, 7.5 … 31.5 s; at 35.5 s (past 64*T1) the
    // SBC gives up and hangs up both sides.
    w.advance(Duration::from_secs(36));
    let oks = w
        .ever_sent_to(CARRIER)
        .iter()
        .filter(|l| l.starts_with("SIP/2.0 200"))
        .count();
    assert_eq!(oks, 11);
    w.take_req(MS[0], "BYE");
    assert_eq!(w.b.active_calls(), 0);
}

// ----- transfer: REFER and Replaces -------------------------------------------------

const REFER_TO_URI: &str =
    "sip:sip.pstnhub.microsoft.com:5061;transport=tls;x-m=8:orgid:dfcba638-1111;x-t=4dca0001";
const REFERRED_BY: &str = "<sip:sip.pstnhub.microsoft.com:5061;x-m=8:orgid:fa27;x-t=4dca0001;x-ti=b712;x-tt=aHR0cHM6Ly9leGFtcGxl%3D>";

#[test]
fn a_silent_transfer_target_fails_the_transfer_after_the_attempt_timer() {
    let mut w = World::new();
    let e = establish(&mut w);
    let refer = ms_in_dialog(
        "REFER",
        &e.teams_call_id(),
        &e.ms_from(),
        &e.ms_to(),
        2,
        &[
            format!("Refer-To: <{REFER_TO_URI}>"),
            format!("Referred-By: {REFERRED_BY}"),
        ],
        "",
    );
    w.ms_sends(0, refer);
    w.take_resp(MS[0], 202, "REFER");
    let n1 = w.take_req(MS[0], "NOTIFY");
    w.ms_sends(0, answer(&n1, 200, "ms-tag", &[], ""));
    w.take_req(MS[0], "INVITE");
    // The target never answers: after 2 s (not Timer B's 32 s) the
    // transferor hears the transfer failed, and the call stays.
    w.advance(Duration::from_millis(1900));
    assert!(w
        .try_take(MS[0], |m| m.method_str() == Some("NOTIFY"))
        .is_none());
    w.advance(Duration::from_millis(200));
    let n2 = w.take_req(MS[0], "NOTIFY");
    assert!(body(&n2).starts_with("SIP/2.0 408"), "{}", body(&n2));
    assert_eq!(w.b.active_calls(), 1);
}

#[test]
fn refer_from_teams_transfers_without_carrier_noticing() {
    let mut w = World::new();
    let e = establish(&mut w);
    let first_key = crypto_line(&body(&e.invite)).unwrap();
    let sent_to_carrier = w.ever_sent_to(CARRIER).len();
    let updates_before = w.media().updates.len();
    let refer = ms_in_dialog(
        "REFER",
        &e.teams_call_id(),
        &e.ms_from(),
        &e.ms_to(),
        2,
        &[
            format!("Refer-To: <{REFER_TO_URI}?Replaces=abc%3Bto-tag%3D1%3Bfrom-tag%3D2>"),
            format!("Referred-By: {REFERRED_BY}"),
        ],
        "",
    );
    w.ms_sends(0, refer);
    w.take_resp(MS[0], 202, "REFER");
    let n1 = w.take_req(MS[0], "NOTIFY");
    assert_eq!(n1.call_id().unwrap(), e.teams_call_id());
    assert_eq!(ruri(&n1), CONTACT_443_URI);
    assert_eq!(hdrs(&n1, "Route"), vec![MS_RR.to_owned()]);
    assert_eq!(hdr(&n1, "Event").as_deref(), Some("refer"));
    assert!(hdr(&n1, "Content-Type")
        .unwrap()
        .starts_with("message/sipfrag"));
    assert!(body(&n1).starts_with("SIP/2.0 100 Trying"), "{}", body(&n1));
    assert!(hdr(&n1, "Subscription-State")
        .unwrap()
        .starts_with("active"));
    assert!(hdr(&n1, "Contact").unwrap().contains(TEAMS_FQDN));
    w.ms_sends(0, answer(&n1, 200, "ms-tag", &[], ""));

    let inv = w.take_req(MS[0], "INVITE");
    let t = text(&inv);
    assert_eq!(ruri(&inv), REFER_TO_URI, "Refer-To verbatim");
    assert_ne!(inv.call_id().unwrap(), e.teams_call_id());
    assert_eq!(hdr(&inv, "Referred-By").as_deref(), Some(REFERRED_BY));
    assert!(!t.to_ascii_lowercase().contains("replaces"), "{t}");
    assert!(hdr(&inv, "Contact").unwrap().contains(TEAMS_FQDN));
    assert!(hdr(&inv, "From").unwrap().contains("+49891234567"));
    let ib = body(&inv);
    assert_eq!(sdp_audio(&ib), (MEDIA_IP.to_owned(), 40002), "{ib}");
    let new_key = crypto_line(&ib).expect("SRTP toward the target");
    assert_ne!(new_key, first_key, "a fresh key for the new dialog");

    w.ms_sends(
        0,
        answer(
            &inv,
            180,
            "target-tag",
            &[format!("Contact: {CONTACT_443}")],
            "",
        ),
    );
    w.ms_sends(
        0,
        answer(
            &inv,
            200,
            "target-tag",
            &[
                format!("Contact: {CONTACT_443}"),
                format!("Record-Route: {MS_RR}"),
            ],
            &ms_sdp("52.113.2.2", 50000, MS_KEY2, "sendrecv"),
        ),
    );
    let ack = w.take_req(MS[0], "ACK");
    assert_eq!(tag(&hdr(&ack, "To").unwrap()), "target-tag");
    let n2 = w.take_req(MS[0], "NOTIFY");
    assert_eq!(n2.call_id().unwrap(), e.teams_call_id());
    assert!(body(&n2).starts_with("SIP/2.0 200 OK"), "{}", body(&n2));
    assert!(hdr(&n2, "Subscription-State")
        .unwrap()
        .starts_with("terminated"));
    let bye = w.take_req(MS[0], "BYE");
    assert_eq!(bye.call_id().unwrap(), e.teams_call_id());
    assert!(
        n2.cseq().unwrap().seq < bye.cseq().unwrap().seq,
        "NOTIFY before BYE"
    );
    {
        let m = w.media();
        let u = m.updates[updates_before..]
            .iter()
            .rfind(|u| u.side == Side::B && u.rtp.is_some())
            .expect("relay re-pointed at the target");
        assert_eq!(u.rtp, Some(addr("52.113.2.2:50000")));
        let c = m.updates[updates_before..]
            .iter()
            .rev()
            .find_map(|u| (u.side == Side::B).then(|| u.crypto.clone()).flatten())
            .expect("new keys installed");
        assert!(c.rx == Some(policy(MS_KEY2)));
        let new_tx = CryptoAttribute::parse(&new_key).unwrap().srtp_policy().ok();
        assert!(c.tx == new_tx, "the relay sends with the new key");
    }
    assert_eq!(
        w.ever_sent_to(CARRIER).len(),
        sent_to_carrier,
        "the carrier saw nothing: {:?}",
        w.ever_sent_to(CARRIER)
    );
    assert_eq!(w.b.counters().transfers, 1);

    // The call goes on with the target: its BYE reaches the carrier.
    w.ms_sends(0, answer(&bye, 200, "ms-tag", &[], ""));
    w.clear();
    let target_bye = ms_in_dialog(
        "BYE",
        inv.call_id().unwrap(),
        &format!("<{REFER_TO_URI}>;tag=target-tag"),
        &hdr(&inv, "From").unwrap(),
        5,
        &[],
        "",
    );
    w.ms_sends(0, target_bye);
    w.take_resp(MS[0], 200, "BYE");
    let cbye = w.take_req(CARRIER, "BYE");
    assert_eq!(cbye.call_id().unwrap(), e.a_call_id);
    let cdr = &w.cdrs()[0];
    assert_eq!(cdr.transfers, 1);
}

#[test]
fn invite_with_replaces_from_microsoft_replaces_the_dialog() {
    let mut w = World::new();
    let e = establish(&mut w);
    let sent_to_carrier = w.ever_sent_to(CARRIER).len();
    let our_tag = tag(&e.ms_to());
    let replaces = format!(
        "Replaces: {};to-tag={our_tag};from-tag=ms-tag",
        e.teams_call_id()
    );
    w.ms_sends(
        0,
        ms_invite(
            "replacing-1",
            &ms_sdp("52.113.3.3", 51000, MS_KEY2, "sendrecv"),
            &[replaces],
        ),
    );
    let ok = w.take_resp(MS[0], 200, "INVITE");
    assert!(hdr(&ok, "Contact").unwrap().contains(TEAMS_FQDN));
    let ob = body(&ok);
    assert_eq!(sdp_audio(&ob), (MEDIA_IP.to_owned(), 40002), "{ob}");
    assert!(crypto_line(&ob).is_some(), "{ob}");
    let bye = w.take_req(MS[0], "BYE");
    assert_eq!(bye.call_id().unwrap(), e.teams_call_id());
    {
        let m = w.media();
        let u = m
            .updates
            .iter()
            .rfind(|u| u.side == Side::B)
            .expect("relay re-pointed");
        assert_eq!(u.rtp, Some(addr("52.113.3.3:51000")));
        assert!(u.crypto.as_ref().and_then(|c| c.rx.clone()) == Some(policy(MS_KEY2)));
    }
    assert_eq!(w.ever_sent_to(CARRIER).len(), sent_to_carrier);
    // The new dialog is the call now: its BYE ends it.
    let to = hdr(&ok, "To").unwrap();
    w.ms_sends(
        0,
        ms_in_dialog("ACK", "replacing-1", MS_FROM, &to, 1, &[], ""),
    );
    w.ms_sends(
        0,
        ms_in_dialog("BYE", "replacing-1", MS_FROM, &to, 2, &[], ""),
    );
    w.take_resp(MS[0], 200, "BYE");
    w.take_req(CARRIER, "BYE");
    assert_eq!(w.b.active_calls(), 0);
}

#[test]
fn invite_with_unknown_replaces_gets_481() {
    let mut w = World::new();
    let _e = establish(&mut w);
    w.ms_sends(
        0,
        ms_invite(
            "replacing-2",
            &ms_sdp("52.113.3.3", 51000, MS_KEY2, "sendrecv"),
            &["Replaces: nosuchcall@x;to-tag=a;from-tag=b".to_owned()],
        ),
    );
    w.take_resp(MS[0], 481, "INVITE");
    assert!(w.pending_to(CARRIER).is_empty());
    assert_eq!(w.b.active_calls(), 1);
}

// ----- OPTIONS, classification, health ---------------------------------------------

#[test]
fn options_from_microsoft_answered_200_with_fqdn_contact_and_allow_refer() {
    let mut w = World::new();
    let opt = build(
        &format!("OPTIONS sip:{TEAMS_FQDN}:5061;transport=tls SIP/2.0"),
        &[
            "Via: SIP/2.0/TLS 52.112.1.2:5061;branch=z9hG4bKa01fb94a".to_owned(),
            "From: <sip:sip-du-a-eu.pstnhub.microsoft.com:5061>;tag=8eb9".into(),
            format!("To: <sip:{TEAMS_FQDN}>"),
            "Call-ID: opt-1".into(),
            "CSeq: 1 OPTIONS".into(),
            "Contact: <sip:sip-du-a-eu.pstnhub.microsoft.com:5061>".into(),
            "Allow: INVITE,ACK,OPTIONS,CANCEL,BYE,NOTIFY".into(),
            "Max-Forwards: 70".into(),
        ],
        "",
    );
    w.ms_sends(1, opt);
    let r = w.take_resp(MS[1], 200, "OPTIONS");
    assert_eq!(
        hdr(&r, "Contact").as_deref(),
        Some(format!("<sip:{TEAMS_FQDN}:5061;transport=tls>").as_str())
    );
    assert!(hdr(&r, "Allow").unwrap().contains("REFER"));
    assert!(hdr(&r, "X-MS-SBC").is_some());
    assert!(!tag(&hdr(&r, "To").unwrap()).is_empty());
    assert_eq!(w.b.counters().options_answered, 1);
}

#[test]
fn unclassified_source_gets_403() {
    let mut w = World::new();
    let inv = carrier_invite("stranger", &carrier_sdp(30000, "sendrecv"), &[]);
    w.deliver(
        inv,
        transaction::Peer::new(addr("198.51.100.99:5060"), transaction::Transport::Udp),
        addr(SBC_UDP),
        None,
    );
    let r = w
        .try_take("198.51.100.99:5060", |m| m.status() == Some(403))
        .unwrap_or_else(|| panic!("no 403:\n{}", w.dump()));
    assert_eq!(cseq_method(&r), "INVITE");
    // From Microsoft's range, but with a certificate naming someone else.
    let inv = ms_invite(
        "ms-bad-cert",
        &ms_sdp("52.113.1.1", 49152, MS_KEY1, "sendrecv"),
        &[],
    );
    w.deliver(
        inv,
        transaction::Peer::new(addr(MS[0]), transaction::Transport::Tls),
        addr(SBC_TLS),
        Some(vec!["evil.example.com".to_owned()]),
    );
    w.take_resp(MS[0], 403, "INVITE");
    assert!(w.pending_to(CARRIER).is_empty());
    assert_eq!(w.b.counters().unclassified, 2);
    assert!(w.media().creates.is_empty());
}

#[test]
fn options_pings_sent_to_sip_sip2_sip3_and_health_marks_down_on_timeout() {
    let mut cfg = config();
    // Only the Teams trunk pings, to keep the picture simple.
    cfg.trunks[2].options.enabled = false;
    let mut w = World::with(cfg);
    // The first pings went out at start, answered automatically; answer
    // the next ones by hand.
    assert_eq!(w.pings_answered(), 3);
    w.set_auto_pings(false);
    w.advance(Duration::from_secs(60));
    let mut pings = Vec::new();
    for (ms, host) in MS.iter().zip(MS_HOSTS) {
        let p = w.take_req(ms, "OPTIONS");
        assert_eq!(ruri(&p), format!("sip:{host}:5061;transport=tls"));
        assert_eq!(
            hdr(&p, "Contact").as_deref(),
            Some(format!("<sip:{TEAMS_FQDN}:5061;transport=tls>").as_str())
        );
        assert!(hdr(&p, "From")
            .unwrap()
            .starts_with(&format!("<sip:{TEAMS_FQDN}:5061>;tag=")));
        assert!(hdr(&p, "To").unwrap().contains(host));
        assert!(hdr(&p, "Via")
            .unwrap()
            .starts_with(&format!("SIP/2.0/TLS {TEAMS_FQDN}:5061;branch=z9hG4bK")));
        assert_eq!(cseq_method(&p), "OPTIONS");
        assert_eq!(hdr(&p, "Max-Forwards").as_deref(), Some("70"));
        assert!(hdr(&p, "Allow").unwrap().contains("REFER"));
        assert!(hdr(&p, "X-MS-SBC").is_some());
        assert!(hdr(&p, "User-Agent").is_some());
        pings.push(p);
    }
    assert!(w.b.peer_states(1).iter().all(|s| !s.is_down()));
    // sip and sip2 answer, sip3 stays silent.
    w.ms_sends(0, answer(&pings[0], 200, "p1", &[], ""));
    w.ms_sends(1, answer(&pings[1], 200, "p2", &[], ""));
    w.advance(Duration::from_secs(33));
    let states = w.b.peer_states(1);
    assert!(!states[0].is_down() && !states[1].is_down());
    assert!(states[2].is_down(), "{states:?}");
    let down: Vec<_> = w
        .outputs
        .iter()
        .filter_map(|o| match o {
            b2bua::Output::Health {
                host, up: false, ..
            } => Some(host.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(down, vec![MS_HOSTS[2].to_owned()]);
    // Pings go on every 60 s, to the down peer too.
    w.clear();
    w.advance(Duration::from_secs(30));
    for ms in MS {
        w.take_req(ms, "OPTIONS");
    }
}

// ----- more in-dialog traffic --------------------------------------------------------

#[test]
fn carrier_hold_reaches_teams_on_the_same_port_with_the_same_key() {
    let mut w = World::new();
    let e = establish(&mut w);
    let key = crypto_line(&body(&e.invite)).unwrap();
    w.carrier_sends(carrier_in_dialog(
        "INVITE",
        &e.a_call_id,
        &e.a_tag,
        2,
        &["Contact: <sip:0891234567@192.0.2.10:5060>".to_owned()],
        &carrier_sdp(30000, "sendonly").replace("o=carrier 1 1", "o=carrier 1 2"),
    ));
    let re = w.take_req(MS[0], "INVITE");
    assert_eq!(ruri(&re), CONTACT_443_URI);
    assert_eq!(hdrs(&re, "Route"), vec![MS_RR.to_owned()]);
    assert!(hdr(&re, "Contact").unwrap().contains(TEAMS_FQDN));
    assert!(hdr(&re, "X-MS-SBC").is_some());
    let rb = body(&re);
    assert!(rb.contains("a=sendonly"), "{rb}");
    assert_eq!(sdp_audio(&rb), (MEDIA_IP.to_owned(), 40002), "{rb}");
    assert_eq!(crypto_line(&rb).as_deref(), Some(key.as_str()), "same key");
    w.ms_sends(
        0,
        answer(
            &re,
            200,
            "ms-tag",
            &[format!("Contact: {CONTACT_443}")],
            &ms_sdp("52.113.1.1", 49152, MS_KEY1, "recvonly"),
        ),
    );
    w.take_req(MS[0], "ACK");
    let ok = w.take_resp(CARRIER, 200, "INVITE");
    let ob = body(&ok);
    assert!(ob.contains("a=recvonly"), "{ob}");
    assert_eq!(sdp_audio(&ob), (MEDIA_IP.to_owned(), 40000));
    assert!(crypto_line(&ob).is_none());
    assert_eq!(w.media().keys.len(), 1);
}

#[test]
fn reinvite_refused_by_teams_is_relayed_and_the_call_goes_on() {
    let mut w = World::new();
    let e = establish(&mut w);
    w.carrier_sends(carrier_in_dialog(
        "INVITE",
        &e.a_call_id,
        &e.a_tag,
        2,
        &[],
        &carrier_sdp(30004, "sendrecv"),
    ));
    let re = w.take_req(MS[0], "INVITE");
    w.ms_sends(0, answer(&re, 488, "ms-tag", &[], ""));
    w.take_req(MS[0], "ACK");
    w.take_resp(CARRIER, 488, "INVITE");
    assert_eq!(w.b.active_calls(), 1);
    w.carrier_sends(carrier_in_dialog("BYE", &e.a_call_id, &e.a_tag, 3, &[], ""));
    w.take_req(MS[0], "BYE");
}

#[test]
fn info_forwarded_and_in_dialog_options_answered() {
    let mut w = World::new();
    let e = establish(&mut w);
    w.carrier_sends(carrier_in_dialog(
        "INFO",
        &e.a_call_id,
        &e.a_tag,
        2,
        &["Content-Type: application/dtmf-relay".to_owned()],
        "Signal=5\r\nDuration=160\r\n",
    ));
    let info = w.take_req(MS[0], "INFO");
    assert_eq!(body(&info), "Signal=5\r\nDuration=160\r\n");
    assert_eq!(ruri(&info), CONTACT_443_URI);
    w.ms_sends(0, answer(&info, 200, "ms-tag", &[], ""));
    w.take_resp(CARRIER, 200, "INFO");
    w.ms_sends(
        0,
        ms_in_dialog(
            "OPTIONS",
            &e.teams_call_id(),
            &e.ms_from(),
            &e.ms_to(),
            2,
            &[],
            "",
        ),
    );
    w.take_resp(MS[0], 200, "OPTIONS");
    assert!(w.pending_to(CARRIER).is_empty());
}

#[test]
fn cancel_from_teams_cancels_carrier() {
    let mut w = World::new();
    w.ms_sends(
        0,
        ms_invite(
            "ms-cx",
            &ms_sdp("52.113.1.1", 49152, MS_KEY1, "sendrecv"),
            &[],
        ),
    );
    let inv = w.take_req(CARRIER, "INVITE");
    w.carrier_sends(answer(&inv, 180, "c-tag", &[], ""));
    w.take_resp(MS[0], 180, "INVITE");
    let cancel = build(
        &format!("CANCEL sip:+4989222@{TEAMS_FQDN}:5061;user=phone;transport=tls SIP/2.0"),
        &[
            "Via: SIP/2.0/TLS 52.112.1.1:5061;branch=z9hG4bK-ms-cx".to_owned(),
            "Max-Forwards: 69".into(),
            MS_FROM.replace("\"Bob\"", "From: \"Bob\""),
            format!("To: <sip:+4989222@{TEAMS_FQDN}:5061;user=phone>"),
            "Call-ID: ms-cx".into(),
            "CSeq: 1 CANCEL".into(),
        ],
        "",
    );
    w.ms_sends(0, cancel);
    w.take_resp(MS[0], 200, "CANCEL");
    w.take_resp(MS[0], 487, "INVITE");
    let c = w.take_req(CARRIER, "CANCEL");
    w.carrier_sends(answer(&c, 200, "c-tag", &[], ""));
    w.carrier_sends(answer(&inv, 487, "c-tag", &[], ""));
    w.take_req(CARRIER, "ACK");
    assert_eq!(w.cdrs()[0].status, 487);
}

#[test]
fn busy_carrier_relayed_to_teams() {
    let mut w = World::new();
    w.ms_sends(
        0,
        ms_invite(
            "ms-busy",
            &ms_sdp("52.113.1.1", 49152, MS_KEY1, "sendrecv"),
            &[],
        ),
    );
    let inv = w.take_req(CARRIER, "INVITE");
    w.carrier_sends(answer(&inv, 486, "c-tag", &[], ""));
    w.take_req(CARRIER, "ACK");
    let r = w.take_resp(MS[0], 486, "INVITE");
    assert!(hdr(&r, "X-MS-SBC").is_some());
    assert_eq!(w.cdrs()[0].status, 486);
    assert_eq!(w.b.active_calls(), 0);
}

#[test]
fn anonymous_caller_reaches_teams_as_anonymous() {
    let mut w = World::new();
    let inv = build(
        "INVITE sip:030123456@192.0.2.1:5060 SIP/2.0",
        &[
            "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-anon".to_owned(),
            "Max-Forwards: 70".into(),
            "From: \"Anonymous\" <sip:anonymous@anonymous.invalid>;tag=c-from".into(),
            "To: <sip:030123456@192.0.2.1>".into(),
            "Call-ID: anon1".into(),
            "CSeq: 1 INVITE".into(),
            "Contact: <sip:192.0.2.10:5060>".into(),
            "Privacy: id".into(),
        ],
        &carrier_sdp(30000, "sendrecv"),
    );
    w.carrier_sends(inv);
    let out = w.take_req(MS[0], "INVITE");
    let from = hdr(&out, "From").unwrap();
    assert!(
        from.starts_with("\"Anonymous\" <sip:anonymous@anonymous.invalid>"),
        "{from}"
    );
    let contact = hdr(&out, "Contact").unwrap();
    assert_eq!(
        contact,
        format!("<sip:{TEAMS_FQDN}:5061;transport=tls>"),
        "FQDN Contact without a user"
    );
}

#[test]
fn refer_to_a_pstn_number_is_routed_to_the_carrier() {
    let mut cfg = config();
    // A Teams user calls the carrier and transfers the call to another number.
    cfg.routes.routes[1] = route("from-teams", "teams", vec![dest("carrier", None)]);
    let mut w = World::with(cfg);
    let c = establish_from_teams(&mut w, &[]);
    let to = c.our_side();
    w.ms_sends(
        0,
        ms_in_dialog(
            "REFER",
            &c.ms_call_id,
            MS_FROM,
            &to,
            2,
            &[
                "Refer-To: <sip:+4989333@sip.pstnhub.microsoft.com:5061;user=phone;transport=tls>"
                    .to_owned(),
                format!("Referred-By: {REFERRED_BY}"),
            ],
            "",
        ),
    );
    w.take_resp(MS[0], 202, "REFER");
    w.take_req(MS[0], "NOTIFY");
    let inv = w.take_req(CARRIER, "INVITE");
    assert!(ruri(&inv).starts_with("sip:089333@"), "{}", ruri(&inv));
    assert_ne!(inv.call_id().unwrap(), c.c_invite.call_id().unwrap());
    assert!(w
        .try_take(MS[0], |m| m.method_str() == Some("INVITE"))
        .is_none());
    let ib = body(&inv);
    assert!(ib.contains("RTP/AVP") && crypto_line(&ib).is_none(), "{ib}");
    assert_eq!(sdp_audio(&ib), (MEDIA_IP.to_owned(), 40000), "{ib}");
    w.carrier_sends(answer(
        &inv,
        200,
        "target",
        &["Contact: <sip:089333@192.0.2.10:5060>".to_owned()],
        &carrier_sdp(30008, "sendrecv"),
    ));
    w.take_req(CARRIER, "ACK");
    let n = w.take_req(MS[0], "NOTIFY");
    assert!(body(&n).starts_with("SIP/2.0 200"));
    w.take_req(MS[0], "BYE");
    let m = w.media();
    let u = m.updates.last().unwrap();
    assert_eq!(u.side, Side::A);
    assert_eq!(u.rtp, Some(addr("198.51.100.7:30008")));
    let spec = u.crypto.as_ref().expect("keys replaced");
    assert!(
        spec.rx.is_none() && spec.tx.is_none(),
        "plain RTP toward the target"
    );
    let _ = &c.c_ok;
}

// ----- trunk limits and bookkeeping ---------------------------------------------------

#[test]
fn call_limit_holds_after_an_attempt_timed_out_and_was_cancelled() {
    let mut cfg = config();
    cfg.trunks[1].max_calls = Some(1);
    let mut w = World::with(cfg);
    w.carrier_sends(carrier_invite("lim1", &carrier_sdp(30000, "sendrecv"), &[]));
    let inv = w.take_req(MS[0], "INVITE");
    // sip says nothing for 5 s: the SBC moves to sip2 and cancels sip
    // once sip shows life; sip then ends its INVITE with 487.
    w.advance(Duration::from_millis(2100));
    let inv2 = w.take_req(MS[1], "INVITE");
    w.ms_sends(0, answer(&inv, 100, "", &[], ""));
    if let Some(c) = w.try_take(MS[0], |m| m.method_str() == Some("CANCEL")) {
        w.ms_sends(0, answer(&c, 200, "late", &[], ""));
    }
    w.ms_sends(0, answer(&inv, 487, "late", &[], ""));
    w.ms_sends(
        1,
        answer(
            &inv2,
            200,
            "ms-tag",
            &[format!("Contact: {CONTACT_443}")],
            &ms_sdp("52.113.1.1", 49152, MS_KEY1, "sendrecv"),
        ),
    );
    w.take_resp(CARRIER, 200, "INVITE");
    w.clear();
    // One call up on a trunk limited to one: the next is refused.
    w.carrier_sends(carrier_invite("lim2", &carrier_sdp(30010, "sendrecv"), &[]));
    assert!(
        w.try_take(MS[0], |m| m.method_str() == Some("INVITE"))
            .is_none()
            && w.try_take(MS[1], |m| m.method_str() == Some("INVITE"))
                .is_none(),
        "the Teams trunk is at its limit"
    );
    let st = final_to_carrier(&mut w);
    assert_eq!(st, 503);
}

#[test]
fn call_limit_refuses_with_503_and_frees_the_slot_at_the_end() {
    let mut cfg = config();
    cfg.trunks[1].max_calls = Some(1);
    let mut w = World::with(cfg);
    let e = establish(&mut w);
    w.carrier_sends(carrier_invite("lim3", &carrier_sdp(30010, "sendrecv"), &[]));
    assert_eq!(final_to_carrier(&mut w), 503);
    w.carrier_sends(carrier_in_dialog("BYE", &e.a_call_id, &e.a_tag, 2, &[], ""));
    w.clear();
    w.carrier_sends(carrier_invite("lim4", &carrier_sdp(30020, "sendrecv"), &[]));
    w.take_req(MS[0], "INVITE");
}

#[test]
fn teams_2xx_retransmission_acked_again_and_relayed_once() {
    let mut w = World::new();
    w.carrier_sends(carrier_invite("rx1", &carrier_sdp(30000, "sendrecv"), &[]));
    let inv = w.take_req(MS[0], "INVITE");
    let ok = answer(
        &inv,
        200,
        "ms-tag",
        &[
            format!("Contact: {CONTACT_443}"),
            format!("Record-Route: {MS_RR}"),
        ],
        &ms_sdp("52.113.1.1", 49152, MS_KEY1, "sendrecv"),
    );
    w.ms_sends(0, ok.clone());
    w.take_req(MS[0], "ACK");
    w.ms_sends(0, ok);
    let ack2 = w.take_req(MS[0], "ACK");
    assert_eq!(ruri(&ack2), CONTACT_443_URI);
    w.take_resp(CARRIER, 200, "INVITE");
    assert!(w.try_take(CARRIER, |m| m.status() == Some(200)).is_none());
}

#[test]
fn codecs_filtered_to_the_trunk_list_and_max_forwards_decremented() {
    let mut cfg = config();
    cfg.trunks[1].codecs = vec!["PCMU".into(), "telephone-event".into()];
    let mut w = World::with(cfg);
    w.carrier_sends(carrier_invite("cod1", &carrier_sdp(30000, "sendrecv"), &[]));
    let inv = w.take_req(MS[0], "INVITE");
    let b = body(&inv);
    assert!(b.contains("m=audio 40002 RTP/SAVP 0 101\r\n"), "{b}");
    assert!(!b.contains("PCMA"), "{b}");
    assert_eq!(hdr(&inv, "Max-Forwards").as_deref(), Some("69"));
}

#[test]
fn carrier_session_refresh_by_update_keeps_the_call() {
    let mut w = World::new();
    let a_call_id = "upd1";
    w.carrier_sends(carrier_invite(
        a_call_id,
        &carrier_sdp(30000, "sendrecv"),
        &[
            "Supported: timer".to_owned(),
            "Session-Expires: 120".to_owned(),
        ],
    ));
    let inv = w.take_req(MS[0], "INVITE");
    assert!(hdr(&inv, "Session-Expires").is_none() || hdr(&inv, "Supported").is_some());
    w.ms_sends(
        0,
        answer(
            &inv,
            200,
            "ms-tag",
            &[format!("Contact: {CONTACT_443}")],
            &ms_sdp("52.113.1.1", 49152, MS_KEY1, "sendrecv"),
        ),
    );
    let ok = w.take_resp(CARRIER, 200, "INVITE");
    assert!(hdr(&ok, "Session-Expires").unwrap().starts_with("120"));
    let a_tag = tag(&hdr(&ok, "To").unwrap());
    w.carrier_sends(carrier_in_dialog("ACK", a_call_id, &a_tag, 1, &[], ""));
    w.advance(Duration::from_secs(100));
    w.carrier_sends(carrier_in_dialog(
        "UPDATE",
        a_call_id,
        &a_tag,
        2,
        &[
            "Supported: timer".to_owned(),
            "Session-Expires: 120".to_owned(),
        ],
        "",
    ));
    w.take_resp(CARRIER, 200, "UPDATE");
    w.advance(Duration::from_secs(100));
    assert_eq!(w.b.active_calls(), 1, "refreshed at 100 s");
    w.advance(Duration::from_secs(30));
    assert_eq!(w.b.active_calls(), 0, "expired at 220 s");
}

#[test]
fn late_2xx_of_an_abandoned_attempt_is_hung_up() {
    let mut cfg = config();
    cfg.trunks[1].max_calls = Some(1);
    let mut w = World::with(cfg);
    w.carrier_sends(carrier_invite("ab1", &carrier_sdp(30000, "sendrecv"), &[]));
    let inv = w.take_req(MS[0], "INVITE");
    w.advance(Duration::from_millis(2100));
    let inv2 = w.take_req(MS[1], "INVITE");
    // sip answers after all, while sip2 is being tried.
    w.ms_sends(
        0,
        answer(
            &inv,
            200,
            "late",
            &[format!("Contact: {CONTACT_443}")],
            &ms_sdp("52.113.9.9", 49000, MS_KEY2, "sendrecv"),
        ),
    );
    w.take_req(MS[0], "ACK");
    let bye = w.take_req(MS[0], "BYE");
    assert_eq!(bye.call_id().unwrap(), inv.call_id().unwrap());
    assert!(w.try_take(CARRIER, |m| m.status() == Some(200)).is_none());
    w.ms_sends(
        1,
        answer(
            &inv2,
            200,
            "ms-tag",
            &[format!("Contact: {CONTACT_443}")],
            &ms_sdp("52.113.1.1", 49152, MS_KEY1, "sendrecv"),
        ),
    );
    w.take_resp(CARRIER, 200, "INVITE");
    {
        let m = w.media();
        let u = m.updates.iter().rfind(|u| u.rtp.is_some()).unwrap();
        assert_eq!(u.rtp, Some(addr("52.113.1.1:49152")), "media follows sip2");
    }
    w.clear();
    w.carrier_sends(carrier_invite("ab2", &carrier_sdp(30010, "sendrecv"), &[]));
    assert_eq!(
        final_to_carrier(&mut w),
        503,
        "one call up on a one-call trunk"
    );
}

#[test]
fn late_2xx_of_an_abandoned_attempt_after_the_answer_leaves_media_alone() {
    let mut w = World::new();
    w.carrier_sends(carrier_invite("ab3", &carrier_sdp(30000, "sendrecv"), &[]));
    let inv = w.take_req(MS[0], "INVITE");
    w.advance(Duration::from_millis(2100));
    let inv2 = w.take_req(MS[1], "INVITE");
    w.ms_sends(
        1,
        answer(
            &inv2,
            200,
            "ms-tag",
            &[format!("Contact: {CONTACT_443}")],
            &ms_sdp("52.113.1.1", 49152, MS_KEY1, "sendrecv"),
        ),
    );
    w.take_resp(CARRIER, 200, "INVITE");
    let updates = w.media().updates.len();
    w.ms_sends(
        0,
        answer(
            &inv,
            200,
            "late",
            &[format!("Contact: {CONTACT_443}")],
            &ms_sdp("52.113.9.9", 49000, MS_KEY2, "sendrecv"),
        ),
    );
    w.take_req(MS[0], "BYE");
    let m = w.media();
    assert!(
        m.updates[updates..].is_empty(),
        "the relay must keep sending to sip2: {:?}",
        m.updates[updates..]
            .iter()
            .map(|u| u.rtp)
            .collect::<Vec<_>>()
    );
}

// ----- more edges ----------------------------------------------------------------------

#[test]
fn refer_target_busy_keeps_the_call() {
    let mut w = World::new();
    let e = establish(&mut w);
    w.ms_sends(
        0,
        ms_in_dialog(
            "REFER",
            &e.teams_call_id(),
            &e.ms_from(),
            &e.ms_to(),
            2,
            &[
                format!("Refer-To: <{REFER_TO_URI}>"),
                format!("Referred-By: {REFERRED_BY}"),
            ],
            "",
        ),
    );
    w.take_resp(MS[0], 202, "REFER");
    w.take_req(MS[0], "NOTIFY");
    let inv = w.take_req(MS[0], "INVITE");
    w.ms_sends(0, answer(&inv, 486, "t", &[], ""));
    w.take_req(MS[0], "ACK");
    let n = w.take_req(MS[0], "NOTIFY");
    assert!(body(&n).starts_with("SIP/2.0 486"), "{}", body(&n));
    assert!(hdr(&n, "Subscription-State")
        .unwrap()
        .starts_with("terminated"));
    assert!(w
        .try_take(MS[0], |m| m.method_str() == Some("BYE"))
        .is_none());
    assert_eq!(w.b.active_calls(), 1);
    // The original dialog still carries the call.
    w.carrier_sends(carrier_in_dialog("BYE", &e.a_call_id, &e.a_tag, 2, &[], ""));
    let bye = w.take_req(MS[0], "BYE");
    assert_eq!(bye.call_id().unwrap(), e.teams_call_id());
}

#[test]
fn request_on_an_unknown_dialog_gets_481() {
    let mut w = World::new();
    w.carrier_sends(carrier_in_dialog("BYE", "nosuch", "nosuchtag", 2, &[], ""));
    w.take_resp(CARRIER, 481, "BYE");
    assert_eq!(w.b.counters().no_dialog, 1);
}

#[test]
fn peer_down_is_tried_last() {
    let mut cfg = config();
    cfg.trunks[2].options.enabled = false;
    let mut w = World::with(cfg);
    w.set_auto_pings(false);
    w.advance(Duration::from_secs(60));
    // sip stays silent, sip2 and sip3 answer.
    let _p0 = w.take_req(MS[0], "OPTIONS");
    for (i, ms) in MS.iter().enumerate().skip(1) {
        let p = w.take_req(ms, "OPTIONS");
        w.ms_sends(i, answer(&p, 200, "p", &[], ""));
    }
    w.advance(Duration::from_secs(33));
    assert!(w.b.peer_states(1)[0].is_down());
    w.set_auto_pings(true);
    w.clear();
    w.carrier_sends(carrier_invite(
        "down1",
        &carrier_sdp(30000, "sendrecv"),
        &[],
    ));
    let inv = w.take_req(MS[1], "INVITE");
    assert!(ruri(&inv).contains("sip2.pstnhub.microsoft.com"));
    assert!(w.pending_to(MS[0]).is_empty());
}

#[test]
fn acs_call_reaches_carrier_with_acs_fqdn() {
    let mut w = World::new();
    let inv = build(
        &format!("INVITE sip:+4989222@{ACS_FQDN}:5061;user=phone;transport=tls SIP/2.0"),
        &[
            "Via: SIP/2.0/TLS 52.112.1.1:5061;branch=z9hG4bK-acs1".to_owned(),
            format!("Record-Route: {MS_RR}"),
            "Max-Forwards: 69".into(),
            MS_FROM.replace("\"Bob\"", "From: \"Bob\""),
            format!("To: <sip:+4989222@{ACS_FQDN}:5061;user=phone>"),
            "Call-ID: acs-call-1".into(),
            "CSeq: 1 INVITE".into(),
            format!("Contact: {CONTACT_443}"),
        ],
        &ms_sdp("52.113.1.1", 49152, MS_KEY1, "sendrecv"),
    );
    w.ms_sends(0, inv);
    let c = w.take_req(CARRIER, "INVITE");
    w.carrier_sends(answer(
        &c,
        200,
        "c-tag",
        &["Contact: <sip:089222@192.0.2.10:5060>".to_owned()],
        &carrier_sdp(30000, "sendrecv"),
    ));
    let ok = w.take_resp(MS[0], 200, "INVITE");
    let contact = hdr(&ok, "Contact").unwrap();
    assert!(contact.contains(&format!("@{ACS_FQDN}:5061")), "{contact}");
    assert_eq!(w.cdrs().len(), 0);
    assert_eq!(w.b.active_calls(), 1);
}

#[test]
fn srtp_answer_echoes_the_chosen_crypto_tag() {
    let mut w = World::new();
    let sdp = ms_sdp("52.113.1.1", 49152, MS_KEY1, "sendrecv").replace(
        &format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{MS_KEY1}|2^31\r\n"),
        &format!(
            "a=crypto:1 AES_CM_128_HMAC_SHA1_32 inline:{MS_KEY2}|2^31\r\n\
             a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:{MS_KEY1}|2^31\r\n"
        ),
    );
    w.ms_sends(0, ms_invite("tag2", &sdp, &[]));
    let c = w.take_req(CARRIER, "INVITE");
    w.carrier_sends(answer(
        &c,
        200,
        "c-tag",
        &["Contact: <sip:089222@192.0.2.10:5060>".to_owned()],
        &carrier_sdp(30000, "sendrecv"),
    ));
    let ok = w.take_resp(MS[0], 200, "INVITE");
    let b = body(&ok);
    let lines: Vec<&str> = b.lines().filter(|l| l.starts_with("a=crypto")).collect();
    assert_eq!(lines.len(), 1, "{b}");
    assert!(
        lines[0].starts_with("a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:"),
        "{b}"
    );
    assert!(w.media().creates[0].0.crypto.rx.as_ref() == Some(&policy(MS_KEY1)));
}

#[test]
fn offerless_reinvite_from_teams_gets_our_offer_and_its_ack_answer_applies() {
    let mut w = World::new();
    let c = establish_from_teams(&mut w, &[]);
    let to = c.our_side();
    let sent = w.ever_sent_to(CARRIER).len();
    w.ms_sends(
        0,
        ms_in_dialog("INVITE", &c.ms_call_id, MS_FROM, &to, 2, &[], ""),
    );
    let ok = w.take_resp(MS[0], 200, "INVITE");
    let ob = body(&ok);
    assert_eq!(sdp_audio(&ob), (MEDIA_IP.to_owned(), 40000), "{ob}");
    assert_eq!(crypto_line(&ob), crypto_line(&body(&c.ms_ok)));
    w.ms_sends(
        0,
        ms_in_dialog(
            "ACK",
            &c.ms_call_id,
            MS_FROM,
            &to,
            2,
            &[],
            &ms_sdp("52.113.1.7", 49200, MS_KEY1, "sendrecv"),
        ),
    );
    let m = w.media();
    let u = m.updates.last().unwrap();
    assert_eq!(u.side, Side::A);
    assert_eq!(u.rtp, Some(addr("52.113.1.7:49200")));
    drop(m);
    assert_eq!(w.ever_sent_to(CARRIER).len(), sent);
}

#[test]
fn media_inactivity_ends_the_call() {
    let mut w = World::new();
    let e = establish(&mut w);
    w.input(b2bua::Input::MediaInactive { session: 1 });
    w.advance(Duration::from_millis(1));
    w.take_req(MS[0], "BYE");
    let bye = w.take_req(CARRIER, "BYE");
    assert_eq!(bye.call_id().unwrap(), e.a_call_id);
    assert_eq!(w.cdrs()[0].ended_by, "sbc");
}

#[test]
fn second_fork_answering_is_acked_and_hung_up() {
    let mut w = World::new();
    w.carrier_sends(carrier_invite("f2ok", &carrier_sdp(30000, "sendrecv"), &[]));
    let inv = w.take_req(MS[0], "INVITE");
    for t in ["fork-a", "fork-b"] {
        w.ms_sends(
            0,
            answer(
                &inv,
                200,
                t,
                &[
                    format!("Contact: <sip:ep-{t}.pstnhub.microsoft.com:443;x-i={t}>"),
                    format!("Record-Route: {MS_RR}"),
                ],
                &ms_sdp("52.113.1.1", 49152, MS_KEY1, "sendrecv"),
            ),
        );
    }
    let ack_a = w.take_req(MS[0], "ACK");
    assert_eq!(tag(&hdr(&ack_a, "To").unwrap()), "fork-a");
    let ack_b = w.take_req(MS[0], "ACK");
    assert_eq!(
        tag(&hdr(&ack_b, "To").unwrap()),
        "fork-b",
        "the ACK names the fork it answers"
    );
    assert_eq!(
        ruri(&ack_b),
        "sip:ep-fork-b.pstnhub.microsoft.com:443;x-i=fork-b"
    );
    let bye = w.take_req(MS[0], "BYE");
    assert_eq!(tag(&hdr(&bye, "To").unwrap()), "fork-b");
    assert_eq!(hdrs(&bye, "Route"), vec![MS_RR.to_owned()]);
    w.take_resp(CARRIER, 200, "INVITE");
    assert!(w.try_take(CARRIER, |m| m.status() == Some(200)).is_none());
    // The call stays with fork a.
    assert_eq!(w.b.active_calls(), 1);
    let updates = w.media().updates.len();
    assert!(updates > 0);
}

#[test]
fn carrier_early_media_reaches_teams_as_srtp_and_200_without_sdp_reuses_it() {
    let mut w = World::new();
    w.ms_sends(
        0,
        ms_invite(
            "em-c",
            &ms_sdp("52.113.1.1", 49152, MS_KEY1, "sendrecv"),
            &[],
        ),
    );
    let inv = w.take_req(CARRIER, "INVITE");
    w.carrier_sends(answer(
        &inv,
        183,
        "c-tag",
        &["Contact: <sip:089222@192.0.2.10:5060>".to_owned()],
        &carrier_sdp(30000, "sendrecv"),
    ));
    let p = w.take_resp(MS[0], 183, "INVITE");
    let pb = body(&p);
    assert!(pb.contains("m=audio 40000 RTP/SAVP"), "{pb}");
    let key = crypto_line(&pb).expect("our key in the early answer");
    assert!(hdr(&p, "Contact").unwrap().contains(TEAMS_FQDN));
    // 200 without SDP: the answer stays the 183's.
    w.carrier_sends(answer(
        &inv,
        200,
        "c-tag",
        &["Contact: <sip:089222@192.0.2.10:5060>".to_owned()],
        "",
    ));
    let ok = w.take_resp(MS[0], 200, "INVITE");
    let ob = body(&ok);
    assert_eq!(sdp_audio(&ob), (MEDIA_IP.to_owned(), 40000), "{ob}");
    assert_eq!(crypto_line(&ob).as_deref(), Some(key.as_str()));
    let m = w.media();
    let u = m
        .updates_of(Side::B)
        .into_iter()
        .find(|u| u.rtp.is_some())
        .unwrap();
    assert_eq!(u.rtp, Some(addr("198.51.100.7:30000")));
}

#[test]
fn diversion_from_carrier_becomes_history_info_toward_teams() {
    let mut w = World::new();
    w.carrier_sends(carrier_invite(
        "div1",
        &carrier_sdp(30000, "sendrecv"),
        &["Diversion: <sip:030555@192.0.2.10>;reason=user-busy;counter=1".to_owned()],
    ));
    let inv = w.take_req(MS[0], "INVITE");
    assert!(hdr(&inv, "Diversion").is_none());
    let hi = hdr(&inv, "History-Info").expect("History-Info toward Teams");
    assert_eq!(
        hi, "<sip:+4930555@sip.pstnhub.microsoft.com;user=phone?Reason=SIP%3Bcause%3D486>;index=1",
        "E.164 at Microsoft's host, no carrier address"
    );
}

#[test]
fn history_info_from_teams_becomes_diversion_toward_the_carrier() {
    let mut cfg = config();
    cfg.trunks[0].headers.history_info_to_diversion = true;
    let mut w = World::with(cfg);
    w.ms_sends(
        0,
        ms_invite(
            "hi1",
            &ms_sdp("52.113.1.1", 49152, MS_KEY1, "sendrecv"),
            &["History-Info: <sip:+4930123@sip.pstnhub.microsoft.com:5061;user=phone?Reason=SIP%3Bcause%3D302%3Btext%3D%22Moved%22>;index=1".to_owned()],
        ),
    );
    let inv = w.take_req(CARRIER, "INVITE");
    let d = hdr(&inv, "Diversion").expect("Diversion toward the carrier");
    assert_eq!(d, "<sip:030123@sbc.carrier.example>;reason=unconditional");
    assert!(!text(&inv).contains("pstnhub"), "{}", text(&inv));
}

#[test]
fn transfer_of_a_teams_call_then_hold_from_the_target() {
    let mut w = World::new();
    let c = establish_from_teams(&mut w, &[]);
    let to = c.our_side();
    let first_key = crypto_line(&body(&c.ms_ok)).unwrap();
    w.ms_sends(
        0,
        ms_in_dialog(
            "REFER",
            &c.ms_call_id,
            MS_FROM,
            &to,
            2,
            &[
                format!("Refer-To: <{REFER_TO_URI}>"),
                format!("Referred-By: {REFERRED_BY}"),
            ],
            "",
        ),
    );
    w.take_resp(MS[0], 202, "REFER");
    w.take_req(MS[0], "NOTIFY");
    let inv = w.take_req(MS[0], "INVITE");
    assert_eq!(ruri(&inv), REFER_TO_URI);
    let from = hdr(&inv, "From").unwrap();
    assert!(
        from.contains(&format!("<sip:+4989222@{TEAMS_FQDN};user=phone>")),
        "the party that stays calls the target: {from}"
    );
    let ib = body(&inv);
    assert_eq!(sdp_audio(&ib), (MEDIA_IP.to_owned(), 40000), "{ib}");
    let new_key = crypto_line(&ib).unwrap();
    assert_ne!(new_key, first_key);
    w.ms_sends(
        0,
        answer(
            &inv,
            200,
            "target-tag",
            &[
                format!("Contact: {CONTACT_443}"),
                format!("Record-Route: {MS_RR}"),
            ],
            &ms_sdp("52.113.2.2", 50000, MS_KEY2, "sendrecv"),
        ),
    );
    w.take_req(MS[0], "ACK");
    w.take_req(MS[0], "NOTIFY");
    let bye = w.take_req(MS[0], "BYE");
    assert_eq!(bye.call_id().unwrap(), c.ms_call_id);
    assert!(w.pending_to(CARRIER).is_empty());

    // The target puts the carrier on hold.
    let target_from = "<sip:sip.pstnhub.microsoft.com:5061;transport=tls>;tag=target-tag";
    let target_to = hdr(&inv, "From").unwrap();
    w.ms_sends(
        0,
        ms_in_dialog(
            "INVITE",
            inv.call_id().unwrap(),
            target_from,
            &target_to,
            1,
            &[],
            &ms_sdp("52.113.2.2", 50000, MS_KEY2, "sendonly"),
        ),
    );
    let re = w.take_req(CARRIER, "INVITE");
    assert!(body(&re).contains("a=sendonly"));
    assert_eq!(sdp_audio(&body(&re)), (MEDIA_IP.to_owned(), 40002));
    w.carrier_sends(answer(
        &re,
        200,
        "c-tag",
        &["Contact: <sip:089222@192.0.2.10:5060>".to_owned()],
        &carrier_sdp(30000, "recvonly"),
    ));
    w.take_req(CARRIER, "ACK");
    let ok = w.take_resp(MS[0], 200, "INVITE");
    let ob = body(&ok);
    assert_eq!(sdp_audio(&ob), (MEDIA_IP.to_owned(), 40000), "{ob}");
    assert_eq!(
        crypto_line(&ob).as_deref(),
        Some(new_key.as_str()),
        "the key of the target's dialog"
    );
    let _ = &c.c_ok;
}

#[test]
fn carrier_retransmissions_absorbed() {
    let mut w = World::new();
    let inv = carrier_invite("rtx1", &carrier_sdp(30000, "sendrecv"), &[]);
    w.carrier_sends(inv.clone());
    w.advance(Duration::from_millis(500));
    w.carrier_sends(inv);
    let inv = w.take_req(MS[0], "INVITE");
    assert!(w
        .try_take(MS[0], |m| m.method_str() == Some("INVITE"))
        .is_none());
    assert_eq!(w.media().creates.len(), 1);
    let e = {
        w.ms_sends(
            0,
            answer(
                &inv,
                200,
                "ms-tag",
                &[format!("Contact: {CONTACT_443}")],
                &ms_sdp("52.113.1.1", 49152, MS_KEY1, "sendrecv"),
            ),
        );
        let ok = w.take_resp(CARRIER, 200, "INVITE");
        tag(&hdr(&ok, "To").unwrap())
    };
    w.carrier_sends(carrier_in_dialog("ACK", "rtx1", &e, 1, &[], ""));
    w.clear();
    let bye = carrier_in_dialog("BYE", "rtx1", &e, 2, &[], "");
    w.carrier_sends(bye.clone());
    w.carrier_sends(bye);
    assert_eq!(
        w.pending_to(CARRIER),
        vec!["SIP/2.0 200 OK".to_owned(), "SIP/2.0 200 OK".to_owned()]
    );
    w.take_req(MS[0], "BYE");
    assert!(w
        .try_take(MS[0], |m| m.method_str() == Some("BYE"))
        .is_none());
    assert_eq!(w.cdrs().len(), 1);
}

#[test]
fn session_refresh_with_a_longer_interval_moves_the_expiry() {
    let mut w = World::new();
    let c = establish_from_teams(
        &mut w,
        &[
            "Supported: timer".to_owned(),
            "Session-Expires: 90;refresher=uac".to_owned(),
        ],
    );
    let to = c.our_side();
    w.advance(Duration::from_secs(60));
    w.ms_sends(
        0,
        ms_in_dialog(
            "INVITE",
            &c.ms_call_id,
            MS_FROM,
            &to,
            2,
            &[
                "Supported: timer".to_owned(),
                "Session-Expires: 1800;refresher=uac".to_owned(),
            ],
            &ms_sdp("52.113.1.1", 49152, MS_KEY1, "sendrecv"),
        ),
    );
    let ok = w.take_resp(MS[0], 200, "INVITE");
    assert!(hdr(&ok, "Session-Expires").unwrap().starts_with("1800"));
    w.ms_sends(
        0,
        ms_in_dialog("ACK", &c.ms_call_id, MS_FROM, &to, 2, &[], ""),
    );
    w.advance(Duration::from_secs(600));
    assert_eq!(w.b.active_calls(), 1, "1800 s granted at 60 s");
    w.advance(Duration::from_secs(1300));
    assert_eq!(w.b.active_calls(), 0, "expired at 1860 s");
}

#[test]
fn carrier_reinvite_2xx_retransmission_acked_again() {
    let mut w = World::new();
    let c = establish_from_teams(&mut w, &[]);
    let to = c.our_side();
    w.ms_sends(
        0,
        ms_in_dialog(
            "INVITE",
            &c.ms_call_id,
            MS_FROM,
            &to,
            2,
            &[],
            &ms_sdp("52.113.1.1", 49152, MS_KEY1, "sendonly"),
        ),
    );
    let re = w.take_req(CARRIER, "INVITE");
    let ok = answer(
        &re,
        200,
        "c-tag",
        &["Contact: <sip:089222@192.0.2.10:5060>".to_owned()],
        &carrier_sdp(30000, "recvonly"),
    );
    w.carrier_sends(ok.clone());
    w.take_req(CARRIER, "ACK");
    w.take_resp(MS[0], 200, "INVITE");
    // Our ACK was lost: the carrier sends its 200 again.
    w.advance(Duration::from_millis(500));
    w.carrier_sends(ok);
    let ack = w.take_req(CARRIER, "ACK");
    assert_eq!(ack.cseq().unwrap().seq, re.cseq().unwrap().seq);
    assert!(w.try_take(MS[0], |m| m.status() == Some(200)).is_none());
}

#[test]
fn carrier_pai_reaches_teams_as_our_e164_identity() {
    let mut w = World::new();
    w.carrier_sends(carrier_invite(
        "pai1",
        &carrier_sdp(30000, "sendrecv"),
        &[
            "P-Asserted-Identity: \"Front desk\" <sip:0401112222@10.9.9.9;user=phone>".to_owned(),
            "Privacy: id".to_owned(),
        ],
    ));
    let inv = w.take_req(MS[0], "INVITE");
    let pai = hdr(&inv, "P-Asserted-Identity").expect("PAI passed");
    assert!(
        pai.starts_with("\"Front desk\" <sip:+49401112222@")
            && pai.ends_with(";user=phone>")
            && !pai.contains("10.9.9.9"),
        "the carrier's host never reaches Microsoft: {pai}"
    );
    assert_eq!(hdr(&inv, "Privacy").as_deref(), Some("id"));
}

// ----- Teams and ACS on the same Microsoft proxies ---------------------------------

/// A carrier INVITE to the national number `called`.
fn carrier_invite_to(call_id: &str, called: &str, sdp: &str) -> Message {
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
        sdp,
    )
}

/// Takes the INVITE sent to `to` whose Contact names `fqdn`, with the peer
/// it was sent to (address and the trunk it is sent as).
fn take_invite_as(w: &mut World, to: &str, fqdn: &str) -> (transaction::Peer, Message) {
    let a = addr(to);
    let i = w
        .out
        .iter()
        .position(|s| {
            s.to.addr == a
                && s.msg.method_str() == Some("INVITE")
                && hdr(&s.msg, "Contact").is_some_and(|c| c.contains(fqdn))
        })
        .unwrap_or_else(|| panic!("no INVITE as {fqdn} to {to}:\n{}", w.dump()));
    let s = w.out.remove(i);
    (s.to, s.msg)
}

#[test]
fn a_transport_failure_toward_teams_leaves_acs_on_the_same_proxy_up() {
    // config(): Teams (trunk 1) and ACS (trunk 2) face the same three
    // proxy addresses. Carrier calls to 040… go to ACS, the rest to Teams.
    let mut cfg = config();
    let mut to_acs = route("to-acs", "carrier", vec![dest("acs", None)]);
    to_acs.called = Some(routing::regex::Regex::new(r"^\+4940").unwrap());
    cfg.routes.routes.insert(0, to_acs);
    let mut w = World::with(cfg);
    w.carrier_sends(carrier_invite_to(
        "acs-1",
        "0401234567",
        &carrier_sdp(30000, "sendrecv"),
    ));
    let (acs_peer, acs_inv) = take_invite_as(&mut w, MS[0], ACS_FQDN);
    assert_eq!(acs_peer.trunk, Some(2), "sent as the ACS trunk");
    w.ms_sends(0, trying(&acs_inv));
    w.carrier_sends(carrier_invite_to(
        "teams-1",
        "030123456",
        &carrier_sdp(30002, "sendrecv"),
    ));
    let (teams_peer, _) = take_invite_as(&mut w, MS[0], TEAMS_FQDN);
    assert_eq!(teams_peer.trunk, Some(1), "sent as the Teams trunk");
    assert_eq!(teams_peer.addr, acs_peer.addr, "one proxy address");

    // The Teams connection to sip fails (as the shell reports it: that
    // address, as trunk 1). Only the Teams peer is down, only the Teams
    // attempt moves on.
    w.input(b2bua::Input::TransportError {
        to: transaction::Peer::new(addr(MS[0]), transaction::Transport::Tls).for_trunk(1),
        tls: true,
    });
    w.advance(Duration::from_millis(1));
    assert!(w.b.peer_states(1)[0].is_down(), "Teams' sip is down");
    assert!(
        !w.b.peer_states(2)[0].is_down(),
        "ACS's sip (same address, its own connection) stays up"
    );
    let (next, _) = take_invite_as(&mut w, MS[1], TEAMS_FQDN);
    assert_eq!(next.trunk, Some(1));
    // The ACS attempt was not touched: its answer still makes the call.
    w.ms_sends(
        0,
        answer(
            &acs_inv,
            200,
            "acs-tag",
            &[format!("Contact: {CONTACT_443}")],
            &ms_sdp("52.113.1.1", 49152, MS_KEY1, "sendrecv"),
        ),
    );
    let ack = w.take_req(MS[0], "ACK");
    assert!(text(&ack).contains("acs-tag"));
    assert!(w
        .outputs
        .iter()
        .all(|o| !matches!(o, b2bua::Output::Health { trunk, up: false, .. } if trunk == "acs")));
    // The next ACS call still starts at sip.
    w.carrier_sends(carrier_invite_to(
        "acs-2",
        "0401234568",
        &carrier_sdp(30004, "sendrecv"),
    ));
    let (again, _) = take_invite_as(&mut w, MS[0], ACS_FQDN);
    assert_eq!(again.trunk, Some(2));
}

#[test]
fn a_failure_reported_without_a_trunk_concerns_every_trunk_at_that_address() {
    // A UDP port that is gone (ICMP) is gone for everyone: no identity.
    let mut w = World::new();
    w.transport_error(transaction::Peer::new(
        addr(MS[0]),
        transaction::Transport::Tls,
    ));
    assert!(w.b.peer_states(1)[0].is_down());
    assert!(w.b.peer_states(2)[0].is_down());
}

// ----- peers whose addresses come from DNS ---------------------------------------

fn resolved(w: &mut World, trunk: usize, peer: usize, addrs: &[&str]) {
    w.input(b2bua::Input::PeerResolved {
        trunk,
        peer,
        addrs: addrs.iter().map(|a| addr(a)).collect(),
    });
    w.advance(Duration::from_millis(1));
}

#[test]
fn a_peer_without_an_address_is_tried_last_and_calls_reach_it_once_it_resolves() {
    let mut cfg = config();
    cfg.trunks[1].peers[0].addr = None; // sip.pstnhub: not resolved yet
    let mut w = World::with(cfg);
    assert!(
        w.b.peer_states(1)[0].is_down(),
        "no address: down for routing"
    );
    w.carrier_sends(carrier_invite("r1", &carrier_sdp(30000, "sendrecv"), &[]));
    w.take_req(MS[1], "INVITE");
    assert!(w.pending_to(MS[0]).is_empty());
    // The name resolves (to a new address): the next call tries it first,
    // and our OPTIONS go there.
    const NEW: &str = "52.112.9.9:5061";
    resolved(&mut w, 1, 0, &[NEW]);
    assert!(!w.b.peer_states(1)[0].is_down());
    assert!(w.outputs.iter().any(|o| matches!(o,
        b2bua::Output::Health { host, up: true, reason, .. }
            if host == "sip.pstnhub.microsoft.com" && reason == "resolved")));
    assert!(w.ever_sent_to(NEW).iter().any(|l| l.starts_with("OPTIONS")));
    w.carrier_sends(carrier_invite("r2", &carrier_sdp(30002, "sendrecv"), &[]));
    let (to, inv) = take_invite_as(&mut w, NEW, TEAMS_FQDN);
    assert_eq!(to.trunk, Some(1));
    assert!(
        ruri(&inv).contains("sip.pstnhub.microsoft.com"),
        "the FQDN stays the name: {}",
        ruri(&inv)
    );
}

#[test]
fn a_carrier_that_moves_is_recognised_at_its_new_address_only() {
    let mut w = World::new();
    // The carrier's name now resolves elsewhere; a rotating answer that
    // still lists the current address would not move it.
    resolved(&mut w, 0, 0, &["192.0.2.10:5060", "192.0.2.20:5060"]);
    assert_eq!(w.b.trunks()[0].peers[0].addr, Some(addr(CARRIER)));
    resolved(&mut w, 0, 0, &["192.0.2.20:5060"]);
    assert_eq!(w.b.trunks()[0].peers[0].addr, Some(addr("192.0.2.20:5060")));
    // From the old address: no trunk (the carrier has no ACL, only its peer).
    w.carrier_sends(carrier_invite("m1", &carrier_sdp(30000, "sendrecv"), &[]));
    w.take_resp(CARRIER, 403, "INVITE");
    // From the new one: a call.
    w.deliver(
        carrier_invite("m2", &carrier_sdp(30002, "sendrecv"), &[]),
        transaction::Peer::new(addr("192.0.2.20:5060"), transaction::Transport::Udp),
        addr(SBC_UDP),
        None,
    );
    w.take_req(MS[0], "INVITE");
    // A Teams call to the carrier goes to where it is now.
    w.ms_sends(
        0,
        ms_invite("m3", &ms_sdp("52.113.1.1", 49152, MS_KEY1, "sendrecv"), &[]),
    );
    assert!(w
        .pending_to("192.0.2.20:5060")
        .iter()
        .any(|l| l.starts_with("INVITE")));
    // No address at all: down for routing, nothing sent to the old one.
    resolved(&mut w, 0, 0, &[]);
    assert!(w.b.peer_states(0)[0].is_down());
}

// ----- UDP peers that are gone ------------------------------------------------------

#[test]
fn icmp_unreachable_from_a_udp_gateway_moves_the_call_on_at_once() {
    // carrier → [gateway (UDP), teams]. The gateway's port is closed: the
    // shell reports the address unreachable (ICMP), without a trunk.
    const GW: &str = "192.0.2.30:5060";
    let mut cfg = config();
    let mut gw = trunk::TrunkSpec::new("gateway", trunk::TrunkKind::Gateway, "sbc.example.com");
    gw.peers = vec![trunk::PeerSpec {
        host: "192.0.2.30".into(),
        port: 5060,
        transport: transaction::Transport::Udp,
        addr: Some(addr(GW)),
    }];
    cfg.trunks.push(gw);
    cfg.routes.routes[0] = route(
        "to-gateway",
        "carrier",
        vec![dest("gateway", None), dest("teams", Some("Fail-over"))],
    );
    let mut w = World::with(cfg);
    w.carrier_sends(carrier_invite("u1", &carrier_sdp(30000, "sendrecv"), &[]));
    w.take_req(GW, "INVITE");
    w.advance(Duration::from_millis(3));
    w.transport_error(transaction::Peer::new(
        addr(GW),
        transaction::Transport::Udp,
    ));
    // At once, not after the gateway's 5 s attempt timer or Timer B.
    let inv = w.take_req(MS[0], "INVITE");
    assert!(hdr(&inv, "From").unwrap().starts_with("\"Fail-over"));
    assert!(after(&w) < 10, "{} ms", after(&w));
    assert!(w.b.peer_states(3)[0].is_down(), "the gateway is down");
    w.ms_sends(0, trying(&inv));
    // Its INVITE is not retransmitted any more.
    w.clear();
    w.advance(Duration::from_secs(2));
    assert!(
        w.pending_to(GW).iter().all(|l| !l.starts_with("INVITE")),
        "{:?}",
        w.pending_to(GW)
    );
    // The next call does not try it first.
    w.carrier_sends(carrier_invite("u2", &carrier_sdp(30002, "sendrecv"), &[]));
    w.take_req(MS[0], "INVITE");
    assert!(w.pending_to(GW).iter().all(|l| !l.starts_with("INVITE")));
}

// ----- found by fuzz/b2bua_state (docs/fuzzing.md) --------------------------------

/// Nothing of the call is left: no call, dialog, timer, held request or
/// transaction (the proxies answer the pings at once, over TLS: none lingers).
fn nothing_left(w: &World) {
    assert_eq!(w.b.active_calls(), 0);
    assert_eq!(w.b.occupancy(), b2bua::Occupancy::default());
    assert_eq!(w.b.transactions(), 0);
}

#[test]
fn a_callee_bye_on_its_early_dialog_cancels_the_attempt_and_the_caller_gets_no_200() {
    // B1: the caller got a 200 OK (and no dialog behind it), the callee's
    // INVITE transaction, past its 183, waited for ever.
    let mut w = World::new();
    w.carrier_sends(carrier_invite("b1", &carrier_sdp(30000, "sendrecv"), &[]));
    let inv = w.take_req(MS[0], "INVITE");
    let early = answer(
        &inv,
        183,
        "ms-tag",
        &[format!("Contact: {CONTACT_443}")],
        "",
    );
    w.ms_sends(0, early.clone());
    let bye = ms_in_dialog(
        "BYE",
        inv.call_id().unwrap(),
        &hdr(&early, "To").unwrap(),
        &hdr(&early, "From").unwrap(),
        2,
        &[],
        "",
    );
    w.ms_sends(0, bye);
    w.take_resp(MS[0], 200, "BYE");
    let cancel = w.take_req(MS[0], "CANCEL");
    let status = final_to_carrier(&mut w);
    assert!(status >= 300, "the caller got {status}");
    w.ms_sends(0, answer(&cancel, 200, "ms-tag", &[], ""));
    w.ms_sends(0, answer(&inv, 487, "ms-tag", &[], ""));
    w.advance(Duration::from_secs(40));
    nothing_left(&w);
}

#[test]
fn a_callers_bye_before_the_answer_ends_its_invite_with_487() {
    // B1's other half: the caller's BYE on its early dialog (RFC 3261
    // §15.1.2) was answered by a 200 OK to its INVITE.
    let mut w = World::new();
    w.carrier_sends(carrier_invite("b1c", &carrier_sdp(30000, "sendrecv"), &[]));
    let inv = w.take_req(MS[0], "INVITE");
    w.ms_sends(0, answer(&inv, 180, "ms-tag", &[], ""));
    let ringing = w.take_resp(CARRIER, 180, "INVITE");
    let a_tag = tag(&hdr(&ringing, "To").unwrap());
    w.carrier_sends(carrier_in_dialog("BYE", "b1c", &a_tag, 2, &[], ""));
    w.take_resp(CARRIER, 200, "BYE");
    assert_eq!(final_to_carrier(&mut w), 487);
    let cancel = w.take_req(MS[0], "CANCEL");
    w.ms_sends(0, answer(&cancel, 200, "ms-tag", &[], ""));
    w.ms_sends(0, answer(&inv, 487, "ms-tag", &[], ""));
    w.advance(Duration::from_secs(40));
    nothing_left(&w);
}

/// The carrier's re-INVITE (a new port), forwarded to proxy 0, which
/// answers 100 Trying and nothing else.
fn reinvite_left_trying(w: &mut World, e: &Established) -> (Message, Message) {
    let re = carrier_in_dialog(
        "INVITE",
        &e.a_call_id,
        &e.a_tag,
        2,
        &[],
        &carrier_sdp(30002, "sendonly"),
    );
    w.carrier_sends(re.clone());
    let fwd = w.take_req(MS[0], "INVITE");
    w.ms_sends(0, trying(&fwd));
    (re, fwd)
}

#[test]
fn a_reinvite_pending_when_the_call_ends_is_answered_487_and_cancelled() {
    // B2: the held re-INVITE and its forwarded copy outlived the call.
    let mut w = World::new();
    let e = establish(&mut w);
    let (_re, fwd) = reinvite_left_trying(&mut w, &e);
    w.carrier_sends(carrier_in_dialog("BYE", &e.a_call_id, &e.a_tag, 3, &[], ""));
    w.take_resp(CARRIER, 200, "BYE");
    w.take_resp(CARRIER, 487, "INVITE");
    let cancel = w.take_req(MS[0], "CANCEL");
    let bye = w.take_req(MS[0], "BYE");
    w.ms_sends(0, answer(&cancel, 200, "ms-tag", &[], ""));
    w.ms_sends(0, answer(&fwd, 487, "ms-tag", &[], ""));
    w.ms_sends(0, answer(&bye, 200, "ms-tag", &[], ""));
    w.advance(Duration::from_secs(40));
    nothing_left(&w);
}

#[test]
fn a_cancelled_reinvite_is_answered_487_and_the_cancel_passed_on() {
    // B2: a CANCEL of a forwarded re-INVITE was ignored; the re-INVITE
    // waited for the other party (for ever after its 100), and every later
    // re-INVITE of the call got 491.
    let mut w = World::new();
    let e = establish(&mut w);
    let (re, fwd) = reinvite_left_trying(&mut w, &e);
    let mut h: Vec<String> = ["Via", "From", "To", "Call-ID"]
        .iter()
        .map(|n| format!("{n}: {}", hdr(&re, n).unwrap()))
        .collect();
    h.push("Max-Forwards: 70".into());
    h.push("CSeq: 2 CANCEL".into());
    w.carrier_sends(build(&format!("CANCEL {} SIP/2.0", ruri(&re)), &h, ""));
    w.take_resp(CARRIER, 200, "CANCEL");
    w.take_resp(CARRIER, 487, "INVITE");
    let cancel = w.take_req(MS[0], "CANCEL");
    w.ms_sends(0, answer(&cancel, 200, "ms-tag", &[], ""));
    w.ms_sends(0, answer(&fwd, 487, "ms-tag", &[], ""));
    // The next re-INVITE goes through.
    let re2 = carrier_in_dialog(
        "INVITE",
        &e.a_call_id,
        &e.a_tag,
        3,
        &[],
        &carrier_sdp(30004, "sendrecv"),
    );
    w.carrier_sends(re2);
    w.take_req(MS[0], "INVITE");
}
