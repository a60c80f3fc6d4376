//! The optional HTTP endpoint (`--http-addr`): `/healthz`, `/readyz`, `/metrics`, `/report`,
//! and the live page: `/` draws this process's report (the HTML report's charts) and fetches
//! its body again from `/charts` every second.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};
use crate::live::status::Status;
use crate::report::html::{self, Page};
use crate::verdict::{Findings, Verdict};

#[derive(Clone)]
struct Shared {
    status: Arc<Status>,
    registry: Arc<Registry>,
}

/// Binds `addr` now (so a bad address fails start-up with exit code 2) and serves in the
/// background until `shutdown`.
pub async fn serve(
    addr: SocketAddr,
    status: Arc<Status>,
    shutdown: CancellationToken,
) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Error::Usage(format!("cannot listen on {addr} (--http-addr): {e}")))?;
    let mut registry = Registry::default();
    registry.register_collector(Box::new(status.clone()));
    let shared = Shared {
        status,
        registry: Arc::new(registry),
    };
    let app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/report", get(report))
        .route("/", get(live_page))
        .route("/charts", get(charts))
        .with_state(shared);
    tracing::info!("serving / (live page) /healthz /readyz /metrics /report on http://{addr}");
    tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
        if let Err(e) = served {
            tracing::warn!("HTTP endpoint stopped: {e}");
        }
    });
    Ok(())
}

async fn readyz(State(shared): State<Shared>) -> impl IntoResponse {
    if shared.status.is_ready() {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    }
}

async fn metrics(State(shared): State<Shared>) -> impl IntoResponse {
    let mut body = String::new();
    match prometheus_client::encoding::text::encode(&mut body, &shared.registry) {
        Ok(()) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        ),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain")],
            "cannot encode metrics\n".to_owned(),
        ),
    }
}

async fn report(State(shared): State<Shared>) -> impl IntoResponse {
    match shared.status.report_json() {
        Some(json) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            json,
        ),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, "application/json")],
            r#"{"error": "no report yet: still starting"}"#.to_owned(),
        ),
    }
}

/// The page before the first report: it says so, and the live script fills it in.
fn starting_page() -> Page {
    Page {
        title: "starting".into(),
        verdict: Verdict::Incomplete,
        findings: Findings {
            incomplete: vec!["no report yet: still starting".into()],
            ..Findings::default()
        },
        totals: vec![],
        accounting: String::new(),
        runs: vec![],
        consumed: vec![],
        origins: vec![],
        latencies: vec![],
        json: "{}".into(),
    }
}

async fn live_page(State(shared): State<Shared>) -> impl IntoResponse {
    let page = shared.status.page().unwrap_or_else(starting_page);
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        html::document(&page, true),
    )
}

async fn charts(State(shared): State<Shared>) -> impl IntoResponse {
    let page = shared.status.page().unwrap_or_else(starting_page);
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        html::body(&page),
    )
}
