//! Datasets for analysts: one table as CSV or NDJSON, or everything as a zip. Issue 4.
//!
//! The export runs on a blocking thread and writes into a bounded channel that feeds the
//! response body: memory stays flat, and when the client goes away the next write fails and
//! the export stops at once.

use std::io::{self, Write};
use std::sync::Arc;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::mpsc;

use super::extract::{ApiQuery, AuthUser};
use super::{Endpoint, endpoint};
use crate::AppState;
use crate::auth::Principal;
use crate::error::AppError;
use crate::export::indicators::{self, Figures};
use crate::export::{self, Export, Format, Multiple, Options};

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        endpoint(Method::GET, "/api/v1/forms/{form}/export.zip", export_zip),
        endpoint(
            Method::GET,
            "/api/v1/forms/{form}/export/{file}",
            export_table,
        ),
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IndicatorQuery {
    /// `main` (the default) or a repeated group such as `members`.
    table: Option<String>,
    /// Columns to group by, comma-separated (e.g. `township`).
    by: Option<String>,
}

/// `GET /api/v1/forms/{form}/indicators?table=members&by=township`: the form's declared figures
/// over the cleaned data, per group and in total.
async fn indicators_json(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(form): Path<String>,
    ApiQuery(query): ApiQuery<IndicatorQuery>,
) -> Result<Json<Value>, AppError> {
    Ok(Json(figures(state, me, form, query).await?.to_json()))
}

/// `GET /api/v1/forms/{form}/indicators.csv`: the same figures as one CSV row per group and a total row.
async fn indicators_csv(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(form): Path<String>,
    ApiQuery(query): ApiQuery<IndicatorQuery>,
) -> Result<Response, AppError> {
    let figures = figures(state, me, form.clone(), query).await?;
    let internal = |e: &dyn std::fmt::Display| AppError::Internal(e.to_string());
    let mut csv = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer("\u{FEFF}".as_bytes().to_vec());
    csv.write_record(figures.headers())
        .map_err(|e| internal(&e))?;
    for row in figures.rows() {
        let cells: Vec<String> = row
            .iter()
            .map(|v| match v {
                Value::String(s) => s.clone(),
                // Rates are percentages with two decimals: 58.30, not 58.3.
                Value::Number(n) if n.is_f64() => format!("{:.2}", n.as_f64().unwrap_or_default()),
                other => other.to_string(),
            })
            .collect();
        csv.write_record(cells).map_err(|e| internal(&e))?;
    }
    let bytes = csv.into_inner().map_err(|e| internal(&e))?;
    let disposition =
        HeaderValue::from_str(&format!("attachment; filename=\"{form}-indicators.csv\""))
            .unwrap_or_else(|_| HeaderValue::from_static("attachment"));
    let headers = [
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/csv; charset=utf-8"),
        ),
        (header::CONTENT_DISPOSITION, disposition),
    ];
    Ok((headers, bytes).into_response())
}

/// Computes the figures of `query.table` (default `main`) grouped by `query.by`, over cleaned data.
async fn figures(
    state: AppState,
    me: Principal,
    form: String,
    query: IndicatorQuery,
) -> Result<Figures, AppError> {
    let options = Options {
        since: None,
        until: None,
        version: None,
        labels: false,
        multiple: Multiple::Join,
        bom: false,
        raw: false,
    };
    let export = Export::prepare(&state.forms, &form, &me, options)?;
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
    tokio::task::spawn_blocking(move || indicators::compute(&export, &store, &table, by, declared))
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?
        .map_err(|e| match e.kind() {
            io::ErrorKind::InvalidInput => {
                AppError::QueryInvalid(format!("by: the table has no column {e}"))
            }
            _ => AppError::Internal(e.to_string()),
        })
}

/// The query of every export, as sent; `options` checks each value and names a bad one.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportQuery {
    since: Option<String>,
    until: Option<String>,
    version: Option<String>,
    labels: Option<String>,
    multiple: Option<String>,
    bom: Option<String>,
    raw: Option<String>,
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
        })
    }
}

/// `GET /api/v1/forms/{form}/export.zip`: every table, the codebook, the cleaning log and a README.
async fn export_zip(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(form): Path<String>,
    ApiQuery(query): ApiQuery<ExportQuery>,
) -> Result<Response, AppError> {
    let export = Export::prepare(&state.forms, &form, &me, query.options()?)?;
    let name = format!("{form}.zip");
    Ok(stream(
        state,
        export,
        "application/zip",
        &name,
        export::write_zip,
    ))
}

/// `GET /api/v1/forms/{form}/export/{table}.csv` or `.ndjson`: one table, streamed.
async fn export_table(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path((form, file)): Path<(String, String)>,
    ApiQuery(query): ApiQuery<ExportQuery>,
) -> Result<Response, AppError> {
    let (table, format, content_type) = if let Some(table) = file.strip_suffix(".csv") {
        (table, Format::Csv, "text/csv; charset=utf-8")
    } else if let Some(table) = file.strip_suffix(".ndjson") {
        (table, Format::Ndjson, "application/x-ndjson")
    } else {
        return Err(AppError::TableNotFound);
    };
    let export = Export::prepare(&state.forms, &form, &me, query.options()?)?;
    let index = export.table_index(table).ok_or(AppError::TableNotFound)?;
    let name = format!("{form}-{file}");
    Ok(stream(
        state,
        export,
        content_type,
        &name,
        move |export, store, out| export::write_table(export, store, index, format, out),
    ))
}

/// Runs `write` on a blocking thread and streams what it writes as the response body.
fn stream(
    state: AppState,
    export: Export,
    content_type: &'static str,
    file_name: &str,
    write: impl FnOnce(&Export, &crate::store::Store, ChannelWriter) -> io::Result<()> + Send + 'static,
) -> Response {
    let (tx, mut rx) = mpsc::channel::<io::Result<Bytes>>(8);
    let store = Arc::clone(&state.store);
    tokio::task::spawn_blocking(move || {
        let out = ChannelWriter {
            tx: tx.clone(),
            buffer: Vec::with_capacity(CHUNK),
        };
        if let Err(error) = write(&export, &store, out) {
            if error.kind() != io::ErrorKind::BrokenPipe {
                tracing::error!(%error, form = %export.form, "export failed");
                // The client sees a broken download rather than a silently short file.
                let _ = tx.blocking_send(Err(error));
            }
        }
    });
    let body = Body::from_stream(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)));
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{file_name}\""))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"));
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response()
}

/// Chunk size sent to the client: big enough to keep syscalls few, small enough to stream.
const CHUNK: usize = 64 * 1024;

/// A `Write` that sends full chunks into the response body; a closed channel means the client left.
struct ChannelWriter {
    tx: mpsc::Sender<io::Result<Bytes>>,
    buffer: Vec<u8>,
}

impl ChannelWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(
            &mut self.buffer,
            Vec::with_capacity(CHUNK),
        ));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        if self.buffer.len() >= CHUNK {
            self.send()?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

impl Drop for ChannelWriter {
    fn drop(&mut self) {
        let _ = self.send();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writing_after_the_client_left_fails_at_once() {
        let (tx, rx) = mpsc::channel(1);
        let mut writer = ChannelWriter {
            tx,
            buffer: Vec::new(),
        };
        drop(rx);

        let error = writer.write_all(&vec![b'x'; CHUNK]).unwrap_err();

        assert_eq!(error.kind(), io::ErrorKind::BrokenPipe);
    }
}
