//! What operators and their tools ask: is it alive, is it ready, and the Prometheus metrics.
//! None of these needs a token; the reverse-proxy configurations in `deploy/` keep `/metrics` inside.

use axum::extract::State;
use axum::http::{Method, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};

use super::shapes::Status;
use super::{Endpoint, endpoint};
use crate::AppState;
use crate::error::AppError;
use crate::error::ErrorBody;
use crate::metrics;

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        endpoint(Method::GET, "/healthz", healthz),
        endpoint(Method::GET, "/readyz", readyz),
        endpoint(Method::GET, "/metrics", api_metrics),
    ]
}

/// `/metrics` alone, for its own listener.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", axum::routing::get(render_metrics))
        .fallback(|| async { AppError::RouteNotFound })
        .with_state(state)
}

/// `GET /healthz`: the process is up and serving.
#[utoipa::path(get, path = "/healthz", tag = "operations", security(()),
    responses((status = 200, description = "The process is up", body = Status)))]
async fn healthz() -> Json<Status> {
    Json(Status::new("ok"))
}

/// `GET /readyz`: the store answers and can make a write durable; 503 if not.
#[utoipa::path(get, path = "/readyz", tag = "operations", security(()),
    responses(
        (status = 200, description = "The store can make a write durable", body = Status),
        (status = 503, description = "It cannot (`not_ready`)", body = ErrorBody),
    ))]
async fn readyz(State(state): State<AppState>) -> Result<Json<Status>, AppError> {
    state.store.check_writable().await.map_err(|error| {
        tracing::error!(%error, "not ready: the store cannot make a write durable");
        AppError::NotReady
    })?;
    Ok(Json(Status::new("ready")))
}

/// `GET /metrics` on the API listener: 404 when `SURVEY_METRICS_BIND` moved it elsewhere.
#[utoipa::path(get, path = "/metrics", tag = "operations", security(()),
    responses(
        (status = 200, description = "Prometheus/OpenMetrics text", content_type = "application/openmetrics-text", body = String),
        (status = 404, description = "Served on SURVEY_METRICS_BIND instead", body = ErrorBody),
    ))]
async fn api_metrics(State(state): State<AppState>) -> Response {
    if state.metrics_on_api {
        render_metrics(State(state)).await
    } else {
        AppError::RouteNotFound.into_response()
    }
}

async fn render_metrics(State(state): State<AppState>) -> Response {
    // A size we cannot read is reported as 0 rather than failing the whole scrape.
    let size = state.store.size_on_disk().unwrap_or_else(|error| {
        tracing::warn!(%error, "cannot read the database size");
        0
    });
    (
        [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        state.metrics.render(size),
    )
        .into_response()
}
