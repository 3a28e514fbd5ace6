//! The changes feed: `GET /api/v1/forms/{form}/changes`, a form's submissions' changes in commit
//! order for integrators that poll (analysts, admins; their places).

use axum::Json;
use axum::extract::State;
use axum::http::Method;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::extract::{ApiQuery, AuthUser, Path};
use super::{Endpoint, blocking, endpoint};
use crate::AppState;
use crate::auth::Permission;
use crate::changes::{self, Change, DEFAULT_LIMIT, Fields, MAX_LIMIT};
use crate::error::{AppError, ErrorBody};

pub fn endpoints() -> Vec<Endpoint> {
    vec![endpoint(
        Method::GET,
        "/api/v1/forms/{form}/changes",
        list_changes,
    )]
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ChangesQuery {
    /// `next_cursor` of the previous page; none for the first change ever.
    #[param(pattern = "^[0-9]{1,19}$")]
    cursor: Option<String>,
    /// 1 to 1000; default 100.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
    /// `meta` leaves the answers out; default `all`.
    #[param(pattern = "^(all|meta)$")]
    fields: Option<String>,
}

/// A page of changes.
#[derive(Serialize, ToSchema)]
struct ChangesPage {
    items: Vec<Change>,
    /// Where to go on from: send it back as `cursor`, now or later; it is there even when the
    /// page is empty (poll with it).
    next_cursor: String,
}

/// `GET /api/v1/forms/{form}/changes`: the form's submissions' changes in the order they
/// committed; a client that keeps `next_cursor` and polls never misses one and never sees one
/// twice, across restarts. Only changes already on disk are listed.
#[utoipa::path(get, path = "/api/v1/forms/{form}/changes", tag = "changes",
    params(("form" = String, Path, description = "Form id, e.g. `labour-survey`"), ChangesQuery),
    responses(
        (status = 200, description = "Changes after the cursor, oldest first; a correction that moved a household to another place is listed for the readers of both", body = ChangesPage),
        (status = 400, description = "`query_invalid`", body = ErrorBody),
        (status = 403, description = "`forbidden`: analysts and admins read the feed", body = ErrorBody),
        (status = 404, description = "`form_not_found`", body = ErrorBody),
    ))]
async fn list_changes(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(form): Path<String>,
    ApiQuery(query): ApiQuery<ChangesQuery>,
) -> Result<Json<ChangesPage>, AppError> {
    me.require(Permission::ReadChanges)?;
    state.forms.versions(&form)?;
    let after = changes::parse_cursor(query.cursor.as_deref())?;
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(AppError::QueryInvalid(format!("limit: 1 to {MAX_LIMIT}")));
    }
    let fields = Fields::parse(query.fields.as_deref())?;
    // The newest entry committed now, and then everything before it on disk: a change is never
    // listed that a crash could still take back (and its number hand out again).
    let store = state.store.clone();
    let through = blocking(move || store.last_audit_seq()).await??;
    state.store.after_earlier_writes(()).durable().await?;
    let store = state.store.clone();
    let (items, next) =
        blocking(move || changes::page(&store, &form, after, through, limit, fields, &me))
            .await??;
    Ok(Json(ChangesPage {
        items,
        next_cursor: next.max(after).to_string(),
    }))
}
