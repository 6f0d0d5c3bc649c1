#!/usr/bin/env bash
# Builds the seed corpora of the media-side fuzz targets (rtp_header,
# rtcp_compound, srtp_unprotect, sdes_crypto, ng_bencode) in
# fuzz/corpus/<target>/, from the pjsip OSS-Fuzz seeds in the shared test
# corpora (see PROVENANCE.md there), the Teams SDP samples and a few
# hand-written ng datagrams. Like seed.sh: the corpora are not committed;
# re-running refreshes the seeds and keeps what libFuzzer added.
#
#   fuzz/seed-media.sh                    # corpora at ../shared/corpora
#   SBC_CORPORA=/path/to/corpora fuzz/seed-media.sh
set -euo pipefail
cd "$(dirname "$0")"
corpora="${SBC_CORPORA:-$PWD/../../shared/corpora}"
pj="$corpora/fuzz/pjsip-ossfuzz-seeds"
[ -d "$pj/fuzz-rtp" ] || { echo "seed-media.sh: corpora not found at $corpora (set SBC_CORPORA)" >&2; exit 1; }

rtp=corpus/rtp_header
rtcp=corpus/rtcp_compound
srtp=corpus/srtp_unprotect
sdes=corpus/sdes_crypto
ng=corpus/ng_bencode
mkdir -p "$rtp" "$rtcp" "$srtp" "$sdes" "$ng"

# from_first_v2 FILE: the file from its first byte 0x80..0xbf (RTP/RTCP
# version 2) on; pjsip's seeds carry their harness's control bytes first.
from_first_v2() {
  local off
  off=$(od -An -v -tu1 -w1 "$1" | awk '$1 >= 128 && $1 < 192 { print NR; exit }')
  [ -n "$off" ] && tail -c +"$off" "$1"
}

# --- rtp_header / rtcp_compound: whole seeds and from their first v2 byte -----
for f in "$pj"/fuzz-rtp/*; do
  b=$(basename "$f")
  install -m 0644 "$f" "$rtp/pjsip-$b"
  from_first_v2 "$f" > "$rtp/pjsip-v2-$b" || rm -f "$rtp/pjsip-v2-$b"
done
for f in "$pj"/fuzz-srtp/*.rtp_*; do      # plaintext-shaped RTP from the SRTP seeds
  install -m 0644 "$f" "$rtp/pjsip-srtp-$(basename "$f")"
done
while IFS= read -r -d '' f; do
  b=$(basename "$f")
  install -m 0644 "$f" "$rtcp/pjsip-$b"
  from_first_v2 "$f" > "$rtcp/pjsip-v2-$b" || rm -f "$rtcp/pjsip-v2-$b"
done < <(find "$pj/fuzz-rtcp" -type f -print0 | sort -z)
for f in "$pj"/fuzz-srtp/*.rtcp_*; do
  install -m 0644 "$f" "$rtcp/pjsip-srtp-$(basename "$f")"
done
# Hand-written: PCMU with a one-byte extension and padding; SR+SDES(CNAME)+BYE.
printf '\xb0\x00\x12\x34\x00\x00\x00\xa0\xca\xfe\xba\xbe\xbe\xde\x00\x01\x10\xff\x00\x00\x01\x02\x03\x04\x00\x00\x03' > "$rtp/hand-ext-padding"
printf '\x90\x60\x00\x01\x00\x00\x00\x00\x00\x00\x00\x01\x10\x00\x00\x02\x01\x03aaa\x02\x00\x00\x00\xff' > "$rtp/hand-two-byte-ext"
{ printf '\x80\xc8\x00\x06\xca\xfe\xba\xbe'; printf '\x00%.0s' $(seq 20)
  printf '\x81\xca\x00\x03\xca\xfe\xba\xbe\x01\x03abc\x00\x00\x00'
  printf '\x81\xcb\x00\x02\xca\xfe\xba\xbe\x03bye'; } > "$rtcp/hand-sr-sdes-bye"

# --- srtp_unprotect: byte 0 = profile/flags (from pjsip's _cN suffix), then the packet
flags=('\x00' '\x01' '\x02' '\x10' '\x21' '\x32')   # _80, _32, GCM, then UNENCRYPTED_* variants
for f in "$pj"/fuzz-srtp/*; do
  b=$(basename "$f")
  n=${b##*_c}; case "$n" in [0-5]) ;; *) n=0 ;; esac
  { printf "${flags[$n]}"; cat "$f"; } > "$srtp/pjsip-$b"
done
for f in "$pj"/fuzz-rtp/* "$rtp"/hand-* "$rtcp"/hand-*; do
  for n in 0 1 2; do
    { printf "${flags[$n]}"; from_first_v2 "$f" || cat "$f"; } > "$srtp/v2-$n-$(basename "$f")"
  done
done

# --- sdes_crypto: each a=crypto line of the pjsip SDES/SDP seeds and Teams SDP
i=0
while IFS= read -r -d '' f; do
  while IFS= read -r line; do
    printf '%s' "$line" > "$sdes/line-$i"; i=$((i + 1))
  done < <(tr -d '\r' < "$f" | grep -a '^a=crypto' || true)
done < <(find "$pj/fuzz-sdes" "$pj/fuzz-sdp" "$corpora/teams-sdp" -type f -print0 | sort -z)
for f in "$pj"/fuzz-sdes/*; do install -m 0644 "$f" "$sdes/pjsip-$(basename "$f")"; done
printf '%s' '1 AEAD_AES_128_GCM inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBka UNENCRYPTED_SRTCP WSH=256' > "$sdes/hand-gcm-params"
printf '%s' 'a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd|2^20|1:4;inline:HR4fICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6|2^20|2:4 KDR=0' > "$sdes/hand-two-keys-mki"

# --- ng_bencode: hand-written ng datagrams (Kamailio rtpengine module style)
sdp='v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv'
sdp_bytes=$(printf "$sdp")
ngput() { printf '%s' "$2" > "$ng/$1"; }
ngput ping 'c1 d7:command4:pinge'
ngput ping-kamailio '5323_1 d7:command4:pinge'
ngput offer "6e4f_2 d7:call-id12:a84b4c76e6610:flagsl11:trust-addresse7:replacel6:origin18:session-connectione7:command5:offer8:from-tag6:1928303:sdp${#sdp_bytes}:${sdp_bytes}18:transport-protocol8:RTP/SAVP4:SDESl3:offe3:ICE6:remove8:rtcp-muxl6:demux4e13:received-froml3:IP412:192.0.2.200ee"
ngput answer "6e4f_3 d7:command6:answer7:call-id12:a84b4c76e6618:from-tag6:1928306:to-tag6:a6c85c3:sdp${#sdp_bytes}:${sdp_bytes}5:flagsl15:SDES-no-AES_CM_128_HMAC_SHA1_32ee"
ngput delete '6e4f_4 d7:command6:delete7:call-id12:a84b4c76e6618:from-tag6:19283012:delete-delayi0ee'
ngput query '6e4f_5 d7:call-id12:a84b4c76e6617:command5:querye'
ngput list '6e4f_6 d7:command4:list5:limiti32ee'
ngput offer-missing-sdp '7_1 d7:command5:offer7:call-id1:xe'
ngput truncated '77_2 d7:command5:offe'
ngput json '8_1 {"command":"ping"}'
ngput bare-nested 'd1:ad1:bl1:ci-1ei0eee1:z0:e'

for d in "$rtp" "$rtcp" "$srtp" "$sdes" "$ng"; do
  printf '%-28s %5d files\n' "$d" "$(find "$d" -type f | wc -l)"
done
