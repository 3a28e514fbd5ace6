//! Submissions: the payload exactly as received, its metadata, and the per-form arrival index.

use serde::{Deserialize, Serialize};
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};
use uuid::Uuid;

use super::{AuditEvent, Store, StoreError, decode, encode, keys};
use crate::submissions::ValidSubmission;

pub(super) const RECORD: &str = "submissionid_record";
const COMMENTS: &str = "submissionidseq_comment";

/// What the server knows about a submission besides its payload.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SubmissionMeta {
    /// The form it was submitted to.
    pub form: String,
    /// The form version it was validated against.
    pub form_version: String,
    /// RFC 3339 UTC time the server accepted it.
    pub received_at: String,
    /// Arrival number; orders a form's submissions and backs the paging cursor.
    pub seq: u64,
    /// Username of the signed-in person who submitted it (from the token, never the body).
    #[serde(default)]
    pub submitted_by: String,
    /// The value of the form's scope field (e.g. the township), for scoped reading.
    #[serde(default)]
    pub scope: Option<String>,
    /// The current version: 1 is the payload as received, each correction adds one.
    #[serde(default = "first_version")]
    pub version: u32,
    /// Where review has got to: `received`, `approved`, `rejected`, `has_issues` (or `edited`).
    #[serde(default = "received")]
    pub review_status: String,
    /// Set while an admin has deleted it: hidden from lists and exports, never erased.
    #[serde(default)]
    pub deleted: Option<Deletion>,
}

fn received() -> String {
    "received".into()
}

fn first_version() -> u32 {
    1
}

/// Why and by whom a submission was deleted.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Deletion {
    pub reason: String,
    pub by: String,
    pub at: String,
}

/// A reviewer's or field worker's note on a submission.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Comment {
    pub seq: u64,
    pub author: String,
    pub at: String,
    pub text: String,
}

/// A stored submission: metadata plus the exact bytes the client sent.
#[derive(Clone, Debug)]
pub struct SubmissionRecord {
    /// The client's UUID, also the idempotency key.
    pub id: Uuid,
    /// Server-side facts about it.
    pub meta: SubmissionMeta,
    /// The envelope exactly as received.
    pub payload: Vec<u8>,
    /// The answers of the latest correction (a JSON object) when there is one: what the
    /// submission says now. `None` while version 1, the payload, is current.
    pub current: Option<Vec<u8>>,
}

/// What an insert found.
pub enum SubmissionInsert {
    /// Stored now (not yet durable: wait with `Store::wait_durable`).
    Created(SubmissionMeta),
    /// A submission with this id was already stored; nothing was written.
    Exists(SubmissionRecord),
}

impl Store {
    /// Stores a validated submission and its index entry in one transaction, unless its id exists.
    pub fn insert_submission(
        &self,
        submission: &ValidSubmission,
        received_at: String,
        audit: &AuditEvent,
    ) -> Result<SubmissionInsert, StoreError> {
        let key = keys::submission(submission.id());
        let _order = self.write_order();
        let meta = SubmissionMeta {
            form: submission.form().to_owned(),
            form_version: submission.form_version().to_owned(),
            received_at,
            seq: self.db.generate_id()?,
            submitted_by: submission.submitted_by().to_owned(),
            scope: submission.scope().map(str::to_owned),
            version: first_version(),
            review_status: received(),
            deleted: None,
        };
        let record = encode_record(&encode(RECORD, &meta)?, submission.payload());
        let index_key = keys::form_seq(&meta.form, meta.seq);
        let index_value =
            keys::form_seq_value(submission.id(), &meta.submitted_by, meta.scope.as_deref());
        let entry = self.prepare_audit(audit)?;
        let trees = (
            &self.submission_record,
            &self.form_seq,
            &self.audit,
            &self.audit_index,
        );
        let outcome = trees.transaction(|(records, index, log, log_index)| {
            if let Some(existing) = records.get(key)? {
                return Err(ConflictableTransactionError::Abort(existing));
            }
            records.insert(&key[..], record.as_slice())?;
            index.insert(index_key.as_slice(), index_value.as_slice())?;
            entry.write(log, log_index)
        });
        match outcome {
            Ok(()) => Ok(SubmissionInsert::Created(meta)),
            Err(TransactionError::Abort(existing)) => Ok(SubmissionInsert::Exists(decode_record(
                submission.id(),
                &existing,
            )?)),
            Err(TransactionError::Storage(e)) => Err(e.into()),
        }
    }

    /// One submission by id.
    pub fn submission(&self, id: Uuid) -> Result<Option<SubmissionRecord>, StoreError> {
        let Some(bytes) = self.submission_record.get(keys::submission(id))? else {
            return Ok(None);
        };
        let mut record = decode_record(id, &bytes)?;
        if record.meta.version > 1 {
            record.current = Some(self.version_data(id, record.meta.version)?);
        }
        Ok(Some(record))
    }

    /// Changes a submission's metadata (review, deletion) with its audit entry; the payload stays as
    /// received. `None` if there is no such submission.
    pub fn change_submission(
        &self,
        id: Uuid,
        change: impl Fn(&mut SubmissionMeta),
        audit: &AuditEvent,
    ) -> Result<Option<SubmissionRecord>, StoreError> {
        let key = keys::submission(id);
        let _order = self.write_order();
        let entry = self.prepare_audit(audit)?;
        let trees = (&self.submission_record, &self.audit, &self.audit_index);
        let outcome = trees.transaction(|(records, log, index)| {
            let Some(bytes) = records.get(key)? else {
                return Err(ConflictableTransactionError::Abort(None));
            };
            let mut record = decode_record(id, &bytes)
                .map_err(|e| ConflictableTransactionError::Abort(Some(e)))?;
            change(&mut record.meta);
            let meta = encode(RECORD, &record.meta)
                .map_err(|e| ConflictableTransactionError::Abort(Some(e)))?;
            records.insert(&key[..], encode_record(&meta, &record.payload))?;
            entry.write(log, index)?;
            Ok(record)
        });
        match outcome {
            Ok(record) => Ok(Some(record)),
            Err(TransactionError::Abort(None)) => Ok(None),
            Err(TransactionError::Abort(Some(e))) => Err(e),
            Err(TransactionError::Storage(e)) => Err(e.into()),
        }
    }

    /// Adds a comment to a submission, with its audit entry.
    pub fn add_comment(
        &self,
        id: Uuid,
        author: &str,
        text: &str,
        audit: &AuditEvent,
    ) -> Result<Comment, StoreError> {
        let _order = self.write_order();
        let comment = Comment {
            seq: self.db.generate_id()?,
            author: author.to_owned(),
            at: crate::clock::now_rfc3339(),
            text: text.to_owned(),
        };
        let key = keys::submission_seq(id, comment.seq);
        let bytes = encode(COMMENTS, &comment)?;
        let entry = self.prepare_audit(audit)?;
        (&self.comments, &self.audit, &self.audit_index)
            .transaction(|(comments, log, index)| {
                comments.insert(key.as_slice(), bytes.as_slice())?;
                entry.write::<()>(log, index)
            })
            .map_err(super::storage)?;
        Ok(comment)
    }

    /// A submission's comments, oldest first.
    pub fn comments(&self, id: Uuid) -> Result<Vec<Comment>, StoreError> {
        self.comments
            .scan_prefix(keys::submission(id))
            .values()
            .map(|v| decode(COMMENTS, &v?))
            .collect()
    }

    /// The id of `form`'s submission with arrival number `seq`.
    pub fn submission_id_at(&self, form: &str, seq: u64) -> Result<Option<Uuid>, StoreError> {
        Ok(self
            .form_seq
            .get(keys::form_seq(form, seq))?
            .and_then(|value| keys::index_entry(&value).map(|entry| entry.id)))
    }

    /// Up to `limit` submissions of `form` in arrival order after arrival number `after`, keeping
    /// only those `visible(submitter, scope)` accepts (decided from the index, before any record is
    /// read) and then those `keep` accepts.
    pub fn submissions_page(
        &self,
        form: &str,
        after: Option<u64>,
        limit: usize,
        visible: impl Fn(&str, Option<&str>) -> bool,
        keep: impl Fn(&SubmissionMeta) -> bool,
    ) -> Result<Vec<SubmissionRecord>, StoreError> {
        let prefix = keys::form_prefix(form);
        let start = match after {
            None => prefix.clone(),
            Some(u64::MAX) => return Ok(Vec::new()),
            Some(seq) => keys::form_seq(form, seq + 1),
        };
        let mut page = Vec::with_capacity(limit.min(1024));
        for entry in self.form_seq.range(start..) {
            let (key, value) = entry?;
            if !key.starts_with(&prefix) || page.len() == limit {
                break;
            }
            let entry = keys::index_entry(&value).ok_or_else(|| StoreError::Corrupt {
                tree: "formseq_submissionid",
                reason: "undecodable index value".into(),
            })?;
            if !visible(entry.submitter, entry.scope) {
                continue;
            }
            let record = self
                .submission(entry.id)?
                .ok_or_else(|| StoreError::Corrupt {
                    tree: "formseq_submissionid",
                    reason: format!("index names submission {}, which is not stored", entry.id),
                })?;
            if keep(&record.meta) {
                page.push(record);
            }
        }
        Ok(page)
    }
}

/// A `submissionid_record` value: meta length (u32 BE) + `SubmissionMeta` JSON + the envelope as received.
/// One value per submission, so a write is one insert and a read one lookup.
pub(super) fn encode_record(meta: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut record = Vec::with_capacity(4 + meta.len() + payload.len());
    // A meta record is a few hundred bytes, far below u32::MAX.
    record.extend_from_slice(&(meta.len() as u32).to_be_bytes());
    record.extend_from_slice(meta);
    record.extend_from_slice(payload);
    record
}

pub(super) fn decode_record(id: Uuid, bytes: &[u8]) -> Result<SubmissionRecord, StoreError> {
    let corrupt = |reason: &str| StoreError::Corrupt {
        tree: RECORD,
        reason: format!("submission {id}: {reason}"),
    };
    let (length, rest) = bytes
        .split_first_chunk::<4>()
        .ok_or_else(|| corrupt("shorter than its header"))?;
    let length = u32::from_be_bytes(*length) as usize;
    if rest.len() < length {
        return Err(corrupt("meta runs past the end"));
    }
    let (meta, payload) = rest.split_at(length);
    Ok(SubmissionRecord {
        id,
        meta: decode(RECORD, meta)?,
        payload: payload.to_vec(),
        current: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_meta_length_then_meta_then_payload() {
        assert_eq!(encode_record(b"{}", b"[1]"), b"\0\0\0\x02{}[1]".to_vec());
    }

    #[test]
    fn a_record_round_trips_and_truncation_is_reported() {
        let meta = br#"{"form":"f","form_version":"1","received_at":"t","seq":7,"submitted_by":"wei","scope":null}"#;
        // Records written before review existed read as received and not deleted.
        let bytes = encode_record(meta, b"{\"id\":1}");
        let record = decode_record(Uuid::nil(), &bytes).unwrap();
        assert_eq!(record.meta.seq, 7);
        assert_eq!(
            (
                record.meta.review_status.as_str(),
                record.meta.deleted.is_none()
            ),
            ("received", true)
        );
        assert_eq!(record.payload, b"{\"id\":1}");
        assert!(decode_record(Uuid::nil(), &bytes[..3]).is_err());
        assert!(decode_record(Uuid::nil(), &bytes[..10]).is_err());
    }
}
