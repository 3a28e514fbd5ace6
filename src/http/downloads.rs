//! `POST /api/v1/downloads` and the one-time links it gives (`crate::downloads`). Issue 13.

use axum::Json;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::uri::PathAndQuery;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Router};
use serde::{Deserialize, Serialize};
use tower::ServiceExt;
use utoipa::ToSchema;

use super::extract::{AuthUser, JsonBody, Path, bearer_token};
use super::{Endpoint, endpoint};
use crate::AppState;
use crate::downloads::{self, VALID_FOR};
use crate::error::{AppError, ErrorBody};

/// Where a link is used; the router gives this route the routes links may run (`Runnable`).
pub const REDEEM: &str = "/api/v1/downloads/{link}";

/// The API's routes, for a link to run its download through exactly as a signed-in request would.
#[derive(Clone)]
pub struct Runnable(pub Router);

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        endpoint(Method::POST, "/api/v1/downloads", create_link),
        endpoint(Method::GET, REDEEM, redeem_link),
    ]
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct LinkRequest {
    /// The download with its query: an export (`/api/v1/forms/{form}/export.zip`,
    /// `.../export/{table}.csv|.ndjson`), `.../indicators.csv`, or `/api/v1/admin/backup`.
    #[schema(
        max_length = 2000,
        pattern = "^/api/v1/(admin/backup|forms/[^/?#]+/(export\\.zip|indicators\\.csv|export/[^/?#]+))(\\?[^#]*)?$"
    )]
    path: String,
}

#[derive(Serialize, ToSchema)]
struct LinkAnswer {
    /// Open (GET) within `expires_in` seconds, once, without a token.
    href: String,
    expires_in: u64,
}

/// `POST /api/v1/downloads {path}`: a link that runs that download once, within 60 s, as the caller.
#[utoipa::path(post, path = "/api/v1/downloads", tag = "datasets", request_body = LinkRequest,
    responses(
        (status = 201, description = "A one-time link", body = LinkAnswer),
        (status = 422, description = "`request_invalid`: not a download", body = ErrorBody),
        (status = 429, description = "`too_many_attempts`: 20 unused links are waiting already", body = ErrorBody),
    ))]
async fn create_link(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    headers: HeaderMap,
    body: JsonBody,
) -> Result<(StatusCode, Json<LinkAnswer>), AppError> {
    let token = bearer_token(&headers).ok_or(AppError::Unauthorized)?;
    let wanted: LinkRequest = body.parse()?;
    if wanted.path.len() > 2000
        || !downloads::is_download(&wanted.path)
        || wanted.path.parse::<PathAndQuery>().is_err()
    {
        return Err(AppError::invalid_field(
            "/path",
            "path must be an export, indicators.csv or the backup, e.g. /api/v1/forms/labour-survey/export.zip",
        ));
    }
    let link = downloads::create(&state.store, &me.username, &wanted.path, token)
        .await?
        .ok_or(AppError::TooManyAttempts {
            retry_after_secs: VALID_FOR.as_secs(),
        })?;
    Ok((
        StatusCode::CREATED,
        Json(LinkAnswer {
            href: format!("/api/v1/downloads/{link}"),
            expires_in: VALID_FOR.as_secs(),
        }),
    ))
}

/// `GET /api/v1/downloads/{link}`: the download, streamed as its own route streams it; 410 after one use or 60 s.
#[utoipa::path(get, path = "/api/v1/downloads/{link}", tag = "datasets", security(()),
    params(("link" = String, Path, pattern = "^[0-9a-f]{64}$", description = "From `POST /api/v1/downloads`")),
    responses(
        (status = 200, description = "The download, with its own headers (Content-Disposition: attachment)"),
        (status = 404, description = "`not_found`: not a link this server gives out", body = ErrorBody),
        (status = 410, description = "`link_expired`: used already, or older than 60 s", body = ErrorBody),
    ))]
async fn redeem_link(
    State(state): State<AppState>,
    Extension(Runnable(routes)): Extension<Runnable>,
    Path(link): Path<String>,
    request: Request,
) -> Result<Response, AppError> {
    // A HEAD (a link checker, a chat app's preview) must not spend the link on nothing.
    if request.method() == Method::HEAD {
        return Err(AppError::MethodNotAllowed);
    }
    // Not a link this server could have given out: no such route.
    if link.len() != 64
        || !link
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(AppError::RouteNotFound);
    }
    let link = downloads::redeem(&state.store, &link)
        .await?
        .ok_or(AppError::LinkExpired)?;
    let mut inner = Request::get(&link.path)
        .body(Body::empty())
        .map_err(|_| AppError::LinkExpired)?;
    let bearer = HeaderValue::from_str(&format!("Bearer {}", link.token))
        .map_err(|e| AppError::Internal(e.to_string()))?;
    inner.headers_mut().insert(header::AUTHORIZATION, bearer);
    // The audit entry of the download names this request.
    if let Some(id) = request.headers().get("x-request-id") {
        inner.headers_mut().insert("x-request-id", id.clone());
    }
    let mut answer = routes
        .oneshot(inner)
        .await
        .unwrap_or_else(|never| match never {});
    // The link is a secret: nothing it opens may pass it on.
    answer.headers_mut().insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    Ok(answer.into_response())
}
