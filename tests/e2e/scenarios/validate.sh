#!/bin/sh
# Validates the carrier scenarios against SIPp itself on loopback: each pair
# is one call (-m 1), bounded (-timeout 20s, plus `timeout 40`), UDP, with
# -rtp_echo on the UAS.  Also proves that -rtp_echo sends an RTP packet back
# byte for byte (what ms_peer.py's echo check relies on), and that
# carrier-uas-reinvite.xml fails when no re-INVITE comes.
#
#   sh tests/e2e/scenarios/validate.sh [WORKDIR]
set -u
S=$(cd "$(dirname "$0")" && pwd)
W=${1:-$(mktemp -d /tmp/sipp_validate.XXXXXX)}
mkdir -p "$W"
cd "$W" || exit 2
free_udp() { python3 -c 'import socket;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
FAILED=0

# pair NAME EXPECT(0|fail) UAS-SCENARIO UAC-SCENARIO [extra UAC args]
pair() {
    name=$1; expect=$2; uas=$3; uac=$4; shift 4
    P1=$(free_udp); P2=$(free_udp); M1=$(free_udp); M2=$(free_udp)
    timeout 40 sipp -sf "$S/$uas" -i 127.0.0.1 -p "$P1" -mp "$M1" -rtp_echo \
        -m 1 -nostdin -timeout 20s -timeout_error \
        -trace_msg -message_file "$name.uas.msg" -trace_err -error_file "$name.uas.err" \
        > "$name.uas.out" 2>&1 &
    upid=$!
    sleep 0.5
    if [ "$name" = rtp-echo ]; then
        # An RTP packet to the UAS's media port comes back unchanged.
        python3 - "$M1" <<'EOF' || { echo "FAIL rtp-echo: no byte-exact echo"; FAILED=1; }
import os, socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
s.settimeout(2)
pkt = struct.pack("!BBHII", 0x80, 8, 1, 160, 0x1234) + os.urandom(160)
s.sendto(pkt, ("127.0.0.1", int(sys.argv[1])))
sys.exit(0 if s.recv(2048) == pkt else 1)
EOF
    fi
    timeout 40 sipp -sf "$S/$uac" -i 127.0.0.1 -p "$P2" -mp "$M2" -rtp_echo \
        -m 1 -nostdin -timeout 20s -timeout_error -s +15550109999 -key caller 0301234567 -d 1000 \
        -trace_msg -message_file "$name.uac.msg" -trace_err -error_file "$name.uac.err" \
        "$@" "127.0.0.1:$P1" > "$name.uac.out" 2>&1
    crc=$?
    wait $upid
    urc=$?
    if [ "$expect" = 0 ] && [ $crc -eq 0 ] && [ $urc -eq 0 ]; then
        echo "ok   $name ($uac -> $uas)"
    elif [ "$expect" = fail ] && [ $urc -ne 0 ]; then
        echo "ok   $name ($uac -> $uas fails as it must)"
    else
        echo "FAIL $name (uac rc $crc, uas rc $urc; traces in $W)"
        cat "$name.uas.err" "$name.uac.err" 2>/dev/null | head -20
        FAILED=1
    fi
}

# carrier-uac-dtmf.xml plays dtmf-96.pcap from its working directory: three
# RFC 4733 keys (1, 5, #) with payload type 96, nine packets each (the same
# capture tests/e2e/interop.rs writes).
python3 - dtmf-96.pcap <<'EOF'
import struct, sys
out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
seq, at = 1000, 0
for k, ev in enumerate([1, 5, 11]):
    ts = 16000 + 8000 * k
    for i in range(9):
        end = i >= 6
        rtp = struct.pack("!BBHII", 0x80, (0x80 if i == 0 else 0) | 96, seq, ts, 0x4D544D46)
        rtp += struct.pack("!BBH", ev, 0x8A if end else 0x0A, 160 * (min(i, 6) + 1))
        seq += 1
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 28 + len(rtp), 0, 0x4000, 64, 17, 0,
                         bytes([192, 0, 2, 1]), bytes([192, 0, 2, 2]))
        s = sum(struct.unpack("!10H", ip))
        s = (s & 0xFFFF) + (s >> 16)
        ip = ip[:10] + struct.pack("!H", ~((s & 0xFFFF) + (s >> 16)) & 0xFFFF) + ip[12:]
        frame = bytes(range(6)) + bytes([0, 1, 2, 3, 4, 6, 8, 0]) + ip
        frame += struct.pack("!HHHH", 4000, 5000, 8 + len(rtp), 0) + rtp
        out.append(struct.pack("<IIII", at // 1000000, at % 1000000, len(frame), len(frame)) + frame)
        at += 20000
    at += 200000
open(sys.argv[1], "wb").write(b"".join(out))
EOF

pair basic        0    carrier-uas.xml              carrier-uac.xml
pair rtp-echo     0    carrier-uas.xml              carrier-uac.xml
pair uas-reinvites 0   carrier-uas.xml              loopback/uac-reinvite.xml
pair reinvite     0    carrier-uas-reinvite.xml     loopback/uac-reinvite.xml
pair no-reinvite  fail carrier-uas-reinvite.xml     carrier-uac.xml
pair carrier-bye  0    carrier-uas-bye.xml          carrier-uac-waitbye.xml
pair late-offer   0    loopback/uas-late-offer.xml  carrier-uac-late.xml
pair cancel       0    loopback/uas-ring-cancel.xml carrier-uac-cancel.xml
pair emergency    0    emergency-uas.xml            emergency-uac.xml
pair dtmf         0    carrier-uas.xml              carrier-uac-dtmf.xml
pair dtmf-info    0    gateway-uas-info.xml         loopback/uac-info.xml
pair t38          0    gateway-uas-t38.xml          carrier-uac-t38.xml
pair t38-refused  0    loopback/uas-t38-488.xml     carrier-uac-t38-refused.xml
pair ringback     0    loopback/uas-early-183.xml   carrier-uac-ringback.xml -key rtp_port "$(free_udp)"
exit $FAILED
