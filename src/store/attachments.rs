//! Uploads under way and the files submissions carry: the bookkeeping in sled (the bytes are
//! on disk, in `blobs.rs`).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::write::{Abort, broken, refuse};
use super::{AuditEvent, Pending, Store, StoreError, decode, encode, keys};
use crate::clock::Timestamp;

const UPLOADS: &str = "uploadid_upload";
pub(super) const ATTACHMENTS: &str = "submissionidname_attachment";

/// A tus upload: what is being uploaded, for which answer, by whom, until when. Its offset is
/// the length of its file on disk (`Blobs::partial`), made durable before it is acknowledged.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct UploadRecord {
    pub id: Uuid,
    pub submission: Uuid,
    pub filename: String,
    pub media_type: String,
    /// `Upload-Length`: the whole file's size in bytes.
    pub length: u64,
    /// The whole file's SHA-256 (hex, lower case), when the client declared it.
    pub sha256: Option<String>,
    pub created_by: String,
    pub created_at: Timestamp,
    /// Unix seconds after which the upload is gone (410 until it is swept, then 404).
    pub expires_at: i64,
    /// Set once the file is kept: the upload then answers its full length until it expires.
    #[serde(default)]
    pub completed: bool,
}

/// A file a submission carries, by the name its answers give.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct AttachmentRecord {
    /// Hex SHA-256 of the bytes: also where they are (`Blobs::object`).
    pub sha256: String,
    pub size: u64,
    pub media_type: String,
    pub uploaded_by: String,
    pub uploaded_at: Timestamp,
}

/// Why an upload could not be completed.
#[derive(Debug, PartialEq, Eq)]
pub enum CompleteRefused {
    /// The answer's name already has other bytes.
    OtherFile,
    /// The upload is gone (terminated or swept) meanwhile.
    UploadGone,
}

impl Store {
    /// Records a new upload.
    pub fn insert_upload(&self, upload: &UploadRecord) -> Result<Pending<()>, StoreError> {
        let value = encode(UPLOADS, upload)?;
        self.commit_always(&[], 0, |tx| {
            tx.uploads
                .insert(keys::upload(upload.id), value.as_slice())?;
            Ok(())
        })
    }

    pub fn upload(&self, id: Uuid) -> Result<Option<UploadRecord>, StoreError> {
        self.uploads
            .get(keys::upload(id))?
            .map(|bytes| decode(UPLOADS, &bytes))
            .transpose()
    }

    /// Every upload, for the expiry sweep (uploads live a day: the tree stays small).
    pub fn uploads(&self) -> Result<Vec<UploadRecord>, StoreError> {
        self.uploads
            .iter()
            .map(|entry| decode(UPLOADS, &entry?.1))
            .collect()
    }

    /// Forgets an upload (terminated or expired).
    pub fn remove_upload(&self, id: Uuid) -> Result<Pending<()>, StoreError> {
        self.commit_always(&[], 0, |tx| {
            tx.uploads.remove(keys::upload(id))?;
            Ok(())
        })
    }

    /// Keeps a finished upload's file as the submission's attachment `upload.filename` and marks
    /// the upload completed, with `audit`, in one write. Identical bytes uploaded again change
    /// nothing but the upload; other bytes under a name already filled are refused.
    pub fn complete_upload(
        &self,
        upload: &UploadRecord,
        file: &AttachmentRecord,
        audit: &AuditEvent,
    ) -> Result<Result<Pending<()>, CompleteRefused>, StoreError> {
        let key = keys::attachment(upload.submission, &upload.filename);
        let record = encode(ATTACHMENTS, file)?;
        let done = encode(
            UPLOADS,
            &UploadRecord {
                completed: true,
                ..upload.clone()
            },
        )?;
        self.commit(std::slice::from_ref(audit), 0, |tx| {
            let upload_key = keys::upload(upload.id);
            if tx.uploads.get(upload_key)?.is_none() {
                return refuse(CompleteRefused::UploadGone);
            }
            match tx.attachments.get(&key)? {
                Some(bytes) => {
                    let kept: AttachmentRecord = decode_in(&bytes)?;
                    if kept.sha256 != file.sha256 {
                        return refuse(CompleteRefused::OtherFile);
                    }
                }
                None => {
                    tx.attachments.insert(key.as_slice(), record.as_slice())?;
                }
            }
            tx.uploads.insert(upload_key, done.as_slice())?;
            Ok(())
        })
    }

    /// The file kept under `name` for a submission.
    pub fn attachment(
        &self,
        submission: Uuid,
        name: &str,
    ) -> Result<Option<AttachmentRecord>, StoreError> {
        self.attachments
            .get(keys::attachment(submission, name))?
            .map(|bytes| decode(ATTACHMENTS, &bytes))
            .transpose()
    }

    /// Every file kept for a submission, by name.
    pub fn attachments_of(
        &self,
        submission: Uuid,
    ) -> Result<Vec<(String, AttachmentRecord)>, StoreError> {
        let prefix = keys::submission(submission);
        self.attachments
            .scan_prefix(prefix)
            .map(|entry| {
                let (key, value) = entry?;
                let name = String::from_utf8_lossy(&key[prefix.len()..]).into_owned();
                Ok((name, decode(ATTACHMENTS, &value)?))
            })
            .collect()
    }
}

fn decode_in<R>(bytes: &[u8]) -> Result<AttachmentRecord, Abort<R>> {
    decode(ATTACHMENTS, bytes).map_err(broken)
}
