//! Emergency calls: which INVITE is one, and the called number of a call.
//!
//! An INVITE is an emergency call when its Request-URI is a `sos` service
//! URN (`urn:service:sos`, `urn:service:sos.police`…, RFC 5031), or when
//! its called number, after the inbound trunk's normalisation, is one of
//! that trunk's emergency numbers ([`TrunkSpec::emergency`]: the
//! configuration's `[emergency] numbers` and the trunk's additions), exactly.
//!
//! An emergency call is never refused for load: not while draining, not
//! at a trunk's `max_calls` or `max_cps` (inbound or on its destinations),
//! and its media may take the relay's reserved ports
//! ([`MediaControl::create_emergency`]). It is counted
//! ([`Counters::emergency_calls`]) and marked in its CDR.

use super::*;

/// The `sos` service URN a Request-URI names, lower case, if any.
pub(super) fn sos_urn(msg: &Message) -> Option<String> {
    let raw = msg.request_uri_raw()?;
    let text = std::str::from_utf8(raw).ok()?.trim();
    let lower = text.to_ascii_lowercase();
    let rest = lower.strip_prefix("urn:service:sos")?;
    // `urn:service:sos` itself or a sub-service (`sos.fire`), nothing else.
    (rest.is_empty() || rest.starts_with('.')).then_some(lower)
}

/// The called number of a new call from trunk `t`, after the trunk's
/// inbound normalisation: the Request-URI's user (or To's), or a `sos`
/// URN in lower case (a `numbers.inbound` rule may turn it into the
/// number the emergency destination expects, or a route match it).
pub(super) fn called_number(msg: &Message, t: &TrunkSpec) -> String {
    let raw = sos_urn(msg)
        .or_else(|| msg.request_uri_raw().and_then(number_of))
        .or_else(|| {
            msg.header(HeaderName::To)
                .and_then(uri_of)
                .and_then(|u| number_of(u.as_bytes()))
        })
        .unwrap_or_default();
    t.numbers_in.called(&raw)
}

/// True when `msg`, a new call from trunk `t` to the (normalised) `called`
/// number, is an emergency call.
pub(super) fn emergency_call(msg: &Message, t: &TrunkSpec, called: &str) -> bool {
    sos_urn(msg).is_some() || t.emergency.iter().any(|n| n == called)
}

impl B2bua {
    /// True when `msg` is an emergency INVITE from trunk `trunk` (an index
    /// into [`Config::trunks`], as [`B2bua::classify`] gives): a `sos`
    /// URN in its Request-URI, or an emergency number of that trunk as
    /// called number after the trunk's normalisation. Anything else —
    /// another method, an in-dialog INVITE (To tag), an unknown trunk — is
    /// not. A shell's admission control (a rate limiter before the B2BUA)
    /// exempts what this says is one; it reads the message only.
    pub fn is_emergency(&self, msg: &Message, trunk: usize) -> bool {
        if msg.method_str() != Some("INVITE") {
            return false;
        }
        let in_dialog = msg
            .to()
            .ok()
            .is_some_and(|t| t.tag().is_some_and(|t| !t.is_empty()));
        if in_dialog {
            return false;
        }
        let Some(t) = self.cfg.trunks.get(trunk) else {
            return false;
        };
        emergency_call(msg, t, &called_number(msg, t))
    }

    /// The trunk a request from `from`, received on listener `local`, is
    /// classified to (as [`B2bua::handle`] does it): its source address,
    /// transport, TLS names and Request-URI host. `None`: no trunk takes it.
    pub fn classify(
        &self,
        msg: &Message,
        from: Peer,
        local: SocketAddr,
        tls_names: Option<&[String]>,
    ) -> Option<usize> {
        // The Request-URI host names the trunk FQDN the peer is calling
        // (Teams and ACS share proxies and certificates).
        let host = msg.request_uri().and_then(Result::ok).and_then(|u| {
            u.as_sip()
                .map(|s| s.host_raw.trim_matches(['[', ']']).to_owned())
        });
        self.classifier.classify_named(
            local,
            from.addr.ip(),
            from.transport,
            tls_names,
            host.as_deref(),
        )
    }
}
