//! ng requests: the cookie, the command and the keys Kamailio's and
//! OpenSIPS's rtpengine modules send, typed; everything else kept raw.

use std::fmt;
use std::net::IpAddr;

use crate::bencode::{self, Dict, Limits, Value};
use crate::error::{ErrorReply, RequestError};

/// Longest cookie accepted. Kamailio's are `<server id>_<random>_<seq>`
/// (at most 34 bytes); OpenSIPS's are shorter.
pub const MAX_COOKIE_LEN: usize = 256;

/// The message cookie: the bytes before the first space of the datagram. The
/// reply must carry the same cookie; a retransmitted request has the same one.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cookie<'a>(&'a [u8]);

impl<'a> Cookie<'a> {
    /// A cookie from its bytes, if they are a valid cookie: 1 to
    /// [`MAX_COOKIE_LEN`] visible ASCII characters (no space or control).
    pub fn new(bytes: &'a [u8]) -> Option<Self> {
        let ok = !bytes.is_empty()
            && bytes.len() <= MAX_COOKIE_LEN
            && bytes.iter().all(u8::is_ascii_graphic);
        ok.then_some(Self(bytes))
    }

    /// The cookie's bytes.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.0
    }
}

impl fmt::Debug for Cookie<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A valid cookie is visible ASCII.
        fmt::Debug::fmt(&String::from_utf8_lossy(self.0), f)
    }
}

/// A byte string from the request (call-id, tags, SDP, interface names…),
/// borrowed from the datagram.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BStr<'a>(&'a [u8]);

impl<'a> BStr<'a> {
    /// Wraps bytes.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self(bytes)
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.0
    }

    /// The bytes as UTF-8 text, if they are.
    pub fn to_str(&self) -> Option<&'a str> {
        std::str::from_utf8(self.0).ok()
    }
}

impl fmt::Debug for BStr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&String::from_utf8_lossy(self.0), f)
    }
}

impl PartialEq<str> for BStr<'_> {
    fn eq(&self, other: &str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl PartialEq<&str> for BStr<'_> {
    fn eq(&self, other: &&str) -> bool {
        self.0 == other.as_bytes()
    }
}

/// The commands this codec understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    /// `ping` → `{"result": "pong"}`.
    Ping,
    /// `offer`: rewrite an SDP offer; needs `sdp`, `call-id`, `from-tag`.
    Offer,
    /// `answer`: rewrite an SDP answer; needs `sdp`, `call-id`, `from-tag`, `to-tag`.
    Answer,
    /// `delete`: end a call (or one branch/tag of it); needs `call-id`.
    Delete,
    /// `query`: statistics of a call; needs `call-id`.
    Query,
    /// `list`: the call-ids of current calls (optional `limit`).
    List,
}

impl Command {
    /// The command name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ping => "ping",
            Self::Offer => "offer",
            Self::Answer => "answer",
            Self::Delete => "delete",
            Self::Query => "query",
            Self::List => "list",
        }
    }

    fn from_name(name: &[u8]) -> Option<Self> {
        [
            Self::Ping,
            Self::Offer,
            Self::Answer,
            Self::Delete,
            Self::Query,
            Self::List,
        ]
        .into_iter()
        .find(|c| c.as_str().as_bytes() == name)
    }
}

/// Compares a key or keyword with its canonical (dashed) spelling, treating
/// space and underscore as dash, as rtpengine does (`media address`,
/// `media-address` and `media_address` are one key).
fn same_name(raw: &[u8], canonical: &str) -> bool {
    raw.len() == canonical.len()
        && raw
            .iter()
            .zip(canonical.bytes())
            .all(|(&r, c)| r == c || (c == b'-' && matches!(r, b' ' | b'_')))
}

macro_rules! keyword_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => [$($word:literal),+]),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name<'a> {
            $($(#[$vdoc])* $variant,)+
            /// A value this codec does not know, kept verbatim (rtpengine
            /// ignores unknown values with a warning).
            Other(BStr<'a>),
        }

        impl<'a> $name<'a> {
            /// Classifies a keyword (space/underscore read as dash).
            pub fn parse(word: &'a [u8]) -> Self {
                $(if [$($word),+].iter().any(|w| same_name(word, w)) {
                    return Self::$variant;
                })+
                Self::Other(BStr(word))
            }

            /// The keyword's canonical spelling, or the raw bytes for `Other`.
            pub fn as_bytes(&self) -> &'a [u8] {
                match self {
                    $(Self::$variant => [$($word),+][0].as_bytes(),)+
                    Self::Other(b) => b.as_bytes(),
                }
            }
        }
    };
}

keyword_enum! {
    /// An entry of the `flags` list (prefixed entries such as `SDES-…` or
    /// `replace-…` are folded into their own keys instead).
    Flag {
        /// `trust-address`: use the SDP addresses, not the source address.
        TrustAddress => ["trust-address"],
        /// `SIP-source-address`: use `received-from` instead of the SDP address.
        SipSourceAddress => ["SIP-source-address"],
        /// `port-latching`: latch on the first packet's source port only.
        PortLatching => ["port-latching"],
        /// `strict-source`: after latching, drop packets from other sources.
        StrictSource => ["strict-source"],
        /// `symmetric`.
        Symmetric => ["symmetric"],
        /// `asymmetric`.
        Asymmetric => ["asymmetric"],
        /// `unidirectional`.
        Unidirectional => ["unidirectional"],
        /// `media-handover`: allow the peer address to change mid-call.
        MediaHandover => ["media-handover"],
        /// `record-call`.
        RecordCall => ["record-call"],
        /// `loop-protect`.
        LoopProtect => ["loop-protect"],
        /// `always-transcode`.
        AlwaysTranscode => ["always-transcode"],
        /// `reject-ICE`: remove ICE from the offer early.
        RejectIce => ["reject-ICE"],
        /// `generate-mid`.
        GenerateMid => ["generate-mid"],
        /// `strip-extmap`.
        StripExtmap => ["strip-extmap"],
        /// `no-rtcp-attribute`: do not add `a=rtcp`.
        NoRtcpAttribute => ["no-rtcp-attribute"],
        /// `full-rtcp-attribute`: add `a=rtcp` with an address.
        FullRtcpAttribute => ["full-rtcp-attribute"],
    }
}

keyword_enum! {
    /// An entry of the `replace` list: SDP fields to rewrite with the relay's values.
    Replace {
        /// `origin`: the `o=` address.
        Origin => ["origin"],
        /// `session-connection`: the session-level `c=` address.
        SessionConnection => ["session-connection"],
        /// `sdp-version`: keep `sess-version` consistent across re-offers.
        SdpVersion => ["sdp-version", "SDP-version"],
        /// `username`: the `o=` username.
        Username => ["username"],
        /// `session-name`: the `s=` line.
        SessionName => ["session-name"],
        /// `zero-address`: replace `0.0.0.0` hold addresses too.
        ZeroAddress => ["zero-address"],
        /// `force-increment-sdp-version`.
        ForceIncrementSdpVersion => ["force-increment-sdp-version"],
    }
}

keyword_enum! {
    /// `transport-protocol`: the proto to write into the outgoing `m=` lines.
    TransportProtocol {
        /// `RTP/AVP`.
        RtpAvp => ["RTP/AVP"],
        /// `RTP/SAVP`.
        RtpSavp => ["RTP/SAVP"],
        /// `RTP/AVPF`.
        RtpAvpf => ["RTP/AVPF"],
        /// `RTP/SAVPF`.
        RtpSavpf => ["RTP/SAVPF"],
        /// `UDP/TLS/RTP/SAVP`.
        UdpTlsRtpSavp => ["UDP/TLS/RTP/SAVP"],
        /// `UDP/TLS/RTP/SAVPF`.
        UdpTlsRtpSavpf => ["UDP/TLS/RTP/SAVPF"],
        /// `accept` (answers only): go along with the answerer's proto.
        Accept => ["accept"],
    }
}

keyword_enum! {
    /// `ICE`: what to do with ICE attributes.
    Ice {
        /// `remove`: strip them.
        Remove => ["remove"],
        /// `force`: strip them and offer the relay as the only candidate.
        Force => ["force"],
        /// `default`: like `force` if the SDP had ICE, else nothing.
        Default => ["default"],
        /// `force-relay`: add the relay as a `relay` candidate.
        ForceRelay => ["force-relay"],
        /// `optional`.
        Optional => ["optional"],
    }
}

keyword_enum! {
    /// An entry of the `rtcp-mux` list.
    RtcpMux {
        /// `offer`: always offer rtcp-mux.
        Offer => ["offer"],
        /// `demux`: accept it from the offerer, do not offer it onwards.
        Demux => ["demux"],
        /// `accept`: accept it and offer it onwards if offered.
        Accept => ["accept"],
        /// `reject`: reject it if offered.
        Reject => ["reject"],
        /// `require`: offer it and advertise no separate RTCP port.
        Require => ["require"],
    }
}

keyword_enum! {
    /// An address family (`address-family`, first element of `received-from`).
    AddressFamily {
        /// `IP4`.
        Ip4 => ["IP4"],
        /// `IP6`.
        Ip6 => ["IP6"],
    }
}

/// An entry of the `SDES` list (or a `SDES-…` entry of `flags`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Sdes<'a> {
    /// `off` / `no` / `disable`: do not offer SDES.
    Off,
    /// `no-<SUITE>`: exclude that crypto suite.
    NoSuite(BStr<'a>),
    /// `only-<SUITE>`: offer only the listed suites.
    OnlySuite(BStr<'a>),
    /// `nonew`: add no suites the offer did not have.
    NoNew,
    /// `pad`: keep base64 `=` padding.
    Pad,
    /// `lifetime`: add `|2^31` to keys (some Teams-facing stacks need it).
    Lifetime,
    /// `static`: keep the negotiated suite on re-invites.
    Static,
    /// Any other option (session parameters, `order:…`, …), verbatim.
    Other(BStr<'a>),
}

impl<'a> Sdes<'a> {
    /// Classifies one SDES option.
    pub fn parse(word: &'a [u8]) -> Self {
        if let Some(s) = word.strip_prefix(b"no-") {
            return Self::NoSuite(BStr(s));
        }
        if let Some(s) = word.strip_prefix(b"only-") {
            return Self::OnlySuite(BStr(s));
        }
        match word {
            b"off" | b"no" | b"disable" => Self::Off,
            b"nonew" => Self::NoNew,
            b"pad" => Self::Pad,
            b"lifetime" => Self::Lifetime,
            b"static" => Self::Static,
            _ => Self::Other(BStr(word)),
        }
    }
}

/// `received-from`: `[<family>, <address>]`, the SIP message's source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceivedFrom<'a> {
    /// `IP4` or `IP6` (Kamailio sends `?` for other transports).
    pub family: AddressFamily<'a>,
    /// The address as sent.
    pub address: BStr<'a>,
}

impl ReceivedFrom<'_> {
    /// The address, if it parses as an IP address.
    pub fn ip(&self) -> Option<IpAddr> {
        self.address.to_str()?.parse().ok()
    }
}

/// A parsed ng request, borrowing from the datagram.
///
/// Keys are matched as rtpengine matches them: case-sensitively, with space
/// and underscore read as dash. Unknown keys are ignored but kept: see
/// [`Request::get`] and [`Request::unknown_keys`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Request<'a> {
    /// The cookie to echo in the reply.
    pub cookie: Cookie<'a>,
    /// The command.
    pub command: Command,
    /// `call-id`.
    pub call_id: Option<BStr<'a>>,
    /// `from-tag`.
    pub from_tag: Option<BStr<'a>>,
    /// `to-tag`.
    pub to_tag: Option<BStr<'a>>,
    /// `via-branch`.
    pub via_branch: Option<BStr<'a>>,
    /// `sdp`: the SDP body, verbatim.
    pub sdp: Option<BStr<'a>>,
    /// `flags`, except the prefixed entries folded into other fields.
    pub flags: Vec<Flag<'a>>,
    /// `replace` (plus `replace-…` flags).
    pub replace: Vec<Replace<'a>>,
    /// `transport-protocol`.
    pub transport_protocol: Option<TransportProtocol<'a>>,
    /// `ICE`.
    pub ice: Option<Ice<'a>>,
    /// `rtcp-mux` (plus `rtcp-mux-…` flags).
    pub rtcp_mux: Vec<RtcpMux<'a>>,
    /// `direction`: logical interface names, sender side first.
    pub direction: Vec<BStr<'a>>,
    /// `received-from`.
    pub received_from: Option<ReceivedFrom<'a>>,
    /// `media-address`: overrides the SDP and source addresses.
    pub media_address: Option<BStr<'a>>,
    /// `address-family`: the family to use in the rewritten SDP.
    pub address_family: Option<AddressFamily<'a>>,
    /// `SDES` (plus `SDES-…` flags).
    pub sdes: Vec<Sdes<'a>>,
    /// `label` (or `from-label`).
    pub label: Option<BStr<'a>>,
    /// `delete-delay` in seconds (integer, or a string of digits).
    pub delete_delay: Option<i64>,
    /// `from-tags` (plus `from-tags-…` flags).
    pub from_tags: Vec<BStr<'a>>,
    /// `limit` (for `list`).
    pub limit: Option<i64>,
    dict: Dict<'a>,
}

/// The canonical spellings of every key this codec types.
const KNOWN_KEYS: &[&str] = &[
    "command",
    "call-id",
    "from-tag",
    "to-tag",
    "via-branch",
    "sdp",
    "flags",
    "replace",
    "transport-protocol",
    "ICE",
    "rtcp-mux",
    "direction",
    "received-from",
    "media-address",
    "address-family",
    "SDES",
    "label",
    "from-label",
    "delete-delay",
    "from-tags",
    "limit",
];

impl<'a> Request<'a> {
    /// The raw value of a key, spelled exactly as sent (unknown keys included).
    pub fn get(&self, key: &str) -> Option<&Value<'a>> {
        self.dict.get(key.as_bytes())
    }

    /// The whole request dictionary as decoded.
    pub fn dict(&self) -> &Dict<'a> {
        &self.dict
    }

    /// The keys this codec does not type (ignored, as rtpengine ignores them),
    /// in the order sent.
    pub fn unknown_keys(&self) -> impl Iterator<Item = (BStr<'a>, &Value<'a>)> {
        self.dict
            .iter()
            .filter(|(k, _)| !KNOWN_KEYS.iter().any(|c| same_name(k, c)))
            .map(|(k, v)| (BStr(k), v))
    }

    /// Whether `flags` has `flag`.
    pub fn has_flag(&self, flag: Flag<'_>) -> bool {
        self.flags.iter().any(|f| f.as_bytes() == flag.as_bytes())
    }
}

/// Parses one datagram, `COOKIE SP bencoded-dictionary`, with default limits.
///
/// On error, the cookie is returned when it could be read, so the caller can
/// still send the error reply (`encode_reply(cookie, &Reply::Error(e))`);
/// with `None` the datagram must be dropped.
pub fn parse_request(datagram: &[u8]) -> Result<Request<'_>, (Option<Cookie<'_>>, ErrorReply)> {
    parse_request_with(datagram, &Limits::default())
}

/// [`parse_request`] within the given bencode limits.
pub fn parse_request_with<'a>(
    datagram: &'a [u8],
    limits: &Limits,
) -> Result<Request<'a>, (Option<Cookie<'a>>, ErrorReply)> {
    let Some(space) = datagram.iter().position(|b| *b == b' ') else {
        return Err((None, RequestError::NoCookie.into()));
    };
    let Some(cookie) = Cookie::new(&datagram[..space]) else {
        return Err((None, RequestError::NoCookie.into()));
    };
    parse_body(cookie, &datagram[space + 1..], limits).map_err(|e| (Some(cookie), e.into()))
}

fn parse_body<'a>(
    cookie: Cookie<'a>,
    body: &'a [u8],
    limits: &Limits,
) -> Result<Request<'a>, RequestError> {
    if body.first() == Some(&b'{') {
        return Err(RequestError::Json);
    }
    let dict = match bencode::decode_with(body, limits)? {
        Value::Dict(d) => d,
        other => {
            return Err(RequestError::NotADictionary {
                found: other.type_name(),
            })
        }
    };
    let command = match find(&dict, "command") {
        Some(Value::Bytes(b)) => Command::from_name(b).ok_or_else(|| {
            RequestError::UnknownCommand(
                String::from_utf8_lossy(&b[..b.len().min(64)]).into_owned(),
            )
        })?,
        _ => return Err(RequestError::NoCommand),
    };
    let mut r = Request {
        cookie,
        command,
        call_id: string(&dict, "call-id")?,
        from_tag: string(&dict, "from-tag")?,
        to_tag: string(&dict, "to-tag")?,
        via_branch: string(&dict, "via-branch")?,
        sdp: string(&dict, "sdp")?,
        flags: Vec::new(),
        replace: strings(&dict, "replace")?
            .into_iter()
            .map(|b| Replace::parse(b.0))
            .collect(),
        transport_protocol: string(&dict, "transport-protocol")?
            .map(|b| TransportProtocol::parse(b.0)),
        ice: string(&dict, "ICE")?.map(|b| Ice::parse(b.0)),
        rtcp_mux: strings(&dict, "rtcp-mux")?
            .into_iter()
            .map(|b| RtcpMux::parse(b.0))
            .collect(),
        direction: strings(&dict, "direction")?,
        received_from: received_from(&dict)?,
        media_address: string(&dict, "media-address")?,
        address_family: string(&dict, "address-family")?.map(|b| AddressFamily::parse(b.0)),
        sdes: strings(&dict, "SDES")?
            .into_iter()
            .map(|b| Sdes::parse(b.0))
            .collect(),
        label: match string(&dict, "label")? {
            Some(l) => Some(l),
            None => string(&dict, "from-label")?,
        },
        delete_delay: integer(&dict, "delete-delay")?,
        from_tags: strings(&dict, "from-tags")?,
        limit: integer(&dict, "limit")?,
        dict: Dict::new(),
    };
    // Prefixed flags are shorthands for list keys, as rtpengine reads them.
    for f in strings(&dict, "flags")? {
        let f = f.0;
        if let Some(rest) = f.strip_prefix(b"replace-") {
            r.replace.push(Replace::parse(rest));
        } else if let Some(rest) = f.strip_prefix(b"SDES-") {
            r.sdes.push(Sdes::parse(rest));
        } else if let Some(rest) = f.strip_prefix(b"rtcp-mux-") {
            r.rtcp_mux.push(RtcpMux::parse(rest));
        } else if let Some(rest) = f.strip_prefix(b"from-tags-") {
            r.from_tags.push(BStr(rest));
        } else {
            r.flags.push(Flag::parse(f));
        }
    }
    let required: &[(&'static str, bool)] = match command {
        Command::Ping | Command::List => &[],
        Command::Offer => &[
            ("sdp", r.sdp.is_some()),
            ("call-id", r.call_id.is_some()),
            ("from-tag", r.from_tag.is_some()),
        ],
        Command::Answer => &[
            ("sdp", r.sdp.is_some()),
            ("call-id", r.call_id.is_some()),
            ("from-tag", r.from_tag.is_some()),
            ("to-tag", r.to_tag.is_some()),
        ],
        Command::Delete | Command::Query => &[("call-id", r.call_id.is_some())],
    };
    if let Some((key, _)) = required.iter().find(|(_, present)| !present) {
        return Err(RequestError::MissingKey(key));
    }
    r.dict = dict;
    Ok(r)
}

/// The first entry whose key is `canonical` (space/underscore read as dash).
fn find<'d, 'a>(dict: &'d Dict<'a>, canonical: &str) -> Option<&'d Value<'a>> {
    dict.iter()
        .find(|(k, _)| same_name(k, canonical))
        .map(|(_, v)| v)
}

fn string<'a>(dict: &Dict<'a>, key: &'static str) -> Result<Option<BStr<'a>>, RequestError> {
    match find(dict, key) {
        None => Ok(None),
        Some(Value::Bytes(b)) => Ok(Some(BStr(b))),
        Some(_) => Err(RequestError::WrongType {
            key,
            expected: "string",
        }),
    }
}

/// A list of strings; a single string is read as a comma-separated list
/// (rtpengine accepts both).
fn strings<'a>(dict: &Dict<'a>, key: &'static str) -> Result<Vec<BStr<'a>>, RequestError> {
    let wrong = RequestError::WrongType {
        key,
        expected: "list of strings",
    };
    match find(dict, key) {
        None => Ok(Vec::new()),
        Some(Value::List(items)) => items
            .iter()
            .map(|v| v.as_bytes().map(BStr).ok_or(wrong.clone()))
            .collect(),
        Some(Value::Bytes(b)) => Ok(b
            .split(|c| *c == b',')
            .map(trim)
            .filter(|s| !s.is_empty())
            .map(BStr)
            .collect()),
        Some(_) => Err(wrong),
    }
}

fn trim(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|c| *c != b' ').unwrap_or(s.len());
    let end = s.iter().rposition(|c| *c != b' ').map_or(start, |e| e + 1);
    &s[start..end]
}

/// An integer, or a string of ASCII digits with an optional `-`.
fn integer(dict: &Dict<'_>, key: &'static str) -> Result<Option<i64>, RequestError> {
    match find(dict, key) {
        None => Ok(None),
        Some(Value::Int(i)) => Ok(Some(*i)),
        Some(Value::Bytes(b)) => {
            let digits = b.strip_prefix(b"-").unwrap_or(b);
            if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
                return Err(RequestError::InvalidValue { key });
            }
            // ASCII digits with an optional sign: valid UTF-8.
            let text = std::str::from_utf8(b).map_err(|_| RequestError::InvalidValue { key })?;
            text.parse()
                .map(Some)
                .map_err(|_| RequestError::InvalidValue { key })
        }
        Some(_) => Err(RequestError::WrongType {
            key,
            expected: "integer",
        }),
    }
}

fn received_from<'a>(dict: &Dict<'a>) -> Result<Option<ReceivedFrom<'a>>, RequestError> {
    let key = "received-from";
    match find(dict, key) {
        None => Ok(None),
        Some(Value::List(items)) => match items.as_slice() {
            [Value::Bytes(family), Value::Bytes(address), ..] => Ok(Some(ReceivedFrom {
                family: AddressFamily::parse(family),
                address: BStr(address),
            })),
            [_, _, ..] => Err(RequestError::WrongType {
                key,
                expected: "list of strings",
            }),
            _ => Err(RequestError::InvalidValue { key }),
        },
        Some(_) => Err(RequestError::WrongType {
            key,
            expected: "list of strings",
        }),
    }
}
