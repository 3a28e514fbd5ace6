//! The county's figures: declared indicators over the cleaned data. Issue 5 "indicators".

use std::io;

use axum::Json;
use axum::extract::State;
use axum::http::Method;
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;
use utoipa::IntoParams;

use super::body;
use super::extract::{ApiQuery, AuthUser, Path};
use super::{Endpoint, endpoint};
use crate::AppState;
use crate::auth::Principal;
use crate::error::AppError;
use crate::export::indicators::{self, Figures};
use crate::export::{Export, Options};

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        endpoint(
            Method::GET,
            "/api/v1/forms/{form}/indicators",
            indicators_json,
        ),
        endpoint(
            Method::GET,
            "/api/v1/forms/{form}/indicators.csv",
            indicators_csv,
        ),
    ]
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct IndicatorQuery {
    /// `main` (the default) or a repeated group such as `members`.
    table: Option<String>,
    /// Columns to group by, comma-separated (e.g. `township`).
    by: Option<String>,
}

/// `GET /api/v1/forms/{form}/indicators?table=members&by=township`: the form's declared figures
/// over the cleaned data, per group and in total.
#[utoipa::path(get, path = "/api/v1/forms/{form}/indicators", tag = "datasets",
    params(("form" = String, Path, description = "Form id, e.g. `labour-survey`"), IndicatorQuery),
    responses((status = 200, description = "`{by, indicators, groups, total}` over the cleaned data", body = Object)))]
async fn indicators_json(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(form): Path<String>,
    ApiQuery(query): ApiQuery<IndicatorQuery>,
) -> Result<Json<Value>, AppError> {
    Ok(Json(figures(state, me, form, query).await?.to_json()))
}

/// `GET /api/v1/forms/{form}/indicators.csv`: the same figures as one CSV row per group and a total row.
#[utoipa::path(get, path = "/api/v1/forms/{form}/indicators.csv", tag = "datasets",
    params(("form" = String, Path, description = "Form id, e.g. `labour-survey`"), IndicatorQuery),
    responses((status = 200, description = "One row per group and a total row", content_type = "text/csv", body = String)))]
async fn indicators_csv(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(form): Path<String>,
    ApiQuery(query): ApiQuery<IndicatorQuery>,
) -> Result<Response, AppError> {
    let figures = figures(state.clone(), me.clone(), form.clone(), query).await?;
    let mut bytes = Vec::new();
    figures
        .write_csv(&mut bytes, true)
        .map_err(|e| AppError::Internal(e.to_string()))?;
    let name = format!("{form}-indicators.csv");
    crate::export::record_download(&state.store, &me, &name).await?;
    Ok(body::attachment("text/csv; charset=utf-8", &name, bytes))
}

/// Computes the figures of `query.table` (default `main`) grouped by `query.by`, over cleaned data.
async fn figures(
    state: AppState,
    me: Principal,
    form: String,
    query: IndicatorQuery,
) -> Result<Figures, AppError> {
    let export = Export::prepare_for_figures(&state.forms, &form, &me, Options::cleaned())?;
    let table = query.table.unwrap_or_else(|| "main".into());
    if export.table_index(&table).is_none() {
        return Err(AppError::TableNotFound);
    }
    let by: Vec<String> = query
        .by
        .iter()
        .flat_map(|b| b.split(','))
        .map(str::trim)
        .filter(|b| !b.is_empty())
        .map(str::to_owned)
        .collect();
    let newest = state.forms.resolve(&form, None)?;
    let declared = indicators::declared(&newest.stored.schema, &export, &table);
    let store = state.store.clone();
    super::blocking(move || indicators::compute(&export, &store, &table, by, declared))
        .await?
        .map_err(|e| match e.kind() {
            io::ErrorKind::InvalidInput => AppError::QueryInvalid(
                "by: a name is not a column of this table (codebook.csv lists them)".into(),
            ),
            _ => AppError::Internal(e.to_string()),
        })
}
