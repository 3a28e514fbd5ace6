//! Review of submissions: states, comments, corrections and their history, soft delete and
//! restore. Issue 6.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::extract::{ApiQuery, AuthUser, JsonBody, Path};
use super::shapes::Items;
use super::submissions::{parse_id, view_with_etag};
use super::{Endpoint, endpoint};
use crate::AppState;
use crate::error::AppError;
use crate::error::ErrorBody;
use crate::submissions::edit::{Change, VersionInfo};
use crate::submissions::review::CommentView;
use crate::submissions::{ReviewStatus, SubmissionView, edit, review};

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        endpoint(Method::PATCH, "/api/v1/submissions/{id}/review", set_review),
        endpoint(
            Method::GET,
            "/api/v1/submissions/{id}/comments",
            list_comments,
        ),
        endpoint(
            Method::POST,
            "/api/v1/submissions/{id}/comments",
            add_comment,
        ),
        endpoint(
            Method::DELETE,
            "/api/v1/submissions/{id}",
            delete_submission,
        ),
        endpoint(
            Method::POST,
            "/api/v1/submissions/{id}/restore",
            restore_submission,
        ),
        endpoint(Method::PUT, "/api/v1/submissions/{id}", edit_submission),
        endpoint(
            Method::GET,
            "/api/v1/submissions/{id}/versions",
            list_versions,
        ),
        endpoint(
            Method::GET,
            "/api/v1/submissions/{id}/versions/{n}",
            get_version,
        ),
        endpoint(Method::GET, "/api/v1/submissions/{id}/diff", diff_versions),
    ]
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ReviewRequest {
    /// `approved`, `rejected` or `has_issues` (`received` and `edited` come on their own).
    #[schema(value_type = String, pattern = "^(approved|rejected|has_issues)$")]
    status: ReviewStatus,
    /// Saved with the state in one write: if it is refused, the state does not change either.
    #[schema(max_length = 2000)]
    comment: Option<String>,
}

/// `PATCH /api/v1/submissions/{id}/review {status, comment?}` (supervisor in scope, admin).
#[utoipa::path(patch, path = "/api/v1/submissions/{id}/review", tag = "review",
    params(("id" = String, Path, description = "Submission UUID")), request_body = ReviewRequest,
    responses((status = 200, description = "The submission as it now is", body = SubmissionView), (status = 422, description = "Unknown status", body = ErrorBody)))]
async fn set_review(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(id): Path<String>,
    body: JsonBody,
) -> Result<Response, AppError> {
    let request: ReviewRequest = body.parse()?;
    let record = review::set_state(
        &state.store,
        parse_id(&id)?,
        request.status,
        request.comment.as_deref(),
        &me,
    )
    .await?;
    Ok(Json(SubmissionView::of(&record)?).into_response())
}

/// `GET /api/v1/submissions/{id}/comments`: for anyone who may see the submission.
#[utoipa::path(get, path = "/api/v1/submissions/{id}/comments", tag = "review",
    params(("id" = String, Path, description = "Submission UUID")), responses((status = 200, description = "Oldest first", body = Items<CommentView>)))]
async fn list_comments(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(id): Path<String>,
) -> Result<Json<Items<CommentView>>, AppError> {
    let comments = review::comments(&state.store, parse_id(&id)?, &me)?;
    Ok(Json(Items::new(comments)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CommentRequest {
    #[schema(pattern = "\\S", max_length = 2000)]
    text: String,
}

/// `POST /api/v1/submissions/{id}/comments {text}`: reviewers, and the field worker who submitted.
#[utoipa::path(post, path = "/api/v1/submissions/{id}/comments", tag = "review",
    params(("id" = String, Path, description = "Submission UUID")), request_body = CommentRequest,
    responses((status = 201, description = "Added", body = CommentView)))]
async fn add_comment(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(id): Path<String>,
    body: JsonBody,
) -> Result<(StatusCode, Json<CommentView>), AppError> {
    let request: CommentRequest = body.parse()?;
    let comment = review::add_comment(&state.store, parse_id(&id)?, &request.text, &me).await?;
    Ok((StatusCode::CREATED, Json(comment)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct DeleteRequest {
    #[schema(pattern = "\\S", max_length = 500)]
    reason: String,
}

/// `DELETE /api/v1/submissions/{id} {reason}` (admin): hidden from lists and exports, kept in storage.
#[utoipa::path(delete, path = "/api/v1/submissions/{id}", tag = "review",
    params(("id" = String, Path, description = "Submission UUID")), request_body = DeleteRequest, responses((status = 200, description = "The submission as it now is", body = SubmissionView)))]
async fn delete_submission(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(id): Path<String>,
    body: JsonBody,
) -> Result<Response, AppError> {
    let request: DeleteRequest = body.parse()?;
    let record = review::delete(&state.store, parse_id(&id)?, &request.reason, &me).await?;
    Ok(Json(SubmissionView::of(&record)?).into_response())
}

/// `POST /api/v1/submissions/{id}/restore` (admin).
#[utoipa::path(post, path = "/api/v1/submissions/{id}/restore", tag = "review",
    params(("id" = String, Path, description = "Submission UUID")), responses((status = 200, description = "The submission as it now is", body = SubmissionView)))]
async fn restore_submission(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let record = review::restore(&state.store, parse_id(&id)?, &me).await?;
    Ok(Json(SubmissionView::of(&record)?).into_response())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct EditRequest {
    data: Value,
}

/// `PUT /api/v1/submissions/{id} {data}` with `If-Match` (supervisor in scope, admin): a correction,
/// validated like a submission and saved as a new version.
#[utoipa::path(put, path = "/api/v1/submissions/{id}", tag = "review",
    params(("id" = String, Path, description = "Submission UUID"), ("If-Match" = String, Header, description = "The ETag of the version being corrected")),
    request_body = EditRequest,
    responses((status = 200, description = "The submission as it now is", body = SubmissionView),
        (status = 412, description = "`version_stale`: someone corrected it first", body = ErrorBody),
        (status = 428, description = "`if_match_required`", body = ErrorBody),
        (status = 422, description = "`validation_failed`", body = ErrorBody),
    ))]
async fn edit_submission(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: JsonBody,
) -> Result<Response, AppError> {
    let request: EditRequest = body.parse()?;
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    let record = edit::edit(
        &state.store,
        &state.forms,
        parse_id(&id)?,
        text(header::IF_MATCH),
        request.data,
        &me,
        text(header::ACCEPT_LANGUAGE),
    )
    .await?;
    view_with_etag(&state, &record)
}

/// `GET /api/v1/submissions/{id}/versions`: who made each version and when.
#[utoipa::path(get, path = "/api/v1/submissions/{id}/versions", tag = "review",
    params(("id" = String, Path, description = "Submission UUID")), responses((status = 200, description = "Oldest first", body = Items<VersionInfo>)))]
async fn list_versions(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(id): Path<String>,
) -> Result<Json<Items<VersionInfo>>, AppError> {
    Ok(Json(Items::new(edit::versions(
        &state.store,
        parse_id(&id)?,
        &me,
    )?)))
}

/// `GET /api/v1/submissions/{id}/versions/{n}`: the answers of version `n` (1: as received).
#[utoipa::path(get, path = "/api/v1/submissions/{id}/versions/{n}", tag = "review",
    params(("id" = String, Path, description = "Submission UUID"), ("n" = String, Path, description = "Version number; 1 is as received")),
    responses((status = 200, description = "The answers of that version", body = VersionData), (status = 404, description = "`version_not_found`", body = ErrorBody)))]
async fn get_version(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path((id, n)): Path<(String, String)>,
) -> Result<Json<VersionData>, AppError> {
    let n: u32 = n.parse().map_err(|_| AppError::VersionNotFound)?;
    let data = edit::version_data(&state.store, parse_id(&id)?, n, &me)?;
    Ok(Json(VersionData { version: n, data }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct DiffQuery {
    from: u32,
    to: u32,
}

/// `GET /api/v1/submissions/{id}/diff?from=1&to=2`: the changes as JSON Pointers into the answers.
#[utoipa::path(get, path = "/api/v1/submissions/{id}/diff", tag = "review",
    params(("id" = String, Path, description = "Submission UUID"), DiffQuery), responses((status = 200, description = "Changes as JSON Pointers into the answers", body = Diff)))]
async fn diff_versions(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<DiffQuery>,
) -> Result<Json<Diff>, AppError> {
    let id = parse_id(&id)?;
    let from = edit::version_data(&state.store, id, query.from, &me)?;
    let to = edit::version_data(&state.store, id, query.to, &me)?;
    Ok(Json(Diff {
        from: query.from,
        to: query.to,
        changes: edit::diff(&from, &to),
    }))
}

/// The answers of one version.
#[derive(Serialize, ToSchema)]
struct VersionData {
    version: u32,
    data: Value,
}

/// What changed between two versions.
#[derive(Serialize, ToSchema)]
struct Diff {
    from: u32,
    to: u32,
    changes: Vec<Change>,
}
