//! `[http]`: the operations endpoint. Loopback by default; any other
//! address needs a Bearer token, or the configuration is refused.

use std::net::SocketAddr;

use toml::Spanned;

use super::error::{ConfigError, Ctx};
use super::schema::HttpSection;

/// The checked `[http]` section (absent: no endpoint).
#[derive(Debug, Clone)]
pub(crate) struct HttpSettings {
    pub(crate) addr: SocketAddr,
    /// Required as `Authorization: Bearer TOKEN` by `/metrics` and `/status.json`.
    pub(crate) token: Option<String>,
    /// Whole numbers on the status page (else the last 4 digits).
    pub(crate) show_numbers: bool,
}

pub(crate) fn check_http(
    ctx: &Ctx<'_>,
    h: Option<&Spanned<HttpSection>>,
) -> Result<Option<HttpSettings>, ConfigError> {
    let Some(section) = h else {
        return Ok(None);
    };
    let h = section.get_ref();
    if !h.enabled {
        return Ok(None);
    }
    // A default address has no span: the section's line names it.
    let addr_span = if h.addr.span() == (0..0) {
        section.span()
    } else {
        h.addr.span()
    };
    let addr: SocketAddr = h.addr.get_ref().parse().map_err(|_| {
        ctx.err(
            Some(&addr_span),
            "http.addr",
            format!("{:?}: expected IP:port", h.addr.get_ref()),
        )
    })?;
    let token = match &h.token {
        Some(t) => {
            let v = t.get_ref();
            if v.len() < 16 || !v.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(ctx.err(
                    Some(&t.span()),
                    "http.token",
                    "must be at least 16 printable characters without spaces",
                ));
            }
            Some(v.clone())
        }
        None => None,
    };
    if !addr.ip().is_loopback() && token.is_none() {
        return Err(ctx.err(
            Some(&addr_span),
            "http.addr",
            format!(
                "{addr} is not a loopback address: set http.token (clients send \
                 Authorization: Bearer TOKEN) or listen on 127.0.0.1"
            ),
        ));
    }
    Ok(Some(HttpSettings {
        addr,
        token,
        show_numbers: h.show_numbers,
    }))
}
