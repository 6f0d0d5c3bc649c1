//! Carrier and gateway interop in virtual time: reliable provisional
//! responses (RFC 3262), UPDATE (RFC 3311), Timer C (RFC 3261 §16.6) and
//! session timers the SBC originates (RFC 4028).

mod harness;

use std::time::Duration;

use harness::*;
use media::control::Side;
use sip::Message;

const C_CONTACT: &str = "Contact: <sip:089222@192.0.2.10:5060>";

/// A request from the carrier as callee in the dialog of our INVITE `inv`
/// (its To tag `c-tag`).
fn carrier_callee_request(inv: &Message, method: &str, cseq: u32, sdp: &str) -> Message {
    let h = vec![
        format!("Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-cc{method}{cseq}"),
        "Max-Forwards: 70".into(),
        format!("From: {};tag=c-tag", hdr(inv, "To").unwrap()),
        format!("To: {}", hdr(inv, "From").unwrap()),
        format!("Call-ID: {}", inv.call_id().unwrap()),
        format!("CSeq: {cseq} {method}"),
        C_CONTACT.to_owned(),
    ];
    let contact = hdr(inv, "Contact").unwrap();
    let uri = contact.trim_matches(['<', '>']);
    build(&format!("{method} {uri} SIP/2.0"), &h, sdp)
}

/// Microsoft's in-dialog request on the dialog whose To (our side) is `to`.
fn ms_req(method: &str, call_id: &str, to: &str, cseq: u32, body: &str) -> Message {
    ms_in_dialog(method, call_id, MS_FROM, to, cseq, &[], body)
}

fn rel(extra: &[&str]) -> Vec<String> {
    let mut v = vec!["Supported: 100rel".to_owned(), "Require: 100rel".to_owned()];
    v.extend(extra.iter().map(|s| (*s).to_owned()));
    v
}

fn ms_answer(inv: &Message, status: u16, sdp: &str) -> Message {
    answer(
        inv,
        status,
        "ms-tag",
        &[format!("Contact: {CONTACT_443}")],
        sdp,
    )
}

// ----- 100rel toward a caller ------------------------------------------------------

#[test]
fn reliable_18x_to_a_caller_that_requires_100rel_retransmitted_until_prack_and_2xx_waits() {
    let mut w = World::new();
    let sdp = carrier_sdp(30000, "sendrecv");
    w.carrier_sends(carrier_invite("rel1", &sdp, &rel(&[])));
    let inv = w.take_req(MS[0], "INVITE");
    // Microsoft never sees 100rel.
    assert!(
        !text(&inv).to_ascii_lowercase().contains("100rel"),
        "{}",
        text(&inv)
    );
    w.ms_sends(0, ms_answer(&inv, 180, ""));
    let r180 = w.take_resp(CARRIER, 180, "INVITE");
    assert_eq!(hdr(&r180, "Require").as_deref(), Some("100rel"));
    let rseq: u32 = hdr(&r180, "RSeq").unwrap().parse().unwrap();
    assert!((1..=0x7fff_ffff).contains(&rseq));
    let a_tag = tag(&hdr(&r180, "To").unwrap());
    // Not PRACKed: sent again after T1 (500 ms), then 1 s later.
    w.advance(Duration::from_millis(510));
    let again = w.take_resp(CARRIER, 180, "INVITE");
    assert_eq!(hdr(&again, "RSeq"), hdr(&r180, "RSeq"));
    w.advance(Duration::from_millis(1010));
    w.take_resp(CARRIER, 180, "INVITE");
    // The PRACK stops it.
    let rack = format!("RAck: {rseq} 1 INVITE");
    w.carrier_sends(carrier_in_dialog("PRACK", "rel1", &a_tag, 2, &[rack], ""));
    w.take_resp(CARRIER, 200, "PRACK");
    w.advance(Duration::from_secs(3));
    assert!(
        w.try_take(CARRIER, |m| m.status() == Some(180)).is_none(),
        "{}",
        w.dump()
    );

    // 183 with SDP: the next RSeq, reliable; a PRACK with a wrong RAck gets 481.
    w.ms_sends(
        0,
        ms_answer(&inv, 183, &ms_sdp("52.113.1.1", 49152, MS_KEY1, "sendrecv")),
    );
    let r183 = w.take_resp(CARRIER, 183, "INVITE");
    assert_eq!(hdr(&r183, "RSeq").unwrap(), (rseq + 1).to_string());
    let early = body(&r183);
    assert_eq!(sdp_audio(&early), (MEDIA_IP.to_owned(), 40000));
    let wrong = format!("RAck: {rseq} 1 INVITE");
    w.carrier_sends(carrier_in_dialog("PRACK", "rel1", &a_tag, 3, &[wrong], ""));
    w.take_resp(CARRIER, 481, "PRACK");
    assert_eq!(w.b.counters().prack_unmatched, 1);
    // Microsoft answers: the 2xx waits for the PRACK of the 183 (it had SDP).
    w.ms_sends(
        0,
        ms_answer(&inv, 200, &ms_sdp("52.113.1.1", 49152, MS_KEY1, "sendrecv")),
    );
    w.take_req(MS[0], "ACK");
    assert!(
        w.try_take(CARRIER, |m| m.status() == Some(200)).is_none(),
        "{}",
        w.dump()
    );
    let rack = format!("RAck: {} 1 INVITE", rseq + 1);
    w.carrier_sends(carrier_in_dialog("PRACK", "rel1", &a_tag, 4, &[rack], ""));
    w.take_resp(CARRIER, 200, "PRACK");
    let ok = w.take_resp(CARRIER, 200, "INVITE");
    // The answer given in the reliable 183, byte for byte (same version).
    assert_eq!(body(&ok), early);
    assert!(hdr(&ok, "Allow").unwrap().contains("PRACK"));
    assert_eq!(w.b.counters().reliable_18x, 2);
}

#[test]
fn no_prack_in_64_t1_ends_the_ringing_call_with_500() {
    let mut w = World::new();
    w.carrier_sends(carrier_invite(
        "rel2",
        &carrier_sdp(30000, "sendrecv"),
        &rel(&[]),
    ));
    let inv = w.take_req(MS[0], "INVITE");
    w.ms_sends(0, ms_answer(&inv, 180, ""));
    w.take_resp(CARRIER, 180, "INVITE");
    w.advance(Duration::from_secs(33));
    let fin = w
        .try_take(CARRIER, |m| m.status().is_some_and(|s| s >= 200))
        .unwrap_or_else(|| panic!("{}", w.dump()));
    assert_eq!(fin.status(), Some(500));
    w.take_req(MS[0], "CANCEL");
    assert_eq!(w.b.counters().prack_timeouts, 1);
}

#[test]
fn require_100rel_where_prack_is_off_gets_420() {
    let mut w = World::new();
    w.ms_sends(
        0,
        ms_invite(
            "rel3",
            &ms_sdp("52.113.1.1", 49152, MS_KEY1, "sendrecv"),
            &rel(&[]),
        ),
    );
    let r = w.take_resp(MS[0], 420, "INVITE");
    assert_eq!(hdr(&r, "Unsupported").as_deref(), Some("100rel"));
    assert_eq!(w.b.counters().bad_extensions, 1);
    assert!(w.try_take(CARRIER, |_| true).is_none());
}

// ----- 100rel from a callee ----------------------------------------------------------

#[test]
fn reliable_18x_of_a_carrier_callee_are_pracked_and_reach_microsoft_unreliably() {
    let mut w = World::new();
    w.ms_sends(
        0,
        ms_invite(
            "rel4",
            &ms_sdp("52.113.1.1", 49152, MS_KEY1, "sendrecv"),
            &[],
        ),
    );
    let inv = w.take_req(CARRIER, "INVITE");
    assert!(
        hdr(&inv, "Supported").unwrap().contains("100rel"),
        "{}",
        text(&inv)
    );
    assert!(hdr(&inv, "Allow").unwrap().contains("UPDATE"));
    let p180 = answer(
        &inv,
        180,
        "c-tag",
        &[
            C_CONTACT.to_owned(),
            "Require: 100rel".into(),
            "RSeq: 7".into(),
        ],
        "",
    );
    w.carrier_sends(p180.clone());
    let prack = w.take_req(CARRIER, "PRACK");
    assert_eq!(hdr(&prack, "RAck").as_deref(), Some("7 1 INVITE"));
    assert_eq!(ruri(&prack), "sip:089222@192.0.2.10:5060", "to its Contact");
    assert_eq!(
        tag(&hdr(&prack, "To").unwrap()),
        "c-tag",
        "in its early dialog"
    );
    assert_eq!(prack.call_id(), inv.call_id());
    w.carrier_sends(answer(&prack, 200, "c-tag", &[], ""));
    let ms180 = w.take_resp(MS[0], 180, "INVITE");
    assert!(hdr(&ms180, "Require").is_none() && hdr(&ms180, "RSeq").is_none());
    // Its retransmission is not PRACKed again nor relayed again.
    w.carrier_sends(p180);
    assert!(w
        .try_take(CARRIER, |m| m.method_str() == Some("PRACK"))
        .is_none());
    // The next one (183 with SDP: early media) is.
    w.carrier_sends(answer(
        &inv,
        183,
        "c-tag",
        &[
            C_CONTACT.to_owned(),
            "Require: 100rel".into(),
            "RSeq: 8".into(),
        ],
        &carrier_sdp(30000, "sendrecv"),
    ));
    let prack = w.take_req(CARRIER, "PRACK");
    assert_eq!(hdr(&prack, "RAck").as_deref(), Some("8 1 INVITE"));
    let ms183 = w.take_resp(MS[0], 183, "INVITE");
    assert!(body(&ms183).contains("RTP/SAVP"));
    assert_eq!(w.b.counters().pracks_sent, 2);
}

// ----- UPDATE ------------------------------------------------------------------------

/// Teams → carrier, answered; returns (carrier INVITE, Microsoft's To).
fn teams_to_carrier(w: &mut World, id: &str) -> (Message, String) {
    w.ms_sends(
        0,
        ms_invite(id, &ms_sdp("52.113.1.1", 49152, MS_KEY1, "sendrecv"), &[]),
    );
    let inv = w.take_req(CARRIER, "INVITE");
    w.carrier_sends(answer(
        &inv,
        200,
        "c-tag",
        &[C_CONTACT.to_owned()],
        &carrier_sdp(30000, "sendrecv"),
    ));
    w.take_req(CARRIER, "ACK");
    let ok = w.take_resp(MS[0], 200, "INVITE");
    let to = hdr(&ok, "To").unwrap();
    w.ms_sends(0, ms_req("ACK", id, &to, 1, ""));
    w.clear();
    (inv, to)
}

#[test]
fn update_with_sdp_from_the_carrier_reanchors_and_reaches_teams_as_reinvite() {
    let mut w = World::new();
    let (inv, _to) = teams_to_carrier(&mut w, "upd-a");
    // The carrier moves its media (new address and port) with UPDATE.
    let moved = sim::world::rtp("198.51.100.9", 31000, "sendrecv");
    w.carrier_sends(carrier_callee_request(&inv, "UPDATE", 2, &moved));
    {
        let m = w.media();
        let u = m
            .updates_of(Side::B)
            .into_iter()
            .rev()
            .find(|u| u.rtp.is_some())
            .unwrap();
        assert_eq!(u.rtp, Some(addr("198.51.100.9:31000")), "relay re-pointed");
    }
    // Microsoft does not take UPDATE: a re-INVITE, with our same relay leg.
    let re = w.take_req(MS[0], "INVITE");
    assert_eq!(sdp_audio(&body(&re)), (MEDIA_IP.to_owned(), 40000));
    // While it is out, another offer gets 491.
    w.carrier_sends(carrier_callee_request(
        &inv,
        "UPDATE",
        3,
        &carrier_sdp(32000, "sendonly"),
    ));
    w.take_resp(CARRIER, 491, "UPDATE");
    assert_eq!(w.b.counters().glare, 1);
    w.ms_sends(
        0,
        ms_answer(&re, 200, &ms_sdp("52.113.1.1", 49152, MS_KEY1, "sendrecv")),
    );
    w.take_req(MS[0], "ACK");
    let ok = w.take_resp(CARRIER, 200, "UPDATE");
    assert_eq!(sdp_audio(&body(&ok)), (MEDIA_IP.to_owned(), 40002));
    assert!(
        w.try_take(CARRIER, |m| m.method_str() == Some("ACK"))
            .is_none(),
        "no ACK for UPDATE"
    );
    // An UPDATE whose SDP cannot be read: 488, the call goes on.
    w.carrier_sends(carrier_callee_request(
        &inv,
        "UPDATE",
        4,
        "v=0\r\nm=video x\r\n",
    ));
    w.take_resp(CARRIER, 488, "UPDATE");
    assert_eq!(w.b.active_calls(), 1);
}

#[test]
fn update_from_teams_goes_to_the_carrier_as_update() {
    let mut w = World::new();
    let (_inv, to) = teams_to_carrier(&mut w, "upd-b");
    w.ms_sends(
        0,
        ms_req(
            "UPDATE",
            "upd-b",
            &to,
            2,
            &ms_sdp("52.113.1.2", 49200, MS_KEY2, "sendonly"),
        ),
    );
    let up = w.take_req(CARRIER, "UPDATE");
    let ub = body(&up);
    assert!(ub.contains("a=sendonly"), "{ub}");
    assert_eq!(sdp_audio(&ub), (MEDIA_IP.to_owned(), 40002));
    {
        let m = w.media();
        let u = m
            .updates_of(Side::A)
            .into_iter()
            .rev()
            .find(|u| u.rtp.is_some())
            .unwrap();
        assert_eq!(u.rtp, Some(addr("52.113.1.2:49200")));
        assert!(
            u.crypto.as_ref().and_then(|c| c.rx.as_ref()).is_some(),
            "re-keyed"
        );
    }
    w.carrier_sends(answer(
        &up,
        200,
        "c-tag",
        &[C_CONTACT.to_owned()],
        &carrier_sdp(30000, "recvonly"),
    ));
    let ok = w.take_resp(MS[0], 200, "UPDATE");
    assert!(body(&ok).contains("a=recvonly"));
}

#[test]
fn early_update_from_a_callee_is_answered_with_the_sdp_it_has() {
    let mut w = World::new();
    w.ms_sends(
        0,
        ms_invite(
            "upd-c",
            &ms_sdp("52.113.1.1", 49152, MS_KEY1, "sendrecv"),
            &[],
        ),
    );
    let inv = w.take_req(CARRIER, "INVITE");
    w.carrier_sends(answer(
        &inv,
        183,
        "c-tag",
        &[
            C_CONTACT.to_owned(),
            "Require: 100rel".into(),
            "RSeq: 1".into(),
        ],
        &carrier_sdp(30000, "sendrecv"),
    ));
    w.take_req(CARRIER, "PRACK");
    w.carrier_sends(carrier_callee_request(
        &inv,
        "UPDATE",
        2,
        &sim::world::rtp("198.51.100.9", 31000, "sendrecv"),
    ));
    let ok = w.take_resp(CARRIER, 200, "UPDATE");
    assert_eq!(body(&ok), body(&inv), "the offer it had from us");
    let m = w.media();
    let u = m
        .updates_of(Side::B)
        .into_iter()
        .rev()
        .find(|u| u.rtp.is_some())
        .unwrap();
    assert_eq!(u.rtp, Some(addr("198.51.100.9:31000")));
}

// ----- Timer C -------------------------------------------------------------------------

#[test]
fn timer_c_cancels_an_attempt_that_rang_and_went_silent() {
    let mut w = World::new();
    w.carrier_sends(carrier_invite("tc1", &carrier_sdp(30000, "sendrecv"), &[]));
    let inv = w.take_req(MS[0], "INVITE");
    w.ms_sends(0, ms_answer(&inv, 180, ""));
    w.take_resp(CARRIER, 180, "INVITE");
    w.advance(Duration::from_secs(179));
    assert_eq!(w.b.active_calls(), 1);
    w.advance(Duration::from_secs(2));
    w.take_req(MS[0], "CANCEL");
    let fin = w.take_resp(CARRIER, 408, "INVITE");
    assert_eq!(fin.status(), Some(408));
    assert_eq!(w.b.counters().timer_c, 1);
}

#[test]
fn timer_c_after_100_only_fails_over_to_the_next_proxy() {
    let mut w = World::new();
    w.carrier_sends(carrier_invite("tc2", &carrier_sdp(30000, "sendrecv"), &[]));
    let inv = w.take_req(MS[0], "INVITE");
    w.ms_sends(0, ms_answer(&inv, 100, ""));
    w.advance(Duration::from_secs(181));
    w.take_req(MS[0], "CANCEL");
    let next = w.take_req(MS[1], "INVITE");
    assert!(
        ruri(&next).contains("@sip2.pstnhub.microsoft.com"),
        "{}",
        ruri(&next)
    );
}

// ----- session timers -----------------------------------------------------------------

fn timed_carrier(expires: u32) -> b2bua::Config {
    let mut cfg = config();
    cfg.trunks[0].interop.session_timer = Some(trunk::SessionTimer {
        expires,
        refresher: trunk::Refresher::Sbc,
    });
    cfg
}

#[test]
fn the_sbc_refreshes_a_carrier_leg_and_ends_the_call_when_the_carrier_is_gone() {
    let mut w = World::with(timed_carrier(120));
    w.ms_sends(
        0,
        ms_invite(
            "st1",
            &ms_sdp("52.113.1.1", 49152, MS_KEY1, "sendrecv"),
            &[],
        ),
    );
    let inv = w.take_req(CARRIER, "INVITE");
    assert_eq!(
        hdr(&inv, "Session-Expires").as_deref(),
        Some("120;refresher=uac")
    );
    assert_eq!(hdr(&inv, "Min-SE").as_deref(), Some("90"));
    assert!(hdr(&inv, "Supported").unwrap().contains("timer"));
    // The carrier does not do session timers (no Session-Expires in its 200).
    w.carrier_sends(answer(
        &inv,
        200,
        "c-tag",
        &[C_CONTACT.to_owned()],
        &carrier_sdp(30000, "sendrecv"),
    ));
    w.take_req(CARRIER, "ACK");
    let ok = w.take_resp(MS[0], 200, "INVITE");
    let to = hdr(&ok, "To").unwrap();
    w.ms_sends(0, ms_req("ACK", "st1", &to, 1, ""));
    w.clear();
    // At half the interval: an UPDATE without SDP (the carrier takes UPDATE).
    w.advance(Duration::from_secs(61));
    let up = w.take_req(CARRIER, "UPDATE");
    assert!(up.body().is_empty());
    assert_eq!(
        hdr(&up, "Session-Expires").as_deref(),
        Some("120;refresher=uac")
    );
    w.carrier_sends(answer(
        &up,
        200,
        "c-tag",
        &["Session-Expires: 120;refresher=uac".into()],
        "",
    ));
    // The next one is never answered: the call ends (BYE to Teams).
    w.advance(Duration::from_secs(60));
    w.take_req(CARRIER, "UPDATE");
    w.advance(Duration::from_secs(40));
    assert_eq!(w.b.active_calls(), 0, "{}", w.dump());
    w.take_req(MS[0], "BYE");
    assert_eq!(w.b.counters().refresh_failures, 1);
    assert!(w.b.counters().refreshes_sent >= 2);
}

#[test]
fn a_422_from_the_carrier_gets_the_invite_again_with_its_interval() {
    let mut w = World::with(timed_carrier(120));
    w.ms_sends(
        0,
        ms_invite(
            "st2",
            &ms_sdp("52.113.1.1", 49152, MS_KEY1, "sendrecv"),
            &[],
        ),
    );
    let inv = w.take_req(CARRIER, "INVITE");
    w.carrier_sends(answer(&inv, 422, "c-tag", &["Min-SE: 300".into()], ""));
    w.take_req(CARRIER, "ACK");
    let again = w.take_req(CARRIER, "INVITE");
    assert_eq!(
        hdr(&again, "Session-Expires").as_deref(),
        Some("300;refresher=uac")
    );
    assert_eq!(hdr(&again, "Min-SE").as_deref(), Some("300"));
    assert!(w
        .try_take(MS[0], |m| m.status().is_some_and(|s| s >= 300))
        .is_none());
}

#[test]
fn a_caller_asking_for_less_than_min_se_gets_422() {
    let mut w = World::new();
    let extra = [
        "Supported: timer".to_owned(),
        "Session-Expires: 60".to_owned(),
    ];
    w.carrier_sends(carrier_invite(
        "st3",
        &carrier_sdp(30000, "sendrecv"),
        &extra,
    ));
    let r = w.take_resp(CARRIER, 422, "INVITE");
    assert_eq!(hdr(&r, "Min-SE").as_deref(), Some("90"));
    assert_eq!(w.b.counters().interval_too_small, 1);
}

#[test]
fn a_caller_without_timer_support_is_refreshed_by_the_sbc() {
    let mut w = World::with(timed_carrier(100));
    w.carrier_sends(carrier_invite("st4", &carrier_sdp(30000, "sendrecv"), &[]));
    let inv = w.take_req(MS[0], "INVITE");
    w.ms_sends(
        0,
        ms_answer(&inv, 200, &ms_sdp("52.113.1.1", 49152, MS_KEY1, "sendrecv")),
    );
    w.take_req(MS[0], "ACK");
    let ok = w.take_resp(CARRIER, 200, "INVITE");
    assert_eq!(
        hdr(&ok, "Session-Expires").as_deref(),
        Some("100;refresher=uas")
    );
    assert!(
        hdr(&ok, "Require").is_none(),
        "no Require: timer to a caller without it"
    );
    let a_tag = tag(&hdr(&ok, "To").unwrap());
    w.carrier_sends(carrier_in_dialog("ACK", "st4", &a_tag, 1, &[], ""));
    w.clear();
    w.advance(Duration::from_secs(51));
    let up = w.take_req(CARRIER, "UPDATE");
    assert_eq!(
        tag(&hdr(&up, "From").unwrap()),
        a_tag,
        "in the caller's dialog, as its UAS"
    );
    w.carrier_sends(answer(&up, 200, "c-from", &[], ""));
    assert_eq!(w.b.active_calls(), 1);
}

#[test]
fn a_refresh_asking_for_less_than_min_se_gets_422_and_the_call_goes_on() {
    let mut w = World::new();
    let extra = [
        "Supported: timer".to_owned(),
        "Session-Expires: 120".to_owned(),
    ];
    w.carrier_sends(carrier_invite(
        "st5",
        &carrier_sdp(30000, "sendrecv"),
        &extra,
    ));
    let inv = w.take_req(MS[0], "INVITE");
    w.ms_sends(
        0,
        ms_answer(&inv, 200, &ms_sdp("52.113.1.1", 49152, MS_KEY1, "sendrecv")),
    );
    w.take_req(MS[0], "ACK");
    let ok = w.take_resp(CARRIER, 200, "INVITE");
    let a_tag = tag(&hdr(&ok, "To").unwrap());
    w.carrier_sends(carrier_in_dialog("ACK", "st5", &a_tag, 1, &[], ""));
    let short = [
        "Supported: timer".to_owned(),
        "Session-Expires: 60".to_owned(),
    ];
    w.carrier_sends(carrier_in_dialog("UPDATE", "st5", &a_tag, 2, &short, ""));
    let r = w.take_resp(CARRIER, 422, "UPDATE");
    assert_eq!(hdr(&r, "Min-SE").as_deref(), Some("90"));
    assert_eq!(w.b.counters().interval_too_small, 1);
    assert_eq!(w.b.active_calls(), 1);
}
