//! Session descriptions the neighbours of the virtual world offer and
//! answer with: a carrier's or gateway's plain RTP, Microsoft's SRTP.

/// Plain RTP/AVP with PCMA, PCMU and telephone-event (a carrier, a gateway).
pub fn rtp(ip: &str, port: u16, dir: &str) -> String {
    format!(
        "v=0\r\no=peer 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 8 0 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\na={dir}\r\n"
    )
}

/// Microsoft's media processor: RTP/SAVP with an SDES key, ICE attributes
/// and a separate RTCP port.
pub fn srtp(ip: &str, port: u16, key: &str, dir: &str) -> String {
    format!(
        "v=0\r\no=- 7 {port} IN IP4 {ip}\r\ns=session\r\nc=IN IP4 {ip}\r\nb=CT:10000000\r\nt=0 0\r\n\
         m=audio {port} RTP/SAVP 8 0 101 13\r\nc=IN IP4 {ip}\r\n\
         a=rtcp:{} IN IP4 {ip}\r\n\
         a=ice-ufrag:abcd\r\na=ice-pwd:0123456789012345678901\r\n\
         a=candidate:1 1 UDP 2130706431 {ip} {port} typ host\r\n\
         a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key}|2^31\r\n\
         a=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n\
         a=fmtp:101 0-16\r\na=rtpmap:13 CN/8000\r\na=ptime:20\r\na={dir}\r\n",
        port + 1
    )
}

/// A 30-byte SDES key and salt, base64.
pub const KEY1: &str = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz";
/// Another one, for re-keying.
pub const KEY2: &str = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNk";
