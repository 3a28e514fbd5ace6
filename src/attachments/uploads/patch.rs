//! Appending bytes (`PATCH`) and finishing a full upload: the checks, then the file kept.

use std::io::{self, SeekFrom};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncSeekExt, AsyncWriteExt};
use tokio::time::Instant;
use uuid::Uuid;

use super::{ChunkChecksum, Status, Uploads, Work, blocking, io_error};
use crate::attachments::media::{MAGIC_BYTES, MediaType};
use crate::audit::{self, AuditAction};
use crate::auth::Principal;
use crate::clock::Timestamp;
use crate::error::AppError;
use crate::store::{AttachmentRecord, CompleteRefused, Store, UploadRecord};

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

impl Uploads {
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
        self.owned(store, id, by)?;
        let _busy = self.claim(Work::Upload(id))?;
        // Read again now that it is ours: a DELETE may have ended it meanwhile.
        let upload = self.owned(store, id, by)?;
        tokio::pin!(body);
        if upload.completed {
            if offset != upload.length {
                return Err(AppError::UploadOffsetMismatch {
                    expected: upload.length,
                });
            }
            // An empty PATCH at the end is a client making sure; bytes beyond it are wrong.
            return match body.next().await {
                Some(Ok(bytes)) if !bytes.as_ref().is_empty() => Err(AppError::BodyTooLarge),
                _ => Ok(Status { offset, upload }),
            };
        }
        let current = self.offset(id).await?;
        if offset != current {
            return Err(AppError::UploadOffsetMismatch { expected: current });
        }
        let room = upload.length - current;
        let file = {
            let blobs = Arc::clone(&self.blobs);
            tokio::task::spawn_blocking(move || blobs.open_partial(id))
                .await
                .map_err(|e| AppError::Internal(e.to_string()))?
                .map_err(|e| match e.kind() {
                    io::ErrorKind::NotFound => AppError::UploadNotFound,
                    _ => io_error(e),
                })?
        };
        let mut file = tokio::fs::File::from_std(file);
        file.seek(SeekFrom::Start(current))
            .await
            .map_err(io_error)?;
        let mut hash = checksum.as_ref().map(|_| Sha256::new());
        let mut written: u64 = 0;
        let mut ended = Ended::Whole;
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

    /// Checks a full upload and keeps its file as the answer's attachment. A file that fails
    /// a check, or that another upload beat to the answer with other bytes, is dropped with its
    /// upload: the client must start a new one.
    pub(super) async fn finish(
        &self,
        store: &Store,
        upload: &UploadRecord,
        by: &Principal,
    ) -> Result<(), AppError> {
        let _answer = self.claim(Work::Answer(upload.submission, upload.filename.clone()))?;
        let blobs = Arc::clone(&self.blobs);
        let id = upload.id;
        let (sha256, head) = blocking(move || blobs.digest_partial(id, MAGIC_BYTES)).await?;
        let kept = store.attachment(upload.submission, &upload.filename)?;
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
        } else if kept.as_ref().is_some_and(|k| k.sha256 != sha256) {
            Some(AppError::AttachmentConflict)
        } else {
            None
        };
        if let Some(refusal) = refusal {
            self.forget(store, id).await?;
            return Err(refusal);
        }
        // Checked above, under the answer's claim: no other file can be kept for it meanwhile,
        // so no file is linked here that its record then refuses (the same bytes again link to
        // what is there).
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
}
