//! Online backup: `GET /api/v1/admin/backup` streams a consistent snapshot of the whole database
//! (format in `store/backup.rs`) while submissions keep arriving. `survey-server backup` calls it.

use std::sync::Arc;

use axum::extract::State;
use axum::http::Method;
use axum::response::Response;

use super::body;
use super::extract::AuthUser;
use super::{Endpoint, endpoint};
use crate::AppState;
use crate::audit;
use crate::auth::Permission;
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
    me.require(Permission::Backup)?;
    // Recorded first, so the backup holds the record of its own taking.
    let event = audit::by(&me, audit::BACKUP_DOWNLOADED, "backup".to_owned());
    state.store.record_audit(&event)?;
    let store = Arc::clone(&state.store);
    let span = tracing::Span::current();
    let snapshot = tokio::task::spawn_blocking(move || span.in_scope(|| store.snapshot()))
        .await
        .map_err(|e| AppError::Internal(e.to_string()))??;
    let body = body::written_on_a_thread(move |out| {
        let summary = snapshot.write_to(out).inspect_err(|error| {
            tracing::error!(%error, "writing the backup failed");
        })?;
        tracing::info!(%summary, "backup sent");
        Ok(())
    });
    let name = format!(
        "survey-server-{}.backup",
        crate::clock::now_rfc3339().get(..10).unwrap_or("backup")
    );
    Ok(body::attachment("application/octet-stream", &name, body))
}
