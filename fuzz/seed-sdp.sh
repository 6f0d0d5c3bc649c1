#!/usr/bin/env bash
# Builds fuzz/corpus/sdp/ (the seeds of the `sdp` target) from the shared
# corpora (see PROVENANCE.md there): the Teams SDP samples, pjsip's OSS-Fuzz
# fuzz-sdp seeds, the SDP of pjsua's sendto scripts (SDP negotiation, SRTP
# crypto, ICE, session timers; LF and CRLF), the SDP bodies of the torture
# messages (RFC 4475, RFC 5118, Kamailio test/misc/sip, pjsip fuzz-sip seeds)
# and the two bodies the sim crate's neighbours send. Each SDP is written
# four times behind different control bytes (see fuzz_targets/sdp.rs): the
# sdp crate's edits (IPv4, all codecs); the offer toward an SRTP trunk with
# rtcp-mux over IPv6, PCMA only; the answer, IPv4, G722+PCMA+CN, an AES-GCM
# key; both B2BUA checks. Re-running keeps what libFuzzer added.
#
#   fuzz/seed-sdp.sh                      # corpora at ../shared/corpora
#   SBC_CORPORA=/path/to/corpora fuzz/seed-sdp.sh
set -euo pipefail
cd "$(dirname "$0")"
corpora="${SBC_CORPORA:-$PWD/../../shared/corpora}"
[ -d "$corpora/teams-sdp" ] || { echo "seed-sdp.sh: corpora not found at $corpora (set SBC_CORPORA)" >&2; exit 1; }
mkdir -p corpus/sdp
python3 - "$corpora" corpus/sdp <<'EOF'
import glob, os, re, sys
corpora, out = sys.argv[1], sys.argv[2]
bodies = {}

def add(name, data):
    if data.strip():
        bodies[name] = data

for f in sorted(glob.glob(f"{corpora}/teams-sdp/*")):
    add("teams-" + os.path.basename(f), open(f, "rb").read())
for f in sorted(glob.glob(f"{corpora}/fuzz/pjsip-ossfuzz-seeds/fuzz-sdp/*/*")):
    add("pjsip-" + os.path.basename(f), open(f, "rb").read())
for f in sorted(glob.glob(f"{corpora}/fuzz/pjsip-pjsua-sendto/tests/pjsua/scripts-sendto/*.py")):
    m = re.search(r'\bsdp = \\\s*"""\n?(.*?)"""', open(f, encoding="latin-1").read(), re.S)
    if m:
        t = m.group(1).encode("latin-1")
        b = os.path.basename(f)[:-3]
        add(f"pjsua-{b}-lf", t)
        add(f"pjsua-{b}-crlf", t.replace(b"\n", b"\r\n"))
msgs = (glob.glob(f"{corpora}/rfc4475/*.sip") + glob.glob(f"{corpora}/rfc5118/*.sip")
        + glob.glob(f"{corpora}/fuzz/kamailio-test-misc-sip/*.sip")
        + glob.glob(f"{corpora}/fuzz/pjsip-ossfuzz-seeds/fuzz-sip*/*/*"))
for f in sorted(msgs):
    d = open(f, "rb").read()
    if b"application/sdp" not in d.lower():
        continue
    for sep in (b"\r\n\r\n", b"\n\n"):
        i = d.find(sep)
        if i >= 0:
            add("msg-" + os.path.basename(os.path.dirname(f)) + "-" + os.path.basename(f), d[i + len(sep):])
            break
ip = "52.113.1.1"
key = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz"
add("sim-rtp", ("v=0\r\no=peer 1 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\n"
     "m=audio 30000 RTP/AVP 8 0 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\n"
     "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\n").encode())
add("sim-srtp", (f"v=0\r\no=- 7 49152 IN IP4 {ip}\r\ns=session\r\nc=IN IP4 {ip}\r\nb=CT:10000000\r\nt=0 0\r\n"
     f"m=audio 49152 RTP/SAVP 8 0 101 13\r\nc=IN IP4 {ip}\r\na=rtcp:49153 IN IP4 {ip}\r\n"
     f"a=ice-ufrag:abcd\r\na=ice-pwd:0123456789012345678901\r\n"
     f"a=candidate:1 1 UDP 2130706431 {ip} 49152 typ host\r\n"
     f"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key}|2^31\r\n"
     "a=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
     "a=fmtp:101 0-16\r\na=rtpmap:13 CN/8000\r\na=ptime:20\r\na=sendrecv\r\n").encode())
# Control bytes + the mode byte: the edits, the offer, the answer, both.
prefixes = [b"\x00\x12\x34\xff\x00", b"\x0f\x9c\x40\x5a\x01", b"\x3c\x00\x02\x81\x02",
            b"\x00\x12\x34\xff\x03"]
for name, data in bodies.items():
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", name)
    for i, p in enumerate(prefixes):
        with open(f"{out}/{safe}.{i}", "wb") as fh:
            fh.write(p + data)
print(f"{out}: {len(bodies)} SDP bodies, {len(bodies) * len(prefixes)} files")
EOF
