//! Messages the transaction layer writes itself: responses (100 Trying, 200
//! for CANCEL, 481), the ACK for a non-2xx final (§17.1.1.3) and CANCEL
//! (§9.1). All copy header values from the messages they answer or follow.

use std::borrow::Cow;

use sip::{HeaderName, Message, NameAddr};

use crate::endpoint::TxError;

/// Header values may be folded (CRLF + whitespace); the editing API refuses
/// CR and LF, so folds become one space.
fn unfold(v: &[u8]) -> Cow<'_, [u8]> {
    if !v.iter().any(|&c| c == b'\r' || c == b'\n') {
        return Cow::Borrowed(v);
    }
    let mut out = Vec::with_capacity(v.len());
    let mut in_fold = false;
    for &c in v {
        if matches!(c, b'\r' | b'\n' | b' ' | b'\t') && (in_fold || c == b'\r' || c == b'\n') {
            if !in_fold {
                out.push(b' ');
            }
            in_fold = true;
        } else {
            in_fold = false;
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn push(m: &mut Message, name: HeaderName, value: &[u8]) -> Result<(), TxError> {
    m.push_header(name.as_str(), &unfold(value))
        .map_err(TxError::Build)
}

/// A response to `request` as RFC 3261 §8.2.6 builds it: every Via, From,
/// To, Call-ID and CSeq copied, `to_tag` added to To when it has no tag
/// (never on a 100), Timestamp copied on a 100 (§8.2.6.1), `Content-Length: 0`.
/// The TU adds Contact, Record-Route, a body … with the `sip` editing API.
pub fn response_to(
    request: &Message,
    status: u16,
    reason: &str,
    to_tag: Option<&str>,
) -> Result<Message, TxError> {
    if !request.is_request() {
        return Err(TxError::WrongKind);
    }
    let mut r = Message::new_response(status, reason).map_err(TxError::Build)?;
    for h in request.headers() {
        match h.name {
            HeaderName::Via | HeaderName::From | HeaderName::CallId | HeaderName::CSeq => {
                push(&mut r, h.name, h.value)?;
            }
            HeaderName::Timestamp if status == 100 => push(&mut r, h.name, h.value)?,
            HeaderName::To => {
                let has_tag = NameAddr::parse(h.value).is_ok_and(|n| n.tag().is_some());
                match to_tag {
                    Some(tag) if !has_tag && status > 100 => {
                        let mut v = unfold(h.value).into_owned();
                        v.extend_from_slice(b";tag=");
                        v.extend_from_slice(tag.as_bytes());
                        push(&mut r, h.name, &v)?;
                    }
                    _ => push(&mut r, h.name, h.value)?,
                }
            }
            _ => {}
        }
    }
    push(&mut r, HeaderName::ContentLength, b"0")?;
    Ok(r)
}

/// The headers an ACK or CANCEL copies from the INVITE (§17.1.1.3, §9.1):
/// Request-URI, top Via only, Route, From, Call-ID, CSeq number; `to` is
/// the To value to use.
fn follow_up(invite: &Message, method: &str, to: &[u8]) -> Result<Message, TxError> {
    let bad = |n| TxError::BadHeader(n);
    let uri = invite.request_uri_raw().ok_or(TxError::WrongKind)?;
    let mut m = Message::new_request(method, uri).map_err(TxError::Build)?;
    let via = invite
        .values(HeaderName::Via)
        .next()
        .ok_or(bad(HeaderName::Via))?;
    push(&mut m, HeaderName::Via, via)?;
    for h in invite.headers().filter(|h| h.name == HeaderName::Route) {
        push(&mut m, HeaderName::Route, h.value)?;
    }
    push(&mut m, HeaderName::MaxForwards, b"70")?;
    let from = invite
        .header(HeaderName::From)
        .ok_or(bad(HeaderName::From))?;
    push(&mut m, HeaderName::From, from)?;
    push(&mut m, HeaderName::To, to)?;
    let call_id = invite
        .header(HeaderName::CallId)
        .ok_or(bad(HeaderName::CallId))?;
    push(&mut m, HeaderName::CallId, call_id)?;
    let seq = invite.cseq().map_err(|_| bad(HeaderName::CSeq))?.seq;
    push(
        &mut m,
        HeaderName::CSeq,
        format!("{seq} {method}").as_bytes(),
    )?;
    push(&mut m, HeaderName::ContentLength, b"0")?;
    Ok(m)
}

/// The ACK for a non-2xx final `response` to `invite` (§17.1.1.3): To from
/// the response (with its tag), everything else from the INVITE.
pub(crate) fn ack_for(invite: &Message, response: &Message) -> Result<Message, TxError> {
    let to = response
        .header(HeaderName::To)
        .ok_or(TxError::BadHeader(HeaderName::To))?;
    follow_up(invite, "ACK", to)
}

/// The CANCEL for `invite` (§9.1): To from the INVITE.
pub(crate) fn cancel_for(invite: &Message) -> Result<Message, TxError> {
    let to = invite
        .header(HeaderName::To)
        .ok_or(TxError::BadHeader(HeaderName::To))?;
    follow_up(invite, "CANCEL", to)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn parse(s: &str) -> Message {
        Message::parse(Bytes::from(s.replace('\n', "\r\n"))).unwrap()
    }

    const INVITE: &str = "INVITE sip:bob@biloxi.example.com SIP/2.0\n\
        Via: SIP/2.0/UDP sbc.example.com:5060;branch=z9hG4bKnashds8\n\
        Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds\n\
        Route: <sip:p1.example.com;lr>\nRoute: <sip:p2.example.com;lr>\n\
        Max-Forwards: 69\n\
        From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\n\
        To: Bob <sip:bob@biloxi.example.com>\n\
        Call-ID: a84b4c76e66710@pc33.atlanta.example.com\n\
        CSeq: 314159 INVITE\nTimestamp: 54\n\
        Contact: <sip:alice@pc33.atlanta.example.com>\n\
        Content-Type: application/sdp\nContent-Length: 4\n\nv=0\n";

    #[test]
    fn response_copies_the_dialog_headers_and_adds_the_tag() {
        let inv = parse(INVITE);
        let r = response_to(&inv, 486, "Busy Here", Some("xyz")).unwrap();
        let r = Message::parse(r.to_bytes()).unwrap();
        assert_eq!(r.status(), Some(486));
        assert_eq!(r.via().count(), 2);
        assert_eq!(r.to().unwrap().tag(), Some(&b"xyz"[..]));
        assert_eq!(r.from().unwrap().tag(), Some(&b"1928301774"[..]));
        assert_eq!(r.cseq().unwrap().seq, 314159);
        assert_eq!(r.header(HeaderName::Timestamp), None);
        assert_eq!(r.body(), b"");
        let trying = response_to(&inv, 100, "Trying", Some("xyz")).unwrap();
        assert_eq!(trying.to().unwrap().tag(), None, "no tag on 100");
        assert_eq!(trying.header(HeaderName::Timestamp), Some(&b"54"[..]));
        assert_eq!(
            response_to(&r, 200, "OK", None).unwrap_err(),
            TxError::WrongKind
        );
    }

    #[test]
    fn ack_for_non_2xx_follows_17_1_1_3() {
        let inv = parse(INVITE);
        let resp = response_to(&inv, 486, "Busy Here", Some("srv")).unwrap();
        let ack = Message::parse(ack_for(&inv, &resp).unwrap().to_bytes()).unwrap();
        assert_eq!(ack.method_str(), Some("ACK"));
        assert_eq!(
            ack.request_uri_raw(),
            Some(&b"sip:bob@biloxi.example.com"[..])
        );
        let vias: Vec<_> = ack.via().collect();
        assert_eq!(vias.len(), 1, "only the top Via");
        assert_eq!(vias[0].unwrap().branch(), Some(&b"z9hG4bKnashds8"[..]));
        assert_eq!(ack.routes().count(), 2);
        assert_eq!(ack.to().unwrap().tag(), Some(&b"srv"[..]));
        let cseq = ack.cseq().unwrap();
        assert_eq!((cseq.seq, cseq.method), (314159, "ACK"));
        assert_eq!(ack.body(), b"");
    }

    #[test]
    fn cancel_follows_9_1() {
        let inv = parse(INVITE);
        let c = Message::parse(cancel_for(&inv).unwrap().to_bytes()).unwrap();
        assert_eq!(c.method_str(), Some("CANCEL"));
        assert_eq!(c.request_uri_raw(), inv.request_uri_raw());
        assert_eq!(c.call_id().unwrap(), inv.call_id().unwrap());
        assert_eq!(c.to().unwrap().tag(), None);
        assert_eq!(c.from().unwrap().tag(), Some(&b"1928301774"[..]));
        assert_eq!(c.top_via().unwrap().branch(), Some(&b"z9hG4bKnashds8"[..]));
        assert_eq!(c.via().count(), 1);
        assert_eq!(c.routes().count(), 2);
        assert_eq!(c.cseq().unwrap().method, "CANCEL");
    }

    #[test]
    fn folded_values_are_unfolded() {
        assert_eq!(&*unfold(b"a,\r\n  b"), b"a, b");
        assert_eq!(&*unfold(b"plain value"), b"plain value");
    }
}
