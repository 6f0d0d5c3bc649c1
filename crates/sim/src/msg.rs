//! Writing the requests scenario tests send.

use std::net::SocketAddr;

use bytes::Bytes;
use sip::Message;
use transaction::Transport;

/// A minimal well-formed request from `from` to `to`: a top Via with
/// `from` as sent-by and the given branch, From with a tag, To without,
/// Call-ID and CSeq derived from the branch (so distinct branches give
/// distinct calls), `Max-Forwards: 70`, no body.
pub fn request(
    method: &str,
    from: SocketAddr,
    to: SocketAddr,
    transport: Transport,
    branch: &str,
) -> Message {
    let text = format!(
        "{method} sip:uas@{to} SIP/2.0\r\n\
         Via: SIP/2.0/{transport} {from};branch={branch}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:uac@{from}>;tag=f-{branch}\r\n\
         To: <sip:uas@{to}>\r\n\
         Call-ID: {branch}@{ip}\r\n\
         CSeq: 1 {method}\r\n\
         Content-Length: 0\r\n\r\n",
        ip = from.ip(),
    );
    // The text above is well-formed for any method token and branch token
    // the tests use; a typo in a test shows up here at once.
    Message::parse(Bytes::from(text)).expect("sim::request writes a well-formed request")
}
