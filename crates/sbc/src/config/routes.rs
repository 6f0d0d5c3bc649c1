//! `[[route]]`: who may call which numbers through which trunks, the labels
//! of fail-over destinations, and `[route.forward]` (forward on failure).

use std::time::Duration;

use toml::Spanned;

use super::error::{ConfigError, Ctx};
use super::numbers::{compile, is_e164};
use super::schema::{DestSection, RouteSection};

/// The default label of a route's non-first destinations.
const DEFAULT_LABEL: &str = "Fail-over";

fn label_problem(l: &str) -> Option<&'static str> {
    l.chars()
        .any(|c| c.is_control() || c == '"')
        .then_some("must not contain control characters or '\"' (it goes into a display name)")
}

/// Checks every route against the trunks and builds the routing table.
pub(super) fn check_routes(
    ctx: &Ctx<'_>,
    routes: &[RouteSection],
    trunks: &[trunk::TrunkSpec],
) -> Result<routing::Table, ConfigError> {
    let known = |n: &str| trunks.iter().any(|t| t.name == n);
    let names = || {
        trunks
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut out = Vec::with_capacity(routes.len());
    for (i, r) in routes.iter().enumerate() {
        if let Some(first) = routes[..i]
            .iter()
            .find(|o| o.name.get_ref() == r.name.get_ref())
        {
            return Err(ctx.err(
                Some(&r.name.span()),
                &format!("route[{i}].name"),
                format!(
                    "duplicate route name {:?} (first at line {})",
                    r.name.get_ref(),
                    ctx.line(&first.name.span()).unwrap_or(0)
                ),
            ));
        }
        for (j, f) in r.from.iter().enumerate() {
            if !known(f.get_ref()) {
                return Err(ctx.err(
                    Some(&f.span()),
                    &format!("route[{i}].from[{j}]"),
                    format!("no trunk named {:?} (trunks: {})", f.get_ref(), names()),
                ));
            }
        }
        let called = match &r.called {
            Some(c) => Some(compile(ctx, c, &format!("route[{i}].called"))?),
            None => None,
        };
        if r.to.get_ref().is_empty() {
            return Err(ctx.err(
                Some(&r.to.span()),
                &format!("route[{i}].to"),
                "at least one destination is required",
            ));
        }
        let route_label = match &r.label {
            Some(l) => {
                if let Some(p) = label_problem(l.get_ref()) {
                    return Err(ctx.err(Some(&l.span()), &format!("route[{i}].label"), p));
                }
                Some(l.get_ref().clone()).filter(|l| !l.is_empty())
            }
            None => Some(DEFAULT_LABEL.to_owned()),
        };
        let mut to = Vec::with_capacity(r.to.get_ref().len());
        for (j, d) in r.to.get_ref().iter().enumerate() {
            let (trunk, label, number, registered, user) = match d.get_ref() {
                DestSection::Name(n) => (n.clone(), None, None, false, None),
                DestSection::Table(t) => (
                    t.trunk.clone(),
                    t.label.clone(),
                    t.number.clone(),
                    t.registered.unwrap_or(false),
                    t.user.clone(),
                ),
            };
            if !known(&trunk) {
                return Err(ctx.err(
                    Some(&d.span()),
                    &format!("route[{i}].to[{j}]"),
                    format!("no trunk named {trunk:?} (trunks: {})", names()),
                ));
            }
            if let Some(p) = label.as_deref().and_then(label_problem) {
                return Err(ctx.err(Some(&d.span()), &format!("route[{i}].to[{j}].label"), p));
            }
            if let Some(n) = number.as_deref().filter(|n| !is_e164(n)) {
                return Err(ctx.err(
                    Some(&d.span()),
                    &format!("route[{i}].to[{j}].number"),
                    format!("{n:?} is not an E.164 number (+ and 2 to 15 digits)"),
                ));
            }
            let phones = trunks
                .iter()
                .any(|t| t.name == trunk && t.kind == trunk::TrunkKind::Phones);
            let field = format!("route[{i}].to[{j}]");
            let target = match (phones, registered, user, number) {
                (true, true, None, None) => routing::Target::Registered,
                (true, false, Some(u), None) if is_e164(&u) => routing::Target::User(u),
                (true, false, Some(u), None) => {
                    return Err(ctx.err(
                        Some(&d.span()),
                        &format!("{field}.user"),
                        format!("{u:?} is not an E.164 number (+ and 2 to 15 digits)"),
                    ))
                }
                (true, ..) => {
                    return Err(ctx.err(
                        Some(&d.span()),
                        &field,
                        format!("{trunk:?} is a phones trunk: say which user, registered = true (the called number) or user = \"+…\""),
                    ))
                }
                (false, false, None, n) => n.map_or(routing::Target::Trunk, routing::Target::Number),
                (false, ..) => {
                    return Err(ctx.err(
                        Some(&d.span()),
                        &field,
                        format!("registered and user are for phones trunks; {trunk:?} is not one"),
                    ))
                }
            };
            // The first destination is the primary path: never labelled.
            let label = match label {
                Some(l) => Some(l).filter(|l| !l.is_empty()),
                None if j == 0 => None,
                None => route_label.clone(),
            };
            to.push(routing::Destination {
                trunk,
                target,
                label,
            });
        }
        let forward = match &r.forward {
            None => None,
            Some(f) => {
                let fs = f.get_ref();
                let field = |x: &str| format!("route[{i}].forward.{x}");
                if !known(fs.trunk.get_ref()) {
                    return Err(ctx.err(
                        Some(&fs.trunk.span()),
                        &field("trunk"),
                        format!(
                            "no trunk named {:?} (trunks: {})",
                            fs.trunk.get_ref(),
                            names()
                        ),
                    ));
                }
                if !is_e164(fs.number.get_ref()) {
                    return Err(ctx.err(
                        Some(&fs.number.span()),
                        &field("number"),
                        format!(
                            "{:?} is not an E.164 number (+ and 2 to 15 digits)",
                            fs.number.get_ref()
                        ),
                    ));
                }
                let secs = |v: &Spanned<f64>, name: &str| -> Result<Duration, ConfigError> {
                    let x = *v.get_ref();
                    if !(x > 0.0 && x <= 3600.0) {
                        return Err(ctx.err(
                            Some(&v.span()),
                            &field(name),
                            format!("must be more than 0 and at most 3600 seconds (got {x})"),
                        ));
                    }
                    Ok(Duration::from_secs_f64(x))
                };
                let window = secs(&fs.window_s, "window_s")?;
                let ring_timeout = match &fs.ring_timeout_s {
                    Some(v) => Some(secs(v, "ring_timeout_s")?),
                    None => None,
                };
                if let Some(p) = fs.label.as_deref().and_then(label_problem) {
                    return Err(ctx.err(Some(&f.span()), &field("label"), p));
                }
                let label = match &fs.label {
                    Some(l) => Some(l.clone()).filter(|l| !l.is_empty()),
                    None => route_label.clone(),
                };
                Some(routing::Forward {
                    to: routing::Destination {
                        trunk: fs.trunk.get_ref().clone(),
                        target: routing::Target::Number(fs.number.get_ref().clone()),
                        label,
                    },
                    window,
                    ring_timeout,
                })
            }
        };
        out.push(routing::Route {
            name: r.name.get_ref().clone(),
            from: r.from.iter().map(|f| f.get_ref().clone()).collect(),
            called,
            to,
            forward,
        });
    }
    Ok(routing::Table { routes: out })
}
