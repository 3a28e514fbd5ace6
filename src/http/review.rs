//! Review of submissions: states, comments, soft delete and restore. Issue 6 "Review".

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::extract::{AuthUser, JsonBody};
use super::submissions::parse_id;
use super::{Endpoint, endpoint};
use crate::AppState;
use crate::error::AppError;
use crate::submissions::{SubmissionView, review};

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
    ]
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReviewRequest {
    status: String,
    comment: Option<String>,
}

/// `PATCH /api/v1/submissions/{id}/review {status, comment?}` (supervisor in scope, admin).
async fn set_review(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(id): Path<String>,
    body: JsonBody,
) -> Result<Json<Value>, AppError> {
    let request: ReviewRequest = body.parse()?;
    let record = review::set_state(
        &state.store,
        parse_id(&id)?,
        &request.status,
        request.comment.as_deref(),
        &me,
    )?;
    state.store.wait_durable().await?;
    Ok(Json(json!(SubmissionView::of(&record)?)))
}

/// `GET /api/v1/submissions/{id}/comments`: for anyone who may see the submission.
async fn list_comments(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    let comments = review::comments(&state.store, parse_id(&id)?, &me)?;
    Ok(Json(json!({ "items": comments })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CommentRequest {
    text: String,
}

/// `POST /api/v1/submissions/{id}/comments {text}`: reviewers, and the field worker who submitted.
async fn add_comment(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(id): Path<String>,
    body: JsonBody,
) -> Result<(StatusCode, Json<Value>), AppError> {
    let request: CommentRequest = body.parse()?;
    let comment = review::add_comment(&state.store, parse_id(&id)?, &request.text, &me)?;
    state.store.wait_durable().await?;
    Ok((StatusCode::CREATED, Json(json!(comment))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeleteRequest {
    reason: String,
}

/// `DELETE /api/v1/submissions/{id} {reason}` (admin): hidden from lists and exports, kept in storage.
async fn delete_submission(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(id): Path<String>,
    body: JsonBody,
) -> Result<Json<Value>, AppError> {
    let request: DeleteRequest = body.parse()?;
    let record = review::delete(&state.store, parse_id(&id)?, &request.reason, &me)?;
    state.store.wait_durable().await?;
    Ok(Json(json!(SubmissionView::of(&record)?)))
}

/// `POST /api/v1/submissions/{id}/restore` (admin).
async fn restore_submission(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    let record = review::restore(&state.store, parse_id(&id)?, &me)?;
    state.store.wait_durable().await?;
    Ok(Json(json!(SubmissionView::of(&record)?)))
}
