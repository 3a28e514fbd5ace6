//! Datasets for analysts: one table as CSV or NDJSON, or everything as a zip. Issue 4.
//!
//! The export runs on a blocking thread and writes into a bounded channel that feeds the
//! response body: memory stays flat, and when the client goes away the next write fails and
//! the export stops at once.

use std::io::{self, Write};
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tokio::sync::mpsc;

use super::extract::{ApiQuery, AuthUser};
use super::{Endpoint, endpoint};
use crate::AppState;
use crate::audit;
use crate::auth::Principal;
use crate::error::AppError;
use crate::export::{self, Export, Format, Multiple, Options};

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

/// Review states an export can be limited to.
const REVIEW_FILTERS: [&str; 5] = ["received", "approved", "has_issues", "edited", "rejected"];

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
    status: Option<String>,
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
            status: match self.status {
                Some(s) if !REVIEW_FILTERS.contains(&s.as_str()) => {
                    return Err(AppError::QueryInvalid(format!(
                        "status: one of {}",
                        REVIEW_FILTERS.join(", ")
                    )));
                }
                other => other,
            },
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
    downloaded(&state, &me, &name)?;
    Ok(stream(
        state,
        export,
        ("zip", "application/zip"),
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
    let (table, format, kind) = if let Some(table) = file.strip_suffix(".csv") {
        (table, Format::Csv, ("csv", "text/csv; charset=utf-8"))
    } else if let Some(table) = file.strip_suffix(".ndjson") {
        (table, Format::Ndjson, ("ndjson", "application/x-ndjson"))
    } else {
        return Err(AppError::TableNotFound);
    };
    let export = Export::prepare(&state.forms, &form, &me, query.options()?)?;
    let index = export.table_index(table).ok_or(AppError::TableNotFound)?;
    let name = format!("{form}-{file}");
    downloaded(&state, &me, &name)?;
    Ok(stream(
        state,
        export,
        kind,
        &name,
        move |export, store, out| export::write_table(export, store, index, format, out),
    ))
}

/// Records the download in the audit log (who took which data, and when).
fn downloaded(state: &AppState, me: &Principal, file_name: &str) -> Result<(), AppError> {
    let event = audit::by(me, audit::EXPORT_DOWNLOADED, format!("export:{file_name}"));
    state.store.record_audit(&event)?;
    Ok(())
}

/// Runs `write` on a blocking thread and streams what it writes as the response body.
/// `kind` is the format's name (for `/metrics`) and its content type.
fn stream(
    state: AppState,
    export: Export,
    (format, content_type): (&'static str, &'static str),
    file_name: &str,
    write: impl FnOnce(&Export, &crate::store::Store, ChannelWriter) -> io::Result<u64> + Send + 'static,
) -> Response {
    let (tx, mut rx) = mpsc::channel::<io::Result<Bytes>>(8);
    let store = Arc::clone(&state.store);
    let metrics = Arc::clone(&state.metrics);
    tokio::task::spawn_blocking(move || {
        let out = ChannelWriter {
            tx: tx.clone(),
            buffer: Vec::with_capacity(CHUNK),
        };
        match write(&export, &store, out) {
            Ok(rows) => metrics.export_rows(&export.form, format, rows),
            Err(error) if error.kind() == io::ErrorKind::BrokenPipe => {}
            Err(error) => {
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
