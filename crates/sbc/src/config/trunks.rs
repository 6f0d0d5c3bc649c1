//! `[[trunk]]`: one neighbour (carrier, Teams, ACS, gateway), its fields
//! checked in the order of docs/config.md and filled in with the defaults of
//! its kind (`trunk::TrunkSpec::new`).

use std::net::SocketAddr;
use std::time::Duration;

use toml::Spanned;

use super::error::{ConfigError, Ctx};
use super::listen::{Listener, MediaSettings};
use super::numbers::rules;
use super::schema::{
    Config, DtmfName, HeadersSection, KindName, MediaName, OptionsSection, PaiName, PeerSection,
    TransportName, TrunkSection,
};
use super::tls::{check_identity, check_served};

fn transport_of(t: TransportName) -> transaction::Transport {
    match t {
        TransportName::Udp => transaction::Transport::Udp,
        TransportName::Tcp => transaction::Transport::Tcp,
        TransportName::Tls => transaction::Transport::Tls,
    }
}

/// Refuses an IP or a single label where a fully qualified name is needed.
fn fqdn_problem(name: &str) -> Option<&'static str> {
    if name.parse::<std::net::IpAddr>().is_ok() {
        return Some("is an IP address, not a fully qualified domain name (Microsoft answers 403 to an IP in Contact)");
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if !name.contains('.') || !name.split('.').all(label_ok) {
        return Some("is not a fully qualified domain name");
    }
    None
}

/// `transports`: what the trunk's peers may use. By default TLS alone for
/// Teams, ACS and TLS trunks, UDP and TCP for the others (RFC 3261 §18:
/// every element does both). A list must hold the trunk's `transport` and
/// every peer's; Teams and ACS take TLS only.
fn check_transports(
    ctx: &Ctx<'_>,
    i: usize,
    t: &TrunkSection,
    spec: &trunk::TrunkSpec,
) -> Result<Vec<transaction::Transport>, ConfigError> {
    use transaction::Transport;
    let field = format!("trunk[{i}].transports");
    let Some(list) = &t.transports else {
        let mut out = if spec.kind == trunk::TrunkKind::Phones {
            vec![Transport::Udp, Transport::Tcp, Transport::Tls]
        } else if spec.kind.is_microsoft() || spec.transport == Transport::Tls {
            vec![Transport::Tls]
        } else {
            vec![Transport::Udp, Transport::Tcp]
        };
        for p in &spec.peers {
            if !out.contains(&p.transport) {
                out.push(p.transport);
            }
        }
        return Ok(out);
    };
    if list.get_ref().is_empty() {
        return Err(ctx.err(
            Some(&list.span()),
            &field,
            "at least one transport is required",
        ));
    }
    let mut out = Vec::new();
    for (j, x) in list.get_ref().iter().enumerate() {
        let tr = transport_of(*x.get_ref());
        if spec.kind.is_microsoft() && tr != Transport::Tls {
            return Err(ctx.err(
                Some(&x.span()),
                &format!("{field}[{j}]"),
                "Teams and ACS Direct Routing accept only TLS",
            ));
        }
        if !out.contains(&tr) {
            out.push(tr);
        }
    }
    let name = |tr: Transport| tr.as_str().to_ascii_lowercase();
    if !out.contains(&spec.transport) {
        return Err(ctx.err(
            Some(&list.span()),
            &field,
            format!(
                "must include the trunk's transport ({})",
                name(spec.transport)
            ),
        ));
    }
    if let Some((j, p)) = spec
        .peers
        .iter()
        .enumerate()
        .find(|(_, p)| !out.contains(&p.transport))
    {
        return Err(ctx.err(
            Some(&list.span()),
            &field,
            format!(
                "must include the transport of peers[{j}] ({})",
                name(p.transport)
            ),
        ));
    }
    Ok(out)
}

/// `contact_host`: an IP address (not unspecified, not multicast) on a
/// carrier or gateway trunk. Teams and ACS identify the SBC by the FQDN in
/// Contact and answer 403 to an IP.
fn contact_host(
    ctx: &Ctx<'_>,
    i: usize,
    h: &Spanned<String>,
    kind: trunk::TrunkKind,
) -> Result<std::net::IpAddr, ConfigError> {
    let field = format!("trunk[{i}].contact_host");
    if kind.is_microsoft() {
        return Err(ctx.err(
            Some(&h.span()),
            &field,
            format!(
                "a {} trunk keeps its fqdn in Contact and Via: Microsoft identifies the SBC by it and answers 403 Forbidden to an IP (contact_host is for carrier and gateway trunks)",
                kind.as_str()
            ),
        ));
    }
    let v = h.get_ref();
    let ip: std::net::IpAddr = v
        .trim_matches(|c| c == '[' || c == ']')
        .parse()
        .map_err(|_| {
            ctx.err(
                Some(&h.span()),
                &field,
                format!("{v:?} is not an IP address (a name for Contact and Via goes in fqdn)"),
            )
        })?;
    if ip.is_unspecified() || ip.is_multicast() {
        return Err(ctx.err(
            Some(&h.span()),
            &field,
            format!("{ip} cannot be reached: give the address the carrier sends to"),
        ));
    }
    Ok(ip)
}

/// A host in a URI: a domain name or an IP address.
fn host_ok(host: &str) -> bool {
    host.parse::<std::net::IpAddr>().is_ok()
        || (!host.is_empty()
            && host.split('.').all(|l| {
                !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            }))
}

fn status_codes(
    ctx: &Ctx<'_>,
    codes: &[Spanned<u16>],
    field: &str,
    decline_allowed: bool,
) -> Result<Vec<u16>, ConfigError> {
    let mut out = Vec::with_capacity(codes.len());
    for (j, c) in codes.iter().enumerate() {
        let f = format!("{field}[{j}]");
        let v = *c.get_ref();
        if !(300..=699).contains(&v) {
            return Err(ctx.err(
                Some(&c.span()),
                &f,
                format!("{v} is not a failure status code (300 to 699)"),
            ));
        }
        if v == 603 && !decline_allowed {
            return Err(ctx.err(
                Some(&c.span()),
                &f,
                "603 Decline is never retried: the callee refused the call",
            ));
        }
        out.push(v);
    }
    Ok(out)
}

fn no_controls(ctx: &Ctx<'_>, v: &Spanned<String>, field: &str) -> Result<(), ConfigError> {
    if v.get_ref().chars().any(char::is_control) {
        return Err(ctx.err(
            Some(&v.span()),
            field,
            "must not contain control characters (it becomes a header value)",
        ));
    }
    Ok(())
}

#[allow(clippy::too_many_lines)] // one trunk, field by field, in the order of docs/config.md
fn check_trunk(
    ctx: &Ctx<'_>,
    config: &Config,
    i: usize,
    t: &TrunkSection,
    listeners: &[Listener],
    media: &MediaSettings,
    warnings: &mut Vec<String>,
) -> Result<trunk::TrunkSpec, ConfigError> {
    let f = |name: &str| format!("trunk[{i}].{name}");
    let name = t.name.get_ref();
    let name_span = t.name.span();
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(ctx.err(
            Some(&name_span),
            &f("name"),
            format!("{name:?}: use letters, digits, '-', '_' or '.'"),
        ));
    }
    let kind = match t.kind.get_ref() {
        KindName::Carrier => trunk::TrunkKind::Carrier,
        KindName::Teams => trunk::TrunkKind::Teams,
        KindName::Acs => trunk::TrunkKind::Acs,
        KindName::Gateway => trunk::TrunkKind::Gateway,
        KindName::Phones => trunk::TrunkKind::Phones,
    };
    let phones = kind == trunk::TrunkKind::Phones;
    let ms = kind.is_microsoft();
    let kind_span = t.kind.span();
    let fqdn = match (&t.fqdn, ms) {
        (Some(fq), _) => {
            if let Some(p) = fqdn_problem(fq.get_ref()) {
                return Err(ctx.err(
                    Some(&fq.span()),
                    &f("fqdn"),
                    format!("{:?} {p}", fq.get_ref()),
                ));
            }
            if ms && fq.get_ref().len() > 63 {
                return Err(ctx.err(
                    Some(&fq.span()),
                    &f("fqdn"),
                    "Microsoft accepts an SBC FQDN of at most 63 characters",
                ));
            }
            fq.get_ref().to_ascii_lowercase()
        }
        (None, true) => {
            return Err(ctx.err(
                Some(&kind_span),
                &f("fqdn"),
                format!(
                    "a {} trunk needs the SBC FQDN paired with it (Contact host and certificate name)",
                    kind.as_str()
                ),
            ));
        }
        (None, false) => config.sbc.fqdn.get_ref().to_ascii_lowercase(),
    };
    let mut spec = trunk::TrunkSpec::new(name, kind, &fqdn);
    if let Some(h) = &t.contact_host {
        spec.contact_host = Some(contact_host(ctx, i, h, kind)?);
    }
    if let Some(tr) = &t.transport {
        spec.transport = transport_of(*tr.get_ref());
        if ms && spec.transport != transaction::Transport::Tls {
            return Err(ctx.err(
                Some(&tr.span()),
                &f("transport"),
                "Teams and ACS Direct Routing accept only TLS",
            ));
        }
    }
    spec.local_port = match &t.local_port {
        Some(p) if *p.get_ref() == 0 => {
            return Err(ctx.err(Some(&p.span()), &f("local_port"), "must not be 0"));
        }
        Some(p) => *p.get_ref(),
        None if spec.transport == transaction::Transport::Tls => 5061,
        None => 5060,
    };
    match &t.tls {
        Some(p) => {
            if !config.tls.contains_key(p.get_ref()) {
                return Err(ctx.err(
                    Some(&p.span()),
                    &f("tls"),
                    format!("no [tls.{}] profile", p.get_ref()),
                ));
            }
            if spec.transport != transaction::Transport::Tls {
                return Err(ctx.err(
                    Some(&p.span()),
                    &f("tls"),
                    "only a TLS trunk takes a tls profile",
                ));
            }
            spec.tls = Some(p.get_ref().clone());
        }
        None if ms => {
            return Err(ctx.err(
                Some(&kind_span),
                &f("tls"),
                format!(
                    "a {} trunk needs a tls profile: its certificate (for {fqdn}) is the client identity toward Microsoft",
                    kind.as_str()
                ),
            ));
        }
        None => {}
    }
    if phones {
        if let Some(p) = &t.peers {
            return Err(ctx.err(
                Some(&p.span()),
                &f("peers"),
                "phones register with the SBC: a phones trunk has no peers, only an acl of their networks",
            ));
        }
        if t.acl.as_ref().is_none_or(Vec::is_empty) {
            return Err(ctx.err(
                Some(&kind_span),
                &f("acl"),
                "a phones trunk needs the networks its phones come from (acl = [\"10.0.0.0/8\"])",
            ));
        }
        if config.phones.is_none() {
            return Err(ctx.err(
                Some(&kind_span),
                &f("kind"),
                "a phones trunk needs a [phones] section (at least users = \"users.toml\")",
            ));
        }
    } else if let Some(peers) = &t.peers {
        spec.peers = check_peers(ctx, i, peers, spec.transport, ms)?;
    } else if !ms {
        return Err(ctx.err(
            Some(&name_span),
            &f("peers"),
            "at least one peer is required (peers = [{ host = \"…\", addr = \"IP:port\" }])",
        ));
    }
    spec.transports = check_transports(ctx, i, t, &spec)?;
    if let Some(acl) = &t.acl {
        spec.acl = acl
            .iter()
            .enumerate()
            .map(|(j, c)| {
                trunk::Cidr::parse(c.get_ref())
                    .map_err(|e| ctx.err(Some(&c.span()), &f(&format!("acl[{j}]")), e.to_string()))
            })
            .collect::<Result<_, _>>()?;
    }
    if spec.acl.is_empty() && spec.peers.iter().all(|p| p.addr.is_none()) {
        warnings.push(
            ctx.err(
                Some(&name_span),
                &f("acl"),
                "warning: no acl and no peer addr: no request will be accepted from this trunk (outbound calls only)",
            )
            .to_string(),
        );
    }
    if let Some(names) = &t.peer_names {
        spec.peer_names = names
            .iter()
            .map(|n| n.get_ref().to_ascii_lowercase())
            .collect();
    }
    if let Some(list) = &t.listen {
        spec.listen.clear();
        for (j, l) in list.iter().enumerate() {
            let field = f(&format!("listen[{j}]"));
            let a: SocketAddr = l.get_ref().parse().map_err(|e| {
                ctx.err(
                    Some(&l.span()),
                    &field,
                    format!("{:?}: {e} (expected IP:port)", l.get_ref()),
                )
            })?;
            if !listeners.iter().any(|(_, la, _)| {
                la.port() == a.port() && (a.ip().is_unspecified() || la.ip() == a.ip())
            }) {
                return Err(ctx.err(
                    Some(&l.span()),
                    &field,
                    format!("no [[listen]] has the address {a}"),
                ));
            }
            spec.listen.push(a);
        }
    }
    if let Some(o) = &t.options {
        check_options(ctx, i, o, kind, &mut spec.options)?;
    }
    if spec.options.enabled && spec.peers.is_empty() {
        return Err(ctx.err(
            Some(&name_span),
            &f("options"),
            "OPTIONS are on but the trunk has no peer",
        ));
    }
    if let Some(c) = &t.failover_codes {
        spec.failover_codes = status_codes(ctx, c, &f("failover_codes"), false)?;
    }
    if let Some(v) = &t.invite_timeout_s {
        if !(1..=180).contains(v.get_ref()) {
            return Err(ctx.err(
                Some(&v.span()),
                &f("invite_timeout_s"),
                "must be between 1 and 180 seconds",
            ));
        }
        spec.invite_timeout = Duration::from_secs(*v.get_ref());
    }
    if let Some(n) = &t.numbers {
        spec.numbers_in = rules(ctx, &n.inbound, &f("numbers.inbound"))?;
        spec.numbers_out = rules(ctx, &n.outbound, &f("numbers.outbound"))?;
    }
    if let Some(e) = t.e164 {
        spec.e164 = e;
    }
    if let Some(c) = &t.codecs {
        for (j, name) in c.iter().enumerate() {
            let n = name.get_ref();
            if n.is_empty()
                || !n
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            {
                return Err(ctx.err(
                    Some(&name.span()),
                    &f(&format!("codecs[{j}]")),
                    format!("{n:?} is not an SDP encoding name (PCMA, G722, telephone-event…)"),
                ));
            }
        }
        spec.codecs = c.iter().map(|n| n.get_ref().clone()).collect();
    }
    if let Some(m) = &t.media {
        spec.media = match m.get_ref() {
            MediaName::Rtp => trunk::MediaSecurity::Rtp,
            MediaName::Srtp => trunk::MediaSecurity::Srtp,
        };
        if ms && spec.media != trunk::MediaSecurity::Srtp {
            return Err(ctx.err(
                Some(&m.span()),
                &f("media"),
                "Teams and ACS Direct Routing require SRTP (SDES)",
            ));
        }
    }
    if let Some(mi) = &t.media_interface {
        let known: Vec<String> = media
            .interfaces
            .iter()
            .filter_map(|s| relay::Interface::parse(s).ok().map(|i| i.name))
            .collect();
        if !known.iter().any(|k| k == mi.get_ref()) {
            return Err(ctx.err(
                Some(&mi.span()),
                &f("media_interface"),
                format!(
                    "no media interface named {:?} (media.interfaces names: {})",
                    mi.get_ref(),
                    known.join(", ")
                ),
            ));
        }
        spec.media_interface = Some(mi.get_ref().clone());
    }
    spec.headers.user_agent = config.sbc.user_agent.clone();
    if let Some(h) = &t.headers {
        check_headers(ctx, i, h, &mut spec.headers)?;
    }
    if let Some(m) = &t.max_calls {
        if *m.get_ref() == 0 {
            return Err(ctx.err(Some(&m.span()), &f("max_calls"), "must be at least 1"));
        }
        spec.max_calls = Some(*m.get_ref());
    }
    if let Some(m) = &t.max_cps {
        if !(1..=10_000).contains(m.get_ref()) {
            return Err(ctx.err(
                Some(&m.span()),
                &f("max_cps"),
                "must be between 1 and 10000 calls per second",
            ));
        }
        spec.max_cps = Some(*m.get_ref());
    }
    spec.ringback = super::ringback::trunk_ringback(ctx, i, t, &media.tones)?;
    if let Some(d) = &t.dtmf {
        spec.dtmf = match d.get_ref() {
            DtmfName::Rfc4733 => trunk::DtmfMode::Rfc4733,
            DtmfName::Info => trunk::DtmfMode::Info,
        };
        if ms && spec.dtmf == trunk::DtmfMode::Info {
            return Err(ctx.err(
                Some(&d.span()),
                &f("dtmf"),
                "Teams and ACS Direct Routing take DTMF as RFC 4733 telephone-events only",
            ));
        }
    }
    if let Some(x) = &t.t38 {
        if *x.get_ref() && (ms || spec.media == trunk::MediaSecurity::Srtp) {
            return Err(ctx.err(
                Some(&x.span()),
                &f("t38"),
                "T.38 (UDPTL) cannot be carried on an SRTP leg (Teams, ACS, media = \"srtp\")",
            ));
        }
        spec.t38 = *x.get_ref();
    } else if spec.media == trunk::MediaSecurity::Srtp {
        spec.t38 = false;
    }
    spec.emergency = match &config.emergency.numbers {
        Some(list) => emergency_numbers(ctx, list.get_ref(), "emergency.numbers")?,
        None => trunk::DEFAULT_EMERGENCY_NUMBERS.map(str::to_owned).to_vec(),
    };
    if let Some(list) = &t.emergency {
        for n in emergency_numbers(ctx, list, &f("emergency"))? {
            if !spec.emergency.contains(&n) {
                spec.emergency.push(n);
            }
        }
    }
    super::interop::check_interop(ctx, i, t, &mut spec)?;
    Ok(spec)
}

/// Emergency numbers: dial strings (`+`, digits, `*`, `#`), matched exactly
/// against the called number after the trunk's inbound normalisation.
fn emergency_numbers(
    ctx: &Ctx<'_>,
    list: &[Spanned<String>],
    field: &str,
) -> Result<Vec<String>, ConfigError> {
    let mut out = Vec::with_capacity(list.len());
    for (j, n) in list.iter().enumerate() {
        if !b2bua::is_number(n.get_ref()) {
            return Err(ctx.err(
                Some(&n.span()),
                &format!("{field}[{j}]"),
                format!(
                    "{:?} is not a number (digits, an optional leading +, * and #; sos URNs are always emergency calls)",
                    n.get_ref()
                ),
            ));
        }
        if !out.contains(n.get_ref()) {
            out.push(n.get_ref().clone());
        }
    }
    Ok(out)
}

/// `peers = [{ host, port, transport, addr }, …]`: at least one; ports and
/// transports default from the trunk's.
fn check_peers(
    ctx: &Ctx<'_>,
    i: usize,
    peers: &Spanned<Vec<PeerSection>>,
    default_transport: transaction::Transport,
    ms: bool,
) -> Result<Vec<trunk::PeerSpec>, ConfigError> {
    let f = |name: &str| format!("trunk[{i}].{name}");
    if peers.get_ref().is_empty() {
        return Err(ctx.err(
            Some(&peers.span()),
            &f("peers"),
            "at least one peer is required",
        ));
    }
    let mut out = Vec::with_capacity(peers.get_ref().len());
    for (j, p) in peers.get_ref().iter().enumerate() {
        let host = p.host.get_ref();
        if !host_ok(host) {
            return Err(ctx.err(
                Some(&p.host.span()),
                &f(&format!("peers[{j}].host")),
                format!("{host:?} is neither a domain name nor an IP address"),
            ));
        }
        let transport = p
            .transport
            .as_ref()
            .map_or(default_transport, |t| transport_of(*t.get_ref()));
        if ms && transport != transaction::Transport::Tls {
            return Err(ctx.err(
                p.transport.as_ref().map(Spanned::span).as_ref(),
                &f(&format!("peers[{j}].transport")),
                "Teams and ACS Direct Routing accept only TLS",
            ));
        }
        let port = match &p.port {
            Some(port) if *port.get_ref() == 0 => {
                return Err(ctx.err(
                    Some(&port.span()),
                    &f(&format!("peers[{j}].port")),
                    "must not be 0",
                ));
            }
            Some(port) => *port.get_ref(),
            None if transport == transaction::Transport::Tls => 5061,
            None => 5060,
        };
        let addr = match &p.addr {
            Some(a) => Some(a.get_ref().parse::<SocketAddr>().map_err(|e| {
                ctx.err(
                    Some(&a.span()),
                    &f(&format!("peers[{j}].addr")),
                    format!("{:?}: {e} (expected IP:port)", a.get_ref()),
                )
            })?),
            None => None,
        };
        out.push(trunk::PeerSpec {
            host: host.to_ascii_lowercase(),
            port,
            transport,
            addr,
        });
    }
    Ok(out)
}

/// `options = { enabled, interval_s, … }` onto the kind's defaults: the
/// pings (`interval_s`, `timeout_s`, `up_after`, `down_after`,
/// `failure_codes`) and the health rules that hold without them
/// (`max_hold_s`: the longest a 503 Retry-After holds a peer down;
/// `retry_interval_s`: when a down peer is tried again with OPTIONS off).
fn check_options(
    ctx: &Ctx<'_>,
    i: usize,
    o: &OptionsSection,
    kind: trunk::TrunkKind,
    spec: &mut trunk::OptionsSpec,
) -> Result<(), ConfigError> {
    let f = |name: &str| format!("trunk[{i}].{name}");
    if let Some(e) = &o.enabled {
        if kind == trunk::TrunkKind::Acs && !*e.get_ref() {
            return Err(ctx.err(
                Some(&e.span()),
                &f("options.enabled"),
                "ACS Direct Routing waits for the SBC to start the OPTIONS exchange: it cannot be off",
            ));
        }
        spec.enabled = *e.get_ref();
    } else if o.interval_s.is_some()
        || o.timeout_s.is_some()
        || o.up_after.is_some()
        || o.down_after.is_some()
        || o.failure_codes.is_some()
    {
        // Setting a ping parameter on a carrier or gateway turns OPTIONS on;
        // `max_hold_s` and `retry_interval_s` are about health, not pings.
        spec.enabled = true;
    }
    for (v, name, max) in [
        (&o.interval_s, "interval_s", 3600),
        (&o.timeout_s, "timeout_s", 600),
        (&o.max_hold_s, "max_hold_s", 3600),
        (&o.retry_interval_s, "retry_interval_s", 3600),
    ] {
        if let Some(v) = v {
            if !(1..=max).contains(v.get_ref()) {
                return Err(ctx.err(
                    Some(&v.span()),
                    &f(&format!("options.{name}")),
                    format!("must be between 1 and {max} seconds"),
                ));
            }
        }
    }
    if let Some(v) = &o.interval_s {
        spec.interval = Duration::from_secs(*v.get_ref());
    }
    if let Some(v) = &o.timeout_s {
        spec.timeout = Duration::from_secs(*v.get_ref());
    }
    if let Some(v) = &o.max_hold_s {
        spec.max_hold = Duration::from_secs(*v.get_ref());
    }
    if let Some(v) = &o.retry_interval_s {
        spec.retry_interval = Duration::from_secs(*v.get_ref());
    }
    for (v, name) in [(&o.up_after, "up_after"), (&o.down_after, "down_after")] {
        if let Some(v) = v {
            if !(1..=100).contains(v.get_ref()) {
                return Err(ctx.err(
                    Some(&v.span()),
                    &f(&format!("options.{name}")),
                    "must be between 1 and 100",
                ));
            }
        }
    }
    if let Some(v) = &o.up_after {
        spec.up_after = *v.get_ref();
    }
    if let Some(v) = &o.down_after {
        spec.down_after = *v.get_ref();
    }
    if let Some(c) = &o.failure_codes {
        spec.failure_codes = status_codes(ctx, c, &f("options.failure_codes"), true)?;
    }
    Ok(())
}

/// `headers = { x_ms_sbc, pai, … }` onto the kind's defaults.
fn check_headers(
    ctx: &Ctx<'_>,
    i: usize,
    h: &HeadersSection,
    spec: &mut trunk::HeaderPolicy,
) -> Result<(), ConfigError> {
    let f = |name: &str| format!("trunk[{i}].{name}");
    if let Some(x) = &h.x_ms_sbc {
        no_controls(ctx, x, &f("headers.x_ms_sbc"))?;
        spec.x_ms_sbc = (!x.get_ref().is_empty()).then(|| x.get_ref().clone());
    }
    if let Some(p) = h.pai {
        spec.pai = match p {
            PaiName::Pass => trunk::PaiPolicy::Pass,
            PaiName::Strip => trunk::PaiPolicy::Strip,
        };
    }
    if let Some(v) = h.history_info_to_diversion {
        spec.history_info_to_diversion = v;
    }
    if let Some(v) = h.diversion_to_history_info {
        spec.diversion_to_history_info = v;
    }
    if let Some(pass) = &h.pass {
        for (j, p) in pass.iter().enumerate() {
            if p.get_ref().is_empty()
                || !p.get_ref().bytes().all(|b| {
                    b.is_ascii_alphanumeric()
                        || matches!(
                            b,
                            b'-' | b'_' | b'.' | b'!' | b'%' | b'*' | b'+' | b'`' | b'\'' | b'~'
                        )
                })
            {
                return Err(ctx.err(
                    Some(&p.span()),
                    &f(&format!("headers.pass[{j}]")),
                    format!("{:?} is not a header-name prefix", p.get_ref()),
                ));
            }
        }
        spec.pass_headers = pass.iter().map(|p| p.get_ref().clone()).collect();
    }
    if let Some(ua) = &h.user_agent {
        no_controls(ctx, ua, &f("headers.user_agent"))?;
        spec.user_agent = ua.get_ref().clone();
    }
    Ok(())
}

pub(super) fn check_trunks(
    ctx: &Ctx<'_>,
    config: &Config,
    listeners: &[Listener],
    media: &MediaSettings,
    warnings: &mut Vec<String>,
) -> Result<Vec<trunk::TrunkSpec>, ConfigError> {
    let mut out: Vec<trunk::TrunkSpec> = Vec::with_capacity(config.trunks.len());
    for (i, t) in config.trunks.iter().enumerate() {
        if let Some(first) = config.trunks[..i]
            .iter()
            .find(|o| o.name.get_ref() == t.name.get_ref())
        {
            return Err(ctx.err(
                Some(&t.name.span()),
                &format!("trunk[{i}].name"),
                format!(
                    "duplicate trunk name {:?} (first at line {})",
                    t.name.get_ref(),
                    ctx.line(&first.name.span()).unwrap_or(0)
                ),
            ));
        }
        let spec = check_trunk(ctx, config, i, t, listeners, media, warnings)?;
        if spec.kind.is_microsoft() {
            let fq_span = t.fqdn.as_ref().map(Spanned::span);
            if let Some((j, other)) = out
                .iter()
                .enumerate()
                .find(|(_, o)| o.kind.is_microsoft() && o.kind != spec.kind && o.fqdn == spec.fqdn)
            {
                let (teams, acs) = if spec.kind == trunk::TrunkKind::Acs {
                    (other.name.as_str(), spec.name.as_str())
                } else {
                    (spec.name.as_str(), other.name.as_str())
                };
                let other_line = config.trunks[j]
                    .fqdn
                    .as_ref()
                    .and_then(|s| ctx.line(&s.span()))
                    .unwrap_or(0);
                return Err(ctx.err(
                    fq_span.as_ref(),
                    &format!("trunk[{i}].fqdn"),
                    format!(
                        "ACS needs its own FQDN, different from the Teams one: trunks {teams:?} and {acs:?} both use {:?} (other at line {other_line})",
                        spec.fqdn
                    ),
                ));
            }
            check_identity(ctx, config, i, t, &spec, warnings)?;
            check_served(ctx, config, i, t, &spec, listeners)?;
        }
        out.push(spec);
    }
    Ok(out)
}
