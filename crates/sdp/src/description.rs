//! The session description (session part + media sections), its typed
//! accessors and the relay's editing operations.

use std::fmt;
use std::net::IpAddr;

use crate::error::{EditError, ParseError};
use crate::line::{Attribute, Line};
use crate::parse::{self, ParseLimits};
use crate::types::{
    connection_text, fields, Bandwidth, Candidate, Connection, Crypto, Direction, Fmtp, MediaLine,
    Origin, RtcpAttribute, RtpMap, ICE_ATTRIBUTES,
};

/// A parsed session description: the session-level lines (everything before
/// the first `m=` line) and the media sections, each line kept as received.
///
/// Methods without a suffix act on the session level only; the ones named
/// `…_everywhere` act on the session level and every media section. Media
/// sections are reached through [`SessionDescription::media`] and
/// [`SessionDescription::media_mut`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    session: Vec<Line>,
    media: Vec<MediaDescription>,
}

/// One media section: its `m=` line and the lines after it up to the next
/// `m=` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaDescription {
    /// Invariant: never empty; `lines[0]` is the `m=` line.
    lines: Vec<Line>,
}

// ---------------------------------------------------------------------------
// Helpers shared by the session level and media sections.

fn attributes(lines: &[Line]) -> impl Iterator<Item = Attribute<'_>> {
    lines.iter().filter_map(Line::as_attribute)
}

fn attribute_values<'a>(lines: &'a [Line], name: &'a str) -> impl Iterator<Item = Option<&'a str>> {
    lines.iter().filter_map(move |l| l.attribute_named(name))
}

fn first_value<'a>(lines: &'a [Line], name: &str) -> Option<&'a str> {
    lines
        .iter()
        .filter_map(|l| l.attribute_named(name))
        .flatten()
        .next()
}

fn direction_of(lines: &[Line]) -> Option<Direction> {
    attributes(lines)
        .filter(|a| a.value.is_none())
        .find_map(|a| Direction::from_name(a.name))
}

fn is_direction_line(l: &Line) -> bool {
    l.as_attribute()
        .is_some_and(|a| a.value.is_none() && Direction::from_name(a.name).is_some())
}

fn remove_where(lines: &mut Vec<Line>, keep_first: usize, pred: impl Fn(&Line) -> bool) -> usize {
    let before = lines.len();
    let mut i = 0;
    lines.retain(|l| {
        let keep = i < keep_first || !pred(l);
        i += 1;
        keep
    });
    before - lines.len()
}

fn is_attribute_named(l: &Line, name: &str) -> bool {
    l.attribute_named(name).is_some()
}

/// Replaces the first line matching `pred` with `new` and removes any later
/// matches; appends `new` when nothing matches.
fn replace_or_append(
    lines: &mut Vec<Line>,
    keep_first: usize,
    pred: impl Fn(&Line) -> bool,
    new: Line,
) {
    match lines.iter().skip(keep_first).position(&pred) {
        Some(i) => {
            let i = i + keep_first;
            lines[i] = new;
            let mut j = 0;
            lines.retain(|l| {
                let keep = j <= i || !pred(l);
                j += 1;
                keep
            });
        }
        None => lines.push(new),
    }
}

fn remove_ice_lines(lines: &mut Vec<Line>, keep_first: usize) -> usize {
    remove_where(lines, keep_first, |l| {
        l.as_attribute().is_some_and(|a| {
            ICE_ATTRIBUTES
                .iter()
                .any(|n| a.name.eq_ignore_ascii_case(n))
        })
    })
}

/// A token-like word: visible ASCII, no spaces, not empty.
fn check_word(s: &str, what: &'static str) -> Result<(), EditError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(EditError::InvalidValue { what });
    }
    Ok(())
}

/// Free text on one line: no CR, LF or NUL.
fn check_text(s: &str, what: &'static str) -> Result<(), EditError> {
    if s.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
        return Err(EditError::InvalidValue { what });
    }
    Ok(())
}

fn check_attribute_name(name: &str) -> Result<(), EditError> {
    check_word(name, "attribute name")?;
    if name.contains(':') {
        return Err(EditError::InvalidValue {
            what: "attribute name",
        });
    }
    Ok(())
}

// ---------------------------------------------------------------------------

impl SessionDescription {
    /// Parses a description with the default [`ParseLimits`]. Lines may end
    /// in CRLF or LF. See [`ParseError`] for what is refused; anything else is
    /// accepted and kept, including fragments without `v=` (Teams documents
    /// print SDP that way) and lines that do not parse.
    pub fn parse(input: &[u8]) -> Result<Self, ParseError> {
        parse::parse(input, &ParseLimits::default())
    }

    /// Parses a description within the given bounds.
    pub fn parse_with(input: &[u8], limits: &ParseLimits) -> Result<Self, ParseError> {
        parse::parse(input, limits)
    }

    pub(crate) fn from_parts(session: Vec<Line>, media: Vec<MediaDescription>) -> Self {
        Self { session, media }
    }

    // ----- printing -----

    /// Appends the description to `out`, every line followed by CRLF, in the
    /// original order.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.reserve(self.printed_len());
        for line in self
            .session
            .iter()
            .chain(self.media.iter().flat_map(|m| m.lines.iter()))
        {
            out.extend_from_slice(line.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }

    /// The printed description (every line followed by CRLF). Byte-exact with
    /// the input when it used CRLF and nothing was edited.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_to(&mut out);
        out
    }

    /// The length in bytes of [`SessionDescription::to_bytes`], e.g. for a
    /// Content-Length header.
    pub fn printed_len(&self) -> usize {
        self.lines().map(|l| l.as_bytes().len() + 2).sum()
    }

    // ----- structure -----

    /// Every line, session part first, then each media section in order.
    pub fn lines(&self) -> impl Iterator<Item = &Line> {
        self.session
            .iter()
            .chain(self.media.iter().flat_map(|m| m.lines.iter()))
    }

    /// The session-level lines (before the first `m=` line).
    pub fn session_lines(&self) -> &[Line] {
        &self.session
    }

    /// The media sections, in order.
    pub fn media(&self) -> &[MediaDescription] {
        &self.media
    }

    /// The media sections, for editing. Sections cannot be added, removed or
    /// reordered: an answer must keep the offer's m-line order (RFC 3264 §6).
    pub fn media_mut(&mut self) -> &mut [MediaDescription] {
        &mut self.media
    }

    // ----- typed session-level views -----

    /// The `v=` value.
    pub fn version(&self) -> Option<&str> {
        self.session
            .iter()
            .find(|l| l.is(b'v'))
            .and_then(Line::value)
    }

    /// The `o=` line, if present and well-formed.
    pub fn origin(&self) -> Option<Origin<'_>> {
        self.session
            .iter()
            .find(|l| l.is(b'o'))
            .and_then(Line::value)
            .and_then(Origin::parse)
    }

    /// The `s=` value.
    pub fn session_name(&self) -> Option<&str> {
        self.session
            .iter()
            .find(|l| l.is(b's'))
            .and_then(Line::value)
    }

    /// The first `t=` line as (start, stop), if well-formed.
    pub fn timing(&self) -> Option<(u64, u64)> {
        let v = self
            .session
            .iter()
            .find(|l| l.is(b't'))
            .and_then(Line::value)?;
        let mut it = fields(v);
        let start = crate::types::number(it.next()?)?;
        let stop = crate::types::number(it.next()?)?;
        Some((start, stop))
    }

    /// The session-level `c=` line, if present and well-formed.
    pub fn connection(&self) -> Option<Connection<'_>> {
        connection_of(&self.session)
    }

    /// The session-level `b=` lines that parse.
    pub fn bandwidths(&self) -> impl Iterator<Item = Bandwidth<'_>> {
        bandwidths_of(&self.session)
    }

    /// Session-level attributes, in order.
    pub fn attributes(&self) -> impl Iterator<Item = Attribute<'_>> {
        attributes(&self.session)
    }

    /// The value of the first session-level attribute called `name` (ASCII
    /// case-insensitive); `Some(None)` when it is a property attribute.
    pub fn attribute(&self, name: &str) -> Option<Option<&str>> {
        self.session.iter().find_map(|l| l.attribute_named(name))
    }

    /// The values of every session-level attribute called `name`.
    pub fn attribute_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = Option<&'a str>> {
        attribute_values(&self.session, name)
    }

    /// Whether a session-level attribute called `name` is present.
    pub fn has_attribute(&self, name: &str) -> bool {
        self.attribute(name).is_some()
    }

    /// The session-level direction attribute: the default for media sections
    /// that have none.
    pub fn direction(&self) -> Option<Direction> {
        direction_of(&self.session)
    }

    /// The direction in force for media section `index`: its own attribute,
    /// else the session-level one, else `sendrecv`. `None` if there is no
    /// such section.
    pub fn effective_direction(&self, index: usize) -> Option<Direction> {
        let m = self.media.get(index)?;
        Some(
            m.direction()
                .or_else(|| self.direction())
                .unwrap_or(Direction::SendRecv),
        )
    }

    /// The connection in force for media section `index`: its own `c=` line,
    /// else the session-level one.
    pub fn effective_connection(&self, index: usize) -> Option<Connection<'_>> {
        let m = self.media.get(index)?;
        m.connection().or_else(|| self.connection())
    }

    /// Session-level `a=ice-lite`.
    pub fn ice_lite(&self) -> bool {
        self.has_attribute("ice-lite")
    }

    /// Session-level `a=ice-ufrag`.
    pub fn ice_ufrag(&self) -> Option<&str> {
        first_value(&self.session, "ice-ufrag")
    }

    /// Session-level `a=ice-pwd`.
    pub fn ice_pwd(&self) -> Option<&str> {
        first_value(&self.session, "ice-pwd")
    }

    /// Session-level `a=ice-options` tokens.
    pub fn ice_options(&self) -> impl Iterator<Item = &str> {
        first_value(&self.session, "ice-options")
            .into_iter()
            .flat_map(fields)
    }

    // ----- session-level edits -----

    /// Rewrites the `o=` line's address type and address (`IN IP4 a` /
    /// `IN IP6 a`), keeping username, sess-id and sess-version.
    pub fn set_origin_address(&mut self, addr: IpAddr) -> Result<(), EditError> {
        let i = self.origin_index()?;
        let o = self.session[i]
            .value()
            .and_then(Origin::parse)
            .ok_or(EditError::Malformed { kind: 'o' })?;
        let text = format!(
            "{} {} {} {} {}",
            o.username,
            o.session_id,
            o.session_version,
            o.net_type,
            connection_text(addr)
                .split_once(' ')
                .map_or("", |(_, rest)| rest)
        );
        self.session[i] = Line::new(b'o', &text);
        Ok(())
    }

    /// Sets `sess-version` in the `o=` line.
    pub fn set_session_version(&mut self, version: u64) -> Result<(), EditError> {
        let i = self.origin_index()?;
        let o = self.session[i]
            .value()
            .and_then(Origin::parse)
            .ok_or(EditError::Malformed { kind: 'o' })?;
        let text = format!(
            "{} {} {} {} {} {}",
            o.username, o.session_id, version, o.net_type, o.addr_type, o.address
        );
        self.session[i] = Line::new(b'o', &text);
        Ok(())
    }

    /// Increments `sess-version` (RFC 3264 §8: required whenever a changed
    /// description is sent in the same session) and returns the new value.
    pub fn bump_session_version(&mut self) -> Result<u64, EditError> {
        let i = self.origin_index()?;
        let o = self.session[i]
            .value()
            .and_then(Origin::parse)
            .ok_or(EditError::Malformed { kind: 'o' })?;
        let v = o.version().ok_or(EditError::Malformed { kind: 'o' })?;
        let next = v.checked_add(1).ok_or(EditError::VersionOverflow)?;
        self.set_session_version(next)?;
        Ok(next)
    }

    fn origin_index(&self) -> Result<usize, EditError> {
        self.session
            .iter()
            .position(|l| l.is(b'o'))
            .ok_or(EditError::Missing { kind: 'o' })
    }

    /// Sets the session-level `c=` line to `IN IP4|IP6 addr`, replacing an
    /// existing one in place (and removing any later ones: there is at most
    /// one per level, and a relay must not pass a second on with the
    /// party's address) or inserting one where RFC 8866 §5 puts it (before
    /// `b=`, `t=`, `r=`, `z=`, `k=` and `a=`).
    pub fn set_connection(&mut self, addr: IpAddr) {
        let new = Line::new(b'c', &connection_text(addr));
        match self.session.iter().position(|l| l.is(b'c')) {
            Some(i) => {
                self.session[i] = new;
                remove_where(&mut self.session, i + 1, |l| l.is(b'c'));
            }
            None => {
                let at = self
                    .session
                    .iter()
                    .position(|l| {
                        matches!(l.kind_byte(), Some(b'b' | b't' | b'r' | b'z' | b'k' | b'a'))
                    })
                    .unwrap_or(self.session.len());
                self.session.insert(at, new);
            }
        }
    }

    /// Removes the session-level `c=` line(s); returns how many.
    pub fn remove_connection(&mut self) -> usize {
        remove_where(&mut self.session, 0, |l| l.is(b'c'))
    }

    /// Points every connection at `addr`, as a relay does: the session-level
    /// `c=` line and every media-level `c=` line present are rewritten; if
    /// there is none anywhere, a session-level one is inserted. Media sections
    /// without their own `c=` inherit the session-level one.
    pub fn set_connection_everywhere(&mut self, addr: IpAddr) {
        let session_has = self.session.iter().any(|l| l.is(b'c'));
        let mut media_has = false;
        for m in &mut self.media {
            if m.lines.iter().any(|l| l.is(b'c')) {
                m.set_connection(addr);
                media_has = true;
            }
        }
        let every_media_has = self
            .media
            .iter()
            .all(|m| m.lines.iter().any(|l| l.is(b'c')));
        if session_has || !media_has || !every_media_has {
            self.set_connection(addr);
        }
    }

    /// Sets the session-level direction attribute (replacing any in place).
    pub fn set_direction(&mut self, direction: Direction) {
        replace_or_append(
            &mut self.session,
            0,
            is_direction_line,
            Line::attribute(direction.as_str(), None),
        );
    }

    /// Removes session-level direction attributes; returns how many.
    pub fn remove_direction(&mut self) -> usize {
        remove_where(&mut self.session, 0, is_direction_line)
    }

    /// Removes session-level ICE attributes ([`ICE_ATTRIBUTES`]); returns how many.
    pub fn remove_ice(&mut self) -> usize {
        remove_ice_lines(&mut self.session, 0)
    }

    /// Removes ICE attributes at the session level and in every media section.
    pub fn remove_ice_everywhere(&mut self) -> usize {
        self.remove_ice()
            + self
                .media
                .iter_mut()
                .map(MediaDescription::remove_ice)
                .sum::<usize>()
    }

    /// Removes session-level attributes called `name`; returns how many.
    pub fn remove_attribute(&mut self, name: &str) -> usize {
        remove_where(&mut self.session, 0, |l| is_attribute_named(l, name))
    }

    /// Removes attributes called `name` at the session level and in every
    /// media section; returns how many.
    pub fn remove_attribute_everywhere(&mut self, name: &str) -> usize {
        self.remove_attribute(name)
            + self
                .media
                .iter_mut()
                .map(|m| m.remove_attribute(name))
                .sum::<usize>()
    }

    /// Appends a session-level `a=name[:value]` after the existing lines.
    pub fn add_attribute(&mut self, name: &str, value: Option<&str>) -> Result<(), EditError> {
        check_attribute_name(name)?;
        if let Some(v) = value {
            check_text(v, "attribute value")?;
        }
        self.session.push(Line::attribute(name, value));
        Ok(())
    }

    /// Sets session-level `a=name[:value]`: replaces the first one in place
    /// and removes the others, or appends it.
    pub fn set_attribute(&mut self, name: &str, value: Option<&str>) -> Result<(), EditError> {
        check_attribute_name(name)?;
        if let Some(v) = value {
            check_text(v, "attribute value")?;
        }
        replace_or_append(
            &mut self.session,
            0,
            |l| is_attribute_named(l, name),
            Line::attribute(name, value),
        );
        Ok(())
    }
}

impl fmt::Display for SessionDescription {
    /// Prints like [`SessionDescription::to_bytes`]; a line that is not UTF-8
    /// is shown with replacement characters.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for l in self.lines() {
            f.write_str(&String::from_utf8_lossy(l.as_bytes()))?;
            f.write_str("\r\n")?;
        }
        Ok(())
    }
}

fn connection_of(lines: &[Line]) -> Option<Connection<'_>> {
    lines
        .iter()
        .find(|l| l.is(b'c'))
        .and_then(Line::value)
        .and_then(Connection::parse)
}

fn bandwidths_of(lines: &[Line]) -> impl Iterator<Item = Bandwidth<'_>> {
    lines
        .iter()
        .filter(|l| l.is(b'b'))
        .filter_map(Line::value)
        .filter_map(Bandwidth::parse)
}

// ---------------------------------------------------------------------------

impl MediaDescription {
    pub(crate) fn new(m_line: Line) -> Self {
        Self {
            lines: vec![m_line],
        }
    }

    pub(crate) fn push_parsed(&mut self, line: Line) {
        self.lines.push(line);
    }

    // ----- structure -----

    /// The section's lines, the `m=` line first.
    pub fn lines(&self) -> &[Line] {
        &self.lines
    }

    /// The `m=` line, if well-formed.
    pub fn media_line(&self) -> Option<MediaLine<'_>> {
        self.lines[0].value().and_then(MediaLine::parse)
    }

    /// The media type (`audio`, `video`, …), if the `m=` line is well-formed.
    pub fn media_type(&self) -> Option<&str> {
        self.media_line().map(|m| m.media)
    }

    /// The port of the `m=` line.
    pub fn port(&self) -> Option<u16> {
        self.media_line().map(|m| m.port)
    }

    /// The proto of the `m=` line.
    pub fn proto(&self) -> Option<&str> {
        self.media_line().map(|m| m.proto)
    }

    /// The formats of the `m=` line (empty if it is malformed).
    pub fn formats(&self) -> impl Iterator<Item = &str> {
        self.media_line().into_iter().flat_map(|m| m.formats())
    }

    // ----- typed views -----

    /// The media-level `c=` line, if present and well-formed.
    pub fn connection(&self) -> Option<Connection<'_>> {
        connection_of(&self.lines[1..])
    }

    /// The media-level `b=` lines that parse.
    pub fn bandwidths(&self) -> impl Iterator<Item = Bandwidth<'_>> {
        bandwidths_of(&self.lines[1..])
    }

    /// The section's attributes, in order.
    pub fn attributes(&self) -> impl Iterator<Item = Attribute<'_>> {
        attributes(&self.lines[1..])
    }

    /// The value of the first attribute called `name` (ASCII case-insensitive);
    /// `Some(None)` when it is a property attribute.
    pub fn attribute(&self, name: &str) -> Option<Option<&str>> {
        self.lines[1..].iter().find_map(|l| l.attribute_named(name))
    }

    /// The values of every attribute called `name`.
    pub fn attribute_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = Option<&'a str>> {
        attribute_values(&self.lines[1..], name)
    }

    /// Whether an attribute called `name` is present.
    pub fn has_attribute(&self, name: &str) -> bool {
        self.attribute(name).is_some()
    }

    /// The `a=rtpmap` lines that parse, in order.
    pub fn rtpmaps(&self) -> impl Iterator<Item = RtpMap<'_>> {
        self.attribute_values("rtpmap")
            .flatten()
            .filter_map(RtpMap::parse)
    }

    /// The `a=rtpmap` for payload type `pt`.
    pub fn rtpmap(&self, pt: u8) -> Option<RtpMap<'_>> {
        self.rtpmaps().find(|r| r.payload_type == pt)
    }

    /// The `a=fmtp` lines that parse, in order.
    pub fn fmtps(&self) -> impl Iterator<Item = Fmtp<'_>> {
        self.attribute_values("fmtp")
            .flatten()
            .filter_map(Fmtp::parse)
    }

    /// The `a=fmtp` for format `format` (e.g. `"101"`).
    pub fn fmtp(&self, format: &str) -> Option<Fmtp<'_>> {
        self.fmtps().find(|f| f.format == format)
    }

    /// The section's own direction attribute (see
    /// [`SessionDescription::effective_direction`] for the one in force).
    pub fn direction(&self) -> Option<Direction> {
        direction_of(&self.lines[1..])
    }

    /// `a=rtcp`, if present and well-formed.
    pub fn rtcp(&self) -> Option<RtcpAttribute<'_>> {
        first_value(&self.lines[1..], "rtcp").and_then(RtcpAttribute::parse)
    }

    /// Whether `a=rtcp-mux` is present.
    pub fn rtcp_mux(&self) -> bool {
        self.has_attribute("rtcp-mux")
    }

    /// `a=ptime` in milliseconds.
    pub fn ptime(&self) -> Option<u32> {
        first_value(&self.lines[1..], "ptime").and_then(|v| crate::types::number(v.trim()))
    }

    /// `a=maxptime` in milliseconds.
    pub fn maxptime(&self) -> Option<u32> {
        first_value(&self.lines[1..], "maxptime").and_then(|v| crate::types::number(v.trim()))
    }

    /// `a=ice-ufrag`.
    pub fn ice_ufrag(&self) -> Option<&str> {
        first_value(&self.lines[1..], "ice-ufrag")
    }

    /// `a=ice-pwd`.
    pub fn ice_pwd(&self) -> Option<&str> {
        first_value(&self.lines[1..], "ice-pwd")
    }

    /// `a=ice-options` tokens.
    pub fn ice_options(&self) -> impl Iterator<Item = &str> {
        first_value(&self.lines[1..], "ice-options")
            .into_iter()
            .flat_map(fields)
    }

    /// The `a=candidate` lines that parse (MS-ICE2 `TCP-ACT`/`TCP-PASS`
    /// transports included), in order.
    pub fn candidates(&self) -> impl Iterator<Item = Candidate<'_>> {
        self.attribute_values("candidate")
            .flatten()
            .filter_map(Candidate::parse)
    }

    /// Whether `a=end-of-candidates` is present.
    pub fn end_of_candidates(&self) -> bool {
        self.has_attribute("end-of-candidates")
    }

    /// `a=remote-candidates`, verbatim.
    pub fn remote_candidates(&self) -> Option<&str> {
        first_value(&self.lines[1..], "remote-candidates")
    }

    /// The `a=crypto` lines that parse, in order.
    pub fn crypto(&self) -> impl Iterator<Item = Crypto<'_>> {
        self.attribute_values("crypto")
            .flatten()
            .filter_map(Crypto::parse)
    }

    // ----- edits -----

    fn edit_m_line(&mut self, f: impl FnOnce(&MediaLine<'_>) -> String) -> Result<(), EditError> {
        let m = self
            .media_line()
            .ok_or(EditError::Malformed { kind: 'm' })?;
        let text = f(&m);
        self.lines[0] = Line::new(b'm', &text);
        Ok(())
    }

    fn m_line_text(
        m: &MediaLine<'_>,
        port: u16,
        proto: &str,
        formats: &mut dyn Iterator<Item = &str>,
    ) -> String {
        let mut s = format!("{} {}", m.media, port);
        if let Some(n) = m.port_count {
            s.push('/');
            s.push_str(&n.to_string());
        }
        s.push(' ');
        s.push_str(proto);
        for f in formats {
            s.push(' ');
            s.push_str(f);
        }
        s
    }

    /// Sets the `m=` line's port (keeping any `/<number of ports>`).
    pub fn set_port(&mut self, port: u16) -> Result<(), EditError> {
        self.edit_m_line(|m| Self::m_line_text(m, port, m.proto, &mut m.formats()))
    }

    /// Sets the `m=` line's proto, e.g. `RTP/AVP` ⇄ `RTP/SAVP`, or
    /// `UDP/TLS/RTP/SAVP`.
    pub fn set_proto(&mut self, proto: &str) -> Result<(), EditError> {
        check_word(proto, "proto")?;
        self.edit_m_line(|m| Self::m_line_text(m, m.port, proto, &mut m.formats()))
    }

    /// Keeps only the formats for which `keep` returns true, in their order,
    /// and removes the `a=rtpmap`, `a=fmtp` and `a=rtcp-fb` lines of the
    /// dropped ones (`a=rtcp-fb:*` stays). Returns how many formats were
    /// dropped. Dropping every format is allowed; the caller decides whether
    /// to reject the stream (port 0) instead.
    pub fn retain_formats(
        &mut self,
        mut keep: impl FnMut(&str) -> bool,
    ) -> Result<usize, EditError> {
        let m = self
            .media_line()
            .ok_or(EditError::Malformed { kind: 'm' })?;
        let (kept, dropped): (Vec<&str>, Vec<&str>) = m.formats().partition(|f| keep(f));
        if dropped.is_empty() {
            return Ok(0);
        }
        let text = Self::m_line_text(&m, m.port, m.proto, &mut kept.iter().copied());
        let dropped: Vec<String> = dropped.iter().map(|s| s.to_string()).collect();
        self.lines[0] = Line::new(b'm', &text);
        remove_where(&mut self.lines, 1, |l| {
            let Some(a) = l.as_attribute() else {
                return false;
            };
            let per_format = ["rtpmap", "fmtp", "rtcp-fb"]
                .iter()
                .any(|n| a.name.eq_ignore_ascii_case(n));
            per_format
                && a.value
                    .and_then(|v| fields(v).next())
                    .is_some_and(|f| dropped.iter().any(|d| d == f))
        });
        Ok(dropped.len())
    }

    /// Sets the media-level `c=` line to `IN IP4|IP6 addr`, replacing an
    /// existing one in place (and removing any later ones, as
    /// [`SessionDescription::set_connection`] does) or inserting one after
    /// `m=`/`i=` (RFC 8866 §5).
    pub fn set_connection(&mut self, addr: IpAddr) {
        let new = Line::new(b'c', &connection_text(addr));
        match self.lines.iter().skip(1).position(|l| l.is(b'c')) {
            Some(i) => {
                self.lines[i + 1] = new;
                remove_where(&mut self.lines, i + 2, |l| l.is(b'c'));
            }
            None => {
                let at = self
                    .lines
                    .iter()
                    .skip(1)
                    .position(|l| !l.is(b'i'))
                    .map_or(self.lines.len(), |i| i + 1);
                self.lines.insert(at, new);
            }
        }
    }

    /// Removes the media-level `c=` line(s); returns how many.
    pub fn remove_connection(&mut self) -> usize {
        remove_where(&mut self.lines, 1, |l| l.is(b'c'))
    }

    /// Sets the media-level direction attribute (replacing any in place, else
    /// appending).
    pub fn set_direction(&mut self, direction: Direction) {
        replace_or_append(
            &mut self.lines,
            1,
            is_direction_line,
            Line::attribute(direction.as_str(), None),
        );
    }

    /// Removes media-level direction attributes; returns how many.
    pub fn remove_direction(&mut self) -> usize {
        remove_where(&mut self.lines, 1, is_direction_line)
    }

    /// Removes the ICE attributes ([`ICE_ATTRIBUTES`]); returns how many.
    pub fn remove_ice(&mut self) -> usize {
        remove_ice_lines(&mut self.lines, 1)
    }

    /// Removes every `a=crypto` line; returns how many.
    pub fn remove_crypto(&mut self) -> usize {
        self.remove_attribute("crypto")
    }

    /// Appends `a=crypto:<tag> <suite_and_params>` after the existing lines.
    /// `suite_and_params` is e.g. `AES_CM_128_HMAC_SHA1_80 inline:<key>|2^31`.
    pub fn add_crypto(&mut self, tag: u32, suite_and_params: &str) -> Result<(), EditError> {
        let line = crypto_line(tag, suite_and_params)?;
        self.lines.push(line);
        Ok(())
    }

    /// Replaces every `a=crypto` line by the given ones (tag, suite and
    /// parameters), placed where the first old one was, or appended if there
    /// was none. Nothing changes if any new value is invalid.
    pub fn replace_crypto<'s>(
        &mut self,
        crypto: impl IntoIterator<Item = (u32, &'s str)>,
    ) -> Result<(), EditError> {
        let new: Vec<Line> = crypto
            .into_iter()
            .map(|(t, v)| crypto_line(t, v))
            .collect::<Result<_, _>>()?;
        let at = self
            .lines
            .iter()
            .skip(1)
            .position(|l| is_attribute_named(l, "crypto"))
            .map(|i| i + 1);
        self.remove_crypto();
        let at = at.unwrap_or(self.lines.len());
        self.lines.splice(at..at, new);
        Ok(())
    }

    /// Adds `a=rtcp-mux` (appended, if absent) or removes it.
    pub fn set_rtcp_mux(&mut self, on: bool) {
        if on {
            if !self.rtcp_mux() {
                self.lines.push(Line::attribute("rtcp-mux", None));
            }
        } else {
            self.remove_attribute("rtcp-mux");
        }
    }

    /// Sets `a=rtcp:<port>[ IN IP4|IP6 <addr>]`, replacing an existing one in
    /// place or appending it.
    pub fn set_rtcp(&mut self, port: u16, addr: Option<IpAddr>) {
        let value = match addr {
            Some(a) => format!("{port} {}", connection_text(a)),
            None => port.to_string(),
        };
        replace_or_append(
            &mut self.lines,
            1,
            |l| is_attribute_named(l, "rtcp"),
            Line::attribute("rtcp", Some(&value)),
        );
    }

    /// Removes `a=rtcp`; returns how many lines.
    pub fn remove_rtcp(&mut self) -> usize {
        self.remove_attribute("rtcp")
    }

    /// Removes attributes called `name` (ASCII case-insensitive); returns how many.
    pub fn remove_attribute(&mut self, name: &str) -> usize {
        remove_where(&mut self.lines, 1, |l| is_attribute_named(l, name))
    }

    /// Appends `a=name[:value]` after the existing lines.
    pub fn add_attribute(&mut self, name: &str, value: Option<&str>) -> Result<(), EditError> {
        check_attribute_name(name)?;
        if let Some(v) = value {
            check_text(v, "attribute value")?;
        }
        self.lines.push(Line::attribute(name, value));
        Ok(())
    }

    /// Sets `a=name[:value]`: replaces the first one in place and removes the
    /// others, or appends it.
    pub fn set_attribute(&mut self, name: &str, value: Option<&str>) -> Result<(), EditError> {
        check_attribute_name(name)?;
        if let Some(v) = value {
            check_text(v, "attribute value")?;
        }
        replace_or_append(
            &mut self.lines,
            1,
            |l| is_attribute_named(l, name),
            Line::attribute(name, value),
        );
        Ok(())
    }
}

fn crypto_line(tag: u32, suite_and_params: &str) -> Result<Line, EditError> {
    check_text(suite_and_params, "crypto")?;
    let (suite, _) = suite_and_params
        .split_once(' ')
        .unwrap_or((suite_and_params, ""));
    check_word(suite, "crypto suite")?;
    if tag > 999_999_999 {
        return Err(EditError::InvalidValue { what: "crypto tag" });
    }
    Ok(Line::attribute(
        "crypto",
        Some(&format!("{tag} {suite_and_params}")),
    ))
}
