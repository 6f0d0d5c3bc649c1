//! Reading a REGISTER: the headers RFC 3261 §10.3 acts on, checked, with
//! the reason phrase of the 400 (or 420) for each way they can be wrong.
//! Nothing here touches the bindings.

use std::borrow::Cow;

use sip::{Contact, HeaderName, Message, Uri};

/// Longest `+sip.instance` accepted.
const MAX_INSTANCE: usize = 256;
/// Longest Contact URI plus parameters accepted.
const MAX_CONTACT: usize = 1024;
/// Longest Path (all values) accepted.
const MAX_PATH: usize = 2048;
/// Most Contact values read from one REGISTER (the per-AOR limit is
/// smaller; this bounds the work a single request can cause).
const MAX_CONTACTS_READ: usize = 64;

/// The option tags a REGISTER may require of this registrar.
pub(crate) const UNDERSTOOD: [&str; 2] = ["outbound", "path"];

/// Why a REGISTER cannot be processed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reject {
    /// 400 with this reason phrase.
    Bad(&'static str),
    /// 420 Bad Extension, with these option tags in Unsupported.
    Extension(Vec<String>),
}

/// One Contact of a REGISTER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ContactSpec<'a> {
    pub(crate) uri: &'a [u8],
    /// Header parameters as written, without `expires`.
    pub(crate) params: Vec<u8>,
    pub(crate) expires: Option<u64>,
    pub(crate) q: u16,
    pub(crate) instance: Option<Cow<'a, [u8]>>,
    pub(crate) reg_id: Option<u32>,
}

/// What the Contact headers ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Contacts<'a> {
    /// No Contact: fetch the bindings (§10.2.3).
    Query,
    /// `Contact: *` with `Expires: 0`: remove every binding.
    Star,
    /// Add, refresh or remove these.
    List(Vec<ContactSpec<'a>>),
}

/// A REGISTER, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Register<'a> {
    pub(crate) call_id: &'a str,
    pub(crate) cseq: u32,
    /// The user part of the To URI (percent-decoded; a tel number).
    pub(crate) to_user: Option<String>,
    pub(crate) expires: Option<u64>,
    pub(crate) contacts: Contacts<'a>,
    pub(crate) outbound: bool,
    pub(crate) path_supported: bool,
    /// Path values joined with `, `.
    pub(crate) path: Vec<u8>,
}

/// `qvalue = ("0" ["." 0*3DIGIT]) / ("1" ["." 0*3("0")])`, in thousandths.
pub(crate) fn parse_q(v: &[u8]) -> Option<u16> {
    let (int, frac) = match v.iter().position(|&c| c == b'.') {
        Some(p) => (&v[..p], &v[p + 1..]),
        None => (v, &b""[..]),
    };
    if frac.len() > 3 || !frac.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut thousandths: u16 = 0;
    for i in 0..3 {
        thousandths = thousandths * 10 + frac.get(i).map_or(0, |d| u16::from(d - b'0'));
    }
    match int {
        b"0" => Some(thousandths),
        b"1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

fn user_of(msg: &Message) -> Result<Option<String>, Reject> {
    let to = msg.to().map_err(|_| Reject::Bad("Bad To"))?;
    let user = match to.uri {
        Uri::Sip(u) => u.user.map(|u| sip::percent_decode(u).into_owned()),
        Uri::Tel(t) => Some(t.number.as_bytes().to_vec()),
        Uri::Other { .. } => return Err(Reject::Bad("To Is Not a SIP or tel URI")),
    };
    user.map(|u| String::from_utf8(u).map_err(|_| Reject::Bad("Bad To User")))
        .transpose()
}

fn number(v: &[u8], what: &'static str) -> Result<u64, Reject> {
    sip::parse_number(v, u64::MAX).map_err(|_| Reject::Bad(what))
}

/// Reads the REGISTER `msg` (method already checked).
pub(crate) fn read(msg: &Message) -> Result<Register<'_>, Reject> {
    let call_id = msg.call_id().map_err(|_| Reject::Bad("Bad Call-ID"))?;
    let cseq = msg.cseq().map_err(|_| Reject::Bad("Bad CSeq"))?;
    if cseq.method != "REGISTER" {
        return Err(Reject::Bad("CSeq Method Is Not REGISTER"));
    }
    msg.from().map_err(|_| Reject::Bad("Bad From"))?;
    let to_user = user_of(msg)?;
    let mut unsupported = Vec::new();
    for t in msg.tokens(HeaderName::Require) {
        let t = t.map_err(|_| Reject::Bad("Bad Require"))?;
        if !UNDERSTOOD.iter().any(|u| u.eq_ignore_ascii_case(t)) {
            unsupported.push(t.to_owned());
        }
    }
    if !unsupported.is_empty() {
        return Err(Reject::Extension(unsupported));
    }
    let mut outbound = false;
    let mut path_supported = false;
    for t in msg.tokens(HeaderName::Supported) {
        let t = t.map_err(|_| Reject::Bad("Bad Supported"))?;
        outbound |= t.eq_ignore_ascii_case("outbound");
        path_supported |= t.eq_ignore_ascii_case("path");
    }
    let expires = match msg.count(HeaderName::Expires) {
        0 => None,
        1 => Some(number(
            msg.header(HeaderName::Expires).unwrap_or(b""),
            "Bad Expires",
        )?),
        _ => return Err(Reject::Bad("Several Expires")),
    };
    let mut path = Vec::new();
    for v in msg.values(HeaderName::Path) {
        sip::NameAddr::parse(v).map_err(|_| Reject::Bad("Bad Path"))?;
        if !path.is_empty() {
            path.extend_from_slice(b", ");
        }
        path.extend_from_slice(v);
    }
    if path.len() > MAX_PATH {
        return Err(Reject::Bad("Path Too Long"));
    }
    let mut star = false;
    let mut list = Vec::new();
    let mut with_reg_id = 0;
    for c in msg.contacts() {
        match c.map_err(|_| Reject::Bad("Bad Contact"))? {
            Contact::Star => star = true,
            Contact::Addr(_) if list.len() >= MAX_CONTACTS_READ => {
                return Err(Reject::Bad("Too Many Contacts In Request"));
            }
            Contact::Addr(na) => {
                let spec = contact(na, outbound)?;
                with_reg_id += usize::from(spec.reg_id.is_some());
                list.push(spec);
            }
        }
    }
    if star {
        if !list.is_empty() {
            return Err(Reject::Bad("Contact * With Other Contacts"));
        }
        if expires != Some(0) {
            return Err(Reject::Bad("Contact * Needs Expires: 0"));
        }
    }
    // RFC 5626 §6: one reg-id Contact per REGISTER.
    if with_reg_id > 1 {
        return Err(Reject::Bad("Several reg-id Contacts"));
    }
    let contacts = if star {
        Contacts::Star
    } else if list.is_empty() {
        Contacts::Query
    } else {
        Contacts::List(list)
    };
    Ok(Register {
        call_id,
        cseq: cseq.seq,
        to_user,
        expires,
        contacts,
        outbound,
        path_supported,
        path,
    })
}

fn contact<'a>(na: sip::NameAddr<'a>, outbound: bool) -> Result<ContactSpec<'a>, Reject> {
    if na.uri_raw.len() + na.params_raw.len() > MAX_CONTACT {
        return Err(Reject::Bad("Contact Too Long"));
    }
    let mut spec = ContactSpec {
        uri: na.uri_raw,
        params: Vec::with_capacity(na.params_raw.len()),
        expires: None,
        q: 1000,
        instance: None,
        reg_id: None,
    };
    let mut reg_id = None;
    for p in na.params() {
        let val = p.value.unwrap_or(b"");
        if p.name.eq_ignore_ascii_case(b"expires") {
            spec.expires = Some(number(val, "Bad Contact expires")?);
            continue;
        }
        if p.name.eq_ignore_ascii_case(b"q") {
            spec.q = parse_q(val).ok_or(Reject::Bad("Bad Contact q"))?;
        } else if p.name.eq_ignore_ascii_case(b"+sip.instance") {
            let inner = val
                .strip_prefix(b"\"")
                .and_then(|v| v.strip_suffix(b"\""))
                .ok_or(Reject::Bad("Bad +sip.instance"))?;
            if inner.is_empty() || inner.len() > MAX_INSTANCE {
                return Err(Reject::Bad("Bad +sip.instance"));
            }
            spec.instance = Some(Cow::Borrowed(inner));
        } else if p.name.eq_ignore_ascii_case(b"reg-id") {
            let n = number(val, "Bad reg-id")?;
            if !(1..=u64::from(i32::MAX as u32)).contains(&n) {
                return Err(Reject::Bad("Bad reg-id"));
            }
            reg_id = Some(n as u32);
        }
        spec.params.push(b';');
        spec.params.extend_from_slice(p.name);
        if let Some(v) = p.value {
            spec.params.push(b'=');
            spec.params.extend_from_slice(v);
        }
    }
    if reg_id.is_some() && spec.instance.is_none() {
        // RFC 5626 §6: reg-id without +sip.instance.
        return Err(Reject::Bad("reg-id Without +sip.instance"));
    }
    // Without Supported: outbound the reg-id is ignored (RFC 5626 §6).
    spec.reg_id = reg_id.filter(|_| outbound);
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::msg;

    fn register(extra: &str) -> Message {
        msg(&format!(
            "REGISTER sip:sbc.example.com SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bK1\n\
             From: <sip:alice@sbc.example.com>;tag=a\nTo: <sip:alice@sbc.example.com>\n\
             Call-ID: c1\nCSeq: 1 REGISTER\n{extra}Content-Length: 0\n\n"
        ))
    }

    #[test]
    fn q_values() {
        assert_eq!(parse_q(b"0"), Some(0));
        assert_eq!(parse_q(b"0.5"), Some(500));
        assert_eq!(parse_q(b"0.001"), Some(1));
        assert_eq!(parse_q(b"1"), Some(1000));
        assert_eq!(parse_q(b"1.000"), Some(1000));
        for bad in [&b"1.5"[..], b"2", b"0.0001", b"", b".5", b"0.x", b"-0"] {
            assert_eq!(parse_q(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn contacts_with_their_parameters() {
        let m = register(
            "Supported: outbound, path\nExpires: 600\nPath: <sip:edge.example.com;lr>\n\
             Contact: <sip:alice@192.0.2.10>;expires=60;q=0.7, <sip:alice@[2001:db8::1]>\n\
             Contact: <sip:alice@192.0.2.10;transport=tcp>;+sip.instance=\"<urn:uuid:1>\";reg-id=2\n",
        );
        let r = read(&m).unwrap();
        assert_eq!(r.call_id, "c1");
        assert_eq!(r.to_user.as_deref(), Some("alice"));
        assert_eq!(r.expires, Some(600));
        assert!(r.outbound && r.path_supported);
        assert_eq!(r.path, b"<sip:edge.example.com;lr>");
        let Contacts::List(c) = r.contacts else {
            panic!("{:?}", r.contacts)
        };
        assert_eq!(c.len(), 3);
        assert_eq!((c[0].expires, c[0].q), (Some(60), 700));
        assert_eq!(c[0].params, b";q=0.7", "expires is not kept");
        assert_eq!((c[1].expires, c[1].q), (None, 1000));
        assert_eq!(c[2].instance.as_deref(), Some(&b"<urn:uuid:1>"[..]));
        assert_eq!(c[2].reg_id, Some(2));
    }

    #[test]
    fn reg_id_is_ignored_without_supported_outbound() {
        let m = register("Contact: <sip:a@192.0.2.10>;+sip.instance=\"<urn:uuid:1>\";reg-id=1\n");
        let Contacts::List(c) = read(&m).unwrap().contacts else {
            panic!()
        };
        assert_eq!(c[0].reg_id, None);
        assert!(c[0].instance.is_some());
    }

    #[test]
    fn no_contact_is_a_query_and_star_removes_all() {
        assert_eq!(read(&register("")).unwrap().contacts, Contacts::Query);
        let m = register("Contact: *\nExpires: 0\n");
        assert_eq!(read(&m).unwrap().contacts, Contacts::Star);
    }

    #[test]
    fn each_malformation_has_its_reason() {
        let cases = [
            ("Contact: <sip:a@h\n", "Bad Contact"),
            ("Contact: *\n", "Contact * Needs Expires: 0"),
            ("Contact: *\nExpires: 60\n", "Contact * Needs Expires: 0"),
            (
                "Contact: *, <sip:a@h>\nExpires: 0\n",
                "Contact * With Other Contacts",
            ),
            ("Expires: soon\nContact: <sip:a@h>\n", "Bad Expires"),
            (
                "Expires: 1\nExpires: 2\nContact: <sip:a@h>\n",
                "Several Expires",
            ),
            ("Contact: <sip:a@h>;expires=-1\n", "Bad Contact expires"),
            ("Contact: <sip:a@h>;q=2\n", "Bad Contact q"),
            ("Contact: <sip:a@h>;+sip.instance=x\n", "Bad +sip.instance"),
            (
                "Supported: outbound\nContact: <sip:a@h>;reg-id=1\n",
                "reg-id Without +sip.instance",
            ),
            (
                "Contact: <sip:a@h>;+sip.instance=\"<u>\";reg-id=0\n",
                "Bad reg-id",
            ),
            (
                "Supported: outbound\nContact: <sip:a@h>;+sip.instance=\"<u>\";reg-id=1, \
                 <sip:b@h>;+sip.instance=\"<v>\";reg-id=2\n",
                "Several reg-id Contacts",
            ),
            ("Path: not a uri\nContact: <sip:a@h>\n", "Bad Path"),
        ];
        for (extra, why) in cases {
            assert_eq!(read(&register(extra)), Err(Reject::Bad(why)), "{extra}");
        }
        let many = format!(
            "Contact: {}\n",
            vec!["<sip:a@h>"; MAX_CONTACTS_READ + 1].join(", ")
        );
        assert_eq!(
            read(&register(&many)),
            Err(Reject::Bad("Too Many Contacts In Request"))
        );
        let long = format!("Contact: <sip:{}@h>\n", "a".repeat(MAX_CONTACT));
        assert_eq!(read(&register(&long)), Err(Reject::Bad("Contact Too Long")));
    }

    #[test]
    fn required_extensions_must_be_understood() {
        assert_eq!(
            read(&register("Require: outbound, 100rel, foo\n")),
            Err(Reject::Extension(vec!["100rel".into(), "foo".into()]))
        );
        assert!(read(&register("Require: path\n")).is_ok());
    }

    #[test]
    fn broken_dialog_headers_are_400() {
        let m = msg(
            "REGISTER sip:h SIP/2.0\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\n\
             From: <sip:a@h>;tag=a\nTo: <sip:a@h>\nCall-ID: c\nCSeq: 1 INVITE\n\n",
        );
        assert_eq!(read(&m), Err(Reject::Bad("CSeq Method Is Not REGISTER")));
        let m = msg(
            "REGISTER sip:h SIP/2.0\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\n\
             From: <sip:a@h>;tag=a\nTo: <sip:a@h>\nCSeq: 1 REGISTER\n\n",
        );
        assert_eq!(read(&m), Err(Reject::Bad("Bad Call-ID")));
        let m = msg(
            "REGISTER sip:h SIP/2.0\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\n\
             From: <sip:a@h>;tag=a\nTo: <http://h>\nCall-ID: c\nCSeq: 1 REGISTER\n\n",
        );
        assert_eq!(read(&m), Err(Reject::Bad("To Is Not a SIP or tel URI")));
        let m = msg(
            "REGISTER sip:h SIP/2.0\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\n\
             From: <sip:a@h>;tag=a\nTo: <tel:+15550100001>\nCall-ID: c\nCSeq: 1 REGISTER\n\n",
        );
        assert_eq!(read(&m).unwrap().to_user.as_deref(), Some("+15550100001"));
    }
}
