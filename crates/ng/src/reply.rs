//! ng replies and their encoding: `COOKIE SP bencoded-dictionary`.

use std::net::SocketAddr;

use crate::error::ErrorReply;
use crate::request::Cookie;

/// A reply to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reply {
    /// `{"result": "pong"}` — the reply to `ping`.
    Pong,
    /// `{"result": "ok"}`, with an optional `warning` (a non-fatal problem).
    Ok {
        /// The `warning` text, if any.
        warning: Option<String>,
    },
    /// `{"result": "ok", "sdp": …}` — the reply to `offer` and `answer`.
    Sdp {
        /// The rewritten SDP body.
        sdp: Vec<u8>,
        /// The `warning` text, if any.
        warning: Option<String>,
    },
    /// `{"result": "ok", "created": …, "last signal": …, "tags": …, "totals": …}`
    /// — the reply to `query`.
    Query(CallStats),
    /// The reply to `delete`: `ok`, with the call's final statistics when
    /// given (as rtpengine sends them, for Kamailio's `$rtpstat`).
    Deleted(Option<CallStats>),
    /// `{"result": "ok", "calls": [<call-id>, …]}` — the reply to `list`.
    List {
        /// Call-ids of current calls.
        calls: Vec<Vec<u8>>,
    },
    /// `{"result": "error", "error-reason": …}`.
    Error(ErrorReply),
}

impl Reply {
    /// `ok` without a warning.
    pub fn ok() -> Self {
        Self::Ok { warning: None }
    }

    /// `ok` carrying a rewritten SDP body.
    pub fn sdp(sdp: impl Into<Vec<u8>>) -> Self {
        Self::Sdp {
            sdp: sdp.into(),
            warning: None,
        }
    }

    /// An error reply with the given reason.
    pub fn error(reason: impl Into<String>) -> Self {
        Self::Error(ErrorReply::new(reason))
    }
}

impl From<ErrorReply> for Reply {
    fn from(e: ErrorReply) -> Self {
        Self::Error(e)
    }
}

/// Packet, byte and error counters. Values above `i64::MAX` are sent as
/// `i64::MAX` (bencode integers here are 64-bit signed).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Packets.
    pub packets: u64,
    /// Bytes.
    pub bytes: u64,
    /// Errors (e.g. SRTP authentication failures, unroutable packets).
    pub errors: u64,
}

/// Call totals, sent as `"totals": {"RTP": …, "RTCP": …}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// RTP counters.
    pub rtp: Counters,
    /// RTCP counters.
    pub rtcp: Counters,
}

/// Statistics of one call, as `query` (and `delete`) report them. Times are
/// UNIX seconds supplied by the caller: this crate reads no clock.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallStats {
    /// When the call was created (`created`).
    pub created: i64,
    /// When the last signalling message arrived (`last signal`).
    pub last_signal: i64,
    /// One entry per tag (call participant), sent as a dictionary keyed by tag.
    /// A tag given twice is sent once (the first).
    pub tags: Vec<TagStats>,
    /// Totals over the call.
    pub totals: Totals,
}

/// One call participant (a SIP tag).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TagStats {
    /// The tag.
    pub tag: Vec<u8>,
    /// Its label, if one was set.
    pub label: Option<Vec<u8>>,
    /// When it was created.
    pub created: i64,
    /// The tag it talks to (`in dialogue with`).
    pub in_dialogue_with: Option<Vec<u8>>,
    /// Its media sections.
    pub medias: Vec<MediaStats>,
}

/// One media section of a participant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MediaStats {
    /// 1-based index of the `m=` line.
    pub index: u32,
    /// `audio`, `video`, …
    pub media_type: String,
    /// The transport protocol, e.g. `RTP/SAVP`.
    pub protocol: String,
    /// Its streams (RTP, and RTCP unless muxed).
    pub streams: Vec<StreamStats>,
}

/// One stream (a relay port and the peer it latched on).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamStats {
    /// The relay's local port.
    pub local_port: u16,
    /// The peer address packets come from (after latching).
    pub endpoint: Option<SocketAddr>,
    /// The peer address the SDP advertised.
    pub advertised_endpoint: Option<SocketAddr>,
    /// When the last packet arrived (UNIX seconds), 0 if none.
    pub last_packet: i64,
    /// Counters of this stream.
    pub stats: Counters,
}

/// An owned bencode tree for encoding replies (dictionary keys sorted on
/// output, duplicates dropped keeping the first).
enum Node {
    Bytes(Vec<u8>),
    Int(i64),
    List(Vec<Node>),
    Dict(Vec<(Vec<u8>, Node)>),
}

impl Node {
    fn text(s: &str) -> Self {
        Self::Bytes(s.as_bytes().to_vec())
    }

    fn uint(n: u64) -> Self {
        Self::Int(i64::try_from(n).unwrap_or(i64::MAX))
    }

    fn dict(entries: Vec<(&str, Node)>) -> Self {
        Self::Dict(
            entries
                .into_iter()
                .map(|(k, v)| (k.as_bytes().to_vec(), v))
                .collect(),
        )
    }

    fn encode(self, out: &mut Vec<u8>) {
        match self {
            Self::Bytes(b) => {
                out.extend_from_slice(b.len().to_string().as_bytes());
                out.push(b':');
                out.extend_from_slice(&b);
            }
            Self::Int(i) => {
                out.push(b'i');
                out.extend_from_slice(i.to_string().as_bytes());
                out.push(b'e');
            }
            Self::List(l) => {
                out.push(b'l');
                for n in l {
                    n.encode(out);
                }
                out.push(b'e');
            }
            Self::Dict(mut entries) => {
                entries.sort_by(|a, b| a.0.cmp(&b.0)); // stable: the first of equal keys stays first
                entries.dedup_by(|later, earlier| later.0 == earlier.0);
                out.push(b'd');
                for (k, v) in entries {
                    Self::Bytes(k).encode(out);
                    v.encode(out);
                }
                out.push(b'e');
            }
        }
    }
}

fn counters(c: &Counters) -> Node {
    Node::dict(vec![
        ("packets", Node::uint(c.packets)),
        ("bytes", Node::uint(c.bytes)),
        ("errors", Node::uint(c.errors)),
    ])
}

fn endpoint(a: &SocketAddr) -> Node {
    let family = if a.is_ipv4() { "IPv4" } else { "IPv6" };
    Node::dict(vec![
        ("family", Node::text(family)),
        ("address", Node::text(&a.ip().to_string())),
        ("port", Node::Int(i64::from(a.port()))),
    ])
}

fn stats_entries(s: &CallStats) -> Vec<(&'static str, Node)> {
    let tags = s
        .tags
        .iter()
        .map(|t| {
            let mut e = vec![
                ("tag", Node::Bytes(t.tag.clone())),
                ("created", Node::Int(t.created)),
            ];
            if let Some(l) = &t.label {
                e.push(("label", Node::Bytes(l.clone())));
            }
            if let Some(o) = &t.in_dialogue_with {
                e.push(("in dialogue with", Node::Bytes(o.clone())));
            }
            let medias = t.medias.iter().map(media).collect();
            e.push(("medias", Node::List(medias)));
            (t.tag.clone(), Node::dict(e))
        })
        .collect();
    vec![
        ("created", Node::Int(s.created)),
        ("last signal", Node::Int(s.last_signal)),
        ("tags", Node::Dict(tags)),
        (
            "totals",
            Node::dict(vec![
                ("RTP", counters(&s.totals.rtp)),
                ("RTCP", counters(&s.totals.rtcp)),
            ]),
        ),
    ]
}

fn media(m: &MediaStats) -> Node {
    let streams = m
        .streams
        .iter()
        .map(|s| {
            let mut e = vec![
                ("local port", Node::Int(i64::from(s.local_port))),
                ("last packet", Node::Int(s.last_packet)),
                ("stats", counters(&s.stats)),
            ];
            if let Some(a) = &s.endpoint {
                e.push(("endpoint", endpoint(a)));
            }
            if let Some(a) = &s.advertised_endpoint {
                e.push(("advertised endpoint", endpoint(a)));
            }
            Node::dict(e)
        })
        .collect();
    Node::dict(vec![
        ("index", Node::Int(i64::from(m.index))),
        ("type", Node::text(&m.media_type)),
        ("protocol", Node::text(&m.protocol)),
        ("streams", Node::List(streams)),
    ])
}

fn with_warning(
    mut e: Vec<(&'static str, Node)>,
    warning: &Option<String>,
) -> Vec<(&'static str, Node)> {
    if let Some(w) = warning {
        e.push(("warning", Node::text(w)));
    }
    e
}

fn reply_node(reply: &Reply) -> Node {
    let entries = match reply {
        Reply::Pong => vec![("result", Node::text("pong"))],
        Reply::Ok { warning } => with_warning(vec![("result", Node::text("ok"))], warning),
        Reply::Sdp { sdp, warning } => with_warning(
            vec![
                ("result", Node::text("ok")),
                ("sdp", Node::Bytes(sdp.clone())),
            ],
            warning,
        ),
        Reply::Query(s) | Reply::Deleted(Some(s)) => {
            let mut e = vec![("result", Node::text("ok"))];
            e.extend(stats_entries(s));
            e
        }
        Reply::Deleted(None) => vec![("result", Node::text("ok"))],
        Reply::List { calls } => vec![
            ("result", Node::text("ok")),
            (
                "calls",
                Node::List(calls.iter().map(|c| Node::Bytes(c.clone())).collect()),
            ),
        ],
        Reply::Error(e) => vec![
            ("result", Node::text("error")),
            ("error-reason", Node::text(e.reason())),
        ],
    };
    Node::dict(entries)
}

/// Encodes `reply` as a datagram: `COOKIE SP bencoded-dictionary`, keys sorted.
pub fn encode_reply(cookie: Cookie<'_>, reply: &Reply) -> Vec<u8> {
    let mut out = Vec::with_capacity(cookie.as_bytes().len() + 64);
    out.extend_from_slice(cookie.as_bytes());
    out.push(b' ');
    reply_node(reply).encode(&mut out);
    out
}
