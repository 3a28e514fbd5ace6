//! Every request gets an id (the client's `x-request-id`, or a new UUID) that is returned in the
//! response, written into audit entries, and named in the one log line each request leaves.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;

use super::extract::request_id;

const HEADER: &str = "x-request-id";

/// Gives the request its id, answers with it, and logs method, route, status and duration.
pub async fn request_ids(mut request: Request, next: Next) -> Response {
    let id = HeaderValue::from_str(&request_id(request.headers())).ok();
    if let Some(id) = &id {
        request.headers_mut().insert(HEADER, id.clone());
    }
    // The log line is skipped, timing and all, when the log level leaves it out.
    let logged = tracing::enabled!(tracing::Level::INFO).then(|| {
        // `MatchedPath` holds a shared string: cloning it allocates nothing.
        (
            request.method().clone(),
            request.extensions().get::<MatchedPath>().cloned(),
            Instant::now(),
        )
    });
    let mut response = next.run(request).await;
    if let Some((method, route, started)) = logged {
        tracing::info!(
            request_id = id.as_ref().and_then(|v| v.to_str().ok()).unwrap_or_default(),
            %method,
            route = route.as_ref().map_or("unmatched", MatchedPath::as_str),
            status = response.status().as_u16(),
            ms = started.elapsed().as_secs_f64() * 1000.0,
            "request"
        );
    }
    if let Some(id) = id {
        response.headers_mut().insert(HEADER, id);
    }
    response
}
