//! STUN keepalives on a SIP UDP port (RFC 5626 §4.4.2, §8.2): a phone
//! behind NAT sends STUN Binding requests to the port it registered
//! through to keep its NAT binding open and to learn its public address.
//! The server answers each with a Binding success response carrying
//! XOR-MAPPED-ADDRESS (RFC 5389 §10.2, §15.2). SIP and STUN share the
//! port: a STUN message starts with two zero bits, a SIP message with a
//! letter.

use std::net::{IpAddr, SocketAddr};

const MAGIC: u32 = 0x2112_A442;
const BINDING_REQUEST: u16 = 0x0001;
const BINDING_SUCCESS: u16 = 0x0101;
const XOR_MAPPED_ADDRESS: u16 = 0x0020;

/// True when `data` looks like a STUN message (RFC 5389 §6: the first two
/// bits 0, the magic cookie, a length that fits, a multiple of 4).
pub fn is_stun(data: &[u8]) -> bool {
    if data.len() < 20 || data[0] & 0xC0 != 0 {
        return false;
    }
    let len = usize::from(u16::from_be_bytes([data[2], data[3]]));
    let cookie = u32::from_be_bytes([data[4], data[5], data[6], data[7]]);
    cookie == MAGIC && len % 4 == 0 && len + 20 == data.len()
}

/// The Binding success response to a Binding request in `data` received
/// from `from`; `None` for anything else (other STUN methods, responses,
/// indications are dropped).
pub fn binding_response(data: &[u8], from: SocketAddr) -> Option<Vec<u8>> {
    if !is_stun(data) || u16::from_be_bytes([data[0], data[1]]) != BINDING_REQUEST {
        return None;
    }
    let txid = &data[8..20];
    let mut attr = Vec::with_capacity(24);
    let xport = from.port() ^ (MAGIC >> 16) as u16;
    match from.ip().to_canonical() {
        IpAddr::V4(ip) => {
            attr.extend_from_slice(&[0, 1]);
            attr.extend_from_slice(&xport.to_be_bytes());
            let x = u32::from(ip) ^ MAGIC;
            attr.extend_from_slice(&x.to_be_bytes());
        }
        IpAddr::V6(ip) => {
            attr.extend_from_slice(&[0, 2]);
            attr.extend_from_slice(&xport.to_be_bytes());
            let mut key = [0u8; 16];
            key[..4].copy_from_slice(&MAGIC.to_be_bytes());
            key[4..].copy_from_slice(txid);
            for (o, (a, k)) in ip.octets().iter().zip(key).enumerate() {
                let _ = o;
                attr.push(a ^ k);
            }
        }
    }
    let mut out = Vec::with_capacity(20 + 4 + attr.len());
    out.extend_from_slice(&BINDING_SUCCESS.to_be_bytes());
    let len = u16::try_from(4 + attr.len()).ok()?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&MAGIC.to_be_bytes());
    out.extend_from_slice(txid);
    out.extend_from_slice(&XOR_MAPPED_ADDRESS.to_be_bytes());
    out.extend_from_slice(&u16::try_from(attr.len()).ok()?.to_be_bytes());
    out.extend_from_slice(&attr);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(txid: [u8; 12]) -> Vec<u8> {
        let mut r = vec![0x00, 0x01, 0x00, 0x00];
        r.extend_from_slice(&MAGIC.to_be_bytes());
        r.extend_from_slice(&txid);
        r
    }

    /// Reads XOR-MAPPED-ADDRESS back the way a client does.
    fn mapped(resp: &[u8]) -> SocketAddr {
        assert_eq!(&resp[0..2], &[0x01, 0x01]);
        assert_eq!(&resp[24..26], &[0x00, 0x01], "IPv4");
        let port = u16::from_be_bytes([resp[26], resp[27]]) ^ 0x2112;
        let ip = u32::from_be_bytes([resp[28], resp[29], resp[30], resp[31]]) ^ MAGIC;
        SocketAddr::new(IpAddr::V4(ip.into()), port)
    }

    #[test]
    fn a_binding_request_gets_the_source_address_back() {
        let from: SocketAddr = "192.0.2.77:40123".parse().unwrap();
        let req = request([7; 12]);
        assert!(is_stun(&req));
        let resp = binding_response(&req, from).unwrap();
        assert_eq!(&resp[8..20], &[7; 12], "same transaction id");
        assert_eq!(
            usize::from(u16::from_be_bytes([resp[2], resp[3]])),
            resp.len() - 20
        );
        assert_eq!(mapped(&resp), from);
    }

    #[test]
    fn ipv6_sources_are_xored_with_cookie_and_transaction() {
        let from: SocketAddr = "[2001:db8::1]:5060".parse().unwrap();
        let resp = binding_response(&request([1; 12]), from).unwrap();
        assert_eq!(&resp[24..26], &[0x00, 0x02]);
        assert_eq!(resp.len(), 20 + 4 + 20);
    }

    #[test]
    fn sip_crlf_and_other_stun_are_not_answered() {
        let from: SocketAddr = "192.0.2.1:1".parse().unwrap();
        assert!(!is_stun(b"OPTIONS sip:a@b SIP/2.0\r\n\r\n\r\n\r\n\r\n"));
        assert!(!is_stun(b"\r\n\r\n"));
        let mut ind = request([2; 12]);
        ind[1] = 0x11; // a Binding indication
        assert!(is_stun(&ind));
        assert!(binding_response(&ind, from).is_none());
        let mut bad = request([3; 12]);
        bad[3] = 4; // length says 4 more bytes that are not there
        assert!(!is_stun(&bad));
        assert!(binding_response(&bad, from).is_none());
    }
}
