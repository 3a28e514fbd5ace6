//! Resumable uploads (tus 1.0): creating an upload for one answer's file, appending bytes that
//! are durable before they are acknowledged, finishing (checks, then the file is kept), ending
//! and expiring. The HTTP side (`http/uploads.rs`) only reads headers and writes them back.
//!
//! An upload's offset is the length of its file on disk. A PATCH writes as the bytes arrive and
//! fsyncs before it answers, also when it is cut off or runs out of time, so after a crash or
//! `kill -9` `HEAD` answers at least every acknowledged offset. Finishing is safe to repeat: a
//! crash between keeping the file and recording it leaves a full upload that the next `HEAD`
//! (or PATCH) finishes.

mod patch;

use std::collections::HashSet;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use uuid::Uuid;

use super::media::{Allowed, MediaType};
use crate::auth::{Permission, Principal};
use crate::clock::{self, Timestamp};
use crate::error::AppError;
use crate::forms::FormRegistry;
use crate::metrics::Metrics;
use crate::store::{Blobs, Store, SubmissionRecord, UploadRecord};
use crate::submissions;

/// Default for `SURVEY_MAX_ATTACHMENT_BYTES`: a phone photo is 2–5 MB; a long voice note, 10.
pub const DEFAULT_MAX_BYTES: u64 = 20 * 1024 * 1024;
/// Unfinished uploads one person may have at once: a phone uploads one file at a time.
pub const MAX_OPEN: usize = 20;
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
    /// What is being worked on now: an upload a PATCH writes (a second writer at once could
    /// interleave bytes), an answer whose file is being kept (two uploads for one answer finish
    /// one after the other, so the second sees the first's file).
    busy: Mutex<HashSet<Work>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Work {
    Upload(Uuid),
    Answer(Uuid, String),
}

/// Marks work busy until dropped.
struct Busy<'a> {
    uploads: &'a Uploads,
    work: Work,
    /// An upload's file, locked against writers on other nodes sharing the directory.
    _locked: Option<std::fs::File>,
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.uploads.busy_set().remove(&self.work);
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

    fn busy_set(&self) -> std::sync::MutexGuard<'_, HashSet<Work>> {
        self.busy.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn claim(&self, work: Work) -> Result<Busy<'_>, AppError> {
        if !self.busy_set().insert(work.clone()) {
            return Err(AppError::UploadLocked);
        }
        let locked = match &work {
            Work::Upload(id) => self.blobs.lock_partial(*id),
            Work::Answer(..) => Ok(None),
        };
        match locked {
            Ok(locked) => Ok(Busy {
                uploads: self,
                work,
                _locked: locked,
            }),
            Err(error) => {
                self.busy_set().remove(&work);
                Err(match error.kind() {
                    io::ErrorKind::WouldBlock => AppError::UploadLocked,
                    _ => io_error(error),
                })
            }
        }
    }

    /// Creates an upload for the file an answer of `new.submission` names. Only the submitter
    /// and admins may; the name, type and size must fit the answer and this server's rules.
    pub async fn create(
        &self,
        store: &Arc<Store>,
        forms: &FormRegistry,
        new: NewUpload,
        by: &Principal,
    ) -> Result<UploadRecord, AppError> {
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
        may_upload_to(&record, by)?;
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
        self.make_room(store, id, &filename, by).await?;
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

    /// Before a new upload by `by` for answer `filename`: their unfinished uploads for the same
    /// answer are ended (a phone that lost the answer to its creation makes another), and they
    /// may have at most [`MAX_OPEN`] others, so nobody can fill the disk with half-made files.
    async fn make_room(
        &self,
        store: &Arc<Store>,
        submission: Uuid,
        filename: &str,
        by: &Principal,
    ) -> Result<(), AppError> {
        let all = {
            let store = Arc::clone(store);
            tokio::task::spawn_blocking(move || store.uploads())
                .await
                .map_err(|e| AppError::Internal(e.to_string()))??
        };
        let mine = all
            .into_iter()
            .filter(|u| u.created_by == by.username && !u.completed);
        let mut open = 0;
        for upload in mine {
            let same_answer = upload.submission == submission && upload.filename == filename;
            let claimed = same_answer
                .then(|| self.claim(Work::Upload(upload.id)).ok())
                .flatten();
            match claimed {
                Some(_busy) => self.forget(store, upload.id).await?,
                None => open += 1,
            }
        }
        if open >= MAX_OPEN {
            return Err(AppError::TooManyUploads { max: MAX_OPEN });
        }
        Ok(())
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
        // Full but not finished: the server stopped in between. Unless a PATCH is finishing it
        // right now, which will answer for itself.
        if offset == upload.length
            && let Ok(_busy) = self.claim(Work::Upload(id))
        {
            self.finish(store, &upload, by).await?;
        }
        Ok(Status { offset, upload })
    }

    /// Ends an upload (`DELETE`): its bytes are dropped; a file already kept stays kept.
    pub async fn terminate(&self, store: &Store, id: Uuid, by: &Principal) -> Result<(), AppError> {
        self.owned_even_expired(store, id, by)?;
        let _busy = self.claim(Work::Upload(id))?;
        self.forget(store, id).await
    }

    /// Removes every expired upload; how many were unfinished.
    pub async fn sweep(&self, store: &Arc<Store>) -> Result<usize, AppError> {
        let now = clock::unix_now();
        let mut unfinished = 0;
        let all = {
            let store = Arc::clone(store);
            tokio::task::spawn_blocking(move || store.uploads())
                .await
                .map_err(|e| AppError::Internal(e.to_string()))??
        };
        for upload in all {
            if upload.expires_at > now {
                continue;
            }
            let Ok(_busy) = self.claim(Work::Upload(upload.id)) else {
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

    /// [`Self::owned_even_expired`], not expired (410), and still one `by` may add to: the
    /// submission may have been deleted, or their role changed, since the upload began.
    fn owned(&self, store: &Store, id: Uuid, by: &Principal) -> Result<UploadRecord, AppError> {
        let upload = self.owned_even_expired(store, id, by)?;
        if upload.expires_at <= clock::unix_now() {
            return Err(AppError::UploadExpired);
        }
        let record = submissions::find(store, upload.submission, by).map_err(|e| match e {
            AppError::SubmissionNotFound => AppError::UploadNotFound,
            other => other,
        })?;
        may_upload_to(&record, by)?;
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

/// Whether `by` may add files to `record`: their own (if they may submit), or anyone's for admins.
fn may_upload_to(record: &SubmissionRecord, by: &Principal) -> Result<(), AppError> {
    if record.meta.submitted_by == by.username && by.role.allows(Permission::Submit) {
        return Ok(());
    }
    by.require(Permission::UploadForOthers)
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
