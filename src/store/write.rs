//! The one way to change the store.
//!
//! Every mutation is a call to [`Store::commit`]: it takes the write-order lock (so numbered
//! entries commit in number order and a backup sees no half-made change), numbers and stamps
//! the mutation's audit entries, runs the caller's closure and writes the entries in one sled
//! transaction over every tree, and hands back a [`Pending`] write. Nothing has happened, as far
//! as any client is concerned, until that write is awaited: [`Pending::durable`] resolves once
//! the group commit has put it on disk. The typed methods of `Store` are thin users of this.

use std::convert::Infallible;

use super::durability::Ticket;
use super::engine::{Abort as EngineAbort, TxTree};
use super::{AuditEvent, ChangeFacts, Store, StoreError};

/// What a commit's closure returns when it stops: the caller's reason (nothing was written),
/// broken data, or a conflict (the closure runs again).
pub(super) type Abort<R> = EngineAbort<R>;

/// Stops the transaction without writing, for `reason`.
pub(super) fn refuse<T, R>(reason: R) -> Result<T, Abort<R>> {
    Err(EngineAbort::Refused(reason))
}

/// Stops the transaction because stored data could not be read or written.
pub(super) fn broken<R>(error: StoreError) -> Abort<R> {
    EngineAbort::Broken(error)
}

/// Every tree, as one transaction sees it. The order matches [`Store::trees`].
pub(super) struct Tx<'t> {
    pub form_versions: &'t TxTree<'t>,
    pub submission_record: &'t TxTree<'t>,
    pub form_seq: &'t TxTree<'t>,
    pub users: &'t TxTree<'t>,
    pub refresh_tokens: &'t TxTree<'t>,
    pub revoked_families: &'t TxTree<'t>,
    pub versions: &'t TxTree<'t>,
    pub comments: &'t TxTree<'t>,
    pub audit: &'t TxTree<'t>,
    pub audit_index: &'t TxTree<'t>,
    pub meta: &'t TxTree<'t>,
    pub uploads: &'t TxTree<'t>,
    pub attachments: &'t TxTree<'t>,
    pub registries: &'t TxTree<'t>,
    pub registry_households: &'t TxTree<'t>,
    pub registry_members: &'t TxTree<'t>,
    pub registry_removed: &'t TxTree<'t>,
    pub transient: &'t TxTree<'t>,
    /// Numbers drawn for this write, larger than every number handed out before.
    numbers: &'t [u64],
    /// What the write made of a submission, for its audit entry (`stamp_change`).
    change: std::cell::RefCell<Option<ChangeFacts>>,
}

impl<'t> Tx<'t> {
    /// `submission_record`'s place, for [`Store::commit_reading`].
    pub const SUBMISSION_RECORD: usize = 1;

    fn new(views: &'t [TxTree<'t>], numbers: &'t [u64]) -> Self {
        Self {
            form_versions: &views[0],
            submission_record: &views[Self::SUBMISSION_RECORD],
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
            transient: &views[17],
            numbers,
            change: std::cell::RefCell::new(None),
        }
    }

    /// Records what this write made of a submission: its audit entry keeps it.
    pub fn stamp_change(&self, facts: ChangeFacts) {
        *self.change.borrow_mut() = Some(facts);
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

    /// The write's result, before it is durable: for the writer's own bookkeeping, never for
    /// an answer to a client.
    pub(super) fn value(&self) -> &T {
        &self.value
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
    /// Runs `write` and writes `audit` in one transaction, under the write-order lock, with
    /// `numbers` fresh numbers for it to use. `Ok(Err)` when `write` refused (nothing written);
    /// the closure may run more than once on conflict.
    pub(super) fn commit<T, R>(
        &self,
        audit: &[AuditEvent],
        numbers: usize,
        write: impl Fn(&Tx<'_>) -> Result<T, Abort<R>>,
    ) -> Result<Result<Pending<T>, R>, StoreError> {
        self.commit_reading(audit, numbers, &[], write)
    }

    /// `commit`, naming entries `write` reads first (tree: its place in [`Tx`], key), which
    /// PostgreSQL then fetches in the round trip that begins the transaction.
    pub(super) fn commit_reading<T, R>(
        &self,
        audit: &[AuditEvent],
        numbers: usize,
        reads: &[(usize, &[u8])],
        write: impl Fn(&Tx<'_>) -> Result<T, Abort<R>>,
    ) -> Result<Result<Pending<T>, R>, StoreError> {
        let order = self.write_order();
        let at = crate::clock::Timestamp::now();
        // The audit entries' numbers come after the caller's, drawn in the same transaction.
        let outcome = self
            .engine
            .transaction(numbers + audit.len(), reads, |views, drawn| {
                let tx = Tx::new(views, &drawn[..numbers]);
                let value = write(&tx)?;
                let change = tx.change.borrow();
                for (event, seq) in audit.iter().zip(&drawn[numbers..]) {
                    self.prepare_audit(event, *seq, at, change.as_ref())
                        .map_err(EngineAbort::Broken)?
                        .write(&tx)?;
                }
                Ok(value)
            });
        // The ticket is taken after the lock is let go (waking the flusher is a system call,
        // and the next writer should not wait for it); it still covers this write.
        drop(order);
        Ok(outcome?.map(|value| Pending {
            value,
            ticket: self.durability.ticket(),
        }))
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
