//! Local ringback: when the caller's trunk says `ringback = "local"` and
//! the callee rings without SDP (Teams and ACS answer a carrier's INVITE
//! with a bare 180), the caller gets a 183 Session Progress carrying our
//! SDP answer — its relay leg, as the 200 will name it — and the relay
//! plays a ringing tone toward it (`MediaOp::Tone`) until something else
//! takes over:
//!
//! - early media of the callee (an 18x with SDP): the tone stops, the 18x
//!   goes to the caller as ever and the relay follows its SDP (the relay
//!   also stops the tone by itself once that RTP flows);
//! - the answer: the tone stops, the 200 goes out as ever;
//! - the end of the call (CANCEL, every destination failed): the tone
//!   stops and the session goes;
//! - a move to the next destination (the forward after a ring timeout)
//!   changes nothing here: the caller keeps hearing ringback.
//!
//! Why a 183 and not a 180 with SDP: a 183 with SDP is what carriers and
//! PSTN gateways read as "early media follows, connect the voice path"
//! (ISUP ACM with in-band information); many of them play their own
//! ringback on any 180 and ignore the SDP it carries, so the caller
//! would hear theirs over ours, or only theirs.
//!
//! Not done (the 180 is relayed as with `pass`): a caller that offered
//! nothing (late offer: our SDP would have to be an offer, which only a
//! reliable 18x may carry — not done), an offer without PCMU or PCMA (the relay does not
//! transcode), and a caller that does not receive (`sendonly`, `inactive`).

use media::control::ToneSpec;
use media::tone::{Tone, G711};
use sdp::Direction;
use trunk::Ringback;

use super::*;

/// A call whose caller hears our ringback, or did.
#[derive(Debug, Clone, Copy)]
pub(super) struct Ringing {
    /// Relay session and the caller's side of it.
    session: u64,
    side: Side,
    /// The tone plays now.
    playing: bool,
}

/// The first PCMU or PCMA format of the audio stream of `sdp`, in its order.
fn g711_of(sdp: &[u8]) -> Option<(u8, G711)> {
    let sd = sdp::SessionDescription::parse(sdp).ok()?;
    let m = sd.media().get(md::audio_index(&sd)?)?;
    let found = m.formats().find_map(|f| {
        let pt: u8 = f.parse().ok()?;
        let law = match m.rtpmap(pt) {
            Some(r) if r.clock_rate == 8000 => G711::from_encoding(r.encoding)?,
            Some(_) => return None,
            None if pt == 0 => G711::Pcmu,
            None if pt == 8 => G711::Pcma,
            None => return None,
        };
        Some((pt, law))
    });
    found
}

/// The direction of our answer to an offer's (RFC 3264 §6.1).
fn answer_direction(offered: Direction) -> Direction {
    match offered {
        Direction::SendOnly => Direction::RecvOnly,
        Direction::RecvOnly => Direction::SendOnly,
        d => d,
    }
}

impl B2bua {
    /// A provisional response of the current attempt reached the caller's
    /// side (`setup::callee_progress`), with SDP or without. True when it
    /// is handled here: the caller has our 183 and hears our tone, so the
    /// response is not relayed.
    pub(super) fn ringback_progress(&mut self, id: u64, li: usize, with_sdp: bool) -> bool {
        let Some(call) = self.calls.get(&id) else {
            return false;
        };
        let late_offer = call.late_offer;
        let (name, tone) = match self.cfg.trunks.get(call.from_trunk).map(|t| &t.ringback) {
            Some(Ringback::Local {
                name,
                freqs,
                cadence_ms,
            }) => (
                name.clone(),
                Tone {
                    freqs: freqs.clone(),
                    cadence_ms: cadence_ms.clone(),
                },
            ),
            _ => return false,
        };
        if with_sdp {
            // The callee's early media takes over.
            self.ringback_stop(id);
            return false;
        }
        if self.ringback.get(&id).is_some_and(|r| r.playing) {
            // Another 18x (a fork, the next destination): it rings on.
            return true;
        }
        if late_offer {
            tracing::debug!(call = id, "no local ringback for a late offer: 18x relayed");
            return false;
        }
        let Some((session, side, spec)) = self.early_answer(id, li, tone) else {
            tracing::debug!(
                call = id,
                "no local ringback (no G.711, or a caller that does not receive): 18x relayed"
            );
            return false;
        };
        tracing::info!(call = id, tone = %name, pt = spec.payload_type, "local ringback");
        self.outputs.push_back(Output::Media(MediaOp::Tone {
            id: session,
            side,
            tone: Some(spec),
        }));
        self.ringback.insert(
            id,
            Ringing {
                session,
                side,
                playing: true,
            },
        );
        true
    }

    /// Our SDP answer to the caller in a 183 (unless it has had one: ours,
    /// or the callee's early media), and the tone for it. `None` when no
    /// tone can play (see the module documentation): nothing was sent.
    fn early_answer(&mut self, id: u64, li: usize, tone: Tone) -> Option<(u64, Side, ToneSpec)> {
        let now = self.now;
        let call = self.calls.get_mut(&id)?;
        let session = call.session?;
        let a = call.a;
        let side = call.legs[a].side;
        if let Some(sent) = &call.legs[a].media.last_local_sdp {
            // The caller has an answer already: the tone follows it.
            let (payload_type, law) = g711_of(sent)?;
            return Some((
                session.id,
                side,
                ToneSpec {
                    tone,
                    law,
                    payload_type,
                },
            ));
        }
        let server = call.a_invite?;
        let offer = call.legs[a].media.last_remote_sdp.as_deref()?;
        let mut sd = sdp::SessionDescription::parse(offer).ok()?;
        let i = md::audio_index(&sd)?;
        let offered = sd.effective_direction(i).unwrap_or(Direction::SendRecv);
        if matches!(offered, Direction::SendOnly | Direction::Inactive) {
            return None;
        }
        if offered != Direction::SendRecv {
            sd.media_mut()[i].set_direction(answer_direction(offered));
        }
        // The formats the callee was offered (its trunk's codec list), so
        // that whatever it answers, the caller takes it.
        let codecs = &self.cfg.trunks.get(call.legs[li].trunk)?.codecs;
        let ports = md::side_ports(&session, side);
        let mut media = call.legs[a].media.clone();
        let body = md::rewrite(sd, ports, &mut media, codecs).ok()?;
        let (payload_type, law) = g711_of(&body)?;
        let a_tag = call.legs[a].local_tag.clone();
        let mut r = response_to(
            call.a_request.as_deref()?,
            183,
            reason_phrase(183),
            Some(&a_tag),
        )
        .ok()?;
        push(&mut r, "Contact", &call.legs[a].contact);
        r.set_body(Some("application/sdp"), &body).ok()?;
        call.legs[a].media = media;
        call.last_relayed = Some(183);
        call.ringing.get_or_insert(now);
        let a_trunk = call.legs[a].trunk;
        self.decorate(&mut r, Some(a_trunk));
        // As any 18x to the caller: reliable (RFC 3262) when its leg wants it.
        self.send_provisional(id, server, r);
        Some((
            session.id,
            side,
            ToneSpec {
                tone,
                law,
                payload_type,
            },
        ))
    }

    /// Stops our tone toward the caller of call `id`, if it plays (the
    /// answer, the callee's early media).
    pub(super) fn ringback_stop(&mut self, id: u64) {
        if let Some(r) = self.ringback.get_mut(&id).filter(|r| r.playing) {
            r.playing = false;
            self.outputs.push_back(Output::Media(MediaOp::Tone {
                id: r.session,
                side: r.side,
                tone: None,
            }));
        }
    }

    /// Call `id` ends: its tone stops (before its session goes).
    pub(super) fn ringback_forget(&mut self, id: u64) {
        self.ringback_stop(id);
        self.ringback.remove(&id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_g711_format_in_the_order_of_the_sdp() {
        let sdp = |m: &str, maps: &str| {
            format!("v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n{m}\r\n{maps}")
        };
        let s = sdp(
            "m=audio 4000 RTP/AVP 18 8 0 101",
            "a=rtpmap:101 telephone-event/8000\r\n",
        );
        assert_eq!(g711_of(s.as_bytes()), Some((8, G711::Pcma)));
        let s = sdp("m=audio 4000 RTP/AVP 0 8", "");
        assert_eq!(g711_of(s.as_bytes()), Some((0, G711::Pcmu)));
        // A dynamic payload type named by its rtpmap.
        let s = sdp("m=audio 4000 RTP/AVP 9 96", "a=rtpmap:96 pcmu/8000\r\n");
        assert_eq!(g711_of(s.as_bytes()), Some((96, G711::Pcmu)));
        // Payload type 0 remapped to something else is not G.711.
        let s = sdp("m=audio 4000 RTP/AVP 0 18", "a=rtpmap:0 opus/48000/2\r\n");
        assert_eq!(g711_of(s.as_bytes()), None);
        let s = sdp("m=audio 4000 RTP/AVP 18 9", "");
        assert_eq!(g711_of(s.as_bytes()), None, "G.729 and G.722 only");
        assert_eq!(g711_of(b"not sdp"), None);
    }

    #[test]
    fn our_answer_mirrors_a_one_way_offer() {
        assert_eq!(answer_direction(Direction::SendRecv), Direction::SendRecv);
        assert_eq!(answer_direction(Direction::RecvOnly), Direction::SendOnly);
        assert_eq!(answer_direction(Direction::SendOnly), Direction::RecvOnly);
    }
}
