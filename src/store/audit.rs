//! The audit log: append-only, one entry per change (and per login and download), written in the
//! same transaction as the change it records.

use serde::{Deserialize, Serialize};
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionalTree};

use super::{Store, StoreError, decode, encode, keys};

const TREE: &str = "seq_audit";

/// What happened, as the domain describes it; the store adds the number and the time.
#[derive(Clone, Debug)]
pub struct AuditEvent {
    /// Username of whoever did it (the attempted name for a failed login).
    pub actor: String,
    /// One of the documented action names (`login`, `submission_created`, ...).
    pub action: &'static str,
    /// What it was done to: `submission:<id>`, `user:<name>`, `form:<id>@<version>`, ...
    pub target: String,
    /// The request that did it, to find its log lines.
    pub request_id: Option<String>,
}

/// A stored audit entry. Never the answers themselves, never a password.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct AuditRecord {
    /// Position in the log; also the paging cursor.
    pub seq: u64,
    /// RFC 3339 UTC.
    pub at: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub request_id: Option<String>,
}

/// An entry ready to be written inside a transaction.
pub(super) struct Prepared {
    pub record: AuditRecord,
    key: [u8; 8],
    index_key: Vec<u8>,
    bytes: Vec<u8>,
}

impl Prepared {
    /// Writes the entry and its per-target index entry.
    pub fn write<E>(
        &self,
        log: &TransactionalTree,
        index: &TransactionalTree,
    ) -> Result<(), ConflictableTransactionError<E>> {
        log.insert(&self.key[..], self.bytes.as_slice())?;
        index.insert(self.index_key.as_slice(), &[][..])?;
        Ok(())
    }
}

impl Store {
    /// Numbers and stamps an event. Call while holding `write_order`, so numbers commit in order.
    pub(super) fn prepare_audit(&self, event: &AuditEvent) -> Result<Prepared, StoreError> {
        let record = AuditRecord {
            seq: self.db.generate_id()?,
            at: crate::clock::now_rfc3339(),
            actor: event.actor.clone(),
            action: event.action.to_owned(),
            target: event.target.clone(),
            request_id: event.request_id.clone(),
        };
        Ok(Prepared {
            key: keys::audit(record.seq),
            index_key: keys::target_seq(&record.target, record.seq),
            bytes: encode(TREE, &record)?,
            record,
        })
    }

    /// Records an event that changes nothing else (a failed login, a download).
    pub fn record_audit(&self, event: &AuditEvent) -> Result<AuditRecord, StoreError> {
        let _order = self.write_order();
        let prepared = self.prepare_audit(event)?;
        (&self.audit, &self.audit_index)
            .transaction(|(log, index)| prepared.write::<()>(log, index))
            .map_err(super::storage)?;
        Ok(prepared.record)
    }

    /// Audit entries after `after` in log order, keeping those `keep` accepts, at most `limit`.
    pub fn audit_page(
        &self,
        after: Option<u64>,
        limit: usize,
        keep: impl Fn(&AuditRecord) -> bool,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let start = match after {
            None => keys::audit(0),
            Some(u64::MAX) => return Ok(Vec::new()),
            Some(seq) => keys::audit(seq + 1),
        };
        let mut page = Vec::new();
        for entry in self.audit.range(start..) {
            let record: AuditRecord = decode(TREE, &entry?.1)?;
            if keep(&record) {
                page.push(record);
                if page.len() == limit {
                    break;
                }
            }
        }
        Ok(page)
    }

    /// Every entry about `target`, oldest first.
    pub fn audit_of(&self, target: &str) -> Result<Vec<AuditRecord>, StoreError> {
        let prefix = keys::target_prefix(target);
        let mut entries = Vec::new();
        for entry in self.audit_index.scan_prefix(&prefix) {
            let (key, _) = entry?;
            let Some(seq) = keys::seq_of_form_seq(&key) else {
                continue;
            };
            if let Some(bytes) = self.audit.get(keys::audit(seq))? {
                entries.push(decode(TREE, &bytes)?);
            }
        }
        Ok(entries)
    }
}
