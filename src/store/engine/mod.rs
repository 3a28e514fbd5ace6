//! What the store is kept in: sled (embedded, the default: one binary, one directory) or
//! PostgreSQL (for deployments with several API nodes or a replicated database). Both are
//! ordered key-value trees with transactions over several trees; everything above this module
//! (records, key layouts, the one write path, durability) is the same for both.

pub(super) mod pg;
pub(super) mod sled_engine;

use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

pub use pg::PgOptions;
pub(super) use sled::IVec;

/// Every tree's name and entries, as a backup takes them.
pub(super) type TreeEntries = Vec<(String, Vec<(IVec, IVec)>)>;

use super::StoreError;

/// Every tree, by name, in the order a transaction sees them ([`super::write::Tx`]).
pub(super) const TREES: [&str; 18] = [
    "formversion_definition",
    "submissionid_record",
    "formseq_submissionid",
    "username_user",
    "tokenhash_refresh",
    "familyid_revokedat",
    "submissionidversion_version",
    "submissionidseq_comment",
    "seq_audit",
    "targetseq_none",
    "meta",
    "uploadid_upload",
    super::attachments::ATTACHMENTS,
    "form_registry",
    "formversionhousehold_registryhousehold",
    "formversionhouseholdline_registrymember",
    "formversionhousehold_none",
    TRANSIENT,
];

/// Short-lived state every node must see alike (login failures, download links): never in a
/// backup, and safe to lose.
pub(super) const TRANSIENT: &str = "purposekey_transient";

/// The open database.
pub(super) enum Engine {
    Sled(sled_engine::Sled),
    Postgres(Arc<pg::Pg>),
}

/// One tree of the database, for reading; writes go through [`Engine::transaction`].
#[derive(Clone)]
pub(super) enum Tree {
    Sled(sled::Tree),
    Postgres(Arc<pg::Pg>, usize),
}

/// Why a transaction's closure stopped: the caller's reason (nothing was written), broken data,
/// or a conflict with another writer (the closure runs again).
pub(super) enum Abort<R> {
    Refused(R),
    Broken(StoreError),
    Conflict,
}

/// A read or write inside a transaction that failed.
pub(super) enum TxError {
    Conflict,
    Storage(StoreError),
}

impl From<StoreError> for TxError {
    fn from(error: StoreError) -> Self {
        TxError::Storage(error)
    }
}

impl<R> From<TxError> for Abort<R> {
    fn from(error: TxError) -> Self {
        match error {
            TxError::Conflict => Abort::Conflict,
            TxError::Storage(error) => Abort::Broken(error),
        }
    }
}

/// One tree as a transaction sees it.
pub(super) enum TxTree<'t> {
    Sled(&'t sled::transaction::TransactionalTree),
    Postgres(&'t pg::Transaction, usize),
}

impl TxTree<'_> {
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<IVec>, TxError> {
        match self {
            Self::Sled(tree) => Ok(tree.get(key)?),
            Self::Postgres(tx, tree) => tx.get(*tree, key.as_ref()),
        }
    }

    pub fn insert(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<(), TxError> {
        match self {
            Self::Sled(tree) => {
                tree.insert(key.as_ref(), value.as_ref())?;
                Ok(())
            }
            Self::Postgres(tx, tree) => {
                tx.put(*tree, key.as_ref(), Some(value.as_ref()));
                Ok(())
            }
        }
    }

    pub fn remove(&self, key: impl AsRef<[u8]>) -> Result<(), TxError> {
        match self {
            Self::Sled(tree) => {
                tree.remove(key.as_ref())?;
                Ok(())
            }
            Self::Postgres(tx, tree) => {
                tx.put(*tree, key.as_ref(), None);
                Ok(())
            }
        }
    }
}

/// Entries of a tree in key order.
pub(super) enum Entries {
    Sled(sled::Iter),
    Postgres(pg::Scan),
}

impl Iterator for Entries {
    type Item = Result<(IVec, IVec), StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Self::Sled(iter) => iter.next().map(|entry| entry.map_err(StoreError::from)),
            Self::Postgres(scan) => scan.next(),
        }
    }
}

impl Entries {
    pub fn keys(self) -> impl Iterator<Item = Result<IVec, StoreError>> {
        self.map(|entry| entry.map(|(key, _)| key))
    }

    pub fn values(self) -> impl Iterator<Item = Result<IVec, StoreError>> {
        self.map(|entry| entry.map(|(_, value)| value))
    }
}

impl Tree {
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<IVec>, StoreError> {
        match self {
            Self::Sled(tree) => Ok(tree.get(key)?),
            Self::Postgres(pg, tree) => pg.get(*tree, key.as_ref()),
        }
    }

    /// The values at `keys`, in their order: one round trip for PostgreSQL, not one per key.
    pub fn get_many(&self, keys: &[Vec<u8>]) -> Result<Vec<Option<IVec>>, StoreError> {
        match self {
            Self::Sled(tree) => Ok(keys
                .iter()
                .map(|key| tree.get(key))
                .collect::<Result<_, _>>()?),
            Self::Postgres(pg, tree) => pg.get_many(*tree, keys),
        }
    }

    pub fn contains_key(&self, key: impl AsRef<[u8]>) -> Result<bool, StoreError> {
        Ok(self.get(key)?.is_some())
    }

    /// The largest key.
    pub fn last_key(&self) -> Result<Option<IVec>, StoreError> {
        match self {
            Self::Sled(tree) => Ok(tree.last()?.map(|(key, _)| key)),
            Self::Postgres(pg, tree) => pg.last_key(*tree),
        }
    }

    /// How many entries: a walk of the tree for sled, so only for small trees.
    pub fn count(&self) -> Result<u64, StoreError> {
        match self {
            Self::Sled(tree) => Ok(tree.len() as u64),
            Self::Postgres(pg, tree) => pg.count(*tree),
        }
    }

    pub fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.iter().next().transpose()?.is_none())
    }

    pub fn iter(&self) -> Entries {
        self.range::<&[u8], _>(..)
    }

    pub fn range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> Entries {
        match self {
            Self::Sled(tree) => Entries::Sled(tree.range(range)),
            Self::Postgres(pg, tree) => {
                let owned = |bound: Bound<&K>| bound.map(|key| key.as_ref().to_vec());
                Entries::Postgres(pg::Scan::new(
                    Arc::clone(pg),
                    *tree,
                    owned(range.start_bound()),
                    owned(range.end_bound()),
                ))
            }
        }
    }

    pub fn scan_prefix(&self, prefix: impl AsRef<[u8]>) -> Entries {
        match self {
            Self::Sled(tree) => Entries::Sled(tree.scan_prefix(prefix)),
            Self::Postgres(..) => {
                let prefix = prefix.as_ref().to_vec();
                match successor_of_prefix(&prefix) {
                    Some(end) => self.range(prefix..end),
                    None => self.range(prefix..),
                }
            }
        }
    }
}

/// The smallest key after every key that starts with `prefix` (none if all its bytes are 0xFF).
fn successor_of_prefix(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

impl Engine {
    /// The tree at `index` of [`TREES`].
    pub fn tree(&self, index: usize) -> Result<Tree, StoreError> {
        match self {
            Self::Sled(sled) => Ok(Tree::Sled(sled.tree(index).clone())),
            Self::Postgres(pg) => Ok(Tree::Postgres(Arc::clone(pg), index)),
        }
    }

    /// A number larger than any handed out before.
    pub fn generate_id(&self) -> Result<u64, StoreError> {
        match self {
            Self::Sled(sled) => sled.generate_id(),
            Self::Postgres(pg) => pg.next_number(),
        }
    }

    /// Runs `write` over every tree in one transaction with `numbers` fresh numbers, larger than
    /// any before and, for writes that commit later, smaller than theirs. `Ok(Err)` when `write`
    /// refused (nothing written); the closure may run more than once on conflict. The write is
    /// visible at once but durable only after the next [`Engine::sync`].
    /// Runs `write` in one transaction with `numbers` fresh numbers. `reads` names entries
    /// (tree, key) the write will read first, which PostgreSQL fetches as the transaction begins.
    pub fn transaction<T, R>(
        &self,
        numbers: usize,
        reads: &[(usize, &[u8])],
        write: impl Fn(&[TxTree<'_>], &[u64]) -> Result<T, Abort<R>>,
    ) -> Result<Result<T, R>, StoreError> {
        match self {
            Self::Sled(sled) => sled.transaction(numbers, write),
            Self::Postgres(pg) => pg.transaction(numbers, reads, write),
        }
    }

    /// What the group commit calls to make every write committed so far durable.
    pub fn syncer(&self) -> Result<Syncer, StoreError> {
        match self {
            Self::Sled(sled) => Ok(Syncer::Sled(Box::new(sled.syncer()?))),
            Self::Postgres(pg) => Ok(Syncer::Postgres(Arc::clone(pg))),
        }
    }

    /// Bytes the database takes on disk.
    pub fn size_on_disk(&self) -> Result<u64, StoreError> {
        match self {
            Self::Sled(sled) => Ok(sled.db.size_on_disk()?),
            Self::Postgres(pg) => pg.size_on_disk(),
        }
    }

    /// Every tree's entries as of one instant (no write of [`Engine::transaction`] half seen).
    /// sled has no snapshots: the caller holds the write-order lock meanwhile.
    pub fn snapshot(&self) -> Result<TreeEntries, StoreError> {
        match self {
            Self::Sled(sled) => sled.snapshot(),
            Self::Postgres(pg) => pg.snapshot(),
        }
    }

    /// Writes `value` at `key` of `meta` outside the write path and makes it durable: for
    /// start-up, before the store exists.
    pub fn stamp_meta(&self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        match self {
            Self::Sled(sled) => sled.stamp_meta(key, value),
            Self::Postgres(pg) => pg.stamp_meta(key, value),
        }
    }

    /// Which engine runs, for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Sled(_) => "sled",
            Self::Postgres(_) => "postgres",
        }
    }
}

/// What the group commit calls to make writes durable.
pub(super) enum Syncer {
    Sled(Box<sled_engine::Syncer>),
    Postgres(Arc<pg::Pg>),
}

impl Syncer {
    pub fn sync(&mut self) -> std::io::Result<()> {
        match self {
            Self::Sled(syncer) => syncer.sync(),
            Self::Postgres(pg) => pg.sync().map_err(std::io::Error::other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::successor_of_prefix;

    #[test]
    fn the_successor_of_a_prefix_is_past_every_key_it_starts() {
        assert_eq!(successor_of_prefix(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(successor_of_prefix(&[1, 0xFF, 0xFF]), Some(vec![2]));
        assert_eq!(successor_of_prefix(&[0xFF]), None);
        assert_eq!(successor_of_prefix(&[]), None);
    }
}
