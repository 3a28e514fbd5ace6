//! The one way to change the store.
//!
//! Every mutation is a call to [`Store::commit`]: it takes the write-order lock (so numbered
//! entries commit in number order and a backup sees no half-made change), numbers and stamps
//! the mutation's audit entries, runs the caller's closure and writes the entries in one sled
//! transaction over every tree, and hands back a [`Pending`] write. Nothing has happened, as far
//! as any client is concerned, until that write is awaited: [`Pending::durable`] resolves once
//! the group commit has put it on disk. The typed methods of `Store` are thin users of this.

use std::convert::Infallible;

use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};

use super::durability::Ticket;
use super::{AuditEvent, Store, StoreError};

/// Why a commit's closure stopped: the caller's reason (nothing was written), or broken data.
pub(super) enum Stop<R> {
    Refused(R),
    Broken(StoreError),
}

/// What a commit's closure returns when it stops.
pub(super) type Abort<R> = ConflictableTransactionError<Stop<R>>;

/// Stops the transaction without writing, for `reason`.
pub(super) fn refuse<T, R>(reason: R) -> Result<T, Abort<R>> {
    Err(ConflictableTransactionError::Abort(Stop::Refused(reason)))
}

/// Stops the transaction because stored data could not be read or written.
pub(super) fn broken<R>(error: StoreError) -> Abort<R> {
    ConflictableTransactionError::Abort(Stop::Broken(error))
}

/// Every tree, as one transaction sees it. The order matches [`Store::trees`].
pub(super) struct Tx<'t> {
    pub form_versions: &'t TransactionalTree,
    pub submission_record: &'t TransactionalTree,
    pub form_seq: &'t TransactionalTree,
    pub users: &'t TransactionalTree,
    pub refresh_tokens: &'t TransactionalTree,
    pub revoked_families: &'t TransactionalTree,
    pub versions: &'t TransactionalTree,
    pub comments: &'t TransactionalTree,
    pub audit: &'t TransactionalTree,
    pub audit_index: &'t TransactionalTree,
    pub meta: &'t TransactionalTree,
    pub uploads: &'t TransactionalTree,
    pub attachments: &'t TransactionalTree,
    pub registries: &'t TransactionalTree,
    pub registry_households: &'t TransactionalTree,
    pub registry_members: &'t TransactionalTree,
    pub registry_removed: &'t TransactionalTree,
    /// Numbers drawn for this write before it began (sled's id generator may write, which it
    /// cannot do inside a transaction), larger than every number handed out before.
    numbers: &'t [u64],
}

impl<'t> Tx<'t> {
    fn new(views: &'t [TransactionalTree], numbers: &'t [u64]) -> Self {
        Self {
            form_versions: &views[0],
            submission_record: &views[1],
            form_seq: &views[2],
            users: &views[3],
            refresh_tokens: &views[4],
            revoked_families: &views[5],
            versions: &views[6],
            comments: &views[7],
            audit: &views[8],
            audit_index: &views[9],
            meta: &views[10],
            uploads: &views[11],
            attachments: &views[12],
            registries: &views[13],
            registry_households: &views[14],
            registry_members: &views[15],
            registry_removed: &views[16],
            numbers,
        }
    }

    /// The `i`-th number drawn for this write (arrival order, comments, publication order);
    /// `commit` was asked for more than `i`.
    pub fn number(&self, i: usize) -> u64 {
        self.numbers[i]
    }
}

/// A committed write that is not yet known to be on disk.
#[must_use = "a write counts only once it is on disk: await `durable()`"]
pub struct Pending<T> {
    value: T,
    ticket: Ticket,
}

impl<T> Pending<T> {
    /// The write's result, once it (and everything committed before it) is on disk.
    pub async fn durable(self) -> Result<T, StoreError> {
        self.ticket.wait().await?;
        Ok(self.value)
    }

    pub fn map<U>(self, change: impl FnOnce(T) -> U) -> Pending<U> {
        Pending {
            value: change(self.value),
            ticket: self.ticket,
        }
    }

    /// The result and the ticket to wait on, for callers that settle many writes with one
    /// flush (a batch): waiting on the latest ticket covers every earlier one.
    pub fn into_parts(self) -> (T, Ticket) {
        (self.value, self.ticket)
    }

    /// A result that counts once `ticket` is durable (what `into_parts` took apart).
    pub fn from_parts(value: T, ticket: Ticket) -> Self {
        Self { value, ticket }
    }
}

impl Store {
    /// Every tree, in the order [`Tx`] names them.
    fn trees(&self) -> [&sled::Tree; 17] {
        [
            &self.form_versions,
            &self.submission_record,
            &self.form_seq,
            &self.users,
            &self.refresh_tokens,
            &self.revoked_families,
            &self.versions,
            &self.comments,
            &self.audit,
            &self.audit_index,
            &self.meta,
            &self.uploads,
            &self.attachments,
            &self.registries,
            &self.registry_households,
            &self.registry_members,
            &self.registry_removed,
        ]
    }

    /// Runs `write` and writes `audit` in one transaction, under the write-order lock, with
    /// `numbers` fresh numbers for it to use. `Ok(Err)` when `write` refused (nothing written);
    /// the closure may run more than once on conflict.
    pub(super) fn commit<T, R>(
        &self,
        audit: &[AuditEvent],
        numbers: usize,
        write: impl Fn(&Tx<'_>) -> Result<T, Abort<R>>,
    ) -> Result<Result<Pending<T>, R>, StoreError> {
        let order = self.write_order();
        let entries = audit
            .iter()
            .map(|event| self.prepare_audit(event))
            .collect::<Result<Vec<_>, _>>()?;
        let numbers = (0..numbers)
            .map(|_| self.db.generate_id())
            .collect::<Result<Vec<_>, _>>()?;
        let trees = self.trees();
        // The one place a transaction runs.
        #[allow(clippy::disallowed_methods)]
        let outcome = trees[..].transaction(|views| {
            let tx = Tx::new(views, &numbers);
            let value = write(&tx)?;
            for entry in &entries {
                entry.write(&tx)?;
            }
            Ok(value)
        });
        // The ticket is taken after the lock is let go (waking the flusher is a system call,
        // and the next writer should not wait for it); it still covers this write.
        drop(order);
        match outcome {
            Ok(value) => Ok(Ok(Pending {
                value,
                ticket: self.durability.ticket(),
            })),
            Err(TransactionError::Abort(Stop::Refused(reason))) => Ok(Err(reason)),
            Err(TransactionError::Abort(Stop::Broken(error))) => Err(error),
            Err(TransactionError::Storage(error)) => Err(error.into()),
        }
    }

    /// `commit` for writes that never refuse.
    pub(super) fn commit_always<T>(
        &self,
        audit: &[AuditEvent],
        numbers: usize,
        write: impl Fn(&Tx<'_>) -> Result<T, Abort<Infallible>>,
    ) -> Result<Pending<T>, StoreError> {
        match self.commit(audit, numbers, write)? {
            Ok(pending) => Ok(pending),
            Err(never) => match never {},
        }
    }

    /// `value` once everything committed so far is on disk: for an answer that depends on a
    /// write another request made (a replayed submission, a retried refresh) and may still be
    /// on its way.
    pub fn after_earlier_writes<T>(&self, value: T) -> Pending<T> {
        Pending {
            value,
            ticket: self.durability.ticket(),
        }
    }
}
