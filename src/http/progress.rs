//! How far the survey has got, for the console's tables and charts. Issue 13.

use axum::Json;
use axum::extract::State;
use axum::http::Method;
use serde::Deserialize;
use utoipa::IntoParams;

use super::extract::{ApiQuery, AuthUser, Path};
use super::{Endpoint, endpoint};
use crate::AppState;
use crate::error::AppError;
use crate::error::ErrorBody;
use crate::submissions::progress::{self, GroupBy, Progress};

pub fn endpoints() -> Vec<Endpoint> {
    vec![endpoint(
        Method::GET,
        "/api/v1/forms/{form}/progress",
        progress_counts,
    )]
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ProgressQuery {
    /// What to count by: the day received (in `SURVEY_TIMEZONE`), the field worker, the review
    /// state, or the township (the form's scope field).
    #[param(pattern = "^(day|submitted_by|review_status|township)$")]
    by: String,
}

/// `GET /api/v1/forms/{form}/progress?by=day`: submissions counted in one pass over the reader's scope.
#[utoipa::path(get, path = "/api/v1/forms/{form}/progress", tag = "datasets",
    params(("form" = String, Path, description = "Form id, e.g. `labour-survey`"), ProgressQuery),
    responses(
        (status = 200, description = "`{groups: [{key, count, display_name?}], total}`; `display_name` names field workers", body = Progress),
        (status = 400, description = "`query_invalid`: an unknown `by`", body = ErrorBody),
    ))]
async fn progress_counts(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(form): Path<String>,
    ApiQuery(query): ApiQuery<ProgressQuery>,
) -> Result<Json<Progress>, AppError> {
    let by = GroupBy::parse(&query.by)
        .ok_or_else(|| AppError::QueryInvalid(format!("by: one of {}", GroupBy::NAMES)))?;
    let schema = state.forms.resolve(&form, None)?.stored.schema.clone();
    // A pass over a whole county's records: off the request threads.
    let counted = super::blocking(move || {
        progress::progress(&state.store, &form, &schema, by, &me, &state.timezone)
    })
    .await??;
    Ok(Json(counted))
}
