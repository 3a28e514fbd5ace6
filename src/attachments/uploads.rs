//! Resumable uploads (tus 1.0): creating an upload for one answer's file, appending bytes that
//! are durable before they are acknowledged, finishing (checks, then the file is kept), ending
//! and expiring. The HTTP side (`http/uploads.rs`) only reads headers and writes them back.
//!
//! An upload's offset is the length of its file on disk. A PATCH writes as the bytes arrive and
//! fsyncs before it answers, also when it is cut off or runs out of time, so after a crash or
//! `kill -9` `HEAD` answers at least every acknowledged offset. Finishing is safe to repeat: a
//! crash between keeping the file and recording it leaves a full upload that the next `HEAD`
//! (or PATCH) finishes.

use std::collections::HashSet;
use std::io::{self, SeekFrom};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncSeekExt, AsyncWriteExt};
use tokio::time::Instant;
use uuid::Uuid;

use super::media::{Allowed, MAGIC_BYTES, MediaType};
use crate::audit::{self, AuditAction};
use crate::auth::{Permission, Principal};
use crate::clock::{self, Timestamp};
use crate::error::AppError;
use crate::forms::FormRegistry;
use crate::metrics::Metrics;
use crate::store::{
    AttachmentRecord, Blobs, CompleteRefused, Store, SubmissionRecord, UploadRecord,
};
use crate::submissions;

/// Default for `SURVEY_MAX_ATTACHMENT_BYTES`: a phone photo is 2–5 MB; a long voice note, 10.
pub const DEFAULT_MAX_BYTES: u64 = 20 * 1024 * 1024;
/// Default for `SURVEY_UPLOAD_EXPIRY`: a day, so a phone that lost its signal overnight resumes.
pub const DEFAULT_EXPIRY: Duration = Duration::from_secs(24 * 60 * 60);

/// What uploads may be.
#[derive(Clone, Debug)]
pub struct Policy {
    pub allowed: Allowed,
    pub max_bytes: u64,
    pub expiry: Duration,
}

/// What a client declares when it creates an upload (`Upload-Length`, `Upload-Metadata`).
#[derive(Debug, Default)]
pub struct NewUpload {
    pub length: u64,
    pub submission: Option<String>,
    pub filename: Option<String>,
    pub filetype: Option<String>,
    pub sha256: Option<String>,
}

/// A per-request checksum (`Upload-Checksum: sha256 <base64>`), already decoded.
pub struct ChunkChecksum(pub Vec<u8>);

/// Where an upload stands.
pub struct Status {
    pub upload: UploadRecord,
    pub offset: u64,
}

/// The uploads of this server: their files, their rules, and which are being written now.
pub struct Uploads {
    blobs: Arc<Blobs>,
    policy: Policy,
    metrics: Arc<Metrics>,
    /// Uploads a PATCH is writing: a second writer at once could interleave bytes.
    busy: Mutex<HashSet<Uuid>>,
}

/// Marks an upload busy until dropped.
struct Busy<'a> {
    uploads: &'a Uploads,
    id: Uuid,
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.uploads.busy_set().remove(&self.id);
    }
}

impl Uploads {
    pub fn new(blobs: Arc<Blobs>, policy: Policy, metrics: Arc<Metrics>) -> Self {
        Self {
            blobs,
            policy,
            metrics,
            busy: Mutex::default(),
        }
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    pub fn blobs(&self) -> &Arc<Blobs> {
        &self.blobs
    }

    fn busy_set(&self) -> std::sync::MutexGuard<'_, HashSet<Uuid>> {
        self.busy.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn claim(&self, id: Uuid) -> Result<Busy<'_>, AppError> {
        if self.busy_set().insert(id) {
            Ok(Busy { uploads: self, id })
        } else {
            Err(AppError::UploadLocked)
        }
    }

    /// Creates an upload for the file an answer of `new.submission` names. Only the submitter
    /// and admins may; the name, type and size must fit the answer and this server's rules.
    pub async fn create(
        &self,
        store: &Store,
        forms: &FormRegistry,
        new: NewUpload,
        by: &Principal,
    ) -> Result<UploadRecord, AppError> {
        by.require(Permission::Submit)
            .or_else(|_| by.require(Permission::UploadForOthers))?;
        if new.length == 0 {
            return Err(AppError::HeaderInvalid(
                "Upload-Length must be at least 1: an empty file is no photo, signature or recording".into(),
            ));
        }
        if new.length > self.policy.max_bytes {
            return Err(AppError::AttachmentTooLarge {
                max: self.policy.max_bytes,
            });
        }
        let missing = |key: &str| {
            AppError::HeaderInvalid(format!(
                "Upload-Metadata must carry {key} (base64), with submission, filename and filetype"
            ))
        };
        let submission = new.submission.ok_or_else(|| missing("submission"))?;
        let filename = new.filename.ok_or_else(|| missing("filename"))?;
        let filetype = new.filetype.ok_or_else(|| missing("filetype"))?;
        let sha256 = new.sha256.map(|hex| checked_sha256(&hex)).transpose()?;
        let id = Uuid::try_parse(&submission).map_err(|_| AppError::SubmissionNotFound)?;
        let record = submissions::find(store, id, by)?;
        if record.meta.submitted_by != by.username {
            by.require(Permission::UploadForOthers)?;
        }
        let expected = expected_file(forms, &record, &filename)?;
        let declared = MediaType::parse(&filetype);
        if declared != Some(expected) {
            return Err(AppError::AttachmentTypeMismatch(format!(
                "this answer takes a {expected} file, not {filetype}"
            )));
        }
        if !self.policy.allowed.contains(expected) {
            return Err(AppError::AttachmentTypeMismatch(format!(
                "this server does not accept {expected} files (SURVEY_ATTACHMENT_TYPES)"
            )));
        }
        if let Some(kept) = store.attachment(id, &filename)? {
            let other =
                kept.size != new.length || sha256.as_ref().is_some_and(|s| *s != kept.sha256);
            if other {
                return Err(AppError::AttachmentConflict);
            }
        }
        let now = clock::unix_now();
        let upload = UploadRecord {
            id: Uuid::new_v4(),
            submission: id,
            filename,
            media_type: expected.as_str().to_owned(),
            length: new.length,
            sha256,
            created_by: by.username.clone(),
            created_at: Timestamp::now(),
            expires_at: now
                .saturating_add(i64::try_from(self.policy.expiry.as_secs()).unwrap_or(i64::MAX)),
            completed: false,
        };
        let blobs = Arc::clone(&self.blobs);
        let upload_id = upload.id;
        blocking(move || blobs.create_partial(upload_id)).await?;
        store.insert_upload(&upload)?.durable().await?;
        Ok(upload)
    }

    /// Where an upload stands (`HEAD`). A full upload not yet finished (the server stopped in
    /// between) is finished now.
    pub async fn status(
        &self,
        store: &Store,
        id: Uuid,
        by: &Principal,
    ) -> Result<Status, AppError> {
        let upload = self.owned(store, id, by)?;
        if upload.completed {
            return Ok(Status {
                offset: upload.length,
                upload,
            });
        }
        self.metrics.upload_resumed();
        let offset = self.offset(id).await?;
        if offset == upload.length {
            let _busy = self.claim(id)?;
            self.finish(store, &upload, by).await?;
        }
        Ok(Status { offset, upload })
    }

    /// Appends `body` at `offset` (`PATCH`) until it ends, is cut off, or `allowed` has
    /// passed; what arrived is on disk before this returns. The new offset, or why not.
    pub async fn append<B: AsRef<[u8]>>(
        &self,
        store: &Store,
        (id, offset): (Uuid, u64),
        checksum: Option<ChunkChecksum>,
        body: impl Stream<Item = io::Result<B>>,
        allowed: Duration,
        by: &Principal,
    ) -> Result<Status, AppError> {
        let deadline = Instant::now() + allowed;
        let upload = self.owned(store, id, by)?;
        let _busy = self.claim(id)?;
        if upload.completed {
            // Nothing more to take: an empty PATCH at the end is a client making sure.
            return if offset == upload.length {
                Ok(Status { offset, upload })
            } else {
                Err(AppError::UploadOffsetMismatch {
                    expected: upload.length,
                })
            };
        }
        let current = self.offset(id).await?;
        if offset != current {
            return Err(AppError::UploadOffsetMismatch { expected: current });
        }
        let room = upload.length - current;
        let file = {
            let blobs = Arc::clone(&self.blobs);
            blocking(move || blobs.open_partial(id)).await?
        };
        let mut file = tokio::fs::File::from_std(file);
        file.seek(SeekFrom::Start(current))
            .await
            .map_err(io_error)?;
        let mut hash = checksum.as_ref().map(|_| Sha256::new());
        let mut written: u64 = 0;
        let mut ended = Ended::Whole;
        tokio::pin!(body);
        loop {
            let next = match tokio::time::timeout_at(deadline, body.next()).await {
                Err(_) => {
                    ended = Ended::Late;
                    break;
                }
                Ok(None) => break,
                Ok(Some(Err(_))) => {
                    ended = Ended::Cut;
                    break;
                }
                Ok(Some(Ok(bytes))) => bytes,
            };
            let bytes = next.as_ref();
            if written + bytes.len() as u64 > room {
                ended = Ended::TooLong;
                break;
            }
            file.write_all(bytes).await.map_err(io_error)?;
            written += bytes.len() as u64;
            if let Some(hash) = hash.as_mut() {
                hash.update(bytes);
            }
        }
        // A checksum vouches only for a whole body, and bytes past the upload's end are wrong.
        let verified = match (hash, &checksum) {
            (Some(hash), Some(ChunkChecksum(expected))) => {
                ended == Ended::Whole && hash.finalize().as_slice() == expected.as_slice()
            }
            _ => ended != Ended::TooLong,
        };
        if !verified {
            file.set_len(current).await.map_err(io_error)?;
            written = 0;
        }
        file.sync_data().await.map_err(io_error)?;
        drop(file);
        self.metrics.attachment_bytes(written);
        let now = current + written;
        match ended {
            Ended::TooLong => return Err(AppError::BodyTooLarge),
            _ if !verified => return Err(AppError::ChunkChecksumMismatch),
            Ended::Late => {
                return Err(AppError::UploadTooSlow {
                    secs: allowed.as_secs(),
                });
            }
            Ended::Cut => return Err(AppError::BodyMalformed("the body was cut off".into())),
            Ended::Whole => {}
        }
        if now < upload.length {
            return Ok(Status {
                offset: now,
                upload,
            });
        }
        self.finish(store, &upload, by).await?;
        Ok(Status {
            offset: now,
            upload: UploadRecord {
                completed: true,
                ..upload
            },
        })
    }

    /// Ends an upload (`DELETE`): its bytes are dropped; a file already kept stays kept.
    pub async fn terminate(&self, store: &Store, id: Uuid, by: &Principal) -> Result<(), AppError> {
        self.owned_even_expired(store, id, by)?;
        let _busy = self.claim(id)?;
        self.forget(store, id).await
    }

    /// Removes every expired upload; how many were unfinished.
    pub async fn sweep(&self, store: &Store) -> Result<usize, AppError> {
        let now = clock::unix_now();
        let mut unfinished = 0;
        for upload in store.uploads()? {
            if upload.expires_at > now {
                continue;
            }
            let Ok(_busy) = self.claim(upload.id) else {
                continue;
            };
            self.forget(store, upload.id).await?;
            if !upload.completed {
                unfinished += 1;
                self.metrics.upload_expired();
            }
        }
        Ok(unfinished)
    }

    /// Checks a full upload and keeps its file as the answer's attachment. A file that fails
    /// a check is dropped with its upload: the client must start a new one.
    async fn finish(
        &self,
        store: &Store,
        upload: &UploadRecord,
        by: &Principal,
    ) -> Result<(), AppError> {
        let blobs = Arc::clone(&self.blobs);
        let id = upload.id;
        let (sha256, head) = blocking(move || blobs.digest_partial(id, MAGIC_BYTES)).await?;
        let refusal = if !MediaType::parse(&upload.media_type).is_some_and(|t| t.matches(&head)) {
            Some(AppError::AttachmentTypeMismatch(format!(
                "the file's content is not {}",
                upload.media_type
            )))
        } else if upload
            .sha256
            .as_ref()
            .is_some_and(|declared| *declared != sha256)
        {
            Some(AppError::AttachmentChecksumMismatch)
        } else {
            None
        };
        if let Some(refusal) = refusal {
            self.forget(store, id).await?;
            return Err(refusal);
        }
        let blobs = Arc::clone(&self.blobs);
        let hash = sha256.clone();
        blocking(move || blobs.keep(id, &hash)).await?;
        let file = AttachmentRecord {
            sha256,
            size: upload.length,
            media_type: upload.media_type.clone(),
            uploaded_by: upload.created_by.clone(),
            uploaded_at: Timestamp::now(),
        };
        let event = audit::by(
            by,
            AuditAction::AttachmentUploaded,
            audit::submission_target(upload.submission),
        );
        match store.complete_upload(upload, &file, &event)? {
            Ok(pending) => pending.durable().await?,
            Err(CompleteRefused::UploadGone) => return Err(AppError::UploadNotFound),
            Err(CompleteRefused::OtherFile) => {
                self.forget(store, id).await?;
                return Err(AppError::AttachmentConflict);
            }
        }
        let blobs = Arc::clone(&self.blobs);
        blocking(move || blobs.remove_partial(id)).await?;
        Ok(())
    }

    /// An upload `by` may use: theirs, or any for an admin; others' are "not found".
    fn owned_even_expired(
        &self,
        store: &Store,
        id: Uuid,
        by: &Principal,
    ) -> Result<UploadRecord, AppError> {
        let upload = store.upload(id)?.ok_or(AppError::UploadNotFound)?;
        if upload.created_by != by.username && !by.role.allows(Permission::UploadForOthers) {
            return Err(AppError::UploadNotFound);
        }
        Ok(upload)
    }

    /// [`Self::owned_even_expired`], and not expired (410).
    fn owned(&self, store: &Store, id: Uuid, by: &Principal) -> Result<UploadRecord, AppError> {
        let upload = self.owned_even_expired(store, id, by)?;
        if upload.expires_at <= clock::unix_now() {
            return Err(AppError::UploadExpired);
        }
        Ok(upload)
    }

    async fn offset(&self, id: Uuid) -> Result<u64, AppError> {
        let blobs = Arc::clone(&self.blobs);
        blocking(move || blobs.offset(id)).await
    }

    /// Drops an upload's bytes and its record.
    async fn forget(&self, store: &Store, id: Uuid) -> Result<(), AppError> {
        let blobs = Arc::clone(&self.blobs);
        blocking(move || blobs.remove_partial(id)).await?;
        store.remove_upload(id)?.durable().await?;
        Ok(())
    }
}

/// How a PATCH body ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ended {
    Whole,
    /// The connection broke (the phone lost its signal).
    Cut,
    /// The upload deadline passed.
    Late,
    /// More bytes than the upload has room for.
    TooLong,
}

/// The attachment type of the answer of `record` that names `filename`.
fn expected_file(
    forms: &FormRegistry,
    record: &SubmissionRecord,
    filename: &str,
) -> Result<MediaType, AppError> {
    let version = forms.resolve(record.meta.form.as_str(), Some(&record.meta.form_version))?;
    let data = submissions::current_data(record)?;
    version
        .attachments(&data)
        .into_iter()
        .find(|file| file.name == filename)
        .map(|file| file.media_type)
        .ok_or_else(|| {
            AppError::invalid_field(
                "/Upload-Metadata/filename",
                "no answer of this submission names this file",
            )
        })
}

/// A whole-file SHA-256 as 64 hex digits, lower-cased.
fn checked_sha256(hex: &str) -> Result<String, AppError> {
    let hex = hex.trim().to_ascii_lowercase();
    if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(hex)
    } else {
        Err(AppError::HeaderInvalid(
            "Upload-Metadata sha256 must be the file's SHA-256 in 64 hex digits".into(),
        ))
    }
}

/// A failure of the disk is the server's (500, logged), never the client's.
fn io_error(error: io::Error) -> AppError {
    AppError::Internal(format!("attachments: {error}"))
}

/// Runs file work on a blocking thread; I/O failures are the server's (500).
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> Result<T, AppError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?
        .map_err(io_error)
}
