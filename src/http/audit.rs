//! The audit log: every login, change and download, for admins; one submission's history for
//! those who may see it. Issue 6 "Audit log".

use axum::Json;
use axum::extract::{Path, State};
use axum::http::Method;
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

use super::extract::{ApiQuery, AuthUser};
use super::shapes::{Items, Page};
use super::{Endpoint, endpoint};
use crate::AppState;
use crate::audit::{self, Filter};
use crate::auth::Permission;
use crate::error::AppError;
use crate::store::AuditRecord;

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
    /// One audited action. The pattern lists `audit::ACTIONS` (a test keeps the two equal).
    #[param(
        pattern = "^(login|login_failed|logout|user_created|user_updated|form_published|submission_created|export_downloaded|submission_reviewed|submission_deleted|submission_restored|comment_added|submission_edited|backup_downloaded)$"
    )]
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
    responses((status = 200, description = "Oldest first", body = Page<AuditRecord>)))]
async fn list_audit(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> Result<Json<Page<AuditRecord>>, AppError> {
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

/// `GET /api/v1/submissions/{id}/audit`: what happened to one submission, for those who review it.
#[utoipa::path(get, path = "/api/v1/submissions/{id}/audit", tag = "audit",
    params(("id" = String, Path, description = "Submission UUID")),
    responses((status = 200, description = "Everything done to this submission", body = Items<AuditRecord>)))]
async fn submission_audit(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(id): Path<String>,
) -> Result<Json<Items<AuditRecord>>, AppError> {
    let id = Uuid::try_parse(&id).map_err(|_| AppError::SubmissionNotFound)?;
    crate::submissions::find(&state.store, id, &me)?;
    me.require(Permission::ReadScopedSubmissions)?;
    let items = state.store.audit_of(&audit::submission_target(id))?;
    Ok(Json(Items::new(items)))
}
