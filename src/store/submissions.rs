//! Submissions: the payload exactly as received, its metadata, and the per-form arrival index.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::engine::TxError;
use super::write::{Abort, Tx, broken, refuse};
use super::{AuditEvent, ChangeFacts, Pending, Store, StoreError, decode, encode, keys};
use crate::clock::Timestamp;
use crate::forms::ids::FormId;
use crate::submissions::{ReviewStatus, ValidSubmission};

pub(super) const RECORD: &str = "submissionid_record";
const COMMENTS: &str = "submissionidseq_comment";
const INDEX: &str = "formseq_submissionid";

/// What the server knows about a submission besides its payload.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SubmissionMeta {
    /// The form it was submitted to.
    pub form: FormId,
    /// The form version it was validated against.
    pub form_version: String,
    /// When the server accepted it.
    pub received_at: Timestamp,
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
    /// Where review has got to (records from before review read as `received`).
    #[serde(default)]
    pub review_status: ReviewStatus,
    /// Set while an admin has deleted it: hidden from lists and exports, never erased.
    #[serde(default)]
    pub deleted: Option<Deletion>,
}

fn first_version() -> u32 {
    1
}

/// Why and by whom a submission was deleted.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Deletion {
    pub reason: String,
    pub by: String,
    pub at: Timestamp,
}

/// A reviewer's or field worker's note on a submission, as stored.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Comment {
    pub seq: u64,
    pub author: String,
    pub at: Timestamp,
    pub text: String,
}

/// A comment to add: who wrote it and what (already checked by the domain).
#[derive(Clone, Debug)]
pub struct NewComment {
    pub author: String,
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
    /// Stored now.
    Created(SubmissionMeta),
    /// A submission with this id was already stored; nothing was written.
    Exists(SubmissionRecord),
}

/// An entry of a form's arrival index whose submission cannot be read: corrupt or truncated
/// bytes. Lists and exports skip it (and say so) rather than fail for everyone.
#[derive(Clone, Debug)]
pub struct Unreadable {
    /// Its arrival number, so paging moves past it.
    pub seq: u64,
    /// Its id, when the index entry itself could be read.
    pub id: Option<Uuid>,
    pub reason: String,
}

/// One entry of a page of submissions.
pub type Listed = Result<SubmissionRecord, Unreadable>;

impl Store {
    /// Stores a validated submission and its index entry with its audit entry, unless its id
    /// exists (then the stored one, once everything before it is durable).
    pub fn insert_submission(
        &self,
        submission: &ValidSubmission,
        audit: &AuditEvent,
    ) -> Result<Pending<SubmissionInsert>, StoreError> {
        let key = keys::submission(submission.id());
        let received_at = Timestamp::now();
        // Most of the compressing, done before the write lock is taken.
        let payload = self
            .compression
            .pack_payload(submission.form().as_str(), submission.payload())?;
        let reads = [(super::write::Tx::SUBMISSION_RECORD, &key[..])];
        let outcome = self.commit_reading(std::slice::from_ref(audit), 1, &reads, |tx| {
            if let Some(existing) = tx.submission_record.get(key)? {
                return refuse(existing);
            }
            let meta = SubmissionMeta {
                form: submission.form().clone(),
                form_version: submission.form_version().to_owned(),
                received_at,
                seq: tx.number(0),
                submitted_by: submission.submitted_by().to_owned(),
                scope: submission.scope().map(str::to_owned),
                version: first_version(),
                review_status: ReviewStatus::Received,
                deleted: None,
            };
            let record = encode(RECORD, &meta).map_err(broken)?;
            let record = self.compression.pack(&record, &payload).map_err(broken)?;
            tx.submission_record.insert(&key[..], record)?;
            tx.form_seq.insert(
                keys::form_seq(meta.form.as_str(), meta.seq),
                keys::form_seq_value(submission.id(), &meta.submitted_by, meta.scope.as_deref()),
            )?;
            tx.stamp_change(ChangeFacts::of(&meta, None));
            Ok(meta)
        })?;
        match outcome {
            Ok(pending) => {
                self.compression
                    .note_stored(submission.form().as_str(), &payload);
                Ok(pending.map(SubmissionInsert::Created))
            }
            Err(existing) => {
                let earlier = self.decode_record(submission.id(), &existing)?;
                Ok(self.after_earlier_writes(SubmissionInsert::Exists(earlier)))
            }
        }
    }

    /// One submission by id.
    pub fn submission(&self, id: Uuid) -> Result<Option<SubmissionRecord>, StoreError> {
        let Some(bytes) = self.submission_record.get(keys::submission(id))? else {
            return Ok(None);
        };
        self.record_from(id, &bytes).map(Some)
    }

    /// A stored record's bytes as a submission, with its current answers if it was corrected.
    fn record_from(&self, id: Uuid, bytes: &[u8]) -> Result<SubmissionRecord, StoreError> {
        let mut record = self.decode_record(id, bytes)?;
        if record.meta.version > 1 {
            record.current = Some(self.version_data(id, record.meta.version)?);
        }
        Ok(record)
    }

    /// Changes a submission's metadata (review, deletion), with `comment` if any and the audit
    /// entries, in one transaction; the payload stays as received. `None` if there is no such
    /// submission (nothing written).
    pub fn change_submission(
        &self,
        id: Uuid,
        change: impl Fn(&mut SubmissionMeta),
        comment: Option<&NewComment>,
        audit: &[AuditEvent],
    ) -> Result<Option<Pending<SubmissionRecord>>, StoreError> {
        let key = keys::submission(id);
        let at = Timestamp::now();
        let outcome = self.commit(audit, usize::from(comment.is_some()), |tx| {
            let Some(bytes) = tx.submission_record.get(key)? else {
                return refuse(());
            };
            let mut record = self.decode_record_in(tx, id, &bytes)?;
            change(&mut record.meta);
            tx.stamp_change(ChangeFacts::of(&record.meta, None));
            let meta = encode(RECORD, &record.meta).map_err(broken)?;
            let changed = self.compression.with_meta(&bytes, &meta, tx.meta)?;
            tx.submission_record.insert(&key[..], changed)?;
            if let Some(comment) = comment {
                write_comment(tx, id, comment.stored(tx.number(0), at))?;
            }
            Ok(record)
        })?;
        let Ok(pending) = outcome else {
            return Ok(None);
        };
        // A corrected submission reads its latest answers, as `submission` does.
        let (mut record, ticket) = pending.into_parts();
        if record.meta.version > 1 {
            record.current = Some(self.version_data(id, record.meta.version)?);
        }
        Ok(Some(Pending::from_parts(record, ticket)))
    }

    /// Adds a comment to a submission, with its audit entry.
    pub fn add_comment(
        &self,
        id: Uuid,
        comment: &NewComment,
        audit: &AuditEvent,
    ) -> Result<Pending<Comment>, StoreError> {
        let at = Timestamp::now();
        self.commit_always(std::slice::from_ref(audit), 1, |tx| {
            let stored = comment.stored(tx.number(0), at);
            write_comment(tx, id, stored.clone())?;
            Ok(stored)
        })
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

    /// Up to `limit` entries of `form` in arrival order after arrival number `after`: those
    /// `visible(submitter, scope)` accepts (decided from the index, before any record is read)
    /// and `keep` accepts, and every visible entry that cannot be read (as `Err`).
    pub fn submissions_page(
        &self,
        form: &str,
        after: Option<u64>,
        limit: usize,
        visible: impl Fn(&str, Option<&str>) -> bool,
        keep: impl Fn(&SubmissionRecord) -> bool,
    ) -> Result<Vec<Listed>, StoreError> {
        let prefix = keys::form_prefix(form);
        let start = match after {
            None => prefix.clone(),
            Some(u64::MAX) => return Ok(Vec::new()),
            Some(seq) => keys::form_seq(form, seq + 1),
        };
        let mut page = Vec::with_capacity(limit.min(1024));
        let mut index = self.form_seq.range(start..);
        let mut exhausted = false;
        // The index a batch at a time, then that batch's records in one read.
        while page.len() < limit && !exhausted {
            let mut slots = Vec::new();
            while page.len() + slots.len() < limit {
                let Some(entry) = index.next() else {
                    exhausted = true;
                    break;
                };
                let (key, value) = entry?;
                if !key.starts_with(&prefix) {
                    exhausted = true;
                    break;
                }
                let seq = keys::seq_of_form_seq(&key).unwrap_or_default();
                match keys::index_entry(&value) {
                    None => slots.push(Slot::Unreadable(Unreadable {
                        seq,
                        id: None,
                        reason: format!("{INDEX}: undecodable index value"),
                    })),
                    Some(entry) if visible(entry.submitter, entry.scope) => {
                        slots.push(Slot::Record(seq, entry.id));
                    }
                    Some(_) => {}
                }
            }
            let ids: Vec<Vec<u8>> = slots
                .iter()
                .filter_map(|slot| match slot {
                    Slot::Record(_, id) => Some(keys::submission(*id).to_vec()),
                    Slot::Unreadable(_) => None,
                })
                .collect();
            let mut records = self.submission_record.get_many(&ids)?.into_iter();
            for slot in slots {
                let (seq, id) = match slot {
                    Slot::Unreadable(unreadable) => {
                        page.push(Err(unreadable));
                        continue;
                    }
                    Slot::Record(seq, id) => (seq, id),
                };
                let read = match records.next().flatten() {
                    Some(bytes) => self.record_from(id, &bytes).map(Some),
                    None => Ok(None),
                };
                match read {
                    Ok(Some(record)) if keep(&record) => page.push(Ok(record)),
                    Ok(Some(_)) => {}
                    Ok(None) => page.push(Err(Unreadable {
                        seq,
                        id: Some(id),
                        reason: format!("{INDEX}: names a submission that is not stored"),
                    })),
                    Err(StoreError::Corrupt { reason, .. }) => page.push(Err(Unreadable {
                        seq,
                        id: Some(id),
                        reason,
                    })),
                    Err(other) => return Err(other),
                }
            }
        }
        Ok(page)
    }
}

/// An index entry of a page being read: its record to fetch, or why it cannot be.
enum Slot {
    Record(u64, Uuid),
    Unreadable(Unreadable),
}

impl NewComment {
    fn stored(&self, seq: u64, at: Timestamp) -> Comment {
        Comment {
            seq,
            author: self.author.clone(),
            at,
            text: self.text.clone(),
        }
    }
}

/// Writes a comment of submission `id` inside a commit.
fn write_comment<R>(tx: &Tx<'_>, id: Uuid, comment: Comment) -> Result<(), Abort<R>> {
    let bytes = encode(COMMENTS, &comment).map_err(broken)?;
    tx.comments
        .insert(keys::submission_seq(id, comment.seq), bytes)?;
    Ok(())
}

/// A `submissionid_record` value of the store's format 1, uncompressed: meta length (u32 BE) +
/// `SubmissionMeta` JSON + the envelope as received. New records are compressed
/// (`compression.rs`); a review of an old one keeps it in this format.
pub(super) fn encode_record(meta: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut record = Vec::with_capacity(4 + meta.len() + payload.len());
    // A meta record is a few hundred bytes, far below u32::MAX.
    record.extend_from_slice(&(meta.len() as u32).to_be_bytes());
    record.extend_from_slice(meta);
    record.extend_from_slice(payload);
    record
}

impl Store {
    /// A stored `submissionid_record` value as a submission (any of the formats in `compression.rs`).
    pub(super) fn decode_record(
        &self,
        id: Uuid,
        bytes: &[u8],
    ) -> Result<SubmissionRecord, StoreError> {
        let unpacked = self.compression.unpack(bytes).map_err(naming(id))?;
        record_of(id, unpacked)
    }

    /// [`Store::decode_record`] inside a write (`compression.rs` says why it differs).
    pub(super) fn decode_record_in(
        &self,
        tx: &Tx<'_>,
        id: Uuid,
        bytes: &[u8],
    ) -> Result<SubmissionRecord, TxError> {
        let unpacked = self
            .compression
            .unpack_in(bytes, tx.meta)
            .map_err(|error| match error {
                TxError::Storage(error) => TxError::Storage(naming(id)(error)),
                conflict => conflict,
            })?;
        Ok(record_of(id, unpacked)?)
    }
}

/// Names submission `id` in what is wrong with its stored record.
fn naming(id: Uuid) -> impl Fn(StoreError) -> StoreError {
    move |error| match error {
        StoreError::Corrupt { tree, reason } => StoreError::Corrupt {
            tree,
            reason: format!("submission {id}: {reason}"),
        },
        other => other,
    }
}

fn record_of(
    id: Uuid,
    unpacked: super::compression::Unpacked,
) -> Result<SubmissionRecord, StoreError> {
    Ok(SubmissionRecord {
        id,
        meta: decode(RECORD, &unpacked.meta).map_err(naming(id))?,
        payload: unpacked.payload,
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
    fn a_format_1_record_still_reads_and_truncation_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let decode_record = |id, bytes: &[u8]| store.decode_record(id, bytes);
        let meta = br#"{"form":"f","form_version":"1","received_at":"2026-03-01T00:00:00Z","seq":7,"submitted_by":"wei","scope":null}"#;
        // Records written before review existed read as received and not deleted.
        let bytes = encode_record(meta, b"{\"id\":1}");
        let record = decode_record(Uuid::nil(), &bytes).unwrap();
        assert_eq!(record.meta.seq, 7);
        assert_eq!(
            (record.meta.review_status, record.meta.deleted.is_none()),
            (ReviewStatus::Received, true)
        );
        assert_eq!(record.payload, b"{\"id\":1}");
        assert!(decode_record(Uuid::nil(), &bytes[..3]).is_err());
        assert!(decode_record(Uuid::nil(), &bytes[..10]).is_err());
    }
}
