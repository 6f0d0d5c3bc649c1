//! The simulated peers' media: numbered 160-byte PCMA frames every 20 ms,
//! SRTP-protected with `media::SrtpContext` when the SDP has a key, and a
//! check that the other side's frames arrive intact.

use std::net::SocketAddr;
use std::time::Duration;

use media::{CryptoAttribute, RtpHeader, SrtpContext, SrtpProfile};
use tokio::net::UdpSocket;
use tokio::time::Instant;

use super::{next_number, Result, SUITE};

/// The far end's media as its SDP describes it.
#[derive(Debug)]
pub(crate) struct Remote {
    pub(crate) addr: SocketAddr,
    pub(crate) proto: String,
    /// Its `a=crypto` AES_CM_128_HMAC_SHA1_80 key, if any.
    pub(crate) crypto: Option<CryptoAttribute>,
    /// It offers or accepts `a=rtcp-mux`.
    pub(crate) rtcp_mux: bool,
    /// The payload types of its m= line, in order.
    pub(crate) formats: Vec<String>,
}

impl Remote {
    pub(crate) fn read(body: &[u8]) -> Result<Remote> {
        let sd = sdp::SessionDescription::parse(body).map_err(|e| format!("SDP: {e:?}"))?;
        let m = sd.media().first().ok_or("SDP without m= line")?;
        let ip = sd
            .effective_connection(0)
            .and_then(|c| c.ip())
            .ok_or("SDP without a connection address")?;
        let port = m.port().ok_or("SDP m= line without port")?;
        let crypto = m
            .crypto()
            .find(|c| c.suite == SUITE)
            .map(|c| CryptoAttribute::parse(&format!("{} {} {}", c.tag, c.suite, c.params)))
            .transpose()
            .map_err(|e| format!("a=crypto: {e:?}"))?;
        // The m= line: "audio PORT PROTO FMT…".
        let text = String::from_utf8_lossy(body);
        let formats = text
            .lines()
            .find(|l| l.starts_with("m="))
            .map(|l| l.split_whitespace().skip(3).map(str::to_owned).collect())
            .unwrap_or_default();
        Ok(Remote {
            addr: SocketAddr::new(ip, port),
            proto: m.proto().unwrap_or_default().to_owned(),
            crypto,
            rtcp_mux: text.lines().any(|l| l.trim() == "a=rtcp-mux"),
            formats,
        })
    }
}

/// One side's audio: a UDP socket sending 160-byte PCMA frames every 20 ms,
/// SRTP-protected when `key` is set.
pub(crate) struct Audio {
    sock: UdpSocket,
    remote: Option<SocketAddr>,
    /// Our SRTP key (put in our SDP) …
    key: Option<CryptoAttribute>,
    /// … and the contexts: ours to send, the far end's to receive.
    srtp: Option<(SrtpContext, SrtpContext)>,
    ssrc: u32,
    seq: u16,
    frame: u32,
}

impl Audio {
    pub(crate) async fn rtp() -> Result<Audio> {
        let sock = UdpSocket::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("media socket: {e}"))?;
        let n = next_number();
        Ok(Audio {
            sock,
            remote: None,
            key: None,
            srtp: None,
            ssrc: 0x5bc0_0000 | (n as u32 & 0xffff),
            seq: (n as u16).wrapping_mul(1000),
            frame: 0,
        })
    }

    pub(crate) async fn srtp() -> Result<Audio> {
        let mut a = Audio::rtp().await?;
        a.key = Some(
            CryptoAttribute::generate(1, SrtpProfile::AesCm128HmacSha1_80)
                .map_err(|e| format!("SRTP key: {e:?}"))?,
        );
        Ok(a)
    }

    fn port(&self) -> u16 {
        self.sock.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// Our SDP: PCMA and telephone-event, SRTP with our key or plain RTP.
    pub(crate) fn sdp(&self) -> Vec<u8> {
        let (proto, crypto) = match &self.key {
            Some(k) => ("RTP/SAVP", format!("{}\r\n", k.to_sdp_line())),
            None => ("RTP/AVP", String::new()),
        };
        format!(
            "v=0\r\no=- {s} 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio {port} {proto} 8 101\r\na=rtpmap:8 PCMA/8000\r\n\
             a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n{crypto}a=ptime:20\r\na=sendrecv\r\n",
            s = self.ssrc,
            port = self.port(),
        )
        .into_bytes()
    }

    /// Where to send, and (SRTP) the contexts from both keys.
    pub(crate) fn set_remote(&mut self, r: &Remote) -> Result<()> {
        self.remote = Some(r.addr);
        if let Some(ours) = &self.key {
            let theirs = r
                .crypto
                .as_ref()
                .ok_or(format!("the SBC's SDP has no a=crypto {SUITE}"))?;
            let ctx = |k: &CryptoAttribute| {
                k.srtp_policy()
                    .map_err(|e| format!("{e:?}"))
                    .and_then(|p| SrtpContext::new(&p).map_err(|e| format!("{e:?}")))
            };
            self.srtp = Some((ctx(ours)?, ctx(theirs)?));
        }
        Ok(())
    }

    /// Sends `packets` frames marked `me` while counting the frames marked
    /// `peer` that arrive intact, until 400 ms after the last one was due.
    async fn exchange(&mut self, me: u8, peer: u8, packets: u32) -> Result<Flow> {
        let to = self.remote.ok_or("no remote media address")?;
        let mut flow = Flow::default();
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        let end = Instant::now() + Duration::from_millis(20 * u64::from(packets) + 400);
        let mut buf = [0u8; 1500];
        loop {
            tokio::select! {
                _ = tick.tick(), if flow.sent < packets => {
                    let len = self.packet(me, &mut buf)?;
                    self.sock.send_to(&buf[..len], to).await.map_err(|e| format!("media send: {e}"))?;
                    flow.sent += 1;
                }
                r = self.sock.recv_from(&mut buf) => match r {
                    Ok((n, _)) => self.receive(&mut buf[..n], peer, &mut flow),
                    // An ICMP error for an earlier datagram: not media.
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
                    Err(e) => return Err(format!("media receive: {e}")),
                },
                () = tokio::time::sleep_until(end) => return Ok(flow),
            }
        }
    }

    /// Writes the next RTP (or SRTP) packet into `buf`; returns its length.
    fn packet(&mut self, me: u8, buf: &mut [u8]) -> Result<usize> {
        let marker = if self.frame == 0 { 0x80 } else { 0 };
        buf[0] = 0x80;
        buf[1] = marker | 8;
        buf[2..4].copy_from_slice(&self.seq.to_be_bytes());
        buf[4..8].copy_from_slice(&self.frame.wrapping_mul(160).to_be_bytes());
        buf[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        buf[12..172].copy_from_slice(&payload(me, self.frame));
        self.seq = self.seq.wrapping_add(1);
        self.frame += 1;
        match &mut self.srtp {
            Some((tx, _)) => tx.protect_rtp(buf, 172).map_err(|e| format!("SRTP: {e:?}")),
            None => Ok(172),
        }
    }

    fn receive(&mut self, pkt: &mut [u8], peer: u8, flow: &mut Flow) {
        let len = match &mut self.srtp {
            Some((_, rx)) => match rx.unprotect_rtp(pkt) {
                Ok(n) => n,
                Err(_) => {
                    flow.auth_failed += 1;
                    return;
                }
            },
            None => pkt.len(),
        };
        let Ok(h) = RtpHeader::parse(&pkt[..len]) else {
            flow.damaged += 1;
            return;
        };
        let body = &pkt[h.header_len()..len];
        let frame = body
            .get(1..5)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(u32::from_be_bytes);
        match frame {
            Some(f) if body.first() == Some(&peer) && body == payload(peer, f) => flow.intact += 1,
            _ => flow.damaged += 1,
        }
    }
}

/// The 160 bytes of frame `n` from side `from`: recognisable and checkable.
fn payload(from: u8, n: u32) -> [u8; 160] {
    let mut p = [0u8; 160];
    p[0] = from;
    p[1..5].copy_from_slice(&n.to_be_bytes());
    for (i, b) in p.iter_mut().enumerate().skip(5) {
        *b = (i as u8).wrapping_mul(31) ^ from ^ (n as u8);
    }
    p
}

/// What one side sent and received.
#[derive(Debug, Default, Clone, Copy)]
struct Flow {
    sent: u32,
    intact: u32,
    damaged: u32,
    auth_failed: u32,
}

/// Audio both ways between `a` and `b` at the same time, `packets` frames
/// each; each checks the other's payloads arrive intact (at least 80 %,
/// nothing damaged). Returns the summary line
/// (`audio: A → B 75 sent, 75 arrived intact; B → A …`).
pub(crate) async fn audio(
    a: (&str, &mut Audio),
    b: (&str, &mut Audio),
    packets: u32,
) -> Result<String> {
    let ((na, aa), (nb, ab)) = (a, b);
    let (fa, fb) = tokio::join!(
        aa.exchange(b'A', b'B', packets),
        ab.exchange(b'B', b'A', packets)
    );
    let (fa, fb) = (fa?, fb?);
    for (from, to, sent, got) in [(na, nb, fa, fb), (nb, na, fb, fa)] {
        if got.damaged > 0 || got.auth_failed > 0 || got.intact * 10 < sent.sent * 8 {
            return Err(format!(
                "audio {from} → {to}: {} sent, {} intact, {} damaged, {} failed SRTP authentication",
                sent.sent, got.intact, got.damaged, got.auth_failed
            ));
        }
    }
    Ok(format!(
        "audio: {na} → {nb} {} sent, {} arrived intact; {nb} → {na} {} sent, {} arrived intact",
        fa.sent, fb.intact, fb.sent, fa.intact
    ))
}
