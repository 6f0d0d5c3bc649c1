//! The media relay of the virtual world: it hands out ports on one
//! address and records every change the B2BUA asks of it, so tests can
//! check what media would have done.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use b2bua::MediaControl;
use media::control::{
    CryptoSpec, LegPorts, LegSpec, MediaOp, PayloadSpec, SessionInfo, Side, ToneSpec,
};
use media::{CryptoAttribute, SrtpProfile};

/// The relay's advertised address.
pub const MEDIA_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 5));

/// One `update` call.
#[derive(Debug, Clone)]
pub struct Update {
    /// Relay session.
    pub id: u64,
    /// Which leg.
    pub side: Side,
    /// Where that leg's RTP goes now.
    pub rtp: Option<SocketAddr>,
    /// Where its RTCP goes.
    pub rtcp: Option<SocketAddr>,
    /// Its SRTP keys, if any.
    pub crypto: Option<CryptoSpec>,
    /// RTP and RTCP on one port?
    pub rtcp_mux: Option<bool>,
}

/// Everything asked of the relay.
#[derive(Debug, Default)]
pub struct MediaLog {
    /// Sessions created: both legs and what the relay gave them.
    pub creates: Vec<(LegSpec, LegSpec, SessionInfo)>,
    /// Every update, in order.
    pub updates: Vec<Update>,
    /// Tones started (`Some`) and stopped (`None`), in order.
    pub tones: Vec<(u64, Side, Option<ToneSpec>)>,
    /// Every payload change (a party's payload types, a raw stream), in order.
    pub payloads: Vec<(u64, Side, PayloadSpec)>,
    /// Sessions deleted.
    pub deletes: Vec<u64>,
    /// Every SRTP key handed out.
    pub keys: Vec<CryptoAttribute>,
    /// Ids of the sessions created for emergency calls (which may take
    /// a relay's reserved ports).
    pub emergency: Vec<u64>,
    next_port: u16,
    next_id: u64,
}

impl MediaLog {
    /// Records a change the B2BUA asked of the relay.
    pub fn apply(&mut self, op: MediaOp) {
        match op {
            MediaOp::Update {
                id,
                side,
                remote_rtp,
                remote_rtcp,
                crypto,
                rtcp_mux,
            } => self.updates.push(Update {
                id,
                side,
                rtp: remote_rtp,
                rtcp: remote_rtcp,
                crypto,
                rtcp_mux,
            }),
            MediaOp::Tone { id, side, tone } => self.tones.push((id, side, tone)),
            MediaOp::Payload { id, side, spec } => self.payloads.push((id, side, spec)),
            MediaOp::Delete { id } => self.deletes.push(id),
        }
    }

    /// What side `side` of session `id` declared last (from its creation
    /// or its last payload change).
    pub fn payload_of(&self, id: u64, side: Side) -> Option<PayloadSpec> {
        let changed = self
            .payloads
            .iter()
            .rev()
            .find(|(i, s, _)| *i == id && *s == side)
            .map(|(_, _, p)| p.clone());
        changed.or_else(|| {
            self.creates
                .iter()
                .find(|(_, _, info)| info.id == id)
                .map(|(a, b, _)| match side {
                    Side::A => a.payload.clone(),
                    Side::B => b.payload.clone(),
                })
        })
    }

    /// The updates of one side, in order.
    pub fn updates_of(&self, side: Side) -> Vec<Update> {
        self.updates
            .iter()
            .filter(|u| u.side == side)
            .cloned()
            .collect()
    }
}

/// The relay: shares its log with the world.
#[derive(Debug, Clone)]
pub struct FakeMedia(pub Arc<Mutex<MediaLog>>);

impl MediaControl for FakeMedia {
    fn interface(&self, _name: Option<&str>) -> usize {
        0
    }

    fn create(&mut self, a: LegSpec, b: LegSpec) -> Result<SessionInfo, String> {
        let mut log = lock(&self.0);
        log.next_id += 1;
        // Ports from 40000 up, four per session, starting over after
        // 6,000 sessions (a long test makes more than fit in 16 bits).
        let base = 40000 + log.next_port;
        log.next_port = (log.next_port + 4) % 24_000;
        let ip = MEDIA_IP;
        let ports = |p: u16| LegPorts {
            rtp: SocketAddr::new(ip, p),
            rtcp: SocketAddr::new(ip, p + 1),
            advertised: ip,
        };
        let info = SessionInfo {
            id: log.next_id,
            a: ports(base),
            b: ports(base + 2),
        };
        log.creates.push((a, b, info));
        Ok(info)
    }

    fn create_emergency(&mut self, a: LegSpec, b: LegSpec) -> Result<SessionInfo, String> {
        let info = self.create(a, b)?;
        lock(&self.0).emergency.push(info.id);
        Ok(info)
    }

    fn new_key(&mut self, tag: u32, profile: SrtpProfile) -> Result<CryptoAttribute, String> {
        let mut log = lock(&self.0);
        let n = profile.master_key_len() + profile.master_salt_len();
        // Distinct keys for the first 255 (later ones repeat: only tests
        // that look at a handful of keys compare them).
        let seed = (log.keys.len() as u8).wrapping_add(1);
        let bytes: Vec<u8> = (0..n as u8).map(|i| i.wrapping_mul(7) ^ seed).collect();
        let k = CryptoAttribute::new(tag, profile, &bytes).map_err(|e| e.to_string())?;
        log.keys.push(k.clone());
        Ok(k)
    }
}

/// The log behind a lock no test can poison for good.
pub(crate) fn lock(m: &Mutex<MediaLog>) -> MutexGuard<'_, MediaLog> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
