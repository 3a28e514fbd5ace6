//! `GET /api/v1/submissions/{id}/attachments/{filename}`: a submission's file, to whoever may
//! read the submission, with ranges (audio seeks, a broken download resumes) and an `ETag`.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tower::ServiceExt;
use tower_http::services::ServeFile;

use super::extract::{AuthUser, Path};
use super::submissions::parse_id;
use super::{Endpoint, endpoint};
use crate::AppState;
use crate::attachments::{self, MediaType};
use crate::error::AppError;
use crate::submissions;

pub fn endpoints() -> Vec<Endpoint> {
    vec![endpoint(
        Method::GET,
        "/api/v1/submissions/{id}/attachments/{filename}",
        attachment,
    )]
}

/// `GET /api/v1/submissions/{id}/attachments/{filename}`: the file an answer names.
#[utoipa::path(get, path = "/api/v1/submissions/{id}/attachments/{filename}", tag = "attachments",
    params(
        ("id" = String, Path, description = "Submission UUID"),
        ("filename" = String, Path, description = "The file name the answer gives"),
    ),
    responses(
        (status = 200, description = "The file, with its `Content-Type` and `ETag` (its SHA-256)", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 206, description = "The `Range` asked for"),
        (status = 304, description = "`If-None-Match` names this file"),
        (status = 404, description = "`submission_not_found` (also when not yours to see) or `attachment_not_found` (not uploaded yet)", body = crate::error::ErrorBody),
    ))]
async fn attachment(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path((id, filename)): Path<(String, String)>,
    request: Request,
) -> Result<Response, AppError> {
    let record = submissions::find(&state.store, parse_id(&id)?, &me)?;
    let kept = state
        .store
        .attachment(record.id, &filename)?
        .ok_or(AppError::AttachmentNotFound)?;
    let blobs = state.uploads.blobs();
    let path = blobs
        .object(&kept.sha256)
        .filter(|_| blobs.has(&kept.sha256))
        .ok_or(AppError::AttachmentNotFound)?;
    let etag = HeaderValue::from_str(&format!("\"{}\"", kept.sha256))
        .map_err(|e| AppError::Internal(e.to_string()))?;
    let cached = request
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|sent| sent.to_str().ok())
        .is_some_and(|sent| names_tag(sent, &kept.sha256));
    let mut response = if cached {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let file = ServeFile::new_with_mime(
            path,
            &kept.media_type.parse().map_err(|_| {
                AppError::Internal(format!("stored type {} unreadable", kept.media_type))
            })?,
        );
        match file.oneshot(request).await {
            Ok(served) => served.map(axum::body::Body::new),
            Err(never) => match never {},
        }
    };
    let headers = response.headers_mut();
    headers.insert(header::ETAG, etag);
    // Only for the signed-in reader; revalidated (cheaply, by the ETag) before each use.
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache"),
    );
    // A file is evidence to look at, never a page to run: no script, even in a PDF viewer.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox; default-src 'none'; img-src 'self'; media-src 'self'"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Saved from the browser, it keeps a name that opens it as what it is.
    let saved = MediaType::parse(&kept.media_type).map_or_else(
        || filename.clone(),
        |t| attachments::saved_name(&filename, t),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        super::body::content_disposition(&saved, "inline"),
    );
    Ok(response)
}

/// Whether an `If-None-Match` value (`*`, or a list of tags, weak or strong) names this file.
fn names_tag(sent: &str, sha256: &str) -> bool {
    sent.split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.trim_start_matches("W/").trim_matches('"') == sha256)
}

#[cfg(test)]
mod tests {
    use super::names_tag;

    #[test]
    fn if_none_match_may_list_tags_weak_or_strong_or_say_any() {
        assert!(names_tag("\"abc\"", "abc"));
        assert!(names_tag("W/\"abc\"", "abc"));
        assert!(names_tag("\"x\", \"abc\"", "abc"));
        assert!(names_tag("*", "abc"));
        assert!(!names_tag("\"abd\"", "abc"));
    }
}
