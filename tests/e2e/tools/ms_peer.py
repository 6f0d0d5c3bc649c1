#!/usr/bin/env python3
"""A Microsoft-side peer for the SBC's end-to-end tests: one process plays one
Microsoft SIP proxy (Teams or ACS Direct Routing, e.g. sip.pstnhub.microsoft.com)
together with its media processor.

Signalling is SIP over mutual TLS (Python's `ssl`, i.e. OpenSSL); media is SRTP
(SDES, AES_CM_128_HMAC_SHA1_80) through libsrtp (`pylibsrtp`).  Everything the
SBC sends is checked against the Direct Routing rules of
teams-acs-requirements.md (§0, §1.3-1.8); every breach is recorded as a named
violation.  The last line on stdout is one JSON object; the exit status is 0
only when every expected step happened, no unexpected violation was seen and
the media came back intact.

`--role sbc-sim` turns the same program into a stand-in for the SBC (FQDN
Contact, X-MS-SBC, SRTP echo, REFER transferee), used by the self-test to
prove this peer before the real SBC exists.  Run with --help for the options.
"""

import argparse
import base64
import ipaddress
import json
import os
import queue
import random
import re
import select
import signal
import socket
import ssl
import struct
import sys
import threading
import time
import uuid

try:
    import pylibsrtp
except ImportError:  # reported when media is needed
    pylibsrtp = None

SUITE80 = "AES_CM_128_HMAC_SHA1_80"
MS_ALLOW = "INVITE,ACK,OPTIONS,CANCEL,BYE,NOTIFY"
SBC_ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, NOTIFY, REFER"
MS_UA = "Microsoft.PSTNHub.SIPProxy v.2024.2.6.5 i.USEA.5"
SIM_XMSSBC = "ms_peer/sbc-sim/1.0"

COMPACT = {"i": "call-id", "m": "contact", "e": "content-encoding", "l": "content-length",
           "c": "content-type", "f": "from", "s": "subject", "k": "supported", "t": "to",
           "v": "via", "r": "refer-to", "b": "referred-by", "o": "event", "x": "session-expires",
           "u": "allow-events", "a": "accept-contact", "j": "reject-contact",
           "d": "request-disposition", "y": "identity", "n": "identity-info"}
# Headers whose comma-separated values are separate entries.
LISTS = {"via", "contact", "route", "record-route", "allow", "supported", "require",
         "proxy-require", "unsupported"}
RTPMAP = {0: "PCMU/8000", 8: "PCMA/8000", 9: "G722/8000", 18: "G729/8000", 13: "CN/8000",
          101: "telephone-event/8000", 104: "SILK/16000", 103: "SILK/8000"}

# Every check this peer makes on what the SBC sends (names used in the JSON
# and by --skip-check / --expect-violation).
CHECKS = {
    "tls-client-cert": "the SBC presents a client certificate trusted by --ca on connections it opens",
    "tls-client-cert-san": "that certificate's SAN (or CN) holds --sbc-fqdn",
    "tls-server-cert": "the SBC's server certificate is trusted and valid for --sni",
    "malformed": "every message parses (start line, headers, Content-Length framing)",
    "x-ms-sbc": "X-MS-SBC on every request (except ACK/CANCEL) and response (except 100)",
    "contact-missing": "Contact present on OPTIONS, INVITE, re-INVITE and 2xx to INVITE",
    "contact-multiple": "exactly one Contact value",
    "contact-host": "Contact host is --sbc-fqdn, never an IP literal",
    "contact-transport": "Contact URI carries transport=tls",
    "options-allow-refer": "OPTIONS (and its 200) carry Allow including REFER",
    "invite-no-sdp": "INVITE carries SDP (no delayed offer)",
    "answer-no-sdp": "2xx to our INVITE carries the SDP answer",
    "sdp-profile": "m=audio uses RTP/SAVP",
    "sdp-crypto": "an a=crypto with AES_CM_128_HMAC_SHA1_80 (the only one in an answer)",
    "sdp-retarget": "media address/port unchanged across re-INVITEs of a dialog",
    "srtp-rekey": "the SBC's SRTP key unchanged across re-INVITEs of a dialog",
    "replaces": "no Replaces header and no Replaces in any URI",
    "e164-ruri": "Request-URI user part in E.164 with '+' (Teams-user x-m targets exempt)",
    "e164-from": "From user part in E.164 with '+' (anonymous exempt)",
    "e164-to": "To user part in E.164 with '+' (Teams-user x-m targets exempt)",
    "user-phone": "numeric sip: URIs carry user=phone",
    "update-sent": "no UPDATE sent to Microsoft",
    "prack-sent": "no PRACK sent to Microsoft",
    "require-100rel": "no Require: 100rel toward Microsoft",
    "in-dialog-ruri": "in-dialog requests target Microsoft's Contact (x-i/x-c kept)",
    "in-dialog-route": "in-dialog requests carry Route = Microsoft's Record-Route",
    "cseq-order": "CSeq of the SBC's in-dialog requests increases",
    "unknown-dialog": "in-dialog requests match an existing dialog",
    "notify-event": "NOTIFY for REFER carries Event: refer",
    "notify-content-type": "NOTIFY for REFER carries Content-Type: message/sipfrag",
    "notify-sipfrag": "NOTIFY body is a sipfrag status line",
    "refer-ruri": "the INVITE after REFER has Request-URI = Refer-To URI, parameters kept",
    "refer-referred-by": "the INVITE after REFER carries the Referred-By we sent",
    "acs-options-first": "--acs: the SBC sends OPTIONS before its first INVITE",
    "hold-direction": "hold answered with recvonly or inactive",
    "resume-direction": "resume answered with sendrecv",
}
WARNINGS = {"via-host", "options-from-host", "tls-handshake-eof", "media-source",
            "notify-subscription-state", "content-length-missing", "cancel-race-200"}


def rand_hex(n=8):
    return os.urandom(n).hex()


def is_ip(host):
    try:
        ipaddress.ip_address(host.strip("[]"))
        return True
    except ValueError:
        return False


# ---------------------------------------------------------------- SIP parsing

def split_commas(value):
    """Splits a header value on commas outside quotes and angle brackets."""
    out, cur, depth, quoted, i = [], [], 0, False, 0
    while i < len(value):
        ch = value[i]
        if quoted:
            if ch == "\\" and i + 1 < len(value):
                cur.append(value[i:i + 2])
                i += 2
                continue
            if ch == '"':
                quoted = False
        elif ch == '"':
            quoted = True
        elif ch == "<":
            depth += 1
        elif ch == ">":
            depth = max(0, depth - 1)
        elif ch == "," and depth == 0:
            out.append("".join(cur).strip())
            cur = []
            i += 1
            continue
        cur.append(ch)
        i += 1
    if "".join(cur).strip():
        out.append("".join(cur).strip())
    return out


class Msg:
    def __init__(self, raw):
        self.raw = raw
        head, _, body = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        first = lines[0]
        self.headers = []
        for line in lines[1:]:
            if line[:1] in (" ", "\t") and self.headers:  # folded line
                n, v = self.headers[-1]
                self.headers[-1] = (n, v + " " + line.strip())
                continue
            if ":" not in line:
                raise ValueError("header line without colon: %r" % line)
            n, v = line.split(":", 1)
            n = n.strip().lower()
            self.headers.append((COMPACT.get(n, n), v.strip()))
        self.body = body
        if first.startswith("SIP/2.0 "):
            self.is_request = False
            parts = first.split(" ", 2)
            self.code = int(parts[1])
            self.reason = parts[2] if len(parts) > 2 else ""
            self.method = self.cseq()[1]
        else:
            parts = first.split(" ")
            if len(parts) != 3 or parts[2] != "SIP/2.0":
                raise ValueError("bad request line: %r" % first)
            self.is_request = True
            self.method, self.ruri = parts[0], parts[1]
            self.code = None
        for n in ("call-id", "cseq", "from", "to", "via"):
            if self.get(n) is None:
                raise ValueError("missing %s" % n)
        num, method = self.cseq()
        if self.is_request and method != self.method:
            raise ValueError("CSeq method %s differs from %s" % (method, self.method))

    def get(self, name):
        vals = self.all(name)
        return vals[0] if vals else None

    def all(self, name):
        name = name.lower()
        out = []
        for n, v in self.headers:
            if n == name:
                out.extend(split_commas(v) if n in LISTS else [v])
        return out

    def has(self, name):
        return any(n == name.lower() for n, _ in self.headers)

    def cseq(self):
        parts = self.get("cseq").split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise ValueError("bad CSeq %r" % self.get("cseq"))
        return int(parts[0]), parts[1].upper()

    def call_id(self):
        return self.get("call-id")

    def from_tag(self):
        return header_param(self.get("from"), "tag")

    def to_tag(self):
        return header_param(self.get("to"), "tag")

    def branch(self):
        return header_param(self.get("via"), "branch")

    def first_line(self):
        return self.raw.split(b"\r\n", 1)[0].decode("latin-1")


def parse_nameaddr(value):
    """(display, uri, header-params dict) of a name-addr or addr-spec."""
    v = value.strip()
    lt = -1
    quoted = False
    for i, ch in enumerate(v):
        if ch == '"':
            quoted = not quoted
        elif ch == "<" and not quoted:
            lt = i
            break
    if lt >= 0:
        gt = v.index(">", lt)
        display, uri, rest = v[:lt].strip(), v[lt + 1:gt], v[gt + 1:]
    else:
        display = ""
        uri, _, rest = v.partition(";")
        rest = ";" + rest if rest else ""
    return display, uri.strip(), parse_params(rest)


def parse_params(s):
    out = {}
    for p in s.split(";"):
        p = p.strip()
        if not p:
            continue
        k, _, val = p.partition("=")
        out[k.strip().lower()] = val.strip()
    return out


def header_param(value, name):
    if value is None:
        return None
    return parse_nameaddr(value)[2].get(name) if "<" in value or ";" in value else None


def via_param(via, name):
    return parse_params(via.partition(";")[2]).get(name)


class Uri:
    def __init__(self, text):
        self.text = text
        scheme, _, rest = text.partition(":")
        self.scheme = scheme.lower()
        self.headers = ""
        if "?" in rest:
            rest, self.headers = rest.split("?", 1)
        self.user, self.host, self.port = "", "", None
        if self.scheme == "tel":
            self.user, _, params = rest.partition(";")
            self.params = parse_params(params)
            return
        if "@" in rest:
            self.user, rest = rest.split("@", 1)
            self.user = self.user.split(":")[0]
        hostport, _, params = rest.partition(";")
        self.params = parse_params(params)
        if hostport.startswith("["):
            end = hostport.index("]")
            self.host, tail = hostport[:end + 1], hostport[end + 1:]
            if tail.startswith(":"):
                self.port = int(tail[1:])
        elif ":" in hostport:
            self.host, port = hostport.rsplit(":", 1)
            self.port = int(port) if port.isdigit() else None
        else:
            self.host = hostport

    def key(self):
        params = {k: (v.lower() if k in ("transport", "user") else v) for k, v in self.params.items()}
        return (self.scheme, self.user, self.host.lower(), self.port, tuple(sorted(params.items())))


def uri_of(header_value):
    return parse_nameaddr(header_value)[1]


class Framer:
    """Cuts a TLS byte stream into SIP messages by Content-Length."""

    def __init__(self):
        self.buf = b""
        self.keepalives = 0
        self.no_length = 0

    def feed(self, data):
        self.buf += data
        out = []
        while True:
            stripped = self.buf.lstrip(b"\r\n")
            if len(stripped) != len(self.buf):
                if self.buf.startswith(b"\r\n\r\n"):
                    self.keepalives += 1
                self.buf = stripped
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if b"\n\n" in self.buf:
                    raise ValueError("header block ends with bare LF line endings (CRLF required)")
                if len(self.buf) > 65536:
                    raise ValueError("header block over 64 KiB")
                return out
            head = self.buf[:end].decode("latin-1")
            length = None
            for line in head.split("\r\n")[1:]:
                n, _, v = line.partition(":")
                if n.strip().lower() in ("content-length", "l"):
                    length = int(v.strip())
            if length is None:
                self.no_length += 1
                length = 0
            total = end + 4 + length
            if len(self.buf) < total:
                return out
            out.append(self.buf[:total])
            self.buf = self.buf[total:]


# ---------------------------------------------------------------------- SDP

class Sdp:
    def __init__(self, body):
        text = body.decode("latin-1") if isinstance(body, bytes) else body
        self.text = text
        self.ip = None
        self.port = None
        self.proto = None
        self.pts = []
        self.cryptos = []   # (tag, suite, key-b64)
        self.direction = "sendrecv"
        self.has_ice = False
        self.rtcp_mux = False
        self.origin_version = None
        self.rtpmap = {}    # payload type -> "encoding/rate" of the audio stream
        in_media = False
        for line in text.replace("\r\n", "\n").split("\n"):
            line = line.strip()
            if line.startswith("o="):
                parts = line[2:].split()
                if len(parts) >= 3:
                    self.origin_version = parts[2]
            elif line.startswith("c="):
                parts = line[2:].split()
                if len(parts) >= 3 and (in_media or self.ip is None):
                    self.ip = parts[2].split("/")[0]
            elif line.startswith("m="):
                if in_media:  # only the first m= line (audio) is used
                    break
                parts = line[2:].split()
                if parts[0] != "audio":
                    continue
                in_media = True
                self.port = int(parts[1])
                self.proto = parts[2]
                self.pts = [int(p) for p in parts[3:] if p.isdigit()]
            elif line.startswith("a="):
                a = line[2:]
                if a.startswith("crypto:"):
                    parts = a[7:].split()
                    if len(parts) >= 3 and parts[2].startswith("inline:"):
                        self.cryptos.append((parts[0], parts[1], parts[2][7:].split("|")[0]))
                elif a in ("sendrecv", "sendonly", "recvonly", "inactive"):
                    self.direction = a
                elif a.startswith(("ice-ufrag", "ice-pwd", "candidate")):
                    self.has_ice = True
                elif a == "rtcp-mux":
                    self.rtcp_mux = True
                elif a.startswith("rtpmap:") and in_media:
                    pt, _, enc = a[7:].partition(" ")
                    if pt.isdigit():
                        self.rtpmap[int(pt)] = enc.strip()

    def key80(self):
        for tag, suite, key in self.cryptos:
            if suite == SUITE80:
                return tag, decode_key(key)
        return None, None

    def telephone_event_pt(self):
        """The payload type of telephone-event/8000 in the audio stream, if any."""
        for pt in self.pts:
            if self.rtpmap.get(pt, "").lower() == "telephone-event/8000":
                return pt
        return None

    def audio_pt(self):
        for pt in self.pts:
            if pt not in (13, 101) and pt < 96 or pt in (103, 104):
                return pt
        return self.pts[0] if self.pts else 0


def decode_key(b64):
    b64 = b64.strip()
    b64 += "=" * (-len(b64) % 4)
    try:
        key = base64.b64decode(b64)
    except ValueError:
        return None
    return key if len(key) == 30 else None


# -------------------------------------------------------------------- media

def rtp_payload(pkt):
    if len(pkt) < 12:
        return None
    cc = pkt[0] & 0x0F
    off = 12 + 4 * cc
    if pkt[0] & 0x10:
        if len(pkt) < off + 4:
            return None
        off += 4 + 4 * struct.unpack("!H", pkt[off + 2:off + 4])[0]
    end = len(pkt)
    if pkt[0] & 0x20 and end > off:
        end -= pkt[-1]
    return pkt[off:end]


def is_rtcp(pkt):
    return len(pkt) >= 2 and 192 <= pkt[1] <= 223


def srtp_session(key, outbound):
    ssrc = pylibsrtp.Policy.SSRC_ANY_OUTBOUND if outbound else pylibsrtp.Policy.SSRC_ANY_INBOUND
    return pylibsrtp.Session(pylibsrtp.Policy(key=key, ssrc_type=ssrc,
                                              srtp_profile=pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80))


class Media:
    """One call's SRTP endpoint: our key and socket, the far end's address and key."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.key = os.urandom(30)
        self.key_b64 = base64.b64encode(self.key).decode()
        self.out = srtp_session(self.key, True) if pylibsrtp else None
        self.remote = None
        self.remote_key = None
        self.inp = None
        self.pt = 8
        self.ssrc = random.getrandbits(32)
        self.seq = random.getrandbits(15)
        self.ts = random.getrandbits(31)
        self.stop = threading.Event()

    def set_remote(self, sdp):
        if sdp.ip and sdp.port:
            self.remote = (sdp.ip, sdp.port)
        _, key = sdp.key80()
        if key and key != self.remote_key:
            self.remote_key = key
            self.inp = srtp_session(key, False) if pylibsrtp else None
        self.pt = sdp.audio_pt()

    def close(self):
        self.stop.set()
        try:
            self.sock.close()
        except OSError:
            pass

    def echo_check(self, seconds, deadline):
        """Sends SRTP every 20 ms for `seconds`, counts what comes back."""
        res = {"sent": 0, "received": 0, "matched": 0, "auth_fail": 0, "foreign": 0, "rtcp": 0,
               "sources": []}
        if not pylibsrtp:
            res["error"] = "pylibsrtp missing (pip install pylibsrtp)"
            return res
        if not self.remote or not self.inp:
            res["error"] = "no remote media address or key"
            return res
        sent = set()
        seen = set()
        # Exactly `total` packets, one every 20 ms; after a stall the missed ones
        # go out at once, so the count never depends on the machine's load.
        total = max(1, int(round(seconds * 50)))
        next_send = time.monotonic()
        end_recv = deadline          # set 0.6 s after the last packet is sent
        marker = 0x80
        while True:
            now = time.monotonic()
            if now >= end_recv or now >= deadline:
                if res["sent"] < total:
                    res["error"] = "deadline before all packets were sent"
                break
            if self.stop.is_set():
                res["error"] = "call ended during the media check"
                break
            if res["sent"] < total and now >= next_send:
                payload = os.urandom(160)
                sent.add(payload)
                hdr = struct.pack("!BBHII", 0x80, marker | self.pt, self.seq & 0xFFFF,
                                  self.ts & 0xFFFFFFFF, self.ssrc)
                marker = 0
                self.seq += 1
                self.ts += 160
                try:
                    self.sock.sendto(self.out.protect(hdr + payload), self.remote)
                except OSError as e:
                    res["error"] = "send: %s" % e
                res["sent"] += 1
                next_send += 0.02
                if res["sent"] == total:
                    end_recv = min(deadline, now + 0.6)
                continue
            until = next_send if res["sent"] < total else end_recv
            self.sock.settimeout(max(0.001, until - time.monotonic()))
            try:
                pkt, src = self.sock.recvfrom(4096)
            except (socket.timeout, BlockingIOError):
                continue
            except OSError:
                break
            if "%s:%d" % src not in res["sources"]:
                res["sources"].append("%s:%d" % src)
            if is_rtcp(pkt):
                res["rtcp"] += 1
                continue
            try:
                plain = self.inp.unprotect(pkt)
            except pylibsrtp.Error:
                res["auth_fail"] += 1
                continue
            res["received"] += 1
            p = rtp_payload(plain)
            if p in sent and p not in seen:
                seen.add(p)
                res["matched"] += 1
            elif p not in sent:
                res["foreign"] += 1
        return res

    def count_events(self, deadline, te_pt):
        """Until the call ends: every SRTP packet received is decrypted with
        the far end's key and counted by payload type; RFC 4733 events (those
        with payload type `te_pt`) are collected by RTP timestamp."""
        res = {"packets": 0, "by_pt": {}, "auth_fail": 0, "rtcp": 0, "events": [], "te_pt": te_pt}
        events = {}
        self.sock.settimeout(0.05)
        while not self.stop.is_set() and time.monotonic() < deadline:
            try:
                pkt, _src = self.sock.recvfrom(4096)
            except (socket.timeout, BlockingIOError):
                continue
            except OSError:
                break
            if is_rtcp(pkt):
                res["rtcp"] += 1
                continue
            if not self.inp:
                res["auth_fail"] += 1
                continue
            try:
                plain = self.inp.unprotect(pkt)
            except pylibsrtp.Error:
                res["auth_fail"] += 1
                continue
            res["packets"] += 1
            pt = plain[1] & 0x7F
            res["by_pt"][str(pt)] = res["by_pt"].get(str(pt), 0) + 1
            body = rtp_payload(plain)
            if pt == te_pt and body is not None and len(body) >= 4:
                ts = struct.unpack("!I", plain[4:8])[0]
                e = events.setdefault(ts, {"event": body[0], "end": False, "duration": 0,
                                           "packets": 0, "marker": False})
                e["packets"] += 1
                e["end"] = e["end"] or bool(body[1] & 0x80)
                e["marker"] = e["marker"] or bool(plain[1] & 0x80)
                e["duration"] = max(e["duration"], struct.unpack("!H", body[2:4])[0])
        res["events"] = [events[ts] for ts in sorted(events)]
        return res

    def echo_loop(self, deadline):
        """sbc-sim: every SRTP packet received is decrypted with the far end's
        key, encrypted again with ours and sent back to where it came from."""
        self.sock.settimeout(0.1)
        while not self.stop.is_set() and time.monotonic() < deadline:
            try:
                pkt, src = self.sock.recvfrom(4096)
            except (socket.timeout, BlockingIOError):
                continue
            except OSError:
                return
            if is_rtcp(pkt) or not self.inp:
                continue
            try:
                plain = self.inp.unprotect(pkt)
                self.sock.sendto(self.out.protect(plain), src)
            except (pylibsrtp.Error, OSError):
                continue


# ------------------------------------------------------------- transport

class Conn:
    counter = 0

    def __init__(self, sock, kind, peer):
        Conn.counter += 1
        self.id = Conn.counter
        self.sock = sock
        self.kind = kind          # "in" (accepted) or "out" (connected)
        self.peer = peer
        self.lock = threading.Lock()
        self.alive = True
        self.local = sock.getsockname()
        self.fqdn = None          # the --sbc-fqdn its client certificate named (accepted connections)

    def desc(self):
        return "conn%d(%s %s:%d)" % (self.id, self.kind, self.peer[0], self.peer[1])

    def send(self, data):
        with self.lock:
            self.sock.settimeout(5)
            try:
                self.sock.sendall(data)
            finally:
                self.sock.settimeout(0.05)


class Tx:
    """A server INVITE transaction."""

    def __init__(self, msg, conn):
        self.msg = msg
        self.conn = conn
        self.final = None
        self.to_tag = rand_hex(6)
        self.cancelled = False
        self.acked = False


class Dialog:
    def __init__(self):
        self.call_id = None
        self.local_tag = None
        self.remote_tag = None
        self.local_nameaddr = None
        self.remote_nameaddr = None
        self.local_cseq = 0
        self.remote_cseq = None
        self.remote_target = None
        self.route_set = []
        self.conn = None
        self.local_contact = None
        self.expected_route = []   # what the SBC must put in Route for its in-dialog requests
        self.state = "early"
        self.ended_by = None
        self.media = None
        self.sdp_version = 1
        self.sdp_session = random.randint(1000, 9999)
        self.direction = "sendrecv"
        self.remote_sdp = None      # first SDP the far end sent in this dialog
        self.acked = False
        self.notifies = []
        self.refers = []
        self.label = ""


# ------------------------------------------------------------------- peer

class Peer:
    def __init__(self, args):
        self.a = args
        self.sim = args.role == "sbc-sim"
        self.q = queue.Queue()
        self.deadline = time.monotonic() + args.timeout
        self.stop = threading.Event()
        self.conns = []
        self.out_conn = None
        self.violations = []
        self.warnings = []
        self.failures = []
        self.events = []
        self.media_results = []
        self.dtmf_results = []
        self.options_received = 0
        self.invites_by_fqdn = {}   # new INVITEs received, by the SBC FQDN of their connection
        self.cur_fqdn = None
        self.calls = 0
        self.responses = {}       # (branch, method) -> [Msg]
        self.server_invites = {}  # branch -> Tx
        self.pending_invites = []
        self.dialogs = {}
        self.log = open(args.log, "a") if args.log else None
        self.log_lock = threading.Lock()
        self.t0 = time.monotonic()
        self.listen_addr = None
        self.skip = set(args.skip_check or [])
        self.expect_v = set(args.expect_violation or [])

    # -------------------------------------------------------- bookkeeping
    def event(self, text):
        self.events.append("%.3f %s" % (time.monotonic() - self.t0, text))
        self.logline("# " + text)

    def violation(self, name, detail):
        if (self.sim and name not in WARNINGS) or name in self.skip:
            return
        if name in WARNINGS:
            self.warnings.append({"name": name, "detail": detail})
        else:
            self.violations.append({"name": name, "detail": detail})
        self.logline("# %s %s: %s" % ("WARNING" if name in WARNINGS else "VIOLATION", name, detail))

    def fail(self, text):
        self.failures.append(text)
        self.event("FAIL " + text)

    def logline(self, text):
        if self.log:
            with self.log_lock:
                self.log.write("%.3f %s\n" % (time.monotonic() - self.t0, text))
                self.log.flush()

    def log_msg(self, direction, conn, raw):
        if self.log:
            with self.log_lock:
                self.log.write("%.3f %s %s\n%s\n\n" % (time.monotonic() - self.t0, direction,
                                                     conn.desc(), raw.decode("latin-1").rstrip()))
                self.log.flush()

    def remaining(self):
        return self.deadline - time.monotonic()

    # ----------------------------------------------------------- TLS I/O
    def server_ctx(self):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.a.cert, self.a.key)
        ctx.load_verify_locations(self.a.ca)
        ctx.verify_mode = ssl.CERT_OPTIONAL
        return ctx

    def client_ctx(self):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if not self.a.no_client_cert:
            ctx.load_cert_chain(self.a.cert, self.a.key)
        ctx.load_verify_locations(self.a.ca)
        ctx.check_hostname = True
        return ctx

    def cert_names(self, cert):
        names = [v for k, v in cert.get("subjectAltName", ()) if k == "DNS"]
        if not names:
            for rdn in cert.get("subject", ()):
                for k, v in rdn:
                    if k == "commonName":
                        names.append(v)
        return names

    @staticmethod
    def name_matches(pattern, name):
        pattern, name = pattern.lower(), name.lower()
        if pattern.startswith("*."):
            return "." in name and name.split(".", 1)[1] == pattern[2:]
        return pattern == name

    def start_listen(self):
        host, port = self.a.listen.rsplit(":", 1)
        ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind((host, int(port)))
        ls.listen(16)
        ls.settimeout(0.2)
        self.listen_addr = ls.getsockname()
        ctx = self.server_ctx()
        self.event("listening on %s:%d" % self.listen_addr)

        def accept_loop():
            while not self.stop.is_set():
                try:
                    raw, peer = ls.accept()
                except socket.timeout:
                    continue
                except OSError:
                    return
                threading.Thread(target=self.handshake_in, args=(ctx, raw, peer), daemon=True).start()
            ls.close()

        threading.Thread(target=accept_loop, daemon=True).start()

    def handshake_in(self, ctx, raw, peer):
        raw.settimeout(5)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            tls = ctx.wrap_socket(raw, server_side=True)
        except ssl.SSLError as e:
            text = str(e)
            if "EOF" in text or "UNEXPECTED_EOF" in text:
                self.q.put(("warn", "tls-handshake-eof", "from %s:%d: %s" % (peer[0], peer[1], text)))
            else:
                self.q.put(("viol", "tls-client-cert", "handshake from %s:%d failed: %s" % (peer[0], peer[1], text)))
            raw.close()
            return
        except OSError as e:
            self.q.put(("warn", "tls-handshake-eof", "from %s:%d: %s" % (peer[0], peer[1], e)))
            raw.close()
            return
        cert = tls.getpeercert()
        conn = Conn(tls, "in", peer)
        if not cert:
            self.q.put(("viol", "tls-client-cert", "%s presented no client certificate; refused" % conn.desc()))
            if not self.sim:
                tls.close()
                return
        else:
            names = self.cert_names(cert)
            conn.fqdn = next((f for f in self.a.sbc_fqdns if any(self.name_matches(n, f) for n in names)), None)
            if not self.sim and conn.fqdn is None:
                self.q.put(("viol", "tls-client-cert-san",
                            "%s client certificate names %s lack %s" % (conn.desc(), names,
                                                                          " or ".join(self.a.sbc_fqdns))))
            self.q.put(("note", None, "TLS accepted %s %s client-cert=%s" % (conn.desc(), tls.version(), names)))
        self.add_conn(conn)

    def connect(self):
        host, port = self.a.connect.rsplit(":", 1)
        ctx = self.client_ctx()
        sni = self.a.sni or (self.a.peer_fqdn if self.sim else self.a.sbc_fqdn)
        try:
            raw = socket.create_connection((host, int(port)), timeout=min(5, max(0.5, self.remaining())))
        except OSError as e:
            self.event("TCP connect to %s failed: %s" % (self.a.connect, e))
            return None
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            tls = ctx.wrap_socket(raw, server_hostname=sni)
        except ssl.SSLError as e:
            raw.close()
            self.violation("tls-server-cert", "connecting to %s (SNI %s): %s" % (self.a.connect, sni, e))
            return None
        conn = Conn(tls, "out", (host, int(port)))
        self.event("TLS connected %s %s SNI %s" % (conn.desc(), tls.version(), sni))
        self.add_conn(conn)
        return conn

    def add_conn(self, conn):
        conn.sock.settimeout(0.05)
        self.conns.append(conn)
        threading.Thread(target=self.reader, args=(conn,), daemon=True).start()

    def reader(self, conn):
        framer = Framer()
        while not self.stop.is_set() and conn.alive:
            try:
                if not conn.sock.pending():
                    r, _, _ = select.select([conn.sock], [], [], 0.1)
                    if not r:
                        continue
                with conn.lock:
                    data = conn.sock.recv(65536)
            except (socket.timeout, ssl.SSLWantReadError, BlockingIOError):
                continue
            except (OSError, ValueError):
                data = b""
            if not data:
                conn.alive = False
                self.q.put(("closed", conn, None))
                return
            try:
                msgs = framer.feed(data)
            except ValueError as e:
                self.q.put(("viol", "malformed", "%s: %s" % (conn.desc(), e)))
                conn.alive = False
                return
            if framer.keepalives:
                framer.keepalives = 0
                try:
                    conn.send(b"\r\n")
                except OSError:
                    pass
            if framer.no_length:
                framer.no_length = 0
                self.q.put(("warn", "content-length-missing", "%s: message without Content-Length" % conn.desc()))
            for raw in msgs:
                self.q.put(("msg", conn, raw))

    def send(self, conn, raw):
        self.log_msg(">>>", conn, raw)
        try:
            conn.send(raw)
            return True
        except OSError as e:
            self.fail("send on %s: %s" % (conn.desc(), e))
            return False

    def any_conn(self, prefer=None):
        for c in [prefer, self.out_conn] + self.conns[::-1]:
            if c is not None and c.alive:
                return c
        return None

    # ------------------------------------------------------------ builders
    def via(self, conn):
        if self.sim:
            return "SIP/2.0/TLS %s:5061;branch=z9hG4bK%s" % (self.a.sbc_fqdn, rand_hex())
        return "SIP/2.0/TLS %s:%d;branch=z9hG4bK%s" % (conn.local[0], conn.local[1], rand_hex())

    def signature(self, response=False):
        if self.sim:
            return ["X-MS-SBC: " + SIM_XMSSBC, ("Server: " if response else "User-Agent: ") + SIM_XMSSBC]
        return [("Server: " if response else "User-Agent: ") + MS_UA]

    def allow(self):
        return SBC_ALLOW if self.sim else MS_ALLOW

    def my_contact(self, user=None):
        if self.sim:
            if self.a.sim_fault == "contact-ip":
                return "sip:%s127.0.0.1:5061;transport=tls" % (user + "@" if user else "")
            return "sip:%s%s:5061;transport=tls" % (user + "@" if user else "", self.a.sbc_fqdn)
        return self.a.contact.replace("{uuid}", str(uuid.uuid4())).replace("{id}", rand_hex(16))

    def build(self, start, headers, body=b"", ctype=None):
        lines = [start] + headers
        if body:
            lines.append("Content-Type: %s" % ctype)
        lines.append("Content-Length: %d" % len(body))
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body

    def respond(self, req, conn, code, reason, to_tag=None, extra=None, body=b"", ctype="application/sdp"):
        hs = ["Via: %s" % v for v in req.all("via")]
        hs.append("From: %s" % req.get("from"))
        to = req.get("to")
        if to_tag and "tag=" not in to:
            to += ";tag=" + to_tag
        hs += ["To: %s" % to, "Call-ID: %s" % req.call_id(), "CSeq: %s" % req.get("cseq")]
        hs += extra or []
        if code > 100:
            hs += self.signature(True)
        raw = self.build("SIP/2.0 %d %s" % (code, reason), hs, body, ctype)
        self.send(conn, raw)

    def sdp_for(self, dlg, direction, offer=None):
        m = dlg.media
        te = self.a.dtmf_pt  # our telephone-event payload type (Microsoft: 101)
        pts = [te if int(p) == 101 else int(p) for p in self.a.offer_codecs.split()]
        if offer is not None:  # answer: the first offered codec we know, plus DTMF
            offered_te = offer.telephone_event_pt()
            if offered_te is None and 101 in offer.pts and 101 not in offer.rtpmap:
                offered_te = 101
            audio = [p for p in offer.pts if p in RTPMAP and p not in (13, 101) and p != offered_te][:1] \
                or offer.pts[:1]
            # Microsoft answers telephone-event with its own number, whatever the offer's.
            pts = audio + ([te] if offered_te is not None else [])
        lines = ["v=0", "o=- %d %d IN IP4 127.0.0.1" % (dlg.sdp_session, dlg.sdp_version),
                 "s=%s" % ("sbc-sim" if self.sim else "session"), "c=IN IP4 127.0.0.1",
                 "t=0 0", "m=audio %d RTP/SAVP %s" % (m.port, " ".join(str(p) for p in pts)),
                 "a=rtcp:%d" % m.port]
        if not self.sim and not offer:
            lines += ["a=ice-ufrag:%s" % dlg.ice_ufrag, "a=ice-pwd:%s" % dlg.ice_pwd,
                      "a=candidate:1 1 UDP 2130706431 127.0.0.1 %d typ host" % m.port,
                      "a=candidate:1 2 UDP 2130705918 127.0.0.1 %d typ host" % m.port]
        tag = "1"
        if offer is not None:
            tag = offer.key80()[0] or "1"
        elif self.a.offer_crypto32:
            lines.append("a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:%s|2^31" %
                         base64.b64encode(os.urandom(30)).decode())
        if not (self.sim and self.a.sim_fault == "no-crypto"):
            lines.append("a=crypto:%s %s inline:%s|2^31" % (tag, SUITE80, m.key_b64))
        lines.append("a=rtcp-mux")
        for p in pts:
            if p == te:
                lines.append("a=rtpmap:%d telephone-event/8000" % p)
                lines.append("a=fmtp:%d 0-16" % p)
            elif p in RTPMAP:
                lines.append("a=rtpmap:%d %s" % (p, RTPMAP[p]))
        lines += ["a=ptime:20", "a=" + direction]
        return ("\r\n".join(lines) + "\r\n").encode()

    # ------------------------------------------------------------ event loop
    def wait(self, until, what, timeout=None, quiet=False):
        """Processes incoming traffic until `until()` holds; False on timeout
        (a failure when the overall deadline is what ran out, unless quiet)."""
        end = self.deadline if timeout is None else min(self.deadline, time.monotonic() + timeout)
        while True:
            if until():
                return True
            left = end - time.monotonic()
            if left <= 0:
                if not quiet and (timeout is None or end >= self.deadline):
                    self.fail("timeout waiting for %s" % what)
                return False
            try:
                item = self.q.get(timeout=min(left, 0.1))
            except queue.Empty:
                continue
            self.handle(item)

    def pause(self, seconds):
        self.wait(lambda: False, "pause", timeout=seconds, quiet=True)

    def handle(self, item):
        kind = item[0]
        if kind == "viol":
            self.violation(item[1], item[2])
            return
        if kind == "warn":
            self.violation(item[1], item[2])
            return
        if kind == "note":
            self.event(item[2])
            return
        conn = item[1]
        if kind == "closed":
            self.event("%s closed by peer" % conn.desc())
            return
        raw = item[2]
        # The FQDN the messages on this connection must use: the one its
        # client certificate named (each SBC identity has its own connections).
        self.cur_fqdn = conn.fqdn
        self.log_msg("<<<", conn, raw)
        try:
            msg = Msg(raw)
        except (ValueError, IndexError) as e:
            self.violation("malformed", "%s: %s: %r" % (conn.desc(), e, raw[:200]))
            return
        try:
            self.check_common(msg)
            if msg.is_request:
                self.on_request(msg, conn)
            else:
                self.check_response(msg)
                self.responses.setdefault((msg.branch(), msg.method), []).append(msg)
        except (ValueError, IndexError, KeyError, AttributeError) as e:
            # Parseable but unusable (a broken URI, CSeq, SDP...): named, never a crash.
            self.violation("malformed", "%s: %s: %s" % (msg.first_line(), type(e).__name__, e))

    def find_dialog(self, msg):
        return self.dialogs.get((msg.call_id(), msg.to_tag(), msg.from_tag()))

    def on_request(self, msg, conn):
        m = msg.method
        dlg = self.find_dialog(msg) if msg.to_tag() else None
        if m == "ACK":
            self.on_ack(msg, dlg)
            return
        if m == "CANCEL":
            tx = self.server_invites.get(msg.branch())
            if tx and tx.final is None:
                self.respond(msg, conn, 200, "OK", to_tag=tx.to_tag)
                tx.cancelled = True
                tx.final = 487
                self.respond(tx.msg, tx.conn, 487, "Request Terminated", to_tag=tx.to_tag)
                self.event("INVITE cancelled by the far end (487 sent)")
            elif tx:
                # Final response already sent (CANCEL/200 race): the CANCEL gets its
                # 200 and changes nothing; the far end ACKs the 200 and sends BYE.
                self.respond(msg, conn, 200, "OK", to_tag=tx.to_tag)
                self.event("CANCEL after the final %d: 200, no effect" % tx.final)
            else:
                self.respond(msg, conn, 481, "Call/Transaction Does Not Exist")
            return
        if m in ("UPDATE", "PRACK"):
            self.violation("update-sent" if m == "UPDATE" else "prack-sent", "%s received" % msg.first_line())
            self.respond(msg, conn, 405, "Method Not Allowed", extra=["Allow: " + self.allow()])
            return
        if msg.to_tag():
            if dlg is None:
                self.violation("unknown-dialog", "%s matches no dialog" % msg.first_line())
                self.respond(msg, conn, 481, "Call/Transaction Does Not Exist")
                return
            self.check_in_dialog(msg, dlg)
            if m != "ACK":
                num = msg.cseq()[0]
                if dlg.remote_cseq is not None and num <= dlg.remote_cseq:
                    self.violation("cseq-order", "%s CSeq %d after %d" % (m, num, dlg.remote_cseq))
                dlg.remote_cseq = num
        if dlg is None and m in ("BYE", "NOTIFY", "REFER", "INFO"):
            self.violation("unknown-dialog", "%s without a dialog" % msg.first_line())
            self.respond(msg, conn, 481, "Call/Transaction Does Not Exist")
            return
        if m == "OPTIONS":
            self.options_received += 1
            extra = ["Allow: " + self.allow(), "Accept: application/sdp"]
            if self.sim:
                extra.append("Contact: <%s>" % self.my_contact())
            self.respond(msg, conn, 200, "OK", to_tag=None if msg.to_tag() else rand_hex(6), extra=extra)
            if self.options_received == 1 or self.options_received % 10 == 0:
                self.event("OPTIONS #%d answered 200" % self.options_received)
        elif m == "BYE":
            self.respond(msg, conn, 200, "OK")
            dlg.state = "terminated"
            dlg.ended_by = "remote"
            if dlg.media:
                dlg.media.stop.set()
            self.event("BYE received on %s, answered 200" % dlg.label)
        elif m == "NOTIFY":
            self.respond(msg, conn, 200, "OK")
            self.check_notify(msg)
            dlg.notifies.append(msg)
            self.event("NOTIFY on %s: %s" % (dlg.label, msg.body.decode("latin-1").split("\r\n")[0]))
        elif m == "INVITE" and dlg is not None:
            self.on_reinvite(msg, conn, dlg)
        elif m == "INVITE":
            if self.a.acs and self.options_received == 0:
                self.violation("acs-options-first", "INVITE before any OPTIONS from the SBC (ACS waits for the "
                                                    "SBC to start the OPTIONS exchange)")
            self.check_new_invite(msg)
            self.invites_by_fqdn[self.fqdn()] = self.invites_by_fqdn.get(self.fqdn(), 0) + 1
            tx = Tx(msg, conn)
            self.server_invites[msg.branch()] = tx
            if self.a.on_invite == "garbage":
                # Not even the 100 Trying is SIP.
                self.send(conn, self.build("SIP/2.0 1OO Tr\x00ying", ["Via: %s" % v for v in msg.all("via")]
                                           + ["Call-ID: %s" % msg.call_id(), "CSeq: %s" % msg.get("cseq")]))
            else:
                self.respond(msg, conn, 100, "Trying")
            self.pending_invites.append(tx)
            self.event("INVITE received: %s" % msg.ruri)
        elif m == "REFER" and dlg is not None and self.sim:
            self.respond(msg, conn, 202, "Accepted", extra=["Contact: <%s>" % self.my_contact()])
            dlg.refers.append(msg)
            self.event("REFER received on %s, 202 sent" % dlg.label)
        elif m == "INFO" and dlg is not None:
            self.respond(msg, conn, 200, "OK")
        else:
            self.respond(msg, conn, 405 if dlg is None else 501, "Not Allowed Here",
                         extra=["Allow: " + self.allow()])

    def on_ack(self, msg, dlg):
        tx = self.server_invites.get(msg.branch())
        if tx is not None and tx.final is not None and tx.final >= 300:
            tx.acked = True   # ACK of a non-2xx final: part of that transaction
            self.event("ACK for %d received" % tx.final)
            return
        if dlg is None:
            self.violation("unknown-dialog", "ACK matches no dialog")
            return
        self.check_in_dialog(msg, dlg)
        dlg.acked = True
        for t in self.server_invites.values():
            if t.msg.call_id() == msg.call_id() and t.msg.cseq()[0] == msg.cseq()[0]:
                t.acked = True

    def on_reinvite(self, msg, conn, dlg):
        offer = None
        if msg.body:
            offer = Sdp(msg.body)
            self.check_sdp(offer, "re-INVITE", answer=False)
            self.check_stable(dlg, offer, "re-INVITE")
            dlg.media.set_remote(offer)
        self.check_contact(msg, "re-INVITE", required=True)
        mirror = {"sendonly": "recvonly", "recvonly": "sendonly", "inactive": "inactive"}
        direction = mirror.get(offer.direction, "sendrecv") if offer else dlg.direction
        same = offer is not None and self.last_remote_sdp_text(dlg) == offer.text
        if not same:
            dlg.sdp_version += 1
        body = self.sdp_for(dlg, direction, offer=offer)
        dlg.last_remote = offer.text if offer else None
        self.respond(msg, conn, 200, "OK", to_tag=None,
                     extra=["Contact: <%s>" % dlg.local_contact, "Allow: " + self.allow()],
                     body=body)
        self.event("re-INVITE on %s (%s) answered 200 %s" % (dlg.label, offer.direction if offer else "no SDP",
                                                             direction))

    @staticmethod
    def last_remote_sdp_text(dlg):
        return getattr(dlg, "last_remote", None)

    # --------------------------------------------------------------- checks
    def fqdn(self):
        """The SBC FQDN expected in what arrived: that of the connection's
        client certificate, else the first --sbc-fqdn."""
        return getattr(self, "cur_fqdn", None) or self.a.sbc_fqdn

    def check_common(self, msg):
        if self.sim:
            return
        if msg.is_request:
            if msg.method not in ("ACK", "CANCEL") and not msg.has("x-ms-sbc"):
                self.violation("x-ms-sbc", "no X-MS-SBC on %s" % msg.first_line())
            via = msg.get("via")
            sent_by = via.split(None, 1)[1].split(";")[0] if via and " " in via.strip() else ""
            host = sent_by.rsplit(":", 1)[0] if not sent_by.startswith("[") else sent_by
            if is_ip(host) or host.lower() != self.fqdn().lower():
                self.violation("via-host", "%s Via sent-by %s is not %s" % (msg.method, sent_by, self.fqdn()))
            for req in msg.all("require"):
                if req.strip().lower() == "100rel":
                    self.violation("require-100rel", "%s with Require: 100rel" % msg.method)
        else:
            if msg.code > 100 and not msg.has("x-ms-sbc"):
                self.violation("x-ms-sbc", "no X-MS-SBC on %s to %s" % (msg.first_line(), msg.method))
        if msg.has("replaces"):
            self.violation("replaces", "Replaces header in %s" % msg.first_line())
        head = msg.raw.split(b"\r\n\r\n", 1)[0].decode("latin-1").lower()
        if re.search(r"[?&]replaces=", head):
            self.violation("replaces", "Replaces in a URI of %s" % msg.first_line())
        if msg.is_request and msg.method == "OPTIONS" and not msg.to_tag():
            self.check_contact(msg, "OPTIONS", required=True)
            self.check_allow(msg, "OPTIONS")
            f = Uri(uri_of(msg.get("from")))
            if f.host.lower() != self.fqdn().lower():
                self.violation("options-from-host", "OPTIONS From host %s is not %s" % (f.host, self.fqdn()))

    def check_allow(self, msg, what):
        allow = [a.strip().upper() for a in msg.all("allow")]
        if "REFER" not in allow:
            self.violation("options-allow-refer", "%s Allow %s lacks REFER" % (what, allow or "missing"))

    def check_contact(self, msg, what, required):
        if self.sim:
            return
        contacts = msg.all("contact")
        if not contacts:
            if required:
                self.violation("contact-missing", "no Contact on %s" % what)
            return
        if len(contacts) > 1:
            self.violation("contact-multiple", "%d Contact values on %s" % (len(contacts), what))
        u = Uri(uri_of(contacts[0]))
        if is_ip(u.host) or u.host.lower() != self.fqdn().lower():
            self.violation("contact-host", "%s Contact host %s is not %s" % (what, u.host, self.fqdn()))
        if u.params.get("transport", "").lower() != "tls":
            self.violation("contact-transport", "%s Contact %s without transport=tls" % (what, u.text))

    def check_sdp(self, sdp, what, answer):
        if self.sim:
            return
        if sdp.proto != "RTP/SAVP":
            self.violation("sdp-profile", "%s m=audio profile %s" % (what, sdp.proto))
        suites = [c[1] for c in sdp.cryptos]
        if SUITE80 not in suites:
            self.violation("sdp-crypto", "%s has no %s crypto (%s)" % (what, SUITE80, suites))
        elif answer and suites != [SUITE80]:
            self.violation("sdp-crypto", "%s answer cryptos %s, expected only %s" % (what, suites, SUITE80))
        elif sdp.key80()[1] is None:
            self.violation("sdp-crypto", "%s crypto key is not 30 bytes of base64" % what)

    def check_stable(self, dlg, sdp, what):
        first = dlg.remote_sdp
        if first is None:
            dlg.remote_sdp = sdp
            return
        if (sdp.ip, sdp.port) != (first.ip, first.port) and sdp.port != 0:
            self.violation("sdp-retarget", "%s moves media %s:%s -> %s:%s" % (what, first.ip, first.port,
                                                                              sdp.ip, sdp.port))
        if sdp.key80()[1] and first.key80()[1] and sdp.key80()[1] != first.key80()[1]:
            self.violation("srtp-rekey", "%s changes the SBC's SRTP key" % what)

    def check_number(self, uri_text, name, where):
        u = Uri(uri_text)
        if "anonymous" in uri_text.lower():
            return
        if not u.user:
            if "x-m" in u.params and name != "e164-from":
                return
            self.violation(name, "%s %s has no user part" % (where, uri_text))
            return
        if not u.user.startswith("+"):
            self.violation(name, "%s user %s is not +E.164" % (where, u.user))
        if u.scheme == "sip" and u.user.lstrip("+").isdigit() and u.params.get("user", "").lower() != "phone":
            self.violation("user-phone", "%s %s lacks user=phone" % (where, uri_text))

    def check_new_invite(self, msg):
        if self.sim:
            return
        self.check_contact(msg, "INVITE", required=True)
        self.check_number(msg.ruri, "e164-ruri", "Request-URI")
        self.check_number(uri_of(msg.get("from")), "e164-from", "From")
        self.check_number(uri_of(msg.get("to")), "e164-to", "To")
        if not msg.body:
            self.violation("invite-no-sdp", "INVITE %s without SDP" % msg.ruri)
        else:
            self.check_sdp(Sdp(msg.body), "INVITE", answer=False)

    def check_response(self, msg):
        if self.sim:
            return
        if msg.method == "INVITE" and 100 < msg.code < 300:
            self.check_contact(msg, "%d to INVITE" % msg.code, required=msg.code >= 200)
            if msg.code >= 200:
                if not msg.body:
                    self.violation("answer-no-sdp", "%d to INVITE without SDP" % msg.code)
                else:
                    self.check_sdp(Sdp(msg.body), "%d to INVITE" % msg.code, answer=True)
        if msg.method == "OPTIONS" and 200 <= msg.code < 300:
            self.check_contact(msg, "200 to OPTIONS", required=True)
            self.check_allow(msg, "200 to OPTIONS")

    def check_in_dialog(self, msg, dlg):
        if self.sim:
            return
        if Uri(msg.ruri).key() != Uri(dlg.local_contact).key():
            self.violation("in-dialog-ruri", "%s Request-URI %s, Microsoft's Contact is %s"
                           % (msg.method, msg.ruri, dlg.local_contact))
        routes = [uri_of(r) for r in msg.all("route")]
        want = [uri_of(r) for r in dlg.expected_route]
        if [Uri(r).key() for r in routes] != [Uri(r).key() for r in want]:
            self.violation("in-dialog-route", "%s Route %s, Record-Route was %s" % (msg.method, routes, want))

    def check_notify(self, msg):
        if self.sim:
            return
        if (msg.get("event") or "").split(";")[0].strip().lower() != "refer":
            self.violation("notify-event", "NOTIFY Event %r" % msg.get("event"))
        if (msg.get("content-type") or "").split(";")[0].strip().lower() != "message/sipfrag":
            self.violation("notify-content-type", "NOTIFY Content-Type %r" % msg.get("content-type"))
        if not re.match(rb"SIP/2\.0 \d{3}", msg.body):
            self.violation("notify-sipfrag", "NOTIFY body %r" % msg.body[:60])
        if not msg.get("subscription-state"):
            self.violation("notify-subscription-state", "NOTIFY without Subscription-State")

    # ------------------------------------------------------ UAC primitives
    def send_request(self, conn, method, ruri, headers, body=b"", ctype="application/sdp", branch_via=None):
        via = branch_via or self.via(conn)
        hs = ["Via: " + via, "Max-Forwards: 70"] + headers + self.signature()
        raw = self.build("%s %s SIP/2.0" % (method, ruri), hs, body, ctype)
        self.send(conn, raw)
        return via_param(via, "branch"), via

    def final_response(self, branch, method, what, timeout=None):
        key = (branch, method)
        ok = self.wait(lambda: any(r.code >= 200 for r in self.responses.get(key, [])), what, timeout)
        if not ok:
            return None
        return [r for r in self.responses[key] if r.code >= 200][0]

    def dlg_request(self, dlg, method, extra=None, body=b"", ctype="application/sdp", cseq=None):
        if cseq is None:
            dlg.local_cseq += 1
            cseq = dlg.local_cseq
        hs = ["Route: " + r for r in dlg.route_set]
        hs += ["From: %s;tag=%s" % (dlg.local_nameaddr, dlg.local_tag),
               "To: %s;tag=%s" % (dlg.remote_nameaddr, dlg.remote_tag),
               "Call-ID: " + dlg.call_id, "CSeq: %d %s" % (cseq, method)]
        hs += extra or []
        conn = self.any_conn(dlg.conn)
        if conn is None:
            self.fail("no connection for %s on %s" % (method, dlg.label))
            return None, None
        return self.send_request(conn, method, dlg.remote_target, hs, body, ctype)

    def options_ping(self):
        conn = self.out_conn
        if conn is None:
            self.fail("--options-first needs --connect")
            return False
        if self.sim:
            target = "sip:%s:5061;transport=tls" % self.a.peer_fqdn
            hs = ["From: <sip:%s:5061>;tag=%s" % (self.a.sbc_fqdn, rand_hex(6)),
                  "To: <sip:%s:5061>" % self.a.peer_fqdn, "Call-ID: %s@%s" % (rand_hex(12), self.a.sbc_fqdn),
                  "CSeq: 1 OPTIONS", "Contact: <%s>" % self.my_contact(), "Allow: " + self.allow()]
        else:
            target = "sip:%s:5061;transport=tls" % self.a.sbc_fqdn
            hs = ["From: <sip:%s:5061>;tag=%s" % (self.a.peer_fqdn, rand_hex(6)),
                  "To: <sip:%s>" % self.a.sbc_fqdn, "Call-ID: %s" % uuid.uuid4(),
                  "CSeq: 1 OPTIONS", "Contact: <sip:%s:5061>" % self.a.peer_fqdn, "Allow: " + self.allow()]
        branch, _ = self.send_request(conn, "OPTIONS", target, hs)
        r = self.final_response(branch, "OPTIONS", "200 to OPTIONS", timeout=min(10, self.remaining()))
        if r is None or r.code != 200:
            self.fail("OPTIONS answered %s" % (r.code if r else "never"))
            return False
        self.event("OPTIONS sent, 200 received")
        return True

    # ------------------------------------------------------------- calls
    def new_dialog(self, label):
        dlg = Dialog()
        dlg.label = label
        dlg.media = Media()
        dlg.ice_ufrag = rand_hex(4)
        dlg.ice_pwd = base64.b64encode(os.urandom(18)).decode()
        return dlg

    def uac_call(self, n, number, thens):
        conn = self.out_conn
        if conn is None:
            self.fail("--call needs --connect")
            return
        dlg = self.new_dialog("call%d" % n)
        dlg.conn = conn
        dlg.call_id = str(uuid.uuid4())
        dlg.local_tag = rand_hex(6)
        dlg.local_cseq = 1
        num = number if number.startswith("+") or self.a.sim_fault == "no-plus" else "+" + number
        caller = self.a.caller
        if self.sim:
            ruri = "sip:%s@%s:5061;user=phone;transport=tls" % (num, self.a.peer_fqdn)
            dlg.local_nameaddr = "<sip:%s@%s;user=phone>" % (caller, self.a.sbc_fqdn)
            dlg.remote_nameaddr = "<sip:%s@%s;user=phone>" % (num, self.a.peer_fqdn)
            dlg.local_contact = self.my_contact(caller)
            extra = ["Contact: <%s>" % dlg.local_contact, "Allow: " + self.allow(), "Supported: timer"]
        else:
            ruri = "sip:%s@%s:5061;user=phone;transport=tls" % (num, self.a.sbc_fqdn)
            dlg.local_nameaddr = "<sip:%s@%s:5061;user=phone>" % (caller, self.a.peer_fqdn)
            dlg.remote_nameaddr = "<sip:%s@%s:5061;user=phone>" % (num, self.a.sbc_fqdn)
            dlg.local_contact = self.my_contact()
            dlg.expected_route = ["<%s>" % self.a.record_route]
            extra = ["Record-Route: <%s>" % self.a.record_route, "Contact: <%s>" % dlg.local_contact,
                     "Supported: timer", "Session-Expires: 3600", "Min-SE: 300", "Allow: " + self.allow()]
        hs = ["From: %s;tag=%s" % (dlg.local_nameaddr, dlg.local_tag), "To: " + dlg.remote_nameaddr,
              "Call-ID: " + dlg.call_id, "CSeq: 1 INVITE"] + extra
        body = self.sdp_for(dlg, "sendrecv")
        branch, via = self.send_request(conn, "INVITE", ruri, hs, body)
        self.event("INVITE %s sent (%s)" % (ruri, dlg.label))
        cancel = thens[:1] == ["cancel"]
        key = (branch, "INVITE")
        if cancel:
            ok = self.wait(lambda: any(r.code in (180, 183) or r.code >= 200 for r in self.responses.get(key, [])),
                           "180/183 before CANCEL")
            if not ok:
                return
            if not any(r.code >= 200 for r in self.responses[key]):
                chs = ["From: %s;tag=%s" % (dlg.local_nameaddr, dlg.local_tag), "To: " + dlg.remote_nameaddr,
                       "Call-ID: " + dlg.call_id, "CSeq: 1 CANCEL"]
                cb, _ = self.send_request(conn, "CANCEL", ruri, chs, branch_via=via)
                self.event("CANCEL sent")
                r = self.final_response(cb, "CANCEL", "200 to CANCEL")
                if r is None:
                    return
                if r.code != 200:
                    self.fail("CANCEL answered %d" % r.code)
        final = self.final_response(branch, "INVITE", "final response to INVITE")
        if final is None:
            return
        for r in self.responses[key]:
            if 100 < r.code < 200:
                self.event("%d %s received" % (r.code, r.reason))
        dlg.remote_tag = final.to_tag()
        if final.code >= 300:
            ahs = ["From: %s;tag=%s" % (dlg.local_nameaddr, dlg.local_tag),
                   "To: %s" % final.get("to"), "Call-ID: " + dlg.call_id, "CSeq: 1 ACK"]
            self.send_request(conn, "ACK", ruri, ahs, branch_via=via)
            self.event("INVITE answered %d, ACK sent" % final.code)
            dlg.media.close()
            if cancel and final.code == 487:
                self.event("call cancelled (487)")
            elif self.a.expect_final and final.code == self.a.expect_final:
                self.event("final %d as expected" % final.code)
            else:
                self.fail("INVITE answered %d %s" % (final.code, final.reason))
            return
        # 2xx: the dialog.
        if self.a.expect_final and self.a.expect_final != final.code:
            self.fail("INVITE answered %d, expected %d" % (final.code, self.a.expect_final))
        dlg.remote_target = uri_of(final.get("contact") or "<%s>" % ruri)
        dlg.route_set = list(reversed(final.all("record-route")))
        dlg.state = "confirmed"
        self.dialogs[(dlg.call_id, dlg.local_tag, dlg.remote_tag)] = dlg
        self.dlg_request(dlg, "ACK", cseq=1)
        dlg.acked = True
        self.calls += 1
        self.event("call %s established (200, ACK sent)" % dlg.label)
        if final.body:
            sdp = Sdp(final.body)
            dlg.remote_sdp = sdp
            dlg.last_remote = sdp.text
            dlg.media.set_remote(sdp)
        if cancel:
            self.violation("cancel-race-200", "200 to INVITE won the race with CANCEL; BYE sent")
            self.act_bye(dlg)
            return
        self.call_body(dlg, thens)

    def answer(self, tx, mode, label):
        """UAS: answers one received INVITE per `mode`; returns the dialog or None."""
        msg, conn = tx.msg, tx.conn
        dlg = self.new_dialog(label)
        dlg.conn = conn
        dlg.call_id = msg.call_id()
        dlg.local_tag = tx.to_tag
        dlg.remote_tag = msg.from_tag()
        f_disp, f_uri, _ = parse_nameaddr(msg.get("from"))
        t_disp, t_uri, _ = parse_nameaddr(msg.get("to"))
        dlg.remote_nameaddr = "%s<%s>" % (f_disp + " " if f_disp else "", f_uri)
        dlg.local_nameaddr = "%s<%s>" % (t_disp + " " if t_disp else "", t_uri)
        dlg.remote_target = uri_of(msg.get("contact") or "<%s>" % f_uri)
        dlg.route_set = msg.all("record-route")
        dlg.remote_cseq = msg.cseq()[0]
        offer = Sdp(msg.body) if msg.body else None
        extra = []
        if self.sim:
            t = Uri(t_uri)
            dlg.local_contact = self.my_contact(t.user or None)
        else:
            dlg.local_contact = self.my_contact()
            dlg.expected_route = ["<%s>" % self.a.record_route]
            extra.append("Record-Route: <%s>" % self.a.record_route)
        extra += ["Contact: <%s>" % dlg.local_contact, "Allow: " + self.allow()]
        self.dialogs[(dlg.call_id, dlg.local_tag, dlg.remote_tag)] = dlg
        if offer:
            dlg.remote_sdp = offer
            dlg.last_remote = offer.text
            dlg.media.set_remote(offer)
        if mode == "garbage":
            # A broken peer: a "response" whose status line is not SIP, framed
            # so that the connection itself stays usable.
            hs = ["Via: %s" % v for v in msg.all("via")]
            hs += ["From: %s" % msg.get("from"), "To: %s;tag=%s" % (msg.get("to"), tx.to_tag),
                   "Call-ID: %s" % msg.call_id(), "CSeq: %s" % msg.get("cseq")]
            self.send(conn, self.build("SIP/2.0 2x0 \x01K\x7f", hs))
            self.event("garbage sent for the INVITE")
            tx.final = 0
            dlg.media.close()
            return None
        if mode.startswith("reject:"):
            code = int(mode.split(":", 1)[1])
            tx.final = code
            self.respond(msg, conn, code, {486: "Busy Here", 503: "Service Unavailable", 603: "Decline",
                                           404: "Not Found", 408: "Request Timeout"}.get(code, "Rejected"),
                         to_tag=tx.to_tag)
            self.event("INVITE rejected %d" % code)
            self.wait(lambda: tx.acked, "ACK for %d" % code)
            dlg.media.close()
            return None
        if mode in ("ring-answer", "ring-noanswer"):
            self.respond(msg, conn, 180, "Ringing", to_tag=tx.to_tag, extra=extra)
            self.event("180 sent")
        if mode == "ring-noanswer":
            self.wait(lambda: tx.cancelled, "CANCEL of the ringing INVITE")
            self.wait(lambda: tx.acked, "ACK for 487")
            dlg.media.close()
            return None
        if mode == "ring-answer":
            self.pause(self.a.ring_ms / 1000.0)
            if tx.cancelled:
                self.event("cancelled while ringing")
                self.wait(lambda: tx.acked, "ACK for 487")
                dlg.media.close()
                return None
        if offer is None:
            body = self.sdp_for(dlg, "sendrecv")
        elif offer.key80()[0] is None:
            tx.final = 488
            self.respond(msg, conn, 488, "Not Acceptable Here", to_tag=tx.to_tag)
            self.wait(lambda: tx.acked, "ACK for 488")
            self.fail("offer without %s: 488" % SUITE80)
            dlg.media.close()
            return None
        else:
            body = self.sdp_for(dlg, "sendrecv", offer=offer)
        tx.final = 200
        self.respond(msg, conn, 200, "OK", to_tag=tx.to_tag, extra=extra, body=body)
        self.event("200 sent on %s" % label)
        if not self.wait(lambda: dlg.acked or dlg.state == "terminated", "ACK for 200"):
            return None
        if offer is None:
            pass  # late offer answered in the ACK: not expected toward Microsoft
        dlg.state = "confirmed"
        self.calls += 1
        self.event("call %s established (ACK received)" % label)
        return dlg

    def uas_call(self, n, thens):
        if not self.wait(lambda: self.pending_invites, "INVITE #%d" % n):
            return
        tx = self.pending_invites.pop(0)
        dlg = self.answer(tx, self.a.on_invite, "call%d" % n)
        if dlg is not None:
            self.call_body(dlg, thens)

    # ----------------------------------------------------------- call body
    def start_media(self, dlg):
        if self.a.media == "none" or self.a.media_seconds <= 0:
            return
        if self.a.media == "echo":
            threading.Thread(target=dlg.media.echo_loop, args=(self.deadline,), daemon=True).start()
            self.event("SRTP echo running on %s (port %d)" % (dlg.label, dlg.media.port))
        else:
            self.media_check(dlg)

    def media_check(self, dlg, why="call"):
        out = {}
        # Let the far side of the SBC settle first (e.g. a late-offer carrier's
        # ACK, or its leg of a re-INVITE, may still be on its way).
        self.pause(self.a.media_delay_ms / 1000.0)

        def run():
            out.update(dlg.media.echo_check(self.a.media_seconds, self.deadline))

        t = threading.Thread(target=run, daemon=True)
        t.start()
        self.wait(lambda: not t.is_alive(), "media check")
        t.join(0.1)
        out["label"] = "%s/%s" % (dlg.label, why)
        srcs = out.get("sources", [])
        want = "%s:%d" % dlg.media.remote if dlg.media.remote else None
        if srcs and want and any(s != want for s in srcs):
            self.violation("media-source", "%s media from %s, SDP says %s" % (dlg.label, srcs, want))
        self.media_results.append(out)
        sent, matched = out.get("sent", 0), out.get("matched", 0)
        self.event("media %s: sent %d received %d matched %d" % (out["label"], sent, out.get("received", 0),
                                                                matched))
        if out.get("error") or sent == 0 or matched < 0.8 * sent:
            self.fail("media on %s: sent %d matched %d %s" % (out["label"], sent, matched, out.get("error", "")))

    def call_body(self, dlg, thens):
        counting = None
        if self.a.count_events:
            out = {}

            def count(media=dlg.media):
                out.update(media.count_events(self.deadline, self.a.dtmf_pt))
            counting = (threading.Thread(target=count, daemon=True), out, dlg)
            counting[0].start()
            self.event("counting telephone-events (PT %d) on %s" % (self.a.dtmf_pt, dlg.label))
        self.start_media(dlg)
        for action in thens:
            if self.remaining() <= 0 or self.failures and not self.a.keep_going:
                break
            dlg = self.do(dlg, action) or dlg
        dlg.media.stop.set()
        if counting:
            t, out, first = counting
            first.media.stop.set()
            t.join(2.0)
            out["label"] = first.label
            self.dtmf_results.append(out)
            self.event("telephone-events on %s: %d packets %s, %d events" % (
                first.label, out.get("packets", 0), out.get("by_pt", {}), len(out.get("events", []))))

    def do(self, dlg, action):
        name, _, arg = action.partition(":")
        self.event("step %s on %s" % (action, dlg.label))
        if name == "hold":
            self.reinvite(dlg, "sendonly", "hold")
        elif name == "resume":
            self.reinvite(dlg, "sendrecv", "resume")
            if self.a.media == "echo-check" and self.a.media_seconds > 0:
                self.media_check(dlg, "resume")
        elif name == "refresh":
            self.reinvite(dlg, dlg.direction, "refresh")
        elif name == "media":
            self.media_check(dlg, "media")
        elif name == "bye":
            self.act_bye(dlg)
        elif name == "wait-bye":
            if self.wait(lambda: dlg.state == "terminated", "BYE on %s" % dlg.label):
                self.event("%s ended by the far end" % dlg.label)
        elif name == "pause":
            self.pause(int(arg or "1000") / 1000.0)
        elif name == "wait-file":
            # The test's signal that its faults are done (bounded by --timeout).
            if self.wait(lambda: os.path.exists(arg), "file %s" % arg):
                self.event("file %s appeared" % arg)
        elif name == "refer":
            return self.act_refer(dlg, arg)
        elif name == "wait-refer":
            return self.act_transferee(dlg)
        elif name == "cancel":
            self.fail("cancel is only valid as the first --then of a --call")
        else:
            self.fail("unknown action %s" % action)
        return None

    def act_bye(self, dlg):
        if dlg.state == "terminated":
            self.fail("bye: %s already ended by %s" % (dlg.label, dlg.ended_by))
            return
        branch, _ = self.dlg_request(dlg, "BYE")
        dlg.state = "terminated"
        dlg.ended_by = "local"
        dlg.media.stop.set()
        r = self.final_response(branch, "BYE", "200 to BYE") if branch else None
        if r is not None:
            self.event("BYE sent on %s, %d received" % (dlg.label, r.code))
            if r.code != 200:
                self.fail("BYE answered %d" % r.code)

    def reinvite(self, dlg, direction, why):
        if dlg.state == "terminated":
            self.fail("%s: %s already ended" % (why, dlg.label))
            return
        if why != "refresh":
            dlg.sdp_version += 1
        dlg.direction = direction
        body = self.sdp_for(dlg, direction)
        extra = ["Contact: <%s>" % dlg.local_contact, "Allow: " + self.allow()]
        if why == "refresh" and not self.sim:
            extra += ["Supported: timer", "Session-Expires: 3600;refresher=uac"]
        branch, _ = self.dlg_request(dlg, "INVITE", extra, body)
        cseq = dlg.local_cseq
        r = self.final_response(branch, "INVITE", "200 to %s re-INVITE" % why) if branch else None
        if r is None:
            return
        if r.code >= 300:
            ahs = ["From: %s;tag=%s" % (dlg.local_nameaddr, dlg.local_tag), "To: " + r.get("to"),
                   "Call-ID: " + dlg.call_id, "CSeq: %d ACK" % cseq]
            self.send_request(self.any_conn(dlg.conn), "ACK", dlg.remote_target,
                              ["Route: " + x for x in dlg.route_set] + ahs)
            self.fail("%s re-INVITE answered %d" % (why, r.code))
            return
        self.dlg_request(dlg, "ACK", cseq=cseq)
        if not r.body:
            self.violation("answer-no-sdp", "200 to %s re-INVITE without SDP" % why)
            return
        sdp = Sdp(r.body)
        self.check_stable(dlg, sdp, "%s answer" % why)
        dlg.media.set_remote(sdp)
        self.event("%s re-INVITE answered 200 (%s), ACK sent" % (why, sdp.direction))
        if why == "hold" and sdp.direction not in ("recvonly", "inactive"):
            self.violation("hold-direction", "hold (sendonly) answered %s" % sdp.direction)
        if why == "resume" and sdp.direction != "sendrecv":
            self.violation("resume-direction", "resume answered %s" % sdp.direction)

    def act_refer(self, dlg, target):
        """Microsoft as transferor: REFER, then NOTIFYs, a new INVITE and BYE of the old dialog."""
        referred_by = self.a.referred_by
        extra = ["Contact: <%s>" % dlg.local_contact, "Refer-To: <%s>" % target,
                 "Referred-By: <%s>" % referred_by]
        branch, _ = self.dlg_request(dlg, "REFER", extra)
        r = self.final_response(branch, "REFER", "202 to REFER") if branch else None
        if r is None:
            return None
        if r.code not in (200, 202):
            self.fail("REFER answered %d" % r.code)
            return None
        self.event("REFER answered %d" % r.code)

        def final_notify():
            return any(re.match(rb"SIP/2\.0 [2-6]\d\d", n.body) for n in dlg.notifies)

        new = None
        if not self.a.refer_no_invite:
            if not self.wait(lambda: self.pending_invites, "INVITE after REFER"):
                return None
            tx = self.pending_invites.pop(0)
            got = Uri(tx.msg.ruri)
            if got.key() != Uri(target).key():
                self.violation("refer-ruri", "new INVITE Request-URI %s, Refer-To was %s" % (tx.msg.ruri, target))
            rb = tx.msg.get("referred-by")
            if rb is None:
                self.violation("refer-referred-by", "new INVITE without Referred-By")
            elif Uri(uri_of(rb)).key() != Uri(referred_by).key():
                self.violation("refer-referred-by", "new INVITE Referred-By %s, REFER had <%s>" % (rb, referred_by))
            new = self.answer(tx, "ring-answer", dlg.label + "-transferred")
            if new is not None and self.a.media == "echo-check" and self.a.media_seconds > 0:
                self.media_check(new, "after-refer")
        self.wait(lambda: final_notify() and dlg.state == "terminated",
                  "final NOTIFY and BYE of the transferred dialog")
        bodies = [n.body.decode("latin-1").split("\r\n")[0] for n in dlg.notifies]
        self.event("transfer done: NOTIFYs %s; old dialog ended by %s" % (bodies, dlg.ended_by))
        if dlg.ended_by != "remote":
            self.fail("old dialog not released by a BYE from the far end")
        if not bodies or not any(b.startswith("SIP/2.0 200") for b in bodies):
            self.fail("no NOTIFY with SIP/2.0 200 OK (got %s)" % bodies)
        return new

    def act_transferee(self, dlg):
        """sbc-sim as transferee: NOTIFY 100, new INVITE to Refer-To, NOTIFY 200, BYE old."""
        if not self.wait(lambda: dlg.refers, "REFER on %s" % dlg.label):
            return None
        refer = dlg.refers.pop(0)
        target = uri_of(refer.get("refer-to"))
        rb = refer.get("referred-by")

        def notify(frag, state):
            b, _ = self.dlg_request(dlg, "NOTIFY", ["Event: refer", "Subscription-State: " + state,
                                                     "Contact: <%s>" % dlg.local_contact],
                                    body=("%s\r\n" % frag).encode(), ctype="message/sipfrag")
            if b:
                self.final_response(b, "NOTIFY", "200 to NOTIFY")

        notify("SIP/2.0 100 Trying", "active;expires=60")
        conn = self.any_conn(dlg.conn)
        new = self.new_dialog(dlg.label + "-transferred")
        new.conn = conn
        new.call_id = "%s@%s" % (rand_hex(12), self.a.sbc_fqdn)
        new.local_tag = rand_hex(6)
        new.local_cseq = 1
        caller = Uri(uri_of(dlg.local_nameaddr)).user or self.a.caller
        new.local_nameaddr = "<sip:%s@%s;user=phone>" % (caller, self.a.sbc_fqdn)
        new.remote_nameaddr = "<%s>" % target
        new.local_contact = self.my_contact(caller)
        hs = ["From: %s;tag=%s" % (new.local_nameaddr, new.local_tag), "To: " + new.remote_nameaddr,
              "Call-ID: " + new.call_id, "CSeq: 1 INVITE", "Contact: <%s>" % new.local_contact,
              "Allow: " + self.allow(), "Supported: timer"]
        if rb:
            hs.append("Referred-By: " + rb)
        branch, via = self.send_request(conn, "INVITE", target, hs, self.sdp_for(new, "sendrecv"))
        final = self.final_response(branch, "INVITE", "answer to the transfer INVITE")
        if final is None or final.code >= 300:
            notify("SIP/2.0 %s" % (final.code if final else 408), "terminated;reason=noresource")
            self.fail("transfer INVITE failed")
            return None
        new.remote_tag = final.to_tag()
        new.remote_target = uri_of(final.get("contact"))
        new.route_set = list(reversed(final.all("record-route")))
        new.state = "confirmed"
        self.dialogs[(new.call_id, new.local_tag, new.remote_tag)] = new
        self.dlg_request(new, "ACK", cseq=1)
        new.media.set_remote(Sdp(final.body))
        self.calls += 1
        self.start_media(new)
        notify("SIP/2.0 200 OK", "terminated;reason=noresource")
        self.act_bye(dlg)
        self.event("transferee: new call %s up, old dialog released" % new.label)
        return new

    # ------------------------------------------------------------------ run
    def run(self):
        a = self.a
        if a.listen:
            self.start_listen()
        if a.connect:
            self.out_conn = self.connect()
        if a.ready_file:
            with open(a.ready_file + ".tmp", "w") as f:
                f.write("%s:%d\n" % self.listen_addr if self.listen_addr else "connected\n")
            os.replace(a.ready_file + ".tmp", a.ready_file)
        if a.connect and self.out_conn is None:
            if "tls-server-cert" not in self.expect_v:
                self.fail("TLS connection to %s failed" % a.connect)
            a.expect_calls = 0
        else:
            if a.acs and a.options_first:
                # ACS: the SBC must start the OPTIONS exchange; Microsoft answers after.
                self.wait(lambda: self.options_received >= 1, "the SBC's first OPTIONS (ACS)")
            if a.options_first:
                self.options_ping()
        if not self.failures or a.keep_going:
            for i in range(a.expect_calls):
                if self.remaining() <= 0 or (self.failures and not a.keep_going):
                    break
                if a.call:
                    self.uac_call(i + 1, a.call, a.then or [])
                else:
                    self.uas_call(i + 1, a.then or [])
        if a.expect_options:
            self.wait(lambda: self.options_received >= a.expect_options, "%d OPTIONS" % a.expect_options)
        # Late messages still get checked; SIGTERM ends the lingering early.
        self.wait(lambda: self.stopping, "linger", timeout=min(a.linger, max(0, self.remaining())), quiet=True)
        self.stop.set()
        for d in self.dialogs.values():
            d.media.close()
        return self.report()

    def report(self):
        names = {v["name"] for v in self.violations} | {w["name"] for w in self.warnings}
        unexpected = [v for v in self.violations if v["name"] not in self.expect_v]
        missing = sorted(self.expect_v - names)
        for m in missing:
            self.fail("expected violation %s not seen" % m)
        if self.pending_invites:
            self.fail("%d INVITE(s) left unanswered" % len(self.pending_invites))
        ok = not self.failures and not unexpected
        return {"ok": ok, "role": self.a.role, "calls": self.calls, "violations": self.violations,
                "warnings": self.warnings, "media": self.media_results, "dtmf": self.dtmf_results,
                "options_received": self.options_received, "failures": self.failures,
                "invites_by_fqdn": getattr(self, "invites_by_fqdn", {}),
                "expected_violations": sorted(self.expect_v), "events": self.events}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--role", choices=["microsoft", "sbc-sim"], default="microsoft",
                   help="microsoft (default): the Microsoft proxy + media processor, checking the SBC; "
                        "sbc-sim: a stand-in SBC for the self-test")
    p.add_argument("--listen", metavar="IP:PORT", help="TLS server address (client certificate required)")
    p.add_argument("--connect", metavar="IP:PORT", help="also open a TLS client connection to the SBC")
    p.add_argument("--sni", help="server name sent and verified on --connect "
                                 "(default --sbc-fqdn; --peer-fqdn for sbc-sim)")
    p.add_argument("--cert", required=True, help="PEM certificate (server and client)")
    p.add_argument("--key", required=True, help="PEM private key")
    p.add_argument("--ca", required=True, help="PEM trust bundle the peer's certificate must chain to")
    p.add_argument("--no-client-cert", action="store_true", help="connect without a client certificate")
    p.add_argument("--sbc-fqdn", action="append", default=None,
                   help="the FQDN the SBC must present and use in Contact (default sbc.example.test); "
                        "repeated: one SBC with several identities (Teams and ACS trunks on one proxy), "
                        "each connection's client certificate naming one of them, which every message "
                        "on that connection must use")
    p.add_argument("--peer-fqdn", default="sip.pstnhub.microsoft.com",
                   help="the Microsoft proxy FQDN (default %(default)s)")
    p.add_argument("--record-route", default="sip:sip.pstnhub.microsoft.com:5061;transport=tls;lr",
                   help="Record-Route URI Microsoft puts on INVITEs and 18x/2xx")
    p.add_argument("--contact", default="sip:api-du-a-usea.pstnhub.microsoft.com:443;"
                                        "x-i={uuid};x-c={id}/s/1/{id}",
                   help="Microsoft's Contact URI ({uuid}, {id}: random, fresh per dialog)")
    p.add_argument("--referred-by", default="sip:sip.pstnhub.microsoft.com:5061;"
                                            "x-m=8:orgid:fa27e3a1-0c9e-4a39-9d9e-2b0f6c1d2e3f;"
                                            "x-t=4dca2e2a-7d1f-4b7e-a0b1-5f6e7d8c9b0a;"
                                            "x-ti=b712c0de-1111-2222-3333-444455556666;x-tt=aHR0cHM6Ly9leGFtcGxl%3D",
                   help="Referred-By URI sent with REFER")
    p.add_argument("--on-invite", default="ring-answer",
                   help="answer | ring-answer | ring-noanswer | reject:CODE | garbage (default %(default)s)")
    p.add_argument("--ring-ms", type=int, default=300, help="ringing time before 200 in ring-answer")
    p.add_argument("--call", metavar="NUMBER", help="place calls to +NUMBER (UAC) instead of receiving them")
    p.add_argument("--caller", default="+15550100001", help="caller number for --call (default %(default)s)")
    p.add_argument("--options-first", action="store_true", help="send an OPTIONS and require 200 first")
    p.add_argument("--acs", action="store_true",
                   help="ACS Direct Routing: the SBC must send OPTIONS before any INVITE; with "
                        "--options-first ours waits for the SBC's first OPTIONS")
    p.add_argument("--expect-final", type=int, help="with --call: the final status expected (e.g. 503)")
    p.add_argument("--offer-codecs", default="8 0 101 13", help="payload types offered (default %(default)s)")
    p.add_argument("--dtmf-pt", type=int, default=101,
                   help="our telephone-event payload type in offers and answers (default %(default)s, "
                        "as Microsoft), whatever the offer's")
    p.add_argument("--count-events", action="store_true",
                   help="count the SRTP packets of each call by payload type and collect its RFC 4733 "
                        "events (with --media none); reported as \"dtmf\" in the JSON")
    p.add_argument("--offer-crypto32", action="store_true",
                   help="also offer AES_CM_128_HMAC_SHA1_32 (as Teams does); the answer must pick _80")
    p.add_argument("--media", choices=["echo-check", "echo", "none"], default=None,
                   help="echo-check (microsoft default): send SRTP, require it back; "
                        "echo (sbc-sim default): send back what arrives")
    p.add_argument("--media-seconds", type=float, default=2.0,
                   help="length of each media check: media-seconds x 50 packets (default 2)")
    p.add_argument("--media-delay-ms", type=int, default=150,
                   help="wait before each media check, for the SBC's other leg to settle (default 150)")
    p.add_argument("--then", action="append", metavar="ACTION",
                   help="after each call is up, in order: hold, resume, refresh, media, bye, wait-bye, "
                        "refer:URI, wait-refer (sbc-sim), pause:MS, wait-file:PATH, cancel (first, with --call)")
    p.add_argument("--refer-no-invite", action="store_true",
                   help="refer: the target is not behind this peer (PSTN), expect no new INVITE here")
    p.add_argument("--expect-calls", type=int, default=1, help="calls to place or receive (default 1)")
    p.add_argument("--expect-options", type=int, default=0, help="wait until this many OPTIONS arrived")
    p.add_argument("--timeout", type=float, default=30.0, help="overall limit in seconds (default 30)")
    p.add_argument("--linger", type=float, default=0.3, help="seconds to keep serving after the last step")
    p.add_argument("--keep-going", action="store_true", help="continue with the next steps after a failure")
    p.add_argument("--log", help="append every message in and out to this file")
    p.add_argument("--ready-file", help="written once listening (and connected)")
    p.add_argument("--skip-check", action="append", metavar="NAME", help="disable one check")
    p.add_argument("--expect-violation", action="append", metavar="NAME",
                   help="this violation must occur (negative tests); it does not fail the run")
    p.add_argument("--sim-fault", choices=["contact-ip", "no-plus", "no-crypto"],
                   help="sbc-sim only: break one rule on purpose")
    p.add_argument("--list-checks", action="store_true", help="print the check names and exit")
    # --list-checks must work without the certificate arguments.
    if argv is None:
        argv = sys.argv[1:]
    if "--list-checks" in argv:
        for k, v in sorted(CHECKS.items()):
            print("%-26s %s" % (k, v))
        for k in sorted(WARNINGS):
            print("%-26s (warning)" % k)
        return 0
    a = p.parse_args(argv)
    a.sbc_fqdns = a.sbc_fqdn or ["sbc.example.test"]
    a.sbc_fqdn = a.sbc_fqdns[0]
    if a.media is None:
        a.media = "echo" if a.role == "sbc-sim" else "echo-check"
    if not a.listen and not a.connect:
        p.error("need --listen and/or --connect")
    if a.media != "none" and pylibsrtp is None:
        p.error("pylibsrtp is missing: pip install --break-system-packages pylibsrtp")
    for v in (a.skip_check or []) + (a.expect_violation or []):
        if v not in CHECKS and v not in WARNINGS:
            p.error("unknown check %s (see --list-checks)" % v)
    peer = Peer(a)
    peer.stopping = False

    def on_term(_sig, _frame):
        # SIGTERM: stop lingering and report (the steps already done count).
        peer.stopping = True
    signal.signal(signal.SIGTERM, on_term)
    try:
        res = peer.run()
    except KeyboardInterrupt:
        peer.fail("interrupted")
        res = peer.report()
    except Exception as e:  # report, never hang
        peer.fail("internal error: %s: %s" % (type(e).__name__, e))
        res = peer.report()
        import traceback
        traceback.print_exc()
    peer.stop.set()
    print(json.dumps(res))
    sys.stdout.flush()
    return 0 if res["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
