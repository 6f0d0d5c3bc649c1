#!/usr/bin/env bash
# Builds the seed corpora of the fuzz targets, fuzz/corpus/<target>/, from
# the shared test corpora (collected public material, see PROVENANCE.md
# there). The corpora are not committed (fuzz/corpus is in .gitignore); run
# this once before fuzzing. Re-running refreshes the seeds and keeps whatever
# libFuzzer added to the corpus directories.
#
#   fuzz/seed.sh                      # corpora at ../shared/corpora
#   SBC_CORPORA=/path/to/corpora fuzz/seed.sh
set -euo pipefail
cd "$(dirname "$0")"
corpora="${SBC_CORPORA:-$PWD/../../shared/corpora}"
[ -f "$corpora/rfc4475/INDEX.tsv" ] || { echo "seed.sh: corpora not found at $corpora (set SBC_CORPORA)" >&2; exit 1; }

msg=corpus/sip_message
uri=corpus/sip_uri
frm=corpus/sip_stream_framing
mkdir -p "$msg" "$uri" "$frm"

# put SRC NAME: copy SRC into the message corpus as NAME (writable copy).
put() { install -m 0644 "$1" "$msg/$2"; }

# --- sip_message: whole messages (one datagram each) --------------------------
for f in "$corpora"/rfc4475/*.sip; do put "$f" "rfc4475-$(basename "$f")"; done
for f in "$corpora"/rfc5118/*.sip; do put "$f" "rfc5118-$(basename "$f")"; done
for f in "$corpora"/rfc5118/cl-corrected/*.sip; do put "$f" "rfc5118cl-$(basename "$f")"; done
for f in "$corpora"/rfc5118/archive-raw/*; do put "$f" "rfc5118lf-$(basename "$f")"; done
for f in "$corpora"/fuzz/kamailio-test-misc-sip/*.sip; do put "$f" "kamailio-$(basename "$f")"; done
while IFS= read -r -d '' f; do
  rel="${f#"$corpora"/fuzz/pjsip-ossfuzz-seeds/}"
  put "$f" "pjsip-${rel//\//_}"
done < <(find "$corpora"/fuzz/pjsip-ossfuzz-seeds -path '*/fuzz-sip*' -type f -print0 | sort -z)
# PROTOS c07-sip: every 15th rendered INVITE (302 of 4527), spread over all groups.
i=0
for f in "$corpora"/fuzz/protos-c07-sip/rendered-invite/*.sip; do
  if [ $((i % 15)) -eq 0 ]; then put "$f" "protos-$(basename "$f")"; fi
  i=$((i + 1))
done

# --- sip_uri: pjsip URI seeds + the Request-URIs of the torture messages -------
for f in "$corpora"/fuzz/pjsip-ossfuzz-seeds/fuzz-uri/*/*; do
  install -m 0644 "$f" "$uri/pjsip-$(basename "$f")"
done
for f in "$corpora"/rfc4475/*.sip "$corpora"/rfc5118/*.sip "$corpora"/fuzz/kamailio-test-misc-sip/*.sip; do
  line=$(head -n1 "$f" | tr -d '\r')
  case "$line" in SIP/*) continue ;; esac      # a response: no Request-URI
  u=$(printf '%s\n' "$line" | awk '{print $2}')
  [ -n "$u" ] || continue
  src=$(basename "$(dirname "$f")")
  printf '%s' "$u" > "$uri/rline-$src-$(basename "$f" .sip)"
done
# A few hand-picked shapes the Request-URIs above lack.
printf '%s' 'sips:alice:secret@[2001:db8::10]:5061;transport=tls;lr?Subject=hi&Priority=urgent' > "$uri/hand-sips-ipv6"
printf '%s' 'tel:+1-201-555-0123;phone-context=example.com;ext=42' > "$uri/hand-tel"
printf '%s' 'sip:[::ffff:192.0.2.1]' > "$uri/hand-ipv4-mapped"
printf '%s' 'sip:user@[2001:db8:::192.0.2.1]' > "$uri/hand-3-colons"
printf '%s' 'urn:service:sos' > "$uri/hand-urn"

# --- sip_stream_framing: 2 control bytes + a byte stream ----------------------
# Control bytes (see fuzz_targets/sip_stream_framing.rs): byte 0 picks the
# chunk size (0x00 = 1 byte, 0x3f = 64, 0x7f = 4096, 0x8f = random 1..16),
# byte 1 seeds the random sizes and says when ping_sent() is called.
for f in "$corpora"/rfc4475/*.sip "$corpora"/fuzz/kamailio-test-misc-sip/*.sip "$corpora"/fuzz/pjsip-ossfuzz-seeds/fuzz-sip/*/*; do
  b=$(basename "$f")
  { printf '\x7f\x00'; cat "$f"; } > "$frm/one-$b"
  { printf '\x8f\x03'; printf '\r\n\r\n'; cat "$f" "$f"; printf '\r\n'; } > "$frm/two-keepalive-$b"
done
for f in "$corpora"/rfc4475/wsinv.sip "$corpora"/rfc4475/dblreq.sip "$corpora"/rfc4475/mcl01.sip; do
  { printf '\x00\x01'; printf '\r\n'; cat "$f"; printf '\r\n\r\n'; cat "$f"; } > "$frm/bytewise-$(basename "$f")"
  { printf '\x3f\x02'; cat "$f"; printf '\r\n'; cat "$f"; } > "$frm/chunk64-$(basename "$f")"
done

for d in "$msg" "$uri" "$frm"; do
  printf '%-28s %5d files\n' "$d" "$(find "$d" -type f | wc -l)"
done
