//! DTMF toward a trunk that takes it as SIP INFO (`TrunkSpec::dtmf` =
//! [`DtmfMode::Info`]): the relay reports every RFC 4733 telephone-event
//! that ends ([`Input::Dtmf`], once per event however many end packets
//! came); when the other party of that call is on such a trunk, the SBC
//! sends it an INFO in its dialog with `application/dtmf-relay`
//! (`Signal=5\r\nDuration=160\r\n`, the duration in milliseconds), and the
//! SDP toward such a trunk carries no `telephone-event` format, so that
//! its party neither expects nor sends RFC 4733 (the relay drops the
//! events it was not offered). Toward every other trunk events stay in the
//! media, renumbered by the relay to the payload type each party declared.

use super::*;

use media::payload::TelephoneEvent;
use trunk::DtmfMode;

/// The `Signal=` value of an event: `0`–`9`, `*`, `#`, `A`–`D`, and `16`
/// for a flash; `None` for the other RFC 4733 events (tones, not keys).
fn signal(event: u8) -> Option<String> {
    match event {
        16 => Some("16".into()),
        e => TelephoneEvent::dtmf_char(e).map(String::from),
    }
}

/// The body of a DTMF INFO (`application/dtmf-relay`).
pub(super) fn dtmf_relay_body(event: u8, duration: u16, clock_rate: u32) -> Option<String> {
    let s = signal(event)?;
    let ms = u64::from(duration) * 1000 / u64::from(clock_rate.max(1));
    Some(format!("Signal={s}\r\nDuration={ms}\r\n"))
}

impl B2bua {
    /// A telephone-event ended on side `side` of relay session `session`.
    pub(super) fn on_dtmf(
        &mut self,
        session: u64,
        side: Side,
        event: u8,
        duration: u16,
        clock_rate: u32,
    ) {
        let Some(call) = self
            .calls
            .values()
            .find(|c| c.session.is_some_and(|s| s.id == session))
        else {
            return;
        };
        let id = call.id;
        if call.state != CallState::Answered {
            return;
        }
        let parties = [Some(call.a), call.b];
        let Some(to) = parties
            .into_iter()
            .flatten()
            .find(|&l| call.legs[l].side != side)
        else {
            return;
        };
        let leg = &call.legs[to];
        let trunk = leg.trunk;
        if leg.state != LegState::Confirmed || self.cfg.trunks[trunk].dtmf != DtmfMode::Info {
            return;
        }
        let Some(body) = dtmf_relay_body(event, duration, clock_rate) else {
            return;
        };
        let transport = leg.peer.transport;
        let via = self.via(trunk, transport);
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let leg = &mut call.legs[to];
        leg.local_cseq += 1;
        let Some(mut m) = dialog_request(leg, "INFO", leg.local_cseq, &via) else {
            return;
        };
        let _ = m.set_body(Some("application/dtmf-relay"), body.as_bytes());
        let peer = leg.peer;
        self.decorate(&mut m, Some(trunk));
        let peer = self.in_dialog_peer(trunk, &mut m, peer);
        match self.ep.send_request(self.now, m, peer) {
            Ok(k) => {
                self.clients.insert(k, Pending::Fire);
                self.counters.dtmf_info += 1;
                tracing::debug!(call = id, event, "DTMF sent as SIP INFO");
            }
            Err(e) => tracing::info!(call = id, %e, "DTMF INFO not sent"),
        }
    }
}

/// Toward a trunk that takes DTMF as SIP INFO: the `telephone-event`
/// formats of an SDP body's audio streams are removed (a stream that would
/// be left without a voice codec keeps them: the far end answers as it can).
pub(super) fn strip_events_toward(m: &mut Message, t: &TrunkSpec) {
    if t.dtmf != DtmfMode::Info || m.body().is_empty() {
        return;
    }
    let sdp = header_text(m, HeaderName::ContentType)
        .is_some_and(|ct| ct.trim().eq_ignore_ascii_case("application/sdp"));
    if !sdp {
        return;
    }
    let Ok(mut sd) = sdp::SessionDescription::parse(m.body()) else {
        return;
    };
    let mut dropped = 0;
    for media in sd.media_mut() {
        if media.media_type() != Some("audio") {
            continue;
        }
        let formats = md::payload_of(media).formats;
        let events: Vec<String> = formats
            .iter()
            .filter(|f| f.is_telephone_event())
            .map(|f| f.pt.to_string())
            .collect();
        if events.is_empty() || formats.len() == events.len() {
            continue;
        }
        dropped += media
            .retain_formats(|f| !events.iter().any(|e| e == f))
            .unwrap_or(0);
    }
    if dropped > 0 {
        let _ = m.set_body(Some("application/sdp"), &sd.to_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtmf_relay_bodies_name_the_key_and_its_milliseconds() {
        assert_eq!(
            dtmf_relay_body(1, 1280, 8000).as_deref(),
            Some("Signal=1\r\nDuration=160\r\n")
        );
        assert_eq!(
            dtmf_relay_body(10, 800, 8000).as_deref(),
            Some("Signal=*\r\nDuration=100\r\n")
        );
        assert_eq!(
            dtmf_relay_body(11, 1600, 16000).as_deref(),
            Some("Signal=#\r\nDuration=100\r\n")
        );
        assert_eq!(
            dtmf_relay_body(16, 0, 8000).as_deref(),
            Some("Signal=16\r\nDuration=0\r\n")
        );
        assert_eq!(dtmf_relay_body(32, 160, 8000), None, "a tone, not a key");
        assert!(dtmf_relay_body(5, 160, 0).is_some(), "no division by zero");
    }
}
