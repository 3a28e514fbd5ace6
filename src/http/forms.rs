//! Forms: list, read (with ETag), publish. DESIGN.md "HTTP contract (v1)".

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::extract::{ApiQuery, AuthUser, JsonBody};
use super::{Endpoint, endpoint};
use crate::AppState;
use crate::auth::Permission;
use crate::error::AppError;
use crate::forms::{FormVersion, NewFormVersion};

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        endpoint(Method::GET, "/api/v1/forms", list_forms),
        endpoint(Method::POST, "/api/v1/forms", publish_form),
        endpoint(Method::GET, "/api/v1/forms/{form}", get_form),
    ]
}

/// `GET /api/v1/forms`: every form with its current version.
async fn list_forms(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
) -> Result<Json<Value>, AppError> {
    me.require(Permission::ReadForms)?;
    let forms: Vec<Value> = state
        .forms
        .all()
        .iter()
        .filter_map(|versions| versions.last().map(|current| summary(current, versions)))
        .collect();
    Ok(Json(json!({ "forms": forms })))
}

#[derive(Deserialize)]
struct VersionQuery {
    version: Option<String>,
}

/// `GET /api/v1/forms/{form}`: one form, its versions and one version's schema (`?version=`, default current).
/// Phones cache forms: the ETag lets them ask again cheaply with `If-None-Match`.
async fn get_form(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(form): Path<String>,
    ApiQuery(query): ApiQuery<VersionQuery>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    me.require(Permission::ReadForms)?;
    let versions = state.forms.versions(&form)?;
    let shown = state.forms.resolve(&form, query.version.as_deref())?;
    let current = versions.last().ok_or(AppError::FormNotFound)?;
    let mut body = summary(current, &versions);
    body["version"] = json!(shown.stored.version);
    body["schema"] = shown.stored.schema.clone();
    let bytes = serde_json::to_vec(&body).map_err(|e| AppError::Internal(e.to_string()))?;
    let etag = etag_of(&bytes);
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let etag_header =
        HeaderValue::from_str(&etag).map_err(|e| AppError::Internal(e.to_string()))?;
    if matches {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag_header)]).into_response());
    }
    Ok((
        [
            (header::ETAG, etag_header),
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
        ],
        bytes,
    )
        .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PublishRequest {
    id: String,
    version: String,
    title: String,
    schema: Value,
}

/// `POST /api/v1/forms`: publish a version; 201 when new, 200 when this exact version was already published.
async fn publish_form(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    body: JsonBody,
) -> Result<(StatusCode, Json<Value>), AppError> {
    me.require(Permission::PublishForms)?;
    let request: PublishRequest = body.parse()?;
    let published = state
        .forms
        .publish(
            &state.store,
            NewFormVersion {
                id: request.id,
                version: request.version,
                title: request.title,
                schema: request.schema,
            },
            &me.username,
            me.request_id.clone(),
        )
        .await?;
    let status = if published.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let stored = &published.version.stored;
    Ok((
        status,
        Json(json!({
            "id": stored.form,
            "version": stored.version,
            "title": stored.title,
            "published_at": stored.published_at,
        })),
    ))
}

fn summary(current: &FormVersion, versions: &[Arc<FormVersion>]) -> Value {
    let versions: Vec<Value> = versions
        .iter()
        .map(|v| json!({"version": v.stored.version, "title": v.stored.title, "published_at": v.stored.published_at}))
        .collect();
    json!({
        "id": current.stored.form,
        "title": current.stored.title,
        "current_version": current.stored.version,
        "versions": versions,
    })
}

/// A strong ETag: the first 128 bits of the body's SHA-256, quoted.
fn etag_of(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}
