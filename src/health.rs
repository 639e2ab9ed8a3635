//! The HTTP side port: `/healthz` (alive), `/readyz` (synced and not draining; in node-local
//! mode: listening and the central tier reached, and not draining), `/metrics`,
//! `/debug/clients` (the top clients of `--top-clients`, JSON).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arc_swap::ArcSwap;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::metrics::Metrics;
use crate::zone::Snapshot;

/// What the side port reports on.
#[derive(Clone)]
pub struct Health {
    /// The zone served: ready once synced.
    pub zone: Arc<ArcSwap<Snapshot>>,
    /// Set when shutting down, so load balancers stop sending queries first.
    pub draining: Arc<AtomicBool>,
    /// The metrics registry.
    pub metrics: Arc<Metrics>,
    /// Node-local mode: readiness is listening and the central tier reached, not the zone.
    pub node: Option<Arc<NodeReady>>,
    /// `--top-clients` with `--pods verified`: the per-client figures of `/debug/clients`.
    pub clients: Option<Arc<crate::clients::ClientStats>>,
}

/// What node-local readiness waits for.
#[derive(Debug, Default)]
pub struct NodeReady {
    /// The listen addresses are bound.
    pub listening: AtomicBool,
    /// A `--cluster-dns` server has answered.
    pub central: AtomicBool,
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(h): State<Health>) -> (StatusCode, &'static str) {
    if h.draining.load(Ordering::Relaxed) {
        (StatusCode::SERVICE_UNAVAILABLE, "draining\n")
    } else if let Some(node) = &h.node {
        if !node.listening.load(Ordering::Relaxed) {
            (StatusCode::SERVICE_UNAVAILABLE, "not listening\n")
        } else if !node.central.load(Ordering::Relaxed) {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "no --cluster-dns server has answered\n",
            )
        } else {
            (StatusCode::OK, "ready\n")
        }
    } else if h.zone.load().synced {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not synced\n")
    }
}

async fn clients(State(h): State<Health>) -> axum::response::Response {
    match &h.clients {
        Some(c) => axum::Json((*c.report()).clone()).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            "per-client figures need --pods verified and --top-clients above 0\n",
        )
            .into_response(),
    }
}

async fn metrics(State(h): State<Health>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        h.metrics.encode(),
    )
}

/// Binds the side port; the returned future serves until dropped.
pub async fn bind(
    addr: SocketAddr,
    health: Health,
) -> Result<(SocketAddr, impl Future<Output = std::io::Result<()>>), std::io::Error> {
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/debug/clients", get(clients))
        .with_state(health);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    Ok((local, async move { axum::serve(listener, app).await }))
}
