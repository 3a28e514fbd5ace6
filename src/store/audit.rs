//! The audit log: append-only, one entry per change (and per login and download), written in the
//! same transaction as the change it records (`write.rs`).

use serde::{Deserialize, Serialize};

use super::engine::TxError;
use super::write::Tx;
use super::{Pending, Store, StoreError, decode, encode, keys};
use crate::audit::AuditAction;
use crate::clock::Timestamp;

const TREE: &str = "seq_audit";

/// What happened, as the domain describes it; the store adds the number and the time.
#[derive(Clone, Debug)]
pub struct AuditEvent {
    /// Username of whoever did it (the attempted name, cut short, for a failed login).
    pub actor: String,
    pub action: AuditAction,
    /// What it was done to: `submission:<id>`, `user:<name>`, `form:<id>@<version>`, ...
    pub target: String,
    /// The request that did it, to find its log lines.
    pub request_id: Option<String>,
}

/// A stored audit entry. Never the answers themselves, never a password.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct AuditRecord {
    /// Position in the log; also the paging cursor.
    pub seq: u64,
    pub at: Timestamp,
    pub actor: String,
    pub action: AuditAction,
    pub target: String,
    pub request_id: Option<String>,
}

/// An entry numbered and encoded, ready to be written inside a transaction.
pub(super) struct Prepared {
    key: [u8; 8],
    index_key: Vec<u8>,
    bytes: Vec<u8>,
}

impl Prepared {
    /// Writes the entry and its per-target index entry.
    pub fn write(&self, tx: &Tx<'_>) -> Result<(), TxError> {
        tx.audit.insert(self.key, self.bytes.as_slice())?;
        tx.audit_index.insert(self.index_key.as_slice(), [])?;
        Ok(())
    }
}

impl Store {
    /// Numbers and stamps an event, inside `commit`'s transaction (so numbers commit in order).
    pub(super) fn prepare_audit(
        &self,
        event: &AuditEvent,
        seq: u64,
        at: Timestamp,
    ) -> Result<Prepared, StoreError> {
        let record = AuditRecord {
            seq,
            at,
            actor: event.actor.clone(),
            action: event.action,
            target: event.target.clone(),
            request_id: event.request_id.clone(),
        };
        Ok(Prepared {
            key: keys::audit(record.seq),
            index_key: keys::target_seq(&record.target, record.seq),
            bytes: encode(TREE, &record)?,
        })
    }

    /// Records an event that changes nothing else (a failed login, a download).
    pub fn record_audit(&self, event: &AuditEvent) -> Result<Pending<()>, StoreError> {
        self.commit_always(std::slice::from_ref(event), 0, |_| Ok(()))
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
