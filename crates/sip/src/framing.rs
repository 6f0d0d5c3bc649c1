//! Framing of SIP over byte streams (TCP, TLS): messages are delimited by
//! the empty line and Content-Length (RFC 3261 §18.3); RFC 5626 §3.5.1 CRLF
//! keepalives are recognised between messages. Memory is bounded by the
//! configured maximum message size.

use bytes::{Buf, Bytes, BytesMut};

use crate::name::HeaderName;
use crate::text::parse_u64;

/// One unit read from a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A complete message (headers and body), ready for [`crate::inspect`].
    Message(Bytes),
    /// A keepalive ping (CRLFCRLF): answer with a single CRLF.
    Ping,
    /// A keepalive pong (a single CRLF) answering our ping.
    Pong,
}

/// What the connection owner must do after a framing error. After either
/// action the stream cannot be resynchronised, so the connection is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FramingAction {
    /// Send this error response (built from [`FramingError::head`]), then close.
    RespondAndClose {
        /// Status code.
        status: u16,
        /// Reason phrase.
        reason: &'static str,
    },
    /// Close without answering.
    Close,
}

/// Why a stream could not be framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FramingErrorKind {
    /// The header section exceeds the maximum message size without ending.
    HeadersTooLarge,
    /// Headers plus declared body exceed the maximum message size.
    MessageTooLarge,
    /// No Content-Length (mandatory on streams).
    MissingContentLength,
    /// Content-Length is not a number.
    BadContentLength,
    /// More than one Content-Length (RFC 4475 mcl01).
    MultipleContentLength,
}

/// A framing error with the action to take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FramingError {
    /// What went wrong.
    pub kind: FramingErrorKind,
    /// What to do.
    pub action: FramingAction,
    /// The header section received (to build the response from), possibly empty.
    pub head: Bytes,
}

/// Splits a byte stream into SIP messages and keepalives.
#[derive(Debug)]
pub struct StreamFramer {
    buf: BytesMut,
    max_message_size: usize,
    failed: bool,
    awaiting_pong: bool,
}

impl StreamFramer {
    /// A framer that refuses messages larger than `max_message_size` bytes.
    pub fn new(max_message_size: usize) -> StreamFramer {
        StreamFramer {
            buf: BytesMut::with_capacity(4096),
            max_message_size,
            failed: false,
            awaiting_pong: false,
        }
    }

    /// Appends bytes read from the stream.
    pub fn push(&mut self, data: &[u8]) {
        if !self.failed {
            self.buf.extend_from_slice(data);
        }
    }

    /// Tells the framer that we sent a ping on this connection, so that the
    /// next lone CRLF is the peer's pong. Otherwise a lone CRLF is either the
    /// start of a ping (the framer waits for the second CRLF) or a stray line
    /// ending before a message (skipped, RFC 3261 §7.5).
    pub fn ping_sent(&mut self) {
        self.awaiting_pong = true;
    }

    /// Bytes buffered and not yet framed.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next frame, `Ok(None)` when more bytes are needed. After an error
    /// the framer stays failed and yields nothing more.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FramingError> {
        if self.failed {
            return Ok(None);
        }
        while self.buf.starts_with(b"\r\n") {
            if self.buf.starts_with(b"\r\n\r\n") {
                self.buf.advance(4);
                return Ok(Some(Frame::Ping));
            }
            if self.awaiting_pong {
                self.awaiting_pong = false;
                self.buf.advance(2);
                return Ok(Some(Frame::Pong));
            }
            if b"\r\n\r".starts_with(&self.buf[..]) {
                // Maybe the first half of a ping: wait for the rest.
                return Ok(None);
            }
            self.buf.advance(2);
        }
        // Stray bare LFs between messages are skipped.
        let lead = self.buf.iter().take_while(|&&c| c == b'\n').count();
        self.buf.advance(lead);
        if self.buf.is_empty() {
            return Ok(None);
        }
        let Some(head_len) = head_end(&self.buf) else {
            if self.buf.len() > self.max_message_size {
                return self.fail(FramingErrorKind::HeadersTooLarge, FramingAction::Close, 0);
            }
            return Ok(None);
        };
        let cl = match content_length(&self.buf[..head_len]) {
            Ok(Some(n)) => n,
            Ok(None) => {
                return self.fail(
                    FramingErrorKind::MissingContentLength,
                    FramingAction::RespondAndClose {
                        status: 400,
                        reason: "Missing Content-Length",
                    },
                    head_len,
                )
            }
            Err(kind) => {
                let reason = if kind == FramingErrorKind::MultipleContentLength {
                    "Multiple Content-Length headers"
                } else {
                    "Bad Content-Length header"
                };
                return self.fail(
                    kind,
                    FramingAction::RespondAndClose {
                        status: 400,
                        reason,
                    },
                    head_len,
                );
            }
        };
        let total = head_len.saturating_add(cl);
        if total > self.max_message_size {
            return self.fail(
                FramingErrorKind::MessageTooLarge,
                FramingAction::RespondAndClose {
                    status: 413,
                    reason: "Message Too Large",
                },
                head_len,
            );
        }
        if self.buf.len() < total {
            return Ok(None);
        }
        Ok(Some(Frame::Message(self.buf.split_to(total).freeze())))
    }

    fn fail(
        &mut self,
        kind: FramingErrorKind,
        action: FramingAction,
        head_len: usize,
    ) -> Result<Option<Frame>, FramingError> {
        self.failed = true;
        let head = self.buf.split_to(head_len).freeze();
        self.buf = BytesMut::new();
        Err(FramingError { kind, action, head })
    }
}

/// Length of the header section including the empty line, if complete. Lines
/// end in LF or CRLF, and the empty line is LF or CRLF, exactly as
/// `Message::parse` reads them (so framer and parser agree on mixed endings).
fn head_end(b: &[u8]) -> Option<usize> {
    let mut line_start = 0;
    for nl in memchr::memchr_iter(b'\n', b) {
        let line = &b[line_start..nl];
        if line_start > 0 && (line.is_empty() || line == b"\r") {
            return Some(nl + 1);
        }
        line_start = nl + 1;
    }
    None
}

/// Finds Content-Length (long or compact form) in a header section.
fn content_length(head: &[u8]) -> Result<Option<usize>, FramingErrorKind> {
    let mut found = None;
    for line in head.split(|&c| c == b'\n').skip(1) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = memchr::memchr(b':', line) else {
            continue;
        };
        let name = crate::text::trim_lws(&line[..colon]);
        if HeaderName::from_bytes(name) != HeaderName::ContentLength
            || line[0] == b' '
            || line[0] == b'\t'
        {
            continue;
        }
        let v = crate::text::trim_lws(&line[colon + 1..]);
        let n = parse_u64(v, u64::from(u32::MAX)).ok_or(FramingErrorKind::BadContentLength)?;
        if found.is_some() {
            return Err(FramingErrorKind::MultipleContentLength);
        }
        found = Some(n as usize);
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPTIONS: &[u8] =
        b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nl: 5\r\n\r\nhello";

    #[test]
    fn frames_messages_split_anywhere() {
        let mut stream = Vec::new();
        stream.extend_from_slice(b"\r\n\r\n");
        stream.extend_from_slice(OPTIONS);
        stream.extend_from_slice(OPTIONS);
        stream.extend_from_slice(b"\r\n");
        for chunk in [1, 3, 7, 64, 1000] {
            let mut f = StreamFramer::new(4096);
            let mut out = Vec::new();
            for c in stream.chunks(chunk) {
                f.push(c);
                while let Some(fr) = f.next_frame().unwrap() {
                    if matches!(fr, Frame::Message(_)) && out.len() == 2 {
                        f.ping_sent();
                    }
                    out.push(fr);
                }
            }
            assert_eq!(out.len(), 4, "chunk {chunk}: {out:?}");
            assert_eq!(out[0], Frame::Ping);
            assert_eq!(out[1], Frame::Message(Bytes::from_static(OPTIONS)));
            assert_eq!(out[2], Frame::Message(Bytes::from_static(OPTIONS)));
            assert_eq!(out[3], Frame::Pong);
            assert_eq!(f.buffered(), 0);
        }
    }

    #[test]
    fn header_end_with_mixed_line_endings_matches_the_parser() {
        // Found by fuzz target sip_stream_framing: LF-terminated headers, then a CRLF empty line.
        let mut f = StreamFramer::new(4096);
        f.push(b"SIP/2.0 200\nContent-Length:5\n\r\nhello");
        let Some(Frame::Message(m)) = f.next_frame().unwrap() else {
            panic!()
        };
        assert_eq!(&m[..], b"SIP/2.0 200\nContent-Length:5\n\r\nhello");
        assert_eq!(crate::Message::parse(m).unwrap().body(), b"hello");
    }

    #[test]
    fn stray_crlf_before_a_message_is_skipped() {
        let mut f = StreamFramer::new(4096);
        f.push(b"\r\n");
        assert_eq!(f.next_frame().unwrap(), None);
        f.push(OPTIONS);
        assert_eq!(
            f.next_frame().unwrap(),
            Some(Frame::Message(Bytes::from_static(OPTIONS)))
        );
    }

    #[test]
    fn missing_and_conflicting_content_length() {
        let mut f = StreamFramer::new(4096);
        f.push(b"OPTIONS sip:a@b SIP/2.0\r\nVia: x\r\n\r\n");
        let e = f.next_frame().unwrap_err();
        assert_eq!(e.kind, FramingErrorKind::MissingContentLength);
        assert!(matches!(
            e.action,
            FramingAction::RespondAndClose { status: 400, .. }
        ));
        assert!(f.next_frame().unwrap().is_none());

        let mut f = StreamFramer::new(4096);
        f.push(b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 13\r\nl: 5\r\n\r\nxxxxx");
        assert_eq!(
            f.next_frame().unwrap_err().kind,
            FramingErrorKind::MultipleContentLength
        );

        let mut f = StreamFramer::new(4096);
        f.push(b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: -999\r\n\r\n");
        assert_eq!(
            f.next_frame().unwrap_err().kind,
            FramingErrorKind::BadContentLength
        );
    }

    #[test]
    fn size_limits_bound_memory() {
        let mut f = StreamFramer::new(1024);
        f.push(b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 100000\r\n\r\n");
        let e = f.next_frame().unwrap_err();
        assert_eq!(
            e.action,
            FramingAction::RespondAndClose {
                status: 413,
                reason: "Message Too Large"
            }
        );

        let mut f = StreamFramer::new(1024);
        for _ in 0..100 {
            f.push(b"X-Endless: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
            if let Err(e) = f.next_frame() {
                assert_eq!(e.kind, FramingErrorKind::HeadersTooLarge);
                assert_eq!(e.action, FramingAction::Close);
                assert_eq!(f.buffered(), 0);
                return;
            }
        }
        panic!("never refused an endless header section");
    }
}
