//! Requests from RFC 2543 elements (no `z9hG4bK` branch) are matched by
//! Request-URI, tags, Call-ID, CSeq and top Via (RFC 3261 §17.2.3).

use super::*;
use sim::NetConfig;
use transaction::{Transport, TxState};

/// RFC 4475 §3.4.1 `inv2543`, headers as in the torture test, addressed
/// to the UAS; no branch at all.
const INV2543: &str = "INVITE sip:UserB@192.0.2.2 SIP/2.0\r\n\
    Via: SIP/2.0/UDP 192.0.2.1\r\n\
    From: <sip:+13035551111@ift.client.example.net;user=phone>\r\n\
    Record-Route: <sip:UserB@example.com;maddr=ss1.example.com>\r\n\
    To: sip:+16505552222@ss1.example.net;user=phone\r\n\
    Call-ID: inv2543.1717@ift.client.example.com\r\n\
    CSeq: 56 INVITE\r\n\
    Content-Type: application/sdp\r\n\r\n\
    v=0\r\no=mhandley 29739 7272939 IN IP4 192.0.2.5\r\ns=-\r\n\
    c=IN IP4 192.0.2.5\r\nt=0 0\r\nm=audio 49217 RTP/AVP 0\r\n";

#[test]
fn rfc2543_fallback_matches_branchless_retransmission() {
    let (mut sim, uac, uas) = world(40, NetConfig::default());
    let to = sim.peer(uas, Transport::Udp);
    // The old UA has no transaction layer here: it sends by hand.
    sim.send_raw(uac, to, Bytes::from_static(INV2543.as_bytes()));
    sim.run_for(ms(500));
    sim.send_raw(uac, to, Bytes::from_static(INV2543.as_bytes()));
    sim.run_for(ms(500));
    assert_eq!(
        count(sim.events(uas), |e| matches!(e, Event::Request { .. })),
        1
    );
    assert_eq!(
        responses(&sim, 100).len(),
        2,
        "the 100 resent for the retransmission"
    );
    let (skey, req) = take_request(&mut sim, uas);
    answer(&mut sim, uas, skey, &req, 486);
    sim.run_for(ms(100));
    // Its ACK (To tag of our 486, same top Via, no branch) is absorbed.
    let ack = INV2543
        .replace("INVITE sip:UserB@192.0.2.2", "ACK sip:UserB@192.0.2.2")
        .replace("56 INVITE", "56 ACK")
        .replace("user=phone\r\nCall-ID", "user=phone;tag=uas-tag\r\nCall-ID");
    sim.send_raw(uac, to, Bytes::from(ack));
    sim.run_for(ms(100));
    assert_eq!(sim.endpoint(uas).state(skey), Some(TxState::Confirmed));
    assert_eq!(
        count(sim.events(uas), |e| matches!(e, Event::Ack { .. })),
        0
    );
}

#[test]
fn rfc2543_fallback_covers_the_bare_magic_cookie() {
    // RFC 4475 §3.3.9 `badbranch`: `branch=z9hG4bK` alone is no RFC 3261 branch.
    let (mut sim, uac, uas) = world(41, NetConfig::default());
    let to = sim.peer(uas, Transport::Udp);
    let badbranch = "OPTIONS sip:user@192.0.2.2 SIP/2.0\r\nTo: sip:user@example.com\r\n\
        From: sip:caller@example.org;tag=33242\r\nMax-Forwards: 3\r\n\
        Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK\r\nAccept: application/sdp\r\n\
        Call-ID: badbranch.sadonfo23i420jv0as0derf3j3n\r\nCSeq: 8 OPTIONS\r\nl: 0\r\n\r\n";
    sim.send_raw(uac, to, Bytes::from_static(badbranch.as_bytes()));
    let (skey, req) = take_request(&mut sim, uas);
    answer(&mut sim, uas, skey, &req, 200);
    sim.send_raw(uac, to, Bytes::from_static(badbranch.as_bytes()));
    // Another request with the same bare cookie but another CSeq is new.
    let next = badbranch.replace("CSeq: 8", "CSeq: 9");
    sim.send_raw(uac, to, Bytes::from(next));
    sim.run_for(ms(100));
    assert_eq!(
        count(sim.events(uas), |e| matches!(e, Event::Request { .. })),
        2
    );
    assert_eq!(
        responses(&sim, 200).len(),
        2,
        "the retransmission got the stored 200"
    );
}
