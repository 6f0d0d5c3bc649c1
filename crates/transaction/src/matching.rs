//! Matching messages to transactions: RFC 3261 §17.1.3 (responses to client
//! transactions) and §17.2.3 (requests to server transactions), with the
//! RFC 2543 fallback for requests whose top Via branch lacks the `z9hG4bK`
//! magic cookie (or is the bare cookie, RFC 4475 `badbranch`).

use sip::{HeaderName, Message};

use crate::endpoint::DropReason;

/// How a response finds its client transaction: the branch of the top Via
/// and the CSeq method (§17.1.3). The CANCEL for an INVITE shares its branch
/// and differs by method.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ClientMatch {
    pub(crate) branch: Box<[u8]>,
    pub(crate) method: Box<str>,
}

impl ClientMatch {
    /// The key of a response, or `None` when it has no usable top Via branch
    /// or CSeq (it cannot match anything).
    pub(crate) fn of_response(msg: &Message) -> Option<ClientMatch> {
        let via = msg.top_via().ok()?;
        let branch = via.branch()?;
        let cseq = msg.cseq().ok()?;
        Some(ClientMatch {
            branch: branch.into(),
            method: cseq.method.into(),
        })
    }
}

/// How a request finds its server transaction.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum ServerMatch {
    /// §17.2.3: branch, sent-by of the top Via, method (ACK looks for INVITE).
    Branch {
        branch: Box<[u8]>,
        sent_by: Box<str>,
        method: Box<str>,
    },
    /// RFC 2543 fallback: Request-URI, From tag, Call-ID, CSeq number, top
    /// Via, method. The To tag is compared separately (it differs between
    /// the INVITE and the ACK for a response that added one).
    Legacy {
        request_uri: Box<[u8]>,
        from_tag: Option<Box<[u8]>>,
        call_id: Box<str>,
        cseq: u32,
        top_via: Box<[u8]>,
        method: Box<str>,
    },
}

impl ServerMatch {
    pub(crate) fn is_legacy(&self) -> bool {
        matches!(self, ServerMatch::Legacy { .. })
    }
}

/// What the endpoint reads from a request before acting on it.
#[derive(Debug, Clone)]
pub(crate) struct RequestInfo {
    /// The method as written in the request line.
    pub(crate) method: Box<str>,
    /// The To tag, if any.
    pub(crate) to_tag: Option<Box<[u8]>>,
    base: Base,
}

#[derive(Debug, Clone)]
enum Base {
    Branch {
        branch: Box<[u8]>,
        sent_by: Box<str>,
    },
    Legacy {
        request_uri: Box<[u8]>,
        from_tag: Option<Box<[u8]>>,
        call_id: Box<str>,
        cseq: u32,
        top_via: Box<[u8]>,
    },
}

impl RequestInfo {
    /// Checks what the transaction layer relies on — a parseable top Via,
    /// CSeq whose method is the request's, Call-ID, From and To — and
    /// extracts the matching data.
    pub(crate) fn of(msg: &Message) -> Result<RequestInfo, DropReason> {
        let method = msg.method_str().ok_or(DropReason::BadRequestLine)?;
        let via = msg.top_via().map_err(|_| DropReason::BadVia)?;
        let cseq = msg
            .cseq()
            .map_err(|_| DropReason::BadHeader(HeaderName::CSeq))?;
        if cseq.method != method {
            return Err(DropReason::CSeqMismatch);
        }
        let call_id = msg
            .call_id()
            .map_err(|_| DropReason::BadHeader(HeaderName::CallId))?;
        let from = msg
            .from()
            .map_err(|_| DropReason::BadHeader(HeaderName::From))?;
        let to = msg
            .to()
            .map_err(|_| DropReason::BadHeader(HeaderName::To))?;
        let base = if via.has_rfc3261_branch() {
            let branch = via.branch().unwrap_or_default();
            let mut sent_by = via.host.to_string().to_ascii_lowercase();
            if let Some(p) = via.port {
                sent_by.push(':');
                sent_by.push_str(&p.to_string());
            }
            Base::Branch {
                branch: branch.into(),
                sent_by: sent_by.into(),
            }
        } else {
            Base::Legacy {
                request_uri: msg.request_uri_raw().unwrap_or_default().into(),
                from_tag: from.tag().map(Into::into),
                call_id: call_id.into(),
                cseq: cseq.seq,
                top_via: msg
                    .values(HeaderName::Via)
                    .next()
                    .unwrap_or_default()
                    .into(),
            }
        };
        Ok(RequestInfo {
            method: method.into(),
            to_tag: to.tag().map(Into::into),
            base,
        })
    }

    /// The key of the server transaction for `method` this request would
    /// belong to: its own method for a retransmission, `INVITE` for an ACK
    /// or a CANCEL looking for the INVITE.
    pub(crate) fn key(&self, method: &str) -> ServerMatch {
        match &self.base {
            Base::Branch { branch, sent_by } => ServerMatch::Branch {
                branch: branch.clone(),
                sent_by: sent_by.clone(),
                method: method.into(),
            },
            Base::Legacy {
                request_uri,
                from_tag,
                call_id,
                cseq,
                top_via,
            } => ServerMatch::Legacy {
                request_uri: request_uri.clone(),
                from_tag: from_tag.clone(),
                call_id: call_id.clone(),
                cseq: *cseq,
                top_via: top_via.clone(),
                method: method.into(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn parse(s: &str) -> Message {
        Message::parse(Bytes::from(s.replace('\n', "\r\n"))).unwrap()
    }

    const INVITE: &str = "INVITE sip:b@example.com SIP/2.0\n\
        Via: SIP/2.0/UDP Host.Example.com:5060;branch=z9hG4bK74bf9\n\
        From: <sip:a@example.com>;tag=9fxced76sl\n\
        To: <sip:b@example.com>\n\
        Call-ID: 3848276298220188511@example.com\n\
        CSeq: 1 INVITE\n\
        Content-Length: 0\n\n";

    #[test]
    fn response_key_is_branch_and_cseq_method() {
        let r = parse(
            "SIP/2.0 180 Ringing\nVia: SIP/2.0/UDP h;branch=z9hG4bK74bf9\n\
             From: <sip:a@x>;tag=1\nTo: <sip:b@x>;tag=2\nCall-ID: c\nCSeq: 1 INVITE\n\n",
        );
        let k = ClientMatch::of_response(&r).unwrap();
        assert_eq!(&*k.branch, b"z9hG4bK74bf9");
        assert_eq!(&*k.method, "INVITE");
        let cancel_ok = parse(
            "SIP/2.0 200 OK\nVia: SIP/2.0/UDP h;branch=z9hG4bK74bf9\n\
             From: <sip:a@x>;tag=1\nTo: <sip:b@x>;tag=2\nCall-ID: c\nCSeq: 1 CANCEL\n\n",
        );
        assert_ne!(ClientMatch::of_response(&cancel_ok), Some(k));
        let no_branch = parse("SIP/2.0 200 OK\nVia: SIP/2.0/UDP h\nCSeq: 1 INVITE\n\n");
        assert_eq!(ClientMatch::of_response(&no_branch), None);
    }

    #[test]
    fn server_key_uses_branch_sent_by_and_method() {
        let inv = RequestInfo::of(&parse(INVITE)).unwrap();
        let ServerMatch::Branch {
            branch,
            sent_by,
            method,
        } = inv.key("INVITE")
        else {
            panic!("expected an RFC 3261 key")
        };
        assert_eq!(&*branch, b"z9hG4bK74bf9");
        assert_eq!(
            &*sent_by, "host.example.com:5060",
            "host compared case-insensitively"
        );
        assert_eq!(&*method, "INVITE");
        // The ACK for a non-2xx (same branch) finds the INVITE.
        let ack = parse(
            &INVITE
                .replace("INVITE sip", "ACK sip")
                .replace("1 INVITE", "1 ACK"),
        );
        let ack = RequestInfo::of(&ack).unwrap();
        assert_eq!(ack.key("INVITE"), inv.key("INVITE"));
        assert_eq!(&*ack.method, "ACK");
        // A different sent-by with the same branch is another transaction.
        let other = parse(&INVITE.replace("Host.Example.com:5060", "other.example.com"));
        assert_ne!(
            RequestInfo::of(&other).unwrap().key("INVITE"),
            inv.key("INVITE")
        );
    }

    #[test]
    fn bare_magic_cookie_falls_back_to_rfc2543() {
        // RFC 4475 §3.3.9 badbranch.
        let m = parse(
            "OPTIONS sip:user@example.com SIP/2.0\nTo: sip:user@example.com\n\
             From: sip:caller@example.org;tag=33242\nMax-Forwards: 3\n\
             Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK\nAccept: application/sdp\n\
             Call-ID: badbranch.sadonfo23i420jv0as0derf3j3n\nCSeq: 8 OPTIONS\nl: 0\n\n",
        );
        let info = RequestInfo::of(&m).unwrap();
        let key = info.key("OPTIONS");
        assert!(key.is_legacy());
        let ServerMatch::Legacy {
            request_uri,
            from_tag,
            cseq,
            top_via,
            ..
        } = key
        else {
            unreachable!()
        };
        assert_eq!(&*request_uri, b"sip:user@example.com");
        assert_eq!(from_tag.as_deref(), Some(&b"33242"[..]));
        assert_eq!(cseq, 8);
        assert_eq!(&*top_via, b"SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK");
    }

    #[test]
    fn branchless_rfc2543_invite_and_its_ack_match() {
        // RFC 4475 §3.4.1 inv2543 (no branch at all).
        let inv = "INVITE sip:UserB@example.com SIP/2.0\nVia: SIP/2.0/UDP iftgw.example.com\n\
            From: <sip:+13035551111@ift.client.example.net;user=phone>\n\
            To: sip:+16505552222@ss1.example.net;user=phone\n\
            Call-ID: inv2543.1717@ift.client.example.com\nCSeq: 56 INVITE\n\n";
        let i = RequestInfo::of(&parse(inv)).unwrap();
        assert!(i.key("INVITE").is_legacy());
        assert_eq!(i.to_tag, None);
        let ack = inv
            .replace("INVITE sip", "ACK sip")
            .replace("56 INVITE", "56 ACK")
            .replace("user=phone\nCall", "user=phone;tag=srv1\nCall");
        let a = RequestInfo::of(&parse(&ack)).unwrap();
        assert_eq!(a.key("INVITE"), i.key("INVITE"));
        assert_eq!(a.to_tag.as_deref(), Some(&b"srv1"[..]));
        // Another CSeq is another transaction.
        let next = inv.replace("56 INVITE", "57 INVITE");
        assert_ne!(
            RequestInfo::of(&parse(&next)).unwrap().key("INVITE"),
            i.key("INVITE")
        );
    }

    #[test]
    fn requests_the_layer_cannot_match_are_refused() {
        let no_via = parse(&INVITE.replace(
            "Via: SIP/2.0/UDP Host.Example.com:5060;branch=z9hG4bK74bf9\n",
            "",
        ));
        assert_eq!(RequestInfo::of(&no_via).unwrap_err(), DropReason::BadVia);
        let mismatch = parse(&INVITE.replace("1 INVITE", "1 OPTIONS"));
        assert_eq!(
            RequestInfo::of(&mismatch).unwrap_err(),
            DropReason::CSeqMismatch
        );
        let no_cid = parse(&INVITE.replace("Call-ID: 3848276298220188511@example.com\n", ""));
        assert_eq!(
            RequestInfo::of(&no_cid).unwrap_err(),
            DropReason::BadHeader(HeaderName::CallId)
        );
    }
}
