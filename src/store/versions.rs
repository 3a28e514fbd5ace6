//! Corrections: each is a new version of a submission's answers; the payload as received (version
//! 1) and every earlier version stay readable.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::submissions::RECORD;
use super::write::{broken, refuse};
use super::{
    AuditEvent, ChangeFacts, Pending, Store, StoreError, SubmissionRecord, decode, encode, keys,
};
use crate::clock::Timestamp;
use crate::submissions::ReviewStatus;

const TREE: &str = "submissionidversion_version";

/// One correction, as stored.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StoredVersion {
    pub version: u32,
    pub edited_by: String,
    pub edited_at: Timestamp,
    /// The corrected answers.
    pub data: Value,
}

/// Why a correction's transaction stopped without writing.
enum Refused {
    NotFound,
    Stale,
}

/// What an attempted correction found.
pub enum EditOutcome {
    Saved(Pending<Box<SubmissionRecord>>),
    /// Someone saved another version first.
    Stale,
    NotFound,
}

impl Store {
    /// Saves `data` as the next version if the current one is still `based_on`; also updates the
    /// scope in the arrival index (a correction may move a household) and writes the audit entry.
    pub fn save_version(
        &self,
        id: Uuid,
        based_on: u32,
        data: &Value,
        scope: Option<&str>,
        edited_by: &str,
        audit: &AuditEvent,
    ) -> Result<EditOutcome, StoreError> {
        let key = keys::submission(id);
        let edited_at = Timestamp::now();
        let current = serde_json::to_vec(data).map_err(|e| StoreError::Corrupt {
            tree: TREE,
            reason: e.to_string(),
        })?;
        let outcome = self.commit(std::slice::from_ref(audit), 0, |tx| {
            let Some(bytes) = tx.submission_record.get(key)? else {
                return refuse(Refused::NotFound);
            };
            let mut record = self.decode_record_in(tx, id, &bytes)?;
            if record.meta.version != based_on {
                return refuse(Refused::Stale);
            }
            let before = record.meta.scope.take();
            record.meta.version += 1;
            record.meta.review_status = ReviewStatus::Edited;
            record.meta.scope = scope.map(str::to_owned);
            tx.stamp_change(ChangeFacts::of(&record.meta, before.as_deref()));
            let stored = StoredVersion {
                version: record.meta.version,
                edited_by: edited_by.to_owned(),
                edited_at,
                data: data.clone(),
            };
            let encoded = encode(TREE, &stored).map_err(broken)?;
            let meta = encode(RECORD, &record.meta).map_err(broken)?;
            tx.versions
                .insert(keys::submission_version(id, record.meta.version), encoded)?;
            let changed = self.compression.with_meta(&bytes, &meta, tx.meta)?;
            tx.submission_record.insert(&key[..], changed)?;
            let index_value =
                keys::form_seq_value(id, &record.meta.submitted_by, record.meta.scope.as_deref());
            tx.form_seq.insert(
                keys::form_seq(record.meta.form.as_str(), record.meta.seq),
                index_value,
            )?;
            record.current = Some(current.clone());
            Ok(Box::new(record))
        })?;
        Ok(match outcome {
            Ok(pending) => EditOutcome::Saved(pending),
            Err(Refused::NotFound) => EditOutcome::NotFound,
            Err(Refused::Stale) => EditOutcome::Stale,
        })
    }

    /// A saved correction (versions 2 and up).
    pub fn version(&self, id: Uuid, version: u32) -> Result<Option<StoredVersion>, StoreError> {
        self.versions
            .get(keys::submission_version(id, version))?
            .map(|bytes| decode(TREE, &bytes))
            .transpose()
    }

    /// Every saved correction of a submission, oldest first.
    pub fn versions(&self, id: Uuid) -> Result<Vec<StoredVersion>, StoreError> {
        self.versions
            .scan_prefix(keys::submission(id))
            .values()
            .map(|v| decode(TREE, &v?))
            .collect()
    }

    /// The answers of version `version` as JSON bytes, for the record's `current`.
    pub(super) fn version_data(&self, id: Uuid, version: u32) -> Result<Vec<u8>, StoreError> {
        let stored = self
            .version(id, version)?
            .ok_or_else(|| StoreError::Corrupt {
                tree: TREE,
                reason: format!("submission {id} is at version {version}, which is not stored"),
            })?;
        serde_json::to_vec(&stored.data).map_err(|e| StoreError::Corrupt {
            tree: TREE,
            reason: e.to_string(),
        })
    }
}
