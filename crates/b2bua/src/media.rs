//! Media anchoring: what the B2BUA asks of the relay, and the SDP it writes
//! for each party.
//!
//! Every call has one relay session. Its leg A faces the party that sent the
//! first INVITE, leg B the party it was routed to. The SDP a party receives
//! always names *its* relay leg (address, port, our SDES key toward it), so
//! what one party sees never changes when the other side changes (a fork, a
//! failover, a transfer): only the relay's entry for that other side is
//! updated.

use std::net::SocketAddr;

use media::control::{
    CryptoSpec, LegPorts, LegSpec, MediaOp, PayloadFormat, PayloadSpec, SessionInfo, Side,
};
use media::{choose_crypto, CryptoAttribute, Lifetime, SrtpPolicy, SrtpProfile};

/// What the B2BUA asks of the media relay and needs answered at once: an
/// interface, a session's local ports, a key. Neither waits for a relay
/// worker (ports are bound by the caller's thread). Every other change
/// goes out as [`crate::Output::Media`] and is never waited for. The daemon
/// implements it over the relay; tests implement it without sockets.
pub trait MediaControl {
    /// Index of the media interface called `name` (default: the first).
    fn interface(&self, name: Option<&str>) -> usize;
    /// Allocates a session with two legs.
    fn create(&mut self, a: LegSpec, b: LegSpec) -> Result<SessionInfo, String>;
    /// Allocates a session for an emergency call: it may take the ports a
    /// relay keeps in reserve for them (by default, as [`MediaControl::create`]).
    fn create_emergency(&mut self, a: LegSpec, b: LegSpec) -> Result<SessionInfo, String> {
        self.create(a, b)
    }
    /// A new SDES key (the daemon draws it from the system's CSPRNG).
    fn new_key(&mut self, tag: u32, profile: SrtpProfile) -> Result<CryptoAttribute, String>;
}

/// SDES suites accepted from a peer, best first (Microsoft: `_80`).
pub(crate) const PREFERENCE: [SrtpProfile; 3] = [
    SrtpProfile::AesCm128HmacSha1_80,
    SrtpProfile::AeadAes128Gcm,
    SrtpProfile::AesCm128HmacSha1_32,
];

/// The media state of one party (one relay leg).
#[derive(Debug, Clone, Default)]
pub(crate) struct PartyMedia {
    /// Protocol the party uses (`RTP/AVP`, `RTP/SAVP`).
    pub(crate) proto: String,
    /// Our key toward the party (kept across re-INVITEs).
    pub(crate) our_key: Option<CryptoAttribute>,
    /// The key the party encrypts with, and the tag of its crypto line.
    pub(crate) their_key: Option<(SrtpPolicy, u32)>,
    /// RTCP multiplexed toward this party.
    pub(crate) mux: bool,
    /// Where the party receives (from its SDP).
    pub(crate) remote: Option<SocketAddr>,
    /// The last SDP the party sent (to recognise a session refresh).
    pub(crate) last_remote_sdp: Option<Vec<u8>>,
    /// The one before it: what is in force again when the re-INVITE that
    /// brought the last one fails ([`crate::core`]'s `reinvite_failed`).
    pub(crate) prev_remote_sdp: Option<Vec<u8>>,
    /// The last SDP we sent it, and its origin version.
    pub(crate) last_local_sdp: Option<Vec<u8>>,
    pub(crate) version: u64,
}

impl PartyMedia {
    pub(crate) fn secure(&self) -> bool {
        self.proto.contains("SAVP")
    }

    pub(crate) fn crypto_spec(&self) -> CryptoSpec {
        CryptoSpec {
            rx: self.their_key.as_ref().map(|(p, _)| p.clone()),
            tx: self.our_key.as_ref().and_then(|k| k.srtp_policy().ok()),
        }
    }
}

/// What was read from a party's SDP for its stream (audio, or T.38 fax).
#[derive(Debug, Clone)]
pub(crate) struct Remote {
    pub(crate) rtp: Option<SocketAddr>,
    pub(crate) rtcp: Option<SocketAddr>,
    /// The RTP profile of the party's audio. For a T.38 stream (proto
    /// `udptl`) it is `RTP/AVP`: only plain legs carry T.38 (an SRTP leg's
    /// offer is refused), and their audio comes back in that profile.
    pub(crate) proto: String,
    pub(crate) mux: bool,
    pub(crate) key: Option<(SrtpPolicy, u32)>,
    /// The crypto suite the party chose/offered (for our answer's line).
    pub(crate) suite: Option<SrtpProfile>,
    /// What the stream carries: the party's payload types (audio) or a
    /// raw stream (T.38), for the relay.
    pub(crate) payload: PayloadSpec,
    /// The stream is T.38 fax over UDPTL (`m=image … udptl t38`).
    pub(crate) image: bool,
}

impl Remote {
    /// The relay change for the party on `side` of session `id`: what its
    /// stream carries now.
    pub(crate) fn payload_op(&self, id: u64, side: Side) -> MediaOp {
        MediaOp::Payload {
            id,
            side,
            spec: self.payload.clone(),
        }
    }
}

/// Index of the first audio stream with a port.
pub(crate) fn audio_index(sd: &sdp::SessionDescription) -> Option<usize> {
    sd.media()
        .iter()
        .position(|m| m.media_type() == Some("audio") && m.port().is_some_and(|p| p != 0))
}

/// A T.38 stream: `m=image PORT udptl t38` (RFC 3362, ITU-T T.38 Annex D).
pub(crate) fn is_t38(m: &sdp::MediaDescription) -> bool {
    m.media_type()
        .is_some_and(|t| t.eq_ignore_ascii_case("image"))
        && m.proto().is_some_and(|p| p.eq_ignore_ascii_case("udptl"))
        && m.formats().any(|f| f.eq_ignore_ascii_case("t38"))
}

/// Index of the stream the relay anchors: the first audio stream with a
/// port, else the first T.38 stream with one (a re-INVITE to fax replaces
/// audio with `m=image`, or sets the audio port to 0 beside it).
pub(crate) fn stream_index(sd: &sdp::SessionDescription) -> Option<usize> {
    audio_index(sd).or_else(|| {
        sd.media()
            .iter()
            .position(|m| is_t38(m) && m.port().is_some_and(|p| p != 0))
    })
}

/// Reads the audio stream of a party's SDP (an initial offer or answer:
/// calls start with audio).
pub(crate) fn read_remote(sd: &sdp::SessionDescription) -> Result<Remote, String> {
    read(sd, audio_index(sd).ok_or("no audio stream in the SDP")?)
}

/// Reads the stream of a party's SDP in a dialog: audio, or T.38 fax
/// (a re-INVITE and its answer).
pub(crate) fn read_stream(sd: &sdp::SessionDescription) -> Result<Remote, String> {
    read(
        sd,
        stream_index(sd).ok_or("no audio or T.38 stream in the SDP")?,
    )
}

fn read(sd: &sdp::SessionDescription, i: usize) -> Result<Remote, String> {
    let m = &sd.media()[i];
    let ip = sd.effective_connection(i).and_then(|c| c.ip());
    let port = m.port().unwrap_or(0);
    if is_t38(m) {
        return Ok(Remote {
            rtp: ip.map(|ip| SocketAddr::new(ip, port)),
            rtcp: None,
            proto: "RTP/AVP".into(),
            mux: false,
            key: None,
            suite: None,
            payload: PayloadSpec::raw(),
            image: true,
        });
    }
    let proto = m.proto().unwrap_or("RTP/AVP").to_owned();
    // The proto goes back into our answer and into the SDP of the other
    // party (`set_proto` takes a token): one with bytes other than visible
    // ASCII cannot, so the offer is refused here (488) instead of being
    // answered without SDP (fuzz S2).
    if !proto.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("the m= line's proto is not a token".into());
    }
    let rtp = ip.map(|ip| SocketAddr::new(ip, port));
    let rtcp = m.rtcp().and_then(|r| {
        r.connection
            .and_then(|c| c.ip())
            .or(ip)
            .map(|ip| SocketAddr::new(ip, r.port))
    });
    let (key, suite) = if proto.contains("SAVP") {
        let offered: Vec<CryptoAttribute> = m
            .crypto()
            .filter_map(|c| {
                CryptoAttribute::parse(&format!("{} {} {}", c.tag, c.suite, c.params)).ok()
            })
            .collect();
        let chosen =
            choose_crypto(&offered, &PREFERENCE).ok_or("no usable SDES a=crypto in the SDP")?;
        let profile = chosen.suite.profile().ok_or("unsupported crypto suite")?;
        let policy = chosen.srtp_policy().map_err(|e| format!("SDES: {e}"))?;
        (Some((policy, chosen.tag)), Some(profile))
    } else {
        (None, None)
    };
    Ok(Remote {
        rtp,
        rtcp,
        proto,
        mux: m.rtcp_mux(),
        key,
        suite,
        payload: payload_of(m),
        image: false,
    })
}

/// The payload types an audio stream declares: each format with its
/// `a=rtpmap`, or the static table (RFC 3551); formats that are neither
/// (and numbers above 127) are left out. At most 64.
pub(crate) fn payload_of(m: &sdp::MediaDescription) -> PayloadSpec {
    let formats = m
        .formats()
        .filter_map(|f| {
            let pt: u8 = f.parse().ok().filter(|&p| p < 128)?;
            match m.rtpmap(pt) {
                Some(r) => Some(PayloadFormat::new(pt, r.encoding, r.clock_rate)),
                // Every static audio type we know runs at 8000 Hz (G.722's
                // RTP clock too, RFC 3551 §4.5.2).
                None => Some(PayloadFormat::new(pt, &encoding_of(m, f)?, 8000)),
            }
        })
        .take(64)
        .collect();
    PayloadSpec::rtp(formats)
}

/// Well-known static payload types, and the dynamic ones we use when we
/// write an offer ourselves.
fn payload_type_of(codec: &str) -> Option<(u8, &'static str, u32)> {
    Some(match codec.to_ascii_uppercase().as_str() {
        "PCMU" => (0, "PCMU", 8000),
        "PCMA" => (8, "PCMA", 8000),
        "G722" => (9, "G722", 8000),
        "G729" => (18, "G729", 8000),
        "CN" => (13, "CN", 8000),
        "TELEPHONE-EVENT" => (101, "telephone-event", 8000),
        _ => return None,
    })
}

/// Encoding name of a format of `m` (rtpmap, or the static table).
fn encoding_of(m: &sdp::MediaDescription, format: &str) -> Option<String> {
    let pt: u8 = format.parse().ok()?;
    if let Some(r) = m.rtpmap(pt) {
        return Some(r.encoding.to_owned());
    }
    Some(
        match pt {
            0 => "PCMU",
            8 => "PCMA",
            9 => "G722",
            18 => "G729",
            13 => "CN",
            3 => "GSM",
            4 => "G723",
            _ => return None,
        }
        .to_owned(),
    )
}

/// Keeps only the codecs in `allowed` (case-insensitive encoding names);
/// an empty list keeps everything. Never removes the last codec: a stream
/// whose codecs are all refused keeps them (the far end answers 488).
pub(crate) fn filter_codecs(m: &mut sdp::MediaDescription, allowed: &[String]) {
    if allowed.is_empty() {
        return;
    }
    let keep: Vec<String> = m
        .formats()
        .filter(|f| {
            encoding_of(m, f).is_some_and(|e| allowed.iter().any(|a| a.eq_ignore_ascii_case(&e)))
        })
        .map(str::to_owned)
        .collect();
    let has_voice = keep.iter().any(|f| {
        encoding_of(m, f).is_some_and(|e| {
            !e.eq_ignore_ascii_case("telephone-event") && !e.eq_ignore_ascii_case("CN")
        })
    });
    if has_voice {
        let _ = m.retain_formats(|f| keep.iter().any(|k| k == f));
    }
}

/// Points the audio stream of `sd` (or its T.38 stream, when it has no
/// audio with a port: [`stream_index`]) at relay leg `ports` for a party
/// using `media`: address, port, protocol, our key, rtcp-mux; removes ICE
/// and other streams (port 0); bumps the origin version. A T.38 stream
/// keeps its `udptl` proto and `T38…` attributes and gets no key or RTCP
/// lines. Returns the bytes.
pub(crate) fn rewrite(
    mut sd: sdp::SessionDescription,
    ports: LegPorts,
    media: &mut PartyMedia,
    codecs: &[String],
) -> Result<Vec<u8>, String> {
    let i = stream_index(&sd).ok_or("no audio or T.38 stream in the SDP")?;
    // Every c= line names the relay (`set_connection` keeps one per
    // level) where the party had any, well-formed or not: a malformed one used to go out unchanged,
    // with the party's address in it and, when it was the only one, no
    // address in force for the stream at all (fuzz S1). The audio stream
    // gets its own when no session-level one is in force.
    let had_c = |lines: &[sdp::Line]| lines.iter().any(|l| l.kind() == Some('c'));
    let session_c = had_c(sd.session_lines());
    if session_c {
        sd.set_connection(ports.advertised);
    }
    for (j, m) in sd.media_mut().iter_mut().enumerate() {
        if j != i {
            let _ = m.set_port(0);
        }
        if had_c(&m.lines()[1..]) || (j == i && !session_c) {
            m.set_connection(ports.advertised);
        }
    }
    let m = &mut sd.media_mut()[i];
    m.set_port(ports.rtp.port()).map_err(|e| e.to_string())?;
    m.remove_ice();
    m.remove_attribute("fingerprint");
    m.remove_attribute("setup");
    if is_t38(m) {
        m.remove_crypto();
        m.remove_attribute("rtcp");
        m.remove_attribute("rtcp-mux");
    } else {
        rewrite_audio(m, ports, media, codecs)?;
    }
    sd.remove_ice_everywhere();
    sd.remove_attribute("fingerprint");
    sd.remove_attribute("setup");
    sd.remove_attribute("group");
    let _ = sd.set_origin_address(ports.advertised);
    media.version += 1;
    let _ = sd.set_session_version(media.version);
    let bytes = sd.to_bytes();
    media.last_local_sdp = Some(bytes.clone());
    Ok(bytes)
}

/// The audio stream's own lines toward a party: protocol, codecs, our key,
/// RTCP.
fn rewrite_audio(
    m: &mut sdp::MediaDescription,
    ports: LegPorts,
    media: &PartyMedia,
    codecs: &[String],
) -> Result<(), String> {
    m.set_proto(&media.proto).map_err(|e| e.to_string())?;
    filter_codecs(m, codecs);
    match &media.our_key {
        Some(k) => {
            let line = k.to_sdp_line();
            let value = line.strip_prefix("a=crypto:").unwrap_or(&line);
            let (tag, rest) = value.split_once(' ').unwrap_or(("1", value));
            m.replace_crypto([(tag.parse().unwrap_or(1), rest)])
                .map_err(|e| e.to_string())?;
        }
        None => {
            m.remove_crypto();
        }
    }
    m.set_rtcp_mux(media.mux);
    m.remove_attribute("rtcp");
    if media.mux {
        m.set_rtcp(ports.rtp.port(), None);
    } else {
        m.set_rtcp(ports.rtcp.port(), None);
    }
    Ok(())
}

/// An offer written from scratch (a late-offer INVITE from the carrier:
/// Microsoft needs an early offer).
pub(crate) fn generate_offer(
    ports: LegPorts,
    media: &mut PartyMedia,
    codecs: &[String],
    session_id: u64,
) -> Vec<u8> {
    let default = ["PCMA", "PCMU", "G722", "telephone-event", "CN"].map(str::to_owned);
    let list: &[String] = if codecs.is_empty() { &default } else { codecs };
    let known: Vec<(u8, &str, u32)> = list.iter().filter_map(|c| payload_type_of(c)).collect();
    let ip = ports.advertised;
    let fam = if ip.is_ipv4() { "IP4" } else { "IP6" };
    media.version += 1;
    let mut s = format!(
        "v=0\r\no=sbc {session_id} {} IN {fam} {ip}\r\ns=-\r\nc=IN {fam} {ip}\r\nt=0 0\r\nm=audio {} {}",
        media.version,
        ports.rtp.port(),
        media.proto
    );
    for (pt, _, _) in &known {
        s.push_str(&format!(" {pt}"));
    }
    s.push_str("\r\n");
    for (pt, name, rate) in &known {
        s.push_str(&format!("a=rtpmap:{pt} {name}/{rate}\r\n"));
        if *name == "telephone-event" {
            s.push_str(&format!("a=fmtp:{pt} 0-16\r\n"));
        }
    }
    if let Some(k) = &media.our_key {
        s.push_str(&k.to_sdp_line());
        s.push_str("\r\n");
    }
    if media.mux {
        s.push_str(&format!("a=rtcp:{}\r\na=rtcp-mux\r\n", ports.rtp.port()));
    } else {
        s.push_str(&format!("a=rtcp:{}\r\n", ports.rtcp.port()));
    }
    s.push_str("a=ptime:20\r\na=sendrecv\r\n");
    let bytes = s.into_bytes();
    media.last_local_sdp = Some(bytes.clone());
    bytes
}

/// Makes our key toward a party if it uses SRTP and has none yet, using
/// the suite it offered (or `_80`), with the `2^31` lifetime some stacks need.
pub(crate) fn ensure_key(
    ctl: &mut dyn MediaControl,
    media: &mut PartyMedia,
    suite: Option<SrtpProfile>,
    tag: u32,
) -> Result<(), String> {
    if !media.secure() {
        media.our_key = None;
        return Ok(());
    }
    if media.our_key.is_none() {
        let profile = suite.unwrap_or(SrtpProfile::AesCm128HmacSha1_80);
        let key = ctl.new_key(tag, profile)?;
        media.our_key = Some(key.with_lifetime(Lifetime::PowerOfTwo(31)));
    }
    Ok(())
}

/// A leg spec for the relay from what is known of a party.
pub(crate) fn leg_spec(interface: usize, media: &PartyMedia, remote: Option<&Remote>) -> LegSpec {
    LegSpec {
        interface,
        remote_rtp: remote.and_then(|r| r.rtp).filter(|a| a.port() != 0),
        remote_rtcp: remote.and_then(|r| r.rtcp),
        rtcp_mux: media.mux,
        strict_source: false,
        crypto: media.crypto_spec(),
        payload: remote.map(|r| r.payload.clone()).unwrap_or_default(),
    }
}

/// The advertised address of a leg (for logs and CDRs).
pub(crate) fn side_ports(info: &SessionInfo, side: Side) -> LegPorts {
    match side {
        Side::A => info.a,
        Side::B => info.b,
    }
}
