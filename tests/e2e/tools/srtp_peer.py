#!/usr/bin/env python3
"""Drives `sbc media` over the ng protocol and exchanges media with it as two
parties: A speaks plain RTP, B speaks SRTP through libsrtp (pylibsrtp).

Usage: srtp_peer.py NG_HOST:PORT PACKETS  (SDES AES_CM_128_HMAC_SHA1_80, as Teams)
Prints one JSON object: packets sent/received each way, payload mismatches.
Exits non-zero on any protocol failure."""

import base64
import json
import os
import re
import socket
import struct
import sys

import pylibsrtp


def benc(x):
    if isinstance(x, int):
        return b"i%de" % x
    if isinstance(x, str):
        x = x.encode()
    if isinstance(x, bytes):
        return b"%d:" % len(x) + x
    if isinstance(x, list):
        return b"l" + b"".join(benc(i) for i in x) + b"e"
    if isinstance(x, dict):
        return b"d" + b"".join(benc(k) + benc(v) for k, v in sorted(x.items())) + b"e"
    raise TypeError(x)


def bdec(b, i=0):
    c = b[i:i + 1]
    if c == b"i":
        j = b.index(b"e", i)
        return int(b[i + 1:j]), j + 1
    if c in (b"l", b"d"):
        i += 1
        items = []
        while b[i:i + 1] != b"e":
            v, i = bdec(b, i)
            items.append(v)
        if c == b"l":
            return items, i + 1
        return {items[k]: items[k + 1] for k in range(0, len(items), 2)}, i + 1
    j = b.index(b":", i)
    n = int(b[i:j])
    return b[j + 1:j + 1 + n], j + 1 + n


def main():
    host, port = sys.argv[1].rsplit(":", 1)
    ng = (host, int(port))
    suite = "AES_CM_128_HMAC_SHA1_80"
    count = int(sys.argv[2])
    ctl = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    ctl.settimeout(3)

    def cmd(d):
        ctl.sendto(b"t1 " + benc(d), ng)
        data = ctl.recv(65535)
        cookie, _, body = data.partition(b" ")
        assert cookie == b"t1", data
        reply, _ = bdec(body)
        if reply.get(b"result") not in (b"ok", b"pong"):
            raise SystemExit("ng error: %r" % reply)
        return reply

    a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    a.bind(("127.0.0.1", 0))
    a.settimeout(1)
    b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    b.bind(("127.0.0.1", 0))
    b.settimeout(1)
    a_port, b_port = a.getsockname()[1], b.getsockname()[1]

    offer = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
             "m=audio %d RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n" % a_port)
    r = cmd({"command": "offer", "call-id": "srtp-%s" % suite, "from-tag": "a1", "sdp": offer,
             "transport-protocol": "RTP/SAVP", "replace": ["origin", "session-connection"], "ICE": "remove"})
    sdp_to_b = r[b"sdp"].decode()
    relay_b_port = int(re.search(r"m=audio (\d+) RTP/SAVP", sdp_to_b).group(1))
    m = re.search(r"a=crypto:(\d+) (\S+) inline:(\S+)", sdp_to_b)
    assert m, sdp_to_b
    assert m.group(2) == "AES_CM_128_HMAC_SHA1_80", sdp_to_b  # a plain offer gets the Teams profile
    relay_key = base64.b64decode(m.group(3).split("|")[0])

    b_key = os.urandom(30)
    answer = ("v=0\r\no=- 2 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
              "m=audio %d RTP/SAVP 0\r\na=crypto:%s %s inline:%s\r\n"
              % (b_port, m.group(1), "AES_CM_128_HMAC_SHA1_80", base64.b64encode(b_key[:30]).decode()))
    r = cmd({"command": "answer", "call-id": "srtp-%s" % suite, "from-tag": "a1", "to-tag": "b1", "sdp": answer})
    sdp_to_a = r[b"sdp"].decode()
    relay_a_port = int(re.search(r"m=audio (\d+) RTP/AVP", sdp_to_a).group(1))
    assert "a=crypto" not in sdp_to_a, sdp_to_a

    # libsrtp: B encrypts with its own key, decrypts with the relay's.
    b_out = pylibsrtp.Session(pylibsrtp.Policy(key=b_key[:30], ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND,
                                               srtp_profile=pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80))
    b_in = pylibsrtp.Session(pylibsrtp.Policy(key=relay_key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND,
                                              srtp_profile=pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80))
    res = {"a_to_b": 0, "b_to_a": 0, "mismatch": 0, "sent": count}
    for i in range(count):
        seq = (65500 + i) & 0xFFFF  # across the wrap: the ROC must move on both sides
        payload = bytes([(i * 7 + k) & 0xFF for k in range(160)])
        pkt = struct.pack("!BBHII", 0x80, 0, seq, seq * 160, 0x1234) + payload
        a.sendto(pkt, ("127.0.0.1", relay_a_port))
        try:
            got = b.recv(2048)
            plain = b_in.unprotect(got)
            res["a_to_b"] += 1
            res["mismatch"] += plain != pkt
        except (socket.timeout, pylibsrtp.Error):
            pass
        back = struct.pack("!BBHII", 0x80, 0, seq, seq * 160, 0x5678) + payload[::-1]
        b.sendto(b_out.protect(back), ("127.0.0.1", relay_b_port))
        try:
            got = a.recv(2048)
            res["b_to_a"] += 1
            res["mismatch"] += got != back
        except socket.timeout:
            pass
    q = cmd({"command": "query", "call-id": "srtp-%s" % suite})
    res["relay_rtp_packets"] = q[b"totals"][b"RTP"][b"packets"]
    cmd({"command": "delete", "call-id": "srtp-%s" % suite, "from-tag": "a1"})
    print(json.dumps(res))


if __name__ == "__main__":
    main()
