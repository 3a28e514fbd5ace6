//! survey-server: the backend smartphone surveys run on.
//!
//! Field workers' phones submit filled questionnaires; each is validated against its form's
//! JSON Schema and stored durably in sled before the phone gets its receipt.
//!
//! # Layout
//! - `config`: every setting, as a flag and a `SURVEY_*` environment variable.
//! - `error`: `AppError`, the one error type, and its table of statuses and stable codes.
//! - `http`: the transport: router, extractors, one module per resource. Thin handlers.
//! - `forms`: the form registry: schema files, publication, compiled validators.
//! - `submissions`: envelope rules, validation into `ValidSubmission`, idempotent storing.
//! - `store`: the only code that touches sled: trees, key encoding, migrations, group commit.
//! - `clock`: server time as written into records.

pub mod clock;
pub mod config;
pub mod error;
pub mod forms;
mod http;
pub mod store;
pub mod submissions;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;

use config::ServeConfig;
use forms::FormRegistry;
use store::Store;

/// Everything a request handler may use; cloned per request (all fields are cheap to clone).
#[derive(Clone)]
pub struct AppState {
    /// The database; the only way to sled.
    pub store: Arc<Store>,
    /// Every published form version, compiled.
    pub forms: Arc<FormRegistry>,
    /// Request size limits from the configuration.
    pub limits: Limits,
}

/// How much a client may send at once.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest body for one submission or form.
    pub max_body_bytes: usize,
    /// Most submissions in one batch.
    pub max_batch: usize,
    /// Largest body of a batch request.
    pub max_batch_bytes: usize,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("opening the database in {dir}: {source}")]
    Store {
        dir: String,
        source: store::StoreError,
    },
    #[error("loading forms: {0}")]
    Forms(#[from] forms::LoadError),
}

impl AppState {
    /// Opens the store in the data directory and loads the forms.
    pub async fn open(config: &ServeConfig) -> Result<Self, StartError> {
        let store = Store::open(&config.data_dir).map_err(|source| StartError::Store {
            dir: config.data_dir.display().to_string(),
            source,
        })?;
        let forms = FormRegistry::load(&store, &config.schemas_dir).await?;
        Ok(Self {
            store: Arc::new(store),
            forms: Arc::new(forms),
            limits: Limits {
                max_body_bytes: config.max_body_bytes,
                max_batch: config.max_batch,
                max_batch_bytes: config.max_batch_bytes,
            },
        })
    }
}

/// The whole HTTP application; tests serve exactly what production serves.
pub fn app(state: AppState) -> Router {
    http::router(state)
}

/// Serves `state` on `listener` until `shutdown` resolves, then lets in-flight requests finish
/// and makes sure everything written is on disk.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let store = state.store.clone();
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await?;
    store.wait_durable().await.map_err(std::io::Error::other)
}
