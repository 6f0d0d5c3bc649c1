//! How a neighbour of the SBC behaves, without any I/O: the faults a test
//! or a drill puts it in and what it does with each message that reaches
//! it. The virtual world ([`crate::World`]) and the socket peers of
//! `sbc demo` / `sbc drill` both decide with [`react`], so a fault means
//! the same thing in milliseconds of virtual time and on real sockets.

use sip::Message;
use transaction::response_to;

/// The state a neighbour is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fault {
    /// Answers OPTIONS; every other message goes to whoever drives it.
    #[default]
    Up,
    /// Gone, as a crashed host: nothing is received, a stream connection
    /// is refused or reset, a UDP datagram draws ICMP port unreachable
    /// (unless the host is firewalled, see [`crate::World::set_icmp`]).
    Dead,
    /// Alive but shedding load: OPTIONS answered 200, every INVITE answered
    /// `code` at once (with `Retry-After` when set).
    Refuse {
        /// The final status, e.g. 503.
        code: u16,
        /// Seconds for `Retry-After`.
        retry_after: Option<u32>,
    },
    /// Connections open and stay open, nothing is answered (OPTIONS
    /// included); the INVITEs it ignored are kept so that it can answer
    /// them late.
    Silent,
}

/// What a neighbour does with a message that reached it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reaction {
    /// Nothing at all.
    Drop,
    /// Nothing now; keep the INVITE to answer it late.
    Keep,
    /// Answer it with [`refusal`] (`code`, `retry_after`).
    Refuse {
        /// The final status.
        code: u16,
        /// Seconds for `Retry-After`.
        retry_after: Option<u32>,
    },
    /// Answer it with [`options_ok`].
    AnswerOptions,
    /// Hand it to the script or user agent driving the neighbour.
    Deliver,
}

/// The one decision: what a neighbour in `fault` does with `msg`.
pub fn react(fault: Fault, msg: &Message) -> Reaction {
    let method = msg.method_str();
    match fault {
        Fault::Dead => Reaction::Drop,
        Fault::Silent if method == Some("INVITE") => Reaction::Keep,
        Fault::Silent => Reaction::Drop,
        Fault::Refuse { code, retry_after } if method == Some("INVITE") => {
            Reaction::Refuse { code, retry_after }
        }
        // The ACK of a refusal ends its transaction.
        Fault::Refuse { .. } if method == Some("ACK") => Reaction::Drop,
        Fault::Up | Fault::Refuse { .. } if method == Some("OPTIONS") => Reaction::AnswerOptions,
        Fault::Up | Fault::Refuse { .. } => Reaction::Deliver,
    }
}

/// The methods a Microsoft proxy allows (teams-acs-requirements §0).
pub const MICROSOFT_ALLOW: &str = "INVITE,ACK,OPTIONS,CANCEL,BYE,NOTIFY";

/// 200 OK to an OPTIONS, with `Allow` and `Server`.
pub fn options_ok(options: &Message, tag: &str, agent: &str) -> Option<Message> {
    let mut r = response_to(options, 200, "OK", Some(tag)).ok()?;
    r.push_header("Allow", MICROSOFT_ALLOW.as_bytes()).ok()?;
    r.push_header("Server", agent.as_bytes()).ok()?;
    Some(r)
}

/// The refusal of an INVITE: `code` with `Retry-After` when set.
pub fn refusal(
    invite: &Message,
    code: u16,
    retry_after: Option<u32>,
    tag: &str,
    agent: &str,
) -> Option<Message> {
    let mut r = response_to(invite, code, reason_phrase(code), Some(tag)).ok()?;
    r.push_header("Server", agent.as_bytes()).ok()?;
    if let Some(s) = retry_after {
        r.push_header("Retry-After", s.to_string().as_bytes())
            .ok()?;
    }
    Some(r)
}

/// The reason phrase neighbours write for `code`.
pub fn reason_phrase(code: u16) -> &'static str {
    match code {
        100 => "Trying",
        180 => "Ringing",
        183 => "Session Progress",
        200 => "OK",
        408 => "Request Timeout",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        486 => "Busy Here",
        487 => "Request Terminated",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        _ => "Failed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;
    use transaction::Transport;

    fn req(method: &str) -> Message {
        let a: SocketAddr = "192.0.2.1:5060".parse().unwrap();
        let b: SocketAddr = "192.0.2.2:5060".parse().unwrap();
        crate::request(method, a, b, Transport::Udp, "z9hG4bKpeer")
    }

    #[test]
    fn each_fault_reacts_as_documented() {
        let (inv, opt, ack, bye) = (req("INVITE"), req("OPTIONS"), req("ACK"), req("BYE"));
        assert_eq!(react(Fault::Up, &inv), Reaction::Deliver);
        assert_eq!(react(Fault::Up, &opt), Reaction::AnswerOptions);
        assert_eq!(react(Fault::Dead, &opt), Reaction::Drop);
        assert_eq!(react(Fault::Silent, &inv), Reaction::Keep);
        assert_eq!(react(Fault::Silent, &opt), Reaction::Drop);
        let refuse = Fault::Refuse {
            code: 503,
            retry_after: Some(30),
        };
        assert_eq!(
            react(refuse, &inv),
            Reaction::Refuse {
                code: 503,
                retry_after: Some(30)
            }
        );
        assert_eq!(react(refuse, &ack), Reaction::Drop);
        assert_eq!(react(refuse, &opt), Reaction::AnswerOptions);
        assert_eq!(react(refuse, &bye), Reaction::Deliver);
    }

    #[test]
    fn refusal_carries_retry_after_and_options_ok_allow() {
        let r = refusal(&req("INVITE"), 503, Some(30), "t1", "peer/1").unwrap();
        assert_eq!(r.status(), Some(503));
        assert_eq!(r.header_by_name("Retry-After"), Some(&b"30"[..]));
        let o = options_ok(&req("OPTIONS"), "t2", "peer/1").unwrap();
        assert_eq!(o.status(), Some(200));
        assert_eq!(o.header_by_name("Allow"), Some(MICROSOFT_ALLOW.as_bytes()));
    }
}
