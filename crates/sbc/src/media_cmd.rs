//! `sbc media`: the media relay alone, driven over the rtpengine "ng"
//! control protocol, so that Kamailio's and OpenSIPS' `rtpengine` modules
//! (and our benchmarks) can use it in place of rtpengine.
//!
//! Model (as rtpengine's): an `offer` from party A (its `from-tag`) creates a
//! relay session per media section with leg A facing A and leg B facing B,
//! and returns A's SDP rewritten to leg B's address and ports; the `answer`
//! from B (its `to-tag`) completes leg B and returns B's SDP rewritten to
//! leg A. SDES keys: each side's `a=crypto` is the key *it* encrypts with;
//! the relay generates its own key for each SRTP side it sends to.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use media::{choose_crypto, CryptoAttribute, SrtpPolicy, SrtpProfile};
use ng::{Command, Reply, Request};
use relay::{CryptoSpec, LegSpec, Relay, RelayConfig, RelayEvent, Side};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Address of the ng control socket (UDP).
    #[arg(long, default_value = "127.0.0.1:2223")]
    ng: SocketAddr,
    /// Media interface `[NAME/]IP[!ADVERTISED-IP]`; repeat for several (the first is the default).
    #[arg(long = "interface", default_values_t = ["127.0.0.1".to_owned()])]
    interfaces: Vec<String>,
    /// Lowest media port.
    #[arg(long, default_value_t = 30000)]
    port_min: u16,
    /// Highest media port.
    #[arg(long, default_value_t = 40000)]
    port_max: u16,
    /// Relay worker threads (0: one per core).
    #[arg(long, default_value_t = 0)]
    workers: usize,
    /// Worker socket I/O: `uring` (io_uring, Linux 6.10+; falls back to epoll) or `epoll`.
    #[arg(long, default_value = "uring")]
    io: relay::Io,
    /// Seconds without media after which a call is deleted.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
}

/// SDES profiles we accept, best first.
const PREFERENCE: [SrtpProfile; 3] = [
    SrtpProfile::AesCm128HmacSha1_80,
    SrtpProfile::AeadAes128Gcm,
    SrtpProfile::AesCm128HmacSha1_32,
];

#[derive(Debug)]
struct Stream {
    session: u64,
    /// A's proto as offered (what the answer to A must use).
    a_proto: String,
    /// Key A encrypts with, and the tag of A's crypto line we chose.
    a_rx: Option<(SrtpPolicy, u32)>,
    /// Our key toward A (made at the answer).
    a_tx: Option<CryptoAttribute>,
    /// Our key toward B (made at the offer, kept for re-offers).
    b_tx: Option<CryptoAttribute>,
    b_rx: Option<SrtpPolicy>,
    a_mux: bool,
}

#[derive(Debug)]
struct Call {
    created: i64,
    last_signal: i64,
    from_tag: Vec<u8>,
    to_tag: Option<Vec<u8>>,
    streams: Vec<Option<Stream>>,
}

struct Server {
    relay: Relay,
    calls: HashMap<Vec<u8>, Call>,
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn err(reason: &str) -> Reply {
    Reply::Error(ng::ErrorReply::new(reason))
}

fn is_secure(proto: &str) -> bool {
    proto.contains("SAVP")
}

fn policy_of(a: &CryptoAttribute) -> Option<SrtpPolicy> {
    let profile = a.suite.profile()?;
    let key = a.keys.first()?;
    SrtpPolicy::from_key_salt(profile, key.key_salt()).ok()
}

fn choose(m: &sdp::MediaDescription) -> Option<(SrtpPolicy, CryptoAttribute)> {
    let offered: Vec<CryptoAttribute> = m
        .crypto()
        .filter_map(|c| CryptoAttribute::parse(&format!("{} {} {}", c.tag, c.suite, c.params)).ok())
        .collect();
    let chosen = choose_crypto(&offered, &PREFERENCE)?;
    Some((policy_of(chosen)?, chosen.clone()))
}

fn interface_index(cfg: &RelayConfig, name: Option<&ng::BStr<'_>>) -> usize {
    name.and_then(|n| n.to_str())
        .and_then(|n| cfg.interfaces.iter().position(|i| i.name == n))
        .unwrap_or(0)
}

/// Points one media section at a leg of the relay: its port and address,
/// the protocol the party expects, our SDES key toward it (or none), and
/// RTCP muxed or on its own port.
fn rewrite_media(
    mm: &mut sdp::MediaDescription,
    ports: relay::LegPorts,
    proto: &str,
    key: Option<&CryptoAttribute>,
    mux: bool,
) -> Result<(), String> {
    mm.set_port(ports.rtp.port()).map_err(|e| e.to_string())?;
    if mm.connection().is_some() {
        mm.set_connection(ports.advertised);
    }
    mm.set_proto(proto).map_err(|e| e.to_string())?;
    mm.remove_ice();
    match key {
        Some(k) => {
            let text = k.to_string();
            let (tag, rest) = text.split_once(' ').unwrap_or(("1", &text));
            mm.replace_crypto([(tag.parse().unwrap_or(1), rest)])
                .map_err(|e| e.to_string())?;
        }
        None => {
            mm.remove_crypto();
        }
    }
    mm.set_rtcp_mux(mux);
    if mux {
        mm.remove_rtcp();
    } else {
        mm.set_rtcp(ports.rtcp.port(), None);
    }
    Ok(())
}

/// Session-level rewrite after the media sections: connection, origin (when
/// asked), no ICE.
fn finish_sdp(mut sd: sdp::SessionDescription, addr: Option<IpAddr>, req: &Request<'_>) -> Reply {
    if let Some(addr) = addr {
        if sd.connection().is_some() {
            sd.set_connection(addr);
        }
        if req.replace.iter().any(|r| matches!(r, ng::Replace::Origin)) {
            let _ = sd.set_origin_address(addr);
        }
    }
    sd.remove_ice_everywhere();
    Reply::Sdp {
        sdp: sd.to_bytes(),
        warning: None,
    }
}

impl Server {
    fn handle(&mut self, req: &Request<'_>, src: SocketAddr) -> Reply {
        match req.command {
            Command::Ping => Reply::Pong,
            Command::Offer => self.offer(req, src).unwrap_or_else(|e| err(&e)),
            Command::Answer => self.answer(req).unwrap_or_else(|e| err(&e)),
            Command::Delete => self.delete(req),
            Command::Query => self.query(req),
            Command::List => Reply::List {
                calls: self.calls.keys().cloned().collect(),
            },
        }
    }

    fn offer(&mut self, req: &Request<'_>, _src: SocketAddr) -> Result<Reply, String> {
        let call_id = req
            .call_id
            .ok_or("No call-id in message")?
            .as_bytes()
            .to_vec();
        let from_tag = req
            .from_tag
            .ok_or("No from-tag in message")?
            .as_bytes()
            .to_vec();
        let sdp_text = req.sdp.ok_or("No SDP body in message")?;
        let mut sd = sdp::SessionDescription::parse(sdp_text.as_bytes())
            .map_err(|e| format!("Failed to parse SDP: {e}"))?;
        let cfg = self.relay.config();
        let ia = interface_index(cfg, req.direction.first());
        let ib = interface_index(cfg, req.direction.get(1));
        let out_proto = req
            .transport_protocol
            .as_ref()
            .and_then(|t| std::str::from_utf8(t.as_bytes()).ok().map(str::to_owned));
        let strict = req
            .flags
            .iter()
            .any(|f| matches!(f, ng::Flag::StrictSource));
        let sip_source = req
            .flags
            .iter()
            .any(|f| matches!(f, ng::Flag::SipSourceAddress));
        let received_ip = req.received_from.as_ref().and_then(ng::ReceivedFrom::ip);
        let demux = req.rtcp_mux.iter().any(|m| matches!(m, ng::RtcpMux::Demux));
        let offer_mux = req
            .rtcp_mux
            .iter()
            .any(|m| matches!(m, ng::RtcpMux::Offer | ng::RtcpMux::Require));
        let now = unix_now();
        let existing = self
            .calls
            .get(&call_id)
            .is_some_and(|c| c.from_tag == from_tag);
        if !existing {
            if let Some(old) = self.calls.remove(&call_id) {
                self.drop_call(old);
            }
        }
        let call = self.calls.entry(call_id.clone()).or_insert_with(|| Call {
            created: now,
            last_signal: now,
            from_tag: from_tag.clone(),
            to_tag: None,
            streams: Vec::new(),
        });
        call.last_signal = now;
        let mut b_addr: Option<IpAddr> = None;
        for i in 0..sd.media().len() {
            let conn_ip = sd.effective_connection(i).and_then(|c| c.ip());
            let m = &sd.media()[i];
            let Some(port) = m.port().filter(|p| *p != 0) else {
                continue;
            };
            let proto = m.proto().unwrap_or("RTP/AVP").to_owned();
            let ip = if sip_source {
                received_ip.or(conn_ip)
            } else {
                conn_ip
            };
            let remote_rtp = ip.map(|ip| SocketAddr::new(ip, port));
            let remote_rtcp = m.rtcp().map(|r| {
                SocketAddr::new(
                    r.connection
                        .and_then(|c| c.ip())
                        .or(ip)
                        .unwrap_or(IpAddr::from([0, 0, 0, 0])),
                    r.port,
                )
            });
            let a_mux = m.rtcp_mux();
            let a_rx = if is_secure(&proto) {
                let (p, attr) = choose(m).ok_or("No usable SDES crypto attribute in the offer")?;
                Some((p, attr.tag))
            } else {
                None
            };
            let b_proto = out_proto
                .clone()
                .filter(|p| p != "accept")
                .unwrap_or_else(|| proto.clone());
            while call.streams.len() <= i {
                call.streams.push(None);
            }
            let slot = &mut call.streams[i];
            let b_tx = if is_secure(&b_proto) {
                match slot.as_ref().and_then(|s| s.b_tx.clone()) {
                    Some(k) => Some(k),
                    None => {
                        let profile = a_rx
                            .as_ref()
                            .map_or(SrtpProfile::AesCm128HmacSha1_80, |(p, _)| p.profile);
                        Some(
                            CryptoAttribute::generate(1, profile)
                                .map_err(|e| format!("SDES: {e}"))?,
                        )
                    }
                }
            } else {
                None
            };
            let a_crypto = CryptoSpec {
                rx: a_rx.as_ref().map(|(p, _)| p.clone()),
                tx: slot
                    .as_ref()
                    .and_then(|s| s.a_tx.as_ref())
                    .and_then(policy_of),
            };
            let b_crypto = CryptoSpec {
                rx: slot.as_ref().and_then(|s| s.b_rx.clone()),
                tx: b_tx.as_ref().and_then(policy_of),
            };
            let session = match slot {
                Some(s) => {
                    self.relay
                        .update(s.session, Side::A, remote_rtp, remote_rtcp, Some(a_crypto))
                        .map_err(|e| e.to_string())?;
                    self.relay
                        .update(s.session, Side::B, None, None, Some(b_crypto))
                        .map_err(|e| e.to_string())?;
                    s.a_proto = proto.clone();
                    s.a_rx = a_rx;
                    s.b_tx = b_tx.clone();
                    s.a_mux = a_mux;
                    s.session
                }
                None => {
                    let leg_a = LegSpec {
                        interface: ia,
                        remote_rtp,
                        remote_rtcp,
                        rtcp_mux: a_mux,
                        strict_source: strict,
                        crypto: a_crypto,
                        ..LegSpec::default()
                    };
                    let leg_b = LegSpec {
                        interface: ib,
                        rtcp_mux: a_mux && !demux || offer_mux,
                        crypto: b_crypto,
                        ..LegSpec::default()
                    };
                    let info = self
                        .relay
                        .create(leg_a, leg_b)
                        .map_err(|e| format!("Failed to allocate media ports: {e}"))?;
                    *slot = Some(Stream {
                        session: info.id,
                        a_proto: proto.clone(),
                        a_rx,
                        a_tx: None,
                        b_tx: b_tx.clone(),
                        b_rx: None,
                        a_mux,
                    });
                    info.id
                }
            };
            let info = self.relay.info(session).ok_or("relay session vanished")?;
            b_addr = Some(info.b.advertised);
            let mux = (a_mux && !demux) || offer_mux;
            rewrite_media(&mut sd.media_mut()[i], info.b, &b_proto, b_tx.as_ref(), mux)?;
        }
        Ok(finish_sdp(sd, b_addr, req))
    }

    fn answer(&mut self, req: &Request<'_>) -> Result<Reply, String> {
        let call_id = req
            .call_id
            .ok_or("No call-id in message")?
            .as_bytes()
            .to_vec();
        let sdp_text = req.sdp.ok_or("No SDP body in message")?;
        let mut sd = sdp::SessionDescription::parse(sdp_text.as_bytes())
            .map_err(|e| format!("Failed to parse SDP: {e}"))?;
        let call = self.calls.get_mut(&call_id).ok_or("Unknown call-id")?;
        call.last_signal = unix_now();
        call.to_tag = req.to_tag.map(|t| t.as_bytes().to_vec());
        let mut a_addr: Option<IpAddr> = None;
        for i in 0..sd.media().len() {
            let conn_ip = sd.effective_connection(i).and_then(|c| c.ip());
            let Some(Some(stream)) = call.streams.get_mut(i) else {
                continue;
            };
            let m = &sd.media()[i];
            let port = m.port().unwrap_or(0);
            let proto = m.proto().unwrap_or("RTP/AVP").to_owned();
            let remote_rtp = conn_ip
                .filter(|_| port != 0)
                .map(|ip| SocketAddr::new(ip, port));
            let remote_rtcp = m.rtcp().and_then(|r| {
                r.connection
                    .and_then(|c| c.ip())
                    .or(conn_ip)
                    .map(|ip| SocketAddr::new(ip, r.port))
            });
            let b_rx = if is_secure(&proto) {
                Some(
                    choose(m)
                        .ok_or("No usable SDES crypto attribute in the answer")?
                        .0,
                )
            } else {
                None
            };
            stream.b_rx = b_rx.clone();
            if is_secure(&stream.a_proto) && stream.a_tx.is_none() {
                let (profile, tag) = stream
                    .a_rx
                    .as_ref()
                    .map_or((SrtpProfile::AesCm128HmacSha1_80, 1), |(p, t)| {
                        (p.profile, *t)
                    });
                stream.a_tx = Some(
                    CryptoAttribute::generate(tag, profile).map_err(|e| format!("SDES: {e}"))?,
                );
            }
            let b_crypto = CryptoSpec {
                rx: b_rx,
                tx: stream.b_tx.as_ref().and_then(policy_of),
            };
            let a_crypto = CryptoSpec {
                rx: stream.a_rx.as_ref().map(|(p, _)| p.clone()),
                tx: stream.a_tx.as_ref().and_then(policy_of),
            };
            self.relay
                .update(
                    stream.session,
                    Side::B,
                    remote_rtp,
                    remote_rtcp,
                    Some(b_crypto),
                )
                .map_err(|e| e.to_string())?;
            self.relay
                .update(stream.session, Side::A, None, None, Some(a_crypto))
                .map_err(|e| e.to_string())?;
            let info = self
                .relay
                .info(stream.session)
                .ok_or("relay session vanished")?;
            a_addr = Some(info.a.advertised);
            rewrite_media(
                &mut sd.media_mut()[i],
                info.a,
                &stream.a_proto,
                stream.a_tx.as_ref(),
                stream.a_mux,
            )?;
        }
        Ok(finish_sdp(sd, a_addr, req))
    }

    // ng's statistics structs are #[non_exhaustive]: built from Default, field by field.
    #[allow(clippy::field_reassign_with_default)]
    fn stats(&self, call: &Call) -> ng::CallStats {
        let mut totals = ng::Totals::default();
        let mut tags = Vec::new();
        for (side, tag) in [
            (0usize, Some(call.from_tag.clone())),
            (1, call.to_tag.clone()),
        ] {
            let mut medias = Vec::new();
            for (i, s) in call.streams.iter().enumerate() {
                let Some(s) = s else { continue };
                let (Ok(st), Some(info)) =
                    (self.relay.query(s.session), self.relay.info(s.session))
                else {
                    continue;
                };
                let leg = st[side];
                let ports = if side == 0 { info.a } else { info.b };
                totals.rtp.packets += leg.packets;
                totals.rtp.bytes += leg.bytes;
                totals.rtp.errors += leg.auth_failures + leg.dropped + leg.replays;
                totals.rtcp.packets += leg.rtcp_packets;
                let mut stream = ng::StreamStats::default();
                stream.local_port = ports.rtp.port();
                stream.stats = ng::Counters {
                    packets: leg.packets,
                    bytes: leg.bytes,
                    errors: leg.auth_failures + leg.dropped + leg.replays,
                };
                let mut media = ng::MediaStats::default();
                media.index = i as u32 + 1;
                media.media_type = "audio".into();
                media.protocol = s.a_proto.clone();
                media.streams = vec![stream];
                medias.push(media);
            }
            let mut t = ng::TagStats::default();
            t.tag = tag.unwrap_or_default();
            t.created = call.created;
            t.medias = medias;
            tags.push(t);
        }
        let mut cs = ng::CallStats::default();
        cs.created = call.created;
        cs.last_signal = call.last_signal;
        cs.tags = tags;
        cs.totals = totals;
        cs
    }

    fn delete(&mut self, req: &Request<'_>) -> Reply {
        let Some(call_id) = req.call_id else {
            return err("No call-id in message");
        };
        match self.calls.remove(call_id.as_bytes()) {
            Some(call) => {
                let stats = self.stats(&call);
                self.drop_call(call);
                tracing::info!(
                    call_id = %String::from_utf8_lossy(call_id.as_bytes()),
                    a_packets = stats.tags.first().map_or(0, |t| t.medias.iter().map(|m| m.streams.iter().map(|s| s.stats.packets).sum::<u64>()).sum::<u64>()),
                    b_packets = stats.tags.get(1).map_or(0, |t| t.medias.iter().map(|m| m.streams.iter().map(|s| s.stats.packets).sum::<u64>()).sum::<u64>()),
                    "call deleted"
                );
                Reply::Deleted(Some(stats))
            }
            None => err("Unknown call-id"),
        }
    }

    fn query(&self, req: &Request<'_>) -> Reply {
        let Some(call_id) = req.call_id else {
            return err("No call-id in message");
        };
        match self.calls.get(call_id.as_bytes()) {
            Some(call) => Reply::Query(self.stats(call)),
            None => err("Unknown call-id"),
        }
    }

    fn drop_call(&mut self, call: Call) {
        for s in call.streams.into_iter().flatten() {
            let _ = self.relay.delete(s.session);
        }
    }

    fn on_inactive(&mut self, id: u64) {
        let victim = self
            .calls
            .iter()
            .find(|(_, c)| c.streams.iter().flatten().any(|s| s.session == id))
            .map(|(k, _)| k.clone());
        if let Some(k) = victim {
            if let Some(call) = self.calls.remove(&k) {
                tracing::info!(call_id = %String::from_utf8_lossy(&k), "no media: call deleted");
                self.drop_call(call);
            }
        }
    }
}

pub(crate) fn run(args: &Args) -> Result<(), String> {
    let interfaces = args
        .interfaces
        .iter()
        .map(|s| relay::Interface::parse(s))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("--interface {e}"))?;
    if args.port_min >= args.port_max {
        return Err("--port-min must be below --port-max".into());
    }
    let relay = Relay::start(RelayConfig {
        interfaces,
        port_min: args.port_min,
        port_max: args.port_max,
        workers: args.workers,
        inactivity: Duration::from_secs(args.timeout.max(1)),
        io: args.io,
        ..RelayConfig::default()
    })
    .map_err(|e| format!("cannot start the relay: {e}"))?;
    let sock = UdpSocket::bind(args.ng).map_err(|e| format!("--ng {}: {e}", args.ng))?;
    sock.set_read_timeout(Some(Duration::from_millis(250)))
        .map_err(|e| e.to_string())?;
    let local = sock.local_addr().map_err(|e| e.to_string())?;
    println!("listening ng {local}");
    tracing::info!(%local, ports = %format!("{}-{}", args.port_min, args.port_max), "media relay: ng control listening");
    let mut server = Server {
        relay,
        calls: HashMap::new(),
    };
    let mut buf = vec![0u8; 65_536];
    let mut last_events = Instant::now();
    loop {
        match sock.recv_from(&mut buf) {
            Ok((n, src)) => {
                let reply = match ng::parse_request(&buf[..n]) {
                    Ok(req) => {
                        let r = server.handle(&req, src);
                        Some(ng::encode_reply(req.cookie, &r))
                    }
                    Err((Some(cookie), e)) => {
                        tracing::info!(%src, reason = ?e, "bad ng request");
                        Some(ng::encode_reply(cookie, &Reply::Error(e)))
                    }
                    // No cookie: nothing to answer to.
                    Err((None, _)) => None,
                };
                if let Some(r) = reply {
                    let _ = sock.send_to(&r, src);
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => tracing::debug!(%e, "ng receive error"),
        }
        if last_events.elapsed() >= Duration::from_millis(250) {
            last_events = Instant::now();
            while let Some(ev) = server.relay.poll_event() {
                match ev {
                    RelayEvent::Inactive { id } => server.on_inactive(id),
                    // The ng server deletes with replies (`Relay::delete`).
                    RelayEvent::Removed { .. } => {}
                    // Telephone-events become SIP INFO in `sbc run` only.
                    RelayEvent::Dtmf { .. } => {}
                }
            }
        }
    }
}
