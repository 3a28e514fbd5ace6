//! Datasets for analysts: one table as CSV or NDJSON, or everything as a zip. Issue 4.
//!
//! The export runs on a blocking thread and writes into the response body (`body.rs`): memory
//! stays flat, and when the client goes away the next write fails and the export stops at once.

use std::io;
use std::sync::Arc;

use axum::extract::State;
use axum::http::Method;
use axum::response::Response;
use serde::Deserialize;
use utoipa::IntoParams;

use super::body::{self, ChannelWriter};
use super::extract::{ApiQuery, AuthUser, Path};
use super::{Endpoint, endpoint};
use crate::AppState;
use crate::error::AppError;
use crate::error::ErrorBody;
use crate::export::{self, Export, Format, Multiple, Options, Written};
use crate::submissions::ReviewStatus;

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        endpoint(Method::GET, "/api/v1/forms/{form}/export.zip", export_zip),
        endpoint(
            Method::GET,
            "/api/v1/forms/{form}/export/{file}",
            export_table,
        ),
    ]
}

/// The query of every export, as sent; `options` checks each value and names a bad one.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ExportQuery {
    /// Only submissions received at or after this time (RFC 3339).
    #[param(format = DateTime)]
    since: Option<String>,
    /// Only submissions received before this time (RFC 3339).
    #[param(format = DateTime)]
    until: Option<String>,
    /// Only this form version, and its columns.
    version: Option<String>,
    /// Column headers and choices as labels (中文) instead of codes; default false.
    #[param(value_type = Option<bool>)]
    labels: Option<String>,
    /// Multiple-choice answers in one cell (`join`, the default) or one 0/1 column per choice.
    #[param(pattern = "^(join|split)$")]
    multiple: Option<String>,
    /// Start CSV files with a byte-order mark (Excel and WPS need it); default true.
    #[param(value_type = Option<bool>)]
    bom: Option<String>,
    /// No cleaning: every stored submission as received; default false.
    #[param(value_type = Option<bool>)]
    raw: Option<String>,
    /// Only submissions in this review state.
    #[param(value_type = Option<ReviewStatus>)]
    status: Option<String>,
    /// Zip only (a table export refuses it, 400): add every uploaded file the exported answers
    /// name as `media/<submission id>/<file name>`; default false.
    #[param(value_type = Option<bool>)]
    media: Option<String>,
}

impl ExportQuery {
    fn options(self) -> Result<Options, AppError> {
        let time = |name: &str, value: Option<String>| {
            value
                .map(|v| {
                    export::clean::instant(&v).ok_or_else(|| {
                        AppError::QueryInvalid(format!(
                            "{name}: expected an RFC 3339 time such as 2026-03-01T00:00:00+08:00"
                        ))
                    })
                })
                .transpose()
        };
        let flag = |name: &str, value: Option<String>, default: bool| match value.as_deref() {
            None => Ok(default),
            Some("true" | "1") => Ok(true),
            Some("false" | "0") => Ok(false),
            Some(_) => Err(AppError::QueryInvalid(format!(
                "{name}: expected true or false"
            ))),
        };
        let multiple = match self.multiple.as_deref() {
            None | Some("join") => Multiple::Join,
            Some("split") => Multiple::Split,
            Some(_) => {
                return Err(AppError::QueryInvalid(
                    "multiple: expected join or split".into(),
                ));
            }
        };
        Ok(Options {
            since: time("since", self.since)?,
            until: time("until", self.until)?,
            version: self.version,
            labels: flag("labels", self.labels, false)?,
            multiple,
            bom: flag("bom", self.bom, true)?,
            raw: flag("raw", self.raw, false)?,
            media: flag("media", self.media, false)?,
            status: self
                .status
                .map(|name| {
                    ReviewStatus::parse(&name).ok_or_else(|| {
                        AppError::QueryInvalid(format!("status: one of {}", ReviewStatus::names()))
                    })
                })
                .transpose()?,
        })
    }
}

/// `GET /api/v1/forms/{form}/export.zip`: every table, the codebook, the cleaning log and a README.
#[utoipa::path(get, path = "/api/v1/forms/{form}/export.zip", tag = "datasets",
    params(("form" = String, Path, description = "Form id, e.g. `labour-survey`"), ExportQuery),
    responses(
        (status = 200, description = "Every table, codebook.csv, cleaning_log.csv and README.txt, streamed", content_type = "application/zip", body = Vec<u8>),
        (status = 400, description = "`query_invalid`", body = ErrorBody),
    ))]
async fn export_zip(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(form): Path<String>,
    ApiQuery(query): ApiQuery<ExportQuery>,
) -> Result<Response, AppError> {
    let export = with_register(
        &state,
        Export::prepare(&state.forms, &form, &me, query.options()?)?,
    )
    .await?;
    let name = format!("{form}.zip");
    export::record_download(&state.store, &me, &name).await?;
    let blobs = Arc::clone(state.uploads.blobs());
    Ok(stream(
        state,
        export,
        ("zip", "application/zip"),
        &name,
        move |export, store, out| export::write_zip(export, store, &blobs, out),
    ))
}

/// `GET /api/v1/forms/{form}/export/{table}.csv` or `.ndjson`: one table, streamed.
#[utoipa::path(get, path = "/api/v1/forms/{form}/export/{file}", tag = "datasets",
    params(("form" = String, Path, description = "Form id, e.g. `labour-survey`"), ("file" = String, Path, description = "`<table>.csv` or `<table>.ndjson`, e.g. `members.csv`"), ExportQuery),
    responses(
        (status = 200, description = "One table, cleaned, streamed", content((String = "text/csv"), (String = "application/x-ndjson"))),
        (status = 404, description = "`table_not_found`", body = ErrorBody),
    ))]
async fn export_table(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path((form, file)): Path<(String, String)>,
    ApiQuery(query): ApiQuery<ExportQuery>,
) -> Result<Response, AppError> {
    let (table, format, kind) = if let Some(table) = file.strip_suffix(".csv") {
        (table, Format::Csv, ("csv", "text/csv; charset=utf-8"))
    } else if let Some(table) = file.strip_suffix(".ndjson") {
        (table, Format::Ndjson, ("ndjson", "application/x-ndjson"))
    } else {
        return Err(AppError::TableNotFound);
    };
    let options = query.options()?;
    if options.media {
        return Err(AppError::QueryInvalid(
            "media: files come only in export.zip".into(),
        ));
    }
    let export = with_register(&state, Export::prepare(&state.forms, &form, &me, options)?).await?;
    let index = export.table_index(table).ok_or(AppError::TableNotFound)?;
    let name = format!("{form}-{file}");
    export::record_download(&state.store, &me, &name).await?;
    Ok(stream(
        state,
        export,
        kind,
        &name,
        move |export, store, out| export::write_table(export, store, index, format, out),
    ))
}

/// The export with the form's register, if it has one (a cleaned export marks who it reached);
/// raw exports are the data as received, nothing added.
async fn with_register(state: &AppState, export: Export) -> Result<Export, AppError> {
    if export.options.raw {
        return Ok(export);
    }
    let (store, forms) = (state.store.clone(), state.forms.clone());
    super::blocking(move || export.with_register(&store, &forms)).await?
}

/// Runs `write` on a blocking thread and streams what it writes as the response body.
/// `kind` is the format's name (for `/metrics`) and its content type.
fn stream(
    state: AppState,
    export: Export,
    (format, content_type): (&'static str, &'static str),
    file_name: &str,
    write: impl FnOnce(&Export, &crate::store::Store, ChannelWriter) -> io::Result<Written>
    + Send
    + 'static,
) -> Response {
    let store = Arc::clone(&state.store);
    let metrics = Arc::clone(&state.metrics);
    let body = body::written_on_a_thread(move |out| {
        let written = write(&export, &store, out).inspect_err(|error| {
            if error.kind() != io::ErrorKind::BrokenPipe {
                tracing::error!(%error, form = %export.form, "export failed");
            }
        })?;
        metrics.export_rows(export.form.as_str(), format, written.rows);
        metrics.unreadable_records(written.unreadable as usize);
        Ok(())
    });
    body::attachment(content_type, file_name, body)
}
