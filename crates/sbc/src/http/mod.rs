//! The operations endpoint of `sbc run` (`[http]`): `/health`, `/ready`,
//! `/metrics` (Prometheus text), and the status page (`/`, polling
//! `/status.json`). Read-only. It runs on a thread and runtime of its own
//! and reads only the [`Snapshot`] the SIP loop publishes every 200 ms
//! through a `watch` channel: a request never waits for the SIP loop, and
//! the SIP loop never waits for a request.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::sync::watch;

use crate::config::HttpSettings;

mod certs;
mod metrics;
mod sip_counts;
mod snapshot;
mod status;

pub(crate) use certs::CertWatch;
pub(crate) use sip_counts::SipCounts;
pub(crate) use snapshot::{log_line, PeerRow, Snapshot, Tally, CALLS_SHOWN, FIGURES, REGISTRAR};

/// What the SIP loop publishes (`None` until its first snapshot).
pub(crate) type Published = Option<Arc<Snapshot>>;

/// A snapshot older than this means the SIP loop is stuck: `/health` fails.
const STALE: Duration = Duration::from_secs(5);

#[derive(Clone)]
struct App {
    rx: watch::Receiver<Published>,
    token: Option<Arc<str>>,
    /// Whole numbers on the status page (else the last 4 digits).
    show_numbers: bool,
}

impl App {
    fn current(&self) -> Published {
        // The lock is held for an `Arc` clone only.
        self.rx.borrow().clone()
    }

    /// `Authorization: Bearer TOKEN` when a token is configured.
    fn allowed(&self, h: &HeaderMap) -> bool {
        let Some(want) = &self.token else {
            return true;
        };
        let got = h
            .get(header::AUTHORIZATION)
            .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
            .unwrap_or_default();
        // Compared in constant time.
        got.len() == want.len()
            && got
                .iter()
                .zip(want.as_bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }
}

fn text(code: StatusCode, body: &'static str) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        "unauthorized\n",
    )
        .into_response()
}

/// 200 while the SIP loop runs (its snapshot is fresh).
async fn health(State(app): State<App>) -> Response {
    match app.current() {
        Some(s) if s.at.elapsed() < STALE => text(StatusCode::OK, "ok\n"),
        Some(_) => text(StatusCode::SERVICE_UNAVAILABLE, "SIP loop stalled\n"),
        None => text(StatusCode::SERVICE_UNAVAILABLE, "starting\n"),
    }
}

/// 200 when listening, configured and not draining; 503 otherwise.
async fn ready(State(app): State<App>) -> Response {
    match app.current() {
        Some(s) if s.at.elapsed() >= STALE => {
            text(StatusCode::SERVICE_UNAVAILABLE, "SIP loop stalled\n")
        }
        Some(s) if s.draining => text(StatusCode::SERVICE_UNAVAILABLE, "draining\n"),
        Some(s) if s.listening => text(StatusCode::OK, "ready\n"),
        _ => text(StatusCode::SERVICE_UNAVAILABLE, "starting\n"),
    }
}

async fn metrics(State(app): State<App>, h: HeaderMap) -> Response {
    if !app.allowed(&h) {
        return unauthorized();
    }
    match app.current() {
        Some(s) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
            metrics::render(&s),
        )
            .into_response(),
        None => text(StatusCode::SERVICE_UNAVAILABLE, "starting\n"),
    }
}

async fn status_json(State(app): State<App>, h: HeaderMap) -> Response {
    if !app.allowed(&h) {
        return unauthorized();
    }
    match app.current() {
        Some(s) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            status::render(&s, app.show_numbers).to_string(),
        )
            .into_response(),
        None => text(StatusCode::SERVICE_UNAVAILABLE, "starting\n"),
    }
}

/// The status page: one static HTML file (CSS and JS inside, nothing
/// fetched from elsewhere); it polls `/status.json`.
async fn page() -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'",
            ),
        ],
        include_str!("status.html"),
    )
        .into_response()
}

fn router(app: App) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .route("/status.json", get(status_json))
        .with_state(app)
}

/// Binds `settings.addr` now (an error stops the start) and serves on a
/// thread of its own until the SIP loop drops its sender. Returns the
/// address bound (port 0: the port chosen).
pub(crate) fn start(
    settings: &HttpSettings,
    rx: watch::Receiver<Published>,
) -> Result<SocketAddr, String> {
    let err = |e: std::io::Error| format!("http: cannot listen on {}: {e}", settings.addr);
    let listener = std::net::TcpListener::bind(settings.addr).map_err(err)?;
    listener.set_nonblocking(true).map_err(err)?;
    let addr = listener.local_addr().map_err(err)?;
    let app = App {
        rx: rx.clone(),
        token: settings.token.as_deref().map(Arc::from),
        show_numbers: settings.show_numbers,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("http: cannot start its runtime: {e}"))?;
    std::thread::Builder::new()
        .name("sbc-http".into())
        .spawn(move || {
            rt.block_on(async move {
                let listener = match tokio::net::TcpListener::from_std(listener) {
                    Ok(l) => l,
                    Err(e) => {
                        tracing::error!(%e, "http: listener not usable");
                        return;
                    }
                };
                let mut closed = rx;
                let stop = async move { while closed.changed().await.is_ok() {} };
                if let Err(e) = axum::serve(listener, router(app))
                    .with_graceful_shutdown(stop)
                    .await
                {
                    tracing::error!(%e, "http: server failed");
                }
            });
        })
        .map_err(|e| format!("http: cannot start its thread: {e}"))?;
    Ok(addr)
}

#[cfg(test)]
mod tests;
