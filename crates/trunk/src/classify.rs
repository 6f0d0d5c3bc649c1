//! Which trunk an inbound message belongs to.

use std::net::{IpAddr, SocketAddr};

use transaction::Transport;

use crate::spec::{Cidr, TrunkSpec};

#[derive(Debug, Clone)]
struct Entry {
    listen: Vec<SocketAddr>,
    /// Transports the trunk takes ([`TrunkSpec::takes`]).
    transports: Vec<Transport>,
    /// Of those, the trunk's own and its peers' (configured, not only allowed).
    native: Vec<Transport>,
    acl: Vec<Cidr>,
    peer_addrs: Vec<IpAddr>,
    peer_names: Vec<String>,
    fqdn: String,
    /// A trunk a reload removed or replaced: it classifies nothing.
    retired: bool,
}

/// Decides which trunk an inbound message belongs to, from where it arrived
/// (local listener), where it came from (source address against the ACL),
/// how (transport) and, for TLS, who the peer's certificate says it is.
#[derive(Debug, Clone)]
pub struct Classifier {
    trunks: Vec<Entry>,
}

impl Classifier {
    /// A classifier over `trunks`; the indexes it returns are into that slice.
    pub fn new(trunks: &[TrunkSpec]) -> Classifier {
        Classifier {
            trunks: trunks
                .iter()
                .map(|t| {
                    let transports = [Transport::Udp, Transport::Tcp, Transport::Tls]
                        .into_iter()
                        .filter(|x| t.takes(*x))
                        .collect();
                    let mut native = vec![t.transport];
                    native.extend(t.peers.iter().map(|p| p.transport));
                    Entry {
                        listen: t.listen.clone(),
                        transports,
                        native,
                        acl: t.acl.clone(),
                        peer_addrs: t
                            .peers
                            .iter()
                            .filter_map(|p| p.addr.map(|a| a.ip().to_canonical()))
                            .collect(),
                        peer_names: t.peer_names.clone(),
                        fqdn: t.fqdn.clone(),
                        retired: false,
                    }
                })
                .collect(),
        }
    }

    /// A classifier over `trunks` in which the trunks `retired` marks
    /// (by index) never match: a reload keeps a replaced trunk for the
    /// calls set up on it, but new requests go to its successor.
    pub fn with_retired(trunks: &[TrunkSpec], retired: &[bool]) -> Classifier {
        let mut c = Classifier::new(trunks);
        for (e, r) in c.trunks.iter_mut().zip(retired) {
            e.retired = *r;
        }
        c
    }

    /// Which trunk an inbound message belongs to: the local listener must be
    /// one of the trunk's `listen` (when set), the source address in its ACL
    /// (or, with no ACL, equal to one of its peers' `addr`), the transport
    /// one the trunk takes ([`TrunkSpec::takes`]: a carrier configured for
    /// UDP takes its peers' TCP too), and over TLS the peer certificate's DNS names
    /// (`tls_names`, wildcards as in RFC 2818) must include one of its
    /// `peer_names` (when set). Among the trunks that pass, the most specific
    /// wins: a matched certificate name beats a listener match, which beats
    /// a source equal to a peer's address, which beats an ACL range, which
    /// beats a transport only allowed (not the trunk's nor a peer's own); on
    /// a tie, the one configured first. `None`: refuse the message.
    pub fn classify(
        &self,
        local: SocketAddr,
        src: IpAddr,
        transport: Transport,
        tls_names: Option<&[String]>,
    ) -> Option<usize> {
        self.classify_named(local, src, transport, tls_names, None)
    }

    /// [`Classifier::classify`] with one more hint, the strongest: the name
    /// the peer asked for (the TLS SNI it sent, or the Request-URI host of
    /// an out-of-dialog request). It separates Teams from ACS when both
    /// trunks face the same Microsoft proxies: the trunk whose `fqdn` equals
    /// `server_name` wins.
    pub fn classify_named(
        &self,
        local: SocketAddr,
        src: IpAddr,
        transport: Transport,
        tls_names: Option<&[String]>,
        server_name: Option<&str>,
    ) -> Option<usize> {
        let src = src.to_canonical();
        let mut best: Option<(u32, usize)> = None;
        for (i, t) in self.trunks.iter().enumerate().filter(|(_, t)| !t.retired) {
            let Some(score) = t.score(local, src, transport, tls_names, server_name) else {
                continue;
            };
            if best.is_none_or(|(b, _)| score > b) {
                best = Some((score, i));
            }
        }
        best.map(|(_, i)| i)
    }
}

impl Entry {
    fn score(
        &self,
        local: SocketAddr,
        src: IpAddr,
        transport: Transport,
        tls_names: Option<&[String]>,
        server_name: Option<&str>,
    ) -> Option<u32> {
        let mut score = 0;
        if !self.listen.is_empty() {
            if !self.listen.iter().any(|l| listener_matches(*l, local)) {
                return None;
            }
            score += 4;
        }
        if !self.transports.contains(&transport) {
            return None;
        }
        if self.native.contains(&transport) {
            // A trunk configured for this transport beats one that only
            // allows it (a UDP carrier taking TCP).
            score += 1;
        }
        let exact = self.peer_addrs.contains(&src);
        if self.acl.is_empty() {
            if !exact {
                return None;
            }
        } else if !self.acl.iter().any(|c| c.contains(src)) {
            return None;
        }
        if exact {
            score += 2;
        }
        if transport == Transport::Tls && !self.peer_names.is_empty() {
            let names = tls_names?;
            let ok = names
                .iter()
                .any(|n| self.peer_names.iter().any(|p| sip::dns_name_matches(n, p)));
            if !ok {
                return None;
            }
            score += 8;
        }
        if server_name.is_some_and(|s| s.eq_ignore_ascii_case(&self.fqdn)) {
            score += 16;
        }
        Some(score)
    }
}

/// A configured listener address matches the local address a message
/// arrived on; an unspecified configured IP (`0.0.0.0:5061`) matches any
/// local IP on that port.
fn listener_matches(conf: SocketAddr, local: SocketAddr) -> bool {
    conf.port() == local.port()
        && (conf.ip().is_unspecified() || conf.ip().to_canonical() == local.ip().to_canonical())
}
