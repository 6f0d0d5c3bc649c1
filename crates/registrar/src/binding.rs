//! A binding (RFC 3261 §10): one contact of an address-of-record, with the
//! flow it arrived on and its Path, kept compact (the strings of one binding
//! share one allocation), and its compact byte form for stores.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use sip::Uri;
use transaction::Transport;

/// Where a REGISTER came from: how to reach the phone again (RFC 5626 §5.3:
/// requests for an outbound binding go back on the same flow).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Flow {
    /// The transport it arrived on.
    pub transport: Transport,
    /// The source address as received (what Via `received`/`rport` say).
    pub remote: SocketAddr,
    /// The local address it arrived at.
    pub local: SocketAddr,
    /// The connection it arrived on (TCP/TLS), as the transport layer
    /// numbers them; `None` for UDP.
    pub conn: Option<u64>,
}

/// One binding of an address-of-record.
#[derive(Clone, PartialEq, Eq)]
pub struct Binding {
    /// The address-of-record: the user's E.164 number.
    pub aor: Arc<str>,
    /// The Contact URI as written.
    pub uri: Bytes,
    /// The Contact header parameters as written, without `expires`
    /// (starts with `;`, or empty): `q`, `+sip.instance`, `reg-id`, feature
    /// tags.
    pub params: Bytes,
    /// `q` in thousandths (0–1000); 1000 when absent.
    pub q: u16,
    /// The `+sip.instance` value without its quotes (`<urn:uuid:…>`).
    pub instance: Option<Bytes>,
    /// The RFC 5626 `reg-id`, when outbound applied to this binding.
    pub reg_id: Option<u32>,
    /// Call-ID of the REGISTER that last wrote the binding.
    pub call_id: Bytes,
    /// Its CSeq number.
    pub cseq: u32,
    /// The Path header values (RFC 3327) joined with `, `; empty if none.
    pub path: Bytes,
    /// The flow the REGISTER arrived on.
    pub flow: Flow,
}

impl fmt::Debug for Binding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = |b: &Bytes| String::from_utf8_lossy(b).into_owned();
        f.debug_struct("Binding")
            .field("aor", &self.aor)
            .field("uri", &s(&self.uri))
            .field("q", &self.q)
            .field("instance", &self.instance.as_ref().map(s))
            .field("reg_id", &self.reg_id)
            .field("cseq", &self.cseq)
            .field("flow", &self.flow)
            .finish_non_exhaustive()
    }
}

/// The strings of a binding, before they are packed into one buffer.
pub(crate) struct Strings<'a> {
    pub(crate) uri: &'a [u8],
    pub(crate) params: &'a [u8],
    pub(crate) instance: Option<&'a [u8]>,
    pub(crate) call_id: &'a [u8],
    pub(crate) path: &'a [u8],
}

/// What identifies a binding within its AOR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Key {
    /// RFC 5626: one binding per (instance, reg-id).
    Flow(Vec<u8>, u32),
    /// RFC 5626 §6 without reg-id: the instance replaces the URI.
    Instance(Vec<u8>),
    /// RFC 3261: the Contact URI (compared by §19.1.4, simplified).
    Uri(Vec<u8>),
}

impl Binding {
    /// A binding whose strings share one allocation.
    pub(crate) fn new(
        aor: Arc<str>,
        s: Strings<'_>,
        q: u16,
        reg_id: Option<u32>,
        cseq: u32,
        flow: Flow,
    ) -> Binding {
        let inst = s.instance.unwrap_or(&[]);
        let parts = [s.uri, s.params, inst, s.call_id, s.path];
        let mut buf = Vec::with_capacity(parts.iter().map(|p| p.len()).sum());
        let mut ranges = [(0, 0); 5];
        for (r, p) in ranges.iter_mut().zip(parts) {
            *r = (buf.len(), buf.len() + p.len());
            buf.extend_from_slice(p);
        }
        let buf = Bytes::from(buf);
        let cut = |i: usize| buf.slice(ranges[i].0..ranges[i].1);
        Binding {
            aor,
            uri: cut(0),
            params: cut(1),
            q,
            instance: s.instance.map(|_| cut(2)),
            reg_id,
            call_id: cut(3),
            cseq,
            path: cut(4),
            flow,
        }
    }

    pub(crate) fn key(&self) -> Key {
        match (&self.instance, self.reg_id) {
            (Some(i), Some(r)) => Key::Flow(i.to_vec(), r),
            (Some(i), None) => Key::Instance(i.to_vec()),
            _ => Key::Uri(uri_key(&self.uri)),
        }
    }

    /// The key a store files this binding under: AOR, then what identifies
    /// the binding within it.
    pub fn store_key(&self) -> Vec<u8> {
        let mut k = Vec::with_capacity(self.aor.len() + self.uri.len() + 8);
        k.extend_from_slice(self.aor.as_bytes());
        k.push(0);
        match self.key() {
            Key::Flow(i, r) => {
                k.push(b'f');
                k.extend_from_slice(&i);
                k.push(0);
                k.extend_from_slice(&r.to_be_bytes());
            }
            Key::Instance(i) => {
                k.push(b'i');
                k.extend_from_slice(&i);
            }
            Key::Uri(u) => {
                k.push(b'u');
                k.extend_from_slice(&u);
            }
        }
        k
    }

    /// The Contact value listing this binding in a 200:
    /// `<uri>params;expires=N`.
    pub fn contact_value(&self, expires: u64) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.uri.len() + self.params.len() + 24);
        v.push(b'<');
        v.extend_from_slice(&self.uri);
        v.push(b'>');
        v.extend_from_slice(&self.params);
        v.extend_from_slice(format!(";expires={expires}").as_bytes());
        v
    }

    /// Bytes held by this binding beyond its own size (its string buffer).
    pub fn heap_bytes(&self) -> usize {
        self.uri.len()
            + self.params.len()
            + self.instance.as_ref().map_or(0, Bytes::len)
            + self.call_id.len()
            + self.path.len()
    }
}

/// A comparison key for a Contact URI after RFC 3261 §19.1.4, simplified:
/// scheme and host case-insensitive, user and password case-sensitive, the
/// port as written, and the parameters that must match when present
/// (`transport`, `user`, `ttl`, `method`, `maddr`) case-insensitive. Other
/// schemes compare as written.
pub(crate) fn uri_key(uri: &[u8]) -> Vec<u8> {
    let Ok(Uri::Sip(u)) = Uri::parse(uri) else {
        return uri.to_vec();
    };
    let mut k = Vec::with_capacity(uri.len());
    k.extend_from_slice(if u.secure { b"sips:" } else { b"sip:" });
    if let Some(user) = u.user {
        k.extend_from_slice(&sip::percent_decode(user));
        if let Some(p) = u.password {
            k.push(b':');
            k.extend_from_slice(p);
        }
        k.push(b'@');
    }
    k.extend_from_slice(u.host_raw.to_ascii_lowercase().as_bytes());
    if let Some(p) = u.port {
        k.extend_from_slice(format!(":{p}").as_bytes());
    }
    let mut params: Vec<Vec<u8>> = u
        .params()
        .filter(|p| {
            ["transport", "user", "ttl", "method", "maddr"]
                .iter()
                .any(|n| p.name.eq_ignore_ascii_case(n.as_bytes()))
        })
        .map(|p| {
            let mut s = p.name.to_ascii_lowercase();
            s.push(b'=');
            s.extend_from_slice(&p.value.unwrap_or(&[]).to_ascii_lowercase());
            s
        })
        .collect();
    params.sort();
    for p in params {
        k.push(b';');
        k.extend_from_slice(&p);
    }
    k
}

/// What happened to a binding, for a store to follow (see
/// [`crate::Store::follow`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A new binding, live for `ttl`.
    BindingAdded {
        /// The binding.
        binding: Binding,
        /// Its lifetime from now.
        ttl: Duration,
    },
    /// A binding re-registered (same key): new flow, CSeq, expiry.
    BindingRefreshed {
        /// The binding as it now is.
        binding: Binding,
        /// Its lifetime from now.
        ttl: Duration,
    },
    /// A binding removed by a REGISTER (`expires=0`, `Contact: *`), or
    /// replaced by another.
    BindingRemoved {
        /// The binding as it was.
        binding: Binding,
    },
    /// A binding that reached its expiry.
    BindingExpired {
        /// The binding as it was.
        binding: Binding,
    },
}

// ----- compact bytes --------------------------------------------------------

const FORMAT: u8 = 1;

fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    // Every string was bounded when the REGISTER was read (< 64 KiB).
    let n = u16::try_from(s.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&n.to_be_bytes());
    out.extend_from_slice(&s[..usize::from(n)]);
}

fn put_addr(out: &mut Vec<u8>, a: &SocketAddr) {
    match a.ip() {
        IpAddr::V4(ip) => {
            out.push(4);
            out.extend_from_slice(&ip.octets());
        }
        IpAddr::V6(ip) => {
            out.push(6);
            out.extend_from_slice(&ip.octets());
        }
    }
    out.extend_from_slice(&a.port().to_be_bytes());
}

/// The binding as compact bytes (a store value, after the expiry).
pub(crate) fn encode(b: &Binding) -> Vec<u8> {
    let mut out = Vec::with_capacity(128 + b.heap_bytes());
    out.push(FORMAT);
    put_str(&mut out, b.aor.as_bytes());
    put_str(&mut out, &b.uri);
    put_str(&mut out, &b.params);
    out.extend_from_slice(&b.q.to_be_bytes());
    match &b.instance {
        Some(i) => {
            out.push(1);
            put_str(&mut out, i);
        }
        None => out.push(0),
    }
    match b.reg_id {
        Some(r) => {
            out.push(1);
            out.extend_from_slice(&r.to_be_bytes());
        }
        None => out.push(0),
    }
    put_str(&mut out, &b.call_id);
    out.extend_from_slice(&b.cseq.to_be_bytes());
    put_str(&mut out, &b.path);
    out.push(match b.flow.transport {
        Transport::Udp => 0,
        Transport::Tcp => 1,
        Transport::Tls => 2,
    });
    put_addr(&mut out, &b.flow.remote);
    put_addr(&mut out, &b.flow.local);
    match b.flow.conn {
        Some(c) => {
            out.push(1);
            out.extend_from_slice(&c.to_be_bytes());
        }
        None => out.push(0),
    }
    out
}

struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.b.len() < n {
            return None;
        }
        let (h, t) = self.b.split_at(n);
        self.b = t;
        Some(h)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Option<u32> {
        let b = self.take(4)?;
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Option<u64> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Some(u64::from_be_bytes(a))
    }

    fn str(&mut self) -> Option<&'a [u8]> {
        let n = self.u16()?;
        self.take(usize::from(n))
    }

    fn flag(&mut self) -> Option<bool> {
        match self.u8()? {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }

    fn addr(&mut self) -> Option<SocketAddr> {
        let ip = match self.u8()? {
            4 => {
                let o = self.take(4)?;
                IpAddr::V4(Ipv4Addr::new(o[0], o[1], o[2], o[3]))
            }
            6 => {
                let mut o = [0u8; 16];
                o.copy_from_slice(self.take(16)?);
                IpAddr::V6(Ipv6Addr::from(o))
            }
            _ => return None,
        };
        Some(SocketAddr::new(ip, self.u16()?))
    }
}

/// Reads [`encode`]'s bytes; `None` when they are not a binding of this
/// format (a store treats that as corrupt and drops the entry).
pub(crate) fn decode(bytes: &[u8]) -> Option<Binding> {
    let mut r = Reader { b: bytes };
    if r.u8()? != FORMAT {
        return None;
    }
    let aor: Arc<str> = std::str::from_utf8(r.str()?).ok()?.into();
    let uri = r.str()?;
    let params = r.str()?;
    let q = r.u16()?;
    let instance = if r.flag()? { Some(r.str()?) } else { None };
    let reg_id = if r.flag()? { Some(r.u32()?) } else { None };
    let call_id = r.str()?;
    let cseq = r.u32()?;
    let path = r.str()?;
    let transport = match r.u8()? {
        0 => Transport::Udp,
        1 => Transport::Tcp,
        2 => Transport::Tls,
        _ => return None,
    };
    let remote = r.addr()?;
    let local = r.addr()?;
    let conn = if r.flag()? { Some(r.u64()?) } else { None };
    if !r.b.is_empty() || q > 1000 {
        return None;
    }
    let strings = Strings {
        uri,
        params,
        instance,
        call_id,
        path,
    };
    let flow = Flow {
        transport,
        remote,
        local,
        conn,
    };
    Some(Binding::new(aor, strings, q, reg_id, cseq, flow))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample(instance: Option<&str>, reg_id: Option<u32>) -> Binding {
        Binding::new(
            "+15550100001".into(),
            Strings {
                uri: b"sip:alice@192.0.2.10:5060;transport=tcp",
                params: b";q=0.5;+sip.instance=\"<urn:uuid:1>\";reg-id=1",
                instance: instance.map(str::as_bytes),
                call_id: b"c1@192.0.2.10",
                path: b"<sip:edge.example.com;lr>",
            },
            500,
            reg_id,
            7,
            Flow {
                transport: Transport::Tcp,
                remote: "192.0.2.10:40001".parse().unwrap(),
                local: "[2001:db8::1]:5060".parse().unwrap(),
                conn: Some(42),
            },
        )
    }

    #[test]
    fn encoding_round_trips() {
        for b in [sample(None, None), sample(Some("<urn:uuid:1>"), Some(1))] {
            let e = encode(&b);
            assert_eq!(decode(&e), Some(b.clone()));
            // Every truncation and a trailing byte are refused, never a panic.
            for n in 0..e.len() {
                assert_eq!(decode(&e[..n]), None, "cut at {n}");
            }
            let mut long = e.clone();
            long.push(0);
            assert_eq!(decode(&long), None);
            let mut other = e.clone();
            other[0] = 9;
            assert_eq!(decode(&other), None, "unknown format");
        }
    }

    #[test]
    fn keys_follow_rfc5626_then_rfc3261() {
        assert_eq!(
            sample(Some("<urn:uuid:1>"), Some(2)).key(),
            Key::Flow(b"<urn:uuid:1>".to_vec(), 2)
        );
        assert_eq!(
            sample(Some("<urn:uuid:1>"), None).key(),
            Key::Instance(b"<urn:uuid:1>".to_vec())
        );
        assert!(matches!(sample(None, None).key(), Key::Uri(_)));
        let a = sample(None, None).store_key();
        let b = sample(Some("<urn:uuid:1>"), Some(2)).store_key();
        assert_ne!(a, b);
        assert!(a.starts_with(b"+15550100001\0"));
    }

    #[test]
    fn uri_comparison_ignores_case_where_rfc3261_does() {
        assert_eq!(
            uri_key(b"sip:alice@EXAMPLE.com;transport=TCP;foo=1"),
            uri_key(b"SIP:alice@example.com;Transport=tcp")
        );
        assert_ne!(
            uri_key(b"sip:alice@example.com"),
            uri_key(b"sip:Alice@example.com")
        );
        assert_ne!(
            uri_key(b"sip:a@example.com"),
            uri_key(b"sip:a@example.com:5060")
        );
        assert_ne!(
            uri_key(b"sip:a@example.com"),
            uri_key(b"sip:a@example.com;transport=tcp")
        );
        assert_eq!(uri_key(b"sip:%61@h"), uri_key(b"sip:a@h"));
    }

    #[test]
    fn strings_share_one_buffer_and_contact_lists_expires() {
        let b = sample(Some("<urn:uuid:1>"), Some(1));
        assert_eq!(&b.uri[..], b"sip:alice@192.0.2.10:5060;transport=tcp");
        assert_eq!(b.instance.as_deref(), Some(&b"<urn:uuid:1>"[..]));
        assert_eq!(
            String::from_utf8(b.contact_value(60)).unwrap(),
            "<sip:alice@192.0.2.10:5060;transport=tcp>;q=0.5;+sip.instance=\"<urn:uuid:1>\";reg-id=1;expires=60"
        );
        assert!(b.heap_bytes() > 100);
        assert!(format!("{b:?}").contains("192.0.2.10"));
    }
}
