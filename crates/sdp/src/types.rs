//! Typed views of SDP lines, parsed on demand from the stored text.
//!
//! Every view borrows from its line. A line that does not parse has no view
//! (`None`); it is still kept and printed unchanged.

use std::fmt;
use std::net::IpAddr;

/// Splits on runs of SP/HTAB (RFC 8866 uses one SP; peers are not always exact).
pub(crate) fn fields(s: &str) -> impl Iterator<Item = &str> {
    s.split([' ', '\t']).filter(|f| !f.is_empty())
}

/// Parses an unsigned decimal number of type `T` with no sign and no spaces.
pub(crate) fn number<T: std::str::FromStr>(s: &str) -> Option<T> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// The `o=` line: `<username> <sess-id> <sess-version> <nettype> <addrtype> <unicast-address>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin<'a> {
    /// `username` (`-` when there is none).
    pub username: &'a str,
    /// `sess-id`, kept as text (a numeric string of any length).
    pub session_id: &'a str,
    /// `sess-version`, kept as text; see [`Origin::version`].
    pub session_version: &'a str,
    /// `nettype`, normally `IN`.
    pub net_type: &'a str,
    /// `addrtype`, normally `IP4` or `IP6`.
    pub addr_type: &'a str,
    /// `unicast-address`: an address or a host name.
    pub address: &'a str,
}

impl<'a> Origin<'a> {
    pub(crate) fn parse(value: &'a str) -> Option<Self> {
        let mut it = fields(value);
        let o = Self {
            username: it.next()?,
            session_id: it.next()?,
            session_version: it.next()?,
            net_type: it.next()?,
            addr_type: it.next()?,
            address: it.next()?,
        };
        it.next().is_none().then_some(o)
    }

    /// `sess-version` as a number, if it is one that fits in 64 bits.
    pub fn version(&self) -> Option<u64> {
        number(self.session_version)
    }
}

/// A `c=` line (or the address part of `a=rtcp`): `<nettype> <addrtype> <connection-address>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Connection<'a> {
    /// `nettype`, normally `IN`.
    pub net_type: &'a str,
    /// `addrtype`, normally `IP4` or `IP6`.
    pub addr_type: &'a str,
    /// The address as written, including any `/ttl` or `/count` suffix.
    pub address: &'a str,
}

impl<'a> Connection<'a> {
    pub(crate) fn parse(value: &'a str) -> Option<Self> {
        let mut it = fields(value);
        let c = Self {
            net_type: it.next()?,
            addr_type: it.next()?,
            address: it.next()?,
        };
        it.next().is_none().then_some(c)
    }

    /// The address as an IP address (without a multicast `/ttl` suffix), if it
    /// is one; `None` for a host name.
    pub fn ip(&self) -> Option<IpAddr> {
        let a = self.address.split('/').next().unwrap_or(self.address);
        a.parse().ok()
    }
}

/// `IN IP4 <addr>` or `IN IP6 <addr>`.
pub(crate) fn connection_text(addr: IpAddr) -> String {
    match addr {
        IpAddr::V4(a) => format!("IN IP4 {a}"),
        IpAddr::V6(a) => format!("IN IP6 {a}"),
    }
}

/// The `m=` line: `<media> <port>[/<number of ports>] <proto> <fmt> …`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaLine<'a> {
    /// `audio`, `video`, `image`, `application`, …
    pub media: &'a str,
    /// The transport port (0 for a rejected or disabled stream).
    pub port: u16,
    /// The optional `/<number of ports>`.
    pub port_count: Option<u16>,
    /// `RTP/AVP`, `RTP/SAVP`, `UDP/TLS/RTP/SAVP`, `udptl`, …
    pub proto: &'a str,
    formats: &'a str,
}

impl<'a> MediaLine<'a> {
    pub(crate) fn parse(value: &'a str) -> Option<Self> {
        let value = value.trim_start_matches([' ', '\t']);
        let (media, rest) = split_field(value)?;
        let (port_text, rest) = split_field(rest)?;
        let (proto, formats) = split_field(rest)?;
        let (port, port_count) = match port_text.split_once('/') {
            Some((p, n)) => (number(p)?, Some(number(n)?)),
            None => (number(port_text)?, None),
        };
        Some(Self {
            media,
            port,
            port_count,
            proto,
            formats,
        })
    }

    /// The media formats (payload types for RTP profiles), in order.
    pub fn formats(&self) -> impl Iterator<Item = &'a str> {
        fields(self.formats)
    }

    /// Whether `proto` is an SRTP profile (`RTP/SAVP`, `RTP/SAVPF`,
    /// `UDP/TLS/RTP/SAVP`, …), ASCII case-insensitively.
    pub fn is_secure(&self) -> bool {
        let p = self.proto.to_ascii_uppercase();
        p.ends_with("/SAVP") || p.ends_with("/SAVPF")
    }
}

/// Splits off the first SP/HTAB-separated field; returns it and the rest with
/// leading blanks removed.
fn split_field(s: &str) -> Option<(&str, &str)> {
    if s.is_empty() {
        return None;
    }
    match s.find([' ', '\t']) {
        Some(i) => Some((&s[..i], s[i..].trim_start_matches([' ', '\t']))),
        None => Some((s, "")),
    }
}

/// A `b=` line: `<bwtype>:<bandwidth>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bandwidth<'a> {
    /// `CT`, `AS`, `TIAS`, `RR`, `RS`, …
    pub bw_type: &'a str,
    /// The bandwidth value (kbit/s for `CT`/`AS`, bit/s for `TIAS`).
    pub bandwidth: u64,
}

impl<'a> Bandwidth<'a> {
    pub(crate) fn parse(value: &'a str) -> Option<Self> {
        let (t, v) = value.split_once(':')?;
        Some(Self {
            bw_type: t,
            bandwidth: number(v.trim())?,
        })
    }
}

/// The media direction attributes of RFC 8866 §6.7 / RFC 3264.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// `a=sendrecv` (the default when none is given).
    SendRecv,
    /// `a=sendonly`.
    SendOnly,
    /// `a=recvonly`.
    RecvOnly,
    /// `a=inactive`.
    Inactive,
}

impl Direction {
    /// The attribute name (`sendrecv`, `sendonly`, `recvonly`, `inactive`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SendRecv => "sendrecv",
            Self::SendOnly => "sendonly",
            Self::RecvOnly => "recvonly",
            Self::Inactive => "inactive",
        }
    }

    /// The direction named by an attribute name, ASCII case-insensitively.
    pub fn from_name(name: &str) -> Option<Self> {
        [
            Self::SendRecv,
            Self::SendOnly,
            Self::RecvOnly,
            Self::Inactive,
        ]
        .into_iter()
        .find(|d| d.as_str().eq_ignore_ascii_case(name))
    }

    /// The direction an answerer mirrors (RFC 3264 §6.1): `sendonly` ⇄ `recvonly`.
    pub fn reversed(self) -> Self {
        match self {
            Self::SendOnly => Self::RecvOnly,
            Self::RecvOnly => Self::SendOnly,
            d => d,
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `a=rtpmap:<payload type> <encoding name>/<clock rate>[/<encoding parameters>]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpMap<'a> {
    /// The RTP payload type (0–127).
    pub payload_type: u8,
    /// `PCMU`, `SILK`, `telephone-event`, …
    pub encoding: &'a str,
    /// The RTP clock rate in Hz.
    pub clock_rate: u32,
    /// Encoding parameters (the channel count for audio), if present.
    pub parameters: Option<&'a str>,
}

impl<'a> RtpMap<'a> {
    pub(crate) fn parse(value: &'a str) -> Option<Self> {
        let (pt, rest) = split_field(value.trim_start_matches([' ', '\t']))?;
        let mut parts = rest.trim_end_matches([' ', '\t']).splitn(3, '/');
        let encoding = parts.next().filter(|e| !e.is_empty())?;
        let clock_rate = number(parts.next()?)?;
        let parameters = parts.next();
        let payload_type = number::<u8>(pt).filter(|pt| *pt <= 127)?;
        Some(Self {
            payload_type,
            encoding,
            clock_rate,
            parameters,
        })
    }
}

/// `a=fmtp:<format> <format specific parameters>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fmtp<'a> {
    /// The format (an RTP payload type number for RTP profiles).
    pub format: &'a str,
    /// The parameters, verbatim (e.g. `0-16`, `useinbandfec=1; usedtx=0`).
    pub params: &'a str,
}

impl<'a> Fmtp<'a> {
    pub(crate) fn parse(value: &'a str) -> Option<Self> {
        let (format, params) = split_field(value.trim_start_matches([' ', '\t']))?;
        Some(Self { format, params })
    }

    /// The format as an RTP payload type, if it is one.
    pub fn payload_type(&self) -> Option<u8> {
        number::<u8>(self.format).filter(|pt| *pt <= 127)
    }
}

/// `a=rtcp:<port> [<nettype> <addrtype> <connection-address>]` (RFC 3605).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtcpAttribute<'a> {
    /// The RTCP port.
    pub port: u16,
    /// The RTCP address, when given.
    pub connection: Option<Connection<'a>>,
}

impl<'a> RtcpAttribute<'a> {
    pub(crate) fn parse(value: &'a str) -> Option<Self> {
        let (port, rest) = split_field(value.trim_start_matches([' ', '\t']))?;
        let port = number(port)?;
        let rest = rest.trim_end_matches([' ', '\t']);
        let connection = if rest.is_empty() {
            None
        } else {
            Some(Connection::parse(rest)?)
        };
        Some(Self { port, connection })
    }
}

/// The transport of an ICE candidate, including Microsoft's MS-ICE2 TCP types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CandidateTransport {
    /// `UDP`.
    Udp,
    /// `TCP` (RFC 6544; the TCP type is in the `tcptype` extension).
    Tcp,
    /// MS-ICE2 `TCP-ACT` (active TCP candidate).
    TcpActive,
    /// MS-ICE2 `TCP-PASS` (passive TCP candidate).
    TcpPassive,
    /// Anything else; the text is in [`Candidate::transport`].
    Other,
}

/// `a=candidate:` (RFC 8839 / RFC 5245, and MS-ICE2 as Teams sends it):
/// `<foundation> <component-id> <transport> <priority> <address> <port> typ <type> [raddr <a>] [rport <p>] …`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate<'a> {
    /// The foundation.
    pub foundation: &'a str,
    /// The component (1 = RTP, 2 = RTCP).
    pub component: u32,
    /// The transport as written (`UDP`, `TCP-ACT`, `tcp-pass`, …).
    pub transport: &'a str,
    /// The priority.
    pub priority: u64,
    /// The connection address (an IP address or, with mDNS, a host name).
    pub address: &'a str,
    /// The port.
    pub port: u16,
    /// The candidate type: `host`, `srflx`, `prflx`, `relay`.
    pub candidate_type: &'a str,
    /// `raddr`, if present.
    pub related_address: Option<&'a str>,
    /// `rport`, if present.
    pub related_port: Option<u16>,
    extensions: &'a str,
}

impl<'a> Candidate<'a> {
    pub(crate) fn parse(value: &'a str) -> Option<Self> {
        let (foundation, r) = split_field(value.trim_start_matches([' ', '\t']))?;
        let (component, r) = split_field(r)?;
        let (transport, r) = split_field(r)?;
        let (priority, r) = split_field(r)?;
        let (address, r) = split_field(r)?;
        let (port, r) = split_field(r)?;
        let (typ, r) = split_field(r)?;
        if !typ.eq_ignore_ascii_case("typ") {
            return None;
        }
        let (candidate_type, mut rest) = split_field(r)?;
        let mut related_address = None;
        let mut related_port = None;
        while let Some((key, r)) = split_field(rest) {
            if key.eq_ignore_ascii_case("raddr") {
                let (a, r) = split_field(r)?;
                related_address = Some(a);
                rest = r;
            } else if key.eq_ignore_ascii_case("rport") {
                let (p, r) = split_field(r)?;
                related_port = Some(number(p)?);
                rest = r;
            } else {
                break;
            }
        }
        Some(Self {
            foundation,
            component: number(component)?,
            transport,
            priority: number(priority)?,
            address,
            port: number(port)?,
            candidate_type,
            related_address,
            related_port,
            extensions: rest.trim_end_matches([' ', '\t']),
        })
    }

    /// The transport, classified.
    pub fn transport_kind(&self) -> CandidateTransport {
        let t = self.transport;
        if t.eq_ignore_ascii_case("udp") {
            CandidateTransport::Udp
        } else if t.eq_ignore_ascii_case("tcp") {
            CandidateTransport::Tcp
        } else if t.eq_ignore_ascii_case("tcp-act") {
            CandidateTransport::TcpActive
        } else if t.eq_ignore_ascii_case("tcp-pass") {
            CandidateTransport::TcpPassive
        } else {
            CandidateTransport::Other
        }
    }

    /// Extension attributes after `typ`/`raddr`/`rport` (e.g. `generation 0`,
    /// `tcptype passive`), verbatim.
    pub fn extensions(&self) -> &'a str {
        self.extensions
    }
}

/// An `a=crypto:` line (RFC 4568), kept raw apart from its tag and suite;
/// the SRTP code parses the key parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Crypto<'a> {
    /// The tag (1–9 digits).
    pub tag: u32,
    /// The crypto suite as written, e.g. `AES_CM_128_HMAC_SHA1_80`.
    pub suite: &'a str,
    /// Everything after the suite, verbatim: key parameters
    /// (`inline:…|2^31|1:1`) and any session parameters.
    pub params: &'a str,
}

impl<'a> Crypto<'a> {
    pub(crate) fn parse(value: &'a str) -> Option<Self> {
        let (tag, r) = split_field(value.trim_start_matches([' ', '\t']))?;
        if tag.len() > 9 {
            return None;
        }
        let (suite, params) = split_field(r)?;
        Some(Self {
            tag: number(tag)?,
            suite,
            params: params.trim_end_matches([' ', '\t']),
        })
    }
}

/// The attribute names [`crate::MediaDescription::remove_ice`] removes: RFC 8839
/// ICE attributes, `ice-mismatch`, `ice-pacing`, and Microsoft's
/// `x-candidate-ipv6` (MS-ICE2 IPv6 candidates).
pub const ICE_ATTRIBUTES: &[&str] = &[
    "ice-ufrag",
    "ice-pwd",
    "ice-options",
    "ice-lite",
    "ice-mismatch",
    "ice-pacing",
    "candidate",
    "end-of-candidates",
    "remote-candidates",
    "x-candidate-ipv6",
];
