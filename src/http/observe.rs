//! Every request gets an id (the client's `x-request-id`, or a new UUID) that is returned in the
//! response, written into audit entries, and carried by a span, so every log line the request
//! causes names it. Each request also leaves one summary line of its own.
//! The same place counts the request and its latency for `/metrics`.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use super::extract::request_id;
use crate::AppState;

const HEADER: &str = "x-request-id";

/// Gives the request its id, answers with it, counts it, and logs method, route, status and duration.
pub async fn observe(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let id = HeaderValue::from_str(&request_id(request.headers())).ok();
    if let Some(id) = &id {
        request.headers_mut().insert(HEADER, id.clone());
    }
    let method = request.method().clone();
    // `MatchedPath` holds a shared string: cloning it allocates nothing.
    let route = request.extensions().get::<MatchedPath>().cloned();
    let span = tracing::info_span!(
        "request",
        id = id
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    );
    let started = Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    let took = started.elapsed();
    let route = match (&route, response.extensions().get::<super::webapp::Served>()) {
        (Some(route), _) => route.as_str(),
        // The app's pages and files are one route for the metrics: their paths are the client's to choose.
        (None, Some(_)) => "app",
        (None, None) => "unmatched",
    };
    let status = response.status().as_u16();
    state.metrics.request(method.as_str(), route, status, took);
    span.in_scope(|| {
        tracing::info!(
            %method,
            route,
            status,
            ms = took.as_secs_f64() * 1000.0,
            "request"
        );
    });
    if let Some(id) = id {
        response.headers_mut().insert(HEADER, id);
    }
    response
}
