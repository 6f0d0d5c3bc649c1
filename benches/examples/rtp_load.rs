//! Paced RTP load against a media relay spoken to over the rtpengine ng
//! protocol (`sbc media` or rtpengine); see scripts/bench-media and
//! docs/performance.md ("Media relay: sbc media vs rtpengine").
//!
//! Creates `flows / 2` calls (offer from A, answer from B), then sends 172-byte
//! RTP packets at `--rate` packets/s per flow (A→B and B→A, flows staggered
//! over the packet interval) for `--warmup + --duration` seconds and receives
//! them back at the sinks. In `srtp` mode the offer asks the relay for
//! RTP/SAVP toward B: B sends SRTP (its own SDES key), the relay decrypts it
//! toward A and encrypts A's plain RTP toward B, and the B sink decrypts that
//! with the key from the relay's offer (every packet is verified).
//!
//! One thread; the calls are spread in contiguous blocks over `--sockets`
//! non-blocking UDP sockets (default 4; A and B of a call share one, told
//! apart by SSRC; the relays still have a port per leg). Packets due at the
//! same moment go out in one `sendmmsg` per socket (at most `--batch`, 16,
//! per call) and are read back with `recvmmsg` (`benches/udp_batch.rs`).
//! Each packet carries its send time (CLOCK_REALTIME, taken as it is
//! built, just before its batch's `sendmmsg`); its receive time is the
//! kernel's timestamp (`SO_TIMESTAMPNS`) when it reached the sink socket,
//! so the generator's own wake-ups do not count as relay latency. A packet
//! later in a batch is stamped before the ones ahead of it are sent (≈ 2 µs
//! each on loopback), which adds up to ≈ batch × 2 µs to its measured
//! latency, the same for every relay. When everything is read and nothing
//! is due, the generator sleeps one tick (`--tick-us`, 200 µs) or until the
//! next packet is due if later: packets falling due within a tick leave
//! together (each stamped when it leaves), so a send is late by up to a
//! tick plus the wake-up.
//!
//! Prints one line of `key=value` results: loss, added latency p50/p99/max,
//! the relay's CPU (utime+stime from /proc/PID/stat) per relayed packet, and
//! how far the generator fell behind its schedule (if `gen_late_ms` is
//! large, the generator and not the relay is the bottleneck).
//!
//! Usage: rtp_load --ng 127.0.0.1:2223 --pid PID [--mode plain|srtp]
//!        [--flows 1000] [--rate 50] [--warmup 2] [--duration 10] [--label X]
//!        [--sockets 4] [--batch 16] [--tick-us 200]

use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use media::{CryptoAttribute, SrtpContext, SrtpProfile};
use sbc_benches::udp_batch::{self, Out, UdpBatch};

const PKT: usize = 172;
const SSRC_BASE: u32 = 0x5b00_0000;
/// Waits shorter than this are not slept (the next packet is due).
const IDLE_SPIN_NS: u64 = 1_000;
const SUITE: &str = "AES_CM_128_HMAC_SHA1_80";

struct Args {
    ng: SocketAddr,
    pid: u32,
    srtp: bool,
    flows: usize,
    rate: u32,
    warmup: f64,
    duration: f64,
    label: String,
    tick_us: u64,
    sockets: usize,
    batch: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        ng: "127.0.0.1:2223".parse().map_err(|e| format!("{e}"))?,
        pid: 0,
        srtp: false,
        flows: 1000,
        rate: 50,
        warmup: 2.0,
        duration: 10.0,
        label: String::from("relay"),
        tick_us: 200,
        sockets: 4,
        batch: 16,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().ok_or_else(|| format!("{k} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{k} {v}: {e}");
        match k.as_str() {
            "--ng" => a.ng = v.parse().map_err(|e| bad(&e))?,
            "--pid" => a.pid = v.parse().map_err(|e| bad(&e))?,
            "--mode" => {
                a.srtp = match v.as_str() {
                    "plain" => false,
                    "srtp" => true,
                    _ => return Err(format!("--mode plain|srtp, not {v}")),
                }
            }
            "--flows" => a.flows = v.parse().map_err(|e| bad(&e))?,
            "--rate" => a.rate = v.parse().map_err(|e| bad(&e))?,
            "--warmup" => a.warmup = v.parse().map_err(|e| bad(&e))?,
            "--duration" => a.duration = v.parse().map_err(|e| bad(&e))?,
            "--label" => a.label = v,
            "--tick-us" => a.tick_us = v.parse().map_err(|e| bad(&e))?,
            "--sockets" => a.sockets = v.parse().map_err(|e| bad(&e))?,
            "--batch" => a.batch = v.parse().map_err(|e| bad(&e))?,
            _ => return Err(format!("unknown option {k}")),
        }
    }
    if a.flows < 2 || a.flows & 1 == 1 || a.rate == 0 {
        return Err("--flows must be even and ≥ 2, --rate ≥ 1".into());
    }
    Ok(a)
}

// ---- ng client (bencode over UDP) -------------------------------------------

enum B<'a> {
    S(&'a str),
    L(&'a [&'a str]),
}

fn bencode(items: &mut [(&str, B<'_>)]) -> Vec<u8> {
    items.sort_by(|x, y| x.0.cmp(y.0));
    let mut out = b"d".to_vec();
    let s = |out: &mut Vec<u8>, v: &str| {
        out.extend_from_slice(format!("{}:", v.len()).as_bytes());
        out.extend_from_slice(v.as_bytes());
    };
    for (k, v) in items.iter() {
        s(&mut out, k);
        match v {
            B::S(v) => s(&mut out, v),
            B::L(l) => {
                out.push(b'l');
                for v in l.iter() {
                    s(&mut out, v);
                }
                out.push(b'e');
            }
        }
    }
    out.push(b'e');
    out
}

/// The value of bencoded string key `key` in a flat reply, if any.
fn bget(reply: &[u8], key: &str) -> Option<String> {
    let pat = format!("{}:{}", key.len(), key);
    let at = reply.windows(pat.len()).position(|w| w == pat.as_bytes())? + pat.len();
    let colon = reply[at..].iter().position(|&b| b == b':')? + at;
    let n: usize = std::str::from_utf8(&reply[at..colon]).ok()?.parse().ok()?;
    let v = reply.get(colon + 1..colon + 1 + n)?;
    Some(String::from_utf8_lossy(v).into_owned())
}

struct Ng {
    sock: UdpSocket,
    n: u64,
    /// rtpengine answers a repeated cookie from its cache: unique per run.
    prefix: String,
}

impl Ng {
    fn cmd(&mut self, items: &mut [(&str, B<'_>)]) -> Result<Vec<u8>, String> {
        let body = bencode(items);
        let mut buf = vec![0u8; 65536];
        for _ in 0..5 {
            self.n += 1;
            let cookie = format!("{}.{}", self.prefix, self.n);
            let mut msg = format!("{cookie} ").into_bytes();
            msg.extend_from_slice(&body);
            self.sock.send(&msg).map_err(|e| format!("ng send: {e}"))?;
            let deadline = Instant::now() + Duration::from_secs(2);
            while Instant::now() < deadline {
                match self.sock.recv(&mut buf) {
                    Ok(n) => {
                        let r = &buf[..n];
                        if !r.starts_with(cookie.as_bytes()) {
                            continue; // a late reply to an earlier attempt
                        }
                        let r = r[cookie.len() + 1..].to_vec();
                        let res = bget(&r, "result").unwrap_or_default();
                        if res != "ok" && res != "pong" {
                            return Err(format!("ng error: {}", String::from_utf8_lossy(&r)));
                        }
                        return Ok(r);
                    }
                    Err(e)
                        if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut => {
                    }
                    Err(e) => return Err(format!("ng recv: {e}")),
                }
            }
        }
        Err("ng: no reply".into())
    }
}

fn sdp(id: usize, port: u16, proto: &str, extra: &str) -> String {
    format!(
        "v=0\r\no=- {id} 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {port} {proto} 0\r\na=rtpmap:0 PCMU/8000\r\n{extra}a=sendrecv\r\n"
    )
}

fn media_port(sdp: &str) -> Option<u16> {
    let l = sdp.lines().find(|l| l.starts_with("m=audio "))?;
    l.split_ascii_whitespace().nth(1)?.parse().ok()
}

struct Call {
    /// Relay port A sends to (from the answer) and B sends to (from the offer).
    to_relay_a: SocketAddr,
    to_relay_b: SocketAddr,
    /// srtp: B's outbound context (its key) and the B sink's (the relay's key).
    b_out: Option<SrtpContext>,
    b_in: Option<SrtpContext>,
}

fn setup(
    ng: &mut Ng,
    args: &Args,
    ports: &[u16],
    sock_of_call: &[usize],
    run: &str,
) -> Result<Vec<Call>, String> {
    let mut calls = Vec::with_capacity(args.flows / 2);
    for i in 0..args.flows / 2 {
        let call_id = format!("{run}-{i}");
        let local = ports[sock_of_call[i]];
        let offer = sdp(i, local, "RTP/AVP", "");
        let mut items = vec![
            ("command", B::S("offer")),
            ("call-id", B::S(&call_id)),
            ("from-tag", B::S("a")),
            ("sdp", B::S(&offer)),
            ("replace", B::L(&["origin", "session-connection"])),
            ("ICE", B::S("remove")),
        ];
        if args.srtp {
            items.push(("transport protocol", B::S("RTP/SAVP")));
        }
        let r = ng.cmd(&mut items)?;
        let to_b = bget(&r, "sdp").ok_or("offer: no sdp")?;
        let port_b = media_port(&to_b).ok_or("offer: no m=audio")?;
        let (answer, b_out, b_in) = if args.srtp {
            let line = to_b
                .lines()
                .find(|l| l.starts_with("a=crypto:") && l.contains(SUITE))
                .ok_or_else(|| format!("offer: no {SUITE} a=crypto:\n{to_b}"))?;
            let relay = CryptoAttribute::parse(line).map_err(|e| format!("{line}: {e:?}"))?;
            let mine = CryptoAttribute::generate(relay.tag, SrtpProfile::AesCm128HmacSha1_80)
                .map_err(|e| format!("{e:?}"))?;
            let ctx = |a: &CryptoAttribute| {
                a.srtp_policy()
                    .map_err(|e| format!("{e:?}"))
                    .and_then(|p| SrtpContext::new(&p).map_err(|e| format!("{e:?}")))
            };
            let extra = format!("{}\r\n", mine.to_sdp_line());
            (
                sdp(i, local, "RTP/SAVP", &extra),
                Some(ctx(&mine)?),
                Some(ctx(&relay)?),
            )
        } else {
            (sdp(i, local, "RTP/AVP", ""), None, None)
        };
        let r = ng.cmd(&mut [
            ("command", B::S("answer")),
            ("call-id", B::S(&call_id)),
            ("from-tag", B::S("a")),
            ("to-tag", B::S("b")),
            ("sdp", B::S(&answer)),
            ("replace", B::L(&["origin", "session-connection"])),
            ("ICE", B::S("remove")),
        ])?;
        let to_a = bget(&r, "sdp").ok_or("answer: no sdp")?;
        let port_a = media_port(&to_a).ok_or("answer: no m=audio")?;
        calls.push(Call {
            to_relay_a: SocketAddr::from(([127, 0, 0, 1], port_a)),
            to_relay_b: SocketAddr::from(([127, 0, 0, 1], port_b)),
            b_out,
            b_in,
        });
    }
    Ok(calls)
}

fn cpu_ticks(pid: u32) -> Result<u64, String> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).map_err(|e| format!("{e}"))?;
    let rest = &s[s.rfind(')').ok_or("bad stat")? + 2..];
    let f: Vec<&str> = rest.split_ascii_whitespace().collect();
    // fields 14 and 15 (utime, stime); `rest` starts at field 3.
    let t = |i: usize| {
        f.get(i - 3)
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or("bad stat")
    };
    Ok(t(14)? + t(15)?)
}

/// UDP receive-buffer drops of the local socket with port `port` (hex in /proc/net/udp).
fn udp_drops(port: u16) -> u64 {
    let Ok(s) = std::fs::read_to_string("/proc/net/udp") else {
        return 0;
    };
    let want = format!(":{port:04X}");
    s.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_ascii_whitespace().collect();
            (f.get(1)?.ends_with(&want)).then(|| f.last()?.parse::<u64>().ok())?
        })
        .sum()
}

fn pct(v: &[u32], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    f64::from(v[i]) / 1e6
}

/// Nanoseconds since the Unix epoch (CLOCK_REALTIME, the clock of the
/// kernel's receive timestamps).
fn real_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

fn run(args: &Args) -> Result<(), String> {
    let nsock = args.sockets.clamp(1, args.flows / 2);
    let mut socks = Vec::with_capacity(nsock);
    for _ in 0..nsock {
        let s = UdpSocket::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
        s.set_nonblocking(true).map_err(|e| format!("{e}"))?;
        udp_batch::enable_rx_timestamps(s.as_raw_fd())
            .map_err(|e| format!("SO_TIMESTAMPNS: {e}"))?;
        // Room for ≈ 20,000 packets each, so that a late generator does not
        // turn into loss at its own socket.
        let _ = udp_batch::set_rcvbuf(s.as_raw_fd(), 16 << 20);
        socks.push(s);
    }
    let ports: Vec<u16> = socks
        .iter()
        .map(|s| s.local_addr().map(|a| a.port()))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{e}"))?;
    let ngs = UdpSocket::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
    ngs.connect(args.ng)
        .map_err(|e| format!("ng connect: {e}"))?;
    ngs.set_read_timeout(Some(Duration::from_millis(200)))
        .map_err(|e| format!("{e}"))?;
    let run_id = format!("rl{}-{}", std::process::id(), real_ns() / 1_000_000);
    let mut ng = Ng {
        sock: ngs,
        n: 0,
        prefix: run_id.clone(),
    };
    let flows = args.flows;
    let ncalls = flows / 2;
    // Calls in contiguous blocks per socket, so that the packets due at one
    // moment mostly share a socket (one sendmmsg).
    let sock_of_call: Vec<usize> = (0..ncalls).map(|c| c * nsock / ncalls).collect();
    let t_setup = Instant::now();
    let mut calls = setup(&mut ng, args, &ports, &sock_of_call, &run_id)?;
    let setup_s = t_setup.elapsed().as_secs_f64();

    let period_ns = 1_000_000_000u64 / u64::from(args.rate);
    let warm_ns = (args.warmup * 1e9) as u64;
    let end_ns = warm_ns + (args.duration * 1e9) as u64;
    let mut seq = vec![0u16; flows];
    let mut sent_win = 0u64;
    let mut send_failed = 0u64;
    let mut recv_win = vec![0u32; flows];
    let mut recv_total = 0u64;
    let mut bad = 0u64;
    let mut no_stamp = 0u64;
    let mut lat: Vec<u32> =
        Vec::with_capacity((args.duration * f64::from(args.rate)) as usize * flows);
    let mut late_max = 0u64;
    let mut late_1ms = 0u64;
    let drops0: u64 = ports.iter().map(|&p| udp_drops(p)).sum();

    let batch = args.batch.max(1);
    let mut tx = UdpBatch::new(batch, 256);
    let mut rx = UdpBatch::new(64, 2048);
    let mut out: Vec<Out> = Vec::with_capacity(batch);
    let start = Instant::now();
    let start_real = real_ns();
    let mut idx = 0usize;
    let mut round = 0u64;
    let mut gen0 = (0u64, 0u64); // own (ticks, ns) at the window start
    let mut cpu0: Option<(u64, u64)> = None; // (ticks, recv_total) at the window start
    let mut finished_sending = false;
    let mut drain_until = u64::MAX;
    let tick_ns = args.tick_us.max(1) * 1000;
    let mut iterations = 0u64;
    let mut sleeps = 0u64;
    // Bounded: the loop ends at end_ns + the drain; this caps it in count too.
    let max_iterations = (end_ns + 1_000_000_000) / 1_000 + 1_000_000;
    loop {
        iterations += 1;
        if iterations > max_iterations {
            return Err("loop bound reached".into());
        }
        let now = start.elapsed().as_nanos() as u64;
        if cpu0.is_none() && now >= warm_ns {
            cpu0 = Some((cpu_ticks(args.pid)?, recv_total));
            gen0 = (cpu_ticks(std::process::id())?, now);
        }
        // Send everything due: batches of packets for one socket, stamped
        // (real time, in the payload) just before their sendmmsg.
        let mut due = round * period_ns + idx as u64 * period_ns / flows as u64;
        let mut cur_sock = usize::MAX;
        out.clear();
        while !finished_sending && due <= now {
            if due >= end_ns {
                finished_sending = true;
                drain_until = now + 300_000_000;
                break;
            }
            let f = idx;
            let sk = sock_of_call[f / 2];
            if sk != cur_sock || out.len() == batch {
                if !out.is_empty() {
                    send_failed += tx.send(socks[cur_sock].as_raw_fd(), &out) as u64;
                    out.clear();
                }
                cur_sock = sk;
            }
            let late = now - due;
            late_max = late_max.max(late);
            late_1ms += u64::from(late > 1_000_000);
            let call = &mut calls[f / 2];
            let s = seq[f];
            seq[f] = s.wrapping_add(1);
            let i = out.len();
            let pkt = tx.buf_mut(i);
            pkt[0] = 0x80;
            pkt[1] = 0;
            pkt[2..4].copy_from_slice(&s.to_be_bytes());
            pkt[4..8].copy_from_slice(&(u32::from(s) * 160).to_be_bytes());
            pkt[8..12].copy_from_slice(&(SSRC_BASE + f as u32).to_be_bytes());
            pkt[12..16].copy_from_slice(&(f as u32).to_be_bytes());
            let ts = real_ns();
            pkt[16..24].copy_from_slice(&ts.to_be_bytes());
            let mut len = PKT;
            let dest = if f & 1 == 0 {
                call.to_relay_a
            } else {
                if let Some(c) = call.b_out.as_mut() {
                    len = c
                        .protect_rtp(pkt, PKT)
                        .map_err(|e| format!("protect: {e:?}"))?;
                }
                call.to_relay_b
            };
            out.push(Out { buf: i, len, dest });
            let t = ts.saturating_sub(start_real);
            if t >= warm_ns && t < end_ns {
                sent_win += 1;
            }
            idx += 1;
            if idx == flows {
                idx = 0;
                round += 1;
            }
            due = round * period_ns + idx as u64 * period_ns / flows as u64;
        }
        if !out.is_empty() {
            send_failed += tx.send(socks[cur_sock].as_raw_fd(), &out) as u64;
            out.clear();
        }
        // Receive everything queued on every socket.
        for s in &socks {
            loop {
                let n = match rx.recv(s.as_raw_fd()) {
                    Ok(n) => n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(e) => return Err(format!("recv: {e}")),
                };
                let now_real = real_ns();
                recv_total += n as u64;
                for i in 0..n {
                    let rx_ns = match rx.rx_time(i) {
                        Some(t) => t,
                        None => {
                            no_stamp += 1;
                            now_real
                        }
                    };
                    let len = rx.len(i);
                    let buf = rx.buf_mut(i);
                    if len < 24 {
                        bad += 1;
                        continue;
                    }
                    let ssrc = u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]);
                    let f = ssrc.wrapping_sub(SSRC_BASE) as usize;
                    if f >= flows {
                        bad += 1;
                        continue;
                    }
                    let mut plain = len;
                    if f & 1 == 0 {
                        // A→B: arrives at B, SRTP in srtp mode.
                        if let Some(c) = calls[f / 2].b_in.as_mut() {
                            match c.unprotect_rtp(&mut buf[..len]) {
                                Ok(l) => plain = l,
                                Err(_) => {
                                    bad += 1;
                                    continue;
                                }
                            }
                        }
                    }
                    if plain != PKT
                        || u32::from_be_bytes([buf[12], buf[13], buf[14], buf[15]]) != f as u32
                    {
                        bad += 1;
                        continue;
                    }
                    let mut t = [0u8; 8];
                    t.copy_from_slice(&buf[16..24]);
                    let tx_ns = u64::from_be_bytes(t);
                    let rel = tx_ns.saturating_sub(start_real);
                    if rel >= warm_ns && rel < end_ns {
                        recv_win[f] += 1;
                        lat.push(rx_ns.saturating_sub(tx_ns).min(u64::from(u32::MAX)) as u32);
                    }
                }
                if n < rx.capacity() {
                    break;
                }
            }
        }
        let now = start.elapsed().as_nanos() as u64;
        if finished_sending && now >= drain_until {
            break;
        }
        // Nothing queued any more: sleep one tick, or until the next packet
        // is due if that is later (at most 1 ms). Packets due within a tick
        // go out together at the next wake-up: a wake-up (a timer and two
        // context switches, expensive in a VM) per tick and not per packet.
        // Latency comes from kernel timestamps and send-time stamps, so the
        // sleep does not add to it; it bounds how late a send can be.
        let next = if finished_sending { drain_until } else { due };
        let wait = next.saturating_sub(now).clamp(tick_ns, 1_000_000);
        if next > now + IDLE_SPIN_NS {
            sleeps += 1;
            std::thread::sleep(Duration::from_nanos(wait));
        }
    }
    let cpu1 = cpu_ticks(args.pid)?;
    let gen_ticks = cpu_ticks(std::process::id())?.saturating_sub(gen0.0);
    let gen_cpu_pct =
        gen_ticks as f64 * 1e9 / (start.elapsed().as_nanos() as u64 - gen0.1).max(1) as f64;
    let (c0, r0) = cpu0.unwrap_or((cpu1, 0));
    let relayed = recv_total - r0;
    let drops = ports.iter().map(|&p| udp_drops(p)).sum::<u64>() - drops0;

    // Tear down (not timed).
    for i in 0..ncalls {
        let call_id = format!("{run_id}-{i}");
        let _ = ng.cmd(&mut [
            ("command", B::S("delete")),
            ("call-id", B::S(&call_id)),
            ("from-tag", B::S("a")),
        ]);
    }

    let got: u64 = recv_win.iter().map(|&v| u64::from(v)).sum();
    let loss = if sent_win == 0 {
        f64::NAN
    } else {
        100.0 * (sent_win.saturating_sub(got)) as f64 / sent_win as f64
    };
    lat.sort_unstable();
    let cpu_us = (cpu1 - c0) as f64 * 10_000.0 / relayed.max(1) as f64; // 100 ticks/s
    let dead = recv_win.iter().filter(|&&v| v == 0).count();
    println!(
        "system={} mode={} flows={} rate={} pps={} sent={} received={} loss_pct={:.4} \
         p50_ms={:.3} p99_ms={:.3} max_ms={:.3} cpu_us_per_pkt={:.2} relay_cpu_s={:.2} \
         relayed={} dead_flows={} bad={} send_failed={} sink_drops={} no_stamp={} \
         gen_late_max_ms={:.3} gen_late_gt1ms={} gen_cpu_pct={:.0} gen_sleeps={} sockets={} setup_s={:.2}",
        args.label,
        if args.srtp { "srtp" } else { "plain" },
        flows,
        args.rate,
        flows as u64 * u64::from(args.rate),
        sent_win,
        got,
        loss,
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        pct(&lat, 1.0),
        cpu_us,
        (cpu1 - c0) as f64 / 100.0,
        relayed,
        dead,
        bad,
        send_failed,
        drops,
        no_stamp,
        late_max as f64 / 1e6,
        late_1ms,
        gen_cpu_pct,
        sleeps,
        nsock,
        setup_s,
    );
    Ok(())
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("rtp_load: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(&args) {
        eprintln!("rtp_load: {e}");
        std::process::exit(1);
    }
}
