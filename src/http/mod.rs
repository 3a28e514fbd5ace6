//! The transport: routes, extractors and the JSON answers for unknown routes and methods.
//! Each resource module lists its endpoints; handlers parse, call the domain, and map the result.
//! Every handler takes an `AuthUser` (no token means 401) but the operators' probes (`ops.rs`),
//! sign-in and refresh, the message catalogue, a download link (which carries its own caller), and
//! the app (`webapp.rs`), which answers every path no route matches outside `/api/`.

mod attachments;
mod audit;
mod auth;
mod backup;
mod body;
mod changes;
mod coverage;
mod downloads;
mod export;
mod extract;
mod forms;
mod indicators;
mod listen;
mod messages;
mod observe;
mod openapi;
mod ops;
mod progress;
mod registry;
mod review;
mod shapes;
mod submissions;
mod uploads;
mod users;
mod webapp;
mod webhooks;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::extract::Request;
use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{MethodFilter, MethodRouter, on};
use axum::{Extension, Router};
use tower_http::decompression::RequestDecompressionLayer;

use crate::error::AppError;
use crate::{AppState, Limits};

/// One route: its method and path (for the route table) and its handler.
pub struct Endpoint {
    method: Method,
    path: &'static str,
    route: MethodRouter<AppState>,
}

impl Endpoint {
    /// Adds a layer to this route only (e.g. a larger body limit).
    fn layer(mut self, limit: DefaultBodyLimit) -> Self {
        self.route = self.route.layer(limit);
        self
    }
}

fn endpoint<H, T>(method: Method, path: &'static str, handler: H) -> Endpoint
where
    H: Handler<T, AppState>,
    T: 'static,
{
    // Endpoints are declared in code with standard methods; a typo here fails every test at start-up.
    let filter = MethodFilter::try_from(method.clone())
        .unwrap_or_else(|_| panic!("{method} {path}: not a method axum can route"));
    Endpoint {
        method,
        path,
        route: on(filter, handler),
    }
}

fn endpoints(limits: &Limits) -> Vec<Endpoint> {
    let mut all = ops::endpoints();
    all.extend(auth::endpoints());
    all.extend(users::endpoints());
    all.extend(forms::endpoints(limits));
    all.extend(messages::endpoints());
    all.extend(submissions::endpoints(limits));
    all.extend(export::endpoints());
    all.extend(indicators::endpoints());
    all.extend(progress::endpoints());
    all.extend(audit::endpoints());
    all.extend(backup::endpoints());
    all.extend(downloads::endpoints());
    all.extend(openapi::endpoints());
    all.extend(review::endpoints());
    all.extend(uploads::endpoints());
    all.extend(attachments::endpoints());
    all.extend(registry::endpoints());
    all.extend(coverage::endpoints());
    all.extend(changes::endpoints());
    all.extend(webhooks::endpoints());
    all
}

/// Runs store work that may read many records on a blocking thread, in the request's span (so
/// what it logs names the request), keeping the request threads free for everyone else.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, AppError> {
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(work))
        .await
        .map_err(|e| AppError::Internal(e.to_string()))
}

/// Every route the server answers, as (method, path): the authorisation tests must cover each.
pub fn route_table() -> Vec<(Method, &'static str)> {
    endpoints(&Limits::default())
        .into_iter()
        .map(|e| (e.method, e.path))
        .collect()
}

pub fn router(state: AppState) -> Router {
    let mut router = Router::new();
    let mut redeem = None;
    for e in endpoints(&state.limits) {
        if e.path == downloads::REDEEM {
            redeem = Some(e);
        } else {
            router = router.route(e.path, e.route);
        }
    }
    // A download link runs its download through the same routes a signed-in request takes.
    let runnable = downloads::Runnable(router.clone().with_state(state.clone()));
    if let Some(e) = redeem {
        router = router.route(e.path, e.route.layer(Extension(runnable)));
    }
    // Every path no route matches is the app's (or, under `/api/`, a JSON 404).
    let web = Arc::new(webapp::WebApp::load());
    router
        // Routes with larger bodies (batches) set their own limit, which wins over this one.
        .layer(DefaultBodyLimit::max(state.limits.max_body_bytes))
        .fallback(move |request: Request| async move { web.answer(&request) })
        .method_not_allowed_fallback(|| async { AppError::MethodNotAllowed })
        // Phones may gzip what they send; the body limit then applies to the decompressed bytes.
        .layer(
            RequestDecompressionLayer::new()
                .gzip(true)
                .pass_through_unaccepted(true),
        )
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            observe::observe,
        ))
        .with_state(state)
}

pub use listen::{Timeouts, serve as listen};
pub use ops::metrics_router;
