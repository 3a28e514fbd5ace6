//! The audit log: every login, change and download, for admins; one submission's history for
//! those who may see it. Issue 6 "Audit log".

use axum::Json;
use axum::extract::State;
use axum::http::Method;
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

use super::extract::{ApiQuery, AuthUser, Path};
use super::shapes::{Items, Page};
use super::{Endpoint, endpoint};
use crate::AppState;
use crate::audit::{self, AuditAction, AuditEntry, Filter};
use crate::error::AppError;

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        endpoint(Method::GET, "/api/v1/audit", list_audit),
        endpoint(
            Method::GET,
            "/api/v1/submissions/{id}/audit",
            submission_audit,
        ),
    ]
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    /// Entries at or after this time (RFC 3339).
    #[param(format = DateTime)]
    since: Option<String>,
    /// Entries before this time (RFC 3339).
    #[param(format = DateTime)]
    until: Option<String>,
    /// A username.
    actor: Option<String>,
    /// One audited action.
    #[param(value_type = Option<AuditAction>)]
    action: Option<String>,
    /// `submission:<id>`, `user:<name>`, `form:<id>@<version>`, `export:<file>`, `backup`.
    target: Option<String>,
    /// 1 to 1000; default 100.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
    /// `next_cursor` of the previous page.
    #[param(pattern = "^[0-9]{1,19}$")]
    cursor: Option<String>,
}

/// `GET /api/v1/audit?since=&until=&actor=&action=&target=&limit=&cursor=` (admin): oldest first.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit",
    params(AuditQuery),
    responses((status = 200, description = "Oldest first", body = Page<AuditEntry>)))]
async fn list_audit(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> Result<Json<Page<AuditEntry>>, AppError> {
    let filter = Filter {
        since: query.since,
        until: query.until,
        actor: query.actor,
        action: query.action,
        target: query.target,
    };
    let (items, next) = audit::page(
        &state.store,
        &me,
        &filter,
        query.cursor.as_deref(),
        query.limit,
    )?;
    Ok(Json(Page::new(items, next)))
}

/// `GET /api/v1/submissions/{id}/audit`: what happened to one submission, for those who review
/// it (supervisors in its scope) and admins; analysts and field workers get 403.
#[utoipa::path(get, path = "/api/v1/submissions/{id}/audit", tag = "audit",
    params(("id" = String, Path, description = "Submission UUID")),
    responses(
        (status = 200, description = "Everything done to this submission", body = Items<AuditEntry>),
        (status = 403, description = "`forbidden` (not a reviewer) or `out_of_scope`", body = crate::error::ErrorBody),
    ))]
async fn submission_audit(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(id): Path<String>,
) -> Result<Json<Items<AuditEntry>>, AppError> {
    let id = Uuid::try_parse(&id).map_err(|_| AppError::SubmissionNotFound)?;
    Ok(Json(Items::new(audit::trail(&state.store, id, &me)?)))
}
