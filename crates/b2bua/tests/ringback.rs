//! Local ringback (`ringback = "local"` on the caller's trunk): a bare 180
//! from Teams gets the carrier our 183 with SDP and a tone from the relay
//! until the callee's early media, the answer, or the end of the call.

#[allow(unused_imports)] // the harness exports what calls.rs uses too
mod harness;

use std::time::Duration;

use harness::*;
use media::control::{Side, ToneSpec};
use media::tone::G711;
use sip::Message;
use trunk::Ringback;

const CONTACT_443: &str =
    "<sip:api-du-a-euwe.pstnhub.microsoft.com:443;x-i=0a1b2c3d;x-c=f00d/s/1/abc>";

fn carrier_invite(call_id: &str, sdp: &str) -> Message {
    carrier_invite_with(call_id, sdp, &[])
}

fn carrier_invite_with(call_id: &str, sdp: &str, extra: &[&str]) -> Message {
    let mut h = vec![
        format!(
            "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-{}",
            token(call_id)
        ),
        "Max-Forwards: 70".into(),
        "From: \"Alice\" <sip:0891234567@192.0.2.10>;tag=c-from".into(),
        "To: <sip:030123456@192.0.2.1>".into(),
        format!("Call-ID: {call_id}"),
        "CSeq: 1 INVITE".into(),
        "Contact: <sip:0891234567@192.0.2.10:5060>".into(),
    ];
    h.extend(extra.iter().map(|e| (*e).to_owned()));
    build("INVITE sip:030123456@192.0.2.1:5060 SIP/2.0", &h, sdp)
}

/// A PRACK from the carrier on its early dialog (our tag `our_tag`).
fn carrier_prack(call_id: &str, our_tag: &str, cseq: u32, rack: &str) -> Message {
    build(
        "PRACK sip:+4930123456@sbc.carrier.example:5060 SIP/2.0",
        &[
            format!(
                "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-PRACK{cseq}{}",
                token(call_id)
            ),
            "Max-Forwards: 70".into(),
            "From: \"Alice\" <sip:0891234567@192.0.2.10>;tag=c-from".into(),
            format!("To: <sip:030123456@192.0.2.1>;tag={our_tag}"),
            format!("Call-ID: {call_id}"),
            format!("CSeq: {cseq} PRACK"),
            format!("RAck: {rack}"),
        ],
        "",
    )
}

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

fn uk() -> Ringback {
    Ringback::Local {
        name: "uk".into(),
        freqs: vec![400, 450],
        cadence_ms: vec![400, 200, 400, 2000],
    }
}

/// The harness's configuration with local ringback on the carrier trunk.
fn local() -> b2bua::Config {
    let mut cfg = config();
    cfg.trunks[0].ringback = uk();
    cfg
}

fn teams_ok(inv: &Message) -> Message {
    answer(
        inv,
        200,
        "ms-tag",
        &[format!("Contact: {CONTACT_443}")],
        &ms_sdp("52.113.1.1", 49152, MS_KEY1, "sendrecv"),
    )
}

/// The tone operations the relay was asked for, in order.
fn tones(w: &World) -> Vec<(u64, Side, Option<ToneSpec>)> {
    w.media().tones.clone()
}

#[test]
fn a_bare_180_from_teams_gets_the_carrier_our_183_and_a_tone_until_the_200() {
    let mut w = World::with(local());
    w.carrier_sends(carrier_invite("rb1", &carrier_sdp(30000, "sendrecv")));
    let inv = w.take_req(MS[0], "INVITE");
    assert!(tones(&w).is_empty(), "nothing before the callee rings");
    w.ms_sends(0, answer(&inv, 180, "ms-tag", &[], ""));
    let p = w.take_resp(CARRIER, 183, "INVITE");
    assert!(
        w.try_take(CARRIER, |m| m.status() == Some(180)).is_none(),
        "the bare 180 is not relayed"
    );
    // Our answer: the carrier's relay leg (as the 200 will name it), RTP,
    // its codecs in its order, no crypto, no ICE.
    let b = body(&p);
    assert_eq!(sdp_audio(&b), (MEDIA_IP.to_owned(), 40000), "{b}");
    assert!(b.contains("m=audio 40000 RTP/AVP 8 0 101"), "{b}");
    assert!(crypto_line(&b).is_none(), "{b}");
    assert!(hdr(&p, "Contact").is_some());
    let session = w.media().creates[0].2.id;
    let t = tones(&w);
    assert_eq!(t.len(), 1, "{t:?}");
    let (id, side, spec) = &t[0];
    assert_eq!((*id, *side), (session, Side::A), "toward the carrier");
    let spec = spec.as_ref().expect("a start");
    assert_eq!(
        (spec.law, spec.payload_type),
        (G711::Pcma, 8),
        "first G.711 of the offer"
    );
    assert_eq!(spec.tone.freqs, [400, 450]);
    assert_eq!(spec.tone.cadence_ms, [400, 200, 400, 2000]);
    // Teams rings again (a second 180, another fork): nothing new.
    w.ms_sends(0, answer(&inv, 180, "ms-fork", &[], ""));
    assert!(w
        .try_take(CARRIER, |m| m
            .status()
            .is_some_and(|s| (180..200).contains(&s)))
        .is_none());
    assert_eq!(tones(&w).len(), 1);
    // The answer stops the tone; the 200 names the same leg.
    w.advance(Duration::from_secs(3));
    w.ms_sends(0, teams_ok(&inv));
    w.take_req(MS[0], "ACK");
    let ok = w.take_resp(CARRIER, 200, "INVITE");
    assert_eq!(sdp_audio(&body(&ok)), (MEDIA_IP.to_owned(), 40000));
    let t = tones(&w);
    assert_eq!(t.len(), 2, "{t:?}");
    assert_eq!(t[1], (session, Side::A, None), "stopped at the answer");
    // The relay points leg B at Teams' media as ever.
    let m = w.media();
    let u = m.updates_of(Side::B).into_iter().rfind(|u| u.rtp.is_some());
    assert_eq!(u.and_then(|u| u.rtp), Some(addr("52.113.1.1:49152")));
}

#[test]
fn early_media_from_teams_takes_over_from_our_tone() {
    let mut w = World::with(local());
    w.carrier_sends(carrier_invite("rb2", &carrier_sdp(30000, "sendrecv")));
    let inv = w.take_req(MS[0], "INVITE");
    w.ms_sends(0, answer(&inv, 180, "ms-tag", &[], ""));
    w.take_resp(CARRIER, 183, "INVITE");
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
    // The callee's 183 goes on (same leg toward the carrier), the tone stops.
    let p = w.take_resp(CARRIER, 183, "INVITE");
    assert_eq!(sdp_audio(&body(&p)), (MEDIA_IP.to_owned(), 40000));
    let session = w.media().creates[0].2.id;
    let t = tones(&w);
    assert_eq!(t.len(), 2, "{t:?}");
    assert!(t[0].2.is_some());
    assert_eq!(t[1], (session, Side::A, None));
    {
        let m = w.media();
        let u = m.updates_of(Side::B).into_iter().rfind(|u| u.rtp.is_some());
        assert_eq!(u.and_then(|u| u.rtp), Some(addr("52.113.1.1:49152")));
    }
    // A bare 180 after the early media: the caller has its answer, so no
    // new 183 — only the tone again.
    w.ms_sends(0, answer(&inv, 180, "ms-tag", &[], ""));
    assert!(w
        .try_take(CARRIER, |m| m
            .status()
            .is_some_and(|s| (180..200).contains(&s)))
        .is_none());
    let t = tones(&w);
    assert_eq!(t.len(), 3, "{t:?}");
    assert!(t[2].2.as_ref().is_some_and(|s| s.payload_type == 8));
    w.ms_sends(0, teams_ok(&inv));
    w.take_resp(CARRIER, 200, "INVITE");
    assert_eq!(tones(&w)[3], (session, Side::A, None));
}

#[test]
fn cancel_by_the_caller_stops_the_tone_before_the_session_goes() {
    let mut w = World::with(local());
    w.carrier_sends(carrier_invite("rb3", &carrier_sdp(30000, "sendrecv")));
    let inv = w.take_req(MS[0], "INVITE");
    w.ms_sends(0, answer(&inv, 180, "ms-tag", &[], ""));
    w.take_resp(CARRIER, 183, "INVITE");
    w.carrier_sends(carrier_cancel("rb3"));
    w.take_resp(CARRIER, 200, "CANCEL");
    w.take_resp(CARRIER, 487, "INVITE");
    w.take_req(MS[0], "CANCEL");
    let session = w.media().creates[0].2.id;
    let t = tones(&w);
    assert_eq!(t.last(), Some(&(session, Side::A, None)), "{t:?}");
    assert_eq!(w.media().deletes, [session]);
    assert_eq!(w.b.active_calls(), 0);
}

#[test]
fn every_destination_failing_stops_the_tone() {
    let mut w = World::with(local());
    w.carrier_sends(carrier_invite("rb4", &carrier_sdp(30000, "sendrecv")));
    let inv = w.take_req(MS[0], "INVITE");
    w.ms_sends(0, answer(&inv, 180, "ms-tag", &[], ""));
    w.take_resp(CARRIER, 183, "INVITE");
    w.ms_sends(0, answer(&inv, 486, "ms-tag", &[], ""));
    w.take_req(MS[0], "ACK");
    assert_eq!(w.take_resp(CARRIER, 486, "INVITE").status(), Some(486));
    let session = w.media().creates[0].2.id;
    assert_eq!(tones(&w).last(), Some(&(session, Side::A, None)));
    assert_eq!(w.media().deletes, [session]);
}

/// Teams first; after 5 s of ringing the call is forwarded to +4915112345
/// through the carrier.
fn forward_after_ringing() -> b2bua::Config {
    let mut cfg = local();
    cfg.routes.routes[0].forward = Some(routing::Forward {
        to: routing::Destination {
            trunk: "carrier".into(),
            target: routing::Target::Number("+4915112345".into()),
            label: Some("Fail-over".into()),
        },
        window: Duration::from_secs(30),
        ring_timeout: Some(Duration::from_secs(5)),
    });
    cfg
}

#[test]
fn the_tone_keeps_playing_when_the_call_moves_to_the_next_destination() {
    let mut w = World::with(forward_after_ringing());
    w.carrier_sends(carrier_invite("rb5", &carrier_sdp(30000, "sendrecv")));
    // The forward window rings the caller at once (our own bare 180).
    w.take_resp(CARRIER, 180, "INVITE");
    let inv = w.take_req(MS[0], "INVITE");
    w.ms_sends(0, answer(&inv, 180, "ms-tag", &[], ""));
    w.take_resp(CARRIER, 183, "INVITE");
    assert_eq!(tones(&w).len(), 1);
    // Rings too long: Teams is cancelled, the forward goes to the carrier.
    w.advance(Duration::from_millis(5100));
    w.take_req(MS[0], "CANCEL");
    let fwd = w
        .try_take(CARRIER, |m| {
            m.is_request() && m.method_str() == Some("INVITE")
        })
        .unwrap_or_else(|| panic!("no forward:\n{}", w.dump()));
    assert_eq!(tones(&w).len(), 1, "no stop while the call moves on");
    // The forward destination rings bare too: still our tone, no new 183.
    w.carrier_sends(answer(&fwd, 180, "fw-tag", &[], ""));
    assert!(w
        .try_take(CARRIER, |m| m
            .status()
            .is_some_and(|s| (180..200).contains(&s)))
        .is_none());
    assert_eq!(tones(&w).len(), 1);
    w.carrier_sends(answer(
        &fwd,
        200,
        "fw-tag",
        &["Contact: <sip:015112345@192.0.2.10:5060>".to_owned()],
        &carrier_sdp(31000, "sendrecv"),
    ));
    let ok = w
        .try_take(CARRIER, |m| {
            m.status() == Some(200) && m.call_id().ok() == Some("rb5")
        })
        .unwrap_or_else(|| panic!("no 200 to the caller:\n{}", w.dump()));
    assert_eq!(sdp_audio(&body(&ok)).1, 40000);
    let session = w.media().creates[0].2.id;
    let t = tones(&w);
    assert_eq!(t.len(), 2, "{t:?}");
    assert_eq!(t[1], (session, Side::A, None));
}

#[test]
fn pass_relays_the_bare_180_as_before() {
    let mut w = World::new();
    w.carrier_sends(carrier_invite("rb6", &carrier_sdp(30000, "sendrecv")));
    let inv = w.take_req(MS[0], "INVITE");
    w.ms_sends(0, answer(&inv, 180, "ms-tag", &[], ""));
    let r = w.take_resp(CARRIER, 180, "INVITE");
    assert!(body(&r).is_empty());
    assert!(w.try_take(CARRIER, |m| m.status() == Some(183)).is_none());
    assert!(tones(&w).is_empty());
}

#[test]
fn without_an_offer_or_without_g711_the_180_goes_on() {
    // A late offer: an answer cannot go in an unreliable 183.
    let mut w = World::with(local());
    w.carrier_sends(carrier_invite("rb7", ""));
    let inv = w.take_req(MS[0], "INVITE");
    w.ms_sends(0, answer(&inv, 180, "ms-tag", &[], ""));
    w.take_resp(CARRIER, 180, "INVITE");
    assert!(tones(&w).is_empty());
    // G.722 and G.729 only: the relay has nothing to play the tone in.
    let mut w = World::with(local());
    let sdp = carrier_sdp(30000, "sendrecv")
        .replace("RTP/AVP 8 0 101", "RTP/AVP 9 18")
        .replace("a=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\n", "");
    w.carrier_sends(carrier_invite("rb8", &sdp));
    let inv = w.take_req(MS[0], "INVITE");
    w.ms_sends(0, answer(&inv, 180, "ms-tag", &[], ""));
    let r = w.take_resp(CARRIER, 180, "INVITE");
    assert!(body(&r).is_empty());
    assert!(tones(&w).is_empty());
    // A caller that does not receive (sendonly) is not played to either.
    let mut w = World::with(local());
    w.carrier_sends(carrier_invite("rb9", &carrier_sdp(30000, "sendonly")));
    let inv = w.take_req(MS[0], "INVITE");
    w.ms_sends(0, answer(&inv, 180, "ms-tag", &[], ""));
    w.take_resp(CARRIER, 180, "INVITE");
    assert!(tones(&w).is_empty());
}

#[test]
fn a_trunk_codec_list_limits_our_answer_and_picks_the_tone_codec() {
    // Teams takes PCMU only: our offer to it and our answer to the carrier
    // both carry PCMU, and the tone is µ-law, PT 0.
    let mut cfg = local();
    cfg.trunks[1].codecs = vec!["PCMU".into(), "telephone-event".into()];
    let mut w = World::with(cfg);
    w.carrier_sends(carrier_invite("rb10", &carrier_sdp(30000, "sendrecv")));
    let inv = w.take_req(MS[0], "INVITE");
    assert!(body(&inv).contains("RTP/SAVP 0 101"), "{}", body(&inv));
    w.ms_sends(0, answer(&inv, 180, "ms-tag", &[], ""));
    let p = w.take_resp(CARRIER, 183, "INVITE");
    assert!(
        body(&p).contains("m=audio 40000 RTP/AVP 0 101"),
        "{}",
        body(&p)
    );
    let t = tones(&w);
    let spec = t[0].2.as_ref().unwrap();
    assert_eq!((spec.law, spec.payload_type), (G711::Pcmu, 0));
}

#[test]
fn a_caller_that_requires_100rel_gets_our_183_reliably_and_the_200_repeats_its_answer() {
    let mut w = World::with(local());
    let extra = ["Supported: 100rel", "Require: 100rel"];
    w.carrier_sends(carrier_invite_with(
        "rb11",
        &carrier_sdp(30000, "sendrecv"),
        &extra,
    ));
    let inv = w.take_req(MS[0], "INVITE");
    w.ms_sends(0, answer(&inv, 180, "ms-tag", &[], ""));
    let p = w.take_resp(CARRIER, 183, "INVITE");
    assert_eq!(hdr(&p, "Require").as_deref(), Some("100rel"));
    let rseq = hdr(&p, "RSeq").expect("a reliable 183");
    let early = body(&p);
    assert!(early.contains("m=audio 40000 RTP/AVP 8 0 101"), "{early}");
    assert_eq!(tones(&w).len(), 1);
    let a_tag = tag(&hdr(&p, "To").unwrap());
    // Not PRACKed yet: sent again after T1.
    w.advance(Duration::from_millis(510));
    assert_eq!(
        hdr(&w.take_resp(CARRIER, 183, "INVITE"), "RSeq").as_deref(),
        Some(rseq.as_str())
    );
    w.carrier_sends(carrier_prack(
        "rb11",
        &a_tag,
        2,
        &format!("{rseq} 1 INVITE"),
    ));
    w.take_resp(CARRIER, 200, "PRACK");
    w.ms_sends(0, teams_ok(&inv));
    w.take_req(MS[0], "ACK");
    let ok = w.take_resp(CARRIER, 200, "INVITE");
    assert_eq!(
        body(&ok),
        early,
        "the answer of the reliable 183, byte for byte"
    );
    let session = w.media().creates[0].2.id;
    assert_eq!(tones(&w)[1], (session, Side::A, None));
}
