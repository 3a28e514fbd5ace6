//! Forms: list, read (with ETag), publish. DESIGN.md "HTTP contract (v1)".

use std::sync::Arc;

use axum::Json;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};

use super::extract::{ApiQuery, AuthUser, Path, PublishBody, PublishedForm};
use super::submissions::accept_language;
use super::{Endpoint, endpoint};
use crate::auth::Permission;
use crate::clock::Timestamp;
use crate::error::{AppError, Detail, ErrorBody};
use crate::forms::ids::FormId;
use crate::forms::messages::Lang;
use crate::forms::xlsform::{self, WorkbookKind};
use crate::forms::{FormVersion, NewFormVersion};
use crate::store::StoredWorkbook;
use crate::{AppState, Limits};

/// The largest workbook an admin may publish: a questionnaire of thousands of rows in several
/// languages is a few hundred KiB.
pub const MAX_WORKBOOK_BYTES: usize = 10 * 1024 * 1024;

pub fn endpoints(limits: &Limits) -> Vec<Endpoint> {
    // A workbook may be larger than a JSON form; a JSON form keeps the configured bound.
    let largest = MAX_WORKBOOK_BYTES.max(limits.max_body_bytes);
    vec![
        endpoint(Method::GET, "/api/v1/forms", list_forms),
        endpoint(Method::POST, "/api/v1/forms", publish_form).layer(DefaultBodyLimit::max(largest)),
        endpoint(Method::GET, "/api/v1/forms/{form}", get_form),
    ]
}

/// `GET /api/v1/forms`: every form with its current version.
#[utoipa::path(get, path = "/api/v1/forms", tag = "forms",
    responses((status = 200, description = "Every form with its current version", body = FormList)))]
async fn list_forms(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
) -> Result<Json<FormList>, AppError> {
    me.require(Permission::ReadForms)?;
    let forms: Vec<FormSummary> = state
        .forms
        .all()
        .iter()
        .filter_map(|versions| versions.last().map(|current| summary(current, versions)))
        .collect();
    Ok(Json(FormList { forms }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct VersionQuery {
    /// A published version; default the current one.
    version: Option<String>,
    /// `xlsx`: the XLSForm workbook the version was published from, byte for byte (`.xlsx` or
    /// `.xls`); default `json`, the form with its JSON Schema.
    format: Option<String>,
}

/// `GET /api/v1/forms/{form}`: one form, its versions and one version's schema (`?version=`, default current).
/// Phones cache forms: the ETag lets them ask again cheaply with `If-None-Match`.
#[utoipa::path(get, path = "/api/v1/forms/{form}", tag = "forms",
    params(("form" = String, Path, description = "Form id, e.g. `labour-survey`"), VersionQuery, ("If-None-Match" = Option<String>, Header, description = "An ETag from before")),
    responses(
        (status = 200, description = "The form, its versions, and one version's JSON Schema (also `components.schemas[\"form.<id>.v<version>\"]`)", body = FormDetail,
         headers(("ETag" = String, description = "Send back in If-None-Match"))),
        (status = 304, description = "Unchanged since that ETag"),
        (status = 404, description = "`form_not_found` or `version_not_found`; with `format=xlsx`, `workbook_not_found` for a version published as JSON", body = ErrorBody),
    ))]
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
    match query.format.as_deref() {
        None | Some("json") => {}
        Some("xlsx") => return workbook_of(&shown),
        Some(_) => return Err(AppError::invalid_field("/format", "format: json or xlsx")),
    }
    let current = versions.last().ok_or(AppError::FormNotFound)?;
    let body = FormDetail {
        form: summary(current, &versions),
        version: shown.stored.version.clone(),
        schema: shown.stored.schema.clone(),
    };
    json_with_etag(&body, &headers)
}

/// The workbook a version was published from, as a download named after the form and version.
fn workbook_of(version: &FormVersion) -> Result<Response, AppError> {
    let workbook = version
        .stored
        .workbook
        .as_ref()
        .ok_or(AppError::WorkbookNotFound)?;
    let kind = WorkbookKind::of_media_type(&workbook.media_type).ok_or_else(|| {
        AppError::Internal(format!("stored workbook of type {}", workbook.media_type))
    })?;
    let name = format!(
        "{}-{}.{}",
        version.stored.form,
        version.stored.version,
        kind.extension()
    );
    Ok(super::body::attachment(
        kind.media_type(),
        &name,
        workbook.bytes.clone(),
    ))
}

/// `body` as JSON with a strong `ETag`, or 304 with only the `ETag` when the client's
/// `If-None-Match` already names it: what a phone caches, it asks for again cheaply.
pub(super) fn json_with_etag(
    body: &impl Serialize,
    headers: &HeaderMap,
) -> Result<Response, AppError> {
    let bytes = serde_json::to_vec(body).map_err(|e| AppError::Internal(e.to_string()))?;
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

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PublishRequest {
    #[schema(pattern = "^[a-z0-9][a-z0-9_-]{0,63}$")]
    id: String,
    #[schema(pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")]
    version: String,
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    title: String,
    schema: Value,
}

/// `POST /api/v1/forms`: publish a version; 201 when new, 200 when this exact version was already published.
/// An XLSForm workbook (`Content-Type` of `.xlsx` or `.xls`) publishes as the JSON Schema it converts to
/// (`survey-server xlsform FILE` shows it); what cannot be converted is refused with a detail per cell.
#[utoipa::path(post, path = "/api/v1/forms", tag = "forms",
    request_body(content(
        (PublishRequest = "application/json"),
        (Vec<u8> = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        (Vec<u8> = "application/vnd.ms-excel"),
    )),
    responses(
        (status = 201, description = "Published", body = Published),
        (status = 200, description = "This exact version was already published", body = Published),
        (status = 409, description = "`form_version_conflict`: that version exists with other content", body = ErrorBody),
        (status = 422, description = "`schema_invalid`: not a usable JSON Schema, a `$ref` cycle, or a scope field that may be missing or empty; for a workbook, `details` name each problem at `/<sheet>/<Excel row>/<column>`, in the `Accept-Language`; or `request_invalid`", body = ErrorBody),
    ))]
async fn publish_form(
    State(state): State<AppState>,
    headers: HeaderMap,
    PublishBody { by: me, form }: PublishBody,
) -> Result<(StatusCode, Json<Published>), AppError> {
    let new = match form {
        PublishedForm::Json(body) => {
            let request: PublishRequest = body.parse()?;
            NewFormVersion {
                id: request.id,
                version: request.version,
                title: request.title,
                schema: request.schema,
                workbook: None,
            }
        }
        PublishedForm::Workbook(kind, bytes) => {
            let lang = Lang::negotiate(accept_language(&headers), None);
            from_workbook(kind, bytes.to_vec(), lang).await?
        }
    };
    let published = state.forms.publish(&state.store, new, &me).await?;
    let status = if published.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let stored = &published.version.stored;
    Ok((
        status,
        Json(Published {
            id: stored.form.clone(),
            version: stored.version.clone(),
            title: stored.title.clone(),
            published_at: stored.published_at,
        }),
    ))
}

/// A form version as published.
#[derive(Serialize, ToSchema)]
struct Published {
    id: FormId,
    version: String,
    title: String,
    published_at: Timestamp,
}

/// `GET /api/v1/forms`.
#[derive(Serialize, ToSchema)]
struct FormList {
    forms: Vec<FormSummary>,
}

/// A form: its current title and version, and every published version.
#[derive(Serialize, ToSchema)]
struct FormSummary {
    id: FormId,
    title: String,
    current_version: String,
    versions: Vec<VersionSummary>,
}

#[derive(Serialize, ToSchema)]
struct VersionSummary {
    version: String,
    title: String,
    published_at: Timestamp,
}

/// A form with one version's JSON Schema (the current one unless `?version=` asked otherwise).
#[derive(Serialize, ToSchema)]
struct FormDetail {
    #[serde(flatten)]
    form: FormSummary,
    /// The version `schema` belongs to.
    version: String,
    /// The JSON Schema (draft 2020-12) the answers of that version are validated against.
    schema: Value,
}

fn summary(current: &FormVersion, versions: &[Arc<FormVersion>]) -> FormSummary {
    FormSummary {
        id: current.stored.form.clone(),
        title: current.stored.title.clone(),
        current_version: current.stored.version.clone(),
        versions: versions
            .iter()
            .map(|v| VersionSummary {
                version: v.stored.version.clone(),
                title: v.stored.title.clone(),
                published_at: v.stored.published_at,
            })
            .collect(),
    }
}

/// A strong ETag: the first 128 bits of the body's SHA-256, quoted.
fn etag_of(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

/// A workbook's form version, converted on a blocking thread (a large workbook takes some
/// milliseconds of parsing); refused with one detail per problem, in `lang`.
async fn from_workbook(
    kind: WorkbookKind,
    bytes: Vec<u8>,
    lang: Lang,
) -> Result<NewFormVersion, AppError> {
    let (converted, bytes) = tokio::task::spawn_blocking(move || {
        let converted = xlsform::convert(&bytes, kind);
        (converted, bytes)
    })
    .await
    .map_err(|e| AppError::Internal(e.to_string()))?;
    let converted = converted.map_err(|problems| {
        AppError::WorkbookInvalid(
            problems
                .iter()
                .map(|problem| Detail {
                    path: problem.path.clone(),
                    keyword: None,
                    message: problem.message(lang).to_owned(),
                    key: None,
                    params: None,
                })
                .collect(),
        )
    })?;
    Ok(NewFormVersion {
        id: converted.id,
        version: converted.version,
        title: converted.title,
        schema: converted.schema,
        workbook: Some(StoredWorkbook {
            media_type: kind.media_type().to_owned(),
            bytes,
        }),
    })
}
