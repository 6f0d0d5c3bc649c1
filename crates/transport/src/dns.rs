//! Locating SIP servers (RFC 3263 §4): NAPTR → SRV → A/AAAA with
//! hickory-resolver, and static overrides (FQDN → addresses) for tests,
//! labs and air-gapped sites. The FQDN stays the name used for SNI, the
//! certificate check and URIs whichever way the address was found.
//!
//! Results are not cached here: hickory's cache keeps each record for its
//! TTL, so calling [`Resolver::resolve`] for every new transaction (or every
//! OPTIONS cycle) re-resolves exactly when the records expire.
//! [`Resolver::resolve_ttl`] also says how long the answer is good for, and
//! [`Refresh`] turns that (or a failure) into when to ask again, within
//! bounds: that is how `sbc run` keeps trunk peers' addresses current.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::fmt;
use std::hash::BuildHasher;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::TokioResolver;

use crate::net::Transport;

/// Where and how to reach a SIP server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Address and port.
    pub addr: SocketAddr,
    /// Transport.
    pub transport: Transport,
    /// The name to present as SNI and to verify in the server certificate.
    pub server_name: String,
}

/// What a name resolved to, and for how long that holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The targets in the order to try them.
    pub targets: Vec<Target>,
    /// How long the answer stays valid: the shortest remaining TTL of the
    /// records it was made of. `None` when no DNS was involved (a numeric
    /// host, a static override): it never changes.
    pub ttl: Option<Duration>,
}

/// When to resolve a name again (pure policy; the caller sleeps).
///
/// A good answer is asked for again when its TTL runs out, but never sooner
/// than `min` (a TTL of 0 would have us query in a loop) nor later than
/// `max` (a day-long TTL must not pin an address that long). A failed
/// lookup is retried after 1 s, 2 s, 4 s … up to `retry_max`: a peer whose
/// name does not resolve at start is found soon after it appears, without
/// hammering the name server while it does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refresh {
    /// Shortest time between two lookups of a name that resolves.
    pub min: Duration,
    /// Longest time an answer is kept without asking again.
    pub max: Duration,
    /// Longest wait between two attempts of a name that does not resolve.
    pub retry_max: Duration,
}

impl Default for Refresh {
    fn default() -> Self {
        Refresh {
            min: Duration::from_secs(10),
            max: Duration::from_secs(300),
            retry_max: Duration::from_secs(60),
        }
    }
}

impl Refresh {
    /// After an answer valid for `ttl`: `None` for an answer that never
    /// changes (no DNS involved), else the TTL within `min..=max`.
    pub fn after_success(&self, ttl: Option<Duration>) -> Option<Duration> {
        let max = self.max.max(self.min);
        ttl.map(|t| t.clamp(self.min, max))
    }

    /// After the `failures`-th failed lookup in a row (1 for the first).
    pub fn after_failure(&self, failures: u32) -> Duration {
        let first = Duration::from_secs(1).min(self.retry_max);
        let doublings = failures.saturating_sub(1).min(20);
        first
            .saturating_mul(1u32 << doublings)
            .min(self.retry_max)
            .max(Duration::from_millis(100))
    }
}

/// How the resolver finds name servers, and the static overrides.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DnsConfig {
    /// Name servers (address and port). Empty: the system's (`/etc/resolv.conf`).
    pub servers: Vec<SocketAddr>,
    /// FQDN (lower case) → addresses, used instead of DNS.
    pub overrides: HashMap<String, Vec<SocketAddr>>,
    /// Longest an answer is cached, whatever its TTL (`None`: hickory's
    /// default, a day). A caller that re-resolves on its own schedule sets
    /// its longest interval here, or its re-query would get the cached answer.
    pub max_ttl: Option<Duration>,
    /// Longest "no such name" is cached (`None`: the zone's negative TTL):
    /// how soon a name that appears is seen.
    pub max_negative_ttl: Option<Duration>,
}

/// A resolution failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsError(pub String);

impl fmt::Display for DnsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DnsError {}

/// An RFC 3263 resolver.
#[derive(Debug, Clone)]
pub struct Resolver {
    dns: Option<TokioResolver>,
    overrides: HashMap<String, Vec<SocketAddr>>,
    random: RandomState,
}

fn default_port(t: Transport) -> u16 {
    if t == Transport::Tls {
        5061
    } else {
        5060
    }
}

fn srv_name(t: Transport, domain: &str) -> String {
    match t {
        Transport::Udp => format!("_sip._udp.{domain}"),
        Transport::Tcp => format!("_sip._tcp.{domain}"),
        Transport::Tls => format!("_sips._tcp.{domain}"),
    }
}

fn naptr_service(services: &[u8]) -> Option<Transport> {
    match services.to_ascii_uppercase().as_slice() {
        b"SIP+D2U" => Some(Transport::Udp),
        b"SIP+D2T" => Some(Transport::Tcp),
        b"SIPS+D2T" => Some(Transport::Tls),
        _ => None,
    }
}

impl Resolver {
    /// A resolver using `cfg.servers` (or the system's when empty). Must run
    /// inside a tokio runtime when DNS is used.
    pub fn new(cfg: DnsConfig) -> Result<Resolver, DnsError> {
        let overrides = cfg
            .overrides
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect();
        let limit = |b: &mut hickory_resolver::ResolverBuilder<TokioRuntimeProvider>| {
            let o = b.options_mut();
            if cfg.max_ttl.is_some() {
                o.positive_max_ttl = cfg.max_ttl;
            }
            if cfg.max_negative_ttl.is_some() {
                o.negative_max_ttl = cfg.max_negative_ttl;
            }
        };
        let dns = if cfg.servers.is_empty() {
            match TokioResolver::builder_tokio() {
                Ok(mut b) => {
                    limit(&mut b);
                    b.build().ok()
                }
                // No resolv.conf (containers, air-gapped sites): overrides only.
                Err(_) => None,
            }
        } else {
            let servers = cfg
                .servers
                .iter()
                .map(|s| {
                    let mut udp = ConnectionConfig::udp();
                    udp.port = s.port();
                    let mut tcp = ConnectionConfig::tcp();
                    tcp.port = s.port();
                    NameServerConfig::new(s.ip(), true, vec![udp, tcp])
                })
                .collect();
            let config = ResolverConfig::from_parts(None, vec![], servers);
            let mut b = TokioResolver::builder_with_config(config, TokioRuntimeProvider::default());
            limit(&mut b);
            Some(b.build().map_err(|e| DnsError(format!("resolver: {e}")))?)
        };
        Ok(Resolver {
            dns,
            overrides,
            random: RandomState::new(),
        })
    }

    /// The targets for a SIP or SIPS URI's host, port and `transport`
    /// parameter, in the order to try them (RFC 3263 §4.1 and §4.2).
    pub async fn resolve(
        &self,
        host: &str,
        port: Option<u16>,
        transport: Option<Transport>,
        secure: bool,
    ) -> Result<Vec<Target>, DnsError> {
        self.resolve_ttl(host, port, transport, secure)
            .await
            .map(|r| r.targets)
    }

    /// [`Resolver::resolve`], with how long the answer is valid.
    pub async fn resolve_ttl(
        &self,
        host: &str,
        port: Option<u16>,
        transport: Option<Transport>,
        secure: bool,
    ) -> Result<Resolved, DnsError> {
        let mut valid: Option<Instant> = None;
        let targets = self
            .lookup(host, port, transport, secure, &mut valid)
            .await?;
        let ttl = valid.map(|v| v.saturating_duration_since(Instant::now()));
        Ok(Resolved { targets, ttl })
    }

    async fn lookup(
        &self,
        host: &str,
        port: Option<u16>,
        transport: Option<Transport>,
        secure: bool,
        valid: &mut Option<Instant>,
    ) -> Result<Vec<Target>, DnsError> {
        // The answer holds as long as the shortest-lived record it used.
        let mut note = |until: Instant| {
            *valid = Some(valid.map_or(until, |v| v.min(until)));
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let fallback_transport = transport.unwrap_or(if secure {
            Transport::Tls
        } else {
            Transport::Udp
        });
        let server_name = host.to_ascii_lowercase();
        let target = |addr, transport| Target {
            addr,
            transport,
            server_name: server_name.clone(),
        };
        // A numeric host: no lookup (§4.1, §4.2).
        if let Ok(ip) = host.parse::<IpAddr>() {
            let t = fallback_transport;
            return Ok(vec![target(
                SocketAddr::new(ip, port.unwrap_or(default_port(t))),
                t,
            )]);
        }
        if let Some(addrs) = self.overrides.get(&server_name) {
            let t = fallback_transport;
            return Ok(addrs
                .iter()
                .map(|a| target(SocketAddr::new(a.ip(), port.unwrap_or(a.port())), t))
                .collect());
        }
        let dns = self
            .dns
            .as_ref()
            .ok_or_else(|| DnsError(format!("{host}: no DNS configured and no override")))?;
        // An explicit port: A/AAAA only.
        if let Some(p) = port {
            let t = fallback_transport;
            return self
                .addresses(dns, host, p, &mut note)
                .await
                .map(|ips| ips.into_iter().map(|a| target(a, t)).collect());
        }
        // NAPTR, unless the transport is already fixed.
        let mut srv_queries: Vec<(Transport, String)> = Vec::new();
        if transport.is_none() {
            if let Ok(lookup) = dns.lookup(host, RecordType::NAPTR).await {
                if !lookup.answers().is_empty() {
                    note(lookup.valid_until());
                }
                let mut rules: Vec<(u16, u16, Transport, String)> = lookup
                    .answers()
                    .iter()
                    .filter_map(|r| match &r.data {
                        RData::NAPTR(n) if n.flags.eq_ignore_ascii_case(b"s") => {
                            let t = naptr_service(&n.services)?;
                            (!secure || t == Transport::Tls)
                                .then(|| (n.order, n.preference, t, n.replacement.to_ascii()))
                        }
                        _ => None,
                    })
                    .collect();
                rules.sort_by_key(|r| (r.0, r.1));
                srv_queries = rules.into_iter().map(|(_, _, t, name)| (t, name)).collect();
            }
        }
        if srv_queries.is_empty() {
            let order: Vec<Transport> = match (transport, secure) {
                (Some(t), _) => vec![t],
                (None, true) => vec![Transport::Tls],
                (None, false) => vec![Transport::Tls, Transport::Tcp, Transport::Udp],
            };
            srv_queries = order.iter().map(|t| (*t, srv_name(*t, host))).collect();
        }
        let mut out = Vec::new();
        for (t, name) in srv_queries {
            let Ok(lookup) = dns.lookup(name.as_str(), RecordType::SRV).await else {
                continue;
            };
            if !lookup.answers().is_empty() {
                note(lookup.valid_until());
            }
            let mut srvs: Vec<(u16, u16, u16, String)> = lookup
                .answers()
                .iter()
                .filter_map(|r| match &r.data {
                    RData::SRV(s) => Some((s.priority, s.weight, s.port, s.target.to_ascii())),
                    _ => None,
                })
                .collect();
            self.order_srv(&mut srvs);
            for (_, _, p, tgt) in srvs {
                if tgt == "." {
                    continue;
                }
                if let Ok(ips) = self.addresses(dns, &tgt, p, &mut note).await {
                    out.extend(ips.into_iter().map(|a| target(a, t)));
                }
            }
        }
        if out.is_empty() {
            // No NAPTR or SRV: A/AAAA at the default port (§4.2).
            let t = fallback_transport;
            out = self
                .addresses(dns, host, default_port(t), &mut note)
                .await?
                .into_iter()
                .map(|a| target(a, t))
                .collect();
        }
        Ok(out)
    }

    async fn addresses(
        &self,
        dns: &TokioResolver,
        host: &str,
        port: u16,
        note: &mut impl FnMut(Instant),
    ) -> Result<Vec<SocketAddr>, DnsError> {
        let ips = dns
            .lookup_ip(host)
            .await
            .map_err(|e| DnsError(format!("{host}: {e}")))?;
        note(ips.valid_until());
        let v: Vec<SocketAddr> = ips.iter().map(|ip| SocketAddr::new(ip, port)).collect();
        if v.is_empty() {
            return Err(DnsError(format!("{host}: no address")));
        }
        Ok(v)
    }

    /// RFC 2782: lowest priority first; within a priority, a weighted random order.
    fn order_srv(&self, srvs: &mut [(u16, u16, u16, String)]) {
        srvs.sort_by_key(|s| s.0);
        let mut i = 0;
        while i < srvs.len() {
            let prio = srvs[i].0;
            let end = srvs[i..]
                .iter()
                .position(|s| s.0 != prio)
                .map_or(srvs.len(), |p| p + i);
            for k in i..end {
                let total: u64 = srvs[k..end].iter().map(|s| u64::from(s.1) + 1).sum();
                let mut pick = self.random.hash_one((k, total, srvs.len())) % total;
                let mut chosen = k;
                for (j, s) in srvs[k..end].iter().enumerate() {
                    let w = u64::from(s.1) + 1;
                    if pick < w {
                        chosen = k + j;
                        break;
                    }
                    pick -= w;
                }
                srvs.swap(k, chosen);
            }
            i = end;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_follows_the_ttl_within_bounds_and_backs_off_on_failure() {
        let r = Refresh {
            min: Duration::from_secs(5),
            max: Duration::from_secs(300),
            retry_max: Duration::from_secs(60),
        };
        let s = Duration::from_secs;
        assert_eq!(r.after_success(None), None, "no DNS: never again");
        assert_eq!(r.after_success(Some(s(0))), Some(s(5)), "TTL 0: min");
        assert_eq!(r.after_success(Some(s(60))), Some(s(60)));
        assert_eq!(r.after_success(Some(s(86_400))), Some(s(300)), "max");
        let backoff: Vec<u64> = (1..=8).map(|n| r.after_failure(n).as_secs()).collect();
        assert_eq!(backoff, [1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(r.after_failure(u32::MAX), s(60));
        // A max below min is read as min.
        let odd = Refresh {
            min: s(10),
            max: s(1),
            retry_max: Duration::ZERO,
        };
        assert_eq!(odd.after_success(Some(s(3))), Some(s(10)));
        assert_eq!(odd.after_failure(1), Duration::from_millis(100));
    }

    #[tokio::test]
    async fn numeric_hosts_and_overrides_carry_no_ttl() {
        let r = Resolver::new(DnsConfig {
            servers: vec!["127.0.0.1:9".parse().unwrap()],
            overrides: [(
                "sip.pstnhub.microsoft.com".to_owned(),
                vec!["192.0.2.7:5061".parse().unwrap()],
            )]
            .into(),
            ..DnsConfig::default()
        })
        .unwrap();
        let n = r
            .resolve_ttl("192.0.2.1", Some(5070), None, false)
            .await
            .unwrap();
        assert_eq!(n.ttl, None);
        assert_eq!(n.targets[0].addr, "192.0.2.1:5070".parse().unwrap());
        let o = r
            .resolve_ttl(
                "SIP.pstnhub.microsoft.com",
                None,
                Some(Transport::Tls),
                true,
            )
            .await
            .unwrap();
        assert_eq!(o.ttl, None);
        assert_eq!(o.targets[0].server_name, "sip.pstnhub.microsoft.com");
    }
}
