//! Online backup: `GET /api/v1/admin/backup` streams a consistent snapshot of the whole database
//! with the attachment files (format in `store/backup.rs`) while submissions keep arriving. `survey-server backup` calls it.

use std::sync::Arc;

use axum::extract::State;
use axum::http::Method;
use axum::response::Response;

use super::body;
use super::extract::AuthUser;
use super::{Endpoint, endpoint};
use crate::AppState;
use crate::error::AppError;

pub fn endpoints() -> Vec<Endpoint> {
    vec![endpoint(Method::GET, "/api/v1/admin/backup", backup)]
}

/// `GET /api/v1/admin/backup`: admin only; the file `survey-server restore` takes.
#[utoipa::path(get, path = "/api/v1/admin/backup", tag = "operations",
    responses((status = 200, description = "A consistent snapshot of the database (restore with `survey-server restore`)", content_type = "application/octet-stream", body = Vec<u8>)))]
async fn backup(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
) -> Result<Response, AppError> {
    let snapshot = crate::backup::snapshot_for(Arc::clone(&state.store), &me).await?;
    let blobs = Arc::clone(state.uploads.blobs());
    let body = body::written_on_a_thread(move |out| {
        let summary = snapshot.write_to(out, Some(&blobs)).inspect_err(|error| {
            tracing::error!(%error, "writing the backup failed");
        })?;
        tracing::info!(%summary, "backup sent");
        Ok(())
    });
    let name = format!(
        "survey-server-{}.backup",
        crate::clock::Timestamp::now()
            .to_string()
            .get(..10)
            .unwrap_or("backup")
    );
    Ok(body::attachment("application/octet-stream", &name, body))
}
