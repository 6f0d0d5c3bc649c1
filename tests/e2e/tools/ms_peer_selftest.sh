#!/bin/sh
# Self-test of ms_peer.py before the SBC exists: a Microsoft peer (--role
# microsoft, every check on) against a stand-in SBC (--role sbc-sim) on
# loopback, mutual TLS with certificates made here by openssl, SRTP through
# libsrtp both ways.  Prints one line per case and exits non-zero if any fails.
#
#   sh tests/e2e/tools/ms_peer_selftest.sh [WORKDIR]
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
PEER="python3 $HERE/ms_peer.py"
W=${1:-$(mktemp -d /tmp/ms_peer_selftest.XXXXXX)}
mkdir -p "$W"
SBC=teams.sbc.example.test

# ---- PKI: one CA, the Microsoft proxy and the SBC (EKU server + client).
cert() { # name SAN...
    name=$1; shift
    san=$(printf 'DNS:%s,' "$@"); san=${san%,}
    openssl req -newkey rsa:2048 -nodes -keyout "$W/$name.key" -subj "/CN=$1" \
        -out "$W/$name.csr" 2>/dev/null
    printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\n' "$san" > "$W/$name.ext"
    openssl x509 -req -in "$W/$name.csr" -CA "$W/ca.pem" -CAkey "$W/ca.key" -CAcreateserial \
        -days 2 -sha256 -extfile "$W/$name.ext" -out "$W/$name.pem" 2>/dev/null
}
if [ ! -f "$W/sbc.pem" ]; then
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$W/ca.key" -out "$W/ca.pem" -days 2 \
        -subj "/CN=ms_peer selftest CA" 2>/dev/null
    cert microsoft sip.pstnhub.microsoft.com sip2.pstnhub.microsoft.com sip3.pstnhub.microsoft.com
    cert sbc "$SBC"
    cert other other.sbc.example.test
    cert acs acs.sbc.example.test
fi
MS="--cert $W/microsoft.pem --key $W/microsoft.key --ca $W/ca.pem --sbc-fqdn $SBC"
SIM="--role sbc-sim --cert $W/sbc.pem --key $W/sbc.key --ca $W/ca.pem --sbc-fqdn $SBC"

port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
wait_ready() { i=0; while [ ! -f "$1" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; }

FAILED=0
if python3 "$HERE/ms_peer_unit.py" > "$W/unit.out" 2>&1; then
    echo "ok   unit (parser, framer, URIs, SDP)"
else
    echo "FAIL unit"; cat "$W/unit.out"; FAILED=1
fi

# case NAME "SERVER-ARGS" "CLIENT-ARGS": the server listens, the client connects.
case_() {
    name=$1; srv=$2; cli=$3; client_may_fail=${4:-}
    p=$(port); rm -f "$W/$name.ready"
    # shellcheck disable=SC2086
    timeout 60 $PEER --listen 127.0.0.1:$p --ready-file "$W/$name.ready" --log "$W/$name.server.log" \
        $srv > "$W/$name.server.json" 2> "$W/$name.server.err" &
    spid=$!
    wait_ready "$W/$name.ready"
    # shellcheck disable=SC2086
    timeout 60 $PEER --connect 127.0.0.1:$p --log "$W/$name.client.log" $cli \
        > "$W/$name.client.json" 2> "$W/$name.client.err"
    crc=$?
    wait $spid
    src=$?
    [ -n "$client_may_fail" ] && crc=0
    if [ $crc -eq 0 ] && [ $src -eq 0 ]; then
        echo "ok   $name"
    else
        echo "FAIL $name (client rc $crc, server rc $src; logs in $W)"
        tail -n 1 "$W/$name.client.json" "$W/$name.server.json"
        cat "$W/$name.client.err" "$W/$name.server.err"
        FAILED=1
    fi
}

# 1. Teams -> SBC: OPTIONS first, call, SRTP echo, hold, resume, refresh, BYE.
case_ teams-call-hold-bye \
    "$SIM --on-invite ring-answer --then wait-bye --timeout 40" \
    "$MS --call 15550109999 --options-first --offer-crypto32 --then hold --then resume --then refresh --then bye --timeout 40"

# 2. Teams -> SBC, then REFER: 202, NOTIFYs, new INVITE to the Refer-To
#    (x-m/x-t kept, Referred-By copied), media on the new call, BYE of the old one.
case_ teams-call-refer \
    "$SIM --on-invite answer --then wait-refer --then wait-bye --timeout 40" \
    "$MS --call +15550109999 --then refer:sip:sip.pstnhub.microsoft.com:5061;transport=tls;x-m=8:orgid:dfcba638-aaaa-bbbb-cccc-0123456789ab;x-t=4dca2e2a-7d1f-4b7e-a0b1-5f6e7d8c9b0a --then bye --timeout 40"

# 3. SBC -> Teams (the SBC's own connection, client certificate checked):
#    OPTIONS first, call, Microsoft answers and checks media, the SBC hangs up.
case_ sbc-call-to-teams \
    "$MS --on-invite ring-answer --then wait-bye --expect-options 1 --timeout 40" \
    "$SIM --call 15550102222 --options-first --then pause:2500 --then bye --timeout 40"

# 4. SBC -> Teams, Teams rejects 503 (what failover tests use).
case_ teams-rejects-503 \
    "$MS --on-invite reject:503 --timeout 20" \
    "$SIM --call +15550102222 --expect-final 503 --timeout 20"

# 5. Carrier gives up while Teams rings: CANCEL, 200, 487, ACK.
case_ sbc-cancels \
    "$MS --on-invite ring-noanswer --timeout 20" \
    "$SIM --call +15550102222 --then cancel --timeout 20"

# 6. Teams gives up while the SBC rings: Microsoft sends the CANCEL.
case_ teams-cancels \
    "$SIM --on-invite ring-noanswer --timeout 20" \
    "$MS --call +15550109999 --then cancel --timeout 20"

# 7. CANCEL/200 race: the SBC answers at once, so the 200 wins; Microsoft ACKs
#    and hangs up (a warning, not a failure).
case_ cancel-race \
    "$SIM --on-invite answer --then wait-bye --timeout 20" \
    "$MS --call +15550109999 --then cancel --expect-violation cancel-race-200 --timeout 20"

# 7b. The same race seen from the answering side: Microsoft answers at once
#     after 180; a CANCEL that arrives after the 200 gets 200 and changes
#     nothing; the call is ACKed and hung up.
case_ cancel-after-200 \
    "$MS --on-invite ring-answer --ring-ms 0 --media none --then wait-bye --timeout 20" \
    "$SIM --call +15550102222 --then cancel --expect-violation cancel-race-200 --timeout 20"

# 8. ACS: the SBC (its own FQDN and certificate) starts the OPTIONS exchange,
#    then calls; Microsoft answers and checks media.
ACS_MS="--cert $W/microsoft.pem --key $W/microsoft.key --ca $W/ca.pem --sbc-fqdn acs.sbc.example.test --acs"
ACS_SIM="--role sbc-sim --cert $W/acs.pem --key $W/acs.key --ca $W/ca.pem --sbc-fqdn acs.sbc.example.test"
case_ acs-options-then-call \
    "$ACS_MS --on-invite ring-answer --then wait-bye --timeout 20" \
    "$ACS_SIM --options-first --call +15550102222 --then pause:2500 --then bye --timeout 20"

# Negative cases: the stand-in breaks a rule, the Microsoft peer must name it.
case_ neg-contact-ip \
    "$MS --on-invite answer --then wait-bye --expect-violation contact-host --timeout 20" \
    "$SIM --call +15550102222 --sim-fault contact-ip --then pause:2500 --then bye --timeout 20"
case_ neg-no-plus \
    "$MS --on-invite answer --then wait-bye --expect-violation e164-ruri --expect-violation e164-to --timeout 20" \
    "$SIM --call 15550102222 --sim-fault no-plus --then pause:2500 --then bye --timeout 20"
case_ neg-wrong-cert \
    "$MS --expect-calls 0 --expect-options 1 --expect-violation tls-client-cert-san --timeout 10" \
    "--role sbc-sim --cert $W/other.pem --key $W/other.key --ca $W/ca.pem --sbc-fqdn $SBC --options-first --expect-calls 0 --timeout 10"
case_ neg-no-client-cert \
    "$MS --expect-calls 0 --linger 2 --expect-violation tls-client-cert --timeout 10" \
    "$SIM --no-client-cert --options-first --expect-calls 0 --timeout 3" client-may-fail

case_ neg-acs-teams-cert \
    "$ACS_MS --expect-calls 0 --expect-options 1 --expect-violation tls-client-cert-san --expect-violation contact-host --timeout 10" \
    "$SIM --options-first --expect-calls 0 --timeout 10"
case_ neg-acs-no-options \
    "$ACS_MS --on-invite answer --then wait-bye --expect-violation acs-options-first --timeout 20" \
    "$ACS_SIM --call +15550102222 --then pause:2500 --then bye --timeout 20"
case_ neg-server-cert \
    "--role sbc-sim --cert $W/other.pem --key $W/other.key --ca $W/ca.pem --sbc-fqdn $SBC --expect-calls 0 --linger 2 --timeout 10" \
    "$MS --expect-calls 0 --expect-violation tls-server-cert --timeout 10"

# The negative client above cannot succeed (Microsoft refuses it): its own
# failure is expected, so only the server's verdict counts there.
exit $FAILED
