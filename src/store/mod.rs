//! The only code that touches sled: trees, key layouts, migrations and durability.
//!
//! Trees are named `<key>_<value>`; each name below states its key layout (see `keys.rs`).
//! Values are JSON records; a submission's payload is kept as the bytes exactly as received.
//! Every change goes through one write path, `Store::commit` (`write.rs`), and reaches callers
//! as a `Pending` write to await. Records here are the stored shapes; what the API shows is
//! built from them by the domain modules.

// This module is the one place sled's types are allowed; its write methods are allowed only in
// `write.rs` (and the offline migrations and restore), so every change takes the one write path.
#![allow(clippy::disallowed_types)]

mod attachments;
mod audit;
mod backup;
mod blobs;
mod compression;
mod copy;
mod durability;
mod engine;
mod forms;
pub mod keys;
mod migrate;
mod registry;
mod submissions;
mod transient;
mod users;
mod versions;
mod webhooks;
mod write;

use std::path::Path;
use std::sync::Mutex;

pub use attachments::{AttachmentRecord, CompleteRefused, UploadRecord};
pub use audit::{AuditEvent, AuditRecord, ChangeFacts};
pub use backup::{BackupSummary, RestoreError, RestoreTarget, Snapshot, restore, verify};
pub use blobs::{Blobs, hex};
pub use copy::{CopyReport, CopySource, copy_store};
pub use durability::Ticket;
pub use forms::{FormInsert, StoredFormVersion, StoredWorkbook};
pub use registry::{PublishRefused, RegistryHousehold, RegistryInfo, Staged};
pub use submissions::{
    Comment, Deletion, Listed, NewComment, SubmissionInsert, SubmissionMeta, SubmissionRecord,
};
pub use transient::DownloadLink;
pub use users::{RefreshRecord, UserRecord};
pub use versions::{EditOutcome, StoredVersion};
pub use webhooks::{Attempt, MAX_ATTEMPTS_KEPT, PendingDelivery, StoredDelivery, StoredWebhook};
pub use write::Pending;

pub use engine::PgOptions;

use durability::Durability;
use engine::{Engine, Tree};

/// Why a store operation failed. The HTTP layer shows none of this text to clients.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sled: {0}")]
    Sled(#[from] sled::Error),
    #[error("postgres: {0}")]
    Postgres(String),
    /// No database to write to now (none reachable, or only a standby): 503, try again.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("tree {tree}: undecodable record: {reason}")]
    Corrupt { tree: &'static str, reason: String },
    #[error(
        "the database was written by a newer survey-server (storage format {found}, this one knows up to {known})"
    )]
    TooNew { found: u32, known: u32 },
    #[error("flushing to disk failed")]
    Flush,
    #[error("the store is closing")]
    Closed,
    #[error("the data directory is in use by another process (is the server running?)")]
    Locked,
}

/// sled's own default, in MiB: enough to hold a county's whole database in memory.
pub const DEFAULT_CACHE_MB: u64 = 1024;

/// The open database. One per process; shared through `AppState`.
pub struct Store {
    engine: Engine,
    /// `formversion_definition`: FormId + 0xFF + Version → `StoredFormVersion` (JSON).
    form_versions: Tree,
    /// `submissionid_record`: SubmissionId (16 bytes) → `SubmissionMeta` JSON and the envelope
    /// bytes exactly as received, zstd-compressed (the formats are in `compression.rs`).
    submission_record: Tree,
    /// `formseq_submissionid`: FormId + 0xFF + Seq (u64 BE) → SubmissionId; arrival order per form.
    form_seq: Tree,
    /// `username_user`: lower-case username → `UserRecord` (JSON).
    users: Tree,
    /// `tokenhash_refresh`: SHA-256 of a refresh token (32 bytes) → `RefreshRecord` (JSON).
    refresh_tokens: Tree,
    /// `familyid_revokedat`: token family id → RFC 3339 time it was revoked.
    revoked_families: Tree,
    /// `submissionidversion_version`: SubmissionId (16 bytes) + version (u32 BE) → `StoredVersion` (JSON).
    versions: Tree,
    /// `submissionidseq_comment`: SubmissionId (16 bytes) + comment number (u64 BE) → `Comment` (JSON).
    comments: Tree,
    /// `seq_audit`: audit number (u64 BE) → `AuditRecord` (JSON).
    audit: Tree,
    /// `targetseq_none`: Target + 0xFF + audit number (u64 BE) → nothing; an entry's target index.
    audit_index: Tree,
    /// `meta`: the storage format version and the readiness heartbeat (`keys.rs`).
    meta: Tree,
    /// `uploadid_upload`: upload id (16 bytes) → `UploadRecord` (JSON); tus uploads under way.
    uploads: Tree,
    /// `submissionidname_attachment`: SubmissionId (16 bytes) + file name → `AttachmentRecord`
    /// (JSON); the bytes are in `Blobs`, by their SHA-256.
    attachments: Tree,
    /// `form_registry`: FormId → `RegistryInfo` (JSON): which register version is current.
    registries: Tree,
    /// `formversionhousehold_registryhousehold`: FormId + 0xFF + version (u64 BE) + household id →
    /// `RegistryHousehold` (JSON).
    registry_households: Tree,
    /// `formversionhouseholdline_registrymember`: the household's key + 0xFF + CSV line (u32 BE) →
    /// the person's fields (JSON).
    registry_members: Tree,
    /// `formversionhousehold_none`: households a version removed, for rosters catching up.
    registry_removed: Tree,
    transient: Tree,
    /// How submission records are compressed, and each form's dictionary.
    compression: compression::Compression,
    /// Serialises numbered writes (submissions, audit entries) so numbers commit in order: a reader
    /// paging with a cursor can then never miss an entry that commits "behind" it.
    write_order: Mutex<()>,
    /// Session states read lately (PostgreSQL): see [`Store::session_state`].
    sessions: users::SessionCache,
    /// Group commit. Fields drop in declaration order, so this goes last; its flusher holds its
    /// own handle on the database, so that final flush (and the thread's join) still works.
    durability: Durability,
}

impl Store {
    /// Opens (or creates) the database under the data directory and brings its format up to date.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        Self::open_with_cache(dir, DEFAULT_CACHE_MB * 1024 * 1024)
    }

    /// `open`, with sled's page cache limited to `cache_bytes`.
    pub fn open_with_cache(dir: &Path, cache_bytes: u64) -> Result<Self, StoreError> {
        let sled = engine::sled_engine::Sled::open(&dir.join("sled"), cache_bytes)?;
        Self::with_engine(Engine::Sled(sled))
    }

    /// Connects to PostgreSQL (`SURVEY_STORE=postgres://…`), creating or migrating its tables.
    pub fn open_postgres(options: &PgOptions) -> Result<Self, StoreError> {
        let pg = engine::pg::Pg::connect(options)?;
        Self::with_engine(Engine::Postgres(pg))
    }

    fn with_engine(engine: Engine) -> Result<Self, StoreError> {
        migrate::run(&engine)?;
        let tree = |name: &str| {
            let index = engine::TREES
                .iter()
                .position(|t| *t == name)
                .ok_or_else(|| StoreError::Corrupt {
                    tree: "meta",
                    reason: format!("no tree {name}"),
                })?;
            engine.tree(index)
        };
        Ok(Self {
            form_versions: tree("formversion_definition")?,
            submission_record: tree("submissionid_record")?,
            form_seq: tree("formseq_submissionid")?,
            users: tree("username_user")?,
            refresh_tokens: tree("tokenhash_refresh")?,
            revoked_families: tree("familyid_revokedat")?,
            comments: tree("submissionidseq_comment")?,
            versions: tree("submissionidversion_version")?,
            audit: tree("seq_audit")?,
            audit_index: tree("targetseq_none")?,
            meta: tree("meta")?,
            uploads: tree("uploadid_upload")?,
            attachments: tree(attachments::ATTACHMENTS)?,
            registries: tree("form_registry")?,
            registry_households: tree("formversionhousehold_registryhousehold")?,
            registry_members: tree("formversionhouseholdline_registrymember")?,
            registry_removed: tree("formversionhousehold_none")?,
            transient: tree(engine::TRANSIENT)?,
            compression: compression::Compression::load(tree("meta")?)?,
            write_order: Mutex::new(()),
            sessions: users::SessionCache::default(),
            durability: Durability::start(engine.syncer()?)?,
            engine,
        })
    }

    /// Whether other processes (API nodes) may use this database at the same time: with
    /// PostgreSQL. Then what they must share (the token signing key) lives in the database, and
    /// what they change (forms, imports) may change under this one. sled is one process's.
    pub fn is_shared(&self) -> bool {
        matches!(self.engine, Engine::Postgres(_))
    }

    /// The secret `name`, stored as `candidate` if it has none yet (the first node to ask
    /// wins; every other gets what it stored). Kept apart from the trees: never in a backup.
    pub fn shared_secret(&self, name: &str, candidate: &str) -> Result<String, StoreError> {
        match &self.engine {
            Engine::Postgres(pg) => pg.shared_secret(name, candidate),
            Engine::Sled(_) => Err(StoreError::Unavailable(
                "sled keeps no shared secrets; use the data directory's files".into(),
            )),
        }
    }

    /// Which engine keeps the data: `sled` or `postgres`.
    pub fn engine_name(&self) -> &'static str {
        self.engine.name()
    }

    /// Holds off other numbered writes of this process; a poisoned lock guards no data, so it is
    /// taken over. With PostgreSQL the advisory lock orders writes across every node, and this
    /// one keeps a node's writers from each holding a pooled connection while they queue for
    /// it; the wait then does not hold one of the server's worker threads.
    fn write_order(&self) -> std::sync::MutexGuard<'_, ()> {
        let lock = || self.write_order.lock().unwrap_or_else(|p| p.into_inner());
        match self.engine {
            Engine::Sled(_) => lock(),
            Engine::Postgres(_) => engine::pg::off_the_runtime(lock),
        }
    }

    /// What a backup's snapshot holds while it collects: sled's write order; PostgreSQL reads
    /// one repeatable-read transaction and stops no writer.
    fn snapshot_order(&self) -> Option<std::sync::MutexGuard<'_, ()>> {
        match self.engine {
            Engine::Sled(_) => Some(self.write_order()),
            Engine::Postgres(_) => None,
        }
    }

    /// Writes a heartbeat into `meta` through the write path and waits until it is on disk:
    /// what readiness means.
    pub async fn check_writable(&self) -> Result<(), StoreError> {
        let now = crate::clock::Timestamp::now().to_string();
        self.commit_always(&[], 0, |tx| {
            tx.meta.insert(keys::READY_PROBE, now.as_bytes())?;
            Ok(())
        })?
        .durable()
        .await
    }

    /// The group commit's batch sizes and durations, for `/metrics`.
    pub fn flush_metrics(&self) -> &crate::metrics::FlushMetrics {
        self.durability.metrics()
    }

    /// Bytes the database takes on disk.
    pub fn size_on_disk(&self) -> Result<u64, StoreError> {
        self.engine.size_on_disk()
    }

    /// Resolves once everything written before the call is on disk (at shutdown).
    pub async fn wait_durable(&self) -> Result<(), StoreError> {
        self.durability.ticket().wait().await
    }
}

fn decode<T: serde::de::DeserializeOwned>(
    tree: &'static str,
    bytes: &[u8],
) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        tree,
        reason: e.to_string(),
    })
}

fn encode<T: serde::Serialize>(tree: &'static str, value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Corrupt {
        tree,
        reason: e.to_string(),
    })
}
