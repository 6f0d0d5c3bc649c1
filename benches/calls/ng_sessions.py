#!/usr/bin/env python3
"""scripts/bench-calls: the relay's share of the memory per call.

Creates N sessions in a standalone relay (`sbc media`, the relay engine
`sbc run` embeds) over the rtpengine ng protocol, as `sbc run` does for a
carrier -> Teams call: offer from A (RTP/AVP, toward B as RTP/SAVP with SDES),
answer from B (RTP/SAVP with its own AES_CM_128_HMAC_SHA1_80 key). No media.
Usage: ng_sessions.py NG_ADDR N   (prints "created N" and exits; the sessions
stay until the relay's --timeout)."""
import os
import socket
import sys


def benc(v):
    if isinstance(v, int):
        return b"i%de" % v
    if isinstance(v, str):
        v = v.encode()
    if isinstance(v, bytes):
        return b"%d:%s" % (len(v), v)
    if isinstance(v, list):
        return b"l" + b"".join(benc(x) for x in v) + b"e"
    if isinstance(v, dict):
        return b"d" + b"".join(benc(k) + benc(v[k]) for k in sorted(v)) + b"e"
    raise TypeError(v)


def bdec(b, i=0):
    c = b[i:i + 1]
    if c == b"i":
        j = b.index(b"e", i)
        return int(b[i + 1:j]), j + 1
    if c in (b"l", b"d"):
        i += 1
        out = [] if c == b"l" else {}
        while b[i:i + 1] != b"e":
            k, i = bdec(b, i)
            if c == b"l":
                out.append(k)
            else:
                v, i = bdec(b, i)
                out[k.decode()] = v
        return out, i + 1
    j = b.index(b":", i)
    n = int(b[i:j])
    return b[j + 1:j + 1 + n], j + 1 + n


def sdp(port, proto, extra=""):
    return ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            "m=audio %d %s 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
            "%sa=sendrecv\r\n" % (port, proto, extra))


def main():
    host, port = sys.argv[1].rsplit(":", 1)
    n = int(sys.argv[2])
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.connect((host, int(port)))
    s.settimeout(5)
    run = os.urandom(4).hex()
    seq = 0

    def cmd(d):
        nonlocal seq
        seq += 1
        cookie = b"%s_%d" % (run.encode(), seq)
        s.send(cookie + b" " + benc(d))
        while True:
            r = s.recv(65535)
            c, _, body = r.partition(b" ")
            if c == cookie:
                v, _ = bdec(body)
                if v.get("result") != b"ok":
                    raise SystemExit("ng %s failed: %r" % (d["command"], v))
                return v

    key = "inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz"
    for i in range(n):
        cid = "%s-%d" % (run, i)
        cmd({"command": "offer", "call-id": cid, "from-tag": "a", "sdp": sdp(10000, "RTP/AVP"),
             "transport protocol": "RTP/SAVP", "ICE": "remove"})
        cmd({"command": "answer", "call-id": cid, "from-tag": "a", "to-tag": "b",
             "sdp": sdp(10002, "RTP/SAVP", "a=crypto:1 AES_CM_128_HMAC_SHA1_80 %s\r\n" % key)})
    print("created %d" % n)


if __name__ == "__main__":
    main()
