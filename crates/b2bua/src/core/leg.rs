use super::*;

impl Leg {
    /// A leg of `trunk` facing relay side `side`, reached at `peer`, with
    /// the dialog's Call-ID, our tag and our Contact; everything else empty
    /// (callers set what they know with struct update syntax).
    pub(super) fn new(
        trunk: usize,
        side: Side,
        peer: Peer,
        call_id: String,
        local_tag: String,
        contact: String,
    ) -> Leg {
        Leg {
            trunk,
            side,
            peer,
            peer_index: None,
            uac: false,
            call_id,
            local_tag,
            remote_tag: None,
            local_uri: String::new(),
            remote_uri: String::new(),
            local_cseq: 0,
            remote_target: None,
            route_set: Vec::new(),
            contact,
            state: LegState::Trying,
            invite: None,
            ack: None,
            acked: false,
            ok: None,
            media: PartyMedia::default(),
            session_expires: None,
            sbc_refreshes: false,
            refreshing: false,
            rel: None,
            attempt: None,
        }
    }
}

/// The URI of the first Contact of a message (the remote target).
pub(super) fn contact_uri(m: &Message) -> Option<String> {
    m.contacts().filter_map(Result::ok).find_map(|c| match c {
        sip::Contact::Addr(n) => Some(String::from_utf8_lossy(n.uri_raw).into_owned()),
        sip::Contact::Star => None,
    })
}

/// What a new UAS leg is made of (from the request that created it).
pub(super) fn uas_leg(
    req: &Message,
    from: Peer,
    trunk: usize,
    side: Side,
    tag: String,
    contact: String,
) -> Leg {
    let route_set = req
        .values(HeaderName::RecordRoute)
        .map(|v| String::from_utf8_lossy(v).trim().to_owned())
        .collect();
    let remote_target = contact_uri(req);
    Leg {
        remote_tag: req.header(HeaderName::From).and_then(tag_of),
        local_uri: req
            .header(HeaderName::To)
            .map(without_tag)
            .unwrap_or_default(),
        remote_uri: req
            .header(HeaderName::From)
            .map(without_tag)
            .unwrap_or_default(),
        remote_target,
        route_set,
        ..Leg::new(
            trunk,
            side,
            from,
            req.call_id().unwrap_or("").to_owned(),
            tag,
            contact,
        )
    }
}

/// The session interval a request asks for, when the sender supports
/// session timers (RFC 4028), raised to 90 s at least.
pub(super) fn session_interval(req: &Message) -> Option<u32> {
    let se = header_by_name(req, "Session-Expires")
        .or_else(|| header_by_name(req, "x"))
        .and_then(|v| leading_number(&v))?;
    Some(se.max(90))
}
