//! A form's register (建档立卡): `PUT` imports it as CSV (admins), `GET` reads a page of the
//! roster of the caller's places. Rules in `registry/`.

use std::io::{Seek, SeekFrom};
use std::time::Duration;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{Method, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::Deserialize;
use tokio::io::AsyncWriteExt;
use utoipa::IntoParams;

use super::extract::{ApiQuery, AuthUser, Path};
use super::{Endpoint, blocking, endpoint};
use crate::AppState;
use crate::auth::Permission;
use crate::error::{AppError, ErrorBody};
use crate::registry::{self, Imported, Roster};

/// A register of half a million people at an office's connection: minutes, not hours.
const IMPORT_DEADLINE: Duration = Duration::from_secs(600);
/// Largest roster page.
const MAX_PAGE: usize = 1000;

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        endpoint(Method::PUT, "/api/v1/forms/{form}/registry", import),
        endpoint(Method::GET, "/api/v1/forms/{form}/registry", roster),
        endpoint(
            Method::POST,
            "/api/v1/forms/{form}/registry/from-export",
            from_export,
        ),
    ]
}

/// `PUT /api/v1/forms/{form}/registry`: the whole register as CSV, replacing the one before.
#[utoipa::path(put, path = "/api/v1/forms/{form}/registry", tag = "registry",
    params(("form" = String, Path, description = "Form id, e.g. `labour-survey`")),
    request_body(content = String, content_type = "text/csv",
        description = "One row per registered person, columns named after the form's fields (household and person level); UTF-8 (a BOM is fine) or GB18030/GBK, as `charset=` says or detected"),
    responses(
        (status = 200, description = "The new register's version and size", body = Imported),
        (status = 409, description = "`registry_superseded`: another import finished first", body = ErrorBody),
        (status = 413, description = "`body_too_large`: more than SURVEY_MAX_REGISTRY_BYTES", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: not text/csv", body = ErrorBody),
        (status = 422, description = "`registry_invalid`: `details` name each bad row as `/line/<n>/<column>` (the first 100); nothing was loaded", body = ErrorBody),
    ))]
async fn import(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(form): Path<String>,
    request: Request,
) -> Result<Response, AppError> {
    // Before reading what may be hundreds of megabytes.
    me.require(Permission::ManageRegistry)?;
    let version = state.forms.resolve(&form, None)?;
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let mut parts = content_type.split(';').map(str::trim);
    if !parts
        .next()
        .is_some_and(|t| t.eq_ignore_ascii_case("text/csv"))
    {
        return Err(AppError::CsvRequired);
    }
    let charset = parts
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("charset"))
        .map(|(_, v)| v.trim().to_owned());
    let file = spool(request, state.limits.max_registry_bytes).await?;
    let store = state.store.clone();
    let imported =
        blocking(move || registry::import(&store, &version, file, charset.as_deref(), &me))
            .await??
            .durable()
            .await?;
    Ok(Json(imported).into_response())
}

/// The body, on disk: at most `limit` bytes, within the import's deadline.
async fn spool(request: Request, limit: u64) -> Result<std::fs::File, AppError> {
    let internal = |e: std::io::Error| AppError::Internal(format!("spooling the register: {e}"));
    let mut file = tokio::fs::File::from_std(tempfile::tempfile().map_err(internal)?);
    let mut body = request.into_body().into_data_stream();
    let mut written = 0u64;
    let deadline = tokio::time::Instant::now() + IMPORT_DEADLINE;
    loop {
        let chunk = match tokio::time::timeout_at(deadline, body.next()).await {
            Err(_) => {
                return Err(AppError::UploadTooSlow {
                    secs: IMPORT_DEADLINE.as_secs(),
                });
            }
            Ok(None) => break,
            Ok(Some(chunk)) => chunk.map_err(|e| AppError::BodyMalformed(e.to_string()))?,
        };
        written += chunk.len() as u64;
        if written > limit {
            return Err(AppError::BodyTooLarge);
        }
        file.write_all(&chunk).await.map_err(internal)?;
    }
    let mut file = file.into_std().await;
    file.seek(SeekFrom::Start(0)).map_err(internal)?;
    Ok(file)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct FromQuery {
    /// The earlier round's form, whose cleaned data becomes this form's register.
    from: String,
}

/// `POST /api/v1/forms/{form}/registry/from-export?from=`: the next round's register, built from
/// the last round's cleaned data, so its phones are prefilled with this year's truth.
#[utoipa::path(post, path = "/api/v1/forms/{form}/registry/from-export", tag = "registry",
    params(("form" = String, Path, description = "The new round's form, e.g. `labour-survey-2027`"), FromQuery),
    responses(
        (status = 200, description = "The new register's version and size", body = Imported),
        (status = 422, description = "`registry_invalid`: the earlier data breaks this form's rules (lines of the CSV made from it)", body = ErrorBody),
    ))]
async fn from_export(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(form): Path<String>,
    ApiQuery(query): ApiQuery<FromQuery>,
) -> Result<Response, AppError> {
    me.require(Permission::ManageRegistry)?;
    let version = state.forms.resolve(&form, None)?;
    let previous = crate::export::Export::prepare(
        &state.forms,
        &query.from,
        &me,
        crate::export::Options::cleaned(),
    )?;
    let store = state.store.clone();
    let imported = blocking(move || registry::from_export(&store, &version, &previous, &me))
        .await??
        .durable()
        .await?;
    Ok(Json(imported).into_response())
}

/// The query of a roster page.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct RosterQuery {
    /// Households per page, 1–1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
    /// `next_cursor` of the page before.
    cursor: Option<String>,
    /// Only what changed after this version (the `version` a phone last read), and `removed`.
    since_version: Option<u64>,
}

/// `GET /api/v1/forms/{form}/registry`: the roster of the caller's places, a page at a time.
#[utoipa::path(get, path = "/api/v1/forms/{form}/registry", tag = "registry",
    params(("form" = String, Path, description = "Form id, e.g. `labour-survey`"), RosterQuery),
    responses(
        (status = 200, description = "Households (in the shape of the form's answers, with their people) of the caller's places", body = Roster),
        (status = 404, description = "`form_not_found` or `registry_not_found`", body = ErrorBody),
        (status = 409, description = "`registry_changed`: the cursor's version is no longer the register, or a new one was imported while the page was read; start again", body = ErrorBody),
    ))]
async fn roster(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(form): Path<String>,
    ApiQuery(query): ApiQuery<RosterQuery>,
) -> Result<Response, AppError> {
    let limit = query.limit.unwrap_or(100);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(AppError::QueryInvalid(format!("limit: 1 to {MAX_PAGE}")));
    }
    let version = state.forms.resolve(&form, None)?;
    let store = state.store.clone();
    let page = blocking(move || {
        registry::roster(
            &store,
            &version,
            &me,
            limit,
            query.cursor.as_deref(),
            query.since_version,
        )
    })
    .await??;
    Ok(Json(page).into_response())
}
