//! How much of the register the survey has reached (`registry/coverage.rs`): per township,
//! village or field worker, as JSON or CSV, and the households still to visit.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use utoipa::IntoParams;

use super::body;
use super::extract::{ApiQuery, AuthUser, Path};
use super::{Endpoint, blocking, endpoint};
use crate::AppState;
use crate::auth::{Permission, Principal};
use crate::error::{AppError, ErrorBody};
use crate::export::{Export, Options};
use crate::registry::coverage::{self, By, Coverage};

/// Largest page of missing households.
const MAX_PAGE: usize = 1000;

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        endpoint(Method::GET, "/api/v1/forms/{form}/coverage", coverage_json),
        endpoint(
            Method::GET,
            "/api/v1/forms/{form}/coverage.csv",
            coverage_csv,
        ),
        endpoint(
            Method::GET,
            "/api/v1/forms/{form}/coverage/missing",
            missing,
        ),
    ]
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct CoverageQuery {
    /// A household field of the register (`township`, the default, or `village`), or
    /// `submitted_by` (surveyed counts per field worker only).
    by: Option<String>,
}

/// `GET /api/v1/forms/{form}/coverage`: registered and surveyed households and people per group.
#[utoipa::path(get, path = "/api/v1/forms/{form}/coverage", tag = "registry",
    params(("form" = String, Path, description = "Form id, e.g. `labour-survey`"), CoverageQuery),
    responses(
        (status = 200, description = "Per group and in total, over the cleaned data and the reader's places", body = Coverage),
        (status = 404, description = "`registry_not_found`", body = ErrorBody),
        (status = 409, description = "`registry_changed`: imports kept replacing the register while it was counted; ask again", body = ErrorBody),
    ))]
async fn coverage_json(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(form): Path<String>,
    ApiQuery(query): ApiQuery<CoverageQuery>,
) -> Result<Response, AppError> {
    Ok(Json(counted(&state, me, &form, query).await?).into_response())
}

/// `GET /api/v1/forms/{form}/coverage.csv`: the same, one row per group and a total row.
#[utoipa::path(get, path = "/api/v1/forms/{form}/coverage.csv", tag = "registry",
    params(("form" = String, Path, description = "Form id, e.g. `labour-survey`"), CoverageQuery),
    responses((status = 200, description = "One row per group and a total row", content_type = "text/csv", body = String)))]
async fn coverage_csv(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(form): Path<String>,
    ApiQuery(query): ApiQuery<CoverageQuery>,
) -> Result<Response, AppError> {
    let coverage = counted(&state, me.clone(), &form, query).await?;
    let headers = [
        coverage.by.as_str(),
        "registered_households",
        "surveyed_households",
        "registered_members",
        "surveyed_members",
        "household_coverage",
        "member_coverage",
    ];
    let number = |n: Option<u64>| n.map(|n| n.to_string()).unwrap_or_default();
    let rate = |r: Option<f64>| r.map(|r| format!("{r:.2}")).unwrap_or_default();
    let mut csv = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer("\u{feff}".as_bytes().to_vec());
    let internal = |e: csv::Error| AppError::Internal(e.to_string());
    csv.write_record(headers).map_err(internal)?;
    for group in coverage.groups.iter().chain([&coverage.total]) {
        csv.write_record([
            crate::export::clean::neutralize_formula(&group.key).into_owned(),
            number(group.registered_households),
            group.surveyed_households.to_string(),
            number(group.registered_members),
            group.surveyed_members.to_string(),
            rate(group.household_coverage),
            rate(group.member_coverage),
        ])
        .map_err(internal)?;
    }
    let bytes = csv
        .into_inner()
        .map_err(|e| AppError::Internal(e.to_string()))?;
    let name = format!("{form}-coverage.csv");
    crate::export::record_download(&state.store, &me, &name).await?;
    Ok(body::attachment("text/csv; charset=utf-8", &name, bytes))
}

/// The cleaned data coverage matches against: all of it, whoever asks (a household registered in
/// the reader's township and surveyed as another's is still reached); what they see of the
/// register is what their places hold.
fn surveyed(state: &AppState, form: &str, me: &Principal) -> Result<Export, AppError> {
    me.require(Permission::ReadFigures)?;
    Export::prepare_for_figures(&state.forms, form, &Principal::system(), Options::cleaned())
}

async fn counted(
    state: &AppState,
    me: Principal,
    form: &str,
    query: CoverageQuery,
) -> Result<Coverage, AppError> {
    let by = match query.by.as_deref().map(str::trim) {
        None | Some("") => By::Field("township".into()),
        Some("submitted_by") => By::SubmittedBy,
        Some(field) => By::Field(field.to_owned()),
    };
    let export = surveyed(state, form, &me)?;
    let version = state.forms.resolve(form, None)?;
    let store = state.store.clone();
    blocking(move || coverage::coverage(&store, &version, &export, &by, &me)).await?
}

/// `GET /api/v1/forms/{form}/coverage/missing`: registered households not yet surveyed.
#[utoipa::path(get, path = "/api/v1/forms/{form}/coverage/missing", tag = "registry",
    params(
        ("form" = String, Path, description = "Form id, e.g. `labour-survey`"),
        ("township" = Option<String>, Query, description = "Only this township (any household field of the register filters the same way, e.g. `village=`)"),
        ("limit" = Option<usize>, Query, minimum = 1, maximum = 1000, description = "Households per page, 1–1000 (default 100)"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the page before"),
    ),
    responses(
        (status = 200, description = "`{items, next_cursor}`: households with their people, as the roster gives them", body = Object),
        (status = 404, description = "`registry_not_found`", body = ErrorBody),
        (status = 409, description = "`registry_changed`: a new register was imported while the page was read; start again without a cursor", body = ErrorBody),
    ))]
async fn missing(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(form): Path<String>,
    ApiQuery(mut query): ApiQuery<BTreeMap<String, String>>,
) -> Result<Response, AppError> {
    let limit = match query.remove("limit") {
        None => 100,
        Some(text) => text
            .parse()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| AppError::QueryInvalid(format!("limit: 1 to {MAX_PAGE}")))?,
    };
    let cursor = query.remove("cursor");
    let filters: Vec<(String, String)> = query.into_iter().collect();
    let export = surveyed(&state, &form, &me)?;
    let version = state.forms.resolve(&form, None)?;
    let store = state.store.clone();
    let (items, next) = blocking(move || {
        coverage::missing(
            &store,
            &version,
            &export,
            &filters,
            (limit, cursor.as_deref()),
            &me,
        )
    })
    .await??;
    Ok(Json(json!({"items": items, "next_cursor": next})).into_response())
}
