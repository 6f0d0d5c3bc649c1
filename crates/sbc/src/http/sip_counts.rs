//! SIP messages by direction and method (requests) or status code
//! (responses): `sbc_sip_requests_total` and `sbc_sip_responses_total`.
//!
//! Counted on the SIP loop for every message: received ones after the
//! parser accepted them (from the parsed start line), sent ones from their
//! bytes' first line ([`classify`], which reads a few octets and allocates
//! nothing). The counts are fixed arrays indexed by method and by code, so
//! a message costs one array increment; the label set is bounded (15
//! methods with `other`, codes 100–699 with `other`).

use sip::{Message, Method};

/// The methods counted by name, in the order of the metric's samples;
/// every other method is `other` (the last).
pub(crate) const METHODS: [&str; 15] = [
    "INVITE",
    "ACK",
    "BYE",
    "CANCEL",
    "OPTIONS",
    "REGISTER",
    "PRACK",
    "SUBSCRIBE",
    "NOTIFY",
    "PUBLISH",
    "INFO",
    "REFER",
    "MESSAGE",
    "UPDATE",
    "other",
];

const OTHER_METHOD: usize = METHODS.len() - 1;

/// Status codes 100–699 each have a slot; anything else shares the last.
const CODES: usize = 600;

/// `INVITE` → its index in [`METHODS`] (methods are case-sensitive, RFC
/// 3261 §7.1); an unknown token is `other`.
pub(crate) fn method_index(token: &[u8]) -> usize {
    match token {
        b"INVITE" => 0,
        b"ACK" => 1,
        b"BYE" => 2,
        b"CANCEL" => 3,
        b"OPTIONS" => 4,
        b"REGISTER" => 5,
        b"PRACK" => 6,
        b"SUBSCRIBE" => 7,
        b"NOTIFY" => 8,
        b"PUBLISH" => 9,
        b"INFO" => 10,
        b"REFER" => 11,
        b"MESSAGE" => 12,
        b"UPDATE" => 13,
        _ => OTHER_METHOD,
    }
}

fn index_of(m: Method) -> usize {
    match m {
        Method::Invite => 0,
        Method::Ack => 1,
        Method::Bye => 2,
        Method::Cancel => 3,
        Method::Options => 4,
        Method::Register => 5,
        Method::Prack => 6,
        Method::Subscribe => 7,
        Method::Notify => 8,
        Method::Publish => 9,
        Method::Info => 10,
        Method::Refer => 11,
        Method::Message => 12,
        Method::Update => 13,
        _ => OTHER_METHOD,
    }
}

/// What the first line of a message says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FirstLine {
    /// A request: the index of its method in [`METHODS`].
    Request(usize),
    /// A response: its status code (three digits).
    Response(u16),
    /// Neither (empty, a keepalive, not SIP).
    Unknown,
}

/// Reads the first line of `bytes` (leading CR/LF skipped, RFC 3261
/// §7.5): `SIP/2.0 200 …` is a response, `TOKEN SP …` a request. Looks at
/// the first few octets only and allocates nothing.
pub(crate) fn classify(bytes: &[u8]) -> FirstLine {
    let start = bytes
        .iter()
        .position(|&c| c != b'\r' && c != b'\n')
        .unwrap_or(bytes.len());
    let line = &bytes[start..];
    if let Some(rest) = line.strip_prefix(b"SIP/2.0 ") {
        return match rest {
            [a, b, c, tail @ ..]
                if a.is_ascii_digit()
                    && b.is_ascii_digit()
                    && c.is_ascii_digit()
                    && matches!(tail.first(), None | Some(b' ' | b'\r' | b'\n')) =>
            {
                FirstLine::Response(
                    u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0'),
                )
            }
            _ => FirstLine::Unknown,
        };
    }
    // The longest method we name is 9 octets; a longer token is `other`.
    let end = line.iter().take(32).position(|&c| c == b' ').unwrap_or(0);
    if end == 0 {
        return FirstLine::Unknown;
    }
    FirstLine::Request(method_index(&line[..end]))
}

/// Messages by direction (0 in, 1 out) and method or code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SipCounts {
    requests: [[u64; METHODS.len()]; 2],
    /// `[code - 100]` for 100–699, `[CODES]` for any other.
    responses: [[u64; CODES + 1]; 2],
}

impl Default for SipCounts {
    fn default() -> Self {
        SipCounts {
            requests: [[0; METHODS.len()]; 2],
            responses: [[0; CODES + 1]; 2],
        }
    }
}

/// A direction: the `direction` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    In = 0,
    Out = 1,
}

impl Direction {
    pub(crate) const ALL: [Direction; 2] = [Direction::In, Direction::Out];

    pub(crate) fn label(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
        }
    }
}

fn code_slot(code: u16) -> usize {
    match code {
        100..=699 => usize::from(code - 100),
        _ => CODES,
    }
}

impl SipCounts {
    /// A message received (and accepted by the parser).
    pub(crate) fn received(&mut self, m: &Message) {
        match m.status() {
            Some(code) => self.responses[0][code_slot(code)] += 1,
            None => self.requests[0][m.method().map_or(OTHER_METHOD, index_of)] += 1,
        }
    }

    /// A message sent, from its bytes.
    pub(crate) fn sent(&mut self, bytes: &[u8]) {
        match classify(bytes) {
            FirstLine::Request(i) => self.requests[1][i] += 1,
            FirstLine::Response(code) => self.responses[1][code_slot(code)] += 1,
            FirstLine::Unknown => {}
        }
    }

    /// Requests in `dir`, every method (zeros included), in [`METHODS`] order.
    pub(crate) fn requests(
        &self,
        dir: Direction,
    ) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        METHODS
            .iter()
            .zip(self.requests[dir as usize])
            .map(|(m, n)| (*m, n))
    }

    /// Responses in `dir` by code (`None`: outside 100–699), the codes
    /// seen only, in ascending order.
    pub(crate) fn responses(
        &self,
        dir: Direction,
    ) -> impl Iterator<Item = (Option<u16>, u64)> + '_ {
        self.responses[dir as usize]
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(i, n)| {
                let code = u16::try_from(i).ok().filter(|_| i < CODES).map(|c| c + 100);
                (code, *n)
            })
    }

    /// Requests in `dir` of one method (by index).
    #[cfg(test)]
    pub(crate) fn request_count(&self, dir: Direction, method: &str) -> u64 {
        METHODS
            .iter()
            .position(|m| *m == method)
            .map_or(0, |i| self.requests[dir as usize][i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_line_names_requests_and_responses() {
        assert_eq!(
            classify(b"INVITE sip:+4930@x SIP/2.0\r\nVia: x\r\n\r\n"),
            FirstLine::Request(0)
        );
        assert_eq!(
            classify(b"UPDATE sip:x SIP/2.0\r\n"),
            FirstLine::Request(13)
        );
        assert_eq!(classify(b"SIP/2.0 200 OK\r\n"), FirstLine::Response(200));
        assert_eq!(
            classify(b"SIP/2.0 183 Session Progress"),
            FirstLine::Response(183)
        );
        assert_eq!(classify(b"SIP/2.0 699\r\n"), FirstLine::Response(699));
        // Leading CRLFs are skipped (RFC 3261 §7.5).
        assert_eq!(
            classify(b"\r\n\r\nBYE sip:x SIP/2.0\r\n"),
            FirstLine::Request(2)
        );
    }

    #[test]
    fn unknown_methods_are_other_and_garbage_is_unknown() {
        let other = FirstLine::Request(METHODS.len() - 1);
        assert_eq!(classify(b"FOO sip:x SIP/2.0\r\n"), other);
        // Methods are case-sensitive.
        assert_eq!(classify(b"invite sip:x SIP/2.0\r\n"), other);
        assert_eq!(classify(b"SUBSCRIBEX sip:x SIP/2.0\r\n"), other);
        assert_eq!(classify(b""), FirstLine::Unknown);
        assert_eq!(classify(b"\r\n\r\n"), FirstLine::Unknown);
        assert_eq!(classify(b" INVITE"), FirstLine::Unknown);
        assert_eq!(classify(b"SIP/2.0 20 OK\r\n"), FirstLine::Unknown);
        assert_eq!(classify(b"SIP/2.0 2000 OK\r\n"), FirstLine::Unknown);
        assert_eq!(classify(b"SIP/2.0 abc OK\r\n"), FirstLine::Unknown);
        // A token without a space within 32 octets is no request line.
        assert_eq!(classify(&[b'A'; 64]), FirstLine::Unknown);
    }

    #[test]
    fn every_method_name_maps_to_its_index() {
        for (i, m) in METHODS.iter().enumerate().take(METHODS.len() - 1) {
            assert_eq!(method_index(m.as_bytes()), i, "{m}");
            assert_eq!(index_of(Method::from_bytes(m.as_bytes())), i, "{m}");
            let line = format!("{m} sip:x SIP/2.0\r\n");
            assert_eq!(classify(line.as_bytes()), FirstLine::Request(i), "{m}");
        }
    }

    #[test]
    fn counts_by_direction_method_and_code() {
        let mut c = SipCounts::default();
        let req = Message::parse(bytes::Bytes::from_static(
            b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\r\n",
        ))
        .unwrap();
        let resp = Message::parse(bytes::Bytes::from_static(
            b"SIP/2.0 486 Busy Here\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\r\n",
        ))
        .unwrap();
        c.received(&req);
        c.received(&resp);
        c.sent(b"SIP/2.0 200 OK\r\n\r\n");
        c.sent(b"SIP/2.0 200 OK\r\n\r\n");
        c.sent(b"SIP/2.0 999 Odd\r\n\r\n");
        c.sent(b"INVITE sip:x SIP/2.0\r\n\r\n");
        c.sent(b"\r\n\r\n");
        assert_eq!(c.request_count(Direction::In, "OPTIONS"), 1);
        assert_eq!(c.request_count(Direction::Out, "INVITE"), 1);
        assert_eq!(c.requests(Direction::In).count(), METHODS.len());
        assert_eq!(
            c.responses(Direction::In).collect::<Vec<_>>(),
            vec![(Some(486), 1)]
        );
        assert_eq!(
            c.responses(Direction::Out).collect::<Vec<_>>(),
            vec![(Some(200), 2), (None, 1)]
        );
    }
}
