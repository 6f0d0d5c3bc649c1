//! The B2BUA's SDP handling as the `sdp` cargo-fuzz target (`fuzz/`) checks
//! it, and the stable replay of that target's regressions. Compiled only
//! under `cfg(fuzzing)` (set by `cargo fuzz`) and in this crate's tests: not
//! part of the API.
//!
//! [`check_media`] runs what the B2BUA does with a party's SDP — read it
//! ([`md::read_remote`]), make our key ([`md::ensure_key`]), write the SDP for
//! the other party anchored at a relay leg ([`md::rewrite`], with codec
//! filtering), or an offer from scratch ([`md::generate_offer`]) — on
//! arbitrary bytes, and panics when a property fails:
//!
//! * an offer the B2BUA accepts (`read_remote` is Ok) can be sent on toward
//!   a trunk (RTP or SRTP) and answered toward its sender: every `rewrite`
//!   of it succeeds;
//! * what `rewrite` writes parses; its first audio stream is the input's,
//!   at the relay's port and, in force, the relay's address; the other
//!   streams are disabled (port 0); proto, `a=crypto` (exactly our key or
//!   none), `a=rtcp-mux` and `a=rtcp` are what was asked; every `c=` line
//!   names the relay; no ICE,
//!   `fingerprint` or `setup` attribute is left; codec filtering leaves the
//!   input's formats in order, keeps at least one, and only allowed ones
//!   when one voice codec was allowed;
//! * the B2BUA reads back what it wrote: `read_remote` of the output gives
//!   the relay's address and port, the proto, the rtcp-mux flag and our key;
//! * rewriting is stable: rewriting the output again gives the same lines
//!   apart from the origin's version;
//! * `generate_offer` writes an SDP that parses and reads back the same way.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use media::control::LegPorts;
use media::{CryptoAttribute, SrtpProfile};

use crate::media::{self as md, MediaControl, PartyMedia};

/// A relay stand-in: fixed keys, no sessions.
struct Keys(u8);

impl MediaControl for Keys {
    fn interface(&self, _name: Option<&str>) -> usize {
        0
    }

    fn create(
        &mut self,
        _a: media::control::LegSpec,
        _b: media::control::LegSpec,
    ) -> Result<media::control::SessionInfo, String> {
        Err("no sessions here".into())
    }

    fn new_key(&mut self, tag: u32, profile: SrtpProfile) -> Result<CryptoAttribute, String> {
        self.0 = self.0.wrapping_add(1);
        let n = profile.master_key_len() + profile.master_salt_len();
        let bytes: Vec<u8> = (0..n as u8).map(|i| i.wrapping_mul(13) ^ self.0).collect();
        CryptoAttribute::new(tag, profile, &bytes).map_err(|e| e.to_string())
    }
}

const CODECS: [&[&str]; 4] = [
    &[],
    &["PCMA"],
    &["PCMU", "telephone-event"],
    &["g722", "pcma", "CN"],
];

/// The relay leg of a case: IPv4 or IPv6, a non-zero even port.
fn ports(ctl: [u8; 4]) -> LegPorts {
    let ip = if ctl[0] & 1 == 0 {
        IpAddr::V4(Ipv4Addr::new(203, 0, 113, 5))
    } else {
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 5))
    };
    let p = 2 + (u16::from_be_bytes([ctl[1], ctl[2]]) % 32_000) * 2;
    LegPorts {
        rtp: SocketAddr::new(ip, p),
        rtcp: SocketAddr::new(ip, p + 1),
        advertised: ip,
    }
}

/// Checks the B2BUA's SDP handling on `data`: 5 control bytes, then the
/// SDP. Byte 0: bit 0 an IPv6 relay, bit 1 rtcp-mux toward the trunk, bit 2
/// an SRTP trunk, bits 3–4 the trunk's codec list, bits 5–7 the SRTP suite
/// of our key toward the trunk; bytes 1–2: the relay port; byte 3: the
/// session id of a generated offer; byte 4: what runs (bit 0 the offer
/// toward the trunk and a generated offer, bit 1 the answer toward the
/// sender; 0: nothing here, the `sdp` target's own checks). Shorter input
/// is skipped.
pub fn check_media(data: &[u8]) {
    let Some((ctl, body)) = data.split_first_chunk::<5>() else {
        return;
    };
    let mode = ctl[4];
    let ctl = [ctl[0], ctl[1], ctl[2], ctl[3]];
    if mode & 3 == 0 {
        return;
    }
    let ports = ports(ctl);
    let codecs: Vec<String> = CODECS[usize::from(ctl[0] >> 3) & 3]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    let mut keys = Keys(ctl[3]);

    if mode & 1 != 0 {
        // A generated offer (a late-offer INVITE) toward the trunk.
        let mut gen = trunk_media(&mut keys, ctl);
        let offer = md::generate_offer(ports, &mut gen, &codecs, u64::from(ctl[3]));
        check_written(&offer, ports, &gen, "generated offer");
    }

    let Ok(sd) = sdp::SessionDescription::parse(body) else {
        return;
    };
    let Ok(remote) = md::read_remote(&sd) else {
        return;
    };
    let i = md::audio_index(&sd).expect("read_remote found an audio stream"); // fuzz oracle: a failed property panics by design (cfg(fuzzing)/tests only)

    if mode & 1 != 0 {
        // Toward the trunk: the offer sent on (send_invite).
        let mut mb = trunk_media(&mut keys, ctl);
        let out = md::rewrite(sd.clone(), ports, &mut mb, &codecs)
            .unwrap_or_else(|e| panic!("an accepted offer cannot be sent on: {e}")); // fuzz oracle: a failed property panics by design (cfg(fuzzing)/tests only)
        check_rewritten(&sd, i, &out, ports, &mb, &codecs, "offer toward the trunk");
        check_stable(&out, ports, &mut mb, &codecs);
    }
    if mode & 2 == 0 {
        return;
    }

    // Toward its sender: the answer (callee_answered, re-INVITE) in the
    // sender's own media profile (new_call), here written from its offer.
    let mut ma = PartyMedia {
        proto: remote.proto.clone(),
        their_key: remote.key.clone(),
        mux: remote.mux,
        remote: remote.rtp,
        last_remote_sdp: Some(body.to_vec()),
        ..PartyMedia::default()
    };
    let tag = remote.key.as_ref().map_or(1, |(_, t)| *t);
    md::ensure_key(&mut keys, &mut ma, remote.suite, tag).expect("fixed keys"); // fuzz oracle: a failed property panics by design (cfg(fuzzing)/tests only)
    let out = md::rewrite(sd.clone(), ports, &mut ma, &[])
        .unwrap_or_else(|e| panic!("an accepted offer cannot be answered: {e}")); // fuzz oracle: a failed property panics by design (cfg(fuzzing)/tests only)
    check_rewritten(&sd, i, &out, ports, &ma, &[], "answer toward the caller");
    check_stable(&out, ports, &mut ma, &[]);
}

/// Our media toward the trunk of a case (send_invite).
fn trunk_media(keys: &mut Keys, ctl: [u8; 4]) -> PartyMedia {
    let srtp = ctl[0] & 4 != 0;
    let mut m = PartyMedia {
        proto: if srtp { "RTP/SAVP" } else { "RTP/AVP" }.to_owned(),
        mux: ctl[0] & 2 != 0,
        ..PartyMedia::default()
    };
    let suite = md::PREFERENCE[usize::from(ctl[0] >> 5) % md::PREFERENCE.len()];
    md::ensure_key(keys, &mut m, Some(suite), 1).expect("fixed keys"); // fuzz oracle: a failed property panics by design (cfg(fuzzing)/tests only)
    m
}

/// The properties of an SDP the B2BUA wrote for a party using `media`.
fn check_written(out: &[u8], ports: LegPorts, media: &PartyMedia, what: &str) {
    let sd = sdp::SessionDescription::parse(out)
        .unwrap_or_else(|e| panic!("{what} does not parse: {e}")); // fuzz oracle: a failed property panics by design (cfg(fuzzing)/tests only)
    assert_eq!(
        media.last_local_sdp.as_deref(),
        Some(out),
        "{what}: not remembered as sent"
    );
    let i = md::audio_index(&sd).unwrap_or_else(|| panic!("{what}: no audio stream")); // fuzz oracle: a failed property panics by design (cfg(fuzzing)/tests only)
    let m = &sd.media()[i];
    assert_eq!(m.port(), Some(ports.rtp.port()), "{what}: port");
    assert_eq!(
        sd.effective_connection(i).and_then(|c| c.ip()),
        Some(ports.advertised),
        "{what}: connection in force"
    );
    let relay = match ports.advertised {
        IpAddr::V4(a) => format!("IN IP4 {a}"),
        IpAddr::V6(a) => format!("IN IP6 {a}"),
    };
    for l in sd.lines().filter(|l| l.kind() == Some('c')) {
        assert_eq!(
            l.value(),
            Some(relay.as_str()),
            "{what}: a c= line not at the relay"
        );
    }
    assert_eq!(m.proto(), Some(media.proto.as_str()), "{what}: proto");
    let crypto: Vec<_> = m.attribute_values("crypto").collect();
    match &media.our_key {
        Some(k) => {
            let line = k.to_sdp_line();
            let ours = line.strip_prefix("a=crypto:");
            assert_eq!(crypto, [ours], "{what}: a=crypto is not exactly our key");
        }
        None => assert!(crypto.is_empty(), "{what}: a=crypto without SRTP"),
    }
    assert_eq!(m.rtcp_mux(), media.mux, "{what}: rtcp-mux");
    let rtcp = m.rtcp().map(|r| r.port);
    let want = if media.mux { ports.rtp } else { ports.rtcp };
    assert_eq!(rtcp, Some(want.port()), "{what}: a=rtcp");
    assert_eq!(m.attribute_values("rtcp").count(), 1, "{what}: one a=rtcp");
    // Read back by the B2BUA itself.
    let r = md::read_remote(&sd).unwrap_or_else(|e| panic!("{what} does not read back: {e}")); // fuzz oracle: a failed property panics by design (cfg(fuzzing)/tests only)
    assert_eq!(r.rtp, Some(ports.rtp), "{what}: read back address");
    assert_eq!(r.proto, media.proto, "{what}: read back proto");
    assert_eq!(r.mux, media.mux, "{what}: read back rtcp-mux");
    if let Some(k) = &media.our_key {
        let policy = k.srtp_policy().ok();
        assert!(
            r.key.as_ref().map(|(p, _)| p) == policy.as_ref(),
            "{what}: read back key"
        );
    }
}

/// The properties of `rewrite` of `input` (first audio stream `i`).
fn check_rewritten(
    input: &sdp::SessionDescription,
    i: usize,
    out: &[u8],
    ports: LegPorts,
    media: &PartyMedia,
    codecs: &[String],
    what: &str,
) {
    check_written(out, ports, media, what);
    let sd = sdp::SessionDescription::parse(out).expect("checked"); // fuzz oracle: a failed property panics by design (cfg(fuzzing)/tests only)
    assert_eq!(sd.media().len(), input.media().len(), "{what}: streams");
    assert_eq!(
        md::audio_index(&sd),
        Some(i),
        "{what}: a different audio stream"
    );
    for (j, m) in sd.media().iter().enumerate() {
        if j != i && m.media_line().is_some() {
            assert_eq!(m.port(), Some(0), "{what}: stream {j} not disabled");
        }
    }
    for l in sd.lines() {
        if let Some(a) = l.as_attribute() {
            let n = a.name.to_ascii_lowercase();
            assert!(
                !sdp::ICE_ATTRIBUTES.contains(&n.as_str()),
                "{what}: ICE attribute a={} left",
                a.name
            );
        }
    }
    for name in ["fingerprint", "setup"] {
        assert!(!sd.has_attribute(name), "{what}: session a={name} left");
        assert!(
            !sd.media()[i].has_attribute(name),
            "{what}: media a={name} left"
        );
    }
    assert!(!sd.has_attribute("group"), "{what}: a=group left");
    // Codec filtering: the input's formats in their order, never none.
    let before: Vec<&str> = input.media()[i].formats().collect();
    let after: Vec<&str> = sd.media()[i].formats().collect();
    let mut rest = before.iter();
    assert!(
        after.iter().all(|f| rest.any(|b| b == f)),
        "{what}: formats {after:?} are not a subsequence of {before:?}"
    );
    if !before.is_empty() {
        assert!(!after.is_empty(), "{what}: every format removed");
    }
    if !codecs.is_empty() && after.len() < before.len() {
        let m = &sd.media()[i];
        for f in &after {
            let pt: Option<u8> = f.parse().ok();
            let name = pt
                .and_then(|pt| m.rtpmap(pt).map(|r| r.encoding.to_owned()))
                .or_else(|| static_name(pt?).map(str::to_owned));
            let ok = name.is_some_and(|n| codecs.iter().any(|c| c.eq_ignore_ascii_case(&n)));
            assert!(ok, "{what}: format {f} kept though not allowed");
        }
    }
    if let Some(o) = sd.origin() {
        assert_eq!(o.version(), Some(media.version), "{what}: origin version");
    }
}

fn static_name(pt: u8) -> Option<&'static str> {
    Some(match pt {
        0 => "PCMU",
        8 => "PCMA",
        9 => "G722",
        18 => "G729",
        13 => "CN",
        3 => "GSM",
        4 => "G723",
        _ => return None,
    })
}

/// Rewriting what was written changes nothing but the origin's version.
fn check_stable(out: &[u8], ports: LegPorts, media: &mut PartyMedia, codecs: &[String]) {
    let sd = sdp::SessionDescription::parse(out).expect("checked"); // fuzz oracle: a failed property panics by design (cfg(fuzzing)/tests only)
    let again = md::rewrite(sd.clone(), ports, media, codecs)
        .unwrap_or_else(|e| panic!("what the B2BUA wrote cannot be rewritten: {e}")); // fuzz oracle: a failed property panics by design (cfg(fuzzing)/tests only)
    let sd2 = sdp::SessionDescription::parse(&again).expect("checked"); // fuzz oracle: a failed property panics by design (cfg(fuzzing)/tests only)
    let strip = |s: &sdp::SessionDescription| -> Vec<Vec<u8>> {
        s.lines()
            .filter(|l| l.kind() != Some('o'))
            .map(|l| l.as_bytes().to_vec())
            .collect()
    };
    assert_eq!(strip(&sd), strip(&sd2), "rewriting is not stable");
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    /// Every reproducer of the `sdp` fuzz target (fuzz/regressions/sdp/)
    /// passes the target's B2BUA checks (the `sdp` crate's own checks are
    /// replayed by crates/sdp/tests/fuzz_regressions.rs).
    #[test]
    fn sdp_fuzz_regressions_stay_fixed() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions/sdp");
        let Ok(rd) = std::fs::read_dir(&dir) else {
            return;
        };
        for e in rd {
            let p = e.expect("directory entry").path();
            let data = std::fs::read(&p).expect("regression file");
            let r = std::panic::catch_unwind(|| super::check_media(&data));
            assert!(r.is_ok(), "{} fails", p.display());
        }
    }

    /// Typical inputs pass: a carrier's RTP offer, Teams' SRTP offer.
    #[test]
    fn typical_offers_pass() {
        let rtp = "v=0\r\no=- 1 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\n\
                   m=audio 4000 RTP/AVP 8 0 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n";
        let srtp = "v=0\r\no=- 7 1 IN IP4 52.113.1.1\r\ns=session\r\nc=IN IP4 52.113.1.1\r\nt=0 0\r\n\
                    m=audio 49152 RTP/SAVP 8 0 101\r\na=ice-ufrag:abcd\r\n\
                    a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^31\r\n\
                    a=rtcp-mux\r\nm=video 0 RTP/SAVP 96\r\n";
        for body in [rtp, srtp] {
            for c0 in 0..=255u8 {
                let mut d = vec![c0, 0x12, 0x34, 7, 3];
                d.extend_from_slice(body.as_bytes());
                super::check_media(&d);
            }
        }
    }
}
