//! Resumable uploads, tus 1.0.0 (<https://tus.io/protocols/resumable-upload>) with the creation,
//! checksum, termination and expiration extensions, at `/api/v1/uploads`. Headers in, headers
//! out; the rules are in `attachments/uploads.rs`. Every answer, errors included, carries
//! `Tus-Resumable`; errors keep this server's JSON body.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use futures_util::TryStreamExt;
use uuid::Uuid;

use super::extract::{AuthUser, Path};
use super::{Endpoint, endpoint};
use crate::AppState;
use crate::attachments::uploads::{ChunkChecksum, NewUpload, Status};
use crate::error::AppError;
use crate::store::UploadRecord;

/// The collection; an upload is `{COLLECTION}/{id}`.
pub const COLLECTION: &str = "/api/v1/uploads";
const TUS_VERSION: &str = "1.0.0";
const EXTENSIONS: &str = "creation,checksum,termination,expiration";
const OFFSET_STREAM: &str = "application/offset+octet-stream";

/// The one tus version this server speaks, as the OpenAPI document states it.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // named in the document only: requests are read as header text
pub(super) enum TusVersion {
    #[serde(rename = "1.0.0")]
    V1,
}

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        endpoint(Method::OPTIONS, COLLECTION, options),
        endpoint(Method::POST, COLLECTION, create),
        endpoint(Method::HEAD, "/api/v1/uploads/{id}", head),
        endpoint(Method::PATCH, "/api/v1/uploads/{id}", patch),
        endpoint(Method::DELETE, "/api/v1/uploads/{id}", terminate),
    ]
}

/// `OPTIONS /api/v1/uploads`: what this server speaks (no token needed).
#[utoipa::path(options, path = "/api/v1/uploads", tag = "attachments", security(()),
    responses((status = 204, description = "`Tus-Version`, `Tus-Extension`, `Tus-Max-Size`, `Tus-Checksum-Algorithm`")))]
async fn options(State(state): State<AppState>) -> Response {
    let max = state.uploads.policy().max_bytes;
    let mut response = StatusCode::NO_CONTENT.into_response();
    let headers = response.headers_mut();
    headers.insert("tus-version", HeaderValue::from_static(TUS_VERSION));
    headers.insert("tus-extension", HeaderValue::from_static(EXTENSIONS));
    headers.insert("tus-max-size", HeaderValue::from(max));
    headers.insert("tus-checksum-algorithm", HeaderValue::from_static("sha256"));
    tus(Ok(response))
}

/// `POST /api/v1/uploads`: a new upload for one answer's file.
#[utoipa::path(post, path = "/api/v1/uploads", tag = "attachments",
    params(
        ("Tus-Resumable" = TusVersion, Header, description = "The tus version spoken: `1.0.0` (412 otherwise)"),
        ("Upload-Length" = u64, Header, minimum = 1, description = "The whole file's size in bytes"),
        ("Upload-Metadata" = String, Header, description = "`submission`, `filename`, `filetype`, optionally `sha256` (hex of the whole file); each value base64"),
    ),
    responses(
        (status = 201, description = "Created: `Location` is the upload's URL, `Upload-Expires` when it lapses unfinished"),
        (status = 400, description = "`header_invalid`", body = crate::error::ErrorBody),
        (status = 404, description = "`submission_not_found`", body = crate::error::ErrorBody),
        (status = 409, description = "`attachment_conflict`: this answer has other bytes already", body = crate::error::ErrorBody),
        (status = 413, description = "`attachment_too_large`", body = crate::error::ErrorBody),
        (status = 415, description = "`attachment_type_mismatch`", body = crate::error::ErrorBody),
        (status = 422, description = "`request_invalid`: no answer names this file", body = crate::error::ErrorBody),
    ))]
async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    me: Result<AuthUser, AppError>,
) -> Response {
    tus(async {
        let AuthUser(me) = me?;
        speaks_tus(&headers)?;
        if headers.contains_key("upload-defer-length") {
            return Err(AppError::HeaderInvalid(
                "Upload-Defer-Length is not supported: send Upload-Length".into(),
            ));
        }
        let length = number(&headers, "upload-length")?;
        let mut new = metadata(&headers)?;
        new.length = length;
        let upload = state
            .uploads
            .create(&state.store, &state.forms, new, &me)
            .await?;
        let mut response = StatusCode::CREATED.into_response();
        let location = format!("{COLLECTION}/{}", upload.id.simple());
        response.headers_mut().insert(
            header::LOCATION,
            HeaderValue::from_str(&location).map_err(|e| AppError::Internal(e.to_string()))?,
        );
        expires(&mut response, &upload);
        Ok(response)
    }
    .await)
}

/// `HEAD /api/v1/uploads/{id}`: how many bytes the server has (`Upload-Offset`).
#[utoipa::path(head, path = "/api/v1/uploads/{id}", tag = "attachments",
    params(
        ("id" = String, Path, description = "From the creation's `Location`"),
        ("Tus-Resumable" = TusVersion, Header, description = "The tus version spoken: `1.0.0` (412 otherwise)"),
    ),
    responses(
        (status = 200, description = "`Upload-Offset`, `Upload-Length`, `Upload-Expires`"),
        (status = 404, description = "`upload_not_found` (also when not yours)"),
        (status = 410, description = "`upload_expired`"),
    ))]
async fn head(
    State(state): State<AppState>,
    headers: HeaderMap,
    me: Result<AuthUser, AppError>,
    id: Result<Path<String>, AppError>,
) -> Response {
    tus(async {
        let (AuthUser(me), Path(id)) = (me?, id?);
        speaks_tus(&headers)?;
        let status = state
            .uploads
            .status(&state.store, upload_id(&id)?, &me)
            .await?;
        let mut response = StatusCode::OK.into_response();
        offsets(&mut response, &status);
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        Ok(response)
    }
    .await)
}

/// `PATCH /api/v1/uploads/{id}`: bytes to append at `Upload-Offset`.
#[utoipa::path(patch, path = "/api/v1/uploads/{id}", tag = "attachments",
    params(
        ("id" = String, Path, description = "From the creation's `Location`"),
        ("Tus-Resumable" = TusVersion, Header, description = "The tus version spoken: `1.0.0` (412 otherwise)"),
        ("Upload-Offset" = u64, Header, description = "Where these bytes go: the offset `HEAD` answered"),
        ("Upload-Checksum" = Option<String>, Header, description = "`sha256 <base64>` of this request's bytes"),
    ),
    request_body(content = Vec<u8>, content_type = "application/offset+octet-stream"),
    responses(
        (status = 204, description = "The bytes are on disk: `Upload-Offset` is the new offset"),
        (status = 409, description = "`upload_offset_mismatch` or `attachment_conflict`", body = crate::error::ErrorBody),
        (status = 410, description = "`upload_expired`", body = crate::error::ErrorBody),
        (status = 413, description = "`body_too_large`: more bytes than the upload has room for", body = crate::error::ErrorBody),
        (status = 415, description = "`attachment_type_mismatch` (the finished file is not its type) or the wrong Content-Type", body = crate::error::ErrorBody),
        (status = 422, description = "`attachment_checksum_mismatch`: the whole file is not the declared sha256", body = crate::error::ErrorBody),
        (status = 423, description = "`upload_locked`: another request is writing to it", body = crate::error::ErrorBody),
        (status = 460, description = "`checksum_mismatch`: these bytes are not the Upload-Checksum", body = crate::error::ErrorBody),
    ))]
async fn patch(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    tus(async {
        let headers = request.headers();
        speaks_tus(headers)?;
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        if content_type.map(str::trim) != Some(OFFSET_STREAM) {
            return Err(AppError::OffsetStreamRequired);
        }
        let offset = number(headers, "upload-offset")?;
        let checksum = chunk_checksum(headers)?;
        let id = upload_id(&id)?;
        let body = request
            .into_body()
            .into_data_stream()
            .map_err(std::io::Error::other);
        let uploads = &state.uploads;
        let allowed = state.limits.upload_deadline;
        let status = uploads
            .append(&state.store, (id, offset), checksum, body, allowed, &me)
            .await?;
        let mut response = StatusCode::NO_CONTENT.into_response();
        offsets(&mut response, &status);
        Ok(response)
    }
    .await)
}

/// `DELETE /api/v1/uploads/{id}`: ends an upload; its bytes are dropped (a kept file stays).
#[utoipa::path(delete, path = "/api/v1/uploads/{id}", tag = "attachments",
    params(
        ("id" = String, Path, description = "From the creation's `Location`"),
        ("Tus-Resumable" = TusVersion, Header, description = "The tus version spoken: `1.0.0` (412 otherwise)"),
    ),
    responses(
        (status = 204, description = "Ended"),
        (status = 404, description = "`upload_not_found`", body = crate::error::ErrorBody),
    ))]
async fn terminate(
    State(state): State<AppState>,
    headers: HeaderMap,
    me: Result<AuthUser, AppError>,
    id: Result<Path<String>, AppError>,
) -> Response {
    tus(async {
        let (AuthUser(me), Path(id)) = (me?, id?);
        speaks_tus(&headers)?;
        state
            .uploads
            .terminate(&state.store, upload_id(&id)?, &me)
            .await?;
        Ok(StatusCode::NO_CONTENT.into_response())
    }
    .await)
}

/// Adds `Tus-Resumable` to an answer, and to a refusal for speaking another version `Tus-Version`.
fn tus(result: Result<Response, AppError>) -> Response {
    let version_refused = matches!(result, Err(AppError::TusVersionUnsupported));
    let mut response = result.unwrap_or_else(IntoResponse::into_response);
    let headers = response.headers_mut();
    headers.insert("tus-resumable", HeaderValue::from_static(TUS_VERSION));
    if version_refused {
        headers.insert("tus-version", HeaderValue::from_static(TUS_VERSION));
    }
    response
}

/// Every request but `OPTIONS` must say it speaks tus 1.0.0 (412 otherwise).
fn speaks_tus(headers: &HeaderMap) -> Result<(), AppError> {
    match headers.get("tus-resumable") {
        Some(version) if version == TUS_VERSION => Ok(()),
        _ => Err(AppError::TusVersionUnsupported),
    }
}

/// A header holding a non-negative integer: digits only (no sign, no spaces inside).
fn number(headers: &HeaderMap, name: &str) -> Result<u64, AppError> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| AppError::HeaderInvalid(format!("{name} must be a whole number of bytes")))
}

/// `Upload-Metadata`: comma-separated `key base64value` pairs, each key once.
fn metadata(headers: &HeaderMap) -> Result<NewUpload, AppError> {
    let invalid = |why: &str| AppError::HeaderInvalid(format!("Upload-Metadata {why}"));
    let text = headers
        .get("upload-metadata")
        .ok_or_else(|| invalid("is required: submission, filename and filetype"))?
        .to_str()
        .map_err(|_| invalid("must be ASCII"))?;
    let mut new = NewUpload::default();
    for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once(' ').unwrap_or((pair, ""));
        let decoded = STANDARD
            .decode(value.trim())
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(|| invalid("values must be base64 of UTF-8 text"))?;
        let slot = match key {
            "submission" => &mut new.submission,
            "filename" => &mut new.filename,
            "filetype" => &mut new.filetype,
            "sha256" => &mut new.sha256,
            // Clients may add their own keys (tus-js-client sends none by itself); they are ignored.
            _ => continue,
        };
        if slot.replace(decoded).is_some() {
            return Err(invalid("names a key twice"));
        }
    }
    Ok(new)
}

/// `Upload-Checksum: sha256 <base64 digest>`; other algorithms are refused (400).
fn chunk_checksum(headers: &HeaderMap) -> Result<Option<ChunkChecksum>, AppError> {
    let Some(value) = headers.get("upload-checksum") else {
        return Ok(None);
    };
    let invalid = || {
        AppError::HeaderInvalid(
            "Upload-Checksum must be \"sha256 <base64 of the 32-byte digest>\" (Tus-Checksum-Algorithm: sha256)".into(),
        )
    };
    let text = value.to_str().map_err(|_| invalid())?;
    let (algorithm, digest) = text.trim().split_once(' ').ok_or_else(invalid)?;
    if !algorithm.eq_ignore_ascii_case("sha256") {
        return Err(invalid());
    }
    let digest = STANDARD.decode(digest.trim()).map_err(|_| invalid())?;
    if digest.len() != 32 {
        return Err(invalid());
    }
    Ok(Some(ChunkChecksum(digest)))
}

/// The id in an upload's URL (the simple or hyphenated form of a UUID).
fn upload_id(text: &str) -> Result<Uuid, AppError> {
    Uuid::try_parse(text).map_err(|_| AppError::UploadNotFound)
}

/// `Upload-Offset`, `Upload-Length` and `Upload-Expires`.
fn offsets(response: &mut Response, status: &Status) {
    let headers = response.headers_mut();
    headers.insert("upload-offset", HeaderValue::from(status.offset));
    headers.insert("upload-length", HeaderValue::from(status.upload.length));
    expires(response, &status.upload);
}

/// `Upload-Expires`, an HTTP date (RFC 9110), while the upload is unfinished.
fn expires(response: &mut Response, upload: &UploadRecord) {
    if upload.completed {
        return;
    }
    let Ok(at) = jiff::Timestamp::from_second(upload.expires_at) else {
        return;
    };
    let text = jiff::fmt::rfc2822::DateTimePrinter::new().timestamp_to_rfc9110_string(&at);
    if let Some(value) = text.ok().and_then(|t| HeaderValue::from_str(&t).ok()) {
        response.headers_mut().insert("upload-expires", value);
    }
}
