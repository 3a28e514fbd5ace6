//! survey-server: the backend smartphone surveys run on.
//!
//! Field workers' phones submit filled questionnaires; each is validated against its form's
//! JSON Schema and stored durably in sled before the phone gets its receipt.
//!
//! # Layout
//! - `config`: every setting, as a flag and a `SURVEY_*` environment variable.
//! - `error`: `AppError`, the one error type, and its table of statuses and stable codes.
//! - `http`: the transport: the accept loop with its time limits, router, extractors (`AuthUser`),
//!   one module per resource. Thin handlers: parse, call the domain, map the result. It also
//!   serves `src/web/` (the field app and the console), embedded at compile time.
//! - `audit`: the audited actions and reading the log (the store writes entries with each change).
//! - `auth`: passwords, tokens, sessions, roles and permissions; users.
//! - `forms`: the form registry: schema files, publication, compiled validators.
//! - `submissions`: envelope rules, validation into `ValidSubmission`, idempotent storing.
//! - `changes`: the changes of a form's submissions in commit order (the audit log read as a
//!   feed), which the changes feed lists and webhooks deliver.
//! - `webhooks`: registrations, and the sender that pushes each change to other systems.
//! - `export`: cleaned datasets: layout from schemas, cleaning, dedup, CSV/NDJSON/zip writers.
//! - `simulate`: the county's field team, generated and played against a running server.
//! - `store`: the only code that touches sled: trees, key encoding, migrations, group commit,
//!   and the one write path (`Store::commit`) every change takes.
//! - `downloads`: one-time links that let a browser save an export without a token in the URL.
//! - `backup`: what `GET /api/v1/admin/backup` sends (`snapshot_for`); `survey-server backup`
//!   (from a running server) and `restore` (into a new data dir).
//! - `cli`: commands for a stopped server (`survey-server user ...`).
//! - `metrics`: the Prometheus series behind `/metrics`.
//! - `clock`: server time as written into records (`Timestamp`).
//! - `limits`: how long every stored text may be.
//! - `strict_json`: request bodies with a repeated key are refused.
//! - `text`: the Unicode normalisation validation and cleaning share.

pub mod attachments;
pub mod audit;
pub mod auth;
pub mod backup;
pub mod changes;
pub mod cli;
pub mod clock;
pub mod config;
pub mod downloads;
pub mod error;
pub mod export;
pub mod forms;
mod http;
pub mod limits;
pub mod metrics;
pub mod registry;
pub mod simulate;
pub mod store;
pub mod strict_json;
pub mod submissions;
pub mod text;
pub mod webhooks;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use ipnet::IpNet;
use tokio::net::TcpListener;

use auth::Auth;
use auth::tokens::TokenKeys;
use config::ServeConfig;
use forms::FormRegistry;
use metrics::Metrics;
use store::Store;

pub use http::route_table;

/// Everything a request handler may use; cloned per request (all fields are cheap to clone).
#[derive(Clone)]
pub struct AppState {
    /// Sign-in, tokens and the login brakes.
    pub auth: Arc<Auth>,
    /// The database; the only way to sled.
    pub store: Arc<Store>,
    /// Every published form version, compiled.
    pub forms: Arc<FormRegistry>,
    /// Request size limits from the configuration.
    pub limits: Limits,
    /// Counters and histograms for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Whether the API listener answers `/metrics` (not when it has a listener of its own).
    pub metrics_on_api: bool,
    /// Reverse proxies (addresses and ranges) whose `X-Forwarded-For` names the real client.
    pub trusted_proxies: Arc<[IpNet]>,
    /// The county's time zone: where its days begin, for counts by day.
    pub timezone: jiff::tz::TimeZone,
    /// Resumable uploads and the attachment files on disk.
    pub uploads: Arc<attachments::uploads::Uploads>,
    /// How webhooks are sent.
    pub webhooks: Arc<webhooks::Settings>,
}

/// How much a client may send at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest body for one submission or form.
    pub max_body_bytes: usize,
    /// Most submissions in one batch.
    pub max_batch: usize,
    /// Largest body of a batch request.
    pub max_batch_bytes: usize,
    /// Largest register (CSV) an admin may import.
    pub max_registry_bytes: u64,
    /// Longest a request body may take to arrive; cuts off slow-trickle uploads.
    pub upload_deadline: Duration,
    /// Longest a request head may take to arrive once it has begun.
    pub header_timeout: Duration,
    /// Longest a connection may stay open with no request in progress.
    pub idle_timeout: Duration,
}

impl Default for Limits {
    /// The shipped defaults: a questionnaire is a few KiB, a phone's queue a few hundred.
    fn default() -> Self {
        Self {
            max_body_bytes: 1024 * 1024,
            max_batch: 500,
            max_batch_bytes: 32 * 1024 * 1024,
            // Half a million people at about 200 bytes a row, and room to spare.
            max_registry_bytes: 256 * 1024 * 1024,
            // 1 MiB at 2G speeds (~100 kbit/s) takes about 90 s.
            upload_deadline: Duration::from_secs(120),
            // A request head is a few hundred bytes: seconds even on 2G.
            header_timeout: Duration::from_secs(15),
            idle_timeout: Duration::from_secs(30),
        }
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("opening the database in {dir}: {source}")]
    Store {
        dir: String,
        source: store::StoreError,
    },
    #[error("{0}")]
    Settings(String),
    #[error("loading forms: {0}")]
    Forms(#[from] forms::LoadError),
    #[error("creating the first admin: {0}")]
    Admin(#[from] auth::users::BootstrapError),
    #[error("token signing key: {0}")]
    Key(#[from] auth::tokens::KeyError),
    #[error("the attachments directory {dir}: {source}")]
    Attachments { dir: String, source: std::io::Error },
}

/// The name of the token signing key among the database's secrets.
const TOKEN_KEY_SECRET: &str = "jwt-ed25519";

/// Opens the store the settings name: sled under the data directory, or PostgreSQL.
pub fn open_store(config: &ServeConfig) -> Result<Store, StartError> {
    match config.database.choice().map_err(StartError::Settings)? {
        config::StoreChoice::Sled => Store::open_with_cache(
            &config.data_dir,
            config.cache_mb.saturating_mul(1024 * 1024),
        )
        .map_err(|source| StartError::Store {
            dir: config.data_dir.display().to_string(),
            source,
        }),
        config::StoreChoice::Postgres(url) => {
            Store::open_postgres(&config.database.pg_options(url)).map_err(|source| {
                StartError::Store {
                    dir: "PostgreSQL".into(),
                    source,
                }
            })
        }
    }
}

impl AppState {
    /// Opens the store in the data directory, prepares sign-in and loads the forms.
    pub async fn open(config: &ServeConfig) -> Result<Self, StartError> {
        let store_error = |source| StartError::Store {
            dir: config.data_dir.display().to_string(),
            source,
        };
        let store = open_store(config)?;
        tracing::info!(engine = store.engine_name(), "store open");
        auth::users::bootstrap_admin(&store, &config.data_dir, config.admin_password.as_deref())
            .await?;
        // Expired refresh tokens can never be used again; dropping them keeps the tree small.
        let swept = store
            .sweep_expired_refresh(clock::unix_now())
            .map_err(store_error)?
            .durable()
            .await
            .map_err(store_error)?;
        if swept > 0 {
            tracing::info!(swept, "removed expired refresh tokens");
        }
        // An import cut short by a crash leaves a version nobody reads.
        let swept = store.sweep_registry_leftovers().map_err(store_error)?;
        if swept > 0 {
            tracing::info!(swept, "removed registers left unfinished by a crash");
        }
        // With PostgreSQL, every node signs with the key the first one put in the database
        // (unless every node is given the same file).
        let keys = match (&config.jwt_key_file, store.is_shared()) {
            (Some(path), _) => TokenKeys::load_or_create(path, false)?,
            (None, true) => {
                let pem = store
                    .shared_secret(TOKEN_KEY_SECRET, &TokenKeys::new_pem()?)
                    .map_err(store_error)?;
                TokenKeys::from_shared_pem(&pem)?
            }
            (None, false) => {
                TokenKeys::load_or_create(&config.data_dir.join(auth::tokens::KEY_FILE), true)?
            }
        };
        let lifetimes = auth::Lifetimes {
            access_secs: config.access_ttl,
            refresh_secs: config.refresh_ttl,
            refresh_grace_secs: config.refresh_grace,
        };
        let forms = FormRegistry::load(&store, &config.schemas_dir).await?;
        let metrics = Arc::new(Metrics::new(store.flush_metrics()));
        let attachments_dir = config
            .attachments_dir
            .clone()
            .unwrap_or_else(|| config.data_dir.join("attachments"));
        let blobs =
            store::Blobs::open(&attachments_dir).map_err(|source| StartError::Attachments {
                dir: attachments_dir.display().to_string(),
                source,
            })?;
        let policy = attachments::uploads::Policy {
            allowed: config.attachment_types.clone(),
            max_bytes: config.max_attachment_bytes,
            expiry: Duration::from_secs(config.upload_expiry),
        };
        let uploads =
            attachments::uploads::Uploads::new(Arc::new(blobs), policy, Arc::clone(&metrics));
        let extra_roots = match &config.webhook_ca_file {
            None => Vec::new(),
            Some(path) => std::fs::read(path)
                .map_err(|e| e.to_string())
                .and_then(|pem| {
                    reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| e.to_string())
                })
                .map_err(|e| {
                    StartError::Settings(format!("SURVEY_WEBHOOK_CA_FILE {}: {e}", path.display()))
                })?,
        };
        let webhooks = webhooks::Settings {
            allow_private: config.webhook_allow_private,
            extra_roots,
            node: uuid::Uuid::new_v4(),
            retry_base: Duration::from_millis(config.webhook_retry_ms),
        };
        Ok(Self {
            auth: Arc::new(Auth::new(keys, lifetimes)),
            store: Arc::new(store),
            forms: Arc::new(forms),
            limits: Limits {
                max_body_bytes: config.max_body_bytes,
                max_batch: config.max_batch,
                max_batch_bytes: config.max_batch_bytes,
                max_registry_bytes: config.max_registry_bytes,
                upload_deadline: Duration::from_secs(config.upload_deadline),
                header_timeout: Duration::from_secs(config.header_timeout),
                idle_timeout: Duration::from_secs(config.idle_timeout),
            },
            metrics,
            metrics_on_api: config.metrics_bind.is_none(),
            trusted_proxies: config.trusted_proxies.0.clone().into(),
            timezone: config.timezone.0.clone(),
            uploads: Arc::new(uploads),
            webhooks: Arc::new(webhooks),
        })
    }
}

/// The whole HTTP application; tests serve exactly what production serves.
pub fn app(state: AppState) -> Router {
    http::router(state)
}

/// `/metrics` alone, for a listener of its own (`SURVEY_METRICS_BIND`).
pub fn metrics_app(state: AppState) -> Router {
    http::metrics_router(state)
}

/// Serves `state` on `listener` until `shutdown` resolves, then lets in-flight requests finish
/// and makes sure everything written is on disk. Connections that send nothing, or only half
/// a request head, are closed after the configured idle and header timeouts.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let store = state.store.clone();
    let timeouts = http::Timeouts {
        header: state.limits.header_timeout,
        idle: state.limits.idle_timeout,
        stalled: state.limits.upload_deadline,
    };
    let sweeper = tokio::spawn(sweep(state.clone()));
    let sender = tokio::spawn(webhooks::send::run(
        Arc::clone(&state.store),
        (*state.webhooks).clone(),
        Arc::clone(&state.metrics),
    ));
    // Only other nodes publish behind this one's back.
    let forms = state
        .store
        .is_shared()
        .then(|| tokio::spawn(follow_forms(state.clone())));
    http::listen(listener, app(state), timeouts, shutdown).await;
    sweeper.abort();
    sender.abort();
    if let Some(forms) = forms {
        forms.abort();
    }
    store.wait_durable().await.map_err(std::io::Error::other)
}

/// How often expired uploads, old login failures and expired download links are removed.
const SWEEP_EVERY: Duration = Duration::from_secs(10 * 60);

/// Removes what has expired now and then, for as long as the server runs.
async fn sweep(state: AppState) {
    let mut every = tokio::time::interval(SWEEP_EVERY);
    loop {
        every.tick().await;
        match state.uploads.sweep(&state.store).await {
            Ok(0) => {}
            Ok(expired) => tracing::info!(expired, "removed expired unfinished uploads"),
            Err(error) => tracing::warn!(%error, "removing expired uploads failed"),
        }
        let swept = state
            .store
            .sweep_transient(clock::unix_now_ms(), auth::throttle::NAME_WINDOW_MS);
        if let Err(error) = async { swept?.durable().await }.await {
            tracing::warn!(%error, "removing old login failures and download links failed");
        }
    }
}

/// How often a node looks for form versions other nodes published (several nodes on one
/// database): a form published anywhere is served everywhere within this.
const FOLLOW_FORMS_EVERY: Duration = Duration::from_millis(500);

/// Loads form versions other nodes publish, for as long as the server runs.
async fn follow_forms(state: AppState) {
    let mut every = tokio::time::interval(FOLLOW_FORMS_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let (store, forms) = (state.store.clone(), state.forms.clone());
        match tokio::task::spawn_blocking(move || forms.refresh(&store)).await {
            Ok(Ok(0)) => {}
            Ok(Ok(added)) => tracing::info!(added, "loaded form versions published elsewhere"),
            Ok(Err(error)) => tracing::warn!(%error, "looking for newly published forms failed"),
            Err(error) => tracing::warn!(%error, "looking for newly published forms failed"),
        }
    }
}

/// Serves `router` (the metrics listener) with the same connection handling as the API.
pub async fn serve_router(listener: TcpListener, router: Router, limits: Limits) {
    let timeouts = http::Timeouts {
        header: limits.header_timeout,
        idle: limits.idle_timeout,
        stalled: limits.upload_deadline,
    };
    http::listen(listener, router, timeouts, std::future::pending()).await;
}
