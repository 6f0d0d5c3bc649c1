#!/usr/bin/env python3
"""Unit checks of ms_peer.py's SIP pieces: stream framing, compact and
case-insensitive headers, folded lines, comma lists, URIs, SDP.
Run: python3 tests/e2e/tools/ms_peer_unit.py (exit 0 when all pass)."""

import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ms_peer as mp  # noqa: E402

BYE = (b"BYE sip:api-du-a-usea.pstnhub.microsoft.com:443;x-i=abc;x-c=1/s/1/2 SIP/2.0\r\n"
       b"v: SIP/2.0/TLS teams.sbc.example.test:5061;branch=z9hG4bK1\r\n"
       b"v: SIP/2.0/TLS 10.0.0.1:5061;branch=z9hG4bK0\r\n"
       b"ROUTE: <sip:sip.pstnhub.microsoft.com:5061;transport=tls;lr>\r\n"
       b"f: \"A, B\" <sip:+15550100001@teams.sbc.example.test;user=phone>;tag=aa\r\n"
       b"t: <sip:+15550109999@sip.pstnhub.microsoft.com:5061;user=phone>\r\n"
       b" ;tag=bb\r\n"
       b"i: call-1\r\n"
       b"CSeq: 7 BYE\r\n"
       b"x-ms-sbc: test/1\r\n"
       b"l: 0\r\n\r\n")
INVITE_BODY = (b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\n"
               b"m=audio 40000 RTP/SAVP 0 8 101\r\n"
               b"a=crypto:0 AES_CM_128_HMAC_SHA1_32 inline:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA|2^31\r\n"
               b"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:V/Lr6Lsvhad/crSB9kCQ28jrYDxR2Yfk5bXryH5V|2^31\r\n"
               b"a=ice-ufrag:x\r\na=sendonly\r\nm=video 0 RTP/SAVP 96\r\na=sendrecv\r\n")
INVITE = (b"INVITE sip:+15550109999@sip.pstnhub.microsoft.com:5061;user=phone;transport=tls SIP/2.0\r\n"
          b"Via: SIP/2.0/TLS teams.sbc.example.test:5061;branch=z9hG4bK2, SIP/2.0/TLS 10.0.0.1;branch=z9hG4bKx\r\n"
          b"From: <sip:+15550100001@teams.sbc.example.test;user=phone>;tag=cc\r\n"
          b"To: <sip:+15550109999@sip.pstnhub.microsoft.com;user=phone>\r\n"
          b"Call-ID: call-2\r\nCSeq: 1 INVITE\r\n"
          b"m: <sip:+15550100001@teams.sbc.example.test:5061;transport=tls>, <sip:1.2.3.4>\r\n"
          b"c: application/sdp\r\n"
          b"Content-Length: %d\r\n\r\n" % len(INVITE_BODY)) + INVITE_BODY


def check(cond, what):
    if not cond:
        raise AssertionError(what)
    print("ok  ", what)


def main():
    # Framing: two messages in one record, then one split byte by byte, with keepalives.
    f = mp.Framer()
    out = f.feed(b"\r\n\r\n" + BYE + INVITE[:10])
    check(len(out) == 1 and out[0] == BYE, "framer: one whole message, keepalive skipped")
    check(f.keepalives == 1, "framer: double-CRLF keepalive counted")
    got = []
    for i in range(10, len(INVITE)):
        got += f.feed(INVITE[i:i + 1])
    check(got == [INVITE], "framer: message split into 1-byte records, body by Content-Length")

    m = mp.Msg(BYE)
    check(m.is_request and m.method == "BYE", "request line")
    check(m.call_id() == "call-1" and m.cseq() == (7, "BYE"), "compact i:, CSeq")
    check(m.from_tag() == "aa" and m.to_tag() == "bb", "compact f:/t:, folded To line, tags")
    check(len(m.all("via")) == 2 and m.branch() == "z9hG4bK1", "two v: lines, top branch")
    check(m.has("X-MS-SBC") and m.get("route").startswith("<sip:sip.pstnhub"), "case-insensitive names")
    check(mp.parse_nameaddr(m.get("from"))[0] == '"A, B"', "quoted display name with comma")

    inv = mp.Msg(INVITE)
    check(len(inv.all("via")) == 2, "comma-separated Via values")
    check(len(inv.all("contact")) == 2, "compact m: with two Contact values")
    check(inv.get("content-type") == "application/sdp", "compact c:")
    sdp = mp.Sdp(inv.body)
    check(sdp.ip == "127.0.0.2" and sdp.port == 40000 and sdp.proto == "RTP/SAVP", "SDP address, port, profile")
    check(sdp.direction == "sendonly" and sdp.has_ice, "SDP direction of the audio stream, ICE seen")
    tag, key = sdp.key80()
    check(tag == "1" and key is not None and len(key) == 30, "SDP: the _80 crypto picked after a _32 one")
    check(sdp.audio_pt() == 0, "SDP: first audio payload type")
    te = mp.Sdp("v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 4000 RTP/AVP 8 96\r\n"
                "a=rtpmap:8 PCMA/8000\r\na=rtpmap:96 telephone-event/8000\r\n")
    check(te.telephone_event_pt() == 96 and te.audio_pt() == 8, "SDP: telephone-event found by its rtpmap")
    check(mp.Sdp("v=0\r\nm=audio 4000 RTP/AVP 8\r\n").telephone_event_pt() is None, "SDP: no telephone-event")

    u = mp.Uri("sip:+15550109999@teams.sbc.example.test:5061;user=phone;transport=TLS")
    check((u.user, u.host, u.port) == ("+15550109999", "teams.sbc.example.test", 5061), "URI parts")
    check(u.key() == mp.Uri("sip:+15550109999@Teams.sbc.example.test:5061;transport=tls;user=phone").key(),
          "URI comparison: host case, parameter order and transport case ignored")
    x = mp.Uri("sip:sip.pstnhub.microsoft.com:5061;transport=tls;x-m=8:orgid:abc;x-t=def")
    check(x.params["x-m"] == "8:orgid:abc" and not x.user, "Teams-user URI: x-m kept, no user")
    check(x.key() != mp.Uri("sip:sip.pstnhub.microsoft.com:5061;transport=tls;x-m=8:orgid:abc").key(),
          "URI comparison: a dropped parameter differs")
    check(mp.is_ip("10.1.2.3") and mp.is_ip("[::1]") and not mp.is_ip("sbc.example.test"), "IP literal test")
    check(mp.Peer.name_matches("*.example.test", "sbc.example.test")
          and not mp.Peer.name_matches("*.example.test", "a.sbc.example.test"), "one-label wildcard")
    check(mp.decode_key("V/Lr6Lsvhad/crSB9kCQ28jrYDxR2Yfk5bXryH5V") is not None, "SDES key decoded")
    check(mp.rtp_payload(b"\x90\x08\x00\x01" + b"\x00" * 8 + b"\xbe\xde\x00\x01abcd" + b"PAYLOAD") == b"PAYLOAD",
          "RTP payload after a header extension")
    for bad in (b"GARBAGE\r\n\r\n", b"INVITE sip:x SIP/2.0\r\nVia: x\r\n\r\n"):
        try:
            mp.Msg(bad)
            check(False, "malformed message rejected")
        except (ValueError, IndexError):
            check(True, "malformed message rejected: %r" % bad[:20])
    try:
        mp.Framer().feed(b"OPTIONS sip:x SIP/2.0\nVia: x\n\n")
        check(False, "bare-LF framing rejected")
    except ValueError:
        check(True, "bare-LF framing rejected")
    print("all unit checks passed")


if __name__ == "__main__":
    main()
