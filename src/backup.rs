//! Online backups: what the server does for `GET /api/v1/admin/backup` ([`snapshot_for`]), and
//! `survey-server backup` and `restore`, the operator's side.
//!
//! `backup` signs in to a running server as an admin, streams `GET /api/v1/admin/backup` into
//! `<file>.partial`, checks the whole file, and only then renames it to `<file>`: a backup that
//! exists is a complete one. `restore` builds a new data directory from such a file while the
//! server is stopped (format and consistency: `store/backup.rs`).

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use std::sync::Arc;

use serde_json::{Value, json};

use crate::audit::{self, AuditAction};
use crate::auth::{Permission, Principal};
use crate::error::AppError;
use crate::store::{self, BackupSummary, Snapshot, Store};

/// A consistent snapshot of the whole database for an admin. The record of its taking is on
/// disk first, so no backup leaves without a trace, and the backup holds that record too.
pub async fn snapshot_for(store: Arc<Store>, by: &Principal) -> Result<Snapshot, AppError> {
    by.require(Permission::Backup)?;
    let event = audit::by(by, AuditAction::BackupDownloaded, "backup".to_owned());
    store.record_audit(&event)?.durable().await?;
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(|| store.snapshot()))
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?
        .map_err(AppError::from)
}

/// Where to take a backup from, and as whom.
pub struct Source {
    /// The server's base address, e.g. `http://127.0.0.1:8080`.
    pub server: String,
    pub username: String,
    pub password: String,
}

/// Takes a backup of the running server into `out`.
pub async fn fetch(source: &Source, out: &Path) -> Result<BackupSummary, String> {
    let server = source.server.trim_end_matches('/');
    let client = reqwest::Client::new();
    let session: Value = answer(
        client
            .post(format!("{server}/api/v1/auth/login"))
            .json(&json!({"username": source.username, "password": source.password}))
            .send()
            .await,
    )
    .await?
    .json()
    .await
    .map_err(|e| format!("signing in: {e}"))?;
    let token = session["access_token"].as_str().unwrap_or_default();
    let mut response = answer(
        client
            .get(format!("{server}/api/v1/admin/backup"))
            .bearer_auth(token)
            .send()
            .await,
    )
    .await?;

    let partial = partial_path(out);
    let written = async {
        let mut file = BufWriter::new(File::create(&partial).map_err(|e| e.to_string())?);
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| format!("the download broke off: {e}"))?
        {
            file.write_all(&chunk).map_err(|e| e.to_string())?;
        }
        let file = file.into_inner().map_err(|e| e.to_string())?;
        file.sync_all().map_err(|e| e.to_string())?;
        let file = File::open(&partial).map_err(|e| e.to_string())?;
        store::verify(BufReader::new(file)).map_err(|e| e.to_string())
    }
    .await;
    let summary = match written {
        Ok(summary) => summary,
        Err(error) => {
            let _ = std::fs::remove_file(&partial);
            return Err(format!("{}: {error}", out.display()));
        }
    };
    std::fs::rename(&partial, out).map_err(|e| format!("{}: {e}", out.display()))?;
    // The session was only for this backup; a failed logout leaves a token that expires anyway.
    if let Some(refresh) = session["refresh_token"].as_str() {
        let _ = client
            .post(format!("{server}/api/v1/auth/logout"))
            .bearer_auth(token)
            .json(&json!({"refresh_token": refresh}))
            .send()
            .await;
    }
    Ok(summary)
}

/// Restores `file` into the (new, empty) data directory `data_dir`, its attachment files into
/// `attachments_dir` (default `<data dir>/attachments`, which must hold no files yet).
pub fn restore(
    file: &Path,
    data_dir: &Path,
    attachments_dir: Option<&Path>,
) -> Result<BackupSummary, String> {
    restore_into(
        file,
        store::RestoreTarget::Sled(data_dir),
        data_dir,
        attachments_dir,
    )
}

/// Restores `file` into an empty PostgreSQL database, its attachment files as [`restore`] does.
pub fn restore_to_postgres(
    file: &Path,
    options: &store::PgOptions,
    data_dir: &Path,
    attachments_dir: Option<&Path>,
) -> Result<BackupSummary, String> {
    restore_into(
        file,
        store::RestoreTarget::Postgres(options),
        data_dir,
        attachments_dir,
    )
}

fn restore_into(
    file: &Path,
    target: store::RestoreTarget<'_>,
    data_dir: &Path,
    attachments_dir: Option<&Path>,
) -> Result<BackupSummary, String> {
    let input = File::open(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let attachments = attachments_dir.map_or_else(|| data_dir.join("attachments"), Path::to_owned);
    store::restore(BufReader::new(input), target, &attachments).map_err(|e| e.to_string())
}

fn partial_path(out: &Path) -> PathBuf {
    let mut name = out.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

/// A response with a success status, or the server's own error message.
async fn answer(
    sent: Result<reqwest::Response, reqwest::Error>,
) -> Result<reqwest::Response, String> {
    let response = sent.map_err(|e| format!("cannot reach the server: {e}"))?;
    if response.status().is_success() {
        return Ok(response);
    }
    let status = response.status();
    let body: Value = response.json().await.unwrap_or_default();
    let message = body["error"]["message"]
        .as_str()
        .unwrap_or("no explanation");
    Err(format!("the server answered {status}: {message}"))
}
