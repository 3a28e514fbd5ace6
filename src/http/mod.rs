//! The transport: routes, extractors and the JSON answers for unknown routes and methods.
//! Each resource module owns its routes; handlers parse, call the domain, and map the result.

mod extract;
mod forms;
mod submissions;

use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::AppState;
use crate::error::AppError;

pub fn router(state: AppState) -> Router {
    let max_body = DefaultBodyLimit::max(state.limits.max_body_bytes);
    Router::new()
        .route("/healthz", get(healthz))
        .merge(forms::router())
        .merge(submissions::router(&state))
        // Routes with larger bodies (batches) set their own limit, which wins over this one.
        .layer(max_body)
        .fallback(|| async { AppError::RouteNotFound })
        .method_not_allowed_fallback(|| async { AppError::MethodNotAllowed })
        .with_state(state)
}

/// `GET /healthz`: the process is up and serving.
async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}
