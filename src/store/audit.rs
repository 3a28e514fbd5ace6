//! The audit log: append-only, one entry per change (and per login and download), written in the
//! same transaction as the change it records (`write.rs`).

use serde::{Deserialize, Serialize};

use super::engine::TxError;
use super::write::Tx;
use super::{Pending, Store, StoreError, decode, encode, keys};
use crate::audit::AuditAction;
use crate::clock::Timestamp;
use crate::submissions::ReviewStatus;

const TREE: &str = "seq_audit";
/// Entries one read of the log looks at, at most.
const MAX_EXAMINED: usize = 10_000;

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
    /// For a change of a submission: what it was right after (entries written before the
    /// changes feed existed have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<ChangeFacts>,
}

/// What a submission was right after a change, kept in the change's audit entry: the changes
/// feed and webhooks tell each change from it, in the log's order.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ChangeFacts {
    pub form: String,
    pub form_version: String,
    /// Its version after the change (1 as received, one more per correction).
    pub version: u32,
    pub review_status: ReviewStatus,
    pub submitted_by: String,
    /// The places it was in before and after the change (two when a correction moved it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
}

impl ChangeFacts {
    /// What `meta` says now (for entries written before the log kept what a change made).
    pub fn current(meta: &super::SubmissionMeta) -> Self {
        Self::of(meta, None)
    }

    /// The facts of `meta`, which was in `before` (its place before the change) if that differs.
    pub(super) fn of(meta: &super::SubmissionMeta, before: Option<&str>) -> Self {
        let mut scopes: Vec<String> = before.into_iter().map(str::to_owned).collect();
        if let Some(now) = &meta.scope
            && !scopes.contains(now)
        {
            scopes.push(now.clone());
        }
        Self {
            form: meta.form.as_str().to_owned(),
            form_version: meta.form_version.clone(),
            version: meta.version,
            review_status: meta.review_status,
            submitted_by: meta.submitted_by.clone(),
            scopes,
        }
    }
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
    /// `change`: what the write made of the submission, kept for the submission's own events.
    pub(super) fn prepare_audit(
        &self,
        event: &AuditEvent,
        seq: u64,
        at: Timestamp,
        change: Option<&ChangeFacts>,
    ) -> Result<Prepared, StoreError> {
        let record = AuditRecord {
            seq,
            at,
            actor: event.actor.clone(),
            action: event.action,
            target: event.target.clone(),
            request_id: event.request_id.clone(),
            change: change
                .filter(|_| event.action.changes_a_submission())
                .cloned(),
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

    /// The number of the newest entry, 0 for an empty log.
    pub fn last_audit_seq(&self) -> Result<u64, StoreError> {
        Ok(self
            .audit
            .last_key()?
            .and_then(|key| keys::seq_of_form_seq(&key))
            .unwrap_or(0))
    }

    /// Entries after `after` up to `through` in log order, keeping those `keep` accepts, at most
    /// `limit`, looking at no more than `MAX_EXAMINED` entries (a rare form's changes are far
    /// apart); with the number of the last entry looked at (to go on from).
    pub fn audit_through(
        &self,
        after: u64,
        through: u64,
        limit: usize,
        keep: impl Fn(&AuditRecord) -> bool,
    ) -> Result<(Vec<AuditRecord>, u64), StoreError> {
        let mut page = Vec::new();
        let mut looked_at = after;
        if after >= through {
            return Ok((page, after));
        }
        let mut examined = 0;
        let mut stopped = false;
        for entry in self
            .audit
            .range(keys::audit(after + 1)..=keys::audit(through))
        {
            let record: AuditRecord = decode(TREE, &entry?.1)?;
            looked_at = record.seq;
            examined += 1;
            if keep(&record) {
                page.push(record);
                if page.len() == limit {
                    stopped = true;
                    break;
                }
            }
            if examined == MAX_EXAMINED {
                stopped = true;
                break;
            }
        }
        if !stopped {
            looked_at = through;
        }
        Ok((page, looked_at))
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
