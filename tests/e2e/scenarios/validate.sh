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

pair basic        0    carrier-uas.xml              carrier-uac.xml
pair rtp-echo     0    carrier-uas.xml              carrier-uac.xml
pair uas-reinvites 0   carrier-uas.xml              loopback/uac-reinvite.xml
pair reinvite     0    carrier-uas-reinvite.xml     loopback/uac-reinvite.xml
pair no-reinvite  fail carrier-uas-reinvite.xml     carrier-uac.xml
pair carrier-bye  0    carrier-uas-bye.xml          carrier-uac-waitbye.xml
pair late-offer   0    loopback/uas-late-offer.xml  carrier-uac-late.xml
pair cancel       0    loopback/uas-ring-cancel.xml carrier-uac-cancel.xml
pair emergency    0    emergency-uas.xml            emergency-uac.xml
pair ringback     0    loopback/uas-early-183.xml   carrier-uac-ringback.xml -key rtp_port "$(free_udp)"
exit $FAILED
