//! `multipart/mixed` (and `multipart/related`) message bodies, RFC 2046
//! §5.1 as SIP uses them (RFC 5621): an SDP offer beside a location
//! object (PIDF-LO, RFC 6442) or another part.
//!
//! Parsing borrows the body: each part is its raw header block and its
//! content, so that a part passed on is passed byte for byte. Only the
//! top level is looked into (a nested multipart is one opaque part). The
//! SDP part is the one whose Content-Type is `application/sdp`; a body
//! without one carries no offer.

use std::borrow::Cow;

use sip::{HeaderName, Message};

/// Most parts read in one body (an emergency INVITE has two or three).
const MAX_PARTS: usize = 16;

/// Why a multipart body was refused (the request gets 400 with this as
/// its reason phrase).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum MultipartError {
    /// Content-Type has no usable `boundary` parameter (absent, empty,
    /// longer than 70 characters, or with characters RFC 2046 refuses).
    NoBoundary,
    /// The body never starts a part with the boundary.
    NoParts,
    /// The closing delimiter (`--boundary--`) is missing.
    Unterminated,
    /// A part's headers are not ended by an empty line, or a header line
    /// is not `Name: value`.
    BadPartHeaders,
    /// More parts than the B2BUA reads.
    TooManyParts,
    /// More than one `application/sdp` part: which offer is meant?
    TwoSdpParts,
}

impl MultipartError {
    /// The reason phrase of the 400.
    pub(crate) fn reason(self) -> &'static str {
        match self {
            MultipartError::NoBoundary => "Multipart Body Without Boundary",
            MultipartError::NoParts => "Multipart Body Without Parts",
            MultipartError::Unterminated => "Unterminated Multipart Body",
            MultipartError::BadPartHeaders => "Bad Multipart Part Headers",
            MultipartError::TooManyParts => "Too Many Multipart Parts",
            MultipartError::TwoSdpParts => "More Than One SDP Part",
        }
    }
}

impl std::fmt::Display for MultipartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.reason())
    }
}

/// One part of a multipart body, borrowed from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Part<'a> {
    /// The header lines, each ended by CRLF (or LF), without the empty
    /// line that ends them; empty for a part without headers.
    pub(crate) headers: &'a [u8],
    /// The content, without the line break before the next delimiter.
    pub(crate) body: &'a [u8],
    /// True when the part's Content-Type is `application/sdp`.
    pub(crate) sdp: bool,
}

/// A parsed multipart body: its subtype (`mixed`, `related`) and parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Multipart<'a> {
    pub(crate) subtype: String,
    pub(crate) parts: Vec<Part<'a>>,
}

impl<'a> Multipart<'a> {
    /// The SDP part's content, if there is one.
    pub(crate) fn sdp(&self) -> Option<&'a [u8]> {
        self.parts.iter().find(|p| p.sdp).map(|p| p.body)
    }

    /// The body again with `sdp` as its SDP part (in place of the one it
    /// had, else as a new first part), every other part unchanged and in
    /// order, under a boundary found in none of them. Returns the
    /// Content-Type value and the body. `seed` varies the boundary.
    pub(crate) fn with_sdp(&self, sdp: &[u8], seed: u64) -> (String, Vec<u8>) {
        let mut parts: Vec<(Cow<'_, [u8]>, &[u8])> = Vec::with_capacity(self.parts.len() + 1);
        let sdp_headers: &[u8] = b"Content-Type: application/sdp\r\n";
        let mut placed = false;
        for p in &self.parts {
            if p.sdp {
                if !placed {
                    parts.push((without_length(p.headers), sdp));
                    placed = true;
                }
            } else {
                parts.push((Cow::Borrowed(p.headers), p.body));
            }
        }
        if !placed {
            parts.insert(0, (Cow::Borrowed(sdp_headers), sdp));
        }
        let boundary = fresh_boundary(&parts, seed);
        let mut out = Vec::with_capacity(parts.iter().map(|(h, b)| h.len() + b.len() + 96).sum());
        for (h, b) in &parts {
            out.extend_from_slice(b"--");
            out.extend_from_slice(boundary.as_bytes());
            out.extend_from_slice(b"\r\n");
            // Line by line with CRLF: the same bytes for a part written
            // with CRLF, a readable part for one written with bare LF.
            for l in lines(h) {
                out.extend_from_slice(l);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(b);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"--");
        out.extend_from_slice(boundary.as_bytes());
        out.extend_from_slice(b"--\r\n");
        let ct = format!("multipart/{};boundary={boundary}", self.subtype);
        (ct, out)
    }
}

/// The SDP part's headers without a Content-Length line (its length
/// changes); the others (Content-ID, Content-Disposition) are kept.
fn without_length(h: &[u8]) -> Cow<'_, [u8]> {
    if !lines(h).any(|l| name_is(l, "content-length")) {
        return Cow::Borrowed(h);
    }
    let mut out = Vec::with_capacity(h.len());
    for l in lines(h).filter(|l| !name_is(l, "content-length")) {
        out.extend_from_slice(l);
        out.extend_from_slice(b"\r\n");
    }
    Cow::Owned(out)
}

/// A boundary that occurs in no part (RFC 2046: it must not appear in
/// the encapsulated content).
fn fresh_boundary(parts: &[(Cow<'_, [u8]>, &[u8])], seed: u64) -> String {
    let mut n = seed;
    loop {
        let b = format!("sbc-{n:016x}");
        let taken = parts
            .iter()
            .any(|(h, c)| contains(h, b.as_bytes()) || contains(c, b.as_bytes()));
        if !taken {
            return b;
        }
        n = n.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(hay, needle).is_some()
}

/// True when the message's Content-Type is `multipart/mixed` or
/// `multipart/related` (the kinds read here).
pub(crate) fn is_multipart(m: &Message) -> bool {
    matches!(m.content_type(), Some(Ok(ct)) if ct.kind.eq_ignore_ascii_case("multipart")
        && (ct.subtype.eq_ignore_ascii_case("mixed") || ct.subtype.eq_ignore_ascii_case("related")))
}

/// The message's multipart body: `None` when it is not one (see
/// [`is_multipart`]), else the parts or why they cannot be read.
pub(crate) fn of(m: &Message) -> Option<Result<Multipart<'_>, MultipartError>> {
    if !is_multipart(m) {
        return None;
    }
    let ct = m.header(HeaderName::ContentType)?;
    let ct = sip::MediaType::parse(ct).ok()?;
    let subtype = ct.subtype.to_ascii_lowercase();
    Some(
        boundary(ct.params_raw)
            .and_then(|b| parse(m.body(), &b))
            .map(|parts| Multipart { subtype, parts }),
    )
}

/// The `boundary` parameter of a Content-Type's raw parameters
/// (`;boundary="abc"` or `;boundary=abc`).
pub(crate) fn boundary(params_raw: &[u8]) -> Result<String, MultipartError> {
    let text = String::from_utf8_lossy(params_raw);
    let mut rest = text.as_ref();
    while let Some(i) = rest.find(';') {
        rest = &rest[i + 1..];
        let (name, after) = rest.split_once('=').unwrap_or((rest, ""));
        if !name.trim().eq_ignore_ascii_case("boundary") {
            continue;
        }
        let after = after.trim_start();
        let value = match after.strip_prefix('"') {
            Some(q) => q.split('"').next().unwrap_or(""),
            None => after.split(';').next().unwrap_or("").trim_end(),
        };
        return valid_boundary(value)
            .then(|| value.to_owned())
            .ok_or(MultipartError::NoBoundary);
    }
    Err(MultipartError::NoBoundary)
}

/// RFC 2046 `boundary := 0*69<bchars> bcharsnospace`, 1 to 70 characters.
fn valid_boundary(b: &str) -> bool {
    let bchar = |c: u8| c.is_ascii_alphanumeric() || b"'()+_,-./:=? ".contains(&c);
    (1..=70).contains(&b.len()) && b.bytes().all(bchar) && !b.ends_with(' ')
}

/// The parts of `body` delimited by `--boundary` lines.
pub(crate) fn parse<'a>(body: &'a [u8], boundary: &str) -> Result<Vec<Part<'a>>, MultipartError> {
    let dash = format!("--{boundary}");
    let dash = dash.as_bytes();
    // The first delimiter: at the start of the body or of a line.
    let mut at = delimiter_at(body, 0, dash).ok_or(MultipartError::NoParts)?;
    let mut parts = Vec::new();
    loop {
        let after = at + dash.len();
        if body[after..].starts_with(b"--") {
            break;
        }
        // Transport padding, then the line break that starts the part.
        let mut start = after;
        while body.get(start).is_some_and(|&c| c == b' ' || c == b'\t') {
            start += 1;
        }
        start = match &body[start..] {
            [b'\r', b'\n', ..] => start + 2,
            [b'\n', ..] => start + 1,
            // `--boundaryX` is not this boundary's delimiter.
            _ => return Err(MultipartError::Unterminated),
        };
        let next = delimiter_at(body, start, dash).ok_or(MultipartError::Unterminated)?;
        // The line break before the delimiter belongs to it.
        let mut end = next;
        if end > start && body[end - 1] == b'\n' {
            end -= 1;
            if end > start && body[end - 1] == b'\r' {
                end -= 1;
            }
        }
        if parts.len() == MAX_PARTS {
            return Err(MultipartError::TooManyParts);
        }
        parts.push(part(&body[start..end])?);
        at = next;
    }
    if parts.is_empty() {
        return Err(MultipartError::NoParts);
    }
    if parts.iter().filter(|p| p.sdp).count() > 1 {
        return Err(MultipartError::TwoSdpParts);
    }
    Ok(parts)
}

/// The next `dash` at or after `from` that starts a line (or the body).
fn delimiter_at(body: &[u8], from: usize, dash: &[u8]) -> Option<usize> {
    let mut pos = from;
    while pos <= body.len() {
        let i = pos + memchr::memmem::find(&body[pos..], dash)?;
        if i == 0 || body[i - 1] == b'\n' {
            return Some(i);
        }
        pos = i + 1;
    }
    None
}

/// One part: header lines, an empty line, the content.
fn part(p: &[u8]) -> Result<Part<'_>, MultipartError> {
    let (headers, body) = if let Some(b) = p.strip_prefix(b"\r\n") {
        (&p[..0], b)
    } else if let Some(b) = p.strip_prefix(b"\n") {
        (&p[..0], b)
    } else {
        let crlf = memchr::memmem::find(p, b"\r\n\r\n").map(|i| (i + 2, i + 4));
        let lf = memchr::memmem::find(p, b"\n\n").map(|i| (i + 1, i + 2));
        let (h_end, b_start) = match (crlf, lf) {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => return Err(MultipartError::BadPartHeaders),
        };
        (&p[..h_end], &p[b_start..])
    };
    let mut sdp = false;
    for l in lines(headers) {
        let folded = l.first().is_some_and(|&c| c == b' ' || c == b'\t');
        if folded {
            continue;
        }
        let Some(colon) = memchr::memchr(b':', l) else {
            return Err(MultipartError::BadPartHeaders);
        };
        if colon == 0 {
            return Err(MultipartError::BadPartHeaders);
        }
        if name_is(l, "content-type") {
            sdp = sip::MediaType::parse(&l[colon + 1..]).is_ok_and(|m| m.is_sdp());
        }
    }
    Ok(Part { headers, body, sdp })
}

/// The lines of a header block, without their line breaks.
fn lines(h: &[u8]) -> impl Iterator<Item = &[u8]> {
    h.split(|&c| c == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter(|l| !l.is_empty())
}

/// True when header line `l` is a `name` header (case-insensitive).
fn name_is(l: &[u8], name: &str) -> bool {
    let Some(colon) = memchr::memchr(b':', l) else {
        return false;
    };
    let n = &l[..colon];
    let n = n.strip_suffix(b" ").unwrap_or(n);
    n.eq_ignore_ascii_case(name.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SDP: &str = "v=0\r\no=- 1 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\nm=audio 30000 RTP/AVP 0\r\n";

    /// A PIDF-LO as RFC 5491 §3.4 writes one (a point, a civic address).
    pub(crate) const PIDF: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n\
<presence xmlns=\"urn:ietf:params:xml:ns:pidf\"\r\n    xmlns:gp=\"urn:ietf:params:xml:ns:pidf:geopriv10\"\r\n    xmlns:gml=\"http://www.opengis.net/gml\"\r\n    xmlns:dm=\"urn:ietf:params:xml:ns:pidf:data-model\"\r\n    entity=\"pres:alice@example.com\">\r\n\
  <dm:device id=\"target123-1\">\r\n    <gp:geopriv>\r\n      <gp:location-info>\r\n        <gml:Point srsName=\"urn:ogc:def:crs:EPSG::4326\">\r\n          <gml:pos>52.5200 13.4050</gml:pos>\r\n        </gml:Point>\r\n      </gp:location-info>\r\n      <gp:usage-rules/>\r\n      <gp:method>GPS</gp:method>\r\n    </gp:geopriv>\r\n    <dm:deviceID>mac:00112233445566</dm:deviceID>\r\n    <dm:timestamp>2024-05-01T10:00:00Z</dm:timestamp>\r\n  </dm:device>\r\n</presence>";

    fn body(b: &str) -> String {
        format!(
            "--{b}\r\nContent-Type: application/sdp\r\n\r\n{SDP}\r\n--{b}\r\nContent-Type: application/pidf+xml\r\nContent-ID: <target123@example.com>\r\n\r\n{PIDF}\r\n--{b}--\r\n"
        )
    }

    #[test]
    fn sdp_and_pidf_parts_are_read_byte_for_byte() {
        let b = body("boundary1");
        let parts = parse(b.as_bytes(), "boundary1").unwrap();
        assert_eq!(parts.len(), 2);
        assert!(parts[0].sdp && !parts[1].sdp);
        assert_eq!(parts[0].body, SDP.as_bytes());
        assert_eq!(parts[1].body, PIDF.as_bytes());
        assert_eq!(
            parts[1].headers,
            b"Content-Type: application/pidf+xml\r\nContent-ID: <target123@example.com>\r\n"
        );
    }

    #[test]
    fn boundary_parameter_quoted_or_not() {
        assert_eq!(boundary(b";boundary=abc").unwrap(), "abc");
        assert_eq!(
            boundary(b" ; charset=x; Boundary=\"a b:c\"").unwrap(),
            "a b:c"
        );
        assert_eq!(boundary(b""), Err(MultipartError::NoBoundary));
        assert_eq!(boundary(b";boundary="), Err(MultipartError::NoBoundary));
        let long = format!(";boundary={}", "x".repeat(71));
        assert_eq!(boundary(long.as_bytes()), Err(MultipartError::NoBoundary));
    }

    #[test]
    fn malformed_bodies_are_errors() {
        let b = body("bb");
        let cut = &b[..b.len() - 8];
        assert_eq!(
            parse(cut.as_bytes(), "bb"),
            Err(MultipartError::Unterminated)
        );
        assert_eq!(parse(b"no parts here", "bb"), Err(MultipartError::NoParts));
        assert_eq!(parse(b"--bb--\r\n", "bb"), Err(MultipartError::NoParts));
        assert_eq!(
            parse(
                b"--bb\r\nContent-Type: text/plain\r\nno end of headers\r\n--bb--",
                "bb"
            ),
            Err(MultipartError::BadPartHeaders)
        );
        let two = format!("--bb\r\nContent-Type: application/sdp\r\n\r\n{SDP}\r\n--bb\r\nContent-Type: application/sdp\r\n\r\n{SDP}\r\n--bb--");
        assert_eq!(
            parse(two.as_bytes(), "bb"),
            Err(MultipartError::TwoSdpParts)
        );
        let many: String = (0..=MAX_PARTS)
            .map(|_| "--bb\r\n\r\nx\r\n")
            .collect::<String>()
            + "--bb--";
        assert_eq!(
            parse(many.as_bytes(), "bb"),
            Err(MultipartError::TooManyParts)
        );
        // A longer boundary that starts with ours is not a delimiter.
        assert_eq!(
            parse(b"--bb\r\n\r\nx\r\n--bbx\r\n", "bb"),
            Err(MultipartError::Unterminated)
        );
    }

    #[test]
    fn preamble_epilogue_and_a_part_without_headers() {
        let b = "This is a preamble.\r\n--q\r\n\r\nplain text\r\n--q--\r\nepilogue";
        let parts = parse(b.as_bytes(), "q").unwrap();
        assert_eq!(parts.len(), 1);
        assert!(parts[0].headers.is_empty());
        assert_eq!(parts[0].body, b"plain text");
    }

    #[test]
    fn rebuilt_body_replaces_the_sdp_and_keeps_the_rest() {
        let b = body("boundary1");
        let mp = Multipart {
            subtype: "mixed".into(),
            parts: parse(b.as_bytes(), "boundary1").unwrap(),
        };
        let (ct, out) = mp.with_sdp(b"v=0\r\nnew\r\n", 7);
        assert!(ct.starts_with("multipart/mixed;boundary=sbc-"), "{ct}");
        let bnd = boundary(&ct.as_bytes()["multipart/mixed".len()..]).unwrap();
        let again = parse(&out, &bnd).unwrap();
        assert_eq!(again.len(), 2);
        assert_eq!(again[0].body, b"v=0\r\nnew\r\n");
        assert_eq!(again[1].body, PIDF.as_bytes());
        assert_eq!(again[1].headers, mp.parts[1].headers);
    }

    #[test]
    fn the_sdp_part_keeps_its_headers_but_its_length() {
        let b = format!("--q\r\nContent-Type: application/sdp\r\nContent-Length: 99\r\nContent-ID: <s@x>\r\n\r\n{SDP}\r\n--q--");
        let mp = Multipart {
            subtype: "related".into(),
            parts: parse(b.as_bytes(), "q").unwrap(),
        };
        let (ct, out) = mp.with_sdp(b"v=0\r\n", 3);
        assert!(ct.starts_with("multipart/related;boundary="));
        let bnd = boundary(&ct.as_bytes()["multipart/related".len()..]).unwrap();
        let again = parse(&out, &bnd).unwrap();
        assert_eq!(
            again[0].headers,
            b"Content-Type: application/sdp\r\nContent-ID: <s@x>\r\n"
        );
    }

    #[test]
    fn a_body_without_sdp_gets_ours_first() {
        let b = format!("--z\r\nContent-Type: application/pidf+xml\r\n\r\n{PIDF}\r\n--z--");
        let mp = Multipart {
            subtype: "mixed".into(),
            parts: parse(b.as_bytes(), "z").unwrap(),
        };
        assert!(mp.sdp().is_none());
        let (ct, out) = mp.with_sdp(SDP.as_bytes(), 1);
        let bnd = boundary(&ct.as_bytes()["multipart/mixed".len()..]).unwrap();
        let again = parse(&out, &bnd).unwrap();
        assert!(again[0].sdp && again[0].body == SDP.as_bytes());
        assert_eq!(again[1].body, PIDF.as_bytes());
    }

    /// Every truncation and many one-byte changes of a real body: never a
    /// panic, and whatever parses rebuilds to the same other parts.
    #[test]
    fn damaged_bodies_never_panic_and_round_trip_when_they_parse() {
        let b = body("bnd");
        let check = |bytes: &[u8]| {
            if let Ok(parts) = parse(bytes, "bnd") {
                let mp = Multipart {
                    subtype: "mixed".into(),
                    parts,
                };
                let (ct, out) = mp.with_sdp(b"v=0\r\n", 9);
                let bnd = boundary(&ct.as_bytes()["multipart/mixed".len()..]).unwrap();
                let again = parse(&out, &bnd).unwrap();
                let others = |ps: &[Part<'_>]| -> Vec<Vec<u8>> {
                    ps.iter()
                        .filter(|p| !p.sdp)
                        .map(|p| p.body.to_vec())
                        .collect()
                };
                assert_eq!(others(&again), others(&mp.parts));
            }
        };
        for n in 0..=b.len() {
            check(&b.as_bytes()[..n]);
        }
        let mut bytes = b.clone().into_bytes();
        for i in (0..bytes.len()).step_by(3) {
            for x in [b'-', b'\r', b'\n', b':', 0] {
                let old = bytes[i];
                bytes[i] = x;
                check(&bytes);
                bytes[i] = old;
            }
        }
    }

    #[test]
    fn the_new_boundary_avoids_the_content() {
        let taken = format!("sbc-{:016x}", 5u64);
        let parts: Vec<(Cow<'_, [u8]>, &[u8])> = vec![(Cow::Borrowed(b""), taken.as_bytes())];
        assert_ne!(fresh_boundary(&parts, 5), taken);
    }
}
