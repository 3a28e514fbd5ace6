//! Submissions: submit one, submit a batch, page through, read one. DESIGN.md "HTTP contract (v1)".

use axum::Json;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::extract::{ApiQuery, AuthUser, JsonBody, Path};
use super::shapes::Page;
use super::{Endpoint, endpoint};
use crate::attachments;
use crate::clock::Timestamp;
use crate::error::ErrorBody;
use crate::error::{AppError, Detail, ErrorObject};
use crate::store::SubmissionRecord;
use crate::submissions::{self, Accepted, ListFilter, Receipt, Search, SubmissionView};
use crate::{AppState, Limits};

/// A submission as the phone sends it (documentation of what `submissions::envelope` checks).
#[derive(ToSchema)]
#[allow(dead_code)]
struct EnvelopeDoc {
    /// Made by the phone; the idempotency key.
    id: Uuid,
    /// The version filled in; default the current one.
    form_version: Option<String>,
    /// The answers, validated against the form version's JSON Schema
    /// (`components.schemas["form.<form>.v<version>"]`).
    #[schema(value_type = Object)]
    data: Value,
    /// Device facts (start and end times, app version...), stored as sent.
    meta: Option<Value>,
}

/// Marks a response that repeats an earlier receipt; phones often only trust 201, so the status stays 201.
const REPLAYED: &str = "idempotent-replayed";

pub fn endpoints(limits: &Limits) -> Vec<Endpoint> {
    vec![
        endpoint(Method::POST, "/api/v1/forms/{form}/submissions", submit),
        endpoint(
            Method::GET,
            "/api/v1/forms/{form}/submissions",
            list_submissions,
        ),
        endpoint(
            Method::POST,
            "/api/v1/forms/{form}/submissions/batch",
            submit_batch,
        )
        .layer(DefaultBodyLimit::max(limits.max_batch_bytes)),
        endpoint(Method::GET, "/api/v1/submissions/{id}", get_submission),
        endpoint(
            Method::GET,
            "/api/v1/submissions/{id}/raw",
            get_submission_raw,
        ),
    ]
}

/// `POST /api/v1/forms/{form}/submissions`: 201 with a receipt once the submission is on disk.
#[utoipa::path(post, path = "/api/v1/forms/{form}/submissions", tag = "submissions",
    params(("form" = String, Path, description = "Form id, e.g. `labour-survey`")),
    request_body(content = EnvelopeDoc, description = "May be sent with Content-Encoding: gzip"),
    responses(
        (status = 201, description = "Stored and on disk; a replay (same id, same content) also answers 201 with header `idempotent-replayed: true`", body = Receipt),
        (status = 409, description = "`submission_conflict`: this id was received with other content", body = ErrorBody),
        (status = 422, description = "`validation_failed` (with `details`); `request_invalid` for a wrong envelope or a key repeated anywhere (`details[0].path`: the second occurrence); `schema_invalid` for a form version that breaks a rule for schemas", body = ErrorBody),
    ))]
async fn submit(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(form): Path<String>,
    headers: HeaderMap,
    body: JsonBody,
) -> Result<Response, AppError> {
    let outcome = submissions::submit(
        &state.store,
        &state.forms,
        &form,
        &body.0,
        &me,
        accept_language(&headers),
    )
    .await;
    count(&state, &form, &outcome);
    let accepted = outcome?;
    let mut response = (StatusCode::CREATED, Json(&accepted.receipt)).into_response();
    if accepted.replayed {
        response
            .headers_mut()
            .insert(REPLAYED, HeaderValue::from_static("true"));
    }
    Ok(response)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct BatchRequest {
    /// Envelopes (see `EnvelopeDoc`), each judged on its own: a bad one gets its error in
    /// `results` and does not fail the others.
    #[schema(value_type = Vec<Value>)]
    submissions: Vec<Box<RawValue>>,
}

/// `POST /api/v1/forms/{form}/submissions/batch`: a phone's offline queue; one result per item, in order.
#[utoipa::path(post, path = "/api/v1/forms/{form}/submissions/batch", tag = "submissions",
    params(("form" = String, Path, description = "Form id, e.g. `labour-survey`")),
    request_body = BatchRequest,
    responses(
        (status = 200, description = "One result per submission, in order: `{id, status: 201, replayed, receipt}` or `{id, status, error}`", body = BatchResults),
        (status = 413, description = "`batch_too_large` or `body_too_large`", body = ErrorBody),
        (status = 422, description = "`request_invalid`: the wrapper repeats a key (an item that repeats one gets its own 422 in `results`)", body = ErrorBody),
    ))]
async fn submit_batch(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(form): Path<String>,
    headers: HeaderMap,
    body: JsonBody,
) -> Result<Json<BatchResults>, AppError> {
    let request: BatchRequest = body.parse_outer()?;
    let max = state.limits.max_batch;
    if request.submissions.len() > max {
        return Err(AppError::BatchTooLarge { max });
    }
    let results = submissions::submit_batch(
        state.store.clone(),
        state.forms.clone(),
        form.clone(),
        request.submissions,
        state.limits.max_body_bytes,
        me,
        accept_language(&headers).map(str::to_owned),
    )
    .await?;
    let results: Vec<BatchItem> = results
        .into_iter()
        .map(|item| {
            count(&state, &form, &item.outcome);
            batch_result(item.id, item.outcome)
        })
        .collect();
    Ok(Json(BatchResults { results }))
}

/// Counts a submission's fate for `/metrics`; names that are not published forms stay out of the labels.
fn count(state: &AppState, form: &str, outcome: &Result<Accepted, AppError>) {
    if state.forms.versions(form).is_err() {
        return;
    }
    let details: &[Detail] = match outcome {
        Err(AppError::ValidationFailed(details)) => details,
        _ => &[],
    };
    state.metrics.submission(
        form,
        outcome
            .as_ref()
            .map(|accepted| accepted.replayed)
            .map_err(|error| error.status_and_code().1),
        details
            .iter()
            .filter_map(|detail| detail.keyword.as_deref()),
    );
}

/// One result per submission of a batch, in the order sent.
#[derive(Serialize, ToSchema)]
struct BatchResults {
    results: Vec<BatchItem>,
}

/// How one submission of a batch went: a receipt, or an error as a single upload would get it.
#[derive(Serialize, ToSchema)]
struct BatchItem {
    /// The envelope's id, when it had a readable one.
    id: Option<Uuid>,
    /// The status a single upload would have had: 201, or the error's.
    status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    replayed: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    receipt: Option<Receipt>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorObject>,
}

fn batch_result(id: Option<Uuid>, outcome: Result<Accepted, AppError>) -> BatchItem {
    match outcome {
        Ok(accepted) => BatchItem {
            id,
            status: StatusCode::CREATED.as_u16(),
            replayed: Some(accepted.replayed),
            receipt: Some(accepted.receipt),
            error: None,
        },
        Err(error) => BatchItem {
            id,
            status: error.status_and_code().0.as_u16(),
            replayed: None,
            receipt: None,
            error: Some(error.body()),
        },
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
// A misspelt filter (`townshp=`) would otherwise list everything.
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// 1 to 1000; default 100.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
    /// `next_cursor` of the previous page.
    #[param(pattern = "^[0-9]{1,19}$")]
    cursor: Option<String>,
    /// Only these review states, comma-separated (`has_issues,rejected`: what needs attention).
    #[param(
        pattern = "^(received|edited|approved|has_issues|rejected)(,(received|edited|approved|has_issues|rejected))*$"
    )]
    status: Option<String>,
    /// Only this place: the value of the form's scope field (`x-scope`, the township).
    #[param(min_length = 1, max_length = 50, pattern = "\\S")]
    township: Option<String>,
    /// Only submissions sent by this username.
    #[param(min_length = 1, max_length = 32, pattern = "\\S")]
    submitted_by: Option<String>,
    /// Only submissions received at or after this time (RFC 3339).
    #[param(format = DateTime)]
    since: Option<String>,
    /// Only submissions received before this time (RFC 3339).
    #[param(format = DateTime)]
    until: Option<String>,
    /// A household number or ID number (the form's `x-unique` fields), compared after the
    /// normalisation cleaning uses: NFKC, trimmed, upper-case X.
    #[param(min_length = 1, max_length = 100, pattern = "\\S")]
    q: Option<String>,
}

impl ListQuery {
    fn filter(&self, schema: &Value) -> Result<ListFilter, AppError> {
        let time = |name: &str, value: &Option<String>| {
            value
                .as_deref()
                .map(|text| {
                    Timestamp::parse(text).map(Timestamp::instant).ok_or_else(|| {
                        AppError::QueryInvalid(format!(
                            "{name}: expected an RFC 3339 time such as 2026-03-01T00:00:00+08:00"
                        ))
                    })
                })
                .transpose()
        };
        let text = |name: &str, value: &Option<String>, max: usize| match value {
            Some(v) if v.trim().is_empty() || v.chars().count() > max => Err(
                AppError::QueryInvalid(format!("{name}: 1 to {max} characters")),
            ),
            other => Ok(other.clone()),
        };
        Ok(ListFilter {
            statuses: self
                .status
                .as_deref()
                .map(submissions::statuses)
                .transpose()?,
            place: text("township", &self.township, 50)?,
            submitted_by: text("submitted_by", &self.submitted_by, 32)?,
            since: time("since", &self.since)?,
            until: time("until", &self.until)?,
            search: text("q", &self.q, 100)?.map(|q| Search::new(schema, &q)),
        })
    }
}

/// `GET /api/v1/forms/{form}/submissions`: arrival order, oldest first; `next_cursor` continues.
#[utoipa::path(get, path = "/api/v1/forms/{form}/submissions", tag = "submissions",
    params(("form" = String, Path, description = "Form id, e.g. `labour-survey`"), ListQuery),
    responses((status = 200, description = "Arrival order, oldest first; a stored record that cannot be read is left out (logged, counted in `survey_unreadable_records_total`)", body = Page<SubmissionView>)))]
async fn list_submissions(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(form): Path<String>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Response, AppError> {
    let current = state.forms.resolve(&form, None)?;
    let filter = query.filter(&current.stored.schema)?;
    // A filtered page may read many records (a search reads each one's answers): off the request threads.
    let store = state.store.clone();
    let page = super::blocking(move || {
        submissions::page(
            &store,
            &form,
            query.cursor.as_deref(),
            query.limit,
            &filter,
            &me,
        )
    })
    .await??;
    let (items, unreadable) = page.views();
    state.metrics.unreadable_records(unreadable);
    Ok(Json(Page::new(items, page.next_cursor.clone())).into_response())
}

/// `GET /api/v1/submissions/{id}`: one submission with its metadata, and the `ETag` a correction needs.
#[utoipa::path(get, path = "/api/v1/submissions/{id}", tag = "submissions",
    params(("id" = String, Path, description = "Submission UUID")),
    responses(
        (status = 200, description = "The submission; `ETag` for corrections", body = SubmissionView),
        (status = 404, description = "`submission_not_found` (also when not yours to see)", body = ErrorBody),
    ))]
async fn get_submission(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let record = submissions::find(&state.store, parse_id(&id)?, &me)?;
    view_with_etag(&state, &record)
}

/// A submission as JSON with its files and the `ETag` of its current version, which a
/// correction must send back.
pub(super) fn view_with_etag(
    state: &AppState,
    record: &SubmissionRecord,
) -> Result<Response, AppError> {
    let etag = HeaderValue::from_str(&submissions::edit::etag(record))
        .map_err(|e| AppError::Internal(e.to_string()))?;
    let mut view = SubmissionView::of(record)?;
    view.attachments = Some(attachments::listed(
        &state.store,
        state.uploads.blobs(),
        &state.forms,
        record,
    )?);
    Ok(([(header::ETAG, etag)], Json(view)).into_response())
}

/// `GET /api/v1/submissions/{id}/raw`: the envelope byte for byte as the phone sent it (for audit).
#[utoipa::path(get, path = "/api/v1/submissions/{id}/raw", tag = "submissions",
    params(("id" = String, Path, description = "Submission UUID")),
    responses(
        (status = 200, description = "The envelope byte for byte as received (decompressed)", body = Object),
        (status = 404, description = "`submission_not_found`", body = ErrorBody),
    ))]
async fn get_submission_raw(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let record = submissions::find(&state.store, parse_id(&id)?, &me)?;
    Ok(([(header::CONTENT_TYPE, "application/json")], record.payload).into_response())
}

/// The caller's `Accept-Language`, which picks the language of validation messages.
pub(super) fn accept_language(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
}

/// An id that is not a UUID cannot name a stored submission.
pub(super) fn parse_id(id: &str) -> Result<Uuid, AppError> {
    Uuid::try_parse(id).map_err(|_| AppError::SubmissionNotFound)
}
